//! `wiform apply`: plan, show it, confirm, carry it out, report.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::progress::Display;
use super::session::{
    AzureSettings, Connected, Planned, Targets, fail, watch_interrupts, with_plan,
};
use super::{Printer, Verbosity};
use crate::config::model::Config;
use crate::engine::apply::{self, Outcome, Report};
use crate::engine::plan::{Action, Plan};
use crate::exit::ExitStatus;
use crate::graph::Graph;
use crate::providers::azure::{Event, EventSink};
use crate::render;

#[derive(Debug, Clone)]
pub struct ApplySettings {
    pub file: PathBuf,
    /// Plain progress lines even on a terminal.
    pub plain_progress: bool,
    /// A plan saved by `plan --out`: apply exactly it, or refuse when it is stale.
    pub plan_file: Option<PathBuf>,
    pub azure: AzureSettings,
    pub auto_approve: bool,
}

/// Asks on the terminal; anything but `yes` declines.
fn confirm(printer: &Printer) -> bool {
    printer.err("\nDo you want to apply? wiform will make the changes above.\n  Only 'yes' will be accepted.\n\n  Enter a value: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    answer.trim() == "yes"
}

fn summary_text(plan: &Plan, report: &Report) -> String {
    let mut counts = [0usize; 5];
    for change in &plan.changes {
        let applied = report
            .outcomes
            .iter()
            .any(|(a, o)| a == &change.address && *o == Outcome::Applied);
        if !applied {
            continue;
        }
        let slot = match change.action {
            Action::Create => 0,
            Action::Update => 1,
            Action::Replace => 2,
            Action::Delete => 3,
            Action::Adopt => 4,
            Action::NoOp | Action::Read => continue,
        };
        counts[slot] += 1;
    }
    format!(
        "{} added, {} changed, {} replaced, {} destroyed, {} adopted.",
        counts[0], counts[1], counts[2], counts[3], counts[4]
    )
}

pub fn run(printer: &Printer, settings: &ApplySettings) -> ExitStatus {
    let saved: Option<Plan> = match &settings.plan_file {
        None => None,
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(plan) => Some(plan),
            Err(e) => {
                return fail(
                    printer,
                    &format!(
                        "{} is not a plan saved by `wiform plan --out`: {e}",
                        path.display()
                    ),
                    None,
                );
            }
        },
    };
    let file = saved
        .as_ref()
        .map_or_else(|| settings.file.clone(), |p| PathBuf::from(&p.config_file));
    let targets = match &saved {
        None => Targets::Named(&[]),
        Some(plan) => Targets::Saved(&plan.targets),
    };
    let live = std::io::stderr().is_terminal() && !settings.plain_progress;
    let display = Arc::new(Display::new(live, printer.verbosity == Verbosity::Quiet));
    let events_display = display.clone();
    let events: EventSink = Arc::new(move |e: &Event| events_display.event(e));
    with_plan(
        printer,
        &file,
        &settings.azure,
        targets,
        Some(events),
        async |connected, config, graph, planned| {
            let run = Run {
                connected,
                config,
                graph,
                saved: saved.as_ref(),
                display: display.clone(),
            };
            apply_planned(printer, settings, run, planned).await
        },
    )
    .unwrap_or_else(|status| status)
}

/// What one apply works on.
struct Run<'a> {
    connected: &'a Connected,
    config: &'a Config,
    graph: &'a Graph,
    saved: Option<&'a Plan>,
    display: Arc<Display>,
}

async fn apply_planned(
    printer: &Printer,
    settings: &ApplySettings,
    run: Run<'_>,
    planned: Planned,
) -> ExitStatus {
    let Run {
        connected,
        config,
        graph,
        saved,
        display,
    } = run;
    let Planned {
        plan,
        observed,
        clusters,
    } = planned;
    if let Some(saved) = saved
        && (saved.fingerprint != plan.fingerprint || saved.changes != plan.changes)
    {
        return fail(
            printer,
            "the saved plan is stale: Azure or Kubernetes changed since it was made",
            Some("run `wiform plan --out FILE` again, review it, and apply the new file"),
        );
    }
    if saved.is_none() {
        printer.out(&render::plan::human(&plan, printer.style));
    }
    if !plan.errors.is_empty() {
        return fail(
            printer,
            "the plan has errors; nothing was applied",
            Some("fix the errors above and run apply again"),
        );
    }
    if !plan.has_changes() {
        return ExitStatus::Success;
    }
    if saved.is_none() && !settings.auto_approve {
        if !std::io::stdin().is_terminal() {
            return fail(
                printer,
                "no terminal to confirm the plan on",
                Some(
                    "review it with `wiform plan`, then run `wiform apply --auto-approve` (or apply a saved plan: `wiform plan --out FILE`, `wiform apply FILE`)",
                ),
            );
        }
        if !confirm(printer) {
            printer.err("Apply cancelled.\n");
            return ExitStatus::Failure;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    watch_interrupts(stop.clone(), display.clone());
    display.start(plan.changes.iter().filter(|c| c.action.is_change()).count());
    let sink_display = display.clone();
    let report = apply::apply_with(
        &plan,
        graph,
        &observed,
        &connected.azure,
        &clusters,
        &config.name.value,
        apply::Options {
            stop: Some(stop),
            progress: Some(Arc::new(move |p: &apply::Progress| {
                sink_display.progress(p)
            })),
        },
    )
    .await;
    display.finish();
    report_outcomes(printer, &plan, &report)
}

fn report_outcomes(printer: &Printer, plan: &Plan, report: &Report) -> ExitStatus {
    // Each outcome was shown as it happened; failures are repeated here with their fix.
    let failures: Vec<_> = report
        .outcomes
        .iter()
        .filter(|(_, o)| {
            matches!(
                o,
                Outcome::Failed { .. } | Outcome::Skipped { .. } | Outcome::Kept { .. }
            )
        })
        .collect();
    if !failures.is_empty() {
        printer.err("\nWhat did not apply:\n");
    }
    for (address, outcome) in failures {
        match outcome {
            Outcome::Failed { message, hint } => {
                printer.err(&format!("  {address}: failed: {message}\n"));
                if let Some(hint) = hint {
                    printer.err(&format!("    hint: {hint}\n"));
                }
            }
            Outcome::Skipped { because } => {
                printer.err(&format!("  {address}: skipped, because {because} failed\n"));
            }
            Outcome::Kept { because } => {
                printer.err(&format!(
                    "  {address}: not deleted, because {because} did not apply: deleting it first could leave a workload with less than it had\n"
                ));
            }
            _ => {}
        }
    }
    if report.interrupted {
        printer.err(&format!(
            "\nApply interrupted: {} Changes not started were left alone; run apply again to finish.\n",
            summary_text(plan, report)
        ));
        return ExitStatus::Failure;
    }
    if report.is_success() {
        printer.result(&format!(
            "\nApply complete! {}\n",
            summary_text(plan, report)
        ));
        ExitStatus::Success
    } else {
        let failed = report
            .failed()
            .filter(|(_, o)| matches!(o, Outcome::Failed { .. }))
            .count();
        let skipped = report
            .failed()
            .filter(|(_, o)| matches!(o, Outcome::Skipped { .. } | Outcome::Kept { .. }))
            .count();
        printer.err(&format!(
            "\nApply incomplete: {} Failed: {failed}, skipped: {skipped}. Run apply again once the errors are fixed; it picks up where this one stopped.\n",
            summary_text(plan, report)
        ));
        ExitStatus::Failure
    }
}
