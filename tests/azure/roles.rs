//! Role definitions and assignments against the sandbox: create, read back through the one
//! subscription list, idempotent repeat, delete; adoption of `RoleAssignmentExists`; waiting out
//! `PrincipalNotFound`; custom roles by name (cached per scope); `AuthorizationFailed`; paging.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wiform::error::Explain;
use wiform::graph::RoleRef;
use wiform::providers::Deletion;
use wiform::providers::azure::client::{ClientOptions, Event, EventSink, Request};
use wiform::providers::azure::roles::{
    DesiredRoleAssignment, LiveRoleAssignment, PutOutcome, RoleDefinition, assignment_marker,
};
use wiform::providers::azure::{AzureErrorKind, AzureProvider};
use wiform_sandbox::Faults;
use wiform_sandbox::builtin_roles::{BUILTIN_ROLES, READER};
use wiform_sandbox::state::{ADMIN_CLIENT_ID, ServicePrincipal};

use crate::support::{SUB, Sandbox, TENANT, client_as, sandbox, test_options};

const STACK: &str = "orders";
const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

fn sub_scope() -> String {
    format!("/subscriptions/{SUB}")
}

fn rg_scope(rg: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}")
}

async fn resource_group(sbx: &Sandbox, name: &str) {
    sbx.admin
        .send(
            &Request::arm(
                Method::PUT,
                format!("/subscriptions/{SUB}/resourcegroups/{name}?api-version=2021-04-01"),
            )
            .json(json!({"location": "westeurope"})),
        )
        .await
        .unwrap();
}

/// Creates a managed identity and returns its principal id.
async fn identity(sbx: &Sandbox, rg: &str, name: &str) -> String {
    let answer = sbx
        .admin
        .send(
            &Request::arm(
                Method::PUT,
                format!(
                    "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}?api-version=2024-11-30"
                ),
            )
            .json(json!({"location": "westeurope"})),
        )
        .await
        .unwrap();
    answer.value()["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string()
}

fn provider(sbx: &Sandbox) -> AzureProvider {
    AzureProvider::new(sbx.admin.clone(), TENANT)
}

fn builtin(guid: &str) -> RoleRef {
    let role = BUILTIN_ROLES.iter().find(|r| r.id == guid).unwrap();
    RoleRef::Builtin {
        name: role.name.into(),
        id: role.id.into(),
    }
}

async fn desired(
    azure: &AzureProvider,
    scope: &str,
    principal: &str,
    role: &RoleRef,
    condition: Option<&str>,
) -> DesiredRoleAssignment {
    let definition = azure.resolve_role(scope, role).await.unwrap();
    DesiredRoleAssignment::new(STACK, scope, principal, &definition, condition)
}

/// The subscription's assignments that are this grant, whatever their names.
async fn same_grant(
    azure: &AzureProvider,
    want: &DesiredRoleAssignment,
) -> Vec<LiveRoleAssignment> {
    azure
        .list_role_assignments(SUB)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| want.matches(a))
        .collect()
}

fn raw_assignment_path(scope: &str, name: &str) -> String {
    format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"
    )
}

fn raw_assignment_body(role: &str, principal: &str, description: Option<&str>) -> Value {
    json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "principalId": principal,
        "principalType": "ServicePrincipal",
        "description": description,
    }})
}

#[tokio::test]
async fn an_assignment_is_created_read_back_repeated_updated_and_deleted() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg-orders").await;
    let principal = identity(&sbx, "rg-orders", "orders-api").await;
    let azure = provider(&sbx);
    let scope = rg_scope("rg-orders");
    sbx.clear_log();
    let want = desired(&azure, &scope, &principal, &builtin(READER), None).await;
    // A built-in role resolves without a request.
    assert!(sbx.api_requests().is_empty());

    let created = azure.put_role_assignment(&want).await.unwrap();
    let PutOutcome::Created(live) = &created else {
        panic!("expected Created, got {created:?}")
    };
    assert_eq!(live.name, want.name());
    assert_eq!(live.scope, scope.to_ascii_lowercase());
    assert_eq!(live.role_definition_guid, READER);
    assert_eq!(live.principal_id, principal);
    assert_eq!(live.principal_type.as_deref(), Some("ServicePrincipal"));
    assert!(live.owner.is_stack(STACK));
    assert_eq!(
        live.description.as_deref(),
        Some(assignment_marker(STACK, &want.spec_hash()).as_str())
    );
    assert_eq!(live.spec_hash(), want.spec_hash());
    assert_eq!(sbx.api_requests().len(), 1);

    // Read back through the one subscription list (the sandbox's own two assignments plus ours:
    // one page of 5).
    sbx.clear_log();
    let listed = same_grant(&azure, &want).await;
    assert_eq!(listed.as_slice(), std::slice::from_ref(live));
    assert_eq!(sbx.api_requests().len(), 1);

    // Again: the same name, no second assignment.
    let again = azure.put_role_assignment(&want).await.unwrap();
    let PutOutcome::Updated(repeated) = &again else {
        panic!("expected Updated, got {again:?}")
    };
    assert_eq!(repeated, live);
    assert_eq!(same_grant(&azure, &want).await.len(), 1);

    // A condition is written and read back, under the same name.
    let condition = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'orders'";
    let conditional = desired(
        &azure,
        &scope,
        &principal,
        &builtin(READER),
        Some(condition),
    )
    .await;
    assert_eq!(conditional.name(), want.name());
    let updated = azure.put_role_assignment(&conditional).await.unwrap();
    assert!(matches!(updated, PutOutcome::Updated(_)), "{updated:?}");
    let listed = same_grant(&azure, &conditional).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].condition.as_deref(), Some(condition));
    assert_eq!(listed[0].spec_hash(), conditional.spec_hash());
    assert_ne!(listed[0].spec_hash(), want.spec_hash());
    let raw = sbx
        .admin
        .send(&Request::arm(
            Method::GET,
            raw_assignment_path(&scope, &want.name()),
        ))
        .await
        .unwrap()
        .value();
    assert_eq!(raw["properties"]["conditionVersion"], "2.0");

    // Delete, then delete again.
    let live = listed[0].clone();
    sbx.clear_log();
    assert_eq!(
        azure
            .delete_role_assignment(STACK, &live, false)
            .await
            .unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        azure
            .delete_role_assignment(STACK, &live, false)
            .await
            .unwrap(),
        Deletion::AlreadyGone
    );
    assert_eq!(sbx.count_status(200), 1);
    assert_eq!(sbx.count_status(204), 1);
    assert!(same_grant(&azure, &want).await.is_empty());
}

#[tokio::test]
async fn deletes_stay_inside_the_stack_unless_unmanaged_removal_is_asked_for() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    let principal = identity(&sbx, "rg", "app").await;
    let azure = provider(&sbx);
    let scope = rg_scope("rg");
    // By hand, without a marker; and one of another stack.
    for (role, description) in [
        (READER, None),
        (
            BLOB_READER,
            Some(assignment_marker("payments", "0123456789abcdef")),
        ),
    ] {
        sbx.admin
            .send(
                &Request::arm(
                    Method::PUT,
                    raw_assignment_path(&scope, &uuid::Uuid::new_v4().to_string()),
                )
                .json(raw_assignment_body(
                    role,
                    &principal,
                    description.as_deref(),
                )),
            )
            .await
            .unwrap();
    }
    let live = azure.list_role_assignments(SUB).await.unwrap();
    let by_hand = live
        .iter()
        .find(|a| a.principal_id == principal && a.role_definition_guid == READER)
        .unwrap();
    let other_stack = live
        .iter()
        .find(|a| a.principal_id == principal && a.role_definition_guid == BLOB_READER)
        .unwrap();
    assert!(other_stack.owner.is_stack("payments"));

    sbx.clear_log();
    let refused = azure
        .delete_role_assignment(STACK, by_hand, false)
        .await
        .unwrap_err();
    assert!(
        matches!(refused.kind(), AzureErrorKind::Conflict { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("no wiform marker"),
        "{refused}"
    );
    let refused = azure
        .delete_role_assignment(STACK, other_stack, true)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("stack \"payments\""),
        "{refused}"
    );
    // Refusals send nothing.
    assert!(sbx.api_requests().is_empty());

    assert_eq!(
        azure
            .delete_role_assignment(STACK, by_hand, true)
            .await
            .unwrap(),
        Deletion::Deleted
    );
}

#[tokio::test]
async fn the_same_grant_under_another_name_is_adopted() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    let principal = identity(&sbx, "rg", "app").await;
    let azure = provider(&sbx);
    let scope = rg_scope("rg");
    let by_hand = uuid::Uuid::new_v4().to_string();
    sbx.admin
        .send(
            &Request::arm(Method::PUT, raw_assignment_path(&scope, &by_hand)).json(
                raw_assignment_body(READER, &principal, Some("granted by hand")),
            ),
        )
        .await
        .unwrap();
    let want = desired(&azure, &scope, &principal, &builtin(READER), None).await;
    assert_ne!(want.name(), by_hand);

    sbx.clear_log();
    let outcome = azure.put_role_assignment(&want).await.unwrap();
    let PutOutcome::Adopted(adopted) = &outcome else {
        panic!("expected Adopted, got {outcome:?}")
    };
    // It keeps its name and now carries this stack's marker.
    assert_eq!(adopted.name, by_hand);
    assert!(adopted.owner.is_stack(STACK));
    assert_eq!(adopted.spec_hash(), want.spec_hash());
    // The 409, the list that confirms the message's id, the PUT that writes the marker.
    let log: Vec<(String, u16)> = sbx
        .api_requests()
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect();
    assert_eq!(
        log,
        [
            ("PUT".into(), 409),
            ("GET".into(), 200),
            ("PUT".into(), 200)
        ]
    );
    assert_eq!(
        sbx.api_requests()[0].error_code.as_deref(),
        Some("RoleAssignmentExists")
    );
    let listed = same_grant(&azure, &want).await;
    assert_eq!(listed.as_slice(), std::slice::from_ref(adopted));

    // Another stack's grant is reported as found, and left as it is.
    let principal_2 = identity(&sbx, "rg", "app-2").await;
    let theirs = uuid::Uuid::new_v4().to_string();
    let their_marker = assignment_marker("payments", "0123456789abcdef");
    sbx.admin
        .send(
            &Request::arm(Method::PUT, raw_assignment_path(&scope, &theirs)).json(
                raw_assignment_body(READER, &principal_2, Some(&their_marker)),
            ),
        )
        .await
        .unwrap();
    let want_2 = desired(&azure, &scope, &principal_2, &builtin(READER), None).await;
    let outcome = azure.put_role_assignment(&want_2).await.unwrap();
    let PutOutcome::Adopted(found) = &outcome else {
        panic!("expected Adopted, got {outcome:?}")
    };
    assert_eq!(found.name, theirs);
    assert!(found.owner.is_stack("payments"));
    assert_eq!(
        same_grant(&azure, &want_2).await[0].description.as_deref(),
        Some(their_marker.as_str())
    );
}

#[tokio::test]
async fn a_new_identity_is_assigned_at_once_within_the_replication_window() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    sbx.set_faults(Faults {
        replication_delay_ms: 1500,
        ..Default::default()
    });
    let azure = provider(&sbx);
    let principal = identity(&sbx, "rg", "brand-new").await;
    sbx.clear_log();
    let want = desired(&azure, &rg_scope("rg"), &principal, &builtin(READER), None).await;
    let outcome = azure.put_role_assignment(&want).await.unwrap();
    assert!(matches!(outcome, PutOutcome::Created(_)), "{outcome:?}");
    // principalType: ServicePrincipal makes ARM (and the sandbox) skip the directory lookup, so
    // the principal still replicating is no PrincipalNotFound.
    let not_found = sbx
        .api_requests()
        .iter()
        .filter(|r| r.error_code.as_deref() == Some("PrincipalNotFound"))
        .count();
    assert_eq!(not_found, 0);
    assert_eq!(sbx.api_requests().len(), 1);
}

#[tokio::test]
async fn principal_not_found_is_waited_out_until_the_principal_appears() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    let azure = Arc::new(provider(&sbx));
    // A principal the directory does not know yet: ARM answers PrincipalNotFound whatever the
    // request says, until it arrives.
    let principal = uuid::Uuid::new_v4().to_string();
    let want = desired(&azure, &rg_scope("rg"), &principal, &builtin(READER), None).await;
    sbx.clear_log();
    let put = {
        let azure = azure.clone();
        let want = want.clone();
        tokio::spawn(async move { azure.put_role_assignment(&want).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    sbx.running
        .app
        .store
        .write(|s| {
            s.service_principals.insert(
                principal.clone(),
                ServicePrincipal {
                    id: principal.clone(),
                    app_id: uuid::Uuid::new_v4().to_string(),
                    display_name: "late".into(),
                    service_principal_type: "ManagedIdentity".into(),
                    alternative_names: Vec::new(),
                    created_ms: 0,
                },
            );
            Ok::<_, wiform_sandbox::state::StoreError>(())
        })
        .unwrap();
    let outcome = put.await.unwrap().unwrap();
    assert!(matches!(outcome, PutOutcome::Created(_)), "{outcome:?}");
    let not_found = sbx
        .api_requests()
        .iter()
        .filter(|r| r.error_code.as_deref() == Some("PrincipalNotFound"))
        .count();
    assert!(not_found >= 1, "{:?}", sbx.api_requests());
    let waited = sbx.events().into_iter().any(|e| {
        matches!(e, Event::Waiting { waiting_for, .. }
            if waiting_for == format!("the new identity's principal {principal} to replicate to Azure RBAC"))
    });
    assert!(waited, "{:?}", sbx.events());
}

#[tokio::test]
async fn a_principal_that_never_appears_is_given_up_on_with_the_reason() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    // Waits scaled down: 300 s → 1.5 s.
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = events.clone();
    let sink: EventSink = Arc::new(move |e: &Event| sink_events.lock().unwrap().push(e.clone()));
    let client = client_as(
        &sbx.running,
        &sbx.endpoints,
        ADMIN_CLIENT_ID,
        ClientOptions {
            wait_scale: 0.005,
            ..test_options()
        },
    )
    .with_events(sink);
    let azure = AzureProvider::new(client, TENANT);
    let principal = uuid::Uuid::new_v4().to_string();
    let want = desired(&azure, &rg_scope("rg"), &principal, &builtin(READER), None).await;
    let error = azure.put_role_assignment(&want).await.unwrap_err();
    assert!(
        matches!(error.kind(), AzureErrorKind::GaveUp { .. }),
        "{error}"
    );
    assert!(error.is_code("PrincipalNotFound"));
    assert_eq!(error.status(), Some(400));
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "gave up waiting for the new identity's principal {principal} to replicate"
        )),
        "{text}"
    );
    assert!(
        text.starts_with("assign role Reader for principal"),
        "{text}"
    );
    assert!(!events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn custom_roles_resolve_by_name_once_per_scope() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    let principal = identity(&sbx, "rg", "app").await;
    let custom = uuid::Uuid::new_v4().to_string();
    sbx.admin
        .send(
            &Request::arm(
                Method::PUT,
                format!(
                    "{}/providers/Microsoft.Authorization/roleDefinitions/{custom}?api-version=2022-04-01",
                    sub_scope()
                ),
            )
            .json(json!({"properties": {
                "roleName": "Identity Writer",
                "description": "Writes managed identities",
                "type": "CustomRole",
                "permissions": [{"actions": ["Microsoft.ManagedIdentity/userAssignedIdentities/write"], "notActions": [], "dataActions": [], "notDataActions": []}],
                "assignableScopes": [sub_scope()],
            }})),
        )
        .await
        .unwrap();
    let azure = provider(&sbx);
    let scope = rg_scope("rg");
    sbx.clear_log();

    let by_name = RoleRef::Name {
        name: "identity writer".into(),
    };
    let resolved = azure.resolve_role(&scope, &by_name).await.unwrap();
    assert_eq!(
        resolved,
        RoleDefinition {
            id: format!(
                "/subscriptions/{SUB}/providers/microsoft.authorization/roledefinitions/{custom}"
            ),
            guid: custom.clone(),
            role_name: "Identity Writer".into(),
            builtin: false,
        }
    );
    assert_eq!(sbx.api_requests().len(), 1);
    assert!(sbx.api_requests()[0].path.ends_with("/roleDefinitions"));
    // Cached: the same name (any case), its GUID, and a built-in role cost nothing more.
    for role in [
        by_name.clone(),
        RoleRef::Name {
            name: "Identity Writer".into(),
        },
        RoleRef::Id { id: custom.clone() },
        builtin(READER),
    ] {
        azure
            .resolve_role(&format!("{scope}/"), &role)
            .await
            .unwrap();
    }
    assert_eq!(sbx.api_requests().len(), 1);

    // Callers at a new scope at the same time share one request.
    let subscription = sub_scope();
    let (a, b) = tokio::join!(
        azure.resolve_role(&subscription, &by_name),
        azure.resolve_role(&subscription, &by_name)
    );
    assert_eq!(a.unwrap().guid, custom);
    assert_eq!(b.unwrap().guid, custom);
    assert_eq!(sbx.api_requests().len(), 2);

    // A misspelt name: asked about once by itself, then RoleNotFound with the likely one.
    let error = azure
        .resolve_role(
            &scope,
            &RoleRef::Name {
                name: "Identity Writre".into(),
            },
        )
        .await
        .unwrap_err();
    match error.kind() {
        AzureErrorKind::RoleNotFound {
            name,
            scope: at,
            closest,
        } => {
            assert_eq!(name, "Identity Writre");
            assert_eq!(at, &scope.to_ascii_lowercase());
            assert_eq!(closest.first().map(String::as_str), Some("Identity Writer"));
        }
        other => panic!("expected RoleNotFound, got {other:?}"),
    }
    assert!(
        error
            .hint()
            .unwrap()
            .starts_with("did you mean `Identity Writer`"),
        "{:?}",
        error.hint()
    );
    assert_eq!(sbx.api_requests().len(), 3);
    // An unknown GUID: one GET, then RoleNotFound.
    let unknown = uuid::Uuid::new_v4().to_string();
    let error = azure
        .resolve_role(
            &scope,
            &RoleRef::Id {
                id: unknown.clone(),
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error.kind(), AzureErrorKind::RoleNotFound { name, .. } if *name == unknown));
    assert_eq!(sbx.api_requests().len(), 4);

    // The resolved custom role is assignable.
    let want = DesiredRoleAssignment::new(STACK, &scope, &principal, &resolved, None);
    let outcome = azure.put_role_assignment(&want).await.unwrap();
    assert_eq!(outcome.assignment().role_definition_guid, custom);
}

#[tokio::test]
async fn a_reader_may_not_assign_and_is_told_what_is_missing() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    let principal = identity(&sbx, "rg", "app").await;
    let azure = AzureProvider::new(sbx.reader(), TENANT);
    let scope = rg_scope("rg");
    let want = desired(&azure, &scope, &principal, &builtin(READER), None).await;
    let error = azure.put_role_assignment(&want).await.unwrap_err();
    assert!(error.is_code("AuthorizationFailed"), "{error}");
    assert_eq!(error.status(), Some(403));
    assert!(error.request_id().is_some_and(|id| !id.is_empty()));
    let hint = error.hint().unwrap();
    assert!(
        hint.contains("`Microsoft.Authorization/roleAssignments/write`"),
        "{hint}"
    );
    // The role is needed at the scope the assignment is written at, not at the assignment.
    assert!(
        hint.to_ascii_lowercase()
            .contains(&format!("at `{}`:", scope.to_ascii_lowercase())),
        "{hint}"
    );
    assert!(
        error
            .to_string()
            .starts_with("assign role Reader for principal")
    );
    // The reader may read them.
    assert!(azure.list_role_assignments(SUB).await.is_ok());
}

#[tokio::test]
async fn the_subscription_list_pages_and_the_scope_lists_filter() {
    let sbx = sandbox().await;
    resource_group(&sbx, "rg").await;
    let principal = identity(&sbx, "rg", "app").await;
    let other = identity(&sbx, "rg", "other").await;
    let azure = provider(&sbx);
    let scope = rg_scope("rg");
    for role in BUILTIN_ROLES.iter().take(12) {
        let role = RoleRef::Builtin {
            name: role.name.into(),
            id: role.id.into(),
        };
        let want = desired(&azure, &scope, &principal, &role, None).await;
        azure.put_role_assignment(&want).await.unwrap();
    }
    let want = desired(&azure, &sub_scope(), &other, &builtin(READER), None).await;
    azure.put_role_assignment(&want).await.unwrap();

    sbx.clear_log();
    let all = azure.list_role_assignments(SUB).await.unwrap();
    // Ours (13) and the sandbox's own two (its admin and reader clients): pages of 5.
    assert_eq!(all.len(), 15);
    assert_eq!(sbx.api_requests().len(), 3);
    let mine: Vec<&LiveRoleAssignment> =
        all.iter().filter(|a| a.principal_id == principal).collect();
    assert_eq!(mine.len(), 12);
    assert!(mine.iter().all(|a| a.owner.is_stack(STACK)));
    let mut names: Vec<&str> = all.iter().map(|a| a.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 15, "no duplicates across pages");

    // One principal's, at or below the group; and everything at or above the group.
    let of_principal = azure
        .list_role_assignments_at(&scope, Some(&principal.to_uppercase()))
        .await
        .unwrap();
    assert_eq!(of_principal.len(), 12);
    let at_scope = azure.list_role_assignments_at(&scope, None).await.unwrap();
    assert_eq!(
        at_scope.len(),
        15,
        "the group's 12 and the subscription's 3"
    );
    let of_other_at_group = azure
        .list_role_assignments_at(&scope, Some(&other))
        .await
        .unwrap();
    assert_eq!(
        of_other_at_group.len(),
        1,
        "inherited from the subscription"
    );
    assert_eq!(of_other_at_group[0].scope, sub_scope().to_ascii_lowercase());
}
