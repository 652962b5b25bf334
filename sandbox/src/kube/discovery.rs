//! The paths that are not API resources: version, health, API discovery, the issuer documents.
//!
//! Shapes: `k8s.io/apimachinery/pkg/version.Info`, `metav1.APIVersions`, `metav1.APIResourceList`
//! and `metav1.APIGroupList`, as the real kube-apiserver v1.34 serves them (the resource entries
//! are copied from its `/api/v1`).

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Call, errors, token};
use crate::http::{ApiResult, json_response};

fn text(status: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn version(version: &str) -> Value {
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("0");
    json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": minor.parse::<u32>().map_or_else(|_| minor.to_string(), |m| m.saturating_sub(1).to_string()),
        "gitVersion": format!("v{version}"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace", "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"], "storageVersionHash": "Q3oi5N2YM8M="},
            {"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]},
            {"name": "namespaces/status", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["get", "patch", "update"]},
            {"name": "serviceaccounts", "singularName": "serviceaccount", "namespaced": true, "kind": "ServiceAccount", "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"], "shortNames": ["sa"], "storageVersionHash": "pbx9ZvyFpBE="},
            {"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]},
        ],
    })
}

pub fn handle(call: &Call<'_>, parts: &[String]) -> ApiResult {
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let get = call.request.method == axum::http::Method::GET;
    match parts.as_slice() {
        [".well-known", "openid-configuration"] if get => {
            token::discovery(call.view, call.request, true)
        }
        ["openid", "v1", "jwks"] if get => token::jwks(call.app, call.view, call.request, true),
        _ if !get => Err(errors::method_not_allowed()),
        [] => Ok(json_response(
            StatusCode::OK,
            &json!({ "paths": ["/.well-known/openid-configuration", "/api", "/api/v1", "/apis", "/healthz", "/livez", "/openid/v1/jwks", "/readyz", "/version"] }),
        )),
        ["version"] => Ok(json_response(StatusCode::OK, &version(&call.view.version))),
        ["healthz"] | ["livez"] | ["readyz"] => Ok(text(StatusCode::OK, "ok")),
        ["api"] => {
            let host = call
                .request
                .base_url
                .split_once("://")
                .map_or(call.request.base_url.as_str(), |(_, h)| h);
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
                }),
            ))
        }
        ["api", "v1"] => Ok(json_response(StatusCode::OK, &resources())),
        ["apis"] => Ok(json_response(
            StatusCode::OK,
            &json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": [] }),
        )),
        ["api", ..] | ["apis", ..] => Err(errors::no_such_resource()),
        _ => Ok(text(StatusCode::NOT_FOUND, "404 page not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_like_version_info() {
        let v = version("1.34.0");
        assert_eq!(
            (
                v["major"].as_str(),
                v["minor"].as_str(),
                v["gitVersion"].as_str()
            ),
            (Some("1"), Some("34"), Some("v1.34.0"))
        );
        assert_eq!(v["minCompatibilityMinor"], "33");
    }
}
