//! Errors of the Kubernetes provider: each names the cluster (its key in identity.toml), the
//! object (`serviceaccounts "orders/api"`), the HTTP status and reason, the server's message, and
//! what to do. No error carries a token or kubeconfig text.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::Explain;

/// The object (or list, or URL) a request was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ObjectRef {
    /// One object: `serviceaccounts "orders/api"`, `namespaces "orders"`.
    Object {
        resource: String,
        namespace: Option<String>,
        name: String,
    },
    /// A list: `serviceaccounts in namespace "orders"`, `serviceaccounts in all namespaces`.
    List {
        resource: String,
        namespace: Option<String>,
        selector: Option<String>,
    },
    /// A path that is not a resource: `/.well-known/openid-configuration`.
    Url(String),
}

impl ObjectRef {
    pub fn object(resource: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef::Object {
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }

    pub fn list(resource: &str, namespace: Option<&str>, selector: Option<&str>) -> Self {
        ObjectRef::List {
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
            selector: selector.map(str::to_string),
        }
    }

    fn resource(&self) -> Option<&str> {
        match self {
            ObjectRef::Object { resource, .. } | ObjectRef::List { resource, .. } => Some(resource),
            ObjectRef::Url(_) => None,
        }
    }

    fn namespace(&self) -> Option<&str> {
        match self {
            ObjectRef::Object { namespace, .. } | ObjectRef::List { namespace, .. } => {
                namespace.as_deref()
            }
            ObjectRef::Url(_) => None,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Object {
                resource,
                namespace: Some(ns),
                name,
            } => write!(f, "{resource} \"{ns}/{name}\""),
            ObjectRef::Object {
                resource,
                namespace: None,
                name,
            } => write!(f, "{resource} \"{name}\""),
            ObjectRef::List {
                resource,
                namespace,
                selector,
            } => {
                write!(f, "{resource}")?;
                if let Some(selector) = selector {
                    write!(f, " labelled {selector}")?;
                }
                match namespace {
                    Some(ns) => write!(f, " in namespace \"{ns}\""),
                    None => write!(f, " in all namespaces"),
                }
            }
            ObjectRef::Url(path) => f.write_str(path),
        }
    }
}

/// A field another manager owns, from a server-side apply conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldConflict {
    /// The other field manager, e.g. `kubectl-edit`.
    pub manager: String,
    /// The field path, e.g. `.metadata.annotations.azure.workload.identity/client-id`.
    pub field: String,
}

/// `a (by "m"), b (by "n")`.
fn describe_conflicts(conflicts: &[FieldConflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("{} (owned by \"{}\")", c.field, c.manager))
        .collect::<Vec<_>>()
        .join(", ")
}

fn managers(conflicts: &[FieldConflict]) -> String {
    let mut names: Vec<String> = conflicts
        .iter()
        .map(|c| format!("\"{}\"", c.manager))
        .collect();
    names.sort();
    names.dedup();
    names.join(", ")
}

fn listing(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn status_line(code: u16) -> String {
    match http::StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
    {
        Some(reason) => format!("{code} {reason}"),
        None => code.to_string(),
    }
}

/// An error of the Kubernetes provider (boxed: errors are rare, `Result`s stay small). Its
/// [`KubeError::kind`] says what happened.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error(transparent)]
#[diagnostic(transparent)]
pub struct KubeError(Box<KubeErrorKind>);

impl KubeError {
    pub fn kind(&self) -> &KubeErrorKind {
        &self.0
    }

    pub fn into_kind(self) -> KubeErrorKind {
        *self.0
    }

    /// The cluster the error is about.
    pub fn cluster(&self) -> &str {
        self.0.cluster()
    }

    /// The HTTP status the server answered, when the error is an answer.
    pub fn http_status(&self) -> Option<u16> {
        self.0.http_status()
    }
}

/// The message is the error's text; the hint is its diagnostic help.
impl Explain for KubeError {
    fn message(&self) -> String {
        self.to_string()
    }

    fn hint(&self) -> Option<String> {
        miette::Diagnostic::help(self).map(|help| help.to_string())
    }
}

impl From<KubeErrorKind> for KubeError {
    fn from(kind: KubeErrorKind) -> Self {
        KubeError(Box::new(kind))
    }
}

/// Everything that can go wrong in the Kubernetes provider.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KubeErrorKind {
    #[error("cluster \"{cluster}\": no kubeconfig found ({detail})")]
    #[diagnostic(
        code(kube::no_kubeconfig),
        help(
            "set `kubeconfig` on [clusters.{cluster}] in identity.toml, or $KUBECONFIG, or write ~/.kube/config (e.g. `az aks get-credentials`)"
        )
    )]
    NoKubeconfig { cluster: String, detail: String },

    #[error("cluster \"{cluster}\": cannot read the kubeconfig {}", path.display())]
    #[diagnostic(
        code(kube::kubeconfig_unreadable),
        help("check the path in `kubeconfig` (or $KUBECONFIG) and the file's permissions")
    )]
    KubeconfigUnreadable {
        cluster: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cluster \"{cluster}\": the kubeconfig {origin} is invalid: {reason}")]
    #[diagnostic(code(kube::kubeconfig_invalid))]
    KubeconfigInvalid {
        cluster: String,
        origin: String,
        reason: String,
    },

    #[error(
        "cluster \"{cluster}\": there is no context \"{context}\" in {origin}; the contexts are: {}",
        listing(available)
    )]
    #[diagnostic(
        code(kube::unknown_context),
        help(
            "set kube_context on [clusters.{cluster}] to one of them{}, or pass the kubeconfig that has it (`kubeconfig` or $KUBECONFIG)",
            suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default()
        )
    )]
    UnknownContext {
        cluster: String,
        context: String,
        origin: String,
        available: Vec<String>,
        suggestion: Option<String>,
    },

    #[error(
        "cluster \"{cluster}\": {origin} has no current-context, and identity.toml names none; the contexts are: {}",
        listing(available)
    )]
    #[diagnostic(
        code(kube::no_context),
        help("set kube_context on [clusters.{cluster}] in identity.toml")
    )]
    NoCurrentContext {
        cluster: String,
        origin: String,
        available: Vec<String>,
    },

    #[error("cluster \"{cluster}\": context \"{context}\" cannot be used: {reason}")]
    #[diagnostic(code(kube::context_unusable))]
    ContextUnusable {
        cluster: String,
        context: String,
        reason: String,
    },

    #[error("cluster \"{cluster}\": cannot set up a client for {server}")]
    #[diagnostic(code(kube::client))]
    Client {
        cluster: String,
        server: String,
        #[source]
        source: Box<::kube::Error>,
    },

    #[error("cluster \"{cluster}\": cannot get the credentials of {credentials}")]
    #[diagnostic(
        code(kube::credentials),
        help(
            "check the kubeconfig user: its exec plugin (e.g. kubelogin) must be installed and logged in, its token file readable"
        )
    )]
    Credentials {
        cluster: String,
        credentials: String,
        #[source]
        source: Box<::kube::client::AuthError>,
    },

    #[error("cluster \"{cluster}\": cannot reach the API server at {server} ({what})")]
    #[diagnostic(
        code(kube::unreachable),
        help(
            "check that the cluster is running and that {server} is reachable from here (VPN, private cluster, proxy)"
        )
    )]
    Unreachable {
        cluster: String,
        server: String,
        what: ObjectRef,
        #[source]
        source: Box<::kube::Error>,
    },

    #[error(
        "cluster \"{cluster}\": {what}: 401 Unauthorized: the API server at {server} refused the credentials of {credentials}: {message}"
    )]
    #[diagnostic(
        code(kube::unauthorized),
        help(
            "the token or certificate is invalid or expired: log in again (e.g. `az aks get-credentials`, `kubelogin convert-kubeconfig`) and retry"
        )
    )]
    Unauthorized {
        cluster: String,
        server: String,
        credentials: String,
        what: ObjectRef,
        message: String,
    },

    #[error(
        "cluster \"{cluster}\": {what}: 403 Forbidden: wiform needs {needed}; {who} does not have that right. The server said: {message}"
    )]
    #[diagnostic(
        code(kube::forbidden),
        help(
            "grant it (a Role or ClusterRole with that verb, bound to {who}), or set kube_context on [clusters.{cluster}] to a context with more rights"
        )
    )]
    Forbidden {
        cluster: String,
        what: ObjectRef,
        /// The missing right in words: `patch on serviceaccounts in namespace "orders"`.
        needed: String,
        /// `user "reader"`, or `the user of this context` when the server did not say.
        who: String,
        message: String,
    },

    #[error(
        "cluster \"{cluster}\": {what}: 409 Conflict: fields wiform sets are owned by another field manager: {}",
        describe_conflicts(conflicts)
    )]
    #[diagnostic(
        code(kube::conflict),
        help(
            "wiform apply takes these fields back from {} (its plan shows them); stop the other tool from setting them, or it will change them again",
            managers(conflicts)
        )
    )]
    Conflict {
        cluster: String,
        what: ObjectRef,
        conflicts: Vec<FieldConflict>,
        message: String,
    },

    #[error(
        "cluster \"{cluster}\": {what} changed since it was observed ({}): {message}",
        status_line(*code)
    )]
    #[diagnostic(
        code(kube::changed),
        help("run plan again: wiform only deletes what it has just seen")
    )]
    Changed {
        cluster: String,
        what: ObjectRef,
        code: u16,
        message: String,
    },

    #[error(
        "cluster \"{cluster}\": {verb} {what}: {} ({reason}): {message}",
        status_line(*code)
    )]
    #[diagnostic(code(kube::api))]
    Api {
        cluster: String,
        verb: String,
        what: ObjectRef,
        code: u16,
        reason: String,
        message: String,
    },

    #[error("cluster \"{cluster}\": {what}: the answer of {server} could not be read: {detail}")]
    #[diagnostic(code(kube::unreadable_answer))]
    Unreadable {
        cluster: String,
        server: String,
        what: ObjectRef,
        detail: String,
    },

    #[error(
        "cluster \"{cluster}\": refusing to {action} {what}: it does not carry the marker of stack \"{stack}\" ({})",
        owner.describe()
    )]
    #[diagnostic(
        code(kube::not_owned),
        help(
            "wiform only changes or deletes what this stack created; delete it by hand if it should go"
        )
    )]
    NotOwned {
        cluster: String,
        action: String,
        what: ObjectRef,
        stack: String,
        owner: crate::ownership::Owner,
    },

    #[error(
        "cluster \"{cluster}\": refusing to delete namespaces \"{namespace}\": it is a system namespace"
    )]
    #[diagnostic(code(kube::protected_namespace))]
    ProtectedNamespace { cluster: String, namespace: String },

    #[error(
        "cluster \"{cluster}\": refusing to delete namespaces \"{namespace}\": it holds objects wiform does not own: {}",
        listing(foreign)
    )]
    #[diagnostic(
        code(kube::namespace_not_empty),
        help(
            "move or delete those objects first, or keep the namespace (set create_namespace = false on its service accounts)"
        )
    )]
    NamespaceNotEmpty {
        cluster: String,
        namespace: String,
        /// `pods "web-1"`, … (at most a few, then `and N more`).
        foreign: Vec<String>,
    },

    #[error(
        "cluster \"{cluster}\": the configured issuer does not match the cluster's\n  configured: {configured}\n  discovered: {discovered}{}",
        if configured.trim_end_matches('/') == discovered.trim_end_matches('/') { "\n  they differ only by the trailing slash" } else { "" }
    )]
    #[diagnostic(
        code(kube::issuer_mismatch),
        help(
            "set `issuer` on [clusters.{cluster}] to the discovered value, byte for byte: Entra compares the token's iss claim exactly"
        )
    )]
    IssuerMismatch {
        cluster: String,
        configured: String,
        discovered: String,
    },

    #[error("cluster \"{cluster}\": the discovery document of {server} is unusable: {reason}")]
    #[diagnostic(code(kube::discovery))]
    BadDiscovery {
        cluster: String,
        server: String,
        reason: String,
    },

    #[error("cluster \"{cluster}\": {what}: {reason}")]
    #[diagnostic(code(kube::invalid_request))]
    InvalidRequest {
        cluster: String,
        what: ObjectRef,
        reason: String,
    },
}

impl KubeErrorKind {
    /// The cluster the error is about.
    pub fn cluster(&self) -> &str {
        match self {
            KubeErrorKind::NoKubeconfig { cluster, .. }
            | KubeErrorKind::KubeconfigUnreadable { cluster, .. }
            | KubeErrorKind::KubeconfigInvalid { cluster, .. }
            | KubeErrorKind::UnknownContext { cluster, .. }
            | KubeErrorKind::NoCurrentContext { cluster, .. }
            | KubeErrorKind::ContextUnusable { cluster, .. }
            | KubeErrorKind::Client { cluster, .. }
            | KubeErrorKind::Credentials { cluster, .. }
            | KubeErrorKind::Unreachable { cluster, .. }
            | KubeErrorKind::Unauthorized { cluster, .. }
            | KubeErrorKind::Forbidden { cluster, .. }
            | KubeErrorKind::Conflict { cluster, .. }
            | KubeErrorKind::Changed { cluster, .. }
            | KubeErrorKind::Api { cluster, .. }
            | KubeErrorKind::Unreadable { cluster, .. }
            | KubeErrorKind::NotOwned { cluster, .. }
            | KubeErrorKind::ProtectedNamespace { cluster, .. }
            | KubeErrorKind::NamespaceNotEmpty { cluster, .. }
            | KubeErrorKind::IssuerMismatch { cluster, .. }
            | KubeErrorKind::BadDiscovery { cluster, .. }
            | KubeErrorKind::InvalidRequest { cluster, .. } => cluster,
        }
    }

    /// The HTTP status the server answered, when the error is an answer.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            KubeErrorKind::Unauthorized { .. } => Some(401),
            KubeErrorKind::Forbidden { .. } => Some(403),
            KubeErrorKind::Conflict { .. } => Some(409),
            KubeErrorKind::Changed { code, .. } | KubeErrorKind::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// One request: what it does and to what, for turning a failure into a [`KubeError`].
#[derive(Debug, Clone)]
pub(crate) struct Op {
    /// The Kubernetes verb (`list`, `patch`, `delete`, `create`, `get`).
    pub verb: &'static str,
    pub what: ObjectRef,
    /// A delete with preconditions: a 409 means the object changed.
    pub preconditions: bool,
}

impl Op {
    pub fn new(verb: &'static str, what: ObjectRef) -> Self {
        Op {
            verb,
            what,
            preconditions: false,
        }
    }

    /// `patch on serviceaccounts in namespace "orders"`.
    fn needed(&self, server_verb: Option<&str>, server_resource: Option<&str>) -> String {
        let verb = server_verb.unwrap_or(self.verb);
        match (server_resource.or(self.what.resource()), &self.what) {
            (Some(resource), what) => match what.namespace() {
                Some(ns) => format!("{verb} on {resource} in namespace \"{ns}\""),
                None if resource == "namespaces" => format!("{verb} on namespaces"),
                None => format!("{verb} on {resource} in all namespaces"),
            },
            (None, ObjectRef::Url(path)) => format!("{verb} on the URL {path}"),
            (None, _) => verb.to_string(),
        }
    }
}

/// What a cluster handle knows for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Ctx<'a> {
    pub cluster: &'a str,
    pub server: &'a str,
    /// `context "kube-server-reader"` or `the kubeconfig's user`.
    pub credentials: &'a str,
}

impl Ctx<'_> {
    /// Turns a kube-rs error for `op` into a [`KubeError`].
    pub fn error(&self, op: &Op, error: ::kube::Error) -> KubeError {
        self.kind_of(op, error).into()
    }

    fn kind_of(&self, op: &Op, error: ::kube::Error) -> KubeErrorKind {
        let cluster = self.cluster.to_string();
        match error {
            ::kube::Error::Api(status) => self.status_error(op, &status),
            ::kube::Error::SerdeError(e) => KubeErrorKind::Unreadable {
                cluster,
                server: self.server.to_string(),
                what: op.what.clone(),
                // Position only: serde messages may quote the input.
                detail: format!(
                    "not the expected JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            },
            ::kube::Error::FromUtf8(_) => KubeErrorKind::Unreadable {
                cluster,
                server: self.server.to_string(),
                what: op.what.clone(),
                detail: "not UTF-8 text".into(),
            },
            ::kube::Error::Auth(source) => KubeErrorKind::Credentials {
                cluster,
                credentials: self.credentials.to_string(),
                source: Box::new(source),
            },
            source @ (::kube::Error::HyperError(_) | ::kube::Error::Service(_)) => {
                KubeErrorKind::Unreachable {
                    cluster,
                    server: self.server.to_string(),
                    what: op.what.clone(),
                    source: Box::new(source),
                }
            }
            source => KubeErrorKind::Client {
                cluster,
                server: self.server.to_string(),
                source: Box::new(source),
            },
        }
    }

    fn status_error(&self, op: &Op, status: &::kube::core::Status) -> KubeErrorKind {
        let cluster = self.cluster.to_string();
        let message = status.message.clone();
        match status.code {
            401 => KubeErrorKind::Unauthorized {
                cluster,
                server: self.server.to_string(),
                credentials: self.credentials.to_string(),
                what: op.what.clone(),
                message,
            },
            // Not an RBAC denial (e.g. "unable to create new content in namespace x because
            // it is being terminated"): the server's words say it best.
            403 if parse_forbidden(&message).verb.is_none() => self.api(op, status),
            403 => {
                let parsed = parse_forbidden(&message);
                KubeErrorKind::Forbidden {
                    cluster,
                    what: op.what.clone(),
                    needed: op.needed(parsed.verb.as_deref(), parsed.resource.as_deref()),
                    who: parsed
                        .user
                        .map(|u| format!("user \"{u}\""))
                        .unwrap_or_else(|| format!("the user of {}", self.credentials)),
                    message,
                }
            }
            409 if op.preconditions => KubeErrorKind::Changed {
                cluster,
                what: op.what.clone(),
                code: 409,
                message,
            },
            409 if status.reason == "Conflict" && op.verb == "patch" => {
                let conflicts = conflicts(status);
                if conflicts.is_empty() {
                    self.api(op, status)
                } else {
                    KubeErrorKind::Conflict {
                        cluster,
                        what: op.what.clone(),
                        conflicts,
                        message,
                    }
                }
            }
            _ => self.api(op, status),
        }
    }

    fn api(&self, op: &Op, status: &::kube::core::Status) -> KubeErrorKind {
        KubeErrorKind::Api {
            cluster: self.cluster.to_string(),
            verb: op.verb.to_string(),
            what: op.what.clone(),
            code: status.code,
            reason: if status.reason.is_empty() {
                "no reason given".into()
            } else {
                status.reason.clone()
            },
            message: status.message.clone(),
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Forbidden {
    user: Option<String>,
    verb: Option<String>,
    resource: Option<String>,
}

/// Reads `... User "reader" cannot patch resource "serviceaccounts" in API group "" ...`.
fn parse_forbidden(message: &str) -> Forbidden {
    let quoted_after = |marker: &str| -> Option<String> {
        let rest = &message[message.find(marker)? + marker.len()..];
        let rest = rest.strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    };
    let verb = message.find(" cannot ").and_then(|i| {
        message[i + " cannot ".len()..]
            .split_whitespace()
            .next()
            .map(str::to_string)
    });
    Forbidden {
        user: quoted_after("User "),
        verb,
        resource: quoted_after("resource "),
    }
}

/// The conflicts of a server-side apply 409: from `details.causes` (one per field), else from
/// the message (`Apply failed with 1 conflict: conflict with "m": .a.b`).
fn conflicts(status: &::kube::core::Status) -> Vec<FieldConflict> {
    let from_causes: Vec<FieldConflict> = status
        .details
        .iter()
        .flat_map(|d| d.causes.iter())
        .filter(|c| c.reason == "FieldManagerConflict" || c.message.contains("conflict with"))
        .filter_map(|c| {
            Some(FieldConflict {
                manager: first_quoted(&c.message)?,
                field: c.field.clone(),
            })
        })
        .collect();
    if !from_causes.is_empty() {
        return from_causes;
    }
    // Message forms: `conflict with "m": .f` and `conflicts with "m":\n- .f\n- .g`.
    let mut out = Vec::new();
    let mut manager: Option<String> = None;
    for piece in status.message.split('\n') {
        let piece = piece.trim();
        if let Some(i) = piece.find("conflict") {
            let rest = &piece[i..];
            if rest.contains(" with \"") {
                manager = first_quoted(rest);
                if let (Some(field), Some(m)) = (
                    rest.rsplit("\": ").next().filter(|f| f.starts_with('.')),
                    &manager,
                ) {
                    out.push(FieldConflict {
                        manager: m.clone(),
                        field: field.trim().to_string(),
                    });
                }
                continue;
            }
        }
        if let (Some(field), Some(m)) = (piece.strip_prefix("- "), &manager) {
            out.push(FieldConflict {
                manager: m.clone(),
                field: field.trim().to_string(),
            });
        }
    }
    out
}

fn first_quoted(text: &str) -> Option<String> {
    let start = text.find('"')? + 1;
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::kube::core::Status;
    use serde_json::json;

    fn ctx() -> Ctx<'static> {
        Ctx {
            cluster: "prod",
            server: "https://127.0.0.1:6443",
            credentials: "context \"kube-server-reader\"",
        }
    }

    fn status(value: serde_json::Value) -> Box<Status> {
        Box::new(serde_json::from_value(value).unwrap())
    }

    fn patch_sa() -> Op {
        Op::new(
            "patch",
            ObjectRef::object("serviceaccounts", Some("orders"), "api"),
        )
    }

    #[test]
    fn objects_are_named_like_kubectl() {
        assert_eq!(
            ObjectRef::object("serviceaccounts", Some("orders"), "api").to_string(),
            "serviceaccounts \"orders/api\""
        );
        assert_eq!(
            ObjectRef::object("namespaces", None, "orders").to_string(),
            "namespaces \"orders\""
        );
        assert_eq!(
            ObjectRef::list("serviceaccounts", None, Some("wiform.io/stack=s")).to_string(),
            "serviceaccounts labelled wiform.io/stack=s in all namespaces"
        );
        assert_eq!(
            ObjectRef::list("pods", Some("orders"), None).to_string(),
            "pods in namespace \"orders\""
        );
    }

    #[test]
    fn forbidden_names_the_missing_right_and_the_user() {
        let message = "serviceaccounts \"api\" is forbidden: User \"reader\" cannot patch resource \"serviceaccounts\" in API group \"\" in the namespace \"orders\"";
        let e = ctx().error(
            &patch_sa(),
            ::kube::Error::Api(status(
                json!({"code": 403, "reason": "Forbidden", "message": message}),
            )),
        );
        let text = e.to_string();
        assert_eq!(
            text,
            format!(
                "cluster \"prod\": serviceaccounts \"orders/api\": 403 Forbidden: wiform needs patch on serviceaccounts in namespace \"orders\"; user \"reader\" does not have that right. The server said: {message}"
            )
        );
        assert_eq!(e.http_status(), Some(403));
        assert_eq!(e.cluster(), "prod");
        // The server's verb and resource win (TokenRequest is `create` on a subresource).
        assert_eq!(
            parse_forbidden(
                "serviceaccounts \"api\" is forbidden: User \"reader\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"x\""
            ),
            Forbidden {
                user: Some("reader".into()),
                verb: Some("create".into()),
                resource: Some("serviceaccounts/token".into())
            }
        );
        // A 403 that is not an RBAC denial keeps the server's words.
        let e = ctx().error(
            &patch_sa(),
            ::kube::Error::Api(status(json!({"code": 403, "reason": "Forbidden",
                "message": "serviceaccounts \"api\" is forbidden: unable to create new content in namespace orders because it is being terminated"}))),
        );
        assert!(
            matches!(e.kind(), KubeErrorKind::Api { code: 403, .. }),
            "{e}"
        );
        assert!(
            e.to_string().ends_with("because it is being terminated"),
            "{e}"
        );
        // Without a user in the message, the context's user is named.
        let e = ctx().error(
            &patch_sa(),
            ::kube::Error::Api(status(
                json!({"code": 403, "reason": "Forbidden", "message": "denied by policy: cannot patch"}),
            )),
        );
        assert!(
            e.to_string().contains(
                "wiform needs patch on serviceaccounts in namespace \"orders\"; the user of context \"kube-server-reader\" does not have that right"
            ),
            "{e}"
        );
    }

    #[test]
    fn conflicts_come_from_causes_or_the_message() {
        let with_causes = status(json!({
            "code": 409, "reason": "Conflict",
            "message": "Apply failed with 1 conflict: conflict with \"intruder\": .metadata.annotations.azure.workload.identity/client-id",
            "details": {"name": "api", "kind": "serviceaccounts", "causes": [
                {"reason": "FieldManagerConflict", "message": "conflict with \"intruder\"", "field": ".metadata.annotations.azure.workload.identity/client-id"}
            ]}
        }));
        let expected = vec![FieldConflict {
            manager: "intruder".into(),
            field: ".metadata.annotations.azure.workload.identity/client-id".into(),
        }];
        assert_eq!(conflicts(&with_causes), expected);
        let mut bare = with_causes.clone();
        bare.details = None;
        assert_eq!(conflicts(&bare), expected);
        let multi = status(json!({
            "code": 409, "reason": "Conflict",
            "message": "Apply failed with 2 conflicts: conflicts with \"kubectl-edit\" using v1:\n- .metadata.labels.a\n- .metadata.labels.b"
        }));
        assert_eq!(
            conflicts(&multi),
            [
                FieldConflict {
                    manager: "kubectl-edit".into(),
                    field: ".metadata.labels.a".into()
                },
                FieldConflict {
                    manager: "kubectl-edit".into(),
                    field: ".metadata.labels.b".into()
                }
            ]
        );
        let e = ctx().error(&patch_sa(), ::kube::Error::Api(with_causes));
        assert!(
            matches!(e.kind(), KubeErrorKind::Conflict { conflicts, .. } if conflicts.len() == 1)
        );
        assert!(e.to_string().contains("(owned by \"intruder\")"), "{e}");
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert!(
            help.contains("wiform apply takes these fields back"),
            "{help}"
        );
        assert!(help.contains("\"intruder\""), "{help}");
    }

    #[test]
    fn other_statuses_keep_code_reason_and_message() {
        let e = ctx().error(
            &Op::new("get", ObjectRef::object("namespaces", None, "x")),
            ::kube::Error::Api(status(
                json!({"code": 404, "reason": "NotFound", "message": "namespaces \"x\" not found"}),
            )),
        );
        assert_eq!(
            e.to_string(),
            "cluster \"prod\": get namespaces \"x\": 404 Not Found (NotFound): namespaces \"x\" not found"
        );
        let e = ctx().error(
            &patch_sa(),
            ::kube::Error::Api(status(
                json!({"code": 401, "reason": "Unauthorized", "message": "Unauthorized"}),
            )),
        );
        assert!(
            e.to_string().contains("401 Unauthorized: the API server at https://127.0.0.1:6443 refused the credentials of context \"kube-server-reader\""),
            "{e}"
        );
        let mut op = Op::new(
            "delete",
            ObjectRef::object("serviceaccounts", Some("a"), "b"),
        );
        op.preconditions = true;
        let e = ctx().error(
            &op,
            ::kube::Error::Api(status(
                json!({"code": 409, "reason": "Conflict", "message": "Precondition failed"}),
            )),
        );
        assert!(matches!(e.kind(), KubeErrorKind::Changed { .. }), "{e}");
    }

    #[test]
    fn issuer_mismatch_shows_both_and_the_slash() {
        let e = KubeErrorKind::IssuerMismatch {
            cluster: "onprem".into(),
            configured: "https://a.example/".into(),
            discovered: "https://a.example".into(),
        };
        assert_eq!(
            e.to_string(),
            "cluster \"onprem\": the configured issuer does not match the cluster's\n  configured: https://a.example/\n  discovered: https://a.example\n  they differ only by the trailing slash"
        );
    }
}
