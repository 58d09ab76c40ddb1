//! Who may read `/metrics`: the bearer token is checked with a TokenReview and the caller's right to `get`
//! the non-resource URL `/metrics` with a SubjectAccessReview, as the API server's own `/metrics` is
//! guarded. The cluster monitoring Prometheus (`prometheus-k8s`) already holds that right cluster-wide.
//!
//! Any pod that reaches the port can send tokens, so the API requests a caller can cause are bounded:
//! - decisions about authenticated callers are cached for a minute by a hash of the token (a scrape every
//!   30 s costs no API request in steady state), at most [`KNOWN_CAPACITY`] of them, oldest evicted first;
//! - tokens the API server does not recognise are cached apart for [`UNKNOWN_TTL`], at most
//!   [`UNKNOWN_CAPACITY`] of them, so a flood of junk tokens never evicts the scrapers' decisions;
//! - reviews of tokens never seen authenticated are rate limited ([`REVIEW_BURST`], then
//!   [`REVIEW_RATE`] per second); over the limit the caller is asked to retry (HTTP 429) without a review.
//!
//! Tokens never reach a log line, an error or the cache in clear.

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
/// How long a decision about an authenticated caller is reused.
pub const KNOWN_TTL: Duration = Duration::from_secs(60);
/// Most authenticated tokens remembered at once (a handful of scrapers in practice).
pub const KNOWN_CAPACITY: usize = 64;
/// How long an unrecognised token is answered 401 without asking again.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(10);
/// Most unrecognised tokens remembered at once.
pub const UNKNOWN_CAPACITY: usize = 256;
/// Reviews of new tokens allowed at once before the rate limit applies.
pub const REVIEW_BURST: f64 = 10.0;
/// Reviews of new tokens allowed per second after the burst.
pub const REVIEW_RATE: f64 = 1.0;

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The caller may read the metrics.
    Allowed,
    /// No bearer token, or one the API server does not recognise (HTTP 401).
    Unauthenticated,
    /// A known user without the right to `get /metrics` (HTTP 403); holds the user name.
    Forbidden(String),
    /// Too many new tokens lately: not reviewed now (HTTP 429).
    Throttled,
}

/// Why access could not be decided (HTTP 500; not cached, the next scrape asks again).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The TokenReview request failed.
    #[error("TokenReview failed: {}", crate::errors::describe(.0))]
    TokenReview(kube::Error),
    /// The SubjectAccessReview request failed.
    #[error("SubjectAccessReview failed: {}", crate::errors::describe(.0))]
    SubjectAccessReview(kube::Error),
}

/// A token's hash.
type Key = [u8; 32];

/// Decisions by token hash, each with when it was made; bounded, the oldest evicted first.
#[derive(Default)]
struct Decisions(HashMap<Key, (Decision, Instant)>);

impl Decisions {
    fn get(&self, key: &Key, ttl: Duration) -> Option<Decision> {
        self.0.get(key).filter(|(_, at)| at.elapsed() < ttl).map(|(d, _)| d.clone())
    }

    fn insert(&mut self, key: Key, decision: Decision, capacity: usize) {
        if !self.0.contains_key(&key) && self.0.len() >= capacity {
            // A linear scan: the maps hold a few hundred entries at most.
            if let Some(oldest) = self.0.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                self.0.remove(&oldest);
            }
        }
        self.0.insert(key, (decision, Instant::now()));
    }

    fn remove(&mut self, key: &Key) {
        self.0.remove(key);
    }
}

/// A token bucket: `burst` reviews at once, refilled at `rate` per second.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * REVIEW_RATE).min(REVIEW_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct State {
    /// Decisions about authenticated callers (allowed or forbidden). Kept past [`KNOWN_TTL`] until evicted:
    /// a token once authenticated is reviewed again without the rate limit.
    known: Decisions,
    /// Tokens the API server did not recognise.
    unknown: Decisions,
    reviews: Bucket,
}

/// Authenticates and authorizes scrapers against the API server.
pub struct MetricsAccess {
    client: Client,
    state: Mutex<State>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess").finish_non_exhaustive()
    }
}

/// What the cache says about a token.
enum Cached {
    Fresh(Decision),
    /// Authenticated before, but the decision is too old to reuse: review again, without the rate limit.
    Stale,
    Unseen,
}

impl MetricsAccess {
    /// Checks callers with `client` (the operator's own identity).
    pub fn new(client: Client) -> Self {
        let state = State {
            known: Decisions::default(),
            unknown: Decisions::default(),
            reviews: Bucket { tokens: REVIEW_BURST, at: Instant::now() },
        };
        Self { client, state: Mutex::new(state) }
    }

    /// Decides for a request carrying this `Authorization` header value (if any).
    pub async fn check(&self, authorization: Option<&str>) -> Result<Decision, AccessError> {
        let Some(token) = authorization.and_then(bearer_token) else {
            return Ok(Decision::Unauthenticated);
        };
        let key: Key = Sha256::digest(token.as_bytes()).into();
        match self.cached(&key) {
            Cached::Fresh(decision) => return Ok(decision),
            Cached::Stale => {}
            Cached::Unseen => {
                if !self.state.lock().map(|mut s| s.reviews.take()).unwrap_or(false) {
                    return Ok(Decision::Throttled);
                }
            }
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

    fn cached(&self, key: &Key) -> Cached {
        let Ok(state) = self.state.lock() else {
            return Cached::Unseen;
        };
        if let Some(decision) = state.known.get(key, KNOWN_TTL) {
            return Cached::Fresh(decision);
        }
        if let Some(decision) = state.unknown.get(key, UNKNOWN_TTL) {
            return Cached::Fresh(decision);
        }
        if state.known.0.contains_key(key) { Cached::Stale } else { Cached::Unseen }
    }

    fn remember(&self, key: Key, decision: Decision) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match decision {
            Decision::Unauthenticated => {
                // A token that stopped authenticating (expired, its ServiceAccount deleted) is unknown now.
                state.known.remove(&key);
                state.unknown.insert(key, decision, UNKNOWN_CAPACITY);
            }
            Decision::Allowed | Decision::Forbidden(_) => state.known.insert(key, decision, KNOWN_CAPACITY),
            Decision::Throttled => {}
        }
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

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn a_full_cache_evicts_only_its_oldest_entry() {
        let mut decisions = Decisions::default();
        for n in 0..4 {
            decisions.insert(key(n), Decision::Unauthenticated, 4);
            std::thread::sleep(Duration::from_millis(2));
        }
        decisions.insert(key(9), Decision::Unauthenticated, 4);
        assert_eq!(decisions.0.len(), 4);
        assert!(decisions.get(&key(0), UNKNOWN_TTL).is_none(), "the oldest entry stayed");
        for n in [1, 2, 3, 9] {
            assert!(decisions.get(&key(n), UNKNOWN_TTL).is_some(), "entry {n} was evicted");
        }
    }

    #[test]
    fn the_review_budget_allows_a_burst_then_refills_slowly() {
        let mut bucket = Bucket { tokens: REVIEW_BURST, at: Instant::now() };
        let granted = (0..100).filter(|_| bucket.take()).count();
        // The burst, plus at most a refill or two while the loop ran.
        assert!((10..=12).contains(&granted), "{granted}");
        bucket.at -= Duration::from_secs(3);
        assert!(bucket.take() && bucket.take() && bucket.take(), "no refill after 3 s");
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
