//! A sandbox started by the test, the `wiform` binary run against it as users run it
//! (`--sandbox --sandbox-dir DIR`, connecting through `{DIR}/endpoint` as it does to
//! `wiform sandbox serve`), hand-made changes through the emulated ARM and Kubernetes
//! APIs, and the normalisation of run-dependent values before snapshots.

#[path = "../support/served_sandbox.rs"]
mod served_sandbox;
pub use served_sandbox::Sandbox;

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Method;
use serde_json::Value;
use wiform_sandbox::auth::Caller;
use wiform_sandbox::kube::ClusterAccess;
use wiform_sandbox::log::Entry;
use wiform_sandbox::state::{ADMIN_CLIENT_ID, DEFAULT_SUBSCRIPTION, DEFAULT_TENANT};

pub const SUB: &str = DEFAULT_SUBSCRIPTION;
pub const MSI_API: &str = "2024-11-30";
pub const AUTHZ_API: &str = "2022-04-01";

/// Ids the tests write by hand: fixed, so snapshots show them as they are.
pub const HAND_MADE_CLIENT_ID: &str = "00000000-0000-4000-8000-0000000000ff";
pub const HAND_MADE_ASSIGNMENT: &str = "dddddddd-0000-4000-8000-0000000000aa";

/// The warning `--sandbox` prints when it could not connect and started a sandbox of its own
/// on another port: the test's setup would be wrong.
const FALLBACK_WARNING: &str = "is not free";

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/NAME/identity.toml`, relative to the repository root (where commands run).
pub fn example(name: &str) -> String {
    format!("examples/{name}/identity.toml")
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Exit code and both streams, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl Sandbox {
    /// Runs `wiform --color never ARGS` in `cwd`. Fails the test when the binary started a
    /// sandbox of its own instead of connecting to this one.
    pub fn wiform_in(&self, cwd: &Path, args: &[&str]) -> Run {
        self.wiform_with_env(cwd, args, &[])
    }

    /// [`Sandbox::wiform_in`] with these environment variables set.
    pub fn wiform_with_env(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = assert_cmd::Command::cargo_bin("wiform")
            .expect("the wiform binary")
            .arg("--color")
            .arg("never")
            .args(args)
            .current_dir(cwd)
            .env_remove("NO_COLOR")
            .env_remove("COLUMNS")
            .env_remove("WIFORM_LOG")
            .env_remove("RUST_LOG")
            // After the removals above, so that a test may set one of them.
            .envs(env.iter().copied())
            .output()
            .expect("wiform runs");
        let run = Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert!(
            !run.stderr.contains(FALLBACK_WARNING),
            "wiform started a sandbox of its own instead of using the test's:\n{}",
            run.transcript()
        );
        run
    }

    fn sandbox_args<'a>(&'a self, command: &'a str, file: &'a str) -> Vec<&'a str> {
        let dir = self.dir().to_str().expect("a UTF-8 temporary path");
        vec![command, "--sandbox", "--sandbox-dir", dir, "-f", file]
    }

    /// `wiform plan --sandbox --sandbox-dir DIR -f FILE EXTRA…` from `cwd`.
    pub fn plan_in(&self, cwd: &Path, file: &str, extra: &[&str]) -> Run {
        let mut args = self.sandbox_args("plan", file);
        args.extend_from_slice(extra);
        self.wiform_in(cwd, &args)
    }

    /// [`Sandbox::plan_in`] from the repository root.
    pub fn plan(&self, file: &str, extra: &[&str]) -> Run {
        self.plan_in(root(), file, extra)
    }

    /// `wiform drift --sandbox --sandbox-dir DIR -f FILE EXTRA…` from the repository root.
    pub fn drift(&self, file: &str, extra: &[&str]) -> Run {
        let mut args = self.sandbox_args("drift", file);
        args.extend_from_slice(extra);
        self.wiform_in(root(), &args)
    }

    /// `wiform verify --sandbox --sandbox-dir DIR -f FILE EXTRA…` from the repository root.
    pub fn verify(&self, file: &str, extra: &[&str]) -> Run {
        let mut args = self.sandbox_args("verify", file);
        args.extend_from_slice(extra);
        self.wiform_in(root(), &args)
    }

    /// [`Sandbox::drift`] signed in as the sandbox's Reader-only client (`--auth environment`).
    pub fn drift_as_reader(&self, file: &str) -> Run {
        let secret = self.read(|s| {
            s.clients
                .iter()
                .find(|c| c.client_id == wiform_sandbox::state::READER_CLIENT_ID)
                .map(|c| c.secret.clone())
                .expect("the Reader client")
        });
        let tenant = self.read(|s| s.tenant_id.clone());
        let mut args = self.sandbox_args("drift", file);
        args.extend_from_slice(&["--auth", "environment"]);
        self.wiform_with_env(
            root(),
            &args,
            &[
                ("AZURE_CLIENT_ID", wiform_sandbox::state::READER_CLIENT_ID),
                ("AZURE_CLIENT_SECRET", &secret),
                ("AZURE_TENANT_ID", &tenant),
            ],
        )
    }

    /// `wiform apply --sandbox --sandbox-dir DIR --auto-approve -f FILE` from `cwd`; it must
    /// succeed.
    pub fn apply_in(&self, cwd: &Path, file: &str) -> Run {
        let mut args = self.sandbox_args("apply", file);
        args.push("--auto-approve");
        let run = self.wiform_in(cwd, &args);
        assert_eq!(run.code, 0, "apply failed:\n{}", run.transcript());
        assert!(
            run.stderr.contains("Apply complete!") || run.stdout.contains("Apply complete!"),
            "{}",
            run.transcript()
        );
        run
    }

    pub fn apply(&self, file: &str) -> Run {
        self.apply_in(root(), file)
    }

    /// A token of the sandbox's Owner client for `audience`, as its token endpoint issues it.
    fn token(&self, audience: &str) -> String {
        let app = self.app();
        let caller = app.store.read(|s| {
            let sp = s
                .principal_by_client_id(ADMIN_CLIENT_ID)
                .expect("the admin client");
            Caller {
                object_id: sp.id.clone(),
                client_id: ADMIN_CLIENT_ID.into(),
                tenant_id: s.tenant_id.clone(),
            }
        });
        app.key.mint(&app.issuer(), &caller, audience, 3600)
    }

    fn send(
        &self,
        token: Option<String>,
        method: Method,
        url: String,
        content_type: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        self.runtime.block_on(async {
            let mut request = self.http.request(method, url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body {
                request = request.header("Content-Type", content_type).body(body);
            }
            let response = request.send().await.expect("the sandbox answers");
            let status = response.status().as_u16();
            let bytes = response.bytes().await.unwrap_or_default();
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        })
    }

    /// An ARM request as the Owner client (`path` from `/subscriptions/…`, with its
    /// api-version); the status and the body.
    pub fn arm(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            Some(self.token("https://management.azure.com")),
            method,
            format!("{}{path}", self.base_url()),
            "application/json",
            body.map(|b| b.to_string()),
        )
    }

    /// A Microsoft Graph request as the sandbox's Owner (path from `/v1.0`).
    pub fn graph(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(
            Some(self.token("https://graph.microsoft.com")),
            method,
            format!("{}/v1.0{path}", self.base_url()),
            "application/json",
            body.map(|b| b.to_string()),
        )
    }

    /// The Kubernetes API of the AKS cluster `name`.
    pub fn aks(&self, name: &str) -> ClusterAccess {
        let key = self.read(|s| {
            s.managed_clusters
                .iter()
                .find(|(_, c)| c.name == name)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| panic!("AKS cluster {name} is in the sandbox"))
        });
        wiform_sandbox::kube::aks_access(self.app(), &key)
            .expect("the store answers")
            .unwrap_or_else(|| panic!("AKS cluster {name} has a Kubernetes API"))
    }

    /// The standalone cluster (what clusters that are not AKS are in the sandbox).
    pub fn standalone(&self) -> ClusterAccess {
        wiform_sandbox::kube::standalone(self.app()).expect("the standalone cluster")
    }

    /// A JSON merge patch of a Kubernetes object as the admin, recorded under `manager` (what
    /// `kubectl annotate` or `kubectl edit` does).
    pub fn kube_merge_patch(
        &self,
        cluster: &ClusterAccess,
        path: &str,
        manager: &str,
        patch: Value,
    ) -> (u16, Value) {
        self.send(
            Some(cluster.admin_token.clone()),
            Method::PATCH,
            format!("{}{path}?fieldManager={manager}", cluster.server),
            "application/merge-patch+json",
            Some(patch.to_string()),
        )
    }

    pub fn kube_get(&self, cluster: &ClusterAccess, path: &str) -> (u16, Value) {
        self.send(
            Some(cluster.admin_token.clone()),
            Method::GET,
            format!("{}{path}", cluster.server),
            "",
            None,
        )
    }

    /// `DELETE` on a cluster's API, as its admin (`kubectl delete`).
    pub fn kube_delete(&self, cluster: &ClusterAccess, path: &str) -> (u16, Value) {
        self.send(
            Some(cluster.admin_token.clone()),
            Method::DELETE,
            format!("{}{path}", cluster.server),
            "",
            None,
        )
    }

    /// The managed identity `resource_group/name`.
    pub fn identity(&self, resource_group: &str, name: &str) -> Value {
        let (status, body) = self.arm(Method::GET, &identity_path(resource_group, name), None);
        assert_eq!(status, 200, "{body}");
        body
    }
}

pub fn identity_path(resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}?api-version={MSI_API}"
    )
}

pub fn credential_path(resource_group: &str, identity: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identity}/federatedIdentityCredentials/{name}?api-version={MSI_API}"
    )
}

/// A role assignment `name` (a GUID) at `scope` (relative to the subscription).
pub fn role_assignment_path(scope: &str, name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/{}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version={AUTHZ_API}",
        scope.trim_matches('/')
    )
}

pub fn role_definition_id(role_guid: &str) -> String {
    format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}")
}

/// A copy of example `name` in a temporary directory, edited by `edit`; run commands from the
/// directory with `-f identity.toml`.
pub fn edited_copy(name: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let text = std::fs::read_to_string(root().join(example(name))).expect("the example reads");
    let edited = edit(text.clone());
    assert_ne!(edited, text, "the edit changed nothing");
    std::fs::write(dir.path().join("identity.toml"), edited).expect("the copy is written");
    dir
}

// ---------------------------------------------------------------------------------------------
// Normalisation

/// GUIDs that are the same in every run: the examples' tenant and subscription, the sandbox's
/// clients, the built-in role definitions, and the ids the tests write by hand.
fn fixed_guid(guid: &str) -> bool {
    let guid = guid.to_ascii_lowercase();
    [
        DEFAULT_TENANT,
        DEFAULT_SUBSCRIPTION,
        ADMIN_CLIENT_ID,
        wiform_sandbox::state::READER_CLIENT_ID,
        HAND_MADE_CLIENT_ID,
        HAND_MADE_ASSIGNMENT,
    ]
    .contains(&guid.as_str())
        || wiform::builtin_roles::BUILTIN_ROLES
            .iter()
            .any(|r| r.id == guid)
}

/// The byte length of a GUID (8-4-4-4-12 hex digits) at the start of `s`, if one is there.
fn guid_at(s: &[u8]) -> Option<usize> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let mut at = 0;
    for (i, len) in GROUPS.iter().enumerate() {
        if i > 0 {
            if s.get(at) != Some(&b'-') {
                return None;
            }
            at += 1;
        }
        let group = s.get(at..at + len)?;
        if !group.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        at += len;
    }
    Some(at)
}

/// Replaces run-dependent values so that snapshots are stable: the sandbox's port
/// (`https://127.0.0.1:<port>`), the plan's fingerprint, the temporary directories named in
/// `paths`, and every GUID but the fixed ones, as `<guid-N>` numbered in order of first
/// appearance (so the same id keeps the same number).
pub fn normalise(text: &str, paths: &[(&Path, &str)]) -> String {
    let mut text = text.to_string();
    for (path, name) in paths {
        text = text.replace(&path.display().to_string(), name);
    }
    let text = replace_port(&text);
    let text = replace_fingerprint(&text);
    replace_guids(&text)
}

fn replace_port(text: &str) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(HOST) {
        let (before, after) = rest.split_at(at + HOST.len());
        out.push_str(before);
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("<port>");
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

fn replace_fingerprint(text: &str) -> String {
    const KEY: &str = "\"fingerprint\": \"";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(KEY) {
        let (before, after) = rest.split_at(at + KEY.len());
        out.push_str(before);
        let end = after.find('"').unwrap_or(after.len());
        out.push_str("<fingerprint>");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn replace_guids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut numbers: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        let starts_word = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        if starts_word
            && let Some(len) = guid_at(&bytes[at..])
            && bytes
                .get(at + len)
                .is_none_or(|b| !b.is_ascii_alphanumeric())
        {
            let guid = &text[at..at + len];
            if !fixed_guid(guid) {
                let next = numbers.len() + 1;
                let n = *numbers.entry(guid.to_ascii_lowercase()).or_insert(next);
                out.push_str(&text[copied..at]);
                out.push_str(&format!("<guid-{n}>"));
                copied = at + len;
            }
            at += len;
        } else {
            at += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Requests by API (`arm`, `graph`, `entra`, `kube`, `admin`).
pub fn by_api(entries: &[Entry]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for entry in entries {
        *counts.entry(entry.api).or_default() += 1;
    }
    counts
}

/// Requests by API, operation and path, for messages.
pub fn by_operation(entries: &[Entry]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in entries {
        *counts
            .entry(format!("{} {} {}", entry.api, entry.operation, entry.path))
            .or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_replaces_ports_fingerprints_and_guids_but_not_fixed_ids() {
        let text = format!(
            "https://127.0.0.1:43211/oidc/{DEFAULT_TENANT}/6F1C2D3E-0000-4000-8000-00000000000a/\n\
             \"fingerprint\": \"0123456789abcdef\",\n\
             client 11111111-2222-4333-8444-555555555555, again 11111111-2222-4333-8444-555555555555,\n\
             role acdd72a7-3385-48ef-bd42-f606fba81ae7 in /subscriptions/{SUB}\n\
             not a guid: x11111111-2222-4333-8444-555555555555 127.0.0.1:\n\
             /tmp/xyz/identity.toml"
        );
        assert_eq!(
            normalise(&text, &[(Path::new("/tmp/xyz"), "<dir>")]),
            format!(
                "https://127.0.0.1:<port>/oidc/{DEFAULT_TENANT}/<guid-1>/\n\
                 \"fingerprint\": \"<fingerprint>\",\n\
                 client <guid-2>, again <guid-2>,\n\
                 role acdd72a7-3385-48ef-bd42-f606fba81ae7 in /subscriptions/{SUB}\n\
                 not a guid: x11111111-2222-4333-8444-555555555555 127.0.0.1:\n\
                 <dir>/identity.toml"
            )
        );
    }
}
