//! The large config of the plan benchmark, shared by `benches/plan_large.rs` and
//! `tests/azure/observe.rs` (both include this file with `#[path]`).

use std::fmt::Write;

/// identity.toml for `identities` managed identities in `groups` resource groups, 2 AKS
/// clusters, `2 × identities` service accounts over 20 namespaces, and `2 × identities` role
/// grants over 50 scopes (the large config of the plan issue's benchmark).
///
/// Its resource groups (`rg-ids-N`, `rg-data`, `rg-aks`) and AKS clusters (`rg-aks/aks-a`,
/// `rg-aks/aks-b`) are expected to exist: `--sandbox` preloads them.
pub fn large_config(identities: usize, groups: usize) -> String {
    let mut t = String::from(
        "version = 1\nname = \"large\"\n\n[azure]\ntenant_id = \"aaaaaaaa-0000-4000-8000-000000000001\"\nsubscription_id = \"bbbbbbbb-0000-4000-8000-000000000001\"\nlocation = \"westeurope\"\n\n",
    );
    for c in ["a", "b"] {
        writeln!(
            t,
            "[clusters.{c}]\nresource_group = \"rg-aks\"\nname = \"aks-{c}\"\n"
        )
        .unwrap();
    }
    for i in 0..identities {
        writeln!(
            t,
            "[identities.id-{i:03}]\nresource_group = \"rg-ids-{}\"\n",
            i % groups
        )
        .unwrap();
    }
    for i in 0..identities {
        for (n, c) in ["a", "b"].iter().enumerate() {
            writeln!(
                t,
                "[[service_accounts]]\ncluster = \"{c}\"\nnamespace = \"ns-{:02}\"\nname = \"sa-{i:03}\"\nidentity = \"id-{i:03}\"\n",
                (i * 2 + n) % 20
            )
            .unwrap();
        }
    }
    for i in 0..identities {
        for n in 0..2 {
            writeln!(
                t,
                "[[role_grants]]\nidentity = \"id-{i:03}\"\nrole = \"Storage Blob Data Contributor\"\nscope = \"resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/data{:02}\"\n",
                (i * 2 + n) % 50
            )
            .unwrap();
        }
    }
    t
}
