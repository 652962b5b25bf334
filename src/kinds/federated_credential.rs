//! Federated identity credentials, on a managed identity (ARM) or an application (Graph): the
//! trust between an issuer's tokens for one subject and the identity. A service account
//! implies one (its cluster's issuer, `system:serviceaccount:NS:NAME`); `[[federations]]` add
//! any other. They take no tags: the parent identity records them (`engine::records`).
//! Providers: src/providers/azure/identities.rs and applications.rs, one live model
//! ([`Live`]) for both.

use serde::Serialize;
use serde_json::json;

use super::{ApplyCtx, Claim, Failure, Kind, Orphan, Out, Output, PlanCtx, field, gone, hash_of};
use crate::address::{Address, CredentialKey};
use crate::config::federation::IssuerSource;
use crate::config::model::IdentityKind;
use crate::engine::drift::{Cause, Evidence};
use crate::engine::plan::{Action, After, Change};
use crate::providers::azure::AzureApi;
use crate::providers::azure::applications::DesiredApplicationCredential;
use crate::providers::azure::federated::CredentialParent;
use crate::providers::azure::identities::DesiredIdentityCredential;
use crate::providers::azure::observe::Listing;
use crate::providers::kube::ClusterApi;

pub use crate::providers::azure::federated::LiveCredential as Live;

/// A federated credential as the config asks for it (its issuer may be a cluster's, known
/// once the cluster is read).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub identity_kind: IdentityKind,
    pub name: String,
    pub issuer: IssuerSource,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// How a credential's issuer is recorded: an AKS cluster's as `cluster:KEY` (its URL is not
/// known before the cluster's OIDC issuer is on).
pub fn issuer_ref(source: &IssuerSource) -> String {
    match source {
        IssuerSource::Cluster(key) => format!("cluster:{key}"),
        IssuerSource::Url(url) => url.clone(),
    }
}

/// The identity's record entry of a credential: what Azure keeps unique on an identity (its
/// issuer and subject), and its audiences; not its name, which may be another than the config's
/// when wiform adopted it.
pub fn record_entry(issuer_ref: &str, subject: &str, audiences: &[String]) -> String {
    let mut audiences = audiences.to_vec();
    audiences.sort();
    crate::engine::records::entry(&json!({
        "issuer": issuer_ref,
        "subject": subject,
        "audiences": audiences,
    }))
}

/// The entry wiform before issue 16 recorded (with the name): read, never written, so that an
/// identity applied by an older wiform is not taken for drift.
fn legacy_record_entry(
    name: &str,
    issuer_ref: &str,
    subject: &str,
    audiences: &[String],
) -> String {
    let mut audiences = audiences.to_vec();
    audiences.sort();
    crate::engine::records::entry(&json!({
        "name": name,
        "issuer": issuer_ref,
        "subject": subject,
        "audiences": audiences,
    }))
}

impl Desired {
    /// A credential the config asks for (a `[[federations]]` entry, or the one a
    /// `[[service_accounts]]` entry implies), on an identity of `identity_kind`.
    pub fn from_config(
        identity_kind: IdentityKind,
        wanted: crate::config::federation::WantedCredential,
    ) -> Self {
        Desired {
            identity_kind,
            name: wanted.name,
            issuer: wanted.issuer,
            subject: wanted.subject,
            audiences: wanted.audiences,
        }
    }

    pub fn record_entry(&self) -> String {
        record_entry(&issuer_ref(&self.issuer), &self.subject, &self.audiences)
    }

    /// Every entry an identity may hold for it: today's, and an older wiform's.
    pub fn recorded_as(&self) -> Vec<String> {
        let issuer = issuer_ref(&self.issuer);
        vec![
            record_entry(&issuer, &self.subject, &self.audiences),
            legacy_record_entry(&self.name, &issuer, &self.subject, &self.audiences),
        ]
    }
}

pub fn plan(desired: &Desired, ctx: &mut PlanCtx<'_>) {
    let Desired {
        identity_kind,
        name,
        issuer,
        subject,
        audiences,
    } = desired;
    let Some(parent) = ctx
        .input(Output::Exists)
        .or_else(|| ctx.input(Output::ObjectId))
    else {
        return;
    };
    if parent.client_id == Out::Missing {
        return;
    }
    let issuer = match issuer {
        IssuerSource::Url(url) => Out::Known(url.clone()),
        IssuerSource::Cluster(_) => match ctx.input(Output::IssuerUrl) {
            Some(cluster) => cluster.issuer_url.clone(),
            None => Out::Missing,
        },
    };
    let live: &[Live] = match &parent.live_key {
        None => &[],
        Some(key) => {
            let (listing, list) = match identity_kind {
                IdentityKind::Managed => (
                    Listing::IdentityCredentials(key.clone()),
                    ctx.observed.azure.identity_credentials.get(key),
                ),
                IdentityKind::Application => (
                    Listing::ApplicationCredentials(key.clone()),
                    ctx.observed.azure.application_credentials.get(key),
                ),
            };
            if ctx.failed(&listing) {
                return;
            }
            list.map_or(&[], Vec::as_slice)
        }
    };
    let by_name = live.iter().find(|c| c.is_named(name));
    // What Azure keeps unique on an identity is a credential's issuer and subject (Entra matches
    // them as written): a live credential with the config's is the config's, whatever its name.
    let by_key = issuer
        .known()
        .and_then(|i| live.iter().find(|c| c.issuer == i && c.subject == *subject));
    let (live, under_another_name) = match (by_name, by_key) {
        (by_name, Some(key)) if by_name.is_none_or(|n| n.id != key.id) => (Some(key), true),
        (by_name, _) => (by_name, false),
    };
    if issuer == Out::Missing {
        // The cluster's error says why. The live credential is still the config's, not an
        // extra to prune.
        if let Some(live) = live {
            ctx.claim(Claim::Credential(live.id.to_ascii_lowercase()));
        }
        return;
    }
    // Matched by name without regard to case: the same name, however it is spelled; matched by
    // issuer and subject, the credential keeps the name it has.
    let name = match live {
        Some(live) if under_another_name => live.name.as_str(),
        _ => name.as_str(),
    };
    let fields = vec![
        field("name", live.map(|_| json!(name)), After::Known(json!(name))),
        field("issuer", live.map(|l| json!(l.issuer)), issuer.after()),
        field(
            "subject",
            live.map(|l| json!(l.subject)),
            After::Known(json!(subject)),
        ),
        field(
            "audiences",
            live.map(|l| json!(l.audiences)),
            After::Known(json!(audiences)),
        ),
    ];
    // The fingerprint hashes what identifies a credential, as plan format 1 always has.
    let hash = hash_of(
        live.map(|l| (&l.id, &l.name, &l.issuer, &l.subject, &l.audiences))
            .as_ref(),
    );
    let Some(live) = live else {
        ctx.decide(Action::Create, None, None, fields, hash);
        return;
    };
    ctx.claim(Claim::Credential(live.id.to_ascii_lowercase()));
    let issuer_changed = issuer.known().is_some_and(|i| i != live.issuer);
    // Taken over under its own name by an earlier apply when its identity records it.
    let adopted = under_another_name && !recorded(ctx, desired, identity_kind, parent);
    let (action, reason) = if adopted {
        (
            Action::Adopt,
            Some(format!(
                "a credential with this issuer and subject exists as `{}`: wiform takes it over under that name{}",
                live.name,
                if live.audiences == *audiences {
                    ""
                } else {
                    " and sets its audiences"
                }
            )),
        )
    } else if issuer_changed {
        (
            Action::Replace,
            Some("issuer changed: the credential is deleted and created again under the same name; tokens from the old issuer stop working".to_string()),
        )
    } else if live.subject != *subject {
        (
            Action::Replace,
            Some("subject changed: the credential is deleted and created again under the same name; tokens with the old subject stop working".to_string()),
        )
    } else if issuer == Out::Unknown {
        (
            Action::Update,
            Some("the cluster's issuer is known once its OIDC issuer is on".to_string()),
        )
    } else if live.audiences != *audiences {
        (Action::Update, None)
    } else {
        (Action::NoOp, None)
    };
    ctx.decide(action, reason, Some(live.id.clone()), fields, hash);
}

/// Does the identity record the credential `desired` (taken over by an earlier apply)?
fn recorded(
    ctx: &PlanCtx<'_>,
    desired: &Desired,
    kind: &IdentityKind,
    parent: &super::PlanOutputs,
) -> bool {
    let Some(key) = &parent.live_key else {
        return false;
    };
    let azure = &ctx.observed.azure;
    let tags = match kind {
        IdentityKind::Managed => azure.identities.get(key).map(|i| i.tags.clone()),
        IdentityKind::Application => azure
            .applications
            .iter()
            .find(|a| &a.object_id == key)
            .map(|a| a.tag_map()),
    };
    let entries = tags
        .and_then(|t| crate::engine::records::read(&t, crate::engine::records::CREDENTIALS_TAG))
        .unwrap_or_default();
    desired.recorded_as().iter().any(|e| entries.contains(e))
}

pub async fn apply<A: AzureApi, C: ClusterApi>(
    desired: &Desired,
    ctx: &ApplyCtx<'_, A, C>,
) -> Result<(), Failure> {
    let parent = ctx
        .input(Output::Exists)
        .or_else(|| ctx.input(Output::ObjectId))
        .and_then(|o| o.id.clone())
        .ok_or_else(|| Failure::new("its identity's id is not known"))?;
    let issuer = match &desired.issuer {
        IssuerSource::Url(url) => url.clone(),
        IssuerSource::Cluster(_) => ctx
            .input(Output::IssuerUrl)
            .and_then(|o| o.issuer_url.clone())
            .ok_or_else(|| Failure::new("the cluster's issuer URL is not known"))?,
    };
    let replace = ctx.change.action == Action::Replace;
    // The name the plan shows: the config's, or the one a credential taken over already has.
    let name = &ctx
        .planned_field("name")
        .unwrap_or_else(|| desired.name.clone());
    match desired.identity_kind {
        IdentityKind::Managed => {
            if replace {
                ctx.azure.delete_identity_credential(&parent, name).await?;
            }
            let request = DesiredIdentityCredential {
                name: name.clone(),
                issuer,
                subject: desired.subject.clone(),
                audiences: desired.audiences.clone(),
            };
            ctx.azure.put_identity_credential(&parent, &request).await?;
        }
        IdentityKind::Application => {
            if replace {
                ctx.azure
                    .delete_application_credential(&parent, name)
                    .await?;
            }
            let request = DesiredApplicationCredential {
                name: name.clone(),
                issuer,
                subject: desired.subject.clone(),
                audiences: desired.audiences.clone(),
                // wiform does not manage the description: one set by hand stays (issue 16).
                description: ctx
                    .change
                    .id
                    .as_deref()
                    .and_then(|id| ctx.observed.azure.credential(id))
                    .and_then(|live| live.description.clone()),
            };
            ctx.azure
                .put_application_credential(&parent, &request)
                .await?;
        }
    }
    Ok(())
}

/// At most this many federated credentials per identity (FIC considerations doc).
pub const LIMIT: usize = 20;

/// The name of the credential AKS makes (and reuses) on an identity for all its identity
/// bindings (AKS docs, "Identity bindings concepts").
pub const AKS_BINDING_CREDENTIAL: &str = "aks-identity-binding";

/// Did AKS make this credential for its identity bindings? Then it is AKS's, not wiform's.
pub fn made_by_aks(live: &Live) -> bool {
    live.is_named(AKS_BINDING_CREDENTIAL)
}

/// How the plan shows a credential AKS made on `identity`: read, never deleted.
pub fn made_by_aks_change(identity: &str, live: &Live) -> Change {
    let same =
        |name: &str, value: &str| field(name, Some(json!(value)), After::Known(json!(value)));
    Change {
        address: Address::FederatedCredential {
            identity: identity.to_string(),
            key: CredentialKey::Named(live.name.clone()),
        },
        resource_type: Kind::FederatedCredential,
        action: Action::Read,
        reason: Some(
            "managed by AKS for its identity bindings: wiform leaves it alone, and counts it toward the identity's 20 federated credentials"
                .into(),
        ),
        id: Some(live.id.clone()),
        fields: vec![
            same("name", &live.name),
            same("issuer", &live.issuer),
            same("subject", &live.subject),
        ],
        not_in_config: true,
        depends_on: Vec::new(),
    }
}

/// The delete of a credential on `identity` (its key in the config, or its live name) that the
/// config does not name.
pub fn orphan(identity: &str, live: &Live) -> Orphan {
    Orphan {
        address: Address::FederatedCredential {
            identity: identity.to_string(),
            key: CredentialKey::Named(live.name.clone()),
        },
        kind: Kind::FederatedCredential,
        reason: None,
        live_id: live.id.clone(),
        fields: vec![
            gone("name", json!(live.name)),
            gone("issuer", json!(live.issuer)),
            gone("subject", json!(live.subject)),
        ],
        live_hash: hash_of(Some(live)),
    }
}

pub async fn delete<A: AzureApi, C: ClusterApi>(ctx: &ApplyCtx<'_, A, C>) -> Result<(), Failure> {
    let id = ctx.live_id()?;
    let live = ctx
        .observed
        .azure
        .credential(id)
        .ok_or_else(|| Failure::new("the credential was not observed"))?;
    match &live.parent {
        CredentialParent::ManagedIdentity(identity_id) => {
            ctx.azure
                .delete_identity_credential(identity_id, &live.name)
                .await?;
        }
        CredentialParent::Application(object_id) => {
            ctx.azure
                .delete_application_credential(object_id, &live.id)
                .await?;
        }
    }
    Ok(())
}

/// The record entries (today's and an older wiform's) of the live managed-identity credential
/// behind `change`, its issuer named as the config names it.
fn live_entry(evidence: &Evidence<'_>, change: &Change) -> Vec<String> {
    live_entries(evidence, change).unwrap_or_default()
}

fn live_entries(evidence: &Evidence<'_>, change: &Change) -> Option<Vec<String>> {
    let id = change.id.as_deref()?;
    let live = evidence
        .observed()
        .azure
        .identity_credentials
        .values()
        .flatten()
        .find(|c| c.id.eq_ignore_ascii_case(id))?;
    let issuer = evidence
        .cluster_issuers
        .get(&live.issuer)
        .map_or_else(|| live.issuer.clone(), |key| format!("cluster:{key}"));
    Some(vec![
        record_entry(&issuer, &live.subject, &live.audiences),
        legacy_record_entry(&live.name, &issuer, &live.subject, &live.audiences),
    ])
}

/// A credential the config does not name: the identity's record tells one wiform applied (the
/// config dropped it) from one added by hand; without a record (a credential has no marker of
/// its own), it was added by hand.
pub fn extra_evidence(evidence: &Evidence<'_>, change: &Change) -> (Cause, Option<String>) {
    let applied = evidence.in_record(
        change,
        crate::engine::records::CREDENTIALS_TAG,
        live_entry(evidence, change),
    );
    match applied {
        Some(true) => (Cause::RemovedFromConfig, None),
        Some(false) => (
            Cause::AddedOutsideWiform,
            Some("the identity's record of the credentials wiform applied does not hold it".into()),
        ),
        None => (
            Cause::AddedOutsideWiform,
            Some(
                "a federated credential the config does not name, on an identity this stack owns"
                    .into(),
            ),
        ),
    }
}

/// A credential in the config that is gone: the service account it federates exists as wiform
/// applied it, and was applied with it.
pub fn deletion_evidence(evidence: &Evidence<'_>, change: &Change) -> Option<String> {
    evidence
        .service_account_for(change)
        .filter(|sa| sa.id.is_some() && evidence.owned(sa) && !sa.action.is_change())
        .map(|sa| {
            format!(
                "{} exists as wiform applied it, and was applied with this credential",
                sa.address
            )
        })
}

/// A credential that differs from the config. It has no marker of its own: the identity's
/// record says whether the live credential is the one wiform applied; without a record, the
/// service account it federates.
pub fn change_evidence(evidence: &Evidence<'_>, change: &Change) -> (Cause, Option<String>) {
    if let Some(applied) = evidence.in_record(
        change,
        crate::engine::records::CREDENTIALS_TAG,
        live_entry(evidence, change),
    ) {
        return if applied {
            (Cause::ConfigChanged, None)
        } else {
            (
                Cause::ChangedOutsideWiform,
                Some(format!(
                    "{} records the credentials wiform applied, and this one is not among them",
                    crate::engine::drift::identity_address(change)
                        .map(|a| a.to_string())
                        .unwrap_or_default()
                )),
            )
        };
    }
    match evidence.service_account_for(change) {
        Some(sa) if sa.id.is_some() && evidence.owned(sa) && !sa.action.is_change() => (
            Cause::ChangedOutsideWiform,
            Some(format!(
                "{} is as wiform applied it, and the credential differs from what was applied with it",
                sa.address
            )),
        ),
        _ => (Cause::ConfigChanged, None),
    }
}
