//! Service-account tokens: TokenRequest (`POST …/serviceaccounts/{name}/token`), their
//! verification when they come back as bearer tokens, and the issuer's OIDC documents.
//!
//! Claims as `k8s.io/kubernetes/pkg/serviceaccount/claims.go` (`Claims`) builds them and the
//! "Managing Service Accounts" / "Service account issuer discovery" docs describe them: `iss`,
//! `sub` = `system:serviceaccount:NS:NAME`, `aud` (default: the API audiences, i.e. the issuer),
//! `iat`, `nbf`, `exp` = `iat` + `expirationSeconds` (default 3600, at least 600, at most 2^32:
//! `pkg/apis/authentication/validation`), `jti`, and `kubernetes.io` = `{namespace,
//! serviceaccount: {name, uid}}`; header `{"alg":"RS256","kid":…}`. Discovery: the fields
//! `pkg/serviceaccount/openidmetadata.go` serves.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Value, json};

use super::cluster::{self, View};
use super::errors::{self, FieldError};
use super::{Call, User, kube_time, objects};
use crate::App;
use crate::http::{ApiError, ApiResult, Request, json_response};
use crate::state::now_ms;

const DEFAULT_EXPIRATION_S: i64 = 3600;
const MIN_EXPIRATION_S: i64 = 600;
const MAX_EXPIRATION_S: i64 = 1 << 32;

/// A bearer token minted by this cluster for one of its service accounts (still existing, with
/// the same uid): that service account. `None`: not such a token (401).
pub fn authenticate(app: &App, view: &View, token: &str) -> Option<User> {
    let signer = app
        .store
        .read(|s| cluster::existing_signer(s, &view.id))?
        .ok()?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[view.issuer.as_str()]);
    validation.set_audience(&[view.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(token, &signer.decoding, &validation)
        .ok()?
        .claims;
    let private = claims.get("kubernetes.io")?;
    let namespace = private.get("namespace")?.as_str()?.to_string();
    let name = private
        .pointer("/serviceaccount/name")?
        .as_str()?
        .to_string();
    let uid = private.pointer("/serviceaccount/uid")?.as_str()?;
    let current = app.store.read(|s| {
        s.kube_clusters
            .get(&view.id)?
            .service_accounts
            .get(&format!("{namespace}/{name}"))
            .and_then(|sa| sa.object.pointer("/metadata/uid").cloned())
    })?;
    (current == uid).then_some(User::ServiceAccount { namespace, name })
}

fn cannot_handle(kind: &str, version: &str, why: &str) -> ApiError {
    errors::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a TokenRequest: {why}"
    ))
}

fn invalid(errors: &[FieldError]) -> ApiError {
    errors::invalid("TokenRequest", "authentication.k8s.io", "", errors)
}

/// `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`.
pub fn request(call: &Call<'_>) -> ApiResult {
    let request = call.request;
    let a = call.attributes;
    if request.method != Method::POST {
        return Err(errors::method_not_allowed());
    }
    let body: Value = if request.body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&request.body).map_err(|e| {
            errors::bad_request(format!(
                "the object provided is unrecognized (must be of type TokenRequest): couldn't get version/kind; json parse error: {e}"
            ))
        })?
    };
    let Some(fields) = body.as_object() else {
        return Err(errors::bad_request(
            "the object provided is unrecognized (must be of type TokenRequest): couldn't get version/kind; json parse error: json: cannot unmarshal into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }",
        ));
    };
    let kind = fields.get("kind").and_then(Value::as_str).unwrap_or("");
    // The URL's group version fills in a missing one.
    let api_version = fields
        .get("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .unwrap_or("authentication.k8s.io/v1");
    if !kind.is_empty() && kind != "TokenRequest" {
        return Err(cannot_handle(
            kind,
            api_version.rsplit('/').next().unwrap_or(""),
            &format!(
                "no kind \"{kind}\" is registered for version \"{api_version}\" in scheme \"pkg/runtime/scheme.go:110\""
            ),
        ));
    }
    let spec = match fields.get("spec") {
        None | Some(Value::Null) => json!({}),
        Some(spec @ Value::Object(_)) => spec.clone(),
        Some(_) => {
            return Err(cannot_handle(
                "TokenRequest",
                "v1",
                "json: cannot unmarshal into Go struct field TokenRequest.spec of type v1.TokenRequestSpec",
            ));
        }
    };
    let audiences: Vec<String> = match spec.get("audiences") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(_) => {
            return Err(cannot_handle(
                "TokenRequest",
                "v1",
                "json: cannot unmarshal into Go struct field TokenRequestSpec.spec.audiences of type []string",
            ));
        }
    };
    let audiences = if audiences.is_empty() {
        vec![call.view.issuer.clone()]
    } else {
        audiences
    };
    let expiration = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_S,
        Some(v) => v.as_i64().ok_or_else(|| {
            cannot_handle(
                "TokenRequest",
                "v1",
                "json: cannot unmarshal into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64",
            )
        })?,
    };
    if expiration < MIN_EXPIRATION_S {
        return Err(invalid(&[FieldError::invalid(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration less than 10 minutes",
        )]));
    }
    if expiration > MAX_EXPIRATION_S {
        return Err(invalid(&[FieldError::invalid(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration larger than 2^32 seconds",
        )]));
    }

    let account = objects::service_account(call, &a.namespace, &a.name)
        .ok_or_else(|| errors::not_found("serviceaccounts", &a.name))?;
    // A token bound to an object needs that object; this emulator has no pods, secrets or nodes.
    if let Some(bound) = spec.get("boundObjectRef").filter(|v| !v.is_null()) {
        let bound_name = bound.get("name").and_then(Value::as_str).unwrap_or("");
        return Err(
            match bound.get("kind").and_then(Value::as_str).unwrap_or("") {
                "Pod" => errors::not_found("pods", bound_name),
                "Secret" => errors::not_found("secrets", bound_name),
                "Node" => errors::not_found("nodes", bound_name),
                other => invalid(&[FieldError::not_supported(
                    "spec.boundObjectRef.kind",
                    &format!("{other:?}"),
                    &["Pod", "Node", "Secret"],
                )]),
            },
        );
    }
    let uid = account
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();

    let signer = cluster::signer(call.app, &call.view.id)?;
    let now_ms = now_ms();
    let iat = (now_ms / 1000) as i64;
    let exp = iat + expiration;
    let claims = json!({
        "aud": audiences,
        "exp": exp,
        "iat": iat,
        "iss": call.view.issuer,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": {
            "namespace": a.namespace,
            "serviceaccount": { "name": a.name, "uid": uid },
        },
        "nbf": iat,
        "sub": format!("system:serviceaccount:{}:{}", a.namespace, a.name),
    });
    let mut header = Header::new(Algorithm::RS256);
    header.typ = None;
    header.kid = Some(signer.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, &signer.encoding).map_err(|e| {
        ApiError::kube(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("failed to sign the token: {e}"),
        )
    })?;

    // The field manager sees the request after defaulting (expirationSeconds) and before the
    // handler fills in the audiences.
    let mut owned = serde_json::Map::new();
    if spec
        .get("audiences")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        owned.insert("f:audiences".into(), json!({}));
    }
    owned.insert("f:expirationSeconds".into(), json!({}));
    let mut metadata = json!({
        "name": a.name,
        "namespace": a.namespace,
        "uid": uid,
        "creationTimestamp": kube_time(now_ms),
    });
    {
        metadata["managedFields"] = json!([{
            "manager": objects::manager(request)?,
            "operation": "Update",
            "apiVersion": "authentication.k8s.io/v1",
            "time": kube_time(now_ms),
            "fieldsType": "FieldsV1",
            "fieldsV1": { "f:spec": owned },
            "subresource": "token",
        }]);
    }
    Ok(json_response(
        StatusCode::CREATED,
        &json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": metadata,
            "spec": { "audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": null },
            "status": { "token": token, "expirationTimestamp": kube_time(exp as u64 * 1000) },
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// OIDC discovery
// ---------------------------------------------------------------------------------------------

/// Whether `Accept` allows `media` (kube-apiserver negotiates exactly: `application/*` is not
/// enough; no header or `*/*` is).
fn accepts(request: &Request, media: &str) -> bool {
    let Some(accept) = request
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|range| {
        let range = range.split(';').next().unwrap_or("").trim();
        range == "*/*" || range.eq_ignore_ascii_case(media)
    })
}

fn public(mut response: Response, content_type: &'static str) -> Response {
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// `/.well-known/openid-configuration` of the issuer.
pub fn discovery(view: &View, request: &Request, negotiate: bool) -> ApiResult {
    if negotiate && !accepts(request, "application/json") {
        return Err(errors::not_acceptable("application/json"));
    }
    let body = json!({
        "issuer": view.issuer,
        "jwks_uri": format!("{}/openid/v1/jwks", view.issuer.trim_end_matches('/')),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    Ok(public(
        json_response(StatusCode::OK, &body),
        "application/json",
    ))
}

/// `/openid/v1/jwks`: the cluster's signing key (`application/jwk-set+json` on the API server,
/// as kube-apiserver serves it).
pub fn jwks(app: &App, view: &View, request: &Request, negotiate: bool) -> ApiResult {
    if negotiate && !accepts(request, "application/jwk-set+json") {
        return Err(errors::not_acceptable("application/jwk-set+json"));
    }
    let signer = cluster::signer(app, &view.id)?;
    Ok(public(
        json_response(StatusCode::OK, &json!({ "keys": [signer.jwk] })),
        if negotiate {
            "application/jwk-set+json"
        } else {
            "application/json"
        },
    ))
}

/// `/oidc/{tenant}/{guid}/…`: an AKS cluster's issuer, while its OIDC issuer is enabled.
pub fn aks_issuer(app: &App, request: &Request, parts: &[String]) -> ApiResult {
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (tenant, guid, rest) = match parts.as_slice() {
        [tenant, guid, rest @ ..] => (*tenant, *guid, rest),
        _ => return Err(errors::no_such_resource()),
    };
    let view = app
        .store
        .read(|s| {
            (s.tenant_id.eq_ignore_ascii_case(tenant))
                .then(|| cluster::view(s, &app.base_url, guid))
                .flatten()
        })
        .filter(|v| v.issuer_enabled && v.issuer.contains(&format!("/oidc/{tenant}/{guid}")))
        .ok_or_else(errors::no_such_resource)?;
    if request.method != Method::GET {
        return Err(errors::method_not_allowed());
    }
    match rest {
        [".well-known", "openid-configuration"] => discovery(&view, request, false),
        ["openid", "v1", "jwks"] => jwks(app, &view, request, false),
        _ => Err(errors::no_such_resource()),
    }
}
