//! `--sandbox` sessions: a sandbox started in this process or the one `wiform sandbox serve`
//! runs from the state directory, the preload of what example configs expect to exist, the
//! config check, signing in through azure_identity, and the standalone cluster's kubeconfig.
//!
//! Every test uses a state directory of its own and port 0 (8443 may be taken on the machine).

use std::path::{Path, PathBuf};

use serde_json::Value;
use wiform::config::model::Config;
use wiform::graph::Graph;
use wiform::providers::azure::credential::credential;
use wiform::providers::kube::{ClusterApi, KubeCluster, KubeconfigSource};
use wiform::sandbox_session::{PRELOAD_TAG, Preloaded, SandboxError, open_with};
use wiform_sandbox::state::{DEFAULT_SUBSCRIPTION, DEFAULT_TENANT, State};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .join("identity.toml")
}

fn load(path: &Path) -> (Config, Graph) {
    let checked = wiform::config::load(path).expect("the config reads");
    let config = checked
        .config
        .unwrap_or_else(|| panic!("{} is valid: {:?}", path.display(), checked.diagnostics));
    let graph = Graph::build(&config);
    (config, graph)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The `properties` of the AKS cluster `name` in a sandbox state.
fn cluster(state: &State, name: &str) -> Value {
    state
        .managed_clusters
        .values()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("cluster {name} is in the sandbox"))
        .properties
        .clone()
}

fn assert_issuer_on(properties: &Value, workload_identity: bool) {
    assert_eq!(properties["oidcIssuerProfile"]["enabled"], true);
    assert!(
        properties["oidcIssuerProfile"]["issuerURL"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://127.0.0.1:") && u.ends_with('/')),
        "{properties}"
    );
    assert_eq!(
        properties["securityProfile"]["workloadIdentity"]["enabled"],
        workload_identity
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_sandbox_is_preloaded_with_what_the_examples_expect_once() {
    let dir = tempfile::tempdir().unwrap();
    let session = open_with(dir.path(), 0).await.expect("the sandbox starts");
    assert!(session.is_in_process());
    assert!(session.warnings.is_empty(), "{:?}", session.warnings);
    assert_eq!(session.tenant_id(), DEFAULT_TENANT);
    assert_eq!(session.subscription_id(), DEFAULT_SUBSCRIPTION);
    // The secret stays out of Debug.
    let secret = session
        .running()
        .unwrap()
        .app
        .store
        .read(|s| s.clients[0].secret.clone());
    assert!(!format!("{session:?}").contains(&secret));

    let (quickstart, quickstart_graph) = load(&example("quickstart"));
    session.check_config(&quickstart).unwrap();
    let added = session
        .preload(&quickstart.name, &quickstart_graph)
        .await
        .unwrap();
    assert_eq!(
        added,
        Preloaded {
            resource_groups: strings(&["rg-workload-id"]),
            clusters: strings(&["rg-workload-id/aks-workload-id"]),
        }
    );
    assert_eq!(
        added.describe().unwrap(),
        "sandbox: added resource group rg-workload-id, AKS cluster rg-workload-id/aks-workload-id (first use)"
    );

    let (multi, multi_graph) = load(&example("multi-cluster"));
    session.check_config(&multi).unwrap();
    let added = session.preload(&multi.name, &multi_graph).await.unwrap();
    assert_eq!(
        added,
        Preloaded {
            resource_groups: strings(&["rg-identities", "rg-aks-weu", "rg-aks-neu", "rg-data"]),
            clusters: strings(&["rg-aks-weu/aks-orders-weu", "rg-aks-neu/aks-orders-neu"]),
        }
    );

    let state = session.running().unwrap().app.store.read(State::clone);
    // enable_workload_identity (the default): the issuer is on, workload identity is left for
    // wiform to turn on.
    for name in ["aks-workload-id", "aks-orders-weu", "aks-orders-neu"] {
        assert_issuer_on(&cluster(&state, name), false);
    }
    let group = state
        .resource_groups
        .values()
        .find(|g| g.name == "rg-data")
        .unwrap();
    assert_eq!(group.location, "westeurope");
    assert_eq!(group.tags[PRELOAD_TAG], "orders-platform");

    // Second use: nothing is missing, nothing is touched.
    let etags: Vec<String> = state
        .managed_clusters
        .values()
        .map(|c| c.etag.clone())
        .collect();
    assert!(
        session
            .preload(&quickstart.name, &quickstart_graph)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        session
            .preload(&multi.name, &multi_graph)
            .await
            .unwrap()
            .is_empty()
    );
    let after: Vec<String> = session.running().unwrap().app.store.read(|s| {
        s.managed_clusters
            .values()
            .map(|c| c.etag.clone())
            .collect()
    });
    assert_eq!(after, etags);

    // The state outlives the session: a new one finds everything in place.
    session.close().await;
    let again = open_with(dir.path(), 0).await.unwrap();
    assert!(
        again
            .preload(&multi.name, &multi_graph)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_serving_from_the_state_dir_is_used_instead_of_starting_one() {
    let dir = tempfile::tempdir().unwrap();
    let served = wiform_sandbox::start(wiform_sandbox::Options {
        state_dir: Some(dir.path().to_path_buf()),
        port: 0,
        ..Default::default()
    })
    .await
    .unwrap();
    // What `wiform sandbox serve` writes while it runs.
    std::fs::write(dir.path().join("endpoint"), served.base_url()).unwrap();

    let session = open_with(dir.path(), 0).await.unwrap();
    assert!(!session.is_in_process());
    assert!(session.running().is_none());
    assert_eq!(session.base_url(), served.base_url());
    assert_eq!(session.ca_pem(), served.ca_pem());

    // The secret read from the state file signs in, and the preload lands in that sandbox.
    let (config, graph) = load(&example("quickstart"));
    let added = session.preload(&config.name, &graph).await.unwrap();
    assert_eq!(added.clusters, strings(&["rg-workload-id/aks-workload-id"]));
    let properties = served.app.store.read(|s| cluster(s, "aks-workload-id"));
    assert_issuer_on(&properties, false);
    drop(session);

    // A stale endpoint file (nothing answers there) starts a sandbox here instead.
    let port = served.addr.port();
    served.stop().await;
    let session = open_with(dir.path(), 0).await.unwrap();
    assert!(session.is_in_process());
    assert_ne!(session.base_url(), format!("https://127.0.0.1:{port}"));
    // Same state: the cluster preloaded through the served sandbox is there.
    assert!(
        session
            .preload(&config.name, &graph)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_for_another_subscription_is_refused_with_the_sandboxs_ids() {
    let dir = tempfile::tempdir().unwrap();
    let session = open_with(dir.path(), 0).await.unwrap();
    let text = std::fs::read_to_string(example("multi-cluster"))
        .unwrap()
        .replace(DEFAULT_SUBSCRIPTION, "dddddddd-0000-4000-8000-000000000009")
        .replace(
            "kube_context = \"aks-orders-neu\"",
            "kube_context = \"aks-orders-neu\"\nsubscription_id = \"eeeeeeee-0000-4000-8000-000000000009\"",
        );
    let path = dir.path().join("identity.toml");
    std::fs::write(&path, text).unwrap();
    let (config, _) = load(&path);
    let error = session.check_config(&config).unwrap_err();
    assert!(matches!(error, SandboxError::ForeignIds { .. }));
    let message = error.to_string();
    for expected in [
        "[azure] subscription_id is dddddddd-0000-4000-8000-000000000009",
        "[clusters.neu] subscription_id is eeeeeeee-0000-4000-8000-000000000009",
        &format!(
            "the sandbox emulates tenant {DEFAULT_TENANT} and subscription {DEFAULT_SUBSCRIPTION}: use them in [azure] to try this config on the sandbox"
        ),
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} not in:\n{message}"
        );
    }
    assert!(!message.contains("tenant_id is"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_settings_get_a_token_through_azure_identity() {
    let dir = tempfile::tempdir().unwrap();
    let session = open_with(dir.path(), 0).await.unwrap();
    let settings = session.credential_settings();
    // The secret is redacted where the settings are shown.
    assert!(format!("{settings:?}").contains("<redacted>"));
    let credential = credential(&settings).expect("the credential builds");
    let token = credential
        .get_token(&[session.endpoints().arm_scope.as_str()], None)
        .await
        .expect("a token");
    assert_eq!(token.token.secret().split('.').count(), 3, "a JWT");
    let entra = session
        .running()
        .unwrap()
        .app
        .log
        .entries()
        .into_iter()
        .filter(|e| e.api == "entra" && e.status == 200)
        .count();
    assert_eq!(
        entra, 1,
        "one token request to the sandbox's Entra endpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_clusters_kubeconfig_connects() {
    let dir = tempfile::tempdir().unwrap();
    let session = open_with(dir.path(), 0).await.unwrap();
    let source = session.standalone_kubeconfig().await.unwrap();
    assert!(matches!(
        source,
        KubeconfigSource::Yaml { context: None, .. }
    ));
    let cluster = KubeCluster::connect("standalone", &source)
        .await
        .expect("the kubeconfig loads");
    assert_eq!(
        cluster.server(),
        format!("{}/k8s/sandbox", session.base_url())
    );
    let observed = cluster
        .observe("s", &strings(&["default", "kube-system"]))
        .await
        .expect("the admin lists namespaces");
    assert!(observed.namespace("default").is_some());
    assert!(observed.namespace("kube-system").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_falls_back_to_a_free_one_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let session = open_with(dir.path(), port).await.unwrap();
    assert!(session.is_in_process());
    assert_ne!(session.base_url(), format!("https://127.0.0.1:{port}"));
    assert_eq!(session.warnings.len(), 1);
    let warning = &session.warnings[0];
    assert!(
        warning.starts_with(&format!("port {port} is not free"))
            && warning.contains(session.base_url())
            && warning.contains("issuer URLs"),
        "{warning}"
    );
}
