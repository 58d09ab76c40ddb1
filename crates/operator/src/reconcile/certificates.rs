//! The gRPC mTLS certificates between KEDA's metrics server and operator (`kedaorg-certs`), which the operator
//! keeps on OpenShift (KEDA's own rotation is off there): issued when missing or invalid, the leaf renewed
//! under the same CA before it expires.

use std::collections::BTreeMap;
use std::time::Duration;

use cma_api::names::GRPC_CERTS_SECRET;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};

use super::errors::{Error, api_error};
use crate::caches::Caches;
use crate::certs::{self, Plan};
use crate::platform::Platform;

/// Field manager of the certificate data (separate from the rendered objects' manager, which owns the
/// Secret's metadata only).
pub const FIELD_MANAGER: &str = "cma-operator-certs";

/// What the certificate step did.
#[derive(Debug, Default)]
pub struct Certificates {
    /// The data just written, when it was (the cache may not hold it yet).
    pub fresh: Option<BTreeMap<String, ByteString>>,
    /// When the leaf enters its renewal window.
    pub renew_at: Option<Timestamp>,
}

impl Certificates {
    /// How long until the reconcile should run again for the renewal (at most a day, to re-check).
    pub fn requeue_after(&self, now: Timestamp) -> Option<Duration> {
        let at = self.renew_at?;
        let seconds = (at.as_second() - now.as_second()).max(1);
        Some(Duration::from_secs(u64::try_from(seconds).unwrap_or(1)).min(Duration::from_secs(24 * 3600)))
    }
}

/// Issues or renews the certificates when needed (on OpenShift; elsewhere KEDA rotates its own).
pub async fn ensure(
    client: &kube::Client,
    caches: &Caches,
    namespace: &str,
    platform: &Platform,
    now: Timestamp,
) -> Result<Certificates, Error> {
    if !platform.is_openshift() {
        return Ok(Certificates::default());
    }
    let current = caches.secret(namespace, GRPC_CERTS_SECRET);
    let plan = certs::plan(current.as_deref(), now);
    let reason = match &plan {
        Plan::Keep { renew_at } => return Ok(Certificates { fresh: None, renew_at: Some(*renew_at) }),
        Plan::RenewLeaf(reason) | Plan::Issue(reason) => reason.clone(),
    };
    let Some(data) = certs::issue(&plan, current.as_deref(), namespace, now)? else {
        return Ok(Certificates::default());
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(GRPC_CERTS_SECRET.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(data.clone()),
        ..Secret::default()
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.patch(GRPC_CERTS_SECRET, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret))
        .await
        .map_err(api_error(format!("write the gRPC certificates to Secret {namespace}/{GRPC_CERTS_SECRET}")))?;
    tracing::info!(secret = GRPC_CERTS_SECRET, namespace, reason = %reason, "issued gRPC certificates");
    let renew_at = match certs::plan(Some(&secret), now) {
        Plan::Keep { renew_at } => Some(renew_at),
        _ => None,
    };
    Ok(Certificates { fresh: Some(data), renew_at })
}
