//! Leader election with a `coordination.k8s.io/v1` Lease, so two replicas of the operator never both
//! write. The holder renews every retry period; a replica that cannot renew within the renew deadline
//! stops (the process exits and restarts as a candidate), and a lease not renewed for its whole duration
//! is taken over.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::errors::describe;

/// Name of the Lease in the operator's namespace.
pub const LEASE_NAME: &str = "cma-operator-leader";

/// How long leadership lasts and how often it is renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A lease not renewed for this long may be taken over.
    pub lease_duration: Duration,
    /// The holder gives up when it could not renew for this long.
    pub renew_deadline: Duration,
    /// Interval between renewals, and between attempts of a candidate.
    pub retry_period: Duration,
}

impl Default for Timing {
    /// OpenShift's recommended operator timings: they survive a 60 s API server outage and renew only
    /// every 26 s.
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(137),
            renew_deadline: Duration::from_secs(107),
            retry_period: Duration::from_secs(26),
        }
    }
}

/// One candidate for the Lease.
#[derive(Clone)]
pub struct LeaseLock {
    api: Api<Lease>,
    identity: String,
    timing: Timing,
}

/// The outcome of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease (acquired or renewed).
    Held,
    /// Someone else holds a live lease.
    HeldByOther,
}

impl LeaseLock {
    /// A candidate named `identity` for the Lease in `namespace`.
    pub fn new(client: Client, namespace: &str, identity: &str, timing: Timing) -> Self {
        LeaseLock { api: Api::namespaced(client, namespace), identity: identity.to_string(), timing }
    }

    /// The candidate's identity (the holder identity written in the Lease).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Acquires, renews or observes the lease once. Conflicts (another candidate wrote first) count as
    /// [`Attempt::HeldByOther`]; other API errors are returned.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<Attempt, kube::Error> {
        let seconds = i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(mut lease) = self.api.get_opt(LEASE_NAME).await? else {
            let lease = Lease {
                metadata: ObjectMeta { name: Some(LEASE_NAME.into()), ..ObjectMeta::default() },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return conflict_is_other(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder == self.identity {
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(seconds);
        } else {
            let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(seconds)));
            let renewed = spec.renew_time.as_ref().map(|t| t.0);
            let live = !holder.is_empty() && renewed.is_some_and(|r| r + duration > now);
            if live {
                return Ok(Attempt::HeldByOther);
            }
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(seconds);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        // `replace` carries the resourceVersion we read: a concurrent writer makes it fail with 409.
        conflict_is_other(self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await)
    }

    /// Waits until this candidate holds the lease, retrying every retry period.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(Attempt::Held) => return,
                Ok(Attempt::HeldByOther) => {
                    tracing::debug!(identity = %self.identity, "another replica leads")
                }
                Err(e) => tracing::warn!(error = %describe(&e), "could not read or write the leader Lease"),
            }
            tokio::time::sleep(self.timing.retry_period).await;
        }
    }

    /// Renews the lease every retry period; returns when leadership is lost (another holder, or no
    /// successful renewal within the renew deadline).
    pub async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry_period).await;
            match self.try_acquire_or_renew(Timestamp::now()).await {
                Ok(Attempt::Held) => last_renewal = tokio::time::Instant::now(),
                Ok(Attempt::HeldByOther) => {
                    tracing::error!(identity = %self.identity, "another replica took the leader Lease");
                    return;
                }
                Err(e) => tracing::warn!(error = %describe(&e), "could not renew the leader Lease"),
            }
            if last_renewal.elapsed() > self.timing.renew_deadline {
                tracing::error!(identity = %self.identity, "could not renew the leader Lease within the renew deadline");
                return;
            }
        }
    }

    /// Gives the lease up so a standby replica takes over at once (on shutdown).
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(LEASE_NAME).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        if let Err(e) = self.api.replace(LEASE_NAME, &PostParams::default(), &lease).await {
            tracing::warn!(error = %describe(&e), "could not release the leader Lease");
        }
    }
}

fn conflict_is_other(result: Result<Lease, kube::Error>) -> Result<Attempt, kube::Error> {
    match result {
        Ok(_) => Ok(Attempt::Held),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Attempt::HeldByOther),
        Err(e) => Err(e),
    }
}
