//! must-gather benchmark against the in-process fake API server (run it with `hack/bench-must-gather.sh`).
//!
//! Builds a cluster with one cma-operator installation whose three KEDA pods have `--log-mb` MB of logs each,
//! `--scaledobjects` ScaledObjects (each with its `keda-hpa-*` HPA) spread over `--namespaces` namespaces, then
//! runs a whole gather with the archive and prints wall time, resident memory before and at the peak of the
//! gather (sampled every 2 ms from /proc/self/status), and the archive size.
//!
//! `--sample DIR` instead writes the tree of the test fixture to DIR (for reading the output by eye).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/suite/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cma_must_gather::{Options, gather};
use serde_json::json;

struct Args {
    scaledobjects: usize,
    namespaces: usize,
    log_mb: usize,
    out: Option<PathBuf>,
    sample: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args { scaledobjects: 1000, namespaces: 100, log_mb: 10, out: None, sample: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag value");
        match flag.as_str() {
            "--scaledobjects" => a.scaledobjects = value().parse().unwrap(),
            "--namespaces" => a.namespaces = value().parse().unwrap(),
            "--log-mb" => a.log_mb = value().parse().unwrap(),
            "--out" => a.out = Some(PathBuf::from(value())),
            "--sample" => a.sample = Some(PathBuf::from(value())),
            other => {
                panic!("unknown flag {other} (--scaledobjects N --namespaces N --log-mb N --out DIR | --sample DIR)")
            }
        }
    }
    a
}

/// Resident set size in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// About `mb` MB of KEDA-like log lines, every line different.
fn log_text(mb: usize, pod: usize) -> String {
    let target = mb * 1024 * 1024;
    let mut s = String::with_capacity(target + 512);
    let mut i = 0usize;
    while s.len() < target {
        s.push_str(&format!(
            "2025-01-01T{:02}:{:02}:{:02}.{:06}Z\tINFO\tscaleexecutor\tSuccessfully updated ScaleTarget\t{{\"scaledobject.Name\": \"so-{}\", \"scaledObject.Namespace\": \"ns-{:03}\", \"scaleTarget.Name\": \"web-{}\", \"Original Replicas Count\": {}, \"New Replicas Count\": {}, \"pod\": {pod}}}\n",
            (i / 3600) % 24,
            (i / 60) % 60,
            i % 60,
            i % 1_000_000,
            i % 1000,
            i % 100,
            i,
            i % 10,
            (i + 1) % 10,
        ));
        i += 1;
    }
    s
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        if let Some(dir) = args.sample {
            let fake = common::populated();
            let opts = Options {
                dest_dir: dir.clone(),
                archive: true,
                ..Options::default()
            };
            let summary = gather(fake.client(), &opts).await.unwrap();
            eprintln!("{}", summary.report());
            return;
        }

        let setup = Instant::now();
        let fake = cma_testkit::FakeApiServer::new();
        common::register_types(&fake);
        common::installation(&fake, common::NS, "0.1.0");
        common::cluster(&fake);
        for (i, deploy) in ["keda-operator", "keda-metrics-apiserver", "keda-admission"]
            .iter()
            .enumerate()
        {
            let container = if *deploy == "keda-admission" { "keda-admission-webhooks" } else { deploy };
            fake.set_pod_log(common::NS, &format!("{deploy}-5d4f8-x1"), container, false, log_text(args.log_mb, i));
        }
        for i in 0..args.scaledobjects {
            let ns = format!("ns-{:03}", i % args.namespaces);
            let so = format!("so-{i}");
            fake.insert(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                "metadata": {"name": so, "namespace": ns},
                "spec": {"scaleTargetRef": {"name": format!("web-{i}")}, "minReplicaCount": 0, "maxReplicaCount": 10,
                    "triggers": [
                        {"type": "prometheus", "metadata": {"serverAddress": "http://prometheus:9090", "query": format!("sum(rate(http_requests_total{{app=\"web-{i}\"}}[2m]))"), "threshold": "100"}},
                        {"type": "kafka", "metadata": {"bootstrapServers": "kafka:9092", "consumerGroup": "g", "topic": "t"}, "authenticationRef": {"name": "kafka-auth"}},
                    ]},
                "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Active", "status": "False"}], "hpaName": format!("keda-hpa-{so}")}}))
                .unwrap();
            fake.insert(&json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": format!("keda-hpa-{so}"), "namespace": ns, "labels": {"scaledobject.keda.sh/name": so}},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": format!("web-{i}")}, "minReplicas": 1, "maxReplicas": 10}}))
                .unwrap();
        }
        let setup_time = setup.elapsed();

        let out = args.out.unwrap_or_else(|| std::env::temp_dir().join("cma-must-gather-bench"));
        let _ = std::fs::remove_dir_all(&out);
        let opts = Options {
            dest_dir: out.clone(),
            archive: true,
            timeout: Duration::from_secs(60),
            ..Options::default()
        };
        let baseline = rss_kib();
        let peak = Arc::new(AtomicU64::new(baseline));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let started = Instant::now();
        let summary = gather(fake.client(), &opts).await.unwrap();
        let wall = started.elapsed();
        done.store(true, Ordering::Relaxed);
        sampler.join().unwrap();
        let peak = peak.load(Ordering::Relaxed).max(rss_kib());
        let archive = summary.archive.as_ref().map_or(0, |a| std::fs::metadata(a).unwrap().len());
        eprintln!("{}", summary.report());
        println!("scaledobjects={} namespaces={} log_mb_per_pod={} pods_with_big_logs=3", args.scaledobjects, args.namespaces, args.log_mb);
        println!("setup_s={:.2}", setup_time.as_secs_f64());
        println!("gather_wall_s={:.3}", wall.as_secs_f64());
        println!("rss_before_gather_mib={:.1}", baseline as f64 / 1024.0);
        println!("rss_peak_during_gather_mib={:.1}", peak as f64 / 1024.0);
        println!("rss_growth_during_gather_mib={:.1}", peak.saturating_sub(baseline) as f64 / 1024.0);
        println!("log_bytes={}", summary.log_bytes);
        println!("files={}", summary.files);
        println!("archive_bytes={archive}");
        println!("exit_code={}", summary.exit_code());
    });
}
