//! TokenReview and SubjectAccessReview: create-only kinds whose answer the API server computes (who holds a
//! token, whether a user may do something) and never stores. Tests declare the tokens and the grants.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::ApiError;

/// `authentication.k8s.io` TokenReviews.
const TOKEN_REVIEWS: (&str, &str) = ("authentication.k8s.io", "tokenreviews");
/// `authorization.k8s.io` SubjectAccessReviews.
const SUBJECT_ACCESS_REVIEWS: (&str, &str) = ("authorization.k8s.io", "subjectaccessreviews");

/// Whether `(group, plural)` is a review kind, answered rather than stored.
pub(crate) fn is_review(kind: (&str, &str)) -> bool {
    kind == TOKEN_REVIEWS || kind == SUBJECT_ACCESS_REVIEWS
}

/// Who a token belongs to.
#[derive(Debug)]
struct Identity {
    user: String,
    groups: Vec<String>,
}

/// Known tokens and non-resource grants.
#[derive(Debug, Default)]
pub(crate) struct Reviews {
    tokens: BTreeMap<String, Identity>,
    /// (user or group, verb, path) allowed.
    grants: Vec<(String, String, String)>,
}

impl Reviews {
    pub(crate) fn add_token(&mut self, token: &str, user: &str, groups: &[&str]) {
        let identity = Identity { user: user.into(), groups: groups.iter().map(|g| g.to_string()).collect() };
        self.tokens.insert(token.into(), identity);
    }

    pub(crate) fn allow_non_resource(&mut self, subject: &str, verb: &str, path: &str) {
        self.grants.push((subject.into(), verb.into(), path.into()));
    }

    /// The answer to a create of a review kind (see [`is_review`]).
    pub(crate) fn answer(&self, kind: (&str, &str), body: &Value) -> Result<Value, ApiError> {
        if kind == TOKEN_REVIEWS {
            Ok(self.token_review(body))
        } else if kind == SUBJECT_ACCESS_REVIEWS {
            self.subject_access_review(body)
        } else {
            Err(ApiError::internal(format!("{}/{} is not a review kind", kind.0, kind.1)))
        }
    }

    fn token_review(&self, body: &Value) -> Value {
        let token = body.pointer("/spec/token").and_then(Value::as_str).unwrap_or_default();
        let status = match self.tokens.get(token) {
            Some(id) => json!({
                "authenticated": true,
                "user": {"username": id.user, "uid": format!("uid-{}", id.user), "groups": id.groups},
            }),
            None => json!({"authenticated": false, "error": "token not recognised"}),
        };
        // Like the API server: the spec (the token) is echoed back, the answer is in status.
        let mut answer = body.clone();
        answer["status"] = status;
        answer
    }

    fn subject_access_review(&self, body: &Value) -> Result<Value, ApiError> {
        let spec = body.get("spec").ok_or_else(|| ApiError::invalid("spec is required"))?;
        let Some(attrs) = spec.get("nonResourceAttributes") else {
            return Err(ApiError::invalid("the fake answers only nonResourceAttributes reviews"));
        };
        let user = spec.get("user").and_then(Value::as_str).unwrap_or_default();
        let groups: Vec<&str> =
            spec.get("groups").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
        let verb = attrs.get("verb").and_then(Value::as_str).unwrap_or_default();
        let path = attrs.get("path").and_then(Value::as_str).unwrap_or_default();
        let allowed = self
            .grants
            .iter()
            .any(|(subject, v, p)| (subject == user || groups.contains(&subject.as_str())) && v == verb && p == path);
        let mut answer = body.clone();
        answer["status"] = if allowed {
            json!({"allowed": true, "reason": "granted by the fake API server"})
        } else {
            json!({"allowed": false})
        };
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_token_authenticates_and_a_grant_allows() {
        let mut reviews = Reviews::default();
        reviews.add_token("t1", "system:serviceaccount:openshift-monitoring:prometheus-k8s", &["system:authenticated"]);
        reviews.allow_non_resource("system:authenticated", "get", "/metrics");
        let tr = reviews.answer(TOKEN_REVIEWS, &json!({"spec": {"token": "t1"}})).unwrap();
        assert_eq!(tr["status"]["authenticated"], true);
        let unknown = reviews.answer(TOKEN_REVIEWS, &json!({"spec": {"token": "t2"}})).unwrap();
        assert_eq!(unknown["status"]["authenticated"], false);
        let sar = json!({"spec": {"user": "u", "groups": ["system:authenticated"],
            "nonResourceAttributes": {"verb": "get", "path": "/metrics"}}});
        assert_eq!(reviews.answer(SUBJECT_ACCESS_REVIEWS, &sar).unwrap()["status"]["allowed"], true);
        let other = json!({"spec": {"user": "u", "nonResourceAttributes": {"verb": "get", "path": "/debug"}}});
        assert_eq!(reviews.answer(SUBJECT_ACCESS_REVIEWS, &other).unwrap()["status"]["allowed"], false);
        assert!(!is_review(("", "configmaps")));
        assert!(reviews.answer(("", "configmaps"), &json!({})).is_err());
    }
}
