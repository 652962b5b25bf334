//! `wiform import` of a setup made by hand the way the seed recipes make it (`az identity
//! create`, `az identity federated-credential create` with a name of the user's choosing, `az
//! role assignment create` with its random GUID name, `kubectl create serviceaccount` and
//! `kubectl annotate`): the file it writes validates, `wiform plan` on it only adopts (nothing
//! created, nothing destroyed), `wiform apply` succeeds and the plan after it is empty.

use reqwest::Method;
use serde_json::json;
use wiform_sandbox::seed::{Seed, SeedCluster, SeedGroup};

use crate::support::{SUB, Sandbox, identity_path};

const GROUP: &str = "rg-cats";
const CLUSTER: &str = "aks-cats";
const IDENTITY: &str = "CatsApiUserAssignedIdentity";
const CREDENTIAL: &str = "CatsApiFederatedIdentity";
/// What `az role assignment create` names an assignment: a random GUID.
const ASSIGNMENT: &str = "3f1e9c52-7a4d-4b8e-9f06-2c5d8e1a7b94";
/// Key Vault Secrets User.
const ROLE: &str = "4633458b-17de-408a-b874-0445c86b69e6";

#[test]
fn a_recipe_made_setup_imports_into_a_file_that_only_adopts() {
    let sb = Sandbox::start();
    sb.seed(&Seed {
        resource_groups: vec![SeedGroup {
            name: GROUP.into(),
            location: "westeurope".into(),
            tags: Default::default(),
        }],
        managed_clusters: vec![SeedCluster {
            resource_group: GROUP.into(),
            name: CLUSTER.into(),
            location: "westeurope".into(),
            oidc_issuer: true,
            workload_identity: true,
        }],
        ..Seed::default()
    });
    // `az identity create`.
    let (status, identity) = sb.arm(
        Method::PUT,
        &identity_path(GROUP, IDENTITY),
        Some(json!({"location": "westeurope"})),
    );
    assert_eq!(status, 201, "{identity}");
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .expect("a client id")
        .to_string();
    let principal_id = identity["properties"]["principalId"]
        .as_str()
        .expect("a principal id")
        .to_string();
    // `az aks show --query oidcIssuerProfile.issuerUrl`.
    let (status, cluster) = sb.arm(
        Method::GET,
        &format!(
            "/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.ContainerService/managedClusters/{CLUSTER}?api-version=2025-07-01"
        ),
        None,
    );
    assert_eq!(status, 200, "{cluster}");
    let issuer = cluster["properties"]["oidcIssuerProfile"]["issuerURL"]
        .as_str()
        .expect("the cluster's issuer")
        .to_string();
    // `az identity federated-credential create --name CatsApiFederatedIdentity …`.
    let (status, body) = sb.arm(
        Method::PUT,
        &identity_path(GROUP, IDENTITY).replace(
            "?api-version",
            &format!("/federatedIdentityCredentials/{CREDENTIAL}?api-version"),
        ),
        Some(json!({"properties": {
            "issuer": issuer,
            "subject": "system:serviceaccount:cats:cats-api-sa",
            "audiences": ["api://AzureADTokenExchange"],
        }})),
    );
    assert!(matches!(status, 200 | 201), "{status}: {body}");
    // `az role assignment create --role "Key Vault Secrets User" --scope <group>`.
    let scope = format!("/subscriptions/{SUB}/resourceGroups/{GROUP}");
    let (status, body) = sb.arm(
        Method::PUT,
        &format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{ASSIGNMENT}?api-version=2022-04-01"
        ),
        Some(json!({"properties": {
            "roleDefinitionId": format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{ROLE}"
            ),
            // As `az role assignment create --assignee-object-id` sends it: no principalType.
            "principalId": principal_id,
        }})),
    );
    assert!(matches!(status, 200 | 201), "{status}: {body}");
    // `kubectl create namespace cats`, `kubectl create serviceaccount cats-api-sa -n cats`,
    // `kubectl annotate serviceaccount … azure.workload.identity/client-id=…`.
    let aks = sb.aks(CLUSTER);
    sb.service_account_by_hand(&aks, "cats", "cats-api-sa");
    let (status, body) = sb.kube(
        &aks,
        Method::PATCH,
        "/api/v1/namespaces/cats/serviceaccounts/cats-api-sa",
        Some(json!({"metadata": {"annotations": {
            "azure.workload.identity/client-id": client_id,
        }}})),
    );
    assert_eq!(status, 200, "{body}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let sandbox_dir = sb.dir().to_str().expect("a UTF-8 path").to_string();
    let cluster_arg = format!("{GROUP}/{CLUSTER}");
    let run = sb.wiform(
        dir.path(),
        &[
            "import",
            "--sandbox",
            "--sandbox-dir",
            &sandbox_dir,
            "--cluster",
            &cluster_arg,
            "--name",
            "cats",
            "-o",
            "identity.toml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stderr
            .contains("1 identity, 1 service account, 0 federations, 1 role grant"),
        "{}",
        run.transcript()
    );
    let file = dir.path().join("identity.toml");
    let text = std::fs::read_to_string(&file).expect("the file is written");
    assert!(
        text.contains(&format!("federation_name = \"{CREDENTIAL}\"")),
        "{text}"
    );
    assert!(text.contains("role = \"Key Vault Secrets User\""), "{text}");
    assert!(
        text.contains("scope = \"resourceGroups/rg-cats\""),
        "{text}"
    );

    let validate = sb.wiform(dir.path(), &["validate", "-f", "identity.toml"]);
    assert_eq!(validate.code, 0, "{}\n{text}", validate.transcript());

    let plan = sb.plan(&file, &[]);
    assert_eq!(plan.code, 0, "{}\n{text}", plan.transcript());
    assert!(
        plan.stdout
            .contains("0 to add, 0 to change, 0 to replace, 0 to destroy"),
        "the plan only adopts:\n{}\n{text}",
        plan.transcript()
    );

    // One apply converges: what was on the identity at adoption (the assignment the config
    // adopts included) stays recorded as it was. While it runs, the workload keeps getting its
    // token: a probe exchanges it at Entra every 100 ms.
    let (run, probes, refusals) =
        sb.apply_while_probing(&file, &aks, "cats", "cats-api-sa", &client_id);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        probes > 0 && refusals.is_empty(),
        "{probes} probes: {refusals:#?}"
    );
    // `wiform verify`: the service account gets its Azure token, as its workload would.
    let verify = sb.wiform(
        dir.path(),
        &[
            "verify",
            "--sandbox",
            "--sandbox-dir",
            &sandbox_dir,
            "-f",
            "identity.toml",
        ],
    );
    assert_eq!(verify.code, 0, "{}", verify.transcript());
    assert!(
        verify
            .stdout
            .contains("OK: every service account (1) can get its Azure token."),
        "{}",
        verify.transcript()
    );
    sb.assert_in_sync(&file);
    // Nothing was recreated: the hand-made credential and assignment are still there.
    let (_, listed) = sb.arm(
        Method::GET,
        &identity_path(GROUP, IDENTITY)
            .replace("?api-version", "/federatedIdentityCredentials?api-version"),
        None,
    );
    let names: Vec<&str> = listed["value"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .map(|n| n.rsplit('/').next().unwrap_or(n))
        .collect();
    assert_eq!(names, [CREDENTIAL], "{listed}");
    let (status, body) = sb.arm(
        Method::GET,
        &format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{ASSIGNMENT}?api-version=2022-04-01"
        ),
        None,
    );
    assert_eq!(status, 200, "the hand-made assignment stays: {body}");
}

/// A cluster that is not AKS (`--kube-context`: its issuer from the API server's discovery
/// document; in the sandbox, its standalone cluster), and a GitHub Actions credential, which
/// becomes a federation.
#[test]
fn a_kube_context_cluster_and_a_github_credential_import_too() {
    let sb = Sandbox::start();
    sb.seed(&Seed {
        resource_groups: vec![SeedGroup {
            name: "rg-dogs".into(),
            location: "westeurope".into(),
            tags: Default::default(),
        }],
        ..Seed::default()
    });
    let (status, identity) = sb.arm(
        Method::PUT,
        &identity_path("rg-dogs", "dogs"),
        Some(json!({"location": "westeurope"})),
    );
    assert_eq!(status, 201, "{identity}");
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .expect("a client id")
        .to_string();
    let standalone = sb.standalone();
    for (name, issuer, subject) in [
        (
            "dogs-kind",
            standalone.issuer.as_str(),
            "system:serviceaccount:dogs:dogs-sa",
        ),
        (
            "github-main",
            "https://token.actions.githubusercontent.com",
            "repo:example/dogs:ref:refs/heads/main",
        ),
    ] {
        let (status, body) = sb.arm(
            Method::PUT,
            &identity_path("rg-dogs", "dogs").replace(
                "?api-version",
                &format!("/federatedIdentityCredentials/{name}?api-version"),
            ),
            Some(json!({"properties": {
                "issuer": issuer,
                "subject": subject,
                "audiences": ["api://AzureADTokenExchange"],
            }})),
        );
        assert!(matches!(status, 200 | 201), "{status}: {body}");
    }
    sb.service_account_by_hand(&standalone, "dogs", "dogs-sa");
    let (status, body) = sb.kube(
        &standalone,
        Method::PATCH,
        "/api/v1/namespaces/dogs/serviceaccounts/dogs-sa",
        Some(json!({"metadata": {"annotations": {
            "azure.workload.identity/client-id": client_id,
        }}})),
    );
    assert_eq!(status, 200, "{body}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let sandbox_dir = sb.dir().to_str().expect("a UTF-8 path").to_string();
    let run = sb.wiform(
        dir.path(),
        &[
            "import",
            "--sandbox",
            "--sandbox-dir",
            &sandbox_dir,
            "--kube-context",
            "kind-dogs",
            "--namespace",
            "dogs",
            "--name",
            "dogs",
            "-o",
            "identity.toml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let file = dir.path().join("identity.toml");
    let text = std::fs::read_to_string(&file).expect("the file is written");
    assert!(
        run.stderr
            .contains("1 identity, 1 service account, 1 federation, 0 role grants"),
        "{}\n{text}",
        run.transcript()
    );
    assert!(text.contains("kube_context = \"kind-dogs\""), "{text}");
    assert!(
        text.contains(&format!("issuer = \"{}\"", standalone.issuer)),
        "{text}"
    );
    let plan = sb.plan(&file, &[]);
    assert!(
        plan.stdout
            .contains("0 to add, 0 to change, 0 to replace, 0 to destroy"),
        "the plan only adopts:\n{}\n{text}",
        plan.transcript()
    );
    sb.apply(&file);
    sb.assert_in_sync(&file);
}

/// An app registration made with `az ad app create`, `az ad sp create` and `az ad app
/// federated-credential create` imports as an application identity, and its plan only adopts.
#[test]
fn an_app_registration_with_a_federated_credential_imports_as_an_application() {
    let sb = Sandbox::start();
    let (status, app) = sb.graph(
        Method::POST,
        "/v1.0/applications",
        Some(json!({"displayName": "Cats Web"})),
    );
    assert_eq!(status, 201, "{app}");
    let object_id = app["id"].as_str().expect("an object id").to_string();
    let app_id = app["appId"].as_str().expect("an app id").to_string();
    let (status, body) = sb.graph(
        Method::POST,
        "/v1.0/servicePrincipals",
        Some(json!({"appId": app_id})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = sb.graph(
        Method::POST,
        &format!("/v1.0/applications/{object_id}/federatedIdentityCredentials"),
        Some(json!({
            "name": "web-main",
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:example/web:ref:refs/heads/main",
            "audiences": ["api://AzureADTokenExchange"],
        })),
    );
    assert_eq!(status, 201, "{body}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let sandbox_dir = sb.dir().to_str().expect("a UTF-8 path").to_string();
    let run = sb.wiform(
        dir.path(),
        &[
            "import",
            "--sandbox",
            "--sandbox-dir",
            &sandbox_dir,
            "--name",
            "web",
            "-o",
            "identity.toml",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let file = dir.path().join("identity.toml");
    let text = std::fs::read_to_string(&file).expect("the file is written");
    for expected in [
        "kind = \"application\"",
        "subject = \"repo:example/web:ref:refs/heads/main\"",
    ] {
        assert!(text.contains(expected), "{expected:?} in:\n{text}");
    }
    let plan = sb.plan(&file, &[]);
    assert!(
        plan.stdout
            .contains("0 to add, 0 to change, 0 to replace, 0 to destroy"),
        "the plan only adopts:\n{}\n{text}",
        plan.transcript()
    );
    let run = sb.apply(&file);
    assert_eq!(run.code, 0, "{}", run.transcript());
    sb.assert_in_sync(&file);
}
