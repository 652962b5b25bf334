//! Microsoft.Resources resource groups (spec: `specification/resources/resource-manager/
//! Microsoft.Resources/resources/stable/2025-04-01/resources.json`, `ResourceGroups_*`).
//! Names are case-insensitive; DELETE is a long-running operation that also removes what the
//! group holds.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use super::method_not_allowed;
use crate::App;
use crate::http::{
    Api, ApiError, ApiResult, Request, check_api_version, empty, json_response, page,
};
use crate::state::{Operation, ResourceGroup, StoreError, key, now_ms};

pub const API_VERSIONS: &[&str] = &[
    "2019-10-01",
    "2020-06-01",
    "2020-10-01",
    "2021-01-01",
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-01-01",
    "2025-03-01",
    "2025-04-01",
];
const TYPE: &str = "resourceGroups";

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::arm(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("The sandbox could not save its state: {e}"),
        )
    }
}

pub fn id(subscription: &str, name: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{name}")
}

fn to_json(rg: &ResourceGroup) -> Value {
    let mut v = json!({
        "id": rg.id,
        "name": rg.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": rg.location,
        "properties": { "provisioningState": "Succeeded" },
    });
    if !rg.tags.is_empty() {
        v["tags"] = json!(rg.tags);
    }
    if let Some(managed_by) = &rg.managed_by {
        v["managedBy"] = json!(managed_by);
    }
    v
}

/// 404 `ResourceGroupNotFound` unless the group exists.
pub fn require(app: &App, subscription: &str, name: &str) -> Result<ResourceGroup, ApiError> {
    app.store
        .read(|s| {
            s.resource_groups
                .get(&key(&id(subscription, name)))
                .cloned()
        })
        .ok_or_else(|| {
            ApiError::arm(
                StatusCode::NOT_FOUND,
                "ResourceGroupNotFound",
                format!("Resource group '{name}' could not be found."),
            )
        })
}

pub fn parse_tags(body: &Value) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Null => Ok((k.clone(), String::new())),
                other => Ok((k.clone(), other.to_string())),
            })
            .collect::<Result<BTreeMap<_, _>, ApiError>>()
            .map(Some),
        Some(_) => Err(ApiError::arm(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: 'tags' must be an object.",
        )),
    }
}

pub fn required_location(body: &Value) -> Result<String, ApiError> {
    match body.get("location").and_then(Value::as_str) {
        Some(l) if !l.trim().is_empty() => Ok(l.to_ascii_lowercase().replace(' ', "")),
        _ => Err(ApiError::arm(
            StatusCode::BAD_REQUEST,
            "LocationRequired",
            "The location property is required for this definition.",
        )),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 90
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    // Paths below a group belong to other providers, which check their own api-versions.
    if request.segments.len() <= 4 {
        check_api_version(&request, TYPE, API_VERSIONS)?;
    }
    let subscription = request.segments[1].clone();
    let scope = format!("/subscriptions/{subscription}");
    match request.segments.len() {
        3 => {
            if request.method != Method::GET {
                return Err(method_not_allowed(&request));
            }
            super::require(
                app,
                &request,
                "Microsoft.Resources/subscriptions/resourceGroups/read",
                &scope,
            )?;
            let filter = tag_filter(request.query("$filter"));
            let items = app.store.read(|s| {
                s.resource_groups
                    .values()
                    .filter(|rg| rg.subscription_id.eq_ignore_ascii_case(&subscription))
                    .filter(|rg| {
                        filter.as_ref().is_none_or(|(k, v)| {
                            rg.tags
                                .get(k)
                                .is_some_and(|t| v.as_ref().is_none_or(|v| t == v))
                        })
                    })
                    .map(to_json)
                    .collect()
            });
            Ok(page(&request, items, app.options.page_size, Api::Arm))
        }
        4 => {
            let name = request.segments[3].clone();
            let rg_id = id(&subscription, &name);
            match request.method {
                Method::GET | Method::HEAD => {
                    super::require(
                        app,
                        &request,
                        "Microsoft.Resources/subscriptions/resourceGroups/read",
                        &rg_id,
                    )?;
                    let found = app
                        .store
                        .read(|s| s.resource_groups.get(&key(&rg_id)).cloned());
                    match (found, request.method == Method::HEAD) {
                        (Some(_), true) => Ok(empty(StatusCode::NO_CONTENT)),
                        (None, true) => Ok(empty(StatusCode::NOT_FOUND)),
                        (Some(rg), false) => Ok(json_response(StatusCode::OK, &to_json(&rg))),
                        (None, false) => Err(require(app, &subscription, &name).unwrap_err()),
                    }
                }
                Method::PUT => {
                    super::require(
                        app,
                        &request,
                        "Microsoft.Resources/subscriptions/resourceGroups/write",
                        &rg_id,
                    )?;
                    if !valid_name(&name) {
                        return Err(ApiError::arm(
                            StatusCode::BAD_REQUEST,
                            "InvalidResourceGroupName",
                            format!(
                                "Resource group name '{name}' is invalid. It can include alphanumeric, underscore, parentheses, hyphen, period (except at end), and Unicode characters that match the allowed characters."
                            ),
                        ));
                    }
                    let body = request.json(Api::Arm)?;
                    let location = required_location(&body)?;
                    let tags = parse_tags(&body)?.unwrap_or_default();
                    let managed_by = body
                        .get("managedBy")
                        .and_then(Value::as_str)
                        .map(String::from);
                    let (rg, created) = app.store.update(|s| {
                        let k = key(&rg_id);
                        let existing = s.resource_groups.get(&k).cloned();
                        if let Some(existing) = &existing
                            && existing.location != location
                        {
                            return Err(ApiError::arm(StatusCode::CONFLICT, "InvalidResourceGroupLocation", format!("Invalid resource group location '{location}'. The Resource group already exists in location '{}'.", existing.location)));
                        }
                        let rg = ResourceGroup {
                            // Keeps the name's first spelling, as ARM does.
                            id: existing.as_ref().map_or(rg_id.clone(), |e| e.id.clone()),
                            name: existing.as_ref().map_or(name.clone(), |e| e.name.clone()),
                            subscription_id: subscription.clone(),
                            location: location.clone(),
                            tags,
                            managed_by,
                        };
                        s.resource_groups.insert(k, rg.clone());
                        Ok((rg, existing.is_none()))
                    })?;
                    Ok(json_response(
                        if created {
                            StatusCode::CREATED
                        } else {
                            StatusCode::OK
                        },
                        &to_json(&rg),
                    ))
                }
                Method::PATCH => {
                    super::require(
                        app,
                        &request,
                        "Microsoft.Resources/subscriptions/resourceGroups/write",
                        &rg_id,
                    )?;
                    require(app, &subscription, &name)?;
                    let body = request.json(Api::Arm)?;
                    let tags = parse_tags(&body)?;
                    let rg = app.store.update(|s| {
                        let rg = s
                            .resource_groups
                            .get_mut(&key(&rg_id))
                            .ok_or_else(|| require(app, &subscription, &name).unwrap_err())?;
                        if let Some(tags) = tags {
                            rg.tags = tags;
                        }
                        Ok::<_, ApiError>(rg.clone())
                    })?;
                    Ok(json_response(StatusCode::OK, &to_json(&rg)))
                }
                Method::DELETE => {
                    super::require(
                        app,
                        &request,
                        "Microsoft.Resources/subscriptions/resourceGroups/delete",
                        &rg_id,
                    )?;
                    delete(app, &request, &subscription, &rg_id)
                }
                _ => Err(method_not_allowed(&request)),
            }
        }
        _ => {
            // `/subscriptions/{s}/resourceGroups/{rg}/providers/...`
            let name = request.segments[3].clone();
            require(app, &subscription, &name)?;
            let lower: Vec<String> = request
                .segments
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect();
            match lower
                .get(4..7)
                .map(|w| w.iter().map(String::as_str).collect::<Vec<_>>())
                .as_deref()
            {
                Some(
                    [
                        "providers",
                        "microsoft.managedidentity",
                        "userassignedidentities",
                    ],
                ) => super::identities::handle(app, request).await,
                Some(["providers", "microsoft.containerservice", _]) => {
                    super::containers::handle(app, request).await
                }
                _ => Err(ApiError::arm(
                    StatusCode::NOT_FOUND,
                    "InvalidResourceType",
                    format!(
                        "The resource type could not be found for the path '{}'.",
                        request.path()
                    ),
                )),
            }
        }
    }
}

/// `$filter=tagName eq 'k' and tagValue eq 'v'` (ResourceGroups_List).
fn tag_filter(filter: Option<&str>) -> Option<(String, Option<String>)> {
    let filter = filter?;
    let quoted = |field: &str| {
        let at = filter.find(field)? + field.len();
        let rest = filter[at..]
            .trim_start()
            .strip_prefix("eq")?
            .trim_start()
            .strip_prefix('\'')?;
        Some(rest[..rest.find('\'')?].to_string())
    };
    Some((quoted("tagName")?, quoted("tagValue")))
}

/// DELETE of a resource group removes it and everything in it, then reports through an
/// operation result (202 + `Location`, as ARM does for `ResourceGroups_Delete`).
fn delete(app: &App, request: &Request, subscription: &str, rg_id: &str) -> ApiResult {
    let prefix = format!("{}/", key(rg_id));
    let polls = app.faults().lro_polls;
    let operation = uuid::Uuid::new_v4().simple().to_string();
    let existed = app.store.update(|s| {
        let existed = s.resource_groups.remove(&key(rg_id)).is_some();
        if existed {
            let gone: Vec<String> = s
                .identities
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            for identity in &gone {
                if let Some(removed) = s.identities.remove(identity) {
                    s.service_principals.remove(&removed.principal_id);
                }
            }
            s.federated_credentials
                .retain(|k, _| !k.starts_with(&prefix));
            let clusters: Vec<String> = s
                .managed_clusters
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            for cluster in clusters {
                s.managed_clusters.remove(&cluster);
                crate::kube::detach_aks(s, &cluster);
            }
            s.role_assignments.retain(|_, a| {
                !(key(&a.scope) == key(rg_id) || key(&a.scope).starts_with(&prefix))
            });
            s.operations.insert(
                operation.clone(),
                Operation {
                    id: operation.clone(),
                    resource_key: key(rg_id),
                    status: "Succeeded".into(),
                    started_ms: now_ms(),
                    polls_left: polls,
                    ended_ms: Some(now_ms()),
                    error: None,
                },
            );
        }
        Ok::<_, ApiError>(existed)
    })?;
    if !existed {
        return Ok(empty(StatusCode::NO_CONTENT));
    }
    let mut response = empty(StatusCode::ACCEPTED);
    let version = request.query("api-version").unwrap_or("2021-04-01");
    let location = format!(
        "{}/subscriptions/{subscription}/operationresults/{operation}?api-version={version}",
        request.base_url
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert("Location", value);
    }
    response
        .headers_mut()
        .insert("Retry-After", HeaderValue::from_static("1"));
    Ok(response)
}

/// `GET /subscriptions/{s}/operationresults/{id}`: 202 while running, 200 when done.
pub fn operation_result(app: &App, request: &Request) -> ApiResult {
    let id = request.segments[3].clone();
    let done = app.store.update(|s| {
        let Some(operation) = s.operations.get_mut(&id) else {
            return Err(ApiError::arm(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("The operation '{id}' was not found."),
            ));
        };
        if operation.polls_left > 0 {
            operation.polls_left -= 1;
            return Ok(false);
        }
        Ok(true)
    })?;
    if done {
        Ok(empty(StatusCode::OK))
    } else {
        let mut response = empty(StatusCode::ACCEPTED);
        response
            .headers_mut()
            .insert("Retry-After", HeaderValue::from_static("1"));
        if let Ok(value) = HeaderValue::from_str(&format!(
            "{}{}?{}",
            request.base_url,
            request.path(),
            request
                .query
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        )) {
            response.headers_mut().insert("Location", value);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_filters_parse() {
        assert_eq!(
            tag_filter(Some("tagName eq 'wiform-stack' and tagValue eq 'x'")),
            Some(("wiform-stack".into(), Some("x".into())))
        );
        assert_eq!(tag_filter(Some("tagName eq 'a'")), Some(("a".into(), None)));
        assert_eq!(tag_filter(None), None);
    }
}
