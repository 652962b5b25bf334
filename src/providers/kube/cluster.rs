//! [`KubeCluster`]: the [`ClusterApi`] over kube-rs. The only file of the provider that does IO.

use std::collections::BTreeSet;
use std::fmt::Debug;

use ::kube::api::{
    Api, DeleteParams, ListParams, ObjectList, Patch, PatchParams, PostParams, Preconditions,
};
use ::kube::core::NamespaceResourceScope;
use futures::future::{join_all, try_join_all};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

use super::connect::{KubeconfigSource, LoadedConfig, load_config};
use super::desired::{DesiredNamespace, DesiredServiceAccount};
use super::error::{Ctx, KubeError, KubeErrorKind, ObjectRef, Op};
use super::live::{
    ClusterObservation, FIELD_MANAGER, ListVersions, LiveNamespace, LiveServiceAccount,
};
use super::token::{IssuerDiscovery, ServiceAccountToken, TokenRequestAnswer};
use super::{ClusterApi, Deletion};
use crate::ownership::{MANAGED_BY, MANAGED_BY_LABEL, STACK_LABEL};

/// The pod label the workload identity webhook looks for.
pub const USE_LABEL: &str = "azure.workload.identity/use";

/// At most this many list calls in flight per cluster while observing.
const OBSERVE_CONCURRENCY: usize = 16;

/// Namespaces wiform never deletes, whatever their labels say.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// What `delete_namespace` lists (metadata only) to make sure a namespace holds nothing wiform
/// does not own. Ignored: the `default` service account, service accounts of this stack (and
/// their legacy token secrets), and the `kube-root-ca.crt` config map, which Kubernetes puts in
/// every namespace.
pub const NAMESPACE_CONTENT_KINDS: &[&str] = &[
    "serviceaccounts",
    "pods",
    "services",
    "configmaps",
    "secrets",
    "persistentvolumeclaims",
    "deployments",
    "statefulsets",
    "cronjobs",
];

/// How many foreign objects a [`KubeErrorKind::NamespaceNotEmpty`] names before "and N more".
const FOREIGN_SHOWN: usize = 8;

/// One Kubernetes cluster: a kube-rs client and what error messages need.
#[derive(Clone)]
pub struct KubeCluster {
    name: String,
    server: String,
    credentials: String,
    client: ::kube::Client,
    /// The same server without credentials, for the OIDC discovery document when the user may
    /// not read it (as Entra reads it: anonymously).
    anonymous: Option<::kube::Client>,
}

impl Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl KubeCluster {
    /// Loads the kubeconfig and builds the client of cluster `name` (its key in identity.toml).
    pub async fn connect(name: &str, source: &KubeconfigSource) -> Result<Self, KubeError> {
        let loaded = load_config(name, source).await?;
        Self::from_config(name, loaded)
    }

    /// Builds the client from a loaded kubeconfig.
    pub fn from_config(name: &str, loaded: LoadedConfig) -> Result<Self, KubeError> {
        let mut anonymous = loaded.config.clone();
        anonymous.auth_info = Default::default();
        let client = ::kube::Client::try_from(loaded.config).map_err(|source| -> KubeError {
            KubeErrorKind::Client {
                cluster: name.into(),
                server: loaded.server.clone(),
                source: Box::new(source),
            }
            .into()
        })?;
        let mut cluster = Self::from_client(name, client, loaded.server, loaded.credentials);
        cluster.anonymous = ::kube::Client::try_from(anonymous).ok();
        Ok(cluster)
    }

    /// Wraps a client built elsewhere (with extra tower layers, e.g. to count requests).
    /// `server` and `credentials` (`context "x"`) are only used in error messages.
    pub fn from_client(
        name: &str,
        client: ::kube::Client,
        server: impl Into<String>,
        credentials: impl Into<String>,
    ) -> Self {
        KubeCluster {
            name: name.into(),
            server: server.into(),
            credentials: credentials.into(),
            client,
            anonymous: None,
        }
    }

    /// Adds a client without credentials for the same server, tried for the OIDC discovery
    /// document when the authenticated request is refused (401, 403).
    pub fn with_anonymous(mut self, client: ::kube::Client) -> Self {
        self.anonymous = Some(client);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn client(&self) -> &::kube::Client {
        &self.client
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            cluster: &self.name,
            server: &self.server,
            credentials: &self.credentials,
        }
    }

    fn invalid(&self, what: ObjectRef, reason: impl Into<String>) -> KubeError {
        KubeErrorKind::InvalidRequest {
            cluster: self.name.clone(),
            what,
            reason: reason.into(),
        }
        .into()
    }

    /// The metadata of every `K` in `namespace` (a metadata-only list: no secret values, no
    /// pod specs).
    async fn list_meta<K>(
        &self,
        namespace: &str,
        resource: &'static str,
    ) -> Result<(&'static str, Vec<ObjectMeta>), KubeError>
    where
        K: ::kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let op = Op::new("list", ObjectRef::list(resource, Some(namespace), None));
        let params = ListParams::default();
        let list = match retrying(|| api.list_metadata(&params)).await {
            Ok(list) => list,
            // A list answered 404 is a kind this API server does not serve (listing in a
            // namespace that does not exist answers an empty list): it holds none.
            Err(::kube::Error::Api(status)) if status.code == 404 => {
                return Ok((resource, Vec::new()));
            }
            Err(e) => return Err(self.ctx().error(&op, e)),
        };
        Ok((
            resource,
            list.items.into_iter().map(|i| i.metadata).collect(),
        ))
    }

    /// The pods that run as `service_account` in `namespace` (one metadata list with the field
    /// selector `spec.serviceAccountName`), by name, each with whether it carries the label
    /// `azure.workload.identity/use: "true"` without which the webhook injects no token.
    pub async fn pods_running_as(
        &self,
        namespace: &str,
        service_account: &str,
    ) -> Result<Vec<(String, bool)>, KubeError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("spec.serviceAccountName={service_account}");
        let op = Op::new("list", ObjectRef::list("pods", Some(namespace), None));
        let params = ListParams::default().fields(&selector);
        let list = match retrying(|| api.list_metadata(&params)).await {
            Ok(list) => list,
            Err(::kube::Error::Api(status)) if status.code == 404 => return Ok(Vec::new()),
            Err(e) => return Err(self.ctx().error(&op, e)),
        };
        Ok(list
            .items
            .into_iter()
            .map(|pod| {
                let labeled = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(USE_LABEL))
                    .is_some_and(|v| v == "true");
                (pod.metadata.name.unwrap_or_default(), labeled)
            })
            .collect())
    }

    /// What `namespace` holds of [`NAMESPACE_CONTENT_KINDS`], listed concurrently.
    async fn namespace_contents(
        &self,
        namespace: &str,
    ) -> Result<Vec<(&'static str, Vec<ObjectMeta>)>, KubeError> {
        let lists: [Listing<'_>; 9] = [
            Box::pin(self.list_meta::<ServiceAccount>(namespace, "serviceaccounts")),
            Box::pin(self.list_meta::<Pod>(namespace, "pods")),
            Box::pin(self.list_meta::<Service>(namespace, "services")),
            Box::pin(self.list_meta::<ConfigMap>(namespace, "configmaps")),
            Box::pin(self.list_meta::<Secret>(namespace, "secrets")),
            Box::pin(self.list_meta::<PersistentVolumeClaim>(namespace, "persistentvolumeclaims")),
            Box::pin(self.list_meta::<Deployment>(namespace, "deployments")),
            Box::pin(self.list_meta::<StatefulSet>(namespace, "statefulsets")),
            Box::pin(self.list_meta::<CronJob>(namespace, "cronjobs")),
        ];
        join_all(lists).await.into_iter().collect()
    }
}

/// One metadata list of `namespace_contents`, boxed so that lists of different kinds run
/// together.
type Listing<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<(&'static str, Vec<ObjectMeta>), KubeError>>
            + Send
            + 'a,
    >,
>;

/// The objects of a namespace that wiform does not own, as `pods "web-1"`. Not counted: the
/// `default` service account and `stack`'s own service accounts (deleted with the namespace),
/// their legacy token secrets, and the `kube-root-ca.crt` config map Kubernetes puts in every
/// namespace.
pub fn foreign_objects(stack: &str, contents: &[(&str, Vec<ObjectMeta>)]) -> Vec<String> {
    let name = |meta: &ObjectMeta| meta.name.clone().unwrap_or_default();
    let ours: BTreeSet<String> = contents
        .iter()
        .filter(|(resource, _)| *resource == "serviceaccounts")
        .flat_map(|(_, items)| items)
        .filter(|meta| {
            let labels = meta.labels.clone().unwrap_or_default();
            meta.name.as_deref() == Some("default")
                || crate::ownership::read_kube_marker(&labels, &Default::default()).is_stack(stack)
        })
        .map(name)
        .collect();
    let mut foreign = Vec::new();
    for (resource, items) in contents {
        for meta in items {
            let n = name(meta);
            let ignored = match *resource {
                "serviceaccounts" => ours.contains(&n),
                "configmaps" => n == "kube-root-ca.crt",
                "secrets" => meta
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kubernetes.io/service-account.name"))
                    .is_some_and(|account| ours.contains(account)),
                _ => false,
            };
            if !ignored {
                foreign.push(format!("{resource} \"{n}\""));
            }
        }
    }
    foreign
}

fn list_version<T: Clone>(list: &ObjectList<T>) -> String {
    list.metadata.resource_version.clone().unwrap_or_default()
}

/// The label selector of a stack's objects.
pub fn stack_selector(stack: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{STACK_LABEL}={stack}")
}

impl ClusterApi for KubeCluster {
    fn cluster(&self) -> &str {
        &self.name
    }

    async fn observe(
        &self,
        stack: &str,
        namespaces: &[String],
    ) -> Result<ClusterObservation, KubeError> {
        let named: Vec<String> = namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let selector = stack_selector(stack);
        if stack.is_empty() {
            return Err(self.invalid(
                ObjectRef::list("serviceaccounts", None, Some(&selector)),
                "the stack needs a name",
            ));
        }
        let limit = Semaphore::new(OBSERVE_CONCURRENCY);
        let ctx = self.ctx();

        let all_namespaces = async {
            let _permit = limit.acquire().await;
            let op = Op::new("list", ObjectRef::list("namespaces", None, None));
            let api = Api::<Namespace>::all(self.client.clone());
            let params = ListParams::default();
            retrying(|| api.list(&params))
                .await
                .map_err(|e| ctx.error(&op, e))
        };
        let owned_accounts = async {
            let _permit = limit.acquire().await;
            let op = Op::new(
                "list",
                ObjectRef::list("serviceaccounts", None, Some(&selector)),
            );
            let params = ListParams::default().labels(&selector);
            let api = Api::<ServiceAccount>::all(self.client.clone());
            retrying(|| api.list(&params))
                .await
                .map_err(|e| ctx.error(&op, e))
        };
        let per_namespace = try_join_all(named.iter().map(|namespace| {
            let (limit, ctx) = (&limit, &ctx);
            async move {
                let _permit = limit.acquire().await;
                let op = Op::new(
                    "list",
                    ObjectRef::list("serviceaccounts", Some(namespace), None),
                );
                let api = Api::<ServiceAccount>::namespaced(self.client.clone(), namespace);
                let params = ListParams::default();
                retrying(|| api.list(&params))
                    .await
                    .map(|list| (namespace.clone(), list))
                    .map_err(|e| ctx.error(&op, e))
            }
        }));
        let (all_namespaces, owned_accounts, per_namespace) =
            tokio::try_join!(all_namespaces, owned_accounts, per_namespace)?;

        let versions = ListVersions {
            namespaces: list_version(&all_namespaces),
            owned_service_accounts: list_version(&owned_accounts),
            service_accounts_in: per_namespace
                .iter()
                .map(|(ns, list)| (ns.clone(), list_version(list)))
                .collect(),
        };
        let accounts = owned_accounts
            .items
            .into_iter()
            .chain(per_namespace.into_iter().flat_map(|(_, list)| list.items));
        Ok(ClusterObservation::assemble(
            &self.name,
            stack,
            &named,
            &all_namespaces.items,
            accounts,
            versions,
        ))
    }

    async fn apply_namespace(
        &self,
        desired: &DesiredNamespace,
        force: bool,
    ) -> Result<LiveNamespace, KubeError> {
        let what = ObjectRef::object("namespaces", None, &desired.name);
        if desired.name.is_empty() || desired.stack.is_empty() {
            return Err(self.invalid(what, "a namespace needs a name and a stack"));
        }
        let op = Op::new("patch", what);
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        let manifest = desired.manifest();
        let api = Api::<Namespace>::all(self.client.clone());
        let patch = Patch::Apply(&manifest);
        let applied = retrying(|| api.patch(&desired.name, &params, &patch))
            .await
            .map_err(|e| self.ctx().error(&op, e))?;
        Ok(LiveNamespace::from_api(&applied))
    }

    async fn apply_service_account(
        &self,
        desired: &DesiredServiceAccount,
        force: bool,
    ) -> Result<LiveServiceAccount, KubeError> {
        let what = ObjectRef::object("serviceaccounts", Some(&desired.namespace), &desired.name);
        if desired.name.is_empty() || desired.namespace.is_empty() || desired.stack.is_empty() {
            return Err(self.invalid(
                what,
                "a service account needs a namespace, a name and a stack",
            ));
        }
        let op = Op::new("patch", what);
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if force {
            params = params.force();
        }
        let manifest = desired.manifest();
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), &desired.namespace);
        let patch = Patch::Apply(&manifest);
        let applied = retrying(|| api.patch(&desired.name, &params, &patch))
            .await
            .map_err(|e| self.ctx().error(&op, e))?;
        Ok(LiveServiceAccount::from_api(&applied))
    }

    async fn delete_service_account(
        &self,
        stack: &str,
        live: &LiveServiceAccount,
    ) -> Result<Deletion, KubeError> {
        let what = ObjectRef::object("serviceaccounts", Some(&live.namespace), live.name());
        if !live.meta.owned_by(stack) {
            return Err(KubeErrorKind::NotOwned {
                cluster: self.name.clone(),
                action: "delete".into(),
                what,
                stack: stack.into(),
                owner: live.meta.owner.clone(),
            }
            .into());
        }
        if live.name().is_empty() || live.namespace.is_empty() {
            return Err(self.invalid(what, "a service account needs a namespace and a name"));
        }
        let api = Api::<ServiceAccount>::namespaced(self.client.clone(), &live.namespace);
        delete(
            self,
            &api,
            live.name(),
            &live.meta.uid,
            &live.meta.resource_version,
            what,
        )
        .await
    }

    async fn delete_namespace(
        &self,
        stack: &str,
        live: &LiveNamespace,
    ) -> Result<Deletion, KubeError> {
        let name = live.name();
        let what = ObjectRef::object("namespaces", None, name);
        if !live.meta.owned_by(stack) {
            return Err(KubeErrorKind::NotOwned {
                cluster: self.name.clone(),
                action: "delete".into(),
                what,
                stack: stack.into(),
                owner: live.meta.owner.clone(),
            }
            .into());
        }
        if SYSTEM_NAMESPACES.contains(&name) {
            return Err(KubeErrorKind::ProtectedNamespace {
                cluster: self.name.clone(),
                namespace: name.into(),
            }
            .into());
        }
        if name.is_empty() {
            return Err(self.invalid(what, "a namespace needs a name"));
        }
        if live.meta.terminating {
            return Ok(Deletion::AlreadyGone);
        }
        let contents = self.namespace_contents(name).await?;
        let mut foreign = foreign_objects(stack, &contents);
        if !foreign.is_empty() {
            if foreign.len() > FOREIGN_SHOWN {
                let more = foreign.len() - FOREIGN_SHOWN;
                foreign.truncate(FOREIGN_SHOWN);
                foreign.push(format!("and {more} more"));
            }
            return Err(KubeErrorKind::NamespaceNotEmpty {
                cluster: self.name.clone(),
                namespace: name.into(),
                foreign,
            }
            .into());
        }
        let api = Api::<Namespace>::all(self.client.clone());
        delete(
            self,
            &api,
            name,
            &live.meta.uid,
            &live.meta.resource_version,
            what,
        )
        .await
    }

    async fn issuer(&self) -> Result<IssuerDiscovery, KubeError> {
        const PATH: &str = "/.well-known/openid-configuration";
        let op = Op::new("get", ObjectRef::Url(PATH.into()));
        let request = || {
            http::Request::get(PATH)
                .header(http::header::ACCEPT, "application/json")
                .body(Vec::new())
                .map_err(|e| self.invalid(op.what.clone(), e.to_string()))
        };
        let body = match self.client.request_text(request()?).await {
            Ok(body) => body,
            Err(::kube::Error::Api(status))
                if matches!(status.code, 401 | 403) && self.anonymous.is_some() =>
            {
                // Users who may write service accounts may still lack the right to read the
                // discovery document; clusters usually let anyone read it.
                let refused = self.ctx().error(&op, ::kube::Error::Api(status));
                match &self.anonymous {
                    Some(anonymous) => anonymous
                        .request_text(request()?)
                        .await
                        .map_err(|_| refused)?,
                    None => return Err(refused),
                }
            }
            Err(e) => return Err(self.ctx().error(&op, e)),
        };
        IssuerDiscovery::parse(&body).map_err(|reason| {
            KubeErrorKind::BadDiscovery {
                cluster: self.name.clone(),
                server: self.server.clone(),
                reason,
            }
            .into()
        })
    }

    async fn request_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[String],
        expiration_seconds: i64,
    ) -> Result<ServiceAccountToken, KubeError> {
        let what = ObjectRef::object("serviceaccounts/token", Some(namespace), name);
        if namespace.is_empty() || name.is_empty() {
            return Err(self.invalid(what, "a service account needs a namespace and a name"));
        }
        if audiences.is_empty() || audiences.iter().any(String::is_empty) {
            return Err(self.invalid(what, "name at least one audience, none empty"));
        }
        if !(600..=u32::MAX as i64).contains(&expiration_seconds) {
            return Err(self.invalid(
                what,
                format!(
                    "a token lifetime of {expiration_seconds} s is out of range: TokenRequest accepts 600 s (10 minutes) or more"
                ),
            ));
        }
        let op = Op::new("create", what.clone());
        let body = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audiences.to_vec(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: None,
            },
            ..Default::default()
        };
        let body =
            serde_json::to_vec(&body).map_err(|e| self.invalid(what.clone(), e.to_string()))?;
        let url_path = <ServiceAccount as ::kube::Resource>::url_path(&(), Some(namespace));
        let request = ::kube::core::Request::new(url_path)
            .create_subresource("token", name, &PostParams::default(), body)
            .map_err(|e| self.invalid(what.clone(), e.to_string()))?;
        // Read as text and parsed here: kube-rs logs the body of an answer it cannot parse, and
        // this body holds the token.
        let text = self
            .client
            .request_text(request)
            .await
            .map_err(|e| self.ctx().error(&op, e))?;
        let unreadable = |detail: String| -> KubeError {
            KubeErrorKind::Unreadable {
                cluster: self.name.clone(),
                server: self.server.clone(),
                what: what.clone(),
                detail,
            }
            .into()
        };
        let answer: TokenRequestAnswer = serde_json::from_str(&text).map_err(|e| {
            unreadable(format!(
                "not a TokenRequest (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let status = answer
            .status
            .filter(|s| !s.token.is_empty())
            .ok_or_else(|| unreadable("the TokenRequest answer holds no token".into()))?;
        Ok(ServiceAccountToken::new(
            namespace,
            name,
            audiences,
            status.expiration_timestamp,
            status.token,
        ))
    }
}

/// DELETE with preconditions (the uid and resourceVersion observed): a 404 is `AlreadyGone`, a
/// 409 means the object changed since it was observed.
async fn delete<K>(
    cluster: &KubeCluster,
    api: &Api<K>,
    name: &str,
    uid: &str,
    resource_version: &str,
    what: ObjectRef,
) -> Result<Deletion, KubeError>
where
    K: ::kube::Resource + Clone + DeserializeOwned + Debug,
{
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()).filter(|u| !u.is_empty()),
            resource_version: Some(resource_version.to_string()).filter(|v| !v.is_empty()),
        }),
        ..Default::default()
    };
    let mut op = Op::new("delete", what);
    op.preconditions = true;
    // A delete retried after a lost answer finds the object gone: 404, already gone.
    match retrying(|| api.delete(name, &params)).await {
        Ok(_) => Ok(Deletion::Deleted),
        Err(::kube::Error::Api(status)) if status.code == 404 => Ok(Deletion::AlreadyGone),
        Err(e) => Err(cluster.ctx().error(&op, e)),
    }
}

/// Answers that mean "try again": 429 and the 5xx an API server or its load balancer gives
/// while restarting or overloaded, and connections lost on the way (kube-rs has no retries).
fn transient(error: &::kube::Error) -> bool {
    match error {
        ::kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        ::kube::Error::HyperError(_) | ::kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs an idempotent call (a list, a server-side apply, a delete with preconditions) again
/// after a transient failure, up to 6 attempts with exponential backoff.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, ::kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ::kube::Error>>,
{
    let mut attempt: u32 = 0;
    loop {
        match call().await {
            Err(e) if attempt < 5 && transient(&e) => {
                attempt += 1;
                let delay = std::time::Duration::from_millis(100 << attempt.min(5));
                tracing::debug!("Kubernetes call failed ({e}); retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metas(items: serde_json::Value) -> Vec<ObjectMeta> {
        serde_json::from_value(items).unwrap()
    }

    #[test]
    fn what_holds_a_namespace_back() {
        let ours = json!({"app.kubernetes.io/managed-by": "wiform", "wiform.io/stack": "s"});
        let theirs = json!({"app.kubernetes.io/managed-by": "wiform", "wiform.io/stack": "t"});
        let contents = vec![
            (
                "serviceaccounts",
                metas(json!([{"name": "default"}, {"name": "api", "labels": ours},
                             {"name": "other-stack", "labels": theirs}, {"name": "handmade"}])),
            ),
            ("pods", metas(json!([{"name": "web-1"}]))),
            (
                "configmaps",
                metas(json!([{"name": "kube-root-ca.crt"}, {"name": "settings"}])),
            ),
            (
                "secrets",
                metas(json!([
                    {"name": "default-token-x", "annotations": {"kubernetes.io/service-account.name": "default"}},
                    {"name": "api-token-y", "annotations": {"kubernetes.io/service-account.name": "api"}},
                    {"name": "handmade-token", "annotations": {"kubernetes.io/service-account.name": "handmade"}},
                    {"name": "db-password"},
                ])),
            ),
            ("cronjobs", vec![]),
        ];
        assert_eq!(
            foreign_objects("s", &contents),
            [
                "serviceaccounts \"other-stack\"",
                "serviceaccounts \"handmade\"",
                "pods \"web-1\"",
                "configmaps \"settings\"",
                "secrets \"handmade-token\"",
                "secrets \"db-password\"",
            ]
        );
        let empty = vec![
            ("serviceaccounts", metas(json!([{"name": "default"}]))),
            ("configmaps", metas(json!([{"name": "kube-root-ca.crt"}]))),
        ];
        assert!(foreign_objects("s", &empty).is_empty());
        assert_eq!(NAMESPACE_CONTENT_KINDS.len(), 9);
    }

    #[test]
    fn the_stack_selector_needs_both_labels() {
        assert_eq!(
            stack_selector("orders"),
            "app.kubernetes.io/managed-by=wiform,wiform.io/stack=orders"
        );
    }
}
