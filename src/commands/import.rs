//! `wiform import --from-terraform FILE`: identity.toml from the output of `terraform show -json`,
//! reading nothing from Azure. The file goes to `-o` (never over an existing one without
//! `--force`) or stdout; what the import could not express, the next steps and the exact
//! `terraform state rm` go to stderr.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::session::fail;
use super::{Printer, Verbosity};
use crate::config::{self, SourceFile, names};
use crate::error::Explain;
use crate::exit::ExitStatus;
use crate::import::{terraform, write};

/// The stack name when `--name` is not given.
pub const DEFAULT_STACK: &str = "imported";

#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// The output of `terraform show -json`.
    pub from_terraform: PathBuf,
    /// Where to write identity.toml; stdout when `None`.
    pub out: Option<PathBuf>,
    /// The stack name; [`DEFAULT_STACK`] when `None`.
    pub name: Option<String>,
    /// Replace `out` when it exists.
    pub force: bool,
}

pub fn run(printer: &Printer, settings: &ImportSettings) -> ExitStatus {
    let input = &settings.from_terraform;
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
            if let Err(status) = save(printer, out, &written.text, settings.force) {
                return status;
            }
        }
        None => printer.out(&written.text),
    }
    if printer.verbosity != Verbosity::Quiet {
        printer.err(&report(
            &source,
            settings,
            &shown,
            &written,
            &import.taken,
            checked.diagnostics.errors(),
        ));
    }
    ExitStatus::Success
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
    let c = written.counts;
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let into = match &settings.out {
        Some(_) => format!(" into {shown}"),
        None => String::new(),
    };
    let mut text = format!(
        "Imported {}{into} from {source}: {}, {}, {}, {}{}.\n",
        plural(c.objects(), "object", "objects"),
        plural(c.identities, "identity", "identities"),
        plural(c.service_accounts, "service account", "service accounts"),
        plural(c.federations, "federation", "federations"),
        plural(c.role_grants, "role grant", "role grants"),
        match c.clusters {
            0 => String::new(),
            n => format!(
                " (on {}, which stay{} in Terraform)",
                plural(n, "cluster", "clusters"),
                if n == 1 { "s" } else { "" }
            ),
        },
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
    let file = match &settings.out {
        Some(_) => shown.to_string(),
        None => "identity.toml".to_string(),
    };
    let save = if settings.out.is_none() {
        format!("Save the file as {file}, review it")
    } else {
        format!("Review {file}")
    };
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
