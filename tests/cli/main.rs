//! The `wiform` binary, run as users run it: exit codes, stdout and stderr (snapshots with
//! insta), against the files in `examples/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod import;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs wiform from the repository root with colours off.
fn wiform(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_wiform"))
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("WIFORM_LOG")
        .output()
        .expect("run wiform");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn transcript(args: &[&str]) -> String {
    let (code, stdout, stderr) = wiform(args);
    format!("exit code: {code}\n----- stdout -----\n{stdout}----- stderr -----\n{stderr}")
}

fn toml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("identity.toml").is_file())
        .map(|p| {
            format!(
                "examples/{}/identity.toml",
                p.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_example_is_valid() {
    let examples = examples();
    assert_eq!(examples.len(), 6, "{examples:?}");
    for example in examples {
        let (code, stdout, stderr) = wiform(&["--color", "never", "validate", "-f", &example]);
        assert_eq!(code, 0, "{example}\n{stderr}");
        assert!(stdout.contains("is valid"), "{stdout}");
        assert!(stderr.is_empty(), "{example} has warnings:\n{stderr}");
    }
}

#[test]
fn every_invalid_example_fails_with_all_its_errors() {
    let files = toml_files("examples/invalid");
    assert!(files.len() >= 7, "{files:?}");
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let relative = format!("examples/invalid/{name}.toml");
        let output = transcript(&["--color", "never", "validate", "-f", &relative]);
        assert!(
            output.starts_with("exit code: 1\n"),
            "{relative}:\n{output}"
        );
        insta::assert_snapshot!(format!("validate_invalid_{name}"), output);
    }
}

#[test]
fn quickstart_validates() {
    insta::assert_snapshot!(transcript(&[
        "validate",
        "-f",
        "examples/quickstart/identity.toml"
    ]));
}

#[test]
fn quiet_prints_nothing_on_success_and_errors_on_failure() {
    let (code, stdout, stderr) =
        wiform(&["-q", "validate", "-f", "examples/quickstart/identity.toml"]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
    let (code, _, stderr) = wiform(&["-q", "validate", "-f", "examples/invalid/federations.toml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("config::no-issuer"));
    assert!(
        !stderr.contains("config::broad-role"),
        "warnings are not errors:\n{stderr}"
    );
}

#[test]
fn a_missing_file_says_what_to_do() {
    insta::assert_snapshot!(transcript(&[
        "--color",
        "never",
        "validate",
        "-f",
        "no/such/identity.toml"
    ]));
}

#[test]
fn colour_can_be_forced() {
    let (code, _, stderr) = wiform(&[
        "--color",
        "always",
        "validate",
        "-f",
        "examples/invalid/references.toml",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("\u{1b}["), "no ANSI escapes in:\n{stderr}");
}

#[test]
fn graph_json_lists_nodes_edges_and_order() {
    let (code, stdout, stderr) = wiform(&[
        "graph",
        "-f",
        "examples/multi-cluster/identity.toml",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stdout);
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let order: Vec<&str> = doc["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for edge in doc["edges"].as_array().unwrap() {
        let position = |key: &str| {
            order
                .iter()
                .position(|a| *a == edge[key].as_str().unwrap())
                .unwrap()
        };
        assert!(position("from") < position("to"), "{edge}");
    }
}

#[test]
fn graph_dot_renders_with_graphviz() {
    let dot = which_dot();
    for example in examples() {
        let (code, stdout, stderr) = wiform(&["graph", "-f", &example]);
        assert_eq!(code, 0, "{stderr}");
        let mut child = Command::new(&dot)
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdout.as_bytes())
            .unwrap();
        let rendered = child.wait_with_output().unwrap();
        let svg = String::from_utf8_lossy(&rendered.stdout);
        assert!(
            rendered.status.success() && svg.contains("<svg"),
            "{example}: dot failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
    }
    insta::assert_snapshot!(wiform(&["graph", "-f", "examples/multi-cluster/identity.toml"]).1);
}

#[test]
fn graph_of_an_invalid_file_fails_without_output() {
    let (code, stdout, stderr) = wiform(&["graph", "-f", "examples/invalid/references.toml"]);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(stderr.contains("config::undefined-reference"));
}

#[test]
fn help_lists_only_working_commands() {
    let (code, stdout, _) = wiform(&["--help"]);
    assert_eq!(code, 0);
    insta::assert_snapshot!(stdout);
}

/// Graphviz is needed to prove the DOT output renders; say how to get it rather than skip.
fn which_dot() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("dot"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("Graphviz `dot` is not installed: install it (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz) and re-run"))
}

/// `wiform sandbox serve` as a user runs it: starts, says where it is, answers over HTTPS with
/// its own CA, takes a seed and a reset while running, and stops cleanly on SIGTERM.
#[test]
fn sandbox_serve_seed_reset_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_wiform"))
        .args(["sandbox", "serve", "--port", "0", "--state-dir", state_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let endpoint = state.join("endpoint");
    let started = std::time::Instant::now();
    while !endpoint.exists() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the sandbox did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let base = std::fs::read_to_string(&endpoint).unwrap();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let env = std::fs::read_to_string(state.join("sandbox.env")).unwrap();
    assert!(env.contains("export AZURE_CLIENT_SECRET="));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for private in [
            "sandbox.env",
            "sandbox.json",
            "ca-key.pem",
            "signing-key.pem",
        ] {
            let mode = std::fs::metadata(state.join(private))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{private} holds secrets");
        }
    }

    let seed = dir.path().join("seed.toml");
    std::fs::write(&seed, "[[resource_groups]]\nname = \"rg-seeded\"\n").unwrap();
    let (code, stdout, stderr) = wiform(&[
        "sandbox",
        "seed",
        "--state-dir",
        state_arg,
        "-f",
        seed.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Seeded the running sandbox"), "{stdout}");
    let (code, stdout, _) = wiform(&["sandbox", "reset", "--state-dir", state_arg]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Reset the running sandbox"), "{stdout}");

    // SIGTERM, as a service manager or CI would stop it.
    let _ = Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let status = serve.wait().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(serve.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{out}");
    assert!(
        out.contains("wiform sandbox is listening on https://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("source "), "{out}");
    assert!(
        !out.contains(
            env.lines()
                .find(|l| l.contains("SECRET"))
                .unwrap()
                .split('=')
                .nth(1)
                .unwrap()
        ),
        "the secret is never printed"
    );
    assert!(!endpoint.exists(), "the endpoint file goes with the server");

    // Offline, seed and reset work on the state file.
    let (code, stdout, stderr) = wiform(&[
        "sandbox",
        "seed",
        "--state-dir",
        state_arg,
        "-f",
        seed.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Seeded "), "{stdout}");
    let json = std::fs::read_to_string(state.join("sandbox.json")).unwrap();
    assert!(json.contains("rg-seeded"));
    std::fs::write(
        &seed,
        "[[identities]]\nresource_group = \"nope\"\nname = \"x\"\n",
    )
    .unwrap();
    let (code, _, stderr) = wiform(&[
        "sandbox",
        "seed",
        "--state-dir",
        state_arg,
        "-f",
        seed.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("resource group nope"), "{stderr}");
}

#[test]
fn a_foreign_state_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sandbox.json"), "[1, 2, 3]").unwrap();
    let (code, _, stderr) = wiform(&[
        "sandbox",
        "reset",
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("is not a wiform sandbox state file"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sandbox.json")).unwrap(),
        "[1, 2, 3]"
    );
}

/// The drift issue's acceptance: `bash examples/ci/drift-demo.sh` applies the quickstart in a
/// sandbox, changes a tag with curl, and `wiform drift` exits 2 naming the change.
#[test]
fn the_drift_demo_shows_a_change_made_with_curl() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new("bash")
        .arg(root.join("examples/ci/drift-demo.sh"))
        .env("WIFORM", env!("CARGO_BIN_EXE_wiform"))
        .env_remove("RUST_LOG")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("identity.keyvault-reader (managed_identity, changed outside wiform)"),
        "{stdout}"
    );
    assert!(stdout.contains("exit 2"), "{stdout}");
}

/// Issue 16's acceptance: `bash examples/brownfield/demo.sh` builds the end state of the Cats API
/// recipe with the requests `az` and `kubectl` send, imports it, plans only adoptions, applies,
/// and verify says the service account still gets its token.
#[test]
fn the_brownfield_demo_imports_a_recipe_made_setup_and_verifies_it() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new("bash")
        .arg(root.join("examples/brownfield/demo.sh"))
        .env("WIFORM", env!("CARGO_BIN_EXE_wiform"))
        .env_remove("RUST_LOG")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "federation_name = \"CatsApiFederatedIdentity\"",
        "Plan: 0 to add, 0 to change, 0 to replace, 0 to destroy, 3 to adopt.",
        "OK: every service account (1) can get its Azure token.",
        "No changes. Azure and Kubernetes match identity.toml.",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} in:\n{stdout}\n{stderr}"
        );
    }
}
