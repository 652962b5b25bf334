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
