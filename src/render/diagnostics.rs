//! Config diagnostics drawn by miette: `file:line:col`, the source lines, the span underlined,
//! and the help text.

use std::fmt;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};

use super::Style;
use crate::config::{Diagnostic, Diagnostics, Severity, SourceFile};

struct Shown<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a NamedSource<String>,
}

impl fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Shown<'_> {}

impl miette::Diagnostic for Shown<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.diagnostic
            .span
            .as_ref()
            .map(|_| self.source as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let len = self.source.inner().len();
        // Spans come from the parser and are within the file; clamp anyway, a bad span must
        // not turn into a panic while reporting.
        let clamp = move |span: &std::ops::Range<usize>| {
            let start = span.start.min(len);
            (start, span.end.min(len).saturating_sub(start))
        };
        let primary = self.diagnostic.span.as_ref().map(|span| {
            LabeledSpan::new_primary_with_span(self.diagnostic.label.clone(), clamp(span))
        });
        let related =
            self.diagnostic.related.iter().map(move |(span, label)| {
                LabeledSpan::new_with_span(Some(label.clone()), clamp(span))
            });
        Some(Box::new(primary.into_iter().chain(related)))
    }
}

/// Every diagnostic, in file order, then a summary line.
pub fn render(
    source: &SourceFile,
    diagnostics: &Diagnostics,
    style: Style,
    show_warnings: bool,
) -> String {
    let named = NamedSource::new(source.name.clone(), source.text.clone()).with_language("TOML");
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics.iter() {
        if diagnostic.severity == Severity::Warning && !show_warnings {
            continue;
        }
        let shown = Shown {
            diagnostic,
            source: &named,
        };
        if handler.render_report(&mut out, &shown).is_err() {
            out.push_str(&format!("{}: {}\n", diagnostic.code, diagnostic.message));
        }
        out.push('\n');
    }
    out
}

/// `3 errors and 1 warning`.
pub fn count(diagnostics: &Diagnostics) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (diagnostics.errors(), diagnostics.warnings()) {
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{} and {}", plural(e, "error"), plural(w, "warning")),
    }
}
