//! identity.toml text from a [`Stack`]: pure and deterministic (the same stack gives the same
//! bytes), in the house style of `examples/*/identity.toml`. The rules that make the file short
//! are here, once, for every source an import reads:
//!
//! - a key is written only when it is not its default: `federation_name` when the live name is
//!   not the implied one, `audiences` when not `["api://AzureADTokenExchange"]`, an identity's
//!   `name` or `display_name` when it is not the table key, `location` when it is not the one
//!   that `[azure]` holds (the most common);
//! - built-in roles by name, not GUID (custom roles by GUID, their name in a comment: a GUID is
//!   exact where a name is looked up); scopes relative to the subscription where they lie in it;
//! - annotations wiform writes itself are left to it (client id, tenant id), the token lifetime
//!   becomes `token_expiration`, reserved keys become notes;
//! - each object has a comment above it saying where it came from, federations also who issues
//!   their tokens; notes close the file as comments.

use std::collections::BTreeMap;

use super::issuer;
use super::model::{
    Cluster, ClusterKind, Federation, Identity, IdentityKind, RoleGrant, ServiceAccount, Stack,
};
use crate::builtin_roles;
use crate::config::federation::{DEFAULT_AUDIENCE, implied_credential_name};
use crate::config::names;
use crate::config::validate::RESERVED_PREFIXES;
use crate::ownership;

/// Written in place of a tenant id the source did not give: not a GUID, so that `wiform
/// validate` stops the file until it is replaced.
pub const TENANT_PLACEHOLDER: &str = "REPLACE-WITH-TENANT-ID";
/// Written in place of a subscription id the source did not give.
pub const SUBSCRIPTION_PLACEHOLDER: &str = "REPLACE-WITH-SUBSCRIPTION-ID";

const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
const TOKEN_EXPIRATION_ANNOTATION: &str =
    "azure.workload.identity/service-account-token-expiration";

/// Comments are wrapped to this width.
const WIDTH: usize = 100;

/// The file, and what the person who runs the import must hear about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub text: String,
    /// Every note at the end of the file: the stack's, then the writer's own.
    pub notes: Vec<String>,
    /// The keys written as placeholders (`tenant_id`, `subscription_id`), to replace by hand.
    pub placeholders: Vec<&'static str>,
    pub counts: Counts,
}

/// How many objects of each section the file holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub clusters: usize,
    pub identities: usize,
    pub service_accounts: usize,
    pub federations: usize,
    pub role_grants: usize,
}

impl Counts {
    /// The objects an import brings under wiform (clusters are only read).
    pub fn objects(&self) -> usize {
        self.identities + self.service_accounts + self.federations + self.role_grants
    }
}

/// Writes `stack` as identity.toml.
pub fn write(stack: &Stack) -> Written {
    let mut w = Writer::default();
    for line in &stack.header {
        w.comment(line);
    }
    w.line("version = 1");
    w.line(&format!("name = {}", string(&stack.name)));
    let location = common_location(&stack.identities);
    w.azure(stack, location.as_deref());

    let mut clusters: Vec<&Cluster> = stack.clusters.iter().collect();
    clusters.sort_by_key(|c| key_order(&c.key));
    for cluster in clusters {
        w.cluster(cluster, stack.subscription_id.as_deref());
    }
    let mut identities: Vec<&Identity> = stack.identities.iter().collect();
    identities.sort_by_key(|i| key_order(&i.key));
    for identity in identities {
        w.identity(identity, location.as_deref());
    }
    let mut accounts: Vec<&ServiceAccount> = stack.service_accounts.iter().collect();
    accounts.sort_by_key(|a| (key_order(&a.cluster), a.namespace.clone(), a.name.clone()));
    for account in accounts {
        w.service_account(account);
    }
    let mut federations: Vec<&Federation> = stack.federations.iter().collect();
    federations.sort_by_key(|f| (key_order(&f.identity), f.name.clone()));
    for federation in federations {
        w.federation(federation);
    }
    let mut grants: Vec<(String, String, &RoleGrant)> = stack
        .role_grants
        .iter()
        .map(|g| {
            let (role, _) = role_text(g);
            (
                role,
                scope_text(&g.scope, stack.subscription_id.as_deref()),
                g,
            )
        })
        .collect();
    grants.sort_by_key(|(role, scope, g)| (key_order(&g.identity), role.clone(), scope.clone()));
    for (_, scope, grant) in grants {
        w.role_grant(grant, &scope);
    }

    let mut notes = stack.notes.clone();
    notes.append(&mut w.notes);
    if !notes.is_empty() {
        w.blank();
        w.comment("Notes from the import: read them before `wiform plan`.");
        for note in &notes {
            w.wrapped("- ", "  ", note);
        }
    }
    Written {
        text: w.out,
        notes,
        placeholders: w.placeholders,
        counts: Counts {
            clusters: stack.clusters.len(),
            identities: stack.identities.len(),
            service_accounts: stack.service_accounts.len(),
            federations: stack.federations.len(),
            role_grants: stack.role_grants.len(),
        },
    }
}

/// The `terraform state rm` command that makes Terraform forget `addresses`, each quoted for a
/// POSIX shell, one per line (joined by `\`) when there are several.
pub fn state_rm_command(addresses: &[String]) -> String {
    let quoted: Vec<String> = addresses.iter().map(|a| shell_quote(a)).collect();
    match quoted.as_slice() {
        [] => "terraform state rm".to_string(),
        [one] => format!("terraform state rm {one}"),
        _ => format!("terraform state rm \\\n  {}", quoted.join(" \\\n  ")),
    }
}

/// `text` as one word of a POSIX shell: single quotes, each `'` written `'\''`.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[derive(Default)]
struct Writer {
    out: String,
    notes: Vec<String>,
    placeholders: Vec<&'static str>,
}

impl Writer {
    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn blank(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn comment(&mut self, text: &str) {
        self.wrapped("", "", text);
    }

    /// `# {first}{text}`, wrapped at [`WIDTH`], continuation lines indented by `rest`.
    fn wrapped(&mut self, first: &str, rest: &str, text: &str) {
        let mut line = format!("# {first}");
        let mut empty = true;
        for word in text.split(' ') {
            // A long id is never split, and never left alone on a line after a short word.
            if !empty && line.len() + 1 + word.len() > WIDTH && line.len() >= WIDTH / 3 {
                self.line(line.trim_end());
                line = format!("# {rest}");
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        self.line(line.trim_end());
    }

    fn comments(&mut self, lines: &[String]) {
        for line in lines {
            self.comment(line);
        }
    }

    fn key_value(&mut self, key: &str, value: &str) {
        self.line(&format!("{} = {}", bare_or_quoted(key), string(value)));
    }

    fn azure(&mut self, stack: &Stack, location: Option<&str>) {
        self.blank();
        self.line("[azure]");
        self.id_or_placeholder("tenant_id", stack.tenant_id.as_deref(), TENANT_PLACEHOLDER);
        self.id_or_placeholder(
            "subscription_id",
            stack.subscription_id.as_deref(),
            SUBSCRIPTION_PLACEHOLDER,
        );
        if let Some(location) = location {
            self.key_value("location", location);
        }
    }

    /// `key = "value"`, or the placeholder and a note that says how to find the value.
    fn id_or_placeholder(&mut self, key: &'static str, value: Option<&str>, placeholder: &str) {
        if let Some(value) = value {
            self.key_value(key, value);
            return;
        }
        self.line(&format!(
            "{key} = {}   # placeholder: see the notes at the end",
            string(placeholder)
        ));
        self.placeholders.push(key);
        let query = if key == "tenant_id" { "tenantId" } else { "id" };
        self.notes.push(format!(
            "{key} was not found in what was imported: replace {placeholder} with it (`az account \
             show --query {query} -o tsv`)."
        ));
    }

    fn cluster(&mut self, cluster: &Cluster, subscription: Option<&str>) {
        self.blank();
        self.comments(&cluster.comments);
        self.line(&format!("[clusters.{}]", bare_or_quoted(&cluster.key)));
        match &cluster.kind {
            ClusterKind::Aks {
                subscription_id,
                resource_group,
                name,
                enable_workload_identity,
            } => {
                self.key_value("resource_group", resource_group);
                self.key_value("name", name);
                if let Some(id) = subscription_id
                    .as_ref()
                    .filter(|id| subscription.is_none_or(|s| !s.eq_ignore_ascii_case(id)))
                {
                    self.key_value("subscription_id", id);
                }
                if let Some(enable) = enable_workload_identity {
                    self.line(&format!("enable_workload_identity = {enable}"));
                }
            }
            ClusterKind::Issuer {
                issuer,
                kube_context,
            } => {
                self.key_value("issuer", issuer);
                self.key_value("kube_context", kube_context);
            }
        }
    }

    fn identity(&mut self, identity: &Identity, common_location: Option<&str>) {
        self.blank();
        self.comments(&identity.comments);
        self.line(&format!("[identities.{}]", bare_or_quoted(&identity.key)));
        match &identity.kind {
            IdentityKind::Managed {
                name,
                resource_group,
                location,
                tags,
            } => {
                if *name != identity.key {
                    self.key_value("name", name);
                }
                self.key_value("resource_group", resource_group);
                if let Some(location) = location.as_deref().map(normal_location)
                    && Some(location.as_str()) != common_location
                {
                    self.key_value("location", &location);
                }
                let tags = self.tags(&identity.key, tags);
                if !tags.is_empty() {
                    self.line(&format!("tags = {}", inline_table(&tags)));
                }
            }
            IdentityKind::Application { display_name } => {
                self.line("kind = \"application\"");
                if *display_name != identity.key {
                    self.key_value("display_name", display_name);
                }
            }
        }
    }

    /// The tags that identity.toml can hold; the others become notes.
    fn tags(&mut self, identity: &str, tags: &[(String, String)]) -> Vec<(String, String)> {
        let mut kept = Vec::new();
        for (key, value) in tags {
            if key.to_ascii_lowercase().starts_with("wiform") {
                self.notes.push(format!(
                    "identity {identity}: tag {key:?} = {value:?} is a wiform marker (another \
                     stack's?): not written; wiform writes its own markers."
                ));
            } else if let Err(reason) = names::tag(key, value) {
                self.notes.push(format!(
                    "identity {identity}: tag {key:?} is not valid ({reason}): not written."
                ));
            } else {
                kept.push((key.clone(), value.clone()));
            }
        }
        kept
    }

    fn service_account(&mut self, account: &ServiceAccount) {
        self.blank();
        self.comments(&account.comments);
        self.line("[[service_accounts]]");
        self.key_value("cluster", &account.cluster);
        self.key_value("namespace", &account.namespace);
        self.key_value("name", &account.name);
        self.key_value("identity", &account.identity);
        if account.credential_name
            != implied_credential_name(&account.cluster, &account.namespace, &account.name)
        {
            self.key_value("federation_name", &account.credential_name);
        }
        self.audiences(&account.audiences);
        if let Some(create) = account.create_namespace {
            self.line(&format!("create_namespace = {create}"));
        }
        let what = format!(
            "service account {}/{} on cluster {}",
            account.namespace, account.name, account.cluster
        );
        let mut annotations = Vec::new();
        for (key, value) in &account.annotations {
            match key.as_str() {
                CLIENT_ID_ANNOTATION | TENANT_ID_ANNOTATION => {}
                TOKEN_EXPIRATION_ANNOTATION => match value.trim().parse::<i64>() {
                    Ok(seconds) if (3600..=86400).contains(&seconds) => {
                        self.line(&format!("token_expiration = {seconds}"));
                    }
                    _ => self.notes.push(format!(
                        "{what}: annotation {key} = {value:?} is not a lifetime wiform accepts \
                         (3600 to 86400 seconds): not written; wiform leaves it on the account \
                         unmanaged."
                    )),
                },
                _ => {
                    if let Some(key) = self.kube_key(&what, "annotation", key, None) {
                        annotations.push((key, value.clone()));
                    }
                }
            }
        }
        let mut labels = Vec::new();
        for (key, value) in &account.labels {
            if let Some(key) = self.kube_key(&what, "label", key, Some(value)) {
                labels.push((key, value.clone()));
            }
        }
        if !annotations.is_empty() {
            self.line(&format!("annotations = {}", inline_table(&annotations)));
        }
        if !labels.is_empty() {
            self.line(&format!("labels = {}", inline_table(&labels)));
        }
    }

    /// `key` when identity.toml can hold it; otherwise a note saying why not.
    fn kube_key(
        &mut self,
        what: &str,
        kind: &str,
        key: &str,
        label_value: Option<&str>,
    ) -> Option<String> {
        let reason = if key == "azure.workload.identity/use" {
            Some("it belongs on the pods that run as the account, not on the account".to_string())
        } else if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| key.starts_with(**p)) {
            Some(format!("wiform manages the {prefix} keys"))
        } else if key == ownership::MANAGED_BY_LABEL && label_value.is_some() {
            Some("wiform writes this label itself".to_string())
        } else if let Err(reason) = names::qualified_name(key) {
            Some(format!("its key is not valid: {reason}"))
        } else if let Some(Err(reason)) = label_value.map(names::label_value) {
            Some(format!("its value is not valid: {reason}"))
        } else {
            None
        };
        match reason {
            None => Some(key.to_string()),
            Some(reason) => {
                self.notes.push(format!(
                    "{what}: {kind} {key} is not written ({reason}); it stays on the account, \
                     unmanaged."
                ));
                None
            }
        }
    }

    fn audiences(&mut self, audiences: &[String]) {
        if audiences != [DEFAULT_AUDIENCE] {
            let list: Vec<String> = audiences.iter().map(|a| string(a)).collect();
            self.line(&format!("audiences = [{}]", list.join(", ")));
        }
    }

    fn federation(&mut self, federation: &Federation) {
        self.blank();
        if let Some(about) = issuer::describe(&federation.issuer, &federation.subject) {
            self.comment(&about);
        }
        self.comments(&federation.comments);
        self.line("[[federations]]");
        self.key_value("identity", &federation.identity);
        self.key_value("name", &federation.name);
        self.key_value("issuer", &federation.issuer);
        self.key_value("subject", &federation.subject);
        self.audiences(&federation.audiences);
    }

    fn role_grant(&mut self, grant: &RoleGrant, scope: &str) {
        self.blank();
        self.comments(&grant.comments);
        self.line("[[role_grants]]");
        self.key_value("identity", &grant.identity);
        let (role, custom_name) = role_text(grant);
        match custom_name {
            Some(name) => self.line(&format!(
                "role = {}   # custom role {}",
                string(&role),
                string(&name)
            )),
            None => self.key_value("role", &role),
        }
        self.key_value("scope", scope);
        if let Some(condition) = &grant.condition {
            self.key_value("condition", condition);
        }
    }
}

/// How a grant's role is written, and the name of a custom role written by GUID: built-in
/// roles by their name (from the GUID when there is one), custom roles by GUID, a name alone as
/// it is.
pub fn role_text(grant: &RoleGrant) -> (String, Option<String>) {
    let guid = grant
        .role_definition_id
        .as_deref()
        .map(|id| id.trim_end_matches('/').rsplit('/').next().unwrap_or(id))
        .filter(|guid| names::is_guid(guid));
    if let Some(role) = guid.and_then(builtin_roles::by_id) {
        return (role.name.to_string(), None);
    }
    if let Some(role) = grant.role_name.as_deref().and_then(builtin_roles::by_name) {
        return (role.name.to_string(), None);
    }
    match (guid, &grant.role_name) {
        (Some(guid), name) => (guid.to_ascii_lowercase(), name.clone()),
        (None, Some(name)) => (name.clone(), None),
        (None, None) => (grant.role_definition_id.clone().unwrap_or_default(), None),
    }
}

/// A scope relative to `subscription` where it lies inside it (not the subscription itself,
/// which is clearer written in full), otherwise as it is.
pub fn scope_text(scope: &str, subscription: Option<&str>) -> String {
    let Some(subscription) = subscription else {
        return scope.to_string();
    };
    let prefix = format!("/subscriptions/{subscription}/");
    match scope.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(&prefix) && scope.len() > prefix.len() => {
            scope[prefix.len()..].to_string()
        }
        _ => scope.to_string(),
    }
}

/// Keys in name order, whatever their case (and in byte order where only the case differs).
fn key_order(key: &str) -> (String, String) {
    (key.to_ascii_lowercase(), key.to_string())
}

/// The most common location of the managed identities (ties: the first in name order): what
/// `[azure].location` holds.
fn common_location(identities: &[Identity]) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for identity in identities {
        if let IdentityKind::Managed {
            location: Some(location),
            ..
        } = &identity.kind
        {
            *counts.entry(normal_location(location)).or_default() += 1;
        }
    }
    let most = counts.values().copied().max()?;
    counts.into_iter().find(|(_, n)| *n == most).map(|(l, _)| l)
}

/// `West Europe` → `westeurope`, as ARM names regions.
fn normal_location(location: &str) -> String {
    if names::location(location).is_ok() {
        location.to_string()
    } else {
        names::location_hint(location)
    }
}

/// A TOML string.
fn string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn bare_or_quoted(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        key.to_string()
    } else {
        string(key)
    }
}

fn inline_table(entries: &[(String, String)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{} = {}", bare_or_quoted(k), string(v)))
        .collect();
    format!("{{ {} }}", items.join(", "))
}

#[cfg(test)]
mod tests;
