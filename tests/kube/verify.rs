//! `verify`'s end-to-end proof across the two halves of the test world: the engine applies a
//! config whose cluster is the real kube-apiserver (its issuer, its kubeconfig) and whose Azure is
//! the sandbox, then verifies it: the token is minted by the real kube-apiserver (TokenRequest)
//! and validated by the sandbox's Entra token endpoint against the real server's discovery
//! document and JWKS, fetched over HTTPS.

use std::collections::BTreeMap;

use wiform::engine::diff::{self, Input};
use wiform::engine::verify::{Step, VerifyInput, verify};
use wiform::engine::{apply, observe};
use wiform::graph::Graph;
use wiform::providers::azure::AzureProvider;
use wiform::providers::azure::cloud::Endpoints;
use wiform_sandbox::seed::{Seed, SeedGroup};
use wiform_sandbox::state::{ADMIN_CLIENT_ID, DEFAULT_SUBSCRIPTION, DEFAULT_TENANT, StoreError};

#[path = "../azure/support.rs"]
mod azure_support;

#[tokio::test]
async fn a_token_of_the_real_kube_apiserver_is_exchanged_at_the_sandbox_entra() {
    let server = crate::kube_server::kube_server();
    // Entra (the sandbox) fetches the real server's discovery document and JWKS: it trusts the
    // server's CA, as Azure trusts public CAs.
    let running = wiform_sandbox::start(wiform_sandbox::Options {
        trusted_ca_files: vec![server.ca_file.clone()],
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let app = &running.app;
    app.store
        .write(|s| {
            Ok::<_, StoreError>(wiform_sandbox::seed::apply(
                s,
                &Seed {
                    resource_groups: vec![SeedGroup {
                        name: "rg-verify".into(),
                        location: "westeurope".into(),
                        tags: Default::default(),
                    }],
                    ..Seed::default()
                },
                &app.base_url,
            ))
        })
        .unwrap()
        .unwrap();
    // wiform trusts the sandbox's CA and, to read the issuer URL as Entra does, the server's.
    let bundle = format!("{}\n{}", running.ca_pem(), server.ca_pem());
    let endpoints = Endpoints::sandbox(running.base_url(), &bundle).unwrap();
    let client = azure_support::client_as(
        &running,
        &endpoints,
        ADMIN_CLIENT_ID,
        azure_support::test_options(),
    );
    let provider = AzureProvider::new(client.clone(), DEFAULT_TENANT);

    let namespace = format!("verify-{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("identity.toml");
    std::fs::write(
        &path,
        format!(
            r#"version = 1
name = "verify-e2e"

[azure]
tenant_id = "{DEFAULT_TENANT}"
subscription_id = "{DEFAULT_SUBSCRIPTION}"
location = "westeurope"

[clusters.real]
issuer = "{issuer}"
kubeconfig = "{kubeconfig}"
kube_context = "kube-server"

[identities.api]
resource_group = "rg-verify"

[[service_accounts]]
cluster = "real"
namespace = "{namespace}"
name = "api"
identity = "api"

[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/rg-verify"
"#,
            issuer = server.issuer,
            kubeconfig = server.kubeconfig.display(),
        ),
    )
    .unwrap();
    let checked = wiform::config::load(&path).unwrap();
    let config = checked.config.expect("a valid config");
    let graph = Graph::build(&config);
    let reach = observe::reach(&config, dir.path());
    let clusters = observe::connect(&provider, &reach).await;
    let plan_now = || async {
        let observed = observe::observe(&provider, &clusters, &config.name, &graph).await;
        let plan = diff::plan(
            Input {
                stack: &config.name,
                config_file: "identity.toml",
                graph: &graph,
                targets: &[],
            },
            &observed,
        );
        (plan, observed)
    };
    let (plan, observed) = plan_now().await;
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let report = apply::apply(&plan, &graph, &observed, &provider, &clusters, &config.name).await;
    assert!(report.is_success(), "{report:#?}");

    let (plan, observed) = plan_now().await;
    assert!(!plan.has_changes(), "{plan:#?}");
    let report = verify(&VerifyInput {
        graph: &graph,
        plan: &plan,
        observed: &observed,
        clusters: &clusters,
        azure: &client,
        tenant_id: DEFAULT_TENANT,
        scope: "https://management.azure.com/.default",
        targets: &[],
    })
    .await;
    assert!(report.ok, "{report:#?}");
    let account = &report.accounts[0];
    let steps: BTreeMap<Step, bool> = account.steps.iter().map(|s| (s.step, s.ok)).collect();
    assert_eq!(
        steps,
        BTreeMap::from([
            (Step::Cluster, true),
            (Step::ServiceAccount, true),
            (Step::Token, true),
            (Step::Exchange, true),
            (Step::Roles, true),
            (Step::Workloads, true),
        ])
    );
    // The token came from the real server: its issuer is the server's.
    let token = account
        .steps
        .iter()
        .find(|s| s.step == Step::Token)
        .unwrap();
    assert!(token.detail.contains(&server.issuer), "{}", token.detail);
    // A pod that runs as the service account without the webhook's label: named, and a failure.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(
        clusters["real"]
            .as_ref()
            .expect("connected")
            .client()
            .clone(),
        &namespace,
    );
    pods.create(
        &kube::api::PostParams::default(),
        &serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "api-0"},
            "spec": {
                "serviceAccountName": "api",
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
            },
        }))
        .unwrap(),
    )
    .await
    .expect("the pod is created");
    let again = verify(&VerifyInput {
        graph: &graph,
        plan: &plan,
        observed: &observed,
        clusters: &clusters,
        azure: &client,
        tenant_id: DEFAULT_TENANT,
        scope: "https://management.azure.com/.default",
        targets: &[],
    })
    .await;
    assert!(!again.ok);
    let account = &again.accounts[0];
    assert_eq!(account.failed_step, Some(Step::Workloads), "{account:#?}");
    assert!(
        account
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("api-0"),
        "{account:#?}"
    );

    // And the exchange really went to the sandbox's token endpoint, validated with the
    // server's keys.
    assert!(
        running
            .app
            .log
            .entries()
            .iter()
            .any(|e| e.api == "entra" && e.path.ends_with("/oauth2/v2.0/token") && e.status == 200),
        "no token exchange in the sandbox's log"
    );
}
