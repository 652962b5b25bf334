//! A sandbox the test serves as `wiform sandbox serve` would (state in a temporary directory,
//! port 0, `{dir}/endpoint` naming it), so that `wiform … --sandbox --sandbox-dir DIR` connects
//! to it. Its runtime keeps serving while the test thread waits for the binary. Shared by the
//! CLI test binaries (`tests/plan`, `tests/apply`), which add their own methods.

use std::path::Path;
use std::time::Duration;

use wiform_sandbox::log::Entry;
use wiform_sandbox::state::State;
use wiform_sandbox::{App, Options, Running};

pub struct Sandbox {
    pub(crate) running: Option<Running>,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) dir: tempfile::TempDir,
    /// Trusts the sandbox's CA.
    pub(crate) http: reqwest::Client,
}

impl Sandbox {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let dir = tempfile::tempdir().expect("a state directory");
        let running = runtime
            .block_on(wiform_sandbox::start(Options {
                state_dir: Some(dir.path().to_path_buf()),
                port: 0,
                ..Options::default()
            }))
            .expect("the sandbox starts");
        std::fs::write(dir.path().join("endpoint"), running.base_url())
            .expect("the endpoint file is written");
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(running.ca_pem().as_bytes()).expect("the CA"),
            )
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Sandbox {
            running: Some(running),
            runtime,
            dir,
            http,
        }
    }

    pub(crate) fn running(&self) -> &Running {
        self.running.as_ref().expect("the sandbox runs")
    }

    pub fn app(&self) -> &App {
        &self.running().app
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn base_url(&self) -> &str {
        self.running().base_url()
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        self.app().store.read(f)
    }

    /// Every request logged since the last [`Sandbox::clear_log`].
    pub fn log(&self) -> Vec<Entry> {
        self.app().log.entries()
    }

    pub fn clear_log(&self) {
        self.app().log.clear();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.stop());
        }
    }
}
