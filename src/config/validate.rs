//! Checks that need the whole config: references, names, identifiers, limits, duplicates and
//! risky grants. Each check adds to the list; none stops the others.

use std::collections::HashMap;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::federation::{IssuerSource, wanted_credentials};
use super::model::*;
use super::names::{self, ScopeLevel};
use super::read::Incomplete;
use super::suggest;
use crate::builtin_roles;

/// Azure's limit of federated identity credentials on one identity or application.
pub const MAX_FEDERATED_CREDENTIALS: usize = 20;

/// Annotation and label prefixes wiform writes itself.
pub const RESERVED_PREFIXES: &[&str] = &["azure.workload.identity/", "wiform.io/"];

pub fn validate(config: &Config, incomplete: &Incomplete, d: &mut Diagnostics) {
    let v = Validator { config, incomplete };
    v.root(d);
    v.azure(d);
    v.resource_groups(d);
    v.clusters(d);
    v.identities(d);
    v.service_accounts(d);
    v.federations(d);
    v.credential_limits(d);
    v.role_grants(d);
}

struct Validator<'a> {
    config: &'a Config,
    incomplete: &'a Incomplete,
}

fn invalid(code: &'static str, what: &str, value: &Sp<String>, reason: &str) -> Diagnostic {
    Diagnostic::error(
        code,
        format!("{what} \"{}\" is not valid: {reason}", value.value),
    )
    .at(value.span.clone(), "invalid")
}

/// Keys of `[clusters]`, `[identities]`: used in addresses and credential names.
fn config_key(what: &str, key: &Sp<String>, d: &mut Diagnostics) {
    let ok = key.len() <= 63
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        d.push(
            invalid(
                "config::invalid-name",
                what,
                key,
                "names are 1–63 letters, digits, '-' and '_', starting with a letter or digit",
            )
            .help("rename the table key, e.g. orders-api"),
        );
    }
}

fn check_location(location: &Sp<String>, d: &mut Diagnostics) {
    if let Err(reason) = names::location(location) {
        d.push(
            invalid("config::invalid-location", "location", location, &reason).help(format!(
                "did you mean \"{}\"?",
                names::location_hint(location)
            )),
        );
    }
}

fn check_guid(what: &str, value: &Sp<String>, help: &str, d: &mut Diagnostics) {
    if !value.is_missing() && !names::is_guid(value) {
        d.push(
            invalid(
                "config::invalid-guid",
                what,
                value,
                "expected a GUID like 00000000-0000-0000-0000-000000000000",
            )
            .help(help.to_string()),
        );
    }
}

fn check_https(what: &str, value: &Sp<String>, d: &mut Diagnostics) {
    if value.is_missing() {
        return;
    }
    if let Err(reason) = names::https_url(value) {
        d.push(invalid("config::invalid-url", what, value, &reason).help(
            "write the full https URL, exactly as the issuer puts it in the token's `iss` claim",
        ));
    }
}

fn check_tags(tags: &StringMap, d: &mut Diagnostics) {
    for (key, value) in tags.iter() {
        if let Err(reason) = names::tag(key, value) {
            d.push(
                invalid("config::invalid-tag", "tag", key, &reason)
                    .help("Azure tag names have at most 512 characters and none of < > % & \\ ? /"),
            );
        }
        if key.to_ascii_lowercase().starts_with("wiform") {
            d.push(
                Diagnostic::error("config::reserved", format!("tag \"{}\" is reserved", key.value))
                    .at(key.span.clone(), "reserved")
                    .help("tags starting with `wiform` hold wiform's ownership markers; choose another name"),
            );
        }
    }
}

fn check_kubernetes_metadata(kind: &str, map: &StringMap, d: &mut Diagnostics) {
    for (key, value) in map.iter() {
        if let Err(reason) = names::qualified_name(key) {
            d.push(
                invalid("config::invalid-name", &format!("{kind} key"), key, &reason)
                    .help("Kubernetes keys are an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' and '.'"),
            );
        } else if key.value == "azure.workload.identity/use" {
            d.push(
                Diagnostic::error("config::reserved", format!("`azure.workload.identity/use` is a pod label, not a service account {kind}"))
                    .at(key.span.clone(), "belongs on the pods")
                    .help("the workload identity webhook only looks at pods: add the label azure.workload.identity/use: \"true\" to the pod template of each workload that runs as this service account"),
            );
        } else if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| key.starts_with(**p)) {
            d.push(
                Diagnostic::error("config::reserved", format!("{kind} \"{}\" is managed by wiform", key.value))
                    .at(key.span.clone(), "reserved")
                    .help(format!(
                        "wiform writes the `{prefix}` keys itself (client id, tenant id: from the identity; token lifetime: `token_expiration`); remove this one"
                    )),
            );
        }
        if kind == "label"
            && let Err(reason) = names::label_value(value)
        {
            d.push(invalid(
                "config::invalid-name",
                "label value",
                value,
                &reason,
            ));
        }
    }
}

fn undefined(what: &str, reference: &Sp<String>, known: Vec<&str>, table: &str) -> Diagnostic {
    let help = match (
        suggest::closest(reference, known.iter().copied()),
        known.is_empty(),
    ) {
        (Some(close), _) => format!(
            "did you mean \"{close}\"? Defined: {}",
            suggest::list(&known)
        ),
        (None, true) => format!(
            "nothing is defined under [{table}]; add a [{table}.{}] table",
            reference.value
        ),
        (None, false) => format!("defined in [{table}]: {}", suggest::list(&known)),
    };
    Diagnostic::error(
        "config::undefined-reference",
        format!("{what} \"{}\" is not defined", reference.value),
    )
    .at(
        reference.span.clone(),
        format!("no [{table}.{}]", reference.value),
    )
    .help(help)
}

impl Validator<'_> {
    fn root(&self, d: &mut Diagnostics) {
        let c = self.config;
        if !c.version.is_missing() && c.version.value != 1 {
            d.push(
                Diagnostic::error(
                    "config::version",
                    format!("unsupported version {}", c.version.value),
                )
                .at(c.version.span.clone(), "this wiform reads version 1")
                .help("set version = 1"),
            );
        }
        if let Some(name) = c.name.present()
            && let Err(reason) = names::dns1123_label(name)
        {
            d.push(
                invalid("config::invalid-name", "stack name", &c.name, &reason)
                    .help("the stack name is written into Kubernetes labels and Azure tags: use lowercase letters, digits and '-', e.g. name = \"orders-platform\""),
            );
        }
    }

    fn azure(&self, d: &mut Diagnostics) {
        let a = &self.config.azure;
        check_guid(
            "tenant_id",
            &a.tenant_id,
            "find it with: az account show --query tenantId -o tsv",
            d,
        );
        check_guid(
            "subscription_id",
            &a.subscription_id,
            "find it with: az account show --query id -o tsv",
            d,
        );
        if let Some(location) = &a.location {
            check_location(location, d);
        }
        if let Some(Sp {
            value: Cloud::Custom(custom),
            ..
        }) = &a.cloud
        {
            check_https("cloud.arm", &custom.arm, d);
            check_https("cloud.graph", &custom.graph, d);
            check_https("cloud.authority", &custom.authority, d);
        }
    }

    /// The region for something created in Azure: its own, else `[azure].location`.
    fn need_location(
        &self,
        own: Option<&Sp<String>>,
        header: &Sp<String>,
        what: &str,
        d: &mut Diagnostics,
    ) {
        match own {
            Some(location) => check_location(location, d),
            None if self.config.azure.location.is_none() && !self.incomplete.azure => d.push(
                Diagnostic::error(
                    "config::missing-key",
                    format!("{what} \"{}\" has no location", header.value),
                )
                .at(header.span.clone(), "no `location` here or in [azure]")
                .help("add location = \"westeurope\" to this table, or a default in [azure]"),
            ),
            None => {}
        }
    }

    fn resource_groups(&self, d: &mut Diagnostics) {
        for (name, rg) in self.config.resource_groups.iter() {
            if let Err(reason) = names::resource_group_name(name) {
                d.push(invalid(
                    "config::invalid-name",
                    "resource group name",
                    name,
                    &reason,
                ));
            }
            self.need_location(rg.location.as_ref(), name, "resource group", d);
            check_tags(&rg.tags, d);
        }
    }

    fn clusters(&self, d: &mut Diagnostics) {
        let mut seen_aks: HashMap<(String, String, String), &Sp<String>> = HashMap::new();
        for (key, cluster) in self.config.clusters.iter() {
            config_key("cluster name", key, d);
            let used_by: Vec<&Sp<String>> = self
                .config
                .service_accounts
                .iter()
                .filter(|sa| sa.cluster.value == key.value)
                .map(|sa| &sa.cluster)
                .collect();
            match (&cluster.resource_group, &cluster.name, &cluster.issuer) {
                (Some(_), Some(_), Some(issuer)) => d.push(
                    Diagnostic::error("config::conflicting-keys", format!("cluster \"{}\" is both an AKS cluster and has an explicit issuer", key.value))
                        .at(issuer.span.clone(), "remove this")
                        .help("for AKS clusters wiform reads the issuer from ARM; keep `issuer` only for clusters outside AKS"),
                ),
                (Some(_), None, _) | (None, Some(_), _) => {
                    let (have, missing) = if cluster.name.is_some() { ("name", "resource_group") } else { ("resource_group", "name") };
                    d.push(
                        Diagnostic::error("config::missing-key", format!("cluster \"{}\" has `{have}` but no `{missing}`", key.value))
                            .at(key.span.clone(), format!("`{missing}` is required with `{have}`"))
                            .help("an AKS cluster is named by resource_group + name, e.g. resource_group = \"rg-aks\" and name = \"aks-prod\""),
                    )
                }
                (None, None, None) => {
                    let mut diagnostic = Diagnostic::error(
                        "config::no-issuer",
                        format!("cluster \"{}\" has no OIDC issuer", key.value),
                    )
                    .at(key.span.clone(), "neither AKS (resource_group + name) nor `issuer`")
                    .help("federated credentials need the cluster's issuer: name the AKS cluster (resource_group + name), or set issuer = \"https://…\" as printed by `kubectl get --raw /.well-known/openid-configuration`");
                    for sa in &used_by {
                        diagnostic = diagnostic.also(sa.span.clone(), "a service account federated on this cluster");
                    }
                    d.push(diagnostic);
                }
                _ => {}
            }
            if let (Some(rg), Some(name)) = (&cluster.resource_group, &cluster.name) {
                if let Err(reason) = names::resource_group_name(rg) {
                    d.push(invalid(
                        "config::invalid-name",
                        "resource group name",
                        rg,
                        &reason,
                    ));
                }
                if let Err(reason) = names::aks_cluster_name(name) {
                    d.push(invalid(
                        "config::invalid-name",
                        "AKS cluster name",
                        name,
                        &reason,
                    ));
                }
                let sub = cluster
                    .subscription_id
                    .as_ref()
                    .map_or(&self.config.azure.subscription_id.value, |s| &s.value);
                let id = (sub.to_lowercase(), rg.to_lowercase(), name.to_lowercase());
                if let Some(first) = seen_aks.insert(id, key) {
                    d.push(
                        Diagnostic::error(
                            "config::duplicate",
                            format!(
                                "clusters \"{}\" and \"{}\" are the same AKS cluster",
                                first.value, key.value
                            ),
                        )
                        .at(key.span.clone(), "second definition")
                        .also(first.span.clone(), "first definition")
                        .help("keep one table per cluster"),
                    );
                }
            } else {
                if let Some(flag) = &cluster.enable_workload_identity {
                    d.push(
                        Diagnostic::error(
                            "config::not-applicable",
                            "`enable_workload_identity` applies only to AKS clusters",
                        )
                        .at(flag.span.clone(), "not an AKS cluster")
                        .help(
                            "wiform can switch workload identity on for AKS only; remove this key",
                        ),
                    );
                }
                if let Some(sub) = &cluster.subscription_id {
                    d.push(
                        Diagnostic::error(
                            "config::not-applicable",
                            "`subscription_id` applies only to AKS clusters",
                        )
                        .at(sub.span.clone(), "not an AKS cluster")
                        .help("remove it, or name the AKS cluster with resource_group + name"),
                    );
                }
                if cluster.kube_context.is_none() && cluster.issuer.is_some() {
                    d.push(
                        Diagnostic::error("config::missing-key", format!("cluster \"{}\" has no `kube_context`", key.value))
                            .at(key.span.clone(), "wiform cannot reach this cluster")
                            .help("outside AKS, wiform writes service accounts through a kubeconfig context: add kube_context = \"…\" (see `kubectl config get-contexts`)"),
                    );
                }
            }
            if let Some(sub) = &cluster.subscription_id {
                check_guid(
                    "subscription_id",
                    sub,
                    "the AKS cluster's subscription, a GUID",
                    d,
                );
            }
            if let Some(issuer) = &cluster.issuer {
                check_https("issuer", issuer, d);
            }
        }
    }

    fn identities(&self, d: &mut Diagnostics) {
        let mut managed: HashMap<(String, String), &Sp<String>> = HashMap::new();
        let mut applications: HashMap<String, &Sp<String>> = HashMap::new();
        for (key, identity) in self.config.identities.iter() {
            config_key("identity name", key, d);
            let kind = identity
                .kind
                .as_ref()
                .map_or(IdentityKind::Managed, |k| k.value);
            let kind_name = if kind == IdentityKind::Managed {
                "managed"
            } else {
                "application"
            };
            let not_for =
                |value: Option<&Sp<String>>, field: &str, d: &mut Diagnostics, hint: &str| {
                    if let Some(value) = value {
                        d.push(
                            Diagnostic::error(
                                "config::not-applicable",
                                format!("`{field}` does not apply to {kind_name} identities"),
                            )
                            .at(value.span.clone(), "not used")
                            .help(hint.to_string()),
                        );
                    }
                };
            match kind {
                IdentityKind::Managed => {
                    not_for(
                        identity.display_name.as_ref(),
                        "display_name",
                        d,
                        "managed identities are named by `name` (default: the table key); remove display_name, or set kind = \"application\"",
                    );
                    let name = identity.name.as_ref().unwrap_or(key);
                    if let Err(reason) = names::managed_identity_name(name) {
                        let mut diagnostic = invalid(
                            "config::invalid-name",
                            "managed identity name",
                            name,
                            &reason,
                        );
                        if identity.name.is_none() {
                            diagnostic = diagnostic.help("the table key is the Azure name unless `name` is set: add name = \"…\"");
                        }
                        d.push(diagnostic);
                    }
                    match &identity.resource_group {
                        Some(rg) => {
                            if let Err(reason) = names::resource_group_name(rg) {
                                d.push(invalid("config::invalid-name", "resource group name", rg, &reason));
                            }
                            let id = (rg.to_lowercase(), name.to_lowercase());
                            if let Some(first) = managed.insert(id, key) {
                                d.push(
                                    Diagnostic::error("config::duplicate", format!("identities \"{}\" and \"{}\" are the same managed identity {}/{}", first.value, key.value, rg.value, name.value))
                                        .at(key.span.clone(), "second definition")
                                        .also(first.span.clone(), "first definition")
                                        .help("Azure names are case-insensitive; give each identity its own name"),
                                );
                            }
                        }
                        None => d.push(
                            Diagnostic::error("config::missing-key", format!("managed identity \"{}\" has no `resource_group`", key.value))
                                .at(key.span.clone(), "`resource_group` is required for managed identities")
                                .help("add resource_group = \"rg-identities\", or set kind = \"application\" for an app registration"),
                        ),
                    }
                    self.need_location(identity.location.as_ref(), key, "managed identity", d);
                    check_tags(&identity.tags, d);
                }
                IdentityKind::Application => {
                    let hint = "app registrations live in Entra ID, not in a resource group: remove it, or set kind = \"managed\"";
                    not_for(identity.resource_group.as_ref(), "resource_group", d, hint);
                    not_for(identity.location.as_ref(), "location", d, hint);
                    not_for(
                        identity.name.as_ref(),
                        "name",
                        d,
                        "app registrations are named by `display_name` (default: the table key)",
                    );
                    if let Some((first, _)) = identity.tags.0.first() {
                        d.push(
                            Diagnostic::error(
                                "config::not-applicable",
                                "`tags` does not apply to application identities",
                            )
                            .at(first.span.clone(), "not used")
                            .help(hint),
                        );
                    }
                    let display = identity.display_name.as_ref().unwrap_or(key);
                    if display.trim().is_empty() || display.chars().count() > 256 {
                        d.push(invalid(
                            "config::invalid-name",
                            "display name",
                            display,
                            "it must have 1 to 256 characters",
                        ));
                    }
                    // Graph's `displayName eq` filter ignores case: so do duplicates.
                    if let Some(first) = applications.insert(display.value.to_lowercase(), key) {
                        d.push(
                            Diagnostic::error("config::duplicate", format!("identities \"{}\" and \"{}\" have the same display name \"{}\"", first.value, key.value, display.value))
                                .at(key.span.clone(), "second definition")
                                .also(first.span.clone(), "first definition")
                                .help("wiform finds app registrations by display name; make each one unique"),
                        );
                    }
                }
            }
        }
    }

    fn identity_defined(&self, reference: &Sp<String>, d: &mut Diagnostics) -> bool {
        if self.config.identities.get(reference).is_some() {
            return true;
        }
        if reference.is_missing() {
            return false;
        }
        if !self.incomplete.identities.contains(&reference.value) {
            let known: Vec<&str> = self
                .config
                .identities
                .keys()
                .chain(self.incomplete.identities.iter().map(String::as_str))
                .collect();
            d.push(undefined("identity", reference, known, "identities"));
        }
        false
    }

    fn service_accounts(&self, d: &mut Diagnostics) {
        let mut seen: HashMap<(&str, &str, &str), &ServiceAccount> = HashMap::new();
        for sa in &self.config.service_accounts {
            if !sa.cluster.is_missing()
                && self.config.clusters.get(&sa.cluster).is_none()
                && !self.incomplete.clusters.contains(&sa.cluster.value)
            {
                let known: Vec<&str> = self
                    .config
                    .clusters
                    .keys()
                    .chain(self.incomplete.clusters.iter().map(String::as_str))
                    .collect();
                d.push(undefined("cluster", &sa.cluster, known, "clusters"));
            }
            self.identity_defined(&sa.identity, d);
            if let Some(namespace) = sa.namespace.present()
                && let Err(reason) = names::dns1123_label(namespace)
            {
                d.push(invalid("config::invalid-name", "namespace", &sa.namespace, &reason).help("Kubernetes namespace names are DNS-1123 labels: lowercase letters, digits and '-', at most 63 characters"));
            }
            if let Some(name) = sa.name.present()
                && let Err(reason) = names::dns1123_subdomain(name)
            {
                d.push(invalid("config::invalid-name", "service account name", &sa.name, &reason).help("Kubernetes service account names are DNS-1123 subdomains: lowercase letters, digits, '-' and '.', at most 253 characters"));
            }
            let complete = ![&sa.cluster, &sa.namespace, &sa.name]
                .iter()
                .any(|v| v.is_missing());
            if complete && let Some(first) = seen.insert((&sa.cluster, &sa.namespace, &sa.name), sa)
            {
                d.push(
                    Diagnostic::error(
                        "config::duplicate",
                        format!(
                            "service account {}/{} on cluster \"{}\" is declared twice",
                            sa.namespace.value, sa.name.value, sa.cluster.value
                        ),
                    )
                    .at(sa.name.span.clone(), "second declaration")
                    .also(first.name.span.clone(), "first declaration")
                    .help("a service account has one identity: keep one entry"),
                );
            }
            check_kubernetes_metadata("annotation", &sa.annotations, d);
            check_kubernetes_metadata("label", &sa.labels, d);
            if let Some(expiration) = &sa.token_expiration
                && !(3600..=86400).contains(&expiration.value)
            {
                d.push(
                    Diagnostic::error(
                        "config::out-of-range",
                        format!("token_expiration {} is out of range", expiration.value),
                    )
                    .at(expiration.span.clone(), "3600 to 86400 seconds")
                    .help(
                        "the workload identity webhook accepts 3600 (1 h) to 86400 (24 h) seconds",
                    ),
                );
            }
            if let Some(name) = &sa.federation_name
                && let Err(reason) = names::federated_credential_name(name)
            {
                d.push(invalid(
                    "config::invalid-name",
                    "federated credential name",
                    name,
                    &reason,
                ));
            }
            self.check_audiences(sa.audiences.as_ref(), d);
        }
    }

    fn check_audiences(&self, audiences: Option<&Sp<Vec<Sp<String>>>>, d: &mut Diagnostics) {
        let Some(list) = audiences else { return };
        if list.len() != 1 {
            d.push(
                Diagnostic::error("config::audiences", format!("a federated credential takes exactly one audience, not {}", list.len()))
                    .at(list.span.clone(), "exactly one audience")
                    .help("Azure accepts one audience per credential; the usual one is \"api://AzureADTokenExchange\" (the default: remove the key)"),
            );
        }
        for audience in list.iter() {
            if audience.is_empty() || audience.len() > 600 {
                d.push(invalid(
                    "config::audiences",
                    "audience",
                    audience,
                    "it must have 1 to 600 characters",
                ));
            }
        }
    }

    fn federations(&self, d: &mut Diagnostics) {
        for f in &self.config.federations {
            self.identity_defined(&f.identity, d);
            if let Some(name) = f.name.present()
                && let Err(reason) = names::federated_credential_name(name)
            {
                d.push(invalid(
                    "config::invalid-name",
                    "federated credential name",
                    &f.name,
                    &reason,
                ));
            }
            check_https("issuer", &f.issuer, d);
            if let Some(subject) = f.subject.present() {
                let problem = if subject.is_empty() || subject.len() > 600 {
                    Some((
                        "it must have 1 to 600 characters",
                        "write the subject exactly as the token's `sub` claim",
                    ))
                } else if subject.contains('*') {
                    Some((
                        "wildcards are not supported",
                        "Azure matches the subject exactly (case-sensitive); add one federation per subject",
                    ))
                } else {
                    None
                };
                if let Some((reason, help)) = problem {
                    d.push(
                        invalid("config::invalid-subject", "subject", subject, reason).help(help),
                    );
                }
            }
            self.check_audiences(f.audiences.as_ref(), d);
        }
    }

    /// Per identity: at most 20 credentials, unique names, unique (issuer, subject).
    fn credential_limits(&self, d: &mut Diagnostics) {
        let wanted = wanted_credentials(self.config);
        let mut by_identity: Vec<(&str, Vec<&super::federation::WantedCredential>)> = Vec::new();
        for credential in &wanted {
            match by_identity
                .iter_mut()
                .find(|(id, _)| *id == credential.identity)
            {
                Some((_, list)) => list.push(credential),
                None => by_identity.push((&credential.identity, vec![credential])),
            }
        }
        for (identity, list) in by_identity {
            let mut names: HashMap<&str, &super::federation::WantedCredential> = HashMap::new();
            let mut pairs: HashMap<(&IssuerSource, &str), &super::federation::WantedCredential> =
                HashMap::new();
            for c in &list {
                if let Some(first) = names.insert(&c.name, c) {
                    d.push(
                        Diagnostic::error("config::duplicate", format!("identity \"{identity}\" has two federated credentials named \"{}\"", c.name))
                            .at(c.origin.clone(), "second credential")
                            .also(first.origin.clone(), "first credential")
                            .help("credential names are unique per identity: rename one (`name`, or `federation_name` on a service account)"),
                    );
                }
                if let Some(first) = pairs.insert((&c.issuer, &c.subject), c) {
                    let issuer = match &c.issuer {
                        IssuerSource::Url(url) => url.clone(),
                        IssuerSource::Cluster(cluster) => {
                            format!("the issuer of cluster \"{cluster}\"")
                        }
                    };
                    d.push(
                        Diagnostic::error("config::duplicate-federation", format!("identity \"{identity}\" trusts subject \"{}\" from {issuer} twice", c.subject))
                            .at(c.origin.clone(), "same issuer and subject")
                            .also(first.origin.clone(), "first credential")
                            .help("Azure allows one credential per (issuer, subject) on an identity: remove one"),
                    );
                }
            }
            if list.len() > MAX_FEDERATED_CREDENTIALS {
                let Some((key, _)) = self
                    .config
                    .identities
                    .iter()
                    .find(|(k, _)| k.value == identity)
                else {
                    continue;
                };
                let implied = list.iter().filter(|c| c.service_account.is_some()).count();
                let mut diagnostic = Diagnostic::error(
                    "config::too-many-federated-credentials",
                    format!(
                        "identity \"{identity}\" needs {} federated credentials ({} from service accounts, {} from federations); Azure allows {MAX_FEDERATED_CREDENTIALS}",
                        list.len(),
                        implied,
                        list.len() - implied
                    ),
                )
                .at(key.span.clone(), format!("{} credentials", list.len()))
                .help("Azure refuses the 21st credential: split these workloads across more identities");
                if let Some(first_over) = list.get(MAX_FEDERATED_CREDENTIALS) {
                    diagnostic = diagnostic.also(first_over.origin.clone(), "credential #21");
                }
                d.push(diagnostic);
            }
        }
    }

    fn role_grants(&self, d: &mut Diagnostics) {
        let mut seen: HashMap<(String, String, String), &RoleGrant> = HashMap::new();
        for grant in &self.config.role_grants {
            self.identity_defined(&grant.identity, d);
            let role = self.check_role(&grant.role, d);
            let scope = self.check_scope(&grant.scope, d);
            if let (Some(role), Some((scope, level))) = (role, scope) {
                let broad = builtin_roles::BROAD_ROLES
                    .iter()
                    .find(|b| b.eq_ignore_ascii_case(&role));
                if let (Some(broad), ScopeLevel::Subscription | ScopeLevel::ManagementGroup) =
                    (broad, &level)
                {
                    let at = if level == ScopeLevel::Subscription {
                        "subscription"
                    } else {
                        "management group"
                    };
                    d.push(
                        Diagnostic::warning("config::broad-role", format!("\"{broad}\" at {at} scope gives \"{}\" control over everything in it", grant.identity.value))
                            .at(grant.role.span.clone(), format!("{broad} on a whole {at}"))
                            .also(grant.scope.span.clone(), format!("{at} scope"))
                            .help(narrower(broad)),
                    );
                }
                let key = (
                    grant.identity.value.clone(),
                    role.to_lowercase(),
                    scope.to_lowercase(),
                );
                if let Some(first) = seen.insert(key, grant) {
                    d.push(
                        Diagnostic::error(
                            "config::duplicate",
                            format!(
                                "role \"{}\" is granted to \"{}\" on this scope twice",
                                grant.role.value, grant.identity.value
                            ),
                        )
                        .at(grant.role.span.clone(), "second grant")
                        .also(first.role.span.clone(), "first grant")
                        .help("remove one of the two [[role_grants]] entries"),
                    );
                }
            }
            if let Some(condition) = &grant.condition
                && condition.trim().is_empty()
            {
                d.push(
                    invalid(
                        "config::invalid-value",
                        "condition",
                        condition,
                        "it is empty",
                    )
                    .help("remove the key, or write an ABAC condition"),
                );
            }
        }
    }

    /// The role as a comparable key: the built-in name or GUID when known.
    fn check_role(&self, role: &Sp<String>, d: &mut Diagnostics) -> Option<String> {
        role.present()?;
        let text = role.trim();
        let guid = text.rsplit('/').next().unwrap_or(text);
        let looks_like_id = text.contains("/providers/Microsoft.Authorization/roleDefinitions/")
            || (guid.len() >= 30
                && guid.chars().filter(|c| *c == '-').count() >= 3
                && guid.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        if looks_like_id {
            if !names::is_guid(guid) {
                d.push(invalid("config::invalid-guid", "role definition id", role, "the role definition GUID is malformed").help("use a role name such as \"Storage Blob Data Reader\", or its GUID from `az role definition list --name \"…\" --query [].name -o tsv`"));
                return None;
            }
            return Some(
                builtin_roles::by_id(guid)
                    .map_or_else(|| guid.to_lowercase(), |r| r.name.to_string()),
            );
        }
        if text.is_empty() {
            d.push(invalid(
                "config::invalid-value",
                "role",
                role,
                "it is empty",
            ));
            return None;
        }
        if let Some(builtin) = builtin_roles::by_name(text) {
            return Some(builtin.name.to_string());
        }
        if let Some(close) =
            suggest::closest(text, builtin_roles::BUILTIN_ROLES.iter().map(|r| r.name))
        {
            d.push(
                Diagnostic::warning(
                    "config::unknown-role",
                    format!("\"{text}\" is not a built-in role"),
                )
                .at(role.span.clone(), "not built-in")
                .help(format!(
                    "did you mean \"{close}\"? A custom role of this name is looked up at plan time"
                )),
            );
        }
        Some(text.to_string())
    }

    /// The scope as a full ARM id, with its level.
    fn check_scope(&self, scope: &Sp<String>, d: &mut Diagnostics) -> Option<(String, ScopeLevel)> {
        scope.present()?;
        if scope.trim().is_empty() {
            d.push(invalid("config::invalid-scope", "scope", scope, "it is empty").help("write a full ARM id, or one relative to the subscription (resourceGroups/<rg>/…)"));
            return None;
        }
        let text = scope.trim_end_matches('/');
        let full = if text.starts_with('/') {
            text.to_string()
        } else if text.to_ascii_lowercase().starts_with("subscriptions/")
            || text.to_ascii_lowercase().starts_with("providers/")
        {
            d.push(
                invalid(
                    "config::invalid-scope",
                    "scope",
                    scope,
                    "a full ARM id starts with '/'",
                )
                .help(format!("write \"/{text}\"")),
            );
            return None;
        } else if self.config.azure.subscription_id.is_missing() {
            return None;
        } else {
            format!(
                "/subscriptions/{}/{}",
                self.config.azure.subscription_id.value, text
            )
        };
        match names::arm_scope(&full) {
            Ok(level) if scope.ends_with('/') => {
                d.push(
                    invalid("config::invalid-scope", "scope", scope, "it ends with '/'")
                        .help(format!("write \"{text}\"")),
                );
                Some((full, level))
            }
            Ok(level) => Some((full, level)),
            Err(reason) => {
                d.push(
                    invalid("config::invalid-scope", "scope", scope, &reason)
                        .help("write a full ARM id (/subscriptions/<guid>/resourceGroups/<rg>/providers/<Namespace>/<type>/<name>), or one relative to the subscription (resourceGroups/<rg>/…)"),
                );
                None
            }
        }
    }
}

fn narrower(broad: &str) -> String {
    match broad {
        "Owner" | "User Access Administrator" => "grant only what the workload needs: a data role (e.g. \"Storage Blob Data Contributor\", \"Key Vault Secrets User\") on the resource, or \"Role Based Access Control Administrator\" with a condition on a resource group".to_string(),
        _ => "grant only what the workload needs: a data role (e.g. \"Storage Blob Data Contributor\", \"Key Vault Secrets User\") on the resource, or \"Contributor\" on one resource group".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Checked, Severity, SourceFile, check};

    const HEADER: &str = r#"
version = 1
name = "t"
[azure]
tenant_id = "aaaaaaaa-0000-4000-8000-000000000001"
subscription_id = "bbbbbbbb-0000-4000-8000-000000000001"
location = "westeurope"
[clusters.prod]
resource_group = "rg-aks"
name = "aks-prod"
[identities.api]
resource_group = "rg-id"
"#;

    fn run(body: &str) -> Checked {
        check(SourceFile {
            name: "t.toml".into(),
            text: format!("{HEADER}{body}"),
        })
    }

    fn codes(c: &Checked) -> Vec<&'static str> {
        c.diagnostics.iter().map(|d| d.code).collect()
    }

    fn service_accounts(n: usize) -> String {
        (0..n)
            .map(|i| format!("[[service_accounts]]\ncluster = \"prod\"\nnamespace = \"ns-{i}\"\nname = \"app\"\nidentity = \"api\"\n"))
            .collect()
    }

    fn federations(n: usize) -> String {
        (0..n)
            .map(|i| format!("[[federations]]\nidentity = \"api\"\nname = \"gh-{i}\"\nissuer = \"https://token.actions.githubusercontent.com\"\nsubject = \"repo:c/r{i}:ref:refs/heads/main\"\n"))
            .collect()
    }

    #[test]
    fn a_clean_config_has_no_diagnostics() {
        let c = run(&service_accounts(1));
        assert!(c.diagnostics.is_empty(), "{:?}", c.diagnostics);
        assert!(c.config.is_some());
    }

    #[test]
    fn undefined_references_name_the_candidates() {
        let c = run(
            "[[service_accounts]]\ncluster = \"prd\"\nnamespace = \"a\"\nname = \"b\"\nidentity = \"apj\"\n",
        );
        assert_eq!(
            codes(&c),
            ["config::undefined-reference", "config::undefined-reference"]
        );
        let helps: Vec<&str> = c
            .diagnostics
            .iter()
            .filter_map(|d| d.help.as_deref())
            .collect();
        assert_eq!(
            helps,
            [
                "did you mean \"prod\"? Defined: `prod`",
                "did you mean \"api\"? Defined: `api`"
            ]
        );
        assert!(c.config.is_none());
    }

    #[test]
    fn implied_credentials_count_toward_the_limit_of_twenty() {
        assert!(
            run(&format!("{}{}", service_accounts(12), federations(8)))
                .diagnostics
                .is_empty()
        );
        let c = run(&format!("{}{}", service_accounts(12), federations(9)));
        assert_eq!(codes(&c), ["config::too-many-federated-credentials"]);
        let message = &c.diagnostics.iter().next().unwrap().message;
        assert!(
            message.contains(
                "21 federated credentials (12 from service accounts, 9 from federations)"
            ),
            "{message}"
        );
    }

    #[test]
    fn the_same_issuer_and_subject_twice_on_one_identity() {
        let c = run(r#"
[clusters.a]
issuer = "https://oidc.example.com/shared"
kube_context = "a"
[clusters.b]
issuer = "https://oidc.example.com/shared"
kube_context = "b"
[[service_accounts]]
cluster = "a"
namespace = "x"
name = "y"
identity = "api"
[[service_accounts]]
cluster = "b"
namespace = "x"
name = "y"
identity = "api"
"#);
        assert_eq!(codes(&c), ["config::duplicate-federation"]);
    }

    #[test]
    fn an_identity_without_an_issuer_to_trust() {
        let c = run(r#"
[clusters.edge]
kube_context = "edge"
[identities.legacy]
kind = "application"
[[service_accounts]]
cluster = "edge"
namespace = "x"
name = "y"
identity = "legacy"
"#);
        assert_eq!(codes(&c), ["config::no-issuer"]);
        let d = c.diagnostics.iter().next().unwrap();
        assert_eq!(d.related.len(), 1, "points at the service account too");
    }

    #[test]
    fn broad_roles_at_wide_scopes_are_warnings() {
        let owner_on_subscription = r#"
[[role_grants]]
identity = "api"
role = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
scope = "/subscriptions/bbbbbbbb-0000-4000-8000-000000000001"
"#;
        let c = run(owner_on_subscription);
        assert_eq!(codes(&c), ["config::broad-role"]);
        assert_eq!(
            c.diagnostics.iter().next().unwrap().severity,
            Severity::Warning
        );
        assert!(c.config.is_some(), "warnings keep the config valid");
        let on_a_group = "[[role_grants]]\nidentity = \"api\"\nrole = \"Owner\"\nscope = \"resourceGroups/rg-x\"\n";
        assert!(run(on_a_group).diagnostics.is_empty());
    }

    #[test]
    fn duplicate_grants_compare_roles_and_scopes_like_azure() {
        let c = run(r#"
[[role_grants]]
identity = "api"
role = "Reader"
scope = "resourceGroups/rg-x"
[[role_grants]]
identity = "api"
role = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
scope = "/subscriptions/BBBBBBBB-0000-4000-8000-000000000001/resourcegroups/RG-X"
"#);
        assert_eq!(codes(&c), ["config::duplicate"]);
    }

    #[test]
    fn a_broken_identity_table_is_not_reported_as_undefined() {
        let c = run(
            "[identities]\nbroken = 3\n[[role_grants]]\nidentity = \"broken\"\nrole = \"Reader\"\nscope = \"resourceGroups/rg\"\n",
        );
        assert_eq!(codes(&c), ["config::type"]);
    }

    #[test]
    fn a_missing_key_does_not_hide_problems_next_to_it() {
        let c = check(SourceFile {
            name: "t.toml".into(),
            text: "version = 1\nname = \"t\"\n[azure]\ntenant_id = \"x\"\n[[federations]]\nidentity = \"nobody\"\nname = \"gh\"\nsubject = \"s\"\n".into(),
        });
        assert_eq!(
            codes(&c),
            [
                "config::missing-key",         // subscription_id
                "config::invalid-guid",        // tenant_id
                "config::missing-key",         // issuer
                "config::undefined-reference", // identity
                "config::invalid-name",        // name
            ]
        );
    }

    #[test]
    fn misspelt_role_names_get_a_suggestion() {
        let c = run(
            "[[role_grants]]\nidentity = \"api\"\nrole = \"Storage Blob Data Contributer\"\nscope = \"resourceGroups/rg\"\n",
        );
        assert_eq!(codes(&c), ["config::unknown-role"]);
        assert!(
            c.diagnostics
                .iter()
                .next()
                .unwrap()
                .help
                .as_deref()
                .unwrap()
                .contains("Storage Blob Data Contributor")
        );
    }

    #[test]
    fn reserved_keys_are_refused() {
        let c = run(&service_accounts(1).replace(
            "identity = \"api\"",
            "identity = \"api\"\nannotations = { \"azure.workload.identity/client-id\" = \"x\" }",
        ));
        assert_eq!(codes(&c), ["config::reserved"]);
    }
}
