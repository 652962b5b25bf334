//! Microsoft.ContainerService/managedClusters: the part of AKS workload identity needs.
//!
//! Contract: `specification/containerservice/resource-manager/Microsoft.ContainerService/aks/stable/
//! 2025-10-01/managedClusters.json` (`ManagedClusters_Get`, `_List`, `_ListByResourceGroup`,
//! `_CreateOrUpdate`, `_UpdateTags`, `_Delete`, `_ListClusterUserCredentials`,
//! `_ListClusterAdminCredentials`) and its examples `ManagedClustersGet.json`,
//! `ManagedClustersCreate_Update.json`, `ManagedClustersListClusterUserCredentials.json`; the ARM
//! async-operation contract ("Track asynchronous Azure operations"); the AKS docs "Create an OpenID
//! Connect provider on AKS" (the issuer cannot be disabled once enabled) and "Use eTags in AKS".
//!
//! PUT and DELETE are long-running: the answer carries `Azure-AsyncOperation` (and `Location` for
//! DELETE) and `Retry-After`; the cluster stays `Creating`/`Updating`/`Deleting` until its operation
//! has been polled `lro_polls` times. Every status poll counts — a GET of the operation status, of the
//! operation result, or of the cluster itself — so clients that poll the resource's
//! `provisioningState` (the other documented pattern) converge too. While an operation runs, writes
//! get 409 `OperationNotAllowed`.
//!
//! The OIDC issuer is `{base_url}/oidc/{tenant}/{cluster guid}/` (trailing slash, as AKS). Each
//! cluster has an emulated Kubernetes API (`crate::kube`) at `{base_url}/k8s/{cluster guid}`, made
//! with the cluster and removed with it: the kubeconfigs of `listClusterUserCredential` point there,
//! and it serves the issuer's discovery document and JWKS.

use axum::http::{HeaderValue, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::method_not_allowed;
use crate::App;
use crate::http::{
    Api, ApiError, ApiResult, Request, check_api_version, empty, json_response, page,
};
use crate::state::{ManagedCluster, Operation, State, key, now_ms, rfc3339};

/// Verified in the spec repository: `aks/stable/{2023-10-01, 2024-01-01, 2024-05-01, 2024-09-01,
/// 2025-01-01, 2025-07-01, 2025-08-01, 2025-10-01}` and `aks/preview/2025-10-02-preview`.
pub const API_VERSIONS: &[&str] = &[
    "2023-10-01",
    "2024-01-01",
    "2024-05-01",
    "2024-09-01",
    "2025-01-01",
    "2025-07-01",
    "2025-08-01",
    "2025-10-01",
    "2025-10-02-preview",
];
/// What real AKS answers in `type` (the spec's create example spells it so; its GET example uses
/// `managedClusters` — clients compare case-insensitively).
const TYPE: &str = "Microsoft.ContainerService/ManagedClusters";
const RESOURCE_TYPE: &str = "Microsoft.ContainerService/managedClusters";
const DEFAULT_KUBERNETES_VERSION: &str = "1.33";

pub fn id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourcegroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let lower: Vec<String> = request
        .segments
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let s: Vec<&str> = lower.iter().map(String::as_str).collect();
    check_api_version(&request, RESOURCE_TYPE, API_VERSIONS)?;
    match s.as_slice() {
        // /subscriptions/{s}/providers/Microsoft.ContainerService/…
        [
            "subscriptions",
            _,
            "providers",
            "microsoft.containerservice",
            rest @ ..,
        ] => match rest {
            ["managedclusters"] => list_subscription(app, &request),
            ["locations", _, "operations", _] => operation_status(app, &request),
            ["locations", _, "operationresults", _] => operation_result(app, &request),
            _ => Err(unknown_type(&request)),
        },
        // /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerService/…
        [
            "subscriptions",
            _,
            "resourcegroups",
            _,
            "providers",
            "microsoft.containerservice",
            rest @ ..,
        ] => {
            let subscription = request.segments[1].clone();
            let resource_group = request.segments[3].clone();
            match rest {
                ["managedclusters"] => {
                    list_resource_group(app, &request, &subscription, &resource_group)
                }
                ["managedclusters", _] => {
                    let name = request.segments[7].clone();
                    cluster(app, &request, &subscription, &resource_group, &name)
                }
                [
                    "managedclusters",
                    _,
                    action @ ("listclusterusercredential" | "listclusteradmincredential"),
                ] => {
                    let name = request.segments[7].clone();
                    credentials(app, &request, &subscription, &resource_group, &name, action)
                }
                _ => Err(unknown_type(&request)),
            }
        }
        _ => Err(unknown_type(&request)),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn unknown_type(request: &Request) -> ApiError {
    ApiError::arm(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        format!(
            "The resource type could not be found for the path '{}'.",
            request.path()
        ),
    )
}

fn not_found(resource_group: &str, name: &str) -> ApiError {
    ApiError::arm(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The Resource '{RESOURCE_TYPE}/{name}' under resource group '{resource_group}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

fn invalid_content(message: impl std::fmt::Display) -> ApiError {
    ApiError::arm(
        StatusCode::BAD_REQUEST,
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: {message}"),
    )
}

/// AKS validation errors name the offending property in `target`.
fn invalid_parameter(code: &str, message: impl Into<String>, target: &str) -> ApiError {
    ApiError::Arm {
        status: StatusCode::BAD_REQUEST,
        code: code.into(),
        message: message.into(),
        target: Some(target.into()),
        headers: Vec::new(),
    }
}

/// Resource name pattern of the spec: `^[a-zA-Z0-9]$|^[a-zA-Z0-9][-_a-zA-Z0-9]{0,61}[a-zA-Z0-9]$`.
fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let edge = |b: &u8| b.is_ascii_alphanumeric();
    match bytes {
        [] => false,
        [one] => edge(one),
        [first, middle @ .., last] => {
            bytes.len() <= 63
                && edge(first)
                && edge(last)
                && middle
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        }
    }
}

/// An optional object member: absent or null is `None`, another type a 400.
fn object_at<'a>(
    parent: Option<&'a Map<String, Value>>,
    field: &str,
    path: &str,
) -> Result<Option<&'a Map<String, Value>>, ApiError> {
    match parent.and_then(|p| p.get(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(invalid_content(format_args!("'{path}' must be an object."))),
    }
}

fn bool_at(
    parent: Option<&Map<String, Value>>,
    field: &str,
    path: &str,
) -> Result<Option<bool>, ApiError> {
    match parent.and_then(|p| p.get(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid_content(format_args!("'{path}' must be a boolean."))),
    }
}

fn pointer_bool(properties: &Value, pointer: &str) -> bool {
    properties
        .pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

fn provisioning_state(cluster: &ManagedCluster) -> &str {
    cluster
        .properties
        .get("provisioningState")
        .and_then(Value::as_str)
        .unwrap_or("Succeeded")
}

/// The stable per-cluster suffix AKS puts in FQDNs (8 hex characters).
fn fqdn_suffix(cluster_key: &str) -> String {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, cluster_key.as_bytes())
        .simple()
        .to_string()[..8]
        .to_string()
}

fn cluster_json(cluster: &ManagedCluster, tenant_id: &str) -> Value {
    // Without an `identity`/`sku` in the PUT, AKS gives a system-assigned identity and the Free
    // tier.
    let principal = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{}/identity", key(&cluster.id)).as_bytes(),
    );
    json!({
        "id": cluster.id,
        "name": cluster.name,
        "type": TYPE,
        "location": cluster.location,
        "tags": cluster.tags,
        "eTag": cluster.etag,
        "sku": cluster.sku.clone().unwrap_or_else(|| json!({ "name": "Base", "tier": "Free" })),
        "identity": cluster.identity.clone().unwrap_or_else(|| json!({ "type": "SystemAssigned", "principalId": principal.to_string(), "tenantId": tenant_id })),
        "properties": cluster.properties,
    })
}

/// The operation still running on a cluster, if any.
fn running_operation(state: &State, cluster_key: &str) -> Option<String> {
    state
        .operations
        .values()
        .find(|o| o.resource_key == cluster_key && o.status == "InProgress")
        .map(|o| o.id.clone())
}

/// One status poll of an operation: answers `InProgress` `polls_left` times, then completes it and
/// applies the result to its cluster (provisioning `Succeeded`, or the cluster removed after a
/// delete).
fn advance(state: &mut State, operation_id: &str) -> Option<Operation> {
    let operation = state.operations.get_mut(operation_id)?;
    if operation.status != "InProgress" {
        return Some(operation.clone());
    }
    if operation.polls_left > 0 {
        operation.polls_left -= 1;
        return Some(operation.clone());
    }
    operation.status = "Succeeded".into();
    operation.ended_ms = Some(now_ms());
    let done = operation.clone();
    let deleting = state
        .managed_clusters
        .get(&done.resource_key)
        .is_some_and(|c| provisioning_state(c) == "Deleting");
    if deleting {
        state.managed_clusters.remove(&done.resource_key);
        crate::kube::detach_aks(state, &done.resource_key);
    } else if let Some(cluster) = state.managed_clusters.get_mut(&done.resource_key) {
        set_provisioning_state(&mut cluster.properties, "Succeeded");
    }
    Some(done)
}

fn set_provisioning_state(properties: &mut Value, state: &str) {
    if let Some(props) = properties.as_object_mut() {
        props.insert("provisioningState".into(), json!(state));
        if let Some(Value::Array(pools)) = props.get_mut("agentPoolProfiles") {
            for pool in pools.iter_mut().filter_map(Value::as_object_mut) {
                pool.insert("provisioningState".into(), json!(state));
            }
        }
    }
}

fn new_operation(cluster_key: &str, polls: u32) -> Operation {
    let id = uuid::Uuid::new_v4().to_string();
    Operation {
        id,
        resource_key: cluster_key.to_string(),
        status: "InProgress".into(),
        started_ms: now_ms(),
        polls_left: polls,
        ended_ms: None,
        error: None,
    }
}

/// `Azure-AsyncOperation` (and `Location`) URLs of an operation; AKS puts them under the
/// subscription and the cluster's location.
fn operation_url(
    request: &Request,
    subscription: &str,
    location: &str,
    kind: &str,
    id: &str,
) -> String {
    let version = request.query("api-version").unwrap_or("2025-10-01");
    format!(
        "{}/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/{location}/{kind}/{id}?api-version={version}",
        request.base_url
    )
}

fn set_header(response: &mut axum::response::Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

/// `If-Match` / `If-None-Match` ("Use eTags in AKS": a mismatch, `If-Match: *` on a missing
/// cluster and `If-None-Match: *` on an existing one get 412). Code and wording unverified.
fn check_preconditions(
    request: &Request,
    current: Option<&ManagedCluster>,
    name: &str,
) -> Result<(), ApiError> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.trim()
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .to_string()
            })
    };
    let failed = |message: String| {
        ApiError::arm(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            message,
        )
    };
    if let Some(expected) = header("if-match") {
        match current {
            None => {
                return Err(failed(format!(
                    "Operation is not allowed: the If-Match header '{expected}' was given but managed cluster '{name}' does not exist."
                )));
            }
            Some(cluster) if expected != "*" && expected != cluster.etag => {
                return Err(failed(format!(
                    "Operation is not allowed: the If-Match header '{expected}' does not match the current eTag '{}' of managed cluster '{name}'.",
                    cluster.etag
                )));
            }
            Some(_) => {}
        }
    }
    if let (Some(unexpected), Some(cluster)) = (header("if-none-match"), current)
        && (unexpected == "*" || unexpected == cluster.etag)
    {
        return Err(failed(format!(
            "Operation is not allowed: the If-None-Match header '{unexpected}' matches the existing managed cluster '{name}'."
        )));
    }
    Ok(())
}

/// 409 while an operation runs (message as in real AKS error bodies).
fn operation_not_allowed(cluster: &ManagedCluster) -> ApiError {
    ApiError::arm(
        StatusCode::CONFLICT,
        "OperationNotAllowed",
        format!(
            "Operation is not allowed: Another operation ({}) is in progress, please wait for it to finish before starting a new operation. See https://aka.ms/aks-pending-operation for more details",
            provisioning_state(cluster)
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Lists and operations
// ---------------------------------------------------------------------------------------------

/// `GET /subscriptions/{s}/providers/Microsoft.ContainerService/managedClusters` (`ManagedClusters_List`).
fn list_subscription(app: &App, request: &Request) -> ApiResult {
    if request.method != Method::GET {
        return Err(method_not_allowed(request));
    }
    let subscription = request.segments[1].clone();
    super::require(
        app,
        request,
        "Microsoft.ContainerService/managedClusters/read",
        &format!("/subscriptions/{subscription}"),
    )?;
    let items = app.store.read(|s| {
        s.managed_clusters
            .values()
            .filter(|c| c.subscription_id.eq_ignore_ascii_case(&subscription))
            .map(|c| cluster_json(c, &s.tenant_id))
            .collect()
    });
    Ok(page(request, items, app.options.page_size, Api::Arm))
}

/// `GET …/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters`
/// (`ManagedClusters_ListByResourceGroup`).
fn list_resource_group(
    app: &App,
    request: &Request,
    subscription: &str,
    resource_group: &str,
) -> ApiResult {
    if request.method != Method::GET {
        return Err(method_not_allowed(request));
    }
    let scope = format!("/subscriptions/{subscription}/resourceGroups/{resource_group}");
    super::require(
        app,
        request,
        "Microsoft.ContainerService/managedClusters/read",
        &scope,
    )?;
    let prefix = key(&format!("{scope}/providers/"));
    let items = app.store.read(|s| {
        s.managed_clusters
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, c)| cluster_json(c, &s.tenant_id))
            .collect()
    });
    Ok(page(request, items, app.options.page_size, Api::Arm))
}

/// The operation id of `GET …/locations/{location}/operations[results]/{id}`, once the method
/// and the caller's right to read operations are checked.
fn operation_id(app: &App, request: &Request) -> Result<String, ApiError> {
    if request.method != Method::GET {
        return Err(method_not_allowed(request));
    }
    let subscription = &request.segments[1];
    super::require(
        app,
        request,
        "Microsoft.ContainerService/locations/operations/read",
        &format!("/subscriptions/{subscription}"),
    )?;
    Ok(request.segments[7].clone())
}

/// `GET …/locations/{location}/operations/{id}`: the `Azure-AsyncOperation` status resource
/// (common-types `OperationStatusResult`: `name`, `status`, `startTime`, `endTime`, `error`).
fn operation_status(app: &App, request: &Request) -> ApiResult {
    let id = operation_id(app, request)?;
    let operation = app
        .store
        .write(|s| advance(s, &id).ok_or_else(|| operation_not_found(&id)))?;
    let mut body = json!({
        "name": operation.id,
        "status": operation.status,
        "startTime": rfc3339(operation.started_ms),
    });
    if let Some(ended) = operation.ended_ms {
        body["endTime"] = json!(rfc3339(ended));
    }
    if let Some(error) = &operation.error {
        body["error"] = error.clone();
    }
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET …/locations/{location}/operationresults/{id}`: the `Location` resource (202 while running;
/// when done 200 with the cluster, or 204 after a delete).
fn operation_result(app: &App, request: &Request) -> ApiResult {
    let id = operation_id(app, request)?;
    let (operation, cluster, tenant) = app.store.update(|s| {
        let operation = advance(s, &id).ok_or_else(|| operation_not_found(&id))?;
        let cluster = s.managed_clusters.get(&operation.resource_key).cloned();
        Ok::<_, ApiError>((operation, cluster, s.tenant_id.clone()))
    })?;
    if operation.status == "InProgress" {
        let mut response = empty(StatusCode::ACCEPTED);
        let url = format!(
            "{}{}?api-version={}",
            request.base_url,
            request.path(),
            request.query("api-version").unwrap_or_default()
        );
        set_header(&mut response, "Location", &url);
        set_header(&mut response, "Retry-After", "1");
        return Ok(response);
    }
    Ok(match cluster {
        Some(cluster) => json_response(StatusCode::OK, &cluster_json(&cluster, &tenant)),
        None => empty(StatusCode::NO_CONTENT),
    })
}

fn operation_not_found(id: &str) -> ApiError {
    ApiError::arm(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("The operation '{id}' could not be found."),
    )
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

fn cluster(
    app: &App,
    request: &Request,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> ApiResult {
    let cluster_id = id(subscription, resource_group, name);
    let k = key(&cluster_id);
    match request.method {
        Method::GET => {
            super::require(
                app,
                request,
                "Microsoft.ContainerService/managedClusters/read",
                &cluster_id,
            )?;
            // Only a GET that polls a running operation changes (and persists) anything.
            let found = if app.store.read(|s| running_operation(s, &k).is_some()) {
                app.store.update(|s| {
                    if let Some(operation) = running_operation(s, &k) {
                        advance(s, &operation);
                    }
                    Ok::<_, ApiError>(
                        s.managed_clusters
                            .get(&k)
                            .map(|c| cluster_json(c, &s.tenant_id)),
                    )
                })?
            } else {
                app.store.read(|s| {
                    s.managed_clusters
                        .get(&k)
                        .map(|c| cluster_json(c, &s.tenant_id))
                })
            };
            found
                .map(|body| json_response(StatusCode::OK, &body))
                .ok_or_else(|| not_found(resource_group, name))
        }
        Method::PUT => put(app, request, subscription, resource_group, name),
        Method::PATCH => patch(app, request, resource_group, name),
        Method::DELETE => delete(app, request, subscription, resource_group, name),
        _ => Err(method_not_allowed(request)),
    }
}

/// What the PUT body asks for, type-checked before anything is looked at.
struct Wanted {
    location: String,
    identity: Option<Value>,
    sku: Option<Value>,
    tags: std::collections::BTreeMap<String, String>,
    properties: Map<String, Value>,
    oidc: Option<bool>,
    workload_identity: Option<bool>,
}

fn read_put_body(request: &Request) -> Result<Wanted, ApiError> {
    let body = request.json(Api::Arm)?;
    if !body.is_object() {
        return Err(invalid_content("the body must be a JSON object."));
    }
    let tags = super::resource_groups::parse_tags(&body)?.unwrap_or_default();
    let location = super::resource_groups::required_location(&body)?;
    let properties = match body.get("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return Err(invalid_content("'properties' must be an object.")),
    };
    let oidc_profile = object_at(
        Some(&properties),
        "oidcIssuerProfile",
        "properties.oidcIssuerProfile",
    )?;
    let oidc = bool_at(
        oidc_profile,
        "enabled",
        "properties.oidcIssuerProfile.enabled",
    )?;
    let security = object_at(
        Some(&properties),
        "securityProfile",
        "properties.securityProfile",
    )?;
    let workload = object_at(
        security,
        "workloadIdentity",
        "properties.securityProfile.workloadIdentity",
    )?;
    let workload_identity = bool_at(
        workload,
        "enabled",
        "properties.securityProfile.workloadIdentity.enabled",
    )?;
    match properties.get("agentPoolProfiles") {
        None | Some(Value::Null) => {}
        Some(Value::Array(pools)) if pools.iter().all(Value::is_object) => {}
        Some(_) => {
            return Err(invalid_content(
                "'properties.agentPoolProfiles' must be an array of objects.",
            ));
        }
    }
    for field in ["kubernetesVersion", "dnsPrefix", "nodeResourceGroup"] {
        if let Some(v) = properties.get(field)
            && !v.is_string()
            && !v.is_null()
        {
            return Err(invalid_content(format_args!(
                "'properties.{field}' must be a string."
            )));
        }
    }
    Ok(Wanted {
        location,
        identity: body.get("identity").filter(|v| v.is_object()).cloned(),
        sku: body.get("sku").filter(|v| v.is_object()).cloned(),
        tags,
        properties,
        oidc,
        workload_identity,
    })
}

/// The properties to store: the request's, with the read-only ones computed.
///
/// A PUT replaces the whole cluster, but AKS leaves a profile the request omits as it was (a client
/// that does not know about the OIDC issuer must not be refused for "disabling" it), so omitted
/// `oidcIssuerProfile.enabled` / `securityProfile.workloadIdentity.enabled` keep their values.
#[allow(clippy::too_many_arguments)]
fn build_properties(
    base_url: &str,
    tenant: &str,
    existing: Option<&ManagedCluster>,
    wanted: &Wanted,
    subscription: &str,
    resource_group: &str,
    name: &str,
    cluster_key: &str,
    state: &str,
    issuer_guid: &str,
) -> Result<Value, ApiError> {
    let old = existing.map(|c| &c.properties);
    let old_str = |field: &str| {
        old.and_then(|p| p.get(field))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let mut props = wanted.properties.clone();
    for read_only in [
        "provisioningState",
        "powerState",
        "fqdn",
        "azurePortalFQDN",
        "privateFQDN",
        "currentKubernetesVersion",
        "maxAgentPools",
    ] {
        props.remove(read_only);
    }

    // OIDC issuer: "cannot be disabled" once enabled (AKS OIDC doc). Code and message as seen in a
    // real deployment log (`OIDCIssuerFeatureCannotBeDisabled`); AKS puts it on the PUT, 400.
    let was_enabled = old.is_some_and(|p| pointer_bool(p, "/oidcIssuerProfile/enabled"));
    if was_enabled && wanted.oidc == Some(false) {
        return Err(invalid_parameter(
            "OIDCIssuerFeatureCannotBeDisabled",
            "OIDC issuer feature cannot be disabled.",
            "oidcIssuerProfile.enabled",
        ));
    }
    let oidc_enabled = wanted.oidc.unwrap_or(was_enabled);
    let mut oidc = json!({ "enabled": oidc_enabled });
    if oidc_enabled {
        let issuer = old
            .and_then(|p| p.pointer("/oidcIssuerProfile/issuerURL"))
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("{base_url}/oidc/{tenant}/{issuer_guid}/"));
        oidc["issuerURL"] = json!(issuer);
    }
    props.insert("oidcIssuerProfile".into(), oidc);

    // Workload identity needs the OIDC issuer. The RP's code for this is unverified (the az CLI
    // refuses it client-side: "Enabling workload identity requires enabling OIDC issuer").
    let old_workload = old.and_then(|p| p.pointer("/securityProfile/workloadIdentity/enabled"));
    let workload = wanted
        .workload_identity
        .or_else(|| old_workload.and_then(Value::as_bool));
    if workload == Some(true) && !oidc_enabled {
        return Err(invalid_parameter(
            "InvalidParameter",
            "Enabling workload identity requires enabling OIDC issuer: set properties.oidcIssuerProfile.enabled to true.",
            "securityProfile.workloadIdentity.enabled",
        ));
    }
    let mut security = props
        .get("securityProfile")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(enabled) = workload {
        security.insert("workloadIdentity".into(), json!({ "enabled": enabled }));
    }
    props.insert("securityProfile".into(), Value::Object(security));

    let version = props
        .get("kubernetesVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .or_else(|| old_str("kubernetesVersion"))
        .unwrap_or_else(|| DEFAULT_KUBERNETES_VERSION.into());
    let current = if version.matches('.').count() >= 2 {
        version.clone()
    } else {
        format!("{version}.0")
    };
    let dns_prefix = props
        .get("dnsPrefix")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .or_else(|| old_str("dnsPrefix"))
        .unwrap_or_else(|| {
            let sub: String = subscription.chars().take(6).collect();
            format!("{name}-{resource_group}-{sub}")
        });
    let node_resource_group = props
        .get("nodeResourceGroup")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .or_else(|| old_str("nodeResourceGroup"))
        .unwrap_or_else(|| format!("MC_{resource_group}_{name}_{}", wanted.location));
    let suffix = fqdn_suffix(cluster_key);
    let location = &wanted.location;

    let pools: Vec<Value> = match props.get("agentPoolProfiles").and_then(Value::as_array) {
        Some(pools) if !pools.is_empty() => pools.clone(),
        _ => old
            .and_then(|p| p.get("agentPoolProfiles"))
            .and_then(Value::as_array)
            .cloned()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| {
                vec![json!({
                    "name": "nodepool1",
                    "type": "VirtualMachineScaleSets",
                    "mode": "System",
                    "osType": "Linux",
                    "vmSize": "Standard_DS2_v2",
                    "count": 3,
                })]
            }),
    };
    let pools: Vec<Value> = pools
        .into_iter()
        .map(|mut pool| {
            if let Some(p) = pool.as_object_mut() {
                p.entry("count").or_insert(json!(3));
                p.entry("osType").or_insert(json!("Linux"));
                p.entry("orchestratorVersion").or_insert(json!(version));
                p.insert("currentOrchestratorVersion".into(), json!(current));
                p.insert("provisioningState".into(), json!(state));
            }
            pool
        })
        .collect();

    props.insert("provisioningState".into(), json!(state));
    props.insert("powerState".into(), json!({ "code": "Running" }));
    props.insert("kubernetesVersion".into(), json!(version));
    props.insert("currentKubernetesVersion".into(), json!(current));
    props.insert("dnsPrefix".into(), json!(dns_prefix));
    props.insert(
        "fqdn".into(),
        json!(format!("{dns_prefix}-{suffix}.hcp.{location}.azmk8s.io")),
    );
    props.insert(
        "azurePortalFQDN".into(),
        json!(format!(
            "{dns_prefix}-{suffix}.portal.hcp.{location}.azmk8s.io"
        )),
    );
    props.insert("nodeResourceGroup".into(), json!(node_resource_group));
    props.insert("maxAgentPools".into(), json!(100));
    props.entry("enableRBAC").or_insert(json!(true));
    props.insert("agentPoolProfiles".into(), Value::Array(pools));
    Ok(Value::Object(props))
}

/// `PUT …/managedClusters/{name}` (`ManagedClusters_CreateOrUpdate`): 201 created / 200 updated,
/// both with `Azure-AsyncOperation` and `Retry-After` (the spec lists the headers on 201; real AKS
/// sends them on 200 too, `final-state-via: azure-async-operation`).
fn put(
    app: &App,
    request: &Request,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> ApiResult {
    let cluster_id = id(subscription, resource_group, name);
    let k = key(&cluster_id);
    super::require(
        app,
        request,
        "Microsoft.ContainerService/managedClusters/write",
        &cluster_id,
    )?;
    if !valid_name(name) {
        return Err(invalid_parameter(
            "InvalidResourceName",
            format!(
                "Resource name '{name}' is invalid. The name can be 1-63 characters long, must begin and end with a letter or number, and may contain letters, numbers, hyphens and underscores."
            ),
            "name",
        ));
    }
    let wanted = read_put_body(request)?;
    let polls = app.faults().lro_polls;
    let (cluster, operation, created, tenant) = app.store.update(|s| {
        let existing = s.managed_clusters.get(&k).cloned();
        check_preconditions(request, existing.as_ref(), name)?;
        if let Some(existing) = &existing {
            if running_operation(s, &k).is_some() {
                return Err(operation_not_allowed(existing));
            }
            if !existing.location.eq_ignore_ascii_case(&wanted.location) {
                // The shape AKS uses for immutable properties (seen in real error bodies).
                return Err(invalid_parameter(
                    "PropertyChangeNotAllowed",
                    "Changing property 'location' is not allowed.",
                    "location",
                ));
            }
        }
        let tenant = s.tenant_id.clone();
        let guid = crate::kube::aks_guid(s, &k, existing.is_none());
        let state_name = if existing.is_some() {
            "Updating"
        } else {
            "Creating"
        };
        let properties = build_properties(
            &app.base_url,
            &tenant,
            existing.as_ref(),
            &wanted,
            subscription,
            resource_group,
            name,
            &k,
            state_name,
            &guid,
        )?;
        let cluster = ManagedCluster {
            id: existing
                .as_ref()
                .map_or(cluster_id.clone(), |c| c.id.clone()),
            name: existing
                .as_ref()
                .map_or(name.to_string(), |c| c.name.clone()),
            subscription_id: subscription.to_string(),
            resource_group: resource_group.to_string(),
            location: wanted.location.clone(),
            tags: wanted.tags.clone(),
            etag: uuid::Uuid::new_v4().to_string(),
            identity: wanted
                .identity
                .clone()
                .or(existing.as_ref().and_then(|c| c.identity.clone())),
            sku: wanted
                .sku
                .clone()
                .or(existing.as_ref().and_then(|c| c.sku.clone())),
            properties,
        };
        let operation = new_operation(&k, polls);
        s.operations.insert(operation.id.clone(), operation.clone());
        s.managed_clusters.insert(k.clone(), cluster.clone());
        crate::kube::attach_aks(s, &k, &guid);
        Ok::<_, ApiError>((cluster, operation, existing.is_none(), tenant))
    })?;
    let mut response = json_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &cluster_json(&cluster, &tenant),
    );
    let status_url = operation_url(
        request,
        subscription,
        &cluster.location,
        "operations",
        &operation.id,
    );
    set_header(&mut response, "Azure-AsyncOperation", &status_url);
    set_header(&mut response, "Retry-After", "1");
    Ok(response)
}

/// `PATCH …/managedClusters/{name}` (`ManagedClusters_UpdateTags`): the body is a `TagsObject` —
/// only `tags` is read. Answered synchronously with 200 (one of the spec's two answers).
fn patch(app: &App, request: &Request, resource_group: &str, name: &str) -> ApiResult {
    let subscription = request.segments[1].clone();
    let cluster_id = id(&subscription, resource_group, name);
    let k = key(&cluster_id);
    super::require(
        app,
        request,
        "Microsoft.ContainerService/managedClusters/write",
        &cluster_id,
    )?;
    let body = request.json(Api::Arm)?;
    if !body.is_object() {
        return Err(invalid_content("the body must be a JSON object."));
    }
    let tags = super::resource_groups::parse_tags(&body)?;
    let (cluster, tenant) = app.store.update(|s| {
        let existing = s.managed_clusters.get(&k).cloned();
        check_preconditions(request, existing.as_ref(), name)?;
        let Some(mut cluster) = existing else {
            return Err(not_found(resource_group, name));
        };
        if running_operation(s, &k).is_some() {
            return Err(operation_not_allowed(&cluster));
        }
        if let Some(tags) = tags {
            cluster.tags = tags;
        }
        cluster.etag = uuid::Uuid::new_v4().to_string();
        s.managed_clusters.insert(k.clone(), cluster.clone());
        Ok::<_, ApiError>((cluster, s.tenant_id.clone()))
    })?;
    Ok(json_response(
        StatusCode::OK,
        &cluster_json(&cluster, &tenant),
    ))
}

/// `DELETE …/managedClusters/{name}` (`ManagedClusters_Delete`): 202 with `Azure-AsyncOperation`,
/// `Location` and `Retry-After`; 204 when the cluster does not exist. A delete is accepted while
/// another operation runs (AKS cancels it), but not twice.
fn delete(
    app: &App,
    request: &Request,
    subscription: &str,
    resource_group: &str,
    name: &str,
) -> ApiResult {
    let cluster_id = id(subscription, resource_group, name);
    let k = key(&cluster_id);
    super::require(
        app,
        request,
        "Microsoft.ContainerService/managedClusters/delete",
        &cluster_id,
    )?;
    let polls = app.faults().lro_polls;
    let started = app.store.update(|s| {
        let existing = s.managed_clusters.get(&k).cloned();
        check_preconditions(request, existing.as_ref(), name)?;
        let Some(cluster) = existing else {
            return Ok::<_, ApiError>(None);
        };
        if let Some(running) = running_operation(s, &k) {
            if provisioning_state(&cluster) == "Deleting" {
                return Err(operation_not_allowed(&cluster));
            }
            if let Some(operation) = s.operations.get_mut(&running) {
                operation.status = "Canceled".into();
                operation.error = Some(json!({
                    "code": "OperationCanceled",
                    "message": "The operation was canceled by a delete of the managed cluster.",
                }));
            }
        }
        if let Some(c) = s.managed_clusters.get_mut(&k) {
            set_provisioning_state(&mut c.properties, "Deleting");
        }
        let operation = new_operation(&k, polls);
        s.operations.insert(operation.id.clone(), operation.clone());
        Ok(Some((cluster.location, operation.id)))
    })?;
    let Some((location, operation)) = started else {
        return Ok(empty(StatusCode::NO_CONTENT));
    };
    let mut response = empty(StatusCode::ACCEPTED);
    set_header(
        &mut response,
        "Azure-AsyncOperation",
        &operation_url(request, subscription, &location, "operations", &operation),
    );
    set_header(
        &mut response,
        "Location",
        &operation_url(
            request,
            subscription,
            &location,
            "operationresults",
            &operation,
        ),
    );
    set_header(&mut response, "Retry-After", "1");
    Ok(response)
}

/// `POST …/managedClusters/{name}/listClusterUserCredential` (and `…AdminCredential`):
/// `CredentialResults` = `{"kubeconfigs":[{"name","value":<base64 kubeconfig>}]}` (spec example
/// `ManagedClustersListClusterUserCredentials.json`; the names `clusterUser`/`clusterAdmin` are what
/// the real service answers). The kubeconfig trusts the sandbox CA (`certificate-authority-data`)
/// and points at the cluster's emulated Kubernetes API (`{base_url}/k8s/{cluster guid}`) with its
/// admin token (the emulator's RBAC has no Entra users: both credentials act as cluster admin).
fn credentials(
    app: &App,
    request: &Request,
    subscription: &str,
    resource_group: &str,
    name: &str,
    action: &str,
) -> ApiResult {
    if request.method != Method::POST {
        return Err(method_not_allowed(request));
    }
    let cluster_id = id(subscription, resource_group, name);
    let (kind, permission) = if action == "listclusteradmincredential" {
        (
            "clusterAdmin",
            "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
        )
    } else {
        (
            "clusterUser",
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
        )
    };
    super::require(app, request, permission, &cluster_id)?;
    let cluster = app
        .store
        .read(|s| s.managed_clusters.get(&key(&cluster_id)).cloned())
        .ok_or_else(|| not_found(resource_group, name))?;
    let user = format!("{kind}_{}_{}", cluster.resource_group, cluster.name);
    let access = crate::kube::aks_access(app, &key(&cluster.id))?
        .ok_or_else(|| not_found(resource_group, name))?;
    let kubeconfig = access.kubeconfig(&cluster.name, &user, &access.admin_token);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "kubeconfigs": [{ "name": kind, "value": STANDARD.encode(kubeconfig) }] }),
    ))
}

/// A cluster that already exists, in its settled state (`wiform sandbox seed`): the same
/// properties a PUT would produce, provisioning `Succeeded`, no operation pending.
#[allow(clippy::too_many_arguments)]
pub fn seed_cluster(
    state: &mut State,
    base_url: &str,
    subscription: &str,
    resource_group: &str,
    name: &str,
    location: &str,
    oidc_issuer: bool,
    workload_identity: bool,
) -> Result<(), String> {
    let cluster_id = format!(
        "/subscriptions/{subscription}/resourcegroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    );
    let k = key(&cluster_id);
    let guid = crate::kube::aks_guid(state, &k, !state.managed_clusters.contains_key(&k));
    let wanted = Wanted {
        location: location.to_string(),
        identity: None,
        sku: None,
        tags: Default::default(),
        properties: Map::new(),
        oidc: Some(oidc_issuer),
        workload_identity: Some(workload_identity),
    };
    let tenant = state.tenant_id.clone();
    let properties = build_properties(
        base_url,
        &tenant,
        None,
        &wanted,
        subscription,
        resource_group,
        name,
        &k,
        "Succeeded",
        &guid,
    )
    .map_err(|e| format!("cluster {name}: {}", e.code()))?;
    state.managed_clusters.insert(
        k.clone(),
        ManagedCluster {
            id: cluster_id,
            name: name.to_string(),
            subscription_id: subscription.to_string(),
            resource_group: resource_group.to_string(),
            location: location.to_string(),
            tags: Default::default(),
            etag: uuid::Uuid::new_v4().to_string(),
            identity: None,
            sku: None,
            properties,
        },
    );
    crate::kube::attach_aks(state, &k, &guid);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_pattern() {
        for good in ["a", "aks-prod", "a_b-c1", &"x".repeat(63)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a.b", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
