//! Least privilege, proven on the real authorizer: the operator's permissions (config/rbac and the CSV) are
//! exactly what it does, they suffice, and they cannot be turned into more.
//!
//! The real controller loop runs through the scenarios a cluster admin can cause (install on Kubernetes and on
//! OpenShift with monitoring, update, prune, drift repair, a KedaController in the wrong namespace, workload
//! identity, uninstall through the finalizer, leader election, `--create-default-kedacontroller`) against a
//! real kube-apiserver, and the API server's audit log records every request. Those requests, plus what the
//! API server demands for the objects render produces (`cma_bundle::rbac::render_needs`: apply may create,
//! prune deletes, the one RoleBinding needs the permissions it binds, owner-reference finalizers), are folded
//! into RBAC rules. The first test checks that every grant is needed, the policy holds (no wildcard, no
//! escalate/bind, no RBAC writes but the named kube-system binding, Secret writes by name) and config/rbac
//! and the CSV hold exactly these rules (`UPDATE_GOLDEN=1` rewrites them). The second runs the scenarios as
//! a ServiceAccount bound to exactly the committed rules: zero `forbidden` in the audit log. The third tries,
//! as that ServiceAccount, every way to read other Secrets or widen a permission: all refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use cma_bundle::rbac::{self, Needs, Permissions, Request, Targets};
use cma_testkit::cluster::{Apis, AuditEvent, AuditMark, kinds};
use cma_testkit::tls::{https_get, serving_certificate};
use cma_tests::*;
use serde_json::{Value, json};

const SUGGESTED: &str = cma_api::names::SUGGESTED_NAMESPACE;

/// What one scenario made the operator do.
struct Observed {
    name: &'static str,
    requests: Vec<(Request, String)>,
    non_resource: BTreeSet<String>,
    refused: Vec<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether each (group, plural) is namespaced, from the server's discovery (KEDA's external metrics group is
/// skipped: nothing serves it here, and discovering it waits for a timeout).
async fn scopes(env: &Env) -> BTreeMap<(String, String), bool> {
    let client = env.cluster.client();
    let mut out = BTreeMap::new();
    let core = client.list_core_api_resources("v1").await.unwrap_or_else(|e| panic!("discovery of v1: {e}"));
    for r in core.resources {
        out.insert((String::new(), r.name), r.namespaced);
    }
    let groups = client.list_api_groups().await.unwrap_or_else(|e| panic!("discovery: {e}"));
    for group in groups.groups.iter().filter(|g| g.name != cma_api::names::EXTERNAL_METRICS_GROUP) {
        let Some(version) = group.preferred_version.as_ref().or(group.versions.first()) else {
            continue;
        };
        let Ok(list) = client.list_api_group_resources(&version.group_version).await else {
            continue;
        };
        for r in list.resources {
            out.insert((group.name.clone(), r.name), r.namespaced);
        }
    }
    out
}

fn query_name(uri: &str) -> Option<String> {
    let query = uri.split_once('?')?.1;
    query.split('&').find_map(|p| {
        let selector = p.strip_prefix("fieldSelector=")?;
        let decoded = selector.replace("%3D", "=").replace("%2C", ",");
        decoded.split(',').find_map(|s| s.strip_prefix("metadata.name=")).map(String::from)
    })
}

/// The RBAC requests one audited request needs, with the test namespace written as the suggested one (the
/// committed rules name it): a server-side apply is a patch and, when the object is missing, a create of the
/// same name.
fn rbac_requests(e: &AuditEvent, ns: &str, scopes: &BTreeMap<(String, String), bool>) -> Vec<Request> {
    let canonical = |s: &str| if s == ns { SUGGESTED.to_string() } else { s.to_string() };
    let o = &e.object;
    let resource =
        if o.subresource.is_empty() { o.resource.clone() } else { format!("{}/{}", o.resource, o.subresource) };
    let namespaced = scopes.get(&(o.api_group.clone(), o.resource.clone())).copied().unwrap_or(!o.namespace.is_empty());
    let applies = e.verb == "patch" && e.uri.contains("fieldManager=");
    // A create by POST names its object only in the body, which the authorizer does not see (the audit log
    // records the name anyway): it is authorized without a name.
    let name = if e.verb == "create" || o.name.is_empty() { query_name(&e.uri) } else { Some(o.name.clone()) };
    let verbs: Vec<&str> = if applies { vec!["patch", "create"] } else { vec![e.verb.as_str()] };
    verbs
        .into_iter()
        .map(|verb| Request {
            group: o.api_group.clone(),
            resource: resource.clone(),
            namespaced,
            verb: verb.to_string(),
            namespace: (!o.namespace.is_empty()).then(|| canonical(&o.namespace)),
            name: name.as_deref().map(canonical),
        })
        .collect()
}

async fn observe(env: &Env, mark: AuditMark, agents: &[&str], name: &'static str) -> Observed {
    let scopes = scopes(env).await;
    let mut observed = Observed { name, requests: Vec::new(), non_resource: BTreeSet::new(), refused: Vec::new() };
    for e in env.cluster.audit().since(mark).into_iter().filter(|e| agents.iter().any(|a| e.user_agent.starts_with(a)))
    {
        if e.is_forbidden() {
            observed.refused.push(e.describe());
        }
        if e.object.resource.is_empty() {
            observed.non_resource.insert(e.uri.split('?').next().unwrap_or_default().to_string());
            continue;
        }
        for request in rbac_requests(&e, &env.ns, &scopes) {
            observed.requests.push((request, e.describe()));
        }
    }
    observed
}

async fn grant(env: &Env, permissions: &Permissions) {
    env.grant_operator(permissions).await;
}

fn options(identity: &str, env: &Env, enforced: bool) -> Options {
    Options {
        identity: identity.into(),
        watch_namespaces: vec![env.ns.clone()],
        service_account: enforced.then(|| (env.ns.clone(), OPERATOR_SA.to_string())),
        ..Options::default()
    }
}

async fn installed(env: &Env, operator: &Operator) {
    env.wait_installed().await;
    env.settle(operator).await;
}

async fn uninstalled(env: &Env, operator: &Operator) {
    env.cluster.delete(&kinds::KEDACONTROLLER, &env.ns, "keda").await;
    eventually(WAIT, "the KedaController is gone", async || env.get(&kinds::KEDACONTROLLER, "keda").await.is_none())
        .await;
    let left = env.managed_objects().await;
    assert!(left.is_empty(), "left behind: {left:#?}");
    env.settle(operator).await;
}

/// Deletes objects of every kind the operator restores, and waits for each.
async fn drift(env: &Env, operator: &Operator) {
    let ns = env.ns.as_str();
    for (kind, namespace, name) in [
        (kinds::DEPLOYMENT, ns, "keda-operator"),
        (kinds::ROLE_BINDING, "kube-system", "keda-auth-reader"),
        (kinds::API_SERVICE, "", "v1beta1.external.metrics.k8s.io"),
        (kinds::SECRET, ns, "kedaorg-certs"),
        (kinds::SERVICE, ns, "keda-operator"),
    ] {
        env.cluster.delete(&kind, namespace, name).await;
        eventually(WAIT, &format!("{} {name} is restored", kind.kind), async || {
            env.cluster.get(&kind, namespace, name).await.is_some_and(|o| o["metadata"]["deletionTimestamp"].is_null())
        })
        .await;
    }
    env.settle(operator).await;
}

/// Kubernetes: install the maximal spec, become ready, update (prune), drift, workload identity, a
/// KedaController elsewhere, uninstall.
async fn kubernetes(enforced: Option<&Permissions>) -> Observed {
    let env = env().await;
    if let Some(p) = enforced {
        grant(&env, p).await;
    }
    let elsewhere = env.cluster.namespace("elsewhere").await;
    let mark = env.cluster.audit().mark();
    let operator = env.start(options("rbac-k8s", &env, enforced.is_some())).await;
    let spec = json!({
        "operator": {"replicas": 2, "caConfigMaps": ["corp-ca"]},
        "metricsServer": {"replicas": 2, "auditConfig": {"policy": {"rules": [{"level": "Metadata"}]}, "logOutputVolumeClaim": "audit"}},
        "admissionWebhooks": {"replicas": 2},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/keda"}},
    });
    env.create_keda(spec).await;
    installed(&env, &operator).await;
    let _kubelet = env.kubelet();
    eventually(WAIT, "the components are ready", async || {
        env.keda().await["status"]["components"].as_array().is_some_and(|c| c.iter().all(|c| c["ready"] == true))
    })
    .await;
    env.update_spec(json!({"operator": {"logLevel": "debug"}, "networkPolicy": {"enabled": false}})).await;
    eventually(WAIT, "pruned", async || {
        env.cluster.list(&kinds::NETWORK_POLICY, &env.ns, "").await.is_empty()
            && env.get(&kinds::PDB, "keda-operator").await.is_none()
    })
    .await;
    env.settle(&operator).await;
    drift(&env, &operator).await;
    // The watch namespace excludes it, so nothing is seen there (OwnNamespace): no request either.
    env.create_kedacontroller(&elsewhere, "keda", json!({})).await;
    uninstalled(&env, &operator).await;
    operator.stop().await.unwrap();
    observe(&env, mark, &["cma-operator-test/rbac-k8s"], "kubernetes").await
}

/// OpenShift with monitoring (the OperatorHub default): service-ca certificates, the gRPC certificates, the
/// TLS profile, ServiceMonitors, the dashboard, the namespace label, a scrape of /metrics.
async fn openshift(enforced: Option<&Permissions>) -> Observed {
    let env = env_with(Apis::openshift_with_monitoring(), "openshift-keda").await;
    if let Some(p) = enforced {
        grant(&env, p).await;
    }
    let _ca = env.cluster.service_ca(&env.ns);
    let certificate = serving_certificate();
    let mark = env.cluster.audit().mark();
    let mut options = options("rbac-ocp", &env, enforced.is_some());
    options.metrics_cert_dir = Some(certificate.dir.path().to_path_buf());
    let operator = env.start(options).await;
    env.create_keda(json!({"metricsServer": {"replicas": 2}})).await;
    installed(&env, &operator).await;
    // The cluster Prometheus scrapes /metrics: the operator reviews its token and its access.
    let prometheus = env.cluster.namespace("openshift-monitoring").await;
    env.cluster
        .apply_as("cma-install", &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "prometheus-k8s", "namespace": prometheus}}))
        .await;
    env.cluster
        .apply_as("cma-install", &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": format!("metrics-reader-{prometheus}")},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
        }))
        .await;
    env.cluster
        .apply_as("cma-install", &json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": format!("metrics-reader-{prometheus}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("metrics-reader-{prometheus}")},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": prometheus}],
        }))
        .await;
    let token = bearer_token(&env, &prometheus, "prometheus-k8s").await;
    let header = format!("Authorization: Bearer {token}\r\n");
    eventually(WAIT, "/metrics answers the scraper", async || {
        https_get(operator.metrics_addr, &certificate.cert, rustls::DEFAULT_VERSIONS, "/metrics", &header)
            .await
            .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
    })
    .await;
    env.update_spec(json!({})).await;
    eventually(WAIT, "the PDB is pruned", async || env.get(&kinds::PDB, "keda-metrics-apiserver").await.is_none())
        .await;
    env.settle(&operator).await;
    drift(&env, &operator).await;
    uninstalled(&env, &operator).await;
    operator.stop().await.unwrap();
    observe(&env, mark, &["cma-operator-test/rbac-ocp"], "openshift").await
}

async fn bearer_token(env: &Env, namespace: &str, name: &str) -> String {
    let api: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(env.cluster.client(), namespace);
    let request = k8s_openapi::api::authentication::v1::TokenRequest {
        spec: k8s_openapi::api::authentication::v1::TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let response: k8s_openapi::api::authentication::v1::TokenRequest =
        api.create_subresource("token", name, &kube::api::PostParams::default(), &request).await.unwrap();
    response.status.unwrap().token
}

/// Two replicas with leader election: acquire, standby, release and takeover.
async fn leader_election(enforced: Option<&Permissions>) -> Observed {
    let env = env().await;
    if let Some(p) = enforced {
        grant(&env, p).await;
    }
    let mark = env.cluster.audit().mark();
    let a = env.start(Options { leader_elect: true, ..options("rbac-lease-a", &env, enforced.is_some()) }).await;
    eventually(WAIT, "a holds the Lease", async || {
        env.get(&kinds::LEASE, "cma-operator-leader")
            .await
            .is_some_and(|l| l["spec"]["holderIdentity"] == "rbac-lease-a")
    })
    .await;
    let b = env.start(Options { leader_elect: true, ..options("rbac-lease-b", &env, enforced.is_some()) }).await;
    env.create_keda(json!({})).await;
    installed(&env, &a).await;
    a.stop().await.unwrap();
    eventually(WAIT, "b holds the Lease", async || {
        env.get(&kinds::LEASE, "cma-operator-leader")
            .await
            .is_some_and(|l| l["spec"]["holderIdentity"] == "rbac-lease-b")
    })
    .await;
    env.settle(&b).await;
    b.stop().await.unwrap();
    observe(&env, mark, &["cma-operator-test/rbac-lease-"], "leader-election").await
}

/// A takeover of the Go operator's installation, then an adoption of a Helm release's KEDA elsewhere.
async fn takeover(enforced: Option<&Permissions>) -> Observed {
    let env = env().await;
    if let Some(p) = enforced {
        grant(&env, p).await;
    }
    super::takeover::go_operator_install(&env).await;
    let _kubelet = env.kubelet();
    let mark = env.cluster.audit().mark();
    let operator = env.start(options("rbac-takeover", &env, enforced.is_some())).await;
    env.wait_installed().await;
    eventually(WAIT, "taken over", async || env.event_reasons("keda").await.contains(&"TakenOver".to_string())).await;
    env.settle(&operator).await;
    uninstalled(&env, &operator).await;

    // A Helm release's KEDA in another namespace, adopted on request.
    let helm_ns = env.cluster.namespace("keda-helm").await;
    for object in super::takeover::helm_install(&helm_ns) {
        env.cluster.try_create_as("helm", &object).await.unwrap();
    }
    let mut keda = kedacontroller(&env.ns, "keda", json!({}));
    keda["metadata"]["annotations"] = json!({"cma.keda.sh/adopt-existing-installation": "true"});
    env.cluster.create(&keda).await;
    eventually(WAIT, "the Helm release's Deployments are retired", async || {
        env.cluster.list(&kinds::DEPLOYMENT, &helm_ns, "").await.is_empty()
    })
    .await;
    env.settle(&operator).await;
    uninstalled(&env, &operator).await;
    operator.stop().await.unwrap();
    observe(&env, mark, &["cma-operator-test/rbac-takeover"], "takeover").await
}

/// `--create-default-kedacontroller`.
async fn create_default(enforced: Option<&Permissions>) -> Observed {
    let env = env().await;
    if let Some(p) = enforced {
        grant(&env, p).await;
    }
    let mark = env.cluster.audit().mark();
    let operator =
        env.start(Options { create_default: true, ..options("rbac-default", &env, enforced.is_some()) }).await;
    installed(&env, &operator).await;
    operator.stop().await.unwrap();
    observe(&env, mark, &["cma-operator-test/rbac-default"], "create-default-kedacontroller").await
}

/// Paths every authenticated user may GET (the default `system:discovery` and `system:public-info-viewer`
/// ClusterRoles): not listed in the CSV.
fn discovery_path(path: &str) -> bool {
    matches!(path, "/api" | "/apis" | "/version" | "/version/")
        || path.starts_with("/api/")
        || path.starts_with("/apis/")
}

/// The operator's own entries of the committed CSV.
fn csv_permissions() -> Permissions {
    let path = root().join("bundle/manifests").join(cma_bundle::CSV_FILE);
    let csv: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rules = |key: &str| {
        let entry = csv["spec"]["install"]["spec"][key]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["serviceAccountName"] == OPERATOR_SA)
            .unwrap_or_else(|| panic!("no {key} entry for {OPERATOR_SA}"))
            .clone();
        serde_json::from_value(entry["rules"].clone()).unwrap()
    };
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

fn own_namespace() -> Targets {
    Targets::Namespaces(BTreeSet::from([SUGGESTED.to_string()]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_exactly_what_the_operator_does() {
    let (k8s, ocp) = tokio::join!(kubernetes(None), openshift(None));
    let (leader, default) = tokio::join!(leader_election(None), create_default(None));
    let taken = takeover(None).await;
    let scenarios = [k8s, ocp, leader, default, taken];
    let watched = BTreeSet::from([SUGGESTED.to_string()]);

    let mut needs = Needs::default();
    for s in &scenarios {
        for (request, what) in &s.requests {
            needs.add(request.access(&watched), format!("{}: {what}", s.name));
        }
    }
    let render_needs = rbac::render_needs(SUGGESTED).unwrap();
    needs.extend(&render_needs);
    let computed = Permissions::from_needs(&needs);

    for s in &scenarios {
        for path in &s.non_resource {
            assert!(discovery_path(path), "{}: non-resource request {path} is not discovery", s.name);
        }
        assert!(s.refused.is_empty(), "{}: refused {:#?}", s.name, s.refused);
    }
    let violations = computed.policy_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    for s in &scenarios {
        for (request, what) in &s.requests {
            assert!(computed.grants(&own_namespace(), request), "{}: {what} is not granted", s.name);
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
    let retired = cma_operator::reconcile::takeover::deleted_at_takeover();
    for s in &scenarios {
        for (request, what) in &s.requests {
            let kind = (request.group.clone(), request.resource.clone());
            let takeover = request.verb == "delete"
                && retired
                    .iter()
                    .any(|(plural, name)| *plural == request.resource && request.name.as_deref() == Some(*name));
            if matches!(request.verb.as_str(), "create" | "patch" | "delete")
                && rendered_kinds.contains(&kind)
                && !takeover
            {
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
        assert!(!computed.without(&atom).missing(&needs).is_empty(), "{atom} is granted but nothing needs it");
    }

    // config/rbac and the committed CSV hold exactly these rules.
    let root = root();
    let files = cma_bundle::generate::rbac_files(&computed).unwrap();
    if cma_testkit::golden::updating() {
        for (path, text) in &files {
            std::fs::write(root.join(path), text).unwrap();
        }
        cma_bundle::generate::generate(&root).unwrap().write(&root).unwrap();
    }
    for (path, text) in &files {
        let disk = std::fs::read_to_string(root.join(path)).unwrap_or_default();
        assert!(
            disk == *text,
            "{} differs from the permissions the operator needs (bash hack/generate.sh rewrites it):\n{}",
            path.display(),
            atoms_diff(&computed, &cma_bundle::generate::committed_permissions(&root).unwrap_or_default())
        );
    }
    let csv = csv_permissions();
    assert!(csv == computed, "the CSV's permissions differ (regenerate the bundle):\n{}", atoms_diff(&computed, &csv));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_works_with_only_the_committed_permissions() {
    let committed = cma_bundle::generate::committed_permissions(&root()).unwrap();
    // The scenarios wait for every step to take effect: they finish only when nothing the operator needs is
    // refused; the audit log must then show no refusal at all.
    let (k8s, ocp) = tokio::join!(kubernetes(Some(&committed)), openshift(Some(&committed)));
    let (leader, default) = tokio::join!(leader_election(Some(&committed)), create_default(Some(&committed)));
    let taken = takeover(Some(&committed)).await;
    for o in [&k8s, &ocp, &leader, &default, &taken] {
        assert!(!o.requests.is_empty(), "{}: no request recorded", o.name);
        assert!(o.refused.is_empty(), "{}: refused {:#?}", o.name, o.refused);
    }
}

#[tokio::test]
async fn the_operator_cannot_read_other_secrets_or_widen_any_permission() {
    let env = env().await;
    let committed = cma_bundle::generate::committed_permissions(&root()).unwrap();
    grant(&env, &committed).await;
    env.cluster
        .apply_as("cma-install", &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "database", "namespace": env.ns}, "stringData": {"password": "x"}}))
        .await;
    let client = env.cluster.service_account_client(&env.ns, OPERATOR_SA, "rbac-attacker", None).await;
    let ns = env.ns.clone();
    let dynamic =
        |kind: &cma_testkit::cluster::Kind, namespace: &str| cma_testkit::cluster::api(&client, kind, namespace);
    let forbidden = |result: Result<kube::api::DynamicObject, kube::Error>, what: &str| match result {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403, got {:?}", other.map(|o| o.metadata.name)),
    };
    let obj = |v: Value| serde_json::from_value::<kube::api::DynamicObject>(v).unwrap();
    let post = kube::api::PostParams::default();

    forbidden(dynamic(&kinds::SECRET, &ns).get("database").await, "read another Secret");
    let list = dynamic(&kinds::SECRET, &ns).list(&Default::default()).await;
    assert!(
        matches!(list, Err(kube::Error::Api(ref s)) if s.code == 403),
        "list Secrets: {:?}",
        list.map(|l| l.items.len())
    );
    forbidden(dynamic(&kinds::SECRET, "kube-system").get("bootstrap-token").await, "read a kube-system Secret");

    let everything = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]);
    forbidden(
        dynamic(&kinds::CLUSTER_ROLE, "")
            .create(&post, &obj(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "keda-operator-x"}, "rules": everything})))
            .await,
        "create a ClusterRole",
    );
    let widen =
        json!([{"op": "add", "path": "/rules/-", "value": {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}}]);
    let widen: json_patch::Patch = serde_json::from_value(widen).unwrap();
    forbidden(
        dynamic(&kinds::CLUSTER_ROLE, "")
            .patch("cma-keda-operator", &Default::default(), &kube::api::Patch::<()>::Json(widen.clone()))
            .await,
        "widen KEDA's ClusterRole",
    );
    forbidden(
        dynamic(&kinds::ROLE, &ns)
            .patch("cma-keda-operator", &Default::default(), &kube::api::Patch::<()>::Json(widen))
            .await,
        "widen KEDA's Role",
    );
    let admin_binding = |kind: &str, name: &str, namespace: Option<&str>| {
        let mut meta = json!({"name": name});
        if let Some(namespace) = namespace {
            meta["namespace"] = json!(namespace);
        }
        obj(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": ns}],
        }))
    };
    forbidden(
        dynamic(&kinds::CLUSTER_ROLE_BINDING, "")
            .create(&post, &admin_binding("ClusterRoleBinding", "keda-operator", None))
            .await,
        "bind cluster-admin cluster-wide",
    );
    // The one binding name it may write, in its own namespace, to cluster-admin: refused by the API server's
    // escalation check, since the operator does not hold what cluster-admin grants and has no bind.
    forbidden(
        dynamic(&kinds::ROLE_BINDING, &ns)
            .create(&post, &admin_binding("RoleBinding", "keda-auth-reader", Some(&ns)))
            .await,
        "bind cluster-admin in its namespace under the name it may write",
    );
    forbidden(
        dynamic(&kinds::ROLE_BINDING, "kube-system")
            .create(&post, &admin_binding("RoleBinding", "keda-auth-reader", Some("kube-system")))
            .await,
        "bind cluster-admin in kube-system under the name it may write",
    );
    // Workloads only under KEDA's names, in its namespace.
    let deployment = |namespace: &str, name: &str| {
        obj(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                     "spec": {"serviceAccountName": "default", "containers": [{"name": "c", "image": "x"}]}}},
        }))
    };
    forbidden(
        dynamic(&kinds::DEPLOYMENT, &ns).create(&post, &deployment(&ns, "miner")).await,
        "create another Deployment",
    );
    forbidden(
        dynamic(&kinds::DEPLOYMENT, "kube-system").create(&post, &deployment("kube-system", "keda-operator")).await,
        "create a KEDA-named Deployment in kube-system",
    );
    forbidden(dynamic(&kinds::POD, &ns).create(&post, &obj(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns}, "spec": {"containers": [{"name": "c", "image": "x"}]}}))).await, "create a Pod");
}

#[tokio::test]
async fn taking_one_grant_away_breaks_the_install_with_a_clear_denial() {
    let env = env().await;
    let committed = cma_bundle::generate::committed_permissions(&root()).unwrap();
    let atom = committed
        .atoms()
        .into_iter()
        .find(|a| a.resource == "deployments" && a.verb == "patch" && a.name.as_deref() == Some("keda-operator"))
        .expect("the committed rules let the operator apply Deployment keda-operator");
    grant(&env, &committed.without(&atom)).await;
    let mark = env.cluster.audit().mark();
    let operator = env.start(options("rbac-reduced", &env, true)).await;
    env.create_keda(json!({})).await;
    eventually(WAIT, "Degraded names the refused Deployment", async || {
        env.condition("Degraded")
            .await
            .is_some_and(|c| c.0 == "True" && c.2.contains("keda-operator") && c.2.contains("forbidden"))
    })
    .await;
    // The status and the event give the API server's message once, never a Rust debug dump.
    let (_, _, message) = env.condition("Degraded").await.unwrap();
    assert!(
        message.contains("deployments.apps \"keda-operator\" is forbidden: User \"system:serviceaccount:"),
        "{message}"
    );
    let notes: Vec<String> = env.events_about("keda").await.into_iter().map(|(_, note)| note).collect();
    assert!(notes.iter().any(|n| n.contains("is forbidden")), "{notes:#?}");
    for text in notes.iter().chain([&message]) {
        assert!(!text.contains("Status {") && !text.contains("ApiError"), "{text}");
    }
    let refused = observe(&env, mark, &["cma-operator-test/rbac-reduced"], "reduced").await.refused;
    assert!(refused.iter().any(|r| r.contains("deployments") && r.contains("keda-operator")), "{refused:#?}");
    assert!(env.get(&kinds::DEPLOYMENT, "keda-operator").await.is_none());
    operator.stop().await.unwrap();
}
