//! Name, label and annotation rules of `k8s.io/apimachinery/pkg/util/validation/validation.go`
//! (`IsDNS1123Label`, `IsDNS1123Subdomain`, `IsQualifiedName`, `IsValidLabelValue`) and
//! `k8s.io/apimachinery/pkg/api/validation/objectmeta.go` (`ValidateAnnotations`, total size
//! 256 KiB), with their messages.

use serde_json::{Map, Value};

use super::errors::FieldError;

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const QUALIFIED_NAME_MAX: usize = 63;
const LABEL_VALUE_MAX: usize = 63;
const TOTAL_ANNOTATION_SIZE: usize = 256 * 1024;

const DNS1123_LABEL_ERROR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_ERROR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_ERROR: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const QUALIFIED_NAME_FULL_ERROR: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE_ERROR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && lower_alnum(b[0])
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|c| lower_alnum(*c) || *c == b'-')
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_name_part_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn max_length(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// `IsDNS1123Label` (namespace names).
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        errors.push(max_length(DNS1123_LABEL_MAX));
    }
    if !is_label_shape(s) {
        errors.push(DNS1123_LABEL_ERROR.to_string());
    }
    errors
}

/// `IsDNS1123Subdomain` (service account names).
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errors.push(max_length(DNS1123_SUBDOMAIN_MAX));
    }
    if !s.split('.').all(is_label_shape) {
        errors.push(DNS1123_SUBDOMAIN_ERROR.to_string());
    }
    errors
}

/// `IsQualifiedName` (label and annotation keys): `[prefix/]name`.
pub fn qualified_name(s: &str) -> Vec<String> {
    let parts: Vec<&str> = s.split('/').collect();
    let (prefix, name) = match parts.as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => return vec![QUALIFIED_NAME_FULL_ERROR.to_string()],
    };
    let mut errors = Vec::new();
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errors.push("prefix part must be non-empty".to_string());
        } else {
            errors.extend(
                dns1123_subdomain(prefix)
                    .into_iter()
                    .map(|m| format!("prefix part {m}")),
            );
        }
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        errors.push(format!("name part {}", max_length(QUALIFIED_NAME_MAX)));
    }
    if !name.is_empty() && !is_name_part_shape(name) {
        errors.push(QUALIFIED_NAME_ERROR.to_string());
    }
    errors
}

/// `IsValidLabelValue`.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if s.len() > LABEL_VALUE_MAX {
        errors.push(max_length(LABEL_VALUE_MAX));
    }
    if !s.is_empty() && !is_name_part_shape(s) {
        errors.push(LABEL_VALUE_ERROR.to_string());
    }
    errors
}

/// `ValidateLabels`: keys are qualified names, values label values; each error is reported at
/// `metadata.labels` (keys in sorted order: Go iterates its map at random).
pub fn labels(labels: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (key, value) in labels {
        for message in qualified_name(key) {
            errors.push(FieldError::invalid(
                "metadata.labels",
                &Value::String(key.clone()),
                &message,
            ));
        }
        let value = value.as_str().unwrap_or_default();
        for message in label_value(value) {
            errors.push(FieldError::invalid(
                "metadata.labels",
                &Value::String(value.to_string()),
                &message,
            ));
        }
    }
    errors
}

/// `ValidateAnnotations`: keys are qualified names (checked lowercased), 256 KiB in all.
pub fn annotations(annotations: &Map<String, Value>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut size = 0;
    for (key, value) in annotations {
        for message in qualified_name(&key.to_ascii_lowercase()) {
            errors.push(FieldError::invalid(
                "metadata.annotations",
                &Value::String(key.clone()),
                &message,
            ));
        }
        size += key.len() + value.as_str().map_or(0, str::len);
    }
    if size > TOTAL_ANNOTATION_SIZE {
        errors.push(FieldError {
            reason: "FieldValueTooLong",
            field: "metadata.annotations".into(),
            body: format!("Too long: may not be more than {TOTAL_ANNOTATION_SIZE} bytes"),
        });
    }
    errors
}

/// `ValidateObjectMeta`'s name check with the resource's rule; `name or generateName is
/// required` when both are empty.
pub fn object_name(name: &str, rule: fn(&str) -> Vec<String>) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )];
    }
    rule(name)
        .into_iter()
        .map(|m| FieldError::invalid("metadata.name", &Value::String(name.to_string()), &m))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_1123() {
        assert!(dns1123_label("contract-1a").is_empty());
        assert!(!dns1123_label("Bad_Name").is_empty());
        assert!(!dns1123_label(&"a".repeat(64)).is_empty());
        assert!(dns1123_subdomain("a.b-c").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
    }

    #[test]
    fn keys_and_values_follow_the_label_rules() {
        assert!(qualified_name("azure.workload.identity/client-id").is_empty());
        assert!(qualified_name("wiform.io/stack").is_empty());
        assert!(qualified_name("team").is_empty());
        assert_eq!(qualified_name("-bad"), [QUALIFIED_NAME_ERROR]);
        assert_eq!(qualified_name("x/y/z"), [QUALIFIED_NAME_FULL_ERROR]);
        assert_eq!(qualified_name("/a"), ["prefix part must be non-empty"]);
        assert!(label_value("").is_empty());
        assert!(label_value("11111111-1111-1111-1111-111111111111").is_empty());
        assert_eq!(label_value("bad value"), [LABEL_VALUE_ERROR]);
    }
}
