//! Command-line parsing (clap). Everything here turns into plain settings before the commands
//! run; no clap type leaves this module.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::apply::ApplySettings;
use crate::commands::drift::DriftSettings;
use crate::commands::import::{ImportSettings, ImportSource, LiveSettings};
use crate::commands::plan::PlanSettings;
use crate::commands::session::AzureSettings;
use crate::commands::verify::VerifySettings;
use crate::commands::{self, GraphFormat, PlanFormat, Printer, Verbosity};
use crate::providers::azure::credential::AuthMethod;

#[derive(Debug, Parser)]
#[command(
    name = "wiform",
    version,
    about = "Declarative Azure workload identity for Kubernetes",
    long_about = "wiform reads identity.toml (clusters, identities, service accounts, federations, role grants), checks it, builds its dependency graph, and plans the changes that make Azure and Kubernetes match it (--sandbox: against the built-in emulator).",
    propagate_version = true
)]
pub struct Cli {
    /// When to use colours.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    color: ColorChoice,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more about what wiform does.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check identity.toml offline: every problem at once, with file:line:col and a hint.
    Validate(ConfigArg),
    /// Observe Azure and every cluster, and show what apply would change.
    Plan(PlanArgs),
    /// Make Azure and every cluster match identity.toml: plan, confirm, apply.
    Apply(ApplyArgs),
    /// Observe like plan and change nothing: what changed outside wiform (exit 2), what only
    /// awaits apply (exit 3).
    ///
    /// Exit 0 in sync; 2 drift found (whatever else); 3 only config changes pending; 1 on error,
    /// or when some scope could not be read.
    Drift(DriftArgs),
    /// For each service account: mint its token and exchange it at Entra as its workload would,
    /// and name the step that fails and why (exit 0 all OK, 1 otherwise).
    Verify(VerifyArgs),
    /// Print the dependency graph of the resources identity.toml declares.
    Graph {
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
        format: GraphFormatArg,
    },
    /// Write identity.toml from what already exists: the live subscription and clusters, or a
    /// Terraform state (`--from-terraform`).
    ///
    /// Live (the default): reads, with list calls only, the user-assigned identities that have
    /// federated credentials (in the --resource-groups, or the whole subscription), their
    /// credentials and role assignments, and the service accounts annotated with
    /// `azure.workload.identity/client-id` on the clusters named (--cluster, --kube-context).
    /// A credential that trusts such an account of its identity becomes a service account entry;
    /// any other a federation.
    ///
    /// --from-terraform reads nothing from Azure, and prints the `terraform state rm` of exactly
    /// the resources wiform takes over.
    ///
    /// Either way it prints what could not be expressed and the next steps (plan: only
    /// adoptions; apply).
    Import(ImportArgs),
    /// Run the built-in emulator of ARM, Microsoft Graph and the Entra token endpoint.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
}

#[derive(Debug, Args)]
struct ImportArgs {
    /// Import the output of `terraform show -json` (the current state, not a plan) instead of
    /// reading Azure.
    #[arg(long, value_name = "FILE", conflicts_with_all = LIVE_ONLY)]
    from_terraform: Option<PathBuf>,
    /// The subscription to read (default: $AZURE_SUBSCRIPTION_ID; with --sandbox, the
    /// sandbox's).
    #[arg(
        long,
        value_name = "GUID",
        env = "AZURE_SUBSCRIPTION_ID",
        hide_env_values = true
    )]
    subscription_id: Option<String>,
    /// The Entra tenant (default: $AZURE_TENANT_ID; with --sandbox, the sandbox's).
    #[arg(
        long,
        value_name = "GUID",
        env = "AZURE_TENANT_ID",
        hide_env_values = true
    )]
    tenant_id: Option<String>,
    /// Import only the identities of this resource group (repeatable; default: every group).
    #[arg(long = "resource-group", value_name = "RG")]
    resource_groups: Vec<String>,
    /// An AKS cluster whose annotated service accounts to import, as RESOURCE_GROUP/NAME
    /// (repeatable); its issuer is read from ARM.
    #[arg(long = "cluster", value_name = "AKS_RG/NAME", value_parser = parse_aks)]
    clusters: Vec<(String, String)>,
    /// A kubeconfig context of another cluster whose annotated service accounts to import
    /// (repeatable); its issuer is read from the API server's OIDC discovery document.
    #[arg(long = "kube-context", value_name = "CTX")]
    kube_contexts: Vec<String>,
    /// Read service accounts only in this namespace (repeatable; default: every namespace).
    #[arg(long = "namespace", value_name = "NS")]
    namespaces: Vec<String>,
    #[command(flatten)]
    azure: AzureArgs,
    /// Write identity.toml to FILE (default: stdout). An existing file is kept unless --force.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    out: Option<PathBuf>,
    /// The stack name, recorded on every object wiform adopts (default: imported).
    #[arg(long, value_name = "STACK")]
    name: Option<String>,
    /// Replace the -o file when it exists.
    #[arg(long, requires = "out")]
    force: bool,
}

/// The flags of the live import, which --from-terraform does not take (the subscription and
/// tenant not among them: the environment may set them for other tools).
const LIVE_ONLY: [&str; 5] = [
    "resource_groups",
    "clusters",
    "kube_contexts",
    "namespaces",
    "sandbox",
];

fn parse_aks(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((rg, name)) if !rg.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((rg.to_string(), name.to_string()))
        }
        _ => Err(format!(
            "{text:?} is not RESOURCE_GROUP/NAME (e.g. rg-platform/aks-prod)"
        )),
    }
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Serve the emulator over HTTPS on 127.0.0.1 until Ctrl-C.
    Serve {
        #[command(flatten)]
        state: SandboxStateArg,
        /// Port to listen on (0: any free port).
        #[arg(long, default_value_t = 8443)]
        port: u16,
        /// Faults to switch on, from a TOML or JSON file (flags below override it).
        #[arg(long, value_name = "FILE")]
        faults: Option<PathBuf>,
        /// Milliseconds added to every answer.
        #[arg(long, value_name = "MS")]
        latency_ms: Option<u64>,
        /// Random extra latency, 0..=MS.
        #[arg(long, value_name = "MS")]
        jitter_ms: Option<u64>,
        /// Enforce ARM's request limits (429 + Retry-After).
        #[arg(long)]
        throttle: bool,
        /// Enforce the Managed Identity provider's lower limits too.
        #[arg(long)]
        msi_throttle: bool,
        /// Scale every rate limit (10 = ten times the real limits).
        #[arg(long, value_name = "FACTOR")]
        throttle_scale: Option<f64>,
        /// New identities stay invisible to role assignments and credentials this long.
        #[arg(long, value_name = "MS")]
        replication_delay_ms: Option<u64>,
        /// Fraction of requests answered 500/503.
        #[arg(long, value_name = "FRACTION")]
        error_rate: Option<f64>,
        /// Fraction of requests whose connection is dropped.
        #[arg(long, value_name = "FRACTION")]
        drop_rate: Option<f64>,
        /// Polls a long-running operation stays in progress.
        #[arg(long, value_name = "N")]
        lro_polls: Option<u32>,
        /// Trust this CA (PEM) when fetching OIDC issuers' discovery documents.
        #[arg(long, value_name = "FILE")]
        trust_ca: Vec<PathBuf>,
    },
    /// Empty the sandbox's state (its clients and CA are kept).
    Reset {
        #[command(flatten)]
        state: SandboxStateArg,
    },
    /// Preload objects (resource groups, identities, credentials, role assignments, apps).
    Seed {
        #[command(flatten)]
        state: SandboxStateArg,
        /// Seed file (TOML, or JSON by extension).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    azure: AzureArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormatArg::Human)]
    format: PlanFormatArg,
    /// Also save the plan (JSON, with a fingerprint of what was observed) for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Plan only this resource and what it depends on (repeatable), e.g.
    /// `identity.orders-api` or `service_account.prod/orders/orders-api`.
    #[arg(long, value_name = "ADDRESS")]
    target: Vec<String>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
}

#[derive(Debug, Args)]
struct DriftArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    azure: AzureArgs,
    /// Output format (`markdown` is written for `$GITHUB_STEP_SUMMARY`).
    #[arg(long, value_enum, default_value_t = PlanFormatArg::Human)]
    format: PlanFormatArg,
    /// Also write a JUnit XML report: each drifted resource is a failed test case.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Check only this resource and what it depends on (repeatable).
    #[arg(long, value_name = "ADDRESS")]
    target: Vec<String>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    azure: AzureArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormatArg::Human)]
    format: PlanFormatArg,
    /// The scope of the token to ask Entra for.
    #[arg(long, default_value = crate::commands::verify::DEFAULT_SCOPE)]
    scope: String,
    /// Verify only this service account (repeatable), e.g. `service_account.prod/orders/api`.
    #[arg(long, value_name = "ADDRESS")]
    target: Vec<String>,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    /// A plan saved with `wiform plan --out FILE`: apply exactly it (refused when stale).
    #[arg(value_name = "PLANFILE")]
    plan_file: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    azure: AzureArgs,
    /// Do not ask for confirmation (CI).
    #[arg(long)]
    auto_approve: bool,
}

/// Where Azure is and how to sign in.
#[derive(Debug, Args)]
struct AzureArgs {
    /// Run against the built-in emulator (state in --sandbox-dir), preloaded with the clusters,
    /// resource groups and scopes the config references.
    #[arg(long)]
    sandbox: bool,
    /// The sandbox's state directory.
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".wiform",
        requires = "sandbox"
    )]
    sandbox_dir: PathBuf,
    /// Which credential to use; `auto` tries environment, workload identity, managed identity,
    /// then the Azure CLI.
    #[arg(long, value_name = "METHOD", default_value = "auto", value_parser = parse_auth)]
    auth: AuthMethod,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    parallelism: u16,
}

fn parse_auth(text: &str) -> Result<AuthMethod, String> {
    text.parse()
}

impl AzureArgs {
    fn settings(&self) -> AzureSettings {
        AzureSettings {
            sandbox: self.sandbox.then(|| self.sandbox_dir.clone()),
            auth: self.auth,
            parallelism: usize::from(self.parallelism),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PlanFormatArg {
    /// Text for people.
    Human,
    /// JSON (plan: schemas/plan.schema.json; drift: schemas/drift.schema.json).
    Json,
    /// Markdown for a pull request comment or a CI job summary.
    Markdown,
}

impl From<PlanFormatArg> for PlanFormat {
    fn from(format: PlanFormatArg) -> Self {
        match format {
            PlanFormatArg::Human => PlanFormat::Human,
            PlanFormatArg::Json => PlanFormat::Json,
            PlanFormatArg::Markdown => PlanFormat::Markdown,
        }
    }
}

#[derive(Debug, Args)]
struct SandboxStateArg {
    /// Directory of the sandbox's state, CA and keys.
    #[arg(long, value_name = "DIR", default_value = ".wiform")]
    state_dir: PathBuf,
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The config file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        default_value = "identity.toml"
    )]
    file: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormatArg {
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
    /// JSON: nodes, edges and the apply order.
    Json,
}

/// Parses the command line, runs the command, and maps the outcome to an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = match (cli.quiet, cli.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    };
    commands::init_logging(verbosity, color);
    let printer = Printer::new(color, verbosity);
    let status = match cli.command {
        Command::Validate(config) => commands::validate::run(&printer, &config.file),
        Command::Graph { config, format } => {
            let format = match format {
                GraphFormatArg::Dot => GraphFormat::Dot,
                GraphFormatArg::Json => GraphFormat::Json,
            };
            commands::graph::run(&printer, &config.file, format)
        }
        Command::Plan(args) => commands::plan::run(
            &printer,
            &PlanSettings {
                file: args.config.file,
                azure: args.azure.settings(),
                format: args.format.into(),
                out: args.out,
                targets: args.target,
                detailed_exitcode: args.detailed_exitcode,
            },
        ),
        Command::Apply(args) => commands::apply::run(
            &printer,
            &ApplySettings {
                file: args.config.file,
                plan_file: args.plan_file,
                plain_progress: false,
                azure: args.azure.settings(),
                auto_approve: args.auto_approve,
            },
        ),
        Command::Drift(args) => commands::drift::run(
            &printer,
            &DriftSettings {
                file: args.config.file,
                azure: args.azure.settings(),
                format: args.format.into(),
                junit: args.junit,
                targets: args.target,
            },
        ),
        Command::Verify(args) => commands::verify::run(
            &printer,
            &VerifySettings {
                file: args.config.file,
                azure: args.azure.settings(),
                format: args.format.into(),
                scope: args.scope,
                targets: args.target,
            },
        ),
        Command::Import(args) => commands::import::run(
            &printer,
            &ImportSettings {
                source: match args.from_terraform {
                    Some(file) => ImportSource::Terraform(file),
                    None => ImportSource::Live(LiveSettings {
                        subscription_id: args.subscription_id,
                        tenant_id: args.tenant_id,
                        resource_groups: args.resource_groups,
                        clusters: args.clusters,
                        kube_contexts: args.kube_contexts,
                        namespaces: args.namespaces,
                        azure: args.azure.settings(),
                    }),
                },
                out: args.out,
                name: args.name,
                force: args.force,
            },
        ),
        Command::Sandbox(command) => run_sandbox(&printer, command),
    };
    status.into()
}

fn run_sandbox(printer: &Printer, command: SandboxCommand) -> crate::exit::ExitStatus {
    use commands::sandbox;
    match command {
        SandboxCommand::Serve {
            state,
            port,
            faults,
            latency_ms,
            jitter_ms,
            throttle,
            msi_throttle,
            throttle_scale,
            replication_delay_ms,
            error_rate,
            drop_rate,
            lro_polls,
            trust_ca,
        } => {
            let mut base = match faults.as_deref().map(sandbox::read_faults).transpose() {
                Ok(f) => f.unwrap_or_default(),
                Err(e) => {
                    printer.err(&format!("error: {e}\n"));
                    return crate::exit::ExitStatus::Failure;
                }
            };
            base.latency_ms = latency_ms.unwrap_or(base.latency_ms);
            base.jitter_ms = jitter_ms.unwrap_or(base.jitter_ms);
            base.throttle |= throttle;
            base.msi_throttle |= msi_throttle;
            base.throttle_scale = throttle_scale.unwrap_or(base.throttle_scale);
            base.replication_delay_ms = replication_delay_ms.unwrap_or(base.replication_delay_ms);
            base.error_rate = error_rate.unwrap_or(base.error_rate);
            base.drop_rate = drop_rate.unwrap_or(base.drop_rate);
            base.lro_polls = lro_polls.unwrap_or(base.lro_polls);
            sandbox::serve(
                printer,
                sandbox::ServeSettings {
                    state_dir: state.state_dir,
                    port,
                    faults: base,
                    trusted_ca_files: trust_ca,
                },
            )
        }
        SandboxCommand::Reset { state } => sandbox::reset(printer, &state.state_dir),
        SandboxCommand::Seed { state, file } => sandbox::seed(printer, &state.state_dir, &file),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn import_reads_the_live_subscription_unless_from_terraform() {
        let cli = Cli::try_parse_from([
            "wiform",
            "import",
            "--cluster",
            "rg/aks",
            "--kube-context",
            "kind",
            "--namespace",
            "cats",
            "--sandbox",
        ])
        .unwrap();
        match cli.command {
            Command::Import(args) => {
                assert_eq!(args.clusters, [("rg".to_string(), "aks".to_string())]);
                assert!(args.from_terraform.is_none());
            }
            other => panic!("unexpected {other:?}"),
        }
        for bad in [
            &[
                "wiform",
                "import",
                "--from-terraform",
                "s.json",
                "--cluster",
                "rg/aks",
            ][..],
            &[
                "wiform",
                "import",
                "--from-terraform",
                "s.json",
                "--sandbox",
            ],
            &["wiform", "import", "--cluster", "aks"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_defaults_to_identity_toml() {
        let cli = Cli::try_parse_from(["wiform", "validate"]).unwrap();
        match cli.command {
            Command::Validate(c) => assert_eq!(c.file, PathBuf::from("identity.toml")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["wiform", "-q", "-v", "validate"]).is_err());
    }
}
