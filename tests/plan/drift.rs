//! `wiform drift --sandbox` end to end: for each kind of change made outside wiform (modified,
//! deleted, added by hand) and for config changes, the class, the exit code, and the report in
//! each format (snapshots, run-dependent values normalised).

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    self, HAND_MADE_ASSIGNMENT, HAND_MADE_CLIENT_ID, Run, Sandbox, credential_path, edited_copy,
    example, identity_path,
};

fn expect_code(run: &Run, code: i32) {
    assert_eq!(run.code, code, "{}", run.transcript());
}

fn snapshot(sb: &Sandbox, name: &str, text: &str) {
    let text = support::normalise(text, &[(sb.dir(), "<sandbox-dir>")]);
    insta::assert_snapshot!(name.to_string(), without_hashes(&text));
}

/// Spec hashes (16 hex digits) cover run-dependent values such as client ids.
fn without_hashes(text: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.len() == 16 && word.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push_str("<hash>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// (address, class, cause) of every item of a JSON report.
fn classes(run: &Run) -> Vec<(String, String, String)> {
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("the report is JSON ({e}):\n{}", run.transcript()));
    report["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["address"].as_str().unwrap_or_default().to_string(),
                i["class"].as_str().unwrap_or_default().to_string(),
                i["cause"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn item(address: &str, class: &str, cause: &str) -> (String, String, String) {
    (address.into(), class.into(), cause.into())
}

fn applied(name: &str) -> Sandbox {
    let sb = Sandbox::start();
    sb.apply(&example(name));
    sb
}

/// Every format of the report for `file`, snapshotted as `drift__{name}_*`; returns the JSON
/// run. All runs must exit `code`.
fn report(sb: &Sandbox, file: &str, name: &str, code: i32) -> Run {
    let junit = tempfile::NamedTempFile::new().unwrap();
    let junit_path = junit.path().to_str().unwrap();
    let human = sb.drift(file, &["--junit", junit_path]);
    expect_code(&human, code);
    snapshot(sb, name, &human.stdout);
    let xml = std::fs::read_to_string(junit.path()).unwrap();
    snapshot(sb, &format!("{name}_junit"), &xml);
    let markdown = sb.drift(file, &["--format", "markdown"]);
    expect_code(&markdown, code);
    snapshot(sb, &format!("{name}_markdown"), &markdown.stdout);
    let json = sb.drift(file, &["--format", "json"]);
    expect_code(&json, code);
    snapshot(sb, &format!("{name}_json"), &json.stdout);
    json
}

#[test]
fn an_applied_example_is_in_sync() {
    let sb = applied("quickstart");
    let run = report(&sb, &example("quickstart"), "quickstart_in_sync", 0);
    assert!(classes(&run).is_empty());
}

#[test]
fn an_identity_tag_changed_by_hand_is_drift() {
    let sb = applied("quickstart");
    let identity = sb.identity("rg-workload-id", "keyvault-reader");
    let mut tags = identity["tags"].clone();
    tags["purpose"] = json!("changed-by-hand");
    let (status, body) = sb.arm(
        Method::PATCH,
        &identity_path("rg-workload-id", "keyvault-reader"),
        Some(json!({ "tags": tags })),
    );
    assert_eq!(status, 200, "{body}");
    let run = report(&sb, &example("quickstart"), "identity_tag_changed", 2);
    assert_eq!(
        classes(&run),
        vec![item(
            "identity.keyvault-reader",
            "drifted",
            "changed_outside_wiform"
        )]
    );
    // Apply restores it, and drift is quiet again.
    sb.apply(&example("quickstart"));
    expect_code(&sb.drift(&example("quickstart"), &[]), 0);
}

#[test]
fn a_client_id_annotation_edited_by_hand_is_drift() {
    let sb = applied("quickstart");
    let cluster = sb.aks("aks-workload-id");
    let (status, body) = sb.kube_merge_patch(
        &cluster,
        "/api/v1/namespaces/workload-id-test/serviceaccounts/workload-id-sa",
        "kubectl-annotate",
        json!({"metadata": {"annotations": {
            "azure.workload.identity/client-id": HAND_MADE_CLIENT_ID
        }}}),
    );
    assert_eq!(status, 200, "{body}");
    let run = report(&sb, &example("quickstart"), "annotation_edited", 2);
    assert_eq!(
        classes(&run),
        vec![item(
            "service_account.lab/workload-id-test/workload-id-sa",
            "drifted",
            "changed_outside_wiform"
        )]
    );
}

#[test]
fn a_federated_credential_deleted_by_hand_is_drift() {
    let sb = applied("multi-cluster");
    let (status, body) = sb.arm(
        Method::DELETE,
        &credential_path("rg-identities", "orders-api", "neu-orders-orders-api"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let run = report(&sb, &example("multi-cluster"), "credential_deleted", 2);
    assert_eq!(
        classes(&run),
        vec![item(
            "federated_credential.orders-api/neu:orders/orders-api",
            "drifted",
            "deleted_outside_wiform"
        )]
    );
}

#[test]
fn a_role_assignment_added_by_hand_is_drift() {
    let sb = applied("github-actions");
    let principal = sb.identity("rg-orders-ci", "orders-deployer")["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let role = wiform::builtin_roles::by_name("Reader").unwrap();
    let (status, body) = sb.arm(
        Method::PUT,
        &support::role_assignment_path("resourceGroups/rg-orders-app", HAND_MADE_ASSIGNMENT),
        Some(json!({"properties": {
            "roleDefinitionId": support::role_definition_id(role.id),
            "principalId": principal,
            "principalType": "ServicePrincipal",
        }})),
    );
    assert_eq!(status, 201, "{body}");
    let run = report(&sb, &example("github-actions"), "role_assignment_added", 2);
    let found = classes(&run);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .0
            .starts_with("role_grant.orders-deployer[\"Reader\" @ ")
    );
    assert_eq!(
        (found[0].1.as_str(), found[0].2.as_str()),
        ("drifted", "added_outside_wiform")
    );
}

/// The config's subject changed: pending only, exit 3.
fn subject_changed() -> tempfile::TempDir {
    edited_copy("github-actions", |text| {
        text.replace(
            "repo:contoso/orders:environment:production",
            "repo:contoso/orders:environment:prod-eu",
        )
    })
}

#[test]
fn config_changes_alone_are_pending() {
    let sb = applied("github-actions");
    let dir = subject_changed();
    let file = dir.path().join("identity.toml");
    let run = sb.drift(file.to_str().unwrap(), &["--format", "json"]);
    expect_code(&run, 3);
    let found = classes(&run);
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|(_, class, _)| class == "pending"),
        "{found:?}"
    );
    let human = sb.drift(file.to_str().unwrap(), &[]);
    expect_code(&human, 3);
    assert!(human.stdout.contains("No drift;"), "{}", human.stdout);
}

#[test]
fn drift_and_pending_together_exit_2() {
    let sb = applied("github-actions");
    let identity = sb.identity("rg-orders-ci", "orders-deployer");
    let mut tags = identity["tags"].clone();
    tags["team"] = json!("someone-else");
    let (status, body) = sb.arm(
        Method::PATCH,
        &identity_path("rg-orders-ci", "orders-deployer"),
        Some(json!({ "tags": tags })),
    );
    assert_eq!(status, 200, "{body}");
    let dir = subject_changed();
    let file = dir.path().join("identity.toml");
    let run = sb.drift(file.to_str().unwrap(), &["--format", "json"]);
    expect_code(&run, 2);
    let found = classes(&run);
    assert!(found.contains(&item(
        "identity.orders-deployer",
        "drifted",
        "changed_outside_wiform"
    )));
    assert!(
        found.iter().any(|(_, class, _)| class == "pending"),
        "{found:?}"
    );
}

#[test]
fn a_new_stack_is_pending() {
    let sb = Sandbox::start();
    let run = sb.drift(&example("quickstart"), &["--format", "json"]);
    expect_code(&run, 3);
    assert!(
        classes(&run)
            .iter()
            .all(|(_, class, cause)| class == "pending" && cause == "not_yet_applied"),
        "{}",
        run.stdout
    );
}

/// The id (for a DELETE) of a role assignment the stack made for `principal`, whose scope ends
/// with `scope_end`.
fn owned_assignment(sb: &Sandbox, principal: &str, scope_end: &str) -> String {
    sb.read(|s| {
        s.role_assignments
            .values()
            .find(|a| {
                a.principal_id.eq_ignore_ascii_case(principal)
                    && a.scope.to_ascii_lowercase().ends_with(scope_end)
            })
            .map(|a| a.id.clone())
            .expect("the stack's role assignment")
    })
}

fn principal_of(sb: &Sandbox, resource_group: &str, name: &str) -> String {
    sb.identity(resource_group, name)["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_role_assignment_deleted_by_hand_is_drift() {
    let sb = applied("github-actions");
    let principal = principal_of(&sb, "rg-orders-ci", "orders-deployer");
    let id = owned_assignment(&sb, &principal, "registries/ordersacr");
    let (status, body) = sb.arm(
        Method::DELETE,
        &format!("{id}?api-version=2022-04-01"),
        None,
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let run = report(
        &sb,
        &example("github-actions"),
        "role_assignment_deleted",
        2,
    );
    let found = classes(&run);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]
            .0
            .starts_with("role_grant.orders-deployer[\"AcrPush\""),
        "{found:?}"
    );
    assert_eq!(
        (found[0].1.as_str(), found[0].2.as_str()),
        ("drifted", "deleted_outside_wiform")
    );
}

#[test]
fn a_credential_of_a_ci_issuer_deleted_by_hand_is_drift() {
    let sb = applied("github-actions");
    let (status, body) = sb.arm(
        Method::DELETE,
        &credential_path("rg-orders-ci", "orders-deployer", "github-main"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let run = report(&sb, &example("github-actions"), "ci_credential_deleted", 2);
    assert_eq!(
        classes(&run),
        vec![item(
            "federated_credential.orders-deployer/github-main",
            "drifted",
            "deleted_outside_wiform"
        )]
    );
}

#[test]
fn a_credential_added_by_hand_is_drift_and_one_removed_from_the_config_is_pending() {
    let sb = applied("github-actions");
    let (status, body) = sb.arm(
        Method::PUT,
        &credential_path("rg-orders-ci", "orders-deployer", "by-hand"),
        Some(json!({"properties": {
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:contoso/other:ref:refs/heads/main",
            "audiences": ["api://AzureADTokenExchange"],
        }})),
    );
    assert!(status == 200 || status == 201, "{body}");
    let run = report(&sb, &example("github-actions"), "credential_added", 2);
    assert_eq!(
        classes(&run),
        vec![item(
            "federated_credential.orders-deployer/by-hand",
            "drifted",
            "added_outside_wiform"
        )]
    );

    // The config drops a federation wiform applied: pending, not drift.
    let sb = applied("github-actions");
    let dir = edited_copy("github-actions", |text| {
        let start = text
            .find("[[federations]]\nidentity = \"orders-deployer\"\nname = \"github-production\"")
            .expect("the federation");
        let end = text[start..]
            .find("\n\n")
            .map_or(text.len(), |e| start + e + 2);
        format!("{}{}", &text[..start], &text[end..])
    });
    let file = dir.path().join("identity.toml");
    let run = sb.drift(file.to_str().unwrap(), &["--format", "json"]);
    expect_code(&run, 3);
    let found = classes(&run);
    assert!(
        found.contains(&item(
            "federated_credential.orders-deployer/github-production",
            "pending",
            "removed_from_config"
        )),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(_, class, _)| class == "pending"),
        "{found:?}"
    );
}

#[test]
fn a_reader_only_principal_can_run_drift() {
    // No AKS cluster: Reader on the subscription is all drift needs.
    let sb = applied("github-actions");
    let run = sb.drift_as_reader(&example("github-actions"));
    expect_code(&run, 0);
    assert!(run.stdout.contains("In sync"), "{}", run.transcript());
    // It sees drift as the Owner does.
    let identity = sb.identity("rg-orders-ci", "orders-deployer");
    let mut tags = identity["tags"].clone();
    tags["team"] = json!("someone-else");
    let (status, body) = sb.arm(
        Method::PATCH,
        &identity_path("rg-orders-ci", "orders-deployer"),
        Some(json!({ "tags": tags })),
    );
    assert_eq!(status, 200, "{body}");
    expect_code(&sb.drift_as_reader(&example("github-actions")), 2);
}

#[test]
fn a_scope_that_cannot_be_read_is_an_error_not_in_sync() {
    // An AKS cluster's user kubeconfig needs more than Reader
    // (listClusterUserCredential/action): its objects cannot be read, so drift exits 1.
    let sb = applied("quickstart");
    let run = sb.drift_as_reader(&example("quickstart"));
    expect_code(&run, 1);
    assert!(run.stdout.contains("Incomplete"), "{}", run.transcript());
    assert!(
        run.stdout.contains("listClusterUserCredential"),
        "{}",
        run.transcript()
    );
}

#[test]
fn a_service_account_deleted_by_hand_is_drift() {
    let sb = applied("quickstart");
    let cluster = sb.aks("aks-workload-id");
    let (status, body) = sb.kube_delete(
        &cluster,
        "/api/v1/namespaces/workload-id-test/serviceaccounts/workload-id-sa",
    );
    assert_eq!(status, 200, "{body}");
    let run = report(&sb, &example("quickstart"), "service_account_deleted", 2);
    assert_eq!(
        classes(&run),
        vec![item(
            "service_account.lab/workload-id-test/workload-id-sa",
            "drifted",
            "deleted_outside_wiform"
        )]
    );
}

#[test]
fn an_identity_deleted_by_hand_is_drift_and_so_are_its_credentials_and_grants() {
    let sb = applied("quickstart");
    let (status, body) = sb.arm(
        Method::DELETE,
        &identity_path("rg-workload-id", "keyvault-reader"),
        None,
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let run = report(&sb, &example("quickstart"), "identity_deleted", 2);
    let found = classes(&run);
    assert!(
        found.contains(&item(
            "identity.keyvault-reader",
            "drifted",
            "deleted_outside_wiform"
        )),
        "{found:?}"
    );
    for (address, class, cause) in &found {
        if address.starts_with("federated_credential.") || address.starts_with("role_grant.") {
            assert_eq!(
                (class.as_str(), cause.as_str()),
                ("drifted", "deleted_outside_wiform"),
                "{address}"
            );
        }
    }
    // Its service account must take the new identity's client id: a consequence, not a config
    // change.
    assert!(
        found.contains(&item(
            "service_account.lab/workload-id-test/workload-id-sa",
            "drifted",
            "changed_outside_wiform"
        )),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(_, class, _)| class == "drifted"),
        "{found:?}"
    );
}

#[test]
fn workload_identity_turned_off_on_a_cluster_is_drift() {
    let sb = applied("quickstart");
    let path = format!(
        "/subscriptions/{}/resourceGroups/rg-workload-id/providers/Microsoft.ContainerService/managedClusters/aks-workload-id?api-version=2025-10-01",
        sb.read(|s| s.subscriptions[0].clone())
    );
    let (status, mut cluster) = sb.arm(Method::GET, &path, None);
    assert_eq!(status, 200, "{cluster}");
    cluster["properties"]["securityProfile"]["workloadIdentity"]["enabled"] = json!(false);
    let (status, body) = sb.arm(Method::PUT, &path, Some(cluster));
    assert!(status == 200 || status == 201, "{status} {body}");
    // The sandbox's update is a long-running operation: wait until the cluster says so.
    for _ in 0..100 {
        let (_, now) = sb.arm(Method::GET, &path, None);
        if now["properties"]["securityProfile"]["workloadIdentity"]["enabled"] == json!(false)
            && now["properties"]["provisioningState"] == json!("Succeeded")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let run = report(&sb, &example("quickstart"), "workload_identity_disabled", 2);
    assert_eq!(
        classes(&run),
        vec![item("cluster.lab", "drifted", "changed_outside_wiform")]
    );
}

#[test]
fn an_application_renamed_by_hand_is_drift() {
    let sb = applied("app-registration");
    let object_id = sb.read(|s| {
        s.applications
            .values()
            .find(|a| a.display_name == "AKS Workload Identity")
            .map(|a| a.id.clone())
            .expect("the application")
    });
    let (status, body) = sb.graph(
        Method::PATCH,
        &format!("/applications/{object_id}"),
        Some(json!({"displayName": "Renamed in the portal"})),
    );
    assert!(status == 204 || status == 200, "{status} {body}");
    let run = report(&sb, &example("app-registration"), "application_renamed", 2);
    let found = classes(&run);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].1.as_str(), found[0].2.as_str()),
        ("drifted", "changed_outside_wiform"),
        "{found:?}"
    );
}

#[test]
fn a_resource_group_tag_changed_by_hand_is_drift() {
    let sb = applied("github-actions");
    let path = format!(
        "/subscriptions/{}/resourcegroups/rg-orders-ci?api-version=2021-04-01",
        sb.read(|s| s.subscriptions[0].clone())
    );
    let (status, group) = sb.arm(Method::GET, &path, None);
    assert_eq!(status, 200, "{group}");
    let mut tags = group["tags"].clone();
    tags["team"] = json!("someone-else");
    let (status, body) = sb.arm(Method::PATCH, &path, Some(json!({ "tags": tags })));
    assert_eq!(status, 200, "{body}");
    let run = report(
        &sb,
        &example("github-actions"),
        "resource_group_tag_changed",
        2,
    );
    assert_eq!(
        classes(&run),
        vec![item(
            "resource_group.rg-orders-ci",
            "drifted",
            "changed_outside_wiform"
        )]
    );
}

#[test]
fn a_namespace_deleted_by_hand_is_drift() {
    let sb = applied("quickstart");
    let cluster = sb.aks("aks-workload-id");
    let (status, body) = sb.kube_delete(&cluster, "/api/v1/namespaces/workload-id-test");
    assert!(status == 200 || status == 202, "{status} {body}");
    // The namespace is Terminating (the sandbox, like a kube-apiserver without the namespace
    // controller, keeps it so): it and its service account are on their way out.
    let run = report(&sb, &example("quickstart"), "namespace_deleted", 2);
    let found = classes(&run);
    assert!(
        found.contains(&item(
            "service_account.lab/workload-id-test/workload-id-sa",
            "drifted",
            "deleted_outside_wiform"
        )),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(_, class, _)| class == "drifted"),
        "{found:?}"
    );
}

#[test]
fn a_role_assignment_of_an_application_deleted_by_hand_is_drift() {
    let sb = applied("app-registration");
    let principal = sb.read(|s| {
        s.service_principals
            .values()
            .find(|p| p.display_name == "AKS Workload Identity")
            .expect("the application's service principal")
            .id
            .clone()
    });
    let id = owned_assignment(&sb, &principal, "namespaces/my-eventhub-namespace");
    let (status, body) = sb.arm(
        Method::DELETE,
        &format!("{id}?api-version=2022-04-01"),
        None,
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let run = sb.drift(&example("app-registration"), &["--format", "json"]);
    expect_code(&run, 2);
    let found = classes(&run);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].1.as_str(), found[0].2.as_str()),
        ("drifted", "deleted_outside_wiform"),
        "{found:?}"
    );
}

#[test]
fn a_credential_changed_by_hand_is_drift() {
    let sb = applied("github-actions");
    let (status, body) = sb.arm(
        Method::PUT,
        &credential_path("rg-orders-ci", "orders-deployer", "github-main"),
        Some(json!({"properties": {
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:contoso/orders:ref:refs/heads/someone-elses-branch",
            "audiences": ["api://AzureADTokenExchange"],
        }})),
    );
    assert!(status == 200 || status == 201, "{status} {body}");
    let run = report(&sb, &example("github-actions"), "credential_changed", 2);
    assert_eq!(
        classes(&run),
        vec![item(
            "federated_credential.orders-deployer/github-main",
            "drifted",
            "changed_outside_wiform"
        )]
    );
}

#[test]
fn an_application_deleted_by_hand_is_drift() {
    let sb = applied("app-registration");
    let object_id = sb.read(|s| {
        s.applications
            .values()
            .find(|a| a.display_name == "AKS Workload Identity")
            .map(|a| a.id.clone())
            .expect("the application")
    });
    let (status, body) = sb.graph(Method::DELETE, &format!("/applications/{object_id}"), None);
    assert_eq!(status, 204, "{body}");
    let run = report(&sb, &example("app-registration"), "application_deleted", 2);
    let found = classes(&run);
    assert!(
        found.contains(&item(
            "identity.workload",
            "drifted",
            "deleted_outside_wiform"
        )),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(_, class, _)| class == "drifted"),
        "{found:?}"
    );
}
