//! `wiform drift`: observe like plan, change nothing, and say which differences were made
//! outside wiform (drift) and which are config changes not applied yet (pending).

use std::path::PathBuf;

use super::plan::{AzureSettings, PlanFormat, connect, fail, make_plan, resolve_targets, runtime};
use super::{Printer, load_config};
use crate::engine::drift::{self, Verdict};
use crate::exit::ExitStatus;
use crate::graph::Graph;
use crate::render;

#[derive(Debug, Clone)]
pub struct DriftSettings {
    pub file: PathBuf,
    pub azure: AzureSettings,
    pub format: PlanFormat,
    /// Also write a JUnit XML report here.
    pub junit: Option<PathBuf>,
    pub targets: Vec<String>,
}

pub fn run(printer: &Printer, settings: &DriftSettings) -> ExitStatus {
    let Some(checked) = load_config(printer, &settings.file) else {
        return ExitStatus::Failure;
    };
    let Some(config) = &checked.config else {
        return ExitStatus::Failure;
    };
    let graph = Graph::build(config);
    let targets = match resolve_targets(&graph, &settings.targets) {
        Ok(t) => t,
        Err(e) => return fail(printer, &e, None),
    };
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(printer, &e, None),
    };
    let report = runtime.block_on(async {
        let connected = connect(
            printer,
            config,
            &graph,
            &settings.file,
            &settings.azure,
            None,
        )
        .await?;
        let planned = make_plan(
            &connected,
            config,
            &graph,
            &settings.file.display().to_string(),
            &targets,
        )
        .await;
        if let Some(session) = connected.sandbox {
            session.close().await;
        }
        Ok::<_, (String, Option<String>)>(drift::classify(&planned.plan, &planned.observed, &graph))
    });
    let report = match report {
        Ok(report) => report,
        Err((message, hint)) => return fail(printer, &message, hint.as_deref()),
    };
    let text = match settings.format {
        PlanFormat::Human => render::drift::human(&report, printer.style),
        PlanFormat::Json => render::drift::json(&report),
        PlanFormat::Markdown => render::drift::markdown(&report),
    };
    printer.out(&text);
    if let Some(path) = &settings.junit
        && let Err(e) = std::fs::write(path, render::drift::junit(&report))
    {
        return fail(
            printer,
            &format!("cannot write the JUnit report to {}: {e}", path.display()),
            None,
        );
    }
    match report.verdict {
        Verdict::InSync => ExitStatus::Success,
        Verdict::Drifted => ExitStatus::Drifted,
        Verdict::PendingOnly => ExitStatus::PendingOnly,
        Verdict::Incomplete => ExitStatus::Failure,
    }
}
