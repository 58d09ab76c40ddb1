//! Errors of bundle generation; validation findings are [`crate::validate::Finding`]s, not errors.

use std::path::PathBuf;

/// Why the bundle could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file was refused or could not be read (not a regular file, too large, not text).
    #[error("{}: {source}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::files::FileError,
    },
    /// A YAML document could not be parsed or produced.
    #[error("{path}: {message}")]
    Yaml {
        /// The file (or what was being serialized).
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// An input holds something the generator cannot use.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The operator's code could not render or describe its objects.
    #[error("the operator's code: {0}")]
    Operator(String),
    /// The permissions in config/rbac do not allow something the operator is known to need.
    #[error(
        "config/rbac lacks permissions the operator needs (regenerate with `bash hack/generate.sh`):\n{}",
        .0.join("\n")
    )]
    MissingPermissions(Vec<String>),
}

impl BundleError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BundleError::Io { path, source }
    }

    /// A file refused or unreadable at `path`.
    pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(crate::files::FileError) -> Self {
        let path = path.into();
        move |source| BundleError::File { path, source }
    }

    /// A YAML error (reading: [`cma_api::yaml::YamlError`]; writing: `serde_yaml::Error`) on `path`.
    pub fn yaml<E: std::fmt::Display>(path: impl Into<PathBuf>) -> impl FnOnce(E) -> Self {
        let path = path.into();
        move |e| BundleError::Yaml { path, message: e.to_string() }
    }

    /// An unusable input.
    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        BundleError::Input { path: path.into(), message: message.into() }
    }
}
