//! The names of the objects of a KEDA installation, each written once. Everything that names a KEDA
//! object (render, reconcile, status, must-gather, bundle, tests) takes it from here.

use crate::Component;

/// The KedaController that installs KEDA (one per cluster).
pub const KEDACONTROLLER: &str = "keda";
/// The namespace OperatorHub suggests and the product documentation uses.
pub const SUGGESTED_NAMESPACE: &str = "openshift-keda";
/// The Secret holding the gRPC mTLS certificates between the metrics server and the operator.
pub const GRPC_CERTS_SECRET: &str = "kedaorg-certs";
/// The external metrics APIService.
pub const API_SERVICE: &str = "v1beta1.external.metrics.k8s.io";
/// The API group KEDA's metrics server serves.
pub const EXTERNAL_METRICS_GROUP: &str = "external.metrics.k8s.io";
/// The admission webhook configuration.
pub const WEBHOOK_CONFIGURATION: &str = "keda-admission";
/// The namespace of the RoleBinding to `extension-apiserver-authentication-reader`.
pub const KUBE_SYSTEM: &str = "kube-system";
/// The RoleBinding in kube-system that lets the metrics server read the authentication configuration.
pub const AUTH_READER_BINDING: &str = "keda-auth-reader";
/// The ConfigMap holding the metrics server's audit policy.
pub const AUDIT_POLICY_CONFIG_MAP: &str = "keda-metrics-server-audit-policy";
/// The ConfigMap the service-ca operator injects the service CA into (OpenShift).
pub const CA_BUNDLE_CONFIG_MAP: &str = "keda-ocp-cabundle";

impl Component {
    /// The component's Deployment.
    pub fn deployment_name(self) -> &'static str {
        match self {
            Component::Operator => "keda-operator",
            Component::MetricsServer => "keda-metrics-apiserver",
            Component::AdmissionWebhooks => "keda-admission",
        }
    }

    /// The component's Service (and the value of its pods' `app` label).
    pub fn service_name(self) -> &'static str {
        match self {
            Component::Operator => "keda-operator",
            Component::MetricsServer => "keda-metrics-apiserver",
            Component::AdmissionWebhooks => "keda-admission-webhooks",
        }
    }

    /// The component's ServiceAccount (static: installed with the operator, never written by it).
    pub fn service_account(self) -> &'static str {
        match self {
            Component::Operator => "keda-operator",
            Component::MetricsServer => "keda-metrics-server",
            Component::AdmissionWebhooks => "keda-webhook",
        }
    }

    /// The component's container.
    pub fn container_name(self) -> &'static str {
        self.service_name()
    }

    /// The component a Deployment name belongs to.
    pub fn of_deployment(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.deployment_name() == name)
    }
}
