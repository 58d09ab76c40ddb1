#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The redaction corpus: one canary (a unique random-looking string) planted in every place and shape a
//! secret has been found in, a whole gather against the real API server, and no byte of any canary in the
//! tree or in the archive; control values next to them (references, names, settings, public certificates)
//! must still be there, so redaction is not bought by blanking everything.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::common::{Fixture, WAIT, b64, certificate};
use cma_must_gather::Options;
use cma_testkit::cluster::kinds;
use serde_json::json;

/// A planted secret: where it is, and its value.
struct Canary {
    place: &'static str,
    value: String,
}

fn canary(place: &'static str, value: impl Into<String>) -> Canary {
    Canary { place, value: value.into() }
}

/// A base64 PEM private key whose body carries `marker` (base64 alphabet only).
fn pem_key(marker: &str) -> String {
    format!("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC{marker}\n-----END PRIVATE KEY-----\n")
}

const SLACK: &str = "https://hooks.slack.com/services/T0CORPUS/B0CORPUS/";

/// Plants every canary and control into the populated cluster; returns (canaries, controls).
async fn plant(fx: &Fixture) -> (Vec<Canary>, Vec<&'static str>) {
    let (ns, app) = (fx.ns.as_str(), fx.app.as_str());
    let c = vec![
        canary("Secret data (base64 on the wire), echoed in a log and an event", "RxjoMhIdatmV25"),
        canary("Secret data shorter than 8 bytes, echoed in a log", "Kw7zu4H"),
        canary("Secret annotation openshift.io/token-secret.value", "rCll4X8SeKHCWF"),
        canary("ConfigMap data key `password`", "EdEch2J21OU36J"),
        canary("ConfigMap file line `password: ...`", "5qOf0BTL9pGvgA"),
        canary("ConfigMap file URL user:pass@", "TXjcFk6gCgrpcx"),
        canary("ConfigMap annotation example.com/api-token", "6dZ8DMtBxoxIlJ"),
        canary("Service annotation URL user:pass@", "sEFGSUL8joFbEv"),
        canary("Deployment args `--password` `VALUE`", "jwUQXO4uoyxMK4"),
        canary("Pod args `-token` `VALUE`", "Q0y0gOGRQXjuLg"),
        canary("env GITHUB_PAT", "b6h8oYRRHWd7lW"),
        canary("env SLACK_WEBHOOK_URL", "VEcGtR9wJFXaGq"),
        canary("ScaledObject trigger customAuthValue", "zA8Qup3dZcCI0E"),
        canary("ScaledObject trigger appKey", "4CntjXylJisNj3"),
        canary("ScaledObject trigger queryKey", "sdGyeLwMIHwDxZ"),
        canary("ScaledObject trigger tlsKey", "3kybb4bpPWw8bo"),
        canary("ScaledObject trigger keyPassword", "i2kohJ0e4bpw75"),
        canary("ScaledObject trigger connection (AccountKey=)", "6jeMkao03ydA6K"),
        canary("ScaledJob trigger personalAccessToken", "VhTbKV8jqZxDln"),
        canary("ScaledJob trigger credentials (GCP JSON)", "07iHyj4KV6HJMv"),
        canary("log: escaped JSON {\\\"password\\\":\\\"...\\\"}", "ovgyUfW8b60HVv"),
        canary("log: --password VALUE on a command line", "oU6osYOlGBA3y6"),
        canary("log: Slack webhook URL", "lYQpMHBe3EPwqR"),
        canary("log: key body after a PEM header without END", "FljbGRSSaes1RJ"),
        canary("log: GitHub token", format!("ghp_{}", "yuUHwBuhP1TDYu33E4u4wdfn4VpRci50iXpE")),
        canary("ConfigMap value: base64 PEM private key", b64(&pem_key("0jz6fNqGrV52do"))),
        canary("log: base64 PEM private key", b64(&pem_key("1jCB2feaHKzqrM"))),
        canary("event message: URL password", "PajBbNv10qubGk"),
        canary("service account token Secret", "19ty4HjyiLe4vjLHqDgWjXKUDjy3"),
    ];
    let v = |place: &str| c.iter().find(|x| x.place == place).unwrap().value.clone();
    // Values that must survive: settings, references, names, public certificates, ordinary words.
    let controls = vec![
        "ctrl-loglevel-4471",
        "postgres://app@db:5432/ctrl-dbname-9034",
        "ctrl-owner-team-5521",
        "ctrl-env-level-2207",
        "ghcr.io/kedacore/keda-admission-webhooks:2.20.2-ctrl",
        "ctrl-webhook-port-9443",
        "ctrl-arg-level-8812",
        "CTRL_REDIS_PASSWORD_ENV",
        "CTRL_CONN_ENV",
        "ctrl-key-name-3390",
        "X-Ctrl-Auth-Header",
        "ctrl-after-header-line-6604",
        "https://ctrl-host:8443/users/ctrl-bob@example.com",
        "ctrl-password-file-path",
        "starting keda-operator",
        "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t",
    ];
    let secret_data = v("Secret data (base64 on the wire), echoed in a log and an event");
    let short = v("Secret data shorter than 8 bytes, echoed in a log");
    let objects = vec![
        // The owner of the legacy token Secret below (the token controller deletes one whose owner is missing).
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "corpus", "namespace": ns}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "corpus", "namespace": ns,
            "annotations": {"openshift.io/token-secret.value": v("Secret annotation openshift.io/token-secret.value")}},
            "data": {"password": b64(&secret_data), "pin": b64(&short)}}),
        // A legacy token Secret: its `namespace` value is the namespace's name, not a secret to hunt for.
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
            "metadata": {"name": "corpus-token", "namespace": ns, "annotations": {"kubernetes.io/service-account.name": "corpus"}},
            "data": {"namespace": b64(ns), "token": b64(&v("service account token Secret"))}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "corpus", "namespace": ns,
        "annotations": {"example.com/api-token": v("ConfigMap annotation example.com/api-token"),
            "example.com/owner": "ctrl-owner-team-5521"}},
        "data": {
            "password": v("ConfigMap data key `password`"),
            "log-level": "ctrl-loglevel-4471",
            "app.yaml": format!("db:\n  user: app\n  password: {}\n  url: postgres://app:{}@db:5432/x\n  other: postgres://app@db:5432/ctrl-dbname-9034\n",
                v("ConfigMap file line `password: ...`"), v("ConfigMap file URL user:pass@")),
            "client.key.b64": v("ConfigMap value: base64 PEM private key"),
            "ca.b64": b64(&certificate()),
        }}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "corpus", "namespace": ns,
            "annotations": {"example.com/upstream": format!("https://svc:{}@upstream.example/api", v("Service annotation URL user:pass@"))}},
            "spec": {"ports": [{"port": 80}]}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "corpus", "namespace": ns},
            "spec": {"selector": {"matchLabels": {"app": "corpus"}}, "template": {"metadata": {"labels": {"app": "corpus"}},
                "spec": {"containers": [{"name": "app", "image": "app",
                    "args": ["--password", v("Deployment args `--password` `VALUE`"), "--log-level", "ctrl-arg-level-8812",
                        "--password-file", "ctrl-password-file-path"],
                    "env": [{"name": "GITHUB_PAT", "value": v("env GITHUB_PAT")},
                        {"name": "SLACK_WEBHOOK_URL", "value": format!("{SLACK}{}", v("env SLACK_WEBHOOK_URL"))},
                        {"name": "LOG_LEVEL", "value": "ctrl-env-level-2207"},
                        {"name": "RELATED_IMAGE_KEDA_ADMISSION_WEBHOOKS", "value": "ghcr.io/kedacore/keda-admission-webhooks:2.20.2-ctrl"},
                        {"name": "WEBHOOK_PORT", "value": "ctrl-webhook-port-9443"}]}]}}}}),
        // A pod of its own (the Deployment's ReplicaSet would adopt one carrying its labels).
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "corpus-x1", "namespace": ns, "labels": {"app": "corpus-pod"}},
            "spec": {"containers": [{"name": "app", "image": "app", "args": ["-token", v("Pod args `-token` `VALUE`")]}]}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "corpus.1", "namespace": ns},
            "reason": "Failed", "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": "corpus-x1", "namespace": ns},
            "message": format!("login with {secret_data} to amqp://guest:{}@rabbit:5672 failed; see https://ctrl-host:8443/users/ctrl-bob@example.com",
                v("event message: URL password"))}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "corpus", "namespace": app},
        "spec": {"scaleTargetRef": {"name": "web"}, "triggers": [
            {"type": "metrics-api", "metadata": {"url": "https://metrics.example/q", "valueLocation": "v",
                "authMode": "customAuth", "customAuthHeader": "X-Ctrl-Auth-Header",
                "customAuthValue": v("ScaledObject trigger customAuthValue")}},
            {"type": "datadog", "metadata": {"query": "sum:x", "appKey": v("ScaledObject trigger appKey")}},
            {"type": "new-relic", "metadata": {"nrql": "SELECT 1", "queryKey": v("ScaledObject trigger queryKey")}},
            {"type": "redis", "metadata": {"address": "redis:6379", "passwordFromEnv": "CTRL_REDIS_PASSWORD_ENV",
                "tlsKey": v("ScaledObject trigger tlsKey"), "keyPassword": v("ScaledObject trigger keyPassword")}},
            {"type": "azure-queue", "metadata": {"queueName": "q", "connectionFromEnv": "CTRL_CONN_ENV",
                "connection": format!("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=core.windows.net",
                    v("ScaledObject trigger connection (AccountKey=)"))}},
            {"type": "kubernetes-resource", "metadata": {"key": "ctrl-key-name-3390"}},
        ]}}),
        json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "corpus", "namespace": app},
        "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "w", "image": "w"}]}}}, "triggers": [
            {"type": "azure-pipelines", "metadata": {"poolName": "p", "personalAccessToken": v("ScaledJob trigger personalAccessToken")}},
            {"type": "gcp-pubsub", "metadata": {"subscriptionName": "s",
                "credentials": format!("{{\"type\":\"service_account\",\"private_key_id\":\"{}\"}}", v("ScaledJob trigger credentials (GCP JSON)"))}},
        ]}}),
    ];
    // The ServiceAccount first: the token Secret needs it.
    let mut objects = objects.into_iter();
    crate::common::create(&fx.cluster, objects.next().unwrap()).await;
    crate::common::create_all(&fx.cluster, objects.collect()).await;
    let log = [
        "2025-01-01T00:00:00Z INFO starting keda-operator".to_string(),
        format!("2025-01-01T00:00:01Z DEBUG connecting with {secret_data}"),
        format!("2025-01-01T00:00:01Z WARN auth {short} rejected"),
        format!(
            r#"2025-01-01T00:00:02Z ERROR request body="{{\"user\":\"app\",\"password\":\"{}\"}}""#,
            v("log: escaped JSON {\\\"password\\\":\\\"...\\\"}")
        ),
        format!(
            "2025-01-01T00:00:03Z INFO exec /app --password {} --port 80",
            v("log: --password VALUE on a command line")
        ),
        format!("2025-01-01T00:00:04Z ERROR posting to {SLACK}{} failed", v("log: Slack webhook URL")),
        "2025-01-01T00:00:05Z DEBUG dump: -----BEGIN RSA PRIVATE KEY-----".to_string(),
        format!("2025-01-01T00:00:05Z MIIEpAIBAAKCAQEA{}", v("log: key body after a PEM header without END")),
        "2025-01-01T00:00:06Z INFO ctrl-after-header-line-6604".to_string(),
        format!("2025-01-01T00:00:07Z DEBUG git clone https://github.com/x/y with {}", v("log: GitHub token")),
        format!("2025-01-01T00:00:08Z DEBUG tls key {}", v("log: base64 PEM private key")),
        "2025-01-01T00:00:09Z INFO ready".to_string(),
    ]
    .join("\n");
    fx.cluster
        .eventually(WAIT, "pod corpus-x1 running", async || {
            fx.cluster.get(&kinds::POD, ns, "corpus-x1").await.is_some_and(|p| p["status"]["phase"] == "Running")
        })
        .await;
    fx.cluster.container_logs().set(ns, "corpus-x1", "app", format!("{log}\n"));
    (c, controls)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_canary_survives_in_the_tree_or_the_archive_and_controls_do() {
    let fx = crate::common::populated().await;
    let ns = fx.ns.clone();
    let (canaries, controls) = plant(&fx).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let opts =
        Options { dest_dir: root.to_path_buf(), archive: true, timeout: Duration::from_secs(10), ..Options::default() };
    let summary = fx.gather(&opts).await;
    assert_eq!(summary.exit_code(), 0, "{}", summary.report());

    // Each canary as planted, and base64-encoded (a Secret's wire form, a careless decode-and-keep).
    let needles: Vec<(String, &str)> =
        canaries.iter().flat_map(|c| [(c.value.clone(), c.place), (b64(&c.value), c.place)]).collect();
    let mut files: Vec<(String, Vec<u8>)> = crate::common::files(root)
        .into_iter()
        .filter(|f| f != Path::new("must-gather.tar.gz"))
        .map(|f| (f.display().to_string(), std::fs::read(root.join(&f)).unwrap()))
        .collect();
    assert!(files.len() > 50, "{}", files.len());
    let archive = summary.archive.clone().unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap()));
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.push((format!("archive:{}", entry.path().unwrap().display()), bytes));
    }
    let mut leaks = Vec::new();
    for (name, bytes) in &files {
        for (needle, place) in &needles {
            if contains(bytes, needle) {
                leaks.push(format!("{place}: found in {name}"));
            }
        }
    }
    leaks.sort();
    leaks.dedup();
    assert!(leaks.is_empty(), "canaries survived:\n{}", leaks.join("\n"));

    // Redaction is not over-eager: every control value is still somewhere in the tree and the archive.
    for control in &controls {
        for side in ["", "archive:"] {
            assert!(
                files.iter().any(|(name, bytes)| name.starts_with(side) && contains(bytes, control)),
                "control value {control:?} is gone{}",
                if side.is_empty() { "" } else { " from the archive" }
            );
        }
    }
    // Names stay readable: the namespace is not taken for a token Secret's value.
    let namespace = std::fs::read_to_string(root.join(format!("namespaces/{ns}/{ns}.yaml"))).unwrap();
    assert!(namespace.contains(&format!("name: {ns}")), "{namespace}");
    // The log keeps its structure: the lines after a header without END are there.
    let log =
        std::fs::read_to_string(root.join(format!("namespaces/{ns}/pods/corpus-x1/app/app/logs/current.log"))).unwrap();
    assert_eq!(log.lines().count(), 12, "{log}");
    assert!(log.ends_with("2025-01-01T00:00:09Z INFO ready\n"), "{log}");
    // Every rule that fired is in redactions.txt.
    let redactions = std::fs::read_to_string(root.join("redactions.txt")).unwrap();
    for rule in ["credential-arg", "credential-flag", "webhook-url", "token-format", "private-key", "credential-field"]
    {
        assert!(redactions.lines().any(|l| l.ends_with(&format!("\t{rule}"))), "no {rule} in\n{redactions}");
    }
}

/// Over-eagerness on real objects: our own CSV (images, RELATED_IMAGE_* variables, flags, descriptions,
/// examples, the icon) and the KEDA manifests the operator renders from hold no secret, so redaction must
/// leave every byte of them as it was.
#[test]
fn objects_without_secrets_come_out_unchanged() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut docs: Vec<(String, serde_json::Value)> = Vec::new();
    let csv = repo.join("bundle/manifests/cma-operator.clusterserviceversion.yaml");
    docs.push((csv.display().to_string(), serde_yaml::from_str(&std::fs::read_to_string(&csv).unwrap()).unwrap()));
    for entry in std::fs::read_dir(repo.join("manifests/keda-2.20")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_json::Value = serde::Deserialize::deserialize(doc).unwrap();
            // Secret templates carry no data; every other kind must pass through untouched.
            if !value.is_null() && value["kind"] != "Secret" {
                docs.push((path.display().to_string(), value));
            }
        }
    }
    assert!(docs.len() > 10, "{}", docs.len());
    let mut redactor = cma_must_gather::redact::Redactor::new().unwrap();
    let mut redacted: Vec<serde_json::Value> = docs.iter().map(|(_, d)| d.clone()).collect();
    for (doc, (file, _)) in redacted.iter_mut().zip(&docs) {
        redactor.redact_object(file, doc);
    }
    let scrubber = redactor.scrubber();
    for ((file, original), doc) in docs.iter().zip(redacted.iter_mut()) {
        let found = scrubber.scrub_value(doc, "");
        assert!(found.is_empty(), "{file}: {found:?}");
        assert_eq!(doc, original, "{file} {}", doc["metadata"]["name"]);
    }
    assert!(redactor.redactions().is_empty(), "{:?}", redactor.redactions());
}
