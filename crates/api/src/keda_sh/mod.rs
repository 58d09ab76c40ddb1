//! KEDA's own API group `keda.sh/v1alpha1`: ScaledObject, ScaledJob, TriggerAuthentication and
//! ClusterTriggerAuthentication, as the KEDA 2.20 images read them.
//!
//! Field names, JSON types, required fields, enums and defaults follow KEDA 2.20's CRDs; the pinned facts live
//! in `crates/api/tests/upstream/keda-2.20.fingerprint` and are checked by `tests/suite/upstream_fingerprint.rs`.

mod common;
mod scaledjob;
mod scaledobject;
pub mod schema;
mod triggerauthentication;

pub use common::*;
pub use scaledjob::*;
pub use scaledobject::*;
pub use triggerauthentication::*;

/// API group of the kinds in this module.
pub const GROUP: &str = "keda.sh";
/// API version of the kinds in this module.
pub const VERSION: &str = "v1alpha1";
