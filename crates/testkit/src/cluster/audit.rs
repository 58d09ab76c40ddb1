//! The API server's audit log, read back: who asked what, when, and what the server answered. The authority
//! for request counts, write timings and `forbidden` answers.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

/// A position in the audit log: events after it belong to whatever happened since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditMark(u64);

/// The object a request was about.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectRef {
    /// Plural resource (`deployments`).
    pub resource: String,
    /// Namespace, empty for cluster-scoped objects and lists across namespaces.
    pub namespace: String,
    /// Name, empty for lists, watches and creates by POST without a name.
    pub name: String,
    /// API group, empty for the core group.
    pub api_group: String,
    /// Subresource (`status`, `finalizers`, `binding`).
    pub subresource: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct User {
    username: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseStatus {
    code: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEvent {
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: String,
    #[serde(rename = "requestURI")]
    request_uri: String,
    verb: String,
    #[serde(default)]
    user: User,
    #[serde(default)]
    user_agent: String,
    #[serde(default)]
    object_ref: Option<ObjectRef>,
    #[serde(default)]
    response_status: Option<ResponseStatus>,
    request_received_timestamp: Timestamp,
    stage_timestamp: Timestamp,
}

/// One request, as the API server recorded it.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// The request's audit ID.
    pub id: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, ...
    pub verb: String,
    /// Path and query.
    pub uri: String,
    /// Who asked (`admin`, `system:serviceaccount:NS:NAME`).
    pub user: String,
    /// The caller's User-Agent.
    pub user_agent: String,
    /// What the request was about.
    pub object: ObjectRef,
    /// The HTTP status answered (0 when the server recorded none).
    pub code: u16,
    /// When the server received the request.
    pub received: Timestamp,
    /// When the server answered (the response started, for watches).
    pub answered: Timestamp,
}

impl AuditEvent {
    /// Whether the request may change state.
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection")
    }

    /// Whether the request was refused by authorization.
    pub fn is_forbidden(&self) -> bool {
        self.code == 403
    }

    /// `VERB resource[/subresource] namespace/name (code)`, for assertion messages.
    pub fn describe(&self) -> String {
        let o = &self.object;
        let sub = if o.subresource.is_empty() { String::new() } else { format!("/{}", o.subresource) };
        let ns = if o.namespace.is_empty() { String::new() } else { format!("{}/", o.namespace) };
        format!("{} {}{sub} {ns}{} ({})", self.verb, o.resource, o.name, self.code)
    }
}

/// Reads an audit log.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// The log at `path`.
    pub fn new(path: &Path) -> Self {
        AuditLog { path: path.to_path_buf() }
    }

    /// The current end of the log.
    pub fn mark(&self) -> AuditMark {
        AuditMark(self.path.metadata().map(|m| m.len()).unwrap_or(0))
    }

    /// Every request recorded after `mark`, one event per request (a watch's `ResponseStarted` stands for it),
    /// in the order the server answered them.
    pub fn since(&self, mark: AuditMark) -> Vec<AuditEvent> {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.path)
            && file.seek(SeekFrom::Start(mark.0)).is_ok()
        {
            let _ = file.read_to_string(&mut text);
        }
        // Only whole lines: the server may be writing the last one.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let mut seen = std::collections::HashSet::new();
        let mut events = Vec::new();
        for line in complete.lines() {
            let Ok(raw) = serde_json::from_str::<RawEvent>(line) else {
                continue;
            };
            if raw.stage == "Panic" || !seen.insert(raw.audit_id.clone()) {
                continue;
            }
            events.push(AuditEvent {
                id: raw.audit_id,
                verb: raw.verb,
                uri: raw.request_uri,
                user: raw.user.username,
                user_agent: raw.user_agent,
                object: raw.object_ref.unwrap_or_default(),
                code: raw.response_status.map(|s| s.code).unwrap_or(0),
                received: raw.request_received_timestamp,
                answered: raw.stage_timestamp,
            });
        }
        events
    }

    /// The requests after `mark` whose User-Agent starts with `user_agent`.
    pub fn by_agent(&self, mark: AuditMark, user_agent: &str) -> Vec<AuditEvent> {
        self.since(mark).into_iter().filter(|e| e.user_agent.starts_with(user_agent)).collect()
    }
}
