//! The KEDA component templates under `manifests/keda-<minor>/`, embedded at build time and parsed once.
//!
//! The parsed templates are never mutated: render clones what it customises, so every reconcile starts
//! from the same pristine objects.

use std::sync::LazyLock;

use cma_api::Component::{self, AdmissionWebhooks, MetricsServer, Operator};
use cma_api::names;
use cma_api::yaml::{Budget, Limits};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The KEDA version the embedded templates deploy.
pub const KEDA_VERSION: &str = "2.20.2";

/// The template files of [`KEDA_VERSION`], with their names for error messages.
const FILES: [(&str, &str); 3] = [
    ("operator.yaml", include_str!("../../../../manifests/keda-2.20/operator.yaml")),
    ("metrics-apiserver.yaml", include_str!("../../../../manifests/keda-2.20/metrics-apiserver.yaml")),
    ("admission-webhooks.yaml", include_str!("../../../../manifests/keda-2.20/admission-webhooks.yaml")),
];

/// Why the embedded templates could not be used (a packaging bug; a unit test parses them).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TemplateError {
    /// A file is not valid YAML.
    #[error("template {file}: {message}")]
    Parse {
        /// Template file.
        file: &'static str,
        /// Parser message.
        message: String,
    },
    /// An object is not of the shape its kind requires.
    #[error("template {file}: {kind} {name}: {message}")]
    Shape {
        /// Template file.
        file: &'static str,
        /// Object kind.
        kind: String,
        /// Object name.
        name: String,
        /// Deserializer message.
        message: String,
    },
    /// An object the templates must hold is missing, or one is there twice, or one is unexpected.
    #[error("templates for KEDA {KEDA_VERSION}: {0}")]
    Inventory(String),
}

/// Every object of one KEDA release, by role.
#[derive(Clone, Debug)]
pub struct Templates {
    /// Secret `kedaorg-certs`, the gRPC certificates.
    pub certs_secret: Secret,
    /// Service `keda-operator`.
    pub operator_service: Service,
    /// Deployment `keda-operator`.
    pub operator_deployment: Deployment,
    /// RoleBinding `keda-auth-reader` in kube-system.
    pub auth_reader_binding: RoleBinding,
    /// Service `keda-metrics-apiserver`.
    pub metrics_service: Service,
    /// Deployment `keda-metrics-apiserver`.
    pub metrics_deployment: Deployment,
    /// APIService `v1beta1.external.metrics.k8s.io`.
    pub api_service: APIService,
    /// Service `keda-admission-webhooks`.
    pub webhooks_service: Service,
    /// Deployment `keda-admission`.
    pub webhooks_deployment: Deployment,
    /// ValidatingWebhookConfiguration `keda-admission`.
    pub webhook_configuration: ValidatingWebhookConfiguration,
}

static TEMPLATES: LazyLock<Result<Templates, TemplateError>> = LazyLock::new(|| Templates::parse(&FILES));

/// The parsed templates of [`KEDA_VERSION`].
pub fn templates() -> Result<&'static Templates, TemplateError> {
    TEMPLATES.as_ref().map_err(Clone::clone)
}

/// Objects read from the files, taken out one by one by kind and name.
struct Inventory {
    objects: Vec<(&'static str, String, String, Value)>,
}

impl Inventory {
    fn take<T: DeserializeOwned>(&mut self, kind: &str, name: &str) -> Result<T, TemplateError> {
        let matching: Vec<usize> = self
            .objects
            .iter()
            .enumerate()
            .filter(|(_, (_, k, n, _))| k == kind && n == name)
            .map(|(i, _)| i)
            .collect();
        match matching.as_slice() {
            [index] => {
                let (file, kind, name, value) = self.objects.swap_remove(*index);
                serde_json::from_value(value).map_err(|e| TemplateError::Shape {
                    file,
                    kind,
                    name,
                    message: e.to_string(),
                })
            }
            [] => Err(TemplateError::Inventory(format!("{kind} {name} is missing"))),
            _ => Err(TemplateError::Inventory(format!("{kind} {name} appears more than once"))),
        }
    }
}

impl Templates {
    fn parse(files: &[(&'static str, &'static str)]) -> Result<Self, TemplateError> {
        let mut objects = Vec::new();
        // Our own files, built into the binary: trusted, but read like every other YAML, within a manifest
        // file's limits shared by the whole set.
        let mut budget = Budget::new(Limits::MANIFEST);
        for (file, text) in files {
            let documents: Vec<Value> =
                budget.documents(text).map_err(|e| TemplateError::Parse { file, message: e.to_string() })?;
            for value in documents {
                if value.is_null() {
                    continue;
                }
                let kind = value["kind"].as_str().unwrap_or_default().to_string();
                let name = value["metadata"]["name"].as_str().unwrap_or_default().to_string();
                objects.push((*file, kind, name, value));
            }
        }
        let mut inv = Inventory { objects };
        let templates = Templates {
            certs_secret: inv.take("Secret", names::GRPC_CERTS_SECRET)?,
            operator_service: inv.take("Service", Operator.service_name())?,
            operator_deployment: inv.take("Deployment", Operator.deployment_name())?,
            auth_reader_binding: inv.take("RoleBinding", names::AUTH_READER_BINDING)?,
            metrics_service: inv.take("Service", MetricsServer.service_name())?,
            metrics_deployment: inv.take("Deployment", MetricsServer.deployment_name())?,
            api_service: inv.take("APIService", names::API_SERVICE)?,
            webhooks_service: inv.take("Service", AdmissionWebhooks.service_name())?,
            webhooks_deployment: inv.take("Deployment", AdmissionWebhooks.deployment_name())?,
            webhook_configuration: inv.take("ValidatingWebhookConfiguration", names::WEBHOOK_CONFIGURATION)?,
        };
        if let Some((file, kind, name, _)) = inv.objects.first() {
            return Err(TemplateError::Inventory(format!("{file} holds {kind} {name}, which render does not use")));
        }
        Ok(templates)
    }

    /// A component's Deployment template.
    pub fn deployment(&self, component: Component) -> &Deployment {
        match component {
            Component::Operator => &self.operator_deployment,
            Component::MetricsServer => &self.metrics_deployment,
            Component::AdmissionWebhooks => &self.webhooks_deployment,
        }
    }

    /// The image a Deployment template pins, if any.
    pub fn default_image(deployment: &Deployment) -> Option<&str> {
        deployment.spec.as_ref()?.template.spec.as_ref()?.containers.first()?.image.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_templates_parse_into_every_role() {
        let t = templates().unwrap();
        assert_eq!(t.operator_deployment.metadata.name.as_deref(), Some("keda-operator"));
        assert_eq!(t.webhook_configuration.webhooks.as_ref().map(Vec::len), Some(6));
        assert_eq!(Templates::default_image(&t.operator_deployment), Some("ghcr.io/kedacore/keda:2.20.2"));
    }

    #[test]
    fn an_unexpected_object_is_refused() {
        let extra = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n";
        let mut files: Vec<(&'static str, &'static str)> = FILES.to_vec();
        files.push(("extra.yaml", extra));
        let err = Templates::parse(&files).unwrap_err();
        assert!(err.to_string().contains("ConfigMap stray"), "{err}");
    }

    #[test]
    fn a_missing_object_is_named() {
        let files: Vec<(&'static str, &'static str)> = FILES[..2].to_vec();
        let err = Templates::parse(&files).unwrap_err();
        assert!(err.to_string().contains("Service keda-admission-webhooks is missing"), "{err}");
    }
}
