//! The finalizer, named as the Go operators name it so CRs they created can be taken over and deleted, and
//! what deleting the KedaController does: every object of the installation is deleted, then the finalizer
//! goes.

use cma_api::KedaController;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::apply::is_not_found;
use super::errors::{Error, api_error};
use super::report::{self, Report};
use super::{prune, synced};
use crate::context::Context;
use crate::events;
use crate::render::{Desired, Owner};

/// The finalizer name.
pub const FINALIZER: &str = "finalizer.kedacontroller.keda.sh";

/// Whether the KedaController carries our finalizer.
pub fn has(kc: &KedaController) -> bool {
    kc.finalizers().iter().any(|f| f == FINALIZER)
}

/// Adds the finalizer (before anything is created, so no deletion can leave cluster-scoped objects behind).
pub async fn add(client: &Client, kc: &KedaController) -> Result<(), Error> {
    let mut finalizers = kc.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    set(client, kc, finalizers).await
}

/// The KedaController is being deleted: uninstalls KEDA (prunes against an empty desired set), then lets
/// the deletion finish.
pub async fn finalize(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<Report, Error> {
    if !has(kc) {
        return Ok(Report::quiet("deleted"));
    }
    synced(ctx).await?;
    let owner = Owner::of(kc, namespace, &kc.name_any());
    let removed = prune::prune(&ctx.client, &ctx.caches.managed, &owner, &Desired::default(), &ctx.applied)
        .await
        .map_err(Error::Write)?;
    report::uninstalled(ctx);
    // A second pass (from a cache that has not seen the deletion yet) finds nothing left: nothing to tell.
    if !removed.is_empty() {
        let note = format!("KEDA removed from namespace '{namespace}' ({} objects deleted)", removed.len());
        ctx.events.publish(kc, events::Severity::Normal, "Uninstalled", &note, (ctx.clock)()).await;
    }
    remove(&ctx.client, kc).await?;
    Ok(Report { pruned: removed.len(), ..Report::quiet("uninstalled") })
}

/// Removes the finalizer. A KedaController already gone is the outcome wanted, not a failure.
pub async fn remove(client: &Client, kc: &KedaController) -> Result<(), Error> {
    let rest = kc.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    match set(client, kc, rest).await {
        Err(Error::Api { source, .. }) if is_not_found(&source) => Ok(()),
        other => other,
    }
}

/// Writes the finalizer list, guarded by the resourceVersion read: a concurrent change fails with a
/// conflict and the reconcile is retried, never overwriting someone else's finalizer.
async fn set(client: &Client, kc: &KedaController, finalizers: Vec<String>) -> Result<(), Error> {
    let api: Api<KedaController> = Api::namespaced(client.clone(), &kc.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": kc.resource_version()}});
    api.patch(&kc.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(api_error(format!("update the finalizers of KedaController {}", kc.name_any())))
}
