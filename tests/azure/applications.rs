//! Entra applications, their service principals and federated credentials against the sandbox's
//! Microsoft Graph: idempotent upserts by uniqueName, observation by one filtered list, the
//! replication delay of a new application, ownership, paging, and a Reader's 403.

use reqwest::Method;
use serde_json::{Value, json};
use wiform::error::Explain;
use wiform::ownership::Owner;
use wiform::providers::Deletion;
use wiform::providers::azure::applications::{
    DesiredApplication, DesiredApplicationCredential, LiveApplication, Upserted,
};
use wiform::providers::azure::client::{Event, Request};
use wiform::providers::azure::{AzureErrorKind, AzureProvider};
use wiform_sandbox::Faults;

use crate::support::{Sandbox, TENANT, sandbox};

const ISSUER: &str = "https://oidc.example.com/cluster/";
const EXCHANGE: &str = "api://AzureADTokenExchange";

fn provider(sbx: &Sandbox) -> AzureProvider {
    AzureProvider::new(sbx.admin.clone(), TENANT)
}

fn desired(stack: &str, key: &str, display_name: &str) -> DesiredApplication {
    DesiredApplication {
        records: Default::default(),
        stack: stack.into(),
        key: key.into(),
        display_name: display_name.into(),
    }
}

fn credential(name: &str, subject: &str) -> DesiredApplicationCredential {
    DesiredApplicationCredential {
        name: name.into(),
        issuer: ISSUER.into(),
        subject: subject.into(),
        audiences: vec![EXCHANGE.into()],
        description: None,
    }
}

/// (method, path) of each Graph request since the last clear.
fn calls(sbx: &Sandbox) -> Vec<(String, String, u16)> {
    sbx.api_requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.status))
        .collect()
}

/// The sandbox's applications with this display name, read with a raw request.
async fn applications_named(sbx: &Sandbox, name: &str) -> Vec<Value> {
    sbx.admin
        .list(&Request::graph(
            Method::GET,
            format!("v1.0/applications?$filter=displayName eq '{name}'"),
        ))
        .await
        .unwrap()
}

/// An application made by hand (no marker), without a service principal.
async fn unowned_application(sbx: &Sandbox, body: Value) -> Value {
    sbx.admin
        .send(&Request::graph(Method::POST, "v1.0/applications").json(body))
        .await
        .unwrap()
        .value()
}

async fn service_principal_exists(sbx: &Sandbox, app_id: &str) -> bool {
    sbx.admin
        .send_optional(&Request::graph(
            Method::GET,
            format!("v1.0/servicePrincipals(appId='{app_id}')"),
        ))
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn applications_are_created_read_back_updated_and_deleted() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    let legacy = desired("orders", "legacy", "Legacy App");

    sbx.clear_log();
    let created = azure.put_application(&legacy, None).await.unwrap();
    // One upsert (201) and one service principal (201).
    assert_eq!(
        calls(&sbx),
        vec![
            (
                "PATCH".into(),
                "/v1.0/applications(uniqueName='wiform.orders.legacy')".into(),
                201
            ),
            ("POST".into(), "/v1.0/servicePrincipals".into(), 201),
        ]
    );
    assert!(created.owner.is_stack("orders"));
    assert!(created.has_unique_name("wiform.orders.legacy"));
    let principal = created
        .service_principal_id
        .clone()
        .expect("a principal id");
    assert!(uuid::Uuid::try_parse(&principal).is_ok());
    assert!(service_principal_exists(&sbx, &created.app_id).await);

    // Read back by one list (plus the service principal lookup).
    sbx.clear_log();
    let listed = azure.list_stack_applications("orders").await.unwrap();
    assert_eq!(listed, vec![created.clone()]);
    assert_eq!(sbx.api_requests().len(), 2);
    assert_eq!(
        listed[0].owner.marker().and_then(|m| m.spec_hash.clone()),
        Some(legacy.spec_hash())
    );
    assert_eq!(listed[0].live_spec_hash(), legacy.spec_hash());

    // A repeat that knows nothing (a crash after the first attempt): no second application.
    sbx.clear_log();
    let again = azure.put_application(&legacy, None).await.unwrap();
    assert_eq!(
        calls(&sbx),
        vec![
            (
                "PATCH".into(),
                "/v1.0/applications(uniqueName='wiform.orders.legacy')".into(),
                204
            ),
            (
                "GET".into(),
                "/v1.0/applications(uniqueName='wiform.orders.legacy')".into(),
                200
            ),
            // The service principal exists: 409, then it is read and adopted.
            ("POST".into(), "/v1.0/servicePrincipals".into(), 409),
            (
                "GET".into(),
                format!("/v1.0/servicePrincipals(appId='{}')", created.app_id),
                200
            ),
        ]
    );
    assert_eq!(again.app_id, created.app_id);
    assert_eq!(again.object_id, created.object_id);
    assert_eq!(again.service_principal_id, created.service_principal_id);
    assert_eq!(applications_named(&sbx, "Legacy App").await.len(), 1);

    // A repeat with the observed application: one PATCH, nothing else.
    sbx.clear_log();
    let same = azure
        .put_application(&legacy, Some(&listed[0]))
        .await
        .unwrap();
    assert_eq!(same, created);
    assert_eq!(
        calls(&sbx),
        vec![(
            "PATCH".into(),
            "/v1.0/applications(uniqueName='wiform.orders.legacy')".into(),
            204
        )]
    );

    // Update: a new display name.
    let renamed = desired("orders", "legacy", "Legacy App v2");
    sbx.clear_log();
    let updated = azure
        .put_application(&renamed, Some(&listed[0]))
        .await
        .unwrap();
    assert_eq!(sbx.api_requests().len(), 1);
    assert_eq!(sbx.api_requests()[0].method, "PATCH");
    assert_eq!(updated.display_name, "Legacy App v2");
    let listed = azure.list_stack_applications("orders").await.unwrap();
    assert_eq!(listed, vec![updated.clone()]);
    assert_eq!(listed[0].display_name, "Legacy App v2");
    assert_eq!(listed[0].app_id, created.app_id);
    assert_eq!(
        listed[0].owner.marker().and_then(|m| m.spec_hash.clone()),
        Some(renamed.spec_hash())
    );
    assert_ne!(renamed.spec_hash(), legacy.spec_hash());

    // Delete: the application and its service principal go; a repeat finds nothing.
    assert_eq!(
        azure
            .delete_application("orders", &listed[0])
            .await
            .unwrap(),
        Deletion::Deleted
    );
    assert!(
        azure
            .list_stack_applications("orders")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!service_principal_exists(&sbx, &created.app_id).await);
    assert_eq!(
        azure
            .delete_application("orders", &listed[0])
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
}

#[tokio::test]
async fn what_the_stack_does_not_own_is_never_deleted_or_taken_over() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    let body = unowned_application(&sbx, json!({ "displayName": "By Hand" })).await;
    let found = azure
        .find_applications_by_display_name(&["By Hand".to_string()])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    let by_hand = &found[0];
    assert_eq!(by_hand.owner, Owner::Unowned);
    assert_eq!(by_hand.object_id, body["id"].as_str().unwrap());

    sbx.clear_log();
    let refused = azure
        .delete_application("orders", by_hand)
        .await
        .unwrap_err();
    assert!(matches!(refused.kind(), AzureErrorKind::Conflict { .. }));
    assert!(
        refused
            .to_string()
            .contains("not owned by stack \"orders\"")
    );
    assert!(sbx.api_requests().is_empty(), "no request was sent");

    // Another stack's application: neither deleted nor updated.
    let theirs = azure
        .put_application(&desired("billing", "api", "Billing"), None)
        .await
        .unwrap();
    sbx.clear_log();
    let refused = azure
        .delete_application("orders", &theirs)
        .await
        .unwrap_err();
    assert!(matches!(refused.kind(), AzureErrorKind::Conflict { .. }));
    let refused = azure
        .put_application(&desired("orders", "api", "Billing"), Some(&theirs))
        .await
        .unwrap_err();
    assert!(matches!(refused.kind(), AzureErrorKind::Conflict { .. }));
    assert!(refused.to_string().contains("belongs to stack \"billing\""));
    assert!(sbx.api_requests().is_empty(), "no request was sent");
    assert!(
        azure
            .list_stack_applications("orders")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_stack_list_holds_only_the_stack_and_unowned_apps_can_be_adopted() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    let a = azure
        .put_application(&desired("orders", "a", "Orders A"), None)
        .await
        .unwrap();
    let b = azure
        .put_application(&desired("orders", "b", "Orders B"), None)
        .await
        .unwrap();
    azure
        .put_application(&desired("billing", "a", "Billing A"), None)
        .await
        .unwrap();
    let by_hand = unowned_application(
        &sbx,
        json!({ "displayName": "Orders C", "tags": ["HideApp"] }),
    )
    .await;

    let mut listed = azure.list_stack_applications("orders").await.unwrap();
    listed.sort_by(|x, y| x.display_name.cmp(&y.display_name));
    assert_eq!(listed, vec![a, b]);

    // Adoption: the planner finds the unowned application by display name...
    let found = azure
        .find_applications_by_display_name(&[
            "Orders C".to_string(),
            "orders c".to_string(),
            "Nothing".to_string(),
        ])
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].owner, Owner::Unowned);
    assert_eq!(found[0].service_principal_id, None);
    // ...and puts the desired state onto it: the same object, now marked, with its own tag kept,
    // a uniqueName and a service principal.
    let c = desired("orders", "c", "Orders C");
    sbx.clear_log();
    let adopted = azure.put_application(&c, Some(&found[0])).await.unwrap();
    assert_eq!(
        calls(&sbx)
            .into_iter()
            .map(|(m, p, s)| format!("{m} {p} {s}"))
            .collect::<Vec<_>>(),
        vec![
            format!("PATCH /v1.0/applications/{} 204", found[0].object_id),
            "POST /v1.0/servicePrincipals 201".to_string(),
        ]
    );
    assert_eq!(adopted.object_id, by_hand["id"].as_str().unwrap());
    assert!(adopted.owner.is_stack("orders"));
    assert!(adopted.tags.contains(&"HideApp".to_string()));
    let listed = azure.list_stack_applications("orders").await.unwrap();
    let read_back = listed
        .iter()
        .find(|l| l.object_id == adopted.object_id)
        .expect("the adopted application is the stack's now");
    assert_eq!(read_back, &adopted);
    assert!(read_back.has_unique_name(&c.unique_name()));
    // Putting again addresses it by its new uniqueName: still one application.
    azure.put_application(&c, None).await.unwrap();
    assert_eq!(applications_named(&sbx, "Orders C").await.len(), 1);
}

#[tokio::test]
async fn an_adoption_that_collides_on_unique_name_is_a_conflict() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    let wanted = desired("orders", "api", "Orders API");
    // Someone holds the uniqueName wiform would give the application, without the marker.
    unowned_application(
        &sbx,
        json!({ "displayName": "Squatter", "uniqueName": wanted.unique_name() }),
    )
    .await;
    unowned_application(&sbx, json!({ "displayName": "Orders API" })).await;
    let found = azure
        .find_applications_by_display_name(&["Orders API".to_string()])
        .await
        .unwrap();
    let error = azure
        .put_application(&wanted, Some(&found[0]))
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind(), AzureErrorKind::Conflict { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains("wiform.orders.api") && text.contains("request id"),
        "{text}"
    );

    // An application whose uniqueName is another one cannot be adopted: refused up front.
    let squatter = azure
        .find_applications_by_display_name(&["Squatter".to_string()])
        .await
        .unwrap();
    sbx.clear_log();
    let error = azure
        .put_application(&desired("orders", "other", "Squatter"), Some(&squatter[0]))
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), AzureErrorKind::Conflict { .. }));
    assert!(sbx.api_requests().is_empty());
}

#[tokio::test]
async fn a_new_application_is_awaited_until_it_replicates() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    sbx.set_faults(Faults {
        replication_delay_ms: 1500,
        ..Default::default()
    });
    let started = std::time::Instant::now();
    let live = azure
        .put_application(&desired("orders", "slow", "Slow App"), None)
        .await
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(1400));
    assert!(live.service_principal_id.is_some());
    let refused_posts = sbx
        .api_requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1.0/servicePrincipals" && r.status == 400)
        .count();
    assert!(refused_posts >= 1, "{:?}", calls(&sbx));
    let waited = sbx.events().into_iter().any(|e| {
        matches!(e, Event::Waiting { ref waiting_for, ref action, .. }
            if waiting_for.contains("Slow App") && action.contains("Slow App"))
    });
    assert!(waited, "{:?}", sbx.events());
}

#[tokio::test]
async fn application_credentials_are_upserted_listed_and_deleted() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    let app = azure
        .put_application(&desired("orders", "ci", "CI"), None)
        .await
        .unwrap();
    let object_id = app.object_id.as_str();

    for i in 0..12 {
        let put = azure
            .put_application_credential(
                object_id,
                &credential(&format!("fic-{i:02}"), &format!("repo:contoso/app:env:{i}")),
            )
            .await
            .unwrap();
        assert_eq!(put, Upserted::Created);
    }
    sbx.clear_log();
    let listed = azure.list_application_credentials(object_id).await.unwrap();
    assert_eq!(listed.len(), 12);
    // Pages of 5: three requests.
    assert_eq!(sbx.api_requests().len(), 3);
    let first = listed.iter().find(|c| c.name == "fic-00").unwrap();
    assert!(first.is_up_to_date(&credential("fic-00", "repo:contoso/app:env:0")));

    // Repeat: nothing changes.
    let same = credential("fic-00", "repo:contoso/app:env:0");
    assert_eq!(
        azure
            .put_application_credential(object_id, &same)
            .await
            .unwrap(),
        Upserted::Updated
    );
    let after = azure.list_application_credentials(object_id).await.unwrap();
    assert_eq!(after, listed);

    // Update: a new subject and a description.
    let moved = DesiredApplicationCredential {
        description: Some("release branch".into()),
        ..credential("fic-00", "repo:contoso/app:ref:refs/heads/release")
    };
    assert_eq!(
        azure
            .put_application_credential(object_id, &moved)
            .await
            .unwrap(),
        Upserted::Updated
    );
    let after = azure.list_application_credentials(object_id).await.unwrap();
    let updated = after.iter().find(|c| c.name == "fic-00").unwrap();
    assert_eq!(updated.id, first.id);
    assert_eq!(updated.subject, "repo:contoso/app:ref:refs/heads/release");
    assert_eq!(updated.description.as_deref(), Some("release branch"));
    assert!(updated.is_up_to_date(&moved));

    // Delete by name, then by id; repeats find nothing.
    assert_eq!(
        azure
            .delete_application_credential(object_id, "fic-00")
            .await
            .unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        azure
            .delete_application_credential(object_id, "fic-00")
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
    let second = after.iter().find(|c| c.name == "fic-01").unwrap();
    assert_eq!(
        azure
            .delete_application_credential(object_id, &second.id)
            .await
            .unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        azure
            .delete_application_credential(object_id, &second.id)
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
    let left = azure.list_application_credentials(object_id).await.unwrap();
    assert_eq!(left.len(), 10);
    assert!(
        !left
            .iter()
            .any(|c| c.name == "fic-00" || c.name == "fic-01")
    );
}

#[tokio::test]
async fn a_reader_cannot_create_applications() {
    let sbx = sandbox().await;
    let reader = AzureProvider::new(sbx.reader(), TENANT);
    let error = reader
        .put_application(&desired("orders", "api", "Orders API"), None)
        .await
        .unwrap_err();
    assert!(error.is_code("Authorization_RequestDenied"), "{error:?}");
    assert_eq!(error.status(), Some(403));
    assert!(error.request_id().is_some());
    assert!(error.action().contains("Orders API"));
    let hint = error.hint().expect("a hint");
    assert!(hint.contains("Application.ReadWrite"), "{hint}");
    assert!(
        provider(&sbx)
            .list_stack_applications("orders")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn observing_a_stack_of_five_applications_with_two_credentials_each() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    sbx.clear_log();
    for i in 0..5 {
        let app = azure
            .put_application(
                &desired("orders", &format!("app-{i}"), &format!("App {i}")),
                None,
            )
            .await
            .unwrap();
        for j in 0..2 {
            azure
                .put_application_credential(
                    &app.object_id,
                    &credential(
                        &format!("fic-{j}"),
                        &format!("system:serviceaccount:ns:sa-{i}-{j}"),
                    ),
                )
                .await
                .unwrap();
        }
    }

    // Creating: per application an upsert and a service principal, then one upsert per
    // credential.
    assert_eq!(sbx.api_requests().len(), 5 * (2 + 2));

    sbx.clear_log();
    let apps: Vec<LiveApplication> = azure.list_stack_applications("orders").await.unwrap();
    assert_eq!(apps.len(), 5);
    assert!(apps.iter().all(|a| a.service_principal_id.is_some()));
    let mut credentials = 0;
    for app in &apps {
        credentials += azure
            .list_application_credentials(&app.object_id)
            .await
            .unwrap()
            .len();
    }
    assert_eq!(credentials, 10);
    let requests = sbx.api_requests();
    let count = |path: &str| requests.iter().filter(|r| r.path.ends_with(path)).count();
    // 1 list of the stack's applications, 1 service principal lookup per application (the
    // sandbox has no `in`/`or` filters), 1 credential list per application.
    assert_eq!(count("/v1.0/applications"), 1);
    assert_eq!(count("/v1.0/servicePrincipals"), 5);
    assert_eq!(count("/federatedIdentityCredentials"), 5);
    assert_eq!(requests.len(), 11);
}
