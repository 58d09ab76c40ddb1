//! Pieces shared by several KEDA kinds: trigger authentication references, conditions, secret references.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kind an `authenticationRef` points to; TriggerAuthentication when unset.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum AuthenticationKind {
    /// A TriggerAuthentication in the namespace of the referring object (KEDA's default).
    #[default]
    TriggerAuthentication,
    /// A cluster-scoped ClusterTriggerAuthentication.
    ClusterTriggerAuthentication,
}

/// Reference to the (Cluster)TriggerAuthentication a trigger or event source authenticates with.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRef {
    /// Name of the TriggerAuthentication or ClusterTriggerAuthentication.
    pub name: String,
    /// Kind referred to; TriggerAuthentication when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<AuthenticationKind>,
}

/// A condition as KEDA reports it (type and status, with an optional reason and message).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. Ready, Active, Fallback, Paused.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// Machine-readable reason of the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail of the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Activity of one trigger, as KEDA last observed it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerActivityStatus {
    /// Whether the trigger is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_active: Option<bool>,
}

/// A key of a Secret in the namespace of the authentication object (or KEDA's for cluster-scoped ones).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key within the Secret.
    pub key: String,
}

/// Where a value comes from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSecret {
    /// The Secret key holding the value.
    pub secret_key_ref: SecretKeyRef,
}

/// A credential read from a Secret key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretValue {
    /// Source of the value.
    pub value_from: ValueFromSecret,
}
