//! The watches of the controller: one reflector store per kind, read by reconcile instead of the API.
//!
//! Namespaced kinds are watched in the install namespace only (label-selected, except ConfigMaps and
//! Secrets, which also hold the CA bundles and service-ca certificates the pods read); the kube-system
//! RoleBinding and the cluster-scoped kinds by label; the APIService and the webhook configuration by name,
//! so one owned by someone else is seen too.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use cma_api::{KedaController, labels};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::Api;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};

use crate::platform::Platform;
use crate::render::monitoring::{DASHBOARD_CONFIG_MAP, DASHBOARD_NAMESPACE};
use crate::render::monitoring_types::{PrometheusRule, ServiceMonitor};
use crate::render::openshift::{GRPC_CERTS_SECRET, serving_cert_secret};
use serde::de::DeserializeOwned;

/// Name of the external metrics APIService.
pub const API_SERVICE_NAME: &str = "v1beta1.external.metrics.k8s.io";
/// Name of the admission webhook configuration.
pub const WEBHOOK_CONFIGURATION_NAME: &str = "keda-admission";
/// Namespace of the RoleBinding to `extension-apiserver-authentication-reader`.
pub const KUBE_SYSTEM: &str = "kube-system";
/// Name of that RoleBinding (watched by name: the operator has no business reading kube-system's others).
pub const AUTH_READER_BINDING: &str = "keda-auth-reader";

/// Read access to every watched kind.
#[derive(Clone)]
pub struct Caches {
    /// KedaControllers in the watched namespaces.
    pub kedacontrollers: Store<KedaController>,
    /// ServiceAccounts we manage (install namespace).
    pub service_accounts: Store<ServiceAccount>,
    /// The gRPC certificates Secret (`kedaorg-certs`), the only Secret the operator writes.
    pub secrets: Store<Secret>,
    /// The service-ca serving certificate Secrets (OpenShift), read for rollouts and expiry.
    pub serving_certs: Vec<Store<Secret>>,
    /// All ConfigMaps of the install namespace.
    pub config_maps: Store<ConfigMap>,
    /// Roles we manage.
    pub roles: Store<Role>,
    /// RoleBindings we manage in the install namespace.
    pub role_bindings: Store<RoleBinding>,
    /// RoleBindings we manage in kube-system.
    pub system_role_bindings: Store<RoleBinding>,
    /// ClusterRoles managed by any cma-operator installation.
    pub cluster_roles: Store<ClusterRole>,
    /// ClusterRoleBindings managed by any cma-operator installation.
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    /// Services we manage.
    pub services: Store<Service>,
    /// NetworkPolicies we manage.
    pub network_policies: Store<NetworkPolicy>,
    /// Deployments we manage.
    pub deployments: Store<Deployment>,
    /// PodDisruptionBudgets we manage.
    pub pod_disruption_budgets: Store<PodDisruptionBudget>,
    /// The external metrics APIService, whoever owns it.
    pub api_services: Store<APIService>,
    /// The `keda-admission` webhook configuration, whoever owns it.
    pub validating_webhook_configurations: Store<ValidatingWebhookConfiguration>,
    /// ServiceMonitors we manage (when the cluster serves monitoring.coreos.com).
    pub service_monitors: Option<Store<ServiceMonitor>>,
    /// PrometheusRules we manage (when the cluster serves monitoring.coreos.com).
    pub prometheus_rules: Option<Store<PrometheusRule>>,
    /// The console dashboard ConfigMap (OpenShift with monitoring).
    pub dashboards: Option<Store<ConfigMap>>,
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
    /// Namespaces whose KedaControllers are watched (empty: all).
    pub watch_namespaces: Vec<String>,
}

impl Scope {
    /// The only namespace KEDA is installed in: the single watched namespace in OLM's OwnNamespace and
    /// SingleNamespace modes (where OLM grants the operator's namespaced permissions), the operator's own
    /// namespace otherwise (AllNamespaces).
    pub fn install_namespace(&self) -> &str {
        match self.watch_namespaces.as_slice() {
            [single] => single,
            _ => &self.operator_namespace,
        }
    }

    /// The KedaController that installs KEDA.
    pub fn install_ref(&self) -> ObjectRef<KedaController> {
        ObjectRef::new(cma_api::rules::KEDACONTROLLER_NAME).within(self.install_namespace())
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
    let managed = format!("{}={}", labels::MANAGED_BY, labels::MANAGED_BY_VALUE);
    let labelled = || watcher::Config::default().labels(&managed).any_semantic();
    let everything = || watcher::Config::default().any_semantic();
    let named = |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}")).any_semantic();
    let install = scope.install_ref();
    let mut touched: Vec<Touched> = Vec::new();

    let (service_accounts, s) = cached::<ServiceAccount>(Api::namespaced(client.clone(), ns), labelled());
    touched.push(by_owner_labels(s));
    // Secrets are watched by name only: RBAC can restrict named watches, and OLM widens the namespaced
    // permissions to the whole cluster in AllNamespaces mode.
    let (secrets, s) = cached::<Secret>(Api::namespaced(client.clone(), ns), named(GRPC_CERTS_SECRET));
    touched.push(to_install(s, install.clone()));
    let mut serving_certs = Vec::new();
    if platform.is_openshift() {
        for service in ["keda-operator", "keda-metrics-apiserver", "keda-admission-webhooks"] {
            let (store, s) =
                cached::<Secret>(Api::namespaced(client.clone(), ns), named(&serving_cert_secret(service)));
            touched.push(to_install(s, install.clone()));
            serving_certs.push(store);
        }
    }
    let (config_maps, s) = cached::<ConfigMap>(Api::namespaced(client.clone(), ns), everything());
    touched.push(to_install(s, install.clone()));
    let (roles, s) = cached::<Role>(Api::namespaced(client.clone(), ns), labelled());
    touched.push(by_owner_labels(s));
    let (role_bindings, s) = cached::<RoleBinding>(Api::namespaced(client.clone(), ns), labelled());
    touched.push(by_owner_labels(s));
    let (system_role_bindings, s) =
        cached::<RoleBinding>(Api::namespaced(client.clone(), KUBE_SYSTEM), named(AUTH_READER_BINDING));
    touched.push(by_owner_labels(s));
    let (cluster_roles, s) = cached::<ClusterRole>(Api::all(client.clone()), labelled());
    touched.push(by_owner_labels(s));
    let (cluster_role_bindings, s) = cached::<ClusterRoleBinding>(Api::all(client.clone()), labelled());
    touched.push(by_owner_labels(s));
    let (services, s) = cached::<Service>(Api::namespaced(client.clone(), ns), labelled());
    touched.push(by_owner_labels(s));
    let (network_policies, s) = cached::<NetworkPolicy>(Api::namespaced(client.clone(), ns), labelled());
    touched.push(by_owner_labels(s));
    let (deployments, s) = cached::<Deployment>(Api::namespaced(client.clone(), ns), labelled());
    touched.push(by_owner_labels(s));
    let (pod_disruption_budgets, s) = cached::<PodDisruptionBudget>(Api::namespaced(client.clone(), ns), labelled());
    touched.push(by_owner_labels(s));
    let (api_services, s) = cached::<APIService>(Api::all(client.clone()), named(API_SERVICE_NAME));
    touched.push(to_install(s, install.clone()));
    let (validating_webhook_configurations, s) =
        cached::<ValidatingWebhookConfiguration>(Api::all(client.clone()), named(WEBHOOK_CONFIGURATION_NAME));
    touched.push(to_install(s, install));

    let (service_monitors, prometheus_rules, dashboards) = if platform.monitoring {
        let (monitors, s) = cached::<ServiceMonitor>(Api::namespaced(client.clone(), ns), labelled());
        touched.push(by_owner_labels(s));
        let (rules, s) = cached::<PrometheusRule>(Api::namespaced(client.clone(), ns), labelled());
        touched.push(by_owner_labels(s));
        let dashboards = platform.is_openshift().then(|| {
            let api = Api::namespaced(client.clone(), DASHBOARD_NAMESPACE);
            let (store, s) = cached::<ConfigMap>(api, named(DASHBOARD_CONFIG_MAP));
            touched.push(by_owner_labels(s));
            store
        });
        (Some(monitors), Some(rules), dashboards)
    } else {
        (None, None, None)
    };

    let kc_api: Api<KedaController> = match scope.watch_namespaces.as_slice() {
        [single] => Api::namespaced(client.clone(), single),
        _ => Api::all(client.clone()),
    };
    let (kedacontrollers, kc_stream) = kc_cache(kc_api, scope.watch_namespaces.clone());

    let caches = Caches {
        kedacontrollers,
        service_accounts,
        secrets,
        config_maps,
        roles,
        role_bindings,
        serving_certs,
        system_role_bindings,
        cluster_roles,
        cluster_role_bindings,
        services,
        network_policies,
        deployments,
        pod_disruption_budgets,
        api_services,
        validating_webhook_configurations,
        service_monitors,
        prometheus_rules,
        dashboards,
    };
    Watches { caches, kedacontrollers: kc_stream, touched }
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

/// Watches KedaControllers; with several watched namespaces (OLM MultiNamespace) the others are filtered
/// out here.
fn kc_cache(api: Api<KedaController>, namespaces: Vec<String>) -> (Store<KedaController>, BoxStream<'static, KcEvent>) {
    let (reader, writer) = reflector::store();
    let stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(kc_predicate, Default::default())
        .filter(move |kc| {
            let keep = match kc {
                Ok(kc) => {
                    namespaces.len() < 2 || namespaces.iter().any(|n| kc.metadata.namespace.as_deref() == Some(n))
                }
                Err(_) => true,
            };
            futures::future::ready(keep)
        })
        .boxed();
    (reader, stream)
}

/// A reflector store for `K` and the stream of objects touched (applied or deleted).
fn cached<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, BoxStream<'static, Result<K, watcher::Error>>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, config).default_backoff().reflect(writer).touched_objects().boxed();
    (reader, stream)
}

/// Maps a managed object to the KedaController named by its ownership labels.
fn by_owner_labels<K>(stream: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static) -> Touched
where
    K: Resource + Send + 'static,
{
    stream
        .filter_map(|r| {
            futures::future::ready(match r {
                Ok(obj) => owner_of(obj.meta()).map(Ok),
                Err(e) => Some(Err(e)),
            })
        })
        .boxed()
}

/// The KedaController an object's ownership labels name.
pub fn owner_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<ObjectRef<KedaController>> {
    let labels = meta.labels.as_ref()?;
    let ns = labels.get(labels::OWNER_NAMESPACE)?;
    let name = labels.get(labels::OWNER_NAME)?;
    Some(ObjectRef::new(name).within(ns))
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
        let key = ObjectRef::new(name).within(namespace);
        std::iter::once(&self.secrets).chain(&self.serving_certs).find_map(|store| store.get(&key))
    }

    /// Waits until every store has completed its initial list, so reconcile never mistakes a cold cache for
    /// an empty cluster (prune and cleanup would miss objects).
    pub async fn ready(&self, timeout: Duration) -> bool {
        let all = async {
            let results = futures::join!(
                self.kedacontrollers.wait_until_ready(),
                self.service_accounts.wait_until_ready(),
                self.secrets.wait_until_ready(),
                self.config_maps.wait_until_ready(),
                self.roles.wait_until_ready(),
                self.role_bindings.wait_until_ready(),
                self.system_role_bindings.wait_until_ready(),
                self.cluster_roles.wait_until_ready(),
                self.cluster_role_bindings.wait_until_ready(),
                self.services.wait_until_ready(),
                self.network_policies.wait_until_ready(),
                self.deployments.wait_until_ready(),
                self.pod_disruption_budgets.wait_until_ready(),
                self.api_services.wait_until_ready(),
                self.validating_webhook_configurations.wait_until_ready(),
            );
            // A store only errs when its writer was dropped: the watch is gone for good.
            let (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o) = results;
            let serving_certs = futures::future::join_all(self.serving_certs.iter().map(Store::wait_until_ready)).await;
            let optional = futures::join!(
                optional_ready(&self.service_monitors),
                optional_ready(&self.prometheus_rules),
                optional_ready(&self.dashboards),
            );
            [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o].iter().all(Result::is_ok)
                && serving_certs.iter().all(Result::is_ok)
                && optional.0
                && optional.1
                && optional.2
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(false)
    }
}

/// Whether an optional store synced (an absent one counts as synced).
async fn optional_ready<K: Resource + Clone + 'static>(store: &Option<Store<K>>) -> bool
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    match store {
        Some(store) => store.wait_until_ready().await.is_ok(),
        None => true,
    }
}

/// The store, or an empty one when the kind is not watched (every lookup misses: objects are applied
/// without the already-applied check and never pruned).
pub fn or_empty<K: Resource + Clone + 'static>(store: &Option<Store<K>>) -> Store<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone + Default,
{
    store.clone().unwrap_or_else(|| reflector::store().0)
}
