//! `wiform import`: identity.toml from what exists. Two sources: the live subscription and the
//! clusters named (`--resource-group`, `--cluster`, `--kube-context`, `--namespace`), read with
//! list calls only ([`read_live`], mapped by the pure [`crate::import::live`]); or
//! `--from-terraform FILE`, the output of `terraform show -json`, reading nothing from Azure.
//! The file goes to `-o` (never over an existing one without `--force`) or stdout; what the
//! import could not express and the next steps (for Terraform, the exact `terraform state rm`) go
//! to stderr.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::session::{AzureSettings, fail, runtime};
use super::{Printer, Verbosity};
use crate::config::{self, SourceFile, names};
use crate::error::Explain;
use crate::exit::ExitStatus;
use crate::import::live::{
    self, Found, FoundAssignment, FoundCluster, FoundClusterKind, FoundCredential, FoundIdentity,
    FoundServiceAccount,
};
use crate::import::{terraform, write};
use crate::providers::azure::credential::{
    AuthMethod, CredentialSettings, Environment, credential,
};
use crate::providers::azure::federated::CredentialParent;
use crate::providers::azure::{AzureClient, AzureError, AzureProvider, ClientOptions, Endpoints};
use crate::providers::kube::{ClusterApi as _, KubeCluster, KubeconfigSource};
use crate::sandbox_session::{self, SandboxSession};

/// The stack name when `--name` is not given.
pub const DEFAULT_STACK: &str = "imported";

#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// What to import from.
    pub source: ImportSource,
    /// Where to write identity.toml; stdout when `None`.
    pub out: Option<PathBuf>,
    /// The stack name; [`DEFAULT_STACK`] when `None`.
    pub name: Option<String>,
    /// Replace `out` when it exists.
    pub force: bool,
}

/// Where an import reads what exists.
#[derive(Debug, Clone)]
pub enum ImportSource {
    /// The output of `terraform show -json`.
    Terraform(PathBuf),
    /// The subscription and the clusters named.
    Live(LiveSettings),
}

/// What `wiform import` without `--from-terraform` reads.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// The subscription (not used with `--sandbox`, which has one: a warning when it differs).
    pub subscription_id: Option<String>,
    /// The tenant (likewise).
    pub tenant_id: Option<String>,
    /// Only the identities of these resource groups; every one when empty.
    pub resource_groups: Vec<String>,
    /// AKS clusters, as (resource group, name).
    pub clusters: Vec<(String, String)>,
    /// Kubeconfig contexts of other clusters.
    pub kube_contexts: Vec<String>,
    /// Only the service accounts of these namespaces; every namespace when empty.
    pub namespaces: Vec<String>,
    pub azure: AzureSettings,
}

pub fn run(printer: &Printer, settings: &ImportSettings) -> ExitStatus {
    let stack = settings.name.as_deref().unwrap_or(DEFAULT_STACK);
    if let Err(reason) = names::dns1123_label(stack) {
        return fail(
            printer,
            &format!("--name {stack:?} is not a stack name: {reason}"),
            Some(
                "a stack name has 1 to 63 lowercase letters, digits and '-', starting and ending \
                 with a letter or digit, e.g. --name orders-platform",
            ),
        );
    }
    let input = match &settings.source {
        ImportSource::Terraform(input) => input,
        ImportSource::Live(live) => return run_live(printer, settings, live, stack),
    };
    let text = match std::fs::read(input) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                return fail(
                    printer,
                    &format!("cannot import {}: it is not UTF-8 text", input.display()),
                    Some("give the output of `terraform show -json > state.json`, unchanged"),
                );
            }
        },
        Err(e) => {
            return fail(
                printer,
                &format!("cannot read {}: {e}", input.display()),
                Some("export the state first: `terraform show -json > state.json`"),
            );
        }
    };
    let source = input.display().to_string();
    let import = match terraform::read(&text, stack, &source) {
        Ok(import) => import,
        Err(error) => {
            return fail(
                printer,
                &format!("cannot import {}: {}", input.display(), error.message()),
                error.hint().as_deref(),
            );
        }
    };
    if import.stack.identities.is_empty() {
        return fail(
            printer,
            &format!(
                "found no workload identity in {}: nothing to import",
                input.display()
            ),
            Some(
                "wiform imports the azurerm_user_assigned_identity and azuread_application \
                 resources that have federated credentials in the state \
                 (azurerm_federated_identity_credential, \
                 azuread_application_federated_identity_credential), with their role \
                 assignments and service accounts",
            ),
        );
    }
    let written = write::write(&import.stack);
    let Some((shown, errors)) = output(printer, settings, &written) else {
        return ExitStatus::Failure;
    };
    if printer.verbosity != Verbosity::Quiet {
        printer.err(&report(
            &source,
            settings,
            &shown,
            &written,
            &import.taken,
            errors,
        ));
    }
    ExitStatus::Success
}

/// Validates the file and writes it to `-o` or stdout: the name it is shown as and how many
/// errors `wiform validate` finds in it, or `None` (printed) when it cannot be written.
fn output(
    printer: &Printer,
    settings: &ImportSettings,
    written: &write::Written,
) -> Option<(String, usize)> {
    let shown = settings
        .out
        .as_ref()
        .map_or_else(|| "identity.toml".to_string(), |p| p.display().to_string());
    let checked = config::check(SourceFile {
        name: shown.clone(),
        text: written.text.clone(),
    });
    match &settings.out {
        Some(out) => {
            save(printer, out, &written.text, settings.force).ok()?;
        }
        None => printer.out(&written.text),
    }
    Some((shown, checked.diagnostics.errors()))
}

/// Writes `text` to `out`: a new file, or (`force`) over the old one.
fn save(printer: &Printer, out: &Path, text: &str, force: bool) -> Result<(), ExitStatus> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let result = options
        .open(out)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    match result {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(fail(
            printer,
            &format!("{} exists: not overwritten", out.display()),
            Some("pass --force to replace it, or choose another file with -o"),
        )),
        Err(e) => Err(fail(
            printer,
            &format!("cannot write {}: {e}", out.display()),
            None,
        )),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What both imports say first on stderr: what was imported (`clusters` says where), the stack
/// name to choose, the notes, and what keeps the file from validating.
fn summary(
    source: &str,
    settings: &ImportSettings,
    shown: &str,
    written: &write::Written,
    errors: usize,
    clusters: &str,
) -> String {
    let c = written.counts;
    let into = match &settings.out {
        Some(_) => format!(" into {shown}"),
        None => String::new(),
    };
    let mut text = format!(
        "Imported {}{into} from {source}: {}, {}, {}, {}{clusters}.\n",
        plural(c.objects(), "object", "objects"),
        plural(c.identities, "identity", "identities"),
        plural(c.service_accounts, "service account", "service accounts"),
        plural(c.federations, "federation", "federations"),
        plural(c.role_grants, "role grant", "role grants"),
    );
    if settings.name.is_none() {
        text.push_str(&format!(
            "The stack is named {DEFAULT_STACK:?}: choose its name with --name before you apply \
             (wiform records it on every object it adopts).\n"
        ));
    }
    if !written.notes.is_empty() {
        text.push_str(&format!(
            "\n{} (also at the end of the file):\n",
            plural(written.notes.len(), "note", "notes")
        ));
        for note in &written.notes {
            text.push_str(&format!("  - {note}\n"));
        }
    }
    if !written.placeholders.is_empty() {
        text.push_str(&format!(
            "\nwarning: not found in {source}: {}. The file holds placeholders that `wiform \
             validate` rejects until you replace them.\n",
            written.placeholders.join(" and ")
        ));
    } else if errors > 0 {
        text.push_str(&format!(
            "\nwarning: the file does not validate ({}): run `wiform validate -f {shown}`.\n",
            plural(errors, "error", "errors")
        ));
    }
    text
}

/// The file the next steps name, and how the first step says to look at it.
fn next_file(settings: &ImportSettings, shown: &str) -> (String, String) {
    let file = match &settings.out {
        Some(_) => shown.to_string(),
        None => "identity.toml".to_string(),
    };
    let save = if settings.out.is_none() {
        format!("Save the file as {file}, review it")
    } else {
        format!("Review {file}")
    };
    (file, save)
}

/// What the import says on stderr: counts, notes, placeholders, the next steps and the
/// `terraform state rm` of what wiform now declares.
fn report(
    source: &str,
    settings: &ImportSettings,
    shown: &str,
    written: &write::Written,
    taken: &[String],
    errors: usize,
) -> String {
    let clusters = match written.counts.clusters {
        0 => String::new(),
        n => format!(
            " (on {}, which stay{} in Terraform)",
            plural(n, "cluster", "clusters"),
            if n == 1 { "s" } else { "" }
        ),
    };
    let mut text = summary(source, settings, shown, written, errors, &clusters);
    let (file, save) = next_file(settings, shown);
    let command = write::state_rm_command(taken).replace('\n', "\n       ");
    text.push_str(&format!(
        "\nNext:\n  1. {save}, then run `wiform plan -f {file}`: it should only adopt (0 to add, \
         0 to change, 0 to replace, 0 to destroy).\n  2. `wiform apply -f {file}` adopts them; \
         nothing is recreated.\n  3. Then make Terraform forget what wiform now manages, so that \
         the two tools never fight:\n\n       {command}\n\n     and remove those resources \
         from your Terraform code (delete their blocks, or turn them into\n     `removed` \
         blocks), or the next `terraform apply` creates them again.\n"
    ));
    text
}

/// A failure of the live import: its message and hint.
struct Failed {
    message: String,
    hint: Option<String>,
}

impl Failed {
    fn new(message: impl Into<String>, hint: Option<&str>) -> Self {
        Failed {
            message: message.into(),
            hint: hint.map(str::to_string),
        }
    }

    fn of(error: &impl Explain) -> Self {
        Failed {
            message: error.message(),
            hint: error.hint(),
        }
    }
}

/// `wiform import` of the live subscription and clusters.
fn run_live(
    printer: &Printer,
    settings: &ImportSettings,
    live: &LiveSettings,
    stack: &str,
) -> ExitStatus {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => return fail(printer, &e, None),
    };
    let found = match runtime.block_on(read_live(printer, live)) {
        Ok(found) => found,
        Err(failed) => return fail(printer, &failed.message, failed.hint.as_deref()),
    };
    let imported = live::map(&found, stack);
    if imported.identities.is_empty() {
        let groups = match live.resource_groups.as_slice() {
            [] => String::new(),
            groups => format!(" (resource groups {})", groups.join(", ")),
        };
        return fail(
            printer,
            &format!(
                "found no workload identity in {}{groups}: nothing to import",
                found.source
            ),
            Some(
                "wiform imports the user-assigned managed identities that have federated \
                 credentials, with their role assignments and the service accounts (of the \
                 clusters named with --cluster or --kube-context) annotated with their client id",
            ),
        );
    }
    let written = write::write(&imported);
    let Some((shown, errors)) = output(printer, settings, &written) else {
        return ExitStatus::Failure;
    };
    if printer.verbosity != Verbosity::Quiet {
        printer.err(&live_report(
            &found.source,
            settings,
            &shown,
            &written,
            errors,
        ));
    }
    ExitStatus::Success
}

/// Signs in (to Azure, or the sandbox) and reads with list calls: the subscription's managed
/// identities, the credentials of each (in the resource groups asked for), the role assignments
/// of the subscription, the clusters named and their annotated service accounts.
async fn read_live(printer: &Printer, live: &LiveSettings) -> Result<Found, Failed> {
    let mut sandbox = None;
    let (endpoints, credential_settings, subscription, tenant) = match &live.azure.sandbox {
        Some(dir) => {
            let session = sandbox_session::open(dir)
                .await
                .map_err(|e| Failed::of(&e))?;
            for warning in &session.warnings {
                printer.err(&format!("warning: {warning}\n"));
            }
            // The sandbox emulates one subscription and one tenant: values given (perhaps by
            // the environment, for other tools) are not used.
            for (flag, given, own) in [
                (
                    "--subscription-id",
                    &live.subscription_id,
                    session.subscription_id(),
                ),
                ("--tenant-id", &live.tenant_id, session.tenant_id()),
            ] {
                if let Some(given) = given.as_deref()
                    && !given.eq_ignore_ascii_case(own)
                {
                    printer.err(&format!(
                        "warning: {flag} {given} is not used: --sandbox reads the sandbox's \
                         ({own})\n"
                    ));
                }
            }
            let credential_settings = match live.azure.auth {
                AuthMethod::Auto => session.credential_settings(),
                method => CredentialSettings {
                    method,
                    tenant_id: session.tenant_id().to_string(),
                    endpoints: session.endpoints(),
                    env: Environment::from_process(),
                },
            };
            let parts = (
                session.endpoints(),
                credential_settings,
                session.subscription_id().to_string(),
                session.tenant_id().to_string(),
            );
            sandbox = Some(session);
            parts
        }
        None => {
            let (Some(subscription), Some(tenant)) = (&live.subscription_id, &live.tenant_id)
            else {
                return Err(Failed::new(
                    "wiform import needs the subscription and the tenant to read",
                    Some(
                        "pass --subscription-id and --tenant-id (or set AZURE_SUBSCRIPTION_ID \
                         and AZURE_TENANT_ID), or --sandbox",
                    ),
                ));
            };
            let endpoints = Endpoints::from_config(None).map_err(|e| Failed::new(e, None))?;
            let settings = CredentialSettings {
                method: live.azure.auth,
                tenant_id: tenant.clone(),
                endpoints: endpoints.clone(),
                env: Environment::from_process(),
            };
            (endpoints, settings, subscription.clone(), tenant.clone())
        }
    };
    let found = read_with(
        live,
        &sandbox,
        endpoints,
        &credential_settings,
        subscription,
        tenant,
    )
    .await;
    if let Some(session) = sandbox {
        session.close().await;
    }
    found
}

async fn read_with(
    live: &LiveSettings,
    sandbox: &Option<SandboxSession>,
    endpoints: Endpoints,
    credential_settings: &CredentialSettings,
    subscription: String,
    tenant: String,
) -> Result<Found, Failed> {
    let token_source = credential(credential_settings).map_err(|e| Failed::of(&e))?;
    let client = AzureClient::new(
        endpoints,
        token_source,
        ClientOptions {
            parallelism: live.azure.parallelism.max(1),
            ..ClientOptions::default()
        },
    )
    .map_err(|e| Failed::new(e.to_string(), e.hint().as_deref()))?;
    let azure = AzureProvider::new(client, tenant.clone());
    let azure_error = |e: AzureError| Failed::of(&e);

    let (identities, assignments, aks) = tokio::try_join!(
        async {
            azure
                .list_subscription_identities(&subscription)
                .await
                .map_err(azure_error)
        },
        async {
            azure
                .list_role_assignments(&subscription)
                .await
                .map_err(azure_error)
        },
        async {
            if live.clusters.is_empty() {
                return Ok(Vec::new());
            }
            azure
                .list_clusters(&subscription)
                .await
                .map_err(azure_error)
        },
    )?;
    let wanted = |rg: &str| {
        live.resource_groups.is_empty()
            || live
                .resource_groups
                .iter()
                .any(|g| g.eq_ignore_ascii_case(rg))
    };
    let identities: Vec<_> = identities
        .into_iter()
        .filter(|i| wanted(&i.resource_group))
        .collect();
    let credentials = futures::future::try_join_all(
        identities
            .iter()
            .map(|i| azure.list_identity_credentials(&i.id)),
    )
    .await
    .map_err(azure_error)?;

    // The clusters, in command-line order: how to reach each, and its issuer.
    let mut clusters = Vec::new();
    let mut sources = Vec::new();
    for (resource_group, name) in &live.clusters {
        let Some(cluster) = aks
            .iter()
            .find(|c| c.is(&subscription, resource_group, name))
        else {
            return Err(Failed::new(
                format!("no AKS cluster {resource_group}/{name} in subscription {subscription}"),
                Some("--cluster takes RESOURCE_GROUP/NAME, as `az aks list -o table` shows them"),
            ));
        };
        let kubeconfig = azure.user_kubeconfig(cluster).await.map_err(azure_error)?;
        sources.push((
            format!("{resource_group}/{name}"),
            kubeconfig.into_source(None),
        ));
        clusters.push(FoundCluster {
            kind: FoundClusterKind::Aks {
                subscription_id: cluster.subscription_id.clone(),
                resource_group: resource_group.clone(),
                name: name.clone(),
                id: cluster.id.clone(),
                workload_identity_enabled: cluster.workload_identity_enabled,
            },
            issuer: cluster.issuer_url.clone(),
        });
    }
    for context in &live.kube_contexts {
        // In the sandbox, every cluster that is not AKS is its standalone one.
        let source = match sandbox {
            Some(session) => session
                .standalone_kubeconfig()
                .await
                .map_err(|e| Failed::of(&e))?,
            None => KubeconfigSource::File {
                path: None,
                context: Some(context.clone()),
            },
        };
        sources.push((context.clone(), source));
        clusters.push(FoundCluster {
            kind: FoundClusterKind::Context {
                kube_context: context.clone(),
            },
            issuer: None,
        });
    }
    let mut service_accounts = Vec::new();
    for (index, (label, source)) in sources.iter().enumerate() {
        let cluster = KubeCluster::connect(label, source)
            .await
            .map_err(|e| Failed::of(&e))?;
        if clusters[index].issuer.is_none() {
            let discovery = cluster.issuer().await.map_err(|e| Failed::of(&e))?;
            clusters[index].issuer = Some(discovery.issuer);
        }
        for account in annotated_accounts(&cluster, &live.namespaces).await? {
            service_accounts.push(FoundServiceAccount {
                cluster: index,
                ..account
            });
        }
    }

    // App registrations with federated credentials (none of them when `--resource-group` limits
    // the import: they are in no resource group). Those a wiform stack owns are its.
    let applications = if live.resource_groups.is_empty() {
        azure
            .list_applications()
            .await
            .map_err(azure_error)?
            .into_iter()
            .filter(|a| a.owner == crate::ownership::Owner::Unowned)
            .collect()
    } else {
        Vec::new()
    };
    let application_credentials = futures::future::try_join_all(
        applications
            .iter()
            .map(|a| azure.list_application_credentials(&a.object_id)),
    )
    .await
    .map_err(azure_error)?;

    let mut found_credentials = Vec::new();
    for list in credentials.into_iter().chain(application_credentials) {
        for c in list {
            let identity_id = match &c.parent {
                CredentialParent::ManagedIdentity(id) | CredentialParent::Application(id) => id,
            };
            found_credentials.push(FoundCredential {
                identity_id: identity_id.clone(),
                id: c.id.clone(),
                name: c.name.clone(),
                issuer: c.issuer.clone(),
                subject: c.subject.clone(),
                audiences: c.audiences.clone(),
            });
        }
    }
    Ok(Found {
        source: match sandbox {
            Some(_) => format!("the sandbox's subscription {subscription}"),
            None => format!("subscription {subscription}"),
        },
        tenant_id: tenant,
        resource_groups: live.resource_groups.clone(),
        identities: identities
            .iter()
            .map(|i| FoundIdentity {
                id: i.id.clone(),
                name: i.name.clone(),
                resource_group: i.resource_group.clone(),
                location: i.location.clone(),
                tags: i.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                client_id: i.client_id.clone(),
                principal_id: i.principal_id.clone(),
                application: false,
            })
            .chain(applications.iter().map(|a| FoundIdentity {
                id: a.object_id.clone(),
                name: a.display_name.clone(),
                client_id: a.app_id.clone(),
                principal_id: a.service_principal_id.clone().unwrap_or_default(),
                application: true,
                ..FoundIdentity::default()
            }))
            .collect(),
        credentials: found_credentials,
        assignments: assignments
            .into_iter()
            .map(|a| FoundAssignment {
                id: a.id,
                scope: a.scope,
                role_definition_id: a.role_definition_id,
                principal_id: a.principal_id,
                condition: a.condition,
            })
            .collect(),
        clusters,
        service_accounts,
        subscription_id: subscription,
    })
}

/// The service accounts of `cluster` annotated with a client id: one list across namespaces,
/// or one per namespace asked for.
async fn annotated_accounts(
    cluster: &KubeCluster,
    namespaces: &[String],
) -> Result<Vec<FoundServiceAccount>, Failed> {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use kube::api::{Api, ListParams};
    let mut items = Vec::new();
    let lists: Vec<Api<ServiceAccount>> = if namespaces.is_empty() {
        vec![Api::all(cluster.client().clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(cluster.client().clone(), ns))
            .collect()
    };
    for api in lists {
        let list = api.list(&ListParams::default()).await.map_err(|e| {
            Failed::new(
                format!(
                    "cannot list the service accounts of cluster {} ({}): {e}",
                    cluster.name(),
                    cluster.server()
                ),
                Some("the credentials used need `list` on serviceaccounts"),
            )
        })?;
        items.extend(list.items);
    }
    Ok(items
        .into_iter()
        .filter_map(|sa| {
            let annotations = sa.metadata.annotations.unwrap_or_default();
            annotations.get(live::CLIENT_ID_ANNOTATION)?;
            Some(FoundServiceAccount {
                cluster: 0,
                namespace: sa.metadata.namespace.unwrap_or_default(),
                name: sa.metadata.name.unwrap_or_default(),
                annotations: annotations.into_iter().collect(),
                labels: sa.metadata.labels.unwrap_or_default().into_iter().collect(),
            })
        })
        .collect())
}

/// What the live import says on stderr: counts, notes, placeholders, the next steps.
fn live_report(
    source: &str,
    settings: &ImportSettings,
    shown: &str,
    written: &write::Written,
    errors: usize,
) -> String {
    let clusters = match written.counts.clusters {
        0 => String::new(),
        n => format!(" (on {})", plural(n, "cluster", "clusters")),
    };
    let mut text = summary(source, settings, shown, written, errors, &clusters);
    let (file, save) = next_file(settings, shown);
    text.push_str(&format!(
        "\nNext:\n  1. {save}, then run `wiform plan -f {file}`: it should only adopt (0 to add, \
         0 to change, 0 to replace, 0 to destroy).\n  2. `wiform apply -f {file}` adopts them; \
         nothing is recreated, and the workloads keep their tokens.\n"
    ));
    text
}
