//! The gRPC mTLS certificates in `kedaorg-certs` on OpenShift, where KEDA's own rotation is off: a CA
//! ("KEDA", organisation "KEDAORG", as KEDA names its own) and a certificate for client and server auth
//! signed by it. Issued when missing or unreadable, renewed well before expiry; the CA is kept when only
//! the leaf needs renewing, so running pods keep trusting each other during the rollout.
//!
//! Key material never leaves this module except as Secret data; nothing here logs it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Keys of the Secret, as KEDA reads them.
pub const CA_CERT: &str = "ca.crt";
/// The CA's private key (needed to renew the leaf without a new CA).
pub const CA_KEY: &str = "ca.key";
/// The leaf certificate.
pub const TLS_CERT: &str = "tls.crt";
/// The leaf's private key.
pub const TLS_KEY: &str = "tls.key";

/// Validity of the CA.
pub const CA_VALIDITY: SignedDuration = SignedDuration::from_hours(24 * 3650);
/// Renew the CA when less than this is left.
pub const CA_RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(24 * 365);
/// Validity of the leaf certificate.
pub const LEAF_VALIDITY: SignedDuration = SignedDuration::from_hours(24 * 365);
/// Renew the leaf when less than this is left (a third of its life).
pub const LEAF_RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(24 * 122);

/// Why certificates could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen failed (key generation, signing).
    #[error("could not issue the gRPC certificates: {0}")]
    Issue(#[from] rcgen::Error),
    /// A time outside what certificates can express.
    #[error("could not compute the certificate validity: {0}")]
    Time(String),
}

/// What to do with the Secret's certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Valid; check again at this time.
    Keep {
        /// When the leaf (or the CA) enters its renewal window.
        renew_at: Timestamp,
    },
    /// Issue a new leaf signed by the existing CA.
    RenewLeaf(String),
    /// Issue a new CA and leaf.
    Issue(String),
}

/// Expiry of a PEM certificate, if it parses.
pub fn not_after(pem: &[u8]) -> Option<Timestamp> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Timestamp::from_second(cert.validity().not_after.timestamp()).ok()
}

fn data<'a>(secret: Option<&'a Secret>, key: &str) -> Option<&'a [u8]> {
    secret?.data.as_ref()?.get(key).map(|b| b.0.as_slice()).filter(|b| !b.is_empty())
}

/// Decides from the Secret's current content.
pub fn plan(secret: Option<&Secret>, now: Timestamp) -> Plan {
    let ca = data(secret, CA_CERT).and_then(not_after);
    let ca_key_ok =
        data(secret, CA_KEY).and_then(|k| std::str::from_utf8(k).ok()).is_some_and(|k| KeyPair::from_pem(k).is_ok());
    let leaf = data(secret, TLS_CERT).and_then(not_after);
    let leaf_key_ok =
        data(secret, TLS_KEY).and_then(|k| std::str::from_utf8(k).ok()).is_some_and(|k| KeyPair::from_pem(k).is_ok());
    let Some(ca) = ca.filter(|_| ca_key_ok) else {
        return Plan::Issue("no usable CA in the Secret".into());
    };
    let ca_renew = ca - CA_RENEW_BEFORE;
    if now >= ca_renew {
        return Plan::Issue(format!("the CA expires at {ca}"));
    }
    let Some(leaf) = leaf.filter(|_| leaf_key_ok) else {
        return Plan::RenewLeaf("no usable certificate in the Secret".into());
    };
    let leaf_renew = leaf - LEAF_RENEW_BEFORE;
    if now >= leaf_renew {
        return Plan::RenewLeaf(format!("the certificate expires at {leaf}"));
    }
    Plan::Keep { renew_at: leaf_renew.min(ca_renew) }
}

fn offset(t: Timestamp) -> Result<time::OffsetDateTime, CertError> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| CertError::Time(e.to_string()))
}

fn ca_params(now: Timestamp) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "KEDA");
    dn.push(DnType::OrganizationName, "KEDAORG");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = offset(now - SignedDuration::from_hours(1))?;
    params.not_after = offset(now + CA_VALIDITY)?;
    Ok(params)
}

fn leaf_params(namespace: &str, now: Timestamp) -> Result<CertificateParams, CertError> {
    let names = vec![
        "keda-operator".to_string(),
        format!("keda-operator.{namespace}.svc"),
        format!("keda-operator.{namespace}.svc.cluster.local"),
        "keda-metrics-apiserver".to_string(),
        format!("keda-metrics-apiserver.{namespace}.svc"),
        format!("keda-metrics-apiserver.{namespace}.svc.cluster.local"),
    ];
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, "keda-operator");
    params.distinguished_name.push(DnType::OrganizationName, "KEDAORG");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = offset(now - SignedDuration::from_hours(1))?;
    params.not_after = offset(now + LEAF_VALIDITY)?;
    Ok(params)
}

/// The Secret data for `plan`: a new CA and leaf, or a new leaf under the CA already in `secret`.
/// Returns `None` for [`Plan::Keep`].
pub fn issue(
    plan: &Plan,
    secret: Option<&Secret>,
    namespace: &str,
    now: Timestamp,
) -> Result<Option<BTreeMap<String, ByteString>>, CertError> {
    let (ca_pem, ca_key) = match plan {
        Plan::Keep { .. } => return Ok(None),
        Plan::RenewLeaf(_) => {
            let ca_pem =
                data(secret, CA_CERT).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default().to_string();
            let key = data(secret, CA_KEY).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default();
            (ca_pem, KeyPair::from_pem(key)?)
        }
        Plan::Issue(_) => {
            let key = KeyPair::generate()?;
            let cert = ca_params(now)?.self_signed(&key)?;
            (cert.pem(), key)
        }
    };
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params(namespace, now)?.signed_by(&leaf_key, &issuer)?;
    let entries =
        [(CA_CERT, ca_pem), (CA_KEY, ca_key_pem), (TLS_CERT, leaf.pem()), (TLS_KEY, leaf_key.serialize_pem())];
    Ok(Some(entries.into_iter().map(|(k, v)| (k.to_string(), ByteString(v.into_bytes()))).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(data: BTreeMap<String, ByteString>) -> Secret {
        Secret { data: Some(data), ..Secret::default() }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_790_000_000).unwrap()
    }

    #[test]
    fn an_empty_secret_gets_a_ca_and_a_leaf_that_chain() {
        let plan = plan(None, now());
        assert!(matches!(plan, Plan::Issue(_)));
        let data = issue(&plan, None, "keda", now()).unwrap().unwrap();
        let s = secret(data);
        assert!(matches!(super::plan(Some(&s), now()), Plan::Keep { .. }));
        let leaf_expiry = not_after(&s.data.as_ref().unwrap()[TLS_CERT].0).unwrap();
        assert_eq!(leaf_expiry, now() + LEAF_VALIDITY);
        let (_, ca) = x509_parser::pem::parse_x509_pem(&s.data.as_ref().unwrap()[CA_CERT].0).unwrap();
        let (_, leaf) = x509_parser::pem::parse_x509_pem(&s.data.as_ref().unwrap()[TLS_CERT].0).unwrap();
        let (ca, leaf) = (ca.parse_x509().unwrap(), leaf.parse_x509().unwrap());
        assert_eq!(leaf.issuer(), ca.subject());
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && eku.server_auth);
    }

    #[test]
    fn the_leaf_is_renewed_a_third_of_its_life_before_expiry_under_the_same_ca() {
        let data = issue(&Plan::Issue("test".into()), None, "keda", now()).unwrap().unwrap();
        let s = secret(data.clone());
        let later = now() + LEAF_VALIDITY - LEAF_RENEW_BEFORE + SignedDuration::from_secs(1);
        let plan = plan(Some(&s), later);
        assert!(matches!(plan, Plan::RenewLeaf(_)), "{plan:?}");
        let renewed = issue(&plan, Some(&s), "keda", later).unwrap().unwrap();
        assert_eq!(renewed[CA_CERT], data[CA_CERT], "the CA is kept");
        assert_ne!(renewed[TLS_CERT], data[TLS_CERT]);
        assert!(matches!(super::plan(Some(&secret(renewed)), later), Plan::Keep { .. }));
    }

    #[test]
    fn keep_says_when_to_look_again() {
        let data = issue(&Plan::Issue("test".into()), None, "keda", now()).unwrap().unwrap();
        match plan(Some(&secret(data)), now()) {
            Plan::Keep { renew_at } => {
                assert_eq!(renew_at, now() + LEAF_VALIDITY - LEAF_RENEW_BEFORE)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_in_the_secret_is_replaced() {
        let mut data = BTreeMap::new();
        data.insert(CA_CERT.to_string(), ByteString(b"not a certificate".to_vec()));
        assert!(matches!(plan(Some(&secret(data)), now()), Plan::Issue(_)));
    }
}
