//! Resource groups: create/update status codes, HEAD, list paging, tag filter, LRO delete,
//! api-version errors, ARM headers.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

fn rg(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{name}?api-version={RG_API}")
}

#[tokio::test]
async fn create_then_update_then_read_back() {
    let sb = sandbox().await;
    let created = sb
        .put(
            &rg("rg-a"),
            json!({"location": "westeurope", "tags": {"team": "orders"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.body["type"], "Microsoft.Resources/resourceGroups");
    assert_eq!(created.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        created.body["id"],
        format!("/subscriptions/{SUB}/resourceGroups/rg-a")
    );
    assert!(created.header("x-ms-request-id").is_some());
    assert!(created.header("x-ms-correlation-request-id").is_some());
    assert_eq!(
        created.header("x-ms-ratelimit-remaining-subscription-writes"),
        Some("200")
    );

    let updated = sb.put(&rg("RG-A"), json!({"location": "westeurope"})).await;
    assert_eq!(updated.status, StatusCode::OK, "names are case-insensitive");
    assert_eq!(updated.body["name"], "rg-a", "the first spelling is kept");

    let moved = sb.put(&rg("rg-a"), json!({"location": "eastus"})).await;
    assert_eq!(
        (moved.status, moved.code()),
        (StatusCode::CONFLICT, "InvalidResourceGroupLocation")
    );

    let head = sb.call(Method::HEAD, &rg("rg-a"), None).await;
    assert_eq!(head.status, StatusCode::NO_CONTENT);
    let head = sb.call(Method::HEAD, &rg("rg-none"), None).await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    let missing = sb.get(&rg("rg-none")).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "ResourceGroupNotFound")
    );
}

#[tokio::test]
async fn location_is_required_and_bodies_are_checked() {
    let sb = sandbox().await;
    let answer = sb.put(&rg("rg-a"), json!({"tags": {}})).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::BAD_REQUEST, "LocationRequired")
    );
    let answer = sb
        .client
        .put(sb.url(&rg("rg-a")))
        .bearer_auth(&sb.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");
    let answer = sb
        .put(&rg("bad/name."), json!({"location": "westeurope"}))
        .await;
    assert_eq!(
        answer.status,
        StatusCode::NOT_FOUND,
        "a slash makes it another path: {}",
        answer.body
    );
    let answer = sb.put(&rg("bad."), json!({"location": "westeurope"})).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::BAD_REQUEST, "InvalidResourceGroupName")
    );
}

#[tokio::test]
async fn api_version_is_required_and_checked() {
    let sb = sandbox().await;
    let missing = sb
        .get(&format!("/subscriptions/{SUB}/resourceGroups"))
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::BAD_REQUEST, "MissingApiVersionParameter")
    );
    let unknown = sb
        .get(&format!(
            "/subscriptions/{SUB}/resourceGroups?api-version=2099-01-01"
        ))
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::BAD_REQUEST, "InvalidApiVersionParameter")
    );
    assert!(
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2021-04-01")
    );
}

#[tokio::test]
async fn unknown_subscription_and_unknown_path() {
    let sb = sandbox().await;
    let answer = sb.get(&format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups?api-version={RG_API}")).await;
    assert_eq!(
        (answer.status, answer.code()),
        (StatusCode::NOT_FOUND, "SubscriptionNotFound")
    );
    let answer = sb
        .get(&format!(
            "/subscriptions/{SUB}/nothing?api-version={RG_API}"
        ))
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_pages_with_next_link_and_filters_by_tag() {
    let sb = sandbox().await;
    for i in 0..12 {
        let tags = if i % 3 == 0 {
            json!({"stack": "a"})
        } else {
            json!({"stack": "b"})
        };
        let answer = sb
            .put(
                &rg(&format!("rg-{i:02}")),
                json!({"location": "westeurope", "tags": tags}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let (items, pages) = sb
        .list_all(&format!(
            "/subscriptions/{SUB}/resourceGroups?api-version={RG_API}"
        ))
        .await;
    assert_eq!((items.len(), pages), (12, 3), "page size 5");
    let mut names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    names.dedup();
    assert_eq!(names.len(), 12, "no item twice across pages");
    let (tagged, _) = sb
        .list_all(&format!("/subscriptions/{SUB}/resourceGroups?api-version={RG_API}&$filter=tagName%20eq%20'stack'%20and%20tagValue%20eq%20'a'"))
        .await;
    assert_eq!(tagged.len(), 4);
}

#[tokio::test]
async fn delete_is_long_running_and_takes_the_contents() {
    let sb = sandbox().await;
    sb.resource_group("rg-x").await;
    sb.identity("rg-x", "id-x").await;
    let answer = sb.delete(&rg("rg-x")).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    let location = answer
        .header("location")
        .expect("Location header")
        .to_string();
    assert!(answer.header("retry-after").is_some());
    let first = sb.get(&location).await;
    assert_eq!(
        first.status,
        StatusCode::ACCEPTED,
        "one poll in progress (lro_polls = 1)"
    );
    let done = sb.get(&location).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(sb.get(&rg("rg-x")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        sb.get(&identity_path("rg-x", "id-x")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(sb.delete(&rg("rg-x")).await.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn callers_need_a_valid_token_and_the_right_role() {
    let sb = sandbox().await;
    let answer = sb.client.get(sb.url(&rg("rg-a"))).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    assert!(answer.headers().get("www-authenticate").is_some());
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed");

    let forged = sb
        .call_as(
            "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
            Method::GET,
            &rg("rg-a"),
            None,
        )
        .await;
    assert_eq!(
        (forged.status, forged.code()),
        (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken")
    );
    let graph_token = token_for(
        &sb.running,
        wiform_sandbox::state::ADMIN_CLIENT_ID,
        "https://graph.microsoft.com",
    );
    let wrong_audience = sb
        .call_as(&graph_token, Method::GET, &rg("rg-a"), None)
        .await;
    assert_eq!(wrong_audience.code(), "InvalidAuthenticationTokenAudience");

    let denied = sb
        .call_as(
            &sb.reader_token,
            Method::PUT,
            &rg("rg-r"),
            Some(json!({"location": "westeurope"})),
        )
        .await;
    assert_eq!(
        (denied.status, denied.code()),
        (StatusCode::FORBIDDEN, "AuthorizationFailed")
    );
    let message = denied.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourceGroups/write'"), "{message}");
    sb.resource_group("rg-r").await;
    let read = sb
        .call_as(&sb.reader_token, Method::GET, &rg("rg-r"), None)
        .await;
    assert_eq!(read.status, StatusCode::OK);
}
