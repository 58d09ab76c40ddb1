//! The names of the objects of a KEDA installation, each written once. Everything that names a KEDA
//! object (render, reconcile, status, must-gather, bundle, tests) takes it from here.

use crate::Component;

/// The operator itself: its OLM package, its Deployment, ServiceAccount and RBAC, its pods' name label.
pub const OPERATOR: &str = "cma-operator";
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
/// Name prefix of the HPAs KEDA creates for ScaledObjects.
pub const KEDA_HPA_PREFIX: &str = "keda-hpa-";

/// KEDA's static cluster RBAC (`manifests/keda-2.20/rbac.yaml`) that is not one component's own: the
/// ClusterRole that lets the HPA controller read external metrics, and its binding.
pub const EXTERNAL_METRICS_READER_ROLE: &str = "cma-keda-external-metrics-reader";
/// The binding of [`EXTERNAL_METRICS_READER_ROLE`] to the HPA controller.
pub const HPA_EXTERNAL_METRICS_BINDING: &str = "cma-keda-hpa-controller-external-metrics";

/// Every ClusterRole and ClusterRoleBinding of KEDA's static RBAC, by name. A test holds it equal to
/// `manifests/keda-2.20/rbac.yaml`.
pub fn static_cluster_rbac() -> Vec<&'static str> {
    let own = Component::ALL.into_iter().map(Component::rbac_name);
    own.chain([EXTERNAL_METRICS_READER_ROLE, HPA_EXTERNAL_METRICS_BINDING]).collect()
}

/// Names other installers give KEDA's objects: the Go operators (kedacore/keda-olm-operator and its Red
/// Hat fork) and the KEDA Helm chart. Only takeover and must-gather need them.
pub mod previous {
    /// What the Go operators wrote that this operator does not render: (kind, namespaced, name).
    pub const GO_OPERATOR_RBAC: [(&str, bool, &str); 7] = [
        ("ClusterRole", false, "keda-operator"),
        ("ClusterRole", false, "keda-external-metrics-reader"),
        ("ClusterRoleBinding", false, "keda-operator"),
        ("ClusterRoleBinding", false, "keda-hpa-controller-external-metrics"),
        ("ClusterRoleBinding", false, "keda-system-auth-delegator"),
        ("Role", true, "keda-operator"),
        ("RoleBinding", true, "keda-operator"),
    ];

    /// KEDA's Deployments as the Go operators and upstream's manifests name them, and as the KEDA Helm
    /// chart does.
    pub const DEPLOYMENTS: [&str; 5] = [
        "keda-operator",
        "keda-metrics-apiserver",
        "keda-admission",
        "keda-operator-metrics-apiserver",
        "keda-admission-webhooks",
    ];

    /// The cluster-scoped RBAC names of [`GO_OPERATOR_RBAC`].
    pub fn go_operator_cluster_rbac() -> impl Iterator<Item = &'static str> {
        GO_OPERATOR_RBAC.into_iter().filter(|(_, namespaced, _)| !namespaced).map(|(_, _, name)| name)
    }
}

/// The Secret the service-ca operator writes a Service's serving certificate into (OpenShift).
pub fn serving_cert_secret(service: &str) -> String {
    format!("{service}-certs")
}

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

    /// The component's ClusterRole, ClusterRoleBinding (and, for the operator, Role and RoleBinding) in
    /// KEDA's static RBAC.
    pub fn rbac_name(self) -> &'static str {
        match self {
            Component::Operator => "cma-keda-operator",
            Component::MetricsServer => "cma-keda-metrics-server",
            Component::AdmissionWebhooks => "cma-keda-webhook",
        }
    }

    /// The Secret holding the serving certificate the service-ca operator issues for the component's Service
    /// (OpenShift).
    pub fn serving_cert_secret(self) -> String {
        serving_cert_secret(self.service_name())
    }

    /// The DNS names the component's Service answers to in `namespace`, shortest first.
    pub fn service_dns_names(self, namespace: &str) -> [String; 3] {
        service_dns_names(self.service_name(), namespace)
    }

    /// The component a Deployment name belongs to.
    pub fn of_deployment(name: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.deployment_name() == name)
    }
}

/// The DNS names Service `service` answers to in `namespace`, shortest first.
pub fn service_dns_names(service: &str, namespace: &str) -> [String; 3] {
    [service.to_string(), format!("{service}.{namespace}.svc"), format!("{service}.{namespace}.svc.cluster.local")]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names KEDA's own manifests give its objects; the operator keeps them so that KEDA's documentation,
    /// dashboards and tooling find them. This is the one place they are spelled out.
    #[test]
    fn components_keep_upstream_names() {
        let names: Vec<_> = Component::ALL
            .into_iter()
            .map(|c| (c.deployment_name(), c.service_name(), c.service_account(), c.container_name()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("keda-operator", "keda-operator", "keda-operator", "keda-operator"),
                ("keda-metrics-apiserver", "keda-metrics-apiserver", "keda-metrics-server", "keda-metrics-apiserver"),
                ("keda-admission", "keda-admission-webhooks", "keda-webhook", "keda-admission-webhooks"),
            ]
        );
        for c in Component::ALL {
            assert_eq!(Component::of_deployment(c.deployment_name()), Some(c));
        }
        assert_eq!(Component::of_deployment("keda-admission-webhooks"), None);
    }

    #[test]
    fn the_singleton_rule_names_the_singleton() {
        assert!(crate::rules::SINGLETON_RULE.ends_with(&format!("'{KEDACONTROLLER}'")));
        assert!(crate::rules::SINGLETON_MESSAGE.contains(&format!("'{KEDACONTROLLER}'")));
    }

    #[test]
    fn service_dns_names_are_short_then_qualified() {
        assert_eq!(
            Component::MetricsServer.service_dns_names("ns"),
            [
                "keda-metrics-apiserver".to_string(),
                "keda-metrics-apiserver.ns.svc".to_string(),
                "keda-metrics-apiserver.ns.svc.cluster.local".to_string()
            ]
        );
    }

    #[test]
    fn go_operator_cluster_rbac_leaves_out_namespaced_objects() {
        let names: Vec<_> = previous::go_operator_cluster_rbac().collect();
        assert_eq!(names.len(), 5);
        assert!(names.contains(&"keda-system-auth-delegator"));
    }
}
