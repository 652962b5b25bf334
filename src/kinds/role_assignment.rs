//! Role assignments (`[[role_grants]]`): an identity's principal, a role and a scope, unique
//! together; named by a UUIDv5 of the three, so a retry never duplicates. Their marker is in
//! the description; the parent identity records them too (`engine::records`). ARM:
//! `Microsoft.Authorization/roleAssignments` (src/providers/azure/roles.rs).

use serde::Serialize;
use serde_json::json;

use super::{ApplyCtx, Claim, Failure, Kind, Orphan, Output, PlanCtx, field, gone, hash_of};
use crate::address::Address;
use crate::arm_id::subscription_of;
use crate::builtin_roles;
use crate::engine::observe::Observed;
use crate::engine::plan::{Action, After};
use crate::providers::azure::AzureApi;
use crate::providers::azure::observe::{Listing, ObserveScope};
use crate::providers::azure::roles::{DesiredRoleAssignment, normalise_scope};
use crate::providers::kube::ClusterApi;

pub use crate::providers::azure::roles::LiveRoleAssignment as Live;
pub use crate::providers::azure::roles::RoleRef;

/// A role grant as the config asks for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub role: RoleRef,
    /// Full ARM id of the scope.
    pub scope: String,
    pub condition: Option<String>,
}

impl Desired {
    /// A `[[role_grants]]` entry; a relative scope lies in `[azure].subscription_id`.
    pub fn from_config(
        grant: &crate::config::model::RoleGrant,
        defaults: super::ConfigDefaults<'_>,
    ) -> Self {
        Desired {
            role: RoleRef::parse(&grant.role),
            scope: crate::arm_id::full_scope(&grant.scope, defaults.subscription),
            condition: grant.condition.as_ref().map(|c| c.value.clone()),
        }
    }

    /// The identity's record entry of a grant: its role and scope as the config resolves them.
    pub fn record_entry(&self) -> String {
        crate::engine::records::entry(
            &json!({ "role": self.role, "scope": self.scope.to_ascii_lowercase() }),
        )
    }
}

pub fn observe_scope(desired: &Desired, scope: &mut ObserveScope) {
    scope.scopes.insert(desired.scope.clone());
    if !matches!(desired.role, RoleRef::Builtin { .. }) {
        scope
            .roles
            .insert((desired.scope.clone(), desired.role.clone()));
    }
}

/// The role's definition GUID: built-in roles and GUIDs offline, custom names from the roles
/// observed at the scope.
fn definition_guid(desired: &Desired, ctx: &mut PlanCtx<'_>) -> Option<String> {
    match &desired.role {
        RoleRef::Builtin { id, .. } | RoleRef::Id { id } => Some(id.to_ascii_lowercase()),
        RoleRef::Name { name } => {
            let resolved = ctx
                .observed
                .azure
                .roles
                .iter()
                .find(|r| r.scope == desired.scope && r.role == desired.role)
                .map(|r| r.definition.guid.clone());
            if resolved.is_none()
                && !ctx.failed(&Listing::Role(desired.scope.clone(), name.clone()))
            {
                ctx.error(
                    format!("role `{name}` was not resolved at {}", desired.scope),
                    None,
                );
            }
            resolved
        }
    }
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) {
    let Desired {
        role,
        scope,
        condition,
    } = desired;
    let condition = condition.as_deref();
    let Some(parent) = ctx.input(Output::PrincipalId) else {
        return;
    };
    let principal = parent.principal_id.clone();
    if principal == super::Out::Missing {
        return;
    }
    let Some(guid) = definition_guid(desired, ctx) else {
        if let Some(principal) = principal.known() {
            ctx.claim(Claim::UnresolvedGrant(
                principal.to_ascii_lowercase(),
                normalise_scope(scope),
            ));
        }
        return;
    };
    let scope_norm = normalise_scope(scope);
    let live: Option<&Live> = match principal.known() {
        None => None,
        Some(principal) => {
            let sub = subscription_of(scope)
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_default();
            if ctx.failed(&Listing::RoleAssignments(sub))
                || ctx.failed(&Listing::RoleAssignmentsAt(scope.to_string()))
            {
                return;
            }
            ctx.observed.azure.role_assignments.iter().find(|a| {
                a.principal_id.eq_ignore_ascii_case(principal)
                    && a.scope == scope_norm
                    && a.role_definition_guid == guid
            })
        }
    };
    let fields = vec![
        field(
            "role",
            live.map(|_| json!(role.display())),
            After::Known(json!(role.display())),
        ),
        // Matched by the normalised scope: the same scope, however ARM spells it.
        field(
            "scope",
            live.map(|_| json!(scope)),
            After::Known(json!(scope)),
        ),
        field(
            "principal_id",
            live.map(|l| json!(l.principal_id)),
            principal.after(),
        ),
        field(
            "condition",
            live.and_then(|l| l.condition.as_ref().map(|c| json!(c))),
            condition.map_or(After::Removed, |c| After::Known(json!(c))),
        ),
    ];
    let hash = hash_of(live);
    let Some(live) = live else {
        ctx.decide(Action::Create, None, None, fields, hash);
        return;
    };
    ctx.claim(Claim::Assignment(live.id.to_ascii_lowercase()));
    let Some(owned) = ctx.ownership(
        &live.owner,
        || format!("role assignment {}", live.name),
        None,
    ) else {
        return;
    };
    let action = if !owned {
        Action::Adopt
    } else if live.condition.as_deref() != condition {
        Action::Update
    } else {
        Action::NoOp
    };
    ctx.decide(action, None, Some(live.id.clone()), fields, hash);
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    desired: &Desired,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<(), Failure> {
    let principal = ctx
        .input(Output::PrincipalId)
        .and_then(|o| o.principal_id.clone())
        .ok_or_else(|| Failure::new("its identity's principal id is not known"))?;
    let definition = ctx
        .azure
        .resolve_role(&desired.scope, &desired.role)
        .await?;
    let request = DesiredRoleAssignment::new(
        ctx.stack,
        &desired.scope,
        &principal,
        &definition,
        desired.condition.as_deref(),
    );
    ctx.azure.put_role_assignment(&request).await?;
    Ok(())
}

/// The delete of an assignment of `identity`'s principal that the config does not name:
/// the stack's own, or (`unowned`) one made outside wiform on an identity the stack owns.
pub fn orphan(identity: &str, live: &Live) -> Orphan {
    let role = builtin_roles::by_id(&live.role_definition_guid)
        .map(|r| r.name.to_string())
        .unwrap_or_else(|| live.role_definition_guid.clone());
    Orphan {
        address: Address::RoleGrant {
            identity: identity.to_string(),
            role: role.clone(),
            scope: live.scope.clone(),
        },
        kind: Kind::RoleAssignment,
        reason: (live.owner == crate::ownership::Owner::Unowned)
            .then_some("made outside wiform, on an identity this stack owns"),
        live_id: live.id.clone(),
        fields: vec![
            gone("role", json!(role)),
            gone("scope", json!(live.scope)),
            gone("principal_id", json!(live.principal_id)),
        ],
        live_hash: hash_of(Some(live)),
    }
}

/// The observed assignment with ARM id `id`.
fn find_live<'a>(observed: &'a Observed, id: &str) -> Option<&'a Live> {
    observed
        .azure
        .role_assignments
        .iter()
        .find(|a| a.id.eq_ignore_ascii_case(id))
}

pub async fn delete<A: AzureApi, C: ClusterApi>(ctx: &ApplyCtx<'_, A, C>) -> Result<(), Failure> {
    let live = find_live(ctx.observed, ctx.live_id()?)
        .ok_or_else(|| Failure::new("the role assignment was not observed"))?;
    // Extras on an identity this stack owns are removed even without a marker.
    ctx.azure
        .delete_role_assignment(ctx.stack, live, true)
        .await?;
    Ok(())
}

/// The live assignment behind a change, as its marker and the hash of its managed fields now.
pub fn drift_live<'a>(
    observed: &'a Observed,
    id: &str,
) -> Option<(&'a crate::ownership::Owner, String)> {
    find_live(observed, id).map(|a| (&a.owner, a.spec_hash()))
}
