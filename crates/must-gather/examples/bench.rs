//! must-gather benchmark against the real API server (run it with `hack/bench-must-gather.sh`).
//!
//! Starts a control plane (`cma_testkit::cluster`), populates it with the test fixture (one cma-operator
//! installation, KEDA's metrics API served), gives the three KEDA pods `--log-mb` MB of logs each (served by the
//! test kubelet through the API server), creates `--scaledobjects` ScaledObjects, each with its `keda-hpa-*` HPA,
//! spread over `--namespaces` namespaces, then runs the `cma-must-gather` binary given with `--bin` under
//! `/usr/bin/time -v` with the archive on, and prints its wall time, its peak resident set, the archive size and
//! the summary. The controller manager is paused during the gather, so nothing else loads the API server.
//!
//! `--sample DIR` instead writes the tree of the test fixture to DIR (for reading the output by eye).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/suite/common/mod.rs"]
mod common;

use cma_api::Component;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use cma_must_gather::Options;
use futures::StreamExt;
use serde_json::json;

struct Args {
    scaledobjects: usize,
    namespaces: usize,
    log_mb: usize,
    bin: Option<PathBuf>,
    out: Option<PathBuf>,
    sample: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args { scaledobjects: 1000, namespaces: 100, log_mb: 10, bin: None, out: None, sample: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag value");
        match flag.as_str() {
            "--scaledobjects" => a.scaledobjects = value().parse().unwrap(),
            "--namespaces" => a.namespaces = value().parse().unwrap(),
            "--log-mb" => a.log_mb = value().parse().unwrap(),
            "--bin" => a.bin = Some(PathBuf::from(value())),
            "--out" => a.out = Some(PathBuf::from(value())),
            "--sample" => a.sample = Some(PathBuf::from(value())),
            other => panic!(
                "unknown flag {other} (--bin PATH [--scaledobjects N --namespaces N --log-mb N --out DIR] | --sample DIR)"
            ),
        }
    }
    a
}

/// About `mb` MB of KEDA-like log lines, every line different, as the kubelet keeps them (timestamp first).
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

/// A line of `/usr/bin/time -v`'s report, by its label.
fn time_field<'a>(report: &'a str, label: &str) -> &'a str {
    report.lines().find_map(|l| l.trim().strip_prefix(label)).map(str::trim).unwrap_or("?")
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        if let Some(dir) = args.sample {
            let fx = common::populated().await;
            let summary = fx.gather(&Options { dest_dir: dir.clone(), archive: true, ..Options::default() }).await;
            eprintln!("{}", summary.report());
            return;
        }
        let bin = args.bin.expect("--bin PATH: the cma-must-gather binary to measure");

        let setup = Instant::now();
        let fx = common::populated().await;
        for (i, deploy) in Component::ALL.map(Component::deployment_name).iter().enumerate() {
            let container = common::container_of(deploy);
            fx.cluster.container_logs().set(&fx.ns, fx.pod(deploy), container, log_text(args.log_mb, i));
        }
        let mut namespaces = Vec::new();
        for _ in 0..args.namespaces {
            namespaces.push(fx.cluster.namespace("ns").await);
        }
        let objects = (0..args.scaledobjects).map(|i| {
            let ns = namespaces[i % args.namespaces].clone();
            let cluster = &fx.cluster;
            async move {
                let so = format!("so-{i}");
                let created = cluster
                    .create(&json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                        "metadata": {"name": so, "namespace": ns},
                        "spec": {"scaleTargetRef": {"name": format!("web-{i}")}, "minReplicaCount": 0, "maxReplicaCount": 10,
                            "triggers": [
                                {"type": "prometheus", "metadata": {"serverAddress": "http://prometheus:9090", "query": format!("sum(rate(http_requests_total{{app=\"web-{i}\"}}[2m]))"), "threshold": "100"}},
                                {"type": "kafka", "metadata": {"bootstrapServers": "kafka:9092", "consumerGroup": "g", "topic": "t"}, "authenticationRef": {"name": "kafka-auth"}},
                            ]}}))
                    .await;
                common::create(cluster, json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": format!("keda-hpa-{so}"), "namespace": ns, "labels": {"scaledobject.keda.sh/name": so},
                        "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": so,
                                             "uid": created["metadata"]["uid"], "controller": true}]},
                    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": format!("web-{i}")}, "minReplicas": 1, "maxReplicas": 10,
                        "metrics": [{"type": "External", "external": {"metric": {"name": format!("s0-prometheus-{i}"),
                            "selector": {"matchLabels": {"scaledobject.keda.sh/name": so}}}, "target": {"type": "AverageValue", "averageValue": "100"}}}]}}))
                .await;
            }
        });
        futures::stream::iter(objects).buffer_unordered(16).collect::<Vec<()>>().await;
        let setup_time = setup.elapsed();

        let out = args.out.unwrap_or_else(|| std::env::temp_dir().join("cma-must-gather-bench"));
        let _ = std::fs::remove_dir_all(&out);
        let paused = fx.cluster.pause_controllers().await;
        let kubeconfig = fx.cluster.kubeconfig();
        let dest = out.clone();
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || {
            Command::new("/usr/bin/time")
                .arg("-v")
                .arg(&bin)
                .arg(format!("--dest-dir={}", dest.display()))
                .arg("--archive")
                .env("KUBECONFIG", kubeconfig)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let wall = started.elapsed();
        drop(paused);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let (summary, report) = stderr.split_once("\tCommand being timed").unwrap_or((&stderr, ""));
        eprintln!("{summary}");
        let archive = std::fs::metadata(out.join("must-gather.tar.gz")).map_or(0, |m| m.len());
        println!(
            "scaledobjects={} namespaces={} log_mb_per_pod={} pods_with_big_logs=3",
            args.scaledobjects, args.namespaces, args.log_mb
        );
        println!("setup_s={:.1}", setup_time.as_secs_f64());
        println!("gather_wall_s={:.3}", wall.as_secs_f64());
        println!("time_wall={}", time_field(report, "Elapsed (wall clock) time (h:mm:ss or m:ss):"));
        println!("time_max_rss_kib={}", time_field(report, "Maximum resident set size (kbytes):"));
        println!("archive_bytes={archive}");
        println!("exit_code={}", output.status.code().map_or(-1, i64::from));
    });
}
