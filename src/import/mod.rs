//! `wiform import`: identity.toml written from what already exists. Pure: the command reads the
//! input and writes the output; nothing here does IO, and nothing here knows the engine, the
//! providers or the commands.
//!
//! - [`model`]: what was found, as plain data (no source's types);
//! - [`write`]: that model as identity.toml text, in the house style, with the rules that keep it
//!   short (implied names, built-in role names, relative scopes) and the notes at the end;
//! - [`issuer`]: the well-known issuers of federated credentials (GitHub Actions, Azure DevOps,
//!   GitLab, HCP Terraform, Kubernetes);
//! - [`live`]: what the list calls found in Azure and the clusters (plain data) → the model;
//! - [`terraform`]: `terraform show -json` output → the model, and the addresses taken over.

pub mod issuer;
pub mod live;
pub mod model;
pub mod terraform;
pub mod write;
