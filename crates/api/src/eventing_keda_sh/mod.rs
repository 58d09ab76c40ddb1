//! KEDA's eventing API group `eventing.keda.sh/v1alpha1`: CloudEventSource and ClusterCloudEventSource,
//! which send KEDA's CloudEvents (ScaledObject ready, failed, paused, ...) to a sink.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::keda_sh::{AuthenticationRef, Condition};

/// API group of the kinds in this module.
pub const GROUP: &str = "eventing.keda.sh";
/// API version of the kinds in this module.
pub const VERSION: &str = "v1alpha1";

/// Where KEDA's CloudEvents go and which ones are sent.
// Printer columns repeat `type_ = ...` within `#[kube]`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "eventing.keda.sh",
    version = "v1alpha1",
    kind = "CloudEventSource",
    plural = "cloudeventsources",
    singular = "cloudeventsource",
    namespaced,
    status = "CloudEventSourceStatus",
    doc = "CloudEventSource sends KEDA's events about the objects of its namespace to a sink.",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Active", type_ = "string", json_path = ".status.conditions[?(@.type==\"Active\")].status")
)]
#[serde(rename_all = "camelCase")]
pub struct CloudEventSourceSpec {
    /// Cluster name put in the events' source (default: KEDA's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// Sink of the events.
    pub destination: Destination,
    /// Authentication towards the sink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
    /// Which event types are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_subscription: Option<EventSubscription>,
}

/// Cluster-wide sink of KEDA's CloudEvents, for objects in every namespace.
// Printer columns repeat `type_ = ...` within `#[kube]`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "eventing.keda.sh",
    version = "v1alpha1",
    kind = "ClusterCloudEventSource",
    plural = "clustercloudeventsources",
    singular = "clustercloudeventsource",
    status = "CloudEventSourceStatus",
    doc = "ClusterCloudEventSource sends KEDA's events about objects in all namespaces to a sink.",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Active", type_ = "string", json_path = ".status.conditions[?(@.type==\"Active\")].status")
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterCloudEventSourceSpec(pub CloudEventSourceSpec);

impl std::ops::Deref for ClusterCloudEventSourceSpec {
    type Target = CloudEventSourceSpec;
    fn deref(&self) -> &CloudEventSourceSpec {
        &self.0
    }
}

impl std::ops::DerefMut for ClusterCloudEventSourceSpec {
    fn deref_mut(&mut self) -> &mut CloudEventSourceSpec {
        &mut self.0
    }
}

impl From<CloudEventSourceSpec> for ClusterCloudEventSourceSpec {
    fn from(spec: CloudEventSourceSpec) -> Self {
        Self(spec)
    }
}

/// Sinks KEDA can send CloudEvents to; set one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// An HTTP endpoint receiving CloudEvents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpDestination>,
    /// An Azure Event Grid topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_event_grid_topic: Option<AzureEventGridTopicDestination>,
}

/// HTTP sink.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpDestination {
    /// URI events are POSTed to.
    pub uri: String,
}

/// Azure Event Grid sink.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureEventGridTopicDestination {
    /// Topic endpoint.
    pub endpoint: String,
}

/// Event type filters; with neither list every type is sent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventSubscription {
    /// Only these types are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub included_event_types: Option<Vec<CloudEventType>>,
    /// These types are not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded_event_types: Option<Vec<CloudEventType>>,
}

/// The CloudEvent types KEDA emits.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CloudEventType {
    /// A ScaledObject became ready.
    #[serde(rename = "keda.scaledobject.ready.v1")]
    ScaledObjectReady,
    /// A ScaledObject failed.
    #[serde(rename = "keda.scaledobject.failed.v1")]
    ScaledObjectFailed,
    /// A ScaledObject was removed.
    #[serde(rename = "keda.scaledobject.removed.v1")]
    ScaledObjectRemoved,
    /// A ScaledObject was paused.
    #[serde(rename = "keda.scaledobject.paused.v1")]
    ScaledObjectPaused,
    /// A ScaledObject was unpaused.
    #[serde(rename = "keda.scaledobject.unpaused.v1")]
    ScaledObjectUnpaused,
    /// A ScaledJob became ready.
    #[serde(rename = "keda.scaledjob.ready.v1")]
    ScaledJobReady,
    /// A ScaledJob failed.
    #[serde(rename = "keda.scaledjob.failed.v1")]
    ScaledJobFailed,
    /// A ScaledJob was removed.
    #[serde(rename = "keda.scaledjob.removed.v1")]
    ScaledJobRemoved,
    /// A ScaledJob was paused.
    #[serde(rename = "keda.scaledjob.paused.v1")]
    ScaledJobPaused,
    /// A ScaledJob was unpaused.
    #[serde(rename = "keda.scaledjob.unpaused.v1")]
    ScaledJobUnpaused,
    /// Cleanup of a ScaledJob rollout started.
    #[serde(rename = "keda.scaledjob.rolloutcleanup.started.v1")]
    ScaledJobRolloutCleanupStarted,
    /// Cleanup of a ScaledJob rollout completed.
    #[serde(rename = "keda.scaledjob.rolloutcleanup.completed.v1")]
    ScaledJobRolloutCleanupCompleted,
    /// Cleanup of a ScaledJob rollout failed.
    #[serde(rename = "keda.scaledjob.rolloutcleanup.failed.v1")]
    ScaledJobRolloutCleanupFailed,
    /// A TriggerAuthentication was created.
    #[serde(rename = "keda.authentication.triggerauthentication.created.v1")]
    TriggerAuthenticationCreated,
    /// A TriggerAuthentication was updated.
    #[serde(rename = "keda.authentication.triggerauthentication.updated.v1")]
    TriggerAuthenticationUpdated,
    /// A TriggerAuthentication was removed.
    #[serde(rename = "keda.authentication.triggerauthentication.removed.v1")]
    TriggerAuthenticationRemoved,
    /// A ClusterTriggerAuthentication was created.
    #[serde(rename = "keda.authentication.clustertriggerauthentication.created.v1")]
    ClusterTriggerAuthenticationCreated,
    /// A ClusterTriggerAuthentication was updated.
    #[serde(rename = "keda.authentication.clustertriggerauthentication.updated.v1")]
    ClusterTriggerAuthenticationUpdated,
    /// A ClusterTriggerAuthentication was removed.
    #[serde(rename = "keda.authentication.clustertriggerauthentication.removed.v1")]
    ClusterTriggerAuthenticationRemoved,
}

/// What KEDA observed of a (Cluster)CloudEventSource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudEventSourceStatus {
    /// Active condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}
