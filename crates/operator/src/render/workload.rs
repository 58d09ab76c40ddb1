//! The settings every component's Deployment takes from the KedaController (`WorkloadSpec`), plus the
//! component-specific changes render computes (flags, volumes, environment), applied in a fixed order:
//! template, then component changes, then the user's settings, which win.

use std::collections::BTreeMap;

use cma_api::{Component, KedaControllerSpec, WorkloadSpec};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::metadata::{self, Owner, Scope, own};
use super::{RenderError, args, images};

/// Annotation on the pod template carrying a digest of configuration read at start-up (CA bundles,
/// certificates, the audit policy): a change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "cma.keda.sh/config-hash";

/// What render adds to one component beyond its template, before the user's settings.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// Arguments set in order (see [`args::set`]).
    pub args: Vec<String>,
    /// Environment variables set by name.
    pub env: Vec<EnvVar>,
    /// Volumes replacing a template volume of the same name, or added.
    pub volumes: Vec<Volume>,
    /// Volume mounts replacing a template mount of the same name, or added.
    pub volume_mounts: Vec<VolumeMount>,
    /// Inputs of [`CONFIG_HASH_ANNOTATION`], by name.
    pub config: BTreeMap<String, String>,
}

/// The fully customised Deployment of `component`.
pub fn deployment(
    template: &Deployment,
    component: Component,
    spec: &KedaControllerSpec,
    image: &str,
    changes: Changes,
    owner: &Owner,
) -> Result<Deployment, RenderError> {
    let workload = spec.workload(component);
    let mut d = template.clone();
    let name = d.metadata.name.clone().unwrap_or_default();
    let missing =
        |what: &str| RenderError::Template(super::TemplateError::Inventory(format!("Deployment {name} has no {what}")));

    own(&mut d.metadata, owner, Scope::Install);
    metadata::merge(&mut d.metadata.labels, &workload.deployment_labels);
    metadata::merge(&mut d.metadata.annotations, &workload.deployment_annotations);

    let deployment_spec = d.spec.as_mut().ok_or_else(|| missing("spec"))?;
    deployment_spec.replicas = Some(workload.replicas.unwrap_or(1));
    let template_meta = deployment_spec.template.metadata.get_or_insert_with(ObjectMeta::default);
    pod_metadata(template_meta, owner, workload, &changes.config);

    let pod = deployment_spec.template.spec.as_mut().ok_or_else(|| missing("pod spec"))?;
    pod_settings(pod, workload, spec);
    let container = pod.containers.first_mut().ok_or_else(|| missing("container"))?;
    container_settings(container, workload, spec, image, &changes);
    volumes(pod, workload, changes);
    Ok(d)
}

fn pod_metadata(meta: &mut ObjectMeta, owner: &Owner, workload: &WorkloadSpec, config: &BTreeMap<String, String>) {
    // Ownership labels on pods let `oc get pods -l app.kubernetes.io/managed-by=cma-operator` find them.
    for (key, value) in owner.labels() {
        metadata::set(&mut meta.labels, key, &value);
    }
    metadata::merge(&mut meta.labels, &workload.pod_labels);
    metadata::merge(&mut meta.annotations, &workload.pod_annotations);
    if !config.is_empty() {
        metadata::set(&mut meta.annotations, CONFIG_HASH_ANNOTATION, &digest(config));
    }
}

fn pod_settings(pod: &mut PodSpec, workload: &WorkloadSpec, spec: &KedaControllerSpec) {
    metadata::merge(&mut pod.node_selector, &workload.node_selector);
    if !workload.tolerations.is_empty() {
        pod.tolerations = Some(workload.tolerations.clone());
    }
    if workload.affinity.is_some() {
        pod.affinity = workload.affinity.clone();
    }
    if !workload.priority_class_name.is_empty() {
        pod.priority_class_name = Some(workload.priority_class_name.clone());
    }
    if !workload.topology_spread_constraints.is_empty() {
        pod.topology_spread_constraints = Some(workload.topology_spread_constraints.clone());
    }
    if !spec.image_pull_secrets.is_empty() {
        pod.image_pull_secrets = Some(spec.image_pull_secrets.clone());
    }
}

fn container_settings(
    container: &mut Container,
    workload: &WorkloadSpec,
    spec: &KedaControllerSpec,
    image: &str,
    changes: &Changes,
) {
    container.image = Some(image.to_string());
    container.image_pull_policy = Some(images::pull_policy(image).to_string());
    if let Some(resources) = &workload.resources {
        container.resources = Some(resources.clone());
    }

    let env = container.env.get_or_insert_with(Vec::new);
    set_env(
        env,
        EnvVar { name: "WATCH_NAMESPACE".into(), value: Some(spec.watched_namespaces().join(",")), value_from: None },
    );
    for var in changes.env.iter().chain(&workload.env) {
        set_env(env, var.clone());
    }

    let list = container.args.get_or_insert_with(Vec::new);
    for arg in changes.args.iter().chain(&workload.args) {
        args::set(list, arg);
    }
}

/// Sets a variable by name: replaces it in place, or appends it.
fn set_env(env: &mut Vec<EnvVar>, var: EnvVar) {
    match env.iter_mut().find(|existing| existing.name == var.name) {
        Some(existing) => *existing = var,
        None => env.push(var),
    }
}

fn volumes(pod: &mut PodSpec, workload: &WorkloadSpec, changes: Changes) {
    let pod_volumes = pod.volumes.get_or_insert_with(Vec::new);
    for volume in changes.volumes {
        match pod_volumes.iter_mut().find(|v| v.name == volume.name) {
            Some(existing) => *existing = volume,
            None => pod_volumes.push(volume),
        }
    }
    pod_volumes.extend(workload.volumes.iter().cloned());

    // `deployment` checked the container exists; there is nothing to mount into otherwise.
    if let Some(container) = pod.containers.first_mut() {
        let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
        for mount in changes.volume_mounts {
            match mounts.iter_mut().find(|m| m.name == mount.name) {
                Some(existing) => *existing = mount,
                None => mounts.push(mount),
            }
        }
        mounts.extend(workload.volume_mounts.iter().cloned());
    }
}

/// A short, stable digest of named configuration inputs.
pub fn digest(inputs: &BTreeMap<String, String>) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (name, value) in inputs {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..16])
}
