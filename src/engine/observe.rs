//! Observing everything a plan needs, concurrently: Azure (one provider, list calls per scope)
//! and each cluster (list calls per cluster), and reaching the clusters in the first place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use futures::future::join_all;
use serde::Serialize;

use crate::config::model::Config;
use crate::error::Explain;
use crate::graph::Graph;
use crate::providers::azure::observe::{AzureObservation, ObserveScope};
use crate::providers::azure::{AzureApi, AzureProvider};
use crate::providers::kube::{
    ClusterApi, ClusterObservation, KubeCluster, KubeError, KubeconfigSource,
};

/// Everything observed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub azure: AzureObservation,
    /// Each cluster's observation, or why it could not be made (unreachable, refused).
    pub clusters: BTreeMap<String, Result<ClusterObservation, ClusterFailure>>,
}

impl Observed {
    /// The observation of cluster `key`, when it could be made.
    pub fn cluster(&self, key: &str) -> Option<&ClusterObservation> {
        self.clusters.get(key)?.as_ref().ok()
    }
}

/// Why a cluster could not be observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterFailure {
    pub message: String,
    pub hint: Option<String>,
}

/// How each cluster of the config is reached.
#[derive(Debug, Clone)]
pub enum Reach {
    /// A kubeconfig (file and context, or text).
    Kubeconfig(KubeconfigSource),
    /// An AKS cluster without `kube_context`: its user kubeconfig, read from ARM.
    AksUser {
        subscription: String,
        resource_group: String,
        name: String,
    },
}

/// How to reach every cluster of `config`: its kubeconfig context, else (AKS) the user
/// credential from ARM.
pub fn reach(config: &Config, base_dir: &Path) -> BTreeMap<String, Reach> {
    config
        .clusters
        .iter()
        .map(|(key, cluster)| {
            let reach = match KubeconfigSource::for_cluster(cluster, base_dir) {
                Some(source) => Reach::Kubeconfig(source),
                None => Reach::AksUser {
                    subscription: cluster.subscription_id.as_ref().map_or_else(
                        || config.azure.subscription_id.value.clone(),
                        |s| s.value.clone(),
                    ),
                    resource_group: cluster
                        .resource_group
                        .as_ref()
                        .map(|r| r.value.clone())
                        .unwrap_or_default(),
                    name: cluster
                        .name
                        .as_ref()
                        .map(|n| n.value.clone())
                        .unwrap_or_default(),
                },
            };
            (key.value.clone(), reach)
        })
        .collect()
}

impl Explain for ClusterFailure {
    fn message(&self) -> String {
        self.message.clone()
    }

    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

pub fn kube_failure(error: &KubeError) -> ClusterFailure {
    ClusterFailure {
        message: error.message(),
        hint: error.hint(),
    }
}

/// Connects to every cluster (concurrently).
pub async fn connect(
    azure: &AzureProvider,
    reach: &BTreeMap<String, Reach>,
) -> BTreeMap<String, Result<KubeCluster, ClusterFailure>> {
    let connections = reach.iter().map(|(key, how)| async move {
        let source = match how {
            Reach::Kubeconfig(source) => Ok(source.clone()),
            Reach::AksUser {
                subscription,
                resource_group,
                name,
            } => azure
                .user_kubeconfig_of(subscription, resource_group, name)
                .await
                .map(|yaml| yaml.into_source(None))
                .map_err(|e| ClusterFailure {
                    message: e.to_string(),
                    hint: e.hint(),
                }),
        };
        let cluster = match source {
            Ok(source) => KubeCluster::connect(key, &source)
                .await
                .map_err(|e| kube_failure(&e)),
            Err(failure) => Err(failure),
        };
        (key.clone(), cluster)
    });
    join_all(connections).await.into_iter().collect()
}

/// The namespaces the graph names in each cluster (namespaces and service accounts).
fn namespaces_by_cluster(graph: &Graph) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in graph.node_ids() {
        let node = graph.node(id);
        if let (Some(cluster), Some(namespace)) = (&node.cluster, node.resource.kube_namespace()) {
            out.entry(cluster.clone())
                .or_default()
                .insert(namespace.to_string());
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}

/// What Azure must be read for `graph`: each kind adds what it needs.
pub fn azure_scope(graph: &Graph) -> ObserveScope {
    let mut scope = ObserveScope::default();
    // The config's subscription always: what the stack owns there is found (and pruned) even
    // when the config no longer declares an identity or resource group in it.
    if !graph.subscription().is_empty() {
        scope
            .subscriptions
            .insert(graph.subscription().to_ascii_lowercase());
    }
    for id in graph.node_ids() {
        graph.node(id).resource.observe_scope(&mut scope);
    }
    scope
}

/// Observes Azure and every cluster at once.
pub async fn observe<A: AzureApi + Sync, C: ClusterApi + Sync>(
    azure: &A,
    clusters: &BTreeMap<String, Result<C, ClusterFailure>>,
    stack: &str,
    graph: &Graph,
) -> Observed {
    let namespaces = namespaces_by_cluster(graph);
    let scope = azure_scope(graph);
    let kube = clusters.iter().map(|(key, cluster)| {
        let named = namespaces.get(key).cloned().unwrap_or_default();
        async move {
            let result = match cluster {
                Ok(cluster) => cluster
                    .observe(stack, &named)
                    .await
                    .map_err(|e| kube_failure(&e)),
                Err(failure) => Err(failure.clone()),
            };
            (key.clone(), result)
        }
    });
    let (azure, clusters) = futures::join!(azure.observe(stack, &scope), join_all(kube));
    Observed {
        azure,
        clusters: clusters.into_iter().collect(),
    }
}
