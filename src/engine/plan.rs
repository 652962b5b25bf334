//! A plan: what `apply` would do, as plain data. Rendering (human, JSON, markdown) lives in
//! `crate::render::plan`; computing it in [`super::diff`].
//!
//! The JSON form of [`Plan`] is a stable, versioned interface (`schemas/plan.schema.json`):
//! fields are only ever added within a `format_version`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::address::Address;
use crate::kinds::Kind;

/// Version of the plan's JSON shape.
pub const FORMAT_VERSION: u32 = 1;

/// What apply would do to make Azure and Kubernetes match identity.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    pub format_version: u32,
    /// The stack (`name` in identity.toml).
    pub stack: String,
    /// The config file the plan was made from.
    pub config_file: String,
    /// Every resource, in apply order (dependencies first; deletes last, dependents first).
    /// Resources already in sync are listed with action `no_op`.
    pub changes: Vec<Change>,
    /// What could not be observed or planned; the plan holds everything else.
    pub errors: Vec<PlanError>,
    /// Only these addresses (and what they depend on) were planned (`--target`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Address>,
    /// A hash of everything observed that the changes depend on; `apply PLANFILE` refuses the
    /// plan when a fresh observation hashes differently.
    pub fingerprint: String,
}

/// What happens to one resource.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The object does not exist: apply creates it.
    Create,
    /// The object exists and wiform owns it: apply changes it in place.
    Update,
    /// The object must be deleted and created again (a field that cannot change in place).
    Replace,
    /// wiform owns the object and the config no longer asks for it: apply deletes it.
    Delete,
    /// The object exists without wiform's marker and matches the config: apply takes it over
    /// (writes the marker and any field that differs).
    Adopt,
    /// In sync.
    NoOp,
    /// Only read (an AKS cluster whose settings wiform does not change).
    Read,
}

impl Action {
    /// The symbol the human plan shows.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Adopt => "<=",
            Action::NoOp | Action::Read => " ",
        }
    }

    /// Does apply do anything?
    pub fn is_change(self) -> bool {
        !matches!(self, Action::NoOp | Action::Read)
    }
}

/// One resource in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// e.g. `identity.orders-api`, `service_account.prod/orders/orders-api`.
    pub address: Address,
    /// e.g. `managed_identity`, `federated_credential`, `service_account`.
    #[serde(rename = "type")]
    pub resource_type: Kind,
    pub action: Action,
    /// Why, when it is not obvious: "issuer changed: federated credentials are immutable on
    /// issuer and subject, so replace", "not in config".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The object's id where it exists (ARM id, Graph object id, Kubernetes namespace/name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The fields wiform manages, before and after. On create, `before` is absent; on delete,
    /// `after` is.
    pub fields: Vec<FieldChange>,
    /// The object is not in the config (an extra credential or role assignment on an identity
    /// this stack owns, or a resource removed from the config).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_in_config: bool,
    /// Addresses of the resources this one needs first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<Address>,
}

impl Change {
    /// The fields whose value changes.
    pub fn changed_fields(&self) -> impl Iterator<Item = &FieldChange> {
        self.fields.iter().filter(|f| f.is_changed())
    }
}

/// A field's value before and after apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub name: String,
    /// Absent when the object (or the field) does not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    pub after: After,
    /// Computed by Azure (client id, principal id): shown, never a cause for change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub computed: bool,
}

impl FieldChange {
    pub fn is_changed(&self) -> bool {
        match &self.after {
            After::Known(after) => self.before.as_ref() != Some(after),
            After::Unknown => !self.computed || self.before.is_none(),
            After::Removed => self.before.is_some(),
        }
    }
}

/// A value after apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", content = "value", rename_all = "snake_case")]
pub enum After {
    Known(Value),
    /// `(known after apply)`: an output of a resource not created yet.
    Unknown,
    /// The field (or the object) goes away.
    Removed,
}

/// Something that could not be observed or planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlanError {
    /// The resource concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub replace: usize,
    pub destroy: usize,
    pub adopt: usize,
}

impl Summary {
    pub fn is_empty(&self) -> bool {
        *self == Summary::default()
    }
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for change in &self.changes {
            match change.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => s.replace += 1,
                Action::Delete => s.destroy += 1,
                Action::Adopt => s.adopt += 1,
                Action::NoOp | Action::Read => {}
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        !self.summary().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_change_unless_equal_or_computed_and_known() {
        let same = FieldChange {
            name: "location".into(),
            before: Some(json!("westeurope")),
            after: After::Known(json!("westeurope")),
            computed: false,
        };
        assert!(!same.is_changed());
        let computed_existing = FieldChange {
            name: "client_id".into(),
            before: Some(json!("c")),
            after: After::Unknown,
            computed: true,
        };
        assert!(!computed_existing.is_changed());
        let computed_new = FieldChange {
            before: None,
            ..computed_existing
        };
        assert!(computed_new.is_changed());
    }

    #[test]
    fn the_summary_counts_actions() {
        let change = |action| Change {
            address: Address::Identity("a".into()),
            resource_type: Kind::ManagedIdentity,
            action,
            reason: None,
            id: None,
            fields: Vec::new(),
            not_in_config: false,
            depends_on: Vec::new(),
        };
        let plan = Plan {
            format_version: FORMAT_VERSION,
            stack: "s".into(),
            config_file: "identity.toml".into(),
            changes: vec![
                change(Action::Create),
                change(Action::Create),
                change(Action::Delete),
                change(Action::NoOp),
                change(Action::Adopt),
            ],
            errors: Vec::new(),
            targets: Vec::new(),
            fingerprint: String::new(),
        };
        assert_eq!(
            plan.summary(),
            Summary {
                add: 2,
                change: 0,
                replace: 0,
                destroy: 1,
                adopt: 1
            }
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["changes"][0]["type"], "managed_identity");
        assert_eq!(json["changes"][0]["address"], "identity.a");
        assert_eq!(json["changes"][0]["action"], "create");
    }
}
