//! Faults switched on per run: throttling (ARM buckets and the Managed Identity provider's),
//! replication delay, 5xx, dropped connections, latency; the request log and counters.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use wiform_sandbox::Faults;

use crate::common::*;

#[tokio::test]
async fn a_write_burst_over_the_bucket_gets_429_with_retry_after() {
    // Scale 0.05: 10 writes of burst, refilled at 0.5 per second.
    let sb = sandbox_with_faults(Faults {
        throttle: true,
        throttle_scale: 0.05,
        ..Default::default()
    })
    .await;
    let mut remaining = Vec::new();
    let mut throttled = None;
    for i in 0..12 {
        let answer = sb
            .put(
                &format!("/subscriptions/{SUB}/resourceGroups/rg-{i}?api-version={RG_API}"),
                json!({"location": "westeurope"}),
            )
            .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(answer);
            break;
        }
        remaining.push(
            answer
                .header("x-ms-ratelimit-remaining-subscription-writes")
                .unwrap()
                .parse::<u64>()
                .unwrap(),
        );
    }
    assert_eq!(remaining.len(), 10, "the bucket holds 10 writes");
    assert!(
        remaining.windows(2).all(|w| w[1] <= w[0]),
        "remaining counts down: {remaining:?}"
    );
    let throttled = throttled.expect("the 11th write is throttled");
    assert_eq!(throttled.code(), "TooManyRequests");
    assert_eq!(throttled.header("retry-after"), Some("2"));
    assert!(
        throttled.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Write_Subscription")
    );
    // Reads have their own bucket.
    let read = sb
        .get(&format!(
            "/subscriptions/{SUB}/resourceGroups?api-version={RG_API}"
        ))
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(
        read.header("x-ms-ratelimit-remaining-subscription-reads")
            .is_some()
    );
    let counters = sb.running.app.log.counters();
    assert_eq!(counters.by_error.get("TooManyRequests"), Some(&1));
}

#[tokio::test]
async fn the_managed_identity_provider_throttles_per_identity() {
    // MSI allows 0.25 writes per second per identity; scale 4 makes it 1 per second, bucket 10.
    let sb = sandbox_with(wiform_sandbox::Options {
        fic_write_ms: 0,
        faults: Faults {
            msi_throttle: true,
            throttle_scale: 4.0,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    sb.resource_group("rg").await;
    sb.identity("rg", "uai").await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(
            sb.put(
                &fic_path("rg", "uai", &format!("fic-{i:02}")),
                fic_body("https://i.example.com", &format!("s{i}")),
            )
            .await
            .status,
        );
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn replication_delay_hides_a_new_identity_from_its_credentials() {
    let sb = sandbox_with_faults(Faults {
        replication_delay_ms: 1500,
        ..Default::default()
    })
    .await;
    sb.resource_group("rg").await;
    sb.identity("rg", "uai").await;
    let early = sb
        .put(
            &fic_path("rg", "uai", "fic-1"),
            fic_body("https://i.example.com", "s"),
        )
        .await;
    assert_eq!(
        (early.status, early.code()),
        (StatusCode::NOT_FOUND, "ParentResourceNotFound")
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let later = sb
        .put(
            &fic_path("rg", "uai", "fic-1"),
            fic_body("https://i.example.com", "s"),
        )
        .await;
    assert_eq!(later.status, StatusCode::CREATED);
}

#[tokio::test]
async fn every_request_fails_at_error_rate_one() {
    let sb = sandbox_with_faults(Faults {
        error_rate: 1.0,
        ..Default::default()
    })
    .await;
    for _ in 0..6 {
        let answer = sb
            .get(&format!(
                "/subscriptions/{SUB}/resourceGroups?api-version={RG_API}"
            ))
            .await;
        assert!(
            matches!(
                answer.status,
                StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{}",
            answer.status
        );
        assert!(matches!(
            answer.code(),
            "InternalServerError" | "ServiceUnavailable"
        ));
        assert!(answer.header("x-ms-request-id").is_some());
    }
}

#[tokio::test]
async fn dropped_connections_are_dropped() {
    let sb = sandbox_with_faults(Faults {
        drop_rate: 1.0,
        ..Default::default()
    })
    .await;
    let result = sb
        .client
        .get(sb.url(&format!(
            "/subscriptions/{SUB}/resourceGroups?api-version={RG_API}"
        )))
        .bearer_auth(&sb.admin_token)
        .send()
        .await;
    let error = result.expect_err("no answer");
    assert!(
        error.is_request() || error.is_connect() || error.to_string().contains("connection"),
        "{error}"
    );
    assert_eq!(
        sb.running
            .app
            .log
            .counters()
            .by_error
            .get("ConnectionDropped"),
        Some(&1)
    );
}

#[tokio::test]
async fn latency_is_added_and_faults_switch_at_run_time() {
    let sb = sandbox().await;
    let path = format!("/subscriptions/{SUB}/resourceGroups?api-version={RG_API}");
    let set = sb
        .client
        .put(sb.url("/_sandbox/faults"))
        .json(&json!({"latency_ms": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let started = Instant::now();
    assert_eq!(sb.get(&path).await.status, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let bad = sb
        .client
        .put(sb.url("/_sandbox/faults"))
        .json(&json!({"latency": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status(),
        StatusCode::BAD_REQUEST,
        "unknown fault names are refused"
    );
}

#[tokio::test]
async fn the_request_log_counts_what_a_client_did() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    sb.identity("rg", "id-a").await;
    sb.identity("rg", "id-b").await;
    let counters: serde_json::Value = sb
        .client
        .get(sb.url("/_sandbox/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        counters["by_operation"]["PUT userassignedidentities"]
            .as_u64()
            .or(counters["by_operation"]["PUT userAssignedIdentities"].as_u64()),
        Some(2),
        "{counters}"
    );
    assert_eq!(counters["total"], 3);
    let requests: serde_json::Value = sb
        .client
        .get(sb.url("/_sandbox/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = requests.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["method"], "PUT");
    assert_eq!(entries[0]["status"], 201);
    assert!(
        !requests.to_string().contains(&sb.admin_token),
        "tokens are never logged"
    );
}

#[tokio::test]
async fn huge_bodies_are_refused_with_an_arm_error() {
    let sb = sandbox().await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let answer = sb
        .put(
            &format!("/subscriptions/{SUB}/resourceGroups/rg?api-version={RG_API}"),
            json!({"location": "westeurope", "tags": {"a": huge}}),
        )
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::BAD_REQUEST, "InvalidRequestContent")
    );
}
