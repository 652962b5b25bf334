//! The plan as text: a Terraform-like view for people, JSON for programs (the stable, versioned
//! interface described by `schemas/plan.schema.json`, generated here and kept current by a
//! test) and GitHub-flavoured markdown for pull-request comments and CI job summaries.
//! Data in, strings out; no IO here.

use std::collections::BTreeSet;

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde_json::{Map, Value};
use similar::{ChangeTag, DiffOp, DiffableStr, TextDiff};

use super::Style;
use crate::engine::plan::{
    Action, After, Change, FORMAT_VERSION, FieldChange, Plan, PlanError, Summary,
};

/// Where the plan's JSON Schema is checked in, relative to the repository root.
pub const PLAN_SCHEMA_PATH: &str = "schemas/plan.schema.json";

/// The last line of a plan that changes nothing and met no error.
pub const NO_CHANGES: &str = "No changes. Azure and Kubernetes match identity.toml.";

/// Unchanged lines shown around each change in a long text.
const CONTEXT_LINES: usize = 3;

const KNOWN_AFTER_APPLY: &str = "(known after apply)";

// ---------------------------------------------------------------------------------------------
// What every form shares

/// `Plan: 1 to add, 0 to change, 0 to replace, 0 to destroy, 0 to adopt.`
pub fn summary_line(summary: Summary) -> String {
    format!(
        "Plan: {} to add, {} to change, {} to replace, {} to destroy, {} to adopt.",
        summary.add, summary.change, summary.replace, summary.destroy, summary.adopt
    )
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn wording(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "will be replaced",
        Action::Delete => "will be destroyed",
        Action::Adopt => "will be adopted",
        Action::NoOp | Action::Read => "is in sync",
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "destroy",
        Action::Adopt => "adopt",
        Action::NoOp => "no-op",
        Action::Read => "read",
    }
}

/// The legend entry of an action's symbol.
fn meaning(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update in place",
        Action::Replace => "replace (destroy, then create)",
        Action::Delete => "destroy",
        Action::Adopt => "adopt (take over an existing object)",
        Action::NoOp | Action::Read => "no change",
    }
}

/// What apply changes, in plan order.
fn changes(plan: &Plan) -> Vec<&Change> {
    plan.changes
        .iter()
        .filter(|c| c.action.is_change())
        .collect()
}

/// Resources of the config apply leaves alone (in sync, or only read).
fn in_sync(plan: &Plan) -> usize {
    plan.changes
        .iter()
        .filter(|c| !c.action.is_change() && !c.not_in_config)
        .count()
}

/// Live objects the config does not name that apply leaves alone (what AKS made, what was on
/// an identity when wiform adopted it), each with why.
fn left_alone(plan: &Plan) -> Option<String> {
    let lines: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| !c.action.is_change() && c.not_in_config)
        .map(|c| {
            format!(
                "  {}: {}\n",
                c.address,
                c.reason.as_deref().unwrap_or("left alone")
            )
        })
        .collect();
    (!lines.is_empty()).then(|| format!("Left alone:\n{}", lines.concat()))
}

/// The notes under a resource's title: `not in config`, then the reason unless it says the same.
fn notes(change: &Change) -> Vec<&str> {
    let mut notes = Vec::new();
    if change.not_in_config {
        notes.push("not in config");
    }
    if let Some(reason) = change.reason.as_deref()
        && !notes.contains(&reason)
    {
        notes.push(reason);
    }
    notes
}

/// Not set before and not set after (an optional field left out): not worth a line, nor a
/// place in the count of unchanged attributes.
fn is_absent(field: &FieldChange) -> bool {
    field.before.is_none() && matches!(field.after, After::Removed)
}

/// The fields to show (those that change) and how many unchanged ones are left out.
fn shown_fields(change: &Change) -> (Vec<&FieldChange>, usize) {
    let shown: Vec<&FieldChange> = change.changed_fields().collect();
    let hidden = change
        .fields
        .iter()
        .filter(|f| !f.is_changed() && !is_absent(f))
        .count();
    (shown, hidden)
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

// ---------------------------------------------------------------------------------------------
// Values as HCL

fn quote(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// Map keys stay bare when HCL would allow it (`team`), else they are quoted.
fn key_text(key: &str) -> String {
    let mut chars = key.chars();
    let bare = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { key.to_string() } else { quote(key) }
}

/// A value on one line: `"text"`, `["a", "b"]`, `{ team = "orders" }`.
fn inline(value: &Value) -> String {
    match value {
        Value::String(text) => quote(text),
        Value::Array(items) if items.is_empty() => "[]".to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) if map.is_empty() => "{}".to_string(),
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", key_text(k), inline(v)))
                .collect();
            format!("{{ {} }}", entries.join(", "))
        }
        other => other.to_string(),
    }
}

fn has_multiline_text(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\n'),
        Value::Array(items) => items.iter().any(has_multiline_text),
        Value::Object(map) => map.values().any(has_multiline_text),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Colours

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED_BOLD: &str = "\x1b[1;31m";
const RED_UNDERLINE: &str = "\x1b[4;31m";
const GREEN_UNDERLINE: &str = "\x1b[4;32m";

/// How to draw: colours or not, and the width a map or a list must fit to stay on one line.
#[derive(Debug, Clone, Copy)]
struct Pen {
    color: bool,
    width: usize,
}

impl Pen {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color && !text.is_empty() {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// An action's symbol in its colour; replace is red and green like Terraform's.
    fn symbol(self, symbol: &str) -> String {
        match symbol {
            "+" => self.paint(GREEN, symbol),
            "-" => self.paint(RED, symbol),
            "~" | "<=" => self.paint(YELLOW, symbol),
            "-/+" => format!("{}/{}", self.paint(RED, "-"), self.paint(GREEN, "+")),
            other => other.to_string(),
        }
    }

    fn mark(self, mark: Mark) -> String {
        self.symbol(mark.symbol())
    }
}

/// What happens to one attribute, map entry or list element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Add,
    Remove,
    Update,
    Keep,
}

impl Mark {
    fn symbol(self) -> &'static str {
        match self {
            Mark::Add => "+",
            Mark::Remove => "-",
            Mark::Update => "~",
            Mark::Keep => " ",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lines of the human plan
//
// A value is drawn as lines: the first continues the line it starts on (`name = ` so far, `column`
// characters wide), the others are whole lines. `indent` is the column of the mark of the line
// the value starts on; entries of a multi-line map or list sit at `indent + 4`, their closing
// bracket at `indent + 2`, the text of a heredoc at `indent + 6`, as in Terraform.

/// The value after apply, as an entry sees it.
#[derive(Clone, Copy)]
enum To<'a> {
    Value(&'a Value),
    Unknown,
    Removed,
}

/// Prefixes the first line with `head`.
fn starting(head: String, mut lines: Vec<String>) -> Vec<String> {
    match lines.first_mut() {
        Some(first) => first.insert_str(0, &head),
        None => lines.push(head),
    }
    lines
}

/// Appends `tail` to the last line.
fn ending(mut lines: Vec<String>, tail: &str) -> Vec<String> {
    if let Some(last) = lines.last_mut() {
        last.push_str(tail);
    }
    lines
}

/// `value` alone, every nested entry marked with `mark`.
fn value_lines(value: &Value, indent: usize, column: usize, mark: Mark, pen: Pen) -> Vec<String> {
    let one_line = inline(value);
    let fits = column + width(&one_line) <= pen.width && !has_multiline_text(value);
    match value {
        Value::String(text) if text.contains('\n') => {
            let mut lines = vec!["<<-EOT".to_string()];
            lines.extend(text.lines().map(|l| format!("{}{l}", pad(indent + 6))));
            lines.push(format!("{}EOT", pad(indent + 2)));
            lines
        }
        Value::Object(map) if !map.is_empty() && !fits => {
            let key_width = map.keys().map(|k| width(&key_text(k))).max().unwrap_or(0);
            let mut lines = vec!["{".to_string()];
            for (key, item) in map {
                lines.extend(entry(
                    &key_text(key),
                    key_width,
                    indent + 4,
                    mark,
                    pen,
                    |column| value_lines(item, indent + 4, column, mark, pen),
                ));
            }
            lines.push(format!("{}}}", pad(indent + 2)));
            lines
        }
        Value::Array(items) if !items.is_empty() && !fits => {
            let mut lines = vec!["[".to_string()];
            for item in items {
                let head = format!("{}{} ", pad(indent + 4), pen.mark(mark));
                let item = value_lines(item, indent + 4, indent + 6, mark, pen);
                lines.extend(ending(starting(head, item), ","));
            }
            lines.push(format!("{}]", pad(indent + 2)));
            lines
        }
        _ => vec![one_line],
    }
}

/// `<mark> <label> = <value>`, the label padded to `label_width`; `value` gets the column the
/// value starts at.
fn entry(
    label: &str,
    label_width: usize,
    indent: usize,
    mark: Mark,
    pen: Pen,
    value: impl FnOnce(usize) -> Vec<String>,
) -> Vec<String> {
    let head = format!("{}{} {label:<label_width$} = ", pad(indent), pen.mark(mark));
    starting(head, value(indent + 2 + label_width + 3))
}

/// One attribute or map entry going from `before` to `after`; nothing when both are absent.
fn change_lines(
    label: &str,
    label_width: usize,
    before: Option<&Value>,
    after: To<'_>,
    indent: usize,
    pen: Pen,
) -> Vec<String> {
    let line = |mark, value: &dyn Fn(usize) -> Vec<String>| {
        entry(label, label_width, indent, mark, pen, value)
    };
    match (before, after) {
        (None, To::Value(after)) => line(Mark::Add, &|column| {
            value_lines(after, indent, column, Mark::Add, pen)
        }),
        (None, To::Unknown) => line(Mark::Add, &|_| vec![KNOWN_AFTER_APPLY.to_string()]),
        (Some(before), To::Removed) => ending(
            line(Mark::Remove, &|column| {
                value_lines(before, indent, column, Mark::Remove, pen)
            }),
            " -> null",
        ),
        (Some(before), To::Unknown) => ending(
            line(Mark::Update, &|column| {
                value_lines(before, indent, column, Mark::Keep, pen)
            }),
            &format!(" -> {KNOWN_AFTER_APPLY}"),
        ),
        (Some(before), To::Value(after)) => line(Mark::Update, &|column| {
            update_lines(before, after, indent, column, pen)
        }),
        (None, To::Removed) => Vec::new(),
    }
}

/// A value that changes: maps entry by entry, lists element by element, multi-line text (or
/// text wider than the page) line by line, anything else as `before -> after`.
fn update_lines(
    before: &Value,
    after: &Value,
    indent: usize,
    column: usize,
    pen: Pen,
) -> Vec<String> {
    match (before, after) {
        (Value::Object(before), Value::Object(after)) => object_diff(before, after, indent, pen),
        (Value::Array(before), Value::Array(after)) => array_diff(before, after, indent, pen),
        (Value::String(b), Value::String(a))
            if b.contains('\n')
                || a.contains('\n')
                || column + width(&quote(b)).max(width(&quote(a))) > pen.width =>
        {
            text_diff(b, a, indent, pen)
        }
        _ => {
            let mut lines = value_lines(before, indent, column, Mark::Remove, pen);
            let after_column = match lines.as_slice() {
                [only] => column + width(only) + 4,
                _ => indent + 6,
            };
            let after = value_lines(after, indent, after_column, Mark::Add, pen);
            let mut after = after.into_iter();
            if let (Some(last), Some(first)) = (lines.last_mut(), after.next()) {
                last.push_str(" -> ");
                last.push_str(&first);
            }
            lines.extend(after);
            lines
        }
    }
}

fn object_diff(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    indent: usize,
    pen: Pen,
) -> Vec<String> {
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let changed: Vec<&String> = keys
        .iter()
        .copied()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    let hidden = keys.len() - changed.len();
    let key_width = changed
        .iter()
        .map(|k| width(&key_text(k)))
        .max()
        .unwrap_or(0);
    let mut lines = vec!["{".to_string()];
    for key in changed {
        let to = after.get(key).map_or(To::Removed, To::Value);
        lines.extend(change_lines(
            &key_text(key),
            key_width,
            before.get(key),
            to,
            indent + 4,
            pen,
        ));
    }
    if hidden > 0 {
        lines.push(hidden_line(indent + 6, hidden, "unchanged element"));
    }
    lines.push(format!("{}}}", pad(indent + 2)));
    lines
}

/// A step through a diff: an operation to show, or a run of unchanged items left out.
enum Step {
    Show(DiffOp),
    Hidden(usize),
}

/// The operations of `diff` with [`CONTEXT_LINES`] unchanged items kept around each change and
/// every longer run of unchanged items counted instead.
fn steps<T: DiffableStr + ?Sized>(diff: &TextDiff<'_, '_, T>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut shown_to = 0;
    for group in diff.grouped_ops(CONTEXT_LINES) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let skipped = first.old_range().start.saturating_sub(shown_to);
        if skipped > 0 {
            steps.push(Step::Hidden(skipped));
        }
        shown_to = last.old_range().end;
        steps.extend(group.into_iter().map(Step::Show));
    }
    let skipped = diff.old_len().saturating_sub(shown_to);
    if skipped > 0 {
        steps.push(Step::Hidden(skipped));
    }
    steps
}

fn hidden_line(indent: usize, n: usize, what: &str) -> String {
    format!("{}# ({} hidden)", pad(indent), plural(n, what))
}

fn array_diff(before: &[Value], after: &[Value], indent: usize, pen: Pen) -> Vec<String> {
    let old: Vec<String> = before.iter().map(inline).collect();
    let new: Vec<String> = after.iter().map(inline).collect();
    let old: Vec<&str> = old.iter().map(String::as_str).collect();
    let new: Vec<&str> = new.iter().map(String::as_str).collect();
    let diff = TextDiff::from_slices(&old, &new);
    let mut lines = vec!["[".to_string()];
    for step in steps(&diff) {
        let op = match step {
            Step::Show(op) => op,
            Step::Hidden(n) => {
                lines.push(hidden_line(indent + 6, n, "unchanged element"));
                continue;
            }
        };
        for change in diff.iter_changes(&op) {
            let mark = match change.tag() {
                ChangeTag::Equal => Mark::Keep,
                ChangeTag::Delete => Mark::Remove,
                ChangeTag::Insert => Mark::Add,
            };
            lines.push(format!(
                "{}{} {},",
                pad(indent + 4),
                pen.mark(mark),
                change.value()
            ));
        }
    }
    lines.push(format!("{}]", pad(indent + 2)));
    lines
}

/// Text compared line by line, as a heredoc: changed lines marked, a few unchanged ones around
/// them, the rest counted. With colours, the changed words are underlined.
fn text_diff(before: &str, after: &str, indent: usize, pen: Pen) -> Vec<String> {
    let diff = TextDiff::from_lines(before, after);
    let mut lines = vec!["<<-EOT".to_string()];
    for step in steps(&diff) {
        let op = match step {
            Step::Show(op) => op,
            Step::Hidden(n) => {
                lines.push(hidden_line(indent + 6, n, "unchanged line"));
                continue;
            }
        };
        for change in diff.iter_inline_changes_deadline(&op, None) {
            let (mark, color, emphasis) = match change.tag() {
                ChangeTag::Equal => (Mark::Keep, "", ""),
                ChangeTag::Delete => (Mark::Remove, RED, RED_UNDERLINE),
                ChangeTag::Insert => (Mark::Add, GREEN, GREEN_UNDERLINE),
            };
            let mut text = String::new();
            for (emphasized, part) in change.iter_strings_lossy() {
                let part = part.trim_end_matches(['\n', '\r']);
                match (emphasized, mark) {
                    (_, Mark::Keep) => text.push_str(part),
                    (true, _) => text.push_str(&pen.paint(emphasis, part)),
                    (false, _) => text.push_str(&pen.paint(color, part)),
                }
            }
            lines.push(match mark {
                Mark::Keep => format!("{}{text}", pad(indent + 6)),
                _ => format!("{}{} {text}", pad(indent + 4), pen.mark(mark)),
            });
        }
    }
    lines.push(format!("{}EOT", pad(indent + 2)));
    lines
}

fn field_to(field: &FieldChange) -> To<'_> {
    match &field.after {
        After::Known(value) => To::Value(value),
        After::Unknown => To::Unknown,
        After::Removed => To::Removed,
    }
}

/// One resource: what happens and why, then its fields in a block.
fn human_change(change: &Change, pen: Pen) -> String {
    let mut out = format!(
        "  # {} {}\n",
        pen.paint(BOLD, &change.address.to_string()),
        wording(change.action)
    );
    for note in notes(change) {
        out.push_str(&format!("  # ({note})\n"));
    }
    let symbol = change.action.symbol();
    out.push_str(&format!(
        "{}{} {} {{\n",
        pad(3usize.saturating_sub(width(symbol))),
        pen.symbol(symbol),
        change.resource_type
    ));
    let (shown, hidden) = shown_fields(change);
    let name_width = shown.iter().map(|f| width(&f.name)).max().unwrap_or(0);
    for field in shown {
        let lines = change_lines(
            &field.name,
            name_width,
            field.before.as_ref(),
            field_to(field),
            6,
            pen,
        );
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if hidden > 0 {
        out.push_str(&hidden_line(8, hidden, "unchanged attribute"));
        out.push('\n');
    }
    out.push_str("    }\n");
    out
}

/// Continuation lines of a multi-line message, indented under its first line.
fn indented(text: &str, indent: usize) -> String {
    text.lines()
        .collect::<Vec<_>>()
        .join(&format!("\n{}", pad(indent)))
}

fn human_error(error: &PlanError, pen: Pen) -> String {
    let mut out = format!("{} ", pen.paint(RED_BOLD, "error:"));
    if let Some(address) = &error.address {
        out.push_str(&pen.paint(BOLD, &address.to_string()));
        out.push_str(": ");
    }
    out.push_str(&indented(&error.message, 2));
    out.push('\n');
    if let Some(hint) = &error.hint {
        out.push_str(&format!(
            "  {} {}\n",
            pen.paint(BOLD, "hint:"),
            indented(hint, 8)
        ));
    }
    out
}

/// The plan for people, Terraform-like: a legend of the symbols used, each resource apply
/// changes with its changed attributes (`+`, `~ before -> after`, `(known after apply)`,
/// `-> null`), how many resources are in sync, the errors with their hints, and the summary
/// line (or [`NO_CHANGES`]).
pub fn human(plan: &Plan, style: Style) -> String {
    let pen = Pen {
        color: style.color,
        width: style.width,
    };
    let mut sections: Vec<String> = Vec::new();
    if !plan.targets.is_empty() {
        let mut note = String::from(
            "Only these resources, and what they depend on, were planned (--target):\n",
        );
        for target in &plan.targets {
            note.push_str(&format!("  - {target}\n"));
        }
        sections.push(note);
    }
    let changes = changes(plan);
    if !changes.is_empty() {
        let used: BTreeSet<Action> = changes.iter().map(|c| c.action).collect();
        let mut legend = String::from("Actions are shown with these symbols:\n");
        for action in used {
            let symbol = action.symbol();
            legend.push_str(&format!(
                "{}{} {}\n",
                pad(3usize.saturating_sub(width(symbol))),
                pen.symbol(symbol),
                meaning(action)
            ));
        }
        sections.push(legend);
        sections.push("wiform will perform the following actions:\n".to_string());
        sections.extend(changes.iter().map(|c| human_change(c, pen)));
    }
    let in_sync = in_sync(plan);
    if in_sync > 0 {
        sections.push(format!("{} in sync.\n", plural(in_sync, "resource")));
    }
    sections.extend(left_alone(plan));
    sections.extend(plan.errors.iter().map(|e| human_error(e, pen)));
    if changes.is_empty() && plan.errors.is_empty() {
        sections.push(format!("{NO_CHANGES}\n"));
    } else {
        let line = summary_line(plan.summary());
        let rest = line.strip_prefix("Plan:").unwrap_or(&line);
        sections.push(format!("{}{rest}\n", pen.paint(BOLD, "Plan:")));
    }
    sections.join("\n")
}

// ---------------------------------------------------------------------------------------------
// JSON

/// A wiform plan: what `apply` would do to make Azure and Kubernetes match identity.toml
/// (`wiform plan --output json`). Within a `format_version`, fields are only ever added.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "wiform plan")]
struct PlanDocument<'a> {
    #[serde(flatten)]
    plan: &'a Plan,
    /// How many resources each action touches: the numbers of the `Plan:` line.
    summary: Summary,
}

/// The plan as pretty JSON with its summary counts, as described by `schemas/plan.schema.json`.
pub fn json(plan: &Plan) -> String {
    let document = PlanDocument {
        plan,
        summary: plan.summary(),
    };
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

/// The JSON Schema of [`json`]'s output (draft-07, like identity.toml's), pretty-printed with a
/// trailing newline.
pub fn plan_schema_json() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<PlanDocument<'static>>();
    if let Some(version) = schema
        .pointer_mut("/properties/format_version")
        .and_then(Value::as_object_mut)
    {
        version.insert(
            "description".to_string(),
            "Version of the plan's JSON shape; within a version, fields are only ever added."
                .into(),
        );
        version.insert("const".to_string(), FORMAT_VERSION.into());
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

// ---------------------------------------------------------------------------------------------
// Markdown

/// Text in a table cell: one line, with the characters markdown would act on escaped.
pub(crate) fn cell(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '<' | '>' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text as a code span in a table cell: fenced by more backticks than it holds, `|` escaped
/// (GitHub reads a table's pipes before its code spans).
pub(crate) fn code_cell(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest = longest_run(&text, '`');
    let fence = "`".repeat(longest + 1);
    let space = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{space}{text}{space}{fence}")
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for x in text.chars() {
        run = if x == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Free text (messages, hints) in markdown: backticks stay code, HTML does not get through.
pub(crate) fn prose(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A field as the lines of a ```diff block: `+` and `-` in the first column, the rest as in
/// the human plan. Both sides are drawn whole and compared line by line, so a long text or a
/// multi-line map shows only its changed lines (and a few around them).
fn diff_field(field: &FieldChange, name_width: usize, out: &mut Vec<String>) {
    let pen = Pen {
        color: false,
        width: Style::plain().width,
    };
    // Each side as whole lines with a free first column for the diff's marker.
    let side = |value: To<'_>| -> Vec<String> {
        let lines = match value {
            To::Value(value) => value_lines(value, 0, 2 + name_width + 3, Mark::Keep, pen),
            To::Unknown => vec![KNOWN_AFTER_APPLY.to_string()],
            To::Removed => return Vec::new(),
        };
        starting(format!("  {:<name_width$} = ", field.name), lines)
    };
    let mut before = field
        .before
        .as_ref()
        .map_or_else(Vec::new, |b| side(To::Value(b)));
    let mut after = side(field_to(field));
    let marked =
        |marker: char, line: &str| format!("{marker}{}", line.get(1..).unwrap_or_default());
    // The `name = <<-EOT` or `name = {` line and the closing one always show.
    let both_long = |b: &Vec<String>, a: &Vec<String>| b.len() > 1 && a.len() > 1;
    let head = (both_long(&before, &after) && before.first() == after.first()).then(|| {
        after.remove(0);
        before.remove(0)
    });
    let tail = (both_long(&before, &after) && before.last() == after.last())
        .then(|| {
            after.pop();
            before.pop()
        })
        .flatten();
    out.extend(head);
    let old: Vec<&str> = before.iter().map(String::as_str).collect();
    let new: Vec<&str> = after.iter().map(String::as_str).collect();
    let diff = TextDiff::from_slices(&old, &new);
    for step in steps(&diff) {
        match step {
            Step::Show(op) => {
                for change in diff.iter_changes(&op) {
                    let marker = match change.tag() {
                        ChangeTag::Equal => ' ',
                        ChangeTag::Delete => '-',
                        ChangeTag::Insert => '+',
                    };
                    out.push(marked(marker, change.value()));
                }
            }
            Step::Hidden(n) => out.push(hidden_line(6, n, "unchanged line")),
        }
    }
    out.extend(tail);
}

fn markdown_change(change: &Change) -> String {
    let (shown, hidden) = shown_fields(change);
    let name_width = shown.iter().map(|f| width(&f.name)).max().unwrap_or(0);
    let mut lines = Vec::new();
    for field in shown {
        diff_field(field, name_width, &mut lines);
    }
    if hidden > 0 {
        lines.push(hidden_line(2, hidden, "unchanged attribute"));
    }
    let body = lines.join("\n");
    let fence = "`".repeat(longest_run(&body, '`').max(2) + 1);
    let mut out = format!(
        "<details><summary><code>{}</code> <b>{}</b> <i>({})</i> {}</summary>\n\n",
        html(change.action.symbol()),
        html(&change.address.to_string()),
        html(change.resource_type.as_str()),
        wording(change.action)
    );
    for note in notes(change) {
        out.push_str(&format!("_{}_\n\n", cell(note)));
    }
    out.push_str(&format!("{fence}diff\n{body}\n{fence}\n\n</details>\n"));
    out
}

/// The plan as GitHub-flavoured markdown for a pull-request comment or a CI job summary: the
/// summary line, a table of the changes, each resource's attribute diff folded in a
/// `<details>`, then the errors with their hints.
pub fn markdown(plan: &Plan) -> String {
    let mut sections: Vec<String> = vec![format!("### wiform plan: {}\n", code_cell(&plan.stack))];
    if !plan.targets.is_empty() {
        let targets: Vec<String> = plan
            .targets
            .iter()
            .map(|t| code_cell(&t.to_string()))
            .collect();
        sections.push(format!(
            "> Only these resources, and what they depend on, were planned (`--target`): {}\n",
            targets.join(", ")
        ));
    }
    let changes = changes(plan);
    let in_sync = match in_sync(plan) {
        0 => String::new(),
        n => format!(" {} in sync.", plural(n, "resource")),
    };
    if changes.is_empty() && plan.errors.is_empty() {
        sections.push(format!("{NO_CHANGES}{in_sync}\n"));
    } else {
        sections.push(format!("**{}**{in_sync}\n", summary_line(plan.summary())));
    }
    if !changes.is_empty() {
        let mut table =
            String::from("| Action | Address | Type | Reason |\n| --- | --- | --- | --- |\n");
        for change in &changes {
            table.push_str(&format!(
                "| {} {} | {} | {} | {} |\n",
                code_cell(change.action.symbol()),
                verb(change.action),
                code_cell(&change.address.to_string()),
                code_cell(change.resource_type.as_str()),
                cell(&notes(change).join("; "))
            ));
        }
        sections.push(table);
        sections.extend(changes.iter().map(|c| markdown_change(c)));
    }
    if !plan.errors.is_empty() {
        let mut errors = String::from("#### Errors\n\n");
        for error in &plan.errors {
            errors.push_str("- ");
            if let Some(address) = &error.address {
                errors.push_str(&format!("{}: ", code_cell(&address.to_string())));
            }
            errors.push_str(&indented(&prose(&error.message), 2));
            errors.push('\n');
            if let Some(hint) = &error.hint {
                errors.push_str(&format!("  - **hint:** {}\n", indented(&prose(hint), 4)));
            }
        }
        sections.push(errors);
    }
    sections.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUB: &str = "/subscriptions/bbbbbbbb-0000-4000-8000-000000000001";
    const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const PROD_ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/aaaaaaaa-0000-4000-8000-000000000001/5c1f7e0a-3d2b-4f6e-9a8c-1b2d3e4f5a6b/";

    fn known(name: &str, before: Option<Value>, after: Value) -> FieldChange {
        FieldChange {
            name: name.into(),
            before,
            after: After::Known(after),
            computed: false,
        }
    }

    fn new(name: &str, after: Value) -> FieldChange {
        known(name, None, after)
    }

    fn same(name: &str, value: Value) -> FieldChange {
        known(name, Some(value.clone()), value)
    }

    fn unknown(name: &str, before: Option<Value>, computed: bool) -> FieldChange {
        FieldChange {
            name: name.into(),
            before,
            after: After::Unknown,
            computed,
        }
    }

    fn gone(name: &str, before: Option<Value>) -> FieldChange {
        FieldChange {
            name: name.into(),
            before,
            after: After::Removed,
            computed: false,
        }
    }

    fn change(address: &str, kind: &str, action: Action, fields: Vec<FieldChange>) -> Change {
        Change {
            address: address.parse().unwrap(),
            resource_type: kind.parse().unwrap(),
            action,
            reason: None,
            id: None,
            fields,
            not_in_config: false,
            depends_on: Vec::new(),
        }
    }

    fn plan(changes: Vec<Change>, errors: Vec<PlanError>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            stack: "orders".into(),
            config_file: "identity.toml".parse().unwrap(),
            changes,
            errors,
            targets: Vec::new(),
            fingerprint: "9f2c4e1a7b3d5f60".into(),
        }
    }

    fn role_grant(role: &str, scope: &str) -> String {
        format!("role_grant.orders-api[{role:?} @ {SUB}{scope}]")
    }

    /// (a) A new stack: everything is created.
    fn creation_plan() -> Plan {
        let rg = change(
            "resource_group.rg-orders",
            "resource_group",
            Action::Create,
            vec![
                new("name", json!("rg-orders")),
                new("location", json!("westeurope")),
                new("tags[\"team\"]", json!("orders")),
            ],
        );
        let mut identity = change(
            "identity.orders-api",
            "managed_identity",
            Action::Create,
            vec![
                new("name", json!("orders-api")),
                new("resource_group", json!("rg-orders")),
                new("location", json!("westeurope")),
                new("tags[\"team\"]", json!("orders")),
                unknown("client_id", None, true),
                unknown("principal_id", None, true),
            ],
        );
        identity.depends_on = vec!["resource_group.rg-orders".parse().unwrap()];
        let credential = |address: &str, name: &str, issuer: Option<&str>, subject: &str| {
            let mut c = change(
                address,
                "federated_credential",
                Action::Create,
                vec![
                    new("name", json!(name)),
                    match issuer {
                        Some(issuer) => new("issuer", json!(issuer)),
                        None => unknown("issuer", None, false),
                    },
                    new("subject", json!(subject)),
                    new("audiences", json!(["api://AzureADTokenExchange"])),
                ],
            );
            c.depends_on = vec!["identity.orders-api".parse().unwrap()];
            c
        };
        let mut staging = credential(
            "federated_credential.orders-api/staging:orders/orders-api",
            "staging-orders-orders-api",
            None,
            "system:serviceaccount:orders:orders-api",
        );
        staging.reason = Some("the cluster's issuer is known once its OIDC issuer is on".into());
        let mut role = change(
            &role_grant(
                "Storage Blob Data Contributor",
                "/resourceGroups/rg-orders/providers/Microsoft.Storage/storageAccounts/ordersdata",
            ),
            "role_assignment",
            Action::Create,
            vec![
                new("role", json!("Storage Blob Data Contributor")),
                new(
                    "scope",
                    json!(format!(
                        "{SUB}/resourceGroups/rg-orders/providers/Microsoft.Storage/storageAccounts/ordersdata"
                    )),
                ),
                unknown("principal_id", None, false),
                gone("condition", None),
            ],
        );
        role.depends_on = vec!["identity.orders-api".parse().unwrap()];
        let namespace = change(
            "namespace.prod/orders",
            "namespace",
            Action::Create,
            vec![new("name", json!("orders"))],
        );
        let account = change(
            "service_account.prod/orders/orders-api",
            "service_account",
            Action::Create,
            vec![
                new("namespace", json!("orders")),
                new("name", json!("orders-api")),
                unknown(
                    "annotations[\"azure.workload.identity/client-id\"]",
                    None,
                    false,
                ),
                new(
                    "annotations[\"azure.workload.identity/tenant-id\"]",
                    json!(TENANT),
                ),
            ],
        );
        let mut cluster = change("cluster.prod", "cluster", Action::Read, Vec::new());
        cluster.id = Some(format!(
            "{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-prod"
        ));
        plan(
            vec![
                cluster,
                rg,
                identity,
                credential(
                    "federated_credential.orders-api/prod:orders/orders-api",
                    "prod-orders-orders-api",
                    Some(PROD_ISSUER),
                    "system:serviceaccount:orders:orders-api",
                ),
                credential(
                    "federated_credential.orders-api/github-main",
                    "github-main",
                    Some("https://token.actions.githubusercontent.com"),
                    "repo:contoso/orders:ref:refs/heads/main",
                ),
                staging,
                role,
                namespace,
                account,
            ],
            Vec::new(),
        )
    }

    /// (b) An existing stack: an update, a replace, a delete, an adoption and an error.
    fn mixed_plan() -> Plan {
        let mut identity = change(
            "identity.orders-api",
            "managed_identity",
            Action::Update,
            vec![
                same("name", json!("orders-api")),
                same("resource_group", json!("rg-orders")),
                same("location", json!("westeurope")),
                known("tags[\"cost-center\"]", None, json!("cc-4711")),
                gone("tags[\"owner\"]", Some(json!("jane@contoso.com"))),
                known(
                    "tags[\"team\"]",
                    Some(json!("orders")),
                    json!("orders-platform"),
                ),
                unknown(
                    "client_id",
                    Some(json!("11111111-2222-4333-8444-555555555555")),
                    true,
                ),
                unknown(
                    "principal_id",
                    Some(json!("66666666-7777-4888-9999-000000000000")),
                    true,
                ),
            ],
        );
        identity.id = Some(format!(
            "{SUB}/resourceGroups/rg-orders/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders-api"
        ));
        let mut credential = change(
            "federated_credential.orders-api/github-main",
            "federated_credential",
            Action::Replace,
            vec![
                same("name", json!("github-main")),
                same(
                    "issuer",
                    json!("https://token.actions.githubusercontent.com"),
                ),
                known(
                    "subject",
                    Some(json!("repo:contoso/orders:ref:refs/heads/main")),
                    json!("repo:contoso/orders:environment:production"),
                ),
                same("audiences", json!(["api://AzureADTokenExchange"])),
            ],
        );
        credential.reason = Some(
            "subject changed: federated credentials are immutable on issuer and subject, so replace"
                .into(),
        );
        let mut account = change(
            "service_account.prod/orders/orders-api",
            "service_account",
            Action::Update,
            vec![
                same("namespace", json!("orders")),
                same("name", json!("orders-api")),
                same(
                    "annotations[\"azure.workload.identity/client-id\"]",
                    json!("11111111-2222-4333-8444-555555555555"),
                ),
                known(
                    "annotations[\"azure.workload.identity/service-account-token-expiration\"]",
                    Some(json!("3600")),
                    json!("86400"),
                ),
            ],
        );
        account.id = Some("orders/orders-api".into());
        let reader_scope = "/resourceGroups/rg-orders";
        let mut delete = change(
            &role_grant("Reader", reader_scope),
            "role_assignment",
            Action::Delete,
            vec![
                gone("role", Some(json!("Reader"))),
                gone("scope", Some(json!(format!("{SUB}{reader_scope}")))),
                gone(
                    "principal_id",
                    Some(json!("66666666-7777-4888-9999-000000000000")),
                ),
            ],
        );
        delete.reason = Some("not in config".into());
        delete.not_in_config = true;
        delete.id = Some(format!(
            "{SUB}{reader_scope}/providers/Microsoft.Authorization/roleAssignments/3f1e2d3c-4b5a-4697-8877-665544332211"
        ));
        let acr_scope =
            "/resourceGroups/rg-shared/providers/Microsoft.ContainerRegistry/registries/contosoacr";
        let mut adopt = change(
            &role_grant("AcrPull", acr_scope),
            "role_assignment",
            Action::Adopt,
            vec![
                same("role", json!("AcrPull")),
                same("scope", json!(format!("{SUB}{acr_scope}"))),
                same(
                    "principal_id",
                    json!("66666666-7777-4888-9999-000000000000"),
                ),
                gone("condition", None),
            ],
        );
        adopt.id = Some(format!(
            "{SUB}{acr_scope}/providers/Microsoft.Authorization/roleAssignments/0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
        ));
        let in_sync = |address: &str, kind: &str, name: &str| {
            change(address, kind, Action::NoOp, vec![same("name", json!(name))])
        };
        plan(
            vec![
                in_sync("resource_group.rg-orders", "resource_group", "rg-orders"),
                identity,
                credential,
                in_sync(
                    "federated_credential.orders-api/prod:orders/orders-api",
                    "federated_credential",
                    "prod-orders-orders-api",
                ),
                adopt,
                in_sync("namespace.prod/orders", "namespace", "orders"),
                account,
                delete,
            ],
            vec![
                PlanError {
                    address: Some("identity.billing-worker".parse().unwrap()),
                    message: "could not list the federated credentials of billing-worker: 403 AuthorizationFailed".into(),
                    hint: Some("give the signed-in principal `Managed Identity Contributor` on resource group rg-billing (or `Reader` to plan only)".into()),
                },
                PlanError {
                    address: None,
                    message: "cluster staging: could not reach https://aks-staging-dns-4f2a.hcp.westeurope.azmk8s.io:443: connection timed out".into(),
                    hint: None,
                },
            ],
        )
    }

    const CONDITION_BEFORE: &str = "(
 (
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})
  AND
  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write'})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'orders'
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'invoices'
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'shipping'
 )
)";

    /// (d) A long ABAC condition edited in one place, and a list.
    fn condition_plan() -> Plan {
        let condition_after = CONDITION_BEFORE
            .replace("'shipping'", "'shipments'")
            .replacen(
                "  AND\n",
                "  AND\n  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete'})\n  AND\n",
                1,
            );
        let scope = format!(
            "{SUB}/resourceGroups/rg-orders/providers/Microsoft.Storage/storageAccounts/ordersdata"
        );
        let role = change(
            &role_grant(
                "Storage Blob Data Contributor",
                "/resourceGroups/rg-orders/providers/Microsoft.Storage/storageAccounts/ordersdata",
            ),
            "role_assignment",
            Action::Update,
            vec![
                same("role", json!("Storage Blob Data Contributor")),
                same("scope", json!(scope)),
                same(
                    "principal_id",
                    json!("66666666-7777-4888-9999-000000000000"),
                ),
                known(
                    "condition",
                    Some(json!(CONDITION_BEFORE)),
                    json!(condition_after),
                ),
            ],
        );
        let credential = change(
            "federated_credential.orders-api/prod:orders/orders-api",
            "federated_credential",
            Action::Update,
            vec![
                same("name", json!("prod-orders-orders-api")),
                known(
                    "audiences",
                    Some(json!(["api://AzureADTokenExchange", "api://orders"])),
                    json!(["api://AzureADTokenExchange", "api://orders-v2"]),
                ),
            ],
        );
        plan(vec![role, credential], Vec::new())
    }

    fn plain(plan: &Plan) -> String {
        human(plan, Style::plain())
    }

    #[test]
    fn human_creation() {
        insta::assert_snapshot!(plain(&creation_plan()));
    }

    #[test]
    fn human_mixed() {
        insta::assert_snapshot!(plain(&mixed_plan()));
    }

    #[test]
    fn human_no_changes() {
        let mut p = mixed_plan();
        p.changes.retain(|c| !c.action.is_change());
        p.errors.clear();
        let text = plain(&p);
        assert_eq!(
            text,
            "3 resources in sync.\n\nNo changes. Azure and Kubernetes match identity.toml.\n"
        );
        let empty = plan(Vec::new(), Vec::new());
        assert_eq!(plain(&empty), format!("{NO_CHANGES}\n"));
        let md = markdown(&p);
        assert_eq!(
            md,
            "### wiform plan: `orders`\n\nNo changes. Azure and Kubernetes match identity.toml. 3 resources in sync.\n"
        );
    }

    #[test]
    fn errors_without_changes_still_end_with_the_summary() {
        let mut p = mixed_plan();
        p.changes.retain(|c| !c.action.is_change());
        let text = plain(&p);
        assert!(text.contains("error: identity.billing-worker: could not list"));
        assert!(text.contains("\n  hint: give the signed-in principal"));
        assert!(
            text.ends_with(
                "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy, 0 to adopt.\n"
            )
        );
        assert!(!text.contains("will perform"));
    }

    #[test]
    fn human_long_condition_is_diffed_line_by_line() {
        insta::assert_snapshot!(plain(&condition_plan()));
    }

    #[test]
    fn markdown_creation() {
        insta::assert_snapshot!(markdown(&creation_plan()));
    }

    #[test]
    fn markdown_mixed() {
        insta::assert_snapshot!(markdown(&mixed_plan()));
    }

    #[test]
    fn markdown_long_condition() {
        insta::assert_snapshot!(markdown(&condition_plan()));
    }

    #[test]
    fn json_creation() {
        insta::assert_snapshot!(json(&creation_plan()));
    }

    #[test]
    fn json_mixed() {
        insta::assert_snapshot!(json(&mixed_plan()));
    }

    /// `apply PLANFILE` can read the JSON back: the summary is extra, the plan is whole.
    #[test]
    fn the_json_reads_back_as_the_plan() {
        for p in [creation_plan(), mixed_plan(), condition_plan()] {
            let back: Plan = serde_json::from_str(&json(&p)).unwrap();
            assert_eq!(back, p);
        }
    }

    #[test]
    fn colours_only_when_asked() {
        for p in [creation_plan(), mixed_plan(), condition_plan()] {
            let coloured = human(
                &p,
                Style {
                    color: true,
                    width: 100,
                },
            );
            assert!(coloured.contains("\x1b["), "{coloured}");
            assert!(!plain(&p).contains('\x1b'));
            assert!(!markdown(&p).contains('\x1b'));
            assert!(!json(&p).contains('\x1b'));
        }
        let coloured = human(
            &mixed_plan(),
            Style {
                color: true,
                width: 100,
            },
        );
        assert!(coloured.contains("\x1b[31m-\x1b[0m/\x1b[32m+\x1b[0m federated_credential {"));
        assert!(coloured.contains("\x1b[1midentity.orders-api\x1b[0m will be updated in place"));
    }

    #[test]
    fn maps_and_lists_stay_on_one_line_when_they_fit() {
        let value = json!({"team": "orders", "azure.workload.identity/use": "true"});
        let narrow = Pen {
            color: false,
            width: 40,
        };
        let wide = Pen {
            color: false,
            width: 100,
        };
        assert_eq!(
            value_lines(&value, 6, 20, Mark::Add, wide),
            ["{ \"azure.workload.identity/use\" = \"true\", team = \"orders\" }"]
        );
        assert_eq!(
            value_lines(&value, 6, 20, Mark::Add, narrow),
            [
                "{",
                "          + \"azure.workload.identity/use\" = \"true\"",
                "          + team                          = \"orders\"",
                "        }",
            ]
        );
        assert_eq!(
            value_lines(&json!(["a", "b"]), 6, 20, Mark::Add, wide),
            ["[\"a\", \"b\"]"]
        );
        assert_eq!(value_lines(&json!({}), 6, 20, Mark::Add, narrow), ["{}"]);
        let before = json!({"team": "orders", "env": "prod", "owner": "jane"});
        let after = json!({"team": "orders-platform", "env": "prod", "cost": "cc-1"});
        assert_eq!(
            update_lines(&before, &after, 6, 20, wide),
            [
                "{",
                "          + cost  = \"cc-1\"",
                "          - owner = \"jane\" -> null",
                "          ~ team  = \"orders\" -> \"orders-platform\"",
                "            # (1 unchanged element hidden)",
                "        }",
            ]
        );
        assert_eq!(
            update_lines(&json!(1), &json!("one"), 6, 20, wide),
            ["1 -> \"one\""]
        );
    }

    #[test]
    fn long_single_line_text_is_diffed_on_lines_of_its_own() {
        let before = json!(format!(
            "{SUB}/resourceGroups/rg-orders/providers/Microsoft.Storage/storageAccounts/ordersdata"
        ));
        let after = json!(format!(
            "{SUB}/resourceGroups/rg-orders/providers/Microsoft.Storage/storageAccounts/ordersarchive"
        ));
        let pen = Pen {
            color: false,
            width: 100,
        };
        assert_eq!(
            update_lines(&before, &after, 6, 20, pen),
            [
                "<<-EOT".to_string(),
                format!("          - {}", before.as_str().unwrap()),
                format!("          + {}", after.as_str().unwrap()),
                "        EOT".to_string(),
            ]
        );
    }

    #[test]
    fn table_cells_are_escaped() {
        assert_eq!(cell("a|b `c` *d*\ne"), "a\\|b \\`c\\` \\*d\\* e");
        assert_eq!(code_cell("a|b"), "`a\\|b`");
        assert_eq!(code_cell("a`b"), "``a`b``");
        assert_eq!(code_cell("`a"), "`` `a ``");
    }

    fn schema() -> Value {
        serde_json::from_str(&plan_schema_json()).unwrap()
    }

    /// Fails when `schemas/plan.schema.json` differs from the plan types;
    /// `UPDATE_SCHEMA=1 cargo test plan_schema` rewrites it.
    #[test]
    fn plan_schema_file_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PLAN_SCHEMA_PATH);
        let generated = plan_schema_json();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{PLAN_SCHEMA_PATH} is out of date: run `UPDATE_SCHEMA=1 cargo test plan_schema` and commit it"
        );
    }

    fn keys(value: &Value) -> BTreeSet<String> {
        value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn definition<'a>(schema: &'a Value, name: &str) -> &'a Value {
        &schema["definitions"][name]
    }

    /// The schema names exactly the keys the JSON holds (every optional one set here), and
    /// requires the ones always there.
    #[test]
    fn plan_schema_describes_the_json() {
        let s = schema();
        assert_eq!(s["title"], "wiform plan");
        assert_eq!(s["properties"]["format_version"]["const"], FORMAT_VERSION);
        let mut p = mixed_plan();
        p.targets = vec!["identity.orders-api".parse().unwrap()];
        p.changes[1].depends_on = vec!["resource_group.rg-orders".parse().unwrap()];
        let document: Value = serde_json::from_str(&json(&p)).unwrap();
        assert_eq!(keys(&document), keys(&s["properties"]));
        let required: BTreeSet<String> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = [
            "format_version",
            "stack",
            "config_file",
            "changes",
            "errors",
            "fingerprint",
            "summary",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(required, expected);
        assert_eq!(
            keys(&document["summary"]),
            keys(&definition(&s, "Summary")["properties"])
        );
        let all = |name: &str, items: &[Value]| {
            let union: BTreeSet<String> = items.iter().flat_map(keys).collect();
            assert_eq!(union, keys(&definition(&s, name)["properties"]), "{name}");
        };
        let changes = document["changes"].as_array().unwrap();
        all("Change", changes);
        let fields: Vec<Value> = changes
            .iter()
            .flat_map(|c| c["fields"].as_array().unwrap().clone())
            .collect();
        all("FieldChange", &fields);
        all("PlanError", document["errors"].as_array().unwrap());
        assert_eq!(document["summary"]["destroy"], 1);
    }
}
