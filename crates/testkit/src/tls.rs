//! Serving certificates as the service-ca mounts them, and an HTTPS client that trusts one: for tests of
//! the operator's HTTPS `/metrics`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed `localhost` certificate in its own temporary directory.
pub struct ServingCertificate {
    /// The directory holding `tls.crt` and `tls.key` (removed on drop).
    pub dir: tempfile::TempDir,
    /// The certificate, for a client to trust.
    pub cert: CertificateDer<'static>,
}

/// Writes a fresh self-signed `localhost` certificate into a new temporary directory.
pub fn serving_certificate() -> ServingCertificate {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temporary directory: {e}"));
    let cert = write_serving_certificate(dir.path());
    ServingCertificate { dir, cert }
}

/// Writes a fresh self-signed `localhost` certificate as `tls.key` then `tls.crt` into `dir`; returns it.
pub fn write_serving_certificate(dir: &Path) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    let cert = params.self_signed(&key).unwrap_or_else(|e| panic!("certificate: {e}"));
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap_or_else(|e| panic!("tls.key: {e}"));
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap_or_else(|e| panic!("tls.crt: {e}"));
    cert.der().clone()
}

/// `GET path` over HTTPS to `localhost` at `addr`, trusting only `trusted`, offering only `versions`, with
/// extra header lines (each ending in CRLF). The whole response, status line first; `Err` when the
/// handshake or the read fails. Panics when nothing listens at `addr` (a dead server is never "refused").
pub async fn https_get(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    path: &str,
    headers: &str,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let server = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let mut tls = connector.connect(server, tcp).await.map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n");
    tls.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await.map_err(|e| e.to_string())?;
    Ok(response)
}
