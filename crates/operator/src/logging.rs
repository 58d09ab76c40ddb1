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
        .or_else(|_| EnvFilter::try_new(level))
        .map_err(|e| format!("invalid log level {level:?}: {e}"))?;
    // Logs go to standard error (standard output is for command output), in colour only on a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
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
