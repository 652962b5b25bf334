//! identity.toml: reading, validating, and the JSON Schema.

pub mod diagnostic;
pub mod federation;
pub mod model;
pub mod names;
pub mod read;
pub mod schema;
pub mod suggest;
pub mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::Config;

/// A config file's name (as given by the user) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

/// The outcome of checking a file: a config when it has no errors, and every diagnostic.
#[derive(Debug)]
pub struct Checked {
    pub source: SourceFile,
    pub config: Option<Config>,
    pub diagnostics: Diagnostics,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    #[error("cannot read {path}")]
    #[diagnostic(
        code(config::unreadable),
        help("pass the file with -f PATH, or start from examples/quickstart/identity.toml")
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not UTF-8 text (invalid byte at line {line}, offset {offset})")]
    #[diagnostic(
        code(config::encoding),
        help("TOML files are UTF-8: re-save the file as UTF-8")
    )]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
}

/// Reads and checks a config file. Only the file system is touched.
pub fn load(path: &Path) -> Result<Checked, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        LoadError::NotUtf8 {
            path: path.to_path_buf(),
            line,
            offset,
        }
    })?;
    Ok(check(SourceFile {
        name: path.display().to_string(),
        text,
    }))
}

/// Checks config text: syntax, shape, then every semantic rule. Pure.
pub fn check(source: SourceFile) -> Checked {
    let mut diagnostics = Diagnostics::default();
    let config = read::read(&source.text, &mut diagnostics).map(|read| {
        validate::validate(&read.config, &read.incomplete, &mut diagnostics);
        read.config
    });
    diagnostics.sort();
    let config = config.filter(|_| !diagnostics.has_errors());
    Checked {
        source,
        config,
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Style, diagnostics};
    use proptest::prelude::*;

    /// Checks `text` the way `wiform validate` does, rendering included.
    fn check_and_render(text: String) {
        let checked = check(SourceFile {
            name: "fuzz.toml".into(),
            text,
        });
        let _ = diagnostics::render(&checked.source, &checked.diagnostics, Style::plain(), true);
        if let Some(config) = &checked.config {
            let graph = crate::graph::Graph::build(config);
            let _ = crate::render::graph::dot(&graph);
            let _ = crate::render::graph::json(&graph);
        }
    }

    /// TOML values, with keys drawn from the real format so that the checks run deep.
    fn toml_value() -> impl Strategy<Value = toml::Value> {
        let keys = prop::sample::select(vec![
            "version",
            "name",
            "azure",
            "tenant_id",
            "subscription_id",
            "location",
            "cloud",
            "arm",
            "graph",
            "authority",
            "clusters",
            "prod",
            "resource_group",
            "issuer",
            "kube_context",
            "enable_workload_identity",
            "identities",
            "api",
            "kind",
            "tags",
            "display_name",
            "service_accounts",
            "cluster",
            "namespace",
            "identity",
            "annotations",
            "labels",
            "token_expiration",
            "federation_name",
            "audiences",
            "federations",
            "subject",
            "role_grants",
            "role",
            "scope",
            "condition",
            "resource_groups",
            "x",
        ]);
        let strings = prop::sample::select(vec![
            "",
            "prod",
            "api",
            "managed",
            "application",
            "public",
            "https://a.example",
            "http://x",
            "Owner",
            "Reader",
            "/subscriptions/bbbbbbbb-0000-4000-8000-000000000001",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "resourceGroups/rg",
            "/",
            "//",
            "ünï",
            "a b",
        ])
        .prop_map(|s| toml::Value::String(s.to_string()));
        let leaf = prop_oneof![
            strings,
            any::<i64>().prop_map(toml::Value::Integer),
            any::<bool>().prop_map(toml::Value::Boolean),
            any::<f64>().prop_map(toml::Value::Float),
            ".{0,12}".prop_map(toml::Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
                prop::collection::vec((keys.clone(), inner), 0..8).prop_map(|entries| {
                    toml::Value::Table(
                        entries
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            check_and_render(String::from_utf8_lossy(&bytes).into_owned());
        }

        #[test]
        fn arbitrary_toml_never_panics(value in toml_value()) {
            if let toml::Value::Table(table) = value {
                check_and_render(toml::to_string(&table).unwrap_or_default());
            }
        }

        #[test]
        fn mutated_examples_never_panic(cut in 0usize..2000, insert in ".{0,8}") {
            let text = include_str!("../../examples/multi-cluster/identity.toml");
            let at = text.char_indices().map(|(i, _)| i).nth(cut % text.chars().count()).unwrap_or(0);
            check_and_render(format!("{}{insert}{}", &text[..at], &text[at..]));
        }
    }

    #[test]
    fn a_valid_file_yields_a_config() {
        let checked = check(SourceFile {
            name: "q.toml".into(),
            text: include_str!("../../examples/quickstart/identity.toml").into(),
        });
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        assert!(checked.config.is_some());
    }
}
