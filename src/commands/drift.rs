//! `wiform drift`: observe like plan, change nothing, and say which differences were made
//! outside wiform (drift) and which are config changes not applied yet (pending).

use std::path::PathBuf;

use super::session::{AzureSettings, Targets, fail, with_plan};
use super::{PlanFormat, Printer};
use crate::engine::drift::{self, Verdict};
use crate::exit::ExitStatus;
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
    let report = match with_plan(
        printer,
        &settings.file,
        &settings.azure,
        Targets::Named(&settings.targets),
        None,
        async |_, _, graph, planned| drift::classify(&planned.plan, &planned.observed, graph),
    ) {
        Ok(report) => report,
        Err(status) => return status,
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
