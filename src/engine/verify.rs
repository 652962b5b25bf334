//! `verify`: prove, for each service account in the config, that its workload can get an Azure
//! token, by doing what the workload does and checking what it needs on the way:
//!
//! 1. the cluster: OIDC issuer on, the discovery document (through the API server and from the
//!    issuer URL itself, as Entra reads it) naming exactly the configured issuer, its JWKS
//!    holding keys;
//! 2. the service account: it exists, its client id annotation is the identity's live client
//!    id, its tenant id annotation (where set) the config's tenant;
//! 3. a short-lived token for it (TokenRequest, the federation's audiences);
//! 4. the exchange at the Entra token endpoint (client credentials with the token as client
//!    assertion), as the Azure SDKs in the pod do; a refusal's AADSTS code is translated into
//!    its precise cause by comparing the token's claims with the identity's federated
//!    credentials;
//! 5. the role grants of the identity, visible at each configured scope;
//! 6. the pods that run as the service account carry `azure.workload.identity/use: "true"`.
//!
//! Tokens are never printed or logged: only their `iss`, `sub` and `aud` claims are read.

use std::collections::BTreeMap;

use base64::Engine;
use petgraph::graph::NodeIndex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::observe::{ClusterFailure, Observed};
use super::plan::{Action, Change, Plan};
use crate::address::Address;
use crate::config::federation::{DEFAULT_AUDIENCE, IssuerSource};
use crate::graph::{Graph, Resource};
use crate::kinds::federated_credential;
use crate::providers::azure::AzureClient;
use crate::providers::azure::exchange::{self, ExchangeError};
use crate::providers::kube::{CLIENT_ID_ANNOTATION, ClusterApi, KubeCluster};

pub const FORMAT_VERSION: u32 = 1;

/// The service account annotation of the tenant id.
const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";

/// The steps, in order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Cluster,
    ServiceAccount,
    Token,
    Exchange,
    Roles,
    Workloads,
}

impl Step {
    pub fn describe(self) -> &'static str {
        match self {
            Step::Cluster => "cluster issuer",
            Step::ServiceAccount => "service account",
            Step::Token => "service account token",
            Step::Exchange => "token exchange",
            Step::Roles => "role grants",
            Step::Workloads => "workloads",
        }
    }
}

/// One step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepResult {
    pub step: Step,
    pub ok: bool,
    /// What was checked and found, in words (never a token).
    pub detail: String,
}

/// One service account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AccountResult {
    pub address: String,
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// The identity it federates with (`identity.KEY`).
    pub identity: String,
    pub ok: bool,
    /// The steps run, up to the first that failed (the workloads step runs regardless).
    pub steps: Vec<StepResult>,
    /// The first failed step, its cause and its fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Entra's AADSTS code, when the exchange was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aadsts: Option<u32>,
}

/// Everything `wiform verify` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyReport {
    pub format_version: u32,
    pub stack: String,
    pub config_file: String,
    pub ok: bool,
    pub accounts: Vec<AccountResult>,
    /// What could not be observed (the accounts it affects fail too).
    pub errors: Vec<String>,
}

/// What verify needs besides the plan.
pub struct VerifyInput<'a> {
    pub graph: &'a Graph,
    pub plan: &'a Plan,
    pub observed: &'a Observed,
    pub clusters: &'a BTreeMap<String, Result<KubeCluster, ClusterFailure>>,
    pub azure: &'a AzureClient,
    pub tenant_id: &'a str,
    /// The token's scope (`https://management.azure.com/.default` unless `--scope`).
    pub scope: &'a str,
    /// Only these service accounts (addresses); empty: all.
    pub targets: &'a [String],
}

/// A failure: the step, its cause, its fix.
struct Failure {
    step: Step,
    cause: String,
    fix: String,
    aadsts: Option<u32>,
}

fn failure(step: Step, cause: impl Into<String>, fix: impl Into<String>) -> Failure {
    Failure {
        step,
        cause: cause.into(),
        fix: fix.into(),
        aadsts: None,
    }
}

/// Runs every check for every service account of the config (or of `targets`).
pub async fn verify(input: &VerifyInput<'_>) -> VerifyReport {
    let graph = input.graph;
    let mut accounts = Vec::new();
    for id in graph.node_ids() {
        let node = graph.node(id);
        let Resource::ServiceAccount(account) = &node.resource else {
            continue;
        };
        let (namespace, name) = (&account.namespace, &account.name);
        if !input.targets.is_empty() && !input.targets.iter().any(|t| node.address == *t) {
            continue;
        }
        let address = node.address.to_string();
        let cluster = node.cluster.clone().unwrap_or_default();
        let identity = graph.dependencies(id).into_iter().find(|d| {
            matches!(
                graph.node(*d).resource,
                Resource::ManagedIdentity(_) | Resource::Application(_)
            )
        });
        let mut steps = Vec::new();
        let outcome = match identity {
            Some(identity) => {
                check_account(input, &cluster, namespace, name, identity, &mut steps).await
            }
            None => Err(failure(
                Step::ServiceAccount,
                "the service account names no identity",
                "give it an `identity` in identity.toml",
            )),
        };
        // Pods are listed whatever happened before: a missing label is worth knowing either way.
        let workloads = check_workloads(input, &cluster, namespace, name).await;
        let workloads_failed = workloads
            .as_ref()
            .err()
            .map(|f| (f.cause.clone(), f.fix.clone()));
        steps.push(match &workloads {
            Ok(detail) => StepResult {
                step: Step::Workloads,
                ok: true,
                detail: detail.clone(),
            },
            Err(f) => StepResult {
                step: Step::Workloads,
                ok: false,
                detail: f.cause.clone(),
            },
        });
        let (failed_step, cause, fix, aadsts) = match outcome {
            Err(f) => {
                steps.push(StepResult {
                    step: f.step,
                    ok: false,
                    detail: f.cause.clone(),
                });
                (Some(f.step), Some(f.cause), Some(f.fix), f.aadsts)
            }
            Ok(()) => match workloads_failed {
                Some((cause, fix)) => (Some(Step::Workloads), Some(cause), Some(fix), None),
                None => (None, None, None, None),
            },
        };
        steps.sort_by_key(|s| s.step);
        accounts.push(AccountResult {
            address,
            cluster,
            namespace: namespace.clone(),
            name: name.clone(),
            identity: identity
                .map(|i| graph.node(i).address.to_string())
                .unwrap_or_default(),
            ok: failed_step.is_none(),
            steps,
            failed_step,
            cause,
            fix,
            aadsts,
        });
    }
    let errors: Vec<String> = input
        .plan
        .errors
        .iter()
        .map(|e| e.message.clone())
        .collect();
    VerifyReport {
        format_version: FORMAT_VERSION,
        stack: input.plan.stack.clone(),
        config_file: input.plan.config_file.clone(),
        ok: accounts.iter().all(|a| a.ok) && errors.is_empty(),
        accounts,
        errors,
    }
}

fn change<'a>(plan: &'a Plan, address: &Address) -> Option<&'a Change> {
    plan.changes.iter().find(|c| &c.address == address)
}

/// A field's live value (`before`) as a string.
fn live_field(change: &Change, name: &str) -> Option<String> {
    change
        .fields
        .iter()
        .find(|f| f.name == name)?
        .before
        .as_ref()?
        .as_str()
        .map(str::to_string)
}

/// The federated credential of the config for this service account.
fn federation_for(
    graph: &Graph,
    identity: NodeIndex,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Option<(String, IssuerSource, Vec<String>)> {
    let subject = format!("system:serviceaccount:{namespace}:{name}");
    graph.dependents(identity).into_iter().find_map(|d| {
        let node = graph.node(d);
        match &node.resource {
            Resource::FederatedCredential(federated_credential::Desired {
                name: fic,
                issuer,
                subject: s,
                audiences,
                ..
            }) if *s == subject
                && match issuer {
                    IssuerSource::Cluster(key) => key == cluster,
                    IssuerSource::Url(_) => true,
                } =>
            {
                Some((fic.clone(), issuer.clone(), audiences.clone()))
            }
            _ => None,
        }
    })
}

async fn check_account(
    input: &VerifyInput<'_>,
    cluster: &str,
    namespace: &str,
    name: &str,
    identity: NodeIndex,
    steps: &mut Vec<StepResult>,
) -> Result<(), Failure> {
    let graph = input.graph;
    let identity_address = &graph.node(identity).address;
    let apply = "run `wiform apply`";

    // 1. The cluster's issuer.
    let cluster_address = Address::Cluster(cluster.to_string());
    let cluster_change = change(input.plan, &cluster_address);
    let federation = federation_for(graph, identity, cluster, namespace, name);
    let configured_issuer = match (&federation, cluster_change) {
        (Some((_, IssuerSource::Url(url), _)), _) => Some(url.clone()),
        (_, Some(c)) => {
            if c.fields.iter().any(|f| {
                f.name == "oidc_issuer_enabled" && f.before == Some(serde_json::json!(false))
            }) {
                let managed = graph.node_ids().any(|id| {
                    let node = graph.node(id);
                    matches!(&node.resource, Resource::Cluster(c) if c.enable_workload_identity)
                        && node.address == cluster_address
                });
                let fix = if managed {
                    format!(
                        "{apply} (it turns the issuer on), or `az aks update --enable-oidc-issuer`"
                    )
                } else {
                    "set `enable_workload_identity = true` for the cluster and run `wiform apply`, or `az aks update --enable-oidc-issuer`".to_string()
                };
                return Err(failure(
                    Step::Cluster,
                    format!(
                        "the OIDC issuer of cluster `{cluster}` is off: tokens of its service accounts cannot be federated"
                    ),
                    fix,
                ));
            }
            live_field(c, "issuer_url")
        }
        _ => None,
    };
    let Some(issuer) = configured_issuer else {
        return Err(failure(
            Step::Cluster,
            format!("the issuer of cluster `{cluster}` is not known"),
            format!("{apply}, or set `issuer` for a cluster that is not AKS"),
        ));
    };
    let Some(Ok(kube)) = input.clusters.get(cluster) else {
        let why = match input.clusters.get(cluster) {
            Some(Err(f)) => f.message.clone(),
            _ => "it was not connected".into(),
        };
        return Err(failure(
            Step::Cluster,
            format!("cluster `{cluster}` cannot be reached: {why}"),
            "check its kubeconfig context or your AKS credentials",
        ));
    };
    let served = kube.issuer().await.map_err(|e| {
        failure(
            Step::Cluster,
            format!("the API server's discovery document could not be read: {e}"),
            "check the cluster's service-account issuer settings",
        )
    })?;
    if served.issuer != issuer {
        return Err(failure(
            Step::Cluster,
            issuer_mismatch("the cluster's API server", &served.issuer, &issuer),
            "make the configured issuer byte-for-byte the one the API server signs with (`--service-account-issuer`), then run `wiform apply`",
        ));
    }
    let public = exchange::check_issuer(input.azure, &issuer)
        .await
        .map_err(|e| {
            failure(
                Step::Cluster,
                format!("the issuer URL cannot be read as Entra would read it: {e}"),
                "serve the discovery document and JWKS at the issuer URL over public HTTPS",
            )
        })?;
    if public.discovered_issuer != issuer {
        return Err(failure(
            Step::Cluster,
            issuer_mismatch(
                "the issuer URL's discovery document",
                &public.discovered_issuer,
                &issuer,
            ),
            "serve a discovery document whose `issuer` is exactly the issuer URL",
        ));
    }
    if public.keys == 0 {
        return Err(failure(
            Step::Cluster,
            format!("the JWKS at {} holds no keys", public.jwks_uri),
            "publish the service account signing keys at the issuer's jwks_uri",
        ));
    }
    steps.push(StepResult {
        step: Step::Cluster,
        ok: true,
        detail: format!(
            "issuer {issuer} served byte for byte by the API server and at the issuer URL; {} signing key(s)",
            public.keys
        ),
    });

    // 2. The service account.
    let identity_change = change(input.plan, identity_address);
    let client_id = identity_change
        .and_then(|c| live_field(c, "client_id").or_else(|| live_field(c, "app_id")));
    let Some(client_id) = client_id else {
        return Err(failure(
            Step::ServiceAccount,
            format!("{identity_address} does not exist in Azure"),
            apply,
        ));
    };
    let live = match input.observed.clusters.get(cluster) {
        Some(Ok(observation)) => observation.service_account(namespace, name),
        _ => None,
    };
    let Some(live) = live else {
        return Err(failure(
            Step::ServiceAccount,
            format!("service account {namespace}/{name} does not exist in cluster `{cluster}`"),
            apply,
        ));
    };
    match live.annotation(CLIENT_ID_ANNOTATION) {
        Some(annotated) if annotated.eq_ignore_ascii_case(&client_id) => {}
        Some(annotated) => {
            return Err(failure(
                Step::ServiceAccount,
                format!(
                    "its annotation {CLIENT_ID_ANNOTATION} is {annotated}, but {identity_address}'s client id is {client_id}: pods would ask for a token of another identity"
                ),
                apply,
            ));
        }
        None => {
            return Err(failure(
                Step::ServiceAccount,
                format!(
                    "it has no {CLIENT_ID_ANNOTATION} annotation: the webhook cannot tell pods which identity to use"
                ),
                apply,
            ));
        }
    }
    if let Some(tenant) = live.annotation(TENANT_ID_ANNOTATION)
        && !tenant.eq_ignore_ascii_case(input.tenant_id)
    {
        return Err(failure(
            Step::ServiceAccount,
            format!(
                "its annotation {TENANT_ID_ANNOTATION} is {tenant}, but the identity is in tenant {}",
                input.tenant_id
            ),
            apply,
        ));
    }
    steps.push(StepResult {
        step: Step::ServiceAccount,
        ok: true,
        detail: format!("annotated with {identity_address}'s client id {client_id}"),
    });

    // 3. A token for it.
    let audiences = federation
        .as_ref()
        .map_or_else(|| vec![DEFAULT_AUDIENCE.to_string()], |(_, _, a)| a.clone());
    let token = kube
        .request_token(namespace, name, &audiences, 600)
        .await
        .map_err(|e| {
            failure(
                Step::Token,
                format!("TokenRequest was refused: {e}"),
                "verify needs `create` on `serviceaccounts/token` in the namespace (e.g. a Role with verbs [create] on resource serviceaccounts/token)",
            )
        })?;
    let claims = claims_of(token.expose());
    steps.push(StepResult {
        step: Step::Token,
        ok: true,
        detail: format!(
            "minted for audience {} (iss {}, sub {})",
            audiences.join(", "),
            claims.issuer,
            claims.subject
        ),
    });

    // 4. The exchange.
    match exchange::exchange(
        input.azure,
        input.tenant_id,
        &client_id,
        token.expose(),
        input.scope,
    )
    .await
    {
        Ok(()) => steps.push(StepResult {
            step: Step::Exchange,
            ok: true,
            detail: format!("Entra issued a token for {} as {client_id}", input.scope),
        }),
        Err(ExchangeError::Unreachable(why)) => {
            return Err(failure(
                Step::Exchange,
                format!("the Entra token endpoint could not be used: {why}"),
                "check the network path to the authority host",
            ));
        }
        Err(ExchangeError::Refused(refusal)) => {
            let credentials = live_credentials(input, identity_address);
            let (cause, fix) = explain(
                refusal.code,
                &refusal.description,
                &claims,
                &credentials,
                &client_id,
            );
            return Err(Failure {
                step: Step::Exchange,
                cause,
                fix,
                aadsts: refusal.code,
            });
        }
    }

    // 5. The role grants.
    let missing: Vec<String> = graph
        .dependents(identity)
        .into_iter()
        .filter(|d| matches!(graph.node(*d).resource, Resource::RoleAssignment(_)))
        .map(|d| &graph.node(d).address)
        .filter(|address| {
            change(input.plan, address)
                .is_none_or(|c| c.action.is_change() && c.action != Action::Adopt)
        })
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(failure(
            Step::Roles,
            format!("not granted: {}", missing.join(", ")),
            apply,
        ));
    }
    steps.push(StepResult {
        step: Step::Roles,
        ok: true,
        detail: "every configured role grant is in place".into(),
    });
    Ok(())
}

fn issuer_mismatch(who: &str, served: &str, configured: &str) -> String {
    let slash = if served.trim_end_matches('/') == configured.trim_end_matches('/') {
        " (they differ only in the trailing slash, which Entra compares too)"
    } else {
        ""
    };
    format!("{who} names issuer {served}, but federated credentials trust {configured}{slash}")
}

async fn check_workloads(
    input: &VerifyInput<'_>,
    cluster: &str,
    namespace: &str,
    name: &str,
) -> Result<String, Failure> {
    let Some(Ok(kube)) = input.clusters.get(cluster) else {
        return Ok("not checked: the cluster cannot be reached".into());
    };
    let pods = kube.pods_running_as(namespace, name).await.map_err(|e| {
        failure(
            Step::Workloads,
            format!("its pods could not be listed: {e}"),
            "verify needs `list` on pods in the namespace",
        )
    })?;
    if pods.is_empty() {
        return Ok("no pod runs as it yet".into());
    }
    let unlabeled: Vec<&str> = pods
        .iter()
        .filter(|(_, labeled)| !labeled)
        .map(|(pod, _)| pod.as_str())
        .collect();
    if unlabeled.is_empty() {
        Ok(format!(
            "{} pod(s), all labelled azure.workload.identity/use: \"true\"",
            pods.len()
        ))
    } else {
        Err(failure(
            Step::Workloads,
            format!(
                "pods without the label azure.workload.identity/use: \"true\" (the webhook gives them no token): {}",
                unlabeled.join(", ")
            ),
            "add the label `azure.workload.identity/use: \"true\"` to the pod template",
        ))
    }
}

/// The claims of a service account token that matter to federation (read, not verified).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

pub fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let value: serde_json::Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let audiences = match &value["aud"] {
        serde_json::Value::String(a) => vec![a.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Claims {
        issuer: value["iss"].as_str().unwrap_or_default().to_string(),
        subject: value["sub"].as_str().unwrap_or_default().to_string(),
        audiences,
    }
}

/// A federated credential as live on the identity: (name, issuer, subject, audiences).
type LiveCredential = (String, String, String, Vec<String>);

fn live_credentials(input: &VerifyInput<'_>, identity_address: &Address) -> Vec<LiveCredential> {
    let Some(identity) = change(input.plan, identity_address) else {
        return Vec::new();
    };
    let Some(id) = identity.id.as_deref() else {
        return Vec::new();
    };
    let azure = &input.observed.azure;
    let row = |name: &String, issuer: &String, subject: &String, audiences: &Vec<String>| {
        (
            name.clone(),
            issuer.clone(),
            subject.clone(),
            audiences.clone(),
        )
    };
    match azure.identities.get(&id.to_ascii_lowercase()) {
        Some(live) => azure
            .identity_credentials
            .get(&live.key())
            .into_iter()
            .flatten()
            .map(|c| row(&c.name, &c.issuer, &c.subject, &c.audiences))
            .collect(),
        None => azure
            .application_credentials
            .get(id)
            .into_iter()
            .flatten()
            .map(|c| row(&c.name, &c.issuer, &c.subject, &c.audiences))
            .collect(),
    }
}

/// An AADSTS refusal as its precise cause and fix, from the token's claims and the identity's
/// federated credentials (docs/troubleshooting.md lists each code).
pub fn explain(
    code: Option<u32>,
    description: &str,
    claims: &Claims,
    credentials: &[LiveCredential],
    client_id: &str,
) -> (String, String) {
    let apply = "run `wiform apply`".to_string();
    match code {
        Some(70021 | 700211 | 700212 | 700213) => {
            let same_issuer: Vec<&LiveCredential> =
                credentials.iter().filter(|c| c.1 == claims.issuer).collect();
            if credentials.is_empty() {
                return (
                    format!("AADSTS{}: the identity has no federated credential at all", code.unwrap_or(70021)),
                    apply,
                );
            }
            if same_issuer.is_empty() {
                let near = credentials
                    .iter()
                    .find(|c| c.1.trim_end_matches('/') == claims.issuer.trim_end_matches('/'));
                let cause = match near {
                    Some(c) => format!(
                        "federated credential {} trusts issuer {} but the token's issuer is {} (the trailing slash counts)",
                        c.0, c.1, claims.issuer
                    ),
                    None => format!(
                        "no federated credential trusts the token's issuer {} (they trust: {})",
                        claims.issuer,
                        credentials.iter().map(|c| c.1.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                };
                return (format!("AADSTS{}: {cause}", code.unwrap_or(70021)), apply);
            }
            if let Some(c) = same_issuer.iter().find(|c| c.2 != claims.subject) && !same_issuer.iter().any(|c| c.2 == claims.subject) {
                return (
                    format!(
                        "AADSTS{}: federated credential {} subject is {} but the token's subject is {}",
                        code.unwrap_or(70021), c.0, c.2, claims.subject
                    ),
                    apply,
                );
            }
            if let Some(c) = same_issuer
                .iter()
                .find(|c| c.2 == claims.subject && !c.3.iter().any(|a| claims.audiences.contains(a)))
            {
                return (
                    format!(
                        "AADSTS{}: federated credential {} audience is {} but the token's audience is {}",
                        code.unwrap_or(70021),
                        c.0,
                        c.3.join(", "),
                        claims.audiences.join(", ")
                    ),
                    apply,
                );
            }
            (
                format!(
                    "AADSTS{}: a matching federated credential exists, so it has not propagated yet (new credentials take up to a few minutes)",
                    code.unwrap_or(70021)
                ),
                "wait a minute and run `wiform verify` again".into(),
            )
        }
        Some(700024) => (
            "AADSTS700024: the token is outside its validity window (a clock off by minutes, or an expired token)".into(),
            "check the clocks of the cluster's nodes and of this machine".into(),
        ),
        Some(7000272) => (
            "AADSTS7000272: the token's signing key is not among the keys the issuer publishes (keys rotated, or the issuer URL serves another cluster's keys)".into(),
            "publish the cluster's current service-account signing keys at the issuer's jwks_uri".into(),
        ),
        Some(700027) => (
            "AADSTS700027: the token's signature does not verify with the issuer's keys".into(),
            "make the issuer URL serve the keys of this cluster".into(),
        ),
        Some(90061 | 50166) => (
            format!("AADSTS{}: Entra could not fetch the issuer's discovery document or keys", code.unwrap_or(90061)),
            "serve them at the issuer URL over public HTTPS".into(),
        ),
        Some(700222) => (
            "AADSTS700222: the token was issued by Entra, not by the cluster: Entra-issued tokens cannot be federated".into(),
            "use the cluster's service account token".into(),
        ),
        Some(700016 | 7000215 | 70001) => (
            format!("AADSTS{}: Entra knows no application or identity with client id {client_id} in this tenant", code.unwrap_or(700016)),
            apply,
        ),
        Some(code) => (format!("AADSTS{code}: {}", first_line(description)), "see docs/troubleshooting.md".into()),
        None => (first_line(description).to_string(), "see docs/troubleshooting.md".into()),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(issuer: &str, subject: &str) -> Claims {
        Claims {
            issuer: issuer.into(),
            subject: subject.into(),
            audiences: vec![DEFAULT_AUDIENCE.into()],
        }
    }

    fn credential(issuer: &str, subject: &str) -> LiveCredential {
        (
            "api".into(),
            issuer.into(),
            subject.into(),
            vec![DEFAULT_AUDIENCE.into()],
        )
    }

    #[test]
    fn a_wrong_subject_is_named_with_both_subjects() {
        let (cause, _) = explain(
            Some(70021),
            "",
            &claims("https://i/", "system:serviceaccount:orders:orders-api"),
            &[credential("https://i/", "system:serviceaccount:orders:api")],
            "c",
        );
        assert_eq!(
            cause,
            "AADSTS70021: federated credential api subject is system:serviceaccount:orders:api but the token's subject is system:serviceaccount:orders:orders-api"
        );
    }

    #[test]
    fn a_trailing_slash_is_called_out() {
        let (cause, _) = explain(
            Some(70021),
            "",
            &claims("https://i/", "s"),
            &[credential("https://i", "s")],
            "c",
        );
        assert!(cause.contains("the trailing slash counts"), "{cause}");
    }

    #[test]
    fn a_wrong_audience_is_named() {
        let mut c = credential("https://i/", "s");
        c.3 = vec!["api://other".into()];
        let (cause, _) = explain(Some(70021), "", &claims("https://i/", "s"), &[c], "c");
        assert!(cause.contains("audience is api://other"), "{cause}");
    }

    #[test]
    fn a_matching_credential_means_propagation() {
        let (cause, fix) = explain(
            Some(70021),
            "",
            &claims("https://i/", "s"),
            &[credential("https://i/", "s")],
            "c",
        );
        assert!(cause.contains("not propagated"), "{cause}");
        assert!(fix.contains("again"), "{fix}");
    }

    #[test]
    fn claims_are_read_without_the_signature() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"iss":"https://i/","sub":"s","aud":["a"]}"#);
        let token = format!("h.{payload}.sig");
        assert_eq!(
            claims_of(&token),
            Claims {
                issuer: "https://i/".into(),
                subject: "s".into(),
                audiences: vec!["a".into()]
            }
        );
        assert_eq!(claims_of("not a jwt"), Claims::default());
    }
}
