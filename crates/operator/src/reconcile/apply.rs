//! Apply: server-side apply of the rendered objects, concurrently but for the one order that matters (see
//! [`crate::kinds`]), each object only when the cluster does not hold exactly what this reconcile intends.
//!
//! Every applied object carries [`APPLIED_DIGEST`], a digest of the applied intent. The skip is exact: an
//! object is left alone only when its digest equals the one rendered now (our intent did not change) and the
//! live object still holds every field of it (nobody changed a field we own). A removed field changes the
//! digest, so it is applied without the field and server-side apply removes it. A write while the digest
//! is unchanged restores someone else's change: that, and only that, is drift.

use std::collections::BTreeMap;

use cma_api::labels::APPLIED_DIGEST;
use futures::future::{BoxFuture, FutureExt, join_all};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::compare;
use super::errors::describe;
use crate::caches::ManagedStores;
use crate::context::Applied;
use crate::kinds::{Managed, Stores, managed_kinds, object_ref};
use crate::render::Desired;

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "cma-operator";

/// Why an object was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// It did not exist.
    Created,
    /// What the operator intends for it changed (the KedaController, an input such as a CA bundle, or a new
    /// operator version).
    Updated,
    /// Someone else changed fields the operator owns; `by` names the writers managedFields credit.
    Reverted {
        /// Field managers other than ours that wrote to the object, most recent first.
        by: Vec<String>,
    },
    /// The operator had applied it in this process and it was deleted by someone else.
    Recreated,
}

impl Cause {
    /// Whether this write corrected someone else's change.
    pub fn is_drift(&self) -> bool {
        matches!(self, Cause::Reverted { .. } | Cause::Recreated)
    }
}

/// One object written by apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// Kind.
    pub kind: String,
    /// `namespace/name` or `name`.
    pub name: String,
    /// Why.
    pub cause: Cause,
    /// Whether the write changed the object's generation (its spec): a Deployment then rolls out.
    pub generation_changed: bool,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        match &self.cause {
            Cause::Reverted { by } if !by.is_empty() => write!(f, " (changed by {})", by.join(", ")),
            Cause::Reverted { .. } => write!(f, " (changed outside the operator)"),
            Cause::Recreated => write!(f, " (deleted outside the operator)"),
            Cause::Created | Cause::Updated => Ok(()),
        }
    }
}

/// A failed write, naming the object and the API server's answer.
#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name}: {}", describe(source))]
pub struct WriteError {
    /// `apply` or `delete`.
    pub action: &'static str,
    /// Kind of the object.
    pub kind: String,
    /// `namespace/name` or `name`.
    pub name: String,
    /// The API error.
    #[source]
    pub source: kube::Error,
}

/// `namespace/name` or `name`.
pub fn display_name<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// The key [`Applied`] knows an object by.
pub fn applied_key<K: Managed>(obj: &K) -> String {
    format!("{} {}", K::kind(&()), display_name(obj))
}

/// Whether an API error says a field cannot be changed in place.
fn is_immutable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 422 && s.message.contains("immutable"))
}

/// Whether an API error says the object does not exist.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

/// The digest of the intent for `obj` (without the digest annotation itself).
fn digest_of<K: Managed>(obj: &K) -> String {
    // Serializing a typed object cannot fail (no maps with non-string keys); an empty digest would only make
    // the next reconcile apply again.
    let bytes = serde_json::to_vec(obj).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// The field managers other than ours that wrote to `live` outside its status, most recent first.
fn other_writers<K: Managed>(live: &K) -> Vec<String> {
    let mut entries: Vec<_> = live
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref().unwrap_or_default().is_empty())
        .filter_map(|m| {
            let manager = m.manager.clone()?;
            (manager != FIELD_MANAGER && !manager.starts_with("cma-operator")).then_some((m.time.clone(), manager))
        })
        .collect();
    entries.sort_by(|a, b| b.0.as_ref().map(|t| t.0).cmp(&a.0.as_ref().map(|t| t.0)));
    let mut seen = Vec::new();
    for (_, manager) in entries {
        if !seen.contains(&manager) {
            seen.push(manager);
        }
    }
    seen
}

/// Decides whether `obj` needs a write and why; `None` when the cluster holds it exactly as intended.
fn cause<K: Managed>(live: Option<&K>, desired: &K, digest: &str, applied: &Applied) -> Option<Cause> {
    let Some(live) = live else {
        return Some(if applied.knows(&applied_key(desired)) { Cause::Recreated } else { Cause::Created });
    };
    let recorded = live.annotations().get(APPLIED_DIGEST).map(String::as_str);
    if recorded != Some(digest) {
        return Some(Cause::Updated);
    }
    let difference = match (serde_json::to_value(live), serde_json::to_value(desired)) {
        (Ok(live), Ok(desired)) => compare::first_difference(&live, &desired),
        _ => Some(String::new()),
    };
    let field = difference?;
    tracing::debug!(kind = K::kind(&()).as_ref(), name = %display_name(desired), field, "a field we own differs");
    Some(Cause::Reverted { by: other_writers(live) })
}

/// Applies one object unless the cluster holds it exactly as intended. Returns what was written.
pub async fn apply_one<K: Managed>(
    client: Client,
    stores: Stores<K>,
    mut obj: K,
    applied: &Applied,
) -> Result<Option<Written>, WriteError> {
    let digest = digest_of(&obj);
    obj.annotations_mut().insert(APPLIED_DIGEST.to_string(), digest.clone());
    let live = stores.get(&object_ref(&obj));
    let Some(cause) = cause(live.as_deref(), &obj, &digest, applied) else {
        return Ok(None);
    };
    let kind = K::kind(&()).to_string();
    let name = display_name(&obj);
    let error = |action, source| WriteError { action, kind: kind.clone(), name: name.clone(), source };
    let api = K::api(&client, obj.meta().namespace.as_deref());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let object_name = obj.name_any();
    let written = match api.patch(&object_name, &params, &Patch::Apply(&obj)).await {
        Ok(written) => written,
        Err(e) if is_immutable(&e) => {
            // A field that cannot change in place (a selector, a roleRef): replace the object.
            tracing::info!(kind, name, "replacing object: an immutable field changed");
            match api.delete(&object_name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(error("delete", e)),
            }
            api.patch(&object_name, &params, &Patch::Apply(&obj)).await.map_err(|e| error("apply", e))?
        }
        Err(e) => return Err(error("apply", e)),
    };
    applied.remember(applied_key(&obj), digest);
    let generation_changed = live.as_ref().map(|l| l.meta().generation) != Some(written.meta().generation);
    Ok(Some(Written { kind, name, cause, generation_changed }))
}

type Write<'a> = BoxFuture<'a, Result<Option<Written>, WriteError>>;

fn writes<'a, K: Managed>(client: &Client, stores: &Stores<K>, objects: &[K], applied: &'a Applied) -> Vec<Write<'a>> {
    objects.iter().map(|o| apply_one(client.clone(), stores.clone(), o.clone(), applied).boxed()).collect()
}

/// The writes of one reconcile, by when they may go out.
#[derive(Default)]
struct Plan<'a> {
    services: Vec<Write<'a>>,
    independent: Vec<Write<'a>>,
    after_services: Vec<Write<'a>>,
}

macro_rules! plan {
    ($($field:ident: $ty:ty => $order:ident,)*) => {
        /// The writes of every object of `desired`, by when they may go out.
        fn plan<'a>(client: &Client, stores: &ManagedStores, desired: &Desired, applied: &'a Applied) -> Plan<'a> {
            let mut plan = Plan::default();
            $(
                plan.$order.extend(writes(client, &stores.$field, &desired.$field, applied));
            )*
            plan
        }
    };
}
managed_kinds!(plan);

/// Runs writes concurrently; every result, failures apart.
async fn run(writes: Vec<Write<'_>>) -> (Vec<Written>, Vec<WriteError>) {
    let mut written = Vec::new();
    let mut failed = Vec::new();
    for result in join_all(writes).await {
        match result {
            Ok(Some(w)) => written.push(w),
            Ok(None) => {}
            Err(e) => failed.push(e),
        }
    }
    (written, failed)
}

/// Applies every object of `desired`: the Services and everything independent at once, the API registrations
/// as soon as the Services are applied (not if one failed). Returns what was written, or every failure.
pub async fn apply(
    client: &Client,
    stores: &ManagedStores,
    desired: &Desired,
    applied: &Applied,
) -> Result<Vec<Written>, Vec<WriteError>> {
    let Plan { services, independent, after_services } = plan(client, stores, desired, applied);
    let routed = async {
        let (mut written, failed) = run(services).await;
        if !failed.is_empty() {
            return (written, failed);
        }
        let (more, failed) = run(after_services).await;
        written.extend(more);
        (written, failed)
    };
    let ((mut written, mut failed), (rest, rest_failed)) = futures::join!(routed, run(independent));
    written.extend(rest);
    failed.extend(rest_failed);
    if failed.is_empty() { Ok(written) } else { Err(failed) }
}

/// Counts written objects by kind, for the drift metric.
pub fn by_kind(written: &[Written]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for w in written {
        *counts.entry(w.kind.clone()).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, Time};

    fn config_map(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta { name: Some("c".into()), namespace: Some("ns".into()), ..ObjectMeta::default() },
            data: Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..ConfigMap::default()
        }
    }

    fn stamped(mut cm: ConfigMap, digest: &str) -> ConfigMap {
        cm.annotations_mut().insert(APPLIED_DIGEST.into(), digest.into());
        cm
    }

    #[test]
    fn an_object_holding_the_intent_is_left_alone() {
        let desired = config_map(&[("a", "1")]);
        let digest = digest_of(&desired);
        let live = stamped(config_map(&[("a", "1")]), &digest);
        assert_eq!(cause(Some(&live), &stamped(desired, &digest), &digest, &Applied::default()), None);
    }

    #[test]
    fn a_removed_field_changes_the_digest_although_the_live_object_holds_every_field() {
        let before = config_map(&[("a", "1"), ("b", "2")]);
        let live = stamped(before.clone(), &digest_of(&before));
        let after = config_map(&[("a", "1")]);
        let digest = digest_of(&after);
        assert_eq!(cause(Some(&live), &stamped(after, &digest), &digest, &Applied::default()), Some(Cause::Updated));
    }

    #[test]
    fn a_change_by_someone_else_is_drift_naming_the_writer() {
        let desired = config_map(&[("a", "1")]);
        let digest = digest_of(&desired);
        let mut live = stamped(config_map(&[("a", "2")]), &digest);
        let entry = |manager: &str, second: i64, subresource: Option<&str>| ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some("Update".into()),
            time: Some(Time(k8s_openapi::jiff::Timestamp::from_second(second).unwrap())),
            subresource: subresource.map(String::from),
            ..ManagedFieldsEntry::default()
        };
        live.metadata.managed_fields = Some(vec![
            entry(FIELD_MANAGER, 10, None),
            entry("kube-controller-manager", 30, Some("status")),
            entry("kubectl-edit", 20, None),
        ]);
        assert_eq!(
            cause(Some(&live), &stamped(desired, &digest), &digest, &Applied::default()),
            Some(Cause::Reverted { by: vec!["kubectl-edit".into()] })
        );
    }

    #[test]
    fn a_missing_object_is_recreated_only_when_this_process_applied_it() {
        let desired = stamped(config_map(&[("a", "1")]), "d");
        let applied = Applied::default();
        assert_eq!(cause(None, &desired, "d", &applied), Some(Cause::Created));
        applied.remember(applied_key(&desired), "d".into());
        assert_eq!(cause(None, &desired, "d", &applied), Some(Cause::Recreated));
    }

    #[test]
    fn the_digest_does_not_depend_on_the_digest_annotation() {
        let desired = config_map(&[("a", "1")]);
        let digest = digest_of(&desired);
        assert_eq!(digest.len(), 64);
        assert_ne!(digest_of(&stamped(desired, &digest)), digest, "the annotation is added after digesting");
    }
}
