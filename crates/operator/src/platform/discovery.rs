//! Platform facts from API discovery (never from listing objects): OpenShift, the monitoring API, the
//! Kubernetes version and, on OpenShift, the cluster TLS security profile.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;

use super::{Flavour, Platform, TlsProfile};

/// What discovery found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// The platform facts render uses.
    pub platform: Platform,
    /// `major.minor` of the API server, for logs and must-gather.
    pub kubernetes_version: String,
    /// Cipher suites of the TLS profile KEDA cannot use (reported, not passed on).
    pub unsupported_ciphers: Vec<String>,
}

/// The OpenShift API server configuration (holds the TLS security profile).
pub fn openshift_apiserver_resource() -> ApiResource {
    ApiResource {
        group: "config.openshift.io".into(),
        version: "v1".into(),
        api_version: "config.openshift.io/v1".into(),
        kind: "APIServer".into(),
        plural: "apiservers".into(),
    }
}

/// Detects the platform. `forced` overrides the flavour (for clusters where detection is not wanted).
pub async fn discover(client: &Client, forced: Option<Flavour>) -> Result<Discovered, kube::Error> {
    let groups = client.list_api_groups().await?;
    let has = |name: &str| groups.groups.iter().any(|g| g.name == name);
    let flavour = forced.unwrap_or(if has("config.openshift.io") && has("route.openshift.io") {
        Flavour::OpenShift
    } else {
        Flavour::Kubernetes
    });
    let version = client.apiserver_version().await?;
    let (tls_profile, unsupported_ciphers) = match flavour {
        Flavour::OpenShift => {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &openshift_apiserver_resource());
            let spec = api.get_opt("cluster").await?.map(|o| o.data["spec"]["tlsSecurityProfile"].clone());
            let (profile, unsupported) = profile_from_spec(spec.as_ref().unwrap_or(&Value::Null));
            (Some(profile), unsupported)
        }
        Flavour::Kubernetes => (None, Vec::new()),
    };
    Ok(Discovered {
        platform: Platform { flavour, tls_profile, monitoring: has("monitoring.coreos.com") },
        kubernetes_version: format!("{}.{}", version.major, version.minor),
        unsupported_ciphers,
    })
}

/// The profile an `apiservers.config.openshift.io` `spec.tlsSecurityProfile` selects; absent or unknown
/// means Intermediate, OpenShift's default.
pub fn profile_from_spec(spec: &Value) -> (TlsProfile, Vec<String>) {
    match spec["type"].as_str() {
        Some("Old") => (TlsProfile::old(), Vec::new()),
        Some("Modern") => (TlsProfile::modern(), Vec::new()),
        Some("Custom") => {
            let custom = &spec["custom"];
            let ciphers: Vec<String> = custom["ciphers"]
                .as_array()
                .map(|c| c.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            let min = custom["minTLSVersion"].as_str().unwrap_or("VersionTLS12");
            TlsProfile::from_openshift(min, &ciphers)
                .unwrap_or_else(|_| (TlsProfile::intermediate(), vec![format!("unknown minTLSVersion {min}")]))
        }
        _ => (TlsProfile::intermediate(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::TlsVersion;
    use serde_json::json;

    #[test]
    fn no_profile_means_intermediate() {
        assert_eq!(profile_from_spec(&Value::Null).0, TlsProfile::intermediate());
        assert_eq!(
            profile_from_spec(&json!({"type": "Intermediate", "intermediate": {}})).0,
            TlsProfile::intermediate()
        );
    }

    #[test]
    fn modern_is_tls13_only() {
        let (p, _) = profile_from_spec(&json!({"type": "Modern", "modern": {}}));
        assert_eq!(p.min_version, TlsVersion::Tls13);
        assert!(p.ciphers.is_empty());
    }

    #[test]
    fn old_allows_tls10_and_drops_dhe() {
        let (p, _) = profile_from_spec(&json!({"type": "Old", "old": {}}));
        assert_eq!(p.min_version, TlsVersion::Tls10);
        assert!(p.ciphers.iter().all(|c| !c.starts_with("TLS_DHE_")), "{:?}", p.ciphers);
        assert!(p.ciphers.contains(&"TLS_RSA_WITH_3DES_EDE_CBC_SHA".to_string()));
    }

    #[test]
    fn custom_profiles_are_translated_and_unknown_suites_reported() {
        let (p, unsupported) = profile_from_spec(&json!({
            "type": "Custom",
            "custom": {"minTLSVersion": "VersionTLS12", "ciphers": ["ECDHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384"]}
        }));
        assert_eq!(p.ciphers, vec!["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]);
        assert_eq!(unsupported, vec!["DHE-RSA-AES256-GCM-SHA384"]);
    }
}
