//! The Kubernetes API of the emulated clusters over raw HTTPS: what `tests/kube/contract.rs`
//! does not reach (AKS clusters and their issuers, persistence, service-account tokens as
//! credentials, update verbs, paging, malformed requests). The answers were compared with a
//! real kube-apiserver v1.34 (`tests/kube-server`).

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiform_sandbox::Options;
use wiform_sandbox::kube::ClusterAccess;

use crate::common::{AKS_API, SUB, Sandbox, sandbox, sandbox_with};

const APPLY: &str = "application/apply-patch+yaml";

struct Kube<'a> {
    sb: &'a Sandbox,
    server: String,
    token: Option<String>,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Reply {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }

    fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or("")
    }
}

impl<'a> Kube<'a> {
    fn new(sb: &'a Sandbox, server: &str, token: Option<&str>) -> Self {
        Kube {
            sb,
            server: server.to_string(),
            token: token.map(String::from),
        }
    }

    fn admin(sb: &'a Sandbox, cluster: &ClusterAccess) -> Self {
        Kube::new(sb, &cluster.server, Some(&cluster.admin_token))
    }

    async fn send(&self, method: Method, path: &str, content_type: &str, body: &str) -> Reply {
        let url = if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.server)
        };
        let mut request = self.sb.client.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if !body.is_empty() {
            request = request
                .header("Content-Type", content_type)
                .body(body.to_string());
        }
        let response = request.send().await.expect("an answer");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = response.bytes().await.unwrap_or_default();
        Reply {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, "", "").await
    }

    async fn apply(&self, path: &str, manager: &str, body: Value) -> Reply {
        let separator = if path.contains('?') { '&' } else { '?' };
        self.send(
            Method::PATCH,
            &format!("{path}{separator}fieldManager={manager}"),
            APPLY,
            &body.to_string(),
        )
        .await
    }

    async fn namespace(&self, name: &str) {
        let reply = self
            .apply(
                &format!("/api/v1/namespaces/{name}"),
                "wiform",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            )
            .await;
        assert!(reply.status.is_success(), "{}", reply.body);
    }

    async fn account(&self, namespace: &str, name: &str, labels: Value) -> Reply {
        self.apply(
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}"),
            "wiform",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "labels": labels}}),
        )
        .await
    }

    async fn token(&self, namespace: &str, name: &str, audiences: &[&str]) -> Reply {
        self.send(
            Method::POST,
            &format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"),
            "application/json",
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"audiences": audiences}}).to_string(),
        )
        .await
    }
}

fn standalone(sb: &Sandbox) -> ClusterAccess {
    wiform_sandbox::kube::standalone(&sb.running.app).expect("the standalone cluster")
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// Verifies `token` against the JWKS the issuer's discovery document names, as Entra does.
async fn verify(sb: &Sandbox, issuer: &str, token: &str, audience: &str) -> Value {
    let anonymous = Kube::new(sb, "", None);
    let discovery = anonymous
        .get(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))
        .await;
    assert_eq!(discovery.status, StatusCode::OK, "{}", discovery.body);
    assert_eq!(discovery.body["issuer"], issuer);
    let jwks = anonymous
        .get(discovery.body["jwks_uri"].as_str().unwrap())
        .await;
    assert_eq!(jwks.status, StatusCode::OK, "{}", jwks.body);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.body).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the signature verifies")
    .claims
}

fn cluster_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}?api-version={AKS_API}"
    )
}

async fn settle(sb: &Sandbox, answer: &crate::common::Answer) {
    let operation = answer
        .header("Azure-AsyncOperation")
        .expect("an operation")
        .to_string();
    for _ in 0..20 {
        if sb.get(&operation).await.body["status"] != "InProgress" {
            return;
        }
    }
    panic!("the operation never finished");
}

async fn aks(sb: &Sandbox, name: &str, oidc: bool) -> Value {
    let created = sb
        .put(
            &cluster_path(name),
            json!({"location": "westeurope", "properties": {"oidcIssuerProfile": {"enabled": oidc}}}),
        )
        .await;
    assert!(created.status.is_success(), "{}", created.body);
    settle(sb, &created).await;
    sb.get(&cluster_path(name)).await.body
}

/// The kubeconfig of `listClusterUserCredential`: (server, token, CA PEM).
async fn credentials(sb: &Sandbox, name: &str) -> (String, String, String) {
    let path = cluster_path(name).replace('?', "/listClusterUserCredential?");
    let answer = sb.call(Method::POST, &path, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let engine = base64::engine::general_purpose::STANDARD;
    let kubeconfig = String::from_utf8(
        engine
            .decode(answer.body["kubeconfigs"][0]["value"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let field = |name: &str| {
        kubeconfig
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {kubeconfig}"))
            .to_string()
    };
    let ca = String::from_utf8(
        engine
            .decode(field("certificate-authority-data: "))
            .unwrap(),
    )
    .unwrap();
    (field("server: "), field("token: "), ca)
}

#[tokio::test]
async fn the_standalone_cluster_serves_discovery_and_its_issuer() {
    let sb = sandbox().await;
    let cluster = standalone(&sb);
    assert_eq!(cluster.server, sb.url("/k8s/sandbox"));
    assert_eq!(cluster.issuer, cluster.server);
    let anonymous = Kube::new(&sb, &cluster.server, None);
    let version = anonymous.get("/version").await;
    assert_eq!(version.status, StatusCode::OK);
    assert_eq!(version.body["major"], "1");
    assert_eq!(anonymous.get("/readyz").await.status, StatusCode::OK);
    let api = anonymous.get("/api").await;
    assert_eq!(api.status, StatusCode::FORBIDDEN);
    assert_eq!(
        api.message(),
        "forbidden: User \"system:anonymous\" cannot get path \"/api\""
    );
    let bogus = Kube::new(&sb, &cluster.server, Some("bogus"))
        .get("/api")
        .await;
    assert_eq!(
        (bogus.status, bogus.reason(), bogus.message()),
        (StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    );

    let reader = Kube::new(&sb, &cluster.server, Some(&cluster.reader_token));
    let versions = reader.get("/api").await;
    assert_eq!(versions.body["versions"], json!(["v1"]));
    let resources = reader.get("/api/v1").await;
    let names: Vec<&str> = resources.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for name in ["namespaces", "serviceaccounts", "serviceaccounts/token"] {
        assert!(names.contains(&name), "{names:?}");
    }
    assert_eq!(reader.get("/apis").await.body["kind"], "APIGroupList");
    let system: Vec<Value> = reader.get("/api/v1/namespaces").await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].clone())
        .collect();
    assert_eq!(
        system,
        [
            json!("default"),
            json!("kube-node-lease"),
            json!("kube-public"),
            json!("kube-system")
        ]
    );

    let discovery = anonymous.get("/.well-known/openid-configuration").await;
    assert_eq!(discovery.body["issuer"], cluster.issuer.as_str());
    assert_eq!(
        discovery.body["jwks_uri"],
        format!("{}/openid/v1/jwks", cluster.issuer)
    );
    let jwks = anonymous.get("/openid/v1/jwks").await;
    assert_eq!(jwks.content_type, "application/jwk-set+json");
    let key = &jwks.body["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str(),
            key["e"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"), Some("AQAB"))
    );
    assert!(key["kid"].is_string() && key["n"].is_string());
    // Like kube-apiserver: a client that only accepts application/json gets 406.
    let picky = sb
        .client
        .get(format!("{}/openid/v1/jwks", cluster.server))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(picky.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn an_aks_cluster_has_its_own_kubernetes_api_and_issuer() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let cluster = aks(&sb, "aks1", true).await;
    let issuer = cluster["properties"]["oidcIssuerProfile"]["issuerURL"]
        .as_str()
        .unwrap()
        .to_string();
    let (server, token, ca) = credentials(&sb, "aks1").await;
    assert_eq!(ca, sb.running.ca_pem());
    let guid = server.rsplit('/').next().unwrap();
    assert_eq!(
        issuer,
        format!(
            "{}/oidc/{}/{guid}/",
            sb.running.base_url(),
            sb.running.app.tenant_id()
        )
    );
    let kube = Kube::new(&sb, &server, Some(&token));
    assert_eq!(kube.get("/version").await.body["gitVersion"], "v1.33.0");
    kube.namespace("orders").await;
    assert_eq!(
        kube.account("orders", "api", json!({})).await.status,
        StatusCode::CREATED
    );
    let minted = kube
        .token("orders", "api", &["api://AzureADTokenExchange"])
        .await;
    assert_eq!(minted.status, StatusCode::CREATED, "{}", minted.body);
    let token = minted.body["status"]["token"].as_str().unwrap();
    let claims = verify(&sb, &issuer, token, "api://AzureADTokenExchange").await;
    assert_eq!(claims["sub"], "system:serviceaccount:orders:api");
    // The API server publishes the same issuer.
    assert_eq!(
        kube.get("/.well-known/openid-configuration").await.body["issuer"],
        issuer.as_str()
    );
    // Another cluster is another API, with another key and other tokens.
    aks(&sb, "aks2", true).await;
    let (other, other_token, _) = credentials(&sb, "aks2").await;
    assert_ne!(other, server);
    assert_ne!(other_token, kube.token.clone().unwrap());
    let stranger = Kube::new(&sb, &other, Some(&other_token));
    assert_eq!(
        stranger
            .get("/api/v1/namespaces/orders/serviceaccounts/api")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Deleting the cluster deletes its API and its issuer.
    let deleting = sb.delete(&cluster_path("aks1")).await;
    assert_eq!(deleting.status, StatusCode::ACCEPTED);
    settle(&sb, &deleting).await;
    assert_eq!(
        kube.get("/api/v1/namespaces").await.status,
        StatusCode::NOT_FOUND
    );
    let gone = Kube::new(&sb, "", None)
        .get(&format!("{issuer}.well-known/openid-configuration"))
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_its_oidc_issuer_an_aks_cluster_signs_for_the_in_cluster_issuer() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    aks(&sb, "aks1", false).await;
    let (server, token, _) = credentials(&sb, "aks1").await;
    let guid = server.rsplit('/').next().unwrap().to_string();
    let kube = Kube::new(&sb, &server, Some(&token));
    kube.namespace("orders").await;
    kube.account("orders", "api", json!({})).await;
    let minted = kube.token("orders", "api", &[]).await;
    let claims = claims(minted.body["status"]["token"].as_str().unwrap());
    assert_eq!(claims["iss"], wiform_sandbox::kube::NO_ISSUER);
    assert_eq!(claims["aud"], json!([wiform_sandbox::kube::NO_ISSUER]));
    let tenant = sb.running.app.tenant_id();
    let hidden = Kube::new(&sb, "", None)
        .get(&sb.url(&format!(
            "/oidc/{tenant}/{guid}/.well-known/openid-configuration"
        )))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);

    // Turning the issuer on keeps the cluster's guid, its objects and its key.
    let updated = sb
        .put(
            &cluster_path("aks1"),
            json!({"location": "westeurope", "properties": {"oidcIssuerProfile": {"enabled": true}}}),
        )
        .await;
    settle(&sb, &updated).await;
    let issuer =
        sb.get(&cluster_path("aks1")).await.body["properties"]["oidcIssuerProfile"]["issuerURL"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(issuer.ends_with(&format!("/{guid}/")), "{issuer}");
    let minted = kube.token("orders", "api", &["aud"]).await;
    verify(
        &sb,
        &issuer,
        minted.body["status"]["token"].as_str().unwrap(),
        "aud",
    )
    .await;
}

#[tokio::test]
async fn clusters_keys_and_objects_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options {
        state_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    };
    let (before, kid, token) = {
        let sb = sandbox_with(options()).await;
        let cluster = standalone(&sb);
        let kube = Kube::admin(&sb, &cluster);
        kube.namespace("orders").await;
        kube.account("orders", "api", json!({"a": "b"})).await;
        let minted = kube.token("orders", "api", &[]).await;
        let kid = jsonwebtoken::decode_header(minted.body["status"]["token"].as_str().unwrap())
            .unwrap()
            .kid;
        (
            cluster,
            kid,
            minted.body["status"]["token"].as_str().unwrap().to_string(),
        )
    };
    let sb = sandbox_with(options()).await;
    let after = standalone(&sb);
    assert_eq!(
        (&after.admin_token, &after.reader_token),
        (&before.admin_token, &before.reader_token)
    );
    let kube = Kube::admin(&sb, &after);
    let account = kube
        .get("/api/v1/namespaces/orders/serviceaccounts/api")
        .await;
    assert_eq!(account.status, StatusCode::OK);
    assert_eq!(account.body["metadata"]["labels"]["a"], "b");
    let jwks = kube.get("/openid/v1/jwks").await;
    assert_eq!(jwks.body["keys"][0]["kid"].as_str(), kid.as_deref());
    // The old token still names the account (the issuer moved with the port, so it verifies
    // against the key, not the new issuer).
    assert_eq!(
        claims(&token)["kubernetes.io"]["serviceaccount"]["name"],
        "api"
    );
}

#[tokio::test]
async fn service_account_tokens_authenticate_as_their_account() {
    let sb = sandbox().await;
    let cluster = standalone(&sb);
    let kube = Kube::admin(&sb, &cluster);
    kube.namespace("orders").await;
    kube.account("orders", "api", json!({})).await;
    // Without audiences the token is for the API server itself.
    let minted = kube.token("orders", "api", &[]).await;
    let token = minted.body["status"]["token"].as_str().unwrap().to_string();
    assert_eq!(claims(&token)["aud"], json!([cluster.issuer]));
    let pod = Kube::new(&sb, &cluster.server, Some(&token));
    assert_eq!(pod.get("/api").await.status, StatusCode::OK);
    let denied = pod.get("/api/v1/namespaces").await;
    assert_eq!(
        denied.message(),
        "namespaces is forbidden: User \"system:serviceaccount:orders:api\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    // A token for another audience is no credential here.
    let other = kube
        .token("orders", "api", &["api://AzureADTokenExchange"])
        .await;
    let other = Kube::new(&sb, &cluster.server, other.body["status"]["token"].as_str());
    assert_eq!(other.get("/api").await.status, StatusCode::UNAUTHORIZED);
    // Once the account is gone, so is its token's worth.
    let deleted = kube
        .send(
            Method::DELETE,
            "/api/v1/namespaces/orders/serviceaccounts/api",
            "",
            "",
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(pod.get("/api").await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn token_requests_follow_the_validation_of_the_real_server() {
    let sb = sandbox().await;
    let cluster = standalone(&sb);
    let kube = Kube::admin(&sb, &cluster);
    kube.namespace("orders").await;
    kube.account("orders", "api", json!({})).await;
    let path = "/api/v1/namespaces/orders/serviceaccounts/api/token";
    let short = kube
        .send(
            Method::POST,
            path,
            "application/json",
            r#"{"spec":{"expirationSeconds":100}}"#,
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        short.message(),
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 100: may not specify a duration less than 10 minutes"
    );
    let long = kube
        .send(
            Method::POST,
            path,
            "application/json",
            r#"{"spec":{"audiences":["a","b"],"expirationSeconds":7200}}"#,
        )
        .await;
    assert_eq!(long.status, StatusCode::CREATED);
    let token = long.body["status"]["token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["aud"], json!(["a", "b"]));
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        7200
    );
    assert_eq!(c["nbf"], c["iat"]);
    assert!(c["jti"].is_string());
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        long.body["metadata"]["uid"],
        kube.get("/api/v1/namespaces/orders/serviceaccounts/api")
            .await
            .body["metadata"]["uid"]
    );
    let bound = kube
        .send(
            Method::POST,
            path,
            "application/json",
            r#"{"spec":{"boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"p"}}}"#,
        )
        .await;
    assert_eq!(
        (bound.status, bound.message()),
        (StatusCode::NOT_FOUND, "pods \"p\" not found")
    );
}

#[tokio::test]
async fn namespaces_terminate_and_stay_terminating() {
    let sb = sandbox().await;
    let kube = Kube::admin(&sb, &standalone(&sb));
    kube.namespace("gone").await;
    kube.account("gone", "kept", json!({})).await;
    let deleted = kube
        .send(Method::DELETE, "/api/v1/namespaces/gone", "", "")
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(deleted.body["status"]["phase"], "Terminating");
    assert!(deleted.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleted.body["spec"]["finalizers"], json!(["kubernetes"]));
    let again = kube
        .send(Method::DELETE, "/api/v1/namespaces/gone", "", "")
        .await;
    assert_eq!(
        again.body["metadata"]["resourceVersion"],
        deleted.body["metadata"]["resourceVersion"]
    );
    let refused = kube.account("gone", "new", json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.message(),
        "serviceaccounts \"new\" is forbidden: unable to create new content in namespace gone because it is being terminated"
    );
    assert_eq!(
        refused.body["details"]["causes"][0]["reason"],
        "NamespaceTerminating"
    );
    // What was there stays, and can still change.
    assert_eq!(
        kube.account("gone", "kept", json!({"a": "b"})).await.status,
        StatusCode::OK
    );
    let immortal = kube
        .send(Method::DELETE, "/api/v1/namespaces/default", "", "")
        .await;
    assert_eq!(
        (immortal.status, immortal.message()),
        (
            StatusCode::FORBIDDEN,
            "namespaces \"default\" is forbidden: this namespace may not be deleted"
        )
    );
}

#[tokio::test]
async fn lists_page_with_limit_and_continue() {
    let sb = sandbox().await;
    let kube = Kube::admin(&sb, &standalone(&sb));
    kube.namespace("paged").await;
    for i in 0..5 {
        kube.account("paged", &format!("sa{i}"), json!({"n": i.to_string()}))
            .await;
    }
    let mut names = Vec::new();
    let mut next = "/api/v1/namespaces/paged/serviceaccounts?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = kube.get(&next).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        names.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match page.body["metadata"]["continue"].as_str() {
            Some(token) => {
                assert!(page.body["metadata"]["remainingItemCount"].is_u64());
                next = format!("/api/v1/namespaces/paged/serviceaccounts?limit=2&continue={token}");
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["sa0", "sa1", "sa2", "sa3", "sa4"]);
    let selected = kube
        .get("/api/v1/serviceaccounts?labelSelector=n%20in%20(1,3),n!%3D3")
        .await;
    assert_eq!(selected.body["items"].as_array().unwrap().len(), 1);
    let bad = kube
        .get("/api/v1/serviceaccounts?labelSelector=a%3D%3D%3D")
        .await;
    assert_eq!(
        (bad.status, bad.message()),
        (
            StatusCode::BAD_REQUEST,
            "unable to parse requirement: found '=', expected: identifier"
        )
    );
}

#[tokio::test]
async fn updates_record_their_manager_and_take_fields_from_appliers() {
    let sb = sandbox().await;
    let kube = Kube::admin(&sb, &standalone(&sb));
    kube.namespace("u").await;
    kube.account("u", "api", json!({"a": "1", "b": "1"})).await;
    let path = "/api/v1/namespaces/u/serviceaccounts/api";
    let patched = kube
        .send(
            Method::PATCH,
            &format!("{path}?fieldManager=kubectl-label"),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"a":"2","b":null}}}"#,
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["metadata"]["labels"], json!({"a": "2"}));
    let entries = patched.body["metadata"]["managedFields"]
        .as_array()
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["manager"], "kubectl-label");
    assert_eq!(entries[0]["operation"], "Update");
    // wiform applying its value again conflicts with the Update manager.
    let conflict = kube.account("u", "api", json!({"a": "1", "b": "1"})).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT);
    assert_eq!(
        conflict.message(),
        "Apply failed with 1 conflict: conflict with \"kubectl-label\" using v1: .metadata.labels.a"
    );
    let json_patched = kube
        .send(
            Method::PATCH,
            path,
            "application/json-patch+json",
            r#"[{"op":"add","path":"/metadata/annotations","value":{"k":"v"}}]"#,
        )
        .await;
    assert_eq!(
        json_patched.body["metadata"]["annotations"],
        json!({"k": "v"})
    );
    let version = json_patched.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let stale = kube
        .send(
            Method::PUT,
            path,
            "application/json",
            r#"{"metadata":{"name":"api","resourceVersion":"1"}}"#,
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let replaced = kube
        .send(
            Method::PUT,
            path,
            "application/json",
            &json!({"metadata": {"name": "api", "resourceVersion": version}, "automountServiceAccountToken": false}).to_string(),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.body);
    assert!(replaced.body["metadata"]["labels"].is_null());
    assert_eq!(replaced.body["automountServiceAccountToken"], false);
}

#[tokio::test]
async fn malformed_requests_get_a_kubernetes_status_never_a_server_error() {
    let sb = sandbox().await;
    let kube = Kube::admin(&sb, &standalone(&sb));
    kube.namespace("m").await;
    kube.account("m", "api", json!({})).await;
    let sa = "/api/v1/namespaces/m/serviceaccounts/api";
    let cases: Vec<(Method, String, &str, &str, StatusCode)> = vec![
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            "{bad",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            "[]",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            " ",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"api","labels":{"a":1}}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"api"},"bogus":1}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":"x"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"api"}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x"),
            APPLY,
            r#"{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"other"}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x&force=maybe"),
            APPLY,
            "{}",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager=x&dryRun=Some"),
            APPLY,
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            format!("{sa}?fieldManager={}", "m".repeat(129)),
            APPLY,
            "{}",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            APPLY,
            r#"{"apiVersion":"v1","kind":"ServiceAccount"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            "text/plain",
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            "application/merge-patch+json",
            "[1]",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"-bad":"x"}}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            "application/merge-patch+json",
            r#"{"metadata":{"labels":"x"}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            "application/json-patch+json",
            r#"{}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            "application/json-patch+json",
            r#"[{"op":"remove","path":"/nothere"}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::PATCH,
            sa.to_string(),
            "application/json-patch+json",
            r#"[{"op":"replace","path":"","value":7}]"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/m/serviceaccounts".into(),
            "application/json",
            "bad",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/m/serviceaccounts".into(),
            "application/json",
            "7",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/m/serviceaccounts".into(),
            "application/json",
            r#"{"metadata":{}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/m/serviceaccounts".into(),
            "application/json",
            r#"{"metadata":{"name":"Bad_Name"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/m/serviceaccounts".into(),
            "application/json",
            r#"{"metadata":{"name":"x","labels":{"a":["b"]}}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/namespaces/m/serviceaccounts".into(),
            "text/plain",
            r#"{"metadata":{"name":"x"}}"#,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/api/v1/namespaces".into(),
            "application/json",
            r#"{"metadata":{"name":"x".repeat(3)}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("{sa}/token"),
            "application/json",
            "xx",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("{sa}/token"),
            "application/json",
            "[]",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("{sa}/token"),
            "application/json",
            r#"{"spec":{"audiences":"x"}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("{sa}/token"),
            "application/json",
            r#"{"spec":{"expirationSeconds":"x"}}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("{sa}/token"),
            "application/json",
            r#"{"spec":{"expirationSeconds":99999999999}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            format!("{sa}/token"),
            "application/json",
            r#"{"spec":{"boundObjectRef":{"kind":"Foo"}}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::DELETE,
            sa.to_string(),
            "application/json",
            "nojson",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            sa.to_string(),
            "application/json",
            r#"{"preconditions":{"uid":"x"}}"#,
            StatusCode::CONFLICT,
        ),
        (
            Method::GET,
            "/api/v1/serviceaccounts?limit=x".into(),
            "",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/serviceaccounts?continue=%%%".into(),
            "",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/serviceaccounts?fieldSelector=spec.x%3D1".into(),
            "",
            "",
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/serviceaccounts?watch=true".into(),
            "",
            "",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/api/v1/pods".into(),
            "",
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/apis/apps/v1/deployments".into(),
            "",
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/serviceaccounts/x".into(),
            "",
            "",
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/serviceaccounts".into(),
            "application/json",
            "{}",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::PUT,
            format!("{sa}/token"),
            "application/json",
            "{}",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::DELETE,
            "/api/v1/namespaces/m/serviceaccounts".into(),
            "",
            "",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (method, path, content_type, body, expected) in cases {
        let reply = kube.send(method.clone(), &path, content_type, body).await;
        assert_eq!(
            reply.status, expected,
            "{method} {path} {body}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["kind"], "Status",
            "{method} {path}: {}",
            reply.body
        );
        assert_eq!(reply.body["code"], expected.as_u16());
    }
    // Unknown clusters and paths.
    let nowhere = Kube::new(&sb, &sb.url("/k8s/nowhere"), None);
    assert_eq!(nowhere.get("/version").await.status, StatusCode::NOT_FOUND);
    let oidc = Kube::new(&sb, &sb.url("/oidc/x"), None);
    assert_eq!(
        oidc.get("/y/openid/v1/jwks").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_reset_keeps_the_standalone_clusters_credentials_not_its_objects() {
    let sb = sandbox().await;
    let before = standalone(&sb);
    let kube = Kube::admin(&sb, &before);
    kube.namespace("orders").await;
    let reset = sb
        .client
        .post(sb.url("/_sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());
    let after = standalone(&sb);
    assert_eq!(after.admin_token, before.admin_token);
    assert_eq!(
        kube.get("/api/v1/namespaces/orders").await.status,
        StatusCode::NOT_FOUND
    );
}

/// The whole workload identity chain inside the sandbox: a token of an emulated AKS cluster,
/// exchanged at the sandbox's Entra endpoint.
#[tokio::test]
async fn an_aks_service_account_token_is_exchanged_at_entra() {
    let sb = sandbox().await;
    sb.resource_group("rg").await;
    let cluster = aks(&sb, "aks1", true).await;
    let issuer = cluster["properties"]["oidcIssuerProfile"]["issuerURL"]
        .as_str()
        .unwrap()
        .to_string();
    let identity = sb.identity("rg", "id1").await;
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    let credential = sb
        .put(
            &crate::common::fic_path("rg", "id1", "aks1"),
            crate::common::fic_body(&issuer, "system:serviceaccount:orders:api"),
        )
        .await;
    assert!(credential.status.is_success(), "{}", credential.body);
    let (server, token, _) = credentials(&sb, "aks1").await;
    let kube = Kube::new(&sb, &server, Some(&token));
    kube.namespace("orders").await;
    kube.account("orders", "api", json!({})).await;
    let minted = kube
        .token("orders", "api", &["api://AzureADTokenExchange"])
        .await;
    let assertion = minted.body["status"]["token"].as_str().unwrap();
    let tenant = sb.running.app.tenant_id();
    let exchanged = sb
        .client
        .post(sb.url(&format!("/{tenant}/oauth2/v2.0/token")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion),
                    ("scope", "https://management.azure.com/.default"),
                ])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    let status = exchanged.status();
    let body: Value = exchanged.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// `GET /_sandbox/kubeconfig`: the standalone cluster's kubeconfig (server, the sandbox's CA, the
/// admin token), what `--sandbox` commands connect to clusters that are not AKS with.
#[tokio::test]
async fn the_admin_api_hands_out_the_standalone_clusters_kubeconfig() {
    let sb = sandbox().await;
    let response = sb
        .client
        .get(sb.url("/_sandbox/kubeconfig"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/yaml"
    );
    let text = response.text().await.unwrap();
    let cluster = standalone(&sb);
    let ca = base64::engine::general_purpose::STANDARD.encode(sb.running.ca_pem());
    for line in [
        format!("    server: {}", cluster.server),
        format!("    certificate-authority-data: {ca}"),
        format!("    token: {}", cluster.admin_token),
        "current-context: sandbox".to_string(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} not in the kubeconfig"
        );
    }
    // The token is the admin's: it may list namespaces.
    let kube = Kube::new(&sb, &cluster.server, Some(&cluster.admin_token));
    let namespaces = kube.get("/api/v1/namespaces").await;
    assert_eq!(namespaces.status, StatusCode::OK);
    assert!(
        namespaces.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["metadata"]["name"] == "default")
    );
}
