//! The HTTP side: a tower `Service` that parses Kubernetes API requests, records them, injects faults and
//! answers from the store.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};

use crate::Inner;
use crate::discovery;
use crate::error::ApiError;
use crate::logs::{self, LogRequest};
use crate::record::{RequestRecord, Verb};
use crate::registry::{Gvr, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{DeleteOpts, PatchKind, State, Sub, WatchFilter, WatchStart, WriteCtx, present};

/// Response body of the fake: a buffer or a stream (watches, logs).
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// Watches without `timeoutSeconds` end after this long (the real server picks 30-60 minutes).
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(3600);
/// Streamed bodies (logs) are sent in chunks of this size, sliced from the stored buffer.
const CHUNK: usize = 64 * 1024;

/// The tower `Service` behind a `kube::Client` (see [`crate::FakeApiServer::client`]).
#[derive(Clone)]
pub struct FakeService {
    pub(crate) inner: Arc<Inner>,
    pub(crate) client: Arc<str>,
}

impl tower::Service<Request<kube::client::Body>> for FakeService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<kube::client::Body>) -> Self::Future {
        let inner = self.inner.clone();
        let client = self.client.clone();
        Box::pin(async move { Ok(handle(inner, client, req).await) })
    }
}

/// A parsed request.
struct Call {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
    accept: String,
    content_type: Option<String>,
    user_agent: Option<String>,
    body: Option<Value>,
    route: Route,
}

enum Route {
    Version,
    CoreVersions,
    GroupList,
    Group(String),
    ResourceList { group: String, version: String },
    Resource(ResPath),
    Unknown,
}

/// A resource path: `/api(s)/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<sub>]]`.
#[derive(Debug, Clone)]
struct ResPath {
    group: String,
    version: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    sub: Option<String>,
}

async fn handle(inner: Arc<Inner>, client: Arc<str>, req: Request<kube::client::Body>) -> Response<ResponseBody> {
    let (parts, body) = req.into_parts();
    let bytes = match body.collect_bytes().await {
        Ok(bytes) => bytes,
        Err(e) => {
            return error_response(&ApiError::bad_request(format!("cannot read request body: {e}")));
        }
    };
    let call = match parse_call(&parts, &bytes) {
        Ok(call) => call,
        Err(e) => return error_response(&e),
    };
    let mut record = record_of(&call, &client);
    let (delay, fault) = crate::lock(&inner.faults).check(&record);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let response = match fault {
        Some(err) => error_response(&err),
        None => dispatch(&inner, &call, &record),
    };
    record.status = response.status().as_u16();
    crate::lock(&inner.records).push(record);
    response
}

fn parse_call(parts: &http::request::Parts, bytes: &Bytes) -> Result<Call, ApiError> {
    let header = |name| parts.headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_string);
    let query =
        parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let body = if bytes.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(bytes)
                .or_else(|_| serde_yaml::from_slice(bytes))
                .map_err(|e| ApiError::bad_request(format!("cannot decode request body: {e}")))?,
        )
    };
    let path = parts.uri.path().to_string();
    Ok(Call {
        method: parts.method.clone(),
        route: parse_route(&path),
        path,
        query,
        accept: header(ACCEPT).unwrap_or_default(),
        content_type: header(CONTENT_TYPE),
        user_agent: header(USER_AGENT),
        body,
    })
}

fn parse_route(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::GroupList,
        ["apis", group] => Route::Group((*group).to_string()),
        ["api", version] => resource_list("", version),
        ["apis", group, version] => resource_list(group, version),
        ["api", version, rest @ ..] => parse_resource("", version, rest),
        ["apis", group, version, rest @ ..] => parse_resource(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource_list(group: &str, version: &str) -> Route {
    Route::ResourceList { group: group.to_string(), version: version.to_string() }
}

fn parse_resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let own = |s: Option<&&str>| s.map(|s| (*s).to_string());
    // `/api/v1/namespaces/<ns>/status|finalize` are subresources of the namespace itself.
    let namespace_sub = group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize");
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() && !namespace_sub => (Some((*ns).to_string()), tail),
        _ => (None, rest),
    };
    if rest.is_empty() || rest.len() > 3 {
        return Route::Unknown;
    }
    Route::Resource(ResPath {
        group: group.to_string(),
        version: version.to_string(),
        plural: rest[0].to_string(),
        namespace,
        name: own(rest.get(1)),
        sub: own(rest.get(2)),
    })
}

fn classify(call: &Call) -> Verb {
    let named = matches!(&call.route, Route::Resource(r) if r.name.is_some());
    match call.method {
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH if call.content_type.as_deref().is_some_and(|c| c.contains("apply-patch")) => Verb::Apply,
        Method::PATCH => Verb::Patch,
        Method::DELETE if named => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ if named || !matches!(call.route, Route::Resource(_)) => Verb::Get,
        _ if matches!(call.query.get("watch").map(String::as_str), Some("true" | "1")) => Verb::Watch,
        _ => Verb::List,
    }
}

fn record_of(call: &Call, client: &str) -> RequestRecord {
    let res = match &call.route {
        Route::Resource(r) => Some(r),
        _ => None,
    };
    RequestRecord {
        client: client.to_string(),
        method: call.method.to_string(),
        path: call.path.clone(),
        query: call.query.clone(),
        verb: classify(call),
        resource: res.map(|r| Gvr::new(&r.group, &r.version, &r.plural)),
        namespace: res.and_then(|r| r.namespace.clone()),
        name: res.and_then(|r| r.name.clone()),
        subresource: res.and_then(|r| r.sub.clone()),
        content_type: call.content_type.clone(),
        user_agent: call.user_agent.clone(),
        field_manager: call.query.get("fieldManager").cloned(),
        force: call.query.get("force").is_some_and(|f| f == "true"),
        body: call.body.clone(),
        status: 0,
    }
}

fn dispatch(inner: &Inner, call: &Call, record: &RequestRecord) -> Response<ResponseBody> {
    if call.method == Method::GET
        && let Some((code, body)) = crate::lock(&inner.raw).get(&call.path)
    {
        return match body {
            crate::RawBody::Json(v) => json_response(*code, v),
            crate::RawBody::Text(t) => {
                response(*code, "text/plain; charset=utf-8", Full::new(Bytes::from(t.clone())).boxed_unsync())
            }
        };
    }
    let result = match &call.route {
        Route::Resource(res) => resource(inner, call, record, res),
        _ if call.method != Method::GET => Err(ApiError::new(405, "method not allowed on a discovery path")),
        route => discovery_doc(&crate::lock(&inner.state), route, &call.accept),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn discovery_doc(state: &State, route: &Route, accept: &str) -> Result<Response<ResponseBody>, ApiError> {
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let registry = &state.registry;
    let doc = match route {
        Route::Version => Some(discovery::version()),
        Route::CoreVersions if aggregated => Some(discovery::aggregated(registry, true)),
        Route::CoreVersions => Some(discovery::core_versions()),
        Route::GroupList if aggregated => Some(discovery::aggregated(registry, false)),
        Route::GroupList => Some(discovery::group_list(registry)),
        Route::Group(group) => discovery::group(registry, group),
        Route::ResourceList { group, version } => discovery::resource_list(registry, group, version),
        Route::Resource(_) | Route::Unknown => None,
    };
    doc.map(|d| json_response(200, &d)).ok_or_else(not_served)
}

fn not_served() -> ApiError {
    ApiError::new(404, "the server could not find the requested resource")
}

fn resource(
    inner: &Inner,
    call: &Call,
    record: &RequestRecord,
    res: &ResPath,
) -> Result<Response<ResponseBody>, ApiError> {
    let rt = crate::lock(&inner.state)
        .registry
        .lookup(&res.group, &res.version, &res.plural)
        .cloned()
        .ok_or_else(not_served)?;
    if !rt.namespaced && res.namespace.is_some() {
        return Err(not_served());
    }
    let sub = match res.sub.as_deref() {
        None => Sub::Main,
        Some("status") if rt.status_subresource => Sub::Status,
        Some("log") if rt.group.is_empty() && rt.plural == "pods" && record.verb == Verb::Get => {
            return pod_log(inner, call, res);
        }
        Some(_) => return Err(not_served()),
    };
    if call.query.contains_key("dryRun") {
        // Loud rather than silently persisting what the caller meant as a dry run.
        return Err(ApiError::bad_request("dryRun is not supported by the fake API server"));
    }
    let ns = res.namespace.as_deref().unwrap_or_default();
    let manager = call.query.get("fieldManager").map_or("unknown", String::as_str);
    let ctx = WriteCtx { manager, sub };
    let meta_only = call.accept.contains("as=PartialObjectMetadata");
    let name = res.name.as_deref().unwrap_or_default();
    let mut state = crate::lock(&inner.state);
    match record.verb {
        Verb::Get => Ok(json_response(200, &present(&state.get(&rt, ns, name)?, meta_only))),
        Verb::List => list(&state, &rt, res, call, meta_only),
        Verb::Watch => watch(&mut state, &rt, res, call, meta_only),
        Verb::Create if res.name.is_some() => Err(ApiError::new(405, "POST to a named resource is not supported")),
        Verb::Create if crate::review::is_review((&rt.group, &rt.plural)) => {
            let answer = crate::lock(&inner.reviews).answer((&rt.group, &rt.plural), &body(call)?)?;
            Ok(json_response(201, &answer))
        }
        Verb::Create => {
            let body = body(call)?;
            let body_ns = body.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
            let ns = if ns.is_empty() { body_ns.to_string() } else { ns.to_string() };
            Ok(json_response(201, &state.create(&rt, &ns, body, ctx)?))
        }
        Verb::Update => Ok(json_response(200, &state.update(&rt, ns, name, body(call)?, ctx)?)),
        Verb::Patch => {
            let kind = patch_kind(call.content_type.as_deref())?;
            Ok(json_response(200, &state.patch(&rt, ns, name, kind, &patch_body(call)?, ctx)?))
        }
        Verb::Apply => {
            if !call.query.contains_key("fieldManager") {
                return Err(ApiError::bad_request("PATCH with apply-patch requires a fieldManager"));
            }
            let force = record.force;
            let (obj, created) = state.apply(&rt, ns, name, &body(call)?, ctx, force)?;
            Ok(json_response(if created { 201 } else { 200 }, &obj))
        }
        Verb::Delete => Ok(json_response(200, &state.delete(&rt, ns, name, &delete_opts(call))?)),
        Verb::DeleteCollection => delete_collection(&mut state, &rt, res, call),
    }
}

/// A JSON patch body (an array of operations).
fn patch_body(call: &Call) -> Result<Value, ApiError> {
    call.body
        .clone()
        .filter(|b| b.is_object() || b.is_array())
        .ok_or_else(|| ApiError::bad_request("a JSON patch body is required"))
}

fn body(call: &Call) -> Result<Value, ApiError> {
    call.body.clone().filter(Value::is_object).ok_or_else(|| ApiError::bad_request("a JSON object body is required"))
}

fn patch_kind(content_type: Option<&str>) -> Result<PatchKind, ApiError> {
    match content_type.unwrap_or_default() {
        ct if ct.contains("merge-patch+json") && ct.contains("strategic") => Ok(PatchKind::Strategic),
        ct if ct.contains("merge-patch+json") => Ok(PatchKind::Merge),
        ct if ct.contains("json-patch+json") => Ok(PatchKind::Json),
        ct => Err(ApiError::new(415, format!("the body of the request was in an unknown format: {ct}"))),
    }
}

fn delete_opts(call: &Call) -> DeleteOpts {
    let body = call.body.as_ref();
    let field = |path: &str| body.and_then(|b| b.pointer(path)).and_then(Value::as_str).map(str::to_string);
    let policy = call.query.get("propagationPolicy").cloned().or_else(|| field("/propagationPolicy"));
    DeleteOpts {
        orphan: policy.as_deref() == Some("Orphan"),
        precondition_uid: field("/preconditions/uid"),
        precondition_rv: field("/preconditions/resourceVersion"),
    }
}

fn selectors(call: &Call) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(call.query.get("labelSelector").map_or("", String::as_str))?;
    let fields = FieldSelector::parse(call.query.get("fieldSelector").map_or("", String::as_str))?;
    Ok((labels, fields))
}

fn list(
    state: &State,
    rt: &ResourceType,
    res: &ResPath,
    call: &Call,
    meta_only: bool,
) -> Result<Response<ResponseBody>, ApiError> {
    let (labels, fields) = selectors(call)?;
    let items: Vec<Value> = state
        .list(&rt.key(), res.namespace.as_deref(), &labels, &fields)
        .iter()
        .map(|o| present(o, meta_only))
        .collect();
    Ok(json_response(200, &list_doc(state, rt, items, meta_only)))
}

fn list_doc(state: &State, rt: &ResourceType, items: Vec<Value>, meta_only: bool) -> Value {
    let (api_version, kind) = if meta_only {
        ("meta.k8s.io/v1".to_string(), "PartialObjectMetadataList".to_string())
    } else {
        (rt.api_version(), format!("{}List", rt.kind))
    };
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": { "resourceVersion": state.resource_version().to_string() },
        "items": items,
    })
}

fn delete_collection(
    state: &mut State,
    rt: &ResourceType,
    res: &ResPath,
    call: &Call,
) -> Result<Response<ResponseBody>, ApiError> {
    let (labels, fields) = selectors(call)?;
    let opts = delete_opts(call);
    let victims = state.list(&rt.key(), res.namespace.as_deref(), &labels, &fields);
    let mut deleted = Vec::new();
    for obj in victims {
        let ns = obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        deleted.push(state.delete(rt, ns, name, &opts)?);
    }
    Ok(json_response(200, &list_doc(state, rt, deleted, false)))
}

fn watch(
    state: &mut State,
    rt: &ResourceType,
    res: &ResPath,
    call: &Call,
    meta_only: bool,
) -> Result<Response<ResponseBody>, ApiError> {
    let (labels, fields) = selectors(call)?;
    let start = match call.query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => {
            WatchStart::Now { initial_events_end: call.query.get("sendInitialEvents").is_some_and(|v| v == "true") }
        }
        Some(rv) => {
            WatchStart::After(rv.parse().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?)
        }
    };
    let timeout = call
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(DEFAULT_WATCH_TIMEOUT, Duration::from_secs);
    let filter = WatchFilter {
        key: rt.key(),
        api_version: rt.api_version(),
        kind: rt.kind.clone(),
        namespace: res.namespace.clone(),
        labels,
        fields,
        meta_only,
        bookmarks: call.query.get("allowWatchBookmarks").is_some_and(|v| v == "true"),
    };
    let rx = state.watch(filter, start);
    let events = futures::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(line)), rx))
    });
    let body = StreamBody::new(events.take_until(tokio::time::sleep(timeout)));
    Ok(response(200, "application/json", body.boxed_unsync()))
}

fn pod_log(inner: &Inner, call: &Call, res: &ResPath) -> Result<Response<ResponseBody>, ApiError> {
    let q = |k: &str| call.query.get(k).cloned();
    let req = LogRequest {
        namespace: res.namespace.clone().unwrap_or_default(),
        pod: res.name.clone().unwrap_or_default(),
        container: q("container"),
        previous: q("previous").is_some_and(|v| v == "true"),
        since_seconds: q("sinceSeconds").and_then(|v| v.parse().ok()),
        since_time: q("sinceTime"),
        tail_lines: q("tailLines").and_then(|v| v.parse().ok()),
        limit_bytes: q("limitBytes").and_then(|v| v.parse().ok()),
        timestamps: q("timestamps").is_some_and(|v| v == "true"),
    };
    let text = {
        let mut logs = crate::lock(&inner.logs);
        logs.requests.push(req.clone());
        logs.lookup(&req)?
    };
    let text = match text {
        Some(text) => logs::select(&text, req.tail_lines, req.limit_bytes),
        None => missing_log(inner, &req)?,
    };
    let len = text.len();
    let chunks = futures::stream::iter(
        (0..len)
            .step_by(CHUNK)
            .map(move |start| Ok::<_, Infallible>(Frame::data(text.slice(start..(start + CHUNK).min(len))))),
    );
    Ok(response(200, "text/plain", StreamBody::new(chunks).boxed_unsync()))
}

/// No stored log: empty for an existing pod (400 for `previous`), 404 when the pod does not exist either.
fn missing_log(inner: &Inner, req: &LogRequest) -> Result<Bytes, ApiError> {
    let state = crate::lock(&inner.state);
    let pods = ResourceType::namespaced("", "v1", "Pod", "pods");
    state.get(&pods, &req.namespace, &req.pod)?;
    if req.previous {
        return Err(ApiError::bad_request(format!(
            "previous terminated container \"{}\" in pod \"{}\" not found",
            req.container.as_deref().unwrap_or_default(),
            req.pod
        )));
    }
    Ok(Bytes::new())
}

fn response(code: u16, content_type: &'static str, body: ResponseBody) -> Response<ResponseBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_response(code: u16, body: &Value) -> Response<ResponseBody> {
    let bytes = Bytes::from(body.to_string());
    response(code, "application/json", Full::new(bytes).boxed_unsync())
}

fn error_response(err: &ApiError) -> Response<ResponseBody> {
    let mut resp = json_response(err.code, &err.to_status());
    *resp.status_mut() = err.status_code();
    resp
}
