//! cma-bundle: generates the OLM bundle of cma-operator from the Rust sources and the hand-written bases in
//! `config/`, and validates a bundle against the rules OLM, operator-sdk's validators, OperatorHub and
//! OpenShift enforce.
//!
//! - [`generate`]: `bundle/manifests` (CSV and CRDs), `bundle/metadata/annotations.yaml`,
//!   `bundle/tests/scorecard/config.yaml` and `bundle.Dockerfile`, deterministic so a test can compare them
//!   with the committed files.
//! - [`validate`]: one [`validate::Finding`] per violated rule, each rule with a test that breaks it.
//! - [`rbac`]: the operator's permissions, computed from what it does.
//!
//! The binary is a thin `main` over [`cli`].

pub mod cli;
pub mod dockerfile;
pub mod error;
pub mod files;
pub mod generate;
pub mod rbac;
pub mod release;
pub mod validate;

pub use error::BundleError;

/// The OLM package name.
pub const PACKAGE: &str = cma_api::names::OPERATOR;
/// Name of the operator's Deployment, ServiceAccount, Role and ClusterRole.
pub const OPERATOR_NAME: &str = cma_api::names::OPERATOR;
/// The operator's container in its Deployment.
pub const CONTAINER_NAME: &str = "manager";
/// The namespace suggested to OperatorHub users and used by the manifests in `config/`.
pub const SUGGESTED_NAMESPACE: &str = cma_api::names::SUGGESTED_NAMESPACE;
/// The CSV's file name in `bundle/manifests`.
pub const CSV_FILE: &str = "cma-operator.clusterserviceversion.yaml";
