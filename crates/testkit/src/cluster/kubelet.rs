//! Playing the kubelet: no kubelet runs, so pods stay `Pending` unless a test binds them to a node and reports
//! them running and ready. The Deployment controller (in the real controller manager) then counts them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::ClusterError;

/// The node test pods run on.
pub const NODE_NAME: &str = "cma-test-node";

/// Creates the test node, reported Ready.
pub(super) async fn register_node(client: &Client) -> Result<(), ClusterError> {
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
/// [`Kubelet::hold`] keeps the pods of a Deployment from becoming ready (a crash-looping image, say).
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
    held: Arc<Mutex<Vec<String>>>,
    paused: Arc<AtomicBool>,
}

impl Kubelet {
    pub(super) fn start(client: Client, namespace: &str) -> Kubelet {
        let held = Arc::new(Mutex::new(Vec::new()));
        let paused = Arc::new(AtomicBool::new(false));
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let task = tokio::spawn(run(pods, held.clone(), paused.clone()));
        Kubelet { task, held, paused }
    }

    /// Pods whose name starts with `prefix` are bound but never reported ready.
    pub fn hold(&self, prefix: &str) {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(prefix.to_string());
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

async fn run(pods: Api<Pod>, held: Arc<Mutex<Vec<String>>>, paused: Arc<AtomicBool>) {
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
        let is_held =
            held.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|p| name.starts_with(p));
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
            report_running(&pods, &pod, octet).await;
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

async fn report_running(pods: &Api<Pod>, pod: &Pod, octet: u32) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let containers: Vec<_> = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "image": c.image.clone().unwrap_or_default(), "imageID": "", "ready": true,
                "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}},
            })
        })
        .collect();
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
