//! A sandbox the test serves (state in a temporary directory, port 0, `{dir}/endpoint` written
//! as `wiform sandbox serve` writes it), the `wiform` binary run against it as users run it,
//! raw ARM and Kubernetes requests as the sandbox's admin, what the sandbox holds for a stack
//! ([`Inventory`]) and what a config asks for ([`Expected`]), and configs edited as TOML.

#[path = "../support/served_sandbox.rs"]
mod served_sandbox;
pub use served_sandbox::Sandbox;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use wiform_sandbox::auth::Caller;
use wiform_sandbox::kube::ClusterAccess;

use wiform_sandbox::Faults;
use wiform_sandbox::seed::Seed;
use wiform_sandbox::state::{ADMIN_CLIENT_ID, DEFAULT_SUBSCRIPTION, State, StoreError};

pub const SUB: &str = DEFAULT_SUBSCRIPTION;
pub const MSI_API: &str = "2024-11-30";
/// The tag, label and description prefix wiform marks what it owns with.
pub const STACK_TAG: &str = "wiform-stack";
pub const STACK_LABEL: &str = "wiform.io/stack";
/// The 409 two concurrent credential writes on one managed identity get.
pub const CONCURRENT_FIC_WRITES: &str =
    "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity";
/// Longest a single command may run before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// The warning `--sandbox` prints when it started a sandbox of its own (the test's did not
/// answer): the test's setup would be wrong.
const FALLBACK_WARNING: &str = "is not free";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Exit code, time and both streams, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit code: {} after {:.1} s\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code,
            self.elapsed.as_secs_f64(),
            self.stdout,
            self.stderr
        )
    }

    /// Both streams.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl Sandbox {
    pub fn set_faults(&self, faults: Faults) {
        self.app().set_faults(faults);
    }

    /// How many answers carried the error `code`.
    pub fn errors(&self, code: &str) -> usize {
        self.log()
            .iter()
            .filter(|e| e.error_code.as_deref() == Some(code))
            .count()
    }

    /// `wiform --color never ARGS` in `cwd`, as a command to run or spawn.
    pub fn command(&self, cwd: &Path, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("wiform"));
        command
            .arg("--color")
            .arg("never")
            .args(args)
            .current_dir(cwd)
            .env_remove("NO_COLOR")
            .env_remove("COLUMNS")
            .env_remove("WIFORM_LOG")
            .env_remove("RUST_LOG");
        command
    }

    /// Runs `wiform --color never ARGS` in `cwd`. Fails the test when the binary started a
    /// sandbox of its own instead of connecting to this one.
    pub fn wiform(&self, cwd: &Path, args: &[&str]) -> Run {
        let started = Instant::now();
        let output = assert_cmd::Command::from_std(self.command(cwd, args))
            .timeout(COMMAND_TIMEOUT)
            .output()
            .expect("wiform runs");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        };
        assert!(
            !run.stderr.contains(FALLBACK_WARNING),
            "wiform started a sandbox of its own instead of using the test's:\n{}",
            run.transcript()
        );
        run
    }

    /// `COMMAND --sandbox --sandbox-dir DIR -f FILE`.
    pub fn sandbox_args<'a>(&'a self, command: &'a str, file: &'a Path) -> Vec<&'a str> {
        vec![
            command,
            "--sandbox",
            "--sandbox-dir",
            self.dir().to_str().expect("a UTF-8 temporary path"),
            "-f",
            file.to_str().expect("a UTF-8 path"),
        ]
    }

    /// `wiform apply --sandbox --sandbox-dir DIR --auto-approve -f FILE`, whatever comes of it.
    pub fn try_apply(&self, file: &Path) -> Run {
        let mut args = self.sandbox_args("apply", file);
        args.push("--auto-approve");
        self.wiform(dir_of(file), &args)
    }

    /// [`Sandbox::try_apply`], which must exit 0 with "Apply complete!".
    pub fn apply(&self, file: &Path) -> Run {
        let run = self.try_apply(file);
        assert_eq!(run.code, 0, "apply failed:\n{}", run.transcript());
        assert!(
            run.stdout.contains("Apply complete!"),
            "{}",
            run.transcript()
        );
        run
    }

    /// `wiform plan --sandbox --sandbox-dir DIR -f FILE EXTRA…`.
    pub fn plan(&self, file: &Path, extra: &[&str]) -> Run {
        let mut args = self.sandbox_args("plan", file);
        args.extend_from_slice(extra);
        self.wiform(dir_of(file), &args)
    }

    /// `plan --detailed-exitcode` exits 0: Azure and Kubernetes match `file`.
    pub fn assert_in_sync(&self, file: &Path) {
        let run = self.plan(file, &["--detailed-exitcode"]);
        assert_eq!(
            run.code,
            0,
            "the plan after apply is not empty:\n{}",
            run.transcript()
        );
        assert!(run.stdout.contains("No changes."), "{}", run.transcript());
    }

    /// The object id of the sandbox's Owner client (the principal wiform runs as).
    pub fn admin_principal(&self) -> String {
        self.read(|s| {
            s.principal_by_client_id(ADMIN_CLIENT_ID)
                .expect("the admin client")
                .id
                .clone()
        })
    }

    /// Adds the seed's objects, as `wiform sandbox seed` does.
    pub fn seed(&self, seed: &Seed) {
        let app = self.app();
        app.store
            .write(|s| Ok::<_, StoreError>(wiform_sandbox::seed::apply(s, seed, &app.base_url)))
            .expect("the store writes")
            .expect("the seed applies");
    }

    /// A token of the sandbox's Owner client for `audience`, as its token endpoint issues it.
    fn token(&self, audience: &str) -> String {
        let app = self.app();
        let caller = Caller {
            object_id: self.admin_principal(),
            client_id: ADMIN_CLIENT_ID.into(),
            tenant_id: app.tenant_id(),
        };
        app.key.mint(&app.issuer(), &caller, audience, 3600)
    }

    fn send(
        &self,
        token: String,
        method: Method,
        url: String,
        content_type: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.runtime.block_on(async {
            let mut request = self.http.request(method, url).bearer_auth(token);
            if let Some(body) = body {
                request = request
                    .header("Content-Type", content_type)
                    .body(body.to_string());
            }
            let response = request.send().await.expect("the sandbox answers");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }

    /// What a workload does to get an Azure token: its service account's token (TokenRequest on
    /// `cluster`), exchanged at the sandbox's Entra endpoint for identity `client_id`. The
    /// status of the exchange and its body (an `error_description` with the AADSTS code when
    /// refused).
    pub fn exchange(
        &self,
        cluster: &ClusterAccess,
        namespace: &str,
        name: &str,
        client_id: &str,
    ) -> (u16, Value) {
        let (status, minted) = self.kube(
            cluster,
            Method::POST,
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"),
            Some(json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"audiences": ["api://AzureADTokenExchange"], "expirationSeconds": 600},
            })),
        );
        assert_eq!(status, 201, "TokenRequest: {minted}");
        let token = minted["status"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.base_url(),
            self.app().tenant_id()
        );
        self.runtime.block_on(async {
            let response = self
                .http
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", token.as_str()),
                    ("scope", "https://management.azure.com/.default"),
                ])
                .send()
                .await
                .expect("the sandbox answers");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }

    /// `wiform apply` of `file` while a probe does what the workload of `namespace/name` does
    /// ([`Sandbox::exchange`]) every 100 ms: the apply's run, how many exchanges were made, and
    /// the refused ones.
    pub fn apply_while_probing(
        &self,
        file: &Path,
        cluster: &ClusterAccess,
        namespace: &str,
        name: &str,
        client_id: &str,
    ) -> (Run, usize, Vec<String>) {
        let mut refusals = Vec::new();
        let mut probes = 0;
        let run = std::thread::scope(|scope| {
            let apply = scope.spawn(|| self.apply(file));
            while !apply.is_finished() {
                let (status, body) = self.exchange(cluster, namespace, name, client_id);
                probes += 1;
                if status != 200 {
                    refusals.push(format!("{status}: {body}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            apply.join().expect("apply ran")
        });
        (run, probes, refusals)
    }

    /// An ARM request as the Owner client (`path` from `/subscriptions/…` or `/providers/…`,
    /// with its api-version): the status and the body.
    pub fn arm(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            self.token("https://management.azure.com"),
            method,
            format!("{}{path}", self.base_url()),
            "application/json",
            body,
        )
    }

    /// A Microsoft Graph request as the Owner client (`path` from `/v1.0/…`).
    pub fn graph(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            self.token("https://graph.microsoft.com"),
            method,
            format!("{}{path}", self.base_url()),
            "application/json",
            body,
        )
    }

    /// A Kubernetes request to `cluster` as its admin (a PATCH is a JSON merge patch, what
    /// `kubectl annotate` sends).
    pub fn kube(
        &self,
        cluster: &ClusterAccess,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let content_type = if method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        self.send(
            cluster.admin_token.clone(),
            method,
            format!("{}{path}", cluster.server),
            content_type,
            body,
        )
    }

    /// The Kubernetes API of the AKS cluster `name`.
    pub fn aks(&self, name: &str) -> ClusterAccess {
        let key = self.read(|s| {
            s.managed_clusters
                .iter()
                .find(|(_, c)| c.name == name)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| panic!("AKS cluster {name} is in the sandbox"))
        });
        wiform_sandbox::kube::aks_access(self.app(), &key)
            .expect("the store answers")
            .unwrap_or_else(|| panic!("AKS cluster {name} has a Kubernetes API"))
    }

    /// The standalone cluster (what clusters that are not AKS are in the sandbox).
    pub fn standalone(&self) -> ClusterAccess {
        wiform_sandbox::kube::standalone(self.app()).expect("the standalone cluster")
    }

    /// The cluster a config's cluster entry lands on in the sandbox.
    pub fn cluster_of(&self, cluster: &ClusterRef) -> ClusterAccess {
        match cluster {
            ClusterRef::Aks(name) => self.aks(name),
            ClusterRef::Standalone => self.standalone(),
        }
    }

    /// Creates namespace `namespace` (when missing) and service account `name` in it by hand,
    /// without any wiform label.
    pub fn service_account_by_hand(&self, cluster: &ClusterAccess, namespace: &str, name: &str) {
        let (status, body) = self.kube(
            cluster,
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})),
        );
        assert!(matches!(status, 201 | 409), "{status}: {body}");
        let (status, body) = self.kube(
            cluster,
            Method::POST,
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts"),
            Some(json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "labels": {"team": "legacy"}},
            })),
        );
        assert_eq!(status, 201, "{body}");
    }

    /// Does `cluster` hold the service account `namespace/name`?
    pub fn has_service_account(
        &self,
        cluster: &ClusterAccess,
        namespace: &str,
        name: &str,
    ) -> bool {
        self.read(|s| {
            s.kube_clusters.get(&cluster.id).is_some_and(|c| {
                c.service_accounts
                    .contains_key(&format!("{namespace}/{name}"))
            })
        })
    }

    pub fn has_namespace(&self, cluster: &ClusterAccess, namespace: &str) -> bool {
        self.read(|s| {
            s.kube_clusters
                .get(&cluster.id)
                .and_then(|c| c.namespaces.get(namespace))
                .is_some_and(|ns| ns.object["metadata"].get("deletionTimestamp").is_none())
        })
    }

    /// What the sandbox holds for `stack`.
    pub fn inventory(&self, stack: &str) -> Inventory {
        self.read(|s| Inventory::of(s, stack))
    }

    /// Role assignments whose principal no longer exists (left behind by a deleted identity).
    pub fn dangling_assignments(&self) -> Vec<String> {
        self.read(|s| {
            s.role_assignments
                .values()
                .filter(|a| !s.service_principals.contains_key(&a.principal_id))
                .map(|a| a.id.clone())
                .collect()
        })
    }

    /// Groups of role assignments for the same (scope, principal, role): ARM forbids them, so
    /// none may exist.
    pub fn duplicate_assignments(&self) -> Vec<Vec<String>> {
        self.read(|s| {
            let mut groups: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
            for a in s.role_assignments.values() {
                groups
                    .entry((
                        normalise_scope(&a.scope),
                        a.principal_id.to_ascii_lowercase(),
                        role_guid(&a.role_definition_id),
                    ))
                    .or_default()
                    .push(a.id.clone());
            }
            groups.into_values().filter(|g| g.len() > 1).collect()
        })
    }

    /// After `what`: the stack's objects are exactly what `config` asks for, nothing is
    /// duplicated and no role assignment is left without its principal.
    pub fn assert_matches(&self, config: &Config, what: &str) {
        let actual = self.inventory(&config.stack());
        assert_eq!(
            actual.summary(),
            config.expected(),
            "after {what}: the sandbox (left) does not hold what the config (right) asks for"
        );
        let duplicates = self.duplicate_assignments();
        assert!(
            duplicates.is_empty(),
            "after {what}: duplicated role assignments: {duplicates:#?}"
        );
        let dangling = self.dangling_assignments();
        assert!(
            dangling.is_empty(),
            "after {what}: role assignments of deleted principals: {dangling:#?}"
        );
    }
}

fn dir_of(file: &Path) -> &Path {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A scope as compared here: lower case, without a trailing `/`.
pub fn normalise_scope(scope: &str) -> String {
    scope.trim_end_matches('/').to_ascii_lowercase()
}

/// The role definition GUID at the end of a role definition id.
pub fn role_guid(role_definition_id: &str) -> String {
    role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

pub fn identity_path(resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}?api-version={MSI_API}"
    )
}

// ---------------------------------------------------------------------------------------------
// What the sandbox holds

/// A managed identity or application of the stack.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Managed identity: its name; application: its display name.
    pub name: String,
    /// The object id role assignments name.
    pub principal_id: String,
    pub client_id: String,
}

/// The stack's objects in the sandbox, found by their ownership markers (and the role
/// assignments and credentials of the stack's identities, marked or not).
#[derive(Debug, Default)]
pub struct Inventory {
    pub identities: Vec<Principal>,
    pub applications: Vec<Principal>,
    /// Credential names per identity or application name.
    pub credentials: BTreeMap<String, Vec<String>>,
    /// (identity or application name, role GUID, normalised scope) of every role assignment of
    /// the stack's principals.
    pub grants: Vec<(String, String, String)>,
    /// `cluster/namespace/name` of service accounts with the stack's label (`cluster`: the AKS
    /// cluster's name, or `sandbox` for the standalone cluster).
    pub service_accounts: Vec<String>,
    /// `cluster/namespace` of namespaces with the stack's label.
    pub namespaces: Vec<String>,
}

/// Comparable counts and names: what [`Inventory`] and [`Expected`] both give.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub identities: Vec<String>,
    pub applications: Vec<String>,
    pub credentials: BTreeMap<String, Vec<String>>,
    pub grants: Vec<(String, String, String)>,
    pub service_accounts: Vec<String>,
    pub namespaces: Vec<String>,
}

fn sorted<T: Ord + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.into_iter().collect();
    v.sort();
    v
}

impl Inventory {
    fn of(s: &State, stack: &str) -> Inventory {
        let mut inventory = Inventory::default();
        let mut by_principal: BTreeMap<String, String> = BTreeMap::new();
        for identity in s.identities.values() {
            if identity.tags.get(STACK_TAG).map(String::as_str) != Some(stack) {
                continue;
            }
            inventory.identities.push(Principal {
                name: identity.name.clone(),
                principal_id: identity.principal_id.clone(),
                client_id: identity.client_id.clone(),
            });
            by_principal.insert(identity.principal_id.clone(), identity.name.clone());
            let key = identity.id.to_ascii_lowercase();
            inventory.credentials.insert(
                identity.name.clone(),
                sorted(
                    s.federated_credentials
                        .values()
                        .filter(|f| f.identity_key == key)
                        .map(|f| f.name.clone()),
                ),
            );
        }
        let marker = format!("{STACK_TAG}:{stack}");
        for app in s.applications.values() {
            if !app.tags.iter().any(|t| t.eq_ignore_ascii_case(&marker)) {
                continue;
            }
            let principal = s
                .service_principals
                .values()
                .find(|p| p.app_id == app.app_id)
                .map(|p| p.id.clone())
                .unwrap_or_default();
            inventory.applications.push(Principal {
                name: app.display_name.clone(),
                principal_id: principal.clone(),
                client_id: app.app_id.clone(),
            });
            by_principal.insert(principal, app.display_name.clone());
            inventory.credentials.insert(
                app.display_name.clone(),
                sorted(app.federated_credentials.iter().map(|f| f.name.clone())),
            );
        }
        for assignment in s.role_assignments.values() {
            if let Some(name) = by_principal.get(&assignment.principal_id) {
                inventory.grants.push((
                    name.clone(),
                    role_guid(&assignment.role_definition_id),
                    normalise_scope(&assignment.scope),
                ));
            }
        }
        for cluster in s.kube_clusters.values() {
            let label = match &cluster.aks_key {
                Some(key) => s
                    .managed_clusters
                    .get(key)
                    .map_or_else(|| key.clone(), |c| c.name.clone()),
                None => cluster.id.clone(),
            };
            let ours = |object: &Value| object["metadata"]["labels"][STACK_LABEL] == stack;
            for (key, sa) in &cluster.service_accounts {
                if ours(&sa.object) {
                    inventory.service_accounts.push(format!("{label}/{key}"));
                }
            }
            // A terminating namespace is deleted: without a namespace controller (the sandbox
            // is held to a bare kube-apiserver) it stays `Terminating`, as it would for a
            // moment on AKS.
            let terminating =
                |object: &Value| object["metadata"].get("deletionTimestamp").is_some();
            for (name, ns) in &cluster.namespaces {
                if ours(&ns.object) && !terminating(&ns.object) {
                    inventory.namespaces.push(format!("{label}/{name}"));
                }
            }
        }
        inventory
    }

    pub fn summary(&self) -> Summary {
        Summary {
            identities: sorted(self.identities.iter().map(|i| i.name.clone())),
            applications: sorted(self.applications.iter().map(|i| i.name.clone())),
            credentials: self
                .credentials
                .iter()
                .filter(|(_, names)| !names.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            grants: sorted(self.grants.iter().cloned()),
            service_accounts: sorted(self.service_accounts.iter().cloned()),
            namespaces: sorted(self.namespaces.iter().cloned()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Configs as TOML

/// Where a config's cluster is in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRef {
    /// An AKS cluster, by name.
    Aks(String),
    /// Any other cluster: the sandbox's standalone one.
    Standalone,
}

impl ClusterRef {
    fn label(&self) -> String {
        match self {
            ClusterRef::Aks(name) => name.clone(),
            ClusterRef::Standalone => "sandbox".into(),
        }
    }
}

/// An `identity.toml` as a TOML table, to edit and write out.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: toml::Table,
}

impl Config {
    /// `examples/NAME/identity.toml`.
    pub fn example(name: &str) -> Config {
        let path = root().join("examples").join(name).join("identity.toml");
        Config::parse(&std::fs::read_to_string(&path).expect("the example reads"))
    }

    pub fn parse(text: &str) -> Config {
        Config {
            table: text.parse().expect("the config is TOML"),
        }
    }

    /// Writes the config to `dir/identity.toml` and returns that path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("identity.toml");
        std::fs::write(
            &path,
            toml::to_string(&self.table).expect("the config serialises"),
        )
        .expect("the config is written");
        path
    }

    pub fn stack(&self) -> String {
        self.table["name"].as_str().expect("name").to_string()
    }

    /// `[section]` (a table of tables), made when missing.
    pub fn section(&mut self, name: &str) -> &mut toml::Table {
        self.table
            .entry(name)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("a table")
    }

    /// `[[name]]` (an array of tables), made when missing.
    pub fn list(&mut self, name: &str) -> &mut Vec<toml::Value> {
        self.table
            .entry(name)
            .or_insert_with(|| toml::Value::Array(Vec::new()))
            .as_array_mut()
            .expect("an array")
    }

    fn items(&self, name: &str) -> Vec<&toml::Table> {
        self.table
            .get(name)
            .and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(toml::Value::as_table).collect())
            .unwrap_or_default()
    }

    fn entries(&self, name: &str) -> Vec<(&String, &toml::Table)> {
        self.table
            .get(name)
            .and_then(toml::Value::as_table)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| v.as_table().map(|v| (k, v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The cluster keys and where each is in the sandbox.
    pub fn clusters(&self) -> Vec<(String, ClusterRef)> {
        self.entries("clusters")
            .into_iter()
            .map(|(key, c)| {
                let at = match c.get("name").and_then(toml::Value::as_str) {
                    Some(name) => ClusterRef::Aks(name.to_string()),
                    None => ClusterRef::Standalone,
                };
                (key.clone(), at)
            })
            .collect()
    }

    fn cluster(&self, key: &str) -> ClusterRef {
        self.clusters()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, c)| c)
            .unwrap_or_else(|| panic!("cluster {key} is in the config"))
    }

    /// Identity keys with their kind: `(key, is_application)`.
    pub fn identity_keys(&self) -> Vec<(String, bool)> {
        self.entries("identities")
            .into_iter()
            .map(|(k, v)| (k.clone(), str_of(v, "kind") == Some("application")))
            .collect()
    }

    /// The name the identity `key` has in Azure: a managed identity's `name` (else the key), an
    /// application's `display_name` (else the key).
    pub fn identity_name(&self, key: &str) -> String {
        let entries = self.entries("identities");
        let (_, identity) = entries
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("identity {key} is in the config"));
        let field = if str_of(identity, "kind") == Some("application") {
            "display_name"
        } else {
            "name"
        };
        str_of(identity, field).unwrap_or(key).to_string()
    }

    /// The resource group of managed identity `key`.
    pub fn identity_group(&self, key: &str) -> Option<String> {
        self.entries("identities")
            .into_iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, i)| str_of(i, "resource_group").map(String::from))
    }

    /// Renames identity `from` to `to` everywhere it is referenced.
    pub fn rename_identity(&mut self, from: &str, to: &str) {
        let identities = self.section("identities");
        let identity = identities
            .remove(from)
            .unwrap_or_else(|| panic!("identity {from} is in the config"));
        identities.insert(to.to_string(), identity);
        for list in ["service_accounts", "federations", "role_grants"] {
            for item in self.list(list) {
                let item = item.as_table_mut().expect("a table");
                if item.get("identity").and_then(toml::Value::as_str) == Some(from) {
                    item.insert("identity".into(), to.into());
                }
            }
        }
    }

    /// The full ARM scope of a role grant's `scope`.
    pub fn full_scope(scope: &str) -> String {
        if scope.starts_with('/') {
            scope.to_string()
        } else {
            format!("/subscriptions/{SUB}/{}", scope.trim_start_matches('/'))
        }
    }

    /// The credential name wiform gives a service account's credential (short names only).
    fn credential_name(sa: &toml::Table) -> String {
        if let Some(name) = str_of(sa, "federation_name") {
            return name.to_string();
        }
        let name = format!(
            "{}-{}-{}",
            str_of(sa, "cluster").unwrap_or_default(),
            str_of(sa, "namespace").unwrap_or_default(),
            str_of(sa, "name").unwrap_or_default()
        )
        .replace('.', "-");
        assert!(name.len() <= 120, "long credential names are not modelled");
        name
    }

    /// What the config asks for, in the terms of [`Inventory::summary`].
    pub fn expected(&self) -> Summary {
        let keys = self.identity_keys();
        let name_of = |key: &str| self.identity_name(key);
        let mut credentials: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut service_accounts = Vec::new();
        let mut namespaces = BTreeSet::new();
        for sa in self.items("service_accounts") {
            let identity = str_of(sa, "identity").expect("identity");
            credentials
                .entry(name_of(identity))
                .or_default()
                .push(Self::credential_name(sa));
            let cluster = self
                .cluster(str_of(sa, "cluster").expect("cluster"))
                .label();
            let namespace = str_of(sa, "namespace").expect("namespace");
            service_accounts.push(format!(
                "{cluster}/{namespace}/{}",
                str_of(sa, "name").expect("name")
            ));
            if sa.get("create_namespace").and_then(toml::Value::as_bool) != Some(false) {
                namespaces.insert(format!("{cluster}/{namespace}"));
            }
        }
        for federation in self.items("federations") {
            credentials
                .entry(name_of(str_of(federation, "identity").expect("identity")))
                .or_default()
                .push(str_of(federation, "name").expect("name").to_string());
        }
        for names in credentials.values_mut() {
            names.sort();
        }
        let grants = self
            .items("role_grants")
            .into_iter()
            .map(|g| {
                let role = str_of(g, "role").expect("role");
                let guid = wiform_sandbox::builtin_roles::by_name(role)
                    .map_or_else(|| role.to_ascii_lowercase(), |r| r.id.to_string());
                (
                    name_of(str_of(g, "identity").expect("identity")),
                    guid,
                    normalise_scope(&Self::full_scope(str_of(g, "scope").expect("scope"))),
                )
            })
            .collect::<Vec<_>>();
        Summary {
            identities: sorted(keys.iter().filter(|(_, app)| !app).map(|(k, _)| name_of(k))),
            applications: sorted(keys.iter().filter(|(_, app)| *app).map(|(k, _)| name_of(k))),
            credentials,
            grants: sorted(grants),
            service_accounts: sorted(service_accounts),
            namespaces: namespaces.into_iter().collect(),
        }
    }
}

fn str_of<'a>(table: &'a toml::Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(toml::Value::as_str)
}

/// A table from `key = value` pairs of strings.
pub fn table(pairs: &[(&str, &str)]) -> toml::Value {
    toml::Value::Table(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), toml::Value::from(*v)))
            .collect(),
    )
}
