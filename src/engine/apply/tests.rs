//! The apply walk against in-memory providers: what starts when, what a failure skips, that
//! deletes wait for everything else, and that outputs of objects made now reach their
//! dependents.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::config::{SourceFile, check};
use crate::engine::diff::{self, Input};
use crate::engine::plan::Plan;
use crate::kinds::Kind;
use crate::ownership::{Marker, Owner};
use crate::providers::azure::clusters::live_cluster;
use crate::providers::azure::fake::{FakeAzure, client_id_of, principal_id_of};
use crate::providers::azure::identities::LiveIdentity;
use crate::providers::azure::observe::AzureObservation;
use crate::providers::kube::fake::FakeCluster;
use crate::providers::kube::{ClusterObservation, ListVersions};

const STACK: &str = "shop";
const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const ISSUER: &str = "https://issuer.example/prod/";

const CONFIG: &str = r#"
version = 1
name = "shop"
[azure]
tenant_id = "aaaaaaaa-0000-4000-8000-000000000001"
subscription_id = "bbbbbbbb-0000-4000-8000-000000000001"
location = "westeurope"
[resource_groups.rg-id]
[clusters.prod]
resource_group = "rg-aks"
name = "aks-prod"
[identities.api]
resource_group = "rg-id"
[identities.worker]
resource_group = "rg-id"
[[service_accounts]]
cluster = "prod"
namespace = "orders"
name = "api"
identity = "api"
[[service_accounts]]
cluster = "prod"
namespace = "orders"
name = "worker"
identity = "worker"
[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/rg-id"
"#;

fn graph(text: &str) -> Graph {
    let checked = check(SourceFile {
        name: "identity.toml".into(),
        text: text.into(),
    });
    Graph::build(&checked.config.expect("valid config"))
}

/// Azure holds the AKS cluster `prod` (issuer and workload identity on), and `extra`.
fn azure(extra: impl FnOnce(&mut AzureObservation)) -> AzureObservation {
    let cluster = live_cluster(&json!({
        "id": format!("/subscriptions/{SUB}/resourcegroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"),
        "location": "westeurope",
        "properties": {
            "provisioningState": "Succeeded",
            "oidcIssuerProfile": {"enabled": true, "issuerURL": ISSUER},
            "securityProfile": {"workloadIdentity": {"enabled": true}},
        },
    }))
    .unwrap();
    let mut observation = AzureObservation::default();
    observation
        .clusters
        .insert(cluster.id.to_ascii_lowercase(), cluster);
    extra(&mut observation);
    observation
}

struct Run {
    plan: Plan,
    azure: FakeAzure,
    clusters: BTreeMap<String, Result<FakeCluster, ClusterFailure>>,
    observed: Observed,
    graph: Graph,
}

impl Run {
    fn new(config: &str, observation: AzureObservation) -> Self {
        let graph = graph(config);
        let kube = ClusterObservation::assemble(
            "prod",
            STACK,
            &[],
            &[],
            Vec::new(),
            ListVersions::default(),
        );
        let observed = Observed {
            azure: observation.clone(),
            clusters: BTreeMap::from([("prod".to_string(), Ok(kube))]),
        };
        let plan = diff::plan(
            Input {
                stack: STACK,
                config_file: "identity.toml",
                graph: &graph,
                targets: &[],
            },
            &observed,
        );
        assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
        Run {
            plan,
            azure: FakeAzure::new(observation),
            clusters: BTreeMap::from([("prod".to_string(), Ok(FakeCluster::new("prod")))]),
            observed,
            graph,
        }
    }

    async fn apply(&self, options: Options) -> Report {
        apply_with(
            &self.plan,
            &self.graph,
            &self.observed,
            &self.azure,
            &self.clusters,
            STACK,
            options,
        )
        .await
    }

    fn kube_calls(&self) -> Vec<String> {
        match &self.clusters["prod"] {
            Ok(cluster) => cluster.calls(),
            Err(_) => Vec::new(),
        }
    }

    fn outcome(report: &Report, address: &str) -> Outcome {
        report
            .outcomes
            .iter()
            .find(|(a, _)| a == address)
            .map(|(_, o)| o.clone())
            .unwrap_or_else(|| panic!("no outcome for {address}: {:#?}", report.outcomes))
    }
}

fn position(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix} in {calls:#?}"))
}

#[tokio::test]
async fn every_change_starts_after_what_it_needs() {
    let run = Run::new(CONFIG, azure(|_| {}));
    let report = run.apply(Options::default()).await;
    assert!(report.is_success(), "{:#?}", report.outcomes);
    let azure = run.azure.calls();
    assert!(position(&azure, "put_resource_group rg-id") < position(&azure, "put_identity api"));
    assert!(
        position(&azure, "put_identity api")
            < position(&azure, "put_identity_credential prod-orders-api")
    );
    assert!(position(&azure, "put_identity api") < position(&azure, "put_role_assignment"));
    let kube = run.kube_calls();
    assert!(
        position(&kube, "apply_namespace orders")
            < position(&kube, "apply_service_account orders/api")
    );
    // Nothing in the cluster needed writing.
    assert!(
        !azure
            .iter()
            .any(|c| c.starts_with("enable_workload_identity"))
    );
    // Every planned change has its outcome.
    let changes = run
        .plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .count();
    assert_eq!(report.outcomes.len(), run.plan.changes.len());
    assert_eq!(
        report
            .outcomes
            .iter()
            .filter(|(_, o)| *o == Outcome::Applied)
            .count(),
        changes
    );
}

#[tokio::test]
async fn outputs_of_objects_made_now_reach_their_dependents() {
    let run = Run::new(CONFIG, azure(|_| {}));
    run.apply(Options::default()).await;
    let kube = run.kube_calls();
    assert!(
        kube.contains(&format!(
            "apply_service_account orders/api client_id={}",
            client_id_of("api")
        )),
        "{kube:#?}"
    );
    assert!(kube.contains(&format!(
        "apply_service_account orders/worker client_id={}",
        client_id_of("worker")
    )));
    let azure = run.azure.calls();
    assert!(
        azure.iter().any(|c| c.starts_with(&format!(
            "put_role_assignment principal={}",
            principal_id_of("api")
        ))),
        "{azure:#?}"
    );
    // The cluster's issuer, known from the plan, reaches the credential.
    assert!(azure.contains(&format!(
        "put_identity_credential prod-orders-api issuer={ISSUER} subject=system:serviceaccount:orders:api"
    )));
}

#[tokio::test]
async fn a_failure_skips_its_dependents_and_nothing_else() {
    let run = Run::new(CONFIG, azure(|_| {}));
    run.azure.fail("put_identity api");
    let report = run.apply(Options::default()).await;
    assert!(!report.is_success());
    assert!(matches!(
        Run::outcome(&report, "identity.api"),
        Outcome::Failed { ref message, .. } if message.contains("the fake refuses")
    ));
    for dependent in [
        "federated_credential.api/prod:orders/api",
        "service_account.prod/orders/api",
        &format!("role_grant.api[\"Reader\" @ /subscriptions/{SUB}/resourceGroups/rg-id]"),
    ] {
        assert_eq!(
            Run::outcome(&report, dependent),
            Outcome::Skipped {
                because: "identity.api".parse().unwrap()
            },
            "{dependent}"
        );
    }
    // The other identity and what hangs on it went ahead.
    for independent in [
        "identity.worker",
        "federated_credential.worker/prod:orders/worker",
        "service_account.prod/orders/worker",
        "namespace.prod/orders",
        "resource_group.rg-id",
    ] {
        assert_eq!(
            Run::outcome(&report, independent),
            Outcome::Applied,
            "{independent}"
        );
    }
    let azure = run.azure.calls();
    assert!(
        !azure.iter().any(|c| c.contains("prod-orders-api")),
        "{azure:#?}"
    );
    assert!(!azure.iter().any(|c| c.starts_with("put_role_assignment")));
}

/// Identity `name` in `rg-id`, this stack's, with one credential `credential` (subject
/// `system:serviceaccount:orders:SUBJECT`).
fn owned_identity_with(
    observation: &mut AzureObservation,
    name: &str,
    credential: &str,
    subject: &str,
) {
    let identity = LiveIdentity {
        id: format!(
            "/subscriptions/{SUB}/resourcegroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        ),
        subscription_id: SUB.into(),
        resource_group: "rg-id".into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: BTreeMap::new(),
        owner: Owner::Stack(Marker {
            stack: STACK.into(),
            spec_hash: None,
        }),
        client_id: format!("client-{name}"),
        principal_id: format!("principal-{name}"),
        tenant_id: "tenant".into(),
    };
    let credential = crate::providers::azure::federated::LiveCredential {
        parent: crate::providers::azure::federated::CredentialParent::ManagedIdentity(
            identity.id.clone(),
        ),
        id: format!("{}/federatedIdentityCredentials/{credential}", identity.id),
        name: credential.into(),
        issuer: ISSUER.into(),
        subject: format!("system:serviceaccount:orders:{subject}"),
        audiences: vec!["api://AzureADTokenExchange".into()],
        description: None,
    };
    observation
        .identity_credentials
        .insert(identity.key(), vec![credential]);
    observation.identities.insert(identity.key(), identity);
}

/// An identity the stack owns that the config no longer names, with a credential.
fn with_orphan(observation: &mut AzureObservation) {
    owned_identity_with(observation, "old", "old-fic", "old");
}

#[tokio::test]
async fn deletes_wait_for_every_other_change_and_go_dependents_first() {
    let run = Run::new(CONFIG, azure(with_orphan));
    let deletes: Vec<Kind> = run
        .plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.resource_type)
        .collect();
    assert_eq!(deletes, [Kind::FederatedCredential, Kind::ManagedIdentity]);
    let report = run.apply(Options::default()).await;
    assert!(report.is_success(), "{:#?}", report.outcomes);
    let azure = run.azure.calls();
    let first_delete = position(&azure, "delete_");
    let last_write = azure.iter().rposition(|c| c.starts_with("put_")).unwrap();
    assert!(last_write < first_delete, "{azure:#?}");
    // The credential goes before its identity, found by its parent (no id parsing).
    assert!(
        position(&azure, "delete_identity_credential old-fic")
            < position(&azure, "delete_identity old")
    );
}

#[tokio::test]
async fn a_stop_starts_nothing_more() {
    let run = Run::new(CONFIG, azure(with_orphan));
    let stop = Arc::new(AtomicBool::new(true));
    let report = run
        .apply(Options {
            stop: Some(stop),
            progress: None,
        })
        .await;
    assert!(report.interrupted);
    assert!(run.azure.calls().is_empty());
    assert!(run.kube_calls().is_empty());
}

#[tokio::test]
async fn progress_tells_every_change_that_starts_and_ends() {
    let run = Run::new(CONFIG, azure(|_| {}));
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    run.apply(Options {
        stop: None,
        progress: Some(Arc::new(move |p: &Progress| {
            sink.lock().unwrap().push(p.clone())
        })),
    })
    .await;
    let events = events.lock().unwrap();
    let started = events
        .iter()
        .filter(|e| matches!(e, Progress::Started { .. }))
        .count();
    let finished = events
        .iter()
        .filter(|e| matches!(e, Progress::Finished { .. }))
        .count();
    let changes = run
        .plan
        .changes
        .iter()
        .filter(|c| c.action.is_change())
        .count();
    assert_eq!((started, finished), (changes, changes));
}

/// Identity `api` exists (this stack's) with a credential the config no longer names, its
/// replacement in the config not made yet.
fn with_replaced_credential(observation: &mut AzureObservation) {
    owned_identity_with(observation, "api", "api-before", "api-before");
}

#[tokio::test]
async fn a_delete_waits_for_its_successor_and_is_kept_when_that_fails() {
    let run = Run::new(CONFIG, azure(with_replaced_credential));
    assert_eq!(
        run.plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| c.address.to_string())
            .collect::<Vec<_>>(),
        ["federated_credential.api/api-before"]
    );
    run.azure.fail(&format!(
        "put_identity_credential prod-orders-api issuer={ISSUER} subject=system:serviceaccount:orders:api"
    ));
    let report = run.apply(Options::default()).await;
    assert!(!report.is_success());
    assert_eq!(
        Run::outcome(&report, "federated_credential.api/api-before"),
        Outcome::Kept {
            because: "federated_credential.api/prod:orders/api".parse().unwrap()
        }
    );
    let azure = run.azure.calls();
    assert!(
        !azure.iter().any(|c| c.starts_with("delete_")),
        "the working credential stays: {azure:#?}"
    );
}

#[tokio::test]
async fn a_delete_runs_once_its_successor_exists() {
    let run = Run::new(CONFIG, azure(with_replaced_credential));
    let report = run.apply(Options::default()).await;
    assert!(report.is_success(), "{:#?}", report.outcomes);
    let azure = run.azure.calls();
    assert!(
        position(&azure, "put_identity_credential prod-orders-api")
            < position(&azure, "delete_identity_credential api-before")
    );
}

#[test]
fn only_what_takes_over_from_an_object_withholds_its_delete() {
    let change = |address: &str, depends_on: &[&str]| Change {
        address: address.parse().unwrap(),
        resource_type: Kind::FederatedCredential,
        action: Action::Create,
        reason: None,
        id: None,
        fields: Vec::new(),
        not_in_config: false,
        depends_on: depends_on.iter().map(|d| d.parse().unwrap()).collect(),
    };
    let credential = change("federated_credential.api/old", &[]);
    let grant = change(
        &format!("role_grant.api[\"Reader\" @ /subscriptions/{SUB}]"),
        &[],
    );
    let identity = change("identity.worker", &[]);
    let worker_account = change("service_account.prod/orders/worker", &["identity.worker"]);
    let api_account = change("service_account.prod/orders/api", &["identity.api"]);
    let api_credential = change("federated_credential.api/new", &["identity.api"]);
    // Another identity's trouble does not hold back api's extras…
    assert_eq!(
        withheld_by(&credential, &[&identity, &worker_account]),
        None
    );
    assert_eq!(withheld_by(&grant, &[&identity]), None);
    // …api's own changes do: its credentials, its service accounts.
    assert_eq!(
        withheld_by(&credential, &[&identity, &api_credential]),
        Some(&api_credential.address)
    );
    assert_eq!(
        withheld_by(&grant, &[&api_account]),
        Some(&api_account.address)
    );
    // An identity that goes may be replaced by anything in the config.
    let doomed = Change {
        resource_type: Kind::ManagedIdentity,
        ..change("identity.old", &[])
    };
    assert_eq!(
        withheld_by(&doomed, &[&worker_account]),
        Some(&worker_account.address)
    );
    assert_eq!(withheld_by(&doomed, &[]), None);
}

#[tokio::test]
async fn a_credentials_description_set_by_hand_stays_when_apply_updates_it() {
    let config = r#"
version = 1
name = "shop"
[azure]
tenant_id = "aaaaaaaa-0000-4000-8000-000000000001"
subscription_id = "bbbbbbbb-0000-4000-8000-000000000001"
location = "westeurope"
[identities.web]
kind = "application"
[[federations]]
identity = "web"
name = "github-main"
issuer = "https://token.actions.githubusercontent.com"
subject = "repo:contoso/web:ref:refs/heads/main"
"#;
    let observation = azure(|o| {
        let app = crate::providers::azure::applications::LiveApplication {
            object_id: "object-web".into(),
            app_id: "client-web".into(),
            display_name: "web".into(),
            unique_name: Some(crate::providers::azure::applications::unique_name(
                STACK, "web",
            )),
            tags: vec![format!("wiform-stack:{STACK}")],
            owner: Owner::Stack(Marker {
                stack: STACK.into(),
                spec_hash: None,
            }),
            service_principal_id: Some("principal-web".into()),
        };
        let credential = crate::providers::azure::federated::LiveCredential {
            parent: crate::providers::azure::federated::CredentialParent::Application(
                app.object_id.clone(),
            ),
            id: "fic-1".into(),
            name: "github-main".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:contoso/web:ref:refs/heads/main".into(),
            audiences: vec!["api://other".into()],
            description: Some("set by hand".into()),
        };
        o.application_credentials
            .insert(app.object_id.clone(), vec![credential]);
        o.applications.push(app);
    });
    let run = Run::new(config, observation);
    assert_eq!(
        run.plan
            .changes
            .iter()
            .find(|c| c.address == "federated_credential.web/github-main")
            .map(|c| c.action),
        Some(Action::Update)
    );
    let report = run.apply(Options::default()).await;
    assert!(report.is_success(), "{:#?}", report.outcomes);
    assert!(
        run.azure.calls().contains(
            &"put_application_credential object-web github-main description=set by hand"
                .to_string()
        ),
        "{:#?}",
        run.azure.calls()
    );
}
