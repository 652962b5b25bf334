//! Malformed requests to every writable endpoint: bad JSON, wrong types, wrong shapes, odd
//! paths and methods. Each gets a 4xx in its service's error shape; nothing is a 5xx and the
//! server keeps answering.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use wiform_sandbox::state::ADMIN_CLIENT_ID;

use crate::common::*;

#[tokio::test]
async fn malformed_requests_get_4xx_never_5xx() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    sb.identity("rg", "uai").await;
    let graph_token = token_for(&sb.running, ADMIN_CLIENT_ID, "https://graph.microsoft.com");
    let arm_paths = [
        format!("/subscriptions/{SUB}/resourceGroups/rg2?api-version={RG_API}"),
        identity_path("rg", "uai2"),
        fic_path("rg", "uai", "fic-1"),
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/{}?api-version={AUTHZ_API}",
            uuid::Uuid::new_v4()
        ),
        format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{}?api-version={AUTHZ_API}",
            uuid::Uuid::new_v4()
        ),
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-1?api-version={AKS_API}"
        ),
    ];
    let bodies: Vec<Option<&str>> = vec![
        None,
        Some(""),
        Some("{"),
        Some("null"),
        Some("[]"),
        Some("42"),
        Some("\"text\""),
        Some(r#"{"location": 5, "tags": "x", "properties": []}"#),
        Some(
            r#"{"location": "westeurope", "properties": {"issuer": 1, "subject": [], "audiences": "x", "roleDefinitionId": {}, "principalId": 7}}"#,
        ),
        Some(
            r#"{"properties": {"oidcIssuerProfile": {"enabled": "yes"}, "agentPoolProfiles": "none"}, "location": "westeurope"}"#,
        ),
        Some("\u{0}\u{1}\u{2}"),
    ];
    let mut checked = 0;
    for path in &arm_paths {
        for method in [Method::PUT, Method::PATCH, Method::POST] {
            for body in &bodies {
                let mut request = sb
                    .client
                    .request(method.clone(), sb.url(path))
                    .bearer_auth(&sb.admin_token);
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(body.to_string());
                }
                let answer = request.send().await.expect("answered");
                let status = answer.status();
                let text = answer.text().await.unwrap_or_default();
                assert!(
                    status.is_client_error() || status.is_success(),
                    "{method} {path} {body:?}: {status} {text}"
                );
                if status.is_client_error() && !text.is_empty() {
                    let parsed: Value = serde_json::from_str(&text)
                        .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
                    assert!(
                        parsed["error"]["code"].is_string(),
                        "{method} {path} {body:?}: {text}"
                    );
                }
                checked += 1;
            }
        }
    }
    let graph_paths = [
        "/v1.0/applications",
        "/v1.0/servicePrincipals",
        "/v1.0/applications/not-a-guid/federatedIdentityCredentials",
    ];
    for path in graph_paths {
        for body in &bodies {
            let mut request = sb.client.post(sb.url(path)).bearer_auth(&graph_token);
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.to_string());
            }
            let answer = request.send().await.expect("answered");
            let status = answer.status();
            assert!(
                status.is_client_error() || status.is_success(),
                "POST {path} {body:?}: {status}"
            );
            checked += 1;
        }
    }
    for path in [
        "/%00",
        "/subscriptions/%ZZ",
        "/v1.0/",
        "/x/oauth2/v2.0/token",
        "/_sandbox/nope",
        "/subscriptions/../../etc/passwd",
        &"/a".repeat(3000),
    ] {
        for method in [Method::GET, Method::DELETE, Method::OPTIONS] {
            let answer = sb
                .client
                .request(method.clone(), sb.url(path))
                .bearer_auth(&sb.admin_token)
                .send()
                .await
                .expect("answered");
            assert!(
                answer.status().as_u16() < 500,
                "{method} {path}: {}",
                answer.status()
            );
            checked += 1;
        }
    }
    let health = sb
        .client
        .get(sb.url("/_sandbox/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "still serving after {checked} malformed requests"
    );
    let counters = sb.running.app.log.counters();
    assert!(
        counters.by_status.keys().all(|s| *s < 500),
        "{:?}",
        counters.by_status
    );
}
