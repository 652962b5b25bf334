use super::*;
use crate::config::{self, SourceFile};
use crate::import::write;

const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const ISSUER: &str = "https://oidc.example.net/issuer/aks-1/";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

fn identity(rg: &str, name: &str, n: u8) -> FoundIdentity {
    FoundIdentity {
        id: format!(
            "/subscriptions/{SUB}/resourcegroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
        ),
        name: name.into(),
        resource_group: rg.into(),
        location: "westeurope".into(),
        tags: vec![("team".into(), "cats".into())],
        client_id: format!("00000000-0000-4000-8000-00000000000{n}"),
        principal_id: format!("11111111-0000-4000-8000-00000000000{n}"),
        application: false,
    }
}

fn credential(of: &FoundIdentity, name: &str, issuer: &str, subject: &str) -> FoundCredential {
    FoundCredential {
        identity_id: of.id.clone(),
        id: format!("{}/federatedIdentityCredentials/{name}", of.id),
        name: name.into(),
        issuer: issuer.into(),
        subject: subject.into(),
        audiences: vec!["api://AzureADTokenExchange".into()],
    }
}

fn account(namespace: &str, name: &str, client_id: &str) -> FoundServiceAccount {
    FoundServiceAccount {
        cluster: 0,
        namespace: namespace.into(),
        name: name.into(),
        annotations: vec![(CLIENT_ID_ANNOTATION.into(), client_id.into())],
        labels: vec![("app".into(), "cats".into())],
    }
}

fn aks() -> FoundCluster {
    FoundCluster {
        kind: FoundClusterKind::Aks {
            subscription_id: SUB.into(),
            resource_group: "rg-aks".into(),
            name: "aks-1".into(),
            id: format!(
                "/subscriptions/{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-1"
            ),
            workload_identity_enabled: true,
        },
        issuer: Some(ISSUER.into()),
    }
}

fn found() -> Found {
    let cats = identity("rg-cats", "CatsApiIdentity", 1);
    let dogs = identity("rg-dogs", "dogs", 2);
    let idle = identity("rg-cats", "no-credential", 3);
    Found {
        tenant_id: TENANT.into(),
        subscription_id: SUB.into(),
        resource_groups: Vec::new(),
        source: format!("subscription {SUB}"),
        credentials: vec![
            // Hand-named: federation_name needed.
            credential(
                &cats,
                "CatsApiFederatedIdentity",
                ISSUER,
                "system:serviceaccount:cats:cats-api-sa",
            ),
            // The implied name: no federation_name.
            credential(
                &dogs,
                "aks-1-dogs-dogs-sa",
                ISSUER,
                "system:serviceaccount:dogs:dogs-sa",
            ),
            // Its account is annotated with another identity's client id.
            credential(
                &dogs,
                "dogs-on-cats",
                ISSUER,
                "system:serviceaccount:cats:other",
            ),
            credential(
                &cats,
                "github-main",
                "https://token.actions.githubusercontent.com",
                "repo:example/cats:ref:refs/heads/main",
            ),
            // Two audiences: not expressible.
            FoundCredential {
                audiences: vec!["a".into(), "b".into()],
                ..credential(&cats, "two-audiences", ISSUER, "system:serviceaccount:x:y")
            },
        ],
        assignments: vec![
            FoundAssignment {
                id: format!(
                    "/subscriptions/{SUB}/resourceGroups/rg-cats/providers/Microsoft.Authorization/roleAssignments/5f3c"
                ),
                // As the list gives it: lower case.
                scope: format!("/subscriptions/{SUB}/resourcegroups/rg-cats"),
                role_definition_id: format!(
                    "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
                ),
                principal_id: cats.principal_id.to_uppercase(),
                condition: None,
            },
            // The same grant again under another name.
            FoundAssignment {
                id: "/subscriptions/x/roleAssignments/dup".into(),
                scope: format!("/subscriptions/{SUB}/resourceGroups/rg-cats"),
                role_definition_id: READER.into(),
                principal_id: cats.principal_id.clone(),
                condition: None,
            },
            // Someone else's.
            FoundAssignment {
                id: "/subscriptions/x/roleAssignments/other".into(),
                scope: format!("/subscriptions/{SUB}"),
                role_definition_id: READER.into(),
                principal_id: "99999999-0000-4000-8000-000000000009".into(),
                condition: None,
            },
        ],
        clusters: vec![aks()],
        service_accounts: vec![
            account("cats", "cats-api-sa", &cats.client_id.to_uppercase()),
            account("dogs", "dogs-sa", &dogs.client_id),
            account("cats", "other", &cats.client_id),
        ],
        identities: vec![cats, dogs, idle],
    }
}

fn validates(stack: &Stack) -> String {
    let written = write::write(stack);
    let checked = config::check(SourceFile {
        name: "identity.toml".into(),
        text: written.text.clone(),
    });
    assert_eq!(
        checked.diagnostics.errors(),
        0,
        "{:?}\n{}",
        checked.diagnostics,
        written.text
    );
    written.text
}

#[test]
fn a_credential_of_an_annotated_account_on_a_named_cluster_is_a_service_account() {
    let stack = map(&found(), "cats");
    let accounts: Vec<(&str, &str, &str, &str)> = stack
        .service_accounts
        .iter()
        .map(|a| {
            (
                a.namespace.as_str(),
                a.name.as_str(),
                a.identity.as_str(),
                a.credential_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [
            (
                "cats",
                "cats-api-sa",
                "CatsApiIdentity",
                "CatsApiFederatedIdentity"
            ),
            ("dogs", "dogs-sa", "dogs", "aks-1-dogs-dogs-sa"),
        ]
    );
    assert_eq!(stack.clusters.len(), 1);
    assert_eq!(
        stack.clusters[0].kind,
        ClusterKind::Aks {
            subscription_id: None,
            resource_group: "rg-aks".into(),
            name: "aks-1".into(),
            enable_workload_identity: None,
        }
    );
    let text = validates(&stack);
    // federation_name only where the live name is not the implied one.
    assert_eq!(text.matches("federation_name").count(), 1, "{text}");
    assert!(
        text.contains("federation_name = \"CatsApiFederatedIdentity\""),
        "{text}"
    );
}

#[test]
fn every_other_credential_is_a_federation_and_says_why() {
    let stack = map(&found(), "cats");
    let federations: Vec<(&str, &str)> = stack
        .federations
        .iter()
        .map(|f| (f.identity.as_str(), f.name.as_str()))
        .collect();
    assert_eq!(
        federations,
        [("CatsApiIdentity", "github-main"), ("dogs", "dogs-on-cats")]
    );
    let other = &stack.federations[1];
    assert!(
        other
            .comments
            .iter()
            .any(|c| c.contains("annotated with client id")),
        "{:?}",
        other.comments
    );
    let text = validates(&stack);
    assert!(
        text.contains("GitHub"),
        "the writer names GitHub Actions:\n{text}"
    );
}

#[test]
fn role_assignments_of_imported_principals_are_grants_by_name_and_relative_scope() {
    let stack = map(&found(), "cats");
    assert_eq!(stack.role_grants.len(), 1, "{:?}", stack.role_grants);
    assert_eq!(stack.role_grants[0].identity, "CatsApiIdentity");
    let text = validates(&stack);
    assert!(text.contains("role = \"Reader\""), "{text}");
    assert!(
        text.contains("scope = \"resourceGroups/rg-cats\""),
        "{text}"
    );
    assert!(
        stack
            .notes
            .iter()
            .any(|n| n.contains("dup") && n.contains("already has role Reader")),
        "{:?}",
        stack.notes
    );
}

#[test]
fn what_cannot_be_expressed_is_a_note_and_identities_without_credentials_are_left() {
    let mut input = found();
    input.service_accounts.push(account(
        "lonely",
        "sa",
        "00000000-0000-4000-8000-000000000099",
    ));
    let stack = map(&input, "cats");
    let keys: Vec<&str> = stack.identities.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["CatsApiIdentity", "dogs"]);
    let notes = stack.notes.join("\n");
    assert!(notes.contains("two-audiences"), "{notes}");
    assert!(notes.contains("lonely/sa"), "{notes}");
    validates(&stack);
}

#[test]
fn resource_groups_limit_the_identities_and_unused_clusters_are_noted() {
    let mut input = found();
    input.resource_groups = vec!["RG-DOGS".into()];
    input.service_accounts.retain(|sa| sa.namespace == "cats");
    let stack = map(&input, "dogs");
    let keys: Vec<&str> = stack.identities.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["dogs"]);
    assert!(stack.service_accounts.is_empty());
    assert!(stack.clusters.is_empty());
    assert!(
        stack.notes.iter().any(|n| n.contains("binds no imported")),
        "{:?}",
        stack.notes
    );
    validates(&stack);
}

#[test]
fn a_cluster_without_workload_identity_is_left_as_it_is() {
    let mut input = found();
    if let FoundClusterKind::Aks {
        workload_identity_enabled,
        ..
    } = &mut input.clusters[0].kind
    {
        *workload_identity_enabled = false;
    }
    let stack = map(&input, "cats");
    let text = validates(&stack);
    assert!(text.contains("enable_workload_identity = false"), "{text}");
}

#[test]
fn a_kube_context_cluster_is_written_with_its_discovered_issuer() {
    let mut input = found();
    input.clusters = vec![FoundCluster {
        kind: FoundClusterKind::Context {
            kube_context: "kind-cats".into(),
        },
        issuer: Some(ISSUER.into()),
    }];
    let stack = map(&input, "cats");
    assert_eq!(
        stack.clusters[0].kind,
        ClusterKind::Issuer {
            issuer: ISSUER.into(),
            kube_context: "kind-cats".into(),
        }
    );
    assert_eq!(stack.service_accounts[0].cluster, "kind-cats");
    let text = validates(&stack);
    // The implied name now has the cluster key kind-cats: the credential named for aks-1 keeps
    // its name with federation_name.
    assert!(
        text.contains("federation_name = \"aks-1-dogs-dogs-sa\""),
        "{text}"
    );
}

#[test]
fn an_app_registration_with_a_credential_is_an_application_identity() {
    let app = FoundIdentity {
        id: "3c1e0000-0000-4000-8000-0000000000aa".into(),
        name: "Cats Web".into(),
        client_id: "00000000-0000-4000-8000-0000000000aa".into(),
        principal_id: "11111111-0000-4000-8000-0000000000aa".into(),
        application: true,
        ..FoundIdentity::default()
    };
    let mut found = found();
    found.credentials.push(FoundCredential {
        identity_id: app.id.clone(),
        id: "fic-web".into(),
        name: "web-main".into(),
        issuer: "https://token.actions.githubusercontent.com".into(),
        subject: "repo:example/web:ref:refs/heads/main".into(),
        audiences: vec!["api://AzureADTokenExchange".into()],
    });
    found.assignments.push(FoundAssignment {
        id: format!("/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Authorization/roleAssignments/77"),
        scope: format!("/subscriptions/{SUB}/resourceGroups/rg-web"),
        role_definition_id: format!(
            "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER}"
        ),
        principal_id: app.principal_id.clone(),
        condition: None,
    });
    found.identities.push(app);
    let text = validates(&map(&found, "cats"));
    assert!(text.contains("kind = \"application\""), "{text}");
    assert!(text.contains("display_name = \"Cats Web\""), "{text}");
    assert!(
        text.contains("subject = \"repo:example/web:ref:refs/heads/main\""),
        "{text}"
    );
    assert!(text.contains("scope = \"resourceGroups/rg-web\""), "{text}");
    assert!(text.contains("app registration Cats Web"), "{text}");
}
