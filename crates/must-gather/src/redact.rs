//! Redaction, always on: what support must never receive is removed before anything is written.
//!
//! Two passes run over every collected object:
//!
//! 1. [`Redactor::redact_object`] applies the structural rules (Secret values, credential annotations,
//!    `last-applied-configuration`, credential fields of KEDA's resources, credential env values) and
//!    remembers every value it removed (the *known values*).
//! 2. [`Scrubber::scrub_value`] (built by [`Redactor::scrubber`]) looks at every remaining string, and
//!    [`LogScrubber`] at every log line: known values, private keys, JWTs, bearer tokens, URL passwords and
//!    `password=...`-style pairs are replaced.
//!
//! Every replacement is recorded as a [`Redaction`] (file, object, field, rule), never with the value, and
//! listed in `redactions.txt`.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use regex::bytes::{Captures, Regex};
use serde_json::Value;

/// What replaces a redacted value.
pub const MARKER: &str = "REDACTED";

/// Annotation kubectl writes on `kubectl apply`: a full copy of the applied object, Secret values included.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Shortest value remembered for scrubbing free text (shorter ones would match ordinary words).
pub const MIN_KNOWN_LEN: usize = 8;

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
    /// The value in `password=...`, `"token": "..."` and the like.
    InlineCredential,
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
            Rule::KnownValue => "known-secret-value",
            Rule::PrivateKey => "private-key",
            Rule::Jwt => "jwt",
            Rule::BearerToken => "bearer-token",
            Rule::UrlPassword => "url-password",
            Rule::InlineCredential => "inline-credential",
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
    if trimmed.len() >= MIN_KNOWN_LEN {
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
            if s.len() >= MIN_KNOWN_LEN {
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

fn redact_object(ctx: &mut Ctx<'_>, obj: &mut Value, prefix: &str) {
    let secret = is_secret(obj);
    let keda = is_keda_kind(obj);
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
                }
            }
        }
    }
    if secret {
        secret_values(ctx, obj, prefix);
    }
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    for (key, value) in map.iter_mut() {
        if key == "metadata" {
            continue;
        }
        let path = join(prefix, key);
        env_values(ctx, value, &path);
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

fn secret_values(ctx: &mut Ctx<'_>, obj: &mut Value, prefix: &str) {
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
            if certs.is_none() {
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
    if ["_FILE", "_PATH", "_DIR", "_NAME", "_URL", "_ENDPOINT"].iter().any(|s| upper.ends_with(s))
        && !joined.contains("PASSWORD")
    {
        return false;
    }
    [
        "PASSWORD",
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
        || ["KEY", "PWD", "PASS", "AUTH", "COOKIE", "SIGNATURE"].iter().any(|w| word(w))
}

/// Object keys (camelCase, snake_case, kebab-case) whose string values are credentials.
pub fn is_credential_key(key: &str) -> bool {
    let k: String = key.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_ascii_lowercase();
    if k == "pwd" || k == "pass" {
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
    // `key` alone names a key (secretTargetRef), while `apiKey`, `accessKey`, `privateKey` are credentials.
    let key_credentials = [
        "apikey",
        "accesskey",
        "secretkey",
        "privatekey",
        "signingkey",
        "sharedaccesskey",
        // kubeconfig: `client-key-data` is a base64 PEM private key.
        "clientkey",
        "clientkeydata",
    ];
    if key_credentials.iter().any(|w| k.ends_with(w)) {
        return true;
    }
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

/// Replaces `value` of env entries whose name or value looks like a credential, anywhere below `value`.
fn env_values(ctx: &mut Ctx<'_>, value: &mut Value, path: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let child_path = join(path, key);
                if key == "env"
                    && let Value::Array(items) = child
                {
                    for (i, item) in items.iter_mut().enumerate() {
                        let item_path = item_path(&child_path, item, i);
                        env_entry(ctx, item, &item_path);
                    }
                } else {
                    env_values(ctx, child, &child_path);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let item_path = item_path(path, item, i);
                env_values(ctx, item, &item_path);
            }
        }
        _ => {}
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

/// The free-text detectors (no known values).
#[derive(Clone)]
pub struct Detectors {
    private_key_block: Regex,
    private_key_begin: Regex,
    private_key_end: Regex,
    jwt: Regex,
    bearer: Regex,
    authorization: Regex,
    url_password: Regex,
    inline: Regex,
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
        Ok(Self {
            private_key_block: re(
                r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)",
            )?,
            private_key_begin: re(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")?,
            private_key_end: re(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")?,
            jwt: re(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")?,
            bearer: re(r"(?i)(\bbearer[ \t]+)([A-Za-z0-9._~+/:-]{8,}=*)")?,
            authorization: re(
                r#"(?i)(\b(?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?(?:(?:basic|bearer|token|negotiate|digest)[ \t]+)?)([^\s"',;]{4,})"#,
            )?,
            url_password: re(r#"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s"'<>]*:)([^@/\s"'<>]+)(@)"#)?,
            inline: re(
                r#"(?i)([a-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|secret[_-]?key|client[_-]?key(?:[_-]?data)?|credentials?|assertion|passphrase)[a-z0-9_.-]*)(["']?[ \t]*[:=][ \t]*["']?)([^\s"',;&}\])]{3,})"#,
            )?,
        })
    }

    /// Whether a whole value looks like a credential by its shape (key block, JWT, bearer header).
    pub fn looks_like_credential(&self, value: &[u8]) -> bool {
        self.private_key_begin.is_match(value)
            || self.jwt.is_match(value)
            || self.bearer.captures(value).is_some_and(|c| has_digit(&c[2]))
            || self.url_password.is_match(value)
    }
}

fn has_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
}

/// Free-text scrubbing: known values plus the shape detectors.
#[derive(Clone)]
pub struct Scrubber {
    detectors: Detectors,
    known: Option<AhoCorasick>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("known_values", &self.known.as_ref().map(|a| a.patterns_len()))
            .finish_non_exhaustive()
    }
}

impl Scrubber {
    /// A scrubber for these known values (each at least [`MIN_KNOWN_LEN`] bytes).
    pub fn new(detectors: Detectors, known: Vec<Vec<u8>>) -> Self {
        let known: Vec<Vec<u8>> = known.into_iter().filter(|k| k.len() >= MIN_KNOWN_LEN).collect();
        let known = if known.is_empty() {
            None
        } else {
            AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&known).ok()
        };
        Self { detectors, known }
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
        let d = &self.detectors;
        replace(&mut out, &mut rules, Rule::PrivateKey, &d.private_key_block, |_| Some(MARKER.as_bytes().to_vec()));
        replace(&mut out, &mut rules, Rule::Jwt, &d.jwt, |_| Some(MARKER.as_bytes().to_vec()));
        replace(&mut out, &mut rules, Rule::BearerToken, &d.authorization, |c| {
            (&c[2] != MARKER.as_bytes()).then(|| [&c[1], MARKER.as_bytes()].concat())
        });
        replace(&mut out, &mut rules, Rule::BearerToken, &d.bearer, |c| {
            (&c[2] != MARKER.as_bytes() && has_digit(&c[2])).then(|| [&c[1], MARKER.as_bytes()].concat())
        });
        replace(&mut out, &mut rules, Rule::UrlPassword, &d.url_password, |c| {
            (&c[2] != MARKER.as_bytes()).then(|| [&c[1], MARKER.as_bytes(), &c[3]].concat())
        });
        replace(&mut out, &mut rules, Rule::InlineCredential, &d.inline, |c| {
            let key = String::from_utf8_lossy(&c[1]);
            let value = &c[3];
            let credential =
                is_credential_key(&key) && !matches!(key.to_ascii_lowercase().as_str(), "secret" | "secrets");
            (credential && value != MARKER.as_bytes() && !value.starts_with(MARKER.as_bytes()))
                .then(|| [&c[1], &c[2], MARKER.as_bytes()].concat())
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

/// Scrubs a log stream line by line; lines between a private key's BEGIN and END are dropped whole.
pub struct LogScrubber<'a> {
    scrubber: &'a Scrubber,
    in_private_key: bool,
    counts: BTreeMap<Rule, usize>,
}

impl LogScrubber<'_> {
    /// Scrubs one line (with or without its newline) and appends the result to `out`.
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        let d = &self.scrubber.detectors;
        let newline = line.ends_with(b"\n");
        if self.in_private_key {
            if d.private_key_end.is_match(line) {
                self.in_private_key = false;
            }
            out.extend_from_slice(MARKER.as_bytes());
            if newline {
                out.push(b'\n');
            }
            return;
        }
        if d.private_key_begin.is_match(line) && !d.private_key_end.is_match(line) {
            // The key goes on over the next lines: keep what precedes BEGIN, drop the rest until END.
            self.in_private_key = true;
            *self.counts.entry(Rule::PrivateKey).or_default() += 1;
            let start = d.private_key_begin.find(line).map_or(0, |m| m.start());
            let (head, _) = self.scrubber.scrub_bytes(&line[..start]);
            out.extend_from_slice(&head);
            out.extend_from_slice(MARKER.as_bytes());
            if newline {
                out.push(b'\n');
            }
            return;
        }
        let (scrubbed, rules) = self.scrubber.scrub_bytes(line);
        for rule in rules {
            *self.counts.entry(rule).or_default() += 1;
        }
        out.extend_from_slice(&scrubbed);
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
}
