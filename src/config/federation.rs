//! The federated credentials a config asks for: the explicit `[[federations]]` and the ones
//! implied by each `[[service_accounts]]` entry. Validation and the graph both use this list.

use super::model::{Config, Span};

pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Where a federated credential's issuer comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssuerSource {
    /// Written in the config (a `[[federations]]` issuer or a non-AKS cluster's `issuer`).
    Url(String),
    /// The OIDC issuer of an AKS cluster, known only once read from ARM (the cluster's key).
    Cluster(String),
}

/// One federated credential the config asks for.
#[derive(Debug, Clone)]
pub struct WantedCredential {
    /// Key of the identity in `[identities]`.
    pub identity: String,
    pub name: String,
    pub issuer: IssuerSource,
    pub subject: String,
    pub audiences: Vec<String>,
    /// The config entry that asks for it: a `[[federations]]` or `[[service_accounts]]` table.
    pub origin: Span,
    /// Index in `service_accounts` when implied by a service account.
    pub service_account: Option<usize>,
}

/// The subject Kubernetes puts in a service account token.
pub fn service_account_subject(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Default name of the credential implied by a service account: `CLUSTER-NAMESPACE-NAME`, made to
/// fit the Azure name rule (letters, digits, `-`, `_`, 3–120 characters). Over-long names keep
/// their head and end in a hash of the whole, so that they stay unique and stable.
pub fn implied_credential_name(cluster: &str, namespace: &str, name: &str) -> String {
    let full: String = format!("{cluster}-{namespace}-{name}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if full.len() <= 120 {
        return full;
    }
    let hash = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, full.as_bytes())
        .simple()
        .to_string();
    format!("{}-{}", &full[..111], &hash[..8])
}

/// Every federated credential the config asks for, explicit ones first, in file order.
/// Entries that reference an unknown cluster or miss a required value are left out
/// (validation reports them).
pub fn wanted_credentials(config: &Config) -> Vec<WantedCredential> {
    let mut out: Vec<WantedCredential> = config
        .federations
        .iter()
        .filter(|f| {
            ![&f.identity, &f.name, &f.issuer, &f.subject]
                .iter()
                .any(|v| v.is_missing())
        })
        .map(|f| WantedCredential {
            identity: f.identity.value.clone(),
            name: f.name.value.clone(),
            issuer: IssuerSource::Url(f.issuer.value.clone()),
            subject: f.subject.value.clone(),
            audiences: audiences(f.audiences.as_ref()),
            origin: f.name.span.clone(),
            service_account: None,
        })
        .collect();
    for (index, sa) in config.service_accounts.iter().enumerate() {
        if [&sa.identity, &sa.cluster, &sa.namespace, &sa.name]
            .iter()
            .any(|v| v.is_missing())
        {
            continue;
        }
        let Some(cluster) = config.clusters.get(&sa.cluster) else {
            continue;
        };
        let issuer = match (&cluster.issuer, &cluster.name) {
            (Some(url), _) => IssuerSource::Url(url.value.clone()),
            (None, Some(_)) => IssuerSource::Cluster(sa.cluster.value.clone()),
            (None, None) => continue,
        };
        out.push(WantedCredential {
            identity: sa.identity.value.clone(),
            name: sa.federation_name.as_ref().map_or_else(
                || implied_credential_name(&sa.cluster, &sa.namespace, &sa.name),
                |n| n.value.clone(),
            ),
            issuer,
            subject: service_account_subject(&sa.namespace, &sa.name),
            audiences: audiences(sa.audiences.as_ref()),
            origin: sa.name.span.clone(),
            service_account: Some(index),
        });
    }
    out
}

fn audiences(list: Option<&super::model::Sp<Vec<super::model::Sp<String>>>>) -> Vec<String> {
    match list {
        Some(list) => list.iter().map(|a| a.value.clone()).collect(),
        None => vec![DEFAULT_AUDIENCE.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn implied_names_fit_azure_rules() {
        assert_eq!(
            implied_credential_name("prod", "orders", "orders-api"),
            "prod-orders-orders-api"
        );
        assert_eq!(
            implied_credential_name("prod", "orders", "api.v2"),
            "prod-orders-api-v2"
        );
        let long = implied_credential_name("prod", &"n".repeat(63), &"s".repeat(200));
        assert_eq!(long.len(), 120);
        assert!(crate::config::names::federated_credential_name(&long).is_ok());
        // Stable, and distinct for names that share a long head.
        assert_eq!(
            long,
            implied_credential_name("prod", &"n".repeat(63), &"s".repeat(200))
        );
        assert_ne!(
            long,
            implied_credential_name("prod", &"n".repeat(63), &"s".repeat(201))
        );
    }

    #[test]
    fn subject_is_what_kubernetes_writes() {
        assert_eq!(
            service_account_subject("orders", "api"),
            "system:serviceaccount:orders:api"
        );
    }
}
