//! The engine against the sandbox (ARM, Graph and the emulated AKS clusters' Kubernetes APIs):
//! observe, diff, plan.

#[path = "../azure/support.rs"]
mod support;

mod plans;
