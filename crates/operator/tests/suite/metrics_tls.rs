//! The operator's `/metrics` over HTTPS: served with the mounted certificate and the cluster TLS profile,
//! which applies to new connections as soon as it changes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use cma_operator::context::PlatformState;
use cma_operator::metrics::Metrics;
use cma_operator::metrics_access::MetricsAccess;
use cma_operator::platform::{Platform, TlsProfile};
use cma_operator::server::{Endpoints, bind, serve_https, serve_metrics};
use cma_testkit::tls::{ServingCertificate, https_get, serving_certificate, write_serving_certificate};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Served {
    addr: std::net::SocketAddr,
    cert: CertificateDer<'static>,
    platform: PlatformState,
    _dir: tempfile::TempDir,
}

async fn serve(platform: Platform) -> Served {
    serve_with(platform, None).await
}

async fn serve_with(platform: Platform, access: Option<Arc<MetricsAccess>>) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ServingCertificate { dir, cert } = serving_certificate();
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoints = Endpoints { metrics: Arc::new(Metrics::new()), ready: Arc::new(AtomicBool::new(true)) };
    let state = PlatformState::new(platform);
    let path = dir.path().to_path_buf();
    let served = state.clone();
    tokio::spawn(async move { serve_https(listener, endpoints, path, served, access).await.unwrap() });
    Served { addr, cert, platform: state, _dir: dir }
}

/// GET /metrics with a client limited to `versions`; `Err` when the handshake fails.
async fn get(served: &Served, versions: &[&'static rustls::SupportedProtocolVersion]) -> Result<String, String> {
    get_with(served, versions, "").await
}

/// GET /metrics with extra header lines (each ending in CRLF).
async fn get_with(
    served: &Served,
    versions: &[&'static rustls::SupportedProtocolVersion],
    headers: &str,
) -> Result<String, String> {
    https_get(served.addr, &served.cert, versions, "/metrics", headers).await
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

/// GET /metrics over plain HTTP; `Err` when the server does not answer in HTTP.
async fn get_plain(addr: std::net::SocketAddr) -> Result<String, String> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).to_string();
    match read {
        Ok(Ok(_)) if text.starts_with("HTTP/1.1 200") => Ok(text),
        _ => Err(text),
    }
}

#[tokio::test]
async fn metrics_switch_to_https_when_the_certificate_appears_without_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoints = Endpoints { metrics: Arc::new(Metrics::new()), ready: Arc::new(AtomicBool::new(true)) };
    let state = PlatformState::new(Platform::openshift());
    let (path, served) = (dir.path().to_path_buf(), state.clone());
    let poll = std::time::Duration::from_millis(50);
    tokio::spawn(async move { serve_metrics(listener, endpoints, Some(path), served, poll, None).await.unwrap() });

    // The mount is empty on a first install: plain HTTP meanwhile.
    let response = get_plain(addr).await.unwrap();
    assert!(response.contains("keda_controller_ready"), "{response}");
    // Files that do not load (half written) are not a certificate yet: still HTTP, and the server survives.
    std::fs::write(dir.path().join("tls.crt"), "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    std::fs::write(dir.path().join("tls.key"), "").unwrap();
    tokio::time::sleep(poll * 4).await;
    assert!(get_plain(addr).await.is_ok(), "a broken certificate ended plain HTTP");

    let cert = write_serving_certificate(dir.path());
    let served = Served { addr, cert, platform: state, _dir: dir };
    let mut switched = false;
    for _ in 0..100 {
        if let Ok(response) = get(&served, &[&rustls::version::TLS13]).await {
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            switched = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(switched, "still no HTTPS 5 s after the certificate appeared");
    assert!(get_plain(addr).await.is_err(), "plain HTTP still answered after the switch to HTTPS");
}

#[tokio::test]
async fn without_a_certificate_directory_metrics_stay_on_http() {
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoints = Endpoints { metrics: Arc::new(Metrics::new()), ready: Arc::new(AtomicBool::new(true)) };
    let state = PlatformState::new(Platform::kubernetes());
    let poll = std::time::Duration::from_millis(50);
    tokio::spawn(async move { serve_metrics(listener, endpoints, None, state, poll, None).await.unwrap() });
    assert!(get_plain(addr).await.unwrap().contains("keda_controller_ready"));
}

const PROMETHEUS: &str = "system:serviceaccount:openshift-monitoring:prometheus-k8s";

/// An HTTPS metrics endpoint guarded by the fake API server: `scraper-token` belongs to prometheus-k8s, which
/// may `get /metrics`; `dev-token` to a user who may not.
async fn guarded() -> (Served, cma_testkit::FakeApiServer) {
    let fake = cma_testkit::FakeApiServer::new();
    fake.add_token("scraper-token", PROMETHEUS, &["system:serviceaccounts", "system:authenticated"]);
    fake.add_token("dev-token", "dev", &["system:authenticated"]);
    fake.allow_non_resource(PROMETHEUS, "get", "/metrics");
    let access = Arc::new(MetricsAccess::new(fake.client()));
    (serve_with(Platform::openshift(), Some(access)).await, fake)
}

async fn status_of(served: &Served, headers: &str) -> String {
    let response = get_with(served, &[&rustls::version::TLS13], headers).await.unwrap();
    response.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn https_metrics_answer_only_callers_the_api_server_authorizes() {
    let (served, fake) = guarded().await;
    assert_eq!(status_of(&served, "").await, "HTTP/1.1 401 Unauthorized");
    assert_eq!(status_of(&served, "Authorization: Basic dXNlcjpwYXNz\r\n").await, "HTTP/1.1 401 Unauthorized");
    assert_eq!(status_of(&served, "Authorization: Bearer forged\r\n").await, "HTTP/1.1 401 Unauthorized");
    let refused = get_with(&served, &[&rustls::version::TLS13], "Authorization: Bearer dev-token\r\n").await.unwrap();
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains("user \"dev\" may not get /metrics"), "{refused}");
    assert!(!refused.contains("dev-token"), "the token was echoed: {refused}");
    let allowed =
        get_with(&served, &[&rustls::version::TLS13], "Authorization: Bearer scraper-token\r\n").await.unwrap();
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(allowed.contains("keda_controller_ready"), "{allowed}");

    // The review asked about exactly the caller's identity and `get /metrics`.
    let reviews: Vec<_> = fake.requests().into_iter().filter(|r| r.path.ends_with("/subjectaccessreviews")).collect();
    let body = reviews.last().and_then(|r| r.body.clone()).unwrap();
    assert_eq!(body["spec"]["user"], PROMETHEUS);
    assert_eq!(body["spec"]["nonResourceAttributes"], serde_json::json!({"path": "/metrics", "verb": "get"}));
}

#[tokio::test]
async fn decisions_are_cached_so_steady_scrapes_cost_no_api_requests() {
    let (served, fake) = guarded().await;
    for _ in 0..5 {
        assert_eq!(status_of(&served, "Authorization: Bearer scraper-token\r\n").await, "HTTP/1.1 200 OK");
        assert!(status_of(&served, "Authorization: Bearer dev-token\r\n").await.starts_with("HTTP/1.1 403"));
    }
    // One TokenReview and one SubjectAccessReview per token, whatever the number of scrapes.
    assert_eq!(fake.requests().len(), 4, "{:?}", fake.requests().iter().map(|r| &r.path).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_api_failure_is_a_500_and_is_not_cached() {
    let (served, fake) = guarded().await;
    let matcher = cma_testkit::Matcher::resource("authentication.k8s.io", "tokenreviews");
    fake.fail_next(1, matcher, 503);
    let failed =
        get_with(&served, &[&rustls::version::TLS13], "Authorization: Bearer scraper-token\r\n").await.unwrap();
    assert!(failed.starts_with("HTTP/1.1 500"), "{failed}");
    assert!(!failed.contains("scraper-token"), "the token was echoed: {failed}");
    assert_eq!(status_of(&served, "Authorization: Bearer scraper-token\r\n").await, "HTTP/1.1 200 OK");
}
