//! A stand-in for KEDA's metrics server: `external.metrics.k8s.io/v1beta1` served over HTTPS on loopback and
//! registered with the API server's aggregator as KEDA registers it (APIService
//! `v1beta1.external.metrics.k8s.io`), so requests for that API go through the real aggregation proxy.
//!
//! No pod network exists here: a Service with a cluster IP resolves to an address nothing routes. The
//! aggregator (without `--enable-aggregator-routing`) resolves an `ExternalName` Service to its name instead,
//! and skips the endpoint check for it, so the Service is `ExternalName` `127.0.0.1` and the APIService names
//! the stand-in's port. The API server does not verify the stand-in's self-signed certificate
//! (`insecureSkipTLSVerify`).
//!
//! What kube-apiserver v1.36 does, measured against it: the APIService is `Available` within a second of its
//! creation. After [`ExternalMetricsApi::silence`], `GET /apis/external.metrics.k8s.io/v1beta1` through the
//! aggregator ends after 5 s with `503` `error trying to reach service: context deadline exceeded` while the
//! APIService still says `Available` (a backend that completes the TLS handshake and then never answers gets
//! the same answer after the same 5 s); the APIService turned `FailedDiscoveryCheck` about 15 s later, and from
//! then on the aggregator answers `503 service unavailable` at once, without trying the backend. A Service
//! without ready endpoints gives `MissingEndpoints` and the same immediate `503`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::https;
use super::{Cluster, TEST_AGENT, api, kinds};

/// The APIService KEDA's metrics server registers.
pub const EXTERNAL_METRICS_APISERVICE: &str = "v1beta1.external.metrics.k8s.io";

/// The running stand-in; it stops (every connection closed) when dropped.
pub struct ExternalMetricsApi {
    task: tokio::task::JoinHandle<()>,
    silence: https::Silence,
    port: u16,
}

impl ExternalMetricsApi {
    /// The loopback port it serves on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on it answers nothing: open connections are closed, new ones accepted and never served (a
    /// hung metrics server).
    pub fn silence(&self) {
        self.silence.silence();
    }
}

impl Drop for ExternalMetricsApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const JSON: &str = "application/json";

fn answer(request: &https::Request) -> https::Response {
    let path = request.path.trim_end_matches('/');
    let body = if path == "/apis/external.metrics.k8s.io/v1beta1" {
        json!({
            "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "external.metrics.k8s.io/v1beta1",
            "resources": [{"name": "externalmetrics", "singularName": "", "namespaced": true,
                           "kind": "ExternalMetricValueList", "verbs": ["get"]}],
        })
    } else if path.starts_with("/apis/external.metrics.k8s.io/v1beta1/namespaces/") {
        json!({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1",
               "metadata": {}, "items": []})
    } else {
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "reason": "NotFound", "code": 404, "message": format!("{} not found", request.path)});
        return (404, JSON, Bytes::from(status.to_string()));
    };
    (200, JSON, Bytes::from(body.to_string()))
}

impl Cluster {
    /// Serves `external.metrics.k8s.io/v1beta1` as KEDA's metrics server would, behind Service `service` of
    /// `namespace` and APIService `v1beta1.external.metrics.k8s.io` (see the module documentation), and waits
    /// until the API server reports the APIService `Available`. Runs in the calling test's runtime.
    pub async fn serve_external_metrics(&self, namespace: &str, service: &str) -> ExternalMetricsApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("a port for the external metrics API: {e}"));
        let port = listener.local_addr().unwrap_or_else(|e| panic!("the external metrics API's port: {e}")).port();
        let silence = https::Silence::default();
        let task = tokio::spawn(https::serve(listener, Arc::new(answer), silence.clone()));
        let stand_in = ExternalMetricsApi { task, silence, port };
        self.apply_as(
            TEST_AGENT,
            &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": service, "namespace": namespace},
                    "spec": {"type": "ExternalName", "externalName": "127.0.0.1"}}),
        )
        .await;
        self.apply_as(
            TEST_AGENT,
            &json!({
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": EXTERNAL_METRICS_APISERVICE},
                "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                         "versionPriority": 100, "insecureSkipTLSVerify": true,
                         "service": {"name": service, "namespace": namespace, "port": port}},
            }),
        )
        .await;
        let client = self.client();
        self.eventually(Duration::from_secs(30), "APIService v1beta1.external.metrics.k8s.io Available", async || {
            api(&client, &kinds::API_SERVICE, "").get_opt(EXTERNAL_METRICS_APISERVICE).await.ok().flatten().is_some_and(
                |s| {
                    s.data["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "Available" && c["status"] == "True"))
                },
            )
        })
        .await;
        stand_in
    }
}
