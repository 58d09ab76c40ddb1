//! Reads from the caches what render and status need: digests of the CA bundles and certificates the
//! components read at start-up, and the expiry of those certificates.

use std::collections::BTreeMap;

use cma_api::{Component, KedaControllerSpec};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{ObjectRef, Store};
use sha2::{Digest, Sha256};

use crate::certs;
use crate::controller::caches::Caches;
use crate::metrics::{CertificateLabels, Metrics};
use crate::platform::Platform;
use crate::render::openshift::{CA_BUNDLE_CONFIG_MAP, GRPC_CERTS_SECRET, serving_cert_secret};

/// Content the operator's gRPC certificates were just written with (the cache may not hold it yet).
pub type Fresh<'a> = Option<&'a BTreeMap<String, ByteString>>;

fn config_map_digest(store: &Store<ConfigMap>, namespace: &str, name: &str) -> String {
    let Some(cm) = store.get(&ObjectRef::new(name).within(namespace)) else {
        return "absent".into();
    };
    let mut hasher = Sha256::new();
    for (key, value) in cm.data.iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    for (key, value) in cm.binary_data.iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([1]);
        hasher.update(&value.0);
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn data_digest(data: &BTreeMap<String, ByteString>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in data {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(&value.0);
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn secret_digest(caches: &Caches, namespace: &str, name: &str, fresh: Fresh<'_>) -> String {
    if name == GRPC_CERTS_SECRET
        && let Some(data) = fresh
    {
        return data_digest(data);
    }
    match caches.secret(namespace, name) {
        Some(secret) => data_digest(secret.data.as_ref().unwrap_or(&BTreeMap::new())),
        None => "absent".into(),
    }
}

/// Per component, a digest of what it reads at start-up from ConfigMaps and Secrets it does not own:
/// custom CA bundles everywhere; on OpenShift also the service CA, the service-ca serving certificates and
/// the gRPC certificates. A change of digest rolls the component.
pub fn config_hashes(
    spec: &KedaControllerSpec,
    platform: &Platform,
    caches: &Caches,
    namespace: &str,
    fresh: Fresh<'_>,
) -> BTreeMap<Component, String> {
    let mut inputs: BTreeMap<Component, Vec<String>> = BTreeMap::new();
    let cm = |name: &str| format!("configmap/{name}={}", config_map_digest(&caches.config_maps, namespace, name));
    let secret = |name: &str| format!("secret/{name}={}", secret_digest(caches, namespace, name, fresh));
    for name in &spec.operator.ca_config_maps {
        inputs.entry(Component::Operator).or_default().push(cm(name));
    }
    if platform.is_openshift() {
        let operator = inputs.entry(Component::Operator).or_default();
        operator.push(cm(CA_BUNDLE_CONFIG_MAP));
        operator.push(secret(GRPC_CERTS_SECRET));
        operator.push(secret(&serving_cert_secret("keda-operator")));
        inputs.entry(Component::MetricsServer).or_default().extend([
            cm(CA_BUNDLE_CONFIG_MAP),
            secret(GRPC_CERTS_SECRET),
            secret(&serving_cert_secret("keda-metrics-apiserver")),
        ]);
        inputs
            .entry(Component::AdmissionWebhooks)
            .or_default()
            .push(secret(&serving_cert_secret("keda-admission-webhooks")));
    }
    inputs
        .into_iter()
        .map(|(component, lines)| {
            let digest = hex::encode(Sha256::digest(lines.join("\n").as_bytes()));
            (component, digest)
        })
        .collect()
}

/// Publishes the expiry of the certificates KEDA's components use, so an alert fires before they lapse.
pub fn certificate_expiry(metrics: &Metrics, caches: &Caches, namespace: &str, platform: &Platform) {
    let mut names = vec![GRPC_CERTS_SECRET.to_string()];
    if platform.is_openshift() {
        names.extend(["keda-operator", "keda-metrics-apiserver", "keda-admission-webhooks"].map(serving_cert_secret));
    }
    metrics.certificate_expiry.clear();
    for name in names {
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
