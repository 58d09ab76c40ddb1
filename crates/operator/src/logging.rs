//! Logging: `tracing` with structured fields, as JSON (for log aggregation) or console text.

use tracing_subscriber::EnvFilter;

/// Log output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Console,
}

/// Installs the global subscriber. `level` is an `EnvFilter` directive (`info`, `debug`,
/// `cma_operator=debug,kube=info`); `RUST_LOG` wins when set.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(directives(level)))
        .map_err(|e| format!("invalid log level {level:?}: {e}"))?;
    // Logs go to standard error (standard output is for command output), in colour only on a terminal.
    let ansi = colour(std::io::IsTerminal::is_terminal(&std::io::stderr()), std::env::var_os("NO_COLOR").as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Console => builder.compact().try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}

/// Lines of the Kubernetes client that print an API error as a Rust `Debug` dump (`Status { status:
/// Some(Failure), ... }`): the operator logs each of those errors itself, with the API server's message.
/// A target the user names in `--log-level` keeps the user's level; `RUST_LOG` replaces all of this.
const QUIETER: [(&str, &str); 2] = [("kube_runtime::watcher", "error"), ("kube_client::client", "info")];

/// The filter directives for `level`: the user's, then [`QUIETER`] for the targets they did not name.
fn directives(level: &str) -> String {
    let mut out = level.to_string();
    for (target, quieter) in QUIETER {
        if !level.contains(target) {
            out.push_str(&format!(",{target}={quieter}"));
        }
    }
    out
}

/// Whether log lines carry ANSI colour codes: only on a terminal, and never when `NO_COLOR` is set to
/// anything (<https://no-color.org>). Redirected to a file or a pipe (a pod's log, `2> run.log`), the
/// escape codes would be noise in every line.
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some(std::ffi::OsStr::new("1"))));
        assert!(colour(true, Some(std::ffi::OsStr::new(""))));
    }

    #[test]
    fn the_clients_debug_dumps_are_left_out_unless_asked_for() {
        assert_eq!(directives("info"), "info,kube_runtime::watcher=error,kube_client::client=info");
        assert_eq!(
            directives("debug,kube_runtime::watcher=debug"),
            "debug,kube_runtime::watcher=debug,kube_client::client=info"
        );
    }
}
