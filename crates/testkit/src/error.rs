//! Errors: [`ApiError`] is what the fake answers over HTTP (a `metav1.Status`), [`Error`] is what the
//! direct (non-HTTP) test helpers return.

use http::StatusCode;
use serde_json::{Value, json};

/// A failed API call, rendered as a `metav1.Status` body so kube-rs yields `kube::Error::Api`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code (404, 409, ...).
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, ...).
    pub reason: String,
    /// Human-readable message, worded like the real API server's.
    pub message: String,
    /// `details` of the Status (name, group, kind, causes), if any.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error with the standard reason for `code`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self { code, reason: reason_for(code).to_string(), message: message.into(), details: None }
    }

    /// Attaches `details` (name, group, kind) like the real server does for object errors.
    pub fn with_details(mut self, group: &str, kind_plural: &str, name: &str) -> Self {
        self.details = Some(json!({ "name": name, "group": group, "kind": kind_plural }));
        self
    }

    /// Overrides the reason (e.g. `AlreadyExists` for a 409 on create).
    pub fn with_reason(mut self, reason: &str) -> Self {
        self.reason = reason.to_string();
        self
    }

    /// 404 for an object.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(404, format!("{} \"{name}\" not found", qualified(group, plural))).with_details(group, plural, name)
    }

    /// 409 AlreadyExists for a create.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(409, format!("{} \"{name}\" already exists", qualified(group, plural)))
            .with_reason("AlreadyExists")
            .with_details(group, plural, name)
    }

    /// 409 Conflict for a stale resourceVersion or failed precondition.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::new(409, format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(group, plural)))
            .with_details(group, plural, name)
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 422 Invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// The `metav1.Status` JSON body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }

    /// The HTTP status code, falling back to 500 for codes `http` rejects.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// `deployments.apps` style name used in the real server's messages.
fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
}

/// The `reason` the real API server uses for a status code.
pub(crate) fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// Errors of the direct (non-HTTP) helpers on [`crate::FakeApiServer`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server semantics refused the operation (same answer an HTTP client would get).
    #[error("api error: {0}")]
    Api(#[from] ApiError),
    /// The object has no `apiVersion`/`kind` matching a registered resource type.
    #[error("no registered resource for apiVersion {api_version:?} kind {kind:?}")]
    UnknownKind {
        /// apiVersion of the object.
        api_version: String,
        /// kind of the object.
        kind: String,
    },
    /// The group/resource is not registered.
    #[error("resource {0} is not registered")]
    UnknownResource(String),
    /// An object could not be converted to or from JSON.
    #[error("cannot convert object: {0}")]
    Json(#[from] serde_json::Error),
    /// A wait helper gave up.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(std::time::Duration, String),
}
