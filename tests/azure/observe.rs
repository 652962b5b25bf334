//! Observing a whole stack: what it finds, and how many requests it takes — for the
//! `multi-cluster` example and a generated config of 200 identities.

use std::collections::BTreeMap;

use futures::future::join_all;
use wiform::config::federation::IssuerSource;
use wiform::config::{self, SourceFile};
use wiform::engine::observe::azure_scope;
use wiform::graph::{Graph, Resource};
use wiform::kinds::{aks_cluster, federated_credential, role_assignment};
use wiform::providers::azure::AzureProvider;
use wiform::providers::azure::clusters::LiveCluster;
use wiform::providers::azure::identities::{DesiredIdentityCredential, LiveIdentity};
use wiform::providers::azure::observe::AzureObservation;
use wiform::providers::azure::roles::DesiredRoleAssignment;
use wiform_sandbox::Options;

use crate::support::{Sandbox, TENANT, sandbox_with};

#[path = "../../benches/support/large.rs"]
mod large;
use large::large_config;

fn graph_of(name: &str, text: &str) -> (String, Graph) {
    let checked = config::check(SourceFile {
        name: name.into(),
        text: text.into(),
    });
    let config = checked
        .config
        .unwrap_or_else(|| panic!("{name} is valid: {:?}", checked.diagnostics));
    (config.name.value.clone(), Graph::build(&config))
}

fn seed(sbx: &Sandbox, groups: &[&str], clusters: &[(&str, &str)]) {
    let settled: Vec<(&str, &str, bool, bool)> = clusters
        .iter()
        .map(|(rg, name)| (*rg, *name, true, true))
        .collect();
    sbx.seed(groups, &settled);
}

/// Writes everything the graph's Azure resources declare, straight through the provider (a
/// stand-in for `apply`, which a later issue builds on the same calls).
async fn write_all(
    provider: &AzureProvider,
    stack: &str,
    graph: &Graph,
    observed: &AzureObservation,
) {
    let clusters: BTreeMap<String, &LiveCluster> = graph
        .node_ids()
        .filter_map(|id| {
            let node = graph.node(id);
            match &node.resource {
                Resource::Cluster(aks_cluster::Desired {
                    subscription_id,
                    resource_group,
                    name,
                    ..
                }) => observed
                    .clusters
                    .values()
                    .find(|c| c.is(subscription_id, resource_group, name))
                    .map(|c| (node.address.to_string(), c)),
                _ => None,
            }
        })
        .collect();
    // Identities.
    let puts = graph.node_ids().filter_map(|id| {
        let Resource::ManagedIdentity(identity) = &graph.node(id).resource else {
            return None;
        };
        let desired = identity.request(stack, BTreeMap::new());
        Some(async move { (id, provider.put_identity(&desired).await.unwrap()) })
    });
    let identities: BTreeMap<_, LiveIdentity> = join_all(puts).await.into_iter().collect();
    // Federated credentials and role assignments, each on its identity.
    let mut credentials = Vec::new();
    let mut grants = Vec::new();
    for id in graph.node_ids() {
        let Some(identity) = graph
            .dependencies(id)
            .into_iter()
            .find_map(|d| identities.get(&d))
        else {
            continue;
        };
        match &graph.node(id).resource {
            Resource::FederatedCredential(federated_credential::Desired {
                name,
                issuer,
                subject,
                audiences,
                ..
            }) => {
                let issuer = match issuer {
                    IssuerSource::Url(url) => url.clone(),
                    IssuerSource::Cluster(key) => clusters[&format!("cluster.{key}")]
                        .issuer_url
                        .clone()
                        .unwrap(),
                };
                let desired = DesiredIdentityCredential {
                    name: name.clone(),
                    issuer,
                    subject: subject.clone(),
                    audiences: audiences.clone(),
                };
                credentials.push(async move {
                    provider
                        .put_identity_credential(&identity.id, &desired)
                        .await
                        .unwrap();
                });
            }
            Resource::RoleAssignment(role_assignment::Desired {
                role,
                scope,
                condition,
            }) => {
                grants.push(async move {
                    let definition = provider.resolve_role(scope, role).await.unwrap();
                    let desired = DesiredRoleAssignment::new(
                        stack,
                        scope,
                        &identity.principal_id,
                        &definition,
                        condition.as_deref(),
                    );
                    provider.put_role_assignment(&desired).await.unwrap();
                });
            }
            _ => {}
        }
    }
    join_all(credentials).await;
    join_all(grants).await;
}

#[tokio::test]
async fn observing_the_multi_cluster_example() {
    let sbx = sandbox_with(Options::default()).await;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/multi-cluster/identity.toml"
    ))
    .unwrap();
    let (stack, graph) = graph_of("multi-cluster", &text);
    seed(
        &sbx,
        &["rg-identities", "rg-data"],
        &[
            ("rg-aks-weu", "aks-orders-weu"),
            ("rg-aks-neu", "aks-orders-neu"),
        ],
    );
    let provider = AzureProvider::new(sbx.admin.clone(), TENANT);

    // Nothing of the stack exists yet.
    sbx.clear_log();
    let empty = provider.observe(&stack, &azure_scope(&graph)).await;
    assert!(empty.errors.is_empty(), "{:?}", empty.errors);
    assert!(empty.identities.is_empty());
    assert_eq!(empty.clusters.len(), 2);
    let from_empty = sbx.api_requests().len();

    write_all(&provider, &stack, &graph, &empty).await;

    // Everything exists: the identity, its two credentials, its role assignment.
    sbx.clear_log();
    let applied = provider.observe(&stack, &azure_scope(&graph)).await;
    assert!(applied.errors.is_empty(), "{:?}", applied.errors);
    assert_eq!(applied.identities.len(), 1);
    let identity = applied.identities.values().next().unwrap();
    assert!(identity.owner.is_stack(&stack));
    assert_eq!(applied.identity_credentials[&identity.key()].len(), 2);
    assert_eq!(applied.role_assignments.len(), 1);
    let requests = sbx.api_requests();
    // resource groups, identities, role assignments and AKS clusters of the subscription, the
    // stack's applications, and the identity's credentials: 6.
    eprintln!(
        "multi-cluster: {from_empty} requests from empty, {} fully applied: {:?}",
        requests.len(),
        requests
            .iter()
            .map(|r| r.operation.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(from_empty, 5);
    assert_eq!(requests.len(), 6);
    assert!(requests.iter().all(|r| r.method == "GET"));
}

#[tokio::test]
async fn observing_200_identities_takes_a_list_per_scope_and_one_per_identity() {
    let sbx = sandbox_with(Options::default()).await;
    let (stack, graph) = graph_of("large", &large_config(200, 4));
    seed(
        &sbx,
        &["rg-ids-0", "rg-ids-1", "rg-ids-2", "rg-ids-3", "rg-data"],
        &[("rg-aks", "aks-a"), ("rg-aks", "aks-b")],
    );
    let provider = AzureProvider::new(sbx.admin.clone(), TENANT);
    let empty = provider.observe(&stack, &azure_scope(&graph)).await;
    assert!(empty.errors.is_empty(), "{:?}", empty.errors);
    write_all(&provider, &stack, &graph, &empty).await;

    sbx.clear_log();
    let started = std::time::Instant::now();
    let applied = provider.observe(&stack, &azure_scope(&graph)).await;
    let elapsed = started.elapsed();
    assert!(applied.errors.is_empty(), "{:?}", applied.errors);
    assert_eq!(applied.identities.len(), 200);
    assert_eq!(
        applied
            .identity_credentials
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        400
    );
    assert_eq!(applied.role_assignments.len(), 400);
    let requests = sbx.api_requests();
    let fic_lists = requests
        .iter()
        .filter(|r| r.path.ends_with("/federatedIdentityCredentials"))
        .count();
    eprintln!(
        "200 identities: {} requests ({fic_lists} credential lists) in {elapsed:?}",
        requests.len()
    );
    // Per subscription: resource groups (1 page), identities (2 pages of 100), role
    // assignments (5 pages: 400 + the sandbox's own 2), AKS clusters (1); the stack's
    // applications (1); one credential list per identity (200).
    assert_eq!(fic_lists, 200);
    assert_eq!(requests.len(), 1 + 2 + 5 + 1 + 1 + 200);

    // The same with 20 ms per answer: wall time is reported, not asserted.
    sbx.set_faults(wiform_sandbox::Faults {
        latency_ms: 20,
        ..Default::default()
    });
    sbx.clear_log();
    let started = std::time::Instant::now();
    let slow = provider.observe(&stack, &azure_scope(&graph)).await;
    eprintln!(
        "200 identities at 20 ms latency: {} requests in {:?}",
        sbx.api_requests().len(),
        started.elapsed()
    );
    assert_eq!(slow.identities.len(), 200);
    assert_eq!(sbx.api_requests().len(), requests.len());
}
