//! What an import found, as plain data: the objects that exist (their live names, ids and
//! settings), already matched to each other (which credential trusts which service account, which
//! assignment belongs to which identity), with no type of the source they were read from. The
//! writer (`super::write`) decides how identity.toml says it: which keys are implied, which roles
//! have names, which scopes are relative.

/// The stack to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stack {
    /// The stack name (`name`).
    pub name: String,
    /// Comment lines at the top of the file: what it was imported from.
    pub header: Vec<String>,
    /// The Entra tenant; `None` when the source did not say (a placeholder is written).
    pub tenant_id: Option<String>,
    /// The subscription of the managed identities; `None` when the source did not say.
    pub subscription_id: Option<String>,
    pub clusters: Vec<Cluster>,
    pub identities: Vec<Identity>,
    pub service_accounts: Vec<ServiceAccount>,
    pub federations: Vec<Federation>,
    pub role_grants: Vec<RoleGrant>,
    /// What the import could not express or leaves where it is, one self-contained sentence each:
    /// written at the end of the file as comments, never dropped.
    pub notes: Vec<String>,
}

/// A cluster that service accounts are bound on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    /// Its key in `[clusters]` (see [`key_for`]).
    pub key: String,
    /// Comment lines above the table: where it came from, and anything the reader should know.
    pub comments: Vec<String>,
    pub kind: ClusterKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterKind {
    /// An AKS cluster, named by its ARM resource group and name.
    Aks {
        /// Its subscription (written only when it is not the stack's).
        subscription_id: Option<String>,
        resource_group: String,
        name: String,
        /// `enable_workload_identity`; `None` leaves the default (`true`).
        enable_workload_identity: Option<bool>,
    },
    /// Any other cluster: its issuer URL and the kubeconfig context that reaches it.
    Issuer {
        issuer: String,
        kube_context: String,
    },
}

/// An identity workloads sign in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its key in `[identities]` (see [`key_for`]).
    pub key: String,
    pub comments: Vec<String>,
    pub kind: IdentityKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityKind {
    /// A user-assigned managed identity in the stack's subscription.
    Managed {
        /// Its Azure name (written only when it differs from the key).
        name: String,
        resource_group: String,
        /// Its region (written only when it differs from the most common one, which goes into
        /// `[azure].location`).
        location: Option<String>,
        /// Its tags, as they are.
        tags: Vec<(String, String)>,
    },
    /// An Entra application registration and its service principal.
    Application {
        /// Its display name (written only when it differs from the key).
        display_name: String,
    },
}

/// A Kubernetes service account bound to an identity by one of its federated credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub comments: Vec<String>,
    /// Key of the cluster in [`Stack::clusters`].
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// Key of the identity in [`Stack::identities`].
    pub identity: String,
    /// The live name of the credential that trusts it (`federation_name` when it is not the
    /// implied one).
    pub credential_name: String,
    /// The credential's audiences, as they are.
    pub audiences: Vec<String>,
    /// Every annotation of the service account, wiform's own keys included (the writer turns
    /// them into settings or leaves them to wiform).
    pub annotations: Vec<(String, String)>,
    /// Every label of the service account.
    pub labels: Vec<(String, String)>,
    /// `create_namespace`; `None` leaves the default (wiform uses an existing namespace and
    /// leaves it alone).
    pub create_namespace: Option<bool>,
}

/// A federated credential for an issuer that is not a cluster of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Federation {
    pub comments: Vec<String>,
    /// Key of the identity in [`Stack::identities`].
    pub identity: String,
    /// Its live name.
    pub name: String,
    pub issuer: String,
    pub subject: String,
    /// Its audiences, as they are.
    pub audiences: Vec<String>,
}

/// A role assignment of an identity's principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub comments: Vec<String>,
    /// Key of the identity in [`Stack::identities`].
    pub identity: String,
    /// The role definition's id (full, or its GUID), when known.
    pub role_definition_id: Option<String>,
    /// The role's name, when known.
    pub role_name: Option<String>,
    /// The scope, a full ARM id.
    pub scope: String,
    /// An ABAC condition (version 2.0).
    pub condition: Option<String>,
}

/// A key for `[clusters]` or `[identities]` made from an Azure name: ASCII letters, digits, `-`
/// and `_` (anything else becomes `-`), starting with a letter or digit, at most 63 characters.
pub fn key_for(name: &str) -> String {
    let mut key = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if !(c == '-' && key.ends_with('-')) {
            key.push(c);
        }
    }
    let key = key.trim_start_matches(['-', '_']);
    let key: String = key.chars().take(63).collect();
    let key = key.trim_end_matches('-').to_string();
    if key.is_empty() {
        "imported".into()
    } else {
        key
    }
}

/// Keys handed out so far, so that two objects never share one: the second `api` is `api-2`.
#[derive(Debug, Default)]
pub struct Keys(std::collections::BTreeSet<String>);

impl Keys {
    /// A key for `name` that no earlier call returned (compared without regard to case).
    pub fn unique(&mut self, name: &str) -> String {
        let base = key_for(name);
        let mut key = base.clone();
        let mut n = 2;
        while self.0.contains(&key.to_ascii_lowercase()) {
            let suffix = format!("-{n}");
            let head: String = base.chars().take(63 - suffix.len()).collect();
            key = format!("{head}{suffix}");
            n += 1;
        }
        self.0.insert(key.to_ascii_lowercase());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_key_rule_and_never_repeat() {
        assert_eq!(key_for("id-orders-api"), "id-orders-api");
        assert_eq!(key_for("AKS Workload Identity"), "AKS-Workload-Identity");
        assert_eq!(key_for("__x..y"), "x-y");
        assert_eq!(key_for("é"), "imported");
        assert_eq!(key_for(&"a".repeat(80)).len(), 63);
        let mut keys = Keys::default();
        assert_eq!(keys.unique("api"), "api");
        assert_eq!(keys.unique("API"), "API-2");
        assert_eq!(keys.unique("api"), "api-3");
        let long = "b".repeat(70);
        assert_eq!(keys.unique(&long).len(), 63);
        let second = keys.unique(&long);
        assert_eq!(second.len(), 63);
        assert!(second.ends_with("-2"));
    }
}
