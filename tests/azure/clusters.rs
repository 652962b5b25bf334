//! AKS managed clusters against the sandbox: reads (GET and the paged subscription list),
//! turning on the OIDC issuer and workload identity (the long-running PUT of the whole cluster,
//! `If-Match`, a running operation waited out), and the user kubeconfig the Kubernetes provider
//! connects with.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wiform::error::Explain;
use wiform::providers::azure::AzureProvider;
use wiform::providers::azure::client::{Event, Request};
use wiform::providers::azure::clusters::{API_VERSION, LiveCluster};
use wiform::providers::kube::{ClusterApi, KubeCluster};
use wiform_sandbox::state::StoreError;
use wiform_sandbox::{App, Faults};

use crate::support::{SUB, Sandbox, TENANT, sandbox};

const RG: &str = "rg-aks";

fn provider(sbx: &Sandbox) -> AzureProvider {
    AzureProvider::new(sbx.admin.clone(), TENANT)
}

fn cluster_path(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}?api-version={API_VERSION}"
    )
}

/// Settled clusters (as `wiform sandbox seed` makes them): (resource group, name, OIDC issuer,
/// workload identity). Their resource groups are made too.
fn seed(sbx: &Sandbox, clusters: &[(&str, &str, bool, bool)]) {
    sbx.seed(&[], clusters);
}

async fn get(sbx: &Sandbox, rg: &str, name: &str) -> LiveCluster {
    provider(sbx)
        .get_cluster(SUB, rg, name)
        .await
        .unwrap()
        .expect("the cluster exists")
}

/// The cluster as the API shows it, raw.
async fn raw(sbx: &Sandbox, rg: &str, name: &str) -> Value {
    sbx.admin
        .send(&Request::arm(Method::GET, cluster_path(rg, name)))
        .await
        .unwrap()
        .value()
}

/// Requests to the cluster itself (not its operations) with `method`.
fn cluster_requests(sbx: &Sandbox, name: &str, method: &str) -> usize {
    let suffix = format!("/managedclusters/{}", name.to_ascii_lowercase());
    sbx.api_requests()
        .iter()
        .filter(|r| r.method == method && r.path.to_ascii_lowercase().ends_with(&suffix))
        .count()
}

/// Polls of an `Azure-AsyncOperation` status URL.
fn operation_polls(sbx: &Sandbox) -> usize {
    sbx.api_requests()
        .iter()
        .filter(|r| {
            r.method == "GET" && r.path.contains("/locations/") && r.path.contains("/operations/")
        })
        .count()
}

/// Changes cluster `name` behind the client's back, as another writer would: a new eTag and a
/// tag. Direct on the sandbox's store, so that it lands between two requests of the client.
fn change_behind_the_back(app: &App, name: &str, n: usize) {
    app.store
        .write(|s| {
            for cluster in s.managed_clusters.values_mut() {
                if cluster.name.eq_ignore_ascii_case(name) {
                    cluster.etag = format!("changed-{n}");
                    cluster
                        .tags
                        .insert("changed-by".into(), format!("other-{n}"));
                }
            }
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

/// Watches the sandbox log and changes the cluster right after each of its first `times`
/// successful GETs (the sandbox's latency fault leaves time before the client's next request
/// arrives). Returns how many changes it made.
fn change_after_each_read(sbx: &Sandbox, name: &str, times: usize) -> Arc<AtomicUsize> {
    let app = sbx.running.app.clone();
    let changes = Arc::new(AtomicUsize::new(0));
    let made = changes.clone();
    let name = name.to_ascii_lowercase();
    let suffix = format!("/managedclusters/{name}");
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while made.load(Ordering::SeqCst) < times && tokio::time::Instant::now() < deadline {
            let reads = app
                .log
                .entries()
                .iter()
                .filter(|r| {
                    r.method == "GET"
                        && r.status == 200
                        && r.path.to_ascii_lowercase().ends_with(&suffix)
                })
                .count();
            while made.load(Ordering::SeqCst) < reads.min(times) {
                let n = made.fetch_add(1, Ordering::SeqCst) + 1;
                change_behind_the_back(&app, &name, n);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    changes
}

#[tokio::test]
async fn a_cluster_is_read_with_its_issuer_and_settings_and_a_missing_one_is_none() {
    let sbx = sandbox().await;
    seed(
        &sbx,
        &[
            (RG, "aks-on", true, true),
            (RG, "aks-oidc", true, false),
            (RG, "aks-off", false, false),
        ],
    );
    sbx.clear_log();
    let azure = provider(&sbx);

    let on = azure.get_cluster(SUB, RG, "aks-on").await.unwrap().unwrap();
    let issuer = on.issuer_url.clone().unwrap();
    assert!(
        issuer.starts_with(&format!("{}/oidc/{TENANT}/", sbx.running.base_url())),
        "{issuer}"
    );
    assert!(issuer.ends_with('/'), "{issuer}");
    assert!(on.oidc_issuer_enabled && on.workload_identity_enabled);
    assert!(on.workload_identity_ready());
    assert_eq!(on.subscription_id, SUB.to_ascii_lowercase());
    assert_eq!(
        (on.resource_group.as_str(), on.name.as_str()),
        (RG, "aks-on")
    );
    assert_eq!(on.location, "westeurope");
    assert_eq!(on.provisioning_state, "Succeeded");
    assert!(on.etag.is_some());
    assert_eq!(on.id, on.id.to_ascii_lowercase());

    let oidc_only = get(&sbx, RG, "aks-oidc").await;
    assert!(oidc_only.oidc_issuer_enabled && !oidc_only.workload_identity_enabled);
    assert!(oidc_only.issuer_url.is_some());
    assert_ne!(
        oidc_only.issuer_url, on.issuer_url,
        "each cluster has its own issuer"
    );

    let off = get(&sbx, RG, "aks-off").await;
    assert!(!off.oidc_issuer_enabled && !off.workload_identity_enabled);
    assert_eq!(off.issuer_url, None);

    // Names compare without regard to case, as in ARM.
    let upper = azure
        .get_cluster(SUB, "RG-AKS", "AKS-ON")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(upper, on);

    assert_eq!(azure.get_cluster(SUB, RG, "nope").await.unwrap(), None);
    assert_eq!(
        azure.get_cluster(SUB, "rg-nope", "aks-on").await.unwrap(),
        None
    );
    // One GET each.
    assert_eq!(sbx.api_requests().len(), 6);
}

#[tokio::test]
async fn clusters_are_listed_per_subscription_over_pages() {
    let sbx = sandbox().await;
    let clusters = [
        ("rg-a", "aks-1", true, true),
        ("rg-a", "aks-2", true, false),
        ("rg-a", "aks-3", false, false),
        ("rg-b", "aks-4", true, true),
        ("rg-b", "aks-5", false, false),
        ("rg-b", "aks-6", true, true),
    ];
    seed(&sbx, &clusters);
    sbx.clear_log();
    let mut listed = provider(&sbx).list_clusters(SUB).await.unwrap();
    // Six clusters, pages of five: two requests.
    assert_eq!(sbx.api_requests().len(), 2);
    assert_eq!(listed.len(), 6);
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    for ((rg, name, oidc, wi), live) in clusters.iter().zip(&listed) {
        assert!(live.is(SUB, rg, name), "{live:?}");
        assert_eq!(live.oidc_issuer_enabled, *oidc, "{name}");
        assert_eq!(live.workload_identity_enabled, *wi, "{name}");
        assert_eq!(live.issuer_url.is_some(), *oidc, "{name}");
        // A list item reads the same as a GET of the cluster.
        assert_eq!(live, &get(&sbx, rg, name).await);
    }
}

#[tokio::test]
async fn enabling_workload_identity_polls_the_operation_and_returns_the_issuer() {
    let sbx = sandbox().await;
    seed(&sbx, &[(RG, "aks-off", false, false)]);
    let before = get(&sbx, RG, "aks-off").await;
    sbx.set_faults(Faults {
        lro_polls: 3,
        ..Default::default()
    });
    sbx.clear_log();

    let enabled = provider(&sbx)
        .enable_workload_identity(&before)
        .await
        .unwrap();
    assert!(enabled.oidc_issuer_enabled && enabled.workload_identity_enabled);
    let issuer = enabled.issuer_url.clone().expect("an issuer URL");
    assert!(
        issuer.starts_with(&format!("{}/oidc/", sbx.running.base_url())),
        "{issuer}"
    );
    assert_eq!(enabled.provisioning_state, "Succeeded");
    assert_ne!(enabled.etag, before.etag);

    // One read, one PUT, the operation polled until done (3 × InProgress, then Succeeded), and
    // the final read of the cluster.
    assert_eq!(cluster_requests(&sbx, "aks-off", "PUT"), 1);
    assert_eq!(cluster_requests(&sbx, "aks-off", "GET"), 2);
    assert_eq!(operation_polls(&sbx), 4);
    assert!(
        sbx.api_requests().iter().all(|r| r.status < 300),
        "{:?}",
        sbx.api_requests()
    );

    let action = format!("enable workload identity on AKS cluster {RG}/aks-off");
    let polls: Vec<String> = sbx
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Polling {
                action: a, status, ..
            } if a == action => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(
        polls,
        ["InProgress", "InProgress", "InProgress", "Succeeded"]
    );

    // What ARM shows now is what the call returned.
    assert_eq!(get(&sbx, RG, "aks-off").await, enabled);

    // Already on: the same cluster back, no request.
    sbx.clear_log();
    let again = provider(&sbx)
        .enable_workload_identity(&enabled)
        .await
        .unwrap();
    assert_eq!(again, enabled);
    assert!(sbx.api_requests().is_empty(), "{:?}", sbx.api_requests());
}

#[tokio::test]
async fn enabling_keeps_the_rest_of_the_cluster_and_the_issuer_url() {
    let sbx = sandbox().await;
    seed(&sbx, &[(RG, "aks-oidc", true, false)]);
    // A cluster made by a raw PUT with its own settings (as `az aks create` would).
    let body = json!({
        "location": "westeurope",
        "tags": {"team": "a", "cost-center": "42"},
        "sku": {"name": "Base", "tier": "Standard"},
        "properties": {
            "dnsPrefix": "custom-dns",
            "kubernetesVersion": "1.32",
            "agentPoolProfiles": [
                {"name": "system", "count": 2, "vmSize": "Standard_D4s_v5", "mode": "System"},
                {"name": "user", "count": 5, "vmSize": "Standard_D8s_v5", "mode": "User"}
            ],
            "networkProfile": {"networkPlugin": "azure", "networkPolicy": "cilium"}
        }
    });
    sbx.admin
        .send_long_running(&Request::arm(Method::PUT, cluster_path(RG, "aks-custom")).json(body))
        .await
        .unwrap();
    let before_raw = raw(&sbx, RG, "aks-custom").await;
    let live = get(&sbx, RG, "aks-custom").await;
    assert!(!live.oidc_issuer_enabled);

    let azure = provider(&sbx);
    azure.enable_workload_identity(&live).await.unwrap();
    let after_raw = raw(&sbx, RG, "aks-custom").await;
    assert_eq!(after_raw["properties"]["kubernetesVersion"], "1.32");
    assert_eq!(
        after_raw["properties"]["agentPoolProfiles"],
        before_raw["properties"]["agentPoolProfiles"]
    );
    assert_eq!(after_raw["tags"], json!({"team": "a", "cost-center": "42"}));
    assert_eq!(after_raw["sku"]["tier"], "Standard");
    // Everything but the eTag and the two profiles is as it was.
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("eTag");
        let props = v["properties"].as_object_mut().unwrap();
        props.remove("oidcIssuerProfile");
        props.remove("securityProfile");
        v
    };
    assert_eq!(strip(after_raw.clone()), strip(before_raw));

    // A cluster whose issuer is on already keeps its URL (the issuer is never turned off or
    // replaced).
    let oidc = get(&sbx, RG, "aks-oidc").await;
    let enabled = azure.enable_workload_identity(&oidc).await.unwrap();
    assert_eq!(enabled.issuer_url, oidc.issuer_url);
    assert!(enabled.workload_identity_enabled && enabled.oidc_issuer_enabled);
}

#[tokio::test]
async fn a_cluster_changed_between_read_and_write_is_read_again() {
    let sbx = sandbox().await;
    seed(&sbx, &[(RG, "aks-off", false, false)]);
    let live = get(&sbx, RG, "aks-off").await;
    // Each request waits 150 ms in the sandbox before it is handled: time for the watcher to
    // change the cluster between the client's read and its PUT.
    sbx.set_faults(Faults {
        latency_ms: 150,
        ..Default::default()
    });
    sbx.clear_log();
    let changes = change_after_each_read(&sbx, "aks-off", 1);

    let enabled = provider(&sbx)
        .enable_workload_identity(&live)
        .await
        .unwrap();
    assert_eq!(changes.load(Ordering::SeqCst), 1);
    assert!(enabled.workload_identity_ready());
    // The first PUT was refused on its If-Match; the cluster was read again and written.
    assert_eq!(sbx.count_status(412), 1, "{:?}", sbx.api_requests());
    assert_eq!(cluster_requests(&sbx, "aks-off", "PUT"), 2);
    // The write built on the second read: the other writer's tag survived it.
    let after = raw(&sbx, RG, "aks-off").await;
    assert_eq!(after["tags"]["changed-by"], "other-1");
}

#[tokio::test]
async fn a_cluster_that_keeps_changing_fails_with_the_precondition_error() {
    let sbx = sandbox().await;
    seed(&sbx, &[(RG, "aks-off", false, false)]);
    let live = get(&sbx, RG, "aks-off").await;
    sbx.set_faults(Faults {
        latency_ms: 150,
        ..Default::default()
    });
    sbx.clear_log();
    change_after_each_read(&sbx, "aks-off", 10);

    let error = provider(&sbx)
        .enable_workload_identity(&live)
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(412), "{error}");
    assert_eq!(
        error.action(),
        format!("enable workload identity on AKS cluster {RG}/aks-off")
    );
    assert!(error.hint().unwrap().contains("changed"), "{error}");
    // Three tries, each a read and a refused PUT.
    assert_eq!(cluster_requests(&sbx, "aks-off", "PUT"), 3);
    assert_eq!(sbx.count_status(412), 3);
    assert!(!get(&sbx, RG, "aks-off").await.workload_identity_enabled);
}

#[tokio::test]
async fn a_running_operation_is_waited_out() {
    let sbx = sandbox().await;
    seed(&sbx, &[(RG, "aks-off", false, false)]);
    let live = get(&sbx, RG, "aks-off").await;
    sbx.set_faults(Faults {
        lro_polls: 3,
        ..Default::default()
    });
    // Someone else's update: a PUT that adds a tag, its operation left running.
    let mut other = raw(&sbx, RG, "aks-off").await;
    other["tags"] = json!({"owner": "someone"});
    let started = sbx
        .admin
        .send(&Request::arm(Method::PUT, cluster_path(RG, "aks-off")).json(other))
        .await
        .unwrap();
    let operation = started.header("azure-asyncoperation").unwrap().to_string();
    sbx.clear_log();

    // Their client polls its operation to the end once wiform's write has been refused.
    let poller = {
        let admin = sbx.admin.clone();
        let app = sbx.running.app.clone();
        async move {
            while !app.log.entries().iter().any(|r| r.status == 409) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for _ in 0..10 {
                let status = admin
                    .send(&Request::arm(Method::GET, &operation))
                    .await
                    .unwrap()
                    .value();
                if status["status"] != "InProgress" {
                    return status["status"].as_str().unwrap().to_string();
                }
            }
            panic!("the other operation never finished");
        }
    };
    let azure = provider(&sbx);
    let (enabled, other_status) = tokio::join!(azure.enable_workload_identity(&live), poller);
    assert_eq!(other_status, "Succeeded");
    let enabled = enabled.unwrap();
    assert!(enabled.workload_identity_ready());

    let refused: Vec<_> = sbx
        .api_requests()
        .into_iter()
        .filter(|r| r.status == 409)
        .collect();
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|r| r.error_code.as_deref() == Some("OperationNotAllowed")),
        "{refused:?}"
    );
    let action = format!("enable workload identity on AKS cluster {RG}/aks-off");
    assert!(
        sbx.events().iter().any(|e| matches!(e,
            Event::Waiting { action: a, waiting_for, .. }
                if *a == action && waiting_for == "the cluster's running operation to finish")),
        "{:?}",
        sbx.events()
    );
    // wiform's write came after the other one and kept its tag.
    assert_eq!(raw(&sbx, RG, "aks-off").await["tags"]["owner"], "someone");
}

#[tokio::test]
async fn the_user_kubeconfig_connects_the_kubernetes_provider_to_the_cluster() {
    let sbx = sandbox().await;
    seed(&sbx, &[(RG, "aks-on", true, true)]);
    let live = get(&sbx, RG, "aks-on").await;
    sbx.clear_log();

    let kubeconfig = provider(&sbx).user_kubeconfig(&live).await.unwrap();
    assert_eq!(sbx.api_requests().len(), 1);
    let request = &sbx.api_requests()[0];
    assert_eq!(request.method, "POST");
    assert!(
        request.path.ends_with("/listClusterUserCredential"),
        "{}",
        request.path
    );

    let parsed = kube::config::Kubeconfig::from_yaml(kubeconfig.expose()).unwrap();
    let server = parsed.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.server.clone())
        .unwrap();
    assert!(
        server.starts_with(&format!("{}/k8s/", sbx.running.base_url())),
        "{server}"
    );
    // The credential never shows in Debug.
    let token = kubeconfig
        .expose()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .expect("a bearer token")
        .to_string();
    assert!(!format!("{kubeconfig:?}").contains(&token));

    // The Kubernetes provider connects with it and finds the issuer ARM reported.
    let cluster = KubeCluster::connect("prod", &kubeconfig.into_source(None))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.server(), server.trim_end_matches('/'));
    let discovered = cluster.issuer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Some(discovered.issuer), live.issuer_url);
}

#[tokio::test]
async fn a_reader_may_read_clusters_but_not_enable_or_fetch_credentials() {
    let sbx = sandbox().await;
    seed(&sbx, &[(RG, "aks-off", false, false)]);
    let reader = AzureProvider::new(sbx.reader(), TENANT);
    let live = reader
        .get_cluster(SUB, RG, "aks-off")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader.list_clusters(SUB).await.unwrap(), vec![live.clone()]);

    let error = reader.user_kubeconfig(&live).await.unwrap_err();
    assert!(error.is_code("AuthorizationFailed"), "{error}");
    assert_eq!(
        error.action(),
        format!("read the user kubeconfig of AKS cluster {RG}/aks-off")
    );
    let hint = error.hint().unwrap();
    assert!(
        hint.contains(
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
        ),
        "{hint}"
    );

    let error = reader.enable_workload_identity(&live).await.unwrap_err();
    assert!(error.is_code("AuthorizationFailed"), "{error}");
    assert!(
        error
            .hint()
            .unwrap()
            .contains("Microsoft.ContainerService/managedClusters/write"),
        "{error}"
    );
    assert!(!get(&sbx, RG, "aks-off").await.oidc_issuer_enabled);
}
