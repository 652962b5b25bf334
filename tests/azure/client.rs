//! The HTTP client against the sandbox: paging, throttling, server errors, dropped
//! connections, long-running operations, errors, and what `--verbose` logs.

use reqwest::Method;
use serde_json::{Value, json};
use wiform::error::Explain;
use wiform::providers::azure::client::{AzureClient, Event, Request};
use wiform::providers::azure::ratelimit::OpClass;
use wiform_sandbox::Faults;

use crate::support::{SUB, sandbox, sandbox_with_faults};

fn rg_path(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourcegroups/{name}?api-version=2021-04-01")
}

#[tokio::test]
async fn lists_follow_next_link_over_pages() {
    let sbx = sandbox().await;
    for i in 0..12 {
        sbx.admin
            .send(
                &Request::arm(Method::PUT, rg_path(&format!("rg-{i:02}")))
                    .json(json!({"location": "westeurope"})),
            )
            .await
            .unwrap();
    }
    sbx.clear_log();
    let groups: Vec<Value> = sbx
        .admin
        .list(&Request::arm(
            Method::GET,
            format!("/subscriptions/{SUB}/resourcegroups?api-version=2021-04-01"),
        ))
        .await
        .unwrap();
    assert_eq!(groups.len(), 12);
    // Pages of 5: three requests.
    assert_eq!(sbx.api_requests().len(), 3);
}

async fn create_groups(sbx: &crate::support::Sandbox, client: &AzureClient, names: &[String]) {
    let _ = sbx;
    let puts = names.iter().map(|name| {
        let request = Request::arm(Method::PUT, rg_path(name))
            .json(json!({"location": "westeurope"}))
            .action(format!("create resource group {name}"));
        let client = client.clone();
        async move { client.send(&request).await }
    });
    for result in futures::future::join_all(puts).await {
        result.unwrap();
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

#[tokio::test]
async fn a_429_burst_slows_the_client_down_and_it_finishes() {
    // ARM's read bucket scaled to 40%: 100 burst, 10 per second.
    let sbx = sandbox_with_faults(Faults {
        throttle: true,
        throttle_scale: 0.4,
        ..Faults::default()
    })
    .await;
    let reads = (0..160).map(|i| {
        let client = sbx.admin.clone();
        async move {
            client
                .send_optional(&Request::arm(Method::GET, rg_path(&format!("missing-{i}"))))
                .await
        }
    });
    for result in futures::future::join_all(reads).await {
        assert!(result.unwrap().is_none());
    }
    let answered_429 = sbx.count_status(429);
    let total = sbx.api_requests().len();
    // 160 reads through a bucket of 100: without pacing, 16 parallel requests would hit 429
    // until the end; with it, only the first few after the bucket is learned.
    assert!(
        answered_429 <= 5,
        "{answered_429} of {total} requests answered 429"
    );
    assert_eq!(total, 160 + answered_429);
    // The client learned the bucket from the headers.
    let (capacity, _) = sbx
        .admin
        .rate_estimate(SUB, OpClass::Reads)
        .expect("bucket observed");
    assert!((99.0..=101.0).contains(&capacity), "capacity {capacity}");
}

#[tokio::test]
async fn server_errors_at_20_percent_still_finish() {
    let sbx = sandbox_with_faults(Faults {
        error_rate: 0.2,
        ..Faults::default()
    })
    .await;
    create_groups(&sbx, &sbx.admin, &names("rg", 40)).await;
    let groups: Vec<Value> = sbx
        .admin
        .list(&Request::arm(
            Method::GET,
            format!("/subscriptions/{SUB}/resourcegroups?api-version=2021-04-01"),
        ))
        .await
        .unwrap();
    assert_eq!(groups.len(), 40);
    let errors = sbx.count_status(500) + sbx.count_status(503);
    assert!(errors > 0, "the fault answered no 5xx");
    assert!(sbx.admin.stats().retries >= errors as u64);
    assert!(
        sbx.events()
            .iter()
            .any(|e| matches!(e, Event::Retrying { reason, .. } if reason.contains("HTTP 50")))
    );
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let sbx = sandbox_with_faults(Faults {
        drop_rate: 0.2,
        ..Faults::default()
    })
    .await;
    create_groups(&sbx, &sbx.admin, &names("rg", 30)).await;
    let groups: Vec<Value> = sbx
        .admin
        .list(&Request::arm(
            Method::GET,
            format!("/subscriptions/{SUB}/resourcegroups?api-version=2021-04-01"),
        ))
        .await
        .unwrap();
    assert_eq!(groups.len(), 30);
    assert!(
        sbx.events().iter().any(
            |e| matches!(e, Event::Retrying { reason, .. } if reason.starts_with("no answer"))
        ),
        "no dropped connection was retried: {:?}",
        sbx.events()
    );
}

#[tokio::test]
async fn a_long_running_delete_is_polled_to_the_end() {
    let sbx = sandbox_with_faults(Faults {
        lro_polls: 3,
        ..Faults::default()
    })
    .await;
    create_groups(&sbx, &sbx.admin, &["rg-doomed".to_string()]).await;
    sbx.clear_log();
    let response = sbx
        .admin
        .send_long_running(
            &Request::arm(Method::DELETE, rg_path("rg-doomed"))
                .action("delete resource group rg-doomed"),
        )
        .await
        .unwrap();
    assert!(matches!(response.status, 200 | 204), "{}", response.status);
    let requests = sbx.api_requests();
    // DELETE (202), then the Location polled: 3 × 202, then the final answer.
    assert_eq!(requests[0].method, "DELETE");
    assert_eq!(requests[0].status, 202);
    assert_eq!(requests.len(), 1 + 3 + 1, "{requests:#?}");
    let polls = sbx
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Polling { action, .. } if action == "delete resource group rg-doomed"))
        .count();
    assert_eq!(polls, 3);
    let gone = sbx
        .admin
        .send_optional(&Request::arm(Method::GET, rg_path("rg-doomed")))
        .await
        .unwrap();
    assert!(gone.is_none());
}

#[tokio::test]
async fn a_reader_gets_authorization_failed_naming_the_permission_and_scope() {
    let sbx = sandbox().await;
    let error = sbx
        .reader()
        .send(
            &Request::arm(Method::PUT, rg_path("rg-nope"))
                .json(json!({"location": "westeurope"}))
                .action("create resource group rg-nope"),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(403));
    assert!(error.is_code("AuthorizationFailed"));
    assert!(error.request_id().is_some());
    let text = error.to_string();
    assert!(
        text.starts_with("create resource group rg-nope: AuthorizationFailed (HTTP 403)"),
        "{text}"
    );
    assert!(text.contains("request id"), "{text}");
    let hint = error.hint().unwrap();
    assert!(
        hint.contains("Microsoft.Resources/subscriptions/resourceGroups/write"),
        "{hint}"
    );
    assert!(
        hint.contains(&format!("/subscriptions/{SUB}/resourcegroups/rg-nope"))
            || hint.contains(&format!("/subscriptions/{SUB}/resourceGroups/rg-nope")),
        "{hint}"
    );
    // A refusal is not retried.
    assert_eq!(sbx.api_requests().len(), 1);
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_keeps_the_envelope() {
    let sbx = sandbox().await;
    let error = sbx
        .admin
        .send(
            &Request::arm(Method::PUT, rg_path("rg-x"))
                .json(json!({}))
                .action("create resource group rg-x"),
        )
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(400));
    let failure = error.failure().unwrap();
    assert!(!failure.code.is_empty() && !failure.message.is_empty());
    assert_eq!(sbx.api_requests().len(), 1);
}

#[tokio::test]
async fn the_managed_identity_providers_own_limit_is_learned_from_its_429s() {
    // Its per-subscription create/update limit scaled ×5: 100 burst, 10 per second. ARM's
    // write bucket, scaled alike (1000 / 50 per s), has room for every request.
    let sbx = sandbox_with_faults(Faults {
        throttle: true,
        msi_throttle: true,
        throttle_scale: 5.0,
        ..Faults::default()
    })
    .await;
    sbx.seed(&["rg-ids"], &[]);
    sbx.clear_log();
    let puts = (0..140).map(|i| {
        let client = sbx.admin.clone();
        async move {
            client
                .send(
                    &Request::arm(
                        Method::PUT,
                        format!(
                            "/subscriptions/{SUB}/resourceGroups/rg-ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{i:03}?api-version=2024-11-30"
                        ),
                    )
                    .json(json!({"location": "westeurope"})),
                )
                .await
        }
    });
    for result in futures::future::join_all(puts).await {
        result.unwrap();
    }
    let answered_429 = sbx.count_status(429);
    let total = sbx.api_requests().len();
    assert_eq!(total, 140 + answered_429);
    // The burst's overrun (the requests in flight when the first 429 came back) and at most a
    // few probes after it; unpaced, the 40 requests past the burst would be refused over and
    // over while 16 at a time retried.
    assert!(
        answered_429 <= 20,
        "{answered_429} of {total} requests answered 429"
    );
    // The 429s were the provider's, not ARM's: ARM's write estimate was not lowered.
    let (_, arm_refill) = sbx
        .admin
        .rate_estimate(SUB, OpClass::Writes)
        .expect("ARM's write bucket observed");
    assert!(
        arm_refill >= 10.0,
        "ARM's refill estimate fell to {arm_refill}"
    );
    // Requests sent back to the provider's line gave their ARM slots back: with nothing in
    // flight, ARM's pacing counts nothing in flight either.
    assert_eq!(sbx.admin.paced_in_flight(SUB, OpClass::Writes), 0.0);
    let limited: Vec<String> = sbx
        .events()
        .iter()
        .filter_map(|e| match e {
            Event::Limited { limit, .. } => Some(limit.clone()),
            _ => None,
        })
        .collect();
    assert!(
        limited
            .iter()
            .any(|l| l.contains("Microsoft.ManagedIdentity create/update")),
        "{limited:?}"
    );
}
