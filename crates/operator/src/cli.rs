//! Command line: `render`, `crds`, `version`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use cma_api::Component;
use serde_json::Value;

use crate::platform::{Flavour, Platform};
use crate::render::{self, ImageOverrides, KEDA_VERSION, RenderContext, RenderError};

/// Command-line interface of cma-operator.
#[derive(Debug, Parser)]
#[command(
    name = "cma-operator",
    version,
    about = "Installs, configures and heals KEDA from a KedaController"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every object the operator would apply for a KedaController (offline, no cluster needed).
    Render(RenderArgs),
    /// Print every CustomResourceDefinition the operator defines.
    Crds,
    /// Print the operator version, the KEDA version and the images it deploys.
    Version,
}

/// Arguments of `render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// KedaController YAML or JSON file; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// The kind of cluster to render for.
    #[arg(long, value_enum, default_value_t = Flavour::Kubernetes, env = "CMA_PLATFORM")]
    pub platform: Flavour,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Yaml)]
    pub output: Format,
    /// Namespace to assume when the document has none.
    #[arg(short = 'n', long, env = "OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Multi-document YAML, one document per object.
    Yaml,
    /// A `v1` `List` in JSON.
    Json,
}

/// A failure of a command, printed on standard error.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The input is not a KedaController.
    #[error("{path}: {source}")]
    Document {
        /// The file.
        path: String,
        /// Why.
        source: cma_api::document::DocumentError,
    },
    /// Render refused the KedaController.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A generated CRD is unusable.
    #[error(transparent)]
    Schema(#[from] cma_api::crd::SchemaError),
    /// Output could not be produced.
    #[error("cannot write output: {0}")]
    Output(String),
}

/// Runs the command line and returns the process exit code: 0 on success, 1 on any error (one line per
/// problem on standard error), 2 on usage errors.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match run(cli, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::from(1)
        }
    }
}

fn report(error: &CliError) {
    match error {
        CliError::Render(RenderError::Invalid(errors)) => {
            eprintln!(
                "error: the KedaController is invalid ({} problem{}):",
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            for e in &errors.0 {
                eprintln!("  {e}");
            }
        }
        other => eprintln!("error: {other}"),
    }
}

/// Runs a parsed command, writing its output to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Render(args) => render_command(&args, out),
        Command::Crds => crds_command(out),
        Command::Version => version_command(out),
    }
}

fn render_command(args: &RenderArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let path = args.file.display().to_string();
    let text = read_input(&args.file).map_err(|source| CliError::Read {
        path: path.clone(),
        source,
    })?;
    let mut kc = cma_api::document::from_yaml(&text)
        .map_err(|source| CliError::Document { path, source })?;
    if kc.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        kc.metadata.namespace = args.namespace.clone();
    }
    let ctx = RenderContext {
        platform: Platform::for_flavour(args.platform),
        images: ImageOverrides::from_env(),
        ..RenderContext::default()
    };
    let objects = render::render(&kc, &ctx)?.to_values()?;
    write_objects(&objects, args.output, out)
}

fn read_input(path: &PathBuf) -> std::io::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

/// Writes objects as multi-document YAML or a JSON `List`.
pub fn write_objects(
    objects: &[Value],
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let text = match format {
        Format::Yaml => {
            let mut text = String::new();
            for object in objects {
                text.push_str("---\n");
                text.push_str(
                    &serde_yaml::to_string(object).map_err(|e| CliError::Output(e.to_string()))?,
                );
            }
            text
        }
        Format::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            let mut text =
                serde_json::to_string_pretty(&list).map_err(|e| CliError::Output(e.to_string()))?;
            text.push('\n');
            text
        }
    };
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Output(e.to_string()))
}

fn crds_command(out: &mut dyn Write) -> Result<(), CliError> {
    let mut text = String::new();
    for crd in cma_api::crd::all()? {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(&crd).map_err(|e| CliError::Output(e.to_string()))?);
    }
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Output(e.to_string()))
}

fn version_command(out: &mut dyn Write) -> Result<(), CliError> {
    let t = render::templates::templates().map_err(RenderError::from)?;
    let overrides = ImageOverrides::from_env();
    let mut text = format!(
        "cma-operator {}\nKEDA {KEDA_VERSION}\nimages:\n",
        env!("CARGO_PKG_VERSION")
    );
    let defaults = [
        (Component::Operator, &t.operator_deployment),
        (Component::MetricsServer, &t.metrics_deployment),
        (Component::AdmissionWebhooks, &t.webhooks_deployment),
    ];
    for (component, deployment) in defaults {
        let image = overrides
            .get(component)
            .or_else(|| render::templates::Templates::default_image(deployment))
            .unwrap_or("(none)");
        text.push_str(&format!("  {}: {image}\n", component.field()));
    }
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Output(e.to_string()))
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
