//! The sandbox over real HTTPS, spoken to with reqwest as any client would: status codes,
//! headers, bodies and error codes of each emulated API.

mod authorization;
mod common;
mod containers;
mod entra;
mod faults;
mod graph;
mod identities;
mod kube;
mod malformed;
mod persistence;
mod resource_groups;
