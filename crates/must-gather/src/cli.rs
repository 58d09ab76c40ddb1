//! Command line of `cma-must-gather` (the image's `/usr/bin/gather` calls it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser};
use secrecy::ExposeSecret;

use crate::gather::{GatherError, Summary, gather};
use crate::options::{self, LogSince, Options};

/// Collects everything support needs about cma-operator and KEDA, with every secret redacted.
#[derive(Debug, Parser)]
#[command(
    name = "cma-must-gather",
    version,
    about = "Collects cma-operator's and KEDA's state for a support case, with every secret redacted",
    after_help = "Exit codes: 0 everything essential collected (other failures are listed in gather-debug.log), \
                  2 the API server answered but something essential is missing, 1 nothing could be collected."
)]
pub struct Cli {
    /// Root of the output tree.
    #[arg(long, env = "CMA_MUST_GATHER_DEST_DIR", default_value = "/must-gather")]
    pub dest_dir: PathBuf,
    /// Also write must-gather.tar.gz of the tree into the destination directory (`--archive=false` to turn off).
    #[arg(
        long,
        env = "CMA_MUST_GATHER_ARCHIVE",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = ArgAction::Set
    )]
    pub archive: bool,
    /// Only log lines newer than this (Go duration: 30m, 2h); `oc adm must-gather --since` sets it. Default: whole logs.
    #[arg(long, env = "MUST_GATHER_SINCE", value_parser = since_arg)]
    pub since: Option<SinceArg>,
    /// Only log lines after this RFC 3339 time; `oc adm must-gather --since-time` sets it; wins over --since.
    #[arg(long, env = "MUST_GATHER_SINCE_TIME", value_parser = since_time_arg)]
    pub since_time: Option<SinceArg>,
    /// Time limit of each request (a log stream is one request), Go duration syntax.
    #[arg(long, env = "CMA_MUST_GATHER_TIMEOUT", default_value = "60s", value_parser = options::parse_timeout)]
    pub timeout: Duration,
    /// Requests in flight at once.
    #[arg(
        long,
        env = "CMA_MUST_GATHER_CONCURRENCY",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub concurrency: u16,
    /// OLM package whose Subscriptions and CSVs locate the installations.
    #[arg(long, env = "CMA_MUST_GATHER_PACKAGE", default_value = options::PACKAGE)]
    pub package: String,
    /// More operator namespaces to gather (repeat or comma-separate); added to the ones found.
    #[arg(long = "namespace", env = "CMA_MUST_GATHER_NAMESPACES", value_delimiter = ',', default_value = "")]
    pub namespaces: Vec<String>,
    /// Namespace gathered when no installation is found.
    #[arg(long, env = "CMA_MUST_GATHER_DEFAULT_NAMESPACE", default_value = options::DEFAULT_NAMESPACE)]
    pub default_namespace: String,
    /// Progress detail on stderr: error, warn, info or debug.
    #[arg(long, env = "CMA_MUST_GATHER_LOG_LEVEL", default_value = "info", value_parser = ["error", "warn", "info", "debug"])]
    pub log_level: String,
}

/// A log window argument; an empty value (an empty environment variable) means none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinceArg(pub Option<LogSince>);

fn since_arg(s: &str) -> Result<SinceArg, String> {
    if s.trim().is_empty() {
        return Ok(SinceArg(None));
    }
    options::parse_since(s).map(|v| SinceArg(Some(v)))
}

fn since_time_arg(s: &str) -> Result<SinceArg, String> {
    if s.trim().is_empty() {
        return Ok(SinceArg(None));
    }
    options::parse_since_time(s).map(|v| SinceArg(Some(v)))
}

impl Cli {
    fn since_time(&self) -> Option<LogSince> {
        self.since_time.clone().and_then(|s| s.0)
    }

    fn since(&self) -> Option<LogSince> {
        self.since.clone().and_then(|s| s.0)
    }

    /// The run options (without the client's credentials, added once the client is configured).
    pub fn options(&self) -> Options {
        Options {
            dest_dir: self.dest_dir.clone(),
            archive: self.archive,
            since: self.since_time().or_else(|| self.since()),
            timeout: self.timeout,
            concurrency: usize::from(self.concurrency),
            package: self.package.clone(),
            namespaces: self.namespaces.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect(),
            default_namespace: self.default_namespace.clone(),
            known_secrets: Vec::new(),
        }
    }
}

/// The log filter for stderr: this crate's events at the chosen level, the libraries' at `warn`, so no
/// request or response body of the client can reach the terminal whatever the environment says, and kube's
/// client not at all: its HTTP trace layer logs every 5xx answer at `error` ("failed with status 503")
/// without naming the request, while `gather-debug.log` and the summary name each failed request.
pub fn log_filter(level: &str) -> String {
    format!("warn,kube_client=off,kube=off,cma_must_gather={level}")
}

/// Progress on stderr, filtered by [`log_filter`].
fn init_logging(level: &str) -> Result<(), String> {
    let filter = tracing_subscriber::EnvFilter::try_new(log_filter(level))
        .map_err(|e| format!("invalid log level {level:?}: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: `oc adm must-gather` keeps the gather container's output
        // in gather.logs, where escape codes are noise; and never when NO_COLOR is set (no-color.org).
        .with_ansi(cma_api::terminal::colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_target(false)
        .compact()
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))
}

/// Credentials of the client configuration that must never appear in the output.
fn client_secrets(config: &kube::Config) -> Vec<String> {
    let auth = &config.auth_info;
    let mut secrets: Vec<String> = [&auth.token, &auth.password, &auth.client_key_data]
        .into_iter()
        .flatten()
        .map(|s| s.expose_secret().to_string())
        .collect();
    if let Some(file) = &auth.token_file
        && let Ok(token) = std::fs::read_to_string(file)
    {
        secrets.push(token.trim().to_string());
    }
    secrets
}

/// The client configuration a run uses: kube's default retry policy off. It retries 429, 503 and 504 with
/// backoff, so an unavailable aggregated API (`GET /apis/external.metrics.k8s.io/v1beta1` answering `503`
/// in a fraction of a second when KEDA's metrics server is down) was retried until the per-request time
/// limit and recorded as "timed out" instead of the server's answer. Every request is made once and its
/// answer recorded as it is.
pub fn client_config(mut config: kube::Config) -> kube::Config {
    config.default_retry = false;
    config
}

async fn run(mut opts: Options) -> Result<Summary, String> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("cannot configure the Kubernetes client (in-cluster or KUBECONFIG): {e}"))?;
    opts.known_secrets.extend(client_secrets(&config));
    let client = kube::Client::try_from(client_config(config))
        .map_err(|e| format!("cannot build the Kubernetes client: {e}"))?;
    gather(client, &opts).await.map_err(|e: GatherError| e.to_string())
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // One crypto provider for the client's TLS (ring, the one kube is built with); installing fails only when
    // one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    if let Err(e) = init_logging(&cli.log_level) {
        eprintln!("cma-must-gather: {e}");
        return ExitCode::from(1);
    }
    if cli.since().is_some() && cli.since_time().is_some() {
        tracing::warn!("both --since and --since-time given: using --since-time");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cma-must-gather: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli.options())) {
        Ok(summary) => {
            eprintln!("{}", summary.report());
            ExitCode::from(summary.exit_code())
        }
        Err(e) => {
            eprintln!("cma-must-gather: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn requests_are_not_retried_and_kube_errors_stay_off_the_terminal() {
        let config = kube::Config::new("https://api.example:6443".parse().unwrap());
        assert!(config.default_retry, "kube retries by default");
        assert!(!client_config(config).default_retry);
        let filter = log_filter("debug");
        assert!(filter.contains("kube_client=off") && filter.contains("cma_must_gather=debug"), "{filter}");
        tracing_subscriber::EnvFilter::try_new(filter).unwrap();
    }

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_oc_environment() {
        let cli = Cli::try_parse_from(["cma-must-gather"]).unwrap();
        let opts = cli.options();
        assert_eq!(opts.dest_dir, PathBuf::from("/must-gather"));
        assert!(!opts.archive);
        assert_eq!(opts.timeout, Duration::from_secs(60));
        assert!(opts.namespaces.is_empty());
        let cli = Cli::try_parse_from([
            "cma-must-gather",
            "--archive",
            "--since=2h",
            "--since-time=2024-01-01T00:00:00Z",
            "--namespace=a,b",
            "--namespace",
            "c",
        ])
        .unwrap();
        let opts = cli.options();
        assert!(opts.archive);
        assert_eq!(opts.since, Some(LogSince::Time("2024-01-01T00:00:00Z".into())));
        assert_eq!(opts.namespaces, vec!["a", "b", "c"]);
        assert!(!Cli::try_parse_from(["x", "--archive=false"]).unwrap().archive);
        assert!(Cli::try_parse_from(["x", "--since=yesterday"]).is_err());
        // `oc` may pass the variables empty: no window then.
        let cli = Cli::try_parse_from(["x", "--since=", "--since-time="]).unwrap();
        assert_eq!(cli.options().since, None);
        let cli = Cli::try_parse_from(["x", "--since=", "--since-time=2024-01-01T00:00:00Z"]).unwrap();
        assert!(cli.options().since.is_some());
        assert!(Cli::try_parse_from(["x", "--concurrency=0"]).is_err());
    }
}
