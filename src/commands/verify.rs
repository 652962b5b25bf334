//! `wiform verify`: for each service account, do what its workload does to get an Azure token,
//! and say which step fails and why (src/engine/verify.rs).

use std::path::PathBuf;

use super::plan::{AzureSettings, PlanFormat, connect, fail, make_plan, runtime};
use super::{Printer, load_config};
use crate::engine::verify::{VerifyInput, verify};
use crate::exit::ExitStatus;
use crate::graph::Graph;
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
    let Some(checked) = load_config(printer, &settings.file) else {
        return ExitStatus::Failure;
    };
    let Some(config) = &checked.config else {
        return ExitStatus::Failure;
    };
    let graph = Graph::build(config);
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
            &[],
        )
        .await;
        let report = verify(&VerifyInput {
            graph: &graph,
            plan: &planned.plan,
            observed: &planned.observed,
            clusters: &planned.clusters,
            azure: &connected.azure.client,
            tenant_id: &config.azure.tenant_id.value,
            scope: &settings.scope,
            targets: &settings.targets,
        })
        .await;
        if let Some(session) = connected.sandbox {
            session.close().await;
        }
        Ok::<_, (String, Option<String>)>(report)
    });
    let report = match report {
        Ok(report) => report,
        Err((message, hint)) => return fail(printer, &message, hint.as_deref()),
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
