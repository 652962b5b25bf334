//! The Azure provider: ARM (resource groups, managed identities and their federated
//! credentials, role definitions and assignments, AKS clusters) and Microsoft Graph
//! (applications, service principals, their federated credentials).
//!
//! [`client`] is the one HTTP client (auth, pacing, retries, paging, long-running operations,
//! typed errors); each resource module builds requests with it and turns answers into typed
//! observed state. Reads are list calls per scope; writes are idempotent (PUT by name, upserts,
//! deterministic role assignment names) so that a re-run after a crash converges.

pub mod applications;
pub mod client;
pub mod cloud;
pub mod clusters;
pub mod credential;
pub mod error;
pub mod exchange;
#[cfg(test)]
pub mod fake;
pub mod federated;
pub mod identities;
pub mod observe;
pub mod provider_limits;
pub mod ratelimit;
pub mod roles;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use client::{AzureClient, ClientOptions, Event, EventSink, RetryPolicy, Stats};
pub use cloud::Endpoints;
pub use error::{ApiFailure, AzureError, AzureErrorKind};

use crate::providers::Deletion;

/// One async mutex per key: federated credential writes on one identity take its lock, because
/// the Managed Identity provider refuses overlapping writes with 409
/// `ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity` (FIC considerations
/// doc).
#[derive(Debug, Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    /// Waits for and holds the lock of `key` (compared without regard to case, like ARM ids)
    /// until the guard is dropped.
    pub async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key.to_ascii_lowercase()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// wiform's Azure provider: the client plus the state shared across calls (per-identity write
/// locks, caches).
#[derive(Debug)]
pub struct AzureProvider {
    pub client: AzureClient,
    /// The tenant the config names.
    pub tenant_id: String,
    pub fic_locks: KeyedLocks,
    /// Role definitions read per scope (custom roles by name or GUID).
    pub role_definitions: roles::DefinitionCache,
}

impl AzureProvider {
    pub fn new(client: AzureClient, tenant_id: impl Into<String>) -> Self {
        AzureProvider {
            client,
            tenant_id: tenant_id.into(),
            fic_locks: KeyedLocks::default(),
            role_definitions: roles::DefinitionCache::default(),
        }
    }
}

/// What the engine asks of Azure: one observation of a stack, then the writes apply makes.
/// [`AzureProvider`] does it over HTTP; the engine's unit tests use an in-memory fake. Every
/// write is idempotent (a re-run after a crash converges).
pub trait AzureApi {
    /// Everything Azure holds for `stack` within `scope`, with list calls (never one GET per
    /// object); lists that fail are recorded in the observation's errors.
    fn observe(
        &self,
        stack: &str,
        scope: &observe::ObserveScope,
    ) -> impl Future<Output = observe::AzureObservation> + Send;

    fn put_resource_group(
        &self,
        desired: &identities::DesiredResourceGroup,
    ) -> impl Future<Output = Result<identities::LiveResourceGroup, AzureError>> + Send;

    /// Turns on the OIDC issuer and workload identity (a long-running update).
    fn enable_workload_identity(
        &self,
        live: &clusters::LiveCluster,
    ) -> impl Future<Output = Result<clusters::LiveCluster, AzureError>> + Send;

    fn put_identity(
        &self,
        desired: &identities::DesiredIdentity,
    ) -> impl Future<Output = Result<identities::LiveIdentity, AzureError>> + Send;

    /// Refused without a request unless the identity carries `stack`'s marker.
    fn delete_identity(
        &self,
        stack: &str,
        live: &identities::LiveIdentity,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send;

    /// Creates the application and its service principal, or updates `current`.
    fn put_application(
        &self,
        desired: &applications::DesiredApplication,
        current: Option<&applications::LiveApplication>,
    ) -> impl Future<Output = Result<applications::LiveApplication, AzureError>> + Send;

    fn delete_application(
        &self,
        stack: &str,
        live: &applications::LiveApplication,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send;

    fn put_identity_credential(
        &self,
        identity_id: &str,
        desired: &identities::DesiredIdentityCredential,
    ) -> impl Future<Output = Result<federated::LiveCredential, AzureError>> + Send;

    fn delete_identity_credential(
        &self,
        identity_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send;

    fn put_application_credential(
        &self,
        object_id: &str,
        desired: &applications::DesiredApplicationCredential,
    ) -> impl Future<Output = Result<applications::Upserted, AzureError>> + Send;

    fn delete_application_credential(
        &self,
        object_id: &str,
        name_or_id: &str,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send;

    /// The definition of `role` at `scope` (built-in roles need no request).
    fn resolve_role(
        &self,
        scope: &str,
        role: &roles::RoleRef,
    ) -> impl Future<Output = Result<roles::RoleDefinition, AzureError>> + Send;

    fn put_role_assignment(
        &self,
        desired: &roles::DesiredRoleAssignment,
    ) -> impl Future<Output = Result<roles::PutOutcome, AzureError>> + Send;

    /// `extra`: an assignment without a marker on an identity the stack owns may go too.
    fn delete_role_assignment(
        &self,
        stack: &str,
        live: &roles::LiveRoleAssignment,
        extra: bool,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send;
}

impl AzureApi for AzureProvider {
    fn observe(
        &self,
        stack: &str,
        scope: &observe::ObserveScope,
    ) -> impl Future<Output = observe::AzureObservation> + Send {
        AzureProvider::observe(self, stack, scope)
    }

    fn put_resource_group(
        &self,
        desired: &identities::DesiredResourceGroup,
    ) -> impl Future<Output = Result<identities::LiveResourceGroup, AzureError>> + Send {
        AzureProvider::put_resource_group(self, desired)
    }

    fn enable_workload_identity(
        &self,
        live: &clusters::LiveCluster,
    ) -> impl Future<Output = Result<clusters::LiveCluster, AzureError>> + Send {
        AzureProvider::enable_workload_identity(self, live)
    }

    fn put_identity(
        &self,
        desired: &identities::DesiredIdentity,
    ) -> impl Future<Output = Result<identities::LiveIdentity, AzureError>> + Send {
        AzureProvider::put_identity(self, desired)
    }

    fn delete_identity(
        &self,
        stack: &str,
        live: &identities::LiveIdentity,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send {
        AzureProvider::delete_identity(self, stack, live)
    }

    fn put_application(
        &self,
        desired: &applications::DesiredApplication,
        current: Option<&applications::LiveApplication>,
    ) -> impl Future<Output = Result<applications::LiveApplication, AzureError>> + Send {
        AzureProvider::put_application(self, desired, current)
    }

    fn delete_application(
        &self,
        stack: &str,
        live: &applications::LiveApplication,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send {
        AzureProvider::delete_application(self, stack, live)
    }

    fn put_identity_credential(
        &self,
        identity_id: &str,
        desired: &identities::DesiredIdentityCredential,
    ) -> impl Future<Output = Result<federated::LiveCredential, AzureError>> + Send {
        AzureProvider::put_identity_credential(self, identity_id, desired)
    }

    fn delete_identity_credential(
        &self,
        identity_id: &str,
        name: &str,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send {
        AzureProvider::delete_identity_credential(self, identity_id, name)
    }

    fn put_application_credential(
        &self,
        object_id: &str,
        desired: &applications::DesiredApplicationCredential,
    ) -> impl Future<Output = Result<applications::Upserted, AzureError>> + Send {
        AzureProvider::put_application_credential(self, object_id, desired)
    }

    fn delete_application_credential(
        &self,
        object_id: &str,
        name_or_id: &str,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send {
        AzureProvider::delete_application_credential(self, object_id, name_or_id)
    }

    fn resolve_role(
        &self,
        scope: &str,
        role: &roles::RoleRef,
    ) -> impl Future<Output = Result<roles::RoleDefinition, AzureError>> + Send {
        AzureProvider::resolve_role(self, scope, role)
    }

    fn put_role_assignment(
        &self,
        desired: &roles::DesiredRoleAssignment,
    ) -> impl Future<Output = Result<roles::PutOutcome, AzureError>> + Send {
        AzureProvider::put_role_assignment(self, desired)
    }

    fn delete_role_assignment(
        &self,
        stack: &str,
        live: &roles::LiveRoleAssignment,
        extra: bool,
    ) -> impl Future<Output = Result<Deletion, AzureError>> + Send {
        AzureProvider::delete_role_assignment(self, stack, live, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keyed_locks_serialise_one_key_and_not_others() {
        let locks = Arc::new(KeyedLocks::default());
        let held = locks.lock("/Subscriptions/S/ID").await;
        // Another key is free.
        let other =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("/x")).await;
        assert!(other.is_ok());
        // The same key (any case) waits.
        let same = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("/subscriptions/s/id"),
        )
        .await;
        assert!(same.is_err());
        drop(held);
        let again = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.lock("/subscriptions/s/id"),
        )
        .await;
        assert!(again.is_ok());
    }
}
