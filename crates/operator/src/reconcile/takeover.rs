//! Taking over an existing KEDA installation: after our apply has claimed the objects, what their previous
//! owner left on them goes (the Go operators' last-applied annotation, Helm's release annotations, version
//! labels nothing keeps current), Helm is told to keep them (`helm uninstall` of the old release then leaves
//! them alone), and what the Go operators wrote that we do not render (their RBAC, now static and named
//! cma-keda-*) is deleted. For a KEDA adopted from another namespace, its Deployments are deleted once the
//! external metrics API and the webhooks point at ours.

use cma_api::names::previous;
use cma_api::{Component, KedaController};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use k8s_openapi::jiff::Timestamp;

use super::apply::{FIELD_MANAGER, is_not_found};
use super::errors::{Error, api_error};
use super::ownership::{self, Claim, Claimed, GO_OPERATOR_ANNOTATION, Survey};
use crate::context::Context;
use crate::events;
use crate::render::Desired;

/// Labels the previous owners set that the operator does not render, so nothing would keep them true.
const STALE_LABELS: [&str; 3] =
    ["app.kubernetes.io/version", "app.kubernetes.io/created-by", "app.kubernetes.io/instance"];
/// Annotations of the previous owners.
const STALE_ANNOTATIONS: [&str; 3] =
    [GO_OPERATOR_ANNOTATION, "meta.helm.sh/release-name", "meta.helm.sh/release-namespace"];
/// Tells `helm uninstall` to leave an object alone.
const HELM_KEEP: (&str, &str) = ("helm.sh/resource-policy", "keep");
/// KedaController annotation recording the namespace of an adopted KEDA until its Deployments are gone.
pub const ADOPTED_FROM_ANNOTATION: &str = "cma.keda.sh/adopted-from";

/// Objects a takeover deletes although the operator does not render them: (plural resource, name).
pub fn deleted_at_takeover() -> Vec<(String, &'static str)> {
    let leftovers =
        previous::GO_OPERATOR_RBAC.iter().filter_map(|(kind, _, name)| Some((resource(kind)?.plural, *name)));
    leftovers.chain(previous::DEPLOYMENTS.iter().map(|name| ("deployments".to_string(), *name))).collect()
}

fn resource(kind: &str) -> Option<ApiResource> {
    if let Some(info) = crate::kinds::managed().into_iter().find(|k| k.resource.kind == kind) {
        return Some(info.resource);
    }
    let rbac = |plural: &str| ApiResource {
        group: "rbac.authorization.k8s.io".into(),
        version: "v1".into(),
        api_version: "rbac.authorization.k8s.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    match kind {
        "ClusterRole" => Some(rbac("clusterroles")),
        "ClusterRoleBinding" => Some(rbac("clusterrolebindings")),
        "Role" => Some(rbac("roles")),
        "RoleBinding" => Some(rbac("rolebindings")),
        "ServiceAccount" => Some(ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: kind.into(),
            plural: "serviceaccounts".into(),
        }),
        _ => None,
    }
}

fn api(client: &Client, kind: &str, namespace: Option<&str>) -> Option<Api<DynamicObject>> {
    let resource = resource(kind)?;
    Some(match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    })
}

fn split(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, name),
    }
}

/// The merge patch that removes a previous owner's bookkeeping from `live` (`None` when there is none).
fn cleanup_patch(live: &DynamicObject, helm: bool) -> Option<Value> {
    let mut annotations = serde_json::Map::new();
    let mut labels = serde_json::Map::new();
    for key in STALE_ANNOTATIONS {
        if live.annotations().contains_key(key) {
            annotations.insert(key.to_string(), Value::Null);
        }
    }
    if helm && live.annotations().get(HELM_KEEP.0).map(String::as_str) != Some(HELM_KEEP.1) {
        annotations.insert(HELM_KEEP.0.to_string(), json!(HELM_KEEP.1));
    }
    for key in STALE_LABELS {
        if live.labels().contains_key(key) {
            labels.insert(key.to_string(), Value::Null);
        }
    }
    (!annotations.is_empty() || !labels.is_empty())
        .then(|| json!({"metadata": {"annotations": annotations, "labels": labels}}))
}

/// Removes the previous owners' bookkeeping from the objects just taken over.
pub async fn clean(client: &Client, taken: &[&Claimed]) -> Result<usize, Error> {
    let mut cleaned = 0;
    for claimed in taken {
        let (namespace, name) = split(&claimed.name);
        let Some(api) = api(client, &claimed.kind, namespace) else {
            continue;
        };
        let live = match api.get_opt(name).await {
            Ok(Some(live)) => live,
            Ok(None) => continue,
            Err(e) => return Err(api_error(format!("read {} {}", claimed.kind, claimed.name))(e)),
        };
        if let Some(patch) = cleanup_patch(&live, claimed.helm) {
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
            api.patch(name, &params, &Patch::Merge(&patch)).await.map_err(api_error(format!(
                "remove the previous owner's marks from {} {}",
                claimed.kind, claimed.name
            )))?;
            cleaned += 1;
        }
    }
    Ok(cleaned)
}

/// Deletes what the Go operators wrote that the operator does not render (only objects carrying their
/// annotation), and releases KEDA's ServiceAccount from the KedaController they made own it.
pub async fn remove_go_leftovers(client: &Client, namespace: &str) -> Result<Vec<String>, Error> {
    let mut removed = Vec::new();
    for (kind, namespaced, name) in previous::GO_OPERATOR_RBAC {
        let Some(api) = api(client, kind, namespaced.then_some(namespace)) else {
            continue;
        };
        let live = match api.get_opt(name).await {
            Ok(live) => live,
            Err(e) => return Err(api_error(format!("read {kind} {name}"))(e)),
        };
        if !live.is_some_and(|l| l.annotations().contains_key(GO_OPERATOR_ANNOTATION)) {
            continue;
        }
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => removed.push(format!("{kind} {name}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(format!("delete the KEDA OLM operator's {kind} {name}"))(e)),
        }
    }
    // The Go operators made the KedaController own KEDA's ServiceAccount: deleting the KedaController would
    // then delete it, although it is installed with this operator now.
    let account = Component::Operator.service_account();
    if let Some(api) = api(client, "ServiceAccount", Some(namespace))
        && let Ok(Some(live)) = api.get_opt(account).await
        && (live.annotations().contains_key(GO_OPERATOR_ANNOTATION)
            || live.owner_references().iter().any(|o| o.kind == "KedaController"))
    {
        let kept: Vec<_> = live.owner_references().iter().filter(|o| o.kind != "KedaController").cloned().collect();
        let patch = json!({"metadata": {"ownerReferences": kept, "annotations": {GO_OPERATOR_ANNOTATION: null}}});
        let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
        api.patch(account, &params, &Patch::Merge(&patch))
            .await
            .map_err(api_error(format!("release ServiceAccount {namespace}/{account} from the KedaController")))?;
        removed.push(format!("ServiceAccount {account}'s owner reference"));
    }
    Ok(removed)
}

/// Records the namespace of the KEDA being adopted on the KedaController (until its Deployments are gone).
pub async fn record_adoption(client: &Client, kc: &KedaController, from: Option<&str>) -> Result<(), Error> {
    let current = kc.annotations().get(ADOPTED_FROM_ANNOTATION).map(String::as_str);
    if current == from {
        return Ok(());
    }
    let api: Api<KedaController> = Api::namespaced(client.clone(), &kc.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"annotations": {ADOPTED_FROM_ANNOTATION: from}}});
    api.patch(&kc.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(api_error(format!("record the adoption on KedaController {}", kc.name_any())))
}

/// Deletes the adopted KEDA's Deployments in `namespace` (the external metrics API and the webhooks point at
/// ours by now).
pub async fn retire(client: &Client, namespace: &str) -> Result<Vec<String>, Error> {
    let api: Api<k8s_openapi::api::apps::v1::Deployment> = Api::namespaced(client.clone(), namespace);
    let mut removed = Vec::new();
    for name in previous::DEPLOYMENTS {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => removed.push(format!("Deployment {namespace}/{name}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api_error(format!("delete the adopted KEDA's Deployment {namespace}/{name}"))(e)),
        }
    }
    Ok(removed)
}

/// The namespace of an adoption in progress.
pub fn adopted_from(kc: &KedaController) -> Option<&str> {
    kc.annotations().get(ADOPTED_FROM_ANNOTATION).map(String::as_str).filter(|ns| !ns.is_empty())
}

/// An adopted KEDA in another namespace keeps serving the external metrics API and the webhooks until ours
/// serves: the API registrations are held back from `to_apply` until then (and `waiting` says so). Returns
/// the namespace to retire once they can switch.
pub async fn hold_until_ours_serves(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    survey: &Survey,
    to_apply: &mut Desired,
    waiting: &mut Vec<(Component, Vec<String>)>,
) -> Result<Option<String>, Error> {
    let from = survey
        .adopted_namespace()
        .filter(|_| ownership::adoption_requested(kc))
        .or_else(|| adopted_from(kc))
        .map(String::from);
    let Some(from) = from else {
        return Ok(None);
    };
    record_adoption(&ctx.client, kc, Some(&from)).await?;
    let serving = ctx
        .caches
        .managed
        .deployments
        .named(Some(namespace), Component::MetricsServer.deployment_name())
        .and_then(|d| d.status.as_ref().and_then(|s| s.available_replicas))
        .is_some_and(|available| available > 0);
    if serving {
        return Ok(Some(from));
    }
    to_apply.api_services.clear();
    to_apply.validating_webhook_configurations.clear();
    waiting.push((
        Component::MetricsServer,
        vec![format!(
            "its pods, before the external metrics API and the webhooks switch from the KEDA in namespace '{from}'"
        )],
    ));
    Ok(None)
}

/// After our apply claimed them: the previous owners' marks go, the Go operators' leftovers go, and an adopted
/// KEDA elsewhere is retired once the API registrations point at ours (`retire_from`). One event says what
/// was done.
pub async fn complete(
    kc: &KedaController,
    ctx: &Context,
    namespace: &str,
    survey: &Survey,
    retire_from: Option<&str>,
    now: Timestamp,
) -> Result<(), Error> {
    let taken = survey.taken_over(ownership::adoption_requested(kc));
    let mut done = Vec::new();
    if !taken.is_empty() {
        let cleaned = clean(&ctx.client, &taken).await?;
        if cleaned > 0 {
            done.push(format!("took over {} objects of the previous installation", taken.len()));
        }
    }
    if taken.iter().any(|c| c.claim == Claim::GoOperator) {
        let removed = remove_go_leftovers(&ctx.client, namespace).await?;
        if !removed.is_empty() {
            done.push(format!("removed what the KEDA OLM operator left: {}", removed.join(", ")));
        }
    }
    if let Some(from) = retire_from {
        let removed = retire(&ctx.client, from).await?;
        record_adoption(&ctx.client, kc, None).await?;
        done.push(format!(
            "the external metrics API and the webhooks now point at namespace '{namespace}'; removed {}",
            if removed.is_empty() { "nothing (already gone)".to_string() } else { removed.join(", ") }
        ));
    }
    if !done.is_empty() {
        let note = done.join("; ");
        tracing::info!(kedacontroller = %format!("{namespace}/{}", kc.name_any()), "{note}");
        ctx.events.publish(kc, events::Severity::Normal, "TakenOver", &note, now).await;
    }
    Ok(())
}
