//! Everything the emulated tenant holds, and its store: in memory, persisted atomically to a
//! JSON file after each write. A file that is not ours, or is corrupt, is refused and left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const STATE_FORMAT: &str = "wiform-sandbox-state";
pub const STATE_VERSION: u32 = 1;

/// The tenant and subscription the sandbox starts with; the examples use the same ids.
pub const DEFAULT_TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const DEFAULT_SUBSCRIPTION: &str = "bbbbbbbb-0000-4000-8000-000000000001";
/// The client the sandbox trusts out of the box (Owner on the default subscription).
pub const ADMIN_CLIENT_ID: &str = "cccccccc-0000-4000-8000-000000000001";
/// A second client with Reader only, for permission tests.
pub const READER_CLIENT_ID: &str = "cccccccc-0000-4000-8000-000000000002";

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// RFC 3339 UTC timestamp for `ms` since the epoch (ARM's `createdOn`, Graph's dates).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), enough for timestamps after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// ARM ids are case-insensitive: maps are keyed by the lowercased id.
pub fn key(id: &str) -> String {
    id.to_ascii_lowercase()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub format: String,
    pub version: u32,
    pub tenant_id: String,
    pub subscriptions: Vec<String>,
    #[serde(default)]
    pub resource_groups: BTreeMap<String, ResourceGroup>,
    #[serde(default)]
    pub identities: BTreeMap<String, UserAssignedIdentity>,
    #[serde(default)]
    pub federated_credentials: BTreeMap<String, FederatedCredential>,
    /// Custom role definitions (built-in ones are static, see `builtin_roles`).
    #[serde(default)]
    pub role_definitions: BTreeMap<String, RoleDefinition>,
    #[serde(default)]
    pub role_assignments: BTreeMap<String, RoleAssignment>,
    #[serde(default)]
    pub managed_clusters: BTreeMap<String, ManagedCluster>,
    /// Long-running operations, by operation id.
    #[serde(default)]
    pub operations: BTreeMap<String, Operation>,
    /// Entra applications, by object id.
    #[serde(default)]
    pub applications: BTreeMap<String, Application>,
    /// Service principals (of applications and of managed identities), by object id.
    #[serde(default)]
    pub service_principals: BTreeMap<String, ServicePrincipal>,
    /// Clients that may ask the token endpoint for a token with a secret.
    #[serde(default)]
    pub clients: Vec<ClientSecret>,
    /// The Kubernetes clusters the sandbox emulates, by the id in their API base
    /// `{base_url}/k8s/{id}`: the built-in standalone cluster `sandbox` and one per AKS managed
    /// cluster (its issuer guid).
    #[serde(default)]
    pub kube_clusters: BTreeMap<String, KubeCluster>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourceGroup {
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub managed_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserAssignedIdentity {
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub tenant_id: String,
    /// Object id of its service principal.
    pub principal_id: String,
    pub client_id: String,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FederatedCredential {
    pub id: String,
    /// Last written: Entra sees a credential only after it has propagated.
    #[serde(default)]
    pub written_ms: u64,
    /// Lowercased id of the parent identity.
    pub identity_key: String,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleDefinition {
    pub id: String,
    /// The definition GUID.
    pub name: String,
    pub role_name: String,
    pub description: String,
    /// `BuiltInRole` or `CustomRole`.
    pub role_type: String,
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
    pub assignable_scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub id: String,
    /// The assignment GUID.
    pub name: String,
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: String,
    pub description: Option<String>,
    pub condition: Option<String>,
    pub condition_version: Option<String>,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    #[serde(default)]
    pub delegated_managed_identity_resource_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagedCluster {
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub etag: String,
    /// The cluster's `identity` and `sku` as last PUT (AKS defaults when absent).
    #[serde(default)]
    pub identity: Option<Value>,
    #[serde(default)]
    pub sku: Option<Value>,
    /// The `properties` object as the API shows it (provisioningState, oidcIssuerProfile,
    /// securityProfile, agentPoolProfiles, …).
    pub properties: Value,
}

/// One emulated Kubernetes API server (see `crate::kube`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KubeCluster {
    /// The last segment of its API base `{base_url}/k8s/{id}`: `sandbox` for the standalone
    /// cluster, the issuer guid for an AKS cluster.
    pub id: String,
    /// Lowercased ARM id of the AKS managed cluster it belongs to (`None`: standalone).
    #[serde(default)]
    pub aks_key: Option<String>,
    pub created_ms: u64,
    /// The service-account signing key (RSA 2048, PKCS#8 PEM), made on first use.
    #[serde(default)]
    pub signing_key_pem: Option<String>,
    /// Static bearer tokens, as kube-apiserver's `--token-auth-file`: a `system:masters` admin
    /// and a `reader` who may only get/list/watch namespaces and service accounts.
    pub admin_token: String,
    pub reader_token: String,
    /// The cluster-wide resourceVersion counter (etcd's revision): the last one handed out.
    pub resource_version: u64,
    #[serde(default)]
    pub namespaces: BTreeMap<String, KubeObject>,
    /// Service accounts by `namespace/name`.
    #[serde(default)]
    pub service_accounts: BTreeMap<String, KubeObject>,
}

/// A stored Kubernetes object: its JSON as served, without `metadata.managedFields`, which are
/// kept apart as field sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeObject {
    pub object: Value,
    #[serde(default)]
    pub managed_fields: Vec<ManagedFieldsEntry>,
}

/// One `metadata.managedFields` entry; `fields` are the paths of the fields it owns (field names
/// from the root, e.g. `["metadata", "labels", "team"]`), rendered as FieldsV1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedFieldsEntry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time_ms: u64,
    #[serde(default)]
    pub subresource: Option<String>,
    pub fields: BTreeSet<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    /// Lowercased id of the resource the operation acts on.
    pub resource_key: String,
    /// `InProgress`, `Succeeded`, `Failed`, `Canceled`.
    pub status: String,
    pub started_ms: u64,
    /// Status polls still answered `InProgress` before the operation completes.
    pub polls_left: u32,
    /// When it completed.
    #[serde(default)]
    pub ended_ms: Option<u64>,
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Application {
    /// Object id.
    pub id: String,
    /// Client id.
    pub app_id: String,
    pub display_name: String,
    pub unique_name: Option<String>,
    pub description: Option<String>,
    pub sign_in_audience: String,
    pub created_ms: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub federated_credentials: Vec<AppFederatedCredential>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppFederatedCredential {
    pub id: String,
    /// Last written: Entra sees a credential only after it has propagated.
    #[serde(default)]
    pub written_ms: u64,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServicePrincipal {
    /// Object id (the `principalId` role assignments use).
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    /// `Application` or `ManagedIdentity`.
    pub service_principal_type: String,
    /// For managed identities: the identity's ARM id.
    #[serde(default)]
    pub alternative_names: Vec<String>,
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientSecret {
    pub client_id: String,
    pub secret: String,
    pub display_name: String,
}

impl State {
    /// A new tenant: one subscription, an admin client with Owner and a reader client with
    /// Reader on it, both with service principals.
    pub fn new() -> Self {
        let mut state = State {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            tenant_id: DEFAULT_TENANT.into(),
            subscriptions: vec![DEFAULT_SUBSCRIPTION.into()],
            resource_groups: BTreeMap::new(),
            identities: BTreeMap::new(),
            federated_credentials: BTreeMap::new(),
            role_definitions: BTreeMap::new(),
            role_assignments: BTreeMap::new(),
            managed_clusters: BTreeMap::new(),
            operations: BTreeMap::new(),
            applications: BTreeMap::new(),
            service_principals: BTreeMap::new(),
            clients: Vec::new(),
            kube_clusters: BTreeMap::new(),
        };
        let standalone = crate::kube::new_standalone_cluster();
        state
            .kube_clusters
            .insert(standalone.id.clone(), standalone);
        let subscription_scope = format!("/subscriptions/{DEFAULT_SUBSCRIPTION}");
        for (client_id, name, role) in [
            (
                ADMIN_CLIENT_ID,
                "wiform-sandbox-admin",
                crate::builtin_roles::OWNER,
            ),
            (
                READER_CLIENT_ID,
                "wiform-sandbox-reader",
                crate::builtin_roles::READER,
            ),
        ] {
            let secret = random_secret();
            state.clients.push(ClientSecret {
                client_id: client_id.into(),
                secret,
                display_name: name.into(),
            });
            let object_id =
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, client_id.as_bytes()).to_string();
            let app_object_id =
                uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, client_id.as_bytes()).to_string();
            state.applications.insert(
                app_object_id.clone(),
                Application {
                    id: app_object_id,
                    app_id: client_id.into(),
                    display_name: name.into(),
                    unique_name: None,
                    description: Some("Built-in sandbox client".into()),
                    sign_in_audience: "AzureADMyOrg".into(),
                    created_ms: 0,
                    tags: Vec::new(),
                    federated_credentials: Vec::new(),
                },
            );
            state.service_principals.insert(
                object_id.clone(),
                ServicePrincipal {
                    id: object_id.clone(),
                    app_id: client_id.into(),
                    display_name: name.into(),
                    service_principal_type: "Application".into(),
                    alternative_names: Vec::new(),
                    created_ms: 0,
                },
            );
            let assignment = uuid::Uuid::new_v5(
                &uuid::Uuid::NAMESPACE_OID,
                format!("{subscription_scope}{object_id}{role}").as_bytes(),
            )
            .to_string();
            let id = format!(
                "{subscription_scope}/providers/Microsoft.Authorization/roleAssignments/{assignment}"
            );
            state.role_assignments.insert(
                key(&id),
                RoleAssignment {
                    id,
                    name: assignment,
                    scope: subscription_scope.clone(),
                    role_definition_id: format!("{subscription_scope}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                    principal_id: object_id,
                    principal_type: "ServicePrincipal".into(),
                    description: Some("sandbox bootstrap".into()),
                    condition: None,
                    condition_version: None,
                    created_ms: 0,
                    updated_ms: 0,
                    created_by: None,
                    updated_by: None,
                    delegated_managed_identity_resource_id: None,
                },
            );
        }
        state
    }

    /// An empty tenant that keeps this one's clients (so their secrets stay valid) and the
    /// bootstrap role assignments.
    pub fn reset(&self) -> State {
        let mut fresh = State::new();
        fresh.tenant_id = self.tenant_id.clone();
        fresh.subscriptions = self.subscriptions.clone();
        fresh.clients = self.clients.clone();
        // The standalone cluster keeps its tokens and signing key (kubeconfigs stay valid), not
        // its objects.
        if let Some(cluster) = self.kube_clusters.get(crate::kube::STANDALONE) {
            fresh
                .kube_clusters
                .insert(cluster.id.clone(), crate::kube::emptied(cluster));
        }
        fresh
    }

    /// The service principal with this object id, if it has replicated by `now` (a new
    /// principal is invisible to ARM for `replication_delay_ms`).
    pub fn visible_principal(
        &self,
        object_id: &str,
        now: u64,
        replication_delay_ms: u64,
    ) -> Option<&ServicePrincipal> {
        self.service_principals
            .get(&object_id.to_ascii_lowercase())
            .filter(|sp| sp.created_ms + replication_delay_ms <= now)
    }

    /// The service principal a client id (app id) signs in as.
    pub fn principal_by_client_id(&self, client_id: &str) -> Option<&ServicePrincipal> {
        self.service_principals
            .values()
            .find(|sp| sp.app_id.eq_ignore_ascii_case(client_id))
    }

    /// Federated credentials that a token for `client_id` may be exchanged with: a managed
    /// identity's (ARM) or an application's (Graph), among those written at least
    /// `propagation_ms` before `now` (until then the token endpoint answers as if they did not
    /// exist: "Important considerations and restrictions for federated identity credentials").
    /// `None` when no identity or application has this client id.
    pub fn federated_credentials_of_client(
        &self,
        client_id: &str,
        now: u64,
        propagation_ms: u64,
    ) -> Option<Vec<(String, String, Vec<String>)>> {
        let visible = |written: u64| written.saturating_add(propagation_ms) <= now;
        if let Some(identity) = self
            .identities
            .values()
            .find(|i| i.client_id.eq_ignore_ascii_case(client_id))
        {
            let identity_key = key(&identity.id);
            return Some(
                self.federated_credentials
                    .values()
                    .filter(|f| f.identity_key == identity_key && visible(f.written_ms))
                    .map(|f| (f.issuer.clone(), f.subject.clone(), f.audiences.clone()))
                    .collect(),
            );
        }
        self.applications
            .values()
            .find(|a| a.app_id.eq_ignore_ascii_case(client_id))
            .map(|a| {
                a.federated_credentials
                    .iter()
                    .filter(|f| visible(f.written_ms))
                    .map(|f| (f.issuer.clone(), f.subject.clone(), f.audiences.clone()))
                    .collect()
            })
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read the sandbox state {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a wiform sandbox state file ({reason}); it was left untouched: move it away, or point --state at another file"
    )]
    Foreign { path: PathBuf, reason: String },
    #[error("cannot write the sandbox state {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The state behind a lock, written to `path` (when set) after every change.
pub struct Store {
    state: Mutex<State>,
    path: Option<PathBuf>,
}

impl Store {
    /// In memory only (tests that do not care about persistence).
    pub fn in_memory(state: State) -> Self {
        Store {
            state: Mutex::new(state),
            path: None,
        }
    }

    /// Opens `path`, or starts a new tenant there when the file does not exist.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let state = match std::fs::read(path) {
            Ok(bytes) => parse(path, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = State::new();
                persist(path, &state)?;
                state
            }
            Err(source) => {
                return Err(StoreError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Store {
            state: Mutex::new(state),
            path: Some(path.to_path_buf()),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock would poison it; the state is still consistent
        // because every change is applied whole, so keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }

    /// Applies a change and persists it. When `f` fails nothing is written.
    pub fn write<R, E>(&self, f: impl FnOnce(&mut State) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let mut state = self.lock();
        let mut draft = state.clone();
        let out = f(&mut draft)?;
        if let Some(path) = &self.path {
            persist(path, &draft)?;
        }
        *state = draft;
        Ok(out)
    }

    /// Replaces everything with `state` (reset, seed).
    pub fn replace(&self, state: State) -> Result<(), StoreError> {
        let mut current = self.lock();
        if let Some(path) = &self.path {
            persist(path, &state)?;
        }
        *current = state;
        Ok(())
    }
}

fn parse(path: &Path, bytes: &[u8]) -> Result<State, StoreError> {
    let foreign = |reason: String| StoreError::Foreign {
        path: path.to_path_buf(),
        reason,
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| foreign(format!("not JSON: {e}")))?;
    match value.get("format").and_then(Value::as_str) {
        Some(STATE_FORMAT) => {}
        _ => return Err(foreign(format!("no \"format\": \"{STATE_FORMAT}\" marker"))),
    }
    match value.get("version").and_then(Value::as_u64) {
        Some(v) if v == u64::from(STATE_VERSION) => {}
        other => {
            return Err(foreign(format!(
                "version {other:?}; this wiform reads version {STATE_VERSION}"
            )));
        }
    }
    serde_json::from_value(value).map_err(|e| foreign(format!("corrupt: {e}")))
}

/// Write to a temporary file beside the target, flush it to disk, then rename over the target:
/// a crash leaves the old file or the new one, never half of one.
fn persist(path: &Path, state: &State) -> Result<(), StoreError> {
    let write_error = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let bytes =
        serde_json::to_vec_pretty(state).map_err(|e| write_error(std::io::Error::other(e)))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // The state holds client secrets: owner-only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(write_error)?;
    file.write_all(&bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(write_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
    }

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path).unwrap();
        store
            .write(|s| {
                s.subscriptions.push("x".into());
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let again = Store::open(&path).unwrap();
        assert_eq!(
            again.read(|s| s.subscriptions.clone()),
            [DEFAULT_SUBSCRIPTION, "x"]
        );
        assert_eq!(again.read(|s| s.clients.len()), 2);
    }

    #[test]
    fn foreign_and_corrupt_files_are_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("a.json", "not json"),
            ("b.json", "{\"hello\": 1}"),
            (
                "c.json",
                "{\"format\":\"wiform-sandbox-state\",\"version\":99}",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            assert!(
                matches!(Store::open(&path), Err(StoreError::Foreign { .. })),
                "{name}"
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        }
    }

    #[test]
    fn a_failed_change_writes_nothing() {
        let store = Store::in_memory(State::new());
        let result: Result<(), StoreError> = store.write(|s| {
            s.subscriptions.clear();
            Err(StoreError::Foreign {
                path: PathBuf::new(),
                reason: "test".into(),
            })
        });
        assert!(result.is_err());
        assert_eq!(store.read(|s| s.subscriptions.len()), 1);
    }
}
