//! `cma-operator run`: discovery, leader election, the watches and the reconcile loop, the metrics and
//! probe endpoints, and a clean shutdown on SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cma_api::{KedaController, KedaControllerSpec};
use futures::{FutureExt, Stream, StreamExt};
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use tokio::sync::watch;

use crate::caches::{self, Scope};
use crate::context::{Clock, Context, PlatformState};
use crate::errors::{chain, describe};
use crate::leader::{LeaseLock, Timing};
use crate::metrics::Metrics;
use crate::metrics_access::MetricsAccess;
use crate::metrics_cert::{SelfIssued, ServingCertificates};
use crate::platform::Flavour;
use crate::platform::discovery::{self, Discovered};
use crate::reconcile;
use crate::render::ImageOverrides;
use crate::server::{self, Endpoints, Limits};

/// Settings of `cma-operator run`.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The operator's namespace: where KEDA is installed.
    pub operator_namespace: String,
    /// Namespaces whose KedaControllers are watched (empty: all).
    pub watch_namespaces: Vec<String>,
    /// Elect a leader among replicas before writing.
    pub leader_elect: bool,
    /// Leader election timings.
    pub leader_timing: Timing,
    /// Identity in the leader Lease (the pod name).
    pub identity: String,
    /// Address of `/metrics`.
    pub metrics_addr: SocketAddr,
    /// Directory where `tls.crt`/`tls.key` for `/metrics` are or will be mounted; while they are missing,
    /// and without such a directory, `/metrics` is served with a certificate the operator issues itself.
    pub metrics_cert_dir: Option<PathBuf>,
    /// Address of `/healthz` and `/readyz`.
    pub probe_addr: SocketAddr,
    /// Create the `keda` KedaController when none exists.
    pub create_default_kedacontroller: bool,
    /// Skip flavour detection.
    pub platform: Option<Flavour>,
    /// How often discovery runs again.
    pub discovery_interval: Duration,
    /// How long a reconcile waits for the watches to sync.
    pub sync_timeout: Duration,
}

impl Settings {
    /// Where the operator runs and what it watches.
    pub fn scope(&self) -> Scope {
        Scope { operator_namespace: self.operator_namespace.clone(), watch_namespaces: self.watch_namespaces.clone() }
    }
}

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A server could not start.
    #[error(transparent)]
    Server(#[from] server::ServerError),
    /// Leadership was lost: another replica may now write, so this one stops.
    #[error("lost the leader Lease; exiting so that only one replica writes")]
    LeadershipLost,
    /// The cluster gained or lost an API the watches depend on; restarting sets up the right watches.
    #[error("{0}; restarting")]
    PlatformChanged(String),
    /// The API server could not be reached for the initial discovery.
    #[error("initial API discovery failed: {}", crate::errors::describe(.0))]
    Discovery(kube::Error),
    /// The metrics serving certificate could not be issued.
    #[error(transparent)]
    Certificate(#[from] crate::metrics_cert::CertificateError),
}

/// How often the metrics certificate directory is checked for a new or renewed certificate.
const CERT_POLL: Duration = Duration::from_secs(10);
/// How long in-flight reconciles may run on after the shutdown signal before they are cancelled: well
/// inside the pod's 30 s termination grace period, which also has to fit the Lease release.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long releasing the Lease may take on the way out.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the operator until SIGTERM/SIGINT (Ok) or until leadership is lost (Err).
pub async fn run(client: Client, settings: Settings) -> Result<(), RunError> {
    run_until(client, settings, shutdown_signal(), Arc::new(k8s_openapi::jiff::Timestamp::now)).await
}

/// Runs the operator until `shutdown` resolves. Tests drive it with their own shutdown and clock.
pub async fn run_until(
    client: Client,
    settings: Settings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    clock: Clock,
) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    let endpoints = Endpoints { metrics: metrics.clone(), ready: ready.clone() };
    let probe_listener = server::bind(settings.probe_addr).await?;
    let metrics_listener = server::bind(settings.metrics_addr).await?;
    // Issued before anything is served: `/metrics` is never served without TLS.
    let own = SelfIssued::new(&settings.operator_namespace, k8s_openapi::jiff::Timestamp::now())
        .map_err(RunError::Certificate)?;
    let metrics_ca = own.ca_pem();
    let certificates = Arc::new(ServingCertificates::new(own, settings.metrics_cert_dir.clone()));
    let probes = tokio::spawn(server::serve_probes(probe_listener, endpoints.clone(), Limits::PROBES));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(shutdown.map(move |()| {
        let _ = stop_tx.send(true);
    }));

    let discovered = initial_discovery(&client, settings.platform, stop_rx.clone()).await?;
    let Some(discovered) = discovered else {
        probes.abort();
        return Ok(());
    };
    log_discovery(&discovered);
    let platform = PlatformState::new(discovered.platform.clone());
    // Started after discovery: on OpenShift its TLS settings follow the cluster profile.
    let metrics_server = tokio::spawn({
        let platform = platform.clone();
        let access = Arc::new(MetricsAccess::new(client.clone()));
        async move {
            let served = server::serve_metrics(
                metrics_listener,
                endpoints,
                certificates,
                platform,
                access,
                Limits::METRICS,
                CERT_POLL,
            );
            if let Err(e) = served.await {
                tracing::error!(error = %crate::errors::chain(&e), "the metrics endpoint could not start");
            }
        }
    });
    metrics.set_info(discovered.platform.flavour.as_str());
    // A standby replica is healthy and ready: it only waits for the Lease.
    ready.store(true, Ordering::Relaxed);

    let scope = settings.scope();
    // The Lease lives where the operator's namespaced permissions are: the install namespace.
    let lock = settings
        .leader_elect
        .then(|| LeaseLock::new(client.clone(), scope.install_namespace(), &settings.identity, settings.leader_timing));
    if let Some(lock) = &lock {
        tracing::info!(identity = lock.identity(), "waiting for the leader Lease");
        if until_stopped(stop_rx.clone(), lock.acquire()).await.is_none() {
            probes.abort();
            metrics_server.abort();
            return Ok(());
        }
        tracing::info!(identity = lock.identity(), "became the leader");
    }
    let result = lead(client.clone(), &settings, platform, metrics, metrics_ca, stop_rx, lock.clone(), clock).await;
    if let Some(lock) = &lock {
        // Bounded: an API server that accepts connections but never answers must not hold the exit.
        if tokio::time::timeout(RELEASE_TIMEOUT, lock.release()).await.is_err() {
            tracing::warn!("could not release the leader Lease in time; it expires on its own");
        }
    }
    probes.abort();
    metrics_server.abort();
    result
}

/// `future`'s output, or `None` as soon as the stop signal is (or was already) given.
async fn until_stopped<T>(mut stop: watch::Receiver<bool>, future: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        _ = stop.wait_for(|s| *s) => None,
        output = future => Some(output),
    }
}

async fn initial_discovery(
    client: &Client,
    forced: Option<Flavour>,
    stop: watch::Receiver<bool>,
) -> Result<Option<Discovered>, RunError> {
    let mut delay = Duration::from_secs(1);
    loop {
        // A request to an API server that accepts connections but never answers does not end by itself.
        let Some(discovered) = until_stopped(stop.clone(), discovery::discover(client, forced)).await else {
            return Ok(None);
        };
        match discovered {
            Ok(d) => return Ok(Some(d)),
            Err(e) if delay >= Duration::from_secs(64) => return Err(RunError::Discovery(e)),
            Err(e) => tracing::warn!(error = %describe(&e), retry_in = ?delay, "API discovery failed"),
        }
        if until_stopped(stop.clone(), tokio::time::sleep(delay)).await.is_none() {
            return Ok(None);
        }
        delay *= 2;
    }
}

fn log_discovery(d: &Discovered) {
    tracing::info!(
        platform = d.platform.flavour.as_str(),
        kubernetes = %d.kubernetes_version,
        monitoring = d.platform.monitoring,
        tls_min_version = d.platform.tls_profile.as_ref().map(|p| p.min_version.keda_name()).unwrap_or("-"),
        "discovered the platform"
    );
    if !d.unsupported_ciphers.is_empty() {
        tracing::warn!(ciphers = ?d.unsupported_ciphers, "the cluster TLS profile names cipher suites KEDA cannot use; they are left out");
    }
}

/// Runs the reconcile loop as the leader until shutdown or loss of the Lease.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the arguments
async fn lead(
    client: Client,
    settings: &Settings,
    platform: PlatformState,
    metrics: Arc<Metrics>,
    metrics_ca: String,
    stop: watch::Receiver<bool>,
    lock: Option<LeaseLock>,
    clock: Clock,
) -> Result<(), RunError> {
    let scope = settings.scope();
    if settings.create_default_kedacontroller
        && until_stopped(stop.clone(), create_default(&client, scope.install_namespace())).await.is_none()
    {
        return Ok(());
    }
    // The facts the watches are built for; a change of capabilities restarts the process.
    let initial = platform.get();
    let watches = caches::build(&client, &scope, &initial);
    let ctx = Arc::new(Context {
        client: client.clone(),
        scope: scope.clone(),
        caches: watches.caches.clone(),
        platform: platform.clone(),
        images: ImageOverrides::from_env(),
        proxy: crate::render::proxy::from_env(),
        metrics,
        events: crate::events::Publisher::new(client.clone(), &settings.identity),
        clock,
        sync_timeout: settings.sync_timeout,
        failures: Mutex::new(HashMap::new()),
        applied: Default::default(),
        namespace_label_checked: AtomicBool::new(false),
        metrics_ca: Some(metrics_ca),
    });

    let refresher = tokio::spawn(refresh_platform(
        client.clone(),
        settings.platform,
        settings.discovery_interval,
        platform.clone(),
        ctx.metrics.clone(),
    ));
    let touched = futures::stream::select_all(watches.touched).filter_map(|r| {
        futures::future::ready(match r {
            Ok(kc) => Some(kc),
            Err(e) => {
                tracing::warn!(error = %chain(&e), "a watch failed; it restarts with backoff");
                None
            }
        })
    });
    let profile_changes = openshift_config_changes(&client, &initial, platform.clone(), ctx.metrics.clone());
    let platform_changes = tokio_stream_of(platform.subscribe());

    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = lock.map(|lock| {
        tokio::spawn(async move {
            lock.hold().await;
            let _ = lost_tx.send(());
        })
    });
    let reason = Arc::new(Mutex::new(None::<RunError>));
    // Told when the shutdown begins, to bound how long in-flight reconciles may delay it.
    let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = {
        let reason = reason.clone();
        let capabilities = capabilities_changed(platform.clone(), initial.clone());
        let mut stop = stop;
        async move {
            let why = tokio::select! {
                _ = stop.wait_for(|s| *s) => None,
                Ok(()) = lost_rx => Some(RunError::LeadershipLost),
                message = capabilities => Some(RunError::PlatformChanged(message)),
            };
            if let Ok(mut slot) = reason.lock() {
                *slot = why;
            }
            let _ = begun_tx.send(());
        }
    };

    let install = scope.install_ref();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let controller = Controller::for_stream(watches.kedacontrollers, ctx.caches.kedacontrollers.clone())
        .reconcile_on(touched)
        .reconcile_on(profile_changes.map(move |()| install.clone()))
        .reconcile_all_on(platform_changes)
        .graceful_shutdown_on(shutdown)
        .run(
            {
                let in_flight = in_flight.clone();
                move |kc, ctx| {
                    let guard = InFlight::enter(&in_flight);
                    async move {
                        let _guard = guard;
                        reconcile::reconcile(kc, ctx).await
                    }
                    .boxed()
                }
            },
            reconcile::error_policy,
            ctx,
        )
        .for_each(|result| {
            match result {
                // The KedaController watch failing (no CRD, no permission): said once per attempt, in the API
                // server's words (kube's own line for it is left out of the log, see `logging`).
                Err(kube::runtime::controller::Error::QueueError(e)) => {
                    tracing::warn!(error = %chain(&e), "the KedaController watch failed; it restarts with backoff")
                }
                // Reconcile failures are logged by the reconcile itself.
                Err(e) => tracing::debug!(error = %chain(&e), "controller event"),
                Ok(_) => {}
            }
            futures::future::ready(())
        });
    // A graceful shutdown waits for the running reconciles, and kube's controller never ends at all while
    // its KedaController store has not synced (a watch failing from the start: no CRD, no RBAC, no API
    // server). So once the shutdown began, the controller is dropped (cancelling what still runs) as soon
    // as no reconcile runs, and at the latest after the grace period.
    let deadline = async move {
        if begun_rx.await.is_err() {
            return std::future::pending::<()>().await;
        }
        let idle = async {
            while in_flight.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, idle).await.is_err() {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles still running after the shutdown grace period; cancelled");
        }
    };
    tokio::select! {
        () = controller => {}
        () = deadline => {}
    }

    refresher.abort();
    if let Some(holder) = holder {
        holder.abort();
    }
    match reason.lock().ok().and_then(|mut r| r.take()) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Counts a running reconcile for as long as it lives (cancelled ones included).
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves when the platform gains or loses an API the watches depend on (OpenShift, monitoring), with a
/// description of the change: the process then exits and restarts with watches for the new platform.
async fn capabilities_changed(state: PlatformState, initial: crate::platform::Platform) -> String {
    let mut changes = state.subscribe();
    loop {
        if changes.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = state.get();
        if now.flavour != initial.flavour || now.monitoring != initial.monitoring {
            return format!(
                "platform changed from {} (monitoring API: {}) to {} (monitoring API: {})",
                initial.flavour.as_str(),
                initial.monitoring,
                now.flavour.as_str(),
                now.monitoring
            );
        }
    }
}

/// Creates `keda` in the operator's namespace when it does not exist (`--create-default-kedacontroller`).
async fn create_default(client: &Client, namespace: &str) {
    let api: Api<KedaController> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(cma_api::names::KEDACONTROLLER).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let kc = KedaController::new(namespace, cma_api::names::KEDACONTROLLER, KedaControllerSpec::default());
            match api.create(&PostParams::default(), &kc).await {
                Ok(_) => tracing::info!(namespace, "created the default KedaController"),
                Err(e) => tracing::warn!(error = %describe(&e), "could not create the default KedaController"),
            }
        }
        Err(e) => tracing::warn!(error = %describe(&e), "could not check for an existing KedaController"),
    }
}

/// Re-runs discovery on a timer; a change of facts reconciles every KedaController.
async fn refresh_platform(
    client: Client,
    forced: Option<Flavour>,
    every: Duration,
    state: PlatformState,
    metrics: Arc<Metrics>,
) {
    loop {
        tokio::time::sleep(every).await;
        refresh_once(&client, forced, &state, &metrics).await;
    }
}

async fn refresh_once(client: &Client, forced: Option<Flavour>, state: &PlatformState, metrics: &Metrics) {
    match discovery::discover(client, forced).await {
        Ok(d) => {
            if state.set(d.platform.clone()) {
                log_discovery(&d);
                metrics.set_info(d.platform.flavour.as_str());
            }
        }
        Err(e) => {
            tracing::warn!(error = %describe(&e), "API discovery failed; keeping the previous platform facts")
        }
    }
}

/// On OpenShift, a change of `apiservers.config.openshift.io/cluster` (the TLS profile) is reacted to at
/// once rather than at the next discovery: discovery runs again and a changed platform reconciles.
fn openshift_config_changes(
    client: &Client,
    initial: &crate::platform::Platform,
    state: PlatformState,
    metrics: Arc<Metrics>,
) -> futures::stream::BoxStream<'static, ()> {
    if !initial.is_openshift() {
        return futures::stream::empty().boxed();
    }
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &discovery::openshift_apiserver_resource());
    let client = client.clone();
    watcher(api, watcher::Config::default().fields("metadata.name=cluster"))
        .default_backoff()
        .touched_objects()
        .filter_map(move |r| {
            let (client, state, metrics) = (client.clone(), state.clone(), metrics.clone());
            async move {
                match r {
                    Ok(_) => {
                        refresh_once(&client, Some(Flavour::OpenShift), &state, &metrics).await;
                        Some(())
                    }
                    Err(e) => {
                        tracing::warn!(error = %chain(&e), "the watch on the cluster APIServer configuration failed");
                        None
                    }
                }
            }
        })
        .boxed()
}

/// One item per change of the platform facts.
fn tokio_stream_of(rx: watch::Receiver<u64>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move { rx.changed().await.ok().map(|()| ((), rx)) })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
