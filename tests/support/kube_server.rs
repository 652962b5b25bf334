//! A real kube-apiserver (+ embedded etcd) for the tests: built once from `tests/kube-server`
//! (cached under the target directory), started once per test binary on free ports, stopped
//! when the test binary exits (the server watches its parent process).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;

/// What a running server reports in `ready.json`. (Shared by several test binaries; not each
/// reads every field.)
#[allow(dead_code)]
#[derive(Debug, Clone, Deserialize)]
pub struct KubeServer {
    pub server: String,
    pub issuer: String,
    pub ca_file: PathBuf,
    pub kubeconfig: PathBuf,
    pub admin_token: String,
    pub reader_token: String,
    pub pid: u32,
}

impl KubeServer {
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca_file).expect("the server's CA file")
    }
}

struct Started {
    server: KubeServer,
    _child: Child,
}

static SERVER: OnceLock<Started> = OnceLock::new();

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cache_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("kube-server")
}

fn newest_source() -> SystemTime {
    let dir = root().join("tests/kube-server");
    ["main.go", "go.mod", "go.sum"]
        .iter()
        .filter_map(|f| {
            std::fs::metadata(dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The kube-server binary, built when missing or older than its sources. A lock file keeps
/// test binaries that start at once from building it twice.
pub fn binary() -> PathBuf {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).expect("create the kube-server cache directory");
    let binary = cache.join("kube-server");
    let lock = std::fs::File::create(cache.join("build.lock")).expect("create the build lock");
    lock.lock().expect("take the build lock");
    let fresh = std::fs::metadata(&binary)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= newest_source());
    if !fresh {
        let go = which("go").unwrap_or_else(|| {
            panic!(
                "Go is not installed, and the Kubernetes tests need it to build the real kube-apiserver \
                 (tests/kube-server). Install Go 1.24 or newer (https://go.dev/doc/install; Debian: \
                 apt-get install golang-go) and run the tests again; `bash .ci/run` does this for you."
            )
        });
        let log = cache.join("build.log");
        let started = Instant::now();
        let status = Command::new(go)
            .args(["build", "-o"])
            .arg(&binary)
            .arg(".")
            .current_dir(root().join("tests/kube-server"))
            .env("CGO_ENABLED", "0")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(cache.join("build.err")).unwrap())
            .status()
            .expect("run go build");
        let errors = std::fs::read_to_string(cache.join("build.err")).unwrap_or_default();
        assert!(
            status.success(),
            "building tests/kube-server failed:\n{errors}"
        );
        eprintln!(
            "built kube-server in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    binary
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .chain([PathBuf::from("/usr/local/go/bin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Removes the directories of servers whose process is gone (earlier test runs).
fn clean_stale(runs: &Path) {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return;
    };
    for entry in entries.flatten() {
        let alive = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The server for this test binary, started on first use.
pub fn kube_server() -> &'static KubeServer {
    &SERVER.get_or_init(start).server
}

fn start() -> Started {
    let binary = binary();
    let runs = cache_dir().join("runs");
    clean_stale(&runs);
    let dir = runs.join(std::process::id().to_string());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .arg("-dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("server.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("server.err")).unwrap())
        .spawn()
        .expect("start kube-server");
    let ready = dir.join("ready.json");
    while !ready.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let errors = std::fs::read_to_string(dir.join("server.err")).unwrap_or_default();
            let tail: Vec<&str> = errors.lines().rev().take(30).collect();
            panic!(
                "kube-server exited ({status}) before it was ready:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "kube-server was not ready after 3 minutes; see {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let server: KubeServer =
        serde_json::from_str(&std::fs::read_to_string(&ready).unwrap()).expect("ready.json");
    eprintln!(
        "kube-apiserver ready at {} in {:.1} s",
        server.server,
        started.elapsed().as_secs_f64()
    );
    Started {
        server,
        _child: child,
    }
}
