//! Server-side apply, merge patches and the status subresource through a real `kube::Client`.

// Helpers outside `#[test]` fns unwrap too; clippy.toml only allows it inside them.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cma_testkit::{FakeApiServer, Gvr, Verb, known};
use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams, WatchParams};
use serde_json::{Value, json};

const OPERATOR: &str = "cma-operator";

fn apply_params() -> PatchParams {
    PatchParams::apply(OPERATOR).force()
}

fn rv<K: kube::Resource>(obj: &K) -> String {
    obj.meta().resource_version.clone().unwrap()
}

fn deployment(env: Value, extra_spec: Value) -> Value {
    let mut spec = json!({
        "replicas": 1,
        "selector": {"matchLabels": {"app": "keda-operator"}},
        "template": {
            "metadata": {"labels": {"app": "keda-operator"}},
            "spec": {
                "containers": [{
                    "name": "keda-operator",
                    "image": "ghcr.io/kedacore/keda:2.20.2",
                    "env": env,
                    "ports": [{"containerPort": 8080, "name": "http"}],
                }],
            },
        },
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra_spec) {
        spec.extend(extra);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "keda-operator", "labels": {"app.kubernetes.io/managed-by": "cma-operator"}},
        "spec": spec,
    })
}

fn container(d: &Deployment) -> &k8s_openapi::api::core::v1::Container {
    &d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0]
}

fn env_names(d: &Deployment) -> Vec<String> {
    container(d).env.iter().flatten().map(|e| e.name.clone()).collect()
}

#[tokio::test]
async fn apply_twice_is_a_no_op() {
    let fake = FakeApiServer::new();
    let api: Api<Deployment> = Api::namespaced(fake.client(), "keda");
    let desired = deployment(json!([{"name": "WATCH_NAMESPACE", "value": ""}]), json!({}));
    let first = api.patch("keda-operator", &apply_params(), &Patch::Apply(&desired)).await.unwrap();
    let mut watch = api.watch(&WatchParams::default(), &rv(&first)).await.unwrap().boxed();

    let second = api.patch("keda-operator", &apply_params(), &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(rv(&first), rv(&second));
    assert_eq!(fake.resource_version().to_string(), rv(&first));
    assert_eq!(second.metadata.generation, Some(1));
    let event = tokio::time::timeout(Duration::from_millis(200), watch.next()).await;
    assert!(event.is_err(), "no watch event for a no-op apply: {event:?}");
}

#[tokio::test]
async fn removing_a_field_from_the_applied_config_removes_it() {
    let fake = FakeApiServer::new();
    let api: Api<Deployment> = Api::namespaced(fake.client(), "keda");
    let with = deployment(
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
        json!({"template": {
            "metadata": {"labels": {"app": "keda-operator"}},
            "spec": {
                "nodeSelector": {"kubernetes.io/os": "linux", "disk": "ssd"},
                "containers": [{"name": "keda-operator", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}],
            },
        }}),
    );
    let applied = api.patch("keda-operator", &apply_params(), &Patch::Apply(&with)).await.unwrap();
    assert_eq!(env_names(&applied), ["A", "B"]);
    let without = deployment(json!([{"name": "A", "value": "1"}]), json!({}));
    let applied2 = api.patch("keda-operator", &apply_params(), &Patch::Apply(&without)).await.unwrap();
    assert_eq!(env_names(&applied2), ["A"]);
    let pod_spec = applied2.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod_spec.node_selector, None);
    assert_eq!(container(&applied2).image.as_deref(), Some("ghcr.io/kedacore/keda:2.20.2"));
    assert_eq!(applied2.metadata.generation, Some(2));
}

#[tokio::test]
async fn fields_of_other_writers_survive_apply_and_list_items_merge_by_name() {
    let fake = FakeApiServer::new();
    let api: Api<Deployment> = Api::namespaced(fake.client(), "keda");
    let desired = deployment(json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]), json!({}));
    api.patch("keda-operator", &apply_params(), &Patch::Apply(&desired)).await.unwrap();

    // Another writer adds an env var to our container, a sidecar and an annotation (strategic merge).
    let other = json!({
        "metadata": {"annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": "keda-operator", "env": [{"name": "INJECTED", "value": "x"}]},
            {"name": "sidecar", "image": "proxy"},
        ]}}},
    });
    let pp = PatchParams { field_manager: Some("injector".into()), ..PatchParams::default() };
    let patched = api.patch("keda-operator", &pp, &Patch::Strategic(&other)).await.unwrap();
    assert_eq!(env_names(&patched), ["A", "B", "INJECTED"]);

    // Our next apply drops B: B goes, the other writer's fields stay, the rest is untouched.
    let desired = deployment(json!([{"name": "A", "value": "1"}]), json!({}));
    let applied = api.patch("keda-operator", &apply_params(), &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(env_names(&applied), ["A", "INJECTED"]);
    let containers: Vec<&str> = applied
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(containers, ["keda-operator", "sidecar"]);
    assert_eq!(applied.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"], "1");
    let ports = container(&applied).ports.clone().unwrap();
    assert_eq!(ports.len(), 1, "ports merge by containerPort+protocol: {ports:?}");
}

#[tokio::test]
async fn injected_ca_bundle_on_apiservice_survives_the_next_apply() {
    let fake = FakeApiServer::new();
    let api: Api<APIService> = Api::all(fake.client());
    let desired = json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
        "spec": {
            "group": "external.metrics.k8s.io", "version": "v1beta1",
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"name": "keda-metrics-apiserver", "namespace": "keda", "port": 443},
        },
    });
    let name = "v1beta1.external.metrics.k8s.io";
    api.patch(name, &apply_params(), &Patch::Apply(&desired)).await.unwrap();

    // The service-ca operator injects the CA bundle with a merge patch.
    let inject = PatchParams { field_manager: Some("service-ca-operator".into()), ..PatchParams::default() };
    let injected = api.patch(name, &inject, &Patch::Merge(json!({"spec": {"caBundle": "Q0EK"}}))).await.unwrap();

    let mark = fake.mark();
    let reapplied = api.patch(name, &apply_params(), &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(reapplied.spec.as_ref().unwrap().ca_bundle.as_ref().map(|b| b.0.clone()), Some(b"CA\n".to_vec()));
    assert_eq!(rv(&reapplied), rv(&injected), "re-apply is a no-op: no fight");
    assert_eq!(fake.writes_since(mark).len(), 1);
    assert_eq!(fake.count(Verb::Apply), 2);
}

#[tokio::test]
async fn injected_ca_bundle_on_webhooks_survives_the_next_apply() {
    let fake = FakeApiServer::new();
    let api: Api<ValidatingWebhookConfiguration> = Api::all(fake.client());
    let webhook = |name: &str| {
        json!({
            "name": name,
            "clientConfig": {"service": {"name": "keda-admission-webhooks", "namespace": "keda", "path": format!("/validate-{name}")}},
            "rules": [{"apiGroups": ["keda.sh"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"], "resources": ["scaledobjects"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        })
    };
    let desired = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "keda-admission"},
        "webhooks": [webhook("vscaledobject.kb.io"), webhook("vscaledjob.kb.io")],
    });
    api.patch("keda-admission", &apply_params(), &Patch::Apply(&desired)).await.unwrap();

    // The injector reads, adds caBundle to every webhook, and replaces the object.
    let mut live = api.get("keda-admission").await.unwrap();
    for w in live.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = Some(k8s_openapi::ByteString(b"CA".to_vec()));
    }
    let pp = PostParams { field_manager: Some("service-ca-operator".into()), ..PostParams::default() };
    let injected = api.replace("keda-admission", &pp, &live).await.unwrap();

    let reapplied = api.patch("keda-admission", &apply_params(), &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(rv(&reapplied), rv(&injected));
    for w in reapplied.webhooks.unwrap() {
        assert_eq!(w.client_config.ca_bundle.unwrap().0, b"CA", "{}", w.name);
    }

    // Dropping a webhook from our config removes it, and only it.
    let fewer = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "keda-admission"},
        "webhooks": [webhook("vscaledobject.kb.io")],
    });
    let applied = api.patch("keda-admission", &apply_params(), &Patch::Apply(&fewer)).await.unwrap();
    let webhooks = applied.webhooks.unwrap();
    let names: Vec<&str> = webhooks.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["vscaledobject.kb.io", "vscaledjob.kb.io"], "the injector still owns a field of vscaledjob");
    assert!(webhooks[0].client_config.ca_bundle.is_some());
    assert!(webhooks[0].client_config.service.is_some());
    let job = &webhooks[1];
    assert!(job.rules.is_none() && job.client_config.service.is_none(), "our fields of it are gone");
    assert_eq!(job.client_config.ca_bundle.as_ref().unwrap().0, b"CA");
}

#[tokio::test]
async fn apply_conflicts_with_another_owner_unless_forced() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let config = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"level": v}});
    api.patch("c", &PatchParams::apply("a"), &Patch::Apply(config("1"))).await.unwrap();

    match api.patch("c", &PatchParams::apply("b"), &Patch::Apply(config("2"))).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(s.message.contains("conflict with \"a\""), "{}", s.message);
            assert!(s.message.contains(".data.level"), "{}", s.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Same value: shared ownership, no conflict.
    api.patch("c", &PatchParams::apply("b"), &Patch::Apply(config("1"))).await.unwrap();
    let forced = api.patch("c", &PatchParams::apply("b").force(), &Patch::Apply(config("2"))).await.unwrap();
    assert_eq!(forced.data.unwrap()["level"], "2");
    // "a" lost the field: now "a" conflicts with "b".
    assert!(api.patch("c", &PatchParams::apply("a"), &Patch::Apply(config("1"))).await.is_err());
    let owners = fake.managed_fields(&Gvr::of::<ConfigMap>(), "ns", "c");
    let owns_level: Vec<&str> =
        owners.iter().filter(|m| m.fields.iter().any(|f| f == ".data.level")).map(|m| m.manager.as_str()).collect();
    assert_eq!(owns_level, ["b"]);
}

#[tokio::test]
async fn a_field_changed_by_an_update_conflicts_until_forced_back() {
    let fake = FakeApiServer::new();
    let api: Api<Deployment> = Api::namespaced(fake.client(), "keda");
    let desired = deployment(json!([]), json!({}));
    api.patch("keda-operator", &apply_params(), &Patch::Apply(&desired)).await.unwrap();
    fake.patch_direct(&Gvr::of::<Deployment>(), "keda", "keda-operator", &json!({"spec": {"replicas": 5}})).unwrap();
    let unforced = PatchParams::apply(OPERATOR);
    assert!(api.patch("keda-operator", &unforced, &Patch::Apply(&desired)).await.is_err());
    let reverted = api.patch("keda-operator", &apply_params(), &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(reverted.spec.unwrap().replicas, Some(1));
}

fn kedacontrollers(fake: &FakeApiServer) -> Api<DynamicObject> {
    fake.register(known::kedacontrollers());
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", "KedaController");
    Api::namespaced_with(fake.client(), "keda", &ApiResource::from_gvk_with_plural(&gvk, "kedacontrollers"))
}

fn kedacontroller(spec: Value, status: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "KedaController",
        "metadata": {"name": "keda"}, "spec": spec, "status": status,
    }))
    .unwrap()
}

#[tokio::test]
async fn status_subresource_isolates_status_and_generation_tracks_spec() {
    let fake = FakeApiServer::new();
    let api = kedacontrollers(&fake);
    let created = api
        .create(&PostParams::default(), &kedacontroller(json!({"watchNamespace": ""}), json!({"phase": "fake"})))
        .await
        .unwrap();
    assert_eq!(created.data.get("status"), None, "status is dropped on create");
    assert_eq!(created.metadata.generation, Some(1));

    // Writes to the main resource ignore status.
    let main = api
        .patch("keda", &PatchParams::default(), &Patch::Merge(json!({"status": {"phase": "ignored"}})))
        .await
        .unwrap();
    assert_eq!(main.data.get("status"), None);
    assert_eq!(rv(&main), rv(&created), "nothing changed");

    // Writes to /status change only status and do not bump generation.
    let status = api
        .patch_status(
            "keda",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"watchNamespace": "x"}, "status": {"phase": "Installation Succeeded"}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["phase"], "Installation Succeeded");
    assert_eq!(status.data["spec"]["watchNamespace"], "");
    assert_eq!(status.metadata.generation, Some(1));

    // Labels do not bump generation, spec changes do.
    let labelled = api
        .patch("keda", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})))
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    let changed = api
        .patch("keda", &PatchParams::default(), &Patch::Merge(json!({"spec": {"watchNamespace": "apps"}})))
        .await
        .unwrap();
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.data["status"]["phase"], "Installation Succeeded", "status kept");

    // Apply on /status with its own manager.
    let status_apply = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController", "status": {"phase": "Ready", "version": "2.20.2"}});
    let applied =
        api.patch_status("keda", &PatchParams::apply(OPERATOR).force(), &Patch::Apply(&status_apply)).await.unwrap();
    assert_eq!(applied.data["status"]["version"], "2.20.2");
    assert_eq!(applied.data["spec"]["watchNamespace"], "apps");
}

#[tokio::test]
async fn json_patch_test_and_add_work_like_the_finalizer_helper() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    api.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap())
        .await
        .unwrap();
    let add: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["finalizer.kedacontroller.keda.sh"]},
    ]))
    .unwrap();
    let patched = api.patch("c", &PatchParams::default(), &Patch::<()>::Json(add.clone())).await.unwrap();
    assert_eq!(patched.metadata.finalizers.unwrap(), ["finalizer.kedacontroller.keda.sh"]);
    // The test op now fails: 422 like the real server.
    match api.patch("c", &PatchParams::default(), &Patch::<()>::Json(add)).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422),
        other => panic!("expected 422, got {other:?}"),
    }
}
