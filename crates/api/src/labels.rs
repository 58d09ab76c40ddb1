//! The labels that mark what the operator manages. Users may not set them through the CR: prune and the
//! watches select on them.

use crate::Component;

/// Standard label naming the tool that manages an object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY`] on everything this operator applies.
pub const MANAGED_BY_VALUE: &str = "cma-operator";
/// Standard label naming the application an object belongs to.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// Value of [`PART_OF`] on everything this operator applies.
pub const PART_OF_VALUE: &str = "keda";
/// Inventory label: namespace of the KedaController that owns the object.
pub const OWNER_NAMESPACE: &str = "cma.keda.sh/owner-namespace";
/// Inventory label: name of the KedaController that owns the object.
pub const OWNER_NAME: &str = "cma.keda.sh/owner-name";

/// Annotation holding a digest of what the operator last applied to an object: the exact record of its
/// intent, so a field removed from the KedaController is removed from the object, and a change the
/// operator did not make is recognised as someone else's.
pub const APPLIED_DIGEST: &str = "cma.keda.sh/applied-digest";

/// Labels a user may not set on the Deployments or the ServiceAccount.
pub const OWNERSHIP: [&str; 4] = [MANAGED_BY, PART_OF, OWNER_NAMESPACE, OWNER_NAME];

/// The pod label each Deployment selects its pods by (the same keys and values as upstream KEDA, so
/// Deployments created by the Go operators can be adopted: a selector is immutable).
pub fn selector(component: Component) -> (&'static str, &'static str) {
    (SELECTOR_KEY, component.service_name())
}

/// The key every component's selector uses.
pub const SELECTOR_KEY: &str = "app";

/// Pod labels a user may not set: the selector key and the ownership labels.
pub fn pod_reserved_keys() -> [&'static str; 5] {
    [SELECTOR_KEY, MANAGED_BY, PART_OF, OWNER_NAMESPACE, OWNER_NAME]
}

/// The label selector (`key=value,...`) matching every object a KedaController owns.
pub fn inventory_selector(namespace: &str, name: &str) -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE},{OWNER_NAMESPACE}={namespace},{OWNER_NAME}={name}")
}
