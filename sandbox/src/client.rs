//! For programs outside the sandbox (wiform's `sandbox` command and its `--sandbox` sessions):
//! the files of a state directory, a running sandbox's admin API, and the sign-in a client
//! needs — without reaching into the state file's model, which stays the sandbox's own.
//!
//! A state directory holds:
//! - [`STATE_FILE`], the state (owned by the sandbox that runs from the directory, replaced
//!   whole on every write, so a read sees one version);
//! - [`CA_FILE`], the CA certificate clients trust;
//! - [`ENDPOINT_FILE`], the base URL of the `wiform sandbox serve` that runs from it, while it
//!   runs ([`write_endpoint`], [`remove_endpoint`], [`Endpoint::read`]);
//! - [`ENV_FILE`], the environment a client needs to sign in, readable by its owner only
//!   ([`write_env_file`]).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::Running;
use crate::state::{ADMIN_CLIENT_ID, READER_CLIENT_ID, STATE_FORMAT, State, Store};

pub use crate::seed::{
    Added, Seed, SeedApplication, SeedCluster, SeedCredential, SeedGroup, SeedIdentity,
    SeedRoleAssignment,
};
pub use crate::state::StoreError;

/// The state file of a state directory.
pub const STATE_FILE: &str = "sandbox.json";
/// The CA certificate (PEM) of a state directory.
pub const CA_FILE: &str = "ca.pem";
/// Where `wiform sandbox serve` records its base URL while it runs.
pub const ENDPOINT_FILE: &str = "endpoint";
/// The environment a client `source`s to sign in to a running sandbox.
pub const ENV_FILE: &str = "sandbox.env";

/// A client's sign-in to the sandbox's tenant: the client-secret flow of Entra. The secret is
/// never shown (no `Display`, redacted in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct SignIn {
    pub tenant_id: String,
    /// The sandbox's subscription (it emulates one).
    pub subscription_id: String,
    pub client_id: String,
    pub client_secret: String,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("tenant_id", &self.tenant_id)
            .field("subscription_id", &self.subscription_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// Why a state holds no usable sign-in for the sandbox's Owner client.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("{0}")]
    Read(#[source] std::io::Error),
    #[error("not a wiform sandbox state: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("not a wiform sandbox state (format {0:?})")]
    Format(String),
    #[error("it has no admin client {ADMIN_CLIENT_ID}")]
    NoAdminClient,
    #[error("it has no subscription")]
    NoSubscription,
}

/// The secret of the client `client_id`, if the state has that client.
fn secret_of(state: &State, client_id: &str) -> Option<String> {
    state
        .clients
        .iter()
        .find(|c| c.client_id == client_id)
        .map(|c| c.secret.clone())
}

/// The Owner client's sign-in to a sandbox running in this process.
pub fn admin_sign_in(running: &Running) -> Result<SignIn, SignInError> {
    let (tenant_id, subscription, secret) = running.app.store.read(|s| {
        (
            s.tenant_id.clone(),
            s.subscriptions.first().cloned(),
            secret_of(s, ADMIN_CLIENT_ID),
        )
    });
    let subscription_id = subscription.ok_or(SignInError::NoSubscription)?;
    let client_secret = secret.ok_or(SignInError::NoAdminClient)?;
    Ok(SignIn {
        tenant_id,
        subscription_id,
        client_id: ADMIN_CLIENT_ID.to_string(),
        client_secret,
    })
}

/// The state file's fields a sign-in needs (read-only: the running sandbox owns the file and
/// replaces it atomically, so a read sees a whole version).
#[derive(Deserialize)]
struct StateFile {
    format: String,
    tenant_id: String,
    subscriptions: Vec<String>,
    #[serde(default)]
    clients: Vec<crate::state::ClientSecret>,
}

/// The Owner client's sign-in, read from the state file of `state_dir` (that of a sandbox
/// running elsewhere: the file is only read).
pub fn read_admin_sign_in(state_dir: &Path) -> Result<SignIn, SignInError> {
    let bytes = std::fs::read(state_dir.join(STATE_FILE)).map_err(SignInError::Read)?;
    let state: StateFile = serde_json::from_slice(&bytes).map_err(SignInError::Parse)?;
    if state.format != STATE_FORMAT {
        return Err(SignInError::Format(state.format));
    }
    let client_secret = state
        .clients
        .iter()
        .find(|c| c.client_id == ADMIN_CLIENT_ID)
        .map(|c| c.secret.clone())
        .ok_or(SignInError::NoAdminClient)?;
    let subscription_id = state
        .subscriptions
        .first()
        .cloned()
        .ok_or(SignInError::NoSubscription)?;
    Ok(SignIn {
        tenant_id: state.tenant_id,
        subscription_id,
        client_id: ADMIN_CLIENT_ID.to_string(),
        client_secret,
    })
}

/// The tenant a sandbox running in this process emulates.
pub fn tenant_id(running: &Running) -> String {
    running.app.tenant_id()
}

/// Writes `path` (the state directory's [`ENV_FILE`]), readable by its owner only since it
/// holds secrets: the environment that points Azure clients at `running` and signs them in as
/// its Owner client, and the Reader-only client's id and secret.
pub fn write_env_file(path: &Path, running: &Running) -> std::io::Result<()> {
    let (tenant, subscription, secret, reader_secret) = running.app.store.read(|s| {
        (
            s.tenant_id.clone(),
            s.subscriptions.first().cloned().unwrap_or_default(),
            secret_of(s, ADMIN_CLIENT_ID).unwrap_or_default(),
            secret_of(s, READER_CLIENT_ID).unwrap_or_default(),
        )
    });
    let ca = path.with_file_name(CA_FILE);
    let base = running.base_url();
    let text = format!(
        "# wiform sandbox at {base}: `source` this file to point Azure clients at it.\n\
         export AZURE_TENANT_ID={tenant}\n\
         export AZURE_SUBSCRIPTION_ID={subscription}\n\
         export AZURE_CLIENT_ID={ADMIN_CLIENT_ID}\n\
         export AZURE_CLIENT_SECRET={secret}\n\
         export AZURE_AUTHORITY_HOST={base}\n\
         export WIFORM_SANDBOX_URL={base}\n\
         export SSL_CERT_FILE={ca}\n\
         export REQUESTS_CA_BUNDLE={ca}\n\
         export CURL_CA_BUNDLE={ca}\n\
         # A client with Reader only: `wiform drift --sandbox --auth environment` signs in as it\n\
         # when AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are set to these.\n\
         export WIFORM_SANDBOX_READER_CLIENT_ID={READER_CLIENT_ID}\n\
         export WIFORM_SANDBOX_READER_CLIENT_SECRET={reader_secret}\n",
        ca = ca.display()
    );
    write_private(path, &text)
}

/// Writes a file only its owner can read (the directory must exist).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// Records in `state_dir` that `running` serves from it ([`ENDPOINT_FILE`]).
pub fn write_endpoint(state_dir: &Path, running: &Running) -> std::io::Result<()> {
    std::fs::write(state_dir.join(ENDPOINT_FILE), running.base_url())
}

/// Removes the record [`write_endpoint`] made.
pub fn remove_endpoint(state_dir: &Path) -> std::io::Result<()> {
    std::fs::remove_file(state_dir.join(ENDPOINT_FILE))
}

/// Where a `wiform sandbox serve` says it runs from a state directory, and the CA to trust.
/// Whether something answers there is for [`SandboxClient::healthy`] to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The base URL, as recorded (without surrounding whitespace).
    pub url: String,
    /// The CA certificate, PEM.
    pub ca_pem: String,
}

impl Endpoint {
    /// The endpoint recorded in `state_dir`, when it has both an [`ENDPOINT_FILE`] and a
    /// [`CA_FILE`].
    pub fn read(state_dir: &Path) -> Option<Endpoint> {
        let url = std::fs::read_to_string(state_dir.join(ENDPOINT_FILE)).ok()?;
        let ca_pem = std::fs::read_to_string(state_dir.join(CA_FILE)).ok()?;
        Some(Endpoint {
            url: url.trim().to_string(),
            ca_pem,
        })
    }
}

/// Why the admin API did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No answer (or an answer cut short).
    #[error("{0}")]
    Unreachable(#[source] reqwest::Error),
    /// An answer other than success, and its body.
    #[error("{status}: {body}")]
    Refused {
        status: reqwest::StatusCode,
        body: String,
    },
}

/// A running sandbox's admin API (`/_sandbox/…`: health, reset, seed, the standalone cluster's
/// kubeconfig), over HTTPS trusting the sandbox's CA.
#[derive(Debug, Clone)]
pub struct SandboxClient {
    base_url: String,
    http: reqwest::Client,
}

impl SandboxClient {
    /// A client for the sandbox at `base_url` whose certificate `ca_pem` signs; every request
    /// ends after `timeout`. `None` when the CA certificate is not usable.
    pub fn new(base_url: &str, ca_pem: &str, timeout: Duration) -> Option<SandboxClient> {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).ok()?)
            .timeout(timeout)
            .build()
            .ok()?;
        Some(SandboxClient {
            base_url: base_url.to_string(),
            http,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn url(&self, path: &str) -> String {
        format!("{}/_sandbox/{path}", self.base_url)
    }

    /// Whether the sandbox answers its health check.
    pub async fn healthy(&self) -> bool {
        self.http
            .get(self.url("health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Empties the sandbox's tenant (its clients and their secrets stay).
    pub async fn reset(&self) -> Result<(), AdminError> {
        self.post(self.http.post(self.url("reset"))).await?;
        Ok(())
    }

    /// Adds the seed's objects; the answer is the JSON count of what was added.
    pub async fn seed(&self, seed: &Seed) -> Result<String, AdminError> {
        self.post(self.http.post(self.url("seed")).json(seed)).await
    }

    /// A kubeconfig (YAML, admin token) for the sandbox's standalone cluster.
    pub async fn kubeconfig(&self) -> Result<String, AdminError> {
        let response = self
            .http
            .get(self.url("kubeconfig"))
            .send()
            .await
            .map_err(AdminError::Unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(AdminError::Unreachable)?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(AdminError::Refused { status, body })
        }
    }

    /// Sends a change; the body of the answer (empty when it cannot be read).
    async fn post(&self, request: reqwest::RequestBuilder) -> Result<String, AdminError> {
        let response = request.send().await.map_err(AdminError::Unreachable)?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(body)
        } else {
            Err(AdminError::Refused { status, body })
        }
    }
}

/// Reads a seed file's text (`.json` by `name`, else TOML).
pub fn parse_seed(name: &str, text: &str) -> Result<Seed, String> {
    crate::seed::parse(name, text)
}

/// Empties the tenant in the state file at `path` (no sandbox may be running from it), keeping
/// its clients and their secrets. A missing file becomes a new tenant.
pub fn reset_state_file(path: &Path) -> Result<(), StoreError> {
    let store = Store::open(path)?;
    let fresh = store.read(|s| s.reset());
    store.replace(fresh)
}

/// Why [`seed_state_file`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The seed does not fit the state (e.g. an identity in a resource group it lacks).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Adds the seed's objects to the state file at `path` (no sandbox may be running from it; a
/// missing file becomes a new tenant). Seeded AKS clusters get issuer URLs of a sandbox
/// serving on the default port.
pub fn seed_state_file(path: &Path, seed: &Seed) -> Result<Added, SeedError> {
    let store = Store::open(path)?;
    store.write(|s| {
        crate::seed::apply(s, seed, crate::seed::DEFAULT_BASE_URL).map_err(SeedError::Invalid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;

    async fn running(dir: &Path) -> Running {
        crate::start(Options {
            state_dir: Some(dir.to_path_buf()),
            ..Options::default()
        })
        .await
        .expect("the sandbox starts")
    }

    #[tokio::test]
    async fn the_admin_sign_in_is_the_same_in_process_and_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let running = running(dir.path()).await;
        let here = admin_sign_in(&running).unwrap();
        assert_eq!(here.client_id, ADMIN_CLIENT_ID);
        assert_eq!(here.tenant_id, tenant_id(&running));
        assert!(!here.client_secret.is_empty());
        running.stop().await;
        assert_eq!(read_admin_sign_in(dir.path()).unwrap(), here);
        assert!(!format!("{here:?}").contains(&here.client_secret));
    }

    #[test]
    fn a_state_file_without_a_usable_sign_in_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let reason = |text: Option<&str>| {
            if let Some(text) = text {
                std::fs::write(dir.path().join(STATE_FILE), text).unwrap();
            }
            read_admin_sign_in(dir.path()).unwrap_err().to_string()
        };
        assert!(reason(None).contains("No such file"), "{}", reason(None));
        assert!(reason(Some("[1]")).starts_with("not a wiform sandbox state: "));
        assert_eq!(
            reason(Some(
                r#"{"format":"other","tenant_id":"t","subscriptions":[]}"#
            )),
            "not a wiform sandbox state (format \"other\")"
        );
        assert_eq!(
            reason(Some(&format!(
                r#"{{"format":"{STATE_FORMAT}","tenant_id":"t","subscriptions":["s"]}}"#
            ))),
            format!("it has no admin client {ADMIN_CLIENT_ID}")
        );
        assert_eq!(
            reason(Some(&format!(
                r#"{{"format":"{STATE_FORMAT}","tenant_id":"t","subscriptions":[],"clients":[{{"client_id":"{ADMIN_CLIENT_ID}","secret":"x","display_name":"admin"}}]}}"#
            ))),
            "it has no subscription"
        );
    }

    #[tokio::test]
    async fn the_env_file_is_private_and_signs_in_as_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let running = running(dir.path()).await;
        let path = dir.path().join(ENV_FILE);
        write_env_file(&path, &running).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let sign_in = admin_sign_in(&running).unwrap();
        for line in [
            format!("export AZURE_TENANT_ID={}", sign_in.tenant_id),
            format!("export AZURE_SUBSCRIPTION_ID={}", sign_in.subscription_id),
            format!("export AZURE_CLIENT_ID={ADMIN_CLIENT_ID}"),
            format!("export AZURE_CLIENT_SECRET={}", sign_in.client_secret),
            format!("export AZURE_AUTHORITY_HOST={}", running.base_url()),
            format!(
                "export SSL_CERT_FILE={}",
                dir.path().join(CA_FILE).display()
            ),
            format!("export WIFORM_SANDBOX_READER_CLIENT_ID={READER_CLIENT_ID}"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        running.stop().await;
    }

    #[tokio::test]
    async fn the_admin_api_answers_through_the_recorded_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Endpoint::read(dir.path()), None);
        let running = running(dir.path()).await;
        write_endpoint(dir.path(), &running).unwrap();
        let endpoint = Endpoint::read(dir.path()).unwrap();
        assert_eq!(endpoint.url, running.base_url());
        let client =
            SandboxClient::new(&endpoint.url, &endpoint.ca_pem, Duration::from_secs(10)).unwrap();
        assert!(client.healthy().await);

        let seed = parse_seed(
            "seed.toml",
            "[[resource_groups]]\nname = \"rg-a\"\n[[managed_clusters]]\nresource_group = \"rg-a\"\nname = \"aks\"\n",
        )
        .unwrap();
        let added: serde_json::Value =
            serde_json::from_str(&client.seed(&seed).await.unwrap()).unwrap();
        assert_eq!(added["resource_groups"], 1);
        assert_eq!(added["managed_clusters"], 1);
        assert_eq!(running.app.store.read(|s| s.resource_groups.len()), 1);
        assert!(client.kubeconfig().await.unwrap().contains("kind: Config"));
        client.reset().await.unwrap();
        assert_eq!(running.app.store.read(|s| s.resource_groups.len()), 0);

        let invalid = parse_seed(
            "seed.json",
            r#"{"identities":[{"resource_group":"missing","name":"id"}]}"#,
        )
        .unwrap();
        match client.seed(&invalid).await {
            Err(AdminError::Refused { status, body }) => {
                assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
                assert!(body.contains("resource group missing"), "{body}");
            }
            other => panic!("refused, not {other:?}"),
        }

        remove_endpoint(dir.path()).unwrap();
        assert_eq!(Endpoint::read(dir.path()), None);
        running.stop().await;
        assert!(!client.healthy().await, "nothing answers once it stopped");
        assert!(matches!(
            client.reset().await,
            Err(AdminError::Unreachable(_))
        ));
    }

    #[test]
    fn a_state_file_is_seeded_and_reset_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        let seed = parse_seed(
            "seed.toml",
            "[[resource_groups]]\nname = \"rg-a\"\n[[identities]]\nresource_group = \"rg-a\"\nname = \"id\"\n",
        )
        .unwrap();
        let added = seed_state_file(&path, &seed).unwrap();
        assert_eq!((added.resource_groups, added.identities), (1, 1));
        let sign_in = read_admin_sign_in(dir.path()).unwrap();
        let state = Store::open(&path).unwrap().read(|s| s.clone());
        assert_eq!(state.identities.len(), 1);

        let invalid = parse_seed(
            "seed.toml",
            "[[identities]]\nresource_group = \"nope\"\nname = \"x\"\n",
        )
        .unwrap();
        match seed_state_file(&path, &invalid) {
            Err(SeedError::Invalid(e)) => assert!(e.contains("resource group nope"), "{e}"),
            other => panic!("invalid, not {other:?}"),
        }

        reset_state_file(&path).unwrap();
        let state = Store::open(&path).unwrap().read(|s| s.clone());
        assert!(state.identities.is_empty() && state.resource_groups.is_empty());
        assert_eq!(
            read_admin_sign_in(dir.path()).unwrap(),
            sign_in,
            "the secrets stay valid"
        );

        std::fs::write(&path, "[1, 2, 3]").unwrap();
        let error = reset_state_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("is not a wiform sandbox state file"),
            "{error}"
        );
        assert!(matches!(
            seed_state_file(&path, &seed),
            Err(SeedError::Store(_))
        ));
    }
}
