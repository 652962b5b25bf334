//! `wiform verify`: for each service account, do what its workload does to get an Azure token,
//! and say which step fails and why (src/engine/verify.rs).

use std::path::PathBuf;

use super::session::{AzureSettings, Targets, with_plan};
use super::{PlanFormat, Printer};
use crate::engine::verify::{VerifyInput, verify};
use crate::exit::ExitStatus;
use crate::render;

/// The scope a workload asks for unless told otherwise.
pub const DEFAULT_SCOPE: &str = "https://management.azure.com/.default";

#[derive(Debug, Clone)]
pub struct VerifySettings {
    pub file: PathBuf,
    pub azure: AzureSettings,
    pub format: PlanFormat,
    pub scope: String,
    /// Service account addresses; empty: all.
    pub targets: Vec<String>,
}

pub fn run(printer: &Printer, settings: &VerifySettings) -> ExitStatus {
    // The whole config is planned (verify needs every identity's live ids); `--target` picks
    // the service accounts to verify.
    let report = with_plan(
        printer,
        &settings.file,
        &settings.azure,
        Targets::Named(&[]),
        None,
        async |connected, config, graph, planned| {
            verify(&VerifyInput {
                graph,
                plan: &planned.plan,
                observed: &planned.observed,
                clusters: &planned.clusters,
                azure: &connected.azure.client,
                tenant_id: &config.azure.tenant_id.value,
                scope: &settings.scope,
                targets: &settings.targets,
            })
            .await
        },
    );
    let report = match report {
        Ok(report) => report,
        Err(status) => return status,
    };
    let text = match settings.format {
        PlanFormat::Human => render::verify::human(&report, printer.style),
        PlanFormat::Json => render::verify::json(&report),
        PlanFormat::Markdown => render::verify::markdown(&report),
    };
    printer.out(&text);
    if report.ok {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}
