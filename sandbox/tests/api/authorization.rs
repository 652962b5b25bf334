//! Role definitions and role assignments: the spec's shapes, filters and the inherited view,
//! paging, and the errors real clients meet (RoleAssignmentExists, PrincipalNotFound during the
//! replication window, AuthorizationFailed, …).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiform_sandbox::Faults;
use wiform_sandbox::builtin_roles::{BUILTIN_ROLES, CONTRIBUTOR, OWNER, READER};
use wiform_sandbox::state::READER_CLIENT_ID;

use crate::common::*;

const BLOB_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
const BLOB_CONTRIBUTOR: &str = "ba92f5b4-2d11-453d-a403-e96b0029c9fe";

fn sub_scope() -> String {
    format!("/subscriptions/{SUB}")
}

fn rg_scope(rg: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}")
}

fn assignments(scope: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHZ_API}")
}

fn assignment_path(scope: &str, name: &str) -> String {
    format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version={AUTHZ_API}"
    )
}

fn definitions(scope: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?api-version={AUTHZ_API}")
}

fn definition_path(scope: &str, guid: &str) -> String {
    format!(
        "{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}?api-version={AUTHZ_API}"
    )
}

fn role_id(guid: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
}

fn assignment_body(role: &str, principal: &str, principal_type: Option<&str>) -> Value {
    let mut properties = json!({"roleDefinitionId": role_id(role), "principalId": principal});
    if let Some(t) = principal_type {
        properties["principalType"] = json!(t);
    }
    json!({ "properties": properties })
}

fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn compact(guid: &str) -> String {
    guid.replace('-', "")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn reader_object_id(sb: &Sandbox) -> String {
    sb.running.app.store.read(|s| {
        s.principal_by_client_id(READER_CLIENT_ID)
            .expect("reader client")
            .id
            .clone()
    })
}

#[tokio::test]
async fn built_in_roles_are_listed_filtered_and_paged() {
    let sb = sandbox().await;
    // $filter=roleName eq '…' (RoleDefinitionFilter.roleName); case-insensitive.
    let reader = sb
        .get(&format!(
            "{}&$filter=roleName eq 'reader'",
            definitions(&sub_scope())
        ))
        .await;
    assert_eq!(reader.status, StatusCode::OK, "{}", reader.body);
    let value = reader.body["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "{}", reader.body);
    assert_eq!(value[0]["name"], READER);
    assert_eq!(value[0]["id"], role_id(READER));
    assert_eq!(value[0]["type"], "Microsoft.Authorization/roleDefinitions");
    assert_eq!(value[0]["properties"]["roleName"], "Reader");
    assert_eq!(value[0]["properties"]["type"], "BuiltInRole");
    assert_eq!(
        value[0]["properties"]["permissions"][0]["actions"],
        json!(["*/read"])
    );
    assert_eq!(value[0]["properties"]["assignableScopes"], json!(["/"]));
    assert!(reader.body.get("nextLink").is_none());

    // A role name with spaces, at tenant scope: the id is tenant-relative there.
    let blob = sb
        .get(&format!(
            "{}&$filter=roleName eq 'Storage Blob Data Contributor'",
            definitions("")
        ))
        .await;
    assert_eq!(blob.status, StatusCode::OK, "{}", blob.body);
    assert_eq!(
        blob.body["value"][0]["id"],
        format!("/providers/Microsoft.Authorization/roleDefinitions/{BLOB_CONTRIBUTOR}")
    );
    assert_eq!(
        blob.body["value"][0]["properties"]["permissions"][0]["dataActions"][0],
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"
    );

    // type eq 'BuiltInRole': every built-in role, across pages of 5 with nextLink.
    let (all, pages) = sb
        .list_all(&format!(
            "{}&$filter=type eq 'BuiltInRole'",
            definitions(&sub_scope())
        ))
        .await;
    assert_eq!(all.len(), BUILTIN_ROLES.len());
    assert_eq!(pages, BUILTIN_ROLES.len().div_ceil(5));
    let mut names: Vec<&str> = all.iter().filter_map(|r| r["name"].as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(
        names.len(),
        BUILTIN_ROLES.len(),
        "no duplicates across pages"
    );
    let (custom, _) = sb
        .list_all(&format!(
            "{}&$filter=type eq 'CustomRole'",
            definitions(&sub_scope())
        ))
        .await;
    assert!(custom.is_empty());

    // Every built-in role carries the permissions of Microsoft's built-in roles reference.
    for role in BUILTIN_ROLES {
        assert!(
            !role.actions.is_empty() || !role.data_actions.is_empty(),
            "{} grants nothing",
            role.name
        );
    }

    // Unknown filters are refused.
    let bad = sb
        .get(&format!(
            "{}&$filter=foo eq 'bar'",
            definitions(&sub_scope())
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "UnsupportedQuery");
}

#[tokio::test]
async fn a_role_definition_is_read_by_guid_at_any_scope() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let got = sb.get(&definition_path(&rg_scope("rg"), OWNER)).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    // GetRoleDefinitionByName.json
    let example = json!({
        "properties": {
            "roleName": "Role name", "type": "roletype", "description": "Role description",
            "assignableScopes": ["/subscriptions/subId"],
            "permissions": [{"actions": ["action"], "notActions": [], "dataActions": ["dataAction"], "notDataActions": []}]
        },
        "id": "/subscriptions/subID/providers/Microsoft.Authorization/roleDefinitions/roleDefinitionId",
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": "roleDefinitionId"
    });
    assert_shape(&got.body, &example, "roleDefinition");
    assert_eq!(got.body["id"], role_id(OWNER));
    assert_eq!(got.body["properties"]["roleName"], "Owner");

    let tenant = sb.get(&definition_path("", CONTRIBUTOR)).await;
    assert_eq!(tenant.status, StatusCode::OK, "{}", tenant.body);
    assert_eq!(
        tenant.body["id"],
        format!("/providers/Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}")
    );
    assert_eq!(
        tenant.body["properties"]["permissions"][0]["notActions"][1],
        "Microsoft.Authorization/*/Write"
    );

    let missing = sb.get(&definition_path(&sub_scope(), &guid())).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "RoleDefinitionDoesNotExist");

    for version in ["2015-07-01", "2018-01-01-preview", "2022-05-01-preview"] {
        let other = sb
            .get(&definition_path(&sub_scope(), OWNER).replace(AUTHZ_API, version))
            .await;
        assert_eq!(other.status, StatusCode::OK, "{version}");
    }
    let bad_version = sb
        .get(&definition_path(&sub_scope(), OWNER).replace(AUTHZ_API, "2099-01-01"))
        .await;
    assert_eq!(bad_version.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_version.code(), "InvalidApiVersionParameter");
}

#[tokio::test]
async fn custom_roles_are_created_listed_used_and_deleted() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let id = guid();
    let body = json!({"properties": {
        "roleName": "Identity Writer",
        "description": "Writes managed identities",
        "type": "CustomRole",
        "permissions": [{"actions": ["Microsoft.ManagedIdentity/userAssignedIdentities/write", "*/read"], "notActions": [], "dataActions": [], "notDataActions": []}],
        "assignableScopes": [sub_scope()],
    }});
    let created = sb
        .put(&definition_path(&sub_scope(), &id), body.clone())
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], id);
    assert_eq!(created.body["id"], role_id(&id));
    assert_eq!(created.body["properties"]["type"], "CustomRole");
    assert_eq!(
        created.body["properties"]["assignableScopes"],
        json!([sub_scope()])
    );
    // PutRoleDefinition.json answers 201 for an update too.
    let mut updated_body = body.clone();
    updated_body["properties"]["description"] = json!("changed");
    let updated = sb
        .put(&definition_path(&sub_scope(), &id), updated_body)
        .await;
    assert_eq!(updated.status, StatusCode::CREATED);
    assert_eq!(updated.body["properties"]["description"], "changed");

    let got = sb.get(&definition_path(&rg_scope("rg"), &id)).await;
    assert_eq!(got.status, StatusCode::OK);
    let (custom, _) = sb
        .list_all(&format!(
            "{}&$filter=type eq 'CustomRole'",
            definitions(&rg_scope("rg"))
        ))
        .await;
    assert_eq!(custom.len(), 1);
    let by_name = sb
        .get(&format!(
            "{}&$filter=roleName eq 'Identity Writer'",
            definitions(&sub_scope())
        ))
        .await;
    assert_eq!(by_name.body["value"][0]["name"], id);
    // Not applicable at the tenant root (its assignable scope is below it).
    let (root, _) = sb
        .list_all(&format!("{}&$filter=type eq 'CustomRole'", definitions("")))
        .await;
    assert!(root.is_empty());

    // Names are unique in the directory, built-in ones included.
    let clash = sb
        .put(&definition_path(&sub_scope(), &guid()), body.clone())
        .await;
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_eq!(clash.code(), "RoleDefinitionWithSameNameExists");
    let mut reader_named = body.clone();
    reader_named["properties"]["roleName"] = json!("Reader");
    let clash = sb
        .put(&definition_path(&sub_scope(), &guid()), reader_named)
        .await;
    assert_eq!(clash.code(), "RoleDefinitionWithSameNameExists");
    let builtin = sb
        .put(&definition_path(&sub_scope(), READER), body.clone())
        .await;
    assert_eq!(builtin.status, StatusCode::BAD_REQUEST);
    let not_guid = sb
        .put(&definition_path(&sub_scope(), "my-role"), body.clone())
        .await;
    assert_eq!(not_guid.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_guid.code(), "InvalidRoleDefinitionId");

    // The role grants what it says: the Reader client may now write identities in the group.
    let reader = reader_object_id(&sb);
    let before = sb
        .call_as(
            &sb.reader_token,
            Method::PUT,
            &identity_path("rg", "by-reader"),
            Some(json!({"location": "westeurope"})),
        )
        .await;
    assert_eq!(before.status, StatusCode::FORBIDDEN);
    let name = guid();
    let assigned = sb
        .put(
            &assignment_path(&rg_scope("rg"), &name),
            assignment_body(&id, &reader, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{}", assigned.body);
    assert_eq!(
        assigned.body["properties"]["roleDefinitionId"],
        role_id(&id)
    );
    let after = sb
        .call_as(
            &sb.reader_token,
            Method::PUT,
            &identity_path("rg", "by-reader"),
            Some(json!({"location": "westeurope"})),
        )
        .await;
    assert_eq!(after.status, StatusCode::CREATED, "{}", after.body);

    // A role still assigned cannot be deleted; then it can, once; then 204.
    let referenced = sb.delete(&definition_path(&sub_scope(), &id)).await;
    assert_eq!(referenced.status, StatusCode::CONFLICT);
    assert_eq!(referenced.code(), "RoleDefinitionHasAssignments");
    assert_eq!(
        sb.delete(&assignment_path(&rg_scope("rg"), &name))
            .await
            .status,
        StatusCode::OK
    );
    let deleted = sb.delete(&definition_path(&sub_scope(), &id)).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["properties"]["roleName"], "Identity Writer");
    assert_eq!(
        sb.delete(&definition_path(&sub_scope(), &id)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sb.get(&definition_path(&sub_scope(), &id)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_role_assignment_is_created_read_updated_and_deleted() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let identity = sb.identity("rg", "app").await;
    let principal = identity["properties"]["principalId"].as_str().unwrap();
    let name = guid();
    let path = assignment_path(&rg_scope("rg"), &name);
    let created = sb
        .put(
            &path,
            assignment_body(BLOB_CONTRIBUTOR, principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    // RoleAssignments_CreateForResourceGroup.json, plus the read-only properties of the spec.
    let example = json!({
        "properties": {
            "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/0b5fe924-9a61-425c-96af-cfe6e287ca2d",
            "principalId": "ce2ce14e-85d7-4629-bdbc-454d0519d987",
            "principalType": "User",
            "scope": "/subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2/resourceGroups/testrg",
            "createdOn": "2022-01-01T00:00:00Z",
            "updatedOn": "2022-01-01T00:00:00Z",
            "createdBy": "x",
            "updatedBy": "x",
        },
        "id": "/subscriptions/a925f2f7-5c63-4b7b-8799-25a5f97bc3b2/resourceGroups/testrg/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff",
        "type": "Microsoft.Authorization/roleAssignments",
        "name": "05c5a614-a7d6-4502-b150-c2fb455033ff"
    });
    assert_shape(&created.body, &example, "roleAssignment");
    let props = &created.body["properties"];
    for field in [
        "condition",
        "conditionVersion",
        "description",
        "delegatedManagedIdentityResourceId",
    ] {
        assert!(props.get(field).is_some(), "{field} is present (null)");
    }
    assert_eq!(created.body["name"], name);
    assert_eq!(
        created.body["id"],
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
            rg_scope("rg")
        )
    );
    assert_eq!(props["scope"], rg_scope("rg"));
    assert_eq!(props["roleDefinitionId"], role_id(BLOB_CONTRIBUTOR));
    assert_eq!(props["principalType"], "ServicePrincipal");
    let admin = sb.running.app.store.read(|s| {
        s.principal_by_client_id(wiform_sandbox::state::ADMIN_CLIENT_ID)
            .unwrap()
            .id
            .clone()
    });
    assert_eq!(props["createdBy"], admin);
    assert!(props["createdOn"].as_str().unwrap().ends_with('Z'));

    // The same assignment again: 200; the description may change.
    let again = sb
        .put(
            &path,
            assignment_body(BLOB_CONTRIBUTOR, principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let mut described = assignment_body(BLOB_CONTRIBUTOR, principal, Some("ServicePrincipal"));
    described["properties"]["description"] = json!("managed by wiform");
    described["properties"]["condition"] = json!(
        "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'c'"
    );
    let updated = sb.put(&path, described).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(
        updated.body["properties"]["description"],
        "managed by wiform"
    );
    assert_eq!(updated.body["properties"]["conditionVersion"], "2.0");

    let got = sb.get(&path).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["properties"]["description"], "managed by wiform");

    // By full id (RoleAssignments_GetById is the same path) and across api-versions.
    let older = sb.get(&path.replace(AUTHZ_API, "2020-10-01-preview")).await;
    assert_eq!(older.status, StatusCode::OK);

    let deleted = sb.delete(&path).await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["name"], name);
    assert_eq!(sb.delete(&path).await.status, StatusCode::NO_CONTENT);
    let gone = sb.get(&path).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.code(), "RoleAssignmentNotFound");
}

#[tokio::test]
async fn the_same_grant_under_another_name_is_role_assignment_exists() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let principal = sb.identity("rg", "app").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let first = guid();
    let created = sb
        .put(
            &assignment_path(&rg_scope("rg"), &first),
            assignment_body(READER, &principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let second = guid();
    let exists = sb
        .put(
            &assignment_path(&rg_scope("rg"), &second),
            assignment_body(READER, &principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(exists.status, StatusCode::CONFLICT);
    assert_eq!(exists.code(), "RoleAssignmentExists");
    assert_eq!(
        exists.body["error"]["message"],
        format!(
            "The role assignment already exists. The ID of the existing role assignment is {}.",
            compact(&first)
        )
    );
    // The same role definition written in its tenant-relative form is the same grant.
    let tenant_form = sb
        .put(
            &assignment_path(&rg_scope("rg"), &second),
            json!({"properties": {
                "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{READER}"),
                "principalId": principal, "principalType": "ServicePrincipal"}}),
        )
        .await;
    assert_eq!(tenant_form.code(), "RoleAssignmentExists");

    // An existing name may not change its role, principal or scope.
    let other_role = sb
        .put(
            &assignment_path(&rg_scope("rg"), &first),
            assignment_body(BLOB_READER, &principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(other_role.status, StatusCode::BAD_REQUEST);
    assert_eq!(other_role.code(), "RoleAssignmentUpdateNotPermitted");
    let other_scope = sb
        .put(
            &assignment_path(&sub_scope(), &first),
            assignment_body(READER, &principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(other_scope.code(), "RoleAssignmentUpdateNotPermitted");
    let other_principal = sb.identity("rg", "other").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let moved = sb
        .put(
            &assignment_path(&rg_scope("rg"), &first),
            assignment_body(READER, &other_principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(moved.code(), "RoleAssignmentUpdateNotPermitted");
}

#[tokio::test]
async fn principal_not_found_within_the_replication_window_unless_principal_type_is_sent() {
    let sb = sandbox_with_faults(Faults {
        replication_delay_ms: 2000,
        ..Default::default()
    })
    .await;
    sb.resource_group("rg").await;
    let principal = sb.identity("rg", "new").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    // Without principalType ARM looks the principal up, and the new one is not there yet.
    let lookup = sb
        .put(
            &assignment_path(&rg_scope("rg"), &guid()),
            assignment_body(READER, &principal, None),
        )
        .await;
    assert_eq!(lookup.status, StatusCode::BAD_REQUEST, "{}", lookup.body);
    assert_eq!(lookup.code(), "PrincipalNotFound");
    let message = lookup.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Principal {} does not exist in the directory {}.",
            compact(&principal),
            wiform_sandbox::state::DEFAULT_TENANT
        )),
        "{message}"
    );
    assert!(message.contains("set the role assignment principalType property"));
    // The documented workaround: say what it is, and the lookup is skipped.
    let typed = sb
        .put(
            &assignment_path(&rg_scope("rg"), &guid()),
            assignment_body(READER, &principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(typed.status, StatusCode::CREATED, "{}", typed.body);
    // An unknown principal fails whatever the request says.
    let unknown = sb
        .put(
            &assignment_path(&rg_scope("rg"), &guid()),
            assignment_body(READER, &guid(), Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(unknown.code(), "PrincipalNotFound");
    // Once replicated, the lookup succeeds and fills the type in from the directory.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let later = sb
        .put(
            &assignment_path(&rg_scope("rg"), &guid()),
            assignment_body(BLOB_READER, &principal, None),
        )
        .await;
    assert_eq!(later.status, StatusCode::CREATED, "{}", later.body);
    assert_eq!(
        later.body["properties"]["principalType"],
        "ServicePrincipal"
    );
    let mismatch = sb
        .put(
            &assignment_path(&rg_scope("rg"), &guid()),
            assignment_body(CONTRIBUTOR, &principal, Some("User")),
        )
        .await;
    assert_eq!(mismatch.status, StatusCode::BAD_REQUEST);
    assert_eq!(mismatch.code(), "UnmatchedPrincipalType");
}

#[tokio::test]
async fn bad_requests_get_the_arm_envelope() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let principal = sb.identity("rg", "app").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let path = assignment_path(&rg_scope("rg"), &guid());
    let cases: Vec<(&str, String, Value, StatusCode, &str)> = vec![
        (
            "name is not a GUID",
            assignment_path(&rg_scope("rg"), "not-a-guid"),
            assignment_body(READER, &principal, None),
            StatusCode::BAD_REQUEST,
            "InvalidRoleAssignmentId",
        ),
        (
            "malformed role definition id",
            path.clone(),
            json!({"properties": {"roleDefinitionId": "Reader", "principalId": principal}}),
            StatusCode::BAD_REQUEST,
            "InvalidRoleDefinitionId",
        ),
        (
            "missing role definition id",
            path.clone(),
            json!({"properties": {"principalId": principal}}),
            StatusCode::BAD_REQUEST,
            "InvalidRoleDefinitionId",
        ),
        (
            "unknown role definition",
            path.clone(),
            assignment_body(&guid(), &principal, None),
            StatusCode::BAD_REQUEST,
            "RoleDefinitionDoesNotExist",
        ),
        (
            "principal id is not a GUID",
            path.clone(),
            assignment_body(READER, "bob", None),
            StatusCode::BAD_REQUEST,
            "InvalidPrincipalId",
        ),
        (
            "principal id has the wrong type",
            path.clone(),
            json!({"properties": {"roleDefinitionId": role_id(READER), "principalId": 7}}),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "unknown principal",
            path.clone(),
            assignment_body(READER, &guid(), None),
            StatusCode::BAD_REQUEST,
            "PrincipalNotFound",
        ),
        (
            "unknown principal type",
            path.clone(),
            assignment_body(READER, &principal, Some("Robot")),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "condition version other than 2.0",
            path.clone(),
            json!({"properties": {"roleDefinitionId": role_id(READER), "principalId": principal, "condition": "x", "conditionVersion": "1.0"}}),
            StatusCode::BAD_REQUEST,
            "InvalidConditionVersion",
        ),
        (
            "no properties",
            path.clone(),
            json!({"roleDefinitionId": role_id(READER)}),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "properties of the wrong type",
            path.clone(),
            json!({"properties": [1, 2]}),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "body is not an object",
            path.clone(),
            json!([1]),
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
        ),
        (
            "unknown resource group",
            assignment_path(&rg_scope("nope"), &guid()),
            assignment_body(READER, &principal, None),
            StatusCode::NOT_FOUND,
            "ResourceGroupNotFound",
        ),
        (
            "unknown subscription",
            assignment_path(
                "/subscriptions/00000000-0000-0000-0000-000000000000",
                &guid(),
            ),
            assignment_body(READER, &principal, None),
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
        ),
        (
            "unknown api-version",
            path.replace(AUTHZ_API, "2021-01-01"),
            assignment_body(READER, &principal, None),
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
        ),
        (
            "no api-version",
            path.replace(&format!("?api-version={AUTHZ_API}"), ""),
            assignment_body(READER, &principal, None),
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
        ),
    ];
    for (what, path, body, status, code) in cases {
        let answer = sb.put(&path, body).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(answer.code(), code, "{what}: {}", answer.body);
        assert!(answer.body["error"]["message"].is_string(), "{what}");
    }
    // Not JSON at all.
    let raw = sb
        .client
        .put(sb.url(&path))
        .bearer_auth(&sb.admin_token)
        .header("content-type", "application/json")
        .body("{\"properties\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidRequestContent");
    // A method the collection does not have.
    let post = sb
        .call(Method::POST, &assignments(&rg_scope("rg")), Some(json!({})))
        .await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn lists_filter_like_the_spec_and_show_the_inherited_view() {
    let sb = sandbox().await;
    sb.resource_group("rg1").await;
    sb.resource_group("rg2").await;
    let p1 = sb.identity("rg1", "id-p1").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let p2 = sb.identity("rg1", "id-p2").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let account = format!(
        "{}/providers/Microsoft.Storage/storageAccounts/acct",
        rg_scope("rg1")
    );
    for (scope, role, principal) in [
        (sub_scope(), READER, &p1),
        (rg_scope("rg1"), CONTRIBUTOR, &p1),
        (account.clone(), BLOB_READER, &p2),
        (rg_scope("rg2"), READER, &p2),
    ] {
        let answer = sb
            .put(
                &assignment_path(&scope, &guid()),
                assignment_body(role, principal, Some("ServicePrincipal")),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    // The sandbox starts with two assignments at the subscription (its admin and reader clients).
    let scopes_of = |items: &[Value]| {
        let mut scopes: Vec<String> = items
            .iter()
            .map(|i| i["properties"]["scope"].as_str().unwrap().to_string())
            .collect();
        scopes.sort();
        scopes
    };
    // No filter: at, above and below.
    let (all_rg1, _) = sb.list_all(&assignments(&rg_scope("rg1"))).await;
    assert_eq!(all_rg1.len(), 5, "{all_rg1:?}");
    assert_eq!(
        scopes_of(&all_rg1),
        sorted(vec![
            account.clone(),
            rg_scope("rg1"),
            sub_scope(),
            sub_scope(),
            sub_scope()
        ])
    );
    // atScope(): at or above.
    let (at_rg1, _) = sb
        .list_all(&format!(
            "{}&$filter=atScope()",
            assignments(&rg_scope("rg1"))
        ))
        .await;
    assert_eq!(
        scopes_of(&at_rg1),
        sorted(vec![rg_scope("rg1"), sub_scope(), sub_scope(), sub_scope()])
    );
    let (at_account, _) = sb
        .list_all(&format!("{}&$filter=atScope()", assignments(&account)))
        .await;
    assert_eq!(at_account.len(), 5);
    // principalId eq: at, above or below, for that principal (quoted or not).
    let (p2_rg1, _) = sb
        .list_all(&format!(
            "{}&$filter=principalId eq '{p2}'",
            assignments(&rg_scope("rg1"))
        ))
        .await;
    assert_eq!(scopes_of(&p2_rg1), vec![account.clone()]);
    let (p1_sub, _) = sb
        .list_all(&format!(
            "{}&$filter=principalId eq {p1}",
            assignments(&sub_scope())
        ))
        .await;
    assert_eq!(
        scopes_of(&p1_sub),
        sorted(vec![rg_scope("rg1"), sub_scope()])
    );
    let (p1_at_rg2, _) = sb
        .list_all(&format!(
            "{}&$filter=atScope() and assignedTo('{p1}')",
            assignments(&rg_scope("rg2"))
        ))
        .await;
    assert_eq!(scopes_of(&p1_at_rg2), [sub_scope()]);
    // The whole subscription: everything, across pages of 5.
    let (everything, pages) = sb.list_all(&assignments(&sub_scope())).await;
    assert_eq!(everything.len(), 6);
    assert_eq!(pages, 2);
    let first_page = sb.get(&assignments(&sub_scope())).await;
    let next = first_page.body["nextLink"].as_str().unwrap();
    assert!(next.starts_with(&sb.url("/subscriptions/")), "{next}");
    assert!(next.contains("api-version=2022-04-01"), "{next}");
    // RoleAssignments_ListForScope.json
    let example = json!({"value": [{
        "properties": {"roleDefinitionId": "x", "principalId": "x", "principalType": "User", "scope": "x"},
        "id": "x", "type": "Microsoft.Authorization/roleAssignments", "name": "x"
    }]});
    assert_shape(&first_page.body, &example, "list");
    for filter in [
        "roleDefinitionId eq 'x'",
        "assignedTo('')",
        "atScope() and",
        "principalId eq 'é",
        "roleName eq 'Reader'",
    ] {
        let bad = sb
            .get(&format!("{}&$filter={filter}", assignments(&sub_scope())))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(bad.code(), "UnsupportedQuery", "{filter}");
    }
}

#[tokio::test]
async fn paging_covers_many_assignments_exactly_once() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let principal = sb.identity("rg", "app").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    for role in BUILTIN_ROLES.iter().take(12) {
        let answer = sb
            .put(
                &assignment_path(&rg_scope("rg"), &guid()),
                assignment_body(role.id, &principal, Some("ServicePrincipal")),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    }
    let (items, pages) = sb
        .list_all(&format!(
            "{}&$filter=principalId eq '{principal}'",
            assignments(&sub_scope())
        ))
        .await;
    assert_eq!(items.len(), 12);
    assert_eq!(pages, 3);
    let mut names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12);
}

#[tokio::test]
async fn the_reader_client_may_read_but_not_assign() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let principal = sb.identity("rg", "app").await["properties"]["principalId"]
        .as_str()
        .unwrap()
        .to_string();
    let name = guid();
    let path = assignment_path(&rg_scope("rg"), &name);
    let denied = sb
        .call_as(
            &sb.reader_token,
            Method::PUT,
            &path,
            Some(assignment_body(
                READER,
                &principal,
                Some("ServicePrincipal"),
            )),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(denied.code(), "AuthorizationFailed");
    let message = denied.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "with object id '{}' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '{}/providers/Microsoft.Authorization/roleAssignments/{name}'",
            reader_object_id(&sb),
            rg_scope("rg")
        )),
        "{message}"
    );
    assert!(message.contains(READER_CLIENT_ID));
    let created = sb
        .put(
            &path,
            assignment_body(READER, &principal, Some("ServicePrincipal")),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let read = sb.call_as(&sb.reader_token, Method::GET, &path, None).await;
    assert_eq!(read.status, StatusCode::OK);
    let listed = sb
        .call_as(
            &sb.reader_token,
            Method::GET,
            &assignments(&rg_scope("rg")),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let delete = sb
        .call_as(&sb.reader_token, Method::DELETE, &path, None)
        .await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    assert_eq!(delete.code(), "AuthorizationFailed");
    let role = sb
        .call_as(
            &sb.reader_token,
            Method::PUT,
            &definition_path(&sub_scope(), &guid()),
            Some(json!({"properties": {"roleName": "x", "assignableScopes": [sub_scope()]}})),
        )
        .await;
    assert_eq!(role.status, StatusCode::FORBIDDEN);
    let roles = sb
        .call_as(
            &sb.reader_token,
            Method::GET,
            &definitions(&sub_scope()),
            None,
        )
        .await;
    assert_eq!(roles.status, StatusCode::OK);
    // Nobody holds a role at the tenant root in the sandbox.
    let root = sb.get(&assignments("")).await;
    assert_eq!(root.status, StatusCode::FORBIDDEN);
    assert_eq!(root.code(), "AuthorizationFailed");
}
