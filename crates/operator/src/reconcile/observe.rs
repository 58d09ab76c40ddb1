//! Reads from the caches what render and status need: what each component reads at start-up (CA bundles,
//! certificates) and whether it is there yet, and the expiry of those certificates.
//!
//! A component's pod template carries a digest of what it reads at start-up, so a change rolls it. Every
//! input of that digest must be known before the Deployment's first apply, or the first write is followed
//! by a second one (and a second rollout) as soon as the input appears: on OpenShift the service-ca
//! operator issues the serving certificates and injects the CA bundle only after our Services and
//! ConfigMap exist, so a Deployment whose service-ca inputs are missing is held back until they appear.

use std::collections::BTreeMap;

use cma_api::{Component, KedaControllerSpec, names};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use sha2::{Digest, Sha256};

use crate::caches::Caches;
use crate::certs;
use crate::metrics::{CertificateLabels, Metrics};
use crate::platform::Platform;
use crate::render::Desired;
use crate::render::openshift::SERVICE_CA_KEY;

/// Content the operator's gRPC certificates were just written with (the cache may not hold it yet).
pub type Fresh<'a> = Option<&'a BTreeMap<String, ByteString>>;

/// What the components read at start-up, as observed now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inputs {
    /// Per component, a digest of everything it reads at start-up.
    pub hashes: BTreeMap<Component, String>,
    /// Per component, the inputs another controller (the service-ca operator) has not provided yet: its
    /// Deployment waits for them.
    pub waiting: BTreeMap<Component, Vec<String>>,
    /// Objects the KedaController names that do not exist (CA bundle ConfigMaps, the audit log claim).
    pub missing: Vec<String>,
}

impl Inputs {
    /// Takes the Deployments whose inputs are not there yet out of the apply set (they stay rendered, so
    /// prune keeps an existing one as it is); returns what each waits for.
    pub fn hold_back(&self, desired: &mut Desired) -> Vec<(Component, Vec<String>)> {
        desired.deployments.retain(|d| {
            let component = Component::of_deployment(&d.name_any());
            !component.is_some_and(|c| self.waiting.contains_key(&c))
        });
        self.waiting.iter().map(|(c, w)| (*c, w.clone())).collect()
    }
}

fn bytes_digest<'a>(entries: impl Iterator<Item = (&'a String, &'a [u8])>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in entries {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value);
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn config_map_digest(cm: &ConfigMap) -> String {
    let text = cm.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
    let binary = cm.binary_data.iter().flatten().map(|(k, v)| (k, v.0.as_slice()));
    bytes_digest(text.chain(binary))
}

fn data_digest(data: &BTreeMap<String, ByteString>) -> String {
    bytes_digest(data.iter().map(|(k, v)| (k, v.0.as_slice())))
}

/// Observes the inputs of every component.
pub fn inputs(
    spec: &KedaControllerSpec,
    platform: &Platform,
    caches: &Caches,
    namespace: &str,
    fresh: Fresh<'_>,
) -> Inputs {
    let mut lines: BTreeMap<Component, Vec<String>> = BTreeMap::new();
    let mut out = Inputs::default();
    let config_map = |name: &str| caches.managed.config_maps.named(Some(namespace), name);

    for name in &spec.operator.ca_config_maps {
        let digest = match config_map(name) {
            Some(cm) => config_map_digest(&cm),
            None => {
                out.missing.push(format!("ConfigMap {namespace}/{name} (spec.operator.caConfigMaps)"));
                "absent".into()
            }
        };
        lines.entry(Component::Operator).or_default().push(format!("configmap/{name}={digest}"));
    }
    if let Some(claim) = spec.metrics_server.audit_config.log_output_volume_claim.as_deref().filter(|c| !c.is_empty())
        && spec.metrics_server.audit_config.is_enabled()
        && caches.claim(namespace, claim).is_none()
    {
        out.missing.push(format!(
            "PersistentVolumeClaim {namespace}/{claim} (spec.metricsServer.auditConfig.logOutputVolumeClaim)"
        ));
    }

    if platform.is_openshift() {
        let ca_bundle = config_map(names::CA_BUNDLE_CONFIG_MAP);
        let injected =
            ca_bundle.as_ref().is_some_and(|cm| cm.data.as_ref().is_some_and(|d| d.contains_key(SERVICE_CA_KEY)));
        let ca_line = format!(
            "configmap/{}={}",
            names::CA_BUNDLE_CONFIG_MAP,
            ca_bundle.as_deref().map_or("absent".into(), config_map_digest)
        );
        let grpc = match fresh {
            Some(data) => data_digest(data),
            None => caches
                .secret(namespace, names::GRPC_CERTS_SECRET)
                .map_or("absent".into(), |s| data_digest(s.data.as_ref().unwrap_or(&BTreeMap::new()))),
        };
        for component in Component::ALL {
            let serving = component.serving_cert_secret();
            let secret = caches.secret(namespace, &serving);
            let entry = lines.entry(component).or_default();
            let waiting = out.waiting.entry(component).or_default();
            if secret.is_none() {
                waiting.push(format!("Secret {serving} (serving certificate)"));
            }
            entry.push(format!(
                "secret/{serving}={}",
                secret.map_or("absent".into(), |s| data_digest(s.data.as_ref().unwrap_or(&BTreeMap::new())))
            ));
            if component != Component::AdmissionWebhooks {
                if !injected {
                    waiting.push(format!("ConfigMap {} (service CA bundle)", names::CA_BUNDLE_CONFIG_MAP));
                }
                entry.push(ca_line.clone());
                entry.push(format!("secret/{}={grpc}", names::GRPC_CERTS_SECRET));
            }
        }
        out.waiting.retain(|_, w| !w.is_empty());
    }
    out.hashes = lines
        .into_iter()
        .map(|(component, lines)| (component, hex::encode(Sha256::digest(lines.join("\n").as_bytes()))))
        .collect();
    out
}

/// Publishes the expiry of the certificates KEDA's components use, so an alert fires before they lapse.
pub fn certificate_expiry(metrics: &Metrics, caches: &Caches, namespace: &str, platform: &Platform) {
    let mut secrets = vec![names::GRPC_CERTS_SECRET.to_string()];
    if platform.is_openshift() {
        secrets.extend(Component::ALL.map(|c| c.serving_cert_secret()));
    }
    metrics.certificate_expiry.clear();
    for name in secrets {
        let Some(secret) = caches.secret(namespace, &name) else {
            continue;
        };
        for key in [certs::TLS_CERT, certs::CA_CERT] {
            let Some(pem) = secret.data.as_ref().and_then(|d| d.get(key)) else {
                continue;
            };
            if let Some(expiry) = certs::not_after(&pem.0) {
                // Seconds since the epoch fit an f64 exactly for any certificate date.
                #[allow(clippy::cast_precision_loss)]
                let seconds = expiry.as_second() as f64;
                metrics
                    .certificate_expiry
                    .get_or_create(&CertificateLabels { secret: name.clone(), key: key.to_string() })
                    .set(seconds);
            }
        }
    }
}
