//! Kubernetes `Status` failures, worded as kube-apiserver words them.
//!
//! Constructors follow `k8s.io/apimachinery/pkg/api/errors/errors.go` (`NewNotFound`,
//! `NewAlreadyExists`, `NewForbidden`, `NewInvalid`, `NewBadRequest`, `NewMethodNotSupported`,
//! `NewApplyConflict`), the authorizer's wording follows
//! `k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go` (`forbiddenMessage`), and
//! the server-side apply conflict message follows
//! `k8s.io/apimachinery/pkg/util/managedfields/internal/conflict.go` (`NewConflictError`,
//! `getConflictMessage`). Every message here was also compared with the answers of the real
//! kube-apiserver that `tests/kube-server` runs.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::http::ApiError;

/// `metav1.StatusCause`: `{"reason","message","field"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn new(reason: &'static str, message: impl Into<String>, field: impl Into<String>) -> Self {
        Cause {
            reason,
            message: message.into(),
            field: field.into(),
        }
    }

    fn json(&self) -> Value {
        json!({ "reason": self.reason, "message": self.message, "field": self.field })
    }
}

/// A `field.Error` of `k8s.io/apimachinery/pkg/util/validation/field`: its `Error()` is
/// `{field}: {body}`, and its body `Invalid value: "x": msg`, `Required value: msg`, ….
#[derive(Debug, Clone)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub body: String,
}

impl FieldError {
    /// `field.Invalid(path, value, detail)`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueInvalid",
            field: field.into(),
            body: format!("Invalid value: {}: {detail}", go_value(value)),
        }
    }

    /// `field.Required(path, detail)`.
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueRequired",
            field: field.into(),
            body: format!("Required value: {detail}"),
        }
    }

    /// `field.NotSupported(path, value, supported)`.
    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        FieldError {
            reason: "FieldValueNotSupported",
            field: field.into(),
            body: format!(
                "Unsupported value: {value}: supported values: {}",
                supported.join(", ")
            ),
        }
    }

    /// `field.TooLong(path, value, max)`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            reason: "FieldValueTooLong",
            field: field.into(),
            body: format!("Too long: may not be more than {max} bytes"),
        }
    }

    /// `field.Forbidden(path, detail)`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        FieldError {
            reason: "FieldValueForbidden",
            field: field.into(),
            body: format!("Forbidden: {detail}"),
        }
    }

    fn message(&self) -> String {
        format!("{}: {}", self.field, self.body)
    }
}

/// How Go's `%#v`-ish `Invalid value: …` prints a value: strings quoted, numbers bare.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn status(
    code: StatusCode,
    reason: &str,
    message: impl Into<String>,
    details: Option<Value>,
) -> ApiError {
    let error = ApiError::kube(code, reason, message);
    match details {
        Some(details) => error.with_kube_details(details),
        None => error,
    }
}

/// `the server could not find the requested resource` (a path no handler serves).
pub fn no_such_resource() -> ApiError {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

/// `NewNotFound`: `serviceaccounts "x" not found`.
pub fn not_found(resource: &str, name: &str) -> ApiError {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{resource} \"{name}\" not found"),
        Some(json!({ "name": name, "kind": resource })),
    )
}

/// `NewAlreadyExists`: `namespaces "x" already exists`.
pub fn already_exists(resource: &str, name: &str) -> ApiError {
    status(
        StatusCode::CONFLICT,
        "AlreadyExists",
        format!("{resource} \"{name}\" already exists"),
        Some(json!({ "name": name, "kind": resource })),
    )
}

/// `NewForbidden(resource, name, err)`: `{resource} "{name}" is forbidden: {why}` (without the
/// name when there is none).
pub fn forbidden(resource: &str, name: &str, why: &str) -> ApiError {
    let (message, details) = if name.is_empty() {
        (
            format!("{resource} is forbidden: {why}"),
            json!({ "kind": resource }),
        )
    } else {
        (
            format!("{resource} \"{name}\" is forbidden: {why}"),
            json!({ "name": name, "kind": resource }),
        )
    };
    status(StatusCode::FORBIDDEN, "Forbidden", message, Some(details))
}

/// A request outside the API resources (`/api`, `/version`, …) the authorizer refused.
pub fn forbidden_path(user: &str, verb: &str, path: &str) -> ApiError {
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!("forbidden: User \"{user}\" cannot {verb} path \"{path}\""),
        Some(json!({})),
    )
}

/// The NamespaceLifecycle admission plugin: no new objects in a terminating namespace.
pub fn namespace_terminating(resource: &str, name: &str, namespace: &str) -> ApiError {
    status(
        StatusCode::FORBIDDEN,
        "Forbidden",
        format!(
            "{resource} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated"
        ),
        Some(json!({
            "name": name,
            "kind": resource,
            "causes": [Cause::new("NamespaceTerminating", format!("namespace {namespace} is being terminated"), "metadata.namespace").json()],
        })),
    )
}

pub fn unauthorized() -> ApiError {
    status(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Unauthorized",
        None,
    )
}

/// `NewBadRequest`: no details.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

/// A body kube-apiserver fails to decode deep inside (`failed to create typed patch object …`
/// of server-side apply, `couldn't get version/kind; json parse error` of DeleteOptions). The
/// real server answers these with a 500 that has no reason; the sandbox keeps its message but
/// answers 400 `BadRequest`, as it does for every malformed body (a client error, which clients
/// must not retry as a server fault).
pub fn undecodable(message: impl Into<String>) -> ApiError {
    bad_request(message)
}

/// `NewInvalid(kind, name, errs)`: 422, `{Kind[.group]} "{name}" is invalid: {errs}` (one error
/// as is, several as `[a, b]`), one cause per error.
pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> ApiError {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let aggregate = match errors {
        [] => String::new(),
        [one] => format!(": {}", one.message()),
        many => format!(
            ": [{}]",
            many.iter()
                .map(FieldError::message)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut details = json!({ "kind": kind, "causes": errors.iter().map(|e| Cause::new(e.reason, e.body.clone(), e.field.clone()).json()).collect::<Vec<_>>() });
    if !name.is_empty() {
        details["name"] = json!(name);
    }
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    status(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid",
        format!("{qualified} \"{name}\" is invalid{aggregate}"),
        Some(details),
    )
}

/// `NewMethodNotSupported`-like 405 of the router.
pub fn method_not_allowed() -> ApiError {
    status(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        Some(json!({})),
    )
}

/// A PATCH whose Content-Type is not a patch type.
pub fn unsupported_patch_type() -> ApiError {
    status(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        "415: Unsupported Media Type",
        Some(json!({})),
    )
}

/// A create body in a format the server does not decode.
pub fn unsupported_body_type() -> ApiError {
    status(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        None,
    )
}

/// 406 of the OIDC endpoints when the client accepts none of their representations.
pub fn not_acceptable(available: &str) -> ApiError {
    status(
        StatusCode::NOT_ACCEPTABLE,
        "NotAcceptable",
        format!("406: Not Acceptable\n\nAvailable representations: {available}"),
        Some(json!({})),
    )
}

/// `Operation cannot be fulfilled on …` (a failed precondition), 409 Conflict.
pub fn cannot_fulfil(kind: &str, name: &str, why: &str) -> ApiError {
    status(
        StatusCode::CONFLICT,
        "Conflict",
        format!("Operation cannot be fulfilled on {kind} \"{name}\": {why}"),
        Some(json!({ "name": name, "kind": kind })),
    )
}

/// One field another manager owns with another value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as `printManager` shows it: `"wiform"` (quoted), or for an Update entry
    /// `"kubectl" using v1`.
    pub manager: String,
    /// The structured-merge-diff path, e.g. `.metadata.labels.team`.
    pub path: String,
}

/// `NewConflictError` of the field manager: 409 `Conflict`; one conflict reads `Apply failed
/// with 1 conflict: conflict with "m": .path`, several are grouped by manager (sorted) as
/// `Apply failed with N conflicts: conflicts with "m1":\n- .a\n- .b\nconflicts with "m2":\n- .c`.
/// `details.causes` has one `FieldManagerConflict` per field, in the order given.
pub fn apply_conflict(conflicts: &[Conflict]) -> ApiError {
    let message = match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.path
        ),
        many => {
            let mut managers: Vec<&str> = many.iter().map(|c| c.manager.as_str()).collect();
            managers.sort_unstable();
            managers.dedup();
            let mut lines = Vec::new();
            for manager in managers {
                lines.push(format!("conflicts with {manager}:"));
                for conflict in many.iter().filter(|c| c.manager == manager) {
                    lines.push(format!("- {}", conflict.path));
                }
            }
            format!(
                "Apply failed with {} conflicts: {}",
                many.len(),
                lines.join("\n")
            )
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            Cause::new(
                "FieldManagerConflict",
                format!("conflict with {}", c.manager),
                c.path.clone(),
            )
            .json()
        })
        .collect();
    status(
        StatusCode::CONFLICT,
        "Conflict",
        message,
        Some(json!({ "causes": causes })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(error: &ApiError) -> String {
        match error {
            ApiError::Kube { message, .. } => message.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn conflicts_are_worded_like_the_field_manager() {
        let one = apply_conflict(&[Conflict {
            manager: "\"wiform\"".into(),
            path: ".metadata.annotations.azure.workload.identity/client-id".into(),
        }]);
        assert_eq!(
            message(&one),
            "Apply failed with 1 conflict: conflict with \"wiform\": .metadata.annotations.azure.workload.identity/client-id"
        );
        let three = apply_conflict(&[
            Conflict {
                manager: "\"m2\"".into(),
                path: ".metadata.annotations.b".into(),
            },
            Conflict {
                manager: "\"m1\"".into(),
                path: ".metadata.labels.a".into(),
            },
            Conflict {
                manager: "\"m1\"".into(),
                path: ".metadata.labels.z".into(),
            },
        ]);
        assert_eq!(
            message(&three),
            "Apply failed with 3 conflicts: conflicts with \"m1\":\n- .metadata.labels.a\n- .metadata.labels.z\nconflicts with \"m2\":\n- .metadata.annotations.b"
        );
    }

    #[test]
    fn invalid_aggregates_like_field_error_lists() {
        let one = invalid(
            "Namespace",
            "",
            "",
            &[FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        );
        assert_eq!(
            message(&one),
            "Namespace \"\" is invalid: metadata.name: Required value: name or generateName is required"
        );
        let two = invalid(
            "TokenRequest",
            "authentication.k8s.io",
            "",
            &[
                FieldError::invalid("a", &json!(1), "x"),
                FieldError::invalid("b", &json!("v"), "y"),
            ],
        );
        assert_eq!(
            message(&two),
            "TokenRequest.authentication.k8s.io \"\" is invalid: [a: Invalid value: 1: x, b: Invalid value: \"v\": y]"
        );
    }
}
