//! The Kubernetes API subset of emulated clusters. (Being built.)

use axum::http::StatusCode;

use crate::App;
use crate::http::{ApiError, ApiResult, Request};

pub async fn handle(_app: &App, request: Request) -> ApiResult {
    Err(ApiError::kube(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!(
            "the server could not find the requested resource ({} {})",
            request.method,
            request.path()
        ),
    ))
}
