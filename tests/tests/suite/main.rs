//! Integration tests of this crate, one binary (each test file used to link its own copy of the whole
//! dependency graph: slower CI links and gigabytes of disk).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod controller;
mod openshift;
mod rbac;
mod takeover;
mod uninstall;
