//! The fake API server on a real TCP port, for benchmarking the release binary of the operator the way a
//! cluster would see it (see `hack/bench-controller.sh`).
//!
//! It creates the KedaController after a delay, times how long the operator takes to apply every object
//! and to complete its first reconcile, reports the operator's requests by verb until then, marks the
//! cluster ready, and counts the operator's requests over a steady-state window. The report is a JSON
//! file.

// A benchmark tool: failing loudly on a broken setup is the right behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use cma_testkit::Verb;
use cma_tests::{cluster, cluster_reports_ready, gvr, kedacontroller, managed_objects};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Port to serve on (127.0.0.1).
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Namespace of the KedaController.
    #[arg(long, default_value = "keda")]
    namespace: String,
    /// Create the KedaController this long after start (the operator has time to start and sync).
    #[arg(long, default_value_t = 3000)]
    create_after_ms: u64,
    /// Length of the steady-state window in seconds.
    #[arg(long, default_value_t = 60)]
    steady_seconds: u64,
    /// Objects a default installation has.
    #[arg(long, default_value_t = 23)]
    objects: usize,
    /// Pretend to be OpenShift.
    #[arg(long)]
    openshift: bool,
    /// Where to write the report; the server keeps serving afterwards until it is terminated, so the
    /// operator can be stopped cleanly first.
    #[arg(long)]
    report: std::path::PathBuf,
}

fn by_verb(records: &[cma_testkit::RequestRecord]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in records {
        *out.entry(format!("{:?}", r.verb).to_lowercase()).or_insert(0) += 1;
    }
    out
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let fake = cluster(args.openshift);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.expect("bind");
    let _server = fake.serve(listener, "operator");
    eprintln!("fake API server on http://127.0.0.1:{}", args.port);

    tokio::time::sleep(Duration::from_millis(args.create_after_ms)).await;
    let created = Instant::now();
    let before_create = fake.requests();
    fake.insert(&kedacontroller(&args.namespace, "keda", json!({}))).expect("create the KedaController");

    let mut all_applied = None;
    let first_complete = loop {
        if all_applied.is_none() && managed_objects(&fake).len() >= args.objects {
            all_applied = Some(created.elapsed());
        }
        let kc = fake.get(&gvr::kedacontrollers(), &args.namespace, "keda").unwrap_or_default();
        if all_applied.is_some() && kc["status"]["phase"] == "Installation Succeeded" {
            break created.elapsed();
        }
        if created.elapsed() > Duration::from_secs(120) {
            panic!("the operator did not complete a reconcile within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let until_first = fake.requests();

    cluster_reports_ready(&fake, &args.namespace);
    let ready_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let kc = fake.get(&gvr::kedacontrollers(), &args.namespace, "keda").unwrap_or_default();
        let ready = kc["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
        if ready || Instant::now() > ready_deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mark = fake.mark();
    tokio::time::sleep(Duration::from_secs(args.steady_seconds)).await;
    let steady = fake.requests_since(mark);
    let steady_non_watch: Vec<_> = steady.iter().filter(|r| r.verb != Verb::Watch).cloned().collect();

    let report = json!({
        "objects_applied_after_ms": all_applied.map(|d| d.as_secs_f64() * 1000.0),
        "first_complete_reconcile_after_ms": first_complete.as_secs_f64() * 1000.0,
        "requests_from_start_to_first_complete_reconcile": until_first.len(),
        "requests_by_verb_from_start_to_first_complete_reconcile": by_verb(&until_first),
        "requests_before_the_kedacontroller_existed": before_create.len(),
        "requests_by_verb_for_the_first_reconcile": by_verb(&until_first[before_create.len()..]),
        "steady_state_seconds": args.steady_seconds,
        "steady_state_requests_excluding_open_watches": steady_non_watch.len(),
        "steady_state_requests": steady_non_watch.iter().map(|r| format!("{} {}", r.method, r.path)).collect::<Vec<_>>(),
        "managed_objects": managed_objects(&fake).len(),
    });
    let text = serde_json::to_string_pretty(&report).expect("report");
    let partial = args.report.with_extension("partial");
    std::fs::write(&partial, text).expect("write the report");
    std::fs::rename(&partial, &args.report).expect("publish the report");
    std::future::pending::<()>().await;
}
