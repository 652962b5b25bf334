//! `wiform sandbox serve | reset | seed`: the built-in emulator of ARM, Microsoft Graph and the
//! Entra token endpoint, run as a local HTTPS server with its state on disk.

use std::path::{Path, PathBuf};
use std::time::Instant;

use wiform_sandbox::state::{ADMIN_CLIENT_ID, READER_CLIENT_ID, Store};
use wiform_sandbox::{Faults, Options};

use super::Printer;
use crate::exit::ExitStatus;

/// Where `serve` tells other commands that it is running.
const ENDPOINT_FILE: &str = "endpoint";
const STATE_FILE: &str = "sandbox.json";

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

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn fail(printer: &Printer, message: &str) -> ExitStatus {
    printer.err(&format!("error: {message}\n"));
    ExitStatus::Failure
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
        let env_file = dir.join("sandbox.env");
        if let Err(e) = write_env_file(&env_file, &running) {
            return fail(printer, &format!("cannot write {}: {e}", env_file.display()));
        }
        let endpoint = dir.join(ENDPOINT_FILE);
        let _ = std::fs::write(&endpoint, running.base_url());
        let base = running.base_url().to_string();
        let tenant = running.app.tenant_id();
        printer.out(&format!(
            "wiform sandbox is listening on {base} (started in {} ms)\n\n  ARM        {base}\n  Graph      {base}/v1.0\n  Authority  {base}  (tenant {tenant})\n  CA         {}\n  State      {}\n  Requests   {base}/_sandbox/requests, {base}/_sandbox/counters\n\nPoint clients at it:  source {}\n(tenant, subscription, a client id and secret with Owner on the subscription, authority host, CA bundle)\n\nPress Ctrl-C to stop.\n",
            started.elapsed().as_millis(),
            dir.join("ca.pem").display(),
            dir.join(STATE_FILE).display(),
            env_file.display(),
        ));
        wait_for_stop().await;
        let _ = std::fs::remove_file(&endpoint);
        running.stop().await;
        printer.result("wiform sandbox stopped; its state is kept.\n");
        ExitStatus::Success
    })
}

async fn wait_for_stop() {
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

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The environment a client needs, in a file only its owner can read (it holds a secret, which
/// is therefore never printed).
fn write_env_file(path: &Path, running: &wiform_sandbox::Running) -> std::io::Result<()> {
    let app = &running.app;
    let secret_of = |s: &wiform_sandbox::state::State, id: &str| {
        s.clients
            .iter()
            .find(|c| c.client_id == id)
            .map(|c| c.secret.clone())
            .unwrap_or_default()
    };
    let (tenant, subscription, secret, reader_secret) = app.store.read(|s| {
        (
            s.tenant_id.clone(),
            s.subscriptions.first().cloned().unwrap_or_default(),
            secret_of(s, ADMIN_CLIENT_ID),
            secret_of(s, READER_CLIENT_ID),
        )
    });
    let ca = path.with_file_name("ca.pem");
    let base = running.base_url();
    let text = format!(
        "# wiform sandbox at {base}: `source` this file to point Azure clients at it.\n\
         export AZURE_TENANT_ID={tenant}\n\
         export AZURE_SUBSCRIPTION_ID={subscription}\n\
         export AZURE_CLIENT_ID={ADMIN_CLIENT_ID}\n\
         export AZURE_CLIENT_SECRET={secret}\n\
         export AZURE_AUTHORITY_HOST={base}\n\
         export WIFORM_SANDBOX_URL={base}\n\
         export SSL_CERT_FILE={ca}\n\
         export REQUESTS_CA_BUNDLE={ca}\n\
         export CURL_CA_BUNDLE={ca}\n\
         # A client with Reader only: `wiform drift --sandbox --auth environment` signs in as it\n\
         # when AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are set to these.\n\
         export WIFORM_SANDBOX_READER_CLIENT_ID={READER_CLIENT_ID}\n\
         export WIFORM_SANDBOX_READER_CLIENT_SECRET={reader_secret}\n",
        ca = ca.display()
    );
    write_private(path, &text)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// A running sandbox for this state directory, if one answers.
fn live_endpoint(state_dir: &Path) -> Option<(String, reqwest::Client)> {
    let base = std::fs::read_to_string(state_dir.join(ENDPOINT_FILE)).ok()?;
    let ca = std::fs::read(state_dir.join("ca.pem")).ok()?;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).ok()?)
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .ok()?;
    let base = base.trim().to_string();
    let healthy = runtime().ok()?.block_on(async {
        client
            .get(format!("{base}/_sandbox/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    });
    healthy.then_some((base, client))
}

fn post(
    base: &str,
    client: &reqwest::Client,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<String, String> {
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut request = client.post(format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("the running sandbox did not answer: {e}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("the running sandbox refused it ({status}): {text}"))
        }
    })
}

pub fn reset(printer: &Printer, state_dir: &Path) -> ExitStatus {
    if let Some((base, client)) = live_endpoint(state_dir) {
        return match post(&base, &client, "/_sandbox/reset", None) {
            Ok(_) => {
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
    let store = match Store::open(&path) {
        Ok(store) => store,
        Err(e) => return fail(printer, &e.to_string()),
    };
    let fresh = store.read(|s| s.reset());
    match store.replace(fresh) {
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
    let seed = match wiform_sandbox::seed::parse(&file.display().to_string(), &text) {
        Ok(seed) => seed,
        Err(e) => {
            return fail(
                printer,
                &format!("{} is not a valid seed file: {e}", file.display()),
            );
        }
    };
    if let Some((base, client)) = live_endpoint(state_dir) {
        let body = match serde_json::to_value(&seed) {
            Ok(body) => body,
            Err(e) => return fail(printer, &e.to_string()),
        };
        return match post(&base, &client, "/_sandbox/seed", Some(body)) {
            Ok(added) => {
                printer.result(&format!("Seeded the running sandbox at {base}: {added}\n"));
                ExitStatus::Success
            }
            Err(e) => fail(printer, &e),
        };
    }
    let path = state_dir.join(STATE_FILE);
    let store = match Store::open(&path) {
        Ok(store) => store,
        Err(e) => return fail(printer, &e.to_string()),
    };
    match store.write(|s| {
        wiform_sandbox::seed::apply(s, &seed, wiform_sandbox::seed::DEFAULT_BASE_URL)
            .map_err(SeedError::Invalid)
    }) {
        Ok(added) => {
            printer.result(&format!("Seeded {}: {added:?}\n", path.display()));
            ExitStatus::Success
        }
        Err(SeedError::Invalid(e)) => fail(printer, &format!("{}: {e}", file.display())),
        Err(SeedError::Store(e)) => fail(printer, &e.to_string()),
    }
}

enum SeedError {
    Invalid(String),
    Store(wiform_sandbox::state::StoreError),
}

impl From<wiform_sandbox::state::StoreError> for SeedError {
    fn from(e: wiform_sandbox::state::StoreError) -> Self {
        SeedError::Store(e)
    }
}
