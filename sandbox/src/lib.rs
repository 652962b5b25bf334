//! wiform's sandbox: an emulator of the Azure services wiform talks to — ARM (resource groups,
//! managed identities and their federated credentials, role definitions and assignments, AKS
//! managed clusters), Microsoft Graph (applications, service principals, their federated
//! credentials) and the Entra token endpoint — served over HTTPS on loopback, following the
//! REST contracts of `Azure/azure-rest-api-specs` and the Microsoft identity platform docs,
//! with the faults real users meet switchable per run.
//!
//! Programs outside it start one with [`start`], and talk to one or to its state directory
//! through [`client`] alone: the state file's model ([`state`]) is the sandbox's own.

pub mod admin;
pub mod arm;
pub mod auth;
pub mod builtin_roles;
pub mod client;
pub mod entra;
pub mod graph;
pub mod http;
pub mod kube;
pub mod log;
pub mod options;
pub mod seed;
pub mod server;
pub mod state;
pub mod throttle;
pub mod tls;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

pub use options::{Faults, Options};
pub use server::{Running, StartError, start};

/// Everything a request handler can reach.
pub struct App {
    pub store: state::Store,
    pub key: auth::SigningKey,
    faults: RwLock<Faults>,
    pub options: Options,
    /// `https://127.0.0.1:PORT`: ARM, Graph and the authority host all live here.
    pub base_url: String,
    pub log: log::RequestLog,
    pub throttle: throttle::Throttle,
    /// Identities with a federated credential write in progress.
    pub fic_writes: Mutex<HashSet<String>>,
    /// For fetching OIDC discovery documents and JWKS of issuers.
    pub http: reqwest::Client,
    pub ca_pem: String,
}

impl App {
    pub fn faults(&self) -> Faults {
        self.faults
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    pub fn tenant_id(&self) -> String {
        self.store.read(|s| s.tenant_id.clone())
    }

    /// The `iss` of tokens the sandbox mints (Entra v2.0 style).
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base_url, self.tenant_id())
    }

    pub fn state_file(&self) -> Option<PathBuf> {
        self.store.path().map(|p| p.to_path_buf())
    }
}
