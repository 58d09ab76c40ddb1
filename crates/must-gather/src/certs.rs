//! Certificate summaries: a Secret's `tls.crt` or `ca.crt` is redacted like every other value, but support
//! needs to know whom it names and when it expires (KEDA's gRPC, webhook and metrics API certificates are a
//! common cause of trouble), so the marker says it.

use x509_parser::pem::Pem;

/// `certificate subject="CN=..." issuer="CN=..." notBefore=... notAfter=... dns=[...]` for each certificate
/// when `value` holds PEM certificates and nothing else (no private key); `None` otherwise.
pub fn summary(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    if !text.contains("-----BEGIN CERTIFICATE-----") || text.contains("PRIVATE KEY") {
        return None;
    }
    let mut parts = Vec::new();
    for pem in Pem::iter_from_buffer(value) {
        let pem = pem.ok()?;
        if pem.label != "CERTIFICATE" {
            return None;
        }
        let cert = pem.parse_x509().ok()?;
        let validity = cert.validity();
        let mut part = format!(
            "certificate subject=\"{}\" issuer=\"{}\" notBefore={} notAfter={}",
            cert.subject(),
            cert.issuer(),
            rfc3339(&validity.not_before),
            rfc3339(&validity.not_after),
        );
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            let names: Vec<String> = san.value.general_names.iter().map(|n| n.to_string()).collect();
            if !names.is_empty() {
                part.push_str(&format!(" san=[{}]", names.join(", ")));
            }
        }
        parts.push(part);
    }
    (!parts.is_empty()).then(|| parts.join(" | "))
}

fn rfc3339(t: &x509_parser::time::ASN1Time) -> String {
    jiff::Timestamp::from_second(t.timestamp()).map(|ts| ts.to_string()).unwrap_or_else(|_| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed certificate for CN=keda-operator.keda.svc (generated once with rcgen, public data).
    const CERT: &str = include_str!("../tests/fixtures/keda-operator.crt");

    #[test]
    fn a_certificate_is_summarised_with_subject_and_expiry() {
        let s = summary(CERT.as_bytes()).unwrap();
        assert!(s.contains("subject=\"CN=keda-operator.keda.svc\""), "{s}");
        assert!(s.contains("notAfter="), "{s}");
        assert!(s.contains("keda-operator.keda.svc.cluster.local"), "{s}");
        let bundle = format!("{CERT}{CERT}");
        assert_eq!(summary(bundle.as_bytes()).unwrap().matches(" | ").count(), 1);
    }

    #[test]
    fn anything_else_is_not_a_certificate() {
        assert!(summary(b"password").is_none());
        let with_key = format!("{CERT}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        assert!(summary(with_key.as_bytes()).is_none());
        assert!(summary(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n").is_none());
    }
}
