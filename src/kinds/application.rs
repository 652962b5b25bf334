//! Entra app registrations and their service principals (`kind = "application"`). wiform finds
//! its own by `uniqueName` (`wiform.STACK.KEY`), adopts an unowned one by display name, and keeps
//! its marker and records in the application's tags. Microsoft Graph v1.0 `applications`,
//! `servicePrincipals` (src/providers/azure/applications.rs).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::json;

use super::{
    ApplyCtx, Claim, Failure, Kind, Orphan, Out, Outputs, PlanCtx, PlanOutputs, computed, differs,
    field, gone, hash_of,
};
use crate::address::Address;
use crate::engine::observe::Observed;
use crate::engine::plan::{Action, After};
use crate::engine::records;
use crate::ownership::Owner;
use crate::providers::azure::AzureApi;
use crate::providers::azure::applications::{DesiredApplication, unique_name};
use crate::providers::azure::observe::{Listing, ObserveScope};
use crate::providers::kube::ClusterApi;

pub use crate::providers::azure::applications::LiveApplication as Live;

/// The fields of a planned application that hold its outputs: (client id, principal id,
/// issuer).
pub const OUTPUT_FIELDS: (Option<&str>, Option<&str>, Option<&str>) =
    (Some("app_id"), Some("service_principal_id"), None);

/// An application as the config asks for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    /// The identity's table key (part of the application's `uniqueName`).
    #[serde(skip)]
    pub key: String,
    pub display_name: String,
    /// `prune_unmanaged = true`: what was on it at adoption may go too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune_unmanaged: bool,
}

/// What the application records as there when wiform adopted it.
fn unmanaged_record(observed: &Observed, live: &Live, adopting: bool) -> BTreeSet<String> {
    let credentials = observed
        .azure
        .application_credentials
        .get(&live.object_id)
        .map_or(&[][..], Vec::as_slice);
    super::managed_identity::unmanaged_record(
        observed,
        credentials,
        live.service_principal_id.as_deref(),
        &live.tag_map(),
        adopting,
    )
}

impl Desired {
    /// `[identities.KEY]` with `kind = "application"`.
    pub fn from_config(key: &str, identity: &crate::config::model::Identity) -> Self {
        Desired {
            key: key.to_string(),
            display_name: identity
                .display_name
                .as_ref()
                .map_or(key, |n| n.value.as_str())
                .to_string(),
            prune_unmanaged: identity.prune_unmanaged.as_ref().is_some_and(|p| p.value),
        }
    }
}

pub fn observe_scope(desired: &Desired, scope: &mut ObserveScope) {
    scope.application_names.insert(desired.display_name.clone());
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) -> PlanOutputs {
    let mut out = PlanOutputs::missing();
    if ctx.failed(&Listing::Applications) {
        return out;
    }
    let display_name = &desired.display_name;
    let unique = unique_name(ctx.stack, &desired.key);
    let apps = &ctx.observed.azure.applications;
    let ours: Vec<&Live> = apps
        .iter()
        .filter(|a| a.owner.is_stack(ctx.stack) && a.has_unique_name(&unique))
        .collect();
    let by_name: Vec<&Live> = apps
        .iter()
        .filter(|a| a.owner == Owner::Unowned && &a.display_name == display_name)
        .collect();
    let (live, action) = match (ours.first(), by_name.as_slice()) {
        (Some(app), _) => (Some(*app), None),
        (None, []) => (None, Some(Action::Create)),
        (None, [one]) => (Some(*one), Some(Action::Adopt)),
        (None, many) => {
            ctx.error(
                format!(
                    "{} applications are named {display_name:?} and none carries wiform's marker",
                    many.len()
                ),
                Some("give the identity a display_name no other application has, or delete the duplicates".into()),
            );
            return out;
        }
    };
    let mut fields = vec![field(
        "display_name",
        live.map(|l| json!(l.display_name)),
        After::Known(json!(display_name)),
    )];
    let hash = hash_of(live);
    let Some(live) = live else {
        fields.push(computed("app_id", None, After::Unknown));
        fields.push(computed("service_principal_id", None, After::Unknown));
        out.client_id = Out::Unknown;
        out.principal_id = Out::Unknown;
        ctx.decide(Action::Create, None, None, fields, hash);
        return out;
    };
    ctx.claim(Claim::Application(live.object_id.clone()));
    fields.push(computed(
        "app_id",
        Some(&live.app_id),
        After::Known(json!(live.app_id)),
    ));
    let principal = live.service_principal_id.as_deref();
    fields.push(computed(
        "service_principal_id",
        principal,
        principal.map_or(After::Unknown, |p| After::Known(json!(p))),
    ));
    out.client_id = Out::Known(live.app_id.clone());
    out.principal_id = principal.map_or(Out::Unknown, |p| Out::Known(p.to_string()));
    out.live_key = Some(live.object_id.clone());
    out.unmanaged = unmanaged_record(ctx.observed, live, action == Some(Action::Adopt));
    out.prune_unmanaged = desired.prune_unmanaged;
    let mut records = std::mem::take(&mut ctx.records);
    records.extend(records::unmanaged_tags(&out.unmanaged));
    let (action, reason) = match action {
        Some(action) => (action, None),
        None if principal.is_none() => (
            Action::Update,
            Some("the application has no service principal".to_string()),
        ),
        None if differs(&fields) => (Action::Update, None),
        None if records::record_tags(&live.tag_map()) != records => (
            Action::Update,
            Some(super::managed_identity::RECORDS_STALE.into()),
        ),
        None => (Action::NoOp, None),
    };
    ctx.decide(action, reason, Some(live.object_id.clone()), fields, hash);
    out
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    desired: &Desired,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<Option<Outputs>, Failure> {
    let current = ctx
        .change
        .id
        .as_deref()
        .and_then(|id| find_live(ctx.observed, id));
    let mut records = ctx.records.clone();
    if let Some(live) = current {
        records.extend(records::unmanaged_tags(&unmanaged_record(
            ctx.observed,
            live,
            ctx.change.action == Action::Adopt,
        )));
    }
    let request = DesiredApplication {
        stack: ctx.stack.to_string(),
        key: desired.key.clone(),
        display_name: desired.display_name.clone(),
        records,
    };
    let live = ctx.azure.put_application(&request, current).await?;
    Ok(Some(Outputs {
        client_id: Some(live.app_id.clone()),
        principal_id: live.service_principal_id.clone(),
        issuer_url: None,
        id: Some(live.object_id.clone()),
    }))
}

/// The delete of an application the stack owns and the config no longer names.
pub fn orphan(live: &Live) -> Orphan {
    Orphan {
        address: Address::Identity(live.display_name.clone()),
        kind: Kind::Application,
        reason: Some("its service principal and federated credentials go with it"),
        live_id: live.object_id.clone(),
        fields: vec![gone("display_name", json!(live.display_name))],
        live_hash: hash_of(Some(live)),
    }
}

/// The observed application with object id `id`.
fn find_live<'a>(observed: &'a Observed, id: &str) -> Option<&'a Live> {
    observed
        .azure
        .applications
        .iter()
        .find(|a| a.object_id == id)
}

pub async fn delete<A: AzureApi, C: ClusterApi>(ctx: &ApplyCtx<'_, A, C>) -> Result<(), Failure> {
    let live = find_live(ctx.observed, ctx.live_id()?)
        .ok_or_else(|| Failure::new("the application was not observed"))?;
    ctx.azure.delete_application(ctx.stack, live).await?;
    Ok(())
}

/// The live application behind a change, as its marker and the hash of its managed fields now.
pub fn drift_live<'a>(observed: &'a Observed, id: &str) -> Option<(&'a Owner, String)> {
    find_live(observed, id).map(|a| (&a.owner, a.live_spec_hash()))
}
