//! Desired (the graph) against observed (Azure and every cluster) → a [`Plan`]. Pure: no IO.
//!
//! Resources are planned in dependency order so that outputs flow: an identity that exists
//! gives its client and principal ids to its service accounts and role assignments; one that
//! does not yet gives `(known after apply)`. Each kind decides its own change
//! ([`crate::kinds`]); this module walks the graph, collects the decisions, and prunes.
//!
//! Ownership (product design, "Ownership without a state file"): objects carrying this stack's
//! marker are wiform's; objects without a marker that match the config are adopted; objects of
//! another stack are errors. What the stack owns and the config no longer names is deleted, and
//! so are extra federated credentials and role assignments on an identity the stack owns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::graph::NodeIndex;

use super::plan::{Change, FORMAT_VERSION, Plan, PlanError};
use super::records;
use crate::address::Address;
use crate::error::Explain;
use crate::graph::Graph;
use crate::kinds::{
    self, Claim, Kind, Orphan, PlanCtx, PlanOutputs, application, federated_credential, hash_of,
    managed_identity, namespace, role_assignment, service_account,
};
use crate::ownership::{self, Owner};
use crate::providers::azure::observe::Listing;

pub use super::observe::{ClusterFailure, Observed};

/// What to plan.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub stack: &'a str,
    pub config_file: &'a str,
    pub graph: &'a Graph,
    /// Plan only these nodes and what they depend on (`--target`); empty: everything.
    pub targets: &'a [NodeIndex],
}

/// Live objects matched by the config (the rest, when owned, is pruned).
#[derive(Default)]
struct Claimed(BTreeSet<Claim>);

impl Claimed {
    fn has(&self, claim: Claim) -> bool {
        self.0.contains(&claim)
    }
}

struct Planner<'a> {
    input: Input<'a>,
    observed: &'a Observed,
    failed: BTreeSet<Listing>,
    changes: Vec<Change>,
    deletes: Vec<Change>,
    errors: Vec<PlanError>,
    outputs: HashMap<NodeIndex, PlanOutputs>,
    claimed: Claimed,
    /// (address, hash of the live object or "absent") of every planned resource.
    seen: Vec<(String, String)>,
}

/// Computes the plan.
pub fn plan(input: Input<'_>, observed: &Observed) -> Plan {
    let mut failed = BTreeSet::new();
    let mut errors = Vec::new();
    for e in &observed.azure.errors {
        failed.insert(e.listing.clone());
        errors.push(PlanError {
            address: None,
            message: format!("could not read {}: {}", e.what, e.error.message()),
            hint: e.error.hint(),
        });
    }
    for (cluster, result) in &observed.clusters {
        if let Err(failure) = result {
            errors.push(PlanError {
                address: Some(Address::Cluster(cluster.clone())),
                message: format!(
                    "could not read Kubernetes cluster `{cluster}`: {}; its namespaces and service accounts are not planned",
                    failure.message
                ),
                hint: failure.hint.clone(),
            });
        }
    }
    let mut planner = Planner {
        input,
        observed,
        failed,
        changes: Vec::new(),
        deletes: Vec::new(),
        errors,
        outputs: HashMap::new(),
        claimed: Claimed::default(),
        seen: Vec::new(),
    };
    let selected = selection(input.graph, input.targets);
    for id in input.graph.topological_order() {
        if selected.as_ref().is_some_and(|s| !s.contains(&id)) {
            continue;
        }
        planner.node(id);
    }
    if input.targets.is_empty() {
        planner.prune();
    }
    let Planner {
        mut changes,
        deletes,
        errors,
        mut seen,
        ..
    } = planner;
    changes.extend(deletes);
    seen.sort();
    Plan {
        format_version: FORMAT_VERSION,
        stack: input.stack.to_string(),
        config_file: input.config_file.to_string(),
        changes,
        errors,
        targets: input
            .targets
            .iter()
            .map(|id| input.graph.node(*id).address.clone())
            .collect(),
        fingerprint: ownership::spec_hash(&seen),
    }
}

/// The targets and everything they depend on; `None` when there are no targets.
fn selection(graph: &Graph, targets: &[NodeIndex]) -> Option<BTreeSet<NodeIndex>> {
    if targets.is_empty() {
        return None;
    }
    let mut selected = BTreeSet::new();
    let mut stack: Vec<NodeIndex> = targets.to_vec();
    while let Some(id) = stack.pop() {
        if selected.insert(id) {
            stack.extend(graph.dependencies(id));
        }
    }
    Some(selected)
}

impl Planner<'_> {
    fn graph(&self) -> &Graph {
        self.input.graph
    }

    fn stack(&self) -> &str {
        self.input.stack
    }

    /// Plans one node: its kind decides, the planner records the decision, the errors and what
    /// the node matched, and keeps its outputs for its dependents.
    fn node(&mut self, id: NodeIndex) {
        let graph = self.input.graph;
        let node = graph.node(id);
        let inputs = graph
            .edges()
            .filter(|(_, to, _)| *to == id)
            .filter_map(|(from, _, what)| self.outputs.get(&from).map(|o| (what, o)))
            .collect();
        let records = if node.resource.kind().keeps_records() {
            records::identity_records(graph, id)
        } else {
            BTreeMap::new()
        };
        let mut ctx = PlanCtx {
            stack: self.input.stack,
            observed: self.observed,
            failed: &self.failed,
            cluster: node.cluster.as_deref(),
            inputs,
            records,
            decision: None,
            errors: Vec::new(),
            claims: Vec::new(),
        };
        let outputs = node.resource.plan(&mut ctx);
        let PlanCtx {
            decision,
            errors,
            claims,
            ..
        } = ctx;
        for (message, hint) in errors {
            self.errors.push(PlanError {
                address: Some(node.address.clone()),
                message,
                hint,
            });
        }
        self.claimed.0.extend(claims);
        if let Some(decision) = decision {
            self.seen
                .push((node.address.to_string(), decision.live_hash));
            self.changes.push(Change {
                address: node.address.clone(),
                resource_type: node.resource.kind(),
                action: decision.action,
                reason: decision.reason,
                id: decision.live_id,
                fields: decision.fields,
                not_in_config: false,
                depends_on: graph
                    .dependencies(id)
                    .into_iter()
                    .map(|d| graph.node(d).address.clone())
                    .collect(),
            });
        }
        self.outputs.insert(id, outputs);
    }

    // -----------------------------------------------------------------------------------------
    // What the stack owns and the config no longer names

    fn delete(&mut self, orphan: Orphan) {
        self.seen
            .push((orphan.address.to_string(), orphan.live_hash.clone()));
        self.deletes.push(orphan.into_change());
    }

    /// An object on an identity that was there when wiform adopted it: shown, never deleted.
    fn keep_unmanaged(&mut self, orphan: Orphan) {
        self.seen
            .push((orphan.address.to_string(), orphan.live_hash.clone()));
        self.changes.push(orphan.into_unmanaged());
    }

    /// Does the config name this namespace, or a service account in it (`create_namespace =
    /// false` makes no namespace node)?
    fn config_uses_namespace(&self, cluster: &str, name: &str) -> bool {
        self.graph().node_ids().any(|id| {
            let node = self.graph().node(id);
            node.cluster.as_deref() == Some(cluster) && node.resource.kube_namespace() == Some(name)
        })
    }

    /// The identity key (in the config) of each identity of `kind` that exists, by its live key.
    fn kept(&self, kind: Kind) -> BTreeMap<String, String> {
        self.outputs
            .iter()
            .filter(|(id, _)| self.graph().node(**id).resource.kind() == kind)
            .filter_map(|(id, o)| {
                let key = match &self.graph().node(*id).address {
                    Address::Identity(key) => key.clone(),
                    other => other.to_string(),
                };
                Some((o.live_key.clone()?, key))
            })
            .collect()
    }

    /// Deletes, dependents first: service accounts, namespaces, then role assignments of the
    /// stack's principals, credentials, identities and applications.
    fn prune(&mut self) {
        let stack = self.stack().to_string();
        let observed = self.observed;
        let clusters: Vec<(&String, &kinds::service_account::Live)> = observed
            .clusters
            .iter()
            .filter_map(|(k, v)| v.as_ref().ok().map(|o| (k, o)))
            .flat_map(|(k, o)| o.owned_service_accounts().map(move |sa| (k, sa)))
            .collect();
        for (cluster, sa) in clusters {
            let orphan = service_account::orphan(cluster, sa);
            // Named by the config but not planned (its identity could not be): not an extra.
            if self.claimed.has(Claim::ServiceAccount(
                cluster.clone(),
                sa.namespace.clone(),
                sa.name().to_string(),
            )) || self.graph().find(&orphan.address).is_some()
            {
                continue;
            }
            self.delete(orphan);
        }
        for (cluster, observation) in observed
            .clusters
            .iter()
            .filter_map(|(k, v)| v.as_ref().ok().map(|o| (k, o)))
        {
            for ns in observation.owned_namespaces() {
                // A namespace already terminating is on its way out (Kubernetes finishes a
                // namespace delete in the background).
                if ns.meta.terminating
                    || self
                        .claimed
                        .has(Claim::Namespace(cluster.clone(), ns.name().to_string()))
                    || self.config_uses_namespace(cluster, ns.name())
                {
                    continue;
                }
                self.delete(namespace::orphan(cluster, ns));
            }
        }

        // Role assignments of the stack's principals, then credentials, then identities.
        let azure = &observed.azure;
        let kept_identities = self.kept(Kind::ManagedIdentity);
        let kept_apps = self.kept(Kind::Application);
        // Principals whose extras are pruned: identities in config (owned or adopted), and
        // owned identities that are not.
        let mut principals: BTreeMap<String, String> = BTreeMap::new();
        // What was on a kept identity when wiform adopted it stays, unless it opted in: by its
        // principal and by its live key.
        let mut unmanaged_by_principal: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let unmanaged_by_key: BTreeMap<String, BTreeSet<String>> = self
            .outputs
            .values()
            .filter(|o| !o.prune_unmanaged && !o.unmanaged.is_empty())
            .filter_map(|o| Some((o.live_key.clone()?, o.unmanaged.clone())))
            .collect();
        let mut doomed_identities = Vec::new();
        for identity in azure.identities.values() {
            let key = identity.key();
            if let Some(name) = kept_identities.get(&key) {
                principals.insert(identity.principal_id.clone(), name.clone());
                if let Some(unmanaged) = unmanaged_by_key.get(&key) {
                    unmanaged_by_principal.insert(identity.principal_id.clone(), unmanaged.clone());
                }
            } else if identity.owner.is_stack(&stack) && !self.claimed.has(Claim::Identity(key)) {
                principals.insert(identity.principal_id.clone(), identity.name.clone());
                doomed_identities.push(identity);
            }
        }
        let mut doomed_apps = Vec::new();
        for app in &azure.applications {
            if let Some(name) = kept_apps.get(&app.object_id) {
                if let Some(p) = &app.service_principal_id {
                    principals.insert(p.clone(), name.clone());
                    if let Some(unmanaged) = unmanaged_by_key.get(&app.object_id) {
                        unmanaged_by_principal.insert(p.clone(), unmanaged.clone());
                    }
                }
            } else if app.owner.is_stack(&stack)
                && !self.claimed.has(Claim::Application(app.object_id.clone()))
            {
                if let Some(p) = &app.service_principal_id {
                    principals.insert(p.clone(), app.display_name.clone());
                }
                doomed_apps.push(app);
            }
        }
        for a in &azure.role_assignments {
            let Some(identity) = principals.get(&a.principal_id) else {
                continue;
            };
            if self
                .claimed
                .has(Claim::Assignment(a.id.to_ascii_lowercase()))
                || self.claimed.has(Claim::UnresolvedGrant(
                    a.principal_id.clone(),
                    a.scope.clone(),
                ))
                || (!a.owner.is_stack(&stack) && a.owner != Owner::Unowned)
            {
                continue;
            }
            let orphan = role_assignment::orphan(identity, a);
            if unmanaged_by_principal
                .get(&a.principal_id)
                .is_some_and(|u| u.contains(&records::unmanaged_entry(&a.id)))
            {
                self.keep_unmanaged(orphan);
            } else {
                self.delete(orphan);
            }
        }
        let of_identities = azure
            .identity_credentials
            .iter()
            .filter_map(|(key, credentials)| {
                let identity = kept_identities.get(key).cloned().or_else(|| {
                    doomed_identities
                        .iter()
                        .find(|i| &i.key() == key)
                        .map(|i| i.name.clone())
                })?;
                Some(credentials.iter().map(move |c| (identity.clone(), key, c)))
            });
        let of_applications =
            azure
                .application_credentials
                .iter()
                .filter_map(|(object_id, credentials)| {
                    let identity = kept_apps.get(object_id)?.clone();
                    Some(
                        credentials
                            .iter()
                            .map(move |c| (identity.clone(), object_id, c)),
                    )
                });
        let (by_aks, credentials): (Vec<_>, Vec<_>) = of_identities
            .flatten()
            .chain(of_applications.flatten())
            .filter(|(_, _, c)| {
                !self
                    .claimed
                    .has(Claim::Credential(c.id.to_ascii_lowercase()))
            })
            .partition(|(_, _, c)| federated_credential::made_by_aks(c));
        for (identity, parent, c) in credentials {
            let orphan = federated_credential::orphan(&identity, c);
            if unmanaged_by_key
                .get(parent)
                .is_some_and(|u| u.contains(&records::unmanaged_entry(&c.id)))
            {
                self.keep_unmanaged(orphan);
            } else {
                self.delete(orphan);
            }
        }
        // What AKS made for its identity bindings is AKS's: shown, never deleted, and counted
        // toward the identity's limit.
        for (identity, _, credential) in by_aks {
            let address = Address::Identity(identity.clone());
            if self.graph().find(&address).is_none() {
                continue;
            }
            let in_config = self
                .graph()
                .node_ids()
                .filter(|&id| {
                    self.graph().node(id).resource.kind() == Kind::FederatedCredential
                        && self
                            .graph()
                            .dependencies(id)
                            .iter()
                            .any(|d| self.graph().node(*d).address == address)
                })
                .count();
            if in_config + 1 > federated_credential::LIMIT {
                self.errors.push(PlanError {
                    address: Some(address.clone()),
                    message: format!(
                        "{address} would have {} federated credentials: {in_config} in the config and `{}`, which AKS made for its identity bindings; Azure allows {}",
                        in_config + 1,
                        credential.name,
                        federated_credential::LIMIT
                    ),
                    hint: Some("remove credentials from the config, or move service accounts of one cluster to an identity binding".into()),
                });
            }
            let change = federated_credential::made_by_aks_change(&identity, credential);
            self.seen
                .push((change.address.to_string(), hash_of(Some(credential))));
            self.changes.push(change);
        }
        for identity in doomed_identities {
            self.delete(managed_identity::orphan(identity));
        }
        for app in doomed_apps {
            self.delete(application::orphan(app));
        }
    }
}

#[cfg(test)]
mod tests;
