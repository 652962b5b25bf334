//! Microsoft Graph v1.0: applications, service principals, and application federated identity
//! credentials. (Being built: answers 501 until then.)

use axum::http::StatusCode;

use crate::App;
use crate::http::{ApiError, ApiResult, Request};

pub async fn handle(_app: &App, request: Request) -> ApiResult {
    Err(ApiError::graph(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        format!("{} {} is not emulated yet", request.method, request.path()),
    ))
}
