//! The part of `audit.k8s.io/v1` an audit policy is made of.
//!
//! The API server does not serve this group, so k8s-openapi has no types for it; these follow the
//! upstream field names and JSON types exactly, so a policy copied from Kubernetes' documentation works.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::rules;

/// One rule of an audit policy: which requests it matches and at which level they are recorded.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Audit level of the matching requests: `None`, `Metadata`, `Request` or `RequestResponse`.
    #[schemars(extend("enum" = rules::AUDIT_LEVELS))]
    pub level: String,

    /// Users the rule applies to; empty means every user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,

    /// Groups the rule applies to; a user matches if it is in any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_groups: Vec<String>,

    /// Verbs the rule applies to; empty means every verb.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbs: Vec<String>,

    /// Resources the rule applies to; empty means every resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<GroupResources>,

    /// Namespaces the rule applies to; `""` matches non-namespaced resources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,

    /// Non-resource URL paths (such as `/metrics`), `*` allowed as a trailing wildcard.
    #[serde(default, rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,

    /// Stages for which this rule records no events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("items" = {"type": "string", "enum": rules::AUDIT_STAGES}))]
    pub omit_stages: Vec<String>,

    /// Omit managed fields for requests matching this rule; overrides the policy-wide setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omit_managed_fields: Option<bool>,
}

/// Resources of one API group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupResources {
    /// API group; `""` is the core group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,

    /// Resources (and `resource/subresource`) of the group; empty means all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,

    /// Names of the matching objects; empty means all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
}

/// An `audit.k8s.io/v1` Policy document as the metrics API server reads it from `--audit-policy-file`.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PolicyDocument<'a> {
    /// Always `audit.k8s.io/v1`.
    pub api_version: &'static str,
    /// Always `Policy`.
    pub kind: &'static str,
    /// The rules, in order.
    pub rules: &'a [PolicyRule],
    /// Stages omitted for every rule.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub omit_stages: &'a [String],
    /// Omit managed fields by default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub omit_managed_fields: bool,
}

impl<'a> PolicyDocument<'a> {
    /// The policy document for a KedaController's audit policy.
    pub fn new(policy: &'a crate::AuditPolicy) -> Self {
        PolicyDocument {
            api_version: "audit.k8s.io/v1",
            kind: "Policy",
            rules: &policy.rules,
            omit_stages: &policy.omit_stages,
            omit_managed_fields: policy.omit_managed_fields,
        }
    }
}
