//! What a kind's steps work with: the context the engine hands a kind's diff ([`PlanCtx`]) and
//! apply ([`ApplyCtx`]), the outputs that flow from a resource to its dependents, and the
//! helpers every kind's diff uses to describe fields.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use super::{Kind, Output};
use crate::address::Address;
use crate::engine::observe::{ClusterFailure, Observed};
use crate::engine::plan::{Action, After, Change, FieldChange};
use crate::ownership::{self, Owner};
use crate::providers::azure::AzureApi;
use crate::providers::azure::observe::Listing;
use crate::providers::kube::{ClusterApi, ClusterObservation};

// ---------------------------------------------------------------------------------------------
// Planning

/// An output of a planned resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Known(String),
    /// Known once apply has made the resource.
    Unknown,
    /// Cannot be known: the resource could not be planned (an error says why).
    Missing,
}

impl Out {
    pub fn after(&self) -> After {
        match self {
            Out::Known(v) => After::Known(json!(v)),
            Out::Unknown | Out::Missing => After::Unknown,
        }
    }

    pub fn known(&self) -> Option<&str> {
        match self {
            Out::Known(v) => Some(v),
            _ => None,
        }
    }
}

/// What a planned resource gives its dependents.
#[derive(Debug, Clone)]
pub struct PlanOutputs {
    pub client_id: Out,
    pub principal_id: Out,
    pub issuer_url: Out,
    /// Managed identity: its live key (lower-case ARM id). Application: its object id.
    pub live_key: Option<String>,
    /// An identity's record of what was on it when wiform adopted it (`engine::records`):
    /// those of its extras are kept unless `prune_unmanaged`.
    pub unmanaged: BTreeSet<String>,
    pub prune_unmanaged: bool,
}

impl PlanOutputs {
    pub fn missing() -> Self {
        PlanOutputs {
            client_id: Out::Missing,
            principal_id: Out::Missing,
            issuer_url: Out::Missing,
            live_key: None,
            unmanaged: BTreeSet::new(),
            prune_unmanaged: false,
        }
    }
}

/// A live object the config matched: not an extra to prune.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    /// A managed identity, by its key.
    Identity(String),
    /// A federated credential, by its lower-case id.
    Credential(String),
    /// A role assignment, by its lower-case id.
    Assignment(String),
    /// An application, by its object id.
    Application(String),
    /// (cluster, name)
    Namespace(String, String),
    /// (cluster, namespace, name)
    ServiceAccount(String, String, String),
    /// (principal, normalised scope) of a grant whose role could not be resolved: which live
    /// assignment is its is unknown, so none there is pruned.
    UnresolvedGrant(String, String),
}

/// A change a kind decided on (the engine adds the address, kind and dependencies).
#[derive(Debug, Clone)]
pub struct Decision {
    pub action: Action,
    pub reason: Option<String>,
    /// The live object's id.
    pub live_id: Option<String>,
    pub fields: Vec<FieldChange>,
    /// The hash of the live object (or "absent"), for the plan's fingerprint.
    pub live_hash: String,
}

/// What a kind's planner sees (the observation, the outputs of what it depends on) and where it
/// puts what it finds. Pure data: planning does no IO.
pub struct PlanCtx<'a> {
    pub stack: &'a str,
    pub observed: &'a Observed,
    /// Lists that failed: nothing is planned on missing knowledge.
    pub failed: &'a BTreeSet<Listing>,
    /// For Kubernetes objects: the key of their cluster in the config.
    pub cluster: Option<&'a str>,
    /// The outputs of the resources this one depends on, by what they give it.
    pub inputs: Vec<(Output, &'a PlanOutputs)>,
    /// For identities: the records of their credentials and grants (`engine::records`).
    pub records: BTreeMap<String, String>,
    pub decision: Option<Decision>,
    pub errors: Vec<(String, Option<String>)>,
    pub claims: Vec<Claim>,
}

impl<'a> PlanCtx<'a> {
    /// The outputs of the dependency that provides `output`.
    pub fn input(&self, output: Output) -> Option<&'a PlanOutputs> {
        self.inputs
            .iter()
            .find(|(what, _)| *what == output)
            .map(|(_, o)| *o)
    }

    pub fn failed(&self, listing: &Listing) -> bool {
        self.failed.contains(listing)
    }

    pub fn decide(
        &mut self,
        action: Action,
        reason: Option<String>,
        live_id: Option<String>,
        fields: Vec<FieldChange>,
        live_hash: String,
    ) {
        self.decision = Some(Decision {
            action,
            reason,
            live_id,
            fields,
            live_hash,
        });
    }

    pub fn error(&mut self, message: String, hint: Option<String>) {
        self.errors.push((message, hint));
    }

    pub fn claim(&mut self, claim: Claim) {
        self.claims.push(claim);
    }

    /// The observation of this object's cluster, when it could be made.
    pub fn cluster_observation(&self) -> Option<&'a ClusterObservation> {
        self.observed.cluster(self.cluster?)
    }

    /// Another stack's object is an error naming it and the way out; `None` then.
    pub fn ownership(
        &mut self,
        owner: &Owner,
        what: impl FnOnce() -> String,
        hint: Option<&str>,
    ) -> Option<bool> {
        if owner.is_stack(self.stack) {
            Some(true)
        } else if *owner == Owner::Unowned {
            Some(false)
        } else {
            self.error(
                format!("{} belongs to {}", what(), owner.describe()),
                hint.map(str::to_string),
            );
            None
        }
    }
}

/// A delete of a live object the config does not name (the engine decides which).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub address: Address,
    pub kind: Kind,
    /// Beyond "not in config", which the change's `not_in_config` says.
    pub reason: Option<&'static str>,
    pub live_id: String,
    pub fields: Vec<FieldChange>,
    pub live_hash: String,
}

impl Orphan {
    /// How the plan shows an object that was on an identity when wiform adopted it: read,
    /// never deleted (unless the identity says `prune_unmanaged = true`).
    pub fn into_unmanaged(self) -> Change {
        Change {
            address: self.address,
            resource_type: self.kind,
            action: Action::Read,
            reason: Some(
                "not managed by wiform: it was on the identity when wiform adopted it (`prune_unmanaged = true` on the identity lets apply delete it)"
                    .into(),
            ),
            id: Some(self.live_id),
            fields: self
                .fields
                .into_iter()
                .map(|f| FieldChange {
                    after: f.before.clone().map_or(After::Unknown, After::Known),
                    ..f
                })
                .collect(),
            not_in_config: true,
            depends_on: Vec::new(),
        }
    }

    pub fn into_change(self) -> Change {
        Change {
            address: self.address,
            resource_type: self.kind,
            action: Action::Delete,
            reason: self.reason.map(str::to_string),
            id: Some(self.live_id),
            fields: self.fields,
            not_in_config: true,
            depends_on: Vec::new(),
        }
    }
}

/// How an object's record of what was there when wiform adopted it names a tag.
pub fn tag_entry(key: &str) -> String {
    format!("tag:{key}")
}

/// The user tags (of an identity or a resource group, `live_tags` with markers) that the config
/// does not set and wiform leaves alone: all of them when it adopts the object now, else those
/// its record says were there at adoption.
pub fn kept_tags(
    live_tags: &BTreeMap<String, String>,
    config: &BTreeMap<String, String>,
    adopting: bool,
) -> BTreeMap<String, String> {
    use crate::engine::records;
    let recorded = records::read(live_tags, records::UNMANAGED_TAG).unwrap_or_default();
    crate::providers::azure::identities::user_tags(live_tags)
        .into_iter()
        .filter(|(k, _)| !config.contains_key(k))
        .filter(|(k, _)| adopting || recorded.contains(&records::unmanaged_entry(&tag_entry(k))))
        .collect()
}

/// The record of `kept` tags, as tags of their own (none when nothing is kept).
pub fn kept_tags_record(kept: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    use crate::engine::records;
    records::unmanaged_tags(
        &kept
            .keys()
            .map(|k| records::unmanaged_entry(&tag_entry(k)))
            .collect(),
    )
}

pub fn hash_of<T: Serialize>(live: Option<&T>) -> String {
    live.map_or_else(|| "absent".to_string(), |l| ownership::spec_hash(l))
}

pub fn field(name: &str, before: Option<Value>, after: After) -> FieldChange {
    FieldChange {
        name: name.to_string(),
        before,
        after,
        computed: false,
    }
}

/// A field Azure fills in (an id): shown, never a cause for change.
pub fn computed(name: &str, before: Option<&str>, after: After) -> FieldChange {
    FieldChange {
        name: name.to_string(),
        before: before.map(|b| json!(b)),
        after,
        computed: true,
    }
}

/// A field of an object that goes away.
pub fn gone(name: &str, value: Value) -> FieldChange {
    field(name, Some(value), After::Removed)
}

/// One field per map key (`tags["team"]`), so that each key shows its own change; keys only
/// in `before` are removed.
pub fn map_fields(
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

pub fn differs(fields: &[FieldChange]) -> bool {
    fields.iter().any(FieldChange::is_changed)
}

/// Update when a field differs, else nothing to do: for objects the stack owns.
pub fn update_if_differs(fields: &[FieldChange]) -> Action {
    if differs(fields) {
        Action::Update
    } else {
        Action::NoOp
    }
}

// ---------------------------------------------------------------------------------------------
// Applying

/// The outputs of a resource, as apply learns them (from the plan for objects that exist, from
/// the provider's answer for objects made now).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub client_id: Option<String>,
    pub principal_id: Option<String>,
    pub issuer_url: Option<String>,
    /// Managed identity: its ARM id. Application: its object id.
    pub id: Option<String>,
}

impl Outputs {
    /// The outputs a planned change already knows (objects that exist): the kind's computed
    /// fields and the live id.
    pub fn planned(change: &Change) -> Self {
        let known = |field: &str| {
            change
                .fields
                .iter()
                .find(|f| f.name == field)
                .and_then(|f| match &f.after {
                    After::Known(Value::String(s)) => Some(s.clone()),
                    _ => None,
                })
        };
        let (client_id, principal_id, issuer_url) = change.resource_type.output_fields();
        Outputs {
            client_id: client_id.and_then(known),
            principal_id: principal_id.and_then(known),
            issuer_url: issuer_url.and_then(known),
            id: change.id.clone(),
        }
    }

    /// Takes every output `from` knows.
    pub fn merge(&mut self, from: Outputs) {
        if from.client_id.is_some() {
            self.client_id = from.client_id;
        }
        if from.principal_id.is_some() {
            self.principal_id = from.principal_id;
        }
        if from.issuer_url.is_some() {
            self.issuer_url = from.issuer_url;
        }
        if from.id.is_some() {
            self.id = from.id;
        }
    }
}

/// Why a change could not be applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            hint: None,
        }
    }
}

/// From either provider's error (`?` on an Azure or Kubernetes call).
impl<E: crate::error::Explain> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            message: e.message(),
            hint: e.hint(),
        }
    }
}

/// What a kind's apply step works with: the providers, the observation the plan was made from,
/// the change, and the outputs of what it depends on.
pub struct ApplyCtx<'a, A, C> {
    pub stack: &'a str,
    pub azure: &'a A,
    pub observed: &'a Observed,
    pub clusters: &'a BTreeMap<String, Result<C, ClusterFailure>>,
    pub change: &'a Change,
    /// For Kubernetes objects: the key of their cluster in the config.
    pub cluster: Option<&'a str>,
    pub inputs: Vec<(Output, Outputs)>,
    /// For identities: the records of their credentials and grants.
    pub records: BTreeMap<String, String>,
}

impl<A: AzureApi, C: ClusterApi> ApplyCtx<'_, A, C> {
    /// The outputs of the dependency that provides `output`.
    pub fn input(&self, output: Output) -> Option<&Outputs> {
        self.inputs
            .iter()
            .find(|(what, _)| *what == output)
            .map(|(_, o)| o)
    }

    /// The connected cluster `key`.
    pub fn cluster_api(&self, key: Option<&str>) -> Result<&C, Failure> {
        let key = key.ok_or_else(|| Failure::new("no cluster"))?;
        match self.clusters.get(key) {
            Some(Ok(cluster)) => Ok(cluster),
            Some(Err(f)) => Err(Failure {
                message: f.message.clone(),
                hint: f.hint.clone(),
            }),
            None => Err(Failure::new(format!("cluster `{key}` is not connected"))),
        }
    }

    /// The observation of cluster `key`, for deletes (they need the live object).
    pub fn cluster_observation(&self, key: &str) -> Result<&ClusterObservation, Failure> {
        self.observed
            .cluster(key)
            .ok_or_else(|| Failure::new("the cluster was not observed"))
    }

    /// A field's value after the change, as the plan shows it.
    pub fn planned_field(&self, name: &str) -> Option<String> {
        self.change
            .fields
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| match &f.after {
                After::Known(Value::String(s)) => Some(s.clone()),
                _ => None,
            })
    }

    /// The live id of the object to delete.
    pub fn live_id(&self) -> Result<&str, Failure> {
        self.change
            .id
            .as_deref()
            .ok_or_else(|| Failure::new("the object's id is not known"))
    }
}
