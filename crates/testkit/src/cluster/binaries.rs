//! Where the control-plane binaries come from: `CMA_K8S_BIN`, or the copies this repository's CI ships beside
//! the checkout (`../shared/k8s`, unpacked once into a cache folder by its `unpack.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ClusterError;

/// The three programs a control plane needs.
pub const PROGRAMS: [&str; 3] = ["etcd", "kube-apiserver", "kube-controller-manager"];

/// The folder holding the three programs.
pub fn locate() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("CMA_K8S_BIN").filter(|d| !d.is_empty()) {
        return check(PathBuf::from(dir), "CMA_K8S_BIN");
    }
    // This repository's CI ships them beside the checkout (or at the workplace's fixed path).
    let candidates = [workspace_root().join("../shared/k8s/unpack.sh"), PathBuf::from("/work/shared/k8s/unpack.sh")];
    let Some(unpack) = candidates.iter().find(|p| p.is_file()).cloned() else {
        return Err(ClusterError::Binaries(format!(
            "no Kubernetes control-plane binaries: set CMA_K8S_BIN to a folder holding {} (Kubernetes v1.36, etcd 3.6); \
             looked for {}",
            PROGRAMS.join(", "),
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and ")
        )));
    };
    let output = Command::new("bash")
        .arg(&unpack)
        .output()
        .map_err(|e| ClusterError::Binaries(format!("running {}: {e}", unpack.display())))?;
    if !output.status.success() {
        return Err(ClusterError::Binaries(format!(
            "{} failed ({}): {}",
            unpack.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    check(PathBuf::from(dir), &unpack.display().to_string())
}

fn check(dir: PathBuf, source: &str) -> Result<PathBuf, ClusterError> {
    let missing: Vec<&str> = PROGRAMS.iter().copied().filter(|p| !is_executable(&dir.join(p))).collect();
    if missing.is_empty() {
        Ok(dir)
    } else {
        Err(ClusterError::Binaries(format!(
            "{} (from {source}) lacks executable {}",
            dir.display(),
            missing.join(", ")
        )))
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The workspace root (this crate lives in `crates/testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
