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
    let ansi = cma_api::terminal::colour(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_debug_dumps_are_left_out_unless_asked_for() {
        assert_eq!(directives("info"), "info,kube_runtime::watcher=error,kube_client::client=info");
        assert_eq!(
            directives("debug,kube_runtime::watcher=debug"),
            "debug,kube_runtime::watcher=debug,kube_client::client=info"
        );
    }
}
