//! How a sandbox runs: where it keeps state, how it pages, and which faults are on.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Faults that hurt real users, all off by default. Switchable per run (a JSON or TOML file,
/// CLI flags) and at run time (`PUT /_sandbox/faults`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added to every answer.
    pub latency_ms: u64,
    /// Random extra latency, 0..=jitter_ms.
    pub jitter_ms: u64,
    /// Enforce ARM's token buckets per subscription (reads 250 burst / 25 per s, writes and
    /// deletes 200 / 10 per s: "Request limits and throttling") with 429 + Retry-After.
    pub throttle: bool,
    /// Enforce the Managed Identity provider's own, lower, limits too (per subscription and per
    /// identity: "FIC considerations" doc).
    pub msi_throttle: bool,
    /// Multiplies every bucket's size and refill rate, so that benchmarks can run the same shape
    /// faster (10.0 = ten times the real limits).
    pub throttle_scale: f64,
    /// A new identity's principal answers `PrincipalNotFound` and its federated credential path
    /// `ParentResourceNotFound` for this long.
    pub replication_delay_ms: u64,
    /// Fraction (0–1) of requests answered 500 or 503.
    pub error_rate: f64,
    /// Fraction (0–1) of requests whose connection is dropped without an answer.
    pub drop_rate: f64,
    /// Status polls a long-running operation answers `InProgress` before it completes.
    pub lro_polls: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            jitter_ms: 0,
            throttle: false,
            msi_throttle: false,
            throttle_scale: 1.0,
            replication_delay_ms: 0,
            error_rate: 0.0,
            drop_rate: 0.0,
            lro_polls: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Directory of the state file, CA and signing key; `None` keeps everything in memory.
    pub state_dir: Option<PathBuf>,
    /// 0 picks a free port.
    pub port: u16,
    pub faults: Faults,
    /// Items per list page (ARM and Graph).
    pub page_size: usize,
    /// How long a federated credential write holds its identity: a second write on the same
    /// identity meanwhile gets the real 409.
    pub fic_write_ms: u64,
    /// Extra CA certificates (PEM files) trusted when fetching OIDC discovery documents, e.g. a
    /// test cluster's.
    pub trusted_ca_files: Vec<PathBuf>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            state_dir: None,
            port: 0,
            faults: Faults::default(),
            page_size: 100,
            fic_write_ms: 50,
            trusted_ca_files: Vec::new(),
            max_body_bytes: 1024 * 1024,
        }
    }
}
