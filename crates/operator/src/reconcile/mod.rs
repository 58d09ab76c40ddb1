//! One reconcile of a KedaController, top to bottom: identity (only `keda` in the operator's namespace
//! installs), finalizer, synced caches, validation, ownership, certificates, render, apply, prune, status,
//! events. Apply, prune and status are the only writes.

pub mod apply;
pub mod compare;
pub mod observe;
pub mod ownership;
pub mod status;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cma_api::{Component, KedaController, KedaControllerStatus};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use self::apply::{Touched, WriteError};
use self::status::{Observed, Outcome, condition};
use crate::certs::{self, CertError, Plan};
use crate::controller::context::Context;
use crate::render::openshift::GRPC_CERTS_SECRET;
use crate::render::{Owner, RenderContext, RenderError, render};

/// The finalizer, named as the Go operators name it so CRs they created can be taken over and deleted.
pub const FINALIZER: &str = "finalizer.kedacontroller.keda.sh";

/// Field manager of the gRPC certificate data (separate from the rendered objects' manager).
pub const CERTS_FIELD_MANAGER: &str = "cma-operator-certs";

/// Why a reconcile failed; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The watches have not completed their first list.
    #[error("the watches did not sync within {0:?}")]
    NotSynced(Duration),
    /// Objects could not be applied or deleted.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Write(Vec<WriteError>),
    /// Render failed (after validation passed: a packaging bug).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// An API call other than apply/prune failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done.
        action: String,
        /// The API error.
        source: kube::Error,
    },
    /// Certificates could not be issued.
    #[error(transparent)]
    Certificates(#[from] CertError),
}

impl Error {
    /// A short category, used as a metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::NotSynced(_) => "sync",
            Error::Write(_) => "apply",
            Error::Render(_) => "render",
            Error::Api { .. } => "api",
            Error::Certificates(_) => "certificates",
        }
    }
}

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Api { action, source }
}

/// What one reconcile did, for the log line and metrics.
struct Report {
    action: Action,
    result: &'static str,
    applied: usize,
    pruned: usize,
}

impl Report {
    fn quiet(result: &'static str) -> Self {
        Report { action: Action::await_change(), result, applied: 0, pruned: 0 }
    }
}

/// Reconciles one KedaController (the controller's reconciler).
pub async fn reconcile(kc: Arc<KedaController>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = format!("{}/{}", kc.namespace().unwrap_or_default(), kc.name_any());
    let result = run(&kc, &ctx).await;
    let elapsed = started.elapsed();
    match &result {
        Ok(report) => {
            ctx.succeeded(&key);
            ctx.metrics.reconciled(report.result, None, elapsed);
            tracing::info!(
                kedacontroller = %key,
                result = report.result,
                applied = report.applied,
                pruned = report.pruned,
                duration_ms = elapsed.as_millis() as u64,
                "reconciled"
            );
        }
        Err(error) => {
            ctx.metrics.reconciled("error", Some(error.category()), elapsed);
            tracing::warn!(
                kedacontroller = %key,
                category = error.category(),
                error = %error,
                duration_ms = elapsed.as_millis() as u64,
                "reconcile failed; retrying with backoff"
            );
        }
    }
    result.map(|r| r.action)
}

/// Retry policy: exponential backoff per KedaController, 1 s to 5 min.
pub fn error_policy(kc: Arc<KedaController>, _error: &Error, ctx: Arc<Context>) -> Action {
    let key = format!("{}/{}", kc.namespace().unwrap_or_default(), kc.name_any());
    Action::requeue(ctx.next_backoff(&key))
}

fn has_finalizer(kc: &KedaController) -> bool {
    kc.finalizers().iter().any(|f| f == FINALIZER)
}

async fn run(kc: &KedaController, ctx: &Context) -> Result<Report, Error> {
    let Some(namespace) = kc.namespace() else {
        return Ok(Report::quiet("ignored"));
    };
    let install = ctx.scope.install_ref();
    if namespace != install.namespace.as_deref().unwrap_or_default() || kc.name_any() != install.name {
        return ignore(kc, ctx, &namespace).await;
    }
    if kc.metadata.deletion_timestamp.is_some() {
        if has_finalizer(kc) {
            let removed = uninstall(kc, ctx, &namespace).await?;
            set_finalizers(kc, ctx, kc.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect()).await?;
            return Ok(Report { action: Action::await_change(), result: "uninstalled", applied: 0, pruned: removed });
        }
        return Ok(Report::quiet("deleted"));
    }
    if !has_finalizer(kc) {
        let mut finalizers = kc.finalizers().to_vec();
        finalizers.push(FINALIZER.to_string());
        set_finalizers(kc, ctx, finalizers).await?;
    }
    install_keda(kc, ctx, &namespace).await
}

/// Writes the finalizer list, guarded by the resourceVersion read: a concurrent change fails with a
/// conflict and the reconcile is retried, never overwriting someone else's finalizer.
async fn set_finalizers(kc: &KedaController, ctx: &Context, finalizers: Vec<String>) -> Result<(), Error> {
    let api: Api<KedaController> = Api::namespaced(ctx.client.clone(), &kc.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": kc.resource_version()}});
    api.patch(&kc.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(api_error(format!("update the finalizers of KedaController {}", kc.name_any())))
}

/// A KedaController that does not install KEDA: say so in its status. A `keda` elsewhere that carries
/// the finalizer belongs to another installation of the operator (or to a Go operator): its status and
/// finalizer are that installation's business, so it is left alone.
async fn ignore(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<Report, Error> {
    let singleton_name = kc.name_any() == cma_api::rules::KEDACONTROLLER_NAME;
    if singleton_name && has_finalizer(kc) {
        tracing::debug!(kedacontroller = %format!("{namespace}/keda"), "belongs to another installation; not touched");
        return Ok(Report::quiet("ignored"));
    }
    if kc.metadata.deletion_timestamp.is_some() {
        // A misnamed KedaController never installed anything: a finalizer left on it by an earlier
        // operator must not block its deletion.
        if has_finalizer(kc) {
            set_finalizers(kc, ctx, kc.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect()).await?;
        }
        return Ok(Report::quiet("ignored"));
    }
    let operator_ns = ctx.scope.install_namespace();
    let why = if !singleton_name {
        format!(
            "The KedaController resource needs to be named 'keda' and created in namespace '{operator_ns}'; '{}/{}' is ignored",
            namespace,
            kc.name_any()
        )
    } else {
        format!(
            "KEDA is installed by the KedaController 'keda' in namespace '{operator_ns}', where the operator runs; this one in '{namespace}' is ignored"
        )
    };
    let status = status::compute(
        kc.status.as_ref(),
        kc.metadata.generation,
        &Outcome::Ignored(why),
        &Observed::default(),
        (ctx.clock)(),
    );
    write_status(kc, ctx, status).await?;
    Ok(Report::quiet("ignored"))
}

async fn uninstall(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<usize, Error> {
    if !ctx.caches.ready(ctx.sync_timeout).await {
        return Err(Error::NotSynced(ctx.sync_timeout));
    }
    let owner = Owner::of(kc, namespace, &kc.name_any());
    let removed = apply::prune(&ctx.client, &ctx.caches, &owner, &Default::default()).await.map_err(Error::Write)?;
    ctx.metrics.managed_objects.set(0);
    ctx.metrics.ready.set(0);
    for component in Component::ALL {
        ctx.metrics
            .component_ready
            .get_or_create(&crate::metrics::ComponentLabel { component: component.field().into() })
            .set(0);
    }
    publish(
        ctx,
        kc,
        EventType::Normal,
        "Uninstalled",
        &format!("KEDA removed from namespace '{namespace}' ({} objects deleted)", removed.len()),
    )
    .await;
    Ok(removed.len())
}

async fn install_keda(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<Report, Error> {
    if !ctx.caches.ready(ctx.sync_timeout).await {
        return Err(Error::NotSynced(ctx.sync_timeout));
    }
    let now = (ctx.clock)();
    let previous = kc.status.as_ref();
    let generation = kc.metadata.generation;

    if let Err(errors) = cma_api::validate(kc) {
        let message = errors.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        let outcome = Outcome::Invalid(format!("the spec is invalid, nothing was applied: {message}"));
        finish_without_apply(kc, ctx, previous, &outcome, now).await?;
        return Ok(Report::quiet("invalid"));
    }

    let platform = ctx.platform.get();
    let (fresh_certs, renew_at) =
        if platform.is_openshift() { grpc_certificates(ctx, namespace, now).await? } else { (None, None) };
    let config_hashes = observe::config_hashes(&kc.spec, &platform, &ctx.caches, namespace, fresh_certs.as_ref());
    let render_ctx = RenderContext {
        platform: platform.clone(),
        images: ctx.images.clone(),
        proxy: ctx.proxy.clone(),
        config_hashes,
        operator_namespace: Some(ctx.scope.operator_namespace.clone()),
    };
    let mut desired = render(kc, &render_ctx)?;

    if let Some(message) = ownership::another_installation(&ctx.caches, &desired, namespace) {
        finish_without_apply(kc, ctx, previous, &Outcome::Blocked(message), now).await?;
        return Ok(Report::quiet("blocked"));
    }
    let conflicts = ownership::leave_foreign_objects_alone(&ctx.caches, &mut desired, namespace);

    let written = match apply::apply(&ctx.client, &ctx.caches, &desired).await {
        Ok(written) => written,
        Err(errors) => {
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            finish_without_apply(kc, ctx, previous, &Outcome::Failed(message), now).await?;
            return Err(Error::Write(errors));
        }
    };
    let owner = Owner::of(kc, namespace, &kc.name_any());
    let pruned = match apply::prune(&ctx.client, &ctx.caches, &owner, &desired).await {
        Ok(pruned) => pruned,
        Err(errors) => {
            let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            finish_without_apply(kc, ctx, previous, &Outcome::Failed(message), now).await?;
            return Err(Error::Write(errors));
        }
    };

    let deployments = deployments_of(ctx, namespace);
    let just_updated = deployments
        .iter()
        .filter(|(_, d)| {
            d.as_ref().is_some_and(|d| written.iter().any(|t| t.kind == "Deployment" && t.name == display(d)))
        })
        .map(|(c, _)| *c)
        .collect();
    let api_service = ctx.caches.api_services.get(&ObjectRef::new(crate::controller::caches::API_SERVICE_NAME));
    let observed = Observed {
        deployments: deployments.iter().map(|(c, d)| (*c, d.as_deref())).collect(),
        api_service: api_service.as_deref(),
        just_updated,
    };
    let status = status::compute(
        previous,
        generation,
        &Outcome::Applied { namespace: namespace.into(), conflicts },
        &observed,
        now,
    );

    publish_transitions(kc, ctx, previous, &status, &written).await;
    record_drift(kc, ctx, &written).await;
    if platform.is_openshift() && platform.monitoring && kc.spec.monitoring.is_enabled() {
        label_namespace_for_monitoring(kc, ctx, namespace).await;
    }
    write_status(kc, ctx, status.clone()).await?;
    update_gauges(ctx, &owner, &status, &platform, namespace);

    let action = match renew_at {
        // Wake up when the certificates enter their renewal window (at most daily, to re-check).
        Some(at) => Action::requeue(duration_until(now, at).min(Duration::from_secs(24 * 3600))),
        None => Action::await_change(),
    };
    Ok(Report { action, result: "success", applied: written.len(), pruned: pruned.len() })
}

fn duration_until(now: Timestamp, at: Timestamp) -> Duration {
    let seconds = (at.as_second() - now.as_second()).max(1);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(1))
}

/// `namespace/name`, as [`Touched`] names objects.
fn display(d: &k8s_openapi::api::apps::v1::Deployment) -> String {
    format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any())
}

/// The three Deployments from the cache.
fn deployments_of(
    ctx: &Context,
    namespace: &str,
) -> Vec<(Component, Option<Arc<k8s_openapi::api::apps::v1::Deployment>>)> {
    [
        (Component::Operator, "keda-operator"),
        (Component::MetricsServer, "keda-metrics-apiserver"),
        (Component::AdmissionWebhooks, "keda-admission"),
    ]
    .into_iter()
    .map(|(c, name)| (c, ctx.caches.deployments.get(&ObjectRef::new(name).within(namespace))))
    .collect()
}

/// Status and events when nothing (more) could be applied.
async fn finish_without_apply(
    kc: &KedaController,
    ctx: &Context,
    previous: Option<&KedaControllerStatus>,
    outcome: &Outcome,
    now: Timestamp,
) -> Result<(), Error> {
    let namespace = kc.namespace().unwrap_or_default();
    let deployments = deployments_of(ctx, &namespace);
    let observed =
        Observed { deployments: deployments.iter().map(|(c, d)| (*c, d.as_deref())).collect(), ..Observed::default() };
    let status = status::compute(previous, kc.metadata.generation, outcome, &observed, now);
    publish_transitions(kc, ctx, previous, &status, &[]).await;
    ctx.metrics.ready.set(0);
    write_status(kc, ctx, status).await
}

/// Writes the status when it differs from what the object carries (ignoring transition times).
async fn write_status(kc: &KedaController, ctx: &Context, status: KedaControllerStatus) -> Result<(), Error> {
    if !status::differs(kc.status.as_ref(), &status) {
        return Ok(());
    }
    let mut body = serde_json::to_value(&status)
        .map_err(|e| Error::Render(RenderError::Serialize { what: "the status".into(), message: e.to_string() }))?;
    // A merge patch only removes what it names: clear every field this status leaves out.
    if let Value::Object(map) = &mut body {
        for field in ["phase", "reason", "version", "observedGeneration", "conditions", "components"] {
            map.entry(field).or_insert(Value::Null);
        }
    }
    let api: Api<KedaController> = Api::namespaced(ctx.client.clone(), &kc.namespace().unwrap_or_default());
    api.patch_status(&kc.name_any(), &PatchParams::default(), &Patch::Merge(&json!({ "status": body })))
        .await
        .map(|_| ())
        .map_err(api_error(format!("write the status of KedaController {}", kc.name_any())))
}

/// Issues or renews the gRPC certificates when needed. Returns the data written (the cache may not have
/// it yet) and when to look again.
async fn grpc_certificates(
    ctx: &Context,
    namespace: &str,
    now: Timestamp,
) -> Result<(Option<std::collections::BTreeMap<String, k8s_openapi::ByteString>>, Option<Timestamp>), Error> {
    let current = ctx.caches.secrets.get(&ObjectRef::new(GRPC_CERTS_SECRET).within(namespace));
    let plan = certs::plan(current.as_deref(), now);
    let reason = match &plan {
        Plan::Keep { renew_at } => return Ok((None, Some(*renew_at))),
        Plan::RenewLeaf(reason) | Plan::Issue(reason) => reason.clone(),
    };
    let Some(data) = certs::issue(&plan, current.as_deref(), namespace, now)? else {
        return Ok((None, None));
    };
    let secret = Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(GRPC_CERTS_SECRET.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data.clone()),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch(GRPC_CERTS_SECRET, &PatchParams::apply(CERTS_FIELD_MANAGER).force(), &Patch::Apply(&secret))
        .await
        .map_err(api_error(format!("write the gRPC certificates to Secret {namespace}/{GRPC_CERTS_SECRET}")))?;
    tracing::info!(secret = GRPC_CERTS_SECRET, namespace, reason = %reason, "issued gRPC certificates");
    let renew_at = certs::plan(Some(&secret), now);
    Ok((
        Some(data),
        match renew_at {
            Plan::Keep { renew_at } => Some(renew_at),
            _ => None,
        },
    ))
}

/// The label that lets the cluster Prometheus on OpenShift pick up the namespace's ServiceMonitors and
/// PrometheusRules.
pub const CLUSTER_MONITORING_LABEL: &str = "openshift.io/cluster-monitoring";

/// On OpenShift the cluster Prometheus only reads namespaces labelled for cluster monitoring, and only
/// `openshift-*` namespaces may carry the label. OperatorHub adds it on install into the suggested
/// namespace; CLI and GitOps installs do not. Checked once per process: the label is added when RBAC
/// allows it, otherwise a Warning event tells the admin the command to run.
async fn label_namespace_for_monitoring(kc: &KedaController, ctx: &Context, namespace: &str) {
    use std::sync::atomic::Ordering;
    if ctx.namespace_label_checked.swap(true, Ordering::Relaxed) {
        return;
    }
    let command = format!("oc label namespace {namespace} {CLUSTER_MONITORING_LABEL}=true");
    if !namespace.starts_with("openshift-") {
        let note = format!(
            "namespace '{namespace}' is not an openshift-* namespace, so the cluster monitoring stack does not scrape it; enable monitoring for user-defined projects to collect KEDA's metrics"
        );
        publish(ctx, kc, EventType::Warning, "MonitoringNotCollected", &note).await;
        return;
    }
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(ctx.client.clone());
    let labelled = match api.get(namespace).await {
        Ok(ns) => {
            ns.metadata.labels.as_ref().and_then(|l| l.get(CLUSTER_MONITORING_LABEL)).map(String::as_str)
                == Some("true")
        }
        Err(e) => {
            tracing::info!(error = %e, namespace, "cannot read the namespace to check its cluster-monitoring label");
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
            publish(
                ctx,
                kc,
                EventType::Normal,
                "MonitoringEnabled",
                &format!("labelled namespace '{namespace}' {CLUSTER_MONITORING_LABEL}=true"),
            )
            .await;
        }
        Err(e) => {
            tracing::warn!(error = %e, namespace, "cannot label the namespace for cluster monitoring");
            let note =
                format!("the cluster monitoring stack will not scrape KEDA until the namespace is labelled: {command}");
            publish(ctx, kc, EventType::Warning, "MonitoringNotCollected", &note).await;
        }
    }
}

fn condition_of<'a>(
    status: Option<&'a KedaControllerStatus>,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}

/// Events for what changed: installed, updated, ready, degraded.
async fn publish_transitions(
    kc: &KedaController,
    ctx: &Context,
    previous: Option<&KedaControllerStatus>,
    status: &KedaControllerStatus,
    written: &[Touched],
) {
    let key = format!("{}/{}", kc.namespace().unwrap_or_default(), kc.name_any());
    let first_install = previous.and_then(|p| p.version.as_ref()).is_none();
    let new_generation = previous.and_then(|p| p.observed_generation) != kc.metadata.generation;
    let settled = ctx.settled.lock().ok().and_then(|s| s.get(&key).copied());
    if !written.is_empty() && first_install && status.version.is_some() {
        let note = format!(
            "KEDA {} installed in namespace '{}' ({} objects applied)",
            crate::render::KEDA_VERSION,
            kc.namespace().unwrap_or_default(),
            written.len()
        );
        publish(ctx, kc, EventType::Normal, "Installed", &note).await;
    } else if !written.is_empty() && (new_generation || settled.is_none()) {
        let note = format!("applied generation {}: {}", kc.metadata.generation.unwrap_or(0), summary(written));
        publish(ctx, kc, EventType::Normal, "Updated", &note).await;
    }
    let was = |t| condition_of(previous, t).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
    let now = |t| condition_of(Some(status), t).map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()));
    if let Some((s, reason, message)) = now(condition::DEGRADED)
        && s == "True"
        && was(condition::DEGRADED) != now(condition::DEGRADED)
    {
        publish(ctx, kc, EventType::Warning, &reason, &message).await;
    }
    if let Some((s, _, message)) = now(condition::READY)
        && s == "True"
        && was(condition::READY).map(|w| w.0) != Some("True".into())
    {
        publish(ctx, kc, EventType::Normal, "Ready", &message).await;
    }
}

/// Writes made while the spec did not change are corrections of someone else's edits.
async fn record_drift(kc: &KedaController, ctx: &Context, written: &[Touched]) {
    let key = format!("{}/{}", kc.namespace().unwrap_or_default(), kc.name_any());
    let generation = kc.metadata.generation.unwrap_or(0);
    let drifted = match ctx.settled.lock() {
        Ok(mut settled) => settled.insert(key.clone(), generation) == Some(generation) && !written.is_empty(),
        Err(_) => false,
    };
    if !drifted {
        return;
    }
    for touched in written {
        ctx.metrics.drift_corrections.get_or_create(&crate::metrics::KindLabel { kind: touched.kind.clone() }).inc();
    }
    tracing::warn!(kedacontroller = %key, objects = %summary(written), "reverted changes made outside the operator");
    let note = format!("restored objects changed or deleted outside the operator: {}", summary(written));
    publish(ctx, kc, EventType::Warning, "DriftReverted", &note).await;
}

fn summary(written: &[Touched]) -> String {
    written.iter().map(|t| format!("{} {}", t.kind, t.name)).collect::<Vec<_>>().join(", ")
}

fn update_gauges(
    ctx: &Context,
    owner: &Owner,
    status: &KedaControllerStatus,
    platform: &crate::platform::Platform,
    namespace: &str,
) {
    let managed = apply::count_owned(&ctx.caches, owner);
    ctx.metrics.managed_objects.set(i64::try_from(managed).unwrap_or(i64::MAX));
    for component in &status.components {
        ctx.metrics
            .component_ready
            .get_or_create(&crate::metrics::ComponentLabel { component: component.name.clone() })
            .set(i64::from(component.ready));
    }
    let ready = condition_of(Some(status), condition::READY).is_some_and(|c| c.status == "True");
    ctx.metrics.ready.set(i64::from(ready));
    observe::certificate_expiry(&ctx.metrics, &ctx.caches, namespace, platform);
}

async fn publish(ctx: &Context, kc: &KedaController, type_: EventType, reason: &str, note: &str) {
    let event =
        Event { type_, reason: reason.into(), note: Some(note.into()), action: "Reconcile".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&event, &kc.object_ref(&())).await {
        // Events are best effort: RBAC or a full quota must not fail the reconcile.
        tracing::debug!(error = %e, reason, "could not publish an event");
    }
}
