//! An in-memory [`ClusterApi`] for the engine's unit tests: it records the writes in the order
//! they were made (with the client id each service account is annotated with) and answers with
//! the object as written.

use std::sync::Mutex;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};

use super::{
    ClusterApi, ClusterObservation, DesiredNamespace, DesiredServiceAccount, IssuerDiscovery,
    KubeError, ListVersions, LiveNamespace, LiveServiceAccount, ServiceAccountToken,
};
use crate::providers::Deletion;

#[derive(Debug, Default)]
pub struct FakeCluster {
    pub name: String,
    calls: Mutex<Vec<String>>,
}

impl FakeCluster {
    pub fn new(name: &str) -> Self {
        FakeCluster {
            name: name.to_string(),
            calls: Mutex::default(),
        }
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl ClusterApi for FakeCluster {
    fn cluster(&self) -> &str {
        &self.name
    }

    async fn observe(
        &self,
        stack: &str,
        namespaces: &[String],
    ) -> Result<ClusterObservation, KubeError> {
        Ok(ClusterObservation::assemble(
            &self.name,
            stack,
            namespaces,
            &[],
            Vec::new(),
            ListVersions::default(),
        ))
    }

    async fn apply_namespace(
        &self,
        desired: &DesiredNamespace,
        _force: bool,
    ) -> Result<LiveNamespace, KubeError> {
        self.record(format!("apply_namespace {}", desired.name));
        Ok(LiveNamespace::from_api(&Namespace {
            metadata: desired.manifest().metadata,
            ..Namespace::default()
        }))
    }

    async fn apply_service_account(
        &self,
        desired: &DesiredServiceAccount,
        _force: bool,
    ) -> Result<LiveServiceAccount, KubeError> {
        self.record(format!(
            "apply_service_account {}/{} client_id={}",
            desired.namespace, desired.name, desired.client_id
        ));
        Ok(LiveServiceAccount::from_api(&ServiceAccount {
            metadata: desired.manifest().metadata,
            ..ServiceAccount::default()
        }))
    }

    async fn delete_service_account(
        &self,
        _stack: &str,
        live: &LiveServiceAccount,
    ) -> Result<Deletion, KubeError> {
        self.record(format!(
            "delete_service_account {}/{}",
            live.namespace,
            live.name()
        ));
        Ok(Deletion::Deleted)
    }

    async fn delete_namespace(
        &self,
        _stack: &str,
        live: &LiveNamespace,
    ) -> Result<Deletion, KubeError> {
        self.record(format!("delete_namespace {}", live.name()));
        Ok(Deletion::Deleted)
    }

    async fn issuer(&self) -> Result<IssuerDiscovery, KubeError> {
        unimplemented!("the apply walk never reads the issuer")
    }

    async fn request_token(
        &self,
        _namespace: &str,
        _name: &str,
        _audiences: &[String],
        _expiration_seconds: i64,
    ) -> Result<ServiceAccountToken, KubeError> {
        unimplemented!("the apply walk never mints tokens")
    }
}
