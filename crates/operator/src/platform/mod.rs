//! What render needs to know about the cluster: its flavour and, on OpenShift, its TLS security profile.
//! Detection (API discovery) lives with the controller; this module holds the facts and their defaults.

pub mod discovery;
pub mod tls;

pub use tls::{TlsProfile, TlsVersion};

/// The kind of cluster KEDA is installed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavour {
    /// Any Kubernetes: KEDA's operator generates and rotates its own certificates.
    #[default]
    Kubernetes,
    /// OpenShift: serving certificates come from the service-ca operator and the cluster TLS profile applies.
    #[value(name = "openshift")]
    OpenShift,
}

impl Flavour {
    /// Lower-case name, as used by the CLI and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Kubernetes => "kubernetes",
            Flavour::OpenShift => "openshift",
        }
    }
}

/// Facts about the cluster that change what is rendered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Platform {
    /// Kubernetes or OpenShift.
    pub flavour: Flavour,
    /// The TLS profile KEDA's servers follow (OpenShift only; `None` elsewhere).
    pub tls_profile: Option<TlsProfile>,
    /// The cluster serves the monitoring.coreos.com API (ServiceMonitor, PrometheusRule).
    pub monitoring: bool,
}

impl Platform {
    /// Plain Kubernetes.
    pub fn kubernetes() -> Self {
        Platform { flavour: Flavour::Kubernetes, tls_profile: None, monitoring: false }
    }

    /// OpenShift with the profile a cluster has when its admin has not chosen one (Intermediate).
    pub fn openshift() -> Self {
        Platform { flavour: Flavour::OpenShift, tls_profile: Some(TlsProfile::intermediate()), monitoring: false }
    }

    /// The platform for a flavour with its default facts.
    pub fn for_flavour(flavour: Flavour) -> Self {
        match flavour {
            Flavour::Kubernetes => Platform::kubernetes(),
            Flavour::OpenShift => Platform::openshift(),
        }
    }

    /// Whether the cluster is OpenShift.
    pub fn is_openshift(&self) -> bool {
        self.flavour == Flavour::OpenShift
    }
}
