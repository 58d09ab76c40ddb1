//! Status: computed from what the reconcile did and what the cluster reports, then written only when it
//! changed. Pure: `now` comes from the caller.

use cma_api::{Component, ComponentStatus, KedaControllerStatus, phase};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;

use crate::render::KEDA_VERSION;

/// Condition types.
pub mod condition {
    /// KEDA is installed and every component serves.
    pub const READY: &str = "Ready";
    /// A rollout is under way.
    pub const PROGRESSING: &str = "Progressing";
    /// Something is wrong that needs attention.
    pub const DEGRADED: &str = "Degraded";
}

/// What this reconcile concluded before looking at readiness.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Everything rendered was applied (but what waits for its inputs).
    Applied {
        /// The namespace KEDA is installed in.
        namespace: String,
        /// Components whose Deployment waits for inputs another controller provides, with what is missing.
        waiting: Vec<(Component, Vec<String>)>,
        /// Objects the KedaController names that do not exist.
        missing: Vec<String>,
    },
    /// This KedaController is not the one that installs KEDA.
    Ignored(String),
    /// The spec is invalid; nothing was applied.
    Invalid(String),
    /// Another installation owns the cluster-scoped objects; nothing was applied.
    Blocked(String),
    /// Someone else's KEDA (Helm's, a Go operator's elsewhere) is in the way; nothing was applied.
    Foreign(String),
    /// Applying (or pruning) failed on a named object.
    Failed(String),
}

/// The cluster's view of the installation.
#[derive(Clone, Debug, Default)]
pub struct Observed<'a> {
    /// The three Deployments, when they exist.
    pub deployments: Vec<(Component, Option<&'a Deployment>)>,
    /// The external metrics APIService, when it exists.
    pub api_service: Option<&'a APIService>,
    /// Components whose Deployment this reconcile just wrote: rolling out, whatever the (older) cached
    /// status says.
    pub just_updated: Vec<Component>,
}

/// Readiness of one Deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rollout {
    ready: bool,
    progressing: bool,
    stuck: bool,
    replicas: i32,
    ready_replicas: i32,
    image: String,
    message: Option<String>,
}

fn rollout(deployment: Option<&Deployment>, just_updated: bool) -> Rollout {
    let Some(d) = deployment else {
        return Rollout {
            ready: false,
            progressing: true,
            stuck: false,
            replicas: 0,
            ready_replicas: 0,
            image: String::new(),
            message: Some("the Deployment does not exist yet".into()),
        };
    };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let ready_replicas = status.ready_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let stuck = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"));
    // A rollout completes when every desired pod runs the new template and is available (as the Deployment
    // controller's own NewReplicaSetAvailable): until then the component is progressing.
    let rolled_out = !just_updated && observed && updated >= desired && total <= desired && available >= desired;
    let ready = rolled_out && ready_replicas >= desired;
    let message = if ready {
        None
    } else if stuck {
        Some(format!(
            "rollout stuck: {updated} of {desired} pods updated, {available} available (progress deadline exceeded)"
        ))
    } else if just_updated {
        Some("rolling out: the Deployment was just updated".into())
    } else if !rolled_out {
        Some(format!("rolling out: {updated} of {desired} pods updated, {available} available"))
    } else {
        Some(format!("{ready_replicas} of {desired} pods ready"))
    };
    let image = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    Rollout { ready, progressing: !rolled_out, stuck, replicas: desired, ready_replicas, image, message }
}

fn api_service_available(api_service: Option<&APIService>) -> (bool, String) {
    let Some(api) = api_service else {
        return (false, "APIService v1beta1.external.metrics.k8s.io does not exist yet".into());
    };
    let condition =
        api.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Available"));
    match condition {
        Some(c) if c.status == "True" => (true, String::new()),
        Some(c) => (
            false,
            format!(
                "APIService v1beta1.external.metrics.k8s.io is not available: {}",
                c.message.clone().or(c.reason.clone()).unwrap_or_default()
            ),
        ),
        None => (false, "APIService v1beta1.external.metrics.k8s.io has not reported availability yet".into()),
    }
}

/// The status to write: conditions keep their `lastTransitionTime` when their status did not change.
pub fn compute(
    previous: Option<&KedaControllerStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    observed: &Observed<'_>,
    now: Timestamp,
) -> KedaControllerStatus {
    let mut status = KedaControllerStatus { observed_generation: generation, ..KedaControllerStatus::default() };
    let (ready, progressing, degraded) = match outcome {
        Outcome::Ignored(why) => {
            status.phase = Some(phase::IGNORED.into());
            status.reason = Some(why.clone());
            (
                cond(condition::READY, false, "Ignored", why),
                cond(condition::PROGRESSING, false, "Ignored", "this KedaController does not install KEDA"),
                cond(condition::DEGRADED, false, "Ignored", "this KedaController does not install KEDA"),
            )
        }
        Outcome::Invalid(why) | Outcome::Blocked(why) | Outcome::Foreign(why) | Outcome::Failed(why) => {
            // What runs keeps running: the version is the one last rolled out.
            status.version = previous.and_then(|p| p.version.clone());
            let reason = match outcome {
                Outcome::Invalid(_) => "InvalidSpec",
                Outcome::Blocked(_) => "AnotherInstallation",
                Outcome::Foreign(_) => super::ownership::FOREIGN_INSTALLATION,
                _ => "ApplyFailed",
            };
            status.phase = Some(phase::FAILED.into());
            status.reason = Some(why.clone());
            let (components, all_ready, _, _) = components(observed);
            status.components = components;
            // When the install failed but what was installed earlier still runs, Ready says so.
            let ready_message = if all_ready {
                format!("{why} (the components installed earlier are still running)")
            } else {
                why.clone()
            };
            (
                cond(condition::READY, false, reason, &ready_message),
                cond(condition::PROGRESSING, false, reason, "the last reconcile did not complete"),
                cond(condition::DEGRADED, true, reason, why),
            )
        }
        Outcome::Applied { namespace, waiting, missing } => {
            let version = previous.and_then(|p| p.version.clone());
            applied(&mut status, version, namespace, waiting, missing, observed)
        }
    };
    status.conditions = [ready, progressing, degraded]
        .into_iter()
        .map(|c| keep_transition_time(c, previous, generation, now))
        .collect();
    status
}

/// Conditions of an applied installation. `version` (what ran before) becomes this release's version once
/// every component has rolled it out.
fn applied(
    status: &mut KedaControllerStatus,
    version: Option<String>,
    namespace: &str,
    waiting: &[(Component, Vec<String>)],
    missing: &[String],
    observed: &Observed<'_>,
) -> (Condition, Condition, Condition) {
    let (mut components, all_rolled_out, any_progressing, stuck) = components(observed);
    for (component, inputs) in waiting {
        if let Some(c) = components.iter_mut().find(|c| c.name == component.field()) {
            c.ready = false;
            c.message = Some(format!("waiting for {}", inputs.join(", ")));
        }
    }
    let all_ready = all_rolled_out && waiting.is_empty();
    status.components = components;
    status.version = if all_ready { Some(KEDA_VERSION.into()) } else { version };
    let (api_ok, api_message) = api_service_available(observed.api_service);

    let degraded = if !missing.is_empty() {
        let message = format!("objects the KedaController names do not exist: {}", missing.join("; "));
        status.phase = Some(phase::FAILED.into());
        status.reason = Some(message.clone());
        cond(condition::DEGRADED, true, "MissingReference", &message)
    } else {
        status.phase = Some(phase::SUCCEEDED.into());
        status.reason = Some(format!("KEDA v{KEDA_VERSION} is installed in namespace '{namespace}'"));
        match &stuck {
            Some(message) => cond(condition::DEGRADED, true, "RolloutStuck", message),
            None => cond(condition::DEGRADED, false, "AsExpected", "all objects applied"),
        }
    };

    let ready = if all_ready && api_ok {
        cond(condition::READY, true, "Installed", &format!("KEDA {KEDA_VERSION} is installed and serving"))
    } else {
        let not_ready: Vec<String> = status
            .components
            .iter()
            .filter(|c| !c.ready)
            .map(|c| format!("{}: {}", c.name, c.message.clone().unwrap_or_default()))
            .chain((!api_ok).then_some(api_message))
            .collect();
        let message =
            if not_ready.is_empty() { "see the Degraded condition".to_string() } else { not_ready.join("; ") };
        cond(condition::READY, false, "ComponentsNotReady", &message)
    };
    let progressing = if !waiting.is_empty() {
        let what: Vec<String> =
            waiting.iter().map(|(c, inputs)| format!("{} waits for {}", c.field(), inputs.join(", "))).collect();
        cond(condition::PROGRESSING, true, "WaitingForInputs", &what.join("; "))
    } else if any_progressing {
        let rolling: Vec<&str> = status.components.iter().filter(|c| !c.ready).map(|c| c.name.as_str()).collect();
        cond(condition::PROGRESSING, true, "RollingOut", &format!("rolling out: {}", rolling.join(", ")))
    } else {
        cond(condition::PROGRESSING, false, "Stable", "every component runs its desired version")
    };
    (ready, progressing, degraded)
}

/// Component statuses, whether all are ready, whether any is rolling out, and a stuck rollout's message.
fn components(observed: &Observed<'_>) -> (Vec<ComponentStatus>, bool, bool, Option<String>) {
    let mut out = Vec::new();
    let mut all_ready = !observed.deployments.is_empty();
    let mut any_progressing = false;
    let mut stuck = None;
    for (component, deployment) in &observed.deployments {
        let r = rollout(*deployment, observed.just_updated.contains(component));
        all_ready &= r.ready;
        any_progressing |= r.progressing;
        if r.stuck && stuck.is_none() {
            stuck = Some(format!("{}: {}", component.field(), r.message.clone().unwrap_or_default()));
        }
        out.push(ComponentStatus {
            name: component.field().into(),
            ready: r.ready,
            replicas: r.replicas,
            ready_replicas: r.ready_replicas,
            image: r.image,
            message: r.message,
        });
    }
    (out, all_ready, any_progressing, stuck)
}

fn cond(type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
        observed_generation: None,
    }
}

fn keep_transition_time(
    mut condition: Condition,
    previous: Option<&KedaControllerStatus>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    condition.observed_generation = generation;
    let before = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == condition.type_));
    condition.last_transition_time = match before {
        Some(b) if b.status == condition.status => b.last_transition_time.clone(),
        _ => Time(now),
    };
    condition
}

/// Whether two statuses differ in anything but the transition times (which follow from the rest).
pub fn differs(a: Option<&KedaControllerStatus>, b: &KedaControllerStatus) -> bool {
    let Some(a) = a else { return true };
    let strip = |s: &KedaControllerStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = Time(Timestamp::UNIX_EPOCH);
        }
        s
    };
    strip(a) != strip(b)
}

/// Writes the status when it differs from what the object carries (ignoring transition times).
pub async fn write(
    client: &kube::Client,
    kc: &cma_api::KedaController,
    status: KedaControllerStatus,
) -> Result<(), super::Error> {
    use kube::ResourceExt;
    use kube::api::{Api, Patch, PatchParams};
    if !differs(kc.status.as_ref(), &status) {
        return Ok(());
    }
    let mut body = serde_json::to_value(&status).map_err(|e| {
        super::Error::Render(crate::render::RenderError::Serialize {
            what: "the status".into(),
            message: e.to_string(),
        })
    })?;
    // A merge patch only removes what it names: clear every field this status leaves out.
    if let serde_json::Value::Object(map) = &mut body {
        for field in ["phase", "reason", "version", "observedGeneration", "conditions", "components"] {
            map.entry(field).or_insert(serde_json::Value::Null);
        }
    }
    let api: Api<cma_api::KedaController> = Api::namespaced(client.clone(), &kc.namespace().unwrap_or_default());
    match api
        .patch_status(&kc.name_any(), &PatchParams::default(), &Patch::Merge(&serde_json::json!({ "status": body })))
        .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile: there is no status left to tell.
        Err(e) if super::apply::is_not_found(&e) => Ok(()),
        Err(e) => Err(super::api_error(format!("write the status of KedaController {}", kc.name_any()))(e)),
    }
}
