//! Preloading a sandbox (`wiform sandbox seed -f FILE`): resource groups, identities that
//! already exist, their federated credentials, unmanaged role assignments, app registrations —
//! the objects a test or a demo needs to find in place. The file is TOML or JSON.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::state::{
    AppFederatedCredential, Application, FederatedCredential, ResourceGroup, RoleAssignment,
    ServicePrincipal, State, UserAssignedIdentity, key, now_ms,
};

#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub resource_groups: Vec<SeedGroup>,
    #[serde(default)]
    pub identities: Vec<SeedIdentity>,
    #[serde(default)]
    pub federated_credentials: Vec<SeedCredential>,
    #[serde(default)]
    pub role_assignments: Vec<SeedRoleAssignment>,
    #[serde(default)]
    pub applications: Vec<SeedApplication>,
    #[serde(default)]
    pub managed_clusters: Vec<SeedCluster>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCluster {
    pub resource_group: String,
    pub name: String,
    #[serde(default = "default_location")]
    pub location: String,
    /// OIDC issuer on (its URL is `{sandbox}/oidc/{tenant}/{guid}/`).
    #[serde(default)]
    pub oidc_issuer: bool,
    #[serde(default)]
    pub workload_identity: bool,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedGroup {
    pub name: String,
    #[serde(default = "default_location")]
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedIdentity {
    pub resource_group: String,
    pub name: String,
    #[serde(default = "default_location")]
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub client_id: Option<String>,
    pub principal_id: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCredential {
    /// `RESOURCE_GROUP/IDENTITY` of a managed identity, or `app:DISPLAY_NAME` of an application.
    pub identity: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedRoleAssignment {
    /// Full ARM scope.
    pub scope: String,
    /// Built-in role name or role definition GUID.
    pub role: String,
    /// `RESOURCE_GROUP/IDENTITY` of a managed identity, or a principal object id.
    pub principal: String,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeedApplication {
    pub display_name: String,
    pub app_id: Option<String>,
}

fn default_location() -> String {
    "westeurope".into()
}

fn default_audiences() -> Vec<String> {
    vec!["api://AzureADTokenExchange".into()]
}

/// Reads a seed file (`.json`, else TOML).
pub fn parse(name: &str, text: &str) -> Result<Seed, String> {
    if name.ends_with(".json") {
        serde_json::from_str(text).map_err(|e| e.to_string())
    } else {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// What a seed added, for the CLI to report.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Added {
    pub resource_groups: usize,
    pub identities: usize,
    pub federated_credentials: usize,
    pub role_assignments: usize,
    pub applications: usize,
    pub managed_clusters: usize,
}

/// Where an offline seed assumes the sandbox will serve (issuer URLs of seeded clusters).
pub const DEFAULT_BASE_URL: &str = "https://127.0.0.1:8443";

/// Adds the seed's objects to the default subscription. Objects that exist are updated.
/// `base_url` is where the sandbox serves (it is part of seeded clusters' issuer URLs).
pub fn apply(state: &mut State, seed: &Seed, base_url: &str) -> Result<Added, String> {
    let subscription = state
        .subscriptions
        .first()
        .cloned()
        .ok_or("the sandbox has no subscription")?;
    let mut added = Added::default();
    for group in &seed.resource_groups {
        let id = crate::arm::resource_groups::id(&subscription, &group.name);
        state.resource_groups.insert(
            key(&id),
            ResourceGroup {
                id,
                name: group.name.clone(),
                subscription_id: subscription.clone(),
                location: group.location.clone(),
                tags: group.tags.clone(),
                managed_by: None,
            },
        );
        added.resource_groups += 1;
    }
    for identity in &seed.identities {
        let group = crate::arm::resource_groups::id(&subscription, &identity.resource_group);
        if !state.resource_groups.contains_key(&key(&group)) {
            return Err(format!(
                "identity {}: resource group {} is not in the sandbox (add it under [[resource_groups]])",
                identity.name, identity.resource_group
            ));
        }
        let id =
            crate::arm::identities::id(&subscription, &identity.resource_group, &identity.name);
        let principal_id = identity
            .principal_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let client_id = identity
            .client_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        state.service_principals.insert(
            principal_id.clone(),
            ServicePrincipal {
                id: principal_id.clone(),
                app_id: client_id.clone(),
                display_name: identity.name.clone(),
                service_principal_type: "ManagedIdentity".into(),
                alternative_names: vec!["isExplicit=True".into(), id.clone()],
                created_ms: 0,
            },
        );
        state.identities.insert(
            key(&id),
            UserAssignedIdentity {
                id,
                name: identity.name.clone(),
                subscription_id: subscription.clone(),
                resource_group: identity.resource_group.clone(),
                location: identity.location.clone(),
                tags: identity.tags.clone(),
                tenant_id: state.tenant_id.clone(),
                principal_id,
                client_id,
                created_ms: 0,
            },
        );
        added.identities += 1;
    }
    for cluster in &seed.managed_clusters {
        let group = crate::arm::resource_groups::id(&subscription, &cluster.resource_group);
        if !state.resource_groups.contains_key(&key(&group)) {
            return Err(format!(
                "cluster {}: resource group {} is not in the sandbox (add it under [[resource_groups]])",
                cluster.name, cluster.resource_group
            ));
        }
        crate::arm::containers::seed_cluster(
            state,
            base_url,
            &subscription,
            &cluster.resource_group,
            &cluster.name,
            &cluster.location,
            cluster.oidc_issuer,
            cluster.workload_identity,
        )?;
        added.managed_clusters += 1;
    }
    for app in &seed.applications {
        let object_id = uuid::Uuid::new_v4().to_string();
        let app_id = app
            .app_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        state.applications.insert(
            object_id.clone(),
            Application {
                id: object_id,
                app_id: app_id.clone(),
                display_name: app.display_name.clone(),
                unique_name: None,
                description: None,
                sign_in_audience: "AzureADMyOrg".into(),
                created_ms: 0,
                tags: Vec::new(),
                federated_credentials: Vec::new(),
            },
        );
        let sp = uuid::Uuid::new_v4().to_string();
        state.service_principals.insert(
            sp.clone(),
            ServicePrincipal {
                id: sp,
                app_id,
                display_name: app.display_name.clone(),
                service_principal_type: "Application".into(),
                alternative_names: Vec::new(),
                created_ms: 0,
            },
        );
        added.applications += 1;
    }
    for credential in &seed.federated_credentials {
        if let Some(display_name) = credential.identity.strip_prefix("app:") {
            let app = state
                .applications
                .values_mut()
                .find(|a| a.display_name == display_name)
                .ok_or_else(|| {
                    format!(
                        "federated credential {}: no application named {display_name:?}",
                        credential.name
                    )
                })?;
            app.federated_credentials
                .retain(|f| f.name != credential.name);
            app.federated_credentials.push(AppFederatedCredential {
                written_ms: 0,
                id: uuid::Uuid::new_v4().to_string(),
                name: credential.name.clone(),
                issuer: credential.issuer.clone(),
                subject: credential.subject.clone(),
                audiences: credential.audiences.clone(),
                description: None,
            });
        } else {
            let identity =
                find_identity(state, &subscription, &credential.identity).ok_or_else(|| {
                    format!(
                        "federated credential {}: no identity {:?} (write RESOURCE_GROUP/NAME)",
                        credential.name, credential.identity
                    )
                })?;
            let id = format!(
                "{}/federatedIdentityCredentials/{}",
                identity.id, credential.name
            );
            state.federated_credentials.insert(
                key(&id),
                FederatedCredential {
                    written_ms: 0,
                    id,
                    identity_key: key(&identity.id),
                    name: credential.name.clone(),
                    issuer: credential.issuer.clone(),
                    subject: credential.subject.clone(),
                    audiences: credential.audiences.clone(),
                },
            );
        }
        added.federated_credentials += 1;
    }
    for assignment in &seed.role_assignments {
        let role = crate::builtin_roles::by_name(&assignment.role)
            .map(|r| r.id.to_string())
            .or_else(|| {
                uuid::Uuid::try_parse(&assignment.role)
                    .ok()
                    .map(|u| u.to_string())
            })
            .ok_or_else(|| format!("role assignment: unknown role {:?}", assignment.role))?;
        let principal_id = match find_identity(state, &subscription, &assignment.principal) {
            Some(identity) => identity.principal_id,
            None => assignment.principal.clone(),
        };
        let scope = assignment.scope.trim_end_matches('/').to_string();
        let name = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{}|{principal_id}|{role}", key(&scope)).as_bytes(),
        )
        .to_string();
        let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
        let now = now_ms();
        state.role_assignments.insert(
            key(&id),
            RoleAssignment {
                id,
                name,
                scope,
                role_definition_id: format!("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                principal_id,
                principal_type: "ServicePrincipal".into(),
                description: assignment.description.clone(),
                condition: None,
                condition_version: None,
                created_ms: now,
                updated_ms: now,
                created_by: None,
                updated_by: None,
                delegated_managed_identity_resource_id: None,
            },
        );
        added.role_assignments += 1;
    }
    Ok(added)
}

fn find_identity(
    state: &State,
    subscription: &str,
    reference: &str,
) -> Option<UserAssignedIdentity> {
    let (group, name) = reference.split_once('/')?;
    state
        .identities
        .get(&key(&crate::arm::identities::id(subscription, group, name)))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
[[resource_groups]]
name = "rg-id"

[[identities]]
resource_group = "rg-id"
name = "legacy"
client_id = "11111111-1111-4111-8111-111111111111"

[[federated_credentials]]
identity = "rg-id/legacy"
name = "hand-made"
issuer = "https://oidc.example.com"
subject = "system:serviceaccount:a:b"

[[role_assignments]]
scope = "/subscriptions/bbbbbbbb-0000-4000-8000-000000000001/resourceGroups/rg-id"
role = "Reader"
principal = "rg-id/legacy"

[[applications]]
display_name = "Old App"

[[managed_clusters]]
resource_group = "rg-id"
name = "aks-seeded"
oidc_issuer = true
workload_identity = true
"#;

    #[test]
    fn a_seed_lands_in_the_state() {
        let seed = parse("seed.toml", SEED).unwrap();
        let mut state = State::new();
        let assignments_before = state.role_assignments.len();
        let added = apply(&mut state, &seed, DEFAULT_BASE_URL).unwrap();
        assert_eq!(
            added,
            Added {
                resource_groups: 1,
                identities: 1,
                federated_credentials: 1,
                role_assignments: 1,
                applications: 1,
                managed_clusters: 1,
            }
        );
        let cluster = state.managed_clusters.values().next().unwrap();
        assert_eq!(cluster.properties["provisioningState"], "Succeeded");
        let issuer = cluster.properties["oidcIssuerProfile"]["issuerURL"]
            .as_str()
            .unwrap();
        assert!(
            issuer.starts_with("https://127.0.0.1:8443/oidc/") && issuer.ends_with('/'),
            "{issuer}"
        );
        assert_eq!(
            cluster.properties["securityProfile"]["workloadIdentity"]["enabled"],
            true
        );
        let identity = state
            .identities
            .values()
            .find(|i| i.name == "legacy")
            .unwrap();
        assert_eq!(identity.client_id, "11111111-1111-4111-8111-111111111111");
        assert_eq!(
            state
                .federated_credentials_of_client(&identity.client_id, now_ms(), 0)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(state.role_assignments.len(), assignments_before + 1);
        assert!(
            state
                .service_principals
                .contains_key(&identity.principal_id)
        );
    }

    #[test]
    fn bad_references_are_reported() {
        let seed = parse(
            "s.toml",
            "[[identities]]\nresource_group = \"nope\"\nname = \"x\"\n",
        )
        .unwrap();
        assert!(
            apply(&mut State::new(), &seed, DEFAULT_BASE_URL)
                .unwrap_err()
                .contains("resource group nope")
        );
        assert!(parse("s.toml", "[[identities]]\nbogus = 1\n").is_err());
    }
}
