//! Render: a KedaController and the platform facts in, every object of a KEDA installation out.
//!
//! Pure and deterministic: no client, no clock, no environment (the caller reads those and passes them in
//! [`RenderContext`]). Rendered from the pristine templates every time, so removing a field from the CR
//! removes its effect.

pub mod args;
pub mod components;
pub mod images;
pub mod metadata;
pub mod monitoring;
pub mod monitoring_types;
pub mod network_policy;
pub mod openshift;
pub mod proxy;
pub mod templates;
pub mod workload;

use std::collections::BTreeMap;

use cma_api::{Component, KedaController, Valid, ValidationErrors};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::Subject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub use images::ImageOverrides;
pub use metadata::Owner;
pub use templates::{KEDA_VERSION, TemplateError};

use crate::platform::Platform;
use metadata::{Scope, own};
use templates::Templates;

/// Everything render needs besides the KedaController.
#[derive(Clone, Debug, Default)]
pub struct RenderContext {
    /// The cluster's flavour and TLS profile.
    pub platform: Platform,
    /// Image overrides from the operator's environment.
    pub images: ImageOverrides,
    /// Digests of cluster content each component reads at start-up (CA bundles, certificates), computed by
    /// the controller; a change rolls that component's pods.
    pub config_hashes: BTreeMap<Component, String>,
    /// The namespace this operator runs in; `None` (offline) means the KedaController's namespace.
    pub operator_namespace: Option<String>,
    /// The cluster proxy variables from the operator's environment, passed on to KEDA's containers.
    pub proxy: Vec<k8s_openapi::api::core::v1::EnvVar>,
    /// The CA (PEM) of the running operator's self-issued `/metrics` certificate; `None` offline.
    pub metrics_ca: Option<String>,
}

impl RenderContext {
    /// A context for offline rendering: the platform's defaults, no overrides, nothing observed.
    pub fn offline(platform: Platform) -> Self {
        RenderContext { platform, ..RenderContext::default() }
    }
}

/// Why a KedaController could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The spec breaks the API's rules; nothing is rendered.
    #[error("invalid KedaController:\n{0}")]
    Invalid(ValidationErrors),
    /// The KedaController has no name or namespace.
    #[error("the KedaController has no {0}")]
    Identity(&'static str),
    /// The embedded templates are unusable (a packaging bug).
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A generated document could not be serialized.
    #[error("could not serialize {what}: {message}")]
    Serialize {
        /// What was being serialized.
        what: String,
        /// Serializer message.
        message: String,
    },
}

macro_rules! desired {
    ($($field:ident: $ty:ty => $order:ident,)*) => {
        /// Every object of one KEDA installation, by kind: one field per managed kind of
        /// [`crate::kinds::managed_kinds`], which also generates every consumer (apply, prune, caches).
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Desired {
            $(
                #[doc = concat!("The rendered `", stringify!($field), "`.")]
                pub $field: Vec<$ty>,
            )*
        }

        impl Desired {
            /// Every object as JSON, in apply order (see [`crate::kinds`]): Services, everything independent,
            /// then what needs the Services.
            pub fn to_values(&self) -> Result<Vec<Value>, RenderError> {
                let mut out = Vec::new();
                for order in ["services", "independent", "after_services"] {
                    $(
                        if stringify!($order) == order {
                            push_all(&mut out, &self.$field)?;
                        }
                    )*
                }
                Ok(out)
            }

            /// How many objects there are.
            pub fn len(&self) -> usize {
                0 $(+ self.$field.len())*
            }

            /// Whether there is none.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}
crate::kinds::managed_kinds!(desired);

fn push_all<T: serde::Serialize>(out: &mut Vec<Value>, objects: &[T]) -> Result<(), RenderError> {
    for object in objects {
        out.push(
            serde_json::to_value(object)
                .map_err(|e| RenderError::Serialize { what: "a rendered object".into(), message: e.to_string() })?,
        );
    }
    Ok(())
}

/// Renders a KEDA installation for a validated KedaController.
pub fn render(kc: Valid<'_>, ctx: &RenderContext) -> Result<Desired, RenderError> {
    let kc: &KedaController = &kc;
    let namespace =
        kc.metadata.namespace.as_deref().filter(|ns| !ns.is_empty()).ok_or(RenderError::Identity("namespace"))?;
    let name = kc.metadata.name.as_deref().filter(|n| !n.is_empty()).ok_or(RenderError::Identity("name"))?;
    let owner = Owner::of(kc, namespace, name);
    let t = templates::templates()?;
    let spec = &kc.spec;
    let mut desired = Desired::default();

    general(&mut desired, t, kc, &owner);
    let operator_changes = components::operator(spec, ctx);
    let (metrics_changes, audit_policy) = components::metrics_server(spec, ctx, &owner)?;
    let webhook_changes = components::admission_webhooks(spec, ctx);
    desired.config_maps.extend(audit_policy);

    let deployments = [
        (Component::Operator, &t.operator_deployment, operator_changes),
        (Component::MetricsServer, &t.metrics_deployment, metrics_changes),
        (Component::AdmissionWebhooks, &t.webhooks_deployment, webhook_changes),
    ];
    for (component, template, changes) in deployments {
        let image = image(kc, ctx, component, template);
        let deployment = workload::deployment(template, component, spec, &image, changes, &owner)?;
        if let Some(pdb) = disruption_budget(&deployment, component, &owner) {
            desired.pod_disruption_budgets.push(pdb);
        }
        desired.deployments.push(deployment);
    }

    services(&mut desired, t, &owner, ctx);
    api_registrations(&mut desired, t, &owner, ctx);
    if ctx.platform.is_openshift() {
        desired.config_maps.push(openshift::ca_bundle_config_map(&owner));
    }
    if spec.network_policy.is_enabled() {
        desired.network_policies = network_policy::render(spec, ctx, &owner);
        desired.network_policies.extend(network_policy::operator(spec, ctx, &owner));
    }
    let monitoring = monitoring::render(spec, ctx, &owner)?;
    desired.service_monitors = monitoring.service_monitors;
    desired.prometheus_rules = monitoring.prometheus_rules;
    desired.services.extend(monitoring.services);
    desired.config_maps.extend(monitoring.config_maps);
    Ok(desired)
}

/// The image of a component: the CR's override, the environment's, or the template's pinned default.
fn image(kc: &KedaController, ctx: &RenderContext, component: Component, template: &Deployment) -> String {
    kc.spec
        .workload(component)
        .image
        .as_deref()
        .or_else(|| ctx.images.get(component))
        .or_else(|| Templates::default_image(template))
        .unwrap_or_default()
        .to_string()
}

/// The certificate Secret and the kube-system RoleBinding of the metrics server. KEDA's ServiceAccounts and
/// permissions are static (installed with the operator, see manifests/keda-2.20/rbac.yaml): the operator
/// grants nothing.
fn general(desired: &mut Desired, t: &Templates, _kc: &KedaController, owner: &Owner) {
    let mut secret = t.certs_secret.clone();
    own(&mut secret.metadata, owner, Scope::Install);
    desired.secrets.push(secret);

    // extension-apiserver-authentication-reader exists only in kube-system: the binding must live there.
    let mut binding = t.auth_reader_binding.clone();
    own(&mut binding.metadata, owner, Scope::Namespace(cma_api::names::KUBE_SYSTEM));
    point_subjects_at(&mut binding.subjects, &owner.namespace);
    desired.role_bindings.push(binding);
}

/// ServiceAccount subjects without a namespace are ours: they live in the install namespace. Subjects
/// naming another namespace (the HPA controller's in kube-system) are left alone.
fn point_subjects_at(subjects: &mut Option<Vec<Subject>>, namespace: &str) {
    for subject in subjects.iter_mut().flatten() {
        if subject.kind == "ServiceAccount" && subject.namespace.as_deref().is_none_or(str::is_empty) {
            subject.namespace = Some(namespace.to_string());
        }
    }
}

fn services(desired: &mut Desired, t: &Templates, owner: &Owner, ctx: &RenderContext) {
    for template in [&t.operator_service, &t.metrics_service, &t.webhooks_service] {
        let mut service = template.clone();
        own(&mut service.metadata, owner, Scope::Install);
        if ctx.platform.is_openshift() {
            openshift::request_serving_cert(&mut service.metadata);
        }
        desired.services.push(service);
    }
}

/// The APIService and the webhook configuration, pointing at the Services in the install namespace. Their
/// `caBundle` is not rendered: KEDA's certificate rotation or the service-ca operator fills it.
fn api_registrations(desired: &mut Desired, t: &Templates, owner: &Owner, ctx: &RenderContext) {
    let mut api_service = t.api_service.clone();
    own(&mut api_service.metadata, owner, Scope::Cluster);
    if let Some(service) = api_service.spec.as_mut().and_then(|s| s.service.as_mut()) {
        service.namespace = Some(owner.namespace.clone());
    }
    let mut webhooks = t.webhook_configuration.clone();
    own(&mut webhooks.metadata, owner, Scope::Cluster);
    for webhook in webhooks.webhooks.iter_mut().flatten() {
        if let Some(service) = webhook.client_config.service.as_mut() {
            service.namespace = owner.namespace.clone();
        }
    }
    if ctx.platform.is_openshift() {
        openshift::request_ca_bundle(&mut api_service.metadata);
        openshift::request_ca_bundle(&mut webhooks.metadata);
    }
    desired.api_services.push(api_service);
    desired.validating_webhook_configurations.push(webhooks);
}

/// With more than one replica, keep one pod through voluntary disruptions (node drains); unhealthy pods may
/// always be evicted so a broken rollout never blocks a drain.
fn disruption_budget(deployment: &Deployment, component: Component, owner: &Owner) -> Option<PodDisruptionBudget> {
    let replicas = deployment.spec.as_ref()?.replicas?;
    if replicas < 2 {
        return None;
    }
    let (key, value) = cma_api::labels::selector(component);
    let mut pdb = PodDisruptionBudget {
        metadata: ObjectMeta { name: deployment.metadata.name.clone(), ..ObjectMeta::default() },
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
                match_expressions: None,
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            max_unavailable: None,
        }),
        status: None,
    };
    own(&mut pdb.metadata, owner, Scope::Install);
    Some(pdb)
}
