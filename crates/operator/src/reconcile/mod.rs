//! One reconcile of a KedaController, top to bottom:
//! identity (only `keda` in the install namespace installs) -> finalizer -> observe (caches, certificates,
//! inputs) -> validate -> render (pure) -> ownership -> apply -> prune -> status and events.
//!
//! The steps that write to the cluster: [`finalizer`], [`certificates`] (the gRPC Secret on OpenShift),
//! [`apply`], [`prune`], [`status::write`], [`events`] and [`monitoring_label`]. Everything else reads the
//! caches or is pure.

pub mod apply;
pub mod certificates;
pub mod compare;
pub mod errors;
pub mod events;
pub mod finalizer;
pub mod monitoring_label;
pub mod observe;
pub mod ownership;
pub mod prune;
pub mod report;
pub mod service_accounts;
pub mod status;
pub mod takeover;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cma_api::{Component, KedaController, KedaControllerStatus};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use self::apply::{WriteError, Written};
use self::status::{Observed, Outcome};
use crate::certs::CertError;
use crate::context::Context;
use crate::render::{Desired, Owner, RenderContext, RenderError, render};

pub use finalizer::FINALIZER;

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
    #[error("{action}: {}", errors::describe(source))]
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

async fn run(kc: &KedaController, ctx: &Context) -> Result<Report, Error> {
    let Some(namespace) = kc.namespace() else {
        return Ok(Report::quiet("ignored"));
    };
    let install = ctx.scope.install_ref();
    if namespace != install.namespace.as_deref().unwrap_or_default() || kc.name_any() != install.name {
        return ignore(kc, ctx, &namespace).await;
    }
    if kc.metadata.deletion_timestamp.is_some() {
        if !finalizer::has(kc) {
            return Ok(Report::quiet("deleted"));
        }
        let removed = uninstall(kc, ctx, &namespace).await?;
        finalizer::remove(&ctx.client, kc).await?;
        return Ok(Report { action: Action::await_change(), result: "uninstalled", applied: 0, pruned: removed });
    }
    if !finalizer::has(kc) {
        finalizer::add(&ctx.client, kc).await?;
    }
    install_keda(kc, ctx, &namespace).await
}

/// A KedaController that does not install KEDA: say so in its status. A `keda` elsewhere that carries
/// the finalizer belongs to another installation of the operator (or to a Go operator): its status and
/// finalizer are that installation's business, so it is left alone.
async fn ignore(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<Report, Error> {
    let singleton_name = kc.name_any() == cma_api::names::KEDACONTROLLER;
    if singleton_name && finalizer::has(kc) {
        tracing::debug!(kedacontroller = %format!("{namespace}/keda"), "belongs to another installation; not touched");
        return Ok(Report::quiet("ignored"));
    }
    if kc.metadata.deletion_timestamp.is_some() {
        // A misnamed KedaController never installed anything: a finalizer left on it by an earlier
        // operator must not block its deletion.
        if finalizer::has(kc) {
            finalizer::remove(&ctx.client, kc).await?;
        }
        return Ok(Report::quiet("ignored"));
    }
    let operator_ns = ctx.scope.install_namespace();
    let why = if singleton_name {
        format!(
            "KEDA is installed by the KedaController 'keda' in namespace '{operator_ns}', where the operator runs; this one in '{namespace}' is ignored"
        )
    } else {
        format!(
            "The KedaController resource needs to be named 'keda' and created in namespace '{operator_ns}'; '{namespace}/{}' is ignored",
            kc.name_any()
        )
    };
    let status = status::compute(
        kc.status.as_ref(),
        kc.metadata.generation,
        &Outcome::Ignored(why),
        &Observed::default(),
        (ctx.clock)(),
    );
    status::write(&ctx.client, kc, status).await?;
    Ok(Report::quiet("ignored"))
}

async fn uninstall(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<usize, Error> {
    sync(ctx).await?;
    let owner = Owner::of(kc, namespace, &kc.name_any());
    let removed = prune::prune(&ctx.client, &ctx.caches.managed, &owner, &Desired::default(), &ctx.applied)
        .await
        .map_err(Error::Write)?;
    report::uninstalled(ctx);
    // A second pass (from a cache that has not seen the deletion yet) finds nothing left: nothing to tell.
    if !removed.is_empty() {
        let note = format!("KEDA removed from namespace '{namespace}' ({} objects deleted)", removed.len());
        ctx.events.publish(kc, events::Severity::Normal, "Uninstalled", &note, (ctx.clock)()).await;
    }
    Ok(removed.len())
}

async fn sync(ctx: &Context) -> Result<(), Error> {
    if ctx.caches.ready(ctx.sync_timeout).await { Ok(()) } else { Err(Error::NotSynced(ctx.sync_timeout)) }
}

async fn install_keda(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<Report, Error> {
    sync(ctx).await?;
    let now = (ctx.clock)();
    let valid = match cma_api::validate(kc) {
        Ok(valid) => valid,
        Err(errors) => {
            let message = format!("the spec is invalid, nothing was applied: {errors}");
            return finish(kc, ctx, namespace, Outcome::Invalid(message), now, Report::quiet("invalid")).await;
        }
    };
    let platform = ctx.platform.get();
    let certificates = if platform.is_openshift() {
        certificates::ensure(&ctx.client, &ctx.caches, namespace, now).await?
    } else {
        certificates::Certificates::default()
    };
    let inputs = observe::inputs(&kc.spec, &platform, &ctx.caches, namespace, certificates.fresh.as_ref());
    let rendered = render(valid, &ctx.render_context(platform.clone(), inputs.hashes.clone()))?;

    let survey = ownership::survey(&ctx.caches, &rendered, namespace);
    if let Some(message) = survey.other_installation() {
        return finish(kc, ctx, namespace, Outcome::Blocked(message), now, Report::quiet("blocked")).await;
    }
    let adopt = ownership::adoption_requested(kc);
    if !adopt && let Some(message) = survey.foreign_message() {
        return finish(kc, ctx, namespace, Outcome::Foreign(message), now, Report::quiet("foreign")).await;
    }
    let taken = survey.taken_over(adopt);
    let mut to_apply = rendered.clone();
    let mut waiting = hold_back(&mut to_apply, &inputs.waiting);
    let adopting = adopt_from_elsewhere(kc, ctx, namespace, &survey, &mut to_apply, &mut waiting).await?;

    let mut written = match apply::apply(&ctx.client, &ctx.caches.managed, &to_apply, &ctx.applied).await {
        Ok(written) => written,
        Err(errors) => return failed(kc, ctx, namespace, errors, now).await,
    };
    match service_accounts::apply(&ctx.client, &ctx.caches, kc, namespace, &ctx.applied).await {
        Ok(identity) => written.extend(identity),
        Err(error) => return failed(kc, ctx, namespace, vec![error], now).await,
    }
    take_over(kc, ctx, namespace, &taken, adopting.as_deref(), now).await?;
    let owner = Owner::of(kc, namespace, &kc.name_any());
    // What is held back or left to others is still rendered: prune keeps it.
    let pruned = match prune::prune(&ctx.client, &ctx.caches.managed, &owner, &rendered, &ctx.applied).await {
        Ok(pruned) => pruned,
        Err(errors) => return failed(kc, ctx, namespace, errors, now).await,
    };

    let mut missing = inputs.missing;
    missing.extend(service_accounts::missing(&ctx.caches, namespace));
    let outcome = Outcome::Applied { namespace: namespace.into(), waiting, missing };
    let status = compute_status(kc, ctx, namespace, &outcome, &written, now);
    report::transitions(kc, ctx, kc.status.as_ref(), &status, &written, now).await;
    if platform.is_openshift() && platform.monitoring && kc.spec.monitoring.is_enabled() {
        monitoring_label::ensure(kc, ctx, namespace).await;
    }
    status::write(&ctx.client, kc, status.clone()).await?;
    report::gauges(ctx, &owner, &status);
    observe::certificate_expiry(&ctx.metrics, &ctx.caches, namespace, &platform);

    let action = certificates.requeue_after(now).map_or_else(Action::await_change, Action::requeue);
    Ok(Report { action, result: "success", applied: written.len(), pruned: pruned.len() })
}

/// An adopted KEDA in another namespace keeps serving the external metrics API and the webhooks until ours
/// serves: the API registrations are held back until then. Returns the namespace once they can switch.
async fn adopt_from_elsewhere(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    survey: &ownership::Survey,
    to_apply: &mut Desired,
    waiting: &mut Vec<(Component, Vec<String>)>,
) -> Result<Option<String>, Error> {
    let from = survey
        .adopted_namespace()
        .filter(|_| ownership::adoption_requested(kc))
        .or_else(|| takeover::adopted_from(kc))
        .map(String::from);
    let Some(from) = from else {
        return Ok(None);
    };
    takeover::record_adoption(&ctx.client, kc, Some(&from)).await?;
    let serving = ctx
        .caches
        .managed
        .deployments
        .named(Some(namespace), Component::MetricsServer.deployment_name())
        .and_then(|d| d.status.as_ref().and_then(|s| s.available_replicas))
        .is_some_and(|available| available > 0);
    if serving {
        return Ok(Some(from));
    }
    to_apply.api_services.clear();
    to_apply.validating_webhook_configurations.clear();
    waiting.push((
        Component::MetricsServer,
        vec![format!(
            "its pods, before the external metrics API and the webhooks switch from the KEDA in namespace '{from}'"
        )],
    ));
    Ok(None)
}

/// After our apply claimed them: the previous owners' marks go, the Go operators' leftovers go, and an adopted
/// KEDA elsewhere is retired once the API registrations point at ours.
async fn take_over(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    taken: &[&ownership::Claimed],
    retire_from: Option<&str>,
    now: Timestamp,
) -> Result<(), Error> {
    let mut done = Vec::new();
    if !taken.is_empty() {
        let cleaned = takeover::clean(&ctx.client, taken).await?;
        if cleaned > 0 {
            done.push(format!("took over {} objects of the previous installation", taken.len()));
        }
    }
    if taken.iter().any(|c| c.claim == ownership::Claim::GoOperator) {
        let removed = takeover::remove_go_leftovers(&ctx.client, namespace).await?;
        if !removed.is_empty() {
            done.push(format!("removed what the KEDA OLM operator left: {}", removed.join(", ")));
        }
    }
    if let Some(from) = retire_from {
        let removed = takeover::retire(&ctx.client, from).await?;
        takeover::record_adoption(&ctx.client, kc, None).await?;
        done.push(format!(
            "the external metrics API and the webhooks now point at namespace '{namespace}'; removed {}",
            if removed.is_empty() { "nothing (already gone)".to_string() } else { removed.join(", ") }
        ));
    }
    if !done.is_empty() {
        let note = done.join("; ");
        tracing::info!(kedacontroller = %format!("{namespace}/{}", kc.name_any()), "{note}");
        ctx.events.publish(kc, events::Severity::Normal, "TakenOver", &note, now).await;
    }
    Ok(())
}

/// Takes the Deployments whose inputs are not there yet out of the apply set (they stay rendered, so prune
/// keeps an existing one as it is).
fn hold_back(
    desired: &mut Desired,
    waiting: &std::collections::BTreeMap<Component, Vec<String>>,
) -> Vec<(Component, Vec<String>)> {
    desired.deployments.retain(|d| {
        let component = Component::of_deployment(&d.name_any());
        !component.is_some_and(|c| waiting.contains_key(&c))
    });
    waiting.iter().map(|(c, w)| (*c, w.clone())).collect()
}

/// The status of the installation after this reconcile's writes.
fn compute_status(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    outcome: &Outcome,
    written: &[Written],
    now: Timestamp,
) -> KedaControllerStatus {
    let deployments: Vec<_> = Component::ALL
        .into_iter()
        .map(|c| (c, ctx.caches.managed.deployments.named(Some(namespace), c.deployment_name())))
        .collect();
    let just_updated = Component::ALL
        .into_iter()
        .filter(|c| {
            let name = format!("{namespace}/{}", c.deployment_name());
            written.iter().any(|w| w.kind == "Deployment" && w.name == name && w.generation_changed)
        })
        .collect();
    let api_service = ctx.caches.managed.api_services.named(None, cma_api::names::API_SERVICE);
    let observed = Observed {
        deployments: deployments.iter().map(|(c, d)| (*c, d.as_deref())).collect(),
        api_service: api_service.as_deref(),
        just_updated,
    };
    status::compute(kc.status.as_ref(), kc.metadata.generation, outcome, &observed, now)
}

/// A reconcile that applied nothing (more): status and events say why.
async fn finish(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    outcome: Outcome,
    now: Timestamp,
    report: Report,
) -> Result<Report, Error> {
    let status = compute_status(kc, ctx, namespace, &outcome, &[], now);
    report::transitions(kc, ctx, kc.status.as_ref(), &status, &[], now).await;
    ctx.metrics.ready.set(0);
    status::write(&ctx.client, kc, status).await?;
    Ok(report)
}

/// Apply or prune failed on named objects: say so, and retry with backoff.
async fn failed(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    errors: Vec<WriteError>,
    now: Timestamp,
) -> Result<Report, Error> {
    let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    finish(kc, ctx, namespace, Outcome::Failed(message), now, Report::quiet("failed")).await?;
    Err(Error::Write(errors))
}

impl Context {
    /// What render needs besides the KedaController.
    fn render_context(
        &self,
        platform: crate::platform::Platform,
        config_hashes: std::collections::BTreeMap<Component, String>,
    ) -> RenderContext {
        RenderContext {
            platform,
            images: self.images.clone(),
            proxy: self.proxy.clone(),
            config_hashes,
            operator_namespace: Some(self.scope.operator_namespace.clone()),
            metrics_ca: self.metrics_ca.clone(),
        }
    }
}
