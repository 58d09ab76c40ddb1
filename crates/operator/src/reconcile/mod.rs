//! One reconcile of a KedaController. [`install`] reads top to bottom:
//! validate -> observe -> render (pure) -> ownership -> apply -> takeover -> prune -> report (status,
//! events, gauges). A KedaController that does not install KEDA is only told so ([`identity`]); a deleted
//! one is uninstalled ([`finalizer`]).
//!
//! The modules that write to the cluster: [`finalizer`] (the finalizer, and the uninstall's deletes),
//! [`certificates`] (the gRPC Secret on OpenShift), [`apply`] and [`service_accounts`] (the rendered
//! objects, the KEDA operator's ServiceAccount metadata), [`takeover`] (a previous owner's marks and
//! leftovers), [`prune`], [`status`] (`status::write`), [`crate::events`] and [`monitoring_label`] (the install
//! namespace's cluster-monitoring label). Everything else reads the caches or is pure.

pub mod apply;
pub mod certificates;
pub mod compare;
pub mod errors;
pub mod finalizer;
pub mod identity;
pub mod monitoring_label;
pub mod observe;
pub mod ownership;
pub mod prune;
pub mod report;
pub mod service_accounts;
pub mod status;
pub mod takeover;

use std::sync::Arc;
use std::time::Instant;

use cma_api::KedaController;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use self::apply::{WriteError, Written};
use self::report::Report;
use self::status::Outcome;
use crate::context::Context;
use crate::render::{Desired, Owner, render};

pub use errors::Error;
pub use finalizer::FINALIZER;

/// Reconciles one KedaController (the controller's reconciler): runs it, then logs and counts the result.
pub async fn reconcile(kc: Arc<KedaController>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let key = format!("{}/{}", kc.namespace().unwrap_or_default(), kc.name_any());
    let result = run(&kc, &ctx).await;
    let elapsed = started.elapsed();
    let duration_ms = elapsed.as_millis() as u64;
    match &result {
        Ok(r) => {
            ctx.succeeded(&key);
            ctx.metrics.reconciled(r.result, None, elapsed);
            let (result, applied, pruned) = (r.result, r.applied, r.pruned);
            tracing::info!(kedacontroller = %key, result, applied, pruned, duration_ms, "reconciled");
        }
        Err(error) => {
            let category = error.category();
            ctx.metrics.reconciled("error", Some(category), elapsed);
            tracing::warn!(kedacontroller = %key, category, error = %error, duration_ms, "reconcile failed; retrying with backoff");
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
    if !identity::installs(kc, ctx) {
        return identity::ignore(kc, ctx).await;
    }
    if kc.metadata.deletion_timestamp.is_some() {
        return finalizer::finalize(kc, ctx, &namespace).await;
    }
    if !finalizer::has(kc) {
        finalizer::add(&ctx.client, kc).await?;
    }
    install(kc, ctx, &namespace).await
}

/// Installs or updates KEDA in `namespace` as the KedaController says.
async fn install(kc: &KedaController, ctx: &Context, namespace: &str) -> Result<Report, Error> {
    synced(ctx).await?;
    let now = (ctx.clock)();
    let valid = match cma_api::validate(kc) {
        Ok(valid) => valid,
        Err(errors) => {
            let message = format!("the spec is invalid, nothing was applied: {errors}");
            return report::stopped(kc, ctx, namespace, Outcome::Invalid(message), now).await;
        }
    };

    let platform = ctx.platform.get();
    let certificates = certificates::ensure(&ctx.client, &ctx.caches, namespace, &platform, now).await?;
    let inputs = observe::inputs(&kc.spec, &platform, &ctx.caches, namespace, certificates.fresh.as_ref());

    let rendered = render(valid, &ctx.render_context(platform.clone(), inputs.hashes.clone()))?;

    let survey = ownership::survey(&ctx.caches, &rendered, namespace);
    if let Some(refusal) = ownership::refusal(kc, &survey) {
        return report::stopped(kc, ctx, namespace, refusal, now).await;
    }

    let mut to_apply = rendered.clone();
    let mut waiting = inputs.hold_back(&mut to_apply);
    let retire_from =
        takeover::hold_until_ours_serves(kc, ctx, namespace, &survey, &mut to_apply, &mut waiting).await?;
    let written = match apply_all(kc, ctx, namespace, &to_apply).await {
        Ok(written) => written,
        Err(errors) => return report::failed(kc, ctx, namespace, errors, now).await,
    };
    takeover::complete(kc, ctx, namespace, &survey, retire_from.as_deref(), now).await?;

    // What is held back or left to others is still rendered: prune keeps it.
    let owner = Owner::of(kc, namespace, &kc.name_any());
    let pruned = match prune::prune(&ctx.client, &ctx.caches.managed, &owner, &rendered, &ctx.applied).await {
        Ok(pruned) => pruned,
        Err(errors) => return report::failed(kc, ctx, namespace, errors, now).await,
    };

    let missing = [inputs.missing, service_accounts::missing(&ctx.caches, namespace)].concat();
    let outcome = Outcome::Applied { namespace: namespace.into(), waiting, missing };
    report::applied(kc, ctx, &owner, &platform, outcome, &written, now).await?;
    let action = certificates.requeue_after(now).map_or_else(Action::await_change, Action::requeue);
    Ok(Report { action, result: "success", applied: written.len(), pruned: pruned.len() })
}

/// The rendered objects, then the KEDA operator's ServiceAccount metadata (under its own field manager).
async fn apply_all(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    to_apply: &Desired,
) -> Result<Vec<Written>, Vec<WriteError>> {
    let mut written = apply::apply(&ctx.client, &ctx.caches.managed, to_apply, &ctx.applied).await?;
    let identity = service_accounts::apply(&ctx.client, &ctx.caches, kc, namespace, &ctx.applied).await;
    written.extend(identity.map_err(|error| vec![error])?);
    Ok(written)
}

/// Waits (bounded) until every watch has completed its first list: render and prune must not act on a
/// partial view of the cluster.
async fn synced(ctx: &Context) -> Result<(), Error> {
    if ctx.caches.ready(ctx.sync_timeout).await { Ok(()) } else { Err(Error::NotSynced(ctx.sync_timeout)) }
}
