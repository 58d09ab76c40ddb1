//! A populated cluster on the real API server (`cma_testkit::cluster`): one cma-operator installation with
//! KEDA's three components and the operator's own Deployment (their pods created by the controller manager,
//! run by the test kubelet, their logs served by it), KEDA resources in an application namespace, OLM objects
//! (OLM's CRDs, no OLM), cluster RBAC, the APIService with KEDA's metrics API served by a stand-in (or KEDA's
//! metrics server crash-looping), the webhook configuration, KEDA's HPAs and Jobs, unrelated objects that must
//! be left out, and secret values planted where support must never see them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use cma_must_gather::{Options, Summary, gather};
use cma_testkit::cluster::{
    self, Apis, AuditEvent, AuditMark, Cluster, ExternalMetricsApi, Faults, Kind, Kubelet, kinds,
};
use futures::StreamExt;
use serde_json::{Value, json};

/// How long the fixture waits for the cluster to reach a state.
pub const WAIT: Duration = Duration::from_secs(60);

/// Values planted in the cluster that must appear in no byte of the output.
pub struct Planted {
    /// In a Secret's `data` (base64 on the wire).
    pub secret_value: &'static str,
    /// In a Secret's `kubectl.kubernetes.io/last-applied-configuration`.
    pub last_applied_value: &'static str,
    /// Inline HashiCorp Vault token of a TriggerAuthentication.
    pub vault_token: &'static str,
    /// Inline HashiCorp Vault token of a ClusterTriggerAuthentication.
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

/// The Deployments of an installation: (Deployment, `app` label and container name).
pub const DEPLOYMENTS: [(&str, &str); 4] = [
    ("keda-operator", "keda-operator"),
    ("keda-metrics-apiserver", "keda-metrics-apiserver"),
    ("keda-admission", "keda-admission-webhooks"),
    ("cma-operator", "cma-operator"),
];

/// The container of Deployment `deployment`'s pod.
pub fn container_of(deployment: &str) -> &'static str {
    DEPLOYMENTS.iter().find(|(d, _)| *d == deployment).map(|(_, c)| *c).unwrap()
}

/// What KEDA's metrics server is doing in the fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsServer {
    /// Serving: `external.metrics.k8s.io` answers through the aggregator (a stand-in on loopback).
    Serving,
    /// Crash-looping: its pod never becomes ready, so its Service has no ready endpoints and the APIService is
    /// not Available (`MissingEndpoints`).
    CrashLooping,
}

/// A control plane serving everything the collector reads, cleared of earlier tests' namespaces.
pub async fn cluster() -> Cluster {
    let cluster = cluster::acquire(Apis::kubernetes().with_monitoring().with_olm()).await;
    // The collector reads every namespace: what earlier tests left must be gone first.
    cluster.wait_for_reset().await;
    cluster
}

/// One installation: its namespace and the pod of each of its Deployments.
pub struct Installation {
    /// The operator namespace (`openshift-keda-N`).
    pub ns: String,
    /// Pod name by Deployment name.
    pub pods: BTreeMap<String, String>,
    kubelet: Kubelet,
}

/// The populated cluster of the tests.
pub struct Fixture {
    /// The control plane.
    pub cluster: Cluster,
    /// The operator namespace (`openshift-keda-N`).
    pub ns: String,
    /// The application namespace holding KEDA resources.
    pub app: String,
    /// An unrelated namespace (another operator).
    pub other: String,
    /// Pod name by Deployment name, in `ns`.
    pub pods: BTreeMap<String, String>,
    installations: Vec<Installation>,
    metrics: Option<ExternalMetricsApi>,
}

impl Fixture {
    /// The pod of Deployment `deployment` in the operator namespace.
    pub fn pod(&self, deployment: &str) -> &str {
        &self.pods[deployment]
    }

    /// The stand-in serving KEDA's metrics API (with [`MetricsServer::Serving`]).
    pub fn metrics(&self) -> &ExternalMetricsApi {
        self.metrics.as_ref().unwrap()
    }

    /// A client as the binary builds it (no retries) with admin rights, answering what `faults` chooses itself.
    pub fn client(&self, faults: Option<&Faults>) -> kube::Client {
        client(self.cluster.config(), faults)
    }

    /// A whole gather with admin rights.
    pub async fn gather(&self, opts: &Options) -> Summary {
        gather(self.client(None), opts).await.unwrap()
    }

    /// Adds another installation of version `version` in a new namespace `prefix-N`; returns its namespace
    /// and its pods by Deployment.
    pub async fn add_installation(&mut self, prefix: &str, version: &str) -> (String, BTreeMap<String, String>) {
        let installation = installation(&self.cluster, prefix, version, MetricsServer::Serving).await;
        let found = (installation.ns.clone(), installation.pods.clone());
        self.installations.push(installation);
        found
    }

    /// A ServiceAccount `name` in the operator namespace allowed to read everything the collector reads but
    /// `denied` (`secrets`, `pods`: core resources); returns its client configuration.
    pub async fn gatherer_without(&self, name: &str, denied: &[&str]) -> kube::Config {
        const CORE: [&str; 11] = [
            "pods",
            "pods/log",
            "services",
            "endpoints",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "persistentvolumeclaims",
            "events",
            "namespaces",
            "resourcequotas",
        ];
        let core: Vec<&str> = CORE.iter().copied().chain(["limitranges"]).filter(|r| !denied.contains(r)).collect();
        let groups = [
            "apps",
            "discovery.k8s.io",
            "rbac.authorization.k8s.io",
            "networking.k8s.io",
            "policy",
            "monitoring.coreos.com",
            "coordination.k8s.io",
            "keda.sh",
            "eventing.keda.sh",
            "apiextensions.k8s.io",
            "apiregistration.k8s.io",
            "admissionregistration.k8s.io",
            "autoscaling",
            "batch",
            "operators.coreos.com",
        ];
        let role = format!("{}-{name}", self.ns);
        create_all(
            &self.cluster,
            vec![
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": self.ns}}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
                    "rules": [{"apiGroups": [""], "resources": core, "verbs": ["get", "list"]},
                              {"apiGroups": groups, "resources": ["*"], "verbs": ["get", "list"]}]}),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": self.ns}]}),
            ],
        )
        .await;
        let config = self.cluster.service_account_config(&self.ns, name).await;
        // The authorizer learns of new bindings from a watch: wait until this one is in effect.
        let client = client(config.clone(), None);
        let deployments = cma_testkit::cluster::api(&client, &kinds::DEPLOYMENT, &self.ns);
        self.cluster
            .eventually(WAIT, &format!("ServiceAccount {name}'s permissions in effect"), async || {
                deployments.list(&kube::api::ListParams::default()).await.is_ok()
            })
            .await;
        config
    }

    /// Merge-patches KedaController `keda` of the operator namespace.
    pub async fn patch_kedacontroller(&self, patch: &Value) {
        self.cluster.merge_patch_as("kubectl-edit", &kinds::KEDACONTROLLER, &self.ns, "keda", patch).await;
    }
}

/// A client built as the binary builds it (kube's retries off) from `config`, without a User-Agent of its own
/// (the collector names itself on every request), answering what `faults` chooses itself.
pub fn client(config: kube::Config, faults: Option<&Faults>) -> kube::Client {
    let builder = kube::client::ClientBuilder::try_from(cma_must_gather::cli::client_config(config)).unwrap();
    match faults {
        Some(faults) => builder.with_layer(faults).build(),
        None => builder.build(),
    }
}

/// Creates `objects` in order, at most 8 at a time; the `status` of an object is written afterwards through
/// its status subresource (a create ignores it).
pub async fn create_all(cluster: &Cluster, objects: Vec<Value>) {
    futures::stream::iter(objects.into_iter().map(|o| create(cluster, o)))
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// Creates one object, then writes its `status`.
pub async fn create(cluster: &Cluster, mut object: Value) {
    let status = object.as_object_mut().unwrap().remove("status");
    cluster.create(&object).await;
    if let Some(status) = status {
        let kind = Kind::of(object["apiVersion"].as_str().unwrap(), object["kind"].as_str().unwrap()).unwrap();
        let ns = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap();
        cluster.patch_status(&kind, ns, name, &json!({"status": status})).await;
    }
}

fn meta(name: &str, ns: &str) -> Value {
    json!({"name": name, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "cma-operator", "cma.keda.sh/owner-namespace": ns}})
}

/// The current log of each KEDA pod: a secret value and a bearer token among ordinary lines.
pub fn pod_log(container: &str) -> String {
    format!(
        "2025-01-01T00:00:00Z INFO starting {container}\n2025-01-01T00:00:01Z DEBUG connecting with password {}\n2025-01-01T00:00:02Z INFO Authorization: Bearer sha256~abcdefghijklmnop0123\n2025-01-01T00:00:03Z INFO ready\n",
        PLANTED.secret_value
    )
}

/// The previous log of `keda-operator`, which restarted.
pub const PREVIOUS_LOG: &str = "2024-12-31T23:59:59Z ERROR crashed: vault token hvs.pl4ntedVaultToken0003 rejected\n";

/// An installation of cma-operator in a new namespace `prefix-N`: OLM objects, KedaController, the
/// Deployments with their running pods and logs, and the rest.
pub async fn installation(cluster: &Cluster, prefix: &str, version: &str, metrics: MetricsServer) -> Installation {
    let ns = cluster.namespace(prefix).await;
    let kubelet = cluster.kubelet(&ns);
    kubelet.restarted("keda-operator-", 1);
    if metrics == MetricsServer::CrashLooping {
        kubelet.hold("keda-metrics-apiserver-");
    }
    cluster
        .merge_patch_as(
            "cma-test",
            &kinds::NAMESPACE,
            "",
            &ns,
            &json!({"metadata": {"labels": {"openshift.io/cluster-monitoring": "true"}}}),
        )
        .await;
    let csv = format!("cma-operator.v{version}");
    let mut objects = vec![
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
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("keda-operator", &ns)}),
    ];
    for (deploy, app) in DEPLOYMENTS {
        let env = if deploy == "cma-operator" {
            json!([{"name": "API_TOKEN", "value": PLANTED.env_token}, {"name": "WATCH_NAMESPACE", "value": ""}])
        } else {
            json!([{"name": "WATCH_NAMESPACE", "value": ""}, {"name": "KEDA_HTTP_DEFAULT_TIMEOUT", "value": "3000"}])
        };
        objects.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(deploy, &ns),
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app}},
                    "spec": {"containers": [{"name": app, "image": "ghcr.io/kedacore/keda:2.20.2", "env": env}]}}}}));
    }
    let key_pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", PLANTED.private_key_line);
    let applied = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials", "namespace": ns},
        "stringData": {"password": PLANTED.last_applied_value}});
    objects.extend([
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("kedaorg-certs", &ns), "type": "kubernetes.io/tls",
            "data": {"ca.crt": b64(&certificate()), "tls.crt": b64(&certificate()), "tls.key": b64(&key_pem)}}),
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db-credentials", "namespace": ns, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied.to_string()}},
            "data": {"password": b64(PLANTED.secret_value), "username": b64("keda")}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("keda-operator", &ns),
            "spec": {"selector": {"app": "keda-operator"}, "ports": [{"name": "metricsservice", "port": 9666}, {"name": "metrics", "port": 8080}]}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("keda-ocp-cabundle", &ns), "data": {"service-ca.crt": certificate()}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "debug-kubeconfig", "namespace": ns}, "data": {"kubeconfig": kubeconfig()}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta("keda-operator", &ns), "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta("keda-operator", &ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "keda-operator"}, "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": ns}]}),
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("keda-default-deny", &ns), "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("keda-operator", &ns),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "keda-operator"}}}}),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "audit-log", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "keda.1", "namespace": ns}, "reason": "Installed", "message": "KEDA installed",
            "involvedObject": {"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController", "name": "keda", "namespace": ns}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": meta("keda-operator", &ns), "spec": {"endpoints": [{"port": "metrics"}]}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": meta("keda-pods", &ns), "spec": {"podMetricsEndpoints": [{"port": "metrics"}]}}),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": meta("keda-rules", &ns), "spec": {"groups": []}}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "operator.keda.sh", "namespace": ns}, "spec": {"holderIdentity": "keda-operator"}}),
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits", "namespace": ns}, "spec": {"limits": [{"type": "Container", "defaultRequest": {"cpu": "10m"}}]}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": format!("keda-auth-reader-{ns}"), "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": ns}]}),
    ]);
    create_all(cluster, objects).await;
    let pods = running_pods(cluster, &ns, metrics).await;
    // After the pods: a quota whose usage the controller has not counted yet refuses new pods.
    create(cluster, json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "quota", "namespace": ns}, "spec": {"hard": {"pods": "20"}}}))
        .await;
    cluster
        .eventually(WAIT, "the quota's usage counted", async || {
            cluster
                .get(&kinds::RESOURCE_QUOTA, &ns, "quota")
                .await
                .is_some_and(|q| q["status"]["used"]["pods"].is_string())
        })
        .await;
    for (deploy, pod) in &pods {
        cluster.container_logs().set(&ns, pod, container_of(deploy), pod_log(container_of(deploy)));
    }
    cluster.container_logs().set_previous(&ns, &pods["keda-operator"], "keda-operator", PREVIOUS_LOG);
    Installation { ns, pods, kubelet }
}

/// Waits until every Deployment of the installation in `ns` has its pod (running, but for a crash-looping
/// metrics server) and the Service's endpoints are published; returns the pods by Deployment.
async fn running_pods(cluster: &Cluster, ns: &str, metrics: MetricsServer) -> BTreeMap<String, String> {
    let mut pods = BTreeMap::new();
    for (deploy, app) in DEPLOYMENTS {
        let ready = !(deploy == "keda-metrics-apiserver" && metrics == MetricsServer::CrashLooping);
        let mut name = String::new();
        cluster
            .eventually(WAIT, &format!("the pod of Deployment {ns}/{deploy}"), async || {
                let found = cluster.list(&kinds::POD, ns, &format!("app={app}")).await;
                match found.as_slice() {
                    [pod] if !ready || pod["status"]["phase"] == "Running" => {
                        name = pod["metadata"]["name"].as_str().unwrap().to_string();
                        true
                    }
                    _ => false,
                }
            })
            .await;
        if ready {
            cluster
                .eventually(WAIT, &format!("Deployment {ns}/{deploy} available"), async || {
                    cluster
                        .get(&kinds::DEPLOYMENT, ns, deploy)
                        .await
                        .is_some_and(|d| d["status"]["availableReplicas"] == 1)
                })
                .await;
        }
        pods.insert(deploy.to_string(), name);
    }
    cluster
        .eventually(WAIT, "the endpoints of Service keda-operator", async || {
            cluster.get(&kinds::ENDPOINTS, ns, "keda-operator").await.is_some()
                && !cluster
                    .list(&kinds::ENDPOINT_SLICE, ns, "kubernetes.io/service-name=keda-operator")
                    .await
                    .is_empty()
        })
        .await;
    pods
}

/// KEDA's metrics server crash-looping in `ns`: its Service selects a pod that never becomes ready, and the
/// APIService points there. Returns once the API server reports why it is not available: no ready endpoint
/// (until the endpoint controller has published the Service's EndpointSlice, the reason is another one).
pub async fn crash_looping_metrics_server(cluster: &Cluster, ns: &str) {
    create(
        cluster,
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("keda-metrics-apiserver", ns),
            "spec": {"selector": {"app": "keda-metrics-apiserver"}, "ports": [{"name": "https", "port": 443, "targetPort": 6443}]}}),
    )
    .await;
    create(
        cluster,
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": cluster::EXTERNAL_METRICS_APISERVICE},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                "insecureSkipTLSVerify": true, "service": {"name": "keda-metrics-apiserver", "namespace": ns, "port": 443}}}),
    )
    .await;
    cluster
        .eventually(WAIT, "APIService v1beta1.external.metrics.k8s.io not Available: MissingEndpoints", async || {
            cluster.get(&kinds::API_SERVICE, "", cluster::EXTERNAL_METRICS_APISERVICE).await.is_some_and(|s| {
                s["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter().any(|c| {
                        c["type"] == "Available" && c["status"] == "False" && c["reason"] == "MissingEndpoints"
                    })
                })
            })
        })
        .await;
}

/// The cluster-wide objects and KEDA resources of the fixture, plus unrelated objects.
async fn cluster_objects(cluster: &Cluster, ns: &str, app: &str, other: &str) {
    let copied_csv = json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
        "metadata": {"name": "cma-operator.v0.1.0", "namespace": app, "labels": {"olm.copiedFrom": ns}}, "spec": {"version": "0.1.0"}});
    let webhook = |name: &str, service: &str, namespace: &str| {
        // No rules: the webhook is never called (nothing serves it), as KEDA's is when its pod is down and
        // requests would otherwise fail.
        json!({"name": name, "clientConfig": {"service": {"name": service, "namespace": namespace}},
               "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Ignore"})
    };
    let objects = vec![
        // Unrelated OLM objects: another operator, and OLM's copy of our CSV in an application namespace.
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion", "metadata": {"name": "other-operator.v1.0.0", "namespace": other}, "spec": {"version": "1.0.0"}}),
        copied_csv,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta("keda-operator", ns), "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "keda-external-metrics-reader"}, "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cma-operator.v0.1.0-abc", "labels": {"olm.owner": "cma-operator.v0.1.0"}}, "rules": []}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta("keda-operator", ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "keda-operator"}, "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": ns}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "keda-hpa-controller-external-metrics"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "keda-external-metrics-reader"}, "subjects": [{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "keda-system-auth-delegator"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"}, "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": ns}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admins"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}, "subjects": [{"kind": "Group", "name": "admins"}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "keda-auth-reader", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": ns}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "unrelated", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "x"}, "subjects": [{"kind": "User", "name": "bob"}]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "keda-admission"},
            "webhooks": [webhook("vscaledobject.kb.io", "keda-admission-webhooks", ns)]}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "other-webhook"},
            "webhooks": [webhook("v.other.io", "other", other)]}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "so-1", "namespace": app},
            "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [{"type": "redis", "metadata": {"address": "redis:6379", "listName": "jobs", "password": PLANTED.trigger_password}}]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "sj-1", "namespace": app},
            "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "worker", "image": "w", "env": [{"name": "DB_PASSWORD", "value": PLANTED.env_token}]}]}}},
                "triggers": [{"type": "rabbitmq", "metadata": {"queueName": "q", "hostFromEnv": "RABBIT_HOST"}}]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "ta-vault", "namespace": app},
            "spec": {"hashiCorpVault": {"address": "https://vault:8200", "authentication": "token", "credential": {"token": PLANTED.vault_token},
                "secrets": [{"parameter": "password", "path": "secret/data/redis", "key": "password"}]},
                "secretTargetRef": [{"parameter": "password", "name": "redis-auth", "key": "password"}]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ClusterTriggerAuthentication", "metadata": {"name": "cta-1"},
            "spec": {"podIdentity": {"provider": "aws"},
                "hashiCorpVault": {"address": "https://vault:8200", "authentication": "token", "credential": {"token": PLANTED.cta_password},
                    "secrets": [{"parameter": "password", "path": "secret/data/redis", "key": "password"}]}}}),
        json!({"apiVersion": "eventing.keda.sh/v1alpha1", "kind": "CloudEventSource", "metadata": {"name": "ces-1", "namespace": app},
            "spec": {"destination": {"http": {"uri": "http://sink"}}}}),
        json!({"apiVersion": "eventing.keda.sh/v1alpha1", "kind": "ClusterCloudEventSource", "metadata": {"name": "cces-1"},
            "spec": {"destination": {"http": {"uri": "http://sink"}}}}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web", "namespace": app},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "sj-1-x7k2p", "namespace": app, "labels": {"scaledjob.keda.sh/name": "sj-1"}},
            "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "w"}]}}}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "backup", "namespace": app},
            "spec": {"suspend": true, "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "backup", "image": "b"}]}}}}),
        // Events: KEDA's about its resources and its HPAs are collected in the application namespace, others not.
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "so-1.1", "namespace": app}, "type": "Warning", "reason": "KEDAScalerFailed",
            "message": "error parsing redis metadata", "involvedObject": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "so-1", "namespace": app}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "keda-hpa-so-1.1", "namespace": app}, "type": "Warning", "reason": "FailedGetExternalMetric",
            "message": "unable to get external metric app/s0-redis-jobs: no metrics returned from external metrics API",
            "involvedObject": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "keda-hpa-so-1", "namespace": app}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web.1", "namespace": app}, "reason": "SuccessfulRescale",
            "involvedObject": {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "web", "namespace": app}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "web-abc.1", "namespace": app}, "reason": "Pulled",
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "web-abc", "namespace": app}}),
    ];
    create_all(cluster, objects).await;
    // KEDA's HPA for so-1, owned by it as KEDA makes it.
    let so = cluster.get(&kinds::SCALEDOBJECT, app, "so-1").await.unwrap();
    create(cluster, json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-so-1", "namespace": app, "labels": {"scaledobject.keda.sh/name": "so-1"},
            "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "so-1", "uid": so["metadata"]["uid"], "controller": true}]},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10,
            "metrics": [{"type": "External", "external": {"metric": {"name": "s0-redis-jobs", "selector": {"matchLabels": {"scaledobject.keda.sh/name": "so-1"}}},
                "target": {"type": "AverageValue", "averageValue": "5"}}}]}}))
    .await;
}

/// The whole fixture, KEDA's metrics server serving.
pub async fn populated() -> Fixture {
    populated_with(MetricsServer::Serving).await
}

/// The whole fixture, with KEDA's metrics server doing `metrics`.
pub async fn populated_with(metrics: MetricsServer) -> Fixture {
    let cluster = cluster().await;
    let app = cluster.namespace("app").await;
    let other = cluster.namespace("other").await;
    let installation = installation(&cluster, "openshift-keda", "0.1.0", metrics).await;
    let ns = installation.ns.clone();
    cluster_objects(&cluster, &ns, &app, &other).await;
    let metrics = match metrics {
        MetricsServer::Serving => Some(cluster.serve_external_metrics(&ns, "keda-metrics-apiserver").await),
        MetricsServer::CrashLooping => {
            crash_looping_metrics_server(&cluster, &ns).await;
            None
        }
    };
    let pods = installation.pods.clone();
    Fixture { cluster, ns, app, other, pods, installations: vec![installation], metrics }
}

/// The collector's requests in the API server's audit log since `mark`, once there are `logged` of them (the
/// server writes a request's event when its answer is complete, a moment after the client has it).
pub async fn collector_requests(cluster: &Cluster, mark: AuditMark, logged: usize) -> Vec<AuditEvent> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = cluster.audit().by_agent(mark, cma_must_gather::fetch::USER_AGENT);
        if found.len() >= logged {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{logged} requests of the collector expected in the audit log, found {}: {:#?}",
            found.len(),
            found.iter().map(|e| &e.uri).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every file below `root`, relative, sorted.
pub fn files(root: &Path) -> Vec<PathBuf> {
    cma_must_gather::archive::tree_files(root).unwrap()
}
