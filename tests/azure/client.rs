//! The HTTP client against the sandbox: paging, throttling, server errors, dropped
//! connections, long-running operations, errors, and what `--verbose` logs.

use reqwest::Method;
use serde_json::{Value, json};
use wiform::providers::azure::client::Request;

use crate::support::{SUB, sandbox};

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
