//! The operator's Kubernetes client: kube's request layers (base URI, authentication with token refresh,
//! headers, retry of 429/503/504) over an HTTP/2 connection.
//!
//! kube's own client speaks HTTP/1.1, one request per connection: the operator's ~15 watches each hold a
//! connection, and every concurrent write of an apply wave opens another, with a TLS handshake each (the
//! real API server showed the first wave of a fresh install waiting ~50 ms for handshakes). Over HTTP/2 every
//! watch and write shares one connection, negotiated by ALPN (HTTP/1.1 stays possible for servers or proxies
//! without HTTP/2). Keep-alive pings notice a dead connection, so the watches move to a new one.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::{Body, ConfigExt};
use kube::{Client, Config};
use tower::{BoxError, ServiceBuilder};

pub use crate::USER_AGENT;

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configuration is unusable (TLS material, authentication).
    #[error("the Kubernetes client configuration is unusable: {0}")]
    Config(#[from] kube::Error),
    /// The User-Agent is not a valid header value.
    #[error("invalid User-Agent {0:?}")]
    UserAgent(String),
}

/// The request stack of [`client`], for callers that add a layer of their own (tests inject faults).
pub type Stack = tower::util::BoxService<
    http::Request<Body>,
    http::Response<Box<dyn http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + Unpin>>,
    BoxError,
>;

/// The request stack for `config`, identified as `user_agent`.
pub fn stack(mut config: Config, user_agent: &str) -> Result<Stack, ClientError> {
    let agent = http::HeaderValue::from_str(user_agent).map_err(|_| ClientError::UserAgent(user_agent.to_string()))?;
    config.headers.push((http::header::USER_AGENT, agent));
    // ALPN (h2, then http/1.1) is set by the connector builder below.
    let tls = config.rustls_client_config()?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(config.connect_timeout);
    // Without TCP_NODELAY, a request whose body goes out in a second segment (every PATCH) waits for the
    // API server's delayed ACK, ~40 ms on Linux: measured on the real API server as a 45 ms finalizer patch
    // and a 45 ms stall before each apply wave.
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http();
    let https = match config.tls_server_name.as_deref() {
        Some(name) => {
            let name = rustls::pki_types::ServerName::try_from(name.to_string())
                .map_err(|e| ClientError::Config(kube::Error::Service(Box::new(e))))?;
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
        }
        None => builder,
    }
    .enable_all_versions()
    .wrap_connector(http);
    let hyper = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_timeout(Duration::from_secs(10))
        .http2_keep_alive_while_idle(true)
        .build(https);
    let retry =
        config.default_retry.then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(retry)
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .map_response(|response: http::Response<hyper::body::Incoming>| {
            response.map(|body| {
                Box::new(http_body_util::BodyExt::map_err(body, BoxError::from))
                    as Box<dyn http_body::Body<Data = bytes::Bytes, Error = BoxError> + Send + Unpin>
            })
        })
        .service(hyper);
    Ok(tower::util::BoxService::new(service))
}

/// A client for `config`, identified as [`USER_AGENT`].
pub fn client(config: Config) -> Result<Client, ClientError> {
    let namespace = config.default_namespace.clone();
    Ok(Client::new(stack(config, USER_AGENT)?, namespace))
}
