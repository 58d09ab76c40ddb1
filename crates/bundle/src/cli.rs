//! Command line: `generate`, `validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::generate;
use crate::validate::{self, Options};

/// Command-line interface of cma-bundle.
#[derive(Debug, Parser)]
#[command(name = "cma-bundle", version, about = "Generates and validates the OLM bundle of cma-operator")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write bundle/ and bundle.Dockerfile from config/ and the Rust sources.
    Generate {
        /// The repository root.
        #[arg(long, env = "CMA_BUNDLE_ROOT", default_value = ".")]
        root: PathBuf,
        /// Write nothing; exit 1 when the committed files differ from what would be generated.
        #[arg(long, default_value_t = false)]
        check: bool,
    },
    /// Check a bundle directory against OLM's, OperatorHub's and OpenShift's rules.
    Validate {
        /// The bundle directory (holding manifests/ and metadata/).
        dir: PathBuf,
        /// Release mode: every image must be pinned by digest.
        #[arg(long, env = "CMA_BUNDLE_RELEASE", default_value_t = false)]
        release: bool,
        /// The bundle image's Dockerfile (default: bundle.Dockerfile next to DIR).
        #[arg(long)]
        dockerfile: Option<PathBuf>,
    },
}

/// Runs the command line; 0 on success, 1 on errors (one line each on standard error), 2 on usage errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let (code, out, err) = run(cli);
    print!("{out}");
    eprint!("{err}");
    ExitCode::from(code)
}

/// Runs a parsed command: exit code, standard output, standard error.
pub fn run(cli: Cli) -> (u8, String, String) {
    match cli.command {
        Command::Generate { root, check } => {
            let generated = match generate::generate(&root) {
                Ok(g) => g,
                Err(e) => return (1, String::new(), format!("error: {e}\n")),
            };
            if check {
                let drift = generated.drift(&root);
                if drift.is_empty() {
                    (0, "the bundle is up to date\n".into(), String::new())
                } else {
                    let mut err: String = drift.iter().map(|l| format!("error: {l}\n")).collect();
                    err.push_str("regenerate with `cargo run -p cma-bundle -- generate`\n");
                    (1, String::new(), err)
                }
            } else {
                match generated.write(&root) {
                    Ok(()) => {
                        (0, generated.files.keys().map(|p| format!("wrote {}\n", p.display())).collect(), String::new())
                    }
                    Err(e) => (1, String::new(), format!("error: {e}\n")),
                }
            }
        }
        Command::Validate { dir, release, dockerfile } => {
            let report = validate::validate(&dir, &Options { release, dockerfile });
            let err: String = report.findings.iter().map(|f| format!("{f}\n")).collect();
            let size = report
                .compressed_size
                .map(|s| {
                    format!(
                        ", compressed size {s} bytes ({:.1} % of the limit)",
                        s as f64 * 100.0 / validate::MAX_COMPRESSED_SIZE as f64
                    )
                })
                .unwrap_or_default();
            if report.is_ok() {
                (0, format!("{}: valid{size}\n", dir.display()), err)
            } else {
                let n = report.errors().count();
                (
                    1,
                    String::new(),
                    format!("{err}{}: {n} error{}{size}\n", dir.display(), if n == 1 { "" } else { "s" }),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
