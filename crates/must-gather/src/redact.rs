//! Redaction, always on: what support must never receive is removed before anything is written.
//!
//! Two passes run over every collected object:
//!
//! 1. [`Redactor::redact_object`] applies the structural rules (Secret values, credential annotations,
//!    `last-applied-configuration`, credential fields of KEDA's resources, credential env values) and
//!    remembers every value it removed (the *known values*).
//! 2. [`Scrubber::scrub_value`] (built by [`Redactor::scrubber`]) looks at every remaining string, and
//!    [`LogScrubber`] at every log line: known values, private keys (PEM or base64-encoded PEM), JWTs,
//!    bearer tokens, URL passwords, webhook URLs, well-known token formats, `password=...`-style pairs and
//!    `--password VALUE` flags are replaced.
//!
//! Known values are matched by length: 8 bytes or more wherever they appear; 4 to 7 bytes only as a whole
//! token (no letter, digit or `_` right before or after) and only when they mix character classes (letters
//! and digits, or cases, or symbols), because short single-class values (`keda`, `admin`, `8080`, `true`)
//! are ordinary words whose every occurrence would be blanked; shorter values are never matched in free
//! text. Such values are still removed where they are structurally known (Secret data, credential fields,
//! env values, flag values) and wherever a credential key names them (`password: abc`).
//!
//! Every replacement is recorded as a [`Redaction`] (file, object, field, rule), never with the value, and
//! listed in `redactions.txt`.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use regex::bytes::{Captures, Regex, RegexSet};
use serde_json::Value;

/// What replaces a redacted value.
pub const MARKER: &str = "REDACTED";

/// Annotation kubectl writes on `kubectl apply`: a full copy of the applied object, Secret values included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Shortest known value scrubbed wherever it appears in free text, even inside a longer word.
pub const MIN_KNOWN_LEN: usize = 8;

/// Shortest known value scrubbed in free text at all: from here to [`MIN_KNOWN_LEN`] only as a whole token
/// and only when it mixes character classes (see [`is_distinctive`]); shorter values would match ordinary
/// words.
pub const MIN_SHORT_KNOWN_LEN: usize = 4;

/// Why a value was redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A value of a Secret's `data` or `stringData`.
    SecretData,
    /// A credential-looking annotation of a Secret (for example `openshift.io/token-secret.value`).
    SecretAnnotation,
    /// `kubectl.kubernetes.io/last-applied-configuration` that could not be redacted field by field.
    LastApplied,
    /// A credential field of a KEDA resource (inline token, password, key).
    CredentialField,
    /// An environment variable whose name or value looks like a credential.
    CredentialEnv,
    /// The value after a credential flag given as two arguments (`--password`, `VALUE`).
    CredentialArg,
    /// A value already redacted elsewhere (a Secret value, an inline token) found again.
    KnownValue,
    /// A PEM private key.
    PrivateKey,
    /// A JSON Web Token (service account tokens, OIDC tokens).
    Jwt,
    /// The token after `Bearer` or in an `Authorization` header.
    BearerToken,
    /// The password in `scheme://user:password@host`.
    UrlPassword,
    /// The value in `password=...`, `"token": "..."` and the like (escaped JSON too).
    InlineCredential,
    /// The value after `--password`, `-token` and the like in a command line.
    CredentialFlag,
    /// The secret path of a chat webhook URL (Slack, Microsoft Teams, Discord, Google Chat).
    WebhookUrl,
    /// A token in a provider's well-known format (GitHub, GitLab, Slack, Google API keys).
    TokenFormat,
}

impl Rule {
    /// Short stable name used in `redactions.txt`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::SecretData => "secret-data",
            Rule::SecretAnnotation => "secret-annotation",
            Rule::LastApplied => "last-applied-configuration",
            Rule::CredentialField => "credential-field",
            Rule::CredentialEnv => "credential-env",
            Rule::CredentialArg => "credential-arg",
            Rule::KnownValue => "known-secret-value",
            Rule::PrivateKey => "private-key",
            Rule::Jwt => "jwt",
            Rule::BearerToken => "bearer-token",
            Rule::UrlPassword => "url-password",
            Rule::InlineCredential => "inline-credential",
            Rule::CredentialFlag => "credential-flag",
            Rule::WebhookUrl => "webhook-url",
            Rule::TokenFormat => "token-format",
        }
    }
}

/// One redaction: where, never what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Redaction {
    /// File in the output tree, relative to its root.
    pub file: String,
    /// `Kind namespace/name` (or `Kind name`), `-` for logs.
    pub object: String,
    /// Field path (`data.password`, `spec.containers[app].env[API_TOKEN].value`) or, for logs, `line N`.
    pub field: String,
    /// Why.
    pub rule: Rule,
}

/// Applies the structural rules and remembers the values it removed.
pub struct Redactor {
    detectors: Detectors,
    known: BTreeSet<Vec<u8>>,
    redactions: Vec<Redaction>,
}

/// Shows how many values are known, never which.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("known_values", &self.known.len())
            .field("redactions", &self.redactions.len())
            .finish_non_exhaustive()
    }
}

/// Per-object context of the structural pass.
struct Ctx<'a> {
    detectors: &'a Detectors,
    file: &'a str,
    object: String,
    out: &'a mut Vec<Redaction>,
    known: &'a mut BTreeSet<Vec<u8>>,
}

impl Ctx<'_> {
    fn record(&mut self, field: String, rule: Rule) {
        self.out.push(Redaction { file: self.file.to_string(), object: self.object.clone(), field, rule });
    }

    fn remember(&mut self, value: &[u8]) {
        remember(self.known, value);
    }
}

/// Adds a removed value (and its lines and inner credential strings) to the known values.
fn remember(known: &mut BTreeSet<Vec<u8>>, value: &[u8]) {
    let trimmed = value.trim_ascii();
    if trimmed.len() >= MIN_SHORT_KNOWN_LEN {
        known.insert(trimmed.to_vec());
    }
    // Multi-line values (keys, files): each line on its own, so a value printed across log lines is found.
    if trimmed.contains(&b'\n') {
        for line in trimmed.split(|b| *b == b'\n') {
            let line = line.trim_ascii();
            if line.len() >= 2 * MIN_KNOWN_LEN && !line.starts_with(b"-----") {
                known.insert(line.to_vec());
            }
        }
    }
    // JSON documents (docker config, cloud credentials): their credential strings on their own.
    if trimmed.first() == Some(&b'{')
        && let Ok(doc) = serde_json::from_slice::<Value>(trimmed)
    {
        let mut inner = Vec::new();
        json_credentials(&doc, "", &mut inner);
        for s in inner {
            if s.len() >= MIN_SHORT_KNOWN_LEN {
                known.insert(s.into_bytes());
            }
        }
    }
}

fn json_credentials(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if is_credential_key(key) || key == "auth" => out.push(s.clone()),
        Value::Object(map) => map.iter().for_each(|(k, v)| json_credentials(v, k, out)),
        Value::Array(items) => items.iter().for_each(|v| json_credentials(v, key, out)),
        _ => {}
    }
}

impl Redactor {
    /// A redactor that knows no value yet.
    pub fn new() -> Result<Self, regex::Error> {
        Ok(Self { detectors: Detectors::new()?, known: BTreeSet::new(), redactions: Vec::new() })
    }

    /// Adds a value that must never appear in the output (for example the client's own bearer token).
    pub fn add_known(&mut self, value: &str) {
        remember(&mut self.known, value.as_bytes());
    }

    /// Number of known values.
    pub fn known_len(&self) -> usize {
        self.known.len()
    }

    /// Applies the structural rules to one object about to be written to `file`; drops `managedFields`.
    pub fn redact_object(&mut self, file: &str, obj: &mut Value) {
        let mut ctx = Ctx {
            detectors: &self.detectors,
            file,
            object: object_id(obj),
            out: &mut self.redactions,
            known: &mut self.known,
        };
        redact_object(&mut ctx, obj, "");
    }

    /// Records redactions made elsewhere (the scrubbing pass, logs).
    pub fn record(&mut self, redactions: impl IntoIterator<Item = Redaction>) {
        self.redactions.extend(redactions);
    }

    /// Everything redacted so far, sorted, duplicates removed.
    pub fn redactions(&self) -> Vec<Redaction> {
        let set: BTreeSet<&Redaction> = self.redactions.iter().collect();
        set.into_iter().cloned().collect()
    }

    /// The scrubber for free text, knowing every value removed so far.
    pub fn scrubber(&self) -> Scrubber {
        Scrubber::new(self.detectors.clone(), self.known.iter().cloned().collect())
    }
}

/// `Kind namespace/name` or `Kind name`.
pub fn object_id(obj: &Value) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("Object");
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("-");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{kind} {ns}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

/// `[name]` for list items that have a name, `[index]` otherwise.
fn item_path(prefix: &str, item: &Value, index: usize) -> String {
    match item.get("name").and_then(Value::as_str) {
        Some(name) => format!("{prefix}[{name}]"),
        None => format!("{prefix}[{index}]"),
    }
}

fn is_keda_kind(obj: &Value) -> bool {
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
    api_version.starts_with("keda.sh/") || api_version.starts_with("eventing.keda.sh/")
}

fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn is_configmap(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("ConfigMap")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
}

fn redact_object(ctx: &mut Ctx<'_>, obj: &mut Value, prefix: &str) {
    let secret = is_secret(obj);
    let keda = is_keda_kind(obj);
    let configmap = is_configmap(obj);
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            let path = join(prefix, "metadata.annotations");
            for (key, value) in annotations.iter_mut() {
                if key == LAST_APPLIED {
                    last_applied(ctx, value, secret, &format!("{path}[{key}]"));
                } else if secret && is_credential_annotation(key) {
                    if let Some(s) = value.as_str() {
                        ctx.remember(s.as_bytes());
                    }
                    *value = Value::String(MARKER.to_string());
                    ctx.record(format!("{path}[{key}]"), Rule::SecretAnnotation);
                } else if !secret {
                    credential_annotation(ctx, key, value, &path);
                }
            }
        }
    }
    if secret {
        secret_values(ctx, obj, prefix);
    }
    if configmap {
        configmap_values(ctx, obj, prefix);
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    for (key, value) in map.iter_mut() {
        if key == "metadata" {
            continue;
        }
        let path = join(prefix, key);
        nested_values(ctx, value, &path);
        if keda && key != "status" {
            credential_fields(ctx, value, key, &path);
        }
    }
}

fn last_applied(ctx: &mut Ctx<'_>, value: &mut Value, secret: bool, path: &str) {
    let parsed = value.as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()).filter(Value::is_object);
    match parsed {
        Some(mut doc) if !secret => {
            redact_object(ctx, &mut doc, path);
            *value = Value::String(doc.to_string());
        }
        other => {
            if let Some(s) = value.as_str() {
                ctx.remember(s.as_bytes());
            }
            if let Some(doc) = other {
                // A Secret's applied copy: remember its values, then drop it whole.
                for field in ["data", "stringData"] {
                    if let Some(values) = doc.get(field).and_then(Value::as_object) {
                        for v in values.values().filter_map(Value::as_str) {
                            ctx.remember(v.as_bytes());
                            if field == "data"
                                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(v.trim())
                            {
                                ctx.remember(&decoded);
                            }
                        }
                    }
                }
            }
            *value = Value::String(MARKER.to_string());
            ctx.record(path.to_string(), Rule::LastApplied);
        }
    }
}

/// Secret annotation keys whose values may hold a credential (`openshift.io/token-secret.value`, ...).
fn is_credential_annotation(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let safe = [".name", "/name", "-name", ".uid", "-uid", "expiry", "-namespace", "/namespace"];
    if safe.iter().any(|s| k.ends_with(s)) {
        return false;
    }
    ["token", "password", "secret", "credential", "key", "value", "data", "auth"].iter().any(|w| k.contains(w))
}

/// Keys of well-known Secret types whose values are redacted like the rest but are no secret, so they are
/// not searched for elsewhere: a service account token Secret's `namespace` is the namespace's name, which
/// would otherwise be blanked in every file.
fn is_public_secret_key(secret_type: &str, key: &str) -> bool {
    secret_type == "kubernetes.io/service-account-token" && key == "namespace"
}

fn secret_values(ctx: &mut Ctx<'_>, obj: &mut Value, prefix: &str) {
    let secret_type = obj.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    for field in ["data", "stringData"] {
        let Some(values) = obj.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (key, value) in values.iter_mut() {
            let raw = value.as_str().unwrap_or_default().to_string();
            let decoded = if field == "data" {
                base64::engine::general_purpose::STANDARD
                    .decode(raw.trim())
                    .unwrap_or_else(|_| raw.clone().into_bytes())
            } else {
                raw.clone().into_bytes()
            };
            let certs = crate::certs::summary(&decoded);
            if certs.is_none() && !is_public_secret_key(&secret_type, key) {
                ctx.remember(&decoded);
                ctx.remember(raw.as_bytes());
            }
            let marker = match certs {
                Some(summary) => format!("{MARKER} ({} bytes; {summary})", decoded.len()),
                None => format!("{MARKER} ({} bytes)", decoded.len()),
            };
            *value = Value::String(marker);
            ctx.record(format!("{}[{key}]", join(prefix, field)), Rule::SecretData);
        }
    }
}

/// Environment variable names that hold credentials.
pub fn is_credential_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper.split(['_', '-', '.']).collect();
    let word = |w: &str| words.contains(&w);
    let joined: String = upper.chars().filter(char::is_ascii_alphanumeric).collect();
    // A password is one wherever it is; a chat webhook's URL is itself the credential (`SLACK_WEBHOOK_URL`,
    // `TEAMS_WEBHOOK`), unlike settings of webhooks (`WEBHOOK_PORT`, `RELATED_IMAGE_KEDA_ADMISSION_WEBHOOKS`).
    let webhook_url =
        word("WEBHOOK") && (words.last() == Some(&"WEBHOOK") || upper.ends_with("_URL") || upper.ends_with("_URI"));
    let always = joined.contains("PASSWORD") || webhook_url;
    if ["_FILE", "_PATH", "_DIR", "_NAME", "_URL", "_ENDPOINT"].iter().any(|s| upper.ends_with(s)) && !always {
        return false;
    }
    always
        || [
            "PASSWD",
            "SECRET",
            "TOKEN",
            "APIKEY",
            "ACCESSKEY",
            "PRIVATEKEY",
            "CREDENTIAL",
            "CONNECTIONSTRING",
            "PASSPHRASE",
            "SASTOKEN",
        ]
        .iter()
        .any(|w| joined.contains(w))
        // `GITHUB_PAT` (personal access token), `SENTRY_DSN` (a URL carrying its key).
        || ["KEY", "PWD", "PASS", "AUTH", "COOKIE", "SIGNATURE", "PAT", "DSN", "HMAC"].iter().any(|w| word(w))
}

/// Object keys (camelCase, snake_case, kebab-case) whose string values are credentials: the names KEDA
/// 2.20's scalers and authentication providers read secrets from (`password`, `keyPassword`, `apiKey`,
/// `appKey`, `queryKey`, `accessKey`, `SecretKey`, `clientSecret`, `appCredentialSecret`, `customAuthValue`,
/// `token`, `authToken`, `apiToken`, `accessToken`, `bearerToken`, `personalAccessToken`, `connection`,
/// `connectionString`, `storageConnection`, `credentials`, `keytab`, `clientKey`, `tlsClientKey`,
/// `awsSecretAccessKey`, `awsSessionToken`, `oauthExtensions`), the usual spellings elsewhere (`tlsKey`,
/// `client-key-data`, `client_assertion`), and not their references (`passwordFromEnv`, `tokenUrl`, `key`).
pub fn is_credential_key(key: &str) -> bool {
    let k: String = key.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    if ["pwd", "pass", "pat"].contains(&k.as_str()) {
        return true;
    }
    // `key` alone names a key (secretTargetRef, the kubernetes-resource scaler's field), as do `metricKey`,
    // `watchKey`, `routingKey`; these name key material or a secret value.
    let credential_suffixes = [
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "signingkey",
        "sharedaccesskey",
        "accountkey",
        "storagekey",
        "subscriptionkey",
        "masterkey",
        "encryptionkey",
        "licensekey",
        "hmackey",
        "authkey",
        "sessionkey",
        "appkey",
        "applicationkey",
        "querykey",
        "tlskey",
        "sslkey",
        // kubeconfig: `client-key-data` is a base64 PEM private key; KEDA's `clientKey`, `tlsClientKey`.
        "clientkey",
        "clientkeydata",
        "customauthvalue",
        "connection",
        "keytab",
        "oauthextensions",
        "webhookurl",
        "webhook",
    ];
    if credential_suffixes.iter().any(|w| k.ends_with(w)) {
        return true;
    }
    let safe_suffixes = [
        "fromenv",
        "fromenvfile",
        "fromfile",
        "name",
        "names",
        "ref",
        "path",
        "file",
        "type",
        "url",
        "uri",
        "endpoint",
        "provider",
        "parameter",
        "id",
        "mode",
        "modes",
        "seconds",
        "expiry",
        "format",
        "count",
        "enabled",
        "audience",
        "scope",
        "scopes",
        "version",
        "key",
    ];
    if safe_suffixes.iter().any(|s| k.ends_with(s)) {
        return false;
    }
    [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "connectionstring",
        "passphrase",
        "assertion",
        "cookie",
        "bearer",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Below `value`: env entries whose name or value looks like a credential, the value after a credential
/// flag in `args`/`command` lists, and credential annotations of embedded objects (pod templates).
fn nested_values(ctx: &mut Ctx<'_>, value: &mut Value, path: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let child_path = join(path, key);
                match (key.as_str(), child) {
                    ("env", Value::Array(items)) => {
                        for (i, item) in items.iter_mut().enumerate() {
                            let item_path = item_path(&child_path, item, i);
                            env_entry(ctx, item, &item_path);
                        }
                    }
                    ("args" | "command", Value::Array(items)) => credential_args(ctx, items, &child_path),
                    ("metadata", Value::Object(meta)) => {
                        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                            let annotations_path = join(&child_path, "annotations");
                            for (k, v) in annotations.iter_mut() {
                                credential_annotation(ctx, k, v, &annotations_path);
                            }
                        }
                    }
                    (_, child) => nested_values(ctx, child, &child_path),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let item_path = item_path(path, item, i);
                nested_values(ctx, item, &item_path);
            }
        }
        _ => {}
    }
}

/// Values that name no secret whatever their key says (`token-auth-aws: "false"`, `token-ttl: "3600"`).
fn is_trivial(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v == MARKER
        || v.bytes().all(|b| b.is_ascii_digit())
        || ["true", "false", "null", "none", "yes", "no", "enabled", "disabled"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w))
}

/// An annotation of a non-Secret object whose name (after its prefix) names a credential
/// (`example.com/password`, `api-token`); flags and numbers under such names are kept.
fn credential_annotation(ctx: &mut Ctx<'_>, key: &str, value: &mut Value, path: &str) {
    if key == LAST_APPLIED {
        return;
    }
    let name = key.rsplit('/').next().unwrap_or(key);
    if let Value::String(s) = value
        && is_credential_key(name)
        && !is_trivial(s)
    {
        let s = std::mem::replace(s, MARKER.to_string());
        ctx.remember(s.as_bytes());
        ctx.record(format!("{path}[{key}]"), Rule::CredentialField);
    }
}

/// ConfigMap values under credential-named keys (`password`, `api-token`, `tls.key`); the rest of a
/// ConfigMap is left to the free-text scrubber (`password: ...` inside a file is found there).
fn configmap_values(ctx: &mut Ctx<'_>, obj: &mut Value, prefix: &str) {
    for field in ["data", "binaryData"] {
        let Some(values) = obj.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (key, value) in values.iter_mut() {
            let Value::String(s) = value else {
                continue;
            };
            if !is_credential_key(key) || s.is_empty() || s == MARKER {
                continue;
            }
            let s = std::mem::replace(s, MARKER.to_string());
            ctx.remember(s.as_bytes());
            if field == "binaryData"
                && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(s.trim())
            {
                ctx.remember(&decoded);
            }
            ctx.record(format!("{}[{key}]", join(prefix, field)), Rule::CredentialField);
        }
    }
}

/// A command-line flag that takes a credential as its next argument (`--password`, `-token`,
/// `--client-secret`); `--password-file` and `--token=...` (one argument, left to the scrubber) do not.
pub fn is_credential_flag(arg: &str) -> bool {
    let Some(name) = arg.strip_prefix('-') else {
        return false;
    };
    let name = name.strip_prefix('-').unwrap_or(name);
    !name.is_empty() && !name.contains('=') && !name.starts_with('-') && is_credential_key(name)
}

/// In an `args` or `command` list, the argument after a credential flag.
fn credential_args(ctx: &mut Ctx<'_>, items: &mut [Value], path: &str) {
    let mut value_follows = false;
    for (i, item) in items.iter_mut().enumerate() {
        let Value::String(arg) = item else {
            value_follows = false;
            continue;
        };
        if value_follows && !arg.starts_with('-') && !arg.is_empty() && arg != MARKER {
            let arg = std::mem::replace(arg, MARKER.to_string());
            ctx.remember(arg.as_bytes());
            ctx.record(format!("{path}[{i}]"), Rule::CredentialArg);
            value_follows = false;
            continue;
        }
        value_follows = is_credential_flag(arg);
    }
}

fn env_entry(ctx: &mut Ctx<'_>, item: &mut Value, path: &str) {
    let Some(map) = item.as_object_mut() else {
        return;
    };
    let name = map.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let Some(Value::String(v)) = map.get("value") else {
        return;
    };
    if v.is_empty() || v == MARKER {
        return;
    }
    if is_credential_env(&name) || ctx.detectors.looks_like_credential(v.as_bytes()) {
        let v = v.clone();
        ctx.remember(v.as_bytes());
        map.insert("value".into(), Value::String(MARKER.to_string()));
        ctx.record(format!("{path}.value"), Rule::CredentialEnv);
    }
}

/// Replaces string leaves whose key names a credential (KEDA resources: trigger metadata, inline tokens).
fn credential_fields(ctx: &mut Ctx<'_>, value: &mut Value, key: &str, path: &str) {
    match value {
        Value::String(s) if is_credential_key(key) && !s.is_empty() && s != MARKER => {
            ctx.remember(s.as_bytes());
            *s = MARKER.to_string();
            ctx.record(path.to_string(), Rule::CredentialField);
        }
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                credential_fields(ctx, child, k, &join(path, k));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let item_path = item_path(path, item, i);
                // A list of strings under a credential key (e.g. `tokens: [...]`) keeps the key's meaning.
                credential_fields(ctx, item, key, &item_path);
            }
        }
        _ => {}
    }
}

/// Key names the inline and flag detectors look for (each match is then checked with
/// [`is_credential_key`], so `passwordFromEnv=X` or `--token-file F` are kept).
const CREDENTIAL_WORDS: &str = r"(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|secret[_-]?key|client[_-]?key(?:[_-]?data)?|app[_-]?key|query[_-]?key|tls[_-]?key|ssl[_-]?key|account[_-]?key|customauthvalue|keytab|credentials?|assertion|passphrase|webhook)";

/// The free-text detectors (no known values).
#[derive(Clone)]
pub struct Detectors {
    private_key_block: Regex,
    private_key_begin: Regex,
    private_key_end: Regex,
    base64_pem_begin: Regex,
    jwt: Regex,
    bearer: Regex,
    authorization: Regex,
    url_password: Regex,
    webhook_url: Regex,
    token_format: Regex,
    inline_double_quoted: Regex,
    inline_single_quoted: Regex,
    inline: Regex,
    flag: Regex,
    log_timestamp: Regex,
    /// Matches every text any detector above could change (one pass): most log lines match none, and then
    /// the detectors are not run one by one.
    gate: RegexSet,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detectors").finish_non_exhaustive()
    }
}

impl Detectors {
    /// Compiles the detectors (the patterns are constants; an error is a bug caught by the unit tests).
    pub fn new() -> Result<Self, regex::Error> {
        let re = Regex::new;
        let key = format!(r"([a-z0-9_.-]*{CREDENTIAL_WORDS}[a-z0-9_.-]*)");
        let url_password = r#"(\b[a-zA-Z][a-zA-Z0-9+.-]*:(?:\\?/){2}[^:/@\s"'<>\\]*:)([^/\s"'<>]+)(@)"#;
        let webhook_url = r#"(?i)(\bhttps?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/|(?:[a-z0-9-]+\.)?discord(?:app)?\.com/api/webhooks/|[a-z0-9-]+\.webhook\.office\.com/webhookb2/|outlook\.office(?:365)?\.com/webhook/|chat\.googleapis\.com/v1/spaces/))([^\s"'<>\\]+)"#;
        let token_format = r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})";
        let base64_pem_begin = r"LS0tLS1CRUdJT|0tLS0tQkVHSU|tLS0tLUJFR0lO";
        let gate = RegexSet::new([
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY",
            base64_pem_begin,
            r"eyJ[A-Za-z0-9_-]{8,}\.eyJ",
            r"(?i)bearer|authorization",
            url_password,
            webhook_url,
            token_format,
            &format!("(?i){CREDENTIAL_WORDS}"),
        ])?;
        Ok(Self {
            gate,
            // A whole block; a header without its END is handled by `redact_unterminated_keys`.
            private_key_block: re(
                r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----",
            )?,
            private_key_begin: re(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")?,
            private_key_end: re(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")?,
            // `-----BEGIN` base64-encoded at each of the three byte alignments (a PEM file in Secret data,
            // `client-key-data`, or one embedded in a larger encoded document); the run is decoded to tell
            // keys from certificates.
            base64_pem_begin: re(base64_pem_begin)?,
            jwt: re(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")?,
            bearer: re(r"(?i)(\bbearer[ \t]+)([A-Za-z0-9._~+/:-]{8,}=*)")?,
            authorization: re(
                r#"(?i)(\b(?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?(?:(?:basic|bearer|token|negotiate|digest)[ \t]+)?)([^\s"',;]{4,})"#,
            )?,
            // The password may hold `@` (the last `@` before the host ends it) but not `/`, so a port and a
            // path (`https://host:8443/users/bob@example.com`) are never taken for one. `:\/\/` is the
            // JSON-escaped `://`.
            url_password: re(url_password)?,
            // Chat webhooks whose URL path is the credential.
            webhook_url: re(webhook_url)?,
            token_format: re(token_format)?,
            // `"password": "..."`, `{\"password\":\"...\"}` (JSON inside a JSON string), `password='...'`:
            // the whole quoted value, whatever it holds.
            inline_double_quoted: re(&format!(
                r#"(?i){key}(\\*["']?[ \t]*[:=][ \t]*\\*")((?:[^"\\\n]|\\[^"\n])*)(\\*")"#
            ))?,
            inline_single_quoted: re(&format!(
                r#"(?i){key}(\\*["']?[ \t]*[:=][ \t]*\\*')((?:[^'\\\n]|\\[^'\n])*)(\\*')"#
            ))?,
            inline: re(&format!(r#"(?i){key}(\\*["']?[ \t]*[:=][ \t]*)([^\s"',;&}}\])\\]+)"#))?,
            // `--password VALUE`, `-token VALUE` (a command line in a log or a shell string).
            flag: re(&format!(
                r#"(?i)(^|[\s"'=\[(,])(--?(?:[a-z0-9][a-z0-9_.-]*)?{CREDENTIAL_WORDS}[a-z0-9_.-]*)([ \t]+)([^\s"'-][^\s"',\])]*)"#
            ))?,
            log_timestamp: re(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}) ")?,
        })
    }

    /// Whether a whole value looks like a credential by its shape (key block, JWT, bearer header, URL
    /// password, webhook URL, provider token).
    pub fn looks_like_credential(&self, value: &[u8]) -> bool {
        self.private_key_begin.is_match(value)
            || self.jwt.is_match(value)
            || self.bearer.captures(value).is_some_and(|c| has_digit(&c[2]))
            || self.url_password.is_match(value)
            || self.webhook_url.is_match(value)
            || self.token_format.is_match(value)
            || base64_private_key_runs(self, value).next().is_some()
    }

    /// The log line without its `timestamps=true` prefix, and the prefix.
    fn split_timestamp<'a>(&self, line: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        match self.log_timestamp.find(line) {
            Some(m) => line.split_at(m.end()),
            None => (&line[..0], line),
        }
    }
}

fn has_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
}

fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// A line of a PEM body: base64 only, or an encryption header of a legacy PEM key.
fn is_pem_body(line: &[u8]) -> bool {
    (!line.is_empty() && line.iter().all(|b| is_base64_byte(*b)))
        || line.starts_with(b"Proc-Type:")
        || line.starts_with(b"DEK-Info:")
}

/// Length of the line break at `i` (after trailing blanks): a real one or a JSON-escaped `\n`.
fn line_break_at(text: &[u8], mut i: usize) -> Option<usize> {
    while i < text.len() && matches!(text[i], b' ' | b'\t' | b'\r') {
        i += 1;
    }
    let rest = &text[i..];
    let len = if rest.starts_with(b"\n") {
        1
    } else if rest.starts_with(b"\\r\\n") {
        4
    } else if rest.starts_with(b"\\n") {
        2
    } else {
        return None;
    };
    Some(i + len)
}

/// Where the line starting at `start` ends (a real or escaped line break, or the end).
fn line_end(text: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < text.len() {
        if text[i] == b'\n' || (text[i] == b'\\' && matches!(text.get(i + 1), Some(b'n' | b'r'))) {
            break;
        }
        i += 1;
    }
    i
}

/// Where the key material after a private key's BEGIN header (ending at `start`) ends: base64 tokens of
/// 16 characters or more on the header's own line, then whole lines of base64 or PEM headers, up to and
/// including an END marker. Anything else ends it, so a header mentioned in passing (or a truncated key)
/// never takes the rest of the text with it.
fn key_body_end(d: &Detectors, text: &[u8], start: usize) -> usize {
    let mut end = start;
    loop {
        let token_start = end + text[end..].iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
        let token_len = text[token_start..].iter().take_while(|b| is_base64_byte(**b)).count();
        if token_len < 16 {
            break;
        }
        end = token_start + token_len;
    }
    let mut at = end;
    while let Some(line_start) = line_break_at(text, at) {
        let stop = line_end(text, line_start);
        let line = &text[line_start..stop];
        if let Some(m) = d.private_key_end.find(line) {
            if line[..m.start()].trim_ascii().is_empty() {
                end = line_start + m.end();
            }
            break;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            // A blank line (after an encryption header) does not end the key, nor extend what is replaced.
            at = stop;
            continue;
        }
        if !is_pem_body(trimmed) {
            break;
        }
        end = stop;
        at = stop;
    }
    end
}

/// Private keys whose END marker is missing (a truncated dump, a header mentioned in a message): the
/// header and the key material right after it are replaced, nothing more.
fn redact_unterminated_keys(d: &Detectors, out: &mut Vec<u8>, rules: &mut Vec<Rule>) {
    if !d.private_key_begin.is_match(out) {
        return;
    }
    let mut result = Vec::with_capacity(out.len());
    let mut pos = 0;
    while let Some(m) = d.private_key_begin.find_at(out, pos) {
        result.extend_from_slice(&out[pos..m.start()]);
        result.extend_from_slice(MARKER.as_bytes());
        pos = key_body_end(d, out, m.end());
    }
    result.extend_from_slice(&out[pos..]);
    *out = result;
    rules.push(Rule::PrivateKey);
}

/// The base64 runs (start, end) that decode to a PEM private key: the whole run around each encoded
/// `-----BEGIN` goes, decoded from the base64 quantum the match sits in (so whatever precedes it in the
/// run, even a word glued to it, does not shift the decoding).
fn base64_private_key_runs<'a>(d: &'a Detectors, text: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut last_end = 0;
    d.base64_pem_begin.find_iter(text).filter_map(move |m| {
        if m.start() < last_end {
            return None;
        }
        // Position of the match inside its 4-character quantum, per alignment of the pattern.
        let offset = match &text[m.start()..m.end()] {
            b"LS0tLS1CRUdJT" => 0,
            b"0tLS0tQkVHSU" => 2,
            _ => 3,
        };
        let before = text[..m.start()].iter().rev().take_while(|b| is_base64_byte(**b) && **b != b'=').count();
        let end = m.end() + text[m.end()..].iter().take_while(|b| is_base64_byte(**b)).count();
        if before < offset {
            return None;
        }
        last_end = end;
        decodes_to_private_key(&text[m.start() - offset..end]).then_some((m.start() - before, end))
    })
}

/// Whether base64 text (padded or not, possibly truncated) holds a private key.
fn decodes_to_private_key(run: &[u8]) -> bool {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    let unpadded: Vec<u8> = run.iter().copied().filter(|b| *b != b'=').collect();
    // A truncated run: drop the last character when it cannot end a base64 quantum.
    let usable = if unpadded.len() % 4 == 1 { &unpadded[..unpadded.len() - 1] } else { &unpadded[..] };
    GeneralPurpose::new(&base64::alphabet::STANDARD, config)
        .decode(usable)
        .is_ok_and(|decoded| decoded.windows(b"PRIVATE KEY-----".len()).any(|w| w == b"PRIVATE KEY-----"))
}

/// Whether a short value is distinctive enough to be scrubbed as a token: it mixes at least two of lower
/// case, upper case, digits and symbols (`hunter2`, `Tr0ub`, `p@ss`), unlike ordinary words and numbers
/// (`keda`, `admin`, `8080`).
pub fn is_distinctive(value: &[u8]) -> bool {
    let classes = [
        value.iter().any(u8::is_ascii_lowercase),
        value.iter().any(u8::is_ascii_uppercase),
        value.iter().any(u8::is_ascii_digit),
        value.iter().any(|b| !b.is_ascii_alphanumeric() && !b.is_ascii_whitespace()),
    ];
    classes.iter().filter(|c| **c).count() >= 2
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Values after a credential key or flag that are not secrets: flags, empty YAML block markers,
/// references to variables or templates.
fn is_secret_value(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    !(v.is_empty()
        || v.starts_with(MARKER.as_bytes())
        || v.starts_with(b"${")
        || v.starts_with(b"$(")
        || v.starts_with(b"{{")
        || [&b"|"[..], b">", b"|-", b">-", b"|+", b">+", b"~"].contains(&v)
        || ["true", "false", "null", "none", "yes", "no"].iter().any(|w| v.eq_ignore_ascii_case(w.as_bytes())))
}

/// Free-text scrubbing: known values plus the shape detectors.
#[derive(Clone)]
pub struct Scrubber {
    detectors: Detectors,
    known: Option<AhoCorasick>,
    short_known: Option<AhoCorasick>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("known_values", &self.known.as_ref().map(|a| a.patterns_len()))
            .field("short_known_values", &self.short_known.as_ref().map(|a| a.patterns_len()))
            .finish_non_exhaustive()
    }
}

impl Scrubber {
    /// A scrubber for these known values: those of [`MIN_KNOWN_LEN`] bytes or more match anywhere, shorter
    /// distinctive ones from [`MIN_SHORT_KNOWN_LEN`] bytes as whole tokens, the rest not at all.
    pub fn new(detectors: Detectors, known: Vec<Vec<u8>>) -> Self {
        let (long, short): (Vec<Vec<u8>>, Vec<Vec<u8>>) = known.into_iter().partition(|k| k.len() >= MIN_KNOWN_LEN);
        let short: Vec<Vec<u8>> =
            short.into_iter().filter(|k| k.len() >= MIN_SHORT_KNOWN_LEN && is_distinctive(k)).collect();
        let automaton = |values: Vec<Vec<u8>>| {
            (!values.is_empty())
                .then(|| AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&values).ok())
                .flatten()
        };
        Self { detectors, known: automaton(long), short_known: automaton(short) }
    }

    /// Scrubs one piece of text; returns the rules that fired (empty: unchanged).
    pub fn scrub_bytes(&self, text: &[u8]) -> (Vec<u8>, Vec<Rule>) {
        let mut rules = Vec::new();
        let mut out = text.to_vec();
        if let Some(ac) = &self.known
            && ac.is_match(&out)
        {
            let mut replaced = Vec::with_capacity(out.len());
            ac.replace_all_with_bytes(&out, &mut replaced, |_, _, dst| {
                dst.extend_from_slice(MARKER.as_bytes());
                true
            });
            out = replaced;
            rules.push(Rule::KnownValue);
        }
        if let Some(ac) = &self.short_known
            && ac.is_match(&out)
        {
            let mut replaced = Vec::with_capacity(out.len());
            let mut changed = false;
            ac.replace_all_with_bytes(&out, &mut replaced, |m, matched, dst| {
                // Whole tokens only: `hunter2` in `pass hunter2,` but not in `hunter2x`.
                let first_ok = m.start() == 0 || !is_word_byte(matched[0]) || !is_word_byte(out[m.start() - 1]);
                let last_ok =
                    m.end() == out.len() || !is_word_byte(matched[matched.len() - 1]) || !is_word_byte(out[m.end()]);
                if first_ok && last_ok {
                    dst.extend_from_slice(MARKER.as_bytes());
                    changed = true;
                } else {
                    dst.extend_from_slice(matched);
                }
                true
            });
            if changed {
                out = replaced;
                rules.push(Rule::KnownValue);
            }
        }
        let d = &self.detectors;
        if !d.gate.is_match(&out) {
            return (out, rules);
        }
        let marker = || Some(MARKER.as_bytes().to_vec());
        replace(&mut out, &mut rules, Rule::PrivateKey, &d.private_key_block, |_| marker());
        redact_unterminated_keys(d, &mut out, &mut rules);
        let keys: Vec<(usize, usize)> = base64_private_key_runs(d, &out).collect();
        if !keys.is_empty() {
            let mut replaced = Vec::with_capacity(out.len());
            let mut pos = 0;
            for (start, end) in keys {
                replaced.extend_from_slice(&out[pos..start]);
                replaced.extend_from_slice(MARKER.as_bytes());
                pos = end;
            }
            replaced.extend_from_slice(&out[pos..]);
            out = replaced;
            rules.push(Rule::PrivateKey);
        }
        replace(&mut out, &mut rules, Rule::Jwt, &d.jwt, |_| marker());
        replace(&mut out, &mut rules, Rule::BearerToken, &d.authorization, |c| {
            (&c[2] != MARKER.as_bytes()).then(|| [&c[1], MARKER.as_bytes()].concat())
        });
        replace(&mut out, &mut rules, Rule::BearerToken, &d.bearer, |c| {
            (&c[2] != MARKER.as_bytes() && has_digit(&c[2])).then(|| [&c[1], MARKER.as_bytes()].concat())
        });
        replace(&mut out, &mut rules, Rule::WebhookUrl, &d.webhook_url, |c| {
            (&c[2] != MARKER.as_bytes()).then(|| [&c[1], MARKER.as_bytes()].concat())
        });
        replace(&mut out, &mut rules, Rule::UrlPassword, &d.url_password, |c| {
            (&c[2] != MARKER.as_bytes()).then(|| [&c[1], MARKER.as_bytes(), &c[3]].concat())
        });
        replace(&mut out, &mut rules, Rule::TokenFormat, &d.token_format, |_| marker());
        let inline_key = |key: &[u8]| {
            let key = String::from_utf8_lossy(key);
            // `"secret": "kedaorg-certs"` names a Secret.
            is_credential_key(&key) && !matches!(key.to_ascii_lowercase().as_str(), "secret" | "secrets")
        };
        for quoted in [&d.inline_double_quoted, &d.inline_single_quoted] {
            replace(&mut out, &mut rules, Rule::InlineCredential, quoted, |c| {
                (inline_key(&c[1]) && is_secret_value(&c[3])).then(|| [&c[1], &c[2], MARKER.as_bytes(), &c[4]].concat())
            });
        }
        replace(&mut out, &mut rules, Rule::InlineCredential, &d.inline, |c| {
            (inline_key(&c[1]) && is_secret_value(&c[3])).then(|| [&c[1], &c[2], MARKER.as_bytes()].concat())
        });
        replace(&mut out, &mut rules, Rule::CredentialFlag, &d.flag, |c| {
            let flag = String::from_utf8_lossy(&c[2]);
            (is_credential_flag(&flag) && is_secret_value(&c[4]))
                .then(|| [&c[1], &c[2], &c[3], MARKER.as_bytes()].concat())
        });
        (out, rules)
    }

    /// Scrubs every string below `value` (map keys are left alone); returns `(field path, rule)` pairs.
    pub fn scrub_value(&self, value: &mut Value, path: &str) -> Vec<(String, Rule)> {
        let mut found = Vec::new();
        self.scrub_into(value, path, &mut found);
        found
    }

    fn scrub_into(&self, value: &mut Value, path: &str, found: &mut Vec<(String, Rule)>) {
        match value {
            Value::String(s) => {
                let (out, rules) = self.scrub_bytes(s.as_bytes());
                if !rules.is_empty() {
                    *s = String::from_utf8_lossy(&out).into_owned();
                    found.extend(rules.into_iter().map(|r| (path.to_string(), r)));
                }
            }
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    let child_path = if child.is_object() || child.is_array() || !k.contains('.') {
                        join(path, k)
                    } else {
                        format!("{path}[{k}]")
                    };
                    self.scrub_into(child, &child_path, found);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let item_path = item_path(path, item, i);
                    self.scrub_into(item, &item_path, found);
                }
            }
            _ => {}
        }
    }

    /// A line-by-line scrubber for one log stream (remembers whether it is inside a private key).
    pub fn for_log(&self) -> LogScrubber<'_> {
        LogScrubber { scrubber: self, in_private_key: false, counts: BTreeMap::new() }
    }
}

/// Applies `f` to every match of `re` in `out`; `None` keeps the match.
fn replace(
    out: &mut Vec<u8>,
    rules: &mut Vec<Rule>,
    rule: Rule,
    re: &Regex,
    f: impl Fn(&Captures<'_>) -> Option<Vec<u8>>,
) {
    if !re.is_match(out) {
        return;
    }
    let mut changed = false;
    let replaced = re.replace_all(out, |c: &Captures<'_>| match f(c) {
        Some(r) => {
            changed = true;
            r
        }
        None => c[0].to_vec(),
    });
    if changed {
        let replaced = replaced.into_owned();
        *out = replaced;
        rules.push(rule);
    }
}

/// Scrubs a log stream line by line. A private key printed over several lines is replaced line by line:
/// after a BEGIN header that ends its line, lines of key material (base64, PEM headers) are replaced up to
/// the END line; the first other line ends the key, so a header without its END never blanks the rest of
/// the log. A `timestamps=true` prefix is kept.
pub struct LogScrubber<'a> {
    scrubber: &'a Scrubber,
    in_private_key: bool,
    counts: BTreeMap<Rule, usize>,
}

impl LogScrubber<'_> {
    /// Scrubs one line (with or without its newline) and appends the result to `out`.
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let d = &self.scrubber.detectors;
        let (content, newline) = match line.strip_suffix(b"\n") {
            Some(content) => (content, true),
            None => (line, false),
        };
        if self.in_private_key {
            let (timestamp, rest) = d.split_timestamp(content);
            let body = rest.trim_ascii();
            if let Some(m) = d.private_key_end.find(rest) {
                self.in_private_key = false;
                out.extend_from_slice(timestamp);
                out.extend_from_slice(MARKER.as_bytes());
                let (tail, rules) = self.scrubber.scrub_bytes(&rest[m.end()..]);
                self.count(rules);
                out.extend_from_slice(&tail);
                if newline {
                    out.push(b'\n');
                }
                return;
            }
            if body.is_empty() || is_pem_body(body) {
                out.extend_from_slice(timestamp);
                if !body.is_empty() {
                    out.extend_from_slice(MARKER.as_bytes());
                }
                if newline {
                    out.push(b'\n');
                }
                return;
            }
            self.in_private_key = false;
        }
        let (scrubbed, rules) = self.scrubber.scrub_bytes(content);
        self.count(rules);
        out.extend_from_slice(&scrubbed);
        if newline {
            out.push(b'\n');
        }
        // A header with nothing but key material after it: the key goes on over the next lines.
        if let Some(m) = d.private_key_begin.find_iter(content).last()
            && !d.private_key_end.is_match(&content[m.end()..])
            && content[key_body_end(d, content, m.end())..].trim_ascii().is_empty()
        {
            self.in_private_key = true;
        }
    }

    fn count(&mut self, rules: Vec<Rule>) {
        for rule in rules {
            *self.counts.entry(rule).or_default() += 1;
        }
    }

    /// Lines changed, per rule.
    pub fn counts(&self) -> &BTreeMap<Rule, usize> {
        &self.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scrub(s: &str) -> (String, Vec<Rule>) {
        let (out, rules) = Scrubber::new(Detectors::new().unwrap(), Vec::new()).scrub_bytes(s.as_bytes());
        (String::from_utf8(out).unwrap(), rules)
    }

    #[test]
    fn secret_values_are_replaced_keys_kept_and_values_remembered() {
        let mut r = Redactor::new().unwrap();
        let mut secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns", "managedFields": [{"manager": "x"}],
                "annotations": {"openshift.io/token-secret.value": "sha256~tokentokentoken",
                                "openshift.io/token-secret.name": "s-token", "kubectl.kubernetes.io/last-applied-configuration":
                                "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"stringData\":{\"password\":\"hunter2hunter2\"}}"}},
            "data": {"password": "aHVudGVyMmh1bnRlcjI="},
            "stringData": {"token": "plain-token-value"},
        });
        r.redact_object("f.yaml", &mut secret);
        assert!(!format!("{r:?}").contains("hunter2"));
        let text = secret.to_string();
        for needle in ["hunter2", "aHVudGVy", "plain-token", "sha256~token", "managedFields"] {
            assert!(!text.contains(needle), "{needle} in {text}");
        }
        assert_eq!(secret["data"]["password"], "REDACTED (14 bytes)");
        assert_eq!(secret["metadata"]["annotations"]["openshift.io/token-secret.name"], "s-token");
        let fields: Vec<(String, Rule)> = r.redactions().into_iter().map(|x| (x.field, x.rule)).collect();
        assert!(fields.contains(&("data[password]".into(), Rule::SecretData)));
        assert!(fields.contains(&("stringData[token]".into(), Rule::SecretData)));
        assert!(fields.iter().any(|(_, rule)| *rule == Rule::LastApplied));
        assert!(fields.iter().any(|(_, rule)| *rule == Rule::SecretAnnotation));
        let scrubber = r.scrubber();
        let (out, rules) = scrubber.scrub_bytes(b"log: connecting with hunter2hunter2 now");
        assert_eq!(out, b"log: connecting with REDACTED now");
        assert_eq!(rules, vec![Rule::KnownValue]);
    }

    #[test]
    fn vault_token_and_trigger_metadata_credentials_are_replaced_references_kept() {
        let mut r = Redactor::new().unwrap();
        let mut ta = json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "ta", "namespace": "app"},
            "spec": {
                "hashiCorpVault": {"address": "https://vault:8200", "authentication": "token",
                    "credential": {"token": "hvs.VAULTTOKEN123456"},
                    "secrets": [{"parameter": "password", "path": "secret/data/x", "key": "password"}]},
                "secretTargetRef": [{"parameter": "password", "name": "db", "key": "password"}],
                "azureKeyVault": {"vaultUri": "https://kv", "credentials": {"clientId": "cid", "tenantId": "tid",
                    "clientSecret": {"valueFrom": {"secretKeyRef": {"name": "azure", "key": "secret"}}}},
                    "secrets": [{"parameter": "p", "name": "n"}]},
                "oauth2": {"type": "clientCredentials", "clientId": "c", "tokenUrl": "https://idp/token",
                    "tokenUrlParams": {"client_assertion": "assertion-value-xyz", "audience": "api"}},
                "unknownInlineField": {"apiKey": "inline-api-key-123"},
            },
        });
        r.redact_object("ta.yaml", &mut ta);
        let spec = &ta["spec"];
        assert_eq!(spec["hashiCorpVault"]["credential"]["token"], MARKER);
        assert_eq!(spec["hashiCorpVault"]["address"], "https://vault:8200");
        assert_eq!(spec["hashiCorpVault"]["secrets"][0]["key"], "password");
        assert_eq!(spec["secretTargetRef"][0]["name"], "db");
        assert_eq!(spec["azureKeyVault"]["credentials"]["clientSecret"]["valueFrom"]["secretKeyRef"]["key"], "secret");
        assert_eq!(spec["oauth2"]["tokenUrl"], "https://idp/token");
        assert_eq!(spec["oauth2"]["tokenUrlParams"]["client_assertion"], MARKER);
        assert_eq!(spec["oauth2"]["tokenUrlParams"]["audience"], "api");
        assert_eq!(spec["unknownInlineField"]["apiKey"], MARKER);
        let fields: BTreeSet<String> = r.redactions().into_iter().map(|x| x.field).collect();
        assert!(fields.contains("spec.hashiCorpVault.credential.token"), "{fields:?}");

        let mut so = json!({
            "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": "so", "namespace": "app"},
            "spec": {"triggers": [{"type": "redis", "metadata": {"address": "redis:6379",
                "password": "redis-password-1", "passwordFromEnv": "REDIS_PASSWORD",
                "connectionString": "Endpoint=sb://x/;SharedAccessKey=abcdefgh"}}]},
        });
        r.redact_object("so.yaml", &mut so);
        let md = &so["spec"]["triggers"][0]["metadata"];
        assert_eq!(md["password"], MARKER);
        assert_eq!(md["connectionString"], MARKER);
        assert_eq!(md["passwordFromEnv"], "REDIS_PASSWORD");
        assert_eq!(md["address"], "redis:6379");
    }

    #[test]
    fn credential_env_values_are_replaced_everywhere_in_pod_templates() {
        let mut r = Redactor::new().unwrap();
        let mut deploy = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "n"},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "env": [
                {"name": "API_TOKEN", "value": "tok-123456789"},
                {"name": "WATCH_NAMESPACE", "value": ""},
                {"name": "KEDA_HTTP_DEFAULT_TIMEOUT", "value": "3000"},
                {"name": "ENDPOINT", "value": "https://user:pa55word@host/"},
                {"name": "OPAQUE", "value": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl"},
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            ]}]}}},
        });
        r.redact_object("d.yaml", &mut deploy);
        let env = &deploy["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0]["value"], MARKER);
        assert_eq!(env[1]["value"], "");
        assert_eq!(env[2]["value"], "3000");
        assert_eq!(env[3]["value"], MARKER);
        assert_eq!(env[4]["value"], MARKER);
        assert_eq!(env[5]["valueFrom"]["secretKeyRef"]["name"], "db");
        let fields: BTreeSet<String> = r.redactions().into_iter().map(|x| x.field).collect();
        assert!(fields.contains("spec.template.spec.containers[c].env[API_TOKEN].value"));
    }

    #[test]
    fn last_applied_of_other_kinds_is_redacted_field_by_field() {
        let mut r = Redactor::new().unwrap();
        let applied = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "ta"}, "spec": {"hashiCorpVault": {"credential": {"token": "s.vaulttoken99"}}}});
        let mut ta = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication",
            "metadata": {"name": "ta", "namespace": "x", "annotations": {LAST_APPLIED: applied.to_string()}},
            "spec": {}});
        r.redact_object("ta.yaml", &mut ta);
        let kept = ta["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap();
        assert!(!kept.contains("vaulttoken99"));
        assert!(kept.contains("hashiCorpVault"));
    }

    #[test]
    fn detectors_find_keys_tokens_and_passwords_in_text() {
        let (out, rules) = scrub("Authorization: Bearer abc.def-123456 sent");
        assert_eq!(out, "Authorization: Bearer REDACTED sent");
        assert_eq!(rules, vec![Rule::BearerToken]);
        assert_eq!(
            scrub("connecting to amqp://guest:s3cret@rabbit:5672/vhost").0,
            "connecting to amqp://guest:REDACTED@rabbit:5672/vhost"
        );
        assert_eq!(scrub(r#"{"password":"p@ss-w0rd","user":"bob"}"#).0, r#"{"password":"REDACTED","user":"bob"}"#);
        assert_eq!(scrub("--client-secret=abcdef flag").0, "--client-secret=REDACTED flag");
        assert_eq!(
            scrub("tokenFromEnv=MY_TOKEN secretName=kedaorg-certs").0,
            "tokenFromEnv=MY_TOKEN secretName=kedaorg-certs"
        );
        assert_eq!(scrub("\"secret\": \"kedaorg-certs\"").0, "\"secret\": \"kedaorg-certs\"");
        let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzIn0.sig_nature-x";
        assert_eq!(scrub(&format!("token {jwt} end")).0, "token REDACTED end");
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(scrub(&format!("key:\n{key}")).0, "key:\nREDACTED\n");
        assert_eq!(scrub("Bearer authentication is used").1, Vec::<Rule>::new());
        let kubeconfig = "users:\n- name: admin\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZREFUQQ==\n    token: sha256~kubeconfigtoken\n";
        let (out, _) = scrub(kubeconfig);
        assert!(!out.contains("S0VZREFUQQ") && !out.contains("kubeconfigtoken"), "{out}");
        assert!(out.contains("client-certificate-data: Q0VSVA=="), "{out}");
        assert_eq!(scrub("plain line with nothing").1, Vec::<Rule>::new());
    }

    #[test]
    fn log_scrubber_drops_private_keys_spread_over_lines() {
        let s = Scrubber::new(Detectors::new().unwrap(), vec![b"knownvalue123".to_vec()]);
        let mut log = s.for_log();
        let mut out = Vec::new();
        for line in [
            "start\n",
            "dump: -----BEGIN PRIVATE KEY-----\n",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
            "-----END PRIVATE KEY-----\n",
            "value knownvalue123 seen\n",
            "end",
        ] {
            log.line(line.as_bytes(), &mut out);
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "start\ndump: REDACTED\nREDACTED\nREDACTED\nvalue REDACTED seen\nend"
        );
        assert_eq!(log.counts()[&Rule::PrivateKey], 1);
        assert_eq!(log.counts()[&Rule::KnownValue], 1);
    }

    #[test]
    fn credential_names() {
        for name in
            ["API_TOKEN", "DB_PASSWORD", "AWS_SECRET_ACCESS_KEY", "SIGNING_KEY", "REDIS_PASS", "AZURE_CLIENT_SECRET"]
        {
            assert!(is_credential_env(name), "{name}");
        }
        for name in [
            "POD_NAMESPACE",
            "WATCH_NAMESPACE",
            "KEDA_HTTP_DEFAULT_TIMEOUT",
            "TOKEN_FILE",
            "KEYCLOAK_URL",
            "KEDA_SERVICE_TLS_CIPHER_LIST",
        ] {
            assert!(!is_credential_env(name), "{name}");
        }
        for key in [
            "password",
            "apiKey",
            "token",
            "sasToken",
            "clientSecret",
            "client_assertion",
            "awsSecretAccessKey",
            "secretKey",
        ] {
            assert!(is_credential_key(key), "{key}");
        }
        for key in [
            "passwordFromEnv",
            "key",
            "name",
            "secretName",
            "tokenUrl",
            "parameter",
            "serviceAccountName",
            "awsAccessKeyID",
            "secretTargetRef",
        ] {
            assert!(!is_credential_key(key), "{key}");
        }
    }

    fn scrubber_knowing(values: &[&str]) -> Scrubber {
        Scrubber::new(Detectors::new().unwrap(), values.iter().map(|v| v.as_bytes().to_vec()).collect())
    }

    fn log(scrubber: &Scrubber, lines: &[&str]) -> String {
        let mut log = scrubber.for_log();
        let mut out = Vec::new();
        for line in lines {
            log.line(line.as_bytes(), &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn configmap_values_and_annotations_of_any_object_are_redacted_by_their_key() {
        let mut r = Redactor::new().unwrap();
        let mut cm = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": "n", "annotations": {
                "example.com/password": "cmAnnotPw-91x", "example.com/owner": "team-a",
                "features.operators.openshift.io/token-auth-aws": "false"}},
            "data": {"password": "cmDataPw-42", "api-token": "cmTok", "tls.key": "k", "log-level": "info",
                "tls.crt": "public", "app.properties": "db.password=propPw-77\nurl=postgres://app:urlPw-5@db/x\n"},
            "binaryData": {"secret.bin": "c2VjcmV0LWJpbmFyeQ=="},
        });
        r.redact_object("cm.yaml", &mut cm);
        assert_eq!(cm["metadata"]["annotations"]["example.com/password"], MARKER);
        assert_eq!(cm["metadata"]["annotations"]["example.com/owner"], "team-a");
        assert_eq!(cm["metadata"]["annotations"]["features.operators.openshift.io/token-auth-aws"], "false");
        for key in ["password", "api-token", "tls.key"] {
            assert_eq!(cm["data"][key], MARKER, "{key}");
        }
        assert_eq!(cm["data"]["log-level"], "info");
        assert_eq!(cm["data"]["tls.crt"], "public");
        assert_eq!(cm["binaryData"]["secret.bin"], MARKER);
        // The rest of a ConfigMap goes through the scrubber: a file's `password=` and a URL's password.
        let scrubber = r.scrubber();
        scrubber.scrub_value(&mut cm, "");
        let props = cm["data"]["app.properties"].as_str().unwrap();
        assert_eq!(props, "db.password=REDACTED\nurl=postgres://app:REDACTED@db/x\n");
        // Values removed here are known values elsewhere.
        assert_eq!(scrubber.scrub_bytes(b"sent cmDataPw-42 and cmAnnotPw-91x").0, b"sent REDACTED and REDACTED");
        // Pod template annotations too.
        let mut deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"metadata": {"annotations": {"vault.example/auth-token": "podAnnotTok-3"}}}}});
        r.redact_object("d.yaml", &mut deploy);
        assert_eq!(deploy["spec"]["template"]["metadata"]["annotations"]["vault.example/auth-token"], MARKER);
        let fields: BTreeSet<String> = r.redactions().into_iter().map(|x| x.field).collect();
        assert!(fields.contains("data[password]") && fields.contains("metadata.annotations[example.com/password]"));
        assert!(fields.contains("spec.template.metadata.annotations[vault.example/auth-token]"), "{fields:?}");
    }

    #[test]
    fn a_credential_flag_given_as_two_arguments_loses_its_value() {
        let mut r = Redactor::new().unwrap();
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "command": ["/app"],
                "args": ["--password", "argPw-1234", "--log-level", "debug", "-token", "argTok-99",
                         "--password-file", "/etc/pw", "--client-secret", "--verbose"]}]}});
        r.redact_object("p.yaml", &mut pod);
        let args = &pod["spec"]["containers"][0]["args"];
        assert_eq!(
            args,
            &json!([
                "--password",
                "REDACTED",
                "--log-level",
                "debug",
                "-token",
                "REDACTED",
                "--password-file",
                "/etc/pw",
                "--client-secret",
                "--verbose"
            ])
        );
        let fields: BTreeSet<String> = r.redactions().into_iter().map(|x| x.field).collect();
        assert!(fields.contains("spec.containers[c].args[1]"), "{fields:?}");
        // The same on a command line in free text; `=` forms and file flags as before.
        assert_eq!(scrub("exec /app --password flagPw-77 --port 80").0, "exec /app --password REDACTED --port 80");
        assert_eq!(scrub("run --api-key k-123 --once").0, "run --api-key REDACTED --once");
        assert_eq!(scrub("--token-file /var/run/token").1, Vec::<Rule>::new());
        assert_eq!(scrub("--password=inline-1").0, "--password=REDACTED");
    }

    #[test]
    fn secret_looking_env_names_and_webhook_urls() {
        for name in ["GITHUB_PAT", "SLACK_WEBHOOK_URL", "TEAMS_WEBHOOK", "SENTRY_DSN", "WEBHOOK_HMAC"] {
            assert!(is_credential_env(name), "{name}");
        }
        for name in [
            "PATH",
            "PATCH_LEVEL",
            "KEYCLOAK_URL",
            "DSN_HOST_NAME",
            "WEBHOOK_PORT",
            "RELATED_IMAGE_KEDA_ADMISSION_WEBHOOKS",
            "KEDA_ADMISSION_WEBHOOKS_IMAGE",
        ] {
            assert!(!is_credential_env(name), "{name}");
        }
        let (out, rules) = scrub("posting to https://hooks.slack.com/services/T0001/B0002/hookSecret123 failed");
        assert_eq!(out, "posting to https://hooks.slack.com/services/REDACTED failed");
        assert_eq!(rules, vec![Rule::WebhookUrl]);
        assert!(
            scrub("https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/x/y")
                .0
                .ends_with("webhookb2/REDACTED")
        );
        let ghp = format!("ghp_{}", "A1b2C3d4E5".repeat(4));
        assert_eq!(scrub(&format!("clone with {ghp} now")).0, "clone with REDACTED now");
        assert_eq!(scrub("xoxb-123456789012-abcdefghij").0, "REDACTED");
    }

    #[test]
    fn keda_credential_metadata_keys_are_redacted_and_their_references_kept() {
        for key in [
            "customAuthValue",
            "appKey",
            "queryKey",
            "tlsKey",
            "keyPassword",
            "sentinelPassword",
            "activeDirectoryClientPassword",
            "storageConnection",
            "connection",
            "credentials",
            "keytab",
            "personalAccessToken",
            "awsSessionToken",
            "oauthExtensions",
            "tlsClientKey",
            "bearerToken",
            "SecretKey",
            "AccessKey",
            "accessToken",
            "apiToken",
            "authToken",
            "appCredentialSecret",
            "clientKey",
            "GoogleApplicationCredentials",
            "awsSecretAccessKey",
            "connectionString",
        ] {
            assert!(is_credential_key(key), "{key}");
        }
        for key in [
            "key",
            "metricKey",
            "watchKey",
            "keyParamName",
            "connectionFromEnv",
            "connectionLimit",
            "queryValue",
            "tls",
            "cert",
            "ca",
            "caCert",
            "customAuthHeader",
            "activationValue",
            "value",
            "host",
            "clientId",
            "credentialsFromEnv",
            "appKeyFromEnv",
            "tokenUrl",
            "sasl",
            "saslTokenProvider",
            "tlsServerName",
        ] {
            assert!(!is_credential_key(key), "{key}");
        }
    }

    #[test]
    fn escaped_json_and_short_quoted_values_are_redacted() {
        assert_eq!(scrub(r#"msg="{\"password\":\"x\"}""#).0, r#"msg="{\"password\":\"REDACTED\"}""#);
        assert_eq!(scrub(r#"{"token": "a b;c,d", "user": "bob"}"#).0, r#"{"token": "REDACTED", "user": "bob"}"#);
        assert_eq!(scrub(r#"body: {\\\"apiKey\\\": \\\"k1\\\"}"#).1, vec![Rule::InlineCredential]);
        assert_eq!(scrub("password: p;w").0, "password: REDACTED;w");
        // Not secrets: flags, empty values, references, block markers.
        for kept in ["requirePassword: false", "password: ${DB_PASSWORD}", r#""token": """#, "password: |"] {
            assert_eq!(scrub(kept).0, kept, "{kept}");
        }
    }

    #[test]
    fn base64_encoded_private_keys_are_redacted_and_certificates_kept() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAb64Key\n-----END RSA PRIVATE KEY-----\n";
        let cert = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
        assert_eq!(scrub(&format!("client-key-data: {}", b64(key))).0, "client-key-data: REDACTED");
        assert_eq!(scrub(&format!("key={}\n", b64(key))).0, "key=REDACTED\n");
        // Inside a larger encoded document, at any alignment; truncated too.
        for prefix in ["", "x", "xy"] {
            let doc = b64(&format!("{prefix}config:\n{key}"));
            assert_eq!(scrub(&format!("blob {doc} end")).0, "blob REDACTED end", "{prefix:?}");
            assert_eq!(scrub(&doc[..doc.len() - 7]).0, "REDACTED", "{prefix:?}");
        }
        let ca = format!("certificate-authority-data: {}", b64(cert));
        assert_eq!(scrub(&ca), (ca.clone(), vec![]));
    }

    #[test]
    fn short_secrets_are_scrubbed_as_whole_tokens_when_distinctive() {
        let s = scrubber_knowing(&["hunt3r", "keda", "p@ss", "Ab1"]);
        assert_eq!(s.scrub_bytes(b"login hunt3r, retry (hunt3r)").0, b"login REDACTED, retry (REDACTED)");
        // Not inside a longer word, and ordinary words are never matched.
        assert_eq!(s.scrub_bytes(b"hunt3rs keda-operator keda").1, Vec::<Rule>::new());
        assert_eq!(s.scrub_bytes(b"pass=p@ss!").0, b"pass=REDACTED!");
        // Under 4 bytes: only structurally.
        assert_eq!(s.scrub_bytes(b"Ab1 here").1, Vec::<Rule>::new());
        assert!(is_distinctive(b"hunt3r") && is_distinctive(b"Admin") && is_distinctive(b"p@ss"));
        assert!(!is_distinctive(b"keda") && !is_distinctive(b"8080"));
        // Secret data this short is remembered.
        let mut r = Redactor::new().unwrap();
        let mut secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": base64::engine::general_purpose::STANDARD.encode("Pw3x9")}});
        r.redact_object("s.yaml", &mut secret);
        assert_eq!(r.scrubber().scrub_bytes(b"auth with Pw3x9 ok").0, b"auth with REDACTED ok");
    }

    #[test]
    fn a_private_key_header_without_its_end_does_not_blank_the_rest() {
        // One string: the header and key lines go, the text after them stays.
        let text = "error: -----BEGIN PRIVATE KEY----- not found in bundle\nnext: keep me\n";
        assert_eq!(scrub(text).0, "error: REDACTED not found in bundle\nnext: keep me\n");
        let truncated =
            "key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkgM0ySTRUNC\nAwEHoUQDQgAE\nthen the story goes on\n";
        assert_eq!(scrub(truncated).0, "key:\nREDACTED\nthen the story goes on\n");
        let escaped = r#"{"msg":"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\n","level":"info"}"#;
        assert_eq!(scrub(escaped).0, r#"{"msg":"REDACTED\n","level":"info"}"#);
        // A log: the header's mention on one line leaves the following lines alone.
        let s = scrubber_knowing(&[]);
        let out = log(
            &s,
            &[
                "2025-01-01T00:00:00Z loading -----BEGIN PRIVATE KEY----- from /certs/tls.key failed\n",
                "2025-01-01T00:00:01Z retrying in 5s\n",
                "2025-01-01T00:00:02Z ready\n",
            ],
        );
        assert_eq!(
            out,
            "2025-01-01T00:00:00Z loading REDACTED from /certs/tls.key failed\n2025-01-01T00:00:01Z retrying in 5s\n2025-01-01T00:00:02Z ready\n"
        );
        // A key printed without its END line: its lines go, the next message stays.
        let out = log(
            &s,
            &[
                "2025-01-01T00:00:00Z dump: -----BEGIN RSA PRIVATE KEY-----\n",
                "2025-01-01T00:00:00Z MIIEpAIBAAKCAQEAtruncatedKeyBody0\n",
                "2025-01-01T00:00:00Z Zm9vYmFy\n",
                "2025-01-01T00:00:03Z reconciling ScaledObject app/so-1\n",
                "2025-01-01T00:00:04Z done\n",
            ],
        );
        assert_eq!(
            out,
            "2025-01-01T00:00:00Z dump: REDACTED\n2025-01-01T00:00:00Z REDACTED\n2025-01-01T00:00:00Z REDACTED\n\
             2025-01-01T00:00:03Z reconciling ScaledObject app/so-1\n2025-01-01T00:00:04Z done\n"
        );
    }

    #[test]
    fn url_passwords_with_at_signs_and_escaped_slashes() {
        assert_eq!(scrub("amqp://user:p@ss@rabbit:5672/").0, "amqp://user:REDACTED@rabbit:5672/");
        assert_eq!(scrub(r#"{"url":"redis:\/\/:rPw-1@redis:6379"}"#).0, r#"{"url":"redis:\/\/:REDACTED@redis:6379"}"#);
        // A port and a path are not a password.
        let kept = "see https://host:8443/users/bob@example.com";
        assert_eq!(scrub(kept).0, kept);
    }
}
