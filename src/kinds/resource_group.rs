//! Resource groups: made only where the config declares them (`[resource_groups.NAME]`), never
//! pruned. ARM: `Microsoft.Resources/resourceGroups` (src/providers/azure/identities.rs).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{
    ApplyCtx, Failure, PlanCtx, field, hash_of, kept_tags, kept_tags_record, map_fields,
    update_if_differs,
};
use crate::engine::plan::{Action, After};
use crate::providers::azure::AzureApi;
use crate::providers::azure::identities::{DesiredResourceGroup, normalize_location};
use crate::providers::azure::observe::{Listing, ObserveScope};
use crate::providers::kube::ClusterApi;

pub use crate::providers::azure::identities::LiveResourceGroup as Live;

/// A resource group as the config asks for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub subscription_id: String,
    pub name: String,
    pub location: String,
    pub tags: BTreeMap<String, String>,
}

impl Desired {
    /// `[resource_groups.NAME]`.
    pub fn from_config(
        name: &str,
        group: &crate::config::model::ResourceGroup,
        defaults: super::ConfigDefaults<'_>,
    ) -> Self {
        Desired {
            subscription_id: defaults.subscription.to_string(),
            name: name.to_string(),
            location: defaults.location(group.location.as_ref()),
            tags: super::string_map(&group.tags),
        }
    }

    /// What the provider writes for `stack`.
    pub fn request(&self, stack: &str) -> DesiredResourceGroup {
        DesiredResourceGroup {
            stack: stack.to_string(),
            subscription_id: self.subscription_id.clone(),
            name: self.name.clone(),
            location: self.location.clone(),
            tags: self.tags.clone(),
            records: BTreeMap::new(),
        }
    }
}

/// What Azure must be read for it.
pub fn observe_scope(desired: &Desired, scope: &mut ObserveScope) {
    scope
        .subscriptions
        .insert(desired.subscription_id.to_ascii_lowercase());
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) {
    let request = desired.request(ctx.stack);
    if ctx.failed(&Listing::ResourceGroups(
        desired.subscription_id.to_ascii_lowercase(),
    )) {
        return;
    }
    let live = ctx.observed.azure.resource_groups.get(&request.key());
    // Tags set by hand before wiform adopted the group stay (what it leaves alone).
    let kept = live
        .map(|l| kept_tags(&l.tags, &desired.tags, !l.owner.is_stack(ctx.stack)))
        .unwrap_or_default();
    let mut tags = desired.tags.clone();
    tags.extend(kept.clone());
    let location = normalize_location(&desired.location);
    let mut fields = vec![
        field(
            "name",
            live.map(|l| json!(l.name)),
            After::Known(json!(desired.name)),
        ),
        field(
            "location",
            live.map(|l| json!(l.location)),
            After::Known(json!(location)),
        ),
    ];
    fields.extend(map_fields(
        "tags",
        live.map(|l| l.user_tags()).as_ref(),
        &tags,
    ));
    let hash = hash_of(live);
    let Some(live) = live else {
        ctx.decide(Action::Create, None, None, fields, hash);
        return;
    };
    if live.location != location {
        ctx.error(
            format!(
                "resource group {} is in {}, the config says {location}: a resource group cannot move",
                live.name, live.location
            ),
            Some("set the resource group's location to where it is".into()),
        );
        return;
    }
    let Some(owned) = ctx.ownership(
        &live.owner,
        || format!("resource group {}", live.name),
        Some("remove it from this config, or from the other stack first"),
    ) else {
        return;
    };
    let (action, reason) = if owned {
        (update_if_differs(&fields), None)
    } else {
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
    };
    ctx.decide(action, reason, Some(live.id.clone()), fields, hash);
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    desired: &Desired,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<(), Failure> {
    let mut request = desired.request(ctx.stack);
    if let Some(live) = ctx.observed.azure.resource_groups.get(&request.key()) {
        let kept = kept_tags(
            &live.tags,
            &desired.tags,
            ctx.change.action == Action::Adopt,
        );
        request.records = kept_tags_record(&kept);
        request.tags.extend(kept);
    }
    ctx.azure.put_resource_group(&request).await?;
    Ok(())
}

/// The live group behind a change, as its marker and the hash of its managed fields now.
pub fn drift_live<'a>(
    observed: &'a crate::engine::observe::Observed,
    id: &str,
) -> Option<(&'a crate::ownership::Owner, String)> {
    observed
        .azure
        .resource_groups
        .get(&id.to_ascii_lowercase())
        .map(|g| (&g.owner, g.spec_hash()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_keyed_like_arm_ids() {
        let desired = Desired {
            subscription_id: "S".into(),
            name: "rg".into(),
            location: "westeurope".into(),
            tags: BTreeMap::new(),
        };
        assert_eq!(
            desired.request("s").key(),
            "/subscriptions/s/resourcegroups/rg"
        );
    }
}
