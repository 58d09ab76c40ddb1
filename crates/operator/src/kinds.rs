//! The kinds the operator manages, written once.
//!
//! [`managed_kinds!`] holds the table: the field of [`crate::render::Desired`] (and of the caches' stores),
//! the Rust type, and the apply wave. Every consumer is generated from it (render's `Desired`, the caches'
//! stores and their sync, apply, prune, the managed-objects count, the list of kinds for RBAC generation,
//! must-gather and tests), so adding a kind is one line here and the compiler follows it everywhere.
//!
//! Order: only one dependency matters. The API registrations (APIService, webhook configuration) route the
//! API server's traffic to KEDA's Services, so they are applied once the Services are (`after_services`).
//! Everything else (`independent`) goes out at once, concurrently with the Services: KEDA's ServiceAccounts
//! and permissions are installed with the operator, the one binding refers to a system Role, and a pod
//! waits for its ConfigMaps and Secrets on its own.

use std::fmt::Debug;

use kube::api::{Api, ApiResource};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Calls `$callback!` with the table of managed kinds: `field: Type => order,` per kind (`services`,
/// `independent` or `after_services`).
macro_rules! managed_kinds {
    ($callback:ident) => {
        $callback! {
            secrets: k8s_openapi::api::core::v1::Secret => independent,
            config_maps: k8s_openapi::api::core::v1::ConfigMap => independent,
            services: k8s_openapi::api::core::v1::Service => services,
            network_policies: k8s_openapi::api::networking::v1::NetworkPolicy => independent,
            pod_disruption_budgets: k8s_openapi::api::policy::v1::PodDisruptionBudget => independent,
            service_monitors: crate::render::monitoring_types::ServiceMonitor => independent,
            prometheus_rules: crate::render::monitoring_types::PrometheusRule => independent,
            role_bindings: k8s_openapi::api::rbac::v1::RoleBinding => independent,
            deployments: k8s_openapi::api::apps::v1::Deployment => independent,
            api_services: k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService => after_services,
            validating_webhook_configurations: k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration => after_services,
        }
    };
}
pub(crate) use managed_kinds;

/// A kind the operator applies: knows how to address its objects.
pub trait Managed:
    Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// Whether objects of this kind live in a namespace.
    const NAMESPACED: bool;

    /// The API for objects of this kind in `namespace` (ignored for cluster-scoped kinds).
    fn api(client: &Client, namespace: Option<&str>) -> Api<Self>;
}

macro_rules! scopes {
    (namespaced: $($n:ty),*; cluster: $($c:ty),*) => {
        $(impl Managed for $n {
            const NAMESPACED: bool = true;
            fn api(client: &Client, namespace: Option<&str>) -> Api<Self> {
                match namespace {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::default_namespaced(client.clone()),
                }
            }
        })*
        $(impl Managed for $c {
            const NAMESPACED: bool = false;
            fn api(client: &Client, _namespace: Option<&str>) -> Api<Self> {
                Api::all(client.clone())
            }
        })*
    };
}

scopes!(
    namespaced: k8s_openapi::api::core::v1::ServiceAccount, k8s_openapi::api::core::v1::Secret,
        k8s_openapi::api::core::v1::ConfigMap, k8s_openapi::api::rbac::v1::RoleBinding,
        k8s_openapi::api::core::v1::Service,
        k8s_openapi::api::networking::v1::NetworkPolicy, k8s_openapi::api::apps::v1::Deployment,
        k8s_openapi::api::policy::v1::PodDisruptionBudget, crate::render::monitoring_types::ServiceMonitor,
        crate::render::monitoring_types::PrometheusRule;
    cluster: k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
        k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration
);

/// The watched objects of one kind: one store per watch (a kind may be watched in several namespaces or by
/// several names), read as one.
#[derive(Clone)]
pub struct Stores<K: Managed> {
    stores: Vec<Store<K>>,
}

impl<K: Managed> Default for Stores<K> {
    fn default() -> Self {
        Stores { stores: Vec::new() }
    }
}

impl<K: Managed> Stores<K> {
    /// Adds the store of one watch.
    pub fn push(&mut self, store: Store<K>) {
        self.stores.push(store);
    }

    /// The object at `key`, from whichever watch holds it.
    pub fn get(&self, key: &ObjectRef<K>) -> Option<std::sync::Arc<K>> {
        self.stores.iter().find_map(|s| s.get(key))
    }

    /// The object named `name` in `namespace` (`None` for cluster-scoped kinds).
    pub fn named(&self, namespace: Option<&str>, name: &str) -> Option<std::sync::Arc<K>> {
        let key = ObjectRef::new(name);
        self.get(&match namespace {
            Some(ns) if K::NAMESPACED => key.within(ns),
            _ => key,
        })
    }

    /// Every watched object.
    pub fn state(&self) -> Vec<std::sync::Arc<K>> {
        self.stores.iter().flat_map(Store::state).collect()
    }

    /// Whether every watch completed its first list.
    pub async fn ready(&self) -> bool {
        futures::future::join_all(self.stores.iter().map(Store::wait_until_ready)).await.iter().all(Result::is_ok)
    }
}

/// A managed kind, described for consumers that address it dynamically (RBAC generation, must-gather, tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
}

fn info<K: Managed>() -> KindInfo {
    KindInfo { resource: ApiResource::erase::<K>(&()), namespaced: K::NAMESPACED }
}

macro_rules! kind_list {
    ($($field:ident: $ty:ty => $order:ident,)*) => {
        /// Every managed kind, in table order.
        pub fn managed() -> Vec<KindInfo> {
            vec![$(info::<$ty>()),*]
        }
    };
}
managed_kinds!(kind_list);

/// The key of an object in its kind's stores.
pub fn object_ref<K: Managed>(obj: &K) -> ObjectRef<K> {
    let r = ObjectRef::new(obj.meta().name.as_deref().unwrap_or_default());
    match obj.meta().namespace.as_deref() {
        Some(ns) if K::NAMESPACED => r.within(ns),
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_with_its_scope() {
        let kinds = managed();
        let names: std::collections::BTreeSet<_> = kinds.iter().map(|k| k.resource.kind.clone()).collect();
        assert_eq!(names.len(), kinds.len());
        let cluster: Vec<_> = kinds.iter().filter(|k| !k.namespaced).map(|k| k.resource.kind.as_str()).collect();
        assert_eq!(cluster, ["APIService", "ValidatingWebhookConfiguration"]);
    }
}
