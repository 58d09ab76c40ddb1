//! Harness for whole-flow tests: the real `cma-operator run` loop (`controller::run_until`) against a real
//! kube-apiserver (`cma_testkit::cluster`), plus helpers to create KedaControllers, read what the cluster
//! holds and wait for the operator to settle, judged by the API server's audit log.

use cma_api::Component;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use cma_operator::controller::{RunError, Settings, run_until};
use cma_operator::leader::Timing;
use cma_testkit::cluster::{self, Apis, AuditEvent, AuditMark, Cluster, Faults, Kind, kinds};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cma_testkit::cluster::{eventually, kinds as k};

pub mod reconciles;

/// How long a test waits for the operator to reach a state (generous: CI machines are slow and shared).
pub const WAIT: Duration = Duration::from_secs(30);

/// The User-Agent prefix of operators started by tests (`cma-operator-test/<identity>`).
pub const AGENT: &str = "cma-operator-test/";

/// A test's own control plane and namespace.
pub struct Env {
    /// The control plane, lent to this test.
    pub cluster: Cluster,
    /// The namespace the operator runs in (and installs KEDA into).
    pub ns: String,
}

/// A control plane serving `apis` and a fresh namespace named `prefix-N`, holding KEDA's static
/// ServiceAccounts and permissions as the operator's installation puts them there.
pub async fn env_with(apis: Apis, prefix: &str) -> Env {
    logging();
    let cluster = cluster::acquire(apis).await;
    let ns = cluster.namespace(prefix).await;
    for object in keda_rbac(&ns) {
        cluster.apply_as("cma-install", &object).await;
    }
    Env { cluster, ns }
}

/// KEDA's static RBAC (manifests/keda-2.20/rbac.yaml) for an installation in `namespace`.
pub fn keda_rbac(namespace: &str) -> Vec<Value> {
    let path = cluster::workspace_root().join("manifests/keda-2.20/rbac.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = text.replace(cma_api::names::SUGGESTED_NAMESPACE, namespace);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// A plain Kubernetes control plane and a fresh namespace.
pub async fn env() -> Env {
    env_with(Apis::kubernetes(), "keda").await
}

/// How to start an operator.
#[derive(Clone)]
pub struct Options {
    /// Namespace it runs in (the test's namespace when `None`).
    pub namespace: Option<String>,
    /// Its identity (Lease holder, and its User-Agent `cma-operator-test/<identity>`).
    pub identity: String,
    /// Elect a leader.
    pub leader_elect: bool,
    /// Create the default KedaController.
    pub create_default: bool,
    /// Watched namespaces.
    pub watch_namespaces: Vec<String>,
    /// Where a `/metrics` serving certificate is mounted; the operator's self-issued one is served when `None`.
    pub metrics_cert_dir: Option<std::path::PathBuf>,
    /// Act as this ServiceAccount (`namespace`, `name`) instead of as a cluster admin.
    pub service_account: Option<(String, String)>,
    /// Faults injected into the operator's requests.
    pub faults: Option<Faults>,
    /// The operator's clock (certificate rotation tests).
    pub clock: Option<cma_operator::context::Clock>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: None,
            identity: "operator".into(),
            leader_elect: false,
            create_default: false,
            watch_namespaces: Vec::new(),
            metrics_cert_dir: None,
            service_account: None,
            faults: None,
            clock: None,
        }
    }
}

/// A running operator.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), RunError>>,
    /// Its User-Agent.
    pub agent: String,
    /// Where `/metrics` is served.
    pub metrics_addr: SocketAddr,
    /// Where the probes are served.
    pub probe_addr: SocketAddr,
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("no free port: {e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"))
}

/// Short leader election timings so tests see takeovers in seconds.
pub fn fast_leader_timing() -> Timing {
    Timing {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    }
}

impl Env {
    /// Starts the operator (the same loop `cma-operator run` runs) against this test's control plane.
    pub async fn start(&self, options: Options) -> Operator {
        let metrics_addr = free_port();
        let probe_addr = free_port();
        let settings = Settings {
            operator_namespace: options.namespace.clone().unwrap_or_else(|| self.ns.clone()),
            watch_namespaces: options.watch_namespaces.clone(),
            leader_elect: options.leader_elect,
            leader_timing: fast_leader_timing(),
            identity: options.identity.clone(),
            metrics_addr,
            metrics_cert_dir: options.metrics_cert_dir.clone(),
            probe_addr,
            create_default_kedacontroller: options.create_default,
            platform: None,
            discovery_interval: Duration::from_secs(3600),
            sync_timeout: Duration::from_secs(20),
        };
        let agent = format!("{AGENT}{}", options.identity);
        let config = match &options.service_account {
            Some((ns, name)) => self.cluster.service_account_config(ns, name).await,
            None => self.cluster.config(),
        };
        // The operator's own client stack (HTTP/2), with the test's faults in front of it.
        let stack = cma_operator::client::stack(config, &agent).unwrap_or_else(|e| panic!("{e}"));
        let client = match &options.faults {
            Some(faults) => kube::Client::new(tower::Layer::layer(faults, stack), self.ns.clone()),
            None => kube::Client::new(stack, self.ns.clone()),
        };
        let clock = options.clock.clone().unwrap_or_else(|| Arc::new(Timestamp::now));
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(run_until(
            client,
            settings,
            async move {
                let _ = stopped.await;
            },
            clock,
        ));
        Operator { stop: Some(stop), handle, agent, metrics_addr, probe_addr }
    }

    /// Creates KedaController `name` in `namespace` with `spec`.
    pub async fn create_kedacontroller(&self, namespace: &str, name: &str, spec: Value) {
        self.cluster.create(&kedacontroller(namespace, name, spec)).await;
    }

    /// Creates KedaController `keda` in the test namespace.
    pub async fn create_keda(&self, spec: Value) {
        self.create_kedacontroller(&self.ns, "keda", spec).await;
    }

    /// Replaces the spec of `keda` in the test namespace, as `kubectl edit` would.
    pub async fn update_spec(&self, spec: Value) {
        let patch = json!([{"op": "add", "path": "/spec", "value": spec}]);
        self.cluster.json_patch_as("kubectl-edit", &kinds::KEDACONTROLLER, &self.ns, "keda", &patch).await;
    }

    /// Starts an operator, creates `keda` with `spec` and waits until everything is applied and it settled.
    pub async fn installed(&self, spec: Value) -> Operator {
        let operator = self.start(Options::default()).await;
        self.create_keda(spec).await;
        self.wait_installed().await;
        self.settle(&operator).await;
        operator
    }

    /// Waits until the webhook configuration and the last Deployment exist.
    pub async fn wait_installed(&self) {
        eventually(WAIT, "the installation is applied", async || {
            self.cluster.get(&kinds::VALIDATING_WEBHOOK, "", "keda-admission").await.is_some()
                && self.cluster.get(&kinds::DEPLOYMENT, &self.ns, "keda-admission").await.is_some()
        })
        .await;
    }

    /// Waits until the three Deployments exist.
    pub async fn wait_installed_workloads(&self) {
        eventually(WAIT, "the Deployments are applied", async || {
            let mut all = true;
            for name in Component::ALL.map(Component::deployment_name) {
                all &= self.cluster.get(&kinds::DEPLOYMENT, &self.ns, name).await.is_some();
            }
            all
        })
        .await;
    }

    /// The reconciles of this test's KedaController `keda` logged so far.
    pub fn reconciles(&self) -> Vec<reconciles::Reconciled> {
        reconciles::of(&self.ns, cma_api::names::KEDACONTROLLER)
    }

    /// Makes a change the operator watches but has no reason to act on (an annotation of someone else's
    /// on a managed Service), and waits (bounded) until a reconcile ran because of it. Returns that
    /// reconcile's log line: what the operator did about a change that needs nothing.
    pub async fn nudge(&self) -> reconciles::Reconciled {
        let before = self.reconciles().len();
        let note = json!({"metadata": {"annotations": {"example.com/nudge": Timestamp::now().to_string()}}});
        let service = Component::Operator.service_name();
        self.cluster.merge_patch_as("kubectl-annotate", &kinds::SERVICE, &self.ns, service, &note).await;
        eventually(WAIT, "the operator reconciles after the change", async || self.reconciles().len() > before).await;
        self.reconciles().pop().unwrap_or_default()
    }

    /// Waits until `operator` made no write for half a second.
    pub async fn settle(&self, operator: &Operator) {
        self.settle_for(operator, Duration::from_millis(500)).await;
    }

    /// Waits until `operator` made no write for `quiet`.
    pub async fn settle_for(&self, operator: &Operator, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mark = self.cluster.audit().mark();
            tokio::time::sleep(quiet).await;
            let writes = self.writes_since(operator, mark);
            if writes.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the operator kept writing for {WAIT:?}: {:?}",
                writes.iter().map(AuditEvent::describe).collect::<Vec<_>>()
            );
        }
    }

    /// Requests `operator` made since `mark`.
    pub fn requests_since(&self, operator: &Operator, mark: AuditMark) -> Vec<AuditEvent> {
        self.cluster.audit().by_agent(mark, &operator.agent)
    }

    /// Writes `operator` made since `mark` (Events and the leader Lease aside).
    pub fn writes_since(&self, operator: &Operator, mark: AuditMark) -> Vec<AuditEvent> {
        self.requests_since(operator, mark)
            .into_iter()
            .filter(|e| e.is_write() && e.object.resource != "events" && e.object.resource != "leases")
            .collect()
    }

    /// An object of the test namespace, or a cluster-scoped one when `kind` is.
    pub async fn get(&self, kind: &Kind, name: &str) -> Option<Value> {
        self.cluster.get(kind, &self.ns, name).await
    }

    /// A Deployment of the test namespace (panics when missing).
    pub async fn deployment(&self, name: &str) -> Value {
        self.get(&kinds::DEPLOYMENT, name).await.unwrap_or_else(|| panic!("Deployment {name} missing"))
    }

    /// The first container's args of a Deployment.
    pub async fn container_args(&self, name: &str) -> Vec<String> {
        self.deployment(name).await["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// The status condition `type_` of `keda` in `namespace`, as (status, reason, message).
    pub async fn condition_in(&self, namespace: &str, name: &str, type_: &str) -> Option<(String, String, String)> {
        let kc = self.cluster.get(&kinds::KEDACONTROLLER, namespace, name).await?;
        let c = kc["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?.clone();
        Some((
            c["status"].as_str()?.to_string(),
            c["reason"].as_str().unwrap_or_default().to_string(),
            c["message"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// The status condition `type_` of `keda` in the test namespace.
    pub async fn condition(&self, type_: &str) -> Option<(String, String, String)> {
        self.condition_in(&self.ns, "keda", type_).await
    }

    /// `keda` in the test namespace.
    pub async fn keda(&self) -> Value {
        self.get(&kinds::KEDACONTROLLER, "keda").await.unwrap_or_else(|| panic!("KedaController keda missing"))
    }

    /// Every object of the installation in the test namespace (by its inventory labels), as
    /// `Kind namespace/name` strings, sorted.
    pub async fn managed_objects(&self) -> Vec<String> {
        self.managed_objects_of(&self.ns).await
    }

    /// Every object of the installation in `namespace` (by its inventory labels), sorted.
    pub async fn managed_objects_of(&self, namespace: &str) -> Vec<String> {
        let selector = format!("app.kubernetes.io/managed-by=cma-operator,cma.keda.sh/owner-namespace={namespace}");
        let mut out = Vec::new();
        let client = self.cluster.client();
        let discovery = client.list_api_groups().await.unwrap_or_else(|e| panic!("discovery: {e}"));
        for kind in cma_operator::kinds::managed() {
            let served =
                kind.resource.group.is_empty() || discovery.groups.iter().any(|g| g.name == kind.resource.group);
            if !served {
                continue;
            }
            let api: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(client.clone(), &kind.resource);
            let list = api
                .list(&kube::api::ListParams::default().labels(&selector))
                .await
                .unwrap_or_else(|e| panic!("list {}: {e}", kind.resource.plural));
            for obj in list.items {
                let ns = obj.metadata.namespace.map(|n| format!("{n}/")).unwrap_or_default();
                out.push(format!("{} {ns}{}", kind.resource.kind, obj.metadata.name.unwrap_or_default()));
            }
        }
        out.sort();
        out
    }

    /// Event reasons and notes recorded about the object `name` of the test namespace, oldest first.
    pub async fn events_about(&self, name: &str) -> Vec<(String, String)> {
        let mut events: Vec<Value> = self
            .cluster
            .list(&kinds::EVENT, &self.ns, "")
            .await
            .into_iter()
            .filter(|e| e["regarding"]["name"] == name)
            .collect();
        events.sort_by_key(|e| e["metadata"]["creationTimestamp"].as_str().unwrap_or_default().to_string());
        events
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Fails unless no `DriftReverted` event was recorded about `name`: `why` says what must not count as drift.
    pub async fn assert_no_drift_reported(&self, name: &str, why: &str) {
        let events = self.events_about(name).await;
        assert!(!events.iter().any(|(reason, _)| reason == "DriftReverted"), "{why}: {events:?}");
    }

    /// Event reasons recorded about the object `name` of the test namespace.
    pub async fn event_reasons(&self, name: &str) -> Vec<String> {
        self.events_about(name).await.into_iter().map(|(reason, _)| reason).collect()
    }

    /// Plays the kubelet for the test namespace: KEDA's pods run and become ready.
    pub fn kubelet(&self) -> cma_testkit::cluster::Kubelet {
        self.cluster.kubelet(&self.ns)
    }
}

impl Operator {
    /// Stops the operator as SIGTERM would and returns how it ended.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(20), &mut self.handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => panic!("the operator task panicked: {join}"),
            Err(_) => panic!("the operator did not stop within 20 s of its shutdown signal"),
        }
    }

    /// Whether the operator task has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Whether a request is a server-side apply by the operator's field manager.
pub fn is_operator_apply(event: &AuditEvent) -> bool {
    let query = event.uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
    event.verb == "patch" && query.split('&').any(|p| p == "fieldManager=cma-operator")
}

/// The operator's ServiceAccount, as config/rbac and the CSV name it.
pub const OPERATOR_SA: &str = cma_api::names::OPERATOR;

impl Env {
    /// Binds exactly `permissions` to ServiceAccount `cma-operator` in the test namespace, as OLM does in
    /// OwnNamespace mode (a Role there, a ClusterRole), with the suggested namespace replaced by the test's.
    pub async fn grant_operator(&self, permissions: &cma_bundle::rbac::Permissions) {
        let suggested = cma_api::names::SUGGESTED_NAMESPACE;
        let localise = |value: Value| -> Value {
            let text = serde_json::to_string(&value).unwrap_or_default().replace(suggested, &self.ns);
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        let install = "cma-install";
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": OPERATOR_SA, "namespace": self.ns}});
        self.cluster.apply_as(install, &sa).await;
        let cluster_name = format!("{OPERATOR_SA}-{}", self.ns);
        let mut role = localise(permissions.role(suggested));
        role["metadata"]["name"] = json!(OPERATOR_SA);
        self.cluster.apply_as(install, &role).await;
        let mut cluster_role = localise(permissions.cluster_role());
        cluster_role["metadata"]["name"] = json!(cluster_name);
        self.cluster.apply_as(install, &cluster_role).await;
        let subject = json!([{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": self.ns}]);
        let binding = |kind: &str, name: &str, role_kind: &str, namespaced: bool| {
            let mut meta = json!({"name": name});
            if namespaced {
                meta["namespace"] = json!(self.ns);
            }
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
                "subjects": subject,
            })
        };
        self.cluster.apply_as(install, &binding("RoleBinding", OPERATOR_SA, "Role", true)).await;
        self.cluster.apply_as(install, &binding("ClusterRoleBinding", &cluster_name, "ClusterRole", false)).await;
    }

    /// A kubeconfig file acting as ServiceAccount `namespace/name` (a TokenRequest token), for a child process.
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str, path: &std::path::Path) {
        let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
            kube::Api::namespaced(self.cluster.client(), namespace);
        let request = k8s_openapi::api::authentication::v1::TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                expiration_seconds: Some(24 * 3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let response: k8s_openapi::api::authentication::v1::TokenRequest = api
            .create_subresource("token", name, &kube::api::PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("a token for {namespace}/{name}: {e}"));
        let token = response.status.map(|s| s.token).unwrap_or_default();
        let ca = self.cluster.dir().join("certs/serving/apiserver.crt");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: test, cluster: {{server: \"{}\", certificate-authority: {}}}}}]\n\
             users: [{{name: sa, user: {{token: \"{token}\"}}}}]\ncontexts: [{{name: test, context: {{cluster: test, user: sa, namespace: {namespace}}}}}]\ncurrent-context: test\n",
            self.cluster.server(),
            ca.display()
        );
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// A KedaController document.
pub fn kedacontroller(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "KedaController",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// Installs test logging once (RUST_LOG controls what is printed) and the capture of the operator's
/// `reconciled` lines ([`reconciles`], whatever RUST_LOG says).
pub fn logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, filter::Targets};
    // kube's own error lines name no request (the control plane's /readyz answers 500 while it starts).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,kube_client::client::builder=off"));
    let print = tracing_subscriber::fmt::layer().with_test_writer().with_filter(filter);
    let capture = reconciles::Capture.with_filter(Targets::new().with_target(reconciles::TARGET, tracing::Level::INFO));
    let _ = tracing_subscriber::registry().with(print).with(capture).try_init();
}
