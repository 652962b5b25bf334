//! Kubernetes: the contract wiform relies on, checked against the real kube-apiserver and the
//! sandbox's emulator; and the Kubernetes provider against the real kube-apiserver.

#[path = "../support/kube_server.rs"]
mod kube_server;

mod contract;
mod exchange;
mod provider;
mod verify;
