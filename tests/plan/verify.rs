//! `wiform verify --sandbox` end to end: the real binary mints each service account's token
//! (TokenRequest on the sandbox's Kubernetes) and exchanges it at the sandbox's Entra token
//! endpoint, which validates it against the cluster's discovery document and JWKS. Each failure
//! mode is made by hand and the reported cause asserted (and snapshotted).

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{self, Run, Sandbox, credential_path, edited_copy, example};

fn applied(name: &str) -> Sandbox {
    let sb = Sandbox::start();
    sb.apply(&example(name));
    sb
}

fn expect_code(run: &Run, code: i32) {
    assert_eq!(run.code, code, "{}", run.transcript());
}

fn snapshot(sb: &Sandbox, name: &str, run: &Run) {
    insta::assert_snapshot!(
        name.to_string(),
        support::normalise(&run.stdout, &[(sb.dir(), "<sandbox-dir>")])
    );
}

/// (address, ok, failed step, cause) of each account of a JSON report.
fn results(run: &Run) -> Vec<(String, bool, String, String)> {
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("JSON ({e}):\n{}", run.transcript()));
    report["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap_or_default().into(),
                a["ok"].as_bool().unwrap_or_default(),
                a["failed_step"].as_str().unwrap_or_default().into(),
                a["cause"].as_str().unwrap_or_default().into(),
            )
        })
        .collect()
}

const ACCOUNT: &str = "service_account.lab/workload-id-test/workload-id-sa";
const FIC: &str = "lab-workload-id-test-workload-id-sa";

/// The one failure of the quickstart's verify: (step, cause).
fn failure_of(sb: &Sandbox, name: &str) -> (String, String) {
    let human = sb.verify(&example("quickstart"), &[]);
    expect_code(&human, 1);
    snapshot(sb, name, &human);
    let json = sb.verify(&example("quickstart"), &["--format", "json"]);
    expect_code(&json, 1);
    let found = results(&json);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, ACCOUNT);
    assert!(!found[0].1);
    (found[0].2.clone(), found[0].3.clone())
}

#[test]
fn an_applied_quickstart_verifies_ok() {
    let sb = applied("quickstart");
    let run = sb.verify(&example("quickstart"), &[]);
    expect_code(&run, 0);
    snapshot(&sb, "quickstart_ok", &run);
    // No token is ever printed: the minted one is a JWT (three base64url parts).
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains("eyJ"), "{output}");
    }
    let json = sb.verify(&example("quickstart"), &["--format", "json"]);
    expect_code(&json, 0);
    assert_eq!(
        results(&json),
        vec![(ACCOUNT.into(), true, String::new(), String::new())]
    );
    // Not even at trace level, every crate's logs on.
    let dir = sb.dir().to_str().unwrap().to_string();
    let traced = sb.wiform_with_env(
        support::root(),
        &[
            "verify",
            "--sandbox",
            "--sandbox-dir",
            &dir,
            "-f",
            &example("quickstart"),
            "-v",
        ],
        &[("WIFORM_LOG", "trace")],
    );
    expect_code(&traced, 0);
    assert!(traced.stderr.lines().count() > 100, "{}", traced.stderr);
    for output in [&traced.stdout, &traced.stderr] {
        assert!(!output.contains("eyJ"), "a JWT in the output");
    }
    let markdown = sb.verify(&example("quickstart"), &["--format", "markdown"]);
    expect_code(&markdown, 0);
    snapshot(&sb, "quickstart_ok_markdown", &markdown);
}

/// The credential of the quickstart's service account, rewritten by hand with `edit`.
fn rewrite_credential(sb: &Sandbox, edit: impl FnOnce(&mut Value)) {
    let path = credential_path("rg-workload-id", "keyvault-reader", FIC);
    let (status, mut credential) = sb.arm(Method::GET, &path, None);
    assert_eq!(status, 200, "{credential}");
    let mut properties = credential["properties"].take();
    edit(&mut properties);
    let (status, body) = sb.arm(Method::PUT, &path, Some(json!({"properties": properties})));
    assert!(status == 200 || status == 201, "{status} {body}");
}

#[test]
fn a_wrong_subject_is_named_with_both_subjects() {
    let sb = applied("quickstart");
    rewrite_credential(&sb, |p| {
        p["subject"] = json!("system:serviceaccount:workload-id-test:someone-else")
    });
    let (step, cause) = failure_of(&sb, "wrong_subject");
    assert_eq!(step, "exchange");
    assert_eq!(
        cause,
        format!(
            "AADSTS700213: federated credential {FIC} subject is system:serviceaccount:workload-id-test:someone-else but the token's subject is system:serviceaccount:workload-id-test:workload-id-sa"
        )
    );
}

#[test]
fn an_issuer_without_its_trailing_slash_is_called_out() {
    let sb = applied("quickstart");
    rewrite_credential(&sb, |p| {
        let issuer = p["issuer"]
            .as_str()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        p["issuer"] = json!(issuer);
    });
    let (step, cause) = failure_of(&sb, "issuer_trailing_slash");
    assert_eq!(step, "exchange");
    assert!(cause.contains("the trailing slash counts"), "{cause}");
}

#[test]
fn a_wrong_audience_is_named() {
    let sb = applied("quickstart");
    rewrite_credential(&sb, |p| p["audiences"] = json!(["api://SomethingElse"]));
    let (step, cause) = failure_of(&sb, "wrong_audience");
    assert_eq!(step, "exchange");
    assert!(
        cause.contains(
            "audience is api://SomethingElse but the token's audience is api://AzureADTokenExchange"
        ),
        "{cause}"
    );
}

#[test]
fn a_deleted_credential_is_named() {
    let sb = applied("quickstart");
    let (status, body) = sb.arm(
        Method::DELETE,
        &credential_path("rg-workload-id", "keyvault-reader", FIC),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (step, cause) = failure_of(&sb, "credential_deleted");
    assert_eq!(step, "exchange");
    assert!(
        cause.starts_with("AADSTS70021: the identity has no federated credential"),
        "{cause}"
    );
}

#[test]
fn a_stale_client_id_annotation_is_named() {
    let sb = applied("quickstart");
    let cluster = sb.aks("aks-workload-id");
    let (status, body) = sb.kube_merge_patch(
        &cluster,
        "/api/v1/namespaces/workload-id-test/serviceaccounts/workload-id-sa",
        "kubectl-annotate",
        json!({"metadata": {"annotations": {
            "azure.workload.identity/client-id": support::HAND_MADE_CLIENT_ID
        }}}),
    );
    assert_eq!(status, 200, "{body}");
    let (step, cause) = failure_of(&sb, "stale_annotation");
    assert_eq!(step, "service_account");
    assert!(cause.contains(support::HAND_MADE_CLIENT_ID), "{cause}");
    assert!(cause.contains("another identity"), "{cause}");
}

#[test]
fn a_missing_role_grant_is_named() {
    let sb = applied("quickstart");
    let id = sb.read(|s| {
        s.role_assignments
            .values()
            .find(|a| {
                a.scope
                    .to_ascii_lowercase()
                    .ends_with("vaults/kv-workload-id")
            })
            .map(|a| a.id.clone())
            .expect("the grant")
    });
    let (status, body) = sb.arm(
        Method::DELETE,
        &format!("{id}?api-version=2022-04-01"),
        None,
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let (step, cause) = failure_of(&sb, "missing_role");
    assert_eq!(step, "roles");
    assert!(cause.contains("Key Vault Secrets User"), "{cause}");
}

#[test]
fn an_issuer_the_cluster_does_not_serve_is_named() {
    // The self-managed example's issuer is not the one the sandbox's standalone cluster signs
    // with; with the right one but a trailing slash added, the slash is named.
    let sb = applied("self-managed");
    let run = sb.verify(&example("self-managed"), &["--format", "json"]);
    expect_code(&run, 1);
    let found = results(&run);
    assert_eq!(found[0].2, "cluster", "{found:?}");
    assert!(
        found[0].3.contains("https://oidc.example.com/onprem"),
        "{found:?}"
    );

    let served = format!("{}/k8s/sandbox", sb.base_url());
    let dir = edited_copy("self-managed", |text| {
        text.replace("https://oidc.example.com/onprem", &format!("{served}/"))
    });
    let file = dir.path().join("identity.toml");
    let run = sb.verify(file.to_str().unwrap(), &["--format", "json"]);
    expect_code(&run, 1);
    let found = results(&run);
    assert_eq!(found[0].2, "cluster", "{found:?}");
    assert!(
        found[0].3.contains("differ only in the trailing slash"),
        "{found:?}"
    );
    snapshot(
        &sb,
        "cluster_issuer_trailing_slash",
        &sb.verify(file.to_str().unwrap(), &[]),
    );
}

#[test]
fn an_oidc_issuer_that_is_off_is_named() {
    // A cluster wiform may not change (`enable_workload_identity = false`) whose OIDC issuer is
    // off: no token of it can be federated.
    let sb = Sandbox::start();
    let app = sb.app();
    app.store
        .write(|s| {
            Ok::<_, wiform_sandbox::state::StoreError>(wiform_sandbox::seed::apply(
                s,
                &wiform_sandbox::seed::Seed {
                    resource_groups: vec![wiform_sandbox::seed::SeedGroup {
                        name: "rg-workload-id".into(),
                        location: "westeurope".into(),
                        tags: Default::default(),
                    }],
                    managed_clusters: vec![wiform_sandbox::seed::SeedCluster {
                        resource_group: "rg-workload-id".into(),
                        name: "aks-workload-id".into(),
                        location: "westeurope".into(),
                        oidc_issuer: false,
                        workload_identity: false,
                    }],
                    ..Default::default()
                },
                &app.base_url,
            ))
        })
        .unwrap()
        .unwrap();
    let dir = edited_copy("quickstart", |text| {
        text.replace(
            "enable_workload_identity = true",
            "enable_workload_identity = false",
        )
    });
    let file = dir.path().join("identity.toml");
    let run = sb.verify(file.to_str().unwrap(), &["--format", "json"]);
    expect_code(&run, 1);
    let found = results(&run);
    assert_eq!(found[0].2, "cluster", "{found:?}");
    assert!(
        found[0]
            .3
            .contains("the OIDC issuer of cluster `lab` is off"),
        "{found:?}"
    );
    snapshot(&sb, "oidc_off", &sb.verify(file.to_str().unwrap(), &[]));
}
