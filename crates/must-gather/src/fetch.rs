//! Requests to the API server: each one under a time limit, recorded in `gather-debug.log` (method, path,
//! duration, outcome) and counted. Only paths and query parameters are recorded, never headers, so the
//! client's bearer token cannot reach the log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::AsyncBufRead;
use serde_json::Value;

/// Page size of list requests (the API server paginates with `limit` and `continue`).
pub const PAGE_SIZE: u32 = 500;

/// `User-Agent` of every request, so the API server's audit log and request metrics name the collector.
pub const USER_AGENT: &str = concat!("cma-must-gather/", env!("CARGO_PKG_VERSION"));

/// The `reason` kube gives an error answer whose body is not a Kubernetes `Status` (plain text from the
/// aggregation proxy, HTML from a load balancer): the HTTP reason phrase says more.
const KUBE_UNPARSED_REASON: &str = "Failed to parse error data";

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The API server answered with an error status.
    #[error("{code} {reason}: {message}")]
    Api {
        /// HTTP status code.
        code: u16,
        /// `reason` of the Status.
        reason: String,
        /// `message` of the Status.
        message: String,
    },
    /// No answer within the time limit.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The request could not be sent or its answer not read.
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not the JSON expected.
    #[error("cannot decode the answer: {0}")]
    Decode(String),
}

impl FetchError {
    /// 404: the object or the resource type does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::Api { code: 404, .. })
    }

    /// 403: RBAC denied the request.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, FetchError::Api { code: 403, .. })
    }

    /// Whether the server answered at all (as opposed to a timeout or a connection failure).
    pub fn server_answered(&self) -> bool {
        matches!(self, FetchError::Api { .. } | FetchError::Decode(_))
    }
}

impl From<kube::Error> for FetchError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => {
                let reason = if status.reason.is_empty() || status.reason == KUBE_UNPARSED_REASON {
                    http::StatusCode::from_u16(status.code)
                        .ok()
                        .and_then(|c| c.canonical_reason())
                        .unwrap_or("error")
                        .to_string()
                } else {
                    status.reason.clone()
                };
                FetchError::Api { code: status.code, reason, message: status.message.trim().to_string() }
            }
            kube::Error::SerdeError(e) => FetchError::Decode(e.to_string()),
            other => FetchError::Transport(other.to_string()),
        }
    }
}

/// Request counters for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests sent.
    pub total: usize,
    /// Requests answered successfully.
    pub ok: usize,
    /// 404 answers (absent objects, resource types not served).
    pub not_found: usize,
    /// 403 answers.
    pub forbidden: usize,
    /// Every other failure (other error statuses, timeouts, transport).
    pub failed: usize,
    /// Failures without any answer from the server (timeouts, connection errors).
    pub unreachable: usize,
}

/// `gather-debug.log`: one line per request, written as it completes (so a killed run still leaves it).
#[derive(Clone)]
pub struct DebugLog {
    inner: Arc<Mutex<DebugInner>>,
}

struct DebugInner {
    out: Option<BufWriter<File>>,
    counts: Counts,
    failures: Vec<String>,
    redactions: std::collections::BTreeMap<crate::redact::Rule, usize>,
    scrubber: crate::redact::Scrubber,
}

impl std::fmt::Debug for DebugLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugLog").field("counts", &self.counts()).finish_non_exhaustive()
    }
}

impl DebugLog {
    /// A log written to `path` (created or truncated).
    pub fn create(path: &Path, scrubber: crate::redact::Scrubber) -> std::io::Result<Self> {
        let out = BufWriter::new(File::create(path)?);
        Ok(Self {
            inner: Arc::new(Mutex::new(DebugInner {
                out: Some(out),
                counts: Counts::default(),
                failures: Vec::new(),
                redactions: std::collections::BTreeMap::new(),
                scrubber,
            })),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DebugInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes a free-form line (run header, phase changes), scrubbed like everything else; a line break
    /// inside `text` (a multi-line error body) is written as `\n` so each entry stays one line.
    pub fn note(&self, text: &str) {
        let line = format!("{} {}\n", jiff::Timestamp::now(), text.replace('\n', "\\n"));
        let mut inner = self.lock();
        let (line, rules) = inner.scrubber.scrub_bytes(line.as_bytes());
        for rule in rules {
            *inner.redactions.entry(rule).or_default() += 1;
        }
        if let Some(out) = inner.out.as_mut() {
            // A full disk shows up again when the files are written; the log is best effort.
            let _ = out.write_all(&line).and_then(|()| out.flush());
        }
    }

    /// Records one request.
    pub fn request(&self, what: &str, started: Instant, outcome: Result<&str, &FetchError>) {
        let elapsed = started.elapsed();
        {
            let mut inner = self.lock();
            if let Err(e) = outcome
                && !e.is_not_found()
            {
                let line = format!("{what}: {e}");
                let line = inner.scrubber.scrub_bytes(line.as_bytes()).0;
                inner.failures.push(String::from_utf8_lossy(&line).into_owned());
            }
            let c = &mut inner.counts;
            c.total += 1;
            match outcome {
                Ok(_) => c.ok += 1,
                Err(e) if e.is_not_found() => c.not_found += 1,
                Err(e) if e.is_forbidden() => c.forbidden += 1,
                Err(e) => {
                    c.failed += 1;
                    if !e.server_answered() {
                        c.unreachable += 1;
                    }
                }
            }
        }
        let result = match outcome {
            Ok(detail) => format!("ok {detail}"),
            Err(e) => format!("ERROR {e}"),
        };
        self.note(&format!("{what} {}ms {result}", elapsed.as_millis()));
    }

    /// Failed requests so far (404s excluded: absent objects are findings, not failures).
    pub fn failures(&self) -> Vec<String> {
        self.lock().failures.clone()
    }

    /// Lines of the log that were scrubbed, for `redactions.txt`.
    pub fn redactions(&self, file: &str) -> Vec<crate::redact::Redaction> {
        self.lock()
            .redactions
            .iter()
            .map(|(rule, n)| crate::redact::Redaction {
                file: file.to_string(),
                object: "-".into(),
                field: format!("{n} line(s)"),
                rule: *rule,
            })
            .collect()
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.lock().counts
    }

    /// Flushes and closes the file.
    pub fn close(&self) -> std::io::Result<()> {
        match self.lock().out.take() {
            Some(mut out) => out.flush(),
            None => Ok(()),
        }
    }
}

/// Sends requests with a time limit each and records them.
#[derive(Clone)]
pub struct Fetcher {
    client: kube::Client,
    timeout: Duration,
    log: DebugLog,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// `path?k=v&...` with the query encoded.
pub fn url(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

fn get_request(url: &str) -> Result<http::Request<Vec<u8>>, FetchError> {
    http::Request::get(url)
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Vec::new())
        .map_err(|e| FetchError::Transport(format!("cannot build the request for {url}: {e}")))
}

impl Fetcher {
    /// A fetcher with this per-request time limit.
    pub fn new(client: kube::Client, timeout: Duration, log: DebugLog) -> Self {
        Self { client, timeout, log }
    }

    /// The per-request time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The debug log requests are recorded in.
    pub fn log(&self) -> &DebugLog {
        &self.log
    }

    fn record<T>(
        &self,
        what: &str,
        started: Instant,
        result: &Result<T, FetchError>,
        detail: impl FnOnce(&T) -> String,
    ) {
        match result {
            Ok(v) => self.log.request(what, started, Ok(&detail(v))),
            Err(e) => self.log.request(what, started, Err(e)),
        }
    }

    /// GET of one JSON document (an object, a discovery document).
    pub async fn get(&self, path: &str) -> Result<Value, FetchError> {
        self.get_within(path, self.timeout).await
    }

    /// [`Fetcher::get`] with another time limit.
    pub async fn get_within(&self, path: &str, timeout: Duration) -> Result<Value, FetchError> {
        let started = Instant::now();
        let result = self.get_once(path, timeout).await;
        self.record(&format!("GET {path}"), started, &result, |(_, len)| format!("{len} bytes"));
        result.map(|(v, _)| v)
    }

    async fn get_once(&self, url: &str, timeout: Duration) -> Result<(Value, usize), FetchError> {
        let request = get_request(url)?;
        let text = tokio::time::timeout(timeout, self.client.request_text(request))
            .await
            .map_err(|_| FetchError::Timeout(timeout))??;
        let value = serde_json::from_str(&text).map_err(|e| FetchError::Decode(e.to_string()))?;
        Ok((value, text.len()))
    }

    /// GET of a collection, following `continue` tokens; returns the list with every page's items.
    pub async fn list(&self, path: &str, query: &[(&str, String)]) -> Result<Value, FetchError> {
        let mut merged: Option<Value> = None;
        let mut token: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", PAGE_SIZE.to_string()));
            if let Some(t) = &token {
                q.push(("continue", t.clone()));
            }
            let url = url(path, &q);
            let started = Instant::now();
            let page = self.get_once(&url, self.timeout).await;
            self.record(&format!("GET {url}"), started, &page, |(v, len)| {
                let items = v.get("items").and_then(Value::as_array).map_or(0, Vec::len);
                format!("{items} items, {len} bytes")
            });
            let (mut page, _) = page?;
            token = page
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            match merged.as_mut() {
                None => merged = Some(page),
                Some(all) => {
                    let items =
                        page.get_mut("items").and_then(Value::as_array_mut).map(std::mem::take).unwrap_or_default();
                    if let Some(list) = all.get_mut("items").and_then(Value::as_array_mut) {
                        list.extend(items);
                    }
                }
            }
            if token.is_none() {
                break;
            }
        }
        let mut list = merged.unwrap_or(Value::Null);
        if let Some(meta) = list.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("continue");
            meta.remove("remainingItemCount");
        }
        Ok(list)
    }

    /// Opens a streamed GET (pod logs); the caller reads it under [`Fetcher::timeout`] and records it with
    /// [`DebugLog::request`].
    pub async fn stream(&self, url: &str) -> Result<impl AsyncBufRead + Unpin + use<>, FetchError> {
        let request = get_request(url)?;
        let reader = tokio::time::timeout(self.timeout, self.client.request_stream(request))
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))??;
        Ok(Box::pin(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_text_error_answer_is_recorded_with_its_status_and_body() {
        // What kube makes of the aggregation proxy's `503` with the text body `service unavailable`.
        let status = kube::core::Status::failure("service unavailable\n", KUBE_UNPARSED_REASON).with_code(503);
        let e = FetchError::from(kube::Error::Api(status.boxed()));
        assert_eq!(e.to_string(), "503 Service Unavailable: service unavailable");
        assert!(e.server_answered());
        // A Kubernetes Status keeps its own reason.
        let status = kube::core::Status::failure("pods is forbidden", "Forbidden").with_code(403);
        assert_eq!(FetchError::from(kube::Error::Api(status.boxed())).to_string(), "403 Forbidden: pods is forbidden");
    }

    #[test]
    fn requests_name_the_collector_and_its_version() {
        let request = get_request("/api/v1/pods").unwrap();
        assert_eq!(request.headers()[http::header::USER_AGENT], USER_AGENT);
        assert_eq!(USER_AGENT, format!("cma-must-gather/{}", env!("CARGO_PKG_VERSION")));
    }
}
