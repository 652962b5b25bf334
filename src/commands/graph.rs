//! `wiform graph`: the dependency graph as DOT or JSON on stdout.

use std::path::Path;

use super::{GraphFormat, Printer, load_config};
use crate::exit::ExitStatus;
use crate::graph::Graph;
use crate::render;

pub fn run(printer: &Printer, path: &Path, format: GraphFormat) -> ExitStatus {
    let Some(checked) = load_config(printer, path) else {
        return ExitStatus::Failure;
    };
    let Some(config) = &checked.config else {
        return ExitStatus::Failure;
    };
    let graph = Graph::build(config);
    tracing::debug!(
        nodes = graph.len(),
        edges = graph.edges().count(),
        "built graph"
    );
    printer.out(&match format {
        GraphFormat::Dot => render::graph::dot(&graph),
        GraphFormat::Json => render::graph::json(&graph),
    });
    ExitStatus::Success
}
