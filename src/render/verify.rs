//! The verify report as text: for people, JSON, markdown. Data in, strings out.

use super::Style;
use super::plan::{cell, code_cell, prose};
use crate::engine::verify::{AccountResult, VerifyReport};

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("{code}{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn summary(report: &VerifyReport) -> String {
    let ok = report.accounts.iter().filter(|a| a.ok).count();
    let failed = report.accounts.len() - ok;
    if report.accounts.is_empty() {
        "No service account to verify.".into()
    } else if failed == 0 {
        format!("OK: every service account ({ok}) can get its Azure token.")
    } else {
        format!(
            "{failed} of {} service accounts cannot get their Azure token.",
            report.accounts.len()
        )
    }
}

fn human_account(account: &AccountResult, style: Style) -> String {
    let mut out = if account.ok {
        format!(
            "{} {} ({})\n",
            paint(style, "\x1b[1;32m", "OK"),
            paint(style, "\x1b[1m", &account.address),
            account.identity
        )
    } else {
        format!(
            "{} {} ({}): {}\n",
            paint(style, "\x1b[1;31m", "FAILED"),
            paint(style, "\x1b[1m", &account.address),
            account.identity,
            account.failed_step.map_or("", |s| s.describe())
        )
    };
    for step in &account.steps {
        out.push_str(&format!(
            "  {} {}: {}\n",
            if step.ok { "✓" } else { "✗" },
            step.step.describe(),
            step.detail
        ));
    }
    if let Some(fix) = &account.fix {
        out.push_str(&format!("  fix: {fix}\n"));
    }
    out
}

/// For people: one block per service account, then the summary.
pub fn human(report: &VerifyReport, style: Style) -> String {
    let mut sections: Vec<String> = report
        .accounts
        .iter()
        .map(|a| human_account(a, style))
        .collect();
    for error in &report.errors {
        sections.push(format!(
            "{} {error}\n",
            paint(style, "\x1b[1;31m", "error:")
        ));
    }
    sections.push(format!("{}\n", summary(report)));
    sections.join("\n")
}

/// As pretty JSON.
pub fn json(report: &VerifyReport) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// A table: one row per service account.
pub fn markdown(report: &VerifyReport) -> String {
    let mut out = format!(
        "## {} wiform verify: stack {}\n\n{}\n\n| service account | identity | result | cause | fix |\n| --- | --- | --- | --- | --- |\n",
        if report.ok { "✅" } else { "🔴" },
        code_cell(&report.stack),
        cell(&summary(report))
    );
    for a in &report.accounts {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            code_cell(&a.address),
            code_cell(&a.identity),
            if a.ok {
                "OK".to_string()
            } else {
                format!("failed: {}", a.failed_step.map_or("", |s| s.describe()))
            },
            a.cause.as_deref().map(cell).unwrap_or_default(),
            a.fix
                .as_deref()
                .map(|f| prose(&f.replace('|', "\\|")))
                .unwrap_or_default()
        ));
    }
    for error in &report.errors {
        out.push_str(&format!("\n- error: {}\n", cell(error)));
    }
    out
}
