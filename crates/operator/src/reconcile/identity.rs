//! Which KedaController installs KEDA: only the one named `keda` in the namespace the operator installs
//! into. Any other is told so in its status and otherwise left alone.

use cma_api::KedaController;
use kube::ResourceExt;

use super::errors::Error;
use super::finalizer;
use super::report::Report;
use super::status::{self, Observed, Outcome};
use crate::context::Context;

/// Whether `kc` is the KedaController that installs KEDA.
pub fn installs(kc: &KedaController, ctx: &Context) -> bool {
    let install = ctx.scope.install_ref();
    kc.namespace() == install.namespace && kc.name_any() == install.name
}

/// A KedaController that does not install KEDA: say so in its status. A `keda` elsewhere that carries
/// the finalizer belongs to another installation of the operator (or to a Go operator): its status and
/// finalizer are that installation's business, so it is left alone.
pub async fn ignore(kc: &KedaController, ctx: &Context) -> Result<Report, Error> {
    let namespace = kc.namespace().unwrap_or_default();
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
    let outcome = Outcome::Ignored(why);
    let status =
        status::compute(kc.status.as_ref(), kc.metadata.generation, &outcome, &Observed::default(), (ctx.clock)());
    status::write(&ctx.client, kc, status).await?;
    Ok(Report::quiet(outcome.result()))
}
