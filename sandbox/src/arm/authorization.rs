//! Microsoft.Authorization: role definitions and role assignments at any scope.
//!
//! Contracts: `specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
//! authorization-RoleAssignmentsCalls.json` and `…/authorization-RoleDefinitionsCalls.json` (with their
//! examples `RoleAssignments_CreateForResourceGroup.json`, `RoleAssignments_ListForScope.json`,
//! `GetRoleDefinitionByName.json`, `PutRoleDefinition.json`), the api-versions the spec readmes list,
//! the "Assign Azure roles using the REST API" doc, and error bodies seen in real logs (noted where a
//! code or wording could not be checked against a primary source).
//!
//! Both resources are synchronous: PUT answers 201/200, DELETE 200 with the body or 204.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::method_not_allowed;
use crate::App;
use crate::auth::scope_contains;
use crate::builtin_roles::{BUILTIN_ROLES, BuiltinRole};
use crate::http::{
    Api, ApiError, ApiResult, Request, check_api_version, empty, json_response, page,
};
use crate::state::{RoleAssignment, RoleDefinition, State, key, now_ms, rfc3339};

/// Role assignments: every version the spec repository has for `authorization-RoleAssignmentsCalls.json`
/// (stable 2015-07-01 and 2022-04-01, the previews in between; readme `package-2022-04-01` is the default).
pub const ASSIGNMENT_API_VERSIONS: &[&str] = &[
    "2015-07-01",
    "2017-10-01-preview",
    "2018-01-01-preview",
    "2018-09-01-preview",
    "2020-03-01-preview",
    "2020-04-01-preview",
    "2020-08-01-preview",
    "2020-10-01-preview",
    "2022-04-01",
];
/// Role definitions: `authorization-RoleDefinitionsCalls.json` exists in 2015-07-01, 2017-10-01-preview,
/// 2018-01-01-preview, 2022-04-01 and 2022-05-01-preview (the readme's newest preview tags use it).
pub const DEFINITION_API_VERSIONS: &[&str] = &[
    "2015-07-01",
    "2017-10-01-preview",
    "2018-01-01-preview",
    "2022-04-01",
    "2022-05-01-preview",
];

const ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";
const DEFINITION_TYPE: &str = "Microsoft.Authorization/roleDefinitions";
/// `PrincipalType` enum of the 2022-04-01 spec (`modelAsString`, default `User`).
const PRINCIPAL_TYPES: &[&str] = &[
    "User",
    "Group",
    "ServicePrincipal",
    "ForeignGroup",
    "Device",
];

pub async fn handle(
    app: &App,
    request: Request,
    scope: String,
    collection: &str,
    name: Option<String>,
) -> ApiResult {
    match collection {
        "roledefinitions" => {
            check_api_version(&request, "roleDefinitions", DEFINITION_API_VERSIONS)?;
            match (request.method.clone(), name) {
                (Method::GET, None) => list_definitions(app, &request, &scope),
                (Method::GET, Some(name)) => get_definition(app, &scope, &name),
                (Method::PUT, Some(name)) => put_definition(app, &request, &scope, &name),
                (Method::DELETE, Some(name)) => delete_definition(app, &request, &scope, &name),
                _ => Err(method_not_allowed(&request)),
            }
        }
        _ => {
            check_api_version(&request, "roleAssignments", ASSIGNMENT_API_VERSIONS)?;
            match (request.method.clone(), name) {
                (Method::GET, None) => list_assignments(app, &request, &scope),
                (Method::GET, Some(name)) => get_assignment(app, &request, &scope, &name),
                (Method::PUT, Some(name)) => put_assignment(app, &request, &scope, &name),
                (Method::DELETE, Some(name)) => delete_assignment(app, &request, &scope, &name),
                _ => Err(method_not_allowed(&request)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::arm(StatusCode::BAD_REQUEST, code, message)
}

fn invalid_content(message: impl std::fmt::Display) -> ApiError {
    bad_request(
        "InvalidRequestContent",
        format!("The request content was invalid and could not be deserialized: {message}"),
    )
}

/// A GUID in its usual 8-4-4-4-12 form (role assignment and definition names are "any valid GUID").
fn is_guid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// The authorization RP prints GUIDs without dashes in its messages (`RoleAssignmentExists`,
/// `RoleDefinitionDoesNotExist` as seen in real error bodies).
fn compact(guid: &str) -> String {
    guid.replace('-', "").to_ascii_lowercase()
}

/// `/{scope}/providers/Microsoft.Authorization/{collection}/{name}`; the tenant root scope is `/`.
fn child_id(scope: &str, collection: &str, name: &str) -> String {
    let scope = scope.trim_end_matches('/');
    format!("{scope}/providers/Microsoft.Authorization/{collection}/{name}")
}

fn same_scope(a: &str, b: &str) -> bool {
    key(a.trim_end_matches('/')) == key(b.trim_end_matches('/'))
}

/// The subscription a scope lives in, as the client spelled it.
fn subscription_of(scope: &str) -> Option<&str> {
    let mut parts = scope.split('/').filter(|s| !s.is_empty());
    match (parts.next(), parts.next()) {
        (Some(s), Some(sub)) if s.eq_ignore_ascii_case("subscriptions") => Some(sub),
        _ => None,
    }
}

/// Optional string field: absent and `null` are `None`; another type is a 400.
fn opt_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid_content(format_args!(
            "'{field}' must be a string, not {other}."
        ))),
    }
}

fn string_array(object: &Map<String, Value>, field: &str) -> Result<Vec<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str().map(String::from).ok_or_else(|| {
                    invalid_content(format_args!("'{field}' must be an array of strings."))
                })
            })
            .collect(),
        Some(_) => Err(invalid_content(format_args!(
            "'{field}' must be an array of strings."
        ))),
    }
}

/// The `properties` object of a PUT body.
fn body_properties(request: &Request) -> Result<Map<String, Value>, ApiError> {
    let body = request.json(Api::Arm)?;
    let Value::Object(mut body) = body else {
        return Err(invalid_content("the body must be a JSON object."));
    };
    match body.remove("properties") {
        Some(Value::Object(properties)) => Ok(properties),
        None | Some(Value::Null) => Err(invalid_content(
            "Required property 'properties' not found in JSON.",
        )),
        Some(_) => Err(invalid_content("'properties' must be an object.")),
    }
}

// ---------------------------------------------------------------------------------------------
// $filter: the OData subset the spec documents
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Clause {
    AtScope,
    AtScopeAndBelow,
    /// `principalId eq '{id}'` or `assignedTo('{id}')` (no groups in the sandbox: the same set).
    Principal(String),
    RoleName(String),
    Type(String),
}

/// Splits `a and b` outside quotes, then reads each clause. Quotes around values are optional
/// (the spec writes `principalId eq {id}`; clients send `'{id}'`).
fn parse_filter(filter: &str) -> Option<Vec<Clause>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let chars: Vec<char> = filter.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            quoted = !quoted;
        }
        if !quoted && c == ' ' {
            let rest: String = chars[i..].iter().take(5).collect();
            if rest.eq_ignore_ascii_case(" and ") {
                parts.push(std::mem::take(&mut current));
                i += 5;
                continue;
            }
        }
        current.push(c);
        i += 1;
    }
    parts.push(current);
    parts.iter().map(|p| parse_clause(p.trim())).collect()
}

fn parse_clause(clause: &str) -> Option<Clause> {
    let compact: String = clause.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.eq_ignore_ascii_case("atScope()") {
        return Some(Clause::AtScope);
    }
    if compact.eq_ignore_ascii_case("atScopeAndBelow()") {
        return Some(Clause::AtScopeAndBelow);
    }
    let lower = clause.to_ascii_lowercase();
    if lower.starts_with("assignedto(") && clause.ends_with(')') {
        let inner = &clause["assignedto(".len()..clause.len() - 1];
        return Some(Clause::Principal(unquote(inner)?));
    }
    let (field, value) = clause.split_once(char::is_whitespace)?;
    let value = value.trim_start();
    let value = value
        .strip_prefix("eq ")
        .or_else(|| value.strip_prefix("EQ "))
        .or_else(|| value.strip_prefix("Eq "))?;
    let value = unquote(value)?;
    match field.to_ascii_lowercase().as_str() {
        "principalid" => Some(Clause::Principal(value)),
        "rolename" => Some(Clause::RoleName(value)),
        "type" => Some(Clause::Type(value)),
        _ => None,
    }
}

fn unquote(value: &str) -> Option<String> {
    let value = value.trim();
    let inner = match value.strip_prefix('\'') {
        Some(rest) => rest.strip_suffix('\'')?,
        None => value,
    };
    (!inner.is_empty()).then(|| inner.replace("''", "'"))
}

/// Unknown filters are refused (code and wording from real error bodies; not in the spec).
fn unsupported_filter(filter: &str, supported: &str) -> ApiError {
    bad_request(
        "UnsupportedQuery",
        format!("The filter '{filter}' is not supported. Supported filters are {supported}."),
    )
}

// ---------------------------------------------------------------------------------------------
// Role definitions
// ---------------------------------------------------------------------------------------------

/// A role definition as the API shows it at a scope.
enum Role<'a> {
    Builtin(&'static BuiltinRole),
    Custom(&'a RoleDefinition),
}

impl Role<'_> {
    fn guid(&self) -> &str {
        match self {
            Role::Builtin(b) => b.id,
            Role::Custom(c) => &c.name,
        }
    }

    fn role_name(&self) -> &str {
        match self {
            Role::Builtin(b) => b.name,
            Role::Custom(c) => &c.role_name,
        }
    }

    fn role_type(&self) -> &str {
        match self {
            Role::Builtin(_) => "BuiltInRole",
            Role::Custom(c) => &c.role_type,
        }
    }

    /// Built-in definitions have no home scope: ARM shows them under the subscription they are
    /// read from (`/subscriptions/{s}/providers/…/{guid}`), or tenant-relative at tenant and
    /// management-group scope (`/providers/…/{guid}`) — the two forms the `RoleDefinitions_GetById`
    /// parameter describes. Custom roles keep the id they were created with.
    fn id_at(&self, scope: &str) -> String {
        match self {
            Role::Builtin(b) => builtin_id_at(scope, b.id),
            Role::Custom(c) => c.id.clone(),
        }
    }

    fn to_json(&self, scope: &str) -> Value {
        let (description, assignable, actions, not_actions, data_actions, not_data_actions) =
            match self {
                Role::Builtin(b) => (
                    b.description.to_string(),
                    vec!["/".to_string()],
                    strings(b.actions),
                    strings(b.not_actions),
                    strings(b.data_actions),
                    strings(b.not_data_actions),
                ),
                Role::Custom(c) => (
                    c.description.clone(),
                    c.assignable_scopes.clone(),
                    c.actions.clone(),
                    c.not_actions.clone(),
                    c.data_actions.clone(),
                    c.not_data_actions.clone(),
                ),
            };
        json!({
            "id": self.id_at(scope),
            "name": self.guid(),
            "type": DEFINITION_TYPE,
            "properties": {
                "roleName": self.role_name(),
                "type": self.role_type(),
                "description": description,
                "assignableScopes": assignable,
                "permissions": [{
                    "actions": actions,
                    "notActions": not_actions,
                    "dataActions": data_actions,
                    "notDataActions": not_data_actions,
                }],
            },
        })
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn builtin_id_at(scope: &str, guid: &str) -> String {
    match subscription_of(scope) {
        Some(sub) => {
            format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
        }
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
    }
}

/// `RoleDefinitions_List`: "all role definitions that are applicable at scope and above" — a custom
/// role applies at `scope` when one of its assignable scopes is at or above it.
fn applies_at(definition: &RoleDefinition, scope: &str) -> bool {
    definition
        .assignable_scopes
        .iter()
        .any(|s| scope_contains(s, scope))
}

/// With `atScopeAndBelow()` (the spec's "search below the given scope as well").
fn applies_at_or_below(definition: &RoleDefinition, scope: &str) -> bool {
    applies_at(definition, scope)
        || definition
            .assignable_scopes
            .iter()
            .any(|s| scope_contains(scope, s))
}

/// A definition by GUID as seen from `scope` (built-ins everywhere, custom roles where they are
/// assignable, at or below `scope`).
fn find_definition<'a>(state: &'a State, guid: &str, scope: &str) -> Option<Role<'a>> {
    if let Some(builtin) = crate::builtin_roles::by_id(guid) {
        return Some(Role::Builtin(builtin));
    }
    state
        .role_definitions
        .values()
        .find(|d| d.name.eq_ignore_ascii_case(guid) && applies_at_or_below(d, scope))
        .map(Role::Custom)
}

fn definition_not_found(guid: &str) -> ApiError {
    ApiError::arm(
        StatusCode::NOT_FOUND,
        "RoleDefinitionDoesNotExist",
        format!("The specified role definition with ID '{guid}' does not exist."),
    )
}

/// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=…` (`RoleDefinitions_List`,
/// filter fields `roleName` and `type` per `RoleDefinitionFilter`, plus `atScopeAndBelow()`).
///
/// Reading role definitions needs no role assignment: every principal of the tenant can list them,
/// at any scope including the tenant root (that is how clients resolve role names), so the sandbox
/// does not check `roleDefinitions/read` here.
fn list_definitions(app: &App, request: &Request, scope: &str) -> ApiResult {
    let mut role_name = None;
    let mut role_type = None;
    let mut below = false;
    if let Some(filter) = request.query("$filter").filter(|f| !f.trim().is_empty()) {
        let supported = "'roleName eq '{value}'', 'type eq '{value}'' and 'atScopeAndBelow()'";
        for clause in parse_filter(filter).ok_or_else(|| unsupported_filter(filter, supported))? {
            match clause {
                Clause::RoleName(n) => role_name = Some(n),
                Clause::Type(t) => role_type = Some(t),
                Clause::AtScopeAndBelow => below = true,
                _ => return Err(unsupported_filter(filter, supported)),
            }
        }
    }
    let items = app.store.read(|state| {
        let builtins = BUILTIN_ROLES.iter().map(Role::Builtin);
        let customs = state
            .role_definitions
            .values()
            .filter(|d| {
                if below {
                    applies_at_or_below(d, scope)
                } else {
                    applies_at(d, scope)
                }
            })
            .map(Role::Custom);
        builtins
            .chain(customs)
            .filter(|r| {
                role_name
                    .as_ref()
                    .is_none_or(|n| r.role_name().eq_ignore_ascii_case(n))
            })
            .filter(|r| {
                role_type
                    .as_ref()
                    .is_none_or(|t| r.role_type().eq_ignore_ascii_case(t))
            })
            .map(|r| r.to_json(scope))
            .collect::<Vec<_>>()
    });
    Ok(page(request, items, app.options.page_size, Api::Arm))
}

/// `GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}` (`RoleDefinitions_Get`;
/// also `RoleDefinitions_GetById`, which is the same path).
fn get_definition(app: &App, scope: &str, name: &str) -> ApiResult {
    app.store.read(|state| {
        find_definition(state, name, scope)
            .map(|role| json_response(StatusCode::OK, &role.to_json(scope)))
            .ok_or_else(|| definition_not_found(name))
    })
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}`
/// (`RoleDefinitions_CreateOrUpdate`: the spec lists only 201, for creation and update alike).
fn put_definition(app: &App, request: &Request, scope: &str, name: &str) -> ApiResult {
    let resource = child_id(scope, "roleDefinitions", name);
    super::require(
        app,
        request,
        "Microsoft.Authorization/roleDefinitions/write",
        &resource,
    )?;
    if !is_guid(name) {
        // Code from real error bodies; wording unverified.
        return Err(bad_request(
            "InvalidRoleDefinitionId",
            format!(
                "The role definition ID '{name}' is not valid. The role definition ID must be a GUID."
            ),
        ));
    }
    if crate::builtin_roles::by_id(name).is_some() {
        // Unverified code: built-in roles are read-only for everyone.
        return Err(bad_request(
            "RoleDefinitionUpdateNotPermitted",
            format!("The built-in role definition '{name}' cannot be created, updated or deleted."),
        ));
    }
    let properties = body_properties(request)?;
    let role_name = opt_string(&properties, "roleName")?
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad_request("InvalidRoleName", "The role name must be provided."))?; // unverified code
    let description = opt_string(&properties, "description")?.unwrap_or_default();
    let assignable_scopes = string_array(&properties, "assignableScopes")?;
    if assignable_scopes.is_empty() || assignable_scopes.iter().any(|s| !s.starts_with('/')) {
        // Unverified code; ARM requires at least one valid assignable scope.
        return Err(bad_request(
            "InvalidAssignableScopes",
            "The role definition must have at least one assignable scope, and each must be a valid scope starting with '/'.",
        ));
    }
    let mut actions = Vec::new();
    let mut not_actions = Vec::new();
    let mut data_actions = Vec::new();
    let mut not_data_actions = Vec::new();
    match properties.get("permissions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(permissions)) => {
            for permission in permissions {
                let Value::Object(permission) = permission else {
                    return Err(invalid_content(
                        "'permissions' must be an array of objects.",
                    ));
                };
                actions.extend(string_array(permission, "actions")?);
                not_actions.extend(string_array(permission, "notActions")?);
                data_actions.extend(string_array(permission, "dataActions")?);
                not_data_actions.extend(string_array(permission, "notDataActions")?);
            }
        }
        Some(_) => return Err(invalid_content("'permissions' must be an array.")),
    }
    let guid = name.to_ascii_lowercase();
    let definition = app.store.update(|state| {
        let clash = crate::builtin_roles::by_name(&role_name).is_some()
            || state.role_definitions.values().any(|d| {
                d.role_name.eq_ignore_ascii_case(&role_name) && !d.name.eq_ignore_ascii_case(&guid)
            });
        if clash {
            // Real: 409 `RoleDefinitionWithSameNameExists` (seen in SDK tests and CLI output).
            return Err(ApiError::arm(
                StatusCode::CONFLICT,
                "RoleDefinitionWithSameNameExists",
                "A custom role with the same name already exists in this directory.",
            ));
        }
        let id = state
            .role_definitions
            .get(&guid)
            .map(|d| d.id.clone())
            .unwrap_or_else(|| builtin_id_at(scope, &guid));
        let definition = RoleDefinition {
            id,
            name: guid.clone(),
            role_name: role_name.clone(),
            description: description.clone(),
            role_type: "CustomRole".into(),
            actions: actions.clone(),
            not_actions: not_actions.clone(),
            data_actions: data_actions.clone(),
            not_data_actions: not_data_actions.clone(),
            assignable_scopes: assignable_scopes.clone(),
        };
        state
            .role_definitions
            .insert(guid.clone(), definition.clone());
        Ok::<_, ApiError>(definition)
    })?;
    Ok(json_response(
        StatusCode::CREATED,
        &Role::Custom(&definition).to_json(scope),
    ))
}

/// `DELETE …/roleDefinitions/{guid}` (`RoleDefinitions_Delete`: 200 with the definition, 204 when
/// absent). A role still referenced by assignments is refused with 409
/// `RoleDefinitionHasAssignments` (code and message from real error logs).
fn delete_definition(app: &App, request: &Request, scope: &str, name: &str) -> ApiResult {
    let resource = child_id(scope, "roleDefinitions", name);
    super::require(
        app,
        request,
        "Microsoft.Authorization/roleDefinitions/delete",
        &resource,
    )?;
    if crate::builtin_roles::by_id(name).is_some() {
        return Err(bad_request(
            "RoleDefinitionUpdateNotPermitted",
            format!("The built-in role definition '{name}' cannot be created, updated or deleted."),
        ));
    }
    let guid = name.to_ascii_lowercase();
    let removed = app.store.update(|state| {
        let Some(definition) = state.role_definitions.get(&guid).cloned() else {
            return Ok::<_, ApiError>(None);
        };
        let referenced = state
            .role_assignments
            .values()
            .any(|a| definition_guid(&a.role_definition_id).eq_ignore_ascii_case(&guid));
        if referenced {
            return Err(ApiError::arm(
                StatusCode::CONFLICT,
                "RoleDefinitionHasAssignments",
                "There are existing role assignments referencing role (code: RoleDefinitionHasAssignments).",
            ));
        }
        state.role_definitions.remove(&guid);
        Ok(Some(definition))
    })?;
    Ok(match removed {
        Some(definition) => {
            json_response(StatusCode::OK, &Role::Custom(&definition).to_json(scope))
        }
        None => empty(StatusCode::NO_CONTENT),
    })
}

// ---------------------------------------------------------------------------------------------
// Role assignments
// ---------------------------------------------------------------------------------------------

fn definition_guid(role_definition_id: &str) -> &str {
    role_definition_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(role_definition_id)
}

/// `…/providers/Microsoft.Authorization/roleDefinitions/{guid}` in any of its forms
/// (subscription, tenant or management-group relative); returns the GUID.
fn parse_role_definition_id(id: &str) -> Option<&str> {
    let lower = id.to_ascii_lowercase();
    let marker = "/providers/microsoft.authorization/roledefinitions/";
    if !lower.starts_with('/') {
        return None;
    }
    let at = lower.rfind(marker)?;
    let guid = &id[at + marker.len()..];
    is_guid(guid).then_some(guid)
}

fn assignment_json(assignment: &RoleAssignment) -> Value {
    json!({
        "id": assignment.id,
        "name": assignment.name,
        "type": ASSIGNMENT_TYPE,
        "properties": {
            "roleDefinitionId": assignment.role_definition_id,
            "principalId": assignment.principal_id,
            "principalType": assignment.principal_type,
            "scope": assignment.scope,
            "condition": assignment.condition,
            "conditionVersion": assignment.condition_version,
            "description": assignment.description,
            "createdOn": rfc3339(assignment.created_ms),
            "updatedOn": rfc3339(assignment.updated_ms),
            "createdBy": assignment.created_by,
            "updatedBy": assignment.updated_by,
            "delegatedManagedIdentityResourceId": assignment.delegated_managed_identity_resource_id,
        },
    })
}

fn assignment_not_found(name: &str) -> ApiError {
    // Code and wording from real error bodies.
    ApiError::arm(
        StatusCode::NOT_FOUND,
        "RoleAssignmentNotFound",
        format!("The role assignment '{name}' is not found."),
    )
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments` (`RoleAssignments_ListForScope`,
/// and the subscription / resource group / resource variants, which are the same path).
///
/// `$filter` per `RoleAssignmentFilterParameter`: `atScope()` = at or above the scope;
/// `principalId eq {id}` = at, above or below the scope for that principal (also `assignedTo('{id}')`,
/// the form `az role assignment list --assignee` sends, and `atScope() and principalId eq …`).
/// Without a filter the operation "lists all role assignments that apply to a scope"; like the real
/// service (what `az role assignment list --all` relies on at subscription scope) the sandbox returns
/// those at, above *and below* the scope.
fn list_assignments(app: &App, request: &Request, scope: &str) -> ApiResult {
    super::require(
        app,
        request,
        "Microsoft.Authorization/roleAssignments/read",
        scope,
    )?;
    let mut at_scope = false;
    let mut principal: Option<String> = None;
    if let Some(filter) = request.query("$filter").filter(|f| !f.trim().is_empty()) {
        let supported =
            "either 'atScope()' or 'principalId eq '{value}'' or 'assignedTo('{value}')'";
        for clause in parse_filter(filter).ok_or_else(|| unsupported_filter(filter, supported))? {
            match clause {
                Clause::AtScope => at_scope = true,
                Clause::Principal(p) => principal = Some(p),
                _ => return Err(unsupported_filter(filter, supported)),
            }
        }
    }
    let items = app.store.read(|state| {
        state
            .role_assignments
            .values()
            .filter(|a| {
                let above = scope_contains(&a.scope, scope);
                let below = scope_contains(scope, &a.scope);
                if at_scope { above } else { above || below }
            })
            .filter(|a| {
                principal
                    .as_ref()
                    .is_none_or(|p| a.principal_id.eq_ignore_ascii_case(p))
            })
            .map(assignment_json)
            .collect::<Vec<_>>()
    });
    Ok(page(request, items, app.options.page_size, Api::Arm))
}

/// `GET {scope}/providers/Microsoft.Authorization/roleAssignments/{name}` (`RoleAssignments_Get`,
/// `RoleAssignments_GetById`).
fn get_assignment(app: &App, request: &Request, scope: &str, name: &str) -> ApiResult {
    let id = child_id(scope, "roleAssignments", name);
    super::require(
        app,
        request,
        "Microsoft.Authorization/roleAssignments/read",
        &id,
    )?;
    app.store
        .read(|state| state.role_assignments.get(&key(&id)).cloned())
        .map(|a| json_response(StatusCode::OK, &assignment_json(&a)))
        .ok_or_else(|| assignment_not_found(name))
}

/// `DELETE …/roleAssignments/{name}` (`RoleAssignments_Delete`: 200 with the deleted assignment,
/// 204 "already deleted or does not exist").
fn delete_assignment(app: &App, request: &Request, scope: &str, name: &str) -> ApiResult {
    let id = child_id(scope, "roleAssignments", name);
    super::require(
        app,
        request,
        "Microsoft.Authorization/roleAssignments/delete",
        &id,
    )?;
    let removed = app
        .store
        .write(|state| Ok::<_, ApiError>(state.role_assignments.remove(&key(&id))))?;
    Ok(match removed {
        Some(a) => json_response(StatusCode::OK, &assignment_json(&a)),
        None => empty(StatusCode::NO_CONTENT),
    })
}

/// What a PUT asks for, validated.
struct AssignmentRequest {
    role_guid: String,
    principal_id: String,
    principal_type: Option<String>,
    description: Option<String>,
    condition: Option<String>,
    condition_version: Option<String>,
    delegated_managed_identity_resource_id: Option<String>,
}

fn read_assignment_body(request: &Request) -> Result<AssignmentRequest, ApiError> {
    let properties = body_properties(request)?;
    // `roleDefinitionId` and `principalId` are required (`RoleAssignmentProperties.required`).
    let role_definition_id = opt_string(&properties, "roleDefinitionId")?.unwrap_or_default();
    let role_guid = parse_role_definition_id(&role_definition_id)
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| {
            // Code seen in real deployment logs; wording unverified.
            bad_request(
                "InvalidRoleDefinitionId",
                format!(
                    "The role definition ID '{role_definition_id}' is not valid. It must look like '/subscriptions/{{subscriptionId}}/providers/Microsoft.Authorization/roleDefinitions/{{guid}}'."
                ),
            )
        })?;
    let principal_id = opt_string(&properties, "principalId")?
        .filter(|p| is_guid(p))
        .ok_or_else(|| {
            // Code and wording from real error bodies.
            bad_request(
                "InvalidPrincipalId",
                "A valid principal ID must be provided for role assignment.",
            )
        })?;
    let principal_type = match opt_string(&properties, "principalType")? {
        None => None,
        Some(t) => Some(
            PRINCIPAL_TYPES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(&t))
                .map(|known| known.to_string())
                .ok_or_else(|| {
                    invalid_content(format_args!(
                        "'{t}' is not a valid principalType; expected one of {}.",
                        PRINCIPAL_TYPES.join(", ")
                    ))
                })?,
        ),
    };
    let description = opt_string(&properties, "description")?;
    let condition = opt_string(&properties, "condition")?.filter(|c| !c.trim().is_empty());
    let condition_version = opt_string(&properties, "conditionVersion")?;
    // "Currently the only accepted value is '2.0'" (spec); a condition without a version gets 2.0,
    // as the service does. Code unverified.
    if let Some(version) = &condition_version
        && version != "2.0"
    {
        return Err(bad_request(
            "InvalidConditionVersion",
            format!(
                "The condition version '{version}' is not supported. The only supported value is '2.0'."
            ),
        ));
    }
    let condition_version = match (&condition, condition_version) {
        (Some(_), None) => Some("2.0".to_string()),
        (None, _) => None,
        (Some(_), v) => v,
    };
    let delegated_managed_identity_resource_id =
        opt_string(&properties, "delegatedManagedIdentityResourceId")?;
    Ok(AssignmentRequest {
        delegated_managed_identity_resource_id,
        role_guid,
        principal_id: principal_id.to_ascii_lowercase(),
        principal_type,
        description,
        condition,
        condition_version,
    })
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}` (`RoleAssignments_Create`,
/// `RoleAssignments_CreateById`): 201 created, 200 when the same assignment is PUT again (the
/// description and condition may change; nothing else may).
///
/// Replication delay (the `replication_delay_ms` fault) follows the documented behaviour ("Assign
/// Azure roles using the REST API", the `PrincipalNotFound` message itself): ARM looks a new principal
/// up in the directory unless the request says what type it is. The sandbox models it so:
/// - a principal that is not in the directory at all always fails with `PrincipalNotFound`;
/// - a principal created less than `replication_delay_ms` ago fails with `PrincipalNotFound` when the
///   request has no `principalType`, and is accepted when it has one (any valid value: the lookup is
///   skipped, exactly what the message advises);
/// - once replicated, an explicit `principalType` that is not the directory's type is refused with
///   `UnmatchedPrincipalType`, and an omitted one is filled in from the directory (every sandbox
///   principal is a `ServicePrincipal`) rather than left at the spec's default `User`, as ARM does
///   after its lookup.
fn put_assignment(app: &App, request: &Request, scope: &str, name: &str) -> ApiResult {
    let id = child_id(scope, "roleAssignments", name);
    super::require(
        app,
        request,
        "Microsoft.Authorization/roleAssignments/write",
        &id,
    )?;
    if !is_guid(name) {
        // Code from real error bodies; wording unverified.
        return Err(bad_request(
            "InvalidRoleAssignmentId",
            format!(
                "The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."
            ),
        ));
    }
    let wanted = read_assignment_body(request)?;
    let caller = request.caller.as_ref().map(|c| c.object_id.clone());
    let delay = app.faults().replication_delay_ms;
    let now = now_ms();
    let (assignment, created) = app.store.update(|state| {
        let role = find_definition(state, &wanted.role_guid, scope)
            .filter(|role| match role {
                Role::Builtin(_) => true,
                Role::Custom(d) => applies_at(d, scope),
            })
            .ok_or_else(|| {
                // Real: 400 `RoleDefinitionDoesNotExist` with the GUID undashed (seen in deployment
                // logs); a custom role outside its assignable scopes is not visible there either.
                bad_request(
                    "RoleDefinitionDoesNotExist",
                    format!(
                        "The specified role definition with ID '{}' does not exist.",
                        compact(&wanted.role_guid)
                    ),
                )
            })?;
        let role_definition_id = role.id_at(scope);

        // The same name anywhere in the tenant: an update, or a forbidden change of scope,
        // principal or role ("RoleAssignmentUpdateNotPermitted", fact sheet §3).
        if let Some(existing) = state
            .role_assignments
            .values()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .cloned()
        {
            let same = same_scope(&existing.scope, scope)
                && existing.principal_id.eq_ignore_ascii_case(&wanted.principal_id)
                && definition_guid(&existing.role_definition_id)
                    .eq_ignore_ascii_case(&wanted.role_guid);
            if !same {
                return Err(bad_request(
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                ));
            }
            let mut updated = existing;
            updated.description = wanted.description.clone();
            updated.condition = wanted.condition.clone();
            updated.condition_version = wanted.condition_version.clone();
            if let Some(t) = &wanted.principal_type {
                updated.principal_type = t.clone();
            }
            updated.updated_ms = now;
            updated.updated_by = caller.clone();
            state
                .role_assignments
                .insert(key(&updated.id), updated.clone());
            return Ok((updated, false));
        }

        // The same (scope, principal, role) under another name.
        if let Some(other) = state.role_assignments.values().find(|a| {
            same_scope(&a.scope, scope)
                && a.principal_id.eq_ignore_ascii_case(&wanted.principal_id)
                && definition_guid(&a.role_definition_id).eq_ignore_ascii_case(&wanted.role_guid)
        }) {
            return Err(ApiError::arm(
                StatusCode::CONFLICT,
                "RoleAssignmentExists",
                format!(
                    "The role assignment already exists. The ID of the existing role assignment is {}.",
                    compact(&other.name)
                ),
            ));
        }

        let principal_not_found = || {
            bad_request(
                "PrincipalNotFound",
                format!(
                    "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                    compact(&wanted.principal_id),
                    state.tenant_id
                ),
            )
        };
        let Some(principal) = state.service_principals.get(&wanted.principal_id) else {
            return Err(principal_not_found());
        };
        let replicated = state
            .visible_principal(&wanted.principal_id, now, delay)
            .is_some();
        let directory_type = "ServicePrincipal";
        let principal_type = match (&wanted.principal_type, replicated) {
            (None, false) => return Err(principal_not_found()),
            (None, true) => directory_type.to_string(),
            (Some(t), false) => t.clone(),
            (Some(t), true) if t == directory_type => t.clone(),
            (Some(t), true) => {
                // Code and wording from real error bodies (including the space before the comma).
                return Err(bad_request(
                    "UnmatchedPrincipalType",
                    format!(
                        "The PrincipalId '{}' has type '{directory_type}' , which is different from specified PrincipalType '{t}'.",
                        compact(&principal.id)
                    ),
                ));
            }
        };
        let assignment = RoleAssignment {
            id: id.clone(),
            name: name.to_ascii_lowercase(),
            scope: if scope.is_empty() { "/".into() } else { scope.to_string() },
            role_definition_id,
            principal_id: wanted.principal_id.clone(),
            principal_type,
            description: wanted.description.clone(),
            condition: wanted.condition.clone(),
            condition_version: wanted.condition_version.clone(),
            created_ms: now,
            updated_ms: now,
            created_by: caller.clone(),
            updated_by: caller.clone(),
            delegated_managed_identity_resource_id: wanted.delegated_managed_identity_resource_id.clone(),
        };
        state
            .role_assignments
            .insert(key(&assignment.id), assignment.clone());
        Ok::<_, ApiError>((assignment, true))
    })?;
    Ok(json_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &assignment_json(&assignment),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(parse_filter("atScope()"), Some(vec![Clause::AtScope]));
        assert_eq!(
            parse_filter("principalId eq 'abc'"),
            Some(vec![Clause::Principal("abc".into())])
        );
        assert_eq!(
            parse_filter("principalId eq abc"),
            Some(vec![Clause::Principal("abc".into())])
        );
        assert_eq!(
            parse_filter("atScope() and assignedTo('x')"),
            Some(vec![Clause::AtScope, Clause::Principal("x".into())])
        );
        assert_eq!(
            parse_filter("roleName eq 'Backup and Restore'"),
            Some(vec![Clause::RoleName("Backup and Restore".into())])
        );
        assert_eq!(
            parse_filter("type eq 'CustomRole'"),
            Some(vec![Clause::Type("CustomRole".into())])
        );
        assert_eq!(parse_filter("roleName ne 'x'"), None);
        assert_eq!(parse_filter("principalId eq ''"), None);
        assert_eq!(parse_filter("'"), None);
    }

    #[test]
    fn role_definition_ids_parse_in_every_form() {
        let guid = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
        for id in [
            format!("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
            format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
            format!(
                "/providers/Microsoft.Management/managementGroups/m/providers/microsoft.authorization/roledefinitions/{guid}"
            ),
        ] {
            assert_eq!(parse_role_definition_id(&id), Some(guid), "{id}");
        }
        for bad in [
            "",
            guid,
            "/providers/Microsoft.Authorization/roleDefinitions/reader",
        ] {
            assert_eq!(parse_role_definition_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn builtin_ids_follow_the_scope() {
        assert_eq!(
            builtin_id_at("/subscriptions/S/resourceGroups/rg", "g"),
            "/subscriptions/S/providers/Microsoft.Authorization/roleDefinitions/g"
        );
        assert_eq!(
            builtin_id_at("/", "g"),
            "/providers/Microsoft.Authorization/roleDefinitions/g"
        );
        assert_eq!(
            builtin_id_at("/providers/Microsoft.Management/managementGroups/m", "g"),
            "/providers/Microsoft.Authorization/roleDefinitions/g"
        );
    }
}
