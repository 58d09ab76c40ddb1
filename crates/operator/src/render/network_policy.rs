//! NetworkPolicies: deny everything to and from the KEDA pods, then allow what KEDA needs; and one for the
//! operator's own pod, which is deployed by OLM or kustomize (an OLM bundle cannot ship a NetworkPolicy)
//! and so is isolated from here.

use std::collections::BTreeMap;

use cma_api::{Component, KedaControllerSpec, labels};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::RenderContext;
use super::metadata::{Owner, Scope, own};
use super::monitoring::{OPERATOR_METRICS_PORT, operator_pod_labels};

/// gRPC port of the operator's metrics service.
const GRPC_PORT: i32 = 9666;
/// Port of the metrics API server's HTTPS endpoint (behind Service port 443).
const METRICS_API_PORT: i32 = 6443;
/// Port of the admission webhook server (behind Service port 443).
const WEBHOOK_PORT: i32 = 9443;
/// Prometheus metrics port of every component.
const PROMETHEUS_PORT: i32 = 8080;
/// Name of the operator pod's NetworkPolicy.
pub const OPERATOR_POLICY: &str = cma_api::names::OPERATOR;
/// The policy that denies every KEDA pod all traffic the other policies do not allow.
pub const DEFAULT_DENY_POLICY: &str = "keda-default-deny";
/// The policy that lets every KEDA pod reach the API server and DNS.
pub const API_SERVER_POLICY: &str = "keda-allow-api-server-and-dns";
/// The label the API server sets on every namespace to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Namespaces carrying this label may scrape the operator's metrics (any monitoring stack, by opt-in).
pub const METRICS_SCRAPER_LABEL: (&str, &str) = ("cma.keda.sh/metrics-scraper", "true");
/// Where the cluster monitoring Prometheus runs on OpenShift.
pub const OPENSHIFT_MONITORING_NAMESPACE: &str = "openshift-monitoring";
/// Where kube-prometheus (and most Prometheus operator installs) run on plain Kubernetes.
pub const KUBERNETES_MONITORING_NAMESPACE: &str = "monitoring";

/// The namespaces allowed to scrape metrics: the monitoring namespace of the platform, and any namespace
/// labelled `cma.keda.sh/metrics-scraper=true`.
fn scrapers(ctx: &RenderContext) -> Vec<NetworkPolicyPeer> {
    let monitoring =
        if ctx.platform.is_openshift() { OPENSHIFT_MONITORING_NAMESPACE } else { KUBERNETES_MONITORING_NAMESPACE };
    vec![namespaces(NAMESPACE_NAME_LABEL, monitoring), namespaces(METRICS_SCRAPER_LABEL.0, METRICS_SCRAPER_LABEL.1)]
}

/// The NetworkPolicies for the three KEDA pods.
pub fn render(spec: &KedaControllerSpec, ctx: &RenderContext, owner: &Owner) -> Vec<NetworkPolicy> {
    let egress_all = |value: &Option<String>| value.as_deref() != Some("false");
    let metrics = || ingress(vec![port("TCP", PROMETHEUS_PORT)], Some(scrapers(ctx)));

    let mut policies = vec![
        policy(DEFAULT_DENY_POLICY, all_keda_pods(), Vec::new(), Vec::new()),
        policy(API_SERVER_POLICY, all_keda_pods(), Vec::new(), api_server_and_dns(spec)),
        component_policy(
            Component::Operator,
            vec![
                // Only the metrics server calls the gRPC metrics service.
                ingress(vec![port("TCP", GRPC_PORT)], Some(vec![peer(Component::MetricsServer)])),
                metrics(),
            ],
            egress_all(&spec.operator.network_egress_allow_all).then(allow_all_egress).into_iter().collect(),
        ),
        component_policy(
            Component::MetricsServer,
            vec![
                // The aggregation layer's source addresses are not known in advance: any source may reach 6443.
                ingress(vec![port("TCP", METRICS_API_PORT)], None),
                metrics(),
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
        component_policy(
            Component::AdmissionWebhooks,
            // The API server calls the webhooks from addresses not known in advance: any source may reach 9443.
            vec![ingress(vec![port("TCP", WEBHOOK_PORT)], None), metrics()],
            Vec::new(),
        ),
    ];
    for p in &mut policies {
        own(&mut p.metadata, owner, Scope::Install);
    }
    policies
}

/// A component's own policy, named after its Service.
fn component_policy(
    component: Component,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    policy(component.service_name(), pods(component), ingress, egress)
}

/// The operator pod's policy: ingress only to its HTTPS metrics port and only from the monitoring namespace
/// (`openshift-monitoring` on OpenShift, `monitoring` elsewhere) or namespaces labelled
/// `cma.keda.sh/metrics-scraper=true`; egress only to the API server and DNS. The probe port needs no
/// allowance: the kubelet probes from the node, which NetworkPolicies do not restrict. Rendered only where
/// the operator's pods run, the install namespace (a policy cannot select pods of another namespace).
pub fn operator(spec: &KedaControllerSpec, ctx: &RenderContext, owner: &Owner) -> Option<NetworkPolicy> {
    let here = ctx.operator_namespace.as_deref().is_none_or(|ns| ns == owner.namespace);
    if !here {
        return None;
    }
    let selector = LabelSelector { match_labels: Some(operator_pod_labels()), match_expressions: None };
    let mut policy = policy(
        OPERATOR_POLICY,
        selector,
        vec![ingress(vec![port("TCP", OPERATOR_METRICS_PORT)], Some(scrapers(ctx)))],
        api_server_and_dns(spec),
    );
    own(&mut policy.metadata, owner, Scope::Install);
    Some(policy)
}

/// Egress to the API server's ports and to DNS (UDP and TCP).
fn api_server_and_dns(spec: &KedaControllerSpec) -> Vec<NetworkPolicyEgressRule> {
    let np = &spec.network_policy;
    let api_server: Vec<NetworkPolicyPort> = np.api_server_ports().into_iter().map(|p| port("TCP", p)).collect();
    let dns: Vec<NetworkPolicyPort> =
        np.dns_ports().into_iter().flat_map(|p| [port("UDP", p), port("TCP", p)]).collect();
    // The API server's addresses are only known when the user gives them (spec.networkPolicy.apiServerCIDRs):
    // network plugins differ in which address they match (the Service's, the endpoints', the node's).
    let api_servers = (!np.api_server_cidrs.is_empty()).then(|| {
        np.api_server_cidrs
            .iter()
            .map(|cidr| NetworkPolicyPeer {
                ip_block: Some(k8s_openapi::api::networking::v1::IPBlock { cidr: cidr.clone(), except: None }),
                ..NetworkPolicyPeer::default()
            })
            .collect()
    });
    vec![
        NetworkPolicyEgressRule { ports: Some(api_server), to: api_servers },
        NetworkPolicyEgressRule { ports: Some(dns), to: None },
    ]
}

/// Every pod of the namespaces labelled `key=value`.
fn namespaces(key: &str, value: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(key.into(), value.into())])),
            match_expressions: None,
        }),
        ..NetworkPolicyPeer::default()
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn owner() -> Owner {
        Owner { namespace: "keda".into(), name: "keda".into(), uid: None }
    }

    fn spec(yaml: &str) -> KedaControllerSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn ctx(platform: Platform, operator_namespace: Option<&str>) -> RenderContext {
        RenderContext { operator_namespace: operator_namespace.map(String::from), ..RenderContext::offline(platform) }
    }

    fn value(policy: &NetworkPolicy) -> serde_json::Value {
        serde_json::to_value(policy).unwrap()
    }

    #[test]
    fn keda_pods_accept_metrics_scrapes_only_from_the_monitoring_namespaces() {
        for (platform, monitoring) in
            [(Platform::kubernetes(), "monitoring"), (Platform::openshift(), "openshift-monitoring")]
        {
            let policies = render(&spec("{}"), &ctx(platform, Some("keda")), &owner());
            for name in Component::ALL.map(Component::service_name) {
                let v = value(policies.iter().find(|p| p.metadata.name.as_deref() == Some(name)).unwrap());
                let rule = v["spec"]["ingress"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["ports"][0]["port"] == PROMETHEUS_PORT)
                    .unwrap()
                    .clone();
                let from = serde_json::to_string(&rule["from"]).unwrap();
                assert!(from.contains(monitoring) && from.contains(METRICS_SCRAPER_LABEL.0), "{name}: {from}");
            }
        }
    }

    #[test]
    fn api_server_cidrs_limit_where_the_api_server_ports_lead() {
        let any = render(&spec("{}"), &ctx(Platform::kubernetes(), None), &owner());
        let open = value(any.iter().find(|p| p.metadata.name.as_deref() == Some(API_SERVER_POLICY)).unwrap());
        assert!(open["spec"]["egress"][0]["to"].is_null(), "{open}");
        let narrow = render(
            &spec("{networkPolicy: {apiServerCIDRs: [10.0.0.10/32]}}"),
            &ctx(Platform::kubernetes(), None),
            &owner(),
        );
        let v = value(narrow.iter().find(|p| p.metadata.name.as_deref() == Some(API_SERVER_POLICY)).unwrap());
        assert_eq!(v["spec"]["egress"][0]["to"], serde_json::json!([{"ipBlock": {"cidr": "10.0.0.10/32"}}]));
        assert!(v["spec"]["egress"][1]["to"].is_null(), "DNS stays open: {v}");
    }

    #[test]
    fn the_operator_pod_accepts_only_metrics_scrapes_from_the_monitoring_namespaces() {
        let policy = operator(&spec("{}"), &ctx(Platform::kubernetes(), Some("keda")), &owner()).unwrap();
        let v = value(&policy);
        assert_eq!(v["metadata"]["name"], OPERATOR_POLICY);
        assert_eq!(
            v["spec"]["podSelector"],
            serde_json::json!({"matchLabels": {"app.kubernetes.io/name": "cma-operator"}})
        );
        assert_eq!(v["spec"]["policyTypes"], serde_json::json!(["Ingress", "Egress"]));
        let ingress = v["spec"]["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 1, "{ingress:?}");
        assert_eq!(ingress[0]["ports"], serde_json::json!([{"port": 8443, "protocol": "TCP"}]));
        assert_eq!(
            ingress[0]["from"],
            serde_json::json!([
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
                {"namespaceSelector": {"matchLabels": {"cma.keda.sh/metrics-scraper": "true"}}},
            ])
        );
    }

    #[test]
    fn on_openshift_the_cluster_monitoring_namespace_scrapes() {
        let policy = operator(&spec("{}"), &ctx(Platform::openshift(), None), &owner()).unwrap();
        let v = value(&policy);
        assert_eq!(
            v["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
            "openshift-monitoring"
        );
    }

    #[test]
    fn the_operator_pod_reaches_only_the_api_server_and_dns_on_the_configured_ports() {
        let spec = spec("networkPolicy: {apiServerPorts: [8443], dnsPorts: [53]}");
        let v = value(&operator(&spec, &ctx(Platform::kubernetes(), None), &owner()).unwrap());
        assert_eq!(
            v["spec"]["egress"],
            serde_json::json!([
                {"ports": [{"port": 8443, "protocol": "TCP"}]},
                {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
            ])
        );
    }

    #[test]
    fn no_operator_policy_where_the_operator_does_not_run() {
        assert!(operator(&spec("{}"), &ctx(Platform::kubernetes(), Some("operators")), &owner()).is_none());
    }
}
