//! Reading the files of a bundle (and the repository's inputs) without trusting them: only regular files,
//! never through a symbolic link that leaves the directory being read, and never more than a limit.
//! A FIFO would block the reader forever, a device could be endless, and a link out of the bundle would
//! validate a file the bundle image does not contain.

use std::io::Read;
use std::path::{Path, PathBuf};

const MIB: u64 = 1024 * 1024;

/// The most bytes a file may have, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeLimit {
    /// Bytes.
    pub bytes: u64,
    /// What sets the limit, for the message.
    pub why: &'static str,
}

/// A file of the repository that generation reads (`config/`) or compares (`bundle/`): like a bundle
/// file, it holds one object the API server must accept, so it is never over the API server's 3 MiB.
pub const CONFIG_FILE: SizeLimit = SizeLimit { bytes: 3 * MIB, why: "the API server refuses larger requests" };

/// Why a file was not read. Displayed after the file's name: `manifests/x.yaml: a FIFO, not a regular file`.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A symbolic link leads outside the directory being read.
    #[error("a symbolic link to {}, outside {}", .target.display(), .root.display())]
    Outside {
        /// Where the link leads.
        target: PathBuf,
        /// The directory being read.
        root: PathBuf,
    },
    /// Not a regular file.
    #[error("a {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than its limit.
    #[error("{} bytes, over the {} MiB limit ({})", .bytes, .limit.bytes / MIB, .limit.why)]
    TooLarge {
        /// Bytes found (at least).
        bytes: u64,
        /// The limit.
        limit: SizeLimit,
    },
    /// Not UTF-8.
    #[error("not UTF-8 text ({0})")]
    NotText(std::str::Utf8Error),
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads `path` as bytes. With `root`, symbolic links are followed only while they stay under `root`.
pub fn read(path: &Path, root: Option<&Path>, limit: SizeLimit) -> Result<Vec<u8>, FileError> {
    let real = std::fs::canonicalize(path)?;
    if let Some(root) = root {
        let root = std::fs::canonicalize(root)?;
        if !real.starts_with(&root) {
            return Err(FileError::Outside { target: real, root });
        }
    }
    // Look before opening: opening some devices has effects of its own.
    regular(&std::fs::metadata(&real)?)?;
    let file = open(&real)?;
    // And look again at what was opened, in case the path changed in between.
    let metadata = file.metadata()?;
    regular(&metadata)?;
    if metadata.len() > limit.bytes {
        return Err(FileError::TooLarge { bytes: metadata.len(), limit });
    }
    let mut bytes = Vec::new();
    // One byte past the limit is enough to tell a file that grew since it was measured.
    file.take(limit.bytes.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(FileError::TooLarge { bytes: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

/// Reads `path` as UTF-8 text, as [`read`] does.
pub fn read_text(path: &Path, root: Option<&Path>, limit: SizeLimit) -> Result<String, FileError> {
    String::from_utf8(read(path, root, limit)?).map_err(|e| FileError::NotText(e.utf8_error()))
}

fn regular(metadata: &std::fs::Metadata) -> Result<(), FileError> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(FileError::NotRegular(describe(&kind)))
}

#[cfg(unix)]
fn describe(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_socket() {
        "socket"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn describe(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() { "directory" } else { "special file" }
}

/// Opens without blocking (a FIFO swapped in after the check opens at once instead of waiting for a
/// writer, and is then refused) and without following a link swapped in for the last component.
#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW).open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const LIMIT: SizeLimit = SizeLimit { bytes: 16, why: "a test" };

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "kind: x\n").unwrap();
        assert_eq!(read_text(&dir.path().join("a"), Some(dir.path()), LIMIT).unwrap(), "kind: x\n");
    }

    #[test]
    fn a_larger_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "x".repeat(17)).unwrap();
        let err = read(&dir.path().join("a"), None, LIMIT).unwrap_err();
        assert!(matches!(err, FileError::TooLarge { bytes: 17, .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn links_inside_the_root_are_followed_and_links_out_of_it_are_not() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("inside")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("out")).unwrap();
        assert_eq!(read(&dir.path().join("inside"), Some(dir.path()), LIMIT).unwrap(), b"a");
        let err = read(&dir.path().join("out"), Some(dir.path()), LIMIT).unwrap_err();
        assert!(matches!(err, FileError::Outside { .. }), "{err}");
        assert!(err.to_string().starts_with("a symbolic link to "), "{err}");
    }

    #[test]
    fn a_directory_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path(), None, LIMIT).unwrap_err();
        assert_eq!(err.to_string(), "a directory, not a regular file");
    }
}
