//! The Entra token endpoint and its metadata: the client-credentials grant with a secret, and
//! workload identity federation validated for real against a test OIDC issuer served over HTTPS
//! by the test (its own CA, trusted through `Options::trusted_ca_files`), with the AADSTS code of
//! each kind of bad assertion.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wiform_sandbox::Options;
use wiform_sandbox::state::{ADMIN_CLIENT_ID, DEFAULT_TENANT};

use crate::common::*;

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "api://AzureADTokenExchange";
const ARM_SCOPE: &str = "https://management.azure.com/.default";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const SUBJECT: &str = "system:serviceaccount:orders:api";

// ---------------------------------------------------------------------------------------------
// A test OIDC issuer: `https://127.0.0.1:PORT/{name}` serves `/.well-known/openid-configuration`
// and `/openid/v1/jwks` (the kube-apiserver layout) for any name, except `gone` (no discovery
// document) and `no-keys` (a jwks_uri that answers 404).

struct Keys {
    rsa: String,
    ec: String,
    /// Not published: signs assertions whose signature cannot verify.
    rogue: String,
    jwks: Value,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .unwrap()
            .serialize_pem();
        let ec = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem();
        let rogue = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
            .unwrap()
            .serialize_pem();
        let jwk = |pem: &str, alg: Algorithm, kid: &str| {
            let key = match alg {
                Algorithm::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
                _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            };
            let mut jwk =
                serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap())
                    .unwrap();
            jwk["kid"] = json!(kid);
            jwk["use"] = json!("sig");
            jwk
        };
        let jwks = json!({ "keys": [jwk(&rsa, Algorithm::RS256, "rsa-key"), jwk(&ec, Algorithm::ES256, "ec-key")] });
        Keys {
            rsa,
            ec,
            rogue,
            jwks,
        }
    })
}

struct Issuer {
    base: String,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "test OIDC issuer CA");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn document(base: &str, path: &str) -> Option<Value> {
    let (name, rest) = path.trim_start_matches('/').split_once('/')?;
    let issuer = format!("{base}/{name}");
    match rest {
        ".well-known/openid-configuration" if name != "gone" => {
            let jwks_uri = if name == "no-keys" {
                format!("{issuer}/missing")
            } else {
                format!("{issuer}/openid/v1/jwks")
            };
            Some(json!({
                "issuer": issuer,
                "jwks_uri": jwks_uri,
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            }))
        }
        "openid/v1/jwks" => Some(keys().jwks.clone()),
        _ => None,
    }
}

impl Issuer {
    async fn start() -> Issuer {
        keys();
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let ca = ca_params().self_signed(&ca_key).unwrap();
        let signer = rcgen::Issuer::new(ca_params(), ca_key);
        let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&leaf_key, &signer)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("issuer-ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let served = base.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let base = served.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let found = document(&base, request.uri().path());
                            async move {
                                let (status, body) = match found {
                                    Some(body) => (200, body.to_string()),
                                    None => (404, "{}".to_string()),
                                };
                                Ok::<_, Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/json")
                                        .body(Full::new(bytes::Bytes::from(body)))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Issuer {
            base,
            ca_file,
            _dir: dir,
            task,
        }
    }

    /// The issuer URL of `name` (no trailing slash, as a kube-apiserver's).
    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[derive(Clone, Copy)]
enum Signer {
    Rsa,
    Ec,
    Rogue,
}

/// A signed assertion like a projected service account token (aud is an array).
fn assertion(
    signer: Signer,
    kid: &str,
    iss: &str,
    sub: &str,
    aud: &str,
    lifetime_s: i64,
) -> String {
    let (alg, key) = match signer {
        Signer::Rsa => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(keys().rsa.as_bytes()).unwrap(),
        ),
        Signer::Ec => (
            Algorithm::ES256,
            EncodingKey::from_ec_pem(keys().ec.as_bytes()).unwrap(),
        ),
        Signer::Rogue => (
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(keys().rogue.as_bytes()).unwrap(),
        ),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    let issued = if lifetime_s > 0 { now() } else { now() - 7200 };
    let claims = json!({
        "iss": iss,
        "sub": sub,
        "aud": [aud],
        "iat": issued,
        "nbf": issued,
        "exp": now() + lifetime_s,
        "kubernetes.io": { "namespace": "orders", "serviceaccount": { "name": "api" } },
    });
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Calling the token endpoint.

type Form<'a> = Vec<(&'a str, &'a str)>;

fn token_path() -> String {
    format!("/{DEFAULT_TENANT}/oauth2/v2.0/token")
}

async fn post_form(sb: &Sandbox, path: &str, form: &[(&str, &str)]) -> Answer {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    answer(
        sb.client
            .post(sb.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

async fn exchange(sb: &Sandbox, client_id: &str, assertion: &str, scope: &str) -> Answer {
    post_form(
        sb,
        &token_path(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
            ("scope", scope),
        ],
    )
    .await
}

fn secret_of(sb: &Sandbox, client_id: &str) -> String {
    sb.running.app.store.read(|s| {
        s.clients
            .iter()
            .find(|c| c.client_id == client_id)
            .unwrap()
            .secret
            .clone()
    })
}

/// An OAuth error body: `{"error","error_description":"AADSTS…: …","error_codes":[…],…}`.
fn assert_aadsts(answer: &Answer, status: StatusCode, error: &str, code: u64) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"], error, "{}", answer.body);
    assert_eq!(answer.body["error_codes"], json!([code]), "{}", answer.body);
    let description = answer.body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(answer.body[field].is_string(), "{field}: {}", answer.body);
    }
}

fn description(answer: &Answer) -> &str {
    answer.body["error_description"].as_str().unwrap_or("")
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn sandbox_trusting(issuer: &Issuer) -> Sandbox {
    sandbox_with(Options {
        page_size: 5,
        trusted_ca_files: vec![issuer.ca_file.clone()],
        ..Options::default()
    })
    .await
}

/// A managed identity with a federated credential for `issuer`/SUBJECT; its client id.
async fn federated_identity(sb: &Sandbox, issuer: &Issuer, name: &str) -> String {
    sb.resource_group("rg-wi").await;
    let identity = sb.identity("rg-wi", name).await;
    let fic = sb
        .put(
            &fic_path("rg-wi", name, "cluster"),
            fic_body(&issuer.url("cluster"), SUBJECT),
        )
        .await;
    assert!(fic.status.is_success(), "{}", fic.body);
    identity["properties"]["clientId"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn metadata_points_sdks_at_the_sandbox() {
    let sb = sandbox().await;
    let base = sb.running.base_url().to_string();
    let config = sb
        .get(&format!(
            "/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration"
        ))
        .await;
    assert_eq!(config.status, StatusCode::OK, "{}", config.body);
    assert_eq!(config.body["issuer"], sb.running.app.issuer().as_str());
    assert_eq!(
        config.body["token_endpoint"],
        format!("{base}/{DEFAULT_TENANT}/oauth2/v2.0/token")
    );
    assert_eq!(
        config.body["authorization_endpoint"],
        format!("{base}/{DEFAULT_TENANT}/oauth2/v2.0/authorize")
    );
    let jwks_uri = config.body["jwks_uri"].as_str().unwrap();
    assert_eq!(
        jwks_uri,
        format!("{base}/{DEFAULT_TENANT}/discovery/v2.0/keys")
    );
    let jwks = sb.get(jwks_uri).await;
    assert_eq!(jwks.status, StatusCode::OK);
    // Tokens the endpoint issues are signed with a published key.
    let kid = jsonwebtoken::decode_header(&sb.admin_token).unwrap().kid;
    assert_eq!(jwks.body["keys"][0]["kid"].as_str(), kid.as_deref());

    let common = sb
        .get("/common/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(common.body["issuer"], format!("{base}/{{tenantid}}/v2.0"));
    let unknown = sb
        .get("/11111111-2222-3333-4444-555555555555/v2.0/.well-known/openid-configuration")
        .await;
    assert_aadsts(&unknown, StatusCode::BAD_REQUEST, "invalid_tenant", 90002);

    // MSAL's instance discovery.
    let discovery = sb
        .get(&format!(
            "/common/discovery/instance?api-version=1.1&authorization_endpoint={base}/{DEFAULT_TENANT}/oauth2/v2.0/authorize"
        ))
        .await;
    assert_eq!(discovery.status, StatusCode::OK, "{}", discovery.body);
    assert_eq!(
        discovery.body["tenant_discovery_endpoint"],
        format!("{base}/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration")
    );
    let host = base.trim_start_matches("https://");
    assert_eq!(discovery.body["metadata"][0]["preferred_network"], host);
    assert!(
        discovery.body["metadata"][0]["aliases"]
            .as_array()
            .unwrap()
            .contains(&json!(host))
    );
    let foreign = sb
        .get("/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.example.com/common/oauth2/v2.0/authorize")
        .await;
    assert_aadsts(&foreign, StatusCode::BAD_REQUEST, "invalid_instance", 50049);

    let wrong_method = post_form(
        &sb,
        &format!("/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration"),
        &[],
    )
    .await;
    assert_aadsts(
        &wrong_method,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900561,
    );
}

#[tokio::test]
async fn a_client_secret_gets_tokens_that_arm_and_graph_accept() {
    let sb = sandbox().await;
    let secret = secret_of(&sb, ADMIN_CLIENT_ID);
    let answer = post_form(
        &sb,
        &token_path(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ADMIN_CLIENT_ID),
            ("client_secret", &secret),
            ("scope", ARM_SCOPE),
        ],
    )
    .await;
    // v2-oauth2-client-creds-grant-flow.md, "Successful response".
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 3599);
    assert_eq!(answer.body["ext_expires_in"], 3599);
    assert!(
        answer
            .header("cache-control")
            .is_some_and(|v| v.contains("no-store"))
    );
    let arm_token = answer.body["access_token"].as_str().unwrap().to_string();
    let token_claims = claims(&arm_token);
    assert_eq!(token_claims["aud"], "https://management.azure.com");
    assert_eq!(token_claims["appid"], ADMIN_CLIENT_ID);
    assert_eq!(token_claims["tid"], DEFAULT_TENANT);
    assert_eq!(token_claims["iss"], sb.running.app.issuer().as_str());
    let subscriptions = sb
        .call_as(
            &arm_token,
            Method::GET,
            "/subscriptions?api-version=2022-12-01",
            None,
        )
        .await;
    assert_eq!(
        subscriptions.status,
        StatusCode::OK,
        "{}",
        subscriptions.body
    );
    let at_graph = sb
        .call_as(&arm_token, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(at_graph.status, StatusCode::UNAUTHORIZED, "wrong audience");

    // client_secret_basic works too (RFC 6749 §2.3.1).
    let response = sb
        .client
        .post(sb.url(&token_path()))
        .basic_auth(ADMIN_CLIENT_ID, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&scope={}",
            url::form_urlencoded::byte_serialize(GRAPH_SCOPE.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let graph_token = body["access_token"].as_str().unwrap();
    assert_eq!(claims(graph_token)["aud"], "https://graph.microsoft.com");
    let apps = sb
        .call_as(graph_token, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(apps.status, StatusCode::OK, "{}", apps.body);
}

#[tokio::test]
async fn bad_token_requests_get_the_real_aadsts_errors() {
    let sb = sandbox().await;
    let secret = secret_of(&sb, ADMIN_CLIENT_ID);
    let unknown_client = uuid::Uuid::new_v4().to_string();
    let path = token_path();
    let cases: Vec<(Form, StatusCode, &str, u64)> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", ADMIN_CLIENT_ID),
                ("client_secret", "wrong"),
                ("scope", ARM_SCOPE),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &unknown_client),
                ("client_secret", &secret),
                ("scope", ARM_SCOPE),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "orders-api"),
                ("client_secret", &secret),
                ("scope", ARM_SCOPE),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700038,
        ),
        (
            vec![
                ("client_id", ADMIN_CLIENT_ID),
                ("client_secret", &secret),
                ("scope", ARM_SCOPE),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", ADMIN_CLIENT_ID),
                ("client_secret", &secret),
                ("scope", ARM_SCOPE),
            ],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", ADMIN_CLIENT_ID),
                ("client_secret", &secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", ADMIN_CLIENT_ID),
                ("client_secret", &secret),
                ("scope", "https://graph.microsoft.com/User.Read"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", ADMIN_CLIENT_ID),
                ("client_secret", &secret),
                ("scope", "https://vault.azure.net/.default"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", ADMIN_CLIENT_ID),
                ("scope", ARM_SCOPE),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
        ),
    ];
    for (form, status, error, code) in cases {
        let answer = post_form(&sb, &path, &form).await;
        assert_aadsts(&answer, status, error, code);
    }
    // The reader's secret is not the admin's.
    let mixed = post_form(
        &sb,
        &path,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", wiform_sandbox::state::READER_CLIENT_ID),
            ("client_secret", &secret),
            ("scope", ARM_SCOPE),
        ],
    )
    .await;
    assert_aadsts(&mixed, StatusCode::UNAUTHORIZED, "invalid_client", 7000215);
    assert!(
        !description(&mixed).contains(&secret),
        "no secret in errors"
    );

    let good = [
        ("grant_type", "client_credentials"),
        ("client_id", ADMIN_CLIENT_ID),
        ("client_secret", secret.as_str()),
        ("scope", ARM_SCOPE),
    ];
    let unknown_tenant = post_form(
        &sb,
        "/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token",
        &good,
    )
    .await;
    assert_aadsts(
        &unknown_tenant,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
    );
    let common = post_form(&sb, "/common/oauth2/v2.0/token", &good).await;
    assert_aadsts(&common, StatusCode::BAD_REQUEST, "invalid_request", 9001023);
    let get = sb.get(&path).await;
    assert_aadsts(&get, StatusCode::BAD_REQUEST, "invalid_request", 900561);
    // Not a form at all.
    let response = sb
        .client
        .post(sb.url(&path))
        .header("content-type", "application/json")
        .body("{\"grant_type\": \"client_credentials\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error_codes"], json!([900144]));
}

#[tokio::test]
async fn a_managed_identity_exchanges_rs256_and_es256_assertions() {
    let issuer = Issuer::start().await;
    let sb = sandbox_trusting(&issuer).await;
    let client_id = federated_identity(&sb, &issuer, "id-wi").await;
    let principal_id =
        sb.get(&identity_path("rg-wi", "id-wi")).await.body["properties"]["principalId"]
            .as_str()
            .unwrap()
            .to_string();
    for (signer, kid) in [(Signer::Rsa, "rsa-key"), (Signer::Ec, "ec-key")] {
        let jwt = assertion(
            signer,
            kid,
            &issuer.url("cluster"),
            SUBJECT,
            TOKEN_EXCHANGE,
            3600,
        );
        let answer = exchange(&sb, &client_id, &jwt, ARM_SCOPE).await;
        assert_eq!(answer.status, StatusCode::OK, "{kid}: {}", answer.body);
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], 3599);
        let token = answer.body["access_token"].as_str().unwrap();
        let token_claims = claims(token);
        assert_eq!(token_claims["appid"], client_id.as_str());
        assert_eq!(token_claims["oid"], principal_id.as_str());
        assert_eq!(token_claims["aud"], "https://management.azure.com");
        let subscriptions = sb
            .call_as(
                token,
                Method::GET,
                "/subscriptions?api-version=2022-12-01",
                None,
            )
            .await;
        assert_eq!(
            subscriptions.status,
            StatusCode::OK,
            "{}",
            subscriptions.body
        );
    }
}

#[tokio::test]
async fn an_application_exchanges_an_assertion_and_calls_graph() {
    let issuer = Issuer::start().await;
    let sb = sandbox_trusting(&issuer).await;
    let admin = token_for(&sb.running, ADMIN_CLIENT_ID, "https://graph.microsoft.com");
    let app = sb
        .call_as(
            &admin,
            Method::POST,
            "/v1.0/applications",
            Some(json!({ "displayName": "wi-app" })),
        )
        .await;
    assert_eq!(app.status, StatusCode::CREATED, "{}", app.body);
    let (object_id, app_id) = (
        app.body["id"].as_str().unwrap().to_string(),
        app.body["appId"].as_str().unwrap().to_string(),
    );
    let fic = sb
        .call_as(
            &admin,
            Method::POST,
            &format!("/v1.0/applications/{object_id}/federatedIdentityCredentials"),
            Some(json!({ "name": "cluster", "issuer": issuer.url("cluster"), "subject": SUBJECT, "audiences": [TOKEN_EXCHANGE] })),
        )
        .await;
    assert_eq!(fic.status, StatusCode::CREATED, "{}", fic.body);

    let jwt = assertion(
        Signer::Rsa,
        "rsa-key",
        &issuer.url("cluster"),
        SUBJECT,
        TOKEN_EXCHANGE,
        3600,
    );
    // No service principal yet: the client cannot sign in (AADSTS7000229).
    let without_sp = exchange(&sb, &app_id, &jwt, GRAPH_SCOPE).await;
    assert_aadsts(
        &without_sp,
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000229,
    );
    let sp = sb
        .call_as(
            &admin,
            Method::POST,
            "/v1.0/servicePrincipals",
            Some(json!({ "appId": app_id })),
        )
        .await;
    assert_eq!(sp.status, StatusCode::CREATED, "{}", sp.body);
    let sp_id = sp.body["id"].as_str().unwrap().to_string();

    let answer = exchange(&sb, &app_id, &jwt, GRAPH_SCOPE).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let token = answer.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&token)["oid"], sp_id.as_str());
    // Authenticated, but with no directory rights yet.
    let denied = sb
        .call_as(&token, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    assert_eq!(denied.code(), "Authorization_RequestDenied");
    // Reader on the subscription counts as Application.Read.All.
    let assignment = sb
        .put(
            &format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/{}?api-version={AUTHZ_API}",
                uuid::Uuid::new_v4()
            ),
            json!({ "properties": {
                "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{}", wiform_sandbox::builtin_roles::READER),
                "principalId": sp_id,
                "principalType": "ServicePrincipal",
            }}),
        )
        .await;
    assert!(assignment.status.is_success(), "{}", assignment.body);
    let allowed = sb
        .call_as(&token, Method::GET, "/v1.0/applications", None)
        .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    // The same assertion gets an ARM token too.
    let arm = exchange(&sb, &app_id, &jwt, ARM_SCOPE).await;
    assert_eq!(arm.status, StatusCode::OK, "{}", arm.body);
}

#[tokio::test]
async fn each_kind_of_bad_assertion_gets_its_aadsts_code() {
    let issuer = Issuer::start().await;
    let sb = sandbox_trusting(&issuer).await;
    let client_id = federated_identity(&sb, &issuer, "id-bad").await;
    let iss = issuer.url("cluster");
    let valid = |signer, kid: &str| assertion(signer, kid, &iss, SUBJECT, TOKEN_EXCHANGE, 3600);

    // Issuer: exact match only (a trailing slash is another issuer).
    let other_issuer = assertion(
        Signer::Rsa,
        "rsa-key",
        &format!("{iss}/"),
        SUBJECT,
        TOKEN_EXCHANGE,
        3600,
    );
    let answer = exchange(&sb, &client_id, &other_issuer, ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700211);
    assert!(description(&answer).contains(&format!("assertion issuer '{iss}/'")));

    let other_subject = assertion(
        Signer::Rsa,
        "rsa-key",
        &iss,
        "system:serviceaccount:orders:worker",
        TOKEN_EXCHANGE,
        3600,
    );
    let answer = exchange(&sb, &client_id, &other_subject, ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700213);
    assert!(description(&answer).contains("'system:serviceaccount:orders:worker'"));

    let case_only = assertion(
        Signer::Rsa,
        "rsa-key",
        &iss,
        &SUBJECT.to_uppercase(),
        TOKEN_EXCHANGE,
        3600,
    );
    let answer = exchange(&sb, &client_id, &case_only, ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 7002138);

    let other_audience = assertion(Signer::Rsa, "rsa-key", &iss, SUBJECT, "api://other", 3600);
    let answer = exchange(&sb, &client_id, &other_audience, ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700212);
    assert!(description(&answer).contains("'api://other'"));

    let expired = assertion(Signer::Rsa, "rsa-key", &iss, SUBJECT, TOKEN_EXCHANGE, -3600);
    let answer = exchange(&sb, &client_id, &expired, ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700024);
    assert!(description(&answer).contains("Client assertion is not within its valid time range."));

    let answer = exchange(
        &sb,
        &uuid::Uuid::new_v4().to_string(),
        &valid(Signer::Rsa, "rsa-key"),
        ARM_SCOPE,
    )
    .await;
    assert_aadsts(
        &answer,
        StatusCode::BAD_REQUEST,
        "unauthorized_client",
        700016,
    );

    let answer = exchange(
        &sb,
        &client_id,
        &valid(Signer::Rsa, "no-such-key"),
        ARM_SCOPE,
    )
    .await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 7000272);

    let answer = exchange(&sb, &client_id, &valid(Signer::Rogue, "rsa-key"), ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700027);
    // An EC signature presented under the RSA key's id.
    let answer = exchange(&sb, &client_id, &valid(Signer::Ec, "rsa-key"), ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700027);

    for garbage in ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", ""] {
        let answer = exchange(&sb, &client_id, garbage, ARM_SCOPE).await;
        let code = if garbage.is_empty() { 7000218 } else { 50027 };
        assert_eq!(
            answer.body["error_codes"],
            json!([code]),
            "{garbage}: {}",
            answer.body
        );
    }

    // Entra's own tokens cannot be federated (the sandbox is this world's Entra).
    let entra = token_for(&sb.running, ADMIN_CLIENT_ID, "https://management.azure.com");
    let answer = exchange(&sb, &client_id, &entra, ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700222);
    let microsoft = assertion(
        Signer::Rsa,
        "rsa-key",
        "https://login.microsoftonline.com/aaaaaaaa-0000-4000-8000-000000000001/v2.0",
        SUBJECT,
        TOKEN_EXCHANGE,
        3600,
    );
    let answer = exchange(&sb, &client_id, &microsoft, ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::UNAUTHORIZED, "invalid_client", 700222);

    // An identity with no federated credential at all (as while one propagates).
    let bare = sb.identity("rg-wi", "id-bare").await;
    let bare_client = bare["properties"]["clientId"].as_str().unwrap();
    let answer = exchange(&sb, bare_client, &valid(Signer::Rsa, "rsa-key"), ARM_SCOPE).await;
    assert_aadsts(&answer, StatusCode::BAD_REQUEST, "invalid_request", 70021);
    assert!(
        description(&answer).contains(&format!(
            "Assertion Issuer: '{iss}'. Assertion Subject: '{SUBJECT}'. Assertion Audience: '{TOKEN_EXCHANGE}'."
        )),
        "{}",
        description(&answer)
    );

    let wrong_type = post_form(
        &sb,
        &token_path(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_assertion_type", "urn:example:saml"),
            ("client_assertion", &valid(Signer::Rsa, "rsa-key")),
            ("scope", ARM_SCOPE),
        ],
    )
    .await;
    assert_eq!(
        wrong_type.status,
        StatusCode::BAD_REQUEST,
        "{}",
        wrong_type.body
    );

    // After all that, the right assertion still works.
    let answer = exchange(&sb, &client_id, &valid(Signer::Rsa, "rsa-key"), ARM_SCOPE).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn an_unreachable_issuer_is_an_external_oidc_failure() {
    let issuer = Issuer::start().await;
    let sb = sandbox_trusting(&issuer).await;
    sb.resource_group("rg-wi").await;
    let identity = sb.identity("rg-wi", "id-far").await;
    let client_id = identity["properties"]["clientId"].as_str().unwrap();
    // A port nothing listens on.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed_issuer = format!("https://127.0.0.1:{closed}/cluster");
    for (name, fic_issuer) in [
        ("closed", closed_issuer.clone()),
        ("gone", issuer.url("gone")),
        ("no-keys", issuer.url("no-keys")),
    ] {
        let answer = sb
            .put(
                &fic_path("rg-wi", "id-far", name),
                fic_body(&fic_issuer, SUBJECT),
            )
            .await;
        assert!(answer.status.is_success(), "{}", answer.body);
    }
    for (iss, code) in [
        (closed_issuer, 90061),
        (issuer.url("gone"), 90061),
        (issuer.url("no-keys"), 50166),
    ] {
        let jwt = assertion(Signer::Rsa, "rsa-key", &iss, SUBJECT, TOKEN_EXCHANGE, 3600);
        let answer = exchange(&sb, client_id, &jwt, ARM_SCOPE).await;
        assert_aadsts(&answer, StatusCode::BAD_REQUEST, "invalid_request", code);
        assert!(
            description(&answer).contains("Request to External OIDC endpoint failed."),
            "{iss}"
        );
    }
}

/// A credential that has not propagated yet is not there for the token endpoint: AADSTS70021,
/// as in the considerations doc ("may take a few minutes").
#[tokio::test]
async fn a_new_federated_credential_needs_time_to_propagate() {
    let issuer = Issuer::start().await;
    let sb = sandbox_trusting(&issuer).await;
    let client_id = federated_identity(&sb, &issuer, "id-new").await;
    let jwt = assertion(
        Signer::Rsa,
        "rsa-key",
        &issuer.url("cluster"),
        SUBJECT,
        TOKEN_EXCHANGE,
        3600,
    );
    let app = &sb.running.app;
    app.set_faults(wiform_sandbox::Faults {
        replication_delay_ms: 60_000,
        ..Default::default()
    });
    let early = exchange(&sb, &client_id, &jwt, ARM_SCOPE).await;
    assert_aadsts(&early, StatusCode::BAD_REQUEST, "invalid_request", 70021);
    app.set_faults(wiform_sandbox::Faults::default());
    let later = exchange(&sb, &client_id, &jwt, ARM_SCOPE).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.body);
}
