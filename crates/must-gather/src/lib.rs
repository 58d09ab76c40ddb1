//! cma-must-gather: collects everything support needs about cma-operator and KEDA, redacts every secret,
//! and writes it in the layout of `oc adm inspect`, plus `must-gather.tar.gz`.
//!
//! ```text
//! version                       cma-operator / the installed CSV version
//! timestamp                     start and end of the run
//! gather-debug.log              every request, its duration and its outcome
//! redactions.txt                what was redacted where (never the value)
//! namespaces/<ns>/...           the operator namespace(s), KEDA resources of every namespace, KEDA's HPAs and Jobs
//! cluster-scoped-resources/...  CRDs, APIService, webhook configuration, cluster RBAC, (Cluster)TriggerAuthentications...
//! apis/external.metrics.k8s.io/v1beta1.json   what the external metrics API answers
//! must-gather.tar.gz            all of the above (with --archive)
//! ```
//!
//! [`gather::gather`] runs it with any `kube::Client` (the tests run it against a real kube-apiserver, started
//! by `cma_testkit::cluster`).

pub mod archive;
pub mod certs;
pub mod cli;
pub mod collect;
pub mod fetch;
pub mod gather;
pub mod layout;
pub mod logs;
pub mod options;
pub mod output;
pub mod redact;

pub use gather::{GatherError, Outcome, Summary, gather};
pub use options::{LogSince, Options};
