//! Deletion (finalizers, deletionTimestamp, garbage collection), CRDs, and a real kube-runtime `Controller`
//! running against the fake.

// Helpers outside `#[test]` fns unwrap too; clippy.toml only allows it inside them.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cma_testkit::{FakeApiServer, Gvr, Verb};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{finalizer, watcher};
use kube::{Discovery, Resource, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn obj<K: serde::de::DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).unwrap()
}

fn owner_ref(kind: &str, name: &str, uid: &str) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "name": name, "uid": uid, "controller": true})
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let fake = FakeApiServer::new();
    let api: Api<ConfigMap> = Api::namespaced(fake.client(), "ns");
    let cm: ConfigMap = obj(json!({"metadata": {"name": "c", "finalizers": ["finalizer.kedacontroller.keda.sh"]}}));
    api.create(&PostParams::default(), &cm).await.unwrap();

    let deleting = api.delete("c", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.generation, Some(2), "generation bumps when deletion starts");
    let again = api.delete("c", &DeleteParams::default()).await.unwrap().left().unwrap();
    assert_eq!(again.metadata.resource_version, deleting.metadata.resource_version, "repeat delete: no change");

    // No new finalizers on a deleting object.
    let add = json!({"metadata": {"finalizers": ["finalizer.kedacontroller.keda.sh", "other"]}});
    match api.patch("c", &PatchParams::default(), &Patch::Merge(&add)).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422),
        other => panic!("expected 422, got {other:?}"),
    }
    api.patch("c", &PatchParams::default(), &Patch::Merge(json!({"data": {"still": "here"}}))).await.unwrap();
    assert!(api.get_opt("c").await.unwrap().is_some());

    api.patch("c", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert!(api.get_opt("c").await.unwrap().is_none());
}

#[tokio::test]
async fn owner_references_are_garbage_collected_recursively() {
    let fake = FakeApiServer::new();
    let client = fake.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "ns");
    let secrets: Api<Secret> = Api::namespaced(client, "ns");
    let pp = PostParams::default();
    let parent = cms.create(&pp, &obj(json!({"metadata": {"name": "parent"}}))).await.unwrap();
    let other = cms.create(&pp, &obj(json!({"metadata": {"name": "other"}}))).await.unwrap();
    let child = secrets
        .create(&pp, &obj(json!({"metadata": {"name": "child", "ownerReferences": [owner_ref("ConfigMap", "parent", &parent.uid().unwrap())]}})))
        .await
        .unwrap();
    cms.create(&pp, &obj(json!({"metadata": {"name": "grandchild", "ownerReferences": [owner_ref("Secret", "child", &child.uid().unwrap())]}})))
        .await
        .unwrap();
    let shared_refs = json!([
        owner_ref("ConfigMap", "parent", &parent.uid().unwrap()),
        owner_ref("ConfigMap", "other", &other.uid().unwrap())
    ]);
    secrets.create(&pp, &obj(json!({"metadata": {"name": "shared", "ownerReferences": shared_refs}}))).await.unwrap();
    secrets
        .create(&pp, &obj(json!({"metadata": {"name": "orphan", "ownerReferences": [owner_ref("ConfigMap", "other", &other.uid().unwrap())]}})))
        .await
        .unwrap();

    cms.delete("parent", &DeleteParams::default()).await.unwrap();
    assert!(secrets.get_opt("child").await.unwrap().is_none());
    assert!(cms.get_opt("grandchild").await.unwrap().is_none());
    assert!(secrets.get_opt("shared").await.unwrap().is_some(), "another owner is alive");

    cms.delete("other", &DeleteParams::orphan()).await.unwrap();
    assert!(secrets.get_opt("orphan").await.unwrap().is_some(), "orphan propagation keeps dependents");
    assert!(secrets.get_opt("shared").await.unwrap().is_some());

    let roles: Api<ClusterRole> = Api::all(fake.client());
    let parent2 = cms.create(&pp, &obj(json!({"metadata": {"name": "parent2"}}))).await.unwrap();
    secrets
        .create(&pp, &obj(json!({"metadata": {"name": "child2", "ownerReferences": [owner_ref("ConfigMap", "parent2", &parent2.uid().unwrap())]}})))
        .await
        .unwrap();
    roles
        .create(&pp, &obj(json!({"metadata": {"name": "cross-scope", "ownerReferences": [owner_ref("ConfigMap", "parent2", &parent2.uid().unwrap())]}})))
        .await
        .unwrap();
    cms.delete("parent2", &DeleteParams::default()).await.unwrap();
    assert!(secrets.get_opt("child2").await.unwrap().is_none());
    assert!(roles.get_opt("cross-scope").await.unwrap().is_some(), "leaks like on a real cluster");
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let fake = FakeApiServer::new();
    let client = fake.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces.create(&PostParams::default(), &obj(json!({"metadata": {"name": "keda"}}))).await.unwrap();
    for ns in ["keda", "other"] {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        cms.create(&PostParams::default(), &obj(json!({"metadata": {"name": "c"}}))).await.unwrap();
    }
    namespaces.delete("keda", &DeleteParams::default()).await.unwrap();
    let gvr = Gvr::of::<ConfigMap>();
    assert!(fake.get(&gvr, "keda", "c").is_none());
    assert!(fake.get(&gvr, "other", "c").is_some());
}

fn scaledobject_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "scaledobjects.keda.sh"},
        "spec": {
            "group": "keda.sh", "scope": "Namespaced",
            "names": {"kind": "ScaledObject", "plural": "scaledobjects", "singular": "scaledobject", "listKind": "ScaledObjectList", "shortNames": ["so"]},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    })
}

#[tokio::test]
async fn crds_created_through_the_api_are_served() {
    let fake = FakeApiServer::new();
    let client = fake.client();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    assert!(!Discovery::new(client.clone()).run().await.unwrap().has_group("keda.sh"));
    crds.patch("scaledobjects.keda.sh", &PatchParams::apply("olm"), &Patch::Apply(scaledobject_crd())).await.unwrap();

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery.get("keda.sh").unwrap().recommended_kind("ScaledObject").unwrap();
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let api: Api<DynamicObject> = Api::namespaced_with(client, "apps", &ar);
    let so: DynamicObject = obj(
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"name": "web"}}}),
    );
    api.create(&PostParams::default(), &so).await.unwrap();
    let status = api
        .patch_status("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"health": {}}})))
        .await
        .unwrap();
    assert!(status.data["status"].is_object(), "status subresource taken from the CRD");
}

#[tokio::test]
async fn register_crd_stores_the_crd_and_serves_its_storage_version() {
    let fake = FakeApiServer::new();
    let mut crd = scaledobject_crd();
    crd["spec"]["versions"] = json!([
        {"name": "v1alpha1", "served": true, "storage": false},
        {"name": "v1beta1", "served": true, "storage": true, "subresources": {"status": {}}},
    ]);
    fake.register_crd(&obj::<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >(crd))
        .unwrap();
    let rt = fake.resource_type(&Gvr::new("keda.sh", "v1beta1", "scaledobjects")).unwrap();
    assert_eq!((rt.version.as_str(), rt.namespaced, rt.status_subresource), ("v1beta1", true, true));
    assert_eq!(rt.short_names, ["so"]);
    assert!(
        fake.get(&Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", "scaledobjects.keda.sh")
            .is_some()
    );
}

fn kedacontroller_api(fake: &FakeApiServer) -> Api<DynamicObject> {
    fake.register(cma_testkit::known::kedacontrollers());
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", "KedaController");
    Api::namespaced_with(fake.client(), "keda", &ApiResource::from_gvk_with_plural(&gvk, "kedacontrollers"))
}

#[tokio::test]
async fn kube_runtime_finalizer_helper_adds_runs_cleanup_and_removes() {
    let fake = FakeApiServer::new();
    let api = kedacontroller_api(&fake);
    let kc: DynamicObject = obj(
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController", "metadata": {"name": "keda"}, "spec": {}}),
    );
    api.create(&PostParams::default(), &kc).await.unwrap();
    let run = |obj: DynamicObject| {
        let api = api.clone();
        async move {
            finalizer::finalizer(&api, "finalizer.kedacontroller.keda.sh", Arc::new(obj), |event| async move {
                Ok::<_, std::convert::Infallible>(match event {
                    finalizer::Event::Apply(_) => "apply",
                    finalizer::Event::Cleanup(_) => "cleanup",
                })
                .map(|_| Action::await_change())
            })
            .await
        }
    };
    // First pass adds the finalizer, second applies.
    run(api.get("keda").await.unwrap()).await.unwrap();
    assert_eq!(api.get("keda").await.unwrap().finalizers(), ["finalizer.kedacontroller.keda.sh"]);
    run(api.get("keda").await.unwrap()).await.unwrap();
    api.delete("keda", &DeleteParams::default()).await.unwrap();
    let deleting = api.get("keda").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    run(deleting).await.unwrap();
    assert!(api.get_opt("keda").await.unwrap().is_none());
}

/// A miniature of the operator: each ConfigMap gets an owned, labelled Secret applied with SSA.
async fn reconcile(cm: Arc<ConfigMap>, client: Arc<kube::Client>) -> Result<Action, kube::Error> {
    let ns = cm.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced((*client).clone(), &ns);
    let owner = cm.controller_owner_ref(&()).unwrap();
    let desired = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("{}-secret", cm.name_any()), "labels": {"app.kubernetes.io/managed-by": "mini"}, "ownerReferences": [owner]},
        "stringData": {"level": cm.data.as_ref().and_then(|d| d.get("level")).cloned().unwrap_or_default()},
    });
    secrets
        .patch(&format!("{}-secret", cm.name_any()), &PatchParams::apply("mini").force(), &Patch::Apply(&desired))
        .await?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ConfigMap>, _: &kube::Error, _: Arc<kube::Client>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_restores_deleted_children_and_is_quiet_in_steady_state() {
    let fake = FakeApiServer::new();
    let client = fake.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "keda");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "keda");
    let controller = Controller::new(cms.clone(), watcher::Config::default())
        .owns(secrets.clone(), watcher::Config::default().labels("app.kubernetes.io/managed-by=mini"))
        .run(reconcile, error_policy, Arc::new(client))
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    let gvr = Gvr::of::<Secret>();
    cms.create(&PostParams::default(), &obj(json!({"metadata": {"name": "keda"}, "data": {"level": "1"}})))
        .await
        .unwrap();
    let first = fake.wait_for(&gvr, "keda", "keda-secret", WAIT, |o| o.is_some()).await.unwrap().unwrap();

    // Deleting the managed object: the owned watch triggers a reconcile that recreates it.
    secrets.delete("keda-secret", &DeleteParams::default()).await.unwrap();
    let restored = fake
        .wait_for(&gvr, "keda", "keda-secret", WAIT, |o| {
            o.is_some_and(|o| o["metadata"]["uid"] != first["metadata"]["uid"])
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(restored["data"]["level"], "MQ==", "stringData is stored as base64 data");

    // A spec change propagates.
    cms.patch("keda", &PatchParams::default(), &Patch::Merge(json!({"data": {"level": "2"}}))).await.unwrap();
    fake.wait_for(&gvr, "keda", "keda-secret", WAIT, |o| o.is_some_and(|o| o["data"]["level"] == "Mg=="))
        .await
        .unwrap();

    // Steady state: nothing is written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mark = fake.mark();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.writes_since(mark).len(), 0, "{:?}", fake.writes_since(mark));

    // Deleting the parent collects the child.
    cms.delete("keda", &DeleteParams::default()).await.unwrap();
    assert!(fake.get(&gvr, "keda", "keda-secret").is_none());
    assert!(fake.count(Verb::Apply) >= 3);
    handle.abort();
}
