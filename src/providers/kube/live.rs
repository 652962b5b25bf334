//! Live Kubernetes objects as wiform sees them: identity (uid, resourceVersion), labels and
//! annotations, who owns them (markers), which keys wiform's field manager owns. Pure
//! conversions from the API types; no IO.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta};
use serde::{Deserialize, Serialize};

use crate::ownership::{self, Owner};

/// wiform's field manager name (server-side apply).
pub const FIELD_MANAGER: &str = "wiform";

/// The label and annotation keys a field manager owns on an object (from `managedFields`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedKeys {
    pub labels: BTreeSet<String>,
    pub annotations: BTreeSet<String>,
}

impl ManagedKeys {
    /// The keys `manager` owns through server-side apply.
    pub fn of(managed_fields: &[ManagedFieldsEntry], manager: &str) -> Self {
        let mut keys = ManagedKeys::default();
        for entry in managed_fields {
            if entry.manager.as_deref() != Some(manager)
                || entry.operation.as_deref() != Some("Apply")
            {
                continue;
            }
            let Some(fields) = &entry.fields_v1 else {
                continue;
            };
            let metadata = &fields.0["f:metadata"];
            keys.labels.extend(field_keys(&metadata["f:labels"]));
            keys.annotations
                .extend(field_keys(&metadata["f:annotations"]));
        }
        keys
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

fn field_keys(set: &serde_json::Value) -> Vec<String> {
    set.as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix("f:"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What every live object has in common.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveMeta {
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Who owns the object, from its markers.
    pub owner: Owner,
    /// The keys wiform's field manager owns.
    pub wiform_fields: ManagedKeys,
    /// Deletion has begun (`deletionTimestamp` is set).
    pub terminating: bool,
}

impl LiveMeta {
    fn from_meta(meta: &ObjectMeta) -> Self {
        let labels = meta.labels.clone().unwrap_or_default();
        let annotations = meta.annotations.clone().unwrap_or_default();
        LiveMeta {
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone().unwrap_or_default(),
            owner: ownership::read_kube_marker(&labels, &annotations),
            wiform_fields: ManagedKeys::of(
                meta.managed_fields.as_deref().unwrap_or_default(),
                FIELD_MANAGER,
            ),
            labels,
            annotations,
            terminating: meta.deletion_timestamp.is_some(),
        }
    }

    /// True when the object carries the marker of `stack`.
    pub fn owned_by(&self, stack: &str) -> bool {
        self.owner.is_stack(stack)
    }

    /// The spec hash recorded at the last apply.
    pub fn recorded_hash(&self) -> Option<&str> {
        self.owner.marker().and_then(|m| m.spec_hash.as_deref())
    }

    /// The labels and annotations whose keys wiform's field manager owns.
    fn wiform_owned(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let pick = |map: &BTreeMap<String, String>, keys: &BTreeSet<String>| {
            map.iter()
                .filter(|(k, _)| keys.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        (
            pick(&self.labels, &self.wiform_fields.labels),
            pick(&self.annotations, &self.wiform_fields.annotations),
        )
    }
}

/// A namespace as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveNamespace {
    #[serde(flatten)]
    pub meta: LiveMeta,
}

impl LiveNamespace {
    pub fn from_api(namespace: &Namespace) -> Self {
        LiveNamespace {
            meta: LiveMeta::from_meta(&namespace.metadata),
        }
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The hash of what wiform's field manager owns now; equal to [`LiveMeta::recorded_hash`]
    /// unless someone changed those fields since the last apply.
    pub fn live_spec_hash(&self) -> String {
        let (labels, annotations) = self.meta.wiform_owned();
        ownership::kube_spec_hash("Namespace", None, &self.meta.name, &labels, &annotations)
    }
}

/// A service account as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveServiceAccount {
    pub namespace: String,
    #[serde(flatten)]
    pub meta: LiveMeta,
}

impl LiveServiceAccount {
    pub fn from_api(account: &ServiceAccount) -> Self {
        LiveServiceAccount {
            namespace: account.metadata.namespace.clone().unwrap_or_default(),
            meta: LiveMeta::from_meta(&account.metadata),
        }
    }

    pub fn name(&self) -> &str {
        &self.meta.name
    }

    /// The value of one annotation (e.g. `azure.workload.identity/client-id`).
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.meta.annotations.get(key).map(String::as_str)
    }

    /// The hash of what wiform's field manager owns now; equal to [`LiveMeta::recorded_hash`]
    /// unless someone changed those fields since the last apply.
    pub fn live_spec_hash(&self) -> String {
        let (labels, annotations) = self.meta.wiform_owned();
        ownership::kube_spec_hash(
            "ServiceAccount",
            Some(&self.namespace),
            &self.meta.name,
            &labels,
            &annotations,
        )
    }
}

/// The `resourceVersion` of each list an observation made: a fingerprint of what was seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListVersions {
    /// The list of every namespace.
    pub namespaces: String,
    /// The list of service accounts labelled with the stack, across namespaces.
    pub owned_service_accounts: String,
    /// The list of service accounts in each namespace the config names.
    pub service_accounts_in: BTreeMap<String, String>,
}

/// What one cluster holds that matters to one stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterObservation {
    /// The cluster's key in identity.toml.
    pub cluster: String,
    pub stack: String,
    /// The namespaces the config names that exist, and every namespace the stack owns.
    pub namespaces: BTreeMap<String, LiveNamespace>,
    /// Every service account the stack owns (anywhere) and every service account in the
    /// namespaces the config names (owned or not), sorted by namespace and name.
    pub service_accounts: Vec<LiveServiceAccount>,
    pub versions: ListVersions,
}

impl ClusterObservation {
    pub fn namespace(&self, name: &str) -> Option<&LiveNamespace> {
        self.namespaces.get(name)
    }

    pub fn service_account(&self, namespace: &str, name: &str) -> Option<&LiveServiceAccount> {
        self.service_accounts
            .binary_search_by(|sa| (sa.namespace.as_str(), sa.name()).cmp(&(namespace, name)))
            .ok()
            .map(|i| &self.service_accounts[i])
    }

    /// The namespaces carrying this stack's marker.
    pub fn owned_namespaces(&self) -> impl Iterator<Item = &LiveNamespace> {
        self.namespaces
            .values()
            .filter(|n| n.meta.owned_by(&self.stack))
    }

    /// The service accounts carrying this stack's marker.
    pub fn owned_service_accounts(&self) -> impl Iterator<Item = &LiveServiceAccount> {
        self.service_accounts
            .iter()
            .filter(|sa| sa.meta.owned_by(&self.stack))
    }

    /// Builds the observation from the answers of the lists (pure; `observe` does the IO).
    /// Accounts seen by more than one list are kept once, the newest resourceVersion winning
    /// when they differ.
    pub fn assemble(
        cluster: &str,
        stack: &str,
        named_namespaces: &[String],
        all_namespaces: &[Namespace],
        accounts: impl IntoIterator<Item = ServiceAccount>,
        versions: ListVersions,
    ) -> Self {
        let wanted: BTreeSet<&str> = named_namespaces.iter().map(String::as_str).collect();
        let namespaces = all_namespaces
            .iter()
            .map(LiveNamespace::from_api)
            .filter(|ns| wanted.contains(ns.name()) || ns.meta.owned_by(stack))
            .map(|ns| (ns.name().to_string(), ns))
            .collect();
        let mut by_key: BTreeMap<(String, String), LiveServiceAccount> = BTreeMap::new();
        for account in accounts {
            let live = LiveServiceAccount::from_api(&account);
            let key = (live.namespace.clone(), live.name().to_string());
            match by_key.get(&key) {
                Some(seen) if !newer(&live.meta.resource_version, &seen.meta.resource_version) => {}
                _ => {
                    by_key.insert(key, live);
                }
            }
        }
        ClusterObservation {
            cluster: cluster.to_string(),
            stack: stack.to_string(),
            namespaces,
            service_accounts: by_key.into_values().collect(),
            versions,
        }
    }
}

/// resourceVersions are opaque, but kube-apiserver's are decimal etcd revisions: compare them
/// as numbers when both are, else keep the first seen.
fn newer(candidate: &str, seen: &str) -> bool {
    match (candidate.parse::<u64>(), seen.parse::<u64>()) {
        (Ok(c), Ok(s)) => c > s,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::{MANAGED_BY_LABEL, SPEC_HASH_ANNOTATION, STACK_LABEL};
    use crate::providers::kube::desired::DesiredServiceAccount;
    use serde_json::json;

    fn sa(namespace: &str, name: &str, rv: &str, labels: serde_json::Value) -> ServiceAccount {
        serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": name, "uid": format!("{namespace}-{name}"),
                         "resourceVersion": rv, "labels": labels}
        }))
        .unwrap()
    }

    fn owned(stack: &str) -> serde_json::Value {
        json!({MANAGED_BY_LABEL: "wiform", STACK_LABEL: stack})
    }

    #[test]
    fn managed_keys_come_from_wiforms_apply_entry_only() {
        let entries: Vec<ManagedFieldsEntry> = serde_json::from_value(json!([
            {"manager": "wiform", "operation": "Apply", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}, "f:annotations": {"f:x": {}}}}},
            {"manager": "wiform", "operation": "Update", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:u": {}}}}},
            {"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:c": {}}}}},
            {"manager": "wiform", "operation": "Apply"},
        ]))
        .unwrap();
        let keys = ManagedKeys::of(&entries, "wiform");
        assert_eq!(
            keys.labels.iter().map(String::as_str).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            keys.annotations
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["x"]
        );
        assert!(ManagedKeys::of(&entries, "nobody").is_empty());
    }

    #[test]
    fn live_hash_matches_the_desired_hash_when_nothing_changed() {
        let desired = DesiredServiceAccount {
            stack: "s".into(),
            namespace: "ns".into(),
            name: "api".into(),
            client_id: "c".into(),
            tenant_id: "t".into(),
            token_expiration: None,
            labels: BTreeMap::from([("team".into(), "a".into())]),
            annotations: BTreeMap::new(),
        };
        let mut manifest = desired.manifest();
        // What the server adds: a label of another manager, wiform's managedFields.
        let mut fields = serde_json::Map::new();
        let f = |keys: Vec<String>| -> serde_json::Value {
            keys.into_iter()
                .map(|k| (format!("f:{k}"), json!({})))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        fields.insert(
            "f:labels".into(),
            f(desired.full_labels().into_keys().collect()),
        );
        fields.insert(
            "f:annotations".into(),
            f(desired.full_annotations().into_keys().collect()),
        );
        let meta = &mut manifest.metadata;
        meta.labels
            .as_mut()
            .unwrap()
            .insert("other".into(), "x".into());
        meta.managed_fields = Some(
            serde_json::from_value(json!([{"manager": "wiform", "operation": "Apply",
                "fieldsV1": {"f:metadata": fields}}]))
            .unwrap(),
        );
        let live = LiveServiceAccount::from_api(&manifest);
        assert!(live.meta.owned_by("s"));
        assert_eq!(live.recorded_hash_or_empty(), desired.spec_hash());
        assert_eq!(live.live_spec_hash(), desired.spec_hash());
        // Someone edits a field wiform owns: the live hash moves away from the recorded one.
        let mut edited = live.clone();
        edited
            .meta
            .annotations
            .insert(CLIENT.into(), "changed".into());
        assert_ne!(edited.live_spec_hash(), desired.spec_hash());
    }

    const CLIENT: &str = "azure.workload.identity/client-id";

    impl LiveServiceAccount {
        fn recorded_hash_or_empty(&self) -> String {
            self.meta.recorded_hash().unwrap_or_default().to_string()
        }
    }

    #[test]
    fn assemble_merges_lists_and_keeps_what_matters() {
        let namespaces: Vec<Namespace> = serde_json::from_value(json!([
            {"metadata": {"name": "named", "uid": "1", "resourceVersion": "5"}},
            {"metadata": {"name": "mine", "uid": "2", "resourceVersion": "6", "labels": owned("s"),
                          "annotations": {SPEC_HASH_ANNOTATION: "h"}}},
            {"metadata": {"name": "theirs", "uid": "3", "resourceVersion": "7", "labels": owned("t")}},
            {"metadata": {"name": "unrelated", "uid": "4", "resourceVersion": "8"}},
        ]))
        .unwrap();
        let accounts = vec![
            sa("mine", "a", "10", owned("s")),
            sa("named", "b", "11", json!({})),
            sa("named", "a", "12", owned("s")),
            // Seen twice (label list, then namespace list after a write): the newer one stays.
            sa("named", "a", "13", owned("s")),
            sa("named", "a", "9", owned("s")),
        ];
        let obs = ClusterObservation::assemble(
            "prod",
            "s",
            &["named".into(), "missing".into()],
            &namespaces,
            accounts,
            ListVersions::default(),
        );
        assert_eq!(
            obs.namespaces
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["mine", "named"]
        );
        assert!(obs.namespace("missing").is_none());
        assert_eq!(
            obs.owned_namespaces().map(|n| n.name()).collect::<Vec<_>>(),
            ["mine"]
        );
        let keys: Vec<(String, String, String)> = obs
            .service_accounts
            .iter()
            .map(|s| {
                (
                    s.namespace.clone(),
                    s.name().to_string(),
                    s.meta.resource_version.clone(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("mine".into(), "a".into(), "10".into()),
                ("named".into(), "a".into(), "13".into()),
                ("named".into(), "b".into(), "11".into()),
            ]
        );
        assert_eq!(obs.owned_service_accounts().count(), 2);
        assert_eq!(
            obs.service_account("named", "b").unwrap().meta.uid,
            "named-b"
        );
        assert!(obs.service_account("named", "zzz").is_none());
        assert_eq!(
            obs.namespace("mine").unwrap().meta.recorded_hash(),
            Some("h")
        );
    }

    #[test]
    fn odd_objects_do_not_panic() {
        let empty = LiveServiceAccount::from_api(&ServiceAccount::default());
        assert_eq!(empty.name(), "");
        assert_eq!(empty.meta.owner, Owner::Unowned);
        let _ = empty.live_spec_hash();
        assert!(!newer("abc", "1"));
        assert!(newer("10", "9"));
    }
}
