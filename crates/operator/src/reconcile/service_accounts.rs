//! KEDA's ServiceAccounts are static (installed with the operator, bound to their permissions by OLM or
//! config/keda-rbac): the operator never creates or deletes them. It only checks they exist, and applies the
//! KedaController's `spec.serviceAccount` labels and annotations (workload identity) to the KEDA operator's,
//! with its own field manager, so removing them from the spec removes them from the ServiceAccount.

use cma_api::{Component, KedaController};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};

use super::apply::{self, FIELD_MANAGER, WriteError, Written};
use crate::caches::Caches;
use crate::context::Applied;
use crate::kinds::Managed;

/// The ServiceAccounts KEDA's pods run as that do not exist, described for the status.
pub fn missing(caches: &Caches, namespace: &str) -> Vec<String> {
    Component::ALL
        .into_iter()
        .map(Component::service_account)
        .filter(|name| caches.service_accounts.named(Some(namespace), name).is_none())
        .map(|name| {
            format!("ServiceAccount {namespace}/{name} (installed with the operator: the CSV, or config/keda-rbac)")
        })
        .collect()
}

/// What the KedaController asks of the KEDA operator's ServiceAccount.
fn intent(kc: &KedaController, namespace: &str) -> ServiceAccount {
    let sa = &kc.spec.service_account;
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(Component::Operator.service_account().into()),
            namespace: Some(namespace.into()),
            labels: (!sa.labels.is_empty()).then(|| sa.labels.clone()),
            annotations: (!sa.annotations.is_empty()).then(|| sa.annotations.clone()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    }
}

/// Applies `spec.serviceAccount` to the KEDA operator's ServiceAccount when it exists.
pub async fn apply(
    client: &kube::Client,
    caches: &Caches,
    kc: &KedaController,
    namespace: &str,
    applied: &Applied,
) -> Result<Option<Written>, WriteError> {
    if caches.service_accounts.named(Some(namespace), Component::Operator.service_account()).is_none() {
        return Ok(None);
    }
    apply::apply_one(client.clone(), caches.service_accounts.clone(), intent(kc, namespace), applied).await
}

/// Takes back what the operator applied to the ServiceAccount (uninstall): an apply of nothing by our field
/// manager removes every field it owned.
pub async fn release(client: &kube::Client, caches: &Caches, namespace: &str) -> Result<(), WriteError> {
    let name = Component::Operator.service_account();
    if caches.service_accounts.named(Some(namespace), name).is_none() {
        return Ok(());
    }
    let empty = ServiceAccount {
        metadata: ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..ObjectMeta::default() },
        ..ServiceAccount::default()
    };
    ServiceAccount::api(client, Some(namespace))
        .patch(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&empty))
        .await
        .map(|_| ())
        .map_err(|source| WriteError {
            action: "release",
            kind: "ServiceAccount".into(),
            name: format!("{namespace}/{name}"),
            source,
        })
}
