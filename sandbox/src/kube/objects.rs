//! core/v1 `namespaces` and `serviceaccounts`: get, list, create, server-side apply, merge
//! patch, delete.
//!
//! Behaviour as kube-apiserver v1.34 (checked against the real server of `tests/kube-server`):
//! the REST handlers of `k8s.io/apiserver/pkg/endpoints/handlers` (`create.go`, `patch.go`,
//! `delete.go`, `get.go`), the namespace strategy of `pkg/registry/core/namespace` (label
//! `kubernetes.io/metadata.name`, finalizer `kubernetes`, phase `Active`, deletion that only
//! marks it `Terminating` while no namespace controller runs), the NamespaceLifecycle admission
//! plugin (no new objects in a terminating namespace; `default`, `kube-system` and
//! `kube-public` cannot be deleted), and `metav1.ObjectMeta` (uid, resourceVersion from one
//! cluster-wide counter, creationTimestamp, managedFields).

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::apply::{self, managed_fields_json};
use super::errors::{self, FieldError};
use super::selector::{FieldSelector, Selector};
use super::{Call, kube_time, token, validation};
use crate::http::{ApiError, ApiResult, Request, json_response};
use crate::state::{KubeCluster, KubeObject, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Namespace,
    ServiceAccount,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::ServiceAccount => "serviceaccounts",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ServiceAccount => "ServiceAccount",
        }
    }

    /// Fields the strategy resets on every write (`GetResetFields`), hence never managed.
    fn ignored(self) -> &'static [&'static str] {
        match self {
            Kind::Namespace => &["status"],
            Kind::ServiceAccount => &[],
        }
    }

    fn name_errors(self, name: &str) -> Vec<FieldError> {
        match self {
            Kind::Namespace => validation::object_name(name, validation::dns1123_label),
            Kind::ServiceAccount => validation::object_name(name, validation::dns1123_subdomain),
        }
    }

    fn field_selectors(self) -> &'static [&'static str] {
        match self {
            Kind::Namespace => &["metadata.name", "metadata.namespace", "status.phase"],
            Kind::ServiceAccount => &["metadata.name", "metadata.namespace"],
        }
    }

    fn schema(self) -> &'static [(&'static str, Shape)] {
        match self {
            Kind::Namespace => NAMESPACE,
            Kind::ServiceAccount => SERVICE_ACCOUNT,
        }
    }
}

fn objects(cluster: &KubeCluster, kind: Kind) -> &BTreeMap<String, KubeObject> {
    match kind {
        Kind::Namespace => &cluster.namespaces,
        Kind::ServiceAccount => &cluster.service_accounts,
    }
}

fn objects_mut(cluster: &mut KubeCluster, kind: Kind) -> &mut BTreeMap<String, KubeObject> {
    match kind {
        Kind::Namespace => &mut cluster.namespaces,
        Kind::ServiceAccount => &mut cluster.service_accounts,
    }
}

fn key(kind: Kind, namespace: &str, name: &str) -> String {
    match kind {
        Kind::Namespace => name.to_string(),
        Kind::ServiceAccount => format!("{namespace}/{name}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Schema: the fields of the two kinds, enough to refuse what the real server refuses
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Shape {
    String,
    Integer,
    Bool,
    StringMap,
    StringList,
    ObjectList,
    Object(&'static [(&'static str, Shape)]),
}

impl Shape {
    fn name(&self) -> &'static str {
        match self {
            Shape::String => "string",
            Shape::Integer => "numeric",
            Shape::Bool => "bool",
            Shape::StringMap | Shape::Object(_) => "map",
            Shape::StringList | Shape::ObjectList => "list",
        }
    }
}

const METADATA: &[(&str, Shape)] = &[
    ("name", Shape::String),
    ("generateName", Shape::String),
    ("namespace", Shape::String),
    ("selfLink", Shape::String),
    ("uid", Shape::String),
    ("resourceVersion", Shape::String),
    ("generation", Shape::Integer),
    ("creationTimestamp", Shape::String),
    ("deletionTimestamp", Shape::String),
    ("deletionGracePeriodSeconds", Shape::Integer),
    ("labels", Shape::StringMap),
    ("annotations", Shape::StringMap),
    ("ownerReferences", Shape::ObjectList),
    ("finalizers", Shape::StringList),
    ("managedFields", Shape::ObjectList),
];

const SERVICE_ACCOUNT: &[(&str, Shape)] = &[
    ("apiVersion", Shape::String),
    ("kind", Shape::String),
    ("metadata", Shape::Object(METADATA)),
    ("secrets", Shape::ObjectList),
    ("imagePullSecrets", Shape::ObjectList),
    ("automountServiceAccountToken", Shape::Bool),
];

const NAMESPACE: &[(&str, Shape)] = &[
    ("apiVersion", Shape::String),
    ("kind", Shape::String),
    ("metadata", Shape::Object(METADATA)),
    ("spec", Shape::Object(&[("finalizers", Shape::StringList)])),
    (
        "status",
        Shape::Object(&[("phase", Shape::String), ("conditions", Shape::ObjectList)]),
    ),
];

#[derive(Debug)]
enum SchemaError {
    /// `.metadata.bogus`
    Unknown(String),
    Type {
        path: String,
        expected: &'static str,
        got: Value,
    },
}

impl SchemaError {
    /// structured-merge-diff's wording.
    fn typed_patch_message(&self) -> String {
        match self {
            SchemaError::Unknown(path) => format!("{path}: field not declared in schema"),
            SchemaError::Type {
                path,
                expected,
                got,
            } => {
                format!("{path}: expected {expected}, got &value.valueUnstructured{{Value:{got}}}")
            }
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `fields`; unknown fields are removed when `drop_unknown` (a create's
/// default field validation drops them) and reported otherwise.
fn check_schema(
    value: &mut Map<String, Value>,
    fields: &[(&str, Shape)],
    path: &str,
    drop_unknown: bool,
    errors: &mut Vec<SchemaError>,
) {
    let keys: Vec<String> = value.keys().cloned().collect();
    for key in keys {
        let here = format!("{path}.{key}");
        let Some((_, shape)) = fields.iter().find(|(name, _)| *name == key) else {
            if drop_unknown {
                value.remove(&key);
            } else {
                errors.push(SchemaError::Unknown(here));
            }
            continue;
        };
        let Some(child) = value.get_mut(&key) else {
            continue;
        };
        let ok = match (shape, &mut *child) {
            (_, Value::Null) => true,
            (Shape::String, Value::String(_)) => true,
            (Shape::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (Shape::Bool, Value::Bool(_)) => true,
            (Shape::StringMap, Value::Object(map)) => {
                for (k, v) in map.iter() {
                    if !v.is_string() && !v.is_null() {
                        errors.push(SchemaError::Type {
                            path: format!("{here}.{k}"),
                            expected: "string",
                            got: v.clone(),
                        });
                    }
                }
                true
            }
            (Shape::StringList, Value::Array(items)) => {
                check_items(items, &here, Value::is_string, "string", errors);
                true
            }
            (Shape::ObjectList, Value::Array(items)) => {
                check_items(items, &here, Value::is_object, "map", errors);
                true
            }
            (Shape::Object(inner), Value::Object(map)) => {
                check_schema(map, inner, &here, drop_unknown, errors);
                true
            }
            _ => false,
        };
        if !ok {
            errors.push(SchemaError::Type {
                path: here,
                expected: shape.name(),
                got: child.clone(),
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Objects
// ---------------------------------------------------------------------------------------------

fn system_namespace(cluster: &mut KubeCluster, name: &str, now: u64) {
    cluster.resource_version += 1;
    let object = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": uuid::Uuid::new_v4().to_string(),
            "resourceVersion": cluster.resource_version.to_string(),
            "creationTimestamp": kube_time(now),
            "labels": { "kubernetes.io/metadata.name": name },
        },
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": "Active" },
    });
    let managed = apply::update(
        None,
        &object,
        &[],
        "kube-apiserver",
        now,
        Kind::Namespace.ignored(),
    )
    .into_iter()
    .map(|mut e| {
        // PrepareForCreate set spec, not the manager.
        e.fields
            .retain(|p| p.first().map(String::as_str) != Some("spec"));
        e
    })
    .collect();
    cluster.namespaces.insert(
        name.to_string(),
        KubeObject {
            object,
            managed_fields: managed,
        },
    );
}

/// The namespaces a new cluster has (made by kube-apiserver's system namespaces controller).
pub fn bootstrap(cluster: &mut KubeCluster) {
    let now = now_ms();
    for name in ["default", "kube-node-lease", "kube-public", "kube-system"] {
        system_namespace(cluster, name, now);
    }
}

/// A stored service account's object.
pub fn service_account(call: &Call<'_>, namespace: &str, name: &str) -> Option<Value> {
    call.app.store.read(|s| {
        s.kube_clusters
            .get(&call.view.id)?
            .service_accounts
            .get(&key(Kind::ServiceAccount, namespace, name))
            .map(|o| o.object.clone())
    })
}

/// An object as served: with its managedFields; without `kind`/`apiVersion` inside lists.
fn render(object: &KubeObject, typed: bool) -> Value {
    let mut value = object.object.clone();
    if !object.managed_fields.is_empty()
        && let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut)
    {
        metadata.insert(
            "managedFields".into(),
            managed_fields_json(&object.managed_fields),
        );
    }
    if !typed && let Some(map) = value.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    value
}

fn terminating(namespace: &Value) -> bool {
    namespace.pointer("/metadata/deletionTimestamp").is_some()
        || namespace.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
}

/// NamespaceLifecycle: the namespace of a new object must exist and not be terminating.
fn admit_new(
    cluster: &KubeCluster,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<(), ApiError> {
    if kind != Kind::ServiceAccount {
        return Ok(());
    }
    match cluster.namespaces.get(namespace) {
        None => Err(errors::not_found("namespaces", namespace)),
        Some(ns) if terminating(&ns.object) => Err(errors::namespace_terminating(
            kind.resource(),
            name,
            namespace,
        )),
        Some(_) => Ok(()),
    }
}

/// The namespace strategy: the `kubernetes.io/metadata.name` label (defaulting), and spec and
/// status that only the server sets (`PrepareForCreate`/`PrepareForUpdate`).
fn namespace_label(object: &mut Value, name: &str) {
    if !object["metadata"]["labels"].is_object() {
        object["metadata"]["labels"] = json!({});
    }
    object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
}

fn namespace_prepare(object: &mut Value, old: Option<&Value>) {
    match old {
        Some(old) => {
            for field in ["spec", "status"] {
                match old.get(field) {
                    Some(v) => object[field] = v.clone(),
                    None => {
                        if let Some(map) = object.as_object_mut() {
                            map.remove(field);
                        }
                    }
                }
            }
            if let Some(deleted) = old.pointer("/metadata/deletionTimestamp") {
                object["metadata"]["deletionTimestamp"] = deleted.clone();
            }
        }
        None => {
            let mut finalizers: Vec<Value> = object
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == "kubernetes") {
                finalizers.push(json!("kubernetes"));
            }
            object["spec"] = json!({ "finalizers": finalizers });
            object["status"] = json!({ "phase": "Active" });
        }
    }
}

fn validate_meta(kind: Kind, object: &Value) -> Result<(), ApiError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut errors = Vec::new();
    if let Some(labels) = object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
    {
        errors.extend(validation::labels(labels));
    }
    if let Some(annotations) = object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    {
        errors.extend(validation::annotations(annotations));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors::invalid(kind.kind(), "", name, &errors))
    }
}

fn skeleton(kind: Kind, namespace: &str, name: &str, now: u64) -> Value {
    let mut metadata = json!({
        "name": name,
        "uid": uuid::Uuid::new_v4().to_string(),
        "creationTimestamp": kube_time(now),
    });
    if kind == Kind::ServiceAccount {
        metadata["namespace"] = json!(namespace);
    }
    json!({ "apiVersion": "v1", "kind": kind.kind(), "metadata": metadata })
}

fn set_resource_version(cluster: &mut KubeCluster, object: &mut Value) {
    cluster.resource_version += 1;
    object["metadata"]["resourceVersion"] = json!(cluster.resource_version.to_string());
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

fn options_invalid(options: &str, error: FieldError) -> ApiError {
    errors::invalid(options, "meta.k8s.io", "", &[error])
}

/// `dryRun`: absent, or `All`.
fn dry_run(values: &[String], options: &str) -> Result<bool, ApiError> {
    match values {
        [] => Ok(false),
        [all] if all == "All" => Ok(true),
        other => {
            let quoted: Vec<String> = other.iter().map(|v| format!("{v:?}")).collect();
            Err(options_invalid(
                options,
                FieldError::not_supported("dryRun", &format!("[{}]", quoted.join(" ")), &["All"]),
            ))
        }
    }
}

fn query_dry_run(request: &Request, options: &str) -> Result<bool, ApiError> {
    let values: Vec<String> = request
        .query("dryRun")
        .map(String::from)
        .into_iter()
        .collect();
    dry_run(&values, options)
}

fn check_manager(manager: &str, options: &str) -> Result<(), ApiError> {
    if manager.len() > 128 {
        return Err(options_invalid(
            options,
            FieldError::too_long("fieldManager", 128),
        ));
    }
    if manager.chars().any(|c| c.is_control()) {
        return Err(options_invalid(
            options,
            FieldError::invalid(
                "fieldManager",
                &Value::String(manager.to_string()),
                "must only contain printable characters",
            ),
        ));
    }
    Ok(())
}

/// The manager of an Update: `?fieldManager=`, else the User-Agent up to its first `/`
/// (`prefixFromUserAgent`).
pub fn manager(request: &Request) -> Result<String, ApiError> {
    if let Some(manager) = request.query("fieldManager") {
        check_manager(manager, "CreateOptions")?;
        return Ok(manager.to_string());
    }
    let agent = request
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(agent
        .split('/')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect())
}

fn media_type(request: &Request) -> Option<String> {
    request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

// ---------------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------------

pub fn handle(call: &Call<'_>) -> ApiResult {
    let a = call.attributes;
    if !a.api_group.is_empty() || a.api_version != "v1" || a.extra {
        return Err(errors::no_such_resource());
    }
    let method = &call.request.method;
    match (a.resource.as_str(), a.subresource.as_str()) {
        ("namespaces", "") => {
            if a.name.is_empty() {
                collection(call, Kind::Namespace, None)
            } else {
                item(call, Kind::Namespace, "", &a.name)
            }
        }
        ("namespaces", "status") if *method == Method::GET => {
            item(call, Kind::Namespace, "", &a.name)
        }
        ("namespaces", "status" | "finalize") => Err(errors::method_not_allowed()),
        ("serviceaccounts", "") => match (a.namespace.as_str(), a.name.as_str()) {
            ("", "") => collection(call, Kind::ServiceAccount, None),
            ("", _) => Err(errors::no_such_resource()),
            (namespace, "") => collection(call, Kind::ServiceAccount, Some(namespace)),
            (namespace, name) => item(call, Kind::ServiceAccount, namespace, name),
        },
        ("serviceaccounts", "token") if !a.namespace.is_empty() => token::request(call),
        _ => Err(errors::no_such_resource()),
    }
}

fn collection(call: &Call<'_>, kind: Kind, namespace: Option<&str>) -> ApiResult {
    match call.attributes.verb.as_str() {
        "list" => list(call, kind, namespace),
        "create" => match (kind, namespace) {
            (Kind::ServiceAccount, None) => Err(errors::method_not_allowed()),
            _ => create(call, kind, namespace.unwrap_or("")),
        },
        // Watch needs a streaming answer the emulator does not give.
        _ => Err(errors::method_not_allowed()),
    }
}

fn item(call: &Call<'_>, kind: Kind, namespace: &str, name: &str) -> ApiResult {
    match call.request.method {
        Method::GET => get(call, kind, namespace, name),
        Method::PUT => replace(call, kind, namespace, name),
        Method::PATCH => patch(call, kind, namespace, name),
        Method::DELETE => delete(call, kind, namespace, name),
        _ => Err(errors::method_not_allowed()),
    }
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

fn get(call: &Call<'_>, kind: Kind, namespace: &str, name: &str) -> ApiResult {
    call.app
        .store
        .read(|s| {
            let cluster = s.kube_clusters.get(&call.view.id)?;
            objects(cluster, kind)
                .get(&key(kind, namespace, name))
                .map(|o| render(o, true))
        })
        .map(|body| json_response(StatusCode::OK, &body))
        .ok_or_else(|| errors::not_found(kind.resource(), name))
}

/// The `continue` token kube-apiserver hands out (`storage.EncodeContinue`): base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"/{key}\u0000"}`.
fn encode_continue(resource_version: u64, last_key: &str) -> String {
    let token = json!({ "v": "meta.k8s.io/v1", "rv": resource_version, "start": format!("/{last_key}\u{0}") });
    URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<String, ApiError> {
    let invalid = |why: String| {
        errors::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(e.to_string()))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if value["v"] != "meta.k8s.io/v1" {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    let start = value["start"]
        .as_str()
        .ok_or_else(|| invalid("no start key".into()))?;
    let start = start.trim_end_matches('\u{0}');
    Ok(start.strip_prefix('/').unwrap_or(start).to_string())
}

fn list(call: &Call<'_>, kind: Kind, namespace: Option<&str>) -> ApiResult {
    let request = call.request;
    let labels = Selector::parse(request.query("labelSelector").unwrap_or(""))
        .map_err(errors::bad_request)?;
    let fields = FieldSelector::parse(
        request.query("fieldSelector").unwrap_or(""),
        kind.field_selectors(),
    )
    .map_err(errors::bad_request)?;
    let limit = match request.query("limit") {
        None | Some("") => 0,
        Some(limit) => limit
            .parse::<i64>()
            .map_err(|e| errors::bad_request(format!("limit: Invalid value: {limit:?}: {e}")))?,
    };
    let after = match request.query("continue") {
        None | Some("") => None,
        Some(token) => Some(decode_continue(token)?),
    };
    let selectors_set = request
        .query("labelSelector")
        .is_some_and(|s| !s.is_empty())
        || request
            .query("fieldSelector")
            .is_some_and(|s| !s.is_empty());
    let (resource_version, matched) = call.app.store.read(|s| {
        let Some(cluster) = s.kube_clusters.get(&call.view.id) else {
            return (0, Vec::new());
        };
        let prefix = namespace.map(|n| format!("{n}/"));
        let matched: Vec<(String, Value)> = objects(cluster, kind)
            .iter()
            .filter(|(k, _)| prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str())))
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
            .filter(|(_, o)| {
                labels.matches(
                    o.object
                        .pointer("/metadata/labels")
                        .and_then(Value::as_object),
                ) && fields.matches(&o.object)
            })
            .map(|(k, o)| (k.clone(), render(o, false)))
            .collect();
        (cluster.resource_version, matched)
    });
    let total = matched.len();
    let page: Vec<(String, Value)> = if limit > 0 {
        matched.into_iter().take(limit as usize).collect()
    } else {
        matched
    };
    let mut metadata = json!({ "resourceVersion": resource_version.to_string() });
    if page.len() < total
        && let Some((last, _)) = page.last()
    {
        metadata["continue"] = json!(encode_continue(resource_version, last));
        if !selectors_set {
            metadata["remainingItemCount"] = json!(total - page.len());
        }
    }
    let items: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": "v1",
            "metadata": metadata,
            "items": items,
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

fn cannot_handle(kind: Kind, given: &str, why: &str) -> ApiError {
    errors::bad_request(format!(
        "{given} in version \"v1\" cannot be handled as a {}: {why}",
        kind.kind()
    ))
}

/// An object's fields (without `metadata`) and its metadata.
type FieldsAndMetadata = (Map<String, Value>, Map<String, Value>);

/// A create or update body: its fields (without `metadata`) and its metadata, after the checks
/// the decoder makes (media type, JSON, kind, field types; unknown fields are dropped, as the
/// default field validation does) and the namespace check of the handler.
fn decode_object(
    request: &Request,
    kind: Kind,
    namespace: &str,
) -> Result<FieldsAndMetadata, ApiError> {
    match media_type(request).as_deref() {
        None | Some("application/json") | Some("application/yaml") => {}
        Some(_) => return Err(errors::unsupported_body_type()),
    }
    let mut body: Value = serde_json::from_slice(&request.body).map_err(|e| {
        errors::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {e}",
            kind.kind()
        ))
    })?;
    let Some(fields) = body.as_object_mut() else {
        return Err(errors::bad_request(format!(
            "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            kind.kind(),
            json_type(&body)
        )));
    };
    let given_kind = fields
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let given_version = fields
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if (!given_kind.is_empty() && given_kind != kind.kind())
        || (!given_version.is_empty() && given_version != "v1")
    {
        return Err(cannot_handle(
            kind,
            &given_kind,
            &format!(
                "converting ({given_version}.{given_kind}) to (core.{}): unknown conversion",
                kind.kind()
            ),
        ));
    }
    let mut schema_errors = Vec::new();
    check_schema(fields, kind.schema(), "", true, &mut schema_errors);
    if let Some(error) = schema_errors.first() {
        let (path, expected, got) = match error {
            SchemaError::Type {
                path,
                expected,
                got,
            } => (path.clone(), *expected, json_type(got)),
            SchemaError::Unknown(path) => (path.clone(), "", ""),
        };
        // encoding/json names the Go struct and the JSON path of the field.
        let mut steps = path.trim_start_matches('.').split('.');
        let field = match (steps.next(), steps.next()) {
            (Some("metadata"), Some(second)) => format!("ObjectMeta.metadata.{second}"),
            (Some(first), _) => format!("{}.{first}", kind.kind()),
            _ => kind.kind().to_string(),
        };
        let field = field.split('[').next().unwrap_or_default().to_string();
        return Err(cannot_handle(
            kind,
            kind.kind(),
            &format!(
                "json: cannot unmarshal {got} into Go struct field {field} of type {expected}"
            ),
        ));
    }
    let metadata = match fields.remove("metadata") {
        Some(Value::Object(metadata)) => metadata,
        _ => Map::new(),
    };
    let given_namespace = metadata
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind == Kind::ServiceAccount && !given_namespace.is_empty() && given_namespace != namespace {
        return Err(errors::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok((std::mem::take(fields), metadata))
}

fn create(call: &Call<'_>, kind: Kind, namespace: &str) -> ApiResult {
    let request = call.request;
    let dry = query_dry_run(request, "CreateOptions")?;
    let manager = manager(request)?;
    let (fields, metadata) = decode_object(request, kind, namespace)?;
    let mut name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let generate = metadata
        .get("generateName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() && !generate.is_empty() {
        // `names.SimpleNameGenerator`: 5 characters of an alphabet without vowels.
        use rand::Rng;
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut rng = rand::rng();
        let suffix: String = (0..5)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        name = format!("{}{suffix}", &generate[..generate.len().min(58)]);
    }
    let name_errors = kind.name_errors(&name);
    if !name_errors.is_empty() {
        return Err(errors::invalid(kind.kind(), "", &name, &name_errors));
    }

    // The object: what the client sent, with the fields only the server sets replaced.
    let now = now_ms();
    let mut object = skeleton(kind, namespace, &name, now);
    for (field, value) in fields.iter() {
        if !matches!(field.as_str(), "metadata" | "apiVersion" | "kind") {
            object[field] = value.clone();
        }
    }
    for (field, value) in &metadata {
        if matches!(
            field.as_str(),
            "generateName" | "labels" | "annotations" | "ownerReferences" | "finalizers"
        ) {
            object["metadata"][field] = value.clone();
        }
    }
    if kind == Kind::Namespace {
        namespace_label(&mut object, &name);
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
    }
    apply::normalize(&mut object);
    validate_meta(kind, &object)?;
    let managed = apply::update(None, &object, &[], &manager, now, kind.ignored());
    if kind == Kind::Namespace {
        namespace_prepare(&mut object, None);
    }

    let stored = call.app.store.update(|s| {
        let cluster = s
            .kube_clusters
            .get_mut(&call.view.id)
            .ok_or_else(errors::no_such_resource)?;
        admit_new(cluster, kind, namespace, &name)?;
        if objects(cluster, kind).contains_key(&key(kind, namespace, &name)) {
            return Err(errors::already_exists(kind.resource(), &name));
        }
        let mut object = object;
        if !dry {
            set_resource_version(cluster, &mut object);
        }
        let stored = KubeObject {
            object,
            managed_fields: managed,
        };
        if !dry {
            objects_mut(cluster, kind).insert(key(kind, namespace, &name), stored.clone());
        }
        Ok::<_, ApiError>(stored)
    })?;
    Ok(json_response(StatusCode::CREATED, &render(&stored, true)))
}

/// The fields of `live` only the server sets, copied onto `object`.
fn keep_server_fields(object: &mut Value, live: &Value) {
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
    ] {
        match live["metadata"].get(field) {
            Some(v) => object["metadata"][field] = v.clone(),
            None => {
                if let Some(metadata) = object["metadata"].as_object_mut() {
                    metadata.remove(field);
                }
            }
        }
    }
    for field in ["apiVersion", "kind"] {
        object[field] = live[field].clone();
    }
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("managedFields");
    }
}

/// An Update (replace or merge patch) of a stored object: the server's fields kept, the strategy
/// applied, validated, managed fields updated; stored unless nothing changed or it is a dry run.
#[allow(clippy::too_many_arguments)]
fn store_update(
    cluster: &mut KubeCluster,
    kind: Kind,
    key: String,
    live: &KubeObject,
    mut object: Value,
    manager: &str,
    now: u64,
    dry: bool,
) -> Result<KubeObject, ApiError> {
    keep_server_fields(&mut object, &live.object);
    let name = live.object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if kind == Kind::Namespace {
        namespace_label(&mut object, &name);
        namespace_prepare(&mut object, Some(&live.object));
    }
    apply::normalize(&mut object);
    validate_meta(kind, &object)?;
    let managed = apply::update(
        Some(&live.object),
        &object,
        &live.managed_fields,
        manager,
        now,
        kind.ignored(),
    );
    let mut next = KubeObject {
        object,
        managed_fields: managed,
    };
    if next == *live {
        return Ok(next);
    }
    if !dry {
        set_resource_version(cluster, &mut next.object);
        objects_mut(cluster, kind).insert(key, next.clone());
    }
    Ok(next)
}

/// `PUT`: the body replaces the object (it must exist; `metadata.resourceVersion`, when given,
/// must be the current one).
fn replace(call: &Call<'_>, kind: Kind, namespace: &str, name: &str) -> ApiResult {
    let request = call.request;
    let dry = query_dry_run(request, "UpdateOptions")?;
    let manager = manager(request)?;
    let (fields, metadata) = decode_object(request, kind, namespace)?;
    let given_name = metadata.get("name").and_then(Value::as_str).unwrap_or("");
    if given_name.is_empty() {
        return Err(errors::bad_request(format!(
            "the name of the object ({name} based on URL) was undeterminable: name must be provided"
        )));
    }
    if given_name != name {
        return Err(errors::bad_request(format!(
            "the name of the object ({given_name}) does not match the name on the URL ({name})"
        )));
    }
    let expected_version = metadata
        .get("resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(String::from);
    let mut object = Value::Object(fields);
    object["metadata"] = Value::Object(metadata);
    let now = now_ms();
    let stored = call.app.store.update(|s| {
        let cluster = s
            .kube_clusters
            .get_mut(&call.view.id)
            .ok_or_else(errors::no_such_resource)?;
        let k = key(kind, namespace, name);
        let live = objects(cluster, kind)
            .get(&k)
            .cloned()
            .ok_or_else(|| errors::not_found(kind.resource(), name))?;
        if let Some(expected) = &expected_version
            && live.object.pointer("/metadata/resourceVersion").and_then(Value::as_str)
                != Some(expected.as_str())
        {
            return Err(errors::cannot_fulfil(
                kind.resource(),
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        store_update(cluster, kind, k, &live, object, &manager, now, dry)
    })?;
    Ok(json_response(StatusCode::OK, &render(&stored, true)))
}

// ---------------------------------------------------------------------------------------------
// Patch: server-side apply and merge patches
// ---------------------------------------------------------------------------------------------

fn patch(call: &Call<'_>, kind: Kind, namespace: &str, name: &str) -> ApiResult {
    match media_type(call.request).as_deref() {
        Some("application/apply-patch+yaml") => server_side_apply(call, kind, namespace, name),
        Some("application/merge-patch+json") | Some("application/strategic-merge-patch+json") => {
            update_patch(call, kind, namespace, name, false)
        }
        Some("application/json-patch+json") => update_patch(call, kind, namespace, name, true),
        _ => Err(errors::unsupported_patch_type()),
    }
}

fn parse_bool(request: &Request, name: &str) -> Result<bool, ApiError> {
    match request.query(name) {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
        Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
        Some(other) => Err(errors::bad_request(format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// `PATCH` with `application/apply-patch+yaml`: the body is the configuration, in JSON (which is
/// YAML; kube-rs and client-go send JSON).
fn server_side_apply(call: &Call<'_>, kind: Kind, namespace: &str, name: &str) -> ApiResult {
    let request = call.request;
    let manager = match request.query("fieldManager") {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => {
            return Err(options_invalid(
                "PatchOptions",
                FieldError::required("fieldManager", "is required for apply patch"),
            ));
        }
    };
    check_manager(&manager, "PatchOptions")?;
    let force = parse_bool(request, "force")?;
    let dry = query_dry_run(request, "PatchOptions")?;
    let mut config: Value = serde_json::from_slice(&request.body).map_err(|e| {
        errors::bad_request(format!(
            "error decoding YAML: error converting YAML to JSON: yaml: {e} (the sandbox reads apply configurations written in JSON)"
        ))
    })?;
    let Some(fields) = config.as_object_mut() else {
        return Err(errors::bad_request(format!(
            "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&config)
        )));
    };
    let given_kind = fields.get("kind").and_then(Value::as_str).unwrap_or("");
    let given_version = fields
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if given_kind != kind.kind() || given_version != "v1" {
        let (group, version) = given_version
            .rsplit_once('/')
            .unwrap_or(("", given_version));
        return Err(errors::bad_request(format!(
            "invalid object type: {group}/{version}, Kind={given_kind}"
        )));
    }
    let given_name = fields
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !given_name.is_empty() && given_name != name {
        return Err(errors::bad_request(format!(
            "the name of the object ({given_name}) does not match the name on the URL ({name})"
        )));
    }
    let given_namespace = fields
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind == Kind::ServiceAccount && !given_namespace.is_empty() && given_namespace != namespace {
        return Err(errors::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut schema_errors = Vec::new();
    check_schema(fields, kind.schema(), "", false, &mut schema_errors);
    if let Some(error) = schema_errors.first() {
        return Err(errors::undecodable(format!(
            "failed to create typed patch object (/{name}; /v1, Kind={}): {}",
            kind.kind(),
            error.typed_patch_message()
        )));
    }
    let precondition = fields
        .get("metadata")
        .and_then(|m| m.get("resourceVersion"))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(String::from);

    let now = now_ms();
    let (stored, created) = call.app.store.update(|s| {
        let cluster = s
            .kube_clusters
            .get_mut(&call.view.id)
            .ok_or_else(errors::no_such_resource)?;
        let k = key(kind, namespace, name);
        let live = objects(cluster, kind).get(&k).cloned();
        let (base, base_managed) = match &live {
            Some(live) => {
                if let Some(expected) = &precondition
                    && live.object.pointer("/metadata/resourceVersion").and_then(Value::as_str)
                        != Some(expected.as_str())
                {
                    return Err(errors::cannot_fulfil(
                        kind.resource(),
                        name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
                // An object nobody manages yet: what it holds is first recorded as an Update by
                // `before-first-apply` (`skipNonAppliedManager`), so applying other values over
                // it is a conflict.
                let managed = if live.managed_fields.is_empty() {
                    apply::update(
                        None,
                        &live.object,
                        &[],
                        "before-first-apply",
                        now,
                        kind.ignored(),
                    )
                } else {
                    live.managed_fields.clone()
                };
                (live.object.clone(), managed)
            }
            None => {
                let name_errors = kind.name_errors(name);
                if !name_errors.is_empty() {
                    return Err(errors::invalid(kind.kind(), "", name, &name_errors));
                }
                admit_new(cluster, kind, namespace, name)?;
                if precondition.is_some() {
                    return Err(errors::not_found(kind.resource(), name));
                }
                (skeleton(kind, namespace, name, now), Vec::new())
            }
        };
        let outcome = apply::apply(
            &base,
            &base_managed,
            &config,
            &manager,
            force,
            now,
            kind.ignored(),
        )
        .map_err(|conflicts| errors::apply_conflict(&conflicts))?;
        let mut object = outcome.object;
        if kind == Kind::Namespace {
            namespace_label(&mut object, name);
            namespace_prepare(&mut object, live.as_ref().map(|l| &l.object));
        }
        validate_meta(kind, &object)?;
        let mut next = KubeObject {
            object,
            managed_fields: outcome.managed,
        };
        if let Some(live) = &live
            && *live == next
        {
            return Ok((next, false));
        }
        if !dry {
            set_resource_version(cluster, &mut next.object);
            objects_mut(cluster, kind).insert(k, next.clone());
        }
        Ok::<_, ApiError>((next, live.is_none()))
    })?;
    Ok(json_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &render(&stored, true),
    ))
}

/// RFC 7386 JSON merge patch (`null` removes).
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// RFC 6901 pointer tokens (`~1` is `/`, `~0` is `~`).
fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// The parent container of a pointer's target and the last token.
fn parent_of<'a>(document: &'a mut Value, tokens: &[String]) -> Option<(&'a mut Value, String)> {
    let (last, parents) = tokens.split_last()?;
    let mut current = document;
    for token in parents {
        current = match current {
            Value::Object(map) => map.get_mut(token)?,
            Value::Array(items) => items.get_mut(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some((current, last.clone()))
}

fn pointer_remove(document: &mut Value, tokens: &[String]) -> Option<Value> {
    let (parent, last) = parent_of(document, tokens)?;
    match parent {
        Value::Object(map) => map.remove(&last),
        Value::Array(items) => {
            let index = last.parse::<usize>().ok().filter(|i| *i < items.len())?;
            Some(items.remove(index))
        }
        _ => None,
    }
}

fn pointer_add(document: &mut Value, tokens: &[String], value: Value) -> Option<()> {
    if tokens.is_empty() {
        *document = value;
        return Some(());
    }
    let (parent, last) = parent_of(document, tokens)?;
    match parent {
        Value::Object(map) => {
            map.insert(last, value);
            Some(())
        }
        Value::Array(items) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>().ok().filter(|i| *i <= items.len())?
            };
            items.insert(index, value);
            Some(())
        }
        _ => None,
    }
}

/// RFC 6902 JSON patch; `None` when an operation fails (the real server's 422).
fn json_patch(document: &mut Value, operations: &[Value]) -> Option<()> {
    for operation in operations {
        let op = operation.get("op")?.as_str()?;
        let path = pointer_tokens(operation.get("path")?.as_str()?)?;
        let pointer = |tokens: &[String]| {
            tokens
                .iter()
                .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
                .collect::<String>()
        };
        match op {
            "add" => pointer_add(document, &path, operation.get("value")?.clone())?,
            "remove" => {
                pointer_remove(document, &path)?;
            }
            "replace" => {
                pointer_remove(document, &path)?;
                pointer_add(document, &path, operation.get("value")?.clone())?;
            }
            "move" | "copy" => {
                let from = pointer_tokens(operation.get("from")?.as_str()?)?;
                let value = if op == "move" {
                    pointer_remove(document, &from)?
                } else {
                    document.pointer(&pointer(&from))?.clone()
                };
                pointer_add(document, &path, value)?;
            }
            "test" => {
                if document.pointer(&pointer(&path)) != operation.get("value") {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(())
}

/// `PATCH` with `application/merge-patch+json` or `application/strategic-merge-patch+json`
/// (the same for these kinds' maps; their lists are replaced whole here, where strategic merge
/// would merge `secrets` by name), or `application/json-patch+json` (RFC 6902).
fn update_patch(
    call: &Call<'_>,
    kind: Kind,
    namespace: &str,
    name: &str,
    json_patch_type: bool,
) -> ApiResult {
    let request = call.request;
    if request.query("force").is_some() {
        return Err(options_invalid(
            "PatchOptions",
            FieldError::forbidden("force", "may not be specified for non-apply patch"),
        ));
    }
    let dry = query_dry_run(request, "PatchOptions")?;
    let manager = manager(request)?;
    let patch: Value = serde_json::from_slice(&request.body)
        .map_err(|e| errors::bad_request(format!("error decoding patch: {e}")))?;
    if json_patch_type && !patch.is_array() {
        return Err(errors::bad_request(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type []handlers.jsonPatchOp",
            json_type(&patch)
        )));
    }
    if !json_patch_type && !patch.is_object() {
        return Err(errors::bad_request(format!(
            "error decoding patch: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&patch)
        )));
    }
    let now = now_ms();
    let stored = call.app.store.update(|s| {
        let cluster = s
            .kube_clusters
            .get_mut(&call.view.id)
            .ok_or_else(errors::no_such_resource)?;
        let k = key(kind, namespace, name);
        let live = objects(cluster, kind)
            .get(&k)
            .cloned()
            .ok_or_else(|| errors::not_found(kind.resource(), name))?;
        let mut object = live.object.clone();
        if let Value::Array(operations) = &patch {
            json_patch(&mut object, operations).ok_or_else(|| {
                ApiError::kube(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                )
                .with_kube_details(json!({}))
            })?;
        } else {
            merge(&mut object, &patch);
        }
        let Some(fields) = object.as_object_mut() else {
            return Err(errors::bad_request(
                "the patched object is not a JSON object",
            ));
        };
        let mut schema_errors = Vec::new();
        check_schema(fields, kind.schema(), "", true, &mut schema_errors);
        if let Some(error) = schema_errors.first() {
            return Err(errors::bad_request(error.typed_patch_message()));
        }
        store_update(cluster, kind, k, &live, object, &manager, now, dry)
    })?;
    Ok(json_response(StatusCode::OK, &render(&stored, true)))
}

// ---------------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------------

/// Namespaces the NamespaceLifecycle plugin keeps (`immortalNamespaces`).
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

fn delete(call: &Call<'_>, kind: Kind, namespace: &str, name: &str) -> ApiResult {
    let request = call.request;
    let options: Value = if request.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&request.body).map_err(|e| {
            errors::undecodable(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    let mut dry_values: Vec<String> = request
        .query("dryRun")
        .map(String::from)
        .into_iter()
        .collect();
    if let Some(values) = options.get("dryRun").and_then(Value::as_array) {
        dry_values.extend(values.iter().filter_map(Value::as_str).map(String::from));
    }
    dry_values.dedup();
    let dry = dry_run(&dry_values, "DeleteOptions")?;
    let uid = options
        .pointer("/preconditions/uid")
        .and_then(Value::as_str)
        .map(String::from);
    let version = options
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from);
    let now = now_ms();
    let gone = call.app.store.update(|s| {
        let cluster = s
            .kube_clusters
            .get_mut(&call.view.id)
            .ok_or_else(errors::no_such_resource)?;
        let k = key(kind, namespace, name);
        let live = objects(cluster, kind)
            .get(&k)
            .cloned()
            .ok_or_else(|| errors::not_found(kind.resource(), name))?;
        let record_uid = live.object.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("");
        if let Some(uid) = &uid
            && uid != record_uid
        {
            return Err(errors::cannot_fulfil(
                kind.kind(),
                name,
                &format!("the UID in the precondition ({uid}) does not match the UID in record ({record_uid}). The object might have been deleted and then recreated"),
            ));
        }
        let record_version = live
            .object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(version) = &version
            && version != record_version
        {
            return Err(errors::cannot_fulfil(
                kind.kind(),
                name,
                &format!("the ResourceVersion in the precondition ({version}) does not match the ResourceVersion in record ({record_version}). The object might have been modified"),
            ));
        }
        match kind {
            Kind::ServiceAccount => {
                let mut gone = live;
                if !dry {
                    objects_mut(cluster, kind).remove(&k);
                    set_resource_version(cluster, &mut gone.object);
                }
                Ok::<_, ApiError>(gone)
            }
            Kind::Namespace => {
                if IMMORTAL.contains(&name) {
                    return Err(errors::forbidden(
                        kind.resource(),
                        name,
                        "this namespace may not be deleted",
                    ));
                }
                if terminating(&live.object) {
                    return Ok(live);
                }
                let mut next = live;
                next.object["metadata"]["deletionTimestamp"] = json!(kube_time(now));
                next.object["status"] = json!({ "phase": "Terminating" });
                if !dry {
                    set_resource_version(cluster, &mut next.object);
                    objects_mut(cluster, kind).insert(k, next.clone());
                }
                Ok(next)
            }
        }
    })?;
    Ok(json_response(StatusCode::OK, &render(&gone, true)))
}

/// One type error per list item that is not of the expected kind.
fn check_items(
    items: &[Value],
    here: &str,
    is: fn(&Value) -> bool,
    expected: &'static str,
    errors: &mut Vec<SchemaError>,
) {
    for (i, v) in items.iter().enumerate() {
        if !is(v) {
            errors.push(SchemaError::Type {
                path: format!("{here}[{i}]"),
                expected,
                got: v.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_continue(414, "exp1");
        let decoded: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        assert_eq!(
            decoded,
            json!({"v": "meta.k8s.io/v1", "rv": 414, "start": "/exp1\u{0}"})
        );
        assert_eq!(decode_continue(&token).unwrap(), "exp1");
        assert!(decode_continue("not base64!").is_err());
    }

    #[test]
    fn schema_errors_are_found_or_dropped() {
        let mut body =
            json!({"metadata": {"name": "a", "labels": {"a": 1}, "bogus": 1}, "bogus": true});
        let mut errors = Vec::new();
        check_schema(
            body.as_object_mut().unwrap(),
            SERVICE_ACCOUNT,
            "",
            false,
            &mut errors,
        );
        let messages: Vec<String> = errors
            .iter()
            .map(SchemaError::typed_patch_message)
            .collect();
        assert!(
            messages.contains(&".bogus: field not declared in schema".to_string()),
            "{messages:?}"
        );
        assert!(messages.contains(&".metadata.bogus: field not declared in schema".to_string()));
        assert!(
            messages.contains(
                &".metadata.labels.a: expected string, got &value.valueUnstructured{Value:1}"
                    .to_string()
            )
        );
        let mut errors = Vec::new();
        check_schema(
            body.as_object_mut().unwrap(),
            SERVICE_ACCOUNT,
            "",
            true,
            &mut errors,
        );
        assert!(body.get("bogus").is_none());
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn json_patches_follow_rfc_6902() {
        let mut document =
            json!({"metadata": {"labels": {"a": "1", "b/c": "2"}}, "secrets": [{"name": "x"}]});
        json_patch(
            &mut document,
            &[
                json!({"op": "add", "path": "/metadata/labels/n", "value": "3"}),
                json!({"op": "remove", "path": "/metadata/labels/b~1c"}),
                json!({"op": "replace", "path": "/metadata/labels/a", "value": "9"}),
                json!({"op": "add", "path": "/secrets/-", "value": {"name": "y"}}),
                json!({"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/m"}),
                json!({"op": "move", "from": "/metadata/labels/n", "path": "/metadata/labels/o"}),
                json!({"op": "test", "path": "/metadata/labels/o", "value": "3"}),
            ],
        )
        .unwrap();
        assert_eq!(
            document,
            json!({"metadata": {"labels": {"a": "9", "m": "9", "o": "3"}}, "secrets": [{"name": "x"}, {"name": "y"}]})
        );
        assert!(
            json_patch(
                &mut document,
                &[json!({"op": "remove", "path": "/nothere"})]
            )
            .is_none()
        );
        assert!(
            json_patch(
                &mut document,
                &[json!({"op": "test", "path": "/metadata/labels/a", "value": "1"})]
            )
            .is_none()
        );
        assert!(json_patch(&mut document, &[json!({"op": "bogus", "path": "/a"})]).is_none());
    }

    #[test]
    fn merge_patches_follow_rfc_7386() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge(&mut target, &json!({"a": {"b": null, "e": 3}, "d": [2]}));
        assert_eq!(target, json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }
}
