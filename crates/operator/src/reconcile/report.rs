//! What a reconcile tells the people and the monitoring watching it: the KedaController's status, Events
//! for transitions (installed, upgraded, updated, drift reverted, degraded, ready), the gauges of
//! `/metrics`, and the [`Report`] behind the reconcile's log line.

use cma_api::{Component, KedaController, KedaControllerStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::apply::{WriteError, Written};
use super::errors::Error;
use super::status::{Outcome, condition};
use super::{monitoring_label, observe, prune, status};
use crate::context::Context;
use crate::events::Severity;
use crate::metrics::{ComponentLabel, KindLabel};
use crate::platform::Platform;
use crate::render::Owner;

/// What one reconcile did, for the log line and metrics.
pub struct Report {
    /// When to run again.
    pub action: Action,
    /// The result label (`success`, `invalid`, `ignored`, ...).
    pub result: &'static str,
    /// How many objects were written.
    pub applied: usize,
    /// How many objects were deleted.
    pub pruned: usize,
}

impl Report {
    /// A reconcile that wrote no object and waits for the next change.
    pub fn quiet(result: &'static str) -> Self {
        Report { action: Action::await_change(), result, applied: 0, pruned: 0 }
    }
}

/// After a complete apply and prune: the status, its transitions' events, the namespace's monitoring
/// label (OpenShift), the gauges.
pub async fn applied(
    kc: &KedaController,
    ctx: &Context,
    owner: &Owner,
    platform: &Platform,
    outcome: Outcome,
    written: &[Written],
    now: Timestamp,
) -> Result<(), Error> {
    let namespace = owner.namespace.as_str();
    let status = status::from_cluster(kc, &ctx.caches, namespace, &outcome, written, now);
    transitions(kc, ctx, kc.status.as_ref(), &status, written, now).await;
    if platform.is_openshift() && platform.monitoring && kc.spec.monitoring.is_enabled() {
        monitoring_label::ensure(kc, ctx, namespace).await;
    }
    status::write(&ctx.client, kc, status.clone()).await?;
    gauges(ctx, owner, &status);
    observe::certificate_expiry(&ctx.metrics, &ctx.caches, namespace, platform);
    Ok(())
}

/// A reconcile that applied nothing (more): the status and events say why.
pub async fn stopped(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    outcome: Outcome,
    now: Timestamp,
) -> Result<Report, Error> {
    let result = outcome.result();
    let status = status::from_cluster(kc, &ctx.caches, namespace, &outcome, &[], now);
    transitions(kc, ctx, kc.status.as_ref(), &status, &[], now).await;
    ctx.metrics.ready.set(0);
    status::write(&ctx.client, kc, status).await?;
    Ok(Report::quiet(result))
}

/// Apply or prune failed on named objects: the status says so, and the reconcile is retried with backoff.
pub async fn failed(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    errors: Vec<WriteError>,
    now: Timestamp,
) -> Result<Report, Error> {
    let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    stopped(kc, ctx, namespace, Outcome::Failed(message), now).await?;
    Err(Error::Write(errors))
}

fn condition_of<'a>(status: Option<&'a KedaControllerStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// `Kind name, Kind name (changed by x)`.
fn list(written: &[&Written]) -> String {
    written.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Publishes the events for what changed between `previous` and `status`, and for what was written.
pub async fn transitions(
    kc: &KedaController,
    ctx: &Context,
    previous: Option<&KedaControllerStatus>,
    status: &KedaControllerStatus,
    written: &[Written],
    now: Timestamp,
) {
    let namespace = kc.namespace().unwrap_or_default();
    let publish = |severity, reason: &'static str, note: String| async move {
        ctx.events.publish(kc, severity, reason, &note, now).await;
    };
    match (previous.and_then(|p| p.version.as_deref()), status.version.as_deref()) {
        (None, Some(version)) => {
            publish(
                Severity::Normal,
                "Installed",
                format!("KEDA {version} is installed and running in namespace '{namespace}'"),
            )
            .await;
        }
        (Some(before), Some(after)) if before != after => {
            publish(
                Severity::Normal,
                "Upgraded",
                format!("KEDA upgraded from {before} to {after} in namespace '{namespace}'"),
            )
            .await;
        }
        _ => {}
    }
    let (drift, changes): (Vec<&Written>, Vec<&Written>) = written.iter().partition(|w| w.cause.is_drift());
    if !changes.is_empty() {
        let note = format!(
            "applied generation {}: {} object{} written: {}",
            kc.metadata.generation.unwrap_or(0),
            changes.len(),
            if changes.len() == 1 { "" } else { "s" },
            list(&changes)
        );
        publish(Severity::Normal, "Updated", note).await;
    }
    if !drift.is_empty() {
        for w in &drift {
            ctx.metrics.drift_corrections.get_or_create(&KindLabel { kind: w.kind.clone() }).inc();
        }
        let objects = list(&drift);
        tracing::warn!(kedacontroller = %format!("{namespace}/{}", kc.name_any()), objects = %objects, "reverted changes made outside the operator");
        let note = format!(
            "restored {} object{} changed or deleted outside the operator: {objects}",
            drift.len(),
            if drift.len() == 1 { "" } else { "s" }
        );
        publish(Severity::Warning, "DriftReverted", note).await;
    }
    let was = |t| condition_of(previous, t).map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()));
    let now_ = |t| condition_of(Some(status), t).map(|c| (c.status.as_str(), c.reason.as_str(), c.message.as_str()));
    if let Some(("True", reason, message)) = now_(condition::DEGRADED)
        && was(condition::DEGRADED) != now_(condition::DEGRADED)
    {
        ctx.events.publish(kc, Severity::Warning, reason, message, now).await;
    }
    if let Some(("True", _, message)) = now_(condition::READY)
        && was(condition::READY).map(|w| w.0) != Some("True")
    {
        publish(Severity::Normal, "Ready", message.to_string()).await;
    }
}

/// Sets the gauges from the status and the caches.
pub fn gauges(ctx: &Context, owner: &Owner, status: &KedaControllerStatus) {
    let managed = prune::count_owned(&ctx.caches.managed, owner);
    ctx.metrics.managed_objects.set(i64::try_from(managed).unwrap_or(i64::MAX));
    for component in &status.components {
        ctx.metrics
            .component_ready
            .get_or_create(&ComponentLabel { component: component.name.clone() })
            .set(i64::from(component.ready));
    }
    let ready = condition_of(Some(status), condition::READY).is_some_and(|c| c.status == "True");
    ctx.metrics.ready.set(i64::from(ready));
}

/// Resets the gauges after an uninstall.
pub fn uninstalled(ctx: &Context) {
    ctx.metrics.managed_objects.set(0);
    ctx.metrics.ready.set(0);
    for component in Component::ALL {
        ctx.metrics.component_ready.get_or_create(&ComponentLabel { component: component.field().into() }).set(0);
    }
}
