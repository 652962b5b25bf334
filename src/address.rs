//! Resource addresses: the stable, human-readable name of each thing wiform manages, as shown in
//! plans and accepted by `--target`, e.g. `identity.orders-api` or
//! `service_account.prod/orders/orders-api`.

use std::fmt;

use serde::Serialize;

/// Which federated credential of an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredentialKey {
    /// A `[[federations]]` entry, by its name.
    Named(String),
    /// The credential implied by a service account.
    ServiceAccount {
        cluster: String,
        namespace: String,
        name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Address {
    ResourceGroup(String),
    Cluster(String),
    Identity(String),
    FederatedCredential {
        identity: String,
        key: CredentialKey,
    },
    RoleGrant {
        identity: String,
        role: String,
        scope: String,
    },
    Namespace {
        cluster: String,
        name: String,
    },
    ServiceAccount {
        cluster: String,
        namespace: String,
        name: String,
    },
}

impl Address {
    /// The resource type prefix, e.g. `identity`.
    pub fn kind(&self) -> &'static str {
        match self {
            Address::ResourceGroup(_) => "resource_group",
            Address::Cluster(_) => "cluster",
            Address::Identity(_) => "identity",
            Address::FederatedCredential { .. } => "federated_credential",
            Address::RoleGrant { .. } => "role_grant",
            Address::Namespace { .. } => "namespace",
            Address::ServiceAccount { .. } => "service_account",
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.", self.kind())?;
        match self {
            Address::ResourceGroup(name) | Address::Cluster(name) | Address::Identity(name) => {
                f.write_str(name)
            }
            Address::FederatedCredential { identity, key } => match key {
                CredentialKey::Named(name) => write!(f, "{identity}/{name}"),
                CredentialKey::ServiceAccount {
                    cluster,
                    namespace,
                    name,
                } => write!(f, "{identity}/{cluster}:{namespace}/{name}"),
            },
            Address::RoleGrant {
                identity,
                role,
                scope,
            } => write!(f, "{identity}[{role:?} @ {scope}]"),
            Address::Namespace { cluster, name } => write!(f, "{cluster}/{name}"),
            Address::ServiceAccount {
                cluster,
                namespace,
                name,
            } => write!(f, "{cluster}/{namespace}/{name}"),
        }
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_like_the_docs() {
        let s = |a: Address| a.to_string();
        assert_eq!(
            s(Address::Identity("orders-api".into())),
            "identity.orders-api"
        );
        assert_eq!(
            s(Address::FederatedCredential {
                identity: "orders-api".into(),
                key: CredentialKey::ServiceAccount {
                    cluster: "prod".into(),
                    namespace: "orders".into(),
                    name: "orders-api".into()
                }
            }),
            "federated_credential.orders-api/prod:orders/orders-api"
        );
        assert_eq!(
            s(Address::FederatedCredential {
                identity: "orders-api".into(),
                key: CredentialKey::Named("github-main".into())
            }),
            "federated_credential.orders-api/github-main"
        );
        assert_eq!(
            s(Address::RoleGrant {
                identity: "orders-api".into(),
                role: "Storage Blob Data Contributor".into(),
                scope: "/subscriptions/x/resourceGroups/rg".into()
            }),
            "role_grant.orders-api[\"Storage Blob Data Contributor\" @ /subscriptions/x/resourceGroups/rg]"
        );
        assert_eq!(
            s(Address::ServiceAccount {
                cluster: "prod".into(),
                namespace: "orders".into(),
                name: "orders-api".into()
            }),
            "service_account.prod/orders/orders-api"
        );
    }
}
