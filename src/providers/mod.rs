//! Providers: the code that talks to the outside world (Kubernetes now; ARM and Microsoft Graph
//! later). Each one exposes a small trait the engine uses without knowing HTTP.

pub mod kube;
