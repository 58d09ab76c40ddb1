//! A real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager v1.36 on
//! loopback, started from the binaries in `CMA_K8S_BIN` (or the ones CI ships in `../shared/k8s`).
//!
//! The real API server is the authority on server-side apply, managedFields, validation, RBAC, discovery
//! and watches; tests run the operator against it and assert what a user would see. A test binary starts
//! up to `CMA_TEST_CONTROL_PLANES` control planes (default 2) on first use and lends each to one test at a
//! time ([`acquire`]); a lent control plane is first reset to its state after start (cluster-scoped objects
//! created since, KedaControllers, the previous tests' namespaces) and given the APIs the test asks for
//! ([`Apis`]: OpenShift's config and route groups, the monitoring group). Each test works in namespaces of
//! its own ([`Cluster::namespace`]). When a control plane cannot start, [`acquire`] panics with the reason:
//! a test never skips silently.
//!
//! ```no_run
//! # async fn example() {
//! use cma_testkit::cluster::{self, Apis, kinds};
//! let cluster = cluster::acquire(Apis::kubernetes()).await;
//! let ns = cluster.namespace("keda").await;
//! let mark = cluster.audit().mark();
//! // ... run the operator with cluster.client_with("cma-operator-test", None) ...
//! let deployment = cluster.get(&kinds::DEPLOYMENT, &ns, "keda-operator").await;
//! let writes = cluster.audit().by_agent(mark, "cma-operator-test");
//! # }
//! ```

mod audit;
mod binaries;
mod control_plane;
mod faults;
mod https;
pub mod kinds;
mod kubelet;
mod metrics_api;
mod pool;
mod service_ca;

use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use serde_json::{Value, json};

pub use audit::{AuditEvent, AuditLog, AuditMark, ObjectRef};
pub use binaries::workspace_root;
pub use faults::{FaultService, Faults, RequestMatch};
pub use kinds::Kind;
pub use kubelet::{ContainerLogs, Kubelet, LogRequest, NODE_NAME};
pub use metrics_api::{EXTERNAL_METRICS_APISERVICE, ExternalMetricsApi};
pub use pool::{Apis, Cluster, PausedControllers, acquire};
pub use service_ca::ServiceCa;

/// Why the control plane could not be provided or used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The binaries are missing.
    #[error("{0}")]
    Binaries(String),
    /// A process did not start or become ready.
    #[error("starting the test control plane: {0}")]
    Start(String),
    /// A request to the API server failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The client error.
        source: kube::Error,
    },
}

/// The User-Agent of the test's own requests (the audit log tells them apart from the operator's).
pub const TEST_AGENT: &str = "cma-test";

impl Cluster {
    /// A client with admin rights, identified as [`TEST_AGENT`].
    pub fn client(&self) -> Client {
        self.client_with(TEST_AGENT, None)
    }

    /// A client with admin rights identified by `user_agent` in the audit log, answering the requests
    /// `faults` chooses itself.
    pub fn client_with(&self, user_agent: &str, faults: Option<&Faults>) -> Client {
        client_from(self.plane().config.clone(), user_agent, faults)
    }

    /// The admin client configuration (client certificate, the API server's CA), for clients a test builds
    /// itself.
    pub fn config(&self) -> Config {
        self.plane().config.clone()
    }

    /// A client acting with exactly the permissions of ServiceAccount `namespace/name` (a TokenRequest token).
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
        user_agent: &str,
        faults: Option<&Faults>,
    ) -> Client {
        client_from(self.service_account_config(namespace, name).await, user_agent, faults)
    }

    /// A kubeconfig file at `path` acting as ServiceAccount `namespace/name` (for child processes).
    pub async fn service_account_kubeconfig(&self, namespace: &str, name: &str, path: &std::path::Path) {
        let token = self.service_account_token(namespace, name).await;
        let ca = self.dir().join("certs/serving/apiserver.crt");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: test, cluster: {{server: \"{server}\", certificate-authority: {ca}}}}}]\n\
             users: [{{name: {name}, user: {{token: {token}}}}}]\n\
             contexts: [{{name: test, context: {{cluster: test, user: {name}, namespace: {namespace}}}}}]\ncurrent-context: test\n",
            server = self.server(),
            ca = ca.display(),
        );
        std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The client configuration of ServiceAccount `namespace/name` (a TokenRequest token, valid one hour).
    pub async fn service_account_config(&self, namespace: &str, name: &str) -> Config {
        let token = self.service_account_token(namespace, name).await;
        let mut config = self.plane().config.clone();
        config.auth_info = kube::config::AuthInfo { token: Some(token.into()), ..Default::default() };
        config
    }

    async fn service_account_token(&self, namespace: &str, name: &str) -> String {
        let api: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(self.client(), namespace);
        let request = k8s_openapi::api::authentication::v1::TokenRequest {
            spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let token: k8s_openapi::api::authentication::v1::TokenRequest = api
            .create_subresource("token", name, &PostParams::default(), &request)
            .await
            .unwrap_or_else(|e| panic!("a token for ServiceAccount {namespace}/{name}: {e}"));
        token.status.map(|s| s.token).unwrap_or_default()
    }

    /// The API server's address.
    pub fn server(&self) -> &str {
        &self.plane().control_plane.server
    }

    /// The admin kubeconfig (for child processes such as the operator binary).
    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.plane().control_plane.kubeconfig()
    }

    /// The audit log.
    pub fn audit(&self) -> AuditLog {
        AuditLog::new(&self.plane().control_plane.audit_log())
    }

    /// Creates a namespace of this test's own, named `prefix-N`.
    pub async fn namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{}", pool::next_id());
        self.plane().remember_namespace(&name);
        self.create(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})).await;
        name
    }

    /// The object, or `None`.
    pub async fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Value> {
        let object = api(&self.client(), kind, namespace)
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("get {} {namespace}/{name}: {e}", kind.kind))?;
        Some(serde_json::to_value(object).unwrap_or_else(|e| panic!("{e}")))
    }

    /// The objects of `kind` in `namespace` (every namespace when empty) matching `selector` (may be empty).
    pub async fn list(&self, kind: &Kind, namespace: &str, selector: &str) -> Vec<Value> {
        let params = if selector.is_empty() { ListParams::default() } else { ListParams::default().labels(selector) };
        api(&self.client(), kind, namespace)
            .list(&params)
            .await
            .unwrap_or_else(|e| panic!("list {} in {namespace:?} ({selector}): {e}", kind.plural))
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    /// Creates `object` (panics on failure).
    pub async fn create(&self, object: &Value) -> Value {
        self.try_create(object).await.unwrap_or_else(|e| panic!("create {}: {e}", describe(object)))
    }

    /// Creates `object`.
    pub async fn try_create(&self, object: &Value) -> Result<Value, kube::Error> {
        self.try_create_as(TEST_AGENT, object).await
    }

    /// Creates `object` with field manager `manager` (as another controller would).
    pub async fn try_create_as(&self, manager: &str, object: &Value) -> Result<Value, kube::Error> {
        let (kind, namespace, _) = identify(object);
        let object: DynamicObject = serde_json::from_value(object.clone()).unwrap_or_else(|e| panic!("{e}"));
        let params = PostParams { field_manager: Some(manager.to_string()), ..PostParams::default() };
        let created = api(&self.client(), &kind, &namespace).create(&params, &object).await?;
        Ok(serde_json::to_value(created).unwrap_or_else(|e| panic!("{e}")))
    }

    /// Server-side applies `object` with field manager `manager` (forced).
    pub async fn apply_as(&self, manager: &str, object: &Value) -> Value {
        let (kind, namespace, name) = identify(object);
        let applied = api(&self.client(), &kind, &namespace)
            .patch(&name, &PatchParams::apply(manager).force(), &Patch::Apply(object))
            .await
            .unwrap_or_else(|e| panic!("apply {} as {manager}: {e}", describe(object)));
        serde_json::to_value(applied).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A JSON merge patch by field manager `manager` (an update, as `kubectl edit` or `kubectl patch` make).
    pub async fn merge_patch_as(
        &self,
        manager: &str,
        kind: &Kind,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Value {
        let params = PatchParams { field_manager: Some(manager.into()), ..PatchParams::default() };
        let patched = api(&self.client(), kind, namespace)
            .patch(name, &params, &Patch::Merge(patch))
            .await
            .unwrap_or_else(|e| panic!("merge patch {} {namespace}/{name}: {e}", kind.kind));
        serde_json::to_value(patched).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A JSON patch (RFC 6902) by field manager `manager`.
    pub async fn json_patch_as(&self, manager: &str, kind: &Kind, namespace: &str, name: &str, patch: &Value) -> Value {
        let params = PatchParams { field_manager: Some(manager.into()), ..PatchParams::default() };
        let patch: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap_or_else(|e| panic!("{e}"));
        let patched = api(&self.client(), kind, namespace)
            .patch(name, &params, &Patch::<()>::Json(patch))
            .await
            .unwrap_or_else(|e| panic!("json patch {} {namespace}/{name}: {e}", kind.kind));
        serde_json::to_value(patched).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A merge patch of the status subresource.
    pub async fn patch_status(&self, kind: &Kind, namespace: &str, name: &str, patch: &Value) {
        api(&self.client(), kind, namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap_or_else(|e| panic!("status patch {} {namespace}/{name}: {e}", kind.kind));
    }

    /// Deletes an object (background propagation); a missing object is fine.
    pub async fn delete(&self, kind: &Kind, namespace: &str, name: &str) {
        match api(&self.client(), kind, namespace).delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => panic!("delete {} {namespace}/{name}: {e}", kind.kind),
        }
    }

    /// Waits until `check` holds, polling every 50 ms, or panics with `what` after `timeout`.
    pub async fn eventually<F>(&self, timeout: Duration, what: &str, check: F)
    where
        F: AsyncFnMut() -> bool,
    {
        eventually(timeout, what, check).await;
    }
}

/// Waits until `check` holds, polling every 50 ms, or panics with `what` after `timeout`.
pub async fn eventually<F>(timeout: Duration, what: &str, mut check: F)
where
    F: AsyncFnMut() -> bool,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client from `config` with a User-Agent and, optionally, injected faults.
fn client_from(mut config: Config, user_agent: &str, faults: Option<&Faults>) -> Client {
    let agent = http::HeaderValue::from_str(user_agent).unwrap_or_else(|e| panic!("User-Agent {user_agent:?}: {e}"));
    config.headers.push((http::header::USER_AGENT, agent));
    let builder =
        kube::client::ClientBuilder::try_from(config).unwrap_or_else(|e| panic!("a client for the test cluster: {e}"));
    match faults {
        Some(faults) => builder.with_layer(faults).build(),
        None => builder.build(),
    }
}

/// A dynamic API for `kind` in `namespace` (all namespaces when empty; ignored for cluster-scoped kinds).
pub fn api(client: &Client, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
    let resource = kind.resource();
    if kind.namespaced && !namespace.is_empty() {
        Api::namespaced_with(client.clone(), namespace, &resource)
    } else {
        Api::all_with(client.clone(), &resource)
    }
}

/// The kind, namespace and name of a document.
fn identify(object: &Value) -> (Kind, String, String) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind_name = object["kind"].as_str().unwrap_or_default();
    let kind = Kind::of(api_version, kind_name)
        .unwrap_or_else(|| panic!("no kind {api_version} {kind_name} in cma_testkit::cluster::kinds"));
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default().to_string();
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_string();
    (kind, namespace, name)
}

fn describe(object: &Value) -> String {
    let (kind, namespace, name) = identify(object);
    if namespace.is_empty() { format!("{} {name}", kind.kind) } else { format!("{} {namespace}/{name}", kind.kind) }
}
