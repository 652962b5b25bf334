//! State on disk: survives a restart, the CA and signing key too; foreign files are refused;
//! the file is written in the background and is complete once the sandbox stops.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn state_ca_and_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = || wiform_sandbox::Options {
        state_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let first = sandbox_with(options()).await;
    first.resource_group("rg").await;
    let identity = first.identity("rg", "uai").await;
    let ca = first.running.ca_pem().to_string();
    let token = first.admin_token.clone();
    first.running.stop().await;
    assert!(dir.path().join("sandbox.json").is_file());
    assert!(dir.path().join("ca.pem").is_file());

    let second = sandbox_with(options()).await;
    assert_eq!(
        second.running.ca_pem(),
        ca,
        "the CA is kept, so clients keep trusting it"
    );
    let again = second
        .call_as(
            &token,
            reqwest::Method::GET,
            &identity_path("rg", "uai"),
            None,
        )
        .await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "an old token still verifies: {}",
        again.body
    );
    assert_eq!(
        again.body["properties"]["clientId"],
        identity["properties"]["clientId"]
    );
    // A client that only trusts the kept CA file reaches the new server certificate.
    let pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    let answer = client_for(&pem)
        .get(second.url("/_sandbox/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_state_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sandbox.json"), "{\"something\": \"else\"}").unwrap();
    let result = wiform_sandbox::start(wiform_sandbox::Options {
        state_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let error = result.err().expect("refused").to_string();
    assert!(error.contains("not a wiform sandbox state file"), "{error}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sandbox.json")).unwrap(),
        "{\"something\": \"else\"}"
    );
}

fn on_disk_options(dir: &Path) -> wiform_sandbox::Options {
    wiform_sandbox::Options {
        state_dir: Some(dir.to_path_buf()),
        ..Default::default()
    }
}

/// The names of the identities in the state file.
fn identities_on_disk(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("sandbox.json")).unwrap();
    let state: Value = serde_json::from_str(&text).expect("a complete JSON file");
    assert_eq!(state["format"], "wiform-sandbox-state");
    let mut names: Vec<String> = state["identities"]
        .as_object()
        .unwrap()
        .values()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:03}")).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_in_the_file_once_the_sandbox_stops() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox_with(on_disk_options(dir.path())).await;
    sandbox.resource_group("rg").await;
    let wanted = names("uai", 120);
    futures::future::join_all(wanted.iter().map(|name| sandbox.identity("rg", name))).await;
    sandbox.running.stop().await;
    assert_eq!(identities_on_disk(dir.path()), wanted);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("sandbox."))
        .collect();
    assert_eq!(files, ["sandbox.json"], "no temporary file is left");

    // And a restart serves them.
    let again = sandbox_with(on_disk_options(dir.path())).await;
    let (listed, _) = again
        .list_all(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version={MSI}"
        ))
        .await;
    assert_eq!(listed.len(), wanted.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_running_sandbox_leaves_its_last_change_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox_with(on_disk_options(dir.path())).await;
    sandbox.resource_group("rg").await;
    sandbox.identity("rg", "first").await;
    sandbox.identity("rg", "last").await;
    // No stop: what a command that ends with its in-process sandbox still running does.
    drop(sandbox);
    assert_eq!(identities_on_disk(dir.path()), ["first", "last"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_makes_the_file_current_while_the_sandbox_runs() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox_with(on_disk_options(dir.path())).await;
    sandbox.resource_group("rg").await;
    for round in 0..3 {
        let wanted = names(&format!("r{round}-"), 10 * (round + 1));
        for name in &wanted {
            sandbox.identity("rg", name).await;
        }
        sandbox.running.app.store.flush().expect("written");
        let on_disk = identities_on_disk(dir.path());
        assert!(
            wanted.iter().all(|name| on_disk.contains(name)),
            "round {round}: {on_disk:?}"
        );
        assert_eq!(
            on_disk,
            sandbox.running.app.store.read(|s| {
                let mut names: Vec<String> =
                    s.identities.values().map(|i| i.name.clone()).collect();
                names.sort();
                names
            })
        );
    }
    // Still serving.
    let answer = sandbox.get(&identity_path("rg", "r0-000")).await;
    assert_eq!(answer.status, StatusCode::OK);
}
