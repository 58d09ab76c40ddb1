//! API errors as a person reads them: the API server's own message once (`Deployment.apps "keda-operator"
//! is invalid: ...`), or the chain of causes of a transport failure (`connection refused`), never a Rust
//! `Debug` dump. And the reconcile's own [`Error`].

use std::error::Error as _;
use std::time::Duration;

use super::apply::WriteError;
use crate::certs::CertError;
use crate::render::RenderError;

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

/// The most useful text of a client error.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        kube::Error::Api(status) => format!("the API server answered {} {}", status.code, status.reason),
        other => {
            let mut text = other.to_string();
            let mut source = other.source();
            while let Some(cause) = source {
                let part = cause.to_string();
                if !text.contains(&part) {
                    text.push_str(": ");
                    text.push_str(&part);
                }
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_show_the_servers_message_once() {
        let status = kube::core::Status::failure(
            "Deployment.apps \"keda-operator\" is invalid: spec.template.annotations: Too long",
            "Invalid",
        )
        .with_code(422);
        let text = describe(&kube::Error::Api(Box::new(status)));
        assert_eq!(text, "Deployment.apps \"keda-operator\" is invalid: spec.template.annotations: Too long");
    }

    #[test]
    fn transport_errors_show_their_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let text = describe(&kube::Error::Service(Box::new(io)));
        assert!(text.contains("connection refused"), "{text}");
    }
}
