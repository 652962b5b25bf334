//! Providers: the code that talks to the outside world (Azure: ARM and Microsoft Graph;
//! Kubernetes). Each one exposes a small trait the engine uses without knowing HTTP.

pub mod azure;
pub mod kube;
