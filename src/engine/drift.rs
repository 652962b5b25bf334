//! Drift: every difference a plan finds, classified by who made it.
//!
//! A plan says what apply would change; drift says why each change is there:
//!
//! - **drifted**: live state moved away from what wiform applied (an object changed or deleted
//!   outside wiform, or a credential or role assignment added by hand to an identity the stack
//!   owns). Someone should look: re-apply, or take the change into the config.
//! - **pending**: the config moved (it asks for something new or different, or no longer names
//!   an object the stack owns), or the object was never applied. Apply is all it takes.
//!
//! The evidence is the marker each owned object carries: the hash of the spec wiform last applied
//! ([`crate::ownership`]). When the live object's managed fields still hash to it, the
//! difference is the config's; when they do not, someone changed the object. For an object that
//! is gone, the evidence is what it was applied with: a service account wiform applied for the
//! identity, the federated credential of a service account, a cluster's federated credentials.
//! Objects with no marker of their own and no such evidence (a federated credential of a
//! non-Kubernetes issuer that is missing, a missing role assignment) count as never applied.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::NodeIndex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::observe::Observed;
use super::plan::{Action, Change, FieldChange, Plan, PlanError};
use super::records;
use crate::address::Address;
use crate::graph::Graph;
use crate::kinds::{Kind, aks_cluster};
use crate::ownership::Owner;

/// Version of the drift report's JSON shape (`schemas/drift.schema.json`).
pub const FORMAT_VERSION: u32 = 1;

/// Who made a difference.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Live state moved away from what wiform applied.
    Drifted,
    /// The config moved, or it was never applied.
    Pending,
}

/// What happened, more precisely.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The live object no longer matches the spec hash wiform recorded when it applied it.
    ChangedOutsideWiform,
    /// wiform applied it (the evidence says how we know) and it is gone.
    DeletedOutsideWiform,
    /// A federated credential or role assignment without wiform's marker on an identity this
    /// stack owns.
    AddedOutsideWiform,
    /// The live object is as wiform applied it; the config asks for something else.
    ConfigChanged,
    /// The config names it and it was never applied (or exists without wiform's marker and
    /// would be adopted).
    NotYetApplied,
    /// The stack owns it and the config no longer names it.
    RemovedFromConfig,
}

impl Cause {
    pub fn class(self) -> Class {
        match self {
            Cause::ChangedOutsideWiform
            | Cause::DeletedOutsideWiform
            | Cause::AddedOutsideWiform => Class::Drifted,
            Cause::ConfigChanged | Cause::NotYetApplied | Cause::RemovedFromConfig => {
                Class::Pending
            }
        }
    }
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftItem {
    pub address: Address,
    #[serde(rename = "type")]
    pub resource_type: Kind,
    pub class: Class,
    pub cause: Cause,
    /// What apply would do about it.
    pub action: Action,
    /// The live object's id, where it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What differs, in words: "tags[\"team\"] is \"payments\", the config says \"orders\"".
    pub detail: String,
    /// How we know, for drift: "its spec hash recorded at apply is … and the live fields hash
    /// to …".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Who can fix it, and how.
    pub fix: String,
    /// The fields that differ (before: live; after: the config).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// Counts per class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DriftSummary {
    pub drifted: usize,
    pub pending: usize,
    /// Resources compared and found in sync.
    pub in_sync: usize,
}

/// The outcome, as the exit code says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Exit 0.
    InSync,
    /// Exit 2, whatever else was found.
    Drifted,
    /// Exit 3: only config changes wait for apply.
    PendingOnly,
    /// Exit 1: something could not be read (a partial observation is never "in sync").
    Incomplete,
}

/// Everything `wiform drift` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftReport {
    pub format_version: u32,
    pub stack: String,
    pub config_file: String,
    pub verdict: Verdict,
    pub summary: DriftSummary,
    /// Drifted first, then pending; each in plan order.
    pub items: Vec<DriftItem>,
    /// What could not be read or planned.
    pub errors: Vec<PlanError>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Address>,
}

impl DriftReport {
    pub fn drifted(&self) -> impl Iterator<Item = &DriftItem> {
        self.items.iter().filter(|i| i.class == Class::Drifted)
    }

    pub fn pending(&self) -> impl Iterator<Item = &DriftItem> {
        self.items.iter().filter(|i| i.class == Class::Pending)
    }
}

/// Classifies every change of `plan` (made from `graph`) with the evidence in `observed`.
pub fn classify(plan: &Plan, observed: &Observed, graph: &Graph) -> DriftReport {
    let evidence = Evidence::new(plan, observed, graph);
    let mut items: Vec<DriftItem> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_change() || evidence.terminating(c))
        .map(|c| evidence.item(c))
        .collect();
    // Stable: drifted first, plan order within each class.
    items.sort_by_key(|i| i.class);
    let summary = DriftSummary {
        drifted: items.iter().filter(|i| i.class == Class::Drifted).count(),
        pending: items.iter().filter(|i| i.class == Class::Pending).count(),
        in_sync: plan.changes.len() - items.len(),
    };
    let verdict = if summary.drifted > 0 {
        Verdict::Drifted
    } else if !plan.errors.is_empty() {
        Verdict::Incomplete
    } else if summary.pending > 0 {
        Verdict::PendingOnly
    } else {
        Verdict::InSync
    };
    DriftReport {
        format_version: FORMAT_VERSION,
        stack: plan.stack.clone(),
        config_file: plan.config_file.clone(),
        verdict,
        summary,
        items,
        errors: plan.errors.clone(),
        targets: plan.targets.clone(),
    }
}

/// What a live object's marker says.
enum Record {
    /// Marker of this stack with a spec hash equal to the live fields' hash.
    Matches,
    /// Marker of this stack, and the live fields hash to something else.
    Differs { recorded: String, live: String },
    /// No marker, another stack's, or no hash recorded.
    Unknown,
}

impl Record {
    fn of(recorded: Option<&str>, live: String) -> Self {
        match recorded {
            Some(r) if r == live => Record::Matches,
            Some(r) => Record::Differs {
                recorded: r.to_string(),
                live,
            },
            None => Record::Unknown,
        }
    }
}

/// What drift knows beyond a change itself: the rest of the plan, the observation, the graph.
/// Each kind reads its own evidence through it ([`crate::kinds`]).
pub struct Evidence<'a> {
    observed: &'a Observed,
    graph: &'a Graph,
    pub stack: &'a str,
    /// Every change by address, in the order of the addresses' text (which evidence is named
    /// first when several would do).
    by_address: BTreeMap<String, &'a Change>,
    /// Graph nodes by address.
    nodes: BTreeMap<&'a Address, NodeIndex>,
    /// AKS clusters' issuer URLs → cluster keys, to record a live credential's issuer as the
    /// config does.
    pub cluster_issuers: BTreeMap<String, String>,
}

impl<'a> Evidence<'a> {
    fn new(plan: &'a Plan, observed: &'a Observed, graph: &'a Graph) -> Self {
        Evidence {
            observed,
            graph,
            stack: &plan.stack,
            by_address: plan
                .changes
                .iter()
                .map(|c| (c.address.to_string(), c))
                .collect(),
            nodes: graph
                .node_ids()
                .map(|id| (&graph.node(id).address, id))
                .collect(),
            cluster_issuers: aks_cluster::issuers(&plan.changes),
        }
    }

    pub fn observed(&self) -> &'a Observed {
        self.observed
    }

    /// The change planned for `address`.
    pub fn change(&self, address: &Address) -> Option<&'a Change> {
        self.by_address.get(&address.to_string()).copied()
    }

    /// What the identity a credential or grant belongs to records (`None`: it records
    /// nothing, or is not this stack's, or is gone).
    fn recorded(&self, change: &Change, tag: &str) -> Option<BTreeSet<String>> {
        let identity = self.change(&identity_address(change)?)?;
        let id = identity.id.as_deref()?;
        let azure = &self.observed.azure;
        if let Some(live) = azure.identities.get(&id.to_ascii_lowercase()) {
            return live
                .owner
                .is_stack(self.stack)
                .then(|| records::read(&live.tags, tag))?;
        }
        let app = azure.applications.iter().find(|a| a.object_id == id)?;
        app.owner
            .is_stack(self.stack)
            .then(|| records::read(&app.tag_map(), tag))?
    }

    /// The record entries of what the config asks for at `change`.
    fn desired_entries(&self, change: &Change) -> Vec<String> {
        self.nodes
            .get(&change.address)
            .map(|id| self.graph.node(*id).resource.recorded_as())
            .unwrap_or_default()
    }

    /// Is one of `entries` among what the identity records under `tag`? `None` when it records
    /// nothing.
    pub fn in_record(&self, change: &Change, tag: &str, entries: Vec<String>) -> Option<bool> {
        let recorded = self.recorded(change, tag)?;
        Some(entries.iter().any(|e| recorded.contains(e)))
    }

    fn item(&self, change: &Change) -> DriftItem {
        let (cause, evidence) = self.cause(change);
        DriftItem {
            address: change.address.clone(),
            resource_type: change.resource_type,
            class: cause.class(),
            cause,
            action: change.action,
            id: change.id.clone(),
            detail: detail(change, cause),
            evidence,
            fix: fix(change, cause).to_string(),
            fields: change.changed_fields().cloned().collect(),
        }
    }

    /// A namespace the config wants, or a service account in one, that someone is deleting
    /// (Terminating: its contents go, then it does).
    fn terminating(&self, change: &Change) -> bool {
        if change.action == Action::Delete || change.id.is_none() {
            return false;
        }
        let Some((cluster, namespace)) = change.address.kube_namespace() else {
            return false;
        };
        self.observed
            .cluster(cluster)
            .and_then(|c| c.namespace(namespace))
            .is_some_and(|ns| ns.meta.terminating)
    }

    fn cause(&self, change: &Change) -> (Cause, Option<String>) {
        if self.terminating(change) {
            let evidence = if change.resource_type == Kind::Namespace {
                "it is Terminating: someone deleted it"
            } else {
                "its namespace is Terminating: someone deleted it"
            };
            return (Cause::DeletedOutsideWiform, Some(evidence.into()));
        }
        match change.action {
            Action::Delete => self.extra(change),
            Action::Create => self.missing(change),
            Action::Adopt => (Cause::NotYetApplied, None),
            Action::Update | Action::Replace => self.different(change),
            Action::NoOp | Action::Read => (Cause::ConfigChanged, None),
        }
    }

    /// Live but not in the config: the stack's own (removed from the config) or added by hand.
    fn extra(&self, change: &Change) -> (Cause, Option<String>) {
        if let Some(found) = change.resource_type.extra_evidence(self, change) {
            return found;
        }
        match self.owner(change) {
            Some(owner) if owner.is_stack(self.stack) => (Cause::RemovedFromConfig, None),
            _ => (
                Cause::AddedOutsideWiform,
                Some("no wiform marker, on an identity this stack owns".into()),
            ),
        }
    }

    /// In the config, absent live: deleted (when something shows it was applied) or new.
    pub fn missing(&self, change: &Change) -> (Cause, Option<String>) {
        let kind = change.resource_type;
        // A credential or grant (what an identity records) of an identity deleted outside
        // wiform went with it.
        if kind.record_tag().is_some()
            && let Some(identity) = identity_address(change)
            && let Some(parent) = self.change(&identity)
            && parent.action == Action::Create
            && self.missing(parent).0 == Cause::DeletedOutsideWiform
        {
            return (
                Cause::DeletedOutsideWiform,
                Some(format!(
                    "{identity} was deleted outside wiform, and this with it"
                )),
            );
        }
        if let Some(tag) = kind.record_tag()
            && let Some(applied) = self.in_record(change, tag, self.desired_entries(change))
        {
            return if applied {
                (
                    Cause::DeletedOutsideWiform,
                    Some(format!(
                        "{} records it among what wiform applied (tag {tag})",
                        identity_address(change)
                            .map(|a| a.to_string())
                            .unwrap_or_default()
                    )),
                )
            } else {
                (Cause::NotYetApplied, None)
            };
        }
        match kind.deletion_evidence(self, change) {
            Some(evidence) => (Cause::DeletedOutsideWiform, Some(evidence)),
            None => (Cause::NotYetApplied, None),
        }
    }

    /// Live and in the config, but different: who moved?
    fn different(&self, change: &Change) -> (Cause, Option<String>) {
        if let Some(found) = change.resource_type.change_evidence(self, change) {
            return found;
        }
        match self.record(change) {
            Record::Differs { recorded, live } => (
                Cause::ChangedOutsideWiform,
                Some(format!(
                    "spec hash recorded at apply {recorded}, live fields hash to {live}"
                )),
            ),
            Record::Matches | Record::Unknown => (Cause::ConfigChanged, None),
        }
    }

    /// The changes of `kind` that depend on `address`.
    pub fn dependents<'b>(
        &'b self,
        address: &'b Address,
        kind: Kind,
    ) -> impl Iterator<Item = &'a Change> + 'b {
        self.by_address
            .values()
            .copied()
            .filter(move |c| c.resource_type == kind && c.depends_on.iter().any(|d| d == address))
    }

    /// The service account a Kubernetes federated credential is for: same identity, subject
    /// `system:serviceaccount:NS:NAME`.
    pub fn service_account_for(&self, credential: &Change) -> Option<&'a Change> {
        let subject = field_value(credential, "subject")?;
        let rest = subject.strip_prefix("system:serviceaccount:")?;
        let (namespace, name) = rest.split_once(':')?;
        let identity = credential
            .depends_on
            .iter()
            .find(|d| matches!(d, Address::Identity(_)))?;
        self.dependents(identity, Kind::ServiceAccount).find(|sa| {
            matches!(&sa.address, Address::ServiceAccount { namespace: n, name: a, .. }
                    if n == namespace && a == name)
        })
    }

    /// The federated credential of a service account (the reverse of the above).
    pub fn credential_for(&self, service_account: &Change) -> Option<&'a Change> {
        let identity = service_account
            .depends_on
            .iter()
            .find(|d| matches!(d, Address::Identity(_)))?;
        self.dependents(identity, Kind::FederatedCredential)
            .find(|fic| {
                self.service_account_for(fic)
                    .is_some_and(|sa| sa.address == service_account.address)
            })
    }

    pub fn owned(&self, change: &Change) -> bool {
        self.owner(change).is_some_and(|o| o.is_stack(self.stack))
    }

    /// The marker of the live object behind `change`.
    fn owner(&self, change: &Change) -> Option<&'a Owner> {
        self.live(change).map(|(owner, _)| owner)
    }

    /// What the live object's marker says of its fields.
    fn record(&self, change: &Change) -> Record {
        match self.live(change) {
            Some((owner, live_hash)) => Record::of(
                owner.marker().and_then(|m| m.spec_hash.as_deref()),
                live_hash,
            ),
            None => Record::Unknown,
        }
    }

    /// The live object behind `change`, as its marker and the hash of its managed fields now.
    fn live(&self, change: &Change) -> Option<(&'a Owner, String)> {
        let id = change.id.as_deref()?;
        change.resource_type.drift_live(self.observed, change, id)
    }
}

/// `identity.X` for a credential or grant of identity `X` (from its dependencies, or from its
/// address when it is not in the config).
pub fn identity_address(change: &Change) -> Option<Address> {
    if let Some(d) = change
        .depends_on
        .iter()
        .find(|d| matches!(d, Address::Identity(_)))
    {
        return Some(d.clone());
    }
    match &change.address {
        Address::FederatedCredential { identity, .. } | Address::RoleGrant { identity, .. } => {
            Some(Address::Identity(identity.clone()))
        }
        _ => None,
    }
}

pub fn field_value(change: &Change, name: &str) -> Option<String> {
    let field = change.fields.iter().find(|f| f.name == name)?;
    let value = match &field.after {
        super::plan::After::Known(v) => Some(v),
        _ => field.before.as_ref(),
    }?;
    value.as_str().map(str::to_string)
}

/// What differs, in one line.
fn detail(change: &Change, cause: Cause) -> String {
    let changed: Vec<String> = change
        .changed_fields()
        .filter(|f| !f.computed)
        .map(|f| {
            let before = f
                .before
                .as_ref()
                .map_or_else(|| "absent".to_string(), |v| v.to_string());
            match &f.after {
                super::plan::After::Known(v) => {
                    format!("{} is {before}, the config says {v}", f.name)
                }
                super::plan::After::Removed => {
                    format!("{} is {before}, the config has none", f.name)
                }
                super::plan::After::Unknown => {
                    format!("{} is {before}, to be set by apply", f.name)
                }
            }
        })
        .collect();
    match cause {
        Cause::DeletedOutsideWiform if !change.action.is_change() => {
            "being deleted outside wiform".into()
        }
        Cause::DeletedOutsideWiform => "deleted outside wiform".into(),
        Cause::NotYetApplied if change.action == Action::Adopt => {
            "exists without wiform's marker and matches the config: apply adopts it".into()
        }
        Cause::NotYetApplied => "in the config, not applied yet".into(),
        Cause::RemovedFromConfig => "owned by this stack, no longer in the config".into(),
        Cause::AddedOutsideWiform => "added outside wiform".into(),
        Cause::ChangedOutsideWiform | Cause::ConfigChanged if changed.is_empty() => {
            change.reason.clone().unwrap_or_else(|| "differs".into())
        }
        Cause::ChangedOutsideWiform | Cause::ConfigChanged => changed.join("; "),
    }
}

/// Who can fix it, and how.
fn fix(change: &Change, cause: Cause) -> &'static str {
    match cause {
        // Still there, on its way out: nothing can be made in a terminating namespace.
        Cause::DeletedOutsideWiform if !change.action.is_change() => {
            "once the namespace is gone, re-run `wiform apply` to make it again (or remove it from the config)"
        }
        Cause::ChangedOutsideWiform | Cause::DeletedOutsideWiform => {
            "re-run `wiform apply` to restore what the config says, or change the config to keep the new state"
        }
        Cause::AddedOutsideWiform => change.resource_type.adopt_fix(),
        Cause::ConfigChanged | Cause::NotYetApplied | Cause::RemovedFromConfig => {
            "run `wiform apply`"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::After;
    use serde_json::json;

    fn change(address: &str, resource_type: &str, action: Action) -> Change {
        Change {
            address: address.parse().unwrap(),
            resource_type: resource_type.parse().unwrap(),
            action,
            reason: None,
            id: None,
            fields: Vec::new(),
            not_in_config: false,
            depends_on: Vec::new(),
        }
    }

    fn plan(changes: Vec<Change>, errors: Vec<PlanError>) -> Plan {
        Plan {
            format_version: 1,
            stack: "s".into(),
            config_file: "identity.toml".parse().unwrap(),
            changes,
            errors,
            targets: Vec::new(),
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn nothing_to_do_is_in_sync() {
        let report = classify(
            &plan(
                vec![change("identity.a", "managed_identity", Action::NoOp)],
                vec![],
            ),
            &Observed::default(),
            &Graph::default(),
        );
        assert_eq!(report.verdict, Verdict::InSync);
        assert_eq!(report.summary.in_sync, 1);
    }

    #[test]
    fn a_new_resource_is_pending() {
        let report = classify(
            &plan(
                vec![change("identity.a", "managed_identity", Action::Create)],
                vec![],
            ),
            &Observed::default(),
            &Graph::default(),
        );
        assert_eq!(report.verdict, Verdict::PendingOnly);
        assert_eq!(report.items[0].cause, Cause::NotYetApplied);
    }

    #[test]
    fn an_unmarked_extra_on_an_owned_identity_is_drift() {
        let mut extra = change(
            "role_grant.a[\"Reader\" @ /x]",
            "role_assignment",
            Action::Delete,
        );
        extra.not_in_config = true;
        let report = classify(
            &plan(
                vec![
                    change("identity.a", "managed_identity", Action::Create),
                    extra,
                ],
                vec![],
            ),
            &Observed::default(),
            &Graph::default(),
        );
        assert_eq!(report.verdict, Verdict::Drifted);
        // Drifted first.
        assert_eq!(report.items[0].cause, Cause::AddedOutsideWiform);
        assert_eq!(
            report.summary,
            DriftSummary {
                drifted: 1,
                pending: 1,
                in_sync: 0
            }
        );
    }

    #[test]
    fn an_unreadable_scope_is_never_in_sync() {
        let error = PlanError {
            address: None,
            message: "could not read".into(),
            hint: None,
        };
        let report = classify(
            &plan(vec![], vec![error.clone()]),
            &Observed::default(),
            &Graph::default(),
        );
        assert_eq!(report.verdict, Verdict::Incomplete);
        let report = classify(
            &plan(
                vec![change("identity.a", "managed_identity", Action::Create)],
                vec![error],
            ),
            &Observed::default(),
            &Graph::default(),
        );
        assert_eq!(report.verdict, Verdict::Incomplete);
    }

    #[test]
    fn a_missing_credential_without_evidence_is_not_yet_applied() {
        let mut fic = change(
            "federated_credential.api/lab-default-api",
            "federated_credential",
            Action::Create,
        );
        fic.depends_on = vec![
            "identity.api".parse().unwrap(),
            "cluster.lab".parse().unwrap(),
        ];
        fic.fields = vec![FieldChange {
            name: "subject".into(),
            before: None,
            after: After::Known(json!("system:serviceaccount:default:api")),
            computed: false,
        }];
        let mut sa = change(
            "service_account.lab/default/api",
            "service_account",
            Action::NoOp,
        );
        sa.depends_on = vec!["identity.api".parse().unwrap()];
        sa.id = Some("default/api".into());
        // Not owned (no observation): never applied as far as the evidence goes.
        let report = classify(
            &plan(vec![fic.clone(), sa.clone()], vec![]),
            &Observed::default(),
            &Graph::default(),
        );
        assert_eq!(report.items[0].cause, Cause::NotYetApplied);
    }
}
