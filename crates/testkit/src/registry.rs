//! The resource types the fake serves: built-in Kubernetes kinds plus whatever a test registers.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Addresses a resource type: group, version and plural (the version is informative; objects are
/// stored once per group/plural).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gvr {
    /// API group, empty for core.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `deployments`.
    pub resource: String,
}

impl Gvr {
    /// A group/version/resource triple.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        Self { group: group.to_string(), version: version.to_string(), resource: resource.to_string() }
    }

    /// The resource type of a typed kube resource (k8s-openapi types, `#[derive(CustomResource)]`).
    pub fn of<K: kube::Resource<DynamicType = ()>>() -> Self {
        Self::new(&K::group(&()), &K::version(&()), &K::plural(&()))
    }

    /// `group/resource` key the store uses.
    pub(crate) fn key(&self) -> ResourceKey {
        ResourceKey::new(&self.group, &self.resource)
    }
}

/// Storage key of a resource type: group and plural.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ResourceKey {
    pub group: String,
    pub resource: String,
}

impl ResourceKey {
    pub fn new(group: &str, resource: &str) -> Self {
        Self { group: group.to_string(), resource: resource.to_string() }
    }
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// A resource type the fake serves, as it appears in discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, empty for core.
    pub group: String,
    /// API version served.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name used in URLs.
    pub plural: String,
    /// Lower-case singular name.
    pub singular: String,
    /// Namespaced (true) or cluster-scoped (false).
    pub namespaced: bool,
    /// Has a `status` subresource: main-resource writes ignore `.status`, `/status` writes change only it.
    pub status_subresource: bool,
    /// Short names shown in discovery.
    pub short_names: Vec<String>,
}

impl ResourceType {
    /// A namespaced resource type without status subresource.
    pub fn namespaced(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            namespaced: true,
            status_subresource: false,
            short_names: Vec::new(),
        }
    }

    /// A cluster-scoped resource type without status subresource.
    pub fn cluster(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self { namespaced: false, ..Self::namespaced(group, version, kind, plural) }
    }

    /// The same type with a `status` subresource.
    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// The same type with discovery short names.
    pub fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|n| (*n).to_string()).collect();
        self
    }

    /// The resource type of a typed kube resource whose scope is known at compile time.
    pub fn of<K>() -> Self
    where
        K: kube::Resource<DynamicType = ()>,
        K::Scope: ScopeInfo,
    {
        let make = if K::Scope::NAMESPACED { Self::namespaced } else { Self::cluster };
        make(&K::group(&()), &K::version(&()), &K::kind(&()), &K::plural(&()))
    }

    /// One resource type per served version of a CRD (with status when the CRD declares it).
    pub fn from_crd(crd: &CustomResourceDefinition) -> Vec<Self> {
        let spec = &crd.spec;
        let namespaced = spec.scope == "Namespaced";
        spec.versions
            .iter()
            .filter(|v| v.served)
            .map(|v| Self {
                group: spec.group.clone(),
                version: v.name.clone(),
                kind: spec.names.kind.clone(),
                plural: spec.names.plural.clone(),
                singular: spec.names.singular.clone().unwrap_or_else(|| spec.names.kind.to_lowercase()),
                namespaced,
                status_subresource: v.subresources.as_ref().is_some_and(|s| s.status.is_some()),
                short_names: spec.names.short_names.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// `apiVersion` of objects of this type.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The [`Gvr`] of this type.
    pub fn gvr(&self) -> Gvr {
        Gvr::new(&self.group, &self.version, &self.plural)
    }

    pub(crate) fn key(&self) -> ResourceKey {
        ResourceKey::new(&self.group, &self.plural)
    }
}

/// Compile-time scope of a typed resource (implemented for k8s-openapi's scope markers).
pub trait ScopeInfo {
    /// Whether objects live in a namespace.
    const NAMESPACED: bool;
}

impl ScopeInfo for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl ScopeInfo for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// Registered resource types, keyed by group/plural (one served version each).
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    types: BTreeMap<ResourceKey, ResourceType>,
}

impl Registry {
    /// Registry with the built-in Kubernetes kinds the operator and must-gather touch.
    pub fn builtin() -> Self {
        let mut registry = Self::default();
        for rt in builtin_types() {
            registry.register(rt);
        }
        registry
    }

    pub fn register(&mut self, rt: ResourceType) {
        self.types.insert(rt.key(), rt);
    }

    pub fn get(&self, key: &ResourceKey) -> Option<&ResourceType> {
        self.types.get(key)
    }

    /// Finds a type by group/version/plural as it appears in a URL.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types.get(&ResourceKey::new(group, plural)).filter(|rt| rt.version == version)
    }

    /// Finds a type by `apiVersion` and `kind` (for inserting objects directly).
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types.values().find(|rt| rt.kind == kind && rt.api_version() == api_version)
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }
}

/// Built-in kinds: (group, version, kind, plural, namespaced, status subresource).
const BUILTIN: &[(&str, &str, &str, &str, bool, bool)] = &[
    ("", "v1", "Namespace", "namespaces", false, true),
    ("", "v1", "Node", "nodes", false, true),
    ("", "v1", "Pod", "pods", true, true),
    ("", "v1", "Service", "services", true, true),
    ("", "v1", "Endpoints", "endpoints", true, false),
    ("", "v1", "ConfigMap", "configmaps", true, false),
    ("", "v1", "Secret", "secrets", true, false),
    ("", "v1", "ServiceAccount", "serviceaccounts", true, false),
    ("", "v1", "Event", "events", true, false),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", true, true),
    ("", "v1", "PersistentVolume", "persistentvolumes", false, true),
    ("", "v1", "ResourceQuota", "resourcequotas", true, true),
    ("", "v1", "LimitRange", "limitranges", true, false),
    ("apps", "v1", "Deployment", "deployments", true, true),
    ("apps", "v1", "ReplicaSet", "replicasets", true, true),
    ("apps", "v1", "StatefulSet", "statefulsets", true, true),
    ("apps", "v1", "DaemonSet", "daemonsets", true, true),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", false, false),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", false, false),
    ("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true, false),
    ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", true, true),
    ("apiregistration.k8s.io", "v1", "APIService", "apiservices", false, true),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
        false,
    ),
    ("coordination.k8s.io", "v1", "Lease", "leases", true, false),
    ("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", false, false),
    ("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", false, false),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", true, false),
    ("events.k8s.io", "v1", "Event", "events", true, false),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", false, true),
    ("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", true, true),
    ("batch", "v1", "Job", "jobs", true, true),
    ("batch", "v1", "CronJob", "cronjobs", true, true),
];

fn builtin_types() -> impl Iterator<Item = ResourceType> {
    BUILTIN.iter().map(|&(group, version, kind, plural, namespaced, status)| {
        let rt = if namespaced {
            ResourceType::namespaced(group, version, kind, plural)
        } else {
            ResourceType::cluster(group, version, kind, plural)
        };
        if status { rt.with_status() } else { rt }
    })
}

/// Custom resources the operator and must-gather look for, ready to register.
pub mod known {
    use super::ResourceType;

    /// `keda.sh/v1alpha1` KedaController (namespaced, status subresource).
    pub fn kedacontrollers() -> ResourceType {
        ResourceType::namespaced("keda.sh", "v1alpha1", "KedaController", "kedacontrollers").with_status()
    }

    /// `monitoring.coreos.com/v1` ServiceMonitor.
    pub fn servicemonitors() -> ResourceType {
        ResourceType::namespaced("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors")
    }

    /// `monitoring.coreos.com/v1` PrometheusRule.
    pub fn prometheusrules() -> ResourceType {
        ResourceType::namespaced("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules")
    }

    /// `config.openshift.io/v1` APIServer (cluster-scoped, status subresource).
    pub fn openshift_apiservers() -> ResourceType {
        ResourceType::cluster("config.openshift.io", "v1", "APIServer", "apiservers").with_status()
    }

    /// `route.openshift.io/v1` Route.
    pub fn routes() -> ResourceType {
        ResourceType::namespaced("route.openshift.io", "v1", "Route", "routes").with_status()
    }

    /// `operators.coreos.com/v1alpha1` ClusterServiceVersion.
    pub fn clusterserviceversions() -> ResourceType {
        ResourceType::namespaced("operators.coreos.com", "v1alpha1", "ClusterServiceVersion", "clusterserviceversions")
            .with_status()
            .with_short_names(&["csv"])
    }

    /// `operators.coreos.com/v1alpha1` Subscription.
    pub fn subscriptions() -> ResourceType {
        ResourceType::namespaced("operators.coreos.com", "v1alpha1", "Subscription", "subscriptions")
            .with_status()
            .with_short_names(&["sub"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::rbac::v1::ClusterRole;

    #[test]
    fn typed_resources_map_to_the_builtin_registrations() {
        let registry = Registry::builtin();
        for rt in [ResourceType::of::<Deployment>(), ResourceType::of::<ClusterRole>()] {
            let builtin = registry.get(&rt.key()).unwrap();
            assert_eq!((&builtin.kind, builtin.namespaced), (&rt.kind, rt.namespaced));
        }
        assert!(!ResourceType::of::<ClusterRole>().namespaced);
        assert_eq!(Gvr::of::<Deployment>(), Gvr::new("apps", "v1", "deployments"));
    }

    #[test]
    fn core_and_events_api_events_are_distinct_kinds_by_api_version() {
        let registry = Registry::builtin();
        assert_eq!(registry.by_kind("v1", "Event").unwrap().group, "");
        assert_eq!(registry.by_kind("events.k8s.io/v1", "Event").unwrap().group, "events.k8s.io");
        assert!(registry.lookup("apps", "v2", "deployments").is_none());
    }
}
