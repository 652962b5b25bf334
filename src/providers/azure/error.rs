//! Errors from ARM and Microsoft Graph, typed: which object, what wiform was doing, the API's
//! error code, message, target and request id, the HTTP status, and what to do about it.

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::error::Explain;

/// One error as the service reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiFailure {
    pub status: u16,
    /// `error.code` (ARM, Graph), or the top-level `code` of AKS's flat body.
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    /// `error.details[]`, flattened to (code, message) pairs.
    pub details: Vec<ErrorDetail>,
    /// `x-ms-request-id` (ARM), `request-id` (Graph), or the body's `innerError.request-id`.
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl ApiFailure {
    /// Reads an error answer. ARM and Graph wrap it in `{"error": {…}}` (common-types
    /// `ErrorResponse`, Graph's error resource); AKS often answers with the flat
    /// `{"code", "message"}` (fact sheet §0); anything else keeps the status and the text.
    pub fn parse(status: u16, body: &[u8], request_id: Option<String>) -> Self {
        let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error = match json.get("error") {
            Some(e) if e.is_object() => e,
            _ => &json,
        };
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let code = text(error, "code")
            // The Entra token endpoint: {"error": "invalid_client", "error_description": …}.
            .or_else(|| {
                json.get("error")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| default_code(status).to_string());
        let message = text(error, "message")
            .or_else(|| text(&json, "error_description"))
            .unwrap_or_else(|| {
                let body = String::from_utf8_lossy(body);
                let body = body.trim();
                if body.is_empty() {
                    format!("HTTP {status} with an empty body")
                } else {
                    body.chars().take(300).collect()
                }
            });
        let details = error
            .get("details")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|d| ErrorDetail {
                        code: text(d, "code").unwrap_or_default(),
                        message: text(d, "message").unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let request_id = request_id.or_else(|| {
            ["innerError", "innererror"]
                .iter()
                .find_map(|k| error.get(*k))
                .and_then(|inner| text(inner, "request-id"))
        });
        ApiFailure {
            status,
            code,
            message,
            target: text(error, "target"),
            details,
            request_id,
        }
    }

    /// The code, or the code of one of the details (Graph puts `NoBackingApplicationObject`
    /// in a detail of `Request_BadRequest`).
    pub fn has_code(&self, code: &str) -> bool {
        self.code.eq_ignore_ascii_case(code)
            || self
                .details
                .iter()
                .any(|d| d.code.eq_ignore_ascii_case(code))
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        412 => "PreconditionFailed",
        429 => "TooManyRequests",
        500 => "InternalServerError",
        502 => "BadGateway",
        503 => "ServiceUnavailable",
        504 => "GatewayTimeout",
        _ => "HttpError",
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AzureErrorKind {
    /// The service answered with an error that retrying will not change.
    Api(ApiFailure),
    /// A condition wiform waits out (throttling, replication delay, a server error) did not
    /// clear within the time allowed.
    GaveUp {
        waited_for: String,
        #[serde(with = "seconds")]
        elapsed: Duration,
        attempts: u32,
        last: ApiFailure,
    },
    /// No answer: connection refused or reset, timeouts, after the retries allowed.
    Transport { message: String, attempts: u32 },
    /// No token: no credential worked, or Entra refused it.
    Credential { message: String },
    /// An answer wiform could not read (not the documented shape).
    InvalidResponse {
        message: String,
        request_id: Option<String>,
    },
    /// A role name that no role definition at the scope has.
    RoleNotFound {
        name: String,
        scope: String,
        closest: Vec<String>,
    },
    /// The object exists but cannot be used as the config asks (e.g. owned by another stack).
    Conflict { message: String },
}

mod seconds {
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// An error of one operation on one object (boxed: errors travel through every `Result`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct AzureError(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Inner {
    /// What wiform was doing, naming the object: `create managed identity rg-id/orders-api`.
    action: String,
    #[serde(flatten)]
    kind: AzureErrorKind,
}

impl std::error::Error for AzureError {}

impl AzureError {
    pub fn new(action: impl Into<String>, kind: AzureErrorKind) -> Self {
        AzureError(Box::new(Inner {
            action: action.into(),
            kind,
        }))
    }

    /// What wiform was doing, naming the object.
    pub fn action(&self) -> &str {
        &self.0.action
    }

    pub fn kind(&self) -> &AzureErrorKind {
        &self.0.kind
    }

    /// The same error, with the action reworded (a resource module naming the object better
    /// than the request did).
    pub fn with_action(mut self, action: impl Into<String>) -> Self {
        self.0.action = action.into();
        self
    }

    pub fn api(action: impl Into<String>, failure: ApiFailure) -> Self {
        Self::new(action, AzureErrorKind::Api(failure))
    }

    pub fn invalid_response(
        action: impl Into<String>,
        message: impl Into<String>,
        request_id: Option<String>,
    ) -> Self {
        Self::new(
            action,
            AzureErrorKind::InvalidResponse {
                message: message.into(),
                request_id,
            },
        )
    }

    /// The API failure behind this error, if the service answered.
    pub fn failure(&self) -> Option<&ApiFailure> {
        match &self.0.kind {
            AzureErrorKind::Api(f) => Some(f),
            AzureErrorKind::GaveUp { last, .. } => Some(last),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        self.failure().map(|f| f.status)
    }

    /// Is this the service's answer `code` (or a detail with that code)?
    pub fn is_code(&self, code: &str) -> bool {
        self.failure().is_some_and(|f| f.has_code(code))
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self.kind(), AzureErrorKind::Api(f) if f.status == 404)
    }

    pub fn request_id(&self) -> Option<&str> {
        match &self.0.kind {
            AzureErrorKind::InvalidResponse { request_id, .. } => request_id.as_deref(),
            _ => self.failure().and_then(|f| f.request_id.as_deref()),
        }
    }
}

/// "… does not have authorization to perform action 'A' over scope 'S' or the scope is
/// invalid." (ARM's AuthorizationFailed message; fact sheet §3.)
fn quoted_after<'a>(message: &'a str, marker: &str) -> Option<&'a str> {
    let start = message.find(marker)? + marker.len();
    let rest = message[start..].trim_start();
    let rest = rest.strip_prefix('\'')?;
    Some(&rest[..rest.find('\'')?])
}

fn hint_for(f: &ApiFailure) -> Option<String> {
    let hint = match f.code.as_str() {
        "AuthorizationFailed" => {
            let action = quoted_after(&f.message, "perform action");
            let scope = quoted_after(&f.message, "over scope");
            // For a write, ARM names the object being written; the role is needed at the
            // scope it is written at (`…/providers/Microsoft.Authorization/roleAssignments/x`
            // is written at `…`).
            let scope = scope.map(|s| {
                s.to_ascii_lowercase()
                    .find("/providers/microsoft.authorization/roleassignments/")
                    .map_or(s, |i| if i == 0 { "/" } else { &s[..i] })
            });
            match (action, scope) {
                (Some(action), Some(scope)) => format!(
                    "the principal wiform runs as lacks `{action}` at `{scope}`: assign it a role \
                     that allows it there ({}), or run wiform as a principal that has one",
                    suggested_role(action)
                ),
                _ => "the principal wiform runs as lacks a permission: assign it a role that \
                      allows the action at that scope"
                    .into(),
            }
        }
        "Authorization_RequestDenied" => "the principal wiform runs as may not change Entra \
             applications: grant it the Microsoft Graph application permission \
             Application.ReadWrite.OwnedBy (or Application.ReadWrite.All) with admin consent"
            .into(),
        "InvalidAuthenticationToken"
        | "ExpiredAuthenticationToken"
        | "InvalidAuthenticationTokenTenant" => {
            "the token was refused: check that [azure].tenant_id matches the subscription's \
             tenant and sign in again"
                .into()
        }
        "SubscriptionNotFound" | "InvalidSubscriptionId" => {
            "check [azure].subscription_id and that the principal can see that subscription".into()
        }
        "ResourceGroupNotFound" => "create the resource group, or declare it under \
             [resource_groups.NAME] so that wiform creates it"
            .into(),
        "RoleAssignmentUpdateNotPermitted" => "a role assignment with this name exists for \
             another principal or scope; delete it by hand (`az role assignment delete --ids …`)"
            .into(),
        "OperationNotAllowed" => {
            "another operation is running on the cluster; wait for it to finish and run again"
                .into()
        }
        "EtagMismatch" | "PreconditionFailed" => {
            "the object changed while wiform was updating it; run again".into()
        }
        "RoleDefinitionDoesNotExist" => {
            "check the role's name or GUID (`az role definition list --name …`)".into()
        }
        "LocationNotAvailableForResourceType" | "LocationRequired" => {
            "set [azure].location (or the resource's location) to a region the service offers"
                .into()
        }
        "MissingSubscriptionRegistration" => "register the resource provider: `az provider \
             register --namespace <the namespace in the message>`"
            .into(),
        _ => return None,
    };
    Some(hint)
}

/// A built-in role that grants `action`, to name in a hint.
fn suggested_role(action: &str) -> &'static str {
    let action = action.to_ascii_lowercase();
    if action.starts_with("microsoft.authorization/roleassignments/") {
        "e.g. User Access Administrator, or Role Based Access Control Administrator"
    } else if action.starts_with("microsoft.managedidentity/") {
        "e.g. Managed Identity Contributor"
    } else if action
        .starts_with("microsoft.containerservice/managedclusters/listclusterusercredential")
    {
        "e.g. Azure Kubernetes Service Cluster User Role"
    } else if action.starts_with("microsoft.containerservice/") {
        "e.g. Azure Kubernetes Service Contributor Role"
    } else {
        "e.g. Contributor"
    }
}

impl Explain for AzureError {
    /// What wiform was doing, then what the service answered (or why there was no answer).
    fn message(&self) -> String {
        let request_id = |id: &Option<String>| match id {
            Some(id) => format!(" (request id {id})"),
            None => String::new(),
        };
        let what = match &self.0.kind {
            AzureErrorKind::Api(e) => format!(
                "{} (HTTP {}): {}{}",
                e.code,
                e.status,
                e.message,
                request_id(&e.request_id)
            ),
            AzureErrorKind::GaveUp {
                waited_for,
                elapsed,
                attempts,
                last,
            } => format!(
                "gave up waiting for {waited_for} after {:.0} s and {attempts} attempts; last \
                 answer {} (HTTP {}): {}{}",
                elapsed.as_secs_f64(),
                last.code,
                last.status,
                last.message,
                request_id(&last.request_id)
            ),
            AzureErrorKind::Transport { message, attempts } => {
                format!("no answer after {attempts} attempts: {message}")
            }
            AzureErrorKind::Credential { message } => format!("no token: {message}"),
            AzureErrorKind::InvalidResponse {
                message,
                request_id: id,
            } => format!("unexpected answer: {message}{}", request_id(id)),
            AzureErrorKind::RoleNotFound { name, scope, .. } => {
                format!("no role named `{name}` is defined at {scope}")
            }
            AzureErrorKind::Conflict { message } => message.clone(),
        };
        format!("{}: {what}", self.0.action)
    }

    /// What the user can do about it, when wiform knows.
    fn hint(&self) -> Option<String> {
        match &self.0.kind {
            AzureErrorKind::Api(f) => hint_for(f),
            AzureErrorKind::GaveUp {
                waited_for, last, ..
            } => Some(match last.code.as_str() {
                "TooManyRequests" => {
                    "Azure kept throttling; run again later or lower --parallelism".to_string()
                }
                _ => {
                    format!("{waited_for} is taking longer than usual; run again in a few minutes")
                }
            }),
            AzureErrorKind::Transport { .. } => Some(
                "check the network path to Azure (proxy, firewall, DNS); wiform retried already"
                    .into(),
            ),
            // The credential chain's own message already says what to do.
            AzureErrorKind::Credential { message } if message.contains("az login") => None,
            AzureErrorKind::Credential { .. } => Some(
                "sign in with `az login`, or set AZURE_CLIENT_ID with AZURE_CLIENT_SECRET (or a \
                 certificate, or AZURE_FEDERATED_TOKEN_FILE), or pick one with --auth"
                    .into(),
            ),
            AzureErrorKind::RoleNotFound { closest, .. } if !closest.is_empty() => Some(format!(
                "did you mean {}?",
                closest
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
            AzureErrorKind::RoleNotFound { .. } => Some(
                "use the role's exact name as `az role definition list` shows it, or its GUID"
                    .into(),
            ),
            AzureErrorKind::InvalidResponse { .. } | AzureErrorKind::Conflict { .. } => None,
        }
    }
}

/// The message, then the hint on a line of its own: how the error reads where it is shown
/// whole (inside another error's text, in a log line).
impl fmt::Display for AzureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        if let Some(hint) = self.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_arm_envelope() {
        let body = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'c' with object id 'o' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/subscriptions/s/resourceGroups/rg' or the scope is invalid.","target":null,"details":[]}}"#;
        let f = ApiFailure::parse(403, body, Some("req-1".into()));
        assert_eq!(f.code, "AuthorizationFailed");
        assert_eq!(f.request_id.as_deref(), Some("req-1"));
        let e = AzureError::api("create role assignment x", f);
        let text = e.to_string();
        assert!(text.starts_with("create role assignment x: AuthorizationFailed (HTTP 403)"));
        assert!(text.contains("(request id req-1)"));
        let hint = e.hint().unwrap();
        assert!(hint.contains("`Microsoft.Authorization/roleAssignments/write`"));
        assert!(hint.contains("`/subscriptions/s/resourceGroups/rg`"));
        let on_assignment = ApiFailure::parse(
            403,
            br#"{"error":{"code":"AuthorizationFailed","message":"The client 'c' with object id 'o' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/1234' or the scope is invalid."}}"#,
            None,
        );
        let hint = AzureError::api("assign", on_assignment).hint().unwrap();
        assert!(
            hint.contains("at `/providers/Microsoft.Management/managementGroups/mg1`:"),
            "{hint}"
        );
        assert!(hint.contains("User Access Administrator"));
    }

    #[test]
    fn parses_the_flat_aks_body_and_graph_inner_error() {
        let aks = ApiFailure::parse(
            409,
            br#"{"code":"OperationNotAllowed","message":"Another operation (Updating) is in progress","subcode":"","details":null}"#,
            None,
        );
        assert_eq!(aks.code, "OperationNotAllowed");
        assert!(aks.details.is_empty());

        let graph = ApiFailure::parse(
            400,
            br#"{"error":{"code":"Request_BadRequest","message":"m","innerError":{"date":"d","request-id":"g-1","client-request-id":"c"},"details":[{"code":"NoBackingApplicationObject","message":"x","target":"appId"}]}}"#,
            None,
        );
        assert_eq!(graph.request_id.as_deref(), Some("g-1"));
        assert!(graph.has_code("NoBackingApplicationObject"));
        assert!(!graph.has_code("Other"));
    }

    #[test]
    fn parses_entra_and_non_json_answers() {
        let entra = ApiFailure::parse(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
            None,
        );
        assert_eq!(entra.code, "invalid_client");
        assert!(entra.message.starts_with("AADSTS7000215"));

        let html = ApiFailure::parse(502, b"<html>bad gateway</html>", None);
        assert_eq!(html.code, "BadGateway");
        assert_eq!(html.message, "<html>bad gateway</html>");
        let empty = ApiFailure::parse(503, b"", None);
        assert_eq!(empty.message, "HTTP 503 with an empty body");
    }

    #[test]
    fn gave_up_says_what_it_waited_for() {
        let last = ApiFailure::parse(
            400,
            br#"{"error":{"code":"PrincipalNotFound","message":"Principal p does not exist in the directory t."}}"#,
            Some("r".into()),
        );
        let e = AzureError::new(
            "create role assignment a",
            AzureErrorKind::GaveUp {
                waited_for: "the new identity's principal to reach the directory".into(),
                elapsed: Duration::from_secs(300),
                attempts: 12,
                last,
            },
        );
        let text = e.to_string();
        assert!(text.contains("gave up waiting for the new identity's principal"));
        assert!(text.contains("PrincipalNotFound (HTTP 400)"));
        assert!(text.contains("request id r"));
        assert!(e.is_code("PrincipalNotFound"));
    }
}
