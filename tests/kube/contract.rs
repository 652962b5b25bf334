//! The Kubernetes contract wiform depends on, written once and run against the real
//! kube-apiserver and the sandbox's emulator. Where they differ, the emulator is wrong.
//!
//! Operations: list with a label selector, server-side apply (create, update, a conflict with
//! another field manager, force), fields of other managers left alone, delete, TokenRequest,
//! OIDC discovery + JWKS (the token's signature verifies), 403 for a read-only user, 404, 409.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// A Kubernetes API to check.
pub struct Target {
    pub name: &'static str,
    pub server: String,
    pub ca_pem: String,
    pub admin_token: String,
    pub reader_token: String,
    /// The service-account issuer (`iss` of minted tokens, base of OIDC discovery).
    pub issuer: String,
}

impl Target {
    pub fn client(&self, token: &str) -> kube::Client {
        let mut config = kube::Config::new(self.server.parse().expect("server URL"));
        let der: Vec<Vec<u8>> = rustls_pemfile_certs(&self.ca_pem);
        config.root_cert = Some(der);
        config.auth_info.token = Some(token.to_string().into());
        kube::Client::try_from(config).expect("kube client")
    }

    fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .build()
            .unwrap()
    }
}

/// DER certificates of a PEM bundle.
fn rustls_pemfile_certs(pem: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    pem.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|block| block.split("-----END CERTIFICATE-----").next())
        .map(|b64| {
            base64::engine::general_purpose::STANDARD
                .decode(b64.split_whitespace().collect::<String>())
                .expect("PEM")
        })
        .collect()
}

fn status(error: kube::Error) -> kube::core::Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected a Kubernetes Status, got {other:?}"),
    }
}

fn account(namespace: &str, name: &str, labels: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": name, "namespace": namespace, "labels": labels, "annotations": annotations },
    })
}

fn managers(sa: &ServiceAccount) -> Vec<String> {
    sa.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect()
}

/// Every operation, in order, in a namespace of its own.
pub async fn run(target: &Target) {
    let t = target.name;
    let admin = target.client(&target.admin_token);
    let reader = target.client(&target.reader_token);
    let namespace = format!("contract-{}", uuid_suffix());

    // Namespaces: SSA creates one; creating it again with POST is 409 AlreadyExists.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let ns = namespaces
        .patch(
            &namespace,
            &PatchParams::apply("wiform"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"wiform.io/stack": "contract"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: apply namespace: {e}"));
    assert_eq!(ns.metadata.name.as_deref(), Some(namespace.as_str()), "{t}");
    assert!(
        ns.metadata.resource_version.is_some(),
        "{t}: resourceVersion"
    );
    let again = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
        )
        .await;
    let conflict = status(again.expect_err("create twice"));
    assert_eq!(
        (conflict.code, conflict.reason.as_str()),
        (409, "AlreadyExists"),
        "{t}: {conflict:?}"
    );
    assert_eq!(
        conflict.message,
        format!("namespaces \"{namespace}\" already exists"),
        "{t}"
    );

    // SSA create of a service account.
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), &namespace);
    let created = accounts
        .patch(
            "api",
            &PatchParams::apply("wiform"),
            &Patch::Apply(account(&namespace, "api", json!({"wiform.io/stack": "contract"}), json!({"azure.workload.identity/client-id": "11111111-1111-1111-1111-111111111111"}))),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: apply service account: {e}"));
    let first_version = created
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");
    assert!(created.metadata.uid.is_some(), "{t}: uid");
    assert!(
        created.metadata.creation_timestamp.is_some(),
        "{t}: creationTimestamp"
    );
    assert_eq!(managers(&created), ["wiform"], "{t}");
    let managed = &created.metadata.managed_fields.as_ref().unwrap()[0];
    assert_eq!(managed.operation.as_deref(), Some("Apply"), "{t}");
    assert_eq!(managed.fields_type.as_deref(), Some("FieldsV1"), "{t}");
    let fields = serde_json::to_value(&managed.fields_v1).unwrap();
    assert!(
        fields["f:metadata"]["f:annotations"]["f:azure.workload.identity/client-id"].is_object(),
        "{t}: {fields}"
    );
    assert!(
        fields["f:metadata"]["f:labels"]["f:wiform.io/stack"].is_object(),
        "{t}: {fields}"
    );

    // An unlabelled account in the same namespace, created by another manager.
    let other = accounts
        .patch(
            "other",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(account(&namespace, "other", json!({}), json!({}))),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: apply other: {e}"));
    assert_eq!(managers(&other), ["someone-else"], "{t}");

    // List with a label selector, across namespaces and in one.
    let selector = ListParams::default().labels("wiform.io/stack=contract");
    let everywhere: Api<ServiceAccount> = Api::all(admin.clone());
    let listed = everywhere
        .list(&selector)
        .await
        .unwrap_or_else(|e| panic!("{t}: list: {e}"));
    let names: Vec<String> = listed
        .items
        .iter()
        .filter(|sa| sa.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter_map(|sa| sa.metadata.name.clone())
        .collect();
    assert_eq!(names, ["api"], "{t}");
    assert!(
        listed.metadata.resource_version.is_some(),
        "{t}: list resourceVersion"
    );
    let in_namespace = accounts.list(&ListParams::default()).await.unwrap();
    let mut all: Vec<String> = in_namespace
        .items
        .iter()
        .filter_map(|sa| sa.metadata.name.clone())
        .collect();
    all.sort();
    assert_eq!(all, ["api", "other"], "{t}");
    let not_in = accounts
        .list(&ListParams::default().labels("wiform.io/stack=nobody"))
        .await
        .unwrap();
    assert!(not_in.items.is_empty(), "{t}");

    // Another manager adds a label of its own: wiform's next apply leaves it alone.
    accounts
        .patch(
            "api",
            &PatchParams::apply("team-tool"),
            &Patch::Apply(account(
                &namespace,
                "api",
                json!({"team": "orders"}),
                json!({}),
            )),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: team-tool apply: {e}"));
    let updated = accounts
        .patch(
            "api",
            &PatchParams::apply("wiform"),
            &Patch::Apply(account(&namespace, "api", json!({"wiform.io/stack": "contract"}), json!({"azure.workload.identity/client-id": "22222222-2222-2222-2222-222222222222"}))),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: update: {e}"));
    let annotations = updated.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get("azure.workload.identity/client-id")
            .map(String::as_str),
        Some("22222222-2222-2222-2222-222222222222"),
        "{t}"
    );
    let labels: BTreeMap<String, String> = updated.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("orders"),
        "{t}: another manager's field stays"
    );
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(first_version.as_str()),
        "{t}: resourceVersion changes"
    );
    let mut owners = managers(&updated);
    owners.sort();
    assert_eq!(owners, ["team-tool", "wiform"], "{t}");

    // A field wiform owns, applied with another value by another manager: 409 Conflict naming
    // wiform; with force, it moves.
    let taken = account(
        &namespace,
        "api",
        json!({}),
        json!({"azure.workload.identity/client-id": "33333333-3333-3333-3333-333333333333"}),
    );
    let refused = accounts
        .patch(
            "api",
            &PatchParams::apply("intruder"),
            &Patch::Apply(taken.clone()),
        )
        .await;
    let refused = status(refused.expect_err("conflict"));
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (409, "Conflict"),
        "{t}: {refused:?}"
    );
    assert_eq!(
        refused.message,
        "Apply failed with 1 conflict: conflict with \"wiform\": .metadata.annotations.azure.workload.identity/client-id",
        "{t}"
    );
    let forced = accounts
        .patch(
            "api",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(taken),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: force: {e}"));
    assert_eq!(
        forced
            .metadata
            .annotations
            .unwrap_or_default()
            .get("azure.workload.identity/client-id")
            .map(String::as_str),
        Some("33333333-3333-3333-3333-333333333333"),
        "{t}"
    );
    let back = accounts
        .patch(
            "api",
            &PatchParams::apply("wiform"),
            &Patch::Apply(account(&namespace, "api", json!({"wiform.io/stack": "contract"}), json!({"azure.workload.identity/client-id": "22222222-2222-2222-2222-222222222222"}))),
        )
        .await;
    let back = status(back.expect_err("now the intruder owns it"));
    assert_eq!(back.reason, "Conflict", "{t}");
    assert!(
        back.message.contains("conflict with \"intruder\""),
        "{t}: {}",
        back.message
    );

    // The read-only user may list but not write: 403 with the missing verb.
    let reader_accounts: Api<ServiceAccount> = Api::namespaced(reader.clone(), &namespace);
    assert_eq!(
        reader_accounts
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("{t}: reader list: {e}"))
            .items
            .len(),
        2,
        "{t}"
    );
    let denied = reader_accounts
        .patch(
            "api",
            &PatchParams::apply("wiform"),
            &Patch::Apply(account(&namespace, "api", json!({}), json!({}))),
        )
        .await;
    let denied = status(denied.expect_err("read-only"));
    assert_eq!(
        (denied.code, denied.reason.as_str()),
        (403, "Forbidden"),
        "{t}: {denied:?}"
    );
    assert_eq!(
        denied.message,
        format!(
            "serviceaccounts \"api\" is forbidden: User \"reader\" cannot patch resource \"serviceaccounts\" in API group \"\" in the namespace \"{namespace}\""
        ),
        "{t}"
    );
    let denied_token = reader_accounts
        .create_token_request(
            "api",
            &PostParams::default(),
            &token_request(&["api://AzureADTokenExchange"]),
        )
        .await;
    let denied_token = status(denied_token.expect_err("no token rights"));
    assert_eq!(denied_token.code, 403, "{t}");
    assert_eq!(
        denied_token.message,
        format!(
            "serviceaccounts \"api\" is forbidden: User \"reader\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"{namespace}\""
        ),
        "{t}"
    );

    // 404 for what does not exist.
    let missing = status(accounts.get("nobody").await.expect_err("missing"));
    assert_eq!(
        (missing.code, missing.reason.as_str()),
        (404, "NotFound"),
        "{t}"
    );
    assert_eq!(
        missing.message, "serviceaccounts \"nobody\" not found",
        "{t}"
    );

    // TokenRequest: a JWT whose claims are those of a projected token, signed with a key the
    // issuer publishes.
    let minted = accounts
        .create_token_request(
            "api",
            &PostParams::default(),
            &token_request(&["api://AzureADTokenExchange"]),
        )
        .await
        .unwrap_or_else(|e| panic!("{t}: token request: {e}"));
    let status_field = minted.status.expect("token status");
    let token = status_field.token;
    let claims = decode_unverified(&token);
    assert_eq!(claims["iss"], target.issuer.as_str(), "{t}");
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{namespace}:api"),
        "{t}"
    );
    assert_eq!(claims["aud"], json!(["api://AzureADTokenExchange"]), "{t}");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600, "{t}");
    assert_eq!(
        claims["kubernetes.io"]["namespace"],
        namespace.as_str(),
        "{t}"
    );
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"]["name"], "api",
        "{t}"
    );
    assert!(
        claims["kubernetes.io"]["serviceaccount"]["uid"].is_string(),
        "{t}"
    );
    let no_account = accounts
        .create_token_request("nobody", &PostParams::default(), &token_request(&["x"]))
        .await;
    assert_eq!(
        status(no_account.expect_err("no such account")).code,
        404,
        "{t}"
    );

    // OIDC discovery, anonymously, as Entra reads it; the token verifies against the JWKS.
    let http = target.http();
    let discovery: Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            target.issuer.trim_end_matches('/')
        ))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{t}: discovery: {e}"))
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], target.issuer.as_str(), "{t}");
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"],
        json!(["RS256"]),
        "{t}"
    );
    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or_else(|e| panic!("{t}: jwks: {e}"));
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "{t}");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .unwrap_or_else(|| panic!("{t}: kid not in the JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["api://AzureADTokenExchange"]);
    validation.set_issuer(&[target.issuer.as_str()]);
    jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .unwrap_or_else(|e| panic!("{t}: signature: {e}"));

    // Delete: 200, then 404; deleting again is 404.
    accounts
        .delete("other", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("{t}: delete: {e}"));
    assert_eq!(
        status(accounts.get("other").await.expect_err("deleted")).code,
        404,
        "{t}"
    );
    let twice = status(
        accounts
            .delete("other", &DeleteParams::default())
            .await
            .map(|_| ())
            .expect_err("gone"),
    );
    assert_eq!(
        (twice.code, twice.reason.as_str()),
        (404, "NotFound"),
        "{t}"
    );
}

fn token_request(audiences: &[&str]) -> TokenRequest {
    TokenRequest {
        spec: TokenRequestSpec {
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        },
        ..Default::default()
    }
}

fn decode_unverified(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn uuid_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 0xffff_ffff
    )
}

#[tokio::test]
async fn contract_holds_on_the_real_kube_apiserver() {
    let server = crate::kube_server::kube_server();
    let target = Target {
        name: "kube-apiserver",
        server: server.server.clone(),
        ca_pem: server.ca_pem(),
        admin_token: server.admin_token.clone(),
        reader_token: server.reader_token.clone(),
        issuer: server.issuer.clone(),
    };
    run(&target).await;
}

#[tokio::test]
async fn contract_holds_on_the_sandbox_emulator() {
    let sandbox = wiform_sandbox::start(wiform_sandbox::Options::default())
        .await
        .unwrap();
    let cluster = wiform_sandbox::kube::standalone(&sandbox.app).unwrap();
    let target = Target {
        name: "sandbox",
        server: cluster.server,
        ca_pem: sandbox.ca_pem().to_string(),
        admin_token: cluster.admin_token,
        reader_token: cluster.reader_token,
        issuer: cluster.issuer,
    };
    run(&target).await;
}
