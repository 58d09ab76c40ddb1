//! CRUD, errors, selectors, discovery, raw paths, pod logs, faults and request accounting through a real
//! `kube::Client`.

// Helpers outside `#[test]` fns unwrap too; clippy.toml only allows it inside them.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cma_testkit::{FakeApiServer, Gvr, Matcher, Verb, known};
use futures::AsyncReadExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::Discovery;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn cm(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"k": "v"},
    }))
    .unwrap()
}

/// (code, reason) of an API error.
fn api_err<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn crud_sets_server_metadata_and_answers_404_and_409() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");

    let created = api.create(&PostParams::default(), &cm("a", json!({}))).await.unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.is_some() && meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("ns"));
    assert_eq!(meta.generation, Some(1));
    let rv1: u64 = meta.resource_version.as_deref().unwrap().parse().unwrap();

    assert_eq!(api.get("a").await.unwrap().data, created.data);
    assert_eq!(api_err(api.get("missing").await), (404, "NotFound".into()));
    assert_eq!(api_err(api.delete("missing", &DeleteParams::default()).await), (404, "NotFound".into()));
    assert_eq!(api_err(api.create(&PostParams::default(), &cm("a", json!({}))).await), (409, "AlreadyExists".into()));

    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api.replace("a", &PostParams::default(), &changed).await.unwrap();
    let rv2: u64 = replaced.metadata.resource_version.as_deref().unwrap().parse().unwrap();
    assert!(rv2 > rv1);
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    // `changed` still carries the old resourceVersion.
    assert_eq!(api_err(api.replace("a", &PostParams::default(), &changed).await), (409, "Conflict".into()));

    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_err(api.get("a").await).0, 404);
}

#[tokio::test]
async fn lease_takeover_with_stale_resource_version_conflicts() {
    let fake = FakeApiServer::new();
    let a: Api<Lease> = Api::namespaced(fake.client_as("a"), "ns");
    let b: Api<Lease> = Api::namespaced(fake.client_as("b"), "ns");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "cma-operator-lock"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }))
    .unwrap();
    let held = a.create(&PostParams::default(), &lease).await.unwrap();
    let mut renew = held.clone();
    renew.spec.as_mut().unwrap().lease_duration_seconds = Some(16);
    a.replace("cma-operator-lock", &PostParams::default(), &renew).await.unwrap();
    let mut steal = held;
    steal.spec.as_mut().unwrap().holder_identity = Some("b".into());
    assert_eq!(api_err(b.replace("cma-operator-lock", &PostParams::default(), &steal).await).0, 409);
    let writers: Vec<String> = fake.writes().iter().filter(|w| w.status < 300).map(|w| w.client.clone()).collect();
    assert_eq!(writers, ["a", "a"]);
}

#[tokio::test]
async fn generate_name_creates_unique_names() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let obj: ConfigMap = serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let a = api.create(&PostParams::default(), &obj).await.unwrap();
    let b = api.create(&PostParams::default(), &obj).await.unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("gen-") && a.len() == "gen-".len() + 5, "{a}");
    assert_ne!(a, b);
}

#[tokio::test]
async fn list_filters_by_label_and_field_selectors_and_namespace() {
    let fake = FakeApiServer::new();
    let client = fake.client();
    let ns1: Api<ConfigMap> = Api::namespaced(client.clone(), "ns1");
    let ns2: Api<ConfigMap> = Api::namespaced(client.clone(), "ns2");
    let pp = PostParams::default();
    ns1.create(&pp, &cm("a", json!({"app": "keda", "tier": "op"}))).await.unwrap();
    ns1.create(&pp, &cm("b", json!({"app": "keda", "tier": "web"}))).await.unwrap();
    ns1.create(&pp, &cm("c", json!({"app": "other"}))).await.unwrap();
    ns2.create(&pp, &cm("d", json!({"app": "keda"}))).await.unwrap();

    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items.into_iter().map(|c| c.metadata.name.unwrap()).collect()
    };
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(names(all.list(&ListParams::default().labels("app=keda")).await.unwrap()), ["a", "b", "d"]);
    assert_eq!(names(ns1.list(&ListParams::default().labels("app==keda,tier!=op")).await.unwrap()), ["b"]);
    assert_eq!(names(ns1.list(&ListParams::default().labels("tier in (op, web)")).await.unwrap()), ["a", "b"]);
    assert_eq!(names(ns1.list(&ListParams::default().labels("tier notin (op)")).await.unwrap()), ["b", "c"]);
    assert_eq!(names(ns1.list(&ListParams::default().labels("!tier")).await.unwrap()), ["c"]);
    assert_eq!(names(all.list(&ListParams::default().fields("metadata.name=d")).await.unwrap()), ["d"]);
    assert_eq!(names(all.list(&ListParams::default().fields("metadata.namespace!=ns1")).await.unwrap()), ["d"]);
    let list = ns1.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.metadata.resource_version, Some(fake.resource_version().to_string()));
}

#[tokio::test]
async fn cluster_scoped_objects_ignore_namespaces() {
    let fake = FakeApiServer::new();
    let api: Api<ClusterRole> = Api::all(fake.client());
    let role: ClusterRole =
        serde_json::from_value(json!({"metadata": {"name": "keda-operator"}, "rules": []})).unwrap();
    let created = api.create(&PostParams::default(), &role).await.unwrap();
    assert_eq!(created.metadata.namespace, None);
    assert!(fake.get(&Gvr::of::<ClusterRole>(), "", "keda-operator").is_some());
    assert!(fake.get(&Gvr::of::<ClusterRole>(), "whatever", "keda-operator").is_some());
}

#[tokio::test]
async fn discovery_reflects_registered_resources() {
    let fake = FakeApiServer::new();
    let client = fake.client();
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    assert!(discovery.has_group("apps") && discovery.has_group("apiregistration.k8s.io"));
    assert!(!discovery.has_group("config.openshift.io"));

    fake.register(known::openshift_apiservers());
    fake.register(known::servicemonitors());
    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone()).run_aggregated().await.unwrap(),
    ] {
        assert!(discovery.has_group("config.openshift.io"));
        let (res, caps) = discovery.get("monitoring.coreos.com").unwrap().recommended_kind("ServiceMonitor").unwrap();
        assert_eq!(res.plural, "servicemonitors");
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        let (deploy, caps) = discovery.get("apps").unwrap().recommended_kind("Deployment").unwrap();
        assert_eq!(deploy.version, "v1");
        assert!(caps.subresources.iter().any(|(r, _)| r.plural == "deployments/status" || r.plural == "status"));
    }
    let version = client.apiserver_version().await.unwrap();
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "35"));
}

#[tokio::test]
async fn raw_get_paths_answer_registered_json() {
    let fake = FakeApiServer::new();
    fake.set_raw_get(
        "/apis/external.metrics.k8s.io/v1beta1",
        200,
        json!({"kind": "APIResourceList", "groupVersion": "external.metrics.k8s.io/v1beta1", "resources": []}),
    );
    let client = fake.client();
    let req = http::Request::get("/apis/external.metrics.k8s.io/v1beta1").body(vec![]).unwrap();
    let doc: Value = client.request(req).await.unwrap();
    assert_eq!(doc["groupVersion"], "external.metrics.k8s.io/v1beta1");
    let req = http::Request::get("/apis/custom.metrics.k8s.io/v1beta1").body(vec![]).unwrap();
    assert_eq!(api_err(client.request::<Value>(req).await).0, 404);
}

#[tokio::test]
async fn pod_logs_are_served_and_requests_recorded() {
    let fake = FakeApiServer::new();
    fake.insert(
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "keda-operator-1", "namespace": "keda"}}),
    )
    .unwrap();
    fake.set_pod_log("keda", "keda-operator-1", "keda-operator", false, "line 1\nline 2\n");
    fake.set_pod_log("keda", "keda-operator-1", "keda-operator", true, "crashed\n");
    let pods: Api<Pod> = Api::namespaced(fake.client(), "keda");

    let lp = LogParams { container: Some("keda-operator".into()), since_seconds: Some(3600), ..LogParams::default() };
    assert_eq!(pods.logs("keda-operator-1", &lp).await.unwrap(), "line 1\nline 2\n");
    let previous = LogParams { previous: true, ..lp.clone() };
    assert_eq!(pods.logs("keda-operator-1", &previous).await.unwrap(), "crashed\n");
    let tail = LogParams { tail_lines: Some(1), ..lp.clone() };
    assert_eq!(pods.logs("keda-operator-1", &tail).await.unwrap(), "line 2\n");
    // Only one container has logs: no container name needed.
    assert_eq!(pods.logs("keda-operator-1", &LogParams::default()).await.unwrap(), "line 1\nline 2\n");
    assert_eq!(api_err(pods.logs("missing", &LogParams::default()).await).0, 404);

    let requests = fake.log_requests();
    assert_eq!(requests[0].container.as_deref(), Some("keda-operator"));
    assert_eq!(requests[0].since_seconds, Some(3600));
    assert!(!requests[0].previous && requests[1].previous);
    assert!(fake.requests().iter().any(|r| r.subresource.as_deref() == Some("log") && r.verb == Verb::Get));
}

#[tokio::test]
async fn large_logs_stream_intact() {
    let fake = FakeApiServer::new();
    let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijkl\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len());
    fake.set_pod_log("keda", "big", "c", false, text.clone());
    let pods: Api<Pod> = Api::namespaced(fake.client(), "keda");
    let mut stream = pods.log_stream("big", &LogParams::default()).await.unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), text.len());
    assert!(got == text.as_bytes());
}

#[tokio::test]
async fn forbidden_resource_answers_403_only_for_that_resource() {
    let fake = FakeApiServer::new();
    fake.forbid(Matcher::resource("", "secrets").verb(Verb::List));
    let client = fake.client();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "keda");
    match secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert!(s.message.contains("cannot list resource \"secrets\""), "{}", s.message);
        }
        other => panic!("expected 403, got {other:?}"),
    }
    assert!(secrets.get_opt("s").await.unwrap().is_none(), "get is not forbidden");
    let cms: Api<ConfigMap> = Api::namespaced(client, "keda");
    cms.list(&ListParams::default()).await.unwrap();
    fake.clear_faults();
    secrets.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn fail_next_fails_exactly_n_matching_requests() {
    let fake = FakeApiServer::new();
    fake.fail_next(2, Matcher::resource("", "configmaps").verb(Verb::Create), 500);
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let pp = PostParams::default();
    assert_eq!(api_err(api.create(&pp, &cm("a", json!({}))).await), (500, "InternalError".into()));
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(api_err(api.create(&pp, &cm("a", json!({}))).await).0, 500);
    api.create(&pp, &cm("a", json!({}))).await.unwrap();

    fake.fail_next(1, Matcher::when(|r| r.name.as_deref() == Some("a")), 409);
    assert_eq!(api_err(api.get("a").await).0, 409);
    api.get("a").await.unwrap();
}

#[tokio::test]
async fn latency_delays_requests() {
    let fake = FakeApiServer::new();
    fake.set_latency(Duration::from_millis(50));
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let start = std::time::Instant::now();
    let _ = api.get_opt("a").await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn requests_are_counted_by_verb_and_client() {
    let fake = FakeApiServer::new();
    let a: Api<ConfigMap> = Api::namespaced(fake.client_as("a"), "ns");
    let b: Api<ConfigMap> = Api::namespaced(fake.client_as("b"), "ns");
    let apply = PatchParams::apply("cma-operator").force();
    a.patch("x", &apply, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}})))
        .await
        .unwrap();
    let mark = fake.mark();
    b.get("x").await.unwrap();
    b.list(&ListParams::default()).await.unwrap();
    b.patch("x", &PatchParams::default(), &Patch::Merge(json!({"data": {"b": "2"}}))).await.unwrap();
    b.delete("x", &DeleteParams::default()).await.unwrap();

    assert_eq!(fake.count(Verb::Apply), 1);
    assert_eq!(fake.count(Verb::Patch), 1);
    assert_eq!((fake.count(Verb::Get), fake.count(Verb::List), fake.count(Verb::Delete)), (1, 1, 1));
    let applied = &fake.writes()[0];
    assert_eq!(applied.field_manager.as_deref(), Some("cma-operator"));
    assert!(applied.force);
    assert_eq!(applied.query("fieldManager"), Some("cma-operator"));
    assert_eq!(applied.content_type.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(applied.body.as_ref().unwrap()["data"]["a"], "1");
    assert_eq!((applied.client.as_str(), applied.status), ("a", 201));

    let since: Vec<Verb> = fake.requests_since(mark).iter().map(|r| r.verb).collect();
    assert_eq!(since, [Verb::Get, Verb::List, Verb::Patch, Verb::Delete]);
    assert_eq!(fake.writes_since(mark).len(), 2);
    assert!(fake.writes_since(mark).iter().all(|w| w.client == "b"));
    fake.reset_counts();
    assert_eq!(fake.requests().len(), 0);
}

#[tokio::test]
async fn insert_requires_a_namespace_for_namespaced_kinds_and_a_known_kind() {
    let fake = FakeApiServer::new();
    assert!(fake.insert(&cm("a", json!({}))).is_err());
    assert!(fake.insert(&json!({"apiVersion": "x/v1", "kind": "Nope", "metadata": {"name": "a"}})).is_err());
    let mut ok = cm("a", json!({}));
    ok.metadata.namespace = Some("ns".into());
    fake.insert(&ok).unwrap();
    let read: ConfigMap = fake.get_as("ns", "a").unwrap().unwrap();
    assert_eq!(read.data, ok.data);
    assert_eq!(fake.list_as::<ConfigMap>().unwrap().len(), 1);
}

#[tokio::test]
async fn bodies_of_the_wrong_type_or_namespace_are_refused() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}});
    assert_eq!(api_err(api.patch("x", &PatchParams::apply("m"), &Patch::Apply(&secret)).await).0, 400);
    let elsewhere = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}});
    assert_eq!(api_err(api.patch("x", &PatchParams::apply("m"), &Patch::Apply(&elsewhere)).await).0, 400);
    let renamed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}});
    assert_eq!(api_err(api.patch("x", &PatchParams::apply("m"), &Patch::Apply(&renamed)).await).0, 400);
    assert!(fake.list(&Gvr::of::<ConfigMap>()).is_empty());
}

#[tokio::test]
async fn secret_string_data_is_stored_as_base64_data() {
    let fake = FakeApiServer::new();
    let api: Api<Secret> = Api::namespaced(fake.client(), "ns");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "YQ=="}, "stringData": {"b": "b"}});
    let stored = api.patch("s", &PatchParams::apply("m"), &Patch::Apply(&secret)).await.unwrap();
    let data = stored.data.unwrap();
    assert_eq!((data["a"].0.as_slice(), data["b"].0.as_slice()), (b"a".as_slice(), b"b".as_slice()));
    assert!(stored.string_data.is_none());
    let again = api.patch("s", &PatchParams::apply("m"), &Patch::Apply(&secret)).await.unwrap();
    assert_eq!(again.metadata.resource_version, stored.metadata.resource_version, "no-op");
}

#[tokio::test]
async fn simulated_controllers_report_rollouts_and_conditions() {
    let fake = FakeApiServer::new();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(fake.client(), "keda");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "keda-operator"},
                   "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}}, "template": {"spec": {"containers": []}}}});
    deployments.patch("keda-operator", &PatchParams::apply("m"), &Patch::Apply(&d)).await.unwrap();
    fake.complete_rollout("keda", "keda-operator").unwrap();
    let status = deployments.get_status("keda-operator").await.unwrap().status.unwrap();
    assert_eq!((status.available_replicas, status.observed_generation), (Some(2), Some(1)));
    let available = status.conditions.unwrap().into_iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(available.status, "True");

    let gvr = Gvr::new("apps", "v1", "deployments");
    let before = fake.get(&gvr, "keda", "keda-operator").unwrap();
    fake.set_condition(&gvr, "keda", "keda-operator", "Available", "True", "Still").unwrap();
    let after = fake.get(&gvr, "keda", "keda-operator").unwrap();
    let since = |o: &Value| o["status"]["conditions"][1]["lastTransitionTime"].clone();
    assert_eq!(since(&before), since(&after), "same status keeps the transition time");
    assert_eq!(after["status"]["conditions"][1]["reason"], "Still");
    assert!(fake.complete_rollout("keda", "missing").is_err());
}

#[tokio::test]
async fn delete_collection_deletes_what_the_selector_matches() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let pp = PostParams::default();
    api.create(&pp, &cm("a", json!({"prune": "yes"}))).await.unwrap();
    api.create(&pp, &cm("b", json!({"prune": "no"}))).await.unwrap();
    let deleted = api
        .delete_collection(&DeleteParams::default(), &ListParams::default().labels("prune=yes"))
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(deleted.items.len(), 1);
    let left: Vec<String> = fake
        .list(&Gvr::of::<ConfigMap>())
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(left, ["b"]);
    assert_eq!(fake.count(Verb::DeleteCollection), 1);
}

#[tokio::test]
async fn dry_run_is_refused_rather_than_persisted() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let pp = PostParams { dry_run: true, ..PostParams::default() };
    assert_eq!(api_err(api.create(&pp, &cm("a", json!({}))).await).0, 400);
    assert!(fake.list(&Gvr::of::<ConfigMap>()).is_empty());
}
