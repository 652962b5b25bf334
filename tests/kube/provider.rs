//! The Kubernetes provider against the real kube-apiserver: observe (list calls only, counted),
//! server-side apply (create, update, idempotent, other managers' fields kept, conflicts and
//! force), guarded deletes, issuer discovery, TokenRequest, and the errors users see (403 with
//! the missing verb, 401, unreachable server, unknown context).
//!
//! Each test works in namespaces and under a stack name of its own, so the tests share one server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use wiform::ownership::{Marker, Owner, SPEC_HASH_ANNOTATION};
use wiform::providers::kube::{
    CLIENT_ID_ANNOTATION, ClusterApi, Deletion, DesiredNamespace, DesiredServiceAccount,
    KubeCluster, KubeErrorKind, KubeconfigSource, LiveNamespace, TENANT_ID_ANNOTATION,
    TOKEN_EXPIRATION_ANNOTATION, check_issuer, load_config,
};

use crate::kube_server::{KubeServer, kube_server};

const CLIENT_A: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT_B: &str = "22222222-2222-2222-2222-222222222222";
const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// A name no other test (or earlier run on the same server) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{:x}{:x}{}",
        std::process::id() % 0xfff,
        nanos % 0xfffff,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn context(server: &KubeServer, context: &str) -> KubeconfigSource {
    KubeconfigSource::File {
        path: Some(server.kubeconfig.clone()),
        context: Some(context.into()),
    }
}

async fn admin() -> KubeCluster {
    KubeCluster::connect("test", &context(kube_server(), "kube-server"))
        .await
        .expect("admin connects")
}

async fn reader() -> KubeCluster {
    KubeCluster::connect("test", &context(kube_server(), "kube-server-reader"))
        .await
        .expect("reader connects")
}

/// Every request a client sends, as `METHOD path?query`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Recording<S> {
    inner: S,
    log: Arc<Mutex<Vec<String>>>,
}

impl<S> tower::Layer<S> for Recorder {
    type Service = Recording<S>;
    fn layer(&self, inner: S) -> Recording<S> {
        Recording {
            inner,
            log: self.0.clone(),
        }
    }
}

impl<S, B> tower::Service<http::Request<B>> for Recording<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let uri = request.uri();
        let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        // kube-rs writes `path?` and `path?&a=b`: record `path` and `path?a=b`.
        let target = target.trim_end_matches('?').replacen("?&", "?", 1);
        let line = format!("{} {}", request.method(), target);
        self.log.lock().unwrap().push(line);
        self.inner.call(request)
    }
}

/// The admin cluster, with every request it sends recorded.
async fn recorded_admin() -> (KubeCluster, Recorder) {
    let loaded = load_config("test", &context(kube_server(), "kube-server"))
        .await
        .unwrap();
    let recorder = Recorder::default();
    let client = kube::client::ClientBuilder::try_from(loaded.config.clone())
        .unwrap()
        .with_layer(&recorder)
        .build();
    (
        KubeCluster::from_client("test", client, loaded.server, loaded.credentials),
        recorder,
    )
}

/// A plain kube-rs client, for what other tools do to the cluster.
fn other_tool() -> kube::Client {
    let server = kube_server();
    let mut config = kube::Config::new(server.server.parse().unwrap());
    config.root_cert = Some(vec![pem_to_der(&server.ca_pem())]);
    config.auth_info.token = Some(server.admin_token.clone().into());
    kube::Client::try_from(config).unwrap()
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

async fn other_manager_applies(namespace: &str, name: &str, manager: &str, metadata: Value) {
    let mut meta = metadata;
    meta["name"] = json!(name);
    meta["namespace"] = json!(namespace);
    Api::<ServiceAccount>::namespaced(other_tool(), namespace)
        .patch(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta})),
        )
        .await
        .unwrap_or_else(|e| panic!("{manager} applies {namespace}/{name}: {e}"));
}

fn account(stack: &str, namespace: &str, name: &str, client_id: &str) -> DesiredServiceAccount {
    DesiredServiceAccount {
        stack: stack.into(),
        namespace: namespace.into(),
        name: name.into(),
        client_id: client_id.into(),
        tenant_id: TENANT.into(),
        token_expiration: None,
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
    }
}

/// A namespace created by wiform for `stack`.
async fn namespace_of(cluster: &KubeCluster, stack: &str) -> String {
    let name = unique("prov");
    cluster
        .apply_namespace(&DesiredNamespace::new(stack, &name), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    name
}

#[tokio::test]
async fn observe_of_an_empty_stack_is_empty_and_takes_three_lists() {
    let (cluster, recorder) = recorded_admin().await;
    let stack = unique("empty");
    let absent = unique("absent");
    let observed = cluster
        .observe(&stack, std::slice::from_ref(&absent))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(observed.namespaces.is_empty(), "{:?}", observed.namespaces);
    assert!(observed.service_accounts.is_empty());
    assert!(!observed.versions.namespaces.is_empty());
    let mut requests = recorder.take();
    requests.sort();
    assert_eq!(
        requests,
        [
            "GET /api/v1/namespaces".to_string(),
            format!("GET /api/v1/namespaces/{absent}/serviceaccounts"),
            format!(
                "GET /api/v1/serviceaccounts?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dwiform%2Cwiform.io%2Fstack%3D{stack}"
            ),
        ]
    );
}

#[tokio::test]
async fn observe_sees_owned_and_unowned_accounts_with_one_list_per_namespace() {
    let (cluster, recorder) = recorded_admin().await;
    let stack = unique("obs");
    let named = namespace_of(&cluster, &stack).await;
    let elsewhere = namespace_of(&cluster, &stack).await;
    let empty = namespace_of(&cluster, &unique("someone")).await;
    for (ns, name) in [(&named, "api"), (&named, "worker"), (&elsewhere, "orphan")] {
        cluster
            .apply_service_account(&account(&stack, ns, name, CLIENT_A), false)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    other_manager_applies(&named, "handmade", "kubectl", json!({})).await;
    other_manager_applies(
        &named,
        "other-stack",
        "wiform",
        json!({"labels": {"app.kubernetes.io/managed-by": "wiform", "wiform.io/stack": "another"}}),
    )
    .await;
    recorder.take();

    let observed = cluster
        .observe(&stack, &[named.clone(), empty.clone(), named.clone()])
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // LIST calls only: namespaces once, the stack's accounts once, each named namespace once.
    let requests = recorder.take();
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "{requests:#?}"
    );
    assert!(requests.contains(&"GET /api/v1/namespaces".to_string()));
    assert!(requests.contains(&format!("GET /api/v1/namespaces/{named}/serviceaccounts")));
    assert!(requests.contains(&format!("GET /api/v1/namespaces/{empty}/serviceaccounts")));
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("GET /api/v1/serviceaccounts?"))
            .count(),
        1
    );
    assert!(
        !requests.iter().any(|r| r.contains("/serviceaccounts/")),
        "no per-object GET: {requests:#?}"
    );

    let summary: Vec<(String, String, Owner)> = observed
        .service_accounts
        .iter()
        .map(|sa| {
            (
                sa.namespace.clone(),
                sa.name().to_string(),
                sa.meta.owner.clone(),
            )
        })
        .collect();
    let ours = |ns: &str, name: &str| {
        let hash = account(&stack, ns, name, CLIENT_A).spec_hash();
        Owner::Stack(Marker {
            stack: stack.clone(),
            spec_hash: Some(hash),
        })
    };
    let mut expected = vec![
        (
            elsewhere.clone(),
            "orphan".to_string(),
            ours(&elsewhere, "orphan"),
        ),
        (named.clone(), "api".to_string(), ours(&named, "api")),
        (named.clone(), "handmade".to_string(), Owner::Unowned),
        (
            named.clone(),
            "other-stack".to_string(),
            Owner::Stack(Marker {
                stack: "another".into(),
                spec_hash: None,
            }),
        ),
        (named.clone(), "worker".to_string(), ours(&named, "worker")),
    ];
    expected.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    assert_eq!(summary, expected);
    assert_eq!(observed.owned_service_accounts().count(), 3);
    let api = observed.service_account(&named, "api").unwrap();
    assert!(!api.meta.resource_version.is_empty());
    assert!(!api.meta.uid.is_empty());
    assert_eq!(api.annotation(CLIENT_ID_ANNOTATION), Some(CLIENT_A));
    assert_eq!(api.live_spec_hash(), api.meta.recorded_hash().unwrap());

    // Namespaces: the named ones that exist, and every one the stack owns.
    let mut namespaces: Vec<&str> = observed.namespaces.keys().map(String::as_str).collect();
    namespaces.sort();
    let mut want = vec![named.as_str(), elsewhere.as_str(), empty.as_str()];
    want.sort();
    assert_eq!(namespaces, want);
    assert!(observed.namespace(&named).unwrap().meta.owned_by(&stack));
    assert!(!observed.namespace(&empty).unwrap().meta.owned_by(&stack));
    assert_eq!(observed.owned_namespaces().count(), 2);
    assert!(!observed.versions.owned_service_accounts.is_empty());
    assert_eq!(observed.versions.service_accounts_in.len(), 2);
}

#[tokio::test]
async fn apply_creates_updates_and_changes_nothing_when_nothing_changed() {
    let (cluster, recorder) = recorded_admin().await;
    let stack = unique("apply");
    let ns = namespace_of(&cluster, &stack).await;
    let again = cluster
        .apply_namespace(&DesiredNamespace::new(&stack, &ns), false)
        .await
        .unwrap();
    assert!(again.meta.owned_by(&stack));
    assert_eq!(
        again.meta.recorded_hash(),
        Some(DesiredNamespace::new(&stack, &ns).spec_hash().as_str())
    );

    let mut desired = account(&stack, &ns, "api", CLIENT_A);
    desired.token_expiration = Some(3600);
    desired.labels.insert("team".into(), "orders".into());
    recorder.take();
    let created = cluster
        .apply_service_account(&desired, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        recorder.take(),
        [format!(
            "PATCH /api/v1/namespaces/{ns}/serviceaccounts/api?fieldManager=wiform"
        )]
    );
    assert_eq!(created.annotation(CLIENT_ID_ANNOTATION), Some(CLIENT_A));
    assert_eq!(created.annotation(TENANT_ID_ANNOTATION), Some(TENANT));
    assert_eq!(
        created.annotation(TOKEN_EXPIRATION_ANNOTATION),
        Some("3600")
    );
    assert_eq!(
        created.annotation(SPEC_HASH_ANNOTATION),
        Some(desired.spec_hash().as_str())
    );
    assert_eq!(created.meta.labels["team"], "orders");
    assert!(created.meta.owned_by(&stack));
    assert_eq!(created.meta.wiform_fields.annotations.len(), 4);
    assert_eq!(created.live_spec_hash(), desired.spec_hash());

    // The same spec again: the server writes nothing.
    let same = cluster
        .apply_service_account(&desired, false)
        .await
        .unwrap();
    assert_eq!(same.meta.resource_version, created.meta.resource_version);

    // Another tool adds a label and an annotation of its own: wiform's applies keep them.
    other_manager_applies(
        &ns,
        "api",
        "team-tool",
        json!({"labels": {"tier": "backend"}, "annotations": {"owner": "team-orders"}}),
    )
    .await;

    // An update: new client id, no token expiration (wiform drops the annotation it owned).
    desired.client_id = CLIENT_B.into();
    desired.token_expiration = None;
    let updated = cluster
        .apply_service_account(&desired, false)
        .await
        .unwrap();
    assert_ne!(updated.meta.resource_version, created.meta.resource_version);
    assert_eq!(updated.annotation(CLIENT_ID_ANNOTATION), Some(CLIENT_B));
    assert_eq!(updated.annotation(TOKEN_EXPIRATION_ANNOTATION), None);
    assert_eq!(
        updated.annotation(SPEC_HASH_ANNOTATION),
        Some(desired.spec_hash().as_str())
    );
    assert_ne!(desired.spec_hash(), created.meta.recorded_hash().unwrap());
    assert_eq!(updated.meta.labels["tier"], "backend");
    assert_eq!(updated.annotation("owner"), Some("team-orders"));
    assert!(!updated.meta.wiform_fields.labels.contains("tier"));
    assert_eq!(updated.live_spec_hash(), desired.spec_hash());
    let again = cluster
        .apply_service_account(&desired, false)
        .await
        .unwrap();
    assert_eq!(again.meta.resource_version, updated.meta.resource_version);
}

#[tokio::test]
async fn a_conflict_names_the_other_manager_and_force_takes_the_field() {
    let cluster = admin().await;
    let stack = unique("conflict");
    let ns = namespace_of(&cluster, &stack).await;
    let desired = account(&stack, &ns, "api", CLIENT_A);
    cluster
        .apply_service_account(&desired, false)
        .await
        .unwrap();
    // Someone takes wiform's client id annotation.
    other_manager_applies(
        &ns,
        "api",
        "intruder",
        json!({"annotations": {CLIENT_ID_ANNOTATION: CLIENT_B}}),
    )
    .await;

    let error = cluster
        .apply_service_account(&desired, false)
        .await
        .expect_err("conflict");
    match error.kind() {
        KubeErrorKind::Conflict { conflicts, .. } => {
            assert_eq!(conflicts.len(), 1, "{conflicts:?}");
            assert_eq!(conflicts[0].manager, "intruder");
            assert_eq!(
                conflicts[0].field,
                ".metadata.annotations.azure.workload.identity/client-id"
            );
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "cluster \"test\": serviceaccounts \"{ns}/api\": 409 Conflict: fields wiform sets are owned by another field manager: .metadata.annotations.azure.workload.identity/client-id (owned by \"intruder\")"
        )
    );
    let help = miette::Diagnostic::help(&error).unwrap().to_string();
    assert!(
        help.contains("wiform apply takes these fields back"),
        "{help}"
    );

    let forced = cluster.apply_service_account(&desired, true).await.unwrap();
    assert_eq!(forced.annotation(CLIENT_ID_ANNOTATION), Some(CLIENT_A));
    assert!(
        forced
            .meta
            .wiform_fields
            .annotations
            .contains(CLIENT_ID_ANNOTATION)
    );
    cluster
        .apply_service_account(&desired, false)
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_refuses_what_the_stack_does_not_own() {
    let (cluster, recorder) = recorded_admin().await;
    let stack = unique("del");
    let ns = namespace_of(&cluster, &stack).await;
    cluster
        .apply_service_account(&account(&stack, &ns, "mine", CLIENT_A), false)
        .await
        .unwrap();
    cluster
        .apply_service_account(&account("another-stack", &ns, "theirs", CLIENT_A), false)
        .await
        .unwrap();
    other_manager_applies(&ns, "handmade", "kubectl", json!({})).await;
    let observed = cluster
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap();
    recorder.take();

    for name in ["handmade", "theirs"] {
        let live = observed.service_account(&ns, name).unwrap();
        let error = cluster
            .delete_service_account(&stack, live)
            .await
            .expect_err("not ours");
        assert!(
            matches!(error.kind(), KubeErrorKind::NotOwned { .. }),
            "{error}"
        );
        assert!(
            error.to_string().starts_with(&format!(
                "cluster \"test\": refusing to delete serviceaccounts \"{ns}/{name}\": it does not carry the marker of stack \"{stack}\""
            )),
            "{error}"
        );
    }
    assert!(recorder.take().is_empty(), "a refused delete sends nothing");

    let mine = observed.service_account(&ns, "mine").unwrap();
    assert_eq!(
        cluster.delete_service_account(&stack, mine).await.unwrap(),
        Deletion::Deleted
    );
    assert_eq!(
        recorder.take(),
        [format!(
            "DELETE /api/v1/namespaces/{ns}/serviceaccounts/mine"
        )]
    );
    assert_eq!(
        cluster.delete_service_account(&stack, mine).await.unwrap(),
        Deletion::AlreadyGone
    );
    let after = cluster
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap();
    assert!(after.service_account(&ns, "mine").is_none());
    assert!(after.service_account(&ns, "handmade").is_some());
}

#[tokio::test]
async fn delete_refuses_an_object_changed_since_it_was_observed() {
    let cluster = admin().await;
    let stack = unique("stale");
    let ns = namespace_of(&cluster, &stack).await;
    cluster
        .apply_service_account(&account(&stack, &ns, "api", CLIENT_A), false)
        .await
        .unwrap();
    let observed = cluster
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap();
    let stale = observed.service_account(&ns, "api").unwrap().clone();
    cluster
        .apply_service_account(&account(&stack, &ns, "api", CLIENT_B), false)
        .await
        .unwrap();
    let error = cluster
        .delete_service_account(&stack, &stale)
        .await
        .expect_err("changed");
    assert!(
        matches!(error.kind(), KubeErrorKind::Changed { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&format!(
            "serviceaccounts \"{ns}/api\" changed since it was observed (409 Conflict)"
        )),
        "{error}"
    );
}

#[tokio::test]
async fn a_namespace_is_deleted_only_when_owned_and_holding_nothing_foreign() {
    let (cluster, recorder) = recorded_admin().await;
    let stack = unique("nsdel");
    let ns = namespace_of(&cluster, &stack).await;
    cluster
        .apply_service_account(&account(&stack, &ns, "api", CLIENT_A), false)
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(other_tool(), &ns)
        .patch(
            "settings",
            &PatchParams::apply("helm"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}})),
        )
        .await
        .unwrap();
    let unowned = namespace_of(&cluster, &unique("someone-else")).await;
    let observed = cluster
        .observe(&stack, &[ns.clone(), unowned.clone()])
        .await
        .unwrap();
    recorder.take();

    let error = cluster
        .delete_namespace(&stack, observed.namespace(&unowned).unwrap())
        .await
        .expect_err("not ours");
    assert!(
        matches!(error.kind(), KubeErrorKind::NotOwned { .. }),
        "{error}"
    );
    assert!(recorder.take().is_empty());

    let live = observed.namespace(&ns).unwrap();
    let error = cluster
        .delete_namespace(&stack, live)
        .await
        .expect_err("holds a config map");
    assert_eq!(
        error.to_string(),
        format!(
            "cluster \"test\": refusing to delete namespaces \"{ns}\": it holds objects wiform does not own: configmaps \"settings\""
        )
    );
    // Metadata-only lists, no DELETE.
    let requests = recorder.take();
    assert_eq!(requests.len(), 9, "{requests:#?}");
    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "{requests:#?}"
    );

    Api::<ConfigMap>::namespaced(other_tool(), &ns)
        .delete("settings", &Default::default())
        .await
        .unwrap();
    // This stack's own service account does not hold the namespace back.
    assert_eq!(
        cluster.delete_namespace(&stack, live).await.unwrap(),
        Deletion::Deleted
    );
    let after = cluster
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap();
    // No namespace controller runs in the test server: the namespace stays terminating.
    if let Some(terminating) = after.namespace(&ns) {
        assert!(terminating.meta.terminating);
        // A 403 that is no missing right keeps the server's words.
        let error = cluster
            .apply_service_account(&account(&stack, &ns, "late", CLIENT_A), false)
            .await
            .unwrap_err();
        assert!(
            matches!(error.kind(), KubeErrorKind::Api { code: 403, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("being terminated"), "{error}");
        assert_eq!(
            cluster.delete_namespace(&stack, terminating).await.unwrap(),
            Deletion::AlreadyGone
        );
    }
}

#[tokio::test]
async fn system_namespaces_are_never_deleted() {
    let (cluster, recorder) = recorded_admin().await;
    let mut live: LiveNamespace = serde_json::from_value(json!({
        "name": "kube-system", "uid": "u", "resource_version": "1",
        "labels": {}, "annotations": {},
        "owner": {"owner": "stack", "stack": "s"},
        "wiform_fields": {"labels": [], "annotations": []},
        "terminating": false,
    }))
    .unwrap();
    let error = cluster.delete_namespace("s", &live).await.unwrap_err();
    assert!(
        matches!(error.kind(), KubeErrorKind::ProtectedNamespace { .. }),
        "{error}"
    );
    live.meta.name = "default".into();
    assert!(cluster.delete_namespace("s", &live).await.is_err());
    assert!(recorder.take().is_empty());
}

#[tokio::test]
async fn the_issuer_is_discovered_and_compared_byte_for_byte() {
    let server = kube_server();
    let cluster = admin().await;
    let discovered = cluster.issuer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(discovered.issuer, server.issuer);
    assert_eq!(
        discovered.jwks_uri,
        format!("{}/openid/v1/jwks", server.issuer)
    );
    check_issuer("test", &server.issuer, &discovered).unwrap();

    let with_slash = format!("{}/", server.issuer);
    let error = check_issuer("test", &with_slash, &discovered).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cluster \"test\": the configured issuer does not match the cluster's\n  configured: {with_slash}\n  discovered: {}\n  they differ only by the trailing slash",
            server.issuer
        )
    );
    let error = check_issuer("test", "https://oidc.example.com/other", &discovered).unwrap_err();
    assert!(!error.to_string().contains("trailing slash"), "{error}");
    assert!(error.to_string().contains(&server.issuer), "{error}");
}

fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn token_request_mints_a_jwt_for_the_account_and_never_shows_it() {
    let server = kube_server();
    let (cluster, recorder) = recorded_admin().await;
    let stack = unique("token");
    let ns = namespace_of(&cluster, &stack).await;
    cluster
        .apply_service_account(&account(&stack, &ns, "api", CLIENT_A), false)
        .await
        .unwrap();
    let audiences = vec!["api://AzureADTokenExchange".to_string()];
    let token = cluster
        .request_token(&ns, "api", &audiences, 3600)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let jwt = token.expose();
    let claims = claims(jwt);
    assert_eq!(claims["sub"], format!("system:serviceaccount:{ns}:api"));
    assert_eq!(claims["aud"], json!(["api://AzureADTokenExchange"]));
    assert_eq!(claims["iss"], server.issuer.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    let shown = format!("{token:?} {token} {token:#?}");
    assert!(!shown.contains(jwt), "{shown}");
    for part in jwt.split('.') {
        assert!(!shown.contains(part), "{shown}");
    }
    assert!(token.expires_at.is_some());

    let missing = cluster
        .request_token(&ns, "nobody", &audiences, 3600)
        .await
        .unwrap_err();
    assert_eq!(missing.http_status(), Some(404), "{missing}");
    assert!(
        missing.to_string().contains(&format!(
            "create serviceaccounts/token \"{ns}/nobody\": 404 Not Found (NotFound)"
        )),
        "{missing}"
    );
    recorder.take();
    let short = cluster
        .request_token(&ns, "api", &audiences, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(short.kind(), KubeErrorKind::InvalidRequest { .. }),
        "{short}"
    );
    assert!(cluster.request_token(&ns, "api", &[], 3600).await.is_err());
    assert!(recorder.take().is_empty(), "refused before any request");
}

#[tokio::test]
async fn the_read_only_user_gets_403_naming_the_missing_verb() {
    let cluster = admin().await;
    let reader = reader().await;
    let stack = unique("reader");
    let ns = namespace_of(&cluster, &stack).await;
    cluster
        .apply_service_account(&account(&stack, &ns, "api", CLIENT_A), false)
        .await
        .unwrap();

    // Reading is allowed.
    let observed = reader
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let live = observed.service_account(&ns, "api").unwrap();

    let error = reader
        .apply_service_account(&account(&stack, &ns, "api", CLIENT_B), false)
        .await
        .unwrap_err();
    assert!(
        matches!(error.kind(), KubeErrorKind::Forbidden { .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "cluster \"test\": serviceaccounts \"{ns}/api\": 403 Forbidden: wiform needs patch on serviceaccounts in namespace \"{ns}\"; user \"reader\" does not have that right. The server said: serviceaccounts \"api\" is forbidden: User \"reader\" cannot patch resource \"serviceaccounts\" in API group \"\" in the namespace \"{ns}\""
        )
    );
    let error = reader
        .apply_namespace(&DesiredNamespace::new(&stack, &ns), false)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("wiform needs patch on namespaces; user \"reader\""),
        "{error}"
    );
    let error = reader
        .delete_service_account(&stack, live)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "wiform needs delete on serviceaccounts in namespace \"{ns}\"; user \"reader\""
        )),
        "{error}"
    );
    let error = reader
        .request_token(&ns, "api", &["api://AzureADTokenExchange".into()], 3600)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "wiform needs create on serviceaccounts/token in namespace \"{ns}\"; user \"reader\""
        )),
        "{error}"
    );
    let error = reader
        .delete_namespace(&stack, observed.namespace(&ns).unwrap())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(&format!(
            "wiform needs list on pods in namespace \"{ns}\"; user \"reader\""
        )),
        "{error}"
    );
    // The reader may not read the discovery document; anonymous requests may (as on most
    // clusters, and as Entra reads it), so the issuer is still found.
    let discovered = reader.issuer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(discovered.issuer, kube_server().issuer);
    // The namespace is still there.
    assert!(
        cluster
            .observe(&stack, std::slice::from_ref(&ns))
            .await
            .unwrap()
            .namespace(&ns)
            .is_some()
    );
}

#[tokio::test]
async fn an_unknown_context_lists_the_real_ones() {
    let error = KubeCluster::connect("prod", &context(kube_server(), "kube-servr"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cluster \"prod\": there is no context \"kube-servr\" in {}; the contexts are: kube-server, kube-server-reader",
            kube_server().kubeconfig.display()
        )
    );
    let help = miette::Diagnostic::help(&error).unwrap().to_string();
    assert!(help.contains("did you mean \"kube-server\"?"), "{help}");
}

/// A kubeconfig like the one AKS `listClusterUserCredential` returns (after base64 decoding):
/// the CA inline, a bearer token.
fn inline_kubeconfig(server: &KubeServer, url: &str, token: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(server.ca_pem());
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {url}\n  name: aks-test\ncontexts:\n- context:\n    cluster: aks-test\n    user: clusterUser_rg_aks-test\n  name: aks-test\ncurrent-context: aks-test\nkind: Config\npreferences: {{}}\nusers:\n- name: clusterUser_rg_aks-test\n  user:\n    token: {token}\n"
    )
}

#[tokio::test]
async fn connects_from_kubeconfig_yaml_text() {
    let server = kube_server();
    let text = inline_kubeconfig(server, &server.server, &server.admin_token);
    let cluster = KubeCluster::connect(
        "aks",
        &KubeconfigSource::Yaml {
            text,
            context: None,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.server(), server.server);
    assert!(!format!("{cluster:?}").contains(&server.admin_token));
    let discovered = cluster.issuer().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(discovered.issuer, server.issuer);
    let stack = unique("yaml");
    let ns = namespace_of(&cluster, &stack).await;
    let observed = cluster
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap();
    assert!(observed.namespace(&ns).is_some());
}

#[tokio::test]
async fn refused_credentials_are_a_401_naming_the_server() {
    let server = kube_server();
    let text = inline_kubeconfig(server, &server.server, "not-a-valid-token");
    let cluster = KubeCluster::connect(
        "aks",
        &KubeconfigSource::Yaml {
            text,
            context: None,
        },
    )
    .await
    .unwrap();
    let error = cluster.observe("s", &[]).await.unwrap_err();
    assert!(
        matches!(error.kind(), KubeErrorKind::Unauthorized { .. }),
        "{error}"
    );
    assert_eq!(error.http_status(), Some(401));
    let text = error.to_string();
    assert!(
        text.contains(&format!(
            "401 Unauthorized: the API server at {} refused the credentials of context \"aks-test\"",
            server.server
        )),
        "{text}"
    );
    assert!(!text.contains("not-a-valid-token"), "{text}");
}

#[tokio::test]
async fn an_unreachable_server_is_named() {
    let server = kube_server();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let text = inline_kubeconfig(server, &url, &server.admin_token);
    let cluster = KubeCluster::connect(
        "onprem",
        &KubeconfigSource::Yaml {
            text,
            context: Some("aks-test".into()),
        },
    )
    .await
    .unwrap();
    let error = cluster.issuer().await.unwrap_err();
    assert!(
        matches!(error.kind(), KubeErrorKind::Unreachable { .. }),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "cluster \"onprem\": cannot reach the API server at {url} (/.well-known/openid-configuration)"
        )
    );
}

/// Drift's evidence for Kubernetes objects, on the real kube-apiserver: a service account as
/// wiform applied it is in sync; after another manager changes the client id annotation (as
/// `kubectl annotate` would) its live fields no longer hash to the recorded spec hash, and
/// drift classifies the plan's update as changed outside wiform; after a config change alone,
/// as pending.
#[tokio::test]
async fn drift_tells_a_change_by_hand_from_a_config_change_on_the_real_server() {
    use wiform::engine::diff::Observed;
    use wiform::engine::drift::{Cause, Verdict, classify};
    use wiform::engine::plan::{Action, Change, Plan};

    let cluster = admin().await;
    let stack = unique("drift");
    let ns = namespace_of(&cluster, &stack).await;
    let desired = account(&stack, &ns, "api", CLIENT_A);
    cluster
        .apply_service_account(&desired, false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The plan's update of that service account, judged against what the cluster holds now.
    let judge = |observation| {
        let plan = Plan {
            format_version: 1,
            stack: stack.clone(),
            config_file: "identity.toml".into(),
            changes: vec![Change {
                address: format!("service_account.test/{ns}/api").parse().unwrap(),
                resource_type: "service_account".parse().unwrap(),
                action: Action::Update,
                reason: None,
                id: Some(format!("{ns}/api")),
                fields: Vec::new(),
                not_in_config: false,
                depends_on: Vec::new(),
            }],
            errors: Vec::new(),
            targets: Vec::new(),
            fingerprint: String::new(),
        };
        let observed = Observed {
            clusters: BTreeMap::from([("test".to_string(), Ok(observation))]),
            ..Observed::default()
        };
        classify(&plan, &observed, &wiform::graph::Graph::default())
    };

    // As applied: a difference can only be the config's.
    let observed = cluster
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let live = observed.service_account(&ns, "api").expect("the account");
    assert_eq!(
        Some(live.live_spec_hash().as_str()),
        live.meta.recorded_hash()
    );
    let report = judge(observed);
    assert_eq!(report.items[0].cause, Cause::ConfigChanged);
    assert_eq!(report.verdict, Verdict::PendingOnly);

    // Someone changes the annotation with a plain update (not server-side apply).
    Api::<ServiceAccount>::namespaced(other_tool(), &ns)
        .patch(
            "api",
            &PatchParams {
                field_manager: Some("kubectl-annotate".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(json!({"metadata": {"annotations": {CLIENT_ID_ANNOTATION: CLIENT_B}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let observed = cluster
        .observe(&stack, std::slice::from_ref(&ns))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let live = observed.service_account(&ns, "api").expect("the account");
    assert_ne!(
        Some(live.live_spec_hash().as_str()),
        live.meta.recorded_hash()
    );
    let report = judge(observed);
    assert_eq!(report.items[0].cause, Cause::ChangedOutsideWiform);
    assert_eq!(report.verdict, Verdict::Drifted);
}
