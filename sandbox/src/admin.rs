//! The sandbox's own endpoints (no authentication; loopback only): the request log and
//! counters, the faults switched at run time, reset and seed, and the standalone cluster's
//! kubeconfig.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::http::{ApiError, ApiResult, Request, json_response};
use crate::{App, Faults};

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let path: Vec<String> = request
        .segments
        .iter()
        .skip(1)
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match (&request.method, path.as_slice()) {
        (&Method::GET, ["requests"]) => {
            Ok(json_response(StatusCode::OK, &json!(app.log.entries())))
        }
        (&Method::DELETE, ["requests"]) => {
            app.log.clear();
            Ok(crate::http::empty(StatusCode::NO_CONTENT))
        }
        (&Method::GET, ["counters"]) => {
            Ok(json_response(StatusCode::OK, &json!(app.log.counters())))
        }
        (&Method::GET, ["faults"]) => Ok(json_response(StatusCode::OK, &json!(app.faults()))),
        (&Method::PUT, ["faults"]) => {
            let faults: Faults = serde_json::from_slice(&request.body).map_err(|e| {
                ApiError::arm(
                    StatusCode::BAD_REQUEST,
                    "InvalidFaults",
                    format!("the faults document is not valid: {e}"),
                )
            })?;
            app.set_faults(faults);
            Ok(json_response(StatusCode::OK, &json!(app.faults())))
        }
        (&Method::POST, ["reset"]) => {
            let fresh = app.store.read(|s| s.reset());
            app.store.replace(fresh).map_err(ApiError::from)?;
            Ok(crate::http::empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["seed"]) => {
            let seed: crate::seed::Seed = serde_json::from_slice(&request.body).map_err(|e| {
                ApiError::arm(
                    StatusCode::BAD_REQUEST,
                    "InvalidSeed",
                    format!("the seed is not valid: {e}"),
                )
            })?;
            let added = app.store.write(|s| {
                crate::seed::apply(s, &seed, &app.base_url)
                    .map_err(|e| ApiError::arm(StatusCode::BAD_REQUEST, "InvalidSeed", e))
            })?;
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "resource_groups": added.resource_groups,
                    "identities": added.identities,
                    "federated_credentials": added.federated_credentials,
                    "role_assignments": added.role_assignments,
                    "applications": added.applications,
                "managed_clusters": added.managed_clusters,
                }),
            ))
        }
        (&Method::GET, ["health"]) => Ok(json_response(StatusCode::OK, &json!({ "status": "ok" }))),
        // The standalone cluster's kubeconfig (admin token): `--sandbox` commands that run
        // against a running `wiform sandbox serve` reach clusters that are not AKS (an explicit
        // issuer) through it, as they reach AKS clusters through `listClusterUserCredential`.
        // Nothing new is exposed: these endpoints already reset and seed the whole tenant.
        (&Method::GET, ["kubeconfig"]) => {
            let cluster = crate::kube::standalone(app).map_err(ApiError::from)?;
            let kubeconfig = cluster.kubeconfig(
                crate::kube::STANDALONE,
                "sandbox-admin",
                &cluster.admin_token,
            );
            let mut response = axum::response::Response::new(axum::body::Body::from(kubeconfig));
            response.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/yaml"),
            );
            Ok(response)
        }
        _ => Err(ApiError::arm(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("no sandbox endpoint {} {}", request.method, request.path()),
        )),
    }
}
