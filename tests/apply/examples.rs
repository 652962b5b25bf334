//! Every example through its life: applied from empty, then edited one way per test (a
//! service account added, one removed, a role grant moved to another scope, an identity
//! renamed) or torn down beside objects wiform does not own, which must survive. After each
//! apply the plan is empty and the sandbox holds exactly what the config asks for: the stack's
//! identities, applications, credentials, role assignments, service accounts and namespaces,
//! no duplicate role assignment and none whose principal is gone.

use std::path::{Path, PathBuf};

use reqwest::Method;
use wiform_sandbox::seed::{Seed, SeedCredential, SeedGroup, SeedIdentity, SeedRoleAssignment};

use crate::support::{ClusterRef, Config, Run, Sandbox, identity_path, normalise_scope, table};

const EXAMPLES: [&str; 6] = [
    "app-registration",
    "ci",
    "github-actions",
    "multi-cluster",
    "quickstart",
    "self-managed",
];

/// Writes `config` to `dir`, applies it (exit 0, "Apply complete!"), plans again (no changes),
/// and compares the sandbox with the config.
fn apply_step(sb: &Sandbox, config: &Config, dir: &Path, what: &str) -> (PathBuf, Run) {
    let file = config.write(dir);
    let run = sb.try_apply(&file);
    assert!(
        run.code == 0 && run.stdout.contains("Apply complete!"),
        "apply after {what} failed:\n{}",
        run.transcript()
    );
    sb.assert_in_sync(&file);
    sb.assert_matches(config, what);
    (file, run)
}

fn first_identity(config: &Config) -> (String, bool) {
    config
        .identity_keys()
        .into_iter()
        .next()
        .expect("the example has an identity")
}

/// Table `field` of the first element of `[[list]]`.
fn first_of(config: &mut Config, list: &str, field: &str) -> String {
    config.list(list)[0]
        .get(field)
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("{list}[0].{field}"))
        .to_string()
}

/// Objects nobody declared: an identity with a credential and a role assignment at `scope`,
/// and in each cluster of `clusters` a service account in a namespace made by hand.
struct Unowned {
    scope: String,
    clusters: Vec<ClusterRef>,
}

const LEGACY_GROUP: &str = "rg-legacy";
const LEGACY_IDENTITY: &str = "legacy-api";

impl Unowned {
    fn seed(sb: &Sandbox, scope: &str, clusters: Vec<ClusterRef>) -> Unowned {
        sb.seed(&Seed {
            resource_groups: vec![SeedGroup {
                name: LEGACY_GROUP.into(),
                location: "westeurope".into(),
                tags: Default::default(),
            }],
            identities: vec![SeedIdentity {
                resource_group: LEGACY_GROUP.into(),
                name: LEGACY_IDENTITY.into(),
                location: "westeurope".into(),
                tags: [("team".to_string(), "legacy".to_string())].into(),
                client_id: None,
                principal_id: None,
            }],
            federated_credentials: vec![SeedCredential {
                identity: format!("{LEGACY_GROUP}/{LEGACY_IDENTITY}"),
                name: "hand-made".into(),
                issuer: "https://oidc.example.com/legacy".into(),
                subject: "system:serviceaccount:legacy:legacy-sa".into(),
                audiences: vec!["api://AzureADTokenExchange".into()],
            }],
            role_assignments: vec![SeedRoleAssignment {
                scope: scope.to_string(),
                role: "Reader".into(),
                principal: format!("{LEGACY_GROUP}/{LEGACY_IDENTITY}"),
                description: Some("granted by hand".into()),
            }],
            ..Seed::default()
        });
        for cluster in &clusters {
            sb.service_account_by_hand(&sb.cluster_of(cluster), "legacy", "legacy-sa");
        }
        Unowned {
            scope: scope.to_string(),
            clusters,
        }
    }

    /// Everything seeded is still there, untouched.
    fn assert_survived(&self, sb: &Sandbox) {
        let (status, identity) = sb.arm(
            Method::GET,
            &identity_path(LEGACY_GROUP, LEGACY_IDENTITY),
            None,
        );
        assert_eq!(status, 200, "the unowned identity survives: {identity}");
        assert_eq!(identity["tags"]["team"], "legacy", "{identity}");
        let principal = identity["properties"]["principalId"]
            .as_str()
            .expect("principalId")
            .to_string();
        let (credentials, assignments) = sb.read(|s| {
            (
                s.federated_credentials
                    .values()
                    .filter(|f| f.identity_key.ends_with(&format!("/{LEGACY_IDENTITY}")))
                    .map(|f| f.name.clone())
                    .collect::<Vec<_>>(),
                s.role_assignments
                    .values()
                    .filter(|a| a.principal_id == principal)
                    .map(|a| normalise_scope(&a.scope))
                    .collect::<Vec<_>>(),
            )
        });
        assert_eq!(
            credentials,
            ["hand-made"],
            "the unowned credential survives"
        );
        assert_eq!(
            assignments,
            [normalise_scope(&self.scope)],
            "the unowned role assignment survives"
        );
        for cluster in &self.clusters {
            let access = sb.cluster_of(cluster);
            assert!(
                sb.has_service_account(&access, "legacy", "legacy-sa"),
                "the unowned service account in {cluster:?} survives"
            );
        }
    }
}

/// A sandbox with example `name` applied from empty (exit 0, then no changes, and the sandbox
/// holds what the config asks for), the config, and a directory to write edited copies to.
fn applied(name: &str) -> (Sandbox, Config, tempfile::TempDir) {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config::example(name);
    apply_step(&sb, &config, dir.path(), "the first apply");
    (sb, config, dir)
}

/// The key and sandbox place of the config's first cluster; github-actions has none, so it
/// gets a self-managed one (the sandbox's standalone cluster).
fn some_cluster(config: &mut Config) -> (String, ClusterRef) {
    if let Some(cluster) = config.clusters().into_iter().next() {
        return cluster;
    }
    config.section("clusters").insert(
        "added".into(),
        table(&[
            ("issuer", "https://oidc.example.com/added"),
            ("kube_context", "added"),
        ]),
    );
    ("added".to_string(), ClusterRef::Standalone)
}

/// The client id of identity `key` (managed or application) in the sandbox.
fn client_id(sb: &Sandbox, config: &Config, key: &str) -> String {
    let inventory = sb.inventory(&config.stack());
    let name = config.identity_name(key);
    inventory
        .identities
        .iter()
        .chain(&inventory.applications)
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("identity {key} is in the sandbox: {inventory:#?}"))
        .client_id
        .clone()
}

fn service_account_added(name: &str) {
    let (sb, mut config, dir) = applied(name);
    let (cluster_key, cluster) = some_cluster(&mut config);
    let (identity, _) = first_identity(&config);
    config.list("service_accounts").push(table(&[
        ("cluster", &cluster_key),
        ("namespace", "added-ns"),
        ("name", "added-sa"),
        ("identity", &identity),
    ]));
    apply_step(&sb, &config, dir.path(), "adding a service account");
    let (status, sa) = sb.kube(
        &sb.cluster_of(&cluster),
        Method::GET,
        "/api/v1/namespaces/added-ns/serviceaccounts/added-sa",
        None,
    );
    assert_eq!(status, 200, "{sa}");
    assert_eq!(
        sa["metadata"]["annotations"]["azure.workload.identity/client-id"],
        client_id(&sb, &config, &identity),
        "{sa}"
    );
}

/// The first service account of the config removed, while another one keeps its namespace in
/// use: the service account and its credential go, the namespace and the neighbour stay.
fn service_account_removed(name: &str) {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::example(name);
    let (cluster_key, _) = some_cluster(&mut config);
    let (identity, _) = first_identity(&config);
    if config.list("service_accounts").is_empty() {
        config.list("service_accounts").push(table(&[
            ("cluster", &cluster_key),
            ("namespace", "added-ns"),
            ("name", "first-sa"),
            ("identity", &identity),
        ]));
    }
    let first = config.list("service_accounts")[0].clone();
    let first = first.as_table().expect("a table");
    let field = |k: &str| first[k].as_str().expect(k).to_string();
    let (cluster_key, namespace, removed) = (field("cluster"), field("namespace"), field("name"));
    let mut neighbour = first.clone();
    neighbour.insert("name".into(), "neighbour-sa".into());
    config
        .list("service_accounts")
        .push(toml::Value::Table(neighbour));
    apply_step(&sb, &config, dir.path(), "the first apply");

    config.list("service_accounts").remove(0);
    apply_step(&sb, &config, dir.path(), "removing a service account");
    let cluster = sb.cluster_of(
        &config
            .clusters()
            .into_iter()
            .find(|(k, _)| *k == cluster_key)
            .expect("the cluster stays in the config")
            .1,
    );
    assert!(
        !sb.has_service_account(&cluster, &namespace, &removed),
        "the removed service account {namespace}/{removed} is gone"
    );
    assert!(sb.has_service_account(&cluster, &namespace, "neighbour-sa"));
    assert!(sb.has_namespace(&cluster, &namespace));
}

/// The first role grant moved to another scope: an assignment at the new scope, none left at
/// the old one.
fn role_grant_moved(name: &str) {
    let (sb, mut config, dir) = applied(name);
    let old_scope = first_of(&mut config, "role_grants", "scope");
    let new_scope = format!("{old_scope}2");
    config.list("role_grants")[0]
        .as_table_mut()
        .expect("a table")
        .insert("scope".into(), new_scope.clone().into());
    apply_step(&sb, &config, dir.path(), "moving a role grant");
    let scopes: Vec<String> = sb
        .inventory(&config.stack())
        .grants
        .into_iter()
        .map(|(_, _, scope)| scope)
        .collect();
    assert!(
        !scopes.contains(&normalise_scope(&Config::full_scope(&old_scope))),
        "the assignment at the old scope is gone: {scopes:?}"
    );
    assert!(scopes.contains(&normalise_scope(&Config::full_scope(&new_scope))));
}

/// The first identity renamed: a new identity (or application), the old one gone with its
/// principal, credentials and role assignments.
fn identity_renamed(name: &str) {
    let (sb, mut config, dir) = applied(name);
    let (identity, is_application) = first_identity(&config);
    let before = sb.inventory(&config.stack());
    let old_name = config.identity_name(&identity);
    let old = if is_application {
        &before.applications
    } else {
        &before.identities
    }
    .iter()
    .find(|p| p.name == old_name)
    .expect("the identity before its rename")
    .clone();
    let renamed = format!("{identity}-renamed");
    config.rename_identity(&identity, &renamed);
    apply_step(&sb, &config, dir.path(), "renaming an identity");
    let (principal_left, applications_left) = sb.read(|s| {
        (
            s.service_principals.contains_key(&old.principal_id),
            s.applications
                .values()
                .filter(|a| a.app_id == old.client_id)
                .count(),
        )
    });
    assert!(
        !principal_left,
        "the old identity's principal {} is gone",
        old.principal_id
    );
    assert_eq!(applications_left, 0, "the old application is gone");
    assert_ne!(client_id(&sb, &config, &renamed), old.client_id);
    if !is_application {
        let group = config
            .identity_group(&renamed)
            .expect("a managed identity has a resource group");
        let (status, body) = sb.arm(Method::GET, &identity_path(&group, &old_name), None);
        assert_eq!(status, 404, "the old identity {old_name} is gone: {body}");
    }
}

/// Everything of the example removed beside objects nobody declared, which survive. The config
/// keeps one placeholder identity.
fn torn_down_beside_unowned_objects(name: &str) {
    let (sb, config, dir) = applied(name);
    let scope = Config::full_scope(
        config
            .table
            .get("role_grants")
            .and_then(|g| g[0]["scope"].as_str())
            .expect("a role grant"),
    );
    let clusters: Vec<ClusterRef> = config.clusters().into_iter().map(|(_, c)| c).collect();
    let unowned = Unowned::seed(&sb, &scope, clusters);
    // Only version, name, [azure] and the clusters (without them, wiform could not reach the
    // clusters to remove the stack's service accounts and namespaces).
    let teardown = Config {
        table: config
            .table
            .iter()
            .filter(|(k, _)| matches!(k.as_str(), "version" | "name" | "azure" | "clusters"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let (_, run) = apply_step(&sb, &teardown, dir.path(), "removing everything");
    assert!(
        run.stdout
            .contains("Apply complete! 0 added, 0 changed, 0 replaced,")
            && !run.stdout.contains(" 0 destroyed"),
        "{}",
        run.transcript()
    );
    unowned.assert_survived(&sb);
}

#[test]
fn quickstart_service_account_added() {
    service_account_added("quickstart");
}

#[test]
fn quickstart_service_account_removed() {
    service_account_removed("quickstart");
}

#[test]
fn quickstart_role_grant_moved() {
    role_grant_moved("quickstart");
}

#[test]
fn quickstart_identity_renamed() {
    identity_renamed("quickstart");
}

#[test]
fn multi_cluster_service_account_added() {
    service_account_added("multi-cluster");
}

#[test]
fn multi_cluster_service_account_removed() {
    service_account_removed("multi-cluster");
}

#[test]
fn multi_cluster_role_grant_moved() {
    role_grant_moved("multi-cluster");
}

#[test]
fn multi_cluster_identity_renamed() {
    identity_renamed("multi-cluster");
}

#[test]
fn self_managed_service_account_added() {
    service_account_added("self-managed");
}

#[test]
fn self_managed_service_account_removed() {
    service_account_removed("self-managed");
}

#[test]
fn self_managed_role_grant_moved() {
    role_grant_moved("self-managed");
}

#[test]
fn self_managed_identity_renamed() {
    identity_renamed("self-managed");
}

#[test]
fn github_actions_service_account_added() {
    service_account_added("github-actions");
}

#[test]
fn github_actions_service_account_removed() {
    service_account_removed("github-actions");
}

#[test]
fn github_actions_role_grant_moved() {
    role_grant_moved("github-actions");
}

#[test]
fn github_actions_identity_renamed() {
    identity_renamed("github-actions");
}

#[test]
fn quickstart_torn_down_beside_unowned_objects() {
    torn_down_beside_unowned_objects("quickstart");
}

#[test]
fn multi_cluster_torn_down_beside_unowned_objects() {
    torn_down_beside_unowned_objects("multi-cluster");
}

#[test]
fn self_managed_torn_down_beside_unowned_objects() {
    torn_down_beside_unowned_objects("self-managed");
}

#[test]
fn app_registration_role_grant_moved() {
    role_grant_moved("app-registration");
}

#[test]
fn github_actions_torn_down_beside_unowned_objects() {
    torn_down_beside_unowned_objects("github-actions");
}

#[test]
fn app_registration_service_account_added() {
    service_account_added("app-registration");
}

#[test]
fn app_registration_service_account_removed() {
    service_account_removed("app-registration");
}

#[test]
fn app_registration_identity_renamed() {
    identity_renamed("app-registration");
}

#[test]
fn app_registration_torn_down_beside_unowned_objects() {
    torn_down_beside_unowned_objects("app-registration");
}

#[test]
fn every_example_has_a_lifecycle() {
    let mut found: Vec<String> = std::fs::read_dir(crate::support::root().join("examples"))
        .expect("examples/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.join("identity.toml").is_file())
        .map(|p| {
            p.file_name()
                .expect("a name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    assert_eq!(found, EXAMPLES, "every example has its lifecycle test here");
}

/// A namespace wiform made that now also holds a service account someone else made is not
/// deleted with the stack's service account: apply says so and names the object, and removes
/// everything else.
#[test]
fn a_namespace_holding_a_foreign_object_is_kept_and_named() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::example("quickstart");
    apply_step(&sb, &config, dir.path(), "the first apply");
    let cluster = sb.aks("aks-workload-id");
    sb.service_account_by_hand(&cluster, "workload-id-test", "someone-elses");

    config.table.remove("service_accounts");
    let file = config.write(dir.path());
    let run = sb.try_apply(&file);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let text = run.text();
    for expected in [
        "namespace.lab/workload-id-test",
        "someone-elses",
        "Apply incomplete",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} in:\n{}",
            run.transcript()
        );
    }
    assert!(!sb.has_service_account(&cluster, "workload-id-test", "workload-id-sa"));
    assert!(sb.has_service_account(&cluster, "workload-id-test", "someone-elses"));
    assert!(sb.has_namespace(&cluster, "workload-id-test"));
    // The stack's credential of the removed service account went too.
    let inventory = sb.inventory(&config.stack());
    assert_eq!(
        inventory.credentials.get("keyvault-reader").map(Vec::len),
        Some(0),
        "{inventory:#?}"
    );

    // Once the foreign object is moved away, the namespace goes.
    let (status, body) = sb.kube(
        &cluster,
        Method::DELETE,
        "/api/v1/namespaces/workload-id-test/serviceaccounts/someone-elses",
        None,
    );
    assert_eq!(status, 200, "{body}");
    apply_step(&sb, &config, dir.path(), "removing the foreign object");
    assert!(!sb.has_namespace(&cluster, "workload-id-test"));
}

#[test]
fn ci_service_account_added() {
    service_account_added("ci");
}

#[test]
fn ci_service_account_removed() {
    service_account_removed("ci");
}

#[test]
fn ci_role_grant_moved() {
    role_grant_moved("ci");
}

#[test]
fn ci_identity_renamed() {
    identity_renamed("ci");
}

#[test]
fn ci_torn_down_beside_unowned_objects() {
    torn_down_beside_unowned_objects("ci");
}
