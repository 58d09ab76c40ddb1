//! Errors as a person reads them: the API server's own message once (`Deployment.apps "keda-operator" is
//! invalid: ...`), or the chain of causes of a transport failure (`connection refused`), never a Rust `Debug`
//! dump such as `Status { status: Some(Failure), ... }`.
//!
//! kube's `Error::Api` displays as `ApiError: <message> (<Debug of the whole Status>)`, and every error that
//! wraps it (a watcher's `failed to perform initial object list: {0}`, our own `{0}` variants) repeats that
//! text. Anything that shows an error to a user (logs, status, events, the command line) goes through
//! [`describe`] or [`chain`].

use std::error::Error as StdError;

/// The most useful text of a client error.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status_text(status),
        other => causes(other),
    }
}

/// The text of any error whose chain of causes may hold a [`kube::Error`] (or a bare API `Status`): each
/// wrapper's own words, then the API server's message in place of kube's debug rendering.
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    if let Some(kube) = error.downcast_ref::<kube::Error>() {
        return describe(kube);
    }
    if let Some(status) = error.downcast_ref::<kube::core::Status>() {
        return status_text(status);
    }
    let text = error.to_string();
    let Some(cause) = error.source() else {
        return text;
    };
    let raw = cause.to_string();
    let readable = chain(cause);
    if text.contains(&raw) {
        // The wrapper repeats its cause's text (`"...: {0}"`): put the readable form in its place.
        text.replace(&raw, &readable)
    } else if text.contains(&readable) {
        text
    } else {
        format!("{text}: {readable}")
    }
}

fn status_text(status: &kube::core::Status) -> String {
    if status.message.is_empty() {
        format!("the API server answered {} {}", status.code, status.reason)
    } else {
        status.message.clone()
    }
}

/// An error followed by each of its causes that adds something.
fn causes(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden() -> kube::Error {
        let status = kube::core::Status::failure(
            "leases.coordination.k8s.io \"cma-operator-leader\" is forbidden: User \"system:serviceaccount:keda:cma-operator\" cannot update resource \"leases\"",
            "Forbidden",
        )
        .with_code(403);
        kube::Error::Api(Box::new(status))
    }

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

    #[test]
    fn a_watch_error_shows_its_words_and_the_servers_message_without_a_debug_dump() {
        let error = kube::runtime::watcher::Error::InitialListFailed(forbidden());
        let text = chain(&error);
        assert!(text.starts_with("failed to perform initial object list: leases.coordination.k8s.io"), "{text}");
        assert!(!text.contains("Status {") && !text.contains("Some(") && !text.contains("ApiError"), "{text}");
    }

    #[test]
    fn our_own_wrappers_keep_their_words() {
        #[derive(Debug, thiserror::Error)]
        #[error("initial API discovery failed: {0}")]
        struct Wrapper(#[source] kube::Error);
        let text = chain(&Wrapper(forbidden()));
        assert!(text.starts_with("initial API discovery failed: leases.coordination.k8s.io"), "{text}");
        assert!(!text.contains("Status {"), "{text}");
    }

    #[test]
    fn a_wrapper_that_does_not_repeat_its_cause_gets_it_appended() {
        #[derive(Debug, thiserror::Error)]
        #[error("could not renew")]
        struct Wrapper(#[source] kube::Error);
        assert_eq!(chain(&Wrapper(forbidden())), format!("could not renew: {}", describe(&forbidden())));
    }
}
