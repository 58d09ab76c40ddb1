//! The operator's HTTP endpoints: `/metrics` (HTTPS with rustls when a certificate is mounted, plain HTTP
//! otherwise) and the probes `/healthz` and `/readyz`.

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

use crate::metrics::Metrics;

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

async fn handle(endpoints: Endpoints, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
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
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(endpoints.clone(), req));
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        });
    }
}

/// Serves HTTPS on `listener` with the certificate in `dir` (`tls.crt`, `tls.key`), reloaded when the
/// files change (the service-ca operator rotates them in place).
pub async fn serve_https(listener: TcpListener, endpoints: Endpoints, dir: PathBuf) -> Result<(), ServerError> {
    let resolver = Arc::new(ReloadingCert::load(dir)?);
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Certificate { dir: resolver.dir.display().to_string(), message: e.to_string() })?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn({
        let resolver = resolver.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                resolver.reload_if_changed();
            }
        }
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = service_fn(move |req| handle(endpoints.clone(), req));
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, "HTTPS connection ended with an error");
            }
        });
    }
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
