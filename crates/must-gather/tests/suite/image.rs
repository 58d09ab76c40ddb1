#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The image's entry point (no image can be built here: these check what `oc adm must-gather` relies on).
//! The operator image carries it; crates/bundle's tests check that ./Dockerfile puts it, the binary and tar
//! into that image.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn gather_script() -> PathBuf {
    repo().join("must-gather/gather")
}

/// A stand-in for the binary that records its arguments and exits with `code`.
fn stub(dir: &Path, code: i32) -> PathBuf {
    let path = dir.join("stub");
    std::fs::write(&path, format!("#!/bin/sh\necho \"$@\" > \"{}/args\"\nexit {code}\n", dir.display())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn gather_writes_to_must_gather_or_the_given_directory_with_the_archive_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let status = Command::new("bash")
        .arg(gather_script())
        .arg(&out)
        .env("CMA_MUST_GATHER_BIN", stub(dir.path(), 0))
        .env_remove("CMA_MUST_GATHER_ARCHIVE")
        .status()
        .unwrap();
    assert!(status.success());
    assert!(out.is_dir());
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(args.trim(), format!("--dest-dir {} --archive=true", out.display()));

    let status = Command::new("bash")
        .arg(gather_script())
        .arg(&out)
        .env("CMA_MUST_GATHER_BIN", stub(dir.path(), 2))
        .env("CMA_MUST_GATHER_ARCHIVE", "false")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2), "the exit code reaches oc");
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert!(args.trim().ends_with("--archive=false"), "{args}");
    let script = std::fs::read_to_string(gather_script()).unwrap();
    assert!(script.contains("dest=\"${1:-/must-gather}\""));
    assert!(std::fs::metadata(gather_script()).unwrap().permissions().mode() & 0o111 != 0);
}

#[test]
fn gather_runs_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(gather_script())
        .arg(dir.path().join("out"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.path())
        .env("KUBECONFIG", dir.path().join("none"))
        .env("CMA_MUST_GATHER_BIN", env!("CARGO_BIN_EXE_cma-must-gather"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot configure the Kubernetes client"));
}
