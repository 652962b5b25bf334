//! The credential chain against the sandbox's Entra token endpoint: a client secret (and its
//! token cache), a wrong secret, nothing configured at all, and workload identity end to end
//! (a service-account token from the sandbox's Kubernetes cluster exchanged for an Entra token
//! through a federated identity credential).

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use wiform::providers::azure::cloud::Endpoints;
use wiform::providers::azure::credential::{
    AuthMethod, CredentialError, CredentialSettings, Environment, credential,
};
use wiform_sandbox::state::{ADMIN_CLIENT_ID, DEFAULT_SUBSCRIPTION, DEFAULT_TENANT};
use wiform_sandbox::{Options, Running};

const ARM_SCOPE: &str = "https://management.azure.com/.default";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const MSI_API: &str = "2024-11-30";
const RG_API: &str = "2021-04-01";
/// Longest a test waits for a token: nothing here should come near it.
const GUARD: Duration = Duration::from_secs(20);

async fn sandbox() -> Running {
    wiform_sandbox::start(Options::default())
        .await
        .expect("the sandbox starts")
}

fn settings(running: &Running, method: AuthMethod, env: Environment) -> CredentialSettings {
    CredentialSettings {
        method,
        tenant_id: DEFAULT_TENANT.into(),
        endpoints: Endpoints::sandbox(running.base_url(), running.ca_pem()).unwrap(),
        env,
    }
}

fn credential_or_panic(settings: &CredentialSettings) -> Arc<dyn TokenCredential> {
    credential(settings).unwrap_or_else(|e| panic!("{e}"))
}

fn admin_secret(running: &Running) -> String {
    running.app.store.read(|s| {
        s.clients
            .iter()
            .find(|c| c.client_id == ADMIN_CLIENT_ID)
            .expect("the admin client")
            .secret
            .clone()
    })
}

fn secret_env(client_id: &str, secret: &str) -> Environment {
    Environment {
        client_id: Some(client_id.into()),
        client_secret: Some(secret.into()),
        ..Environment::default()
    }
}

/// Requests the sandbox's token endpoint has answered.
fn token_requests(running: &Running) -> usize {
    running
        .app
        .log
        .entries()
        .iter()
        .filter(|e| e.api == "entra" && e.operation == "POST token")
        .count()
}

async fn token(credential: &Arc<dyn TokenCredential>, scope: &str) -> azure_core::Result<String> {
    tokio::time::timeout(GUARD, credential.get_token(&[scope], None))
        .await
        .expect("a token or an error, without hanging")
        .map(|t| t.token.secret().to_string())
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

fn http(running: &Running) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_merge(
            reqwest::Certificate::from_pem_bundle(running.ca_pem().as_bytes()).unwrap(),
        )
        .timeout(GUARD)
        .build()
        .unwrap()
}

/// Sends a JSON request; expects success and returns the body.
async fn send(
    client: &reqwest::Client,
    method: Method,
    url: &str,
    bearer: &str,
    content_type: &str,
    body: Value,
) -> Value {
    let response = client
        .request(method.clone(), url)
        .bearer_auth(bearer)
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("an answer");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {url}: {status} {body}");
    body
}

#[tokio::test]
async fn a_client_secret_gets_tokens_and_each_scope_is_asked_once() {
    let running = sandbox().await;
    let env = secret_env(ADMIN_CLIENT_ID, &admin_secret(&running));
    for method in [AuthMethod::Auto, AuthMethod::Environment] {
        running.app.log.clear();
        let credential = credential(&settings(&running, method, env.clone())).unwrap();
        let arm = token(&credential, ARM_SCOPE).await.expect("an ARM token");
        assert_eq!(claims(&arm)["aud"], "https://management.azure.com");
        assert_eq!(claims(&arm)["appid"], ADMIN_CLIENT_ID);
        let again = token(&credential, ARM_SCOPE).await.unwrap();
        assert_eq!(again, arm, "{method}: the cached token");
        assert_eq!(
            token_requests(&running),
            1,
            "{method}: one request for one scope"
        );
        let graph = token(&credential, GRAPH_SCOPE)
            .await
            .expect("a Graph token");
        assert_eq!(claims(&graph)["aud"], "https://graph.microsoft.com");
        token(&credential, GRAPH_SCOPE).await.unwrap();
        assert_eq!(token_requests(&running), 2, "{method}: one more for Graph");
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused_without_showing_it() {
    let running = sandbox().await;
    let wrong = "not-the-secret-0123456789";
    let env = secret_env(ADMIN_CLIENT_ID, wrong);
    let credential = credential(&settings(&running, AuthMethod::Environment, env.clone())).unwrap();
    let error = token(&credential, ARM_SCOPE).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("AADSTS7000215"), "{shown}");
    assert!(!shown.contains(wrong), "the secret leaked: {shown}");

    // The chain lists it among the others.
    let chain = credential_or_panic(&settings(&running, AuthMethod::Auto, env));
    let error = token(&chain, ARM_SCOPE).await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(
        shown.contains("environment (client secret): failed: ClientSecretCredential"),
        "{shown}"
    );
    assert!(shown.contains("AADSTS7000215"), "{shown}");
    assert!(!shown.contains(wrong), "the secret leaked: {shown}");
}

#[tokio::test]
async fn with_nothing_configured_the_chain_says_what_it_tried_and_what_to_do() {
    let running = sandbox().await;
    // No variables, no PATH: no `az` either.
    let chain = credential_or_panic(&settings(
        &running,
        AuthMethod::Auto,
        Environment::default(),
    ));
    let error = token(&chain, ARM_SCOPE).await.unwrap_err();
    let failure = error
        .downcast_ref::<CredentialError>()
        .expect("a CredentialError inside");
    let CredentialError::NoCredentialWorked { attempts } = failure else {
        panic!("{failure:?}");
    };
    assert_eq!(attempts.len(), 5, "{failure}");
    let shown = error.to_string();
    for expected in [
        "environment (client secret): skipped: AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not set",
        "environment (client certificate): skipped: AZURE_CLIENT_ID, AZURE_CLIENT_CERTIFICATE_PATH not set",
        "workload identity: skipped: AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE not set",
        "managed identity: failed: IDENTITY_ENDPOINT and MSI_ENDPOINT not set",
        "Azure CLI: skipped: `az` not found on PATH",
        "az login",
        "--sandbox",
    ] {
        assert!(
            shown.contains(expected),
            "missing {expected:?} in:\n{shown}"
        );
    }
    assert_eq!(token_requests(&running), 0);
}

#[tokio::test]
async fn explicit_methods_name_the_variables_they_miss() {
    let running = sandbox().await;
    let only_client = Environment {
        client_id: Some(ADMIN_CLIENT_ID.into()),
        ..Environment::default()
    };
    for (method, env, expected) in [
        (
            AuthMethod::WorkloadIdentity,
            Environment::default(),
            "--auth workload-identity needs AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE (not set)",
        ),
        (
            AuthMethod::WorkloadIdentity,
            only_client.clone(),
            "--auth workload-identity needs AZURE_FEDERATED_TOKEN_FILE (not set)",
        ),
        (
            AuthMethod::Environment,
            only_client,
            "--auth environment needs AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH (not set)",
        ),
        (
            AuthMethod::AzureCli,
            Environment::default(),
            "`az` was not found on PATH",
        ),
    ] {
        let error = credential(&settings(&running, method, env)).unwrap_err();
        assert!(
            error.to_string().contains(expected),
            "{method}: expected {expected:?} in {error}"
        );
    }
    // A token file that is not there is named.
    let missing_file = Environment {
        client_id: Some(ADMIN_CLIENT_ID.into()),
        federated_token_file: Some("/nonexistent/token".into()),
        ..Environment::default()
    };
    let error = credential(&settings(
        &running,
        AuthMethod::WorkloadIdentity,
        missing_file,
    ))
    .unwrap_err();
    assert!(matches!(error, CredentialError::Setup { .. }), "{error}");
    assert!(error.to_string().contains("/nonexistent/token"), "{error}");
}

#[tokio::test]
async fn workload_identity_exchanges_a_service_account_token() {
    let running = sandbox().await;
    let client = http(&running);
    let base = running.base_url().to_string();

    // A service account of the standalone cluster, and a token for it with Entra's audience.
    let cluster = wiform_sandbox::kube::standalone(&running.app).expect("the standalone cluster");
    let apply = "application/apply-patch+yaml";
    send(
        &client,
        Method::PATCH,
        &format!(
            "{}/api/v1/namespaces/orders?fieldManager=wiform",
            cluster.server
        ),
        &cluster.admin_token,
        apply,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "orders"}}),
    )
    .await;
    send(
        &client,
        Method::PATCH,
        &format!(
            "{}/api/v1/namespaces/orders/serviceaccounts/api?fieldManager=wiform",
            cluster.server
        ),
        &cluster.admin_token,
        apply,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "api", "namespace": "orders"}}),
    )
    .await;
    let minted = send(
        &client,
        Method::POST,
        &format!(
            "{}/api/v1/namespaces/orders/serviceaccounts/api/token",
            cluster.server
        ),
        &cluster.admin_token,
        "application/json",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
               "spec": {"audiences": ["api://AzureADTokenExchange"]}}),
    )
    .await;
    let sa_token = minted["status"]["token"].as_str().expect("a token");

    // A managed identity that trusts it, made through ARM as the admin (with a token from the
    // client-secret credential).
    let admin = credential_or_panic(&settings(
        &running,
        AuthMethod::Environment,
        secret_env(ADMIN_CLIENT_ID, &admin_secret(&running)),
    ));
    let arm_token = token(&admin, ARM_SCOPE).await.unwrap();
    let rg = format!("{base}/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-wi");
    let json_type = "application/json";
    send(
        &client,
        Method::PUT,
        &format!("{rg}?api-version={RG_API}"),
        &arm_token,
        json_type,
        json!({"location": "westeurope"}),
    )
    .await;
    let identity_url =
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders-api");
    let identity = send(
        &client,
        Method::PUT,
        &format!("{identity_url}?api-version={MSI_API}"),
        &arm_token,
        json_type,
        json!({"location": "westeurope"}),
    )
    .await;
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .expect("a clientId")
        .to_string();
    send(
        &client,
        Method::PUT,
        &format!("{identity_url}/federatedIdentityCredentials/orders-api?api-version={MSI_API}"),
        &arm_token,
        json_type,
        json!({"properties": {"issuer": cluster.issuer, "subject": "system:serviceaccount:orders:api",
                              "audiences": ["api://AzureADTokenExchange"]}}),
    )
    .await;

    // The pod's view: the projected token file and the identity's client id.
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, sa_token).unwrap();
    let env = Environment {
        client_id: Some(client_id.clone()),
        federated_token_file: Some(token_file.to_str().unwrap().into()),
        ..Environment::default()
    };
    for method in [AuthMethod::WorkloadIdentity, AuthMethod::Auto] {
        let credential = credential_or_panic(&settings(&running, method, env.clone()));
        let arm = token(&credential, ARM_SCOPE)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let claims = claims(&arm);
        assert_eq!(claims["appid"], client_id.as_str(), "{method}");
        assert_eq!(claims["oid"], identity["properties"]["principalId"]);
        assert_eq!(claims["aud"], "https://management.azure.com");
    }

    // A token file that does not hold a JWT is refused with Entra's code.
    std::fs::write(&token_file, "not.a.jwt").unwrap();
    let refused = credential_or_panic(&settings(&running, AuthMethod::WorkloadIdentity, env));
    let error = token(&refused, ARM_SCOPE).await.unwrap_err();
    assert!(error.to_string().contains("AADSTS50027"), "{error}");
}
