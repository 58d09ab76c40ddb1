//! What is left of the in-process fake API server: TokenReviews and SubjectAccessReviews answered from the
//! tokens and grants a test declares, behind a real [`kube::Client`]. Everything else is answered `404`.
//!
//! Only `crates/operator/tests/suite/metrics_tls.rs` still uses it; its port to the real API server (which
//! answers reviews with its own authenticator and RBAC) is under way on another branch. Delete this module, and
//! its export in `lib.rs`, once that port is merged: every other test runs against [`crate::cluster`].

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

/// `authentication.k8s.io` TokenReviews.
const TOKEN_REVIEWS: (&str, &str) = ("authentication.k8s.io", "tokenreviews");
/// `authorization.k8s.io` SubjectAccessReviews.
const SUBJECT_ACCESS_REVIEWS: (&str, &str) = ("authorization.k8s.io", "subjectaccessreviews");

/// Who a token belongs to.
#[derive(Debug)]
struct Identity {
    user: String,
    groups: Vec<String>,
}

/// Which requests a fault applies to: a resource by group and plural.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    group: String,
    plural: String,
}

impl Matcher {
    /// Requests for `plural` of API group `group`.
    pub fn resource(group: &str, plural: &str) -> Self {
        Matcher { group: group.into(), plural: plural.into() }
    }

    fn matches(&self, path: &str) -> bool {
        path.starts_with(&format!("/apis/{}/", self.group)) && path.ends_with(&format!("/{}", self.plural))
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path without query.
    pub path: String,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
}

#[derive(Default)]
struct State {
    tokens: BTreeMap<String, Identity>,
    /// (user or group, verb, path) allowed.
    grants: Vec<(String, String, String)>,
    /// (matcher, remaining, status code).
    faults: Vec<(Matcher, usize, u16)>,
    requests: Vec<RequestRecord>,
}

/// The review-answering fake; cheap to clone (clones share state).
#[derive(Clone, Default)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
}

impl FakeApiServer {
    /// A fake that knows no token and grants nothing.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// TokenReviews of `token` answer `user` with `groups`.
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str]) {
        let identity = Identity { user: user.into(), groups: groups.iter().map(|g| g.to_string()).collect() };
        self.lock().tokens.insert(token.into(), identity);
    }

    /// SubjectAccessReviews allow `verb` on the non-resource URL `path` to `subject` (a user or a group).
    pub fn allow_non_resource(&self, subject: &str, verb: &str, path: &str) {
        self.lock().grants.push((subject.into(), verb.into(), path.into()));
    }

    /// The next `times` matching requests fail with `code`.
    pub fn fail_next(&self, times: usize, matcher: Matcher, code: u16) {
        self.lock().faults.push((matcher, times, code));
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.lock().requests.clone()
    }

    /// A real `kube::Client` talking to this fake. Must be called inside a tokio runtime.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let fake = fake.clone();
            async move {
                let (parts, body) = request.into_parts();
                let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let (code, answer) = fake.answer(parts.method.as_str(), parts.uri.path(), &bytes);
                let response = http::Response::builder()
                    .status(code)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from(answer.to_string())))
                    .unwrap_or_else(|e| panic!("a response: {e}"));
                Ok::<_, Infallible>(response)
            }
        });
        kube::Client::new(service, "default")
    }

    fn answer(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let body: Option<Value> = serde_json::from_slice(body).ok();
        let mut state = self.lock();
        state.requests.push(RequestRecord { method: method.into(), path: path.into(), body: body.clone() });
        if let Some(fault) = state.faults.iter_mut().find(|(m, remaining, _)| *remaining > 0 && m.matches(path)) {
            fault.1 -= 1;
            let code = fault.2;
            return (code, status(code, "Failure", &format!("injected failure ({code})")));
        }
        let body = body.unwrap_or(Value::Null);
        let review = |(group, plural): (&str, &str)| Matcher::resource(group, plural).matches(path);
        match method {
            "POST" if review(TOKEN_REVIEWS) => (201, state.token_review(body)),
            "POST" if review(SUBJECT_ACCESS_REVIEWS) => match state.subject_access_review(body) {
                Ok(answer) => (201, answer),
                Err(message) => (422, status(422, "Invalid", &message)),
            },
            _ => (404, status(404, "NotFound", &format!("the fake answers only reviews, not {method} {path}"))),
        }
    }
}

/// A `metav1.Status`.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "reason": reason, "message": message, "code": code})
}

impl State {
    fn token_review(&self, mut review: Value) -> Value {
        let token = review.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
        let status = match self.tokens.get(token) {
            Some(id) => json!({
                "authenticated": true,
                "user": {"username": id.user, "uid": format!("uid-{}", id.user), "groups": id.groups},
            }),
            None => json!({"authenticated": false, "error": "token not recognised"}),
        };
        // Like the API server: the spec (the token) is echoed back, the answer is in status.
        review["status"] = status;
        review
    }

    fn subject_access_review(&self, mut review: Value) -> Result<Value, String> {
        let spec = review.get("spec").ok_or("spec is required")?;
        let attrs = spec.get("nonResourceAttributes").ok_or("the fake answers only nonResourceAttributes reviews")?;
        let user = spec.get("user").and_then(Value::as_str).unwrap_or_default();
        let groups: Vec<&str> =
            spec.get("groups").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let verb = attrs.get("verb").and_then(Value::as_str).unwrap_or_default();
        let path = attrs.get("path").and_then(Value::as_str).unwrap_or_default();
        let allowed = self
            .grants
            .iter()
            .any(|(subject, v, p)| (subject == user || groups.contains(&subject.as_str())) && v == verb && p == path);
        review["status"] = if allowed {
            json!({"allowed": true, "reason": "granted by the fake API server"})
        } else {
            json!({"allowed": false})
        };
        Ok(review)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_known_token_authenticates_a_grant_allows_and_faults_fail() {
        use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
        use k8s_openapi::api::authorization::v1::{
            NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
        };
        use kube::api::{Api, PostParams};
        let fake = FakeApiServer::new();
        fake.add_token("t1", "system:serviceaccount:openshift-monitoring:prometheus-k8s", &["system:authenticated"]);
        fake.allow_non_resource("system:authenticated", "get", "/metrics");
        let reviews: Api<TokenReview> = Api::all(fake.client());
        let review = |token: &str| TokenReview {
            spec: TokenReviewSpec { token: Some(token.into()), ..Default::default() },
            ..Default::default()
        };
        let known = reviews.create(&PostParams::default(), &review("t1")).await.unwrap();
        assert_eq!(known.status.and_then(|s| s.authenticated), Some(true));
        let unknown = reviews.create(&PostParams::default(), &review("t2")).await.unwrap();
        assert_eq!(unknown.status.and_then(|s| s.authenticated), Some(false));
        let sars: Api<SubjectAccessReview> = Api::all(fake.client());
        let sar = |path: &str| SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some("u".into()),
                groups: Some(vec!["system:authenticated".into()]),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.into()),
                    verb: Some("get".into()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(sars.create(&PostParams::default(), &sar("/metrics")).await.unwrap().status.unwrap().allowed);
        assert!(!sars.create(&PostParams::default(), &sar("/debug")).await.unwrap().status.unwrap().allowed);
        fake.fail_next(1, Matcher::resource("authentication.k8s.io", "tokenreviews"), 503);
        let error = reviews.create(&PostParams::default(), &review("t1")).await.unwrap_err();
        assert!(matches!(&error, kube::Error::Api(s) if s.code == 503), "{error}");
        assert_eq!(fake.requests().len(), 5);
        assert_eq!(fake.requests()[0].body.as_ref().unwrap()["spec"]["token"], "t1");
    }
}
