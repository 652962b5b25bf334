//! Carrying out a plan: every change whose dependencies are done starts at once (the client
//! bounds the requests in flight); outputs (client id, principal id, issuer, object id) flow to
//! dependents as they arrive; a failed change skips its dependents and nothing else. Deletes of
//! what the config no longer names come last, dependents first.
//!
//! What a change needs that the plan already knew (ids of objects that exist) is read from the
//! plan's computed fields; what it did not (objects created now) from the results.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};

use futures::future::join_all;
use petgraph::graph::NodeIndex;
use serde_json::Value;

use super::diff::{ClusterFailure, Observed};
use super::plan::{Action, After, Change, Plan};
use super::records;
use crate::config::federation::IssuerSource;
use crate::config::model::IdentityKind;
use crate::graph::{Graph, Output, Resource, WalkDirection};
use crate::providers::azure::AzureProvider;
use crate::providers::azure::applications::{
    DesiredApplication, DesiredApplicationCredential, LiveApplication,
};
use crate::providers::azure::identities::{
    DesiredIdentity, DesiredIdentityCredential, DesiredResourceGroup,
};
use crate::providers::azure::roles::DesiredRoleAssignment;
use crate::providers::kube::{ClusterApi, DesiredNamespace, DesiredServiceAccount};

/// What one change came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied,
    /// Nothing to do (in sync).
    Unchanged,
    Failed {
        message: String,
        hint: Option<String>,
    },
    /// A dependency failed.
    Skipped {
        because: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// (address, outcome), in the order changes finished.
    pub outcomes: Vec<(String, Outcome)>,
    /// A stop was requested: changes not started are not in `outcomes`.
    pub interrupted: bool,
}

/// What apply is doing, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Started {
        address: String,
        action: Action,
    },
    Finished {
        address: String,
        action: Action,
        outcome: Outcome,
        elapsed: Duration,
    },
}

pub type ProgressSink = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to apply.
#[derive(Clone, Default)]
pub struct Options {
    /// Set to stop starting changes (Ctrl-C); running ones finish.
    pub stop: Option<Arc<AtomicBool>>,
    pub progress: Option<ProgressSink>,
}

impl Report {
    pub fn failed(&self) -> impl Iterator<Item = (&str, &Outcome)> {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed { .. } | Outcome::Skipped { .. }))
            .map(|(a, o)| (a.as_str(), o))
    }

    pub fn is_success(&self) -> bool {
        !self.interrupted && self.failed().next().is_none()
    }
}

/// Outputs of a node, as they become known.
#[derive(Debug, Clone, Default)]
struct Outputs {
    client_id: Option<String>,
    principal_id: Option<String>,
    issuer_url: Option<String>,
    /// Managed identity: its ARM id. Application: its object id.
    id: Option<String>,
}

fn known(change: &Change, field: &str) -> Option<String> {
    change
        .fields
        .iter()
        .find(|f| f.name == field)
        .and_then(|f| match &f.after {
            After::Known(Value::String(s)) => Some(s.clone()),
            _ => None,
        })
}

/// The outputs a change already knows (objects that exist).
fn planned_outputs(change: &Change) -> Outputs {
    Outputs {
        client_id: known(change, "client_id").or_else(|| known(change, "app_id")),
        principal_id: known(change, "principal_id")
            .or_else(|| known(change, "service_principal_id")),
        issuer_url: known(change, "issuer_url"),
        id: change.id.clone(),
    }
}

struct Failure {
    message: String,
    hint: Option<String>,
}

/// From either provider's error (`?` on an Azure or Kubernetes call).
impl<E: crate::error::Explain> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.message(),
            hint: e.hint(),
        }
    }
}

fn failure(message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        hint: None,
    }
}

struct Executor<'a, C> {
    options: Options,
    plan: &'a Plan,
    graph: &'a Graph,
    observed: &'a Observed,
    azure: &'a AzureProvider,
    clusters: &'a BTreeMap<String, Result<C, ClusterFailure>>,
    stack: &'a str,
}

/// Applies `plan` (made from `graph` and `observed`).
pub async fn apply<C: ClusterApi + Sync>(
    plan: &Plan,
    graph: &Graph,
    observed: &Observed,
    azure: &AzureProvider,
    clusters: &BTreeMap<String, Result<C, ClusterFailure>>,
    stack: &str,
) -> Report {
    apply_with(
        plan,
        graph,
        observed,
        azure,
        clusters,
        stack,
        Options::default(),
    )
    .await
}

/// [`apply`] with a stop switch and a progress sink.
pub async fn apply_with<C: ClusterApi + Sync>(
    plan: &Plan,
    graph: &Graph,
    observed: &Observed,
    azure: &AzureProvider,
    clusters: &BTreeMap<String, Result<C, ClusterFailure>>,
    stack: &str,
    options: Options,
) -> Report {
    let executor = Executor {
        options,
        plan,
        graph,
        observed,
        azure,
        clusters,
        stack,
    };
    executor.run().await
}

impl<C: ClusterApi + Sync> Executor<'_, C> {
    fn stopped(&self) -> bool {
        self.options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
    }

    fn event(&self, event: Progress) {
        if let Some(sink) = &self.options.progress {
            sink(&event);
        }
    }

    async fn run(&self) -> Report {
        let mut report = Report::default();
        let changes: HashMap<String, &Change> = self
            .plan
            .changes
            .iter()
            .filter(|c| !c.not_in_config)
            .map(|c| (c.address.clone(), c))
            .collect();
        let by_node: HashMap<NodeIndex, &Change> = self
            .graph
            .node_ids()
            .filter_map(|id| {
                changes
                    .get(&self.graph.node(id).address.to_string())
                    .map(|c| (id, *c))
            })
            .collect();
        let mut outputs: HashMap<NodeIndex, Outputs> = by_node
            .iter()
            .map(|(id, c)| (*id, planned_outputs(c)))
            .collect();
        let mut walk = self
            .graph
            .walk_subset(WalkDirection::Forward, |id| by_node.contains_key(&id));
        // Every change starts as soon as what it needs is done (the client bounds the
        // requests in flight); a stop request lets running changes finish and starts no more.
        let mut running = FuturesUnordered::new();
        loop {
            if !self.stopped() {
                for id in walk.ready() {
                    let change = by_node[&id];
                    let inputs = self.inputs(id, &outputs);
                    // Credentials need only a cluster's issuer URL: when the plan knows it
                    // (the issuer is on and only workload identity is being turned on, a
                    // long-running update), they need not wait for the update to end.
                    if matches!(self.graph.node(id).resource, Resource::Cluster { .. })
                        && planned_outputs(change).issuer_url.is_some()
                    {
                        walk.complete(id);
                    }
                    if change.action.is_change() {
                        self.event(Progress::Started {
                            address: change.address.clone(),
                            action: change.action,
                        });
                    }
                    running.push(async move {
                        let started = Instant::now();
                        let result = self.change(id, change, inputs).await;
                        (id, result, started.elapsed())
                    });
                }
            }
            let Some((id, result, elapsed)) = running.next().await else {
                break;
            };
            let change = by_node[&id];
            let address = change.address.clone();
            let outcome = match result {
                Ok((outcome, out)) => {
                    if let Some(out) = out {
                        merge(outputs.entry(id).or_default(), out);
                    }
                    walk.complete(id);
                    outcome
                }
                Err(f) => {
                    for skipped in walk.fail(id) {
                        report.outcomes.push((
                            self.graph.node(skipped).address.to_string(),
                            Outcome::Skipped {
                                because: address.clone(),
                            },
                        ));
                    }
                    Outcome::Failed {
                        message: f.message,
                        hint: f.hint,
                    }
                }
            };
            if change.action.is_change() {
                self.event(Progress::Finished {
                    address: address.clone(),
                    action: change.action,
                    outcome: outcome.clone(),
                    elapsed,
                });
            }
            report.outcomes.push((address, outcome));
        }
        if self.stopped() {
            report.interrupted = true;
            return report;
        }
        // Deletes: the plan lists them dependents first, grouped by kind (service accounts,
        // namespaces, role assignments, credentials, identities); each group at once.
        let deletes: Vec<&Change> = self
            .plan
            .changes
            .iter()
            .filter(|c| c.not_in_config)
            .collect();
        for group in deletes.chunk_by(|a, b| a.resource_type == b.resource_type) {
            if self.stopped() {
                report.interrupted = true;
                break;
            }
            let runs = group.iter().map(|change| async move {
                self.event(Progress::Started {
                    address: change.address.clone(),
                    action: change.action,
                });
                let started = Instant::now();
                let outcome = match self.delete(change).await {
                    Ok(()) => Outcome::Applied,
                    Err(f) => Outcome::Failed {
                        message: f.message,
                        hint: f.hint,
                    },
                };
                self.event(Progress::Finished {
                    address: change.address.clone(),
                    action: change.action,
                    outcome: outcome.clone(),
                    elapsed: started.elapsed(),
                });
                (change.address.clone(), outcome)
            });
            report.outcomes.extend(join_all(runs).await);
        }
        report
    }

    /// The outputs of `id`'s dependencies, by what they provide.
    fn inputs(
        &self,
        id: NodeIndex,
        outputs: &HashMap<NodeIndex, Outputs>,
    ) -> HashMap<Output, Outputs> {
        self.graph
            .edges()
            .filter(|(_, to, _)| *to == id)
            .map(|(from, _, what)| (what, outputs.get(&from).cloned().unwrap_or_default()))
            .collect()
    }

    async fn change(
        &self,
        id: NodeIndex,
        change: &Change,
        inputs: HashMap<Output, Outputs>,
    ) -> Result<(Outcome, Option<Outputs>), Failure> {
        if !change.action.is_change() {
            return Ok((Outcome::Unchanged, None));
        }
        let node = self.graph.node(id);
        let stack = self.stack;
        let azure = self.azure;
        match &node.resource {
            resource @ Resource::ResourceGroup { .. } => {
                let desired = DesiredResourceGroup::from_resource(stack, resource)
                    .ok_or_else(|| failure("not a resource group"))?;
                azure.put_resource_group(&desired).await?;
                Ok((Outcome::Applied, None))
            }
            Resource::Cluster { .. } => {
                let live = self
                    .observed
                    .azure
                    .clusters
                    .values()
                    .find(|c| Some(&c.id) == change.id.as_ref())
                    .ok_or_else(|| failure("the cluster was not observed"))?;
                let updated = azure.enable_workload_identity(live).await?;
                Ok((
                    Outcome::Applied,
                    Some(Outputs {
                        issuer_url: updated.issuer_url.clone(),
                        ..Outputs::default()
                    }),
                ))
            }
            resource @ Resource::ManagedIdentity { .. } => {
                let desired = DesiredIdentity::from_resource(stack, resource)
                    .ok_or_else(|| failure("not a managed identity"))?
                    .with_records(records::identity_records(self.graph, id));
                if change.action == Action::Replace
                    && let Some(live) = self.observed.azure.identities.get(&desired.key())
                {
                    azure.delete_identity(stack, live).await?;
                }
                let live = azure.put_identity(&desired).await?;
                Ok((
                    Outcome::Applied,
                    Some(Outputs {
                        client_id: Some(live.client_id.clone()),
                        principal_id: Some(live.principal_id.clone()),
                        issuer_url: None,
                        id: Some(live.id.clone()),
                    }),
                ))
            }
            Resource::Application { display_name } => {
                let key = match &node.address {
                    crate::address::Address::Identity(k) => k.clone(),
                    other => other.to_string(),
                };
                let desired = DesiredApplication {
                    stack: stack.to_string(),
                    key,
                    display_name: display_name.clone(),
                    records: records::identity_records(self.graph, id),
                };
                let current: Option<&LiveApplication> = change.id.as_ref().and_then(|id| {
                    self.observed
                        .azure
                        .applications
                        .iter()
                        .find(|a| &a.object_id == id)
                });
                let live = azure.put_application(&desired, current).await?;
                Ok((
                    Outcome::Applied,
                    Some(Outputs {
                        client_id: Some(live.app_id.clone()),
                        principal_id: live.service_principal_id.clone(),
                        issuer_url: None,
                        id: Some(live.object_id.clone()),
                    }),
                ))
            }
            Resource::FederatedCredential {
                identity_kind,
                name,
                issuer,
                subject,
                audiences,
            } => {
                let parent = inputs
                    .get(&Output::Exists)
                    .or_else(|| inputs.get(&Output::ObjectId))
                    .and_then(|o| o.id.clone())
                    .ok_or_else(|| failure("its identity's id is not known"))?;
                let issuer = match issuer {
                    IssuerSource::Url(url) => url.clone(),
                    IssuerSource::Cluster(_) => inputs
                        .get(&Output::IssuerUrl)
                        .and_then(|o| o.issuer_url.clone())
                        .ok_or_else(|| failure("the cluster's issuer URL is not known"))?,
                };
                match identity_kind {
                    IdentityKind::Managed => {
                        if change.action == Action::Replace {
                            azure.delete_identity_credential(&parent, name).await?;
                        }
                        let desired = DesiredIdentityCredential {
                            name: name.clone(),
                            issuer,
                            subject: subject.clone(),
                            audiences: audiences.clone(),
                        };
                        azure.put_identity_credential(&parent, &desired).await?;
                    }
                    IdentityKind::Application => {
                        if change.action == Action::Replace {
                            azure.delete_application_credential(&parent, name).await?;
                        }
                        let desired = DesiredApplicationCredential {
                            name: name.clone(),
                            issuer,
                            subject: subject.clone(),
                            audiences: audiences.clone(),
                            description: None,
                        };
                        azure.put_application_credential(&parent, &desired).await?;
                    }
                }
                Ok((Outcome::Applied, None))
            }
            Resource::RoleAssignment {
                role,
                scope,
                condition,
            } => {
                let principal = inputs
                    .get(&Output::PrincipalId)
                    .and_then(|o| o.principal_id.clone())
                    .ok_or_else(|| failure("its identity's principal id is not known"))?;
                let definition = azure.resolve_role(scope, role).await?;
                let desired = DesiredRoleAssignment::new(
                    stack,
                    scope,
                    &principal,
                    &definition,
                    condition.as_deref(),
                );
                azure.put_role_assignment(&desired).await?;
                Ok((Outcome::Applied, None))
            }
            Resource::Namespace { name } => {
                let cluster = self.cluster(node.cluster.as_deref())?;
                cluster
                    .apply_namespace(&DesiredNamespace::new(stack, name.clone()), true)
                    .await?;
                Ok((Outcome::Applied, None))
            }
            resource @ Resource::ServiceAccount { .. } => {
                let cluster = self.cluster(node.cluster.as_deref())?;
                let client_id = inputs
                    .get(&Output::ClientId)
                    .and_then(|o| o.client_id.clone())
                    .ok_or_else(|| failure("its identity's client id is not known"))?;
                let desired = DesiredServiceAccount::from_resource(stack, resource, &client_id)
                    .ok_or_else(|| failure("not a service account"))?;
                // The plan showed every field wiform sets, including those another field
                // manager took (an annotation edited by hand): applying it takes them back.
                cluster.apply_service_account(&desired, true).await?;
                Ok((Outcome::Applied, None))
            }
        }
    }

    fn cluster(&self, key: Option<&str>) -> Result<&C, Failure> {
        let key = key.ok_or_else(|| failure("no cluster"))?;
        match self.clusters.get(key) {
            Some(Ok(cluster)) => Ok(cluster),
            Some(Err(f)) => Err(Failure {
                message: f.message.clone(),
                hint: f.hint.clone(),
            }),
            None => Err(failure(format!("cluster `{key}` is not connected"))),
        }
    }

    async fn delete(&self, change: &Change) -> Result<(), Failure> {
        let id = change
            .id
            .as_deref()
            .ok_or_else(|| failure("the object's id is not known"))?;
        let azure = &self.observed.azure;
        match change.resource_type.as_str() {
            "service_account" | "namespace" => {
                let cluster_key = change
                    .address
                    .split_once('.')
                    .and_then(|(_, rest)| rest.split('/').next())
                    .unwrap_or_default();
                let observation = self
                    .observed
                    .clusters
                    .get(cluster_key)
                    .and_then(|o| o.as_ref().ok())
                    .ok_or_else(|| failure("the cluster was not observed"))?;
                let cluster = self.cluster(Some(cluster_key))?;
                if change.resource_type == "namespace" {
                    let live = observation
                        .namespace(id)
                        .ok_or_else(|| failure("the namespace was not observed"))?;
                    cluster.delete_namespace(self.stack, live).await?;
                } else {
                    let (namespace, name) = id.split_once('/').unwrap_or(("", id));
                    let live = observation
                        .service_account(namespace, name)
                        .ok_or_else(|| failure("the service account was not observed"))?;
                    cluster.delete_service_account(self.stack, live).await?;
                }
                Ok(())
            }
            "role_assignment" => {
                let live = azure
                    .role_assignments
                    .iter()
                    .find(|a| a.id.eq_ignore_ascii_case(id))
                    .ok_or_else(|| failure("the role assignment was not observed"))?;
                // Extras on an identity this stack owns are removed even without a marker.
                self.azure
                    .delete_role_assignment(self.stack, live, true)
                    .await?;
                Ok(())
            }
            "federated_credential" => {
                if let Some((parent, name)) = id.rsplit_once("/federatedIdentityCredentials/") {
                    self.azure.delete_identity_credential(parent, name).await?;
                } else {
                    let parent = azure
                        .application_credentials
                        .iter()
                        .find(|(_, list)| list.iter().any(|c| c.id == id))
                        .map(|(object_id, _)| object_id.clone())
                        .ok_or_else(|| failure("the credential's application was not observed"))?;
                    self.azure
                        .delete_application_credential(&parent, id)
                        .await?;
                }
                Ok(())
            }
            "managed_identity" => {
                let live = azure
                    .identities
                    .values()
                    .find(|i| i.id.eq_ignore_ascii_case(id))
                    .ok_or_else(|| failure("the identity was not observed"))?;
                self.azure.delete_identity(self.stack, live).await?;
                Ok(())
            }
            "application" => {
                let live = azure
                    .applications
                    .iter()
                    .find(|a| a.object_id == id)
                    .ok_or_else(|| failure("the application was not observed"))?;
                self.azure.delete_application(self.stack, live).await?;
                Ok(())
            }
            other => Err(failure(format!("wiform does not delete {other}s"))),
        }
    }
}

fn merge(into: &mut Outputs, from: Outputs) {
    if from.client_id.is_some() {
        into.client_id = from.client_id;
    }
    if from.principal_id.is_some() {
        into.principal_id = from.principal_id;
    }
    if from.issuer_url.is_some() {
        into.issuer_url = from.issuer_url;
    }
    if from.id.is_some() {
        into.id = from.id;
    }
}
