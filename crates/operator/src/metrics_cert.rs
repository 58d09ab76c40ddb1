//! The serving certificate of the operator's HTTPS `/metrics`.
//!
//! `/metrics` is never served without TLS. Where a certificate is mounted (on OpenShift the service-ca
//! operator writes one for the `cma-operator-metrics` Service) that one is served, reloaded when its files
//! change. Everywhere else, and on OpenShift until the service-ca has written it, the operator serves a
//! certificate it issues itself at start-up: a CA and a leaf for `cma-operator-metrics.<ns>.svc`, both kept
//! in memory only (the keys never reach the API server or the disk). The CA's certificate is published in
//! ConfigMap `cma-operator-metrics-ca` through the normal render/apply path, and the operator's
//! ServiceMonitor on plain Kubernetes trusts it from there. A restart issues a new CA; the leader publishes
//! it on its first reconcile.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rcgen::{CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::certs;
use crate::render::monitoring::OPERATOR_METRICS_SERVICE;

/// Validity of the in-memory CA: longer than any process lives, so its ConfigMap never needs to change
/// while the process runs.
pub const CA_VALIDITY: SignedDuration = SignedDuration::from_hours(24 * 3650);
/// Validity of the leaf certificate.
pub const LEAF_VALIDITY: SignedDuration = SignedDuration::from_hours(24 * 90);
/// The leaf is renewed (same CA, so scrapers keep trusting it) when less than this is left.
pub const LEAF_RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(24 * 30);

/// Why a serving certificate could not be issued or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// rcgen failed (key generation, signing).
    #[error("cannot issue the metrics serving certificate: {0}")]
    Issue(#[from] rcgen::Error),
    /// rustls refused the generated or mounted key.
    #[error("cannot use the metrics serving key: {0}")]
    Key(String),
    /// A time outside what certificates can express.
    #[error("cannot compute the metrics certificate validity: {0}")]
    Time(String),
    /// The mounted certificate or key could not be read.
    #[error("cannot load the metrics certificate from {dir}: {message}")]
    Mounted {
        /// The directory.
        dir: String,
        /// What went wrong.
        message: String,
    },
}

/// The DNS names of the operator's metrics Service in `namespace`, plus `localhost` for local runs.
pub fn service_names(namespace: &str) -> Vec<String> {
    let [short, svc, fqdn] = cma_api::names::service_dns_names(OPERATOR_METRICS_SERVICE, namespace);
    vec![short, format!("{OPERATOR_METRICS_SERVICE}.{namespace}"), svc, fqdn, "localhost".to_string()]
}

/// A leaf in use and when it should be renewed.
struct Leaf {
    key: Arc<CertifiedKey>,
    renew_at: Timestamp,
}

/// A CA and a serving certificate issued by the operator for itself, kept in memory.
pub struct SelfIssued {
    issuer: CertifiedIssuer<'static, KeyPair>,
    names: Vec<String>,
    leaf: RwLock<Leaf>,
}

impl std::fmt::Debug for SelfIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfIssued").field("names", &self.names).finish_non_exhaustive()
    }
}

impl SelfIssued {
    /// Issues a new CA and a leaf for the metrics Service of `namespace`, valid from `now`.
    pub fn new(namespace: &str, now: Timestamp) -> Result<Self, CertificateError> {
        let common_name = format!("cma-operator-metrics-ca@{}", now.as_second());
        let params =
            certs::ca_params(&common_name, "cma-operator", now, CA_VALIDITY).map_err(CertificateError::Time)?;
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let names = service_names(namespace);
        let leaf = issue_leaf(&issuer, &names, now)?;
        Ok(SelfIssued { issuer, names, leaf: RwLock::new(leaf) })
    }

    /// The CA certificate (PEM), for scrapers to trust.
    pub fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate (DER).
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The leaf in use.
    pub fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        self.leaf.read().ok().map(|l| l.key.clone())
    }

    /// Issues a new leaf under the same CA when the current one is due for renewal; returns whether it did.
    pub fn renew_if_due(&self, now: Timestamp) -> Result<bool, CertificateError> {
        let due = self.leaf.read().map(|l| now >= l.renew_at).unwrap_or(true);
        if !due {
            return Ok(false);
        }
        let leaf = issue_leaf(&self.issuer, &self.names, now)?;
        if let Ok(mut slot) = self.leaf.write() {
            *slot = leaf;
        }
        Ok(true)
    }
}

fn issue_leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[String],
    now: Timestamp,
) -> Result<Leaf, CertificateError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(DnType::CommonName, OPERATOR_METRICS_SERVICE);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    certs::set_validity(&mut params, now, LEAF_VALIDITY).map_err(CertificateError::Time)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let chain = vec![cert.der().clone(), issuer.der().clone()];
    Ok(Leaf { key: certified_key(chain, der)?, renew_at: now + LEAF_VALIDITY - LEAF_RENEW_BEFORE })
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<CertifiedKey>, CertificateError> {
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider.key_provider.load_private_key(key).map_err(|e| CertificateError::Key(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing_key)))
}

/// A mounted certificate and the modification time it was read at.
struct Mounted {
    key: Arc<CertifiedKey>,
    modified: Option<SystemTime>,
}

/// What `/metrics` serves: the mounted certificate when one loads, otherwise the self-issued one.
pub struct ServingCertificates {
    own: SelfIssued,
    dir: Option<PathBuf>,
    mounted: RwLock<Option<Mounted>>,
}

impl std::fmt::Debug for ServingCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCertificates").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl ServingCertificates {
    /// Serves `own`, or the certificate mounted in `dir` (`tls.crt`, `tls.key`) once it loads.
    pub fn new(own: SelfIssued, dir: Option<PathBuf>) -> Self {
        let certificates = ServingCertificates { own, dir, mounted: RwLock::new(None) };
        certificates.refresh(Timestamp::now());
        certificates
    }

    /// The self-issued CA and certificate.
    pub fn own(&self) -> &SelfIssued {
        &self.own
    }

    /// Whether the mounted certificate is the one served.
    pub fn serving_mounted(&self) -> bool {
        self.mounted.read().map(|m| m.is_some()).unwrap_or(false)
    }

    /// Loads the mounted certificate when it appeared or changed (the service-ca operator writes it after
    /// the Service exists and rotates it in place) and renews the self-issued leaf when due. A mounted
    /// pair that does not load (half written) keeps what is served now.
    pub fn refresh(&self, now: Timestamp) {
        if let Err(e) = self.own.renew_if_due(now) {
            tracing::warn!(error = %e, "keeping the current self-issued metrics certificate");
        }
        let Some(dir) = &self.dir else {
            return;
        };
        let modified = modified(dir);
        let unchanged = self.mounted.read().map(|m| m.as_ref().map(|m| m.modified) == Some(modified)).unwrap_or(true);
        if unchanged || modified.is_none() {
            return;
        }
        match read_mounted(dir) {
            Ok(key) => {
                if let Ok(mut slot) = self.mounted.write() {
                    let first = slot.is_none();
                    *slot = Some(Mounted { key, modified });
                    tracing::info!(dir = %dir.display(), first, "serving the mounted metrics certificate");
                }
            }
            Err(e) => tracing::debug!(error = %e, "no usable mounted metrics certificate yet"),
        }
    }
}

impl ResolvesServerCert for ServingCertificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mounted = self.mounted.read().ok().and_then(|m| m.as_ref().map(|m| m.key.clone()));
        mounted.or_else(|| self.own.certified_key())
    }
}

fn modified(dir: &Path) -> Option<SystemTime> {
    let cert = std::fs::metadata(dir.join("tls.crt")).and_then(|m| m.modified()).ok();
    let key = std::fs::metadata(dir.join("tls.key")).and_then(|m| m.modified()).ok();
    cert.max(key)
}

fn read_mounted(dir: &Path) -> Result<Arc<CertifiedKey>, CertificateError> {
    let fail = |message: String| CertificateError::Mounted { dir: dir.display().to_string(), message };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("tls.crt"))
        .map_err(|e| fail(format!("tls.crt: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(format!("tls.crt: {e}")))?;
    if certs.is_empty() {
        return Err(fail("tls.crt holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).map_err(|e| fail(format!("tls.key: {e}")))?;
    certified_key(certs, key).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_790_000_000).unwrap()
    }

    fn parse<'a>(der: &'a CertificateDer<'a>) -> x509_parser::certificate::X509Certificate<'a> {
        x509_parser::parse_x509_certificate(der).unwrap().1
    }

    #[test]
    fn the_leaf_names_the_service_and_chains_to_the_published_ca() {
        let own = SelfIssued::new("keda", now()).unwrap();
        let leaf = own.certified_key().unwrap();
        let cert = parse(&leaf.cert[0]);
        let ca = parse(&leaf.cert[1]);
        assert_eq!(leaf.cert[1], own.ca_der(), "the chain ends with the published CA");
        cert.verify_signature(Some(ca.public_key())).unwrap();
        let names: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert!(names.contains(&"DNSName(cma-operator-metrics.keda.svc)".to_string()), "{names:?}");
        assert!(ca.is_ca());
        assert!(!cert.is_ca());
        let (_, pem) = x509_parser::pem::parse_x509_pem(own.ca_pem().as_bytes()).unwrap();
        assert_eq!(pem.contents, own.ca_der().to_vec());
    }

    #[test]
    fn the_leaf_is_renewed_under_the_same_ca_before_it_expires() {
        let own = SelfIssued::new("keda", now()).unwrap();
        let first = own.certified_key().unwrap();
        assert!(!own.renew_if_due(now() + SignedDuration::from_hours(24)).unwrap());
        let due = now() + LEAF_VALIDITY - LEAF_RENEW_BEFORE;
        assert!(own.renew_if_due(due).unwrap());
        let renewed = own.certified_key().unwrap();
        assert_ne!(first.cert[0], renewed.cert[0]);
        assert_eq!(renewed.cert[1], own.ca_der());
        let expiry = parse(&renewed.cert[0]).validity().not_after.timestamp();
        assert_eq!(expiry, (due + LEAF_VALIDITY).as_second());
    }

    #[test]
    fn every_start_issues_a_new_ca() {
        let a = SelfIssued::new("keda", now()).unwrap();
        let b = SelfIssued::new("keda", now()).unwrap();
        assert_ne!(a.ca_pem(), b.ca_pem());
    }

    #[test]
    fn a_mounted_certificate_wins_once_it_loads() {
        let dir = tempfile::tempdir().unwrap();
        let certificates = ServingCertificates::new(SelfIssued::new("keda", now()).unwrap(), Some(dir.path().into()));
        assert!(!certificates.serving_mounted());
        std::fs::write(dir.path().join("tls.crt"), "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
        std::fs::write(dir.path().join("tls.key"), "").unwrap();
        certificates.refresh(now());
        assert!(!certificates.serving_mounted(), "a half-written pair was taken");
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
        std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("tls.crt"), cert.pem()).unwrap();
        // A filesystem with coarse timestamps may see the same modification time: force a difference.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(dir.path().join("tls.crt")).unwrap().set_modified(later).unwrap();
        certificates.refresh(now());
        assert!(certificates.serving_mounted());
    }
}
