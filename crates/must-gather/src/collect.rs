//! What is collected: the installations (operator namespaces) found from OLM and the KedaControllers, then
//! everything support needs, requested concurrently. Nothing is written here; see [`crate::gather`].

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use serde_json::Value;

use crate::fetch::{FetchError, Fetcher};
use crate::layout;
use crate::options::Options;
use crate::output::{self, Document, Output};

/// A resource type addressed by group, version and plural.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group (`""` for core).
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Plural resource name.
    pub resource: &'static str,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

const fn ns_kind(group: &'static str, version: &'static str, resource: &'static str) -> Kind {
    Kind { group, version, resource, namespaced: true }
}

const fn cluster_kind(group: &'static str, version: &'static str, resource: &'static str) -> Kind {
    Kind { group, version, resource, namespaced: false }
}

impl Kind {
    /// The collection URL, in one namespace or across all of them.
    pub fn path(&self, ns: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match ns {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.resource),
            _ => format!("{base}/{}", self.resource),
        }
    }

    /// The URL of one object.
    pub fn object_path(&self, ns: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.path(ns))
    }

    /// `resource.group` (`resource` for core), as in RBAC messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.resource.to_string() } else { format!("{}.{}", self.resource, self.group) }
    }
}

/// Pods.
pub const PODS: Kind = ns_kind("", "v1", "pods");
/// Deployments.
pub const DEPLOYMENTS: Kind = ns_kind("apps", "v1", "deployments");

/// What is listed in every operator namespace, written as `namespaces/<ns>/<group>/<resource>.yaml`.
pub const NAMESPACE_KINDS: &[Kind] = &[
    DEPLOYMENTS,
    ns_kind("apps", "v1", "replicasets"),
    PODS,
    ns_kind("", "v1", "services"),
    ns_kind("", "v1", "endpoints"),
    ns_kind("discovery.k8s.io", "v1", "endpointslices"),
    ns_kind("", "v1", "configmaps"),
    ns_kind("", "v1", "secrets"),
    ns_kind("", "v1", "serviceaccounts"),
    ns_kind("rbac.authorization.k8s.io", "v1", "roles"),
    ns_kind("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ns_kind("networking.k8s.io", "v1", "networkpolicies"),
    ns_kind("policy", "v1", "poddisruptionbudgets"),
    ns_kind("", "v1", "persistentvolumeclaims"),
    ns_kind("", "v1", "events"),
    ns_kind("monitoring.coreos.com", "v1", "servicemonitors"),
    ns_kind("monitoring.coreos.com", "v1", "podmonitors"),
    ns_kind("monitoring.coreos.com", "v1", "prometheusrules"),
    ns_kind("coordination.k8s.io", "v1", "leases"),
    ns_kind("", "v1", "resourcequotas"),
    ns_kind("", "v1", "limitranges"),
];

/// KedaControllers (our API, in the operator namespaces).
pub const KEDACONTROLLERS: Kind = ns_kind("keda.sh", "v1alpha1", "kedacontrollers");
/// ScaledObjects.
pub const SCALEDOBJECTS: Kind = ns_kind("keda.sh", "v1alpha1", "scaledobjects");

/// KEDA's resources, listed in all namespaces and written one file per object.
pub const KEDA_KINDS: &[Kind] = &[
    SCALEDOBJECTS,
    ns_kind("keda.sh", "v1alpha1", "scaledjobs"),
    ns_kind("keda.sh", "v1alpha1", "triggerauthentications"),
    cluster_kind("keda.sh", "v1alpha1", "clustertriggerauthentications"),
    ns_kind("eventing.keda.sh", "v1alpha1", "cloudeventsources"),
    cluster_kind("eventing.keda.sh", "v1alpha1", "clustercloudeventsources"),
];

/// The CustomResourceDefinitions of the KEDA API (the Go operator's must-gather leaves them out).
pub const KEDA_CRDS: &[&str] = &[
    "kedacontrollers.keda.sh",
    "scaledobjects.keda.sh",
    "scaledjobs.keda.sh",
    "triggerauthentications.keda.sh",
    "clustertriggerauthentications.keda.sh",
    "cloudeventsources.eventing.keda.sh",
    "clustercloudeventsources.eventing.keda.sh",
];

/// CRDs.
pub const CRDS: Kind = cluster_kind("apiextensions.k8s.io", "v1", "customresourcedefinitions");
/// APIServices.
pub const APISERVICES: Kind = cluster_kind("apiregistration.k8s.io", "v1", "apiservices");
/// The APIService KEDA's metrics server registers.
pub const EXTERNAL_METRICS_APISERVICE: &str = "v1beta1.external.metrics.k8s.io";
/// The API KEDA's metrics server serves, requested as is.
pub const EXTERNAL_METRICS_PATH: &str = "/apis/external.metrics.k8s.io/v1beta1";
/// Where the answer of [`EXTERNAL_METRICS_PATH`] is written.
pub const EXTERNAL_METRICS_FILE: &str = "apis/external.metrics.k8s.io/v1beta1.json";
/// Where the error of [`EXTERNAL_METRICS_PATH`] is written instead (with the APIService's condition).
pub const EXTERNAL_METRICS_ERROR_FILE: &str = "apis/external.metrics.k8s.io/v1beta1.error.txt";
/// Time limit of [`EXTERNAL_METRICS_PATH`] when the APIService is not `Available`: the API server's own
/// answer (usually `503` at once, or why it cannot reach the metrics server) is still worth recording, the
/// full per-request limit is not worth waiting.
pub const UNAVAILABLE_API_TIMEOUT: Duration = Duration::from_secs(5);
/// ValidatingWebhookConfigurations.
pub const VWCS: Kind = cluster_kind("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations");
/// ClusterRoles.
pub const CLUSTERROLES: Kind = cluster_kind("rbac.authorization.k8s.io", "v1", "clusterroles");
/// ClusterRoleBindings.
pub const CLUSTERROLEBINDINGS: Kind = cluster_kind("rbac.authorization.k8s.io", "v1", "clusterrolebindings");
/// RoleBindings.
pub const ROLEBINDINGS: Kind = ns_kind("rbac.authorization.k8s.io", "v1", "rolebindings");
/// HorizontalPodAutoscalers.
pub const HPAS: Kind = ns_kind("autoscaling", "v2", "horizontalpodautoscalers");
/// Jobs.
pub const JOBS: Kind = ns_kind("batch", "v1", "jobs");
/// Core Events.
pub const EVENTS: Kind = ns_kind("", "v1", "events");
/// Events about KEDA's resources and KEDA's HPAs, in every namespace (server-side field selectors).
pub const KEDA_EVENT_SELECTORS: &[&str] = &[
    "involvedObject.apiVersion=keda.sh/v1alpha1",
    "involvedObject.apiVersion=eventing.keda.sh/v1alpha1",
    "involvedObject.kind=HorizontalPodAutoscaler",
];
/// Namespaces.
pub const NAMESPACES: Kind = cluster_kind("", "v1", "namespaces");
/// OLM Subscriptions.
pub const SUBSCRIPTIONS: Kind = ns_kind("operators.coreos.com", "v1alpha1", "subscriptions");
/// OLM ClusterServiceVersions.
pub const CSVS: Kind = ns_kind("operators.coreos.com", "v1alpha1", "clusterserviceversions");
/// OLM InstallPlans.
pub const INSTALLPLANS: Kind = ns_kind("operators.coreos.com", "v1alpha1", "installplans");
/// OLM OperatorGroups.
pub const OPERATORGROUPS: Kind = ns_kind("operators.coreos.com", "v1", "operatorgroups");

/// ClusterRoles and bindings KEDA needs, by name (found even when their labels were edited away).
pub const KEDA_CLUSTER_RBAC: &[&str] = &[
    "keda-operator",
    "keda-external-metrics-reader",
    "keda-hpa-controller-external-metrics",
    "keda-system-auth-delegator",
];
/// The RoleBinding in kube-system that lets the metrics server read the authentication configuration.
pub const KUBE_SYSTEM_ROLEBINDING: &str = "keda-auth-reader";
/// The webhook configuration KEDA's admission webhooks register.
pub const KEDA_WEBHOOK: &str = "keda-admission";
/// Name prefix of the HPAs KEDA creates for ScaledObjects.
pub const KEDA_HPA_PREFIX: &str = "keda-hpa-";
/// Label KEDA puts on the HPAs it creates.
pub const SCALEDOBJECT_LABEL: &str = "scaledobject.keda.sh/name";
/// Label KEDA puts on the Jobs of a ScaledJob.
pub const SCALEDJOB_LABEL: &str = "scaledjob.keda.sh/name";

/// The installations found: operator namespaces and the OLM objects of our package.
#[derive(Debug, Clone, Default)]
pub struct Installations {
    /// Operator namespaces, sorted.
    pub namespaces: Vec<String>,
    /// Subscriptions of the package.
    pub subscriptions: Vec<Value>,
    /// CSVs of the package (OLM's copies into other namespaces excluded).
    pub csvs: Vec<Value>,
    /// KedaControllers in all namespaces (`None` when they could not be listed).
    pub kedacontrollers: Option<Vec<Value>>,
    /// How the namespaces were found, for the debug log.
    pub reasons: Vec<String>,
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn name(v: &Value) -> &str {
    str_at(v, "/metadata/name")
}

fn namespace(v: &Value) -> &str {
    str_at(v, "/metadata/namespace")
}

fn label<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/labels").and_then(|l| l.get(key)).and_then(Value::as_str)
}

/// Whether a CSV name belongs to the package (`<package>.v<version>`).
pub fn is_package_csv(csv_name: &str, package: &str) -> bool {
    csv_name.strip_prefix(package).is_some_and(|rest| rest.starts_with(".v") || rest.starts_with('.'))
}

/// The items of a list; `Some(empty)` when the resource type is not served (404: e.g. OLM or the CRD is not
/// installed, a finding rather than a failure), `None` when the list failed.
fn list_items(result: Result<Value, FetchError>) -> Option<Vec<Value>> {
    match result {
        Ok(mut list) => {
            output::normalise_list(&mut list);
            Some(output::items(&list).to_vec())
        }
        Err(e) if e.is_not_found() => Some(Vec::new()),
        Err(_) => None,
    }
}

/// Finds the operator namespaces: Subscriptions and CSVs of the package, KedaControllers, the namespaces
/// given; the default namespace when nothing is found.
pub async fn find_installations(fetcher: &Fetcher, opts: &Options) -> Installations {
    let package = opts.package.as_str();
    let not_copied = vec![("labelSelector", "!olm.copiedFrom".to_string())];
    let (subs_path, csvs_path, kcs_path) = (SUBSCRIPTIONS.path(None), CSVS.path(None), KEDACONTROLLERS.path(None));
    let (subs, csvs, kcs) = futures::join!(
        fetcher.list(&subs_path, &[]),
        fetcher.list(&csvs_path, &not_copied),
        fetcher.list(&kcs_path, &[]),
    );
    let subscriptions: Vec<Value> =
        list_items(subs).unwrap_or_default().into_iter().filter(|s| str_at(s, "/spec/name") == package).collect();
    // CSVs of the package by name, and any CSV our Subscriptions name (whatever its name looks like).
    let referenced: BTreeSet<(String, String)> = subscriptions
        .iter()
        .flat_map(|s| {
            ["/status/installedCSV", "/status/currentCSV"].map(|p| (namespace(s).to_string(), str_at(s, p).to_string()))
        })
        .collect();
    let csvs: Vec<Value> = list_items(csvs)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            label(c, "olm.copiedFrom").is_none()
                && (is_package_csv(name(c), package)
                    || referenced.contains(&(namespace(c).to_string(), name(c).to_string())))
        })
        .collect();
    let kedacontrollers = list_items(kcs);
    let mut namespaces = BTreeSet::new();
    let mut reasons = Vec::new();
    for s in &subscriptions {
        namespaces.insert(namespace(s).to_string());
        reasons.push(format!("Subscription {}/{}", namespace(s), name(s)));
    }
    for c in &csvs {
        namespaces.insert(namespace(c).to_string());
        reasons.push(format!("ClusterServiceVersion {}/{}", namespace(c), name(c)));
    }
    for k in kedacontrollers.iter().flatten() {
        namespaces.insert(namespace(k).to_string());
        reasons.push(format!("KedaController {}/{}", namespace(k), name(k)));
    }
    for ns in &opts.namespaces {
        namespaces.insert(ns.clone());
        reasons.push(format!("--namespace {ns}"));
    }
    namespaces.remove("");
    if namespaces.is_empty() {
        namespaces.insert(opts.default_namespace.clone());
        reasons.push(format!("no installation found, default namespace {}", opts.default_namespace));
    }
    Installations { namespaces: namespaces.into_iter().collect(), subscriptions, csvs, kedacontrollers, reasons }
}

/// A container whose logs are streamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogJob {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// The previous (terminated) instance's log.
    pub previous: bool,
}

/// The logs to fetch for a pod: every init and regular container, the previous instance when it restarted.
pub fn log_jobs(pod: &Value) -> Vec<LogJob> {
    let ns = namespace(pod).to_string();
    let pod_name = name(pod).to_string();
    let restarted = |container: &str| {
        ["/status/containerStatuses", "/status/initContainerStatuses"]
            .iter()
            .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
            .flatten()
            .filter(|s| s.get("name").and_then(Value::as_str) == Some(container))
            .any(|s| {
                s.get("restartCount").and_then(Value::as_i64).unwrap_or(0) > 0
                    || s.pointer("/lastState/terminated").is_some()
            })
    };
    let mut jobs = Vec::new();
    for field in ["/spec/initContainers", "/spec/containers"] {
        for c in pod.pointer(field).and_then(Value::as_array).into_iter().flatten() {
            let Some(container) = c.get("name").and_then(Value::as_str) else {
                continue;
            };
            for previous in [false, true] {
                if previous && !restarted(container) {
                    continue;
                }
                jobs.push(LogJob {
                    namespace: ns.clone(),
                    pod: pod_name.clone(),
                    container: container.to_string(),
                    previous,
                });
            }
        }
    }
    jobs
}

/// Everything collected (objects in memory, logs still to stream).
#[derive(Debug, Default)]
pub struct Collected {
    /// Files to write.
    pub outputs: Vec<Output>,
    /// Logs to stream.
    pub logs: Vec<LogJob>,
    /// Essential requests that failed (what, why).
    pub missing_essentials: Vec<(String, String)>,
}

impl Collected {
    fn merge(&mut self, other: Collected) {
        self.outputs.extend(other.outputs);
        self.logs.extend(other.logs);
        self.missing_essentials.extend(other.missing_essentials);
    }

    fn essential_failed(what: String, e: &FetchError) -> Self {
        Self { missing_essentials: vec![(what, e.to_string())], ..Self::default() }
    }
}

/// Path of one object of a kind (namespaced or cluster-scoped).
pub fn object_file(kind: &Kind, obj: &Value) -> String {
    let ns = namespace(obj);
    if kind.namespaced && !ns.is_empty() {
        layout::namespaced_object(ns, kind.group, kind.resource, name(obj))
    } else {
        layout::cluster_object(kind.group, kind.resource, name(obj))
    }
}

fn per_object(kind: &Kind, objects: impl IntoIterator<Item = Value>) -> Vec<Output> {
    objects.into_iter().map(|o| Output::object(object_file(kind, &o), o)).collect()
}

type Task<'a> = BoxFuture<'a, Collected>;

/// Collects everything for the installations found, `opts.concurrency` requests at a time.
pub async fn collect(fetcher: &Fetcher, opts: &Options, inst: &Installations) -> Collected {
    let mut tasks: Vec<Task<'_>> = Vec::new();
    let ops: BTreeSet<String> = inst.namespaces.iter().cloned().collect();
    for ns in &inst.namespaces {
        tasks.push(namespace_object(fetcher, ns.clone()).boxed());
        for kind in NAMESPACE_KINDS {
            tasks.push(namespace_list(fetcher, ns.clone(), *kind).boxed());
        }
        tasks.push(install_plans(fetcher, ns.clone(), inst, &opts.package).boxed());
        tasks.push(filtered(fetcher, OPERATORGROUPS, Some(ns.clone()), Vec::new(), |_| true).boxed());
    }
    for kind in KEDA_KINDS {
        let essential = *kind == SCALEDOBJECTS;
        tasks.push(keda_list(fetcher, *kind, essential).boxed());
    }
    for crd in KEDA_CRDS {
        tasks.push(single(fetcher, CRDS, None, (*crd).to_string()).boxed());
    }
    tasks.push(external_metrics(fetcher).boxed());
    let op_ns = ops.clone();
    tasks.push(
        filtered(fetcher, VWCS, None, Vec::new(), move |w| {
            ours(w) || name(w) == KEDA_WEBHOOK || webhook_targets(w, &op_ns)
        })
        .boxed(),
    );
    tasks.push(cluster_rbac(fetcher, ops.clone(), &opts.package).boxed());
    let op_ns = ops.clone();
    tasks.push(
        filtered(fetcher, ROLEBINDINGS, Some("kube-system".into()), Vec::new(), move |rb| {
            ours(rb) || name(rb) == KUBE_SYSTEM_ROLEBINDING || binds_operator_sa(rb, &op_ns)
        })
        .boxed(),
    );
    tasks.push(
        filtered(fetcher, HPAS, None, Vec::new(), |h| {
            name(h).starts_with(KEDA_HPA_PREFIX)
                || label(h, SCALEDOBJECT_LABEL).is_some()
                || owned_by(h, "ScaledObject")
        })
        .boxed(),
    );
    tasks.push(keda_events(fetcher, ops.clone()).boxed());
    tasks.push(filtered(fetcher, JOBS, None, vec![("labelSelector", SCALEDJOB_LABEL.to_string())], |_| true).boxed());

    // The OLM objects and KedaControllers found while looking for the installations.
    let mut all = Collected::default();
    all.outputs.extend(per_object(&SUBSCRIPTIONS, inst.subscriptions.clone()));
    all.outputs.extend(per_object(&CSVS, inst.csvs.clone()));
    match &inst.kedacontrollers {
        Some(kcs) => all.outputs.extend(per_object(&KEDACONTROLLERS, kcs.clone())),
        None => all
            .missing_essentials
            .push((format!("list {}", KEDACONTROLLERS.qualified()), "failed (see gather-debug.log)".into())),
    }

    let mut results = futures::stream::iter(tasks).buffer_unordered(opts.concurrency.max(1));
    while let Some(part) = results.next().await {
        all.merge(part);
    }
    all
}

fn ours(obj: &Value) -> bool {
    label(obj, cma_api::labels::MANAGED_BY) == Some(cma_api::labels::MANAGED_BY_VALUE)
}

fn owned_by(obj: &Value, kind: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r.get("kind").and_then(Value::as_str) == Some(kind)))
}

fn webhook_targets(vwc: &Value, namespaces: &BTreeSet<String>) -> bool {
    vwc.get("webhooks")
        .and_then(Value::as_array)
        .is_some_and(|hooks| hooks.iter().any(|h| namespaces.contains(str_at(h, "/clientConfig/service/namespace"))))
}

fn binds_operator_sa(binding: &Value, namespaces: &BTreeSet<String>) -> bool {
    binding.get("subjects").and_then(Value::as_array).is_some_and(|subjects| {
        subjects.iter().any(|s| {
            s.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                && namespaces.contains(str_at(s, "/namespace"))
        })
    })
}

async fn namespace_object(fetcher: &Fetcher, ns: String) -> Collected {
    match fetcher.get(&NAMESPACES.object_path(None, &ns)).await {
        Ok(mut obj) => {
            if let Some(map) = obj.as_object_mut() {
                map.entry("apiVersion").or_insert_with(|| "v1".into());
                map.entry("kind").or_insert_with(|| "Namespace".into());
            }
            Collected { outputs: vec![Output::object(layout::namespace_object(&ns), obj)], ..Collected::default() }
        }
        Err(_) => Collected::default(),
    }
}

async fn namespace_list(fetcher: &Fetcher, ns: String, kind: Kind) -> Collected {
    let essential = kind == PODS || kind == DEPLOYMENTS;
    let mut list = match fetcher.list(&kind.path(Some(&ns)), &[]).await {
        Ok(list) => list,
        Err(e) if essential => {
            return Collected::essential_failed(format!("list {} in {ns}", kind.qualified()), &e);
        }
        Err(_) => return Collected::default(),
    };
    output::normalise_list(&mut list);
    let mut out = Collected::default();
    if kind == PODS {
        for pod in output::items(&list) {
            out.outputs.push(Output::object(layout::pod_object(&ns, name(pod)), pod.clone()));
            out.logs.extend(log_jobs(pod));
        }
    }
    out.outputs
        .push(Output { path: layout::namespace_list(&ns, kind.group, kind.resource), doc: Document::List(list) });
    out
}

async fn keda_list(fetcher: &Fetcher, kind: Kind, essential: bool) -> Collected {
    match fetcher.list(&kind.path(None), &[]).await {
        Ok(mut list) => {
            output::normalise_list(&mut list);
            Collected { outputs: per_object(&kind, output::items(&list).to_vec()), ..Collected::default() }
        }
        // 404: the CRD is not installed, which is itself what support needs to see (the CRDs are collected).
        Err(e) if essential && !e.is_not_found() => {
            Collected::essential_failed(format!("list {} in all namespaces", kind.qualified()), &e)
        }
        Err(_) => Collected::default(),
    }
}

async fn single(fetcher: &Fetcher, kind: Kind, ns: Option<String>, obj_name: String) -> Collected {
    match fetcher.get(&kind.object_path(ns.as_deref(), &obj_name)).await {
        Ok(obj) => Collected { outputs: per_object(&kind, [obj]), ..Collected::default() },
        Err(_) => Collected::default(),
    }
}

async fn filtered<F>(
    fetcher: &Fetcher,
    kind: Kind,
    ns: Option<String>,
    query: Vec<(&'static str, String)>,
    keep: F,
) -> Collected
where
    F: Fn(&Value) -> bool + Send,
{
    match fetcher.list(&kind.path(ns.as_deref()), &query).await {
        Ok(mut list) => {
            output::normalise_list(&mut list);
            let kept: Vec<Value> = output::items(&list).iter().filter(|o| keep(o)).cloned().collect();
            Collected { outputs: per_object(&kind, kept), ..Collected::default() }
        }
        Err(_) => Collected::default(),
    }
}

/// Events about KEDA's resources and the HPAs KEDA created (`FailedGetExternalMetric`, `KEDAScalerFailed`,
/// ...) live in the applications' namespaces: `namespaces/<ns>/core/events.yaml` there. The operator
/// namespaces already have all their events.
async fn keda_events(fetcher: &Fetcher, ops: BTreeSet<String>) -> Collected {
    let path = EVENTS.path(None);
    let queries: Vec<Vec<(&str, String)>> =
        KEDA_EVENT_SELECTORS.iter().map(|q| vec![("fieldSelector", (*q).to_string())]).collect();
    let lists = futures::future::join_all(queries.iter().map(|q| fetcher.list(&path, q))).await;
    let mut by_ns: std::collections::BTreeMap<String, std::collections::BTreeMap<String, Value>> =
        std::collections::BTreeMap::new();
    for list in lists.into_iter().filter_map(list_items) {
        for event in list {
            let about = str_at(&event, "/involvedObject/name");
            let kind = str_at(&event, "/involvedObject/kind");
            if kind == "HorizontalPodAutoscaler" && !about.starts_with(KEDA_HPA_PREFIX) {
                continue;
            }
            let ns = namespace(&event).to_string();
            if ns.is_empty() || ops.contains(&ns) {
                continue;
            }
            by_ns.entry(ns).or_default().insert(name(&event).to_string(), event);
        }
    }
    let outputs = by_ns
        .into_iter()
        .map(|(ns, events)| {
            let mut list = serde_json::json!({
                "apiVersion": "v1",
                "kind": "EventList",
                "metadata": {},
                "items": events.into_values().collect::<Vec<_>>(),
            });
            output::normalise_list(&mut list);
            Output { path: layout::namespace_list(&ns, EVENTS.group, EVENTS.resource), doc: Document::List(list) }
        })
        .collect();
    Collected { outputs, ..Collected::default() }
}

async fn install_plans(fetcher: &Fetcher, ns: String, inst: &Installations, package: &str) -> Collected {
    let referenced: BTreeSet<String> = inst
        .subscriptions
        .iter()
        .filter(|s| namespace(s) == ns)
        .flat_map(|s| {
            [str_at(s, "/status/installPlanRef/name").to_string(), str_at(s, "/status/installplan/name").to_string()]
        })
        .filter(|n| !n.is_empty())
        .collect();
    let package = package.to_string();
    filtered(fetcher, INSTALLPLANS, Some(ns), Vec::new(), move |ip| {
        referenced.contains(name(ip))
            || ip
                .pointer("/spec/clusterServiceVersionNames")
                .and_then(Value::as_array)
                .is_some_and(|names| names.iter().filter_map(Value::as_str).any(|n| is_package_csv(n, &package)))
    })
    .await
}

async fn cluster_rbac(fetcher: &Fetcher, ops: BTreeSet<String>, package: &str) -> Collected {
    let (roles_path, bindings_path) = (CLUSTERROLES.path(None), CLUSTERROLEBINDINGS.path(None));
    let (roles, bindings) = futures::join!(fetcher.list(&roles_path, &[]), fetcher.list(&bindings_path, &[]),);
    let package = package.to_string();
    let olm_owned = |o: &Value| label(o, "olm.owner").is_some_and(|owner| is_package_csv(owner, &package));
    let roles: Vec<Value> = list_items(roles)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| ours(r) || KEDA_CLUSTER_RBAC.contains(&name(r)) || olm_owned(r))
        .collect();
    let role_names: BTreeSet<String> = roles.iter().map(|r| name(r).to_string()).collect();
    let bindings: Vec<Value> = list_items(bindings)
        .unwrap_or_default()
        .into_iter()
        .filter(|b| {
            ours(b)
                || KEDA_CLUSTER_RBAC.contains(&name(b))
                || olm_owned(b)
                || binds_operator_sa(b, &ops)
                || (str_at(b, "/roleRef/kind") == "ClusterRole" && role_names.contains(str_at(b, "/roleRef/name")))
        })
        .collect();
    let mut outputs = per_object(&CLUSTERROLES, roles);
    outputs.extend(per_object(&CLUSTERROLEBINDINGS, bindings));
    Collected { outputs, ..Collected::default() }
}

/// The `Available` condition of an APIService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason (`FailedDiscoveryCheck`, `MissingEndpoints`, `ServiceNotFound`, ...).
    pub reason: String,
    /// What the API server's availability check saw.
    pub message: String,
}

impl Availability {
    /// The condition of an APIService; `None` when it has none yet.
    pub fn of(apiservice: &Value) -> Option<Self> {
        let condition = apiservice
            .pointer("/status/conditions")
            .and_then(Value::as_array)?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some("Available"))?;
        Some(Self {
            status: str_at(condition, "/status").to_string(),
            reason: str_at(condition, "/reason").to_string(),
            message: str_at(condition, "/message").to_string(),
        })
    }

    /// Whether the API server reports the API as unavailable.
    pub fn is_false(&self) -> bool {
        self.status == "False"
    }
}

/// The APIService first, then what the API it registers answers, asked once. When the APIService says it is
/// not available, the API server answers `503` at once, and the API is asked with a short time limit; when it
/// says available but the metrics server hangs, the aggregator answers `503` after its own 5 s. An error answer
/// is recorded as the server gave it, with the `Available` condition seen.
async fn external_metrics(fetcher: &Fetcher) -> Collected {
    let mut out = Collected::default();
    let mut findings = Vec::new();
    let availability = match fetcher.get(&APISERVICES.object_path(None, EXTERNAL_METRICS_APISERVICE)).await {
        Ok(apiservice) => {
            let availability = Availability::of(&apiservice);
            out.outputs.extend(per_object(&APISERVICES, [apiservice]));
            availability
        }
        Err(e) => {
            findings.push(format!("GET APIService {EXTERNAL_METRICS_APISERVICE}: {e}"));
            None
        }
    };
    let timeout = match &availability {
        Some(a) if a.is_false() => {
            let finding =
                format!("APIService {EXTERNAL_METRICS_APISERVICE} is not Available: {}: {}", a.reason, a.message);
            let limit = fetcher.timeout().min(UNAVAILABLE_API_TIMEOUT);
            fetcher.log().note(&format!("{finding} (asking {EXTERNAL_METRICS_PATH} with a {limit:?} limit)"));
            findings.push(finding);
            limit
        }
        Some(a) => {
            // Recorded only should the API fail: the API server still took it for available when asked.
            let state =
                if a.status == "True" { "was Available".to_string() } else { format!("had Available={}", a.status) };
            findings.push(format!(
                "APIService {EXTERNAL_METRICS_APISERVICE} {state} when asked: {}: {}",
                a.reason, a.message
            ));
            fetcher.timeout()
        }
        None => fetcher.timeout(),
    };
    let doc = match fetcher.get_within(EXTERNAL_METRICS_PATH, timeout).await {
        Ok(v) => Output { path: EXTERNAL_METRICS_FILE.to_string(), doc: Document::Json(v) },
        // The failure is the finding (typically 503 when the metrics server is unreachable): keep it as the
        // server gave it, with what the APIService says.
        Err(e) => {
            let mut text = format!("GET {EXTERNAL_METRICS_PATH}: {e}\n");
            for f in &findings {
                text.push_str(f);
                text.push('\n');
            }
            Output { path: EXTERNAL_METRICS_ERROR_FILE.to_string(), doc: Document::Text(text) }
        }
    };
    out.outputs.push(doc);
    out
}

/// Claims the metrics server writes its audit log to (`spec.metricsServer.auditConfig.logOutputVolumeClaim`
/// of the KedaControllers), as `namespace/claim`: must-gather cannot read a claim, the README says how to.
/// Without a claim the audit log is the metrics server's standard output, collected as its container log.
pub fn audit_log_claims(inst: &Installations) -> Vec<String> {
    inst.kedacontrollers
        .iter()
        .flatten()
        .filter_map(|kc| {
            let claim = str_at(kc, "/spec/metricsServer/auditConfig/logOutputVolumeClaim");
            (!claim.is_empty()).then(|| format!("{}/{claim}", namespace(kc)))
        })
        .collect()
}

/// The installed version(s) of the package: Subscription `status.installedCSV` (never `currentCSV`, which
/// may be an upgrade still pending), else the CSVs that succeeded; `unknown` when none is found.
pub fn installed_version(inst: &Installations) -> String {
    let csv_version = |ns: &str, csv: &str| {
        inst.csvs
            .iter()
            .find(|c| namespace(c) == ns && name(c) == csv)
            .map(|c| str_at(c, "/spec/version").to_string())
            .filter(|v| !v.is_empty())
    };
    let mut versions = BTreeSet::new();
    for sub in &inst.subscriptions {
        let installed = str_at(sub, "/status/installedCSV");
        if installed.is_empty() {
            continue;
        }
        let from_name = installed.split_once(".v").map(|(_, v)| v.to_string()).unwrap_or_default();
        if let Some(v) = csv_version(namespace(sub), installed).or(Some(from_name)).filter(|v| !v.is_empty()) {
            versions.insert(v);
        }
    }
    if versions.is_empty() {
        for csv in &inst.csvs {
            if str_at(csv, "/status/phase") == "Succeeded" {
                let v = str_at(csv, "/spec/version");
                if !v.is_empty() {
                    versions.insert(v.to_string());
                }
            }
        }
    }
    if versions.is_empty() { "unknown".to_string() } else { versions.into_iter().collect::<Vec<_>>().join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_names_match_the_api_crate() {
        let ours: BTreeSet<String> = cma_api::crd::all().unwrap().into_iter().filter_map(|c| c.metadata.name).collect();
        let listed: BTreeSet<String> = KEDA_CRDS.iter().map(|s| s.to_string()).collect();
        assert_eq!(ours, listed);
        for kind in KEDA_KINDS {
            assert!(listed.contains(&format!("{}.{}", kind.resource, kind.group)));
        }
    }

    #[test]
    fn an_apiservice_reports_why_it_is_unavailable() {
        let apiservice = json!({"status": {"conditions": [{"type": "Available", "status": "False",
            "reason": "MissingEndpoints", "message": "endpoints for service/keda-metrics-apiserver in \"keda\" have no addresses"}]}});
        let a = Availability::of(&apiservice).unwrap();
        assert!(a.is_false());
        assert_eq!(a.reason, "MissingEndpoints");
        assert!(Availability::of(&json!({"status": {}})).is_none());
        let available =
            json!({"status": {"conditions": [{"type": "Available", "status": "True", "reason": "Passed"}]}});
        assert!(!Availability::of(&available).unwrap().is_false());
    }

    #[test]
    fn audit_log_claims_are_found_on_the_kedacontrollers() {
        let inst = Installations {
            kedacontrollers: Some(vec![
                json!({"metadata": {"name": "keda", "namespace": "k1"},
                    "spec": {"metricsServer": {"auditConfig": {"logOutputVolumeClaim": "audit"}}}}),
                json!({"metadata": {"name": "keda", "namespace": "k2"},
                    "spec": {"metricsServer": {"auditConfig": {"policy": {"rules": [{"level": "Metadata"}]}}}}}),
            ]),
            ..Installations::default()
        };
        assert_eq!(audit_log_claims(&inst), vec!["k1/audit".to_string()]);
    }

    #[test]
    fn previous_logs_only_for_containers_that_restarted() {
        let pod = json!({"metadata": {"name": "p", "namespace": "n"},
            "spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"containerStatuses": [{"name": "a", "restartCount": 2}, {"name": "b", "restartCount": 0}]}});
        let jobs: Vec<(String, bool)> = log_jobs(&pod).into_iter().map(|j| (j.container, j.previous)).collect();
        assert_eq!(jobs, vec![("init".into(), false), ("a".into(), false), ("a".into(), true), ("b".into(), false)]);
    }

    #[test]
    fn installed_version_comes_from_installed_csv_not_current_csv() {
        let inst = Installations {
            subscriptions: vec![json!({"metadata": {"name": "s", "namespace": "k"},
                "spec": {"name": "cma-operator"},
                "status": {"installedCSV": "cma-operator.v1.2.0", "currentCSV": "cma-operator.v1.3.0"}})],
            csvs: vec![
                json!({"metadata": {"name": "cma-operator.v1.2.0", "namespace": "k"}, "spec": {"version": "1.2.0"}, "status": {"phase": "Replacing"}}),
                json!({"metadata": {"name": "cma-operator.v1.3.0", "namespace": "k"}, "spec": {"version": "1.3.0"}, "status": {"phase": "Pending"}}),
            ],
            ..Installations::default()
        };
        assert_eq!(installed_version(&inst), "1.2.0");
        assert_eq!(installed_version(&Installations::default()), "unknown");
        assert!(is_package_csv("cma-operator.v0.1.0", "cma-operator"));
        assert!(!is_package_csv("cma-operator-foo.v0.1.0", "cma-operator"));
    }
}
