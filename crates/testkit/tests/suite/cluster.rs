//! The real control plane harness does what tests rely on: it starts, isolates tests, records requests,
//! plays the kubelet and the service-ca operator, injects faults, restarts and compacts.

use std::time::Duration;

use cma_testkit::cluster::{self, Apis, Faults, RequestMatch, kinds};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn config_map(namespace: &str, name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": {"a": "1"}})
}

#[tokio::test]
async fn requests_are_in_the_audit_log_with_the_callers_user_agent() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("audit").await;
    let mark = cluster.audit().mark();
    let client = cluster.client_with("audit-probe/1", None);
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let cm: ConfigMap = serde_json::from_value(config_map(&ns, "c")).unwrap();
    api.patch("c", &PatchParams::apply("probe").force(), &Patch::Apply(&cm)).await.unwrap();
    let mine = cluster.audit().by_agent(mark, "audit-probe/1");
    assert_eq!(mine.len(), 1, "{:?}", mine.iter().map(|e| e.describe()).collect::<Vec<_>>());
    assert_eq!(mine[0].verb, "patch");
    assert_eq!(mine[0].object.name, "c");
    assert!(mine[0].uri.contains("fieldManager=probe"), "{}", mine[0].uri);
    assert!(mine[0].answered >= mine[0].received);
}

#[tokio::test]
async fn server_side_apply_removes_a_field_its_manager_stops_sending() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("ssa").await;
    let mut cm = config_map(&ns, "c");
    cm["data"]["b"] = json!("2");
    cluster.apply_as("owner", &cm).await;
    cluster.apply_as("owner", &config_map(&ns, "c")).await;
    let live = cluster.get(&kinds::CONFIG_MAP, &ns, "c").await.unwrap();
    assert_eq!(live["data"], json!({"a": "1"}));
}

#[tokio::test]
async fn a_service_account_client_has_only_its_permissions() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("sa").await;
    cluster
        .create(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody", "namespace": ns}}))
        .await;
    let mark = cluster.audit().mark();
    let client = cluster.service_account_client(&ns, "nobody", "nobody-probe", None).await;
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let error = api.get("anything").await.unwrap_err();
    assert!(matches!(&error, kube::Error::Api(s) if s.code == 403), "{error}");
    let events = cluster.audit().by_agent(mark, "nobody-probe");
    assert!(events.iter().any(|e| e.is_forbidden() && e.user == format!("system:serviceaccount:{ns}:nobody")));
}

#[tokio::test]
async fn the_test_kubelet_makes_a_deployment_available() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("kubelet").await;
    let _kubelet = cluster.kubelet(&ns);
    cluster
        .create(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}}},
        }))
        .await;
    cluster
        .eventually(WAIT, "two available replicas", async || {
            cluster.get(&kinds::DEPLOYMENT, &ns, "web").await.is_some_and(|d| d["status"]["availableReplicas"] == 2)
        })
        .await;
}

#[tokio::test]
async fn faults_answer_chosen_requests_and_the_rest_reach_the_server() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("faults").await;
    let faults = Faults::new();
    faults.fail_next(
        1,
        RequestMatch::default().method(http::Method::PATCH).path("/configmaps/c"),
        500,
        "InternalError",
        "injected",
    );
    let api: Api<ConfigMap> = Api::namespaced(cluster.client_with("faulty", Some(&faults)), &ns);
    let cm: ConfigMap = serde_json::from_value(config_map(&ns, "c")).unwrap();
    let error = api.patch("c", &PatchParams::apply("probe").force(), &Patch::Apply(&cm)).await.unwrap_err();
    assert!(matches!(&error, kube::Error::Api(s) if s.code == 500 && s.message == "injected"), "{error}");
    api.patch("c", &PatchParams::apply("probe").force(), &Patch::Apply(&cm)).await.unwrap();
    assert_eq!(faults.hits(), 1);
    assert!(cluster.get(&kinds::CONFIG_MAP, &ns, "c").await.is_some());
}

#[tokio::test]
async fn openshift_apis_are_served_when_asked_for_and_gone_after() {
    let cluster = cluster::acquire(Apis::openshift_with_monitoring()).await;
    let groups = cluster.client().list_api_groups().await.unwrap();
    let names: Vec<_> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    for group in ["config.openshift.io", "route.openshift.io", "monitoring.coreos.com"] {
        assert!(names.contains(&group), "{group} missing from {names:?}");
    }
    assert!(cluster.get(&kinds::OPENSHIFT_APISERVER, "", "cluster").await.is_some());
    drop(cluster);
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let groups = cluster.client().list_api_groups().await.unwrap();
    assert!(!groups.groups.iter().any(|g| g.name == "config.openshift.io" || g.name == "monitoring.coreos.com"));
}

#[tokio::test]
async fn the_service_ca_player_issues_certificates_and_injects_bundles() {
    let cluster = cluster::acquire(Apis::openshift()).await;
    let ns = cluster.namespace("svcca").await;
    let service_ca = cluster.service_ca(&ns);
    cluster
        .create(&json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "m", "namespace": ns, "annotations": {"service.beta.openshift.io/serving-cert-secret-name": "m-certs"}},
            "spec": {"ports": [{"port": 443}]},
        }))
        .await;
    cluster
        .create(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "bundle", "namespace": ns, "annotations": {"service.beta.openshift.io/inject-cabundle": "true"}},
        }))
        .await;
    cluster
        .eventually(WAIT, "the certificate and the bundle", async || {
            cluster.get(&kinds::SECRET, &ns, "m-certs").await.is_some_and(|s| s["data"]["tls.crt"].is_string())
                && cluster
                    .get(&kinds::CONFIG_MAP, &ns, "bundle")
                    .await
                    .is_some_and(|c| c["data"]["service-ca.crt"] == service_ca.ca_pem())
        })
        .await;
}

#[tokio::test]
async fn clients_recover_from_an_api_server_restart_and_watches_from_compaction() {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("restart").await;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client(), &ns);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let watch = tokio::spawn({
        let seen = seen.clone();
        let stream = watcher(api.clone(), watcher::Config::default()).default_backoff().applied_objects();
        async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Ok(cm) = event {
                    seen.lock().unwrap().push(cm.metadata.name.unwrap_or_default());
                }
            }
        }
    });
    cluster.apply_as("probe", &config_map(&ns, "before")).await;
    cluster
        .eventually(WAIT, "the watch sees 'before'", async || seen.lock().unwrap().contains(&"before".to_string()))
        .await;
    cluster.compact_etcd().await;
    cluster.restart_api_server(Duration::from_millis(500)).await;
    cluster.apply_as("probe", &config_map(&ns, "after")).await;
    cluster
        .eventually(WAIT, "the watch sees 'after'", async || seen.lock().unwrap().contains(&"after".to_string()))
        .await;
    watch.abort();
}

/// `GET pods/NAME/log` through the real API server: it proxies to the test node's kubelet on loopback, which
/// serves what the test set, with the options applied, and records what it was asked.
#[tokio::test]
async fn container_logs_come_from_the_test_kubelet_through_the_api_server() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("logs").await;
    let kubelet = cluster.kubelet(&ns);
    kubelet.restarted("web", 1);
    cluster
        .eventually(WAIT, "the namespace's default ServiceAccount", async || {
            cluster.get(&kinds::SERVICE_ACCOUNT, &ns, "default").await.is_some()
        })
        .await;
    cluster
        .create(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": ns},
                        "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"},
                                                {"name": "side", "image": "example.invalid/side:1"}]}}))
        .await;
    cluster
        .eventually(WAIT, "the pod runs, restarted once", async || {
            cluster.get(&kinds::POD, &ns, "web").await.is_some_and(|p| {
                p["status"]["phase"] == "Running" && p["status"]["containerStatuses"][0]["restartCount"] == 1
            })
        })
        .await;
    let recent = k8s_openapi::jiff::Timestamp::now().to_string();
    let current = format!("2020-01-01T00:00:00Z old line\n{recent} new line\n  continued without a timestamp\n");
    cluster.container_logs().set(&ns, "web", "app", current.clone());
    cluster.container_logs().set_previous(&ns, "web", "app", "2020-01-01T00:00:00Z crashed\n");

    let client = cluster.client();
    let get = async |query: &str| -> Result<String, kube::Error> {
        let uri = format!("/api/v1/namespaces/{ns}/pods/web/log?{query}");
        client.request_text(http::Request::get(uri).body(Vec::new()).unwrap()).await
    };
    assert_eq!(get("container=app&timestamps=true").await.unwrap(), current);
    assert_eq!(get("container=app").await.unwrap(), "old line\nnew line\n  continued without a timestamp\n");
    assert_eq!(
        get("container=app&timestamps=true&sinceSeconds=3600").await.unwrap(),
        format!("{recent} new line\n  continued without a timestamp\n")
    );
    assert_eq!(get("container=app&sinceTime=2019-12-31T00:00:00Z").await.unwrap().lines().count(), 3);
    assert_eq!(get("container=app&tailLines=1").await.unwrap(), "  continued without a timestamp\n");
    assert_eq!(get("container=app&limitBytes=3").await.unwrap(), "old");
    assert_eq!(get("container=app&previous=true").await.unwrap(), "crashed\n");
    // Nothing set: an empty log; no previous instance: the kubelet's 400, passed on by the API server.
    assert_eq!(get("container=side&follow=true").await.unwrap(), "");
    // Options at their defaults are not passed on.
    assert_eq!(get("container=side&follow=false&timestamps=false&previous=false").await.unwrap(), "");
    let error = get("container=side&previous=true").await.unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 400
            && s.message == r#"previous terminated container "side" in pod "web" not found"#),
        "{error:?}"
    );
    // The API server itself refuses a container the pod does not have.
    let error = get("container=nope").await.unwrap_err();
    assert!(matches!(&error, kube::Error::Api(s) if s.code == 400 && s.message.contains("nope")), "{error:?}");

    let requests = cluster.container_logs().requests();
    assert_eq!(requests.len(), 10, "{requests:#?}");
    let since = &requests[2];
    assert_eq!((since.namespace.as_str(), since.pod.as_str(), since.container.as_str()), (ns.as_str(), "web", "app"));
    assert_eq!(since.since_seconds(), Some(3600));
    assert!(since.timestamps() && !since.previous());
    assert_eq!(requests[3].since_time(), Some("2019-12-31T00:00:00Z"));
    assert_eq!((requests[4].tail_lines(), requests[5].limit_bytes()), (Some(1), Some(3)));
    assert!(requests[6].previous() && requests[7].follow());
    assert!(requests[8].query.is_empty(), "{:?}", requests[8]);
}

/// The external metrics API behind the real aggregator: served while the stand-in answers, `503` from the
/// aggregator once it hangs.
#[tokio::test]
async fn the_external_metrics_stand_in_is_reached_through_the_aggregator() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let metrics = cluster.serve_external_metrics(&ns, "keda-metrics-apiserver").await;
    // No retries: the aggregator's answer is what this test is about.
    let mut config = cluster.config();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let get = async || {
        let request = http::Request::get("/apis/external.metrics.k8s.io/v1beta1").body(Vec::new()).unwrap();
        client.request_text(request).await
    };
    let discovery: serde_json::Value = serde_json::from_str(&get().await.unwrap()).unwrap();
    assert_eq!(discovery["resources"][0]["kind"], "ExternalMetricValueList");
    metrics.silence();
    let error = get().await.unwrap_err();
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 503 && s.message == "error trying to reach service: context deadline exceeded"),
        "{error:?}"
    );
}
