//! Microsoft.Authorization: role definitions and role assignments at any scope. (Being built.)

use axum::http::StatusCode;

use crate::App;
use crate::http::{ApiError, ApiResult, Request};

pub async fn handle(
    _app: &App,
    request: Request,
    _scope: String,
    _collection: &str,
    _name: Option<String>,
) -> ApiResult {
    Err(ApiError::arm(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        format!("{} {} is not emulated yet", request.method, request.path()),
    ))
}
