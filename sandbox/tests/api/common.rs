//! Test helpers: a sandbox per test, a client that trusts its CA, and tokens.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use wiform_sandbox::auth::Caller;
use wiform_sandbox::state::{ADMIN_CLIENT_ID, DEFAULT_SUBSCRIPTION, READER_CLIENT_ID};
use wiform_sandbox::{Faults, Options, Running};

pub const SUB: &str = DEFAULT_SUBSCRIPTION;
pub const MSI: &str = "2024-11-30";
pub const RG_API: &str = "2021-04-01";
#[allow(dead_code)] // used by the authorization tests
pub const AUTHZ_API: &str = "2022-04-01";
#[allow(dead_code)] // used by the AKS tests
pub const AKS_API: &str = "2025-10-01";

pub struct Sandbox {
    pub running: Running,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub reader_token: String,
}

/// A fresh in-memory sandbox with default options (faults off, small pages).
pub async fn sandbox() -> Sandbox {
    sandbox_with(Options {
        page_size: 5,
        fic_write_ms: 50,
        ..Options::default()
    })
    .await
}

pub async fn sandbox_with_faults(faults: Faults) -> Sandbox {
    sandbox_with(Options {
        page_size: 5,
        faults,
        ..Options::default()
    })
    .await
}

pub async fn sandbox_with(options: Options) -> Sandbox {
    let running = wiform_sandbox::start(options)
        .await
        .expect("sandbox starts");
    let client = client_for(running.ca_pem());
    let admin_token = token_for(&running, ADMIN_CLIENT_ID, "https://management.azure.com");
    let reader_token = token_for(&running, READER_CLIENT_ID, "https://management.azure.com");
    Sandbox {
        running,
        client,
        admin_token,
        reader_token,
    }
}

pub fn client_for(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// An access token minted with the sandbox's key, as its token endpoint would issue it.
pub fn token_for(running: &Running, client_id: &str, audience: &str) -> String {
    let app = &running.app;
    let caller = app.store.read(|s| {
        let sp = s.principal_by_client_id(client_id).expect("known client");
        Caller {
            object_id: sp.id.clone(),
            client_id: client_id.into(),
            tenant_id: s.tenant_id.clone(),
        }
    });
    app.key.mint(&app.issuer(), &caller, audience, 3600)
}

/// An answer: status, headers, and the body as JSON (Null when empty or not JSON).
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Sandbox {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.running.base_url(), path)
    }

    /// A request with the admin's ARM token.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call_as(&self.admin_token, method, path, body).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        let url = if path.starts_with("https://") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut request = self.client.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a resource group (expects success).
    pub async fn resource_group(&self, name: &str) {
        let answer = self
            .put(
                &format!("/subscriptions/{SUB}/resourceGroups/{name}?api-version={RG_API}"),
                serde_json::json!({"location": "westeurope"}),
            )
            .await;
        assert!(answer.status.is_success(), "{}", answer.body);
    }

    /// Creates a managed identity (expects success) and returns its body.
    pub async fn identity(&self, rg: &str, name: &str) -> Value {
        let answer = self
            .put(
                &identity_path(rg, name),
                serde_json::json!({"location": "westeurope"}),
            )
            .await;
        assert!(answer.status.is_success(), "{}", answer.body);
        answer.body
    }

    /// Follows `nextLink` until the end; returns every item.
    pub async fn list_all(&self, path: &str) -> (Vec<Value>, usize) {
        let mut items = Vec::new();
        let mut pages = 0;
        let mut next = Some(path.to_string());
        while let Some(url) = next {
            let answer = self.get(&url).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            pages += 1;
            items.extend(answer.body["value"].as_array().cloned().unwrap_or_default());
            next = answer.body["nextLink"]
                .as_str()
                .or(answer.body["@odata.nextLink"].as_str())
                .map(String::from);
        }
        (items, pages)
    }
}

pub fn identity_path(rg: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}?api-version={MSI}"
    )
}

pub fn fic_path(rg: &str, identity: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity}/federatedIdentityCredentials/{name}?api-version={MSI}"
    )
}

pub fn fic_body(issuer: &str, subject: &str) -> Value {
    serde_json::json!({"properties": {"issuer": issuer, "subject": subject, "audiences": ["api://AzureADTokenExchange"]}})
}

/// Every field of `example` (a spec example body) is in `actual` with the same JSON type
/// (arrays: the first element; `null` in the example matches anything).
pub fn assert_shape(actual: &Value, example: &Value, path: &str) {
    match (example, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let field = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} is missing in {actual}"));
                assert_shape(field, v, &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let (Some(e), Some(a)) = (e.first(), a.first()) {
                assert_shape(a, e, &format!("{path}[0]"));
            }
        }
        (Value::Null, _) => {}
        (e, a) => assert_eq!(
            std::mem::discriminant(e),
            std::mem::discriminant(a),
            "{path}: expected the type of {e}, got {a}"
        ),
    }
}

/// Sends a request and reads the answer (the body as JSON, Null when empty or not JSON).
pub async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("request is answered");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}
