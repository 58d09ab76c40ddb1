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

/// `watchNamespace`: empty (all namespaces) or a comma-separated list of namespace names of at most 63
/// characters; blanks around the commas are tolerated and removed when rendering.
pub const WATCH_NAMESPACE: &str =
    r"^(\s*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\s*(,\s*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\s*)*)?$";

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

// Size limits. The API server refuses a CRD whose CEL rules could cost too much on the largest object a
// request may carry, and prices a rule over a map or list by the number of entries it may hold: every map
// and list a rule iterates is bounded here, generously for a KEDA component's pod.

/// Entries of a label map (`deploymentLabels`, `podLabels`, `nodeSelector`, the ServiceAccount's labels).
pub const MAX_LABELS: usize = 128;

/// Entries of an annotation map.
pub const MAX_ANNOTATIONS: usize = 1024;

/// Kubernetes' limit of an object's annotations: keys and values together, in bytes.
pub const KUBERNETES_ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// Bytes of annotations left for the operator (digests of the applied intent and of mounted configuration)
/// and the cluster (`deployment.kubernetes.io/revision`, OpenShift's ServiceAccount annotations).
pub const RESERVED_ANNOTATION_BYTES: usize = 2 * 1024;

/// The most bytes (keys and values together) one annotation map of the KedaController may hold.
pub const MAX_ANNOTATION_BYTES: usize = KUBERNETES_ANNOTATIONS_LIMIT - RESERVED_ANNOTATION_BYTES;

/// Resource names in `resources.requests` or `resources.limits`.
pub const MAX_RESOURCE_NAMES: usize = 16;

/// Length of one quantity (`500m`, `128Mi`).
pub const MAX_QUANTITY_LENGTH: usize = 64;

/// Entries of a component's `volumes`, and of its `volumeMounts`.
pub const MAX_VOLUMES: usize = 64;

/// Length of a mount path.
pub const MAX_PATH_LENGTH: usize = 1024;

/// Entries of a component's `env`.
pub const MAX_ENV: usize = 128;

/// Length of an environment variable name.
pub const MAX_ENV_NAME_LENGTH: usize = 256;

/// Entries of a component's `args`.
pub const MAX_ARGS: usize = 256;

/// Length of one argument.
pub const MAX_ARG_LENGTH: usize = 4096;

/// Entries of `imagePullSecrets`.
pub const MAX_PULL_SECRETS: usize = 64;

/// Entries of `spec.operator.caConfigMaps`.
pub const MAX_CA_CONFIG_MAPS: usize = 32;

/// Length of an image reference.
pub const MAX_IMAGE_LENGTH: usize = 1024;

/// Length of `spec.watchNamespace`.
pub const MAX_WATCH_NAMESPACE_LENGTH: usize = 2048;

/// Length of a log level, a verbosity, a rotation setting or a scrape interval.
pub const MAX_SETTING_LENGTH: usize = 32;

/// What the API server and `validate()` say when a value breaks a rule, in words (a regular expression
/// tells a user nothing). Each follows the value in the API server's answer:
/// `spec.operator.logLevel: Invalid value: "verbose": must be debug, info, error or a positive integer`.
pub mod messages {
    /// A zap log level.
    pub const ZAP_LOG_LEVEL: &str = "must be debug, info, error or a positive integer";
    /// The metrics server's verbosity.
    pub const KLOG_LEVEL: &str = "must be a log verbosity from \"0\" (info) to \"10\" (\"4\" is debug)";
    /// Audit log rotation settings.
    pub const DIGITS: &str = "must be a whole number (digits only)";
    /// Names of ConfigMaps, Secrets, claims and priority classes.
    pub const OBJECT_NAME: &str = "must be an object name: at most 253 lower case letters, digits, '-' and '.', starting and ending with a letter or digit";
    /// Volume names.
    pub const VOLUME_NAME: &str = "must be a volume name: at most 63 lower case letters, digits and '-', starting and ending with a letter or digit";
    /// `watchNamespace`.
    pub const WATCH_NAMESPACE: &str = "must be empty (all namespaces) or a comma-separated list of namespace names, each at most 63 lower case letters, digits and '-', starting and ending with a letter or digit";
    /// Address blocks.
    pub const CIDR: &str =
        "must be an address block: an IPv4 or IPv6 address, '/', and a prefix length (10.0.0.10/32, fd00::1/128)";
    /// Image references.
    pub const IMAGE: &str = "must be an image reference, without blanks";
    /// Scrape intervals.
    pub const PROMETHEUS_DURATION: &str = "must be a whole number followed by ms, s, m or h, such as 30s";
    /// Label and annotation keys, after `key "<key>"`.
    pub const QUALIFIED_NAME: &str = "is not a qualified name: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, optionally after a DNS subdomain prefix and '/' (example.com/team)";
    /// Label values, after `the value of "<key>"`.
    pub const LABEL_VALUE: &str = "is not a label value: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, or empty";
    /// Environment variable names.
    pub const ENV_NAME: &str =
        "must be an environment variable name: letters, digits, '-', '.' and '_', not starting with a digit";
    /// Arguments.
    pub const ARG: &str = "an argument may not be empty or blank";
}

/// A CEL rule matching a whole string field against one of the patterns above. CEL's raw strings (`r'...'`)
/// keep the pattern's backslashes as they are.
pub fn matches(pattern: &str) -> String {
    format!("self.matches(r'{pattern}')")
}

/// The qualified-name rule over a map's keys (Kubernetes' own check, from its CEL format library).
pub const QUALIFIED_KEYS_RULE: &str = "self.all(k, !format.qualifiedName().validate(k).hasValue())";

/// The label-value rule over a map's values.
pub const LABEL_VALUES_RULE: &str = "self.all(k, !format.labelValue().validate(self[k]).hasValue())";

/// The object-name rule (a DNS-1123 subdomain) on a string.
pub const OBJECT_NAME_RULE: &str = "!format.dns1123Subdomain().validate(self).hasValue()";

/// The annotation size rule over a map.
pub fn annotation_bytes_rule() -> String {
    format!("self.map(k, k.size() + self[k].size()).sum() <= {MAX_ANNOTATION_BYTES}")
}

/// Message of [`annotation_bytes_rule`].
pub fn annotation_bytes_message() -> String {
    format!(
        "keys and values together may hold at most {MAX_ANNOTATION_BYTES} bytes: Kubernetes allows {KUBERNETES_ANNOTATIONS_LIMIT} bytes of annotations on an object, and {RESERVED_ANNOTATION_BYTES} are kept for the ones the operator and the cluster add"
    )
}
