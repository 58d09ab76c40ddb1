//! cma-operator: installs, configures, heals and upgrades KEDA from one KedaController.
//!
//! The binary is a thin `main` over this library, so tests and `render` run the same code.

pub mod caches;
pub mod certs;
pub mod client;
pub mod cli;
pub mod context;
pub mod controller;
pub mod kinds;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod metrics_access;
pub mod platform;
pub mod reconcile;
pub mod render;
pub mod server;
