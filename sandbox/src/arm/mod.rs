//! Azure Resource Manager: routing by path (ARM paths are case-insensitive), subscription
//! checks, and the caller's Azure RBAC rights.

pub mod authorization;
pub mod containers;
pub mod identities;
pub mod resource_groups;

use axum::http::StatusCode;

use crate::App;
use crate::http::{ApiError, ApiResult, Request};

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let lower: Vec<String> = request
        .segments
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let s: Vec<&str> = lower.iter().map(String::as_str).collect();

    // Role definitions and assignments hang off any scope: `{scope}/providers/Microsoft.Authorization/{collection}[/{name}]`.
    if let Some(at) = s
        .windows(2)
        .rposition(|w| w == ["providers", "microsoft.authorization"])
        && matches!(
            s.get(at + 2),
            Some(&"roleassignments") | Some(&"roledefinitions")
        )
        && s.len() <= at + 4
    {
        let scope = format!("/{}", request.segments[..at].join("/"));
        check_scope_exists(app, &request, at)?;
        let collection = s[at + 2].to_string();
        let name = request.segments.get(at + 3).cloned();
        return authorization::handle(app, request, scope, &collection, name).await;
    }

    match s.as_slice() {
        ["subscriptions"] => subscriptions(app, &request),
        ["subscriptions", _, ..] => {
            check_subscription(app, &request.segments[1])?;
            match &s[2..] {
                [] => subscription(app, &request),
                ["resourcegroups", ..] => resource_groups::handle(app, request).await,
                [
                    "providers",
                    "microsoft.managedidentity",
                    "userassignedidentities",
                ] => identities::handle(app, request).await,
                ["providers", "microsoft.containerservice", ..] => {
                    containers::handle(app, request).await
                }
                ["operationresults", _] => resource_groups::operation_result(app, &request),
                _ => Err(not_found(&request)),
            }
        }
        _ => Err(not_found(&request)),
    }
}

fn not_found(request: &Request) -> ApiError {
    ApiError::arm(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The requested path '{}' was not found.", request.path()),
    )
}

/// 405 for a method a resource does not support.
pub fn method_not_allowed(request: &Request) -> ApiError {
    ApiError::arm(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "The method '{}' is not allowed on '{}'.",
            request.method,
            request.path()
        ),
    )
}

/// ARM answers for unknown subscriptions before anything else.
pub fn check_subscription(app: &App, subscription: &str) -> Result<(), ApiError> {
    if app.store.read(|s| {
        s.subscriptions
            .iter()
            .any(|x| x.eq_ignore_ascii_case(subscription))
    }) {
        Ok(())
    } else {
        Err(ApiError::arm(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            format!("The subscription '{subscription}' could not be found."),
        ))
    }
}

/// The subscription and resource group of a scope must exist (resources below a group are not
/// required to: role assignments may target resources the sandbox does not model).
fn check_scope_exists(app: &App, request: &Request, scope_len: usize) -> Result<(), ApiError> {
    let scope = &request.segments[..scope_len];
    if let [s, sub, rest @ ..] = scope
        && s.eq_ignore_ascii_case("subscriptions")
    {
        check_subscription(app, sub)?;
        if let [rg, name, ..] = rest
            && rg.eq_ignore_ascii_case("resourcegroups")
        {
            resource_groups::require(app, sub, name)?;
        }
    }
    Ok(())
}

/// Azure RBAC for the caller on `scope`.
pub fn require(app: &App, request: &Request, action: &str, scope: &str) -> Result<(), ApiError> {
    let Some(caller) = &request.caller else {
        return Err(ApiError::arm(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed.",
        ));
    };
    app.store
        .read(|state| crate::auth::authorize(state, caller, action, scope))
}

const SUBSCRIPTION_VERSIONS: &[&str] = &["2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01"];

fn subscription_json(app: &App, id: &str) -> serde_json::Value {
    serde_json::json!({
        "id": format!("/subscriptions/{id}"),
        "subscriptionId": id,
        "tenantId": app.tenant_id(),
        "displayName": "wiform sandbox",
        "state": "Enabled",
        "subscriptionPolicies": { "locationPlacementId": "Public_2014-09-01", "quotaId": "Sandbox", "spendingLimit": "Off" },
        "authorizationSource": "RoleBased",
    })
}

/// `GET /subscriptions` (Microsoft.Resources subscriptions, `Subscriptions_List`).
fn subscriptions(app: &App, request: &Request) -> ApiResult {
    crate::http::check_api_version(request, "subscriptions", SUBSCRIPTION_VERSIONS)?;
    let ids = app.store.read(|s| s.subscriptions.clone());
    let items = ids.iter().map(|id| subscription_json(app, id)).collect();
    Ok(crate::http::page(
        request,
        items,
        app.options.page_size,
        crate::http::Api::Arm,
    ))
}

/// `GET /subscriptions/{id}` (`Subscriptions_Get`).
fn subscription(app: &App, request: &Request) -> ApiResult {
    crate::http::check_api_version(request, "subscriptions", SUBSCRIPTION_VERSIONS)?;
    if request.method != axum::http::Method::GET {
        return Err(ApiError::arm(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The requested method is not allowed on a subscription.",
        ));
    }
    Ok(crate::http::json_response(
        StatusCode::OK,
        &subscription_json(app, &request.segments[1]),
    ))
}
