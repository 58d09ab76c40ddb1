//! The control planes of one test binary, lent to one test at a time and reset between tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::control_plane::ControlPlane;
use super::kinds::{self, Kind};
use super::{ClusterError, TEST_AGENT, api, client_from, kubelet};

/// Which optional API groups a test needs the cluster to serve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Apis {
    /// OpenShift's `config.openshift.io` (with the `cluster` APIServer configuration) and `route.openshift.io`,
    /// which the operator's discovery reads as "this is OpenShift", plus namespace `openshift-config-managed`.
    pub openshift: bool,
    /// `monitoring.coreos.com` (ServiceMonitors, PodMonitors, PrometheusRules).
    pub monitoring: bool,
    /// OLM's `operators.coreos.com` (ClusterServiceVersions, Subscriptions, InstallPlans, OperatorGroups).
    pub olm: bool,
}

impl Apis {
    /// Plain Kubernetes.
    pub fn kubernetes() -> Self {
        Apis::default()
    }

    /// OpenShift without the monitoring API.
    pub fn openshift() -> Self {
        Apis { openshift: true, ..Apis::default() }
    }

    /// OpenShift with the monitoring API.
    pub fn openshift_with_monitoring() -> Self {
        Apis { openshift: true, monitoring: true, ..Apis::default() }
    }

    /// These APIs and the monitoring API.
    pub fn with_monitoring(self) -> Self {
        Apis { monitoring: true, ..self }
    }

    /// These APIs and OLM's.
    pub fn with_olm(self) -> Self {
        Apis { olm: true, ..self }
    }
}

/// The kinds whose cluster-scoped objects a test may leave behind (deleted at reset unless present at start).
const CLUSTER_SCOPED: [Kind; 6] = [
    kinds::API_SERVICE,
    kinds::VALIDATING_WEBHOOK,
    kinds::MUTATING_WEBHOOK,
    kinds::CLUSTER_ROLE_BINDING,
    kinds::CLUSTER_ROLE,
    kinds::CRD,
];

/// One control plane and what the pool knows about it.
pub(super) struct Plane {
    pub(super) control_plane: ControlPlane,
    pub(super) config: Config,
    apis: Mutex<Apis>,
    /// Names of the cluster-scoped objects (and kube-system RoleBindings) right after start.
    baseline: BTreeMap<&'static str, BTreeSet<String>>,
    /// Namespaces tests created since the last reset.
    namespaces: Mutex<Vec<String>>,
    /// Namespaces the last reset deleted (their deletion may still be under way).
    deleting: Mutex<Vec<String>>,
    /// The test node's kubelet endpoint.
    kubelet: kubelet::KubeletServer,
    /// Whether a test used it since the last reset.
    used: Mutex<bool>,
}

impl Plane {
    pub(super) fn remember_namespace(&self, name: &str) {
        self.namespaces.lock().unwrap_or_else(PoisonError::into_inner).push(name.to_string());
    }
}

struct Pool {
    idle: Mutex<Vec<Arc<Plane>>>,
    slots: Arc<Semaphore>,
}

static POOL: OnceLock<Pool> = OnceLock::new();
static IDS: AtomicUsize = AtomicUsize::new(1);

/// A number unique in this test process (namespace suffixes).
pub(super) fn next_id() -> usize {
    IDS.fetch_add(1, Ordering::Relaxed)
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let size = std::env::var("CMA_TEST_CONTROL_PLANES").ok().and_then(|v| v.parse().ok()).unwrap_or(2usize).max(1);
        Pool { idle: Mutex::new(Vec::new()), slots: Arc::new(Semaphore::new(size)) }
    })
}

/// A control plane lent to one test; it goes back to the pool when dropped.
pub struct Cluster {
    plane: Option<Arc<Plane>>,
    _slot: OwnedSemaphorePermit,
}

impl Cluster {
    pub(super) fn plane(&self) -> &Plane {
        match &self.plane {
            Some(plane) => plane,
            // Only `drop` takes the plane out.
            None => unreachable!("a Cluster always holds its control plane until dropped"),
        }
    }

    /// Stops the API server, waits `down`, and starts it again (watches break, clients reconnect).
    pub async fn restart_api_server(&self, down: Duration) {
        let plane = self.plane();
        plane.control_plane.stop_api_server();
        tokio::time::sleep(down).await;
        plane.control_plane.start_api_server().unwrap_or_else(|e| panic!("{e}"));
        wait_ready(plane).await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Compacts etcd's history up to its current revision: watches resuming from an older resourceVersion
    /// then get `410 Gone` once the API server's watch cache no longer holds it.
    pub async fn compact_etcd(&self) {
        let etcd = &self.plane().control_plane.etcd;
        let range = http_post(etcd, "/v3/kv/range", r#"{"key":"AA==","limit":1}"#).await;
        let revision = range["header"]["revision"]
            .as_str()
            .map(String::from)
            .or_else(|| range["header"]["revision"].as_i64().map(|r| r.to_string()))
            .unwrap_or_else(|| panic!("no revision in etcd's answer: {range}"));
        http_post(etcd, "/v3/kv/compaction", &format!(r#"{{"revision":"{revision}","physical":true}}"#)).await;
    }

    /// Plays the kubelet for the pods of `namespace` (see [`kubelet::Kubelet`]).
    pub fn kubelet(&self, namespace: &str) -> kubelet::Kubelet {
        kubelet::Kubelet::start(self.client(), namespace)
    }

    /// The container logs the test node serves through the API server (see [`kubelet::ContainerLogs`]).
    pub fn container_logs(&self) -> &kubelet::ContainerLogs {
        &self.plane().kubelet.logs
    }

    /// Stops the controller manager's work (the process is stopped, not ended) until the guard is dropped:
    /// nothing but the test then changes the cluster (no Deployment, HPA or namespace controller, no Events
    /// of theirs), so two reads in a row see the same state. Returns once the requests it had already sent
    /// are answered: 300 ms without a new one in the audit log (5 s at most; on a loaded machine a status
    /// update sent just before the stop was seen landing between two reads).
    pub async fn pause_controllers(&self) -> PausedControllers<'_> {
        let audit = self.audit();
        let mark = audit.mark();
        self.plane().control_plane.signal_controller_manager("STOP").unwrap_or_else(|e| panic!("{e}"));
        let paused = PausedControllers { cluster: self };
        let quiet = Duration::from_millis(300);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut seen = 0;
        let mut last_change = tokio::time::Instant::now();
        while tokio::time::Instant::now() < deadline && last_change.elapsed() < quiet {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let answered = audit.by_agent(mark, "kube-controller-manager").len();
            if answered != seen {
                (seen, last_change) = (answered, tokio::time::Instant::now());
            }
        }
        paused
    }

    /// Waits until the namespaces earlier tests left are gone, with everything in them. Lending a control
    /// plane only starts their deletion (tests working in namespaces of their own need not wait); a test that
    /// reads every namespace (must-gather) calls this first.
    pub async fn wait_for_reset(&self) {
        let namespaces = std::mem::take(&mut *self.plane().deleting.lock().unwrap_or_else(PoisonError::into_inner));
        let client = self.client();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        for namespace in namespaces {
            loop {
                let live = api(&client, &kinds::NAMESPACE, "")
                    .get_opt(&namespace)
                    .await
                    .unwrap_or_else(|e| panic!("reading namespace {namespace}: {e}"));
                let Some(live) = live else {
                    break;
                };
                if tokio::time::Instant::now() > deadline {
                    panic!("namespace {namespace} was not deleted within 120 s: {:?}", live.data["status"]);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Plays OpenShift's service-ca operator in `namespace` (see [`super::ServiceCa`]).
    pub fn service_ca(&self, namespace: &str) -> super::ServiceCa {
        super::ServiceCa::start(self.client(), namespace)
    }

    /// The folder of the control plane (logs, audit log, kubeconfig).
    pub fn dir(&self) -> PathBuf {
        self.plane().control_plane.dir.clone()
    }
}

/// The controller manager stopped by [`Cluster::pause_controllers`]; it continues when this is dropped.
pub struct PausedControllers<'a> {
    cluster: &'a Cluster,
}

impl Drop for PausedControllers<'_> {
    fn drop(&mut self) {
        // Should it fail, the next reset tries again.
        let _ = self.cluster.plane().control_plane.signal_controller_manager("CONT");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(plane) = self.plane.take() {
            pool().idle.lock().unwrap_or_else(PoisonError::into_inner).push(plane);
        }
    }
}

/// Lends a control plane serving `apis` to the calling test, starting one when none is idle. Panics with the
/// reason when none can be started.
pub async fn acquire(apis: Apis) -> Cluster {
    match try_acquire(apis).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("no test control plane: {e}"),
    }
}

async fn try_acquire(apis: Apis) -> Result<Cluster, ClusterError> {
    let pool = pool();
    let slot = pool
        .slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| ClusterError::Start(format!("the control plane pool is closed: {e}")))?;
    let idle = {
        let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let preferred = idle.iter().position(|p| *p.apis.lock().unwrap_or_else(PoisonError::into_inner) == apis);
        match preferred {
            Some(i) => Some(idle.remove(i)),
            None => idle.pop(),
        }
    };
    let plane = match idle {
        Some(plane) => plane,
        None => Arc::new(start_plane().await?),
    };
    reset(&plane, apis).await?;
    *plane.used.lock().unwrap_or_else(PoisonError::into_inner) = true;
    Ok(Cluster { plane: Some(plane), _slot: slot })
}

fn state_dir() -> PathBuf {
    std::env::var_os("CMA_K8S_STATE").map(PathBuf::from).unwrap_or_else(std::env::temp_dir)
}

async fn start_plane() -> Result<Plane, ClusterError> {
    let parent = state_dir();
    let control_plane = tokio::task::spawn_blocking(move || ControlPlane::start(&parent))
        .await
        .map_err(|e| ClusterError::Start(format!("the start task failed: {e}")))??;
    let kubeconfig = kube::config::Kubeconfig::read_from(control_plane.kubeconfig())
        .map_err(|e| ClusterError::Start(format!("reading the kubeconfig: {e}")))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| ClusterError::Start(format!("the kubeconfig: {e}")))?;
    let mut plane = Plane {
        control_plane,
        config,
        apis: Mutex::new(Apis::default()),
        baseline: BTreeMap::new(),
        namespaces: Mutex::new(Vec::new()),
        deleting: Mutex::new(Vec::new()),
        kubelet: kubelet::KubeletServer::start()?,
        used: Mutex::new(false),
    };
    wait_ready(&plane).await?;
    plane.control_plane.start_controller_manager()?;
    let client = admin(&plane);
    install_crds(&client).await?;
    kubelet::register_node(&client, plane.kubelet.port).await?;
    plane.baseline = baseline(&client).await?;
    Ok(plane)
}

fn admin(plane: &Plane) -> Client {
    client_from(plane.config.clone(), TEST_AGENT, None)
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Api { action, source }
}

/// Waits for `/readyz` (the bootstrap RBAC and every post-start hook).
async fn wait_ready(plane: &Plane) -> Result<(), ClusterError> {
    let client = admin(plane);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let request = http::Request::get("/readyz").body(Vec::new()).map_err(|e| ClusterError::Start(e.to_string()))?;
        if client.request_text(request).await.is_ok_and(|body| body.trim() == "ok") {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(plane.control_plane.api_server_failure("did not become ready within 90 s"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The KedaController CRD and KEDA's own CRDs, established.
async fn install_crds(client: &Client) -> Result<(), ClusterError> {
    let crds = cma_api::crd::all().map_err(|e| ClusterError::Start(format!("generating the CRDs: {e}")))?;
    let documents: Vec<Value> =
        crds.iter().map(|crd| serde_json::to_value(crd).unwrap_or_else(|e| panic!("a CRD: {e}"))).collect();
    apply_crds(client, &documents).await
}

async fn apply_crds(client: &Client, crds: &[Value]) -> Result<(), ClusterError> {
    let api = api(client, &kinds::CRD, "");
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        api.patch(&name, &PatchParams::apply(TEST_AGENT).force(), &Patch::Apply(crd))
            .await
            .map_err(api_error(format!("installing CRD {name}")))?;
    }
    for crd in crds {
        let name = crd["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let live = api.get(&name).await.map_err(api_error(format!("reading CRD {name}")))?;
            let established = live.data["status"]["conditions"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
            if established {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::Start(format!("CRD {name} was not established within 30 s")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn names(client: &Client, kind: &Kind, namespace: &str) -> Result<BTreeSet<String>, ClusterError> {
    let list = api(client, kind, namespace)
        .list_metadata(&ListParams::default())
        .await
        .map_err(api_error(format!("listing {}", kind.plural)))?;
    Ok(list.items.into_iter().filter_map(|o| o.metadata.name).collect())
}

async fn baseline(client: &Client) -> Result<BTreeMap<&'static str, BTreeSet<String>>, ClusterError> {
    let mut baseline = BTreeMap::new();
    for kind in CLUSTER_SCOPED {
        baseline.insert(kind.plural, names(client, &kind, "").await?);
    }
    baseline.insert("kube-system/rolebindings", names(client, &kinds::ROLE_BINDING, "kube-system").await?);
    baseline.insert("kube-system/roles", names(client, &kinds::ROLE, "kube-system").await?);
    baseline.insert("namespaces", names(client, &kinds::NAMESPACE, "").await?);
    Ok(baseline)
}

/// Brings a used control plane back to its state after start, then gives it `apis`.
async fn reset(plane: &Plane, apis: Apis) -> Result<(), ClusterError> {
    let client = admin(plane);
    let used = std::mem::replace(&mut *plane.used.lock().unwrap_or_else(PoisonError::into_inner), false);
    plane.kubelet.logs.clear();
    if used {
        // Nothing would delete the namespaces should the last test have left the controllers paused.
        plane.control_plane.signal_controller_manager("CONT")?;
        // First what blocks others: an APIService without endpoints stalls discovery and namespace deletion.
        delete_extra(plane, &client, &kinds::API_SERVICE, "", "apiservices").await?;
        release_kedacontrollers(&client).await?;
        for kind in
            [kinds::VALIDATING_WEBHOOK, kinds::MUTATING_WEBHOOK, kinds::CLUSTER_ROLE_BINDING, kinds::CLUSTER_ROLE]
        {
            delete_extra(plane, &client, &kind, "", kind.plural).await?;
        }
        delete_extra(plane, &client, &kinds::ROLE_BINDING, "kube-system", "kube-system/rolebindings").await?;
        delete_extra(plane, &client, &kinds::ROLE, "kube-system", "kube-system/roles").await?;
        // KEDA's cluster-scoped resources: none exists at start.
        for kind in [kinds::CLUSTER_TRIGGER_AUTHENTICATION, kinds::CLUSTER_CLOUD_EVENT_SOURCE] {
            delete_extra(plane, &client, &kind, "", kind.plural).await?;
        }
        let namespaces = std::mem::take(&mut *plane.namespaces.lock().unwrap_or_else(PoisonError::into_inner));
        let mut extra = names(&client, &kinds::NAMESPACE, "").await?;
        // openshift-config-managed stays (it is part of the OpenShift APIs); its content does not.
        extra.retain(|n| n != DASHBOARDS && !plane.baseline.get("namespaces").is_some_and(|b| b.contains(n)));
        let mut deleting = Vec::new();
        for namespace in namespaces.into_iter().chain(extra) {
            delete_namespace(&client, &namespace).await?;
            deleting.push(namespace);
        }
        plane.deleting.lock().unwrap_or_else(PoisonError::into_inner).extend(deleting);
    }
    set_apis(plane, &client, apis).await
}

async fn delete_extra(
    plane: &Plane,
    client: &Client,
    kind: &Kind,
    namespace: &str,
    key: &str,
) -> Result<(), ClusterError> {
    let keep = plane.baseline.get(key).cloned().unwrap_or_default();
    for name in names(client, kind, namespace).await? {
        if keep.contains(&name) {
            continue;
        }
        match api(client, kind, namespace).delete(&name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(ClusterError::Api { action: format!("deleting {} {name}", kind.kind), source: e }),
        }
    }
    Ok(())
}

/// Removes every KedaController, finalizers included (the operator that owned them is gone).
async fn release_kedacontrollers(client: &Client) -> Result<(), ClusterError> {
    let api_all = api(client, &kinds::KEDACONTROLLER, "");
    let list = api_all.list(&ListParams::default()).await.map_err(api_error("listing KedaControllers"))?;
    for kc in list.items {
        let (Some(namespace), Some(name)) = (kc.metadata.namespace.clone(), kc.metadata.name.clone()) else {
            continue;
        };
        let api = api(client, &kinds::KEDACONTROLLER, &namespace);
        let patch = json!({"metadata": {"finalizers": null}});
        let _ = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await;
        let _ = api.delete(&name, &DeleteParams::background()).await;
    }
    Ok(())
}

/// Deletes a namespace; pods bound to the test node never finish a graceful deletion (no kubelet), so they
/// are deleted at once.
async fn delete_namespace(client: &Client, namespace: &str) -> Result<(), ClusterError> {
    match api(client, &kinds::NAMESPACE, "").delete(namespace, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(ClusterError::Api { action: format!("deleting namespace {namespace}"), source: e }),
    }
    kubelet::delete_pods_now(client, namespace).await
}

/// Where OpenShift's console reads dashboards from.
const DASHBOARDS: &str = "openshift-config-managed";

/// An API a test can ask for: its kind (group, version, kind, plural, scope).
type OptionalApi = Kind;

const OPENSHIFT_CRDS: [OptionalApi; 2] = [kinds::OPENSHIFT_APISERVER, kinds::ROUTE];
const MONITORING_CRDS: [OptionalApi; 3] = [kinds::SERVICE_MONITOR, kinds::POD_MONITOR, kinds::PROMETHEUS_RULE];
const OLM_CRDS: [OptionalApi; 4] = [kinds::CSV, kinds::SUBSCRIPTION, kinds::INSTALL_PLAN, kinds::OPERATOR_GROUP];

/// A CRD that accepts any content (the operator only needs the API to exist and store what it writes), with a
/// status subresource like the real ones.
fn open_crd(kind: &Kind) -> Value {
    let Kind { group, version, kind, plural, namespaced } = *kind;
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase(), "listKind": format!("{kind}List")},
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "versions": [{
                "name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}},
            }],
        },
    })
}

async fn set_apis(plane: &Plane, client: &Client, apis: Apis) -> Result<(), ClusterError> {
    let groups: [(bool, &[OptionalApi]); 3] =
        [(apis.openshift, &OPENSHIFT_CRDS), (apis.monitoring, &MONITORING_CRDS), (apis.olm, &OLM_CRDS)];
    for (wanted, crds) in groups {
        let documents: Vec<Value> = crds.iter().map(open_crd).collect();
        if wanted {
            apply_crds(client, &documents).await?;
        } else {
            for kind in crds {
                remove_crd(client, &format!("{}.{}", kind.plural, kind.group)).await?;
            }
        }
    }
    if apis.openshift {
        let config = json!({
            "apiVersion": "config.openshift.io/v1", "kind": "APIServer",
            "metadata": {"name": "cluster"}, "spec": {},
        });
        let api = api(client, &kinds::OPENSHIFT_APISERVER, "");
        let _ = api.delete("cluster", &DeleteParams::background()).await;
        api.patch("cluster", &PatchParams::apply(TEST_AGENT).force(), &Patch::Apply(&config))
            .await
            .map_err(api_error("creating the OpenShift APIServer configuration"))?;
    }
    // openshift-config-managed cannot be deleted (the API server protects it), so it always exists;
    // what a test left in it goes.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DASHBOARDS}});
    super::api(client, &kinds::NAMESPACE, "")
        .patch(DASHBOARDS, &PatchParams::apply(TEST_AGENT).force(), &Patch::Apply(&namespace))
        .await
        .map_err(api_error("creating namespace openshift-config-managed"))?;
    super::api(client, &kinds::CONFIG_MAP, DASHBOARDS)
        .delete_collection(&DeleteParams::background(), &ListParams::default())
        .await
        .map_err(api_error("emptying namespace openshift-config-managed"))?;
    *plane.apis.lock().unwrap_or_else(PoisonError::into_inner) = apis;
    Ok(())
}

async fn remove_crd(client: &Client, name: &str) -> Result<(), ClusterError> {
    let api = api(client, &kinds::CRD, "");
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(ClusterError::Api { action: format!("deleting CRD {name}"), source: e }),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.map_err(api_error(format!("reading CRD {name}")))?.is_some() {
        if tokio::time::Instant::now() > deadline {
            return Err(ClusterError::Start(format!("CRD {name} was not removed within 60 s")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A JSON POST to etcd's HTTP gateway.
async fn http_post(base: &str, path: &str, body: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut stream =
        tokio::net::TcpStream::connect(address).await.unwrap_or_else(|e| panic!("connecting to etcd at {base}: {e}"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap_or_else(|e| panic!("writing to etcd: {e}"));
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap_or_else(|e| panic!("reading from etcd: {e}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "etcd {path}: {head}\n{body}");
    // The body may come chunked: the JSON object is what lies between the first '{' and the last '}'.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(start), Some(end)) if start <= end => &body[start..=end],
        _ => body,
    };
    serde_json::from_str(json).unwrap_or_else(|e| panic!("etcd {path} answered {body:?}: {e}"))
}
