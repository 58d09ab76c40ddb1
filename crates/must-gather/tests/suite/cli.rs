#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The binary as the image's `gather` script runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use cma_must_gather::collect::{EXTERNAL_METRICS_APISERVICE, EXTERNAL_METRICS_ERROR_FILE, EXTERNAL_METRICS_PATH};
use cma_must_gather::fetch::USER_AGENT;
use cma_testkit::cluster::{AuditMark, kinds};

use crate::common::{self, Fixture, MetricsServer};

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

/// Runs the binary with `kubeconfig` into `out` (no archive); returns its output and how long it took.
async fn run_binary(kubeconfig: &Path, out: &Path) -> (std::process::Output, Duration) {
    let (kubeconfig, out) = (kubeconfig.to_path_buf(), out.to_path_buf());
    let home = out.parent().unwrap().to_path_buf();
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || {
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
    .unwrap();
    (output, started.elapsed())
}

/// A run of the binary against a fixture: where it wrote, the audit mark before it, its stderr.
struct Gathered {
    out: PathBuf,
    mark: AuditMark,
    stderr: String,
    _dir: tempfile::TempDir,
}

/// Runs the binary against `fx`: it must succeed within 10 s, whatever state the metrics server is in.
async fn gather_within_seconds(fx: &Fixture) -> Gathered {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mark = fx.cluster.audit().mark();
    let (output, elapsed) = run_binary(&fx.cluster.kubeconfig(), &out).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}\n{stderr}");
    Gathered { out, mark, stderr, _dir: dir }
}

/// The collector's requests to the external metrics API and to its APIService since `mark`, in the order the
/// API server answered them: ("api" | "apiservice", answer code).
fn metrics_requests(fx: &Fixture, mark: AuditMark) -> Vec<(&'static str, u16)> {
    fx.cluster
        .audit()
        .by_agent(mark, USER_AGENT)
        .into_iter()
        .filter_map(|e| {
            if e.uri == EXTERNAL_METRICS_PATH {
                Some(("api", e.code))
            } else if e.object.resource == "apiservices" && e.object.name == EXTERNAL_METRICS_APISERVICE {
                Some(("apiservice", e.code))
            } else {
                None
            }
        })
        .collect()
}

/// KEDA's metrics server down (issue 11.2), on the real API server: its pod crash-loops, so its Service has no
/// ready endpoint, the APIService is not Available (`MissingEndpoints`), and the API server answers
/// `GET /apis/external.metrics.k8s.io/v1beta1` with `503` and the text `service unavailable` at once. The
/// binary, with its real client stack, reads the APIService first, asks the API once, records the server's
/// answer as it is with the APIService's reason, keeps kube's unnamed error lines off the terminal, names
/// itself in every request, and is done within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_server_down_is_recorded_as_the_servers_503_within_seconds() {
    let fx = common::populated_with(MetricsServer::CrashLooping).await;
    let Gathered { out, mark, stderr, _dir } = gather_within_seconds(&fx).await;
    assert!(!stderr.contains("failed with status"), "kube's own error lines reached the terminal:\n{stderr}");
    assert!(
        stderr.contains(
            "failed: GET /apis/external.metrics.k8s.io/v1beta1: 503 Service Unavailable: service unavailable"
        ),
        "{stderr}"
    );
    // The APIService first, then the API, once: the 503 is not retried.
    assert_eq!(metrics_requests(&fx, mark), vec![("apiservice", 200), ("api", 503)]);
    let apiservice = fx.cluster.get(&kinds::API_SERVICE, "", EXTERNAL_METRICS_APISERVICE).await.unwrap();
    let message = apiservice["status"]["conditions"][0]["message"].as_str().unwrap().to_string();
    let error = std::fs::read_to_string(out.join(EXTERNAL_METRICS_ERROR_FILE)).unwrap();
    assert_eq!(
        error,
        format!(
            "GET /apis/external.metrics.k8s.io/v1beta1: 503 Service Unavailable: service unavailable\n\
             APIService v1beta1.external.metrics.k8s.io is not Available: MissingEndpoints: {message}\n"
        )
    );
    let debug = std::fs::read_to_string(out.join("gather-debug.log")).unwrap();
    assert!(
        debug.lines().any(|l| l.contains(&format!("GET {EXTERNAL_METRICS_PATH} "))
            && l.ends_with("ERROR 503 Service Unavailable: service unavailable")),
        "{debug}"
    );
    assert!(!debug.contains("timed out"), "{debug}");
    // The API server's audit log names the collector for every request it made.
    let logged =
        debug.lines().filter(|l| l.contains(" GET /") && (l.contains("ms ok") || l.contains("ms ERROR"))).count();
    let ours = common::collector_requests(&fx.cluster, mark, logged).await;
    assert_eq!(ours.len(), logged);
}

/// KEDA's metrics server hung while the APIService still says Available (its availability check has not run
/// since): the aggregator gives up after its own 5 s and answers `503 error trying to reach service`; the
/// collector records that answer and the condition it saw, and is still done within seconds. Should the
/// availability check have run first, the APIService says `FailedDiscoveryCheck` and the answer is an
/// immediate `503 service unavailable`: either way, one request and the server's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_metrics_server_costs_seconds_and_its_503_is_recorded() {
    let fx = common::populated().await;
    fx.metrics().silence();
    let Gathered { out, mark, _dir, .. } = gather_within_seconds(&fx).await;
    let requests = metrics_requests(&fx, mark);
    assert_eq!(requests, vec![("apiservice", 200), ("api", 503)]);
    let apiservice: serde_yaml::Value =
        serde_yaml::from_str(
            &std::fs::read_to_string(out.join(
                "cluster-scoped-resources/apiregistration.k8s.io/apiservices/v1beta1.external.metrics.k8s.io.yaml",
            ))
            .unwrap(),
        )
        .unwrap();
    let condition = &apiservice["status"]["conditions"][0];
    let error = std::fs::read_to_string(out.join(EXTERNAL_METRICS_ERROR_FILE)).unwrap();
    if condition["status"] == "True" {
        assert_eq!(
            error,
            "GET /apis/external.metrics.k8s.io/v1beta1: 503 Service Unavailable: error trying to reach service: context deadline exceeded\n\
             APIService v1beta1.external.metrics.k8s.io was Available when asked: Passed: all checks passed\n"
        );
    } else {
        assert_eq!(
            error,
            format!(
                "GET /apis/external.metrics.k8s.io/v1beta1: 503 Service Unavailable: service unavailable\n\
                 APIService v1beta1.external.metrics.k8s.io is not Available: FailedDiscoveryCheck: {}\n",
                condition["message"].as_str().unwrap()
            )
        );
    }
}

/// The binary with a ServiceAccount's kubeconfig that may read everything but pods: the API server's refusals
/// are recorded, and the exit code says that something essential is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_that_may_not_list_pods_gets_exit_code_2() {
    let fx = common::populated().await;
    fx.gatherer_without("no-pods", &["pods", "pods/log"]).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fx.cluster.service_account_kubeconfig(&fx.ns, "no-pods", &kubeconfig).await;
    let out = dir.path().join("out");
    let (output, _) = run_binary(&kubeconfig, &out).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("missing: list pods in {}", fx.ns)), "{stderr}");
    assert!(stderr.contains("must-gather: PARTIAL"), "{stderr}");
    // The token is the client's credential: never written.
    let token = std::fs::read_to_string(&kubeconfig).unwrap();
    let token = token.split("token: ").nth(1).unwrap().split('}').next().unwrap().trim().to_string();
    for file in common::files(&out) {
        let text = std::fs::read(out.join(&file)).unwrap();
        assert!(!text.windows(token.len()).any(|w| w == token.as_bytes()), "the token is in {}", file.display());
    }
}
