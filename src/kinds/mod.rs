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
mod context;
pub mod federated_credential;
pub mod managed_identity;
pub mod namespace;
pub mod resource_group;
pub mod role_assignment;
pub mod service_account;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use context::{
    ApplyCtx, Claim, Decision, Failure, Orphan, Out, Outputs, PlanCtx, PlanOutputs, computed,
    differs, field, gone, hash_of, kept_tags, kept_tags_record, map_fields, tag_entry,
    update_if_differs,
};

use crate::address::Address;
use crate::config::model::IdentityKind;
use crate::engine::drift::{Cause, Evidence};
use crate::engine::observe::Observed;
use crate::engine::plan::Change;
use crate::ownership::Owner;
use crate::providers::azure::AzureApi;
use crate::providers::azure::observe::ObserveScope;
use crate::providers::kube::ClusterApi;

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

    /// Who made a live object the config does not name, for kinds whose marker is not on the
    /// object itself; `None`: its own marker says.
    pub fn extra_evidence(
        self,
        evidence: &Evidence<'_>,
        change: &Change,
    ) -> Option<(Cause, Option<String>)> {
        match self {
            Kind::FederatedCredential => {
                Some(federated_credential::extra_evidence(evidence, change))
            }
            _ => None,
        }
    }

    /// The fields of a planned change that hold the outputs its dependents need: (client id,
    /// principal id, issuer URL).
    pub fn output_fields(
        self,
    ) -> (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    ) {
        match self {
            Kind::ManagedIdentity => managed_identity::OUTPUT_FIELDS,
            Kind::Application => application::OUTPUT_FIELDS,
            Kind::Cluster => aks_cluster::OUTPUT_FIELDS,
            _ => (None, None, None),
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

    /// Every record entry its identity may hold for it (today's form, and an older wiform's).
    pub fn recorded_as(&self) -> Vec<String> {
        match self {
            Resource::FederatedCredential(d) => d.recorded_as(),
            Resource::RoleAssignment(d) => vec![d.record_entry()],
            _ => Vec::new(),
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
