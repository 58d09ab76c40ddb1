//! The controller on OpenShift (detected by API discovery), against a real kube-apiserver serving OpenShift's
//! config and route APIs, with the test playing the service-ca operator: service-ca certificates, the
//! operator's own gRPC certificates, the cluster TLS profile, rollouts when mounted certificates or CA
//! bundles change, monitoring.

use cma_api::Component;
use std::sync::Arc;

use cma_testkit::cluster::{Apis, Faults, RequestMatch, ServiceCa, kinds};
use cma_tests::*;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

async fn openshift(prefix: &str) -> Env {
    env_with(Apis::openshift(), prefix).await
}

/// Starts the operator with the service-ca played, creates `keda` and waits for a settled installation.
async fn installed_on_openshift(env: &Env, spec: Value) -> (Operator, ServiceCa) {
    let service_ca = env.cluster.service_ca(&env.ns);
    let operator = env.start(Options::default()).await;
    env.create_keda(spec).await;
    env.wait_installed().await;
    env.settle(&operator).await;
    (operator, service_ca)
}

async fn container(env: &Env, deployment: &str) -> Value {
    env.deployment(deployment).await["spec"]["template"]["spec"]["containers"][0].clone()
}

async fn env_var(env: &Env, deployment: &str, name: &str) -> Option<String> {
    container(env, deployment).await["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
}

async fn config_hash(env: &Env, deployment: &str) -> Option<String> {
    env.get(&kinds::DEPLOYMENT, deployment).await?["spec"]["template"]["metadata"]["annotations"]
        ["cma.keda.sh/config-hash"]
        .as_str()
        .map(String::from)
}

async fn secret_data(env: &Env, name: &str, key: &str) -> Option<String> {
    env.get(&kinds::SECRET, name).await?["data"][key].as_str().map(String::from)
}

#[tokio::test]
async fn openshift_is_detected_and_the_service_ca_is_wired_in() {
    let env = openshift("keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    let service = env.get(&kinds::SERVICE, "keda-metrics-apiserver").await.unwrap();
    assert_eq!(
        service["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"],
        Component::MetricsServer.serving_cert_secret().as_str()
    );
    let api = env.cluster.get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io").await.unwrap();
    assert_eq!(api["metadata"]["annotations"]["service.beta.openshift.io/inject-cabundle"], "true");
    assert!(api["spec"]["caBundle"].is_string(), "the service CA was injected and is kept: {api}");
    assert!(env.get(&kinds::CONFIG_MAP, "keda-ocp-cabundle").await.is_some());
    let args = container(&env, "keda-operator").await["args"].clone();
    assert!(args.as_array().unwrap().contains(&json!("--enable-cert-rotation=false")), "{args}");
    assert_eq!(env_var(&env, "keda-admission", "KEDA_SERVICE_MIN_TLS_VERSION").await.as_deref(), Some("TLS12"));
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_first_install_rolls_each_deployment_once_and_reports_no_drift() {
    let env = openshift("keda").await;
    let mark = env.cluster.audit().mark();
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    let writes = env.writes_since(&operator, mark);
    for name in Component::ALL.map(Component::deployment_name) {
        let deployment = env.deployment(name).await;
        assert_eq!(
            deployment["metadata"]["generation"],
            1,
            "{name} was written twice: {:?}",
            writes.iter().map(|w| w.describe()).collect::<Vec<_>>()
        );
        let applies = writes.iter().filter(|w| w.object.resource == "deployments" && w.object.name == name).count();
        assert_eq!(applies, 1, "{name}: {applies} writes");
    }
    env.assert_no_drift_reported("keda", "a first install is not drift").await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn without_the_service_ca_the_deployments_wait_and_say_for_what() {
    let env = openshift("keda").await;
    let operator = env.start(Options::default()).await;
    env.create_keda(json!({})).await;
    eventually(WAIT, "Progressing names the missing serving certificate", async || {
        env.condition("Progressing")
            .await
            .is_some_and(|c| c.0 == "True" && c.1 == "WaitingForInputs" && c.2.contains("Secret keda-operator-certs"))
    })
    .await;
    for name in Component::ALL.map(Component::deployment_name) {
        assert!(env.get(&kinds::DEPLOYMENT, name).await.is_none(), "{name} was created before its certificate");
    }
    // The service-ca operator arrives: the Deployments follow.
    let _ca = env.cluster.service_ca(&env.ns);
    env.wait_installed().await;
    env.settle(&operator).await;
    for name in Component::ALL.map(Component::deployment_name) {
        assert_eq!(env.deployment(name).await["metadata"]["generation"], 1);
    }
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn the_operator_issues_the_grpc_certificates_and_keeps_them() {
    let env = openshift("keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    for key in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(secret_data(&env, "kedaorg-certs", key).await.is_some(), "kedaorg-certs has no {key}");
    }
    let secret = env.get(&kinds::SECRET, "kedaorg-certs").await.unwrap();
    let managers: Vec<&str> =
        secret["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|m| m["manager"].as_str()).collect();
    assert!(managers.contains(&"cma-operator-certs"), "{managers:?}");
    let tls = secret_data(&env, "kedaorg-certs", "tls.crt").await;
    operator.stop().await.unwrap();

    // A restart does not reissue valid certificates, nor write anything else.
    let mark = env.cluster.audit().mark();
    let operator = env.start(Options::default()).await;
    eventually(WAIT, "the restarted operator reconciled", async || {
        env.requests_since(&operator, mark).iter().any(|e| e.object.resource == "kedacontrollers")
    })
    .await;
    env.settle(&operator).await;
    assert_eq!(secret_data(&env, "kedaorg-certs", "tls.crt").await, tls);
    let writes: Vec<_> = env.writes_since(&operator, mark).iter().map(|e| e.describe()).collect();
    assert!(writes.is_empty(), "a restart wrote: {writes:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn certificates_close_to_expiry_are_renewed_under_the_same_ca_and_roll_the_pods() {
    let env = openshift("keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    let ca = secret_data(&env, "kedaorg-certs", "ca.crt").await.unwrap();
    let tls = secret_data(&env, "kedaorg-certs", "tls.crt").await.unwrap();
    let hash = config_hash(&env, "keda-metrics-apiserver").await.unwrap();
    operator.stop().await.unwrap();

    // 300 days later the leaf (1 year) is inside its renewal window; the CA (10 years) is not.
    let later = Timestamp::now() + SignedDuration::from_hours(24 * 300);
    let operator = env.start(Options { clock: Some(Arc::new(move || later)), ..Options::default() }).await;
    eventually(WAIT, "the leaf certificate is renewed", async || {
        secret_data(&env, "kedaorg-certs", "tls.crt").await.as_ref() != Some(&tls)
    })
    .await;
    assert_eq!(secret_data(&env, "kedaorg-certs", "ca.crt").await.unwrap(), ca, "the CA must be kept");
    eventually(WAIT, "the metrics server rolls to the new certificate", async || {
        config_hash(&env, "keda-metrics-apiserver").await.as_ref() != Some(&hash)
    })
    .await;
    env.assert_no_drift_reported("keda", "a renewal is not drift").await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_tls_profile_change_reaches_the_components() {
    let env = openshift("keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    assert_eq!(env_var(&env, "keda-operator", "KEDA_SERVICE_MIN_TLS_VERSION").await.as_deref(), Some("TLS12"));
    env.cluster
        .merge_patch_as(
            "cluster-admin",
            &kinds::OPENSHIFT_APISERVER,
            "",
            "cluster",
            &json!({"spec": {"tlsSecurityProfile": {"type": "Modern", "modern": {}}}}),
        )
        .await;
    eventually(WAIT, "TLS 1.3 everywhere", async || {
        let mut all = true;
        for d in Component::ALL.map(Component::deployment_name) {
            all &= env_var(&env, d, "KEDA_SERVICE_MIN_TLS_VERSION").await.as_deref() == Some("TLS13");
        }
        all
    })
    .await;
    let args = container(&env, "keda-metrics-apiserver").await["args"].clone();
    assert!(args.as_array().unwrap().contains(&json!("--tls-min-version=VersionTLS13")), "{args}");
    assert_eq!(
        env_var(&env, "keda-operator", "KEDA_SERVICE_TLS_CIPHER_LIST").await,
        None,
        "TLS 1.3 takes no cipher list"
    );
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_rotated_serving_certificate_rolls_its_component_only() {
    let env = openshift("keda").await;
    let (operator, ca) = installed_on_openshift(&env, json!({})).await;
    let webhooks = config_hash(&env, "keda-admission").await.unwrap();
    let operator_hash = config_hash(&env, "keda-operator").await.unwrap();
    ca.rotate("keda-admission-webhooks-certs", "keda-admission-webhooks").await;
    eventually(WAIT, "the webhooks roll", async || {
        config_hash(&env, "keda-admission").await.as_ref() != Some(&webhooks)
    })
    .await;
    assert_eq!(config_hash(&env, "keda-operator").await.unwrap(), operator_hash, "an unrelated component rolled");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_changed_custom_ca_bundle_rolls_the_operator_without_calling_it_drift() {
    let env = env().await;
    env.cluster
        .create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "corp-ca", "namespace": env.ns}, "data": {"ca.crt": "one"}}))
        .await;
    let operator = env.installed(json!({"operator": {"caConfigMaps": ["corp-ca"]}})).await;
    let before = config_hash(&env, "keda-operator").await.unwrap();
    env.cluster
        .merge_patch_as("admin", &kinds::CONFIG_MAP, &env.ns, "corp-ca", &json!({"data": {"ca.crt": "two"}}))
        .await;
    eventually(WAIT, "the operator rolls", async || config_hash(&env, "keda-operator").await.as_ref() != Some(&before))
        .await;
    env.settle(&operator).await;
    env.assert_no_drift_reported("keda", "a changed CA bundle is not drift").await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn a_missing_ca_config_map_is_reported_until_it_exists() {
    let env = env().await;
    let operator = env.start(Options::default()).await;
    env.create_keda(json!({"operator": {"caConfigMaps": ["corp-ca"]}})).await;
    eventually(WAIT, "Degraded names the missing ConfigMap", async || {
        env.condition("Degraded")
            .await
            .is_some_and(|c| c.0 == "True" && c.1 == "MissingReference" && c.2.contains("corp-ca"))
    })
    .await;
    env.cluster
        .create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "corp-ca", "namespace": env.ns}, "data": {"ca.crt": "x"}}))
        .await;
    eventually(WAIT, "Degraded clears", async || env.condition("Degraded").await.is_some_and(|c| c.0 == "False")).await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn monitoring_is_installed_and_removed_with_the_kedacontroller() {
    let env = env_with(Apis::openshift_with_monitoring(), "keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({"monitoring": {"interval": "1m"}})).await;
    let monitors = env.cluster.list(&kinds::SERVICE_MONITOR, &env.ns, "").await;
    assert_eq!(monitors.len(), 4, "{monitors:?}");
    let operator_monitor = env.get(&kinds::SERVICE_MONITOR, "cma-operator-metrics").await.unwrap();
    assert_eq!(operator_monitor["spec"]["endpoints"][0]["scheme"], "https");
    assert_eq!(operator_monitor["spec"]["endpoints"][0]["interval"], "1m");
    let rules = env.get(&kinds::PROMETHEUS_RULE, "keda-alerts").await.unwrap();
    assert!(rules["spec"]["groups"].as_array().is_some_and(|g| !g.is_empty()));
    let dashboard =
        env.cluster.get(&kinds::CONFIG_MAP, "openshift-config-managed", "grafana-dashboard-keda").await.unwrap();
    assert_eq!(dashboard["metadata"]["labels"]["console.openshift.io/dashboard"], "true");
    assert!(env.get(&kinds::ROLE, "cma-operator-prometheus-k8s").await.is_some());
    assert!(env.get(&kinds::SERVICE, "cma-operator-metrics").await.is_some());

    // The dashboard lives outside the install namespace: it is still watched and restored.
    env.cluster.delete(&kinds::CONFIG_MAP, "openshift-config-managed", "grafana-dashboard-keda").await;
    eventually(WAIT, "the dashboard is restored", async || {
        env.cluster.get(&kinds::CONFIG_MAP, "openshift-config-managed", "grafana-dashboard-keda").await.is_some()
    })
    .await;

    env.cluster.delete(&kinds::KEDACONTROLLER, &env.ns, "keda").await;
    eventually(WAIT, "the KedaController is gone", async || env.get(&kinds::KEDACONTROLLER, "keda").await.is_none())
        .await;
    assert!(env.cluster.get(&kinds::CONFIG_MAP, "openshift-config-managed", "grafana-dashboard-keda").await.is_none());
    assert!(env.cluster.list(&kinds::SERVICE_MONITOR, &env.ns, "").await.is_empty());
    assert!(env.cluster.list(&kinds::PROMETHEUS_RULE, &env.ns, "").await.is_empty());
    let left = env.managed_objects().await;
    assert!(left.is_empty(), "{left:?}");
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn turning_monitoring_off_prunes_it() {
    let env = env_with(Apis::openshift_with_monitoring(), "keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    assert_eq!(env.cluster.list(&kinds::SERVICE_MONITOR, &env.ns, "").await.len(), 4);
    env.update_spec(json!({"monitoring": {"enabled": false}})).await;
    eventually(WAIT, "monitoring objects are pruned", async || {
        env.cluster.list(&kinds::SERVICE_MONITOR, &env.ns, "").await.is_empty()
            && env.cluster.list(&kinds::PROMETHEUS_RULE, &env.ns, "").await.is_empty()
            && env.cluster.get(&kinds::CONFIG_MAP, "openshift-config-managed", "grafana-dashboard-keda").await.is_none()
            && env.get(&kinds::SERVICE, "cma-operator-metrics").await.is_none()
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn the_monitoring_api_appearing_restarts_the_operator_to_watch_it() {
    let env = openshift("keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    // The monitoring stack gets installed: its CRDs appear.
    for (kind, plural) in
        [("ServiceMonitor", "servicemonitors"), ("PodMonitor", "podmonitors"), ("PrometheusRule", "prometheusrules")]
    {
        env.cluster
            .apply_as("cluster-admin", &json!({
                "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{plural}.monitoring.coreos.com")},
                "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                         "names": {"kind": kind, "plural": plural},
                         "versions": [{"name": "v1", "served": true, "storage": true,
                                       "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
            }))
            .await;
    }
    // Discovery runs hourly in tests; a change of the cluster APIServer configuration makes it run now,
    // once the API server serves the new group.
    eventually(WAIT, "the monitoring API is served", async || {
        env.cluster.client().list_api_group_resources("monitoring.coreos.com/v1").await.is_ok_and(|list| {
            ["servicemonitors", "podmonitors", "prometheusrules"]
                .iter()
                .all(|plural| list.resources.iter().any(|r| r.name == *plural))
        })
    })
    .await;
    env.cluster
        .merge_patch_as(
            "cluster-admin",
            &kinds::OPENSHIFT_APISERVER,
            "",
            "cluster",
            &json!({"metadata": {"labels": {"touched": "yes"}}}),
        )
        .await;
    eventually(WAIT, "the operator stops to restart", async || operator.is_finished()).await;
    let error = operator.stop().await.unwrap_err();
    assert!(error.to_string().contains("monitoring API: true"), "{error}");
}

#[tokio::test]
async fn the_install_namespace_is_labelled_for_cluster_monitoring() {
    let env = env_with(Apis::openshift_with_monitoring(), "openshift-keda").await;
    let (operator, _ca) = installed_on_openshift(&env, json!({})).await;
    eventually(WAIT, "the namespace is labelled", async || {
        env.cluster
            .get(&kinds::NAMESPACE, "", &env.ns)
            .await
            .is_some_and(|ns| ns["metadata"]["labels"]["openshift.io/cluster-monitoring"] == "true")
    })
    .await;
    operator.stop().await.unwrap();
}

#[tokio::test]
async fn without_the_right_to_label_the_namespace_the_admin_is_told_the_command() {
    let env = env_with(Apis::openshift_with_monitoring(), "openshift-keda").await;
    let _ca = env.cluster.service_ca(&env.ns);
    let faults = Faults::new();
    let path = format!("/api/v1/namespaces/{}", env.ns);
    faults.fail_next(
        1,
        RequestMatch::default().method(http::Method::PATCH).exact_path(&path),
        403,
        "Forbidden",
        "namespaces is forbidden",
    );
    let operator = env.start(Options { faults: Some(faults), ..Options::default() }).await;
    env.create_keda(json!({})).await;
    let command = format!("oc label namespace {} openshift.io/cluster-monitoring=true", env.ns);
    eventually(WAIT, "a Warning event with the command", async || {
        env.events_about("keda")
            .await
            .iter()
            .any(|(reason, note)| reason == "MonitoringNotCollected" && note.contains(&command))
    })
    .await;
    operator.stop().await.unwrap();
}
