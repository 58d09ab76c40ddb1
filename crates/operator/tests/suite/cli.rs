//! The `cma-operator` command line as a user runs it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;

fn cmd() -> Command {
    let mut cmd = Command::cargo_bin("cma-operator").unwrap();
    // The tests must not see the developer's or CI's image overrides.
    for var in [
        "RELATED_IMAGE_KEDA_OPERATOR",
        "RELATED_IMAGE_KEDA_METRICS_APISERVER",
        "RELATED_IMAGE_KEDA_ADMISSION_WEBHOOKS",
        "KEDA_OPERATOR_IMAGE",
        "KEDA_METRICS_SERVER_IMAGE",
        "KEDA_ADMISSION_WEBHOOKS_IMAGE",
        "OPERATOR_NAMESPACE",
        "CMA_PLATFORM",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn sample() -> String {
    repo("config/samples/keda_v1alpha1_kedacontroller.yaml").display().to_string()
}

#[test]
fn rendering_the_sample_prints_every_object_as_yaml() {
    let out = cmd().args(["render", "-f", &sample()]).assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    let docs: Vec<serde_yaml::Value> =
        serde_yaml::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    assert_eq!(docs.len(), 16);
    assert!(docs.iter().any(|d| d["kind"] == "APIService"));
    assert!(docs.iter().all(|d| d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "cma-operator"));
}

#[test]
fn json_output_is_a_list() {
    let out = cmd().args(["render", "-f", &sample(), "-o", "json"]).assert().success().get_output().stdout.clone();
    let list: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"].as_array().unwrap().len(), 16);
}

#[test]
fn openshift_platform_adds_service_ca_wiring() {
    cmd()
        .args(["render", "-f", &sample(), "--platform", "openshift"])
        .assert()
        .success()
        .stdout(predicate::str::contains("service.beta.openshift.io/inject-cabundle"))
        .stdout(predicate::str::contains("keda-ocp-cabundle"));
}

#[test]
fn standard_input_is_read_with_a_dash_and_the_namespace_flag_fills_a_missing_namespace() {
    cmd()
        .args(["render", "-f", "-", "-n", "autoscaling"])
        .write_stdin("apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata:\n  name: keda\n")
        .assert()
        .success()
        .stdout(predicate::str::contains("namespace: autoscaling"));
}

#[test]
fn a_missing_namespace_is_a_clear_error() {
    cmd()
        .args(["render", "-f", "-"])
        .write_stdin("apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata:\n  name: keda\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("has no namespace"));
}

#[test]
fn an_invalid_controller_exits_1_with_one_line_per_violation() {
    let input = "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata: {name: keda, namespace: keda}\nspec:\n  operator: {logLevel: loud, replicas: 0}\n  metricsServer: {logLevel: \"12\"}\n";
    let out = cmd().args(["render", "-f", "-"]).write_stdin(input).assert().code(1).get_output().clone();
    assert!(out.stdout.is_empty(), "nothing is rendered for an invalid controller");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].contains("3 problems"), "{stderr}");
    assert!(lines[1].trim_start().starts_with("spec.operator.logLevel: "), "{stderr}");
    assert!(lines[2].trim_start().starts_with("spec.operator.replicas: "), "{stderr}");
    assert!(lines[3].trim_start().starts_with("spec.metricsServer.logLevel: "), "{stderr}");
}

#[test]
fn unknown_fields_are_named() {
    cmd()
        .args(["render", "-f", "-"])
        .write_stdin("apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata: {name: keda, namespace: keda}\nspec:\n  operater: {}\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("unknown field: spec.operater"));
}

#[test]
fn the_documented_install_example_is_told_to_write_omit_stages_as_a_list() {
    let file = repo("crates/api/tests/fixtures/kedacontroller/seed-install.yaml").display().to_string();
    let out = cmd().args(["render", "-f", &file]).assert().code(1).get_output().clone();
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "spec.metricsServer.auditConfig.policy.omitStages must be a list, e.g. omitStages: [RequestReceived]"
        ),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_file_is_a_clear_error_not_a_panic() {
    cmd()
        .args(["render", "-f", "/nonexistent/kc.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot read /nonexistent/kc.yaml"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn bad_yaml_is_a_clear_error_not_a_panic() {
    cmd()
        .args(["render", "-f", "-"])
        .write_stdin("spec: [unclosed\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a valid KedaController document"))
        .stderr(predicate::str::contains("panicked").not());
}

/// The head of a KedaController up to `spec.operator`.
const HEAD: &str = "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata:\n  name: keda\n  namespace: keda\nspec:\n  operator:\n";

#[test]
fn an_alias_bomb_is_refused_at_its_first_alias() {
    // One 200-key anchor used 20,000 times: 61 KB that used to build four million nodes.
    let keys: Vec<String> = (0..200).map(|i| format!("k{i}: v{i}")).collect();
    let bomb =
        format!("{HEAD}    podAnnotations: &a {{{}}}\n    args: [{}]\n", keys.join(", "), vec!["*a"; 20_000].join(","));
    cmd()
        .args(["render", "-f", "-"])
        .write_stdin(bomb)
        .assert()
        .code(1)
        .stdout("")
        .stderr("error: -: line 9 column 12: YAML aliases (*a) are not accepted in a KedaController\n");
}

#[test]
fn deep_nesting_is_refused_naming_the_line() {
    let deep = format!("{HEAD}    args: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    cmd()
        .args(["render", "-f", "-"])
        .write_stdin(deep)
        .assert()
        .code(1)
        .stderr("error: -: line 8 column 72: nesting deeper than 64 levels, the limit for a KedaController\n");
}

#[test]
fn a_huge_input_is_refused_without_reading_it_all() {
    let huge = format!("{HEAD}    args:\n{}", "      - 'x'\n".repeat(2_000_000));
    cmd()
        .args(["render", "-f", "-"])
        .write_stdin(huge)
        .assert()
        .code(1)
        .stderr("error: -: the input is larger than 1.5 MiB, the limit for a KedaController\n");
}

#[test]
fn another_kind_is_refused() {
    cmd()
        .args(["render", "-f", "-"])
        .write_stdin("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("expected apiVersion keda.sh/v1alpha1 and kind KedaController"));
}

#[test]
fn related_image_environment_overrides_the_default_image() {
    cmd()
        .args(["render", "-f", &sample()])
        .env("RELATED_IMAGE_KEDA_OPERATOR", "mirror.example.com/keda@sha256:1234")
        .assert()
        .success()
        .stdout(predicate::str::contains("image: mirror.example.com/keda@sha256:1234"))
        .stdout(predicate::str::contains("image: ghcr.io/kedacore/keda-metrics-apiserver:2.20.2"));
}

#[test]
fn crds_prints_the_generated_crds() {
    let out = cmd().arg("crds").assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    let committed = std::fs::read_to_string(repo("config/crd/bases/keda.sh_kedacontrollers.yaml")).unwrap();
    let body = committed.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    assert!(text.contains(body.trim()), "crds output differs from the committed KedaController CRD");
}

#[test]
fn version_names_keda_and_the_images() {
    cmd()
        .arg("version")
        .assert()
        .success()
        .stdout(predicate::str::contains("KEDA 2.20.2"))
        .stdout(predicate::str::contains("operator: ghcr.io/kedacore/keda:2.20.2"))
        .stdout(predicate::str::contains("admissionWebhooks: ghcr.io/kedacore/keda-admission-webhooks:2.20.2"));
}

#[test]
fn usage_errors_exit_2() {
    cmd().args(["render"]).assert().code(2);
    cmd().args(["render", "-f", &sample(), "--platform", "mesos"]).assert().code(2);
}

#[test]
fn render_refuses_pod_annotations_over_the_kubernetes_size_limit() {
    // 300 annotations of 1000 bytes: the Deployment's pod template could never be stored.
    let mut input = String::from(
        "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata: {name: keda, namespace: keda}\nspec:\n  operator:\n    podAnnotations:\n",
    );
    let value = "x".repeat(1000);
    for i in 0..300 {
        input.push_str(&format!("      example.com/a{i}: {value}\n"));
    }
    let out = cmd().args(["render", "-f", "-"]).write_stdin(input).assert().code(1).get_output().clone();
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("spec.operator.podAnnotations: "), "{stderr}");
    assert!(stderr.contains("at most 260096 bytes"), "{stderr}");
}

#[test]
fn uninstall_without_a_reachable_cluster_says_why_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    // Nothing listens on port 1.
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
    )
    .unwrap();
    let out = cmd()
        .args(["uninstall", "-n", "keda", "--dry-run"])
        .env("KUBECONFIG", &kubeconfig)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("error: cannot read KedaController keda/keda: "), "{stderr}");
    assert!(stderr.to_lowercase().contains("connection refused"), "{stderr}");
    assert!(!stderr.contains("Status {") && !stderr.contains('\u{1b}'), "{stderr}");
}
