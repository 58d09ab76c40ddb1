//! Benchmark of the release operator binary against a real kube-apiserver (run by hack/bench-controller.sh).
//!
//! The operator runs as its ServiceAccount with exactly the committed permissions (config/rbac), as a child
//! process under `/usr/bin/time -v`. Every figure comes from the API server's audit log (its own
//! timestamps), except peak RSS (`time`) and binary size:
//! - convergence: KedaController create received -> the last first write of the three Deployments, the
//!   APIService and the webhook configuration answered;
//! - requests from the operator's start to its first complete reconcile (the first status write after those
//!   objects), by verb;
//! - requests in a steady-state window (default 60 s) after the installation settled.
//!
//! Usage: bench-controller OPERATOR_BINARY [STEADY_SECONDS]

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use cma_testkit::cluster::{Apis, AuditEvent, kinds};
use cma_tests::{Env, OPERATOR_SA, env_with};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to - from).total(k8s_openapi::jiff::Unit::Microsecond).unwrap_or(0.0) / 1e6
}

fn by_verb(events: &[&AuditEvent]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(e.verb.clone()).or_insert(0) += 1;
    }
    out
}

async fn wait(what: &str, timeout: Duration, log: &std::path::Path, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        if tokio::time::Instant::now() > deadline {
            eprintln!("bench-controller: timed out waiting for {what}; the operator's log:");
            eprintln!("{}", std::fs::read_to_string(log).unwrap_or_default());
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The API server's watch cache of a resource nobody watched yet delivers its first event late (measured:
/// ~2 s for the first KedaController watch of a fresh control plane, whatever the client). A cluster has
/// watched its CRDs for long: warm the cache the way any earlier watcher would.
async fn warm_up(env: &Env) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let scratch = env.cluster.namespace("warm-up").await;
    let api: kube::Api<cma_api::KedaController> = kube::Api::namespaced(env.cluster.client(), &scratch);
    let mut events = Box::pin(watcher(api, watcher::Config::default()).applied_objects());
    env.create_kedacontroller(&scratch, "keda", json!({})).await;
    let _ = tokio::time::timeout(Duration::from_secs(30), events.next()).await;
    env.cluster.delete(&kinds::KEDACONTROLLER, &scratch, "keda").await;
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut args = std::env::args().skip(1);
    let binary = args.next().unwrap_or_else(|| {
        eprintln!("usage: bench-controller OPERATOR_BINARY [STEADY_SECONDS]");
        std::process::exit(2)
    });
    let steady: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);

    let env: Env = env_with(Apis::kubernetes(), "openshift-keda").await;
    let committed = cma_bundle::generate::committed_permissions(&cma_testkit::cluster::workspace_root())
        .unwrap_or_else(|e| panic!("config/rbac: {e}"));
    env.grant_operator(&committed).await;
    let work = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = work.path().join("kubeconfig");
    env.service_account_kubeconfig(&env.ns, OPERATOR_SA, &kubeconfig).await;
    let user = format!("system:serviceaccount:{}:{OPERATOR_SA}", env.ns);
    let audit = env.cluster.audit();

    warm_up(&env).await;
    let start = audit.mark();
    let stderr = std::fs::File::create(work.path().join("operator.err")).unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&binary)
        .args(["run", "--operator-namespace", &env.ns, "--log-level"])
        .arg(std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into()))
        .args(["--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    let mine = |e: &&AuditEvent| e.user == user;
    // The operator is ready when its KedaController watch is open.
    let log = work.path().join("operator.err");
    wait("the operator's watches", Duration::from_secs(60), &log, async || {
        audit.since(start).iter().filter(mine).any(|e| e.verb == "watch" && e.object.resource == "kedacontrollers")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!("creating the KedaController at {}", Timestamp::now());
    env.create_keda(json!({})).await;
    wait("the first complete reconcile", Duration::from_secs(60), &log, async || {
        env.get(&kinds::KEDACONTROLLER, "keda").await.is_some_and(|kc| !kc["status"]["observedGeneration"].is_null())
    })
    .await;
    let events = audit.since(start);
    let created = events
        .iter()
        .find(|e| e.verb == "create" && e.object.resource == "kedacontrollers")
        .unwrap_or_else(|| panic!("no KedaController create in the audit log"));
    let ours: Vec<&AuditEvent> = events.iter().filter(mine).collect();
    let targets = ["deployments", "apiservices", "validatingwebhookconfigurations"];
    let writes: Vec<&&AuditEvent> =
        ours.iter().filter(|e| e.verb == "patch" && targets.contains(&e.object.resource.as_str())).collect();
    let last_write = writes.iter().map(|e| e.answered).max().unwrap_or_else(|| panic!("no Deployment written"));
    let first_status = ours
        .iter()
        .find(|e| {
            e.object.resource == "kedacontrollers" && e.object.subresource == "status" && e.answered >= last_write
        })
        .map(|e| e.answered)
        .unwrap_or(last_write);
    let to_reconcile: Vec<&AuditEvent> = ours.iter().copied().filter(|e| e.answered <= first_status).collect();
    let forbidden = ours.iter().filter(|e| e.is_forbidden()).count();
    if std::env::var_os("BENCH_TIMELINE").is_some() {
        // Every request up to the first complete reconcile, in seconds from the KedaController's create
        // (negative: before it, while the operator started).
        for e in ours.iter().filter(|e| e.answered <= first_status) {
            println!(
                "  {:+.3} .. {:+.3}  {}",
                seconds(created.received, e.received),
                seconds(created.received, e.answered),
                e.describe()
            );
        }
    }

    // Settle, then count a steady-state window.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let steady_mark = audit.mark();
    tokio::time::sleep(Duration::from_secs(steady)).await;
    let steady_events = audit.since(steady_mark);
    let steady_ours: Vec<&AuditEvent> = steady_events.iter().filter(mine).collect();

    // What the resident set holds, just before the end: the binary's pages and the heap.
    let operator_pid = std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
        .unwrap_or_default()
        .trim()
        .to_string();
    let status = std::fs::read_to_string(format!("/proc/{operator_pid}/status")).unwrap_or_default();
    let resident: Vec<&str> = status.lines().filter(|l| l.starts_with("Rss") || l.starts_with("VmRSS")).collect();
    // SIGTERM the operator (the child of /usr/bin/time) and read its peak RSS.
    let _ = Command::new("pkill").args(["-TERM", "-P", &child.id().to_string()]).status();
    let _ = child.wait();
    let report = std::fs::read_to_string(work.path().join("operator.err")).unwrap_or_default();
    let rss = report
        .lines()
        .find(|l| l.contains("Maximum resident set size"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?")
        .to_string();
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);

    println!(
        "convergence (KedaController create -> last first write of Deployments, APIService, webhooks): {:.3} s",
        seconds(created.received, last_write)
    );
    println!("objects written by then: {}", writes.len());
    println!(
        "requests from start to the first complete reconcile: {} {:?}",
        to_reconcile.len(),
        by_verb(&to_reconcile)
    );
    println!("requests in {steady} s of steady state: {} {:?}", steady_ours.len(), by_verb(&steady_ours));
    println!("forbidden answers: {forbidden}");
    println!(
        "peak RSS: {rss} KiB (at the end: {})",
        resident.join(", ").split_whitespace().collect::<Vec<_>>().join(" ")
    );
    println!("binary size: {size} bytes");
    if std::env::var_os("BENCH_LOG").is_some() {
        println!("{report}");
    }
    for line in report.lines().filter(|l| l.contains("ERROR") || l.contains("panicked")) {
        println!("operator: {line}");
    }
}
