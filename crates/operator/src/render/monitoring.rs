//! Monitoring: ServiceMonitors for KEDA's three components and for this operator, the PrometheusRule with
//! KEDA's alerts and, on OpenShift, the console dashboard and the RBAC the cluster Prometheus needs.
//! Rendered when the cluster serves `monitoring.coreos.com` and `spec.monitoring.enabled` is not false.
//! Apart from those, on clusters without the service-ca (not OpenShift), the CA of the operator's own
//! self-issued `/metrics` certificate is published in a ConfigMap whenever the running operator knows it,
//! for any scraper to trust.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use cma_api::{Component, KedaControllerSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};

use super::metadata::{self, Owner, Scope, own};
use super::monitoring_types::{PrometheusRule, PrometheusRuleSpec, ServiceMonitor, ServiceMonitorSpec};
use super::{RenderContext, RenderError, openshift};

/// KEDA's alert rules (Prometheus rule-file format), checked by promtool in CI.
pub const ALERT_RULES: &str = include_str!("../../../../config/monitoring/keda-alerts.yaml");
/// The dashboard, in the Grafana subset the OpenShift console renders.
pub const DASHBOARD: &str = include_str!("../../../../config/monitoring/keda-dashboard.json");

/// Namespace whose labelled ConfigMaps the OpenShift console shows as dashboards.
pub const DASHBOARD_NAMESPACE: &str = "openshift-config-managed";
/// Name of the dashboard ConfigMap (`grafana-dashboard-<name>`, the console's convention).
pub const DASHBOARD_CONFIG_MAP: &str = "grafana-dashboard-keda";
/// Name of this operator's metrics Service.
pub const OPERATOR_METRICS_SERVICE: &str = "cma-operator-metrics";
/// Port of this operator's metrics endpoint.
pub const OPERATOR_METRICS_PORT: i32 = 8443;
/// Label selecting this operator's pods (set by the operator's Deployment).
pub const OPERATOR_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", cma_api::names::OPERATOR);

/// [`OPERATOR_POD_LABEL`] as a label map (selectors, and the labels of the operator's own objects).
pub fn operator_pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([(OPERATOR_POD_LABEL.0.to_string(), OPERATOR_POD_LABEL.1.to_string())])
}
/// Secret the service-ca fills with the operator's metrics certificate (mounted by its Deployment).
pub const OPERATOR_METRICS_TLS_SECRET: &str = "cma-operator-metrics-tls";
/// ConfigMap publishing the CA of the operator's self-issued `/metrics` certificate (not on OpenShift).
pub const OPERATOR_METRICS_CA_CONFIG_MAP: &str = "cma-operator-metrics-ca";
/// Its key holding the CA certificate (PEM).
pub const OPERATOR_METRICS_CA_KEY: &str = "ca.crt";
/// Role letting the cluster Prometheus discover and scrape targets in the install namespace (static, shipped
/// with the operator: manifests/keda-2.20/rbac.yaml).
pub const PROMETHEUS_ROLE: &str = "cma-operator-prometheus-k8s";

/// What the monitoring render adds to an installation.
#[derive(Clone, Debug, Default)]
pub struct Monitoring {
    /// ServiceMonitors.
    pub service_monitors: Vec<ServiceMonitor>,
    /// The PrometheusRule.
    pub prometheus_rules: Vec<PrometheusRule>,
    /// The operator's metrics Service.
    pub services: Vec<Service>,
    /// The console dashboard; the operator's metrics CA.
    pub config_maps: Vec<ConfigMap>,
}

static ALERT_GROUPS: LazyLock<Result<Value, String>> = LazyLock::new(|| {
    let rules: Value = cma_api::yaml::from_str(ALERT_RULES, cma_api::yaml::Limits::MANIFEST)
        .map_err(|e| format!("keda-alerts.yaml: {e}"))?;
    Ok(rules["groups"].clone())
});

static DASHBOARD_JSON: LazyLock<Result<String, String>> = LazyLock::new(|| {
    // Parsed to prove it is JSON, written compactly: the ConfigMap carries no formatting.
    let value: Value = serde_json::from_str(DASHBOARD).map_err(|e| format!("keda-dashboard.json: {e}"))?;
    serde_json::to_string(&value).map_err(|e| e.to_string())
});

/// The monitoring objects for `spec` on this platform (nothing when monitoring is off or unavailable).
pub fn render(spec: &KedaControllerSpec, ctx: &RenderContext, owner: &Owner) -> Result<Monitoring, RenderError> {
    let mut out = Monitoring::default();
    // The operator's own metrics are only scraped where its pods run, which is the install namespace in
    // OwnNamespace and AllNamespaces mode (a Service cannot select pods in another namespace).
    let operator_here = ctx.operator_namespace.as_deref().is_none_or(|ns| ns == owner.namespace);
    if operator_here
        && !ctx.platform.is_openshift()
        && let Some(ca) = &ctx.metrics_ca
    {
        out.config_maps.push(operator_metrics_ca(ca, owner));
    }
    if !ctx.platform.monitoring || !spec.monitoring.is_enabled() {
        return Ok(out);
    }
    let interval = spec.monitoring.interval();
    for component in Component::ALL {
        let service = component.service_name();
        let endpoint = json!({"port": "metrics", "path": "/metrics", "scheme": "http", "interval": interval});
        out.service_monitors.push(service_monitor(service, service, endpoint, owner));
    }

    if operator_here {
        out.services.push(operator_metrics_service(ctx, owner));
        let server_name = format!("{OPERATOR_METRICS_SERVICE}.{}.svc", owner.namespace);
        // HTTPS with the scraper's own ServiceAccount token, which the operator reviews. On OpenShift the
        // service-ca signs the certificate and the cluster Prometheus mounts that CA; elsewhere the operator
        // signs it and publishes its CA in a ConfigMap next to this ServiceMonitor.
        let tls = if ctx.platform.is_openshift() {
            json!({
                "caFile": "/etc/prometheus/configmaps/serving-certs-ca-bundle/service-ca.crt",
                "serverName": server_name,
            })
        } else {
            json!({
                "ca": {"configMap": {"name": OPERATOR_METRICS_CA_CONFIG_MAP, "key": OPERATOR_METRICS_CA_KEY}},
                "serverName": server_name,
            })
        };
        let endpoint = json!({
            "port": "https-metrics",
            "path": "/metrics",
            "scheme": "https",
            "interval": interval,
            "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "tlsConfig": tls,
        });
        out.service_monitors.push(service_monitor(OPERATOR_METRICS_SERVICE, OPERATOR_POD_LABEL.1, endpoint, owner));
    }

    let groups = ALERT_GROUPS
        .as_ref()
        .map_err(|e| RenderError::Serialize { what: "the alert rules".into(), message: e.clone() })?;
    let mut rule = PrometheusRule::new(
        "keda-alerts",
        PrometheusRuleSpec { fields: Map::from_iter([("groups".to_string(), groups.clone())]) },
    );
    own(&mut rule.metadata, owner, Scope::Install);
    out.prometheus_rules.push(rule);

    if ctx.platform.is_openshift() {
        out.config_maps.push(dashboard(owner)?);
    }
    Ok(out)
}

fn service_monitor(name: &str, service_name_label: &str, endpoint: Value, owner: &Owner) -> ServiceMonitor {
    let spec = json!({
        "endpoints": [endpoint],
        "namespaceSelector": {"matchNames": [owner.namespace]},
        "selector": {"matchLabels": {
            "app.kubernetes.io/name": service_name_label,
            cma_api::labels::MANAGED_BY: cma_api::labels::MANAGED_BY_VALUE,
        }},
    });
    let fields = match spec {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut monitor = ServiceMonitor::new(name, ServiceMonitorSpec { fields });
    own(&mut monitor.metadata, owner, Scope::Install);
    monitor
}

fn operator_metrics_service(ctx: &RenderContext, owner: &Owner) -> Service {
    let mut service = Service {
        metadata: ObjectMeta {
            name: Some(OPERATOR_METRICS_SERVICE.into()),
            labels: Some(operator_pod_labels()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(operator_pod_labels()),
            ports: Some(vec![ServicePort {
                name: Some("https-metrics".into()),
                port: OPERATOR_METRICS_PORT,
                target_port: Some(IntOrString::Int(OPERATOR_METRICS_PORT)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    if ctx.platform.is_openshift() {
        metadata::set(
            &mut service.metadata.annotations,
            openshift::SERVING_CERT_ANNOTATION,
            OPERATOR_METRICS_TLS_SECRET,
        );
    }
    own(&mut service.metadata, owner, Scope::Install);
    service
}

/// The CA of the running operator's self-issued `/metrics` certificate.
fn operator_metrics_ca(ca: &str, owner: &Owner) -> ConfigMap {
    let mut config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(OPERATOR_METRICS_CA_CONFIG_MAP.into()),
            labels: Some(operator_pod_labels()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(OPERATOR_METRICS_CA_KEY.to_string(), ca.to_string())])),
        ..ConfigMap::default()
    };
    own(&mut config_map.metadata, owner, Scope::Install);
    config_map
}

/// Lets `openshift-monitoring/prometheus-k8s` discover and scrape the targets of the install namespace.
fn dashboard(owner: &Owner) -> Result<ConfigMap, RenderError> {
    let json = DASHBOARD_JSON
        .as_ref()
        .map_err(|e| RenderError::Serialize { what: "the dashboard".into(), message: e.clone() })?;
    let mut config_map = ConfigMap {
        metadata: ObjectMeta {
            name: Some(DASHBOARD_CONFIG_MAP.into()),
            labels: Some(BTreeMap::from([
                ("console.openshift.io/dashboard".to_string(), "true".to_string()),
                ("console.openshift.io/odc-dashboard".to_string(), "true".to_string()),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("keda.json".to_string(), json.clone())])),
        ..ConfigMap::default()
    };
    own(&mut config_map.metadata, owner, Scope::Namespace(DASHBOARD_NAMESPACE));
    Ok(config_map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn owner() -> Owner {
        Owner { namespace: "keda".into(), name: "keda".into(), uid: None }
    }

    fn ctx(platform: Platform, monitoring: bool, ca: Option<&str>) -> RenderContext {
        RenderContext {
            platform: Platform { monitoring, ..platform },
            metrics_ca: ca.map(String::from),
            ..RenderContext::default()
        }
    }

    fn spec(yaml: &str) -> KedaControllerSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn operator_endpoint(out: &Monitoring) -> Value {
        let monitor =
            out.service_monitors.iter().find(|m| m.metadata.name.as_deref() == Some(OPERATOR_METRICS_SERVICE)).unwrap();
        serde_json::to_value(monitor).unwrap()["spec"]["endpoints"][0].clone()
    }

    fn ca_config_map(out: &Monitoring) -> Option<&ConfigMap> {
        out.config_maps.iter().find(|c| c.metadata.name.as_deref() == Some(OPERATOR_METRICS_CA_CONFIG_MAP))
    }

    #[test]
    fn on_kubernetes_the_operator_is_scraped_over_https_trusting_the_ca_it_publishes() {
        let out = render(&spec("{}"), &ctx(Platform::kubernetes(), true, Some("PEM")), &owner()).unwrap();
        let endpoint = operator_endpoint(&out);
        assert_eq!(endpoint["scheme"], "https");
        assert_eq!(endpoint["bearerTokenFile"], "/var/run/secrets/kubernetes.io/serviceaccount/token");
        assert_eq!(
            endpoint["tlsConfig"],
            json!({
                "ca": {"configMap": {"name": "cma-operator-metrics-ca", "key": "ca.crt"}},
                "serverName": "cma-operator-metrics.keda.svc",
            })
        );
        let ca = ca_config_map(&out).unwrap();
        assert_eq!(ca.data.as_ref().unwrap()[OPERATOR_METRICS_CA_KEY], "PEM");
        assert_eq!(ca.metadata.namespace.as_deref(), Some("keda"));
    }

    #[test]
    fn on_openshift_the_service_ca_is_trusted_and_no_ca_is_published() {
        let out = render(&spec("{}"), &ctx(Platform::openshift(), true, Some("PEM")), &owner()).unwrap();
        let endpoint = operator_endpoint(&out);
        assert_eq!(endpoint["scheme"], "https");
        assert_eq!(
            endpoint["tlsConfig"]["caFile"],
            "/etc/prometheus/configmaps/serving-certs-ca-bundle/service-ca.crt"
        );
        assert!(ca_config_map(&out).is_none());
    }

    #[test]
    fn the_ca_is_published_without_the_monitoring_api_or_with_monitoring_off() {
        let without = render(&spec("{}"), &ctx(Platform::kubernetes(), false, Some("PEM")), &owner()).unwrap();
        assert!(ca_config_map(&without).is_some());
        assert!(without.service_monitors.is_empty());
        let off =
            render(&spec("monitoring: {enabled: false}"), &ctx(Platform::kubernetes(), true, Some("PEM")), &owner())
                .unwrap();
        assert!(ca_config_map(&off).is_some());
    }

    #[test]
    fn no_ca_offline_or_where_the_operator_does_not_run() {
        let offline = render(&spec("{}"), &ctx(Platform::kubernetes(), true, None), &owner()).unwrap();
        assert!(ca_config_map(&offline).is_none());
        assert_eq!(operator_endpoint(&offline)["scheme"], "https");
        let elsewhere = RenderContext {
            operator_namespace: Some("operators".into()),
            ..ctx(Platform::kubernetes(), true, Some("PEM"))
        };
        assert!(ca_config_map(&render(&spec("{}"), &elsewhere, &owner()).unwrap()).is_none());
    }
}
