//! Resource groups, managed identities and their federated credentials against the sandbox:
//! create, read back by list, update, delete, idempotent repeats, ownership refusals, paging,
//! per-identity write serialisation and the replication delay.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use wiform::providers::Deletion;
use wiform::providers::azure::client::{Event, Request};
use wiform::providers::azure::identities::{
    DesiredIdentity, DesiredIdentityCredential, DesiredResourceGroup, LiveIdentity,
    MSI_API_VERSION, RESOURCE_GROUPS_API_VERSION, identity_id,
};
use wiform::providers::azure::{AzureErrorKind, AzureProvider};
use wiform_sandbox::Faults;

use crate::support::{SUB, Sandbox, TENANT, sandbox};

const STACK: &str = "orders";
const ISSUER: &str = "https://oidc.example.com/cluster/";
const AUDIENCE: &str = "api://AzureADTokenExchange";

fn provider(sbx: &Sandbox) -> Arc<AzureProvider> {
    Arc::new(AzureProvider::new(sbx.admin.clone(), TENANT))
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn group(stack: &str, name: &str) -> DesiredResourceGroup {
    DesiredResourceGroup {
        stack: stack.into(),
        subscription_id: SUB.into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: tags(&[("env", "test")]),
        records: Default::default(),
    }
}

fn identity(resource_group: &str, name: &str) -> DesiredIdentity {
    DesiredIdentity {
        stack: STACK.into(),
        subscription_id: SUB.into(),
        resource_group: resource_group.into(),
        name: name.into(),
        location: "westeurope".into(),
        tags: tags(&[("team", "orders")]),
        records: Default::default(),
    }
}

fn credential(name: &str) -> DesiredIdentityCredential {
    DesiredIdentityCredential {
        name: name.into(),
        issuer: ISSUER.into(),
        subject: format!("system:serviceaccount:orders:{name}"),
        audiences: vec![AUDIENCE.into()],
    }
}

fn is_guid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok()
}

/// Methods and statuses of the ARM requests since the last clear.
fn calls(sbx: &Sandbox) -> Vec<(String, u16)> {
    sbx.api_requests()
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect()
}

/// A PUT without wiform's markers, as someone else would create the object.
async fn put_unowned(sbx: &Sandbox, path: &str) {
    sbx.admin
        .send(&Request::arm(Method::PUT, path).json(json!({"location": "westeurope"})))
        .await
        .unwrap();
}

#[tokio::test]
async fn resource_groups_are_created_read_and_deleted_only_when_owned() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    let desired = group(STACK, "rg-orders");

    let created = azure.put_resource_group(&desired).await.unwrap();
    assert_eq!(calls(&sbx), [("PUT".to_string(), 201)]);
    assert!(created.owner.is_stack(STACK));
    assert_eq!(created.recorded_hash(), Some(desired.spec_hash().as_str()));
    assert_eq!(created.spec_hash(), desired.spec_hash());
    assert_eq!(created.user_tags(), desired.tags);
    assert_eq!(created.location, "westeurope");
    assert_eq!(created.provisioning_state, "Succeeded");

    sbx.clear_log();
    let again = azure.put_resource_group(&desired).await.unwrap();
    assert_eq!(calls(&sbx), [("PUT".to_string(), 200)]);
    assert_eq!(again, created);

    // Someone else's group, and another stack's.
    put_unowned(
        &sbx,
        &format!("/subscriptions/{SUB}/resourcegroups/rg-foreign?api-version={RESOURCE_GROUPS_API_VERSION}"),
    )
    .await;
    azure
        .put_resource_group(&group("payments", "rg-payments"))
        .await
        .unwrap();

    let listed = azure.list_resource_groups(SUB).await.unwrap();
    assert_eq!(listed.len(), 3);
    let find = |name: &str| {
        listed
            .iter()
            .find(|g| g.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} listed"))
    };
    assert_eq!(find("rg-orders"), created);
    let foreign = find("rg-foreign");
    assert!(!foreign.owner.is_stack(STACK));
    let payments = find("rg-payments");
    assert!(payments.owner.is_stack("payments"));

    // Not ours: refused before any request.
    sbx.clear_log();
    for live in [&foreign, &payments] {
        let refused = azure.delete_resource_group(STACK, live).await.unwrap_err();
        assert!(
            matches!(refused.kind(), AzureErrorKind::Conflict { .. }),
            "{refused:?}"
        );
        assert!(refused.to_string().contains(&live.name), "{refused}");
    }
    assert!(sbx.api_requests().is_empty());

    // Ours: a long-running delete, polled to its end.
    let deleted = azure.delete_resource_group(STACK, &created).await.unwrap();
    assert_eq!(deleted, Deletion::Deleted);
    let log = calls(&sbx);
    assert_eq!(log[0], ("DELETE".to_string(), 202));
    assert_eq!(log.last(), Some(&("GET".to_string(), 200)));
    assert_eq!(
        azure.delete_resource_group(STACK, &created).await.unwrap(),
        Deletion::AlreadyGone
    );
    let names: Vec<String> = azure
        .list_resource_groups(SUB)
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(!names.contains(&"rg-orders".to_string()));
}

#[tokio::test]
async fn identities_are_created_updated_and_deleted_with_stable_ids() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-id"))
        .await
        .unwrap();
    let desired = identity("rg-id", "orders-api");

    sbx.clear_log();
    let created = azure.put_identity(&desired).await.unwrap();
    assert_eq!(calls(&sbx), [("PUT".to_string(), 201)]);
    assert!(is_guid(&created.client_id), "{}", created.client_id);
    assert!(is_guid(&created.principal_id), "{}", created.principal_id);
    assert_ne!(created.client_id, created.principal_id);
    assert_eq!(created.tenant_id, TENANT);
    assert_eq!(created.label(), "rg-id/orders-api");
    assert_eq!(created.key(), desired.key());
    assert!(created.owner.is_stack(STACK));
    assert_eq!(created.recorded_hash(), Some(desired.spec_hash().as_str()));
    assert_eq!(created.user_tags(), desired.tags);

    sbx.clear_log();
    let again = azure.put_identity(&desired).await.unwrap();
    assert_eq!(calls(&sbx), [("PUT".to_string(), 200)]);
    assert_eq!(again, created);

    let listed = azure.list_identities(SUB, "rg-id").await.unwrap().unwrap();
    assert_eq!(listed, vec![created.clone()]);

    // Tags only (PATCH): the outputs and the location stay.
    let mut new_tags = created.tags.clone();
    new_tags.insert("cost-center".into(), "42".into());
    sbx.clear_log();
    let patched = azure
        .update_identity_tags(&created, &new_tags)
        .await
        .unwrap();
    assert_eq!(calls(&sbx), [("PATCH".to_string(), 200)]);
    assert_eq!(patched.tags, new_tags);
    assert_eq!(patched.client_id, created.client_id);
    assert_eq!(patched.principal_id, created.principal_id);
    assert_eq!(patched.location, created.location);
    assert!(patched.owner.is_stack(STACK));
    // The tag was added outside the desired spec: the live hash no longer matches the record.
    assert_ne!(Some(patched.spec_hash().as_str()), patched.recorded_hash());

    // Someone else's identity in the same group: listed as unowned, never deleted.
    put_unowned(
        &sbx,
        &format!(
            "{}?api-version={MSI_API_VERSION}",
            identity_id(SUB, "rg-id", "hand-made")
        ),
    )
    .await;
    let listed = azure.list_identities(SUB, "rg-id").await.unwrap().unwrap();
    let foreign = listed.iter().find(|i| i.name == "hand-made").unwrap();
    assert!(!foreign.owner.is_stack(STACK));
    let other_stack = LiveIdentity {
        owner: wiform::ownership::read_azure_marker(&tags(&[("wiform-stack", "payments")])),
        ..patched.clone()
    };
    sbx.clear_log();
    for live in [foreign, &other_stack] {
        let refused = azure.delete_identity(STACK, live).await.unwrap_err();
        assert!(matches!(refused.kind(), AzureErrorKind::Conflict { .. }));
        assert!(refused.to_string().contains(&live.label()), "{refused}");
    }
    assert!(sbx.api_requests().is_empty());

    assert_eq!(
        azure.delete_identity(STACK, &patched).await.unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        azure.delete_identity(STACK, &patched).await.unwrap(),
        Deletion::AlreadyGone
    );
    let left = azure.list_identities(SUB, "rg-id").await.unwrap().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "hand-made");
}

#[tokio::test]
async fn identity_lists_page_and_say_when_the_group_is_missing() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-many"))
        .await
        .unwrap();
    for i in 0..7 {
        azure
            .put_identity(&identity("rg-many", &format!("id-{i}")))
            .await
            .unwrap();
    }

    sbx.clear_log();
    let listed = azure
        .list_identities(SUB, "rg-many")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed.len(), 7);
    // Pages of 5: two requests.
    assert_eq!(sbx.api_requests().len(), 2);
    assert!(listed.iter().all(|i| i.owner.is_stack(STACK)));

    let everywhere = azure.list_subscription_identities(SUB).await.unwrap();
    assert_eq!(everywhere.len(), 7);

    sbx.clear_log();
    assert_eq!(
        azure.list_identities(SUB, "rg-missing").await.unwrap(),
        None
    );
    assert_eq!(calls(&sbx), [("GET".to_string(), 404)]);
}

#[tokio::test]
async fn federated_credentials_are_written_listed_and_deleted() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-fic"))
        .await
        .unwrap();
    let live = azure
        .put_identity(&identity("rg-fic", "orders-api"))
        .await
        .unwrap();
    let desired = credential("prod-orders-api");

    let created = azure
        .put_identity_credential(&live.id, &desired)
        .await
        .unwrap();
    assert_eq!(created.name, desired.name);
    assert_eq!(created.issuer, ISSUER);
    assert_eq!(created.subject, desired.subject);
    assert_eq!(created.audiences, vec![AUDIENCE.to_string()]);
    assert!(created.id.to_lowercase().starts_with(&live.key()));

    sbx.clear_log();
    let again = azure
        .put_identity_credential(&live.id, &desired)
        .await
        .unwrap();
    assert_eq!(calls(&sbx), [("PUT".to_string(), 200)]);
    assert_eq!(again, created);

    let listed = azure.list_identity_credentials(&live.id).await.unwrap();
    assert_eq!(listed, vec![created.clone()]);

    // A new subject under the same name replaces it.
    let moved = DesiredIdentityCredential {
        subject: "system:serviceaccount:orders:api-v2".into(),
        ..desired.clone()
    };
    let replaced = azure
        .put_identity_credential(&live.id, &moved)
        .await
        .unwrap();
    assert_eq!(replaced.subject, moved.subject);
    assert_eq!(
        azure.list_identity_credentials(&live.id).await.unwrap(),
        vec![replaced]
    );

    assert_eq!(
        azure
            .delete_identity_credential(&live.id, &desired.name)
            .await
            .unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        azure
            .delete_identity_credential(&live.id, &desired.name)
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
    assert!(
        azure
            .list_identity_credentials(&live.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Once the identity is gone, so are its credentials: an empty list, and deletes that
    // find nothing.
    azure
        .put_identity_credential(&live.id, &desired)
        .await
        .unwrap();
    azure.delete_identity(STACK, &live).await.unwrap();
    assert!(
        azure
            .list_identity_credentials(&live.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        azure
            .delete_identity_credential(&live.id, &desired.name)
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
}

#[tokio::test]
async fn credential_lists_page() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-fic"))
        .await
        .unwrap();
    let live = azure
        .put_identity(&identity("rg-fic", "orders-api"))
        .await
        .unwrap();
    for i in 0..12 {
        azure
            .put_identity_credential(&live.id, &credential(&format!("fic-{i:02}")))
            .await
            .unwrap();
    }
    sbx.clear_log();
    let listed = azure.list_identity_credentials(&live.id).await.unwrap();
    assert_eq!(listed.len(), 12);
    // Pages of 5: three requests.
    assert_eq!(sbx.api_requests().len(), 3);
    let mut names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12);
}

#[tokio::test]
async fn concurrent_credential_writes_on_one_identity_never_meet_409() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-fic"))
        .await
        .unwrap();
    let live = azure
        .put_identity(&identity("rg-fic", "orders-api"))
        .await
        .unwrap();
    sbx.clear_log();

    // The sandbox holds each write for 50 ms (`fic_write_ms`) and answers 409 to any write
    // that overlaps it, as the service does.
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let azure = azure.clone();
            // The id in another case: the lock is the identity's, however it is spelled.
            let id = if i % 2 == 0 {
                live.id.clone()
            } else {
                live.id.to_uppercase()
            };
            tokio::spawn(async move {
                azure
                    .put_identity_credential(&id, &credential(&format!("fic-{i:02}")))
                    .await
            })
        })
        .collect();
    for write in futures::future::join_all(writes).await {
        write.unwrap().unwrap();
    }
    assert_eq!(sbx.count_status(409), 0);
    // No retries either: one PUT per credential.
    assert_eq!(sbx.api_requests().len(), 20);
    assert_eq!(
        azure
            .list_identity_credentials(&live.id)
            .await
            .unwrap()
            .len(),
        20
    );

    // Deletes take the same lock.
    let deletes: Vec<_> = (0..20)
        .map(|i| {
            let azure = azure.clone();
            let id = live.id.clone();
            tokio::spawn(async move {
                azure
                    .delete_identity_credential(&id, &format!("fic-{i:02}"))
                    .await
            })
        })
        .collect();
    for delete in futures::future::join_all(deletes).await {
        assert_eq!(delete.unwrap().unwrap(), Deletion::Deleted);
    }
    assert_eq!(sbx.count_status(409), 0);
}

#[tokio::test]
async fn credential_writes_on_different_identities_do_not_wait_for_each_other() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-fic"))
        .await
        .unwrap();
    let mut identities = Vec::new();
    for i in 0..5 {
        identities.push(
            azure
                .put_identity(&identity("rg-fic", &format!("id-{i}")))
                .await
                .unwrap(),
        );
    }
    sbx.clear_log();

    let mut writes = Vec::new();
    for live in &identities {
        for j in 0..4 {
            let azure = azure.clone();
            let id = live.id.clone();
            writes.push(tokio::spawn(async move {
                azure
                    .put_identity_credential(&id, &credential(&format!("fic-{j}")))
                    .await
            }));
        }
    }
    for write in futures::future::join_all(writes).await {
        write.unwrap().unwrap();
    }
    assert_eq!(sbx.count_status(409), 0);
    assert_eq!(sbx.api_requests().len(), 20);
    for live in &identities {
        let listed = azure.list_identity_credentials(&live.id).await.unwrap();
        assert_eq!(listed.len(), 4, "{}", live.label());
    }

    // While one identity's write lock is held, another identity's write still goes through,
    // and a write on the held one waits for it.
    let held = azure.fic_locks.lock(&identities[0].id).await;
    let blocked = {
        let azure = azure.clone();
        let id = identities[0].id.clone();
        tokio::spawn(async move {
            azure
                .put_identity_credential(&id, &credential("late"))
                .await
        })
    };
    // A bound only so that a shared lock fails the test instead of hanging it.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        azure.put_identity_credential(&identities[1].id, &credential("free")),
    )
    .await
    .expect("a write on another identity does not wait for the held lock")
    .unwrap();
    assert!(!blocked.is_finished());
    drop(held);
    assert_eq!(blocked.await.unwrap().unwrap().name, "late");
}

#[tokio::test]
async fn a_credential_on_a_new_identity_waits_out_replication() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-new"))
        .await
        .unwrap();
    sbx.set_faults(Faults {
        replication_delay_ms: 1500,
        ..Default::default()
    });
    sbx.clear_log();

    let live = azure
        .put_identity(&identity("rg-new", "fresh"))
        .await
        .unwrap();
    let fic = azure
        .put_identity_credential(&live.id, &credential("first"))
        .await
        .unwrap();
    assert_eq!(fic.name, "first");

    let not_yet = sbx
        .api_requests()
        .iter()
        .filter(|r| r.error_code.as_deref() == Some("ParentResourceNotFound"))
        .count();
    assert!(not_yet >= 1, "{:?}", calls(&sbx));
    let waited = sbx.events().into_iter().any(|e| {
        matches!(
            e,
            Event::Waiting { ref waiting_for, ref action, .. }
                if waiting_for.contains("rg-new/fresh") && action.contains("first")
        )
    });
    assert!(waited, "{:?}", sbx.events());
    assert_eq!(
        azure.list_identity_credentials(&live.id).await.unwrap(),
        vec![fic]
    );
}

#[tokio::test]
async fn a_refused_credential_names_itself_and_its_identity() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-err"))
        .await
        .unwrap();
    let live = azure
        .put_identity(&identity("rg-err", "orders-api"))
        .await
        .unwrap();
    let two_audiences = DesiredIdentityCredential {
        audiences: vec![AUDIENCE.into(), "api://other".into()],
        ..credential("bad-fic")
    };
    let error = azure
        .put_identity_credential(&live.id, &two_audiences)
        .await
        .unwrap_err();
    let AzureErrorKind::Api(failure) = error.kind() else {
        panic!("an API error: {error:?}");
    };
    assert_eq!(failure.status, 400);
    assert_eq!(failure.code, "BadRequest");
    assert_eq!(
        failure.message,
        "Federated identity credentials must have exactly one audience."
    );
    assert!(error.request_id().is_some());
    let text = error.to_string();
    assert!(text.contains("bad-fic"), "{text}");
    assert!(text.contains("rg-err/orders-api"), "{text}");
    assert!(text.contains("exactly one audience"), "{text}");
    // Not retried.
    assert_eq!(sbx.count_status(400), 1);
}

#[tokio::test]
async fn observing_a_group_of_seven_identities_with_three_credentials_each() {
    let sbx = sandbox().await;
    let azure = provider(&sbx);
    azure
        .put_resource_group(&group(STACK, "rg-obs"))
        .await
        .unwrap();
    let mut setup = Vec::new();
    for i in 0..7 {
        let azure = azure.clone();
        setup.push(tokio::spawn(async move {
            let live = azure
                .put_identity(&identity("rg-obs", &format!("id-{i}")))
                .await?;
            for j in 0..3 {
                azure
                    .put_identity_credential(&live.id, &credential(&format!("fic-{j}")))
                    .await?;
            }
            Ok::<_, wiform::providers::azure::AzureError>(())
        }));
    }
    for done in futures::future::join_all(setup).await {
        done.unwrap().unwrap();
    }
    sbx.clear_log();

    let groups = azure.list_resource_groups(SUB).await.unwrap();
    assert_eq!(groups.len(), 1);
    let identities = azure.list_identities(SUB, "rg-obs").await.unwrap().unwrap();
    assert_eq!(identities.len(), 7);
    let credentials = futures::future::join_all(
        identities
            .iter()
            .map(|i| azure.list_identity_credentials(&i.id)),
    )
    .await;
    for listed in credentials {
        assert_eq!(listed.unwrap().len(), 3);
    }
    // 1 group list + 2 identity pages (5 per page) + 1 credential list per identity.
    assert_eq!(sbx.api_requests().len(), 10);
    assert!(sbx.api_requests().iter().all(|r| r.method == "GET"));
}
