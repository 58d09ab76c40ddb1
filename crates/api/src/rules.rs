//! The value rules of the KedaController API, stated once.
//!
//! The CRD schema (through `schemars` attributes) and [`crate::validate`] both read these constants, so the
//! API server and `cma-operator render` refuse exactly the same values.

/// zap log level accepted by the KEDA operator and the admission webhooks: a name or a positive integer.
pub const ZAP_LOG_LEVEL: &str = r"^(debug|info|error|[1-9][0-9]*)$";

/// zap encoders.
pub const LOG_ENCODERS: [&str; 2] = ["json", "console"];

/// zap time encodings.
pub const LOG_TIME_ENCODINGS: [&str; 6] = ["epoch", "millis", "nano", "iso8601", "rfc3339", "rfc3339nano"];

/// Log verbosity of the metrics API server: an integer from 0 (info) to 10.
pub const KLOG_LEVEL: &str = r"^([0-9]|10)$";

/// The string booleans the Go operators used for `networkEgressAllowAll`.
pub const STRING_BOOLEANS: [&str; 2] = ["true", "false"];

/// Audit log formats of a Kubernetes API server.
pub const AUDIT_LOG_FORMATS: [&str; 2] = ["json", "legacy"];

/// Audit levels (audit.k8s.io/v1 `Level`).
pub const AUDIT_LEVELS: [&str; 4] = ["None", "Metadata", "Request", "RequestResponse"];

/// Audit stages (audit.k8s.io/v1 `Stage`).
pub const AUDIT_STAGES: [&str; 4] = ["RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"];

/// Audit log rotation settings: decimal digits only.
pub const DIGITS: &str = r"^[0-9]+$";

/// A DNS-1123 label (namespace and Service names): lower case alphanumerics and '-', at most 63 characters.
pub const DNS1123_LABEL: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// Maximum length of a DNS-1123 label.
pub const DNS1123_LABEL_MAX: usize = 63;

/// A DNS-1123 subdomain (ConfigMap, Secret and PVC names), at most 253 characters.
pub const DNS1123_SUBDOMAIN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Maximum length of a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// `watchNamespace`: empty (all namespaces) or a comma-separated list of namespace names; blanks around the
/// commas are tolerated and removed when rendering.
pub const WATCH_NAMESPACE: &str = r"^(\s*[a-z0-9]([-a-z0-9]*[a-z0-9])?\s*(,\s*[a-z0-9]([-a-z0-9]*[a-z0-9])?\s*)*)?$";

/// A container image reference: no whitespace, and a tag or digest is not required (the registry default
/// applies), but the reference may not be empty.
pub const IMAGE_REFERENCE: &str = r"^[^\s]+$";

/// A Prometheus scrape interval: a whole number of milliseconds, seconds, minutes or hours.
pub const PROMETHEUS_DURATION: &str = r"^[1-9][0-9]*(ms|s|m|h)$";

/// An environment variable name as the kubelet accepts it.
pub const ENV_VAR_NAME: &str = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$";

/// The CEL rule on the KedaController's root that enforces [`crate::names::KEDACONTROLLER`].
pub const SINGLETON_RULE: &str = "self.metadata.name == 'keda'";

/// The message the API server returns when [`SINGLETON_RULE`] fails.
pub const SINGLETON_MESSAGE: &str = "the KedaController must be named 'keda': one KEDA installation per cluster";
