//! AKS managed clusters (`Microsoft.ContainerService/managedClusters`, api-version 2025-10-01):
//! read their workload identity settings and OIDC issuer URL, turn both on, and fetch the user
//! kubeconfig that the Kubernetes provider connects with.
//!
//! Contract: `aks/stable/2025-10-01/managedClusters.json` (`ManagedClusters_Get`, `_List`,
//! `_CreateOrUpdate`, `_ListClusterUserCredentials`), the AKS docs "Create an OpenID Connect
//! provider on AKS" (the issuer cannot be disabled once on) and "Use eTags in AKS", and fact sheet
//! §4. wiform never creates or deletes clusters: it observes them, and at most turns on the OIDC
//! issuer and workload identity.

use std::fmt;

use reqwest::Method;
use serde::Serialize;
use serde_json::{Map, Value};

use super::AzureProvider;
use super::client::Request;
use super::error::AzureError;
use crate::providers::kube::KubeconfigSource;

/// The stable AKS API (fact sheet §4); `oidcIssuerProfile.issuerURL` needs 2022-09-01 or later.
pub const API_VERSION: &str = "2025-10-01";

/// Tries of the GET → PUT `If-Match` cycle when the cluster changes in between (412, or AKS's
/// 409 `EtagMismatch`): the first and two more.
const WRITE_ATTEMPTS: u32 = 3;

/// An AKS cluster as wiform sees it: where it is, whether the OIDC issuer and workload identity
/// are on, and the issuer URL (an output other resources depend on).
///
/// ARM compares ids, names, resource groups and locations without regard to case, so those are
/// lower-cased; the issuer URL is kept exactly as AKS gives it (a federated credential's issuer
/// must match the token's `iss` byte for byte, trailing slash included).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveCluster {
    pub id: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    /// `Succeeded`, `Updating`, `Creating`, … as AKS reports it.
    pub provisioning_state: String,
    pub oidc_issuer_enabled: bool,
    pub issuer_url: Option<String>,
    pub workload_identity_enabled: bool,
    /// The cluster's `eTag`, for `If-Match`.
    pub etag: Option<String>,
}

impl LiveCluster {
    /// Is this the cluster at `subscription`/`resource_group`/`name` (any case)?
    pub fn is(&self, subscription: &str, resource_group: &str, name: &str) -> bool {
        self.subscription_id.eq_ignore_ascii_case(subscription)
            && self.resource_group.eq_ignore_ascii_case(resource_group)
            && self.name.eq_ignore_ascii_case(name)
    }

    /// Both settings on and the issuer URL known: nothing for wiform to write.
    pub fn workload_identity_ready(&self) -> bool {
        self.oidc_issuer_enabled && self.workload_identity_enabled && self.issuer_url.is_some()
    }

    /// `rg/name`, for actions and messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.resource_group, self.name)
    }

    fn path(&self) -> String {
        cluster_path(&self.subscription_id, &self.resource_group, &self.name)
    }
}

/// Kubeconfig YAML text from `listClusterUserCredential`. It holds a credential (a token or a
/// client key), so its `Debug` shows only its length and nothing logs it.
#[derive(Clone, PartialEq, Eq)]
pub struct KubeconfigYaml(String);

impl KubeconfigYaml {
    /// The YAML text, for the Kubernetes provider. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The source the Kubernetes provider loads (`context` `None`: the kubeconfig's
    /// current-context, which AKS sets to the cluster).
    pub fn into_source(self, context: Option<String>) -> KubeconfigSource {
        KubeconfigSource::Yaml {
            text: self.0,
            context,
        }
    }
}

impl fmt::Debug for KubeconfigYaml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KubeconfigYaml(<redacted, {} bytes>)", self.0.len())
    }
}

fn cluster_path(subscription: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{name}?api-version={API_VERSION}"
    )
}

impl AzureProvider {
    /// One cluster, or `None` when it (or its resource group) does not exist.
    pub async fn get_cluster(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Option<LiveCluster>, AzureError> {
        let action = format!("read AKS cluster {resource_group}/{name}");
        let request = Request::arm(
            Method::GET,
            cluster_path(subscription, resource_group, name),
        )
        .action(&action);
        let Some(response) = self.client.send_optional(&request).await? else {
            return Ok(None);
        };
        live_cluster(&response.value())
            .map(Some)
            .map_err(|m| AzureError::invalid_response(&action, m, response.request_id.clone()))
    }

    /// Every cluster of a subscription (`ManagedClusters_List`, paged): the planner's one read
    /// of clusters per subscription. List items are whole `ManagedCluster`s, so they carry
    /// `oidcIssuerProfile` and `securityProfile` like a GET does.
    pub async fn list_clusters(&self, subscription: &str) -> Result<Vec<LiveCluster>, AzureError> {
        let action = format!("list AKS clusters in subscription {subscription}");
        let request = Request::arm(
            Method::GET,
            format!(
                "/subscriptions/{subscription}/providers/Microsoft.ContainerService/managedClusters?api-version={API_VERSION}"
            ),
        )
        .action(&action);
        let items: Vec<Value> = self.client.list(&request).await?;
        items
            .iter()
            .map(|item| {
                live_cluster(item).map_err(|m| AzureError::invalid_response(&action, m, None))
            })
            .collect()
    }

    /// Turns on the OIDC issuer and workload identity and waits for AKS to finish; the result
    /// carries the issuer URL.
    ///
    /// There is no dedicated action and PATCH changes only tags (fact sheet §4), so this reads
    /// the whole cluster, sets `properties.oidcIssuerProfile.enabled` and
    /// `properties.securityProfile.workloadIdentity.enabled` to true, and PUTs everything else
    /// back as it came, with `If-Match` on the eTag just read, then polls the long-running
    /// operation (the client reports each poll as `Event::Polling`, naming the cluster). Read-only
    /// fields are sent back unchanged: ARM resource providers ignore them in a PUT, and the
    /// sandbox recomputes them.
    ///
    /// When the cluster changes between the read and the write (412, or AKS's 409
    /// `EtagMismatch`), it is read again and the write retried: three tries in all.
    /// A 409 `OperationNotAllowed` (another operation running) is waited out by the client.
    ///
    /// A cluster already showing both settings and its issuer URL is returned as it is, without
    /// a request. Nothing here ever turns either setting off: the issuer cannot be disabled once
    /// on (AKS OIDC doc).
    pub async fn enable_workload_identity(
        &self,
        cluster: &LiveCluster,
    ) -> Result<LiveCluster, AzureError> {
        if cluster.workload_identity_ready() {
            return Ok(cluster.clone());
        }
        let action = format!(
            "enable workload identity on AKS cluster {}",
            cluster.label()
        );
        let read_action = format!("read AKS cluster {}", cluster.label());
        let path = cluster.path();
        let mut attempt = 1;
        loop {
            let read = self
                .client
                .send(&Request::arm(Method::GET, &path).action(&read_action))
                .await?;
            let current = read.value();
            let live = live_cluster(&current).map_err(|m| {
                AzureError::invalid_response(&read_action, m, read.request_id.clone())
            })?;
            // Someone else turned both on since the cluster was observed.
            if live.workload_identity_ready() {
                return Ok(live);
            }
            let body = with_workload_identity(current).map_err(|m| {
                AzureError::invalid_response(&read_action, m, read.request_id.clone())
            })?;
            let mut put = Request::arm(Method::PUT, &path).json(body).action(&action);
            if let Some(etag) = &live.etag {
                put = put.header("If-Match", etag.clone());
            }
            let done = match self.client.send_long_running(&put).await {
                Ok(done) => done,
                Err(e) if changed_meanwhile(&e) && attempt < WRITE_ATTEMPTS => {
                    attempt += 1;
                    tracing::info!(
                        "{action}: the cluster changed since it was read ({}), reading it again \
                         (attempt {attempt} of {WRITE_ATTEMPTS})",
                        e.failure()
                            .map(|f| f.code.as_str())
                            .unwrap_or("eTag mismatch")
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            let updated = live_cluster(&done.value())
                .map_err(|m| AzureError::invalid_response(&action, m, done.request_id.clone()))?;
            if updated.issuer_url.is_none() {
                return Err(AzureError::invalid_response(
                    &action,
                    "the cluster reports no OIDC issuer URL after enabling the issuer",
                    done.request_id,
                ));
            }
            return Ok(updated);
        }
    }

    /// The cluster's user kubeconfig (`POST …/listClusterUserCredential`), decoded from the
    /// base64 of `kubeconfigs[0].value` (`CredentialResults`). For Entra-integrated clusters
    /// AKS answers the `exec` (kubelogin) format by default on Kubernetes 1.24 and later.
    pub async fn user_kubeconfig(
        &self,
        cluster: &LiveCluster,
    ) -> Result<KubeconfigYaml, AzureError> {
        self.user_kubeconfig_of(
            &cluster.subscription_id,
            &cluster.resource_group,
            &cluster.name,
        )
        .await
    }

    /// [`AzureProvider::user_kubeconfig`] by name, without reading the cluster first (so that
    /// connecting to a cluster can run alongside observing it).
    pub async fn user_kubeconfig_of(
        &self,
        subscription: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<KubeconfigYaml, AzureError> {
        let action = format!("read the user kubeconfig of AKS cluster {resource_group}/{name}");
        let path = format!(
            "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{name}/listClusterUserCredential?api-version={API_VERSION}"
        );
        let response = self
            .client
            .send(&Request::arm(Method::POST, path).action(&action))
            .await?;
        kubeconfig_from_credentials(&response.body)
            .map_err(|m| AzureError::invalid_response(&action, m, response.request_id.clone()))
    }
}

/// A write refused because the cluster changed after it was read: 412 on `If-Match` ("Use eTags
/// in AKS"), or the 409 `EtagMismatch` seen in real AKS logs (fact sheet §4).
fn changed_meanwhile(error: &AzureError) -> bool {
    error.status() == Some(412) || error.is_code("EtagMismatch")
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}`
/// → (s, rg, name), lower-cased.
fn parse_cluster_id(id: &str) -> Option<(String, String, String)> {
    let lower = id.to_ascii_lowercase();
    let parts: Vec<&str> = lower.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        [
            "subscriptions",
            subscription,
            "resourcegroups",
            resource_group,
            "providers",
            "microsoft.containerservice",
            "managedclusters",
            name,
        ] if !subscription.is_empty() && !resource_group.is_empty() && !name.is_empty() => Some((
            subscription.to_string(),
            resource_group.to_string(),
            name.to_string(),
        )),
        _ => None,
    }
}

/// A `ManagedCluster` (GET, list item, or the result of a PUT) → [`LiveCluster`].
pub fn live_cluster(value: &Value) -> Result<LiveCluster, String> {
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let flag = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let id = text("/id").ok_or("a managed cluster without an `id`")?;
    let (subscription_id, resource_group, name) =
        parse_cluster_id(id).ok_or_else(|| format!("`{id}` is not the id of a managed cluster"))?;
    Ok(LiveCluster {
        id: id.to_ascii_lowercase(),
        subscription_id,
        resource_group,
        name,
        location: text("/location").unwrap_or_default().to_ascii_lowercase(),
        provisioning_state: text("/properties/provisioningState")
            .unwrap_or("Succeeded")
            .to_string(),
        oidc_issuer_enabled: flag("/properties/oidcIssuerProfile/enabled"),
        issuer_url: text("/properties/oidcIssuerProfile/issuerURL").map(str::to_string),
        workload_identity_enabled: flag("/properties/securityProfile/workloadIdentity/enabled"),
        // AKS spells it `eTag`; other ARM resources `etag`.
        etag: text("/eTag").or_else(|| text("/etag")).map(str::to_string),
    })
}

/// The member `key` of `map` as an object, made one when absent, null or not an object.
fn object_member<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
) -> Option<&'a mut Map<String, Value>> {
    let slot = map.entry(key.to_string()).or_insert(Value::Null);
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The PUT body that turns both settings on: the cluster as read, with
/// `properties.oidcIssuerProfile.enabled` and `properties.securityProfile.workloadIdentity.enabled`
/// set to true (their objects made when absent), everything else as it came. It only ever sets
/// `true`.
pub fn with_workload_identity(mut cluster: Value) -> Result<Value, String> {
    let Value::Object(root) = &mut cluster else {
        return Err("the managed cluster is not a JSON object".into());
    };
    if root
        .get("properties")
        .is_some_and(|p| !p.is_object() && !p.is_null())
    {
        return Err("the managed cluster's `properties` is not an object".into());
    }
    let not_object = || "a profile of the managed cluster is not an object".to_string();
    let properties = object_member(root, "properties").ok_or_else(not_object)?;
    object_member(properties, "oidcIssuerProfile")
        .ok_or_else(not_object)?
        .insert("enabled".into(), Value::Bool(true));
    let security = object_member(properties, "securityProfile").ok_or_else(not_object)?;
    object_member(security, "workloadIdentity")
        .ok_or_else(not_object)?
        .insert("enabled".into(), Value::Bool(true));
    Ok(cluster)
}

/// `CredentialResults` → the first kubeconfig, base64-decoded. Error messages never quote the
/// answer: it is a credential.
pub fn kubeconfig_from_credentials(body: &[u8]) -> Result<KubeconfigYaml, String> {
    let results: Value = serde_json::from_slice(body)
        .map_err(|_| "the credential answer is not JSON".to_string())?;
    let encoded = results
        .pointer("/kubeconfigs/0/value")
        .and_then(Value::as_str)
        .ok_or("the credential answer has no `kubeconfigs[0].value`")?;
    let bytes = azure_core::base64::decode(encoded.trim())
        .map_err(|_| "the kubeconfig is not valid base64".to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "the kubeconfig is not UTF-8".to_string())?;
    if text.trim().is_empty() {
        return Err("the kubeconfig is empty".into());
    }
    Ok(KubeconfigYaml(text))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// `ManagedClustersGet.json`, trimmed to the fields that matter plus some to keep.
    fn example() -> Value {
        json!({
            "id": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/RG1/providers/Microsoft.ContainerService/managedClusters/Clustername1",
            "name": "Clustername1",
            "type": "Microsoft.ContainerService/ManagedClusters",
            "location": "WestEurope",
            "eTag": "beywbwei",
            "tags": {"team": "a"},
            "properties": {
                "provisioningState": "Succeeded",
                "kubernetesVersion": "1.30",
                "oidcIssuerProfile": {
                    "enabled": true,
                    "issuerURL": "https://westeurope.oic.prod-aks.azure.com/Tenant/Guid/"
                },
                "securityProfile": {"workloadIdentity": {"enabled": true}, "defender": {"x": 1}},
                "agentPoolProfiles": [{"name": "nodepool1", "count": 3}]
            }
        })
    }

    #[test]
    fn a_cluster_reads_normalised_with_the_issuer_kept_exactly() {
        let live = live_cluster(&example()).unwrap();
        assert_eq!(
            live,
            LiveCluster {
                id: "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg1/providers/microsoft.containerservice/managedclusters/clustername1".into(),
                subscription_id: "00000000-0000-0000-0000-000000000000".into(),
                resource_group: "rg1".into(),
                name: "clustername1".into(),
                location: "westeurope".into(),
                provisioning_state: "Succeeded".into(),
                oidc_issuer_enabled: true,
                issuer_url: Some("https://westeurope.oic.prod-aks.azure.com/Tenant/Guid/".into()),
                workload_identity_enabled: true,
                etag: Some("beywbwei".into()),
            }
        );
        assert!(live.workload_identity_ready());
        assert!(live.is(
            "00000000-0000-0000-0000-000000000000",
            "Rg1",
            "CLUSTERNAME1"
        ));
        assert!(!live.is(
            "00000000-0000-0000-0000-000000000000",
            "rg2",
            "clustername1"
        ));
        assert_eq!(live.label(), "rg1/clustername1");
    }

    #[test]
    fn absent_profiles_read_as_off() {
        let mut cluster = example();
        let props = cluster["properties"].as_object_mut().unwrap();
        props.remove("oidcIssuerProfile");
        props.remove("securityProfile");
        props.remove("provisioningState");
        cluster.as_object_mut().unwrap().remove("eTag");
        let live = live_cluster(&cluster).unwrap();
        assert!(!live.oidc_issuer_enabled);
        assert!(!live.workload_identity_enabled);
        assert_eq!(live.issuer_url, None);
        assert_eq!(live.etag, None);
        assert_eq!(live.provisioning_state, "Succeeded");
        assert!(!live.workload_identity_ready());

        // An empty issuer URL is no issuer URL; `etag` is read when `eTag` is absent.
        cluster["properties"]["oidcIssuerProfile"] = json!({"enabled": true, "issuerURL": ""});
        cluster["etag"] = json!("e2");
        let live = live_cluster(&cluster).unwrap();
        assert!(live.oidc_issuer_enabled);
        assert_eq!(live.issuer_url, None);
        assert_eq!(live.etag.as_deref(), Some("e2"));
    }

    #[test]
    fn ids_that_are_not_clusters_are_refused() {
        for id in [
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x",
            "/subscriptions/s/resourceGroups/rg",
            "",
        ] {
            let mut cluster = example();
            cluster["id"] = json!(id);
            assert!(live_cluster(&cluster).is_err(), "{id}");
        }
        assert!(live_cluster(&json!({"name": "x"})).is_err());
    }

    #[test]
    fn the_put_body_turns_both_on_and_keeps_everything_else() {
        let mut cluster = example();
        cluster["properties"]["oidcIssuerProfile"] = json!({"enabled": false});
        cluster["properties"]["securityProfile"] =
            json!({"workloadIdentity": {"enabled": false}, "defender": {"x": 1}});
        let body = with_workload_identity(cluster.clone()).unwrap();
        assert_eq!(body["properties"]["oidcIssuerProfile"]["enabled"], true);
        assert_eq!(
            body["properties"]["securityProfile"]["workloadIdentity"]["enabled"],
            true
        );
        // Everything else, sibling profiles included, is as it came.
        let mut expected = cluster;
        expected["properties"]["oidcIssuerProfile"]["enabled"] = json!(true);
        expected["properties"]["securityProfile"]["workloadIdentity"]["enabled"] = json!(true);
        assert_eq!(body, expected);
    }

    #[test]
    fn the_put_body_makes_missing_profiles() {
        let body = with_workload_identity(json!({"id": "x", "location": "l"})).unwrap();
        assert_eq!(
            body,
            json!({"id": "x", "location": "l", "properties": {
                "oidcIssuerProfile": {"enabled": true},
                "securityProfile": {"workloadIdentity": {"enabled": true}}
            }})
        );
        let body = with_workload_identity(json!({"properties": {
            "oidcIssuerProfile": null, "securityProfile": {"workloadIdentity": null}
        }}))
        .unwrap();
        assert_eq!(
            body["properties"]["oidcIssuerProfile"],
            json!({"enabled": true})
        );
        assert_eq!(
            body["properties"]["securityProfile"],
            json!({"workloadIdentity": {"enabled": true}})
        );
        // An issuer already on keeps its URL in the body.
        let body = with_workload_identity(example()).unwrap();
        assert_eq!(body, example());
        assert!(with_workload_identity(json!([1])).is_err());
        assert!(with_workload_identity(json!({"properties": "x"})).is_err());
    }

    #[test]
    fn credentials_decode_to_yaml_and_never_show_it() {
        let yaml = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: secret-token-value}\n";
        // Standard base64, as in `ManagedClustersListClusterUserCredentials.json`.
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, yaml);
        let body = json!({"kubeconfigs": [{"name": "clusterUser", "value": encoded}]});
        let kubeconfig = kubeconfig_from_credentials(body.to_string().as_bytes()).unwrap();
        assert_eq!(kubeconfig.expose(), yaml);
        let shown = format!("{kubeconfig:?}");
        assert!(!shown.contains("secret-token-value"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        match kubeconfig.into_source(Some("c".into())) {
            KubeconfigSource::Yaml { text, context } => {
                assert_eq!(text, yaml);
                assert_eq!(context.as_deref(), Some("c"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broken_credentials_are_reported_without_their_content() {
        for body in [
            "not json secret-token-value".to_string(),
            json!({"kubeconfigs": []}).to_string(),
            json!({"kubeconfigs": [{"name": "u", "value": "***secret-token-value***"}]})
                .to_string(),
            json!({"kubeconfigs": [{"name": "u", "value": "//79"}]}).to_string(),
            json!({"kubeconfigs": [{"name": "u", "value": ""}]}).to_string(),
        ] {
            let message = kubeconfig_from_credentials(body.as_bytes()).unwrap_err();
            assert!(!message.contains("secret-token-value"), "{message}");
        }
    }

    #[test]
    fn etag_conflicts_are_recognised() {
        use crate::providers::azure::error::ApiFailure;
        let failure =
            |status, body: &[u8]| AzureError::api("enable", ApiFailure::parse(status, body, None));
        assert!(changed_meanwhile(&failure(
            412,
            br#"{"error":{"code":"PreconditionFailed","message":"m"}}"#
        )));
        assert!(changed_meanwhile(&failure(
            409,
            br#"{"code":"EtagMismatch","message":"Etag mismatched"}"#
        )));
        assert!(!changed_meanwhile(&failure(
            409,
            br#"{"code":"OperationNotAllowed","message":"m"}"#
        )));
        assert!(!changed_meanwhile(&failure(
            400,
            br#"{"error":{"code":"InvalidParameter","message":"m"}}"#
        )));
    }
}
