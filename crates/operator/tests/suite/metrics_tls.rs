//! The operator's `/metrics`: always HTTPS (the mounted certificate, or one the operator issues itself), the
//! cluster TLS profile applied to new connections as soon as it changes, and only callers the real API
//! server authenticates and authorizes (TokenReview, SubjectAccessReview) get an answer.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use cma_operator::context::PlatformState;
use cma_operator::metrics::Metrics;
use cma_operator::metrics_access::{MetricsAccess, REVIEW_BURST};
use cma_operator::metrics_cert::{SelfIssued, ServingCertificates};
use cma_operator::platform::{Platform, TlsProfile};
use cma_operator::server::{Endpoints, Limits, bind, serve_metrics};
use cma_testkit::cluster::{self, Apis, AuditEvent, Cluster, Faults, RequestMatch};
use cma_testkit::tls::{https_get, serving_certificate, write_serving_certificate};
use k8s_openapi::jiff::Timestamp;
use rustls::pki_types::CertificateDer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A metrics endpoint under test.
pub struct Served {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The CA of its self-issued certificate.
    pub own_ca: CertificateDer<'static>,
    platform: PlatformState,
    /// The User-Agent of its access checks.
    pub agent: String,
}

/// What to serve with.
pub struct Serve<'a> {
    pub platform: Platform,
    /// Where a certificate may be mounted.
    pub dir: Option<std::path::PathBuf>,
    /// The client of the access checks (`None`: an admin client of `cluster`).
    pub access_client: Option<kube::Client>,
    pub cluster: &'a Cluster,
    pub limits: Limits,
    pub poll: Duration,
}

impl<'a> Serve<'a> {
    pub fn new(cluster: &'a Cluster) -> Self {
        Serve {
            platform: Platform::kubernetes(),
            dir: None,
            access_client: None,
            cluster,
            limits: Limits::METRICS,
            poll: Duration::from_millis(50),
        }
    }
}

static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Starts a metrics endpoint on a free loopback port.
pub async fn serve(options: Serve<'_>) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let agent = format!("metrics-access-test/{}", SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let client = options.access_client.unwrap_or_else(|| options.cluster.client_with(&agent, None));
    let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let endpoints = Endpoints { metrics: Arc::new(Metrics::new()), ready: Arc::new(AtomicBool::new(true)) };
    let own = SelfIssued::new("keda", Timestamp::now()).unwrap();
    let own_ca = own.ca_der();
    let certificates = Arc::new(ServingCertificates::new(own, options.dir));
    let platform = PlatformState::new(options.platform);
    let access = Arc::new(MetricsAccess::new(client));
    let served = platform.clone();
    let (limits, poll) = (options.limits, options.poll);
    tokio::spawn(async move {
        serve_metrics(listener, endpoints, certificates, served, access, limits, poll).await.unwrap();
    });
    Served { addr, own_ca, platform, agent }
}

/// ServiceAccount tokens in `ns`: one whose account may `get /metrics` and one whose account may not.
pub struct Tokens {
    pub scraper: String,
    pub dev: String,
}

async fn token(cluster: &Cluster, ns: &str, name: &str) -> String {
    let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> = kube::Api::namespaced(cluster.client(), ns);
    let request = k8s_openapi::api::authentication::v1::TokenRequest {
        spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token: k8s_openapi::api::authentication::v1::TokenRequest =
        api.create_subresource("token", name, &kube::api::PostParams::default(), &request).await.unwrap();
    token.status.unwrap().token
}

/// A scraper allowed by a ClusterRole on the non-resource URL `/metrics`, as Prometheus is, and a developer
/// without it.
pub async fn tokens(cluster: &Cluster, ns: &str) -> Tokens {
    for name in ["scraper", "dev"] {
        cluster
            .create(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}))
            .await;
    }
    let role = format!("metrics-reader-{ns}");
    cluster
        .create(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        }))
        .await;
    cluster
        .create(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "scraper", "namespace": ns}],
        }))
        .await;
    Tokens { scraper: token(cluster, ns, "scraper").await, dev: token(cluster, ns, "dev").await }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

/// GET `path` over HTTPS trusting `trusted`; `Err` when the handshake fails.
pub async fn get_as(
    served: &Served,
    trusted: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    headers: &str,
) -> Result<String, String> {
    https_get(served.addr, trusted, versions, "/metrics", headers).await
}

fn status(response: &str) -> &str {
    response.lines().next().unwrap_or_default()
}

/// The access checks `served` made since `mark`: (TokenReviews, SubjectAccessReviews).
fn reviews(cluster: &Cluster, mark: cluster::AuditMark, served: &Served) -> (usize, usize) {
    let events: Vec<AuditEvent> = cluster.audit().by_agent(mark, &served.agent);
    let count = |resource: &str| events.iter().filter(|e| e.object.resource == resource).count();
    (count("tokenreviews"), count("subjectaccessreviews"))
}

#[tokio::test]
async fn without_a_mounted_certificate_metrics_are_served_over_https_with_the_operators_own() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let served = serve(Serve::new(&cluster)).await;
    let response = get_as(&served, &served.own_ca, &[&rustls::version::TLS12], &bearer(&tokens.scraper)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("keda_controller_ready"), "{response}");
}

#[tokio::test]
async fn plain_http_is_never_answered_on_the_metrics_port() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let served = serve(Serve::new(&cluster)).await;
    let mut tcp = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(!text.contains("HTTP/1.1 200") && !text.contains("keda_controller"), "{text}");
}

#[tokio::test]
async fn the_modern_profile_refuses_tls12_and_a_profile_change_applies_to_new_connections() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let mut modern = Platform::openshift();
    modern.tls_profile = Some(TlsProfile::modern());
    let served = serve(Serve { platform: modern, ..Serve::new(&cluster) }).await;
    let token = bearer(&tokens.scraper);
    assert!(
        get_as(&served, &served.own_ca, &[&rustls::version::TLS12], &token).await.is_err(),
        "TLS 1.2 accepted under the Modern profile"
    );
    let response = get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &token).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    served.platform.set(Platform::openshift());
    cluster::eventually(Duration::from_secs(10), "TLS 1.2 accepted under the Intermediate profile", async || {
        get_as(&served, &served.own_ca, &[&rustls::version::TLS12], &token).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_certificate_mounted_later_replaces_the_self_issued_one_without_a_restart() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let dir = tempfile::tempdir().unwrap();
    let served =
        serve(Serve { platform: Platform::openshift(), dir: Some(dir.path().into()), ..Serve::new(&cluster) }).await;
    let token = bearer(&tokens.scraper);
    // The mount is empty on a first install (the service-ca writes it later): HTTPS with the own certificate.
    let response = get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &token).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // Files that do not load (half written) are not a certificate yet, and the server survives them.
    std::fs::write(dir.path().join("tls.crt"), "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    std::fs::write(dir.path().join("tls.key"), "").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &token).await.is_ok());

    let mounted = write_serving_certificate(dir.path());
    cluster::eventually(Duration::from_secs(10), "the mounted certificate is served", async || {
        get_as(&served, &mounted, &[&rustls::version::TLS13], &token).await.is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;
    assert!(get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &token).await.is_err());
}

#[tokio::test]
async fn a_mounted_certificate_present_at_start_is_served_at_once() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let mounted = serving_certificate();
    let served = serve(Serve { dir: Some(mounted.dir.path().into()), ..Serve::new(&cluster) }).await;
    let response = get_as(&served, &mounted.cert, &[&rustls::version::TLS13], &bearer(&tokens.scraper)).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn only_callers_the_api_server_authorizes_get_metrics() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let served = serve(Serve::new(&cluster)).await;
    let get = async |headers: &str| get_as(&served, &served.own_ca, &[&rustls::version::TLS13], headers).await.unwrap();
    assert_eq!(status(&get("").await), "HTTP/1.1 401 Unauthorized");
    assert_eq!(status(&get("Authorization: Basic dXNlcjpwYXNz\r\n").await), "HTTP/1.1 401 Unauthorized");
    assert_eq!(status(&get(&bearer("forged")).await), "HTTP/1.1 401 Unauthorized");
    let refused = get(&bearer(&tokens.dev)).await;
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    assert!(refused.contains(&format!("user \"system:serviceaccount:{ns}:dev\" may not get /metrics")), "{refused}");
    assert!(!refused.contains(&tokens.dev), "the token was echoed: {refused}");
    let allowed = get(&bearer(&tokens.scraper)).await;
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(allowed.contains("keda_controller_ready"), "{allowed}");
    // Only /metrics is served on this port.
    let other =
        https_get(served.addr, &served.own_ca, &[&rustls::version::TLS13], "/healthz", &bearer(&tokens.scraper))
            .await
            .unwrap();
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}

#[tokio::test]
async fn decisions_are_cached_so_steady_scrapes_cost_no_api_requests() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let served = serve(Serve::new(&cluster)).await;
    let mark = cluster.audit().mark();
    for _ in 0..5 {
        let ok = get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &bearer(&tokens.scraper)).await.unwrap();
        assert_eq!(status(&ok), "HTTP/1.1 200 OK");
        let refused = get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &bearer(&tokens.dev)).await.unwrap();
        assert!(status(&refused).starts_with("HTTP/1.1 403"));
    }
    // One TokenReview and one SubjectAccessReview per token, whatever the number of scrapes.
    assert_eq!(reviews(&cluster, mark, &served), (2, 2));
}

#[tokio::test]
async fn junk_tokens_cost_one_review_each_at_most_are_rate_limited_and_never_evict_the_scrapers() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let served = serve(Serve::new(&cluster)).await;
    let get = async |token: &str| {
        let response = get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &bearer(token)).await.unwrap();
        status(&response).to_string()
    };
    assert_eq!(get(&tokens.scraper).await, "HTTP/1.1 200 OK");
    let mark = cluster.audit().mark();
    // The same junk token again and again: reviewed once, then answered from the negative cache.
    for _ in 0..5 {
        assert_eq!(get("junk").await, "HTTP/1.1 401 Unauthorized");
    }
    assert_eq!(reviews(&cluster, mark, &served), (1, 0));
    // A flood of distinct junk tokens: a burst is reviewed, the rest is asked to retry without a review.
    let mark = cluster.audit().mark();
    let mut throttled = 0;
    for n in 0..300 {
        match get(&format!("junk-{n}")).await.as_str() {
            "HTTP/1.1 401 Unauthorized" => {}
            "HTTP/1.1 429 Too Many Requests" => throttled += 1,
            other => panic!("junk token {n}: {other}"),
        }
    }
    let (token_reviews, access_reviews) = reviews(&cluster, mark, &served);
    // What is left of the burst (the scraper's and the first junk token's reviews took two), plus the refill
    // while the flood ran (one a second; generous for a slow machine).
    let left = REVIEW_BURST as usize - 2;
    assert!((left..=100).contains(&token_reviews), "{token_reviews} TokenReviews");
    assert_eq!(access_reviews, 0);
    assert_eq!(throttled, 300 - token_reviews);
    // The scraper's decision survived the flood: answered without a review.
    let mark = cluster.audit().mark();
    assert_eq!(get(&tokens.scraper).await, "HTTP/1.1 200 OK");
    assert_eq!(reviews(&cluster, mark, &served), (0, 0));
}

#[tokio::test]
async fn an_api_failure_is_a_500_and_is_not_cached() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    let ns = cluster.namespace("metrics").await;
    let tokens = tokens(&cluster, &ns).await;
    let faults = Faults::new();
    faults.fail_next(1, RequestMatch::default().path("/tokenreviews"), 503, "ServiceUnavailable", "injected");
    let client = cluster.client_with("metrics-access-faulty", Some(&faults));
    let served = serve(Serve { access_client: Some(client), ..Serve::new(&cluster) }).await;
    let token = bearer(&tokens.scraper);
    let failed = get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &token).await.unwrap();
    assert!(failed.starts_with("HTTP/1.1 500"), "{failed}");
    assert!(!failed.contains(&tokens.scraper), "the token was echoed: {failed}");
    let ok = get_as(&served, &served.own_ca, &[&rustls::version::TLS13], &token).await.unwrap();
    assert_eq!(status(&ok), "HTTP/1.1 200 OK");
    assert_eq!(faults.hits(), 1);
}
