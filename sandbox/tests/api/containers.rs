//! AKS managed clusters: the long-running PUT/DELETE and their polling sequence, 409 during an
//! operation, eTags, the OIDC issuer and workload identity rules, user credentials, and the shapes
//! of the spec examples.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiform_sandbox::Faults;
use wiform_sandbox::state::DEFAULT_TENANT;

use crate::common::*;

fn cluster_path(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}?api-version={AKS_API}"
    )
}

fn action_path(rg: &str, name: &str, action: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}/{action}?api-version={AKS_API}"
    )
}

fn cluster_body(oidc: Option<bool>, workload_identity: Option<bool>) -> Value {
    let mut properties = json!({
        "dnsPrefix": "dns1",
        "kubernetesVersion": "1.32",
        "agentPoolProfiles": [{"name": "nodepool1", "count": 1, "vmSize": "Standard_DS2_v2", "mode": "System"}],
    });
    if let Some(enabled) = oidc {
        properties["oidcIssuerProfile"] = json!({ "enabled": enabled });
    }
    if let Some(enabled) = workload_identity {
        properties["securityProfile"] = json!({ "workloadIdentity": { "enabled": enabled } });
    }
    json!({ "location": "westeurope", "tags": {"team": "a"}, "properties": properties })
}

/// A request with extra headers (If-Match, If-None-Match).
async fn send(
    sb: &Sandbox,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = sb
        .client
        .request(method, sb.url(path))
        .bearer_auth(&sb.admin_token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request).await
}

/// Polls the operation until it leaves InProgress; returns the statuses seen.
async fn settle(sb: &Sandbox, operation_url: &str) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..20 {
        let status = sb.get(operation_url).await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.body);
        let s = status.body["status"].as_str().unwrap().to_string();
        seen.push(s.clone());
        if s != "InProgress" {
            return seen;
        }
    }
    panic!("the operation never finished: {seen:?}");
}

/// Creates a cluster and waits for its creation to finish; returns the settled cluster.
async fn create_settled(sb: &Sandbox, rg: &str, name: &str, body: Value) -> Value {
    let created = sb.put(&cluster_path(rg, name), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let operation = created.header("Azure-AsyncOperation").unwrap().to_string();
    settle(sb, &operation).await;
    let got = sb.get(&cluster_path(rg, name)).await;
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");
    got.body
}

#[tokio::test]
async fn create_is_a_long_running_operation_polled_to_success() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let created = sb
        .put(
            &cluster_path("rg", "aks1"),
            cluster_body(Some(true), Some(true)),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["properties"]["provisioningState"], "Creating");
    assert!(created.body["eTag"].is_string());
    let operation = created.header("Azure-AsyncOperation").unwrap().to_string();
    assert!(
        operation.starts_with(&sb.url(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/locations/westeurope/operations/"
        ))),
        "{operation}"
    );
    assert!(operation.ends_with(&format!("?api-version={AKS_API}")));
    assert_eq!(created.header("Retry-After"), Some("1"));

    // Creating → the operation answers InProgress once (lro_polls = 1) → Succeeded.
    let first = sb.get(&operation).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["status"], "InProgress");
    assert!(first.body["startTime"].is_string());
    assert!(first.body.get("endTime").is_none());
    let op_name = operation
        .split('/')
        .next_back()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    assert_eq!(first.body["name"], op_name);
    let done = sb.get(&operation).await;
    assert_eq!(done.body["status"], "Succeeded");
    assert!(done.body["endTime"].is_string());
    assert_eq!(sb.get(&operation).await.body["status"], "Succeeded");

    let got = sb.get(&cluster_path("rg", "aks1")).await;
    assert_eq!(got.status, StatusCode::OK);
    let props = &got.body["properties"];
    assert_eq!(props["provisioningState"], "Succeeded");
    assert_eq!(
        props["agentPoolProfiles"][0]["provisioningState"],
        "Succeeded"
    );
    assert_eq!(props["oidcIssuerProfile"]["enabled"], true);
    assert_eq!(
        props["securityProfile"]["workloadIdentity"]["enabled"],
        true
    );
    let issuer = props["oidcIssuerProfile"]["issuerURL"].as_str().unwrap();
    let prefix = sb.url(&format!("/oidc/{DEFAULT_TENANT}/"));
    assert!(issuer.starts_with(&prefix), "{issuer}");
    assert!(issuer.ends_with('/'), "{issuer}");
    let guid = issuer[prefix.len()..].trim_end_matches('/');
    assert!(uuid::Uuid::try_parse(guid).is_ok(), "{issuer}");
    assert_eq!(got.body["tags"]["team"], "a");
    assert_eq!(got.body["eTag"], created.body["eTag"]);

    let unknown = sb
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/locations/westeurope/operations/{}?api-version={AKS_API}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reading_the_cluster_counts_as_a_poll_too() {
    let sb = sandbox_with_faults(Faults {
        lro_polls: 2,
        ..Default::default()
    })
    .await;
    sb.resource_group("rg").await;
    let created = sb
        .put(&cluster_path("rg", "aks1"), cluster_body(None, None))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let states: Vec<Value> = {
        let mut states = Vec::new();
        for _ in 0..3 {
            let got = sb.get(&cluster_path("rg", "aks1")).await;
            states.push(got.body["properties"]["provisioningState"].clone());
        }
        states
    };
    assert_eq!(
        states,
        [json!("Creating"), json!("Creating"), json!("Succeeded")]
    );
    let operation = created.header("Azure-AsyncOperation").unwrap();
    assert_eq!(sb.get(operation).await.body["status"], "Succeeded");
}

#[tokio::test]
async fn writes_during_an_operation_get_409_operation_not_allowed() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let created = sb
        .put(&cluster_path("rg", "aks1"), cluster_body(Some(true), None))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let busy = sb
        .put(
            &cluster_path("rg", "aks1"),
            cluster_body(Some(true), Some(true)),
        )
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(busy.code(), "OperationNotAllowed");
    assert_eq!(
        busy.body["error"]["message"],
        "Operation is not allowed: Another operation (Creating) is in progress, please wait for it to finish before starting a new operation. See https://aka.ms/aks-pending-operation for more details"
    );
    let tags = sb
        .call(
            Method::PATCH,
            &cluster_path("rg", "aks1"),
            Some(json!({"tags": {"x": "y"}})),
        )
        .await;
    assert_eq!(tags.code(), "OperationNotAllowed");

    settle(&sb, created.header("Azure-AsyncOperation").unwrap()).await;
    let updated = sb
        .put(
            &cluster_path("rg", "aks1"),
            cluster_body(Some(true), Some(true)),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["properties"]["provisioningState"], "Updating");
    assert!(updated.header("Azure-AsyncOperation").is_some());
    assert!(updated.header("Retry-After").is_some());
    let again = sb
        .put(
            &cluster_path("rg", "aks1"),
            cluster_body(Some(true), Some(true)),
        )
        .await;
    assert!(
        again.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Another operation (Updating) is in progress")
    );
    let statuses = settle(&sb, updated.header("Azure-AsyncOperation").unwrap()).await;
    assert_eq!(statuses, ["InProgress", "Succeeded"]);
    assert_eq!(
        sb.get(&cluster_path("rg", "aks1")).await.body["properties"]["provisioningState"],
        "Succeeded"
    );
}

#[tokio::test]
async fn etags_change_on_every_write_and_if_match_is_enforced() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    // If-Match on a cluster that does not exist: 412.
    let missing = send(
        &sb,
        Method::PUT,
        &cluster_path("rg", "aks1"),
        Some(cluster_body(None, None)),
        &[("If-Match", "*")],
    )
    .await;
    assert_eq!(
        missing.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        missing.body
    );
    let cluster = create_settled(&sb, "rg", "aks1", cluster_body(Some(true), None)).await;
    let etag = cluster["eTag"].as_str().unwrap().to_string();

    let stale = send(
        &sb,
        Method::PUT,
        &cluster_path("rg", "aks1"),
        Some(cluster_body(Some(true), Some(true))),
        &[("If-Match", "not-the-etag")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "PreconditionFailed");
    let exists = send(
        &sb,
        Method::PUT,
        &cluster_path("rg", "aks1"),
        Some(cluster_body(Some(true), Some(true))),
        &[("If-None-Match", "*")],
    )
    .await;
    assert_eq!(exists.status, StatusCode::PRECONDITION_FAILED);
    let patch = send(
        &sb,
        Method::PATCH,
        &cluster_path("rg", "aks1"),
        Some(json!({"tags": {}})),
        &[("If-Match", "\"other\"")],
    )
    .await;
    assert_eq!(patch.status, StatusCode::PRECONDITION_FAILED);

    let fresh = send(
        &sb,
        Method::PUT,
        &cluster_path("rg", "aks1"),
        Some(cluster_body(Some(true), Some(true))),
        &[("If-Match", &format!("\"{etag}\""))],
    )
    .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    let new_etag = fresh.body["eTag"].as_str().unwrap();
    assert_ne!(new_etag, etag);
    settle(&sb, fresh.header("Azure-AsyncOperation").unwrap()).await;
    let patched = sb
        .call(
            Method::PATCH,
            &cluster_path("rg", "aks1"),
            Some(json!({"tags": {"env": "prod"}})),
        )
        .await;
    assert_ne!(patched.body["eTag"], new_etag);
}

#[tokio::test]
async fn the_oidc_issuer_cannot_be_disabled_and_keeps_its_url() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let cluster = create_settled(&sb, "rg", "aks1", cluster_body(Some(true), Some(true))).await;
    let issuer = cluster["properties"]["oidcIssuerProfile"]["issuerURL"].clone();

    let disable = sb
        .put(
            &cluster_path("rg", "aks1"),
            cluster_body(Some(false), Some(false)),
        )
        .await;
    assert_eq!(disable.status, StatusCode::BAD_REQUEST, "{}", disable.body);
    assert_eq!(disable.code(), "OIDCIssuerFeatureCannotBeDisabled");
    assert_eq!(disable.body["error"]["target"], "oidcIssuerProfile.enabled");

    // A PUT that does not mention the issuer leaves it on, with the same URL; workload identity
    // may be switched off.
    let omitted = sb
        .put(&cluster_path("rg", "aks1"), cluster_body(None, Some(false)))
        .await;
    assert_eq!(omitted.status, StatusCode::OK, "{}", omitted.body);
    assert_eq!(
        omitted.body["properties"]["oidcIssuerProfile"]["enabled"],
        true
    );
    assert_eq!(
        omitted.body["properties"]["oidcIssuerProfile"]["issuerURL"],
        issuer
    );
    assert_eq!(
        omitted.body["properties"]["securityProfile"]["workloadIdentity"]["enabled"],
        false
    );
}

#[tokio::test]
async fn workload_identity_needs_the_oidc_issuer() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let refused = sb
        .put(
            &cluster_path("rg", "aks1"),
            cluster_body(Some(false), Some(true)),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["target"],
        "securityProfile.workloadIdentity.enabled"
    );
    assert_eq!(
        sb.get(&cluster_path("rg", "aks1")).await.status,
        StatusCode::NOT_FOUND,
        "a refused create leaves nothing behind"
    );

    // The wiform path: a cluster without either, then GET, set both, PUT the whole object back.
    let cluster = create_settled(&sb, "rg", "aks1", cluster_body(None, None)).await;
    assert_eq!(cluster["properties"]["oidcIssuerProfile"]["enabled"], false);
    assert!(
        cluster["properties"]["oidcIssuerProfile"]
            .get("issuerURL")
            .is_none()
    );
    let mut body = cluster.clone();
    body["properties"]["oidcIssuerProfile"] = json!({"enabled": true});
    body["properties"]["securityProfile"]["workloadIdentity"] = json!({"enabled": true});
    let etag = cluster["eTag"].as_str().unwrap().to_string();
    let enabled = send(
        &sb,
        Method::PUT,
        &cluster_path("rg", "aks1"),
        Some(body),
        &[("If-Match", &etag)],
    )
    .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.body);
    settle(&sb, enabled.header("Azure-AsyncOperation").unwrap()).await;
    let got = sb.get(&cluster_path("rg", "aks1")).await;
    assert!(
        got.body["properties"]["oidcIssuerProfile"]["issuerURL"]
            .as_str()
            .unwrap()
            .ends_with('/')
    );
    assert_eq!(
        got.body["properties"]["securityProfile"]["workloadIdentity"]["enabled"],
        true
    );
    // Read-only values sent back are recomputed, not trusted.
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");
}

#[tokio::test]
async fn patch_updates_only_tags() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let missing = sb
        .call(
            Method::PATCH,
            &cluster_path("rg", "aks1"),
            Some(json!({"tags": {"a": "b"}})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "ResourceNotFound");
    create_settled(&sb, "rg", "aks1", cluster_body(Some(true), None)).await;
    let patched = sb
        .call(
            Method::PATCH,
            &cluster_path("rg", "aks1"),
            Some(json!({"tags": {"a": "b"}, "properties": {"oidcIssuerProfile": {"enabled": false}, "kubernetesVersion": "1.99"}})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["tags"], json!({"a": "b"}));
    assert_eq!(
        patched.body["properties"]["oidcIssuerProfile"]["enabled"],
        true
    );
    assert_eq!(patched.body["properties"]["kubernetesVersion"], "1.32");
    assert_eq!(patched.body["properties"]["provisioningState"], "Succeeded");
    let bad = sb
        .call(
            Method::PATCH,
            &cluster_path("rg", "aks1"),
            Some(json!({"tags": "a=b"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn clusters_are_listed_by_resource_group_and_subscription_with_paging() {
    let sb = sandbox().await;
    sb.resource_group("rg1").await;
    sb.resource_group("rg2").await;
    for i in 0..7 {
        let answer = sb
            .put(
                &cluster_path("rg1", &format!("aks{i}")),
                cluster_body(None, None),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    for i in 0..2 {
        let answer = sb
            .put(
                &cluster_path("rg2", &format!("other{i}")),
                cluster_body(None, None),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let (rg1, pages) = sb
        .list_all(&format!(
            "/subscriptions/{SUB}/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters?api-version={AKS_API}"
        ))
        .await;
    assert_eq!(rg1.len(), 7);
    assert_eq!(pages, 2);
    let (all, pages) = sb
        .list_all(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters?api-version={AKS_API}"
        ))
        .await;
    assert_eq!(all.len(), 9);
    assert_eq!(pages, 2);
    let mut names: Vec<&str> = all.iter().filter_map(|c| c["name"].as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 9);
    // ManagedClustersList.json: {"value": [ManagedCluster]}, paged with nextLink.
    let page = sb
        .get(&format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/managedClusters?api-version={AKS_API}"
        ))
        .await;
    assert!(
        page.body["nextLink"]
            .as_str()
            .unwrap()
            .contains("api-version")
    );
}

#[tokio::test]
async fn delete_is_a_long_running_operation() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    assert_eq!(
        sb.delete(&cluster_path("rg", "aks1")).await.status,
        StatusCode::NO_CONTENT
    );
    create_settled(&sb, "rg", "aks1", cluster_body(Some(true), None)).await;
    let deleting = sb.delete(&cluster_path("rg", "aks1")).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    let operation = deleting.header("Azure-AsyncOperation").unwrap().to_string();
    let location = deleting.header("Location").unwrap().to_string();
    assert!(location.contains("/operationresults/"), "{location}");
    assert!(deleting.header("Retry-After").is_some());
    let got = sb.get(&cluster_path("rg", "aks1")).await;
    assert_eq!(got.body["properties"]["provisioningState"], "Deleting");
    let busy = sb
        .put(&cluster_path("rg", "aks1"), cluster_body(Some(true), None))
        .await;
    assert_eq!(busy.code(), "OperationNotAllowed");
    // The Location resource: 204 once the delete is done.
    let result = sb.get(&location).await;
    assert_eq!(result.status, StatusCode::NO_CONTENT);
    assert_eq!(sb.get(&operation).await.body["status"], "Succeeded");
    let gone = sb.get(&cluster_path("rg", "aks1")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "ResourceNotFound");
    assert_eq!(
        sb.delete(&cluster_path("rg", "aks1")).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn a_delete_cancels_a_running_update() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let created = sb
        .put(&cluster_path("rg", "aks1"), cluster_body(None, None))
        .await;
    let deleting = sb.delete(&cluster_path("rg", "aks1")).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    let create_op = sb
        .get(created.header("Azure-AsyncOperation").unwrap())
        .await;
    assert_eq!(create_op.body["status"], "Canceled");
    assert!(create_op.body["error"]["code"].is_string());
    let again = sb.delete(&cluster_path("rg", "aks1")).await;
    assert_eq!(again.code(), "OperationNotAllowed");
    settle(&sb, deleting.header("Azure-AsyncOperation").unwrap()).await;
    assert_eq!(
        sb.get(&cluster_path("rg", "aks1")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn user_credentials_are_a_kubeconfig_for_the_sandbox() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let missing = sb
        .call(
            Method::POST,
            &action_path("rg", "aks1", "listClusterUserCredential"),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    create_settled(&sb, "rg", "aks1", cluster_body(Some(true), Some(true))).await;
    let creds = sb
        .call(
            Method::POST,
            &action_path("rg", "aks1", "listClusterUserCredential"),
            None,
        )
        .await;
    assert_eq!(creds.status, StatusCode::OK, "{}", creds.body);
    // ManagedClustersListClusterUserCredentials.json
    assert_shape(
        &creds.body,
        &json!({"kubeconfigs": [{"name": "credentialName1", "value": "Y3JlZGVudGlhbFZhbHVlMQ=="}]}),
        "credentials",
    );
    assert_eq!(creds.body["kubeconfigs"][0]["name"], "clusterUser");
    let value = creds.body["kubeconfigs"][0]["value"].as_str().unwrap();
    let kubeconfig = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value)
            .unwrap(),
    )
    .unwrap();
    assert!(kubeconfig.contains("kind: Config"), "{kubeconfig}");
    // The cluster's emulated Kubernetes API: /k8s/{the guid of its issuer URL}.
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("a server line")
        .to_string();
    let guid = server.rsplit('/').next().unwrap();
    assert!(server.starts_with(&sb.url("/k8s/")), "{kubeconfig}");
    assert!(uuid::Uuid::try_parse(guid).is_ok(), "{server}");
    assert!(kubeconfig.contains("certificate-authority-data: "));
    assert!(kubeconfig.contains("current-context: aks1"));
    assert!(kubeconfig.contains("clusterUser_rg_aks1"));

    let admin = sb
        .call(
            Method::POST,
            &action_path("rg", "aks1", "listClusterAdminCredential"),
            None,
        )
        .await;
    assert_eq!(admin.body["kubeconfigs"][0]["name"], "clusterAdmin");

    let reader = sb
        .call_as(
            &sb.reader_token,
            Method::POST,
            &action_path("rg", "aks1", "listClusterUserCredential"),
            None,
        )
        .await;
    assert_eq!(reader.status, StatusCode::FORBIDDEN);
    assert_eq!(reader.code(), "AuthorizationFailed");
    assert!(
        reader.body["error"]["message"].as_str().unwrap().contains(
            "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
        )
    );
    let get = sb
        .get(&action_path("rg", "aks1", "listClusterUserCredential"))
        .await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_reader_client_may_read_clusters_but_not_write_them() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let denied = sb
        .call_as(
            &sb.reader_token,
            Method::PUT,
            &cluster_path("rg", "aks1"),
            Some(cluster_body(Some(true), None)),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "AuthorizationFailed");
    assert!(
        denied.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'Microsoft.ContainerService/managedClusters/write'")
    );
    create_settled(&sb, "rg", "aks1", cluster_body(Some(true), None)).await;
    let read = sb
        .call_as(
            &sb.reader_token,
            Method::GET,
            &cluster_path("rg", "aks1"),
            None,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    let delete = sb
        .call_as(
            &sb.reader_token,
            Method::DELETE,
            &cluster_path("rg", "aks1"),
            None,
        )
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn malformed_requests_get_400_with_the_arm_envelope() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let cases: Vec<(&str, String, Value, StatusCode, &str)> = vec![
        (
            "oidc enabled is not a boolean",
            cluster_path("rg", "aks1"),
            json!({"location": "westeurope", "properties": {"oidcIssuerProfile": {"enabled": "yes"}}}),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "securityProfile is not an object",
            cluster_path("rg", "aks1"),
            json!({"location": "westeurope", "properties": {"securityProfile": true}}),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "properties is an array",
            cluster_path("rg", "aks1"),
            json!({"location": "westeurope", "properties": []}),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "agent pools are not objects",
            cluster_path("rg", "aks1"),
            json!({"location": "westeurope", "properties": {"agentPoolProfiles": [1]}}),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "no location",
            cluster_path("rg", "aks1"),
            json!({"properties": {}}),
            StatusCode::BAD_REQUEST,
            "LocationRequired",
        ),
        (
            "body is not an object",
            cluster_path("rg", "aks1"),
            json!("cluster"),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "bad name",
            cluster_path("rg", "-aks"),
            cluster_body(None, None),
            StatusCode::BAD_REQUEST,
            "InvalidResourceName",
        ),
        (
            "unknown resource group",
            cluster_path("nope", "aks1"),
            cluster_body(None, None),
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
        ),
        (
            "unknown api-version",
            cluster_path("rg", "aks1").replace(AKS_API, "2019-01-01"),
            cluster_body(None, None),
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
        ),
    ];
    for (what, path, body, status, code) in cases {
        let answer = sb.put(&path, body).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(answer.code(), code, "{what}: {}", answer.body);
    }
    let raw = sb
        .client
        .put(sb.url(&cluster_path("rg", "aks1")))
        .bearer_auth(&sb.admin_token)
        .header("content-type", "application/json")
        .body("{\"location\": \"westeurope\", \"properties\": {")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");
    // The location of an existing cluster cannot change.
    create_settled(&sb, "rg", "aks1", cluster_body(None, None)).await;
    let mut moved = cluster_body(None, None);
    moved["location"] = json!("eastus");
    let answer = sb.put(&cluster_path("rg", "aks1"), moved).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.code(), "PropertyChangeNotAllowed");
    for version in ["2024-05-01", "2024-09-01", "2025-01-01", "2025-07-01"] {
        let got = sb
            .get(&cluster_path("rg", "aks1").replace(AKS_API, version))
            .await;
        assert_eq!(got.status, StatusCode::OK, "{version}");
    }
    for path in [
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/fleets/f?api-version={AKS_API}"
        ),
        format!("/subscriptions/{SUB}/providers/Microsoft.ContainerService?api-version={AKS_API}"),
        format!(
            "/subscriptions/{SUB}/providers/Microsoft.ContainerService/locations/westeurope/operations?api-version={AKS_API}"
        ),
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1/a/b?api-version={AKS_API}"
        ),
    ] {
        let unknown = sb.get(&path).await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(unknown.code(), "InvalidResourceType", "{path}");
    }
}

#[tokio::test]
async fn the_cluster_has_the_fields_and_types_of_the_spec_example() {
    let sb = sandbox().await;
    sb.resource_group("rg1").await;
    let cluster = create_settled(
        &sb,
        "rg1",
        "clustername1",
        cluster_body(Some(true), Some(true)),
    )
    .await;
    // ManagedClustersGet.json (2025-10-01), the fields the sandbox models.
    let example = json!({
        "name": "clustername1",
        "type": "Microsoft.ContainerService/managedClusters",
        "eTag": "beywbwei",
        "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.ContainerService/managedClusters/clustername1",
        "location": "location1",
        "properties": {
            "agentPoolProfiles": [{
                "name": "nodepool1", "count": 3, "currentOrchestratorVersion": "1.9.6",
                "orchestratorVersion": "1.9.6", "osType": "Linux", "provisioningState": "Succeeded",
                "vmSize": "Standard_DS1_v2"
            }],
            "azurePortalFQDN": "dnsprefix1-abcd1234.portal.hcp.eastus.azmk8s.io",
            "currentKubernetesVersion": "1.9.6",
            "dnsPrefix": "dnsprefix1",
            "enableRBAC": false,
            "fqdn": "dnsprefix1-abcd1234.hcp.eastus.azmk8s.io",
            "kubernetesVersion": "1.9.6",
            "maxAgentPools": 1,
            "nodeResourceGroup": "MC_rg1_clustername1_location1",
            "provisioningState": "Succeeded",
            "oidcIssuerProfile": {"enabled": true, "issuerURL": "https://x/"},
            "securityProfile": {"workloadIdentity": {"enabled": true}}
        },
        "tags": {}
    });
    assert_shape(&cluster, &example, "managedCluster");
    assert_eq!(
        cluster["id"].as_str().unwrap().to_ascii_lowercase(),
        format!(
            "/subscriptions/{SUB}/resourcegroups/rg1/providers/microsoft.containerservice/managedclusters/clustername1"
        )
    );
    assert!(
        cluster["type"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case("Microsoft.ContainerService/managedClusters")
    );
    assert_eq!(
        cluster["properties"]["nodeResourceGroup"],
        "MC_rg1_clustername1_westeurope"
    );
    assert_eq!(cluster["properties"]["dnsPrefix"], "dns1");
    assert!(
        cluster["properties"]["fqdn"]
            .as_str()
            .unwrap()
            .ends_with(".hcp.westeurope.azmk8s.io")
    );
}

#[tokio::test]
async fn sku_and_identity_are_kept_and_operations_keep_their_end_time() {
    let sb = sandbox().await;
    sb.resource_group("rg-aks").await;
    let mut body = cluster_body(Some(true), Some(true));
    body["sku"] = json!({"name": "Base", "tier": "Standard"});
    body["identity"] = json!({"type": "UserAssigned", "userAssignedIdentities": {}});
    let created = sb.put(&cluster_path("rg-aks", "aks-kept"), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let operation = created.header("Azure-AsyncOperation").unwrap().to_string();
    settle(&sb, &operation).await;
    let first = sb.get(&operation).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = sb.get(&operation).await;
    assert_eq!(first.body["status"], "Succeeded");
    assert_eq!(
        first.body["endTime"], second.body["endTime"],
        "the end time is when it ended, not when it was read"
    );
    let got = sb.get(&cluster_path("rg-aks", "aks-kept")).await;
    assert_eq!(got.body["sku"]["tier"], "Standard");
    assert_eq!(got.body["identity"]["type"], "UserAssigned");
    // A later PUT without them keeps them, as AKS does.
    let updated = sb
        .put(
            &cluster_path("rg-aks", "aks-kept"),
            cluster_body(None, None),
        )
        .await;
    assert!(updated.status.is_success(), "{}", updated.body);
    assert_eq!(updated.body["sku"]["tier"], "Standard");
}
