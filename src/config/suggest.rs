//! "Did you mean …?" for misspelt keys and names.

/// The candidate closest to `name`, if it is close enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(distance, c)| {
            *distance <= (c.chars().count().max(name.chars().count()) / 3).max(1)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// `a`, `b` and `c` (each in backticks).
pub fn list(items: &[&str]) -> String {
    join(items, "and")
}

/// `a`, `b` or `c` (each in backticks).
pub fn list_or(items: &[&str]) -> String {
    join(items, "or")
}

fn join(items: &[&str], conjunction: &str) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.as_slice() {
        [] => "none".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {conjunction} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let keys = ["resource_group", "issuer", "kube_context"];
        assert_eq!(closest("isuer", keys), Some("issuer"));
        assert_eq!(closest("resource_groups", keys), Some("resource_group"));
        assert_eq!(closest("kube-context", keys), Some("kube_context"));
        assert_eq!(closest("colour", keys), None);
        assert_eq!(
            closest("orders-ap", ["orders-api", "payments"]),
            Some("orders-api")
        );
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(list(&["a"]), "`a`");
        assert_eq!(list(&["a", "b", "c"]), "`a`, `b` and `c`");
        assert_eq!(list_or(&["a", "b"]), "`a` or `b`");
    }
}
