#![allow(clippy::unwrap_used, clippy::expect_used)]
//! must-gather against the real API server: layout, completeness, redaction, failures, the archive.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::common::{self, DEPLOYMENTS, MetricsServer, PLANTED, container_of};
use cma_must_gather::fetch::USER_AGENT;
use cma_must_gather::{LogSince, Options, Outcome, gather};
use cma_testkit::cluster::{Faults, RequestMatch, kinds};
use serde_json::Value;

fn options(dir: &Path) -> Options {
    Options { dest_dir: dir.to_path_buf(), archive: true, timeout: Duration::from_secs(10), ..Options::default() }
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

/// Where the log of `container` in `pod` of namespace `ns` is written.
fn log_file(ns: &str, pod: &str, container: &str, which: &str) -> String {
    format!("namespaces/{ns}/pods/{pod}/{container}/{container}/logs/{which}.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn populated_namespace_is_written_in_the_oc_adm_inspect_layout() {
    let fx = common::populated().await;
    let ns = &fx.ns;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary = fx.gather(&options(root)).await;
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.exit_code(), 0);
    assert_eq!(summary.namespaces, vec![ns.clone()]);

    let ns_dir = format!("namespaces/{ns}");
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
    assert_eq!(yaml(root, &format!("{ns_dir}/{ns}.yaml"))["kind"], "Namespace");
    let deployments = yaml(root, &format!("{ns_dir}/apps/deployments.yaml"));
    assert_eq!(names(&deployments), vec!["cma-operator", "keda-admission", "keda-metrics-apiserver", "keda-operator"]);
    // The controller manager's ReplicaSets, one per Deployment.
    assert_eq!(names(&yaml(root, &format!("{ns_dir}/apps/replicasets.yaml"))).len(), 4);
    for (deploy, container) in DEPLOYMENTS {
        let pod = fx.pod(deploy);
        let pod_dir = format!("{ns_dir}/pods/{pod}");
        assert_eq!(yaml(root, &format!("{pod_dir}/{pod}.yaml"))["metadata"]["name"], pod);
        let current = read(root, &log_file(ns, pod, container, "current"));
        assert!(current.contains(&format!("INFO starting {container}")), "{current}");
        let previous = log_file(ns, pod, container, "previous");
        // Only the container that restarted has a previous log.
        assert_eq!(exists(root, &previous), container == "keda-operator", "{previous}");
    }
    assert!(read(root, &log_file(ns, fx.pod("keda-operator"), "keda-operator", "previous")).contains("ERROR crashed"));
    // The kubelet was asked for each container's log with timestamps, through the API server.
    let requests = fx.cluster.container_logs().requests();
    assert_eq!(requests.len(), 5, "{requests:#?}");
    for req in requests {
        assert!(req.timestamps(), "{req:?}");
        assert_eq!(req.container, container_of(fx.pods.iter().find(|(_, p)| **p == req.pod).unwrap().0));
        assert_eq!((req.since_seconds(), req.since_time()), (None, None));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_collected_kind_is_present_and_unrelated_objects_are_left_out() {
    let fx = common::populated().await;
    let (ns, app, other) = (&fx.ns, &fx.app, &fx.other);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mark = fx.cluster.audit().mark();
    fx.gather(&options(root)).await;

    let expected = [
        // KEDA resources in all namespaces.
        format!("namespaces/{ns}/keda.sh/kedacontrollers/keda.yaml"),
        format!("namespaces/{app}/keda.sh/scaledobjects/so-1.yaml"),
        format!("namespaces/{app}/keda.sh/scaledjobs/sj-1.yaml"),
        format!("namespaces/{app}/keda.sh/triggerauthentications/ta-vault.yaml"),
        "cluster-scoped-resources/keda.sh/clustertriggerauthentications/cta-1.yaml".into(),
        format!("namespaces/{app}/eventing.keda.sh/cloudeventsources/ces-1.yaml"),
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
        format!("namespaces/kube-system/rbac.authorization.k8s.io/rolebindings/keda-auth-reader-{ns}.yaml"),
        format!("namespaces/{app}/autoscaling/horizontalpodautoscalers/keda-hpa-so-1.yaml"),
        format!("namespaces/{app}/batch/jobs/sj-1-x7k2p.yaml"),
        // OLM objects of our package.
        format!("namespaces/{ns}/operators.coreos.com/subscriptions/cma-operator.yaml"),
        format!("namespaces/{ns}/operators.coreos.com/clusterserviceversions/cma-operator.v0.1.0.yaml"),
        format!("namespaces/{ns}/operators.coreos.com/clusterserviceversions/cma-operator.v9.9.9.yaml"),
        format!("namespaces/{ns}/operators.coreos.com/installplans/install-abcde.yaml"),
        format!("namespaces/{ns}/operators.coreos.com/operatorgroups/openshift-keda.yaml"),
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
    // KEDA's events in the application namespace: about its resources and its HPAs (the HPA controller adds
    // its own about keda-hpa-so-1), nothing else.
    let events = yaml(root, &format!("namespaces/{app}/core/events.yaml"));
    assert_eq!(events["kind"], "EventList");
    let event_names = names(&events);
    for planted in ["keda-hpa-so-1.1", "so-1.1"] {
        assert!(event_names.iter().any(|n| n == planted), "{planted} missing from {event_names:?}");
    }
    for event in events["items"].as_array().unwrap() {
        let about = &event["involvedObject"];
        let keda = about["apiVersion"] == "keda.sh/v1alpha1"
            || (about["kind"] == "HorizontalPodAutoscaler" && about["name"].as_str().unwrap().starts_with("keda-hpa-"));
        assert!(keda, "an event not about KEDA was collected: {event}");
    }
    let apiservice =
        yaml(root, "cluster-scoped-resources/apiregistration.k8s.io/apiservices/v1beta1.external.metrics.k8s.io.yaml");
    assert_eq!(apiservice["status"]["conditions"][0]["reason"], "Passed");
    let discovery: Value = serde_json::from_str(&read(root, "apis/external.metrics.k8s.io/v1beta1.json")).unwrap();
    assert_eq!(discovery["groupVersion"], "external.metrics.k8s.io/v1beta1");

    for absent in [
        format!("namespaces/{other}/operators.coreos.com/clusterserviceversions/other-operator.v1.0.0.yaml"),
        format!("namespaces/{app}/operators.coreos.com/clusterserviceversions/cma-operator.v0.1.0.yaml"),
        // The application namespace holds KEDA resources but is not dumped as an operator namespace.
        format!("namespaces/{app}/{app}.yaml"),
        format!("namespaces/{app}/core/pods.yaml"),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterroles/admin.yaml".into(),
        "cluster-scoped-resources/rbac.authorization.k8s.io/clusterrolebindings/cluster-admins.yaml".into(),
        "namespaces/kube-system/rbac.authorization.k8s.io/rolebindings/unrelated.yaml".into(),
        "cluster-scoped-resources/admissionregistration.k8s.io/validatingwebhookconfigurations/other-webhook.yaml"
            .into(),
        format!("namespaces/{app}/autoscaling/horizontalpodautoscalers/web.yaml"),
        format!("namespaces/{app}/batch/jobs/backup.yaml"),
        format!("namespaces/{ns}/operators.coreos.com/installplans/install-other.yaml"),
    ] {
        assert!(!root.join(&absent).exists(), "{absent} should be left out");
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
        "GET /apis/keda.sh/v1alpha1/scaledobjects?limit=500".to_string(),
        "GET /apis/apiregistration.k8s.io/v1/apiservices/v1beta1.external.metrics.k8s.io".into(),
        "GET /apis/external.metrics.k8s.io/v1beta1".into(),
        format!("GET /api/v1/namespaces/{ns}/pods/{}/log?container=keda-operator", fx.pod("keda-operator")),
    ] {
        assert!(debug.contains(&path), "{path} not in the debug log:\n{debug}");
    }
    assert!(debug.lines().filter(|l| l.contains(" GET ")).all(|l| l.contains("ms ok") || l.contains("ms ERROR")));
    // Requests the API server received from the collector = requests logged (none goes unrecorded).
    let logged =
        debug.lines().filter(|l| l.contains(" GET /") && (l.contains("ms ok") || l.contains("ms ERROR"))).count();
    let requests = common::collector_requests(&fx.cluster, mark, logged).await;
    assert_eq!(logged, requests.len(), "{:#?}", requests.iter().map(|e| &e.uri).collect::<Vec<_>>());
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_appear_in_no_byte_of_the_tree_or_the_archive() {
    let fx = common::populated().await;
    let (ns, app) = (&fx.ns, &fx.app);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut opts = options(root);
    opts.known_secrets.push("client-bearer-token-0008".into());
    // The client's own token, should anything echo it.
    let admission = fx.pod("keda-admission");
    fx.cluster.container_logs().set(
        ns,
        admission,
        "keda-admission-webhooks",
        "2025-01-01T00:00:04Z echo client-bearer-token-0008\n",
    );
    let summary = fx.gather(&opts).await;
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
    let secrets = yaml(root, &format!("namespaces/{ns}/core/secrets.yaml"));
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
    let ta = yaml(root, &format!("namespaces/{app}/keda.sh/triggerauthentications/ta-vault.yaml"));
    assert_eq!(ta["spec"]["hashiCorpVault"]["credential"]["token"], "REDACTED");
    assert_eq!(ta["spec"]["hashiCorpVault"]["address"], "https://vault:8200");
    assert_eq!(ta["spec"]["secretTargetRef"][0]["name"], "redis-auth");
    let pods = yaml(root, &format!("namespaces/{ns}/core/pods.yaml"));
    let op =
        pods["items"].as_array().unwrap().iter().find(|p| p["metadata"]["name"] == fx.pod("cma-operator")).unwrap();
    assert_eq!(op["spec"]["containers"][0]["env"][0]["value"], "REDACTED");
    assert_eq!(op["spec"]["containers"][0]["env"][0]["name"], "API_TOKEN");
    // A kubeconfig keeps its structure, loses its credentials.
    let cms = yaml(root, &format!("namespaces/{ns}/core/configmaps.yaml"));
    let kc = cms["items"].as_array().unwrap().iter().find(|c| c["metadata"]["name"] == "debug-kubeconfig").unwrap();
    let kc = kc["data"]["kubeconfig"].as_str().unwrap();
    assert!(kc.contains("token: REDACTED\n") && kc.contains("client-key-data: REDACTED\n"), "{kc}");
    assert!(kc.contains("server: https://api.example:6443"), "{kc}");
    // The public service CA bundle is left readable.
    let cms = read(root, &format!("namespaces/{ns}/core/configmaps.yaml"));
    assert!(cms.contains("BEGIN CERTIFICATE"));
    // Logs: the Secret's value and the bearer token are replaced, the rest of the line kept.
    let log = read(root, &log_file(ns, fx.pod("cma-operator"), "cma-operator", "current"));
    assert!(log.contains("DEBUG connecting with password REDACTED\n"), "{log}");
    assert!(log.contains("Authorization: Bearer REDACTED\n"), "{log}");

    // redactions.txt says where, never what.
    let redactions = read(root, "redactions.txt");
    for line in [
        format!("namespaces/{ns}/core/secrets.yaml\tSecret {ns}/db-credentials\tdata[password]\tsecret-data"),
        format!("namespaces/{app}/keda.sh/triggerauthentications/ta-vault.yaml\tTriggerAuthentication {app}/ta-vault\tspec.hashiCorpVault.credential.token\tcredential-field"),
        format!("namespaces/{ns}/core/pods.yaml\tPod {ns}/{}\tspec.containers[cma-operator].env[API_TOKEN].value\tcredential-env", fx.pod("cma-operator")),
        "cluster-scoped-resources/keda.sh/clustertriggerauthentications/cta-1.yaml\tClusterTriggerAuthentication cta-1\tspec.hashiCorpVault.credential.token\tcredential-field".to_string(),
        format!("namespaces/{app}/keda.sh/scaledobjects/so-1.yaml\tScaledObject {app}/so-1\tspec.triggers[0].metadata.password\tcredential-field"),
        format!("namespaces/{app}/keda.sh/scaledjobs/sj-1.yaml\tScaledJob {app}/sj-1\tspec.jobTargetRef.template.spec.containers[worker].env[DB_PASSWORD].value\tcredential-env"),
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

/// Real RBAC: a ServiceAccount that may not list Secrets; a `500` on ServiceMonitors and one on
/// PodDisruptionBudgets whose message echoes a credential (injected in the client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_resource_is_recorded_and_skipped() {
    let fx = common::populated().await;
    let ns = &fx.ns;
    let config = fx.gatherer_without("no-secrets", &["secrets"]).await;
    let faults = Faults::new();
    let servicemonitors = RequestMatch::default().path("/servicemonitors");
    faults.fail_next(usize::MAX, servicemonitors, 500, "InternalError", "the monitoring API is broken");
    // An error message echoing a credential is scrubbed in the debug log and the summary too.
    faults.fail_next(
        1,
        RequestMatch::default().path("/poddisruptionbudgets"),
        500,
        "InternalError",
        "proxy refused Authorization: Bearer t0ken-in-an-error-message",
    );
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary = gather(common::client(config, Some(&faults)), &options(root)).await.unwrap();
    // Secrets are not essential: the run is complete, with the failures recorded.
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.counts.forbidden, 1, "{}", summary.report());
    assert!(summary.counts.failed >= 1);
    assert!(!exists(root, &format!("namespaces/{ns}/core/secrets.yaml")));
    assert!(!exists(root, &format!("namespaces/{ns}/monitoring.coreos.com/servicemonitors.yaml")));
    assert!(exists(root, &format!("namespaces/{ns}/core/configmaps.yaml")));
    assert!(exists(root, &format!("namespaces/{ns}/monitoring.coreos.com/prometheusrules.yaml")));
    let debug = read(root, "gather-debug.log");
    // The API server's own refusal, as it gave it.
    let refusal = format!(
        "ERROR 403 Forbidden: secrets is forbidden: User \"system:serviceaccount:{ns}:no-secrets\" cannot list resource \"secrets\" in API group \"\" in the namespace \"{ns}\""
    );
    assert!(
        debug.lines().any(|l| l.contains(&format!("GET /api/v1/namespaces/{ns}/secrets")) && l.ends_with(&refusal)),
        "{debug}"
    );
    assert!(debug.contains("ERROR 500 InternalError: the monitoring API is broken"), "{debug}");
    assert!(!debug.contains("t0ken-in-an-error-message") && !summary.report().contains("t0ken-in"));
    assert!(debug.contains("Authorization: Bearer REDACTED"), "{debug}");
    assert!(
        read(root, "redactions.txt").contains("gather-debug.log\t-\t1 line(s)\tbearer-token"),
        "{}",
        read(root, "redactions.txt")
    );
    assert!(summary.report().contains(&format!("failed: GET /api/v1/namespaces/{ns}/secrets")), "{}", summary.report());

    // An essential resource forbidden: still written, but partial (exit code 2) and said so.
    let config = fx.gatherer_without("no-pods", &["pods", "pods/log"]).await;
    let dir = tempfile::tempdir().unwrap();
    let summary = gather(common::client(config, None), &options(dir.path())).await.unwrap();
    assert_eq!(summary.outcome(), Outcome::Partial);
    assert_eq!(summary.exit_code(), 2);
    assert!(summary.report().contains(&format!("missing: list pods in {ns}")), "{}", summary.report());
    assert!(exists(dir.path(), &format!("namespaces/{ns}/apps/deployments.yaml")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_round_trips() {
    let fx = common::populated().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let summary = fx.gather(&options(root)).await;
    let archive = summary.archive.unwrap();
    assert_eq!(archive, root.join("must-gather.tar.gz"));
    let out = tempfile::tempdir().unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap())).unpack(out.path()).unwrap();
    let unpacked = out.path().join("must-gather");
    let mut tree = common::files(root);
    tree.retain(|f| f != Path::new("must-gather.tar.gz"));
    assert_eq!(summary.files, tree.len());
    assert_eq!(common::files(&unpacked), tree);
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
    let cluster = common::cluster().await;
    let client = common::client(cluster.config(), None);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut opts = options(root);
    opts.archive = false;
    gather(client.clone(), &opts).await.unwrap();
    let before: Vec<(std::path::PathBuf, Vec<u8>)> =
        common::files(root).into_iter().map(|f| (f.clone(), std::fs::read(root.join(&f)).unwrap())).collect();
    let mark = cluster.audit().mark();
    let err = gather(client.clone(), &opts).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("is not empty (it holds apis, cluster-scoped-resources, gather-debug.log and"),
        "{message}"
    );
    assert!(message.contains("Give an empty or new directory with --dest-dir"), "{message}");
    // Refused before anything was asked or written.
    assert_eq!(cluster.audit().by_agent(mark, USER_AGENT).len(), 0);
    let after: Vec<(std::path::PathBuf, Vec<u8>)> =
        common::files(root).into_iter().map(|f| (f.clone(), std::fs::read(root.join(&f)).unwrap())).collect();
    assert_eq!(before, after);
    // Any other file counts too; an empty directory (what `oc adm must-gather` mounts) is fine.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), "mine").unwrap();
    assert!(matches!(
        gather(client.clone(), &options(other.path())).await,
        Err(cma_must_gather::GatherError::DestinationNotEmpty { .. })
    ));
    assert_eq!(std::fs::read_to_string(other.path().join("notes.txt")).unwrap(), "mine");
    let empty = tempfile::tempdir().unwrap();
    gather(client, &options(&empty.path().join("new/dir"))).await.unwrap();
}

/// KEDA's metrics server crash-looping: its Service has no ready endpoint, the APIService says so, and the API
/// server answers `503` for the API at once. The APIService is read first; the API is then asked with a short
/// limit, so a server that does not answer at all costs seconds, not the per-request limit; both findings are
/// kept. Once the metrics server serves again, the API's answer is collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_metrics_api_is_asked_briefly_and_both_findings_are_kept() {
    use cma_must_gather::collect::{
        EXTERNAL_METRICS_APISERVICE, EXTERNAL_METRICS_ERROR_FILE, EXTERNAL_METRICS_FILE, EXTERNAL_METRICS_PATH,
        UNAVAILABLE_API_TIMEOUT,
    };
    let fx = common::populated_with(MetricsServer::CrashLooping).await;
    let live = fx.cluster.get(&kinds::API_SERVICE, "", EXTERNAL_METRICS_APISERVICE).await.unwrap();
    let condition = &live["status"]["conditions"][0];
    assert_eq!((&condition["type"], &condition["status"]), (&"Available".into(), &"False".into()));
    let finding = format!(
        "APIService v1beta1.external.metrics.k8s.io is not Available: MissingEndpoints: {}",
        condition["message"].as_str().unwrap()
    );
    assert!(finding.contains("have no addresses with port name \"https\""), "{finding}");

    // The API server answers at once, and that answer is recorded as it is.
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.timeout = Duration::from_secs(60);
    opts.archive = false;
    let summary = fx.gather(&opts).await;
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(
        read(dir.path(), EXTERNAL_METRICS_ERROR_FILE),
        format!("GET {EXTERNAL_METRICS_PATH}: 503 Service Unavailable: service unavailable\n{finding}\n")
    );
    assert!(exists(
        dir.path(),
        "cluster-scoped-resources/apiregistration.k8s.io/apiservices/v1beta1.external.metrics.k8s.io.yaml"
    ));
    let debug = read(dir.path(), "gather-debug.log");
    assert!(debug.contains("is not Available: MissingEndpoints"), "{debug}");
    assert!(debug.contains("with a 5s limit"), "{debug}");

    // No answer at all (the request hangs between the collector and the API server): the short limit.
    let faults = Faults::new();
    faults.hang_next(1, RequestMatch::default().exact_path(EXTERNAL_METRICS_PATH));
    let dir = tempfile::tempdir().unwrap();
    opts.dest_dir = dir.path().to_path_buf();
    let started = std::time::Instant::now();
    let summary = gather(fx.client(Some(&faults)), &opts).await.unwrap();
    assert!(started.elapsed() < UNAVAILABLE_API_TIMEOUT + Duration::from_secs(4), "{:?}", started.elapsed());
    assert_eq!(faults.hits(), 1);
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(
        read(dir.path(), EXTERNAL_METRICS_ERROR_FILE),
        format!("GET {EXTERNAL_METRICS_PATH}: timed out after 5s\n{finding}\n")
    );

    // The metrics server serves again: Available, asked with the full limit, its answer collected.
    let _metrics = fx.cluster.serve_external_metrics(&fx.ns, "keda-metrics-apiserver-up").await;
    let dir = tempfile::tempdir().unwrap();
    fx.gather(&options(dir.path())).await;
    assert!(exists(dir.path(), EXTERNAL_METRICS_FILE));
    assert!(!read(dir.path(), "gather-debug.log").contains("is not Available"));
}

/// A list's own `metadata.resourceVersion` is the cluster's revision when it was read: any write anywhere (a
/// lease renewal of the API server itself) moves it, while every object in it, with its own version, stays.
fn without_list_version(text: String) -> String {
    let list_version = text.lines().position(|l| l == "metadata:").and_then(|at| {
        let next = text.lines().nth(at + 1)?;
        next.starts_with("  resourceVersion: ").then_some(next.to_string())
    });
    match list_version {
        Some(line) => text.lines().filter(|l| *l != line).collect::<Vec<_>>().join("\n"),
        None => text,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_write_the_same_objects() {
    let fx = common::populated().await;
    // Nothing but the collector may touch the cluster between the two runs (the HPA controller records an
    // Event about keda-hpa-so-1 every 15 s, for one).
    let _paused = fx.cluster.pause_controllers().await;
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut opts = options(a.path());
    opts.archive = false;
    fx.gather(&opts).await;
    opts.dest_dir = b.path().to_path_buf();
    fx.gather(&opts).await;
    let files = common::files(a.path());
    assert_eq!(files, common::files(b.path()));
    for rel in files.iter().filter(|f| !f.ends_with("timestamp") && !f.ends_with("gather-debug.log")) {
        let rel = rel.to_string_lossy();
        let (first, second) = (without_list_version(read(a.path(), &rel)), without_list_version(read(b.path(), &rel)));
        if first != second {
            let changed: Vec<String> = first
                .lines()
                .zip(second.lines())
                .filter(|(x, y)| x != y)
                .map(|(x, y)| format!("- {x}\n+ {y}"))
                .collect();
            panic!("{rel} differs between the runs:\n{}", changed.join("\n"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_reachable_exits_non_zero_with_a_summary() {
    let cluster = common::cluster().await;
    // Every request refused: a token the API server does not know (expired, revoked) gets 401 everywhere.
    let mut config = cluster.config();
    config.auth_info =
        kube::config::AuthInfo { token: Some("not-a-token-it-knows".to_string().into()), ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let summary = gather(common::client(config, None), &options(dir.path())).await.unwrap();
    assert_eq!(summary.outcome(), Outcome::Unreachable);
    assert_eq!(summary.exit_code(), 1);
    assert!(summary.report().contains("FAILED: nothing could be collected"), "{}", summary.report());
    assert!(read(dir.path(), "gather-debug.log").contains("ERROR 401 Unauthorized: Unauthorized"));
    assert!(exists(dir.path(), "version"));

    // No answer at all: the run stops after the first requests instead of waiting on every one.
    let faults = Faults::new();
    faults.hang_next(usize::MAX, RequestMatch::default());
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let summary = gather(common::client(cluster.config(), Some(&faults)), &opts).await.unwrap();
    assert_eq!(summary.outcome(), Outcome::Unreachable);
    assert_eq!(summary.counts.total, 3, "{}", summary.report());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(read(dir.path(), "gather-debug.log").contains("timed out after 200ms"));
    assert_eq!(read(dir.path(), "version"), "cma-operator\nunknown\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_installation_the_default_namespace_is_gathered() {
    // No OLM, no installation, no APIService: what there is gets collected and the 404s are findings.
    let cluster = cma_testkit::cluster::acquire(cma_testkit::cluster::Apis::kubernetes()).await;
    cluster.wait_for_reset().await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.archive = false;
    let summary = gather(common::client(cluster.config(), None), &opts).await.unwrap();
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.namespaces, vec!["openshift-keda".to_string()]);
    assert!(exists(dir.path(), "namespaces/openshift-keda/core/pods.yaml"));
    assert_eq!(read(dir.path(), "version"), "cma-operator\nunknown\n");
    let debug = read(dir.path(), "gather-debug.log");
    assert!(debug.contains("no installation found, default namespace openshift-keda"), "{debug}");
    assert!(debug.contains("GET /apis/operators.coreos.com/v1alpha1/subscriptions?limit=500"), "{debug}");
    assert!(summary.counts.not_found >= 2, "{}", summary.report());
    assert_eq!(
        read(dir.path(), "apis/external.metrics.k8s.io/v1beta1.error.txt").lines().next(),
        // The API server's own words for a group it does not serve (plain text, not a Status).
        Some("GET /apis/external.metrics.k8s.io/v1beta1: 404 Not Found: 404 page not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_installations_each_get_their_own_folder() {
    let mut fx = common::populated().await;
    let (two, two_pods) = fx.add_installation("keda-two", "0.2.0").await;
    let dir = tempfile::tempdir().unwrap();
    let summary = fx.gather(&options(dir.path())).await;
    let mut expected = vec![two.clone(), fx.ns.clone()];
    expected.sort();
    assert_eq!(summary.namespaces, expected);
    for (ns, operator) in [(&two, &two_pods["keda-operator"]), (&fx.ns, &fx.pods["keda-operator"])] {
        assert!(exists(dir.path(), &format!("namespaces/{ns}/{ns}.yaml")));
        assert!(exists(dir.path(), &log_file(ns, operator, "keda-operator", "current")));
    }
    assert_eq!(read(dir.path(), "version"), "cma-operator\n0.1.0, 0.2.0\n");
}

/// `--since` and `--since-time` reach the kubelet through the API server, and it applies them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_window_is_passed_to_every_log_request() {
    let fx = common::populated().await;
    let ns = &fx.ns;
    let operator = fx.pod("keda-operator");
    let recent = format!("{} INFO recent\n", jiff::Timestamp::now());
    let log = format!("2020-01-01T00:00:00Z INFO old\n{recent}");
    fx.cluster.container_logs().set(ns, operator, "keda-operator", log);
    for since in [LogSince::Seconds(7200), LogSince::Time("2025-01-01T00:00:00Z".into())] {
        let asked = fx.cluster.container_logs().requests().len();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = options(dir.path());
        opts.since = Some(since.clone());
        opts.archive = false;
        fx.gather(&opts).await;
        let requests = fx.cluster.container_logs().requests().split_off(asked);
        assert_eq!(requests.len(), 5, "{requests:#?}");
        for r in requests {
            match &since {
                LogSince::Seconds(s) => assert_eq!(r.since_seconds(), Some(*s)),
                LogSince::Time(t) => assert_eq!(r.since_time(), Some(t.as_str())),
            }
        }
        assert_eq!(read(dir.path(), &log_file(ns, operator, "keda-operator", "current")), recent);
        // The previous instance's lines are all older than either window.
        assert_eq!(read(dir.path(), &log_file(ns, operator, "keda-operator", "previous")), "");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_times_out_is_recorded_and_the_rest_continues() {
    let fx = common::populated().await;
    let admission = fx.pod("keda-admission");
    let faults = Faults::new();
    faults.hang_next(1, RequestMatch::default().path(&format!("/pods/{admission}/log")));
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.timeout = Duration::from_secs(2);
    opts.archive = false;
    let summary = gather(fx.client(Some(&faults)), &opts).await.unwrap();
    assert_eq!(summary.outcome(), Outcome::Complete, "{}", summary.report());
    assert_eq!(summary.logs, 4);
    let debug = read(dir.path(), "gather-debug.log");
    assert!(
        debug.lines().any(|l| l.contains(&format!("{admission}/log")) && l.contains("ERROR timed out after 2s")),
        "{debug}"
    );
    assert!(exists(dir.path(), &log_file(&fx.ns, fx.pod("keda-operator"), "keda-operator", "current")));
}

/// The metrics server's audit log: on standard output (no `logOutputVolumeClaim`) it is the container's log
/// and is collected with it, event lines intact; on a claim it cannot be read, and the summary says where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_log_on_standard_output_is_collected_and_one_on_a_claim_is_pointed_to() {
    let event = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"6f1c2a9e-3b1d-4c55-9a0e-1f2e3d4c5b6a","stage":"ResponseComplete","requestURI":"/apis/external.metrics.k8s.io/v1beta1/namespaces/app/s0-redis-jobs?labelSelector=scaledobject.keda.sh%2Fname%3Dso-1","verb":"get","user":{"username":"system:serviceaccount:kube-system:horizontal-pod-autoscaler","groups":["system:serviceaccounts","system:authenticated"]},"sourceIPs":["10.128.0.1"],"userAgent":"kube-controller-manager/v1.33.0","objectRef":{"resource":"s0-redis-jobs","namespace":"app","apiGroup":"external.metrics.k8s.io","apiVersion":"v1beta1"},"responseStatus":{"metadata":{},"code":200},"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"keda-hpa-controller-external-metrics\""}}"#;
    let policy = serde_json::json!({"rules": [{"level": "Metadata"}]});
    let fx = common::populated().await;
    let ns = &fx.ns;
    fx.patch_kedacontroller(
        &serde_json::json!({"spec": {"metricsServer": {"auditConfig": {"policy": policy, "logFormat": "json"}}}}),
    )
    .await;
    let pod = fx.pod("keda-metrics-apiserver");
    fx.cluster.container_logs().set(
        ns,
        pod,
        "keda-metrics-apiserver",
        format!("2025-01-01T00:00:02.010000Z {event}\n"),
    );
    let dir = tempfile::tempdir().unwrap();
    let summary = fx.gather(&options(dir.path())).await;
    let log = read(dir.path(), &log_file(ns, pod, "keda-metrics-apiserver", "current"));
    assert_eq!(log, format!("2025-01-01T00:00:02.010000Z {event}\n"));
    assert!(summary.audit_log_claims.is_empty());

    fx.patch_kedacontroller(
        &serde_json::json!({"spec": {"metricsServer": {"auditConfig": {"logOutputVolumeClaim": "audit-log"}}}}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let summary = fx.gather(&options(dir.path())).await;
    assert_eq!(summary.audit_log_claims, vec![format!("{ns}/audit-log")]);
    assert!(summary.report().contains(&format!("audit log on claim {ns}/audit-log")), "{}", summary.report());
    assert!(
        read(dir.path(), "gather-debug.log").contains(&format!("audit log to claim {ns}/audit-log: not collected"))
    );
    // The claim itself is collected, so support sees its size, class and phase.
    assert!(read(dir.path(), &format!("namespaces/{ns}/core/persistentvolumeclaims.yaml")).contains("name: audit-log"));
}
