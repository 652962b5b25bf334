//! The whole workload identity chain across the two halves of the test world: a token minted by
//! the real kube-apiserver (TokenRequest) is exchanged at the sandbox's Entra token endpoint,
//! which fetches the cluster's discovery document and JWKS over HTTPS, for an access token that
//! ARM accepts.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wiform_sandbox::auth::Caller;
use wiform_sandbox::state::{ADMIN_CLIENT_ID, DEFAULT_SUBSCRIPTION};

use crate::contract::Target;

#[tokio::test]
async fn a_real_service_account_token_is_exchanged_for_an_azure_token() {
    let server = crate::kube_server::kube_server();
    let cluster = Target {
        name: "kube-apiserver",
        server: server.server.clone(),
        ca_pem: server.ca_pem(),
        admin_token: server.admin_token.clone(),
        reader_token: server.reader_token.clone(),
        issuer: server.issuer.clone(),
    };
    let sandbox = wiform_sandbox::start(wiform_sandbox::Options {
        trusted_ca_files: vec![server.ca_file.clone()],
        ..Default::default()
    })
    .await
    .expect("sandbox");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(sandbox.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let app = &sandbox.app;
    let admin = app.store.read(|s| {
        let sp = s.principal_by_client_id(ADMIN_CLIENT_ID).unwrap();
        Caller {
            object_id: sp.id.clone(),
            client_id: ADMIN_CLIENT_ID.into(),
            tenant_id: s.tenant_id.clone(),
        }
    });
    let arm_token = app
        .key
        .mint(&app.issuer(), &admin, "https://management.azure.com", 600);
    let arm = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{}{path}", sandbox.base_url()))
            .bearer_auth(&arm_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    // The Azure side: an identity that trusts the cluster's issuer for one service account.
    let namespace = format!("exchange-{}", std::process::id());
    let rg = format!("/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-wi");
    assert!(
        arm(
            reqwest::Method::PUT,
            format!("{rg}?api-version=2021-04-01"),
            Some(json!({"location": "westeurope"}))
        )
        .await
        .unwrap()
        .status()
        .is_success()
    );
    let identity: Value = arm(
        reqwest::Method::PUT,
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-workload?api-version=2024-11-30"),
        Some(json!({"location": "westeurope"})),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let client_id = identity["properties"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    let credential = arm(
        reqwest::Method::PUT,
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-workload/federatedIdentityCredentials/cluster?api-version=2024-11-30"),
        Some(json!({"properties": {"issuer": cluster.issuer, "subject": format!("system:serviceaccount:{namespace}:workload"), "audiences": ["api://AzureADTokenExchange"]}})),
    )
    .await
    .unwrap();
    assert!(
        credential.status().is_success(),
        "{}",
        credential.text().await.unwrap()
    );

    // The Kubernetes side: the service account, and a token for it as the webhook projects it.
    let kube = cluster.client(&cluster.admin_token);
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(kube.clone());
    namespaces
        .patch(
            &namespace,
            &PatchParams::apply("wiform"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            ),
        )
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(kube, &namespace);
    accounts
        .patch(
            "workload",
            &PatchParams::apply("wiform"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "workload", "annotations": {"azure.workload.identity/client-id": client_id}}})),
        )
        .await
        .unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec!["api://AzureADTokenExchange".into()],
            expiration_seconds: Some(3600),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let assertion = accounts
        .create_token_request("workload", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;

    // The exchange, exactly as an Azure SDK in the pod does it.
    let tenant = app.tenant_id();
    let exchanged = http
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sandbox.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let status = exchanged.status();
    let body: Value = exchanged.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let subscriptions = http
        .get(format!(
            "{}/subscriptions?api-version=2022-12-01",
            sandbox.base_url()
        ))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(subscriptions.status(), 200);

    // A token for another service account of the same cluster is refused with the subject named.
    accounts
        .patch("other", &PatchParams::apply("wiform"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other"}})))
        .await
        .unwrap();
    let wrong = accounts
        .create_token_request("other", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let refused: Value = http
        .post(format!("{}/{tenant}/oauth2/v2.0/token", sandbox.base_url()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", wrong.as_str()),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error_codes"], json!([700213]), "{refused}");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("system:serviceaccount:{namespace}:other")),
        "{refused}"
    );
}
