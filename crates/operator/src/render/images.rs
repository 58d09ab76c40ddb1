//! Which image each component runs: the CR's `image`, else the operator's environment (OLM sets
//! `RELATED_IMAGE_*` for disconnected mirroring; the Go operators' variable names are honoured too), else
//! the pinned default of the templates.

use cma_api::Component;

/// Environment variables naming a component's image, in order of precedence.
pub fn env_names(component: Component) -> [&'static str; 2] {
    match component {
        Component::Operator => ["RELATED_IMAGE_KEDA_OPERATOR", "KEDA_OPERATOR_IMAGE"],
        Component::MetricsServer => ["RELATED_IMAGE_KEDA_METRICS_APISERVER", "KEDA_METRICS_SERVER_IMAGE"],
        Component::AdmissionWebhooks => ["RELATED_IMAGE_KEDA_ADMISSION_WEBHOOKS", "KEDA_ADMISSION_WEBHOOKS_IMAGE"],
    }
}

/// Image overrides from the operator's environment; `None` means the template's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageOverrides {
    /// Image of the KEDA operator.
    pub operator: Option<String>,
    /// Image of the metrics API server.
    pub metrics_server: Option<String>,
    /// Image of the admission webhooks.
    pub admission_webhooks: Option<String>,
}

impl ImageOverrides {
    /// Reads the overrides through `lookup` (the process environment in the binary, a map in tests).
    /// Empty values are ignored, as an unset variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let find = |component| {
            env_names(component)
                .into_iter()
                .find_map(|name| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
        };
        ImageOverrides {
            operator: find(Component::Operator),
            metrics_server: find(Component::MetricsServer),
            admission_webhooks: find(Component::AdmissionWebhooks),
        }
    }

    /// Reads the overrides from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The override for one component.
    pub fn get(&self, component: Component) -> Option<&str> {
        match component {
            Component::Operator => self.operator.as_deref(),
            Component::MetricsServer => self.metrics_server.as_deref(),
            Component::AdmissionWebhooks => self.admission_webhooks.as_deref(),
        }
    }
}

/// The pull policy that fits an image reference: a digest never changes, so it need not be pulled again;
/// a tag may move, as upstream KEDA assumes.
pub fn pull_policy(image: &str) -> &'static str {
    if image.contains("@sha256:") { "IfNotPresent" } else { "Always" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn related_image_wins_over_the_go_operator_name_and_blank_is_unset() {
        let env: HashMap<&str, &str> = [
            ("RELATED_IMAGE_KEDA_OPERATOR", "mirror/keda@sha256:abc"),
            ("KEDA_OPERATOR_IMAGE", "old/keda:1"),
            ("KEDA_METRICS_SERVER_IMAGE", "old/metrics:1"),
            ("RELATED_IMAGE_KEDA_ADMISSION_WEBHOOKS", "  "),
        ]
        .into();
        let o = ImageOverrides::from_lookup(|n| env.get(n).map(|v| v.to_string()));
        assert_eq!(o.get(Component::Operator), Some("mirror/keda@sha256:abc"));
        assert_eq!(o.get(Component::MetricsServer), Some("old/metrics:1"));
        assert_eq!(o.get(Component::AdmissionWebhooks), None);
    }

    #[test]
    fn digests_are_not_pulled_again() {
        assert_eq!(pull_policy("r/k@sha256:0123"), "IfNotPresent");
        assert_eq!(pull_policy("r/k:2.20.2"), "Always");
    }
}
