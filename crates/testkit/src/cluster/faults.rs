//! Faults a real API server cannot produce on demand (a 5xx or a conflict at a precise moment, a request that
//! never gets an answer): a tower layer in the client that answers chosen requests itself, with a
//! `metav1.Status` body, or holds them unanswered, instead of sending them. Everything else goes to the real
//! server.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::json;
use tower::{BoxError, Layer, Service};

/// Which requests a fault applies to.
#[derive(Clone, Debug, Default)]
pub struct RequestMatch {
    method: Option<http::Method>,
    path_contains: Vec<String>,
    path_exact: Option<String>,
    query_contains: Vec<String>,
}

impl RequestMatch {
    /// Requests with this method (`PATCH` is what server-side apply uses).
    pub fn method(mut self, method: http::Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Requests whose path contains `part` (for example `/deployments/keda-operator`).
    pub fn path(mut self, part: &str) -> Self {
        self.path_contains.push(part.to_string());
        self
    }

    /// Requests to exactly this path (for example `/api/v1/namespaces/keda`, not what lies below it).
    pub fn exact_path(mut self, path: &str) -> Self {
        self.path_exact = Some(path.to_string());
        self
    }

    /// Requests whose query contains `part` (for example `fieldManager=cma-operator`).
    pub fn query(mut self, part: &str) -> Self {
        self.query_contains.push(part.to_string());
        self
    }

    fn matches<B>(&self, request: &Request<B>) -> bool {
        let uri = request.uri();
        let query = uri.query().unwrap_or_default();
        self.method.as_ref().is_none_or(|m| m == request.method())
            && self.path_contains.iter().all(|p| uri.path().contains(p.as_str()))
            && self.path_exact.as_ref().is_none_or(|p| uri.path() == p)
            && self.query_contains.iter().all(|q| query.contains(q.as_str()))
    }
}

/// What a fault does with a request.
#[derive(Clone, Debug)]
enum Action {
    /// Answers with this status code, reason and message.
    Answer { code: u16, reason: String, message: String },
    /// Never answers.
    Hang,
}

#[derive(Debug)]
struct Rule {
    matcher: RequestMatch,
    remaining: usize,
    action: Action,
}

/// Shared fault rules; clone it into the layer and keep a handle in the test.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
    hits: Arc<Mutex<usize>>,
}

impl Faults {
    /// No faults yet.
    pub fn new() -> Self {
        Faults::default()
    }

    /// Answers the next `times` matching requests with `code`, `reason` and `message` instead of sending them.
    pub fn fail_next(&self, times: usize, matcher: RequestMatch, code: u16, reason: &str, message: &str) {
        let action = Action::Answer { code, reason: reason.into(), message: message.into() };
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Rule {
            matcher,
            remaining: times,
            action,
        });
    }

    /// Never answers the next `times` matching requests (nor sends them): a server or network that hangs; the
    /// caller's own time limit ends the wait.
    pub fn hang_next(&self, times: usize, matcher: RequestMatch) {
        self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Rule {
            matcher,
            remaining: times,
            action: Action::Hang,
        });
    }

    /// How many requests were answered by a fault so far.
    pub fn hits(&self) -> usize {
        *self.hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take<B>(&self, request: &Request<B>) -> Option<Action> {
        let mut rules = self.rules.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let rule = rules.iter_mut().find(|r| r.remaining > 0 && r.matcher.matches(request))?;
        rule.remaining -= 1;
        *self.hits.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        Some(rule.action.clone())
    }
}

impl<S> Layer<S> for Faults {
    type Service = FaultService<S>;

    fn layer(&self, inner: S) -> FaultService<S> {
        FaultService { inner, faults: self.clone() }
    }
}

/// The service [`Faults`] wraps around a client's stack.
#[derive(Clone)]
pub struct FaultService<S> {
    inner: S,
    faults: Faults,
}

/// The response body type of kube's client stack.
type DynBody = Box<dyn http_body::Body<Data = Bytes, Error = BoxError> + Send + Unpin>;

impl<S> Service<Request<Body>> for FaultService<S>
where
    S: Service<Request<Body>, Response = Response<DynBody>, Error = BoxError> + Send,
    S::Future: Send + 'static,
{
    type Response = Response<DynBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<DynBody>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let (code, reason, message) = match self.faults.take(&request) {
            None => return Box::pin(self.inner.call(request)),
            Some(Action::Hang) => return Box::pin(futures::future::pending()),
            Some(Action::Answer { code, reason, message }) => (code, reason, message),
        };
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code,
        })
        .to_string();
        Box::pin(async move {
            let body: DynBody = Box::new(http_body_util::Full::new(Bytes::from(body)).map_err(|e| match e {}));
            Response::builder()
                .status(code)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body)
                .map_err(BoxError::from)
        })
    }
}
