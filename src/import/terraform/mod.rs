//! `wiform import --from-terraform`: the output of `terraform show -json` → a [`Stack`], and the
//! Terraform addresses of what it now declares (for `terraform state rm`). Reads nothing else.
//!
//! What is taken over: the user-assigned identities and application registrations that have a
//! federated credential in the state, those credentials, the applications' service principals,
//! the role assignments of those principals, and the `kubernetes_service_account(_v1)` that a
//! credential trusts on an AKS cluster of the state. Clusters and namespaces stay in Terraform
//! (wiform only reads a cluster's issuer and uses a namespace as it is). Everything else related
//! to what is taken over, or that identity.toml cannot say, becomes a note.
//!
//! A credential whose issuer is an AKS cluster's and whose subject is a service account that is
//! *not* in the state (made by Helm, GitOps, kubectl) is written as a `[[federations]]` entry
//! with the cluster's issuer URL, not as a `[[service_accounts]]` entry: the import reads nothing
//! from the cluster, so it cannot know the account exists, and a service account entry would make
//! wiform write to an object another tool manages. The comment above it says how to move it.

mod json;
mod state;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

pub use json::ReadError;
use state::{
    Application, Credential, Instance, KubeServiceAccount, KubernetesCluster, RoleAssignment,
    ServicePrincipal, UserAssignedIdentity,
};

use super::issuer::service_account_of;
use super::model::{
    Cluster, ClusterKind, Federation, Identity, IdentityKind, Keys, RoleGrant, ServiceAccount,
    Stack,
};
use crate::arm_id;
use crate::config::federation::DEFAULT_AUDIENCE;
use crate::config::names;

/// What an import of a Terraform state gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub stack: Stack,
    /// The Terraform addresses of every object the stack now declares, sorted: what `terraform
    /// state rm` must forget once wiform has adopted them.
    pub taken: Vec<String>,
}

/// Reads `text`, the output of `terraform show -json`, into a stack named `stack_name`;
/// `source` names the file in the header comment.
pub fn read(text: &str, stack_name: &str, source: &str) -> Result<Import, ReadError> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        ReadError::new("", format!("it is not JSON: {e}"))
            .with_hint("give the output of `terraform show -json > state.json`, unchanged")
    })?;
    read_value(&doc, stack_name, source)
}

/// [`read`] of a parsed document.
pub fn read_value(doc: &Value, stack_name: &str, source: &str) -> Result<Import, ReadError> {
    let state = state::read(doc)?;
    let parsed = Parsed::read(&state)?;
    let mut mapper = Mapper::default();
    for instance in &parsed.deposed {
        mapper.notes.push(format!(
            "{} has a deposed object (create_before_destroy) that Terraform has not destroyed \
             yet: not imported; let Terraform finish with it first.",
            instance.address
        ));
    }
    let mut stack = mapper.map(&parsed);
    stack.name = stack_name.to_string();
    stack.header = vec![
        format!(
            "Imported from {source}{} by `wiform import --from-terraform`.",
            state
                .terraform_version
                .map(|v| format!(" (Terraform {v})"))
                .unwrap_or_default()
        ),
        "Review it, then run `wiform plan`: it should only adopt (nothing to add, change, replace \
         or destroy). After `wiform apply`, run the `terraform state rm` that the import printed."
            .into(),
    ];
    Ok(Import {
        stack,
        taken: mapper.taken.into_iter().collect(),
    })
}

/// The instances of the state, read per type (managed resources; data sources apart).
#[derive(Default)]
struct Parsed<'a> {
    identities: Vec<(&'a Instance<'a>, UserAssignedIdentity<'a>)>,
    managed_credentials: Vec<(&'a Instance<'a>, Credential<'a>)>,
    applications: Vec<(&'a Instance<'a>, Application<'a>)>,
    application_credentials: Vec<(&'a Instance<'a>, Credential<'a>)>,
    service_principals: Vec<(&'a Instance<'a>, ServicePrincipal<'a>)>,
    assignments: Vec<(&'a Instance<'a>, RoleAssignment<'a>)>,
    service_accounts: Vec<(&'a Instance<'a>, KubeServiceAccount<'a>)>,
    clusters: Vec<(&'a Instance<'a>, KubernetesCluster<'a>)>,
    /// Every managed resource, in document order.
    all: Vec<&'a Instance<'a>>,
    data: Vec<&'a Instance<'a>>,
    deposed: Vec<&'a Instance<'a>>,
}

impl<'a> Parsed<'a> {
    fn read(state: &'a state::State<'a>) -> Result<Self, ReadError> {
        let mut p = Parsed::default();
        for instance in &state.instances {
            if instance.deposed {
                p.deposed.push(instance);
                continue;
            }
            if !instance.managed() {
                p.data.push(instance);
                continue;
            }
            p.all.push(instance);
            let values = || {
                instance
                    .values
                    .as_ref()
                    .ok_or_else(|| ReadError::new(&instance.path, "has no `values`"))
            };
            match instance.kind {
                "azurerm_user_assigned_identity" => p
                    .identities
                    .push((instance, UserAssignedIdentity::read(values()?)?)),
                "azurerm_federated_identity_credential" => p
                    .managed_credentials
                    .push((instance, Credential::read_managed(values()?)?)),
                "azuread_application" | "azuread_application_registration" => p
                    .applications
                    .push((instance, Application::read(values()?)?)),
                "azuread_application_federated_identity_credential" => p
                    .application_credentials
                    .push((instance, Credential::read_application(values()?)?)),
                "azuread_service_principal" => p
                    .service_principals
                    .push((instance, ServicePrincipal::read(values()?)?)),
                "azurerm_role_assignment" => p
                    .assignments
                    .push((instance, RoleAssignment::read(values()?)?)),
                "kubernetes_service_account" | "kubernetes_service_account_v1" => p
                    .service_accounts
                    .push((instance, KubeServiceAccount::read(values()?)?)),
                "azurerm_kubernetes_cluster" => p
                    .clusters
                    .push((instance, KubernetesCluster::read(values()?)?)),
                _ => {}
            }
        }
        Ok(p)
    }

    /// A string attribute of the data sources of `kind`, first found.
    fn data_attribute(&self, kinds: &[&str], key: &str) -> Option<String> {
        self.data
            .iter()
            .filter(|i| kinds.contains(&i.kind))
            .filter_map(|i| i.values.as_ref()?.str(key).ok().flatten())
            .map(str::to_string)
            .next()
    }
}

/// An identity the stack declares, as credentials and assignments find it.
struct Imported {
    key: String,
    client_id: Option<String>,
}

/// What an id found in another resource names.
#[derive(Debug, Clone)]
enum Anchor {
    /// An imported identity (its key).
    Identity(String),
    /// The custom role of a grant of an imported identity (its key).
    CustomRole(String),
}

/// A credential of an imported identity, whichever provider made it.
struct Cred<'a> {
    address: &'a str,
    /// Index in `Mapper::imported`.
    identity: usize,
    live_id: String,
    credential: &'a Credential<'a>,
}

#[derive(Default)]
struct Mapper<'a> {
    notes: Vec<String>,
    taken: BTreeSet<String>,
    /// Addresses already accounted for (taken or noted): the related scan skips them.
    handled: BTreeSet<&'a str>,
    /// Lower-case ids of what is taken over (ARM ids, client, principal and object ids) and of
    /// what it uses, to find the resources that refer to it.
    anchors: BTreeMap<String, Anchor>,
    imported: Vec<Imported>,
    identities: Vec<Identity>,
    /// Lower-case ARM id of a managed identity, or object id of an application → `imported`.
    by_parent: BTreeMap<String, usize>,
    /// Lower-case principal (object) id → `imported`.
    principals: BTreeMap<String, usize>,
    /// The namespaces of the service accounts taken over.
    namespaces: BTreeSet<String>,
    identity_keys: Keys,
    cluster_keys: Keys,
}

impl<'a> Mapper<'a> {
    fn map(&mut self, p: &'a Parsed<'a>) -> Stack {
        let subscription = subscription(p);
        let tenant = tenant(p);
        self.managed_identities(p, subscription.as_deref());
        self.applications(p);
        let creds = self.credentials(p);
        let (clusters, service_accounts, federations) = self.bind(p, creds);
        let role_grants = self.role_grants(p, subscription.as_deref());
        self.related(p);
        Stack {
            name: String::new(),
            header: Vec::new(),
            tenant_id: tenant,
            subscription_id: subscription,
            clusters,
            identities: std::mem::take(&mut self.identities),
            service_accounts,
            federations,
            role_grants,
            notes: std::mem::take(&mut self.notes),
        }
    }

    fn take(&mut self, address: &'a str) {
        self.handled.insert(address);
        self.taken.insert(address.to_string());
    }

    fn leave(&mut self, address: &'a str, note: String) {
        self.handled.insert(address);
        self.notes.push(note);
    }

    fn anchor(&mut self, value: Option<&str>, what: Anchor) {
        if let Some(value) = value {
            self.anchors.insert(value.to_ascii_lowercase(), what);
        }
    }

    /// The user-assigned identities with a federated credential, in the stack's subscription.
    fn managed_identities(&mut self, p: &'a Parsed<'a>, subscription: Option<&str>) {
        for (instance, uai) in &p.identities {
            let has_credential = p
                .managed_credentials
                .iter()
                .any(|(_, c)| c.parent.eq_ignore_ascii_case(uai.id));
            if !has_credential {
                self.leave(
                    instance.address,
                    format!(
                        "{} ({}) has no federated credential in the state, so it is not a \
                         workload identity: it stays in Terraform.",
                        instance.address, uai.name
                    ),
                );
                continue;
            }
            if let (Some(own), Some(stack)) = (arm_id::subscription_of(uai.id), subscription)
                && !own.eq_ignore_ascii_case(stack)
            {
                self.leave(
                    instance.address,
                    format!(
                        "{} ({}) is in subscription {own}, not the stack's ({stack}): the \
                         managed identities of a stack live in one subscription, so it stays in \
                         Terraform (import it into a stack of its own).",
                        instance.address, uai.name
                    ),
                );
                continue;
            }
            let key = self.identity_keys.unique(uai.name);
            self.take(instance.address);
            for id in [Some(uai.id), uai.client_id, uai.principal_id] {
                self.anchor(id, Anchor::Identity(key.clone()));
            }
            let index = self.imported.len();
            self.by_parent.insert(uai.id.to_ascii_lowercase(), index);
            if let Some(principal) = uai.principal_id {
                self.principals
                    .insert(principal.to_ascii_lowercase(), index);
            }
            self.imported.push(Imported {
                key: key.clone(),
                client_id: uai.client_id.map(str::to_string),
            });
            self.identities.push(Identity {
                key,
                comments: vec![
                    format!("terraform: {}", instance.address),
                    uai.id.to_string(),
                ],
                kind: IdentityKind::Managed {
                    name: uai.name.to_string(),
                    resource_group: uai.resource_group.to_string(),
                    location: uai.location.map(str::to_string),
                    tags: uai.tags.clone(),
                },
            });
        }
    }

    /// The application registrations with a federated credential, and their service principals.
    fn applications(&mut self, p: &'a Parsed<'a>) {
        let mut display_names = BTreeSet::new();
        for (instance, app) in &p.applications {
            let Some(object_id) = app.object_id.as_deref() else {
                self.leave(
                    instance.address,
                    format!(
                        "{} ({}) has no object id in the state: not imported; it stays in \
                         Terraform (run `terraform refresh`, then import again).",
                        instance.address, app.display_name
                    ),
                );
                continue;
            };
            let has_credential = p
                .application_credentials
                .iter()
                .any(|(_, c)| c.parent.eq_ignore_ascii_case(object_id));
            if !has_credential {
                self.leave(
                    instance.address,
                    format!(
                        "{} ({}) has no federated credential in the state, so it is not a \
                         workload identity: it stays in Terraform.",
                        instance.address, app.display_name
                    ),
                );
                continue;
            }
            if !display_names.insert(app.display_name.to_lowercase()) {
                self.leave(
                    instance.address,
                    format!(
                        "{} has the display name {:?}, like another application imported \
                         before it: wiform finds applications by display name, so it stays in \
                         Terraform (rename one of them and import again).",
                        instance.address, app.display_name
                    ),
                );
                continue;
            }
            let key = self.identity_keys.unique(app.display_name);
            self.take(instance.address);
            for id in [app.id, Some(object_id), app.client_id] {
                self.anchor(id, Anchor::Identity(key.clone()));
            }
            let index = self.imported.len();
            self.by_parent.insert(object_id.to_ascii_lowercase(), index);
            let principal = p.service_principals.iter().find(|(_, sp)| {
                matches!((sp.client_id, app.client_id), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
            });
            let mut addresses = instance.address.to_string();
            match principal {
                Some((sp_instance, sp)) => {
                    self.take(sp_instance.address);
                    addresses = format!("{addresses}, {}", sp_instance.address);
                    for id in [sp.id, sp.object_id] {
                        self.anchor(id, Anchor::Identity(key.clone()));
                    }
                    if let Some(principal) = sp.object_id {
                        self.principals
                            .insert(principal.to_ascii_lowercase(), index);
                    }
                }
                None => self.notes.push(format!(
                    "{} ({}) has no azuread_service_principal in the state: wiform manages an \
                     application's service principal too, and adopts the one that exists (or \
                     creates it). Its role assignments could not be recognised: check them \
                     after `wiform plan`.",
                    instance.address, app.display_name
                )),
            }
            self.imported.push(Imported {
                key: key.clone(),
                client_id: app.client_id.map(str::to_string),
            });
            self.identities.push(Identity {
                key,
                comments: vec![
                    format!("terraform: {addresses}"),
                    format!("Microsoft Graph: /applications/{object_id}"),
                ],
                kind: IdentityKind::Application {
                    display_name: app.display_name.to_string(),
                },
            });
        }
    }

    /// The credentials of the imported identities that identity.toml can hold.
    fn credentials(&mut self, p: &'a Parsed<'a>) -> Vec<Cred<'a>> {
        let mut out = Vec::new();
        let lists = [
            (&p.managed_credentials, true),
            (&p.application_credentials, false),
        ];
        for (list, managed) in lists {
            for (instance, credential) in list {
                let Some(&identity) = self.by_parent.get(&credential.parent.to_ascii_lowercase())
                else {
                    let in_state = if managed {
                        p.identities
                            .iter()
                            .any(|(_, u)| u.id.eq_ignore_ascii_case(&credential.parent))
                    } else {
                        p.applications.iter().any(|(_, a)| {
                            a.object_id
                                .as_deref()
                                .is_some_and(|o| o.eq_ignore_ascii_case(&credential.parent))
                        })
                    };
                    let reason = if in_state {
                        "its identity is not imported (see the note about it)".to_string()
                    } else {
                        format!("its identity ({}) is not in this state", credential.parent)
                    };
                    self.leave(
                        instance.address,
                        format!(
                            "{} (credential {}): {reason}; it stays in Terraform.",
                            instance.address, credential.name
                        ),
                    );
                    continue;
                };
                if let Err(reason) = fits(credential) {
                    self.leave(
                        instance.address,
                        format!(
                            "{} (credential {}) cannot be written in identity.toml: {reason}. It \
                             stays in Terraform, on an identity that wiform now manages.",
                            instance.address, credential.name
                        ),
                    );
                    continue;
                }
                let live_id = match (managed, credential.id) {
                    (true, Some(id)) => id.to_string(),
                    _ => format!(
                        "Microsoft Graph: /applications/{}/federatedIdentityCredentials/{}",
                        credential.parent, credential.name
                    ),
                };
                out.push(Cred {
                    address: instance.address,
                    identity,
                    live_id,
                    credential,
                });
            }
        }
        out
    }

    /// Each credential as the service account it trusts (on an AKS cluster of the state, with the
    /// account in the state too) or as a federation; the clusters those accounts are on.
    fn bind(
        &mut self,
        p: &'a Parsed<'a>,
        creds: Vec<Cred<'a>>,
    ) -> (Vec<Cluster>, Vec<ServiceAccount>, Vec<Federation>) {
        let mut issuers: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, (_, cluster)) in p.clusters.iter().enumerate() {
            if let Some(url) = cluster.oidc_issuer_url {
                issuers.entry(url).or_insert(index);
            }
        }
        // Credentials that trust the same token: (issuer, subject), in the order first seen.
        let mut groups: Vec<((&str, &str), Vec<Cred<'a>>)> = Vec::new();
        for cred in creds {
            let token = (cred.credential.issuer, cred.credential.subject);
            match groups.iter_mut().find(|(t, _)| *t == token) {
                Some((_, group)) => group.push(cred),
                None => groups.push((token, vec![cred])),
            }
        }
        let mut used = vec![false; p.service_accounts.len()];
        let mut cluster_keys: BTreeMap<usize, String> = BTreeMap::new();
        let mut accounts = Vec::new();
        let mut federations = Vec::new();
        for ((issuer, subject), group) in groups {
            let target = issuers
                .get(issuer)
                .copied()
                .zip(service_account_of(subject).filter(|(namespace, name)| {
                    names::dns1123_label(namespace).is_ok()
                        && names::dns1123_subdomain(name).is_ok()
                }));
            let Some((cluster, (namespace, name))) = target else {
                for cred in group {
                    federations.push(self.federation(&cred, Vec::new()));
                }
                continue;
            };
            let cluster_key = cluster_keys
                .entry(cluster)
                .or_insert_with(|| self.cluster_keys.unique(p.clusters[cluster].1.name))
                .clone();
            let found = p
                .service_accounts
                .iter()
                .enumerate()
                .find(|(i, (_, sa))| !used[*i] && sa.namespace == namespace && sa.name == name);
            let Some((index, (sa_instance, sa))) = found else {
                let why = format!(
                    "Service account {namespace}/{name} on cluster {cluster_key} is not in the \
                     Terraform state, so this stays a federation: wiform will not write to that \
                     account. To let wiform manage it, declare it in [[service_accounts]] \
                     (cluster = \"{cluster_key}\", namespace = \"{namespace}\", name = \
                     \"{name}\") and drop this entry."
                );
                for cred in group {
                    federations.push(self.federation(&cred, vec![why.clone()]));
                }
                continue;
            };
            used[index] = true;
            let chosen = self.bound(sa, &group);
            for (i, cred) in group.into_iter().enumerate() {
                if i != chosen {
                    let why = format!(
                        "Service account {namespace}/{name} on cluster {cluster_key} is bound to \
                         another identity (a service account has one): this credential of \
                         identity {} stays a federation.",
                        self.imported[cred.identity].key
                    );
                    federations.push(self.federation(&cred, vec![why]));
                    continue;
                }
                accounts.push(self.service_account(sa_instance, sa, &cred, &cluster_key));
            }
        }
        let clusters = self.clusters(p, cluster_keys);
        (clusters, accounts, federations)
    }

    /// Which of the credentials that trust one service account binds it: the one whose identity
    /// the account's client-id annotation names, else the first.
    fn bound(&self, sa: &KubeServiceAccount<'_>, group: &[Cred<'_>]) -> usize {
        let annotated = client_id_annotation(sa);
        group
            .iter()
            .position(|c| {
                matches!(
                    (self.imported[c.identity].client_id.as_deref(), annotated),
                    (Some(a), Some(b)) if a.eq_ignore_ascii_case(b)
                )
            })
            .unwrap_or(0)
    }

    /// The AKS clusters whose issuer the credentials use, keyed as `keys` says (index in the
    /// state's clusters → key): read, never changed.
    fn clusters(&mut self, p: &'a Parsed<'a>, keys: BTreeMap<usize, String>) -> Vec<Cluster> {
        let mut clusters = Vec::new();
        for (index, key) in keys {
            let (instance, aks) = &p.clusters[index];
            self.handled.insert(instance.address);
            if aks.workload_identity_enabled == Some(false) {
                self.notes.push(format!(
                    "{} ({}) has workload_identity_enabled = false: its pods get no Azure token \
                     until it is turned on (in Terraform, which keeps the cluster).",
                    instance.address, aks.name
                ));
            }
            let mut comments = vec![format!(
                "terraform: {} (it stays in Terraform: wiform reads its OIDC issuer and changes \
                 nothing on it, hence enable_workload_identity = false)",
                instance.address
            )];
            comments.extend(aks.id.map(str::to_string));
            clusters.push(Cluster {
                key,
                comments,
                kind: ClusterKind::Aks {
                    subscription_id: aks.subscription_id.clone(),
                    resource_group: aks.resource_group.to_string(),
                    name: aks.name.to_string(),
                    enable_workload_identity: Some(false),
                },
            });
        }
        clusters
    }

    fn federation(&mut self, cred: &Cred<'a>, why: Vec<String>) -> Federation {
        self.take(cred.address);
        let mut comments = vec![format!("terraform: {}", cred.address), cred.live_id.clone()];
        comments.extend(why);
        let c = cred.credential;
        Federation {
            comments,
            identity: self.imported[cred.identity].key.clone(),
            name: c.name.to_string(),
            issuer: c.issuer.to_string(),
            subject: c.subject.to_string(),
            audiences: c.audiences.clone(),
        }
    }

    fn service_account(
        &mut self,
        instance: &'a Instance<'a>,
        sa: &KubeServiceAccount<'a>,
        cred: &Cred<'a>,
        cluster: &str,
    ) -> ServiceAccount {
        self.take(instance.address);
        self.take(cred.address);
        self.namespaces.insert(sa.namespace.to_string());
        let identity = &self.imported[cred.identity];
        let annotated = client_id_annotation(sa);
        if let (Some(annotated), Some(client_id)) = (annotated, identity.client_id.as_deref())
            && !annotated.eq_ignore_ascii_case(client_id)
        {
            self.notes.push(format!(
                "{} is annotated with client id {annotated}, not that of identity {} which its \
                 credential {} trusts: wiform will set the annotation to {client_id}.",
                instance.address, identity.key, cred.credential.name
            ));
        }
        if sa.has_secrets {
            self.notes.push(format!(
                "{}: wiform does not manage a service account's secrets and image pull secrets: \
                 they stay on the account as they are, managed by no one.",
                instance.address
            ));
        }
        ServiceAccount {
            comments: vec![
                format!("terraform: {}, {}", instance.address, cred.address),
                cred.live_id.clone(),
            ],
            cluster: cluster.to_string(),
            namespace: sa.namespace.to_string(),
            name: sa.name.to_string(),
            identity: identity.key.clone(),
            credential_name: cred.credential.name.to_string(),
            audiences: cred.credential.audiences.clone(),
            annotations: sa.annotations.clone(),
            labels: sa.labels.clone(),
            create_namespace: None,
        }
    }

    /// The role assignments of the imported identities' principals.
    fn role_grants(&mut self, p: &'a Parsed<'a>, subscription: Option<&str>) -> Vec<RoleGrant> {
        let mut grants: Vec<RoleGrant> = Vec::new();
        let mut seen = BTreeSet::new();
        for (instance, ra) in &p.assignments {
            let Some(&index) = self.principals.get(&ra.principal_id.to_ascii_lowercase()) else {
                continue;
            };
            let key = self.imported[index].key.clone();
            let address = instance.address;
            let grant = RoleGrant {
                comments: std::iter::once(format!("terraform: {address}"))
                    .chain(ra.id.map(str::to_string))
                    .collect(),
                identity: key.clone(),
                role_definition_id: ra.role_definition_id.map(str::to_string),
                role_name: ra.role_definition_name.map(str::to_string),
                scope: ra.scope.to_string(),
                condition: ra.condition.map(str::to_string),
            };
            let (role, _) = super::write::role_text(&grant);
            let full_scope = arm_id::full_scope(ra.scope, subscription.unwrap_or(""));
            let unique = (
                key.clone(),
                role.to_ascii_lowercase(),
                full_scope.to_ascii_lowercase(),
            );
            let problem = if let Some(version) = ra
                .condition_version
                .filter(|v| ra.condition.is_some() && *v != "2.0")
            {
                Some(format!(
                    "its condition is version {version}, and wiform writes conditions as version \
                     2.0"
                ))
            } else if ra.delegated_identity.is_some() {
                Some(
                    "it sets delegated_managed_identity_resource_id, which identity.toml cannot \
                     say"
                    .to_string(),
                )
            } else if let Err(reason) = names::arm_scope(ra.scope) {
                Some(format!("its scope {:?} is not valid: {reason}", ra.scope))
            } else if role.is_empty() {
                Some("it names no role definition".to_string())
            } else if !seen.insert(unique) {
                Some(format!(
                    "identity {key} already has role {role} on that scope from another \
                     assignment"
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                self.leave(
                    address,
                    format!(
                        "{address} (role assignment of identity {key}) is not imported: \
                         {problem}. It stays in Terraform."
                    ),
                );
                continue;
            }
            self.take(address);
            if super::write::role_text(&grant).1.is_some() {
                self.anchor(ra.role_definition_id, Anchor::CustomRole(key));
            }
            grants.push(grant);
        }
        grants
    }

    /// Notes for the other resources that refer to what was taken over; a count of the rest.
    fn related(&mut self, p: &'a Parsed<'a>) {
        let mut unrelated: BTreeMap<&str, usize> = BTreeMap::new();
        for instance in &p.all {
            if self.handled.contains(instance.address) {
                continue;
            }
            let namespace = matches!(
                instance.kind,
                "kubernetes_namespace" | "kubernetes_namespace_v1"
            )
            .then(|| instance.values.as_ref())
            .flatten()
            .and_then(|v| state::metadata(v).ok())
            .and_then(|m| m.str("name").ok().flatten());
            if let Some(namespace) = namespace.filter(|n| self.namespaces.contains(*n)) {
                self.leave(
                    instance.address,
                    format!(
                        "{} (namespace {namespace}) holds imported service accounts and stays in \
                         Terraform: wiform uses an existing namespace and leaves it alone.",
                        instance.address
                    ),
                );
                continue;
            }
            let mut strings = Vec::new();
            if let Some(values) = &instance.values {
                for value in values.map.values() {
                    json::strings_in(value, 32, &mut strings);
                }
            }
            let what = strings
                .iter()
                .find_map(|s| self.anchors.get(&s.to_ascii_lowercase()))
                .cloned();
            match what {
                Some(Anchor::Identity(key)) => self.leave(
                    instance.address,
                    format!(
                        "{} refers to identity {key}, which wiform now manages: it stays in \
                         Terraform; after `terraform state rm`, refer to the identity by id or \
                         through a data source.",
                        instance.address
                    ),
                ),
                Some(Anchor::CustomRole(key)) => self.leave(
                    instance.address,
                    format!(
                        "{} defines the custom role of a grant of identity {key}: it stays in \
                         Terraform (the grant names the role by its GUID).",
                        instance.address
                    ),
                ),
                None => *unrelated.entry(instance.kind).or_default() += 1,
            }
        }
        if !unrelated.is_empty() {
            let total: usize = unrelated.values().sum();
            let list: Vec<String> = unrelated
                .iter()
                .map(|(kind, n)| format!("{kind} ({n})"))
                .collect();
            self.notes.push(format!(
                "{total} other resource{} of the state do{} not belong to what was imported and \
                 stay{} in Terraform: {}.",
                if total == 1 { "" } else { "s" },
                if total == 1 { "es" } else { "" },
                if total == 1 { "s" } else { "" },
                list.join(", ")
            ));
        }
    }
}

/// The client id a service account's workload identity annotation names.
fn client_id_annotation<'s>(sa: &'s KubeServiceAccount<'_>) -> Option<&'s str> {
    sa.annotations
        .iter()
        .find(|(k, _)| k == "azure.workload.identity/client-id")
        .map(|(_, v)| v.as_str())
}

/// Why identity.toml cannot hold `credential`, if it cannot (the rules of `wiform validate`).
fn fits(credential: &Credential<'_>) -> Result<(), String> {
    names::federated_credential_name(credential.name)
        .map_err(|reason| format!("its name is not valid: {reason}"))?;
    names::https_url(credential.issuer)
        .map_err(|reason| format!("its issuer is not valid: {reason}"))?;
    let subject = credential.subject;
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

/// The stack's subscription: the most common among the identities with a credential, else what
/// the data sources, the clusters or the role assignments say.
fn subscription(p: &Parsed<'_>) -> Option<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (_, uai) in &p.identities {
        if !p
            .managed_credentials
            .iter()
            .any(|(_, c)| c.parent.eq_ignore_ascii_case(uai.id))
        {
            continue;
        }
        let Some(subscription) = arm_id::subscription_of(uai.id).filter(|s| names::is_guid(s))
        else {
            continue;
        };
        match counts
            .iter_mut()
            .find(|(s, _)| s.eq_ignore_ascii_case(&subscription))
        {
            Some((_, n)) => *n += 1,
            None => counts.push((subscription, 1)),
        }
    }
    let most = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
    if let Some((subscription, _)) = counts.into_iter().find(|(_, n)| *n == most) {
        return Some(subscription);
    }
    p.data_attribute(
        &["azurerm_client_config", "azurerm_subscription"],
        "subscription_id",
    )
    .into_iter()
    .chain(
        p.clusters
            .iter()
            .filter_map(|(_, c)| c.subscription_id.clone()),
    )
    .chain(
        p.assignments
            .iter()
            .filter_map(|(_, a)| arm_id::subscription_of(a.scope)),
    )
    .find(|s| names::is_guid(s))
}

/// The tenant: the identities', the service principals', or the data sources'.
fn tenant(p: &Parsed<'_>) -> Option<String> {
    p.identities
        .iter()
        .filter_map(|(_, u)| u.tenant_id.map(str::to_string))
        .chain(
            p.service_principals
                .iter()
                .filter_map(|(_, sp)| sp.tenant_id.map(str::to_string)),
        )
        .chain(p.data_attribute(
            &[
                "azurerm_client_config",
                "azuread_client_config",
                "azurerm_subscription",
            ],
            "tenant_id",
        ))
        .find(|t| names::is_guid(t))
}

#[cfg(test)]
mod tests;
