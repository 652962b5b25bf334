//! User-assigned managed identities. Their client id goes into service account annotations,
//! their principal id into role assignments; their tags carry wiform's marker and the records of
//! their credentials and grants. ARM: `Microsoft.ManagedIdentity/userAssignedIdentities`
//! (src/providers/azure/identities.rs).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use super::{
    ApplyCtx, Claim, Failure, Out, Outputs, PlanCtx, PlanOutputs, computed, differs, field, gone,
    hash_of, map_fields,
};
use crate::address::Address;
use crate::engine::observe::Observed;
use crate::engine::plan::{Action, After};
use crate::engine::records;
use crate::ownership::Owner;
use crate::providers::azure::AzureApi;
use crate::providers::azure::identities::{
    DesiredIdentity, arm_key, identity_id, normalize_location,
};
use crate::providers::azure::observe::{Listing, ObserveScope};
use crate::providers::kube::ClusterApi;

pub use crate::providers::azure::identities::LiveIdentity as Live;

/// The fields of a planned identity that hold its outputs: (client id, principal id, issuer).
pub const OUTPUT_FIELDS: (Option<&str>, Option<&str>, Option<&str>) =
    (Some("client_id"), Some("principal_id"), None);

/// Why an identity or application is updated when only its records are out of date.
pub const RECORDS_STALE: &str = "records the federated credentials and role grants it now has, so that `wiform drift` can tell them from changes made by hand";

/// A managed identity as the config asks for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
    /// `prune_unmanaged = true`: what was on it at adoption may go too.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub prune_unmanaged: bool,
}

fn kept_tags(
    live: &Live,
    config: &BTreeMap<String, String>,
    adopting: bool,
) -> BTreeMap<String, String> {
    super::kept_tags(&live.tags, config, adopting)
}

/// What an identity records as there when wiform adopted it (its credentials of `credentials`,
/// the role assignments of `principal`), from its live `tags`.
pub fn unmanaged_record(
    observed: &Observed,
    credentials: &[super::federated_credential::Live],
    principal: Option<&str>,
    tags: &BTreeMap<String, String>,
    adopting: bool,
) -> BTreeSet<String> {
    unmanaged_record_with(
        observed,
        credentials,
        principal,
        tags,
        adopting,
        &BTreeMap::new(),
    )
}

/// [`unmanaged_record`], with the user tags wiform leaves alone.
fn unmanaged_record_with(
    observed: &Observed,
    credentials: &[super::federated_credential::Live],
    principal: Option<&str>,
    tags: &BTreeMap<String, String>,
    adopting: bool,
    kept_tags: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let assignments = observed
        .azure
        .role_assignments
        .iter()
        // Any marker: one the config adopts gets wiform's marker by the same apply, and stays
        // what was there at adoption.
        .filter(|a| Some(a.principal_id.as_str()) == principal)
        .map(|a| a.id.clone());
    records::unmanaged(
        adopting,
        records::read(tags, records::UNMANAGED_TAG),
        credentials
            .iter()
            .map(|c| c.id.clone())
            .chain(assignments)
            .chain(kept_tags.keys().map(|k| super::tag_entry(k))),
    )
}

impl Desired {
    /// `[identities.KEY]` with `kind = "managed"` (the default).
    pub fn from_config(
        key: &str,
        identity: &crate::config::model::Identity,
        defaults: super::ConfigDefaults<'_>,
    ) -> Self {
        Desired {
            subscription_id: defaults.subscription.to_string(),
            resource_group: identity
                .resource_group
                .as_ref()
                .map(|r| r.value.clone())
                .unwrap_or_default(),
            name: identity
                .name
                .as_ref()
                .map_or(key, |n| n.value.as_str())
                .to_string(),
            location: defaults.location(identity.location.as_ref()),
            tags: super::string_map(&identity.tags),
            prune_unmanaged: identity.prune_unmanaged.as_ref().is_some_and(|p| p.value),
        }
    }

    /// What the provider writes for `stack`, with the records of its credentials and grants.
    pub fn request(&self, stack: &str, records: BTreeMap<String, String>) -> DesiredIdentity {
        DesiredIdentity {
            stack: stack.to_string(),
            subscription_id: self.subscription_id.clone(),
            resource_group: self.resource_group.clone(),
            name: self.name.clone(),
            location: self.location.clone(),
            tags: self.tags.clone(),
            records,
        }
    }
}

pub fn observe_scope(desired: &Desired, scope: &mut ObserveScope) {
    scope
        .subscriptions
        .insert(desired.subscription_id.to_ascii_lowercase());
    scope.identity_keys.insert(arm_key(&identity_id(
        &desired.subscription_id,
        &desired.resource_group,
        &desired.name,
    )));
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) -> PlanOutputs {
    let mut out = PlanOutputs::missing();
    let desired_prune = desired.prune_unmanaged;
    let desired = desired.request(ctx.stack, std::mem::take(&mut ctx.records));
    if ctx.failed(&Listing::Identities(
        desired.subscription_id.to_ascii_lowercase(),
    )) {
        return out;
    }
    let key = desired.key();
    let live = ctx.observed.azure.identities.get(&key);
    // Tags set by hand before wiform adopted the identity stay (what it leaves alone).
    let kept = live
        .map(|l| kept_tags(l, &desired.tags, !l.owner.is_stack(ctx.stack)))
        .unwrap_or_default();
    let mut desired = desired;
    desired.tags.extend(kept.clone());
    let location = normalize_location(&desired.location);
    // ARM names are case-insensitive: the identity was matched by its lower-cased id, so a name
    // spelt with other capitals is the same object, not a change.
    let same_case = |live: &str, wanted: &str| -> Value {
        if live.eq_ignore_ascii_case(wanted) {
            json!(wanted)
        } else {
            json!(live)
        }
    };
    let mut fields = vec![
        field(
            "name",
            live.map(|l| same_case(&l.name, &desired.name)),
            After::Known(json!(desired.name)),
        ),
        field(
            "resource_group",
            live.map(|l| same_case(&l.resource_group, &desired.resource_group)),
            After::Known(json!(desired.resource_group)),
        ),
        field(
            "location",
            live.map(|l| json!(l.location)),
            After::Known(json!(location)),
        ),
    ];
    fields.extend(map_fields(
        "tags",
        live.map(Live::user_tags).as_ref(),
        &desired.tags,
    ));
    let hash = hash_of(live);
    out.live_key = Some(key.clone());
    let Some(live) = live else {
        fields.push(computed("client_id", None, After::Unknown));
        fields.push(computed("principal_id", None, After::Unknown));
        out.client_id = Out::Unknown;
        out.principal_id = Out::Unknown;
        ctx.decide(Action::Create, None, None, fields, hash);
        return out;
    };
    ctx.claim(Claim::Identity(key.clone()));
    let Some(owned) = ctx.ownership(
        &live.owner,
        || format!("managed identity {}", live.label()),
        Some("give this identity another name, or remove it from the other stack first"),
    ) else {
        return PlanOutputs::missing();
    };
    if live.location != location {
        if !owned {
            ctx.error(
                format!(
                    "managed identity {} exists in {} without wiform's marker; the config says {location}",
                    live.label(),
                    live.location
                ),
                Some("set its location to adopt it as it is, or give it another name".into()),
            );
            return PlanOutputs::missing();
        }
        fields.push(computed("client_id", Some(&live.client_id), After::Unknown));
        fields.push(computed(
            "principal_id",
            Some(&live.principal_id),
            After::Unknown,
        ));
        out.client_id = Out::Unknown;
        out.principal_id = Out::Unknown;
        // The old identity's credentials and grants go with it.
        out.live_key = None;
        ctx.decide(
            Action::Replace,
            Some("location cannot change: replace (the identity gets new client and principal ids; its credentials and role assignments are made again)".into()),
            Some(live.id.clone()),
            fields,
            hash,
        );
        return out;
    }
    let credentials = ctx
        .observed
        .azure
        .identity_credentials
        .get(&key)
        .map_or(&[][..], Vec::as_slice);
    out.unmanaged = unmanaged_record_with(
        ctx.observed,
        credentials,
        Some(&live.principal_id),
        &live.tags,
        !owned,
        &kept,
    );
    out.prune_unmanaged = desired_prune;
    desired
        .records
        .extend(records::unmanaged_tags(&out.unmanaged));
    let client = After::Known(json!(live.client_id));
    let principal = After::Known(json!(live.principal_id));
    fields.push(computed("client_id", Some(&live.client_id), client));
    fields.push(computed(
        "principal_id",
        Some(&live.principal_id),
        principal,
    ));
    out.client_id = Out::Known(live.client_id.clone());
    out.principal_id = Out::Known(live.principal_id.clone());
    // What it records of its credentials and grants (for drift) follows the config.
    let records_stale = records::record_tags(&live.tags) != desired.records;
    let (action, reason) = if !owned {
        (
            Action::Adopt,
            (!kept.is_empty()).then(|| {
                format!(
                    "leaves alone the tags the config does not set: {}",
                    kept.keys()
                        .map(|k| format!("tags[{k:?}]"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        )
    } else if differs(&fields) {
        (Action::Update, None)
    } else if records_stale {
        (Action::Update, Some(RECORDS_STALE.into()))
    } else {
        (Action::NoOp, None)
    };
    ctx.decide(action, reason, Some(live.id.clone()), fields, hash);
    out
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    desired: &Desired,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<Option<Outputs>, Failure> {
    let mut desired = desired.request(ctx.stack, ctx.records.clone());
    if let Some(live) = ctx.observed.azure.identities.get(&desired.key())
        && ctx.change.action != Action::Replace
    {
        let credentials = ctx
            .observed
            .azure
            .identity_credentials
            .get(&live.key())
            .map_or(&[][..], Vec::as_slice);
        let adopting = ctx.change.action == Action::Adopt;
        let kept = kept_tags(live, &desired.tags, adopting);
        let unmanaged = unmanaged_record_with(
            ctx.observed,
            credentials,
            Some(&live.principal_id),
            &live.tags,
            adopting,
            &kept,
        );
        desired.tags.extend(kept);
        desired.records.extend(records::unmanaged_tags(&unmanaged));
    }
    if ctx.change.action == Action::Replace
        && let Some(live) = ctx.observed.azure.identities.get(&desired.key())
    {
        ctx.azure.delete_identity(ctx.stack, live).await?;
    }
    let live = ctx.azure.put_identity(&desired).await?;
    Ok(Some(Outputs {
        client_id: Some(live.client_id.clone()),
        principal_id: Some(live.principal_id.clone()),
        issuer_url: None,
        id: Some(live.id.clone()),
    }))
}

/// The delete of an identity the stack owns and the config no longer names.
pub fn orphan(live: &Live) -> super::Orphan {
    super::Orphan {
        address: Address::Identity(live.name.clone()),
        kind: super::Kind::ManagedIdentity,
        reason: Some("its federated credentials and role assignments are deleted with it"),
        live_id: live.id.clone(),
        fields: vec![
            gone("name", json!(live.name)),
            gone("resource_group", json!(live.resource_group)),
            gone("location", json!(live.location)),
        ],
        live_hash: hash_of(Some(live)),
    }
}

/// The observed identity with ARM id `id`.
fn find_live<'a>(observed: &'a Observed, id: &str) -> Option<&'a Live> {
    observed.azure.identities.get(&arm_key(id))
}

pub async fn delete<A: AzureApi, C: ClusterApi>(ctx: &ApplyCtx<'_, A, C>) -> Result<(), Failure> {
    let live = find_live(ctx.observed, ctx.live_id()?)
        .ok_or_else(|| Failure::new("the identity was not observed"))?;
    ctx.azure.delete_identity(ctx.stack, live).await?;
    Ok(())
}

/// The live identity behind a change, as its marker and the hash of its managed fields now.
pub fn drift_live<'a>(observed: &'a Observed, id: &str) -> Option<(&'a Owner, String)> {
    find_live(observed, id).map(|i| (&i.owner, i.spec_hash()))
}

/// An identity (or application) in the config that is gone: the stack's service accounts that
/// point to it were applied with its client id.
pub fn deletion_evidence(
    evidence: &crate::engine::drift::Evidence<'_>,
    change: &crate::engine::plan::Change,
) -> Option<String> {
    evidence
        .dependents(&change.address, super::Kind::ServiceAccount)
        .find(|sa| sa.id.is_some() && evidence.owned(sa))
        .map(|sa| {
            format!(
                "{} exists with this stack's marker and was applied with its client id",
                sa.address
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_stack_and_the_records() {
        let desired = Desired {
            subscription_id: "s-1".into(),
            resource_group: "rg".into(),
            name: "api".into(),
            location: "westeurope".into(),
            tags: BTreeMap::from([("a".into(), "b".into())]),
            prune_unmanaged: false,
        };
        let records = BTreeMap::from([(records::CREDENTIALS_TAG.to_string(), String::new())]);
        let request = desired.request("s", records.clone());
        assert_eq!(request.label(), "rg/api");
        assert_eq!(request.stack, "s");
        assert_eq!(request.records, records);
        let mut scope = ObserveScope::default();
        observe_scope(&desired, &mut scope);
        assert!(scope.identity_keys.contains(&request.key()));
        assert!(scope.subscriptions.contains("s-1"));
    }
}
