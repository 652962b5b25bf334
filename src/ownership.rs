//! Ownership markers: how wiform recognises, without a state file, the objects it owns.
//!
//! Kubernetes objects wiform creates (namespaces, service accounts) carry
//!
//! - the label `app.kubernetes.io/managed-by: wiform`,
//! - the label `wiform.io/stack: <stack name>` (the `name` of identity.toml), so that pruning stays
//!   inside one stack,
//! - the annotation `wiform.io/spec-hash: <hash>`, a digest of the spec last applied, so that
//!   `drift` can tell "changed outside wiform" (the live fields no longer hash to it) from "the
//!   config changed since the last apply" (the desired spec no longer hashes to it).
//!
//! Azure objects carry the same facts as tags (`wiform-stack`, `wiform-spec-hash`: Azure tag names
//! may not contain `/`); the validator reserves both key spaces in identity.toml.
//!
//! The hash is the first 16 hex digits of the SHA-256 of a canonical JSON document (object keys
//! sorted at every level, no whitespace), so it is stable across runs, platforms and serde
//! settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Kubernetes label naming the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on objects wiform owns.
pub const MANAGED_BY: &str = "wiform";
/// Kubernetes label holding the stack name.
pub const STACK_LABEL: &str = "wiform.io/stack";
/// Kubernetes annotation holding the spec hash.
pub const SPEC_HASH_ANNOTATION: &str = "wiform.io/spec-hash";

/// Azure tag holding the stack name (Azure tag names may not contain `/`).
pub const STACK_TAG: &str = "wiform-stack";
/// Azure tag holding the spec hash.
pub const SPEC_HASH_TAG: &str = "wiform-spec-hash";

/// Number of hex digits kept of the SHA-256 digest.
pub const HASH_LEN: usize = 16;

/// The marker read back from a live object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// The stack that owns the object.
    pub stack: String,
    /// The spec hash recorded at the last apply, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
}

impl Marker {
    pub fn is_stack(&self, stack: &str) -> bool {
        self.stack == stack
    }
}

/// Who owns a live object, as its markers say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "snake_case")]
pub enum Owner {
    /// No wiform marker: created by someone else (or by hand).
    Unowned,
    /// Owned by a wiform stack (this one or another).
    Stack(Marker),
}

impl Owner {
    /// True when the object carries the marker of `stack`.
    pub fn is_stack(&self, stack: &str) -> bool {
        matches!(self, Owner::Stack(m) if m.is_stack(stack))
    }

    pub fn marker(&self) -> Option<&Marker> {
        match self {
            Owner::Stack(m) => Some(m),
            Owner::Unowned => None,
        }
    }

    /// `stack "orders"` or `no wiform marker`, for messages.
    pub fn describe(&self) -> String {
        match self {
            Owner::Stack(m) => format!("stack \"{}\"", m.stack),
            Owner::Unowned => "no wiform marker".to_string(),
        }
    }
}

/// The labels that mark a Kubernetes object as owned by `stack`.
pub fn kube_labels(stack: &str) -> [(&'static str, String); 2] {
    [
        (MANAGED_BY_LABEL, MANAGED_BY.to_string()),
        (STACK_LABEL, stack.to_string()),
    ]
}

/// True for the label and annotation keys that hold markers (they are not part of the spec).
pub fn is_marker_key(key: &str) -> bool {
    matches!(key, MANAGED_BY_LABEL | STACK_LABEL | SPEC_HASH_ANNOTATION)
}

/// Reads the marker of a Kubernetes object: owned when `app.kubernetes.io/managed-by` is `wiform`
/// and `wiform.io/stack` names a stack. Either label alone is not ownership (another tool may use
/// `managed-by`; a copied label is not a claim).
pub fn read_kube_marker(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Owner {
    let managed = labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY);
    match labels.get(STACK_LABEL) {
        Some(stack) if managed && !stack.is_empty() => Owner::Stack(Marker {
            stack: stack.clone(),
            spec_hash: annotations
                .get(SPEC_HASH_ANNOTATION)
                .filter(|h| !h.is_empty())
                .cloned(),
        }),
        _ => Owner::Unowned,
    }
}

/// Reads the marker of an Azure object from its tags (tag names compared without regard to
/// case, as Azure does).
pub fn read_azure_marker(tags: &BTreeMap<String, String>) -> Owner {
    let get = |name: &str| {
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    match get(STACK_TAG) {
        Some(stack) if !stack.is_empty() => Owner::Stack(Marker {
            stack,
            spec_hash: get(SPEC_HASH_TAG).filter(|h| !h.is_empty()),
        }),
        _ => Owner::Unowned,
    }
}

/// The stable hash of any serialisable spec: SHA-256 of its canonical JSON, first
/// [`HASH_LEN`] hex digits.
pub fn spec_hash<T: Serialize + ?Sized>(spec: &T) -> String {
    // Serialising plain data (strings, maps, numbers) cannot fail; should a type ever refuse,
    // its error text is hashed instead, which is still stable.
    let value = serde_json::to_value(spec).unwrap_or_else(|e| Value::String(e.to_string()));
    hash_text(&canonical_json(&value))
}

/// The spec hash of a Kubernetes object: its kind, place and the labels and annotations wiform
/// sets, markers excluded. The same function hashes the desired object (before apply) and the
/// live one (the fields wiform's field manager owns), so the two agree when nothing changed.
pub fn kube_spec_hash(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> String {
    let without_markers = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        map.iter()
            .filter(|(k, _)| !is_marker_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    spec_hash(&serde_json::json!({
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "labels": without_markers(labels),
        "annotations": without_markers(annotations),
    }))
}

/// JSON with object keys sorted at every level and no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hash_text(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let mut hex = String::with_capacity(HASH_LEN);
    for byte in digest.as_ref() {
        if hex.len() >= HASH_LEN {
            break;
        }
        hex.push_str(&format!("{byte:02x}"));
    }
    hex.truncate(HASH_LEN);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sha256_of_known_text() {
        // SHA-256("abc") = ba7816bf8f01cfea…
        assert_eq!(hash_text("abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = serde_json::json!({"b": 1, "a": {"z": [2, {"y": 1, "x": "é"}], "c": null}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":null,"z":[2,{"x":"é","y":1}]},"b":1}"#
        );
        let b: Value =
            serde_json::from_str(r#"{"a":{"z":[2,{"x":"é","y":1}],"c":null},"b":1}"#).unwrap();
        assert_eq!(spec_hash(&a), spec_hash(&b));
        assert_eq!(spec_hash(&a).len(), HASH_LEN);
        assert!(spec_hash(&a).chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn kube_hash_ignores_markers_and_sees_every_spec_field() {
        let labels = map(&[("team", "orders")]);
        let annotations = map(&[("azure.workload.identity/client-id", "x")]);
        let base = kube_spec_hash("ServiceAccount", Some("ns"), "api", &labels, &annotations);
        let mut marked_labels = labels.clone();
        marked_labels.extend(map(&[(MANAGED_BY_LABEL, "wiform"), (STACK_LABEL, "s")]));
        let mut marked_annotations = annotations.clone();
        marked_annotations.insert(SPEC_HASH_ANNOTATION.into(), "0123".into());
        assert_eq!(
            kube_spec_hash(
                "ServiceAccount",
                Some("ns"),
                "api",
                &marked_labels,
                &marked_annotations
            ),
            base
        );
        let changed = map(&[("azure.workload.identity/client-id", "y")]);
        assert_ne!(
            kube_spec_hash("ServiceAccount", Some("ns"), "api", &labels, &changed),
            base
        );
        assert_ne!(
            kube_spec_hash(
                "ServiceAccount",
                Some("other"),
                "api",
                &labels,
                &annotations
            ),
            base
        );
        assert_ne!(
            kube_spec_hash("Namespace", Some("ns"), "api", &labels, &annotations),
            base
        );
        // A label moved to an annotation is a different spec.
        assert_ne!(
            kube_spec_hash("ServiceAccount", Some("ns"), "api", &annotations, &labels),
            base
        );
    }

    #[test]
    fn markers_need_both_labels() {
        let hash = map(&[(SPEC_HASH_ANNOTATION, "abcd")]);
        assert_eq!(
            read_kube_marker(
                &map(&[(MANAGED_BY_LABEL, "wiform"), (STACK_LABEL, "s")]),
                &hash
            ),
            Owner::Stack(Marker {
                stack: "s".into(),
                spec_hash: Some("abcd".into())
            })
        );
        assert_eq!(
            read_kube_marker(&map(&[(STACK_LABEL, "s")]), &hash),
            Owner::Unowned
        );
        assert_eq!(
            read_kube_marker(
                &map(&[(MANAGED_BY_LABEL, "Helm"), (STACK_LABEL, "s")]),
                &hash
            ),
            Owner::Unowned
        );
        assert_eq!(
            read_kube_marker(
                &map(&[(MANAGED_BY_LABEL, "wiform"), (STACK_LABEL, "")]),
                &hash
            ),
            Owner::Unowned
        );
        let owned = read_kube_marker(
            &map(&[(MANAGED_BY_LABEL, "wiform"), (STACK_LABEL, "s")]),
            &BTreeMap::new(),
        );
        assert!(owned.is_stack("s"));
        assert!(!owned.is_stack("t"));
        assert_eq!(owned.marker().and_then(|m| m.spec_hash.clone()), None);
        assert_eq!(owned.describe(), "stack \"s\"");
    }

    #[test]
    fn azure_tags_are_read_without_regard_to_case() {
        assert_eq!(
            read_azure_marker(&map(&[("Wiform-Stack", "s"), ("wiform-spec-hash", "ab")])),
            Owner::Stack(Marker {
                stack: "s".into(),
                spec_hash: Some("ab".into())
            })
        );
        assert_eq!(read_azure_marker(&map(&[("team", "x")])), Owner::Unowned);
    }
}
