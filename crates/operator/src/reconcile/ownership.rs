//! Who owns the objects we are about to apply: another cma-operator installation (refuse everything), a
//! foreign product serving the external metrics API or the webhook configuration (leave that object alone),
//! or a Go operator's earlier install of this same KEDA (take it over).

use cma_api::labels;
use cma_api::names::KUBE_SYSTEM;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::caches::Caches;
use crate::kinds::{Managed, Stores, object_ref};
use crate::render::Desired;

/// Reason of the Degraded condition when the APIService belongs to someone else.
pub const API_SERVICE_CONFLICT: &str = "APIServiceConflict";
/// Reason of the Degraded condition when the webhook configuration belongs to someone else.
pub const WEBHOOK_CONFLICT: &str = "WebhookConfigurationConflict";

/// The namespace of the cma-operator installation that owns `meta`, if any.
fn installation_of(meta: &ObjectMeta) -> Option<&str> {
    let labels = meta.labels.as_ref()?;
    (labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE))
        .then(|| labels.get(labels::OWNER_NAMESPACE).map(String::as_str))
        .flatten()
}

fn other_installation<K: Managed>(store: &Stores<K>, objects: &[K], namespace: &str) -> Option<String> {
    objects.iter().find_map(|obj| {
        let live = store.get(&object_ref(obj))?;
        let other = installation_of(live.meta())?;
        (other != namespace).then(|| {
            format!(
                "KEDA is already installed by cma-operator in namespace '{other}' ({} {} belongs to it); uninstall it there first, or delete this KedaController",
                K::kind(&()),
                obj.meta().name.as_deref().unwrap_or_default()
            )
        })
    })
}

/// Refuses to touch cluster-wide objects another installation of cma-operator owns.
pub fn another_installation(caches: &Caches, desired: &Desired, namespace: &str) -> Option<String> {
    let system_bindings: Vec<_> = desired
        .role_bindings
        .iter()
        .filter(|rb| rb.metadata.namespace.as_deref() == Some(KUBE_SYSTEM))
        .cloned()
        .collect();
    let m = &caches.managed;
    other_installation(&m.api_services, &desired.api_services, namespace)
        .or_else(|| {
            other_installation(
                &m.validating_webhook_configurations,
                &desired.validating_webhook_configurations,
                namespace,
            )
        })
        .or_else(|| other_installation(&m.role_bindings, &system_bindings, namespace))
}

/// Removes from `desired` the APIService and webhook configuration that exist but serve something else,
/// and says why (condition reason, message) for each.
pub fn leave_foreign_objects_alone(caches: &Caches, desired: &mut Desired, namespace: &str) -> Vec<(String, String)> {
    let mut conflicts = Vec::new();
    desired.api_services.retain(|api| {
        let Some(live) = caches.managed.api_services.get(&object_ref(api)) else {
            return true;
        };
        if installation_of(&live.metadata).is_some() {
            return true; // ours, or another installation's (refused before we get here)
        }
        let service = live.spec.as_ref().and_then(|s| s.service.as_ref());
        let takes_over = service.is_some_and(|s| s.name.as_deref() == Some("keda-metrics-apiserver") && s.namespace.as_deref() == Some(namespace));
        if !takes_over {
            let current = service.map_or("the API server itself (no service)".to_string(), |s| {
                format!("Service {}/{}", s.namespace.as_deref().unwrap_or_default(), s.name.as_deref().unwrap_or_default())
            });
            conflicts.push((
                API_SERVICE_CONFLICT.to_string(),
                format!(
                    "APIService v1beta1.external.metrics.k8s.io is served by {current}, not by KEDA: left unchanged; remove the other external metrics provider (for example prometheus-adapter) to let KEDA serve it"
                ),
            ));
        }
        takes_over
    });
    desired.validating_webhook_configurations.retain(|vwc| {
        let Some(live) = caches.managed.validating_webhook_configurations.get(&object_ref(vwc)) else {
            return true;
        };
        if installation_of(&live.metadata).is_some() {
            return true;
        }
        let ours = live.webhooks.iter().flatten().any(|w| {
            w.client_config.service.as_ref().is_some_and(|s| s.name == "keda-admission-webhooks" && s.namespace == namespace)
        });
        if !ours {
            conflicts.push((
                WEBHOOK_CONFLICT.to_string(),
                "ValidatingWebhookConfiguration keda-admission exists and points at other webhook servers: left unchanged; delete it to let this KEDA install its webhooks".to_string(),
            ));
        }
        ours
    });
    conflicts
}
