//! Identities of `kind = "application"`: an Entra application registration, its service
//! principal, and the application's federated identity credentials, through Microsoft Graph v1.0.
//!
//! Contracts (microsoft-graph-docs-contrib, `api-reference/v1.0/`): `application-upsert.md`
//! (PATCH by the client-chosen alternate key `uniqueName` with `Prefer: create-if-missing`: 201
//! created, 204 updated), `application-list.md` (`$filter` on `tags/any`, `displayName`, `$select`,
//! `$top` up to 999, `@odata.nextLink`), `application-update.md`, `application-delete.md`,
//! `serviceprincipal-post-serviceprincipals.md`, `federatedidentitycredential-upsert.md`,
//! `application-list-federatedidentitycredentials.md`, `federatedidentitycredential-delete.md`;
//! errors from "Microsoft Graph error responses".
//!
//! Ownership: Graph applications have no key/value tags, only a string collection, so the
//! marker is two strings in `tags`: `wiform-stack:<stack>` and `wiform-spec-hash:<hash>` (the
//! names of [`crate::ownership`]'s Azure tags, then a colon). Every application wiform creates
//! also gets a deterministic `uniqueName` (`wiform.<stack>.<identity key>`), so that a retry
//! after a lost answer or a crash updates the same application instead of creating a second one.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::try_join_all;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AzureProvider;
use super::client::{Request, Wait};
use super::error::{AzureError, AzureErrorKind};
use super::federated::{CredentialParent, LiveCredential};
use crate::ownership::{Marker, Owner, SPEC_HASH_TAG, STACK_TAG, spec_hash};
use crate::providers::Deletion;

/// The properties of an application wiform reads (application-list.md, `$select`).
const APPLICATION_FIELDS: &str = "id,appId,displayName,uniqueName,tags";
/// The largest page Graph serves for applications (application-list.md, `$top` 1–999): a
/// stack's applications come back in one page.
const APPLICATION_PAGE: u32 = 999;
/// Applications wiform creates are single-tenant (resources/application.md, `signInAudience`):
/// they exist to be workload identities in this tenant. Graph's default for an application
/// created through the API admits any tenant and personal accounts.
const SIGN_IN_AUDIENCE: &str = "AzureADMyOrg";
/// How long a new application may take to reach the replica that serves the next request
/// (eventual consistency: the service principal POST answers `NoBackingApplicationObject`,
/// credential writes `Request_ResourceNotFound`).
const REPLICATION_WAIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Desired and observed state.

/// An application the config asks for (`[identities.KEY]` with `kind = "application"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredApplication {
    /// The stack (identity.toml `name`).
    pub stack: String,
    /// The identity's table key.
    pub key: String,
    pub display_name: String,
    /// What it records of its credentials and role grants (see docs/concepts.md), as
    /// `name:value` tags beside the markers.
    pub records: BTreeMap<String, String>,
}

impl DesiredApplication {
    /// The application's `uniqueName`, from the stack and the identity key: what makes the
    /// upsert idempotent.
    pub fn unique_name(&self) -> String {
        unique_name(&self.stack, &self.key)
    }

    /// The hash of the spec wiform manages on the application (its display name).
    pub fn spec_hash(&self) -> String {
        application_spec_hash(&self.display_name)
    }

    /// The marker tags (the stack and the spec hash) and the records.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![
            format!("{STACK_TAG}:{}", self.stack),
            format!("{SPEC_HASH_TAG}:{}", self.spec_hash()),
        ];
        tags.extend(self.records.iter().map(|(k, v)| format!("{k}:{v}")));
        tags
    }

    fn describe(&self) -> String {
        format!("application {} ({})", self.display_name, self.unique_name())
    }
}

/// An application as Graph shows it, with its service principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveApplication {
    /// The application object's id (lower-case): addresses it and its federated credentials.
    pub object_id: String,
    /// The application (client) id, lower-case: the identity's client id output.
    pub app_id: String,
    pub display_name: String,
    pub unique_name: Option<String>,
    /// All tags, markers included (an update keeps the ones wiform does not own).
    pub tags: Vec<String>,
    /// Who owns the application, from its marker tags.
    pub owner: Owner,
    /// The service principal's object id, lower-case: the identity's principal id output.
    /// `None` when the application has none yet.
    pub service_principal_id: Option<String>,
}

impl LiveApplication {
    /// The hash of the live fields wiform manages; compared with the marker's hash, it tells a
    /// change made outside wiform from a config change.
    pub fn live_spec_hash(&self) -> String {
        application_spec_hash(&self.display_name)
    }

    /// Its `name:value` tags as a map (the records among them are read like an identity's).
    pub fn tag_map(&self) -> BTreeMap<String, String> {
        self.tags
            .iter()
            .filter_map(|t| t.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.to_string()))
            .collect()
    }

    /// Is this the application with `uniqueName` `name` (compared without regard to case, as
    /// the directory does)?
    pub fn has_unique_name(&self, name: &str) -> bool {
        self.unique_name
            .as_deref()
            .is_some_and(|u| u.eq_ignore_ascii_case(name))
    }

    fn describe(&self) -> String {
        format!("application {} ({})", self.display_name, self.object_id)
    }
}

/// A federated identity credential the config asks for on an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredApplicationCredential {
    /// Unique per application and immutable (resources/federatedidentitycredential.md).
    pub name: String,
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    pub description: Option<String>,
}

impl DesiredApplicationCredential {
    /// The upsert body (federatedidentitycredential-upsert.md). A missing description is sent
    /// as `null`: the kind passes the live description along, so that one set by hand stays
    /// (wiform does not manage it).
    fn body(&self) -> Value {
        json!({
            "name": self.name,
            "issuer": self.issuer,
            "subject": self.subject,
            "audiences": self.audiences,
            "description": self.description,
        })
    }
}

impl LiveCredential {
    /// True when an upsert of `desired` would change nothing. Issuer, subject and audiences
    /// are compared exactly: Entra matches them against token claims as written.
    pub fn is_up_to_date(&self, desired: &DesiredApplicationCredential) -> bool {
        self.name.eq_ignore_ascii_case(&desired.name)
            && self.issuer == desired.issuer
            && self.subject == desired.subject
            && self.audiences == desired.audiences
            && self.description.as_deref().filter(|d| !d.is_empty())
                == desired.description.as_deref().filter(|d| !d.is_empty())
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Upserted {
    Created,
    Updated,
}

// ---------------------------------------------------------------------------------------------
// Pure helpers.

/// `wiform.<stack>.<key>`: stack names are DNS labels and identity keys letters, digits, `-`
/// and `_`, so neither holds a `.` and no two (stack, key) pairs share a name.
pub fn unique_name(stack: &str, key: &str) -> String {
    format!("wiform.{stack}.{key}")
}

fn application_spec_hash(display_name: &str) -> String {
    spec_hash(&json!({ "kind": "application", "display_name": display_name }))
}

/// The value of the marker tag `name:value`, the name compared without regard to case.
fn tag_value<'a>(tags: &'a [String], name: &str) -> Option<&'a str> {
    tags.iter().find_map(|tag| {
        let (key, value) = tag.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then_some(value)
    })
}

/// wiform's own tags: the markers and the records (`wiform-credentials:…`).
fn is_marker_tag(tag: &str) -> bool {
    tag.split_once(':').is_some_and(|(key, _)| {
        let key = key.trim();
        key.eq_ignore_ascii_case(STACK_TAG)
            || key.eq_ignore_ascii_case(SPEC_HASH_TAG)
            || key.to_ascii_lowercase().starts_with("wiform-")
    })
}

/// Reads the marker of an application from its tags: owned when a `wiform-stack:<stack>` tag
/// names a stack.
pub fn read_app_marker(tags: &[String]) -> Owner {
    match tag_value(tags, STACK_TAG) {
        Some(stack) if !stack.is_empty() => Owner::Stack(Marker {
            stack: stack.to_string(),
            spec_hash: tag_value(tags, SPEC_HASH_TAG)
                .filter(|h| !h.is_empty())
                .map(str::to_string),
        }),
        _ => Owner::Unowned,
    }
}

/// The tags to write: the current application's own tags (not wiform's) and the desired marker.
fn merged_tags(desired: &DesiredApplication, current: Option<&LiveApplication>) -> Vec<String> {
    let mut tags: Vec<String> = current
        .map(|c| {
            c.tags
                .iter()
                .filter(|t| !is_marker_tag(t))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    tags.extend(desired.tags());
    tags
}

/// An OData string literal: in quotes, quotes inside doubled (OData ABNF `SQUOTE-in-string`).
fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A query parameter value, percent-encoded (spaces as `%20`: a `+` is not a space to OData).
fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn applications_where(filter: &str) -> String {
    format!(
        "v1.0/applications?$filter={}&$select={APPLICATION_FIELDS}&$top={APPLICATION_PAGE}",
        query_value(filter)
    )
}

fn conflict(action: impl Into<String>, message: impl Into<String>) -> AzureError {
    AzureError::new(
        action,
        AzureErrorKind::Conflict {
            message: message.into(),
        },
    )
}

/// A write refused because another application holds the `uniqueName`. Upserts by that name
/// update an active holder, so the holder is either deleted (Entra keeps deleted applications,
/// `uniqueName` included, restorable for 30 days: microsoftgraph/msgraph-bicep-types#137) or
/// an application wiform was asked to adopt collides with one that has the name. Real Graph
/// answers 400 `Request_BadRequest`, the sandbox 409 `Request_MultipleObjectsWithSameKeyValue`;
/// both say "Another object with the same value for property uniqueName already exists".
fn unique_name_taken(error: AzureError, unique: &str) -> AzureError {
    let taken = error
        .failure()
        .is_some_and(|f| matches!(f.status, 400 | 409) && f.message.contains("uniqueName"));
    if !taken {
        return error;
    }
    let request_id = error
        .request_id()
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default();
    conflict(
        error.action(),
        format!(
            "another application holds the uniqueName {unique}{request_id}: either one deleted \
             less than 30 days ago (Entra keeps deleted applications restorable; restore it under \
             App registrations → Deleted applications and wiform takes it back, or delete it \
             permanently), or an application without wiform's marker: give it the marker tags or \
             delete it"
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Graph's JSON.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphApplication {
    id: String,
    app_id: String,
    display_name: Option<String>,
    unique_name: Option<String>,
    tags: Option<Vec<String>>,
}

impl GraphApplication {
    fn into_live(self) -> LiveApplication {
        let tags = self.tags.unwrap_or_default();
        LiveApplication {
            object_id: self.id.to_ascii_lowercase(),
            app_id: self.app_id.to_ascii_lowercase(),
            display_name: self.display_name.unwrap_or_default(),
            unique_name: self.unique_name,
            owner: read_app_marker(&tags),
            tags,
            service_principal_id: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphServicePrincipal {
    id: String,
    app_id: String,
}

#[derive(Debug, Deserialize)]
struct GraphCredential {
    id: String,
    name: String,
    issuer: String,
    subject: String,
    #[serde(default)]
    audiences: Vec<String>,
    description: Option<String>,
}

impl GraphCredential {
    fn into_live(self, object_id: &str) -> LiveCredential {
        LiveCredential {
            parent: CredentialParent::Application(object_id.to_string()),
            id: self.id.to_ascii_lowercase(),
            name: self.name,
            issuer: self.issuer,
            subject: self.subject,
            audiences: self.audiences,
            description: self.description,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IO.

impl AzureProvider {
    /// The applications that carry the marker of `stack`, each with its service principal: one
    /// paged list filtered on the marker tag, then the service principals.
    pub async fn list_stack_applications(
        &self,
        stack: &str,
    ) -> Result<Vec<LiveApplication>, AzureError> {
        let marker = format!("{STACK_TAG}:{stack}");
        let request = Request::graph(
            Method::GET,
            applications_where(&format!("tags/any(t:t eq {})", odata_string(&marker))),
        )
        .action(format!("list the applications of stack \"{stack}\""));
        let found: Vec<GraphApplication> = self.client.list(&request).await?;
        let mut apps: Vec<LiveApplication> = found
            .into_iter()
            .map(GraphApplication::into_live)
            // The filter compares without regard to case; the marker is read the same way, and
            // a tag that only starts like the marker is not one.
            .filter(|a| a.owner.is_stack(stack))
            .collect();
        self.resolve_service_principals(&mut apps).await?;
        Ok(apps)
    }

    /// Every application of the tenant (paged), each with its service principal id: what
    /// `wiform import` looks through for applications with federated credentials.
    pub async fn list_applications(&self) -> Result<Vec<LiveApplication>, AzureError> {
        let request = Request::graph(
            Method::GET,
            format!("v1.0/applications?$select={APPLICATION_FIELDS}&$top={APPLICATION_PAGE}"),
        )
        .action("list the applications of the tenant");
        let found: Vec<GraphApplication> = self.client.list(&request).await?;
        let mut apps: Vec<LiveApplication> =
            found.into_iter().map(GraphApplication::into_live).collect();
        self.resolve_service_principals(&mut apps).await?;
        Ok(apps)
    }

    /// The applications whose display name is one of `names` (any owner), each with its service
    /// principal: for adoption of an existing application. One request per distinct name, sent
    /// concurrently (the sandbox's `$filter` has no `in` and no `or`).
    pub async fn find_applications_by_display_name(
        &self,
        names: &[String],
    ) -> Result<Vec<LiveApplication>, AzureError> {
        let mut distinct: Vec<&String> = Vec::new();
        for name in names {
            if !distinct.iter().any(|d| d.eq_ignore_ascii_case(name)) {
                distinct.push(name);
            }
        }
        let lists = try_join_all(distinct.into_iter().map(|name| {
            let request = Request::graph(
                Method::GET,
                applications_where(&format!("displayName eq {}", odata_string(name))),
            )
            .action(format!("list the applications named \"{name}\""));
            async move { self.client.list::<GraphApplication>(&request).await }
        }))
        .await?;
        let mut apps: Vec<LiveApplication> = lists
            .into_iter()
            .flatten()
            .map(GraphApplication::into_live)
            .collect();
        apps.sort_by(|a, b| a.object_id.cmp(&b.object_id));
        apps.dedup_by(|a, b| a.object_id == b.object_id);
        self.resolve_service_principals(&mut apps).await?;
        Ok(apps)
    }

    /// Fills in each application's service principal id: one filtered list per application,
    /// sent concurrently. (Real Graph could take 15 app ids per request with `appId in (…)`;
    /// the sandbox's `$filter` supports only `eq` joined by `and`.)
    async fn resolve_service_principals(
        &self,
        apps: &mut [LiveApplication],
    ) -> Result<(), AzureError> {
        let found = try_join_all(apps.iter().map(|app| {
            let request = Request::graph(
                Method::GET,
                format!(
                    "v1.0/servicePrincipals?$filter={}&$select=id,appId",
                    query_value(&format!("appId eq {}", odata_string(&app.app_id)))
                ),
            )
            .action(format!("read the service principal of {}", app.describe()));
            async move {
                let principals: Vec<GraphServicePrincipal> = self.client.list(&request).await?;
                Ok::<_, AzureError>(
                    principals
                        .into_iter()
                        .find(|p| p.app_id.eq_ignore_ascii_case(&app.app_id))
                        .map(|p| p.id.to_ascii_lowercase()),
                )
            }
        }))
        .await?;
        for (app, principal) in apps.iter_mut().zip(found) {
            app.service_principal_id = principal;
        }
        Ok(())
    }

    /// Creates or updates the application and makes sure it has a service principal.
    ///
    /// `current` is the live application when the caller has observed one: this stack's own
    /// (its non-wiform tags are kept), or an unowned one to adopt (it gets the marker, and the
    /// `uniqueName` when it has none). An application of another stack, or one whose
    /// `uniqueName` differs (it is immutable once set), is refused without a request.
    ///
    /// Without `current` the application is upserted by `uniqueName`: a repeat after a lost
    /// answer or a crash updates the one the first attempt created.
    pub async fn put_application(
        &self,
        desired: &DesiredApplication,
        current: Option<&LiveApplication>,
    ) -> Result<LiveApplication, AzureError> {
        let unique = desired.unique_name();
        let action = format!("create or update {}", desired.describe());
        // The object id to PATCH when adopting an application without a uniqueName.
        let adopt = match current {
            None => None,
            Some(c) => {
                if let Owner::Stack(marker) = &c.owner
                    && !marker.is_stack(&desired.stack)
                {
                    return Err(conflict(
                        action,
                        format!(
                            "{} belongs to stack \"{}\"; wiform changes only what its own stack \
                             owns",
                            c.describe(),
                            marker.stack
                        ),
                    ));
                }
                match &c.unique_name {
                    None => Some(c.object_id.clone()),
                    Some(_) if c.has_unique_name(&unique) => None,
                    Some(other) => {
                        return Err(conflict(
                            action,
                            format!(
                                "{} has the uniqueName {other}, which cannot change; wiform \
                                 names this identity's application {unique}",
                                c.describe()
                            ),
                        ));
                    }
                }
            }
        };
        let tags = merged_tags(desired, current);
        let request = match &adopt {
            None => Request::graph(
                Method::PATCH,
                format!("v1.0/applications(uniqueName={})", odata_string(&unique)),
            )
            .header("Prefer", "create-if-missing")
            .json(json!({
                "displayName": desired.display_name,
                "tags": tags,
                "signInAudience": SIGN_IN_AUDIENCE,
            })),
            // application-update.md: only the properties sent change; an adopted application
            // keeps its sign-in audience.
            Some(object_id) => {
                Request::graph(Method::PATCH, format!("v1.0/applications/{object_id}")).json(
                    json!({
                        "displayName": desired.display_name,
                        "tags": tags,
                        "uniqueName": unique,
                    }),
                )
            }
        }
        .action(&action);
        let response = self
            .client
            .send(&request)
            .await
            .map_err(|e| unique_name_taken(e, &unique))?;

        let mut live = match (response.status, current) {
            // application-upsert.md: 201 with the new application.
            (201, _) => response.json::<GraphApplication>(&action)?.into_live(),
            (_, Some(c)) => LiveApplication {
                display_name: desired.display_name.clone(),
                unique_name: Some(unique.clone()),
                owner: read_app_marker(&tags),
                tags,
                ..c.clone()
            },
            // 204 for an application nobody told us about: a repeat after a lost answer. Read
            // it back for its ids.
            (_, None) => self.read_application(desired).await?,
        };
        if live.service_principal_id.is_none() {
            live.service_principal_id = Some(
                self.ensure_service_principal(&live.app_id, &desired.display_name)
                    .await?,
            );
        }
        Ok(live)
    }

    /// The application with the desired `uniqueName`.
    async fn read_application(
        &self,
        desired: &DesiredApplication,
    ) -> Result<LiveApplication, AzureError> {
        let action = format!("read {}", desired.describe());
        let request = Request::graph(
            Method::GET,
            format!(
                "v1.0/applications(uniqueName={})?$select={APPLICATION_FIELDS}",
                odata_string(&desired.unique_name())
            ),
        )
        .action(&action)
        // It answered the upsert a moment ago; another replica may not have it yet.
        .wait_out(Wait::new(
            "Request_ResourceNotFound",
            format!(
                "the application {} to replicate in the directory",
                desired.display_name
            ),
            REPLICATION_WAIT,
        ));
        Ok(self
            .client
            .send(&request)
            .await?
            .json::<GraphApplication>(&action)?
            .into_live())
    }

    /// Creates the application's service principal, or finds the one it has; returns its id.
    async fn ensure_service_principal(
        &self,
        app_id: &str,
        display_name: &str,
    ) -> Result<String, AzureError> {
        let action = format!("create the service principal of application {display_name}");
        let request = Request::graph(Method::POST, "v1.0/servicePrincipals")
            .json(json!({ "appId": app_id }))
            .action(&action)
            // Right after the application is created Graph may not find it yet (fact sheet §6).
            .wait_out(Wait::new(
                "NoBackingApplicationObject",
                format!("the new application {display_name} to replicate in the directory"),
                REPLICATION_WAIT,
            ));
        match self.client.send(&request).await {
            Ok(response) => Ok(response
                .json::<GraphServicePrincipal>(&action)?
                .id
                .to_ascii_lowercase()),
            // It exists already (a repeat after a lost answer, or created by hand): adopt it.
            Err(e)
                if e.status() == Some(409)
                    && e.is_code("Request_MultipleObjectsWithSameKeyValue") =>
            {
                let action = format!("read the service principal of application {display_name}");
                let request = Request::graph(
                    Method::GET,
                    format!(
                        "v1.0/servicePrincipals(appId={})?$select=id,appId",
                        odata_string(app_id)
                    ),
                )
                .action(&action);
                Ok(self
                    .client
                    .send(&request)
                    .await?
                    .json::<GraphServicePrincipal>(&action)?
                    .id
                    .to_ascii_lowercase())
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes an application of `stack`; its service principal in this tenant goes with it
    /// (Entra "Restore a soft deleted enterprise application"), and both stay restorable for
    /// 30 days (application-delete.md). Refused without a request when the application is not
    /// the stack's.
    pub async fn delete_application(
        &self,
        stack: &str,
        app: &LiveApplication,
    ) -> Result<Deletion, AzureError> {
        let action = format!("delete {}", app.describe());
        if !app.owner.is_stack(stack) {
            return Err(conflict(
                action,
                format!(
                    "{} is not owned by stack \"{stack}\" ({}); wiform deletes only what its \
                     stack owns",
                    app.describe(),
                    app.owner.describe()
                ),
            ));
        }
        let request = Request::graph(
            Method::DELETE,
            format!("v1.0/applications/{}", app.object_id),
        )
        .action(action);
        let response = self.client.send_accepting(&request, &[404]).await?;
        Ok(if response.status == 404 {
            Deletion::AlreadyGone
        } else {
            Deletion::Deleted
        })
    }

    /// The federated identity credentials of an application (paged).
    pub async fn list_application_credentials(
        &self,
        object_id: &str,
    ) -> Result<Vec<LiveCredential>, AzureError> {
        let request = Request::graph(
            Method::GET,
            format!("v1.0/applications/{object_id}/federatedIdentityCredentials"),
        )
        .action(format!(
            "list the federated credentials of application {object_id}"
        ));
        let found: Vec<GraphCredential> = self.client.list(&request).await?;
        Ok(found.into_iter().map(|c| c.into_live(object_id)).collect())
    }

    /// Creates or updates a federated identity credential of an application, by name.
    pub async fn put_application_credential(
        &self,
        object_id: &str,
        desired: &DesiredApplicationCredential,
    ) -> Result<Upserted, AzureError> {
        // The credentials are part of one directory object; wiform writes them one at a time
        // rather than meet 409 Directory_ConcurrencyViolation.
        let _guard = self
            .fic_locks
            .lock(&format!("graph/applications/{object_id}"))
            .await;
        let request = Request::graph(
            Method::PATCH,
            format!(
                "v1.0/applications/{object_id}/federatedIdentityCredentials(name={})",
                odata_string(&desired.name)
            ),
        )
        .header("Prefer", "create-if-missing")
        .json(desired.body())
        .action(format!(
            "create or update federated credential {} of application {object_id}",
            desired.name
        ))
        // A credential written right after its application may not find it yet.
        .wait_out(Wait::new(
            "Request_ResourceNotFound",
            format!("the new application {object_id} to replicate in the directory"),
            REPLICATION_WAIT,
        ));
        let response = self.client.send(&request).await?;
        Ok(if response.status == 201 {
            Upserted::Created
        } else {
            Upserted::Updated
        })
    }

    /// Deletes a federated identity credential of an application, by name or id.
    pub async fn delete_application_credential(
        &self,
        object_id: &str,
        name_or_id: &str,
    ) -> Result<Deletion, AzureError> {
        let _guard = self
            .fic_locks
            .lock(&format!("graph/applications/{object_id}"))
            .await;
        let request = Request::graph(
            Method::DELETE,
            format!("v1.0/applications/{object_id}/federatedIdentityCredentials/{name_or_id}"),
        )
        .action(format!(
            "delete federated credential {name_or_id} of application {object_id}"
        ));
        // 404: the credential, or its whole application, is gone already.
        let response = self.client.send_accepting(&request, &[404]).await?;
        Ok(if response.status == 404 {
            Deletion::AlreadyGone
        } else {
            Deletion::Deleted
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(display_name: &str) -> DesiredApplication {
        DesiredApplication {
            records: BTreeMap::new(),
            stack: "orders".into(),
            key: "legacy".into(),
            display_name: display_name.into(),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unique_names_do_not_collide_across_stacks_and_keys() {
        assert_eq!(desired("x").unique_name(), "wiform.orders.legacy");
        // A '-' in the stack and in the key would make "wiform-a-b-c" ambiguous; '.' is not.
        assert_ne!(unique_name("a-b", "c"), unique_name("a", "b-c"));
    }

    #[test]
    fn the_marker_is_read_from_tags() {
        let d = desired("Legacy App");
        let tags = d.tags();
        assert_eq!(
            tags,
            vec![
                "wiform-stack:orders".to_string(),
                format!("wiform-spec-hash:{}", d.spec_hash())
            ]
        );
        assert_eq!(
            read_app_marker(&tags),
            Owner::Stack(Marker {
                stack: "orders".into(),
                spec_hash: Some(d.spec_hash())
            })
        );
        assert_eq!(
            read_app_marker(&strings(&["HideApp", "WIFORM-STACK:orders"])),
            Owner::Stack(Marker {
                stack: "orders".into(),
                spec_hash: None
            })
        );
        for unowned in [
            strings(&[]),
            strings(&["wiform-stack:"]),
            strings(&["wiform-stack"]),
            strings(&["wiform-stacks:orders"]),
            strings(&["wiform-spec-hash:abc"]),
        ] {
            assert_eq!(read_app_marker(&unowned), Owner::Unowned, "{unowned:?}");
        }
    }

    #[test]
    fn the_spec_hash_follows_the_display_name() {
        assert_eq!(desired("a").spec_hash(), desired("a").spec_hash());
        assert_ne!(desired("a").spec_hash(), desired("b").spec_hash());
        let live = GraphApplication {
            id: "ID".into(),
            app_id: "APP".into(),
            display_name: Some("a".into()),
            unique_name: None,
            tags: None,
        }
        .into_live();
        assert_eq!(live.live_spec_hash(), desired("a").spec_hash());
    }

    #[test]
    fn graph_json_becomes_a_live_application() {
        let raw: GraphApplication = serde_json::from_value(json!({
            "id": "03EF14B0-CA33-4840-8F4F-D6E91916010E",
            "appId": "6F1C0B8A-0000-4000-8000-000000000001",
            "displayName": "Legacy",
            "uniqueName": "wiform.orders.legacy",
            "tags": ["team:x", "wiform-stack:orders", "wiform-spec-hash:0123456789abcdef"],
            "signInAudience": "AzureADMyOrg"
        }))
        .unwrap();
        let live = raw.into_live();
        assert_eq!(live.object_id, "03ef14b0-ca33-4840-8f4f-d6e91916010e");
        assert_eq!(live.app_id, "6f1c0b8a-0000-4000-8000-000000000001");
        assert!(live.has_unique_name("WIFORM.orders.legacy"));
        assert!(live.owner.is_stack("orders"));
        assert_eq!(
            live.owner.marker().and_then(|m| m.spec_hash.as_deref()),
            Some("0123456789abcdef")
        );
        assert_eq!(live.service_principal_id, None);

        let bare: GraphApplication =
            serde_json::from_value(json!({"id": "i", "appId": "a", "tags": null})).unwrap();
        let bare = bare.into_live();
        assert_eq!(bare.owner, Owner::Unowned);
        assert!(bare.tags.is_empty() && bare.unique_name.is_none());
    }

    #[test]
    fn updates_keep_foreign_tags_and_replace_the_marker() {
        let d = desired("New");
        let current = LiveApplication {
            object_id: "o".into(),
            app_id: "a".into(),
            display_name: "Old".into(),
            unique_name: Some(d.unique_name()),
            tags: strings(&["HideApp", "wiform-stack:orders", "Wiform-Spec-Hash:old"]),
            owner: Owner::Unowned,
            service_principal_id: None,
        };
        let mut expected = strings(&["HideApp"]);
        expected.extend(d.tags());
        assert_eq!(merged_tags(&d, Some(&current)), expected);
        assert_eq!(merged_tags(&d, None), d.tags());
    }

    #[test]
    fn filters_are_quoted_and_encoded() {
        assert_eq!(odata_string("it's"), "'it''s'");
        assert_eq!(query_value("a b+c&d#e"), "a%20b%2Bc%26d%23e");
        assert_eq!(
            applications_where("displayName eq 'R&D'"),
            "v1.0/applications?$filter=displayName%20eq%20%27R%26D%27\
             &$select=id,appId,displayName,uniqueName,tags&$top=999"
        );
    }

    #[test]
    fn credentials_convert_and_compare() {
        let wanted = DesiredApplicationCredential {
            name: "github-main".into(),
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:contoso/orders:ref:refs/heads/main".into(),
            audiences: strings(&["api://AzureADTokenExchange"]),
            description: None,
        };
        assert_eq!(
            wanted.body(),
            json!({
                "name": "github-main",
                "issuer": "https://token.actions.githubusercontent.com",
                "subject": "repo:contoso/orders:ref:refs/heads/main",
                "audiences": ["api://AzureADTokenExchange"],
                "description": null,
            })
        );
        let raw: GraphCredential = serde_json::from_value(json!({
            "id": "AB-CD",
            "name": "github-main",
            "issuer": "https://token.actions.githubusercontent.com",
            "subject": "repo:contoso/orders:ref:refs/heads/main",
            "audiences": ["api://AzureADTokenExchange"],
            "description": ""
        }))
        .unwrap();
        let live = raw.into_live("app-object");
        assert_eq!(live.id, "ab-cd");
        assert_eq!(
            live.parent,
            CredentialParent::Application("app-object".into())
        );
        // An empty description is no description.
        assert!(live.is_up_to_date(&wanted));
        let moved = DesiredApplicationCredential {
            subject: "repo:contoso/orders:ref:refs/heads/release".into(),
            ..wanted.clone()
        };
        assert!(!live.is_up_to_date(&moved));
        let described = DesiredApplicationCredential {
            description: Some("deploys".into()),
            ..wanted
        };
        assert!(!live.is_up_to_date(&described));
    }

    #[test]
    fn unique_name_collisions_become_conflicts() {
        use super::super::error::ApiFailure;
        let taken = AzureError::api(
            "create or update application x",
            ApiFailure::parse(
                400,
                br#"{"error":{"code":"Request_BadRequest","message":"Another object with the same value for property uniqueName already exists."}}"#,
                Some("r-1".into()),
            ),
        );
        let mapped = unique_name_taken(taken, "wiform.orders.legacy");
        assert!(matches!(mapped.kind(), AzureErrorKind::Conflict { .. }));
        assert_eq!(mapped.action(), "create or update application x");
        let text = mapped.to_string();
        assert!(text.contains("wiform.orders.legacy") && text.contains("request id r-1"));
        let other = AzureError::api(
            "a",
            ApiFailure::parse(
                400,
                br#"{"error":{"code":"Request_BadRequest","message":"Invalid value specified for property 'displayName'."}}"#,
                None,
            ),
        );
        assert!(matches!(
            unique_name_taken(other, "u").kind(),
            AzureErrorKind::Api(_)
        ));
    }
}
