//! cma-operator: installs, configures, heals and upgrades KEDA from one KedaController.
//!
//! The binary is a thin `main` over this library, so tests and `render` run the same code.

pub mod caches;
pub mod certs;
pub mod cli;
pub mod client;
pub mod context;
pub mod controller;
pub mod errors;
pub mod events;
pub mod kinds;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod metrics_access;
pub mod metrics_cert;
pub mod platform;
pub mod reconcile;
pub mod render;
pub mod server;
pub mod uninstall;

/// The User-Agent of the operator's requests to the API server: `cma-operator/<version>`.
pub const USER_AGENT: &str = concat!("cma-operator/", env!("CARGO_PKG_VERSION"));
