//! Whose is an object before the operator writes it. Every rendered object that already exists is claimed:
//! - **ours**: this installation's inventory labels, or fields written by our field managers;
//! - **another cma-operator installation's**: refused, nothing is written (`AnotherInstallation`);
//! - **a Go operator's** (kedacore/keda-olm-operator or the Red Hat Custom Metrics Autoscaler operator, which
//!   mark what they apply with their last-applied annotation) for this same namespace: taken over without
//!   being asked, their bookkeeping removed;
//! - **someone else's** (the KEDA Helm chart, a Go operator's KEDA in another namespace, prometheus-adapter's
//!   APIService, anything else): nothing at all is written and the status says whose it is and what to do
//!   (`ForeignInstallation`), unless the KedaController opts in to adopt it ([`ADOPT_ANNOTATION`]).
//!
//! The survey reads the caches only; it runs before any write of a reconcile.

use std::collections::BTreeMap;

use cma_api::labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::caches::Caches;
use crate::kinds::{Managed, Stores, managed_kinds, object_ref};
use crate::render::Desired;

/// The annotation the Go operators record what they applied in.
pub const GO_OPERATOR_ANNOTATION: &str = "olm-operator.keda.sh/last-applied-configuration";
/// KedaController annotation opting in to adopt a KEDA installation made by someone else (value `"true"`).
pub const ADOPT_ANNOTATION: &str = "cma.keda.sh/adopt-existing-installation";
/// Helm's release annotations and label.
const HELM_RELEASE: &str = "meta.helm.sh/release-name";
const HELM_NAMESPACE: &str = "meta.helm.sh/release-namespace";
/// Reason of the Ready/Degraded conditions when someone else's objects stand in the way.
pub const FOREIGN_INSTALLATION: &str = "ForeignInstallation";

/// Who an existing object belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// This installation's.
    Ours,
    /// Another installation of cma-operator, in this namespace.
    OtherInstallation(String),
    /// A Go operator's install of KEDA into this namespace: taken over.
    GoOperator,
    /// Someone else's: who, in words.
    Foreign(String),
}

/// One object whose claim matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// Kind.
    pub kind: String,
    /// `namespace/name` or `name`.
    pub name: String,
    /// Whose it is.
    pub claim: Claim,
    /// Whether it came from a Helm release (adoption keeps it out of `helm uninstall`).
    pub helm: bool,
    /// The other namespace it routes to or binds, when it does (the namespace of another KEDA).
    pub elsewhere: Option<String>,
}

/// The claims on every rendered object that exists and is not ours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Survey {
    /// Objects that are not this installation's.
    pub claimed: Vec<Claimed>,
}

fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The namespaces other than `namespace` a live object routes traffic to or grants to: the APIService's
/// Service, the webhooks' Services, a binding's ServiceAccounts.
fn elsewhere(live: &Value, namespace: &str) -> Option<String> {
    let mut found = Vec::new();
    if let Some(ns) = live["spec"]["service"]["namespace"].as_str() {
        found.push(ns);
    }
    for webhook in live["webhooks"].as_array().into_iter().flatten() {
        found.extend(webhook["clientConfig"]["service"]["namespace"].as_str());
    }
    for subject in live["subjects"].as_array().into_iter().flatten() {
        if subject["kind"] == "ServiceAccount" {
            found.extend(subject["namespace"].as_str());
        }
    }
    found.into_iter().find(|ns| *ns != namespace && *ns != cma_api::names::KUBE_SYSTEM).map(String::from)
}

/// Whose `live` is, for an installation in `namespace`.
pub fn classify(meta: &ObjectMeta, live: &Value, namespace: &str) -> Claim {
    if label(meta, labels::MANAGED_BY) == Some(labels::MANAGED_BY_VALUE) {
        return match label(meta, labels::OWNER_NAMESPACE) {
            Some(owner) if owner != namespace => Claim::OtherInstallation(owner.to_string()),
            _ => Claim::Ours,
        };
    }
    let managers: Vec<&str> = meta.managed_fields.iter().flatten().filter_map(|m| m.manager.as_deref()).collect();
    if managers.iter().any(|m| m.starts_with(labels::MANAGED_BY_VALUE)) {
        return Claim::Ours;
    }
    let other = elsewhere(live, namespace);
    if annotation(meta, GO_OPERATOR_ANNOTATION).is_some() {
        return match other {
            None => Claim::GoOperator,
            Some(ns) => Claim::Foreign(format!("the KEDA installed by a KEDA OLM operator in namespace '{ns}'")),
        };
    }
    if let Some(release) = annotation(meta, HELM_RELEASE) {
        let release_ns = annotation(meta, HELM_NAMESPACE).unwrap_or("?");
        return Claim::Foreign(format!("Helm release '{release}' in namespace '{release_ns}'"));
    }
    if label(meta, labels::MANAGED_BY) == Some("Helm") {
        return Claim::Foreign("a Helm release".into());
    }
    if let Some(owner) = meta.owner_references.iter().flatten().find(|o| o.controller == Some(true)) {
        return Claim::Foreign(format!("{} {}", owner.kind, owner.name));
    }
    if let Some(ns) = other {
        return Claim::Foreign(format!("the installation in namespace '{ns}'"));
    }
    let writers: Vec<&str> = managers.into_iter().filter(|m| *m != "kube-controller-manager").collect();
    if writers.is_empty() {
        Claim::Foreign("someone outside the operator".into())
    } else {
        Claim::Foreign(format!("field manager {}", writers.join(", ")))
    }
}

fn survey_kind<K: Managed>(stores: &Stores<K>, objects: &[K], namespace: &str, out: &mut Vec<Claimed>) {
    for object in objects {
        let Some(live) = stores.get(&object_ref(object)) else {
            continue;
        };
        let value = serde_json::to_value(&*live).unwrap_or(Value::Null);
        let meta = live.meta();
        let claim = classify(meta, &value, namespace);
        if claim == Claim::Ours {
            continue;
        }
        out.push(Claimed {
            kind: K::kind(&()).to_string(),
            name: super::apply::display_name(&*live),
            helm: annotation(meta, HELM_RELEASE).is_some() || label(meta, labels::MANAGED_BY) == Some("Helm"),
            elsewhere: elsewhere(&value, namespace),
            claim,
        });
    }
}

macro_rules! survey {
    ($($field:ident: $ty:ty => $order:ident,)*) => {
        /// Claims every rendered object that exists and is not this installation's.
        pub fn survey(caches: &Caches, desired: &Desired, namespace: &str) -> Survey {
            let mut claimed = Vec::new();
            $(
                survey_kind(&caches.managed.$field, &desired.$field, namespace, &mut claimed);
            )*
            Survey { claimed }
        }
    };
}
managed_kinds!(survey);

impl Survey {
    /// The refusal when another cma-operator installation owns something we render.
    pub fn other_installation(&self) -> Option<String> {
        self.claimed.iter().find_map(|c| match &c.claim {
            Claim::OtherInstallation(ns) => Some(format!(
                "KEDA is already installed by cma-operator in namespace '{ns}' ({} {} belongs to it); uninstall it there first, or delete this KedaController",
                c.kind, c.name
            )),
            _ => None,
        })
    }

    /// Someone else's objects, by owner.
    pub fn foreign(&self) -> BTreeMap<String, Vec<String>> {
        let mut by_owner: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for c in &self.claimed {
            if let Claim::Foreign(owner) = &c.claim {
                by_owner.entry(owner.clone()).or_default().push(format!("{} {}", c.kind, c.name));
            }
        }
        by_owner
    }

    /// The refusal when someone else's objects stand in the way and adoption was not asked for.
    pub fn foreign_message(&self) -> Option<String> {
        let foreign = self.foreign();
        if foreign.is_empty() {
            return None;
        }
        let owners: Vec<String> = foreign
            .iter()
            .map(|(owner, objects)| {
                let shown: Vec<&str> = objects.iter().take(4).map(String::as_str).collect();
                let more = objects.len().saturating_sub(shown.len());
                let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                format!("{}{more} belong to {owner}", shown.join(", "))
            })
            .collect();
        Some(format!(
            "another KEDA installation is in the way, nothing was written: {}. Uninstall that KEDA first (see docs/migration.md), or let this KedaController adopt it with the annotation {ADOPT_ANNOTATION}: \"true\"",
            owners.join("; ")
        ))
    }

    /// The objects to take over (the Go operators' without asking; everyone's when adoption was asked for).
    pub fn taken_over(&self, adopt: bool) -> Vec<&Claimed> {
        self.claimed
            .iter()
            .filter(|c| matches!(c.claim, Claim::GoOperator) || (adopt && matches!(c.claim, Claim::Foreign(_))))
            .collect()
    }

    /// The namespace of the KEDA being adopted, when it runs elsewhere (its APIService routes there).
    pub fn adopted_namespace(&self) -> Option<&str> {
        self.claimed.iter().filter(|c| c.kind == "APIService").find_map(|c| c.elsewhere.as_deref())
    }
}

/// Whether the KedaController asks to adopt someone else's KEDA.
pub fn adoption_requested(kc: &cma_api::KedaController) -> bool {
    kc.metadata.annotations.as_ref().and_then(|a| a.get(ADOPT_ANNOTATION)).is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(value: &Value) -> ObjectMeta {
        serde_json::from_value(value["metadata"].clone()).unwrap()
    }

    fn claim(value: Value) -> Claim {
        classify(&meta(&value), &value, "openshift-keda")
    }

    #[test]
    fn our_labels_or_our_field_managers_make_an_object_ours() {
        let labelled = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "cma-operator", "cma.keda.sh/owner-namespace": "openshift-keda"}}});
        assert_eq!(claim(labelled), Claim::Ours);
        let written = json!({"metadata": {"managedFields": [{"manager": "cma-operator-certs", "operation": "Apply"}]}});
        assert_eq!(claim(written), Claim::Ours);
        let other = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "cma-operator", "cma.keda.sh/owner-namespace": "keda"}}});
        assert_eq!(claim(other), Claim::OtherInstallation("keda".into()));
    }

    #[test]
    fn a_go_operators_object_here_is_taken_over_and_elsewhere_is_foreign() {
        let here = json!({"metadata": {"annotations": {GO_OPERATOR_ANNOTATION: "{}"}},
                          "spec": {"service": {"name": "keda-metrics-apiserver", "namespace": "openshift-keda"}}});
        assert_eq!(claim(here), Claim::GoOperator);
        let there = json!({"metadata": {"annotations": {GO_OPERATOR_ANNOTATION: "{}"}},
                           "spec": {"service": {"name": "keda-metrics-apiserver", "namespace": "keda"}}});
        assert!(matches!(claim(there), Claim::Foreign(owner) if owner.contains("namespace 'keda'")));
    }

    #[test]
    fn helm_releases_and_other_writers_are_named() {
        let helm = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"},
                                       "annotations": {HELM_RELEASE: "keda", HELM_NAMESPACE: "keda"}}});
        assert_eq!(claim(helm), Claim::Foreign("Helm release 'keda' in namespace 'keda'".into()));
        let adapter = json!({"metadata": {"managedFields": [{"manager": "kubectl-client-side-apply"}]},
                             "spec": {"service": {"name": "prometheus-adapter", "namespace": "openshift-monitoring"}}});
        assert_eq!(claim(adapter), Claim::Foreign("the installation in namespace 'openshift-monitoring'".into()));
        let anyone = json!({"metadata": {"managedFields": [{"manager": "kubectl-create"}]}});
        assert_eq!(claim(anyone), Claim::Foreign("field manager kubectl-create".into()));
    }
}
