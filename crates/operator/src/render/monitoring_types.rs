//! The two prometheus-operator kinds the operator applies. Their CRDs belong to the monitoring stack, so
//! the specs are kept as open JSON maps: we send what we render and read back what the cluster holds.

use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `monitoring.coreos.com/v1` ServiceMonitor spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "ServiceMonitor",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
pub struct ServiceMonitorSpec {
    /// Every field of the spec.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// `monitoring.coreos.com/v1` PrometheusRule spec.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PrometheusRule",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
pub struct PrometheusRuleSpec {
    /// Every field of the spec.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}
