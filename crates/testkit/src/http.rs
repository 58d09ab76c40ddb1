//! Serving the fake over plain HTTP on a TCP port, so a separate process (the operator binary under test
//! or under a benchmark) can use it through a kubeconfig.

use std::convert::Infallible;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::Service;

use crate::FakeApiServer;

impl FakeApiServer {
    /// Serves this fake on `listener` until the returned task is aborted. Requests are recorded under
    /// `client` (see [`FakeApiServer::client_as`]).
    pub fn serve(&self, listener: TcpListener, client: &str) -> tokio::task::JoinHandle<()> {
        let fake = self.clone();
        let client = client.to_string();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let service = fake.service_as(&client);
                tokio::spawn(async move {
                    let handler = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let mut service = service.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            let request = hyper::Request::from_parts(parts, kube::client::Body::from(bytes.to_vec()));
                            match service.call(request).await {
                                Ok(response) => Ok::<_, Infallible>(response),
                                Err(never) => match never {},
                            }
                        }
                    });
                    // A client hanging up mid-watch is normal; nothing to report.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), handler).await;
                });
            }
        })
    }

    /// A kubeconfig (YAML) for a fake served at `addr` by [`FakeApiServer::serve`].
    pub fn kubeconfig(addr: std::net::SocketAddr) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: fake, cluster: {{server: \"http://{addr}\"}}}}]\nusers: [{{name: fake, user: {{token: fake}}}}]\ncontexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\ncurrent-context: fake\n"
        )
    }
}
