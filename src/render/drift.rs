//! The drift report as text: for people (grouped by class, each with who can fix it), JSON for
//! programs (`schemas/drift.schema.json`, generated here and kept current by a test), markdown
//! for `$GITHUB_STEP_SUMMARY`, and JUnit XML so that CI systems show each drifted resource as a
//! failed test case. Data in, strings out; no IO here.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use schemars::generate::SchemaSettings;
use serde_json::Value;

use super::Style;
use super::plan::{cell, code_cell, prose};
use crate::engine::drift::{Cause, Class, DriftItem, DriftReport, FORMAT_VERSION, Verdict};

/// Where the report's JSON Schema is checked in, relative to the repository root.
pub const DRIFT_SCHEMA_PATH: &str = "schemas/drift.schema.json";

const RED_BOLD: &str = "\x1b[1;31m";
const YELLOW_BOLD: &str = "\x1b[1;33m";
const GREEN_BOLD: &str = "\x1b[1;32m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("{code}{text}{RESET}")
    } else {
        text.to_string()
    }
}

fn cause_text(cause: Cause) -> &'static str {
    match cause {
        Cause::ChangedOutsideWiform => "changed outside wiform",
        Cause::DeletedOutsideWiform => "deleted outside wiform",
        Cause::AddedOutsideWiform => "added outside wiform",
        Cause::ConfigChanged => "config changed",
        Cause::NotYetApplied => "not applied yet",
        Cause::RemovedFromConfig => "removed from config",
    }
}

/// The one-line verdict every form ends with.
pub fn verdict_line(report: &DriftReport) -> String {
    let s = report.summary;
    match report.verdict {
        Verdict::InSync => format!(
            "In sync: {} resources match identity.toml and what wiform applied.",
            s.in_sync
        ),
        Verdict::Drifted => format!(
            "Drift: {} drifted, {} pending, {} in sync.",
            s.drifted, s.pending, s.in_sync
        ),
        Verdict::PendingOnly => format!(
            "No drift; {} pending (config changes apply would make), {} in sync.",
            s.pending, s.in_sync
        ),
        Verdict::Incomplete => format!(
            "Incomplete: {} could not be read; no drift among what could ({} pending, {} in sync).",
            if report.errors.len() == 1 {
                "1 scope".to_string()
            } else {
                format!("{} scopes", report.errors.len())
            },
            s.pending,
            s.in_sync
        ),
    }
}

fn human_item(item: &DriftItem, style: Style) -> String {
    let mut out = format!(
        "  {} ({}, {})\n    {}\n",
        paint(style, BOLD, &item.address.to_string()),
        item.resource_type,
        cause_text(item.cause),
        item.detail
    );
    if let Some(evidence) = &item.evidence {
        out.push_str(&format!("    how we know: {evidence}\n"));
    }
    out.push_str(&format!("    fix: {}\n", item.fix));
    out
}

/// For people: drifted, then pending, then errors, then the verdict.
pub fn human(report: &DriftReport, style: Style) -> String {
    let mut sections = Vec::new();
    let drifted: Vec<&DriftItem> = report.drifted().collect();
    if !drifted.is_empty() {
        let mut s = format!(
            "{}\n",
            paint(
                style,
                RED_BOLD,
                "Drifted: changed outside wiform since the last apply"
            )
        );
        for item in drifted {
            s.push_str(&human_item(item, style));
        }
        sections.push(s);
    }
    let pending: Vec<&DriftItem> = report.pending().collect();
    if !pending.is_empty() {
        let mut s = format!(
            "{}\n",
            paint(
                style,
                YELLOW_BOLD,
                "Pending: the config asks for changes not applied yet"
            )
        );
        for item in pending {
            s.push_str(&human_item(item, style));
        }
        sections.push(s);
    }
    for error in &report.errors {
        let mut s = format!("{} ", paint(style, RED_BOLD, "error:"));
        if let Some(address) = &error.address {
            s.push_str(&format!("{address}: "));
        }
        s.push_str(&error.message);
        s.push('\n');
        if let Some(hint) = &error.hint {
            s.push_str(&format!("  hint: {hint}\n"));
        }
        sections.push(s);
    }
    let verdict = verdict_line(report);
    let code = match report.verdict {
        Verdict::InSync => GREEN_BOLD,
        Verdict::PendingOnly => YELLOW_BOLD,
        Verdict::Drifted | Verdict::Incomplete => RED_BOLD,
    };
    sections.push(format!("{}\n", paint(style, code, &verdict)));
    sections.join("\n")
}

/// As pretty JSON, described by `schemas/drift.schema.json`.
pub fn json(report: &DriftReport) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// The JSON Schema of [`json`]'s output (draft-07), pretty-printed with a trailing newline.
pub fn drift_schema_json() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<DriftReport>();
    if let Some(root) = schema.as_object_mut() {
        root.insert("title".into(), "wiform drift report".into());
    }
    if let Some(version) = schema
        .pointer_mut("/properties/format_version")
        .and_then(Value::as_object_mut)
    {
        version.insert(
            "description".to_string(),
            "Version of the report's JSON shape; within a version, fields are only ever added."
                .into(),
        );
        version.insert("const".to_string(), FORMAT_VERSION.into());
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn markdown_table(items: &[&DriftItem]) -> String {
    let mut out = String::from(
        "| resource | type | what happened | details | fix |\n| --- | --- | --- | --- | --- |\n",
    );
    for item in items {
        let mut details = cell(&item.detail);
        if let Some(evidence) = &item.evidence {
            details.push_str(&format!(" (how we know: {})", cell(evidence)));
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            code_cell(&item.address.to_string()),
            cell(item.resource_type.as_str()),
            cause_text(item.cause),
            details,
            // Its commands stay code; it holds no `|` or line break.
            prose(&item.fix.replace('|', "\\|"))
        ));
    }
    out
}

/// For `$GITHUB_STEP_SUMMARY`: a heading with the verdict, then a table per class.
pub fn markdown(report: &DriftReport) -> String {
    let icon = match report.verdict {
        Verdict::InSync => "✅",
        Verdict::PendingOnly => "🟡",
        Verdict::Drifted => "🔴",
        Verdict::Incomplete => "⚠️",
    };
    let mut out = format!(
        "## {icon} wiform drift: stack {}\n\n{}\n",
        code_cell(&report.stack),
        cell(&verdict_line(report))
    );
    let drifted: Vec<&DriftItem> = report.drifted().collect();
    if !drifted.is_empty() {
        out.push_str("\n### Drifted: changed outside wiform\n\n");
        out.push_str(&markdown_table(&drifted));
    }
    let pending: Vec<&DriftItem> = report.pending().collect();
    if !pending.is_empty() {
        out.push_str("\n### Pending: config changes not applied yet\n\n");
        out.push_str(&markdown_table(&pending));
    }
    if !report.errors.is_empty() {
        out.push_str("\n### Could not be read\n\n");
        for error in &report.errors {
            out.push_str(&format!("- {}", cell(&error.message)));
            if let Some(hint) = &error.hint {
                out.push_str(&format!(" (hint: {})", cell(hint)));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "\n<sub>{} · {}</sub>\n",
        cell(&report.config_file),
        match report.verdict {
            Verdict::InSync => "exit 0",
            Verdict::Drifted => "exit 2",
            Verdict::PendingOnly => "exit 3",
            Verdict::Incomplete => "exit 1",
        }
    ));
    out
}

/// JUnit XML: one suite per class; a drifted resource is a failed test case, a pending one a
/// passed case with a note (CI systems would otherwise fail a run on config changes not yet
/// applied), a scope that could not be read an error.
pub fn junit(report: &DriftReport) -> String {
    let mut drifted = TestSuite::new("drifted");
    let mut pending = TestSuite::new("pending");
    for item in &report.items {
        let name = item.address.to_string();
        let mut case = match item.class {
            Class::Drifted => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(format!("{}: {}", cause_text(item.cause), item.detail))
                    .set_type(
                        serde_json::to_value(item.cause)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    )
                    .set_description(format!(
                        "{}{}\nfix: {}",
                        item.detail,
                        item.evidence
                            .as_deref()
                            .map(|e| format!("\nhow we know: {e}"))
                            .unwrap_or_default(),
                        item.fix
                    ));
                TestCase::new(name, status)
            }
            Class::Pending => {
                let mut case = TestCase::new(name, TestCaseStatus::success());
                case.set_system_out(format!(
                    "{}: {}\nfix: {}",
                    cause_text(item.cause),
                    item.detail,
                    item.fix
                ));
                case
            }
        };
        case.set_classname(format!("{}.{}", report.stack, item.resource_type));
        match item.class {
            Class::Drifted => drifted.add_test_case(case),
            Class::Pending => pending.add_test_case(case),
        };
    }
    let mut errors = TestSuite::new("observation");
    for (i, error) in report.errors.iter().enumerate() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(error.message.clone());
        if let Some(hint) = &error.hint {
            status.set_description(format!("hint: {hint}"));
        }
        let mut case = TestCase::new(
            error
                .address
                .as_ref()
                .map_or_else(|| format!("scope {}", i + 1), ToString::to_string),
            status,
        );
        case.set_classname(format!("{}.observation", report.stack));
        errors.add_test_case(case);
    }
    let mut junit = Report::new(format!("wiform drift {}", report.stack));
    junit.add_test_suite(drifted);
    junit.add_test_suite(pending);
    if !report.errors.is_empty() {
        junit.add_test_suite(errors);
    }
    junit.to_string().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::drift::DriftSummary;
    use crate::engine::plan::Action;

    fn report() -> DriftReport {
        DriftReport {
            format_version: FORMAT_VERSION,
            stack: "lab".into(),
            config_file: "identity.toml".parse().unwrap(),
            verdict: Verdict::Drifted,
            summary: DriftSummary {
                drifted: 1,
                pending: 1,
                in_sync: 4,
            },
            items: vec![
                DriftItem {
                    address: "identity.api".parse().unwrap(),
                    resource_type: "managed_identity".parse().unwrap(),
                    class: Class::Drifted,
                    cause: Cause::ChangedOutsideWiform,
                    action: Action::Update,
                    id: Some("/subscriptions/s/…/api".into()),
                    detail: "tags[\"team\"] is \"x\", the config says \"orders\"".into(),
                    evidence: Some("spec hash recorded at apply 1, live fields hash to 2".into()),
                    fix: "re-run `wiform apply`".into(),
                    fields: vec![],
                },
                DriftItem {
                    address: "service_account.lab/default/new".parse().unwrap(),
                    resource_type: "service_account".parse().unwrap(),
                    class: Class::Pending,
                    cause: Cause::NotYetApplied,
                    action: Action::Create,
                    id: None,
                    detail: "in the config, not applied yet".into(),
                    evidence: None,
                    fix: "run `wiform apply`".into(),
                    fields: vec![],
                },
            ],
            errors: vec![],
            targets: vec![],
        }
    }

    #[test]
    fn human_groups_by_class() {
        insta::assert_snapshot!(human(&report(), Style::plain()));
    }

    #[test]
    fn markdown_has_a_table_per_class() {
        insta::assert_snapshot!(markdown(&report()));
    }

    #[test]
    fn junit_fails_each_drifted_resource() {
        let xml = junit(&report());
        assert!(xml.contains("<failure"), "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1);
        insta::assert_snapshot!(xml);
    }

    #[test]
    fn json_round_trips() {
        let text = json(&report());
        let back: DriftReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report());
    }

    /// `UPDATE_SCHEMA=1 cargo test` rewrites the checked-in schema.
    #[test]
    fn the_checked_in_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DRIFT_SCHEMA_PATH);
        let schema = drift_schema_json();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &schema).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            checked_in, schema,
            "{DRIFT_SCHEMA_PATH} is stale: run `UPDATE_SCHEMA=1 cargo test`"
        );
    }
}
