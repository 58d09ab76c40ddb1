//! cma-operator: installs, configures, heals and upgrades KEDA from one KedaController.
//!
//! The binary is a thin `main` over this library, so tests and `render` run the same code.

pub mod cli;
pub mod platform;
pub mod render;
