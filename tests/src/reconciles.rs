//! The operator's `reconciled` log lines, captured per KedaController: an observable sign that a reconcile
//! ran and what it did. Tests that assert something did *not* happen wait for a reconcile instead of
//! sleeping for a while.

use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The module whose `reconciled` line is captured.
pub const TARGET: &str = "cma_operator::reconcile";

/// One `reconciled` log line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// `namespace/name` of the KedaController.
    pub kedacontroller: String,
    /// `success`, `invalid`, `ignored`, ...
    pub result: String,
    /// Objects written.
    pub applied: u64,
    /// Objects deleted.
    pub pruned: u64,
}

static SEEN: Mutex<Vec<Reconciled>> = Mutex::new(Vec::new());

/// The reconciles of `namespace/name` logged so far, oldest first.
pub fn of(namespace: &str, name: &str) -> Vec<Reconciled> {
    let key = format!("{namespace}/{name}");
    SEEN.lock().map(|seen| seen.iter().filter(|r| r.kedacontroller == key).cloned().collect()).unwrap_or_default()
}

/// The layer that records them (installed by `crate::logging`).
pub struct Capture;

#[derive(Default)]
struct Fields {
    message: String,
    line: Reconciled,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "kedacontroller" => self.line.kedacontroller = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "result" => self.line.result = value.to_string(),
            "kedacontroller" => self.line.kedacontroller = value.to_string(),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "applied" => self.line.applied = value,
            "pruned" => self.line.pruned = value,
            _ => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if fields.message == "reconciled"
            && let Ok(mut seen) = SEEN.lock()
        {
            seen.push(fields.line);
        }
    }
}
