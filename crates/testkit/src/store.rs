//! Object storage with API-server semantics: resourceVersion, uid, generation, finalizers, garbage
//! collection, field ownership, and the event history watches replay from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::error::ApiError;
use crate::registry::{Registry, ResourceKey, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::ssa::{self, Conflict, Manager, Scope};

/// One stored object with its field managers.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub obj: Value,
    pub managers: Vec<Manager>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sub {
    /// The main resource (ignores `.status` when the type has a status subresource).
    Main,
    /// The `status` subresource (changes only `.status`).
    Status,
    /// A direct test write: everything.
    All,
}

/// Who writes and through which endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteCtx<'a> {
    pub manager: &'a str,
    pub sub: Sub,
}

/// Kind of non-apply patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Strategic,
    Json,
}

/// The parts of `DeleteOptions` the fake honours.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOpts {
    pub orphan: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One entry of the event history.
#[derive(Debug)]
struct Change {
    rv: u64,
    key: ResourceKey,
    namespace: String,
    kind: ChangeType,
    object: Value,
    old: Option<Value>,
}

/// What a watch selects.
#[derive(Debug, Clone)]
pub(crate) struct WatchFilter {
    pub key: ResourceKey,
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub meta_only: bool,
    pub bookmarks: bool,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WatchStart {
    /// No (or `0`) resourceVersion: synthetic ADDED for every current object, optionally followed by the
    /// `k8s.io/initial-events-end` bookmark (`sendInitialEvents=true`).
    Now { initial_events_end: bool },
    /// Events after this resourceVersion, from history (410 when compacted away).
    After(u64),
}

struct Watcher {
    filter: WatchFilter,
    tx: UnboundedSender<Bytes>,
}

impl WatchFilter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// The event line this watcher gets for a change, if any (selector transitions become ADDED/DELETED).
    fn line_for(&self, change: &Change) -> Option<Bytes> {
        if change.key != self.key || self.namespace.as_ref().is_some_and(|ns| *ns != change.namespace) {
            return None;
        }
        let now = self.matches(&change.object);
        let before = change.old.as_ref().is_some_and(|o| self.matches(o));
        let ty = match (change.kind, before, now) {
            (ChangeType::Added, _, true) => "ADDED",
            (ChangeType::Modified, true, true) => "MODIFIED",
            (ChangeType::Modified, false, true) => "ADDED",
            (ChangeType::Modified, true, false) | (ChangeType::Deleted, _, true) => "DELETED",
            _ => return None,
        };
        Some(event_line(ty, &present(&change.object, self.meta_only)))
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if initial_events_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        let object = json!({ "kind": self.kind, "apiVersion": self.api_version, "metadata": metadata });
        event_line("BOOKMARK", &object)
    }
}

/// A watch event as one JSON line.
fn event_line(ty: &str, object: &Value) -> Bytes {
    let mut line = json!({ "type": ty, "object": object }).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// The object as the client asked for it: whole, or `PartialObjectMetadata`.
pub(crate) fn present(obj: &Value, meta_only: bool) -> Value {
    if meta_only {
        json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
        })
    } else {
        obj.clone()
    }
}

/// The whole in-memory cluster state.
pub(crate) struct State {
    pub registry: Registry,
    objects: BTreeMap<ResourceKey, BTreeMap<(String, String), Stored>>,
    rv: u64,
    counter: u64,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Watches may resume from this resourceVersion or later.
    oldest_valid_rv: u64,
    watchers: Vec<Watcher>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl State {
    pub fn new(history_limit: usize) -> Self {
        Self {
            registry: Registry::builtin(),
            objects: BTreeMap::new(),
            rv: 0,
            counter: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            oldest_valid_rv: 0,
            watchers: Vec::new(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Receiver notified on every change (for wait helpers).
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn stored(&self, key: &ResourceKey, ns: &str, name: &str) -> Option<&Stored> {
        self.objects.get(key)?.get(&(ns.to_string(), name.to_string()))
    }

    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.stored(&rt.key(), scope_ns(rt, ns), name)
            .map(|s| s.obj.clone())
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Objects of a type, optionally in one namespace, matching the selectors.
    pub fn list(
        &self,
        key: &ResourceKey,
        ns: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> Vec<Value> {
        self.objects
            .get(key)
            .into_iter()
            .flat_map(|objs| objs.iter())
            .filter(|((obj_ns, _), _)| ns.is_none_or(|ns| ns == obj_ns))
            .map(|(_, s)| &s.obj)
            .filter(|obj| labels.matches(obj) && fields.matches(obj))
            .cloned()
            .collect()
    }

    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        ctx: WriteCtx<'_>,
    ) -> Result<Value, ApiError> {
        let ns = scope_ns(rt, ns);
        self.prepare_create(rt, ns, &mut obj, ctx.sub == Sub::All)?;
        let name = meta_str(&obj, "name").unwrap_or_default();
        if self.stored(&rt.key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        let mut managers = Vec::new();
        ssa::record_update(&mut managers, &json!({}), &obj, ctx.manager, sub_label(ctx.sub));
        ssa::prune(&mut managers, &obj);
        Ok(self.store_new(rt, ns, &name, obj, managers))
    }

    /// PUT: replaces the object (optimistic concurrency on `metadata.resourceVersion` when given).
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        body: Value,
        ctx: WriteCtx<'_>,
    ) -> Result<Value, ApiError> {
        let ns = scope_ns(rt, ns);
        let old = self.existing(rt, ns, name)?;
        check_type(rt, &body)?;
        check_body_name(rt, &body, ns, name)?;
        if let Some(rv) = meta_str(&body, "resourceVersion").filter(|rv| !rv.is_empty()) {
            check_rv(rt, &old.obj, name, &rv)?;
        }
        self.finish_update(rt, ns, name, old, body, ctx, None)
    }

    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        ctx: WriteCtx<'_>,
    ) -> Result<Value, ApiError> {
        let ns = scope_ns(rt, ns);
        let old = self.existing(rt, ns, name)?;
        let candidate = patched(&old.obj, kind, patch)?;
        if let Some(rv) = meta_str(&candidate, "resourceVersion") {
            check_rv(rt, &old.obj, name, &rv)?;
        }
        self.finish_update(rt, ns, name, old, candidate, ctx, None)
    }

    /// Server-side apply; returns the object and whether it was created.
    pub fn apply(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        config: &Value,
        ctx: WriteCtx<'_>,
        force: bool,
    ) -> Result<(Value, bool), ApiError> {
        let ns = scope_ns(rt, ns);
        check_type(rt, config)?;
        check_body_name(rt, config, ns, name)?;
        if config.get("apiVersion").is_none() || config.get("kind").is_none() {
            return Err(ApiError::bad_request("apiVersion and kind must be set in an apply configuration"));
        }
        let scope = ssa_scope(rt, ctx.sub);
        let Some(old) = self.stored(&rt.key(), ns, name).cloned() else {
            if ctx.sub == Sub::Status {
                return Err(ApiError::not_found(&rt.group, &rt.plural, name));
            }
            let skeleton = json!({ "metadata": { "name": name, "namespace": ns } });
            let (mut obj, mut managers) = ssa::apply(&skeleton, &[], config, ctx.manager, force, scope)
                .map_err(|c| conflict_error(rt, name, &c))?;
            self.prepare_create(rt, ns, &mut obj, false)?;
            ssa::prune(&mut managers, &obj);
            return Ok((self.store_new(rt, ns, name, obj, managers), true));
        };
        if let Some(rv) = meta_str(config, "resourceVersion") {
            check_rv(rt, &old.obj, name, &rv)?;
        }
        let (obj, managers) = ssa::apply(&old.obj, &old.managers, config, ctx.manager, force, scope)
            .map_err(|c| conflict_error(rt, name, &c))?;
        let obj = self.finish_update(rt, ns, name, old, obj, ctx, Some(managers))?;
        Ok((obj, false))
    }

    /// DELETE: marks for deletion when finalizers are present, removes (and collects dependents) otherwise.
    pub fn delete(&mut self, rt: &ResourceType, ns: &str, name: &str, opts: &DeleteOpts) -> Result<Value, ApiError> {
        let ns = scope_ns(rt, ns);
        let old = self.existing(rt, ns, name)?;
        check_preconditions(rt, &old.obj, name, opts)?;
        if has_finalizers(&old.obj) {
            if is_deleting(&old.obj) {
                return Ok(old.obj);
            }
            let mut obj = old.obj.clone();
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("deletionTimestamp".into(), Value::String(now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            bump_generation(&mut obj);
            return Ok(self.store_modified(rt, ns, name, old, obj, None));
        }
        Ok(self.remove(rt, ns, name, old.obj, opts.orphan))
    }

    /// Direct write: creates, or replaces keeping uid/creationTimestamp (status included).
    pub fn upsert(&mut self, rt: &ResourceType, obj: Value, manager: &str) -> Result<Value, ApiError> {
        let ns = meta_str(&obj, "namespace").unwrap_or_default();
        let ctx = WriteCtx { manager, sub: Sub::All };
        let existing =
            meta_str(&obj, "name").and_then(|n| self.stored(&rt.key(), scope_ns(rt, &ns), &n).cloned().map(|s| (n, s)));
        match existing {
            Some((name, old)) => self.finish_update(rt, scope_ns(rt, &ns), &name, old, obj, ctx, None),
            None => self.create(rt, &ns, obj, ctx),
        }
    }

    /// Managers of an object (for inspection).
    pub fn managers(&self, key: &ResourceKey, ns: &str, name: &str) -> Vec<Manager> {
        self.stored(key, ns, name).map(|s| s.managers.clone()).unwrap_or_default()
    }

    /// Starts a watch: the returned receiver gets JSON event lines until the watch is closed.
    pub fn watch(&mut self, filter: WatchFilter, start: WatchStart) -> UnboundedReceiver<Bytes> {
        let (tx, rx) = unbounded_channel();
        match start {
            WatchStart::After(rv) if rv < self.oldest_valid_rv => {
                let status = ApiError::new(410, format!("too old resource version: {rv} ({})", self.oldest_valid_rv))
                    .to_status();
                // The sender is dropped right after: the stream ends after the error like the real server's.
                let _ = tx.send(event_line("ERROR", &status));
                return rx;
            }
            WatchStart::After(rv) => {
                for change in self.history.iter().filter(|c| c.rv > rv) {
                    if let Some(line) = filter.line_for(change) {
                        let _ = tx.send(line);
                    }
                }
            }
            WatchStart::Now { initial_events_end } => {
                let current = self.list(&filter.key, filter.namespace.as_deref(), &filter.labels, &filter.fields);
                for obj in current {
                    let _ = tx.send(event_line("ADDED", &present(&obj, filter.meta_only)));
                }
                if initial_events_end {
                    let _ = tx.send(filter.bookmark(self.rv, true));
                }
            }
        }
        self.watchers.push(Watcher { filter, tx });
        rx
    }

    /// Forgets the event history: watches resuming from any earlier resourceVersion get 410 Expired.
    pub fn compact(&mut self) {
        self.rv += 1;
        self.history.clear();
        self.oldest_valid_rv = self.rv;
        let _ = self.changed.send(self.rv);
    }

    /// Ends every open watch stream (as an API server restart or timeout would).
    pub fn close_watches(&mut self) {
        self.watchers.clear();
    }

    /// Sends a BOOKMARK with the current resourceVersion to watches that allow bookmarks.
    pub fn send_bookmarks(&mut self) {
        let rv = self.rv;
        self.watchers.retain(|w| !w.filter.bookmarks || w.tx.send(w.filter.bookmark(rv, false)).is_ok());
    }

    /// Number of open watch streams.
    pub fn open_watches(&mut self) -> usize {
        self.watchers.retain(|w| !w.tx.is_closed());
        self.watchers.len()
    }

    fn existing(&self, rt: &ResourceType, ns: &str, name: &str) -> Result<Stored, ApiError> {
        self.stored(&rt.key(), ns, name).cloned().ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Fills server-set metadata of a new object.
    fn prepare_create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        obj: &mut Value,
        keep_status: bool,
    ) -> Result<(), ApiError> {
        check_type(rt, obj)?;
        convert_string_data(rt, obj);
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        };
        map.insert("apiVersion".into(), Value::String(rt.api_version()));
        map.insert("kind".into(), Value::String(rt.kind.clone()));
        if !keep_status && rt.status_subresource {
            map.remove("status");
        }
        let meta = map
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
        self.counter += 1;
        fill_create_metadata(rt, ns, meta, self.counter)
    }

    fn store_new(&mut self, rt: &ResourceType, ns: &str, name: &str, mut obj: Value, managers: Vec<Manager>) -> Value {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.objects
            .entry(rt.key())
            .or_default()
            .insert((ns.to_string(), name.to_string()), Stored { obj: obj.clone(), managers });
        self.after_write(rt, &obj);
        self.emit(rt, ns, ChangeType::Added, obj.clone(), None);
        obj
    }

    /// Common tail of every update-like write: normalise, record ownership, skip no-ops, bump generation,
    /// store (or remove when the last finalizer of a deleting object went away).
    #[allow(clippy::too_many_arguments)] // one call site per write kind; a struct would only rename them
    fn finish_update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        old: Stored,
        candidate: Value,
        ctx: WriteCtx<'_>,
        apply_managers: Option<Vec<Manager>>,
    ) -> Result<Value, ApiError> {
        if !candidate.is_object() {
            return Err(ApiError::bad_request("the object must be a JSON object"));
        }
        let mut new = normalize(rt, &old.obj, candidate, ctx.sub);
        convert_string_data(rt, &mut new);
        check_no_new_finalizers(&old.obj, &new)?;
        let mut managers = apply_managers.unwrap_or_else(|| {
            let mut managers = old.managers.clone();
            ssa::record_update(&mut managers, &old.obj, &new, ctx.manager, sub_label(ctx.sub));
            managers
        });
        ssa::prune(&mut managers, &new);
        if new == old.obj && managers == old.managers {
            return Ok(old.obj);
        }
        if spec_of(&old.obj) != spec_of(&new) {
            bump_generation(&mut new);
        }
        if is_deleting(&new) && !has_finalizers(&new) {
            return Ok(self.remove(rt, ns, name, new, false));
        }
        Ok(self.store_modified(rt, ns, name, old, new, Some(managers)))
    }

    fn store_modified(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        old: Stored,
        mut obj: Value,
        managers: Option<Vec<Manager>>,
    ) -> Value {
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        let stored = Stored { obj: obj.clone(), managers: managers.unwrap_or(old.managers) };
        self.objects.entry(rt.key()).or_default().insert((ns.to_string(), name.to_string()), stored);
        self.after_write(rt, &obj);
        self.emit(rt, ns, ChangeType::Modified, obj.clone(), Some(old.obj));
        obj
    }

    /// Removes an object for good, then its namespace contents (for namespaces) and dependents.
    fn remove(&mut self, rt: &ResourceType, ns: &str, name: &str, mut obj: Value, orphan: bool) -> Value {
        if let Some(objs) = self.objects.get_mut(&rt.key()) {
            objs.remove(&(ns.to_string(), name.to_string()));
        }
        self.rv += 1;
        set_rv(&mut obj, self.rv);
        self.emit(rt, ns, ChangeType::Deleted, obj.clone(), Some(obj.clone()));
        if rt.group.is_empty() && rt.plural == "namespaces" {
            self.delete_all_matching(|_, obj_ns, _| obj_ns == name);
        }
        if !orphan && let Some(uid) = meta_str(&obj, "uid") {
            self.collect_garbage(&uid);
        }
        obj
    }

    /// Background garbage collection: deletes objects whose owners are all gone.
    fn collect_garbage(&mut self, owner_uid: &str) {
        let uids: std::collections::BTreeSet<String> =
            self.objects.values().flat_map(|objs| objs.values()).filter_map(|s| meta_str(&s.obj, "uid")).collect();
        let registry = self.registry.clone();
        self.delete_all_matching(|key, _, obj| {
            let owners = resolvable_owners(&registry, key, obj);
            owners.contains(&owner_uid) && owners.iter().all(|uid| !uids.contains(*uid))
        });
    }

    /// Deletes (honouring finalizers) every object the predicate selects.
    fn delete_all_matching(&mut self, select: impl Fn(&ResourceKey, &str, &Value) -> bool) {
        let victims: Vec<(ResourceKey, String, String)> = self
            .objects
            .iter()
            .flat_map(|(key, objs)| objs.iter().map(move |((ns, name), s)| (key, ns, name, s)))
            .filter(|(key, ns, _, s)| select(key, ns, &s.obj))
            .map(|(key, ns, name, _)| (key.clone(), ns.clone(), name.clone()))
            .collect();
        for (key, ns, name) in victims {
            let rt = self
                .registry
                .get(&key)
                .cloned()
                .unwrap_or_else(|| ResourceType::namespaced(&key.group, "v1", "Unknown", &key.resource));
            // Already removed by an earlier cascade step: nothing to do.
            let _ = self.delete(&rt, &ns, &name, &DeleteOpts::default());
        }
    }

    /// Registers the served version of a CRD written through the API or directly.
    fn after_write(&mut self, rt: &ResourceType, obj: &Value) {
        if rt.group != "apiextensions.k8s.io" || rt.plural != "customresourcedefinitions" {
            return;
        }
        if let Ok(crd) = serde_json::from_value::<CustomResourceDefinition>(obj.clone()) {
            let storage = crd.spec.versions.iter().position(|v| v.storage).unwrap_or(0);
            let served: Vec<ResourceType> = ResourceType::from_crd(&crd);
            let chosen = crd
                .spec
                .versions
                .get(storage)
                .and_then(|v| served.iter().find(|rt| rt.version == v.name))
                .or(served.first());
            if let Some(rt) = chosen {
                self.registry.register(rt.clone());
            }
        }
    }

    fn emit(&mut self, rt: &ResourceType, ns: &str, kind: ChangeType, object: Value, old: Option<Value>) {
        let change = Arc::new(Change { rv: self.rv, key: rt.key(), namespace: ns.to_string(), kind, object, old });
        self.watchers.retain(|w| match w.filter.line_for(&change) {
            Some(line) => w.tx.send(line).is_ok(),
            None => !w.tx.is_closed(),
        });
        self.history.push_back(change);
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest_valid_rv = dropped.rv;
            }
        }
        let _ = self.changed.send(self.rv);
    }
}

/// Owner uids the garbage collector can follow: like the real one, a cluster-scoped dependent cannot be
/// owned by a namespaced object (such a reference never resolves, so the dependent is never collected).
fn resolvable_owners<'a>(registry: &Registry, key: &ResourceKey, obj: &'a Value) -> Vec<&'a str> {
    let dependent_namespaced = registry.get(key).is_none_or(|rt| rt.namespaced);
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| {
            let field = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
            let owner_namespaced = registry.by_kind(field("apiVersion"), field("kind")).is_some_and(|rt| rt.namespaced);
            dependent_namespaced || !owner_namespaced
        })
        .filter_map(|r| r.get("uid").and_then(Value::as_str))
        .collect()
}

/// Namespace key of an object of this type (cluster-scoped objects live under "").
fn scope_ns<'a>(rt: &ResourceType, ns: &'a str) -> &'a str {
    if rt.namespaced { ns } else { "" }
}

fn ssa_scope(rt: &ResourceType, sub: Sub) -> Scope {
    match sub {
        Sub::Main => Scope::Main { status_subresource: rt.status_subresource },
        Sub::Status => Scope::Status,
        Sub::All => Scope::All,
    }
}

fn sub_label(sub: Sub) -> Option<String> {
    (sub == Sub::Status).then(|| "status".to_string())
}

/// Applies a non-apply patch to a copy of the object.
fn patched(obj: &Value, kind: PatchKind, patch: &Value) -> Result<Value, ApiError> {
    let mut out = obj.clone();
    match kind {
        PatchKind::Merge => ssa::merge_patch(&mut out, patch),
        PatchKind::Strategic => out = ssa::strategic_merge(obj, patch, ""),
        PatchKind::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            for op in &ops.0 {
                // Like the API server's JSON patch library (and unlike the json-patch crate), testing a
                // missing path against null passes; kube-runtime's finalizer helper relies on it.
                if let json_patch::PatchOperation::Test(t) = op
                    && t.value.is_null()
                    && out.pointer(t.path.as_str()).is_none()
                {
                    continue;
                }
                json_patch::patch(&mut out, std::slice::from_ref(op))
                    .map_err(|e| ApiError::invalid(format!("the JSON patch failed: {e}")))?;
            }
        }
    }
    Ok(out)
}

/// Server-owned metadata fields a client write cannot change.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
    "generateName",
];

/// The object a write results in: status isolation plus server-owned metadata from `old`.
fn normalize(rt: &ResourceType, old: &Value, candidate: Value, sub: Sub) -> Value {
    let mut new = match sub {
        Sub::Status => {
            let mut n = old.clone();
            set_or_remove(&mut n, "status", candidate.get("status"));
            n
        }
        Sub::Main if rt.status_subresource => {
            let mut n = candidate;
            set_or_remove(&mut n, "status", old.get("status"));
            n
        }
        _ => candidate,
    };
    set_or_remove(&mut new, "apiVersion", Some(&Value::String(rt.api_version())));
    set_or_remove(&mut new, "kind", Some(&Value::String(rt.kind.clone())));
    if !new.get("metadata").is_some_and(Value::is_object) {
        new["metadata"] = json!({});
    }
    if let Some(meta) = new.get_mut("metadata") {
        for field in SERVER_METADATA {
            set_or_remove(meta, field, old.get("metadata").and_then(|m| m.get(*field)));
        }
        set_or_remove(meta, "managedFields", None);
        set_or_remove(meta, "selfLink", None);
    }
    new
}

fn set_or_remove(obj: &mut Value, key: &str, value: Option<&Value>) {
    if let Some(map) = obj.as_object_mut() {
        match value {
            Some(v) => {
                map.insert(key.to_string(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

fn fill_create_metadata(
    rt: &ResourceType,
    ns: &str,
    meta: &mut Map<String, Value>,
    counter: u64,
) -> Result<(), ApiError> {
    if rt.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
        if ns.is_empty() {
            return Err(ApiError::bad_request("a namespace is required for a namespaced resource"));
        }
        meta.insert("namespace".into(), Value::String(ns.to_string()));
    } else {
        meta.remove("namespace");
    }
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if name.is_empty() {
        let prefix = meta.get("generateName").and_then(Value::as_str).unwrap_or_default();
        if prefix.is_empty() {
            return Err(ApiError::invalid("metadata.name: Required value: name or generateName is required"));
        }
        let generated = format!("{prefix}{}", name_suffix(counter));
        meta.insert("name".into(), Value::String(generated));
    }
    meta.insert("uid".into(), Value::String(format!("00000000-0000-4000-8000-{counter:012x}")));
    meta.insert("creationTimestamp".into(), Value::String(now()));
    meta.insert("generation".into(), json!(1));
    for field in ["resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"] {
        meta.remove(field);
    }
    Ok(())
}

/// Five characters from the real server's alphabet, derived from a counter (deterministic).
fn name_suffix(counter: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = counter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// RFC 3339 time with second precision, like `metav1.Time`.
pub(crate) fn now() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now).to_string()
}

pub(crate) fn meta_str(obj: &Value, field: &str) -> Option<String> {
    obj.get("metadata")?.get(field)?.as_str().map(str::to_string)
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

fn bump_generation(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let generation = meta.get("generation").and_then(Value::as_i64).unwrap_or(0);
        meta.insert("generation".into(), json!(generation + 1));
    }
}

/// Everything generation tracks: the object without metadata and status.
fn spec_of(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(k);
        }
    }
    out
}

fn finalizers(obj: &Value) -> Vec<&str> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn has_finalizers(obj: &Value) -> bool {
    !finalizers(obj).is_empty()
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn check_no_new_finalizers(old: &Value, new: &Value) -> Result<(), ApiError> {
    if !is_deleting(old) {
        return Ok(());
    }
    let before = finalizers(old);
    let added: Vec<&str> = finalizers(new).into_iter().filter(|f| !before.contains(f)).collect();
    if added.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
        )))
    }
}

fn check_body_name(rt: &ResourceType, body: &Value, ns: &str, name: &str) -> Result<(), ApiError> {
    if let Some(body_name) = meta_str(body, "name").filter(|n| !n.is_empty() && n != name) {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    match meta_str(body, "namespace") {
        Some(body_ns) if rt.namespaced && !body_ns.is_empty() && body_ns != ns => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => Ok(()),
    }
}

/// Refuses a body whose `apiVersion`/`kind` (when given) are not the addressed resource's.
fn check_type(rt: &ResourceType, body: &Value) -> Result<(), ApiError> {
    let field = |k: &str| body.get(k).and_then(Value::as_str);
    let kind_ok = field("kind").is_none_or(|k| k == rt.kind);
    let version_ok = field("apiVersion").is_none_or(|v| v == rt.api_version());
    if kind_ok && version_ok {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "the body's apiVersion/kind ({}/{}) does not match the resource {} ({} {})",
        field("apiVersion").unwrap_or_default(),
        field("kind").unwrap_or_default(),
        rt.plural,
        rt.api_version(),
        rt.kind
    )))
}

/// Secrets: `stringData` is write-only; the server merges it into `data` (base64) like the real one.
fn convert_string_data(rt: &ResourceType, obj: &mut Value) {
    if !rt.group.is_empty() || rt.plural != "secrets" {
        return;
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if !data.is_object() {
        *data = json!({});
    }
    let Some(data) = data.as_object_mut() else {
        return;
    };
    for (k, v) in strings {
        let text = v.as_str().unwrap_or_default().as_bytes().to_vec();
        // ByteString serialises as base64, the wire form of `data`.
        if let Ok(encoded) = serde_json::to_value(k8s_openapi::ByteString(text)) {
            data.insert(k, encoded);
        }
    }
}

fn check_rv(rt: &ResourceType, live: &Value, name: &str, rv: &str) -> Result<(), ApiError> {
    if meta_str(live, "resourceVersion").as_deref() == Some(rv) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            &rt.group,
            &rt.plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        ))
    }
}

fn check_preconditions(rt: &ResourceType, live: &Value, name: &str, opts: &DeleteOpts) -> Result<(), ApiError> {
    if let Some(uid) = &opts.precondition_uid
        && meta_str(live, "uid").as_deref() != Some(uid)
    {
        return Err(ApiError::conflict(
            &rt.group,
            &rt.plural,
            name,
            &format!("Precondition failed: UID in precondition: {uid}"),
        ));
    }
    if let Some(rv) = &opts.precondition_rv {
        check_rv(rt, live, name, rv)?;
    }
    Ok(())
}

fn conflict_error(rt: &ResourceType, name: &str, conflicts: &[Conflict]) -> ApiError {
    let lines: Vec<String> =
        conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, ssa::render_path(&c.path))).collect();
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({
                "type": "FieldManagerConflict",
                "message": format!("conflict with \"{}\"", c.manager),
                "field": ssa::render_path(&c.path),
            })
        })
        .collect();
    let mut err =
        ApiError::new(409, format!("Apply failed with {} conflict(s): {}", conflicts.len(), lines.join(", ")))
            .with_details(&rt.group, &rt.plural, name);
    if let Some(details) = err.details.as_mut() {
        details["causes"] = Value::Array(causes);
    }
    err
}
