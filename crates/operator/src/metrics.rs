//! The operator's own metrics, served on `/metrics`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Label: outcome of a reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success`, `error`, `invalid`, `ignored` or `blocked`.
    pub result: String,
}

/// Label: category of a reconcile error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CategoryLabel {
    /// See `reconcile::Error::category`.
    pub category: String,
}

/// Label: kind of a managed object.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Object kind.
    pub kind: String,
}

/// Label: a KEDA component.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabel {
    /// `operator`, `metricsServer` or `admissionWebhooks`.
    pub component: String,
}

/// Labels of the info metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InfoLabels {
    /// Operator version.
    pub version: String,
    /// KEDA version deployed.
    pub keda_version: String,
    /// `kubernetes` or `openshift`.
    pub platform: String,
}

/// Labels of the certificate expiry metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabels {
    /// Secret holding the certificate.
    pub secret: String,
    /// Key in the Secret (`tls.crt`, `ca.crt`).
    pub key: String,
}

/// Every metric of the operator.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ResultLabel, Counter>,
    /// Failed reconciles by error category.
    pub reconcile_errors: Family<CategoryLabel, Counter>,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// Objects the operator manages for the installing KedaController.
    pub managed_objects: Gauge,
    /// Managed objects changed or deleted by someone else and restored, by kind.
    pub drift_corrections: Family<KindLabel, Counter>,
    /// 1 when a component's Deployment is available.
    pub component_ready: Family<ComponentLabel, Gauge>,
    /// 1 when the installing KedaController is Ready.
    pub ready: Gauge,
    /// Constant 1 with version labels.
    pub info: Family<InfoLabels, Gauge>,
    /// Expiry (Unix seconds) of the certificates KEDA uses.
    pub certificate_expiry: Family<CertificateLabels, Gauge<f64, AtomicU64>>,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciles = Family::<ResultLabel, Counter>::default();
        registry.register("keda_controller_reconcile", "Reconciles of KedaControllers, by result", reconciles.clone());
        let reconcile_errors = Family::<CategoryLabel, Counter>::default();
        registry.register(
            "keda_controller_reconcile_errors",
            "Failed reconciles, by error category",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        registry.register(
            "keda_controller_reconcile_duration_seconds",
            "Duration of a reconcile",
            reconcile_duration.clone(),
        );
        let managed_objects = Gauge::default();
        registry.register(
            "keda_controller_managed_objects",
            "Objects the operator manages for the installing KedaController",
            managed_objects.clone(),
        );
        let drift_corrections = Family::<KindLabel, Counter>::default();
        registry.register(
            "keda_controller_drift_corrections",
            "Managed objects changed or deleted by someone else and restored, by kind",
            drift_corrections.clone(),
        );
        let component_ready = Family::<ComponentLabel, Gauge>::default();
        registry.register(
            "keda_controller_component_ready",
            "1 when the KEDA component's Deployment is available",
            component_ready.clone(),
        );
        let ready = Gauge::default();
        registry.register("keda_controller_ready", "1 when the installing KedaController is Ready", ready.clone());
        let info = Family::<InfoLabels, Gauge>::default();
        registry.register("keda_controller_info", "Versions of the operator and of KEDA", info.clone());
        let certificate_expiry = Family::<CertificateLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "keda_controller_certificate_expiry_timestamp_seconds",
            "Expiry of the certificates KEDA's components use, as a Unix timestamp",
            certificate_expiry.clone(),
        );
        Metrics {
            registry,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            managed_objects,
            drift_corrections,
            component_ready,
            ready,
            info,
            certificate_expiry,
        }
    }

    /// Records the end of a reconcile.
    pub fn reconciled(&self, result: &str, error_category: Option<&str>, duration: Duration) {
        self.reconciles.get_or_create(&ResultLabel { result: result.into() }).inc();
        if let Some(category) = error_category {
            self.reconcile_errors.get_or_create(&CategoryLabel { category: category.into() }).inc();
        }
        self.reconcile_duration.observe(duration.as_secs_f64());
    }

    /// Sets the info metric (one series).
    pub fn set_info(&self, platform: &str) {
        self.info.clear();
        self.info
            .get_or_create(&InfoLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                keda_version: crate::render::KEDA_VERSION.into(),
                platform: platform.into(),
            })
            .set(1);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_match_the_documented_metrics() {
        let m = Metrics::new();
        m.reconciled("success", None, Duration::from_millis(12));
        m.reconciled("error", Some("apply"), Duration::from_millis(3));
        m.drift_corrections.get_or_create(&KindLabel { kind: "Deployment".into() }).inc();
        m.component_ready.get_or_create(&ComponentLabel { component: "operator".into() }).set(1);
        m.set_info("openshift");
        let text = m.encode().unwrap();
        for line in [
            "keda_controller_reconcile_total{result=\"success\"} 1",
            "keda_controller_reconcile_errors_total{category=\"apply\"} 1",
            "keda_controller_reconcile_duration_seconds_count 2",
            "keda_controller_drift_corrections_total{kind=\"Deployment\"} 1",
            "keda_controller_component_ready{component=\"operator\"} 1",
            "keda_controller_ready 0",
            "keda_controller_managed_objects 0",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("keda_controller_info{version=\""), "{text}");
        assert!(text.contains("platform=\"openshift\"} 1"), "{text}");
    }
}
