//! The operator's two HTTP servers under slow and numerous clients, over real sockets: slow clients are
//! disconnected, connections over the cap are closed at once, a request that takes too long is answered
//! 503, and the servers keep serving afterwards. Time limits are short here and every bound a test waits
//! for is generous, so a loaded machine only makes the tests slower.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use cma_operator::context::PlatformState;
use cma_operator::metrics::Metrics;
use cma_operator::metrics_access::MetricsAccess;
use cma_operator::metrics_cert::{SelfIssued, ServingCertificates};
use cma_operator::platform::Platform;
use cma_operator::server::{Endpoints, Limits, bind, serve_metrics, serve_probes};
use k8s_openapi::jiff::Timestamp;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a test waits for something that should happen within about a second.
const GENEROUS: Duration = Duration::from_secs(30);

fn limits(max_connections: usize, timeout: Duration) -> Limits {
    Limits { max_connections, handshake_timeout: timeout, header_read_timeout: timeout, request_timeout: timeout }
}

fn endpoints() -> Endpoints {
    Endpoints { metrics: Arc::new(Metrics::new()), ready: Arc::new(AtomicBool::new(true)) }
}

async fn probes(limits: Limits) -> SocketAddr {
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_probes(listener, endpoints(), limits));
    addr
}

/// An "API server" that accepts connections and never answers; the sockets are kept open.
async fn black_hole() -> kube::Client {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

/// A metrics endpoint whose access checks go to an API server that never answers.
async fn metrics(limits: Limits) -> (SocketAddr, CertificateDer<'static>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let own = SelfIssued::new("keda", Timestamp::now()).unwrap();
    let ca = own.ca_der();
    let certificates = Arc::new(ServingCertificates::new(own, None));
    let access = Arc::new(MetricsAccess::new(black_hole().await));
    let platform = PlatformState::new(Platform::kubernetes());
    let poll = Duration::from_secs(10);
    tokio::spawn(async move {
        serve_metrics(listener, endpoints(), certificates, platform, access, limits, poll).await.unwrap();
    });
    (addr, ca)
}

/// Whether the peer closes the connection within `within` (reading and discarding what it sends).
async fn closed_within(stream: &mut (impl AsyncRead + Unpin), within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(GENEROUS, tcp.read_to_string(&mut response)).await.unwrap().unwrap();
    response
}

async fn tls_connect(addr: SocketAddr, ca: &CertificateDer<'static>) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap()
}

#[tokio::test]
async fn the_probe_port_serves_the_probes_and_never_the_metrics() {
    let addr = probes(Limits::PROBES).await;
    assert!(http_get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
    assert!(http_get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
    let metrics = http_get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 404"), "{metrics}");
    assert!(!metrics.contains("keda_controller"), "{metrics}");
}

#[tokio::test]
async fn a_client_dripping_its_headers_is_disconnected() {
    let addr = probes(limits(16, Duration::from_secs(1))).await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    write.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // One header byte every 100 ms, never the blank line that ends the headers.
    let drip = tokio::spawn(async move {
        while write.write_all(b"X").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(closed_within(&mut read, GENEROUS).await, "still connected after {GENEROUS:?}");
    drip.abort();
    assert!(http_get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_client_that_never_starts_the_tls_handshake_is_disconnected() {
    let (addr, _) = metrics(limits(16, Duration::from_secs(1))).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut tcp, GENEROUS).await, "still connected after {GENEROUS:?}");
}

#[tokio::test]
async fn a_client_stalling_in_the_tls_handshake_is_disconnected() {
    let (addr, _) = metrics(limits(16, Duration::from_secs(1))).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The start of a TLS record header (a ClientHello), then nothing.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    assert!(closed_within(&mut tcp, GENEROUS).await, "still connected after {GENEROUS:?}");
}

#[tokio::test]
async fn an_https_client_that_never_finishes_its_headers_is_disconnected() {
    let (addr, ca) = metrics(limits(16, Duration::from_secs(1))).await;
    let mut tls = tls_connect(addr, &ca).await;
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    tls.flush().await.unwrap();
    assert!(closed_within(&mut tls, GENEROUS).await, "still connected after {GENEROUS:?}");
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once_and_served_again_when_others_end() {
    // Long time limits: whatever closes a connection within seconds here is the cap.
    let addr = probes(limits(3, Duration::from_secs(120))).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(tcp);
    }
    // The three are accepted and served (kept waiting for their headers) before the fourth comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut extra, Duration::from_secs(20)).await, "a 4th connection stayed open over a cap of 3");
    for tcp in &mut held {
        assert!(!closed_within(tcp, Duration::from_millis(100)).await, "a connection under the cap was closed");
    }
    drop(held);
    cma_testkit::cluster::eventually(GENEROUS, "probes are served again", async || {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        let mut response = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response)).await;
        response.starts_with("HTTP/1.1 200")
    })
    .await;
}

#[tokio::test]
async fn a_request_the_api_server_never_answers_gets_a_503() {
    let (addr, ca) = metrics(limits(16, Duration::from_secs(1))).await;
    let mut tls = tls_connect(addr, &ca).await;
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer some-token\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(GENEROUS, tls.read_to_end(&mut response)).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
}

#[tokio::test]
async fn a_request_head_over_16_kib_is_refused_at_once_rather_than_buffered() {
    // A long header time limit: whatever ends the connection within seconds is the size limit.
    let addr = probes(limits(16, Duration::from_secs(120))).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: ").await.unwrap();
    // The server may stop reading (and close) before all of it is sent.
    let _ = tcp.write_all(&vec![b'a'; 64 * 1024]).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut response)).await;
    assert!(read.is_ok(), "still connected 20 s after sending a 64 KiB request head");
    let response = String::from_utf8_lossy(&response);
    assert!(response.is_empty() || response.starts_with("HTTP/1.1 431"), "{response}");
}
