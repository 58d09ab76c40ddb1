//! The operator's HTTP endpoints: `/metrics` (HTTPS with rustls when a certificate is mounted, callers
//! authenticated and authorized by the API server; plain HTTP otherwise) and the probes `/healthz` and
//! `/readyz`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

use crate::context::PlatformState;
use crate::metrics::Metrics;
use crate::metrics_access::{Decision, MetricsAccess};
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
    /// The certificate or key could not be loaded.
    #[error("cannot load the metrics certificate from {dir}: {message}")]
    Certificate {
        /// The directory.
        dir: String,
        /// What went wrong.
        message: String,
    },
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// Checks a `/metrics` caller over HTTPS; `Some(response)` refuses the request.
async fn refusal(access: &MetricsAccess, request: &Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let header = request.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match access.check(header).await {
        Ok(Decision::Allowed) => None,
        Ok(Decision::Unauthenticated) => {
            let mut response = respond(StatusCode::UNAUTHORIZED, "text/plain", "Unauthorized\n".into());
            response.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
            Some(response)
        }
        Ok(Decision::Forbidden(user)) => {
            tracing::debug!(%user, "refused /metrics: the user may not get /metrics");
            Some(respond(StatusCode::FORBIDDEN, "text/plain", format!("user \"{user}\" may not get /metrics\n")))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a /metrics caller");
            Some(respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "cannot check access\n".into()))
        }
    }
}

async fn handle(
    endpoints: Endpoints,
    access: Option<Arc<MetricsAccess>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(access) = access.filter(|_| request.uri().path() == "/metrics")
        && let Some(refused) = refusal(&access, &request).await
    {
        return Ok(refused);
    }
    let response = match request.uri().path() {
        "/metrics" => match endpoints.metrics.encode() {
            Ok(text) => respond(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", text),
            Err(_) => respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "cannot encode metrics\n".into()),
        },
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if endpoints.ready.load(Ordering::Relaxed) => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "watches not synced yet\n".into()),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    Ok(response)
}

/// Binds `addr` (bind errors surface before the server runs).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })
}

/// Serves plain HTTP on `listener` until the task is dropped.
pub async fn serve_http(listener: TcpListener, endpoints: Endpoints) {
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            spawn_http(stream, endpoints.clone());
        }
    }
}

fn spawn_http(stream: tokio::net::TcpStream, endpoints: Endpoints) {
    tokio::spawn(async move {
        let service = service_fn(move |req| handle(endpoints.clone(), None, req));
        if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
            tracing::debug!(error = %e, "HTTP connection ended with an error");
        }
    });
}

/// Whether `dir` holds a certificate and key that load (a half-written pair is not ready yet).
fn has_certificate(dir: &Path) -> bool {
    read_key(dir).is_ok()
}

/// Serves `/metrics`: plain HTTP without a certificate directory; with one, HTTPS as soon as it holds a
/// certificate, checked every `poll`. On OpenShift the service-ca operator writes the certificate only after
/// this operator has created its metrics Service, and the kubelet fills the optional secret volume later
/// still: serving HTTP until then and switching without a restart keeps the first install scrapeable.
/// Over HTTPS, callers are checked with `access` when given (see [`MetricsAccess`]).
pub async fn serve_metrics(
    listener: TcpListener,
    endpoints: Endpoints,
    dir: Option<PathBuf>,
    platform: PlatformState,
    poll: Duration,
    access: Option<Arc<MetricsAccess>>,
) -> Result<(), ServerError> {
    let Some(dir) = dir else {
        serve_http(listener, endpoints).await;
        return Ok(());
    };
    if !has_certificate(&dir) {
        tracing::info!(dir = %dir.display(), "no metrics certificate yet: serving /metrics over HTTP until it appears");
        // The first check is the one just made: the next is due after `poll`.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((stream, _)) = accepted {
                        spawn_http(stream, endpoints.clone());
                    }
                }
                _ = tick.tick() => if has_certificate(&dir) { break },
            }
        }
        tracing::info!(dir = %dir.display(), "metrics certificate found: serving /metrics over HTTPS");
    }
    serve_https(listener, endpoints, dir, platform, access).await
}

/// Serves HTTPS on `listener` with the certificate in `dir` (`tls.crt`, `tls.key`), reloaded when the
/// files change (the service-ca operator rotates them in place), and the protocol versions and cipher
/// suites of the cluster TLS profile, updated when the profile changes. With `access`, `/metrics` answers only
/// callers whose bearer token may `get /metrics`.
pub async fn serve_https(
    listener: TcpListener,
    endpoints: Endpoints,
    dir: PathBuf,
    platform: PlatformState,
    access: Option<Arc<MetricsAccess>>,
) -> Result<(), ServerError> {
    let resolver = Arc::new(ReloadingCert::load(dir)?);
    let current = Arc::new(RwLock::new(tls_config(&resolver, platform.get().tls_profile.as_ref())?));
    tokio::spawn({
        let resolver = resolver.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                resolver.reload_if_changed();
            }
        }
    });
    tokio::spawn({
        let (resolver, current) = (resolver.clone(), current.clone());
        let mut changes = platform.subscribe();
        async move {
            while changes.changed().await.is_ok() {
                match tls_config(&resolver, platform.get().tls_profile.as_ref()) {
                    Ok(config) => {
                        if let Ok(mut slot) = current.write() {
                            *slot = config;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "keeping the previous TLS settings of the metrics endpoint"),
                }
            }
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(config) = current.read().map(|c| c.clone()) else {
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (endpoints, access) = (endpoints.clone(), access.clone());
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = service_fn(move |req| handle(endpoints.clone(), access.clone(), req));
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "HTTPS connection ended with an error");
            }
        });
    }
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
    resolver: &Arc<ReloadingCert>,
    profile: Option<&TlsProfile>,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let (suites, versions) = tls_choices(profile);
    let provider = rustls::crypto::CryptoProvider { cipher_suites: suites, ..rustls::crypto::ring::default_provider() };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| ServerError::Certificate { dir: resolver.dir.display().to_string(), message: e.to_string() })?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A certificate read from a directory, replaced when its files change.
#[derive(Debug)]
struct ReloadingCert {
    dir: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Option<SystemTime>)>,
}

impl ReloadingCert {
    fn load(dir: PathBuf) -> Result<Self, ServerError> {
        let key = read_key(&dir)?;
        let modified = modified(&dir);
        Ok(ReloadingCert { dir, current: RwLock::new((key, modified)) })
    }

    fn reload_if_changed(&self) {
        let modified = modified(&self.dir);
        let unchanged = self.current.read().map(|c| c.1 == modified).unwrap_or(false);
        if unchanged {
            return;
        }
        match read_key(&self.dir) {
            Ok(key) => {
                if let Ok(mut current) = self.current.write() {
                    *current = (key, modified);
                    tracing::info!(dir = %self.dir.display(), "reloaded the metrics certificate");
                }
            }
            Err(e) => tracing::warn!(error = %e, "keeping the previous metrics certificate"),
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.0.clone())
    }
}

fn modified(dir: &Path) -> Option<SystemTime> {
    let cert = std::fs::metadata(dir.join("tls.crt")).and_then(|m| m.modified()).ok();
    let key = std::fs::metadata(dir.join("tls.key")).and_then(|m| m.modified()).ok();
    cert.max(key)
}

fn read_key(dir: &Path) -> Result<Arc<CertifiedKey>, ServerError> {
    let fail = |message: String| ServerError::Certificate { dir: dir.display().to_string(), message };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("tls.crt"))
        .map_err(|e| fail(format!("tls.crt: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("tls.crt: {e}")))?;
    if certs.is_empty() {
        return Err(fail("tls.crt holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).map_err(|e| fail(format!("tls.key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| fail(format!("tls.key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(certs, signing_key)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
