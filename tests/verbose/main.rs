//! What `--verbose` logs: every request, with the Authorization header redacted, and never a
//! token, a client secret or a kubeconfig credential — whatever the outcome.
//!
//! A test binary of its own: the log subscriber is process-wide, so no other test may run
//! alongside (tracing caches per call site whether anyone listens).

#[path = "../azure/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;
use wiform::providers::azure::client::{AzureClient, Request};
use wiform::providers::azure::credential::{
    AuthMethod, CredentialSettings, Environment, credential,
};
use wiform::providers::azure::{AzureErrorKind, AzureProvider};
use wiform_sandbox::seed::{Seed, SeedCluster, SeedGroup};
use wiform_sandbox::state::{ADMIN_CLIENT_ID, READER_CLIENT_ID, StoreError};

use support::{SUB, TENANT, sandbox, secret_of, test_options};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn env_for(client_id: &str, secret: &str) -> Environment {
    let (client_id, secret) = (client_id.to_string(), secret.to_string());
    Environment::from_lookup(move |name| match name {
        "AZURE_CLIENT_ID" => Some(client_id.clone()),
        "AZURE_CLIENT_SECRET" => Some(secret.clone()),
        _ => None,
    })
}

// The subscriber sees every task: wiform's, azure_core's, azure_identity's and the sandbox's.
#[tokio::test]
async fn verbose_logs_show_requests_but_never_a_secret_or_token() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "debug,wiform=trace,azure_core=trace,azure_identity=trace,typespec_client_core=trace",
        ))
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let sbx = sandbox().await;
    let app = &sbx.running.app;
    let seed = Seed {
        resource_groups: vec![SeedGroup {
            name: "rg-aks".into(),
            location: "westeurope".into(),
            tags: Default::default(),
        }],
        managed_clusters: vec![SeedCluster {
            resource_group: "rg-aks".into(),
            name: "aks-prod".into(),
            location: "westeurope".into(),
            oidc_issuer: true,
            workload_identity: true,
        }],
        ..Seed::default()
    };
    app.store
        .write(|s| Ok::<_, StoreError>(wiform_sandbox::seed::apply(s, &seed, &app.base_url)))
        .unwrap()
        .unwrap();

    let admin_secret = secret_of(&sbx.running, ADMIN_CLIENT_ID);
    let reader_secret = secret_of(&sbx.running, READER_CLIENT_ID);
    let settings = |client, secret: &str| CredentialSettings {
        method: AuthMethod::Auto,
        tenant_id: TENANT.into(),
        endpoints: sbx.endpoints.clone(),
        env: env_for(client, secret),
    };
    let admin_credential = credential(&settings(ADMIN_CLIENT_ID, &admin_secret)).unwrap();
    let admin = AzureClient::new(
        sbx.endpoints.clone(),
        admin_credential.clone(),
        test_options(),
    )
    .unwrap();
    let provider = AzureProvider::new(admin.clone(), TENANT);

    // Successes, a list, a refusal, a kubeconfig (which holds a credential), a wrong secret.
    admin
        .send(
            &Request::arm(
                Method::PUT,
                format!("/subscriptions/{SUB}/resourcegroups/rg-logs?api-version=2021-04-01"),
            )
            .json(json!({"location": "westeurope"})),
        )
        .await
        .unwrap();
    let clusters = provider.list_clusters(SUB).await.unwrap();
    let kubeconfig = provider.user_kubeconfig(&clusters[0]).await.unwrap();
    let reader = AzureClient::new(
        sbx.endpoints.clone(),
        credential(&settings(READER_CLIENT_ID, &reader_secret)).unwrap(),
        test_options(),
    )
    .unwrap();
    let refused = reader
        .send(
            &Request::arm(
                Method::PUT,
                format!("/subscriptions/{SUB}/resourcegroups/rg-nope?api-version=2021-04-01"),
            )
            .json(json!({"location": "westeurope"})),
        )
        .await
        .unwrap_err();
    let wrong_secret = "not-the-secret-Zq8~";
    let wrong = AzureClient::new(
        sbx.endpoints.clone(),
        credential(&settings(ADMIN_CLIENT_ID, wrong_secret)).unwrap(),
        test_options(),
    )
    .unwrap();
    let unauthenticated = wrong
        .send(&Request::arm(
            Method::GET,
            format!("/subscriptions/{SUB}/resourcegroups?api-version=2021-04-01"),
        ))
        .await
        .unwrap_err();

    // The secrets that must never show: the client secrets, the access tokens wiform used (the
    // credential caches them, so these are the same ones), the kubeconfig's token.
    let arm_token = admin_credential
        .get_token(&[sbx.endpoints.arm_scope.as_str()], None)
        .await
        .unwrap()
        .token
        .secret()
        .to_string();
    let kube_token = kubeconfig
        .expose()
        .lines()
        .find_map(|l| l.trim().strip_prefix("token:"))
        .map(|t| t.trim().trim_matches('"').to_string())
        .expect("the kubeconfig has a token");
    let mut secrets = vec![
        admin_secret,
        reader_secret,
        wrong_secret.to_string(),
        arm_token,
        kube_token,
    ];
    // A JWT's signature alone would be as bad as the whole token.
    let signatures: Vec<String> = secrets
        .iter()
        .filter_map(|s| {
            s.rsplit('.')
                .next()
                .filter(|sig| sig.len() > 20)
                .map(str::to_string)
        })
        .collect();
    secrets.extend(signatures);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let errors =
        format!("{refused}\n{refused:?}\n{unauthenticated}\n{unauthenticated:?}\n{kubeconfig:?}");
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret is in the log");
        assert!(!errors.contains(secret.as_str()), "a secret is in an error");
    }
    // A refused secret is a credential error that quotes Entra, not the secret.
    assert!(
        matches!(unauthenticated.kind(), AzureErrorKind::Credential { message } if message.contains("AADSTS7000215")),
        "{unauthenticated:?}"
    );
    // And the log does say what was sent.
    assert!(log.contains("authorization: Bearer <redacted>"), "{log}");
    assert!(log.contains("PUT https://127.0.0.1:"), "{log}");
    assert!(log.contains("listClusterUserCredential"), "{log}");
    assert!(log.contains("→ 403"), "{log}");
}
