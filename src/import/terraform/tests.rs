use serde_json::json;

use super::*;
use crate::config::{self, SourceFile};
use crate::import::write::{state_rm_command, write};

const FIXTURE: &str = include_str!("../../../tests/fixtures/terraform/show.json");
const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/t/c/";

fn fixture() -> Import {
    read(FIXTURE, "orders-platform", "show.json").expect("the fixture reads")
}

/// A `terraform show -json` document with these root module resources.
fn state(resources: Vec<Value>) -> Value {
    json!({
        "format_version": "1.0",
        "terraform_version": "1.9.8",
        "values": { "root_module": { "resources": resources } }
    })
}

fn resource(address: &str, kind: &str, values: Value) -> Value {
    let name = address.rsplit('.').next().unwrap_or(address);
    json!({
        "address": address,
        "mode": "managed",
        "type": kind,
        "name": name.split('[').next().unwrap_or(name),
        "provider_name": "registry.terraform.io/hashicorp/azurerm",
        "values": values,
    })
}

fn identity_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-id/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

fn identity(address: &str, name: &str, n: u8) -> Value {
    resource(
        address,
        "azurerm_user_assigned_identity",
        json!({
            "id": identity_id(name),
            "name": name,
            "resource_group_name": "rg-id",
            "location": "westeurope",
            "tags": {},
            "client_id": format!("11111111-0000-4000-8000-0000000000a{n}"),
            "principal_id": format!("11111111-0000-4000-8000-0000000000b{n}"),
            "tenant_id": TENANT,
        }),
    )
}

fn credential(address: &str, identity: &str, name: &str, issuer: &str, subject: &str) -> Value {
    resource(
        address,
        "azurerm_federated_identity_credential",
        json!({
            "id": format!("{}/federatedIdentityCredentials/{name}", identity_id(identity)),
            "name": name,
            "parent_id": identity_id(identity),
            "resource_group_name": "rg-id",
            "issuer": issuer,
            "subject": subject,
            "audience": ["api://AzureADTokenExchange"],
        }),
    )
}

fn cluster() -> Value {
    resource(
        "azurerm_kubernetes_cluster.main",
        "azurerm_kubernetes_cluster",
        json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"),
            "name": "aks-prod",
            "resource_group_name": "rg-aks",
            "oidc_issuer_url": ISSUER,
            "workload_identity_enabled": true,
        }),
    )
}

fn service_account(address: &str, namespace: &str, name: &str, client_id: Option<&str>) -> Value {
    let annotations = match client_id {
        Some(id) => json!({ "azure.workload.identity/client-id": id }),
        None => json!({}),
    };
    resource(
        address,
        "kubernetes_service_account_v1",
        json!({
            "metadata": [{ "name": name, "namespace": namespace, "annotations": annotations, "labels": {} }],
            "image_pull_secret": [],
            "secret": [],
        }),
    )
}

fn assignment(address: &str, principal: &str, extra: Value) -> Value {
    let mut values = json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Authorization/roleAssignments/x"),
        "scope": format!("/subscriptions/{SUB}/resourceGroups/rg-data"),
        "role_definition_id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        "role_definition_name": "Reader",
        "principal_id": principal,
        "condition": "",
        "condition_version": "",
        "delegated_managed_identity_resource_id": "",
    });
    if let (Value::Object(values), Value::Object(extra)) = (&mut values, extra) {
        values.extend(extra);
    }
    resource(address, "azurerm_role_assignment", values)
}

fn import(resources: Vec<Value>) -> Import {
    read_value(&state(resources), "test", "test.json").expect("reads")
}

fn notes(import: &Import) -> String {
    import.stack.notes.join("\n")
}

#[test]
fn the_fixture_imports_as_this_file() {
    let written = write(&fixture().stack);
    insta::assert_snapshot!(written.text);
}

#[test]
fn the_imported_fixture_validates() {
    let written = write(&fixture().stack);
    let checked = config::check(SourceFile {
        name: "identity.toml".into(),
        text: written.text.clone(),
    });
    assert!(
        checked.diagnostics.is_empty(),
        "{:?}\n{}",
        checked.diagnostics,
        written.text
    );
    let config = checked.config.expect("a config");
    assert_eq!(config.identities.len(), 4);
    assert_eq!(config.service_accounts.len(), 3);
    assert_eq!(config.federations.len(), 7);
    assert_eq!(config.role_grants.len(), 8);
    assert!(written.placeholders.is_empty());
}

#[test]
fn the_import_is_deterministic() {
    assert_eq!(write(&fixture().stack), write(&fixture().stack));
}

#[test]
fn exactly_what_the_file_declares_is_taken_from_terraform() {
    let taken = fixture().taken;
    insta::assert_snapshot!(state_rm_command(&taken), @r#"
    terraform state rm \
      'azurerm_federated_identity_credential.api_aks' \
      'azurerm_federated_identity_credential.api_github' \
      'azurerm_federated_identity_credential.report' \
      'azurerm_federated_identity_credential.worker[0]' \
      'azurerm_federated_identity_credential.worker[1]' \
      'azurerm_role_assignment.api_blob' \
      'azurerm_role_assignment.api_reports' \
      'azurerm_role_assignment.api_shared' \
      'azurerm_role_assignment.api_subscription_reader' \
      'azurerm_role_assignment.worker_custom' \
      'azurerm_role_assignment.workers[0]' \
      'azurerm_role_assignment.workers[1]' \
      'azurerm_user_assigned_identity.api' \
      'azurerm_user_assigned_identity.worker[0]' \
      'azurerm_user_assigned_identity.worker[1]' \
      'kubernetes_service_account.api' \
      'kubernetes_service_account_v1.worker["worker-0"]' \
      'kubernetes_service_account_v1.worker["worker-1"]' \
      'module.ci.azuread_application.this' \
      'module.ci.azuread_application_federated_identity_credential.github["main"]' \
      'module.ci.azuread_application_federated_identity_credential.github["production"]' \
      'module.ci.azuread_service_principal.this' \
      'module.ci.azurerm_role_assignment.deployer' \
      'module.ci.module.pipelines.azuread_application_federated_identity_credential.azure_devops' \
      'module.ci.module.pipelines.azuread_application_federated_identity_credential.gitlab' \
      'module.ci.module.pipelines.azuread_application_federated_identity_credential.terraform_cloud'
    "#);
    // What stays in Terraform: the cluster, the namespace, what refers to the identities, what
    // identity.toml cannot say, and what is not workload identity.
    for kept in [
        "azurerm_kubernetes_cluster.main",
        "kubernetes_namespace_v1.orders",
        "azurerm_user_assigned_identity.kubelet",
        "azurerm_federated_identity_credential.stray",
        "azurerm_role_assignment.api_legacy_condition",
        "azurerm_role_assignment.developer",
        "azurerm_role_assignment.operator_on_api",
        "azurerm_key_vault_access_policy.api",
        "kubernetes_service_account_v1.metrics",
        "module.ci.azuread_application_password.legacy",
        "module.ci.module.pipelines.azuread_application_federated_identity_credential.laptop",
        "data.azurerm_client_config.current",
    ] {
        assert!(!taken.iter().any(|t| t == kept), "{kept} is taken");
    }
}

#[test]
fn a_credential_on_a_cluster_issuer_binds_the_service_account_in_the_state() {
    let imported = import(vec![
        cluster(),
        identity("azurerm_user_assigned_identity.api", "id-api", 1),
        credential(
            "azurerm_federated_identity_credential.api",
            "id-api",
            "aks-prod-orders-api",
            ISSUER,
            "system:serviceaccount:orders:api",
        ),
        service_account(
            "kubernetes_service_account_v1.api",
            "orders",
            "api",
            Some("11111111-0000-4000-8000-0000000000a1"),
        ),
    ]);
    let stack = &imported.stack;
    assert_eq!(stack.service_accounts.len(), 1, "{stack:#?}");
    assert!(stack.federations.is_empty());
    let sa = &stack.service_accounts[0];
    assert_eq!(
        (
            sa.cluster.as_str(),
            sa.identity.as_str(),
            sa.credential_name.as_str()
        ),
        ("aks-prod", "id-api", "aks-prod-orders-api")
    );
    assert_eq!(stack.clusters.len(), 1);
    assert!(matches!(
        &stack.clusters[0].kind,
        ClusterKind::Aks { enable_workload_identity: Some(false), name, .. } if name == "aks-prod"
    ));
    assert_eq!(
        imported.taken,
        [
            "azurerm_federated_identity_credential.api",
            "azurerm_user_assigned_identity.api",
            "kubernetes_service_account_v1.api"
        ]
    );
    // The implied name matches: no federation_name.
    let text = write(stack).text;
    assert!(!text.contains("federation_name"), "{text}");
    assert_eq!(stack.tenant_id.as_deref(), Some(TENANT));
    assert_eq!(stack.subscription_id.as_deref(), Some(SUB));
}

#[test]
fn a_service_account_outside_the_state_stays_a_federation_with_the_cluster_issuer() {
    let imported = import(vec![
        cluster(),
        identity("azurerm_user_assigned_identity.api", "id-api", 1),
        credential(
            "azurerm_federated_identity_credential.api",
            "id-api",
            "helm-made",
            ISSUER,
            "system:serviceaccount:orders:api",
        ),
    ]);
    let stack = &imported.stack;
    assert!(stack.service_accounts.is_empty());
    assert_eq!(stack.federations.len(), 1);
    let federation = &stack.federations[0];
    assert_eq!(federation.issuer, ISSUER);
    assert!(
        federation
            .comments
            .iter()
            .any(|c| c.contains("is not in the Terraform state, so this stays a federation")),
        "{federation:#?}"
    );
    // The cluster is declared, so that moving the entry to [[service_accounts]] is one edit.
    assert_eq!(stack.clusters.len(), 1);
    assert_eq!(
        imported.taken,
        [
            "azurerm_federated_identity_credential.api",
            "azurerm_user_assigned_identity.api"
        ]
    );
}

#[test]
fn a_service_account_trusted_by_two_identities_binds_the_one_its_annotation_names() {
    let imported = import(vec![
        cluster(),
        identity("azurerm_user_assigned_identity.a", "id-a", 1),
        identity("azurerm_user_assigned_identity.b", "id-b", 2),
        credential(
            "azurerm_federated_identity_credential.a",
            "id-a",
            "a-api",
            ISSUER,
            "system:serviceaccount:orders:api",
        ),
        credential(
            "azurerm_federated_identity_credential.b",
            "id-b",
            "b-api",
            ISSUER,
            "system:serviceaccount:orders:api",
        ),
        service_account(
            "kubernetes_service_account_v1.api",
            "orders",
            "api",
            Some("11111111-0000-4000-8000-0000000000a2"),
        ),
    ]);
    let stack = &imported.stack;
    assert_eq!(stack.service_accounts.len(), 1);
    assert_eq!(stack.service_accounts[0].identity, "id-b");
    assert_eq!(stack.federations.len(), 1);
    assert_eq!(stack.federations[0].identity, "id-a");
    assert!(
        stack.federations[0]
            .comments
            .iter()
            .any(|c| c.contains("bound to another identity"))
    );
}

#[test]
fn identities_without_credentials_or_in_another_subscription_stay_in_terraform() {
    let other = "cccccccc-0000-4000-8000-000000000001";
    let mut elsewhere = identity("azurerm_user_assigned_identity.other", "id-other", 3);
    elsewhere["values"]["id"] = json!(identity_id("id-other").replace(SUB, other));
    let elsewhere_id = elsewhere["values"]["id"].as_str().unwrap().to_string();
    let mut elsewhere_credential = credential(
        "azurerm_federated_identity_credential.other",
        "id-other",
        "github",
        "https://token.actions.githubusercontent.com",
        "repo:a/b:ref:refs/heads/main",
    );
    elsewhere_credential["values"]["parent_id"] = json!(elsewhere_id);
    let imported = import(vec![
        identity("azurerm_user_assigned_identity.api", "id-api", 1),
        credential(
            "azurerm_federated_identity_credential.api",
            "id-api",
            "github",
            "https://token.actions.githubusercontent.com",
            "repo:a/b:ref:refs/heads/main",
        ),
        identity("azurerm_user_assigned_identity.vm", "id-vm", 2),
        elsewhere,
        elsewhere_credential,
    ]);
    let notes = notes(&imported);
    assert!(
        notes.contains("azurerm_user_assigned_identity.vm (id-vm) has no federated credential"),
        "{notes}"
    );
    assert!(
        notes.contains(&format!("is in subscription {other}, not the stack's")),
        "{notes}"
    );
    assert!(
        notes.contains("azurerm_federated_identity_credential.other (credential github): its identity is not imported"),
        "{notes}"
    );
    assert_eq!(imported.stack.identities.len(), 1);
    assert_eq!(imported.taken.len(), 2);
}

#[test]
fn role_assignments_of_imported_principals_become_grants_and_the_others_stay() {
    let principal = "11111111-0000-4000-8000-0000000000b1";
    let imported = import(vec![
        identity("azurerm_user_assigned_identity.api", "id-api", 1),
        credential(
            "azurerm_federated_identity_credential.api",
            "id-api",
            "github",
            "https://token.actions.githubusercontent.com",
            "repo:a/b:ref:refs/heads/main",
        ),
        assignment("azurerm_role_assignment.reader", principal, json!({})),
        assignment(
            "azurerm_role_assignment.v1",
            principal,
            json!({ "condition": "x", "condition_version": "1.0", "role_definition_name": "Contributor", "role_definition_id": "" }),
        ),
        assignment(
            "azurerm_role_assignment.delegated",
            principal,
            json!({ "delegated_managed_identity_resource_id": "/x", "role_definition_name": "Owner", "role_definition_id": "" }),
        ),
        assignment(
            "azurerm_role_assignment.twice",
            principal,
            json!({ "role_definition_id": "", "role_definition_name": "reader" }),
        ),
        assignment(
            "azurerm_role_assignment.someone",
            "99999999-0000-4000-8000-000000000001",
            json!({}),
        ),
    ]);
    let stack = &imported.stack;
    assert_eq!(stack.role_grants.len(), 1, "{stack:#?}");
    let notes = notes(&imported);
    assert!(notes.contains("its condition is version 1.0"), "{notes}");
    assert!(
        notes.contains("delegated_managed_identity_resource_id"),
        "{notes}"
    );
    assert!(
        notes.contains("already has role Reader on that scope"),
        "{notes}"
    );
    assert!(
        notes.contains("1 other resource of the state does not belong"),
        "{notes}"
    );
    let text = write(stack).text;
    assert!(
        text.contains("role = \"Reader\"\nscope = \"resourceGroups/rg-data\"\n"),
        "{text}"
    );
}

#[test]
fn applications_bring_their_service_principal_and_its_grants() {
    let app = resource(
        "module.ci.azuread_application.this",
        "azuread_application",
        json!({
            "display_name": "Orders CI",
            "client_id": "22222222-0000-4000-8000-00000000000a",
            "object_id": "22222222-0000-4000-8000-00000000000c",
            "id": "/applications/22222222-0000-4000-8000-00000000000c",
        }),
    );
    // azuread 2.x names: application_object_id, application_id.
    let credential = resource(
        "module.ci.azuread_application_federated_identity_credential.main",
        "azuread_application_federated_identity_credential",
        json!({
            "application_object_id": "22222222-0000-4000-8000-00000000000c",
            "display_name": "github-main",
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:a/b:ref:refs/heads/main",
            "audiences": ["api://AzureADTokenExchange"],
        }),
    );
    let principal = resource(
        "module.ci.azuread_service_principal.this",
        "azuread_service_principal",
        json!({
            "application_id": "22222222-0000-4000-8000-00000000000a",
            "object_id": "22222222-0000-4000-8000-00000000000b",
            "application_tenant_id": TENANT,
        }),
    );
    let grant = assignment(
        "module.ci.azurerm_role_assignment.this",
        "22222222-0000-4000-8000-00000000000b",
        json!({}),
    );
    let imported = import(vec![app, credential, principal, grant]);
    let stack = &imported.stack;
    assert_eq!(stack.identities.len(), 1);
    assert_eq!(stack.identities[0].key, "Orders-CI");
    assert!(matches!(
        &stack.identities[0].kind,
        IdentityKind::Application { display_name } if display_name == "Orders CI"
    ));
    assert_eq!(stack.role_grants.len(), 1);
    assert_eq!(stack.tenant_id.as_deref(), Some(TENANT));
    // No managed identity: the subscription comes from the assignment's scope.
    assert_eq!(stack.subscription_id.as_deref(), Some(SUB));
    assert_eq!(imported.taken.len(), 4, "{:?}", imported.taken);
}

#[test]
fn a_cluster_without_workload_identity_and_twin_applications_are_noted() {
    let mut off = cluster();
    off["values"]["workload_identity_enabled"] = json!(false);
    let app = |address: &str, object: &str| {
        resource(
            address,
            "azuread_application",
            json!({ "display_name": "CI", "client_id": format!("c-{object}"), "object_id": object }),
        )
    };
    let app_credential = |address: &str, object: &str| {
        resource(
            address,
            "azuread_application_federated_identity_credential",
            json!({
                "application_id": format!("/applications/{object}"),
                "display_name": "github-main",
                "issuer": "https://token.actions.githubusercontent.com",
                "subject": "repo:a/b:ref:refs/heads/main",
                "audiences": ["api://AzureADTokenExchange"],
            }),
        )
    };
    let imported = import(vec![
        off,
        identity("azurerm_user_assigned_identity.api", "id-api", 1),
        credential(
            "azurerm_federated_identity_credential.api",
            "id-api",
            "aks-prod-orders-api",
            ISSUER,
            "system:serviceaccount:orders:api",
        ),
        service_account("kubernetes_service_account_v1.api", "orders", "api", None),
        app("azuread_application.a", "o1"),
        app_credential("azuread_application_federated_identity_credential.a", "o1"),
        app("azuread_application.b", "o2"),
        app_credential("azuread_application_federated_identity_credential.b", "o2"),
    ]);
    let notes = notes(&imported);
    assert!(
        notes.contains("has workload_identity_enabled = false"),
        "{notes}"
    );
    assert!(
        notes.contains(
            "azuread_application.b has the display name \"CI\", like another application"
        ),
        "{notes}"
    );
    assert!(
        notes.contains("azuread_application_federated_identity_credential.b (credential github-main): its identity is not imported"),
        "{notes}"
    );
    assert_eq!(imported.stack.identities.len(), 2);
}

#[test]
fn azurerm_5_names_the_identity_user_assigned_identity_id() {
    let mut v5 = credential(
        "azurerm_federated_identity_credential.api",
        "id-api",
        "github",
        "https://token.actions.githubusercontent.com",
        "repo:a/b:ref:refs/heads/main",
    );
    let values = v5["values"].as_object_mut().unwrap();
    let parent = values.remove("parent_id").unwrap();
    values.remove("resource_group_name");
    values.insert("user_assigned_identity_id".into(), parent);
    let imported = import(vec![
        identity("azurerm_user_assigned_identity.api", "id-api", 1),
        v5,
    ]);
    assert_eq!(imported.stack.federations.len(), 1);
}

#[test]
fn missing_tenant_and_subscription_become_placeholders() {
    let mut api = identity("azurerm_user_assigned_identity.api", "id-api", 1);
    api["values"]["tenant_id"] = json!("");
    api["values"]["id"] = json!("/not/an/arm/id");
    let mut github = credential(
        "azurerm_federated_identity_credential.api",
        "id-api",
        "github",
        "https://token.actions.githubusercontent.com",
        "repo:a/b:ref:refs/heads/main",
    );
    github["values"]["parent_id"] = json!("/not/an/arm/id");
    let imported = import(vec![api, github]);
    assert_eq!(imported.stack.tenant_id, None);
    assert_eq!(imported.stack.subscription_id, None);
    let written = write(&imported.stack);
    assert_eq!(written.placeholders, ["tenant_id", "subscription_id"]);
    assert!(
        written
            .text
            .contains("tenant_id = \"REPLACE-WITH-TENANT-ID\"")
    );
    let checked = config::check(SourceFile {
        name: "x.toml".into(),
        text: written.text,
    });
    assert!(
        checked.diagnostics.has_errors(),
        "a placeholder never validates"
    );
}

#[test]
fn data_sources_give_the_tenant_and_subscription_and_are_never_taken() {
    let app = resource(
        "azuread_application.this",
        "azuread_application",
        json!({ "display_name": "ci", "client_id": "c", "object_id": "o" }),
    );
    let credential = resource(
        "azuread_application_federated_identity_credential.main",
        "azuread_application_federated_identity_credential",
        json!({
            "application_id": "/applications/o",
            "display_name": "github-main",
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:a/b:ref:refs/heads/main",
            "audiences": ["api://AzureADTokenExchange"],
        }),
    );
    let mut config = resource(
        "data.azurerm_client_config.current",
        "azurerm_client_config",
        json!({ "tenant_id": TENANT, "subscription_id": SUB }),
    );
    config["mode"] = json!("data");
    let imported = import(vec![config, app, credential]);
    assert_eq!(imported.stack.tenant_id.as_deref(), Some(TENANT));
    assert_eq!(imported.stack.subscription_id.as_deref(), Some(SUB));
    assert!(!imported.taken.iter().any(|t| t.starts_with("data.")));
    assert!(notes(&imported).contains("has no azuread_service_principal"));
}

#[test]
fn an_empty_state_imports_nothing() {
    let imported = read(r#"{"format_version":"1.0"}"#, "x", "s.json").unwrap();
    assert!(imported.stack.identities.is_empty());
    assert!(imported.taken.is_empty());
}

#[test]
fn malformed_input_is_named_by_its_json_path() {
    use crate::error::Explain;
    let error = |text: &str| read(text, "x", "s.json").unwrap_err().message();
    assert!(error("{").starts_with("it is not JSON: EOF while parsing"));
    assert_eq!(
        error("[]"),
        "the document is not a JSON object (terraform show -json prints one)"
    );
    assert_eq!(
        error(r#"{"version": 4, "resources": []}"#),
        "this is a Terraform state file (terraform.tfstate), not the output of `terraform show -json`"
    );
    assert_eq!(
        error(r#"{"format_version": "2.0"}"#),
        "at format_version: is \"2.0\"; wiform reads format 1.x (Terraform 0.12 and later)"
    );
    assert_eq!(
        error(r#"{"format_version": "1.2", "planned_values": {}}"#),
        "this is a plan (terraform show -json PLANFILE), not the current state"
    );
    assert_eq!(
        error(r#"{"format_version": "1.0", "values": {}}"#),
        "at values.root_module: is missing"
    );
    let mut doc = state(vec![identity(
        "azurerm_user_assigned_identity.api",
        "id-api",
        1,
    )]);
    doc["values"]["root_module"]["resources"][0]["values"]["name"] = json!(42);
    assert_eq!(
        error(&doc.to_string()),
        "at values.root_module.resources[0].values.name: expected a string, found the number 42"
    );
    let mut doc = state(vec![]);
    doc["values"]["root_module"]["child_modules"] = json!([{ "address": "module.a", "resources": [{ "address": "x", "mode": "managed", "type": "kubernetes_service_account", "name": "x", "values": { "metadata": [] } }] }]);
    assert_eq!(
        error(&doc.to_string()),
        "at values.root_module.child_modules[0].resources[0].values.metadata: is an empty list"
    );
    let mut doc = state(vec![]);
    doc["values"]["root_module"]["resources"] = json!([{ "address": "x", "mode": "managed", "type": "azurerm_role_assignment", "name": "x" }]);
    assert_eq!(
        error(&doc.to_string()),
        "at values.root_module.resources[0]: has no `values`"
    );
}

mod never_panics {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::super::read_value;
    use crate::import::write::write;

    /// JSON values whose keys and strings come from the format, so that the reader goes deep.
    fn value() -> impl Strategy<Value = Value> {
        let keys = prop::sample::select(vec![
            "format_version",
            "values",
            "root_module",
            "child_modules",
            "resources",
            "address",
            "mode",
            "type",
            "name",
            "index",
            "values",
            "deposed",
            "id",
            "parent_id",
            "user_assigned_identity_id",
            "issuer",
            "subject",
            "audience",
            "audiences",
            "display_name",
            "application_id",
            "application_object_id",
            "object_id",
            "client_id",
            "principal_id",
            "tenant_id",
            "scope",
            "role_definition_id",
            "role_definition_name",
            "condition",
            "condition_version",
            "metadata",
            "namespace",
            "annotations",
            "labels",
            "oidc_issuer_url",
            "workload_identity_enabled",
            "resource_group_name",
            "location",
            "tags",
            "secret",
            "image_pull_secret",
            "application_tenant_id",
            "x",
        ]);
        let strings = prop::sample::select(vec![
            "",
            "1.0",
            "managed",
            "data",
            "azurerm_user_assigned_identity",
            "azurerm_federated_identity_credential",
            "azurerm_role_assignment",
            "azuread_application",
            "azuread_application_federated_identity_credential",
            "azuread_service_principal",
            "kubernetes_service_account",
            "kubernetes_service_account_v1",
            "azurerm_kubernetes_cluster",
            "kubernetes_namespace_v1",
            "/subscriptions/bbbbbbbb-0000-4000-8000-000000000001",
            "/subscriptions/x/resourceGroups/rg/providers/M.I/userAssignedIdentities/id",
            "https://token.actions.githubusercontent.com",
            "https://a.example/",
            "system:serviceaccount:a:b",
            "system:serviceaccount:",
            "/applications/o",
            "o",
            "é",
            "api://AzureADTokenExchange",
            "azure.workload.identity/client-id",
            "2.0",
        ])
        .prop_map(|s| Value::String(s.to_string()));
        let leaf = prop_oneof![
            strings,
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(6, 96, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|entries| {
                    Value::Object(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect::<Map<_, _>>(),
                    )
                }),
            ]
        })
    }

    fn check(doc: &Value) {
        if let Ok(import) = read_value(doc, "x", "s.json") {
            let _ = write(&import.stack);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_json_never_panics(doc in value()) {
            check(&doc);
        }

        #[test]
        fn arbitrary_resources_never_panic(resources in prop::collection::vec(value(), 0..6), children in prop::collection::vec(value(), 0..3)) {
            check(&json!({
                "format_version": "1.0",
                "values": { "root_module": { "resources": resources, "child_modules": children } },
            }));
        }

        #[test]
        fn arbitrary_values_of_every_mapped_type_never_panic(
            kind in prop::sample::select(vec![
                "azurerm_user_assigned_identity", "azurerm_federated_identity_credential",
                "azurerm_role_assignment", "azuread_application",
                "azuread_application_federated_identity_credential", "azuread_service_principal",
                "kubernetes_service_account", "kubernetes_service_account_v1",
                "azurerm_kubernetes_cluster", "kubernetes_namespace", "other",
            ]),
            values in value(),
        ) {
            check(&json!({
                "format_version": "1.0",
                "values": { "root_module": { "resources": [
                    { "address": "a.b", "mode": "managed", "type": kind, "name": "b", "values": values },
                ] } },
            }));
        }

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,64}") {
            let _ = super::super::read(&text, "x", "s.json");
        }
    }
}
