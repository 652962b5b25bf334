//! Name and identifier rules of Kubernetes and Azure, as pure checks. Each returns the reason a
//! value is rejected, phrased to follow "is not valid: ".

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits in either case.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// DNS-1123 label (Kubernetes namespace names): at most 63 characters, lowercase letters,
/// digits and `-`, starting and ending with a letter or digit.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > 63 {
        return Err(format!(
            "it has {} characters; at most 63 are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(if c.is_ascii_uppercase() {
            "it has uppercase letters; only lowercase letters, digits and '-' are allowed".into()
        } else {
            format!("it contains {c:?}; only lowercase letters, digits and '-' are allowed")
        });
    }
    let bytes = s.as_bytes();
    if !is_lower_alnum(bytes[0]) || !is_lower_alnum(bytes[bytes.len() - 1]) {
        return Err("it must start and end with a letter or digit".into());
    }
    Ok(())
}

/// DNS-1123 subdomain (Kubernetes service account names): at most 253 characters of lowercase
/// letters, digits, `-` and `.`, each dot-separated part starting and ending with a letter or
/// digit (Kubernetes' `IsDNS1123Subdomain`: no limit per part).
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if s.len() > 253 {
        return Err(format!(
            "it has {} characters; at most 253 are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(if c.is_ascii_uppercase() {
            "it has uppercase letters; only lowercase letters, digits, '-' and '.' are allowed"
                .into()
        } else {
            format!("it contains {c:?}; only lowercase letters, digits, '-' and '.' are allowed")
        });
    }
    for part in s.split('.') {
        if part.is_empty() {
            return Err("it has an empty part between dots".into());
        }
        let bytes = part.as_bytes();
        if !is_lower_alnum(bytes[0]) || !is_lower_alnum(bytes[bytes.len() - 1]) {
            return Err("each dot-separated part must start and end with a letter or digit".into());
        }
    }
    Ok(())
}

fn pattern_error<T>(what: &str) -> Result<T, String> {
    Err(what.to_string())
}

/// Federated identity credential names (ManagedIdentity spec: `^[a-zA-Z0-9]{1}[a-zA-Z0-9-_]{2,119}$`).
pub fn federated_credential_name(s: &str) -> Result<(), String> {
    azure_name(s, 3, 120, &['-', '_'])
}

/// User-assigned identity names: 3–128 characters, letters, digits, `-` and `_`, starting with a
/// letter or digit.
pub fn managed_identity_name(s: &str) -> Result<(), String> {
    azure_name(s, 3, 128, &['-', '_'])
}

/// AKS cluster names: 1–63 characters, letters, digits, `-` and `_`, starting and ending with a
/// letter or digit.
pub fn aks_cluster_name(s: &str) -> Result<(), String> {
    azure_name(s, 1, 63, &['-', '_'])?;
    if !s.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return pattern_error("it must end with a letter or digit");
    }
    Ok(())
}

fn azure_name(s: &str, min: usize, max: usize, extra: &[char]) -> Result<(), String> {
    let len = s.chars().count();
    if len < min || len > max {
        return Err(format!(
            "it has {len} characters; {min} to {max} are allowed"
        ));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return pattern_error("it must start with a letter or digit");
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c)))
    {
        let allowed: Vec<String> = extra.iter().map(|c| format!("'{c}'")).collect();
        return Err(format!(
            "it contains {c:?}; only letters, digits and {} are allowed",
            allowed.join(" and ")
        ));
    }
    Ok(())
}

/// Resource group names (Microsoft.Resources: `^[-\w\._\(\)]+$`, 1–90 characters, not ending in
/// a period).
pub fn resource_group_name(s: &str) -> Result<(), String> {
    let len = s.chars().count();
    if len == 0 || len > 90 {
        return Err(format!("it has {len} characters; 1 to 90 are allowed"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')')))
    {
        return Err(format!(
            "it contains {c:?}; only letters, digits, '-', '_', '.', '(' and ')' are allowed"
        ));
    }
    if s.ends_with('.') {
        return pattern_error("it must not end with a period");
    }
    Ok(())
}

/// Azure region names as ARM spells them: `westeurope`, `eastus2`.
pub fn location(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return pattern_error("it is empty");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return pattern_error("Azure region names are lowercase letters and digits without spaces");
    }
    Ok(())
}

/// The ARM region name for a display name such as "West Europe".
pub fn location_hint(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// An https URL usable as an OIDC issuer or service endpoint: absolute, https, a host, no
/// credentials, query or fragment, at most 600 characters (the federated credential limit).
pub fn https_url(s: &str) -> Result<(), String> {
    if s.len() > 600 {
        return Err(format!(
            "it has {} characters; at most 600 are allowed",
            s.len()
        ));
    }
    let url = url::Url::parse(s).map_err(|e| format!("it is not a URL ({e})"))?;
    if url.scheme() != "https" {
        return Err(format!(
            "its scheme is {:?}; only https is accepted",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return pattern_error("it has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return pattern_error("it contains credentials");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return pattern_error("it has a query or fragment");
    }
    Ok(())
}

/// Where a role assignment applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeLevel {
    ManagementGroup,
    Subscription,
    ResourceGroup,
    Resource,
}

/// Parses an ARM scope: `/providers/Microsoft.Management/managementGroups/{mg}`,
/// `/subscriptions/{guid}`, `…/resourceGroups/{rg}`, `…/providers/{Namespace}/{type}/{name}[/{type}/{name}…]`.
pub fn arm_scope(s: &str) -> Result<ScopeLevel, String> {
    let Some(rest) = s.strip_prefix('/') else {
        return pattern_error("a full ARM id starts with '/'");
    };
    if rest.ends_with('/') {
        return pattern_error("it ends with '/'");
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return pattern_error("it has an empty segment ('//')");
    }
    match parts.as_slice() {
        [p, ns, mg, name]
            if p.eq_ignore_ascii_case("providers")
                && ns.eq_ignore_ascii_case("Microsoft.Management")
                && mg.eq_ignore_ascii_case("managementGroups") =>
        {
            let _ = name;
            Ok(ScopeLevel::ManagementGroup)
        }
        [p, ..] if p.eq_ignore_ascii_case("providers") => pattern_error(
            "the only scope above a subscription is /providers/Microsoft.Management/managementGroups/{name}",
        ),
        [s, sub, rest @ ..] if s.eq_ignore_ascii_case("subscriptions") => {
            if !is_guid(sub) {
                return Err(format!("the subscription id {sub:?} is not a GUID"));
            }
            match rest {
                [] => Ok(ScopeLevel::Subscription),
                [rg, name, rest @ ..] if rg.eq_ignore_ascii_case("resourceGroups") => {
                    resource_group_name(name).map_err(|reason| {
                        format!("the resource group name {name:?} is not valid: {reason}")
                    })?;
                    match rest {
                        [] => Ok(ScopeLevel::ResourceGroup),
                        rest => resource_path(rest),
                    }
                }
                [rg] if rg.eq_ignore_ascii_case("resourceGroups") => {
                    pattern_error("'resourceGroups' is not followed by a name")
                }
                rest => resource_path(rest),
            }
        }
        [s] if s.eq_ignore_ascii_case("subscriptions") => {
            pattern_error("'subscriptions' is not followed by a subscription id")
        }
        [first, ..] => Err(format!(
            "it starts with {first:?}; expected 'subscriptions' or 'providers'"
        )),
        [] => pattern_error("it is empty"),
    }
}

/// `providers/{Namespace}/{type}/{name}` followed by any number of `{type}/{name}` pairs.
fn resource_path(parts: &[&str]) -> Result<ScopeLevel, String> {
    match parts {
        [p, namespace, rest @ ..] if p.eq_ignore_ascii_case("providers") => {
            if !namespace.contains('.') {
                return Err(format!(
                    "{namespace:?} is not a resource provider namespace (e.g. Microsoft.Storage)"
                ));
            }
            if rest.is_empty() || rest.len() % 2 != 0 {
                return pattern_error(
                    "after the provider namespace, segments must come in {type}/{name} pairs",
                );
            }
            Ok(ScopeLevel::Resource)
        }
        [first, ..] => Err(format!("{first:?} is not 'resourceGroups' or 'providers'")),
        [] => pattern_error("it is empty"),
    }
}

/// Kubernetes label and annotation keys: an optional DNS-1123 subdomain prefix and `/`, then a
/// name of at most 63 characters (letters, digits, `-`, `_`, `.`, alphanumeric at both ends).
pub fn qualified_name(s: &str) -> Result<(), String> {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix)
            .map_err(|reason| format!("its prefix {prefix:?} is not valid: {reason}"))?;
    }
    label_value(name).and_then(|()| {
        if name.is_empty() {
            pattern_error("its name part is empty")
        } else {
            Ok(())
        }
    })
}

/// Kubernetes label values: empty, or at most 63 characters of letters, digits, `-`, `_`, `.`,
/// alphanumeric at both ends.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!(
            "it has {} characters; at most 63 are allowed",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "it contains {c:?}; only letters, digits, '-', '_' and '.' are allowed"
        ));
    }
    let alnum = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !alnum(s.chars().next()) || !alnum(s.chars().last()) {
        return pattern_error("it must start and end with a letter or digit");
    }
    Ok(())
}

/// Azure tag names: at most 512 characters, none of `< > % & \ ? /`; values at most 256.
pub fn tag(name: &str, value: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().count() > 512 {
        return pattern_error("tag names have 1 to 512 characters");
    }
    if let Some(c) = name.chars().find(|c| "<>%&\\?/".contains(*c)) {
        return Err(format!("tag names cannot contain {c:?}"));
    }
    if value.chars().count() > 256 {
        return pattern_error("tag values have at most 256 characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(is_guid("8e3af657-a8ff-443c-a75c-2fe8c4bcb635"));
        assert!(is_guid("8E3AF657-A8FF-443C-A75C-2FE8C4BCB635"));
        assert!(!is_guid("8e3af657-a8ff-443c-a75c-2fe8c4bcb63"));
        assert!(!is_guid("8e3af657a8ff443ca75c2fe8c4bcb635"));
        assert!(!is_guid("ge3af657-a8ff-443c-a75c-2fe8c4bcb635"));
        assert!(!is_guid(""));
    }

    #[test]
    fn kubernetes_names() {
        assert!(dns1123_label("orders").is_ok());
        assert!(dns1123_label("a-1").is_ok());
        assert!(dns1123_label("Orders").unwrap_err().contains("uppercase"));
        assert!(dns1123_label("-a").is_err());
        assert!(dns1123_label("a.b").is_err());
        assert!(dns1123_label(&"a".repeat(64)).is_err());
        assert!(dns1123_subdomain("a.b-c").is_ok());
        assert!(dns1123_subdomain("a..b").is_err());
        assert!(dns1123_subdomain("a_b").unwrap_err().contains("'.'"));
        assert!(
            dns1123_subdomain(&"a".repeat(70)).is_ok(),
            "no per-part limit, as in Kubernetes"
        );
        assert!(dns1123_subdomain("a.-b").is_err());
        assert!(qualified_name("azure.workload.identity/use").is_ok());
        assert!(qualified_name("app").is_ok());
        assert!(qualified_name("Bad_Prefix/x").is_err());
        assert!(qualified_name("x/").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("a b").is_err());
    }

    #[test]
    fn azure_names() {
        assert!(federated_credential_name("github-main").is_ok());
        assert!(federated_credential_name("ab").is_err());
        assert!(federated_credential_name("-abc").is_err());
        assert!(federated_credential_name(&"a".repeat(121)).is_err());
        assert!(managed_identity_name("id_orders-api").is_ok());
        assert!(managed_identity_name("id.orders").is_err());
        assert!(resource_group_name("rg-(test).1").is_ok());
        assert!(resource_group_name("rg.").is_err());
        assert!(resource_group_name("rg/x").is_err());
        assert!(aks_cluster_name("aks-prod").is_ok());
        assert!(aks_cluster_name("aks-").is_err());
        assert!(location("westeurope").is_ok());
        assert!(location("West Europe").is_err());
        assert_eq!(location_hint("West Europe"), "westeurope");
        assert!(tag("team", "orders").is_ok());
        assert!(tag("a/b", "x").is_err());
    }

    #[test]
    fn urls() {
        assert!(https_url("https://token.actions.githubusercontent.com").is_ok());
        assert!(https_url("https://westeurope.oic.prod-aks.azure.com/t/g/").is_ok());
        assert!(
            https_url("http://example.com")
                .unwrap_err()
                .contains("https")
        );
        assert!(https_url("example.com").is_err());
        assert!(https_url("https://example.com/?a=b").is_err());
        assert!(https_url("https://user@example.com").is_err());
    }

    #[test]
    fn scopes() {
        let sub = "/subscriptions/00000000-0000-0000-0000-000000000001";
        assert_eq!(arm_scope(sub), Ok(ScopeLevel::Subscription));
        assert_eq!(
            arm_scope(&format!("{sub}/resourceGroups/rg-data")),
            Ok(ScopeLevel::ResourceGroup)
        );
        assert_eq!(
            arm_scope(&format!(
                "{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default/containers/c"
            )),
            Ok(ScopeLevel::Resource)
        );
        assert_eq!(
            arm_scope("/providers/Microsoft.Management/managementGroups/contoso"),
            Ok(ScopeLevel::ManagementGroup)
        );
        assert!(arm_scope("/subscriptions/nope").is_err());
        assert!(arm_scope(&format!("{sub}/")).is_err());
        assert!(arm_scope(&format!("{sub}//resourceGroups/x")).is_err());
        assert!(arm_scope(&format!("{sub}/resourceGroups")).is_err());
        assert!(
            arm_scope(&format!(
                "{sub}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts"
            ))
            .is_err()
        );
        assert!(arm_scope(&format!("{sub}/resourceGroups/rg/providers/Storage/a/b")).is_err());
        assert!(arm_scope("resourceGroups/x").is_err());
        assert!(arm_scope("/tenants/x").is_err());
    }
}
