//! `wiform import --from-terraform`, run as users run it: the file it writes validates, what it
//! says on stderr (the notes, the next steps, the `terraform state rm`), and its refusals.

use std::path::Path;

use assert_cmd::Command;

const FIXTURE: &str = "tests/fixtures/terraform/show.json";

fn wiform(dir: &Path) -> Command {
    let mut command = Command::cargo_bin("wiform").expect("the wiform binary");
    command
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("WIFORM_LOG");
    command
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs wiform in `dir`: exit code, stdout, stderr.
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = wiform(dir).args(args).output().expect("wiform runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn import_writes_a_file_that_validates_and_says_what_to_run_next() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = root().join(FIXTURE);
    std::fs::copy(&fixture, dir.path().join("state.json")).unwrap();
    let (code, stdout, stderr) = run(
        dir.path(),
        &[
            "import",
            "--from-terraform",
            "state.json",
            "-o",
            "identity.toml",
            "--name",
            "orders-platform",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.is_empty(),
        "the file goes to -o, not stdout: {stdout}"
    );
    insta::assert_snapshot!(stderr);

    let (code, stdout, stderr) = run(dir.path(), &["validate", "-f", "identity.toml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "no warnings: {stderr}");
    assert!(
        stdout.contains("identity.toml is valid: 1 cluster, 4 identities, 3 service accounts"),
        "{stdout}"
    );

    // The file is the library's output for the same input, header and all.
    let written = std::fs::read_to_string(dir.path().join("identity.toml")).unwrap();
    assert!(
        written.starts_with(
            "# Imported from state.json (Terraform 1.9.8) by `wiform import --from-terraform`.\n"
        ),
        "{written}"
    );
    assert!(written.contains("name = \"orders-platform\"\n"));
}

#[test]
fn without_o_the_file_goes_to_stdout_and_the_report_to_stderr() {
    let (code, stdout, stderr) = run(root(), &["import", "--from-terraform", FIXTURE]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("[identities.id-orders-api]"), "{stdout}");
    assert!(stdout.contains("name = \"imported\"\n"));
    assert!(!stdout.contains("'azurerm_"), "{stdout}");
    assert!(
        stderr.contains("The stack is named \"imported\": choose its name with --name"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "1. Save the file as identity.toml, review it, then run `wiform plan -f identity.toml`"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "terraform state rm \\\n         'azurerm_federated_identity_credential.api_aks' \\\n"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("'kubernetes_service_account_v1.worker[\"worker-0\"]'"),
        "{stderr}"
    );
    // Quiet: the file, and nothing else.
    let (code, quiet, stderr) = run(root(), &["-q", "import", "--from-terraform", FIXTURE]);
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(quiet, stdout);
}

#[test]
fn an_existing_file_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("identity.toml");
    std::fs::write(&out, "# mine\n").unwrap();
    let fixture = root().join(FIXTURE);
    let args = [
        "import",
        "--from-terraform",
        fixture.to_str().unwrap(),
        "-o",
        "identity.toml",
    ];
    let (code, stdout, stderr) = run(dir.path(), &args);
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert_eq!(
        stderr,
        "error: identity.toml exists: not overwritten\n  hint: pass --force to replace it, or choose another file with -o\n"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# mine\n");

    let mut forced = args.to_vec();
    forced.push("--force");
    let (code, _, stderr) = run(dir.path(), &forced);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .contains("[identities.orders-ci]")
    );

    // --force means nothing without -o.
    let (code, _, stderr) = run(
        dir.path(),
        &["import", "--from-terraform", "x.json", "--force"],
    );
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn errors_name_the_file_and_the_json_path_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let fixture = std::fs::read_to_string(root().join(FIXTURE)).unwrap();
    write(
        "bad-name.json",
        &fixture.replacen("\"name\": \"id-orders-api\"", "\"name\": 42", 1),
    );
    write("truncated.json", &fixture[..fixture.len() / 2]);
    write(
        "tfstate.json",
        r#"{"version": 4, "serial": 3, "resources": []}"#,
    );
    write(
        "empty.json",
        r#"{"format_version": "1.0", "terraform_version": "1.9.8"}"#,
    );
    let mut transcript = String::new();
    for args in [
        &["import", "--from-terraform", "bad-name.json"][..],
        &["import", "--from-terraform", "truncated.json"],
        &["import", "--from-terraform", "tfstate.json"],
        &["import", "--from-terraform", "empty.json"],
        &["import", "--from-terraform", "missing.json"],
        &[
            "import",
            "--from-terraform",
            "empty.json",
            "--name",
            "Orders",
        ],
    ] {
        let (code, stdout, stderr) = run(dir.path(), args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        transcript.push_str(&format!("$ wiform {}\n{stderr}\n", args.join(" ")));
    }
    let transcript = transcript.replace("(os error 2)", "(os error)");
    insta::assert_snapshot!(transcript);
    assert!(!dir.path().join("identity.toml").exists());
}

#[test]
fn values_the_state_does_not_hold_are_placeholders_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    let state = serde_json::json!({
        "format_version": "1.0",
        "values": { "root_module": { "resources": [
            {
                "address": "azuread_application.ci", "mode": "managed",
                "type": "azuread_application", "name": "ci",
                "values": { "display_name": "ci", "client_id": "c", "object_id": "o" }
            },
            {
                "address": "azuread_application_federated_identity_credential.main",
                "mode": "managed", "type": "azuread_application_federated_identity_credential",
                "name": "main",
                "values": {
                    "application_id": "/applications/o", "display_name": "github-main",
                    "issuer": "https://token.actions.githubusercontent.com",
                    "subject": "repo:contoso/ci:ref:refs/heads/main",
                    "audiences": ["api://AzureADTokenExchange"]
                }
            }
        ] } }
    });
    std::fs::write(dir.path().join("state.json"), state.to_string()).unwrap();
    let (code, _, stderr) = run(
        dir.path(),
        &[
            "import",
            "--from-terraform",
            "state.json",
            "-o",
            "identity.toml",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: not found in state.json: tenant_id and subscription_id. The file holds placeholders that `wiform validate` rejects until you replace them."),
        "{stderr}"
    );
    let (code, _, stderr) = run(dir.path(), &["validate", "-f", "identity.toml"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("REPLACE-WITH-TENANT-ID"), "{stderr}");
}
