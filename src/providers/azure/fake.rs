//! An in-memory [`AzureApi`] for the engine's unit tests: it answers every write at once with a
//! plausible live object (ids made up from the names), records the writes in the order they
//! were made, and fails the ones a test asks it to fail.

use std::collections::BTreeSet;
use std::sync::Mutex;

use super::applications::{
    DesiredApplication, DesiredApplicationCredential, LiveApplication, Upserted,
};
use super::clusters::LiveCluster;
use super::federated::{CredentialParent, LiveCredential};
use super::identities::{
    DesiredIdentity, DesiredIdentityCredential, DesiredResourceGroup, LiveIdentity,
    LiveResourceGroup,
};
use super::observe::{AzureObservation, ObserveScope};
use super::roles::{
    DesiredRoleAssignment, LiveRoleAssignment, PutOutcome, RoleDefinition, RoleRef,
};
use super::{ApiFailure, AzureApi, AzureError};
use crate::ownership::{self, Owner};
use crate::providers::Deletion;

#[derive(Debug, Default)]
pub struct FakeAzure {
    /// What `observe` answers.
    pub observation: AzureObservation,
    /// Every write, as `"verb what"`, in the order they were made.
    calls: Mutex<Vec<String>>,
    /// Writes (as recorded in `calls`) that answer 403 AuthorizationFailed.
    failing: Mutex<BTreeSet<String>>,
}

impl FakeAzure {
    pub fn new(observation: AzureObservation) -> Self {
        FakeAzure {
            observation,
            ..FakeAzure::default()
        }
    }

    /// Makes the write recorded as `call` fail.
    pub fn fail(&self, call: &str) {
        self.failing.lock().unwrap().insert(call.to_string());
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) -> Result<(), AzureError> {
        self.calls.lock().unwrap().push(call.clone());
        if self.failing.lock().unwrap().contains(&call) {
            return Err(AzureError::api(
                call,
                ApiFailure {
                    status: 403,
                    code: "AuthorizationFailed".into(),
                    message: "the fake refuses this write".into(),
                    target: None,
                    details: Vec::new(),
                    request_id: Some("fake-request".into()),
                },
            ));
        }
        Ok(())
    }
}

/// The client id the fake gives identity `name`.
pub fn client_id_of(name: &str) -> String {
    format!("client-{name}")
}

/// The principal id the fake gives identity `name`.
pub fn principal_id_of(name: &str) -> String {
    format!("principal-{name}")
}

impl AzureApi for FakeAzure {
    async fn observe(&self, _stack: &str, _scope: &ObserveScope) -> AzureObservation {
        self.observation.clone()
    }

    async fn put_resource_group(
        &self,
        desired: &DesiredResourceGroup,
    ) -> Result<LiveResourceGroup, AzureError> {
        self.record(format!("put_resource_group {}", desired.name))?;
        Ok(LiveResourceGroup {
            id: desired.id(),
            subscription_id: desired.subscription_id.clone(),
            name: desired.name.clone(),
            location: desired.location.clone(),
            tags: desired.tags_with_markers(),
            owner: Owner::Stack(ownership::Marker {
                stack: desired.stack.clone(),
                spec_hash: Some(desired.spec_hash()),
            }),
            provisioning_state: "Succeeded".into(),
        })
    }

    async fn enable_workload_identity(
        &self,
        live: &LiveCluster,
    ) -> Result<LiveCluster, AzureError> {
        self.record(format!("enable_workload_identity {}", live.name))?;
        Ok(LiveCluster {
            oidc_issuer_enabled: true,
            workload_identity_enabled: true,
            issuer_url: Some(
                live.issuer_url
                    .clone()
                    .unwrap_or_else(|| format!("https://issuer.example/{}/", live.name)),
            ),
            ..live.clone()
        })
    }

    async fn put_identity(&self, desired: &DesiredIdentity) -> Result<LiveIdentity, AzureError> {
        self.record(format!("put_identity {}", desired.name))?;
        Ok(LiveIdentity {
            id: desired.id(),
            subscription_id: desired.subscription_id.clone(),
            resource_group: desired.resource_group.clone(),
            name: desired.name.clone(),
            location: desired.location.clone(),
            tags: desired.tags_with_markers(),
            owner: Owner::Stack(ownership::Marker {
                stack: desired.stack.clone(),
                spec_hash: Some(desired.spec_hash()),
            }),
            client_id: client_id_of(&desired.name),
            principal_id: principal_id_of(&desired.name),
            tenant_id: "tenant".into(),
        })
    }

    async fn delete_identity(
        &self,
        _stack: &str,
        live: &LiveIdentity,
    ) -> Result<Deletion, AzureError> {
        self.record(format!("delete_identity {}", live.name))?;
        Ok(Deletion::Deleted)
    }

    async fn put_application(
        &self,
        desired: &DesiredApplication,
        _current: Option<&LiveApplication>,
    ) -> Result<LiveApplication, AzureError> {
        self.record(format!("put_application {}", desired.display_name))?;
        Ok(LiveApplication {
            object_id: format!("object-{}", desired.key),
            app_id: client_id_of(&desired.key),
            display_name: desired.display_name.clone(),
            unique_name: Some(desired.unique_name()),
            tags: desired.tags(),
            owner: Owner::Stack(ownership::Marker {
                stack: desired.stack.clone(),
                spec_hash: Some(desired.spec_hash()),
            }),
            service_principal_id: Some(principal_id_of(&desired.key)),
        })
    }

    async fn delete_application(
        &self,
        _stack: &str,
        live: &LiveApplication,
    ) -> Result<Deletion, AzureError> {
        self.record(format!("delete_application {}", live.display_name))?;
        Ok(Deletion::Deleted)
    }

    async fn put_identity_credential(
        &self,
        identity_id: &str,
        desired: &DesiredIdentityCredential,
    ) -> Result<LiveCredential, AzureError> {
        self.record(format!(
            "put_identity_credential {} issuer={} subject={}",
            desired.name, desired.issuer, desired.subject
        ))?;
        Ok(LiveCredential {
            parent: CredentialParent::ManagedIdentity(identity_id.to_string()),
            id: format!(
                "{identity_id}/federatedIdentityCredentials/{}",
                desired.name
            ),
            name: desired.name.clone(),
            issuer: desired.issuer.clone(),
            subject: desired.subject.clone(),
            audiences: desired.audiences.clone(),
            description: None,
        })
    }

    async fn delete_identity_credential(
        &self,
        _identity_id: &str,
        name: &str,
    ) -> Result<Deletion, AzureError> {
        self.record(format!("delete_identity_credential {name}"))?;
        Ok(Deletion::Deleted)
    }

    async fn put_application_credential(
        &self,
        object_id: &str,
        desired: &DesiredApplicationCredential,
    ) -> Result<Upserted, AzureError> {
        self.record(format!(
            "put_application_credential {object_id} {} description={}",
            desired.name,
            desired.description.as_deref().unwrap_or("-")
        ))?;
        Ok(Upserted::Created)
    }

    async fn delete_application_credential(
        &self,
        object_id: &str,
        name_or_id: &str,
    ) -> Result<Deletion, AzureError> {
        self.record(format!(
            "delete_application_credential {object_id} {name_or_id}"
        ))?;
        Ok(Deletion::Deleted)
    }

    async fn resolve_role(
        &self,
        scope: &str,
        role: &RoleRef,
    ) -> Result<RoleDefinition, AzureError> {
        let guid = match role {
            RoleRef::Builtin { id, .. } | RoleRef::Id { id } => id.clone(),
            RoleRef::Name { name } => format!("guid-{name}"),
        };
        Ok(RoleDefinition {
            id: super::roles::definition_id_at(scope, &guid),
            guid,
            role_name: role.display().to_string(),
            builtin: matches!(role, RoleRef::Builtin { .. }),
        })
    }

    async fn put_role_assignment(
        &self,
        desired: &DesiredRoleAssignment,
    ) -> Result<PutOutcome, AzureError> {
        self.record(format!(
            "put_role_assignment principal={} scope={}",
            desired.principal_id, desired.scope
        ))?;
        Ok(PutOutcome::Created(LiveRoleAssignment {
            id: format!(
                "{}/providers/microsoft.authorization/roleassignments/{}",
                desired.scope,
                desired.name()
            ),
            name: desired.name(),
            scope: desired.scope.clone(),
            role_definition_id: desired.role_definition_id.clone(),
            role_definition_guid: desired.role_definition_guid(),
            principal_id: desired.principal_id.clone(),
            principal_type: Some("ServicePrincipal".into()),
            description: Some(desired.description()),
            condition: desired.condition.clone(),
            owner: Owner::Unowned,
        }))
    }

    async fn delete_role_assignment(
        &self,
        _stack: &str,
        live: &LiveRoleAssignment,
        _extra: bool,
    ) -> Result<Deletion, AzureError> {
        self.record(format!("delete_role_assignment {}", live.name))?;
        Ok(Deletion::Deleted)
    }
}
