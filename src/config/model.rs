//! The identity.toml model: what the file says, with the source span of every value so that
//! validation can point at it. Defaults are not filled in here; `graph` resolves them.
//!
//! The JSON Schema (`schemas/identity.schema.json`) is generated from these types, so the doc
//! comments below are what editors show on hover.

use std::ops::{Deref, Range};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;

/// Byte range into the source file.
pub type Span = Range<usize>;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

/// The span of a placeholder for a required value that is missing or unusable.
const MISSING: Span = usize::MAX..usize::MAX;

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Self {
        Self { value, span }
    }

    /// A placeholder for a required value that was missing or of the wrong type (already
    /// reported), so that the rest of its table can still be checked.
    pub fn missing() -> Self
    where
        T: Default,
    {
        Self {
            value: T::default(),
            span: MISSING,
        }
    }

    pub fn is_missing(&self) -> bool {
        self.span == MISSING
    }

    /// The value, unless it is a placeholder.
    pub fn present(&self) -> Option<&Self> {
        (!self.is_missing()).then_some(self)
    }
}

impl<T> Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Serialize> Serialize for Sp<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

// The span is bookkeeping: the schema of `Sp<T>` is the schema of `T`.
impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A TOML table keyed by user-chosen names, in file order (`[clusters.prod]`, `tags = { … }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named<T>(pub Vec<(Sp<String>, T)>);

impl<T> Default for Named<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> Named<T> {
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k.value == name).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Sp<String>, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.value.as_str())
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&k.value, v)?;
        }
        map.end()
    }
}

impl<T: JsonSchema> JsonSchema for Named<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Named_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }
}

/// Strings keyed by name: tags, labels, annotations.
pub type StringMap = Named<Sp<String>>;

pub const GUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// wiform identity.toml: Azure workload identity for Kubernetes, declared in one file.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(title = "wiform identity.toml", deny_unknown_fields)]
pub struct Config {
    /// Format version of this file. Only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: Sp<i64>,
    /// Stack name: recorded on every object wiform creates, so that pruning stays inside this
    /// stack. Lowercase letters, digits and `-`, at most 63 characters.
    #[schemars(pattern("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: Sp<String>,
    /// The Azure tenant and subscription this stack lives in.
    pub azure: Azure,
    /// Resource groups wiform creates (and owns). Groups that already exist need no entry.
    #[serde(default)]
    pub resource_groups: Named<ResourceGroup>,
    /// Kubernetes clusters whose service accounts get Azure identities, keyed by a short name
    /// used in `[[service_accounts]]`.
    #[serde(default)]
    pub clusters: Named<Cluster>,
    /// Azure identities: user-assigned managed identities or Entra application registrations,
    /// keyed by a short name used everywhere else in this file.
    #[serde(default)]
    pub identities: Named<Identity>,
    /// Kubernetes service accounts bound to an identity. Each one implies a federated credential
    /// (cluster issuer, subject `system:serviceaccount:NAMESPACE:NAME`).
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccount>,
    /// Federated credentials for issuers other than a configured cluster (GitHub Actions, other
    /// clouds, CI systems).
    #[serde(default)]
    pub federations: Vec<Federation>,
    /// Azure role assignments for an identity's principal.
    #[serde(default)]
    pub role_grants: Vec<RoleGrant>,
}

/// Azure tenant, subscription and cloud.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Azure {
    /// Entra tenant (directory) id, a GUID.
    #[schemars(pattern(GUID_PATTERN))]
    pub tenant_id: Sp<String>,
    /// Subscription that holds the managed identities; relative role scopes are resolved against
    /// it. A GUID.
    #[schemars(pattern(GUID_PATTERN))]
    pub subscription_id: Sp<String>,
    /// Default Azure region for resources wiform creates, e.g. `westeurope`.
    pub location: Option<Sp<String>>,
    /// Azure cloud: `public` (default), `usgov`, `china`, or custom endpoints.
    pub cloud: Option<Sp<Cloud>>,
}

/// An Azure cloud, by name or by its endpoints.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Cloud {
    Named(CloudName),
    Custom(CustomCloud),
}

/// A national or public Azure cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CloudName {
    /// Azure public cloud (management.azure.com).
    Public,
    /// Azure US Government (management.usgovcloudapi.net).
    Usgov,
    /// Azure operated by 21Vianet (management.chinacloudapi.cn).
    China,
}

/// Custom cloud endpoints (Azure Stack, sovereign clouds, test emulators).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CustomCloud {
    /// Azure Resource Manager endpoint, e.g. `https://management.azure.com`.
    #[schemars(url)]
    pub arm: Sp<String>,
    /// Microsoft Graph endpoint, e.g. `https://graph.microsoft.com`.
    #[schemars(url)]
    pub graph: Sp<String>,
    /// Entra authority host, e.g. `https://login.microsoftonline.com`.
    #[schemars(url)]
    pub authority: Sp<String>,
}

/// A resource group that wiform creates and owns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ResourceGroup {
    /// Azure region; defaults to `[azure].location`.
    pub location: Option<Sp<String>>,
    /// Azure tags.
    #[serde(default)]
    pub tags: StringMap,
}

/// A Kubernetes cluster: an AKS cluster (`resource_group` + `name`, issuer read from ARM) or
/// any other cluster with an explicit `issuer`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Cluster {
    /// AKS: resource group of the managed cluster.
    pub resource_group: Option<Sp<String>>,
    /// AKS: name of the managed cluster.
    pub name: Option<Sp<String>>,
    /// AKS: subscription of the cluster, when it is not `[azure].subscription_id`.
    #[schemars(pattern(GUID_PATTERN))]
    pub subscription_id: Option<Sp<String>>,
    /// Non-AKS clusters: the service-account issuer URL, exactly as it appears in the `iss`
    /// claim of the cluster's tokens (https, trailing slash included if the cluster uses one).
    #[schemars(url)]
    pub issuer: Option<Sp<String>>,
    /// kubeconfig context used to write namespaces and service accounts. AKS clusters without
    /// one use the cluster's user credential from ARM.
    pub kube_context: Option<Sp<String>>,
    /// kubeconfig file; defaults to `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<Sp<String>>,
    /// AKS only: turn on the OIDC issuer and workload identity when they are off (default
    /// `true`). With `false`, wiform only reads the issuer.
    #[schemars(extend("default" = true))]
    pub enable_workload_identity: Option<Sp<bool>>,
}

/// What kind of Azure identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    /// A user-assigned managed identity (ARM).
    Managed,
    /// An Entra application registration and its service principal (Microsoft Graph).
    Application,
}

/// An Azure identity that workloads authenticate as.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Identity {
    /// `managed` (user-assigned managed identity, the default) or `application`.
    #[schemars(extend("default" = "managed"))]
    pub kind: Option<Sp<IdentityKind>>,
    /// Managed: Azure resource name; defaults to the table key. 3–128 characters: letters,
    /// digits, `-` and `_`, starting with a letter or digit.
    #[schemars(pattern("^[a-zA-Z0-9][a-zA-Z0-9_-]{2,127}$"))]
    pub name: Option<Sp<String>>,
    /// Managed: resource group of the identity (required for `managed`).
    pub resource_group: Option<Sp<String>>,
    /// Managed: Azure region; defaults to `[azure].location`.
    pub location: Option<Sp<String>>,
    /// Managed: Azure tags. Keys starting with `wiform` are reserved for ownership markers.
    #[serde(default)]
    pub tags: StringMap,
    /// Application: display name of the app registration; defaults to the table key.
    pub display_name: Option<Sp<String>>,
    /// Let apply delete the federated credentials and role assignments that were on the
    /// identity when wiform adopted it and that the config does not name (default: they are
    /// kept, shown as not managed by wiform).
    #[schemars(extend("default" = false))]
    pub prune_unmanaged: Option<Sp<bool>>,
}

/// A Kubernetes service account bound to an identity.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServiceAccount {
    /// Key of the cluster in `[clusters]`.
    pub cluster: Sp<String>,
    /// Namespace (a DNS-1123 label).
    #[schemars(pattern("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub namespace: Sp<String>,
    /// Service account name (a DNS-1123 subdomain).
    pub name: Sp<String>,
    /// Key of the identity in `[identities]`.
    pub identity: Sp<String>,
    /// Create the namespace when it does not exist (default `true`).
    #[schemars(extend("default" = true))]
    pub create_namespace: Option<Sp<bool>>,
    /// Extra annotations on the service account. wiform sets
    /// `azure.workload.identity/client-id` (and `tenant-id`) itself.
    #[serde(default)]
    pub annotations: StringMap,
    /// Extra labels on the service account.
    #[serde(default)]
    pub labels: StringMap,
    /// Lifetime in seconds of the projected token (annotation
    /// `azure.workload.identity/service-account-token-expiration`), 3600–86400.
    #[schemars(range(min = 3600, max = 86400))]
    pub token_expiration: Option<Sp<i64>>,
    /// Name of the implied federated credential; defaults to `CLUSTER-NAMESPACE-NAME`.
    #[schemars(pattern("^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$"))]
    pub federation_name: Option<Sp<String>>,
    /// Audiences of the implied federated credential (default `["api://AzureADTokenExchange"]`).
    /// Azure accepts exactly one.
    #[schemars(length(min = 1, max = 1))]
    pub audiences: Option<Sp<Vec<Sp<String>>>>,
}

/// A federated identity credential for an issuer that is not a configured cluster.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Federation {
    /// Key of the identity in `[identities]`.
    pub identity: Sp<String>,
    /// Credential name, unique per identity: 3–120 characters, letters, digits, `-` and `_`.
    #[schemars(pattern("^[a-zA-Z0-9][a-zA-Z0-9_-]{2,119}$"))]
    pub name: Sp<String>,
    /// Issuer URL (https), exactly as in the token's `iss` claim.
    #[schemars(url)]
    pub issuer: Sp<String>,
    /// Subject, exactly as in the token's `sub` claim, e.g.
    /// `repo:contoso/orders:ref:refs/heads/main`.
    pub subject: Sp<String>,
    /// Audiences (default `["api://AzureADTokenExchange"]`). Azure accepts exactly one.
    #[schemars(length(min = 1, max = 1))]
    pub audiences: Option<Sp<Vec<Sp<String>>>>,
}

/// An Azure role assignment for an identity.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RoleGrant {
    /// Key of the identity in `[identities]`.
    pub identity: Sp<String>,
    /// Role: a built-in or custom role name (`Storage Blob Data Contributor`), a role definition
    /// GUID, or a full role definition id.
    pub role: Sp<String>,
    /// Scope: a full ARM id (`/subscriptions/…/resourceGroups/…`), a management group
    /// (`/providers/Microsoft.Management/managementGroups/…`), or an id relative to
    /// `[azure].subscription_id` (`resourceGroups/rg-data/providers/…`).
    pub scope: Sp<String>,
    /// ABAC condition (condition version 2.0).
    pub condition: Option<Sp<String>>,
}
