//! Harness for whole-flow tests: the real `cma-operator run` loop (`controller::run_until`) against the
//! in-process fake API server, plus helpers to create KedaControllers and wait for the cluster to settle.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use cma_operator::controller::{RunError, Settings, run_until};
use cma_operator::leader::Timing;
use cma_testkit::{FakeApiServer, Gvr, known};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The namespace the operator runs in during tests.
pub const NS: &str = "keda";

/// Resources of the kinds the operator manages, for direct inspection of the fake.
pub mod gvr {
    use cma_testkit::Gvr;

    /// KedaControllers.
    pub fn kedacontrollers() -> Gvr {
        Gvr::new("keda.sh", "v1alpha1", "kedacontrollers")
    }
    /// Deployments.
    pub fn deployments() -> Gvr {
        Gvr::new("apps", "v1", "deployments")
    }
    /// Services.
    pub fn services() -> Gvr {
        Gvr::new("", "v1", "services")
    }
    /// ConfigMaps.
    pub fn config_maps() -> Gvr {
        Gvr::new("", "v1", "configmaps")
    }
    /// Secrets.
    pub fn secrets() -> Gvr {
        Gvr::new("", "v1", "secrets")
    }
    /// ServiceAccounts.
    pub fn service_accounts() -> Gvr {
        Gvr::new("", "v1", "serviceaccounts")
    }
    /// Roles.
    pub fn roles() -> Gvr {
        Gvr::new("rbac.authorization.k8s.io", "v1", "roles")
    }
    /// RoleBindings.
    pub fn role_bindings() -> Gvr {
        Gvr::new("rbac.authorization.k8s.io", "v1", "rolebindings")
    }
    /// ClusterRoles.
    pub fn cluster_roles() -> Gvr {
        Gvr::new("rbac.authorization.k8s.io", "v1", "clusterroles")
    }
    /// ClusterRoleBindings.
    pub fn cluster_role_bindings() -> Gvr {
        Gvr::new("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
    }
    /// NetworkPolicies.
    pub fn network_policies() -> Gvr {
        Gvr::new("networking.k8s.io", "v1", "networkpolicies")
    }
    /// PodDisruptionBudgets.
    pub fn pod_disruption_budgets() -> Gvr {
        Gvr::new("policy", "v1", "poddisruptionbudgets")
    }
    /// APIServices.
    pub fn api_services() -> Gvr {
        Gvr::new("apiregistration.k8s.io", "v1", "apiservices")
    }
    /// ValidatingWebhookConfigurations.
    pub fn webhooks() -> Gvr {
        Gvr::new("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")
    }
    /// events.k8s.io Events.
    pub fn events() -> Gvr {
        Gvr::new("events.k8s.io", "v1", "events")
    }
    /// Leases.
    pub fn leases() -> Gvr {
        Gvr::new("coordination.k8s.io", "v1", "leases")
    }
    /// Every kind the operator manages.
    pub fn managed() -> Vec<Gvr> {
        vec![
            service_accounts(),
            secrets(),
            config_maps(),
            roles(),
            role_bindings(),
            cluster_roles(),
            cluster_role_bindings(),
            services(),
            network_policies(),
            deployments(),
            pod_disruption_budgets(),
            api_services(),
            webhooks(),
        ]
    }
}

/// A fake cluster with the KedaController API, and OpenShift's APIs when asked.
pub fn cluster(openshift: bool) -> FakeApiServer {
    let fake = FakeApiServer::new();
    fake.register(known::kedacontrollers());
    if openshift {
        fake.register(known::openshift_apiservers());
        fake.register(known::routes());
    }
    fake
}

/// How to start an operator.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespace it runs in.
    pub namespace: String,
    /// Its identity (and the fake's client name for its requests).
    pub identity: String,
    /// Elect a leader.
    pub leader_elect: bool,
    /// Create the default KedaController.
    pub create_default: bool,
    /// Watched namespaces.
    pub watch_namespaces: Vec<String>,
    /// Where the `/metrics` serving certificate is mounted (HTTPS and access checks); HTTP when `None`.
    pub metrics_cert_dir: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            namespace: NS.into(),
            identity: "operator".into(),
            leader_elect: false,
            create_default: false,
            watch_namespaces: Vec::new(),
            metrics_cert_dir: None,
        }
    }
}

/// A running operator.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), RunError>>,
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

/// Starts the operator (the same loop `cma-operator run` runs) against `fake`.
pub fn start(fake: &FakeApiServer, options: Options) -> Operator {
    start_with_clock(fake, options, Arc::new(Timestamp::now))
}

/// Starts the operator with a given clock (certificate rotation tests).
pub fn start_with_clock(
    fake: &FakeApiServer,
    options: Options,
    clock: cma_operator::controller::context::Clock,
) -> Operator {
    let metrics_addr = free_port();
    let probe_addr = free_port();
    let settings = Settings {
        operator_namespace: options.namespace.clone(),
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
        sync_timeout: Duration::from_secs(10),
    };
    let client = fake.client_as(&options.identity);
    let (stop, stopped) = oneshot::channel::<()>();
    let handle = tokio::spawn(run_until(
        client,
        settings,
        async move {
            let _ = stopped.await;
        },
        clock,
    ));
    Operator { stop: Some(stop), handle, metrics_addr, probe_addr }
}

impl Operator {
    /// Stops the operator as SIGTERM would and returns how it ended.
    pub async fn stop(mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(10), &mut self.handle).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => panic!("the operator task panicked: {join}"),
            Err(_) => panic!("the operator did not stop within 10 s of its shutdown signal"),
        }
    }

    /// Whether the operator task has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
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

/// Every object carrying the managed-by label, as `Kind namespace/name` strings, sorted.
pub fn managed_objects(fake: &FakeApiServer) -> Vec<String> {
    let mut out = Vec::new();
    for g in gvr::managed() {
        for obj in fake.list_matching(&g, None, "app.kubernetes.io/managed-by=cma-operator") {
            let ns = obj["metadata"]["namespace"].as_str().map(|n| format!("{n}/")).unwrap_or_default();
            out.push(format!(
                "{} {ns}{}",
                obj["kind"].as_str().unwrap_or(&g.resource),
                obj["metadata"]["name"].as_str().unwrap_or("")
            ));
        }
    }
    out.sort();
    out
}

/// Waits until `check` holds, or panics with `what` after `timeout`.
pub async fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until no request has been written for `quiet` (the operator has settled).
pub async fn settle(fake: &FakeApiServer, quiet: Duration, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mark = fake.mark();
        tokio::time::sleep(quiet).await;
        if fake.writes_since(mark).is_empty() {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "the operator kept writing for {timeout:?}: {:?}",
                fake.writes_since(mark).iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>()
            );
        }
    }
}

/// Marks the three Deployments rolled out and the APIService available, as the cluster would.
pub fn cluster_reports_ready(fake: &FakeApiServer, namespace: &str) {
    for name in ["keda-operator", "keda-metrics-apiserver", "keda-admission"] {
        fake.complete_rollout(namespace, name).unwrap_or_else(|e| panic!("rollout of {name}: {e}"));
    }
    fake.set_condition(&gvr::api_services(), "", "v1beta1.external.metrics.k8s.io", "Available", "True", "Passed")
        .unwrap_or_else(|e| panic!("APIService condition: {e}"));
}

/// The status condition `type_` of the KedaController, as (status, reason, message).
pub fn condition(fake: &FakeApiServer, namespace: &str, name: &str, type_: &str) -> Option<(String, String, String)> {
    let kc = fake.get(&gvr::kedacontrollers(), namespace, name)?;
    let c = kc["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == type_)?.clone();
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str().unwrap_or_default().to_string(),
        c["message"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Event reasons recorded about objects named `name`.
pub fn event_reasons(fake: &FakeApiServer, name: &str) -> Vec<String> {
    fake.list(&gvr::events())
        .into_iter()
        .filter(|e| e["regarding"]["name"] == name)
        .filter_map(|e| e["reason"].as_str().map(String::from))
        .collect()
}

/// Installs test logging once (RUST_LOG controls it).
pub fn logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The `Gvr` of a managed kind by its plural (for table-driven tests).
pub fn by_plural(plural: &str) -> Gvr {
    gvr::managed().into_iter().find(|g| g.resource == plural).unwrap_or_else(|| panic!("unknown kind {plural}"))
}
