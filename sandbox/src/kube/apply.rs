//! Field management: server-side apply and the `managedFields` of updates.
//!
//! Follows sigs.k8s.io/structured-merge-diff (`merge/update.go`: `Updater.Apply`, `prune`,
//! `addBackOwnedItems`, `update`, `Updater.Update`) and the apiserver's field manager
//! (`k8s.io/apimachinery/pkg/util/managedfields/internal`: `stripmeta.go`,
//! `managedfieldsupdater.go`, `fieldmanager.go`'s sort of entries, `conflict.go`), with the rules
//! of the "Server-Side Apply" documentation (kubernetes.io/docs/reference/using-api/server-side-apply):
//!
//! - an Apply owns exactly the fields its configuration sets: its leaves (scalars, lists, and
//!   empty maps);
//! - a field that the same manager applied before and no longer sends is removed, unless another
//!   manager owns it (or something below it);
//! - a field that another manager owns and that this apply adds or changes is a conflict; with
//!   `force` its ownership moves; the same value sent by two managers is shared ownership;
//! - an Update (create, merge patch) owns what it added or changed, and takes it from others.
//!
//! Simplifications: maps (`labels`, `annotations`, and any object) are granular; every list is
//! atomic (real `secrets`, `ownerReferences` and `finalizers` are keyed lists or sets).
//!
//! Paths are field names from the object's root; `Path.String()` of structured-merge-diff prints
//! them as `.metadata.labels.team`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::errors::Conflict;
use crate::state::ManagedFieldsEntry;

pub type Path = Vec<String>;
pub type FieldSet = BTreeSet<Path>;

/// `metadata` fields the field manager never records (stripmeta.go), besides `apiVersion`,
/// `kind` and `metadata` itself.
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Whether a path is outside field management: stripped metadata, or a field the resource resets
/// (`ignored`, e.g. a namespace's `status`).
fn untracked(path: &[String], ignored: &[&str]) -> bool {
    match path {
        [] => true,
        [first, ..] if first == "apiVersion" || first == "kind" => true,
        [first, ..] if ignored.contains(&first.as_str()) => true,
        [first] if first == "metadata" => true,
        [first, second, ..] if first == "metadata" => STRIPPED_METADATA.contains(&second.as_str()),
        _ => false,
    }
}

/// The fields an apply configuration sets: its leaves (nulls are not fields).
pub fn applied_fields(config: &Value, ignored: &[&str]) -> FieldSet {
    fn walk(value: &Value, path: &mut Path, ignored: &[&str], out: &mut FieldSet) {
        match value {
            Value::Null => {}
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    path.push(key.clone());
                    let skip = untracked(path, ignored) && !(path.len() == 1 && key == "metadata");
                    if !skip {
                        walk(child, path, ignored, out);
                    }
                    path.pop();
                }
            }
            _ => {
                if !untracked(path, ignored) {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = FieldSet::new();
    walk(config, &mut Vec::new(), ignored, &mut out);
    out
}

/// Every field of an object, maps and their members alike (what an Update can own).
fn all_fields(object: &Value, ignored: &[&str]) -> FieldSet {
    fn walk(value: &Value, path: &mut Path, ignored: &[&str], out: &mut FieldSet) {
        if !untracked(path, ignored) {
            out.insert(path.clone());
        }
        if let Value::Object(map) = value {
            for (key, child) in map {
                if child.is_null() {
                    continue;
                }
                path.push(key.clone());
                let skip = untracked(path, ignored) && !(path.len() == 1 && key == "metadata");
                if !skip {
                    walk(child, path, ignored, out);
                }
                path.pop();
            }
        }
    }
    let mut out = FieldSet::new();
    walk(object, &mut Vec::new(), ignored, &mut out);
    out
}

pub fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object()?.get(key))
        .filter(|v| !v.is_null())
}

fn set(value: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = value;
    for key in parents {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        let Value::Object(map) = current else { return };
        current = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !current.is_object() {
        *current = Value::Object(Map::new());
    }
    if let Value::Object(map) = current {
        map.insert(last.clone(), new);
    }
}

fn remove(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = value;
    for key in parents {
        match current.as_object_mut().and_then(|m| m.get_mut(key)) {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Some(map) = current.as_object_mut() {
        map.remove(last);
    }
}

/// What changed between two objects, as structured-merge-diff's `Comparison`: fields added,
/// removed, and leaves whose value changed.
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

fn compare(old: &Value, new: &Value, ignored: &[&str]) -> Comparison {
    let before = all_fields(old, ignored);
    let after = all_fields(new, ignored);
    let modified = before
        .intersection(&after)
        .filter(|p| match (get(old, p), get(new, p)) {
            (Some(Value::Object(_)), Some(Value::Object(_))) => false,
            (a, b) => a != b,
        })
        .cloned()
        .collect();
    Comparison {
        added: after.difference(&before).cloned().collect(),
        removed: before.difference(&after).cloned().collect(),
        modified,
    }
}

/// `Path.String()`: `.metadata.labels.team`.
pub fn path_string(path: &[String]) -> String {
    path.iter().map(|p| format!(".{p}")).collect()
}

/// The order `fieldpath.Set.Iterate` visits paths in: at each level, the set's members before
/// its children, each by name.
fn set_order(a: &Path, b: &Path) -> Ordering {
    let mut i = 0;
    loop {
        match (a.get(i), b.get(i)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let (a_member, b_member) = (a.len() == i + 1, b.len() == i + 1);
                if a_member != b_member {
                    return if a_member {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    };
                }
                if x != y {
                    return x.cmp(y);
                }
                i += 1;
            }
        }
    }
}

/// How a conflict names a manager (`printManager`): `"name"`, with `with subresource "s"`, and
/// for an Update `using v1` (the manager key it decodes carries no time, so the real server
/// never prints the `at <time>` part).
fn print_manager(entry: &ManagedFieldsEntry) -> String {
    let mut printed = format!("{:?}", entry.manager);
    if let Some(subresource) = &entry.subresource {
        printed.push_str(&format!(" with subresource {subresource:?}"));
    }
    if entry.operation == "Update" {
        printed.push_str(&format!(" using {}", entry.api_version));
    }
    printed
}

fn same_manager(entry: &ManagedFieldsEntry, manager: &str, operation: &str) -> bool {
    entry.manager == manager && entry.operation == operation && entry.subresource.is_none()
}

/// The result of an apply or an update: the new object (before the server's own fields are
/// set) and its managed fields.
pub struct Outcome {
    pub object: Value,
    pub managed: Vec<ManagedFieldsEntry>,
}

/// Server-side apply of `config` by `manager` onto `live` (a new object's skeleton when it does
/// not exist yet). Errors with the conflicts (in the order the real server lists them) unless
/// `force`.
pub fn apply(
    live: &Value,
    live_managed: &[ManagedFieldsEntry],
    config: &Value,
    manager: &str,
    force: bool,
    now_ms: u64,
    ignored: &[&str],
) -> Result<Outcome, Vec<Conflict>> {
    let applied = applied_fields(config, ignored);
    let previous: FieldSet = live_managed
        .iter()
        .find(|e| same_manager(e, manager, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut others: Vec<ManagedFieldsEntry> = live_managed
        .iter()
        .filter(|e| !same_manager(e, manager, "Apply"))
        .cloned()
        .collect();

    // Merge: every applied leaf takes the configuration's value; an empty map only makes sure
    // the map exists.
    let mut merged = live.clone();
    for path in &applied {
        let Some(value) = get(config, path) else {
            continue;
        };
        match value {
            Value::Object(map) if map.is_empty() => {
                if !get(&merged, path).is_some_and(Value::is_object) {
                    set(&mut merged, path, Value::Object(Map::new()));
                }
            }
            other => set(&mut merged, path, other.clone()),
        }
    }

    // Prune what this manager applied last time and no longer does, unless someone else (or
    // this apply) owns it or something below it.
    let owned_elsewhere = |path: &Path| {
        others
            .iter()
            .flat_map(|e| e.fields.iter())
            .chain(applied.iter())
            .any(|owned| owned.starts_with(path))
    };
    let pruned: Vec<Path> = previous
        .difference(&applied)
        .filter(|p| !owned_elsewhere(p))
        .cloned()
        .collect();
    for path in &pruned {
        remove(&mut merged, path);
    }

    // Conflicts: fields of other managers this apply adds or changes.
    let comparison = compare(live, &merged, ignored);
    let changed: FieldSet = comparison
        .added
        .union(&comparison.modified)
        .cloned()
        .collect();
    let mut conflicts: Vec<(String, Path, usize)> = Vec::new();
    for (index, entry) in others.iter().enumerate() {
        for path in entry.fields.intersection(&changed) {
            conflicts.push((print_manager(entry), path.clone(), index));
        }
    }
    if !conflicts.is_empty() {
        if !force {
            conflicts.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| set_order(&a.1, &b.1)));
            return Err(conflicts
                .into_iter()
                .map(|(manager, path, _)| Conflict {
                    manager,
                    path: path_string(&path),
                })
                .collect());
        }
        for (_, path, index) in &conflicts {
            others[*index].fields.remove(path);
        }
    }
    others.retain(|e| !e.fields.is_empty());

    normalize(&mut merged);
    let object_changed = merged != *live;
    if !applied.is_empty() {
        let time_ms = live_managed
            .iter()
            .find(|e| same_manager(e, manager, "Apply"))
            .filter(|_| !object_changed)
            .map_or(now_ms, |e| e.time_ms);
        others.push(ManagedFieldsEntry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: "v1".into(),
            time_ms,
            subresource: None,
            fields: applied,
        });
    }
    Ok(Outcome {
        object: merged,
        managed: others,
    })
}

/// The managed fields after an Update (create, merge patch) by `manager` from `old` (None for a
/// create) to `new`: the manager owns what it added or changed, other managers lose it, and
/// removed fields belong to no one.
pub fn update(
    old: Option<&Value>,
    new: &Value,
    live_managed: &[ManagedFieldsEntry],
    manager: &str,
    now_ms: u64,
    ignored: &[&str],
) -> Vec<ManagedFieldsEntry> {
    let empty = json!({});
    let comparison = compare(old.unwrap_or(&empty), new, ignored);
    let taken: FieldSet = comparison
        .added
        .union(&comparison.modified)
        .cloned()
        .collect();
    let mut entries: Vec<ManagedFieldsEntry> = Vec::new();
    let mut own: Option<ManagedFieldsEntry> = None;
    for entry in live_managed {
        if same_manager(entry, manager, "Update") {
            own = Some(entry.clone());
            continue;
        }
        let mut entry = entry.clone();
        entry.fields = entry
            .fields
            .difference(&taken)
            .filter(|p| !comparison.removed.contains(*p))
            .cloned()
            .collect();
        if !entry.fields.is_empty() {
            entries.push(entry);
        }
    }
    let mut own = own.unwrap_or_else(|| ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: "Update".into(),
        api_version: "v1".into(),
        time_ms: now_ms,
        subresource: None,
        fields: FieldSet::new(),
    });
    own.fields = own
        .fields
        .difference(&comparison.removed)
        .cloned()
        .chain(taken.iter().cloned())
        .collect();
    if old.is_none_or(|old| old != new) {
        own.time_ms = now_ms;
    }
    if !own.fields.is_empty() {
        entries.push(own);
    }
    entries
}

/// What Go's `omitempty` does to a stored object: no nulls, no empty `labels`, `annotations`,
/// `finalizers`, `ownerReferences`, and no empty top-level lists.
pub fn normalize(object: &mut Value) {
    fn drop_nulls(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.retain(|_, v| !v.is_null());
                map.values_mut().for_each(drop_nulls);
            }
            Value::Array(items) => items.iter_mut().for_each(drop_nulls),
            _ => {}
        }
    }
    fn empty(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.is_empty(),
            Value::Array(items) => items.is_empty(),
            Value::String(s) => s.is_empty(),
            _ => false,
        }
    }
    drop_nulls(object);
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
            "generateName",
        ] {
            if metadata.get(field).is_some_and(empty) {
                metadata.remove(field);
            }
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.retain(|_, v| !v.as_array().is_some_and(Vec::is_empty));
    }
}

/// FieldsV1: `{"f:metadata":{"f:labels":{".":{},"f:a":{}}}}`, a field that is owned and has
/// owned fields below it carrying `"."`.
pub fn fields_v1(fields: &FieldSet) -> Value {
    #[derive(Default)]
    struct Node {
        member: bool,
        children: BTreeMap<String, Node>,
    }
    fn render(node: &Node) -> Value {
        let mut map = Map::new();
        if node.member && !node.children.is_empty() {
            map.insert(".".into(), json!({}));
        }
        for (name, child) in &node.children {
            map.insert(format!("f:{name}"), render(child));
        }
        Value::Object(map)
    }
    let mut root = Node::default();
    for path in fields {
        let mut node = &mut root;
        for name in path {
            node = node.children.entry(name.clone()).or_default();
        }
        node.member = true;
    }
    render(&root)
}

/// `metadata.managedFields` as served, sorted like `sortEncodedManagedFields` (operation, time,
/// manager, apiVersion, subresource).
pub fn managed_fields_json(entries: &[ManagedFieldsEntry]) -> Value {
    let mut sorted: Vec<&ManagedFieldsEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then((a.time_ms / 1000).cmp(&(b.time_ms / 1000)))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut entry = json!({
                    "manager": e.manager,
                    "operation": e.operation,
                    "apiVersion": e.api_version,
                    "time": super::kube_time(e.time_ms),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_v1(&e.fields),
                });
                if let Some(subresource) = &e.subresource {
                    entry["subresource"] = json!(subresource);
                }
                entry
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Path {
        p.split('.')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    fn account(labels: Value, annotations: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "n", "labels": labels, "annotations": annotations}})
    }

    fn live() -> Value {
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "n", "uid": "u"}})
    }

    #[test]
    fn an_apply_owns_the_leaves_it_sets() {
        let set = applied_fields(&account(json!({"a": "1"}), json!({})), &[]);
        assert_eq!(
            set,
            FieldSet::from([path("metadata.annotations"), path("metadata.labels.a")])
        );
        assert_eq!(
            fields_v1(&set),
            json!({"f:metadata": {"f:annotations": {}, "f:labels": {"f:a": {}}}})
        );
        let update = fields_v1(&FieldSet::from([
            path("metadata.labels"),
            path("metadata.labels.q"),
        ]));
        assert_eq!(
            update,
            json!({"f:metadata": {"f:labels": {".": {}, "f:q": {}}}})
        );
    }

    #[test]
    fn apply_conflicts_forces_shares_and_prunes() {
        let first = apply(
            &live(),
            &[],
            &account(json!({"a": "1", "z": "1"}), json!(null)),
            "m1",
            false,
            1000,
            &[],
        )
        .ok()
        .unwrap();
        let second = apply(
            &first.object,
            &first.managed,
            &account(json!(null), json!({"b": "1"})),
            "m2",
            false,
            2000,
            &[],
        )
        .ok()
        .unwrap();
        let refused = apply(
            &second.object,
            &second.managed,
            &account(json!({"a": "2", "z": "2"}), json!({"b": "2"})),
            "m3",
            false,
            3000,
            &[],
        )
        .err()
        .unwrap();
        let printed: Vec<(String, String)> = refused
            .iter()
            .map(|c| (c.manager.clone(), c.path.clone()))
            .collect();
        assert_eq!(
            printed,
            [
                ("\"m1\"".to_string(), ".metadata.labels.a".to_string()),
                ("\"m1\"".to_string(), ".metadata.labels.z".to_string()),
                ("\"m2\"".to_string(), ".metadata.annotations.b".to_string()),
            ]
        );
        // Forced: a moves to m3; b is shared (same value).
        let forced = apply(
            &second.object,
            &second.managed,
            &account(json!({"a": "2"}), json!({"b": "1"})),
            "m3",
            true,
            3000,
            &[],
        )
        .ok()
        .unwrap();
        assert_eq!(
            forced.object["metadata"]["labels"],
            json!({"a": "2", "z": "1"})
        );
        let m1 = forced.managed.iter().find(|e| e.manager == "m1").unwrap();
        assert_eq!(m1.fields, FieldSet::from([path("metadata.labels.z")]));
        // m1 applies nothing: z goes, and so does m1's entry.
        let emptied = apply(
            &forced.object,
            &forced.managed,
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}}),
            "m1",
            false,
            4000,
            &[],
        )
        .ok()
        .unwrap();
        assert_eq!(emptied.object["metadata"]["labels"], json!({"a": "2"}));
        assert!(emptied.managed.iter().all(|e| e.manager != "m1"));
    }

    #[test]
    fn a_map_another_manager_applied_empty_conflicts_when_added() {
        // As the real server: m1 owns `.metadata.labels` (applied `{}`), so adding the map is a
        // conflict with m1.
        let first = apply(
            &live(),
            &[],
            &account(json!({}), json!(null)),
            "m1",
            false,
            1000,
            &[],
        )
        .ok()
        .unwrap();
        let mut stored = first.object.clone();
        remove(&mut stored, &path("metadata.labels"));
        let refused = apply(
            &stored,
            &first.managed,
            &account(json!({"x": "y"}), json!(null)),
            "m3",
            false,
            2000,
            &[],
        )
        .err()
        .unwrap();
        assert_eq!(refused[0].path, ".metadata.labels");
    }

    #[test]
    fn updates_take_what_they_change() {
        let created = json!({"metadata": {"name": "a", "labels": {"q": "r"}}});
        let managed = update(None, &created, &[], "curl", 1000, &[]);
        assert_eq!(
            managed[0].fields,
            FieldSet::from([path("metadata.labels"), path("metadata.labels.q")])
        );
        assert_eq!(managed[0].operation, "Update");
    }

    #[test]
    fn set_order_lists_members_first() {
        let mut paths = vec![path("metadata.a.b"), path("metadata.x"), path("metadata.a")];
        paths.sort_by(set_order);
        assert_eq!(
            paths,
            [path("metadata.a"), path("metadata.x"), path("metadata.a.b")]
        );
    }
}
