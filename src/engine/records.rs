//! What an identity records of the objects attached to it, for `drift`.
//!
//! Federated credentials on a managed identity take no tags or description, and a deleted role
//! assignment leaves nothing behind, so their marker lives on the parent identity (product
//! design, "Ownership without a state file"): the tags `wiform-credentials` and `wiform-grants`
//! hold a short hash of each credential and each role grant the identity was last applied with,
//! sorted and comma-separated (continued in `wiform-credentials-2`, … past Azure's 256
//! characters per tag value). They are written with the identity itself, before its credentials
//! and grants, so after an apply that failed half-way a credential it could not write reads as
//! deleted; the next apply settles it.
//!
//! A credential's entry hashes its name, issuer, subject and audiences, the issuer of an AKS
//! cluster as `cluster:KEY` (its URL is not known before the cluster's OIDC issuer is on); a
//! grant's entry hashes its role and scope as the config resolves them.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::NodeIndex;

use crate::graph::Graph;
use crate::ownership;

pub const CREDENTIALS_TAG: &str = "wiform-credentials";
pub const GRANTS_TAG: &str = "wiform-grants";
/// The credentials and role assignments that were on the identity when wiform adopted it: not
/// wiform's, kept unless the config says `prune_unmanaged = true` (issue 16).
pub const UNMANAGED_TAG: &str = "wiform-unmanaged";

/// Hex digits kept per entry: 32 bits, plenty to tell at most a few dozen objects apart.
const ENTRY_LEN: usize = 8;
/// Azure's limit on a tag value.
const TAG_VALUE_MAX: usize = 256;

/// A record entry: the first hex digits of the hash of `value` (each kind says what its entry
/// hashes: `kinds::federated_credential::record_entry`, `kinds::role_assignment`).
pub fn entry(value: &serde_json::Value) -> String {
    let mut hash = ownership::spec_hash(value);
    hash.truncate(ENTRY_LEN);
    hash
}

/// The record tags of the identity at `identity`: its credentials and grants in the config.
pub fn identity_records(graph: &Graph, identity: NodeIndex) -> BTreeMap<String, String> {
    let mut credentials = BTreeSet::new();
    let mut grants = BTreeSet::new();
    for dependent in graph.dependents(identity) {
        match graph.node(dependent).resource.record_entry() {
            Some((CREDENTIALS_TAG, entry)) => credentials.insert(entry),
            Some((_, entry)) => grants.insert(entry),
            None => false,
        };
    }
    let mut tags = tags_of(CREDENTIALS_TAG, &credentials);
    tags.extend(tags_of(GRANTS_TAG, &grants));
    tags
}

/// `entries` as tags `name`, `name-2`, …, each value within Azure's limit. An empty set is one
/// empty tag, so that "records nothing" differs from "records not written yet".
fn tags_of(name: &str, entries: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    let mut value = String::new();
    let mut part = 1;
    let key = |part: usize| {
        if part == 1 {
            name.to_string()
        } else {
            format!("{name}-{part}")
        }
    };
    for entry in entries {
        if !value.is_empty() && value.len() + 1 + entry.len() > TAG_VALUE_MAX {
            tags.insert(key(part), std::mem::take(&mut value));
            part += 1;
        }
        if !value.is_empty() {
            value.push(',');
        }
        value.push_str(entry);
    }
    tags.insert(key(part), value);
    tags
}

/// The entries recorded under `name` in live `tags`, or `None` when the identity records
/// nothing (applied by a wiform without records, or not by wiform).
pub fn read(tags: &BTreeMap<String, String>, name: &str) -> Option<BTreeSet<String>> {
    let prefix = format!("{name}-");
    let mut found = false;
    let mut entries = BTreeSet::new();
    for (key, value) in tags {
        let key = key.to_ascii_lowercase();
        let ours = key == name
            || key
                .strip_prefix(&prefix)
                .is_some_and(|n| n.parse::<u32>().is_ok());
        if ours {
            found = true;
            entries.extend(
                value
                    .split(',')
                    .filter(|e| !e.is_empty())
                    .map(str::to_string),
            );
        }
    }
    found.then_some(entries)
}

/// The entry of a live object (a credential or a role assignment) in the identity's record of
/// what was there when wiform adopted it: its id, hashed.
pub fn unmanaged_entry(id: &str) -> String {
    entry(&serde_json::Value::String(id.to_ascii_lowercase()))
}

/// The record of what was there at adoption, as tags: none at all when nothing was (so that an
/// identity wiform made carries no such tag).
pub fn unmanaged_tags(entries: &BTreeSet<String>) -> BTreeMap<String, String> {
    if entries.is_empty() {
        BTreeMap::new()
    } else {
        tags_of(UNMANAGED_TAG, entries)
    }
}

/// What an identity records as there at its adoption, from now on: when it is adopted now,
/// everything on it that is not wiform's (`live_ids`); else what it recorded that is still there.
pub fn unmanaged(
    adopting: bool,
    recorded: Option<BTreeSet<String>>,
    live_ids: impl Iterator<Item = String>,
) -> BTreeSet<String> {
    let live: BTreeSet<String> = live_ids.map(|id| unmanaged_entry(&id)).collect();
    if adopting {
        live
    } else {
        recorded
            .unwrap_or_default()
            .intersection(&live)
            .cloned()
            .collect()
    }
}

/// The record tags among `tags` (to compare the live record with the desired one).
pub fn record_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            k.starts_with(CREDENTIALS_TAG)
                || k.starts_with(GRANTS_TAG)
                || k.starts_with(UNMANAGED_TAG)
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_records_continue_in_numbered_tags_and_read_back_whole() {
        let entries: BTreeSet<String> = (0..60).map(|i| format!("{i:08x}")).collect();
        let tags = tags_of(GRANTS_TAG, &entries);
        assert_eq!(tags.len(), 3, "{tags:?}");
        assert!(tags.values().all(|v| v.len() <= TAG_VALUE_MAX));
        assert_eq!(read(&tags, GRANTS_TAG), Some(entries));
    }

    #[test]
    fn nothing_recorded_differs_from_no_record() {
        let empty = tags_of(CREDENTIALS_TAG, &BTreeSet::new());
        assert_eq!(read(&empty, CREDENTIALS_TAG), Some(BTreeSet::new()));
        assert_eq!(read(&BTreeMap::new(), CREDENTIALS_TAG), None);
    }

    #[test]
    fn entries_ignore_audience_order_and_scope_case() {
        use crate::kinds::federated_credential::record_entry;
        use crate::kinds::role_assignment::{Desired, RoleRef};
        let a = record_entry("cluster:lab", "s", &["x".into(), "y".into()]);
        let b = record_entry("cluster:lab", "s", &["y".into(), "x".into()]);
        assert_eq!(a, b);
        assert_eq!(a.len(), ENTRY_LEN);
        let grant = |scope: &str| Desired {
            role: RoleRef::Id { id: "r".into() },
            scope: scope.into(),
            condition: None,
        };
        assert_eq!(
            grant("/Subscriptions/S").record_entry(),
            grant("/subscriptions/s").record_entry()
        );
    }
}
