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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::read::{self, Field};
    use serde_json::Value;

    fn schema() -> Value {
        serde_json::from_str(&identity_schema_json()).unwrap()
    }

    /// Fails when `schemas/identity.schema.json` differs from the model;
    /// `UPDATE_SCHEMA=1 cargo test schema` rewrites it.
    #[test]
    fn schema_file_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA_PATH);
        let generated = identity_schema_json();
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{SCHEMA_PATH} is out of date: run `UPDATE_SCHEMA=1 cargo test schema` and commit it"
        );
    }

    fn properties<'a>(schema: &'a Value, object: &'a Value) -> Vec<String> {
        let object = match object.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.rsplit('/').next().unwrap();
                &schema["definitions"][name]
            }
            None => object,
        };
        let mut keys: Vec<String> = object["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    fn names(fields: &[Field]) -> Vec<String> {
        let mut keys: Vec<String> = fields.iter().map(|f| f.name.to_string()).collect();
        keys.sort();
        keys
    }

    /// The reader (hand-written for diagnostics) and the schema (derived from the model) accept
    /// the same keys in every table.
    #[test]
    fn schema_and_reader_accept_the_same_keys() {
        let s = schema();
        let defs = &s["definitions"];
        assert_eq!(properties(&s, &s), names(read::CONFIG_FIELDS));
        for (definition, fields) in [
            ("Azure", read::AZURE_FIELDS),
            ("CustomCloud", read::CUSTOM_CLOUD_FIELDS),
            ("ResourceGroup", read::RESOURCE_GROUP_FIELDS),
            ("Cluster", read::CLUSTER_FIELDS),
            ("Identity", read::IDENTITY_FIELDS),
            ("ServiceAccount", read::SERVICE_ACCOUNT_FIELDS),
            ("Federation", read::FEDERATION_FIELDS),
            ("RoleGrant", read::ROLE_GRANT_FIELDS),
        ] {
            assert_eq!(
                properties(&s, &defs[definition]),
                names(fields),
                "{definition}"
            );
            assert_eq!(
                defs[definition]["additionalProperties"],
                Value::Bool(false),
                "{definition}"
            );
        }
        let mut required: Vec<&str> = s["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        required.sort();
        assert_eq!(required, ["azure", "name", "version"]);
    }
}
