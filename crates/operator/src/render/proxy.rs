//! The cluster-wide proxy. OLM injects `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` into the operator's pod
//! when the cluster has one (OpenShift's cluster proxy); KEDA's scalers need the same settings to reach
//! event sources outside the cluster, so they are passed on to its three containers. A component's own
//! `env` in the KedaController overrides them.

use k8s_openapi::api::core::v1::EnvVar;

/// The proxy variables passed on, in the order they are added.
pub const PROXY_VARIABLES: [&str; 3] = ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"];

/// The proxy variables found through `lookup` (empty values are unset).
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Vec<EnvVar> {
    PROXY_VARIABLES
        .iter()
        .filter_map(|name| {
            let value = lookup(name).filter(|v| !v.trim().is_empty())?;
            Some(EnvVar { name: (*name).to_string(), value: Some(value), value_from: None })
        })
        .collect()
}

/// The proxy variables of the operator's own environment.
pub fn from_env() -> Vec<EnvVar> {
    from_lookup(|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_variables_are_passed_on_and_blank_ones_are_not() {
        let env = from_lookup(|name| match name {
            "HTTPS_PROXY" => Some("http://proxy:3128".into()),
            "NO_PROXY" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(env.len(), 1);
        assert_eq!(env[0].name, "HTTPS_PROXY");
        assert_eq!(env[0].value.as_deref(), Some("http://proxy:3128"));
    }
}
