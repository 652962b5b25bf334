//! Everything the emulated tenant holds, and its store: in memory, persisted atomically to a
//! JSON file after each write (written through, or by a background writer that coalesces the
//! changes of a running sandbox: see [`Store`]). A file that is not ours, or is corrupt, is
//! refused and left alone.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroup {
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub location: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub managed_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// The least time between two background writes of the state file: changes made meanwhile are
/// written together.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(50);

/// The state behind a lock, and its file (when there is one).
///
/// The state in memory is authoritative. A store just opened writes every change through to the
/// file before `write` returns (what `wiform sandbox reset/seed` on the state file need). A
/// running sandbox turns on [`Store::in_background`]: a change only marks the store dirty and
/// wakes a writer thread, which snapshots the state and writes it (temporary file, fsync,
/// rename) at most every [`WRITE_INTERVAL`], everything changed meanwhile at once. The file is
/// at most that far behind while the sandbox runs, and current after [`Store::flush`], which
/// `Running::stop` and dropping a `Running` call, and once the store is dropped.
pub struct Store {
    shared: Arc<Shared>,
    /// The background writer, when there is one.
    writer: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    live: Mutex<Live>,
    path: Option<PathBuf>,
    disk: Mutex<Disk>,
    /// Wakes the writer: a change, a flush, the end.
    wake: Condvar,
    /// Wakes flushes: an attempt ended.
    written: Condvar,
}

struct Live {
    state: State,
    /// Counts the changes: the version of `state`.
    version: u64,
}

/// What the file holds, and what the writer is asked to do.
#[derive(Default)]
struct Disk {
    /// The last version a change announced (each change announces before `write` returns).
    changed: u64,
    /// The version the file holds.
    saved: u64,
    /// The last attempt failed: the version it tried to write, and why. No retry until
    /// something changes again, a flush asks for one, or the store is dropped.
    failed: Option<Failure>,
    /// Attempts finished, failed or not (a flush tells a failure of its own from an older one).
    attempts: u64,
    /// Write now, without waiting for the interval (and even after a failure): a flush or
    /// the end asked for it.
    hurry: bool,
    /// The store is being dropped: one last write, then the writer ends.
    shutdown: bool,
}

struct Failure {
    version: u64,
    kind: std::io::ErrorKind,
    message: String,
}

/// Temporary file names are unique per write, so two stores on one file in one process (a
/// sandbox stopping while the next starts) never write into the same temporary file.
static TEMP_FILES: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// In memory only (tests that do not care about persistence).
    pub fn in_memory(state: State) -> Self {
        Store::with(state, None)
    }

    fn with(state: State, path: Option<PathBuf>) -> Self {
        Store {
            shared: Arc::new(Shared {
                live: Mutex::new(Live { state, version: 0 }),
                path,
                disk: Mutex::new(Disk::default()),
                wake: Condvar::new(),
                written: Condvar::new(),
            }),
            writer: None,
        }
    }

    /// Opens `path`, or starts a new tenant there when the file does not exist. Until
    /// [`Store::in_background`], every change is written through to the file before `write`
    /// returns.
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
        Ok(Store::with(state, Some(path.to_path_buf())))
    }

    /// From now on changes are written by a background thread, coalesced, at most every
    /// [`WRITE_INTERVAL`]; a failed write is logged and tried again at the next change (or
    /// flush). Nothing to do for a store in memory.
    pub fn in_background(mut self) -> Result<Self, StoreError> {
        let Some(path) = self.shared.path.clone() else {
            return Ok(self);
        };
        if self.writer.is_none() {
            let shared = self.shared.clone();
            let writer = std::thread::Builder::new()
                .name("sandbox-state".into())
                .spawn(move || shared.write_in_background())
                .map_err(|source| StoreError::Write { path, source })?;
            self.writer = Some(writer);
        }
        Ok(self)
    }

    pub fn path(&self) -> Option<&Path> {
        self.shared.path.as_deref()
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.shared.lock_live().state)
    }

    /// Applies a change: `f` works on a copy, which replaces the state only when `f` succeeds
    /// (callers may fail after changing things: nothing of a failed change remains). Written
    /// through to the file before returning (an error then leaves the state as it was), or
    /// handed to the background writer.
    pub fn write<R, E>(&self, f: impl FnOnce(&mut State) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let live = self.shared.lock_live();
        let mut draft = live.state.clone();
        let out = match f(&mut draft) {
            Ok(out) => out,
            Err(e) => {
                drop(live);
                return Err(e);
            }
        };
        self.install(live, draft)?;
        Ok(out)
    }

    /// Applies a change in place, without the copy of the whole state `write` makes (about a
    /// millisecond per 4,000 objects, under the lock): for changes that, when they fail, fail
    /// before changing anything (checked in debug builds). A store that writes through to its
    /// file, which must not change the state when the file cannot be written, copies anyway.
    pub fn update<R, E>(&self, f: impl FnOnce(&mut State) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        if self.writer.is_none() && self.shared.path.is_some() {
            return self.write(f);
        }
        let mut live = self.shared.lock_live();
        #[cfg(debug_assertions)]
        let before = live.state.clone();
        match f(&mut live.state) {
            Ok(out) => {
                live.version += 1;
                let version = live.version;
                drop(live);
                self.announce(version);
                Ok(out)
            }
            Err(e) => {
                #[cfg(debug_assertions)]
                assert!(
                    live.state == before,
                    "Store::update: a change failed after changing the state (use Store::write)"
                );
                Err(e)
            }
        }
    }

    /// Replaces everything with `state` (reset, seed).
    pub fn replace(&self, state: State) -> Result<(), StoreError> {
        self.install(self.shared.lock_live(), state)
    }

    /// Makes `state` current: written through first, or announced to the background writer.
    /// The state it replaces is dropped after the lock is released.
    fn install(&self, mut live: MutexGuard<'_, Live>, state: State) -> Result<(), StoreError> {
        if self.writer.is_none()
            && let Some(path) = &self.shared.path
        {
            persist(path, &state)?;
        }
        let old = std::mem::replace(&mut live.state, state);
        live.version += 1;
        let version = live.version;
        drop(live);
        drop(old);
        self.announce(version);
        Ok(())
    }

    /// Tells the background writer (if any) that `version` is to be written.
    fn announce(&self, version: u64) {
        if self.writer.is_some() {
            let mut disk = self.shared.lock_disk();
            disk.changed = disk.changed.max(version);
            drop(disk);
            self.shared.wake.notify_one();
        }
    }

    /// Blocks until every change made so far is in the file (a no-op when changes are written
    /// through, or for a store in memory). Returns the error of the write that was to do it.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.writer.is_none() {
            return Ok(());
        }
        let mut disk = self.shared.lock_disk();
        let target = disk.changed;
        if disk.saved >= target {
            return Ok(());
        }
        let attempts = disk.attempts;
        disk.hurry = true;
        self.shared.wake.notify_one();
        loop {
            disk = self
                .shared
                .written
                .wait(disk)
                .unwrap_or_else(PoisonError::into_inner);
            if disk.saved >= target {
                return Ok(());
            }
            if disk.attempts > attempts
                && let Some(failure) = disk.failed.as_ref().filter(|f| f.version >= target)
            {
                return Err(StoreError::Write {
                    path: self.shared.path.clone().unwrap_or_default(),
                    source: std::io::Error::new(failure.kind, failure.message.clone()),
                });
            }
        }
    }
}

impl Drop for Store {
    /// Lets the background writer write what is left, and waits for it.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let mut disk = self.shared.lock_disk();
            disk.shutdown = true;
            disk.hurry = true;
            drop(disk);
            self.shared.wake.notify_one();
            let _ = writer.join();
        }
    }
}

impl Shared {
    fn lock_live(&self) -> MutexGuard<'_, Live> {
        // A panic while holding the lock would poison it; the state is still consistent
        // because every change is applied whole, so keep serving.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The background writer's loop: waits for changes, writes them, until the store is dropped
    /// and nothing it may still write is left.
    fn write_in_background(&self) {
        let Some(path) = self.path.as_deref() else {
            return;
        };
        let mut last: Option<Instant> = None;
        let mut disk = self.lock_disk();
        loop {
            let pending = disk.changed > disk.saved;
            let allowed = disk.hurry
                || disk
                    .failed
                    .as_ref()
                    .is_none_or(|failure| disk.changed > failure.version);
            if !(pending && allowed) {
                if disk.shutdown {
                    return;
                }
                disk = self.wake.wait(disk).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let due = match last {
                Some(last) if !(disk.hurry || disk.shutdown) => last + WRITE_INTERVAL,
                _ => Instant::now(),
            };
            let now = Instant::now();
            if due > now {
                disk = self
                    .wake
                    .wait_timeout(disk, due - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            }
            disk.hurry = false;
            drop(disk);
            last = Some(Instant::now());
            let (version, result) = self.save(path);
            disk = self.lock_disk();
            disk.attempts += 1;
            match result {
                Ok(()) => {
                    disk.saved = disk.saved.max(version);
                    disk.failed = None;
                }
                Err(error) => {
                    tracing::warn!(
                        "{error} (the sandbox keeps its state in memory and writes it again at the next change)"
                    );
                    let (kind, message) = match &error {
                        StoreError::Write { source, .. } | StoreError::Read { source, .. } => {
                            (source.kind(), source.to_string())
                        }
                        StoreError::Foreign { reason, .. } => {
                            (std::io::ErrorKind::Other, reason.clone())
                        }
                    };
                    disk.failed = Some(Failure {
                        version,
                        kind,
                        message,
                    });
                }
            }
            self.written.notify_all();
        }
    }

    /// Writes a snapshot of the state: cloned under the lock, serialised and written outside it.
    fn save(&self, path: &Path) -> (u64, Result<(), StoreError>) {
        let (snapshot, version) = {
            let live = self.lock_live();
            (live.state.clone(), live.version)
        };
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| persist(path, &snapshot)))
                .unwrap_or_else(|_| {
                    Err(StoreError::Write {
                        path: path.to_path_buf(),
                        source: std::io::Error::other("the writer panicked"),
                    })
                });
        (version, result)
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
/// a crash leaves the old file or the new one, never half of one. Compact JSON (the state of a
/// large tenant is megabytes; `jq` shows it pretty).
fn persist(path: &Path, state: &State) -> Result<(), StoreError> {
    let write_error = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let bytes = serde_json::to_vec(state).map_err(|e| write_error(std::io::Error::other(e)))?;
    let tmp = path.with_extension(format!(
        "tmp{}.{}",
        std::process::id(),
        TEMP_FILES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_file(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_error(e));
    }
    // The rename itself reaches the disk with the directory.
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // The state holds client secrets: owner-only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
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

    fn on_disk(path: &Path) -> State {
        parse(path, &std::fs::read(path).unwrap()).unwrap()
    }

    fn add_subscription(store: &Store, name: &str) {
        store
            .write(|s| {
                s.subscriptions.push(name.into());
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    /// The files in `dir` (no temporary file is ever left behind).
    fn files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn in_the_background_changes_are_coalesced_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path).unwrap().in_background().unwrap();
        let started = Instant::now();
        for i in 0..200 {
            add_subscription(&store, &format!("s{i}"));
        }
        store.flush().unwrap();
        let elapsed = started.elapsed().as_millis();
        assert_eq!(on_disk(&path), store.read(State::clone));
        assert_eq!(on_disk(&path).subscriptions.len(), 201);
        // 200 changes, a write at most every interval (the first at once, the flush's at once).
        let attempts = store.shared.lock_disk().attempts;
        assert!(
            u128::from(attempts) <= elapsed / WRITE_INTERVAL.as_millis() + 2,
            "{attempts} writes in {elapsed} ms"
        );
        // Nothing pending: a flush returns at once, and the file is left alone.
        store.flush().unwrap();
        // Without a flush, the writer catches up by itself.
        add_subscription(&store, "later");
        let started = Instant::now();
        while !on_disk(&path).subscriptions.iter().any(|s| s == "later") {
            assert!(started.elapsed() < Duration::from_secs(5), "never written");
            std::thread::sleep(Duration::from_millis(10));
        }
        // Dropping the store writes what is left.
        add_subscription(&store, "last");
        drop(store);
        assert_eq!(on_disk(&path).subscriptions.last().unwrap(), "last");
        assert_eq!(files(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_background_write_is_retried_at_the_next_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path).unwrap().in_background().unwrap();
        // A directory where the file was: the rename fails.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(path.join("blocker")).unwrap();
        add_subscription(&store, "x");
        let error = store.flush().expect_err("the write fails").to_string();
        assert!(error.contains("cannot write the sandbox state"), "{error}");
        // The change is kept in memory, and nothing half-written is left beside the file.
        assert_eq!(store.read(|s| s.subscriptions.len()), 2);
        assert!(path.is_dir());
        std::fs::remove_dir_all(&path).unwrap();
        assert!(files(dir.path()).is_empty());
        // The next change writes everything.
        add_subscription(&store, "y");
        store.flush().unwrap();
        assert_eq!(on_disk(&path).subscriptions[1..], ["x", "y"]);
        assert_eq!(files(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_flush_retries_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path).unwrap().in_background().unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(path.join("blocker")).unwrap();
        add_subscription(&store, "x");
        assert!(store.flush().is_err());
        std::fs::remove_dir_all(&path).unwrap();
        store.flush().unwrap();
        assert_eq!(on_disk(&path).subscriptions[1..], ["x"]);
    }

    #[test]
    fn written_through_a_change_is_on_disk_when_write_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let store = Store::open(&path).unwrap();
        add_subscription(&store, "x");
        assert_eq!(on_disk(&path).subscriptions[1..], ["x"]);
        store.replace(State::new()).unwrap();
        assert_eq!(on_disk(&path).subscriptions, [DEFAULT_SUBSCRIPTION]);
        // A change that cannot be written is not made.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(path.join("blocker")).unwrap();
        let result = store.write(|s| {
            s.subscriptions.push("y".into());
            Ok::<_, StoreError>(())
        });
        assert!(matches!(result, Err(StoreError::Write { .. })));
        assert_eq!(store.read(|s| s.subscriptions.len()), 1);
        std::fs::remove_dir_all(&path).unwrap();
        assert!(files(dir.path()).is_empty());
    }

    #[test]
    fn an_update_changes_the_state_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        for store in [
            Store::in_memory(State::new()),
            Store::open(&path).unwrap(),
            Store::open(&path).unwrap().in_background().unwrap(),
        ] {
            let before = store.read(|s| s.subscriptions.len());
            store
                .update(|s| {
                    s.subscriptions.push("x".into());
                    Ok::<_, StoreError>(())
                })
                .unwrap();
            let failed: Result<(), StoreError> = store.update(|_| {
                Err(StoreError::Foreign {
                    path: PathBuf::new(),
                    reason: "test".into(),
                })
            });
            assert!(failed.is_err());
            store.flush().unwrap();
            assert_eq!(store.read(|s| s.subscriptions.len()), before + 1);
            if store.path().is_some() {
                assert_eq!(on_disk(&path), store.read(State::clone));
            }
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "a change failed after changing the state")]
    fn an_update_that_fails_after_changing_the_state_is_caught_in_debug_builds() {
        let store = Store::in_memory(State::new());
        let _: Result<(), StoreError> = store.update(|s| {
            s.subscriptions.clear();
            Err(StoreError::Foreign {
                path: PathBuf::new(),
                reason: "test".into(),
            })
        });
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
