//! OpenShift: serving certificates from the service-ca operator, CA bundles injected by it.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::metadata::{self, Owner, Scope, own};

pub use cma_api::names::{CA_BUNDLE_CONFIG_MAP, GRPC_CERTS_SECRET, serving_cert_secret};

/// The key the service-ca operator injects its CA under.
pub const SERVICE_CA_KEY: &str = "service-ca.crt";
/// Annotation asking the service-ca operator for a serving certificate Secret.
pub const SERVING_CERT_ANNOTATION: &str = "service.beta.openshift.io/serving-cert-secret-name";
/// Annotation asking the service-ca operator to inject its CA bundle.
pub const INJECT_CA_BUNDLE_ANNOTATION: &str = "service.beta.openshift.io/inject-cabundle";

/// Asks for a serving certificate for the Service with this metadata.
pub fn request_serving_cert(meta: &mut ObjectMeta) {
    let service = meta.name.clone().unwrap_or_default();
    metadata::set(&mut meta.annotations, SERVING_CERT_ANNOTATION, &serving_cert_secret(&service));
}

/// Asks for the service-ca bundle to be injected into the object with this metadata.
pub fn request_ca_bundle(meta: &mut ObjectMeta) {
    metadata::set(&mut meta.annotations, INJECT_CA_BUNDLE_ANNOTATION, "true");
}

/// The ConfigMap the service-ca operator fills with its CA; its data is not ours, so it is not rendered.
pub fn ca_bundle_config_map(owner: &Owner) -> ConfigMap {
    let mut config_map = ConfigMap {
        metadata: ObjectMeta { name: Some(CA_BUNDLE_CONFIG_MAP.into()), ..ObjectMeta::default() },
        ..ConfigMap::default()
    };
    request_ca_bundle(&mut config_map.metadata);
    own(&mut config_map.metadata, owner, Scope::Install);
    config_map
}
