//! State on disk: survives a restart, the CA and signing key too; foreign files are refused.

use reqwest::StatusCode;

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
