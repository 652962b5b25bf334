//! The Entra token endpoint and its OIDC metadata. (Being built.)

use axum::http::StatusCode;

use crate::App;
use crate::http::{ApiError, ApiResult, Request};

pub async fn handle(_app: &App, request: Request) -> ApiResult {
    Err(ApiError::oauth(
        StatusCode::NOT_FOUND,
        "invalid_request",
        900_561,
        format!("{} {} is not emulated yet.", request.method, request.path()),
    ))
}
