//! One module per kind of resource wiform manages. Each holds that kind's desired model (from
//! the config), names its live model (what its provider observes), its pure diff (desired ×
//! live → change with reasons), its apply steps (create, update, delete through a provider),
//! its drift evidence and its record entry. The engine walks the graph and calls into a kind
//! through one `match` per operation on [`Resource`] (or on [`Kind`] for objects the config no
//! longer names); what is common to all kinds (the walk, the flow of outputs, the order of
//! deletes, ownership) stays in the engine.
//!
//! How to add a kind: docs/architecture.md.

pub mod aks_cluster;
pub mod application;
pub mod federated_credential;
pub mod managed_identity;
pub mod namespace;
pub mod resource_group;
pub mod role_assignment;
pub mod service_account;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::address::Address;
use crate::config::model::IdentityKind;
use crate::engine::drift::{Cause, Evidence};
use crate::engine::observe::{ClusterFailure, Observed};
use crate::engine::plan::{Action, After, Change, FieldChange};
use crate::ownership::{self, Owner};
use crate::providers::azure::AzureApi;
use crate::providers::azure::observe::{Listing, ObserveScope};
use crate::providers::kube::{ClusterApi, ClusterObservation};

/// The kind of a resource, as the plan's `type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ResourceGroup,
    /// An AKS cluster's workload identity settings.
    Cluster,
    ManagedIdentity,
    /// An Entra app registration and its service principal.
    Application,
    FederatedCredential,
    RoleAssignment,
    Namespace,
    ServiceAccount,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ResourceGroup => "resource_group",
            Kind::Cluster => "cluster",
            Kind::ManagedIdentity => "managed_identity",
            Kind::Application => "application",
            Kind::FederatedCredential => "federated_credential",
            Kind::RoleAssignment => "role_assignment",
            Kind::Namespace => "namespace",
            Kind::ServiceAccount => "service_account",
        }
    }

    /// What the object is, in words (`wiform graph` labels nodes with it).
    pub fn noun(self) -> &'static str {
        match self {
            Kind::ResourceGroup => "resource group",
            Kind::Cluster => "AKS cluster settings",
            Kind::ManagedIdentity => "managed identity",
            Kind::Application => "app registration + service principal",
            Kind::FederatedCredential => "federated credential",
            Kind::RoleAssignment => "role assignment",
            Kind::Namespace => "namespace",
            Kind::ServiceAccount => "service account",
        }
    }

    /// An identity that workloads authenticate as.
    pub fn is_identity(self) -> bool {
        matches!(self, Kind::ManagedIdentity | Kind::Application)
    }

    /// Identities record the credentials and grants attached to them (`engine::records`).
    pub fn keeps_records(self) -> bool {
        self.is_identity()
    }

    /// The identity's record tag that lists objects of this kind.
    pub fn record_tag(self) -> Option<&'static str> {
        match self {
            Kind::FederatedCredential => Some(crate::engine::records::CREDENTIALS_TAG),
            Kind::RoleAssignment => Some(crate::engine::records::GRANTS_TAG),
            _ => None,
        }
    }

    /// Deletes the live object behind `ctx.change` (one the config no longer names).
    pub async fn delete<A: AzureApi, C: ClusterApi>(
        self,
        ctx: &ApplyCtx<'_, A, C>,
    ) -> Result<(), Failure> {
        match (self, &ctx.change.address) {
            (
                Kind::ServiceAccount,
                Address::ServiceAccount {
                    cluster,
                    namespace,
                    name,
                },
            ) => service_account::delete(cluster, namespace, name, ctx).await,
            (Kind::Namespace, Address::Namespace { cluster, .. }) => {
                namespace::delete(cluster, ctx).await
            }
            (Kind::RoleAssignment, _) => role_assignment::delete(ctx).await,
            (Kind::FederatedCredential, _) => federated_credential::delete(ctx).await,
            (Kind::ManagedIdentity, _) => managed_identity::delete(ctx).await,
            (Kind::Application, _) => application::delete(ctx).await,
            (kind, _) => Err(Failure::new(format!("wiform does not delete {kind}s"))),
        }
    }

    /// The live object behind `change` (its id `id`), as its marker and the hash of its managed
    /// fields now: drift compares the hash with the one the marker recorded.
    pub fn drift_live<'a>(
        self,
        observed: &'a Observed,
        change: &Change,
        id: &str,
    ) -> Option<(&'a Owner, String)> {
        match (self, &change.address) {
            (Kind::ResourceGroup, _) => resource_group::drift_live(observed, id),
            (Kind::ManagedIdentity, _) => managed_identity::drift_live(observed, id),
            (Kind::Application, _) => application::drift_live(observed, id),
            (Kind::RoleAssignment, _) => role_assignment::drift_live(observed, id),
            (Kind::ServiceAccount, Address::ServiceAccount { cluster, .. }) => {
                service_account::drift_live(observed.cluster(cluster)?, id)
            }
            (Kind::Namespace, Address::Namespace { cluster, .. }) => {
                namespace::drift_live(observed.cluster(cluster)?, id)
            }
            _ => None,
        }
    }

    /// Evidence that an object in the config that is gone had been applied (so someone deleted
    /// it), from the rest of the plan.
    pub fn deletion_evidence(self, evidence: &Evidence<'_>, change: &Change) -> Option<String> {
        match self {
            Kind::ManagedIdentity | Kind::Application => {
                managed_identity::deletion_evidence(evidence, change)
            }
            Kind::ServiceAccount => service_account::deletion_evidence(evidence, change),
            Kind::FederatedCredential => federated_credential::deletion_evidence(evidence, change),
            Kind::Namespace => namespace::deletion_evidence(evidence, change),
            Kind::ResourceGroup | Kind::Cluster | Kind::RoleAssignment => None,
        }
    }

    /// Who changed a live object that differs from the config, for kinds whose marker is not
    /// on the object itself; `None`: compare the object's own marker.
    pub fn change_evidence(
        self,
        evidence: &Evidence<'_>,
        change: &Change,
    ) -> Option<(Cause, Option<String>)> {
        match self {
            Kind::Cluster => Some(aks_cluster::change_evidence(evidence, change)),
            Kind::FederatedCredential => {
                Some(federated_credential::change_evidence(evidence, change))
            }
            Kind::ServiceAccount => service_account::change_evidence(evidence, change),
            _ => None,
        }
    }

    /// How to take an object added by hand into the config.
    pub fn adopt_fix(self) -> &'static str {
        match self {
            Kind::RoleAssignment => {
                "adopt it into the config (a [[role_grants]] entry), or let `wiform apply` remove it"
            }
            _ => {
                "adopt it into the config (a [[federations]] entry or a service account), or let `wiform apply` remove it"
            }
        }
    }
}

impl std::str::FromStr for Kind {
    type Err = serde_json::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(Value::String(text.to_string()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<str> for Kind {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Kind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// In JSON schemas a kind is a plain string, as it always was (`schemas/plan.schema.json`).
impl schemars::JsonSchema for Kind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

/// What the config says once for every resource: each kind's desired model is built from its
/// own table of identity.toml and these.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDefaults<'a> {
    /// `[azure].subscription_id`.
    pub subscription: &'a str,
    /// `[azure].tenant_id`.
    pub tenant: &'a str,
    /// `[azure].location`.
    pub location: Option<&'a str>,
}

impl ConfigDefaults<'_> {
    /// `location` if the table sets it, else `[azure].location`.
    pub fn location(&self, location: Option<&crate::config::model::Sp<String>>) -> String {
        location
            .map(|l| l.value.as_str())
            .or(self.location)
            .unwrap_or_default()
            .to_string()
    }
}

/// A config map (`tags`, `annotations`, `labels`) as plain strings.
pub fn string_map(map: &crate::config::model::StringMap) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.value.clone(), v.value.clone()))
        .collect()
}

/// The desired state of one resource, with every default resolved: a graph node's payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    ResourceGroup(resource_group::Desired),
    Cluster(aks_cluster::Desired),
    ManagedIdentity(managed_identity::Desired),
    Application(application::Desired),
    FederatedCredential(federated_credential::Desired),
    RoleAssignment(role_assignment::Desired),
    Namespace(namespace::Desired),
    ServiceAccount(service_account::Desired),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::ResourceGroup(_) => Kind::ResourceGroup,
            Resource::Cluster(_) => Kind::Cluster,
            Resource::ManagedIdentity(_) => Kind::ManagedIdentity,
            Resource::Application(_) => Kind::Application,
            Resource::FederatedCredential(_) => Kind::FederatedCredential,
            Resource::RoleAssignment(_) => Kind::RoleAssignment,
            Resource::Namespace(_) => Kind::Namespace,
            Resource::ServiceAccount(_) => Kind::ServiceAccount,
        }
    }

    /// Where the object lives.
    pub fn plane(&self) -> Plane {
        match self {
            Resource::Application(_) => Plane::Graph,
            Resource::FederatedCredential(c) if c.identity_kind == IdentityKind::Application => {
                Plane::Graph
            }
            Resource::Namespace(_) | Resource::ServiceAccount(_) => Plane::Kubernetes,
            _ => Plane::Arm,
        }
    }

    /// The Kubernetes namespace the object is, or is in.
    pub fn kube_namespace(&self) -> Option<&str> {
        match self {
            Resource::Namespace(n) => Some(&n.name),
            Resource::ServiceAccount(a) => Some(&a.namespace),
            _ => None,
        }
    }

    /// Adds what must be read of Azure to plan this resource. Federated credentials are read
    /// with their identity, Kubernetes objects per cluster.
    pub fn observe_scope(&self, scope: &mut ObserveScope) {
        match self {
            Resource::ResourceGroup(d) => resource_group::observe_scope(d, scope),
            Resource::Cluster(d) => aks_cluster::observe_scope(d, scope),
            Resource::ManagedIdentity(d) => managed_identity::observe_scope(d, scope),
            Resource::Application(d) => application::observe_scope(d, scope),
            Resource::RoleAssignment(d) => role_assignment::observe_scope(d, scope),
            Resource::FederatedCredential(_)
            | Resource::Namespace(_)
            | Resource::ServiceAccount(_) => {}
        }
    }

    /// The kind's diff: decides the change (in `ctx`) and gives the outputs dependents need.
    pub fn plan(&self, ctx: &mut PlanCtx<'_>) -> PlanOutputs {
        let none = PlanOutputs::missing;
        match self {
            Resource::ResourceGroup(d) => {
                resource_group::plan(d, ctx);
                none()
            }
            Resource::Cluster(d) => aks_cluster::plan(d, ctx),
            Resource::ManagedIdentity(d) => managed_identity::plan(d, ctx),
            Resource::Application(d) => application::plan(d, ctx),
            Resource::FederatedCredential(d) => {
                federated_credential::plan(d, ctx);
                none()
            }
            Resource::RoleAssignment(d) => {
                role_assignment::plan(d, ctx);
                none()
            }
            Resource::Namespace(d) => {
                namespace::plan(d, ctx);
                none()
            }
            Resource::ServiceAccount(d) => {
                service_account::plan(d, ctx);
                none()
            }
        }
    }

    /// Carries out the planned change (`ctx.change`); the outputs it learned, if any.
    pub async fn apply<A: AzureApi, C: ClusterApi>(
        &self,
        ctx: &ApplyCtx<'_, A, C>,
    ) -> Result<Option<Outputs>, Failure> {
        let none = |()| None;
        match self {
            Resource::ResourceGroup(d) => resource_group::apply(d, ctx).await.map(none),
            Resource::Cluster(_) => aks_cluster::apply(ctx).await,
            Resource::ManagedIdentity(d) => managed_identity::apply(d, ctx).await,
            Resource::Application(d) => application::apply(d, ctx).await,
            Resource::FederatedCredential(d) => federated_credential::apply(d, ctx).await.map(none),
            Resource::RoleAssignment(d) => role_assignment::apply(d, ctx).await.map(none),
            Resource::Namespace(d) => namespace::apply(d, ctx).await.map(none),
            Resource::ServiceAccount(d) => service_account::apply(d, ctx).await.map(none),
        }
    }

    /// What the parent identity records of this object: the record tag and the entry
    /// (`engine::records`).
    pub fn record_entry(&self) -> Option<(&'static str, String)> {
        let tag = self.kind().record_tag()?;
        match self {
            Resource::FederatedCredential(d) => Some((tag, d.record_entry())),
            Resource::RoleAssignment(d) => Some((tag, d.record_entry())),
            _ => None,
        }
    }

    /// Dependents may start before this change ends (they need only outputs the plan knew).
    pub fn releases_dependents_early(&self, change: &Change) -> bool {
        matches!(self, Resource::Cluster(_)) && aks_cluster::releases_dependents_early(change)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Plane {
    Arm,
    Graph,
    Kubernetes,
}

/// What a dependent needs from its dependency (the label of a graph edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// Only that it exists (a resource group before its identity, a namespace before its
    /// service account, an identity before its federated credentials).
    Exists,
    /// The cluster's OIDC issuer URL.
    IssuerUrl,
    /// The identity's client id (managed identity `clientId`, application `appId`).
    ClientId,
    /// The identity's service principal object id, used by role assignments.
    PrincipalId,
    /// The application's object id, which addresses its federated credentials in Graph.
    ObjectId,
}

impl Output {
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Exists => "exists",
            Output::IssuerUrl => "issuer_url",
            Output::ClientId => "client_id",
            Output::PrincipalId => "principal_id",
            Output::ObjectId => "object_id",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Planning

/// An output of a planned resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Known(String),
    /// Known once apply has made the resource.
    Unknown,
    /// Cannot be known: the resource could not be planned (an error says why).
    Missing,
}

impl Out {
    pub fn after(&self) -> After {
        match self {
            Out::Known(v) => After::Known(json!(v)),
            Out::Unknown | Out::Missing => After::Unknown,
        }
    }

    pub fn known(&self) -> Option<&str> {
        match self {
            Out::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// What a planned resource gives its dependents.
#[derive(Debug, Clone)]
pub struct PlanOutputs {
    pub client_id: Out,
    pub principal_id: Out,
    pub issuer_url: Out,
    /// Managed identity: its live key (lower-case ARM id). Application: its object id.
    pub live_key: Option<String>,
}

impl PlanOutputs {
    pub fn missing() -> Self {
        PlanOutputs {
            client_id: Out::Missing,
            principal_id: Out::Missing,
            issuer_url: Out::Missing,
            live_key: None,
        }
    }
}

/// A live object the config matched: not an extra to prune.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    /// A managed identity, by its key.
    Identity(String),
    /// A federated credential, by its lower-case id.
    Credential(String),
    /// A role assignment, by its lower-case id.
    Assignment(String),
    /// An application, by its object id.
    Application(String),
    /// (cluster, name)
    Namespace(String, String),
    /// (cluster, namespace, name)
    ServiceAccount(String, String, String),
    /// (principal, normalised scope) of a grant whose role could not be resolved: which live
    /// assignment is its is unknown, so none there is pruned.
    UnresolvedGrant(String, String),
}

/// A change a kind decided on (the engine adds the address, kind and dependencies).
#[derive(Debug, Clone)]
pub struct Decision {
    pub action: Action,
    pub reason: Option<String>,
    /// The live object's id.
    pub live_id: Option<String>,
    pub fields: Vec<FieldChange>,
    /// The hash of the live object (or "absent"), for the plan's fingerprint.
    pub live_hash: String,
}

/// What a kind's planner sees (the observation, the outputs of what it depends on) and where it
/// puts what it finds. Pure data: planning does no IO.
pub struct PlanCtx<'a> {
    pub stack: &'a str,
    pub observed: &'a Observed,
    /// Lists that failed: nothing is planned on missing knowledge.
    pub failed: &'a BTreeSet<Listing>,
    /// For Kubernetes objects: the key of their cluster in the config.
    pub cluster: Option<&'a str>,
    /// The outputs of the resources this one depends on, by what they give it.
    pub inputs: Vec<(Output, &'a PlanOutputs)>,
    /// For identities: the records of their credentials and grants (`engine::records`).
    pub records: BTreeMap<String, String>,
    pub decision: Option<Decision>,
    pub errors: Vec<(String, Option<String>)>,
    pub claims: Vec<Claim>,
}

impl<'a> PlanCtx<'a> {
    /// The outputs of the dependency that provides `output`.
    pub fn input(&self, output: Output) -> Option<&'a PlanOutputs> {
        self.inputs
            .iter()
            .find(|(what, _)| *what == output)
            .map(|(_, o)| *o)
    }

    pub fn failed(&self, listing: &Listing) -> bool {
        self.failed.contains(listing)
    }

    pub fn decide(
        &mut self,
        action: Action,
        reason: Option<String>,
        live_id: Option<String>,
        fields: Vec<FieldChange>,
        live_hash: String,
    ) {
        self.decision = Some(Decision {
            action,
            reason,
            live_id,
            fields,
            live_hash,
        });
    }

    pub fn error(&mut self, message: String, hint: Option<String>) {
        self.errors.push((message, hint));
    }

    pub fn claim(&mut self, claim: Claim) {
        self.claims.push(claim);
    }

    /// The observation of this object's cluster, when it could be made.
    pub fn cluster_observation(&self) -> Option<&'a ClusterObservation> {
        self.observed.cluster(self.cluster?)
    }

    /// Another stack's object is an error naming it and the way out; `None` then.
    pub fn ownership(
        &mut self,
        owner: &Owner,
        what: impl FnOnce() -> String,
        hint: Option<&str>,
    ) -> Option<bool> {
        if owner.is_stack(self.stack) {
            Some(true)
        } else if *owner == Owner::Unowned {
            Some(false)
        } else {
            self.error(
                format!("{} belongs to {}", what(), owner.describe()),
                hint.map(str::to_string),
            );
            None
        }
    }
}

/// A delete of a live object the config does not name (the engine decides which).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub address: Address,
    pub kind: Kind,
    /// Beyond "not in config", which the change's `not_in_config` says.
    pub reason: Option<&'static str>,
    pub live_id: String,
    pub fields: Vec<FieldChange>,
    pub live_hash: String,
}

impl Orphan {
    pub fn into_change(self) -> Change {
        Change {
            address: self.address,
            resource_type: self.kind,
            action: Action::Delete,
            reason: self.reason.map(str::to_string),
            id: Some(self.live_id),
            fields: self.fields,
            not_in_config: true,
            depends_on: Vec::new(),
        }
    }
}

pub fn hash_of<T: Serialize>(live: Option<&T>) -> String {
    live.map_or_else(|| "absent".to_string(), |l| ownership::spec_hash(l))
}

pub fn field(name: &str, before: Option<Value>, after: After) -> FieldChange {
    FieldChange {
        name: name.to_string(),
        before,
        after,
        computed: false,
    }
}

/// A field Azure fills in (an id): shown, never a cause for change.
pub fn computed(name: &str, before: Option<&str>, after: After) -> FieldChange {
    FieldChange {
        name: name.to_string(),
        before: before.map(|b| json!(b)),
        after,
        computed: true,
    }
}

/// A field of an object that goes away.
pub fn gone(name: &str, value: Value) -> FieldChange {
    field(name, Some(value), After::Removed)
}

/// One field per map key (`tags["team"]`), so that each key shows its own change; keys only
/// in `before` are removed.
pub fn map_fields(
    prefix: &str,
    before: Option<&BTreeMap<String, String>>,
    after: &BTreeMap<String, String>,
) -> Vec<FieldChange> {
    let mut keys: BTreeSet<&String> = after.keys().collect();
    if let Some(before) = before {
        keys.extend(before.keys());
    }
    keys.into_iter()
        .map(|k| {
            let name = format!("{prefix}[{k:?}]");
            let old = before.and_then(|b| b.get(k)).map(|v| json!(v));
            match after.get(k) {
                Some(v) => field(&name, old, After::Known(json!(v))),
                None => field(&name, old, After::Removed),
            }
        })
        .collect()
}

pub fn differs(fields: &[FieldChange]) -> bool {
    fields.iter().any(FieldChange::is_changed)
}

/// Update when a field differs, else nothing to do: for objects the stack owns.
pub fn update_if_differs(fields: &[FieldChange]) -> Action {
    if differs(fields) {
        Action::Update
    } else {
        Action::NoOp
    }
}

// ---------------------------------------------------------------------------------------------
// Applying

/// The outputs of a resource, as apply learns them (from the plan for objects that exist, from
/// the provider's answer for objects made now).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub client_id: Option<String>,
    pub principal_id: Option<String>,
    pub issuer_url: Option<String>,
    /// Managed identity: its ARM id. Application: its object id.
    pub id: Option<String>,
}

impl Outputs {
    /// The outputs a planned change already knows (objects that exist): the kind's computed
    /// fields and the live id.
    pub fn planned(change: &Change) -> Self {
        let known = |field: &str| {
            change
                .fields
                .iter()
                .find(|f| f.name == field)
                .and_then(|f| match &f.after {
                    After::Known(Value::String(s)) => Some(s.clone()),
                    _ => None,
                })
        };
        let (client_id, principal_id, issuer_url) = match change.resource_type {
            Kind::ManagedIdentity => managed_identity::OUTPUT_FIELDS,
            Kind::Application => application::OUTPUT_FIELDS,
            Kind::Cluster => aks_cluster::OUTPUT_FIELDS,
            _ => (None, None, None),
        };
        Outputs {
            client_id: client_id.and_then(known),
            principal_id: principal_id.and_then(known),
            issuer_url: issuer_url.and_then(known),
            id: change.id.clone(),
        }
    }

    /// Takes every output `from` knows.
    pub fn merge(&mut self, from: Outputs) {
        if from.client_id.is_some() {
            self.client_id = from.client_id;
        }
        if from.principal_id.is_some() {
            self.principal_id = from.principal_id;
        }
        if from.issuer_url.is_some() {
            self.issuer_url = from.issuer_url;
        }
        if from.id.is_some() {
            self.id = from.id;
        }
    }
}

/// Why a change could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hint: None,
        }
    }
}

/// From either provider's error (`?` on an Azure or Kubernetes call).
impl<E: crate::error::Explain> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.message(),
            hint: e.hint(),
        }
    }
}

/// What a kind's apply step works with: the providers, the observation the plan was made from,
/// the change, and the outputs of what it depends on.
pub struct ApplyCtx<'a, A, C> {
    pub stack: &'a str,
    pub azure: &'a A,
    pub observed: &'a Observed,
    pub clusters: &'a BTreeMap<String, Result<C, ClusterFailure>>,
    pub change: &'a Change,
    /// For Kubernetes objects: the key of their cluster in the config.
    pub cluster: Option<&'a str>,
    pub inputs: Vec<(Output, Outputs)>,
    /// For identities: the records of their credentials and grants.
    pub records: BTreeMap<String, String>,
}

impl<A: AzureApi, C: ClusterApi> ApplyCtx<'_, A, C> {
    /// The outputs of the dependency that provides `output`.
    pub fn input(&self, output: Output) -> Option<&Outputs> {
        self.inputs
            .iter()
            .find(|(what, _)| *what == output)
            .map(|(_, o)| o)
    }

    /// The connected cluster `key`.
    pub fn cluster_api(&self, key: Option<&str>) -> Result<&C, Failure> {
        let key = key.ok_or_else(|| Failure::new("no cluster"))?;
        match self.clusters.get(key) {
            Some(Ok(cluster)) => Ok(cluster),
            Some(Err(f)) => Err(Failure {
                message: f.message.clone(),
                hint: f.hint.clone(),
            }),
            None => Err(Failure::new(format!("cluster `{key}` is not connected"))),
        }
    }

    /// The observation of cluster `key`, for deletes (they need the live object).
    pub fn cluster_observation(&self, key: &str) -> Result<&ClusterObservation, Failure> {
        self.observed
            .cluster(key)
            .ok_or_else(|| Failure::new("the cluster was not observed"))
    }

    /// The live id of the object to delete.
    pub fn live_id(&self) -> Result<&str, Failure> {
        self.change
            .id
            .as_deref()
            .ok_or_else(|| Failure::new("the object's id is not known"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_as_their_names() {
        for kind in [
            Kind::ResourceGroup,
            Kind::Cluster,
            Kind::ManagedIdentity,
            Kind::Application,
            Kind::FederatedCredential,
            Kind::RoleAssignment,
            Kind::Namespace,
            Kind::ServiceAccount,
        ] {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            assert_eq!(serde_json::from_value::<Kind>(json).unwrap(), kind);
        }
    }
}
