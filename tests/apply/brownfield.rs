//! A setup made by hand the way the seed recipes make it (`az identity create`, `az identity
//! federated-credential create` with a name of the user's choosing, `kubectl annotate`), then a
//! natural identity.toml for it (no `federation_name`): the credential is the same one (same
//! issuer and subject), so wiform takes it over under its name: nothing is created beside it,
//! nothing deleted, and the apply succeeds; another credential that was on the identity before
//! stays, shown as not managed by wiform.

use reqwest::Method;
use serde_json::json;
use wiform_sandbox::seed::{Seed, SeedCluster, SeedGroup};

use crate::support::{Config, Sandbox, identity_path};

const GROUP: &str = "rg-workload-id";
const CREDENTIAL: &str = "federated_credential.keyvault-reader/lab:workload-id-test/workload-id-sa";

fn credentials_path() -> String {
    identity_path(GROUP, "keyvault-reader")
        .replace("?api-version", "/federatedIdentityCredentials?api-version")
}

/// The recipe's first steps, as `az` sends them: the group and AKS cluster (seeded), `az
/// identity create` (no tags), and `az identity federated-credential create --name
/// HandMadeFederatedIdentity` for the lab's service account. Its client id and the cluster's
/// issuer.
fn hand_made_lab(sb: &Sandbox) -> (String, String) {
    sb.seed(&Seed {
        resource_groups: vec![SeedGroup {
            name: GROUP.into(),
            location: "westeurope".into(),
            tags: Default::default(),
        }],
        managed_clusters: vec![SeedCluster {
            resource_group: GROUP.into(),
            name: "aks-workload-id".into(),
            location: "westeurope".into(),
            oidc_issuer: true,
            workload_identity: true,
        }],
        ..Seed::default()
    });
    let (status, identity) = sb.arm(
        Method::PUT,
        &identity_path(GROUP, "keyvault-reader"),
        Some(json!({"location": "westeurope"})),
    );
    assert_eq!(status, 201, "{identity}");
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .expect("a client id")
        .to_string();
    let (status, clusters) = sb.arm(
        Method::GET,
        "/subscriptions/bbbbbbbb-0000-4000-8000-000000000001/providers/Microsoft.ContainerService/managedClusters?api-version=2025-07-01",
        None,
    );
    assert_eq!(status, 200, "{clusters}");
    let issuer = clusters["value"][0]["properties"]["oidcIssuerProfile"]["issuerURL"]
        .as_str()
        .expect("the cluster's issuer")
        .to_string();
    let (status, body) = sb.arm(
        Method::PUT,
        &credential_path("HandMadeFederatedIdentity"),
        Some(json!({"properties": {
            "issuer": issuer,
            "subject": "system:serviceaccount:workload-id-test:workload-id-sa",
            "audiences": ["api://AzureADTokenExchange"],
        }})),
    );
    assert!(matches!(status, 200 | 201), "{status}: {body}");
    (client_id, issuer)
}

/// The ARM path of the identity's credential `name`.
fn credential_path(name: &str) -> String {
    credentials_path().replace(
        "/federatedIdentityCredentials?",
        &format!("/federatedIdentityCredentials/{name}?"),
    )
}

#[test]
fn a_credential_made_by_hand_under_another_name_is_taken_over_not_duplicated() {
    let sb = Sandbox::start();
    let (_, issuer) = hand_made_lab(&sb);
    // Another credential someone made on it, which the config does not name.
    let (status, body) = sb.arm(
        Method::PUT,
        &credential_path("LaptopDebug"),
        Some(json!({"properties": {
            "issuer": issuer,
            "subject": "system:serviceaccount:debug:laptop",
            "audiences": ["api://AzureADTokenExchange"],
        }})),
    );
    assert!(matches!(status, 200 | 201), "{status}: {body}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = Config::example("quickstart").write(dir.path());
    let plan = sb.plan(&file, &[]);
    assert!(
        plan.stdout
            .contains(&format!("# {CREDENTIAL} will be adopted")),
        "the credential is adopted:\n{}",
        plan.transcript()
    );
    assert!(
        plan.stdout
            .contains("exists as `HandMadeFederatedIdentity`"),
        "{}",
        plan.transcript()
    );
    assert!(
        !plan.stdout.contains("will be destroyed"),
        "{}",
        plan.transcript()
    );
    assert!(
        plan.stdout.contains("not managed by wiform"),
        "the extra credential is shown, kept:\n{}",
        plan.transcript()
    );

    let run = sb.apply(&file);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let (status, listed) = sb.arm(Method::GET, &credentials_path(), None);
    assert_eq!(status, 200, "{listed}");
    let names: Vec<&str> = listed["value"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .map(|n| n.rsplit('/').next().unwrap_or(n))
        .collect();
    // What was on the identity before wiform adopted it stays (issue 16: what wiform did not
    // make, it does not remove), and the identity records it.
    assert_eq!(
        names,
        ["HandMadeFederatedIdentity", "LaptopDebug"],
        "{listed}"
    );
    let (_, identity) = sb.arm(Method::GET, &identity_path(GROUP, "keyvault-reader"), None);
    assert!(
        identity["tags"]["wiform-unmanaged"].is_string(),
        "{identity}"
    );
    sb.assert_in_sync(&file);
}

/// While apply adopts a recipe-made setup, the workload keeps getting its token: a probe
/// exchanges the service account's token at Entra every 100 ms and is never refused.
#[test]
fn a_workload_keeps_its_token_while_apply_adopts_its_setup() {
    let sb = Sandbox::start();
    let (client_id, _) = hand_made_lab(&sb);
    let cluster = sb.aks("aks-workload-id");
    // `kubectl create namespace`, `kubectl create serviceaccount`, `kubectl annotate`.
    for (path, object) in [
        (
            "/api/v1/namespaces".to_string(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "workload-id-test"}}),
        ),
        (
            "/api/v1/namespaces/workload-id-test/serviceaccounts".to_string(),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
                "name": "workload-id-sa",
                "annotations": {"azure.workload.identity/client-id": client_id},
            }}),
        ),
    ] {
        let (status, body) = sb.kube(&cluster, Method::POST, &path, Some(object));
        assert_eq!(status, 201, "{body}");
    }
    // The workload works before wiform touches anything (after the credential replicates).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) =
            sb.exchange(&cluster, "workload-id-test", "workload-id-sa", &client_id);
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}: {body}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = Config::example("quickstart").write(dir.path());
    let (run, probes, refusals) = sb.apply_while_probing(
        &file,
        &cluster,
        "workload-id-test",
        "workload-id-sa",
        &client_id,
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    eprintln!(
        "{probes} token exchanges during an apply of {:.1} s, {} refused",
        run.elapsed.as_secs_f64(),
        refusals.len()
    );
    assert!(probes > 0);
    assert!(
        refusals.is_empty(),
        "the workload lost its token during apply ({} of {probes} probes):\n{}",
        refusals.len(),
        refusals.join("\n")
    );
    let (status, body) = sb.exchange(&cluster, "workload-id-test", "workload-id-sa", &client_id);
    assert_eq!(status, 200, "{body}");
    sb.assert_in_sync(&file);
}
