//! `must-gather.tar.gz`: the whole tree under a top-level `must-gather/` folder, entries in sorted order,
//! written to a temporary name first so a reader never sees half an archive.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

/// File name of the archive inside the destination directory.
pub const ARCHIVE_NAME: &str = "must-gather.tar.gz";

/// Folder every entry of the archive sits in.
pub const ARCHIVE_ROOT: &str = "must-gather";

const TEMP_NAME: &str = ".must-gather.tar.gz.partial";

/// Every regular file below `root`, relative, sorted; the archive itself (and its temporary) left out.
pub fn tree_files(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    walk(root, Path::new(""), &mut files)?;
    files.retain(|f| f != Path::new(ARCHIVE_NAME) && f != Path::new(TEMP_NAME));
    files.sort();
    Ok(files)
}

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let ty = entry.file_type()?;
        let child = rel.join(entry.file_name());
        if ty.is_dir() {
            walk(root, &child, out)?;
        } else if ty.is_file() {
            out.push(child);
        }
    }
    Ok(())
}

/// Writes `root/must-gather.tar.gz` of every file below `root`; returns its path.
pub fn write_archive(root: &Path) -> std::io::Result<PathBuf> {
    write_archive_of(root, &tree_files(root)?)
}

/// Writes `root/must-gather.tar.gz` of these files (relative to `root`, archived in this order).
pub fn write_archive_of(root: &Path, files: &[PathBuf]) -> std::io::Result<PathBuf> {
    let temp = root.join(TEMP_NAME);
    let result = (|| {
        let out = BufWriter::new(File::create(&temp)?);
        let mut tar = tar::Builder::new(GzEncoder::new(out, Compression::default()));
        tar.mode(tar::HeaderMode::Complete);
        for rel in files {
            let mut name = PathBuf::from(ARCHIVE_ROOT);
            name.push(rel);
            tar.append_path_with_name(root.join(rel), &name)?;
        }
        let mut gz = tar.into_inner()?;
        gz.flush()?;
        let mut out = gz.finish()?;
        out.flush()?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    let path = root.join(ARCHIVE_NAME);
    std::fs::rename(&temp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_archive_holds_every_file_once_under_one_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("namespaces/k/core")).unwrap();
        std::fs::write(root.join("namespaces/k/core/pods.yaml"), "items: []\n").unwrap();
        std::fs::write(root.join("version"), "cma-operator\n1.0.0\n").unwrap();
        let first = write_archive(root).unwrap();
        // A second run must not pack the first archive into itself.
        let path = write_archive(root).unwrap();
        assert_eq!(first, path);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&path).unwrap()));
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            names.push((entry.path().unwrap().display().to_string(), content));
        }
        assert_eq!(
            names,
            vec![
                ("must-gather/namespaces/k/core/pods.yaml".to_string(), "items: []\n".to_string()),
                ("must-gather/version".to_string(), "cma-operator\n1.0.0\n".to_string()),
            ]
        );
        assert!(!root.join(TEMP_NAME).exists());
    }
}
