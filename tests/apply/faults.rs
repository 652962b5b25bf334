//! Apply under the sandbox's faults converges in one run: exit 0, then an empty plan, exactly
//! the objects the config asks for (no duplicate identity, role assignment or credential), and
//! never a 409 for concurrent credential writes on one identity (wiform serialises them).
//!
//! ARM throttling and replication delay touch only Azure, so every example runs under them.
//! Server errors and dropped connections hit the clusters' Kubernetes APIs too, so they are
//! switched on for configs without clusters: the github-actions example and a generated one.

use std::fmt::Write;
use std::path::Path;

use wiform_sandbox::Faults;

use crate::support::{CONCURRENT_FIC_WRITES, Config, Run, Sandbox};

/// ARM's request limits at a twentieth: a few commands run the write bucket dry.
fn throttled() -> Faults {
    Faults {
        throttle: true,
        throttle_scale: 0.05,
        replication_delay_ms: 3000,
        ..Faults::default()
    }
}

/// Every fault at once. Throttling at 40 % of ARM's limits, so that the generated config's
/// 120 writes run the bucket down without taking minutes.
fn every_fault() -> Faults {
    Faults {
        throttle: true,
        throttle_scale: 0.4,
        error_rate: 0.1,
        drop_rate: 0.05,
        replication_delay_ms: 3000,
        ..Faults::default()
    }
}

/// `identities` managed identities in two resource groups, each with three federated
/// credentials (GitHub Actions subjects) and two role grants; no cluster.
fn medium_config(identities: usize) -> String {
    let mut t = String::from(
        "version = 1\nname = \"medium\"\n\n[azure]\ntenant_id = \"aaaaaaaa-0000-4000-8000-000000000001\"\nsubscription_id = \"bbbbbbbb-0000-4000-8000-000000000001\"\nlocation = \"westeurope\"\n\n",
    );
    for i in 0..identities {
        writeln!(
            t,
            "[identities.id-{i:02}]\nresource_group = \"rg-medium-{}\"\n",
            i % 2
        )
        .unwrap();
    }
    for i in 0..identities {
        for branch in ["main", "release", "hotfix"] {
            writeln!(
                t,
                "[[federations]]\nidentity = \"id-{i:02}\"\nname = \"github-{branch}\"\nissuer = \"https://token.actions.githubusercontent.com\"\nsubject = \"repo:contoso/app-{i:02}:ref:refs/heads/{branch}\"\n"
            )
            .unwrap();
        }
        for (role, n) in [("Storage Blob Data Reader", i % 5), ("AcrPull", i % 3)] {
            writeln!(
                t,
                "[[role_grants]]\nidentity = \"id-{i:02}\"\nrole = \"{role}\"\nscope = \"resourceGroups/rg-medium-data/providers/Microsoft.Storage/storageAccounts/data{n}\"\n"
            )
            .unwrap();
        }
    }
    t
}

/// Applies `config` (written to `dir`) once under `faults`: it must converge. Returns the
/// apply's run.
fn converges(sb: &Sandbox, config: &Config, dir: &Path, faults: Faults) -> Run {
    sb.set_faults(faults);
    sb.clear_log();
    let file = config.write(dir);
    let run = sb.try_apply(&file);
    assert!(
        run.code == 0 && run.stdout.contains("Apply complete!"),
        "apply under faults did not converge:\n{}",
        run.transcript()
    );
    // 409s are retried by the client all the same: none may have been answered, and none
    // reported.
    assert_eq!(
        sb.errors(CONCURRENT_FIC_WRITES),
        0,
        "concurrent credential writes on one identity:\n{}",
        run.transcript()
    );
    assert!(!run.text().contains(CONCURRENT_FIC_WRITES));
    // Still under the faults: the plan reads everything again and finds nothing to do.
    sb.assert_in_sync(&file);
    sb.assert_matches(config, "an apply under faults");
    run
}

fn example_converges_throttled(name: &str) {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    converges(&sb, &Config::example(name), dir.path(), throttled());
}

#[test]
fn quickstart_converges_throttled_with_replication_delay() {
    example_converges_throttled("quickstart");
}

#[test]
fn multi_cluster_converges_throttled_with_replication_delay() {
    example_converges_throttled("multi-cluster");
}

#[test]
fn self_managed_converges_throttled_with_replication_delay() {
    example_converges_throttled("self-managed");
}

#[test]
fn app_registration_converges_throttled_with_replication_delay() {
    example_converges_throttled("app-registration");
}

#[test]
fn github_actions_converges_under_every_fault() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    converges(
        &sb,
        &Config::example("github-actions"),
        dir.path(),
        every_fault(),
    );
}

#[test]
fn quickstart_converges_under_every_fault() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    converges(
        &sb,
        &Config::example("quickstart"),
        dir.path(),
        every_fault(),
    );
}

#[test]
fn multi_cluster_converges_under_every_fault() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    converges(
        &sb,
        &Config::example("multi-cluster"),
        dir.path(),
        every_fault(),
    );
}

#[test]
fn twenty_identities_converge_under_every_fault() {
    let sb = Sandbox::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config::parse(&medium_config(20));
    converges(&sb, &config, dir.path(), every_fault());
    let log = sb.log();
    let count =
        |f: &dyn Fn(&wiform_sandbox::log::Entry) -> bool| log.iter().filter(|e| f(e)).count();
    let server_errors = count(&|e| e.status >= 500);
    let dropped = count(&|e| e.error_code.as_deref() == Some("ConnectionDropped"));
    let replication = count(&|e| {
        matches!(
            e.error_code.as_deref(),
            Some("ParentResourceNotFound" | "PrincipalNotFound")
        )
    });
    // The faults did strike (with ~300 requests, each of these is all but certain).
    assert!(
        server_errors > 0 && dropped > 0 && replication > 0,
        "5xx {server_errors}, dropped {dropped}, replication {replication}"
    );
    // Every identity has its three credentials, each once (the inventory compares names).
    let inventory = sb.inventory("medium");
    assert_eq!(inventory.identities.len(), 20);
    assert!(
        inventory.credentials.values().all(|names| names.len() == 3),
        "{:#?}",
        inventory.credentials
    );
}
