//! Kubernetes namespaces of the config's service accounts (`create_namespace`, on by default).
//! One that exists without wiform's marker is used and left alone, never adopted, so wiform
//! never deletes a namespace it did not create; one it made is deleted only when it holds
//! nothing wiform does not own (src/providers/kube/cluster.rs).

use serde::Serialize;
use serde_json::json;

use super::{ApplyCtx, Claim, Failure, Kind, Orphan, PlanCtx, field, gone, hash_of};
use crate::address::Address;
use crate::engine::plan::{Action, After};
use crate::providers::azure::AzureApi;
use crate::providers::kube::{ClusterApi, DesiredNamespace};

pub use crate::providers::kube::LiveNamespace as Live;

/// A namespace the config's service accounts need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub name: String,
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) {
    let name = &desired.name;
    let Some(observation) = ctx.cluster_observation() else {
        return;
    };
    let live = observation.namespace(name);
    let fields = vec![field(
        "name",
        live.map(|l| json!(l.name())),
        After::Known(json!(name)),
    )];
    let hash = hash_of(live);
    let Some(live) = live else {
        ctx.decide(Action::Create, None, None, fields, hash);
        return;
    };
    ctx.claim(Claim::Namespace(observation.cluster.clone(), name.clone()));
    let (action, reason) = if live.meta.owned_by(ctx.stack) {
        (Action::NoOp, None)
    } else {
        (
            Action::Read,
            Some("exists; wiform uses it and leaves it alone".to_string()),
        )
    };
    ctx.decide(action, reason, Some(name.clone()), fields, hash);
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    desired: &Desired,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<(), Failure> {
    let cluster = ctx.cluster_api(ctx.cluster)?;
    cluster
        .apply_namespace(
            &DesiredNamespace::new(ctx.stack, desired.name.clone()),
            true,
        )
        .await?;
    Ok(())
}

/// The delete of a namespace the stack made and the config no longer needs.
pub fn orphan(cluster: &str, live: &Live) -> Orphan {
    Orphan {
        address: Address::Namespace {
            cluster: cluster.to_string(),
            name: live.name().to_string(),
        },
        kind: Kind::Namespace,
        reason: Some("deleted only if it holds nothing wiform does not own"),
        live_id: live.name().to_string(),
        fields: vec![gone("name", json!(live.name()))],
        live_hash: hash_of(Some(live)),
    }
}

pub async fn delete<A: AzureApi, C: ClusterApi>(
    cluster: &str,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<(), Failure> {
    let id = ctx.live_id()?;
    let observation = ctx.cluster_observation(cluster)?;
    let api = ctx.cluster_api(Some(cluster))?;
    let live = observation
        .namespace(id)
        .ok_or_else(|| Failure::new("the namespace was not observed"))?;
    api.delete_namespace(ctx.stack, live).await?;
    Ok(())
}

/// The live namespace behind a change, as its marker and the hash of its managed fields now.
pub fn drift_live<'a>(
    cluster: &'a crate::providers::kube::ClusterObservation,
    name: &str,
) -> Option<(&'a crate::ownership::Owner, String)> {
    cluster
        .namespace(name)
        .map(|ns| (&ns.meta.owner, ns.live_spec_hash()))
}

/// A namespace in the config that is gone: a service account of the stack in it was deleted
/// with it.
pub fn deletion_evidence(
    evidence: &crate::engine::drift::Evidence<'_>,
    change: &crate::engine::plan::Change,
) -> Option<String> {
    use crate::engine::drift::Cause;
    evidence
        .dependents(&change.address, Kind::ServiceAccount)
        .find(|c| {
            c.action == Action::Create && evidence.missing(c).0 == Cause::DeletedOutsideWiform
        })
        .map(|sa| format!("{} was deleted with it", sa.address))
}
