//! What a run collects and where it writes: [`Options`], built by the CLI or by tests.

use std::path::PathBuf;
use std::time::Duration;

/// OLM package name of cma-operator (CSVs are named `<package>.v<version>`).
pub const PACKAGE: &str = cma_api::names::OPERATOR;

/// Namespace the operator is installed into by convention, used when no installation is found.
pub const DEFAULT_NAMESPACE: &str = cma_api::names::SUGGESTED_NAMESPACE;

/// Which part of the pod logs to collect (`MUST_GATHER_SINCE` / `MUST_GATHER_SINCE_TIME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSince {
    /// The last N seconds (`sinceSeconds`).
    Seconds(i64),
    /// Since an RFC 3339 time (`sinceTime`), normalised to UTC.
    Time(String),
}

impl LogSince {
    /// The query parameter the API server takes for it.
    pub fn query(&self) -> (&'static str, String) {
        match self {
            LogSince::Seconds(s) => ("sinceSeconds", s.to_string()),
            LogSince::Time(t) => ("sinceTime", t.clone()),
        }
    }
}

/// Options of one run.
#[derive(Clone)]
pub struct Options {
    /// Root of the output tree (`/must-gather` in the image).
    pub dest_dir: PathBuf,
    /// Also write `must-gather.tar.gz` of the tree into `dest_dir`.
    pub archive: bool,
    /// Log window; `None` collects whole logs.
    pub since: Option<LogSince>,
    /// Time limit of each request (a log stream counts as one request).
    pub timeout: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// OLM package whose Subscription/CSV locate the installations.
    pub package: String,
    /// Namespaces gathered as operator namespaces in addition to the ones found.
    pub namespaces: Vec<String>,
    /// Namespace gathered when no installation is found.
    pub default_namespace: String,
    /// Values that must never appear in the output (the client's own bearer token); never logged.
    pub known_secrets: Vec<String>,
}

/// Everything but the known secrets' values.
impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("dest_dir", &self.dest_dir)
            .field("archive", &self.archive)
            .field("since", &self.since)
            .field("timeout", &self.timeout)
            .field("concurrency", &self.concurrency)
            .field("package", &self.package)
            .field("namespaces", &self.namespaces)
            .field("default_namespace", &self.default_namespace)
            .field("known_secrets", &self.known_secrets.len())
            .finish()
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dest_dir: PathBuf::from("/must-gather"),
            archive: false,
            since: None,
            timeout: Duration::from_secs(60),
            concurrency: 8,
            package: PACKAGE.to_string(),
            namespaces: Vec::new(),
            default_namespace: DEFAULT_NAMESPACE.to_string(),
            known_secrets: Vec::new(),
        }
    }
}

/// A duration in Go's syntax, as `oc adm must-gather --since` passes it (`90s`, `2h30m`, `1.5h`, `500ms`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| format!("invalid number {number:?} in duration {s:?}"))?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let seconds = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => {
                return Err(format!("unknown unit {unit:?} in duration {s:?} (h, m, s, ms, us, ns)"));
            }
        };
        total += value * seconds;
        rest = tail;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// `--since`: a positive duration, rounded up to whole seconds (the API takes `sinceSeconds`).
pub fn parse_since(s: &str) -> Result<LogSince, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("the log window must be positive".into());
    }
    let secs = i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0))
        .map_err(|_| format!("duration {s:?} is out of range"))?;
    Ok(LogSince::Seconds(secs))
}

/// `--since-time`: an RFC 3339 time (`2024-05-01T10:00:00Z`, offsets allowed).
pub fn parse_since_time(s: &str) -> Result<LogSince, String> {
    let ts: jiff::Timestamp = s.trim().parse().map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?;
    Ok(LogSince::Time(ts.round(jiff::Unit::Second).map_or_else(|_| ts.to_string(), |t| t.to_string())))
}

/// `--timeout`: a positive duration.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("the time limit must be positive".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_like_oc_passes_them() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h30m").unwrap(), Duration::from_secs(9000));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        // Go's time.Duration.String(), which is what `oc` puts into MUST_GATHER_SINCE.
        assert_eq!(parse_duration("2h0m0s").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1m30.5s").unwrap(), Duration::from_millis(90_500));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10d").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_since("500ms").unwrap(), LogSince::Seconds(1));
        assert_eq!(parse_since("1h").unwrap().query(), ("sinceSeconds", "3600".into()));
        assert!(parse_since("0").is_err());
    }

    #[test]
    fn debug_output_never_shows_known_secrets() {
        let opts = Options { known_secrets: vec!["bearer-token-value".into()], ..Options::default() };
        let shown = format!("{opts:?}");
        assert!(!shown.contains("bearer-token-value"));
        assert!(shown.contains("known_secrets: 1"));
    }

    #[test]
    fn since_time_is_normalised_to_utc() {
        assert_eq!(
            parse_since_time("2024-05-01T12:00:00+02:00").unwrap(),
            LogSince::Time("2024-05-01T10:00:00Z".into())
        );
        assert!(parse_since_time("yesterday").is_err());
    }
}
