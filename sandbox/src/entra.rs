//! The Entra token endpoint and the OIDC metadata the Azure SDKs read from their authority host.
//!
//! Contracts (`MicrosoftDocs/entra-docs`): `docs/identity-platform/v2-oauth2-client-creds-grant-flow.md`
//! (client-credentials grant with a shared secret, "Basic" client authentication, a certificate
//! assertion, or a federated assertion; the success and error bodies),
//! `docs/identity-platform/reference-error-codes.md` (AADSTS codes and the `error` values),
//! `docs/workload-id/workload-identity-federation.md` and
//! `workload-identity-federation-considerations.md` (how an external assertion is matched, Entra
//! issuers refused with AADSTS700222, AADSTS70021 while a credential propagates). Messages of the
//! federation errors are the ones Entra sends, as seen in Azure/azure-workload-identity (#340, #605,
//! #1200, troubleshooting.md), Azure/login (#515), MicrosoftDocs/azure-docs (#97699),
//! external-secrets/external-secrets (#2783); the fact sheet (`azure-api.md` §7) lists them.
//!
//! The federated flow validates the assertion for real: parse the JWT, refuse Entra-issued ones,
//! match the issuer against the client's federated credentials *before* fetching anything (Entra
//! answers AADSTS700211 for issuers it cannot even reach, so it never fetches an untrusted one),
//! fetch `{iss}/.well-known/openid-configuration` and its `jwks_uri` over HTTPS (trusting the
//! sandbox CA and `Options::trusted_ca_files`), verify the signature (RS256/384/512, PS256/384/512,
//! ES256, ES384), `exp`/`nbf`, then the subject (case-sensitive) and the audience.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Value, json};

use crate::App;
use crate::auth::{ARM_AUDIENCES, Caller, GRAPH_AUDIENCES};
use crate::http::{ApiError, ApiResult, Request, json_response};
use crate::state::{State, now_ms, rfc3339};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// `expires_in` of the documented success body.
const TOKEN_LIFETIME_S: u64 = 3599;
/// The audience managed-identity-as-credential flows request; the sandbox issues it too.
const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
const WIF_DOC: &str = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";
/// Entra's own issuers ("Microsoft Entra issuers aren't supported", considerations doc), and
/// those of the national clouds.
const ENTRA_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "login.microsoftonline.us",
    "login.partner.microsoftonline.cn",
    "login.chinacloudapi.cn",
];
/// Largest discovery document or JWKS the sandbox reads.
const MAX_METADATA_BYTES: usize = 1 << 20;

fn oauth(status: StatusCode, error: &str, code: u32, description: impl Into<String>) -> ApiError {
    ApiError::oauth(status, error, code, description)
}

/// AADSTS900144: a required parameter is missing.
fn missing(name: &str) -> ApiError {
    oauth(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900_144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

fn invalid_client(code: u32, description: impl Into<String>) -> ApiError {
    oauth(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        code,
        description,
    )
}

/// AADSTS90061 / AADSTS50166: Entra could not read the issuer's discovery document or JWKS.
fn external_oidc_failed(code: u32) -> ApiError {
    oauth(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        code,
        "Request to External OIDC endpoint failed.",
    )
}

/// AADSTS50027: the assertion is not a JWT the service can read.
fn malformed() -> ApiError {
    oauth(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        50_027,
        "JWT token is invalid or malformed.",
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tenant {
    Ours,
    Common,
    Organizations,
    Consumers,
}

/// The tenant in the path: the sandbox's tenant GUID, or one of the multi-tenant aliases.
/// Anything else is AADSTS90002 (`error` is `invalid_tenant` on metadata, `invalid_request` on
/// the token endpoint).
fn tenant(app: &App, segment: &str, error: &str) -> Result<Tenant, ApiError> {
    if segment.eq_ignore_ascii_case(&app.tenant_id()) {
        return Ok(Tenant::Ours);
    }
    match segment.to_ascii_lowercase().as_str() {
        "common" => Ok(Tenant::Common),
        "organizations" => Ok(Tenant::Organizations),
        "consumers" => Ok(Tenant::Consumers),
        _ => Err(oauth(
            StatusCode::BAD_REQUEST,
            error,
            90_002,
            format!(
                "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )),
    }
}

/// AADSTS900561: the endpoint answers other methods with the methods it accepts.
fn only(request: &Request, method: Method) -> Result<(), ApiError> {
    if request.method == method {
        return Ok(());
    }
    Err(oauth(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900_561,
        format!(
            "The endpoint only accepts {method}, OPTIONS requests. Received a {} request.",
            request.method
        ),
    ))
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let lower: Vec<String> = request
        .segments
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let path: Vec<&str> = lower.iter().map(String::as_str).collect();
    match path.as_slice() {
        [_, "oauth2", "v2.0", "token"] => {
            let tenant = tenant(app, &request.segments[0], "invalid_request")?;
            only(&request, Method::POST)?;
            token(app, &request, tenant).await
        }
        [_, "v2.0", ".well-known", "openid-configuration"]
        | [_, ".well-known", "openid-configuration"] => {
            let tenant = tenant(app, &request.segments[0], "invalid_tenant")?;
            only(&request, Method::GET)?;
            Ok(json_response(
                StatusCode::OK,
                &openid_configuration(app, &request.segments[0], tenant),
            ))
        }
        [_, "discovery", "v2.0", "keys"] | [_, "discovery", "keys"] => {
            tenant(app, &request.segments[0], "invalid_tenant")?;
            only(&request, Method::GET)?;
            Ok(json_response(StatusCode::OK, &app.key.jwks()))
        }
        [_, "discovery", "instance"] => {
            tenant(app, &request.segments[0], "invalid_tenant")?;
            only(&request, Method::GET)?;
            instance_discovery(app, &request)
        }
        _ => Err(oauth(
            StatusCode::NOT_FOUND,
            "invalid_request",
            9_002_313,
            format!(
                "Request is malformed or invalid: there is no endpoint {} {}.",
                request.method,
                request.path()
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata.

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`: the shape Entra serves (the fields
/// MSAL and azure-identity read: issuer, authorization_endpoint, token_endpoint, jwks_uri, …),
/// pointing at the sandbox. For `common`/`organizations` the issuer carries the `{tenantid}`
/// placeholder, as Entra's does.
fn openid_configuration(app: &App, segment: &str, tenant: Tenant) -> Value {
    let base = &app.base_url;
    let t = if tenant == Tenant::Ours {
        app.tenant_id()
    } else {
        segment.to_ascii_lowercase()
    };
    let issuer = if tenant == Tenant::Ours {
        app.issuer()
    } else {
        format!("{base}/{{tenantid}}/v2.0")
    };
    let host = base.trim_start_matches("https://");
    json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        // The sandbox signs with its ES256 key (Entra's own keys are RS256).
        "id_token_signing_alg_values_supported": ["ES256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{t}/kerberos"),
        "tenant_region_scope": null,
        "cloud_instance_name": host,
        "cloud_graph_host_name": host,
        "msgraph_host": host,
        "rbac_url": base,
    })
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`: MSAL's instance
/// discovery ("Custom authority aliases", MicrosoftDocs/microsoft-authentication-library-dotnet;
/// `InstanceDiscoveryResponse` in MSAL.NET: `tenant_discovery_endpoint`, `metadata[]` with
/// `preferred_network`, `preferred_cache`, `aliases`). An authority on another host is
/// `invalid_instance` (AADSTS50049).
fn instance_discovery(app: &App, request: &Request) -> ApiResult {
    let Some(endpoint) = request.query("authorization_endpoint") else {
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50_050,
            "The request is malformed: the 'authorization_endpoint' parameter is missing.",
        ));
    };
    let ours = url::Url::parse(&app.base_url).ok();
    let port = ours.as_ref().and_then(url::Url::port_or_known_default);
    let parsed = url::Url::parse(endpoint).ok().filter(|u| {
        u.scheme() == "https"
            && matches!(u.host_str(), Some("127.0.0.1") | Some("localhost"))
            && u.port_or_known_default() == port
    });
    let Some(parsed) = parsed else {
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "invalid_instance",
            50_049,
            "Unknown or invalid instance.",
        ));
    };
    let tenant = parsed
        .path_segments()
        .and_then(|mut s| s.next())
        .filter(|s| !s.is_empty())
        .unwrap_or("common")
        .to_string();
    let port = port.unwrap_or(443);
    let host = format!("127.0.0.1:{port}");
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", app.base_url),
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": host,
                "preferred_cache": host,
                "aliases": [host, format!("localhost:{port}")],
            }],
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// The token endpoint.

/// `client_secret_basic`: `Authorization: Basic base64(urlencode(id):urlencode(secret))`
/// (RFC 6749 §2.3.1, which the client-credentials doc allows).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| crate::http::decode_segment(&s.replace('+', " "));
    Some((unescape(id), unescape(secret)))
}

fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The audience of the token a `scope` asks for: `{resource}/.default` of one resource
/// (AADSTS1002012 without `/.default`, AADSTS700022 for several resources, AADSTS500011 for a
/// resource the tenant does not have).
fn audience_of(scope: &str, tenant_id: &str) -> Result<String, ApiError> {
    const OIDC: &[&str] = &["openid", "profile", "offline_access", "email"];
    let scopes: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC.iter().any(|o| o.eq_ignore_ascii_case(s)))
        .collect();
    let mut resources: Vec<&str> = Vec::new();
    for s in &scopes {
        let Some(resource) = s.strip_suffix("/.default") else {
            return Err(oauth(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1_002_012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        };
        if !resources.iter().any(|r| r.eq_ignore_ascii_case(resource)) {
            resources.push(resource);
        }
    }
    let [resource] = resources.as_slice() else {
        return Err(if resources.is_empty() {
            missing("scope")
        } else {
            oauth(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                700_022,
                format!(
                    "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
                ),
            )
        });
    };
    let known = ARM_AUDIENCES
        .iter()
        .chain(GRAPH_AUDIENCES)
        .chain(std::iter::once(&TOKEN_EXCHANGE_AUDIENCE));
    let with_slash = format!("{resource}/");
    let mut canonical = None;
    for k in known {
        if k.eq_ignore_ascii_case(resource) {
            canonical = Some(k.to_string());
            break;
        }
        if canonical.is_none() && k.eq_ignore_ascii_case(&with_slash) {
            canonical = Some(k.to_string());
        }
    }
    canonical.ok_or_else(|| {
        oauth(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant_id}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    })
}

/// A client the tenant knows: a configured secret client, a managed identity, or an application.
fn client_known(state: &State, client_id: &str) -> bool {
    state
        .clients
        .iter()
        .any(|c| c.client_id.eq_ignore_ascii_case(client_id))
        || state
            .identities
            .values()
            .any(|i| i.client_id.eq_ignore_ascii_case(client_id))
        || state
            .applications
            .values()
            .any(|a| a.app_id.eq_ignore_ascii_case(client_id))
}

/// `POST /{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials` with a client secret or a
/// federated client assertion (v2-oauth2-client-creds-grant-flow.md, first and third case).
async fn token(app: &App, request: &Request, tenant: Tenant) -> ApiResult {
    match tenant {
        Tenant::Ours => {}
        Tenant::Common | Tenant::Consumers => {
            return Err(oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                9_001_023,
                "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
            ));
        }
        Tenant::Organizations => {
            return Err(oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50_059,
                "No tenant-identifying information found in either the request or implied by any provided credentials.",
            ));
        }
    }
    let tenant_id = app.tenant_id();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(grant_type) = param("grant_type") else {
        return Err(missing("grant_type"));
    };
    if grant_type != "client_credentials" {
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let basic = basic_credentials(&request.headers);
    let Some(client_id) = param("client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|(id, _)| id.clone()))
    else {
        return Err(missing("client_id"));
    };
    if uuid::Uuid::try_parse(&client_id).is_err() {
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_038,
            format!("{client_id} is not a valid application identifier."),
        ));
    }
    if param("resource").is_some() {
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            901_002,
            "The 'resource' request parameter is not supported.",
        ));
    }
    let Some(scope) = param("scope") else {
        return Err(missing("scope"));
    };
    let audience = audience_of(scope, &tenant_id)?;
    if !app.store.read(|s| client_known(s, &client_id)) {
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_id}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    let secret = param("client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|(_, secret)| secret).filter(|s| !s.is_empty()));
    match (secret, param("client_assertion")) {
        (Some(_), Some(_)) => {
            return Err(oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90_023,
                "The request is not valid: only one of 'client_secret' and 'client_assertion' may be presented.",
            ));
        }
        (None, None) => {
            return Err(invalid_client(
                7_000_218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        (Some(secret), None) => {
            let valid = app.store.read(|s| {
                s.clients.iter().any(|c| {
                    c.client_id.eq_ignore_ascii_case(&client_id) && same_secret(&c.secret, &secret)
                })
            });
            if !valid {
                return Err(invalid_client(
                    7_000_215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                ));
            }
        }
        (None, Some(assertion)) => {
            match param("client_assertion_type") {
                None => return Err(missing("client_assertion_type")),
                Some(JWT_BEARER) => {}
                Some(other) => {
                    return Err(oauth(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        90_023,
                        format!(
                            "The request is not valid: client_assertion_type '{other}' is not supported; use '{JWT_BEARER}'."
                        ),
                    ));
                }
            }
            check_assertion(app, &client_id, assertion).await?;
        }
    }
    let caller = app.store.read(|s| {
        s.principal_by_client_id(&client_id).map(|sp| Caller {
            object_id: sp.id.clone(),
            client_id: sp.app_id.clone(),
            tenant_id: s.tenant_id.clone(),
        })
    });
    let Some(caller) = caller else {
        return Err(invalid_client(
            7_000_229,
            format!(
                "The client application {client_id} is missing service principal in the tenant {tenant_id}. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119"
            ),
        ));
    };
    let access_token = app
        .key
        .mint(&app.issuer(), &caller, &audience, TOKEN_LIFETIME_S);
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
            "ext_expires_in": TOKEN_LIFETIME_S,
            "access_token": access_token,
        }),
    );
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// Federated assertions.

/// A client assertion, read before its signature is checked.
struct Assertion {
    alg: Algorithm,
    kid: Option<String>,
    /// `base64(header).base64(claims)`, what the signature covers.
    message: String,
    signature: String,
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
}

impl Assertion {
    fn parse(token: &str) -> Option<Assertion> {
        let mut parts = token.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || header.is_empty() || claims.is_empty() {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let payload = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
        let payload: Value = serde_json::from_slice(&payload).ok()?;
        let text = |name: &str| {
            payload
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let aud = match payload.get("aud")? {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?,
            _ => return None,
        };
        if aud.is_empty() {
            return None;
        }
        let message_len = token.len() - signature.len() - 1;
        Some(Assertion {
            alg: header.alg,
            kid: header.kid,
            message: token[..message_len].to_string(),
            signature: signature.to_string(),
            iss: text("iss")?,
            sub: text("sub")?,
            aud,
            exp: payload.get("exp")?.as_f64()?,
            nbf: payload.get("nbf").and_then(Value::as_f64),
            iat: payload.get("iat").and_then(Value::as_f64),
        })
    }

    fn audience(&self) -> String {
        self.aud.join(",")
    }
}

/// Issued by Entra itself (or by the sandbox, the Entra of this world): AADSTS700222.
fn entra_issued(app: &App, issuer: &str) -> bool {
    if let Some(path) = issuer.strip_prefix(&format!("{}/", app.base_url)) {
        // The issuers of the sandbox's emulated clusters (`/oidc/…`, `/k8s/…`) are not Entra's.
        return !(path.starts_with("oidc/") || path.starts_with("k8s/"));
    }
    if issuer == app.base_url {
        return true;
    }
    url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| {
            ENTRA_HOSTS
                .iter()
                .any(|h| host == *h || host.ends_with(&format!(".{h}")))
        })
}

/// Entra's time format in AADSTS700024: `2023-08-01T11:08:01.5274809Z`.
fn entra_time(seconds: f64) -> String {
    let seconds = seconds.clamp(0.0, 253_402_300_799.0);
    let full = rfc3339((seconds * 1000.0).round() as u64);
    full.replace('Z', "0000Z")
}

async fn fetch_json(app: &App, url: &str) -> Option<Value> {
    let url = url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "https")?;
    let response = app
        .http
        .get(url)
        // kube-apiserver serves its JWKS as application/jwk-set+json and answers 406 to a request
        // that accepts only application/json (seen against the real server in tests/kube).
        .header(
            header::ACCEPT,
            "application/json, application/jwk-set+json;q=0.9, */*;q=0.8",
        )
        .send()
        .await
        .ok()?;
    if !response.status().is_success()
        || response
            .content_length()
            .is_some_and(|l| l > MAX_METADATA_BYTES as u64)
    {
        return None;
    }
    let bytes = response.bytes().await.ok()?;
    if bytes.len() > MAX_METADATA_BYTES {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// OIDC Discovery 1.0 §4: `{issuer without its trailing /}/.well-known/openid-configuration`,
/// then its `jwks_uri` (both over HTTPS, as Entra requires).
async fn issuer_keys(app: &App, issuer: &str) -> Result<Vec<Value>, ApiError> {
    let discovery = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let Some(document) = fetch_json(app, &discovery).await else {
        return Err(external_oidc_failed(90_061));
    };
    let Some(jwks_uri) = document.get("jwks_uri").and_then(Value::as_str) else {
        return Err(external_oidc_failed(90_061));
    };
    let Some(jwks) = fetch_json(app, jwks_uri).await else {
        return Err(external_oidc_failed(50_166));
    };
    match jwks.get("keys").and_then(Value::as_array) {
        Some(keys) => Ok(keys.clone()),
        None => Err(external_oidc_failed(50_166)),
    }
}

fn decoding_key(jwk: &Value, alg: Algorithm) -> Option<DecodingKey> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    match (field("kty")?, alg) {
        (
            "RSA",
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => DecodingKey::from_rsa_components(field("n")?, field("e")?).ok(),
        ("EC", Algorithm::ES256) if field("crv") == Some("P-256") => {
            DecodingKey::from_ec_components(field("x")?, field("y")?).ok()
        }
        ("EC", Algorithm::ES384) if field("crv") == Some("P-384") => {
            DecodingKey::from_ec_components(field("x")?, field("y")?).ok()
        }
        _ => None,
    }
}

/// The signature against the issuer's keys: the `kid` must be published (AADSTS7000272, "The
/// certificate with identifier … used to sign the federated credential could not be found in the
/// metadata of identity provider"), and the signature must verify with it (AADSTS700027, "Client
/// assertion failed signature validation", reference-error-codes.md).
fn verify_signature(assertion: &Assertion, keys: &[Value]) -> Result<(), ApiError> {
    let candidates: Vec<&Value> = match &assertion.kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
            .collect(),
        None => keys.iter().collect(),
    };
    if let Some(kid) = &assertion.kid
        && candidates.is_empty()
    {
        return Err(invalid_client(
            7_000_272,
            format!(
                "The certificate with identifier '{kid}' used to sign the federated credential could not be found in the metadata of identity provider '{}'.",
                assertion.iss
            ),
        ));
    }
    let verified = candidates.iter().any(|jwk| {
        decoding_key(jwk, assertion.alg).is_some_and(|key| {
            jsonwebtoken::crypto::verify(
                &assertion.signature,
                assertion.message.as_bytes(),
                &key,
                assertion.alg,
            )
            .unwrap_or(false)
        })
    });
    if verified {
        Ok(())
    } else {
        Err(invalid_client(
            700_027,
            "Client assertion failed signature validation.",
        ))
    }
}

async fn check_assertion(app: &App, client_id: &str, token: &str) -> Result<(), ApiError> {
    let Some(assertion) = Assertion::parse(token) else {
        return Err(malformed());
    };
    if entra_issued(app, &assertion.iss) {
        return Err(invalid_client(
            700_222,
            "AAD-issued tokens may not be used for federated identity flows.",
        ));
    }
    let credentials = app
        .store
        .read(|s| {
            s.federated_credentials_of_client(
                client_id,
                crate::state::now_ms(),
                app.faults().replication_delay_ms,
            )
        })
        .unwrap_or_default();
    if credentials.is_empty() {
        // What Entra answers while a credential has not reached it yet (considerations doc).
        return Err(oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            70_021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: '{}'. Assertion Audience: '{}'. {WIF_DOC}",
                assertion.iss,
                assertion.sub,
                assertion.audience()
            ),
        ));
    }
    // Issuer: exact (a missing or extra trailing slash does not match).
    let trusted: Vec<(String, String, Vec<String>)> = credentials
        .into_iter()
        .filter(|(issuer, _, _)| *issuer == assertion.iss)
        .collect();
    if trusted.is_empty() {
        return Err(invalid_client(
            700_211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {WIF_DOC}",
                assertion.iss
            ),
        ));
    }
    let keys = issuer_keys(app, &assertion.iss).await?;
    verify_signature(&assertion, &keys)?;
    let now = (now_ms() / 1000) as f64;
    let not_before = assertion.nbf.unwrap_or(f64::MIN);
    if assertion.exp <= now || not_before > now {
        return Err(invalid_client(
            700_024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials .",
                entra_time(now),
                entra_time(assertion.nbf.or(assertion.iat).unwrap_or(0.0)),
                entra_time(assertion.exp)
            ),
        ));
    }
    // Subject: case-sensitive since the 2024 Entra change; a case-only difference has its own code.
    let matching: Vec<&(String, String, Vec<String>)> = trusted
        .iter()
        .filter(|(_, subject, _)| *subject == assertion.sub)
        .collect();
    if matching.is_empty() {
        if trusted
            .iter()
            .any(|(_, subject, _)| subject.to_lowercase() == assertion.sub.to_lowercase())
        {
            return Err(invalid_client(
                7_002_138,
                format!(
                    "No matching federated identity record found for presented assertion subject '{}'. The subject matches with case-insensitive comparison, but not with case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. See documentation at: {WIF_DOC}. See breaking change notification and remediation at: https://learn.microsoft.com/en-us/entra/identity-platform/reference-breaking-changes#august-2024.",
                    assertion.sub
                ),
            ));
        }
        return Err(invalid_client(
            700_213,
            format!(
                "No matching federated identity record found for presented assertion subject '{}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. {WIF_DOC}",
                assertion.sub
            ),
        ));
    }
    let audience_matches = matching
        .iter()
        .any(|(_, _, audiences)| audiences.iter().any(|a| assertion.aud.contains(a)));
    if !audience_matches {
        // AADSTS700212 is the fact sheet's code (unverified; logs also show 7002121).
        return Err(invalid_client(
            700_212,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. {WIF_DOC}",
                assertion.audience()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_map_to_the_audiences_the_apis_accept() {
        let t = "t";
        assert_eq!(
            audience_of("https://management.azure.com/.default", t).unwrap(),
            "https://management.azure.com"
        );
        assert_eq!(
            audience_of("https://management.azure.com//.default", t).unwrap(),
            "https://management.azure.com/"
        );
        assert_eq!(
            audience_of("https://management.core.windows.net/.default", t).unwrap(),
            "https://management.core.windows.net/"
        );
        assert_eq!(
            audience_of("https://graph.microsoft.com/.default openid", t).unwrap(),
            "https://graph.microsoft.com"
        );
        assert_eq!(
            audience_of("https://graph.microsoft.com/User.Read", t)
                .unwrap_err()
                .code(),
            "AADSTS1002012"
        );
        assert_eq!(
            audience_of(
                "https://graph.microsoft.com/.default https://management.azure.com/.default",
                t
            )
            .unwrap_err()
            .code(),
            "AADSTS700022"
        );
        assert_eq!(
            audience_of("https://vault.example/.default", t)
                .unwrap_err()
                .code(),
            "AADSTS500011"
        );
        assert_eq!(audience_of("openid", t).unwrap_err().code(), "AADSTS900144");
    }

    #[test]
    fn garbage_assertions_do_not_parse() {
        for token in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "..",
            "eyJhbGciOiJub25lIn0.e30.",
            "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.sig",
            // {"alg":"RS256"} . {"iss":"x","sub":"y","aud":[],"exp":1}
            "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4Iiwic3ViIjoieSIsImF1ZCI6W10sImV4cCI6MX0.sig",
        ] {
            assert!(Assertion::parse(token).is_none(), "{token}");
        }
        // {"alg":"RS256","kid":"k"} . {"iss":"x","sub":"y","aud":"z","exp":1}
        let ok = Assertion::parse(
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJ4Iiwic3ViIjoieSIsImF1ZCI6InoiLCJleHAiOjF9.c2ln",
        )
        .unwrap();
        assert_eq!(
            (ok.iss.as_str(), ok.sub.as_str(), ok.aud.clone(), ok.kid),
            ("x", "y", vec!["z".to_string()], Some("k".to_string()))
        );
    }

    #[test]
    fn times_look_like_entras() {
        assert_eq!(
            entra_time(1_690_888_081.527),
            "2023-08-01T11:08:01.5270000Z"
        );
    }

    #[test]
    fn basic_credentials_are_url_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%3Aid:s%2Bcret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("my:id".to_string(), "s+cret".to_string()))
        );
    }
}
