//! The controller as a cluster admin sees it, against the in-process fake API server.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use cma_testkit::{FakeApiServer, Matcher, Verb};
use cma_tests::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

/// Objects of a default installation on plain Kubernetes.
const DEFAULT_OBJECTS: usize = 23;

async fn installed(fake: &FakeApiServer, spec: Value) -> Operator {
    logging();
    let operator = start(fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda", spec)).unwrap();
    eventually(WAIT, "the installation is applied", || {
        fake.get(&gvr::webhooks(), "", "keda-admission").is_some()
            && fake.get(&gvr::deployments(), NS, "keda-admission").is_some()
    })
    .await;
    settle(fake, Duration::from_millis(300), WAIT).await;
    operator
}

fn deployment(fake: &FakeApiServer, name: &str) -> Value {
    fake.get(&gvr::deployments(), NS, name).unwrap_or_else(|| panic!("Deployment {name} missing"))
}

fn container_args(fake: &FakeApiServer, name: &str) -> Vec<String> {
    deployment(fake, name)["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

async fn update_spec(fake: &FakeApiServer, spec: Value) {
    let mut kc = fake.get(&gvr::kedacontrollers(), NS, "keda").unwrap();
    kc["spec"] = spec;
    kc["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    fake.insert(&kc).unwrap();
}

#[tokio::test]
async fn creating_the_kedacontroller_installs_every_object_with_server_side_apply() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    let objects = managed_objects(&fake);
    assert_eq!(objects.len(), DEFAULT_OBJECTS, "{objects:#?}");
    assert!(objects.contains(&"RoleBinding kube-system/keda-auth-reader".to_string()));
    assert!(objects.contains(&"APIService v1beta1.external.metrics.k8s.io".to_string()));

    let applies: Vec<_> = fake.requests().into_iter().filter(|r| r.verb == Verb::Apply).collect();
    assert!(!applies.is_empty());
    for r in &applies {
        assert_eq!(r.field_manager.as_deref(), Some("cma-operator"), "{} {}", r.method, r.path);
        assert_eq!(r.query("force"), Some("true"), "{} {}", r.method, r.path);
    }
    let kc = fake.get(&gvr::kedacontrollers(), NS, "keda").unwrap();
    assert_eq!(kc["metadata"]["finalizers"], json!(["finalizer.kedacontroller.keda.sh"]));
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn status_is_ready_only_when_the_deployments_and_the_apiservice_are_available() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    let ready = condition(&fake, NS, "keda", "Ready").unwrap();
    assert_eq!(ready.0, "False", "{ready:?}");
    assert_eq!(condition(&fake, NS, "keda", "Progressing").unwrap().0, "True");

    cluster_reports_ready(&fake, NS);
    eventually(WAIT, "Ready=True", || condition(&fake, NS, "keda", "Ready").is_some_and(|c| c.0 == "True")).await;
    let kc = fake.get(&gvr::kedacontrollers(), NS, "keda").unwrap();
    assert_eq!(kc["status"]["phase"], "Installation Succeeded");
    assert_eq!(kc["status"]["version"], "2.20.2");
    assert_eq!(kc["status"]["observedGeneration"], kc["metadata"]["generation"]);
    assert_eq!(condition(&fake, NS, "keda", "Progressing").unwrap().0, "False");
    assert_eq!(condition(&fake, NS, "keda", "Degraded").unwrap().0, "False");
    let components = kc["status"]["components"].as_array().unwrap();
    assert_eq!(components.len(), 3);
    assert!(components.iter().all(|c| c["ready"] == true), "{components:?}");
    let reasons = event_reasons(&fake, "keda");
    assert!(reasons.contains(&"Installed".to_string()), "{reasons:?}");
    assert!(reasons.contains(&"Ready".to_string()), "{reasons:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn steady_state_makes_no_write_requests() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    cluster_reports_ready(&fake, NS);
    eventually(WAIT, "Ready=True", || condition(&fake, NS, "keda", "Ready").is_some_and(|c| c.0 == "True")).await;
    settle(&fake, Duration::from_millis(300), WAIT).await;
    let mark = fake.mark();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let requests: Vec<_> = fake.requests_since(mark).into_iter().filter(|r| r.verb != Verb::Watch).collect();
    assert!(
        requests.is_empty(),
        "requests in steady state: {:?}",
        requests.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>()
    );
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn changing_a_field_updates_the_deployment_and_removing_it_restores_the_default() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    assert!(container_args(&fake, "keda-operator").contains(&"--zap-log-level=info".to_string()));

    update_spec(&fake, json!({"operator": {"logLevel": "debug", "nodeSelector": {"role": "infra"}}})).await;
    eventually(WAIT, "the new log level is applied", || {
        container_args(&fake, "keda-operator").contains(&"--zap-log-level=debug".to_string())
    })
    .await;
    let selector = deployment(&fake, "keda-operator")["spec"]["template"]["spec"]["nodeSelector"].clone();
    assert_eq!(selector, json!({"kubernetes.io/os": "linux", "role": "infra"}));

    update_spec(&fake, json!({})).await;
    eventually(WAIT, "the default log level is back", || {
        container_args(&fake, "keda-operator").contains(&"--zap-log-level=info".to_string())
    })
    .await;
    eventually(WAIT, "the node selector is back to linux only", || {
        deployment(&fake, "keda-operator")["spec"]["template"]["spec"]["nodeSelector"]
            == json!({"kubernetes.io/os": "linux"})
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn objects_no_longer_rendered_are_pruned() {
    let fake = cluster(false);
    let spec = json!({
        "metricsServer": {"replicas": 2, "auditConfig": {"policy": {"rules": [{"level": "Metadata"}]}}},
    });
    let operator = installed(&fake, spec).await;
    assert!(fake.get(&gvr::pod_disruption_budgets(), NS, "keda-metrics-apiserver").is_some());
    assert!(fake.get(&gvr::config_maps(), NS, "keda-metrics-server-audit-policy").is_some());

    update_spec(&fake, json!({"networkPolicy": {"enabled": false}})).await;
    eventually(WAIT, "the PDB, the audit policy and the NetworkPolicies are gone", || {
        fake.get(&gvr::pod_disruption_budgets(), NS, "keda-metrics-apiserver").is_none()
            && fake.get(&gvr::config_maps(), NS, "keda-metrics-server-audit-policy").is_none()
            && fake.list_in(&gvr::network_policies(), NS).is_empty()
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn deleting_any_managed_object_is_reverted() {
    let fake = cluster(false);
    let operator = installed(
        &fake,
        json!({"metricsServer": {"replicas": 2, "auditConfig": {"policy": {"rules": [{"level": "None"}]}}}}),
    )
    .await;
    let victims = [
        ("deployments", NS, "keda-metrics-apiserver"),
        ("services", NS, "keda-operator"),
        ("serviceaccounts", NS, "keda-operator"),
        ("secrets", NS, "kedaorg-certs"),
        ("configmaps", NS, "keda-metrics-server-audit-policy"),
        ("roles", NS, "keda-operator"),
        ("rolebindings", "kube-system", "keda-auth-reader"),
        ("clusterroles", "", "keda-operator"),
        ("clusterrolebindings", "", "keda-hpa-controller-external-metrics"),
        ("networkpolicies", NS, "keda-default-deny"),
        ("poddisruptionbudgets", NS, "keda-metrics-apiserver"),
        ("apiservices", "", "v1beta1.external.metrics.k8s.io"),
        ("validatingwebhookconfigurations", "", "keda-admission"),
    ];
    for (plural, ns, name) in victims {
        let g = by_plural(plural);
        fake.delete_direct(&g, ns, name).unwrap_or_else(|e| panic!("deleting {plural} {name}: {e}"));
        let started = tokio::time::Instant::now();
        eventually(WAIT, &format!("{plural} {ns}/{name} is restored"), || fake.get(&g, ns, name).is_some()).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{plural} {name} restored only after {took:?}");
    }
    let reasons = event_reasons(&fake, "keda");
    assert!(reasons.contains(&"DriftReverted".to_string()), "{reasons:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn editing_a_managed_object_is_reverted() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    fake.patch_direct_as(
        "kubectl-edit",
        &gvr::deployments(),
        NS,
        "keda-operator",
        &json!({"spec": {"replicas": 5, "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "windows"}}}}}),
    )
    .unwrap();
    eventually(WAIT, "replicas and node selector are restored", || {
        let d = deployment(&fake, "keda-operator");
        d["spec"]["replicas"] == 1 && d["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/os"] == "linux"
    })
    .await;
    fake.patch_direct_as("kubectl-edit", &gvr::cluster_roles(), "", "keda-operator", &json!({"rules": []})).unwrap();
    eventually(WAIT, "the ClusterRole's rules are restored", || {
        fake.get(&gvr::cluster_roles(), "", "keda-operator")
            .is_some_and(|r| r["rules"].as_array().is_some_and(|a| !a.is_empty()))
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn an_injected_ca_bundle_is_not_fought_over() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    let mark = fake.mark();
    fake.patch_direct_as(
        "keda-operator-rotation",
        &gvr::api_services(),
        "",
        "v1beta1.external.metrics.k8s.io",
        &json!({"spec": {"caBundle": "Q0FCVU5ETEU="}}),
    )
    .unwrap();
    let mut vwc = fake.get(&gvr::webhooks(), "", "keda-admission").unwrap();
    for webhook in vwc["webhooks"].as_array_mut().unwrap() {
        webhook["clientConfig"]["caBundle"] = json!("Q0FCVU5ETEU=");
    }
    fake.patch_direct_as(
        "keda-operator-rotation",
        &gvr::webhooks(),
        "",
        "keda-admission",
        &json!({"webhooks": vwc["webhooks"]}),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ours: Vec<_> = fake.writes_since(mark).into_iter().filter(|r| r.client == "operator").collect();
    assert!(
        ours.is_empty(),
        "the operator wrote after the injection: {:?}",
        ours.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>()
    );
    assert_eq!(
        fake.get(&gvr::api_services(), "", "v1beta1.external.metrics.k8s.io").unwrap()["spec"]["caBundle"],
        "Q0FCVU5ETEU="
    );
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn deleting_the_kedacontroller_removes_everything_then_releases_it() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({"metricsServer": {"replicas": 2}})).await;
    assert_eq!(managed_objects(&fake).len(), DEFAULT_OBJECTS + 1);
    fake.delete_direct(&gvr::kedacontrollers(), NS, "keda").unwrap();
    eventually(WAIT, "the KedaController is gone", || fake.get(&gvr::kedacontrollers(), NS, "keda").is_none()).await;
    let left = managed_objects(&fake);
    assert!(left.is_empty(), "left behind: {left:#?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_kedacontroller_with_another_name_or_namespace_is_ignored() {
    logging();
    let fake = cluster(false);
    let operator = start(&fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda-two", json!({}))).unwrap();
    fake.insert(&kedacontroller("elsewhere", "keda", json!({}))).unwrap();
    eventually(WAIT, "both are marked ignored", || {
        ["keda-two", "keda"].iter().zip([NS, "elsewhere"]).all(|(name, ns)| {
            fake.get(&gvr::kedacontrollers(), ns, name)
                .is_some_and(|kc| kc["status"]["phase"] == "Installation Ignored")
        })
    })
    .await;
    let (status, reason, message) = condition(&fake, NS, "keda-two", "Ready").unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Ignored"));
    assert!(message.contains("named 'keda'"), "{message}");
    let (_, _, message) = condition(&fake, "elsewhere", "keda", "Ready").unwrap();
    assert!(message.contains("namespace 'keda'"), "{message}");
    assert!(managed_objects(&fake).is_empty(), "an ignored KedaController installed something");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn an_invalid_spec_is_degraded_and_nothing_is_applied() {
    logging();
    let fake = cluster(false);
    let operator = start(&fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda", json!({"operator": {"logLevel": "loud", "replicas": 0}}))).unwrap();
    eventually(WAIT, "Degraded=True", || condition(&fake, NS, "keda", "Degraded").is_some_and(|c| c.0 == "True")).await;
    let (_, reason, message) = condition(&fake, NS, "keda", "Degraded").unwrap();
    assert_eq!(reason, "InvalidSpec");
    assert!(message.contains("spec.operator.logLevel") && message.contains("spec.operator.replicas"), "{message}");
    assert_eq!(fake.count(Verb::Apply), 0, "something was applied for an invalid spec");
    assert!(managed_objects(&fake).is_empty());
    eventually(WAIT, "a Warning event", || event_reasons(&fake, "keda").contains(&"InvalidSpec".to_string())).await;

    update_spec(&fake, json!({"operator": {"logLevel": "debug"}})).await;
    eventually(WAIT, "the fixed spec installs", || managed_objects(&fake).len() == DEFAULT_OBJECTS).await;
    eventually(WAIT, "Degraded=False", || condition(&fake, NS, "keda", "Degraded").is_some_and(|c| c.0 == "False"))
        .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn api_errors_are_retried_and_reported() {
    logging();
    let fake = cluster(false);
    fake.fail_next(3, Matcher::resource("apps", "deployments").verb(Verb::Apply), 500);
    let operator = start(&fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda", json!({}))).unwrap();
    eventually(WAIT, "Degraded=True naming the Deployment", || {
        condition(&fake, NS, "keda", "Degraded").is_some_and(|c| c.0 == "True" && c.2.contains("Deployment"))
    })
    .await;
    eventually(Duration::from_secs(20), "installed after the retries", || {
        fake.get(&gvr::webhooks(), "", "keda-admission").is_some()
            && condition(&fake, NS, "keda", "Degraded").is_some_and(|c| c.0 == "False")
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn an_immutable_field_change_replaces_the_object() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    let before = deployment(&fake, "keda-operator")["metadata"]["uid"].clone();
    let immutable = cma_testkit::ApiError::new(
        422,
        "Deployment.apps \"keda-operator\" is invalid: spec.selector: Invalid value: ...: field is immutable",
    )
    .with_reason("Invalid");
    fake.fail_next_with(1, Matcher::resource("apps", "deployments").verb(Verb::Apply).name("keda-operator"), immutable);
    update_spec(&fake, json!({"operator": {"logLevel": "error"}})).await;
    eventually(WAIT, "the Deployment is replaced with the new spec", || {
        let d = deployment(&fake, "keda-operator");
        d["metadata"]["uid"] != before
            && container_args(&fake, "keda-operator").contains(&"--zap-log-level=error".to_string())
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn watches_survive_expiry_and_restarts() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    fake.expire_watches();
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.delete_direct(&gvr::services(), NS, "keda-metrics-apiserver").unwrap();
    eventually(Duration::from_secs(15), "the Service is restored after the watches restarted", || {
        fake.get(&gvr::services(), NS, "keda-metrics-apiserver").is_some()
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_foreign_external_metrics_apiservice_is_left_alone_and_reported() {
    logging();
    let fake = cluster(false);
    fake.insert(&json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
        "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                 "service": {"name": "prometheus-adapter", "namespace": "openshift-monitoring"}},
    }))
    .unwrap();
    let operator = start(&fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda", json!({}))).unwrap();
    eventually(WAIT, "Degraded names the current owner", || {
        condition(&fake, NS, "keda", "Degraded").is_some_and(|c| {
            c.0 == "True" && c.1 == "APIServiceConflict" && c.2.contains("openshift-monitoring/prometheus-adapter")
        })
    })
    .await;
    eventually(WAIT, "everything else is applied", || managed_objects(&fake).len() == DEFAULT_OBJECTS - 1).await;
    let api = fake.get(&gvr::api_services(), "", "v1beta1.external.metrics.k8s.io").unwrap();
    assert_eq!(api["spec"]["service"]["name"], "prometheus-adapter", "the foreign APIService was changed");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_installation_does_not_take_over_the_first() {
    logging();
    let fake = cluster(false);
    let first = installed(&fake, json!({})).await;
    let second =
        start(&fake, Options { namespace: "keda-two".into(), identity: "second".into(), ..Options::default() });
    fake.insert(&kedacontroller("keda-two", "keda", json!({}))).unwrap();
    eventually(WAIT, "the second is refused", || {
        condition(&fake, "keda-two", "keda", "Degraded")
            .is_some_and(|c| c.1 == "AnotherInstallation" && c.2.contains("'keda'"))
    })
    .await;
    let writes: Vec<_> = fake.writes().into_iter().filter(|r| r.client == "second" && r.verb == Verb::Apply).collect();
    assert!(
        writes.is_empty(),
        "the second installation applied: {:?}",
        writes.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let api = fake.get(&gvr::api_services(), "", "v1beta1.external.metrics.k8s.io").unwrap();
    assert_eq!(api["spec"]["service"]["namespace"], NS);
    let first_kc = fake.get(&gvr::kedacontrollers(), NS, "keda").unwrap();
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
    logging();
    let fake = cluster(false);
    let leader = start(&fake, Options { identity: "a".into(), leader_elect: true, ..Options::default() });
    eventually(WAIT, "a holds the Lease", || {
        fake.get(&gvr::leases(), NS, "cma-operator-leader").is_some_and(|l| l["spec"]["holderIdentity"] == "a")
    })
    .await;
    let standby = start(&fake, Options { identity: "b".into(), leader_elect: true, ..Options::default() });
    fake.insert(&kedacontroller(NS, "keda", json!({}))).unwrap();
    eventually(WAIT, "installed", || managed_objects(&fake).len() == DEFAULT_OBJECTS).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let standby_writes: Vec<_> = fake
        .writes()
        .into_iter()
        .filter(|r| r.client == "b" && r.resource.as_ref().is_none_or(|g| g.resource != "leases"))
        .collect();
    assert!(
        standby_writes.is_empty(),
        "the standby wrote: {:?}",
        standby_writes.iter().map(|r| &r.path).collect::<Vec<_>>()
    );

    leader.stop().await.unwrap();
    eventually(WAIT, "b holds the Lease", || {
        fake.get(&gvr::leases(), NS, "cma-operator-leader").is_some_and(|l| l["spec"]["holderIdentity"] == "b")
    })
    .await;
    fake.delete_direct(&gvr::deployments(), NS, "keda-operator").unwrap();
    eventually(WAIT, "the new leader restores the Deployment", || {
        fake.get(&gvr::deployments(), NS, "keda-operator").is_some()
    })
    .await;
    assert!(fake.writes().iter().any(|r| r.client == "b" && r.verb == Verb::Apply));
    standby.stop().await.unwrap();
}

#[tokio::test]
async fn create_default_kedacontroller_creates_keda_once() {
    logging();
    let fake = cluster(false);
    let operator = start(&fake, Options { create_default: true, ..Options::default() });
    eventually(WAIT, "keda exists and is installed", || {
        fake.get(&gvr::kedacontrollers(), NS, "keda").is_some() && managed_objects(&fake).len() == DEFAULT_OBJECTS
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn metrics_and_probes_are_served() {
    let fake = cluster(false);
    let operator = installed(&fake, json!({})).await;
    cluster_reports_ready(&fake, NS);
    eventually(WAIT, "Ready=True", || condition(&fake, NS, "keda", "Ready").is_some_and(|c| c.0 == "True")).await;
    let metrics = http_get(operator.metrics_addr, "/metrics").await;
    for expected in [
        "keda_controller_ready 1",
        "keda_controller_reconcile_total{result=\"success\"}",
        "keda_controller_managed_objects 23",
        "keda_controller_component_ready{component=\"operator\"} 1",
        "keda_controller_info{",
    ] {
        assert!(metrics.contains(expected), "missing {expected:?} in\n{metrics}");
    }
    assert!(http_get(operator.probe_addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(http_get(operator.probe_addr, "/readyz").await.starts_with("HTTP/1.1 200"));
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

#[tokio::test]
async fn single_namespace_mode_installs_into_the_target_namespace() {
    logging();
    let fake = cluster(false);
    let options =
        Options { namespace: "operators".into(), watch_namespaces: vec!["team-keda".into()], ..Options::default() };
    let operator = start(&fake, options);
    fake.insert(&kedacontroller("team-keda", "keda", json!({}))).unwrap();
    eventually(WAIT, "KEDA installed in the target namespace", || {
        fake.get(&gvr::deployments(), "team-keda", "keda-operator").is_some()
            && fake.get(&gvr::webhooks(), "", "keda-admission").is_some()
    })
    .await;
    assert!(fake.list_in(&gvr::deployments(), "operators").is_empty());
    operator.stop().await.unwrap();
}
