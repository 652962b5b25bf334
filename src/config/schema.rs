//! The JSON Schema of identity.toml, generated from the model. The checked-in copy lives at
//! `schemas/identity.schema.json`; a test keeps it current.

use schemars::generate::SchemaSettings;

use super::model::Config;

/// Where the schema is checked in, relative to the repository root.
pub const SCHEMA_PATH: &str = "schemas/identity.schema.json";

/// The schema as pretty-printed JSON with a trailing newline (draft-07: what taplo and
/// Even Better TOML understand best).
pub fn identity_schema_json() -> String {
    let generator = SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Config>();
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
