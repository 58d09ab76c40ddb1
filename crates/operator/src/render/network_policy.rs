//! NetworkPolicies: deny everything to and from the KEDA pods, then allow what KEDA needs.

use std::collections::BTreeMap;

use cma_api::{Component, KedaControllerSpec, labels};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::metadata::{Owner, Scope, own};

/// gRPC port of the operator's metrics service.
const GRPC_PORT: i32 = 9666;
/// Port of the metrics API server's HTTPS endpoint (behind Service port 443).
const METRICS_API_PORT: i32 = 6443;
/// Port of the admission webhook server (behind Service port 443).
const WEBHOOK_PORT: i32 = 9443;
/// Prometheus metrics port of every component.
const PROMETHEUS_PORT: i32 = 8080;

/// The NetworkPolicies for the three KEDA pods.
pub fn render(spec: &KedaControllerSpec, owner: &Owner) -> Vec<NetworkPolicy> {
    let np = &spec.network_policy;
    let api_server: Vec<NetworkPolicyPort> = np.api_server_ports().into_iter().map(|p| port("TCP", p)).collect();
    let dns: Vec<NetworkPolicyPort> =
        np.dns_ports().into_iter().flat_map(|p| [port("UDP", p), port("TCP", p)]).collect();
    let egress_all = |value: &Option<String>| value.as_deref() != Some("false");

    let mut policies = vec![
        policy("keda-default-deny", all_keda_pods(), Vec::new(), Vec::new()),
        policy(
            "keda-allow-api-server-and-dns",
            all_keda_pods(),
            Vec::new(),
            vec![
                NetworkPolicyEgressRule { ports: Some(api_server), to: None },
                NetworkPolicyEgressRule { ports: Some(dns), to: None },
            ],
        ),
        policy(
            "keda-operator",
            pods(Component::Operator),
            vec![
                // Only the metrics server calls the gRPC metrics service.
                ingress(vec![port("TCP", GRPC_PORT)], Some(vec![peer(Component::MetricsServer)])),
                ingress(vec![port("TCP", PROMETHEUS_PORT)], None),
            ],
            egress_all(&spec.operator.network_egress_allow_all).then(allow_all_egress).into_iter().collect(),
        ),
        policy(
            "keda-metrics-apiserver",
            pods(Component::MetricsServer),
            vec![
                // The aggregation layer's source addresses are not known in advance: any source may reach 6443.
                ingress(vec![port("TCP", METRICS_API_PORT)], None),
                ingress(vec![port("TCP", PROMETHEUS_PORT)], None),
            ],
            {
                let mut egress = vec![NetworkPolicyEgressRule {
                    ports: Some(vec![port("TCP", GRPC_PORT)]),
                    to: Some(vec![peer(Component::Operator)]),
                }];
                if egress_all(&spec.metrics_server.network_egress_allow_all) {
                    egress.push(allow_all_egress());
                }
                egress
            },
        ),
        policy(
            "keda-admission-webhooks",
            pods(Component::AdmissionWebhooks),
            vec![ingress(vec![port("TCP", WEBHOOK_PORT)], None), ingress(vec![port("TCP", PROMETHEUS_PORT)], None)],
            Vec::new(),
        ),
    ];
    for p in &mut policies {
        own(&mut p.metadata, owner, Scope::Install);
    }
    policies
}

fn policy(
    name: &str,
    selector: LabelSelector,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: (!ingress.is_empty()).then_some(ingress),
            egress: (!egress.is_empty()).then_some(egress),
        }),
    }
}

fn all_keda_pods() -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: labels::SELECTOR_KEY.into(),
            operator: "In".into(),
            values: Some(Component::ALL.iter().map(|c| labels::selector(*c).1.to_string()).collect()),
        }]),
        match_labels: None,
    }
}

fn pods(component: Component) -> LabelSelector {
    let (key, value) = labels::selector(component);
    LabelSelector { match_labels: Some(BTreeMap::from([(key.into(), value.into())])), match_expressions: None }
}

fn peer(component: Component) -> NetworkPolicyPeer {
    NetworkPolicyPeer { pod_selector: Some(pods(component)), ..NetworkPolicyPeer::default() }
}

fn port(protocol: &str, number: i32) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(IntOrString::Int(number)), protocol: Some(protocol.into()), end_port: None }
}

fn ingress(ports: Vec<NetworkPolicyPort>, from: Option<Vec<NetworkPolicyPeer>>) -> NetworkPolicyIngressRule {
    NetworkPolicyIngressRule { ports: Some(ports), from }
}

/// An egress rule with no peers and no ports: every destination.
fn allow_all_egress() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule::default()
}
