//! `wiform import` of what exists in Azure and the clusters: what the list calls found, as plain
//! data ([`Found`], filled by the command from the providers' answers) → a [`Stack`]. Pure.
//!
//! A user-assigned identity is imported when it has a federated credential. Each credential
//! whose issuer is a named cluster's and whose subject `system:serviceaccount:NS:NAME` is a
//! service account of that cluster annotated with the identity's client id becomes a
//! `[[service_accounts]]` entry (with `federation_name` when its live name is not the implied
//! one: the writer decides); every other credential a `[[federations]]` entry, with a comment
//! saying why. The role assignments of the imported identities' principals become
//! `[[role_grants]]`. What identity.toml cannot say becomes a note.

use std::collections::{BTreeMap, BTreeSet};

use super::issuer::service_account_of;
use super::model::{
    Cluster, ClusterKind, Federation, Identity, IdentityKind, Keys, RoleGrant, ServiceAccount,
    Stack,
};
use crate::arm_id;
use crate::config::federation::DEFAULT_AUDIENCE;
use crate::config::names;

/// The annotation that binds a service account to an identity.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";

/// Annotations that are kubectl's bookkeeping, never the user's settings.
const KUBECTL_PREFIX: &str = "kubectl.kubernetes.io/";

/// What the list calls found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub tenant_id: String,
    pub subscription_id: String,
    /// Only the identities of these resource groups (any case); all when empty.
    pub resource_groups: Vec<String>,
    /// Where it was read from, for the header (`subscription …`, `the sandbox`).
    pub source: String,
    pub identities: Vec<FoundIdentity>,
    pub credentials: Vec<FoundCredential>,
    pub assignments: Vec<FoundAssignment>,
    pub clusters: Vec<FoundCluster>,
    pub service_accounts: Vec<FoundServiceAccount>,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundIdentity {
    /// Its ARM id.
    pub id: String,
    pub name: String,
    pub resource_group: String,
    pub location: String,
    pub tags: Vec<(String, String)>,
    pub client_id: String,
    pub principal_id: String,
    /// An app registration (its `id` is its object id, its `name` its display name), not a
    /// managed identity.
    pub application: bool,
}

/// A federated credential of a managed identity or (`identity_id` an object id) an
/// application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundCredential {
    /// The ARM id of its identity.
    pub identity_id: String,
    /// Its own ARM id.
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// A role assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundAssignment {
    pub id: String,
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub condition: Option<String>,
}

/// A cluster named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCluster {
    pub kind: FoundClusterKind,
    /// Its OIDC issuer URL (AKS: `oidcIssuerProfile.issuerURL`; otherwise the API server's
    /// discovery document); `None` when it has none.
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoundClusterKind {
    Aks {
        subscription_id: String,
        resource_group: String,
        name: String,
        /// Its ARM id.
        id: String,
        workload_identity_enabled: bool,
    },
    Context {
        kube_context: String,
    },
}

impl FoundCluster {
    fn label(&self) -> String {
        match &self.kind {
            FoundClusterKind::Aks {
                resource_group,
                name,
                ..
            } => format!("AKS cluster {resource_group}/{name}"),
            FoundClusterKind::Context { kube_context } => {
                format!("the cluster of kubeconfig context {kube_context}")
            }
        }
    }
}

/// A service account annotated with a client id, on one of the named clusters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoundServiceAccount {
    /// Index in [`Found::clusters`].
    pub cluster: usize,
    pub namespace: String,
    pub name: String,
    pub annotations: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
}

impl FoundServiceAccount {
    fn client_id(&self) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == CLIENT_ID_ANNOTATION)
            .map(|(_, v)| v.as_str())
    }
}

/// The stack named `stack_name` that `found` makes.
pub fn map(found: &Found, stack_name: &str) -> Stack {
    let mut notes = Vec::new();
    let mut identity_keys = Keys::default();
    let wanted = |rg: &str| {
        found.resource_groups.is_empty()
            || found
                .resource_groups
                .iter()
                .any(|g| g.eq_ignore_ascii_case(rg))
    };

    // Identities with a credential, in name order (deterministic whatever the list order).
    let mut candidates: Vec<&FoundIdentity> = found
        .identities
        .iter()
        // App registrations are in no resource group: `--resource-group` leaves them out.
        .filter(|i| wanted(&i.resource_group))
        .filter(|i| {
            found
                .credentials
                .iter()
                .any(|c| c.identity_id.eq_ignore_ascii_case(&i.id))
        })
        .collect();
    candidates.sort_by_key(|i| (i.name.to_ascii_lowercase(), i.id.to_ascii_lowercase()));
    let mut identities = Vec::new();
    // Lower-case ARM id → (key, identity).
    let mut by_id: BTreeMap<String, (String, &FoundIdentity)> = BTreeMap::new();
    for identity in candidates {
        let key = identity_keys.unique(&identity.name);
        by_id.insert(identity.id.to_ascii_lowercase(), (key.clone(), identity));
        let (comment, kind) = if identity.application {
            (
                format!(
                    "app registration {} (object id {}, client id {})",
                    identity.name, identity.id, identity.client_id
                ),
                IdentityKind::Application {
                    display_name: identity.name.clone(),
                },
            )
        } else {
            (
                identity.id.clone(),
                IdentityKind::Managed {
                    name: identity.name.clone(),
                    resource_group: identity.resource_group.clone(),
                    location: Some(identity.location.clone()),
                    tags: identity.tags.clone(),
                },
            )
        };
        identities.push(Identity {
            key,
            comments: vec![comment],
            kind,
        });
    }

    // Cluster keys, in command-line order.
    let mut cluster_keys = Keys::default();
    let keys: Vec<String> = found
        .clusters
        .iter()
        .map(|c| match &c.kind {
            FoundClusterKind::Aks { name, .. } => cluster_keys.unique(name),
            FoundClusterKind::Context { kube_context } => cluster_keys.unique(kube_context),
        })
        .collect();
    let mut used_clusters = BTreeSet::new();

    // Credentials, in identity then name order.
    let mut credentials: Vec<(&FoundCredential, &String, &FoundIdentity)> = found
        .credentials
        .iter()
        .filter_map(|c| {
            by_id
                .get(&c.identity_id.to_ascii_lowercase())
                .map(|(key, identity)| (c, key, *identity))
        })
        .collect();
    credentials.sort_by_key(|(c, key, _)| ((*key).clone(), c.name.to_ascii_lowercase()));
    let mut service_accounts = Vec::new();
    let mut federations = Vec::new();
    let mut bound_accounts: BTreeSet<usize> = BTreeSet::new();
    for (credential, key, identity) in credentials {
        if let Err(reason) = fits(credential) {
            notes.push(format!(
                "Federated credential {} of identity {key} cannot be written in identity.toml: \
                 {reason}. It is not imported; wiform leaves it as it is ({}).",
                credential.name, credential.id
            ));
            continue;
        }
        let mut why = Vec::new();
        let cluster = found
            .clusters
            .iter()
            .position(|c| c.issuer.as_deref() == Some(credential.issuer.as_str()));
        let subject = service_account_of(&credential.subject).filter(|(namespace, name)| {
            names::dns1123_label(namespace).is_ok() && names::dns1123_subdomain(name).is_ok()
        });
        if let (Some(cluster), Some((namespace, name))) = (cluster, subject) {
            let account = found.service_accounts.iter().position(|sa| {
                sa.cluster == cluster && sa.namespace == namespace && sa.name == name
            });
            let cluster_label = found.clusters[cluster].label();
            match account {
                Some(index)
                    if found.service_accounts[index]
                        .client_id()
                        .is_some_and(|c| c.eq_ignore_ascii_case(&identity.client_id))
                        && !bound_accounts.contains(&index) =>
                {
                    bound_accounts.insert(index);
                    used_clusters.insert(cluster);
                    let sa = &found.service_accounts[index];
                    service_accounts.push(ServiceAccount {
                        comments: vec![
                            format!("{cluster_label}: service account {namespace}/{name}"),
                            credential.id.clone(),
                        ],
                        cluster: keys[cluster].clone(),
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                        identity: key.clone(),
                        credential_name: credential.name.clone(),
                        audiences: credential.audiences.clone(),
                        annotations: sa
                            .annotations
                            .iter()
                            .filter(|(k, _)| !k.starts_with(KUBECTL_PREFIX))
                            .cloned()
                            .collect(),
                        labels: sa.labels.clone(),
                        create_namespace: None,
                    });
                    continue;
                }
                Some(index) => why.push(format!(
                    "Service account {namespace}/{name} on {cluster_label} is annotated with \
                     client id {}, not this identity's ({}): this credential stays a federation.",
                    found.service_accounts[index].client_id().unwrap_or("none"),
                    identity.client_id
                )),
                None => why.push(format!(
                    "No service account {namespace}/{name} annotated with a client id was found \
                     on {cluster_label}: this credential stays a federation."
                )),
            }
        }
        let mut comments = vec![credential.id.clone()];
        comments.extend(why);
        federations.push(Federation {
            comments,
            identity: key.clone(),
            name: credential.name.clone(),
            issuer: credential.issuer.clone(),
            subject: credential.subject.clone(),
            audiences: credential.audiences.clone(),
        });
    }

    // Annotated accounts no credential binds.
    for (index, sa) in found.service_accounts.iter().enumerate() {
        if bound_accounts.contains(&index) {
            continue;
        }
        let Some(client_id) = sa.client_id() else {
            continue;
        };
        let cluster = found
            .clusters
            .get(sa.cluster)
            .map(FoundCluster::label)
            .unwrap_or_default();
        notes.push(format!(
            "Service account {}/{} on {cluster} is annotated with client id {client_id}, but no \
             federated credential of an imported identity trusts it: not imported.",
            sa.namespace, sa.name
        ));
    }

    // The clusters the service accounts are on.
    let mut clusters = Vec::new();
    for (index, cluster) in found.clusters.iter().enumerate() {
        let key = keys[index].clone();
        if !used_clusters.contains(&index) {
            notes.push(format!(
                "{} binds no imported service account: not written.",
                cluster.label()
            ));
            continue;
        }
        let kind = match &cluster.kind {
            FoundClusterKind::Aks {
                subscription_id,
                resource_group,
                name,
                workload_identity_enabled,
                ..
            } => {
                if !workload_identity_enabled {
                    notes.push(format!(
                        "{} has workload identity turned off: written with \
                         enable_workload_identity = false, so that wiform does not change the \
                         cluster; remove that line to let wiform turn it on.",
                        cluster.label()
                    ));
                }
                ClusterKind::Aks {
                    subscription_id: (!subscription_id
                        .eq_ignore_ascii_case(&found.subscription_id))
                    .then(|| subscription_id.clone()),
                    resource_group: resource_group.clone(),
                    name: name.clone(),
                    enable_workload_identity: (!workload_identity_enabled).then_some(false),
                }
            }
            FoundClusterKind::Context { kube_context } => ClusterKind::Issuer {
                // Bound accounts only exist on clusters whose issuer is known.
                issuer: cluster.issuer.clone().unwrap_or_default(),
                kube_context: kube_context.clone(),
            },
        };
        let comments = match &cluster.kind {
            FoundClusterKind::Aks { id, .. } => vec![id.clone()],
            FoundClusterKind::Context { kube_context } => {
                vec![format!("kubeconfig context {kube_context}")]
            }
        };
        clusters.push(Cluster {
            key,
            comments,
            kind,
        });
    }

    // Role assignments of the imported principals.
    let principals: BTreeMap<String, &String> = by_id
        .values()
        .map(|(key, identity)| (identity.principal_id.to_ascii_lowercase(), key))
        .collect();
    let mut assignments: Vec<(&FoundAssignment, &String)> = found
        .assignments
        .iter()
        .filter_map(|a| {
            principals
                .get(&a.principal_id.to_ascii_lowercase())
                .map(|key| (a, *key))
        })
        .collect();
    assignments.sort_by_key(|(a, key)| ((*key).clone(), a.id.to_ascii_lowercase()));
    let mut role_grants = Vec::new();
    let mut seen = BTreeSet::new();
    for (assignment, key) in assignments {
        let grant = RoleGrant {
            comments: vec![assignment.id.clone()],
            identity: key.clone(),
            role_definition_id: Some(assignment.role_definition_id.clone()),
            role_name: None,
            scope: canonical_scope(&assignment.scope),
            condition: assignment.condition.clone(),
        };
        let (role, _) = super::write::role_text(&grant);
        let unique = (
            key.clone(),
            role.to_ascii_lowercase(),
            arm_id::full_scope(&assignment.scope, &found.subscription_id).to_ascii_lowercase(),
        );
        let problem = if let Err(reason) = names::arm_scope(&assignment.scope) {
            Some(format!("its scope is not valid: {reason}"))
        } else if role.is_empty() {
            Some("it names no role definition".to_string())
        } else if !seen.insert(unique) {
            Some(format!(
                "identity {key} already has role {role} on that scope from another assignment"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            notes.push(format!(
                "Role assignment {} of identity {key} is not imported: {problem}. wiform leaves \
                 it as it is.",
                assignment.id
            ));
            continue;
        }
        role_grants.push(grant);
    }

    let mut header = vec![format!(
        "Imported from {} by `wiform import`{}.",
        found.source,
        match found.clusters.len() {
            0 => String::new(),
            _ => format!(
                " (clusters: {})",
                found
                    .clusters
                    .iter()
                    .map(FoundCluster::label)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    )];
    header.push(
        "Review it, then run `wiform plan`: it should only adopt (nothing to add, change, \
         replace or destroy)."
            .into(),
    );
    Stack {
        name: stack_name.to_string(),
        header,
        tenant_id: Some(found.tenant_id.clone()).filter(|t| !t.is_empty()),
        subscription_id: Some(found.subscription_id.clone()).filter(|s| !s.is_empty()),
        clusters,
        identities,
        service_accounts,
        federations,
        role_grants,
        notes,
    }
}

/// `scope` with ARM's usual spelling of the segments it names (`resourceGroups`,
/// `managementGroups`): list answers may give them in lower case, and ARM compares without case.
fn canonical_scope(scope: &str) -> String {
    scope
        .split('/')
        .map(|segment| {
            if segment.eq_ignore_ascii_case("resourcegroups") {
                "resourceGroups"
            } else if segment.eq_ignore_ascii_case("managementgroups") {
                "managementGroups"
            } else if segment.eq_ignore_ascii_case("subscriptions") {
                "subscriptions"
            } else if segment.eq_ignore_ascii_case("providers") {
                "providers"
            } else if segment.eq_ignore_ascii_case("microsoft.management") {
                "Microsoft.Management"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Why identity.toml cannot hold `credential`, if it cannot (the rules of `wiform validate`).
fn fits(credential: &FoundCredential) -> Result<(), String> {
    names::federated_credential_name(&credential.name)
        .map_err(|reason| format!("its name is not valid: {reason}"))?;
    names::https_url(&credential.issuer)
        .map_err(|reason| format!("its issuer is not valid: {reason}"))?;
    let subject = &credential.subject;
    if subject.chars().count() > 600 || subject.contains('*') {
        return Err("its subject is longer than 600 characters or has a '*'".into());
    }
    match credential.audiences.as_slice() {
        [one] if !one.is_empty() && one.chars().count() <= 600 => Ok(()),
        [] => Err(format!(
            "it has no audience (wiform would write {DEFAULT_AUDIENCE})"
        )),
        _ => Err("it has more than one audience, or an empty or over-long one".into()),
    }
}

#[cfg(test)]
mod tests;
