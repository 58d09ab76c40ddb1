//! One run: find the installations, collect, redact, write the tree and the logs, then the archive.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use serde_json::Value;

use crate::archive;
use crate::collect::{self, Collected};
use crate::fetch::{Counts, DebugLog, Fetcher};
use crate::layout;
use crate::logs;
use crate::options::Options;
use crate::output::{self, Document, Output};
use crate::redact::{self, Redaction, Redactor, Scrubber};

/// Version of this collector, recorded in `gather-debug.log`.
pub const COLLECTOR_VERSION: &str = env!("CARGO_PKG_VERSION");
/// `version`: line 1 the product (our package), line 2 the installed version.
pub const VERSION_FILE: &str = "version";
/// `timestamp`: start and end of the run.
pub const TIMESTAMP_FILE: &str = "timestamp";
/// Every request with its duration and outcome.
pub const DEBUG_LOG_FILE: &str = "gather-debug.log";
/// What was redacted where (never the value).
pub const REDACTIONS_FILE: &str = "redactions.txt";

/// Why a run could not produce its output at all.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    /// The destination directory or a file in it could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The destination already holds files (an earlier run's): this run's would be mixed with them, and
    /// the archive would hold only some of what the folder shows.
    #[error(
        "{path} is not empty (it holds {entries}): a second run there would mix its files with the earlier ones. \
         Give an empty or new directory with --dest-dir, or move the earlier output away first"
    )]
    DestinationNotEmpty {
        /// The destination directory.
        path: PathBuf,
        /// A few of its entries, for the message.
        entries: String,
    },
    /// A document could not be serialised.
    #[error("cannot serialise {path}: {source}")]
    Serialise {
        /// Output file.
        path: String,
        /// Cause.
        source: serde_yaml::Error,
    },
    /// The archive could not be written (the tree is complete).
    #[error("the tree in {dir} is complete but {archive} could not be written: {source}")]
    Archive {
        /// Destination directory.
        dir: PathBuf,
        /// Archive file name.
        archive: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// The built-in redaction patterns did not compile (a bug).
    #[error("internal error in the redaction patterns: {0}")]
    Patterns(#[from] regex::Error),
    /// The writer task failed.
    #[error("the writer task failed: {0}")]
    Task(String),
}

/// How a run went, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything essential was collected (failures of other requests are recorded): exit code 0.
    Complete,
    /// The API server answered but something essential is missing: exit code 2.
    Partial,
    /// Nothing could be collected: exit code 1.
    Unreachable,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Root of the tree.
    pub dest_dir: PathBuf,
    /// The archive, when written.
    pub archive: Option<PathBuf>,
    /// Operator namespaces gathered.
    pub namespaces: Vec<String>,
    /// Installed version written to `version`.
    pub version: String,
    /// Request counters.
    pub counts: Counts,
    /// Files in the tree (archive excluded).
    pub files: usize,
    /// Container logs written.
    pub logs: usize,
    /// Bytes of logs received.
    pub log_bytes: u64,
    /// Lines in `redactions.txt`.
    pub redactions: usize,
    /// Essential requests that failed (what, why).
    pub missing_essentials: Vec<(String, String)>,
    /// Failed requests (request, error), as in `gather-debug.log`.
    pub failures: Vec<String>,
    /// Claims holding the metrics server's audit log (`namespace/claim`), which must-gather cannot read.
    pub audit_log_claims: Vec<String>,
}

impl Summary {
    /// Complete, partial or unreachable.
    pub fn outcome(&self) -> Outcome {
        if self.counts.ok == 0 {
            Outcome::Unreachable
        } else if self.missing_essentials.is_empty() {
            Outcome::Complete
        } else {
            Outcome::Partial
        }
    }

    /// 0 complete, 2 partial, 1 nothing collected.
    pub fn exit_code(&self) -> u8 {
        match self.outcome() {
            Outcome::Complete => 0,
            Outcome::Partial => 2,
            Outcome::Unreachable => 1,
        }
    }

    /// A few lines for stderr.
    pub fn report(&self) -> String {
        let c = &self.counts;
        let mut lines = vec![
            format!(
                "must-gather: {} in {}",
                match self.outcome() {
                    Outcome::Complete => "complete",
                    Outcome::Partial => "PARTIAL: essential data is missing",
                    Outcome::Unreachable => "FAILED: nothing could be collected from the API server",
                },
                self.dest_dir.display()
            ),
            format!("installations: {} (version {})", self.namespaces.join(", "), self.version),
            format!(
                "requests: {} ({} ok, {} not found, {} forbidden, {} failed of which {} unanswered)",
                c.total, c.ok, c.not_found, c.forbidden, c.failed, c.unreachable
            ),
            format!(
                "files: {}, container logs: {} ({} bytes), redactions: {} (see {REDACTIONS_FILE})",
                self.files, self.logs, self.log_bytes, self.redactions
            ),
        ];
        if let Some(a) = &self.archive {
            let size = std::fs::metadata(a).map(|m| m.len()).unwrap_or(0);
            lines.push(format!("archive: {} ({size} bytes)", a.display()));
        }
        for (what, why) in &self.missing_essentials {
            lines.push(format!("missing: {what}: {why}"));
        }
        for claim in &self.audit_log_claims {
            lines.push(format!(
                "not collected: the metrics server's audit log on claim {claim} (read it with a pod mounting the claim, see the README)"
            ));
        }
        const SHOWN: usize = 10;
        for f in self.failures.iter().take(SHOWN) {
            lines.push(format!("failed: {f}"));
        }
        if self.failures.len() > SHOWN {
            lines.push(format!("... {} more failed requests in {DEBUG_LOG_FILE}", self.failures.len() - SHOWN));
        }
        lines.join("\n")
    }
}

fn write_err(root: &Path, rel: &str) -> impl FnOnce(std::io::Error) -> GatherError {
    let path = output::full_path(root, rel);
    move |source| GatherError::Write { path, source }
}

/// Refuses a destination that holds anything: re-running into the same folder used to leave the earlier
/// run's files (logs of pods gone since, objects deleted since) beside this run's, indistinguishable from
/// them, while the archive held only this run's. Deleting what looks like an earlier run's output instead
/// would risk deleting a user's files when `--dest-dir` points at the wrong folder.
fn require_empty(root: &Path) -> Result<(), GatherError> {
    let read = std::fs::read_dir(root).map_err(|source| GatherError::Write { path: root.to_path_buf(), source })?;
    let mut names: Vec<String> =
        read.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    const SHOWN: usize = 3;
    let mut entries = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        entries.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    Err(GatherError::DestinationNotEmpty { path: root.to_path_buf(), entries })
}

/// Runs the whole gather with `client`, writing under `opts.dest_dir`, which must be empty or absent.
pub async fn gather(client: kube::Client, opts: &Options) -> Result<Summary, GatherError> {
    let root = opts.dest_dir.clone();
    std::fs::create_dir_all(&root).map_err(|source| GatherError::Write { path: root.clone(), source })?;
    require_empty(&root)?;
    let started_at = jiff::Timestamp::now();
    let started = Instant::now();
    let mut redactor = Redactor::new()?;
    for s in &opts.known_secrets {
        redactor.add_known(s);
    }
    let log =
        DebugLog::create(&root.join(DEBUG_LOG_FILE), redactor.scrubber()).map_err(write_err(&root, DEBUG_LOG_FILE))?;
    log.note(&format!(
        "cma-must-gather {COLLECTOR_VERSION}: package {}, per-request time limit {:?}, concurrency {}, logs since {}",
        opts.package,
        opts.timeout,
        opts.concurrency,
        opts.since.as_ref().map_or_else(|| "the beginning".to_string(), |s| format!("{}={}", s.query().0, s.query().1)),
    ));
    let fetcher = Fetcher::new(client, opts.timeout, log.clone());

    tracing::info!(package = %opts.package, "looking for installations");
    let inst = collect::find_installations(&fetcher, opts).await;
    for reason in &inst.reasons {
        log.note(&format!("installation: {reason}"));
    }
    // With a claim the audit log never reaches the container log; without one it is the metrics server's
    // standard output, collected with its container log.
    let audit_log_claims = collect::audit_log_claims(&inst);
    for claim in &audit_log_claims {
        log.note(&format!("the metrics server writes its audit log to claim {claim}: not collected"));
    }
    tracing::info!(namespaces = ?inst.namespaces, "gathering");
    let counts = log.counts();
    let unreachable = counts.total > 0 && counts.unreachable == counts.total;
    let collected = if unreachable {
        log.note("the API server did not answer any request: skipping the rest");
        tracing::error!("the API server did not answer any request");
        Collected::default()
    } else {
        collect::collect(&fetcher, opts, &inst).await
    };
    tracing::info!(
        files = collected.outputs.len(),
        logs = collected.logs.len(),
        elapsed_ms = started.elapsed().as_millis(),
        "collected objects, writing them and streaming logs"
    );

    // Structural redaction of every object first, so the scrubber knows every removed value.
    let mut outputs = collected.outputs;
    for out in &mut outputs {
        match &mut out.doc {
            Document::Object(v) => redactor.redact_object(&out.path, v),
            Document::List(list) => {
                if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
                    for item in items {
                        redactor.redact_object(&out.path, item);
                    }
                }
            }
            Document::Json(_) | Document::Text(_) => {}
        }
    }
    let scrubber = redactor.scrubber();
    log.note(&format!("redaction: {} values known, scrubbing every string and log line", redactor.known_len()));

    let writer = {
        let root = root.clone();
        let scrubber = scrubber.clone();
        tokio::task::spawn_blocking(move || write_outputs(&root, outputs, &scrubber))
    };
    let log_results = stream_logs(&fetcher, &scrubber, opts, &collected.logs, &root).await;
    let (object_redactions, mut written) = writer.await.map_err(|e| GatherError::Task(e.to_string()))??;
    redactor.record(object_redactions);
    let mut log_files = 0;
    let mut log_bytes = 0;
    for result in log_results.into_iter().flatten() {
        log_files += 1;
        log_bytes += result.bytes;
        written.insert(result.path);
        redactor.record(result.redactions);
    }
    written.extend([VERSION_FILE, TIMESTAMP_FILE, DEBUG_LOG_FILE, REDACTIONS_FILE].map(String::from));

    let version = collect::installed_version(&inst);
    let version_text = format!("{}\n{version}\n", opts.package);
    output::write(&root, VERSION_FILE, version_text.as_bytes()).map_err(write_err(&root, VERSION_FILE))?;
    let failures = log.failures();
    let counts = log.counts();
    log.note(&format!(
        "done in {}ms: {} requests, {} ok, {} not found, {} forbidden, {} failed",
        started.elapsed().as_millis(),
        counts.total,
        counts.ok,
        counts.not_found,
        counts.forbidden,
        counts.failed
    ));
    for f in &failures {
        log.note(&format!("failed: {f}"));
    }
    for (what, why) in &collected.missing_essentials {
        log.note(&format!("missing essential: {what}: {why}"));
    }
    let timestamp = format!("{started_at}\n{}\n", jiff::Timestamp::now());
    output::write(&root, TIMESTAMP_FILE, timestamp.as_bytes()).map_err(write_err(&root, TIMESTAMP_FILE))?;
    log.close().map_err(write_err(&root, DEBUG_LOG_FILE))?;
    redactor.record(log.redactions(DEBUG_LOG_FILE));
    let redactions = redactor.redactions();
    output::write(&root, REDACTIONS_FILE, redactions_text(&redactions).as_bytes())
        .map_err(write_err(&root, REDACTIONS_FILE))?;

    let mut files: Vec<PathBuf> = written.iter().map(|rel| output::full_path(Path::new(""), rel)).collect();
    files.sort();
    let archive = if opts.archive {
        tracing::info!("writing {}", archive::ARCHIVE_NAME);
        Some(archive::write_archive_of(&root, &files).map_err(|source| GatherError::Archive {
            dir: root.clone(),
            archive: archive::ARCHIVE_NAME,
            source,
        })?)
    } else {
        None
    };
    Ok(Summary {
        dest_dir: root,
        archive,
        namespaces: inst.namespaces,
        version,
        counts,
        files: files.len(),
        logs: log_files,
        log_bytes,
        redactions: redactions.len(),
        missing_essentials: collected.missing_essentials,
        failures,
        audit_log_claims,
    })
}

async fn stream_logs(
    fetcher: &Fetcher,
    scrubber: &Scrubber,
    opts: &Options,
    jobs: &[collect::LogJob],
    root: &Path,
) -> Vec<Option<logs::LogResult>> {
    futures::stream::iter(jobs.iter().map(|job| async move {
        let rel = layout::pod_log(&job.namespace, &job.pod, &job.container, job.previous);
        logs::stream_log(fetcher, scrubber, job, opts.since.as_ref(), root, &rel).await.ok()
    }))
    .buffer_unordered(opts.concurrency.max(1))
    .collect()
    .await
}

/// Scrubs and writes every document; returns the scrubbing pass's redactions and the files written.
fn write_outputs(
    root: &Path,
    outputs: Vec<Output>,
    scrubber: &Scrubber,
) -> Result<(Vec<Redaction>, BTreeSet<String>), GatherError> {
    let mut written = BTreeSet::new();
    let mut redactions = Vec::new();
    let mut record = |file: &str, object: String, found: Vec<(String, redact::Rule)>| {
        redactions.extend(found.into_iter().map(|(field, rule)| Redaction {
            file: file.to_string(),
            object: object.clone(),
            field,
            rule,
        }));
    };
    for mut out in outputs {
        match &mut out.doc {
            Document::Object(v) => {
                let found = scrubber.scrub_value(v, "");
                record(&out.path, redact::object_id(v), found);
            }
            Document::List(list) => {
                if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
                    for item in items {
                        let found = scrubber.scrub_value(item, "");
                        record(&out.path, redact::object_id(item), found);
                    }
                }
            }
            Document::Json(v) => {
                let found = scrubber.scrub_value(v, "");
                record(&out.path, "-".into(), found);
            }
            Document::Text(t) => {
                let (bytes, rules) = scrubber.scrub_bytes(t.as_bytes());
                if !rules.is_empty() {
                    *t = String::from_utf8_lossy(&bytes).into_owned();
                    record(&out.path, "-".into(), rules.into_iter().map(|r| ("text".to_string(), r)).collect());
                }
            }
        }
        let bytes =
            output::render(&out.doc).map_err(|source| GatherError::Serialise { path: out.path.clone(), source })?;
        output::write(root, &out.path, &bytes).map_err(write_err(root, &out.path))?;
        written.insert(out.path);
    }
    Ok((redactions, written))
}

/// `redactions.txt`: what the rules are, then one tab-separated line per redaction.
pub fn redactions_text(redactions: &[Redaction]) -> String {
    let mut text = String::from(
        "# cma-must-gather redactions: file, object, field, rule. Values are never listed.\n\
         # Rules: secret-data (every Secret value; certificates keep a summary), secret-annotation,\n\
         # last-applied-configuration, credential-field (credential-named keys: KEDA resources, ConfigMap\n\
         # data, annotations), credential-env (env values named or shaped like credentials), credential-arg\n\
         # (the argument after --password and the like), known-secret-value (a redacted value seen again),\n\
         # private-key (PEM or base64 PEM), jwt, bearer-token, url-password, inline-credential (key=value),\n\
         # credential-flag (--password VALUE in text), webhook-url, token-format (provider tokens).\n",
    );
    for r in redactions {
        text.push_str(&format!("{}\t{}\t{}\t{}\n", r.file, r.object, r.field, r.rule.name()));
    }
    text
}
