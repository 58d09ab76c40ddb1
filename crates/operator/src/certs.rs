//! The gRPC mTLS certificates in `kedaorg-certs` on OpenShift, where KEDA's own rotation is off: a CA
//! ("KEDA", organisation "KEDAORG", as KEDA names its own) and a certificate for client and server auth
//! signed by it. Issued when missing or unreadable, renewed well before expiry; the CA is kept when only
//! the leaf needs renewing, so running pods keep trusting each other during the rollout.
//!
//! Key material never leaves this module except as Secret data; nothing here logs it.

use std::collections::BTreeMap;

use cma_api::Component;
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

/// The DER of every certificate of a PEM bundle, first first.
fn certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem).filter_map(Result::ok).map(|p| p.contents).collect()
}

/// A certificate's DER as PEM (64-column base64, as every PEM reader expects).
fn certificate_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Whether the private key `key_pem` belongs to the first certificate of `cert_pem`.
fn key_matches(cert_pem: &[u8], key_pem: &[u8]) -> bool {
    let Some(key) = std::str::from_utf8(key_pem).ok().and_then(|k| KeyPair::from_pem(k).ok()) else {
        return false;
    };
    let Some(der) = certificates(cert_pem).into_iter().next() else {
        return false;
    };
    x509_parser::parse_x509_certificate(&der)
        .is_ok_and(|(_, cert)| cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
}

/// Whether the leaf was signed by the first CA of the bundle.
fn chains(leaf_pem: &[u8], ca_pem: &[u8]) -> bool {
    let (Some(leaf), Some(ca)) = (certificates(leaf_pem).into_iter().next(), certificates(ca_pem).into_iter().next())
    else {
        return false;
    };
    match (x509_parser::parse_x509_certificate(&leaf), x509_parser::parse_x509_certificate(&ca)) {
        (Ok((_, leaf)), Ok((_, ca))) => leaf.verify_signature(Some(ca.public_key())).is_ok(),
        _ => false,
    }
}

/// Decides from the Secret's current content.
pub fn plan(secret: Option<&Secret>, now: Timestamp) -> Plan {
    let ca = data(secret, CA_CERT).and_then(not_after);
    let ca_key_ok = match (data(secret, CA_CERT), data(secret, CA_KEY)) {
        (Some(cert), Some(key)) => key_matches(cert, key),
        _ => false,
    };
    let leaf = data(secret, TLS_CERT).and_then(not_after);
    let leaf_key_ok = match (data(secret, TLS_CERT), data(secret, TLS_KEY), data(secret, CA_CERT)) {
        (Some(cert), Some(key), Some(ca)) => key_matches(cert, key) && chains(cert, ca),
        _ => false,
    };
    let Some(ca) = ca.filter(|_| ca_key_ok) else {
        return Plan::Issue("no usable CA in the Secret (missing, unreadable, or its key does not match)".into());
    };
    let ca_renew = ca - CA_RENEW_BEFORE;
    if now >= ca_renew {
        return Plan::Issue(format!("the CA expires at {ca}"));
    }
    let Some(leaf) = leaf.filter(|_| leaf_key_ok) else {
        return Plan::RenewLeaf(
            "no usable certificate in the Secret (missing, unreadable, its key does not match, or not signed by the CA)"
                .into(),
        );
    };
    let leaf_renew = leaf - LEAF_RENEW_BEFORE;
    if now >= leaf_renew {
        return Plan::RenewLeaf(format!("the certificate expires at {leaf}"));
    }
    Plan::Keep { renew_at: leaf_renew.min(ca_renew) }
}

/// Makes `params` valid from an hour before `now` (for clocks behind ours) until `now + valid_for`; the error
/// names a time certificates cannot express.
pub(crate) fn set_validity(
    params: &mut CertificateParams,
    now: Timestamp,
    valid_for: SignedDuration,
) -> Result<(), String> {
    let at = |t: Timestamp| time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| e.to_string());
    params.not_before = at(now - SignedDuration::from_hours(1))?;
    params.not_after = at(now + valid_for)?;
    Ok(())
}

/// A CA named `common_name`/`organization`, valid from `now` for `valid_for`, that signs leaf certificates
/// only, never another CA (path length 0).
pub(crate) fn ca_params(
    common_name: &str,
    organization: &str,
    now: Timestamp,
    valid_for: SignedDuration,
) -> Result<CertificateParams, String> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, now, valid_for)?;
    Ok(params)
}

fn grpc_ca_params(now: Timestamp) -> Result<CertificateParams, CertError> {
    let mut params = ca_params("KEDA", "KEDAORG", now, CA_VALIDITY).map_err(CertError::Time)?;
    params.key_usages.push(KeyUsagePurpose::DigitalSignature);
    Ok(params)
}

fn leaf_params(namespace: &str, now: Timestamp) -> Result<CertificateParams, CertError> {
    // The operator serves gRPC and the metrics server is its client: one leaf for both ends.
    let names = [Component::Operator, Component::MetricsServer]
        .into_iter()
        .flat_map(|c| c.service_dns_names(namespace))
        .collect::<Vec<_>>();
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, Component::Operator.service_name());
    params.distinguished_name.push(DnType::OrganizationName, "KEDAORG");
    // An EC key signs (ECDHE); key encipherment is an RSA key exchange usage.
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    set_validity(&mut params, now, LEAF_VALIDITY).map_err(CertError::Time)?;
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
            // The signing CA is the bundle's first certificate; the others are re-checked below.
            let ca_pem = data(secret, CA_CERT)
                .and_then(|b| certificates(b).into_iter().next())
                .map(|der| certificate_pem(&der))
                .unwrap_or_default();
            let key = data(secret, CA_KEY).and_then(|b| std::str::from_utf8(b).ok()).unwrap_or_default();
            (ca_pem, KeyPair::from_pem(key)?)
        }
        Plan::Issue(_) => {
            let key = KeyPair::generate()?;
            let cert = grpc_ca_params(now)?.self_signed(&key)?;
            (cert.pem(), key)
        }
    };
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    // While a CA rolls, pods still holding a certificate of the previous CA must keep being trusted: the bundle
    // carries the previous CA, until it expires, after the signing one.
    let previous = match plan {
        Plan::Issue(_) => data(secret, CA_CERT).map(certificates).unwrap_or_default(),
        Plan::RenewLeaf(_) => data(secret, CA_CERT).map(certificates).unwrap_or_default().into_iter().skip(1).collect(),
        Plan::Keep { .. } => Vec::new(),
    };
    let mut ca_bundle = ca_pem;
    for der in previous {
        let valid = x509_parser::parse_x509_certificate(&der)
            .is_ok_and(|(_, c)| c.validity().not_after.timestamp() > now.as_second());
        if valid {
            ca_bundle.push_str(&certificate_pem(&der));
        }
    }
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params(namespace, now)?.signed_by(&leaf_key, &issuer)?;
    let entries =
        [(CA_CERT, ca_bundle), (CA_KEY, ca_key_pem), (TLS_CERT, leaf.pem()), (TLS_KEY, leaf_key.serialize_pem())];
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
    fn the_ca_signs_leaves_only_and_the_ec_leaf_signs_only() {
        let data = issue(&Plan::Issue("test".into()), None, "keda", now()).unwrap().unwrap();
        let (_, ca) = x509_parser::pem::parse_x509_pem(&data[CA_CERT].0).unwrap();
        let ca = ca.parse_x509().unwrap();
        assert_eq!(ca.basic_constraints().unwrap().unwrap().value.path_len_constraint, Some(0));
        let (_, leaf) = x509_parser::pem::parse_x509_pem(&data[TLS_CERT].0).unwrap();
        let leaf = leaf.parse_x509().unwrap();
        let usage = leaf.key_usage().unwrap().unwrap().value;
        assert!(usage.digital_signature() && !usage.key_encipherment());
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_replaced() {
        let data = issue(&Plan::Issue("test".into()), None, "keda", now()).unwrap().unwrap();
        let other = issue(&Plan::Issue("test".into()), None, "keda", now()).unwrap().unwrap();
        let mut leaf_mixed = data.clone();
        leaf_mixed.insert(TLS_KEY.into(), other[TLS_KEY].clone());
        assert!(matches!(plan(Some(&secret(leaf_mixed)), now()), Plan::RenewLeaf(_)));
        let mut ca_mixed = data.clone();
        ca_mixed.insert(CA_KEY.into(), other[CA_KEY].clone());
        assert!(matches!(plan(Some(&secret(ca_mixed)), now()), Plan::Issue(_)));
        let mut foreign_leaf = data;
        foreign_leaf.insert(TLS_CERT.into(), other[TLS_CERT].clone());
        foreign_leaf.insert(TLS_KEY.into(), other[TLS_KEY].clone());
        assert!(matches!(plan(Some(&secret(foreign_leaf)), now()), Plan::RenewLeaf(_)), "a leaf of another CA");
    }

    #[test]
    fn a_rolled_ca_keeps_trusting_the_previous_one_until_it_expires() {
        let data = issue(&Plan::Issue("test".into()), None, "keda", now()).unwrap().unwrap();
        let s = secret(data.clone());
        let late = now() + CA_VALIDITY - CA_RENEW_BEFORE + SignedDuration::from_secs(1);
        let plan = plan(Some(&s), late);
        assert!(matches!(plan, Plan::Issue(_)), "{plan:?}");
        let rolled = issue(&plan, Some(&s), "keda", late).unwrap().unwrap();
        let bundle = certificates(&rolled[CA_CERT].0);
        assert_eq!(bundle.len(), 2, "the new CA, then the previous one");
        assert_eq!(bundle[1], certificates(&data[CA_CERT].0)[0]);
        assert!(chains(&rolled[TLS_CERT].0, &rolled[CA_CERT].0), "the leaf is signed by the new CA");
        // Once the previous CA has expired, the next renewal drops it.
        let expired = now() + CA_VALIDITY + SignedDuration::from_hours(1);
        let renewed = issue(&Plan::RenewLeaf("test".into()), Some(&secret(rolled)), "keda", expired).unwrap().unwrap();
        assert_eq!(certificates(&renewed[CA_CERT].0).len(), 1);
    }

    #[test]
    fn garbage_in_the_secret_is_replaced() {
        let mut data = BTreeMap::new();
        data.insert(CA_CERT.to_string(), ByteString(b"not a certificate".to_vec()));
        assert!(matches!(plan(Some(&secret(data)), now()), Plan::Issue(_)));
    }
}
