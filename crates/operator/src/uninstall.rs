//! `cma-operator uninstall`: removes what the operator installed for one KedaController when the operator
//! itself is gone (removed before the KedaController, so nothing releases its finalizer).
//!
//! It finds the objects exactly as prune does, by the inventory labels of the KedaController
//! ([`cma_api::labels::inventory_selector`]), for every kind the operator manages ([`crate::kinds::managed`]),
//! in every namespace and cluster-wide. Nothing else is touched: not the KedaController (the user's), not the
//! operator's own Deployment and RBAC, not KEDA's static ServiceAccounts and permissions (installed with the
//! operator, `config/keda-rbac`), not KEDA's CRDs and the ScaledObjects they hold.

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::errors::describe;
use crate::kinds::{KindInfo, managed};
use crate::reconcile::FINALIZER;

/// The KedaController whose installation is removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its namespace (where KEDA was installed).
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What the KedaController looked like when the command ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KedaControllerState {
    /// It no longer exists.
    Absent,
    /// It exists and is not being deleted: an operator started later installs KEDA again from it.
    Present,
    /// It is being deleted; `finalizer` says whether our finalizer still holds it.
    Deleting {
        /// Whether `finalizer.kedacontroller.keda.sh` is still set.
        finalizer: bool,
    },
}

/// One object of the installation: `Kind namespace/name` (or `Kind name` when cluster-scoped).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Found {
    /// Its kind.
    pub kind: String,
    /// Its namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What `uninstall` found, did and could not do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The objects of the installation (deleted, or to be deleted in a dry run), in deletion order.
    pub objects: Vec<Found>,
    /// The KedaController as found; `None` when it could not be read.
    pub kedacontroller: Option<KedaControllerState>,
    /// Whether the finalizer was released (or would be, in a dry run).
    pub finalizer_released: bool,
    /// Every request that failed, with the API server's message; the command exits 1 when any did.
    pub failures: Vec<String>,
}

/// Finds the installation of `target` and, unless `dry_run`, deletes it and then releases the finalizer of a
/// KedaController that is being deleted. Failures are collected in the report, not returned early: one
/// refused kind does not keep the others from being removed, but the finalizer is released only when every
/// object is gone (releasing it earlier would let the KedaController vanish while objects remain).
pub async fn uninstall(client: &Client, target: &Target, dry_run: bool) -> Report {
    let mut report = Report::default();
    let kc_api: Api<cma_api::KedaController> = Api::namespaced(client.clone(), &target.namespace);
    let kedacontroller = match kc_api.get_opt(&target.name).await {
        Ok(None) => Some((KedaControllerState::Absent, None)),
        Ok(Some(kc)) => {
            let state = if kc.metadata.deletion_timestamp.is_some() {
                KedaControllerState::Deleting { finalizer: crate::reconcile::finalizer::has(&kc) }
            } else {
                KedaControllerState::Present
            };
            Some((state, Some(kc)))
        }
        Err(e) => {
            report.failures.push(failure(&format!("read KedaController {}/{}", target.namespace, target.name), &e));
            if unreachable(&e) {
                // Every further request would fail the same way.
                return report;
            }
            None
        }
    };
    report.kedacontroller = kedacontroller.as_ref().map(|(state, _)| state.clone());

    let selector = cma_api::labels::inventory_selector(&target.namespace, &target.name);
    // Teardown in reverse order of the kinds table: the API registrations first (an APIService whose
    // Service is gone blocks discovery and namespace deletion cluster-wide), the workloads next, their
    // configuration last.
    for kind in managed().into_iter().rev() {
        match list(client, &kind, &selector).await {
            Ok(objects) => {
                for object in objects {
                    let found = found(&kind, &object);
                    if !dry_run && let Err(e) = delete(client, &kind, &found).await {
                        report.failures.push(failure(&format!("delete {found}"), &e));
                        continue;
                    }
                    report.objects.push(found);
                }
            }
            Err(e) => {
                report.failures.push(failure(&format!("list {} {}", plural(&kind), scope(&kind)), &e));
                if unreachable(&e) {
                    return report;
                }
            }
        }
    }

    if let Some((KedaControllerState::Deleting { finalizer: true }, Some(kc))) = &kedacontroller
        && report.failures.is_empty()
    {
        if dry_run {
            report.finalizer_released = true;
        } else {
            match release(&kc_api, kc).await {
                Ok(()) => report.finalizer_released = true,
                Err(e) => report.failures.push(failure(
                    &format!("remove finalizer {FINALIZER} from KedaController {}/{}", target.namespace, target.name),
                    &e,
                )),
            }
        }
    }
    report
}

/// Every object of `kind` carrying `selector`, in every namespace; none when the cluster does not serve the
/// kind (the monitoring API is optional).
async fn list(client: &Client, kind: &KindInfo, selector: &str) -> Result<Vec<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.resource);
    match api.list(&ListParams::default().labels(selector)).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn found(kind: &KindInfo, object: &DynamicObject) -> Found {
    Found {
        kind: kind.resource.kind.clone(),
        namespace: object.metadata.namespace.clone().filter(|_| kind.namespaced),
        name: object.metadata.name.clone().unwrap_or_default(),
    }
}

async fn delete(client: &Client, kind: &KindInfo, found: &Found) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> = match &found.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource),
        None => Api::all_with(client.clone(), &kind.resource),
    };
    match api.delete(&found.name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        // Gone meanwhile (garbage collection of an owned object): the outcome wanted.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes our finalizer, guarded by the resourceVersion read so another client's change is never
/// overwritten.
async fn release(api: &Api<cma_api::KedaController>, kc: &cma_api::KedaController) -> Result<(), kube::Error> {
    let rest: Vec<&String> = kc.metadata.finalizers.iter().flatten().filter(|f| *f != FINALIZER).collect();
    let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": kc.metadata.resource_version}});
    let name = kc.metadata.name.as_deref().unwrap_or_default();
    match api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

fn plural(kind: &KindInfo) -> String {
    if kind.resource.group.is_empty() {
        kind.resource.plural.clone()
    } else {
        format!("{}.{}", kind.resource.plural, kind.resource.group)
    }
}

fn scope(kind: &KindInfo) -> &'static str {
    if kind.namespaced { "in all namespaces" } else { "(cluster-scoped)" }
}

/// Whether the API server could not be reached at all (as opposed to answering with an error).
fn unreachable(error: &kube::Error) -> bool {
    !matches!(error, kube::Error::Api(_))
}

/// `action: <the API server's message>`, with what to do about a refusal.
fn failure(action: &str, error: &kube::Error) -> String {
    let mut text = format!("cannot {action}: {}", describe(error));
    if matches!(error, kube::Error::Api(status) if status.code == 401 || status.code == 403) {
        text.push_str(
            " (uninstall lists and deletes in every namespace and cluster-wide: run it as a cluster administrator)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_named_as_kubectl_users_read_them() {
        let namespaced =
            Found { kind: "Deployment".into(), namespace: Some("keda".into()), name: "keda-operator".into() };
        assert_eq!(namespaced.to_string(), "Deployment keda/keda-operator");
        let cluster =
            Found { kind: "APIService".into(), namespace: None, name: "v1beta1.external.metrics.k8s.io".into() };
        assert_eq!(cluster.to_string(), "APIService v1beta1.external.metrics.k8s.io");
    }

    #[test]
    fn a_refusal_says_who_may_uninstall() {
        let status = kube::core::Status::failure(
            "apiservices.apiregistration.k8s.io is forbidden: User \"dev\" cannot list resource \"apiservices\"",
            "Forbidden",
        )
        .with_code(403);
        let text =
            failure("list apiservices.apiregistration.k8s.io (cluster-scoped)", &kube::Error::Api(Box::new(status)));
        assert!(
            text.starts_with("cannot list apiservices.apiregistration.k8s.io (cluster-scoped): apiservices"),
            "{text}"
        );
        assert!(text.contains("cluster administrator"), "{text}");
        assert!(!text.contains("Status {"), "{text}");
    }

    #[test]
    fn teardown_starts_with_the_api_registrations() {
        let order: Vec<String> = managed().into_iter().rev().map(|k| k.resource.kind).collect();
        assert_eq!(order[..2], ["ValidatingWebhookConfiguration".to_string(), "APIService".to_string()]);
    }
}
