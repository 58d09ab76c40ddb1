//! The reconcile's own [`Error`], and API errors as a person reads them (see [`crate::errors`]): the API
//! server's own message once, or the chain of causes of a transport failure, never a Rust `Debug` dump.

use std::time::Duration;

use super::apply::WriteError;
use crate::certs::CertError;
use crate::render::RenderError;

pub use crate::errors::{chain, describe};

/// Why a reconcile failed; it is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The watches have not completed their first list.
    #[error("the watches did not sync within {0:?}")]
    NotSynced(Duration),
    /// Objects could not be applied or deleted.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Write(Vec<WriteError>),
    /// Render failed (after validation passed: a packaging bug).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// An API call other than apply/prune failed.
    #[error("{action}: {}", describe(source))]
    Api {
        /// What was being done.
        action: String,
        /// The API error.
        source: kube::Error,
    },
    /// Certificates could not be issued.
    #[error(transparent)]
    Certificates(#[from] CertError),
}

impl Error {
    /// A short category, used as a metric label.
    pub fn category(&self) -> &'static str {
        match self {
            Error::NotSynced(_) => "sync",
            Error::Write(_) => "apply",
            Error::Render(_) => "render",
            Error::Api { .. } => "api",
            Error::Certificates(_) => "certificates",
        }
    }
}

/// Wraps a failed API call other than apply/prune, saying what was being done.
pub fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Api { action, source }
}
