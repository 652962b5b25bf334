//! Desired Kubernetes objects (what the kinds ask for), and the manifests wiform sends
//! with server-side apply: only the fields wiform manages (name, namespace, labels, annotations).
//! Pure: no IO.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::ownership::{self, SPEC_HASH_ANNOTATION};

/// Annotation read by the workload identity webhook: the identity's client id.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// Annotation read by the workload identity webhook: the identity's tenant.
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
/// Annotation read by the workload identity webhook: projected token lifetime, seconds.
pub const TOKEN_EXPIRATION_ANNOTATION: &str =
    "azure.workload.identity/service-account-token-expiration";

/// A namespace as wiform wants it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredNamespace {
    /// The stack whose marker the namespace carries.
    pub stack: String,
    pub name: String,
}

impl DesiredNamespace {
    pub fn new(stack: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            stack: stack.into(),
            name: name.into(),
        }
    }

    /// The labels wiform sets: the ownership markers.
    pub fn labels(&self) -> BTreeMap<String, String> {
        marker_labels(&self.stack)
    }

    /// The annotations wiform sets: the spec hash.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(SPEC_HASH_ANNOTATION.to_string(), self.spec_hash())])
    }

    pub fn spec_hash(&self) -> String {
        ownership::kube_spec_hash(
            "Namespace",
            None,
            &self.name,
            &BTreeMap::new(),
            &BTreeMap::new(),
        )
    }

    /// The server-side apply body.
    pub fn manifest(&self) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(self.labels()),
                annotations: Some(self.annotations()),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// A service account as wiform wants it, with the identity's client id resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredServiceAccount {
    /// The stack whose marker the account carries.
    pub stack: String,
    pub namespace: String,
    pub name: String,
    /// The identity's client id (managed identity `clientId`, application `appId`).
    pub client_id: String,
    pub tenant_id: String,
    /// Projected token lifetime in seconds, when configured.
    pub token_expiration: Option<i64>,
    /// Extra labels from identity.toml.
    pub labels: BTreeMap<String, String>,
    /// Extra annotations from identity.toml.
    pub annotations: BTreeMap<String, String>,
}

impl DesiredServiceAccount {
    /// The labels that make up the spec (the config's extra labels), markers excluded.
    fn spec_labels(&self) -> BTreeMap<String, String> {
        self.labels
            .iter()
            .filter(|(k, _)| !ownership::is_marker_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The annotations that make up the spec: the config's extras, then wiform's own
    /// `azure.workload.identity/*` keys (which win over an extra of the same key).
    fn spec_annotations(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .annotations
            .iter()
            .filter(|(k, _)| !ownership::is_marker_key(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert(CLIENT_ID_ANNOTATION.into(), self.client_id.clone());
        out.insert(TENANT_ID_ANNOTATION.into(), self.tenant_id.clone());
        match self.token_expiration {
            Some(seconds) => {
                out.insert(TOKEN_EXPIRATION_ANNOTATION.into(), seconds.to_string());
            }
            None => {
                out.remove(TOKEN_EXPIRATION_ANNOTATION);
            }
        }
        out
    }

    /// Every label wiform sets: the spec's and the ownership markers.
    pub fn full_labels(&self) -> BTreeMap<String, String> {
        let mut out = self.spec_labels();
        out.extend(marker_labels(&self.stack));
        out
    }

    /// Every annotation wiform sets: the spec's and the spec hash.
    pub fn full_annotations(&self) -> BTreeMap<String, String> {
        let mut out = self.spec_annotations();
        out.insert(SPEC_HASH_ANNOTATION.into(), self.spec_hash());
        out
    }

    pub fn spec_hash(&self) -> String {
        ownership::kube_spec_hash(
            "ServiceAccount",
            Some(&self.namespace),
            &self.name,
            &self.spec_labels(),
            &self.spec_annotations(),
        )
    }

    /// The server-side apply body: name, namespace, labels, annotations. Nothing else, so that
    /// wiform's field manager owns only these keys.
    pub fn manifest(&self) -> ServiceAccount {
        ServiceAccount {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(self.full_labels()),
                annotations: Some(self.full_annotations()),
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

fn marker_labels(stack: &str) -> BTreeMap<String, String> {
    ownership::kube_labels(stack)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::{MANAGED_BY_LABEL, STACK_LABEL};
    use serde_json::json;

    fn account() -> DesiredServiceAccount {
        DesiredServiceAccount {
            stack: "orders".into(),
            namespace: "orders".into(),
            name: "api".into(),
            client_id: "11111111-1111-1111-1111-111111111111".into(),
            tenant_id: "22222222-2222-2222-2222-222222222222".into(),
            token_expiration: Some(3600),
            labels: BTreeMap::from([("team".into(), "orders".into())]),
            annotations: BTreeMap::from([("note".into(), "hi".into())]),
        }
    }

    #[test]
    fn service_account_manifest_has_only_managed_fields() {
        let sa = account();
        let body = serde_json::to_value(sa.manifest()).unwrap();
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {
                    "name": "api",
                    "namespace": "orders",
                    "labels": {
                        "app.kubernetes.io/managed-by": "wiform",
                        "team": "orders",
                        "wiform.io/stack": "orders",
                    },
                    "annotations": {
                        "azure.workload.identity/client-id": "11111111-1111-1111-1111-111111111111",
                        "azure.workload.identity/service-account-token-expiration": "3600",
                        "azure.workload.identity/tenant-id": "22222222-2222-2222-2222-222222222222",
                        "note": "hi",
                        "wiform.io/spec-hash": sa.spec_hash(),
                    },
                },
            })
        );
    }

    #[test]
    fn wiform_keys_win_over_extras_and_markers_stay_out_of_the_hash() {
        let mut sa = account();
        sa.token_expiration = None;
        sa.annotations
            .insert(CLIENT_ID_ANNOTATION.into(), "not-this".into());
        sa.annotations
            .insert(TOKEN_EXPIRATION_ANNOTATION.into(), "99".into());
        sa.labels.insert(MANAGED_BY_LABEL.into(), "Helm".into());
        sa.labels.insert(STACK_LABEL.into(), "other".into());
        let annotations = sa.full_annotations();
        assert_eq!(
            annotations[CLIENT_ID_ANNOTATION],
            "11111111-1111-1111-1111-111111111111"
        );
        assert!(!annotations.contains_key(TOKEN_EXPIRATION_ANNOTATION));
        let labels = sa.full_labels();
        assert_eq!(labels[MANAGED_BY_LABEL], "wiform");
        assert_eq!(labels[STACK_LABEL], "orders");
        let mut plain = account();
        plain.token_expiration = None;
        assert_eq!(sa.spec_hash(), plain.spec_hash());
    }

    #[test]
    fn the_hash_follows_every_managed_field_but_not_the_stack() {
        let base = account().spec_hash();
        let mut other = account();
        other.client_id = "33333333-3333-3333-3333-333333333333".into();
        assert_ne!(other.spec_hash(), base);
        let mut other = account();
        other.token_expiration = Some(7200);
        assert_ne!(other.spec_hash(), base);
        let mut other = account();
        other.labels.insert("x".into(), "y".into());
        assert_ne!(other.spec_hash(), base);
        let mut other = account();
        other.stack = "elsewhere".into();
        assert_eq!(other.spec_hash(), base);
        assert_eq!(account().spec_hash(), base, "stable");
    }

    #[test]
    fn namespace_manifest_carries_the_markers() {
        let ns = DesiredNamespace::new("orders", "team-a");
        let body = serde_json::to_value(ns.manifest()).unwrap();
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": "team-a",
                    "labels": {"app.kubernetes.io/managed-by": "wiform", "wiform.io/stack": "orders"},
                    "annotations": {"wiform.io/spec-hash": ns.spec_hash()},
                },
            })
        );
        assert_ne!(
            ns.spec_hash(),
            DesiredNamespace::new("orders", "team-b").spec_hash()
        );
    }
}
