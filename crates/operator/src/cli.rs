//! Command line: `render`, `crds`, `version`, `run`, `uninstall`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use cma_api::Component;
use cma_api::document::DocumentError;
use cma_api::yaml::{Limits, YamlError};
use serde_json::Value;

use crate::platform::{Flavour, Platform};
use crate::render::{self, ImageOverrides, KEDA_VERSION, RenderContext, RenderError};

/// Command-line interface of cma-operator.
#[derive(Debug, Parser)]
#[command(name = "cma-operator", version, about = "Installs, configures and heals KEDA from a KedaController")]
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
    /// Run the operator against the cluster (in-cluster configuration, or KUBECONFIG).
    Run(Box<RunArgs>),
    /// Remove everything the operator installed for a KedaController (for when the operator was removed
    /// first): every object carrying its inventory labels, then its finalizer if it is being deleted.
    Uninstall(UninstallArgs),
}

/// Arguments of `uninstall`.
#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// Namespace of the KedaController (where KEDA was installed).
    #[arg(short = 'n', long, default_value = cma_api::names::SUGGESTED_NAMESPACE)]
    pub namespace: String,
    /// Name of the KedaController.
    #[arg(long, default_value = cma_api::names::KEDACONTROLLER)]
    pub name: String,
    /// List what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Namespace the operator runs in, where KEDA is installed (default: the service account's namespace).
    #[arg(long, env = "OPERATOR_NAMESPACE")]
    pub operator_namespace: Option<String>,
    /// Namespaces whose KedaControllers are watched, comma-separated; empty for all (set by OLM from
    /// `olm.targetNamespaces`).
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,
    /// Elect a leader among replicas with a Lease before writing anything.
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Leader election: seconds a lease lasts without renewal.
    #[arg(long, env = "LEADER_ELECT_LEASE_DURATION", default_value_t = 137)]
    pub leader_elect_lease_duration: u64,
    /// Leader election: seconds the leader keeps trying to renew before giving up.
    #[arg(long, env = "LEADER_ELECT_RENEW_DEADLINE", default_value_t = 107)]
    pub leader_elect_renew_deadline: u64,
    /// Leader election: seconds between renewals and between attempts.
    #[arg(long, env = "LEADER_ELECT_RETRY_PERIOD", default_value_t = 26)]
    pub leader_elect_retry_period: u64,
    /// Identity in the leader Lease and in Events (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Address of the HTTPS `/metrics` endpoint (callers need a bearer token allowed to `get /metrics`).
    /// Default: 0.0.0.0:8443 in a pod, 127.0.0.1:8443 outside a cluster.
    #[arg(long, env = "METRICS_BIND_ADDRESS")]
    pub metrics_bind_address: Option<std::net::SocketAddr>,
    /// Directory with `tls.crt` and `tls.key` (the service-ca's on OpenShift): served once they exist
    /// (checked every 10 s); until then, and without the directory, a certificate the operator issues itself.
    #[arg(long, env = "METRICS_CERT_DIR", default_value = "/var/run/secrets/metrics-tls")]
    pub metrics_cert_dir: PathBuf,
    /// Address of the `/healthz` and `/readyz` probes (plain HTTP; nothing else is served there).
    /// Default: 0.0.0.0:8081 in a pod, 127.0.0.1:8081 outside a cluster.
    #[arg(long, env = "HEALTH_PROBE_BIND_ADDRESS")]
    pub health_probe_bind_address: Option<std::net::SocketAddr>,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = crate::logging::LogFormat::Console)]
    pub log_format: crate::logging::LogFormat,
    /// Log level or filter directive (`info`, `debug`, `cma_operator=debug,kube=warn`); RUST_LOG wins.
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Create the `keda` KedaController in the operator's namespace when none exists (once, by the leader).
    #[arg(long, env = "CREATE_DEFAULT_KEDACONTROLLER", default_value_t = false)]
    pub create_default_kedacontroller: bool,
    /// Platform: detected from the API by default.
    #[arg(long, env = "CMA_PLATFORM", value_enum, default_value_t = PlatformChoice::Auto)]
    pub platform: PlatformChoice,
    /// Seconds between two platform discoveries.
    #[arg(long, env = "DISCOVERY_INTERVAL", default_value_t = 300)]
    pub discovery_interval: u64,
}

/// Platform selection for `run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlatformChoice {
    /// Detect OpenShift by API discovery.
    Auto,
    /// Plain Kubernetes.
    Kubernetes,
    /// OpenShift.
    #[value(name = "openshift")]
    OpenShift,
}

/// Where the service account's namespace is mounted in a pod.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Where the service account's token is mounted in a pod.
const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Whether the process runs in a pod: the kubelet sets `KUBERNETES_SERVICE_HOST` and mounts the service
/// account's token. Outside a cluster (a laptop with a kubeconfig) neither is there.
fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
        || std::path::Path::new(SERVICE_ACCOUNT_TOKEN).exists()
}

/// The address to listen on for `port` when none is given: every interface in a pod (the kubelet probes the
/// pod IP and Prometheus scrapes it), only the loopback interface elsewhere, so a laptop does not offer the
/// endpoints to its network.
fn default_bind_address(port: u16, in_cluster: bool) -> std::net::SocketAddr {
    let ip = if in_cluster { std::net::Ipv4Addr::UNSPECIFIED } else { std::net::Ipv4Addr::LOCALHOST };
    std::net::SocketAddr::from((ip, port))
}

/// Default port of `/metrics`.
const METRICS_PORT: u16 = 8443;
/// Default port of the probes.
const PROBE_PORT: u16 = 8081;

/// Arguments of `render`.
#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    /// KedaController YAML or JSON file; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// The kind of cluster to render for.
    #[arg(long, value_enum, default_value_t = Flavour::Kubernetes, env = "CMA_PLATFORM")]
    pub platform: Flavour,
    /// The cluster serves the monitoring.coreos.com API: render ServiceMonitors, alerts and (on OpenShift)
    /// the console dashboard.
    #[arg(long, env = "CMA_MONITORING")]
    pub monitoring: bool,
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
    /// `run` could not start or stopped on an error.
    #[error("{0}")]
    Run(String),
    /// No client for the cluster could be configured.
    #[error("cannot configure the Kubernetes client (in-cluster or KUBECONFIG): {0}")]
    Client(String),
    /// `uninstall` could not remove everything; one message per failed request.
    #[error("{}", .0.join("\n"))]
    Uninstall(Vec<String>),
}

/// Runs the command line and returns the process exit code: 0 on success, 1 on any error (one line per
/// problem on standard error), 2 on usage errors.
pub fn main() -> ExitCode {
    // One crypto provider for every TLS connection (kube's client and our metrics endpoint); installing
    // fails only when one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // Not `stdout().lock()`: `run` logs from several threads, and a lock held here for the life of the
    // process would block them forever.
    let mut stdout = std::io::stdout();
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
        CliError::Uninstall(failures) => {
            for failure in failures {
                eprintln!("error: {failure}");
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
        Command::Run(args) => run_command(*args),
        Command::Uninstall(args) => uninstall_command(&args, out),
    }
}

fn run_command(args: RunArgs) -> Result<(), CliError> {
    crate::logging::init(args.log_format, &args.log_level).map_err(CliError::Run)?;
    let settings = run_settings(&args)?;
    // One worker, whatever the node's core count: the pod's CPU limit is half a core, every API call and
    // endpoint is asynchronous and CPU-bound work is milliseconds. Measured on the real API server
    // (hack/bench-controller.sh): one worker used ~600 KiB less memory than two and converged no slower.
    // Blocking work has its own small pool. TOKIO_WORKER_THREADS overrides it.
    let workers =
        std::env::var("TOKIO_WORKER_THREADS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(4)
        .enable_all()
        .build()
        .map_err(|e| CliError::Run(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let client = client().await?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            keda = KEDA_VERSION,
            namespace = %settings.operator_namespace,
            watch_namespaces = ?settings.watch_namespaces,
            leader_elect = settings.leader_elect,
            "starting cma-operator"
        );
        crate::controller::run(client, settings).await.map_err(|e| CliError::Run(e.to_string()))
    })
}

/// The operator's client: in-cluster configuration or `KUBECONFIG`, naming itself in the User-Agent so the
/// API server's audit log and metrics tell its requests apart.
async fn client() -> Result<kube::Client, CliError> {
    let config = kube::Config::infer().await.map_err(|e| CliError::Client(crate::errors::chain(&e)))?;
    crate::client::client(config).map_err(|e| CliError::Client(crate::errors::chain(&e)))
}

fn uninstall_command(args: &UninstallArgs, out: &mut dyn Write) -> Result<(), CliError> {
    use crate::uninstall::{KedaControllerState, Target, uninstall};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Run(format!("cannot start the async runtime: {e}")))?;
    let target = Target { namespace: args.namespace.clone(), name: args.name.clone() };
    let report = runtime.block_on(async {
        let client = client().await?;
        Ok::<_, CliError>(uninstall(&client, &target, args.dry_run).await)
    })?;
    let kc = format!("KedaController {}/{}", target.namespace, target.name);
    let verb = if args.dry_run { "would delete" } else { "deleted" };
    let mut text = String::new();
    for object in &report.objects {
        text.push_str(&format!("{verb} {object}\n"));
    }
    if report.finalizer_released {
        let verb = if args.dry_run { "would release" } else { "released" };
        text.push_str(&format!("{verb} finalizer {} of {kc}\n", crate::reconcile::FINALIZER));
    }
    if report.objects.is_empty() && report.failures.is_empty() {
        text.push_str(&format!("nothing installed for {kc} was found\n"));
    }
    out.write_all(text.as_bytes()).map_err(|e| CliError::Output(e.to_string()))?;
    if report.kedacontroller == Some(KedaControllerState::Present) {
        // Not an error: the objects are gone as asked, but a running or restarted operator installs them
        // again from this KedaController.
        eprintln!(
            "warning: {kc} still exists and is not being deleted: an operator running now or started later installs KEDA again from it; delete it with `kubectl delete kedacontroller {} -n {} --wait=false` and run uninstall again",
            target.name, target.namespace
        );
    }
    if report.failures.is_empty() { Ok(()) } else { Err(CliError::Uninstall(report.failures)) }
}

fn run_settings(args: &RunArgs) -> Result<crate::controller::Settings, CliError> {
    run_settings_for(args, in_cluster())
}

fn run_settings_for(args: &RunArgs, in_cluster: bool) -> Result<crate::controller::Settings, CliError> {
    let operator_namespace = match &args.operator_namespace {
        Some(ns) if !ns.trim().is_empty() => ns.trim().to_string(),
        _ => std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE).map(|s| s.trim().to_string()).map_err(|e| {
            CliError::Run(if in_cluster {
                format!(
                    "no operator namespace: set --operator-namespace or OPERATOR_NAMESPACE (reading {SERVICE_ACCOUNT_NAMESPACE} failed: {e})"
                )
            } else {
                "no operator namespace: outside a cluster, say where KEDA is installed with --operator-namespace (or OPERATOR_NAMESPACE), e.g. --operator-namespace openshift-keda".to_string()
            })
        })?,
    };
    let identity = args
        .pod_name
        .clone()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("cma-operator-{}", std::process::id()));
    let watch_namespaces: Vec<String> =
        args.watch_namespace.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if !watch_namespaces.is_empty() && !watch_namespaces.contains(&operator_namespace) {
        return Err(CliError::Run(format!(
            "--watch-namespace/WATCH_NAMESPACE ({}) does not include the operator's namespace '{operator_namespace}': KEDA is installed there, by the KedaController 'keda' there, so it must be watched (OLM: install in OwnNamespace mode)",
            watch_namespaces.join(",")
        )));
    }
    let cert_dir = &args.metrics_cert_dir;
    // The mount point exists in the pod even while the optional secret is still missing.
    let metrics_cert_dir = cert_dir.is_dir().then(|| cert_dir.clone());
    Ok(crate::controller::Settings {
        operator_namespace,
        watch_namespaces,
        leader_elect: args.leader_elect,
        leader_timing: crate::leader::Timing {
            lease_duration: std::time::Duration::from_secs(args.leader_elect_lease_duration),
            renew_deadline: std::time::Duration::from_secs(args.leader_elect_renew_deadline),
            retry_period: std::time::Duration::from_secs(args.leader_elect_retry_period),
        },
        identity,
        metrics_addr: args.metrics_bind_address.unwrap_or_else(|| default_bind_address(METRICS_PORT, in_cluster)),
        metrics_cert_dir,
        probe_addr: args.health_probe_bind_address.unwrap_or_else(|| default_bind_address(PROBE_PORT, in_cluster)),
        create_default_kedacontroller: args.create_default_kedacontroller,
        platform: match args.platform {
            PlatformChoice::Auto => None,
            PlatformChoice::Kubernetes => Some(Flavour::Kubernetes),
            PlatformChoice::OpenShift => Some(Flavour::OpenShift),
        },
        discovery_interval: std::time::Duration::from_secs(args.discovery_interval.max(10)),
        sync_timeout: std::time::Duration::from_secs(30),
    })
}

fn render_command(args: &RenderArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let path = args.file.display().to_string();
    let limit = Limits::KEDA_CONTROLLER.max_bytes;
    let bytes = read_input(&args.file, limit).map_err(|source| CliError::Read { path: path.clone(), source })?;
    if bytes.len() > limit {
        let source = DocumentError::Limit(YamlError::TooLarge {
            bytes: bytes.len(),
            limit,
            subject: Limits::KEDA_CONTROLLER.subject,
        });
        return Err(CliError::Document { path, source });
    }
    let text = String::from_utf8(bytes).map_err(|e| CliError::Read {
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
    })?;
    let mut kc = cma_api::document::from_yaml(&text).map_err(|source| CliError::Document { path, source })?;
    if kc.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        kc.metadata.namespace = args.namespace.clone();
    }
    let platform = Platform { monitoring: args.monitoring, ..Platform::for_flavour(args.platform) };
    let ctx = RenderContext {
        platform,
        images: ImageOverrides::from_env(),
        proxy: crate::render::proxy::from_env(),
        ..RenderContext::default()
    };
    let valid = cma_api::validate(&kc).map_err(RenderError::Invalid)?;
    let objects = render::render(valid, &ctx)?.to_values()?;
    write_objects(&objects, args.output, out)
}

/// Reads the file (`-`: standard input), at most one byte past `limit`: enough to tell it is too large
/// without reading all of an endless or huge input.
fn read_input(path: &PathBuf, limit: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let take = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    if path.as_os_str() == "-" {
        std::io::stdin().take(take).read_to_end(&mut bytes)?;
    } else {
        std::fs::File::open(path)?.take(take).read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

/// Writes objects as multi-document YAML or a JSON `List`.
pub fn write_objects(objects: &[Value], format: Format, out: &mut dyn Write) -> Result<(), CliError> {
    let text = match format {
        Format::Yaml => {
            let mut text = String::new();
            for object in objects {
                text.push_str("---\n");
                text.push_str(&serde_yaml::to_string(object).map_err(|e| CliError::Output(e.to_string()))?);
            }
            text
        }
        Format::Json => {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
            let mut text = serde_json::to_string_pretty(&list).map_err(|e| CliError::Output(e.to_string()))?;
            text.push('\n');
            text
        }
    };
    out.write_all(text.as_bytes()).map_err(|e| CliError::Output(e.to_string()))
}

fn crds_command(out: &mut dyn Write) -> Result<(), CliError> {
    let mut text = String::new();
    for crd in cma_api::crd::all()? {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(&crd).map_err(|e| CliError::Output(e.to_string()))?);
    }
    out.write_all(text.as_bytes()).map_err(|e| CliError::Output(e.to_string()))
}

fn version_command(out: &mut dyn Write) -> Result<(), CliError> {
    let t = render::templates::templates().map_err(RenderError::from)?;
    let overrides = ImageOverrides::from_env();
    let mut text = format!("cma-operator {}\nKEDA {KEDA_VERSION}\nimages:\n", env!("CARGO_PKG_VERSION"));
    for component in Component::ALL {
        let image = overrides
            .get(component)
            .or_else(|| render::templates::Templates::default_image(t.deployment(component)))
            .unwrap_or("(none)");
        text.push_str(&format!("  {}: {image}\n", component.field()));
    }
    out.write_all(text.as_bytes()).map_err(|e| CliError::Output(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["cma-operator", "run", "--operator-namespace", "openshift-keda"];
        argv.extend(extra);
        match Cli::try_parse_from(argv).map(|c| c.command) {
            Ok(Command::Run(args)) => *args,
            other => panic!("not a run command: {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_watch_namespace_without_the_operator_namespace_is_refused_with_the_reason() {
        let error = run_settings(&run_args(&["--watch-namespace", "team-a"])).unwrap_err().to_string();
        assert!(error.contains("does not include the operator's namespace 'openshift-keda'"), "{error}");
        assert!(run_settings(&run_args(&["--watch-namespace", "openshift-keda"])).is_ok());
        assert!(run_settings(&run_args(&[])).is_ok());
    }

    #[test]
    fn outside_a_cluster_the_endpoints_listen_on_localhost_only() {
        let laptop = run_settings_for(&run_args(&[]), false).unwrap();
        assert_eq!(laptop.metrics_addr.to_string(), "127.0.0.1:8443");
        assert_eq!(laptop.probe_addr.to_string(), "127.0.0.1:8081");
        let pod = run_settings_for(&run_args(&[]), true).unwrap();
        assert_eq!(pod.metrics_addr.to_string(), "0.0.0.0:8443");
        assert_eq!(pod.probe_addr.to_string(), "0.0.0.0:8081");
        let chosen = run_settings_for(&run_args(&["--metrics-bind-address", "0.0.0.0:9443"]), false).unwrap();
        assert_eq!(chosen.metrics_addr.to_string(), "0.0.0.0:9443");
    }

    #[test]
    fn outside_a_cluster_a_missing_namespace_names_the_flag() {
        let args = match Cli::try_parse_from(["cma-operator", "run"]).map(|c| c.command) {
            Ok(Command::Run(args)) => *args,
            other => panic!("not a run command: {:?}", other.map(|_| ())),
        };
        // Only meaningful where no service account is mounted (every development machine and CI runner).
        if std::path::Path::new(SERVICE_ACCOUNT_NAMESPACE).exists() || std::env::var_os("OPERATOR_NAMESPACE").is_some()
        {
            return;
        }
        let error = run_settings_for(&args, false).unwrap_err().to_string();
        assert!(error.contains("--operator-namespace"), "{error}");
        assert!(!error.contains("/var/run/secrets"), "{error}");
    }
}
