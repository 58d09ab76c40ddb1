//! The operator's `/metrics` over HTTPS: served with the mounted certificate and the cluster TLS profile,
//! which applies to new connections as soon as it changes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cma_operator::controller::context::PlatformState;
use cma_operator::metrics::Metrics;
use cma_operator::platform::{Platform, TlsProfile};
use cma_operator::server::{Endpoints, bind, serve_https};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Served {
    addr: std::net::SocketAddr,
    cert: CertificateDer<'static>,
    platform: PlatformState,
    _dir: tempfile::TempDir,
}

async fn serve(platform: Platform) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoints = Endpoints { metrics: Arc::new(Metrics::new()), ready: Arc::new(AtomicBool::new(true)) };
    let state = PlatformState::new(platform);
    let path = dir.path().to_path_buf();
    let served = state.clone();
    tokio::spawn(async move { serve_https(listener, endpoints, path, served).await.unwrap() });
    Served { addr, cert: cert.der().clone(), platform: state, _dir: dir }
}

/// GET /metrics with a client limited to `versions`; `Err` when the handshake fails.
async fn get(served: &Served, versions: &[&'static rustls::SupportedProtocolVersion]) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(served.cert.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    let mut tls =
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.map_err(|e| e.to_string())?;
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.map_err(|e| e.to_string())?;
    Ok(response)
}

#[tokio::test]
async fn metrics_are_served_over_tls_with_the_mounted_certificate() {
    let served = serve(Platform::kubernetes()).await;
    let response = get(&served, &[&rustls::version::TLS12]).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("keda_controller_ready"), "{response}");
}

#[tokio::test]
async fn the_modern_profile_refuses_tls12_and_a_profile_change_applies_to_new_connections() {
    let mut modern = Platform::openshift();
    modern.tls_profile = Some(TlsProfile::modern());
    let served = serve(modern).await;
    assert!(get(&served, &[&rustls::version::TLS12]).await.is_err(), "TLS 1.2 accepted under the Modern profile");
    assert!(get(&served, &[&rustls::version::TLS13]).await.unwrap().starts_with("HTTP/1.1 200"));

    served.platform.set(Platform::openshift());
    let mut accepted = false;
    for _ in 0..50 {
        if get(&served, &[&rustls::version::TLS12]).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(accepted, "TLS 1.2 still refused after the switch to the Intermediate profile");
}
