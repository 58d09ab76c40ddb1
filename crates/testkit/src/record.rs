//! Request accounting and fault injection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::error::ApiError;
use crate::registry::Gvr;

/// What a request does, classified like the API server's audit verbs (patches split into merge-style
/// patches and server-side apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object, a subresource, logs, or a discovery/raw path.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH that is not server-side apply (merge, strategic merge, JSON patch).
    Patch,
    /// PATCH with `application/apply-patch+yaml`.
    Apply,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// Whether the verb changes state.
    pub fn is_write(self) -> bool {
        matches!(self, Verb::Create | Verb::Update | Verb::Patch | Verb::Apply | Verb::Delete | Verb::DeleteCollection)
    }

    /// The RBAC verb (`apply` is `patch` for authorization).
    pub fn rbac(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch | Verb::Apply => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Name of the client that sent it (see [`crate::FakeApiServer::client_as`]).
    pub client: String,
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// Classified verb.
    pub verb: Verb,
    /// Resource addressed, when the path is a resource path.
    pub resource: Option<Gvr>,
    /// Namespace in the path.
    pub namespace: Option<String>,
    /// Object name in the path.
    pub name: Option<String>,
    /// Subresource in the path (`status`, `log`, ...).
    pub subresource: Option<String>,
    /// `Content-Type` header.
    pub content_type: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// `force=true` on an apply.
    pub force: bool,
    /// Request body parsed as JSON (or YAML), when present.
    pub body: Option<Value>,
    /// HTTP status code of the answer.
    pub status: u16,
}

impl RequestRecord {
    /// A query parameter.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// Whether the request changes state.
    pub fn is_write(&self) -> bool {
        self.verb.is_write()
    }

    /// The plural resource name, if any.
    pub fn resource_name(&self) -> Option<&str> {
        self.resource.as_ref().map(|r| r.resource.as_str())
    }
}

impl fmt::Display for RequestRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({:?}) -> {}", self.method, self.path, self.verb, self.status)?;
        if let Some(m) = &self.field_manager {
            write!(f, " fieldManager={m}")?;
        }
        Ok(())
    }
}

/// A position in the request log (see [`crate::FakeApiServer::mark`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mark(pub(crate) usize);

type Predicate = Arc<dyn Fn(&RequestRecord) -> bool + Send + Sync>;

/// Selects requests for fault injection; unset fields match anything.
#[derive(Clone, Default)]
pub struct Matcher {
    group: Option<String>,
    resource: Option<String>,
    verb: Option<Verb>,
    namespace: Option<String>,
    name: Option<String>,
    client: Option<String>,
    predicate: Option<Predicate>,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("group", &self.group)
            .field("resource", &self.resource)
            .field("verb", &self.verb)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("client", &self.client)
            .field("predicate", &self.predicate.is_some())
            .finish()
    }
}

impl Matcher {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Matches requests on a group/resource (`""` for core), e.g. `Matcher::resource("", "secrets")`.
    pub fn resource(group: &str, resource: &str) -> Self {
        Self { group: Some(group.to_string()), resource: Some(resource.to_string()), ..Self::default() }
    }

    /// Matches requests for which `f` returns true.
    pub fn when(f: impl Fn(&RequestRecord) -> bool + Send + Sync + 'static) -> Self {
        Self { predicate: Some(Arc::new(f)), ..Self::default() }
    }

    /// Also requires this verb.
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Also requires this namespace.
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = Some(ns.to_string());
        self
    }

    /// Also requires this object name.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Also requires this client (see [`crate::FakeApiServer::client_as`]).
    pub fn client(mut self, client: &str) -> Self {
        self.client = Some(client.to_string());
        self
    }

    /// Whether the request matches.
    pub fn matches(&self, r: &RequestRecord) -> bool {
        let gvr = r.resource.as_ref();
        self.group.as_ref().is_none_or(|g| gvr.is_some_and(|x| x.group == *g))
            && self.resource.as_ref().is_none_or(|res| gvr.is_some_and(|x| x.resource == *res))
            && self.verb.is_none_or(|v| v == r.verb)
            && self.namespace.as_ref().is_none_or(|ns| r.namespace.as_ref() == Some(ns))
            && self.name.as_ref().is_none_or(|n| r.name.as_ref() == Some(n))
            && self.client.as_ref().is_none_or(|c| r.client == *c)
            && self.predicate.as_ref().is_none_or(|p| p(r))
    }
}

/// What a fault does to a matching request.
#[derive(Debug, Clone)]
pub(crate) enum FaultAction {
    /// 403 with the real server's wording.
    Forbid,
    /// An error status with the standard reason.
    Fail(u16),
    /// A given error body (for answers whose message matters, such as 422 "field is immutable").
    Error(ApiError),
    /// Extra latency before the request is served.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub matcher: Matcher,
    pub action: FaultAction,
    /// `None`: forever; `Some(n)`: the next n matching requests.
    pub remaining: Option<usize>,
}

/// Injected faults, checked in order for every request.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub rules: Vec<Fault>,
    pub latency: Duration,
}

impl Faults {
    /// The total delay and the error (if any) for a request; consumes counted faults.
    pub fn check(&mut self, r: &RequestRecord) -> (Duration, Option<ApiError>) {
        let mut delay = self.latency;
        let mut error = None;
        for fault in self.rules.iter_mut() {
            if fault.remaining == Some(0) || !fault.matcher.matches(r) {
                continue;
            }
            match &fault.action {
                FaultAction::Delay(d) => delay += *d,
                FaultAction::Forbid if error.is_none() => error = Some(forbidden(r)),
                FaultAction::Fail(code) if error.is_none() => {
                    error = Some(ApiError::new(*code, format!("injected failure for {} {}", r.method, r.path)));
                }
                FaultAction::Error(e) if error.is_none() => error = Some(e.clone()),
                _ => continue,
            }
            if let Some(n) = fault.remaining.as_mut() {
                *n -= 1;
            }
        }
        self.rules.retain(|f| f.remaining != Some(0));
        (delay, error)
    }
}

/// The real server's RBAC denial message.
fn forbidden(r: &RequestRecord) -> ApiError {
    let (group, resource) = r.resource.as_ref().map(|g| (g.group.clone(), g.resource.clone())).unwrap_or_default();
    let qualified = if group.is_empty() { resource.clone() } else { format!("{resource}.{group}") };
    let target = match &r.name {
        Some(name) => format!("{qualified} \"{name}\""),
        None => qualified,
    };
    let scope = match &r.namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_string(),
    };
    ApiError::new(
        403,
        format!(
            "{target} is forbidden: User \"system:serviceaccount:testkit:{}\" cannot {} resource \"{resource}\" in API group \"{group}\"{scope}",
            r.client,
            r.verb.rbac()
        ),
    )
    .with_details(&group, &resource, r.name.as_deref().unwrap_or_default())
}
