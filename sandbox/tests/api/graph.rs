//! Microsoft Graph v1.0: applications, service principals and application federated identity
//! credentials — shapes from the microsoft-graph-docs-contrib examples, the real error envelope
//! and codes, paging with `@odata.nextLink`, and who may write.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiform_sandbox::Faults;
use wiform_sandbox::state::{ADMIN_CLIENT_ID, READER_CLIENT_ID};

use crate::common::*;

const ISSUER: &str = "https://oidc.example.com/cluster/";
const TOKEN_EXCHANGE: &str = "api://AzureADTokenExchange";

fn graph_token(sb: &Sandbox, client: &str) -> String {
    token_for(&sb.running, client, "https://graph.microsoft.com")
}

/// A Graph call with an optional `Prefer: create-if-missing`.
async fn send(
    sb: &Sandbox,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    create_if_missing: bool,
) -> Answer {
    let url = if path.starts_with("https://") {
        path.to_string()
    } else {
        sb.url(path)
    };
    let mut request = sb.client.request(method, url).bearer_auth(token);
    if create_if_missing {
        request = request.header("Prefer", "create-if-missing");
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request).await
}

struct Graph {
    sb: Sandbox,
    admin: String,
}

impl Graph {
    async fn new() -> Graph {
        Graph::on(sandbox().await)
    }

    fn on(sb: Sandbox) -> Graph {
        let admin = graph_token(&sb, ADMIN_CLIENT_ID);
        Graph { sb, admin }
    }

    async fn get(&self, path: &str) -> Answer {
        send(&self.sb, &self.admin, Method::GET, path, None, false).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        send(&self.sb, &self.admin, Method::POST, path, Some(body), false).await
    }

    async fn patch(&self, path: &str, body: Value) -> Answer {
        send(
            &self.sb,
            &self.admin,
            Method::PATCH,
            path,
            Some(body),
            false,
        )
        .await
    }

    async fn upsert(&self, path: &str, body: Value) -> Answer {
        send(&self.sb, &self.admin, Method::PATCH, path, Some(body), true).await
    }

    async fn delete(&self, path: &str) -> Answer {
        send(&self.sb, &self.admin, Method::DELETE, path, None, false).await
    }

    /// Creates an application (expects 201) and returns its body.
    async fn application(&self, name: &str) -> Value {
        let answer = self
            .post("/v1.0/applications", json!({ "displayName": name }))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }

    /// Follows `@odata.nextLink` to the end: (items, pages).
    async fn list_all(&self, path: &str) -> (Vec<Value>, usize) {
        let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(path.to_string()));
        while let Some(url) = next {
            let answer = self.get(&url).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            assert!(
                answer.body["@odata.context"]
                    .as_str()
                    .unwrap()
                    .contains("/v1.0/$metadata#"),
                "{}",
                answer.body
            );
            pages += 1;
            items.extend(answer.body["value"].as_array().cloned().unwrap_or_default());
            next = answer.body["@odata.nextLink"].as_str().map(String::from);
        }
        (items, pages)
    }
}

fn fic(name: &str, subject: &str) -> Value {
    json!({ "name": name, "issuer": ISSUER, "subject": subject, "audiences": [TOKEN_EXCHANGE] })
}

fn is_guid(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|v| uuid::Uuid::try_parse(v).is_ok())
}

/// The Graph error envelope: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
fn assert_graph_error(answer: &Answer, status: StatusCode, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.code(), code, "{}", answer.body);
    assert!(
        answer.body["error"]["message"].is_string(),
        "{}",
        answer.body
    );
    let inner = &answer.body["error"]["innerError"];
    for field in ["date", "request-id", "client-request-id"] {
        assert!(inner[field].is_string(), "{field}: {}", answer.body);
    }
    assert_eq!(
        answer.header("request-id"),
        inner["request-id"].as_str(),
        "the header and the body carry the same request id"
    );
}

#[tokio::test]
async fn applications_are_created_read_listed_updated_and_deleted() {
    let g = Graph::new().await;
    let created = g
        .post(
            "/v1.0/applications",
            json!({ "displayName": "orders-api", "tags": ["wiform"] }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // application-post-applications.md: 201 with id, appId, displayName, createdDateTime, signInAudience.
    let app = &created.body;
    assert!(is_guid(&app["id"]) && is_guid(&app["appId"]), "{app}");
    assert_ne!(app["id"], app["appId"]);
    assert_eq!(app["displayName"], "orders-api");
    assert_eq!(app["tags"], json!(["wiform"]));
    assert_eq!(app["signInAudience"], "AzureADandPersonalMicrosoftAccount");
    assert!(app["createdDateTime"].as_str().unwrap().ends_with('Z'));
    assert!(app["deletedDateTime"].is_null());
    assert!(
        app["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/v1.0/$metadata#applications/$entity")
    );
    assert!(created.header("location").is_some());
    let (id, app_id) = (
        app["id"].as_str().unwrap().to_string(),
        app["appId"].as_str().unwrap().to_string(),
    );

    let by_id = g.get(&format!("/v1.0/applications/{id}")).await;
    assert_eq!(by_id.status, StatusCode::OK);
    assert_eq!(by_id.body["appId"], app_id.as_str());
    let by_app_id = g
        .get(&format!("/v1.0/applications(appId='{app_id}')"))
        .await;
    assert_eq!(by_app_id.status, StatusCode::OK, "{}", by_app_id.body);
    assert_eq!(by_app_id.body["id"], id.as_str());

    let filtered = g
        .get(&format!("/v1.0/applications?$filter=appId eq '{app_id}'"))
        .await;
    assert_eq!(filtered.status, StatusCode::OK, "{}", filtered.body);
    assert_eq!(filtered.body["value"].as_array().unwrap().len(), 1);
    assert!(
        filtered.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#applications")
    );
    // Directory string comparisons ignore case.
    let by_name = g
        .get("/v1.0/applications?$filter=displayName eq 'ORDERS-API'")
        .await;
    assert_eq!(by_name.body["value"][0]["id"], id.as_str());
    let selected = g
        .get(&format!("/v1.0/applications/{id}?$select=id,appId"))
        .await;
    assert_eq!(
        selected.body.as_object().unwrap().len(),
        3,
        "id, appId and @odata.context: {}",
        selected.body
    );

    let patched = g
        .patch(
            &format!("/v1.0/applications/{id}"),
            json!({ "displayName": "orders-api-2", "description": "managed by wiform" }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT, "{}", patched.body);
    let after = g.get(&format!("/v1.0/applications/{id}")).await;
    assert_eq!(after.body["displayName"], "orders-api-2");
    assert_eq!(after.body["description"], "managed by wiform");
    assert_eq!(
        after.body["tags"],
        json!(["wiform"]),
        "PATCH keeps the rest"
    );

    let deleted = g.delete(&format!("/v1.0/applications/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = g.get(&format!("/v1.0/applications/{id}")).await;
    assert_graph_error(&gone, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    assert_eq!(
        gone.body["error"]["message"],
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        )
    );
    let again = g.delete(&format!("/v1.0/applications/{id}")).await;
    assert_graph_error(&again, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
}

#[tokio::test]
async fn application_lists_page_with_odata_next_link() {
    let g = Graph::new().await;
    for i in 0..7 {
        g.application(&format!("app-{i}")).await;
    }
    // Seven plus the sandbox's two built-in clients, five to a page.
    let (items, pages) = g.list_all("/v1.0/applications").await;
    assert_eq!(items.len(), 9);
    assert_eq!(pages, 2);
    let first = g.get("/v1.0/applications?$top=2").await;
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("{}/v1.0/applications?", g.sb.running.base_url())),
        "{next}"
    );
    let (rest, _) = g.list_all(next).await;
    assert_eq!(rest.len(), 7);
    let none = g
        .get("/v1.0/applications?$filter=displayName eq 'nothing'")
        .await;
    assert_eq!(none.body["value"], json!([]));
    assert!(none.body.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn applications_upsert_by_unique_name() {
    let g = Graph::new().await;
    let path = "/v1.0/applications(uniqueName='orders-api')";
    // application-upsert.md: 201 when created, 204 when updated, 404 without the Prefer header.
    let missing = g.patch(path, json!({ "displayName": "orders" })).await;
    assert_graph_error(&missing, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let created = g.upsert(path, json!({ "displayName": "orders" })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["uniqueName"], "orders-api");
    let updated = g.upsert(path, json!({ "displayName": "orders 2" })).await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT, "{}", updated.body);
    let read = g.get(path).await;
    assert_eq!(read.body["displayName"], "orders 2");
    assert_eq!(read.body["id"], created.body["id"]);
    let clash = g
        .post(
            "/v1.0/applications",
            json!({ "displayName": "x", "uniqueName": "ORDERS-API" }),
        )
        .await;
    assert_graph_error(
        &clash,
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
    );
}

#[tokio::test]
async fn bad_requests_get_graphs_errors() {
    let g = Graph::new().await;
    let unknown = uuid::Uuid::new_v4();
    assert_graph_error(
        &g.get(&format!("/v1.0/applications/{unknown}")).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert_graph_error(
        &g.get(&format!("/v1.0/applications(appId='{unknown}')"))
            .await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    let not_guid = g.get("/v1.0/applications/not-a-guid").await;
    assert_graph_error(&not_guid, StatusCode::BAD_REQUEST, "Request_BadRequest");
    assert_eq!(
        not_guid.body["error"]["message"],
        "Invalid object identifier 'not-a-guid'."
    );

    let response =
        g.sb.client
            .post(g.sb.url("/v1.0/applications"))
            .bearer_auth(&g.admin)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");

    for (body, code) in [
        (json!({}), "Request_BadRequest"),
        (json!([]), "BadRequest"),
        (json!({ "displayName": 42 }), "Request_BadRequest"),
        (json!({ "displayName": "" }), "Request_BadRequest"),
        (
            json!({ "displayName": "x", "signInAudience": "Everyone" }),
            "Request_BadRequest",
        ),
        (json!({ "displayName": "x", "bogus": true }), "BadRequest"),
    ] {
        let answer = g.post("/v1.0/applications", body.clone()).await;
        assert_graph_error(&answer, StatusCode::BAD_REQUEST, code);
    }
    assert_graph_error(
        &g.get("/v1.0/widgets").await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    assert_graph_error(
        &g.get("/v1.0/applications?$filter=notes eq 'x'").await,
        StatusCode::BAD_REQUEST,
        "Request_UnsupportedQuery",
    );
    assert_graph_error(
        &g.get("/v1.0/applications?$filter=startswith(displayName,'a')")
            .await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );
    let put = send(
        &g.sb,
        &g.admin,
        Method::PUT,
        "/v1.0/applications",
        Some(json!({})),
        false,
    )
    .await;
    assert_graph_error(&put, StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest");
}

#[tokio::test]
async fn the_reader_may_read_but_not_write_and_tokens_are_required() {
    let g = Graph::new().await;
    let reader = graph_token(&g.sb, READER_CLIENT_ID);
    let list = send(
        &g.sb,
        &reader,
        Method::GET,
        "/v1.0/applications",
        None,
        false,
    )
    .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let write = send(
        &g.sb,
        &reader,
        Method::POST,
        "/v1.0/applications",
        Some(json!({ "displayName": "x" })),
        false,
    )
    .await;
    assert_graph_error(&write, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_eq!(
        write.body["error"]["message"],
        "Insufficient privileges to complete the operation."
    );

    let anonymous =
        g.sb.client
            .get(g.sb.url("/v1.0/applications"))
            .send()
            .await
            .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    // An ARM token is for another audience.
    let arm = send(
        &g.sb,
        &g.sb.admin_token,
        Method::GET,
        "/v1.0/applications",
        None,
        false,
    )
    .await;
    assert_graph_error(&arm, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
}

#[tokio::test]
async fn service_principals_are_created_once_per_application() {
    let g = Graph::new().await;
    let app = g.application("billing").await;
    let app_id = app["appId"].as_str().unwrap();
    let created = g
        .post("/v1.0/servicePrincipals", json!({ "appId": app_id }))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // serviceprincipal-post-serviceprincipals.md.
    let sp = &created.body;
    assert!(is_guid(&sp["id"]));
    assert_eq!(sp["appId"], app_id);
    assert_eq!(sp["displayName"], "billing");
    assert_eq!(sp["servicePrincipalType"], "Application");
    assert_eq!(sp["accountEnabled"], true);
    assert!(
        sp["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("#servicePrincipals/$entity")
    );
    let sp_id = sp["id"].as_str().unwrap();

    let twice = g
        .post("/v1.0/servicePrincipals", json!({ "appId": app_id }))
        .await;
    assert_graph_error(
        &twice,
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
    );

    let by_id = g.get(&format!("/v1.0/servicePrincipals/{sp_id}")).await;
    assert_eq!(by_id.status, StatusCode::OK);
    assert_eq!(by_id.body["appId"], app_id);
    let by_app_id = g
        .get(&format!("/v1.0/servicePrincipals(appId='{app_id}')"))
        .await;
    assert_eq!(by_app_id.body["id"], sp_id);
    let filtered = g
        .get(&format!(
            "/v1.0/servicePrincipals?$filter=appId eq '{app_id}'"
        ))
        .await;
    assert_eq!(filtered.body["value"].as_array().unwrap().len(), 1);
    let by_name = g
        .get(&format!(
            "/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(x:x eq '{app_id}')"
        ))
        .await;
    assert_eq!(by_name.body["value"][0]["id"], sp_id, "{}", by_name.body);
    assert_graph_error(
        &g.get(&format!("/v1.0/servicePrincipals/{}", uuid::Uuid::new_v4()))
            .await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );

    // A managed identity's principal is in the directory too.
    g.sb.resource_group("rg").await;
    let identity = g.sb.identity("rg", "id-graph").await;
    let managed = g
        .get("/v1.0/servicePrincipals?$filter=servicePrincipalType eq 'ManagedIdentity'")
        .await;
    assert_eq!(
        managed.body["value"][0]["id"],
        identity["properties"]["principalId"]
    );

    // An appId that is no application's.
    let nobody = g
        .post(
            "/v1.0/servicePrincipals",
            json!({ "appId": uuid::Uuid::new_v4().to_string() }),
        )
        .await;
    assert_graph_error(&nobody, StatusCode::BAD_REQUEST, "Request_BadRequest");
    assert_eq!(
        nobody.body["error"]["details"][0]["code"],
        "NoBackingApplicationObject"
    );

    // Deleting the application takes its service principal with it.
    let deleted = g
        .delete(&format!("/v1.0/applications(appId='{app_id}')"))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_graph_error(
        &g.get(&format!("/v1.0/servicePrincipals/{sp_id}")).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
}

#[tokio::test]
async fn a_new_application_has_no_service_principal_path_during_replication() {
    let g = Graph::on(
        sandbox_with_faults(Faults {
            replication_delay_ms: 400,
            ..Faults::default()
        })
        .await,
    );
    let app = g.application("fresh").await;
    let app_id = app["appId"].as_str().unwrap();
    let early = g
        .post("/v1.0/servicePrincipals", json!({ "appId": app_id }))
        .await;
    assert_graph_error(&early, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let message = format!(
        "The appId '{app_id}' of the service principal does not reference a valid application object."
    );
    assert_eq!(early.body["error"]["message"], message.as_str());
    assert_eq!(
        early.body["error"]["details"],
        json!([{ "code": "NoBackingApplicationObject", "message": message, "target": "appId" }])
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let later = g
        .post("/v1.0/servicePrincipals", json!({ "appId": app_id }))
        .await;
    assert_eq!(later.status, StatusCode::CREATED, "{}", later.body);
}

#[tokio::test]
async fn federated_credentials_of_an_application() {
    let g = Graph::new().await;
    let app = g.application("wi-app").await;
    let (id, app_id) = (app["id"].as_str().unwrap(), app["appId"].as_str().unwrap());
    let fics = format!("/v1.0/applications/{id}/federatedIdentityCredentials");

    let created = g
        .post(&fics, fic("orders", "system:serviceaccount:orders:api"))
        .await;
    // application-post-federatedidentitycredentials.md: 201, the body adds id.
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let body = &created.body;
    assert!(is_guid(&body["id"]));
    assert_eq!(body["name"], "orders");
    assert_eq!(body["issuer"], ISSUER);
    assert_eq!(body["subject"], "system:serviceaccount:orders:api");
    assert_eq!(body["audiences"], json!([TOKEN_EXCHANGE]));
    assert!(body["description"].is_null());
    assert!(
        body["@odata.context"].as_str().unwrap().ends_with(&format!(
            "#applications('{id}')/federatedIdentityCredentials/$entity"
        )),
        "{body}"
    );
    let fic_id = body["id"].as_str().unwrap();

    let listed = g.get(&fics).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 1);
    let via_app_id = g
        .get(&format!(
            "/v1.0/applications(appId='{app_id}')/federatedIdentityCredentials"
        ))
        .await;
    assert_eq!(via_app_id.body["value"][0]["id"], fic_id);
    let by_subject = g
        .get(&format!(
            "{fics}?$filter=subject eq 'system:serviceaccount:orders:api'"
        ))
        .await;
    assert_eq!(by_subject.body["value"].as_array().unwrap().len(), 1);
    for path in [
        format!("{fics}/{fic_id}"),
        format!("{fics}/orders"),
        format!("/v1.0/applications/{id}/federatedIdentityCredentials(name='orders')"),
    ] {
        let one = g.get(&path).await;
        assert_eq!(one.status, StatusCode::OK, "{path}: {}", one.body);
        assert_eq!(one.body["id"], fic_id);
    }

    // federatedidentitycredential-update.md: 204; the name is immutable.
    let updated = g
        .patch(
            &format!("{fics}/{fic_id}"),
            json!({ "subject": "system:serviceaccount:orders:worker", "description": "worker" }),
        )
        .await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT, "{}", updated.body);
    let read = g.get(&format!("{fics}/orders")).await;
    assert_eq!(read.body["subject"], "system:serviceaccount:orders:worker");
    assert_eq!(read.body["description"], "worker");
    let renamed = g
        .patch(&format!("{fics}/orders"), json!({ "name": "other" }))
        .await;
    assert_graph_error(&renamed, StatusCode::BAD_REQUEST, "Request_BadRequest");

    // federatedidentitycredential-upsert.md: 201 created, 204 updated; without the Prefer
    // header a missing one is 404.
    let upsert_path =
        format!("/v1.0/applications/{id}/federatedIdentityCredentials(name='github')");
    let github = json!({ "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:contoso/orders:ref:refs/heads/main", "audiences": [TOKEN_EXCHANGE] });
    let plain = g.patch(&upsert_path, github.clone()).await;
    assert_graph_error(&plain, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let first = g.upsert(&upsert_path, github.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["name"], "github");
    let second = g.upsert(&upsert_path, github).await;
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{}", second.body);
    assert_eq!(
        g.get(&fics).await.body["value"].as_array().unwrap().len(),
        2
    );

    let deleted = g.delete(&format!("{fics}/github")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_graph_error(
        &g.get(&format!("{fics}/github")).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert_graph_error(
        &g.delete(&format!("{fics}/github")).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
}

#[tokio::test]
async fn federated_credentials_follow_the_documented_limits() {
    let g = Graph::new().await;
    let app = g.application("limits").await;
    let fics = format!(
        "/v1.0/applications/{}/federatedIdentityCredentials",
        app["id"].as_str().unwrap()
    );
    let first = g.post(&fics, fic("fic-0", "subject-0")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);

    // (issuer, subject) unique on the app: the body Graph sends.
    let same_pair = g.post(&fics, fic("fic-other", "subject-0")).await;
    assert_graph_error(
        &same_pair,
        StatusCode::BAD_REQUEST,
        "InvalidFederatedIdentityCredentialValue",
    );
    assert!(
        same_pair.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(
                "The combination of issuer and subject must be unique for the application."
            )
    );
    let same_name = g.post(&fics, fic("FIC-0", "subject-x")).await;
    assert_graph_error(
        &same_name,
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
    );

    let mut two_audiences = fic("fic-a", "s-a");
    two_audiences["audiences"] = json!([TOKEN_EXCHANGE, "api://other"]);
    let mut no_audience = fic("fic-b", "s-b");
    no_audience["audiences"] = json!([]);
    let mut http_issuer = fic("fic-c", "s-c");
    http_issuer["issuer"] = json!("http://oidc.example.com");
    let mut long_subject = fic("fic-d", "s");
    long_subject["subject"] = json!("s".repeat(601));
    let mut no_subject = fic("fic-e", "s");
    no_subject.as_object_mut().unwrap().remove("subject");
    let mut extra = fic("fic-f", "s-f");
    extra["claimsMatchingExpression"] = json!({ "value": "x", "languageVersion": 1 });
    for (body, message) in [
        (
            two_audiences,
            Some("Federated identity credentials must have exactly one audience."),
        ),
        (
            no_audience,
            Some("Federated identity credentials must have exactly one audience."),
        ),
        (
            fic("a b", "s-g"),
            Some("Federated Identity Credential name 'a b' is invalid."),
        ),
        (
            fic("ab", "s-h"),
            Some("Federated Identity Credential name 'ab' is invalid."),
        ),
        (
            no_subject,
            Some("Federated Identity Credential from HTTP body has empty properties"),
        ),
        (http_issuer, None),
        (long_subject, None),
    ] {
        let answer = g.post(&fics, body.clone()).await;
        assert_graph_error(&answer, StatusCode::BAD_REQUEST, "Request_BadRequest");
        if let Some(message) = message {
            assert_eq!(answer.body["error"]["message"], message, "{body}");
        }
    }
    assert_graph_error(
        &g.post(&fics, extra).await,
        StatusCode::BAD_REQUEST,
        "BadRequest",
    );

    // At most 20 per application.
    for i in 1..20 {
        let answer = g
            .post(&fics, fic(&format!("fic-{i}"), &format!("subject-{i}")))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{i}: {}", answer.body);
    }
    let over = g.post(&fics, fic("fic-20", "subject-20")).await;
    assert_graph_error(&over, StatusCode::BAD_REQUEST, "Request_BadRequest");
    let (items, pages) = g.list_all(&fics).await;
    assert_eq!((items.len(), pages), (20, 4), "paged five at a time");
}

#[tokio::test]
async fn the_reader_cannot_change_federated_credentials() {
    let g = Graph::new().await;
    let app = g.application("guarded").await;
    let fics = format!(
        "/v1.0/applications/{}/federatedIdentityCredentials",
        app["id"].as_str().unwrap()
    );
    let reader = graph_token(&g.sb, READER_CLIENT_ID);
    let denied = send(
        &g.sb,
        &reader,
        Method::POST,
        &fics,
        Some(fic("fic-r", "s")),
        false,
    )
    .await;
    assert_graph_error(
        &denied,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    let read = send(&g.sb, &reader, Method::GET, &fics, None, false).await;
    assert_eq!(read.status, StatusCode::OK);
}

#[tokio::test]
async fn odd_paths_are_refused_without_a_panic() {
    let g = Graph::new().await;
    let app = g.application("odd").await;
    let id = app["id"].as_str().unwrap();
    for path in [
        "/v1.0",
        "/v1.0/applications(",
        "/v1.0/applications()",
        "/v1.0/(x)",
        "/v1.0/applications('')",
        "/v1.0/applications(appId=nope)",
        "/v1.0/applications(displayName='x')",
        "/v1.0/applications(name='a'b')",
        "/v1.0/applications/%E2%9C%93(x)",
        "/v1.0/servicePrincipals(appId='x')/owners",
        "/v1.0/servicePrincipals(foo='x')",
        "/v1.0/servicePrincipals/not-a-guid",
        &format!("/v1.0/applications/{id}/owners"),
        &format!("/v1.0/applications/{id}/federatedIdentityCredentials(id='x')"),
        &format!("/v1.0/applications/{id}/federatedIdentityCredentials/a/b"),
        &format!("/v1.0/applications/{id}/federatedIdentityCredentials?$filter=x eq"),
    ] {
        let answer = g.get(path).await;
        assert!(answer.status.is_client_error(), "{path}: {}", answer.status);
        assert!(
            answer.body["error"]["code"].is_string(),
            "{path}: {}",
            answer.body
        );
    }
}
