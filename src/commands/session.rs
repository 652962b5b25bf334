//! What the commands that reach Azure share (plan, apply, drift, verify): the async runtime,
//! `--target`, connecting to Azure (or the sandbox) and the clusters, observing and diffing
//! once, Ctrl-C during apply, and how an error is printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::progress::Display;
use super::{Printer, Verbosity, load_config};
use crate::address::Address;
use crate::config::model::Config;
use crate::engine::diff::{self, ClusterFailure, Input, Observed};
use crate::engine::observe::{self, Reach};
use crate::engine::plan::Plan;
use crate::error::Explain;
use crate::exit::ExitStatus;
use crate::graph::{Graph, NodeId};
use crate::providers::azure::credential::{
    AuthMethod, CredentialError, CredentialSettings, Environment, credential,
};
use crate::providers::azure::{
    AzureClient, AzureError, AzureProvider, ClientOptions, Endpoints, EventSink,
};
use crate::providers::kube::KubeCluster;
use crate::sandbox_session::{self, SandboxError, SandboxSession};

/// Where Azure is and who wiform is there.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    /// Run against the sandbox whose state lives in this directory.
    pub sandbox: Option<PathBuf>,
    pub auth: AuthMethod,
    pub parallelism: usize,
}

/// Prints the error that stops a command (`error: …`, then `  hint: …`) and fails.
pub(crate) fn fail(printer: &Printer, message: &str, hint: Option<&str>) -> ExitStatus {
    printer.err(&format!("error: {message}\n"));
    if let Some(hint) = hint {
        printer.err(&format!("  hint: {hint}\n"));
    }
    ExitStatus::Failure
}

/// Prints an error that explains itself, and fails.
pub(crate) fn fail_with(printer: &Printer, error: &impl Explain) -> ExitStatus {
    fail(printer, &error.message(), error.hint().as_deref())
}

/// The runtime a command's async work runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The graph nodes `--target` names, or the addresses that do not exist with the closest ones.
pub(crate) fn resolve_targets(graph: &Graph, targets: &[String]) -> Result<Vec<NodeId>, String> {
    let addresses: BTreeMap<String, NodeId> = graph
        .node_ids()
        .map(|id| (graph.node(id).address.to_string(), id))
        .collect();
    let mut found = Vec::new();
    let mut unknown = Vec::new();
    for target in targets {
        match addresses.get(target.trim()) {
            Some(id) => found.push(*id),
            None => {
                let close =
                    crate::config::suggest::closest(target, addresses.keys().map(String::as_str));
                unknown.push(match close {
                    Some(c) => format!("`{target}` (did you mean `{c}`?)"),
                    None => format!("`{target}`"),
                });
            }
        }
    }
    if unknown.is_empty() {
        Ok(found)
    } else {
        Err(format!(
            "no resource has the address {} (`wiform graph --format json` lists them)",
            unknown.join(", ")
        ))
    }
}

/// Everything a command needs to reach Azure and the clusters: the provider and how to reach
/// each cluster. Holds the in-process sandbox, when there is one, for as long as it lives.
pub struct Connected {
    pub azure: AzureProvider,
    pub reach: BTreeMap<String, Reach>,
    pub sandbox: Option<SandboxSession>,
}

/// Why a command cannot reach Azure (or the sandbox).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The sandbox cannot be opened, does not fit the config, or cannot be preloaded.
    #[error(transparent)]
    Sandbox(SandboxError),
    /// `[azure].cloud` cannot be used.
    #[error("[azure].cloud: {0}")]
    Cloud(String),
    /// No credential can be set up (nothing has been asked of Entra yet).
    #[error(transparent)]
    Credential(CredentialError),
    /// The Azure client cannot be built (its HTTP client, the CA it trusts).
    #[error(transparent)]
    Client(AzureError),
}

impl Explain for ConnectError {
    fn message(&self) -> String {
        match self {
            ConnectError::Sandbox(e) => e.message(),
            ConnectError::Cloud(_) => self.to_string(),
            ConnectError::Credential(e) => e.message(),
            // The whole text, hint line included, with the hint again below it: what the CLI
            // has always printed for this error.
            ConnectError::Client(e) => e.to_string(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ConnectError::Sandbox(e) => e.hint(),
            ConnectError::Cloud(_) => None,
            ConnectError::Credential(_) => Some(
                "--sandbox runs against the built-in emulator without any Azure credential".into(),
            ),
            ConnectError::Client(e) => e.hint(),
        }
    }
}

/// Signs in and finds the clusters: against Azure, or (`--sandbox`) against the emulator,
/// preloaded with what the config references. Only endpoints, trusted CA and the credential's
/// source differ between the two.
pub async fn connect(
    printer: &Printer,
    config: &Config,
    graph: &Graph,
    config_path: &Path,
    settings: &AzureSettings,
    events: Option<EventSink>,
) -> Result<Connected, ConnectError> {
    let base_dir = config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut reach = observe::reach(config, base_dir);
    let (endpoints, credential_settings, sandbox) = match &settings.sandbox {
        Some(state_dir) => {
            let session = sandbox_session::open(state_dir)
                .await
                .map_err(ConnectError::Sandbox)?;
            for warning in &session.warnings {
                printer.err(&format!("warning: {warning}\n"));
            }
            session
                .check_config(config)
                .map_err(ConnectError::Sandbox)?;
            let preloaded = session
                .preload(&config.name.value, graph)
                .await
                .map_err(ConnectError::Sandbox)?;
            if let Some(text) = preloaded.describe()
                && printer.verbosity != Verbosity::Quiet
            {
                printer.err(&format!("{text}\n"));
            }
            // In the sandbox, AKS clusters are reached with the user credential ARM gives, and
            // any other cluster is the sandbox's standalone one (their contexts name real
            // clusters).
            let standalone = session
                .standalone_kubeconfig()
                .await
                .map_err(ConnectError::Sandbox)?;
            for (key, cluster) in config.clusters.iter() {
                let how = match (&cluster.resource_group, &cluster.name) {
                    (Some(rg), Some(name)) => Reach::AksUser {
                        subscription: cluster.subscription_id.as_ref().map_or_else(
                            || config.azure.subscription_id.value.clone(),
                            |s| s.value.clone(),
                        ),
                        resource_group: rg.value.clone(),
                        name: name.value.clone(),
                    },
                    _ => Reach::Kubeconfig(standalone.clone()),
                };
                reach.insert(key.value.clone(), how);
            }
            // `--auth` other than `auto` signs in as the client the environment names (the
            // sandbox's Reader, say) instead of the sandbox's Owner.
            let credential_settings = match settings.auth {
                AuthMethod::Auto => session.credential_settings(),
                method => CredentialSettings {
                    method,
                    tenant_id: config.azure.tenant_id.value.clone(),
                    endpoints: session.endpoints(),
                    env: Environment::from_process(),
                },
            };
            (session.endpoints(), credential_settings, Some(session))
        }
        None => {
            let endpoints = Endpoints::from_config(config.azure.cloud.as_ref().map(|c| &c.value))
                .map_err(ConnectError::Cloud)?;
            let credential_settings = CredentialSettings {
                method: settings.auth,
                tenant_id: config.azure.tenant_id.value.clone(),
                endpoints: endpoints.clone(),
                env: Environment::from_process(),
            };
            (endpoints, credential_settings, None)
        }
    };
    let token_source = credential(&credential_settings).map_err(ConnectError::Credential)?;
    let client = AzureClient::new(
        endpoints,
        token_source,
        ClientOptions {
            parallelism: settings.parallelism.max(1),
            ..ClientOptions::default()
        },
    )
    .map_err(ConnectError::Client)?;
    let client = match events {
        Some(sink) => client.with_events(sink),
        None => client,
    };
    Ok(Connected {
        azure: AzureProvider::new(client, config.azure.tenant_id.value.clone()),
        reach,
        sandbox,
    })
}

/// A plan with what it was made from: `apply` carries it out against the same observation and
/// cluster connections.
pub struct Planned {
    pub plan: Plan,
    pub observed: Observed,
    pub clusters: BTreeMap<String, Result<KubeCluster, ClusterFailure>>,
}

/// Observes and diffs: the plan for `graph` (limited to `targets` when given).
pub async fn make_plan(
    connected: &Connected,
    config: &Config,
    graph: &Graph,
    config_file: &str,
    targets: &[NodeId],
) -> Planned {
    let clusters = observe::connect(&connected.azure, &connected.reach).await;
    let observed = observe::observe(&connected.azure, &clusters, &config.name.value, graph).await;
    let plan = diff::plan(
        Input {
            stack: &config.name.value,
            config_file,
            graph,
            targets,
        },
        &observed,
    );
    Planned {
        plan,
        observed,
        clusters,
    }
}

/// The resources a command plans.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Targets<'a> {
    /// `--target`: each address must name a resource of the config. None: everything.
    Named(&'a [String]),
    /// A saved plan's targets: the resources of the config they still name (apply then
    /// compares the new plan with the saved one).
    Saved(&'a [Address]),
}

impl Targets<'_> {
    fn resolve(self, graph: &Graph) -> Result<Vec<NodeId>, String> {
        match self {
            Targets::Named(targets) => resolve_targets(graph, targets),
            Targets::Saved(targets) => Ok(graph
                .node_ids()
                .filter(|id| targets.contains(&graph.node(*id).address))
                .collect()),
        }
    }
}

/// Reads the config, connects, observes and diffs once, then runs `then` with the connection
/// still open (apply and verify need it): what `plan`, `apply`, `drift` and `verify` share.
/// `targets` limits the plan; `events` sees what the Azure client waits for (apply's progress).
/// An error is printed and comes back as the exit status.
pub(crate) fn with_plan<R>(
    printer: &Printer,
    file: &Path,
    azure: &AzureSettings,
    targets: Targets<'_>,
    events: Option<EventSink>,
    then: impl AsyncFnOnce(&Connected, &Config, &Graph, Planned) -> R,
) -> Result<R, ExitStatus> {
    let checked = load_config(printer, file).ok_or(ExitStatus::Failure)?;
    let config = checked.config.as_ref().ok_or(ExitStatus::Failure)?;
    let graph = Graph::build(config);
    let targets = targets
        .resolve(&graph)
        .map_err(|e| fail(printer, &e, None))?;
    let runtime = runtime().map_err(|e| fail(printer, &e, None))?;
    let outcome = runtime.block_on(async {
        let connected = connect(printer, config, &graph, file, azure, events).await?;
        let planned = make_plan(
            &connected,
            config,
            &graph,
            &file.display().to_string(),
            &targets,
        )
        .await;
        let outcome = then(&connected, config, &graph, planned).await;
        if let Some(session) = connected.sandbox {
            session.close().await;
        }
        Ok::<_, ConnectError>(outcome)
    });
    outcome.map_err(|e| fail_with(printer, &e))
}

/// Ctrl-C (or SIGTERM) once: stop starting changes and let those in flight finish; twice: abort.
pub(crate) fn watch_interrupts(stop: Arc<AtomicBool>, display: Arc<Display>) {
    tokio::spawn(async move {
        loop {
            stop_requested().await;
            if stop.swap(true, Ordering::SeqCst) {
                display.finish();
                eprintln!(
                    "\nAborted. Objects being written may be half-done; run apply again to converge."
                );
                std::process::exit(130);
            }
            display.message("\nInterrupt received: finishing the changes in flight, starting no more. Press Ctrl-C again to abort.");
        }
    });
}

/// Ctrl-C, or SIGTERM where there is one.
pub(crate) async fn stop_requested() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
