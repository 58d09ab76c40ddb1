//! Prune: deletes the objects carrying this installation's inventory labels that the current render no
//! longer produces (every one of them at uninstall, when the desired set is empty). Objects without our
//! labels are never considered.

use std::collections::BTreeSet;

use futures::future::{BoxFuture, FutureExt, join_all};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DeleteParams;
use kube::{Client, Resource, ResourceExt};

use super::apply::{WriteError, applied_key, display_name, is_not_found};
use crate::caches::ManagedStores;
use crate::context::Applied;
use crate::kinds::{Managed, Stores, managed_kinds};
use crate::render::{Desired, Owner};

/// One object deleted by prune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// Kind.
    pub kind: String,
    /// `namespace/name` or `name`.
    pub name: String,
}

/// Whether an object carries the inventory labels of `owner`.
pub fn owned_by(meta: &ObjectMeta, owner: &Owner) -> bool {
    let Some(labels) = meta.labels.as_ref() else {
        return false;
    };
    owner.labels().iter().all(|(k, v)| labels.get(*k) == Some(v))
}

/// Deletes one object; a missing object is not an error.
async fn delete_one<K: Managed>(client: Client, obj: K, applied: &Applied) -> Result<Option<Deleted>, WriteError> {
    let api = K::api(&client, obj.meta().namespace.as_deref());
    let deleted = Deleted { kind: K::kind(&()).to_string(), name: display_name(&obj) };
    applied.forget(&applied_key(&obj));
    match api.delete(&obj.name_any(), &DeleteParams::background()).await {
        Ok(_) => Ok(Some(deleted)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(source) => Err(WriteError { action: "delete", kind: deleted.kind, name: deleted.name, source }),
    }
}

type Delete<'a> = BoxFuture<'a, Result<Option<Deleted>, WriteError>>;

/// Deletions of the objects of `stores` owned by `owner` and not in `keep`.
fn stale<'a, K: Managed>(
    client: &Client,
    stores: &Stores<K>,
    owner: &Owner,
    keep: &[K],
    applied: &'a Applied,
) -> Vec<Delete<'a>> {
    let keep: BTreeSet<(Option<String>, String)> =
        keep.iter().map(|o| (o.meta().namespace.clone(), o.name_any())).collect();
    stores
        .state()
        .into_iter()
        .filter(|live| owned_by(live.meta(), owner))
        .filter(|live| !keep.contains(&(live.meta().namespace.clone(), live.name_any())))
        .map(|live| delete_one(client.clone(), (*live).clone(), applied).boxed())
        .collect()
}

macro_rules! prunes {
    ($($field:ident: $ty:ty => $order:ident,)*) => {
        fn deletions<'a>(
            client: &Client,
            stores: &ManagedStores,
            owner: &Owner,
            desired: &Desired,
            applied: &'a Applied,
        ) -> Vec<Delete<'a>> {
            let mut out = Vec::new();
            $(
                out.extend(stale(client, &stores.$field, owner, &desired.$field, applied));
            )*
            out
        }

        /// How many objects of `owner` the caches hold (for the managed-objects gauge).
        pub fn count_owned(stores: &ManagedStores, owner: &Owner) -> usize {
            0 $(+ stores.$field.state().iter().filter(|o| owned_by(o.meta(), owner)).count())*
        }
    };
}
managed_kinds!(prunes);

/// Deletes what `owner` owns but `desired` no longer renders (every object, when `desired` is empty:
/// uninstall), concurrently.
pub async fn prune(
    client: &Client,
    stores: &ManagedStores,
    owner: &Owner,
    desired: &Desired,
    applied: &Applied,
) -> Result<Vec<Deleted>, Vec<WriteError>> {
    let (ok, failed): (Vec<_>, Vec<_>) =
        join_all(deletions(client, stores, owner, desired, applied)).await.into_iter().partition(Result::is_ok);
    let failed: Vec<WriteError> = failed.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() { Ok(ok.into_iter().filter_map(|r| r.ok().flatten()).collect()) } else { Err(failed) }
}
