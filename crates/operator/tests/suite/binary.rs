//! `cma-operator run`, the real binary, against a real API server: it names itself in the User-Agent,
//! publishes the CA its `/metrics` certificate chains to, ends on SIGTERM whatever state its watches are in,
//! and its probe port survives running out of file descriptors.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cma_testkit::cluster::{self, Apis, Cluster, kinds};
use cma_testkit::tls::https_get;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::metrics_tls::tokens;

/// The binary, running.
struct Running {
    child: Child,
    logs: std::thread::JoinHandle<String>,
    probes: SocketAddr,
    metrics: SocketAddr,
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Starts `cma-operator run` for `namespace` with `kubeconfig`; with `max_files`, under that limit of open
/// files (`ulimit -n`).
fn start(kubeconfig: &Path, namespace: &str, max_files: Option<u32>) -> Running {
    let (probes, metrics) = (free_port(), free_port());
    let binary = assert_cmd::cargo::cargo_bin("cma-operator");
    let mut command = match max_files {
        Some(n) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")]).arg(&binary);
            c
        }
        None => Command::new(&binary),
    };
    let mut child = command
        .args(["run", "--operator-namespace", namespace, "--watch-namespace", namespace])
        .args(["--metrics-bind-address", &metrics.to_string(), "--health-probe-bind-address", &probes.to_string()])
        .args(["--metrics-cert-dir", "/nonexistent", "--log-level", "debug"])
        .env("KUBECONFIG", kubeconfig)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the logs as they come: a full pipe would block the child.
    let mut pipe = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(&mut pipe, &mut bytes);
        String::from_utf8_lossy(&bytes).to_string()
    });
    Running { child, logs, probes, metrics }
}

impl Running {
    /// Sends SIGTERM and waits up to `within` for the exit; kills it and panics past that.
    fn terminate(mut self, within: Duration) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let logs = self.logs.join().unwrap();
                let tail: Vec<&str> = logs.lines().rev().take(30).collect();
                panic!(
                    "cma-operator run did not exit within {within:?} of SIGTERM; last log lines (newest first):\n{}",
                    tail.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (status, self.logs.join().unwrap())
    }

    fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.logs.join().unwrap()
    }

    /// Seconds of CPU the process used so far (user and system).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which ends with the last ')'): utime and stime are the 12th and
        // 13th, in clock ticks (100 a second on Linux).
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    }
}

async fn probe(addr: SocketAddr, path: &str) -> Option<String> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response)).await.ok()?.ok()?;
    Some(response)
}

async fn wait_ready(running: &Running) {
    cluster::eventually(Duration::from_secs(60), "the binary reports ready", async || {
        probe(running.probes, "/readyz").await.is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;
}

/// A kubeconfig acting as ServiceAccount `namespace/name` (a TokenRequest token), in `dir`.
async fn service_account_kubeconfig(cluster: &Cluster, namespace: &str, name: &str, dir: &Path) -> PathBuf {
    cluster
        .create(
            &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}),
        )
        .await;
    let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> = kube::Api::namespaced(cluster.client(), namespace);
    let request = k8s_openapi::api::authentication::v1::TokenRequest::default();
    let token: k8s_openapi::api::authentication::v1::TokenRequest =
        api.create_subresource("token", name, &kube::api::PostParams::default(), &request).await.unwrap();
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(cluster.kubeconfig()).unwrap()).unwrap();
    config["users"][0]["user"] = serde_yaml::to_value(json!({"token": token.status.unwrap().token})).unwrap();
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_names_itself_publishes_its_metrics_ca_and_exits_on_sigterm() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("binary").await;
    let scraper = tokens(&cluster, &ns).await.scraper;
    let mark = cluster.audit().mark();
    let running = start(&cluster.kubeconfig(), &ns, None);
    cluster
        .create(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController",
            "metadata": {"name": "keda", "namespace": ns}, "spec": {}}))
        .await;
    let mut ca = None;
    cluster::eventually(Duration::from_secs(60), "KEDA installed and the metrics CA published", async || {
        ca = cluster.get(&kinds::CONFIG_MAP, &ns, "cma-operator-metrics-ca").await;
        ca.is_some() && cluster.get(&kinds::VALIDATING_WEBHOOK, "", "keda-admission").await.is_some()
    })
    .await;

    // Every request of the binary names it and its version.
    let requests = cluster.audit().by_agent(mark, cma_operator::USER_AGENT);
    assert!(requests.iter().any(|e| e.verb == "patch"), "no apply by {}", cma_operator::USER_AGENT);
    assert_eq!(cma_operator::USER_AGENT, format!("cma-operator/{}", env!("CARGO_PKG_VERSION")));

    // The published CA verifies the served certificate, and the binary checks the scraper's token.
    let pem = ca.unwrap()["data"]["ca.crt"].as_str().unwrap().to_string();
    let ca = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let scraped = https_get(
        running.metrics,
        &ca,
        rustls::DEFAULT_VERSIONS,
        "/metrics",
        &format!("Authorization: Bearer {scraper}\r\n"),
    )
    .await
    .unwrap();
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(scraped.contains("keda_controller_managed_objects"), "{scraped}");
    let reviews = cluster.audit().by_agent(mark, cma_operator::USER_AGENT);
    assert!(reviews.iter().any(|e| e.object.resource == "tokenreviews"));
    // No metrics on the probe port.
    let probe_metrics = probe(running.probes, "/metrics").await.unwrap();
    assert!(probe_metrics.starts_with("HTTP/1.1 404"), "{probe_metrics}");

    let (status, logs) = running.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}; logs:\n{logs}");
    assert!(logs.contains("SIGTERM: shutting down"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_while_its_watches_keep_failing() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("binary").await;
    let dir = tempfile::tempdir().unwrap();
    // No RBAC at all: discovery works (every authenticated user may), every watch is refused.
    let kubeconfig = service_account_kubeconfig(&cluster, &ns, "nobody", dir.path()).await;
    let running = start(&kubeconfig, &ns, None);
    wait_ready(&running).await;
    let mark = cluster.audit().mark();
    cluster::eventually(Duration::from_secs(60), "the watches are refused", async || {
        cluster.audit().since(mark).iter().any(|e| e.user.ends_with(":nobody") && e.is_forbidden())
    })
    .await;
    let started = Instant::now();
    let (status, logs) = running.terminate(Duration::from_secs(40));
    assert!(status.success(), "exit status {status}; logs:\n{logs}");
    eprintln!("exited {:?} after SIGTERM", started.elapsed());
    // The refusals are logged with the API server's own words, once, never as a Rust debug dump; and the
    // log, going to a pipe, carries no terminal colour codes.
    assert!(logs.contains("is forbidden: User \"system:serviceaccount:"), "{logs}");
    for dump in ["Status {", "ApiError", "Some(\"Failure\")", "\u{1b}["] {
        assert!(!logs.contains(dump), "{dump:?} in the logs:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_while_the_api_server_is_down() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("binary").await;
    let running = start(&cluster.kubeconfig(), &ns, None);
    cluster
        .create(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController",
            "metadata": {"name": "keda", "namespace": ns}, "spec": {}}))
        .await;
    cluster::eventually(Duration::from_secs(60), "KEDA installed", async || {
        cluster.get(&kinds::VALIDATING_WEBHOOK, "", "keda-admission").await.is_some()
    })
    .await;
    let server = cluster.server().trim_start_matches("https://").to_string();
    let terminated = async {
        // SIGTERM once the API server is down (its port refuses connections): watches and requests fail.
        cluster::eventually(Duration::from_secs(20), "the API server is down", async || {
            tokio::net::TcpStream::connect(&server).await.is_err()
        })
        .await;
        tokio::task::spawn_blocking(move || running.terminate(Duration::from_secs(40))).await.unwrap()
    };
    let ((status, logs), ()) = tokio::join!(terminated, cluster.restart_api_server(Duration::from_secs(50)));
    assert!(status.success(), "exit status {status}; logs:\n{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probes_recover_after_the_process_ran_out_of_file_descriptors_without_spinning() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("binary").await;
    let running = start(&cluster.kubeconfig(), &ns, Some(64));
    wait_ready(&running).await;
    // More connections than the process has descriptors left: some accepts fail with EMFILE.
    let mut held = Vec::new();
    for addr in [running.probes, running.metrics] {
        for _ in 0..40 {
            if let Ok(tcp) = tokio::net::TcpStream::connect(addr).await {
                held.push(tcp);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = running.cpu_seconds();
    let window = Duration::from_secs(2);
    tokio::time::sleep(window).await;
    let used = running.cpu_seconds() - before;
    drop(held);
    cluster::eventually(Duration::from_secs(60), "the probes are answered again", async || {
        probe(running.probes, "/healthz").await.is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;
    let logs = running.kill();
    assert!(
        logs.contains("cannot accept connections"),
        "no accept failed; the test did not exhaust descriptors:\n{logs}"
    );
    // A loop retrying a failing accept at once keeps a core busy; with the backoff it sleeps.
    assert!(used < window.as_secs_f64() / 2.0, "{used:.2} s of CPU in a {window:?} window while out of descriptors");
}

/// `cma-operator uninstall` as the README has users run it, with the cluster's kubeconfig.
fn uninstall(kubeconfig: &Path, namespace: &str, dry_run: bool) -> (bool, String, String) {
    let mut command = Command::new(assert_cmd::cargo::cargo_bin("cma-operator"));
    command.args(["uninstall", "-n", namespace]).env("KUBECONFIG", kubeconfig).env_remove("RUST_LOG");
    if dry_run {
        command.arg("--dry-run");
    }
    let out = command.output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_cleans_up_after_an_operator_removed_before_its_kedacontroller() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("binary").await;
    let running = start(&cluster.kubeconfig(), &ns, None);
    let kc = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController",
        "metadata": {"name": "keda", "namespace": ns}, "spec": {}});
    cluster.create(&kc).await;
    cluster::eventually(Duration::from_secs(60), "KEDA installed", async || {
        cluster.get(&kinds::VALIDATING_WEBHOOK, "", "keda-admission").await.is_some()
    })
    .await;
    let (status, _) = running.terminate(Duration::from_secs(30));
    assert!(status.success());
    cluster.delete(&kinds::KEDACONTROLLER, &ns, "keda").await;

    let (ok, planned, stderr) = uninstall(&cluster.kubeconfig(), &ns, true);
    assert!(ok, "{stderr}");
    assert!(planned.contains("would delete APIService v1beta1.external.metrics.k8s.io\n"), "{planned}");
    assert!(planned.contains(&format!("would delete Deployment {ns}/keda-operator\n")), "{planned}");
    assert!(planned.contains("would delete RoleBinding kube-system/keda-auth-reader\n"), "{planned}");
    assert!(
        planned
            .contains(&format!("would release finalizer finalizer.kedacontroller.keda.sh of KedaController {ns}/keda"))
    );
    assert!(cluster.get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io").await.is_some());

    let (ok, done, stderr) = uninstall(&cluster.kubeconfig(), &ns, false);
    assert!(ok, "{stderr}");
    assert_eq!(done, planned.replace("would delete", "deleted").replace("would release", "released"));
    assert!(cluster.get(&kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io").await.is_none());
    assert!(cluster.get(&kinds::ROLE_BINDING, "kube-system", "keda-auth-reader").await.is_none());
    cluster::eventually(Duration::from_secs(30), "the KedaController is gone", async || {
        cluster.get(&kinds::KEDACONTROLLER, &ns, "keda").await.is_none()
    })
    .await;

    // A KedaController that is not being deleted: nothing to remove, and a warning that an operator would
    // install KEDA again from it.
    cluster.create(&kc).await;
    let (ok, out, stderr) = uninstall(&cluster.kubeconfig(), &ns, false);
    assert!(ok, "{stderr}");
    assert_eq!(out, format!("nothing installed for KedaController {ns}/keda was found\n"));
    assert!(stderr.contains("still exists and is not being deleted"), "{stderr}");
}
