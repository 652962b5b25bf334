//! Command-line parsing (clap). Everything here turns into plain settings before the commands
//! run; no clap type leaves this module.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::{self, GraphFormat, Printer, Verbosity};

#[derive(Debug, Parser)]
#[command(
    name = "wiform",
    version,
    about = "Declarative Azure workload identity for Kubernetes",
    long_about = "wiform reads identity.toml (clusters, identities, service accounts, federations, role grants), checks it, and builds its dependency graph.",
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
    /// Print the dependency graph of the resources identity.toml declares.
    Graph {
        #[command(flatten)]
        config: ConfigArg,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Dot)]
        format: GraphFormatArg,
    },
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
    };
    status.into()
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
    fn file_defaults_to_identity_toml() {
        let cli = Cli::try_parse_from(["wiform", "validate"]).unwrap();
        match cli.command {
            Command::Validate(c) => assert_eq!(c.file, PathBuf::from("identity.toml")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(Cli::try_parse_from(["wiform", "-q", "-v", "validate"]).is_err());
    }
}
