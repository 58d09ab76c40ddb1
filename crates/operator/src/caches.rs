//! The watches of the controller: one reflector store per kind, read by reconcile instead of the API.
//!
//! Namespaced kinds are watched in the install namespace only (label-selected, except ConfigMaps and
//! Secrets, which also hold the CA bundles and service-ca certificates the pods read); the kube-system
//! RoleBinding and the cluster-scoped kinds by label; the APIService and the webhook configuration by name,
//! so one owned by someone else is seen too.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use cma_api::{Component, KedaController};
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, ServiceAccount};
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};

use crate::kinds::{Managed, Stores};
use crate::platform::Platform;
use crate::render::monitoring::{DASHBOARD_CONFIG_MAP, DASHBOARD_NAMESPACE};
use crate::render::openshift::GRPC_CERTS_SECRET;
use serde::de::DeserializeOwned;

use cma_api::names::{API_SERVICE, AUTH_READER_BINDING, KUBE_SYSTEM, WEBHOOK_CONFIGURATION};

macro_rules! managed_stores {
    ($($field:ident: $ty:ty => $order:ident,)*) => {
        /// The watched objects of every managed kind (see [`crate::kinds`]).
        #[derive(Clone, Default)]
        pub struct ManagedStores {
            $(
                #[doc = concat!("Watched `", stringify!($field), "`.")]
                pub $field: Stores<$ty>,
            )*
        }

        impl ManagedStores {
            /// Whether every watch completed its first list.
            pub async fn ready(&self) -> bool {
                let results = [$(self.$field.ready().boxed()),*];
                futures::future::join_all(results).await.into_iter().all(|ok| ok)
            }
        }
    };
}
crate::kinds::managed_kinds!(managed_stores);

/// Read access to every watched kind.
#[derive(Clone)]
pub struct Caches {
    /// KedaControllers in the watched namespaces.
    pub kedacontrollers: Store<KedaController>,
    /// The install namespace's ServiceAccounts: KEDA's (static) are checked to exist and get workload identity.
    pub service_accounts: Stores<ServiceAccount>,
    /// PersistentVolumeClaims of the install namespace (the audit log claim the KedaController names).
    pub claims: Store<PersistentVolumeClaim>,
    /// The managed kinds. Secrets hold `kedaorg-certs` and, on OpenShift, the service-ca serving certificates;
    /// ConfigMaps every ConfigMap of the install namespace (CA bundles) and the console dashboard;
    /// RoleBindings those of the install namespace and `kube-system/keda-auth-reader`.
    pub managed: ManagedStores,
}

/// A change to a watched object, mapped to the KedaController it concerns.
pub type Touched = BoxStream<'static, Result<ObjectRef<KedaController>, watcher::Error>>;

/// A KedaController event for the controller's main stream.
pub type KcEvent = Result<KedaController, watcher::Error>;

/// Where the operator runs and what it watches.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The namespace the operator runs in.
    pub operator_namespace: String,
    /// The namespaces OLM targets (`WATCH_NAMESPACE`); they must include the operator's, where the
    /// KedaController is watched.
    pub watch_namespaces: Vec<String>,
}

impl Scope {
    /// The only namespace KEDA is installed in: the operator's own. KEDA's ServiceAccounts and permissions are
    /// installed there with the operator (OLM's OwnNamespace mode, or config/).
    pub fn install_namespace(&self) -> &str {
        &self.operator_namespace
    }

    /// The KedaController that installs KEDA.
    pub fn install_ref(&self) -> ObjectRef<KedaController> {
        ObjectRef::new(cma_api::names::KEDACONTROLLER).within(self.install_namespace())
    }
}

/// The stores, the KedaController stream and the streams of changes to everything else. Polling a stream
/// keeps its store current; the controller polls them all.
pub struct Watches {
    /// Read access for reconcile.
    pub caches: Caches,
    /// KedaController changes that matter (generation, deletion, finalizers), not our status writes.
    pub kedacontrollers: BoxStream<'static, KcEvent>,
    /// Changes to managed and observed objects.
    pub touched: Vec<Touched>,
}

/// Builds every watch of the controller; the monitoring kinds only when the platform serves them (the
/// operator restarts when that changes, see `controller::lead`).
pub fn build(client: &Client, scope: &Scope, platform: &Platform) -> Watches {
    let ns = scope.install_namespace();
    let everything = || watcher::Config::default().any_semantic();
    let named = |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}")).any_semantic();
    let install = scope.install_ref();
    let mut w = WatchSet { client: client.clone(), touched: Vec::new() };
    let mut m = ManagedStores::default();

    // Secrets are watched by name only: RBAC can restrict named watches, and the operator has no business
    // reading any other Secret.
    w.for_install(&mut m.secrets, Some(ns), named(GRPC_CERTS_SECRET), &install);
    if platform.is_openshift() {
        for component in Component::ALL {
            w.for_install(&mut m.secrets, Some(ns), named(&component.serving_cert_secret()), &install);
        }
    }
    // Every ConfigMap of the install namespace: the CA bundles the components read are not ours.
    w.for_install(&mut m.config_maps, Some(ns), everything(), &install);
    // Everything of the install namespace and, by name, whatever we write elsewhere, whoever owns it: an object
    // of another installation (Helm's KEDA, a Go operator's) must be seen before anything is written over it.
    w.for_install(&mut m.role_bindings, Some(KUBE_SYSTEM), named(AUTH_READER_BINDING), &install);
    w.for_install(&mut m.services, Some(ns), everything(), &install);
    w.for_install(&mut m.network_policies, Some(ns), everything(), &install);
    w.for_install(&mut m.deployments, Some(ns), everything(), &install);
    w.for_install(&mut m.pod_disruption_budgets, Some(ns), everything(), &install);
    w.for_install(&mut m.api_services, None, named(API_SERVICE), &install);
    w.for_install(&mut m.validating_webhook_configurations, None, named(WEBHOOK_CONFIGURATION), &install);
    if platform.monitoring {
        w.for_install(&mut m.service_monitors, Some(ns), everything(), &install);
        w.for_install(&mut m.prometheus_rules, Some(ns), everything(), &install);
        if platform.is_openshift() {
            w.for_install(&mut m.config_maps, Some(DASHBOARD_NAMESPACE), named(DASHBOARD_CONFIG_MAP), &install);
        }
    }

    // KEDA's three ServiceAccounts in one watch of the namespace, not one per name: two requests at start and
    // one open watch instead of six and three. A ServiceAccount holds no credential (tokens are requested, not
    // stored in it), so reading the others of this namespace discloses nothing.
    let mut service_accounts = Stores::default();
    w.for_install(&mut service_accounts, Some(ns), everything(), &install);
    let (claims, stream) = cached::<PersistentVolumeClaim>(Api::namespaced(client.clone(), ns), everything());
    w.touched.push(to_install(stream, install.clone()));

    // Only the install namespace: KEDA is installed from the KedaController there, and the operator's
    // permissions on KedaControllers are namespaced (OLM's OwnNamespace mode).
    let kc_api: Api<KedaController> = Api::namespaced(client.clone(), ns);
    let (kedacontrollers, kc_stream) = kc_cache(kc_api);
    Watches {
        caches: Caches { kedacontrollers, service_accounts, claims, managed: m },
        kedacontrollers: kc_stream,
        touched: w.touched,
    }
}

/// Builds watches and collects their change streams.
struct WatchSet {
    client: Client,
    touched: Vec<Touched>,
}

impl WatchSet {
    fn api<K: Managed>(&self, namespace: Option<&str>) -> Api<K> {
        K::api(&self.client, namespace)
    }

    /// A watch whose changes all go to the installing KedaController.
    fn for_install<K: Managed>(
        &mut self,
        stores: &mut Stores<K>,
        namespace: Option<&str>,
        config: watcher::Config,
        install: &ObjectRef<KedaController>,
    ) {
        let (store, stream) = cached::<K>(self.api(namespace), config);
        stores.push(store);
        self.touched.push(to_install(stream, install.clone()));
    }
}

/// What makes a KedaController change worth a reconcile: a new spec (generation), the start of its
/// deletion, or a change of its finalizers. Status and metadata-only writes (ours included) do not count.
fn kc_predicate(kc: &KedaController) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    kc.metadata.generation.hash(&mut hasher);
    kc.metadata.deletion_timestamp.is_some().hash(&mut hasher);
    kc.metadata.finalizers.hash(&mut hasher);
    Some(hasher.finish())
}

/// Watches the KedaControllers of the install namespace.
fn kc_cache(api: Api<KedaController>) -> (Store<KedaController>, BoxStream<'static, KcEvent>) {
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(kc_predicate, Default::default())
        .boxed();
    (reader, stream)
}

/// A reflector store for `K` and the stream of objects touched (applied or deleted).
fn cached<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, BoxStream<'static, Result<(), watcher::Error>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().reflect(writer).filter_map(|event| {
        futures::future::ready(match event {
            Ok(event) => changed(&event).then_some(Ok(())),
            Err(error) => Some(Err(error)),
        })
    });
    (reader, stream.boxed())
}

/// Whether a watch event may have changed what reconcile sees. A completed (re)list counts once, not per
/// object: an object deleted while the watch was down (an API server restart, `410 Gone`) is in no event
/// of the relist, it is only missing from the store once the relist is done, and must still be restored.
fn changed<K>(event: &watcher::Event<K>) -> bool {
    match event {
        watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone => true,
        watcher::Event::Init | watcher::Event::InitApply(_) => false,
    }
}

/// Maps any change to the installing KedaController.
fn to_install<K: Send + 'static>(
    stream: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    install: ObjectRef<KedaController>,
) -> Touched {
    stream.map(move |r| r.map(|_| install.clone())).boxed()
}

impl Caches {
    /// A watched Secret of the install namespace by name.
    pub fn secret(&self, namespace: &str, name: &str) -> Option<Arc<Secret>> {
        self.managed.secrets.named(Some(namespace), name)
    }

    /// A PersistentVolumeClaim of the install namespace by name.
    pub fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        self.claims.get(&ObjectRef::new(name).within(namespace))
    }

    /// Waits until every store has completed its initial list, so reconcile never mistakes a cold cache for
    /// an empty cluster (prune and cleanup would miss objects).
    pub async fn ready(&self, timeout: Duration) -> bool {
        let all = async {
            // A store only errs when its writer was dropped: the watch is gone for good.
            self.kedacontrollers.wait_until_ready().await.is_ok()
                && self.claims.wait_until_ready().await.is_ok()
                && self.service_accounts.ready().await
                && self.managed.ready().await
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn a_change_or_a_completed_relist_reconciles_and_each_relisted_object_does_not() {
        let cm = ConfigMap::default;
        assert!(changed(&watcher::Event::Apply(cm())));
        assert!(changed(&watcher::Event::Delete(cm())));
        assert!(changed(&watcher::Event::<ConfigMap>::InitDone));
        assert!(!changed(&watcher::Event::<ConfigMap>::Init));
        assert!(!changed(&watcher::Event::InitApply(cm())));
    }
}
