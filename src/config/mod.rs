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
    #[error("cannot read {path}: {source}")]
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
