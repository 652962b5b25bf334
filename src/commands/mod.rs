//! The commands. Each takes plain settings and a printer, and returns an exit status.

pub mod apply;
pub mod drift;
pub mod graph;
pub mod import;
pub mod plan;
pub mod progress;
pub mod sandbox;
pub mod session;
pub mod validate;
pub mod verify;

use std::io::Write;

use crate::config::{self, Checked};
use crate::render::{self, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Dot,
    Json,
}

/// Writes to stdout (results) and stderr (diagnostics, progress). A closed pipe
/// (`wiform graph | head`) is not an error worth a panic: writes that fail are dropped.
pub struct Printer {
    pub style: Style,
    pub verbosity: Verbosity,
}

impl Printer {
    pub fn new(color: bool, verbosity: Verbosity) -> Self {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        Printer {
            style: Style { color, width },
            verbosity,
        }
    }

    pub fn out(&self, text: &str) {
        let _ = std::io::stdout().lock().write_all(text.as_bytes());
    }

    pub fn err(&self, text: &str) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// A result line on stdout, unless quiet.
    pub fn result(&self, text: &str) {
        if self.verbosity != Verbosity::Quiet {
            self.out(text);
        }
    }
}

/// `--verbose` turns on debug logs (stderr); `WIFORM_LOG` overrides the filter.
pub fn init_logging(verbosity: Verbosity, color: bool) {
    // Only wiform's own logs: libraries (kube-rs logs every failed request at ERROR, even one
    // wiform retries) speak through wiform's errors instead.
    let default = match verbosity {
        Verbosity::Quiet => "wiform=error",
        Verbosity::Normal => "wiform=warn",
        Verbosity::Verbose => "wiform=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WIFORM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .without_time()
        .with_target(false)
        .try_init();
}

/// Loads and checks the config, printing its diagnostics. `None` when it cannot be used.
pub fn load_config(printer: &Printer, path: &std::path::Path) -> Option<Checked> {
    let checked = match config::load(path) {
        Ok(checked) => checked,
        Err(error) => {
            let mut text = String::new();
            let handler = miette::GraphicalReportHandler::new_themed(if printer.style.color {
                miette::GraphicalTheme::unicode()
            } else {
                miette::GraphicalTheme::unicode_nocolor()
            });
            if handler.render_report(&mut text, &error).is_err() {
                text = format!("error: {error}\n");
            }
            printer.err(&text);
            return None;
        }
    };
    tracing::debug!(
        file = %checked.source.name,
        bytes = checked.source.text.len(),
        errors = checked.diagnostics.errors(),
        warnings = checked.diagnostics.warnings(),
        "checked config"
    );
    let show_warnings = printer.verbosity != Verbosity::Quiet;
    if checked.diagnostics.has_errors() || (show_warnings && checked.diagnostics.warnings() > 0) {
        printer.err(&render::diagnostics::render(
            &checked.source,
            &checked.diagnostics,
            printer.style,
            show_warnings,
        ));
    }
    if checked.diagnostics.has_errors() {
        printer.err(&format!(
            "error: {} is not valid: {}\n",
            checked.source.name,
            render::diagnostics::count(&checked.diagnostics)
        ));
    }
    Some(checked)
}
