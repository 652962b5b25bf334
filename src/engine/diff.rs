//! Desired (the graph) against observed (Azure and every cluster) → a [`Plan`]. Pure: no IO.
//!
//! Resources are planned in dependency order so that outputs flow: an identity that exists
//! gives its client and principal ids to its service accounts and role assignments; one that
//! does not yet gives `(known after apply)`. Only fields wiform manages are compared; values
//! the service fills in (ids, provisioning state, other tags) never cause a change.
//!
//! Ownership (product design, "Ownership without a state file"): objects carrying this stack's
//! marker are wiform's; objects without a marker that match the config are adopted; objects of
//! another stack are errors. What the stack owns and the config no longer names is deleted, and
//! so are extra federated credentials and role assignments on an identity the stack owns.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::graph::NodeIndex;
use serde::Serialize;
use serde_json::{Value, json};

use super::plan::{Action, After, Change, FORMAT_VERSION, FieldChange, Plan, PlanError};
use super::records;
use crate::address::{Address, CredentialKey};
use crate::builtin_roles;
use crate::config::federation::IssuerSource;
use crate::config::model::IdentityKind;
use crate::error::Explain;
use crate::graph::{Graph, Output, Resource, RoleRef};
use crate::ownership::{self, Owner};
use crate::providers::azure::applications::{self, LiveApplication};
use crate::providers::azure::identities::{
    DesiredIdentity, DesiredResourceGroup, LiveIdentity, normalize_location,
};
use crate::providers::azure::observe::{AzureObservation, Listing};
use crate::providers::azure::roles::{self, LiveRoleAssignment};
use crate::providers::kube::{
    CLIENT_ID_ANNOTATION, ClusterObservation, DesiredServiceAccount, LiveServiceAccount,
};

/// Why an identity or application is updated when only its records are out of date.
const RECORDS_STALE: &str = "records the federated credentials and role grants it now has, so that `wiform drift` can tell them from changes made by hand";

/// Everything observed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    pub azure: AzureObservation,
    /// Each cluster's observation, or why it could not be made (unreachable, refused).
    pub clusters: BTreeMap<String, Result<ClusterObservation, ClusterFailure>>,
}

/// Why a cluster could not be observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterFailure {
    pub message: String,
    pub hint: Option<String>,
}

/// What to plan.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub stack: &'a str,
    pub config_file: &'a str,
    pub graph: &'a Graph,
    /// Plan only these nodes and what they depend on (`--target`); empty: everything.
    pub targets: &'a [NodeIndex],
}

/// An output of a planned resource.
#[derive(Debug, Clone, PartialEq)]
enum Out {
    Known(String),
    /// Known once apply has made the resource.
    Unknown,
    /// Cannot be known: the resource could not be planned (an error says why).
    Missing,
}

impl Out {
    fn after(&self) -> After {
        match self {
            Out::Known(v) => After::Known(json!(v)),
            Out::Unknown | Out::Missing => After::Unknown,
        }
    }

    fn known(&self) -> Option<&str> {
        match self {
            Out::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// The outputs of one node.
#[derive(Debug, Clone)]
struct Outputs {
    client_id: Out,
    principal_id: Out,
    issuer_url: Out,
    /// Managed identity: its live key (lower-case ARM id). Application: its object id.
    live_key: Option<String>,
    /// The identity is, or after apply will be, this stack's (its extras are pruned).
    owned: bool,
}

impl Outputs {
    fn missing() -> Self {
        Outputs {
            client_id: Out::Missing,
            principal_id: Out::Missing,
            issuer_url: Out::Missing,
            live_key: None,
            owned: false,
        }
    }
}

/// Live objects matched by the config (the rest, when owned, is pruned).
#[derive(Default)]
struct Claimed {
    identities: BTreeSet<String>,
    credentials: BTreeSet<String>,
    assignments: BTreeSet<String>,
    applications: BTreeSet<String>,
    namespaces: BTreeSet<(String, String)>,
    service_accounts: BTreeSet<(String, String, String)>,
    /// (principal, normalised scope) of grants whose role could not be resolved: which live
    /// assignment is theirs is unknown, so none there is pruned.
    unresolved_grants: BTreeSet<(String, String)>,
}

struct Planner<'a> {
    input: Input<'a>,
    observed: &'a Observed,
    failed: BTreeSet<Listing>,
    changes: Vec<Change>,
    deletes: Vec<Change>,
    errors: Vec<PlanError>,
    outputs: HashMap<NodeIndex, Outputs>,
    claimed: Claimed,
    /// (address, hash of the live object or "absent") of every planned resource.
    seen: Vec<(String, String)>,
}

/// Computes the plan.
pub fn plan(input: Input<'_>, observed: &Observed) -> Plan {
    let mut failed = BTreeSet::new();
    let mut errors = Vec::new();
    for e in &observed.azure.errors {
        failed.insert(e.listing.clone());
        errors.push(PlanError {
            address: None,
            message: format!("could not read {}: {}", e.what, e.error.message()),
            hint: e.error.hint(),
        });
    }
    for (cluster, result) in &observed.clusters {
        if let Err(failure) = result {
            errors.push(PlanError {
                address: Some(Address::Cluster(cluster.clone()).to_string()),
                message: format!(
                    "could not read Kubernetes cluster `{cluster}`: {}; its namespaces and service accounts are not planned",
                    failure.message
                ),
                hint: failure.hint.clone(),
            });
        }
    }
    let mut planner = Planner {
        input,
        observed,
        failed,
        changes: Vec::new(),
        deletes: Vec::new(),
        errors,
        outputs: HashMap::new(),
        claimed: Claimed::default(),
        seen: Vec::new(),
    };
    let selected = selection(input.graph, input.targets);
    for id in input.graph.topological_order() {
        if selected.as_ref().is_some_and(|s| !s.contains(&id)) {
            continue;
        }
        planner.node(id);
    }
    if input.targets.is_empty() {
        planner.prune();
    }
    let Planner {
        mut changes,
        deletes,
        errors,
        mut seen,
        ..
    } = planner;
    changes.extend(deletes);
    seen.sort();
    Plan {
        format_version: FORMAT_VERSION,
        stack: input.stack.to_string(),
        config_file: input.config_file.to_string(),
        changes,
        errors,
        targets: input
            .targets
            .iter()
            .map(|id| input.graph.node(*id).address.to_string())
            .collect(),
        fingerprint: ownership::spec_hash(&seen),
    }
}

/// The targets and everything they depend on; `None` when there are no targets.
fn selection(graph: &Graph, targets: &[NodeIndex]) -> Option<BTreeSet<NodeIndex>> {
    if targets.is_empty() {
        return None;
    }
    let mut selected = BTreeSet::new();
    let mut stack: Vec<NodeIndex> = targets.to_vec();
    while let Some(id) = stack.pop() {
        if selected.insert(id) {
            stack.extend(graph.dependencies(id));
        }
    }
    Some(selected)
}

fn hash_of<T: Serialize>(live: Option<&T>) -> String {
    live.map_or_else(|| "absent".to_string(), |l| ownership::spec_hash(l))
}

fn field(name: &str, before: Option<Value>, after: After) -> FieldChange {
    FieldChange {
        name: name.to_string(),
        before,
        after,
        computed: false,
    }
}

fn computed(name: &str, before: Option<&str>, after: After) -> FieldChange {
    FieldChange {
        name: name.to_string(),
        before: before.map(|b| json!(b)),
        after,
        computed: true,
    }
}

/// One field per map key (`tags["team"]`), so that each key shows its own change; keys only
/// in `before` are removed.
fn map_fields(
    prefix: &str,
    before: Option<&BTreeMap<String, String>>,
    after: &BTreeMap<String, String>,
) -> Vec<FieldChange> {
    let mut keys: BTreeSet<&String> = after.keys().collect();
    if let Some(before) = before {
        keys.extend(before.keys());
    }
    keys.into_iter()
        .map(|k| {
            let name = format!("{prefix}[{k:?}]");
            let old = before.and_then(|b| b.get(k)).map(|v| json!(v));
            match after.get(k) {
                Some(v) => field(&name, old, After::Known(json!(v))),
                None => field(&name, old, After::Removed),
            }
        })
        .collect()
}

fn differs(fields: &[FieldChange]) -> bool {
    fields.iter().any(FieldChange::is_changed)
}

fn owner_text(owner: &Owner) -> String {
    owner.describe()
}

impl Planner<'_> {
    fn graph(&self) -> &Graph {
        self.input.graph
    }

    fn stack(&self) -> &str {
        self.input.stack
    }

    fn address(&self, id: NodeIndex) -> String {
        self.graph().node(id).address.to_string()
    }

    fn depends_on(&self, id: NodeIndex) -> Vec<String> {
        self.graph()
            .dependencies(id)
            .into_iter()
            .map(|d| self.address(d))
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: NodeIndex,
        action: Action,
        reason: Option<String>,
        live_id: Option<String>,
        fields: Vec<FieldChange>,
        live_hash: String,
    ) {
        let address = self.address(id);
        self.seen.push((address.clone(), live_hash));
        let node = self.graph().node(id);
        self.changes.push(Change {
            address,
            resource_type: node.resource.kind().to_string(),
            action,
            reason,
            id: live_id,
            fields,
            not_in_config: false,
            depends_on: self.depends_on(id),
        });
    }

    fn error(&mut self, id: Option<NodeIndex>, message: String, hint: Option<String>) {
        let address = id.map(|id| self.address(id));
        self.errors.push(PlanError {
            address,
            message,
            hint,
        });
    }

    /// The outputs of the dependency of `id` that provides `output`.
    fn input_of(&self, id: NodeIndex, output: Output) -> Option<(NodeIndex, &Outputs)> {
        let graph = self.graph();
        graph
            .edges()
            .filter(|(_, to, what)| *to == id && *what == output)
            .find_map(|(from, _, _)| self.outputs.get(&from).map(|o| (from, o)))
    }

    fn node(&mut self, id: NodeIndex) {
        let resource = self.graph().node(id).resource.clone();
        let outputs = match &resource {
            Resource::ResourceGroup { .. } => {
                self.resource_group(id, &resource);
                Outputs::missing()
            }
            Resource::Cluster {
                subscription_id,
                resource_group,
                name,
                enable_workload_identity,
            } => self.cluster(
                id,
                subscription_id,
                resource_group,
                name,
                *enable_workload_identity,
            ),
            Resource::ManagedIdentity { .. } => self.managed_identity(id, &resource),
            Resource::Application { display_name } => self.application(id, display_name),
            Resource::FederatedCredential {
                identity_kind,
                name,
                issuer,
                subject,
                audiences,
            } => {
                self.federated_credential(id, *identity_kind, name, issuer, subject, audiences);
                Outputs::missing()
            }
            Resource::RoleAssignment {
                role,
                scope,
                condition,
            } => {
                self.role_assignment(id, role, scope, condition.as_deref());
                Outputs::missing()
            }
            Resource::Namespace { name } => {
                self.namespace(id, name);
                Outputs::missing()
            }
            Resource::ServiceAccount { .. } => {
                self.service_account(id, &resource);
                Outputs::missing()
            }
        };
        self.outputs.insert(id, outputs);
    }

    // -----------------------------------------------------------------------------------------
    // Azure

    fn resource_group(&mut self, id: NodeIndex, resource: &Resource) {
        let Some(desired) = DesiredResourceGroup::from_resource(self.stack(), resource) else {
            return;
        };
        if self.failed.contains(&Listing::ResourceGroups(
            desired.subscription_id.to_ascii_lowercase(),
        )) {
            return;
        }
        let live = self.observed.azure.resource_groups.get(&desired.key());
        let location = normalize_location(&desired.location);
        let mut fields = vec![
            field(
                "name",
                live.map(|l| json!(l.name)),
                After::Known(json!(desired.name)),
            ),
            field(
                "location",
                live.map(|l| json!(l.location)),
                After::Known(json!(location)),
            ),
        ];
        fields.extend(map_fields(
            "tags",
            live.map(|l| l.user_tags()).as_ref(),
            &desired.tags,
        ));
        let hash = hash_of(live);
        let Some(live) = live else {
            self.push(id, Action::Create, None, None, fields, hash);
            return;
        };
        if live.location != location {
            self.error(
                Some(id),
                format!(
                    "resource group {} is in {}, the config says {location}: a resource group cannot move",
                    live.name, live.location
                ),
                Some("set the resource group's location to where it is".into()),
            );
            return;
        }
        let action = match &live.owner {
            o if o.is_stack(self.stack()) => {
                if differs(&fields) {
                    Action::Update
                } else {
                    Action::NoOp
                }
            }
            Owner::Unowned => Action::Adopt,
            other => {
                self.error(
                    Some(id),
                    format!(
                        "resource group {} belongs to {}",
                        live.name,
                        owner_text(other)
                    ),
                    Some("remove it from this config, or from the other stack first".into()),
                );
                return;
            }
        };
        self.push(id, action, None, Some(live.id.clone()), fields, hash);
    }

    fn cluster(
        &mut self,
        id: NodeIndex,
        subscription: &str,
        resource_group: &str,
        name: &str,
        enable: bool,
    ) -> Outputs {
        let mut out = Outputs::missing();
        if self
            .failed
            .contains(&Listing::Clusters(subscription.to_ascii_lowercase()))
        {
            return out;
        }
        let live = self
            .observed
            .azure
            .clusters
            .values()
            .find(|c| c.is(subscription, resource_group, name));
        let Some(live) = live else {
            self.error(
                Some(id),
                format!(
                    "AKS cluster {resource_group}/{name} does not exist in subscription {subscription}"
                ),
                Some(
                    "wiform does not create clusters: check resource_group and name, or create the cluster first"
                        .into(),
                ),
            );
            return out;
        };
        let ready = live.workload_identity_ready();
        let hash = hash_of(Some(live));
        let issuer_before = live.issuer_url.as_deref();
        if enable && !ready {
            let fields = vec![
                field(
                    "oidc_issuer_enabled",
                    Some(json!(live.oidc_issuer_enabled)),
                    After::Known(json!(true)),
                ),
                field(
                    "workload_identity_enabled",
                    Some(json!(live.workload_identity_enabled)),
                    After::Known(json!(true)),
                ),
                computed(
                    "issuer_url",
                    issuer_before,
                    issuer_before.map_or(After::Unknown, |i| After::Known(json!(i))),
                ),
            ];
            out.issuer_url = issuer_before.map_or(Out::Unknown, |i| Out::Known(i.to_string()));
            self.push(
                id,
                Action::Update,
                Some("enable_workload_identity = true: turn on the OIDC issuer and workload identity, a long-running update of the cluster".into()),
                Some(live.id.clone()),
                fields,
                hash,
            );
            return out;
        }
        let fields = vec![
            field(
                "oidc_issuer_enabled",
                Some(json!(live.oidc_issuer_enabled)),
                After::Known(json!(live.oidc_issuer_enabled)),
            ),
            field(
                "workload_identity_enabled",
                Some(json!(live.workload_identity_enabled)),
                After::Known(json!(live.workload_identity_enabled)),
            ),
            computed(
                "issuer_url",
                issuer_before,
                issuer_before.map_or(After::Unknown, |i| After::Known(json!(i))),
            ),
        ];
        match live.issuer_url.as_deref().filter(|_| live.oidc_issuer_enabled) {
            Some(issuer) => out.issuer_url = Out::Known(issuer.to_string()),
            None => self.error(
                Some(id),
                format!(
                    "AKS cluster {resource_group}/{name} has no OIDC issuer and enable_workload_identity = false"
                ),
                Some("set enable_workload_identity = true (or run `az aks update --enable-oidc-issuer --enable-workload-identity`)".into()),
            ),
        }
        let action = if enable { Action::NoOp } else { Action::Read };
        self.push(id, action, None, Some(live.id.clone()), fields, hash);
        out
    }

    fn managed_identity(&mut self, id: NodeIndex, resource: &Resource) -> Outputs {
        let mut out = Outputs::missing();
        let Some(desired) = DesiredIdentity::from_resource(self.stack(), resource) else {
            return out;
        };
        let desired = desired.with_records(records::identity_records(self.graph(), id));
        if self.failed.contains(&Listing::Identities(
            desired.subscription_id.to_ascii_lowercase(),
        )) {
            return out;
        }
        let key = desired.key();
        let live = self.observed.azure.identities.get(&key);
        let location = normalize_location(&desired.location);
        // ARM names are case-insensitive: the identity was matched by its lower-cased id, so
        // a name spelt with other capitals is the same object, not a change.
        let same_case = |live: &str, wanted: &str| -> Value {
            if live.eq_ignore_ascii_case(wanted) {
                json!(wanted)
            } else {
                json!(live)
            }
        };
        let mut fields = vec![
            field(
                "name",
                live.map(|l| same_case(&l.name, &desired.name)),
                After::Known(json!(desired.name)),
            ),
            field(
                "resource_group",
                live.map(|l| same_case(&l.resource_group, &desired.resource_group)),
                After::Known(json!(desired.resource_group)),
            ),
            field(
                "location",
                live.map(|l| json!(l.location)),
                After::Known(json!(location)),
            ),
        ];
        fields.extend(map_fields(
            "tags",
            live.map(LiveIdentity::user_tags).as_ref(),
            &desired.tags,
        ));
        let hash = hash_of(live);
        out.live_key = Some(key.clone());
        let Some(live) = live else {
            fields.push(computed("client_id", None, After::Unknown));
            fields.push(computed("principal_id", None, After::Unknown));
            out.client_id = Out::Unknown;
            out.principal_id = Out::Unknown;
            out.owned = true;
            self.push(id, Action::Create, None, None, fields, hash);
            return out;
        };
        self.claimed.identities.insert(key);
        let owned = live.owner.is_stack(self.stack());
        if !owned && live.owner != Owner::Unowned {
            self.error(
                Some(id),
                format!(
                    "managed identity {} belongs to {}",
                    live.label(),
                    owner_text(&live.owner)
                ),
                Some(
                    "give this identity another name, or remove it from the other stack first"
                        .into(),
                ),
            );
            return Outputs::missing();
        }
        if live.location != location {
            if !owned {
                self.error(
                    Some(id),
                    format!(
                        "managed identity {} exists in {} without wiform's marker; the config says {location}",
                        live.label(),
                        live.location
                    ),
                    Some("set its location to adopt it as it is, or give it another name".into()),
                );
                return Outputs::missing();
            }
            fields.push(computed("client_id", Some(&live.client_id), After::Unknown));
            fields.push(computed(
                "principal_id",
                Some(&live.principal_id),
                After::Unknown,
            ));
            out.client_id = Out::Unknown;
            out.principal_id = Out::Unknown;
            out.owned = true;
            // The old identity's credentials and grants go with it.
            out.live_key = None;
            self.push(
                id,
                Action::Replace,
                Some("location cannot change: replace (the identity gets new client and principal ids; its credentials and role assignments are made again)".into()),
                Some(live.id.clone()),
                fields,
                hash,
            );
            return out;
        }
        let client = After::Known(json!(live.client_id));
        let principal = After::Known(json!(live.principal_id));
        fields.push(computed("client_id", Some(&live.client_id), client));
        fields.push(computed(
            "principal_id",
            Some(&live.principal_id),
            principal,
        ));
        out.client_id = Out::Known(live.client_id.clone());
        out.principal_id = Out::Known(live.principal_id.clone());
        out.owned = true;
        // What it records of its credentials and grants (for drift) follows the config.
        let records_stale = records::record_tags(&live.tags) != desired.records;
        let (action, reason) = if !owned {
            (Action::Adopt, None)
        } else if differs(&fields) {
            (Action::Update, None)
        } else if records_stale {
            (Action::Update, Some(RECORDS_STALE.into()))
        } else {
            (Action::NoOp, None)
        };
        self.push(id, action, reason, Some(live.id.clone()), fields, hash);
        out
    }

    fn identity_key(&self, id: NodeIndex) -> String {
        match &self.graph().node(id).address {
            Address::Identity(key) => key.clone(),
            other => other.to_string(),
        }
    }

    fn application(&mut self, id: NodeIndex, display_name: &str) -> Outputs {
        let mut out = Outputs::missing();
        if self.failed.contains(&Listing::Applications) {
            return out;
        }
        let key = self.identity_key(id);
        let unique = applications::unique_name(self.stack(), &key);
        let apps = &self.observed.azure.applications;
        let ours: Vec<&LiveApplication> = apps
            .iter()
            .filter(|a| a.owner.is_stack(self.stack()) && a.has_unique_name(&unique))
            .collect();
        let by_name: Vec<&LiveApplication> = apps
            .iter()
            .filter(|a| a.owner == Owner::Unowned && a.display_name == display_name)
            .collect();
        let (live, action) = match (ours.first(), by_name.as_slice()) {
            (Some(app), _) => (Some(*app), None),
            (None, []) => (None, Some(Action::Create)),
            (None, [one]) => (Some(*one), Some(Action::Adopt)),
            (None, many) => {
                self.error(
                    Some(id),
                    format!(
                        "{} applications are named {display_name:?} and none carries wiform's marker",
                        many.len()
                    ),
                    Some("give the identity a display_name no other application has, or delete the duplicates".into()),
                );
                return out;
            }
        };
        let mut fields = vec![field(
            "display_name",
            live.map(|l| json!(l.display_name)),
            After::Known(json!(display_name)),
        )];
        let hash = hash_of(live);
        let Some(live) = live else {
            fields.push(computed("app_id", None, After::Unknown));
            fields.push(computed("service_principal_id", None, After::Unknown));
            out.client_id = Out::Unknown;
            out.principal_id = Out::Unknown;
            out.owned = true;
            self.push(id, Action::Create, None, None, fields, hash);
            return out;
        };
        self.claimed.applications.insert(live.object_id.clone());
        fields.push(computed(
            "app_id",
            Some(&live.app_id),
            After::Known(json!(live.app_id)),
        ));
        let principal = live.service_principal_id.as_deref();
        fields.push(computed(
            "service_principal_id",
            principal,
            principal.map_or(After::Unknown, |p| After::Known(json!(p))),
        ));
        out.client_id = Out::Known(live.app_id.clone());
        out.principal_id = principal.map_or(Out::Unknown, |p| Out::Known(p.to_string()));
        out.live_key = Some(live.object_id.clone());
        out.owned = true;
        let (action, reason) = match action {
            Some(action) => (action, None),
            None if principal.is_none() => (
                Action::Update,
                Some("the application has no service principal".to_string()),
            ),
            None if differs(&fields) => (Action::Update, None),
            None if records::record_tags(&live.tag_map())
                != records::identity_records(self.graph(), id) =>
            {
                (Action::Update, Some(RECORDS_STALE.into()))
            }
            None => (Action::NoOp, None),
        };
        self.push(
            id,
            action,
            reason,
            Some(live.object_id.clone()),
            fields,
            hash,
        );
        out
    }

    fn federated_credential(
        &mut self,
        id: NodeIndex,
        kind: IdentityKind,
        name: &str,
        issuer: &IssuerSource,
        subject: &str,
        audiences: &[String],
    ) {
        let Some((_, parent)) = self
            .input_of(id, Output::Exists)
            .or_else(|| self.input_of(id, Output::ObjectId))
        else {
            return;
        };
        let parent = parent.clone();
        if parent.client_id == Out::Missing {
            return;
        }
        let issuer = match issuer {
            IssuerSource::Url(url) => Out::Known(url.clone()),
            IssuerSource::Cluster(_) => match self.input_of(id, Output::IssuerUrl) {
                Some((_, cluster)) => cluster.issuer_url.clone(),
                None => Out::Missing,
            },
        };
        let live = match &parent.live_key {
            None => None,
            Some(key) => {
                let (listing, list) = match kind {
                    IdentityKind::Managed => (
                        Listing::IdentityCredentials(key.clone()),
                        self.observed.azure.identity_credentials.get(key).map(|l| {
                            l.iter()
                                .map(|c| {
                                    (
                                        c.id.clone(),
                                        c.name.clone(),
                                        c.issuer.clone(),
                                        c.subject.clone(),
                                        c.audiences.clone(),
                                    )
                                })
                                .collect::<Vec<_>>()
                        }),
                    ),
                    IdentityKind::Application => (
                        Listing::ApplicationCredentials(key.clone()),
                        self.observed
                            .azure
                            .application_credentials
                            .get(key)
                            .map(|l| {
                                l.iter()
                                    .map(|c| {
                                        (
                                            c.id.clone(),
                                            c.name.clone(),
                                            c.issuer.clone(),
                                            c.subject.clone(),
                                            c.audiences.clone(),
                                        )
                                    })
                                    .collect::<Vec<_>>()
                            }),
                    ),
                };
                if self.failed.contains(&listing) {
                    return;
                }
                list.unwrap_or_default()
                    .into_iter()
                    .find(|(_, n, ..)| n.eq_ignore_ascii_case(name))
            }
        };
        if issuer == Out::Missing {
            // The cluster's error says why. The live credential is still the config's, not an
            // extra to prune.
            if let Some((live_id, ..)) = &live {
                self.claimed
                    .credentials
                    .insert(live_id.to_ascii_lowercase());
            }
            return;
        }
        let fields = vec![
            // Matched by name without regard to case: the same name, however it is spelled.
            field(
                "name",
                live.as_ref().map(|_| json!(name)),
                After::Known(json!(name)),
            ),
            field("issuer", live.as_ref().map(|l| json!(l.2)), issuer.after()),
            field(
                "subject",
                live.as_ref().map(|l| json!(l.3)),
                After::Known(json!(subject)),
            ),
            field(
                "audiences",
                live.as_ref().map(|l| json!(l.4)),
                After::Known(json!(audiences)),
            ),
        ];
        let hash = hash_of(live.as_ref());
        let Some((live_id, _, live_issuer, live_subject, live_audiences)) = live else {
            self.push(id, Action::Create, None, None, fields, hash);
            return;
        };
        self.claimed
            .credentials
            .insert(live_id.to_ascii_lowercase());
        let issuer_changed = issuer.known().is_some_and(|i| i != live_issuer);
        let (action, reason) = if issuer_changed {
            (
                Action::Replace,
                Some("issuer changed: the credential is deleted and created again under the same name; tokens from the old issuer stop working".to_string()),
            )
        } else if live_subject != subject {
            (
                Action::Replace,
                Some("subject changed: the credential is deleted and created again under the same name; tokens with the old subject stop working".to_string()),
            )
        } else if issuer == Out::Unknown {
            (
                Action::Update,
                Some("the cluster's issuer is known once its OIDC issuer is on".to_string()),
            )
        } else if live_audiences != audiences {
            (Action::Update, None)
        } else {
            (Action::NoOp, None)
        };
        self.push(id, action, reason, Some(live_id), fields, hash);
    }

    fn role_definition_guid(
        &mut self,
        id: NodeIndex,
        role: &RoleRef,
        scope: &str,
    ) -> Option<String> {
        match role {
            RoleRef::Builtin { id, .. } | RoleRef::Id { id } => Some(id.to_ascii_lowercase()),
            RoleRef::Name { name } => {
                let resolved = self
                    .observed
                    .azure
                    .roles
                    .iter()
                    .find(|r| r.scope == scope && &r.role == role)
                    .map(|r| r.definition.guid.clone());
                if resolved.is_none()
                    && !self
                        .failed
                        .contains(&Listing::Role(scope.to_string(), name.clone()))
                {
                    self.error(
                        Some(id),
                        format!("role `{name}` was not resolved at {scope}"),
                        None,
                    );
                }
                resolved
            }
        }
    }

    fn role_assignment(
        &mut self,
        id: NodeIndex,
        role: &RoleRef,
        scope: &str,
        condition: Option<&str>,
    ) {
        let Some((_, parent)) = self.input_of(id, Output::PrincipalId) else {
            return;
        };
        let principal = parent.principal_id.clone();
        if principal == Out::Missing {
            return;
        }
        let Some(guid) = self.role_definition_guid(id, role, scope) else {
            if let Some(principal) = principal.known() {
                self.claimed.unresolved_grants.insert((
                    principal.to_ascii_lowercase(),
                    roles::normalise_scope(scope),
                ));
            }
            return;
        };
        let scope_norm = roles::normalise_scope(scope);
        let live: Option<&LiveRoleAssignment> = match principal.known() {
            None => None,
            Some(principal) => {
                let sub = crate::providers::azure::client::subscription_of(scope)
                    .map(|s| s.to_ascii_lowercase())
                    .unwrap_or_default();
                if self.failed.contains(&Listing::RoleAssignments(sub))
                    || self
                        .failed
                        .contains(&Listing::RoleAssignmentsAt(scope.to_string()))
                {
                    return;
                }
                self.observed.azure.role_assignments.iter().find(|a| {
                    a.principal_id.eq_ignore_ascii_case(principal)
                        && a.scope == scope_norm
                        && a.role_definition_guid == guid
                })
            }
        };
        let fields = vec![
            field(
                "role",
                live.map(|_| json!(role.display())),
                After::Known(json!(role.display())),
            ),
            // Matched by the normalised scope: the same scope, however ARM spells it.
            field(
                "scope",
                live.map(|_| json!(scope)),
                After::Known(json!(scope)),
            ),
            field(
                "principal_id",
                live.map(|l| json!(l.principal_id)),
                principal.after(),
            ),
            field(
                "condition",
                live.and_then(|l| l.condition.as_ref().map(|c| json!(c))),
                condition.map_or(After::Removed, |c| After::Known(json!(c))),
            ),
        ];
        let hash = hash_of(live);
        let Some(live) = live else {
            self.push(id, Action::Create, None, None, fields, hash);
            return;
        };
        self.claimed
            .assignments
            .insert(live.id.to_ascii_lowercase());
        let action = match &live.owner {
            o if o.is_stack(self.stack()) => {
                if live.condition.as_deref() != condition {
                    Action::Update
                } else {
                    Action::NoOp
                }
            }
            Owner::Unowned => Action::Adopt,
            other => {
                self.error(
                    Some(id),
                    format!(
                        "role assignment {} belongs to {}",
                        live.name,
                        owner_text(other)
                    ),
                    None,
                );
                return;
            }
        };
        self.push(id, action, None, Some(live.id.clone()), fields, hash);
    }

    // -----------------------------------------------------------------------------------------
    // Kubernetes

    fn cluster_observation(&self, id: NodeIndex) -> Option<&ClusterObservation> {
        let cluster = self.graph().node(id).cluster.as_ref()?;
        self.observed.clusters.get(cluster)?.as_ref().ok()
    }

    fn namespace(&mut self, id: NodeIndex, name: &str) {
        let Some(observation) = self.cluster_observation(id) else {
            return;
        };
        let cluster = observation.cluster.clone();
        let live = observation.namespace(name).cloned();
        let fields = vec![field(
            "name",
            live.as_ref().map(|l| json!(l.name())),
            After::Known(json!(name)),
        )];
        let hash = hash_of(live.as_ref());
        let Some(live) = live else {
            self.push(id, Action::Create, None, None, fields, hash);
            return;
        };
        self.claimed.namespaces.insert((cluster, name.to_string()));
        let (action, reason) = if live.meta.owned_by(self.stack()) {
            (Action::NoOp, None)
        } else {
            (
                Action::Read,
                Some("exists; wiform uses it and leaves it alone".to_string()),
            )
        };
        self.push(id, action, reason, Some(name.to_string()), fields, hash);
    }

    fn service_account(&mut self, id: NodeIndex, resource: &Resource) {
        let Some(observation) = self.cluster_observation(id) else {
            return;
        };
        let Some((_, identity)) = self.input_of(id, Output::ClientId) else {
            return;
        };
        let client_id = identity.client_id.clone();
        if client_id == Out::Missing {
            return;
        }
        // The desired account with a placeholder client id, shown as (known after apply).
        let placeholder = client_id.known().unwrap_or("");
        let Some(desired) =
            DesiredServiceAccount::from_resource(self.stack(), resource, placeholder)
        else {
            return;
        };
        let cluster = observation.cluster.clone();
        let live: Option<LiveServiceAccount> = observation
            .service_account(&desired.namespace, &desired.name)
            .cloned();
        let manifest = desired.manifest();
        let annotations: BTreeMap<String, String> = manifest
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !ownership::is_marker_key(k))
            .collect();
        let labels: BTreeMap<String, String> = manifest
            .metadata
            .labels
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| !ownership::is_marker_key(k))
            .collect();
        // Before: what wiform's field manager owns (or, for an account it does not own yet,
        // the keys it is about to set).
        let owned_before = |map: &BTreeMap<String, String>,
                            keys: &BTreeSet<String>,
                            wanted: &BTreeMap<String, String>| {
            map.iter()
                .filter(|(k, _)| {
                    (keys.contains(*k) || wanted.contains_key(*k)) && !ownership::is_marker_key(k)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        let before_annotations = live.as_ref().map(|l| {
            owned_before(
                &l.meta.annotations,
                &l.meta.wiform_fields.annotations,
                &annotations,
            )
        });
        let before_labels = live
            .as_ref()
            .map(|l| owned_before(&l.meta.labels, &l.meta.wiform_fields.labels, &labels));
        let mut fields = vec![
            field(
                "namespace",
                live.as_ref().map(|l| json!(l.namespace)),
                After::Known(json!(desired.namespace)),
            ),
            field(
                "name",
                live.as_ref().map(|l| json!(l.name())),
                After::Known(json!(desired.name)),
            ),
        ];
        let mut annotation_fields =
            map_fields("annotations", before_annotations.as_ref(), &annotations);
        if client_id == Out::Unknown {
            let name = format!("annotations[{CLIENT_ID_ANNOTATION:?}]");
            for f in &mut annotation_fields {
                if f.name == name {
                    f.after = After::Unknown;
                }
            }
        }
        fields.extend(annotation_fields);
        fields.extend(map_fields("labels", before_labels.as_ref(), &labels));
        let hash = hash_of(live.as_ref());
        let Some(live) = live else {
            self.push(id, Action::Create, None, None, fields, hash);
            return;
        };
        self.claimed.service_accounts.insert((
            cluster,
            live.namespace.clone(),
            live.name().to_string(),
        ));
        let live_id = Some(format!("{}/{}", live.namespace, live.name()));
        let action = if live.meta.owned_by(self.stack()) {
            if differs(&fields) {
                Action::Update
            } else {
                Action::NoOp
            }
        } else if live.meta.owner == Owner::Unowned {
            Action::Adopt
        } else {
            self.error(
                Some(id),
                format!(
                    "service account {}/{} belongs to {}",
                    live.namespace,
                    live.name(),
                    owner_text(&live.meta.owner)
                ),
                Some(
                    "bind another service account, or remove it from the other stack first".into(),
                ),
            );
            return;
        };
        self.push(id, action, None, live_id, fields, hash);
    }

    // -----------------------------------------------------------------------------------------
    // What the stack owns and the config no longer names

    fn delete(
        &mut self,
        address: String,
        resource_type: &str,
        // Beyond "not in config", which `not_in_config` says.
        reason: Option<&str>,
        id: Option<String>,
        fields: Vec<FieldChange>,
        live_hash: String,
    ) {
        self.seen.push((address.clone(), live_hash));
        self.deletes.push(Change {
            address,
            resource_type: resource_type.to_string(),
            action: Action::Delete,
            reason: reason.map(str::to_string),
            id,
            fields,
            not_in_config: true,
            depends_on: Vec::new(),
        });
    }

    /// Does the config name this namespace, or a service account in it (`create_namespace =
    /// false` makes no namespace node)?
    fn config_uses_namespace(&self, cluster: &str, name: &str) -> bool {
        self.graph().node_ids().any(|id| {
            let node = self.graph().node(id);
            node.cluster.as_deref() == Some(cluster)
                && match &node.resource {
                    Resource::Namespace { name: n }
                    | Resource::ServiceAccount { namespace: n, .. } => n == name,
                    _ => false,
                }
        })
    }

    fn gone(name: &str, value: Value) -> FieldChange {
        field(name, Some(value), After::Removed)
    }

    fn prune(&mut self) {
        let stack = self.stack().to_string();
        // Kubernetes first (dependents before what they depend on).
        let clusters: Vec<(String, ClusterObservation)> = self
            .observed
            .clusters
            .iter()
            .filter_map(|(k, v)| v.as_ref().ok().map(|o| (k.clone(), o.clone())))
            .collect();
        for (cluster, observation) in &clusters {
            for sa in observation.owned_service_accounts() {
                let key = (cluster.clone(), sa.namespace.clone(), sa.name().to_string());
                let address = Address::ServiceAccount {
                    cluster: cluster.clone(),
                    namespace: sa.namespace.clone(),
                    name: sa.name().to_string(),
                };
                // Named by the config but not planned (its identity could not be): not an extra.
                if self.claimed.service_accounts.contains(&key)
                    || self.graph().find(&address).is_some()
                {
                    continue;
                }
                let fields = vec![
                    Self::gone("namespace", json!(sa.namespace)),
                    Self::gone("name", json!(sa.name())),
                ];
                self.delete(
                    address.to_string(),
                    "service_account",
                    None,
                    Some(format!("{}/{}", sa.namespace, sa.name())),
                    fields,
                    hash_of(Some(sa)),
                );
            }
        }
        for (cluster, observation) in &clusters {
            for ns in observation.owned_namespaces() {
                // A namespace already terminating is on its way out (Kubernetes finishes a
                // namespace delete in the background).
                if ns.meta.terminating
                    || self
                        .claimed
                        .namespaces
                        .contains(&(cluster.clone(), ns.name().to_string()))
                    || self.config_uses_namespace(cluster, ns.name())
                {
                    continue;
                }
                let address = Address::Namespace {
                    cluster: cluster.clone(),
                    name: ns.name().to_string(),
                };
                self.delete(
                    address.to_string(),
                    "namespace",
                    Some("deleted only if it holds nothing wiform does not own"),
                    Some(ns.name().to_string()),
                    vec![Self::gone("name", json!(ns.name()))],
                    hash_of(Some(ns)),
                );
            }
        }

        // Role assignments of the stack's principals, then credentials, then identities.
        let azure = &self.observed.azure;
        // Live key → identity key of the identities in the config that exist, by kind.
        let kept = |is_kind: fn(&Resource) -> bool| -> BTreeMap<String, String> {
            self.outputs
                .iter()
                .filter(|(id, _)| is_kind(&self.graph().node(**id).resource))
                .filter_map(|(id, o)| Some((o.live_key.clone()?, self.identity_key(*id))))
                .collect()
        };
        let kept_identities = kept(|r| matches!(r, Resource::ManagedIdentity { .. }));
        let kept_apps = kept(|r| matches!(r, Resource::Application { .. }));
        // Principals whose extras are pruned: identities in config (owned or adopted), and
        // owned identities that are not.
        let mut principals: BTreeMap<String, String> = BTreeMap::new();
        let mut doomed_identities: Vec<LiveIdentity> = Vec::new();
        for identity in azure.identities.values() {
            let key = identity.key();
            if let Some(name) = kept_identities.get(&key) {
                principals.insert(identity.principal_id.clone(), name.clone());
            } else if identity.owner.is_stack(&stack) && !self.claimed.identities.contains(&key) {
                principals.insert(identity.principal_id.clone(), identity.name.clone());
                doomed_identities.push(identity.clone());
            }
        }
        let mut doomed_apps: Vec<LiveApplication> = Vec::new();
        for app in &azure.applications {
            if let Some(name) = kept_apps.get(&app.object_id) {
                if let Some(p) = &app.service_principal_id {
                    principals.insert(p.clone(), name.clone());
                }
            } else if app.owner.is_stack(&stack)
                && !self.claimed.applications.contains(&app.object_id)
            {
                if let Some(p) = &app.service_principal_id {
                    principals.insert(p.clone(), app.display_name.clone());
                }
                doomed_apps.push(app.clone());
            }
        }
        let assignments: Vec<LiveRoleAssignment> = azure
            .role_assignments
            .iter()
            .filter(|a| principals.contains_key(&a.principal_id))
            .filter(|a| {
                !self
                    .claimed
                    .assignments
                    .contains(&a.id.to_ascii_lowercase())
                    && !self
                        .claimed
                        .unresolved_grants
                        .contains(&(a.principal_id.clone(), a.scope.clone()))
            })
            .cloned()
            .collect();
        for a in assignments {
            let identity = principals.get(&a.principal_id).cloned().unwrap_or_default();
            if !a.owner.is_stack(&stack) && a.owner != Owner::Unowned {
                continue;
            }
            let role = builtin_roles::by_id(&a.role_definition_guid)
                .map(|r| r.name.to_string())
                .unwrap_or_else(|| a.role_definition_guid.clone());
            let address = Address::RoleGrant {
                identity,
                role: role.clone(),
                scope: a.scope.clone(),
            };
            let fields = vec![
                Self::gone("role", json!(role)),
                Self::gone("scope", json!(a.scope)),
                Self::gone("principal_id", json!(a.principal_id)),
            ];
            let reason = (a.owner == Owner::Unowned)
                .then_some("made outside wiform, on an identity this stack owns");
            self.delete(
                address.to_string(),
                "role_assignment",
                reason,
                Some(a.id.clone()),
                fields,
                hash_of(Some(&a)),
            );
        }
        // (identity, name, id, issuer, subject, live hash) of every credential to prune.
        type Row = (String, String, String, String, String, String);
        fn row<C: Serialize>(
            identity: &str,
            name: &str,
            id: &str,
            issuer: &str,
            subject: &str,
            live: &C,
        ) -> Row {
            (
                identity.into(),
                name.into(),
                id.into(),
                issuer.into(),
                subject.into(),
                hash_of(Some(live)),
            )
        }
        let of_identities = azure
            .identity_credentials
            .iter()
            .filter_map(|(key, credentials)| {
                let identity = kept_identities.get(key).cloned().or_else(|| {
                    doomed_identities
                        .iter()
                        .find(|i| &i.key() == key)
                        .map(|i| i.name.clone())
                })?;
                Some(
                    credentials
                        .iter()
                        .map(move |c| row(&identity, &c.name, &c.id, &c.issuer, &c.subject, c)),
                )
            });
        let of_applications =
            azure
                .application_credentials
                .iter()
                .filter_map(|(object_id, credentials)| {
                    let identity = kept_apps.get(object_id)?.clone();
                    Some(
                        credentials
                            .iter()
                            .map(move |c| row(&identity, &c.name, &c.id, &c.issuer, &c.subject, c)),
                    )
                });
        let credential_deletes: Vec<Row> = of_identities
            .flatten()
            .chain(of_applications.flatten())
            .filter(|(_, _, id, ..)| !self.claimed.credentials.contains(&id.to_ascii_lowercase()))
            .collect();
        for (identity, name, id, issuer, subject, hash) in credential_deletes {
            let address = Address::FederatedCredential {
                identity,
                key: CredentialKey::Named(name.clone()),
            };
            let fields = vec![
                Self::gone("name", json!(name)),
                Self::gone("issuer", json!(issuer)),
                Self::gone("subject", json!(subject)),
            ];
            self.delete(
                address.to_string(),
                "federated_credential",
                None,
                Some(id),
                fields,
                hash,
            );
        }
        for identity in doomed_identities {
            let fields = vec![
                Self::gone("name", json!(identity.name)),
                Self::gone("resource_group", json!(identity.resource_group)),
                Self::gone("location", json!(identity.location)),
            ];
            self.delete(
                Address::Identity(identity.name.clone()).to_string(),
                "managed_identity",
                Some("its federated credentials and role assignments are deleted with it"),
                Some(identity.id.clone()),
                fields,
                hash_of(Some(&identity)),
            );
        }
        for app in doomed_apps {
            self.delete(
                Address::Identity(app.display_name.clone()).to_string(),
                "application",
                Some("its service principal and federated credentials go with it"),
                Some(app.object_id.clone()),
                vec![Self::gone("display_name", json!(app.display_name))],
                hash_of(Some(&app)),
            );
        }
    }
}

#[cfg(test)]
mod tests;
