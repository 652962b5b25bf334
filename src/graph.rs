//! The dependency graph: one typed node per resource wiform manages, an edge wherever one
//! resource needs an output of another (an issuer URL, a client id, a principal id, or simply
//! that it exists). Apply walks it forwards, deletes walk it backwards.

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::address::{Address, CredentialKey};
use crate::config::federation::{IssuerSource, wanted_credentials};
use crate::config::model::{Config, IdentityKind};
use crate::kinds::{
    ConfigDefaults, aks_cluster, application, federated_credential, managed_identity, namespace,
    resource_group, role_assignment, service_account,
};

pub use petgraph::graph::NodeIndex as NodeId;

pub use crate::kinds::role_assignment::RoleRef;
pub use crate::kinds::{Output, Plane, Resource};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub address: Address,
    /// For Kubernetes objects: the key of their cluster in the config.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    pub resource: Resource,
}

/// Resources and "needs an output of" edges (dependency → dependent).
#[derive(Debug, Clone, Default)]
pub struct Graph {
    inner: DiGraph<Node, Output>,
    /// `[azure].subscription_id`: observed even when no resource names it, so that what the
    /// stack owns there is found when the config no longer declares any of it.
    subscription: String,
}

impl Graph {
    /// Builds the graph of a validated config. References that do not resolve (only possible
    /// in a config with errors) are skipped, never a panic.
    pub fn build(config: &Config) -> Self {
        let mut g = Graph {
            subscription: config.azure.subscription_id.value.clone(),
            ..Graph::default()
        };
        let subscription = config.azure.subscription_id.value.clone();
        let defaults = ConfigDefaults {
            subscription: &config.azure.subscription_id.value,
            tenant: &config.azure.tenant_id.value,
            location: config.azure.location.as_ref().map(|l| l.value.as_str()),
        };

        for (name, rg) in config.resource_groups.iter() {
            g.add(
                Address::ResourceGroup(name.value.clone()),
                None,
                Resource::ResourceGroup(resource_group::Desired::from_config(
                    &name.value,
                    rg,
                    defaults,
                )),
            );
        }

        for (key, cluster) in config.clusters.iter() {
            if let Some(desired) = aks_cluster::Desired::from_config(cluster, defaults) {
                g.add(
                    Address::Cluster(key.value.clone()),
                    None,
                    Resource::Cluster(desired),
                );
            }
        }

        for (key, identity) in config.identities.iter() {
            let address = Address::Identity(key.value.clone());
            let resource = match identity
                .kind
                .as_ref()
                .map_or(IdentityKind::Managed, |k| k.value)
            {
                IdentityKind::Managed => Resource::ManagedIdentity(
                    managed_identity::Desired::from_config(&key.value, identity, defaults),
                ),
                IdentityKind::Application => {
                    Resource::Application(application::Desired::from_config(&key.value, identity))
                }
            };
            let rg = match &resource {
                Resource::ManagedIdentity(d) => Some(d.resource_group.clone()),
                _ => None,
            };
            let id = g.add(address, None, resource);
            if let Some(rg) = rg.and_then(|rg| g.declared_resource_group(&rg)) {
                g.inner.add_edge(rg, id, Output::Exists);
            }
        }

        for sa in &config.service_accounts {
            let Some(identity) = g.find(&Address::Identity(sa.identity.value.clone())) else {
                continue;
            };
            let namespace_address = Address::Namespace {
                cluster: sa.cluster.value.clone(),
                name: sa.namespace.value.clone(),
            };
            let namespace = if sa.create_namespace.as_ref().is_none_or(|c| c.value) {
                Some(match g.find(&namespace_address) {
                    Some(existing) => existing,
                    None => g.add(
                        namespace_address,
                        Some(sa.cluster.value.clone()),
                        Resource::Namespace(namespace::Desired {
                            name: sa.namespace.value.clone(),
                        }),
                    ),
                })
            } else {
                None
            };
            let account = g.add(
                Address::ServiceAccount {
                    cluster: sa.cluster.value.clone(),
                    namespace: sa.namespace.value.clone(),
                    name: sa.name.value.clone(),
                },
                Some(sa.cluster.value.clone()),
                Resource::ServiceAccount(service_account::Desired::from_config(sa, defaults)),
            );
            if let Some(namespace) = namespace {
                g.inner.add_edge(namespace, account, Output::Exists);
            }
            g.inner.add_edge(identity, account, Output::ClientId);
        }

        for wanted in wanted_credentials(config) {
            let identity_address = Address::Identity(wanted.identity.clone());
            let Some(identity) = g.find(&identity_address) else {
                continue;
            };
            let identity_kind = match g.inner[identity].resource {
                Resource::Application(_) => IdentityKind::Application,
                _ => IdentityKind::Managed,
            };
            let key = match wanted
                .service_account
                .and_then(|i| config.service_accounts.get(i))
            {
                Some(sa) => CredentialKey::ServiceAccount {
                    cluster: sa.cluster.value.clone(),
                    namespace: sa.namespace.value.clone(),
                    name: sa.name.value.clone(),
                },
                None => CredentialKey::Named(wanted.name.clone()),
            };
            let issuer_node = match &wanted.issuer {
                IssuerSource::Cluster(cluster) => g.find(&Address::Cluster(cluster.clone())),
                IssuerSource::Url(_) => None,
            };
            let credential = g.add(
                Address::FederatedCredential {
                    identity: wanted.identity.clone(),
                    key,
                },
                None,
                Resource::FederatedCredential(federated_credential::Desired::from_config(
                    identity_kind,
                    wanted,
                )),
            );
            let needs = if identity_kind == IdentityKind::Application {
                Output::ObjectId
            } else {
                Output::Exists
            };
            g.inner.add_edge(identity, credential, needs);
            if let Some(cluster) = issuer_node {
                g.inner.add_edge(cluster, credential, Output::IssuerUrl);
            }
        }

        for grant in &config.role_grants {
            let Some(identity) = g.find(&Address::Identity(grant.identity.value.clone())) else {
                continue;
            };
            let desired = role_assignment::Desired::from_config(grant, defaults);
            let scope = desired.scope.clone();
            let node = g.add(
                Address::RoleGrant {
                    identity: grant.identity.value.clone(),
                    role: desired.role.display().to_string(),
                    scope: scope.clone(),
                },
                None,
                Resource::RoleAssignment(desired),
            );
            g.inner.add_edge(identity, node, Output::PrincipalId);
            if let Some(rg) = crate::arm_id::resource_group_of(&scope, &subscription)
                .and_then(|rg| g.declared_resource_group(rg))
            {
                g.inner.add_edge(rg, node, Output::Exists);
            }
        }
        g
    }

    fn add(&mut self, address: Address, cluster: Option<String>, resource: Resource) -> NodeIndex {
        self.inner.add_node(Node {
            address,
            cluster,
            resource,
        })
    }

    fn declared_resource_group(&self, name: &str) -> Option<NodeIndex> {
        self.inner.node_indices().find(|&i| {
            matches!(&self.inner[i].resource, Resource::ResourceGroup(rg) if rg.name.eq_ignore_ascii_case(name))
        })
    }

    pub fn find(&self, address: &Address) -> Option<NodeIndex> {
        self.inner
            .node_indices()
            .find(|&i| &self.inner[i].address == address)
    }

    /// The config's subscription (`[azure].subscription_id`).
    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    pub fn node(&self, id: NodeIndex) -> &Node {
        &self.inner[id]
    }

    pub fn len(&self) -> usize {
        self.inner.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.node_count() == 0
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeIndex> + '_ {
        self.inner.node_indices()
    }

    /// `(dependency, dependent, what is needed)` for every edge, in insertion order.
    pub fn edges(&self) -> impl Iterator<Item = (NodeIndex, NodeIndex, Output)> + '_ {
        self.inner
            .edge_references()
            .map(|e| (e.source(), e.target(), *e.weight()))
    }

    /// What `id` needs, sorted.
    pub fn dependencies(&self, id: NodeIndex) -> Vec<NodeIndex> {
        self.neighbors(id, Direction::Incoming)
    }

    /// What needs `id`, sorted.
    pub fn dependents(&self, id: NodeIndex) -> Vec<NodeIndex> {
        self.neighbors(id, Direction::Outgoing)
    }

    fn neighbors(&self, id: NodeIndex, direction: Direction) -> Vec<NodeIndex> {
        let mut out: Vec<NodeIndex> = self.inner.neighbors_directed(id, direction).collect();
        out.sort();
        out.dedup();
        out
    }

    /// Dependencies before dependents; among ready nodes, the order they were declared in.
    pub fn topological_order(&self) -> Vec<NodeIndex> {
        let mut walk = self.walk(WalkDirection::Forward);
        let mut order = Vec::with_capacity(self.len());
        loop {
            let ready = walk.ready();
            if ready.is_empty() {
                break;
            }
            for id in ready {
                walk.complete(id);
                order.push(id);
            }
        }
        order
    }

    /// A walk over every node, `Forward` for create/update, `Reverse` for deletes.
    pub fn walk(&self, direction: WalkDirection) -> Walk<'_> {
        Walk::new(self, direction, |_| true)
    }

    /// A walk over `selected` nodes only; the others count as already done.
    pub fn walk_subset(
        &self,
        direction: WalkDirection,
        selected: impl Fn(NodeIndex) -> bool,
    ) -> Walk<'_> {
        Walk::new(self, direction, selected)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkDirection {
    /// Dependencies first (create, update).
    Forward,
    /// Dependents first (delete).
    Reverse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Waiting,
    Running,
    Done,
    Failed,
    /// Not run because something it depends on failed or was skipped.
    Skipped,
}

/// The ready-set walk apply uses: hand out every node whose prerequisites are done, take
/// completions and failures in any order. A failure skips everything downstream of it.
pub struct Walk<'g> {
    graph: &'g Graph,
    direction: WalkDirection,
    state: Vec<NodeState>,
    /// Prerequisites not yet done, per node.
    pending: Vec<usize>,
}

impl<'g> Walk<'g> {
    fn new(
        graph: &'g Graph,
        direction: WalkDirection,
        selected: impl Fn(NodeIndex) -> bool,
    ) -> Self {
        let n = graph.len();
        let mut state = vec![NodeState::Waiting; n];
        for id in graph.node_ids() {
            if !selected(id) {
                state[id.index()] = NodeState::Done;
            }
        }
        let mut walk = Walk {
            graph,
            direction,
            state,
            pending: vec![0; n],
        };
        for id in graph.node_ids() {
            walk.pending[id.index()] = walk
                .prerequisites(id)
                .into_iter()
                .filter(|p| walk.state[p.index()] != NodeState::Done)
                .count();
        }
        walk
    }

    fn prerequisites(&self, id: NodeIndex) -> Vec<NodeIndex> {
        match self.direction {
            WalkDirection::Forward => self.graph.dependencies(id),
            WalkDirection::Reverse => self.graph.dependents(id),
        }
    }

    fn followers(&self, id: NodeIndex) -> Vec<NodeIndex> {
        match self.direction {
            WalkDirection::Forward => self.graph.dependents(id),
            WalkDirection::Reverse => self.graph.dependencies(id),
        }
    }

    /// Nodes that can start now (marked running), in declaration order.
    pub fn ready(&mut self) -> Vec<NodeIndex> {
        let ready: Vec<NodeIndex> = self
            .graph
            .node_ids()
            .filter(|id| {
                self.state[id.index()] == NodeState::Waiting && self.pending[id.index()] == 0
            })
            .collect();
        for id in &ready {
            self.state[id.index()] = NodeState::Running;
        }
        ready
    }

    pub fn complete(&mut self, id: NodeIndex) {
        if self.state[id.index()] != NodeState::Running {
            return;
        }
        self.state[id.index()] = NodeState::Done;
        for follower in self.followers(id) {
            self.pending[follower.index()] = self.pending[follower.index()].saturating_sub(1);
        }
    }

    /// Marks `id` failed; returns what is skipped because of it.
    pub fn fail(&mut self, id: NodeIndex) -> Vec<NodeIndex> {
        if self.state[id.index()] != NodeState::Running {
            return Vec::new();
        }
        self.state[id.index()] = NodeState::Failed;
        let mut skipped = Vec::new();
        let mut stack = self.followers(id);
        while let Some(next) = stack.pop() {
            if self.state[next.index()] == NodeState::Waiting {
                self.state[next.index()] = NodeState::Skipped;
                skipped.push(next);
                stack.extend(self.followers(next));
            }
        }
        skipped.sort();
        skipped
    }

    pub fn state(&self, id: NodeIndex) -> NodeState {
        self.state[id.index()]
    }

    /// True when nothing is waiting or running.
    pub fn is_finished(&self) -> bool {
        self.state
            .iter()
            .all(|s| !matches!(s, NodeState::Waiting | NodeState::Running))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SourceFile, check};

    const HEADER: &str = r#"
version = 1
name = "t"
[azure]
tenant_id = "aaaaaaaa-0000-4000-8000-000000000001"
subscription_id = "bbbbbbbb-0000-4000-8000-000000000001"
location = "westeurope"
"#;

    fn graph(body: &str) -> Graph {
        let checked = check(SourceFile {
            name: "t.toml".into(),
            text: format!("{HEADER}{body}"),
        });
        let config = checked
            .config
            .unwrap_or_else(|| panic!("invalid: {:?}", checked.diagnostics));
        Graph::build(&config)
    }

    fn id(g: &Graph, address: &str) -> NodeIndex {
        g.node_ids()
            .find(|&i| g.node(i).address == address)
            .unwrap_or_else(|| {
                let all: Vec<String> = g
                    .node_ids()
                    .map(|i| g.node(i).address.to_string())
                    .collect();
                panic!("no {address} in {all:?}")
            })
    }

    fn edge(g: &Graph, from: &str, to: &str) -> Option<Output> {
        let (from, to) = (id(g, from), id(g, to));
        g.edges()
            .find(|(f, t, _)| *f == from && *t == to)
            .map(|(_, _, o)| o)
    }

    const AKS_AND_MANAGED: &str = r#"
[resource_groups.rg-id]
[clusters.prod]
resource_group = "rg-aks"
name = "aks-prod"
[identities.api]
resource_group = "rg-id"
[[service_accounts]]
cluster = "prod"
namespace = "orders"
name = "api"
identity = "api"
[[federations]]
identity = "api"
name = "github-main"
issuer = "https://token.actions.githubusercontent.com"
subject = "repo:contoso/orders:ref:refs/heads/main"
[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/rg-id"
"#;

    #[test]
    fn edges_follow_the_outputs_each_resource_needs() {
        let g = graph(AKS_AND_MANAGED);
        assert_eq!(g.len(), 8);
        let implied = "federated_credential.api/prod:orders/api";
        assert_eq!(
            edge(&g, "resource_group.rg-id", "identity.api"),
            Some(Output::Exists)
        );
        assert_eq!(edge(&g, "cluster.prod", implied), Some(Output::IssuerUrl));
        assert_eq!(edge(&g, "identity.api", implied), Some(Output::Exists));
        assert_eq!(
            edge(&g, "identity.api", "federated_credential.api/github-main"),
            Some(Output::Exists)
        );
        assert_eq!(
            edge(&g, "identity.api", "service_account.prod/orders/api"),
            Some(Output::ClientId)
        );
        assert_eq!(
            edge(
                &g,
                "namespace.prod/orders",
                "service_account.prod/orders/api"
            ),
            Some(Output::Exists)
        );
        let grant = "role_grant.api[\"Reader\" @ /subscriptions/bbbbbbbb-0000-4000-8000-000000000001/resourceGroups/rg-id]";
        assert_eq!(edge(&g, "identity.api", grant), Some(Output::PrincipalId));
        assert_eq!(
            edge(&g, "resource_group.rg-id", grant),
            Some(Output::Exists)
        );
        // The explicit federation has no cluster to wait for.
        assert_eq!(
            g.dependencies(id(&g, "federated_credential.api/github-main"))
                .len(),
            1
        );
        match &g.node(id(&g, implied)).resource {
            Resource::FederatedCredential(federated_credential::Desired {
                name,
                issuer,
                subject,
                audiences,
                ..
            }) => {
                assert_eq!(name, "prod-orders-api");
                assert_eq!(issuer, &IssuerSource::Cluster("prod".into()));
                assert_eq!(subject, "system:serviceaccount:orders:api");
                assert_eq!(audiences, &["api://AzureADTokenExchange"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn applications_give_their_object_id_to_credentials() {
        let g = graph(
            r#"
[clusters.edge]
issuer = "https://oidc.example.com/edge"
kube_context = "edge"
[identities.app]
kind = "application"
[[service_accounts]]
cluster = "edge"
namespace = "default"
name = "app"
identity = "app"
create_namespace = false
"#,
        );
        // No cluster node (explicit issuer), no namespace node (create_namespace = false).
        assert_eq!(g.len(), 3);
        let credential = "federated_credential.app/edge:default/app";
        assert_eq!(edge(&g, "identity.app", credential), Some(Output::ObjectId));
        match &g.node(id(&g, credential)).resource {
            Resource::FederatedCredential(federated_credential::Desired {
                issuer,
                identity_kind,
                ..
            }) => {
                assert_eq!(
                    issuer,
                    &IssuerSource::Url("https://oidc.example.com/edge".into())
                );
                assert_eq!(*identity_kind, IdentityKind::Application);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(g.node(id(&g, credential)).resource.plane(), Plane::Graph);
    }

    #[test]
    fn one_namespace_node_per_cluster_namespace() {
        let g = graph(
            r#"
[clusters.a]
resource_group = "rg"
name = "a"
[clusters.b]
resource_group = "rg"
name = "b"
[identities.api]
resource_group = "rg"
[[service_accounts]]
cluster = "a"
namespace = "orders"
name = "api"
identity = "api"
[[service_accounts]]
cluster = "a"
namespace = "orders"
name = "worker"
identity = "api"
[[service_accounts]]
cluster = "b"
namespace = "orders"
name = "api"
identity = "api"
"#,
        );
        let namespaces = g
            .node_ids()
            .filter(|&i| g.node(i).resource.kind() == "namespace")
            .count();
        assert_eq!(namespaces, 2);
        let credentials = g
            .node_ids()
            .filter(|&i| g.node(i).resource.kind() == "federated_credential")
            .count();
        assert_eq!(credentials, 3);
    }

    #[test]
    fn topological_order_puts_dependencies_first() {
        let g = graph(AKS_AND_MANAGED);
        let order = g.topological_order();
        assert_eq!(order.len(), g.len());
        let position = |n: NodeIndex| order.iter().position(|&o| o == n).unwrap();
        for (from, to, _) in g.edges() {
            assert!(
                position(from) < position(to),
                "{} before {}",
                g.node(from).address,
                g.node(to).address
            );
        }
        // Same answer as petgraph's own check that the graph is acyclic.
        assert!(petgraph::algo::toposort(&g.inner, None).is_ok());
    }

    #[test]
    fn walk_hands_out_ready_nodes_and_skips_dependents_of_failures() {
        let g = graph(AKS_AND_MANAGED);
        let mut walk = g.walk(WalkDirection::Forward);
        let first: Vec<String> = walk
            .ready()
            .iter()
            .map(|&i| g.node(i).address.to_string())
            .collect();
        assert_eq!(
            first,
            [
                "resource_group.rg-id",
                "cluster.prod",
                "namespace.prod/orders"
            ]
        );
        // Nothing new is ready until something completes.
        assert!(walk.ready().is_empty());
        walk.complete(id(&g, "cluster.prod"));
        walk.complete(id(&g, "namespace.prod/orders"));
        assert!(
            walk.ready().is_empty(),
            "identity still waits for its resource group"
        );
        let skipped: Vec<String> = walk
            .fail(id(&g, "resource_group.rg-id"))
            .iter()
            .map(|&i| g.node(i).address.to_string())
            .collect();
        assert_eq!(
            skipped.len(),
            5,
            "identity and everything after it: {skipped:?}"
        );
        assert!(skipped.contains(&"service_account.prod/orders/api".to_string()));
        assert!(walk.is_finished());
        assert_eq!(walk.state(id(&g, "identity.api")), NodeState::Skipped);
    }

    #[test]
    fn reverse_walk_deletes_dependents_first() {
        let g = graph(AKS_AND_MANAGED);
        let mut walk = g.walk(WalkDirection::Reverse);
        let first = walk.ready();
        assert!(!first.contains(&id(&g, "identity.api")));
        assert!(first.contains(&id(&g, "service_account.prod/orders/api")));
        for n in first {
            walk.complete(n);
        }
        assert!(walk.ready().contains(&id(&g, "identity.api")));
    }

    #[test]
    fn subset_walk_treats_unselected_nodes_as_done() {
        let g = graph(AKS_AND_MANAGED);
        let sa = id(&g, "service_account.prod/orders/api");
        let mut walk = g.walk_subset(WalkDirection::Forward, |n| n == sa);
        assert_eq!(walk.ready(), [sa]);
        walk.complete(sa);
        assert!(walk.is_finished());
    }
}
