//! TOML → model. Walks the spanned TOML tree by hand (not serde) so that one run reports every
//! unknown key, wrong type and missing key, each at its own span, instead of stopping at the
//! first.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::*;
use super::suggest;

type Value<'i> = Spanned<DeValue<'i>>;

/// A key of a table, with an example line used in help texts.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub example: &'static str,
}

const fn f(name: &'static str, example: &'static str) -> Field {
    Field { name, example }
}

pub const CONFIG_FIELDS: &[Field] = &[
    f("version", "version = 1"),
    f("name", "name = \"orders-platform\""),
    f("azure", "[azure]"),
    f("resource_groups", "[resource_groups.rg-identities]"),
    f("clusters", "[clusters.prod]"),
    f("identities", "[identities.orders-api]"),
    f("service_accounts", "[[service_accounts]]"),
    f("federations", "[[federations]]"),
    f("role_grants", "[[role_grants]]"),
];

pub const AZURE_FIELDS: &[Field] = &[
    f(
        "tenant_id",
        "tenant_id = \"00000000-0000-0000-0000-000000000000\"",
    ),
    f(
        "subscription_id",
        "subscription_id = \"00000000-0000-0000-0000-000000000000\"",
    ),
    f("location", "location = \"westeurope\""),
    f("cloud", "cloud = \"public\""),
];

pub const CUSTOM_CLOUD_FIELDS: &[Field] = &[
    f("arm", "arm = \"https://management.azure.com\""),
    f("graph", "graph = \"https://graph.microsoft.com\""),
    f(
        "authority",
        "authority = \"https://login.microsoftonline.com\"",
    ),
];

pub const RESOURCE_GROUP_FIELDS: &[Field] = &[
    f("location", "location = \"westeurope\""),
    f("tags", "tags = { team = \"orders\" }"),
];

pub const CLUSTER_FIELDS: &[Field] = &[
    f("resource_group", "resource_group = \"rg-aks\""),
    f("name", "name = \"aks-prod\""),
    f(
        "subscription_id",
        "subscription_id = \"00000000-0000-0000-0000-000000000000\"",
    ),
    f("issuer", "issuer = \"https://oidc.example.com/onprem\""),
    f("kube_context", "kube_context = \"aks-prod\""),
    f("kubeconfig", "kubeconfig = \"~/.kube/config\""),
    f(
        "enable_workload_identity",
        "enable_workload_identity = true",
    ),
];

pub const IDENTITY_FIELDS: &[Field] = &[
    f("kind", "kind = \"managed\""),
    f("name", "name = \"id-orders-api\""),
    f("resource_group", "resource_group = \"rg-identities\""),
    f("location", "location = \"westeurope\""),
    f("tags", "tags = { team = \"orders\" }"),
    f("display_name", "display_name = \"orders-api\""),
    f("prune_unmanaged", "prune_unmanaged = true"),
];

pub const SERVICE_ACCOUNT_FIELDS: &[Field] = &[
    f("cluster", "cluster = \"prod\""),
    f("namespace", "namespace = \"orders\""),
    f("name", "name = \"orders-api\""),
    f("identity", "identity = \"orders-api\""),
    f("create_namespace", "create_namespace = true"),
    f(
        "annotations",
        "annotations = { \"example.com/owner\" = \"orders\" }",
    ),
    f("labels", "labels = { app = \"orders-api\" }"),
    f("token_expiration", "token_expiration = 3600"),
    f("federation_name", "federation_name = \"prod-orders-api\""),
    f("audiences", "audiences = [\"api://AzureADTokenExchange\"]"),
];

pub const FEDERATION_FIELDS: &[Field] = &[
    f("identity", "identity = \"orders-api\""),
    f("name", "name = \"github-main\""),
    f(
        "issuer",
        "issuer = \"https://token.actions.githubusercontent.com\"",
    ),
    f(
        "subject",
        "subject = \"repo:contoso/orders:ref:refs/heads/main\"",
    ),
    f("audiences", "audiences = [\"api://AzureADTokenExchange\"]"),
];

pub const ROLE_GRANT_FIELDS: &[Field] = &[
    f("identity", "identity = \"orders-api\""),
    f("role", "role = \"Storage Blob Data Contributor\""),
    f(
        "scope",
        "scope = \"resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/ordersdata\"",
    ),
    f(
        "condition",
        "condition = \"((!(ActionMatches{'…'})) OR (…))\"",
    ),
];

/// What could not be read at all: a missing `[azure]` table, and names whose table was declared
/// but is not a table, so that references to them are not reported as undefined.
#[derive(Debug, Default, Clone)]
pub struct Incomplete {
    pub azure: bool,
    pub clusters: Vec<String>,
    pub identities: Vec<String>,
}

/// What a read produced: a config (required values that were missing or unusable are
/// placeholders, see [`Sp::missing`]) or nothing when the TOML itself did not parse.
pub struct Read {
    pub config: Config,
    pub incomplete: Incomplete,
}

pub fn read(source: &str, diags: &mut Diagnostics) -> Option<Read> {
    let (root, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        // After a syntax error the recovered tree is a guess; checking it would report
        // follow-on problems that are not really there.
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            diags.push(
                Diagnostic::error("config::syntax", format!("TOML syntax error: {}", error.message()))
                    .at(span, "here")
                    .help("fix the TOML syntax; the other checks run once the file parses (TOML reference: https://toml.io/en/v1.0.0)"),
            );
        }
        return None;
    }
    let mut incomplete = Incomplete::default();
    let top = Tbl {
        table: root.get_ref(),
        span: 0..0,
        path: "the top level".to_string(),
        fields: CONFIG_FIELDS,
    };
    let version = top.required::<i64>("version", diags);
    let name = top.required::<String>("name", diags);
    let azure = top
        .required_table("azure", diags)
        .map(|t| read_azure(&t, diags));
    let resource_groups = top.optional_named(
        "resource_groups",
        diags,
        read_resource_group,
        &mut Vec::new(),
    );
    let clusters = top.optional_named("clusters", diags, read_cluster, &mut incomplete.clusters);
    let identities = top.optional_named(
        "identities",
        diags,
        read_identity,
        &mut incomplete.identities,
    );
    let service_accounts = top.optional_array("service_accounts", diags, read_service_account);
    let federations = top.optional_array("federations", diags, read_federation);
    let role_grants = top.optional_array("role_grants", diags, read_role_grant);
    top.finish(diags);

    incomplete.azure = azure.is_none();
    let config = Config {
        version,
        name,
        azure: azure.unwrap_or_else(|| Azure {
            tenant_id: Sp::missing(),
            subscription_id: Sp::missing(),
            location: None,
            cloud: None,
        }),
        resource_groups,
        clusters,
        identities,
        service_accounts,
        federations,
        role_grants,
    };
    Some(Read { config, incomplete })
}

fn read_azure(t: &Tbl, d: &mut Diagnostics) -> Azure {
    let azure = Azure {
        tenant_id: t.required("tenant_id", d),
        subscription_id: t.required("subscription_id", d),
        location: t.optional("location", d),
        cloud: t.optional("cloud", d),
    };
    t.finish(d);
    azure
}

fn read_resource_group(t: &Tbl, d: &mut Diagnostics) -> Option<ResourceGroup> {
    let location = t.optional("location", d);
    let tags = t.optional("tags", d).unwrap_or_default();
    t.finish(d);
    Some(ResourceGroup { location, tags })
}

fn read_cluster(t: &Tbl, d: &mut Diagnostics) -> Option<Cluster> {
    let cluster = Cluster {
        resource_group: t.optional("resource_group", d),
        name: t.optional("name", d),
        subscription_id: t.optional("subscription_id", d),
        issuer: t.optional("issuer", d),
        kube_context: t.optional("kube_context", d),
        kubeconfig: t.optional("kubeconfig", d),
        enable_workload_identity: t.optional("enable_workload_identity", d),
    };
    t.finish(d);
    Some(cluster)
}

fn read_identity(t: &Tbl, d: &mut Diagnostics) -> Option<Identity> {
    let identity = Identity {
        kind: t.optional("kind", d),
        name: t.optional("name", d),
        resource_group: t.optional("resource_group", d),
        location: t.optional("location", d),
        tags: t.optional("tags", d).unwrap_or_default(),
        display_name: t.optional("display_name", d),
        prune_unmanaged: t.optional("prune_unmanaged", d),
    };
    t.finish(d);
    Some(identity)
}

fn read_service_account(t: &Tbl, d: &mut Diagnostics) -> Option<ServiceAccount> {
    let account = ServiceAccount {
        cluster: t.required("cluster", d),
        namespace: t.required("namespace", d),
        name: t.required("name", d),
        identity: t.required("identity", d),
        create_namespace: t.optional("create_namespace", d),
        annotations: t.optional("annotations", d).unwrap_or_default(),
        labels: t.optional("labels", d).unwrap_or_default(),
        token_expiration: t.optional("token_expiration", d),
        federation_name: t.optional("federation_name", d),
        audiences: t.optional("audiences", d),
    };
    t.finish(d);
    Some(account)
}

fn read_federation(t: &Tbl, d: &mut Diagnostics) -> Option<Federation> {
    let federation = Federation {
        identity: t.required("identity", d),
        name: t.required("name", d),
        issuer: t.required("issuer", d),
        subject: t.required("subject", d),
        audiences: t.optional("audiences", d),
    };
    t.finish(d);
    Some(federation)
}

fn read_role_grant(t: &Tbl, d: &mut Diagnostics) -> Option<RoleGrant> {
    let grant = RoleGrant {
        identity: t.required("identity", d),
        role: t.required("role", d),
        scope: t.required("scope", d),
        condition: t.optional("condition", d),
    };
    t.finish(d);
    Some(grant)
}

/// A table being read: its keys are checked against `fields` when done.
struct Tbl<'t, 'i> {
    table: &'t DeTable<'i>,
    /// Where to point when a key is missing: the table header, or the inline table.
    span: Span,
    /// How the user would name this table, e.g. `[clusters.prod]`.
    path: String,
    fields: &'static [Field],
}

impl<'t, 'i> Tbl<'t, 'i> {
    fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| v)
    }

    fn field(&self, key: &'static str) -> Field {
        self.fields
            .iter()
            .copied()
            .find(|f| f.name == key)
            .unwrap_or(Field {
                name: key,
                example: "",
            })
    }

    /// A required value; a placeholder ([`Sp::missing`]) when absent or unusable.
    fn required<T: Default>(&self, key: &'static str, d: &mut Diagnostics) -> Sp<T>
    where
        Sp<T>: FromToml,
    {
        let field = self.field(key);
        match self.get(key) {
            Some(value) => Sp::<T>::from_toml(value, &field, d).unwrap_or_else(Sp::missing),
            None => {
                d.push(
                    Diagnostic::error(
                        "config::missing-key",
                        format!("missing required key `{key}` in {}", self.path),
                    )
                    .at(self.span.clone(), format!("`{key}` is required here"))
                    .help(format!("add it, for example: {}", field.example)),
                );
                Sp::missing()
            }
        }
    }

    fn optional<T: FromToml>(&self, key: &'static str, d: &mut Diagnostics) -> Option<T> {
        let field = self.field(key);
        self.get(key)
            .and_then(|value| T::from_toml(value, &field, d))
    }

    fn required_table(&self, key: &'static str, d: &mut Diagnostics) -> Option<Tbl<'t, 'i>> {
        let field = self.field(key);
        match self.get(key) {
            Some(value) => as_table(value, &field, format!("[{key}]"), fields_of(key), d),
            None => {
                d.push(
                    Diagnostic::error(
                        "config::missing-key",
                        format!("missing required table `[{key}]`"),
                    )
                    .at(self.span.clone(), format!("`[{key}]` is required"))
                    .help(format!(
                        "add it, for example:\n{}\ntenant_id = \"…\"\nsubscription_id = \"…\"",
                        field.example
                    )),
                );
                None
            }
        }
    }

    /// `[section.NAME]` tables. Names whose body is unusable go to `broken`.
    fn optional_named<T>(
        &self,
        key: &'static str,
        d: &mut Diagnostics,
        read_one: impl Fn(&Tbl, &mut Diagnostics) -> Option<T>,
        broken: &mut Vec<String>,
    ) -> Named<T> {
        let field = self.field(key);
        let mut out = Named::default();
        let Some(value) = self.get(key) else {
            return out;
        };
        let DeValue::Table(table) = value.get_ref() else {
            d.push(type_error(value, &field, "a table"));
            return out;
        };
        let singular = singular(key);
        for (name, body) in table.iter() {
            let name = Sp::new(name.get_ref().to_string(), name.span());
            let example = Field {
                name: singular,
                example: field.example,
            };
            let path = format!("[{key}.{}]", name.value);
            match as_table(body, &example, path, fields_of(key), d).and_then(|t| read_one(&t, d)) {
                Some(item) => out.0.push((name, item)),
                None => broken.push(name.value),
            }
        }
        out
    }

    /// `[[section]]` arrays of tables. Unusable entries are dropped (their errors are reported).
    fn optional_array<T>(
        &self,
        key: &'static str,
        d: &mut Diagnostics,
        read_one: impl Fn(&Tbl, &mut Diagnostics) -> Option<T>,
    ) -> Vec<T> {
        let field = self.field(key);
        let Some(value) = self.get(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = value.get_ref() else {
            d.push(type_error(value, &field, "an array of tables"));
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let path = format!("[[{key}]] entry #{}", i + 1);
                as_table(item, &field, path, fields_of(key), d).and_then(|t| read_one(&t, d))
            })
            .collect()
    }

    fn finish(&self, d: &mut Diagnostics) {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if self.fields.iter().any(|f| f.name == name) {
                continue;
            }
            let known: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
            let help = match suggest::closest(name, known.iter().copied()) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("{} accepts {}", self.path, suggest::list(&known)),
            };
            d.push(
                Diagnostic::error(
                    "config::unknown-key",
                    format!("unknown key `{name}` in {}", self.path),
                )
                .at(key.span(), "unknown key")
                .help(help),
            );
        }
    }
}

fn singular(section: &str) -> &'static str {
    match section {
        "clusters" => "cluster",
        "identities" => "identity",
        "resource_groups" => "resource group",
        _ => "entry",
    }
}

fn fields_of(section: &str) -> &'static [Field] {
    match section {
        "azure" => AZURE_FIELDS,
        "resource_groups" => RESOURCE_GROUP_FIELDS,
        "clusters" => CLUSTER_FIELDS,
        "identities" => IDENTITY_FIELDS,
        "service_accounts" => SERVICE_ACCOUNT_FIELDS,
        "federations" => FEDERATION_FIELDS,
        "role_grants" => ROLE_GRANT_FIELDS,
        _ => &[],
    }
}

fn as_table<'t, 'i>(
    value: &'t Value<'i>,
    field: &Field,
    path: String,
    fields: &'static [Field],
    d: &mut Diagnostics,
) -> Option<Tbl<'t, 'i>> {
    match value.get_ref() {
        DeValue::Table(table) => Some(Tbl {
            table,
            span: value.span(),
            path,
            fields,
        }),
        _ => {
            d.push(type_error(value, field, "a table"));
            None
        }
    }
}

fn kind_of(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn type_error(value: &Value, field: &Field, expected: &str) -> Diagnostic {
    let found = kind_of(value.get_ref());
    let mut diagnostic = Diagnostic::error(
        "config::type",
        format!("`{}` must be {expected}, not {found}", field.name),
    )
    .at(value.span(), format!("this is {found}"));
    if !field.example.is_empty() {
        diagnostic = diagnostic.help(format!("for example: {}", field.example));
    }
    diagnostic
}

/// A value that can be read from TOML, reporting its own problems.
trait FromToml: Sized {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self>;
}

impl FromToml for Sp<String> {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self> {
        match value.get_ref() {
            DeValue::String(s) => Some(Sp::new(s.to_string(), value.span())),
            _ => {
                d.push(type_error(value, field, "a string"));
                None
            }
        }
    }
}

impl FromToml for Sp<bool> {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(Sp::new(*b, value.span())),
            _ => {
                d.push(type_error(value, field, "a boolean (true or false)"));
                None
            }
        }
    }
}

impl FromToml for Sp<i64> {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self> {
        match value.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Sp::new(n, value.span())),
                Err(_) => {
                    d.push(
                        Diagnostic::error(
                            "config::type",
                            format!("`{}` is out of range", field.name),
                        )
                        .at(value.span(), "too large")
                        .help(format!("for example: {}", field.example)),
                    );
                    None
                }
            },
            _ => {
                d.push(type_error(value, field, "an integer"));
                None
            }
        }
    }
}

impl FromToml for Sp<Vec<Sp<String>>> {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self> {
        let DeValue::Array(items) = value.get_ref() else {
            d.push(type_error(value, field, "an array of strings"));
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items.iter() {
            match Sp::<String>::from_toml(item, field, d) {
                Some(s) => out.push(s),
                None => ok = false,
            }
        }
        ok.then(|| Sp::new(out, value.span()))
    }
}

impl FromToml for StringMap {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self> {
        let DeValue::Table(table) = value.get_ref() else {
            d.push(type_error(value, field, "a table of strings"));
            return None;
        };
        let mut out = Named::default();
        for (key, item) in table.iter() {
            let inner = Field {
                name: field.name,
                example: field.example,
            };
            if let Some(s) = Sp::<String>::from_toml(item, &inner, d) {
                out.0
                    .push((Sp::new(key.get_ref().to_string(), key.span()), s));
            }
        }
        Some(out)
    }
}

/// A string that must be one of a few words.
fn one_of<T: Copy>(
    value: &Value,
    field: &Field,
    d: &mut Diagnostics,
    choices: &[(&'static str, T)],
) -> Option<Sp<T>> {
    let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
    let DeValue::String(s) = value.get_ref() else {
        d.push(type_error(
            value,
            field,
            &format!("one of {}", suggest::list_or(&words)),
        ));
        return None;
    };
    if let Some((_, v)) = choices.iter().find(|(w, _)| *w == s.as_ref()) {
        return Some(Sp::new(*v, value.span()));
    }
    let help = match suggest::closest(s, words.iter().copied()) {
        Some(close) => format!("did you mean \"{close}\"?"),
        None => format!("use {}", suggest::list_or(&words)),
    };
    d.push(
        Diagnostic::error(
            "config::invalid-value",
            format!("`{}` cannot be \"{s}\"", field.name),
        )
        .at(
            value.span(),
            format!("expected {}", suggest::list_or(&words)),
        )
        .help(help),
    );
    None
}

impl FromToml for Sp<IdentityKind> {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self> {
        one_of(
            value,
            field,
            d,
            &[
                ("managed", IdentityKind::Managed),
                ("application", IdentityKind::Application),
            ],
        )
    }
}

impl FromToml for Sp<Cloud> {
    fn from_toml(value: &Value, field: &Field, d: &mut Diagnostics) -> Option<Self> {
        if let DeValue::Table(_) = value.get_ref() {
            let t = as_table(value, field, "`cloud`".to_string(), CUSTOM_CLOUD_FIELDS, d)?;
            let custom = CustomCloud {
                arm: t.required("arm", d),
                graph: t.required("graph", d),
                authority: t.required("authority", d),
            };
            t.finish(d);
            return Some(Sp::new(Cloud::Custom(custom), value.span()));
        }
        let named = one_of(
            value,
            &Field {
                name: field.name,
                example: "cloud = \"public\"  (or a table: cloud = { arm = \"https://…\", graph = \"https://…\", authority = \"https://…\" })",
            },
            d,
            &[
                ("public", CloudName::Public),
                ("usgov", CloudName::Usgov),
                ("china", CloudName::China),
            ],
        )?;
        Some(Sp::new(Cloud::Named(named.value), named.span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(src: &str) -> (Option<Read>, Diagnostics) {
        let mut d = Diagnostics::default();
        let r = read(src, &mut d);
        (r, d)
    }

    const MINIMAL: &str = r#"
version = 1
name = "s"
[azure]
tenant_id = "t"
subscription_id = "s"
"#;

    #[test]
    fn reads_a_minimal_file() {
        let (r, d) = read_str(MINIMAL);
        assert!(d.is_empty(), "{d:?}");
        let r = r.unwrap();
        assert_eq!(r.config.name.value, "s");
        assert_eq!(&MINIMAL[r.config.name.span.clone()], "\"s\"");
    }

    #[test]
    fn reports_every_unknown_key_and_type_error() {
        let src = format!(
            "colour = 1\n{MINIMAL}[clusters.prod]\nisuer = \"x\"\nkube_context = 3\n[[service_accounts]]\ncluster = \"prod\"\n"
        );
        let (r, d) = read_str(&src);
        let codes: Vec<(&str, &str)> = d.iter().map(|d| (d.code, d.message.as_str())).collect();
        assert!(codes.contains(&(
            "config::unknown-key",
            "unknown key `colour` in the top level"
        )));
        assert!(codes.contains(&(
            "config::unknown-key",
            "unknown key `isuer` in [clusters.prod]"
        )));
        assert!(codes.contains(&(
            "config::type",
            "`kube_context` must be a string, not an integer"
        )));
        let missing: Vec<_> = d
            .iter()
            .filter(|d| d.code == "config::missing-key")
            .collect();
        assert_eq!(missing.len(), 3, "namespace, name, identity: {missing:?}");
        let sa = &r.unwrap().config.service_accounts[0];
        assert_eq!(sa.cluster.value, "prod");
        assert!(sa.name.is_missing());
        let typo = d.iter().find(|d| d.message.contains("isuer")).unwrap();
        assert_eq!(typo.help.as_deref(), Some("did you mean `issuer`?"));
    }

    #[test]
    fn broken_named_tables_are_remembered() {
        let src = format!("{MINIMAL}[identities.a]\nkind = \"manged\"\n[identities.b]\nkind = 4\n");
        let (r, d) = read_str(&src);
        let r = r.unwrap();
        // Optional values that fail leave the table usable.
        assert_eq!(r.config.identities.len(), 2);
        assert!(
            d.iter()
                .any(|d| d.help.as_deref() == Some("did you mean \"managed\"?"))
        );
    }

    #[test]
    fn syntax_errors_stop_before_other_checks() {
        let (r, d) = read_str("version = \nname = \"a\n");
        assert!(r.is_none());
        assert!(d.errors() >= 1);
        assert!(d.iter().all(|d| d.code == "config::syntax"));
    }

    #[test]
    fn section_of_the_wrong_shape() {
        let (r, d) = read_str(&format!(
            "{MINIMAL}service_accounts = \"x\"\nclusters = 3\n"
        ));
        assert!(r.is_some());
        assert_eq!(d.errors(), 2, "{d:?}");
    }
}
