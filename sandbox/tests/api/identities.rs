//! Managed identities and federated identity credentials: shapes from the spec examples,
//! stable ids, limits, and the real 409 on concurrent writes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const ISSUER: &str = "https://oidc.example.com/cluster/";

#[tokio::test]
async fn identity_shape_matches_the_spec_example_and_ids_are_stable() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let created = sb
        .put(
            &identity_path("rg", "id-a"),
            json!({"location": "westeurope", "tags": {"k": "v"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    // The spec example IdentityCreate.json (2024-11-30).
    let example = json!({
        "id": "/subscriptions/subid/resourcegroups/rgName/providers/Microsoft.ManagedIdentity/userAssignedIdentities/identityName",
        "location": "eastus",
        "name": "identityName",
        "tags": {},
        "properties": {
            "tenantId": "b6c948ef-f6b5-4384-8354-da3a15eca969",
            "principalId": "25cc773c-7f05-40fc-a104-32d2300754ad",
            "clientId": "46c251f4-7dfe-4d8c-9a7d-4d0d2c4e4e4a",
            "isolationScope": "None"
        },
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities"
    });
    let body = &created.body;
    assert_shape(body, &example, "identity");
    assert_eq!(
        body["type"],
        "Microsoft.ManagedIdentity/userAssignedIdentities"
    );
    assert_eq!(body["tags"]["k"], "v");
    for field in ["tenantId", "principalId", "clientId"] {
        let value = body["properties"][field].as_str().unwrap();
        assert!(uuid::Uuid::try_parse(value).is_ok(), "{field} = {value}");
    }
    assert_eq!(body["properties"]["isolationScope"], "None");
    assert!(
        body["properties"].get("provisioningState").is_none(),
        "the MSI spec defines none"
    );
    assert!(
        body["id"].as_str().unwrap().contains("/resourcegroups/rg/"),
        "ARM returns lowercase resourcegroups"
    );

    let again = sb
        .put(
            &identity_path("rg", "id-a"),
            json!({"location": "westeurope"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["properties"]["clientId"],
        body["properties"]["clientId"]
    );
    assert_eq!(
        again.body["properties"]["principalId"],
        body["properties"]["principalId"]
    );

    let older = sb
        .get(&identity_path("rg", "id-a").replace(MSI, "2023-01-31"))
        .await;
    assert!(
        older.body["properties"].get("isolationScope").is_none(),
        "2023-01-31 has no isolationScope"
    );

    let patched = sb
        .call(
            Method::PATCH,
            &identity_path("rg", "id-a"),
            Some(json!({"tags": {"x": "y"}})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["tags"], json!({"x": "y"}));

    let sp = sb
        .running
        .app
        .store
        .read(|s| {
            s.service_principals
                .get(body["properties"]["principalId"].as_str().unwrap())
                .cloned()
        })
        .unwrap();
    assert_eq!(sp.service_principal_type, "ManagedIdentity");
    assert_eq!(sp.app_id, body["properties"]["clientId"].as_str().unwrap());
}

#[tokio::test]
async fn get_delete_and_lists() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    sb.resource_group("rg2").await;
    for i in 0..7 {
        sb.identity("rg", &format!("id-{i}")).await;
    }
    sb.identity("rg2", "id-other").await;
    let missing = sb.get(&identity_path("rg", "nope")).await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );
    let in_group = format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version={MSI}"
    );
    let (items, pages) = sb.list_all(&in_group).await;
    assert_eq!((items.len(), pages), (7, 2));
    let first = sb.get(&in_group).await;
    assert!(
        first.body["nextLink"]
            .as_str()
            .unwrap()
            .contains("api-version=2024-11-30"),
        "nextLink keeps api-version"
    );
    let in_subscription = format!(
        "/subscriptions/{SUB}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version={MSI}"
    );
    assert_eq!(sb.list_all(&in_subscription).await.0.len(), 8);
    assert_eq!(
        sb.delete(&identity_path("rg", "id-0")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        sb.delete(&identity_path("rg", "id-0")).await.status,
        StatusCode::NO_CONTENT
    );
    let no_group = sb
        .put(
            &identity_path("rg-none", "x1"),
            json!({"location": "westeurope"}),
        )
        .await;
    assert_eq!(
        (no_group.status, no_group.code()),
        (StatusCode::NOT_FOUND, "ResourceGroupNotFound")
    );
    let bad_name = sb
        .put(
            &identity_path("rg", "a.b"),
            json!({"location": "westeurope"}),
        )
        .await;
    assert_eq!(
        (bad_name.status, bad_name.code()),
        (StatusCode::BAD_REQUEST, "InvalidResourceName")
    );
}

#[tokio::test]
async fn federated_credential_shape_and_rules() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    sb.identity("rg", "uai").await;
    let created = sb
        .put(
            &fic_path("rg", "uai", "fic-1"),
            fic_body(ISSUER, "system:serviceaccount:ns:a"),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    // FederatedIdentityCredentialCreate.json.
    assert_eq!(
        created.body["type"],
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    );
    assert_eq!(
        created.body["properties"]["audiences"],
        json!(["api://AzureADTokenExchange"])
    );
    assert_eq!(created.body["properties"]["issuer"], ISSUER);
    let updated = sb
        .put(
            &fic_path("rg", "uai", "fic-1"),
            fic_body(ISSUER, "system:serviceaccount:ns:b"),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);

    let cases: Vec<(String, Value, &str)> = vec![
        (
            fic_path("rg", "uai", "fic-2"),
            fic_body(ISSUER, "system:serviceaccount:ns:b"),
            "Issuer and subject combination already exists",
        ),
        (
            fic_path("rg", "uai", "f"),
            fic_body(ISSUER, "s"),
            "name 'f' is invalid",
        ),
        (
            fic_path("rg", "uai", "fic-3"),
            json!({"properties": {}}),
            "empty properties",
        ),
        (
            fic_path("rg", "uai", "fic-3"),
            json!({"properties": {"issuer": ISSUER, "subject": "s", "audiences": ["a", "b"]}}),
            "exactly one audience",
        ),
        (
            fic_path("rg", "uai", "fic-3"),
            fic_body("http://insecure.example.com", "s"),
            "https",
        ),
    ];
    for (path, body, message) in cases {
        let answer = sb.put(&path, body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{message}: {}",
            answer.body
        );
        assert!(
            answer.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{}",
            answer.body
        );
    }
    let orphan = sb
        .put(&fic_path("rg", "nobody", "fic-1"), fic_body(ISSUER, "s"))
        .await;
    assert_eq!(
        (orphan.status, orphan.code()),
        (StatusCode::NOT_FOUND, "ParentResourceNotFound")
    );
    let old_version = sb
        .put(
            &fic_path("rg", "uai", "fic-9").replace(MSI, "2018-11-30"),
            fic_body(ISSUER, "s9"),
        )
        .await;
    assert_eq!(old_version.code(), "InvalidApiVersionParameter");
    assert_eq!(
        sb.delete(&fic_path("rg", "uai", "fic-1")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        sb.delete(&fic_path("rg", "uai", "fic-1")).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn at_most_twenty_credentials_and_lists_page() {
    let sb = sandbox_with(wiform_sandbox::Options {
        page_size: 5,
        fic_write_ms: 0,
        ..Default::default()
    })
    .await;
    sb.resource_group("rg").await;
    sb.identity("rg", "uai").await;
    for i in 0..20 {
        let answer = sb
            .put(
                &fic_path("rg", "uai", &format!("fic-{i:02}")),
                fic_body(ISSUER, &format!("s{i}")),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    let over = sb
        .put(&fic_path("rg", "uai", "fic-20"), fic_body(ISSUER, "s20"))
        .await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST);
    let list = format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai/federatedIdentityCredentials?api-version={MSI}"
    );
    let (items, pages) = sb.list_all(&list).await;
    assert_eq!((items.len(), pages), (20, 4));
    let top = sb.get(&format!("{list}&$top=3")).await;
    assert_eq!(top.body["value"].as_array().unwrap().len(), 3);
    assert!(top.body["nextLink"].as_str().unwrap().contains("skiptoken"));
}

#[tokio::test]
async fn concurrent_writes_on_one_identity_get_the_real_409_and_lose_nothing() {
    let sb = sandbox_with(wiform_sandbox::Options {
        fic_write_ms: 200,
        ..Default::default()
    })
    .await;
    sb.resource_group("rg").await;
    sb.identity("rg", "uai").await;
    sb.identity("rg", "other").await;
    let writes = (0..8).map(|i| {
        let path = fic_path("rg", "uai", &format!("fic-{i}"));
        let body = fic_body(ISSUER, &format!("s{i}"));
        let sb = &sb;
        async move { sb.put(&path, body).await }
    });
    // A write on another identity is not affected.
    let other_path = fic_path("rg", "other", "fic-x");
    let other = sb.put(&other_path, fic_body(ISSUER, "x"));
    let (answers, other) = tokio::join!(futures::future::join_all(writes), other);
    assert_eq!(other.status, StatusCode::CREATED);
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let conflicts: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CONFLICT)
        .collect();
    assert_eq!(created, 1, "one write holds the identity");
    assert_eq!(conflicts.len(), 7);
    for conflict in &conflicts {
        assert_eq!(
            conflict.code(),
            "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
        );
    }
    // What was accepted is stored, what was refused is not.
    let list = format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai/federatedIdentityCredentials?api-version={MSI}"
    );
    assert_eq!(sb.list_all(&list).await.0.len(), 1);
    // Written one after the other, all succeed.
    for i in 0..8 {
        let answer = sb
            .put(
                &fic_path("rg", "uai", &format!("fic-{i}")),
                fic_body(ISSUER, &format!("s{i}")),
            )
            .await;
        assert!(answer.status.is_success(), "{}", answer.body);
    }
    assert_eq!(sb.list_all(&list).await.0.len(), 8);
}
