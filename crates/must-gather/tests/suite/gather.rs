#![allow(clippy::unwrap_used, clippy::expect_used)]
//! must-gather against the fake API server: layout, completeness, redaction, failures, the archive.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::common::{APP, NS, PLANTED};
use cma_must_gather::{LogSince, Options, Outcome, Summary, gather};
use cma_testkit::{ApiError, FakeApiServer, Matcher};
use serde_json::Value;

fn options(dir: &Path) -> Options {
    Options { dest_dir: dir.to_path_buf(), archive: true, timeout: Duration::from_secs(10), ..Options::default() }
}

async fn run(fake: &FakeApiServer, opts: &Options) -> Summary {
    gather(fake.client(), opts).await.unwrap()
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(root: &Path, rel: &str) -> Value {
    serde_yaml::from_str(&read(root, rel)).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()).collect()
}

fn exists(root: &Path, rel: &str) -> bool {
    root.join(rel).is_file()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populated_namespace_is_written_in_the_oc_adm_inspect_layout() {
    let fake = crate::common::populated();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary = run(&fake, &options(root)).await;
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.exit_code(), 0);
    assert_eq!(summary.namespaces, vec![NS.to_string()]);

    let ns_dir = format!("namespaces/{NS}");
    for list in [
        "apps/deployments",
        "apps/replicasets",
        "core/pods",
        "core/services",
        "core/endpoints",
        "discovery.k8s.io/endpointslices",
        "core/configmaps",
        "core/secrets",
        "core/serviceaccounts",
        "rbac.authorization.k8s.io/roles",
        "rbac.authorization.k8s.io/rolebindings",
        "networking.k8s.io/networkpolicies",
        "policy/poddisruptionbudgets",
        "core/persistentvolumeclaims",
        "core/events",
        "monitoring.coreos.com/servicemonitors",
        "monitoring.coreos.com/podmonitors",
        "monitoring.coreos.com/prometheusrules",
        "coordination.k8s.io/leases",
        "core/resourcequotas",
        "core/limitranges",
    ] {
        let rel = format!("{ns_dir}/{list}.yaml");
        let doc = yaml(root, &rel);
        assert!(!doc["items"].as_array().unwrap().is_empty(), "{rel} has no items");
        assert!(doc["kind"].as_str().unwrap().ends_with("List"), "{rel}");
        // Items carry their kind, as `oc get -o yaml` prints them, and never managedFields.
        for item in doc["items"].as_array().unwrap() {
            assert!(item["kind"].is_string() && item["apiVersion"].is_string(), "{rel}");
            assert!(item["metadata"].get("managedFields").is_none(), "{rel}");
        }
    }
    assert_eq!(yaml(root, &format!("{ns_dir}/{NS}.yaml"))["kind"], "Namespace");
    let deployments = yaml(root, &format!("{ns_dir}/apps/deployments.yaml"));
    assert_eq!(names(&deployments), vec!["cma-operator", "keda-admission", "keda-metrics-apiserver", "keda-operator"]);
    for (pod, container) in [
        ("keda-operator-5d4f8-x1", "keda-operator"),
        ("keda-metrics-apiserver-5d4f8-x1", "keda-metrics-apiserver"),
        ("keda-admission-5d4f8-x1", "keda-admission-webhooks"),
        ("cma-operator-5d4f8-x1", "cma-operator"),
    ] {
        let pod_dir = format!("{ns_dir}/pods/{pod}");
        assert_eq!(yaml(root, &format!("{pod_dir}/{pod}.yaml"))["metadata"]["name"], pod);
        let current = read(root, &format!("{pod_dir}/{container}/{container}/logs/current.log"));
        assert!(current.contains(&format!("INFO starting {container}")), "{current}");
        let previous = format!("{pod_dir}/{container}/{container}/logs/previous.log");
        // Only the container that restarted has a previous log.
        assert_eq!(exists(root, &previous), container == "keda-operator", "{previous}");
    }
    assert!(
        read(root, &format!("{ns_dir}/pods/keda-operator-5d4f8-x1/keda-operator/keda-operator/logs/previous.log"))
            .contains("ERROR crashed")
    );
    // Logs are requested with timestamps, per container.
    for req in fake.log_requests() {
        assert!(req.timestamps && req.container.is_some(), "{req:?}");
        assert_eq!(req.since_seconds, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_collected_kind_is_present_and_unrelated_objects_are_left_out() {
    let fake = crate::common::populated();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    run(&fake, &options(root)).await;

    let expected = [
        // KEDA resources in all namespaces.
        format!("namespaces/{NS}/keda.sh/kedacontrollers/keda.yaml"),
        format!("namespaces/{APP}/keda.sh/scaledobjects/so-1.yaml"),
        format!("namespaces/{APP}/keda.sh/scaledjobs/sj-1.yaml"),
        format!("namespaces/{APP}/keda.sh/triggerauthentications/ta-vault.yaml"),
        "cluster-scoped-resources/keda.sh/clustertriggerauthentications/cta-1.yaml".into(),
        format!("namespaces/{APP}/eventing.keda.sh/cloudeventsources/ces-1.yaml"),
        "cluster-scoped-resources/eventing.keda.sh/clustercloudeventsources/cces-1.yaml".into(),
        // What the Go operator's must-gather misses.
        "cluster-scoped-resources/apiregistration.k8s.io/apiservices/v1beta1.external.metrics.k8s.io.yaml"
            .into(),
        "apis/external.metrics.k8s.io/v1beta1.json".into(),
        "cluster-scoped-resources/admissionregistration.k8s.io/validatingwebhookconfigurations/keda-admission.yaml"
            .into(),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles/keda-operator.yaml".into(),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles/keda-external-metrics-reader.yaml"
            .into(),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles/cma-operator.v0.1.0-abc.yaml".into(),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterrolebindings/keda-operator.yaml".into(),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterrolebindings/keda-hpa-controller-external-metrics.yaml"
            .into(),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterrolebindings/keda-system-auth-delegator.yaml"
            .into(),
        "namespaces/kube-system/rbac.authorization.k8s.io/rolebindings/keda-auth-reader.yaml".into(),
        format!("namespaces/kube-system/rbac.authorization.k8s.io/rolebindings/keda-auth-reader-{NS}.yaml"),
        format!("namespaces/{APP}/autoscaling/horizontalpodautoscalers/keda-hpa-so-1.yaml"),
        format!("namespaces/{APP}/batch/jobs/sj-1-x7k2p.yaml"),
        // OLM objects of our package.
        format!("namespaces/{NS}/operators.coreos.com/subscriptions/cma-operator.yaml"),
        format!("namespaces/{NS}/operators.coreos.com/clusterserviceversions/cma-operator.v0.1.0.yaml"),
        format!("namespaces/{NS}/operators.coreos.com/clusterserviceversions/cma-operator.v9.9.9.yaml"),
        format!("namespaces/{NS}/operators.coreos.com/installplans/install-abcde.yaml"),
        format!("namespaces/{NS}/operators.coreos.com/operatorgroups/openshift-keda.yaml"),
        // Run metadata.
        "version".into(),
        "timestamp".into(),
        "gather-debug.log".into(),
        "redactions.txt".into(),
        "must-gather.tar.gz".into(),
    ];
    for rel in &expected {
        assert!(exists(root, rel), "missing {rel}");
    }
    for crd in cma_api::crd::all().unwrap() {
        let name = crd.metadata.name.unwrap();
        let rel = format!("cluster-scoped-resources/apiextensions.k8s.io/customresourcedefinitions/{name}.yaml");
        assert_eq!(yaml(root, &rel)["spec"]["group"], crd.spec.group, "{rel}");
    }
    // KEDA's events in the application namespace: about its resources and its HPAs, nothing else.
    let events = yaml(root, &format!("namespaces/{APP}/core/events.yaml"));
    assert_eq!(names(&events), vec!["keda-hpa-so-1.1", "so-1.1"]);
    assert_eq!(events["kind"], "EventList");
    let apiservice =
        yaml(root, "cluster-scoped-resources/apiregistration.k8s.io/apiservices/v1beta1.external.metrics.k8s.io.yaml");
    assert_eq!(apiservice["status"]["conditions"][0]["reason"], "FailedDiscoveryCheck");
    let discovery: Value = serde_json::from_str(&read(root, "apis/external.metrics.k8s.io/v1beta1.json")).unwrap();
    assert_eq!(discovery["groupVersion"], "external.metrics.k8s.io/v1beta1");

    for absent in [
        "namespaces/other/operators.coreos.com/clusterserviceversions/other-operator.v1.0.0.yaml",
        "namespaces/app/operators.coreos.com/clusterserviceversions/cma-operator.v0.1.0.yaml",
        "namespaces/app",
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles/admin.yaml",
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterrolebindings/cluster-admins.yaml",
        "namespaces/kube-system/rbac.authorization.k8s.io/rolebindings/unrelated.yaml",
        "cluster-scoped-resources/admissionregistration.k8s.io/validatingwebhookconfigurations/other-webhook.yaml",
        "namespaces/app/autoscaling/horizontalpodautoscalers/web.yaml",
        "namespaces/app/batch/jobs/backup.yaml",
        "namespaces/openshift-keda/operators.coreos.com/installplans/install-other.yaml",
    ] {
        // `namespaces/app` exists as a directory (KEDA resources) but holds no namespace dump.
        if absent == "namespaces/app" {
            assert!(!exists(root, "namespaces/app/app.yaml"));
            assert!(!exists(root, "namespaces/app/core/pods.yaml"));
            continue;
        }
        assert!(!root.join(absent).exists(), "{absent} should be left out");
    }

    // version: the product and the *installed* CSV version (not the pending upgrade, not ours).
    assert_eq!(read(root, "version"), "cma-operator\n0.1.0\n");
    let timestamp = read(root, "timestamp");
    let lines: Vec<&str> = timestamp.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in lines {
        l.parse::<jiff::Timestamp>().unwrap();
    }
    // Every request with its duration and outcome.
    let debug = read(root, "gather-debug.log");
    for path in [
        "GET /apis/keda.sh/v1alpha1/scaledobjects?limit=500",
        "GET /apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io",
        "GET /apis/external.metrics.k8s.io/v1beta1",
        "GET /api/v1/namespaces/openshift-keda/pods/keda-operator-5d4f8-x1/log?container=keda-operator",
    ] {
        assert!(debug.contains(path), "{path} not in the debug log:\n{debug}");
    }
    assert!(debug.lines().filter(|l| l.contains(" GET ")).all(|l| l.contains("ms ok") || l.contains("ms ERROR")));
    // Requests the fake received = requests logged (no request goes unrecorded).
    let logged = debug.lines().filter(|l| l.contains(" GET /")).count();
    assert_eq!(logged, fake.requests().len());
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_byte_of_the_tree_or_the_archive() {
    let fake = crate::common::populated();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut opts = options(root);
    opts.known_secrets.push("client-bearer-token-0008".into());
    // The client's own token, should anything echo it.
    fake.set_pod_log(
        NS,
        "keda-admission-5d4f8-x1",
        "keda-admission-webhooks",
        false,
        "echo client-bearer-token-0008\n",
    );
    let summary = run(&fake, &opts).await;
    let mut planted = PLANTED.all();
    planted.push("client-bearer-token-0008".into());
    planted.push("sha256~abcdefghijklmnop0123".into());

    let files = crate::common::files(root);
    assert!(files.len() > 50, "{}", files.len());
    for rel in &files {
        let bytes = std::fs::read(root.join(rel)).unwrap();
        for p in &planted {
            assert!(!contains(&bytes, p), "{p} found in {}", rel.display());
        }
    }
    let archive = summary.archive.clone().unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap()));
    let mut entries = 0;
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        for p in &planted {
            assert!(!contains(&bytes, p), "{p} found in the archive's {:?}", entry.path());
        }
        entries += 1;
    }
    assert_eq!(entries, files.len(), "the archive holds the tree (without itself)");

    // Keys are kept, values replaced; certificates keep a summary; references stay readable.
    let secrets = yaml(root, &format!("namespaces/{NS}/core/secrets.yaml"));
    let db = secrets["items"].as_array().unwrap().iter().find(|s| s["metadata"]["name"] == "db-credentials").unwrap();
    assert_eq!(db["data"]["password"], format!("REDACTED ({} bytes)", PLANTED.secret_value.len()));
    assert_eq!(db["data"]["username"], "REDACTED (4 bytes)");
    assert_eq!(db["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"], "REDACTED");
    let certs = secrets["items"].as_array().unwrap().iter().find(|s| s["metadata"]["name"] == "kedaorg-certs").unwrap();
    let ca = certs["data"]["ca.crt"].as_str().unwrap();
    assert!(
        ca.starts_with("REDACTED (")
            && ca.contains("subject=\"CN=keda-operator.keda.svc\"")
            && ca.contains("notAfter="),
        "{ca}"
    );
    assert!(!certs["data"]["tls.key"].as_str().unwrap().contains("certificate"));
    let ta = yaml(root, &format!("namespaces/{APP}/keda.sh/triggerauthentications/ta-vault.yaml"));
    assert_eq!(ta["spec"]["hashiCorpVault"]["credential"]["token"], "REDACTED");
    assert_eq!(ta["spec"]["hashiCorpVault"]["address"], "https://vault:8200");
    assert_eq!(ta["spec"]["secretTargetRef"][0]["name"], "redis-auth");
    let pods = yaml(root, &format!("namespaces/{NS}/core/pods.yaml"));
    let op =
        pods["items"].as_array().unwrap().iter().find(|p| p["metadata"]["name"] == "cma-operator-5d4f8-x1").unwrap();
    assert_eq!(op["spec"]["containers"][0]["env"][0]["value"], "REDACTED");
    assert_eq!(op["spec"]["containers"][0]["env"][0]["name"], "API_TOKEN");
    // A kubeconfig keeps its structure, loses its credentials.
    let cms = yaml(root, &format!("namespaces/{NS}/core/configmaps.yaml"));
    let kc = cms["items"].as_array().unwrap().iter().find(|c| c["metadata"]["name"] == "debug-kubeconfig").unwrap();
    let kc = kc["data"]["kubeconfig"].as_str().unwrap();
    assert!(kc.contains("token: REDACTED\n") && kc.contains("client-key-data: REDACTED\n"), "{kc}");
    assert!(kc.contains("server: https://api.example:6443"), "{kc}");
    // The public service CA bundle is left readable.
    let cms = read(root, &format!("namespaces/{NS}/core/configmaps.yaml"));
    assert!(cms.contains("BEGIN CERTIFICATE"));
    // Logs: the Secret's value and the bearer token are replaced, the rest of the line kept.
    let log =
        read(root, &format!("namespaces/{NS}/pods/cma-operator-5d4f8-x1/cma-operator/cma-operator/logs/current.log"));
    assert!(log.contains("DEBUG connecting with password REDACTED\n"), "{log}");
    assert!(log.contains("Authorization: Bearer REDACTED\n"), "{log}");

    // redactions.txt says where, never what.
    let redactions = read(root, "redactions.txt");
    for line in [
        format!("namespaces/{NS}/core/secrets.yaml\tSecret {NS}/db-credentials\tdata[password]\tsecret-data"),
        format!("namespaces/{APP}/keda.sh/triggerauthentications/ta-vault.yaml\tTriggerAuthentication {APP}/ta-vault\tspec.hashiCorpVault.credential.token\tcredential-field"),
        format!("namespaces/{NS}/core/pods.yaml\tPod {NS}/cma-operator-5d4f8-x1\tspec.containers[cma-operator].env[API_TOKEN].value\tcredential-env"),
        "cluster-scoped-resources/keda.sh/clustertriggerauthentications/cta-1.yaml\tClusterTriggerAuthentication cta-1\tspec.legacyInline.password\tcredential-field".to_string(),
        format!("namespaces/{APP}/keda.sh/scaledobjects/so-1.yaml\tScaledObject {APP}/so-1\tspec.triggers[0].metadata.password\tcredential-field"),
        format!("namespaces/{APP}/keda.sh/scaledjobs/sj-1.yaml\tScaledJob {APP}/sj-1\tspec.jobTargetRef.template.spec.containers[worker].env[DB_PASSWORD].value\tcredential-env"),
    ] {
        assert!(redactions.lines().any(|l| l == line), "missing line {line:?} in\n{redactions}");
    }
    assert!(
        redactions.lines().any(|l| l.contains("logs/current.log") && l.ends_with("known-secret-value")),
        "{redactions}"
    );
    assert!(
        redactions.lines().any(|l| l.contains("logs/previous.log") && l.ends_with("known-secret-value")),
        "{redactions}"
    );
    assert!(summary.redactions >= 10);
    // Every file with a redaction is listed in redactions.txt.
    for rel in &files {
        let rel = rel.to_str().unwrap();
        if rel == "redactions.txt" || rel == "must-gather.tar.gz" {
            continue;
        }
        if read(root, rel).contains("REDACTED") {
            assert!(
                redactions.lines().any(|l| l.starts_with(&format!("{rel}\t"))),
                "{rel} has a redaction not listed in redactions.txt"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_resource_is_recorded_and_skipped() {
    let fake = crate::common::populated();
    fake.forbid(Matcher::resource("", "secrets"));
    fake.fail_always(Matcher::resource("monitoring.coreos.com", "servicemonitors"), 500);
    // An error message echoing a credential is scrubbed in the debug log and the summary too.
    fake.fail_next_with(
        1,
        Matcher::resource("policy", "poddisruptionbudgets"),
        ApiError::new(500, "proxy refused Authorization: Bearer t0ken-in-an-error-message"),
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary = run(&fake, &options(root)).await;
    // Secrets are not essential: the run is complete, with the failures recorded.
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.counts.forbidden, 1);
    assert!(summary.counts.failed >= 1);
    assert!(!exists(root, &format!("namespaces/{NS}/core/secrets.yaml")));
    assert!(!exists(root, &format!("namespaces/{NS}/monitoring.coreos.com/servicemonitors.yaml")));
    assert!(exists(root, &format!("namespaces/{NS}/core/configmaps.yaml")));
    assert!(exists(root, &format!("namespaces/{NS}/monitoring.coreos.com/prometheusrules.yaml")));
    let debug = read(root, "gather-debug.log");
    assert!(
        debug
            .lines()
            .any(|l| l.contains("GET /api/v1/namespaces/openshift-keda/secrets") && l.contains("ERROR 403 Forbidden")),
        "{debug}"
    );
    assert!(debug.contains("ERROR 500"), "{debug}");
    assert!(!debug.contains("t0ken-in-an-error-message") && !summary.report().contains("t0ken-in"));
    assert!(debug.contains("Authorization: Bearer REDACTED"), "{debug}");
    assert!(
        read(root, "redactions.txt").contains("gather-debug.log\t-\t1 line(s)\tbearer-token"),
        "{}",
        read(root, "redactions.txt")
    );
    assert!(summary.report().contains("failed: GET /api/v1/namespaces/openshift-keda/secrets"), "{}", summary.report());

    // An essential resource forbidden: still written, but partial (exit code 2) and said so.
    let fake = crate::common::populated();
    fake.forbid(Matcher::resource("", "pods"));
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&fake, &options(dir.path())).await;
    assert_eq!(summary.outcome(), Outcome::Partial);
    assert_eq!(summary.exit_code(), 2);
    assert!(summary.report().contains("missing: list pods in openshift-keda"), "{}", summary.report());
    assert!(exists(dir.path(), &format!("namespaces/{NS}/apps/deployments.yaml")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_round_trips() {
    let fake = crate::common::populated();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary = run(&fake, &options(root)).await;
    let archive = summary.archive.unwrap();
    assert_eq!(archive, root.join("must-gather.tar.gz"));
    let out = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap())).unpack(out.path()).unwrap();
    let unpacked = out.path().join("must-gather");
    let mut tree = crate::common::files(root);
    tree.retain(|f| f != Path::new("must-gather.tar.gz"));
    assert_eq!(summary.files, tree.len());
    assert_eq!(crate::common::files(&unpacked), tree);
    for rel in &tree {
        assert_eq!(
            std::fs::read(unpacked.join(rel)).unwrap(),
            std::fs::read(root.join(rel)).unwrap(),
            "{}",
            rel.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_into_the_same_directory_is_refused_and_changes_nothing() {
    let fake = crate::common::populated();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut opts = options(root);
    opts.archive = false;
    run(&fake, &opts).await;
    let before: Vec<(std::path::PathBuf, Vec<u8>)> =
        crate::common::files(root).into_iter().map(|f| (f.clone(), std::fs::read(root.join(&f)).unwrap())).collect();
    let requests = fake.requests().len();
    let err = gather(fake.client(), &opts).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("is not empty (it holds apis, cluster-scoped-resources, gather-debug.log and"),
        "{message}"
    );
    assert!(message.contains("Give an empty or new directory with --dest-dir"), "{message}");
    // Refused before anything was asked or written.
    assert_eq!(fake.requests().len(), requests);
    let after: Vec<(std::path::PathBuf, Vec<u8>)> =
        crate::common::files(root).into_iter().map(|f| (f.clone(), std::fs::read(root.join(&f)).unwrap())).collect();
    assert_eq!(before, after);
    // Any other file counts too; an empty directory (what `oc adm must-gather` mounts) is fine.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), "mine").unwrap();
    assert!(matches!(
        gather(fake.client(), &options(other.path())).await,
        Err(cma_must_gather::GatherError::DestinationNotEmpty { .. })
    ));
    assert_eq!(std::fs::read_to_string(other.path().join("notes.txt")).unwrap(), "mine");
    let empty = tempfile::tempdir().unwrap();
    run(&fake, &options(&empty.path().join("new/dir"))).await;
}

/// When KEDA's metrics server is down the APIService says so; the API it registers is then asked with a
/// short limit, so a server that does not answer at all costs seconds, not the per-request limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_metrics_api_is_asked_briefly_and_both_findings_are_kept() {
    use cma_must_gather::collect::{EXTERNAL_METRICS_ERROR_FILE, EXTERNAL_METRICS_PATH, UNAVAILABLE_API_TIMEOUT};
    let fake = crate::common::populated();
    fake.delay(Matcher::when(|r| r.path == EXTERNAL_METRICS_PATH), Duration::from_secs(60));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.timeout = Duration::from_secs(60);
    opts.archive = false;
    let started = std::time::Instant::now();
    let summary = run(&fake, &opts).await;
    assert!(started.elapsed() < UNAVAILABLE_API_TIMEOUT + Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    let error = read(dir.path(), EXTERNAL_METRICS_ERROR_FILE);
    assert_eq!(
        error,
        "GET /apis/external.metrics.k8s.io/v1beta1: timed out after 5s\n\
         APIService v1beta1.external.metrics.k8s.io is not Available: FailedDiscoveryCheck: failing or missing response from https://10.0.0.2:6443\n"
    );
    assert!(exists(
        dir.path(),
        "cluster-scoped-resources/apiregistration.k8s.io/apiservices/v1beta1.external.metrics.k8s.io.yaml"
    ));
    let debug = read(dir.path(), "gather-debug.log");
    assert!(debug.contains("is not Available: FailedDiscoveryCheck"), "{debug}");
    assert!(debug.contains("with a 5s limit"), "{debug}");
    // An available APIService gets the full limit (and the fixture's answer).
    let fake = crate::common::populated();
    fake.set_condition(
        &cma_testkit::Gvr::new("apiregistration.k8s.io", "v1", "apiservices"),
        "",
        "v1beta1.external.metrics.k8s.io",
        "Available",
        "True",
        "Passed",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    run(&fake, &options(dir.path())).await;
    assert!(exists(dir.path(), "apis/external.metrics.k8s.io/v1beta1.json"));
    assert!(!read(dir.path(), "gather-debug.log").contains("is not Available"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_write_the_same_objects() {
    let fake = crate::common::populated();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut opts = options(a.path());
    opts.archive = false;
    run(&fake, &opts).await;
    opts.dest_dir = b.path().to_path_buf();
    run(&fake, &opts).await;
    let files = crate::common::files(a.path());
    assert_eq!(files, crate::common::files(b.path()));
    for rel in files.iter().filter(|f| !f.ends_with("timestamp") && !f.ends_with("gather-debug.log")) {
        assert_eq!(
            std::fs::read(a.path().join(rel)).unwrap(),
            std::fs::read(b.path().join(rel)).unwrap(),
            "{}",
            rel.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reachable_exits_non_zero_with_a_summary() {
    // Every request refused.
    let fake = crate::common::populated();
    fake.forbid(Matcher::any());
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&fake, &options(dir.path())).await;
    assert_eq!(summary.outcome(), Outcome::Unreachable);
    assert_eq!(summary.exit_code(), 1);
    assert!(summary.report().contains("FAILED: nothing could be collected"), "{}", summary.report());
    assert!(exists(dir.path(), "gather-debug.log") && exists(dir.path(), "version"));

    // No answer at all: the run stops after the first requests instead of waiting on every one.
    let fake = crate::common::populated();
    fake.delay(Matcher::any(), Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let summary = run(&fake, &opts).await;
    assert_eq!(summary.outcome(), Outcome::Unreachable);
    assert_eq!(summary.counts.total, 3, "{}", summary.report());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(read(dir.path(), "gather-debug.log").contains("timed out after 200ms"));
    assert_eq!(read(dir.path(), "version"), "cma-operator\nunknown\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_installation_the_default_namespace_is_gathered() {
    let fake = FakeApiServer::new();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.archive = false;
    let summary = run(&fake, &opts).await;
    // No OLM, no KEDA CRDs: what there is gets collected and the 404s are findings, not failures.
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.namespaces, vec!["openshift-keda".to_string()]);
    assert!(exists(dir.path(), "namespaces/openshift-keda/core/pods.yaml"));
    assert_eq!(read(dir.path(), "version"), "cma-operator\nunknown\n");
    assert!(read(dir.path(), "gather-debug.log").contains("no installation found, default namespace openshift-keda"));
    assert!(exists(dir.path(), "apis/external.metrics.k8s.io/v1beta1.error.txt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_installations_each_get_their_own_folder() {
    let fake = crate::common::populated();
    crate::common::installation(&fake, "keda-two", "0.2.0");
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&fake, &options(dir.path())).await;
    assert_eq!(summary.namespaces, vec!["keda-two".to_string(), NS.to_string()]);
    for ns in ["keda-two", NS] {
        assert!(exists(dir.path(), &format!("namespaces/{ns}/{ns}.yaml")));
        assert!(exists(
            dir.path(),
            &format!("namespaces/{ns}/pods/keda-operator-5d4f8-x1/keda-operator/keda-operator/logs/current.log")
        ));
    }
    assert_eq!(read(dir.path(), "version"), "cma-operator\n0.1.0, 0.2.0\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_window_is_passed_to_every_log_request() {
    for since in [LogSince::Seconds(7200), LogSince::Time("2025-01-01T00:00:00Z".into())] {
        let fake = crate::common::populated();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        opts.since = Some(since.clone());
        opts.archive = false;
        run(&fake, &opts).await;
        let requests = fake.log_requests();
        assert_eq!(requests.len(), 5);
        for r in requests {
            match &since {
                LogSince::Seconds(s) => assert_eq!(r.since_seconds, Some(*s)),
                LogSince::Time(t) => assert_eq!(r.since_time.as_deref(), Some(t.as_str())),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_times_out_is_recorded_and_the_rest_continues() {
    let fake = crate::common::populated();
    fake.delay(
        Matcher::when(|r| {
            r.subresource.as_deref() == Some("log") && r.name.as_deref() == Some("keda-admission-5d4f8-x1")
        }),
        Duration::from_secs(30),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.timeout = Duration::from_millis(500);
    opts.archive = false;
    let summary = run(&fake, &opts).await;
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.logs, 4);
    let debug = read(dir.path(), "gather-debug.log");
    assert!(
        debug.lines().any(|l| l.contains("keda-admission-5d4f8-x1/log") && l.contains("ERROR timed out after 500ms")),
        "{debug}"
    );
    assert!(exists(
        dir.path(),
        &format!("namespaces/{NS}/pods/keda-operator-5d4f8-x1/keda-operator/keda-operator/logs/current.log")
    ));
}

/// The metrics server's audit log: on standard output (no `logOutputVolumeClaim`) it is the container's log
/// and is collected with it, event lines intact; on a claim it cannot be read, and the summary says where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_log_on_standard_output_is_collected_and_one_on_a_claim_is_pointed_to() {
    let event = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"6f1c2a9e-3b1d-4c55-9a0e-1f2e3d4c5b6a","stage":"ResponseComplete","requestURI":"/apis/external.metrics.k8s.io/v1beta1/namespaces/app/s0-redis-jobs?labelSelector=scaledobject.keda.sh%2Fname%3Dso-1","verb":"get","user":{"username":"system:serviceaccount:kube-system:horizontal-pod-autoscaler","groups":["system:serviceaccounts","system:authenticated"]},"sourceIPs":["10.128.0.1"],"userAgent":"kube-controller-manager/v1.33.0","objectRef":{"resource":"s0-redis-jobs","namespace":"app","apiGroup":"external.metrics.k8s.io","apiVersion":"v1beta1"},"responseStatus":{"metadata":{},"code":200},"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"keda-hpa-controller-external-metrics\""}}"#;
    let gvr = cma_testkit::Gvr::new("keda.sh", "v1alpha1", "kedacontrollers");
    let audit = |fake: &FakeApiServer, config: Value| {
        fake.patch_direct(&gvr, NS, "keda", &serde_json::json!({"spec": {"metricsServer": {"auditConfig": config}}}))
            .unwrap();
    };
    let policy = serde_json::json!({"rules": [{"level": "Metadata"}]});

    let fake = crate::common::populated();
    audit(&fake, serde_json::json!({"policy": policy, "logFormat": "json"}));
    let pod = "keda-metrics-apiserver-5d4f8-x1";
    fake.set_pod_log(NS, pod, "keda-metrics-apiserver", false, format!("2025-01-01T00:00:02.010000Z {event}\n"));
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&fake, &options(dir.path())).await;
    let log = read(
        dir.path(),
        &format!("namespaces/{NS}/pods/{pod}/keda-metrics-apiserver/keda-metrics-apiserver/logs/current.log"),
    );
    assert_eq!(log, format!("2025-01-01T00:00:02.010000Z {event}\n"));
    assert!(summary.audit_log_claims.is_empty());

    let fake = crate::common::populated();
    audit(&fake, serde_json::json!({"policy": policy, "logOutputVolumeClaim": "audit-log"}));
    let dir = tempfile::tempdir().unwrap();
    let summary = run(&fake, &options(dir.path())).await;
    assert_eq!(summary.audit_log_claims, vec![format!("{NS}/audit-log")]);
    assert!(summary.report().contains(&format!("audit log on claim {NS}/audit-log")), "{}", summary.report());
    assert!(
        read(dir.path(), "gather-debug.log").contains(&format!("audit log to claim {NS}/audit-log: not collected"))
    );
    // The claim itself is collected, so support sees its size, class and phase.
    assert!(read(dir.path(), &format!("namespaces/{NS}/core/persistentvolumeclaims.yaml")).contains("name: audit-log"));
}
