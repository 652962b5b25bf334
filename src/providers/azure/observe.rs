//! Observing Azure for one stack: what exists of everything the graph declares, and what the
//! stack owns that the graph no longer declares, read with list calls per scope — never one GET
//! per object.
//!
//! Two rounds, each fully concurrent (the client bounds the concurrency):
//! 1. per subscription: resource groups, managed identities, AKS clusters, role assignments;
//!    the stack's applications (one filtered list) and applications named in the config;
//!    custom roles per scope; role assignments at scopes outside the subscriptions listed;
//! 2. per identity found: its federated credentials (ARM has no cross-identity list), and per
//!    application found: its federated credentials.
//!
//! A failing list (403 on a scope, a throttled call that gave up) is recorded with what it was
//! for, and the rest of the observation goes on: the plan shows what it could read.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::join_all;
use serde::Serialize;

use super::applications::LiveApplication;
use super::clusters::LiveCluster;
use super::federated::LiveCredential;
use super::identities::{LiveIdentity, LiveResourceGroup};
use super::roles::{LiveRoleAssignment, RoleDefinition, RoleRef};
use super::{AzureError, AzureProvider};

/// What Azure holds for a stack.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AzureObservation {
    /// Resource groups of the subscriptions observed, by lower-case ARM id.
    pub resource_groups: BTreeMap<String, LiveResourceGroup>,
    /// Managed identities that the config declares or the stack owns, by lower-case ARM id.
    pub identities: BTreeMap<String, LiveIdentity>,
    /// Federated credentials of each identity in `identities`, by the identity's key.
    pub identity_credentials: BTreeMap<String, Vec<LiveCredential>>,
    /// Applications the stack owns, and those with a display name the config declares.
    pub applications: Vec<LiveApplication>,
    /// Federated credentials of each application, by its object id.
    pub application_credentials: BTreeMap<String, Vec<LiveCredential>>,
    /// AKS clusters the config declares, by lower-case ARM id.
    pub clusters: BTreeMap<String, LiveCluster>,
    /// Role assignments of the principals in `identities` and `applications`.
    pub role_assignments: Vec<LiveRoleAssignment>,
    /// Roles the config names by custom name or GUID, resolved at their scope.
    pub roles: Vec<ResolvedRole>,
    /// What could not be read, and why.
    pub errors: Vec<ObserveError>,
}

impl AzureObservation {
    /// The federated credential with this id (compared without case), of an identity or an
    /// application.
    pub fn credential(&self, id: &str) -> Option<&LiveCredential> {
        self.identity_credentials
            .values()
            .chain(self.application_credentials.values())
            .flatten()
            .find(|c| c.id.eq_ignore_ascii_case(id))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedRole {
    /// Full ARM id of the scope, as the graph has it.
    pub scope: String,
    pub role: RoleRef,
    pub definition: RoleDefinition,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObserveError {
    /// Which list failed, so that the planner knows what it cannot plan.
    pub listing: Listing,
    /// What was being read, in words: `managed identities in subscription …`.
    pub what: String,
    pub error: AzureError,
}

/// One list of an observation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "list", content = "of", rename_all = "snake_case")]
pub enum Listing {
    /// Of a subscription (lower-case id).
    ResourceGroups(String),
    Identities(String),
    RoleAssignments(String),
    Clusters(String),
    /// Role assignments at a scope outside the subscriptions listed.
    RoleAssignmentsAt(String),
    Applications,
    /// A custom role at a scope: (scope, role as written).
    Role(String, String),
    /// Federated credentials of an identity (its key) or application (its object id).
    IdentityCredentials(String),
    ApplicationCredentials(String),
}

/// What to observe, in plain terms: the engine builds it from the config's resources, so that
/// the provider needs to know nothing of the graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObserveScope {
    /// Subscriptions (lower-case ids) whose resource groups, identities and role assignments
    /// are listed: the config's own always, so that what the stack owns there is found (and
    /// pruned) even when the config no longer declares an identity or group in it.
    pub subscriptions: BTreeSet<String>,
    /// Managed identities the config declares (lower-case ARM ids).
    pub identity_keys: BTreeSet<String>,
    /// Subscriptions whose AKS clusters are listed.
    pub cluster_subscriptions: BTreeSet<String>,
    /// AKS clusters the config declares (lower-case ARM ids).
    pub cluster_keys: BTreeSet<String>,
    /// Display names of the applications the config declares.
    pub application_names: BTreeSet<String>,
    /// Roles named by custom name or GUID, to resolve at their scope.
    pub roles: BTreeSet<(String, RoleRef)>,
    /// Scopes of role grants (full ARM ids).
    pub scopes: BTreeSet<String>,
}

/// `/subscriptions/{s}/…` → `s`, lower-case.
fn subscription_of_scope(scope: &str) -> Option<String> {
    super::client::subscription_of(scope).map(|s| s.to_ascii_lowercase())
}

/// One list of round 1.
enum Listed {
    ResourceGroups(Vec<LiveResourceGroup>),
    Identities(Vec<LiveIdentity>),
    Clusters(Vec<LiveCluster>),
    Applications(Vec<LiveApplication>),
    RoleAssignments(Vec<LiveRoleAssignment>),
    Role(ResolvedRole),
}

impl AzureProvider {
    /// Observes what Azure holds for `stack` within `scope`.
    pub async fn observe(&self, stack: &str, w: &ObserveScope) -> AzureObservation {
        let mut observation = AzureObservation::default();

        // Round 1.
        type Round1<'a> = std::pin::Pin<
            Box<
                dyn std::future::Future<Output = (Listing, String, Result<Listed, AzureError>)>
                    + Send
                    + 'a,
            >,
        >;
        let mut lists: Vec<Round1<'_>> = Vec::new();
        for sub in &w.subscriptions {
            lists.push(Box::pin(async move {
                (
                    Listing::ResourceGroups(sub.clone()),
                    format!("resource groups in subscription {sub}"),
                    self.list_resource_groups(sub)
                        .await
                        .map(Listed::ResourceGroups),
                )
            }));
            lists.push(Box::pin(async move {
                (
                    Listing::Identities(sub.clone()),
                    format!("managed identities in subscription {sub}"),
                    self.list_subscription_identities(sub)
                        .await
                        .map(Listed::Identities),
                )
            }));
            lists.push(Box::pin(async move {
                (
                    Listing::RoleAssignments(sub.clone()),
                    format!("role assignments in subscription {sub}"),
                    self.list_role_assignments(sub)
                        .await
                        .map(Listed::RoleAssignments),
                )
            }));
        }
        for sub in &w.cluster_subscriptions {
            lists.push(Box::pin(async move {
                (
                    Listing::Clusters(sub.clone()),
                    format!("AKS clusters in subscription {sub}"),
                    self.list_clusters(sub).await.map(Listed::Clusters),
                )
            }));
        }
        lists.push(Box::pin(async move {
            (
                Listing::Applications,
                format!("applications of stack {stack}"),
                self.list_stack_applications(stack)
                    .await
                    .map(Listed::Applications),
            )
        }));
        if !w.application_names.is_empty() {
            let names: Vec<String> = w.application_names.iter().cloned().collect();
            lists.push(Box::pin(async move {
                (
                    Listing::Applications,
                    "applications by display name".to_string(),
                    self.find_applications_by_display_name(&names)
                        .await
                        .map(Listed::Applications),
                )
            }));
        }
        // Assignments at scopes outside the subscriptions listed (management groups, other
        // subscriptions): at or above each such scope.
        for scope in &w.scopes {
            if subscription_of_scope(scope).is_some_and(|s| w.subscriptions.contains(&s)) {
                continue;
            }
            lists.push(Box::pin(async move {
                (
                    Listing::RoleAssignmentsAt(scope.clone()),
                    format!("role assignments at {scope}"),
                    self.list_role_assignments_at(scope, None)
                        .await
                        .map(Listed::RoleAssignments),
                )
            }));
        }
        for (scope, role) in &w.roles {
            lists.push(Box::pin(async move {
                (
                    Listing::Role(scope.clone(), role.display().to_string()),
                    format!("role `{}` at {scope}", role.display()),
                    self.resolve_role(scope, role).await.map(|definition| {
                        Listed::Role(ResolvedRole {
                            scope: scope.clone(),
                            role: role.clone(),
                            definition,
                        })
                    }),
                )
            }));
        }

        let mut assignments = Vec::new();
        let mut applications: BTreeMap<String, LiveApplication> = BTreeMap::new();
        for (listing, what, result) in join_all(lists).await {
            match result {
                Err(error) => observation.errors.push(ObserveError {
                    listing,
                    what,
                    error,
                }),
                Ok(Listed::ResourceGroups(groups)) => {
                    for g in groups {
                        observation.resource_groups.insert(g.key(), g);
                    }
                }
                Ok(Listed::Identities(identities)) => {
                    for i in identities {
                        let key = i.key();
                        if w.identity_keys.contains(&key) || i.owner.is_stack(stack) {
                            observation.identities.insert(key, i);
                        }
                    }
                }
                Ok(Listed::Clusters(clusters)) => {
                    for c in clusters {
                        let key = c.id.to_ascii_lowercase();
                        if w.cluster_keys.contains(&key) {
                            observation.clusters.insert(key, c);
                        }
                    }
                }
                Ok(Listed::Applications(apps)) => {
                    for a in apps {
                        applications.insert(a.object_id.clone(), a);
                    }
                }
                Ok(Listed::RoleAssignments(found)) => assignments.extend(found),
                Ok(Listed::Role(role)) => observation.roles.push(role),
            }
        }
        observation.applications = applications.into_values().collect();

        // Only the assignments of this stack's principals matter to the plan.
        let principals: BTreeSet<String> = observation
            .identities
            .values()
            .map(|i| i.principal_id.to_ascii_lowercase())
            .chain(
                observation
                    .applications
                    .iter()
                    .filter_map(|a| a.service_principal_id.clone()),
            )
            .collect();
        let mut seen = BTreeSet::new();
        observation.role_assignments = assignments
            .into_iter()
            .filter(|a| principals.contains(&a.principal_id))
            .filter(|a| seen.insert(a.id.to_ascii_lowercase()))
            .collect();

        // Round 2: federated credentials of each identity and application found.
        let identity_lists = observation.identities.values().map(|identity| async move {
            (
                identity.key(),
                format!(
                    "federated credentials of managed identity {}",
                    identity.label()
                ),
                self.list_identity_credentials(&identity.id).await,
            )
        });
        let application_lists = observation.applications.iter().map(|app| async move {
            (
                app.object_id.clone(),
                format!("federated credentials of application {}", app.display_name),
                self.list_application_credentials(&app.object_id).await,
            )
        });
        let (identity_credentials, application_credentials) =
            futures::join!(join_all(identity_lists), join_all(application_lists));
        for (key, what, result) in identity_credentials {
            match result {
                Ok(credentials) => {
                    observation.identity_credentials.insert(key, credentials);
                }
                Err(error) => observation.errors.push(ObserveError {
                    listing: Listing::IdentityCredentials(key),
                    what,
                    error,
                }),
            }
        }
        for (key, what, result) in application_credentials {
            match result {
                Ok(credentials) => {
                    observation.application_credentials.insert(key, credentials);
                }
                Err(error) => observation.errors.push(ObserveError {
                    listing: Listing::ApplicationCredentials(key),
                    what,
                    error,
                }),
            }
        }
        observation
    }
}
