//! Who may read `/metrics` over HTTPS: the bearer token is checked with a TokenReview and the caller's right
//! to `get` the non-resource URL `/metrics` with a SubjectAccessReview, as the API server's own `/metrics`
//! is guarded. The cluster monitoring Prometheus (`prometheus-k8s`) already holds that right cluster-wide.
//! Decisions are cached for a minute by a hash of the token, so a scrape every 30 s costs no API requests
//! in steady state. Tokens never reach a log line, an error or the cache in clear.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::Client;
use kube::api::{Api, PostParams};
use sha2::{Digest, Sha256};

/// The path and verb a scraper must be allowed.
const PATH: &str = "/metrics";
const VERB: &str = "get";
/// How long a decision is reused.
const TTL: Duration = Duration::from_secs(60);
/// Most tokens remembered at once (a handful of scrapers in practice; the bound keeps memory flat).
const CAPACITY: usize = 64;

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The caller may read the metrics.
    Allowed,
    /// No bearer token, or one the API server does not recognise (HTTP 401).
    Unauthenticated,
    /// A known user without the right to `get /metrics` (HTTP 403); holds the user name.
    Forbidden(String),
}

/// Why access could not be decided (HTTP 500; not cached, the next scrape asks again).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The TokenReview request failed.
    #[error("TokenReview failed: {0}")]
    TokenReview(kube::Error),
    /// The SubjectAccessReview request failed.
    #[error("SubjectAccessReview failed: {0}")]
    SubjectAccessReview(kube::Error),
}

/// Authenticates and authorizes scrapers against the API server.
pub struct MetricsAccess {
    client: Client,
    cache: Mutex<HashMap<[u8; 32], (Decision, Instant)>>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess").finish_non_exhaustive()
    }
}

impl MetricsAccess {
    /// Checks callers with `client` (the operator's own identity).
    pub fn new(client: Client) -> Self {
        Self { client, cache: Mutex::new(HashMap::new()) }
    }

    /// Decides for a request carrying this `Authorization` header value (if any).
    pub async fn check(&self, authorization: Option<&str>) -> Result<Decision, AccessError> {
        let Some(token) = authorization.and_then(bearer_token) else {
            return Ok(Decision::Unauthenticated);
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(decision) = self.cached(&key) {
            return Ok(decision);
        }
        let decision = self.review(token).await?;
        self.remember(key, decision.clone());
        Ok(decision)
    }

    async fn review(&self, token: &str) -> Result<Decision, AccessError> {
        let review = TokenReview {
            spec: TokenReviewSpec { token: Some(token.to_string()), ..Default::default() },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(AccessError::TokenReview)?;
        let status = reviewed.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(user)) => user,
            _ => return Ok(Decision::Unauthenticated),
        };
        let name = user.username.clone().unwrap_or_default();
        let access = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(PATH.into()),
                    verb: Some(VERB.into()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let answered = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &access)
            .await
            .map_err(AccessError::SubjectAccessReview)?;
        let allowed = answered.status.is_some_and(|s| s.allowed);
        Ok(if allowed { Decision::Allowed } else { Decision::Forbidden(name) })
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Decision> {
        let cache = self.cache.lock().ok()?;
        cache.get(key).filter(|(_, at)| at.elapsed() < TTL).map(|(d, _)| d.clone())
    }

    fn remember(&self, key: [u8; 32], decision: Decision) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CAPACITY {
            cache.retain(|_, (_, at)| at.elapsed() < TTL);
        }
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(key, (decision, Instant::now()));
    }
}

/// The token of a `Bearer` authorization (scheme case-insensitive, RFC 7235).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
