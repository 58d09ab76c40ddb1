//! The controller on OpenShift (detected by API discovery): service-ca certificates, the operator's own
//! gRPC certificates, the cluster TLS profile, rollouts when mounted certificates or CA bundles change.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cma_testkit::FakeApiServer;
use cma_tests::*;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

async fn installed_on_openshift(fake: &FakeApiServer, spec: Value) -> Operator {
    logging();
    let operator = start(fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda", spec)).unwrap();
    eventually(WAIT, "installed", || fake.get(&gvr::webhooks(), "", "keda-admission").is_some()).await;
    settle(fake, Duration::from_millis(300), WAIT).await;
    operator
}

fn container(fake: &FakeApiServer, deployment: &str) -> Value {
    fake.get(&gvr::deployments(), NS, deployment).unwrap()["spec"]["template"]["spec"]["containers"][0].clone()
}

fn env(fake: &FakeApiServer, deployment: &str, name: &str) -> Option<String> {
    container(fake, deployment)["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
}

fn config_hash(fake: &FakeApiServer, deployment: &str) -> Option<String> {
    fake.get(&gvr::deployments(), NS, deployment)?["spec"]["template"]["metadata"]["annotations"]["cma.keda.sh/config-hash"]
        .as_str()
        .map(String::from)
}

fn secret_data(fake: &FakeApiServer, name: &str, key: &str) -> Option<String> {
    fake.get(&gvr::secrets(), NS, name)?["data"][key].as_str().map(String::from)
}

#[tokio::test]
async fn openshift_is_detected_and_the_service_ca_is_wired_in() {
    let fake = cluster(true);
    let operator = installed_on_openshift(&fake, json!({})).await;
    let service = fake.get(&gvr::services(), NS, "keda-metrics-apiserver").unwrap();
    assert_eq!(
        service["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"],
        "keda-metrics-apiserver-certs"
    );
    let api = fake.get(&gvr::api_services(), "", "v1beta1.external.metrics.k8s.io").unwrap();
    assert_eq!(api["metadata"]["annotations"]["service.beta.openshift.io/inject-cabundle"], "true");
    assert!(fake.get(&gvr::config_maps(), NS, "keda-ocp-cabundle").is_some());
    let args = container(&fake, "keda-operator")["args"].clone();
    assert!(args.as_array().unwrap().contains(&json!("--enable-cert-rotation=false")), "{args}");
    assert_eq!(env(&fake, "keda-admission", "KEDA_SERVICE_MIN_TLS_VERSION").as_deref(), Some("TLS12"));
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn the_operator_issues_the_grpc_certificates_and_keeps_them() {
    let fake = cluster(true);
    let operator = installed_on_openshift(&fake, json!({})).await;
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(secret_data(&fake, "kedaorg-certs", key).is_some(), "kedaorg-certs has no {key}");
    }
    let managers: Vec<String> =
        fake.managed_fields(&gvr::secrets(), NS, "kedaorg-certs").into_iter().map(|m| m.manager).collect();
    assert!(managers.contains(&"cma-operator-certs".to_string()), "{managers:?}");
    let tls = secret_data(&fake, "kedaorg-certs", "tls.crt");
    operator.stop().await.unwrap();

    // A restart does not reissue valid certificates.
    let operator = start(&fake, Options::default());
    settle(&fake, Duration::from_millis(500), WAIT).await;
    assert_eq!(secret_data(&fake, "kedaorg-certs", "tls.crt"), tls);
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn certificates_close_to_expiry_are_renewed_under_the_same_ca_and_roll_the_pods() {
    let fake = cluster(true);
    let operator = installed_on_openshift(&fake, json!({})).await;
    let ca = secret_data(&fake, "kedaorg-certs", "ca.crt").unwrap();
    let tls = secret_data(&fake, "kedaorg-certs", "tls.crt").unwrap();
    let hash = config_hash(&fake, "keda-metrics-apiserver").unwrap();
    operator.stop().await.unwrap();

    // 300 days later the leaf (1 year) is inside its renewal window; the CA (10 years) is not.
    let later = Timestamp::now() + SignedDuration::from_hours(24 * 300);
    let operator = start_with_clock(&fake, Options::default(), Arc::new(move || later));
    eventually(WAIT, "the leaf certificate is renewed", || {
        secret_data(&fake, "kedaorg-certs", "tls.crt").as_ref() != Some(&tls)
    })
    .await;
    assert_eq!(secret_data(&fake, "kedaorg-certs", "ca.crt").unwrap(), ca, "the CA must be kept");
    eventually(WAIT, "the metrics server rolls to the new certificate", || {
        config_hash(&fake, "keda-metrics-apiserver").as_ref() != Some(&hash)
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_tls_profile_change_reaches_the_components() {
    let fake = cluster(true);
    let operator = installed_on_openshift(&fake, json!({})).await;
    assert_eq!(env(&fake, "keda-operator", "KEDA_SERVICE_MIN_TLS_VERSION").as_deref(), Some("TLS12"));
    fake.insert(&json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "APIServer",
        "metadata": {"name": "cluster"},
        "spec": {"tlsSecurityProfile": {"type": "Modern", "modern": {}}},
    }))
    .unwrap();
    eventually(WAIT, "TLS 1.3 everywhere", || {
        ["keda-operator", "keda-metrics-apiserver", "keda-admission"]
            .iter()
            .all(|d| env(&fake, d, "KEDA_SERVICE_MIN_TLS_VERSION").as_deref() == Some("TLS13"))
    })
    .await;
    let args = container(&fake, "keda-metrics-apiserver")["args"].clone();
    assert!(args.as_array().unwrap().contains(&json!("--tls-min-version=VersionTLS13")), "{args}");
    assert_eq!(env(&fake, "keda-operator", "KEDA_SERVICE_TLS_CIPHER_LIST"), None, "TLS 1.3 takes no cipher list");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_rotated_serving_certificate_rolls_its_component() {
    let fake = cluster(true);
    let operator = installed_on_openshift(&fake, json!({})).await;
    fake.insert(&json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "keda-admission-webhooks-certs", "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "Zmlyc3Q=", "tls.key": "Zmlyc3Q="},
    }))
    .unwrap();
    settle(&fake, Duration::from_millis(300), WAIT).await;
    let webhooks = config_hash(&fake, "keda-admission").unwrap();
    let operator_hash = config_hash(&fake, "keda-operator").unwrap();
    fake.patch_direct_as(
        "service-ca",
        &gvr::secrets(),
        NS,
        "keda-admission-webhooks-certs",
        &json!({"data": {"tls.crt": "c2Vjb25k"}}),
    )
    .unwrap();
    eventually(WAIT, "the webhooks roll", || config_hash(&fake, "keda-admission").as_ref() != Some(&webhooks)).await;
    assert_eq!(config_hash(&fake, "keda-operator").unwrap(), operator_hash, "an unrelated component rolled");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_changed_custom_ca_bundle_rolls_the_operator() {
    logging();
    let fake = cluster(false);
    fake.insert(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "corp-ca", "namespace": NS}, "data": {"ca.crt": "one"}}))
        .unwrap();
    let operator = start(&fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda", json!({"operator": {"caConfigMaps": ["corp-ca"]}}))).unwrap();
    eventually(WAIT, "installed", || config_hash(&fake, "keda-operator").is_some()).await;
    settle(&fake, Duration::from_millis(300), WAIT).await;
    let before = config_hash(&fake, "keda-operator").unwrap();
    fake.patch_direct_as("admin", &gvr::config_maps(), NS, "corp-ca", &json!({"data": {"ca.crt": "two"}})).unwrap();
    eventually(WAIT, "the operator rolls", || config_hash(&fake, "keda-operator").as_ref() != Some(&before)).await;
    operator.stop().await.unwrap();
}

fn monitoring_cluster() -> FakeApiServer {
    let fake = cluster(true);
    fake.register(cma_testkit::known::servicemonitors());
    fake.register(cma_testkit::known::prometheusrules());
    fake
}

fn servicemonitors() -> cma_testkit::Gvr {
    cma_testkit::Gvr::new("monitoring.coreos.com", "v1", "servicemonitors")
}

fn prometheusrules() -> cma_testkit::Gvr {
    cma_testkit::Gvr::new("monitoring.coreos.com", "v1", "prometheusrules")
}

#[tokio::test]
async fn monitoring_is_installed_and_removed_with_the_kedacontroller() {
    let fake = monitoring_cluster();
    let operator = installed_on_openshift(&fake, json!({"monitoring": {"interval": "1m"}})).await;
    let monitors: Vec<String> = fake
        .list_in(&servicemonitors(), NS)
        .iter()
        .map(|m| m["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(monitors.len(), 4, "{monitors:?}");
    let operator_monitor = fake.get(&servicemonitors(), NS, "cma-operator-metrics").unwrap();
    assert_eq!(operator_monitor["spec"]["endpoints"][0]["scheme"], "https");
    assert_eq!(operator_monitor["spec"]["endpoints"][0]["interval"], "1m");
    let rules = fake.get(&prometheusrules(), NS, "keda-alerts").unwrap();
    assert!(rules["spec"]["groups"].as_array().is_some_and(|g| !g.is_empty()));
    let dashboard = fake.get(&gvr::config_maps(), "openshift-config-managed", "grafana-dashboard-keda").unwrap();
    assert_eq!(dashboard["metadata"]["labels"]["console.openshift.io/dashboard"], "true");
    assert!(fake.get(&gvr::roles(), NS, "cma-operator-prometheus-k8s").is_some());
    assert!(fake.get(&gvr::services(), NS, "cma-operator-metrics").is_some());

    // The dashboard lives outside the install namespace: it is still watched and restored.
    fake.delete_direct(&gvr::config_maps(), "openshift-config-managed", "grafana-dashboard-keda").unwrap();
    eventually(WAIT, "the dashboard is restored", || {
        fake.get(&gvr::config_maps(), "openshift-config-managed", "grafana-dashboard-keda").is_some()
    })
    .await;

    fake.delete_direct(&gvr::kedacontrollers(), NS, "keda").unwrap();
    eventually(WAIT, "the KedaController is gone", || fake.get(&gvr::kedacontrollers(), NS, "keda").is_none()).await;
    assert!(fake.get(&gvr::config_maps(), "openshift-config-managed", "grafana-dashboard-keda").is_none());
    assert!(fake.list_in(&servicemonitors(), NS).is_empty());
    assert!(fake.list_in(&prometheusrules(), NS).is_empty());
    assert!(managed_objects(&fake).is_empty(), "{:?}", managed_objects(&fake));
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn turning_monitoring_off_prunes_it() {
    let fake = monitoring_cluster();
    let operator = installed_on_openshift(&fake, json!({})).await;
    assert_eq!(fake.list_in(&servicemonitors(), NS).len(), 4);
    let mut kc = fake.get(&gvr::kedacontrollers(), NS, "keda").unwrap();
    kc["spec"] = json!({"monitoring": {"enabled": false}});
    kc["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    fake.insert(&kc).unwrap();
    eventually(WAIT, "monitoring objects are pruned", || {
        fake.list_in(&servicemonitors(), NS).is_empty()
            && fake.list_in(&prometheusrules(), NS).is_empty()
            && fake.get(&gvr::config_maps(), "openshift-config-managed", "grafana-dashboard-keda").is_none()
            && fake.get(&gvr::services(), NS, "cma-operator-metrics").is_none()
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn the_monitoring_api_appearing_restarts_the_operator_to_watch_it() {
    let fake = cluster(true);
    let operator = installed_on_openshift(&fake, json!({})).await;
    assert!(fake.list_in(&servicemonitors(), NS).is_empty());
    fake.register(cma_testkit::known::servicemonitors());
    fake.register(cma_testkit::known::prometheusrules());
    // Discovery runs hourly in tests; a TLS profile event makes it run now.
    fake.insert(&json!({"apiVersion": "config.openshift.io/v1", "kind": "APIServer", "metadata": {"name": "cluster"}, "spec": {}}))
        .unwrap();
    eventually(WAIT, "the operator stops to restart", || operator.is_finished()).await;
    let error = operator.stop().await.unwrap_err();
    assert!(error.to_string().contains("monitoring API: true"), "{error}");
}

#[tokio::test]
async fn the_install_namespace_is_labelled_for_cluster_monitoring_or_the_admin_is_told_how() {
    logging();
    let fake = monitoring_cluster();
    let namespaces = cma_testkit::Gvr::new("", "v1", "namespaces");
    fake.insert(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-keda"}})).unwrap();
    let options = Options { namespace: "openshift-keda".into(), ..Options::default() };
    let operator = start(&fake, options.clone());
    fake.insert(&kedacontroller("openshift-keda", "keda", json!({}))).unwrap();
    eventually(WAIT, "the namespace is labelled", || {
        fake.get(&namespaces, "", "openshift-keda")
            .is_some_and(|ns| ns["metadata"]["labels"]["openshift.io/cluster-monitoring"] == "true")
    })
    .await;
    operator.stop().await.unwrap();

    // Without the permission to label it, a Warning event carries the command to run.
    let fake = monitoring_cluster();
    fake.insert(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-keda"}})).unwrap();
    fake.forbid(cma_testkit::Matcher::resource("", "namespaces").verb(cma_testkit::Verb::Patch));
    let operator = start(&fake, options);
    fake.insert(&kedacontroller("openshift-keda", "keda", json!({}))).unwrap();
    eventually(WAIT, "a Warning event with the command", || {
        fake.list(&gvr::events()).iter().any(|e| {
            e["reason"] == "MonitoringNotCollected"
                && e["note"].as_str().is_some_and(|n| {
                    n.contains("oc label namespace openshift-keda openshift.io/cluster-monitoring=true")
                })
        })
    })
    .await;
    operator.stop().await.unwrap();
}
