//! A role grant the caller may not write: apply fails that grant alone, says why and what to
//! do, applies everything that does not depend on it, and converges once the right is granted.

use serde_json::Value;
use wiform_sandbox::seed::{Seed, SeedRoleAssignment};

use crate::support::{Config, Sandbox, normalise_scope, table};

/// A management group: the sandbox's admin is Owner of the subscription only. It gets Reader
/// there, so that wiform can read the assignments at the scope but not write one.
const MANAGEMENT_GROUP: &str = "/providers/Microsoft.Management/managementGroups/mg1";
const GRANT: &str =
    "role_grant.keyvault-reader[\"Reader\" @ /providers/Microsoft.Management/managementGroups/mg1]";

fn assign_admin(sb: &Sandbox, role: &str) {
    sb.seed(&Seed {
        role_assignments: vec![SeedRoleAssignment {
            scope: MANAGEMENT_GROUP.into(),
            role: role.into(),
            principal: sb.admin_principal(),
            description: None,
        }],
        ..Seed::default()
    });
}

#[test]
fn a_grant_the_caller_may_not_write_fails_alone_and_converges_once_allowed() {
    let sb = Sandbox::start();
    assign_admin(&sb, "Reader");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut config = Config::example("quickstart");
    config.list("role_grants").push(table(&[
        ("identity", "keyvault-reader"),
        ("role", "Reader"),
        ("scope", MANAGEMENT_GROUP),
    ]));
    let file = config.write(dir.path());

    let run = sb.try_apply(&file);
    assert_eq!(run.code, 1, "{}", run.transcript());
    let failure = run
        .stderr
        .split("What did not apply:")
        .nth(1)
        .unwrap_or_else(|| panic!("a list of what did not apply:\n{}", run.transcript()));
    for expected in [
        &format!("{GRANT}: failed: "),
        "AuthorizationFailed (HTTP 403)",
        "Microsoft.Authorization/roleAssignments/write",
        "hint: the principal wiform runs as lacks `Microsoft.Authorization/roleAssignments/write`",
        "User Access Administrator",
        "Apply incomplete: 5 added, 1 changed, 0 replaced, 0 destroyed, 0 adopted. Failed: 1, skipped: 0.",
    ] {
        assert!(
            failure.contains(expected),
            "{expected:?} in:\n{}",
            run.transcript()
        );
    }
    // Only that grant failed: nothing depends on it, nothing was skipped.
    assert_eq!(failure.matches(": failed: ").count(), 1, "{failure}");
    assert!(!failure.contains(": skipped, because"), "{failure}");

    // Everything else is there: the identity, its credential, the service account, the other
    // grant; the management group grant is not.
    let inventory = sb.inventory("workload-id-lab");
    let mut without = config.clone();
    without.list("role_grants").pop();
    assert_eq!(inventory.summary(), without.expected());
    assert!(
        !inventory
            .grants
            .iter()
            .any(|(_, _, scope)| *scope == normalise_scope(MANAGEMENT_GROUP))
    );

    // The plan has that one grant left to create.
    let plan = sb.plan(&file, &["--format", "json", "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}", plan.transcript());
    let plan: Value = serde_json::from_str(&plan.stdout).expect("a JSON plan");
    let pending: Vec<(&str, &str)> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| !matches!(c["action"].as_str(), Some("no_op" | "read")))
        .map(|c| {
            (
                c["address"].as_str().unwrap_or_default(),
                c["action"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(pending, [(GRANT, "create")]);

    // Once allowed there, a re-run creates the grant and nothing else.
    assign_admin(&sb, "Owner");
    let run = sb.apply(&file);
    assert!(
        run.stdout
            .contains("Apply complete! 1 added, 0 changed, 0 replaced, 0 destroyed, 0 adopted."),
        "{}",
        run.transcript()
    );
    sb.assert_in_sync(&file);
    sb.assert_matches(&config, "granting the right");
}
