//! Which parts of wiform may know which: a scan of the sources, failing with the file and line
//! of each mention out of place.
//!
//! The sandbox (`wiform_sandbox`) is reached from two files only: the `sandbox` command and the
//! `--sandbox` session. They start it in this process (its server API) and talk to it, or to
//! its state directory, through `wiform_sandbox::client`, never through the state file's model.
//! The core (config, graph, kinds, engine, providers, renderers) never mentions it.

use std::path::{Path, PathBuf};

/// The only files of `src/` that may use the sandbox crate.
const SANDBOX_USERS: &[&str] = &["src/commands/sandbox.rs", "src/sandbox_session.rs"];

/// What those files may name in it: the server API and the client module.
const SANDBOX_API: &[&str] = &[
    "start",
    "Options",
    "Faults",
    "Running",
    "StartError",
    "client",
];

/// The core: it never mentions the sandbox, whatever else changes.
const CORE: &[&str] = &[
    "src/engine/",
    "src/config/",
    "src/graph.rs",
    "src/kinds/",
    "src/providers/",
    "src/render/",
];

const SANDBOX: &str = "wiform_sandbox";

/// Which module of wiform must never name which (docs/architecture.md, "Code map"): providers
/// are the kinds' SDK and know nothing of the graph, the kinds or the engine; nothing below the
/// commands knows the commands, and renderers are reached from the commands only.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "src/providers/",
        &[
            "crate::graph",
            "crate::kinds",
            "crate::engine",
            "crate::commands",
            "crate::render",
            "crate::sandbox_session",
        ],
    ),
    (
        "src/config/",
        &[
            "crate::graph",
            "crate::kinds",
            "crate::engine",
            "crate::providers",
            "crate::commands",
            "crate::render",
        ],
    ),
    (
        "src/graph.rs",
        &["crate::engine", "crate::commands", "crate::render"],
    ),
    (
        "src/kinds/",
        &["crate::commands", "crate::render", "crate::sandbox_session"],
    ),
    (
        "src/engine/",
        &["crate::commands", "crate::render", "crate::sandbox_session"],
    ),
    (
        "src/render/",
        &[
            "crate::commands",
            "crate::providers",
            "crate::sandbox_session",
        ],
    ),
    (
        "src/import/",
        &[
            "crate::graph",
            "crate::kinds",
            "crate::engine",
            "crate::providers",
            "crate::render",
            "crate::commands",
            "crate::sandbox_session",
        ],
    ),
];

/// What `file` names of a layer it must not know, each as `file:line: …`. Unit tests (from the
/// first `#[cfg(test)]` on) may reach further, to run a whole pipeline.
fn layer_violations(file: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (layer, forbidden) in LAYERS.iter().filter(|(l, _)| file.starts_with(l)) {
        for (index, line) in text
            .lines()
            .enumerate()
            .take_while(|(_, l)| l.trim() != "#[cfg(test)]")
        {
            // Doc comments may point the reader elsewhere; code may not.
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for name in forbidden.iter().filter(|n| line.contains(*n)) {
                found.push(format!(
                    "{file}:{}: {layer} must never use {name}: {}",
                    index + 1,
                    line.trim()
                ));
            }
        }
    }
    found
}

/// Every `.rs` file under `dir`, as `src/…` paths with `/` separators, sorted.
fn rust_files(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((relative, path));
        }
    }
}

/// The first segment of each path that follows `wiform_sandbox::` on `line` (each item of a
/// `wiform_sandbox::{…}` group; a group that goes on past this line is read to its end).
fn named_items(line: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(SANDBOX) {
        rest = &rest[at + SANDBOX.len()..];
        let Some(path) = rest.strip_prefix("::") else {
            continue;
        };
        if let Some(group) = path.strip_prefix('{') {
            let group = group.split('}').next().unwrap_or(group);
            items.extend(group.split(',').filter_map(first_segment));
        } else if let Some(item) = first_segment(path) {
            items.push(item);
        }
    }
    items
}

fn first_segment(path: &str) -> Option<String> {
    let segment: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!segment.is_empty()).then_some(segment)
}

/// Joins a `use wiform_sandbox::{` group that spans lines into one line, so that its items are
/// checked too; other lines are returned as they are, each with its own line number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        if let Some((start, mut joined)) = open.take() {
            joined.push_str(line.trim());
            if line.contains('}') {
                lines.push((start, joined));
            } else {
                open = Some((start, joined));
            }
            continue;
        }
        if line.contains(&format!("{SANDBOX}::{{")) && !line.contains('}') {
            open = Some((index + 1, line.trim_end().to_string()));
        } else {
            lines.push((index + 1, line.to_string()));
        }
    }
    lines.extend(open);
    lines
}

/// What is wrong with `file` (its path under the root, e.g. `src/graph.rs`) holding `text`.
fn violations(file: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let core = CORE.iter().any(|c| file.starts_with(c));
    let user = SANDBOX_USERS.contains(&file);
    for (number, line) in logical_lines(text) {
        if !line.contains(SANDBOX) {
            continue;
        }
        if core {
            found.push(format!(
                "{file}:{number}: the core ({}) must never know the sandbox, but this line \
                 mentions {SANDBOX}: {}",
                CORE.join(", "),
                line.trim()
            ));
        } else if !user {
            found.push(format!(
                "{file}:{number}: only {} may use the sandbox crate, but this line mentions \
                 {SANDBOX}: {}",
                SANDBOX_USERS.join(" and "),
                line.trim()
            ));
        } else {
            for item in named_items(&line) {
                if !SANDBOX_API.contains(&item.as_str()) {
                    found.push(format!(
                        "{file}:{number}: {SANDBOX}::{item} is the sandbox's own: use its server \
                         API ({}) or {SANDBOX}::client: {}",
                        SANDBOX_API[..SANDBOX_API.len() - 1].join(", "),
                        line.trim()
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn only_the_sandbox_command_and_session_use_the_sandbox_and_only_through_its_client() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(root, &root.join("src"), &mut files);
    assert!(
        files.iter().any(|(f, _)| f == "src/sandbox_session.rs"),
        "the scan sees src/"
    );
    let mut found = Vec::new();
    for (file, path) in &files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        found.extend(violations(file, &text));
    }
    assert!(
        found.is_empty(),
        "the sandbox is reached from where it must not be:\n{}",
        found.join("\n")
    );
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(root, &root.join("src"), &mut files);
    let mut found = Vec::new();
    for (file, path) in &files {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        found.extend(layer_violations(file, &text));
    }
    assert!(
        found.is_empty(),
        "a module uses one it must not know:\n{}",
        found.join("\n")
    );
    // The rule bites: a provider that reached for the graph would be named.
    let caught = layer_violations(
        "src/providers/azure/observe.rs",
        "/// see crate::graph\nuse crate::graph::Graph;\n#[cfg(test)]\nuse crate::engine;\n",
    );
    assert_eq!(
        caught,
        [
            "src/providers/azure/observe.rs:2: src/providers/ must never use crate::graph: use crate::graph::Graph;"
        ]
    );
}

#[test]
fn the_scan_names_the_file_and_line_of_each_mention_out_of_place() {
    let core = violations(
        "src/engine/plan.rs",
        "//! plan\nuse wiform_sandbox::client;\n",
    );
    assert_eq!(core.len(), 1, "{core:?}");
    assert!(
        core[0].starts_with("src/engine/plan.rs:2: the core (") && core[0].contains("never"),
        "{}",
        core[0]
    );
    assert_eq!(violations("src/graph.rs", "// wiform_sandbox\n").len(), 1);
    assert_eq!(
        violations("src/kinds/identity.rs", "wiform_sandbox::start\n").len(),
        1
    );

    let elsewhere = violations(
        "src/builtin_roles.rs",
        "pub use wiform_sandbox::builtin_roles::*;\n",
    );
    assert_eq!(elsewhere.len(), 1, "{elsewhere:?}");
    assert!(
        elsewhere[0].starts_with("src/builtin_roles.rs:1: only src/commands/sandbox.rs and"),
        "{}",
        elsewhere[0]
    );

    let session = "use wiform_sandbox::client::{self, Seed};\nuse wiform_sandbox::{\n    Options, Running,\n    state::Store,\n};\nlet x = wiform_sandbox::start(o);\nlet s: wiform_sandbox::state::State;\n";
    let internals = violations("src/sandbox_session.rs", session);
    assert_eq!(
        internals
            .iter()
            .map(|v| v.split(": ").next().unwrap())
            .collect::<Vec<_>>(),
        ["src/sandbox_session.rs:2", "src/sandbox_session.rs:7"],
        "{internals:?}"
    );
    assert!(internals[0].contains("wiform_sandbox::state is the sandbox's own"));
    assert!(
        violations(
            "src/commands/sandbox.rs",
            "use wiform_sandbox::{Faults, Options};\n"
        )
        .is_empty()
    );
    assert!(violations("src/commands/plan.rs", "use crate::sandbox_session;\n").is_empty());
}
