//! Microsoft Graph v1.0: applications, service principals, and application federated identity
//! credentials. Contracts from `microsoftgraph/microsoft-graph-docs-contrib`,
//! `api-reference/v1.0/`: `api/application-post-applications.md`, `application-get.md`,
//! `application-list.md`, `application-update.md`, `application-upsert.md`,
//! `application-delete.md`, `serviceprincipal-post-serviceprincipals.md`,
//! `application-post-federatedidentitycredentials.md`, `federatedidentitycredential-update.md`,
//! `federatedidentitycredential-upsert.md`, `resources/application.md`,
//! `resources/federatedidentitycredential.md`; errors from "Microsoft Graph error responses" and
//! the Entra "Important considerations and restrictions for federated identity credentials"
//! (`MicrosoftDocs/entra-docs`, `docs/workload-id/workload-identity-federation-considerations.md`).
//!
//! Who may do what. Real Graph decides with application permissions (Application.Read.All,
//! Application.ReadWrite.All); the sandbox has no app-role consent, so it reads them off the
//! caller's Azure role assignments at a subscription of the tenant (or above): a role that grants
//! the pseudo-action `Microsoft.Graph/applications/write` (Owner and Contributor, through `*`)
//! counts as Application.ReadWrite.All, one that grants `Microsoft.Graph/applications/read`
//! (Reader, through `*/read`) as Application.Read.All. Anyone else gets the real 403
//! `Authorization_RequestDenied`.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::App;
use crate::auth::Caller;
use crate::http::{Api, ApiError, ApiResult, Request, empty, json_response, page};
use crate::state::{AppFederatedCredential, Application, ServicePrincipal, State, now_ms, rfc3339};

/// "Maximum of 20 objects can be added to an application" (application-post-federatedidentitycredentials.md).
pub const MAX_FICS: usize = 20;
/// issuer, subject, each audience and description: "a limit of 600 characters" (resources/federatedidentitycredential.md).
const FIC_FIELD_LIMIT: usize = 600;
/// The verified publisher domain the sandbox tenant shows (Graph reports the tenant's initial domain).
const PUBLISHER_DOMAIN: &str = "wiformsandbox.onmicrosoft.com";
/// resources/application.md, "signInAudience values".
const SIGN_IN_AUDIENCES: &[&str] = &[
    "AzureADMyOrg",
    "AzureADMultipleOrgs",
    "AzureADandPersonalMicrosoftAccount",
    "PersonalMicrosoftAccount",
];
/// The default of an application created through Graph (the response example of
/// application-post-applications.md).
const DEFAULT_SIGN_IN_AUDIENCE: &str = "AzureADandPersonalMicrosoftAccount";

/// Writable application properties the sandbox keeps.
const APP_MODELED: &[&str] = &[
    "displayname",
    "description",
    "signinaudience",
    "tags",
    "uniquename",
];
/// Properties of resources/application.md the sandbox accepts but does not keep (read-only ones
/// included: Graph ignores them on write).
const APP_IGNORED: &[&str] = &[
    "addins",
    "api",
    "appid",
    "applicationtemplateid",
    "approles",
    "authenticationbehaviors",
    "certification",
    "createddatetime",
    "defaultredirecturi",
    "deleteddatetime",
    "disabledbymicrosoftstatus",
    "groupmembershipclaims",
    "id",
    "identifieruris",
    "info",
    "isdeviceonlyauthsupported",
    "isfallbackpublicclient",
    "keycredentials",
    "logo",
    "nativeauthenticationapisenabled",
    "notes",
    "oauth2requiredpostresponse",
    "optionalclaims",
    "parentalcontrolsettings",
    "passwordcredentials",
    "publicclient",
    "publisherdomain",
    "requestsignatureverification",
    "requiredresourceaccess",
    "samlmetadataurl",
    "servicemanagementreference",
    "serviceprincipallockconfiguration",
    "spa",
    "tokenencryptionkeyid",
    "verifiedpublisher",
    "web",
    "windows",
];
/// Properties of resources/serviceprincipal.md accepted on create.
const SP_KNOWN: &[&str] = &[
    "accountenabled",
    "addins",
    "alternativenames",
    "appdescription",
    "appdisplayname",
    "appid",
    "approleassignmentrequired",
    "approles",
    "description",
    "disabledbymicrosoftstatus",
    "displayname",
    "homepage",
    "id",
    "info",
    "keycredentials",
    "loginurl",
    "logouturl",
    "notes",
    "notificationemailaddresses",
    "oauth2permissionscopes",
    "passwordcredentials",
    "preferredsinglesignonmode",
    "preferredtokensigningkeythumbprint",
    "replyurls",
    "samlsinglesignonsettings",
    "serviceprincipalnames",
    "serviceprincipaltype",
    "tags",
    "tokenencryptionkeyid",
];

// ---------------------------------------------------------------------------------------------
// Errors ("Microsoft Graph error responses": {"error":{"code","message","innerError":{…}}}).

fn not_found(id: &str) -> ApiError {
    ApiError::graph(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::graph(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn invalid_value(property: &str, resource: &str) -> ApiError {
    bad_request(format!(
        "Invalid value specified for property '{property}' of resource '{resource}'."
    ))
}

/// OData's answer to a property the type does not define.
fn unknown_property(property: &str, odata_type: &str) -> ApiError {
    ApiError::graph(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!(
            "The property '{property}' does not exist on type '{odata_type}'. Make sure to only use property names that are defined by the type or mark the type as open type."
        ),
    )
}

fn denied() -> ApiError {
    ApiError::graph(
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn conflict(property: &str) -> ApiError {
    ApiError::graph(
        StatusCode::CONFLICT,
        "Request_MultipleObjectsWithSameKeyValue",
        format!("Another object with the same value for property {property} already exists."),
    )
}

fn method_not_allowed() -> ApiError {
    ApiError::graph(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "Specified HTTP method is not allowed for the request uri.",
    )
}

fn segment_not_found(segment: &str) -> ApiError {
    ApiError::graph(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        format!("Resource not found for the segment '{segment}'."),
    )
}

// ---------------------------------------------------------------------------------------------
// Who may call.

/// See the module comment: Graph application permissions from Azure role assignments at a
/// subscription (or above).
fn authorize(app: &App, caller: &Caller, write: bool) -> Result<(), ApiError> {
    let action = if write {
        "Microsoft.Graph/applications/write"
    } else {
        "Microsoft.Graph/applications/read"
    };
    let allowed = app.store.read(|s| {
        s.subscriptions.iter().any(|sub| {
            crate::auth::authorize(s, caller, action, &format!("/subscriptions/{sub}")).is_ok()
        })
    });
    if allowed { Ok(()) } else { Err(denied()) }
}

// ---------------------------------------------------------------------------------------------
// Paths: `applications`, `applications/{id}`, `applications(appId='…')`,
// `applications(uniqueName='…')`, `…/federatedIdentityCredentials[/{id or name}]`,
// `…/federatedIdentityCredentials(name='…')`, `servicePrincipals[/{id}]`,
// `servicePrincipals(appId='…')`.

/// One path segment, with its OData key if it has one: `applications(appId='x')`.
struct Segment {
    name: String,
    key: Option<Key>,
}

enum Key {
    /// `('x')` or `(x)`.
    Plain(String),
    /// `(prop='x')`, prop lowercased.
    Named(String, String),
}

impl Segment {
    fn parse(raw: &str) -> Result<Segment, ApiError> {
        let syntax = || {
            ApiError::graph(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Bad Request - Error in query syntax: '{raw}'."),
            )
        };
        let Some(open) = raw.find('(') else {
            return Ok(Segment {
                name: raw.to_string(),
                key: None,
            });
        };
        if !raw.ends_with(')') || open == 0 {
            return Err(syntax());
        }
        let inner = raw[open + 1..raw.len() - 1].trim();
        let key = if inner.starts_with('\'') {
            Key::Plain(unquote(inner).ok_or_else(syntax)?)
        } else if let Some((prop, value)) = inner.split_once('=') {
            Key::Named(
                prop.trim().to_ascii_lowercase(),
                unquote(value.trim()).ok_or_else(syntax)?,
            )
        } else if !inner.is_empty() {
            Key::Plain(inner.to_string())
        } else {
            return Err(syntax());
        };
        Ok(Segment {
            name: raw[..open].to_string(),
            key: Some(key),
        })
    }

    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// `'it''s'` → `it's`; a bare GUID passes as is.
fn unquote(value: &str) -> Option<String> {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        let inner = &value[1..value.len() - 1];
        // A lone quote inside is a syntax error.
        if inner.replace("''", "").contains('\'') {
            return None;
        }
        Some(inner.replace("''", "'"))
    } else if uuid::Uuid::try_parse(value).is_ok() {
        Some(value.to_string())
    } else {
        None
    }
}

/// How a request names an application.
enum AppRef {
    ObjectId(String),
    AppId(String),
    UniqueName(String),
}

impl AppRef {
    fn from_key(key: &Key) -> Result<AppRef, ApiError> {
        match key {
            Key::Plain(v) => Ok(AppRef::ObjectId(v.clone())),
            Key::Named(p, v) if p == "id" => Ok(AppRef::ObjectId(v.clone())),
            Key::Named(p, v) if p == "appid" => Ok(AppRef::AppId(v.clone())),
            Key::Named(p, v) if p == "uniquename" => Ok(AppRef::UniqueName(v.clone())),
            Key::Named(p, _) => Err(ApiError::graph(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!(
                    "The key property '{p}' is not an alternate key of type 'microsoft.graph.application'."
                ),
            )),
        }
    }

    fn shown(&self) -> &str {
        match self {
            AppRef::ObjectId(v) | AppRef::AppId(v) | AppRef::UniqueName(v) => v,
        }
    }

    /// Object ids must be GUIDs: Graph answers 400 "Invalid object identifier" before looking.
    fn check(&self) -> Result<(), ApiError> {
        match self {
            AppRef::ObjectId(v) | AppRef::AppId(v) if uuid::Uuid::try_parse(v).is_err() => {
                Err(bad_request(format!("Invalid object identifier '{v}'.")))
            }
            _ => Ok(()),
        }
    }

    /// The key the application is stored under in `State::applications`.
    fn find(&self, state: &State) -> Option<String> {
        state
            .applications
            .iter()
            .find(|(_, a)| match self {
                AppRef::ObjectId(id) => a.id.eq_ignore_ascii_case(id),
                AppRef::AppId(app_id) => a.app_id.eq_ignore_ascii_case(app_id),
                AppRef::UniqueName(name) => a
                    .unique_name
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(name)),
            })
            .map(|(k, _)| k.clone())
    }
}

/// How a request names a federated identity credential of an application.
enum FicRef {
    /// `federatedIdentityCredentials/{id or name}` (federatedidentitycredential-update.md).
    IdOrName(String),
    /// `federatedIdentityCredentials(name='…')` (federatedidentitycredential-upsert.md).
    Name(String),
}

impl FicRef {
    fn shown(&self) -> &str {
        match self {
            FicRef::IdOrName(v) | FicRef::Name(v) => v,
        }
    }

    fn position(&self, fics: &[AppFederatedCredential]) -> Option<usize> {
        match self {
            FicRef::IdOrName(v) => fics
                .iter()
                .position(|f| f.id.eq_ignore_ascii_case(v))
                .or_else(|| fics.iter().position(|f| f.name.eq_ignore_ascii_case(v))),
            FicRef::Name(v) => fics.iter().position(|f| f.name.eq_ignore_ascii_case(v)),
        }
    }
}

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let Some(caller) = request.caller.clone() else {
        return Err(ApiError::graph(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        ));
    };
    let path = request
        .segments
        .iter()
        .skip(1)
        .map(|s| Segment::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = path.first() else {
        return Err(segment_not_found("v1.0"));
    };
    authorize(app, &caller, request.method != Method::GET)?;
    if first.is("applications") {
        let (target, rest) = match (&first.key, path.get(1)) {
            (None, None) => return applications(app, &request).await,
            (Some(key), _) => (AppRef::from_key(key)?, &path[1..]),
            (None, Some(id)) if id.key.is_none() => (AppRef::ObjectId(id.name.clone()), &path[2..]),
            (None, Some(id)) => return Err(segment_not_found(&id.name)),
        };
        target.check()?;
        return match rest {
            [] => application(app, &request, target),
            [fics] if fics.is("federatedIdentityCredentials") => match &fics.key {
                None => federated_credentials(app, &request, target).await,
                Some(Key::Named(p, v)) if p == "name" => {
                    federated_credential(app, &request, target, FicRef::Name(v.clone()))
                }
                Some(Key::Plain(v)) => {
                    federated_credential(app, &request, target, FicRef::IdOrName(v.clone()))
                }
                Some(Key::Named(p, _)) => Err(ApiError::graph(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!(
                        "The key property '{p}' is not an alternate key of type 'microsoft.graph.federatedIdentityCredential'."
                    ),
                )),
            },
            [fics, id] if fics.is("federatedIdentityCredentials") && fics.key.is_none() => {
                if id.key.is_some() {
                    return Err(segment_not_found(&id.name));
                }
                federated_credential(app, &request, target, FicRef::IdOrName(id.name.clone()))
            }
            [other, ..] => Err(segment_not_found(&other.name)),
        };
    }
    if first.is("servicePrincipals") {
        return match (&first.key, &path[1..]) {
            (None, []) => service_principals(app, &request).await,
            (Some(Key::Named(p, v)), []) if p == "appid" => {
                service_principal(app, &request, SpRef::AppId(v.clone()))
            }
            (Some(Key::Plain(v)), []) => service_principal(app, &request, SpRef::Id(v.clone())),
            (Some(Key::Named(p, v)), []) if p == "id" => {
                service_principal(app, &request, SpRef::Id(v.clone()))
            }
            (None, [id]) if id.key.is_none() => {
                service_principal(app, &request, SpRef::Id(id.name.clone()))
            }
            (_, [other, ..]) => Err(segment_not_found(&other.name)),
            (Some(_), []) => Err(ApiError::graph(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The key is not an alternate key of type 'microsoft.graph.servicePrincipal'.",
            )),
        };
    }
    Err(segment_not_found(&first.name))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers: JSON bodies, $filter, $select, paged lists with @odata.context.

fn graph_time(ms: u64) -> String {
    // Graph's DateTimeOffset: `2019-09-17T19:10:35Z`.
    let full = rfc3339(ms);
    match full.split_once('.') {
        Some((seconds, _)) => format!("{seconds}Z"),
        None => full,
    }
}

fn context(request: &Request, fragment: &str) -> String {
    format!("{}/v1.0/$metadata#{fragment}", request.base_url)
}

fn entity(request: &Request, fragment: &str, mut body: Value) -> Value {
    let fields = selected(request);
    if let Some(fields) = &fields {
        body = project(body, fields);
    }
    let fragment = match &fields {
        Some(fields) => format!("{fragment}({})/$entity", fields.join(",")),
        None => format!("{fragment}/$entity"),
    };
    if let Value::Object(map) = &mut body {
        map.insert(
            "@odata.context".into(),
            Value::String(context(request, &fragment)),
        );
    }
    body
}

fn object(request: &Request) -> Result<Map<String, Value>, ApiError> {
    match request.json(Api::Graph)? {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::graph(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Empty Payload. JSON content expected.",
        )),
    }
}

/// OData control information and `@odata.bind` references are not properties.
fn is_annotation(key: &str) -> bool {
    key.starts_with('@') || key.contains("@odata.")
}

/// `$select=id,appId` (Graph returns only those properties).
fn selected(request: &Request) -> Option<Vec<String>> {
    request.query("$select").map(|s| {
        s.split(',')
            .map(|f| f.trim().to_string())
            .filter(|f| !f.is_empty())
            .collect()
    })
}

fn project(item: Value, fields: &[String]) -> Value {
    match item {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f.eq_ignore_ascii_case(k)))
                .collect(),
        ),
        other => other,
    }
}

/// One `$filter` clause: `prop eq 'v'`, or `prop/any(x:x eq 'v')` on a collection.
#[derive(Debug, PartialEq)]
enum Clause {
    Eq(String, String),
    Any(String, String),
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
    Colon,
}

fn tokenize(filter: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = filter.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ':' => {
                tokens.push(Token::Colon);
                i += 1;
            }
            '\'' => {
                i += 1;
                let mut text = String::new();
                loop {
                    let &c = chars.get(i)?;
                    if c == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            text.push('\'');
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    text.push(c);
                    i += 1;
                }
                tokens.push(Token::Text(text));
            }
            c if c.is_alphanumeric() || "_/.-$@".contains(c) => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_/.-$@".contains(chars[i]))
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            _ => return None,
        }
    }
    Some(tokens)
}

fn parse_filter(filter: &str) -> Option<Vec<Clause>> {
    let tokens = tokenize(filter)?;
    let mut it = tokens.into_iter();
    let mut clauses = Vec::new();
    let is_word =
        |t: &Option<Token>, w: &str| matches!(t, Some(Token::Word(x)) if x.eq_ignore_ascii_case(w));
    loop {
        let Some(Token::Word(prop)) = it.next() else {
            return None;
        };
        let lower = prop.to_ascii_lowercase();
        if let Some(collection) = lower.strip_suffix("/any") {
            let collection = prop[..collection.len()].to_string();
            if it.next() != Some(Token::Open) {
                return None;
            }
            let Some(Token::Word(var)) = it.next() else {
                return None;
            };
            if it.next() != Some(Token::Colon) {
                return None;
            }
            if it.next() != Some(Token::Word(var.clone())) {
                return None;
            }
            if !is_word(&it.next(), "eq") {
                return None;
            }
            let Some(Token::Text(value)) = it.next() else {
                return None;
            };
            if it.next() != Some(Token::Close) {
                return None;
            }
            clauses.push(Clause::Any(collection, value));
        } else {
            if !is_word(&it.next(), "eq") {
                return None;
            }
            let Some(Token::Text(value)) = it.next() else {
                return None;
            };
            clauses.push(Clause::Eq(prop, value));
        }
        match it.next() {
            None => return Some(clauses),
            next if is_word(&next, "and") => continue,
            _ => return None,
        }
    }
}

fn field<'a>(item: &'a Value, name: &str) -> Option<&'a Value> {
    item.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Directory string comparisons are case-insensitive.
fn clause_matches(item: &Value, clause: &Clause) -> bool {
    match clause {
        Clause::Eq(prop, value) => field(item, prop)
            .and_then(Value::as_str)
            .is_some_and(|v| v.eq_ignore_ascii_case(value)),
        Clause::Any(prop, value) => field(item, prop)
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .any(|v| v.eq_ignore_ascii_case(value))
            }),
    }
}

/// Applies `$filter` (only `eq` on the properties each resource documents as filterable, joined
/// with `and`).
fn filter(
    request: &Request,
    items: Vec<Value>,
    resource: &str,
    eq: &[&str],
    any: &[&str],
) -> Result<Vec<Value>, ApiError> {
    let Some(text) = request.query("$filter") else {
        return Ok(items);
    };
    let clauses = parse_filter(text).ok_or_else(|| {
        ApiError::graph(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Invalid filter clause: syntax error in '{text}'."),
        )
    })?;
    for clause in &clauses {
        let (prop, allowed) = match clause {
            Clause::Eq(p, _) => (p, eq),
            Clause::Any(p, _) => (p, any),
        };
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(prop)) {
            return Err(ApiError::graph(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                format!(
                    "Unsupported or invalid query filter clause specified for property '{prop}' of resource '{resource}'."
                ),
            ));
        }
    }
    Ok(items
        .into_iter()
        .filter(|item| clauses.iter().all(|c| clause_matches(item, c)))
        .collect())
}

/// A page of a collection (`@odata.nextLink` from `crate::http::page`), with `@odata.context`.
async fn list(app: &App, request: &Request, items: Vec<Value>, fragment: &str) -> ApiResult {
    let fields = selected(request);
    let items = match &fields {
        Some(fields) => items.into_iter().map(|i| project(i, fields)).collect(),
        None => items,
    };
    let response = page(request, items, app.options.page_size, Api::Graph);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "value": [] }));
    let fragment = match &fields {
        Some(fields) => format!("{fragment}({})", fields.join(",")),
        None => fragment.to_string(),
    };
    body["@odata.context"] = Value::String(context(request, &fragment));
    Ok(json_response(StatusCode::OK, &body))
}

fn created(body: Value, location: String) -> Response {
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `Prefer: create-if-missing` (application-upsert.md, federatedidentitycredential-upsert.md).
fn create_if_missing(request: &Request) -> bool {
    request
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("create-if-missing"))
}

fn text(value: &Value, property: &str, resource: &str) -> Result<String, ApiError> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| invalid_value(property, resource))
}

fn texts(value: &Value, property: &str, resource: &str) -> Result<Vec<String>, ApiError> {
    value
        .as_array()
        .and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        })
        .ok_or_else(|| invalid_value(property, resource))
}

// ---------------------------------------------------------------------------------------------
// Applications.

fn application_json(a: &Application) -> Value {
    json!({
        "id": a.id,
        "deletedDateTime": null,
        "appId": a.app_id,
        "applicationTemplateId": null,
        "createdDateTime": graph_time(a.created_ms),
        "description": a.description,
        "displayName": a.display_name,
        "groupMembershipClaims": null,
        "identifierUris": [],
        "isDeviceOnlyAuthSupported": null,
        "isFallbackPublicClient": null,
        "notes": null,
        "publisherDomain": PUBLISHER_DOMAIN,
        "signInAudience": a.sign_in_audience,
        "tags": a.tags,
        "tokenEncryptionKeyId": null,
        "uniqueName": a.unique_name,
        "addIns": [],
        "api": {
            "acceptMappedClaims": null,
            "knownClientApplications": [],
            "requestedAccessTokenVersion": null,
            "oauth2PermissionScopes": [],
            "preAuthorizedApplications": [],
        },
        "appRoles": [],
        "info": {
            "logoUrl": null,
            "marketingUrl": null,
            "privacyStatementUrl": null,
            "supportUrl": null,
            "termsOfServiceUrl": null,
        },
        "keyCredentials": [],
        "optionalClaims": null,
        "parentalControlSettings": { "countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow" },
        "passwordCredentials": [],
        "publicClient": { "redirectUris": [] },
        "requiredResourceAccess": [],
        "spa": { "redirectUris": [] },
        "web": {
            "homePageUrl": null,
            "logoutUrl": null,
            "redirectUris": [],
            "implicitGrantSettings": { "enableAccessTokenIssuance": false, "enableIdTokenIssuance": false },
        },
    })
}

/// The properties of an application create or update that the sandbox keeps.
#[derive(Default)]
struct AppInput {
    display_name: Option<String>,
    description: Option<Option<String>>,
    sign_in_audience: Option<String>,
    tags: Option<Vec<String>>,
    unique_name: Option<String>,
}

fn app_input(body: &Map<String, Value>) -> Result<AppInput, ApiError> {
    const R: &str = "Application";
    let mut input = AppInput::default();
    for (key, value) in body {
        let lower = key.to_ascii_lowercase();
        if is_annotation(key) || APP_IGNORED.contains(&lower.as_str()) {
            continue;
        }
        if !APP_MODELED.contains(&lower.as_str()) {
            return Err(unknown_property(key, "microsoft.graph.application"));
        }
        match lower.as_str() {
            "displayname" => {
                let name = text(value, "displayName", R)?;
                // Graph keeps display names up to 256 characters.
                if name.trim().is_empty() || name.chars().count() > 256 {
                    return Err(invalid_value("displayName", R));
                }
                input.display_name = Some(name);
            }
            "description" => {
                input.description = Some(match value {
                    Value::Null => None,
                    // "The maximum allowed size is 1024 characters" (resources/application.md).
                    Value::String(s) if s.chars().count() <= 1024 => Some(s.clone()),
                    _ => return Err(invalid_value("description", R)),
                });
            }
            "signinaudience" => {
                let audience = text(value, "signInAudience", R)?;
                let Some(known) = SIGN_IN_AUDIENCES
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(&audience))
                else {
                    return Err(invalid_value("signInAudience", R));
                };
                input.sign_in_audience = Some(known.to_string());
            }
            "tags" => input.tags = Some(texts(value, "tags", R)?),
            "uniquename" => {
                let name = text(value, "uniqueName", R)?;
                if name.trim().is_empty() {
                    return Err(invalid_value("uniqueName", R));
                }
                input.unique_name = Some(name);
            }
            _ => {}
        }
    }
    Ok(input)
}

fn unique_name_taken(state: &State, name: &str, except: Option<&str>) -> bool {
    state.applications.values().any(|a| {
        Some(a.id.as_str()) != except
            && a.unique_name
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(name))
    })
}

/// Creates an application in `state` (displayName is required: application-post-applications.md).
fn insert_application(state: &mut State, input: AppInput) -> Result<Application, ApiError> {
    let Some(display_name) = input.display_name else {
        return Err(invalid_value("displayName", "Application"));
    };
    if let Some(name) = &input.unique_name
        && unique_name_taken(state, name, None)
    {
        return Err(conflict("uniqueName"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let application = Application {
        id: id.clone(),
        app_id: uuid::Uuid::new_v4().to_string(),
        display_name,
        unique_name: input.unique_name,
        description: input.description.flatten(),
        sign_in_audience: input
            .sign_in_audience
            .unwrap_or_else(|| DEFAULT_SIGN_IN_AUDIENCE.to_string()),
        created_ms: now_ms(),
        tags: input.tags.unwrap_or_default(),
        federated_credentials: Vec::new(),
    };
    state.applications.insert(id, application.clone());
    Ok(application)
}

/// application-update.md: properties not in the body keep their values; uniqueName is immutable
/// once set.
fn update_application(state: &mut State, key: &str, input: AppInput) -> Result<(), ApiError> {
    let id = state.applications.get(key).map(|a| a.id.clone());
    if let Some(name) = &input.unique_name
        && unique_name_taken(state, name, id.as_deref())
    {
        return Err(conflict("uniqueName"));
    }
    let Some(a) = state.applications.get_mut(key) else {
        return Err(not_found(key));
    };
    if let Some(name) = input.unique_name {
        match &a.unique_name {
            Some(existing) if !existing.eq_ignore_ascii_case(&name) => {
                return Err(bad_request(
                    "Property 'uniqueName' is immutable once set and cannot be changed.",
                ));
            }
            _ => a.unique_name = Some(name),
        }
    }
    if let Some(name) = input.display_name {
        a.display_name = name;
    }
    if let Some(description) = input.description {
        a.description = description;
    }
    if let Some(audience) = input.sign_in_audience {
        a.sign_in_audience = audience;
    }
    if let Some(tags) = input.tags {
        a.tags = tags;
    }
    // The application's service principals show its display name.
    let (app_id, display_name) = (a.app_id.clone(), a.display_name.clone());
    for sp in state.service_principals.values_mut() {
        if sp.service_principal_type == "Application" && sp.app_id.eq_ignore_ascii_case(&app_id) {
            sp.display_name = display_name.clone();
        }
    }
    Ok(())
}

/// `GET /applications` (application-list.md) and `POST /applications`
/// (application-post-applications.md).
async fn applications(app: &App, request: &Request) -> ApiResult {
    match request.method {
        Method::GET => {
            let items = app
                .store
                .read(|s| s.applications.values().map(application_json).collect());
            let items = filter(
                request,
                items,
                "Application",
                &[
                    "id",
                    "appId",
                    "displayName",
                    "uniqueName",
                    "signInAudience",
                    "publisherDomain",
                ],
                &["identifierUris", "tags"],
            )?;
            list(app, request, items, "applications").await
        }
        Method::POST => {
            let input = app_input(&object(request)?)?;
            let created_app = app.store.update(|s| insert_application(s, input))?;
            Ok(created(
                entity(request, "applications", application_json(&created_app)),
                format!("{}/v1.0/applications/{}", request.base_url, created_app.id),
            ))
        }
        _ => Err(method_not_allowed()),
    }
}

/// `GET|PATCH|DELETE /applications/{id}`, `/applications(appId='…')`, and the upsert
/// `PATCH /applications(uniqueName='…')` with `Prefer: create-if-missing` (application-upsert.md).
fn application(app: &App, request: &Request, target: AppRef) -> ApiResult {
    match request.method {
        Method::GET => {
            let found = app.store.read(|s| {
                target
                    .find(s)
                    .and_then(|k| s.applications.get(&k).map(application_json))
            });
            match found {
                Some(body) => Ok(json_response(
                    StatusCode::OK,
                    &entity(request, "applications", body),
                )),
                None => Err(not_found(target.shown())),
            }
        }
        Method::PATCH => {
            let mut input = app_input(&object(request)?)?;
            let upsert = create_if_missing(request);
            if let AppRef::UniqueName(name) = &target {
                match &input.unique_name {
                    Some(body_name) if !body_name.eq_ignore_ascii_case(name) => {
                        return Err(bad_request(
                            "The uniqueName in the request body does not match the one in the request URI.",
                        ));
                    }
                    _ => input.unique_name = Some(name.clone()),
                }
            }
            let outcome = app.store.update(|s| match target.find(s) {
                Some(key) => update_application(s, &key, input).map(|()| None),
                None if upsert && matches!(target, AppRef::UniqueName(_)) => {
                    insert_application(s, input).map(Some)
                }
                None => Err(not_found(target.shown())),
            })?;
            match outcome {
                None => Ok(empty(StatusCode::NO_CONTENT)),
                Some(created_app) => Ok(created(
                    entity(request, "applications", application_json(&created_app)),
                    format!("{}/v1.0/applications/{}", request.base_url, created_app.id),
                )),
            }
        }
        Method::DELETE => {
            // application-delete.md: 204. The application's service principal in its home tenant
            // goes with it. (Real Entra keeps deleted applications restorable for 30 days; the
            // sandbox deletes them at once.)
            app.store.update(|s| {
                let Some(key) = target.find(s) else {
                    return Err(not_found(target.shown()));
                };
                if let Some(removed) = s.applications.remove(&key) {
                    s.service_principals.retain(|_, sp| {
                        !(sp.service_principal_type == "Application"
                            && sp.app_id.eq_ignore_ascii_case(&removed.app_id))
                    });
                }
                Ok(())
            })?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(method_not_allowed()),
    }
}

// ---------------------------------------------------------------------------------------------
// Federated identity credentials of applications.

fn fic_json(f: &AppFederatedCredential) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "issuer": f.issuer,
        "subject": f.subject,
        "description": f.description,
        "audiences": f.audiences,
    })
}

fn fic_context(object_id: &str) -> String {
    format!("applications('{object_id}')/federatedIdentityCredentials")
}

#[derive(Default)]
struct FicInput {
    name: Option<String>,
    issuer: Option<String>,
    subject: Option<String>,
    audiences: Option<Vec<String>>,
    description: Option<Option<String>>,
}

fn fic_input(body: &Map<String, Value>) -> Result<FicInput, ApiError> {
    const R: &str = "FederatedIdentityCredential";
    let mut input = FicInput::default();
    for (key, value) in body {
        if is_annotation(key) {
            continue;
        }
        match key.to_ascii_lowercase().as_str() {
            "id" => {}
            "name" => input.name = Some(text(value, "name", R)?),
            "issuer" => input.issuer = Some(text(value, "issuer", R)?),
            "subject" => input.subject = Some(text(value, "subject", R)?),
            "audiences" => input.audiences = Some(texts(value, "audiences", R)?),
            "description" => {
                input.description = Some(match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    _ => return Err(invalid_value("description", R)),
                })
            }
            _ => {
                return Err(unknown_property(
                    key,
                    "microsoft.graph.federatedIdentityCredential",
                ));
            }
        }
    }
    Ok(input)
}

/// "3-120 characters … Alphanumeric, dash, or underscore characters are supported, the first
/// character must be alphanumeric only" (entra-docs federated-credential-configuration-considerations.md).
fn valid_fic_name(name: &str) -> bool {
    (3..=120).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The rules of the considerations doc, with its messages where it gives them.
fn validate_fic(fic: &AppFederatedCredential) -> Result<(), ApiError> {
    if !valid_fic_name(&fic.name) {
        return Err(bad_request(format!(
            "Federated Identity Credential name '{}' is invalid.",
            fic.name
        )));
    }
    if fic.issuer.is_empty() || fic.subject.is_empty() {
        return Err(bad_request(
            "Federated Identity Credential from HTTP body has empty properties",
        ));
    }
    if fic.audiences.len() != 1 {
        return Err(bad_request(
            "Federated identity credentials must have exactly one audience.",
        ));
    }
    for (property, value) in [
        ("issuer", fic.issuer.as_str()),
        ("subject", fic.subject.as_str()),
        ("audiences", fic.audiences[0].as_str()),
        (
            "description",
            fic.description.as_deref().unwrap_or_default(),
        ),
    ] {
        if value.chars().count() > FIC_FIELD_LIMIT {
            return Err(bad_request(format!(
                "The value of property '{property}' exceeds the limit of {FIC_FIELD_LIMIT} characters."
            )));
        }
    }
    if fic.audiences[0].is_empty() {
        return Err(bad_request(
            "Federated Identity Credential from HTTP body has empty properties",
        ));
    }
    match url::Url::parse(&fic.issuer) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(()),
        _ => Err(bad_request(format!(
            "Issuer '{}' is not a valid URL. The issuer must be an https URL.",
            fic.issuer
        ))),
    }
}

/// (issuer, subject) unique per application; name unique; at most 20.
fn check_fic_set(
    a: &Application,
    fic: &AppFederatedCredential,
    replacing: Option<usize>,
) -> Result<(), ApiError> {
    let others = a
        .federated_credentials
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != replacing)
        .map(|(_, f)| f);
    for other in others {
        if other.issuer == fic.issuer && other.subject == fic.subject {
            // The body Graph answers with (Azure/azure-workload-identity#434).
            return Err(ApiError::graph(
                StatusCode::BAD_REQUEST,
                "InvalidFederatedIdentityCredentialValue",
                format!(
                    "The combination of issuer and subject must be unique for the application. Issuer {} and Subject: {} already exist. paramName: FederatedIdentityCredential.Subject, paramValue: {}, objectType: Microsoft.Online.DirectoryServices.Application",
                    fic.issuer, fic.subject, fic.subject
                ),
            ));
        }
        if other.name.eq_ignore_ascii_case(&fic.name) {
            return Err(conflict("name"));
        }
    }
    if replacing.is_none() && a.federated_credentials.len() >= MAX_FICS {
        return Err(bad_request(format!(
            "The application '{}' already has the maximum of {MAX_FICS} federated identity credentials.",
            a.id
        )));
    }
    Ok(())
}

fn new_fic(name: String, input: FicInput) -> Result<AppFederatedCredential, ApiError> {
    let (Some(issuer), Some(subject), Some(audiences)) =
        (input.issuer, input.subject, input.audiences)
    else {
        return Err(bad_request(
            "Federated Identity Credential from HTTP body has empty properties",
        ));
    };
    let fic = AppFederatedCredential {
        written_ms: now_ms(),
        id: uuid::Uuid::new_v4().to_string(),
        name,
        issuer,
        subject,
        audiences,
        description: input.description.flatten(),
    };
    validate_fic(&fic)?;
    Ok(fic)
}

/// `GET|POST /applications/{id}/federatedIdentityCredentials`.
async fn federated_credentials(app: &App, request: &Request, target: AppRef) -> ApiResult {
    match request.method {
        Method::GET => {
            let found = app.store.read(|s| {
                target.find(s).and_then(|k| {
                    s.applications.get(&k).map(|a| {
                        (
                            a.id.clone(),
                            a.federated_credentials
                                .iter()
                                .map(fic_json)
                                .collect::<Vec<_>>(),
                        )
                    })
                })
            });
            let Some((object_id, items)) = found else {
                return Err(not_found(target.shown()));
            };
            let items = filter(
                request,
                items,
                "FederatedIdentityCredential",
                &["name", "subject", "issuer"],
                &[],
            )?;
            list(app, request, items, &fic_context(&object_id)).await
        }
        Method::POST => {
            let input = fic_input(&object(request)?)?;
            let Some(name) = input.name.clone() else {
                return Err(bad_request(
                    "Federated Identity Credential from HTTP body has empty properties",
                ));
            };
            let fic = new_fic(name, input)?;
            let object_id = app.store.update(|s| {
                let Some(key) = target.find(s) else {
                    return Err(not_found(target.shown()));
                };
                let a = s
                    .applications
                    .get_mut(&key)
                    .ok_or_else(|| not_found(target.shown()))?;
                check_fic_set(a, &fic, None)?;
                a.federated_credentials.push(fic.clone());
                Ok(a.id.clone())
            })?;
            Ok(created(
                entity(request, &fic_context(&object_id), fic_json(&fic)),
                format!(
                    "{}/v1.0/applications/{object_id}/federatedIdentityCredentials/{}",
                    request.base_url, fic.id
                ),
            ))
        }
        _ => Err(method_not_allowed()),
    }
}

/// `GET|PATCH|DELETE /applications/{id}/federatedIdentityCredentials/{id or name}` and the upsert
/// `PATCH …/federatedIdentityCredentials(name='…')` + `Prefer: create-if-missing` (201 created,
/// 204 updated; without the header a missing credential is 404).
fn federated_credential(app: &App, request: &Request, target: AppRef, fic: FicRef) -> ApiResult {
    match request.method {
        Method::GET => {
            let found = app.store.read(|s| {
                let a = s.applications.get(&target.find(s)?)?;
                let i = fic.position(&a.federated_credentials)?;
                Some((a.id.clone(), fic_json(&a.federated_credentials[i])))
            });
            match found {
                Some((object_id, body)) => Ok(json_response(
                    StatusCode::OK,
                    &entity(request, &fic_context(&object_id), body),
                )),
                None => Err(not_found(fic.shown())),
            }
        }
        Method::PATCH => {
            let input = fic_input(&object(request)?)?;
            let upsert = matches!(fic, FicRef::Name(_)) && create_if_missing(request);
            if let (FicRef::Name(url_name), Some(body_name)) = (&fic, &input.name)
                && body_name != url_name
            {
                return Err(bad_request(
                    "The name in the request body does not match the name in the request URI.",
                ));
            }
            let outcome = app.store.update(|s| {
                let Some(key) = target.find(s) else {
                    return Err(not_found(target.shown()));
                };
                let a = s
                    .applications
                    .get_mut(&key)
                    .ok_or_else(|| not_found(target.shown()))?;
                match fic.position(&a.federated_credentials) {
                    Some(i) => {
                        let mut updated = a.federated_credentials[i].clone();
                        if let Some(name) = &input.name
                            && name != &updated.name
                        {
                            // "It is immutable once created" (resources/federatedidentitycredential.md).
                            return Err(bad_request(
                                "Property 'name' is immutable once created and cannot be changed.",
                            ));
                        }
                        if let Some(issuer) = input.issuer {
                            updated.issuer = issuer;
                        }
                        if let Some(subject) = input.subject {
                            updated.subject = subject;
                        }
                        if let Some(audiences) = input.audiences {
                            updated.audiences = audiences;
                        }
                        if let Some(description) = input.description {
                            updated.description = description;
                        }
                        updated.written_ms = now_ms();
                        validate_fic(&updated)?;
                        check_fic_set(a, &updated, Some(i))?;
                        a.federated_credentials[i] = updated;
                        Ok(None)
                    }
                    None if upsert => {
                        let created_fic = new_fic(fic.shown().to_string(), input)?;
                        check_fic_set(a, &created_fic, None)?;
                        a.federated_credentials.push(created_fic.clone());
                        Ok(Some((a.id.clone(), created_fic)))
                    }
                    None => Err(not_found(fic.shown())),
                }
            })?;
            match outcome {
                None => Ok(empty(StatusCode::NO_CONTENT)),
                Some((object_id, created_fic)) => Ok(created(
                    entity(request, &fic_context(&object_id), fic_json(&created_fic)),
                    format!(
                        "{}/v1.0/applications/{object_id}/federatedIdentityCredentials/{}",
                        request.base_url, created_fic.id
                    ),
                )),
            }
        }
        Method::DELETE => {
            app.store.update(|s| {
                let Some(key) = target.find(s) else {
                    return Err(not_found(target.shown()));
                };
                let a = s
                    .applications
                    .get_mut(&key)
                    .ok_or_else(|| not_found(target.shown()))?;
                let Some(i) = fic.position(&a.federated_credentials) else {
                    return Err(not_found(fic.shown()));
                };
                a.federated_credentials.remove(i);
                Ok(())
            })?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(method_not_allowed()),
    }
}

// ---------------------------------------------------------------------------------------------
// Service principals.

enum SpRef {
    Id(String),
    AppId(String),
}

fn service_principal_json(state: &State, sp: &ServicePrincipal) -> Value {
    let application = state
        .applications
        .values()
        .find(|a| a.app_id.eq_ignore_ascii_case(&sp.app_id));
    let managed = sp.service_principal_type == "ManagedIdentity";
    let mut names = vec![sp.app_id.clone()];
    names.extend(
        sp.alternative_names
            .iter()
            .filter(|n| n.starts_with('/'))
            .cloned(),
    );
    json!({
        "id": sp.id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "alternativeNames": sp.alternative_names,
        "appDisplayName": application.map_or(sp.display_name.as_str(), |a| a.display_name.as_str()),
        "appDescription": null,
        "appId": sp.app_id,
        "appOwnerOrganizationId": if managed { Value::Null } else { json!(state.tenant_id) },
        "appRoleAssignmentRequired": false,
        "description": null,
        "displayName": sp.display_name,
        "homepage": null,
        "loginUrl": null,
        "logoutUrl": null,
        "notes": null,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": null,
        "replyUrls": [],
        "servicePrincipalNames": names,
        "servicePrincipalType": sp.service_principal_type,
        "signInAudience": application.map_or("AzureADMyOrg", |a| a.sign_in_audience.as_str()),
        "tags": [],
        "addIns": [],
        "appRoles": [],
        "info": {
            "logoUrl": null,
            "marketingUrl": null,
            "privacyStatementUrl": null,
            "supportUrl": null,
            "termsOfServiceUrl": null,
        },
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
    })
}

/// `GET /servicePrincipals` and `POST /servicePrincipals` (serviceprincipal-post-serviceprincipals.md).
async fn service_principals(app: &App, request: &Request) -> ApiResult {
    match request.method {
        Method::GET => {
            let items = app.store.read(|s| {
                s.service_principals
                    .values()
                    .map(|sp| service_principal_json(s, sp))
                    .collect()
            });
            let items = filter(
                request,
                items,
                "ServicePrincipal",
                &["id", "appId", "displayName", "servicePrincipalType"],
                &["servicePrincipalNames", "alternativeNames", "tags"],
            )?;
            list(app, request, items, "servicePrincipals").await
        }
        Method::POST => {
            const R: &str = "ServicePrincipal";
            let body = object(request)?;
            let mut app_id = None;
            let mut display_name = None;
            for (key, value) in &body {
                let lower = key.to_ascii_lowercase();
                if is_annotation(key) {
                    continue;
                }
                if !SP_KNOWN.contains(&lower.as_str()) {
                    return Err(unknown_property(key, "microsoft.graph.servicePrincipal"));
                }
                match lower.as_str() {
                    "appid" => app_id = Some(text(value, "appId", R)?),
                    "displayname" => display_name = Some(text(value, "displayName", R)?),
                    _ => {}
                }
            }
            let Some(app_id) = app_id else {
                return Err(invalid_value("appId", R));
            };
            let replication_delay = app.faults().replication_delay_ms;
            let now = now_ms();
            // Eventual consistency: an application created moments ago is not yet visible to the
            // service principal path (the error scripts retry on, fact sheet §6).
            let message = format!(
                "The appId '{app_id}' of the service principal does not reference a valid application object."
            );
            let outcome = app.store.update(|s| {
                let Some(application) = s
                    .applications
                    .values()
                    .find(|a| a.app_id.eq_ignore_ascii_case(&app_id))
                    .filter(|a| a.created_ms + replication_delay <= now)
                    .cloned()
                else {
                    return Ok(None);
                };
                if s.service_principals
                    .values()
                    .any(|sp| sp.app_id.eq_ignore_ascii_case(&app_id))
                {
                    // The body Graph answers with for a second service principal of an app
                    // (terraform-provider-azuread logs: 409 Request_MultipleObjectsWithSameKeyValue).
                    return Err(ApiError::graph(
                        StatusCode::CONFLICT,
                        "Request_MultipleObjectsWithSameKeyValue",
                        format!(
                            "The service principal cannot be created, updated, or restored because the service principal name {} is already in use.",
                            application.app_id
                        ),
                    ));
                }
                let sp = ServicePrincipal {
                    id: uuid::Uuid::new_v4().to_string(),
                    app_id: application.app_id.clone(),
                    display_name: display_name.clone().unwrap_or(application.display_name.clone()),
                    service_principal_type: "Application".into(),
                    alternative_names: Vec::new(),
                    created_ms: now,
                };
                s.service_principals.insert(sp.id.clone(), sp.clone());
                Ok::<_, ApiError>(Some(service_principal_json(s, &sp)))
            })?;
            match outcome {
                Some(body) => {
                    let location = format!(
                        "{}/v1.0/servicePrincipals/{}",
                        request.base_url,
                        body["id"].as_str().unwrap_or_default()
                    );
                    Ok(created(
                        entity(request, "servicePrincipals", body),
                        location,
                    ))
                }
                None => Err(ApiError::graph(StatusCode::BAD_REQUEST, "Request_BadRequest", message.clone())
                    .with_details(json!([{ "code": "NoBackingApplicationObject", "message": message, "target": "appId" }]))),
            }
        }
        _ => Err(method_not_allowed()),
    }
}

/// `GET|DELETE /servicePrincipals/{id}` and `/servicePrincipals(appId='…')`.
fn service_principal(app: &App, request: &Request, target: SpRef) -> ApiResult {
    let (shown, is_id) = match &target {
        SpRef::Id(v) => (v.clone(), true),
        SpRef::AppId(v) => (v.clone(), false),
    };
    if uuid::Uuid::try_parse(&shown).is_err() {
        return Err(bad_request(format!("Invalid object identifier '{shown}'.")));
    }
    let find = |s: &State| -> Option<String> {
        s.service_principals
            .iter()
            .find(|(_, sp)| {
                if is_id {
                    sp.id.eq_ignore_ascii_case(&shown)
                } else {
                    sp.app_id.eq_ignore_ascii_case(&shown)
                }
            })
            .map(|(k, _)| k.clone())
    };
    match request.method {
        Method::GET => {
            let found = app.store.read(|s| {
                find(s).and_then(|k| {
                    s.service_principals
                        .get(&k)
                        .map(|sp| service_principal_json(s, sp))
                })
            });
            match found {
                Some(body) => Ok(json_response(
                    StatusCode::OK,
                    &entity(request, "servicePrincipals", body),
                )),
                None => Err(not_found(&shown)),
            }
        }
        Method::DELETE => {
            app.store.update(|s| {
                let Some(key) = find(s) else {
                    return Err(not_found(&shown));
                };
                if s.service_principals
                    .get(&key)
                    .is_some_and(|sp| sp.service_principal_type == "ManagedIdentity")
                {
                    return Err(bad_request(
                        "The service principal of a managed identity cannot be deleted; delete the managed identity instead.",
                    ));
                }
                s.service_principals.remove(&key);
                Ok(())
            })?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(method_not_allowed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_like_odata() {
        assert_eq!(
            parse_filter("appId eq 'abc'"),
            Some(vec![Clause::Eq("appId".into(), "abc".into())])
        );
        assert_eq!(
            parse_filter("displayName eq 'it''s' and appId eq 'x'"),
            Some(vec![
                Clause::Eq("displayName".into(), "it's".into()),
                Clause::Eq("appId".into(), "x".into())
            ])
        );
        assert_eq!(
            parse_filter("servicePrincipalNames/any(c:c eq 'id')"),
            Some(vec![Clause::Any(
                "servicePrincipalNames".into(),
                "id".into()
            )])
        );
        for bad in [
            "",
            "appId",
            "appId eq",
            "appId eq 'x",
            "appId ne 'x'",
            "appId eq 'x' or a eq 'y'",
            "startswith(displayName,'a')",
            "tags/any(c:d eq 'x')",
        ] {
            assert_eq!(parse_filter(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_parse_in_all_their_forms() {
        let s = Segment::parse("applications(appId=6f1c)").err().unwrap();
        assert_eq!(s.status(), StatusCode::BAD_REQUEST, "quotes are required");
        let s = Segment::parse("applications(appId='a b')").unwrap();
        assert!(matches!(s.key, Some(Key::Named(ref p, ref v)) if p == "appid" && v == "a b"));
        let s = Segment::parse("federatedIdentityCredentials(name='x''y')").unwrap();
        assert!(matches!(s.key, Some(Key::Named(ref p, ref v)) if p == "name" && v == "x'y"));
        let id = "03ef14b0-ca33-4840-8f4f-d6e91916010e";
        let s = Segment::parse(&format!("applications({id})")).unwrap();
        assert!(matches!(s.key, Some(Key::Plain(ref v)) if v == id));
        assert!(Segment::parse("applications(").is_err());
        assert!(Segment::parse("(x)").is_err());
        assert!(Segment::parse("applications(name='a'b')").is_err());
    }

    #[test]
    fn fic_names_follow_the_considerations_doc() {
        assert!(valid_fic_name("github-main_1"));
        assert!(!valid_fic_name("ab"));
        assert!(!valid_fic_name("-abc"));
        assert!(!valid_fic_name("a b c"));
        assert!(!valid_fic_name(&"a".repeat(121)));
        assert!(valid_fic_name(&"a".repeat(120)));
    }
}
