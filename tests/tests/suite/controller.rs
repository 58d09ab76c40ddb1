//! The controller as a cluster admin sees it, against a real kube-apiserver.

use cma_api::Component;
use std::time::Duration;

use cma_testkit::cluster::{Faults, RequestMatch, kinds};
use cma_tests::*;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

/// Objects of a default installation on plain Kubernetes (with the operator's own NetworkPolicy and the CA
/// ConfigMap of its `/metrics` certificate).
const DEFAULT_OBJECTS: usize = 17;

#[tokio::test]
async fn creating_the_kedacontroller_installs_every_object_with_server_side_apply() {
    let env = env().await;
    let mark = env.cluster.audit().mark();
    let operator = env.installed(json!({})).await;
    let objects = env.managed_objects().await;
    assert_eq!(objects.len(), DEFAULT_OBJECTS, "{objects:#?}");
    assert!(objects.contains(&"RoleBinding kube-system/keda-auth-reader".to_string()));
    assert!(objects.contains(&"APIService v1beta1.external.metrics.k8s.io".to_string()));

    // Every write of a managed object is a forced server-side apply by field manager cma-operator.
    let writes: Vec<_> =
        env.writes_since(&operator, mark).into_iter().filter(|e| e.object.resource != "kedacontrollers").collect();
    assert!(!writes.is_empty());
    for w in &writes {
        assert_eq!(w.verb, "patch", "{}", w.describe());
        assert!(w.uri.contains("fieldManager=cma-operator") && w.uri.contains("force=true"), "{}", w.uri);
    }
    assert_eq!(env.keda().await["metadata"]["finalizers"], json!(["finalizer.kedacontroller.keda.sh"]));
    operator.stop().await.unwrap();
}

/// The one order that matters (crate::kinds): the API server sends traffic for the external metrics API and
/// the admission webhooks to KEDA's Services, so the APIService and the webhook configuration are written only
/// after every Service has been applied. Everything else goes out concurrently.
#[tokio::test]
async fn api_registrations_are_applied_only_after_the_services() {
    let env = env().await;
    let mark = env.cluster.audit().mark();
    let operator = env.installed(json!({})).await;
    let writes = env.writes_since(&operator, mark);
    let of = |resource: &str| writes.iter().filter(|w| w.object.resource == resource).collect::<Vec<_>>();
    let services = of("services");
    assert_eq!(services.len(), Component::ALL.len(), "one apply per Service");
    let last_service_answered = services.iter().map(|w| w.answered).max().unwrap();
    for resource in ["apiservices", "validatingwebhookconfigurations"] {
        let registrations = of(resource);
        assert!(!registrations.is_empty(), "no {resource} written");
        for w in registrations {
            assert!(
                w.received >= last_service_answered,
                "{} was sent at {} before the last Service was applied at {last_service_answered}",
                w.describe(),
                w.received
            );
        }
    }
    // The rest did not wait for the Services: some other write was received before the last one was answered.
    let first_other = writes
        .iter()
        .filter(|w| {
            !["services", "apiservices", "validatingwebhookconfigurations", "kedacontrollers"]
                .contains(&w.object.resource.as_str())
        })
        .map(|w| w.received)
        .min()
        .unwrap();
    assert!(first_other < last_service_answered, "the independent objects waited for the Services");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn status_follows_the_pods_and_the_metrics_apiservice() {
    let env = env().await;
    let operator = env.installed(json!({})).await;
    let ready = env.condition("Ready").await.unwrap();
    assert_eq!(ready.0, "False", "{ready:?}");
    assert_eq!(env.condition("Progressing").await.unwrap().0, "True");

    // Pods run and become ready; the APIService cannot become available (no pod network here), and the
    // status says so rather than claiming readiness.
    let _kubelet = env.kubelet();
    eventually(WAIT, "every component ready", async || {
        let kc = env.keda().await;
        kc["status"]["components"].as_array().is_some_and(|c| c.len() == 3 && c.iter().all(|c| c["ready"] == true))
    })
    .await;
    let kc = env.keda().await;
    assert_eq!(kc["status"]["version"], "2.20.2");
    assert_eq!(kc["status"]["observedGeneration"], kc["metadata"]["generation"]);
    let (status, _, message) = env.condition("Ready").await.unwrap();
    assert_eq!(status, "False");
    assert!(message.contains("v1beta1.external.metrics.k8s.io"), "{message}");
    let reasons = env.event_reasons("keda").await;
    assert!(reasons.contains(&"Installed".to_string()), "{reasons:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn steady_state_makes_no_requests() {
    let env = env().await;
    let operator = env.installed(json!({})).await;
    let _kubelet = env.kubelet();
    eventually(WAIT, "every component ready", async || {
        env.keda().await["status"]["components"]
            .as_array()
            .is_some_and(|c| c.len() == 3 && c.iter().all(|c| c["ready"] == true))
    })
    .await;
    env.settle_for(&operator, Duration::from_secs(1)).await;
    // A reconcile in steady state (caused by a change that needs nothing) asks the API server nothing:
    // everything it needs comes from the watch caches, and nothing is written.
    let mark = env.cluster.audit().mark();
    let reconciled = env.nudge().await;
    assert_eq!(
        (reconciled.result.as_str(), reconciled.applied, reconciled.pruned),
        ("success", 0, 0),
        "{reconciled:?}"
    );
    let requests: Vec<_> =
        env.requests_since(&operator, mark).into_iter().filter(|e| e.verb != "watch").map(|e| e.describe()).collect();
    assert!(requests.is_empty(), "requests in steady state: {requests:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn objects_no_longer_rendered_are_pruned() {
    let env = env().await;
    let spec = json!({
        "metricsServer": {"replicas": 2, "auditConfig": {"policy": {"rules": [{"level": "Metadata"}]}}},
    });
    let operator = env.installed(spec).await;
    assert!(env.get(&kinds::PDB, "keda-metrics-apiserver").await.is_some());
    assert!(env.get(&kinds::CONFIG_MAP, "keda-metrics-server-audit-policy").await.is_some());

    env.update_spec(json!({"networkPolicy": {"enabled": false}})).await;
    eventually(WAIT, "the PDB, the audit policy and the NetworkPolicies are gone", async || {
        env.get(&kinds::PDB, "keda-metrics-apiserver").await.is_none()
            && env.get(&kinds::CONFIG_MAP, "keda-metrics-server-audit-policy").await.is_none()
            && env.cluster.list(&kinds::NETWORK_POLICY, &env.ns, "").await.is_empty()
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn deleting_any_managed_object_is_reverted() {
    let env = env().await;
    let operator = env
        .installed(json!({"metricsServer": {"replicas": 2, "auditConfig": {"policy": {"rules": [{"level": "None"}]}}}}))
        .await;
    let ns = env.ns.as_str();
    let victims = [
        (kinds::DEPLOYMENT, ns, "keda-metrics-apiserver"),
        (kinds::SERVICE, ns, "keda-operator"),
        (kinds::CONFIG_MAP, ns, "keda-metrics-server-audit-policy"),
        (kinds::ROLE_BINDING, "kube-system", "keda-auth-reader"),
        (kinds::NETWORK_POLICY, ns, cma_operator::render::network_policy::DEFAULT_DENY_POLICY),
        (kinds::PDB, ns, "keda-metrics-apiserver"),
        (kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io"),
        (kinds::VALIDATING_WEBHOOK, "", "keda-admission"),
    ];
    for (kind, namespace, name) in victims {
        env.cluster.delete(&kind, namespace, name).await;
        let started = tokio::time::Instant::now();
        eventually(WAIT, &format!("{} {namespace}/{name} is restored", kind.kind), async || {
            env.cluster.get(&kind, namespace, name).await.is_some_and(|o| o["metadata"]["deletionTimestamp"].is_null())
        })
        .await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{} {name} restored only after {took:?}", kind.kind);
    }
    let events = env.events_about("keda").await;
    assert!(events.iter().any(|(reason, _)| reason == "DriftReverted"), "{events:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn editing_a_managed_object_is_reverted_and_reported_as_drift() {
    let env = env().await;
    let operator = env.installed(json!({})).await;
    env.cluster
        .merge_patch_as(
            "kubectl-edit",
            &kinds::DEPLOYMENT,
            &env.ns,
            "keda-operator",
            &json!({"spec": {"replicas": 5, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}}}}),
        )
        .await;
    eventually(WAIT, "replicas and node selector are restored", async || {
        let d = env.deployment("keda-operator").await;
        d["spec"]["replicas"] == 1 && d["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"] == "linux"
    })
    .await;
    env.cluster
        .merge_patch_as(
            "kubectl-edit",
            &kinds::API_SERVICE,
            "",
            "v1beta1.external.metrics.k8s.io",
            &json!({"spec": {"versionPriority": 5}}),
        )
        .await;
    eventually(WAIT, "the APIService is restored", async || {
        env.cluster
            .get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io")
            .await
            .is_some_and(|a| a["spec"]["versionPriority"] == 100)
    })
    .await;
    // The event follows the write it reports.
    eventually(WAIT, "a DriftReverted event per correction", async || {
        env.event_reasons("keda").await.iter().filter(|r| *r == "DriftReverted").count() >= 2
    })
    .await;
    let events = env.events_about("keda").await;
    let drift: Vec<_> = events.iter().filter(|(reason, _)| reason == "DriftReverted").collect();
    assert_eq!(drift.len(), 2, "one DriftReverted event per correction: {events:?}");
    assert!(drift[0].1.contains("Deployment") && drift[0].1.contains("kubectl-edit"), "{drift:?}");
    assert!(drift[1].1.contains("APIService") && drift[1].1.contains("kubectl-edit"), "{drift:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn an_injected_ca_bundle_is_not_fought_over() {
    let env = env().await;
    let operator = env.installed(json!({})).await;
    let mark = env.cluster.audit().mark();
    env.cluster
        .merge_patch_as(
            "keda-operator-rotation",
            &kinds::API_SERVICE,
            "",
            "v1beta1.external.metrics.k8s.io",
            &json!({"spec": {"caBundle": "Q0FCVU5ETEU="}}),
        )
        .await;
    let mut vwc = env.cluster.get(&kinds::VALIDATING_WEBHOOK, "", "keda-admission").await.unwrap();
    for webhook in vwc["webhooks"].as_array_mut().unwrap() {
        webhook["clientConfig"]["caBundle"] = json!("Q0FCVU5ETEU=");
    }
    env.cluster
        .merge_patch_as(
            "keda-operator-rotation",
            &kinds::VALIDATING_WEBHOOK,
            "",
            "keda-admission",
            &json!({"webhooks": vwc["webhooks"]}),
        )
        .await;
    env.settle_for(&operator, Duration::from_secs(2)).await;
    let ours: Vec<_> = env.writes_since(&operator, mark).iter().map(|e| e.describe()).collect();
    assert!(ours.is_empty(), "the operator wrote after the injection: {ours:?}");
    let api = env.cluster.get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io").await.unwrap();
    assert_eq!(api["spec"]["caBundle"], "Q0FCVU5ETEU=");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn deleting_the_kedacontroller_removes_everything_then_releases_it() {
    let env = env().await;
    let operator = env.installed(json!({"metricsServer": {"replicas": 2}})).await;
    assert_eq!(env.managed_objects().await.len(), DEFAULT_OBJECTS + 1);
    let mark = env.cluster.audit().mark();
    env.cluster.delete(&kinds::KEDACONTROLLER, &env.ns, "keda").await;
    eventually(WAIT, "the KedaController is gone", async || env.get(&kinds::KEDACONTROLLER, "keda").await.is_none())
        .await;
    let left = env.managed_objects().await;
    assert!(left.is_empty(), "left behind: {left:#?}");
    env.settle(&operator).await;
    // The one failure allowed: a finalizer removal racing the deletion it allowed (a second reconcile from a
    // cache that has not seen the deletion yet) finds the KedaController gone, which is what it wanted.
    let refused: Vec<_> = env
        .requests_since(&operator, mark)
        .into_iter()
        .filter(|e| e.code >= 400 && !(e.code == 404 && e.object.resource == "kedacontrollers"))
        .map(|e| e.describe())
        .collect();
    assert!(refused.is_empty(), "failed requests during uninstall: {refused:?}");
    let uninstalled = env.event_reasons("keda").await.iter().filter(|r| *r == "Uninstalled").count();
    assert_eq!(uninstalled, 1);
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_kedacontroller_with_another_name_is_refused_and_one_elsewhere_is_left_alone() {
    let env = env().await;
    let elsewhere = env.cluster.namespace("elsewhere").await;
    let operator = env.start(Options::default()).await;
    // Another name: the API server refuses it (the CRD's rule), with the reason.
    let error = env.cluster.try_create(&kedacontroller(&env.ns, "keda-two", json!({}))).await.unwrap_err();
    assert!(error.to_string().contains("must be named 'keda'"), "{error}");
    // Another namespace: not the operator's business (it watches its own namespace only).
    let mark = env.cluster.audit().mark();
    env.create_kedacontroller(&elsewhere, "keda", json!({})).await;
    env.create_keda(json!({})).await;
    env.wait_installed().await;
    env.settle(&operator).await;
    let touched: Vec<_> = env
        .requests_since(&operator, mark)
        .into_iter()
        .filter(|e| e.object.namespace == elsewhere)
        .map(|e| e.describe())
        .collect();
    assert!(touched.is_empty(), "{touched:?}");
    let other = env.cluster.get(&kinds::KEDACONTROLLER, &elsewhere, "keda").await.unwrap();
    assert!(other["status"].is_null() && other["metadata"]["finalizers"].is_null(), "{other}");
    assert!(env.managed_objects_of(&elsewhere).await.is_empty());
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn an_invalid_spec_is_degraded_and_nothing_is_applied() {
    let env = env().await;
    let mark = env.cluster.audit().mark();
    let operator = env.start(Options::default()).await;
    // The one check the API server cannot make (it passes the CRD's schema and rules): the operator's own.
    let invalid = json!({"watchNamespace": "team-a,team-a"});
    env.create_keda(invalid).await;
    eventually(WAIT, "Degraded=True", async || env.condition("Degraded").await.is_some_and(|c| c.0 == "True")).await;
    let (_, reason, message) = env.condition("Degraded").await.unwrap();
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("spec.watchNamespace: namespace \"team-a\" is listed twice"), "{message}");
    let applied: Vec<_> =
        env.requests_since(&operator, mark).into_iter().filter(is_operator_apply).map(|e| e.describe()).collect();
    assert!(applied.is_empty(), "applied for an invalid spec: {applied:?}");
    assert!(env.managed_objects().await.is_empty());
    eventually(WAIT, "a Warning event", async || env.event_reasons("keda").await.contains(&"InvalidSpec".to_string()))
        .await;

    env.update_spec(json!({"operator": {"logLevel": "debug"}})).await;
    eventually(WAIT, "the fixed spec installs", async || env.managed_objects().await.len() == DEFAULT_OBJECTS).await;
    eventually(WAIT, "Degraded=False", async || env.condition("Degraded").await.is_some_and(|c| c.0 == "False")).await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn api_errors_are_retried_and_reported() {
    let env = env().await;
    let faults = Faults::new();
    faults.fail_next(
        3,
        RequestMatch::default().method(http::Method::PATCH).path("/deployments/").query("fieldManager=cma-operator"),
        500,
        "InternalError",
        "etcdserver: request timed out",
    );
    let operator = env.start(Options { faults: Some(faults.clone()), ..Options::default() }).await;
    env.create_keda(json!({})).await;
    eventually(WAIT, "Degraded=True naming the Deployment", async || {
        env.condition("Degraded").await.is_some_and(|c| c.0 == "True" && c.2.contains("Deployment"))
    })
    .await;
    eventually(WAIT, "installed after the retries", async || {
        env.cluster.get(&kinds::VALIDATING_WEBHOOK, "", "keda-admission").await.is_some()
            && env.condition("Degraded").await.is_some_and(|c| c.0 == "False")
    })
    .await;
    assert_eq!(faults.hits(), 3);
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn an_operator_restarted_mid_install_finishes_it_without_a_second_rollout() {
    let env = env().await;
    // The first operator stops half-way: the API registrations keep failing, the rest is applied.
    let faults = Faults::new();
    faults.fail_next(
        1000,
        RequestMatch::default().method(http::Method::PATCH).path("/apiservices/"),
        503,
        "ServiceUnavailable",
        "the server is shutting down",
    );
    let first = env.start(Options { identity: "first".into(), faults: Some(faults), ..Options::default() }).await;
    env.create_keda(json!({})).await;
    env.wait_installed_workloads().await;
    first.stop().await.unwrap();
    assert!(env.cluster.get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io").await.is_none());

    let second = env.start(Options { identity: "second".into(), ..Options::default() }).await;
    env.wait_installed().await;
    env.settle(&second).await;
    assert_eq!(env.managed_objects().await.len(), DEFAULT_OBJECTS);
    for name in Component::ALL.map(Component::deployment_name) {
        assert_eq!(env.deployment(name).await["metadata"]["generation"], 1, "{name} was written twice");
    }
    env.assert_no_drift_reported("keda", "finishing an interrupted install is not drift").await;
    assert_eq!(env.keda().await["metadata"]["finalizers"], json!(["finalizer.kedacontroller.keda.sh"]));
    second.stop().await.unwrap();
}

#[tokio::test]
async fn an_immutable_field_change_replaces_the_object() {
    let env = env().await;
    // Left by an older installation: the same Deployment with another selector, which cannot change in place.
    env.cluster
        .create(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "keda-operator", "namespace": env.ns, "labels": {"app.kubernetes.io/managed-by": "cma-operator"}},
            "spec": {"selector": {"matchLabels": {"app": "keda-operator", "release": "old"}},
                     "template": {"metadata": {"labels": {"app": "keda-operator", "release": "old"}},
                                  "spec": {"containers": [{"name": "keda-operator", "image": "ghcr.io/kedacore/keda:2.19.0"}]}}},
        }))
        .await;
    let before = env.deployment("keda-operator").await["metadata"]["uid"].clone();
    let operator = env.installed(json!({})).await;
    let after = env.deployment("keda-operator").await;
    assert_ne!(after["metadata"]["uid"], before, "the Deployment was not replaced");
    assert_eq!(after["spec"]["selector"]["matchLabels"], json!({"app": "keda-operator"}));
    assert!(env.condition("Degraded").await.is_some_and(|c| c.0 == "False"));
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn watches_survive_compaction_and_an_api_server_restart() {
    let env = env().await;
    let operator = env.installed(json!({})).await;
    env.cluster.compact_etcd().await;
    env.cluster.restart_api_server(Duration::from_secs(1)).await;
    // Deleted at once, while the operator's watches still back off: the relists that follow carry no event
    // for them (they are just absent), and a completed relist must still lead to a reconcile.
    env.cluster.delete(&kinds::SERVICE, &env.ns, "keda-metrics-apiserver").await;
    env.cluster.delete(&kinds::ROLE_BINDING, "kube-system", "keda-auth-reader").await;
    eventually(
        WAIT,
        "the Service and the kube-system RoleBinding are restored after the watches restarted",
        async || {
            env.get(&kinds::SERVICE, "keda-metrics-apiserver").await.is_some()
                && env.cluster.get(&kinds::ROLE_BINDING, "kube-system", "keda-auth-reader").await.is_some()
        },
    )
    .await;
    // And a deletion once the watches run again.
    env.cluster.delete(&kinds::ROLE_BINDING, "kube-system", "keda-auth-reader").await;
    eventually(WAIT, "the kube-system RoleBinding is restored", async || {
        env.cluster.get(&kinds::ROLE_BINDING, "kube-system", "keda-auth-reader").await.is_some()
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn another_external_metrics_provider_stops_the_install_and_is_named() {
    let env = env().await;
    env.cluster
        .try_create_as("kubectl-client-side-apply", &json!({
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                     "service": {"name": "prometheus-adapter", "namespace": "openshift-monitoring"}},
        }))
        .await
        .unwrap();
    let mark = env.cluster.audit().mark();
    let operator = env.start(Options::default()).await;
    env.create_keda(json!({})).await;
    eventually(WAIT, "Ready=False naming the current provider", async || {
        env.condition("Ready").await.is_some_and(|c| {
            c.0 == "False" && c.1 == "ForeignInstallation" && c.2.contains("namespace 'openshift-monitoring'")
        })
    })
    .await;
    env.settle(&operator).await;
    // Nothing is written, so no KEDA pod competes for the API (the HPAs keep their metrics).
    let applied: Vec<_> =
        env.requests_since(&operator, mark).into_iter().filter(is_operator_apply).map(|e| e.describe()).collect();
    assert!(applied.is_empty(), "{applied:?}");
    let api = env.cluster.get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io").await.unwrap();
    assert_eq!(api["spec"]["service"]["name"], "prometheus-adapter", "the foreign APIService was changed");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_installation_does_not_take_over_the_first() {
    let env = env().await;
    let first = env.installed(json!({})).await;
    let other = env.cluster.namespace("keda-two").await;
    let mark = env.cluster.audit().mark();
    let second =
        env.start(Options { namespace: Some(other.clone()), identity: "second".into(), ..Options::default() }).await;
    env.create_kedacontroller(&other, "keda", json!({})).await;
    eventually(WAIT, "the second is refused", async || {
        env.condition_in(&other, "keda", "Degraded")
            .await
            .is_some_and(|c| c.1 == "AnotherInstallation" && c.2.contains(&format!("'{}'", env.ns)))
    })
    .await;
    let applied: Vec<_> =
        env.requests_since(&second, mark).into_iter().filter(is_operator_apply).map(|e| e.describe()).collect();
    assert!(applied.is_empty(), "the second installation applied: {applied:?}");
    let api = env.cluster.get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io").await.unwrap();
    assert_eq!(api["spec"]["service"]["namespace"], env.ns.as_str());
    let first_kc = env.keda().await;
    assert_eq!(
        first_kc["status"]["phase"], "Installation Succeeded",
        "the second installation rewrote the first's status"
    );
    assert_eq!(first_kc["metadata"]["finalizers"], json!(["finalizer.kedacontroller.keda.sh"]));
    second.stop().await.unwrap();
    first.stop().await.unwrap();
}

#[tokio::test]
async fn only_the_leader_writes_and_a_standby_takes_over() {
    let env = env().await;
    let mark = env.cluster.audit().mark();
    let leader = env.start(Options { identity: "a".into(), leader_elect: true, ..Options::default() }).await;
    eventually(WAIT, "a holds the Lease", async || {
        env.get(&kinds::LEASE, "cma-operator-leader").await.is_some_and(|l| l["spec"]["holderIdentity"] == "a")
    })
    .await;
    let standby = env.start(Options { identity: "b".into(), leader_elect: true, ..Options::default() }).await;
    env.create_keda(json!({})).await;
    eventually(WAIT, "installed", async || env.managed_objects().await.len() == DEFAULT_OBJECTS).await;
    env.settle(&leader).await;
    let standby_writes: Vec<_> = env
        .requests_since(&standby, mark)
        .into_iter()
        .filter(|e| e.is_write() && e.object.resource != "leases")
        .map(|e| e.describe())
        .collect();
    assert!(standby_writes.is_empty(), "the standby wrote: {standby_writes:?}");

    leader.stop().await.unwrap();
    eventually(WAIT, "b holds the Lease", async || {
        env.get(&kinds::LEASE, "cma-operator-leader").await.is_some_and(|l| l["spec"]["holderIdentity"] == "b")
    })
    .await;
    env.cluster.delete(&kinds::DEPLOYMENT, &env.ns, "keda-operator").await;
    eventually(WAIT, "the new leader restores the Deployment", async || {
        env.get(&kinds::DEPLOYMENT, "keda-operator").await.is_some_and(|d| d["metadata"]["deletionTimestamp"].is_null())
    })
    .await;
    assert!(env.requests_since(&standby, mark).iter().any(is_operator_apply));
    standby.stop().await.unwrap();
}

#[tokio::test]
async fn create_default_kedacontroller_creates_keda_once() {
    let env = env().await;
    let operator = env.start(Options { create_default: true, ..Options::default() }).await;
    eventually(WAIT, "keda exists and is installed", async || {
        env.get(&kinds::KEDACONTROLLER, "keda").await.is_some() && env.managed_objects().await.len() == DEFAULT_OBJECTS
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_and_probes_are_served() {
    let env = env().await;
    let operator = env.installed(json!({})).await;
    // A scraper whose ServiceAccount may `get /metrics`, trusting the CA the operator publishes.
    let scraper = scraper_token(&env).await;
    let ca = env.get(&kinds::CONFIG_MAP, "cma-operator-metrics-ca").await.unwrap();
    let ca = ca["data"]["ca.crt"].as_str().unwrap().to_string();
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(ca.as_bytes()).unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let auth = format!("Authorization: Bearer {scraper}\r\n");
    let metrics = cma_testkit::tls::https_get(operator.metrics_addr, &ca, rustls::DEFAULT_VERSIONS, "/metrics", &auth)
        .await
        .unwrap();
    for expected in [
        "keda_controller_ready 0",
        "keda_controller_reconcile_total{result=\"success\"}",
        &format!("keda_controller_managed_objects {DEFAULT_OBJECTS}"),
        "keda_controller_info{",
    ] {
        assert!(metrics.contains(expected), "missing {expected:?} in\n{metrics}");
    }
    assert!(http_get(operator.probe_addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(http_get(operator.probe_addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    // Never without TLS and the access check: not on the probe port either.
    assert!(http_get(operator.probe_addr, "/metrics").await.starts_with("HTTP/1.1 404"));
    operator.stop().await.unwrap();
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// A token of a ServiceAccount bound to a ClusterRole that may `get` the non-resource URL `/metrics`.
async fn scraper_token(env: &Env) -> String {
    let role = format!("metrics-reader-{}", env.ns);
    env.cluster
        .create(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "scraper", "namespace": env.ns}}))
        .await;
    env.cluster
        .create(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        }))
        .await;
    env.cluster
        .create(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": env.ns}],
        }))
        .await;
    let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(env.cluster.client(), &env.ns);
    let request = k8s_openapi::api::authentication::v1::TokenRequest::default();
    let token: k8s_openapi::api::authentication::v1::TokenRequest =
        api.create_subresource("token", "scraper", &kube::api::PostParams::default(), &request).await.unwrap();
    token.status.unwrap().token
}

/// What a KedaController field can change: the three Deployments' specs, the ServiceAccount's metadata and
/// the set of objects.
async fn snapshot(env: &Env) -> (Vec<Value>, Value, Vec<String>) {
    let mut deployments = Vec::new();
    for name in Component::ALL.map(Component::deployment_name) {
        deployments.push(env.deployment(name).await["spec"].clone());
    }
    let sa = env.get(&kinds::SERVICE_ACCOUNT, "keda-operator").await.unwrap_or_default();
    let sa = json!({"labels": sa["metadata"]["labels"], "annotations": sa["metadata"]["annotations"]});
    (deployments, sa, env.managed_objects().await)
}

#[tokio::test]
async fn removing_a_field_restores_exactly_what_an_empty_kedacontroller_renders() {
    let env = env().await;
    let operator = env.installed(json!({})).await;
    let pristine = snapshot(&env).await;
    // One of each shape of field: map entries, lists, scalars, structs, the audit config, CA bundles,
    // NetworkPolicy and replica toggles.
    let changes = [
        json!({"operator": {"nodeSelector": {"zone": "a"}}}),
        json!({"operator": {"deploymentLabels": {"team": "x"}, "podAnnotations": {"note": "y"}}}),
        json!({"operator": {"tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}]}}),
        json!({"operator": {"args": ["--kube-api-qps=50"], "env": [{"name": "KEDA_HTTP_DEFAULT_TIMEOUT", "value": "5000"}]}}),
        json!({"operator": {"logLevel": "debug", "priorityClassName": "system-cluster-critical", "replicas": 2}}),
        json!({"metricsServer": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "role", "operator": "In", "values": ["infra"]}]}]}}}}}),
        json!({"admissionWebhooks": {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}}}}),
        json!({"metricsServer": {"auditConfig": {"policy": {"rules": [{"level": "Metadata"}]}, "logFormat": "legacy"}}}),
        json!({"operator": {"volumes": [{"name": "extra", "emptyDir": {}}], "volumeMounts": [{"name": "extra", "mountPath": "/extra"}]}}),
        json!({"networkPolicy": {"enabled": false}}),
        json!({"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/keda"}, "labels": {"azure.workload.identity/use": "true"}}}),
    ];
    for change in changes {
        env.update_spec(change.clone()).await;
        eventually(WAIT, &format!("{change} takes effect"), async || snapshot(&env).await != pristine).await;
        env.update_spec(json!({})).await;
        eventually(WAIT, &format!("removing {change} restores the defaults"), async || {
            snapshot(&env).await == pristine
        })
        .await;
    }
    let deployment = env.deployment("keda-operator").await;
    assert_eq!(deployment["spec"]["template"]["spec"]["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    operator.stop().await.unwrap();
}
