//! Who wiform is when it calls ARM and Microsoft Graph: an Entra token credential picked from
//! the environment, pointed at the cloud's authority host and trusting the sandbox's CA.
//!
//! azure_identity 1.0 has no `DefaultAzureCredential`, so the chain is here. `--auth auto` tries,
//! in order: a client secret or certificate from `AZURE_*` variables, workload identity (a
//! federated token file), managed identity, the Azure CLI. Candidates whose variables are absent
//! are skipped when the chain is built; the others are tried on the first `get_token`, and the
//! first that returns a token is kept for the rest of the run.
//!
//! Tokens are cached per scope by the azure_identity credentials themselves (`TokenCache`,
//! refreshed 5 minutes before expiry), so the chain keeps one instance of each. The Azure CLI
//! credential does not cache (every call runs `az`), so it gets the same cache here.
//!
//! Secrets, assertions and tokens are never logged, displayed or shown by `Debug`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{
    AccessToken, Secret, SecretBytes, TokenCredential, TokenRequestOptions,
};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertionCredentialOptions,
    ClientCertificateCredential, ClientCertificateCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, Executor, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use tracing::{debug, warn};

use super::cloud::Endpoints;
use crate::error::Explain;

const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
const AZURE_CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
const AZURE_CLIENT_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
const MSI_ENDPOINT: &str = "MSI_ENDPOINT";

/// How a missing tenant is named: the variable, or the config key it falls back to.
const TENANT_SOURCES: &str = "AZURE_TENANT_ID (or [azure].tenant_id)";

/// What to do when no credential works.
const HINT: &str = "set AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or AZURE_CLIENT_CERTIFICATE_PATH), \
                    or AZURE_FEDERATED_TOKEN_FILE with AZURE_CLIENT_ID, or run `az login`, \
                    or use --sandbox";

/// The Azure Instance Metadata Service token endpoint. Without a `Metadata: true` header it
/// answers 400 ("Azure Instance Metadata Service", error handling), which tells it apart from
/// the metadata services of other clouds and from proxies on the same address (see
/// [`is_azure_imds`]).
const IMDS_TOKEN_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// How long the chain waits for IMDS to answer: off Azure nothing answers, and azure_identity's
/// IMDS credential retries for up to 72 s.
const IMDS_PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// azure_identity's refresh margin, reused for the Azure CLI's tokens.
const REFRESH_MARGIN_S: i64 = 300;

/// Which credential to use; `Auto` = the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Auto,
    Environment,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 5] = [
        AuthMethod::Auto,
        AuthMethod::Environment,
        AuthMethod::WorkloadIdentity,
        AuthMethod::ManagedIdentity,
        AuthMethod::AzureCli,
    ];

    /// The `--auth` value.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Auto => "auto",
            AuthMethod::Environment => "environment",
            AuthMethod::WorkloadIdentity => "workload-identity",
            AuthMethod::ManagedIdentity => "managed-identity",
            AuthMethod::AzureCli => "azure-cli",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AuthMethod {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        AuthMethod::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| {
                let names: Vec<&str> = AuthMethod::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown auth method `{text}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// A snapshot of the environment variables the credentials read, so that tests do not touch the
/// process environment. Empty values count as unset, as the Azure SDKs treat them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_certificate_path: Option<String>,
    pub client_certificate_password: Option<String>,
    pub federated_token_file: Option<String>,
    /// App Service, Azure Arc, Service Fabric managed identity endpoint.
    pub identity_endpoint: Option<String>,
    /// Cloud Shell, Azure ML managed identity endpoint.
    pub msi_endpoint: Option<String>,
    /// `PATH`: where the Azure CLI is looked for, and the `PATH` it runs with.
    pub path: Option<OsString>,
}

impl Environment {
    pub fn from_process() -> Self {
        let mut env = Self::from_lookup(|name| std::env::var(name).ok());
        env.path = std::env::var_os("PATH").filter(|p| !p.is_empty());
        env
    }

    /// The variables as `lookup` gives them (`PATH` is left unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Environment {
            tenant_id: var(AZURE_TENANT_ID),
            client_id: var(AZURE_CLIENT_ID),
            client_secret: var(AZURE_CLIENT_SECRET),
            client_certificate_path: var(AZURE_CLIENT_CERTIFICATE_PATH),
            client_certificate_password: var(AZURE_CLIENT_CERTIFICATE_PASSWORD),
            federated_token_file: var(AZURE_FEDERATED_TOKEN_FILE),
            identity_endpoint: var(IDENTITY_ENDPOINT),
            msi_endpoint: var(MSI_ENDPOINT),
            path: None,
        }
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |value: &Option<String>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("Environment")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &redacted(&self.client_secret))
            .field("client_certificate_path", &self.client_certificate_path)
            .field(
                "client_certificate_password",
                &redacted(&self.client_certificate_password),
            )
            .field("federated_token_file", &self.federated_token_file)
            .field("identity_endpoint", &self.identity_endpoint)
            .field("msi_endpoint", &self.msi_endpoint)
            .field("path", &self.path)
            .finish()
    }
}

/// Everything [`credential`] needs.
#[derive(Debug, Clone)]
pub struct CredentialSettings {
    pub method: AuthMethod,
    /// `[azure].tenant_id` of identity.toml; `AZURE_TENANT_ID` wins when set.
    pub tenant_id: String,
    /// The authority host, and the extra CA to trust (the sandbox's).
    pub endpoints: Endpoints,
    pub env: Environment,
}

impl CredentialSettings {
    /// The tenant to authenticate in: `AZURE_TENANT_ID`, else the configured one.
    fn tenant(&self) -> Option<&str> {
        [self.env.tenant_id.as_deref(), Some(self.tenant_id.as_str())]
            .into_iter()
            .flatten()
            .map(str::trim)
            .find(|t| !t.is_empty())
    }
}

/// One credential the chain can try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    ClientSecret,
    ClientCertificate,
    WorkloadIdentity,
    ManagedIdentity,
    AzureCli,
}

impl Source {
    /// The chain's order.
    const CHAIN: [Source; 5] = [
        Source::ClientSecret,
        Source::ClientCertificate,
        Source::WorkloadIdentity,
        Source::ManagedIdentity,
        Source::AzureCli,
    ];
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::ClientSecret => "environment (client secret)",
            Source::ClientCertificate => "environment (client certificate)",
            Source::WorkloadIdentity => "workload identity",
            Source::ManagedIdentity => "managed identity",
            Source::AzureCli => "Azure CLI",
        })
    }
}

/// What became of one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not tried: what it needs is not there.
    Skipped(String),
    /// Tried, and it did not produce a token.
    Failed(String),
}

/// One candidate and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub source: Source,
    pub outcome: Outcome,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, why) = match &self.outcome {
            Outcome::Skipped(why) => ("skipped", why),
            Outcome::Failed(why) => ("failed", why),
        };
        // azure_identity's messages span lines (a troubleshooting link): keep them indented.
        let why = why.trim().replace('\n', "\n      ");
        write!(f, "{}: {what}: {why}", self.source)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// An explicitly chosen method lacks the variables it needs.
    #[error(
        "--auth {method} needs {} (not set); set {}, or choose another --auth (`auto` tries each)",
        missing.join(", "),
        if missing.len() == 1 { "it" } else { "them" }
    )]
    MissingEnvironment {
        method: AuthMethod,
        missing: Vec<String>,
    },
    /// `--auth azure-cli` without `az` on `PATH`.
    #[error(
        "--auth azure-cli: `az` was not found on PATH; install the Azure CLI and run `az login`, \
         or choose another --auth"
    )]
    AzureCliNotFound,
    /// azure_identity refused to build the credential (a bad tenant id, an unreadable token file
    /// or certificate).
    #[error("cannot set up the {credential} credential: {message}")]
    Setup { credential: Source, message: String },
    #[error("cannot build the HTTP client for Entra: {0}")]
    HttpClient(String),
    /// No candidate produced a token (also the error inside the chain's `azure_core::Error`).
    #[error("{}", no_credential_worked(attempts))]
    NoCredentialWorked { attempts: Vec<Attempt> },
}

/// Each message already says what to do (the variables to set, `az login`, another `--auth`),
/// in its own words: there is no separate hint.
impl Explain for CredentialError {
    fn message(&self) -> String {
        self.to_string()
    }

    fn hint(&self) -> Option<String> {
        None
    }
}

fn no_credential_worked(attempts: &[Attempt]) -> String {
    let mut text = String::from("no credential produced a token; tried, in order:");
    for attempt in attempts {
        text.push_str("\n  - ");
        text.push_str(&attempt.to_string());
    }
    text.push_str("\nTo authenticate: ");
    text.push_str(HINT);
    text
}

/// Builds the credential `settings.method` names. Nothing is asked of Entra yet: explicit
/// methods fail here only when their variables are missing or their files unreadable, and the
/// chain tries its candidates on the first `get_token`.
pub fn credential(
    settings: &CredentialSettings,
) -> Result<Arc<dyn TokenCredential>, CredentialError> {
    let az_found = find_on_path("az", settings.env.path.as_deref()).is_some();
    let http = HttpClients::new(settings.endpoints.extra_ca_pem.as_deref())?;
    if let Some(source) = named_source(settings, az_found)? {
        let candidate =
            build(source, settings, &http, false).map_err(|message| CredentialError::Setup {
                credential: source,
                message,
            })?;
        debug!("using credential: {}", candidate.describe());
        return Ok(candidate.credential);
    }
    let steps: Vec<ChainStep> = auto_plan(settings, az_found)
        .into_iter()
        .map(|step| match step {
            Step::Skip(attempt) => ChainStep::NotUsable(attempt),
            Step::Use(source) => match build(source, settings, &http, true) {
                Ok(candidate) => ChainStep::Ready(candidate),
                Err(message) => {
                    debug!("credential {source} cannot be set up: {message}");
                    ChainStep::NotUsable(Attempt {
                        source,
                        outcome: Outcome::Failed(message),
                    })
                }
            },
        })
        .collect();
    if !steps.iter().any(|s| matches!(s, ChainStep::Ready(_))) {
        let attempts = steps
            .into_iter()
            .filter_map(|s| match s {
                ChainStep::NotUsable(attempt) => Some(attempt),
                ChainStep::Ready(_) => None,
            })
            .collect();
        return Err(CredentialError::NoCredentialWorked { attempts });
    }
    Ok(Arc::new(Chain {
        steps,
        chosen: OnceLock::new(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Which candidates: decided from the environment alone.

/// One step of the plan: a credential to build, or one skipped and why.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Use(Source),
    Skip(Attempt),
}

/// The variables `source` needs that are not set.
fn missing_for(source: Source, settings: &CredentialSettings) -> Vec<String> {
    let env = &settings.env;
    let mut missing = Vec::new();
    let mut need = |present: bool, name: &str| {
        if !present {
            missing.push(name.to_string());
        }
    };
    match source {
        Source::ClientSecret => {
            need(env.client_id.is_some(), AZURE_CLIENT_ID);
            need(env.client_secret.is_some(), AZURE_CLIENT_SECRET);
        }
        Source::ClientCertificate => {
            need(env.client_id.is_some(), AZURE_CLIENT_ID);
            need(
                env.client_certificate_path.is_some(),
                AZURE_CLIENT_CERTIFICATE_PATH,
            );
        }
        Source::WorkloadIdentity => {
            need(env.client_id.is_some(), AZURE_CLIENT_ID);
            need(
                env.federated_token_file.is_some(),
                AZURE_FEDERATED_TOKEN_FILE,
            );
        }
        Source::ManagedIdentity | Source::AzureCli => {}
    }
    // Only worth mentioning once the credential's own variables are there.
    if missing.is_empty()
        && matches!(
            source,
            Source::ClientSecret | Source::ClientCertificate | Source::WorkloadIdentity
        )
        && settings.tenant().is_none()
    {
        missing.push(TENANT_SOURCES.to_string());
    }
    missing
}

/// The one credential `--auth` names (`None` for `auto`: the chain), or what it lacks.
fn named_source(
    settings: &CredentialSettings,
    az_found: bool,
) -> Result<Option<Source>, CredentialError> {
    let env = &settings.env;
    let missing_error = |missing: Vec<String>| CredentialError::MissingEnvironment {
        method: settings.method,
        missing,
    };
    let complete = |source: Source| {
        let missing = missing_for(source, settings);
        if missing.is_empty() {
            Ok(Some(source))
        } else {
            Err(missing_error(missing))
        }
    };
    match settings.method {
        AuthMethod::Environment if env.client_secret.is_some() => complete(Source::ClientSecret),
        AuthMethod::Environment if env.client_certificate_path.is_some() => {
            complete(Source::ClientCertificate)
        }
        AuthMethod::Environment => {
            let mut missing = Vec::new();
            if env.client_id.is_none() {
                missing.push(AZURE_CLIENT_ID.to_string());
            }
            missing.push(format!(
                "{AZURE_CLIENT_SECRET} or {AZURE_CLIENT_CERTIFICATE_PATH}"
            ));
            Err(missing_error(missing))
        }
        AuthMethod::WorkloadIdentity => complete(Source::WorkloadIdentity),
        AuthMethod::ManagedIdentity => Ok(Some(Source::ManagedIdentity)),
        AuthMethod::AzureCli if az_found => Ok(Some(Source::AzureCli)),
        AuthMethod::AzureCli => Err(CredentialError::AzureCliNotFound),
        AuthMethod::Auto => Ok(None),
    }
}

/// The chain, in order: each candidate to build, or skipped and why.
fn auto_plan(settings: &CredentialSettings, az_found: bool) -> Vec<Step> {
    let env = &settings.env;
    Source::CHAIN
        .into_iter()
        .map(|source| {
            let skip = |why: String| {
                Step::Skip(Attempt {
                    source,
                    outcome: Outcome::Skipped(why),
                })
            };
            match source {
                // One environment credential at most, the secret first (as EnvironmentCredential
                // does in the other Azure SDKs).
                Source::ClientCertificate
                    if env.client_secret.is_some() && env.client_id.is_some() =>
                {
                    skip(format!("{AZURE_CLIENT_SECRET} is set and is used instead"))
                }
                Source::AzureCli if !az_found => skip("`az` not found on PATH".into()),
                _ => {
                    let missing = missing_for(source, settings);
                    if missing.is_empty() {
                        Step::Use(source)
                    } else {
                        skip(format!("{} not set", missing.join(", ")))
                    }
                }
            }
        })
        .collect()
}

/// The first `name` in the directories of `path`.
fn find_on_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let names: &[&str] = if cfg!(windows) {
        &["az.cmd", "az.exe", "az.bat"]
    } else {
        &[name]
    };
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

// ---------------------------------------------------------------------------------------------
// Building the azure_identity credentials.

/// The HTTP clients the credentials send their requests with, shared by all of them.
struct HttpClients {
    /// Entra: trusts the extra CA (the sandbox's) besides the system roots.
    entra: Transport,
    /// Managed identity endpoints: plain http on a link-local or local address, never through a
    /// proxy.
    local: reqwest::Client,
}

impl HttpClients {
    fn new(extra_ca_pem: Option<&str>) -> Result<Self, CredentialError> {
        // The same limits as azure_core's own reqwest client; redirects off as it does.
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(20))
                .read_timeout(Duration::from_secs(60))
                .redirect(reqwest::redirect::Policy::none())
        };
        let mut entra = builder();
        if let Some(pem) = extra_ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|e| CredentialError::HttpClient(format!("the extra CA: {e}")))?;
            entra = entra.tls_certs_merge(certificates);
        }
        let entra = entra
            .build()
            .map_err(|e| CredentialError::HttpClient(e.to_string()))?;
        let local = builder()
            .no_proxy()
            .build()
            .map_err(|e| CredentialError::HttpClient(e.to_string()))?;
        Ok(HttpClients {
            entra: Transport::new(Arc::new(entra)),
            local,
        })
    }

    /// Options for a credential that asks Entra at the cloud's authority host.
    fn entra_options(&self, endpoints: &Endpoints) -> ClientOptions {
        // `CustomConfiguration` is non-exhaustive: no struct literal outside azure_core.
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = endpoints.authority.as_str().to_string();
        ClientOptions {
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            transport: Some(self.entra.clone()),
            ..ClientOptions::default()
        }
    }

    fn local_options(&self) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.local.clone()))),
            ..ClientOptions::default()
        }
    }
}

/// A built credential and what the chain needs to know about it.
struct Candidate {
    source: Source,
    client_id: Option<String>,
    credential: Arc<dyn TokenCredential>,
    /// Managed identity with no endpoint in the environment: only IMDS could answer, so the
    /// chain asks it first whether it is there at all.
    imds_probe: Option<ImdsProbe>,
}

impl Candidate {
    fn describe(&self) -> String {
        match &self.client_id {
            Some(id) => format!("{} for client {id}", self.source),
            None => self.source.to_string(),
        }
    }
}

/// Builds `source` from `settings`; the error says why it cannot be.
fn build(
    source: Source,
    settings: &CredentialSettings,
    http: &HttpClients,
    in_chain: bool,
) -> Result<Candidate, String> {
    let env = &settings.env;
    let tenant = settings.tenant().map(str::to_string);
    let required = |value: &Option<String>| {
        value
            .clone()
            .ok_or_else(|| "planned without its variables".to_string())
    };
    let describe_error = |e: azure_core::Error| e.to_string();
    let (client_id, credential): (Option<String>, Arc<dyn TokenCredential>) = match source {
        Source::ClientSecret => {
            let client_id = required(&env.client_id)?;
            let credential = ClientSecretCredential::new(
                &required(&tenant)?,
                client_id.clone(),
                Secret::new(required(&env.client_secret)?),
                Some(ClientSecretCredentialOptions {
                    client_options: http.entra_options(&settings.endpoints),
                }),
            )
            .map_err(describe_error)?;
            (Some(client_id), credential)
        }
        Source::ClientCertificate => {
            let client_id = required(&env.client_id)?;
            let path = required(&env.client_certificate_path)?;
            let (pkcs12, password) =
                load_certificate(Path::new(&path), env.client_certificate_password.as_deref())?;
            let credential = ClientCertificateCredential::new(
                required(&tenant)?,
                client_id.clone(),
                pkcs12,
                Some(ClientCertificateCredentialOptions {
                    client_options: http.entra_options(&settings.endpoints),
                    password,
                }),
            )
            .map_err(|e| format!("certificate {path}: {e}"))?;
            (Some(client_id), credential)
        }
        Source::WorkloadIdentity => {
            let client_id = required(&env.client_id)?;
            // Everything passed explicitly: azure_identity would otherwise read the process
            // environment, not the snapshot.
            let credential =
                WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                    credential_options: ClientAssertionCredentialOptions {
                        client_options: http.entra_options(&settings.endpoints),
                    },
                    client_id: Some(client_id.clone()),
                    tenant_id: Some(required(&tenant)?),
                    token_file_path: Some(PathBuf::from(required(&env.federated_token_file)?)),
                }))
                .map_err(describe_error)?;
            (Some(client_id), credential)
        }
        Source::ManagedIdentity => {
            // AZURE_CLIENT_ID names a user-assigned identity, as in the other Azure SDKs.
            let credential =
                ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                    user_assigned_id: env.client_id.clone().map(UserAssignedId::ClientId),
                    client_options: http.local_options(),
                }))
                .map_err(describe_error)?;
            (env.client_id.clone(), credential)
        }
        Source::AzureCli => {
            let credential = AzureCliCredential::new(Some(AzureCliCredentialOptions {
                tenant_id: tenant,
                executor: Some(Arc::new(PathExecutor {
                    path: env.path.clone().unwrap_or_default(),
                })),
                ..Default::default()
            }))
            .map_err(describe_error)?;
            let cached: Arc<dyn TokenCredential> = Arc::new(Cached::new(credential));
            (None, cached)
        }
    };
    // An explicit `--auth managed-identity` waits as long as azure_identity does; only the
    // chain probes, and only when no endpoint variable says where the identity is.
    let no_endpoint = env.identity_endpoint.is_none() && env.msi_endpoint.is_none();
    let imds_probe =
        (source == Source::ManagedIdentity && in_chain && no_endpoint).then(|| ImdsProbe {
            client: http.local.clone(),
            answer: tokio::sync::OnceCell::new(),
        });
    Ok(Candidate {
        source,
        client_id,
        credential,
        imds_probe,
    })
}

/// The certificate as PKCS#12 DER (what azure_identity reads) and the password to open it.
/// A PEM file (certificate and private key in one file, the key optionally encrypted with the
/// password) is converted in memory.
fn load_certificate(
    path: &Path,
    password: Option<&str>,
) -> Result<(SecretBytes, Option<Secret>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let der = pkcs12_from_pem(&bytes, password)
            .map_err(|e| format!("PEM certificate {}: {e}", path.display()))?;
        Ok((SecretBytes::new(der), None))
    } else {
        let password = password.map(|p| Secret::new(p.to_string()));
        Ok((SecretBytes::new(bytes), password))
    }
}

/// A PKCS#12 bundle (no password) of the PEM's private key, the certificate that matches it, and
/// the other certificates as its chain.
fn pkcs12_from_pem(pem: &[u8], password: Option<&str>) -> Result<Vec<u8>, String> {
    use openssl::pkcs12::Pkcs12;
    use openssl::pkey::PKey;
    use openssl::stack::Stack;
    use openssl::x509::X509;

    let key = match password {
        Some(p) => PKey::private_key_from_pem_passphrase(pem, p.as_bytes()),
        None => PKey::private_key_from_pem(pem),
    }
    .map_err(|_| {
        "no readable private key (it must be in the same file; if it is encrypted, set \
         AZURE_CLIENT_CERTIFICATE_PASSWORD)"
            .to_string()
    })?;
    let certificates = X509::stack_from_pem(pem).map_err(|e| format!("bad certificate: {e}"))?;
    let (mut leaf, chain): (Vec<X509>, Vec<X509>) = certificates.into_iter().partition(|c| {
        c.public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false)
    });
    let Some(leaf) = leaf.pop() else {
        return Err("no certificate in the file matches its private key".into());
    };
    let openssl_error = |e: openssl::error::ErrorStack| format!("cannot convert to PKCS#12: {e}");
    let mut builder = Pkcs12::builder();
    builder.pkey(&key).cert(&leaf);
    if !chain.is_empty() {
        let mut stack = Stack::new().map_err(openssl_error)?;
        for certificate in chain {
            stack.push(certificate).map_err(openssl_error)?;
        }
        builder.ca(stack);
    }
    builder
        .build2("")
        .and_then(|p| p.to_der())
        .map_err(openssl_error)
}

/// Runs the Azure CLI with the snapshot's `PATH`, so that the `az` found when the chain was
/// planned is the one that runs (and an environment without it finds none).
#[derive(Debug)]
struct PathExecutor {
    path: OsString,
}

#[async_trait::async_trait]
impl Executor for PathExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> io::Result<Output> {
        tokio::process::Command::new(program)
            .args(args)
            .env("PATH", &self.path)
            .kill_on_drop(true)
            .output()
            .await
    }
}

/// Per-scope token cache for a credential without one (the Azure CLI's), refreshed as
/// azure_identity refreshes: 5 minutes before expiry.
struct Cached {
    inner: Arc<dyn TokenCredential>,
    tokens: tokio::sync::Mutex<HashMap<Vec<String>, AccessToken>>,
}

impl Cached {
    fn new(inner: Arc<dyn TokenCredential>) -> Self {
        Cached {
            inner,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }
}

impl fmt::Debug for Cached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for Cached {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let key: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        // Held across the fetch: concurrent callers wait for one `az` run.
        let mut tokens = self.tokens.lock().await;
        let fresh_until = azure_core::time::OffsetDateTime::now_utc()
            + azure_core::time::Duration::seconds(REFRESH_MARGIN_S);
        if let Some(token) = tokens.get(&key).filter(|t| t.expires_on > fresh_until) {
            return Ok(token.clone());
        }
        let token = self.inner.get_token(scopes, options).await?;
        tokens.insert(key, token.clone());
        Ok(token)
    }
}

/// Whether IMDS answers at all, asked once with a short timeout.
struct ImdsProbe {
    client: reqwest::Client,
    answer: tokio::sync::OnceCell<Result<(), String>>,
}

impl ImdsProbe {
    async fn check(&self) -> Result<(), String> {
        self.answer
            .get_or_init(|| async {
                let unset = format!("{IDENTITY_ENDPOINT} and {MSI_ENDPOINT} not set, and");
                let request = self.client.get(IMDS_TOKEN_URL).send();
                match tokio::time::timeout(IMDS_PROBE_TIMEOUT, request).await {
                    Ok(Ok(answer)) if is_azure_imds(&answer) => Ok(()),
                    Ok(Ok(answer)) => Err(format!(
                        "{unset} 169.254.169.254 answered HTTP {} where Azure's IMDS answers \
                         400: not an Azure VM",
                        answer.status().as_u16()
                    )),
                    Ok(Err(_)) => Err(format!(
                        "{unset} IMDS (169.254.169.254) is unreachable: not an Azure VM"
                    )),
                    Err(_) => Err(format!(
                        "{unset} IMDS (169.254.169.254) did not answer within {} s: not an \
                         Azure VM (on one, use --auth managed-identity)",
                        IMDS_PROBE_TIMEOUT.as_secs_f32()
                    )),
                }
            })
            .await
            .clone()
    }
}

/// Azure's IMDS refuses a request without `Metadata: true` with 400, and names itself in
/// `Server: IMDS/…` (the probe MSAL.NET's `ImdsCredentialProbeManager` does the same way).
fn is_azure_imds(answer: &reqwest::Response) -> bool {
    let server = answer
        .headers()
        .get(reqwest::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    answer.status() == reqwest::StatusCode::BAD_REQUEST || server.starts_with("IMDS/")
}

// ---------------------------------------------------------------------------------------------
// The chain.

enum ChainStep {
    Ready(Candidate),
    NotUsable(Attempt),
}

/// Tries its candidates in order on the first `get_token` and keeps the first that works.
struct Chain {
    steps: Vec<ChainStep>,
    /// Index in `steps` of the candidate that produced a token.
    chosen: OnceLock<usize>,
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let candidates: Vec<String> = self
            .steps
            .iter()
            .filter_map(|s| match s {
                ChainStep::Ready(c) => Some(c.describe()),
                ChainStep::NotUsable(_) => None,
            })
            .collect();
        let chosen = self.chosen.get().and_then(|&i| match &self.steps[i] {
            ChainStep::Ready(c) => Some(c.describe()),
            ChainStep::NotUsable(_) => None,
        });
        f.debug_struct("Chain")
            .field("candidates", &candidates)
            .field("chosen", &chosen)
            .finish()
    }
}

#[async_trait::async_trait]
impl TokenCredential for Chain {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if let Some(&index) = self.chosen.get()
            && let ChainStep::Ready(candidate) = &self.steps[index]
        {
            return candidate.credential.get_token(scopes, options).await;
        }
        let mut attempts = Vec::with_capacity(self.steps.len());
        for (index, step) in self.steps.iter().enumerate() {
            let candidate = match step {
                ChainStep::Ready(candidate) => candidate,
                ChainStep::NotUsable(attempt) => {
                    attempts.push(attempt.clone());
                    continue;
                }
            };
            let failed = |why: String| Attempt {
                source: candidate.source,
                outcome: Outcome::Failed(why),
            };
            if let Some(probe) = &candidate.imds_probe
                && let Err(why) = probe.check().await
            {
                debug!("credential {}: {why}", candidate.source);
                attempts.push(failed(why));
                continue;
            }
            match candidate
                .credential
                .get_token(scopes, options.clone())
                .await
            {
                Ok(token) => {
                    if self.chosen.set(index).is_ok() {
                        debug!("using credential: {}", candidate.describe());
                        // Configured on purpose yet refused: say so rather than silently act as
                        // another identity.
                        for earlier in attempts.iter().filter(|a| {
                            matches!(a.outcome, Outcome::Failed(_))
                                && a.source != Source::ManagedIdentity
                        }) {
                            warn!("{earlier}; using {} instead", candidate.source);
                        }
                    }
                    return Ok(token);
                }
                Err(error) => {
                    debug!("credential {} failed: {error}", candidate.source);
                    attempts.push(failed(error.to_string()));
                }
            }
        }
        Err(azure_core::Error::new(
            ErrorKind::Credential,
            CredentialError::NoCredentialWorked { attempts },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const CLIENT: &str = "cccccccc-0000-4000-8000-000000000001";
    const SECRET: &str = "s3cr3t-value-that-must-not-leak";

    fn settings(method: AuthMethod, env: Environment) -> CredentialSettings {
        CredentialSettings {
            method,
            tenant_id: TENANT.into(),
            endpoints: Endpoints::custom(
                "https://arm.example.com",
                "https://graph.example.com",
                "https://login.example.com",
            )
            .unwrap(),
            env,
        }
    }

    fn env(vars: &[(&str, &str)]) -> Environment {
        Environment::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The plan as (source, used?) pairs, with the skip reasons.
    fn planned(env: Environment, az: bool) -> Vec<(Source, Result<(), String>)> {
        auto_plan(&settings(AuthMethod::Auto, env), az)
            .into_iter()
            .map(|step| match step {
                Step::Use(source) => (source, Ok(())),
                Step::Skip(Attempt {
                    source,
                    outcome: Outcome::Skipped(why),
                }) => (source, Err(why)),
                Step::Skip(other) => panic!("planning only skips: {other:?}"),
            })
            .collect()
    }

    fn used(plan: &[(Source, Result<(), String>)]) -> Vec<Source> {
        plan.iter()
            .filter(|(_, r)| r.is_ok())
            .map(|(s, _)| *s)
            .collect()
    }

    #[test]
    fn an_empty_environment_leaves_managed_identity_and_the_cli() {
        let plan = planned(Environment::default(), true);
        assert_eq!(plan.len(), 5);
        assert_eq!(used(&plan), [Source::ManagedIdentity, Source::AzureCli]);
        assert_eq!(
            plan[0].1,
            Err("AZURE_CLIENT_ID, AZURE_CLIENT_SECRET not set".into())
        );
        assert_eq!(
            plan[2].1,
            Err("AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE not set".into())
        );
        let without_az = planned(Environment::default(), false);
        assert_eq!(without_az[4].1, Err("`az` not found on PATH".into()));
    }

    #[test]
    fn a_secret_comes_first_and_shadows_a_certificate() {
        let plan = planned(
            env(&[
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_SECRET", SECRET),
                ("AZURE_CLIENT_CERTIFICATE_PATH", "/tmp/cert.pem"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ]),
            false,
        );
        assert_eq!(
            used(&plan),
            [
                Source::ClientSecret,
                Source::WorkloadIdentity,
                Source::ManagedIdentity
            ]
        );
        assert_eq!(
            plan[1].1,
            Err("AZURE_CLIENT_SECRET is set and is used instead".into())
        );
    }

    #[test]
    fn a_certificate_or_a_token_file_needs_a_client_id() {
        let plan = planned(
            env(&[
                ("AZURE_CLIENT_CERTIFICATE_PATH", "/tmp/cert.pem"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ]),
            false,
        );
        assert_eq!(used(&plan), [Source::ManagedIdentity]);
        assert_eq!(plan[1].1, Err("AZURE_CLIENT_ID not set".into()));
        assert_eq!(plan[2].1, Err("AZURE_CLIENT_ID not set".into()));
    }

    #[test]
    fn the_tenant_comes_from_the_environment_or_the_config() {
        let workload = [
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
        ];
        let mut no_tenant = settings(AuthMethod::WorkloadIdentity, env(&workload));
        no_tenant.tenant_id = String::new();
        let error = named_source(&no_tenant, false).unwrap_err();
        assert!(error.to_string().contains("AZURE_TENANT_ID"), "{error}");
        let mut from_env = workload.to_vec();
        from_env.push(("AZURE_TENANT_ID", "dddddddd-0000-4000-8000-000000000001"));
        no_tenant.env = env(&from_env);
        assert_eq!(
            named_source(&no_tenant, false).unwrap(),
            Some(Source::WorkloadIdentity)
        );
        assert_eq!(
            no_tenant.tenant(),
            Some("dddddddd-0000-4000-8000-000000000001")
        );
        let configured = settings(AuthMethod::Auto, env(&from_env));
        assert_eq!(
            configured.tenant(),
            Some("dddddddd-0000-4000-8000-000000000001"),
            "AZURE_TENANT_ID wins over the config"
        );
        assert_eq!(
            settings(AuthMethod::Auto, Environment::default()).tenant(),
            Some(TENANT)
        );
    }

    #[test]
    fn explicit_methods_name_what_they_miss() {
        let error = named_source(
            &settings(AuthMethod::Environment, Environment::default()),
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("--auth environment"), "{error}");
        assert!(
            error.contains("AZURE_CLIENT_ID, AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"),
            "{error}"
        );
        let error = named_source(
            &settings(
                AuthMethod::Environment,
                env(&[("AZURE_CLIENT_SECRET", SECRET)]),
            ),
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("needs AZURE_CLIENT_ID (not set)"), "{error}");
        assert!(!error.contains(SECRET));
        assert!(matches!(
            named_source(
                &settings(AuthMethod::AzureCli, Environment::default()),
                false
            ),
            Err(CredentialError::AzureCliNotFound)
        ));
        assert_eq!(
            named_source(
                &settings(AuthMethod::ManagedIdentity, Environment::default()),
                false
            )
            .unwrap(),
            Some(Source::ManagedIdentity)
        );
        assert_eq!(
            named_source(&settings(AuthMethod::Auto, Environment::default()), false).unwrap(),
            None
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = env(&[("AZURE_CLIENT_ID", CLIENT), ("AZURE_CLIENT_SECRET", "")]);
        assert_eq!(env.client_secret, None);
        assert_eq!(env.client_id.as_deref(), Some(CLIENT));
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let environment = env(&[
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", SECRET),
            ("AZURE_CLIENT_CERTIFICATE_PASSWORD", SECRET),
        ]);
        let shown = format!("{environment:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(
            shown.contains("<redacted>") && shown.contains(CLIENT),
            "{shown}"
        );
        let settings = settings(AuthMethod::Auto, environment);
        let shown = format!("{settings:?} {settings:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        let chain = credential(&settings).unwrap();
        let shown = format!("{chain:?} {chain:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(
            shown.contains("environment (client secret) for client"),
            "{shown}"
        );
        let explicit = credential(&CredentialSettings {
            method: AuthMethod::Environment,
            ..settings
        })
        .unwrap();
        assert!(!format!("{explicit:?}").contains(SECRET));
    }

    #[test]
    fn auth_methods_parse_from_their_names() {
        for method in AuthMethod::ALL {
            assert_eq!(method.name().parse::<AuthMethod>(), Ok(method));
        }
        assert_eq!("Azure-CLI".parse(), Ok(AuthMethod::AzureCli));
        assert!(
            "msi"
                .parse::<AuthMethod>()
                .unwrap_err()
                .contains("managed-identity")
        );
    }

    #[cfg(unix)]
    #[test]
    fn az_is_found_only_as_an_executable_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let az = dir.path().join("az");
        std::fs::write(&az, "#!/bin/sh\n").unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), dir.path()]).unwrap();
        assert_eq!(find_on_path("az", Some(&path)), None, "not executable");
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path("az", Some(&path)), Some(az));
        assert_eq!(find_on_path("az", None), None);
        assert_eq!(find_on_path("az", Some(OsStr::new(""))), None);
    }

    /// A self-signed RSA certificate and its key, as PEM.
    fn certificate_pem() -> (String, String) {
        use openssl::asn1::Asn1Time;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::rsa::Rsa;
        use openssl::x509::{X509, X509NameBuilder};

        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "wiform-test").unwrap();
        let name = name.build();
        let mut cert = X509::builder().unwrap();
        cert.set_version(2).unwrap();
        cert.set_subject_name(&name).unwrap();
        cert.set_issuer_name(&name).unwrap();
        cert.set_pubkey(&key).unwrap();
        cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        cert.sign(&key, MessageDigest::sha256()).unwrap();
        let cert = String::from_utf8(cert.build().to_pem().unwrap()).unwrap();
        let key = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        (cert, key)
    }

    #[test]
    fn a_pem_certificate_becomes_pkcs12_in_either_order() {
        let (cert, key) = certificate_pem();
        let (other_cert, _) = certificate_pem();
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in [
            ("cert-first.pem", format!("{cert}{key}")),
            ("key-first.pem", format!("{key}{cert}")),
            ("with-chain.pem", format!("{other_cert}{key}{cert}")),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let (pkcs12, password) = load_certificate(&path, None).unwrap();
            assert!(password.is_none());
            let parsed = openssl::pkcs12::Pkcs12::from_der(pkcs12.bytes())
                .unwrap()
                .parse2("")
                .unwrap();
            assert_eq!(
                parsed.cert.unwrap().to_pem().unwrap(),
                cert.as_bytes(),
                "{name}: the certificate that matches the key"
            );
            // And azure_identity accepts it.
            let env = env(&[
                ("AZURE_CLIENT_ID", CLIENT),
                ("AZURE_CLIENT_CERTIFICATE_PATH", path.to_str().unwrap()),
            ]);
            credential(&settings(AuthMethod::Environment, env)).unwrap();
        }
        let no_key = dir.path().join("no-key.pem");
        std::fs::write(&no_key, &cert).unwrap();
        let error = load_certificate(&no_key, None).unwrap_err();
        assert!(error.contains("private key"), "{error}");
        let mismatched = dir.path().join("mismatched.pem");
        std::fs::write(&mismatched, format!("{other_cert}{key}")).unwrap();
        let error = load_certificate(&mismatched, None).unwrap_err();
        assert!(error.contains("matches"), "{error}");
    }

    #[test]
    fn an_unreadable_certificate_fails_an_explicit_method_and_is_recorded_by_the_chain() {
        let env = env(&[
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/nonexistent/cert.pem"),
        ]);
        let error = credential(&settings(AuthMethod::Environment, env.clone())).unwrap_err();
        assert!(
            matches!(
                error,
                CredentialError::Setup {
                    credential: Source::ClientCertificate,
                    ..
                }
            ),
            "{error}"
        );
        assert!(
            error.to_string().contains("/nonexistent/cert.pem"),
            "{error}"
        );
        // The chain keeps going with what is left.
        credential(&settings(AuthMethod::Auto, env)).unwrap();
    }

    /// Counts its calls; each token expires in `lifetime_s`.
    #[derive(Debug)]
    struct Counting {
        calls: std::sync::atomic::AtomicUsize,
        lifetime_s: i64,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Counting {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(AccessToken::new(
                format!("{}-{n}", scopes.join(" ")),
                azure_core::time::OffsetDateTime::now_utc()
                    + azure_core::time::Duration::seconds(self.lifetime_s),
            ))
        }
    }

    #[tokio::test]
    async fn the_cli_cache_keeps_tokens_per_scope_until_near_expiry() {
        let long = Arc::new(Counting {
            calls: Default::default(),
            lifetime_s: 3600,
        });
        let cached = Cached::new(long.clone());
        for _ in 0..3 {
            cached.get_token(&["a/.default"], None).await.unwrap();
        }
        cached.get_token(&["b/.default"], None).await.unwrap();
        assert_eq!(long.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Expiring within the refresh margin: asked again each time.
        let short = Arc::new(Counting {
            calls: Default::default(),
            lifetime_s: 60,
        });
        let cached = Cached::new(short.clone());
        cached.get_token(&["a/.default"], None).await.unwrap();
        cached.get_token(&["a/.default"], None).await.unwrap();
        assert_eq!(short.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// Fails every time, counting.
    #[derive(Debug, Default)]
    struct Refusing {
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Refusing {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(azure_core::Error::with_message(
                ErrorKind::Credential,
                "refused",
            ))
        }
    }

    fn ready(source: Source, credential: Arc<dyn TokenCredential>) -> ChainStep {
        ChainStep::Ready(Candidate {
            source,
            client_id: None,
            credential,
            imds_probe: None,
        })
    }

    #[tokio::test]
    async fn the_chain_keeps_the_first_credential_that_works() {
        let refusing = Arc::new(Refusing::default());
        let working = Arc::new(Counting {
            calls: Default::default(),
            lifetime_s: 3600,
        });
        let chain = Chain {
            steps: vec![
                ChainStep::NotUsable(Attempt {
                    source: Source::ClientSecret,
                    outcome: Outcome::Skipped("AZURE_CLIENT_SECRET not set".into()),
                }),
                ready(Source::WorkloadIdentity, refusing.clone()),
                ready(Source::AzureCli, working.clone()),
            ],
            chosen: OnceLock::new(),
        };
        for scope in ["a/.default", "a/.default", "b/.default"] {
            chain.get_token(&[scope], None).await.unwrap();
        }
        assert_eq!(refusing.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(working.calls.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(format!("{chain:?}").contains("chosen: Some(\"Azure CLI\")"));

        // All refusing: every candidate is in the error, in order.
        let chain = Chain {
            steps: vec![
                ready(Source::ClientSecret, refusing.clone()),
                ready(Source::ManagedIdentity, refusing.clone()),
            ],
            chosen: OnceLock::new(),
        };
        let error = chain.get_token(&["a/.default"], None).await.unwrap_err();
        let Some(CredentialError::NoCredentialWorked { attempts }) = error.downcast_ref() else {
            panic!("{error:?}");
        };
        let sources: Vec<Source> = attempts.iter().map(|a| a.source).collect();
        assert_eq!(sources, [Source::ClientSecret, Source::ManagedIdentity]);
        assert!(
            attempts
                .iter()
                .all(|a| a.outcome == Outcome::Failed("refused".into()))
        );
    }

    #[test]
    fn attempts_read_as_a_list() {
        let error = CredentialError::NoCredentialWorked {
            attempts: vec![
                Attempt {
                    source: Source::ClientSecret,
                    outcome: Outcome::Skipped("AZURE_CLIENT_SECRET not set".into()),
                },
                Attempt {
                    source: Source::AzureCli,
                    outcome: Outcome::Failed("line one\nline two".into()),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            format!(
                "no credential produced a token; tried, in order:\n  \
                 - environment (client secret): skipped: AZURE_CLIENT_SECRET not set\n  \
                 - Azure CLI: failed: line one\n      line two\n\
                 To authenticate: {HINT}"
            )
        );
    }
}
