//! Role definitions and role assignments (Microsoft.Authorization, api-version 2022-04-01).
//!
//! Follows `specification/authorization/resource-manager/Microsoft.Authorization/stable/2022-04-01/
//! authorization-RoleAssignmentsCalls.json` and `…/authorization-RoleDefinitionsCalls.json`, the
//! "Assign Azure roles using the REST API" doc, and the fact sheet (§3).
//!
//! - Role definitions: built-in roles resolve offline (their GUIDs are the same in every tenant).
//!   Custom roles resolve through one cached list per scope (`$filter=type eq 'CustomRole'`);
//!   callers resolving at the same scope at the same time share that one request.
//! - Role assignments are named by a UUIDv5 of (scope, principal, role), so a re-run PUTs the same
//!   name and never duplicates a grant. Their ownership marker is the description
//!   (`managed by wiform (stack <stack>; spec <hash>)`): role assignments take no tags.
//! - Observation is one paged list for the whole subscription; the planner filters by principal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::AzureProvider;
use super::client::{Request, Response, Wait, subscription_of};
use super::error::{AzureError, AzureErrorKind};
use crate::builtin_roles;
use crate::ownership::{self, Marker, Owner};
use crate::providers::Deletion;

/// The api-version of role definitions and assignments: the latest stable, the readme's default
/// tag (fact sheet §3).
pub const API_VERSION: &str = "2022-04-01";

/// The namespace of role assignment names (UUIDv5). Fixed forever: changing it would rename, and
/// so duplicate, every assignment wiform has made.
pub const ASSIGNMENT_NAMESPACE: Uuid = Uuid::from_u128(0xdd34_0181_7119_4819_9ee9_f72b_fd62_1e28);

/// Sent on every assignment: wiform assigns roles to managed identities and application service
/// principals only. With the type given, ARM skips its directory lookup of the principal, which
/// mostly avoids `PrincipalNotFound` right after the identity was created ("Assign Azure roles
/// using the REST API").
pub const PRINCIPAL_TYPE: &str = "ServicePrincipal";

/// How long a new principal may take to reach Azure RBAC (fact sheet §3: "retry for about 5 min").
const PRINCIPAL_REPLICATION: Duration = Duration::from_secs(300);

const MARKER_PREFIX: &str = "managed by wiform (stack ";
const MARKER_SPEC: &str = "; spec ";

// ---------------------------------------------------------------------------------------------
// Role definitions
// ---------------------------------------------------------------------------------------------

/// A role definition wiform can assign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoleDefinition {
    /// Full id, lower-case (`/subscriptions/{s}/providers/microsoft.authorization/roledefinitions/{guid}`,
    /// or tenant-relative above a subscription).
    pub id: String,
    /// The definition's GUID, lower-case: what assignments are compared by.
    pub guid: String,
    pub role_name: String,
    /// A built-in role (`BuiltInRole`) rather than a custom one.
    pub builtin: bool,
}

/// Role definitions already read, per scope: one cell per (scope, query), so that callers asking
/// the same question at the same time share one request, and later ones make none. A failed
/// request leaves its cell empty: the next caller asks again.
#[derive(Debug, Default)]
pub struct DefinitionCache {
    lookups: Mutex<HashMap<String, Arc<LookupCell>>>,
}

/// The answer to one lookup, filled once.
type LookupCell = OnceCell<Arc<Vec<RoleDefinition>>>;

impl DefinitionCache {
    fn cell(&self, key: String) -> Arc<LookupCell> {
        let mut map = self.lookups.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(key).or_default().clone()
    }
}

/// A role definition as `RoleDefinitions_List` / `RoleDefinitions_Get` show it.
#[derive(Debug, Deserialize)]
struct RawDefinition {
    id: String,
    name: String,
    #[serde(default)]
    properties: RawDefinitionProperties,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDefinitionProperties {
    #[serde(default)]
    role_name: Option<String>,
    #[serde(default, rename = "type")]
    role_type: Option<String>,
}

impl RawDefinition {
    fn into_definition(self) -> RoleDefinition {
        let guid = guid_of(&self.id).unwrap_or(&self.name).to_ascii_lowercase();
        RoleDefinition {
            id: self.id.trim_end_matches('/').to_ascii_lowercase(),
            builtin: self
                .properties
                .role_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("BuiltInRole")),
            role_name: self.properties.role_name.unwrap_or_else(|| guid.clone()),
            guid,
        }
    }
}

/// What to ask the directory about a role at a scope.
enum Lookup<'a> {
    /// Every custom role applicable at the scope (`$filter=type eq 'CustomRole'`).
    CustomRoles,
    /// Any role with this name (`$filter=roleName eq '…'`): catches built-in roles newer than
    /// wiform's table.
    Name(&'a str),
    /// One definition by GUID (`RoleDefinitions_Get`): same purpose, for GUIDs.
    Guid(&'a str),
}

impl Lookup<'_> {
    fn key(&self, scope: &str) -> String {
        match self {
            Lookup::CustomRoles => format!("custom\n{scope}"),
            Lookup::Name(name) => format!("name\n{scope}\n{}", name.to_lowercase()),
            Lookup::Guid(guid) => format!("guid\n{scope}\n{}", guid.to_ascii_lowercase()),
        }
    }
}

/// `{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}` in the form ARM uses at
/// that scope: under the scope's subscription, or tenant-relative above subscriptions
/// (`RoleDefinitions_GetById`).
pub fn definition_id_at(scope: &str, guid: &str) -> String {
    let guid = guid.to_ascii_lowercase();
    match subscription_of(scope) {
        Some(sub) => format!(
            "/subscriptions/{}/providers/microsoft.authorization/roledefinitions/{guid}",
            sub.to_ascii_lowercase()
        ),
        None => format!("/providers/microsoft.authorization/roledefinitions/{guid}"),
    }
}

/// The GUID at the end of a role definition id, in any of its forms (with or without the
/// `/subscriptions/{s}` prefix: fact sheet §3, "compare by trailing GUID").
pub fn guid_of(role_definition_id: &str) -> Option<&str> {
    let last = role_definition_id
        .trim_end_matches('/')
        .rsplit('/')
        .next()?;
    Uuid::try_parse(last).is_ok().then_some(last)
}

/// A scope as wiform compares it: lower-case (ARM ids are case-insensitive), no trailing `/`.
/// The tenant root `/` becomes the empty string, which joins as `/providers/…`.
pub fn normalise_scope(scope: &str) -> String {
    scope.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Up to three candidates close enough to `name` to be a likely typo, closest first (the rule of
/// `config::suggest::closest`).
fn closest_names<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(distance, c)| {
            *distance <= (c.chars().count().max(name.chars().count()) / 3).max(1)
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1.eq_ignore_ascii_case(b.1));
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// Percent-encodes an OData `$filter` value for the query string as JavaScript's
/// `encodeURIComponent` does (what the Azure SDKs send): role names may hold `&`, `#` or `+`.
fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `'…'` with OData's quote escaping.
fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn definitions_path(scope: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?api-version={API_VERSION}")
}

/// A role as the config names it, resolved as far as can be done offline.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum RoleRef {
    /// A built-in role: name and definition GUID known.
    Builtin { name: String, id: String },
    /// A role definition GUID not in wiform's built-in table (a custom role).
    Id { id: String },
    /// A custom role by name, looked up in the directory at plan time.
    Name { name: String },
}

impl RoleRef {
    /// A role name, a definition GUID, or a role definition id ending in one.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let last = text.rsplit('/').next().unwrap_or(text);
        if crate::config::names::is_guid(last) {
            return match builtin_roles::by_id(last) {
                Some(r) => RoleRef::Builtin {
                    name: r.name.into(),
                    id: r.id.into(),
                },
                None => RoleRef::Id {
                    id: last.to_lowercase(),
                },
            };
        }
        match builtin_roles::by_name(text) {
            Some(r) => RoleRef::Builtin {
                name: r.name.into(),
                id: r.id.into(),
            },
            None => RoleRef::Name { name: text.into() },
        }
    }

    /// How the role is shown in addresses: its name when known, else its GUID.
    pub fn display(&self) -> &str {
        match self {
            RoleRef::Builtin { name, .. } | RoleRef::Name { name } => name,
            RoleRef::Id { id } => id,
        }
    }
}

fn scope_label(scope: &str) -> &str {
    if scope.is_empty() { "/" } else { scope }
}

impl AzureProvider {
    /// The definition of `role` at `scope`. Built-in roles need no request. Custom roles (by name
    /// or GUID) are found in the list of custom roles applicable at the scope, read once per scope;
    /// a name or GUID not in it is asked about once more by itself (a built-in role newer than
    /// wiform's table), and is `RoleNotFound` (with the closest names) when that finds nothing.
    pub async fn resolve_role(
        &self,
        scope: &str,
        role: &RoleRef,
    ) -> Result<RoleDefinition, AzureError> {
        let scope = normalise_scope(scope);
        match role {
            RoleRef::Builtin { name, id } => Ok(RoleDefinition {
                id: definition_id_at(&scope, id),
                guid: id.to_ascii_lowercase(),
                role_name: name.clone(),
                builtin: true,
            }),
            RoleRef::Name { name } => {
                let wanted = name.trim();
                let custom = self.role_lookup(&scope, Lookup::CustomRoles).await?;
                if let Some(found) = custom
                    .iter()
                    .find(|d| d.role_name.eq_ignore_ascii_case(wanted))
                {
                    return Ok(found.clone());
                }
                let named = self.role_lookup(&scope, Lookup::Name(wanted)).await?;
                if let Some(found) = named
                    .iter()
                    .find(|d| d.role_name.eq_ignore_ascii_case(wanted))
                {
                    return Ok(found.clone());
                }
                let candidates = custom
                    .iter()
                    .map(|d| d.role_name.as_str())
                    .chain(builtin_roles::BUILTIN_ROLES.iter().map(|r| r.name));
                Err(AzureError::new(
                    format!("resolve role `{wanted}` at {}", scope_label(&scope)),
                    AzureErrorKind::RoleNotFound {
                        name: wanted.to_string(),
                        scope: scope_label(&scope).to_string(),
                        closest: closest_names(wanted, candidates),
                    },
                ))
            }
            RoleRef::Id { id } => {
                let guid = id.to_ascii_lowercase();
                let custom = self.role_lookup(&scope, Lookup::CustomRoles).await?;
                if let Some(found) = custom.iter().find(|d| d.guid == guid) {
                    return Ok(found.clone());
                }
                let by_guid = self.role_lookup(&scope, Lookup::Guid(&guid)).await?;
                match by_guid.iter().find(|d| d.guid == guid) {
                    Some(found) => Ok(found.clone()),
                    None => Err(AzureError::new(
                        format!("resolve role {guid} at {}", scope_label(&scope)),
                        AzureErrorKind::RoleNotFound {
                            name: guid.clone(),
                            scope: scope_label(&scope).to_string(),
                            closest: Vec::new(),
                        },
                    )),
                }
            }
        }
    }

    /// One lookup, through the cache.
    async fn role_lookup(
        &self,
        scope: &str,
        lookup: Lookup<'_>,
    ) -> Result<Arc<Vec<RoleDefinition>>, AzureError> {
        let cell = self.role_definitions.cell(lookup.key(scope));
        let found = cell
            .get_or_try_init(|| async {
                let at = scope_label(scope);
                let definitions = match &lookup {
                    Lookup::CustomRoles => {
                        let filter = encode_query("type eq 'CustomRole'");
                        self.list_definitions(
                            format!("{}&$filter={filter}", definitions_path(scope)),
                            format!("list custom roles at {at}"),
                        )
                        .await?
                    }
                    Lookup::Name(name) => {
                        let filter = encode_query(&format!("roleName eq {}", odata_string(name)));
                        self.list_definitions(
                            format!("{}&$filter={filter}", definitions_path(scope)),
                            format!("look up role `{name}` at {at}"),
                        )
                        .await?
                    }
                    Lookup::Guid(guid) => {
                        let request = Request::arm(
                            Method::GET,
                            format!(
                                "{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}?api-version={API_VERSION}"
                            ),
                        )
                        .action(format!("read role definition {guid} at {at}"));
                        match self.client.send_optional(&request).await? {
                            Some(response) => {
                                let raw: RawDefinition = response.json(&request.action)?;
                                vec![raw.into_definition()]
                            }
                            None => Vec::new(),
                        }
                    }
                };
                Ok::<_, AzureError>(Arc::new(definitions))
            })
            .await?;
        Ok(found.clone())
    }

    async fn list_definitions(
        &self,
        target: String,
        action: String,
    ) -> Result<Vec<RoleDefinition>, AzureError> {
        let raw: Vec<RawDefinition> = self
            .client
            .list(&Request::arm(Method::GET, target).action(action))
            .await?;
        Ok(raw
            .into_iter()
            .map(RawDefinition::into_definition)
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Role assignments
// ---------------------------------------------------------------------------------------------

/// A role assignment as the config wants it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredRoleAssignment {
    /// The stack that owns it (written into the description).
    pub stack: String,
    /// Full ARM id of the scope, normalised ([`normalise_scope`]).
    pub scope: String,
    /// The identity's service principal object id, lower-case.
    pub principal_id: String,
    /// Full role definition id, lower-case ([`RoleDefinition::id`]).
    pub role_definition_id: String,
    /// An ABAC condition (version 2.0), when the config gives one.
    pub condition: Option<String>,
}

impl DesiredRoleAssignment {
    /// Normalises what ARM compares without regard to case, and drops a blank condition (ARM
    /// treats it as none).
    pub fn new(
        stack: impl Into<String>,
        scope: &str,
        principal_id: &str,
        role: &RoleDefinition,
        condition: Option<&str>,
    ) -> Self {
        DesiredRoleAssignment {
            stack: stack.into(),
            scope: normalise_scope(scope),
            principal_id: principal_id.trim().to_ascii_lowercase(),
            role_definition_id: role.id.to_ascii_lowercase(),
            condition: condition
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string),
        }
    }

    /// The role definition GUID, lower-case.
    pub fn role_definition_guid(&self) -> String {
        guid_of(&self.role_definition_id)
            .unwrap_or(&self.role_definition_id)
            .to_ascii_lowercase()
    }

    /// The assignment's name: a UUIDv5 of (scope, principal, role GUID), lower-cased and joined
    /// by newlines (which no ARM id contains), so the same grant always gets the same name.
    pub fn name(&self) -> String {
        assignment_name(
            &self.scope,
            &self.principal_id,
            &self.role_definition_guid(),
        )
    }

    /// The hash of what wiform manages on the assignment.
    pub fn spec_hash(&self) -> String {
        assignment_spec_hash(
            &self.scope,
            &self.principal_id,
            &self.role_definition_guid(),
            self.condition.as_deref(),
        )
    }

    /// The description that marks it as this stack's.
    pub fn description(&self) -> String {
        assignment_marker(&self.stack, &self.spec_hash())
    }

    /// Is `live` the same grant (scope, principal, role), whatever its name?
    pub fn matches(&self, live: &LiveRoleAssignment) -> bool {
        live.scope == self.scope
            && live.principal_id == self.principal_id
            && live.role_definition_guid == self.role_definition_guid()
    }

    /// The PUT body (`RoleAssignmentCreateParameters`).
    pub fn body(&self) -> Value {
        let mut properties = json!({
            "roleDefinitionId": self.role_definition_id,
            "principalId": self.principal_id,
            "principalType": PRINCIPAL_TYPE,
            "description": self.description(),
        });
        if let Some(condition) = &self.condition {
            properties["condition"] = json!(condition);
            // "Currently the only accepted value is '2.0'" (RoleAssignmentProperties).
            properties["conditionVersion"] = json!("2.0");
        }
        json!({ "properties": properties })
    }

    fn path(&self, name: &str) -> String {
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version={API_VERSION}",
            self.scope
        )
    }

    fn describe(&self) -> String {
        describe_grant(
            &self.role_definition_guid(),
            &self.principal_id,
            &self.scope,
        )
    }
}

/// A role assignment as ARM shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveRoleAssignment {
    /// Full id, lower-case.
    pub id: String,
    /// The name (a GUID), lower-case.
    pub name: String,
    /// Normalised ([`normalise_scope`]).
    pub scope: String,
    /// Lower-case; ARM may return it with or without the `/subscriptions/{s}` prefix.
    pub role_definition_id: String,
    /// Lower-case: what grants are compared by.
    pub role_definition_guid: String,
    /// Lower-case.
    pub principal_id: String,
    pub principal_type: Option<String>,
    pub description: Option<String>,
    pub condition: Option<String>,
    /// Read from the description.
    pub owner: Owner,
}

impl LiveRoleAssignment {
    /// The hash of the live fields wiform manages, computed as [`DesiredRoleAssignment::spec_hash`]
    /// is: equal to the marker's hash while nobody changed the assignment since wiform wrote it.
    pub fn spec_hash(&self) -> String {
        assignment_spec_hash(
            &self.scope,
            &self.principal_id,
            &self.role_definition_guid,
            self.condition.as_deref(),
        )
    }

    fn describe(&self) -> String {
        describe_grant(&self.role_definition_guid, &self.principal_id, &self.scope)
    }
}

/// What a PUT did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "assignment", rename_all = "snake_case")]
pub enum PutOutcome {
    /// 201: a new assignment under wiform's name.
    Created(LiveRoleAssignment),
    /// 200: the assignment under wiform's name existed; its description and condition are now
    /// the desired ones.
    Updated(LiveRoleAssignment),
    /// 409 `RoleAssignmentExists`: the same grant existed under another name. Unless another
    /// stack's marker is on it, wiform wrote its marker and condition there (adoption); it keeps
    /// its name.
    Adopted(LiveRoleAssignment),
}

impl PutOutcome {
    pub fn assignment(&self) -> &LiveRoleAssignment {
        match self {
            PutOutcome::Created(a) | PutOutcome::Updated(a) | PutOutcome::Adopted(a) => a,
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawAssignment {
    id: String,
    name: String,
    properties: RawAssignmentProperties,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAssignmentProperties {
    role_definition_id: String,
    principal_id: String,
    #[serde(default)]
    principal_type: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    condition: Option<String>,
}

impl RawAssignment {
    fn into_live(self) -> LiveRoleAssignment {
        let p = self.properties;
        // `scope` is read-only and always returned; should it be missing, the id says it.
        let scope = p.scope.unwrap_or_else(|| {
            let lower = self.id.to_ascii_lowercase();
            match lower.rfind("/providers/microsoft.authorization/roleassignments/") {
                Some(at) => self.id[..at].to_string(),
                None => String::new(),
            }
        });
        let role_definition_id = p
            .role_definition_id
            .trim_end_matches('/')
            .to_ascii_lowercase();
        let role_definition_guid = guid_of(&role_definition_id)
            .unwrap_or(&role_definition_id)
            .to_string();
        LiveRoleAssignment {
            id: self.id.to_ascii_lowercase(),
            name: self.name.to_ascii_lowercase(),
            scope: normalise_scope(&scope),
            role_definition_id,
            role_definition_guid,
            principal_id: p.principal_id.to_ascii_lowercase(),
            principal_type: p.principal_type,
            owner: read_assignment_marker(p.description.as_deref().unwrap_or("")),
            description: p.description,
            condition: p.condition.filter(|c| !c.trim().is_empty()),
        }
    }
}

/// A role assignment from an answer body.
pub fn live_assignment_from_json(value: &Value) -> Result<LiveRoleAssignment, String> {
    RawAssignment::deserialize(value)
        .map(RawAssignment::into_live)
        .map_err(|e| format!("a role assignment is not the documented shape: {e}"))
}

fn live_from_response(response: &Response, action: &str) -> Result<LiveRoleAssignment, AzureError> {
    let raw: RawAssignment = response.json(action)?;
    Ok(raw.into_live())
}

/// See [`DesiredRoleAssignment::name`].
pub fn assignment_name(scope: &str, principal_id: &str, role_definition_guid: &str) -> String {
    let key = format!(
        "{}\n{}\n{}",
        normalise_scope(scope),
        principal_id.trim().to_ascii_lowercase(),
        role_definition_guid.trim().to_ascii_lowercase()
    );
    Uuid::new_v5(&ASSIGNMENT_NAMESPACE, key.as_bytes()).to_string()
}

fn assignment_spec_hash(
    scope: &str,
    principal_id: &str,
    role_definition_guid: &str,
    condition: Option<&str>,
) -> String {
    ownership::spec_hash(&json!({
        "scope": normalise_scope(scope),
        "principal_id": principal_id.to_ascii_lowercase(),
        "role": role_definition_guid.to_ascii_lowercase(),
        "condition": condition,
    }))
}

/// `managed by wiform (stack <stack>; spec <hash>)`: the ownership marker of a role assignment,
/// which has no tags (product design, "Ownership without a state file").
pub fn assignment_marker(stack: &str, spec_hash: &str) -> String {
    format!("{MARKER_PREFIX}{stack}{MARKER_SPEC}{spec_hash})")
}

/// Reads [`assignment_marker`] back: `Owner::Stack` only when the whole description is the
/// marker (a description that merely mentions wiform is not a claim). The spec part is optional.
pub fn read_assignment_marker(description: &str) -> Owner {
    let text = description.trim();
    let Some(prefix) = text.get(..MARKER_PREFIX.len()) else {
        return Owner::Unowned;
    };
    if !prefix.eq_ignore_ascii_case(MARKER_PREFIX) {
        return Owner::Unowned;
    }
    let Some(inner) = text[MARKER_PREFIX.len()..].strip_suffix(')') else {
        return Owner::Unowned;
    };
    let (stack, spec_hash) = match inner.rsplit_once(MARKER_SPEC) {
        Some((stack, hash)) => (stack.trim(), Some(hash.trim())),
        None => (inner.trim(), None),
    };
    let valid_stack = !stack.is_empty() && !stack.contains([';', '(', ')']);
    if !valid_stack {
        return Owner::Unowned;
    }
    Owner::Stack(Marker {
        stack: stack.to_string(),
        spec_hash: spec_hash
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase),
    })
}

/// "The ID of the existing role assignment is <32-hex>." → the name with dashes.
pub fn existing_assignment_name(message: &str) -> Option<String> {
    let marker = "existing role assignment is ";
    let lower = message.to_ascii_lowercase();
    let start = lower.find(marker)? + marker.len();
    let hex: String = lower[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
        .filter(|c| *c != '-')
        .collect();
    if hex.len() != 32 {
        return None;
    }
    Uuid::try_parse(&hex).ok().map(|u| u.to_string())
}

/// `role Reader for principal … at …` (the built-in name when known, else the GUID).
fn describe_grant(guid: &str, principal_id: &str, scope: &str) -> String {
    let role = builtin_roles::by_id(guid).map_or_else(|| guid.to_string(), |r| r.name.to_string());
    format!(
        "role {role} for principal {principal_id} at {}",
        scope_label(scope)
    )
}

fn assignments_path(scope: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version={API_VERSION}")
}

impl AzureProvider {
    /// Every role assignment that applies in `subscription`: at, above (management groups, the
    /// tenant root) and below it (resource groups, resources), in one paged list
    /// (`RoleAssignments_ListForSubscription` without `$filter`). The planner filters by principal.
    pub async fn list_role_assignments(
        &self,
        subscription: &str,
    ) -> Result<Vec<LiveRoleAssignment>, AzureError> {
        let request = Request::arm(
            Method::GET,
            assignments_path(&format!("/subscriptions/{subscription}")),
        )
        .action(format!(
            "list role assignments in subscription {subscription}"
        ));
        let raw: Vec<RawAssignment> = self.client.list(&request).await?;
        Ok(raw.into_iter().map(RawAssignment::into_live).collect())
    }

    /// Role assignments that apply at `scope` (for scopes outside the subscription, e.g. a
    /// management group): with a principal, `$filter=principalId eq '…'` (that principal's
    /// assignments at, above or below the scope); without, `$filter=atScope()` (every assignment
    /// at or above the scope).
    pub async fn list_role_assignments_at(
        &self,
        scope: &str,
        principal_id: Option<&str>,
    ) -> Result<Vec<LiveRoleAssignment>, AzureError> {
        let scope = normalise_scope(scope);
        let (filter, whose) = match principal_id {
            Some(p) => (
                format!("principalId eq {}", odata_string(&p.to_ascii_lowercase())),
                format!(" of principal {p}"),
            ),
            None => ("atScope()".to_string(), String::new()),
        };
        let request = Request::arm(
            Method::GET,
            format!(
                "{}&$filter={}",
                assignments_path(&scope),
                encode_query(&filter)
            ),
        )
        .action(format!(
            "list role assignments{whose} at {}",
            scope_label(&scope)
        ));
        let raw: Vec<RawAssignment> = self.client.list(&request).await?;
        Ok(raw.into_iter().map(RawAssignment::into_live).collect())
    }

    /// Creates or updates the assignment under its deterministic name, with this stack's marker.
    /// Waits out `PrincipalNotFound` while a new identity replicates; adopts the same grant found
    /// under another name (`RoleAssignmentExists`) instead of failing.
    pub async fn put_role_assignment(
        &self,
        desired: &DesiredRoleAssignment,
    ) -> Result<PutOutcome, AzureError> {
        let name = desired.name();
        let action = format!("assign {}", desired.describe());
        let request = Request::arm(Method::PUT, desired.path(&name))
            .json(desired.body())
            .action(action.clone())
            .wait_out(Wait::new(
                "PrincipalNotFound",
                format!(
                    "the new identity's principal {} to replicate to Azure RBAC",
                    desired.principal_id
                ),
                PRINCIPAL_REPLICATION,
            ));
        match self.client.send(&request).await {
            Ok(response) => {
                let live = live_from_response(&response, &action)?;
                Ok(if response.status == 201 {
                    PutOutcome::Created(live)
                } else {
                    PutOutcome::Updated(live)
                })
            }
            Err(e) if e.is_code("RoleAssignmentExists") => self.adopt(desired, e).await,
            Err(e) => Err(e),
        }
    }

    /// The same (scope, principal, role) exists under another name: find it (the name in the
    /// message, confirmed by a list of the principal's assignments at the scope) and put the
    /// desired description and condition there, unless another stack's marker is on it.
    async fn adopt(
        &self,
        desired: &DesiredRoleAssignment,
        conflict: AzureError,
    ) -> Result<PutOutcome, AzureError> {
        let named = conflict
            .failure()
            .and_then(|f| existing_assignment_name(&f.message));
        let listed = self
            .list_role_assignments_at(&desired.scope, Some(&desired.principal_id))
            .await?;
        let mut same_grant: Vec<LiveRoleAssignment> =
            listed.into_iter().filter(|a| desired.matches(a)).collect();
        // The one the message names first, should ARM ever hold two.
        same_grant.sort_by_key(|a| named.as_deref() != Some(a.name.as_str()));
        let existing_name = match (same_grant.first(), &named) {
            (Some(existing), _) => {
                if matches!(&existing.owner, Owner::Stack(m) if m.stack != desired.stack) {
                    return Ok(PutOutcome::Adopted(existing.clone()));
                }
                existing.name.clone()
            }
            // Not listed yet (reads may lag the write that made it): the message's name is enough.
            (None, Some(name)) => name.clone(),
            (None, None) => return Err(conflict),
        };
        let action = format!(
            "adopt role assignment {existing_name} ({})",
            desired.describe()
        );
        let request = Request::arm(Method::PUT, desired.path(&existing_name))
            .json(desired.body())
            .action(action.clone());
        let response = self.client.send(&request).await?;
        Ok(PutOutcome::Adopted(live_from_response(&response, &action)?))
    }

    /// Deletes an assignment. Refuses one without this stack's marker unless `force_unowned`
    /// (the planner's switch for unmanaged assignments on an identity the stack owns); one marked
    /// by another stack is always refused. 204 (or 404) means it was gone already.
    pub async fn delete_role_assignment(
        &self,
        stack: &str,
        live: &LiveRoleAssignment,
        force_unowned: bool,
    ) -> Result<Deletion, AzureError> {
        let action = format!("delete role assignment {} ({})", live.name, live.describe());
        let refuse = |why: String| {
            Err(AzureError::new(
                action.clone(),
                AzureErrorKind::Conflict { message: why },
            ))
        };
        match &live.owner {
            Owner::Stack(m) if m.stack == stack => {}
            Owner::Unowned if force_unowned => {}
            Owner::Unowned => {
                return refuse(format!(
                    "it has no wiform marker (its description is {:?}); wiform deletes it only \
                     when asked to remove unmanaged assignments",
                    live.description.as_deref().unwrap_or("")
                ));
            }
            Owner::Stack(m) => {
                return refuse(format!(
                    "it belongs to stack \"{}\", not \"{stack}\"",
                    m.stack
                ));
            }
        }
        let request = Request::arm(
            Method::DELETE,
            format!("{}?api-version={API_VERSION}", live.id),
        )
        .action(action);
        Ok(match self.client.send_optional(&request).await? {
            Some(response) if response.status == 200 => Deletion::Deleted,
            _ => Deletion::AlreadyGone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_resolve_offline_when_known() {
        assert_eq!(
            RoleRef::parse("reader"),
            RoleRef::Builtin {
                name: "Reader".into(),
                id: "acdd72a7-3385-48ef-bd42-f606fba81ae7".into()
            }
        );
        assert_eq!(
            RoleRef::parse(
                "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
            ),
            RoleRef::Builtin {
                name: "Reader".into(),
                id: "acdd72a7-3385-48ef-bd42-f606fba81ae7".into()
            }
        );
        assert_eq!(
            RoleRef::parse("My Custom Role"),
            RoleRef::Name {
                name: "My Custom Role".into()
            }
        );
        assert_eq!(
            RoleRef::parse("11111111-2222-3333-4444-555555555555"),
            RoleRef::Id {
                id: "11111111-2222-3333-4444-555555555555".into()
            }
        );
    }

    const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";
    const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    const PRINCIPAL: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

    fn rg() -> String {
        format!("/subscriptions/{SUB}/resourceGroups/rg-Orders")
    }

    fn reader() -> RoleDefinition {
        RoleDefinition {
            id: definition_id_at(&rg(), READER),
            guid: READER.into(),
            role_name: "Reader".into(),
            builtin: true,
        }
    }

    fn desired(condition: Option<&str>) -> DesiredRoleAssignment {
        DesiredRoleAssignment::new("orders", &rg(), PRINCIPAL, &reader(), condition)
    }

    #[test]
    fn names_are_deterministic_and_ignore_case() {
        let a = desired(None);
        let b = DesiredRoleAssignment::new(
            "other-stack",
            &format!("{}/", rg().to_uppercase()),
            &PRINCIPAL.to_uppercase(),
            &RoleDefinition {
                id: format!("/providers/Microsoft.Authorization/roleDefinitions/{READER}"),
                ..reader()
            },
            Some("x"),
        );
        // Stack, condition and the definition id's form do not change the grant's name.
        assert_eq!(a.name(), b.name());
        assert_eq!(Uuid::parse_str(&a.name()).unwrap().get_version_num(), 5);
        // This name is stable across releases: a change would duplicate every assignment.
        assert_eq!(
            assignment_name(&rg(), PRINCIPAL, READER),
            Uuid::new_v5(
                &ASSIGNMENT_NAMESPACE,
                format!("/subscriptions/{SUB}/resourcegroups/rg-orders\n{PRINCIPAL}\n{READER}")
                    .as_bytes()
            )
            .to_string()
        );
        // Each part matters.
        let other_scope = assignment_name(&format!("/subscriptions/{SUB}"), PRINCIPAL, READER);
        let other_principal = assignment_name(&rg(), READER, READER);
        let other_role = assignment_name(&rg(), PRINCIPAL, PRINCIPAL);
        for other in [other_scope, other_principal, other_role] {
            assert_ne!(other, a.name());
        }
    }

    #[test]
    fn the_body_always_says_service_principal_and_carries_the_marker() {
        let plain = desired(None).body();
        assert_eq!(plain["properties"]["principalType"], "ServicePrincipal");
        assert_eq!(plain["properties"]["principalId"], PRINCIPAL);
        assert_eq!(
            plain["properties"]["roleDefinitionId"],
            format!(
                "/subscriptions/{SUB}/providers/microsoft.authorization/roledefinitions/{READER}"
            )
        );
        assert!(plain["properties"].get("condition").is_none());
        assert!(plain["properties"].get("conditionVersion").is_none());
        let description = plain["properties"]["description"].as_str().unwrap();
        assert_eq!(
            description,
            format!(
                "managed by wiform (stack orders; spec {})",
                desired(None).spec_hash()
            )
        );

        let conditional = desired(Some(" @Resource[x] StringEquals 'c' ")).body();
        assert_eq!(
            conditional["properties"]["condition"],
            "@Resource[x] StringEquals 'c'"
        );
        assert_eq!(conditional["properties"]["conditionVersion"], "2.0");
        // A blank condition is none.
        assert_eq!(desired(Some("  ")).condition, None);
        assert_ne!(desired(Some("a")).spec_hash(), desired(None).spec_hash());
    }

    #[test]
    fn markers_round_trip_and_strangers_are_unowned() {
        let marker = assignment_marker("orders", "0123456789abcdef");
        assert_eq!(
            read_assignment_marker(&marker),
            Owner::Stack(Marker {
                stack: "orders".into(),
                spec_hash: Some("0123456789abcdef".into())
            })
        );
        assert_eq!(
            read_assignment_marker("Managed by wiform (stack orders)"),
            Owner::Stack(Marker {
                stack: "orders".into(),
                spec_hash: None
            })
        );
        for stranger in [
            "",
            "managed by wiform",
            "managed by terraform (stack orders; spec 00)",
            "note: managed by wiform (stack orders; spec 00)",
            "managed by wiform (stack ; spec 00)",
            "managed by wiform (stack orders; spec 00",
        ] {
            assert_eq!(
                read_assignment_marker(stranger),
                Owner::Unowned,
                "{stranger}"
            );
        }
        // A hash that is not hex is no hash.
        assert_eq!(
            read_assignment_marker("managed by wiform (stack s; spec xyz)"),
            Owner::Stack(Marker {
                stack: "s".into(),
                spec_hash: None
            })
        );
    }

    #[test]
    fn live_assignments_are_normalised_and_compared_by_role_guid() {
        let body = json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg-Orders/providers/Microsoft.Authorization/roleAssignments/ABCDEF00-0000-4000-8000-000000000000"),
            "name": "ABCDEF00-0000-4000-8000-000000000000",
            "type": "Microsoft.Authorization/roleAssignments",
            "properties": {
                // Tenant-relative, as ARM sometimes answers.
                "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{}", READER.to_uppercase()),
                "principalId": PRINCIPAL.to_uppercase(),
                "principalType": "ServicePrincipal",
                "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-Orders"),
                "description": desired(None).description(),
                "condition": null,
                "createdOn": "2024-01-01T00:00:00Z"
            }
        });
        let live = live_assignment_from_json(&body).unwrap();
        assert_eq!(live.name, "abcdef00-0000-4000-8000-000000000000");
        assert_eq!(live.scope, rg().to_ascii_lowercase());
        assert_eq!(live.role_definition_guid, READER);
        assert_eq!(live.principal_id, PRINCIPAL);
        assert!(live.owner.is_stack("orders"));
        assert!(desired(None).matches(&live));
        assert!(!desired(None).matches(&LiveRoleAssignment {
            role_definition_guid: PRINCIPAL.into(),
            ..live.clone()
        }));
        // Unchanged since wiform wrote it: the live hash is the marker's.
        assert_eq!(
            Some(live.spec_hash()),
            live.owner.marker().and_then(|m| m.spec_hash.clone())
        );
        let changed = LiveRoleAssignment {
            condition: Some("x".into()),
            ..live
        };
        assert_ne!(Some(changed.spec_hash()), Some(desired(None).spec_hash()));

        // The scope comes from the id when the property is missing.
        let mut no_scope = body.clone();
        no_scope["properties"]
            .as_object_mut()
            .unwrap()
            .remove("scope");
        assert_eq!(
            live_assignment_from_json(&no_scope).unwrap().scope,
            rg().to_ascii_lowercase()
        );
        assert!(live_assignment_from_json(&json!({"id": "x"})).is_err());
    }

    #[test]
    fn the_existing_assignment_is_read_from_the_conflict_message() {
        assert_eq!(
            existing_assignment_name(
                "The role assignment already exists. The ID of the existing role assignment is 0f1e2d3c4b5a49788695A4B3C2D1E0F9."
            )
            .as_deref(),
            Some(PRINCIPAL)
        );
        assert_eq!(
            existing_assignment_name("The role assignment already exists."),
            None
        );
        assert_eq!(
            existing_assignment_name("The ID of the existing role assignment is 0f1e."),
            None
        );
    }

    #[test]
    fn definition_ids_follow_the_scope_and_end_in_the_guid() {
        assert_eq!(
            definition_id_at(&rg(), READER),
            format!(
                "/subscriptions/{SUB}/providers/microsoft.authorization/roledefinitions/{READER}"
            )
        );
        assert_eq!(
            definition_id_at(
                "/providers/Microsoft.Management/managementGroups/mg",
                READER
            ),
            format!("/providers/microsoft.authorization/roledefinitions/{READER}")
        );
        assert_eq!(
            guid_of(&format!(
                "/providers/Microsoft.Authorization/roleDefinitions/{READER}/"
            )),
            Some(READER)
        );
        assert_eq!(guid_of("Reader"), None);
        assert_eq!(normalise_scope(" /Subscriptions/S/ "), "/subscriptions/s");
        assert_eq!(normalise_scope("/"), "");
    }

    #[test]
    fn closest_names_are_likely_typos_closest_first() {
        let names = [
            "Identity Writer",
            "Identity Reader",
            "Owner",
            "Storage Blob Data Reader",
        ];
        assert_eq!(
            closest_names("identity writre", names),
            ["Identity Writer", "Identity Reader"]
        );
        assert_eq!(
            closest_names("Identity Rider", names),
            ["Identity Reader", "Identity Writer"]
        );
        assert!(closest_names("Something Else Entirely", names).is_empty());
    }

    #[test]
    fn filters_are_encoded_for_the_query_string() {
        assert_eq!(
            encode_query(&format!(
                "roleName eq {}",
                odata_string("Backup & O'Brien+1")
            )),
            "roleName%20eq%20'Backup%20%26%20O''Brien%2B1'"
        );
        assert_eq!(encode_query("atScope()"), "atScope()");
        assert_eq!(encode_query("é#"), "%C3%A9%23");
    }
}
