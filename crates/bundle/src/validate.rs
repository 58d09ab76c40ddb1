//! `cma-bundle validate DIR`: the rules OLM, operator-sdk's bundle validators (default, OperatorHub, good
//! practices), the scorecard's OLM tests and OpenShift's certification enforce, checked without a cluster.
//! Every violation is one [`Finding`] naming its [`Rule`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use cma_api::yaml::{Budget, Limits, YamlError};
use regex::Regex;
use serde_json::{Value, json};

use crate::dockerfile;
use crate::files::{self, SizeLimit};
use crate::rbac::Permissions;

/// A rule of the validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// `manifests/` and `metadata/` exist, exactly one CSV, every manifest parses.
    Layout,
    /// `metadata/annotations.yaml` holds the bundle keys with valid values, agreeing with the CSV.
    Annotations,
    /// The bundle image's labels equal the annotations.
    DockerfileLabels,
    /// Only kinds OLM can install are in `manifests/`.
    SupportedKinds,
    /// CSV name `<package>.v<semver>`, DNS-1123, at most 63 characters, agreeing with `spec.version`.
    CsvName,
    /// `spec.replaces` and `olm.skipRange` are well-formed and point backwards; `olm.*` keys spelled exactly.
    Upgrades,
    /// displayName, description, provider, maintainers, links, icon, keywords, maturity, install strategy.
    CsvFields,
    /// installModes present, known, unique, at least one supported.
    InstallModes,
    /// `spec.minKubeVersion` present and a version.
    MinKubeVersion,
    /// alm-examples: JSON, kinds owned, one per owned API, valid against the CRD schema, no unknown field.
    AlmExamples,
    /// Owned CRDs and bundled CRDs match one to one; descriptions, display names and resources present.
    OwnedCrds,
    /// CRD names are `<plural>.<group>`, one storage version, no duplicate versions.
    CrdNames,
    /// Every top-level spec (status) key of an example has a spec (status) descriptor; descriptor paths
    /// exist in the schema.
    Descriptors,
    /// Annotations OperatorHub and OpenShift require, with valid values.
    CsvAnnotations,
    /// Images parse, are pinned (no `latest`, no missing tag; digests with `--release`) and are all listed in
    /// `relatedImages`.
    Images,
    /// The gzip-compressed bundle is under 1 MiB (warning above 85 %).
    BundleSize,
    /// No bundled ServiceAccount named like the operator's.
    ServiceAccounts,
    /// CPU and memory requests on every container.
    ResourceRequests,
    /// Channel names start with candidate, stable, fast or preview.
    ChannelNames,
    /// No wildcard, no cluster-wide Secret writes, escalate/bind by name only, no CRD writes.
    Permissions,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 20] = [
        Rule::Layout,
        Rule::Annotations,
        Rule::DockerfileLabels,
        Rule::SupportedKinds,
        Rule::CsvName,
        Rule::Upgrades,
        Rule::CsvFields,
        Rule::InstallModes,
        Rule::MinKubeVersion,
        Rule::AlmExamples,
        Rule::OwnedCrds,
        Rule::CrdNames,
        Rule::Descriptors,
        Rule::CsvAnnotations,
        Rule::Images,
        Rule::BundleSize,
        Rule::ServiceAccounts,
        Rule::ResourceRequests,
        Rule::ChannelNames,
        Rule::Permissions,
    ];

    /// The rule's identifier, as printed.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Layout => "layout",
            Rule::Annotations => "annotations",
            Rule::DockerfileLabels => "dockerfile-labels",
            Rule::SupportedKinds => "supported-kinds",
            Rule::CsvName => "csv-name",
            Rule::Upgrades => "upgrades",
            Rule::CsvFields => "csv-fields",
            Rule::InstallModes => "install-modes",
            Rule::MinKubeVersion => "min-kube-version",
            Rule::AlmExamples => "alm-examples",
            Rule::OwnedCrds => "owned-crds",
            Rule::CrdNames => "crd-names",
            Rule::Descriptors => "descriptors",
            Rule::CsvAnnotations => "csv-annotations",
            Rule::Images => "images",
            Rule::BundleSize => "bundle-size",
            Rule::ServiceAccounts => "service-accounts",
            Rule::ResourceRequests => "resource-requests",
            Rule::ChannelNames => "channel-names",
            Rule::Permissions => "permissions",
        }
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Fails validation.
    Error,
    /// Reported only.
    Warning,
}

/// One violation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The rule.
    pub rule: Rule,
    /// What is wrong, naming the file or field.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}[{}]: {}", self.rule.id(), self.message)
    }
}

/// Validation options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Release mode: every image must be pinned by digest.
    pub release: bool,
    /// The bundle image's Dockerfile; default `DIR/../bundle.Dockerfile`.
    pub dockerfile: Option<PathBuf>,
}

/// The outcome of a validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Findings, errors first.
    pub findings: Vec<Finding>,
    /// Size of the gzip-compressed manifests and metadata, in bytes.
    pub compressed_size: Option<u64>,
}

impl Report {
    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.severity == Severity::Error)
    }

    /// Whether no error was found.
    pub fn is_ok(&self) -> bool {
        self.errors().next().is_none()
    }

    /// Whether `rule` reported an error.
    pub fn violates(&self, rule: Rule) -> bool {
        self.errors().any(|f| f.rule == rule)
    }
}

/// The compressed-size limit OLM's bundle unpacking imposes.
pub const MAX_COMPRESSED_SIZE: u64 = 1024 * 1024;

/// Kinds OLM can install from a bundle.
pub const SUPPORTED_KINDS: [&str; 19] = [
    "ClusterServiceVersion",
    "CustomResourceDefinition",
    "Secret",
    "ConfigMap",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ClusterRole",
    "ClusterRoleBinding",
    "PrometheusRule",
    "ServiceMonitor",
    "PodDisruptionBudget",
    "PriorityClass",
    "VerticalPodAutoscaler",
    "ConsoleYAMLSample",
    "ConsoleQuickStart",
    "ConsoleCLIDownload",
    "ConsoleLink",
];

/// The bundle annotation keys OLM requires.
pub const BUNDLE_KEYS: [&str; 6] = [
    "operators.operatorframework.io.bundle.mediatype.v1",
    "operators.operatorframework.io.bundle.manifests.v1",
    "operators.operatorframework.io.bundle.metadata.v1",
    "operators.operatorframework.io.bundle.package.v1",
    "operators.operatorframework.io.bundle.channels.v1",
    "operators.operatorframework.io.bundle.channel.default.v1",
];

/// OpenShift's infrastructure feature annotations; each must be "true" or "false".
pub const FEATURE_KEYS: [&str; 10] = [
    "features.operators.openshift.io/disconnected",
    "features.operators.openshift.io/fips-compliant",
    "features.operators.openshift.io/proxy-aware",
    "features.operators.openshift.io/tls-profiles",
    "features.operators.openshift.io/token-auth-aws",
    "features.operators.openshift.io/token-auth-azure",
    "features.operators.openshift.io/token-auth-gcp",
    "features.operators.openshift.io/cnf",
    "features.operators.openshift.io/cni",
    "features.operators.openshift.io/csi",
];

/// Capability levels.
pub const CAPABILITIES: [&str; 5] =
    ["Basic Install", "Seamless Upgrades", "Full Lifecycle", "Deep Insights", "Auto Pilot"];

/// OperatorHub's standard categories.
pub const CATEGORIES: [&str; 16] = [
    "AI/Machine Learning",
    "Application Runtime",
    "Big Data",
    "Cloud Provider",
    "Database",
    "Developer Tools",
    "Drivers and plugins",
    "Integration & Delivery",
    "Logging & Tracing",
    "Modernization & Migration",
    "Monitoring",
    "Networking",
    "OpenShift Optional",
    "Security",
    "Storage",
    "Streaming & Messaging",
];

/// `olm.*` annotation keys whose exact spelling OLM reads.
const OLM_KEYS: [&str; 3] = ["olm.skipRange", "olm.properties", "olm.substitutesFor"];

const ICON_MEDIATYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/svg+xml"];
const INSTALL_MODES: [&str; 4] = ["OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces"];

struct Ctx {
    findings: Vec<Finding>,
}

impl Ctx {
    fn error(&mut self, rule: Rule, message: impl Into<String>) {
        self.findings.push(Finding { severity: Severity::Error, rule, message: message.into() });
    }

    fn warn(&mut self, rule: Rule, message: impl Into<String>) {
        self.findings.push(Finding { severity: Severity::Warning, rule, message: message.into() });
    }
}

/// Whether `s` matches one of this module's constant patterns (a pattern that does not compile matches
/// nothing, and every test of the rule using it fails).
fn matches(pattern: &str, s: &str) -> bool {
    Regex::new(pattern).is_ok_and(|re| re.is_match(s))
}

fn dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && matches(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", s)
}

fn is_url(s: &str) -> bool {
    matches(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/\S*)?$", s)
}

fn is_email(s: &str) -> bool {
    matches(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$", s)
}

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository including registry.
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest, if any.
    pub digest: Option<String>,
}

/// Parses an image reference (`[registry/]path[:tag][@sha256:...]`).
pub fn parse_image(image: &str) -> Option<ImageRef> {
    let re = Regex::new(
        r"^((?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(sha256:[a-f0-9]{64}))?$",
    )
    .ok()?;
    let c = re.captures(image)?;
    Some(ImageRef {
        repository: c.get(1)?.as_str().to_string(),
        tag: c.get(2).map(|m| m.as_str().to_string()),
        digest: c.get(3).map(|m| m.as_str().to_string()),
    })
}

/// Parses a version, padding `1.33` to `1.33.0` (OLM reads minKubeVersion leniently).
fn lenient_version(s: &str) -> Option<semver::Version> {
    let s = s.trim().trim_start_matches('v');
    semver::Version::parse(s).ok().or_else(|| {
        let parts = s.split('.').count();
        match parts {
            1 => semver::Version::parse(&format!("{s}.0.0")).ok(),
            2 => semver::Version::parse(&format!("{s}.0")).ok(),
            _ => None,
        }
    })
}

/// Whether `version` satisfies an OLM (blang/semver) range such as `>=1.0.0 <1.2.0 || >2.0.0`. `Err` when
/// the range does not parse.
pub fn range_matches(range: &str, version: &semver::Version) -> Result<bool, String> {
    let mut any = false;
    for alternative in range.split("||") {
        let comparators: Vec<&str> = alternative.split_whitespace().collect();
        if comparators.is_empty() {
            return Err(format!("empty alternative in {range:?}"));
        }
        let mut all = true;
        for c in comparators {
            let (op, v) = ["!=", ">=", "<=", ">", "<", "==", "="]
                .iter()
                .find_map(|op| c.strip_prefix(op).map(|v| (*op, v)))
                .unwrap_or(("=", c));
            let bound = semver::Version::parse(v)
                .map_err(|e| format!("{c:?} in {range:?} is not a version comparison: {e}"))?;
            let ok = match op {
                ">=" => version >= &bound,
                "<=" => version <= &bound,
                ">" => version > &bound,
                "<" => version < &bound,
                "!=" => version != &bound,
                _ => version == &bound,
            };
            all &= ok;
        }
        any |= all;
    }
    Ok(any)
}

struct Bundle {
    dir: PathBuf,
    /// (file, object) of every manifest document.
    manifests: Vec<(String, Value)>,
    annotations: BTreeMap<String, String>,
    /// The contents of every file read from `manifests/` and `metadata/`, in order, for the size rule.
    contents: Vec<Vec<u8>>,
}

/// The largest file a bundle may hold: the API server refuses request bodies over 3 MiB, so OLM could not
/// create the object of a larger manifest.
pub const MAX_FILE_SIZE: SizeLimit =
    SizeLimit { bytes: 3 * 1024 * 1024, why: "the API server refuses larger requests, so OLM could not apply it" };

/// The most bytes the files of a bundle may add up to. OLM refuses a bundle over 1 MiB compressed, and
/// bundle YAML compresses about 13 times (ours: 543 KB to 42 KB), so a bundle OLM accepts holds about 13 MiB
/// at most.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// What reading a bundle's YAML may cost, all its files together: a manifest file's depth and aliases,
/// [`MAX_BUNDLE_BYTES`], and a manifest file's 150,000 nodes (ours has 22,000; the limit keeps validation of any
/// bundle under 100 MB of memory).
pub const BUNDLE_LIMITS: Limits = Limits { subject: "a bundle", max_bytes: MAX_BUNDLE_BYTES, ..Limits::MANIFEST };

/// Reads the files of one bundle: each at most once, within one budget, reporting each refusal as a
/// finding.
struct Reader {
    root: PathBuf,
    budget: Budget,
    bytes: usize,
    /// Set once the bundle as a whole is over budget: nothing more is read.
    exhausted: bool,
    contents: Vec<Vec<u8>>,
}

impl Reader {
    /// The bytes of `path` (`name` in messages), or `None` after a finding.
    fn bytes(&mut self, path: &Path, name: &str, ctx: &mut Ctx) -> Option<Vec<u8>> {
        if self.exhausted {
            return None;
        }
        let bytes = match files::read(path, Some(&self.root), MAX_FILE_SIZE) {
            Ok(bytes) => bytes,
            Err(e) => {
                ctx.error(Rule::Layout, format!("{name}: {e}"));
                return None;
            }
        };
        self.bytes += bytes.len();
        if self.bytes > MAX_BUNDLE_BYTES {
            ctx.error(
                Rule::Layout,
                format!(
                    "{name}: the bundle's files add up to more than {} MiB; the rest of the bundle is not read",
                    MAX_BUNDLE_BYTES / (1024 * 1024)
                ),
            );
            self.exhausted = true;
            return None;
        }
        self.contents.push(bytes.clone());
        Some(bytes)
    }

    /// The YAML documents of `path`, or `None` after a finding.
    fn documents(&mut self, path: &Path, name: &str, ctx: &mut Ctx) -> Option<Vec<Value>> {
        let bytes = self.bytes(path, name, ctx)?;
        let Ok(text) = String::from_utf8(bytes) else {
            ctx.error(Rule::Layout, format!("{name} is not UTF-8 text"));
            return None;
        };
        match self.budget.documents::<Value>(&text) {
            Ok(documents) => Some(documents),
            Err(e @ YamlError::Parse { .. }) => {
                ctx.error(Rule::Layout, format!("{name} is not valid YAML: {e}"));
                None
            }
            Err(e) => {
                // Over the bundle's budget: reading on would only report the same again.
                let spent = matches!(
                    e,
                    YamlError::TooLarge { .. } | YamlError::TooManyNodes { .. } | YamlError::TooManyDocuments { .. }
                );
                let rest = if spent { "; the rest of the bundle is not read" } else { "" };
                ctx.error(Rule::Layout, format!("{name}: {e}{rest}"));
                self.exhausted |= spent;
                None
            }
        }
    }
}

/// The entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
    paths.sort();
    paths
}

fn load(dir: &Path, ctx: &mut Ctx) -> Option<Bundle> {
    let manifests_dir = dir.join("manifests");
    let metadata_dir = dir.join("metadata");
    if !manifests_dir.is_dir() {
        ctx.error(Rule::Layout, format!("{} is not a directory", manifests_dir.display()));
        return None;
    }
    let root = match std::fs::canonicalize(dir) {
        Ok(root) => root,
        Err(e) => {
            ctx.error(Rule::Layout, format!("{}: {e}", dir.display()));
            return None;
        }
    };
    for sub in [&manifests_dir, &metadata_dir] {
        if let Ok(real) = std::fs::canonicalize(sub)
            && !real.starts_with(&root)
        {
            let name = sub.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            ctx.error(Rule::Layout, format!("{name} is a symbolic link to {}, outside the bundle", real.display()));
            return None;
        }
    }
    let mut reader =
        Reader { root, budget: Budget::new(BUNDLE_LIMITS), bytes: 0, exhausted: false, contents: Vec::new() };
    // metadata/ first: a few small files, read even when the manifests spend the whole budget.
    let metadata = metadata_dir.join("annotations.yaml");
    if !metadata.exists() {
        ctx.error(Rule::Layout, "metadata/annotations.yaml: no such file");
    }
    let mut annotations = BTreeMap::new();
    for path in entries(&metadata_dir) {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let name = format!("metadata/{file}");
        if path != metadata {
            // Read only for the size rule: OLM reads other metadata files (dependencies, properties) too.
            if !path.is_dir() {
                reader.bytes(&path, &name, ctx);
            }
            continue;
        }
        let Some(documents) = reader.documents(&path, &name, ctx) else {
            continue;
        };
        let value = documents.into_iter().find(|d| !d.is_null()).unwrap_or(Value::Null);
        annotations = value["annotations"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string())))
                    .collect()
            })
            .unwrap_or_default();
    }
    let metadata_contents = std::mem::take(&mut reader.contents);
    let mut manifests = Vec::new();
    for path in entries(&manifests_dir) {
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            ctx.error(Rule::Layout, format!("manifests/{file} is a directory; OLM reads files only"));
            continue;
        }
        let name = format!("manifests/{file}");
        for document in reader.documents(&path, &name, ctx).unwrap_or_default() {
            if !document.is_null() {
                manifests.push((file.clone(), document));
            }
        }
    }
    // The size rule compresses manifests/ then metadata/, the order it always had (the same bundle, the same size).
    reader.contents.extend(metadata_contents);
    Some(Bundle { dir: dir.to_path_buf(), manifests, annotations, contents: reader.contents })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Validates the bundle in `dir`.
pub fn validate(dir: &Path, options: &Options) -> Report {
    let mut ctx = Ctx { findings: Vec::new() };
    let Some(bundle) = load(dir, &mut ctx) else {
        ctx.findings.sort();
        return Report { findings: ctx.findings, compressed_size: None };
    };
    let csvs: Vec<&Value> =
        bundle.manifests.iter().filter(|(_, v)| v["kind"] == "ClusterServiceVersion").map(|(_, v)| v).collect();
    if csvs.len() != 1 {
        ctx.error(
            Rule::Layout,
            format!("manifests/ holds {} ClusterServiceVersions; a bundle has exactly one", csvs.len()),
        );
    }
    supported_kinds(&bundle, &mut ctx);
    crd_names(&bundle, &mut ctx);
    annotations_rules(&bundle, csvs.first().copied(), &mut ctx);
    dockerfile_labels(&bundle, options, &mut ctx);
    let compressed_size = bundle_size(&bundle, &mut ctx);
    if let Some(csv) = csvs.first() {
        csv_name(csv, &mut ctx);
        upgrades(csv, &mut ctx);
        csv_fields(csv, &mut ctx);
        install_modes(csv, &mut ctx);
        min_kube_version(csv, &mut ctx);
        csv_annotations(csv, &mut ctx);
        owned_crds(&bundle, csv, &mut ctx);
        examples_and_descriptors(&bundle, csv, &mut ctx);
        images(csv, options, &mut ctx);
        service_accounts(&bundle, csv, &mut ctx);
        resource_requests(csv, &mut ctx);
        permissions(csv, &mut ctx);
    }
    ctx.findings.sort();
    Report { findings: ctx.findings, compressed_size }
}

fn supported_kinds(bundle: &Bundle, ctx: &mut Ctx) {
    for (file, v) in &bundle.manifests {
        let kind = v["kind"].as_str().unwrap_or("");
        if !SUPPORTED_KINDS.contains(&kind) {
            ctx.error(
                Rule::SupportedKinds,
                format!("manifests/{file}: kind {:?} cannot be installed from a bundle", kind),
            );
        }
    }
}

fn crds(bundle: &Bundle) -> Vec<(&String, &Value)> {
    bundle.manifests.iter().filter(|(_, v)| v["kind"] == "CustomResourceDefinition").map(|(f, v)| (f, v)).collect()
}

fn crd_names(bundle: &Bundle, ctx: &mut Ctx) {
    for (file, crd) in crds(bundle) {
        if crd["apiVersion"] != "apiextensions.k8s.io/v1" {
            ctx.error(Rule::CrdNames, format!("manifests/{file}: CRDs must be apiextensions.k8s.io/v1"));
        }
        let name = str_at(crd, "/metadata/name");
        let plural = str_at(crd, "/spec/names/plural");
        let group = str_at(crd, "/spec/group");
        if name != format!("{plural}.{group}") {
            ctx.error(Rule::CrdNames, format!("manifests/{file}: CRD name {name:?} is not {plural}.{group}"));
        }
        let versions: Vec<&str> =
            crd["spec"]["versions"].as_array().into_iter().flatten().filter_map(|v| v["name"].as_str()).collect();
        let unique: BTreeSet<&str> = versions.iter().copied().collect();
        if unique.len() != versions.len() {
            ctx.error(Rule::CrdNames, format!("manifests/{file}: CRD {name} lists a version twice"));
        }
        let storage =
            crd["spec"]["versions"].as_array().into_iter().flatten().filter(|v| v["storage"] == json!(true)).count();
        if storage != 1 {
            ctx.error(Rule::CrdNames, format!("manifests/{file}: CRD {name} has {storage} storage versions, not one"));
        }
    }
}

fn annotations_rules(bundle: &Bundle, csv: Option<&Value>, ctx: &mut Ctx) {
    let a = &bundle.annotations;
    for key in BUNDLE_KEYS {
        if a.get(key).is_none_or(|v| v.trim().is_empty()) {
            ctx.error(Rule::Annotations, format!("metadata/annotations.yaml lacks {key}"));
        }
    }
    let expect = [(BUNDLE_KEYS[0], "registry+v1"), (BUNDLE_KEYS[1], "manifests/"), (BUNDLE_KEYS[2], "metadata/")];
    for (key, value) in expect {
        if let Some(v) = a.get(key)
            && v != value
        {
            ctx.error(Rule::Annotations, format!("metadata/annotations.yaml: {key} is {v:?}, not {value:?}"));
        }
    }
    let channels: Vec<&str> = a.get(BUNDLE_KEYS[4]).map(|c| c.split(',').map(str::trim).collect()).unwrap_or_default();
    if let Some(default) = a.get(BUNDLE_KEYS[5])
        && !channels.contains(&default.as_str())
    {
        ctx.error(
            Rule::Annotations,
            format!("the default channel {default:?} is not one of the channels {channels:?}"),
        );
    }
    for channel in &channels {
        if !["candidate", "stable", "fast", "preview"].iter().any(|p| channel.starts_with(p)) {
            ctx.error(
                Rule::ChannelNames,
                format!("channel {channel:?} does not start with candidate, stable, fast or preview"),
            );
        }
    }
    if let (Some(csv), Some(package)) = (csv, a.get(BUNDLE_KEYS[3])) {
        let name = str_at(csv, "/metadata/name");
        if !name.starts_with(&format!("{package}.v")) {
            ctx.error(
                Rule::Annotations,
                format!("the package {package:?} of annotations.yaml does not name the CSV {name:?}"),
            );
        }
    }
}

/// The bundle image's Dockerfile names a base image, copies two directories and sets labels; ours is 1 KB.
const MAX_DOCKERFILE_SIZE: SizeLimit = SizeLimit { bytes: 1024 * 1024, why: "a bundle Dockerfile holds labels only" };

fn dockerfile_labels(bundle: &Bundle, options: &Options, ctx: &mut Ctx) {
    let path = options
        .dockerfile
        .clone()
        .unwrap_or_else(|| bundle.dir.parent().unwrap_or(Path::new(".")).join("bundle.Dockerfile"));
    let text = match files::read_text(&path, None, MAX_DOCKERFILE_SIZE) {
        Ok(t) => t,
        Err(e) => {
            ctx.error(Rule::DockerfileLabels, format!("{}: {e} (pass --dockerfile)", path.display()));
            return;
        }
    };
    let labels = dockerfile::labels(&text);
    for (key, value) in &bundle.annotations {
        match labels.get(key) {
            Some(v) if v == value => {}
            Some(v) => ctx.error(
                Rule::DockerfileLabels,
                format!("{}: label {key}={v:?} differs from the annotation {value:?}", path.display()),
            ),
            None => {
                ctx.error(Rule::DockerfileLabels, format!("{}: no label {key} (annotation {value:?})", path.display()))
            }
        }
    }
    for key in labels.keys() {
        if key.starts_with("operators.operatorframework.io.") && !bundle.annotations.contains_key(key) {
            ctx.error(Rule::DockerfileLabels, format!("{}: label {key} has no annotation", path.display()));
        }
    }
}

fn bundle_size(bundle: &Bundle, ctx: &mut Ctx) -> Option<u64> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for bytes in &bundle.contents {
        if gz.write_all(bytes).is_err() {
            return None;
        }
    }
    let size = gz.finish().ok()?.len() as u64;
    if size > MAX_COMPRESSED_SIZE {
        ctx.error(
            Rule::BundleSize,
            format!("the compressed bundle is {size} bytes, over the {MAX_COMPRESSED_SIZE} byte limit"),
        );
    } else if size * 100 > MAX_COMPRESSED_SIZE * 85 {
        ctx.warn(
            Rule::BundleSize,
            format!("the compressed bundle is {size} bytes, over 85 % of the {MAX_COMPRESSED_SIZE} byte limit"),
        );
    }
    Some(size)
}

fn csv_name(csv: &Value, ctx: &mut Ctx) {
    let name = str_at(csv, "/metadata/name");
    let version = str_at(csv, "/spec/version");
    if name.len() > 63 || !dns1123_subdomain(name) {
        ctx.error(Rule::CsvName, format!("CSV name {name:?} is not a DNS-1123 name of at most 63 characters"));
    }
    let Some((_, name_version)) = name.split_once(".v") else {
        ctx.error(Rule::CsvName, format!("CSV name {name:?} is not <package>.v<version>"));
        return;
    };
    if semver::Version::parse(version).is_err() {
        ctx.error(Rule::CsvName, format!("spec.version {version:?} is not a semantic version"));
    }
    if name_version != version {
        ctx.error(Rule::CsvName, format!("CSV name {name:?} does not carry spec.version {version:?}"));
    }
}

fn upgrades(csv: &Value, ctx: &mut Ctx) {
    let name = str_at(csv, "/metadata/name");
    let package = name.split_once(".v").map(|(p, _)| p).unwrap_or(name);
    let version = semver::Version::parse(str_at(csv, "/spec/version")).ok();
    if let Some(replaces) = csv["spec"]["replaces"].as_str() {
        let previous = replaces.strip_prefix(&format!("{package}.v")).and_then(|v| semver::Version::parse(v).ok());
        match previous {
            None => ctx.error(Rule::Upgrades, format!("spec.replaces {replaces:?} is not {package}.v<version>")),
            Some(p) if version.as_ref().is_some_and(|v| &p >= v) => {
                ctx.error(Rule::Upgrades, format!("spec.replaces {replaces:?} is not older than spec.version"))
            }
            Some(_) => {}
        }
        if replaces.len() > 63 || !dns1123_subdomain(replaces) {
            ctx.error(
                Rule::Upgrades,
                format!("spec.replaces {replaces:?} is not a DNS-1123 name of at most 63 characters"),
            );
        }
    }
    let annotations = csv["metadata"]["annotations"].as_object();
    for key in annotations.into_iter().flatten().map(|(k, _)| k) {
        if let Some(exact) = OLM_KEYS.iter().find(|k| k.eq_ignore_ascii_case(key) && *k != key) {
            ctx.error(Rule::Upgrades, format!("annotation {key:?} is ignored by OLM: spell it {exact:?}"));
        }
    }
    if let Some(range) = csv["metadata"]["annotations"]["olm.skipRange"].as_str()
        && let Some(v) = &version
    {
        match range_matches(range, v) {
            Err(e) => ctx.error(Rule::Upgrades, format!("olm.skipRange: {e}")),
            Ok(true) => {
                ctx.error(Rule::Upgrades, format!("olm.skipRange {range:?} includes the CSV's own version {v}"))
            }
            Ok(false) => {}
        }
    }
}

fn nonempty(v: &Value, pointer: &str) -> bool {
    match v.pointer(pointer) {
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        _ => false,
    }
}

fn csv_fields(csv: &Value, ctx: &mut Ctx) {
    for (pointer, what) in [
        ("/spec/displayName", "spec.displayName"),
        ("/spec/description", "spec.description"),
        ("/spec/provider/name", "spec.provider.name"),
        ("/spec/maintainers", "spec.maintainers"),
        ("/spec/links", "spec.links"),
        ("/spec/keywords", "spec.keywords"),
        ("/spec/maturity", "spec.maturity"),
    ] {
        if !nonempty(csv, pointer) {
            ctx.error(Rule::CsvFields, format!("{what} is missing"));
        }
    }
    if csv["spec"]["install"]["strategy"] != "deployment" {
        ctx.error(Rule::CsvFields, "spec.install.strategy must be \"deployment\"");
    }
    if !nonempty(csv, "/spec/install/spec/deployments") {
        ctx.error(Rule::CsvFields, "spec.install.spec.deployments is empty");
    }
    for m in csv["spec"]["maintainers"].as_array().into_iter().flatten() {
        let email = m["email"].as_str().unwrap_or("");
        if m["name"].as_str().is_none_or(str::is_empty) || !is_email(email) {
            ctx.error(Rule::CsvFields, format!("maintainer {m} needs a name and a valid email"));
        }
    }
    for l in csv["spec"]["links"].as_array().into_iter().flatten() {
        let url = l["url"].as_str().unwrap_or("");
        if l["name"].as_str().is_none_or(str::is_empty) || !is_url(url) {
            ctx.error(Rule::CsvFields, format!("link {l} needs a name and a valid URL"));
        }
    }
    match csv["spec"]["icon"].as_array() {
        Some(icons) if icons.len() == 1 => {
            let icon = &icons[0];
            let mediatype = icon["mediatype"].as_str().unwrap_or("");
            if !ICON_MEDIATYPES.contains(&mediatype) {
                ctx.error(Rule::CsvFields, format!("icon mediatype {mediatype:?} is not one of {ICON_MEDIATYPES:?}"));
            }
            let data = icon["base64data"].as_str().unwrap_or("");
            match base64::engine::general_purpose::STANDARD.decode(data) {
                Ok(bytes) if !bytes.is_empty() => {
                    if mediatype == "image/svg+xml" && !String::from_utf8_lossy(&bytes).contains("<svg") {
                        ctx.error(Rule::CsvFields, "the icon is not an SVG document");
                    }
                }
                _ => ctx.error(Rule::CsvFields, "the icon's base64data is empty or not base64"),
            }
        }
        Some(icons) => {
            ctx.error(Rule::CsvFields, format!("spec.icon has {} entries; exactly one is shown", icons.len()))
        }
        None => ctx.error(Rule::CsvFields, "spec.icon is missing"),
    }
}

fn install_modes(csv: &Value, ctx: &mut Ctx) {
    let Some(modes) = csv["spec"]["installModes"].as_array() else {
        ctx.error(Rule::InstallModes, "spec.installModes is missing");
        return;
    };
    let mut seen = BTreeSet::new();
    for m in modes {
        let t = m["type"].as_str().unwrap_or("");
        if !INSTALL_MODES.contains(&t) {
            ctx.error(Rule::InstallModes, format!("install mode {t:?} is not one of {INSTALL_MODES:?}"));
        }
        if !seen.insert(t) {
            ctx.error(Rule::InstallModes, format!("install mode {t} is listed twice"));
        }
        if !m["supported"].is_boolean() {
            ctx.error(Rule::InstallModes, format!("install mode {t} has no boolean `supported`"));
        }
    }
    if !modes.iter().any(|m| m["supported"] == json!(true)) {
        ctx.error(Rule::InstallModes, "no install mode is supported");
    }
}

fn min_kube_version(csv: &Value, ctx: &mut Ctx) {
    match csv["spec"]["minKubeVersion"].as_str() {
        None => ctx.error(Rule::MinKubeVersion, "spec.minKubeVersion is missing"),
        Some(v) if lenient_version(v).is_none() => {
            ctx.error(Rule::MinKubeVersion, format!("spec.minKubeVersion {v:?} is not a version"))
        }
        Some(_) => {}
    }
}

fn csv_annotations(csv: &Value, ctx: &mut Ctx) {
    let a = &csv["metadata"]["annotations"];
    let get = |k: &str| a[k].as_str();
    for key in [
        "capabilities",
        "categories",
        "containerImage",
        "createdAt",
        "description",
        "support",
        "repository",
        "operatorframework.io/suggested-namespace",
        "operators.openshift.io/must-gather-image",
    ] {
        if get(key).is_none_or(|v| v.trim().is_empty()) {
            ctx.error(Rule::CsvAnnotations, format!("annotation {key} is missing"));
        }
    }
    if let Some(c) = get("capabilities")
        && !CAPABILITIES.contains(&c)
    {
        ctx.error(Rule::CsvAnnotations, format!("capabilities {c:?} is not one of {CAPABILITIES:?}"));
    }
    for category in get("categories").unwrap_or("").split(',') {
        let category = category.trim();
        if !category.is_empty() && !CATEGORIES.contains(&category) {
            ctx.error(Rule::CsvAnnotations, format!("category {category:?} is not a standard OperatorHub category"));
        }
    }
    if let Some(t) = get("createdAt")
        && !matches(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$", t)
    {
        ctx.error(Rule::CsvAnnotations, format!("createdAt {t:?} is not an RFC 3339 time"));
    }
    if let Some(r) = get("repository")
        && !is_url(r)
    {
        ctx.error(Rule::CsvAnnotations, format!("repository {r:?} is not a URL"));
    }
    for key in FEATURE_KEYS {
        match get(key) {
            Some("true") | Some("false") => {}
            Some(v) => {
                ctx.error(Rule::CsvAnnotations, format!("annotation {key} is {v:?}; it must be \"true\" or \"false\""))
            }
            None => ctx.error(Rule::CsvAnnotations, format!("annotation {key} is missing (\"true\" or \"false\")")),
        }
    }
    if get("operatorframework.io/cluster-monitoring") == Some("true")
        && !get("operatorframework.io/suggested-namespace").is_some_and(|n| n.starts_with("openshift-"))
    {
        ctx.error(
            Rule::CsvAnnotations,
            "operatorframework.io/cluster-monitoring needs a suggested namespace starting with openshift-",
        );
    }
}

/// (group, version, kind) of an owned entry.
fn owned_entries(csv: &Value) -> Vec<&Value> {
    csv["spec"]["customresourcedefinitions"]["owned"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn owned_crds(bundle: &Bundle, csv: &Value, ctx: &mut Ctx) {
    let mut bundled: BTreeSet<(String, String, String)> = BTreeSet::new();
    let mut bundled_gk: BTreeSet<(String, String)> = BTreeSet::new();
    for (file, crd) in crds(bundle) {
        let group = str_at(crd, "/spec/group").to_string();
        let kind = str_at(crd, "/spec/names/kind").to_string();
        for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
            let key = (group.clone(), v["name"].as_str().unwrap_or("").to_string(), kind.clone());
            if !bundled.insert(key.clone()) {
                ctx.error(
                    Rule::OwnedCrds,
                    format!("manifests/{file}: {}/{} {} is defined twice in the bundle", key.0, key.1, key.2),
                );
            }
        }
        bundled_gk.insert((group, kind));
    }
    let mut owned_gk = BTreeSet::new();
    for entry in owned_entries(csv) {
        let name = entry["name"].as_str().unwrap_or("");
        let version = entry["version"].as_str().unwrap_or("").to_string();
        let kind = entry["kind"].as_str().unwrap_or("").to_string();
        let Some((_, group)) = name.split_once('.') else {
            ctx.error(Rule::OwnedCrds, format!("owned CRD name {name:?} is not <plural>.<group>"));
            continue;
        };
        if !bundled.contains(&(group.to_string(), version.clone(), kind.clone())) {
            ctx.error(Rule::OwnedCrds, format!("owned CRD {name} ({kind} {version}) is not in the bundle"));
        }
        owned_gk.insert((group.to_string(), kind.clone()));
        for field in ["displayName", "description"] {
            if entry[field].as_str().is_none_or(|s| s.trim().is_empty()) {
                ctx.error(Rule::OwnedCrds, format!("owned CRD {name} has no {field}"));
            }
        }
        if entry["resources"].as_array().is_none_or(|r| r.is_empty()) {
            ctx.error(Rule::OwnedCrds, format!("owned CRD {name} lists no resources (the kinds it creates)"));
        }
    }
    for (group, kind) in bundled_gk.difference(&owned_gk) {
        ctx.error(Rule::OwnedCrds, format!("the bundled CRD {kind} ({group}) is not owned by the CSV"));
    }
}

/// Fields of `value` the schema does not declare (the API server would drop them), as paths.
fn unknown_fields(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == json!(true)
        || schema["x-kubernetes-int-or-string"] == json!(true)
    {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            for (k, v) in map {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child = format!("{path}.{k}");
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    unknown_fields(s, v, &child, out);
                } else if schema["additionalProperties"].is_object() {
                    unknown_fields(&schema["additionalProperties"], v, &child, out);
                } else if schema["additionalProperties"] != json!(true) {
                    out.push(child.trim_start_matches('.').to_string());
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                unknown_fields(&schema["items"], v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Whether a descriptor path (`a.b`, `a[0].b`, `a.0.b`) exists under `schema`.
fn schema_has_path(schema: &Value, path: &str) -> bool {
    let mut node = schema;
    for segment in path.replace('[', ".").replace(']', "").split('.') {
        if segment.is_empty() {
            continue;
        }
        while node["type"] == "array" {
            node = &node["items"];
        }
        if segment.chars().all(|c| c.is_ascii_digit()) && node["items"].is_object() {
            node = &node["items"];
            continue;
        }
        match node["properties"].get(segment) {
            Some(next) => node = next,
            None if node["additionalProperties"].is_object() => node = &node["additionalProperties"],
            None => {
                return node["x-kubernetes-preserve-unknown-fields"] == json!(true);
            }
        }
    }
    true
}

fn crd_schema<'a>(bundle: &'a Bundle, group: &str, kind: &str, version: &str) -> Option<&'a Value> {
    crds(bundle)
        .into_iter()
        .find(|(_, c)| c["spec"]["group"] == group && c["spec"]["names"]["kind"] == kind)
        .and_then(|(_, c)| c["spec"]["versions"].as_array()?.iter().find(|v| v["name"] == version))
        .map(|v| &v["schema"]["openAPIV3Schema"])
}

fn examples_and_descriptors(bundle: &Bundle, csv: &Value, ctx: &mut Ctx) {
    let Some(text) = csv["metadata"]["annotations"]["alm-examples"].as_str() else {
        ctx.error(Rule::AlmExamples, "annotation alm-examples is missing");
        return;
    };
    let examples: Vec<Value> = match serde_json::from_str(text) {
        Ok(Value::Array(a)) => a,
        Ok(_) => {
            ctx.error(Rule::AlmExamples, "alm-examples is not a JSON array");
            return;
        }
        Err(e) => {
            ctx.error(Rule::AlmExamples, format!("alm-examples is not valid JSON: {e}"));
            return;
        }
    };
    let owned = owned_entries(csv);
    let mut with_example: BTreeSet<String> = BTreeSet::new();
    for (i, example) in examples.iter().enumerate() {
        let api_version = example["apiVersion"].as_str().unwrap_or("");
        let kind = example["kind"].as_str().unwrap_or("");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let Some(entry) = owned.iter().find(|e| {
            e["kind"] == kind
                && e["version"] == version
                && e["name"].as_str().and_then(|n| n.split_once('.')).map(|(_, g)| g) == Some(group)
        }) else {
            ctx.error(Rule::AlmExamples, format!("alm-examples[{i}]: {api_version} {kind} is not an API the CSV owns"));
            continue;
        };
        let entry_name = entry["name"].as_str().unwrap_or("").to_string();
        with_example.insert(entry_name.clone());
        if let Some(schema) = crd_schema(bundle, group, kind, version) {
            match jsonschema::validator_for(schema) {
                Ok(validator) => {
                    for error in validator.iter_errors(example) {
                        ctx.error(
                            Rule::AlmExamples,
                            format!("alm-examples[{i}] ({kind}): {} at {}", error, error.instance_path()),
                        );
                    }
                }
                Err(e) => ctx.error(Rule::AlmExamples, format!("the schema of {entry_name} does not compile: {e}")),
            }
            let mut unknown = Vec::new();
            unknown_fields(schema, example, "", &mut unknown);
            for field in unknown {
                ctx.error(
                    Rule::AlmExamples,
                    format!("alm-examples[{i}] ({kind}): field {field} is not in the CRD schema"),
                );
            }
        }
        // Descriptors (the scorecard's olm-spec-descriptors / olm-status-descriptors tests).
        for (section, descriptors) in [("spec", "specDescriptors"), ("status", "statusDescriptors")] {
            let paths: BTreeSet<&str> =
                entry[descriptors].as_array().into_iter().flatten().filter_map(|d| d["path"].as_str()).collect();
            for key in example[section].as_object().into_iter().flatten().map(|(k, _)| k) {
                if !paths.contains(key.as_str()) {
                    ctx.error(
                        Rule::Descriptors,
                        format!("{entry_name}: {section}.{key} (set by alm-examples[{i}]) has no {descriptors} entry"),
                    );
                }
            }
        }
    }
    for entry in &owned {
        let name = entry["name"].as_str().unwrap_or("");
        if !with_example.contains(name) {
            ctx.error(Rule::AlmExamples, format!("owned CRD {name} has no example in alm-examples"));
        }
        let group = name.split_once('.').map(|(_, g)| g).unwrap_or("");
        let Some(schema) =
            crd_schema(bundle, group, entry["kind"].as_str().unwrap_or(""), entry["version"].as_str().unwrap_or(""))
        else {
            continue;
        };
        for (section, descriptors) in [("spec", "specDescriptors"), ("status", "statusDescriptors")] {
            for d in entry[descriptors].as_array().into_iter().flatten() {
                let path = d["path"].as_str().unwrap_or("");
                if path.is_empty() || !schema_has_path(&schema["properties"][section], path) {
                    ctx.error(
                        Rule::Descriptors,
                        format!("{name}: {descriptors} path {path:?} is not a field of {section}"),
                    );
                }
            }
        }
    }
}

fn containers(csv: &Value) -> Vec<&Value> {
    csv["spec"]["install"]["spec"]["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| {
            let spec = &d["spec"]["template"]["spec"];
            spec["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(spec["initContainers"].as_array().into_iter().flatten())
        })
        .collect()
}

fn images(csv: &Value, options: &Options, ctx: &mut Ctx) {
    let related: Vec<(&str, &str)> = csv["spec"]["relatedImages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["name"].as_str().unwrap_or(""), r["image"].as_str().unwrap_or("")))
        .collect();
    if related.is_empty() {
        ctx.error(Rule::Images, "spec.relatedImages is empty");
    }
    let mut names = BTreeSet::new();
    for (name, _) in &related {
        if name.is_empty() || !names.insert(*name) {
            ctx.error(Rule::Images, format!("relatedImages name {name:?} is empty or repeated"));
        }
    }
    let related_set: BTreeSet<&str> = related.iter().map(|(_, i)| *i).collect();
    let mut all: Vec<(String, &str)> = related.iter().map(|(n, i)| (format!("relatedImages {n}"), *i)).collect();
    for c in containers(csv) {
        let cname = c["name"].as_str().unwrap_or("");
        let image = c["image"].as_str().unwrap_or("");
        all.push((format!("container {cname}"), image));
        if !related_set.contains(image) {
            ctx.error(Rule::Images, format!("container {cname}'s image {image:?} is not in relatedImages"));
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let var = e["name"].as_str().unwrap_or("");
            if let Some(value) = e["value"].as_str().filter(|_| var.starts_with("RELATED_IMAGE_")) {
                all.push((format!("env {var}"), value));
                if !related_set.contains(value) {
                    ctx.error(
                        Rule::Images,
                        format!("{var}={value:?} is not in relatedImages (disconnected mirroring would miss it)"),
                    );
                }
            }
        }
    }
    let a = &csv["metadata"]["annotations"];
    for key in ["containerImage", "operators.openshift.io/must-gather-image"] {
        if let Some(image) = a[key].as_str() {
            all.push((format!("annotation {key}"), image));
            if !related_set.contains(image) {
                ctx.error(Rule::Images, format!("annotation {key} {image:?} is not in relatedImages"));
            }
        }
    }
    if let Some(image) = a["containerImage"].as_str()
        && !containers(csv).iter().any(|c| c["image"] == image)
    {
        ctx.error(Rule::Images, format!("containerImage {image:?} is not the image of the operator's container"));
    }
    let disconnected = a["features.operators.openshift.io/disconnected"] == "true";
    let mut reported = BTreeSet::new();
    for (where_, image) in all {
        if !reported.insert(image.to_string()) {
            continue;
        }
        match parse_image(image) {
            None => ctx.error(Rule::Images, format!("{where_}: {image:?} is not an image reference")),
            Some(r) => {
                if r.digest.is_none() {
                    match r.tag.as_deref() {
                        None => ctx.error(
                            Rule::Images,
                            format!("{where_}: {image:?} has neither tag nor digest"),
                        ),
                        Some("latest") => ctx.error(
                            Rule::Images,
                            format!("{where_}: {image:?} uses the moving tag latest"),
                        ),
                        Some(_) if options.release => ctx.error(
                            Rule::Images,
                            format!("{where_}: {image:?} is not pinned by digest (--release)"),
                        ),
                        Some(_) if disconnected => ctx.error(
                            Rule::Images,
                            format!("{where_}: {image:?} is not pinned by digest, yet features.operators.openshift.io/disconnected is \"true\""),
                        ),
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

fn service_accounts(bundle: &Bundle, csv: &Value, ctx: &mut Ctx) {
    let used: BTreeSet<&str> = csv["spec"]["install"]["spec"]["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["spec"]["template"]["spec"]["serviceAccountName"].as_str())
        .collect();
    for (file, v) in &bundle.manifests {
        if v["kind"] == "ServiceAccount"
            && let Some(name) = v["metadata"]["name"].as_str()
            && used.contains(name)
        {
            ctx.error(
                Rule::ServiceAccounts,
                format!("manifests/{file}: ServiceAccount {name} is the operator's; OLM creates it from the CSV"),
            );
        }
    }
    let perm_sas: BTreeSet<&str> = ["permissions", "clusterPermissions"]
        .iter()
        .flat_map(|k| csv["spec"]["install"]["spec"][k].as_array().into_iter().flatten())
        .filter_map(|p| p["serviceAccountName"].as_str())
        .collect();
    // KEDA's components run as these; the operator deploys them.
    let components: BTreeSet<&str> = cma_api::Component::ALL.map(cma_api::Component::service_account).into();
    for sa in perm_sas.difference(&used).filter(|sa| !components.contains(*sa)) {
        ctx.error(
            Rule::ServiceAccounts,
            format!("permissions are granted to ServiceAccount {sa}, which neither a deployment nor a KEDA component runs as"),
        );
    }
}

fn resource_requests(csv: &Value, ctx: &mut Ctx) {
    for c in containers(csv) {
        for r in ["cpu", "memory"] {
            if c["resources"]["requests"][r].is_null() {
                ctx.error(
                    Rule::ResourceRequests,
                    format!("container {} has no {r} request", c["name"].as_str().unwrap_or("")),
                );
            }
        }
    }
}

/// The operator's own permissions follow the strict policy; those of KEDA's components (which KEDA needs as
/// upstream defines them) may never grant or write RBAC.
fn permissions(csv: &Value, ctx: &mut Ctx) {
    let operator_accounts: BTreeSet<&str> = csv["spec"]["install"]["spec"]["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["spec"]["template"]["spec"]["serviceAccountName"].as_str())
        .collect();
    let rules = |key: &str, operator: bool| -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
        csv["spec"]["install"]["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["serviceAccountName"].as_str().is_some_and(|sa| operator_accounts.contains(sa)) == operator)
            .flat_map(|p| {
                serde_json::from_value::<Vec<k8s_openapi::api::rbac::v1::PolicyRule>>(p["rules"].clone())
                    .unwrap_or_default()
            })
            .collect()
    };
    let operator = Permissions { namespaced: rules("permissions", true), cluster: rules("clusterPermissions", true) };
    for v in operator.policy_violations() {
        ctx.error(Rule::Permissions, v);
    }
    let components =
        Permissions { namespaced: rules("permissions", false), cluster: rules("clusterPermissions", false) };
    for v in components.grant_violations() {
        ctx.error(Rule::Permissions, format!("a KEDA component's permissions: {v}"));
    }
}
