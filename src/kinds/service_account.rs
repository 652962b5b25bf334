//! Kubernetes service accounts, annotated with their identity's client id (and tenant) for the
//! workload identity webhook, written with server-side apply so that only the fields wiform
//! manages are its own (src/providers/kube/cluster.rs).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use super::{
    ApplyCtx, Claim, Failure, Kind, Orphan, Out, Output, PlanCtx, field, gone, hash_of, map_fields,
    update_if_differs,
};
use crate::address::Address;
use crate::engine::plan::{Action, After};
use crate::ownership;
use crate::providers::azure::AzureApi;
use crate::providers::kube::{CLIENT_ID_ANNOTATION, ClusterApi, DesiredServiceAccount};

pub use crate::providers::kube::LiveServiceAccount as Live;

/// A service account as the config asks for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub namespace: String,
    pub name: String,
    pub tenant_id: String,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub token_expiration: Option<i64>,
}

impl Desired {
    /// A `[[service_accounts]]` entry.
    pub fn from_config(
        account: &crate::config::model::ServiceAccount,
        defaults: super::ConfigDefaults<'_>,
    ) -> Self {
        Desired {
            namespace: account.namespace.value.clone(),
            name: account.name.value.clone(),
            tenant_id: defaults.tenant.to_string(),
            annotations: super::string_map(&account.annotations),
            labels: super::string_map(&account.labels),
            token_expiration: account.token_expiration.as_ref().map(|t| t.value),
        }
    }

    /// What the provider applies for `stack`, annotated with `client_id`.
    pub fn request(&self, stack: &str, client_id: &str) -> DesiredServiceAccount {
        DesiredServiceAccount {
            stack: stack.to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            client_id: client_id.to_string(),
            tenant_id: self.tenant_id.clone(),
            token_expiration: self.token_expiration,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
        }
    }
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) {
    let Some(observation) = ctx.cluster_observation() else {
        return;
    };
    let Some(identity) = ctx.input(Output::ClientId) else {
        return;
    };
    let client_id = identity.client_id.clone();
    if client_id == Out::Missing {
        return;
    }
    // The desired account with a placeholder client id, shown as (known after apply).
    let placeholder = client_id.known().unwrap_or("");
    let desired = desired.request(ctx.stack, placeholder);
    let live: Option<&Live> = observation.service_account(&desired.namespace, &desired.name);
    let manifest = desired.manifest();
    let without_markers = |map: Option<BTreeMap<String, String>>| -> BTreeMap<String, String> {
        map.unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !ownership::is_marker_key(k))
            .collect()
    };
    let annotations = without_markers(manifest.metadata.annotations);
    let labels = without_markers(manifest.metadata.labels);
    // Before: what wiform's field manager owns (or, for an account it does not own yet, the
    // keys it is about to set).
    let owned_before = |map: &BTreeMap<String, String>,
                        keys: &BTreeSet<String>,
                        wanted: &BTreeMap<String, String>| {
        map.iter()
            .filter(|(k, _)| {
                (keys.contains(*k) || wanted.contains_key(*k)) && !ownership::is_marker_key(k)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let before_annotations = live.map(|l| {
        owned_before(
            &l.meta.annotations,
            &l.meta.wiform_fields.annotations,
            &annotations,
        )
    });
    let before_labels =
        live.map(|l| owned_before(&l.meta.labels, &l.meta.wiform_fields.labels, &labels));
    let mut fields = vec![
        field(
            "namespace",
            live.map(|l| json!(l.namespace)),
            After::Known(json!(desired.namespace)),
        ),
        field(
            "name",
            live.map(|l| json!(l.name())),
            After::Known(json!(desired.name)),
        ),
    ];
    let mut annotation_fields =
        map_fields("annotations", before_annotations.as_ref(), &annotations);
    if client_id == Out::Unknown {
        let name = format!("annotations[{CLIENT_ID_ANNOTATION:?}]");
        for f in &mut annotation_fields {
            if f.name == name {
                f.after = After::Unknown;
            }
        }
    }
    fields.extend(annotation_fields);
    fields.extend(map_fields("labels", before_labels.as_ref(), &labels));
    let hash = hash_of(live);
    let Some(live) = live else {
        ctx.decide(Action::Create, None, None, fields, hash);
        return;
    };
    ctx.claim(Claim::ServiceAccount(
        observation.cluster.clone(),
        live.namespace.clone(),
        live.name().to_string(),
    ));
    let live_id = Some(format!("{}/{}", live.namespace, live.name()));
    let Some(owned) = ctx.ownership(
        &live.meta.owner,
        || format!("service account {}/{}", live.namespace, live.name()),
        Some("bind another service account, or remove it from the other stack first"),
    ) else {
        return;
    };
    let (action, reason) = if owned {
        (update_if_differs(&fields), None)
    } else {
        // Adoption takes over the fields above; the others stay their field managers'.
        let others: Vec<String> = live
            .meta
            .annotations
            .keys()
            .filter(|k| !annotations.contains_key(*k) && !ownership::is_marker_key(k))
            .map(|k| format!("annotations[{k:?}]"))
            .chain(
                live.meta
                    .labels
                    .keys()
                    .filter(|k| !labels.contains_key(*k) && !ownership::is_marker_key(k))
                    .map(|k| format!("labels[{k:?}]")),
            )
            .collect();
        (
            Action::Adopt,
            (!others.is_empty()).then(|| {
                format!(
                    "leaves alone what it does not set: {} (their field managers keep them)",
                    others.join(", ")
                )
            }),
        )
    };
    ctx.decide(action, reason, live_id, fields, hash);
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    desired: &Desired,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<(), Failure> {
    let cluster = ctx.cluster_api(ctx.cluster)?;
    let client_id = ctx
        .input(Output::ClientId)
        .and_then(|o| o.client_id.clone())
        .ok_or_else(|| Failure::new("its identity's client id is not known"))?;
    // The plan showed every field wiform sets, including those another field manager took (an
    // annotation edited by hand): applying it takes them back.
    cluster
        .apply_service_account(&desired.request(ctx.stack, &client_id), true)
        .await?;
    Ok(())
}

/// The delete of a service account the stack made and the config no longer names.
pub fn orphan(cluster: &str, live: &Live) -> Orphan {
    Orphan {
        address: Address::ServiceAccount {
            cluster: cluster.to_string(),
            namespace: live.namespace.clone(),
            name: live.name().to_string(),
        },
        kind: Kind::ServiceAccount,
        reason: None,
        live_id: format!("{}/{}", live.namespace, live.name()),
        fields: vec![
            gone("namespace", json!(live.namespace)),
            gone("name", json!(live.name())),
        ],
        live_hash: hash_of(Some(live)),
    }
}

pub async fn delete<A: AzureApi, C: ClusterApi>(
    cluster: &str,
    namespace: &str,
    name: &str,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<(), Failure> {
    let observation = ctx.cluster_observation(cluster)?;
    let api = ctx.cluster_api(Some(cluster))?;
    let live = observation
        .service_account(namespace, name)
        .ok_or_else(|| Failure::new("the service account was not observed"))?;
    api.delete_service_account(ctx.stack, live).await?;
    Ok(())
}

/// The live account behind a change (`id` is `namespace/name`), as its marker and the hash of
/// its managed fields now.
pub fn drift_live<'a>(
    cluster: &'a crate::providers::kube::ClusterObservation,
    id: &str,
) -> Option<(&'a crate::ownership::Owner, String)> {
    let (namespace, name) = id.split_once('/')?;
    cluster
        .service_account(namespace, name)
        .map(|sa| (&sa.meta.owner, sa.live_spec_hash()))
}

/// A service account in the config that is gone: its federated credential exists, so both were
/// applied.
pub fn deletion_evidence(
    evidence: &crate::engine::drift::Evidence<'_>,
    change: &crate::engine::plan::Change,
) -> Option<String> {
    evidence
        .credential_for(change)
        .filter(|fic| fic.id.is_some())
        .map(|fic| {
            format!(
                "{} (its federated credential) exists, so it was applied",
                fic.address
            )
        })
}

/// A service account of an identity deleted outside wiform: the identity made again gets a new
/// client id, so the annotation changes because of that deletion. `None`: its own marker says.
pub fn change_evidence(
    evidence: &crate::engine::drift::Evidence<'_>,
    change: &crate::engine::plan::Change,
) -> Option<(crate::engine::drift::Cause, Option<String>)> {
    use crate::engine::drift::Cause;
    let identity = change
        .depends_on
        .iter()
        .find(|d| matches!(d, Address::Identity(_)))?;
    let parent = evidence.change(identity)?;
    (parent.action == Action::Create && evidence.missing(parent).0 == Cause::DeletedOutsideWiform)
        .then(|| {
            (
                Cause::ChangedOutsideWiform,
                Some(format!(
                    "{identity} was deleted outside wiform: made again, it gets a new client id"
                )),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_annotated_with_the_client_id() {
        let desired = Desired {
            namespace: "orders".into(),
            name: "api".into(),
            tenant_id: "t".into(),
            annotations: BTreeMap::new(),
            labels: BTreeMap::new(),
            token_expiration: None,
        };
        let sa = desired.request("s", "c");
        assert_eq!(
            (
                sa.namespace.as_str(),
                sa.name.as_str(),
                sa.client_id.as_str(),
                sa.stack.as_str()
            ),
            ("orders", "api", "c", "s")
        );
    }
}
