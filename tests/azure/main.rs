//! The Azure provider against the sandbox: real HTTPS, azure_identity credentials, the same
//! code that talks to Azure.

mod support;

mod applications;
mod client;
mod clusters;
mod credential;
mod identities;
mod observe;
mod roles;
