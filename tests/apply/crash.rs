//! An apply killed with SIGKILL at a random moment, then run again to completion: the end
//! state is the config (the plan is empty), and nothing is duplicated or left over. The config
//! is the benchmark's large one scaled down to 50 identities (2 AKS clusters, 20 namespaces,
//! 100 service accounts, 100 federated credentials, 100 role grants over 50 scopes); applying
//! it from empty takes about 3.5 s, 2 of them waiting for the clusters' long-running updates.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::large::large_config;
use crate::support::{Config, Run, Sandbox, Summary};

const IDENTITIES: usize = 50;
const GROUPS: usize = 4;
const STACK: &str = "large";

/// When to kill the apply.
enum Kill {
    /// This long after it started.
    After(Duration),
    /// Once the sandbox has answered this many federated credential writes.
    AfterCredentialWrites(usize),
}

/// Counts of what the sandbox holds of the stack, for messages.
fn counts(summary: &Summary) -> String {
    format!(
        "{} identities, {} credentials, {} role assignments, {} service accounts, {} namespaces",
        summary.identities.len(),
        summary.credentials.values().map(Vec::len).sum::<usize>(),
        summary.grants.len(),
        summary.service_accounts.len(),
        summary.namespaces.len()
    )
}

/// Starts `apply` of `config` and kills it (SIGKILL) as `kill` says, unless it ends first.
/// Returns whether it was killed.
fn apply_and_kill(sb: &Sandbox, dir: &std::path::Path, kill: &Kill) -> bool {
    let file = dir.join("identity.toml");
    let mut args = sb.sandbox_args("apply", &file);
    args.push("--auto-approve");
    let mut child = sb
        .command(dir, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wiform starts");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("the child's status").is_some() {
            return false;
        }
        let due = match kill {
            Kill::After(delay) => started.elapsed() >= *delay,
            Kill::AfterCredentialWrites(n) => {
                sb.log()
                    .iter()
                    .filter(|e| e.operation == "PUT federatedIdentityCredentials")
                    .count()
                    >= *n
            }
        };
        if due || started.elapsed() > Duration::from_secs(120) {
            child.kill().expect("SIGKILL");
            child.wait().expect("the child is reaped");
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Everything in the sandbox, stack or not: identities, federated credentials, role
/// assignments other than the sandbox's own clients', service accounts other than `default`.
fn totals(sb: &Sandbox) -> (usize, usize, usize, usize) {
    sb.read(|s| {
        let clients: Vec<&str> = s
            .clients
            .iter()
            .filter_map(|c| s.principal_by_client_id(&c.client_id))
            .map(|p| p.id.as_str())
            .collect();
        (
            s.identities.len(),
            s.federated_credentials.len(),
            s.role_assignments
                .values()
                .filter(|a| !clients.contains(&a.principal_id.as_str()))
                .count(),
            s.kube_clusters
                .values()
                .flat_map(|c| c.service_accounts.keys())
                .filter(|k| !k.ends_with("/default"))
                .count(),
        )
    })
}

fn killed_then_converges(kill: Kill) {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config::parse(&large_config(IDENTITIES, GROUPS));
    let file = config.write(dir.path());
    sb.clear_log();

    let killed = apply_and_kill(&sb, dir.path(), &kill);
    let partial = counts(&sb.inventory(STACK).summary());

    let run: Run = sb.try_apply(&file);
    let context = format!(
        "killed: {killed}; the sandbox held {partial} then\n{}",
        run.transcript()
    );
    assert_eq!(run.code, 0, "{context}");
    assert!(
        run.stdout.contains("Apply complete!") || run.stdout.contains("No changes."),
        "{context}"
    );
    sb.assert_in_sync(&file);
    sb.assert_matches(&config, &format!("the re-run ({context})"));
    // Nothing outside the stack's markers either: no identity, credential, role assignment or
    // service account but the config's.
    assert_eq!(
        totals(&sb),
        (IDENTITIES, 2 * IDENTITIES, 2 * IDENTITIES, 2 * IDENTITIES),
        "(identities, credentials, role assignments, service accounts); {context}"
    );
}

/// Three moments from a seed, over the whole apply (identities, namespaces, service accounts
/// and role assignments in the first half second, credentials after the clusters' 2 s update).
fn delay(seed: u64) -> Duration {
    Duration::from_millis(fastrand::Rng::with_seed(seed).u64(100..=3300))
}

#[test]
fn killed_after_a_random_delay_seed_1_converges() {
    killed_then_converges(Kill::After(delay(1)));
}

#[test]
fn killed_after_a_random_delay_seed_2_converges() {
    killed_then_converges(Kill::After(delay(2)));
}

#[test]
fn killed_after_a_random_delay_seed_3_converges() {
    killed_then_converges(Kill::After(delay(3)));
}

/// While credentials are being written: after a random number of them.
#[test]
fn killed_while_writing_credentials_converges() {
    let writes = fastrand::Rng::with_seed(4).usize(1..2 * IDENTITIES);
    killed_then_converges(Kill::AfterCredentialWrites(writes));
}
