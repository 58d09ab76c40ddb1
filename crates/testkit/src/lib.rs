//! Test support for cma-operator: a real Kubernetes control plane for tests ([`cluster`]: etcd,
//! kube-apiserver and kube-controller-manager on loopback, a test kubelet that runs pods and serves their logs,
//! a service-ca player, an external metrics API stand-in, the audit log, injected faults), and TLS helpers for
//! tests of HTTPS endpoints ([`tls`]).
//!
//! The real API server is the authority on what the cluster does: tests assert against it, never against a
//! model of it.

pub mod cluster;
pub mod tls;
