//! The finalizer, named as the Go operators name it so CRs they created can be taken over and deleted.

use cma_api::KedaController;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::Error;
use super::apply::is_not_found;

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
        .map_err(super::api_error(format!("update the finalizers of KedaController {}", kc.name_any())))
}
