//! The `KedaController` custom resource (`keda.sh/v1alpha1`).
//!
//! Field names and JSON types are those of the Go operators (kedacore/keda-olm-operator and the Red Hat
//! Custom Metrics Autoscaler operator), so CRs written for them apply unchanged; the fields documented as
//! additions are ours.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EnvVar, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint, Volume,
    VolumeMount,
};
use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::audit::PolicyRule;
use crate::{labels, rules};

/// Message of the CEL rule protecting the ownership labels.
pub const OWNERSHIP_MESSAGE: &str = "the labels app.kubernetes.io/managed-by, app.kubernetes.io/part-of and cma.keda.sh/owner-* are set by the operator";

/// Message of the CEL rule protecting the pod selector and ownership labels.
pub const POD_LABELS_MESSAGE: &str = "the pod label 'app' selects the component's pods, and the ownership labels are set by the operator: neither can be changed";

/// CEL rule: audit log rotation settings need a volume claim.
pub const LIFETIME_NEEDS_CLAIM_RULE: &str = "has(self.logOutputVolumeClaim) || !has(self.lifetime) || (!has(self.lifetime.maxAge) && !has(self.lifetime.maxBackup) && !has(self.lifetime.maxSize))";

/// Message of [`LIFETIME_NEEDS_CLAIM_RULE`].
pub const LIFETIME_NEEDS_CLAIM_MESSAGE: &str =
    "lifetime settings need logOutputVolumeClaim: the audit log on standard output is not rotated";

// The value rules of the CRD (patterns as CEL rules with messages in words, size limits, rules across
// fields) are added to the generated schema in one place, `crate::schema::harden`, from the constants of
// `crate::rules` that `validate()` reads too.

/// KedaController installs, configures and heals KEDA. One per cluster, named `keda`, in the operator's
/// namespace.
///
/// Written by hand rather than derived: a CR without `spec` is valid for the Go operators' CRD and must stay
/// readable, which the derive (it requires `spec`) cannot express.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(default)]
pub struct KedaController {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The desired installation.
    pub spec: KedaControllerSpec,
    /// What the operator observed; written through the status subresource only.
    pub status: Option<KedaControllerStatus>,
}

impl KedaController {
    /// API group.
    pub const GROUP: &'static str = "keda.sh";
    /// API version within the group.
    pub const VERSION: &'static str = "v1alpha1";
    /// Kind.
    pub const KIND: &'static str = "KedaController";
    /// Resource (plural) name.
    pub const PLURAL: &'static str = "kedacontrollers";

    /// A KedaController with a name and a namespace.
    pub fn new(namespace: &str, name: &str, spec: KedaControllerSpec) -> Self {
        KedaController {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

impl Serialize for KedaController {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut object = serializer.serialize_struct("KedaController", 5)?;
        object.serialize_field("apiVersion", "keda.sh/v1alpha1")?;
        object.serialize_field("kind", Self::KIND)?;
        object.serialize_field("metadata", &self.metadata)?;
        object.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            object.serialize_field("status", status)?;
        }
        object.end()
    }
}

impl kube::Resource for KedaController {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Self::KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        Self::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        Self::VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Self::PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The desired KEDA installation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaControllerSpec {
    /// Namespaces KEDA watches for ScaledObjects and ScaledJobs: empty for all namespaces, or a
    /// comma-separated list of namespace names.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub watch_namespace: String,

    /// Settings of the KEDA operator (Deployment `keda-operator`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub operator: OperatorSpec,

    /// Settings of the KEDA metrics API server (Deployment `keda-metrics-apiserver`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub metrics_server: MetricsServerSpec,

    /// Settings of the KEDA admission webhooks (Deployment `keda-admission`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub admission_webhooks: AdmissionWebhooksSpec,

    /// Labels and annotations for the `keda-operator` ServiceAccount shared by the three components.
    #[serde(default, skip_serializing_if = "is_default")]
    pub service_account: ServiceAccountSpec,

    /// Addition: pull secrets added to the pods of all three components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub image_pull_secrets: Vec<LocalObjectReference>,

    /// Addition: the NetworkPolicies isolating the KEDA pods.
    #[serde(default, skip_serializing_if = "is_default")]
    pub network_policy: NetworkPolicySpec,

    /// Addition: scraping, alerts and the console dashboard (when the cluster has the monitoring API).
    #[serde(default, skip_serializing_if = "is_default")]
    pub monitoring: MonitoringSpec,
}

/// Addition: how KEDA is monitored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Render ServiceMonitors, the PrometheusRule with KEDA's alerts and (on OpenShift) the console
    /// dashboard and the monitoring RBAC (default true; needs the monitoring.coreos.com API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// Scrape interval of the ServiceMonitors, such as `30s` or `1m` (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// Default scrape interval.
pub const DEFAULT_SCRAPE_INTERVAL: &str = "30s";

impl MonitoringSpec {
    /// Whether monitoring objects are rendered (when the platform can take them).
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// The scrape interval, defaulted.
    pub fn interval(&self) -> &str {
        self.interval.as_deref().unwrap_or(DEFAULT_SCRAPE_INTERVAL)
    }
}

/// Settings every component's Deployment accepts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Annotations added to the Deployment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deployment_annotations: BTreeMap<String, String>,

    /// Labels added to the Deployment; the ownership labels cannot be changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = crate::schema::forbidden_keys_rule(&labels::OWNERSHIP, OWNERSHIP_MESSAGE)))]
    pub deployment_labels: BTreeMap<String, String>,

    /// Annotations added to the pod template.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// Labels added to the pod template; the selector and ownership labels cannot be changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = crate::schema::forbidden_keys_rule(&labels::pod_reserved_keys(), POD_LABELS_MESSAGE)))]
    pub pod_labels: BTreeMap<String, String>,

    /// Node selector, merged over the default `kubernetes.io/os: linux`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub tolerations: Vec<Toleration>,

    /// Affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub affinity: Option<Affinity>,

    /// PriorityClass of the pods.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub priority_class_name: String,

    /// Compute resources of the container; replaces the defaults (requests 100m/100Mi, limits 1/1000Mi) as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub resources: Option<ResourceRequirements>,

    /// Extra command-line arguments: `--flag=value` replaces the same flag or is appended; other entries are
    /// appended as given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,

    /// Extra volumes of the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub volumes: Vec<Volume>,

    /// Extra volume mounts of the container; each must name one of `volumes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub volume_mounts: Vec<VolumeMount>,

    /// Addition: number of pods (default 1). Above 1 a PodDisruptionBudget keeps one pod available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub replicas: Option<i32>,

    /// Addition: environment variables of the container (for example proxy settings), merged by name over
    /// the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub env: Vec<EnvVar>,

    /// Addition: the container image, overriding the operator's default for this component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Addition: topology spread constraints of the pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
}

/// The KEDA operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperatorSpec {
    /// Log level: `debug`, `info` (default), `error`, or a positive integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// Log format: `console` (default) or `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = rules::LOG_ENCODERS))]
    pub log_encoder: Option<String>,

    /// Log time format: `rfc3339` (default), `epoch`, `millis`, `nano`, `iso8601` or `rfc3339nano`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = rules::LOG_TIME_ENCODINGS))]
    pub log_time_encoding: Option<String>,

    /// ConfigMaps holding CA certificates the scalers trust, mounted at `/custom/ca<i>` in list order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub ca_config_maps: Vec<String>,

    /// `"true"` (default) lets the operator reach any destination (scalers talk to arbitrary endpoints);
    /// `"false"` limits its egress to the API server and DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = rules::STRING_BOOLEANS))]
    pub network_egress_allow_all: Option<String>,

    /// Settings shared by all components.
    #[serde(flatten)]
    pub workload: WorkloadSpec,
}

/// The KEDA metrics API server.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsServerSpec {
    /// Log verbosity from `"0"` (info, the default) to `"10"`; `"4"` is debug. Rendered as `--zap-log-level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// Audit logging of requests to the external metrics API.
    #[serde(default, skip_serializing_if = "is_default")]
    pub audit_config: AuditConfig,

    /// `"true"` (default) lets the metrics server reach any destination; `"false"` limits its egress to the
    /// API server, DNS and the KEDA operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = rules::STRING_BOOLEANS))]
    pub network_egress_allow_all: Option<String>,

    /// Settings shared by all components.
    #[serde(flatten)]
    pub workload: WorkloadSpec,
}

/// The KEDA admission webhooks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionWebhooksSpec {
    /// Log level: `debug`, `info` (default), `error`, or a positive integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,

    /// Log format: `console` (default) or `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = rules::LOG_ENCODERS))]
    pub log_encoder: Option<String>,

    /// Log time format: `rfc3339` (default), `epoch`, `millis`, `nano`, `iso8601` or `rfc3339nano`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = rules::LOG_TIME_ENCODINGS))]
    pub log_time_encoding: Option<String>,

    /// Settings shared by all components.
    #[serde(flatten)]
    pub workload: WorkloadSpec,
}

/// Audit logging of the metrics API server; on when `policy.rules` is not empty.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{"rule": LIFETIME_NEEDS_CLAIM_RULE, "message": LIFETIME_NEEDS_CLAIM_MESSAGE}]))]
pub struct AuditConfig {
    /// Format of the audit log: `json` (default) or `legacy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = rules::AUDIT_LOG_FORMATS))]
    pub log_format: Option<String>,

    /// PersistentVolumeClaim (in the KedaController's namespace) the audit log is written to; empty means
    /// standard output of the metrics server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_output_volume_claim: Option<String>,

    /// The audit policy (audit.k8s.io/v1 Policy without its metadata).
    #[serde(default, skip_serializing_if = "is_default")]
    pub policy: AuditPolicy,

    /// Rotation of the audit log file; needs `logOutputVolumeClaim`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lifetime: AuditLifetime,
}

/// audit.k8s.io/v1 Policy without metadata.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPolicy {
    /// Rules in order; the first rule matching a request sets its audit level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PolicyRule>,

    /// Stages for which no events are recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("items" = {"type": "string", "enum": rules::AUDIT_STAGES}))]
    pub omit_stages: Vec<String>,

    /// Omit managed fields from request and response bodies in the audit log.
    #[serde(default, skip_serializing_if = "is_default")]
    pub omit_managed_fields: bool,
}

/// Rotation of the audit log file on the PersistentVolumeClaim.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditLifetime {
    /// Days to keep old audit log files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,

    /// Number of old audit log files to keep (0: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backup: Option<String>,

    /// Size in megabytes at which the audit log file is rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<String>,
}

impl AuditLifetime {
    /// Whether any rotation setting is present.
    pub fn is_set(&self) -> bool {
        self.max_age.is_some() || self.max_backup.is_some() || self.max_size.is_some()
    }
}

/// Metadata of the shared ServiceAccount.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountSpec {
    /// Annotations of the ServiceAccount (for example cloud workload identity).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Labels of the ServiceAccount; the ownership labels cannot be changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = crate::schema::forbidden_keys_rule(&labels::OWNERSHIP, OWNERSHIP_MESSAGE)))]
    pub labels: BTreeMap<String, String>,
}

/// Addition: the NetworkPolicies isolating the KEDA pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// Render the NetworkPolicies (default true). Turn off when the cluster's own policies cover KEDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,

    /// TCP ports of the Kubernetes API server the pods may reach (default 443 and 6443).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 1, max = 65535)))]
    pub api_server_ports: Vec<i32>,

    /// DNS ports the pods may reach over TCP and UDP (default 53 and 5353, the port of OpenShift's DNS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(range(min = 1, max = 65535)))]
    pub dns_ports: Vec<i32>,

    /// Addresses of the Kubernetes API server, as CIDRs (for example `10.0.0.10/32`): when set, the API server
    /// ports are reachable at these addresses only; by default at any address. Give the addresses your
    /// network plugin sees the traffic go to (most see the endpoints behind the `kubernetes` Service).
    #[serde(default, rename = "apiServerCIDRs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), inner(length(max = 64)))]
    pub api_server_cidrs: Vec<String>,
}

/// Default TCP ports of the API server: 443 behind the `kubernetes` Service, 6443 on the endpoints.
pub const DEFAULT_API_SERVER_PORTS: [i32; 2] = [443, 6443];

/// Default DNS ports: 53 everywhere, 5353 for OpenShift's DNS pods.
pub const DEFAULT_DNS_PORTS: [i32; 2] = [53, 5353];

impl NetworkPolicySpec {
    /// Whether the NetworkPolicies are rendered.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    /// API server ports, defaulted.
    pub fn api_server_ports(&self) -> Vec<i32> {
        or_default(&self.api_server_ports, &DEFAULT_API_SERVER_PORTS)
    }

    /// DNS ports, defaulted.
    pub fn dns_ports(&self) -> Vec<i32> {
        or_default(&self.dns_ports, &DEFAULT_DNS_PORTS)
    }
}

fn or_default(values: &[i32], default: &[i32]) -> Vec<i32> {
    if values.is_empty() { default.to_vec() } else { values.to_vec() }
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KedaControllerStatus {
    /// `Installation Succeeded`, `Installation Failed` or `Installation Ignored` (kept for tooling written
    /// for the Go operators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,

    /// Human-readable explanation of the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,

    /// The KEDA version deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `Progressing` and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(transform = crate::schema::embedded_k8s)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// Readiness of each KEDA component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub components: Vec<ComponentStatus>,
}

/// Readiness of one KEDA component.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// `operator`, `metricsServer` or `admissionWebhooks`.
    pub name: String,
    /// All desired replicas are updated and available.
    pub ready: bool,
    /// Desired replicas.
    pub replicas: i32,
    /// Ready replicas.
    pub ready_replicas: i32,
    /// The image the component runs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Why the component is not ready, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Phase values of [`KedaControllerStatus::phase`], as the Go operators spell them.
pub mod phase {
    /// KEDA is installed as specified.
    pub const SUCCEEDED: &str = "Installation Succeeded";
    /// The installation failed; `reason` says why.
    pub const FAILED: &str = "Installation Failed";
    /// This KedaController is not the one that installs KEDA.
    pub const IGNORED: &str = "Installation Ignored";
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

/// The three KEDA components, in the order they are installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// The KEDA operator.
    Operator,
    /// The metrics API server.
    MetricsServer,
    /// The admission webhooks.
    AdmissionWebhooks,
}

impl Component {
    /// All components in installation order.
    pub const ALL: [Component; 3] = [Component::Operator, Component::MetricsServer, Component::AdmissionWebhooks];

    /// The field name of the component in the spec (and its name in status).
    pub fn field(self) -> &'static str {
        match self {
            Component::Operator => "operator",
            Component::MetricsServer => "metricsServer",
            Component::AdmissionWebhooks => "admissionWebhooks",
        }
    }
}

impl KedaControllerSpec {
    /// The settings shared by all components, for one component.
    pub fn workload(&self, component: Component) -> &WorkloadSpec {
        match component {
            Component::Operator => &self.operator.workload,
            Component::MetricsServer => &self.metrics_server.workload,
            Component::AdmissionWebhooks => &self.admission_webhooks.workload,
        }
    }

    /// The namespaces to watch, blanks removed; empty means all namespaces.
    pub fn watched_namespaces(&self) -> Vec<&str> {
        self.watch_namespace.split(',').map(str::trim).filter(|ns| !ns.is_empty()).collect()
    }
}

impl AuditConfig {
    /// Audit logging is on when the policy has rules.
    pub fn is_enabled(&self) -> bool {
        !self.policy.rules.is_empty()
    }
}
