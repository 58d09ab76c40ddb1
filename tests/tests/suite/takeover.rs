//! Existing KEDA installations, on a real API server: someone else's is never broken silently, one is adopted
//! only when asked (without a gap in the external metrics API), and a Go operator's install is taken over
//! without deleting or recreating what routes traffic, with at most one rollout per Deployment.

use std::collections::BTreeMap;

use cma_testkit::cluster::{AuditEvent, Kind, kinds};
use cma_tests::*;
use serde_json::{Value, json};

const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";

/// KEDA as the KEDA Helm chart installs it (release `keda` in `namespace`): the objects that collide with
/// ours (the APIService, the webhook configuration, the kube-system binding) and its Deployments.
pub(crate) fn helm_install(namespace: &str) -> Vec<Value> {
    let helm = |mut object: Value| {
        object["metadata"]["labels"] =
            json!({"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/part-of": "keda-operator"});
        object["metadata"]["annotations"] =
            json!({"meta.helm.sh/release-name": "keda", "meta.helm.sh/release-namespace": namespace});
        object
    };
    let deployment = |name: &str, app: &str| {
        helm(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"app": app}}, "template": {"metadata": {"labels": {"app": app}},
                     "spec": {"serviceAccountName": "keda-operator", "containers": [{"name": app, "image": "ghcr.io/kedacore/keda:2.19.0"}]}}},
        }))
    };
    vec![
        helm(json!({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                     "service": {"name": "keda-operator-metrics-apiserver", "namespace": namespace}},
        })),
        helm(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "keda-admission"},
            "webhooks": [{"name": "vscaledobject.kb.io", "admissionReviewVersions": ["v1"], "sideEffects": "None", "failurePolicy": "Ignore",
                          "clientConfig": {"service": {"name": "keda-admission-webhooks", "namespace": namespace, "path": "/validate-keda-sh-v1alpha1-scaledobject"}},
                          "rules": [{"apiGroups": ["keda.sh"], "apiVersions": ["v1alpha1"], "operations": ["CREATE", "UPDATE"], "resources": ["scaledobjects"]}]}],
        })),
        helm(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "keda-auth-reader", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "keda-operator", "namespace": namespace}],
        })),
        deployment("keda-operator", "keda-operator"),
        deployment("keda-operator-metrics-apiserver", "keda-operator-metrics-apiserver"),
        deployment("keda-admission-webhooks", "keda-admission-webhooks"),
    ]
}

fn kind_of(object: &Value) -> Kind {
    let (api_version, kind) = (object["apiVersion"].as_str().unwrap(), object["kind"].as_str().unwrap());
    Kind::of(api_version, kind).unwrap()
}

fn key(object: &Value) -> (Kind, String, String) {
    (
        kind_of(object),
        object["metadata"]["namespace"].as_str().unwrap_or_default().to_string(),
        object["metadata"]["name"].as_str().unwrap().to_string(),
    )
}

/// What an owner wrote to each object (not what controllers report in status), to prove nothing changed.
async fn versions(env: &Env, objects: &[Value]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for object in objects {
        let (kind, namespace, name) = key(object);
        let live = env.cluster.get(&kind, &namespace, &name).await;
        let written = live.map(|mut l| {
            let meta = &l["metadata"];
            let managers: Vec<Value> = meta["managedFields"].as_array().into_iter().flatten().map(|m| m["manager"].clone()).collect();
            let summary = json!({"generation": meta["generation"], "labels": meta["labels"], "annotations": meta["annotations"],
                                 "managers": managers, "uid": meta["uid"]});
            if let Some(o) = l.as_object_mut() {
                o.remove("status");
                o.remove("metadata");
                o.insert("summary".into(), summary);
            }
            l
        });
        out.insert(format!("{} {namespace}/{name}", kind.kind), written.unwrap_or(Value::Null));
    }
    out
}

#[tokio::test]
async fn a_helm_installed_keda_is_left_untouched_reported_and_kept_at_uninstall() {
    let env = env().await;
    let helm_ns = env.cluster.namespace("keda-helm").await;
    let helm = helm_install(&helm_ns);
    for object in &helm {
        env.cluster.try_create_as("helm", object).await.unwrap();
    }
    let before = versions(&env, &helm).await;
    let mark = env.cluster.audit().mark();
    let operator = env.start(Options::default()).await;
    env.create_keda(json!({})).await;
    eventually(WAIT, "Ready=False, ForeignInstallation naming the Helm release", async || {
        env.condition("Ready").await.is_some_and(|c| {
            c.0 == "False"
                && c.1 == "ForeignInstallation"
                && c.2.contains(&format!("Helm release 'keda' in namespace '{helm_ns}'"))
        })
    })
    .await;
    let (_, _, message) = env.condition("Ready").await.unwrap();
    assert!(
        message.contains("APIService v1beta1.external.metrics.k8s.io") && message.contains("docs/migration.md"),
        "{message}"
    );
    eventually(WAIT, "a Warning event", async || {
        env.event_reasons("keda").await.contains(&"ForeignInstallation".to_string())
    })
    .await;
    // Nothing was written: not the Helm release's objects, and none of ours (no Deployment started).
    env.settle(&operator).await;
    let applies: Vec<String> =
        env.requests_since(&operator, mark).into_iter().filter(is_operator_apply).map(|e| e.describe()).collect();
    assert!(applies.is_empty(), "applied despite the Helm release: {applies:?}");
    assert!(env.cluster.list(&kinds::DEPLOYMENT, &env.ns, "").await.is_empty());
    assert_eq!(versions(&env, &helm).await, before);

    // Uninstalling leaves exactly the foreign objects that were there.
    env.cluster.delete(&kinds::KEDACONTROLLER, &env.ns, "keda").await;
    eventually(WAIT, "the KedaController is gone", async || env.get(&kinds::KEDACONTROLLER, "keda").await.is_none())
        .await;
    assert_eq!(versions(&env, &helm).await, before);
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_helm_installed_keda_is_adopted_on_request_without_a_gap_in_the_metrics_api() {
    let env = env().await;
    let helm_ns = env.cluster.namespace("keda-helm").await;
    for object in helm_install(&helm_ns) {
        env.cluster.try_create_as("helm", &object).await.unwrap();
    }
    let api_uid = env.cluster.get(&kinds::API_SERVICE, "", APISERVICE).await.unwrap()["metadata"]["uid"].clone();
    let mark = env.cluster.audit().mark();
    let operator = env.start(Options::default()).await;
    let mut keda = kedacontroller(&env.ns, "keda", json!({}));
    keda["metadata"]["annotations"] = json!({"cma.keda.sh/adopt-existing-installation": "true"});
    env.cluster.create(&keda).await;
    // Our KEDA starts while the external metrics API still points at the Helm release's.
    env.wait_installed_workloads().await;
    let api = env.cluster.get(&kinds::API_SERVICE, "", APISERVICE).await.unwrap();
    assert_eq!(api["spec"]["service"]["namespace"], helm_ns.as_str(), "switched before ours served");
    eventually(WAIT, "Progressing says what the switch waits for", async || {
        env.condition("Progressing")
            .await
            .is_some_and(|c| c.2.contains(&format!("from the KEDA in namespace '{helm_ns}'")))
    })
    .await;
    // Our metrics server serves: the API switches, the old Deployments go.
    let _kubelet = env.kubelet();
    eventually(WAIT, "the APIService points at ours", async || {
        env.cluster
            .get(&kinds::API_SERVICE, "", APISERVICE)
            .await
            .is_some_and(|a| a["spec"]["service"]["namespace"] == env.ns.as_str())
    })
    .await;
    eventually(WAIT, "the Helm release's Deployments are gone", async || {
        env.cluster.list(&kinds::DEPLOYMENT, &helm_ns, "").await.is_empty()
    })
    .await;
    let api = env.cluster.get(&kinds::API_SERVICE, "", APISERVICE).await.unwrap();
    assert_eq!(api["metadata"]["uid"], api_uid, "the APIService was recreated");
    assert!(api["metadata"]["annotations"]["meta.helm.sh/release-name"].is_null(), "{api}");
    assert_eq!(api["metadata"]["annotations"]["helm.sh/resource-policy"], "keep", "helm uninstall would delete it");
    assert_eq!(api["metadata"]["labels"]["app.kubernetes.io/managed-by"], "cma-operator");
    let deleted: Vec<String> =
        env.requests_since(&operator, mark).into_iter().filter(|e| e.verb == "delete").map(|e| e.describe()).collect();
    assert!(deleted.iter().all(|d| d.starts_with("delete deployments") && d.contains(&helm_ns)), "{deleted:?}");
    eventually(WAIT, "the adoption record is removed", async || {
        env.keda().await["metadata"]["annotations"]["cma.keda.sh/adopted-from"].is_null()
    })
    .await;
    operator.stop().await.unwrap();
}

/// The pod template revision the Deployment controller gave a Deployment.
fn revision(deployment: &Value) -> i64 {
    deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Creates the Go operator's installation of KEDA 2.20.2 in the test namespace, for `keda` (created first).
pub(crate) async fn go_operator_install(env: &Env) -> Vec<Value> {
    let keda = json!({
        "apiVersion": "keda.sh/v1alpha1", "kind": "KedaController",
        "metadata": {"name": "keda", "namespace": env.ns, "finalizers": ["finalizer.kedacontroller.keda.sh"]},
        "spec": {"watchNamespace": ""},
    });
    let created = env.cluster.try_create_as("manager", &keda).await.unwrap();
    let uid = created["metadata"]["uid"].as_str().unwrap().to_string();
    let path = cma_testkit::cluster::workspace_root().join("tests/fixtures/go-operator-install.yaml");
    let text =
        std::fs::read_to_string(&path).unwrap().replace("NAMESPACE", &env.ns).replace("KEDACONTROLLER_UID", &uid);
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let object = <Value as serde::Deserialize>::deserialize(document).unwrap();
        if object.is_null() {
            continue;
        }
        // The static KEDA ServiceAccount exists already (installed with this operator): the Go operator's
        // marks go onto it, as a takeover finds it.
        if object["kind"] == "ServiceAccount" {
            env.cluster
                .merge_patch_as(
                    "manager",
                    &kinds::SERVICE_ACCOUNT,
                    &env.ns,
                    "keda-operator",
                    &json!({"metadata": object["metadata"]}),
                )
                .await;
        } else {
            env.cluster.try_create_as("manager", &object).await.unwrap();
        }
        objects.push(object);
    }
    objects
}

#[tokio::test]
async fn a_go_operators_install_is_taken_over_without_deleting_what_routes_traffic() {
    let env = env().await;
    let go = go_operator_install(&env).await;
    let _kubelet = env.kubelet();
    let mut generations = BTreeMap::new();
    for name in ["keda-operator", "keda-metrics-apiserver", "keda-admission"] {
        eventually(WAIT, "the Go operator's pods run", async || {
            env.deployment(name).await["status"]["availableReplicas"] == 1
        })
        .await;
        generations.insert(name, revision(&env.deployment(name).await));
    }
    let uids: Vec<Value> = [(&kinds::API_SERVICE, APISERVICE), (&kinds::VALIDATING_WEBHOOK, "keda-admission")]
        .iter()
        .map(async |(kind, name)| env.cluster.get(kind, "", name).await.unwrap()["metadata"]["uid"].clone())
        .collect::<futures::future::JoinAll<_>>()
        .await;
    let mark = env.cluster.audit().mark();
    let operator = env.start(Options::default()).await;
    env.wait_installed().await;
    eventually(WAIT, "taken over and running", async || {
        env.keda().await["status"]["components"]
            .as_array()
            .is_some_and(|c| c.len() == 3 && c.iter().all(|c| c["ready"] == true))
    })
    .await;
    env.settle(&operator).await;
    assert!(env.condition("Degraded").await.is_some_and(|c| c.0 == "False"), "{:?}", env.condition("Degraded").await);

    // What routes traffic was never deleted or recreated.
    let events = env.cluster.audit().since(mark);
    let touched = |e: &&AuditEvent| {
        matches!(
            e.object.resource.as_str(),
            "apiservices" | "validatingwebhookconfigurations" | "customresourcedefinitions"
        ) && matches!(e.verb.as_str(), "delete" | "create")
    };
    let recreated: Vec<String> = events.iter().filter(touched).map(|e| e.describe()).collect();
    assert!(recreated.is_empty(), "{recreated:?}");
    for ((kind, name), uid) in
        [(&kinds::API_SERVICE, APISERVICE), (&kinds::VALIDATING_WEBHOOK, "keda-admission")].iter().zip(&uids)
    {
        assert_eq!(&env.cluster.get(kind, "", name).await.unwrap()["metadata"]["uid"], uid, "{name} was recreated");
    }
    // At most one rollout per Deployment (a rollout is a new pod template revision; a Deployment's generation
    // also counts annotation changes, such as the removal of the Go operator's).
    for (name, before) in &generations {
        let after = revision(&env.deployment(name).await);
        let writes: Vec<String> = events
            .iter()
            .filter(|e| {
                e.object.resource == "deployments"
                    && e.object.name == *name
                    && e.is_write()
                    && e.object.subresource.is_empty()
            })
            .map(|e| format!("{} by {}", e.describe(), e.user_agent))
            .collect();
        assert!(after <= before + 1, "{name}: revision {before} -> {after}: {writes:?}");
        eprintln!("{name}: revision {before} -> {after}");
    }
    // The Go operator's bookkeeping is gone; what it wrote that we do not render is deleted; nothing is doubled.
    for object in &go {
        let (kind, namespace, name) = key(object);
        let live = env.cluster.get(&kind, &namespace, &name).await;
        if let Some(live) = live {
            assert!(
                live["metadata"]["annotations"]["olm-operator.keda.sh/last-applied-configuration"].is_null(),
                "{} {name} keeps the Go operator's annotation",
                kind.kind
            );
        }
    }
    for (kind, name) in
        [(&kinds::CLUSTER_ROLE, "keda-operator"), (&kinds::CLUSTER_ROLE_BINDING, "keda-system-auth-delegator")]
    {
        assert!(env.cluster.get(kind, "", name).await.is_none(), "{} {name} left behind", kind.kind);
    }
    assert!(env.get(&kinds::ROLE, "keda-operator").await.is_none());
    let sa = env.get(&kinds::SERVICE_ACCOUNT, "keda-operator").await.unwrap();
    assert!(sa["metadata"]["ownerReferences"].as_array().is_none_or(|o| o.is_empty()), "{sa}");
    assert_eq!(env.cluster.list(&kinds::DEPLOYMENT, &env.ns, "").await.len(), 3);
    assert!(env.event_reasons("keda").await.contains(&"TakenOver".to_string()));

    // Uninstall leaves nothing of the installation.
    env.cluster.delete(&kinds::KEDACONTROLLER, &env.ns, "keda").await;
    eventually(WAIT, "the KedaController is gone", async || env.get(&kinds::KEDACONTROLLER, "keda").await.is_none())
        .await;
    let left = env.managed_objects().await;
    assert!(left.is_empty(), "{left:?}");
    assert!(env.get(&kinds::SERVICE_ACCOUNT, "keda-operator").await.is_some(), "the static ServiceAccount was deleted");
    operator.stop().await.unwrap();
}
