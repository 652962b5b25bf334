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

use futures::future::join_all;
use futures::stream::{FuturesUnordered, StreamExt};
use petgraph::graph::NodeIndex;

use super::observe::{ClusterFailure, Observed};
use super::plan::{Action, Change, Plan};
use super::records;
use crate::address::Address;
use crate::graph::{Graph, WalkDirection};
use crate::kinds::{ApplyCtx, Failure, Output, Outputs};
use crate::providers::azure::AzureApi;
use crate::providers::kube::ClusterApi;

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
        because: Address,
    },
    /// A delete that did not run: the change that takes over from the object failed or was
    /// skipped, and deleting it first could leave a workload with less than it had.
    Kept {
        because: Address,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    /// (address, outcome), in the order changes finished.
    pub outcomes: Vec<(Address, Outcome)>,
    /// A stop was requested: changes not started are not in `outcomes`.
    pub interrupted: bool,
}

/// What apply is doing, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    Started {
        address: Address,
        action: Action,
    },
    Finished {
        address: Address,
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
    pub fn failed(&self) -> impl Iterator<Item = (&Address, &Outcome)> {
        self.outcomes
            .iter()
            .filter(|(_, o)| {
                matches!(
                    o,
                    Outcome::Failed { .. } | Outcome::Skipped { .. } | Outcome::Kept { .. }
                )
            })
            .map(|(a, o)| (a, o))
    }

    pub fn is_success(&self) -> bool {
        !self.interrupted && self.failed().next().is_none()
    }
}

struct Executor<'a, A, C> {
    options: Options,
    plan: &'a Plan,
    graph: &'a Graph,
    observed: &'a Observed,
    azure: &'a A,
    clusters: &'a BTreeMap<String, Result<C, ClusterFailure>>,
    stack: &'a str,
}

/// Applies `plan` (made from `graph` and `observed`).
pub async fn apply<A: AzureApi + Sync, C: ClusterApi + Sync>(
    plan: &Plan,
    graph: &Graph,
    observed: &Observed,
    azure: &A,
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
pub async fn apply_with<A: AzureApi + Sync, C: ClusterApi + Sync>(
    plan: &Plan,
    graph: &Graph,
    observed: &Observed,
    azure: &A,
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

impl<A: AzureApi + Sync, C: ClusterApi + Sync> Executor<'_, A, C> {
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
        let changes: HashMap<&Address, &Change> = self
            .plan
            .changes
            .iter()
            .filter(|c| !c.not_in_config)
            .map(|c| (&c.address, c))
            .collect();
        let by_node: HashMap<NodeIndex, &Change> = self
            .graph
            .node_ids()
            .filter_map(|id| changes.get(&self.graph.node(id).address).map(|c| (id, *c)))
            .collect();
        let mut outputs: HashMap<NodeIndex, Outputs> = by_node
            .iter()
            .map(|(id, c)| (*id, Outputs::planned(c)))
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
                    if self
                        .graph
                        .node(id)
                        .resource
                        .releases_dependents_early(change)
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
                        outputs.entry(id).or_default().merge(out);
                    }
                    walk.complete(id);
                    outcome
                }
                Err(f) => {
                    for skipped in walk.fail(id) {
                        report.outcomes.push((
                            self.graph.node(skipped).address.clone(),
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
        // namespaces, role assignments, credentials, identities); each group at once. A delete
        // whose successor did not apply is kept (never less than before).
        let unfinished: Vec<&Change> = report
            .outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Failed { .. } | Outcome::Skipped { .. }))
            .filter_map(|(a, _)| changes.get(a).copied())
            .collect();
        let mut deletes: Vec<&Change> = Vec::new();
        for change in self
            .plan
            .changes
            .iter()
            .filter(|c| c.not_in_config && c.action == Action::Delete)
        {
            match withheld_by(change, &unfinished) {
                Some(because) => report.outcomes.push((
                    change.address.clone(),
                    Outcome::Kept {
                        because: because.clone(),
                    },
                )),
                None => deletes.push(change),
            }
        }
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
    ) -> Vec<(Output, Outputs)> {
        self.graph
            .edges()
            .filter(|(_, to, _)| *to == id)
            .map(|(from, _, what)| (what, outputs.get(&from).cloned().unwrap_or_default()))
            .collect()
    }

    fn ctx<'c>(
        &'c self,
        change: &'c Change,
        cluster: Option<&'c str>,
        inputs: Vec<(Output, Outputs)>,
    ) -> ApplyCtx<'c, A, C> {
        ApplyCtx {
            stack: self.stack,
            azure: self.azure,
            observed: self.observed,
            clusters: self.clusters,
            change,
            cluster,
            inputs,
            records: Default::default(),
        }
    }

    /// Carries out the change of a node in the config: its kind does it.
    async fn change(
        &self,
        id: NodeIndex,
        change: &Change,
        inputs: Vec<(Output, Outputs)>,
    ) -> Result<(Outcome, Option<Outputs>), Failure> {
        if !change.action.is_change() {
            return Ok((Outcome::Unchanged, None));
        }
        let node = self.graph.node(id);
        let mut ctx = self.ctx(change, node.cluster.as_deref(), inputs);
        if node.resource.kind().keeps_records() {
            ctx.records = records::identity_records(self.graph, id);
        }
        let outputs = node.resource.apply(&ctx).await?;
        Ok((Outcome::Applied, outputs))
    }

    /// Deletes an object the config no longer names: its kind does it, with the live object the
    /// plan was made from.
    async fn delete(&self, change: &Change) -> Result<(), Failure> {
        change
            .resource_type
            .delete(&self.ctx(change, None, Vec::new()))
            .await
    }
}

/// The unfinished (failed or skipped) change that withholds `delete`, if any: deleting an object
/// before what takes over from it exists could leave a workload with less than it had.
///
/// A credential or role assignment of an identity is taken over by the changes of that
/// identity: the identity itself, its credentials, its grants and the service accounts bound to
/// it (a credential renamed or moved, a grant moved to another scope). What takes over from an
/// identity, an application, a service account or a namespace could be anything in the config
/// (a renamed identity, a service account moved to another identity), so any unfinished change
/// withholds those.
pub fn withheld_by<'a>(delete: &Change, unfinished: &[&'a Change]) -> Option<&'a Address> {
    let identity = match &delete.address {
        Address::FederatedCredential { identity, .. } | Address::RoleGrant { identity, .. } => {
            Some(Address::Identity(identity.clone()))
        }
        _ => None,
    };
    unfinished
        .iter()
        .find(|c| match &identity {
            None => true,
            Some(identity) => {
                c.address == *identity
                    || matches!(&c.address,
                        Address::FederatedCredential { identity: i, .. }
                        | Address::RoleGrant { identity: i, .. }
                        if Address::Identity(i.clone()) == *identity)
                    || c.depends_on.contains(identity)
            }
        })
        .map(|c| &c.address)
}

#[cfg(test)]
mod tests;
