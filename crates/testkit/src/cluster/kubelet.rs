//! Playing the kubelet: no kubelet runs, so pods stay `Pending` unless a test binds them to a node and reports
//! them running and ready ([`Kubelet`]). The Deployment controller (in the real controller manager) then counts
//! them. The test node also serves container logs over HTTPS, as a kubelet does ([`ContainerLogs`]).
//!
//! # Container logs through the real API server
//!
//! `GET /api/v1/namespaces/NS/pods/POD/log?container=C` is not answered by the API server itself: it checks
//! that `C` is one of the pod's containers (`400 container C is not valid for pod POD` otherwise), reads the
//! `status.addresses` (in the order of `--kubelet-preferred-address-types`) and
//! `status.daemonEndpoints.kubeletEndpoint.Port` of the Node the pod is bound to, and proxies the request to
//! `https://ADDRESS:PORT/containerLogs/NS/POD/C`. What was found running it against kube-apiserver v1.36:
//!
//! - **A loopback kubelet is fine.** The log proxy applies no address filter: a Node whose InternalIP is
//!   `127.0.0.1` gets its logs read from `https://127.0.0.1:PORT`; no other local address or address type is
//!   needed.
//! - **The address type order matters.** The API server's default order puts `Hostname` first, and the test
//!   node's hostname (`cma-test-node`) resolves nowhere: the request failed with `500` `Get
//!   "https://cma-test-node:PORT/containerLogs/...": dial tcp: lookup cma-test-node ...: no such host`. The
//!   control plane sets `--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname` (the order kubeadm
//!   sets), so the InternalIP is used.
//! - **No certificate is checked and none is presented**: without `--kubelet-certificate-authority` the API
//!   server accepts any serving certificate (here a fresh self-signed one), and without
//!   `--kubelet-client-certificate` it sends none; this kubelet asks for none and answers anyone who reaches its
//!   port (loopback only).
//! - **The options are passed on when they differ from their defaults**: `previous=true`, `sinceSeconds=N`,
//!   `sinceTime=RFC3339`, `timestamps=true`, `limitBytes=N`, `tailLines=N`, `follow=true`; a client's
//!   `follow=false`, `timestamps=false` or `previous=false` never reach the kubelet. The container comes in the
//!   path, not the query.
//! - **The kubelet's error answers reach the client as API errors**: a `400` with a text body becomes
//!   `400 BadRequest` with that text as the message (the kubelet's `previous terminated container "C" in pod
//!   "P" not found`); a kubelet it cannot reach becomes `500` with the dial error as the message (`dial tcp
//!   127.0.0.1:PORT: connect: connection refused` at once for a port nobody listens on).
//!
//! The content is what a test set with [`ContainerLogs::set`] and [`ContainerLogs::set_previous`], kept as the
//! kubelet keeps it: one entry per line, each line starting with its RFC 3339 timestamp and a space. The
//! options are applied the way the kubelet applies them: `sinceTime`/`sinceSeconds` keep the lines at or after
//! that time (a line without a timestamp belongs to the line before it), `tailLines` keeps the last lines,
//! `timestamps` keeps the timestamps (without it they are cut off), `limitBytes` cuts the answer after that many
//! bytes (even mid-line), and `follow` changes nothing (the stream ends with the content: no container writes
//! more). A container nothing was set for has an empty log; its previous instance, when not set, does not exist
//! (`400` as above). The requests received are kept ([`ContainerLogs::requests`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::ClusterError;
use super::https;

/// The node test pods run on.
pub const NODE_NAME: &str = "cma-test-node";

/// A log request as the kubelet received it from the API server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRequest {
    /// Namespace of the pod.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// The query parameters, as passed.
    pub query: BTreeMap<String, String>,
}

impl LogRequest {
    fn flag(&self, name: &str) -> bool {
        self.query.get(name).is_some_and(|v| v == "true")
    }

    fn number(&self, name: &str) -> Option<i64> {
        self.query.get(name).and_then(|v| v.parse().ok())
    }

    /// `previous=true`: the log of the container's previous instance.
    pub fn previous(&self) -> bool {
        self.flag("previous")
    }

    /// `timestamps=true`.
    pub fn timestamps(&self) -> bool {
        self.flag("timestamps")
    }

    /// `follow=true`.
    pub fn follow(&self) -> bool {
        self.flag("follow")
    }

    /// `sinceSeconds`.
    pub fn since_seconds(&self) -> Option<i64> {
        self.number("sinceSeconds")
    }

    /// `sinceTime`, as passed.
    pub fn since_time(&self) -> Option<&str> {
        self.query.get("sinceTime").map(String::as_str)
    }

    /// `limitBytes`.
    pub fn limit_bytes(&self) -> Option<i64> {
        self.number("limitBytes")
    }

    /// `tailLines`.
    pub fn tail_lines(&self) -> Option<i64> {
        self.number("tailLines")
    }
}

/// The two instances of a container whose logs the kubelet keeps.
#[derive(Default)]
struct Stored {
    current: Option<Bytes>,
    previous: Option<Bytes>,
}

#[derive(Default)]
struct LogState {
    logs: BTreeMap<(String, String, String), Stored>,
    requests: Vec<LogRequest>,
}

/// The container logs the test node's kubelet serves, and the log requests it received. One per control plane;
/// emptied when the control plane is lent to the next test.
#[derive(Clone, Default)]
pub struct ContainerLogs {
    state: Arc<Mutex<LogState>>,
}

const TEXT: &str = "text/plain";

impl ContainerLogs {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, namespace: &str, pod: &str, container: &str, previous: bool, text: Bytes) {
        let key = (namespace.to_string(), pod.to_string(), container.to_string());
        let mut state = self.lock();
        let stored = state.logs.entry(key).or_default();
        if previous {
            stored.previous = Some(text);
        } else {
            stored.current = Some(text);
        }
    }

    /// Sets the log of the running instance of `container` in pod `namespace/pod` (lines starting with their
    /// RFC 3339 timestamp and a space).
    pub fn set(&self, namespace: &str, pod: &str, container: &str, text: impl Into<Bytes>) {
        self.store(namespace, pod, container, false, text.into());
    }

    /// Sets the log of the previous (terminated) instance of `container`.
    pub fn set_previous(&self, namespace: &str, pod: &str, container: &str, text: impl Into<Bytes>) {
        self.store(namespace, pod, container, true, text.into());
    }

    /// The log requests received since the control plane was lent to this test, oldest first.
    pub fn requests(&self) -> Vec<LogRequest> {
        self.lock().requests.clone()
    }

    pub(super) fn clear(&self) {
        *self.lock() = LogState::default();
    }

    /// The kubelet's answer to `GET /containerLogs/NS/POD/CONTAINER?...`.
    fn answer(&self, request: &https::Request) -> https::Response {
        let parts: Vec<&str> = request.path.strip_prefix("/containerLogs/").unwrap_or_default().split('/').collect();
        let [namespace, pod, container] = parts[..] else {
            return (404, TEXT, Bytes::from(format!("no such kubelet endpoint: {}", request.path)));
        };
        let log_request = LogRequest {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            container: container.to_string(),
            query: request.query.iter().cloned().collect(),
        };
        let previous = log_request.previous();
        let text = {
            let mut state = self.lock();
            state.requests.push(log_request.clone());
            let key = (namespace.to_string(), pod.to_string(), container.to_string());
            let stored = state.logs.get(&key);
            if previous { stored.and_then(|s| s.previous.clone()) } else { stored.and_then(|s| s.current.clone()) }
        };
        let text = match (text, previous) {
            (Some(text), _) => text,
            (None, false) => Bytes::new(),
            (None, true) => {
                let message = format!("previous terminated container \"{container}\" in pod \"{pod}\" not found");
                return (400, TEXT, Bytes::from(message));
            }
        };
        match Window::of(&log_request) {
            Ok(window) => (200, TEXT, window.apply(text)),
            Err(message) => (400, TEXT, Bytes::from(message)),
        }
    }
}

/// What part of a log a request asks for.
struct Window {
    since: Option<Timestamp>,
    timestamps: bool,
    tail: Option<usize>,
    limit: Option<usize>,
}

impl Window {
    fn of(request: &LogRequest) -> Result<Window, String> {
        let since = match (request.since_time(), request.since_seconds()) {
            (Some(time), _) => Some(time.parse::<Timestamp>().map_err(|e| format!("sinceTime {time:?}: {e}"))?),
            (None, Some(seconds)) => Some(
                Timestamp::now()
                    .checked_sub(SignedDuration::from_secs(seconds))
                    .map_err(|e| format!("sinceSeconds {seconds}: {e}"))?,
            ),
            (None, None) => None,
        };
        let count = |n: Option<i64>| n.map(|n| usize::try_from(n.max(0)).unwrap_or(usize::MAX));
        Ok(Window {
            since,
            timestamps: request.timestamps(),
            tail: count(request.tail_lines()),
            limit: count(request.limit_bytes()),
        })
    }

    fn apply(&self, text: Bytes) -> Bytes {
        if self.since.is_none() && self.timestamps && self.tail.is_none() && self.limit.is_none() {
            return text;
        }
        let mut kept: Vec<&[u8]> = Vec::new();
        let mut last = Timestamp::UNIX_EPOCH;
        for line in text.split_inclusive(|b| *b == b'\n') {
            let (stamp, message) = split_timestamp(line);
            let stamp = stamp.unwrap_or(last);
            last = stamp;
            if self.since.is_some_and(|since| stamp < since) {
                continue;
            }
            kept.push(if self.timestamps { line } else { message });
        }
        if let Some(tail) = self.tail {
            kept.drain(..kept.len().saturating_sub(tail));
        }
        let mut out = kept.concat();
        if let Some(limit) = self.limit {
            out.truncate(limit);
        }
        Bytes::from(out)
    }
}

/// The timestamp a log line starts with, and the rest of the line.
fn split_timestamp(line: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let Some(space) = line.iter().position(|b| *b == b' ') else {
        return (None, line);
    };
    match std::str::from_utf8(&line[..space]).ok().and_then(|s| s.parse::<Timestamp>().ok()) {
        Some(stamp) => (Some(stamp), &line[space + 1..]),
        None => (None, line),
    }
}

/// The test node's kubelet endpoint: HTTPS on a loopback port, on a thread of its own (a control plane outlives
/// the test whose runtime started it).
pub(super) struct KubeletServer {
    /// The port, registered in the Node's `daemonEndpoints`.
    pub(super) port: u16,
    /// What it serves.
    pub(super) logs: ContainerLogs,
}

impl KubeletServer {
    pub(super) fn start() -> Result<KubeletServer, ClusterError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| ClusterError::Start(format!("the test kubelet's port: {e}")))?;
        let port =
            listener.local_addr().map_err(|e| ClusterError::Start(format!("the test kubelet's port: {e}")))?.port();
        listener.set_nonblocking(true).map_err(|e| ClusterError::Start(format!("the test kubelet's port: {e}")))?;
        let logs = ContainerLogs::default();
        let served = logs.clone();
        let handler: https::Handler = Arc::new(move |request| served.answer(request));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClusterError::Start(format!("the test kubelet's runtime: {e}")))?;
        std::thread::Builder::new()
            .name(format!("test-kubelet-{port}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("the test kubelet's listener: {e}"));
                    https::serve(listener, handler, https::Silence::default()).await;
                });
            })
            .map_err(|e| ClusterError::Start(format!("the test kubelet's thread: {e}")))?;
        Ok(KubeletServer { port, logs })
    }
}

/// Creates the test node, reported Ready, its kubelet endpoint on `127.0.0.1:kubelet_port`.
pub(super) async fn register_node(client: &Client, kubelet_port: u16) -> Result<(), ClusterError> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": NODE_NAME}},
    });
    let api_error = |action: &str| {
        let action = action.to_string();
        move |source| ClusterError::Api { action, source }
    };
    nodes
        .patch(NODE_NAME, &PatchParams::apply(super::TEST_AGENT).force(), &Patch::Apply(&node))
        .await
        .map_err(api_error("registering the test node"))?;
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "played by the test",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": NODE_NAME}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
        "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
        "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
    }});
    nodes
        .patch_status(NODE_NAME, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .map_err(api_error("reporting the test node ready"))?;
    Ok(())
}

/// Deletes every pod of `namespace` without a grace period (nothing would ever confirm a graceful one).
pub(super) async fn delete_pods_now(client: &Client, namespace: &str) -> Result<(), ClusterError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = match pods.list_metadata(&ListParams::default()).await {
        Ok(list) => list,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(source) => return Err(ClusterError::Api { action: format!("listing pods of {namespace}"), source }),
    };
    for pod in list.items {
        let name = pod.name_any();
        match pods.delete(&name, &DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::background() }).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(source) => {
                return Err(ClusterError::Api { action: format!("deleting pod {namespace}/{name}"), source });
            }
        }
    }
    Ok(())
}

/// Binds the pods of a namespace to the test node and reports them running and ready, until dropped.
/// [`Kubelet::hold`] keeps the pods of a Deployment from becoming ready (a crash-looping image, say);
/// [`Kubelet::restarted`] reports containers that restarted, so their previous instance has a log.
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
    rules: Arc<Mutex<Rules>>,
    paused: Arc<AtomicBool>,
}

/// What the player reports differently for some pods, by name prefix.
#[derive(Default)]
struct Rules {
    held: Vec<String>,
    restarts: Vec<(String, i32)>,
}

impl Rules {
    fn held(&self, pod: &str) -> bool {
        self.held.iter().any(|p| pod.starts_with(p))
    }

    fn restarts(&self, pod: &str) -> i32 {
        self.restarts.iter().find(|(p, _)| pod.starts_with(p)).map_or(0, |(_, n)| *n)
    }
}

impl Kubelet {
    pub(super) fn start(client: Client, namespace: &str) -> Kubelet {
        let rules = Arc::new(Mutex::new(Rules::default()));
        let paused = Arc::new(AtomicBool::new(false));
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let task = tokio::spawn(run(pods, rules.clone(), paused.clone()));
        Kubelet { task, rules, paused }
    }

    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Pods whose name starts with `prefix` are bound but never reported ready.
    pub fn hold(&self, prefix: &str) {
        self.rules().held.push(prefix.to_string());
    }

    /// Pods whose name starts with `prefix` (and that are not reported yet) are reported with every container
    /// restarted `count` times, its last instance terminated with exit code 1.
    pub fn restarted(&self, prefix: &str, count: i32) {
        self.rules().restarts.push((prefix.to_string(), count));
    }

    /// Stops reporting any pod (as if the node went away); [`Kubelet::resume`] starts again.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    /// Reports pods again after [`Kubelet::pause`].
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(pods: Api<Pod>, rules: Arc<Mutex<Rules>>, paused: Arc<AtomicBool>) {
    let mut addresses: BTreeMap<String, u32> = BTreeMap::new();
    let mut events = watcher(pods.clone(), watcher::Config::default()).default_backoff().applied_objects().boxed();
    while let Some(event) = events.next().await {
        let Ok(pod) = event else {
            continue;
        };
        if paused.load(Ordering::Relaxed) || pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let name = pod.name_any();
        let (is_held, restarts) = {
            let rules = rules.lock().unwrap_or_else(PoisonError::into_inner);
            (rules.held(&name), rules.restarts(&name))
        };
        let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        if !bound {
            bind(&pods, &name).await;
            continue;
        }
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready && !is_held {
            let next = u32::try_from(addresses.len()).unwrap_or(0) + 10;
            let octet = *addresses.entry(name.clone()).or_insert(next);
            report_running(&pods, &pod, octet, restarts).await;
        }
    }
}

async fn bind(pods: &Api<Pod>, name: &str) {
    let binding = Binding {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        target: ObjectReference { kind: Some("Node".into()), name: Some(NODE_NAME.into()), ..Default::default() },
    };
    // A conflict means someone bound it already; the next event reports it running.
    let _ =
        pods.create_subresource::<Binding, serde_json::Value>("binding", name, &PostParams::default(), &binding).await;
}

async fn report_running(pods: &Api<Pod>, pod: &Pod, octet: u32, restarts: i32) {
    let now = Timestamp::now().to_string();
    let container_status = |c: &k8s_openapi::api::core::v1::Container| {
        let mut status = json!({
            "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "", "ready": true,
            "started": true, "restartCount": restarts, "state": {"running": {"startedAt": now}},
        });
        if restarts > 0 {
            status["lastState"] =
                json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": now, "finishedAt": now}});
        }
        status
    };
    let containers: Vec<_> =
        pod.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or_default().iter().map(container_status).collect();
    let ip = format!("10.244.{}.{}", octet / 250, octet % 250 + 1);
    let condition = |type_: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now});
    let status = json!({"status": {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "conditions": [condition("PodScheduled"), condition("Initialized"), condition("ContainersReady"), condition("Ready")],
        "containerStatuses": containers,
    }});
    let _ = pods.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await;
}
