//! The Kubernetes provider: namespaces and service accounts written with server-side apply
//! (field manager `wiform`), observed with list calls, deleted only when they carry this stack's
//! marker; the cluster's OIDC issuer; TokenRequest for `verify`.
//!
//! The engine talks to a cluster through [`ClusterApi`], which knows nothing of HTTP;
//! [`KubeCluster`] implements it with kube-rs, one client per cluster. Everything that decides
//! (manifests, hashes, ownership, reading answers) is pure and lives in [`desired`], [`live`],
//! [`token`] and [`crate::ownership`]; [`cluster`] does the IO.

pub mod cluster;
pub mod connect;
pub mod desired;
pub mod error;
#[cfg(test)]
pub mod fake;
pub mod live;
pub mod token;

use std::future::Future;

pub use cluster::{KubeCluster, NAMESPACE_CONTENT_KINDS};
pub use connect::{KubeconfigSource, LoadedConfig, load_config};
pub use desired::{
    CLIENT_ID_ANNOTATION, DesiredNamespace, DesiredServiceAccount, TENANT_ID_ANNOTATION,
    TOKEN_EXPIRATION_ANNOTATION,
};
pub use error::{FieldConflict, KubeError, KubeErrorKind, ObjectRef};
pub use live::{
    ClusterObservation, FIELD_MANAGER, ListVersions, LiveMeta, LiveNamespace, LiveServiceAccount,
    ManagedKeys,
};
pub use token::{IssuerDiscovery, ServiceAccountToken, check_issuer};

pub use super::Deletion;

/// One cluster, as the engine (plan, apply, verify) uses it. Every call is idempotent: applying
/// what is already there changes nothing, deleting what is gone is `Ok`.
///
/// The methods return `Send` futures so that the engine can run them on a multi-threaded
/// runtime; implementations write them as plain `async fn`. The engine is generic over the
/// implementation (the real [`KubeCluster`], or a fake in unit tests), so no `dyn` is needed.
pub trait ClusterApi {
    /// The cluster's key in identity.toml.
    fn cluster(&self) -> &str;

    /// What the cluster holds for `stack`, with list calls only: the namespaces (one list), the
    /// service accounts carrying the stack's marker across namespaces (one list with a label
    /// selector), and the service accounts of each namespace in `namespaces` (one list each,
    /// to see unowned accounts that conflict or could be adopted).
    fn observe(
        &self,
        stack: &str,
        namespaces: &[String],
    ) -> impl Future<Output = Result<ClusterObservation, KubeError>> + Send;

    /// Creates or updates a namespace with server-side apply. `force` takes fields another
    /// manager owns (`--force-conflicts`).
    fn apply_namespace(
        &self,
        desired: &DesiredNamespace,
        force: bool,
    ) -> impl Future<Output = Result<LiveNamespace, KubeError>> + Send;

    /// Creates or updates a service account with server-side apply, sending only the fields
    /// wiform manages.
    fn apply_service_account(
        &self,
        desired: &DesiredServiceAccount,
        force: bool,
    ) -> impl Future<Output = Result<LiveServiceAccount, KubeError>> + Send;

    /// Deletes an observed service account, only if it carries `stack`'s marker (else
    /// [`KubeErrorKind::NotOwned`], and no request is made) and has not changed since.
    fn delete_service_account(
        &self,
        stack: &str,
        live: &LiveServiceAccount,
    ) -> impl Future<Output = Result<Deletion, KubeError>> + Send;

    /// Deletes an observed namespace, only if it carries `stack`'s marker, is not a system
    /// namespace, and holds nothing wiform does not own (see [`NAMESPACE_CONTENT_KINDS`]).
    fn delete_namespace(
        &self,
        stack: &str,
        live: &LiveNamespace,
    ) -> impl Future<Output = Result<Deletion, KubeError>> + Send;

    /// The cluster's OIDC discovery document (`/.well-known/openid-configuration`), read through
    /// the API server with the cluster's credentials, and anonymously when those are refused.
    fn issuer(&self) -> impl Future<Output = Result<IssuerDiscovery, KubeError>> + Send;

    /// A token for a service account (TokenRequest).
    fn request_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> impl Future<Output = Result<ServiceAccountToken, KubeError>> + Send;
}
