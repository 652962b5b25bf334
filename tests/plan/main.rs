//! `wiform plan --sandbox` and `wiform apply --sandbox` end to end: the real binary against a
//! sandbox the test starts (the CLI connects to it through `{state_dir}/endpoint`, as it does to
//! `wiform sandbox serve`), for every example: from empty, once applied, and after changes made
//! by hand in Azure and Kubernetes or in the config. Snapshots (insta) hold the plans with the
//! run-dependent values (port, GUIDs of created objects, fingerprint) normalised. Request-count
//! tests hold how many calls observing a stack takes.

mod drift;
mod support;
mod verify;

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use wiform::builtin_roles;

use support::{
    HAND_MADE_ASSIGNMENT, HAND_MADE_CLIENT_ID, Run, Sandbox, by_api, by_operation, credential_path,
    edited_copy, example, identity_path, normalise, role_assignment_path, role_definition_id,
};

const NO_CHANGES: &str = "No changes. Azure and Kubernetes match identity.toml.";

const EXAMPLES: [&str; 6] = [
    "ci",
    "quickstart",
    "app-registration",
    "github-actions",
    "multi-cluster",
    "self-managed",
];

/// A plan's stdout with the run-dependent values replaced.
fn stable(sb: &Sandbox, run: &Run) -> String {
    normalise(&run.stdout, &[(sb.dir(), "<sandbox-dir>")])
}

/// Snapshots the normalised stdout of `run` as `plan__{name}`.
fn snapshot(sb: &Sandbox, name: &str, run: &Run) {
    insta::assert_snapshot!(name.to_string(), stable(sb, run));
}

/// What a plan does to one resource.
#[derive(Debug, PartialEq)]
struct Step {
    action: String,
    reason: Option<String>,
    not_in_config: bool,
}

/// The resources apply changes, by address.
type Steps = BTreeMap<String, Step>;

/// What the JSON plan does (only resources apply changes).
fn actions(json_plan: &str) -> Steps {
    let plan: Value = serde_json::from_str(json_plan)
        .unwrap_or_else(|e| panic!("the plan is JSON ({e}):\n{json_plan}"));
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| !matches!(c["action"].as_str(), Some("no_op" | "read")))
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                Step {
                    action: c["action"].as_str().unwrap().to_string(),
                    reason: c["reason"].as_str().map(String::from),
                    not_in_config: c["not_in_config"].as_bool().unwrap_or(false),
                },
            )
        })
        .collect()
}

/// A step without a reason, for a resource in the config.
fn action(name: &str) -> Step {
    Step {
        action: name.to_string(),
        reason: None,
        not_in_config: false,
    }
}

/// A plan that must end with exit code `code`.
fn expect_code(run: &Run, code: i32) {
    assert_eq!(run.code, code, "{}", run.transcript());
    assert!(
        !run.stderr.contains("error"),
        "the plan has errors:\n{}",
        run.transcript()
    );
}

/// Plan from empty (the first command preloads the sandbox), in the three formats; apply; plan
/// again: no changes.
fn from_empty_then_applied(name: &str) {
    let sb = Sandbox::start();
    let file = example(name);
    let key = name.replace('-', "_");

    let human = sb.plan(&file, &[]);
    expect_code(&human, 0);
    assert!(
        human.stderr.starts_with("sandbox: added resource group ")
            && human.stderr.trim_end().ends_with(" (first use)"),
        "the first command preloads the sandbox:\n{}",
        human.transcript()
    );
    assert!(
        sb.log().iter().any(|e| e.api == "arm"),
        "the command talked to the test's sandbox"
    );
    assert!(human.stdout.contains("Plan: "), "{}", human.transcript());
    snapshot(&sb, &format!("{key}_from_empty"), &human);

    let json = sb.plan(&file, &["--format", "json", "--detailed-exitcode"]);
    expect_code(&json, 2);
    assert_eq!(json.stderr, "", "preloaded once only");
    let planned = actions(&json.stdout);
    assert!(
        planned.values().any(|s| s.action == "create"),
        "{planned:?}"
    );
    snapshot(&sb, &format!("{key}_from_empty_json"), &json);

    let markdown = sb.plan(&file, &["--format", "markdown"]);
    expect_code(&markdown, 0);
    snapshot(&sb, &format!("{key}_from_empty_markdown"), &markdown);

    sb.apply(&file);

    let in_sync = sb.plan(&file, &[]);
    expect_code(&in_sync, 0);
    assert!(
        in_sync.stdout.trim_end().ends_with(NO_CHANGES),
        "{}",
        in_sync.transcript()
    );
    assert_eq!(in_sync.stderr, "");
    snapshot(&sb, &format!("{key}_applied"), &in_sync);

    let detailed = sb.plan(&file, &["--detailed-exitcode", "--format", "json"]);
    expect_code(&detailed, 0);
    assert!(actions(&detailed.stdout).is_empty());
}

#[test]
fn quickstart_from_empty_then_applied() {
    from_empty_then_applied("quickstart");
}

#[test]
fn app_registration_from_empty_then_applied() {
    from_empty_then_applied("app-registration");
}

#[test]
fn github_actions_from_empty_then_applied() {
    from_empty_then_applied("github-actions");
}

#[test]
fn multi_cluster_from_empty_then_applied() {
    from_empty_then_applied("multi-cluster");
}

#[test]
fn self_managed_from_empty_then_applied() {
    from_empty_then_applied("self-managed");
}

#[test]
fn ci_from_empty_then_applied() {
    from_empty_then_applied("ci");
}

#[test]
fn every_example_is_covered() {
    let mut found: Vec<String> = std::fs::read_dir(support::root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("identity.toml").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut covered = EXAMPLES.map(String::from).to_vec();
    covered.sort();
    assert_eq!(found, covered, "every example has its tests here");
}

// ---------------------------------------------------------------------------------------------
// Changes made by hand

/// A sandbox with example `name` applied.
fn applied(name: &str) -> Sandbox {
    let sb = Sandbox::start();
    sb.apply(&example(name));
    sb
}

/// Plans `file` from `cwd` in the human form (exit 0, and 2 with `--detailed-exitcode`) and
/// as JSON; returns the human run, the JSON run and what the plan does.
fn plan_changes(sb: &Sandbox, cwd: &Path, file: &str) -> (Run, Run, Steps) {
    let human = sb.plan_in(cwd, file, &[]);
    expect_code(&human, 0);
    assert!(!human.stdout.contains(NO_CHANGES), "{}", human.transcript());
    let detailed = sb.plan_in(cwd, file, &["--detailed-exitcode"]);
    expect_code(&detailed, 2);
    assert_eq!(detailed.stdout, human.stdout);
    let json = sb.plan_in(cwd, file, &["--format", "json", "--detailed-exitcode"]);
    expect_code(&json, 2);
    let planned = actions(&json.stdout);
    (human, json, planned)
}

#[test]
fn quickstart_identity_tag_changed_by_hand_is_updated() {
    let sb = applied("quickstart");
    let identity = sb.identity("rg-workload-id", "keyvault-reader");
    let mut tags = identity["tags"].clone();
    assert_eq!(tags["purpose"], "workload-id-lab", "{identity}");
    tags["purpose"] = json!("changed-by-hand");
    let (status, body) = sb.arm(
        Method::PATCH,
        &identity_path("rg-workload-id", "keyvault-reader"),
        Some(json!({ "tags": tags })),
    );
    assert_eq!(status, 200, "{body}");

    let file = example("quickstart");
    let (human, json, planned) = plan_changes(&sb, support::root(), &file);
    assert_eq!(
        planned,
        BTreeMap::from([("identity.keyvault-reader".to_string(), action("update"))])
    );
    snapshot(&sb, "quickstart_identity_tag_changed", &human);
    snapshot(&sb, "quickstart_identity_tag_changed_json", &json);
    let markdown = sb.plan(&file, &["--format", "markdown"]);
    expect_code(&markdown, 0);
    snapshot(&sb, "quickstart_identity_tag_changed_markdown", &markdown);

    // Apply carries the plan out.
    sb.apply(&file);
    expect_code(&sb.plan(&file, &["--detailed-exitcode"]), 0);
}

#[test]
fn quickstart_client_id_annotation_edited_by_hand_is_updated() {
    let sb = applied("quickstart");
    let cluster = sb.aks("aks-workload-id");
    let path = "/api/v1/namespaces/workload-id-test/serviceaccounts/workload-id-sa";
    let (status, body) = sb.kube_merge_patch(
        &cluster,
        path,
        "kubectl-annotate",
        json!({"metadata": {"annotations": {
            "azure.workload.identity/client-id": HAND_MADE_CLIENT_ID
        }}}),
    );
    assert_eq!(status, 200, "{body}");

    let (human, _, planned) = plan_changes(&sb, support::root(), &example("quickstart"));
    assert_eq!(
        planned,
        BTreeMap::from([(
            "service_account.lab/workload-id-test/workload-id-sa".to_string(),
            action("update")
        )])
    );
    snapshot(&sb, "quickstart_client_id_annotation_edited", &human);

    // Apply takes the annotation back from the other field manager, as the plan said.
    let applied = sb.apply(&example("quickstart"));
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let again = sb.plan(&example("quickstart"), &["--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn target_plans_one_resource_and_what_it_needs() {
    let sb = Sandbox::start();
    let file = example("multi-cluster");
    let run = sb.plan(
        &file,
        &[
            "--format",
            "json",
            "--target",
            "service_account.weu/orders/orders-api",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.transcript());
    let planned: Vec<String> = actions(&run.stdout).into_keys().collect();
    assert_eq!(
        planned,
        [
            "identity.orders-api",
            "namespace.weu/orders",
            "service_account.weu/orders/orders-api"
        ]
    );
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        plan["targets"],
        json!(["service_account.weu/orders/orders-api"])
    );

    let unknown = sb.plan(&file, &["--target", "service_account.weu/orders/order-api"]);
    assert_eq!(unknown.code, 1, "{}", unknown.transcript());
    assert!(
        unknown
            .stderr
            .contains("did you mean `service_account.weu/orders/orders-api`?"),
        "{}",
        unknown.transcript()
    );
}

#[test]
fn self_managed_token_expiration_edited_by_hand_is_updated() {
    let sb = applied("self-managed");
    let cluster = sb.standalone();
    let path = "/api/v1/namespaces/reports/serviceaccounts/report-generator";
    let (status, body) = sb.kube_get(&cluster, path);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["metadata"]["annotations"]["azure.workload.identity/service-account-token-expiration"],
        "3600",
        "{body}"
    );
    let (status, body) = sb.kube_merge_patch(
        &cluster,
        path,
        "kubectl-edit",
        json!({"metadata": {"annotations": {
            "azure.workload.identity/service-account-token-expiration": "86400"
        }}}),
    );
    assert_eq!(status, 200, "{body}");

    let file = example("self-managed");
    let (human, json, planned) = plan_changes(&sb, support::root(), &file);
    assert_eq!(
        planned,
        BTreeMap::from([(
            "service_account.onprem/reports/report-generator".to_string(),
            action("update")
        )])
    );
    snapshot(&sb, "self_managed_token_expiration_edited", &human);
    snapshot(&sb, "self_managed_token_expiration_edited_json", &json);
    let markdown = sb.plan(&file, &["--format", "markdown"]);
    expect_code(&markdown, 0);
    snapshot(
        &sb,
        "self_managed_token_expiration_edited_markdown",
        &markdown,
    );
}

#[test]
fn multi_cluster_federated_credential_deleted_by_hand_is_created_again() {
    let sb = applied("multi-cluster");
    let (status, body) = sb.arm(
        Method::DELETE,
        &credential_path("rg-identities", "orders-api", "neu-orders-orders-api"),
        None,
    );
    assert_eq!(status, 200, "{body}");

    let file = example("multi-cluster");
    let (human, json, planned) = plan_changes(&sb, support::root(), &file);
    assert_eq!(
        planned,
        BTreeMap::from([(
            "federated_credential.orders-api/neu:orders/orders-api".to_string(),
            action("create")
        )])
    );
    snapshot(&sb, "multi_cluster_federated_credential_deleted", &human);
    snapshot(
        &sb,
        "multi_cluster_federated_credential_deleted_json",
        &json,
    );
    let markdown = sb.plan(&file, &["--format", "markdown"]);
    expect_code(&markdown, 0);
    snapshot(
        &sb,
        "multi_cluster_federated_credential_deleted_markdown",
        &markdown,
    );

    // Apply carries the plan out.
    sb.apply(&file);
    expect_code(&sb.plan(&file, &["--detailed-exitcode"]), 0);
}

/// Adds a role assignment of `role` at `scope` for `principal_id` through ARM, as someone would
/// with `az role assignment create`.
fn assign_by_hand(sb: &Sandbox, scope: &str, role: &str, principal_id: &str) {
    let role = builtin_roles::by_name(role).expect("a built-in role");
    let (status, body) = sb.arm(
        Method::PUT,
        &role_assignment_path(scope, HAND_MADE_ASSIGNMENT),
        Some(json!({"properties": {
            "roleDefinitionId": role_definition_id(role.id),
            "principalId": principal_id,
            "principalType": "ServicePrincipal",
        }})),
    );
    assert_eq!(status, 201, "{body}");
}

/// The plan deletes one role assignment, whose address starts with `address`: not in the
/// config, made outside wiform.
fn assert_planned_as_unowned_delete(planned: &Steps, address: &str) {
    assert_eq!(planned.len(), 1, "{planned:?}");
    let (planned_address, step) = planned.iter().next().unwrap();
    assert!(planned_address.starts_with(address), "{planned_address}");
    assert_eq!(step.action, "delete", "{planned_address}");
    assert!(step.not_in_config, "{planned_address}");
    let reason = step.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("made outside wiform"), "{reason}");
}

#[test]
fn github_actions_extra_role_assignment_added_by_hand_is_deleted() {
    let sb = applied("github-actions");
    let principal = sb.identity("rg-orders-ci", "orders-deployer")["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    assign_by_hand(&sb, "resourceGroups/rg-orders-app", "Reader", &principal);

    let (human, _, planned) = plan_changes(&sb, support::root(), &example("github-actions"));
    assert_planned_as_unowned_delete(&planned, "role_grant.orders-deployer[\"Reader\" @ ");
    assert!(human.stdout.contains("not in config"), "{}", human.stdout);
    snapshot(&sb, "github_actions_extra_role_assignment", &human);
}

#[test]
fn app_registration_extra_role_assignment_added_by_hand_is_deleted() {
    let sb = applied("app-registration");
    let principal = sb.read(|s| {
        s.service_principals
            .values()
            .find(|p| p.display_name == "AKS Workload Identity")
            .expect("the application's service principal")
            .id
            .clone()
    });
    assign_by_hand(
        &sb,
        "resourceGroups/myResourceGroup/providers/Microsoft.Storage/storageAccounts/mystorageaccount",
        "Storage Blob Data Reader",
        &principal,
    );

    let file = example("app-registration");
    let (human, json, planned) = plan_changes(&sb, support::root(), &file);
    assert_planned_as_unowned_delete(
        &planned,
        "role_grant.workload[\"Storage Blob Data Reader\" @ ",
    );
    assert!(human.stdout.contains("not in config"), "{}", human.stdout);
    snapshot(&sb, "app_registration_extra_role_assignment", &human);
    snapshot(&sb, "app_registration_extra_role_assignment_json", &json);
    let markdown = sb.plan(&file, &["--format", "markdown"]);
    expect_code(&markdown, 0);
    snapshot(
        &sb,
        "app_registration_extra_role_assignment_markdown",
        &markdown,
    );

    // Apply carries the plan out.
    sb.apply(&file);
    expect_code(&sb.plan(&file, &["--detailed-exitcode"]), 0);
}

#[test]
fn github_actions_subject_changed_in_the_config_replaces_the_credential() {
    let sb = applied("github-actions");
    let copy = edited_copy("github-actions", |text| {
        text.replace(
            "repo:contoso/orders:environment:production",
            "repo:contoso/orders:environment:prod-eu",
        )
    });
    let cwd = copy.path();

    let (human, json, planned) = plan_changes(&sb, cwd, "identity.toml");
    assert_eq!(planned.len(), 2, "{planned:?}");
    let step = &planned["federated_credential.orders-deployer/github-production"];
    assert_eq!(step.action, "replace");
    let reason = step.reason.as_deref().expect("a reason");
    assert!(reason.starts_with("subject changed"), "{reason}");
    // The identity records the credentials it now has, for drift.
    let identity = &planned["identity.orders-deployer"];
    assert_eq!(identity.action, "update");
    let reason = identity.reason.as_deref().expect("a reason");
    assert!(
        reason.starts_with("records the federated credentials"),
        "{reason}"
    );
    snapshot(&sb, "github_actions_subject_changed", &human);
    snapshot(&sb, "github_actions_subject_changed_json", &json);
    let markdown = sb.plan_in(cwd, "identity.toml", &["--format", "markdown"]);
    expect_code(&markdown, 0);
    snapshot(&sb, "github_actions_subject_changed_markdown", &markdown);

    // Apply carries the plan out.
    sb.apply_in(cwd, "identity.toml");
    expect_code(
        &sb.plan_in(cwd, "identity.toml", &["--detailed-exitcode"]),
        0,
    );
}

// ---------------------------------------------------------------------------------------------
// Request counts

/// Requests one `plan` of the multi-cluster example makes once it is applied, to ARM and Graph
/// together: the sandbox's preload check (resource groups, AKS clusters), then the observation
/// (resource groups, AKS clusters, identities, the identity's federated credentials, role
/// assignments, applications, and each cluster's user credential).
const MULTI_CLUSTER_AZURE_REQUESTS: usize = 10;
/// And to the clusters' Kubernetes APIs: per cluster, namespaces, the service accounts of the
/// namespace, and service accounts cluster-wide.
const MULTI_CLUSTER_KUBE_REQUESTS: usize = 6;

/// What one plan of `file` (from `cwd`) asked of the sandbox, after checking that it plans no
/// changes: (ARM + Graph, Kubernetes, a description for messages).
fn observe_counts(sb: &Sandbox, cwd: &Path, file: &str) -> (usize, usize, String) {
    sb.clear_log();
    let run = sb.plan_in(cwd, file, &["--detailed-exitcode"]);
    expect_code(&run, 0);
    let entries = sb.log();
    let apis = by_api(&entries);
    let azure = apis.get("arm").copied().unwrap_or(0) + apis.get("graph").copied().unwrap_or(0);
    let kube = apis.get("kube").copied().unwrap_or(0);
    let detail = format!("{apis:?}\n{:#?}", by_operation(&entries));
    let failed: Vec<_> = entries.iter().filter(|e| e.status >= 400).collect();
    assert!(failed.is_empty(), "{failed:#?}\n{detail}");
    (azure, kube, detail)
}

#[test]
fn observing_the_applied_multi_cluster_example_takes_a_fixed_number_of_requests() {
    let sb = applied("multi-cluster");
    let file = example("multi-cluster");
    let (azure, kube, detail) = observe_counts(&sb, support::root(), &file);
    assert_eq!(
        (azure, kube),
        (MULTI_CLUSTER_AZURE_REQUESTS, MULTI_CLUSTER_KUBE_REQUESTS),
        "{detail}"
    );
    // The same again: observing is repeatable.
    let again = observe_counts(&sb, support::root(), &file);
    assert_eq!((again.0, again.1), (azure, kube), "{}", again.2);
}

#[test]
fn role_grants_on_one_scope_do_not_add_requests() {
    const SCOPE: &str =
        "resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/ordersdata";
    const ROLES: [&str; 10] = [
        "Storage Blob Data Reader",
        "Storage Blob Data Owner",
        "Storage Queue Data Contributor",
        "Storage Queue Data Reader",
        "Key Vault Secrets User",
        "Key Vault Reader",
        "AcrPull",
        "App Configuration Data Reader",
        "Azure Event Hubs Data Receiver",
        "Azure Service Bus Data Receiver",
    ];
    let copy = edited_copy("multi-cluster", |mut text| {
        assert!(
            text.contains(&format!("scope = \"{SCOPE}\"")),
            "the example's grant scope"
        );
        for role in ROLES {
            text.push_str(&format!(
                "\n[[role_grants]]\nidentity = \"orders-api\"\nrole = \"{role}\"\nscope = \"{SCOPE}\"\n"
            ));
        }
        text
    });
    let cwd = copy.path();
    let sb = Sandbox::start();
    let applied = sb.apply_in(cwd, "identity.toml");
    // The example's 8 creations and the 10 extra grants.
    assert!(
        applied
            .transcript()
            .contains("Apply complete! 18 added, 2 changed,"),
        "{}",
        applied.transcript()
    );
    let grants = sb.read(|s| {
        s.role_assignments
            .values()
            .filter(|a| {
                a.scope
                    .to_ascii_lowercase()
                    .ends_with("/storageaccounts/ordersdata")
            })
            .count()
    });
    assert_eq!(grants, 11);
    let (azure, kube, detail) = observe_counts(&sb, cwd, "identity.toml");
    assert_eq!(
        (azure, kube),
        (MULTI_CLUSTER_AZURE_REQUESTS, MULTI_CLUSTER_KUBE_REQUESTS),
        "11 role grants on one scope take as many requests as 1:\n{detail}"
    );
}
