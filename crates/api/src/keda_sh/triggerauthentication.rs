//! `TriggerAuthentication` and `ClusterTriggerAuthentication`: where scalers get their credentials.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::SecretValue;

/// Where scalers referring to this object get their credentials from; sources can be combined.
// Printer columns repeat `type_ = ...` within `#[kube]`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "TriggerAuthentication",
    plural = "triggerauthentications",
    singular = "triggerauthentication",
    namespaced,
    status = "TriggerAuthenticationStatus",
    shortname = "ta",
    shortname = "triggerauth",
    doc = "TriggerAuthentication tells the scalers of its namespace where to find their credentials.",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "PodIdentity", type_ = "string", json_path = ".spec.podIdentity.provider"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretTargetRef[*].name"),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.env[*].name"),
    printcolumn(name = "VaultAddress", type_ = "string", json_path = ".spec.hashiCorpVault.address"),
    printcolumn(name = "ScaledObjects", type_ = "string", json_path = ".status.scaledobjects", priority = 1),
    printcolumn(name = "ScaledJobs", type_ = "string", json_path = ".status.scaledjobs", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAuthenticationSpec {
    /// Platform identity of the KEDA operator or of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,

    /// Parameters read from Secret keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_target_ref: Option<Vec<AuthTargetRef>>,

    /// Parameters read from ConfigMap keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_target_ref: Option<Vec<AuthTargetRef>>,

    /// Parameters read from the scale target's container environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<AuthEnvironment>>,

    /// File with the parameters as a JSON object of strings (ClusterTriggerAuthentication only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,

    /// Parameters read from HashiCorp Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashi_corp_vault: Option<HashiCorpVault>,

    /// Parameters read from Azure Key Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_key_vault: Option<AzureKeyVault>,

    /// Parameters read from GCP Secret Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp_secret_manager: Option<GcpSecretManager>,

    /// Parameters read from AWS Secrets Manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_secret_manager: Option<AwsSecretManager>,

    /// Parameters holding bound tokens of ServiceAccounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_service_account_token: Option<Vec<BoundServiceAccountToken>>,

    /// A bearer token obtained with OAuth2 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
}

/// Which objects use a (Cluster)TriggerAuthentication.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerAuthenticationStatus {
    /// Comma-separated ScaledObject names.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "scaledobjects")]
    pub scaled_objects: Option<String>,
    /// Comma-separated ScaledJob names.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "scaledjobs")]
    pub scaled_jobs: Option<String>,
}

/// Cluster-wide credentials for scalers in any namespace; Secrets are read from KEDA's namespace.
// Printer columns repeat `type_ = ...` within `#[kube]`, which clippy takes for duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ClusterTriggerAuthentication",
    plural = "clustertriggerauthentications",
    singular = "clustertriggerauthentication",
    status = "TriggerAuthenticationStatus",
    shortname = "cta",
    shortname = "clustertriggerauth",
    doc = "ClusterTriggerAuthentication tells scalers in any namespace where to find their credentials.",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "PodIdentity", type_ = "string", json_path = ".spec.podIdentity.provider"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretTargetRef[*].name"),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.env[*].name"),
    printcolumn(name = "FilePath", type_ = "string", json_path = ".spec.filePath"),
    printcolumn(name = "VaultAddress", type_ = "string", json_path = ".spec.hashiCorpVault.address"),
    printcolumn(name = "ScaledObjects", type_ = "string", json_path = ".status.scaledobjects", priority = 1),
    printcolumn(name = "ScaledJobs", type_ = "string", json_path = ".status.scaledjobs", priority = 1)
)]
#[serde(transparent)]
#[schemars(transparent)]
pub struct ClusterTriggerAuthenticationSpec(pub TriggerAuthenticationSpec);

impl std::ops::Deref for ClusterTriggerAuthenticationSpec {
    type Target = TriggerAuthenticationSpec;
    fn deref(&self) -> &TriggerAuthenticationSpec {
        &self.0
    }
}

impl std::ops::DerefMut for ClusterTriggerAuthenticationSpec {
    fn deref_mut(&mut self) -> &mut TriggerAuthenticationSpec {
        &mut self.0
    }
}

impl From<TriggerAuthenticationSpec> for ClusterTriggerAuthenticationSpec {
    fn from(spec: TriggerAuthenticationSpec) -> Self {
        Self(spec)
    }
}

/// Platform identity providers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum PodIdentityProvider {
    /// Azure Workload Identity.
    #[serde(rename = "azure-workload")]
    AzureWorkload,
    /// GCP Workload Identity.
    #[serde(rename = "gcp")]
    Gcp,
    /// AWS IAM role (IRSA or EKS Pod Identity).
    #[serde(rename = "aws")]
    Aws,
    /// AWS IAM role from the workload's ServiceAccount (deprecated in favour of aws).
    #[serde(rename = "aws-eks")]
    AwsEks,
    /// No identity.
    #[default]
    #[serde(rename = "none")]
    None,
}

/// Whose identity is used when the role is discovered.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum IdentityOwner {
    /// The KEDA operator's.
    Keda,
    /// The scaled workload's.
    Workload,
}

/// Platform identity used to reach the event source.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPodIdentity {
    /// Identity provider.
    pub provider: PodIdentityProvider,
    /// Azure: client id of the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<String>,
    /// Azure: tenant overriding the default (needs identityId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_tenant_id: Option<String>,
    /// Azure: authority host overriding the default (needs identityTenantId).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_authority_host: Option<String>,
    /// AWS: role to assume; excludes identityOwner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// AWS: external id used when assuming roleArn.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "externalID")]
    pub external_id: Option<String>,
    /// AWS: keda or workload; excludes roleArn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_owner: Option<IdentityOwner>,
}

/// A parameter read from a key of a Secret or ConfigMap.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthTargetRef {
    /// Trigger parameter set.
    pub parameter: String,
    /// Secret or ConfigMap name.
    pub name: String,
    /// Key within it.
    pub key: String,
}

/// A parameter read from an environment variable of the scale target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthEnvironment {
    /// Trigger parameter set.
    pub parameter: String,
    /// Environment variable name.
    pub name: String,
    /// Container (default envSourceContainerName of the scaled object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// Vault authentication methods.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum VaultAuthentication {
    /// A Vault token.
    #[default]
    Token,
    /// Kubernetes ServiceAccount login.
    Kubernetes,
}

/// Parameters read from HashiCorp Vault.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HashiCorpVault {
    /// Vault address.
    pub address: String,
    /// token or kubernetes.
    pub authentication: VaultAuthentication,
    /// Secrets read.
    #[schemars(length(min = 1))]
    pub secrets: Vec<VaultSecret>,
    /// Vault Enterprise namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Credentials of the authentication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<VaultCredential>,
    /// Role for kubernetes authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Mount path of the kubernetes auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
}

/// Credentials for Vault.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultCredential {
    /// Vault token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Path of a ServiceAccount token file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// ServiceAccount whose bound token is requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// Vault secret engines KEDA reads.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum VaultSecretType {
    /// Generic read of the path.
    #[serde(rename = "")]
    Generic,
    /// KV version 2.
    #[serde(rename = "secretV2")]
    SecretV2,
    /// KV version 1.
    #[serde(rename = "secret")]
    Secret,
    /// PKI certificate issuance.
    #[serde(rename = "pki")]
    Pki,
}

/// A Vault secret mapped to a trigger parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultSecret {
    /// Trigger parameter set.
    pub parameter: String,
    /// Secret path.
    pub path: String,
    /// Key within the secret.
    pub key: String,
    /// Secret engine type.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<VaultSecretType>,
    /// Certificate request for the pki type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pki_data: Option<VaultPkiData>,
}

/// Certificate request sent to a Vault PKI engine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultPkiData {
    /// Common name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_names: Option<String>,
    /// IP subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_sans: Option<String>,
    /// URI subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri_sans: Option<String>,
    /// Other subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_sans: Option<String>,
    /// Requested lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Encoding (pem, der, pem_bundle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// Parameters read from Azure Key Vault.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVault {
    /// Vault URI.
    pub vault_uri: String,
    /// Secrets read.
    #[schemars(length(min = 1))]
    pub secrets: Vec<AzureKeyVaultSecret>,
    /// Service principal credentials (when not using pod identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AzureKeyVaultCredentials>,
    /// Pod identity used to read the vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
    /// Azure cloud of the vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<AzureKeyVaultCloud>,
}

/// Service principal used to read Azure Key Vault.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCredentials {
    /// Application (client) id.
    pub client_id: String,
    /// Directory (tenant) id.
    pub tenant_id: String,
    /// Client secret.
    pub client_secret: SecretValue,
}

/// An Azure Key Vault secret mapped to a trigger parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultSecret {
    /// Trigger parameter set.
    pub parameter: String,
    /// Secret name.
    pub name: String,
    /// Secret version (default latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Azure cloud of a Key Vault.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultCloud {
    /// AzurePublicCloud, AzureUSGovernmentCloud, AzureChinaCloud, AzureGermanCloud or Private.
    #[serde(rename = "type")]
    pub type_: String,
    /// Private: Key Vault resource URL.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "keyVaultResourceURL")]
    pub key_vault_resource_url: Option<String>,
    /// Private: Active Directory endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_directory_endpoint: Option<String>,
}

/// Parameters read from GCP Secret Manager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretManager {
    /// Secrets read.
    #[schemars(length(min = 1))]
    pub secrets: Vec<GcpSecretManagerSecret>,
    /// Service account key (when not using pod identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<GcpCredentials>,
    /// Pod identity used to read the secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
}

/// Service account key for GCP Secret Manager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpCredentials {
    /// Service account key JSON.
    pub client_secret: SecretValue,
}

/// A GCP secret mapped to a trigger parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GcpSecretManagerSecret {
    /// Trigger parameter set.
    pub parameter: String,
    /// Secret id.
    pub id: String,
    /// Secret version (default latest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Parameters read from AWS Secrets Manager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManager {
    /// Secrets read.
    #[schemars(length(min = 1))]
    pub secrets: Vec<AwsSecretManagerSecret>,
    /// Access keys (when not using pod identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AwsCredentials>,
    /// Pod identity used to read the secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_identity: Option<AuthPodIdentity>,
    /// AWS region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// AWS access keys read from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key: SecretValue,
    /// Secret access key.
    pub access_secret_key: SecretValue,
    /// Session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<SecretValue>,
}

/// An AWS secret mapped to a trigger parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsSecretManagerSecret {
    /// Trigger parameter set.
    pub parameter: String,
    /// Secret name.
    pub name: String,
    /// Secret version id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Secret version stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    /// Key within a JSON secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

/// A parameter holding a token bound to a ServiceAccount.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BoundServiceAccountToken {
    /// Trigger parameter set.
    pub parameter: String,
    /// ServiceAccount in the namespace of the authentication object.
    pub service_account_name: String,
}

/// OAuth2 grant types.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OAuth2GrantType {
    /// Client credentials grant.
    #[default]
    ClientCredentials,
}

/// OAuth2 client credentials obtaining a bearer token for the scaler.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2 {
    /// Grant type; the API server sets clientCredentials when it is omitted.
    #[serde(rename = "type")]
    #[schemars(extend("default" = "clientCredentials"))]
    pub type_: OAuth2GrantType,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretValue>,
    /// Token endpoint.
    pub token_url: String,
    /// Scopes requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Extra form parameters of the token request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url_params: Option<BTreeMap<String, String>>,
}
