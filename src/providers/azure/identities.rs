//! Resource groups, user-assigned managed identities and the federated identity credentials
//! (FICs) on them: typed desired and observed state, and the ARM calls that read and write them.
//!
//! Sources: `Microsoft.ManagedIdentity/ManagedIdentity/stable/2024-11-30/ManagedIdentity.json`
//! (identities and FICs are synchronous; no provisioningState), `Microsoft.Resources/resources/
//! stable/2024-11-01/resources.json` (`ResourceGroups_*`; DELETE is long-running), and
//! "Important considerations and restrictions for federated identity credentials" (one FIC write
//! at a time per identity; a FIC written right after its identity may not find it yet).
//!
//! Ownership: groups and identities wiform writes carry the `wiform-stack` and `wiform-spec-hash`
//! tags next to the user's own; a delete is refused (without a request) unless the object carries
//! the marker of the stack asking. FICs take no tags: their marker is the parent identity's.
//!
//! ARM ids compare without regard to case (identities come back with `resourcegroups`): `key()`
//! gives the lower-case id to match desired and live objects by, while `id` keeps the spelling
//! ARM returned, for URLs and messages.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AzureProvider;
use super::client::{Request, Wait};
use super::error::{AzureError, AzureErrorKind};
use super::federated::{CredentialParent, LiveCredential};
use crate::ownership::{self, Owner, SPEC_HASH_TAG, STACK_TAG};
use crate::providers::Deletion;

/// Microsoft.ManagedIdentity api-version (identities and their FICs).
pub const MSI_API_VERSION: &str = "2024-11-30";
/// Microsoft.Resources api-version of resource groups.
pub const RESOURCE_GROUPS_API_VERSION: &str = "2024-11-01";

/// How long a FIC write waits for a just-created identity to replicate to the credential store.
const REPLICATION_WAIT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// Ids, names, tags

/// The lower-case form of an ARM id, to compare ids as ARM does (without regard to case).
pub fn arm_key(id: &str) -> String {
    id.trim_end_matches('/').to_ascii_lowercase()
}

/// ARM id of a resource group.
pub fn resource_group_id(subscription: &str, name: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{name}")
}

/// ARM id of a user-assigned managed identity.
pub fn identity_id(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        resource_group_id(subscription, resource_group)
    )
}

use crate::arm_id::segment as id_segment;

/// `rg/name` of a managed identity's ARM id, as messages name it (the id itself when it is
/// not one).
pub fn identity_label(identity_id: &str) -> String {
    match (
        id_segment(identity_id, "resourceGroups"),
        id_segment(identity_id, "userAssignedIdentities"),
    ) {
        (Some(rg), Some(name)) => format!("{rg}/{name}"),
        _ => identity_id.to_string(),
    }
}

/// Azure location names compare without case and spaces ("West Europe" = "westeurope").
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Marker tag names compare without regard to case, as Azure compares tag names.
/// wiform's own tags: the markers and the records of attached objects (`wiform-credentials`,
/// …). The config may not use the `wiform` prefix, so none of these is a user's tag.
fn is_marker_tag(name: &str) -> bool {
    name.eq_ignore_ascii_case(STACK_TAG)
        || name.eq_ignore_ascii_case(SPEC_HASH_TAG)
        || name.to_ascii_lowercase().starts_with("wiform-")
}

/// The user's tags: every tag but the markers.
pub fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !is_marker_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The user's tags plus the markers of `stack` and `spec_hash` (a user tag spelling a marker
/// name in another case is dropped: Azure would treat the two as one tag).
fn with_markers(
    tags: &BTreeMap<String, String>,
    stack: &str,
    spec_hash: String,
) -> BTreeMap<String, String> {
    let mut all = user_tags(tags);
    all.insert(STACK_TAG.to_string(), stack.to_string());
    all.insert(SPEC_HASH_TAG.to_string(), spec_hash);
    all
}

/// The spec hash of an ARM object wiform writes: its kind, place, location and user tags,
/// markers excluded, names and location normalised. The same function hashes the desired
/// object and the live one, so the two agree when nothing changed.
fn arm_spec_hash(kind: &str, key: &str, location: &str, tags: &BTreeMap<String, String>) -> String {
    ownership::spec_hash(&json!({
        "kind": kind,
        "id": key,
        "location": normalize_location(location),
        "tags": user_tags(tags),
    }))
}

/// The error of a delete wiform refuses because the object is not its stack's.
fn refuse_delete(action: String, owner: &Owner, stack: &str) -> AzureError {
    let whose = match owner {
        Owner::Unowned => "it carries no wiform marker".to_string(),
        Owner::Stack(m) => format!("it belongs to stack \"{}\"", m.stack),
    };
    AzureError::new(
        action,
        AzureErrorKind::Conflict {
            message: format!("refused: {whose}; wiform deletes only what stack \"{stack}\" owns"),
        },
    )
}

fn invalid(action: &str, message: String) -> AzureError {
    AzureError::invalid_response(action, message, None)
}

// ---------------------------------------------------------------------------------------------
// Resource groups

/// A resource group as the config asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredResourceGroup {
    /// The stack whose marker the group carries.
    pub stack: String,
    pub subscription_id: String,
    pub name: String,
    pub location: String,
    /// The user's tags, without markers.
    pub tags: BTreeMap<String, String>,
    /// wiform's records written beside the markers (what was there when it adopted the group).
    #[serde(default)]
    pub records: BTreeMap<String, String>,
}

impl DesiredResourceGroup {
    pub fn id(&self) -> String {
        resource_group_id(&self.subscription_id, &self.name)
    }

    /// What a live group is matched by: [`LiveResourceGroup::key`].
    pub fn key(&self) -> String {
        arm_key(&self.id())
    }

    pub fn spec_hash(&self) -> String {
        arm_spec_hash("resource_group", &self.key(), &self.location, &self.tags)
    }

    /// The tags wiform writes: the user's plus the markers and the records.
    pub fn tags_with_markers(&self) -> BTreeMap<String, String> {
        let mut tags = with_markers(&self.tags, &self.stack, self.spec_hash());
        tags.extend(self.records.clone());
        tags
    }

    /// `ResourceGroups_CreateOrUpdate` body.
    pub fn body(&self) -> Value {
        json!({ "location": self.location, "tags": self.tags_with_markers() })
    }
}

/// A resource group as ARM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveResourceGroup {
    /// The ARM id as returned (for URLs).
    pub id: String,
    pub subscription_id: String,
    pub name: String,
    /// Normalised (lower case, no spaces).
    pub location: String,
    /// All tags, markers included.
    pub tags: BTreeMap<String, String>,
    pub owner: Owner,
    /// `Succeeded`, or `Deleting` while a delete runs.
    pub provisioning_state: String,
}

impl LiveResourceGroup {
    /// The lower-case id, to match a desired group by.
    pub fn key(&self) -> String {
        arm_key(&self.id)
    }

    /// The hash of the group as it is now (compare with the recorded one for drift).
    pub fn spec_hash(&self) -> String {
        arm_spec_hash("resource_group", &self.key(), &self.location, &self.tags)
    }

    /// The spec hash the marker recorded at the last apply.
    pub fn recorded_hash(&self) -> Option<&str> {
        self.owner.marker().and_then(|m| m.spec_hash.as_deref())
    }

    pub fn user_tags(&self) -> BTreeMap<String, String> {
        user_tags(&self.tags)
    }

    /// From a `ResourceGroup` of the spec.
    pub fn from_arm(value: &Value) -> Result<Self, String> {
        let wire: ArmResourceGroup = serde_json::from_value(value.clone())
            .map_err(|e| format!("a resource group is not the documented shape: {e}"))?;
        let subscription_id = id_segment(&wire.id, "subscriptions")
            .ok_or_else(|| format!("`{}` is not a resource group id", wire.id))?
            .to_ascii_lowercase();
        let tags = wire.tags.unwrap_or_default();
        Ok(LiveResourceGroup {
            subscription_id,
            name: wire.name,
            location: normalize_location(&wire.location),
            owner: ownership::read_azure_marker(&tags),
            tags,
            provisioning_state: wire
                .properties
                .and_then(|p| p.provisioning_state)
                .unwrap_or_else(|| "Succeeded".into()),
            id: wire.id,
        })
    }
}

#[derive(Deserialize)]
struct ArmResourceGroup {
    id: String,
    name: String,
    location: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    properties: Option<ArmResourceGroupProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArmResourceGroupProperties {
    provisioning_state: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Managed identities

/// A user-assigned managed identity as the config asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredIdentity {
    /// The stack whose marker the identity carries.
    pub stack: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    /// The user's tags, without markers.
    pub tags: BTreeMap<String, String>,
    /// What it records of its credentials and role grants (see docs/concepts.md), written
    /// as tags beside the markers.
    #[serde(default)]
    pub records: BTreeMap<String, String>,
}

impl DesiredIdentity {
    /// With the record tags of its attached objects.
    pub fn with_records(mut self, records: BTreeMap<String, String>) -> Self {
        self.records = records;
        self
    }

    pub fn id(&self) -> String {
        identity_id(&self.subscription_id, &self.resource_group, &self.name)
    }

    /// What a live identity is matched by: [`LiveIdentity::key`].
    pub fn key(&self) -> String {
        arm_key(&self.id())
    }

    /// `rg/name`, as messages name it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.resource_group, self.name)
    }

    /// The hash of the fields wiform manages (place, location, user tags), markers excluded.
    pub fn spec_hash(&self) -> String {
        arm_spec_hash("managed_identity", &self.key(), &self.location, &self.tags)
    }

    /// The tags wiform writes: the user's plus the markers and the records.
    pub fn tags_with_markers(&self) -> BTreeMap<String, String> {
        let mut tags = with_markers(&self.tags, &self.stack, self.spec_hash());
        tags.extend(self.records.clone());
        tags
    }

    /// `UserAssignedIdentities_CreateOrUpdate` body (`properties` are read-only outputs).
    pub fn body(&self) -> Value {
        json!({ "location": self.location, "tags": self.tags_with_markers() })
    }
}

/// A user-assigned managed identity as ARM reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveIdentity {
    /// The ARM id as returned (`…/resourcegroups/…`), for URLs.
    pub id: String,
    /// Lower case (a GUID).
    pub subscription_id: String,
    /// As spelled in the id.
    pub resource_group: String,
    pub name: String,
    /// Normalised (lower case, no spaces).
    pub location: String,
    /// All tags, markers included.
    pub tags: BTreeMap<String, String>,
    pub owner: Owner,
    /// Goes into the service account annotation.
    pub client_id: String,
    /// The service principal's object id, for role assignments.
    pub principal_id: String,
    pub tenant_id: String,
}

impl LiveIdentity {
    /// The lower-case id, to match a desired identity by.
    pub fn key(&self) -> String {
        arm_key(&self.id)
    }

    /// `rg/name`, as messages name it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.resource_group, self.name)
    }

    /// The hash of the identity as it is now (compare with the recorded one for drift).
    pub fn spec_hash(&self) -> String {
        arm_spec_hash("managed_identity", &self.key(), &self.location, &self.tags)
    }

    /// The spec hash the marker recorded at the last apply.
    pub fn recorded_hash(&self) -> Option<&str> {
        self.owner.marker().and_then(|m| m.spec_hash.as_deref())
    }

    pub fn user_tags(&self) -> BTreeMap<String, String> {
        user_tags(&self.tags)
    }

    /// From an `Identity` of the spec (example `IdentityCreate.json`).
    pub fn from_arm(value: &Value) -> Result<Self, String> {
        let wire: ArmIdentity = serde_json::from_value(value.clone())
            .map_err(|e| format!("a managed identity is not the documented shape: {e}"))?;
        let (Some(subscription_id), Some(resource_group)) = (
            id_segment(&wire.id, "subscriptions"),
            id_segment(&wire.id, "resourceGroups"),
        ) else {
            return Err(format!("`{}` is not a managed identity id", wire.id));
        };
        let properties = wire.properties.unwrap_or_default();
        let required = |value: Option<String>, field: &str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("managed identity `{}` has no {field}", wire.id))
        };
        let tags = wire.tags.unwrap_or_default();
        Ok(LiveIdentity {
            subscription_id: subscription_id.to_ascii_lowercase(),
            resource_group: resource_group.to_string(),
            name: wire.name.clone(),
            location: normalize_location(&wire.location),
            owner: ownership::read_azure_marker(&tags),
            tags,
            client_id: required(properties.client_id, "clientId")?.to_ascii_lowercase(),
            principal_id: required(properties.principal_id, "principalId")?.to_ascii_lowercase(),
            tenant_id: required(properties.tenant_id, "tenantId")?.to_ascii_lowercase(),
            id: wire.id,
        })
    }
}

#[derive(Deserialize)]
struct ArmIdentity {
    id: String,
    name: String,
    location: String,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    properties: Option<ArmIdentityProperties>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ArmIdentityProperties {
    tenant_id: Option<String>,
    principal_id: Option<String>,
    client_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Federated identity credentials

/// A federated identity credential on a managed identity, as the config asks for it (issuer
/// resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredIdentityCredential {
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

impl DesiredIdentityCredential {
    /// `FederatedIdentityCredentials_CreateOrUpdate` body.
    pub fn body(&self) -> Value {
        json!({
            "properties": {
                "issuer": self.issuer,
                "subject": self.subject,
                "audiences": self.audiences,
            }
        })
    }
}

/// A federated identity credential of a managed identity, from a `FederatedIdentityCredential`
/// of the spec.
pub fn live_credential(identity_id: &str, value: &Value) -> Result<LiveCredential, String> {
    let wire: ArmCredential = serde_json::from_value(value.clone())
        .map_err(|e| format!("a federated identity credential is not the documented shape: {e}"))?;
    // Child resources may report `parent/child` as their name; the FIC's own name is last.
    let name = wire
        .name
        .rsplit('/')
        .next()
        .unwrap_or(&wire.name)
        .to_string();
    Ok(LiveCredential {
        parent: CredentialParent::ManagedIdentity(identity_id.to_string()),
        id: wire.id,
        name,
        issuer: wire.properties.issuer,
        subject: wire.properties.subject.unwrap_or_default(),
        audiences: wire.properties.audiences,
        description: None,
    })
}

#[derive(Deserialize)]
struct ArmCredential {
    id: String,
    name: String,
    properties: ArmCredentialProperties,
}

#[derive(Deserialize)]
struct ArmCredentialProperties {
    issuer: String,
    /// Optional only in preview versions with `claimsMatchingExpression`.
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// IO

fn with_version(path: &str, version: &str) -> String {
    format!("{path}?api-version={version}")
}

/// Converts every list item, or names the one that is not the documented shape.
fn convert_all<T>(
    action: &str,
    items: Vec<Value>,
    convert: impl Fn(&Value) -> Result<T, String>,
) -> Result<Vec<T>, AzureError> {
    items
        .iter()
        .map(|item| convert(item).map_err(|m| invalid(action, m)))
        .collect()
}

impl AzureProvider {
    /// Every resource group of the subscription (one paged list).
    pub async fn list_resource_groups(
        &self,
        subscription: &str,
    ) -> Result<Vec<LiveResourceGroup>, AzureError> {
        let action = format!("list resource groups of subscription {subscription}");
        let request = Request::arm(
            Method::GET,
            with_version(
                &format!("/subscriptions/{subscription}/resourcegroups"),
                RESOURCE_GROUPS_API_VERSION,
            ),
        )
        .action(&action);
        let items: Vec<Value> = self.client.list(&request).await?;
        convert_all(&action, items, LiveResourceGroup::from_arm)
    }

    /// Creates the group, or brings its location and tags to the desired ones (PUT by name:
    /// 201 created, 200 updated; synchronous). A new location for an existing group is refused
    /// by ARM (409 `InvalidResourceGroupLocation`).
    pub async fn put_resource_group(
        &self,
        desired: &DesiredResourceGroup,
    ) -> Result<LiveResourceGroup, AzureError> {
        let action = format!("create or update resource group {}", desired.name);
        let request = Request::arm(
            Method::PUT,
            with_version(&desired.id(), RESOURCE_GROUPS_API_VERSION),
        )
        .json(desired.body())
        .action(&action);
        let response = self.client.send(&request).await?;
        LiveResourceGroup::from_arm(&response.value())
            .map_err(|m| AzureError::invalid_response(&action, m, response.request_id.clone()))
    }

    /// Deletes the group and everything in it, only when it carries the marker of `stack`
    /// (otherwise a `Conflict` error, and no request). ARM deletes groups as a long-running
    /// operation (202 + `Location`, polled to the end); a group already gone is
    /// [`Deletion::AlreadyGone`].
    pub async fn delete_resource_group(
        &self,
        stack: &str,
        live: &LiveResourceGroup,
    ) -> Result<Deletion, AzureError> {
        let action = format!("delete resource group {}", live.name);
        if !live.owner.is_stack(stack) {
            return Err(refuse_delete(action, &live.owner, stack));
        }
        let request = Request::arm(
            Method::DELETE,
            with_version(&live.id, RESOURCE_GROUPS_API_VERSION),
        )
        .action(&action);
        match self.client.send_long_running(&request).await {
            // 204: nothing to delete (what the sandbox answers; ARM answers 404).
            Ok(response) if response.status == 204 => Ok(Deletion::AlreadyGone),
            Ok(_) => Ok(Deletion::Deleted),
            Err(e) if e.is_not_found() => Ok(Deletion::AlreadyGone),
            Err(e) => Err(e),
        }
    }

    /// The managed identities of one resource group (one paged list; the API has no
    /// `$filter`), or `None` when the group does not exist (404 `ResourceGroupNotFound`).
    pub async fn list_identities(
        &self,
        subscription: &str,
        resource_group: &str,
    ) -> Result<Option<Vec<LiveIdentity>>, AzureError> {
        let action = format!("list managed identities of resource group {resource_group}");
        let request = Request::arm(
            Method::GET,
            with_version(
                &format!(
                    "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities",
                    resource_group_id(subscription, resource_group)
                ),
                MSI_API_VERSION,
            ),
        )
        .action(&action);
        match self.client.list::<Value>(&request).await {
            Ok(items) => convert_all(&action, items, LiveIdentity::from_arm).map(Some),
            Err(e) if e.is_not_found() && e.is_code("ResourceGroupNotFound") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every managed identity of the subscription (one paged list), for stacks whose
    /// identities spread over many groups.
    pub async fn list_subscription_identities(
        &self,
        subscription: &str,
    ) -> Result<Vec<LiveIdentity>, AzureError> {
        let action = format!("list managed identities of subscription {subscription}");
        let request = Request::arm(
            Method::GET,
            with_version(
                &format!(
                    "/subscriptions/{subscription}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
                ),
                MSI_API_VERSION,
            ),
        )
        .action(&action);
        let items: Vec<Value> = self.client.list(&request).await?;
        convert_all(&action, items, LiveIdentity::from_arm)
    }

    /// Creates the identity, or brings its tags to the desired ones (PUT by name: 201 created,
    /// 200 updated; synchronous). `clientId` and `principalId` are outputs and stay the same
    /// on every later PUT. The location cannot change after creation.
    pub async fn put_identity(
        &self,
        desired: &DesiredIdentity,
    ) -> Result<LiveIdentity, AzureError> {
        let action = format!("create or update managed identity {}", desired.label());
        let request = Request::arm(Method::PUT, with_version(&desired.id(), MSI_API_VERSION))
            .json(desired.body())
            .action(&action);
        let response = self.client.send(&request).await?;
        LiveIdentity::from_arm(&response.value())
            .map_err(|m| AzureError::invalid_response(&action, m, response.request_id.clone()))
    }

    /// Replaces the identity's tags (PATCH with `IdentityUpdate`), leaving its location and
    /// outputs alone: for markers and spec hashes on an identity that is otherwise as wanted.
    pub async fn update_identity_tags(
        &self,
        live: &LiveIdentity,
        tags: &BTreeMap<String, String>,
    ) -> Result<LiveIdentity, AzureError> {
        let action = format!("update tags of managed identity {}", live.label());
        let request = Request::arm(Method::PATCH, with_version(&live.id, MSI_API_VERSION))
            .json(json!({ "tags": tags }))
            .action(&action);
        let response = self.client.send(&request).await?;
        LiveIdentity::from_arm(&response.value())
            .map_err(|m| AzureError::invalid_response(&action, m, response.request_id.clone()))
    }

    /// Deletes the identity (and with it its FICs), only when it carries the marker of
    /// `stack` (otherwise a `Conflict` error, and no request). 200 deleted, 204 absent (spec);
    /// a 404 (its group is gone) is absent too.
    pub async fn delete_identity(
        &self,
        stack: &str,
        live: &LiveIdentity,
    ) -> Result<Deletion, AzureError> {
        let action = format!("delete managed identity {}", live.label());
        if !live.owner.is_stack(stack) {
            return Err(refuse_delete(action, &live.owner, stack));
        }
        let request =
            Request::arm(Method::DELETE, with_version(&live.id, MSI_API_VERSION)).action(&action);
        match self.client.send_optional(&request).await? {
            Some(response) if response.status != 204 => Ok(Deletion::Deleted),
            _ => Ok(Deletion::AlreadyGone),
        }
    }

    /// The FICs of one identity (one paged list; the API has no `$filter`). An identity that
    /// does not exist, or not yet in the credential store (`ParentResourceNotFound` right after
    /// its creation), has none: an empty list.
    pub async fn list_identity_credentials(
        &self,
        identity_id: &str,
    ) -> Result<Vec<LiveCredential>, AzureError> {
        let action = format!(
            "list federated credentials of managed identity {}",
            identity_label(identity_id)
        );
        let request = Request::arm(
            Method::GET,
            with_version(
                &format!("{identity_id}/federatedIdentityCredentials"),
                MSI_API_VERSION,
            ),
        )
        .action(&action);
        match self.client.list::<Value>(&request).await {
            Ok(items) => convert_all(&action, items, |item| live_credential(identity_id, item)),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Creates or replaces one FIC (PUT by name; synchronous). Writes on one identity take its
    /// lock, because the service refuses overlapping ones with 409
    /// `ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity`; writes on other
    /// identities go on in parallel. A FIC written right after its identity was created may
    /// find no parent (404 `ParentResourceNotFound`, replication delay): waited out.
    pub async fn put_identity_credential(
        &self,
        identity_id: &str,
        desired: &DesiredIdentityCredential,
    ) -> Result<LiveCredential, AzureError> {
        let identity = identity_label(identity_id);
        let action = format!(
            "create or update federated credential {} of managed identity {identity}",
            desired.name
        );
        let request = Request::arm(
            Method::PUT,
            with_version(
                &format!(
                    "{identity_id}/federatedIdentityCredentials/{}",
                    desired.name
                ),
                MSI_API_VERSION,
            ),
        )
        .json(desired.body())
        .action(&action)
        .wait_out(Wait::new(
            "ParentResourceNotFound",
            format!("the new managed identity {identity} to replicate"),
            REPLICATION_WAIT,
        ));
        let response = {
            let _write = self.fic_locks.lock(identity_id).await;
            self.client.send(&request).await?
        };
        live_credential(identity_id, &response.value())
            .map_err(|m| AzureError::invalid_response(&action, m, response.request_id.clone()))
    }

    /// Deletes one FIC, under the identity's write lock (see
    /// [`AzureProvider::put_identity_credential`]). 200 deleted, 204 absent (spec); a 404 (the
    /// identity is gone, or not yet replicated and so without FICs) is absent too.
    pub async fn delete_identity_credential(
        &self,
        identity_id: &str,
        name: &str,
    ) -> Result<Deletion, AzureError> {
        let action = format!(
            "delete federated credential {name} of managed identity {}",
            identity_label(identity_id)
        );
        let request = Request::arm(
            Method::DELETE,
            with_version(
                &format!("{identity_id}/federatedIdentityCredentials/{name}"),
                MSI_API_VERSION,
            ),
        )
        .action(&action);
        let answer = {
            let _write = self.fic_locks.lock(identity_id).await;
            self.client.send_optional(&request).await?
        };
        match answer {
            Some(response) if response.status != 204 => Ok(Deletion::Deleted),
            _ => Ok(Deletion::AlreadyGone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::Marker;

    const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn desired_identity() -> DesiredIdentity {
        DesiredIdentity {
            stack: "orders".into(),
            subscription_id: SUB.into(),
            resource_group: "rg-Identities".into(),
            name: "orders-api".into(),
            location: "westeurope".into(),
            tags: map(&[("team", "orders")]),
            records: BTreeMap::new(),
        }
    }

    /// What ARM answers for a PUT of `desired` (the spec example's shape, lower-case
    /// `resourcegroups` as ARM returns it).
    fn arm_answer(desired: &DesiredIdentity) -> Value {
        json!({
            "id": format!(
                "/subscriptions/{SUB}/resourcegroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
                desired.resource_group, desired.name
            ),
            "name": desired.name,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "location": "westeurope",
            "tags": desired.tags_with_markers(),
            "properties": {
                "tenantId": "B6C948EF-F6B5-4384-8354-DA3A15ECA969",
                "principalId": "25cc773c-7f05-40fc-a104-32d2300754ad",
                "clientId": "46c251f4-7dfe-4d8c-9a7d-4d0d2c4e4e4a",
                "isolationScope": "None"
            }
        })
    }

    #[test]
    fn ids_parse_without_regard_to_case() {
        let id = format!(
            "/subscriptions/{SUB}/resourcegroups/rg-a/providers/Microsoft.ManagedIdentity/userAssignedIdentities/api"
        );
        assert_eq!(identity_label(&id), "rg-a/api");
        assert_eq!(identity_label("/not/an/identity"), "/not/an/identity");
        assert_eq!(
            arm_key(&identity_id(SUB, "RG-A", "Api")),
            arm_key(&(id + "/"))
        );
    }

    #[test]
    fn markers_join_the_user_tags_and_win_over_lookalikes() {
        let mut desired = desired_identity();
        desired.tags.insert("WIFORM-STACK".into(), "forged".into());
        let tags = desired.tags_with_markers();
        assert_eq!(tags.get("team").map(String::as_str), Some("orders"));
        assert_eq!(tags.get(STACK_TAG).map(String::as_str), Some("orders"));
        assert_eq!(
            tags.get(SPEC_HASH_TAG).cloned(),
            Some(desired_identity().spec_hash())
        );
        assert!(!tags.contains_key("WIFORM-STACK"));
        assert_eq!(tags.len(), 3);
        assert_eq!(
            desired.body(),
            json!({"location": "westeurope", "tags": tags})
        );
    }

    #[test]
    fn spec_hash_sees_managed_fields_only() {
        let base = desired_identity();
        let hash = base.spec_hash();
        // Markers, case of names and the spelling of the location are not spec.
        let mut same = base.clone();
        same.stack = "other".into();
        same.tags.insert(STACK_TAG.into(), "x".into());
        same.resource_group = "RG-IDENTITIES".into();
        same.location = "West Europe".into();
        assert_eq!(same.spec_hash(), hash);
        for change in [
            |d: &mut DesiredIdentity| d.name = "orders-web".into(),
            |d: &mut DesiredIdentity| d.location = "northeurope".into(),
            |d: &mut DesiredIdentity| {
                d.tags.insert("cost".into(), "1".into());
            },
            |d: &mut DesiredIdentity| {
                d.tags.insert("team".into(), "Orders".into());
            },
            |d: &mut DesiredIdentity| d.resource_group = "rg-other".into(),
        ] {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(changed.spec_hash(), hash, "{changed:?}");
        }
        // A group and an identity never share a hash.
        let group = DesiredResourceGroup {
            stack: "orders".into(),
            subscription_id: SUB.into(),
            name: "rg-identities".into(),
            location: "westeurope".into(),
            tags: BTreeMap::new(),
            records: Default::default(),
        };
        assert_ne!(group.spec_hash(), hash);
    }

    #[test]
    fn live_identity_reads_the_spec_example_and_hashes_like_its_desired_state() {
        let desired = desired_identity();
        let live = LiveIdentity::from_arm(&arm_answer(&desired)).unwrap();
        assert_eq!(live.subscription_id, SUB);
        assert_eq!(live.resource_group, "rg-Identities");
        assert_eq!(live.name, "orders-api");
        assert_eq!(live.client_id, "46c251f4-7dfe-4d8c-9a7d-4d0d2c4e4e4a");
        assert_eq!(live.principal_id, "25cc773c-7f05-40fc-a104-32d2300754ad");
        assert_eq!(live.tenant_id, "b6c948ef-f6b5-4384-8354-da3a15eca969");
        assert_eq!(live.label(), "rg-Identities/orders-api");
        assert!(live.id.contains("/resourcegroups/"));
        assert_eq!(live.key(), desired.key());
        assert_eq!(
            live.owner,
            Owner::Stack(Marker {
                stack: "orders".into(),
                spec_hash: Some(desired.spec_hash()),
            })
        );
        assert_eq!(live.recorded_hash(), Some(desired.spec_hash().as_str()));
        assert_eq!(live.spec_hash(), desired.spec_hash());
        assert_eq!(live.user_tags(), desired.tags);

        // Changed outside wiform: the live hash moves away from the recorded one.
        let mut edited = live.clone();
        edited.tags.insert("team".into(), "payments".into());
        assert_ne!(edited.spec_hash(), edited.recorded_hash().unwrap());
    }

    #[test]
    fn live_identity_without_outputs_or_tags() {
        let mut answer = arm_answer(&desired_identity());
        answer["tags"] = Value::Null;
        let live = LiveIdentity::from_arm(&answer).unwrap();
        assert!(live.tags.is_empty());
        assert_eq!(live.owner, Owner::Unowned);

        answer["properties"]
            .as_object_mut()
            .unwrap()
            .remove("clientId");
        let error = LiveIdentity::from_arm(&answer).unwrap_err();
        assert!(error.contains("no clientId"), "{error}");
        assert!(
            LiveIdentity::from_arm(&json!({"id": "/x", "name": "n", "location": "l"})).is_err()
        );
    }

    #[test]
    fn resource_groups_convert_both_ways() {
        let desired = DesiredResourceGroup {
            stack: "orders".into(),
            subscription_id: SUB.into(),
            name: "rg-a".into(),
            location: "westeurope".into(),
            tags: map(&[("env", "prod")]),
            records: Default::default(),
        };
        let body = desired.body();
        assert_eq!(body["location"], "westeurope");
        assert_eq!(body["tags"][STACK_TAG], "orders");
        assert_eq!(body["tags"]["env"], "prod");

        let live = LiveResourceGroup::from_arm(&json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg-a"),
            "name": "rg-a",
            "type": "Microsoft.Resources/resourceGroups",
            "location": "westeurope",
            "tags": body["tags"],
            "properties": {"provisioningState": "Succeeded"}
        }))
        .unwrap();
        assert_eq!(live.key(), desired.key());
        assert!(live.owner.is_stack("orders"));
        assert_eq!(live.spec_hash(), desired.spec_hash());
        assert_eq!(live.recorded_hash(), Some(desired.spec_hash().as_str()));
        assert_eq!(live.user_tags(), desired.tags);
        assert_eq!(live.provisioning_state, "Succeeded");

        // ARM leaves `tags` out when there are none.
        let bare = LiveResourceGroup::from_arm(&json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/rg-b"),
            "name": "rg-b",
            "location": "West Europe",
            "properties": {"provisioningState": "Deleting"}
        }))
        .unwrap();
        assert_eq!(bare.owner, Owner::Unowned);
        assert_eq!(bare.location, "westeurope");
        assert_eq!(bare.provisioning_state, "Deleting");
    }

    #[test]
    fn credentials_convert_both_ways() {
        let desired = DesiredIdentityCredential {
            name: "prod-orders-api".into(),
            issuer: "https://oidc.example.com/cluster/".into(),
            subject: "system:serviceaccount:orders:api".into(),
            audiences: vec!["api://AzureADTokenExchange".into()],
        };
        let mut answer = desired.body();
        answer["id"] = json!(
            "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/api/federatedIdentityCredentials/prod-orders-api"
        );
        answer["name"] = json!("api/prod-orders-api");
        answer["type"] =
            json!("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials");
        let live = live_credential("/subscriptions/s/id", &answer).unwrap();
        assert_eq!(
            live.parent,
            CredentialParent::ManagedIdentity("/subscriptions/s/id".into())
        );
        assert_eq!(live.name, "prod-orders-api");
        assert!(live.is_named("PROD-orders-api"));
        assert_eq!(
            (&live.issuer, &live.subject, &live.audiences),
            (&desired.issuer, &desired.subject, &desired.audiences)
        );
        assert!(live_credential("/s", &json!({"id": "x", "name": "y"})).is_err());
    }

    #[test]
    fn refusals_say_whose_the_object_is() {
        let unowned = refuse_delete("delete resource group rg".into(), &Owner::Unowned, "s");
        assert!(matches!(unowned.kind(), AzureErrorKind::Conflict { .. }));
        assert_eq!(
            unowned.to_string(),
            "delete resource group rg: refused: it carries no wiform marker; wiform deletes only \
             what stack \"s\" owns"
        );
        let other = refuse_delete(
            "delete managed identity rg/api".into(),
            &Owner::Stack(Marker {
                stack: "t".into(),
                spec_hash: None,
            }),
            "s",
        );
        assert!(other.to_string().contains("it belongs to stack \"t\""));
    }
}
