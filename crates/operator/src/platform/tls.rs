//! OpenShift TLS security profiles translated for KEDA's servers.
//!
//! OpenShift states profiles with OpenSSL cipher names and `VersionTLS1x`; KEDA reads
//! `KEDA_SERVICE_MIN_TLS_VERSION` (`TLS10`..`TLS13`) and `KEDA_SERVICE_TLS_CIPHER_LIST` (Go's names, which are
//! the IANA names).

use std::fmt;

/// A minimum TLS version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.0.
    Tls10,
    /// TLS 1.1.
    Tls11,
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// Parses OpenShift's `VersionTLS12` form.
    pub fn from_openshift(value: &str) -> Option<Self> {
        match value {
            "VersionTLS10" => Some(TlsVersion::Tls10),
            "VersionTLS11" => Some(TlsVersion::Tls11),
            "VersionTLS12" => Some(TlsVersion::Tls12),
            "VersionTLS13" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// OpenShift's and the Kubernetes API server flags' spelling (`VersionTLS12`).
    pub fn openshift_name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "VersionTLS10",
            TlsVersion::Tls11 => "VersionTLS11",
            TlsVersion::Tls12 => "VersionTLS12",
            TlsVersion::Tls13 => "VersionTLS13",
        }
    }

    /// KEDA's spelling (`TLS12`).
    pub fn keda_name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keda_name())
    }
}

/// What KEDA's servers accept: a minimum version and the TLS 1.2 cipher suites (IANA names). TLS 1.3 suites
/// are not configurable in Go and are left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsProfile {
    /// Minimum protocol version.
    pub min_version: TlsVersion,
    /// Cipher suites for TLS 1.2 and below, IANA names, in preference order.
    pub ciphers: Vec<String>,
}

/// OpenSSL cipher names of OpenShift's profiles and the IANA names Go knows them by.
const OPENSSL_TO_IANA: [(&str, &str); 22] = [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    ("ECDHE-RSA-AES128-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    ("ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    ("ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    ("ECDHE-ECDSA-AES256-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    ("ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    ("ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    ("ECDHE-RSA-AES256-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    ("AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    ("AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    ("AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    ("AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"),
    ("AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA"),
    ("DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    ("ECDHE-ECDSA-DES-CBC3-SHA", "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    ("ECDHE-RSA-DES-CBC3-SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
];

/// OpenShift's Old profile, as OpenShift lists it (OpenSSL names).
const OLD_OPENSSL: [&str; 29] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-RSA-AES256-SHA384",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "DHE-RSA-AES128-SHA256",
    "DHE-RSA-AES256-SHA256",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA256",
    "AES256-SHA256",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
];

/// TLS 1.3 suites as OpenShift lists them; Go always enables them and takes no configuration for them.
const TLS13_SUITES: [&str; 3] = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

impl TlsProfile {
    /// A profile from OpenShift's `minTLSVersion` and OpenSSL cipher names. Names Go does not implement (the
    /// DHE suites of the Old profile, for instance) are dropped and returned so the caller can report them.
    pub fn from_openshift(min_tls_version: &str, openssl_ciphers: &[String]) -> Result<(Self, Vec<String>), String> {
        let min_version = TlsVersion::from_openshift(min_tls_version).ok_or_else(|| {
            format!("unknown minTLSVersion {min_tls_version:?} (expected VersionTLS10 to VersionTLS13)")
        })?;
        let mut ciphers = Vec::new();
        let mut unsupported = Vec::new();
        for name in openssl_ciphers {
            if TLS13_SUITES.contains(&name.as_str()) {
                continue;
            }
            match OPENSSL_TO_IANA.iter().find(|(openssl, iana)| openssl == name || iana == name) {
                Some((_, iana)) => ciphers.push((*iana).to_string()),
                None => unsupported.push(name.clone()),
            }
        }
        Ok((TlsProfile { min_version, ciphers }, unsupported))
    }

    /// OpenShift's Intermediate profile, the default of every cluster.
    pub fn intermediate() -> Self {
        TlsProfile {
            min_version: TlsVersion::Tls12,
            ciphers: [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    /// OpenShift's Old profile, without the suites Go does not implement (the DHE ones).
    pub fn old() -> Self {
        let ciphers: Vec<String> = OLD_OPENSSL.iter().map(|c| c.to_string()).collect();
        match Self::from_openshift("VersionTLS10", &ciphers) {
            Ok((profile, _unsupported)) => profile,
            // "VersionTLS10" is a constant the parser knows; keep a sane profile regardless.
            Err(_) => Self::intermediate(),
        }
    }

    /// OpenShift's Modern profile: TLS 1.3 only.
    pub fn modern() -> Self {
        TlsProfile { min_version: TlsVersion::Tls13, ciphers: Vec::new() }
    }

    /// The cipher list as KEDA reads it (comma-separated).
    pub fn cipher_list(&self) -> String {
        self.ciphers.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openshift_intermediate_names_map_to_the_built_in_profile() {
        let openssl: Vec<String> = [
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "ECDHE-RSA-CHACHA20-POLY1305",
        ]
        .map(String::from)
        .to_vec();
        let (profile, unsupported) = TlsProfile::from_openshift("VersionTLS12", &openssl).unwrap();
        assert_eq!(profile, TlsProfile::intermediate());
        assert!(unsupported.is_empty());
    }

    #[test]
    fn suites_go_cannot_use_are_reported_not_passed_on() {
        let (profile, unsupported) =
            TlsProfile::from_openshift("VersionTLS10", &["DHE-RSA-AES128-GCM-SHA256".into(), "AES128-SHA".into()])
                .unwrap();
        assert_eq!(profile.ciphers, vec!["TLS_RSA_WITH_AES_128_CBC_SHA"]);
        assert_eq!(unsupported, vec!["DHE-RSA-AES128-GCM-SHA256"]);
        assert_eq!(profile.min_version.keda_name(), "TLS10");
    }

    #[test]
    fn unknown_min_version_is_an_error() {
        assert!(TlsProfile::from_openshift("TLS12", &[]).is_err());
    }
}
