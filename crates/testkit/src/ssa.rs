//! Field ownership and merging: server-side apply, strategic merge patch and merge patch.
//!
//! The fake has no OpenAPI schema, so list semantics come from a heuristic on the field name and the items
//! (see [`classify`]): lists of objects that all carry the key field(s) merge by key, `finalizers` is a set,
//! every other list is atomic. Ownership is tracked per manager as a set of paths; unlike the real
//! structured-merge-diff, a set also contains every ancestor of an owned field, so "someone else still owns
//! something below this map" is a plain set lookup.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Seg {
    /// A map key.
    Field(String),
    /// An item of a keyed list, identified by the canonical JSON of its key fields.
    Key(String),
    /// A value of a set list, as JSON.
    Set(String),
}

/// A path from the object root.
pub(crate) type Path = Vec<Seg>;
/// Paths a manager owns.
pub(crate) type FieldSet = BTreeSet<Path>;

/// Kind of write that gave a manager its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update, or a non-apply patch.
    Update,
}

/// The fields one manager owns on one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manager {
    pub name: String,
    pub operation: Operation,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

/// Which part of an object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource; `.status` is excluded when the type has a status subresource.
    Main { status_subresource: bool },
    /// The `status` subresource: only `.status`.
    Status,
    /// Everything (direct test writes).
    All,
}

impl Scope {
    fn includes_status(self) -> bool {
        !matches!(self, Scope::Main { status_subresource: true })
    }
}

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// Items are identified by these key fields.
    Map(&'static [&'static str]),
    /// Scalar items, merged as a set.
    Set,
    /// Replaced as a whole.
    Atomic,
}

/// Lists that are atomic in Kubernetes although their items carry a `name`.
const ATOMIC_LISTS: &[&str] = &["subjects", "tolerations"];
/// Scalar lists merged as sets.
const SET_LISTS: &[&str] = &["finalizers"];

/// Key fields to try, in order, for a list under `field`.
fn key_candidates(field: &str) -> &'static [&'static [&'static str]] {
    match field {
        "ports" => &[&["containerPort", "protocol"], &["port", "protocol"], &["name"]],
        "volumeMounts" => &[&["mountPath"]],
        "volumeDevices" => &[&["devicePath"]],
        "ownerReferences" => &[&["uid"]],
        "conditions" => &[&["type"]],
        "hostAliases" => &[&["ip"]],
        "topologySpreadConstraints" => &[&["topologyKey", "whenUnsatisfiable"]],
        _ => &[&["name"]],
    }
}

/// Classifies a list by its field name and items.
pub(crate) fn classify(field: &str, items: &[Value]) -> ListKind {
    if items.is_empty() || ATOMIC_LISTS.contains(&field) {
        return ListKind::Atomic;
    }
    if SET_LISTS.contains(&field) && items.iter().all(Value::is_string) {
        let unique: BTreeSet<String> = items.iter().map(Value::to_string).collect();
        return if unique.len() == items.len() { ListKind::Set } else { ListKind::Atomic };
    }
    key_candidates(field).iter().copied().find(|keys| unique_keys(items, keys)).map_or(ListKind::Atomic, ListKind::Map)
}

/// Whether every item has the primary key and no two items share a key.
fn unique_keys(items: &[Value], keys: &[&str]) -> bool {
    let mut seen = BTreeSet::new();
    items.iter().all(|item| item_key(item, keys).is_some_and(|k| seen.insert(k)))
}

/// Classifies two versions of the same list; disagreement means atomic.
pub(crate) fn classify_pair(field: &str, a: &[Value], b: &[Value]) -> ListKind {
    match (classify(field, a), classify(field, b)) {
        (kind, _) if b.is_empty() => kind,
        (_, kind) if a.is_empty() => kind,
        (ka, kb) if ka == kb => ka,
        _ => ListKind::Atomic,
    }
}

/// Value of a key field, with the API defaults that matter for keys.
fn key_value(item: &Value, field: &str) -> Value {
    item.get(field).cloned().unwrap_or_else(|| match field {
        "protocol" => Value::String("TCP".to_string()),
        _ => Value::Null,
    })
}

/// Canonical key of a keyed-list item; `None` when the primary key is missing.
pub(crate) fn item_key(item: &Value, keys: &[&str]) -> Option<String> {
    let first = keys.first()?;
    item.as_object()?.get(*first)?;
    let key: Map<String, Value> = keys.iter().map(|k| ((*k).to_string(), key_value(item, k))).collect();
    Some(Value::Object(key).to_string())
}

/// Whether a list item has the given canonical key.
fn item_matches(item: &Value, key: &str) -> bool {
    match serde_json::from_str::<Map<String, Value>>(key) {
        Ok(fields) => item.is_object() && fields.iter().all(|(f, v)| key_value(item, f) == *v),
        Err(_) => false,
    }
}

/// The part of an object field ownership applies to (metadata only labels, annotations,
/// finalizers and ownerReferences; `.status` depending on scope).
pub(crate) fn scoped(obj: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    let Some(map) = obj.as_object() else {
        return Value::Object(out);
    };
    for (k, v) in map {
        let keep = match k.as_str() {
            "apiVersion" | "kind" => false,
            "status" => scope.includes_status(),
            _ => scope != Scope::Status,
        };
        if !keep {
            continue;
        }
        if k == "metadata" {
            if let Some(meta) = managed_metadata(v) {
                out.insert(k.clone(), meta);
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The metadata fields a manager can own.
fn managed_metadata(meta: &Value) -> Option<Value> {
    let map: Map<String, Value> = ["labels", "annotations", "finalizers", "ownerReferences"]
        .iter()
        .filter_map(|k| meta.get(*k).map(|v| ((*k).to_string(), v.clone())))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

/// Every path in a value (maps, keyed-list items, set values; atomic lists and scalars are leaves).
pub(crate) fn field_set(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(v, "", &mut Vec::new(), &mut out);
    out
}

fn collect(v: &Value, field: &str, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(Seg::Field(k.clone()));
                out.insert(prefix.clone());
                collect(child, k, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => match classify(field, items) {
            ListKind::Map(keys) => {
                for item in items {
                    if let Some(key) = item_key(item, keys) {
                        prefix.push(Seg::Key(key));
                        out.insert(prefix.clone());
                        collect(item, "", prefix, out);
                        prefix.pop();
                    }
                }
            }
            ListKind::Set => {
                for item in items {
                    prefix.push(Seg::Set(item.to_string()));
                    out.insert(prefix.clone());
                    prefix.pop();
                }
            }
            ListKind::Atomic => {}
        },
        _ => {}
    }
}

/// The value at a path.
pub(crate) fn value_at<'a>(v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Field(k) => cur.get(k.as_str()),
        Seg::Key(key) => cur.as_array()?.iter().find(|i| item_matches(i, key)),
        Seg::Set(s) => {
            let value = serde_json::from_str::<Value>(s).ok()?;
            cur.as_array()?.iter().find(|i| **i == value)
        }
    })
}

fn value_at_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |cur, seg| match seg {
        Seg::Field(k) => cur.get_mut(k.as_str()),
        Seg::Key(key) => cur.as_array_mut()?.iter_mut().find(|i| item_matches(i, key)),
        Seg::Set(_) => None,
    })
}

/// Removes the field, list item or set value at `path` (no-op when absent).
pub(crate) fn remove_path(obj: &mut Value, path: &[Seg]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let Some(parent) = value_at_mut(obj, parents) else {
        return;
    };
    match last {
        Seg::Field(k) => {
            if let Some(map) = parent.as_object_mut() {
                map.remove(k);
            }
        }
        Seg::Key(key) => {
            if let Some(items) = parent.as_array_mut() {
                items.retain(|i| !item_matches(i, key));
            }
        }
        Seg::Set(s) => {
            if let (Some(items), Ok(value)) = (parent.as_array_mut(), serde_json::from_str::<Value>(s)) {
                items.retain(|i| *i != value);
            }
        }
    }
}

/// Merges an applied configuration into the live object: maps recursively, keyed lists by key,
/// sets by union, everything else replaced.
pub(crate) fn merge_apply(live: &Value, applied: &Value, field: &str) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            let mut out = l.clone();
            for (k, av) in a {
                let merged = match l.get(k) {
                    Some(lv) => merge_apply(lv, av, k),
                    None => av.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => Value::Array(merge_lists(l, a, field, merge_apply)),
        _ => applied.clone(),
    }
}

/// Merges two versions of a list according to its kind, merging matching items with `merge_item`.
fn merge_lists(
    live: &[Value],
    other: &[Value],
    field: &str,
    merge_item: fn(&Value, &Value, &str) -> Value,
) -> Vec<Value> {
    match classify_pair(field, live, other) {
        ListKind::Map(keys) => {
            let mut out = live.to_vec();
            for item in other {
                let key = item_key(item, keys);
                let pos =
                    key.as_deref().and_then(|k| out.iter().position(|li| item_key(li, keys).as_deref() == Some(k)));
                match pos {
                    Some(pos) => out[pos] = merge_item(&out[pos], item, ""),
                    None => out.push(item.clone()),
                }
            }
            out
        }
        ListKind::Set => {
            let mut out = live.to_vec();
            out.extend(other.iter().filter(|v| !live.contains(v)).cloned());
            out
        }
        ListKind::Atomic => other.to_vec(),
    }
}

/// RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Strategic merge patch without a schema: like a merge patch, but keyed lists (see [`classify`]) merge by
/// key, `finalizers` merges as a set, an item `{"$patch": "delete", <key>}` removes the matching item, and
/// other `$` directives are ignored.
pub(crate) fn strategic_merge(target: &Value, patch: &Value, field: &str) -> Value {
    match (target, patch) {
        (_, Value::Object(p)) => {
            let mut out = target.as_object().cloned().unwrap_or_default();
            for (k, v) in p {
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = strategic_merge(out.get(k).unwrap_or(&Value::Null), v, k);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (Value::Array(t), Value::Array(p)) => {
            let (deletes, items): (Vec<Value>, Vec<Value>) =
                p.iter().cloned().partition(|i| i.get("$patch").and_then(Value::as_str) == Some("delete"));
            let mut out = merge_lists(t, &items, field, strategic_merge);
            if let ListKind::Map(keys) = classify_pair(field, t, &deletes) {
                let gone: BTreeSet<String> = deletes.iter().filter_map(|d| item_key(d, keys)).collect();
                out.retain(|i| item_key(i, keys).is_none_or(|k| !gone.contains(&k)));
            }
            Value::Array(out)
        }
        _ => patch.clone(),
    }
}

/// A field another manager owns with a different value than the applier sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub manager: String,
    pub path: Path,
}

/// Server-side apply of `config` by `manager` onto `live`.
///
/// Returns the new object and managers, or the conflicts when `force` is false.
pub(crate) fn apply(
    live: &Value,
    managers: &[Manager],
    config: &Value,
    manager: &str,
    force: bool,
    scope: Scope,
) -> Result<(Value, Vec<Manager>), Vec<Conflict>> {
    let applied = scoped(config, scope);
    let new_set = field_set(&applied);
    let mut managers = managers.to_vec();
    let conflicts = find_conflicts(&scoped(live, Scope::All), &applied, &new_set, &managers, manager);
    if !conflicts.is_empty() && !force {
        return Err(conflicts.into_iter().map(|(_, c)| c).collect());
    }
    for (index, conflict) in &conflicts {
        managers[*index].fields.retain(|p| !p.starts_with(&conflict.path));
    }
    let subresource = (scope == Scope::Status).then(|| "status".to_string());
    let me = entry_index(&mut managers, manager, Operation::Apply, subresource);
    let old_set = std::mem::take(&mut managers[me].fields);
    let others: FieldSet = managers.iter().flat_map(|m| m.fields.iter().cloned()).collect();
    let mut obj = live.clone();
    for path in old_set.difference(&new_set) {
        if !others.contains(path) && !is_key_field(path) {
            remove_path(&mut obj, path);
        }
    }
    let obj = merge_apply(&obj, &applied, "");
    managers[me].fields = new_set;
    Ok((obj, managers))
}

/// Whether the path is a key field of a keyed-list item: it goes with the item, never on its own (an item
/// without its key would turn the whole list atomic).
fn is_key_field(path: &[Seg]) -> bool {
    match path {
        [.., Seg::Key(key), Seg::Field(field)] => {
            serde_json::from_str::<Map<String, Value>>(key).is_ok_and(|fields| fields.contains_key(field))
        }
        _ => false,
    }
}

/// Leaf fields of the applied config whose live value differs and that another manager owns.
fn find_conflicts(
    live: &Value,
    applied: &Value,
    new_set: &FieldSet,
    managers: &[Manager],
    manager: &str,
) -> Vec<(usize, Conflict)> {
    let mut out = Vec::new();
    for path in leaves(new_set) {
        let (Some(av), Some(lv)) = (value_at(applied, path), value_at(live, path)) else {
            continue;
        };
        if av == lv || !comparable_leaf(path, av, lv) {
            continue;
        }
        for (index, m) in managers.iter().enumerate() {
            if m.name != manager && m.fields.contains(path) {
                out.push((index, Conflict { manager: m.name.clone(), path: path.clone() }));
            }
        }
    }
    out
}

/// Maps and non-atomic lists never conflict as a whole, only their children do.
fn comparable_leaf(path: &[Seg], applied: &Value, live: &Value) -> bool {
    match (applied, live) {
        (Value::Object(_), _) | (_, Value::Object(_)) => false,
        (Value::Array(a), Value::Array(l)) => {
            let field = match path.last() {
                Some(Seg::Field(f)) => f.as_str(),
                _ => "",
            };
            classify_pair(field, l, a) == ListKind::Atomic
        }
        _ => true,
    }
}

/// Paths of a set that have no descendants in it (the set is sorted, so descendants follow their parent).
fn leaves(set: &FieldSet) -> impl Iterator<Item = &Path> {
    let mut iter = set.iter().peekable();
    std::iter::from_fn(move || {
        loop {
            let path = iter.next()?;
            let has_child = iter.peek().is_some_and(|next| next.starts_with(path));
            if !has_child {
                return Some(path);
            }
        }
    })
}

/// Index of the manager entry (name, operation, subresource), created when missing.
fn entry_index(managers: &mut Vec<Manager>, name: &str, operation: Operation, subresource: Option<String>) -> usize {
    let found =
        managers.iter().position(|m| m.name == name && m.operation == operation && m.subresource == subresource);
    found.unwrap_or_else(|| {
        managers.push(Manager { name: name.to_string(), operation, subresource, fields: FieldSet::new() });
        managers.len() - 1
    })
}

/// Records a non-apply write: `manager` takes every field whose value it changed, others lose them.
pub(crate) fn record_update(
    managers: &mut Vec<Manager>,
    old: &Value,
    new: &Value,
    manager: &str,
    subresource: Option<String>,
) {
    let mut changed = FieldSet::new();
    diff(Some(&scoped(old, Scope::All)), &scoped(new, Scope::All), "", &mut Vec::new(), &mut changed);
    if changed.is_empty() {
        return;
    }
    for m in managers.iter_mut() {
        m.fields.retain(|p| !changed.contains(p));
    }
    let me = entry_index(managers, manager, Operation::Update, subresource);
    let ancestors: Vec<Path> = changed.iter().flat_map(|p| (1..p.len()).map(move |n| p[..n].to_vec())).collect();
    managers[me].fields.extend(changed);
    managers[me].fields.extend(ancestors);
}

/// Paths whose value differs between `old` and `new` (whole new subtrees included).
fn diff(old: Option<&Value>, new: &Value, field: &str, prefix: &mut Path, out: &mut FieldSet) {
    if old == Some(new) {
        return;
    }
    match (old, new) {
        (Some(Value::Object(o)), Value::Object(n)) => {
            for (k, nv) in n {
                prefix.push(Seg::Field(k.clone()));
                diff(o.get(k), nv, k, prefix, out);
                prefix.pop();
            }
        }
        (Some(Value::Array(o)), Value::Array(n)) => match classify_pair(field, o, n) {
            ListKind::Map(keys) => {
                for item in n {
                    let Some(key) = item_key(item, keys) else {
                        continue;
                    };
                    let old_item = o.iter().find(|i| item_matches(i, &key));
                    prefix.push(Seg::Key(key));
                    diff(old_item, item, "", prefix, out);
                    prefix.pop();
                }
            }
            ListKind::Set => {
                for item in n.iter().filter(|i| !o.contains(i)) {
                    prefix.push(Seg::Set(item.to_string()));
                    out.insert(prefix.clone());
                    prefix.pop();
                }
            }
            ListKind::Atomic => {
                out.insert(prefix.clone());
            }
        },
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            collect(new, field, prefix, out);
        }
    }
}

/// Drops owned paths that no longer exist and managers left with nothing.
pub(crate) fn prune(managers: &mut Vec<Manager>, obj: &Value) {
    let present = field_set(&scoped(obj, Scope::All));
    for m in managers.iter_mut() {
        m.fields.retain(|p| present.contains(p));
    }
    managers.retain(|m| !m.fields.is_empty());
}

/// `.spec.containers[{"name":"x"}].image` style rendering of a path.
pub(crate) fn render_path(path: &[Seg]) -> String {
    path.iter()
        .map(|seg| match seg {
            Seg::Field(k) => format!(".{k}"),
            Seg::Key(k) => format!("[{k}]"),
            Seg::Set(v) => format!("[={v}]"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAIN: Scope = Scope::Main { status_subresource: true };

    fn apply_ok(live: &Value, managers: &[Manager], config: Value, who: &str) -> (Value, Vec<Manager>) {
        let (obj, mut managers) = apply(live, managers, &config, who, false, MAIN).unwrap();
        prune(&mut managers, &obj);
        (obj, managers)
    }

    #[test]
    fn containers_env_and_ports_merge_by_key() {
        let live = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "E1", "value": "1"}], "ports": [{"containerPort": 80}]}
        ]}});
        let config = json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "E2", "value": "2"}], "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]},
            {"name": "b", "image": "y"}
        ]}});
        let merged = merge_apply(&live, &config, "");
        assert_eq!(
            merged,
            json!({"spec": {"containers": [
                {"name": "a", "image": "x",
                 "env": [{"name": "E1", "value": "1"}, {"name": "E2", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]},
                {"name": "b", "image": "y"}
            ]}})
        );
    }

    #[test]
    fn lists_without_keys_and_subjects_are_atomic() {
        assert_eq!(classify("args", &[json!("a")]), ListKind::Atomic);
        assert_eq!(classify("subjects", &[json!({"name": "a"})]), ListKind::Atomic);
        assert_eq!(classify("rules", &[json!({"verbs": ["get"]})]), ListKind::Atomic);
        assert_eq!(classify("env", &[json!({"name": "a"}), json!({"name": "a"})]), ListKind::Atomic);
        assert_eq!(classify("finalizers", &[json!("a")]), ListKind::Set);
        assert_eq!(
            classify("ports", &[json!({"port": 443, "targetPort": 8443})]),
            ListKind::Map(&["port", "protocol"])
        );
    }

    #[test]
    fn apply_removes_only_fields_nobody_else_owns() {
        let (obj, managers) =
            apply_ok(&json!({}), &[], json!({"spec": {"a": 1, "b": {"c": 2}, "list": [{"name": "x", "v": 1}]}}), "op");
        let mut managers = managers;
        let mut edited = obj.clone();
        edited["spec"]["b"]["d"] = json!(3);
        record_update(&mut managers, &obj, &edited, "other", None);
        let (obj, _) = apply_ok(&edited, &managers, json!({"spec": {"a": 1}}), "op");
        assert_eq!(obj, json!({"spec": {"a": 1, "b": {"d": 3}}}));
    }

    #[test]
    fn apply_conflicts_with_other_owner_unless_forced() {
        let (obj, managers) = apply_ok(&json!({}), &[], json!({"spec": {"replicas": 1}}), "a");
        let err = apply(&obj, &managers, &json!({"spec": {"replicas": 2}}), "b", false, MAIN).unwrap_err();
        assert_eq!(err[0].manager, "a");
        assert_eq!(render_path(&err[0].path), ".spec.replicas");
        let (obj, managers) = apply(&obj, &managers, &json!({"spec": {"replicas": 2}}), "b", true, MAIN).unwrap();
        assert_eq!(obj["spec"]["replicas"], 2);
        // "a" lost the field: applying without it no longer removes it
        let (obj, _) = apply_ok(&obj, &managers, json!({"spec": {"other": true}}), "a");
        assert_eq!(obj["spec"]["replicas"], 2);
    }

    #[test]
    fn same_value_is_shared_not_a_conflict() {
        let (obj, managers) = apply_ok(&json!({}), &[], json!({"spec": {"x": 1}}), "a");
        let (obj, managers) = apply_ok(&obj, &managers, json!({"spec": {"x": 1}}), "b");
        let (obj, _) = apply_ok(&obj, &managers, json!({"spec": {}}), "a");
        assert_eq!(obj["spec"]["x"], 1, "still owned by b");
    }

    #[test]
    fn status_scope_is_separate() {
        let live = json!({"spec": {"a": 1}, "status": {"s": 1}});
        let applied = scoped(
            &json!({"metadata": {"name": "n", "labels": {"l": "v"}}, "spec": {"a": 2}, "status": {"s": 2}}),
            MAIN,
        );
        assert_eq!(applied, json!({"metadata": {"labels": {"l": "v"}}, "spec": {"a": 2}}));
        assert_eq!(scoped(&live, Scope::Status), json!({"status": {"s": 1}}));
    }

    #[test]
    fn strategic_merge_merges_named_items_and_deletes() {
        let target = json!({"webhooks": [{"name": "a", "clientConfig": {"service": {"name": "s"}}}, {"name": "b"}]});
        let patch = json!({"webhooks": [{"name": "a", "clientConfig": {"caBundle": "Q0E="}}, {"name": "b", "$patch": "delete"}]});
        assert_eq!(
            strategic_merge(&target, &patch, ""),
            json!({"webhooks": [{"name": "a", "clientConfig": {"service": {"name": "s"}, "caBundle": "Q0E="}}]})
        );
    }

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        merge_patch(&mut target, &json!({"a": {"b": null, "d": 3}, "l": [3]}));
        assert_eq!(target, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
    }
}
