//! Committed generated files (golden renderings, CRDs, the operator's RBAC, the bundle) checked against what
//! the code generates now, in one way everywhere: a difference fails the test and names every stale file;
//! with `UPDATE_GOLDEN=1` the files are rewritten instead (then review `git diff`). `hack/generate.sh`
//! runs every such test with it.

use std::path::{Path, PathBuf};

/// The environment variable that turns checking into rewriting.
pub const UPDATE_VAR: &str = "UPDATE_GOLDEN";

/// Whether this run rewrites the committed files instead of checking them.
pub fn updating() -> bool {
    std::env::var_os(UPDATE_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// A set of committed files checked (or rewritten) together.
#[derive(Debug, Default)]
#[must_use = "call `assert_fresh` to fail the test on stale files"]
pub struct Files {
    stale: Vec<String>,
    seen: Vec<PathBuf>,
}

impl Files {
    /// An empty set.
    pub fn new() -> Self {
        Files::default()
    }

    /// Holds `path` to `generated`: records a difference, or rewrites the file when [`updating`].
    pub fn check(&mut self, path: &Path, generated: &str) {
        self.seen.push(path.to_path_buf());
        if updating() {
            if let Some(parent) = path.parent()
                && let Err(e) = std::fs::create_dir_all(parent)
            {
                self.stale.push(format!("{}: {e}", parent.display()));
            }
            if let Err(e) = std::fs::write(path, generated) {
                self.stale.push(format!("{}: {e}", path.display()));
            }
            return;
        }
        match std::fs::read_to_string(path) {
            Ok(committed) if committed == generated => {}
            Ok(_) => self.stale.push(format!("{} differs from what the code generates", path.display())),
            Err(e) => self.stale.push(format!("{}: {e}", path.display())),
        }
    }

    /// Records that `path` holds a stale file for a reason found elsewhere (a file no case produces).
    pub fn stale(&mut self, message: impl Into<String>) {
        self.stale.push(message.into());
    }

    /// The files checked so far.
    pub fn checked(&self) -> &[PathBuf] {
        &self.seen
    }

    /// Fails with every stale file and how to regenerate them. `what` names the files (e.g. "the CRDs").
    #[track_caller]
    pub fn assert_fresh(self, what: &str) {
        assert!(
            self.stale.is_empty(),
            "{what} are out of date; regenerate with `{UPDATE_VAR}=1 cargo test` of this test (or hack/generate.sh) and review the diff:\n{}",
            self.stale.join("\n")
        );
    }
}

/// Flags every file in `dir` whose name no case produced (`checked`), so a removed case leaves no orphan.
pub fn no_strays(files: &mut Files, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        files.stale(format!("{}: cannot be read", dir.display()));
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !files.checked().contains(&path) {
            if updating() {
                let _ = std::fs::remove_file(&path);
            } else {
                files.stale(format!("{} belongs to no case; remove it", path.display()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_names_the_file() {
        if updating() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "old\n").unwrap();
        let mut files = Files::new();
        files.check(&path, "new\n");
        let message = std::panic::catch_unwind(move || files.assert_fresh("the files")).unwrap_err();
        let text = message.downcast_ref::<String>().unwrap();
        assert!(text.contains("a.yaml differs") && text.contains(UPDATE_VAR), "{text}");
    }

    #[test]
    fn equal_files_and_strays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "same\n").unwrap();
        std::fs::write(dir.path().join("orphan.yaml"), "x").unwrap();
        let mut files = Files::new();
        files.check(&path, "same\n");
        assert!(files.stale.is_empty());
        no_strays(&mut files, dir.path());
        if !updating() {
            assert_eq!(files.stale.len(), 1);
            assert!(files.stale[0].contains("orphan.yaml"));
        }
    }
}
