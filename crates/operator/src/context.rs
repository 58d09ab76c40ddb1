//! What every reconcile shares: the client, the caches, the platform facts, metrics, the events publisher and
//! the memory of what this process applied. Built by the controller, read by reconcile; it depends on neither.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use cma_api::Component;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use tokio::sync::watch;

use crate::caches::{Caches, Scope};
use crate::events::Publisher;
use crate::metrics::Metrics;
use crate::platform::Platform;
use crate::render::{ImageOverrides, RenderContext};

/// The current platform facts, shared between discovery (writer) and reconcile (reader).
#[derive(Clone)]
pub struct PlatformState {
    current: Arc<RwLock<Platform>>,
    changed: watch::Sender<u64>,
}

impl PlatformState {
    /// Starts with `platform`.
    pub fn new(platform: Platform) -> Self {
        let (changed, _) = watch::channel(0);
        PlatformState { current: Arc::new(RwLock::new(platform)), changed }
    }

    /// The facts now.
    pub fn get(&self) -> Platform {
        self.current.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Replaces the facts; returns whether they changed (and then notifies subscribers).
    pub fn set(&self, platform: Platform) -> bool {
        let Ok(mut current) = self.current.write() else {
            return false;
        };
        if *current == platform {
            return false;
        }
        *current = platform;
        self.changed.send_modify(|n| *n += 1);
        true
    }

    /// Notified on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// A source of the current time (a fixed clock in tests).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Shared state of the reconciler.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Where the operator runs and what it watches.
    pub scope: Scope,
    /// The watched objects.
    pub caches: Caches,
    /// Platform facts from discovery.
    pub platform: PlatformState,
    /// Image overrides from the operator's environment.
    pub images: ImageOverrides,
    /// The cluster proxy variables from the operator's environment.
    pub proxy: Vec<k8s_openapi::api::core::v1::EnvVar>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Kubernetes Events.
    pub events: Publisher,
    /// The time.
    pub clock: Clock,
    /// How long reconcile waits for the watches to sync.
    pub sync_timeout: Duration,
    /// Consecutive failures per KedaController (`namespace/name`), for the retry backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// What this process applied (tells a deletion by someone else from an object never created).
    pub applied: Applied,
    /// Whether the install namespace's cluster-monitoring label was checked (once per process).
    pub namespace_label_checked: std::sync::atomic::AtomicBool,
    /// The CA (PEM) of this process's self-issued `/metrics` certificate, published for scrapers.
    pub metrics_ca: Option<String>,
}

impl Context {
    /// The backoff before retrying a failed reconcile of `key`: 1 s doubling to 5 min.
    pub fn next_backoff(&self, key: &str) -> Duration {
        let Ok(mut failures) = self.failures.lock() else {
            return Duration::from_secs(30);
        };
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        let seconds = 1u64.checked_shl((*n - 1).min(9)).unwrap_or(300).min(300);
        Duration::from_secs(seconds)
    }

    /// Forgets the failures of `key` after a success.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

impl Context {
    /// What render needs besides the KedaController: the platform and the digests of the components'
    /// inputs as observed now, and the operator's own settings.
    pub fn render_context(&self, platform: Platform, config_hashes: BTreeMap<Component, String>) -> RenderContext {
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

/// Digests of what this process applied, by `Kind namespace/name`: tells a deletion by someone else from an
/// object that was never there.
#[derive(Debug, Default)]
pub struct Applied(Mutex<HashMap<String, String>>);

impl Applied {
    pub(crate) fn remember(&self, key: String, digest: String) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(key, digest);
        }
    }

    pub(crate) fn knows(&self, key: &str) -> bool {
        self.0.lock().is_ok_and(|map| map.contains_key(key))
    }

    /// Forgets an object the operator deleted itself.
    pub fn forget(&self, key: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(key);
        }
    }
}
