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
