//! A populated cluster on the fake API server: one cma-operator installation in `openshift-keda` with KEDA's
//! three components and the operator's own pod, KEDA resources in an application namespace, OLM objects,
//! cluster RBAC, the APIService, the webhook configuration, KEDA's HPAs and Jobs, unrelated objects that must
//! be left out, and secret values planted where support must never see them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use base64::Engine;
use cma_testkit::{FakeApiServer, ResourceType, known};
use serde_json::{Value, json};

/// The operator namespace of the fixture.
pub const NS: &str = "openshift-keda";
/// The application namespace holding KEDA resources.
pub const APP: &str = "app";

/// Values planted in the cluster that must appear in no byte of the output.
pub struct Planted {
    /// In a Secret's `data` (base64 on the wire).
    pub secret_value: &'static str,
    /// In a Secret's `kubectl.kubernetes.io/last-applied-configuration`.
    pub last_applied_value: &'static str,
    /// Inline HashiCorp Vault token of a TriggerAuthentication.
    pub vault_token: &'static str,
    /// Inline password in a ClusterTriggerAuthentication (an unknown field).
    pub cta_password: &'static str,
    /// Env value of the operator pod and its Deployment.
    pub env_token: &'static str,
    /// Inline credential in a ScaledObject trigger's metadata.
    pub trigger_password: &'static str,
    /// A private key in `kedaorg-certs`.
    pub private_key_line: &'static str,
    /// The token of a kubeconfig left in a ConfigMap.
    pub kubeconfig_token: &'static str,
    /// The client key of that kubeconfig.
    pub kubeconfig_key: &'static str,
}

impl Planted {
    /// Every planted value, plus the base64 forms a careless redaction would leave.
    pub fn all(&self) -> Vec<String> {
        let mut v: Vec<String> = [
            self.secret_value,
            self.last_applied_value,
            self.vault_token,
            self.cta_password,
            self.env_token,
            self.trigger_password,
            self.private_key_line,
            self.kubeconfig_token,
            self.kubeconfig_key,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let b64: Vec<String> = v.iter().map(|s| b64(s)).collect();
        v.extend(b64);
        v
    }
}

/// The planted values.
pub const PLANTED: Planted = Planted {
    secret_value: "pl4nted-Secret-Value-0001",
    last_applied_value: "pl4nted-LastApplied-0002",
    vault_token: "hvs.pl4ntedVaultToken0003",
    cta_password: "pl4nted-CtaPassword-0004",
    env_token: "pl4nted-EnvToken-0005",
    trigger_password: "pl4nted-TriggerPassword-0006",
    private_key_line: "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpl4ntedKey0007",
    kubeconfig_token: "sha256~pl4ntedKubeconfigToken0008",
    kubeconfig_key: "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tpl4nted0009",
};

/// A kubeconfig someone left in a ConfigMap.
pub fn kubeconfig() -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://api.example:6443\nusers:\n- name: admin\n  user:\n    token: {}\n    client-key-data: {}\n",
        PLANTED.kubeconfig_token, PLANTED.kubeconfig_key
    )
}

/// Base64 of a string.
pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A public certificate (fixture file).
pub fn certificate() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keda-operator.crt")).unwrap()
}

/// The CRDs of the API crate, generated once per test binary (schema generation is slow in debug builds).
pub static CRDS: std::sync::LazyLock<
    Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>,
> = std::sync::LazyLock::new(|| cma_api::crd::all().unwrap());

/// Registers every type the collector reads that the fake does not serve by default.
pub fn register_types(fake: &FakeApiServer) {
    for crd in CRDS.iter() {
        fake.register_crd(crd).unwrap();
    }
    fake.register(known::servicemonitors());
    fake.register(known::prometheusrules());
    fake.register(ResourceType::namespaced("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors"));
    fake.register(known::clusterserviceversions());
    fake.register(known::subscriptions());
    fake.register(
        ResourceType::namespaced("operators.coreos.com", "v1alpha1", "InstallPlan", "installplans").with_status(),
    );
    fake.register(
        ResourceType::namespaced("operators.coreos.com", "v1", "OperatorGroup", "operatorgroups").with_status(),
    );
}

fn meta(name: &str, ns: &str) -> Value {
    json!({"name": name, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "cma-operator", "cma.keda.sh/owner-namespace": ns}})
}

/// A pod with one container (and a restart count).
pub fn pod(ns: &str, name: &str, app: &str, container: &str, restarts: i64, env: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"containers": [{"name": container, "image": "ghcr.io/kedacore/keda:2.20.2", "env": env}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": container, "restartCount": restarts, "ready": true}]},
    })
}

/// An installation of cma-operator in `ns` (OLM objects, KedaController, Deployments, Pods and the rest).
pub fn installation(fake: &FakeApiServer, ns: &str, version: &str) {
    let csv = format!("cma-operator.v{version}");
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"openshift.io/cluster-monitoring": "true"}}}),
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription", "metadata": {"name": "cma-operator", "namespace": ns},
            "spec": {"name": "cma-operator", "channel": "stable", "source": "redhat-operators", "sourceNamespace": "openshift-marketplace"},
            "status": {"installedCSV": csv, "currentCSV": "cma-operator.v9.9.9", "installPlanRef": {"name": "install-abcde", "namespace": ns}}}),
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion", "metadata": {"name": csv, "namespace": ns},
            "spec": {"version": version, "displayName": "Custom Metrics Autoscaler",
                "install": {"strategy": "deployment", "spec": {"deployments": [{"name": "cma-operator", "spec": {"template": {"spec": {"containers": [{"name": "manager", "env": [{"name": "OPERATOR_TOKEN", "value": PLANTED.env_token}]}]}}}}]}}},
            "status": {"phase": "Succeeded"}}),
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion", "metadata": {"name": "cma-operator.v9.9.9", "namespace": ns},
            "spec": {"version": "9.9.9"}, "status": {"phase": "Pending"}}),
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "InstallPlan", "metadata": {"name": "install-abcde", "namespace": ns},
            "spec": {"clusterServiceVersionNames": [csv], "approval": "Automatic", "approved": true}, "status": {"phase": "Complete"}}),
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "InstallPlan", "metadata": {"name": "install-other", "namespace": ns},
            "spec": {"clusterServiceVersionNames": ["other-operator.v1.0.0"], "approval": "Automatic", "approved": true}}),
        json!({"apiVersion": "operators.coreos.com/v1", "kind": "OperatorGroup", "metadata": {"name": "openshift-keda", "namespace": ns}, "spec": {"upgradeStrategy": "Default"}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController", "metadata": {"name": "keda", "namespace": ns},
            "spec": {"watchNamespace": "", "operator": {"logLevel": "debug"}}, "status": {"phase": "Installation Succeeded", "version": "2.20.2"}}),
    ];
    for o in objects {
        fake.insert(&o).unwrap();
    }
    for (deploy, app) in [
        ("keda-operator", "keda-operator"),
        ("keda-metrics-apiserver", "keda-metrics-apiserver"),
        ("keda-admission", "keda-admission-webhooks"),
        ("cma-operator", "cma-operator"),
    ] {
        let env = if deploy == "cma-operator" {
            json!([{"name": "API_TOKEN", "value": PLANTED.env_token}, {"name": "WATCH_NAMESPACE", "value": ""}])
        } else {
            json!([{"name": "WATCH_NAMESPACE", "value": ""}, {"name": "KEDA_HTTP_DEFAULT_TIMEOUT", "value": "3000"}])
        };
        fake.insert(&json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(deploy, ns),
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": app, "image": "img", "env": env}]}}}}))
            .unwrap();
        fake.insert(
            &json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta(&format!("{deploy}-5d4f8"), ns),
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}}}}),
        )
        .unwrap();
        let restarts = i64::from(deploy == "keda-operator");
        fake.insert(&pod(ns, &format!("{deploy}-5d4f8-x1"), app, app, restarts, env)).unwrap();
        fake.set_pod_log(ns, &format!("{deploy}-5d4f8-x1"), app, false, format!(
            "2025-01-01T00:00:00Z INFO starting {app}\n2025-01-01T00:00:01Z DEBUG connecting with password {}\n2025-01-01T00:00:02Z INFO Authorization: Bearer sha256~abcdefghijklmnop0123\n2025-01-01T00:00:03Z INFO ready\n",
            PLANTED.secret_value
        ));
        if restarts > 0 {
            fake.set_pod_log(
                ns,
                &format!("{deploy}-5d4f8-x1"),
                app,
                true,
                "2024-12-31T23:59:59Z ERROR crashed: vault token hvs.pl4ntedVaultToken0003 rejected\n",
            );
        }
    }
    let key_pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", PLANTED.private_key_line);
    let applied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": ns},
        "stringData": {"password": PLANTED.last_applied_value}});
    let more = vec![
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("kedaorg-certs", ns), "type": "kubernetes.io/tls",
            "data": {"ca.crt": b64(&certificate()), "tls.crt": b64(&certificate()), "tls.key": b64(&key_pem)}}),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-credentials", "namespace": ns, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied.to_string()}},
            "data": {"password": b64(PLANTED.secret_value), "username": b64("keda")}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("keda-operator", ns), "spec": {"selector": {"app": "keda-operator"}, "ports": [{"name": "metricsservice", "port": 9666}, {"name": "metrics", "port": 8080}]}}),
        json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("keda-operator", ns), "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "metrics", "port": 8080}]}]}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta("keda-operator-abc", ns), "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("keda-ocp-cabundle", ns), "data": {"service-ca.crt": certificate()}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "debug-kubeconfig", "namespace": ns}, "data": {"kubeconfig": kubeconfig()}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("keda-operator", ns)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("keda-operator", ns), "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("keda-operator", ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "keda-operator"}, "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": ns}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("keda-default-deny", ns), "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("keda-operator", ns), "spec": {"minAvailable": 1}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "audit-log", "namespace": ns}, "spec": {"accessModes": ["ReadWriteOnce"]}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "keda.1", "namespace": ns}, "reason": "Installed", "message": "KEDA installed", "involvedObject": {"kind": "KedaController", "name": "keda"}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": meta("keda-operator", ns), "spec": {"endpoints": [{"port": "metrics"}]}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta("keda-pods", ns), "spec": {"podMetricsEndpoints": [{"port": "metrics"}]}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": meta("keda-rules", ns), "spec": {"groups": []}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "operator.keda.sh", "namespace": ns}, "spec": {"holderIdentity": "keda-operator-5d4f8-x1"}}),
        json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota", "namespace": ns}, "spec": {"hard": {"pods": "10"}}}),
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits", "namespace": ns}, "spec": {"limits": []}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": format!("keda-auth-reader-{ns}"), "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": ns}]}),
    ];
    for o in more {
        fake.insert(&o).unwrap();
    }
}

/// The cluster-wide objects and KEDA resources of the fixture, plus unrelated objects.
pub fn cluster(fake: &FakeApiServer) {
    let objects = vec![
        // Unrelated OLM objects: another operator, and OLM's copy of our CSV in an application namespace.
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion", "metadata": {"name": "other-operator.v1.0.0", "namespace": "other"}, "spec": {"version": "1.0.0"}}),
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion", "metadata": {"name": "cma-operator.v0.1.0", "namespace": APP, "labels": {"olm.copiedFrom": NS}}, "spec": {"version": "0.1.0"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta("keda-operator", NS), "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "keda-external-metrics-reader"}, "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cma-operator.v0.1.0-abc", "labels": {"olm.owner": "cma-operator.v0.1.0"}}, "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "admin"}, "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta("keda-operator", NS),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "keda-operator"}, "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": NS}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "keda-hpa-controller-external-metrics"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "keda-external-metrics-reader"}, "subjects": [{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "keda-system-auth-delegator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"}, "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": NS}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "Group", "name": "admins"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "keda-auth-reader", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": NS}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "unrelated", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"}, "subjects": [{"kind": "User", "name": "bob"}]}),
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100, "service": {"name": "keda-metrics-apiserver", "namespace": NS}},
            "status": {"conditions": [{"type": "Available", "status": "False", "reason": "FailedDiscoveryCheck", "message": "failing or missing response from https://10.0.0.2:6443"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "keda-admission"},
            "webhooks": [{"name": "vscaledobject.kb.io", "clientConfig": {"service": {"name": "keda-admission-webhooks", "namespace": NS}}}]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "other-webhook"},
            "webhooks": [{"name": "v.other.io", "clientConfig": {"service": {"name": "other", "namespace": "other"}}}]}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "so-1", "namespace": APP},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "redis", "metadata": {"address": "redis:6379", "listName": "jobs", "password": PLANTED.trigger_password}}]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "sj-1", "namespace": APP},
            "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "worker", "image": "w", "env": [{"name": "DB_PASSWORD", "value": PLANTED.env_token}]}]}}},
                "triggers": [{"type": "rabbitmq", "metadata": {"queueName": "q", "hostFromEnv": "RABBIT_HOST"}}]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "ta-vault", "namespace": APP},
            "spec": {"hashiCorpVault": {"address": "https://vault:8200", "authentication": "token", "credential": {"token": PLANTED.vault_token},
                "secrets": [{"parameter": "password", "path": "secret/data/redis", "key": "password"}]},
                "secretTargetRef": [{"parameter": "password", "name": "redis-auth", "key": "password"}]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication", "metadata": {"name": "cta-1"},
            "spec": {"podIdentity": {"provider": "aws"}, "legacyInline": {"password": PLANTED.cta_password}}}),
        json!({"apiVersion": "eventing.keda.sh/v1alpha1", "kind": "CloudEventSource", "metadata": {"name": "ces-1", "namespace": APP},
            "spec": {"destination": {"http": {"uri": "http://sink"}}}}),
        json!({"apiVersion": "eventing.keda.sh/v1alpha1", "kind": "ClusterCloudEventSource", "metadata": {"name": "cces-1"},
            "spec": {"destination": {"http": {"uri": "http://sink"}}}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "keda-hpa-so-1", "namespace": APP, "labels": {"scaledobject.keda.sh/name": "so-1"}},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 10}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": APP}, "spec": {"maxReplicas": 3}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sj-1-x7k2p", "namespace": APP, "labels": {"scaledjob.keda.sh/name": "sj-1"}}, "spec": {}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "backup", "namespace": APP}, "spec": {}}),
        // Events: KEDA's about its resources and its HPAs are collected in the application namespace, others not.
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "so-1.1", "namespace": APP}, "type": "Warning", "reason": "KEDAScalerFailed",
            "message": "error parsing redis metadata", "involvedObject": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "so-1", "namespace": APP}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "keda-hpa-so-1.1", "namespace": APP}, "type": "Warning", "reason": "FailedGetExternalMetric",
            "message": "unable to get external metric app/s0-redis-jobs: no metrics returned from external metrics API",
            "involvedObject": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "keda-hpa-so-1", "namespace": APP}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": APP}, "reason": "SuccessfulRescale",
            "involvedObject": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web", "namespace": APP}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web-abc.1", "namespace": APP}, "reason": "Pulled",
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-abc", "namespace": APP}}),
    ];
    for o in objects {
        fake.insert(&o).unwrap();
    }
    fake.set_raw_get(
        "/apis/external.metrics.k8s.io/v1beta1",
        200,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "external.metrics.k8s.io/v1beta1",
            "resources": [{"name": "externalmetrics", "namespaced": true, "kind": "ExternalMetricValueList", "verbs": ["get"]}]}),
    );
}

/// The whole fixture.
pub fn populated() -> FakeApiServer {
    let fake = FakeApiServer::new();
    register_types(&fake);
    installation(&fake, NS, "0.1.0");
    cluster(&fake);
    fake
}

/// Every file below `root`, relative, sorted.
pub fn files(root: &Path) -> Vec<PathBuf> {
    cma_must_gather::archive::tree_files(root).unwrap()
}
