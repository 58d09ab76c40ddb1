//! Kubernetes Events about the KedaController, each carrying its own message.
//!
//! kube-runtime's `Recorder` folds events with the same type, reason and action into a series for minutes
//! and keeps the first note, so `kubectl get events` showed a stale message ("applied generation 2" at
//! generation 18). Events here are created one by one (events.k8s.io/v1), each with its own note; they are
//! only published on transitions, so their number stays small.

use std::sync::atomic::{AtomicU64, Ordering};

use cma_api::KedaController;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, Resource, ResourceExt};

/// The reporting controller of every event.
pub const REPORTER: &str = "cma-operator";
/// The API server's limit on an event's note.
const NOTE_LIMIT: usize = 1024;

/// Normal or Warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something expected happened.
    Normal,
    /// Something needs attention.
    Warning,
}

/// Publishes events as one operator instance.
pub struct Publisher {
    client: Client,
    instance: String,
    sequence: AtomicU64,
}

impl Publisher {
    /// Events reported by `instance` (the pod name).
    pub fn new(client: Client, instance: &str) -> Self {
        Publisher { client, instance: instance.to_string(), sequence: AtomicU64::new(0) }
    }

    /// Publishes one event about `kc`. Best effort: a failure (RBAC, quota) is logged, never fails a reconcile.
    pub async fn publish(&self, kc: &KedaController, severity: Severity, reason: &str, note: &str, now: Timestamp) {
        let event = self.event(kc, severity, reason, note, now);
        let api: Api<Event> = Api::namespaced(self.client.clone(), &kc.namespace().unwrap_or_default());
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %super::errors::describe(&e), reason, "could not publish an event");
        }
    }

    fn event(&self, kc: &KedaController, severity: Severity, reason: &str, note: &str, now: Timestamp) -> Event {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        // Unique per instance and moment; the name only has to differ from every other event's.
        let name = format!("{}.{:x}{:04x}", kc.name_any(), now.as_nanosecond(), sequence & 0xffff);
        Event {
            metadata: ObjectMeta { name: Some(name), namespace: kc.namespace(), ..ObjectMeta::default() },
            event_time: Some(MicroTime(now)),
            action: Some("Reconcile".into()),
            reason: Some(reason.into()),
            note: Some(truncate(note)),
            type_: Some(match severity {
                Severity::Normal => "Normal".into(),
                Severity::Warning => "Warning".into(),
            }),
            regarding: Some(ObjectReference {
                api_version: Some(KedaController::api_version(&()).into()),
                kind: Some(KedaController::kind(&()).into()),
                name: kc.metadata.name.clone(),
                namespace: kc.metadata.namespace.clone(),
                uid: kc.metadata.uid.clone(),
                resource_version: kc.metadata.resource_version.clone(),
                field_path: None,
            }),
            reporting_controller: Some(REPORTER.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        }
    }
}

/// Cuts a note to the API server's limit, on a character boundary, saying that it was cut.
fn truncate(note: &str) -> String {
    if note.len() <= NOTE_LIMIT {
        return note.to_string();
    }
    let marker = " ...(truncated)";
    let mut end = NOTE_LIMIT - marker.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &note[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_cut_to_the_limit_and_say_so() {
        let long = "é".repeat(800);
        let cut = truncate(&long);
        assert!(cut.len() <= NOTE_LIMIT, "{}", cut.len());
        assert!(cut.ends_with("...(truncated)"));
        assert_eq!(truncate("short"), "short");
    }
}
