#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The image's entry point and Dockerfile (no image can be built here: these check what `oc adm must-gather`
//! relies on).

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

#[test]
fn the_dockerfile_builds_a_static_non_root_image_with_tar_and_the_gather_entrypoint() {
    let docker = std::fs::read_to_string(repo().join("must-gather/Dockerfile")).unwrap();
    for needle in [
        "x86_64-unknown-linux-musl",
        "-p cma-must-gather --bin cma-must-gather",
        "/usr/bin/cma-must-gather",
        "COPY must-gather/gather /usr/bin/gather",
        "microdnf install -y --nodocs --setopt=install_weak_deps=0 tar rsync",
        "ENTRYPOINT [\"/usr/bin/gather\"]",
        "USER 65532:0",
        "COPY Cargo.toml Cargo.lock ./",
    ] {
        assert!(docker.contains(needle), "Dockerfile lacks {needle:?}");
    }
    // Every workspace member must be inside what the Dockerfile copies.
    let workspace = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let members = workspace.lines().find(|l| l.starts_with("members")).unwrap();
    for member in members.split('"').skip(1).step_by(2) {
        assert!(
            member.starts_with("crates/") || member == "tests",
            "workspace member {member} is not copied by must-gather/Dockerfile"
        );
    }
}
