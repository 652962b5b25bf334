//! Providers: the code that talks to the outside world (Azure: ARM and Microsoft Graph;
//! Kubernetes). Each one exposes a small trait the engine uses without knowing HTTP.

pub mod azure;
pub mod kube;

/// What a delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// The service accepted the delete (a namespace then terminates in the background).
    Deleted,
    /// There was nothing to delete: the object was gone already (or, for a namespace,
    /// already terminating).
    AlreadyGone,
}
