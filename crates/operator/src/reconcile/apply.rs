//! Apply and prune: server-side apply of the rendered objects in dependency order (independent objects
//! concurrently), skipping objects the cluster already holds as rendered, then deletion of labelled objects
//! that are no longer rendered.

use std::collections::BTreeSet;
use std::fmt::Debug;

use futures::future::{BoxFuture, FutureExt, join_all};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::compare;
use crate::controller::caches::{Caches, KUBE_SYSTEM, or_empty};
use crate::render::monitoring::DASHBOARD_NAMESPACE;
use crate::render::monitoring_types::{PrometheusRule, ServiceMonitor};
use crate::render::{Desired, Owner};

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "cma-operator";

/// A kind the operator applies: knows how to address its objects.
pub trait Managed:
    Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static
{
    /// The API for objects of this kind in `namespace` (ignored for cluster-scoped kinds).
    fn api(client: &Client, namespace: Option<&str>) -> Api<Self>;
}

macro_rules! namespaced {
    ($($kind:ty),*) => {$(
        impl Managed for $kind {
            fn api(client: &Client, namespace: Option<&str>) -> Api<Self> {
                match namespace {
                    Some(ns) => Api::namespaced(client.clone(), ns),
                    None => Api::default_namespaced(client.clone()),
                }
            }
        }
    )*};
}

macro_rules! cluster_scoped {
    ($($kind:ty),*) => {$(
        impl Managed for $kind {
            fn api(client: &Client, _namespace: Option<&str>) -> Api<Self> {
                Api::all(client.clone())
            }
        }
    )*};
}

namespaced!(
    ServiceAccount,
    Secret,
    ConfigMap,
    Role,
    RoleBinding,
    Service,
    NetworkPolicy,
    Deployment,
    PodDisruptionBudget
);
cluster_scoped!(ClusterRole, ClusterRoleBinding, APIService, ValidatingWebhookConfiguration);
namespaced!(ServiceMonitor, PrometheusRule);

/// One object written by apply or deleted by prune.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Touched {
    /// Kind.
    pub kind: String,
    /// `namespace/name` or `name`.
    pub name: String,
    /// Whether the object existed before this write.
    pub existed: bool,
}

/// A failed write, naming the object.
#[derive(Debug, thiserror::Error)]
#[error("{action} {kind} {name}: {source}")]
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

fn display_name<K: Resource>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

fn object_ref<K: Managed>(obj: &K) -> ObjectRef<K> {
    let r = ObjectRef::new(&obj.name_any());
    match obj.meta().namespace.as_deref() {
        Some(ns) => r.within(ns),
        None => r,
    }
}

/// Whether an API error says a field cannot be changed in place.
fn is_immutable(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 422 && s.message.contains("immutable"))
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(s) if s.code == 404)
}

/// Applies one object unless the cluster already holds it as rendered. Returns what was written.
async fn apply_one<K: Managed>(client: Client, store: Store<K>, obj: K) -> Result<Option<Touched>, WriteError> {
    let live = store.get(&object_ref(&obj));
    let kind = K::kind(&()).to_string();
    let name = display_name(&obj);
    let error = |action, source| WriteError { action, kind: kind.clone(), name: name.clone(), source };
    if let Some(live) = &live
        && let (Ok(live), Ok(desired)) = (serde_json::to_value(&**live), serde_json::to_value(&obj))
        && compare::contains(&live, &desired)
    {
        return Ok(None);
    }
    let api = K::api(&client, obj.meta().namespace.as_deref());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let object_name = obj.name_any();
    match api.patch(&object_name, &params, &Patch::Apply(&obj)).await {
        Ok(_) => {}
        Err(e) if is_immutable(&e) => {
            // A field that cannot change in place (a selector, a roleRef): replace the object.
            tracing::info!(kind, name, "replacing object: an immutable field changed");
            match api.delete(&object_name, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(error("delete", e)),
            }
            api.patch(&object_name, &params, &Patch::Apply(&obj)).await.map_err(|e| error("apply", e))?;
        }
        Err(e) => return Err(error("apply", e)),
    }
    Ok(Some(Touched { kind: kind.clone(), name: name.clone(), existed: live.is_some() }))
}

type Write = BoxFuture<'static, Result<Option<Touched>, WriteError>>;

fn writes<K: Managed>(client: &Client, store: &Store<K>, objects: &[K]) -> Vec<Write> {
    objects.iter().map(|o| apply_one(client.clone(), store.clone(), o.clone()).boxed()).collect()
}

/// RoleBindings live in the install namespace and in kube-system, each watched by its own store.
fn role_binding_writes(client: &Client, caches: &Caches, objects: &[RoleBinding]) -> Vec<Write> {
    objects
        .iter()
        .map(|rb| {
            let store = if rb.metadata.namespace.as_deref() == Some(KUBE_SYSTEM) {
                caches.system_role_bindings.clone()
            } else {
                caches.role_bindings.clone()
            };
            apply_one(client.clone(), store, rb.clone()).boxed()
        })
        .collect()
}

/// ConfigMaps live in the install namespace and, for the console dashboard, in openshift-config-managed.
fn config_map_writes(client: &Client, caches: &Caches, objects: &[ConfigMap]) -> Vec<Write> {
    objects
        .iter()
        .map(|cm| {
            let store = if cm.metadata.namespace.as_deref() == Some(DASHBOARD_NAMESPACE) {
                or_empty(&caches.dashboards)
            } else {
                caches.config_maps.clone()
            };
            apply_one(client.clone(), store, cm.clone()).boxed()
        })
        .collect()
}

/// Applies every object of `desired`, stage by stage: identities, RBAC and configuration; bindings,
/// Services and policies; workloads; then the API registrations that route traffic to the workloads. A
/// stage starts when the previous one succeeded; its objects are applied concurrently.
pub async fn apply(client: &Client, caches: &Caches, desired: &Desired) -> Result<Vec<Touched>, Vec<WriteError>> {
    let Desired {
        service_accounts,
        secrets,
        config_maps,
        roles,
        cluster_roles,
        role_bindings,
        cluster_role_bindings,
        services,
        network_policies,
        deployments,
        pod_disruption_budgets,
        api_services,
        validating_webhook_configurations,
        service_monitors,
        prometheus_rules,
    } = desired;
    let stages: Vec<Vec<Write>> = vec![
        [
            writes(client, &caches.service_accounts, service_accounts),
            writes(client, &caches.secrets, secrets),
            config_map_writes(client, caches, config_maps),
            writes(client, &caches.roles, roles),
            writes(client, &caches.cluster_roles, cluster_roles),
        ]
        .into_iter()
        .flatten()
        .collect(),
        [
            role_binding_writes(client, caches, role_bindings),
            writes(client, &caches.cluster_role_bindings, cluster_role_bindings),
            writes(client, &caches.services, services),
            writes(client, &caches.network_policies, network_policies),
        ]
        .into_iter()
        .flatten()
        .collect(),
        [
            writes(client, &caches.deployments, deployments),
            writes(client, &or_empty(&caches.service_monitors), service_monitors),
            writes(client, &or_empty(&caches.prometheus_rules), prometheus_rules),
            writes(client, &caches.pod_disruption_budgets, pod_disruption_budgets),
        ]
        .into_iter()
        .flatten()
        .collect(),
        [
            writes(client, &caches.api_services, api_services),
            writes(client, &caches.validating_webhook_configurations, validating_webhook_configurations),
        ]
        .into_iter()
        .flatten()
        .collect(),
    ];
    let mut written = Vec::new();
    for stage in stages {
        let (ok, failed): (Vec<_>, Vec<_>) = join_all(stage).await.into_iter().partition(Result::is_ok);
        let failed: Vec<WriteError> = failed.into_iter().filter_map(Result::err).collect();
        if !failed.is_empty() {
            return Err(failed);
        }
        written.extend(ok.into_iter().filter_map(|r| r.ok().flatten()));
    }
    Ok(written)
}

/// Whether an object carries the inventory labels of `owner`.
pub fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, owner: &Owner) -> bool {
    let Some(labels) = meta.labels.as_ref() else {
        return false;
    };
    owner.labels().iter().all(|(k, v)| labels.get(*k) == Some(v))
}

/// Deletes one object; a missing object is not an error.
async fn delete_one<K: Managed>(client: Client, obj: K) -> Result<Option<Touched>, WriteError> {
    let api = K::api(&client, obj.meta().namespace.as_deref());
    let touched = Touched { kind: K::kind(&()).to_string(), name: display_name(&obj), existed: true };
    match api.delete(&obj.name_any(), &DeleteParams::background()).await {
        Ok(_) => Ok(Some(touched)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(source) => Err(WriteError { action: "delete", kind: touched.kind, name: touched.name, source }),
    }
}

/// Deletions of the objects of `store` owned by `owner` and not in `keep`.
fn stale<K: Managed>(client: &Client, store: &Store<K>, owner: &Owner, keep: &[K]) -> Vec<Write> {
    let keep: BTreeSet<(Option<String>, String)> =
        keep.iter().map(|o| (o.meta().namespace.clone(), o.name_any())).collect();
    store
        .state()
        .into_iter()
        .filter(|live| owned_by(live.meta(), owner))
        .filter(|live| !keep.contains(&(live.meta().namespace.clone(), live.name_any())))
        .map(|live| delete_one(client.clone(), (*live).clone()).boxed())
        .collect()
}

/// Deletes what `owner` owns but `desired` no longer renders (every object, when `desired` is empty:
/// uninstall). Only objects carrying the owner's inventory labels are considered.
pub async fn prune(
    client: &Client,
    caches: &Caches,
    owner: &Owner,
    desired: &Desired,
) -> Result<Vec<Touched>, Vec<WriteError>> {
    let Desired {
        service_accounts,
        secrets,
        config_maps,
        roles,
        cluster_roles,
        role_bindings,
        cluster_role_bindings,
        services,
        network_policies,
        deployments,
        pod_disruption_budgets,
        api_services,
        validating_webhook_configurations,
        service_monitors,
        prometheus_rules,
    } = desired;
    let deletions: Vec<Write> = [
        stale(client, &or_empty(&caches.prometheus_rules), owner, prometheus_rules),
        stale(client, &or_empty(&caches.service_monitors), owner, service_monitors),
        stale(client, &or_empty(&caches.dashboards), owner, config_maps),
        stale(client, &caches.validating_webhook_configurations, owner, validating_webhook_configurations),
        stale(client, &caches.api_services, owner, api_services),
        stale(client, &caches.pod_disruption_budgets, owner, pod_disruption_budgets),
        stale(client, &caches.deployments, owner, deployments),
        stale(client, &caches.network_policies, owner, network_policies),
        stale(client, &caches.services, owner, services),
        stale(client, &caches.cluster_role_bindings, owner, cluster_role_bindings),
        stale(client, &caches.role_bindings, owner, role_bindings),
        stale(client, &caches.system_role_bindings, owner, role_bindings),
        stale(client, &caches.cluster_roles, owner, cluster_roles),
        stale(client, &caches.roles, owner, roles),
        stale(client, &caches.config_maps, owner, config_maps),
        stale(client, &caches.secrets, owner, secrets),
        stale(client, &caches.service_accounts, owner, service_accounts),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (ok, failed): (Vec<_>, Vec<_>) = join_all(deletions).await.into_iter().partition(Result::is_ok);
    let failed: Vec<WriteError> = failed.into_iter().filter_map(Result::err).collect();
    if failed.is_empty() { Ok(ok.into_iter().filter_map(|r| r.ok().flatten()).collect()) } else { Err(failed) }
}

/// How many objects of `owner` the caches hold (for the managed-objects gauge).
pub fn count_owned(caches: &Caches, owner: &Owner) -> usize {
    fn count<K: Managed>(store: &Store<K>, owner: &Owner) -> usize {
        store.state().iter().filter(|o| owned_by(o.meta(), owner)).count()
    }
    count(&caches.service_accounts, owner)
        + count(&caches.secrets, owner)
        + count(&caches.config_maps, owner)
        + count(&caches.roles, owner)
        + count(&caches.role_bindings, owner)
        + count(&caches.system_role_bindings, owner)
        + count(&caches.cluster_roles, owner)
        + count(&caches.cluster_role_bindings, owner)
        + count(&caches.services, owner)
        + count(&caches.network_policies, owner)
        + count(&caches.deployments, owner)
        + count(&caches.pod_disruption_budgets, owner)
        + count(&caches.api_services, owner)
        + count(&caches.validating_webhook_configurations, owner)
        + count(&or_empty(&caches.service_monitors), owner)
        + count(&or_empty(&caches.prometheus_rules), owner)
        + count(&or_empty(&caches.dashboards), owner)
}
