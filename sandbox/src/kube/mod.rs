//! The Kubernetes API subset of the emulated clusters, and their service-account issuers.
//!
//! Clusters: the built-in standalone cluster `sandbox` (API base `{base_url}/k8s/sandbox`, which
//! is also its service-account issuer, as a kube-apiserver started with
//! `--service-account-issuer={its URL}`), and one per AKS managed cluster (API base
//! `{base_url}/k8s/{guid}`; issuer `{base_url}/oidc/{tenant}/{guid}/` while its OIDC issuer is
//! enabled, whose discovery document and JWKS are served under `/oidc/…` as AKS serves them
//! from `oic.prod-aks.azure.com`).
//!
//! What a cluster serves (each answer shaped as kube-apiserver v1.34's, checked against the real
//! server of `tests/kube-server`; `tests/kube/contract.rs` runs the same suite on both):
//! - `/version`, `/healthz`, `/livez`, `/readyz`, discovery (`/api`, `/api/v1`, `/apis`);
//! - core/v1 `namespaces` and `serviceaccounts`: get, list (label and field selectors, `limit`
//!   and `continue`), create, server-side apply (`application/apply-patch+yaml`, field managers,
//!   conflicts, `force`, `before-first-apply`), delete (a namespace goes `Terminating` and stays:
//!   there is no namespace controller), `dryRun=All`;
//! - `serviceaccounts/{name}/token` (TokenRequest), RS256 tokens signed with the cluster's key;
//! - OIDC discovery (`/.well-known/openid-configuration`) and JWKS (`/openid/v1/jwks`).
//!
//! Authentication (`k8s.io/apiserver/pkg/authentication`): static bearer tokens as
//! `--token-auth-file` gives them (an `admin` in `system:masters`, a `reader`), the cluster's
//! own service-account tokens, and anonymous requests without a token (`system:anonymous`);
//! an unknown token is 401. Authorization is the RBAC the clusters of the tests have: the admin
//! may do anything; the reader may get/list/watch namespaces and service accounts; everyone may
//! read `/version`, health and the issuer documents (`system:public-info-viewer`,
//! `system:service-account-issuer-discovery`); authenticated users may read discovery
//! (`system:discovery`). Refusals are worded as the RBAC authorizer words them.
//!
//! Also served: `PUT` (update), JSON merge patch, strategic merge patch (as a merge patch: the
//! lists of these kinds are replaced whole) and JSON patch. Not emulated: watch (405), other
//! resources and API groups (404).
//!
//! Where the emulator departs from the real server on purpose: a body it cannot decode is a 400
//! `BadRequest` (kube-apiserver answers some of these with a reasonless 500), and lists inside
//! objects (`secrets`, `ownerReferences`, `finalizers`) are atomic for field ownership.
//!
//! Tokens are never logged: the request log keeps methods, paths and status codes only.

mod apply;
mod cluster;
mod discovery;
mod errors;
mod objects;
mod selector;
mod token;
mod validation;

use axum::http::{HeaderMap, Method, header};

use crate::App;
use crate::http::{ApiError, ApiResult, Request};

pub use cluster::{
    ClusterAccess, NO_ISSUER, STANDALONE, aks_access, aks_guid, attach_aks, detach_aks, emptied,
    new_standalone_cluster, standalone,
};

/// Kubernetes timestamps (`metav1.Time`): RFC 3339, whole seconds.
pub(crate) fn kube_time(ms: u64) -> String {
    let full = crate::state::rfc3339(ms);
    match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full,
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum User {
    /// The static admin token: user `admin`, group `system:masters`.
    Admin,
    /// The static reader token: user `reader`.
    Reader,
    /// A token the cluster minted for one of its service accounts.
    ServiceAccount { namespace: String, name: String },
    /// No credentials.
    Anonymous,
}

impl User {
    pub(crate) fn name(&self) -> String {
        match self {
            User::Admin => "admin".into(),
            User::Reader => "reader".into(),
            User::ServiceAccount { namespace, name } => {
                format!("system:serviceaccount:{namespace}:{name}")
            }
            User::Anonymous => "system:anonymous".into(),
        }
    }
}

/// Constant-time comparison (the tokens are secrets).
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn authenticate(app: &App, view: &cluster::View, headers: &HeaderMap) -> Result<User, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(User::Anonymous);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(errors::unauthorized)?;
    if same(token, &view.admin_token) {
        return Ok(User::Admin);
    }
    if same(token, &view.reader_token) {
        return Ok(User::Reader);
    }
    token::authenticate(app, view, token).ok_or_else(errors::unauthorized)
}

/// The request as the authorizer sees it (`k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Attributes {
    pub resource_request: bool,
    pub verb: String,
    /// The path under the cluster's API base.
    pub path: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// What follows the subresource (never served).
    pub extra: bool,
}

fn truthy(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1" | "t" | "T" | "TRUE" | "True"))
}

fn attributes(method: &Method, parts: &[String], request: &Request) -> Attributes {
    let mut a = Attributes {
        path: format!("/{}", parts.join("/")),
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let is_api = matches!(parts.first().map(String::as_str), Some("api"));
    let is_apis = matches!(parts.first().map(String::as_str), Some("apis"));
    if parts.len() < 3 || !(is_api || is_apis) || (is_apis && parts.len() < 4) {
        return a;
    }
    let mut rest = &parts[1..];
    if is_apis {
        a.api_group = rest[0].clone();
        rest = &rest[1..];
    }
    a.resource_request = true;
    a.api_version = rest[0].clone();
    rest = &rest[1..];
    a.verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .into();
    if rest.first().map(String::as_str) == Some("namespaces") && rest.len() > 1 {
        a.namespace = rest[1].clone();
        if rest.len() > 2 && !matches!(rest[2].as_str(), "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    if let Some(resource) = rest.first() {
        a.resource = resource.clone();
    }
    if let Some(name) = rest.get(1) {
        a.name = name.clone();
    }
    if let Some(subresource) = rest.get(2) {
        a.subresource = subresource.clone();
    }
    a.extra = rest.len() > 3;
    if a.name.is_empty() && a.verb == "get" {
        a.verb = if truthy(request.query("watch")) {
            "watch".into()
        } else {
            "list".into()
        };
    }
    if a.name.is_empty() && a.verb == "delete" {
        a.verb = "deletecollection".into();
    }
    a
}

/// `forbiddenMessage` of the authorizer.
fn forbidden(user: &User, a: &Attributes) -> ApiError {
    let user = user.name();
    if !a.resource_request {
        return errors::forbidden_path(&user, &a.verb, &a.path);
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let why = if a.namespace.is_empty() {
        format!(
            "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" at the cluster scope",
            a.verb, a.api_group
        )
    } else {
        format!(
            "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" in the namespace \"{}\"",
            a.verb, a.api_group, a.namespace
        )
    };
    let qualified = if a.api_group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.api_group)
    };
    errors::forbidden(&qualified, &a.name, &why)
}

/// Non-resource URLs of the default cluster roles: `system:public-info-viewer` and (bound to
/// everyone in the tests' clusters, as managed clusters do) `system:service-account-issuer-discovery`
/// for all; `system:discovery` for authenticated users.
fn path_allowed(user: &User, a: &Attributes) -> bool {
    if a.verb != "get" {
        return false;
    }
    let path = a.path.as_str();
    let public = matches!(
        path,
        "/healthz"
            | "/livez"
            | "/readyz"
            | "/version"
            | "/version/"
            | "/.well-known/openid-configuration"
            | "/.well-known/openid-configuration/"
            | "/openid/v1/jwks"
            | "/openid/v1/jwks/"
    );
    let discovery = matches!(path, "/api" | "/apis" | "/openapi")
        || path.starts_with("/api/")
        || path.starts_with("/apis/")
        || path.starts_with("/openapi/");
    public || (*user != User::Anonymous && discovery)
}

fn authorize(user: &User, a: &Attributes) -> Result<(), ApiError> {
    let allowed = match user {
        User::Admin => true,
        _ if !a.resource_request => path_allowed(user, a),
        User::Reader => {
            a.api_group.is_empty()
                && a.subresource.is_empty()
                && matches!(a.resource.as_str(), "namespaces" | "serviceaccounts")
                && matches!(a.verb.as_str(), "get" | "list" | "watch")
        }
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(forbidden(user, a))
    }
}

/// Everything a handler needs.
pub(crate) struct Call<'a> {
    pub app: &'a App,
    pub request: &'a Request,
    pub view: &'a cluster::View,
    pub attributes: &'a Attributes,
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let segments = request.segments.clone();
    match segments.first().map(String::as_str) {
        Some("oidc") => token::aks_issuer(app, &request, &segments[1..]),
        Some("k8s") if segments.len() >= 2 => {
            let id = &segments[1];
            if id == STANDALONE {
                standalone(app).map_err(ApiError::from)?;
            }
            let Some(view) = app.store.read(|s| cluster::view(s, &app.base_url, id)) else {
                return Err(errors::no_such_resource());
            };
            let user = authenticate(app, &view, &request.headers)?;
            let attributes = attributes(&request.method, &segments[2..], &request);
            authorize(&user, &attributes)?;
            let call = Call {
                app,
                request: &request,
                view: &view,
                attributes: &attributes,
            };
            if attributes.resource_request {
                objects::handle(&call)
            } else {
                discovery::handle(&call, &segments[2..])
            }
        }
        _ => Err(errors::no_such_resource()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: &[(&str, &str)]) -> Attributes {
        let parts: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let request = Request {
            method: method.clone(),
            segments: parts.clone(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: HeaderMap::new(),
            body: Default::default(),
            base_url: String::new(),
            request_id: String::new(),
            caller: None,
        };
        attributes(&method, &parts, &request)
    }

    #[test]
    fn requests_are_read_like_requestinfo() {
        let a = attrs(Method::GET, "/api/v1/namespaces", &[]);
        assert!(a.resource_request);
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("list", "namespaces", "")
        );
        let a = attrs(Method::DELETE, "/api/v1/namespaces/x", &[]);
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("delete", "x", "x")
        );
        let a = attrs(
            Method::POST,
            "/api/v1/namespaces/ns/serviceaccounts/api/token",
            &[],
        );
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.name.as_str(),
                a.subresource.as_str(),
                a.namespace.as_str()
            ),
            ("create", "serviceaccounts", "api", "token", "ns")
        );
        let a = attrs(Method::GET, "/api/v1/serviceaccounts", &[("watch", "true")]);
        assert_eq!(a.verb, "watch");
        assert!(!attrs(Method::GET, "/api/v1", &[]).resource_request);
        assert!(!attrs(Method::GET, "/apis/apps/v1", &[]).resource_request);
        assert!(attrs(Method::GET, "/apis/apps/v1/deployments", &[]).resource_request);
    }

    #[test]
    fn the_reader_reads_and_nothing_else() {
        let reader = User::Reader;
        assert!(
            authorize(
                &reader,
                &attrs(Method::GET, "/api/v1/namespaces/ns/serviceaccounts", &[])
            )
            .is_ok()
        );
        let denied = authorize(
            &reader,
            &attrs(
                Method::PATCH,
                "/api/v1/namespaces/ns/serviceaccounts/api",
                &[],
            ),
        )
        .unwrap_err();
        let ApiError::Kube { message, .. } = denied else {
            unreachable!()
        };
        assert_eq!(
            message,
            "serviceaccounts \"api\" is forbidden: User \"reader\" cannot patch resource \"serviceaccounts\" in API group \"\" in the namespace \"ns\""
        );
        let ApiError::Kube { message, .. } =
            authorize(&User::Anonymous, &attrs(Method::GET, "/api", &[])).unwrap_err()
        else {
            unreachable!()
        };
        assert_eq!(
            message,
            "forbidden: User \"system:anonymous\" cannot get path \"/api\""
        );
        assert!(authorize(&User::Anonymous, &attrs(Method::GET, "/version", &[])).is_ok());
        assert!(authorize(&reader, &attrs(Method::GET, "/api/v1", &[])).is_ok());
    }

    #[test]
    fn times_have_whole_seconds() {
        assert_eq!(kube_time(1_764_000_000_123), "2025-11-24T16:00:00Z");
    }
}
