//! The operator's HTTP endpoints, on two ports:
//! - the metrics port serves `/metrics` only, always over HTTPS (see [`crate::metrics_cert`]), and only to
//!   callers whose bearer token may `get` the non-resource URL `/metrics` (see [`MetricsAccess`]);
//! - the probe port serves `/healthz` and `/readyz` over plain HTTP for the kubelet, nothing else.
//!
//! Both are exposed to the pod network, so neither lets slow or numerous clients exhaust the operator
//! (its memory limit is 128 Mi): each server caps its concurrent connections (the excess is closed at
//! once), a TLS handshake, the request headers and the whole request each have a time limit, one request
//! is served per connection, and the accept loop backs off when accepting fails (out of file descriptors)
//! instead of spinning.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use k8s_openapi::jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::context::PlatformState;
use crate::metrics::Metrics;
use crate::metrics_access::{Decision, MetricsAccess};
use crate::metrics_cert::ServingCertificates;
use crate::platform::{TlsProfile, TlsVersion};

/// What the endpoints report.
#[derive(Clone)]
pub struct Endpoints {
    /// The metrics to expose.
    pub metrics: Arc<Metrics>,
    /// Set once the watches have synced (or while waiting for leadership: a standby is ready).
    pub ready: Arc<AtomicBool>,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No TLS configuration could be built for the metrics endpoint.
    #[error("cannot configure TLS for the metrics endpoint: {0}")]
    Tls(String),
}

/// What one server allows its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// Time for a client to complete the TLS handshake (HTTPS only).
    pub handshake_timeout: Duration,
    /// Time for a client to send the complete request headers.
    pub header_read_timeout: Duration,
    /// Time to answer a request once its headers are in (the `/metrics` access check asks the API server);
    /// past it the answer is 503.
    pub request_timeout: Duration,
}

impl Limits {
    /// The probe port: the kubelet probes about every 10 s, sends its request at once and waits 1 s by
    /// default. Short limits keep slots free; a few dozen slots cost little memory (16 KiB of request head
    /// each at most). Pods cannot reach this port at all where the operator's NetworkPolicy is enforced.
    pub const PROBES: Limits = Limits {
        max_connections: 64,
        handshake_timeout: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
    };

    /// The metrics port: a few Prometheus replicas, each scraping about every 30 s with a 10 s timeout; the
    /// access check may wait on the API server.
    pub const METRICS: Limits = Limits {
        max_connections: 32,
        handshake_timeout: Duration::from_secs(5),
        header_read_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(20),
    };

    /// How long a connection may live at all: a handshake, a request and writing the answer. Bounds a
    /// client that stops reading the answer too.
    pub fn connection_deadline(&self) -> Duration {
        self.handshake_timeout + self.header_read_timeout + self.request_timeout * 2
    }
}

/// The largest request head accepted (bearer tokens are a few KiB); hyper's default would let a client
/// make each connection hold about 400 KiB.
const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// First pause after a failed accept; doubled up to [`ACCEPT_BACKOFF_MAX`] while accepting keeps failing.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest pause after a failed accept.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Least time between two warnings that a server is at its connection limit.
const LIMIT_WARNING_INTERVAL: Duration = Duration::from_secs(60);

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    response
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    respond(status, "text/plain", body.to_string())
}

/// Checks a `/metrics` caller; `Some(response)` refuses the request.
async fn refusal(access: &MetricsAccess, request: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let header = request.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match access.check(header).await {
        Ok(Decision::Allowed) => None,
        Ok(Decision::Unauthenticated) => {
            let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
            Some(response)
        }
        Ok(Decision::Forbidden(user)) => {
            tracing::debug!(%user, "refused /metrics: the user may not get /metrics");
            Some(text(StatusCode::FORBIDDEN, &format!("user \"{user}\" may not get /metrics\n")))
        }
        Ok(Decision::Throttled) => {
            let mut response = text(StatusCode::TOO_MANY_REQUESTS, "too many unknown tokens, retry later\n");
            response.headers_mut().insert(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"));
            Some(response)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a /metrics caller");
            Some(text(StatusCode::INTERNAL_SERVER_ERROR, "cannot check access\n"))
        }
    }
}

/// The metrics port: `/metrics` for authorized callers, nothing else.
async fn metrics_handler(
    endpoints: Endpoints,
    access: Arc<MetricsAccess>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if let Some(refused) = refusal(&access, &request).await {
        return refused;
    }
    match endpoints.metrics.encode() {
        Ok(body) => respond(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", body),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n"),
    }
}

/// The probe port: `/healthz` and `/readyz`, nothing else (metrics are never served without TLS and the
/// access check).
fn probe_handler(endpoints: &Endpoints, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if endpoints.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ok\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "watches not synced yet\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Binds `addr` (bind errors surface before the server runs).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })
}

/// Accepts connections from `accept` until the future is dropped and hands each to `serve` with its
/// connection permit; over `max_connections` a new connection is dropped (closed) at once. A failed accept
/// (typically EMFILE: out of file descriptors; the pending connection stays queued, so retrying at once
/// would fail again at once and spin a core) pauses the loop, longer while it keeps failing.
pub async fn accept_loop<S, A, F, H>(name: &'static str, max_connections: usize, mut accept: A, mut serve: H)
where
    A: FnMut() -> F,
    F: Future<Output = std::io::Result<S>>,
    H: FnMut(S, OwnedSemaphorePermit),
{
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    // A client holding the port at its limit must not flood the log either: one warning a minute.
    let mut warned: Option<tokio::time::Instant> = None;
    loop {
        match accept().await {
            Ok(stream) => {
                backoff = ACCEPT_BACKOFF_MIN;
                match permits.clone().try_acquire_owned() {
                    Ok(permit) => serve(stream, permit),
                    Err(_) => {
                        if warned.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_INTERVAL) {
                            tracing::warn!(
                                server = name,
                                max_connections,
                                "connection limit reached: closing new connections"
                            );
                            warned = Some(tokio::time::Instant::now());
                        }
                        drop(stream);
                    }
                }
            }
            Err(error) => {
                if backoff == ACCEPT_BACKOFF_MIN {
                    tracing::warn!(server = name, %error, "cannot accept connections; retrying with backoff");
                } else {
                    tracing::debug!(server = name, %error, retry_in = ?backoff, "cannot accept connections");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// Serves one HTTP/1.1 request on `io` with the header and request limits, then closes the connection.
async fn serve_one<I, H, R>(io: I, limits: Limits, handler: H)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> R + Send + 'static,
    R: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let service = service_fn(move |request| {
        let handler = handler.clone();
        async move {
            let response = match tokio::time::timeout(limits.request_timeout, handler(request)).await {
                Ok(response) => response,
                Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n"),
            };
            Ok::<_, Infallible>(response)
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD)
        // One request per connection: nothing stays open between scrapes or probes.
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// Serves the probes (`/healthz`, `/readyz`) over plain HTTP on `listener` until the future is dropped.
pub async fn serve_probes(listener: TcpListener, endpoints: Endpoints, limits: Limits) {
    accept_loop(
        "probes",
        limits.max_connections,
        || accept_tcp(&listener),
        move |stream, permit| {
            let endpoints = endpoints.clone();
            tokio::spawn(async move {
                let handler = move |request: Request<Incoming>| std::future::ready(probe_handler(&endpoints, &request));
                let _ = tokio::time::timeout(limits.connection_deadline(), serve_one(stream, limits, handler)).await;
                drop(permit);
            });
        },
    )
    .await;
}

async fn accept_tcp(listener: &TcpListener) -> std::io::Result<TcpStream> {
    listener.accept().await.map(|(stream, _)| stream)
}

/// Serves `/metrics` over HTTPS on `listener` until the future is dropped, with `certificates` (checked for
/// a mounted certificate and renewals every `poll`) and the protocol versions and cipher suites of the
/// cluster TLS profile, which apply to new connections as soon as the profile changes. Only callers
/// `access` admits get the metrics.
pub async fn serve_metrics(
    listener: TcpListener,
    endpoints: Endpoints,
    certificates: Arc<ServingCertificates>,
    platform: PlatformState,
    access: Arc<MetricsAccess>,
    limits: Limits,
    poll: Duration,
) -> Result<(), ServerError> {
    let current = Arc::new(RwLock::new(tls_config(&certificates, platform.get().tls_profile.as_ref())?));
    let refresh = {
        let certificates = certificates.clone();
        async move {
            loop {
                tokio::time::sleep(poll).await;
                certificates.refresh(Timestamp::now());
            }
        }
    };
    let follow_profile = {
        let (certificates, current) = (certificates.clone(), current.clone());
        let mut changes = platform.subscribe();
        async move {
            while changes.changed().await.is_ok() {
                match tls_config(&certificates, platform.get().tls_profile.as_ref()) {
                    Ok(config) => {
                        if let Ok(mut slot) = current.write() {
                            *slot = config;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "keeping the previous TLS settings of the metrics endpoint"),
                }
            }
            std::future::pending::<()>().await;
        }
    };
    let serve = accept_loop(
        "metrics",
        limits.max_connections,
        || accept_tcp(&listener),
        |stream, permit| {
            let Ok(config) = current.read().map(|c| c.clone()) else {
                return;
            };
            let (endpoints, access) = (endpoints.clone(), access.clone());
            tokio::spawn(async move {
                let connection = async move {
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let stream = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let handler = move |request| metrics_handler(endpoints.clone(), access.clone(), request);
                    serve_one(stream, limits, handler).await;
                };
                let _ = tokio::time::timeout(limits.connection_deadline(), connection).await;
                drop(permit);
            });
        },
    );
    tokio::select! {
        () = serve => {}
        () = refresh => {}
        () = follow_profile => {}
    }
    Ok(())
}

/// The cipher suites and protocol versions rustls offers under a TLS profile. rustls implements TLS 1.2
/// and 1.3 only, so older minimums get 1.2 (stricter, never weaker); TLS 1.3 suites are always allowed
/// with 1.3, as the profile's own TLS 1.3 list cannot be restricted in Go either. With no profile (not
/// OpenShift) rustls' defaults apply.
pub fn tls_choices(
    profile: Option<&TlsProfile>,
) -> (Vec<rustls::SupportedCipherSuite>, Vec<&'static rustls::SupportedProtocolVersion>) {
    let all = rustls::crypto::ring::default_provider().cipher_suites;
    let Some(profile) = profile else {
        return (all, rustls::DEFAULT_VERSIONS.to_vec());
    };
    if profile.min_version == TlsVersion::Tls13 {
        let suites = all.into_iter().filter(|s| s.tls13().is_some()).collect();
        return (suites, vec![&rustls::version::TLS13]);
    }
    let named: Vec<_> = all
        .iter()
        .filter(|s| s.tls13().is_some() || profile.ciphers.iter().any(|c| *c == format!("{:?}", s.suite())))
        .copied()
        .collect();
    // A profile naming no TLS 1.2 suite rustls has would leave TLS 1.2 clients with nothing: keep 1.3.
    if named.iter().all(|s| s.tls13().is_some()) {
        return (named, vec![&rustls::version::TLS13]);
    }
    (named, vec![&rustls::version::TLS12, &rustls::version::TLS13])
}

fn tls_config(
    certificates: &Arc<ServingCertificates>,
    profile: Option<&TlsProfile>,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let (suites, versions) = tls_choices(profile);
    let provider = rustls::crypto::CryptoProvider { cipher_suites: suites, ..rustls::crypto::ring::default_provider() };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_failing_accept_backs_off_instead_of_spinning() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let accept = move || {
            counted.fetch_add(1, Ordering::Relaxed);
            // EMFILE: the process is out of file descriptors.
            std::future::ready(Err::<(), _>(std::io::Error::from_raw_os_error(24)))
        };
        let looping = accept_loop("test", 1, accept, |(), _| {});
        let _ = tokio::time::timeout(Duration::from_secs(2), looping).await;
        // 50, 100, 200, 400, 800 ms, then 1 s: about 6 attempts in 2 s (fewer on a slow machine); a loop
        // retrying at once makes millions.
        let n = calls.load(Ordering::Relaxed);
        assert!((2..=20).contains(&n), "{n} accept attempts in 2 s");
    }

    /// A connection that reports when it is closed (dropped).
    struct Conn(Option<tokio::sync::oneshot::Sender<()>>);

    impl Drop for Conn {
        fn drop(&mut self) {
            if let Some(closed) = self.0.take() {
                let _ = closed.send(());
            }
        }
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_closed_at_once_and_served_again_below_it() {
        let (incoming, queue) = tokio::sync::mpsc::unbounded_channel::<std::io::Result<Conn>>();
        let queue = Arc::new(tokio::sync::Mutex::new(queue));
        let held: Arc<Mutex<Vec<(Conn, OwnedSemaphorePermit)>>> = Arc::default();
        let accept = {
            let queue = queue.clone();
            move || {
                let queue = queue.clone();
                async move {
                    match queue.lock().await.recv().await {
                        Some(next) => next,
                        None => std::future::pending().await,
                    }
                }
            }
        };
        let serving = held.clone();
        let server = tokio::spawn(accept_loop("test", 2, accept, move |conn, permit| {
            serving.lock().unwrap().push((conn, permit))
        }));
        let mut closed = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            incoming.send(Ok(Conn(Some(tx)))).unwrap();
            closed.push(rx);
        }
        // The third is over the limit of two: closed without being served.
        tokio::time::timeout(Duration::from_secs(10), closed.pop().unwrap()).await.unwrap().unwrap();
        assert_eq!(held.lock().unwrap().len(), 2);
        // A failed accept in between does not stop the loop; a finished connection frees its slot.
        incoming.send(Err(std::io::Error::from_raw_os_error(24))).unwrap();
        drop(held.lock().unwrap().remove(0));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        incoming.send(Ok(Conn(Some(tx)))).unwrap();
        eventually_len(&held, 2).await;
        assert!(rx.try_recv().is_err(), "a connection under the limit was closed");
        server.abort();
    }

    async fn eventually_len<T>(held: &Mutex<Vec<T>>, len: usize) {
        for _ in 0..200 {
            if held.lock().unwrap().len() == len {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("never {len} connections served");
    }

    fn names(suites: &[rustls::SupportedCipherSuite]) -> Vec<String> {
        suites.iter().map(|s| format!("{:?}", s.suite())).collect()
    }

    #[test]
    fn modern_allows_tls13_only() {
        let (suites, versions) = tls_choices(Some(&TlsProfile::modern()));
        assert_eq!(versions.len(), 1);
        assert_eq!(versions[0].version, rustls::ProtocolVersion::TLSv1_3);
        assert!(suites.iter().all(|s| s.tls13().is_some()));
    }

    #[test]
    fn intermediate_offers_its_tls12_suites_and_tls13() {
        let (suites, versions) = tls_choices(Some(&TlsProfile::intermediate()));
        assert_eq!(versions.len(), 2);
        let names = names(&suites);
        assert!(names.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".to_string()), "{names:?}");
        assert!(names.contains(&"TLS13_AES_256_GCM_SHA384".to_string()), "{names:?}");
    }

    #[test]
    fn a_custom_profile_limits_the_tls12_suites() {
        let profile = TlsProfile {
            min_version: TlsVersion::Tls12,
            ciphers: vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into()],
        };
        let (suites, _) = tls_choices(Some(&profile));
        let tls12: Vec<String> =
            suites.iter().filter(|s| s.tls13().is_none()).map(|s| format!("{:?}", s.suite())).collect();
        assert_eq!(tls12, vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".to_string()]);
    }
}
