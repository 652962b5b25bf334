//! `wiform plan`: read the config, observe Azure and every cluster, print what apply would do.

use std::path::PathBuf;

use super::session::{AzureSettings, Targets, fail, with_plan};
use super::{PlanFormat, Printer, Verbosity};
use crate::exit::ExitStatus;
use crate::render;

#[derive(Debug, Clone)]
pub struct PlanSettings {
    pub file: PathBuf,
    pub azure: AzureSettings,
    pub format: PlanFormat,
    pub out: Option<PathBuf>,
    pub targets: Vec<String>,
    pub detailed_exitcode: bool,
}

pub fn run(printer: &Printer, settings: &PlanSettings) -> ExitStatus {
    let plan = match with_plan(
        printer,
        &settings.file,
        &settings.azure,
        Targets::Named(&settings.targets),
        None,
        async |_, _, _, planned| planned.plan,
    ) {
        Ok(plan) => plan,
        Err(status) => return status,
    };
    let text = match settings.format {
        PlanFormat::Human => render::plan::human(&plan, printer.style),
        PlanFormat::Json => render::plan::json(&plan),
        PlanFormat::Markdown => render::plan::markdown(&plan),
    };
    printer.out(&text);
    if let Some(out) = &settings.out {
        if let Err(e) = std::fs::write(out, render::plan::json(&plan)) {
            return fail(
                printer,
                &format!("cannot write the plan to {}: {e}", out.display()),
                None,
            );
        }
        if printer.verbosity != Verbosity::Quiet {
            printer.err(&format!(
                "Saved the plan to {}. Apply exactly this plan with `wiform apply {}`.\n",
                out.display(),
                out.display()
            ));
        }
    }
    if !plan.errors.is_empty() {
        ExitStatus::Failure
    } else if settings.detailed_exitcode && plan.has_changes() {
        ExitStatus::ChangesPending
    } else {
        ExitStatus::Success
    }
}
