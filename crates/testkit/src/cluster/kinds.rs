//! The kinds tests read and write by name, for dynamic access to the real API server.

use kube::api::ApiResource;

/// A kind, its resource and its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// API group (empty for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource.
    pub plural: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
}

impl Kind {
    const fn new(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str) -> Self {
        Kind { group, version, kind, plural, namespaced: true }
    }

    const fn cluster(group: &'static str, version: &'static str, kind: &'static str, plural: &'static str) -> Self {
        Kind { group, version, kind, plural, namespaced: false }
    }

    /// kube's description of the resource.
    pub fn resource(&self) -> ApiResource {
        let api_version =
            if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) };
        ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version,
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }

    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        self.resource().api_version
    }

    /// The kind whose objects carry `api_version` and `kind`.
    pub fn of(api_version: &str, kind: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.kind == kind && k.api_version() == api_version)
    }
}

/// KedaControllers.
pub const KEDACONTROLLER: Kind = Kind::new("keda.sh", "v1alpha1", "KedaController", "kedacontrollers");
/// ScaledObjects.
pub const SCALEDOBJECT: Kind = Kind::new("keda.sh", "v1alpha1", "ScaledObject", "scaledobjects");
/// ScaledJobs.
pub const SCALEDJOB: Kind = Kind::new("keda.sh", "v1alpha1", "ScaledJob", "scaledjobs");
/// TriggerAuthentications.
pub const TRIGGER_AUTHENTICATION: Kind =
    Kind::new("keda.sh", "v1alpha1", "TriggerAuthentication", "triggerauthentications");
/// ClusterTriggerAuthentications.
pub const CLUSTER_TRIGGER_AUTHENTICATION: Kind =
    Kind::cluster("keda.sh", "v1alpha1", "ClusterTriggerAuthentication", "clustertriggerauthentications");
/// CloudEventSources.
pub const CLOUD_EVENT_SOURCE: Kind = Kind::new("eventing.keda.sh", "v1alpha1", "CloudEventSource", "cloudeventsources");
/// ClusterCloudEventSources.
pub const CLUSTER_CLOUD_EVENT_SOURCE: Kind =
    Kind::cluster("eventing.keda.sh", "v1alpha1", "ClusterCloudEventSource", "clustercloudeventsources");
/// Namespaces.
pub const NAMESPACE: Kind = Kind::cluster("", "v1", "Namespace", "namespaces");
/// Nodes.
pub const NODE: Kind = Kind::cluster("", "v1", "Node", "nodes");
/// Pods.
pub const POD: Kind = Kind::new("", "v1", "Pod", "pods");
/// ServiceAccounts.
pub const SERVICE_ACCOUNT: Kind = Kind::new("", "v1", "ServiceAccount", "serviceaccounts");
/// Secrets.
pub const SECRET: Kind = Kind::new("", "v1", "Secret", "secrets");
/// ConfigMaps.
pub const CONFIG_MAP: Kind = Kind::new("", "v1", "ConfigMap", "configmaps");
/// Services.
pub const SERVICE: Kind = Kind::new("", "v1", "Service", "services");
/// core/v1 Events.
pub const CORE_EVENT: Kind = Kind::new("", "v1", "Event", "events");
/// Endpoints.
pub const ENDPOINTS: Kind = Kind::new("", "v1", "Endpoints", "endpoints");
/// EndpointSlices.
pub const ENDPOINT_SLICE: Kind = Kind::new("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices");
/// ResourceQuotas.
pub const RESOURCE_QUOTA: Kind = Kind::new("", "v1", "ResourceQuota", "resourcequotas");
/// LimitRanges.
pub const LIMIT_RANGE: Kind = Kind::new("", "v1", "LimitRange", "limitranges");
/// Jobs.
pub const JOB: Kind = Kind::new("batch", "v1", "Job", "jobs");
/// PersistentVolumeClaims.
pub const PVC: Kind = Kind::new("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims");
/// Roles.
pub const ROLE: Kind = Kind::new("rbac.authorization.k8s.io", "v1", "Role", "roles");
/// RoleBindings.
pub const ROLE_BINDING: Kind = Kind::new("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings");
/// ClusterRoles.
pub const CLUSTER_ROLE: Kind = Kind::cluster("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles");
/// ClusterRoleBindings.
pub const CLUSTER_ROLE_BINDING: Kind =
    Kind::cluster("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings");
/// NetworkPolicies.
pub const NETWORK_POLICY: Kind = Kind::new("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies");
/// Deployments.
pub const DEPLOYMENT: Kind = Kind::new("apps", "v1", "Deployment", "deployments");
/// ReplicaSets.
pub const REPLICA_SET: Kind = Kind::new("apps", "v1", "ReplicaSet", "replicasets");
/// PodDisruptionBudgets.
pub const PDB: Kind = Kind::new("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets");
/// APIServices.
pub const API_SERVICE: Kind = Kind::cluster("apiregistration.k8s.io", "v1", "APIService", "apiservices");
/// ValidatingWebhookConfigurations.
pub const VALIDATING_WEBHOOK: Kind = Kind::cluster(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
);
/// MutatingWebhookConfigurations.
pub const MUTATING_WEBHOOK: Kind = Kind::cluster(
    "admissionregistration.k8s.io",
    "v1",
    "MutatingWebhookConfiguration",
    "mutatingwebhookconfigurations",
);
/// CustomResourceDefinitions.
pub const CRD: Kind =
    Kind::cluster("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions");
/// events.k8s.io Events.
pub const EVENT: Kind = Kind::new("events.k8s.io", "v1", "Event", "events");
/// Leases.
pub const LEASE: Kind = Kind::new("coordination.k8s.io", "v1", "Lease", "leases");
/// HorizontalPodAutoscalers.
pub const HPA: Kind = Kind::new("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers");
/// ServiceMonitors (monitoring.coreos.com, when installed).
pub const SERVICE_MONITOR: Kind = Kind::new("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors");
/// PodMonitors (monitoring.coreos.com, when installed).
pub const POD_MONITOR: Kind = Kind::new("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors");
/// PrometheusRules (monitoring.coreos.com, when installed).
pub const PROMETHEUS_RULE: Kind = Kind::new("monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules");
/// OpenShift's cluster API server configuration (config.openshift.io, when installed).
pub const OPENSHIFT_APISERVER: Kind = Kind::cluster("config.openshift.io", "v1", "APIServer", "apiservers");
/// OpenShift Routes (route.openshift.io, when installed).
pub const ROUTE: Kind = Kind::new("route.openshift.io", "v1", "Route", "routes");
/// OLM ClusterServiceVersions (operators.coreos.com, when installed).
pub const CSV: Kind = Kind::new("operators.coreos.com", "v1alpha1", "ClusterServiceVersion", "clusterserviceversions");
/// OLM Subscriptions (operators.coreos.com, when installed).
pub const SUBSCRIPTION: Kind = Kind::new("operators.coreos.com", "v1alpha1", "Subscription", "subscriptions");
/// OLM InstallPlans (operators.coreos.com, when installed).
pub const INSTALL_PLAN: Kind = Kind::new("operators.coreos.com", "v1alpha1", "InstallPlan", "installplans");
/// OLM OperatorGroups (operators.coreos.com, when installed).
pub const OPERATOR_GROUP: Kind = Kind::new("operators.coreos.com", "v1", "OperatorGroup", "operatorgroups");

/// Every kind above.
pub const ALL: &[Kind] = &[
    KEDACONTROLLER,
    SCALEDOBJECT,
    SCALEDJOB,
    TRIGGER_AUTHENTICATION,
    CLUSTER_TRIGGER_AUTHENTICATION,
    CLOUD_EVENT_SOURCE,
    CLUSTER_CLOUD_EVENT_SOURCE,
    NAMESPACE,
    NODE,
    POD,
    SERVICE_ACCOUNT,
    SECRET,
    CONFIG_MAP,
    SERVICE,
    CORE_EVENT,
    ENDPOINTS,
    ENDPOINT_SLICE,
    RESOURCE_QUOTA,
    LIMIT_RANGE,
    JOB,
    PVC,
    ROLE,
    ROLE_BINDING,
    CLUSTER_ROLE,
    CLUSTER_ROLE_BINDING,
    NETWORK_POLICY,
    DEPLOYMENT,
    REPLICA_SET,
    PDB,
    API_SERVICE,
    VALIDATING_WEBHOOK,
    MUTATING_WEBHOOK,
    CRD,
    EVENT,
    LEASE,
    HPA,
    SERVICE_MONITOR,
    POD_MONITOR,
    PROMETHEUS_RULE,
    OPENSHIFT_APISERVER,
    ROUTE,
    CSV,
    SUBSCRIPTION,
    INSTALL_PLAN,
    OPERATOR_GROUP,
];
