//! On OpenShift the cluster Prometheus only reads namespaces labelled for cluster monitoring, and only
//! `openshift-*` namespaces may carry the label. OperatorHub adds it on install into the suggested
//! namespace; CLI and GitOps installs do not. Checked once per process: the label is added when RBAC
//! allows it, otherwise a Warning event tells the admin the command to run.

use std::sync::atomic::Ordering;

use cma_api::KedaController;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::errors::describe;
use crate::context::Context;
use crate::events::Severity;

/// The label that lets the cluster Prometheus pick up the namespace's ServiceMonitors and PrometheusRules.
pub const CLUSTER_MONITORING_LABEL: &str = "openshift.io/cluster-monitoring";

/// Labels the install namespace for cluster monitoring, or tells the admin how.
pub async fn ensure(kc: &KedaController, ctx: &Context, namespace: &str) {
    if ctx.namespace_label_checked.swap(true, Ordering::Relaxed) {
        return;
    }
    let now = (ctx.clock)();
    let warn = |note: String| async move {
        ctx.events.publish(kc, Severity::Warning, "MonitoringNotCollected", &note, now).await;
    };
    if !namespace.starts_with("openshift-") {
        warn(format!(
            "namespace '{namespace}' is not an openshift-* namespace, so the cluster monitoring stack does not scrape it; enable monitoring for user-defined projects to collect KEDA's metrics"
        ))
        .await;
        return;
    }
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    let labelled = match api.get(namespace).await {
        Ok(ns) => {
            ns.metadata.labels.as_ref().and_then(|l| l.get(CLUSTER_MONITORING_LABEL)).map(String::as_str)
                == Some("true")
        }
        Err(e) => {
            tracing::info!(error = %describe(&e), namespace, "cannot read the namespace to check its cluster-monitoring label");
            false
        }
    };
    if labelled {
        return;
    }
    let patch = json!({"metadata": {"labels": {CLUSTER_MONITORING_LABEL: "true"}}});
    match api.patch(namespace, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => {
            tracing::info!(namespace, "labelled the namespace for cluster monitoring");
            let note = format!("labelled namespace '{namespace}' {CLUSTER_MONITORING_LABEL}=true");
            ctx.events.publish(kc, Severity::Normal, "MonitoringEnabled", &note, now).await;
        }
        Err(e) => {
            tracing::warn!(error = %describe(&e), namespace, "cannot label the namespace for cluster monitoring");
            warn(format!(
                "the cluster monitoring stack will not scrape KEDA until the namespace is labelled: oc label namespace {namespace} {CLUSTER_MONITORING_LABEL}=true"
            ))
            .await;
        }
    }
}
