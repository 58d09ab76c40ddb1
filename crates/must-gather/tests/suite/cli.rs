#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The binary as the image's `gather` script runs it.

use assert_cmd::Command;

#[test]
fn help_names_every_flag_and_the_exit_codes() {
    let out = Command::cargo_bin("cma-must-gather").unwrap().arg("--help").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for flag in ["--dest-dir", "--archive", "--since", "--since-time", "--timeout", "MUST_GATHER_SINCE", "Exit codes"] {
        assert!(text.contains(flag), "{flag} missing from --help:\n{text}");
    }
}

#[test]
fn without_any_cluster_configuration_it_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("cma-must-gather")
        .unwrap()
        .env_clear()
        .env("KUBECONFIG", dir.path().join("missing-kubeconfig"))
        .env("HOME", dir.path())
        // As `oc adm must-gather` may set them: present but empty.
        .env("MUST_GATHER_SINCE", "")
        .env("MUST_GATHER_SINCE_TIME", "")
        .arg(format!("--dest-dir={}", dir.path().join("out").display()))
        .assert()
        .code(1);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("cannot configure the Kubernetes client"), "{err}");
}

#[test]
fn an_invalid_since_is_refused_before_anything_runs() {
    Command::cargo_bin("cma-must-gather").unwrap().env("MUST_GATHER_SINCE", "three days").assert().code(2);
}

/// KEDA's metrics server down: the API server answers `GET /apis/external.metrics.k8s.io/v1beta1` with
/// `503` and the text `service unavailable` at once. The binary, with its real client stack, records that
/// answer after one request instead of retrying until its time limit, keeps kube's unnamed error lines off
/// the terminal, and names itself in every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_server_down_is_recorded_as_the_servers_503_within_seconds() {
    use cma_must_gather::collect::{EXTERNAL_METRICS_ERROR_FILE, EXTERNAL_METRICS_PATH};
    let fake = crate::common::populated();
    fake.set_raw_get_text(EXTERNAL_METRICS_PATH, 503, "service unavailable\n");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = fake.serve(listener, "must-gather");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cma_testkit::FakeApiServer::kubeconfig(addr)).unwrap();
    let out = dir.path().join("out");
    let home = dir.path().to_path_buf();
    let started = std::time::Instant::now();
    let output = {
        let out = out.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_cma-must-gather"))
                .env_clear()
                .env("KUBECONFIG", &kubeconfig)
                .env("HOME", &home)
                .arg(format!("--dest-dir={}", out.display()))
                .arg("--archive=false")
                .output()
                .unwrap()
        })
        .await
        .unwrap()
    };
    let elapsed = started.elapsed();
    server.abort();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(elapsed < std::time::Duration::from_secs(10), "took {elapsed:?}\n{stderr}");
    assert!(!stderr.contains("failed with status"), "kube's own error lines reached the terminal:\n{stderr}");
    assert!(
        stderr.contains(
            "failed: GET /apis/external.metrics.k8s.io/v1beta1: 503 Service Unavailable: service unavailable"
        ),
        "{stderr}"
    );
    // One request, answered and recorded as it was.
    let asked = fake.requests().into_iter().filter(|r| r.path == EXTERNAL_METRICS_PATH).count();
    assert_eq!(asked, 1, "the 503 was retried");
    let error = std::fs::read_to_string(out.join(EXTERNAL_METRICS_ERROR_FILE)).unwrap();
    let mut lines = error.lines();
    assert_eq!(
        lines.next(),
        Some("GET /apis/external.metrics.k8s.io/v1beta1: 503 Service Unavailable: service unavailable")
    );
    assert_eq!(
        lines.next(),
        Some(
            "APIService v1beta1.external.metrics.k8s.io is not Available: FailedDiscoveryCheck: failing or missing response from https://10.0.0.2:6443"
        )
    );
    let debug = std::fs::read_to_string(out.join("gather-debug.log")).unwrap();
    assert!(
        debug.lines().any(|l| l.contains(&format!("GET {EXTERNAL_METRICS_PATH} "))
            && l.ends_with("ERROR 503 Service Unavailable: service unavailable")),
        "{debug}"
    );
    assert!(!debug.contains("timed out"), "{debug}");
    // The API server's audit log and metrics name the collector.
    for r in fake.requests() {
        assert_eq!(r.user_agent.as_deref(), Some(cma_must_gather::fetch::USER_AGENT), "{r}");
    }
}
