//! `plan --out FILE`, then `apply FILE`: a plan nothing has changed since is applied as it is;
//! one that Azure or Kubernetes moved past is refused, saying so and what to do, and nothing of
//! it is applied.

use std::path::Path;

use reqwest::Method;
use serde_json::json;

use crate::support::{Config, Run, Sandbox, identity_path, table};

const STALE: &str = "error: the saved plan is stale: Azure or Kubernetes changed since it was made";
const STALE_HINT: &str =
    "hint: run `wiform plan --out FILE` again, review it, and apply the new file";

/// `plan --out PLANFILE` of `file` (exit 0).
fn save_plan(sb: &Sandbox, file: &Path, plan_file: &Path) -> Run {
    let run = sb.plan(file, &["--out", plan_file.to_str().expect("a UTF-8 path")]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(plan_file.is_file(), "{}", run.transcript());
    run
}

/// `apply PLANFILE --sandbox --sandbox-dir DIR` from the config's directory (no
/// `--auto-approve`: a saved plan is its own approval).
fn apply_saved(sb: &Sandbox, cwd: &Path, plan_file: &Path) -> Run {
    let dir = sb.dir().to_str().expect("a UTF-8 path").to_string();
    sb.wiform(
        cwd,
        &[
            "apply",
            "--sandbox",
            "--sandbox-dir",
            &dir,
            plan_file.to_str().expect("a UTF-8 path"),
        ],
    )
}

fn assert_stale(run: &Run) {
    assert_eq!(run.code, 1, "{}", run.transcript());
    assert!(
        run.stderr.contains(STALE) && run.stderr.contains(STALE_HINT),
        "{}",
        run.transcript()
    );
    assert!(
        !run.text().contains("Apply complete!"),
        "{}",
        run.transcript()
    );
}

#[test]
fn a_saved_plan_applies_as_it_is_and_only_once() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config::example("multi-cluster");
    let file = config.write(dir.path());
    let plan_file = dir.path().join("plan.json");
    save_plan(&sb, &file, &plan_file);

    let run = apply_saved(&sb, dir.path(), &plan_file);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout
            .contains("Apply complete! 8 added, 2 changed, 0 replaced, 0 destroyed, 0 adopted."),
        "{}",
        run.transcript()
    );
    sb.assert_in_sync(&file);
    sb.assert_matches(&config, "applying a saved plan");

    // Applied, it describes a past state: applying it again is refused.
    assert_stale(&apply_saved(&sb, dir.path(), &plan_file));
}

#[test]
fn a_saved_plan_is_refused_once_azure_or_kubernetes_changed() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::example("quickstart");
    let file = config.write(dir.path());
    sb.apply(&file);

    // The config changes a tag; the plan is saved; then someone edits the identity's tags.
    config.section("identities")["keyvault-reader"]
        .as_table_mut()
        .expect("a table")
        .insert("tags".into(), table(&[("purpose", "workload-id-lab-v2")]));
    let file = config.write(dir.path());
    let plan_file = dir.path().join("plan.json");
    save_plan(&sb, &file, &plan_file);
    let (status, body) = sb.arm(
        Method::PATCH,
        &identity_path("rg-workload-id", "keyvault-reader"),
        Some(json!({"tags": {"purpose": "workload-id-lab", "owner": "someone-else"}})),
    );
    assert_eq!(status, 200, "{body}");

    assert_stale(&apply_saved(&sb, dir.path(), &plan_file));
    // Nothing of the plan was applied.
    let (_, identity) = sb.arm(
        Method::GET,
        &identity_path("rg-workload-id", "keyvault-reader"),
        None,
    );
    assert_eq!(identity["tags"]["purpose"], "workload-id-lab", "{identity}");
    assert_eq!(identity["tags"]["owner"], "someone-else", "{identity}");

    // A new plan, saved and applied at once, goes through.
    save_plan(&sb, &file, &plan_file);
    let run = apply_saved(&sb, dir.path(), &plan_file);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("Apply complete!"),
        "{}",
        run.transcript()
    );
    sb.assert_in_sync(&file);

    // The same with a change in Kubernetes: the service account's client id annotation.
    config.list("service_accounts")[0]
        .as_table_mut()
        .expect("a table")
        .insert("token_expiration".into(), toml::Value::Integer(7200));
    let file = config.write(dir.path());
    save_plan(&sb, &file, &plan_file);
    let cluster = sb.aks("aks-workload-id");
    let (status, body) = sb.kube(
        &cluster,
        Method::PATCH,
        "/api/v1/namespaces/workload-id-test/serviceaccounts/workload-id-sa?fieldManager=kubectl-annotate",
        Some(json!({"metadata": {"annotations": {
            "azure.workload.identity/client-id": "00000000-0000-4000-8000-0000000000ff"
        }}})),
    );
    assert_eq!(status, 200, "{body}");
    assert_stale(&apply_saved(&sb, dir.path(), &plan_file));
    let (_, sa) = sb.kube(
        &cluster,
        Method::GET,
        "/api/v1/namespaces/workload-id-test/serviceaccounts/workload-id-sa",
        None,
    );
    let annotations = &sa["metadata"]["annotations"];
    assert!(
        annotations
            .get("azure.workload.identity/service-account-token-expiration")
            .is_none(),
        "{sa}"
    );
}
