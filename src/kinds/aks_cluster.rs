//! An AKS cluster's workload identity settings: wiform never creates or deletes a cluster; it
//! reads its OIDC issuer URL (an output its federated credentials need) and, with
//! `enable_workload_identity`, turns on the OIDC issuer and workload identity (a long-running
//! PUT of the whole cluster). ARM: `Microsoft.ContainerService/managedClusters`
//! (src/providers/azure/clusters.rs).

use serde::Serialize;
use serde_json::json;

use super::{ApplyCtx, Failure, Out, Outputs, PlanCtx, PlanOutputs, computed, field, hash_of};
use crate::engine::plan::{Action, After};
use crate::providers::azure::AzureApi;
use crate::providers::azure::observe::{Listing, ObserveScope};
use crate::providers::kube::ClusterApi;

pub use crate::providers::azure::clusters::LiveCluster as Live;

/// The fields of a planned cluster that hold its outputs: (client id, principal id, issuer).
pub const OUTPUT_FIELDS: (Option<&str>, Option<&str>, Option<&str>) =
    (None, None, Some("issuer_url"));

/// An AKS cluster as the config names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub enable_workload_identity: bool,
}

impl Desired {
    /// `[clusters.KEY]` of an AKS cluster (`resource_group` and `name`); `None` for any other
    /// cluster (its issuer is in the config).
    pub fn from_config(
        cluster: &crate::config::model::Cluster,
        defaults: super::ConfigDefaults<'_>,
    ) -> Option<Self> {
        let (Some(rg), Some(name)) = (&cluster.resource_group, &cluster.name) else {
            return None;
        };
        Some(Desired {
            subscription_id: cluster
                .subscription_id
                .as_ref()
                .map_or(defaults.subscription, |s| s.value.as_str())
                .to_string(),
            resource_group: rg.value.clone(),
            name: name.value.clone(),
            enable_workload_identity: cluster
                .enable_workload_identity
                .as_ref()
                .is_none_or(|e| e.value),
        })
    }

    /// The lower-case ARM id a live cluster is matched by.
    pub fn key(&self) -> String {
        format!(
            "/subscriptions/{}/resourcegroups/{}/providers/microsoft.containerservice/managedclusters/{}",
            self.subscription_id, self.resource_group, self.name
        )
        .to_ascii_lowercase()
    }
}

pub fn observe_scope(desired: &Desired, scope: &mut ObserveScope) {
    scope
        .cluster_subscriptions
        .insert(desired.subscription_id.to_ascii_lowercase());
    scope.cluster_keys.insert(desired.key());
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) -> PlanOutputs {
    let mut out = PlanOutputs::missing();
    let Desired {
        subscription_id: subscription,
        resource_group,
        name,
        enable_workload_identity: enable,
    } = desired;
    if ctx.failed(&Listing::Clusters(subscription.to_ascii_lowercase())) {
        return out;
    }
    let live = ctx
        .observed
        .azure
        .clusters
        .values()
        .find(|c| c.is(subscription, resource_group, name));
    let Some(live) = live else {
        ctx.error(
            format!(
                "AKS cluster {resource_group}/{name} does not exist in subscription {subscription}"
            ),
            Some(
                "wiform does not create clusters: check resource_group and name, or create the cluster first"
                    .into(),
            ),
        );
        return out;
    };
    let ready = live.workload_identity_ready();
    let hash = hash_of(Some(live));
    let issuer_before = live.issuer_url.as_deref();
    let issuer_field = || {
        computed(
            "issuer_url",
            issuer_before,
            issuer_before.map_or(After::Unknown, |i| After::Known(json!(i))),
        )
    };
    if *enable && !ready {
        let fields = vec![
            field(
                "oidc_issuer_enabled",
                Some(json!(live.oidc_issuer_enabled)),
                After::Known(json!(true)),
            ),
            field(
                "workload_identity_enabled",
                Some(json!(live.workload_identity_enabled)),
                After::Known(json!(true)),
            ),
            issuer_field(),
        ];
        out.issuer_url = issuer_before.map_or(Out::Unknown, |i| Out::Known(i.to_string()));
        ctx.decide(
            Action::Update,
            Some("enable_workload_identity = true: turn on the OIDC issuer and workload identity, a long-running update of the cluster".into()),
            Some(live.id.clone()),
            fields,
            hash,
        );
        return out;
    }
    let fields = vec![
        field(
            "oidc_issuer_enabled",
            Some(json!(live.oidc_issuer_enabled)),
            After::Known(json!(live.oidc_issuer_enabled)),
        ),
        field(
            "workload_identity_enabled",
            Some(json!(live.workload_identity_enabled)),
            After::Known(json!(live.workload_identity_enabled)),
        ),
        issuer_field(),
    ];
    match live.issuer_url.as_deref().filter(|_| live.oidc_issuer_enabled) {
        Some(issuer) => out.issuer_url = Out::Known(issuer.to_string()),
        None => ctx.error(
            format!(
                "AKS cluster {resource_group}/{name} has no OIDC issuer and enable_workload_identity = false"
            ),
            Some("set enable_workload_identity = true (or run `az aks update --enable-oidc-issuer --enable-workload-identity`)".into()),
        ),
    }
    let action = if *enable { Action::NoOp } else { Action::Read };
    ctx.decide(action, None, Some(live.id.clone()), fields, hash);
    out
}

/// Credentials need only the issuer URL: when the plan knows it (the issuer is on and only
/// workload identity is being turned on), they need not wait for the long-running update.
pub fn releases_dependents_early(change: &crate::engine::plan::Change) -> bool {
    Outputs::planned(change).issuer_url.is_some()
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<Option<Outputs>, Failure> {
    let live = ctx
        .observed
        .azure
        .clusters
        .values()
        .find(|c| Some(&c.id) == ctx.change.id.as_ref())
        .ok_or_else(|| Failure::new("the cluster was not observed"))?;
    let updated = ctx.azure.enable_workload_identity(live).await?;
    Ok(Some(Outputs {
        issuer_url: updated.issuer_url.clone(),
        ..Outputs::default()
    }))
}

/// The issuer URL of every AKS cluster in the plan, with its key: a live credential's issuer
/// is recorded as the config names it (`cluster:KEY`).
pub fn issuers(
    changes: &[crate::engine::plan::Change],
) -> std::collections::BTreeMap<String, String> {
    changes
        .iter()
        .filter_map(|c| {
            let crate::address::Address::Cluster(key) = &c.address else {
                return None;
            };
            let url = c
                .fields
                .iter()
                .find(|f| f.name == "issuer_url")?
                .before
                .as_ref()?
                .as_str()?
                .to_string();
            Some((url, key.clone()))
        })
        .collect()
}

/// Workload identity turned off on a cluster this stack federates with: it was on when those
/// credentials were applied.
pub fn change_evidence(
    evidence: &crate::engine::drift::Evidence<'_>,
    change: &crate::engine::plan::Change,
) -> (crate::engine::drift::Cause, Option<String>) {
    use crate::engine::drift::Cause;
    let federated = evidence
        .dependents(&change.address, super::Kind::FederatedCredential)
        .find(|fic| fic.id.is_some());
    match federated {
        Some(fic) => (
            Cause::ChangedOutsideWiform,
            Some(format!(
                "{} federates with this cluster, so its settings were applied",
                fic.address
            )),
        ),
        None => (Cause::NotYetApplied, None),
    }
}
