//! `wiform sandbox serve | reset | seed`: the built-in emulator of ARM, Microsoft Graph and the
//! Entra token endpoint, run as a local HTTPS server with its state on disk.

use std::path::{Path, PathBuf};
use std::time::Instant;

use wiform_sandbox::client::{self, CA_FILE, ENV_FILE, STATE_FILE, SandboxClient, SeedError};
use wiform_sandbox::{Faults, Options};

use super::Printer;
use super::session::{self, runtime};
use crate::exit::ExitStatus;

/// How long a running sandbox has to answer `reset` and `seed` (and its health check).
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct ServeSettings {
    pub state_dir: PathBuf,
    pub port: u16,
    pub faults: Faults,
    pub trusted_ca_files: Vec<PathBuf>,
}

/// Reads a faults file (JSON, or TOML by default).
pub fn read_faults(path: &Path) -> Result<Faults, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let parsed = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        toml::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| format!("{} is not a valid faults file: {e}", path.display()))
}

fn fail(printer: &Printer, message: &str) -> ExitStatus {
    session::fail(printer, message, None)
}

pub fn serve(printer: &Printer, settings: ServeSettings) -> ExitStatus {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(e) => return fail(printer, &e),
    };
    runtime.block_on(async {
        let started = Instant::now();
        let options = Options {
            state_dir: Some(settings.state_dir.clone()),
            port: settings.port,
            faults: settings.faults,
            trusted_ca_files: settings.trusted_ca_files,
            ..Options::default()
        };
        let running = match wiform_sandbox::start(options).await {
            Ok(running) => running,
            Err(e) => return fail(printer, &format!("the sandbox could not start: {e}")),
        };
        let dir = absolute(&settings.state_dir);
        let env_file = dir.join(ENV_FILE);
        if let Err(e) = client::write_env_file(&env_file, &running) {
            return fail(printer, &format!("cannot write {}: {e}", env_file.display()));
        }
        // Where `serve` tells other commands that it is running.
        let _ = client::write_endpoint(&dir, &running);
        let base = running.base_url().to_string();
        let tenant = client::tenant_id(&running);
        printer.out(&format!(
            "wiform sandbox is listening on {base} (started in {} ms)\n\n  ARM        {base}\n  Graph      {base}/v1.0\n  Authority  {base}  (tenant {tenant})\n  CA         {}\n  State      {}\n  Requests   {base}/_sandbox/requests, {base}/_sandbox/counters\n\nPoint clients at it:  source {}\n(tenant, subscription, a client id and secret with Owner on the subscription, authority host, CA bundle)\n\nPress Ctrl-C to stop.\n",
            started.elapsed().as_millis(),
            dir.join(CA_FILE).display(),
            dir.join(STATE_FILE).display(),
            env_file.display(),
        ));
        session::stop_requested().await;
        let _ = client::remove_endpoint(&dir);
        running.stop().await;
        printer.result("wiform sandbox stopped; its state is kept.\n");
        ExitStatus::Success
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A running sandbox for this state directory, if one answers.
fn live_endpoint(state_dir: &Path) -> Option<SandboxClient> {
    let endpoint = client::Endpoint::read(state_dir)?;
    let client = SandboxClient::new(&endpoint.url, &endpoint.ca_pem, TIMEOUT)?;
    let healthy = runtime().ok()?.block_on(client.healthy());
    healthy.then_some(client)
}

/// Asks the running sandbox for a change (`reset`, `seed`); its answer.
fn ask<T>(
    change: impl std::future::Future<Output = Result<T, client::AdminError>>,
) -> Result<T, String> {
    runtime()?.block_on(change).map_err(|e| match e {
        client::AdminError::Unreachable(e) => format!("the running sandbox did not answer: {e}"),
        client::AdminError::Refused { status, body } => {
            format!("the running sandbox refused it ({status}): {body}")
        }
    })
}

pub fn reset(printer: &Printer, state_dir: &Path) -> ExitStatus {
    if let Some(sandbox) = live_endpoint(state_dir) {
        return match ask(sandbox.reset()) {
            Ok(()) => {
                let base = sandbox.base_url();
                printer.result(&format!("Reset the running sandbox at {base}.\n"));
                ExitStatus::Success
            }
            Err(e) => fail(printer, &e),
        };
    }
    let path = state_dir.join(STATE_FILE);
    if !path.exists() {
        printer.result(&format!(
            "Nothing to reset: {} does not exist.\n",
            path.display()
        ));
        return ExitStatus::Success;
    }
    match client::reset_state_file(&path) {
        Ok(()) => {
            printer.result(&format!("Reset {}.\n", path.display()));
            ExitStatus::Success
        }
        Err(e) => fail(printer, &e.to_string()),
    }
}

pub fn seed(printer: &Printer, state_dir: &Path, file: &Path) -> ExitStatus {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return fail(printer, &format!("cannot read {}: {e}", file.display())),
    };
    let seed = match client::parse_seed(&file.display().to_string(), &text) {
        Ok(seed) => seed,
        Err(e) => {
            return fail(
                printer,
                &format!("{} is not a valid seed file: {e}", file.display()),
            );
        }
    };
    if let Some(sandbox) = live_endpoint(state_dir) {
        return match ask(sandbox.seed(&seed)) {
            Ok(added) => {
                let base = sandbox.base_url();
                printer.result(&format!("Seeded the running sandbox at {base}: {added}\n"));
                ExitStatus::Success
            }
            Err(e) => fail(printer, &e),
        };
    }
    let path = state_dir.join(STATE_FILE);
    match client::seed_state_file(&path, &seed) {
        Ok(added) => {
            printer.result(&format!("Seeded {}: {added:?}\n", path.display()));
            ExitStatus::Success
        }
        Err(SeedError::Invalid(e)) => fail(printer, &format!("{}: {e}", file.display())),
        Err(SeedError::Store(e)) => fail(printer, &e.to_string()),
    }
}
