//! `validate()`: every rule of the CRD (its schema and CEL rules), with the field path of each violation, so
//! `cma-operator render` refuses what the API server refuses. One rule is the operator's alone, because a
//! CEL rule for it would cost more than the API server allows: a namespace listed twice in
//! `spec.watchNamespace`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::ResourceRequirements;
use regex::Regex;

use crate::kedacontroller::{
    AdmissionWebhooksSpec, AuditConfig, Component, KedaController, KedaControllerSpec, MetricsServerSpec,
    NetworkPolicySpec, OperatorSpec, ServiceAccountSpec, WorkloadSpec,
};
use crate::{labels, quantity, rules};

/// One violation: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field, such as `spec.operator.logLevel`.
    pub path: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every violation found in one KedaController, in field order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// The field paths of the violations.
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.path.as_str()).collect()
    }
}

/// Names of volumes the operator adds to the pods (besides `cabundle<i>`); user volumes may not reuse them.
pub const RESERVED_VOLUME_NAMES: [&str; 5] =
    ["certificates", "temp-vol", "temp-kerberos-vol", "audit-policy", "audit-log"];

/// Mount paths the operator uses; user volume mounts may not reuse them or mount below them.
pub const RESERVED_MOUNT_PATHS: [&str; 5] = ["/certs", "/tmp", "/var/audit-policy", "/var/audit-log", "/custom"];

/// Environment variables the operator sets from other fields.
pub const RESERVED_ENV: [(&str, &str); 2] = [
    ("POD_NAMESPACE", "it is always the KedaController's namespace"),
    ("WATCH_NAMESPACE", "set spec.watchNamespace instead"),
];

/// Checks a KedaController the way the API server does (the CRD's schema and CEL rules: lifetime settings
/// need a volume claim, labels may not override the selector or ownership labels, requests may not exceed
/// limits, volume mounts must name a volume of their component, the size limits of `crate::rules`), plus
/// the one rule only the operator checks: no namespace listed twice in `spec.watchNamespace`.
pub fn validate(kc: &KedaController) -> Result<Valid<'_>, ValidationErrors> {
    let mut v = Validator::default();
    if let Some(name) = kc.metadata.name.as_deref()
        && name != crate::names::KEDACONTROLLER
    {
        v.error("metadata.name", rules::SINGLETON_MESSAGE);
    }
    v.spec(&kc.spec);
    if v.errors.is_empty() { Ok(Valid(kc)) } else { Err(ValidationErrors(v.errors)) }
}

/// A KedaController that passed [`validate`]: the only thing render accepts, so a spec is validated once.
#[derive(Clone, Copy, Debug)]
pub struct Valid<'a>(&'a KedaController);

impl std::ops::Deref for Valid<'_> {
    type Target = KedaController;

    fn deref(&self) -> &KedaController {
        self.0
    }
}

/// Whether `value` is `address/prefix` with a prefix length that fits the address family.
fn is_cidr(value: &str) -> bool {
    let Some((address, prefix)) = value.split_once('/') else {
        return false;
    };
    // Digits only, without a leading zero, as the API server's `isCIDR` reads it.
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || (prefix.len() > 1 && prefix.starts_with('0'))
    {
        return false;
    }
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

static PATTERNS: LazyLock<Patterns> = LazyLock::new(Patterns::compile);

/// The regular expressions of [`rules`], compiled once.
struct Patterns {
    watch_namespace: Regex,
    zap_log_level: Regex,
    klog_level: Regex,
    digits: Regex,
    dns1123_label: Regex,
    dns1123_subdomain: Regex,
    image: Regex,
    env_name: Regex,
    prometheus_duration: Regex,
    label_name: Regex,
    label_value: Regex,
}

impl Patterns {
    fn compile() -> Self {
        Patterns {
            watch_namespace: compile(rules::WATCH_NAMESPACE),
            zap_log_level: compile(rules::ZAP_LOG_LEVEL),
            klog_level: compile(rules::KLOG_LEVEL),
            digits: compile(rules::DIGITS),
            dns1123_label: compile(rules::DNS1123_LABEL),
            dns1123_subdomain: compile(rules::DNS1123_SUBDOMAIN),
            image: compile(rules::IMAGE_REFERENCE),
            env_name: compile(rules::ENV_VAR_NAME),
            prometheus_duration: compile(rules::PROMETHEUS_DURATION),
            label_name: compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"),
            label_value: compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"),
        }
    }
}

fn compile(pattern: &str) -> Regex {
    // The patterns are constants of this crate; a test compiles every one of them, so this cannot fail at
    // run time.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("constant pattern compiles")
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError { path: path.into(), message: message.into() });
    }

    fn spec(&mut self, spec: &KedaControllerSpec) {
        self.watch_namespace(&spec.watch_namespace);
        self.operator(&spec.operator);
        self.metrics_server(&spec.metrics_server);
        self.admission_webhooks(&spec.admission_webhooks);
        self.service_account(&spec.service_account);
        self.too_many("spec.imagePullSecrets", spec.image_pull_secrets.len(), rules::MAX_PULL_SECRETS);
        for (i, secret) in spec.image_pull_secrets.iter().enumerate() {
            self.dns_subdomain(&format!("spec.imagePullSecrets[{i}].name"), &secret.name);
        }
        self.network_policy(&spec.network_policy);
        if let Some(interval) = spec.monitoring.interval.as_deref()
            && !self.too_long("spec.monitoring.interval", interval, rules::MAX_SETTING_LENGTH)
            && !PATTERNS.prometheus_duration.is_match(interval)
        {
            self.error(
                "spec.monitoring.interval",
                format!("{interval:?} is not a scrape interval (a whole number followed by ms, s, m or h)"),
            );
        }
    }

    fn watch_namespace(&mut self, value: &str) {
        let path = "spec.watchNamespace";
        if self.too_long(path, value, rules::MAX_WATCH_NAMESPACE_LENGTH) {
            return;
        }
        if !PATTERNS.watch_namespace.is_match(value) {
            self.error(
                path,
                format!(
                    "{value:?} is not a comma-separated list of namespace names (lower case letters, digits and '-')"
                ),
            );
            return;
        }
        let mut seen = BTreeSet::new();
        for ns in value.split(',').map(str::trim).filter(|ns| !ns.is_empty()) {
            if ns.len() > rules::DNS1123_LABEL_MAX {
                self.error(path, format!("namespace name {ns:?} is longer than 63 characters"));
            }
            if !seen.insert(ns) {
                self.error(path, format!("namespace {ns:?} is listed twice"));
            }
        }
    }

    fn operator(&mut self, spec: &OperatorSpec) {
        let base = "spec.operator";
        self.zap_logging(
            base,
            spec.log_level.as_deref(),
            spec.log_encoder.as_deref(),
            spec.log_time_encoding.as_deref(),
        );
        let mut seen = BTreeSet::new();
        self.too_many(&format!("{base}.caConfigMaps"), spec.ca_config_maps.len(), rules::MAX_CA_CONFIG_MAPS);
        for (i, name) in spec.ca_config_maps.iter().enumerate() {
            let path = format!("{base}.caConfigMaps[{i}]");
            self.dns_subdomain(&path, name);
            if !seen.insert(name) {
                self.error(path, format!("ConfigMap {name:?} is listed twice"));
            }
        }
        self.string_bool(&format!("{base}.networkEgressAllowAll"), spec.network_egress_allow_all.as_deref());
        self.workload(Component::Operator, &spec.workload);
    }

    fn metrics_server(&mut self, spec: &MetricsServerSpec) {
        let base = "spec.metricsServer";
        if let Some(level) = spec.log_level.as_deref()
            && !self.too_long(&format!("{base}.logLevel"), level, rules::MAX_SETTING_LENGTH)
            && !PATTERNS.klog_level.is_match(level)
        {
            self.error(
                format!("{base}.logLevel"),
                format!("{level:?} is not a log verbosity: use \"0\" (info) to \"10\" (\"4\" is debug)"),
            );
        }
        self.audit(&spec.audit_config);
        self.string_bool(&format!("{base}.networkEgressAllowAll"), spec.network_egress_allow_all.as_deref());
        self.workload(Component::MetricsServer, &spec.workload);
    }

    fn admission_webhooks(&mut self, spec: &AdmissionWebhooksSpec) {
        let base = "spec.admissionWebhooks";
        self.zap_logging(
            base,
            spec.log_level.as_deref(),
            spec.log_encoder.as_deref(),
            spec.log_time_encoding.as_deref(),
        );
        self.workload(Component::AdmissionWebhooks, &spec.workload);
    }

    fn zap_logging(&mut self, base: &str, level: Option<&str>, encoder: Option<&str>, time_encoding: Option<&str>) {
        if let Some(level) = level
            && !self.too_long(&format!("{base}.logLevel"), level, rules::MAX_SETTING_LENGTH)
            && !PATTERNS.zap_log_level.is_match(level)
        {
            self.error(
                format!("{base}.logLevel"),
                format!("{level:?} is not a log level: use debug, info, error or a positive integer"),
            );
        }
        self.one_of(&format!("{base}.logEncoder"), encoder, &rules::LOG_ENCODERS);
        self.one_of(&format!("{base}.logTimeEncoding"), time_encoding, &rules::LOG_TIME_ENCODINGS);
    }

    fn one_of(&mut self, path: &str, value: Option<&str>, allowed: &[&str]) {
        if let Some(value) = value
            && !allowed.contains(&value)
        {
            self.error(path, format!("{value:?} is not one of {}", allowed.join(", ")));
        }
    }

    fn string_bool(&mut self, path: &str, value: Option<&str>) {
        self.one_of(path, value, &rules::STRING_BOOLEANS);
    }

    fn audit(&mut self, audit: &AuditConfig) {
        let base = "spec.metricsServer.auditConfig";
        self.one_of(&format!("{base}.logFormat"), audit.log_format.as_deref(), &rules::AUDIT_LOG_FORMATS);
        if let Some(claim) = audit.log_output_volume_claim.as_deref()
            && !is_dns_subdomain(claim)
        {
            // The documentation's example names the claim "persistentVolumeClaimName": say what belongs here.
            self.error(
                format!("{base}.logOutputVolumeClaim"),
                format!(
                    "{claim:?} is not a valid object name (lower case letters, digits, '-' and '.'): \
                     name an existing PersistentVolumeClaim in the KedaController's namespace"
                ),
            );
        }
        for (i, rule) in audit.policy.rules.iter().enumerate() {
            let path = format!("{base}.policy.rules[{i}]");
            self.one_of(&format!("{path}.level"), Some(&rule.level), &rules::AUDIT_LEVELS);
            for (j, stage) in rule.omit_stages.iter().enumerate() {
                self.one_of(&format!("{path}.omitStages[{j}]"), Some(stage), &rules::AUDIT_STAGES);
            }
        }
        for (i, stage) in audit.policy.omit_stages.iter().enumerate() {
            self.one_of(&format!("{base}.policy.omitStages[{i}]"), Some(stage), &rules::AUDIT_STAGES);
        }
        let lifetime = [
            ("maxAge", &audit.lifetime.max_age),
            ("maxBackup", &audit.lifetime.max_backup),
            ("maxSize", &audit.lifetime.max_size),
        ];
        for (field, value) in lifetime {
            if let Some(value) = value
                && !self.too_long(&format!("{base}.lifetime.{field}"), value, rules::MAX_SETTING_LENGTH)
                && !PATTERNS.digits.is_match(value)
            {
                self.error(
                    format!("{base}.lifetime.{field}"),
                    format!("{value:?} is not a whole number (digits only)"),
                );
            }
        }
        if audit.lifetime.is_set() && audit.log_output_volume_claim.is_none() {
            self.error(format!("{base}.lifetime"), crate::kedacontroller::LIFETIME_NEEDS_CLAIM_MESSAGE);
        }
    }

    fn workload(&mut self, component: Component, w: &WorkloadSpec) {
        let base = format!("spec.{}", component.field());
        self.labels(&format!("{base}.deploymentLabels"), &w.deployment_labels, &labels::OWNERSHIP);
        self.labels(&format!("{base}.podLabels"), &w.pod_labels, &labels::pod_reserved_keys());
        self.annotations(&format!("{base}.deploymentAnnotations"), &w.deployment_annotations);
        self.annotations(&format!("{base}.podAnnotations"), &w.pod_annotations);
        self.labels(&format!("{base}.nodeSelector"), &w.node_selector, &[]);
        if !w.priority_class_name.is_empty() {
            self.dns_subdomain(&format!("{base}.priorityClassName"), &w.priority_class_name);
        }
        if let Some(resources) = &w.resources {
            self.resources(&format!("{base}.resources"), resources);
        }
        self.too_many(&format!("{base}.args"), w.args.len(), rules::MAX_ARGS);
        for (i, arg) in w.args.iter().enumerate() {
            let path = format!("{base}.args[{i}]");
            if arg.trim().is_empty() {
                self.error(path, rules::messages::ARG);
            } else {
                self.too_long(&path, arg, rules::MAX_ARG_LENGTH);
            }
        }
        self.volumes(&base, w);
        if let Some(replicas) = w.replicas
            && replicas < 1
        {
            self.error(format!("{base}.replicas"), format!("{replicas} is below the minimum of 1"));
        }
        self.env(&base, w);
        if let Some(image) = w.image.as_deref()
            && !self.too_long(&format!("{base}.image"), image, rules::MAX_IMAGE_LENGTH)
            && !PATTERNS.image.is_match(image)
        {
            self.error(format!("{base}.image"), format!("{image:?} is not an image reference (no blanks)"));
        }
    }

    fn resources(&mut self, path: &str, resources: &ResourceRequirements) {
        let mut parsed =
            |kind: &str, map: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
                let mut out = BTreeMap::new();
                let count = map.as_ref().map_or(0, BTreeMap::len);
                if count > rules::MAX_RESOURCE_NAMES {
                    self.error(format!("{path}.{kind}"), too_many_message(count, rules::MAX_RESOURCE_NAMES));
                }
                for (name, q) in map.iter().flatten() {
                    if q.0.len() > rules::MAX_QUANTITY_LENGTH {
                        self.error(
                            format!("{path}.{kind}.{name}"),
                            too_long_message(q.0.len(), rules::MAX_QUANTITY_LENGTH),
                        );
                        continue;
                    }
                    match quantity::parse(&q.0) {
                        Ok(n) => {
                            if n.0 < 0 {
                                self.error(format!("{path}.{kind}.{name}"), format!("{:?} is negative", q.0));
                            }
                            out.insert(name.clone(), n);
                        }
                        Err(e) => self.error(format!("{path}.{kind}.{name}"), e.to_string()),
                    }
                }
                out
            };
        let requests = parsed("requests", &resources.requests);
        let limits = parsed("limits", &resources.limits);
        for (name, request) in &requests {
            if let Some(limit) = limits.get(name)
                && request > limit
            {
                self.error(
                    format!("{path}.requests.{name}"),
                    format!("the request of {name:?} is greater than its limit"),
                );
            }
        }
    }

    fn volumes(&mut self, base: &str, w: &WorkloadSpec) {
        let mut names = BTreeSet::new();
        self.too_many(&format!("{base}.volumes"), w.volumes.len(), rules::MAX_VOLUMES);
        self.too_many(&format!("{base}.volumeMounts"), w.volume_mounts.len(), rules::MAX_VOLUMES);
        for (i, volume) in w.volumes.iter().enumerate() {
            let path = format!("{base}.volumes[{i}].name");
            self.dns_label(&path, &volume.name);
            if is_reserved_volume(&volume.name) {
                self.error(&path, format!("{:?} is a volume the operator adds; choose another name", volume.name));
            }
            if !names.insert(volume.name.as_str()) {
                self.error(&path, format!("volume {:?} is declared twice", volume.name));
            }
        }
        let mut paths = BTreeSet::new();
        for (i, mount) in w.volume_mounts.iter().enumerate() {
            let path = format!("{base}.volumeMounts[{i}]");
            if !names.contains(mount.name.as_str()) {
                self.error(
                    format!("{path}.name"),
                    format!("{:?} is not one of the volumes of this component ({base}.volumes)", mount.name),
                );
            }
            if self.too_long(&format!("{path}.mountPath"), &mount.mount_path, rules::MAX_PATH_LENGTH) {
                continue;
            }
            if !mount.mount_path.starts_with('/') {
                self.error(format!("{path}.mountPath"), format!("{:?} is not an absolute path", mount.mount_path));
            }
            if let Some(reserved) = RESERVED_MOUNT_PATHS.iter().find(|r| overlaps(&mount.mount_path, r)) {
                self.error(
                    format!("{path}.mountPath"),
                    format!("{:?} collides with {reserved}, which the operator mounts", mount.mount_path),
                );
            }
            if !paths.insert(as_directory(&mount.mount_path)) {
                self.error(format!("{path}.mountPath"), format!("{:?} is mounted twice", mount.mount_path));
            }
        }
    }

    fn env(&mut self, base: &str, w: &WorkloadSpec) {
        let mut seen = BTreeSet::new();
        self.too_many(&format!("{base}.env"), w.env.len(), rules::MAX_ENV);
        for (i, var) in w.env.iter().enumerate() {
            let path = format!("{base}.env[{i}].name");
            if self.too_long(&path, &var.name, rules::MAX_ENV_NAME_LENGTH) {
                continue;
            }
            if !PATTERNS.env_name.is_match(&var.name) {
                self.error(&path, format!("{:?} is not a valid environment variable name", var.name));
            }
            if let Some((_, why)) = RESERVED_ENV.iter().find(|(name, _)| *name == var.name) {
                self.error(&path, format!("{} is managed by the operator: {why}", var.name));
            }
            if !seen.insert(var.name.as_str()) {
                self.error(&path, format!("{} is set twice", var.name));
            }
        }
    }

    fn service_account(&mut self, sa: &ServiceAccountSpec) {
        self.labels("spec.serviceAccount.labels", &sa.labels, &labels::OWNERSHIP);
        self.annotations("spec.serviceAccount.annotations", &sa.annotations);
    }

    fn network_policy(&mut self, np: &NetworkPolicySpec) {
        for (field, ports) in [("apiServerPorts", &np.api_server_ports), ("dnsPorts", &np.dns_ports)] {
            for (i, port) in ports.iter().enumerate() {
                if !(1..=65535).contains(port) {
                    self.error(format!("spec.networkPolicy.{field}[{i}]"), format!("{port} is not a port (1-65535)"));
                }
            }
        }
        for (i, cidr) in np.api_server_cidrs.iter().enumerate() {
            if !is_cidr(cidr) {
                self.error(
                    format!("spec.networkPolicy.apiServerCIDRs[{i}]"),
                    format!("{cidr:?} is not an address block: an IPv4 or IPv6 address, '/', and a prefix length (10.0.0.10/32, fd00::1/128)"),
                );
            }
        }
    }

    fn labels(&mut self, path: &str, map: &BTreeMap<String, String>, reserved: &[&str]) {
        self.too_many(path, map.len(), rules::MAX_LABELS);
        for (key, value) in map {
            let entry = format!("{path}[{key}]");
            if let Some(problem) = qualified_name_problem(key) {
                self.error(&entry, format!("key {key:?} {problem}"));
            }
            if value.len() > 63 || !PATTERNS.label_value.is_match(value) {
                self.error(
                    &entry,
                    format!("value {value:?} is not a label value (at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)"),
                );
            }
            if reserved.contains(&key.as_str()) {
                self.error(&entry, format!("{key} is set by the operator and cannot be changed"));
            }
        }
    }

    fn annotations(&mut self, path: &str, map: &BTreeMap<String, String>) {
        self.too_many(path, map.len(), rules::MAX_ANNOTATIONS);
        let bytes: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > rules::MAX_ANNOTATION_BYTES {
            self.error(path, format!("{bytes} bytes: {}", rules::annotation_bytes_message()));
        }
        for key in map.keys() {
            if let Some(problem) = qualified_name_problem(key) {
                self.error(format!("{path}[{key}]"), format!("key {key:?} {problem}"));
            }
        }
    }

    /// Refuses more than `max` entries; true when it did.
    fn too_many(&mut self, path: &str, count: usize, max: usize) -> bool {
        let over = count > max;
        if over {
            self.error(path, too_many_message(count, max));
        }
        over
    }

    /// Refuses a value longer than `max` bytes; true when it did.
    fn too_long(&mut self, path: &str, value: &str, max: usize) -> bool {
        let over = value.len() > max;
        if over {
            self.error(path, too_long_message(value.len(), max));
        }
        over
    }

    fn dns_subdomain(&mut self, path: &str, name: &str) {
        if !is_dns_subdomain(name) {
            self.error(path, format!("{name:?} is not a valid object name (lower case letters, digits, '-' and '.')"));
        }
    }

    fn dns_label(&mut self, path: &str, name: &str) {
        if name.len() > rules::DNS1123_LABEL_MAX || !PATTERNS.dns1123_label.is_match(name) {
            self.error(path, format!("{name:?} is not a valid name (at most 63 lower case letters, digits and '-')"));
        }
    }
}

/// Whether `name` is a valid name for most kinds of object (RFC 1123 subdomain).
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= rules::DNS1123_SUBDOMAIN_MAX && PATTERNS.dns1123_subdomain.is_match(name)
}

fn is_reserved_volume(name: &str) -> bool {
    RESERVED_VOLUME_NAMES.contains(&name)
        || name.strip_prefix("cabundle").is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
}

fn too_many_message(count: usize, max: usize) -> String {
    format!("{count} entries: at most {max} are allowed")
}

fn too_long_message(length: usize, max: usize) -> String {
    format!("{length} characters: at most {max} are allowed")
}

/// A path with exactly one trailing '/' added when it has none: how mount paths are compared, by this
/// function and by the CRD's CEL rules alike (`/certs` and `/certs/` are the same, `/certsx` is not below
/// `/certs`).
fn as_directory(path: &str) -> String {
    if path.ends_with('/') { path.to_string() } else { format!("{path}/") }
}

/// Whether mounting at `path` would hide or be hidden by a mount at `reserved`.
fn overlaps(path: &str, reserved: &str) -> bool {
    let path = as_directory(path);
    let reserved = format!("{reserved}/");
    path.starts_with(&reserved) || reserved.starts_with(&path)
}

/// Why `key` is not a qualified name (`[prefix/]name`), if it is not.
fn qualified_name_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.len() > rules::DNS1123_SUBDOMAIN_MAX || !PATTERNS.dns1123_subdomain.is_match(prefix))
    {
        return Some("has a prefix that is not a DNS subdomain");
    }
    if name.is_empty() || name.len() > 63 || !PATTERNS.label_name.is_match(name) {
        return Some(
            "is not a qualified name (at most 63 letters, digits, '-', '_' or '.', optionally after a DNS prefix and '/')",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_blocks_are_read_as_the_api_server_reads_them() {
        assert!(is_cidr("10.0.0.10/32") && is_cidr("fd00::1/128") && is_cidr("0.0.0.0/0"));
        for refused in ["10.0.0.10", "10.0.0.0/33", "fd00::/129", "10.0.0.0/032", "10.0.0.0/+8", "10.0.0.0/", "x/8"] {
            assert!(!is_cidr(refused), "{refused}");
        }
    }

    #[test]
    fn every_rule_pattern_compiles() {
        let _ = Patterns::compile();
    }

    #[test]
    fn mount_path_overlap_covers_parents_and_children() {
        assert!(overlaps("/certs", "/certs"));
        assert!(overlaps("/certs/x", "/certs"));
        assert!(overlaps("/", "/certs"));
        assert!(overlaps("/certs/", "/certs"));
        assert!(!overlaps("/certsx", "/certs"));
        assert!(!overlaps("/data", "/certs"));
    }
}
