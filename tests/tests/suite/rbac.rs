//! Least privilege, proven: the operator's permissions (config/rbac and the CSV) are exactly what it does.
//!
//! The real controller loop runs through every scenario a cluster admin can cause (install on Kubernetes and
//! OpenShift, update, prune, drift repair, misplaced KedaControllers, uninstall through the finalizer,
//! leader election, `--create-default-kedacontroller`, OwnNamespace, SingleNamespace and AllNamespaces
//! modes) and every request of its client is recorded. Those requests, plus what the API server demands
//! for the objects render produces (`cma_bundle::rbac::render_needs`: apply may create, prune deletes,
//! escalate and bind by name, owner-reference finalizers), are folded into RBAC rules. The test then checks:
//! - every recorded request is allowed under OLM's semantics of the scenario's install mode;
//! - every single grant is load-bearing (removing it loses a needed access);
//! - the policy holds: no `*`, no cluster-wide Secret write, Secret writes by name, escalate/bind by name;
//! - config/rbac and the committed CSV hold exactly these rules (`UPDATE_BUNDLE=1` rewrites config/rbac and
//!   regenerates the bundle).
//!
//! A second test enforces the committed rules in the fake API server (every request they do not grant is
//! answered 403, as RBAC would) and runs whole flows: the operator installs, repairs and uninstalls KEDA
//! with them, and fails visibly when one grant is taken away.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cma_bundle::rbac::{self, Needs, Permissions, Request, Targets};
use cma_testkit::tls::{https_get, serving_certificate};
use cma_testkit::{FakeApiServer, Matcher, RequestRecord, Verb, known};
use cma_tests::*;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(15);
const PROMETHEUS: &str = "system:serviceaccount:openshift-monitoring:prometheus-k8s";

/// What one scenario made the operator do.
struct Observed {
    name: &'static str,
    requests: Vec<(Request, String)>,
    non_resource: BTreeSet<String>,
    /// Where OLM puts the CSV's `permissions` in this scenario's install mode.
    targets: Targets,
    /// Namespaces OLM targets (install namespace and watched namespaces).
    watched: BTreeSet<String>,
    /// Requests answered 403.
    refused: Vec<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn field_selector_name(r: &RequestRecord) -> Option<String> {
    r.query("fieldSelector")?.split(',').find_map(|s| s.strip_prefix("metadata.name=")).map(String::from)
}

/// The RBAC requests one recorded request needs (an apply: patch, and create when the object is missing).
fn rbac_requests(r: &RequestRecord, namespaced: bool) -> Vec<Request> {
    let Some(gvr) = r.resource.clone() else {
        return Vec::new();
    };
    let resource = match &r.subresource {
        Some(sub) => format!("{}/{sub}", gvr.resource),
        None => gvr.resource.clone(),
    };
    let name =
        r.name.clone().or_else(|| matches!(r.verb, Verb::List | Verb::Watch).then(|| field_selector_name(r)).flatten());
    let verbs: Vec<&str> = match r.verb {
        Verb::Apply => vec!["patch", "create"],
        v => vec![v.rbac()],
    };
    verbs
        .into_iter()
        .map(|verb| Request {
            group: gvr.group.clone(),
            resource: resource.clone(),
            namespaced,
            verb: verb.to_string(),
            namespace: r.namespace.clone(),
            name: name.clone(),
        })
        .collect()
}

/// Makes the fake answer 403 to every request of `client` that `permissions` do not grant at `targets`.
fn enforce(fake: &FakeApiServer, client: &'static str, permissions: Permissions, targets: Targets) {
    fake.forbid(Matcher::when(move |r| {
        r.client == client
            && r.resource.is_some()
            && !rbac_requests(r, r.namespace.is_some()).iter().all(|q| permissions.grants(&targets, q))
    }));
}

/// The RBAC requests of the operator's clients (`clients`), as the authorizer sees them: an apply is a
/// patch and, when the object is missing, a create of the same name.
fn observe(fake: &FakeApiServer, clients: &[&str], name: &'static str, targets: Targets, watched: &[&str]) -> Observed {
    let mut requests = Vec::new();
    let mut non_resource = BTreeSet::new();
    let mut refused = Vec::new();
    for r in fake.requests().into_iter().filter(|r| clients.contains(&r.client.as_str())) {
        if r.status == 403 {
            refused.push(format!("{} {}", r.method, r.path));
        }
        let Some(gvr) = r.resource.clone() else {
            non_resource.insert(r.path.clone());
            continue;
        };
        let namespaced = fake.resource_type(&gvr).map_or(r.namespace.is_some(), |t| t.namespaced);
        for request in rbac_requests(&r, namespaced) {
            requests.push((request, format!("{} {}", r.method, r.path)));
        }
    }
    Observed {
        name,
        requests,
        non_resource,
        targets,
        watched: watched.iter().map(|s| s.to_string()).collect(),
        refused,
    }
}

fn all_namespaces() -> Targets {
    Targets::All
}

fn namespaces(list: &[&str]) -> Targets {
    Targets::Namespaces(list.iter().map(|s| s.to_string()).collect())
}

async fn update_spec(fake: &FakeApiServer, ns: &str, spec: Value) {
    let mut kc = fake.get(&gvr::kedacontrollers(), ns, "keda").unwrap();
    kc["spec"] = spec;
    kc["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    fake.insert(&kc).unwrap();
}

async fn installed(fake: &FakeApiServer, ns: &str) {
    eventually(WAIT, "the installation is applied", || {
        fake.get(&gvr::webhooks(), "", "keda-admission").is_some()
            && fake.get(&gvr::deployments(), ns, "keda-admission").is_some()
    })
    .await;
    settle(fake, Duration::from_millis(300), WAIT).await;
}

async fn uninstalled(fake: &FakeApiServer, ns: &str) {
    fake.delete_direct(&gvr::kedacontrollers(), ns, "keda").unwrap();
    eventually(WAIT, "the KedaController is gone", || fake.get(&gvr::kedacontrollers(), ns, "keda").is_none()).await;
    let left = managed_objects(fake);
    assert!(left.is_empty(), "left behind: {left:#?}");
}

async fn drift(fake: &FakeApiServer, ns: &str) {
    // Twice the same deletion: the second DriftReverted event updates the first one's series (a patch).
    for _ in 0..2 {
        fake.delete_direct(&gvr::deployments(), ns, "keda-operator").unwrap();
        eventually(WAIT, "the Deployment is restored", || fake.get(&gvr::deployments(), ns, "keda-operator").is_some())
            .await;
        settle(fake, Duration::from_millis(300), WAIT).await;
    }
    for (plural, namespace, name) in [
        ("rolebindings", "kube-system", "keda-auth-reader"),
        ("clusterroles", "", "keda-operator"),
        ("apiservices", "", "v1beta1.external.metrics.k8s.io"),
        ("secrets", ns, "kedaorg-certs"),
    ] {
        let g = by_plural(plural);
        fake.delete_direct(&g, namespace, name).unwrap();
        eventually(WAIT, &format!("{plural} {name} is restored"), || fake.get(&g, namespace, name).is_some()).await;
    }
    settle(fake, Duration::from_millis(300), WAIT).await;
}

/// AllNamespaces on Kubernetes: install, update, prune, drift, misplaced KedaControllers, uninstall.
async fn kubernetes_all_namespaces(enforced: Option<Permissions>) -> Observed {
    let fake = cluster(false);
    if let Some(p) = enforced {
        enforce(&fake, "operator", p, all_namespaces());
    }
    let operator = start(&fake, Options::default());
    let spec = json!({
        "operator": {"replicas": 2},
        "metricsServer": {"replicas": 2, "auditConfig": {"policy": {"rules": [{"level": "Metadata"}]}}},
        "admissionWebhooks": {"replicas": 2},
    });
    fake.insert(&kedacontroller(NS, "keda", spec)).unwrap();
    installed(&fake, NS).await;
    cluster_reports_ready(&fake, NS);
    eventually(WAIT, "Ready", || condition(&fake, NS, "keda", "Ready").is_some_and(|c| c.0 == "True")).await;
    update_spec(&fake, NS, json!({"operator": {"logLevel": "debug"}, "networkPolicy": {"enabled": false}})).await;
    eventually(WAIT, "pruned", || {
        fake.list_in(&gvr::network_policies(), NS).is_empty()
            && fake.get(&gvr::pod_disruption_budgets(), NS, "keda-operator").is_none()
    })
    .await;
    settle(&fake, Duration::from_millis(300), WAIT).await;
    drift(&fake, NS).await;
    fake.insert(&kedacontroller(NS, "keda-two", json!({}))).unwrap();
    fake.insert(&kedacontroller("elsewhere", "keda", json!({}))).unwrap();
    eventually(WAIT, "misplaced KedaControllers are marked ignored", || {
        [(NS, "keda-two"), ("elsewhere", "keda")].iter().all(|(ns, name)| {
            fake.get(&gvr::kedacontrollers(), ns, name)
                .is_some_and(|kc| kc["status"]["phase"] == "Installation Ignored")
        })
    })
    .await;
    uninstalled(&fake, NS).await;
    operator.stop().await.unwrap();
    observe(&fake, &["operator"], "kubernetes-all-namespaces", all_namespaces(), &[NS, "elsewhere"])
}

/// OwnNamespace on OpenShift (the OperatorHub default): certificates, TLS profile, monitoring APIs.
async fn openshift_own_namespace(enforced: Option<Permissions>) -> Observed {
    let fake = cluster(true);
    if let Some(p) = enforced {
        enforce(&fake, "operator", p, namespaces(&["openshift-keda"]));
    }
    fake.register(known::servicemonitors());
    fake.register(known::prometheusrules());
    fake.insert(&json!({
        "apiVersion": "config.openshift.io/v1",
        "kind": "APIServer",
        "metadata": {"name": "cluster"},
        "spec": {"tlsSecurityProfile": {"type": "Intermediate", "intermediate": {}}},
    }))
    .unwrap();
    let ns = "openshift-keda";
    let certificate = serving_certificate();
    let options = Options {
        namespace: ns.into(),
        watch_namespaces: vec![ns.into()],
        metrics_cert_dir: Some(certificate.dir.path().to_path_buf()),
        ..Options::default()
    };
    let operator = start(&fake, options);
    fake.insert(&kedacontroller(ns, "keda", json!({"metricsServer": {"replicas": 2}}))).unwrap();
    installed(&fake, ns).await;
    cluster_reports_ready(&fake, ns);
    // The cluster monitoring Prometheus scrapes /metrics: the operator reviews its token and its access.
    fake.add_token("prometheus-token", PROMETHEUS, &["system:serviceaccounts"]);
    fake.allow_non_resource(PROMETHEUS, "get", "/metrics");
    let (addr, token) = (operator.metrics_addr, "Authorization: Bearer prometheus-token\r\n");
    let scraped = https_get(addr, &certificate.cert, rustls::DEFAULT_VERSIONS, "/metrics", token).await.unwrap();
    assert!(scraped.starts_with("HTTP/1.1 200"), "{}", scraped.lines().next().unwrap_or_default());
    update_spec(&fake, ns, json!({})).await;
    eventually(WAIT, "the PDB is pruned", || {
        fake.get(&gvr::pod_disruption_budgets(), ns, "keda-metrics-apiserver").is_none()
    })
    .await;
    settle(&fake, Duration::from_millis(300), WAIT).await;
    drift(&fake, ns).await;
    uninstalled(&fake, ns).await;
    operator.stop().await.unwrap();
    observe(&fake, &["operator"], "openshift-own-namespace", namespaces(&[ns]), &[ns])
}

/// SingleNamespace: the operator runs in one namespace and installs KEDA into the target namespace.
async fn single_namespace() -> Observed {
    let fake = cluster(false);
    let operator = start(
        &fake,
        Options { namespace: "operators".into(), watch_namespaces: vec!["team-keda".into()], ..Options::default() },
    );
    fake.insert(&kedacontroller("team-keda", "keda", json!({}))).unwrap();
    installed(&fake, "team-keda").await;
    uninstalled(&fake, "team-keda").await;
    operator.stop().await.unwrap();
    observe(&fake, &["operator"], "single-namespace", namespaces(&["operators", "team-keda"]), &["team-keda"])
}

/// Two replicas with leader election (AllNamespaces): acquire, standby, release and takeover.
async fn leader_election() -> Observed {
    let fake = cluster(false);
    let a = start(&fake, Options { identity: "a".into(), leader_elect: true, ..Options::default() });
    eventually(WAIT, "a holds the Lease", || {
        fake.get(&gvr::leases(), NS, "cma-operator-leader").is_some_and(|l| l["spec"]["holderIdentity"] == "a")
    })
    .await;
    let b = start(&fake, Options { identity: "b".into(), leader_elect: true, ..Options::default() });
    fake.insert(&kedacontroller(NS, "keda", json!({}))).unwrap();
    installed(&fake, NS).await;
    a.stop().await.unwrap();
    eventually(WAIT, "b holds the Lease", || {
        fake.get(&gvr::leases(), NS, "cma-operator-leader").is_some_and(|l| l["spec"]["holderIdentity"] == "b")
    })
    .await;
    settle(&fake, Duration::from_millis(300), WAIT).await;
    b.stop().await.unwrap();
    observe(&fake, &["a", "b"], "leader-election", all_namespaces(), &[NS])
}

/// `--create-default-kedacontroller` (AllNamespaces).
async fn create_default() -> Observed {
    let fake = cluster(false);
    let operator = start(&fake, Options { create_default: true, ..Options::default() });
    installed(&fake, NS).await;
    operator.stop().await.unwrap();
    observe(&fake, &["operator"], "create-default-kedacontroller", all_namespaces(), &[NS])
}

/// Paths every authenticated user may GET (the default `system:discovery` and
/// `system:public-info-viewer` ClusterRoles): not listed in the CSV.
fn discovery_path(path: &str) -> bool {
    matches!(path, "/api" | "/apis" | "/version" | "/version/")
        || path.starts_with("/api/")
        || path.starts_with("/apis/")
}

fn csv_permissions() -> Permissions {
    let path = root().join("bundle/manifests").join(cma_bundle::CSV_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let csv: Value = serde_yaml::from_str(&text).unwrap();
    let rules = |key: &str| serde_json::from_value(csv["spec"]["install"]["spec"][key][0]["rules"].clone()).unwrap();
    Permissions { namespaced: rules("permissions"), cluster: rules("clusterPermissions") }
}

fn atoms_diff(expected: &Permissions, actual: &Permissions) -> String {
    let e: BTreeSet<String> = expected.atoms().iter().map(ToString::to_string).collect();
    let a: BTreeSet<String> = actual.atoms().iter().map(ToString::to_string).collect();
    let mut out = String::new();
    for x in e.difference(&a) {
        out.push_str(&format!("  missing: {x}\n"));
    }
    for x in a.difference(&e) {
        out.push_str(&format!("  extra:   {x}\n"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_exactly_what_the_operator_does() {
    logging();
    let (k8s, ocp, single, leader, default) = tokio::join!(
        kubernetes_all_namespaces(None),
        openshift_own_namespace(None),
        single_namespace(),
        leader_election(),
        create_default(),
    );
    let scenarios = [k8s, ocp, single, leader, default];

    let mut needs = Needs::default();
    for s in &scenarios {
        for (request, what) in &s.requests {
            needs.add(request.access(&s.watched), format!("{}: {what}", s.name));
        }
    }
    let render_needs = rbac::render_needs(cma_bundle::SUGGESTED_NAMESPACE).unwrap();
    needs.extend(&render_needs);
    let computed = Permissions::from_needs(&needs);

    // Discovery only touches what every authenticated user may read.
    for s in &scenarios {
        for path in &s.non_resource {
            assert!(discovery_path(path), "{}: non-resource request {path} is not discovery", s.name);
        }
    }

    for s in &scenarios {
        assert!(s.refused.is_empty(), "{}: refused {:#?}", s.name, s.refused);
    }

    // The policy holds.
    let violations = computed.policy_violations();
    assert!(violations.is_empty(), "{violations:#?}");

    // Every request of every scenario is allowed where OLM puts the permissions in that mode.
    for s in &scenarios {
        for (request, what) in &s.requests {
            assert!(
                computed.grants(&s.targets, request),
                "{}: {what} ({} {}/{}) is not granted",
                s.name,
                request.verb,
                request.group,
                request.resource
            );
        }
    }

    // The scenarios' writes to rendered kinds are to objects render produces, so the render-derived needs
    // (which cover options no scenario switched on) speak for every object the operator writes.
    let rendered: BTreeSet<(String, String, String)> = render_needs
        .accesses()
        .filter(|a| a.verb == "patch")
        .map(|a| (a.group.clone(), a.resource.clone(), a.name.clone().unwrap_or_default()))
        .collect();
    let rendered_kinds: BTreeSet<(String, String)> = rendered.iter().map(|(g, r, _)| (g.clone(), r.clone())).collect();
    for s in &scenarios {
        for (request, what) in &s.requests {
            let kind = (request.group.clone(), request.resource.clone());
            if matches!(request.verb.as_str(), "create" | "patch" | "delete") && rendered_kinds.contains(&kind) {
                let key = (request.group.clone(), request.resource.clone(), request.name.clone().unwrap_or_default());
                assert!(
                    rendered.contains(&key),
                    "{}: {what} writes an object render does not produce for the maximal specs; add a spec to rbac::maximal_specs",
                    s.name
                );
            }
        }
    }

    // Every grant is load-bearing: without it, something needed is refused.
    for atom in computed.atoms() {
        let smaller = computed.without(&atom);
        assert!(!smaller.missing(&needs).is_empty(), "{atom} is granted but nothing needs it");
    }

    // The shape a reviewer expects.
    let cluster_secret_writes = computed
        .atoms()
        .into_iter()
        .filter(|a| a.resource == "secrets" && !a.namespaced && !["get", "list", "watch"].contains(&a.verb.as_str()));
    assert_eq!(cluster_secret_writes.count(), 0);
    assert!(
        computed.atoms().iter().any(|a| !a.namespaced
            && a.resource == "rolebindings"
            && a.verb == "patch"
            && a.name.as_deref() == Some("keda-auth-reader")),
        "the kube-system RoleBinding is written by name"
    );

    // config/rbac and the committed CSV hold exactly these rules.
    let root = root();
    let files = cma_bundle::generate::rbac_files(&computed).unwrap();
    if std::env::var_os("UPDATE_BUNDLE").is_some() {
        for (path, text) in &files {
            std::fs::write(root.join(path), text).unwrap();
        }
        let generated = cma_bundle::generate::generate(&root).unwrap();
        generated.write(&root).unwrap();
    }
    for (path, text) in &files {
        let disk = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        assert!(
            disk == *text,
            "{} differs from the permissions the operator needs (UPDATE_BUNDLE=1 cargo test -p cma-tests --test suite rbac:: rewrites it):\n{}",
            path.display(),
            atoms_diff(&computed, &cma_bundle::generate::committed_permissions(&root).unwrap_or_default())
        );
    }
    let csv = csv_permissions();
    assert!(
        csv == computed,
        "the CSV's permissions differ from what the operator needs (regenerate the bundle):\n{}",
        atoms_diff(&computed, &csv)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_works_with_only_the_committed_permissions() {
    logging();
    let committed = cma_bundle::generate::committed_permissions(&root()).unwrap();
    // The scenarios wait for every step to take effect: under enforcement they finish only when nothing
    // the operator needs is refused.
    let (k8s, ocp) = tokio::join!(
        kubernetes_all_namespaces(Some(committed.clone())),
        openshift_own_namespace(Some(committed.clone())),
    );
    for o in [&k8s, &ocp] {
        assert!(!o.requests.is_empty(), "{}: no request recorded", o.name);
        assert!(o.refused.is_empty(), "{}: refused {:#?}", o.name, o.refused);
    }
}

#[tokio::test]
async fn taking_one_grant_away_breaks_the_install_with_a_clear_denial() {
    logging();
    let committed = cma_bundle::generate::committed_permissions(&root()).unwrap();
    let atom = committed
        .atoms()
        .into_iter()
        .find(|a| a.resource == "deployments" && a.verb == "patch" && a.name.as_deref() == Some("keda-operator"))
        .expect("the committed rules let the operator apply Deployment keda-operator");
    let fake = cluster(false);
    enforce(&fake, "operator", committed.without(&atom), all_namespaces());
    let operator = start(&fake, Options::default());
    fake.insert(&kedacontroller(NS, "keda", json!({}))).unwrap();
    eventually(WAIT, "Degraded names the refused Deployment", || {
        condition(&fake, NS, "keda", "Degraded").is_some_and(|c| c.0 == "True" && c.2.contains("keda-operator"))
    })
    .await;
    let refused = observe(&fake, &["operator"], "reduced", all_namespaces(), &[NS]).refused;
    assert!(refused.iter().any(|r| r.contains("/deployments/keda-operator")), "{refused:#?}");
    assert!(fake.get(&gvr::deployments(), NS, "keda-operator").is_none());
    operator.stop().await.unwrap();
}
