//! Ownership metadata every rendered object carries: labels, namespace, owner reference.

use std::collections::BTreeMap;

use cma_api::{KedaController, labels};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The KedaController the objects belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Namespace of the KedaController: where KEDA is installed.
    pub namespace: String,
    /// Name of the KedaController (`keda`).
    pub name: String,
    /// UID of the KedaController; unknown when rendering offline from a file.
    pub uid: Option<String>,
}

impl Owner {
    /// The owner described by a KedaController's metadata.
    pub fn of(kc: &KedaController, namespace: &str, name: &str) -> Self {
        Owner { namespace: namespace.to_string(), name: name.to_string(), uid: kc.metadata.uid.clone() }
    }

    /// The labels marking an object as managed by this KedaController.
    pub fn labels(&self) -> [(&'static str, String); 4] {
        [
            (labels::MANAGED_BY, labels::MANAGED_BY_VALUE.to_string()),
            (labels::PART_OF, labels::PART_OF_VALUE.to_string()),
            (labels::OWNER_NAMESPACE, self.namespace.clone()),
            (labels::OWNER_NAME, self.name.clone()),
        ]
    }

    /// The controller owner reference, when the KedaController's UID is known.
    fn owner_reference(&self) -> Option<OwnerReference> {
        Some(OwnerReference {
            api_version: "keda.sh/v1alpha1".into(),
            kind: KedaController::KIND.into(),
            name: self.name.clone(),
            uid: self.uid.clone()?,
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
    }
}

/// Where an object lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// In the KedaController's namespace: owned through an owner reference as well as labels.
    Install,
    /// In another namespace (the kube-system RoleBinding): labels only; cross-namespace owner references
    /// are not allowed, the finalizer deletes it.
    Namespace(&'a str),
    /// Cluster-scoped: labels only; the finalizer deletes it.
    Cluster,
}

/// Stamps ownership onto `meta`: namespace, the ownership labels (over any template value) and, for
/// objects in the install namespace, the owner reference.
pub fn own(meta: &mut ObjectMeta, owner: &Owner, scope: Scope<'_>) {
    match scope {
        Scope::Install => {
            meta.namespace = Some(owner.namespace.clone());
            meta.owner_references = owner.owner_reference().map(|r| vec![r]);
        }
        Scope::Namespace(ns) => meta.namespace = Some(ns.to_string()),
        Scope::Cluster => meta.namespace = None,
    }
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in owner.labels() {
        labels.insert(key.to_string(), value);
    }
}

/// Adds `extra` entries to a label or annotation map, creating it when needed.
pub fn merge(map: &mut Option<BTreeMap<String, String>>, extra: &BTreeMap<String, String>) {
    if extra.is_empty() {
        return;
    }
    let map = map.get_or_insert_with(BTreeMap::new);
    for (key, value) in extra {
        map.insert(key.clone(), value.clone());
    }
}

/// Sets one entry of a label or annotation map.
pub fn set(map: &mut Option<BTreeMap<String, String>>, key: &str, value: &str) {
    map.get_or_insert_with(BTreeMap::new).insert(key.to_string(), value.to_string());
}
