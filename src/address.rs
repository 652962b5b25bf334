//! Resource addresses: the stable, human-readable name of each thing wiform manages, as shown in
//! plans and accepted by `--target`, e.g. `identity.orders-api` or
//! `service_account.prod/orders/orders-api`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

impl Address {
    /// (cluster, namespace) of a Kubernetes object: a namespace, or what lives in one.
    pub fn kube_namespace(&self) -> Option<(&str, &str)> {
        match self {
            Address::Namespace { cluster, name } => Some((cluster, name)),
            Address::ServiceAccount {
                cluster, namespace, ..
            } => Some((cluster, namespace)),
            _ => None,
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

impl PartialEq<str> for Address {
    fn eq(&self, other: &str) -> bool {
        // Cheap kinds first: most comparisons fail on the prefix.
        other
            .split_once('.')
            .is_some_and(|(kind, _)| kind == self.kind())
            && {
                let text = self.to_string();
                text == other
            }
    }
}

impl PartialEq<&str> for Address {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for Address {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for Address {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        String::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

/// Why a text is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a resource address: {why}")]
pub struct AddressError {
    pub text: String,
    pub why: &'static str,
}

impl FromStr for Address {
    type Err = AddressError;

    /// The inverse of `Display`: `parse(a.to_string()) == a` for every address wiform makes.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |why| AddressError {
            text: text.to_string(),
            why,
        };
        let (prefix, rest) = text
            .split_once('.')
            .ok_or_else(|| error("it has no `kind.` prefix"))?;
        if rest.is_empty() {
            return Err(error("nothing follows the kind"));
        }
        let two = |rest: &str| {
            rest.split_once('/')
                .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                .map(|(a, b)| (a.to_string(), b.to_string()))
        };
        Ok(match prefix {
            "resource_group" => Address::ResourceGroup(rest.to_string()),
            "cluster" => Address::Cluster(rest.to_string()),
            "identity" => Address::Identity(rest.to_string()),
            "namespace" => {
                let (cluster, name) = two(rest).ok_or_else(|| error("expected CLUSTER/NAME"))?;
                Address::Namespace { cluster, name }
            }
            "service_account" => {
                let (cluster, rest) =
                    two(rest).ok_or_else(|| error("expected CLUSTER/NAMESPACE/NAME"))?;
                let (namespace, name) =
                    two(&rest).ok_or_else(|| error("expected CLUSTER/NAMESPACE/NAME"))?;
                Address::ServiceAccount {
                    cluster,
                    namespace,
                    name,
                }
            }
            "federated_credential" => {
                let (identity, key) = two(rest).ok_or_else(|| error("expected IDENTITY/NAME"))?;
                let key = match key.split_once(':').and_then(|(c, r)| {
                    let (ns, name) = r.split_once('/')?;
                    (!c.is_empty() && !ns.is_empty() && !name.is_empty()).then(|| {
                        CredentialKey::ServiceAccount {
                            cluster: c.to_string(),
                            namespace: ns.to_string(),
                            name: name.to_string(),
                        }
                    })
                }) {
                    Some(key) => key,
                    None => CredentialKey::Named(key),
                };
                Address::FederatedCredential { identity, key }
            }
            "role_grant" => {
                let expected = "expected IDENTITY[\"ROLE\" @ SCOPE]";
                let open = rest.find("[\"").ok_or_else(|| error(expected))?;
                let identity = &rest[..open];
                let inner = rest[open + 1..]
                    .strip_suffix(']')
                    .ok_or_else(|| error(expected))?;
                let (role, after) = read_quoted(inner).ok_or_else(|| error(expected))?;
                let scope = after.strip_prefix(" @ ").ok_or_else(|| error(expected))?;
                if identity.is_empty() || scope.is_empty() {
                    return Err(error(expected));
                }
                Address::RoleGrant {
                    identity: identity.to_string(),
                    role,
                    scope: scope.to_string(),
                }
            }
            _ => return Err(error("unknown kind")),
        })
    }
}

/// Reads a string literal as `{:?}` writes it, from the opening quote; returns it and what
/// follows the closing quote.
fn read_quoted(text: &str) -> Option<(String, &str)> {
    let mut chars = text.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &text[i + 2..])),
            '\\' => {
                let (_, escaped) = chars.next()?;
                match escaped {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    '0' => out.push('\0'),
                    '\\' | '"' | '\'' => out.push(escaped),
                    'u' => {
                        let (_, '{') = chars.next()? else {
                            return None;
                        };
                        let mut hex = String::new();
                        loop {
                            match chars.next()? {
                                (_, '}') => break,
                                (_, h) => hex.push(h),
                            }
                        }
                        out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    }
                    _ => return None,
                }
            }
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9][a-zA-Z0-9_-]{0,12}"
    }

    fn address() -> impl Strategy<Value = Address> {
        prop_oneof![
            part().prop_map(Address::ResourceGroup),
            part().prop_map(Address::Cluster),
            // Identities deleted as not in config are named by their live display name.
            "[^\\[/]{1,20}".prop_map(Address::Identity),
            (part(), part()).prop_map(|(identity, name)| Address::FederatedCredential {
                identity,
                key: CredentialKey::Named(name)
            }),
            (part(), part(), part(), part()).prop_map(|(identity, cluster, namespace, name)| {
                Address::FederatedCredential {
                    identity,
                    key: CredentialKey::ServiceAccount {
                        cluster,
                        namespace,
                        name,
                    },
                }
            }),
            (part(), any::<String>(), "/[a-zA-Z0-9/ .\\[\\]\"_-]{1,40}").prop_map(
                |(identity, role, scope)| Address::RoleGrant {
                    identity,
                    role,
                    scope
                }
            ),
            (part(), part()).prop_map(|(cluster, name)| Address::Namespace { cluster, name }),
            (part(), part(), part()).prop_map(|(cluster, namespace, name)| {
                Address::ServiceAccount {
                    cluster,
                    namespace,
                    name,
                }
            }),
        ]
    }

    proptest! {
        #[test]
        fn addresses_parse_back_to_themselves(a in address()) {
            let text = a.to_string();
            prop_assert_eq!(text.parse::<Address>(), Ok(a));
        }
    }

    #[test]
    fn text_that_is_no_address_is_refused_with_the_reason() {
        for text in [
            "identity",
            "identity.",
            "thing.x",
            "namespace.prod",
            "service_account.prod/orders",
            "federated_credential.api",
            "role_grant.api[Reader @ /s]",
            "role_grant.api[\"Reader\" /s]",
        ] {
            assert!(text.parse::<Address>().is_err(), "{text}");
        }
        let error = "thing.x".parse::<Address>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "`thing.x` is not a resource address: unknown kind"
        );
    }

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
