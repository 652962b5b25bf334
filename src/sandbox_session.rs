//! `--sandbox`: a command that reaches Azure talks to wiform's emulator instead.
//!
//! [`open`] connects to the sandbox `wiform sandbox serve` runs from the state directory (it
//! writes `{state_dir}/endpoint` while it runs), or starts one inside this process for the
//! length of the command. The session then gives the command what it needs to talk to it as it
//! would to Azure: the [`Endpoints`] (one address, the sandbox's CA), [`CredentialSettings`]
//! that sign in as the sandbox's Owner client through azure_identity's real client-secret flow,
//! a check that the config names the sandbox's tenant and subscription, [`SandboxSession::preload`]
//! (the resource groups and AKS clusters a config expects to find already there), and a
//! kubeconfig for the standalone cluster (clusters that are not AKS).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::debug;
use wiform_sandbox::client::{self, Endpoint, SandboxClient, Seed, SeedCluster, SeedGroup, SignIn};
use wiform_sandbox::{Options, Running, StartError};

use crate::arm_id::{full_scope, resource_group_of, subscription_of};
use crate::config::model::Config;
use crate::graph::{Graph, Resource};
use crate::kinds::{aks_cluster, managed_identity, role_assignment};
use crate::providers::azure::credential::{
    AuthMethod, CredentialError, CredentialSettings, Environment, credential,
};
use crate::providers::azure::{AzureClient, AzureError, AzureProvider, ClientOptions, Endpoints};
use crate::providers::kube::KubeconfigSource;

/// The port an in-process sandbox asks for first, as `wiform sandbox serve` does: AKS issuer
/// URLs embed the sandbox's address, so a stable port keeps them valid across runs.
pub const DEFAULT_PORT: u16 = 8443;
/// How long a running sandbox has to answer its health check.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of the admin API calls (seed, kubeconfig).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Location of preloaded objects when the config names none.
const DEFAULT_LOCATION: &str = "westeurope";
/// The tag preloaded resource groups carry: the stack whose first use added them. Not a
/// `wiform-` key, so nothing takes it for an ownership marker.
pub const PRELOAD_TAG: &str = "sandbox-preloaded-for";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the sandbox could not start with its state in {}: {source}\n\
         hint: check that the directory is writable and holds a wiform sandbox state \
         (or pick another with --state-dir); `wiform sandbox serve` shows the same error",
        state_dir.display()
    )]
    Start {
        state_dir: PathBuf,
        source: StartError,
    },
    #[error(
        "a sandbox is running at {url}, but {} cannot be used: {reason}\n\
         hint: stop that `wiform sandbox serve` and run it again, or use another --state-dir",
        path.display()
    )]
    RunningState {
        url: String,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "the sandbox state {} cannot be used: {reason}\n\
         hint: move it away, and a new sandbox state is made in its place",
        path.display()
    )]
    State { path: PathBuf, reason: String },
    #[error(
        "the sandbox at {url} cannot be used: {reason}\n\
         hint: the `endpoint` and `ca.pem` files of {} must be the ones `wiform sandbox serve` \
         wrote: stop any sandbox serving from there, delete `endpoint`, and retry",
        state_dir.display()
    )]
    Endpoint {
        url: String,
        state_dir: PathBuf,
        reason: String,
    },
    #[error(
        "this config cannot run on the sandbox:\n{}\nhint: the sandbox emulates tenant {tenant} and subscription {subscription}: use them in [azure] to try this config on the sandbox",
        problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
    )]
    ForeignIds {
        problems: Vec<String>,
        tenant: String,
        subscription: String,
    },
    #[error("cannot sign in to the sandbox: {0}")]
    Credential(#[from] CredentialError),
    #[error(
        "cannot read what the sandbox holds: {0}\nhint: `wiform sandbox reset` empties a sandbox whose state went wrong"
    )]
    Azure(#[from] AzureError),
    #[error(
        "the sandbox at {url} refused {what}: {message}\nhint: is `wiform sandbox serve` from this wiform version? Restart it and retry"
    )]
    Admin {
        url: String,
        what: &'static str,
        message: String,
    },
}

/// Its hints are still lines of its text (`\nhint: …`, not indented as the CLI prints a hint):
/// the message is the whole text, so what the CLI prints stays as it was.
impl crate::error::Explain for SandboxError {
    fn message(&self) -> String {
        self.to_string()
    }

    fn hint(&self) -> Option<String> {
        None
    }
}

/// The sandbox a command talks to, and how to sign in to it. An in-process sandbox runs until
/// the session is dropped (or [`SandboxSession::close`]d).
pub struct SandboxSession {
    running: Option<Running>,
    base_url: String,
    ca_pem: String,
    endpoints: Endpoints,
    tenant_id: String,
    subscription_id: String,
    client_id: String,
    /// The Owner client's secret: never shown (no `Display`, redacted in `Debug`).
    client_secret: String,
    /// The sandbox's admin API (trusting its CA).
    admin: SandboxClient,
    /// Things the user should know (the sandbox could not get its usual port).
    pub warnings: Vec<String>,
}

impl fmt::Debug for SandboxSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxSession")
            .field("base_url", &self.base_url)
            .field("in_process", &self.running.is_some())
            .field("tenant_id", &self.tenant_id)
            .field("subscription_id", &self.subscription_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// What [`SandboxSession::preload`] added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preloaded {
    /// Resource group names.
    pub resource_groups: Vec<String>,
    /// AKS clusters as `resource_group/name`.
    pub clusters: Vec<String>,
}

impl Preloaded {
    pub fn is_empty(&self) -> bool {
        self.resource_groups.is_empty() && self.clusters.is_empty()
    }

    /// `sandbox: added resource group rg-x, AKS cluster rg-x/aks (first use)`, or `None` when
    /// nothing was added.
    pub fn describe(&self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let items: Vec<String> = self
            .resource_groups
            .iter()
            .map(|g| format!("resource group {g}"))
            .chain(self.clusters.iter().map(|c| format!("AKS cluster {c}")))
            .collect();
        Some(format!("sandbox: added {} (first use)", items.join(", ")))
    }
}

/// The sandbox of `state_dir` (`.wiform` by default): the one `wiform sandbox serve` runs from
/// it, or a new one in this process on port 8443 (any free port when 8443 is taken, with a
/// warning in [`SandboxSession::warnings`]).
pub async fn open(state_dir: &Path) -> Result<SandboxSession, SandboxError> {
    open_with(state_dir, DEFAULT_PORT).await
}

/// [`open`], asking for `port` when a sandbox has to be started here (0: any free port, what
/// tests use).
pub async fn open_with(state_dir: &Path, port: u16) -> Result<SandboxSession, SandboxError> {
    if let Some(session) = connect_running(state_dir).await? {
        return Ok(session);
    }
    start_in_process(state_dir, port).await
}

/// The sandbox `wiform sandbox serve` runs from `state_dir`, when its endpoint file names one
/// that answers.
async fn connect_running(state_dir: &Path) -> Result<Option<SandboxSession>, SandboxError> {
    let Some(endpoint) = Endpoint::read(state_dir) else {
        return Ok(None);
    };
    let url = endpoint.url.trim_end_matches('/').to_string();
    let Some(probe) = SandboxClient::new(&url, &endpoint.ca_pem, HEALTH_TIMEOUT) else {
        return Ok(None);
    };
    if !probe.healthy().await {
        debug!("no sandbox answers at {url} (recorded in the endpoint file): starting one here");
        return Ok(None);
    }
    let sign_in =
        client::read_admin_sign_in(state_dir).map_err(|e| SandboxError::RunningState {
            url: url.clone(),
            path: state_dir.join(client::STATE_FILE),
            reason: e.to_string(),
        })?;
    debug!("using the sandbox running at {url}");
    session(None, url, endpoint.ca_pem, sign_in, Vec::new(), state_dir).map(Some)
}

async fn start_in_process(state_dir: &Path, port: u16) -> Result<SandboxSession, SandboxError> {
    let options = |port| Options {
        state_dir: Some(state_dir.to_path_buf()),
        port,
        ..Options::default()
    };
    let start_error = |source| SandboxError::Start {
        state_dir: state_dir.to_path_buf(),
        source,
    };
    let mut warnings = Vec::new();
    let running = match wiform_sandbox::start(options(port)).await {
        Ok(running) => running,
        Err(StartError::Bind { port, source }) if port != 0 => {
            let running = wiform_sandbox::start(options(0))
                .await
                .map_err(start_error)?;
            warnings.push(format!(
                "port {port} is not free ({source}), so the sandbox runs on {} for this command; \
                 AKS clusters it creates or preloads now get issuer URLs that name this port, \
                 which nothing answers once the command ends. Free port {port}, or run \
                 `wiform sandbox serve --state-dir {}` beside your commands, to keep issuer URLs stable",
                running.base_url(),
                state_dir.display()
            ));
            running
        }
        Err(e) => return Err(start_error(e)),
    };
    let sign_in = client::admin_sign_in(&running).map_err(|e| SandboxError::State {
        path: state_dir.join(client::STATE_FILE),
        reason: e.to_string(),
    })?;
    let url = running.base_url().to_string();
    let ca_pem = running.ca_pem().to_string();
    debug!("started a sandbox in this process at {url}");
    session(Some(running), url, ca_pem, sign_in, warnings, state_dir)
}

fn session(
    running: Option<Running>,
    base_url: String,
    ca_pem: String,
    sign_in: SignIn,
    warnings: Vec<String>,
    state_dir: &Path,
) -> Result<SandboxSession, SandboxError> {
    let endpoint_error = |reason: String| SandboxError::Endpoint {
        url: base_url.clone(),
        state_dir: state_dir.to_path_buf(),
        reason,
    };
    let endpoints = Endpoints::sandbox(&base_url, &ca_pem).map_err(endpoint_error)?;
    let admin = SandboxClient::new(&base_url, &ca_pem, ADMIN_TIMEOUT)
        .ok_or_else(|| endpoint_error("its CA certificate is not usable".into()))?;
    Ok(SandboxSession {
        running,
        base_url,
        ca_pem,
        endpoints,
        tenant_id: sign_in.tenant_id,
        subscription_id: sign_in.subscription_id,
        client_id: sign_in.client_id,
        client_secret: sign_in.client_secret,
        admin,
        warnings,
    })
}

impl SandboxSession {
    /// ARM, Graph and the authority host: the sandbox's one address, trusting its CA.
    pub fn endpoints(&self) -> Endpoints {
        self.endpoints.clone()
    }

    /// Sign in as the sandbox's Owner client with its secret (`--auth environment` with the
    /// variables `sandbox.env` sets, without touching the process environment): the real
    /// azure_identity client-secret flow against the sandbox's token endpoint.
    pub fn credential_settings(&self) -> CredentialSettings {
        let (tenant, client, secret) = (
            self.tenant_id.clone(),
            self.client_id.clone(),
            self.client_secret.clone(),
        );
        CredentialSettings {
            method: AuthMethod::Environment,
            tenant_id: self.tenant_id.clone(),
            endpoints: self.endpoints(),
            env: Environment::from_lookup(move |name| match name {
                "AZURE_TENANT_ID" => Some(tenant.clone()),
                "AZURE_CLIENT_ID" => Some(client.clone()),
                "AZURE_CLIENT_SECRET" => Some(secret.clone()),
                _ => None,
            }),
        }
    }

    /// The sandbox's base URL, e.g. `https://127.0.0.1:8443`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// PEM of the CA that signs the sandbox's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }

    /// Whether the sandbox runs in this process (it stops with the session) rather than in a
    /// `wiform sandbox serve`.
    pub fn is_in_process(&self) -> bool {
        self.running.is_some()
    }

    /// The in-process sandbox, if this session started one (tests read its request log).
    pub fn running(&self) -> Option<&Running> {
        self.running.as_ref()
    }

    /// Stops an in-process sandbox, letting requests in flight end.
    pub async fn close(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// The config must live in the sandbox's tenant and subscription (the sandbox emulates one
    /// of each): `[azure]`, every cluster's `subscription_id`, and role grant scopes that name
    /// a subscription.
    pub fn check_config(&self, config: &Config) -> Result<(), SandboxError> {
        let mut problems = Vec::new();
        let tenant = config.azure.tenant_id.value.trim();
        if !tenant.eq_ignore_ascii_case(&self.tenant_id) {
            problems.push(format!("[azure] tenant_id is {tenant}"));
        }
        let subscription = config.azure.subscription_id.value.trim();
        if !subscription.eq_ignore_ascii_case(&self.subscription_id) {
            problems.push(format!("[azure] subscription_id is {subscription}"));
        }
        for (key, cluster) in config.clusters.iter() {
            if let Some(sub) = &cluster.subscription_id
                && !sub.value.trim().eq_ignore_ascii_case(&self.subscription_id)
            {
                problems.push(format!(
                    "[clusters.{}] subscription_id is {}",
                    key.value,
                    sub.value.trim()
                ));
            }
        }
        // Relative scopes are in [azure]'s subscription, checked above.
        for grant in &config.role_grants {
            let scope = full_scope(&grant.scope.value, subscription);
            if grant.scope.value.trim().starts_with('/')
                && let Some(sub) = subscription_of(&scope)
                && !sub.eq_ignore_ascii_case(&self.subscription_id)
            {
                problems.push(format!(
                    "the role grant of `{}` has scope {scope}, in subscription {sub}",
                    grant.identity.value
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SandboxError::ForeignIds {
                problems,
                tenant: self.tenant_id.clone(),
                subscription: self.subscription_id.clone(),
            })
        }
    }

    /// Adds what the config expects to find in place and the sandbox lacks: the resource groups
    /// its managed identities and role grant scopes live in (unless `[resource_groups]` declares
    /// them: wiform creates those itself), and its AKS clusters with their resource groups. What
    /// exists is left as it is, so that the preload happens on first use only.
    ///
    /// Preloaded clusters have their OIDC issuer on and workload identity off when the config
    /// lets wiform turn it on (`enable_workload_identity`, the default), so that the first plan
    /// shows wiform doing so; with `enable_workload_identity = false` wiform only reads the
    /// issuer and could not work with it off, so the cluster gets it on.
    ///
    /// Reads go through ARM as the Owner client (one list of resource groups, one of clusters);
    /// the additions through the sandbox's admin API (`POST /_sandbox/seed`).
    pub async fn preload(&self, stack: &str, graph: &Graph) -> Result<Preloaded, SandboxError> {
        let credential = credential(&self.credential_settings())?;
        let client = AzureClient::new(self.endpoints(), credential, ClientOptions::default())?;
        let provider = AzureProvider::new(client, self.tenant_id.clone());
        let (groups, clusters) = tokio::join!(
            provider.list_resource_groups(&self.subscription_id),
            provider.list_clusters(&self.subscription_id),
        );
        let existing = Existing::new(
            groups?.iter().map(|g| g.name.as_str()),
            clusters?
                .iter()
                .map(|c| (c.resource_group.as_str(), c.name.as_str())),
        );
        let seed = seed_for(graph, &self.subscription_id, stack, &existing);
        let preloaded = Preloaded {
            resource_groups: seed
                .resource_groups
                .iter()
                .map(|g| g.name.clone())
                .collect(),
            clusters: seed
                .managed_clusters
                .iter()
                .map(|c| format!("{}/{}", c.resource_group, c.name))
                .collect(),
        };
        if preloaded.is_empty() {
            return Ok(preloaded);
        }
        self.admin
            .seed(&seed)
            .await
            .map_err(|e| SandboxError::Admin {
                url: self.base_url.clone(),
                what: "the preload (POST /_sandbox/seed)",
                message: e.to_string(),
            })?;
        Ok(preloaded)
    }

    /// A kubeconfig (admin token) for the sandbox's standalone cluster, for configured clusters
    /// that are not AKS (an explicit issuer).
    pub async fn standalone_kubeconfig(&self) -> Result<KubeconfigSource, SandboxError> {
        let text = self
            .admin
            .kubeconfig()
            .await
            .map_err(|e| SandboxError::Admin {
                url: self.base_url.clone(),
                what: "the standalone cluster's kubeconfig (GET /_sandbox/kubeconfig)",
                message: e.to_string(),
            })?;
        Ok(KubeconfigSource::Yaml {
            text,
            context: None,
        })
    }
}

/// What the sandbox holds already, by name (ARM names compare without regard to case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Existing {
    resource_groups: BTreeSet<String>,
    /// `(resource group, name)`.
    clusters: BTreeSet<(String, String)>,
}

impl Existing {
    pub fn new<'a>(
        resource_groups: impl IntoIterator<Item = &'a str>,
        clusters: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        Existing {
            resource_groups: resource_groups
                .into_iter()
                .map(str::to_ascii_lowercase)
                .collect(),
            clusters: clusters
                .into_iter()
                .map(|(g, n)| (g.to_ascii_lowercase(), n.to_ascii_lowercase()))
                .collect(),
        }
    }

    fn has_group(&self, name: &str) -> bool {
        self.resource_groups.contains(&name.to_ascii_lowercase())
    }

    fn has_cluster(&self, resource_group: &str, name: &str) -> bool {
        self.clusters.contains(&(
            resource_group.to_ascii_lowercase(),
            name.to_ascii_lowercase(),
        ))
    }
}

/// The location of objects the config does not place: the one its identities and declared
/// resource groups use most (`[azure].location` unless they override it), else `westeurope`.
fn default_location(graph: &Graph) -> String {
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    let locations = graph
        .node_ids()
        .filter_map(|id| match &graph.node(id).resource {
            Resource::ManagedIdentity(identity) => Some(identity.location.trim()),
            Resource::ResourceGroup(group) => Some(group.location.trim()),
            _ => None,
        })
        .filter(|l| !l.is_empty());
    for (order, location) in locations.enumerate() {
        counts.entry(location.to_string()).or_insert((0, order)).0 += 1;
    }
    counts
        .into_iter()
        // Most used; among equals, the first seen.
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map_or_else(|| DEFAULT_LOCATION.to_string(), |(location, _)| location)
}

/// What to add to a sandbox holding `existing` so that the config of `graph` finds in
/// `subscription` what it expects to exist before wiform runs (see
/// [`SandboxSession::preload`]). Objects outside `subscription` are left out.
pub fn seed_for(graph: &Graph, subscription: &str, stack: &str, existing: &Existing) -> Seed {
    let default_location = default_location(graph);
    let in_subscription = |s: &str| s.trim().eq_ignore_ascii_case(subscription);
    let resources: Vec<&Resource> = graph
        .node_ids()
        .map(|id| &graph.node(id).resource)
        .collect();
    let declared: BTreeSet<String> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::ResourceGroup(group) => Some(group.name.to_ascii_lowercase()),
            _ => None,
        })
        .collect();

    let mut seed = Seed::default();
    let mut added: BTreeSet<String> = BTreeSet::new();
    let mut add_group = |seed: &mut Seed, name: &str, location: &str| {
        let name = name.trim();
        if name.is_empty() || existing.has_group(name) || !added.insert(name.to_ascii_lowercase()) {
            return;
        }
        seed.resource_groups.push(SeedGroup {
            name: name.to_string(),
            location: location.to_string(),
            tags: BTreeMap::from([(PRELOAD_TAG.to_string(), stack.to_string())]),
        });
    };

    // Groups of managed identities, in the identity's location.
    for resource in &resources {
        if let Resource::ManagedIdentity(managed_identity::Desired {
            subscription_id,
            resource_group,
            location,
            ..
        }) = resource
            && in_subscription(subscription_id)
            && !declared.contains(&resource_group.to_ascii_lowercase())
        {
            let location = Some(location.trim())
                .filter(|l| !l.is_empty())
                .unwrap_or(&default_location);
            add_group(&mut seed, resource_group, location);
        }
    }
    // AKS clusters and their groups. A cluster's group is added even when `[resource_groups]`
    // declares it: the cluster cannot exist without it, and on Azure it would be there already.
    for resource in &resources {
        if let Resource::Cluster(aks_cluster::Desired {
            subscription_id,
            resource_group,
            name,
            enable_workload_identity,
        }) = resource
            && in_subscription(subscription_id)
        {
            add_group(&mut seed, resource_group, &default_location);
            let duplicate = seed.managed_clusters.iter().any(|c| {
                c.resource_group.eq_ignore_ascii_case(resource_group)
                    && c.name.eq_ignore_ascii_case(name)
            });
            if !existing.has_cluster(resource_group, name) && !duplicate {
                seed.managed_clusters.push(SeedCluster {
                    resource_group: resource_group.clone(),
                    name: name.clone(),
                    location: default_location.clone(),
                    oidc_issuer: true,
                    workload_identity: !enable_workload_identity,
                });
            }
        }
    }
    // Groups that role grant scopes lie in (the scoped resources themselves need not exist:
    // the sandbox accepts role assignments below a group it does not model).
    for resource in &resources {
        if let Resource::RoleAssignment(role_assignment::Desired { scope, .. }) = resource
            && let Some(group) = resource_group_of(scope, subscription)
            && !declared.contains(&group.to_ascii_lowercase())
        {
            add_group(&mut seed, group, &default_location);
        }
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";

    fn graph(toml: &str) -> Graph {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.toml");
        std::fs::write(&path, toml).unwrap();
        let checked = crate::config::load(&path).unwrap();
        let config = checked.config.unwrap_or_else(|| {
            panic!("the test config is valid: {:?}", checked.diagnostics);
        });
        Graph::build(&config)
    }

    fn header(location: Option<&str>) -> String {
        format!(
            "version = 1\nname = \"s\"\n[azure]\ntenant_id = \"aaaaaaaa-0000-4000-8000-000000000001\"\nsubscription_id = \"{SUB}\"\n{}",
            location.map_or(String::new(), |l| format!("location = \"{l}\"\n"))
        )
    }

    fn groups(seed: &Seed) -> Vec<(&str, &str)> {
        seed.resource_groups
            .iter()
            .map(|g| (g.name.as_str(), g.location.as_str()))
            .collect()
    }

    fn clusters(seed: &Seed) -> Vec<(String, bool, bool)> {
        seed.managed_clusters
            .iter()
            .map(|c| {
                (
                    format!("{}/{}@{}", c.resource_group, c.name, c.location),
                    c.oidc_issuer,
                    c.workload_identity,
                )
            })
            .collect()
    }

    const CONFIG: &str = r#"
[resource_groups.rg-owned]

[clusters.a]
resource_group = "rg-aks"
name = "aks-a"

[clusters.b]
resource_group = "rg-aks"
name = "aks-b"
enable_workload_identity = false

[clusters.self]
issuer = "https://oidc.example.com/"
kube_context = "self"

[clusters.elsewhere]
resource_group = "rg-other"
name = "aks-other"
subscription_id = "dddddddd-0000-4000-8000-000000000001"

[identities.api]
resource_group = "rg-ids"
location = "northeurope"

[identities.owned]
resource_group = "rg-owned"

[identities.app]
kind = "application"

[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/data"

[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/RG-OWNED"

[[role_grants]]
identity = "api"
role = "Reader"
scope = "/subscriptions/dddddddd-0000-4000-8000-000000000001/resourceGroups/rg-far"

[[role_grants]]
identity = "api"
role = "Reader"
scope = "/subscriptions/bbbbbbbb-0000-4000-8000-000000000001"
"#;

    #[test]
    fn an_empty_sandbox_gets_every_group_and_cluster_the_config_expects() {
        let g = graph(&format!("{}{CONFIG}", header(Some("swedencentral"))));
        let seed = seed_for(&g, SUB, "s", &Existing::default());
        // Declared groups are wiform's to create; other subscriptions are not the sandbox's.
        assert_eq!(
            groups(&seed),
            [
                ("rg-ids", "northeurope"),
                ("rg-aks", "swedencentral"),
                ("rg-data", "swedencentral"),
            ]
        );
        assert_eq!(
            clusters(&seed),
            [
                ("rg-aks/aks-a@swedencentral".to_string(), true, false),
                ("rg-aks/aks-b@swedencentral".to_string(), true, true),
            ]
        );
        assert!(
            seed.resource_groups
                .iter()
                .all(|g| g.tags[PRELOAD_TAG] == "s")
        );
        assert!(seed.identities.is_empty() && seed.role_assignments.is_empty());
    }

    #[test]
    fn what_exists_is_left_alone() {
        let g = graph(&format!("{}{CONFIG}", header(Some("westeurope"))));
        let existing = Existing::new(["RG-IDS", "rg-aks"], [("RG-AKS", "AKS-A")]);
        let seed = seed_for(&g, SUB, "s", &existing);
        assert_eq!(groups(&seed), [("rg-data", "westeurope")]);
        assert_eq!(
            clusters(&seed),
            [("rg-aks/aks-b@westeurope".to_string(), true, true)]
        );
        let everything = Existing::new(
            ["rg-ids", "rg-aks", "rg-data"],
            [("rg-aks", "aks-a"), ("rg-aks", "aks-b")],
        );
        let seed = seed_for(&g, SUB, "s", &everything);
        assert!(seed.resource_groups.is_empty() && seed.managed_clusters.is_empty());
    }

    #[test]
    fn a_clusters_declared_group_is_added_with_it() {
        let g = graph(&format!(
            "{}[resource_groups.rg-aks]\n[clusters.a]\nresource_group = \"rg-aks\"\nname = \"aks\"\n",
            header(Some("westeurope"))
        ));
        let seed = seed_for(&g, SUB, "s", &Existing::default());
        assert_eq!(groups(&seed), [("rg-aks", "westeurope")]);
        assert_eq!(
            clusters(&seed),
            [("rg-aks/aks@westeurope".to_string(), true, false)]
        );
    }

    #[test]
    fn the_default_location_is_the_most_used_one() {
        let g = graph(&format!(
            "{}[identities.id-a]\nresource_group = \"rg-a\"\nlocation = \"eastus\"\n[identities.id-b]\nresource_group = \"rg-b\"\nlocation = \"westus\"\n[identities.id-c]\nresource_group = \"rg-c\"\nlocation = \"westus\"\n[clusters.k]\nresource_group = \"rg-k\"\nname = \"k\"\n",
            header(None)
        ));
        assert_eq!(default_location(&g), "westus");
        let seed = seed_for(&g, SUB, "s", &Existing::default());
        assert_eq!(seed.managed_clusters[0].location, "westus");
        assert_eq!(default_location(&Graph::default()), "westeurope");
    }

    #[test]
    fn preloaded_objects_are_described_in_one_line() {
        assert_eq!(Preloaded::default().describe(), None);
        let preloaded = Preloaded {
            resource_groups: vec!["rg-x".into()],
            clusters: vec!["rg-x/aks".into()],
        };
        assert_eq!(
            preloaded.describe().unwrap(),
            "sandbox: added resource group rg-x, AKS cluster rg-x/aks (first use)"
        );
    }
}
