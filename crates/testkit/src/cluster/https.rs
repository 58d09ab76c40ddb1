//! A small HTTPS server for what the API server calls out to (the test kubelet, an aggregated API's stand-in):
//! a self-signed certificate (the API server is told not to verify it, or verifies none), HTTP/1.1, one
//! synchronous handler per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// A request as a handler sees it: the path, the decoded query pairs in order.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub(super) path: String,
    pub(super) query: Vec<(String, String)>,
}

/// An answer: status code, content type, body.
pub(super) type Response = (u16, &'static str, Bytes);

/// What answers requests.
pub(super) type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A TLS configuration with a fresh self-signed certificate for `127.0.0.1` and `localhost`.
pub(super) fn self_signed() -> Arc<rustls::ServerConfig> {
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("test server key: {e}"));
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap_or_else(|e| panic!("test server certificate parameters: {e}"));
    let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("test server certificate: {e}"));
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("test server TLS versions: {e}"))
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap_or_else(|e| panic!("test server TLS configuration: {e}"));
    // The API server's client offers h2 and http/1.1; hyper here speaks the latter.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Whether a server answers, and the wake-up for its accept loop when that changes.
#[derive(Clone, Default)]
pub(super) struct Silence {
    silent: Arc<AtomicBool>,
    changed: Arc<tokio::sync::Notify>,
}

impl Silence {
    /// From now on: open connections are closed, new ones are accepted and left without a TLS handshake.
    pub(super) fn silence(&self) {
        self.silent.store(true, Ordering::Relaxed);
        self.changed.notify_one();
    }

    fn is_silent(&self) -> bool {
        self.silent.load(Ordering::Relaxed)
    }
}

/// Serves `handler` on `listener` until the task is aborted (which ends every connection too). Once `silence`
/// is set, open connections are closed and new ones accepted and left without a TLS handshake: a process that
/// hangs, as the API server's proxy sees it (its dial and handshake then run into their time limit).
pub(super) async fn serve(listener: TcpListener, handler: Handler, silence: Silence) {
    let acceptor = tokio_rustls::TlsAcceptor::from(self_signed());
    let mut connections = tokio::task::JoinSet::new();
    let mut held = Vec::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = silence.changed.notified() => {
                connections.abort_all();
                continue;
            }
        };
        if silence.is_silent() {
            held.push(stream);
            continue;
        }
        // Reap finished connections so the set does not grow with every request.
        while connections.try_join_next().is_some() {}
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move {
                    let uri = request.uri();
                    let query = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    let (status, content_type, body) = handler(&Request { path: uri.path().to_string(), query });
                    hyper::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, content_type)
                        .body(Full::new(body))
                }
            });
            // A caller hanging up mid-answer is normal; nothing to report.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(tls), service).await;
        });
    }
}
