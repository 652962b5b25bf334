//! Unit tests of the diff, one resource kind at a time.
//!
//! Configs are small TOML strings checked like `wiform validate` checks them; observations are
//! built by hand from ARM-, Graph- and Kubernetes-shaped JSON through the providers' own
//! constructors, so that the planner sees exactly what `observe` would give it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use serde::Serialize;
use serde_json::{Value, json};

use super::*;
use crate::builtin_roles;
use crate::config::federation::DEFAULT_AUDIENCE;
use crate::config::{SourceFile, check};
use crate::engine::plan::{Action, After, FieldChange};
use crate::kinds::Resource;
use crate::ownership::{MANAGED_BY_LABEL, STACK_LABEL};
use crate::providers::azure::applications::{self, LiveApplication, read_app_marker};
use crate::providers::azure::clusters::{LiveCluster, live_cluster};
use crate::providers::azure::error::{ApiFailure, AzureError};
use crate::providers::azure::federated::{CredentialParent, LiveCredential};
use crate::providers::azure::identities::{
    LiveIdentity, LiveResourceGroup, identity_id, live_credential, resource_group_id,
};
use crate::providers::azure::observe::{ObserveError, ResolvedRole};
use crate::providers::azure::roles::{LiveRoleAssignment, RoleRef};
use crate::providers::azure::roles::{
    RoleDefinition, assignment_marker, live_assignment_from_json,
};
use crate::providers::kube::{CLIENT_ID_ANNOTATION, ClusterObservation, DesiredServiceAccount};
use crate::providers::kube::{ListVersions, TENANT_ID_ANNOTATION};

// ---------------------------------------------------------------------------------------------
// The config

const STACK: &str = "shop";
const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/tenant/cluster-id/";
const GITHUB: &str = "https://token.actions.githubusercontent.com";
const MAIN: &str = "repo:contoso/shop:ref:refs/heads/main";

const HEADER: &str = r#"
version = 1
name = "shop"
[azure]
tenant_id = "aaaaaaaa-0000-4000-8000-000000000001"
subscription_id = "bbbbbbbb-0000-4000-8000-000000000001"
location = "westeurope"
"#;

/// An AKS cluster, a managed identity bound to one service account, and one role grant.
const WORKLOAD: &str = r#"
[clusters.prod]
resource_group = "rg-aks"
name = "aks-prod"
[identities.api]
resource_group = "rg-id"
[[service_accounts]]
cluster = "prod"
namespace = "orders"
name = "api"
identity = "api"
[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/rg-data"
"#;

const IDENTITY: &str = "identity.api";
const CREDENTIAL: &str = "federated_credential.api/prod:orders/api";
const CREDENTIAL_NAME: &str = "prod-orders-api";
const SUBJECT: &str = "system:serviceaccount:orders:api";
const NAMESPACE: &str = "namespace.prod/orders";
const ACCOUNT: &str = "service_account.prod/orders/api";

fn client_id_annotation() -> String {
    format!("annotations[{CLIENT_ID_ANNOTATION:?}]")
}

fn data_scope() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-data")
}

fn grant(identity: &str, role: &str) -> String {
    format!("role_grant.{identity}[{role:?} @ {}]", data_scope())
}

fn reader() -> &'static str {
    builtin_roles::by_name("Reader").unwrap().id
}

fn graph(body: &str) -> Graph {
    let checked = check(SourceFile {
        name: "identity.toml".into(),
        text: format!("{HEADER}{body}"),
    });
    let config = checked
        .config
        .unwrap_or_else(|| panic!("invalid config: {:?}", checked.diagnostics));
    Graph::build(&config)
}

fn plan_for(body: &str, observed: &Observed) -> Plan {
    plan_targets(body, observed, &[])
}

fn plan_targets(body: &str, observed: &Observed, targets: &[&str]) -> Plan {
    let graph = graph(body);
    let targets: Vec<NodeIndex> = targets
        .iter()
        .map(|t| {
            graph
                .node_ids()
                .find(|&n| graph.node(n).address == *t)
                .unwrap_or_else(|| panic!("no {t} in the graph"))
        })
        .collect();
    plan(
        Input {
            stack: STACK,
            config_file: "identity.toml",
            graph: &graph,
            targets: &targets,
        },
        &as_last_applied(&graph, observed),
    )
}

/// `observed` with each identity this stack owns recording the credentials and grants the
/// config gives it, as the last apply of this config wrote them (unless the test wrote its own
/// record tags): the records are tested on their own, the rest of the tests plan as if the
/// records were current.
fn as_last_applied(graph: &crate::graph::Graph, observed: &Observed) -> Observed {
    let mut observed = observed.clone();
    for id in graph.node_ids() {
        if let Resource::Application(application::Desired { display_name, .. }) =
            &graph.node(id).resource
        {
            for app in observed.azure.applications.iter_mut() {
                if &app.display_name == display_name
                    && app.owner.is_stack(STACK)
                    && crate::engine::records::record_tags(&app.tag_map()).is_empty()
                {
                    app.tags.extend(
                        crate::engine::records::identity_records(graph, id)
                            .into_iter()
                            .map(|(k, v)| format!("{k}:{v}")),
                    );
                }
            }
        }
        let Resource::ManagedIdentity(identity) = &graph.node(id).resource else {
            continue;
        };
        let desired = identity.request(STACK, BTreeMap::new());
        if let Some(live) = observed.azure.identities.get_mut(&desired.key())
            && live.owner.is_stack(STACK)
            && crate::engine::records::record_tags(&live.tags).is_empty()
        {
            live.tags
                .extend(crate::engine::records::identity_records(graph, id));
        }
    }
    observed
}

// ---------------------------------------------------------------------------------------------
// Reading a plan

impl Plan {
    fn find(&self, address: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.address == address)
    }

    fn get(&self, address: &str) -> &Change {
        self.find(address)
            .unwrap_or_else(|| panic!("no change for {address} in {:#?}", self.actions()))
    }

    fn action(&self, address: &str) -> Action {
        self.get(address).action
    }

    fn position(&self, address: &str) -> usize {
        self.changes
            .iter()
            .position(|c| c.address == address)
            .unwrap_or_else(|| panic!("no change for {address} in {:#?}", self.actions()))
    }

    fn actions(&self) -> Vec<(String, Action)> {
        self.changes
            .iter()
            .map(|c| (c.address.to_string(), c.action))
            .collect()
    }

    fn error_for(&self, address: &str) -> &PlanError {
        self.errors
            .iter()
            .find(|e| e.address.as_ref().is_some_and(|a| a == address))
            .unwrap_or_else(|| panic!("no error for {address} in {:#?}", self.errors))
    }

    fn deletes(&self) -> Vec<String> {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| c.address.to_string())
            .collect()
    }

    /// Every change is a no-op (or a read) and nothing went wrong.
    fn assert_in_sync(&self) {
        assert!(self.errors.is_empty(), "{:#?}", self.errors);
        for change in &self.changes {
            assert!(!change.action.is_change(), "{change:#?}");
            assert_eq!(change.changed_fields().count(), 0, "{change:#?}");
        }
    }
}

impl Change {
    fn field(&self, name: &str) -> &FieldChange {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
                panic!("{} has no field {name}: {names:?}", self.address)
            })
    }

    fn changed(&self) -> Vec<&str> {
        self.changed_fields().map(|f| f.name.as_str()).collect()
    }

    fn reason(&self) -> &str {
        self.reason.as_deref().unwrap_or_default()
    }
}

fn known(value: impl Serialize) -> After {
    After::Known(json!(value))
}

// ---------------------------------------------------------------------------------------------
// Live Azure objects

/// Whose marker a live object carries.
#[derive(Clone, Copy)]
enum Mark {
    Mine,
    Theirs,
    Unmarked,
}

impl Mark {
    fn stack(self) -> Option<&'static str> {
        match self {
            Mark::Mine => Some(STACK),
            Mark::Theirs => Some("billing"),
            Mark::Unmarked => None,
        }
    }

    /// Azure tags: the marker (with a spec hash that matches nothing: the planner compares
    /// fields, not hashes) and `tags`.
    fn tags(self, tags: &[(&str, &str)]) -> Value {
        let mut all: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(stack) = self.stack() {
            all.insert(ownership::STACK_TAG.into(), stack.into());
            all.insert(ownership::SPEC_HASH_TAG.into(), "0123456789abcdef".into());
        }
        json!(all)
    }

    /// Kubernetes labels: the marker and `labels`.
    fn labels(self, labels: &[(&str, &str)]) -> Value {
        let mut all: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(stack) = self.stack() {
            all.insert(MANAGED_BY_LABEL.into(), "wiform".into());
            all.insert(STACK_LABEL.into(), stack.into());
        }
        json!(all)
    }
}

fn resource_group(
    name: &str,
    location: &str,
    mark: Mark,
    tags: &[(&str, &str)],
) -> LiveResourceGroup {
    LiveResourceGroup::from_arm(&json!({
        "id": resource_group_id(SUB, name),
        "name": name,
        "location": location,
        "tags": mark.tags(tags),
        "properties": {"provisioningState": "Succeeded"},
    }))
    .unwrap()
}

/// A managed identity in `rg-id`, with client id `client-NAME` and principal id `principal-NAME`.
fn managed(name: &str, location: &str, mark: Mark, tags: &[(&str, &str)]) -> LiveIdentity {
    LiveIdentity::from_arm(&json!({
        "id": identity_id(SUB, "rg-id", name),
        "name": name,
        "location": location,
        "tags": mark.tags(tags),
        "properties": {
            "tenantId": TENANT,
            "clientId": format!("client-{name}"),
            "principalId": format!("principal-{name}"),
        },
    }))
    .unwrap()
}

fn credential(identity: &LiveIdentity, name: &str, issuer: &str, subject: &str) -> LiveCredential {
    live_credential(
        &identity.id,
        &json!({
            "id": format!("{}/federatedIdentityCredentials/{name}", identity.id),
            "name": format!("{}/{name}", identity.name),
            "properties": {"issuer": issuer, "subject": subject, "audiences": [DEFAULT_AUDIENCE]},
        }),
    )
    .unwrap()
}

/// The AKS cluster `rg-aks/aks-prod`; its issuer is [`ISSUER`] while the OIDC issuer is on.
fn aks(oidc: bool, workload_identity: bool) -> LiveCluster {
    live_cluster(&json!({
        "id": format!("/subscriptions/{SUB}/resourcegroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"),
        "location": "westeurope",
        "eTag": "etag-1",
        "properties": {
            "provisioningState": "Succeeded",
            "oidcIssuerProfile": {"enabled": oidc, "issuerURL": oidc.then_some(ISSUER)},
            "securityProfile": {"workloadIdentity": {"enabled": workload_identity}},
        },
    }))
    .unwrap()
}

/// An application with app id `app-OBJECT` and service principal `sp-OBJECT`; `key` gives it
/// the uniqueName wiform gives the application of identity `key`.
fn application(
    object_id: &str,
    display_name: &str,
    mark: Mark,
    key: Option<&str>,
) -> LiveApplication {
    let tags: Vec<String> = mark
        .stack()
        .map(|s| {
            vec![
                format!("{}:{s}", ownership::STACK_TAG),
                format!("{}:0123456789abcdef", ownership::SPEC_HASH_TAG),
            ]
        })
        .unwrap_or_default();
    LiveApplication {
        object_id: object_id.into(),
        app_id: format!("app-{object_id}"),
        display_name: display_name.into(),
        unique_name: key.map(|k| applications::unique_name(STACK, k)),
        owner: read_app_marker(&tags),
        tags,
        service_principal_id: Some(format!("sp-{object_id}")),
    }
}

/// A credential of an application (its parent is set by [`Observed::with_application`]).
fn app_credential(name: &str, issuer: &str, subject: &str) -> LiveCredential {
    LiveCredential {
        parent: CredentialParent::Application(String::new()),
        id: format!("fic-{name}"),
        name: name.into(),
        issuer: issuer.into(),
        subject: subject.into(),
        audiences: vec![DEFAULT_AUDIENCE.into()],
        description: None,
    }
}

/// A role assignment named `name` of `role` (a definition GUID) to `principal` at `scope`.
fn assignment(
    name: &str,
    scope: &str,
    principal: &str,
    role: &str,
    mark: Mark,
    condition: Option<&str>,
) -> LiveRoleAssignment {
    let description = match mark.stack() {
        Some(stack) => assignment_marker(stack, "0123456789abcdef"),
        None => "granted by hand".into(),
    };
    live_assignment_from_json(&json!({
        "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
        "name": name,
        "properties": {
            "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "principalId": principal,
            "principalType": "ServicePrincipal",
            "scope": scope,
            "description": description,
            "condition": condition,
        },
    }))
    .unwrap()
}

fn forbidden(action: &str) -> AzureError {
    AzureError::api(
        action,
        ApiFailure::parse(
            403,
            br#"{"error":{"code":"AuthorizationFailed","message":"The client does not have authorization to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/read' over scope '/subscriptions/bbbbbbbb-0000-4000-8000-000000000001' or the scope is invalid."}}"#,
            None,
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Live Kubernetes objects

fn namespace(name: &str, mark: Mark) -> Namespace {
    serde_json::from_value(json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "1",
                     "labels": mark.labels(&[])},
    }))
    .unwrap()
}

/// The account wiform wants in `orders` for `identity`'s client id (no extras).
fn desired_account(name: &str, client_id: &str) -> DesiredServiceAccount {
    DesiredServiceAccount {
        stack: STACK.into(),
        namespace: "orders".into(),
        name: name.into(),
        client_id: client_id.into(),
        tenant_id: TENANT.into(),
        token_expiration: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

/// A service account as server-side apply of `desired` left it: its manifest, owned by
/// wiform's field manager.
fn applied(desired: &DesiredServiceAccount) -> ServiceAccount {
    let mut account = desired.manifest();
    let keys = |map: BTreeMap<String, String>| -> Value {
        map.into_keys()
            .map(|k| (format!("f:{k}"), json!({})))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let fields = json!({"f:metadata": {
        "f:labels": keys(desired.full_labels()),
        "f:annotations": keys(desired.full_annotations()),
    }});
    let meta = &mut account.metadata;
    meta.uid = Some(format!("uid-{}", desired.name));
    meta.resource_version = Some("7".into());
    meta.managed_fields = Some(
        serde_json::from_value(json!([{
            "manager": "wiform", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields,
        }]))
        .unwrap(),
    );
    account
}

/// A service account wiform never applied.
fn foreign_account(name: &str, mark: Mark, annotations: Value) -> ServiceAccount {
    serde_json::from_value(json!({
        "metadata": {"namespace": "orders", "name": name, "uid": format!("uid-{name}"),
                     "resourceVersion": "3", "labels": mark.labels(&[]), "annotations": annotations},
    }))
    .unwrap()
}

fn annotations_mut(account: &mut ServiceAccount) -> &mut BTreeMap<String, String> {
    account
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
}

// ---------------------------------------------------------------------------------------------
// Observations

impl Observed {
    fn with_resource_group(mut self, group: LiveResourceGroup) -> Self {
        self.azure.resource_groups.insert(group.key(), group);
        self
    }

    /// The identity and its federated credentials (an empty list: it has none).
    fn with_identity(mut self, identity: LiveIdentity, credentials: Vec<LiveCredential>) -> Self {
        self.azure
            .identity_credentials
            .insert(identity.key(), credentials);
        self.azure.identities.insert(identity.key(), identity);
        self
    }

    fn with_cluster(mut self, cluster: LiveCluster) -> Self {
        self.azure.clusters.insert(cluster.id.clone(), cluster);
        self
    }

    fn with_application(mut self, app: LiveApplication, credentials: Vec<LiveCredential>) -> Self {
        let parent = CredentialParent::Application(app.object_id.clone());
        let credentials = credentials
            .into_iter()
            .map(|c| LiveCredential {
                parent: parent.clone(),
                ..c
            })
            .collect();
        self.azure
            .application_credentials
            .insert(app.object_id.clone(), credentials);
        self.azure.applications.push(app);
        self
    }

    fn with_assignment(mut self, assignment: LiveRoleAssignment) -> Self {
        self.azure.role_assignments.push(assignment);
        self
    }

    /// Cluster `prod` holds these namespaces (all of them listed) and service accounts.
    fn with_kube(self, namespaces: Vec<Namespace>, accounts: Vec<ServiceAccount>) -> Self {
        self.with_kube_at("prod", namespaces, accounts)
    }

    fn with_kube_at(
        mut self,
        cluster: &str,
        namespaces: Vec<Namespace>,
        accounts: Vec<ServiceAccount>,
    ) -> Self {
        let named: Vec<String> = namespaces
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let observation = ClusterObservation::assemble(
            cluster,
            STACK,
            &named,
            &namespaces,
            accounts,
            ListVersions::default(),
        );
        self.clusters.insert(cluster.into(), Ok(observation));
        self
    }

    fn with_failure(mut self, listing: Listing, what: &str) -> Self {
        self.azure.errors.push(ObserveError {
            listing,
            what: what.into(),
            error: forbidden(&format!("list {what}")),
        });
        self
    }
}

/// Cluster `prod` can be reached and holds nothing.
fn empty_cluster() -> Observed {
    Observed::default().with_kube(Vec::new(), Vec::new())
}

/// Everything [`WORKLOAD`] asks for exists, owned by the stack, as the last apply left it.
fn in_sync() -> Observed {
    let api = managed("api", "westeurope", Mark::Mine, &[]);
    let implied = credential(&api, CREDENTIAL_NAME, ISSUER, SUBJECT);
    Observed::default()
        .with_cluster(aks(true, true))
        .with_assignment(assignment(
            "11111111-0000-4000-8000-000000000001",
            &data_scope(),
            &api.principal_id,
            reader(),
            Mark::Mine,
            None,
        ))
        .with_identity(api, vec![implied])
        .with_kube(
            vec![namespace("orders", Mark::Mine)],
            vec![applied(&desired_account("api", "client-api"))],
        )
}

/// [`in_sync`] with the service account `orders/api` replaced.
fn in_sync_with_account(account: ServiceAccount) -> Observed {
    in_sync().with_kube(vec![namespace("orders", Mark::Mine)], vec![account])
}

// ---------------------------------------------------------------------------------------------
// The whole workload

#[test]
fn a_workload_in_sync_plans_nothing() {
    let plan = plan_for(WORKLOAD, &in_sync());
    plan.assert_in_sync();
    assert!(!plan.has_changes());
    assert_eq!(plan.changes.len(), 6, "{:#?}", plan.actions());
    assert_eq!(plan.stack, STACK);
    assert_eq!(plan.format_version, FORMAT_VERSION);
    assert!(plan.targets.is_empty());
}

#[test]
fn a_workload_from_nothing_is_created_in_dependency_order() {
    let observed = Observed::default()
        .with_cluster(aks(true, true))
        .with_kube(Vec::new(), Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    assert_eq!(plan.action("cluster.prod"), Action::NoOp);
    for address in [
        IDENTITY,
        CREDENTIAL,
        NAMESPACE,
        ACCOUNT,
        &grant("api", "Reader"),
    ] {
        assert_eq!(plan.action(address), Action::Create, "{address}");
    }
    for change in &plan.changes {
        for dependency in &change.depends_on {
            assert!(
                plan.position(&dependency.to_string()) < plan.position(&change.address.to_string()),
                "{dependency} before {}",
                change.address
            );
        }
    }
    assert_eq!(
        plan.get(ACCOUNT).depends_on,
        [IDENTITY.to_string(), NAMESPACE.to_string()]
    );
}

// ---------------------------------------------------------------------------------------------
// Resource groups

const GROUP: &str = r#"
[resource_groups.rg-id]
tags = { team = "orders" }
"#;

#[test]
fn an_absent_resource_group_is_created() {
    let plan = plan_for(GROUP, &Observed::default());
    let rg = plan.get("resource_group.rg-id");
    assert_eq!(rg.action, Action::Create);
    assert_eq!(rg.resource_type, "resource_group");
    assert_eq!(rg.id, None);
    assert_eq!(rg.field("location").before, None);
    assert_eq!(rg.field("location").after, known("westeurope"));
    assert_eq!(rg.field("tags[\"team\"]").after, known("orders"));
}

#[test]
fn an_owned_resource_group_as_configured_is_a_no_op() {
    // "West Europe" and "westeurope" are the same region; the marker tags are not the user's.
    let observed = Observed::default().with_resource_group(resource_group(
        "rg-id",
        "West Europe",
        Mark::Mine,
        &[("team", "orders")],
    ));
    let plan = plan_for(GROUP, &observed);
    plan.assert_in_sync();
    assert_eq!(
        plan.get("resource_group.rg-id").id.as_deref(),
        Some(resource_group_id(SUB, "rg-id").as_str())
    );
}

#[test]
fn an_owned_resource_group_with_a_changed_tag_is_updated() {
    let observed = Observed::default().with_resource_group(resource_group(
        "rg-id",
        "westeurope",
        Mark::Mine,
        &[("team", "billing")],
    ));
    let plan = plan_for(GROUP, &observed);
    let rg = plan.get("resource_group.rg-id");
    assert_eq!(rg.action, Action::Update);
    assert_eq!(rg.changed(), ["tags[\"team\"]"]);
    let tag = rg.field("tags[\"team\"]");
    assert_eq!(tag.before, Some(json!("billing")));
    assert_eq!(tag.after, known("orders"));
}

#[test]
fn a_tag_wiform_would_overwrite_is_shown_removed() {
    // wiform writes the whole tag set (user tags + markers), so a tag the config does not
    // name goes away on apply: the plan says so.
    let observed = Observed::default().with_resource_group(resource_group(
        "rg-id",
        "westeurope",
        Mark::Mine,
        &[("team", "orders"), ("cost-center", "42")],
    ));
    let plan = plan_for(GROUP, &observed);
    let rg = plan.get("resource_group.rg-id");
    assert_eq!(rg.action, Action::Update);
    let extra = rg.field("tags[\"cost-center\"]");
    assert_eq!(extra.before, Some(json!("42")));
    assert_eq!(extra.after, After::Removed);
}

#[test]
fn an_unowned_resource_group_in_the_same_location_is_adopted() {
    let observed = Observed::default().with_resource_group(resource_group(
        "rg-id",
        "westeurope",
        Mark::Unmarked,
        &[("team", "orders")],
    ));
    let plan = plan_for(GROUP, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    assert_eq!(plan.action("resource_group.rg-id"), Action::Adopt);
}

#[test]
fn a_resource_group_of_another_stack_is_an_error() {
    let observed = Observed::default().with_resource_group(resource_group(
        "rg-id",
        "westeurope",
        Mark::Theirs,
        &[("team", "orders")],
    ));
    let plan = plan_for(GROUP, &observed);
    assert!(plan.find("resource_group.rg-id").is_none());
    let error = plan.error_for("resource_group.rg-id");
    assert_eq!(
        error.message,
        "resource group rg-id belongs to stack \"billing\""
    );
    assert!(error.hint.as_deref().unwrap().contains("other stack"));
}

#[test]
fn a_resource_group_elsewhere_is_an_error() {
    let observed = Observed::default().with_resource_group(resource_group(
        "rg-id",
        "northeurope",
        Mark::Mine,
        &[("team", "orders")],
    ));
    let plan = plan_for(GROUP, &observed);
    assert!(plan.find("resource_group.rg-id").is_none());
    let error = plan.error_for("resource_group.rg-id");
    assert!(
        error.message.contains(
            "is in northeurope, the config says westeurope: a resource group cannot move"
        ),
        "{}",
        error.message
    );
}

// ---------------------------------------------------------------------------------------------
// AKS clusters

const NO_ENABLE: &str = r#"
[clusters.prod]
resource_group = "rg-aks"
name = "aks-prod"
enable_workload_identity = false
[identities.api]
resource_group = "rg-id"
[[service_accounts]]
cluster = "prod"
namespace = "orders"
name = "api"
identity = "api"
"#;

#[test]
fn a_missing_cluster_is_an_error_with_a_hint() {
    let plan = plan_for(WORKLOAD, &empty_cluster());
    assert!(plan.find("cluster.prod").is_none());
    let error = plan.error_for("cluster.prod");
    assert_eq!(
        error.message,
        format!("AKS cluster rg-aks/aks-prod does not exist in subscription {SUB}")
    );
    assert!(
        error
            .hint
            .as_deref()
            .unwrap()
            .contains("wiform does not create clusters")
    );
    // Without an issuer, the implied credential cannot be planned; the rest can.
    assert!(plan.find(CREDENTIAL).is_none());
    assert_eq!(plan.action(IDENTITY), Action::Create);
    assert_eq!(plan.action(ACCOUNT), Action::Create);
}

#[test]
fn oidc_on_and_workload_identity_off_is_turned_on_with_the_issuer_known() {
    let observed = Observed::default()
        .with_cluster(aks(true, false))
        .with_kube(Vec::new(), Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let cluster = plan.get("cluster.prod");
    assert_eq!(cluster.action, Action::Update);
    assert!(
        cluster.reason().starts_with(
            "enable_workload_identity = true: turn on the OIDC issuer and workload identity"
        ),
        "{}",
        cluster.reason()
    );
    assert_eq!(cluster.changed(), ["workload_identity_enabled"]);
    let wi = cluster.field("workload_identity_enabled");
    assert_eq!(wi.before, Some(json!(false)));
    assert_eq!(wi.after, known(true));
    assert_eq!(cluster.field("issuer_url").after, known(ISSUER));
    assert_eq!(plan.get(CREDENTIAL).field("issuer").after, known(ISSUER));
}

#[test]
fn both_off_gives_an_issuer_known_after_apply() {
    let api = managed("api", "westeurope", Mark::Mine, &[]);
    let observed = Observed::default()
        .with_cluster(aks(false, false))
        .with_identity(api, Vec::new())
        .with_kube(Vec::new(), Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let cluster = plan.get("cluster.prod");
    assert_eq!(cluster.action, Action::Update);
    assert_eq!(
        cluster.changed(),
        [
            "oidc_issuer_enabled",
            "workload_identity_enabled",
            "issuer_url"
        ]
    );
    let issuer = cluster.field("issuer_url");
    assert_eq!((&issuer.before, &issuer.after), (&None, &After::Unknown));
    assert!(issuer.computed);
    let credential = plan.get(CREDENTIAL);
    assert_eq!(credential.action, Action::Create);
    assert_eq!(credential.field("issuer").after, After::Unknown);
    assert_eq!(credential.field("subject").after, known(SUBJECT));
}

#[test]
fn an_existing_credential_waiting_for_the_issuer_is_updated() {
    let api = managed("api", "westeurope", Mark::Mine, &[]);
    let old = credential(&api, CREDENTIAL_NAME, "https://old.example/", SUBJECT);
    let observed = Observed::default()
        .with_cluster(aks(false, false))
        .with_identity(api, vec![old])
        .with_kube(Vec::new(), Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    let credential = plan.get(CREDENTIAL);
    assert_eq!(credential.action, Action::Update);
    assert_eq!(
        credential.reason(),
        "the cluster's issuer is known once its OIDC issuer is on"
    );
    assert_eq!(credential.field("issuer").after, After::Unknown);
}

#[test]
fn a_ready_cluster_is_a_no_op() {
    let plan = plan_for(WORKLOAD, &in_sync());
    let cluster = plan.get("cluster.prod");
    assert_eq!(cluster.action, Action::NoOp);
    assert_eq!(cluster.field("issuer_url").after, known(ISSUER));
    assert_eq!(cluster.id.as_deref(), Some(aks(true, true).id.as_str()));
}

#[test]
fn without_enable_an_issuer_that_is_on_is_only_read() {
    let observed = Observed::default()
        .with_cluster(aks(true, false))
        .with_kube(Vec::new(), Vec::new());
    let plan = plan_for(NO_ENABLE, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let cluster = plan.get("cluster.prod");
    assert_eq!(cluster.action, Action::Read);
    assert!(cluster.changed().is_empty(), "{cluster:#?}");
    assert_eq!(plan.get(CREDENTIAL).field("issuer").after, known(ISSUER));
}

#[test]
fn without_enable_an_issuer_that_is_off_is_an_error() {
    let observed = Observed::default()
        .with_cluster(aks(false, true))
        .with_kube(Vec::new(), Vec::new());
    let plan = plan_for(NO_ENABLE, &observed);
    let error = plan.error_for("cluster.prod");
    assert!(
        error
            .message
            .contains("has no OIDC issuer and enable_workload_identity = false"),
        "{}",
        error.message
    );
    assert!(
        error
            .hint
            .as_deref()
            .unwrap()
            .contains("--enable-oidc-issuer")
    );
    assert!(plan.find(CREDENTIAL).is_none(), "no issuer to trust");
}

#[test]
fn with_enable_a_cluster_without_an_issuer_url_is_updated_not_misreported() {
    // Both settings on but no issuer URL yet: wiform's update (which waits for the URL) is due;
    // the config did not say enable_workload_identity = false.
    let mut cluster = aks(true, true);
    cluster.issuer_url = None;
    let observed = Observed::default()
        .with_cluster(cluster)
        .with_kube(Vec::new(), Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    assert_eq!(plan.action("cluster.prod"), Action::Update);
    assert_eq!(plan.get(CREDENTIAL).field("issuer").after, After::Unknown);
}

// ---------------------------------------------------------------------------------------------
// Managed identities

#[test]
fn an_absent_identity_is_created_and_its_dependents_wait_for_its_ids() {
    let observed = Observed::default()
        .with_cluster(aks(true, true))
        .with_kube(vec![namespace("orders", Mark::Mine)], Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.action, Action::Create);
    assert_eq!(identity.resource_type, "managed_identity");
    for name in ["client_id", "principal_id"] {
        let f = identity.field(name);
        assert!(f.computed && f.before.is_none(), "{f:?}");
        assert_eq!(f.after, After::Unknown);
    }
    assert_eq!(identity.field("location").after, known("westeurope"));
    assert_eq!(identity.field("resource_group").after, known("rg-id"));

    let account = plan.get(ACCOUNT);
    assert_eq!(account.action, Action::Create);
    assert_eq!(account.field(&client_id_annotation()).after, After::Unknown);
    assert_eq!(
        account
            .field(&format!("annotations[{TENANT_ID_ANNOTATION:?}]"))
            .after,
        known(TENANT)
    );
    let role = plan.get(&grant("api", "Reader"));
    assert_eq!(role.action, Action::Create);
    assert_eq!(role.field("principal_id").after, After::Unknown);
    assert_eq!(plan.action(CREDENTIAL), Action::Create);
}

#[test]
fn an_owned_identity_as_configured_is_a_no_op_and_gives_its_ids() {
    let plan = plan_for(WORKLOAD, &in_sync());
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.action, Action::NoOp);
    assert_eq!(identity.field("client_id").after, known("client-api"));
    assert_eq!(
        plan.get(ACCOUNT).field(&client_id_annotation()).after,
        known("client-api")
    );
    assert_eq!(
        plan.get(&grant("api", "Reader"))
            .field("principal_id")
            .after,
        known("principal-api")
    );
}

#[test]
fn fields_azure_fills_in_never_cause_a_change() {
    // Another tenant id in the answer, another spec hash in the marker (the config changed
    // since: the planner compares fields, not hashes), the marker tag names in another case,
    // the location spelled as the portal shows it.
    let api = LiveIdentity::from_arm(&json!({
        "id": identity_id(SUB, "rg-id", "api").replace("resourceGroups", "resourcegroups"),
        "name": "api",
        "location": "West Europe",
        "tags": {"Wiform-Stack": STACK, "WIFORM-SPEC-HASH": "ffffffffffffffff", "team": "orders"},
        "properties": {"tenantId": "cccccccc-0000-4000-8000-000000000009",
                       "clientId": "CLIENT-API", "principalId": "principal-api"},
    }))
    .unwrap();
    let observed = Observed::default().with_identity(api, Vec::new());
    let plan = plan_for(
        "[identities.api]\nresource_group = \"rg-id\"\ntags = { team = \"orders\" }\n",
        &observed,
    );
    plan.assert_in_sync();
    assert_eq!(
        plan.get(IDENTITY).field("client_id").after,
        known("client-api")
    );
}

#[test]
fn an_identity_whose_records_are_stale_is_updated_to_record_what_the_config_gives_it() {
    // Applied when the config gave it other credentials: its fields are as configured, but
    // what it records of its credentials is not.
    let mut observed = in_sync();
    let key = identity_id(SUB, "rg-id", "api").to_ascii_lowercase();
    let live = observed
        .azure
        .identities
        .get_mut(&key)
        .expect("the identity");
    live.tags.insert(
        crate::engine::records::CREDENTIALS_TAG.into(),
        "deadbeef".into(),
    );
    let plan = plan_for(WORKLOAD, &observed);
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.action, Action::Update);
    assert_eq!(identity.changed_fields().count(), 0, "{identity:#?}");
    assert!(
        identity
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("records"),
        "{identity:#?}"
    );
}

#[test]
fn tags_of_an_owned_identity_follow_the_config() {
    let api = managed(
        "api",
        "westeurope",
        Mark::Mine,
        &[("team", "billing"), ("added-by-hand", "x")],
    );
    let observed = Observed::default().with_identity(api, Vec::new());
    let plan = plan_for(
        "[identities.api]\nresource_group = \"rg-id\"\ntags = { team = \"orders\" }\n",
        &observed,
    );
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.action, Action::Update);
    assert_eq!(
        identity.changed(),
        ["tags[\"added-by-hand\"]", "tags[\"team\"]"]
    );
    assert_eq!(
        identity.field("tags[\"added-by-hand\"]").after,
        After::Removed
    );
    assert_eq!(identity.field("tags[\"team\"]").after, known("orders"));
    // No tag field for the markers.
    assert!(identity.fields.iter().all(|f| !f.name.contains("wiform")));
}

#[test]
fn an_owned_identity_in_another_location_is_replaced() {
    let api = managed("api", "northeurope", Mark::Mine, &[]);
    let implied = credential(&api, CREDENTIAL_NAME, ISSUER, SUBJECT);
    let observed = in_sync().with_identity(api, vec![implied]);
    let plan = plan_for(WORKLOAD, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.action, Action::Replace);
    assert!(
        identity
            .reason()
            .starts_with("location cannot change: replace"),
        "{}",
        identity.reason()
    );
    let location = identity.field("location");
    assert_eq!(location.before, Some(json!("northeurope")));
    assert_eq!(location.after, known("westeurope"));
    assert_eq!(
        identity.field("client_id").before,
        Some(json!("client-api"))
    );
    assert_eq!(identity.field("client_id").after, After::Unknown);
    // Everything that used the old ids is made again with the new ones.
    assert_eq!(plan.action(CREDENTIAL), Action::Create);
    assert_eq!(plan.action(&grant("api", "Reader")), Action::Create);
    let account = plan.get(ACCOUNT);
    assert_eq!(account.action, Action::Update);
    assert_eq!(account.field(&client_id_annotation()).after, After::Unknown);
    // The old credentials and grants go with the old identity: nothing else is deleted.
    assert!(plan.deletes().is_empty(), "{:?}", plan.deletes());
}

#[test]
fn an_unowned_identity_is_adopted() {
    let api = managed("api", "westeurope", Mark::Unmarked, &[]);
    let observed = Observed::default().with_identity(api, Vec::new());
    let plan = plan_for("[identities.api]\nresource_group = \"rg-id\"\n", &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.action, Action::Adopt);
    assert_eq!(identity.field("principal_id").after, known("principal-api"));
}

#[test]
fn an_unowned_identity_elsewhere_is_an_error() {
    let api = managed("api", "northeurope", Mark::Unmarked, &[]);
    let observed = Observed::default().with_identity(api, Vec::new());
    let plan = plan_for("[identities.api]\nresource_group = \"rg-id\"\n", &observed);
    assert!(plan.find(IDENTITY).is_none());
    assert!(
        plan.error_for(IDENTITY)
            .message
            .contains("exists in northeurope without wiform's marker"),
        "{:#?}",
        plan.errors
    );
}

#[test]
fn an_identity_of_another_stack_is_an_error_and_nothing_depending_on_it_is_planned() {
    let mut observed = in_sync();
    observed.azure.identities.clear();
    let observed =
        observed.with_identity(managed("api", "westeurope", Mark::Theirs, &[]), Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    let error = plan.error_for(IDENTITY);
    assert_eq!(
        error.message,
        "managed identity rg-id/api belongs to stack \"billing\""
    );
    for address in [
        IDENTITY,
        CREDENTIAL,
        ACCOUNT,
        grant("api", "Reader").as_str(),
    ] {
        assert!(plan.find(address).is_none(), "{address} planned");
    }
    assert!(plan.deletes().is_empty(), "{:?}", plan.deletes());
}

// ---------------------------------------------------------------------------------------------
// Federated credentials, on managed identities and on applications

const GITHUB_MANAGED: &str = r#"
[identities.api]
resource_group = "rg-id"
[[federations]]
identity = "api"
name = "github-main"
issuer = "https://token.actions.githubusercontent.com"
subject = "repo:contoso/shop:ref:refs/heads/main"
"#;

const GITHUB_APPLICATION: &str = r#"
[identities.api]
kind = "application"
display_name = "shop api"
[[federations]]
identity = "api"
name = "github-main"
issuer = "https://token.actions.githubusercontent.com"
subject = "repo:contoso/shop:ref:refs/heads/main"
"#;

const GITHUB_CREDENTIAL: &str = "federated_credential.api/github-main";

/// The same test, for each kind of identity.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Managed,
    Application,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Managed, Kind::Application];

    fn config(self) -> &'static str {
        match self {
            Kind::Managed => GITHUB_MANAGED,
            Kind::Application => GITHUB_APPLICATION,
        }
    }

    /// The identity `api`, owned, with credentials (name, issuer, subject, audience).
    fn observed(self, credentials: &[(&str, &str, &str, &str)]) -> Observed {
        match self {
            Kind::Managed => {
                let api = managed("api", "westeurope", Mark::Mine, &[]);
                let list = credentials
                    .iter()
                    .map(|(name, issuer, subject, audience)| {
                        let mut c = credential(&api, name, issuer, subject);
                        c.audiences = vec![audience.to_string()];
                        c
                    })
                    .collect();
                Observed::default().with_identity(api, list)
            }
            Kind::Application => {
                let app = application("obj-api", "shop api", Mark::Mine, Some("api"));
                let list = credentials
                    .iter()
                    .map(|(name, issuer, subject, audience)| {
                        let mut c = app_credential(name, issuer, subject);
                        c.audiences = vec![audience.to_string()];
                        c
                    })
                    .collect();
                Observed::default().with_application(app, list)
            }
        }
    }

    fn resource_type(self) -> &'static str {
        match self {
            Kind::Managed => "managed_identity",
            Kind::Application => "application",
        }
    }
}

#[test]
fn an_absent_credential_is_created() {
    for kind in Kind::ALL {
        let plan = plan_for(kind.config(), &kind.observed(&[]));
        assert!(plan.errors.is_empty(), "{kind:?}: {:#?}", plan.errors);
        assert_eq!(plan.get(IDENTITY).resource_type, kind.resource_type());
        let c = plan.get(GITHUB_CREDENTIAL);
        assert_eq!(c.action, Action::Create, "{kind:?}");
        assert_eq!(c.field("issuer").after, known(GITHUB));
        assert_eq!(c.field("subject").after, known(MAIN));
        assert_eq!(c.field("audiences").after, known([DEFAULT_AUDIENCE]));
    }
}

#[test]
fn a_credential_as_configured_is_a_no_op() {
    for kind in Kind::ALL {
        // Names compare without regard to case.
        let observed = kind.observed(&[("GitHub-Main", GITHUB, MAIN, DEFAULT_AUDIENCE)]);
        let plan = plan_for(kind.config(), &observed);
        plan.assert_in_sync();
        assert!(plan.get(GITHUB_CREDENTIAL).id.is_some(), "{kind:?}");
    }
}

#[test]
fn a_changed_subject_replaces_the_credential() {
    for kind in Kind::ALL {
        let old = "repo:contoso/shop:ref:refs/heads/develop";
        let observed = kind.observed(&[("github-main", GITHUB, old, DEFAULT_AUDIENCE)]);
        let plan = plan_for(kind.config(), &observed);
        let c = plan.get(GITHUB_CREDENTIAL);
        assert_eq!(c.action, Action::Replace, "{kind:?}");
        assert!(c.reason().starts_with("subject changed"), "{}", c.reason());
        assert_eq!(c.changed(), ["subject"]);
        assert_eq!(c.field("subject").before, Some(json!(old)));
    }
}

#[test]
fn a_changed_issuer_replaces_the_credential() {
    for kind in Kind::ALL {
        let old = "https://gitlab.example.com";
        let observed = kind.observed(&[("github-main", old, MAIN, DEFAULT_AUDIENCE)]);
        let plan = plan_for(kind.config(), &observed);
        let c = plan.get(GITHUB_CREDENTIAL);
        assert_eq!(c.action, Action::Replace, "{kind:?}");
        assert!(c.reason().starts_with("issuer changed"), "{}", c.reason());
        assert_eq!(c.changed(), ["issuer"]);
    }
}

#[test]
fn a_changed_audience_updates_the_credential() {
    for kind in Kind::ALL {
        let observed = kind.observed(&[("github-main", GITHUB, MAIN, "api://other")]);
        let plan = plan_for(kind.config(), &observed);
        let c = plan.get(GITHUB_CREDENTIAL);
        assert_eq!(c.action, Action::Update, "{kind:?}");
        assert_eq!(c.reason, None);
        assert_eq!(c.changed(), ["audiences"]);
        assert_eq!(c.field("audiences").before, Some(json!(["api://other"])));
    }
}

#[test]
fn an_extra_credential_on_an_owned_identity_is_deleted() {
    for kind in Kind::ALL {
        let observed = kind.observed(&[
            ("github-main", GITHUB, MAIN, DEFAULT_AUDIENCE),
            (
                "added-by-hand",
                GITHUB,
                "repo:contoso/other:ref:refs/heads/main",
                DEFAULT_AUDIENCE,
            ),
        ]);
        let plan = plan_for(kind.config(), &observed);
        assert_eq!(
            plan.deletes(),
            ["federated_credential.api/added-by-hand"],
            "{kind:?}"
        );
        let extra = plan.get("federated_credential.api/added-by-hand");
        assert!(extra.not_in_config);
        assert_eq!(extra.reason(), "", "not_in_config says it all");
        assert_eq!(extra.field("subject").after, After::Removed);
        assert_eq!(plan.action(GITHUB_CREDENTIAL), Action::NoOp);
    }
}

#[test]
fn credentials_of_identities_the_stack_does_not_own_are_left_alone() {
    // An unowned identity and application the config does not name (observed because of
    // their name), each with credentials: not ours, nothing is pruned.
    let stranger = managed("stranger", "westeurope", Mark::Unmarked, &[]);
    let theirs = managed("theirs", "westeurope", Mark::Theirs, &[]);
    let observed = Kind::Managed
        .observed(&[("github-main", GITHUB, MAIN, DEFAULT_AUDIENCE)])
        .with_identity(
            stranger.clone(),
            vec![credential(&stranger, "deploy", GITHUB, MAIN)],
        )
        .with_identity(
            theirs.clone(),
            vec![credential(&theirs, "deploy", GITHUB, MAIN)],
        )
        .with_application(
            application("obj-other", "other app", Mark::Unmarked, None),
            vec![app_credential("deploy", GITHUB, MAIN)],
        );
    let plan = plan_for(GITHUB_MANAGED, &observed);
    plan.assert_in_sync();
    assert_eq!(plan.changes.len(), 2, "{:#?}", plan.actions());
}

// ---------------------------------------------------------------------------------------------
// Applications

const APPLICATION: &str = r#"
[identities.web]
kind = "application"
display_name = "shop web"
"#;

#[test]
fn an_absent_application_is_created() {
    let plan = plan_for(APPLICATION, &Observed::default());
    let app = plan.get("identity.web");
    assert_eq!(app.action, Action::Create);
    assert_eq!(app.resource_type, "application");
    assert_eq!(app.field("display_name").after, known("shop web"));
    assert_eq!(app.field("app_id").after, After::Unknown);
    assert_eq!(app.field("service_principal_id").after, After::Unknown);
}

#[test]
fn an_owned_application_as_configured_is_a_no_op() {
    let observed = Observed::default().with_application(
        application("obj-web", "shop web", Mark::Mine, Some("web")),
        Vec::new(),
    );
    let plan = plan_for(APPLICATION, &observed);
    plan.assert_in_sync();
    let app = plan.get("identity.web");
    assert_eq!(app.id.as_deref(), Some("obj-web"));
    assert_eq!(app.field("app_id").after, known("app-obj-web"));
}

#[test]
fn an_owned_application_is_found_by_its_unique_name_and_renamed() {
    let observed = Observed::default().with_application(
        application("obj-web", "old name", Mark::Mine, Some("web")),
        Vec::new(),
    );
    let plan = plan_for(APPLICATION, &observed);
    let app = plan.get("identity.web");
    assert_eq!(app.action, Action::Update);
    assert_eq!(app.changed(), ["display_name"]);
    assert!(plan.deletes().is_empty());
}

#[test]
fn an_owned_application_without_a_service_principal_is_updated() {
    let mut web = application("obj-web", "shop web", Mark::Mine, Some("web"));
    web.service_principal_id = None;
    let plan = plan_for(
        APPLICATION,
        &Observed::default().with_application(web, Vec::new()),
    );
    let app = plan.get("identity.web");
    assert_eq!(app.action, Action::Update);
    assert_eq!(app.reason(), "the application has no service principal");
}

#[test]
fn an_unowned_application_with_the_display_name_is_adopted() {
    let observed = Observed::default().with_application(
        application("obj-web", "shop web", Mark::Unmarked, None),
        Vec::new(),
    );
    let plan = plan_for(APPLICATION, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let app = plan.get("identity.web");
    assert_eq!(app.action, Action::Adopt);
    assert_eq!(app.id.as_deref(), Some("obj-web"));
}

#[test]
fn two_unowned_applications_with_the_display_name_are_an_error() {
    let observed = Observed::default()
        .with_application(
            application("obj-1", "shop web", Mark::Unmarked, None),
            Vec::new(),
        )
        .with_application(
            application("obj-2", "shop web", Mark::Unmarked, None),
            Vec::new(),
        );
    let plan = plan_for(APPLICATION, &observed);
    assert!(plan.find("identity.web").is_none());
    assert_eq!(
        plan.error_for("identity.web").message,
        "2 applications are named \"shop web\" and none carries wiform's marker"
    );
}

#[test]
fn an_owned_application_no_longer_in_the_config_is_deleted() {
    let observed = Observed::default()
        .with_application(
            application("obj-web", "shop web", Mark::Mine, Some("web")),
            Vec::new(),
        )
        .with_application(
            application("obj-old", "shop old", Mark::Mine, Some("old")),
            vec![app_credential("deploy", GITHUB, MAIN)],
        );
    let plan = plan_for(APPLICATION, &observed);
    assert_eq!(plan.deletes(), ["identity.shop old"]);
    let old = plan.get("identity.shop old");
    assert_eq!(old.resource_type, "application");
    assert_eq!(old.id.as_deref(), Some("obj-old"));
    assert!(old.not_in_config);
}

// ---------------------------------------------------------------------------------------------
// Role assignments

const ROLE: &str = r#"
[identities.api]
resource_group = "rg-id"
[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/rg-data"
"#;

const CONDITION: &str =
    "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'";

fn with_api(assignments: Vec<LiveRoleAssignment>) -> Observed {
    let mut observed = Observed::default()
        .with_identity(managed("api", "westeurope", Mark::Mine, &[]), Vec::new());
    observed.azure.role_assignments = assignments;
    observed
}

fn reader_for_api(mark: Mark, condition: Option<&str>) -> LiveRoleAssignment {
    assignment(
        "11111111-0000-4000-8000-000000000001",
        &data_scope(),
        "principal-api",
        reader(),
        mark,
        condition,
    )
}

#[test]
fn an_absent_role_assignment_is_created() {
    let plan = plan_for(ROLE, &with_api(Vec::new()));
    let role = plan.get(&grant("api", "Reader"));
    assert_eq!(role.action, Action::Create);
    assert_eq!(role.resource_type, "role_assignment");
    assert_eq!(role.field("role").after, known("Reader"));
    assert_eq!(role.field("scope").after, known(data_scope()));
    assert_eq!(role.field("principal_id").after, known("principal-api"));
    assert_eq!(role.depends_on, [IDENTITY]);
}

#[test]
fn an_owned_role_assignment_is_a_no_op() {
    // ARM gives scopes back in lower case; the config's spelling is not a change.
    let plan = plan_for(ROLE, &with_api(vec![reader_for_api(Mark::Mine, None)]));
    plan.assert_in_sync();
    assert_eq!(
        plan.get(&grant("api", "Reader")).id,
        Some(reader_for_api(Mark::Mine, None).id)
    );
}

#[test]
fn an_unowned_role_assignment_is_adopted() {
    let plan = plan_for(ROLE, &with_api(vec![reader_for_api(Mark::Unmarked, None)]));
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    assert_eq!(plan.action(&grant("api", "Reader")), Action::Adopt);
    assert!(plan.deletes().is_empty());
}

#[test]
fn a_role_assignment_of_another_stack_is_an_error() {
    let plan = plan_for(ROLE, &with_api(vec![reader_for_api(Mark::Theirs, None)]));
    let address = grant("api", "Reader");
    assert!(plan.find(&address).is_none());
    assert!(
        plan.error_for(&address)
            .message
            .ends_with("belongs to stack \"billing\"")
    );
}

#[test]
fn a_changed_condition_updates_the_role_assignment() {
    let with_condition = ROLE.replace(
        "scope = \"resourceGroups/rg-data\"",
        &format!("scope = \"resourceGroups/rg-data\"\ncondition = \"{CONDITION}\""),
    );
    let plan = plan_for(
        &with_condition,
        &with_api(vec![reader_for_api(Mark::Mine, None)]),
    );
    let role = plan.get(&grant("api", "Reader"));
    assert_eq!(role.action, Action::Update);
    assert_eq!(role.changed(), ["condition"]);
    assert_eq!(role.field("condition").before, None);
    assert_eq!(role.field("condition").after, known(CONDITION));

    // And the other way: the config drops the condition.
    let plan = plan_for(
        ROLE,
        &with_api(vec![reader_for_api(Mark::Mine, Some(CONDITION))]),
    );
    let role = plan.get(&grant("api", "Reader"));
    assert_eq!(role.action, Action::Update);
    assert_eq!(role.field("condition").before, Some(json!(CONDITION)));
    assert_eq!(role.field("condition").after, After::Removed);
}

#[test]
fn extra_role_assignments_of_an_owned_identity_are_deleted() {
    let contributor = builtin_roles::by_name("Contributor").unwrap().id;
    let other_scope = format!("/subscriptions/{SUB}/resourceGroups/rg-other");
    let observed = with_api(vec![
        reader_for_api(Mark::Mine, None),
        assignment(
            "22222222-0000-4000-8000-000000000002",
            &other_scope,
            "principal-api",
            contributor,
            Mark::Mine,
            None,
        ),
        assignment(
            "33333333-0000-4000-8000-000000000003",
            &other_scope,
            "principal-api",
            reader(),
            Mark::Unmarked,
            None,
        ),
        // Another stack's grant to our principal is that stack's business.
        assignment(
            "44444444-0000-4000-8000-000000000004",
            &data_scope(),
            "principal-api",
            contributor,
            Mark::Theirs,
            None,
        ),
    ]);
    let plan = plan_for(ROLE, &observed);
    let contributor_address = format!(
        "role_grant.api[\"Contributor\" @ {}]",
        other_scope.to_ascii_lowercase()
    );
    let reader_address = format!(
        "role_grant.api[\"Reader\" @ {}]",
        other_scope.to_ascii_lowercase()
    );
    assert_eq!(
        plan.deletes(),
        [contributor_address.as_str(), reader_address.as_str()]
    );
    let owned = plan.get(&contributor_address);
    assert!(owned.not_in_config);
    assert_eq!(owned.reason(), "");
    assert_eq!(
        owned.field("principal_id").before,
        Some(json!("principal-api"))
    );
    let by_hand = plan.get(&reader_address);
    assert!(
        by_hand.reason().contains("made outside wiform"),
        "{}",
        by_hand.reason()
    );
    assert_eq!(plan.action(&grant("api", "Reader")), Action::NoOp);
}

#[test]
fn role_assignments_of_other_principals_are_ignored() {
    let observed = with_api(vec![
        reader_for_api(Mark::Mine, None),
        assignment(
            "55555555-0000-4000-8000-000000000005",
            &data_scope(),
            "principal-someone",
            reader(),
            Mark::Unmarked,
            None,
        ),
        // Even one carrying this stack's marker: its principal is no identity of the stack.
        assignment(
            "66666666-0000-4000-8000-000000000006",
            &data_scope(),
            "principal-gone",
            reader(),
            Mark::Mine,
            None,
        ),
    ]);
    let plan = plan_for(ROLE, &observed);
    plan.assert_in_sync();
    assert_eq!(plan.changes.len(), 2);
}

#[test]
fn roles_by_guid_need_no_observation() {
    let guid = "99999999-0000-4000-8000-000000000009";
    let config = ROLE.replace("role = \"Reader\"", &format!("role = \"{guid}\""));
    let live = assignment(
        "77777777-0000-4000-8000-000000000007",
        &data_scope(),
        "principal-api",
        guid,
        Mark::Mine,
        None,
    );
    let plan = plan_for(&config, &with_api(vec![live]));
    plan.assert_in_sync();
    assert_eq!(plan.action(&grant("api", guid)), Action::NoOp);
}

#[test]
fn custom_role_names_are_resolved_through_the_observation() {
    let config = ROLE.replace("role = \"Reader\"", "role = \"Shop Reader\"");
    let guid = "88888888-0000-4000-8000-000000000008";
    let live = assignment(
        "77777777-0000-4000-8000-000000000007",
        &data_scope(),
        "principal-api",
        guid,
        Mark::Mine,
        None,
    );
    let address = grant("api", "Shop Reader");

    // Not resolved: an error, and the grant is not planned.
    let unresolved = plan_for(&config, &with_api(vec![live.clone()]));
    assert_eq!(
        unresolved.error_for(&address).message,
        format!("role `Shop Reader` was not resolved at {}", data_scope())
    );
    assert!(unresolved.find(&address).is_none());

    // Resolved at the grant's scope: matched by definition GUID.
    let mut observed = with_api(vec![live]);
    observed.azure.roles.push(ResolvedRole {
        scope: data_scope(),
        role: RoleRef::Name {
            name: "Shop Reader".into(),
        },
        definition: RoleDefinition {
            id: format!(
                "/subscriptions/{SUB}/providers/microsoft.authorization/roledefinitions/{guid}"
            ),
            guid: guid.into(),
            role_name: "Shop Reader".into(),
            builtin: false,
        },
    });
    let plan = plan_for(&config, &observed);
    plan.assert_in_sync();
    assert_eq!(plan.action(&address), Action::NoOp);
}

#[test]
fn a_grant_whose_role_cannot_be_resolved_is_not_pruned() {
    // The custom role's lookup failed: the live grant is the config's, not an extra.
    let config = ROLE.replace("role = \"Reader\"", "role = \"Shop Reader\"");
    let live = assignment(
        "77777777-0000-4000-8000-000000000007",
        &data_scope(),
        "principal-api",
        "88888888-0000-4000-8000-000000000008",
        Mark::Mine,
        None,
    );
    let observed = with_api(vec![live]).with_failure(
        Listing::Role(data_scope(), "Shop Reader".into()),
        "custom roles",
    );
    let plan = plan_for(&config, &observed);
    assert_eq!(plan.errors.len(), 1, "{:#?}", plan.errors);
    assert!(plan.deletes().is_empty(), "{:?}", plan.deletes());
}

// ---------------------------------------------------------------------------------------------
// Namespaces

#[test]
fn an_absent_namespace_is_created() {
    let plan = plan_for(WORKLOAD, &in_sync().with_kube(Vec::new(), Vec::new()));
    let ns = plan.get(NAMESPACE);
    assert_eq!(ns.action, Action::Create);
    assert_eq!(ns.resource_type, "namespace");
    assert_eq!(ns.field("name").after, known("orders"));
}

#[test]
fn an_owned_namespace_is_a_no_op() {
    let plan = plan_for(WORKLOAD, &in_sync());
    let ns = plan.get(NAMESPACE);
    assert_eq!(ns.action, Action::NoOp);
    assert_eq!(ns.id.as_deref(), Some("orders"));
}

#[test]
fn an_unowned_namespace_is_read_and_never_adopted() {
    let observed = in_sync().with_kube(
        vec![namespace("orders", Mark::Unmarked)],
        vec![applied(&desired_account("api", "client-api"))],
    );
    let plan = plan_for(WORKLOAD, &observed);
    let ns = plan.get(NAMESPACE);
    assert_eq!(ns.action, Action::Read);
    assert_eq!(ns.reason(), "exists; wiform uses it and leaves it alone");
    assert!(plan.errors.is_empty());
}

#[test]
fn an_owned_namespace_no_longer_in_the_config_is_deleted() {
    let observed = in_sync().with_kube(
        vec![
            namespace("orders", Mark::Mine),
            namespace("legacy", Mark::Mine),
        ],
        vec![applied(&desired_account("api", "client-api"))],
    );
    let plan = plan_for(WORKLOAD, &observed);
    assert_eq!(plan.deletes(), ["namespace.prod/legacy"]);
    let legacy = plan.get("namespace.prod/legacy");
    assert!(legacy.not_in_config);
    assert!(legacy.reason().starts_with("deleted only if"));
    assert_eq!(legacy.field("name").before, Some(json!("legacy")));
}

#[test]
fn a_namespace_the_config_still_uses_is_not_deleted() {
    // `create_namespace = false`: no namespace node, but the configured account lives there.
    let config = WORKLOAD.replace(
        "identity = \"api\"\n[[role_grants]]",
        "identity = \"api\"\ncreate_namespace = false\n[[role_grants]]",
    );
    let plan = plan_for(&config, &in_sync());
    assert!(plan.find(NAMESPACE).is_none());
    plan.assert_in_sync();
}

// ---------------------------------------------------------------------------------------------
// Service accounts

#[test]
fn an_absent_service_account_is_created() {
    let observed = in_sync().with_kube(vec![namespace("orders", Mark::Mine)], Vec::new());
    let plan = plan_for(WORKLOAD, &observed);
    let account = plan.get(ACCOUNT);
    assert_eq!(account.action, Action::Create);
    assert_eq!(account.resource_type, "service_account");
    assert_eq!(account.field("namespace").after, known("orders"));
    assert_eq!(account.field("name").after, known("api"));
    assert_eq!(
        account.field(&client_id_annotation()).after,
        known("client-api")
    );
    // The markers are wiform's business, not fields.
    assert!(
        account.fields.iter().all(|f| !f.name.contains("wiform")),
        "{account:#?}"
    );
}

#[test]
fn an_annotation_edited_by_hand_is_updated_back() {
    let mut account = applied(&desired_account("api", "client-api"));
    annotations_mut(&mut account).insert(CLIENT_ID_ANNOTATION.into(), "edited".into());
    let plan = plan_for(WORKLOAD, &in_sync_with_account(account));
    let change = plan.get(ACCOUNT);
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.id.as_deref(), Some("orders/api"));
    assert_eq!(change.changed(), [client_id_annotation()]);
    let annotation = change.field(&client_id_annotation());
    assert_eq!(annotation.before, Some(json!("edited")));
    assert_eq!(annotation.after, known("client-api"));
}

#[test]
fn an_annotation_dropped_from_the_config_is_removed() {
    let mut desired = desired_account("api", "client-api");
    desired.annotations.insert("team".into(), "orders".into());
    let plan = plan_for(WORKLOAD, &in_sync_with_account(applied(&desired)));
    let change = plan.get(ACCOUNT);
    assert_eq!(change.action, Action::Update);
    let team = change.field("annotations[\"team\"]");
    assert_eq!(team.before, Some(json!("orders")));
    assert_eq!(team.after, After::Removed);
}

#[test]
fn labels_and_annotations_of_other_field_managers_never_cause_a_change() {
    let mut account = applied(&desired_account("api", "client-api"));
    annotations_mut(&mut account).insert(
        "kubectl.kubernetes.io/last-applied-configuration".into(),
        "{}".into(),
    );
    annotations_mut(&mut account).insert("team".into(), "orders".into());
    account
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("app.kubernetes.io/part-of".into(), "shop".into());
    let plan = plan_for(WORKLOAD, &in_sync_with_account(account));
    plan.assert_in_sync();
    let change = plan.get(ACCOUNT);
    assert!(
        change
            .fields
            .iter()
            .all(|f| !f.name.contains("kubectl") && !f.name.contains("part-of"))
    );
}

#[test]
fn an_unowned_service_account_is_adopted() {
    let account = foreign_account("api", Mark::Unmarked, json!({"owner": "team-orders"}));
    let plan = plan_for(WORKLOAD, &in_sync_with_account(account));
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let change = plan.get(ACCOUNT);
    assert_eq!(change.action, Action::Adopt);
    let annotation = change.field(&client_id_annotation());
    assert_eq!(annotation.before, None);
    assert_eq!(annotation.after, known("client-api"));
    assert!(change.fields.iter().all(|f| !f.name.contains("owner")));
    // The plan says what adoption leaves alone.
    assert_eq!(
        change.reason(),
        "leaves alone what it does not set: annotations[\"owner\"] (their field managers keep them)"
    );
}

#[test]
fn a_service_account_of_another_stack_is_an_error() {
    let mut desired = desired_account("api", "client-api");
    desired.stack = "billing".into();
    let plan = plan_for(WORKLOAD, &in_sync_with_account(applied(&desired)));
    assert!(plan.find(ACCOUNT).is_none());
    let error = plan.error_for(ACCOUNT);
    assert_eq!(
        error.message,
        "service account orders/api belongs to stack \"billing\""
    );
    assert!(plan.deletes().is_empty());
}

#[test]
fn an_owned_service_account_no_longer_in_the_config_is_deleted() {
    let observed = in_sync().with_kube(
        vec![namespace("orders", Mark::Mine)],
        vec![
            applied(&desired_account("api", "client-api")),
            applied(&desired_account("worker", "client-api")),
            foreign_account("default", Mark::Unmarked, json!({})),
        ],
    );
    let plan = plan_for(WORKLOAD, &observed);
    assert_eq!(plan.deletes(), ["service_account.prod/orders/worker"]);
    let worker = plan.get("service_account.prod/orders/worker");
    assert!(worker.not_in_config);
    assert_eq!(worker.id.as_deref(), Some("orders/worker"));
    assert_eq!(worker.reason(), "");
}

// ---------------------------------------------------------------------------------------------
// Pruning

#[test]
fn an_owned_identity_removed_from_the_config_goes_with_its_credentials_and_grants() {
    let old = managed("old", "westeurope", Mark::Mine, &[]);
    let observed = Observed::default()
        .with_cluster(aks(true, true))
        .with_assignment(assignment(
            "12121212-0000-4000-8000-000000000012",
            &data_scope(),
            &old.principal_id,
            reader(),
            Mark::Mine,
            None,
        ))
        .with_identity(
            old.clone(),
            vec![credential(
                &old,
                "prod-orders-old",
                ISSUER,
                "system:serviceaccount:orders:old",
            )],
        )
        .with_kube(
            vec![
                namespace("orders", Mark::Mine),
                namespace("legacy", Mark::Mine),
            ],
            vec![applied(&desired_account("old", "client-old"))],
        );
    let plan = plan_for(WORKLOAD, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    let grant_address = format!(
        "role_grant.old[\"Reader\" @ {}]",
        data_scope().to_ascii_lowercase()
    );
    assert_eq!(
        plan.deletes(),
        [
            "service_account.prod/orders/old",
            "namespace.prod/legacy",
            grant_address.as_str(),
            "federated_credential.old/prod-orders-old",
            "identity.old",
        ]
    );
    let identity = plan.get("identity.old");
    assert_eq!(identity.resource_type, "managed_identity");
    assert!(
        identity
            .reason()
            .contains("its federated credentials and role assignments are deleted with it")
    );
    assert_eq!(identity.id.as_deref(), Some(old.id.as_str()));
    assert!(identity.depends_on.is_empty());
    // Deletes come last, after everything else.
    let first_delete = plan.position("service_account.prod/orders/old");
    assert!(
        plan.changes[..first_delete]
            .iter()
            .all(|c| c.action != Action::Delete)
    );
    assert!(
        plan.changes[first_delete..]
            .iter()
            .all(|c| c.action == Action::Delete)
    );
    assert!(plan.position(IDENTITY) < first_delete);
    assert_eq!(plan.summary().destroy, 5);
}

// ---------------------------------------------------------------------------------------------
// What could not be observed

#[test]
fn a_failed_identity_listing_plans_no_identity_and_deletes_nothing() {
    let mut observed = in_sync().with_failure(
        Listing::Identities(SUB.to_string()),
        &format!("managed identities in subscription {SUB}"),
    );
    // A failed listing leaves no identities, hence no credentials either.
    observed.azure.identities.clear();
    observed.azure.identity_credentials.clear();
    let plan = plan_for(WORKLOAD, &observed);
    assert_eq!(plan.errors.len(), 1, "{:#?}", plan.errors);
    let error = &plan.errors[0];
    assert_eq!(error.address, None);
    assert!(
        error.message.starts_with(&format!(
            "could not read managed identities in subscription {SUB}: list managed identities"
        )),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("AuthorizationFailed (HTTP 403)"),
        "{}",
        error.message
    );
    assert!(!error.message.contains("hint:"));
    assert!(
        error
            .hint
            .as_deref()
            .unwrap()
            .contains("userAssignedIdentities/read"),
        "{:?}",
        error.hint
    );
    // Not one create (the identity is there, we just could not see it), nor anything that
    // needs its ids; and the account it binds is not "not in config".
    for address in [
        IDENTITY,
        CREDENTIAL,
        ACCOUNT,
        grant("api", "Reader").as_str(),
    ] {
        assert!(
            plan.find(address).is_none(),
            "{address} planned: {:#?}",
            plan.actions()
        );
    }
    assert!(plan.deletes().is_empty(), "{:?}", plan.deletes());
    assert_eq!(plan.action("cluster.prod"), Action::NoOp);
    assert_eq!(plan.action(NAMESPACE), Action::NoOp);
}

#[test]
fn an_unreachable_cluster_is_an_error_and_its_objects_are_not_planned() {
    let mut observed = in_sync();
    observed.clusters.insert(
        "prod".into(),
        Err(ClusterFailure {
            message: "connection refused".into(),
            hint: Some("check kube_context".into()),
        }),
    );
    let plan = plan_for(WORKLOAD, &observed);
    let error = plan.error_for("cluster.prod");
    assert_eq!(
        error.message,
        "could not read Kubernetes cluster `prod`: connection refused; its namespaces and service accounts are not planned"
    );
    assert_eq!(error.hint.as_deref(), Some("check kube_context"));
    assert!(plan.find(NAMESPACE).is_none());
    assert!(plan.find(ACCOUNT).is_none());
    // Azure is planned as usual.
    assert_eq!(plan.action(IDENTITY), Action::NoOp);
    assert_eq!(plan.action(CREDENTIAL), Action::NoOp);
    assert!(plan.deletes().is_empty());
}

#[test]
fn a_credential_whose_issuer_cannot_be_read_is_not_pruned() {
    // The cluster list failed: the implied credential cannot be planned, but it is still the
    // config's, not an extra to delete.
    let mut observed = in_sync().with_failure(
        Listing::Clusters(SUB.to_string()),
        &format!("AKS clusters in subscription {SUB}"),
    );
    observed.azure.clusters.clear();
    let plan = plan_for(WORKLOAD, &observed);
    assert_eq!(plan.errors.len(), 1, "{:#?}", plan.errors);
    assert!(plan.find("cluster.prod").is_none());
    assert!(plan.find(CREDENTIAL).is_none());
    assert!(plan.deletes().is_empty(), "{:?}", plan.deletes());
}

// ---------------------------------------------------------------------------------------------
// --target

#[test]
fn a_target_plans_what_it_needs_and_deletes_nothing() {
    let config = format!(
        "{WORKLOAD}
[[service_accounts]]
cluster = \"prod\"
namespace = \"batch\"
name = \"worker\"
identity = \"api\"
"
    );
    let observed = Observed::default()
        .with_cluster(aks(true, true))
        .with_identity(managed("gone", "westeurope", Mark::Mine, &[]), Vec::new())
        .with_kube(
            vec![namespace("legacy", Mark::Mine)],
            vec![applied(&desired_account("stale", "client-gone"))],
        );
    let plan = plan_targets(&config, &observed, &[ACCOUNT]);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    assert_eq!(
        plan.actions(),
        [
            (IDENTITY.to_string(), Action::Create),
            (NAMESPACE.to_string(), Action::Create),
            (ACCOUNT.to_string(), Action::Create),
        ]
    );
    assert_eq!(plan.targets, [ACCOUNT]);
}

// ---------------------------------------------------------------------------------------------
// The fingerprint

#[test]
fn the_fingerprint_follows_what_the_plan_touches() {
    let base = plan_for(WORKLOAD, &in_sync()).fingerprint;
    assert_eq!(base.len(), ownership::HASH_LEN);
    assert_eq!(plan_for(WORKLOAD, &in_sync()).fingerprint, base, "stable");

    // Objects the plan does not touch.
    let unrelated = in_sync()
        .with_identity(
            managed("stranger", "westeurope", Mark::Unmarked, &[]),
            Vec::new(),
        )
        .with_kube(
            vec![
                namespace("orders", Mark::Mine),
                namespace("kube-system", Mark::Unmarked),
            ],
            vec![
                applied(&desired_account("api", "client-api")),
                foreign_account("default", Mark::Unmarked, json!({})),
            ],
        );
    assert_eq!(plan_for(WORKLOAD, &unrelated).fingerprint, base);

    // Objects it does.
    let mut tagged = in_sync();
    for identity in tagged.azure.identities.values_mut() {
        identity.tags.insert("team".into(), "orders".into());
    }
    let mut cluster_changed = in_sync();
    for cluster in cluster_changed.azure.clusters.values_mut() {
        cluster.etag = Some("etag-2".into());
    }
    let mut account = applied(&desired_account("api", "client-api"));
    account.metadata.resource_version = Some("8".into());
    let changed = [
        ("identity tags", tagged),
        ("cluster etag", cluster_changed),
        ("account version", in_sync_with_account(account)),
        (
            "namespace gone",
            in_sync().with_kube(
                Vec::new(),
                vec![applied(&desired_account("api", "client-api"))],
            ),
        ),
        (
            "extra credential",
            in_sync().with_identity(
                managed("api", "westeurope", Mark::Mine, &[]),
                vec![
                    credential(
                        &managed("api", "westeurope", Mark::Mine, &[]),
                        CREDENTIAL_NAME,
                        ISSUER,
                        SUBJECT,
                    ),
                    credential(
                        &managed("api", "westeurope", Mark::Mine, &[]),
                        "extra",
                        GITHUB,
                        MAIN,
                    ),
                ],
            ),
        ),
    ];
    for (what, observed) in changed {
        assert_ne!(plan_for(WORKLOAD, &observed).fingerprint, base, "{what}");
    }
}

/// The identity `api` without wiform's marker, with a credential and a grant made by hand.
fn adoptable_api_with_extras() -> Observed {
    let api = managed("api", "westeurope", Mark::Unmarked, &[]);
    let extra = credential(&api, "added-by-hand", GITHUB, MAIN);
    with_api(vec![assignment(
        "22222222-0000-4000-8000-000000000002",
        &format!("/subscriptions/{SUB}/resourceGroups/rg-other"),
        "principal-api",
        reader(),
        Mark::Unmarked,
        None,
    )])
    .with_identity(api, vec![extra])
}

const EXTRAS: [&str; 2] = [
    "role_grant.api[\"Reader\" @ /subscriptions/bbbbbbbb-0000-4000-8000-000000000001/resourcegroups/rg-other]",
    "federated_credential.api/added-by-hand",
];

#[test]
fn what_was_on_an_identity_when_it_is_adopted_is_kept_and_shown() {
    // What wiform did not make, it does not remove (issue 16): the plan shows it, read.
    let plan = plan_for(ROLE, &adoptable_api_with_extras());
    assert_eq!(plan.action(IDENTITY), Action::Adopt);
    assert!(plan.deletes().is_empty(), "{:?}", plan.deletes());
    for address in EXTRAS {
        let kept = plan.get(address);
        assert_eq!(kept.action, Action::Read, "{address}");
        assert!(
            kept.reason().starts_with("not managed by wiform"),
            "{}",
            kept.reason()
        );
        assert!(kept.not_in_config);
    }
}

#[test]
fn an_adopted_identity_that_opts_in_loses_its_extras() {
    // `prune_unmanaged = true`: its extra credentials and grants are pruned like those of an
    // identity wiform created (the plan shows them first).
    let config = ROLE.replace(
        "resource_group = \"rg-id\"\n",
        "resource_group = \"rg-id\"\nprune_unmanaged = true\n",
    );
    let plan = plan_for(&config, &adoptable_api_with_extras());
    assert_eq!(plan.action(IDENTITY), Action::Adopt);
    assert_eq!(plan.deletes(), EXTRAS);
}

#[test]
fn what_the_identity_recorded_at_adoption_stays_and_what_came_later_goes() {
    let api = managed("api", "westeurope", Mark::Mine, &[]);
    let there_before = credential(&api, "there-before", GITHUB, MAIN);
    let added_later = credential(
        &api,
        "added-later",
        GITHUB,
        "repo:contoso/shop:ref:refs/heads/x",
    );
    let mut api = api;
    // As the apply that adopted it wrote: the config's records, and what was there.
    let config = graph(ROLE);
    let id = config
        .node_ids()
        .find(|&n| config.node(n).address == IDENTITY)
        .unwrap();
    api.tags
        .extend(crate::engine::records::identity_records(&config, id));
    api.tags.extend(crate::engine::records::unmanaged_tags(
        &[crate::engine::records::unmanaged_entry(&there_before.id)]
            .into_iter()
            .collect(),
    ));
    let observed = with_api(Vec::new()).with_identity(api, vec![there_before, added_later]);
    let plan = plan_for(ROLE, &observed);
    assert_eq!(
        plan.get("federated_credential.api/there-before").action,
        Action::Read
    );
    assert_eq!(plan.deletes(), ["federated_credential.api/added-later"]);
    // The record of what was there is kept as it is: the identity has nothing to update.
    assert_eq!(
        plan.action(IDENTITY),
        Action::NoOp,
        "{:#?}",
        plan.get(IDENTITY)
    );
}

#[test]
fn an_application_gives_its_app_id_to_its_service_accounts() {
    let config = r#"
[clusters.edge]
issuer = "https://oidc.example.com/edge"
kube_context = "edge"
[identities.web]
kind = "application"
display_name = "shop web"
[[service_accounts]]
cluster = "edge"
namespace = "orders"
name = "web"
identity = "web"
"#;
    let observed = Observed::default()
        .with_application(
            application("obj-web", "shop web", Mark::Mine, Some("web")),
            vec![app_credential(
                "edge-orders-web",
                "https://oidc.example.com/edge",
                "system:serviceaccount:orders:web",
            )],
        )
        .with_kube_at("edge", vec![namespace("orders", Mark::Mine)], Vec::new());
    let plan = plan_for(config, &observed);
    assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
    assert_eq!(
        plan.action("federated_credential.web/edge:orders/web"),
        Action::NoOp
    );
    let account = plan.get("service_account.edge/orders/web");
    assert_eq!(account.action, Action::Create);
    assert_eq!(
        account.field(&client_id_annotation()).after,
        known("app-obj-web")
    );
}

#[test]
fn an_identity_name_in_other_capitals_is_the_same_identity() {
    // ARM keeps the capitals an identity was created with; names compare without case.
    let api = LiveIdentity::from_arm(&json!({
        "id": identity_id(SUB, "RG-Id", "API"),
        "name": "API",
        "location": "westeurope",
        "tags": Mark::Mine.tags(&[]),
        "properties": {"tenantId": TENANT, "clientId": "client-api", "principalId": "principal-api"},
    }))
    .unwrap();
    let implied = credential(&api, CREDENTIAL_NAME, ISSUER, SUBJECT);
    let mut observed = in_sync();
    observed.azure.identities.clear();
    observed.azure.identity_credentials.clear();
    let observed = observed.with_identity(api, vec![implied]);
    let plan = plan_for(WORKLOAD, &observed);
    assert_eq!(
        plan.action(IDENTITY),
        Action::NoOp,
        "{:?}",
        plan.get(IDENTITY)
    );
}

// ---------------------------------------------------------------------------------------------
// Credentials are identified by what Azure keeps unique: (issuer, subject) on their identity

/// [`Kind::observed`], with the identity recording no credential (made by hand, then adopted).
fn recording_no_credential(kind: Kind, credentials: &[(&str, &str, &str, &str)]) -> Observed {
    let mut observed = kind.observed(credentials);
    let empty = crate::engine::records::CREDENTIALS_TAG.to_string();
    for identity in observed.azure.identities.values_mut() {
        identity.tags.insert(empty.clone(), String::new());
    }
    for app in observed.azure.applications.iter_mut() {
        app.tags.push(format!("{empty}:"));
    }
    observed
}

#[test]
fn a_credential_with_the_configs_issuer_and_subject_is_taken_over_under_its_own_name() {
    for kind in Kind::ALL {
        let observed = recording_no_credential(
            kind,
            &[("CatsApiFederatedIdentity", GITHUB, MAIN, DEFAULT_AUDIENCE)],
        );
        let plan = plan_for(kind.config(), &observed);
        assert!(plan.errors.is_empty(), "{kind:?}: {:#?}", plan.errors);
        let c = plan.get(GITHUB_CREDENTIAL);
        assert_eq!(c.action, Action::Adopt, "{kind:?}");
        assert!(
            c.reason().contains("exists as `CatsApiFederatedIdentity`"),
            "{}",
            c.reason()
        );
        // It keeps its name: nothing is created, nothing deleted.
        assert_eq!(c.field("name").after, known("CatsApiFederatedIdentity"));
        assert!(c.changed().is_empty(), "{:?}", c.changed());
        assert!(plan.deletes().is_empty(), "{:?}", plan.deletes());
        assert!(
            !plan.changes.iter().any(|c| c.resource_type
                == crate::kinds::Kind::FederatedCredential
                && c.action == Action::Create),
            "{:#?}",
            plan.actions()
        );
    }
}

#[test]
fn a_credential_taken_over_under_its_own_name_is_the_configs_from_then_on() {
    for kind in Kind::ALL {
        // The identity records it (as the apply that took it over wrote).
        let observed =
            kind.observed(&[("CatsApiFederatedIdentity", GITHUB, MAIN, DEFAULT_AUDIENCE)]);
        let plan = plan_for(kind.config(), &observed);
        plan.assert_in_sync();
        // Its audiences follow the config, in place and under its name.
        let observed = kind.observed(&[("CatsApiFederatedIdentity", GITHUB, MAIN, "api://other")]);
        let plan = plan_for(kind.config(), &observed);
        let c = plan.get(GITHUB_CREDENTIAL);
        assert_eq!(c.action, Action::Update, "{kind:?}");
        assert_eq!(c.changed(), ["audiences"]);
        assert_eq!(c.field("name").after, known("CatsApiFederatedIdentity"));
    }
}

#[test]
fn a_subject_that_another_credential_already_has_is_taken_over_not_created() {
    for kind in Kind::ALL {
        let old = "repo:contoso/shop:ref:refs/heads/develop";
        let observed = recording_no_credential(
            kind,
            &[
                ("github-main", GITHUB, old, DEFAULT_AUDIENCE),
                ("by-hand", GITHUB, MAIN, DEFAULT_AUDIENCE),
            ],
        );
        let plan = plan_for(kind.config(), &observed);
        let c = plan.get(GITHUB_CREDENTIAL);
        assert_eq!(c.action, Action::Adopt, "{kind:?}");
        assert_eq!(c.field("name").after, known("by-hand"));
        // The credential under the config's name, with the old subject, is the extra.
        assert_eq!(plan.deletes(), ["federated_credential.api/github-main"]);
    }
}

mod unique_keys {
    //! For any config and any live state made of the same names, issuers and subjects, the plan
    //! never creates a credential Azure would refuse (its issuer and subject already on the
    //! identity) nor pairs a create with a delete of the same issuer and subject.

    use super::*;
    use proptest::prelude::*;

    const ISSUERS: [&str; 2] = [GITHUB, "https://gitlab.example.com"];
    const SUBJECTS: [&str; 3] = ["repo:a:ref:main", "repo:b:ref:main", "project:c"];
    const NAMES: [&str; 3] = ["one", "two", "three"];

    /// A set of credentials with unique names and unique (issuer, subject).
    fn credentials() -> impl Strategy<Value = Vec<(usize, usize, usize)>> {
        proptest::collection::vec((0..3usize, 0..2usize, 0..3usize), 0..4).prop_map(|mut v| {
            let mut names = std::collections::BTreeSet::new();
            let mut keys = std::collections::BTreeSet::new();
            v.retain(|(n, i, s)| names.insert(*n) && keys.insert((*i, *s)));
            v
        })
    }

    fn config(wanted: &[(usize, usize, usize)]) -> String {
        let mut text = String::from("[identities.api]\nresource_group = \"rg-id\"\n");
        for (n, i, s) in wanted {
            text.push_str(&format!(
                "[[federations]]\nidentity = \"api\"\nname = \"{}\"\nissuer = \"{}\"\nsubject = \"{}\"\n",
                NAMES[*n], ISSUERS[*i], SUBJECTS[*s]
            ));
        }
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        #[test]
        fn plans_never_collide_on_issuer_and_subject(
            wanted in credentials(),
            live in credentials(),
            recorded in any::<bool>(),
        ) {
            let api = managed("api", "westeurope", Mark::Mine, &[]);
            let list: Vec<LiveCredential> = live
                .iter()
                .map(|(n, i, s)| credential(&api, NAMES[*n], ISSUERS[*i], SUBJECTS[*s]))
                .collect();
            let mut observed = Observed::default().with_identity(api, list.clone());
            if !recorded {
                for identity in observed.azure.identities.values_mut() {
                    identity
                        .tags
                        .insert(crate::engine::records::CREDENTIALS_TAG.into(), String::new());
                }
            }
            let plan = plan_for(&config(&wanted), &observed);
            prop_assert!(plan.errors.is_empty(), "{:#?}", plan.errors);
            let key = |c: &Change| {
                let value = |f: &str| c.fields.iter().find(|x| x.name == f).and_then(|x| {
                    match &x.after {
                        After::Known(v) => v.as_str().map(str::to_string),
                        _ => x.before.as_ref().and_then(|v| v.as_str().map(str::to_string)),
                    }
                });
                (value("issuer"), value("subject"))
            };
            let credentials: Vec<&Change> = plan
                .changes
                .iter()
                .filter(|c| c.resource_type == crate::kinds::Kind::FederatedCredential)
                .collect();
            for create in credentials.iter().filter(|c| c.action == Action::Create) {
                let (issuer, subject) = key(create);
                prop_assert!(
                    !list.iter().any(|l| Some(&l.issuer) == issuer.as_ref()
                        && Some(&l.subject) == subject.as_ref()),
                    "Azure would refuse {}: {:#?}", create.address, plan.actions()
                );
                prop_assert!(
                    !credentials.iter().any(|d| d.action == Action::Delete && key(d) == (issuer.clone(), subject.clone())),
                    "create and delete of one issuer and subject: {:#?}", plan.actions()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What AKS makes for its identity bindings is AKS's

#[test]
fn the_credential_aks_makes_for_identity_bindings_is_shown_never_pruned() {
    for kind in Kind::ALL {
        let observed = kind.observed(&[
            ("github-main", GITHUB, MAIN, DEFAULT_AUDIENCE),
            (
                "aks-identity-binding",
                "https://aks.example/tenant/client/",
                "system:serviceaccount:aks:binding",
                DEFAULT_AUDIENCE,
            ),
        ]);
        let plan = plan_for(kind.config(), &observed);
        assert!(plan.errors.is_empty(), "{kind:?}: {:#?}", plan.errors);
        assert!(plan.deletes().is_empty(), "{kind:?}: {:?}", plan.deletes());
        let binding = plan.get("federated_credential.api/aks-identity-binding");
        assert_eq!(binding.action, Action::Read);
        assert!(
            binding.reason().contains("managed by AKS"),
            "{}",
            binding.reason()
        );
        assert!(!plan.has_changes(), "{:#?}", plan.actions());
    }
}

#[test]
fn the_credential_aks_makes_counts_toward_the_limit() {
    let mut config = String::from(GITHUB_MANAGED);
    for i in 0..19 {
        config.push_str(&format!(
            "[[federations]]\nidentity = \"api\"\nname = \"extra-{i}\"\nissuer = \"{GITHUB}\"\nsubject = \"repo:contoso/shop:ref:refs/heads/b{i}\"\n"
        ));
    }
    let observed = Kind::Managed.observed(&[(
        "aks-identity-binding",
        "https://aks.example/tenant/client/",
        "system:serviceaccount:aks:binding",
        DEFAULT_AUDIENCE,
    )]);
    let plan = plan_for(&config, &observed);
    let error = plan.error_for(IDENTITY);
    assert!(
        error
            .message
            .contains("would have 21 federated credentials"),
        "{}",
        error.message
    );
    assert!(error.message.contains("aks-identity-binding"));
}

#[test]
fn tags_set_by_hand_before_adoption_stay_and_later_ones_follow_the_config() {
    // Adoption takes over what the config sets and leaves the other tags alone.
    let api = managed(
        "api",
        "westeurope",
        Mark::Unmarked,
        &[("owner", "team-cats")],
    );
    let plan = plan_for(
        "[identities.api]\nresource_group = \"rg-id\"\ntags = { team = \"shop\" }\n",
        &Observed::default().with_identity(api, Vec::new()),
    );
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.action, Action::Adopt);
    assert_eq!(identity.changed(), ["tags[\"team\"]"]);
    assert_eq!(identity.field("tags[\"owner\"]").after, known("team-cats"));
    assert_eq!(
        identity.reason(),
        "leaves alone the tags the config does not set: tags[\"owner\"]"
    );

    // Once the stack's, a tag recorded as there at adoption stays; one added later goes.
    let mut api = managed(
        "api",
        "westeurope",
        Mark::Mine,
        &[
            ("owner", "team-cats"),
            ("team", "shop"),
            ("later", "by-hand"),
        ],
    );
    api.tags.extend(crate::engine::records::unmanaged_tags(
        &[crate::engine::records::unmanaged_entry("tag:owner")]
            .into_iter()
            .collect(),
    ));
    let plan = plan_for(
        "[identities.api]\nresource_group = \"rg-id\"\ntags = { team = \"shop\" }\n",
        &Observed::default().with_identity(api, Vec::new()),
    );
    let identity = plan.get(IDENTITY);
    assert_eq!(identity.changed(), ["tags[\"later\"]"]);
    assert_eq!(identity.field("tags[\"later\"]").after, After::Removed);
}

#[test]
fn a_resource_groups_tags_set_by_hand_stay_when_it_is_adopted() {
    let observed = Observed::default().with_resource_group(resource_group(
        "rg-id",
        "westeurope",
        Mark::Unmarked,
        &[("cost-center", "42")],
    ));
    let plan = plan_for(GROUP, &observed);
    let rg = plan.get("resource_group.rg-id");
    assert_eq!(rg.action, Action::Adopt);
    assert_eq!(rg.changed(), ["tags[\"team\"]"]);
    assert_eq!(rg.field("tags[\"cost-center\"]").after, known("42"));
    assert_eq!(
        rg.reason(),
        "leaves alone the tags the config does not set: tags[\"cost-center\"]"
    );
}
