//! Microsoft.ManagedIdentity user-assigned identities and their federated identity credentials
//! (spec: `specification/msi/resource-manager/Microsoft.ManagedIdentity/ManagedIdentity/stable/
//! 2024-11-30/ManagedIdentity.json` and `stable/2026-05-31`; limits from "Important
//! considerations and restrictions for federated identity credentials"). All operations are
//! synchronous; the spec defines no provisioningState on identities.

use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::App;
use crate::http::{
    Api, ApiError, ApiResult, Request, check_api_version, empty, json_response, page,
};
use crate::state::{FederatedCredential, ServicePrincipal, UserAssignedIdentity, key, now_ms};

pub const API_VERSIONS: &[&str] = &[
    "2015-08-31-preview",
    "2018-11-30",
    "2021-09-30-preview",
    "2022-01-31-preview",
    "2023-01-31",
    "2023-07-31-preview",
    "2024-11-30",
    "2025-01-31-preview",
    "2025-05-31-preview",
    "2026-04-30",
    "2026-05-31",
];
/// Federated credentials exist from 2022-01-31-preview on (GA in 2023-01-31).
pub const FIC_API_VERSIONS: &[&str] = &[
    "2022-01-31-preview",
    "2023-01-31",
    "2023-07-31-preview",
    "2024-11-30",
    "2025-01-31-preview",
    "2025-05-31-preview",
    "2026-04-30",
    "2026-05-31",
];
const TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
const FIC_TYPE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";
/// At most 20 federated identity credentials per identity.
pub const MAX_FICS: usize = 20;

pub fn id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourcegroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

fn identity_json(identity: &UserAssignedIdentity, api_version: &str) -> Value {
    let mut properties = json!({
        "tenantId": identity.tenant_id,
        "principalId": identity.principal_id,
        "clientId": identity.client_id,
    });
    // `isolationScope` appears from 2024-11-30 on.
    if api_version >= "2024-11-30" && !api_version.ends_with("-preview") {
        properties["isolationScope"] = json!("None");
    }
    json!({
        "id": identity.id,
        "name": identity.name,
        "type": TYPE,
        "location": identity.location,
        "tags": identity.tags,
        "properties": properties,
    })
}

fn fic_json(fic: &FederatedCredential) -> Value {
    json!({
        "id": fic.id,
        "name": fic.name,
        "type": FIC_TYPE,
        "properties": { "issuer": fic.issuer, "subject": fic.subject, "audiences": fic.audiences },
    })
}

fn not_found(resource_group: &str, kind: &str, name: &str) -> ApiError {
    ApiError::arm(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource '{kind}/{name}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// 3–128 characters; letters, digits, hyphens and underscores; starts with a letter or digit.
fn valid_identity_name(name: &str) -> bool {
    (3..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Spec pattern `^[a-zA-Z0-9]{1}[a-zA-Z0-9-_]{2,119}$`.
fn valid_fic_name(name: &str) -> bool {
    (3..=120).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::arm(StatusCode::BAD_REQUEST, "BadRequest", message)
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let seg = &request.segments;
    let subscription = seg[1].clone();
    let version = request.query("api-version").unwrap_or_default().to_string();
    // `/subscriptions/{s}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`
    if seg.len() == 5 {
        let scope = format!("/subscriptions/{subscription}");
        return list(app, &request, &scope, |i| {
            i.subscription_id.eq_ignore_ascii_case(&subscription)
        });
    }
    let resource_group = seg[3].clone();
    match seg.len() {
        7 => {
            let scope = format!("/subscriptions/{subscription}/resourceGroups/{resource_group}");
            let prefix = key(&format!("{scope}/providers/"));
            list(app, &request, &scope, |i| key(&i.id).starts_with(&prefix))
        }
        8 => {
            check_api_version(&request, TYPE, API_VERSIONS)?;
            identity(
                app,
                &request,
                &subscription,
                &resource_group,
                &seg[7],
                &version,
            )
            .await
        }
        9 | 10 if seg[8].eq_ignore_ascii_case("federatedIdentityCredentials") => {
            check_api_version(&request, FIC_TYPE, FIC_API_VERSIONS)?;
            federated_credentials(
                app,
                &request,
                &subscription,
                &resource_group,
                &seg[7],
                seg.get(9).cloned(),
            )
            .await
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

/// `UserAssignedIdentities_ListBySubscription` / `_ListByResourceGroup`: paged, no `$filter`.
fn list(
    app: &App,
    request: &Request,
    scope: &str,
    keep: impl Fn(&UserAssignedIdentity) -> bool,
) -> ApiResult {
    check_api_version(request, TYPE, API_VERSIONS)?;
    if request.method != Method::GET {
        return Err(ApiError::arm(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "Only GET lists identities.",
        ));
    }
    super::require(
        app,
        request,
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        scope,
    )?;
    let version = request.query("api-version").unwrap_or_default();
    let items = app.store.read(|s| {
        s.identities
            .values()
            .filter(|i| keep(i))
            .map(|i| identity_json(i, version))
            .collect()
    });
    Ok(page(request, items, app.options.page_size, Api::Arm))
}

async fn identity(
    app: &App,
    request: &Request,
    subscription: &str,
    resource_group: &str,
    name: &str,
    version: &str,
) -> ApiResult {
    let identity_id = id(subscription, resource_group, name);
    let k = key(&identity_id);
    match request.method {
        Method::GET => {
            super::require(
                app,
                request,
                "Microsoft.ManagedIdentity/userAssignedIdentities/read",
                &identity_id,
            )?;
            let found = app.store.read(|s| s.identities.get(&k).cloned());
            match found {
                Some(identity) => Ok(json_response(
                    StatusCode::OK,
                    &identity_json(&identity, version),
                )),
                None => Err(not_found(resource_group, TYPE, name)),
            }
        }
        Method::PUT | Method::PATCH => {
            super::require(
                app,
                request,
                "Microsoft.ManagedIdentity/userAssignedIdentities/write",
                &identity_id,
            )?;
            let body = request.json(Api::Arm)?;
            if !body.is_object() {
                return Err(ApiError::arm(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: expected an object.",
                ));
            }
            let tags = super::resource_groups::parse_tags(&body)?;
            let is_patch = request.method == Method::PATCH;
            let location = if is_patch {
                None
            } else {
                Some(super::resource_groups::required_location(&body)?)
            };
            if !valid_identity_name(name) {
                return Err(ApiError::arm(
                    StatusCode::BAD_REQUEST,
                    "InvalidResourceName",
                    format!(
                        "Resource name '{name}' is invalid. The name can be 3-128 characters long, must begin with a letter or number, and may contain letters, numbers, hyphens and underscores."
                    ),
                ));
            }
            let now = now_ms();
            let (identity, created) = app.store.update(|s| {
                let existing = s.identities.get(&k).cloned();
                match (existing, is_patch) {
                    (None, true) => Err(not_found(resource_group, TYPE, name)),
                    (Some(mut identity), _) => {
                        if let Some(location) = &location
                            && !identity.location.eq_ignore_ascii_case(location)
                        {
                            return Err(ApiError::arm(StatusCode::BAD_REQUEST, "LocationNotAvailableForResourceType", format!("The location of an existing identity cannot be changed from '{}' to '{location}'.", identity.location)));
                        }
                        if let Some(tags) = tags {
                            identity.tags = tags;
                        } else if !is_patch {
                            identity.tags.clear();
                        }
                        s.identities.insert(k.clone(), identity.clone());
                        Ok((identity, false))
                    }
                    (None, false) => {
                        let identity = UserAssignedIdentity {
                            id: identity_id.clone(),
                            name: name.to_string(),
                            subscription_id: subscription.to_string(),
                            resource_group: resource_group.to_string(),
                            location: location.clone().unwrap_or_default(),
                            tags: tags.unwrap_or_default(),
                            tenant_id: s.tenant_id.clone(),
                            principal_id: uuid::Uuid::new_v4().to_string(),
                            client_id: uuid::Uuid::new_v4().to_string(),
                            created_ms: now,
                        };
                        // Every managed identity has a service principal in the directory.
                        s.service_principals.insert(
                            identity.principal_id.clone(),
                            ServicePrincipal {
                                id: identity.principal_id.clone(),
                                app_id: identity.client_id.clone(),
                                display_name: name.to_string(),
                                service_principal_type: "ManagedIdentity".into(),
                                alternative_names: vec!["isExplicit=True".into(), identity_id.clone()],
                                created_ms: now,
                            },
                        );
                        s.identities.insert(k.clone(), identity.clone());
                        Ok((identity, true))
                    }
                }
            })?;
            Ok(json_response(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &identity_json(&identity, version),
            ))
        }
        Method::DELETE => {
            super::require(
                app,
                request,
                "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
                &identity_id,
            )?;
            let existed = app.store.update(|s| {
                let Some(identity) = s.identities.remove(&k) else {
                    return Ok::<_, ApiError>(false);
                };
                s.service_principals.remove(&identity.principal_id);
                s.federated_credentials.retain(|_, f| f.identity_key != k);
                Ok(true)
            })?;
            Ok(if existed {
                empty(StatusCode::OK)
            } else {
                empty(StatusCode::NO_CONTENT)
            })
        }
        _ => Err(ApiError::arm(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The method '{}' is not allowed.", request.method),
        )),
    }
}

/// Releases the per-identity write slot when a credential write ends, however it ends.
struct WriteSlot<'a> {
    app: &'a App,
    identity: String,
}

impl Drop for WriteSlot<'_> {
    fn drop(&mut self) {
        self.app
            .fic_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.identity);
    }
}

/// The real service refuses a second credential write on an identity while one is running
/// (409 `ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity`); the write
/// holds its identity for `fic_write_ms`.
async fn write_slot<'a>(
    app: &'a App,
    identity_key: &str,
    identity_id: &str,
) -> Result<WriteSlot<'a>, ApiError> {
    let taken = !app
        .fic_writes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(identity_key.to_string());
    if taken {
        return Err(ApiError::arm(
            StatusCode::CONFLICT,
            "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
            format!(
                "Too many Federated Identity Credentials are written concurrently for the managed identity '{identity_id}'. Concurrent Federated Identity Credentials writes under the same managed identity are not supported."
            ),
        ));
    }
    let slot = WriteSlot {
        app,
        identity: identity_key.to_string(),
    };
    if app.options.fic_write_ms > 0 {
        tokio::time::sleep(Duration::from_millis(app.options.fic_write_ms)).await;
    }
    Ok(slot)
}

async fn federated_credentials(
    app: &App,
    request: &Request,
    subscription: &str,
    resource_group: &str,
    identity_name: &str,
    fic_name: Option<String>,
) -> ApiResult {
    let identity_id = id(subscription, resource_group, identity_name);
    let identity_key = key(&identity_id);
    let replication_delay = app.faults().replication_delay_ms;
    let now = now_ms();
    let parent = app.store.read(|s| s.identities.get(&identity_key).cloned());
    let parent_missing = || {
        ApiError::arm(
            StatusCode::NOT_FOUND,
            "ParentResourceNotFound",
            format!(
                "Failed to perform '{}' on resource(s) of type 'userAssignedIdentities/federatedIdentityCredentials', because the parent resource '{identity_id}' could not be found.",
                if request.method == Method::GET {
                    "read"
                } else {
                    "write"
                }
            ),
        )
    };
    // A new identity is not yet known to the credential store for the replication window.
    let parent = match parent {
        Some(p) if p.created_ms + replication_delay <= now => p,
        _ => return Err(parent_missing()),
    };
    let Some(fic_name) = fic_name else {
        if request.method != Method::GET {
            return Err(ApiError::arm(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "Only GET lists federated identity credentials.",
            ));
        }
        super::require(
            app,
            request,
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
            &identity_id,
        )?;
        let items = app.store.read(|s| {
            s.federated_credentials
                .values()
                .filter(|f| f.identity_key == identity_key)
                .map(fic_json)
                .collect()
        });
        return Ok(page(request, items, app.options.page_size, Api::Arm));
    };
    let fic_id = format!("{}/federatedIdentityCredentials/{fic_name}", parent.id);
    let fic_key = key(&fic_id);
    match request.method {
        Method::GET => {
            super::require(
                app,
                request,
                "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read",
                &fic_id,
            )?;
            match app
                .store
                .read(|s| s.federated_credentials.get(&fic_key).cloned())
            {
                Some(fic) => Ok(json_response(StatusCode::OK, &fic_json(&fic))),
                None => Err(not_found(
                    resource_group,
                    FIC_TYPE,
                    &format!("{identity_name}/{fic_name}"),
                )),
            }
        }
        Method::PUT => {
            super::require(
                app,
                request,
                "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
                &fic_id,
            )?;
            if !valid_fic_name(&fic_name) {
                return Err(bad_request(format!(
                    "Federated Identity Credential name '{fic_name}' is invalid."
                )));
            }
            let body = request.json(Api::Arm)?;
            let properties = body
                .get("properties")
                .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()));
            let Some(properties) = properties else {
                return Err(bad_request(
                    "Federated Identity Credential from HTTP body has empty properties",
                ));
            };
            let text = |field: &str| {
                properties
                    .get(field)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let (Some(issuer), Some(subject)) = (text("issuer"), text("subject")) else {
                return Err(bad_request(
                    "Federated Identity Credential from HTTP body has empty properties",
                ));
            };
            let audiences: Vec<String> = properties
                .get("audiences")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if audiences.len() != 1 {
                return Err(bad_request(
                    "Federated identity credentials must have exactly one audience.",
                ));
            }
            for (field, value) in [
                ("issuer", &issuer),
                ("subject", &subject),
                ("audience", &audiences[0]),
            ] {
                if value.is_empty() || value.len() > 600 {
                    return Err(bad_request(format!(
                        "The {field} of a Federated Identity Credential must be between 1 and 600 characters."
                    )));
                }
            }
            match url::Url::parse(&issuer) {
                Ok(url) if url.scheme() == "https" => {}
                _ => {
                    return Err(bad_request(format!(
                        "Issuer '{issuer}' is not a valid URL. The issuer must be an https URL."
                    )));
                }
            }
            let _slot = write_slot(app, &identity_key, &parent.id).await?;
            let (fic, created) = app.store.update(|s| {
                if s.federated_credentials.values().any(|f| f.identity_key == identity_key && f.issuer == issuer && f.subject == subject && key(&f.id) != fic_key) {
                    return Err(bad_request("Issuer and subject combination already exists for this Managed Identity."));
                }
                let existing = s.federated_credentials.get(&fic_key).cloned();
                let count = s.federated_credentials.values().filter(|f| f.identity_key == identity_key).count();
                if existing.is_none() && count >= MAX_FICS {
                    return Err(bad_request(format!("Too many Federated Identity Credentials on the managed identity '{}'. The maximum is {MAX_FICS}.", parent.id)));
                }
                let fic = FederatedCredential {
                    written_ms: now_ms(),
                    id: existing.as_ref().map_or(fic_id.clone(), |e| e.id.clone()),
                    identity_key: identity_key.clone(),
                    name: existing.as_ref().map_or(fic_name.clone(), |e| e.name.clone()),
                    issuer,
                    subject,
                    audiences,
                };
                s.federated_credentials.insert(fic_key.clone(), fic.clone());
                Ok((fic, existing.is_none()))
            })?;
            Ok(json_response(
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                &fic_json(&fic),
            ))
        }
        Method::DELETE => {
            super::require(
                app,
                request,
                "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete",
                &fic_id,
            )?;
            let _slot = write_slot(app, &identity_key, &parent.id).await?;
            let existed = app
                .store
                .write(|s| Ok::<_, ApiError>(s.federated_credentials.remove(&fic_key).is_some()))?;
            Ok(if existed {
                empty(StatusCode::OK)
            } else {
                empty(StatusCode::NO_CONTENT)
            })
        }
        _ => Err(ApiError::arm(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The method '{}' is not allowed.", request.method),
        )),
    }
}
