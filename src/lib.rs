//! wiform: declarative Azure workload identity for Kubernetes.
//!
//! `identity.toml` → [`config`] (model + diagnostics) → [`graph`] (typed resources and their
//! dependencies) → later: observe, plan, apply.

pub mod address;
pub mod arm_id;
pub mod builtin_roles;
pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod exit;
pub mod graph;
pub mod import;
pub mod kinds;
pub mod ownership;
pub mod providers;
pub mod render;
pub mod sandbox_session;
