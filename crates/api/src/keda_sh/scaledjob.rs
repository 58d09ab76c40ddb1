//! `ScaledJob`: runs Kubernetes Jobs in proportion to pending events.
//!
//! Upstream's CRD leaves `spec` optional at the root, and so does ours; the Rust type needs one (a ScaledJob
//! without a Job template and triggers cannot run anything), so such an object does not load into [`ScaledJob`].

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{AuthenticationRef, Condition, TriggerActivityStatus};

/// How KEDA runs Jobs for events: the Job template, the bounds and the triggers.
// Printer columns repeat `type_ = ...` within `#[kube]`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledJob",
    plural = "scaledjobs",
    singular = "scaledjob",
    namespaced,
    status = "ScaledJobStatus",
    shortname = "sj",
    doc = "ScaledJob runs Kubernetes Jobs in proportion to the events waiting in a source.",
    derive = "PartialEq",
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.minReplicaCount"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.maxReplicaCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Active", type_ = "string", json_path = ".status.conditions[?(@.type==\"Active\")].status"),
    printcolumn(name = "Paused", type_ = "string", json_path = ".status.conditions[?(@.type==\"Paused\")].status"),
    printcolumn(name = "Triggers", type_ = "string", json_path = ".status.triggersTypes"),
    printcolumn(name = "Authentications", type_ = "string", json_path = ".status.authenticationsTypes"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobSpec {
    /// The Job each event batch starts (batch/v1 JobSpec).
    #[schemars(transform = super::schema::job_spec)]
    pub job_target_ref: JobSpec,

    /// Seconds between two checks of the triggers (KEDA default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub polling_interval: Option<i32>,

    /// Finished Jobs kept (KEDA default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub successful_jobs_history_limit: Option<i32>,

    /// Failed Jobs kept (KEDA default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub failed_jobs_history_limit: Option<i32>,

    /// Container whose environment resolves trigger parameters (default the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,

    /// Lowest number of Jobs (KEDA default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,

    /// Highest number of Jobs (KEDA default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replica_count: Option<i32>,

    /// Deprecated: use `rollout.strategy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<RolloutStrategy>,

    /// What happens to running Jobs when the ScaledJob changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,

    /// How the number of Jobs to start is computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_strategy: Option<ScalingStrategy>,

    /// The event sources.
    #[schemars(length(min = 1))]
    pub triggers: Vec<JobTrigger>,
}

/// One event source of a ScaledJob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTrigger {
    /// Scaler type, e.g. rabbitmq, aws-sqs-queue.
    #[serde(rename = "type")]
    #[schemars(length(min = 1))]
    pub type_: String,
    /// Name of the trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Scaler parameters.
    pub metadata: BTreeMap<String, String>,
    /// Authentication of the scaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
    /// Metric target type: Value, AverageValue or Utilization (KEDA shares the trigger type with ScaledObject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
    /// Serve the metric from KEDA's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cached_metrics: Option<bool>,
}

/// What happens to running Jobs when the ScaledJob is updated.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RolloutStrategy {
    /// Let running Jobs finish.
    Gradual,
    /// Delete running Jobs (KEDA's default).
    Immediate,
}

/// How Jobs deleted by an immediate rollout are deleted.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PropagationPolicy {
    /// Delete the pods before the Job.
    Foreground,
    /// Delete the Job and let the garbage collector delete the pods.
    Background,
}

/// Rollout of ScaledJob changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Gradual or immediate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RolloutStrategy>,
    /// Deletion propagation of replaced Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation_policy: Option<PropagationPolicy>,
}

/// Scaling strategy of a ScaledJob.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum JobScalingStrategy {
    /// The default strategy, written out (KEDA 2.20.2 accepts it as well as leaving the field unset).
    Default,
    /// Tuned by customScalingQueueLengthDeduction and customScalingRunningJobPercentage.
    Custom,
    /// Accounts for pending Jobs when the queue does not include in-flight messages.
    Accurate,
    /// Uses every free slot up to maxReplicaCount.
    Eager,
}

/// How several triggers' values are combined.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MultipleScalersCalculation {
    /// Smallest value.
    Min,
    /// Average.
    Avg,
    /// Sum.
    Sum,
    /// Largest value (KEDA's default).
    Max,
}

/// How the number of Jobs to start is computed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingStrategy {
    /// default (also when unset), custom, accurate or eager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<JobScalingStrategy>,
    /// custom: subtracted from the queue length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_queue_length_deduction: Option<i32>,
    /// custom: share of running Jobs subtracted, as a decimal string such as "0.5".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_scaling_running_job_percentage: Option<String>,
    /// Pod conditions that count a Job as pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_pod_conditions: Option<Vec<String>>,
    /// How several triggers' values are combined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiple_scalers_calculation: Option<MultipleScalersCalculation>,
}

/// What KEDA observed of a ScaledJob.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaledJobStatus {
    /// When a trigger was last active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<Time>,
    /// Ready, Active and Paused conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Whether the ScaledJob is paused; KEDA writes this field with a capital P.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "Paused")]
    pub paused: Option<String>,
    /// Comma-separated trigger types (printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_types: Option<String>,
    /// Comma-separated authentication names (printer column).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentications_types: Option<String>,
    /// External metric names of the triggers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_metric_names: Option<Vec<String>>,
    /// Activity of each trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_activity: Option<BTreeMap<String, TriggerActivityStatus>>,
}
