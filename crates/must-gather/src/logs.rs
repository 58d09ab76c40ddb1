//! Pod logs, streamed from the API server to disk line by line through the scrubber: memory stays the
//! same whatever the size of the logs.

use std::path::Path;
use std::time::Instant;

use futures::AsyncBufReadExt;
use tokio::io::AsyncWriteExt;

use crate::collect::LogJob;
use crate::fetch::{FetchError, Fetcher, url};
use crate::options::LogSince;
use crate::redact::{Redaction, Scrubber};

/// Longest line kept whole; longer lines are scrubbed in pieces of this size.
pub const MAX_LINE: usize = 1 << 20;

/// Output buffered before a write.
const WRITE_BUFFER: usize = 256 * 1024;

/// What one log stream produced.
#[derive(Debug, Clone, Default)]
pub struct LogResult {
    /// The file written, relative to the root.
    pub path: String,
    /// Bytes received.
    pub bytes: u64,
    /// Redactions made, one entry per rule (with the number of lines in `field`).
    pub redactions: Vec<Redaction>,
    /// Why the stream ended early (the part received is kept).
    pub error: Option<FetchError>,
}

/// The URL of a container's log.
pub fn log_url(job: &LogJob, since: Option<&LogSince>) -> String {
    let mut query = vec![("container", job.container.clone()), ("timestamps", "true".to_string())];
    if job.previous {
        query.push(("previous", "true".to_string()));
    }
    if let Some(since) = since {
        let (k, v) = since.query();
        query.push((k, v));
    }
    url(&format!("/api/v1/namespaces/{}/pods/{}/log", job.namespace, job.pod), &query)
}

/// Streams one container log to `root/rel`, scrubbing every line; records the request in the debug log.
/// `Err` when the log could not be opened (no file is written); on a timeout or a broken stream the part
/// received so far is kept and [`LogResult::error`] says why it ended.
pub async fn stream_log(
    fetcher: &Fetcher,
    scrubber: &Scrubber,
    job: &LogJob,
    since: Option<&LogSince>,
    root: &Path,
    rel: &str,
) -> Result<LogResult, FetchError> {
    let url = log_url(job, since);
    let started = Instant::now();
    let result = copy(fetcher, scrubber, &url, root, rel, job).await;
    let what = format!("GET {url}");
    match &result {
        Ok(LogResult { bytes, error: Some(e), .. }) => {
            let e = FetchError::Transport(format!("{e} (partial log kept: {bytes} bytes)"));
            fetcher.log().request(&what, started, Err(&e));
        }
        Ok(r) => {
            let lines: usize = r.redactions.len();
            let detail = format!("{} bytes streamed, {lines} redaction rule(s) applied", r.bytes);
            fetcher.log().request(&what, started, Ok(&detail));
        }
        Err(e) => fetcher.log().request(&what, started, Err(e)),
    }
    result
}

async fn copy(
    fetcher: &Fetcher,
    scrubber: &Scrubber,
    url: &str,
    root: &Path,
    rel: &str,
    job: &LogJob,
) -> Result<LogResult, FetchError> {
    let deadline = tokio::time::Instant::now() + fetcher.timeout();
    let mut reader = fetcher.stream(url).await?;
    let path = crate::output::full_path(root, rel);
    let io = |e: std::io::Error| FetchError::Transport(format!("cannot write {rel}: {e}"));
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
    }
    let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
    let mut log = scrubber.for_log();
    let mut line: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(WRITE_BUFFER + MAX_LINE);
    let mut bytes = 0u64;
    let mut error = None;
    loop {
        let chunk = match tokio::time::timeout_at(deadline, reader.fill_buf()).await {
            Err(_) => {
                error = Some(FetchError::Timeout(fetcher.timeout()));
                break;
            }
            Ok(Err(e)) => {
                error = Some(FetchError::Transport(format!("log stream broke: {e}")));
                break;
            }
            Ok(Ok(chunk)) => chunk,
        };
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        bytes += len as u64;
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if line.is_empty() {
                log.line(&rest[..=i], &mut out);
            } else {
                line.extend_from_slice(&rest[..=i]);
                log.line(&line, &mut out);
                line.clear();
            }
            rest = &rest[i + 1..];
        }
        line.extend_from_slice(rest);
        if line.len() >= MAX_LINE {
            log.line(&line, &mut out);
            line.clear();
        }
        reader.consume_unpin(len);
        if out.len() >= WRITE_BUFFER {
            file.write_all(&out).await.map_err(io)?;
            out.clear();
        }
    }
    if !line.is_empty() {
        log.line(&line, &mut out);
    }
    file.write_all(&out).await.map_err(io)?;
    file.flush().await.map_err(io)?;
    let object = format!("Pod {}/{} container {}", job.namespace, job.pod, job.container);
    let redactions = log
        .counts()
        .iter()
        .map(|(rule, n)| Redaction {
            file: rel.to_string(),
            object: object.clone(),
            field: format!("{n} line(s)"),
            rule: *rule,
        })
        .collect();
    Ok(LogResult { path: rel.to_string(), bytes, redactions, error })
}
