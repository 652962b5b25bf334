use super::*;
use crate::config::{self, SourceFile};

const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";

fn managed(key: &str, location: &str) -> Identity {
    Identity {
        key: key.into(),
        comments: vec![format!("from {key}")],
        kind: IdentityKind::Managed {
            name: key.into(),
            resource_group: "rg-id".into(),
            location: Some(location.into()),
            tags: Vec::new(),
        },
    }
}

fn aks() -> Cluster {
    Cluster {
        key: "prod".into(),
        comments: Vec::new(),
        kind: ClusterKind::Aks {
            subscription_id: Some(SUB.into()),
            resource_group: "rg-aks".into(),
            name: "aks-prod".into(),
            enable_workload_identity: Some(false),
        },
    }
}

fn account(name: &str, credential: &str) -> ServiceAccount {
    ServiceAccount {
        comments: Vec::new(),
        cluster: "prod".into(),
        namespace: "orders".into(),
        name: name.into(),
        identity: "api".into(),
        credential_name: credential.into(),
        audiences: vec![DEFAULT_AUDIENCE.into()],
        annotations: Vec::new(),
        labels: Vec::new(),
        create_namespace: None,
    }
}

fn grant(role_definition_id: Option<&str>, role_name: Option<&str>, scope: &str) -> RoleGrant {
    RoleGrant {
        comments: Vec::new(),
        identity: "api".into(),
        role_definition_id: role_definition_id.map(str::to_string),
        role_name: role_name.map(str::to_string),
        scope: scope.into(),
        condition: None,
    }
}

fn stack() -> Stack {
    Stack {
        name: "orders".into(),
        header: vec!["Imported for a test.".into()],
        tenant_id: Some(TENANT.into()),
        subscription_id: Some(SUB.into()),
        clusters: vec![aks()],
        identities: vec![managed("api", "westeurope")],
        ..Stack::default()
    }
}

/// Checks `text` as `wiform validate` does: no error, no warning.
fn assert_valid(text: &str) {
    let checked = config::check(SourceFile {
        name: "identity.toml".into(),
        text: text.into(),
    });
    assert!(
        checked.diagnostics.is_empty(),
        "{:?}\n{text}",
        checked.diagnostics
    );
}

#[test]
fn federation_name_is_written_only_where_the_live_name_is_not_the_implied_one() {
    let mut s = stack();
    s.service_accounts = vec![
        account("api", "prod-orders-api"),
        account("api.v2", "prod-orders-api-v2"),
        account("worker", "worker-credential"),
    ];
    let text = write(&s).text;
    assert_eq!(text.matches("federation_name").count(), 1, "{text}");
    assert!(text.contains(
        "name = \"worker\"\nidentity = \"api\"\nfederation_name = \"worker-credential\"\n"
    ));
    assert_valid(&text);
}

#[test]
fn audiences_are_written_only_when_they_are_not_the_default() {
    let mut s = stack();
    let mut custom = account("api", "prod-orders-api");
    custom.audiences = vec!["api://custom".into()];
    s.service_accounts = vec![custom, account("worker", "prod-orders-worker")];
    s.federations = vec![Federation {
        comments: Vec::new(),
        identity: "api".into(),
        name: "github-main".into(),
        issuer: issuer::GITHUB_ACTIONS.into(),
        subject: "repo:contoso/orders:ref:refs/heads/main".into(),
        audiences: vec![DEFAULT_AUDIENCE.into()],
    }];
    let text = write(&s).text;
    assert_eq!(text.matches("audiences").count(), 1, "{text}");
    assert!(text.contains("audiences = [\"api://custom\"]"));
    assert_valid(&text);
}

#[test]
fn built_in_roles_are_written_by_name_and_custom_roles_by_guid() {
    let definition = |guid: &str| {
        format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
    };
    let cases = [
        (
            grant(
                Some(&definition("ba92f5b4-2d11-453d-a403-e96b0029c9fe")),
                Some("Storage Blob Data Contributor"),
                "/x",
            ),
            ("Storage Blob Data Contributor", None),
        ),
        // The GUID alone, any case.
        (
            grant(Some("ACDD72A7-3385-48EF-BD42-F606FBA81AE7"), None, "/x"),
            ("Reader", None),
        ),
        // A built-in name as Azure spells it, whatever the case it came in.
        (
            grant(None, Some("key vault secrets user"), "/x"),
            ("Key Vault Secrets User", None),
        ),
        (
            grant(
                Some(&definition("0b5a3c2e-7d41-4c8e-9f3a-6e2d1c4b5a69")),
                Some("Orders Data Reader"),
                "/x",
            ),
            (
                "0b5a3c2e-7d41-4c8e-9f3a-6e2d1c4b5a69",
                Some("Orders Data Reader"),
            ),
        ),
        (
            grant(None, Some("Orders Data Reader"), "/x"),
            ("Orders Data Reader", None),
        ),
    ];
    for (grant, (role, custom)) in cases {
        let (text, name) = role_text(&grant);
        assert_eq!(
            (text.as_str(), name.as_deref()),
            (role, custom),
            "{grant:?}"
        );
    }
    let mut s = stack();
    s.role_grants = vec![grant(
        Some(&definition("0b5a3c2e-7d41-4c8e-9f3a-6e2d1c4b5a69")),
        Some("Orders Data Reader"),
        &format!("/subscriptions/{SUB}/resourceGroups/rg-data"),
    )];
    let text = write(&s).text;
    assert!(
        text.contains(
            "role = \"0b5a3c2e-7d41-4c8e-9f3a-6e2d1c4b5a69\"   # custom role \"Orders Data Reader\"\n"
        ),
        "{text}"
    );
    assert_valid(&text);
}

#[test]
fn scopes_are_relative_where_they_lie_in_the_subscription() {
    let sub = Some(SUB);
    let inside = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/x"
    );
    assert_eq!(
        scope_text(&inside, sub),
        "resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/x"
    );
    assert_eq!(
        scope_text(
            &inside
                .to_uppercase()
                .replace("SUBSCRIPTIONS", "subscriptions"),
            sub
        ),
        "RESOURCEGROUPS/RG-DATA/PROVIDERS/MICROSOFT.STORAGE/STORAGEACCOUNTS/X",
        "the subscription compares without regard to case"
    );
    // The subscription itself, another subscription, a management group: in full.
    let own = format!("/subscriptions/{SUB}");
    assert_eq!(scope_text(&own, sub), own);
    assert_eq!(scope_text(&format!("{own}/"), sub), format!("{own}/"));
    let other = "/subscriptions/cccccccc-0000-4000-8000-000000000001/resourceGroups/rg";
    assert_eq!(scope_text(other, sub), other);
    let group = "/providers/Microsoft.Management/managementGroups/contoso";
    assert_eq!(scope_text(group, sub), group);
    // Without a subscription (a placeholder), everything stays in full.
    assert_eq!(scope_text(&inside, None), inside);
    assert_eq!(scope_text("/subscr", sub), "/subscr");
}

#[test]
fn the_most_common_location_goes_to_azure_and_the_others_stay_on_their_identity() {
    let mut s = stack();
    s.identities = vec![
        managed("id-c", "northeurope"),
        managed("id-a", "West Europe"),
        managed("id-b", "westeurope"),
    ];
    let text = write(&s).text;
    assert!(text.contains("[azure]\ntenant_id"), "{text}");
    assert!(text.contains("location = \"westeurope\"\n\n"), "{text}");
    assert_eq!(text.matches("location = ").count(), 2, "{text}");
    assert!(
        text.contains(
            "[identities.id-c]\nresource_group = \"rg-id\"\nlocation = \"northeurope\"\n"
        )
    );
    // Identities in name order, whatever the order they came in.
    let a = text.find("[identities.id-a]").unwrap();
    assert!(a < text.find("[identities.id-b]").unwrap());
    assert_valid(&text);
}

#[test]
fn names_and_display_names_are_written_only_when_they_are_not_the_key() {
    let mut s = stack();
    s.identities = vec![
        Identity {
            key: "ab-x".into(),
            comments: Vec::new(),
            kind: IdentityKind::Managed {
                name: "ab x".replace(' ', "_"),
                resource_group: "rg".into(),
                location: None,
                tags: vec![("team".into(), "orders".into()), ("a b".into(), "c".into())],
            },
        },
        Identity {
            key: "Orders-CI".into(),
            comments: Vec::new(),
            kind: IdentityKind::Application {
                display_name: "Orders CI".into(),
            },
        },
        Identity {
            key: "ci".into(),
            comments: Vec::new(),
            kind: IdentityKind::Application {
                display_name: "ci".into(),
            },
        },
    ];
    s.clusters.clear();
    let text = write(&s).text;
    assert!(
        text.contains("[identities.ab-x]\nname = \"ab_x\"\n"),
        "{text}"
    );
    assert!(
        text.contains("tags = { team = \"orders\", \"a b\" = \"c\" }"),
        "{text}"
    );
    assert!(text.contains(
        "[identities.Orders-CI]\nkind = \"application\"\ndisplay_name = \"Orders CI\"\n"
    ));
    // Keys in name order, whatever their case.
    assert!(
        text.contains("[identities.ci]\nkind = \"application\"\n\n[identities.Orders-CI]"),
        "{text}"
    );
    assert!(
        !text.contains("location"),
        "no location known, none written:\n{text}"
    );
}

#[test]
fn wiforms_own_annotations_are_left_to_it_and_reserved_keys_become_notes() {
    let mut s = stack();
    let mut sa = account("api", "prod-orders-api");
    sa.annotations = vec![
        ("azure.workload.identity/client-id".into(), "x".into()),
        ("azure.workload.identity/tenant-id".into(), TENANT.into()),
        (
            "azure.workload.identity/service-account-token-expiration".into(),
            "3600".into(),
        ),
        ("azure.workload.identity/skip-containers".into(), "a".into()),
        ("example.com/owner".into(), "team a".into()),
    ];
    sa.labels = vec![
        ("app".into(), "api".into()),
        ("azure.workload.identity/use".into(), "true".into()),
        ("app.kubernetes.io/managed-by".into(), "Terraform".into()),
        ("bad key!".into(), "x".into()),
        ("tier".into(), "not a label value".into()),
    ];
    let mut expired = account("worker", "prod-orders-worker");
    expired.annotations = vec![(
        "azure.workload.identity/service-account-token-expiration".into(),
        "60".into(),
    )];
    s.service_accounts = vec![sa, expired];
    if let IdentityKind::Managed { tags, .. } = &mut s.identities[0].kind {
        tags.push(("wiform-stack".into(), "other".into()));
    }
    let written = write(&s);
    let text = &written.text;
    assert!(text.contains("token_expiration = 3600\n"), "{text}");
    assert!(text.contains("annotations = { \"example.com/owner\" = \"team a\" }\n"));
    assert!(text.contains("labels = { app = \"api\" }\n"));
    assert!(
        !text.contains("client-id") && !text.contains("tenant-id"),
        "{text}"
    );
    let notes = written.notes.join("\n");
    for expected in [
        "annotation azure.workload.identity/skip-containers is not written (wiform manages the azure.workload.identity/ keys)",
        "label azure.workload.identity/use is not written (it belongs on the pods",
        "label app.kubernetes.io/managed-by is not written (wiform writes this label itself)",
        "label bad key! is not written (its key is not valid",
        "label tier is not written (its value is not valid",
        "service account orders/worker on cluster prod: annotation azure.workload.identity/service-account-token-expiration = \"60\" is not a lifetime wiform accepts",
        "identity api: tag \"wiform-stack\" = \"other\" is a wiform marker",
    ] {
        assert!(
            notes.contains(expected),
            "missing {expected:?} in:\n{notes}"
        );
    }
    assert_valid(text);
}

#[test]
fn federations_say_who_issues_their_tokens() {
    let mut s = stack();
    s.federations = vec![Federation {
        comments: vec!["terraform: a.b".into()],
        identity: "api".into(),
        name: "gitlab-main".into(),
        issuer: "https://gitlab.com".into(),
        subject: "project_path:contoso/orders:ref_type:branch:ref:main".into(),
        audiences: vec![DEFAULT_AUDIENCE.into()],
    }];
    let text = write(&s).text;
    assert!(
        text.contains(
            "# GitLab.com: branch main of contoso/orders\n# terraform: a.b\n[[federations]]\n"
        ),
        "{text}"
    );
}

#[test]
fn unknown_tenant_and_subscription_are_placeholders_with_a_note() {
    let mut s = stack();
    s.tenant_id = None;
    s.subscription_id = None;
    s.role_grants = vec![grant(
        None,
        Some("Reader"),
        &format!("/subscriptions/{SUB}/resourceGroups/rg"),
    )];
    let written = write(&s);
    assert_eq!(written.placeholders, ["tenant_id", "subscription_id"]);
    assert!(written.text.contains(
        "tenant_id = \"REPLACE-WITH-TENANT-ID\"   # placeholder: see the notes at the end\n"
    ));
    assert!(
        written
            .notes
            .iter()
            .any(|n| n.contains("az account show --query tenantId"))
    );
    // With no subscription known, scopes stay in full and the cluster says its own.
    assert!(written.text.contains(&format!(
        "scope = \"/subscriptions/{SUB}/resourceGroups/rg\""
    )));
    assert!(written.text.contains(&format!(
        "subscription_id = \"{SUB}\"\nenable_workload_identity"
    )));
}

#[test]
fn notes_close_the_file_as_wrapped_comments() {
    let mut s = stack();
    s.notes = vec![format!("a note {}", "word ".repeat(40).trim_end())];
    let written = write(&s);
    let tail = written
        .text
        .split("# Notes from the import")
        .nth(1)
        .unwrap();
    assert!(
        tail.lines()
            .skip(1)
            .all(|l| l.starts_with("# ") && l.len() <= 100),
        "{tail}"
    );
    assert!(tail.contains("\n# - a note word"));
    assert!(tail.contains("\n#   word"));
    assert_eq!(written.notes.len(), 1);
    assert_valid(&written.text);
}

#[test]
fn the_output_does_not_depend_on_the_order_objects_came_in() {
    let mut s = stack();
    s.identities = vec![
        managed("api", "westeurope"),
        managed("worker", "westeurope"),
    ];
    s.service_accounts = vec![account("b", "x-b"), account("a", "x-a")];
    s.role_grants = vec![
        grant(
            None,
            Some("Reader"),
            &format!("/subscriptions/{SUB}/resourceGroups/b"),
        ),
        grant(
            None,
            Some("Reader"),
            &format!("/subscriptions/{SUB}/resourceGroups/a"),
        ),
    ];
    let mut reversed = s.clone();
    reversed.identities.reverse();
    reversed.service_accounts.reverse();
    reversed.role_grants.reverse();
    assert_eq!(write(&s).text, write(&reversed).text);
    assert_valid(&write(&s).text);
}

#[test]
fn the_state_rm_command_quotes_each_address_for_a_posix_shell() {
    assert_eq!(
        state_rm_command(&["module.x.azurerm_user_assigned_identity.this[\"api\"]".into()]),
        r#"terraform state rm 'module.x.azurerm_user_assigned_identity.this["api"]'"#
    );
    assert_eq!(
        state_rm_command(&["a.b[0]".into(), "a.b[\"it's $HOME\"]".into()]),
        "terraform state rm \\\n  'a.b[0]' \\\n  'a.b[\"it'\\''s $HOME\"]'"
    );
    // What a shell makes of it: the addresses, unchanged.
    let script = format!(
        "set -- {}; printf '%s\\n' \"$@\"",
        state_rm_command(&["a.b[\"it's $HOME\"]".into(), "c.d[`x`]".into()])
            .trim_start_matches("terraform state rm")
            .replace("\\\n", "")
    );
    let output = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "a.b[\"it's $HOME\"]\nc.d[`x`]\n"
    );
}
