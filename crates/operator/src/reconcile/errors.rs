//! API errors as a person reads them: the API server's own message once (`Deployment.apps "keda-operator"
//! is invalid: ...`), or the chain of causes of a transport failure (`connection refused`), never a Rust
//! `Debug` dump.

use std::error::Error as _;

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
