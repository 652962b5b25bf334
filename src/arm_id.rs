//! ARM ids and scopes, read once: the subscription a path is in, the resource group a scope
//! lies in, the segment after a name, and a config scope made absolute. ARM compares ids without
//! regard to case (`resourceGroups` comes back as `resourcegroups`), so every match here does.
//! Source: "Resource ID" in the ARM template functions reference and `common-types/resource-
//! management/v5/types.json` (`ResourceId`, `SubscriptionIdParameter`).

/// `/subscriptions/{id}/…` → `{id}`, as written.
pub fn subscription_of(path: &str) -> Option<String> {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some(s), Some(id)) if s.eq_ignore_ascii_case("subscriptions") && !id.is_empty() => {
            Some(id.to_string())
        }
        _ => None,
    }
}

/// The resource group a scope lies in, when that is in `subscription`.
pub fn resource_group_of<'a>(scope: &'a str, subscription: &str) -> Option<&'a str> {
    let parts: Vec<&str> = scope.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [s, sub, rg, name, ..]
            if s.eq_ignore_ascii_case("subscriptions")
                && sub.eq_ignore_ascii_case(subscription)
                && rg.eq_ignore_ascii_case("resourceGroups")
                && !name.is_empty() =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// The segment after `name` in an ARM id (`subscriptions`, `resourceGroups`, …), any case.
pub fn segment<'a>(id: &'a str, name: &str) -> Option<&'a str> {
    let mut parts = id.split('/').filter(|p| !p.is_empty());
    while let Some(part) = parts.next() {
        if part.eq_ignore_ascii_case(name) {
            return parts.next();
        }
    }
    None
}

/// A scope as a full ARM id: a relative scope (`resourceGroups/rg`) is under `subscription`.
pub fn full_scope(scope: &str, subscription: &str) -> String {
    let scope = scope.trim().trim_end_matches('/');
    if scope.starts_with('/') {
        scope.to_string()
    } else {
        format!("/subscriptions/{subscription}/{scope}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "bbbbbbbb-0000-4000-8000-000000000001";

    #[test]
    fn subscriptions_come_from_the_front_of_the_path() {
        assert_eq!(
            subscription_of("/subscriptions/abc/resourceGroups/rg").as_deref(),
            Some("abc")
        );
        assert_eq!(subscription_of("/providers/Microsoft.Management/x"), None);
        assert_eq!(subscription_of("/subscriptions/"), None);
    }

    #[test]
    fn a_scope_lies_in_a_group_of_its_own_subscription_only() {
        assert_eq!(
            resource_group_of(&format!("/subscriptions/{SUB}/resourceGroups/rg/x"), SUB),
            Some("rg")
        );
        assert_eq!(
            resource_group_of(&format!("/Subscriptions/{SUB}/resourcegroups/rg"), SUB),
            Some("rg")
        );
        assert_eq!(
            resource_group_of("/subscriptions/other/resourceGroups/rg", SUB),
            None
        );
        assert_eq!(
            resource_group_of(&format!("/subscriptions/{SUB}"), SUB),
            None
        );
    }

    #[test]
    fn segments_and_scopes_read_without_regard_to_case() {
        let id = format!(
            "/subscriptions/{SUB}/resourcegroups/rg-a/providers/Microsoft.ManagedIdentity/userAssignedIdentities/api"
        );
        assert_eq!(segment(&id, "resourceGroups"), Some("rg-a"));
        assert_eq!(segment(&id, "userassignedidentities"), Some("api"));
        assert_eq!(segment(&id, "nothing"), None);
        assert_eq!(
            full_scope("resourceGroups/rg/", SUB),
            format!("/subscriptions/{SUB}/resourceGroups/rg")
        );
        assert_eq!(full_scope(" /providers/x ", SUB), "/providers/x");
    }
}
