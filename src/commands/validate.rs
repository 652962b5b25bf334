//! `wiform validate`: offline checks, no credentials, no network.

use std::path::Path;

use super::{Printer, load_config};
use crate::exit::ExitStatus;
use crate::graph::{Graph, Resource};
use crate::kinds::Kind;

pub fn run(printer: &Printer, path: &Path) -> ExitStatus {
    let Some(checked) = load_config(printer, path) else {
        return ExitStatus::Failure;
    };
    let Some(config) = &checked.config else {
        return ExitStatus::Failure;
    };
    let graph = Graph::build(config);
    let count = |pred: fn(&Resource) -> bool| {
        graph
            .node_ids()
            .filter(|&id| pred(&graph.node(id).resource))
            .count()
    };
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let identities = count(|r| r.kind().is_identity());
    let credentials = count(|r| r.kind() == Kind::FederatedCredential);
    let warnings = checked.diagnostics.warnings();
    printer.result(&format!(
        "{} is valid: {}, {}, {}, {}, {}{}.\n",
        checked.source.name,
        plural(config.clusters.len(), "cluster", "clusters"),
        plural(identities, "identity", "identities"),
        plural(
            config.service_accounts.len(),
            "service account",
            "service accounts"
        ),
        plural(credentials, "federated credential", "federated credentials"),
        plural(config.role_grants.len(), "role grant", "role grants"),
        if warnings > 0 {
            format!(" ({})", plural(warnings, "warning", "warnings"))
        } else {
            String::new()
        },
    ));
    ExitStatus::Success
}
