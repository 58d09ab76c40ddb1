//! Every KedaController field: setting it has its documented effect, and removing it (rendering the same
//! controller without it) brings the default back. Render is pure, so "removing" is rendering again
//! without the field; the controller tests check the same on a live (fake) cluster.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cma_api::Component;
use std::collections::BTreeMap;

use cma_operator::platform::Platform;
use cma_operator::render::{Desired, RenderContext, render};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};

fn render_on(platform: Platform, spec: &str) -> Desired {
    let yaml = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata: {{name: keda, namespace: keda}}\nspec:\n{}",
        indent(spec)
    );
    let kc = cma_api::document::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    render(cma_api::validate(&kc).unwrap(), &RenderContext::offline(platform)).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn render_spec(spec: &str) -> Desired {
    render_on(Platform::kubernetes(), spec)
}

fn indent(spec: &str) -> String {
    if spec.trim().is_empty() {
        return "  {}\n".into();
    }
    spec.lines().map(|l| format!("  {l}\n")).collect()
}

fn deployment<'a>(d: &'a Desired, name: &str) -> &'a Deployment {
    d.deployments.iter().find(|x| x.metadata.name.as_deref() == Some(name)).unwrap()
}

fn pod<'a>(d: &'a Desired, name: &str) -> &'a PodSpec {
    deployment(d, name).spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn container<'a>(d: &'a Desired, name: &str) -> &'a Container {
    &pod(d, name).containers[0]
}

fn args(d: &Desired, name: &str) -> Vec<String> {
    container(d, name).args.clone().unwrap_or_default()
}

fn env(d: &Desired, name: &str, var: &str) -> Option<String> {
    container(d, name).env.as_ref()?.iter().find(|e| e.name == var).and_then(|e| e.value.clone())
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A field test pair: `$spec` sets the field; `$set` checks its effect; `$default` checks the render
/// without the field. Both also check that the field changes the render at all.
macro_rules! field {
    ($name:ident, $spec:expr, set: $set:expr, default: $default:expr $(,)?) => {
        mod $name {
            use super::*;

            #[test]
            fn setting_it_takes_effect() {
                let with = render_spec($spec);
                assert_ne!(with, render_spec(""), "the field changes nothing");
                let check: fn(&Desired) = $set;
                check(&with);
            }

            #[test]
            fn removing_it_restores_the_default() {
                let without = render_spec("");
                assert_ne!(render_spec($spec), without, "the field changes nothing");
                let check: fn(&Desired) = $default;
                check(&without);
            }
        }
    };
}

/// The `WorkloadSpec` fields, for one component (`$field` in the spec, Deployment `$deploy`).
macro_rules! workload_fields {
    ($module:ident, $field:literal, $deploy:literal, $selector:literal) => {
        mod $module {
            use super::*;

            field!(
                deployment_annotations,
                concat!($field, ": {deploymentAnnotations: {example.com/owner: platform}}"),
                set: |d| assert_eq!(
                    deployment(d, $deploy).metadata.annotations.as_ref().unwrap()["example.com/owner"],
                    "platform"
                ),
                default: |d| assert!(deployment(d, $deploy).metadata.annotations.is_none()),
            );

            field!(
                deployment_labels,
                concat!($field, ": {deploymentLabels: {tier: control}}"),
                set: |d| assert_eq!(deployment(d, $deploy).metadata.labels.as_ref().unwrap()["tier"], "control"),
                default: |d| assert!(!deployment(d, $deploy).metadata.labels.as_ref().unwrap().contains_key("tier")),
            );

            field!(
                pod_annotations,
                concat!($field, ": {podAnnotations: {example.com/scrape: \"false\"}}"),
                set: |d| {
                    let meta = deployment(d, $deploy).spec.as_ref().unwrap().template.metadata.as_ref().unwrap();
                    assert_eq!(meta.annotations.as_ref().unwrap()["example.com/scrape"], "false");
                },
                default: |d| {
                    let meta = deployment(d, $deploy).spec.as_ref().unwrap().template.metadata.as_ref().unwrap();
                    assert!(meta.annotations.as_ref().is_none_or(|a| !a.contains_key("example.com/scrape")));
                },
            );

            field!(
                pod_labels,
                concat!($field, ": {podLabels: {tier: control}}"),
                set: |d| {
                    let spec = deployment(d, $deploy).spec.as_ref().unwrap();
                    let labels = spec.template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
                    assert_eq!(labels["tier"], "control");
                    assert_eq!(labels["app"], $selector, "the selector label is kept");
                },
                default: |d| {
                    let spec = deployment(d, $deploy).spec.as_ref().unwrap();
                    let labels = spec.template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
                    assert!(!labels.contains_key("tier"));
                },
            );

            field!(
                node_selector,
                concat!($field, ": {nodeSelector: {node-role.kubernetes.io/infra: \"\"}}"),
                set: |d| assert_eq!(
                    pod(d, $deploy).node_selector.clone().unwrap(),
                    map(&[("kubernetes.io/os", "linux"), ("node-role.kubernetes.io/infra", "")])
                ),
                default: |d| assert_eq!(pod(d, $deploy).node_selector.clone().unwrap(), map(&[("kubernetes.io/os", "linux")])),
            );

            field!(
                tolerations,
                concat!($field, ": {tolerations: [{key: dedicated, operator: Equal, value: keda, effect: NoSchedule}]}"),
                set: |d| assert_eq!(pod(d, $deploy).tolerations.as_ref().unwrap()[0].key.as_deref(), Some("dedicated")),
                default: |d| assert!(pod(d, $deploy).tolerations.is_none()),
            );

            field!(
                affinity,
                concat!(
                    $field,
                    ": {affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 100, podAffinityTerm: {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: ",
                    $selector,
                    "}}}}]}}}"
                ),
                set: |d| assert!(pod(d, $deploy).affinity.as_ref().unwrap().pod_anti_affinity.is_some()),
                default: |d| assert!(pod(d, $deploy).affinity.is_none()),
            );

            field!(
                priority_class_name,
                concat!($field, ": {priorityClassName: system-cluster-critical}"),
                set: |d| assert_eq!(pod(d, $deploy).priority_class_name.as_deref(), Some("system-cluster-critical")),
                default: |d| assert!(pod(d, $deploy).priority_class_name.is_none()),
            );

            field!(
                resources,
                concat!($field, ": {resources: {requests: {cpu: 20m}}}"),
                set: |d| {
                    let r = container(d, $deploy).resources.clone().unwrap();
                    assert_eq!(r.requests.unwrap()["cpu"].0, "20m");
                    assert!(r.limits.is_none(), "resources replace the defaults as a whole");
                },
                default: |d| {
                    let r = container(d, $deploy).resources.clone().unwrap();
                    assert_eq!(r.requests.unwrap()["memory"].0, "100Mi");
                    assert_eq!(r.limits.unwrap()["cpu"].0, "1000m");
                },
            );

            field!(
                args,
                concat!($field, ": {args: [\"--kube-api-qps=40\"]}"),
                set: |d| assert_eq!(args(d, $deploy).last().map(String::as_str), Some("--kube-api-qps=40")),
                default: |d| assert!(!args(d, $deploy).iter().any(|a| a.starts_with("--kube-api-qps"))),
            );

            field!(
                volumes_and_mounts,
                concat!($field, ": {volumes: [{name: extra, emptyDir: {}}], volumeMounts: [{name: extra, mountPath: /extra}]}"),
                set: |d| {
                    assert!(pod(d, $deploy).volumes.as_ref().unwrap().iter().any(|v| v.name == "extra"));
                    assert!(container(d, $deploy).volume_mounts.as_ref().unwrap().iter().any(|m| m.mount_path == "/extra"));
                    let others = d.deployments.iter().filter(|x| x.metadata.name.as_deref() != Some($deploy));
                    for other in others {
                        let spec = other.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
                        assert!(!spec.volumes.iter().flatten().any(|v| v.name == "extra"), "volumes go to this component only");
                    }
                },
                default: |d| assert!(!pod(d, $deploy).volumes.iter().flatten().any(|v| v.name == "extra")),
            );

            field!(
                replicas,
                concat!($field, ": {replicas: 3}"),
                set: |d| {
                    assert_eq!(deployment(d, $deploy).spec.as_ref().unwrap().replicas, Some(3));
                    assert!(d.pod_disruption_budgets.iter().any(|p| p.metadata.name.as_deref() == Some($deploy)));
                },
                default: |d| {
                    assert_eq!(deployment(d, $deploy).spec.as_ref().unwrap().replicas, Some(1));
                    assert!(d.pod_disruption_budgets.is_empty(), "no PodDisruptionBudget with one replica");
                },
            );

            field!(
                env,
                concat!($field, ": {env: [{name: HTTPS_PROXY, value: \"http://proxy:3128\"}, {name: KEDA_HTTP_DEFAULT_TIMEOUT, value: \"3000\"}]}"),
                set: |d| {
                    assert_eq!(env(d, $deploy, "HTTPS_PROXY").as_deref(), Some("http://proxy:3128"));
                    assert_eq!(env(d, $deploy, "KEDA_HTTP_DEFAULT_TIMEOUT").as_deref(), Some("3000"));
                    let names: Vec<_> = container(d, $deploy).env.iter().flatten().map(|e| e.name.clone()).collect();
                    assert_eq!(names.iter().filter(|n| *n == "KEDA_HTTP_DEFAULT_TIMEOUT").count(), 1, "merged by name");
                },
                default: |d| {
                    assert_eq!(env(d, $deploy, "HTTPS_PROXY"), None);
                    assert_eq!(env(d, $deploy, "KEDA_HTTP_DEFAULT_TIMEOUT").as_deref(), Some(""));
                },
            );

            field!(
                image,
                concat!($field, ": {image: \"mirror.example.com/keda/img@sha256:aaaa\"}"),
                set: |d| {
                    let c = container(d, $deploy);
                    assert_eq!(c.image.as_deref(), Some("mirror.example.com/keda/img@sha256:aaaa"));
                    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
                },
                default: |d| {
                    let c = container(d, $deploy);
                    assert!(c.image.as_deref().unwrap().starts_with("ghcr.io/kedacore/"));
                    assert!(c.image.as_deref().unwrap().ends_with(":2.20.2"));
                    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
                },
            );

            field!(
                topology_spread_constraints,
                concat!($field, ": {topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: DoNotSchedule}]}"),
                set: |d| assert_eq!(pod(d, $deploy).topology_spread_constraints.as_ref().unwrap()[0].max_skew, 1),
                default: |d| assert!(pod(d, $deploy).topology_spread_constraints.is_none()),
            );
        }
    };
}

workload_fields!(operator, "operator", "keda-operator", "keda-operator");
workload_fields!(metrics_server, "metricsServer", "keda-metrics-apiserver", "keda-metrics-apiserver");
workload_fields!(admission_webhooks, "admissionWebhooks", "keda-admission", "keda-admission-webhooks");

field!(
    watch_namespace,
    "watchNamespace: \"a, b\"",
    set: |d| {
        for name in Component::ALL.map(Component::deployment_name) {
            assert_eq!(env(d, name, "WATCH_NAMESPACE").as_deref(), Some("a,b"));
        }
    },
    default: |d| {
        for name in Component::ALL.map(Component::deployment_name) {
            assert_eq!(env(d, name, "WATCH_NAMESPACE").as_deref(), Some(""));
        }
    },
);

field!(
    operator_log_level,
    "operator: {logLevel: debug}",
    set: |d| assert!(args(d, "keda-operator").contains(&"--zap-log-level=debug".to_string())),
    default: |d| assert!(args(d, "keda-operator").contains(&"--zap-log-level=info".to_string())),
);

field!(
    operator_log_encoder,
    "operator: {logEncoder: json}",
    set: |d| assert!(args(d, "keda-operator").contains(&"--zap-encoder=json".to_string())),
    default: |d| assert!(args(d, "keda-operator").contains(&"--zap-encoder=console".to_string())),
);

field!(
    operator_log_time_encoding,
    "operator: {logTimeEncoding: epoch}",
    set: |d| assert!(args(d, "keda-operator").contains(&"--zap-time-encoding=epoch".to_string())),
    default: |d| assert!(args(d, "keda-operator").contains(&"--zap-time-encoding=rfc3339".to_string())),
);

field!(
    webhooks_log_level,
    "admissionWebhooks: {logLevel: \"3\"}",
    set: |d| assert!(args(d, "keda-admission").contains(&"--zap-log-level=3".to_string())),
    default: |d| assert!(args(d, "keda-admission").contains(&"--zap-log-level=info".to_string())),
);

field!(
    webhooks_log_encoder,
    "admissionWebhooks: {logEncoder: json}",
    set: |d| assert!(args(d, "keda-admission").contains(&"--zap-encoder=json".to_string())),
    default: |d| assert!(args(d, "keda-admission").contains(&"--zap-encoder=console".to_string())),
);

field!(
    webhooks_log_time_encoding,
    "admissionWebhooks: {logTimeEncoding: nano}",
    set: |d| assert!(args(d, "keda-admission").contains(&"--zap-time-encoding=nano".to_string())),
    default: |d| assert!(args(d, "keda-admission").contains(&"--zap-time-encoding=rfc3339".to_string())),
);

field!(
    metrics_server_log_level,
    "metricsServer: {logLevel: \"4\"}",
    set: |d| assert_eq!(metrics_server_log_flags(d), ["--zap-log-level=4"]),
    default: |d| assert_eq!(metrics_server_log_flags(d), ["--zap-log-level=info"]),
);

/// The metrics server's log level flags: `--zap-log-level` and the deprecated klog `--v`.
fn metrics_server_log_flags(d: &Desired) -> Vec<String> {
    args(d, "keda-metrics-apiserver")
        .into_iter()
        .filter(|a| a.starts_with("--zap-log-level=") || a.starts_with("--v=") || a == "--v")
        .collect()
}

#[test]
fn metrics_server_log_level_zero_logs_at_info_as_documented() {
    // "0 for info": KEDA ignores --v=0 and would stay at its template's error level.
    assert_eq!(metrics_server_log_flags(&render_spec("metricsServer: {logLevel: \"0\"}")), ["--zap-log-level=info"]);
}

#[test]
fn metrics_server_log_levels_above_zero_become_zap_verbosity() {
    for level in 1..=10 {
        let d = render_spec(&format!("metricsServer: {{logLevel: \"{level}\"}}"));
        assert_eq!(metrics_server_log_flags(&d), [format!("--zap-log-level={level}")]);
    }
}

field!(
    ca_config_maps,
    "operator: {caConfigMaps: [root-ca, kafka-ca]}",
    set: |d| {
        let a = args(d, "keda-operator");
        assert!(a.ends_with(&["--ca-dir=/custom/ca0".to_string(), "--ca-dir=/custom/ca1".to_string()]));
        let volumes = pod(d, "keda-operator").volumes.clone().unwrap();
        let cm = |name: &str| volumes.iter().find(|v| v.name == name).unwrap().config_map.clone().unwrap().name;
        assert_eq!((cm("cabundle0"), cm("cabundle1")), ("root-ca".to_string(), "kafka-ca".to_string()));
    },
    default: |d| {
        assert!(!args(d, "keda-operator").iter().any(|a| a.starts_with("--ca-dir")));
        assert!(!pod(d, "keda-operator").volumes.iter().flatten().any(|v| v.name.starts_with("cabundle")));
    },
);

fn policy_has_allow_all_egress(d: &Desired, policy: &str) -> bool {
    let np = d.network_policies.iter().find(|p| p.metadata.name.as_deref() == Some(policy)).unwrap();
    np.spec.as_ref().unwrap().egress.iter().flatten().any(|rule| rule.to.is_none() && rule.ports.is_none())
}

field!(
    operator_network_egress_allow_all,
    "operator: {networkEgressAllowAll: \"false\"}",
    set: |d| assert!(!policy_has_allow_all_egress(d, "keda-operator")),
    default: |d| assert!(policy_has_allow_all_egress(d, "keda-operator")),
);

field!(
    metrics_server_network_egress_allow_all,
    "metricsServer: {networkEgressAllowAll: \"false\"}",
    set: |d| {
        assert!(!policy_has_allow_all_egress(d, "keda-metrics-apiserver"));
        let np = d.network_policies.iter().find(|p| p.metadata.name.as_deref() == Some("keda-metrics-apiserver")).unwrap();
        assert_eq!(np.spec.as_ref().unwrap().egress.as_ref().unwrap().len(), 1, "only the gRPC rule to the operator is left");
    },
    default: |d| assert!(policy_has_allow_all_egress(d, "keda-metrics-apiserver")),
);

fn audit_config_map(d: &Desired) -> Option<String> {
    d.config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some("keda-metrics-server-audit-policy"))
        .map(|c| c.data.as_ref().unwrap()["policy.yaml"].clone())
}

fn assert_no_audit(d: &Desired) {
    assert_eq!(audit_config_map(d), None);
    assert!(!args(d, "keda-metrics-apiserver").iter().any(|a| a.starts_with("--audit")));
    assert!(!pod(d, "keda-metrics-apiserver").volumes.iter().flatten().any(|v| v.name.starts_with("audit")));
}

field!(
    audit_policy_rules,
    "metricsServer: {auditConfig: {policy: {rules: [{level: Metadata, verbs: [get]}]}}}",
    set: |d| {
        let policy = audit_config_map(d).unwrap();
        assert!(policy.contains("kind: Policy") && policy.contains("level: Metadata"), "{policy}");
        let a = args(d, "keda-metrics-apiserver");
        assert!(a.contains(&"--audit-policy-file=/var/audit-policy/policy.yaml".to_string()));
        assert!(a.contains(&"--audit-log-path=-".to_string()));
        assert!(a.contains(&"--audit-log-format=json".to_string()));
    },
    default: assert_no_audit,
);

field!(
    audit_omit_stages,
    "metricsServer: {auditConfig: {policy: {omitStages: [RequestReceived], rules: [{level: None}]}}}",
    set: |d| assert!(audit_config_map(d).unwrap().contains("omitStages:\n- RequestReceived")),
    default: assert_no_audit,
);

field!(
    audit_omit_managed_fields,
    "metricsServer: {auditConfig: {policy: {omitManagedFields: true, rules: [{level: None}]}}}",
    set: |d| assert!(audit_config_map(d).unwrap().contains("omitManagedFields: true")),
    default: assert_no_audit,
);

field!(
    audit_log_format,
    "metricsServer: {auditConfig: {logFormat: legacy, policy: {rules: [{level: None}]}}}",
    set: |d| assert!(args(d, "keda-metrics-apiserver").contains(&"--audit-log-format=legacy".to_string())),
    default: assert_no_audit,
);

field!(
    audit_log_output_volume_claim,
    "metricsServer: {auditConfig: {logOutputVolumeClaim: audit-pvc, policy: {rules: [{level: None}]}}}",
    set: |d| {
        assert!(args(d, "keda-metrics-apiserver").contains(&"--audit-log-path=/var/audit-log/audit.log".to_string()));
        let volume = pod(d, "keda-metrics-apiserver").volumes.clone().unwrap().into_iter().find(|v| v.name == "audit-log").unwrap();
        assert_eq!(volume.persistent_volume_claim.unwrap().claim_name, "audit-pvc");
    },
    default: assert_no_audit,
);

field!(
    audit_lifetime,
    "metricsServer: {auditConfig: {logOutputVolumeClaim: audit-pvc, policy: {rules: [{level: None}]}, lifetime: {maxAge: \"3\", maxBackup: \"2\", maxSize: \"10\"}}}",
    set: |d| {
        let a = args(d, "keda-metrics-apiserver");
        for flag in ["--audit-log-maxage=3", "--audit-log-maxbackup=2", "--audit-log-maxsize=10"] {
            assert!(a.contains(&flag.to_string()), "{flag} missing from {a:?}");
        }
    },
    default: assert_no_audit,
);

field!(
    image_pull_secrets,
    "imagePullSecrets: [{name: pull}]",
    set: |d| {
        for name in Component::ALL.map(Component::deployment_name) {
            assert_eq!(pod(d, name).image_pull_secrets.as_ref().unwrap()[0].name, "pull");
        }
    },
    default: |d| assert!(pod(d, "keda-operator").image_pull_secrets.is_none()),
);

field!(
    network_policy_enabled,
    "networkPolicy: {enabled: false}",
    set: |d| assert!(d.network_policies.is_empty()),
    default: |d| assert_eq!(d.network_policies.len(), 6),
);

fn api_dns_ports(d: &Desired) -> Vec<(String, i32)> {
    let np = d
        .network_policies
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(cma_operator::render::network_policy::API_SERVER_POLICY))
        .unwrap();
    let mut ports = Vec::new();
    for rule in np.spec.as_ref().unwrap().egress.iter().flatten() {
        for port in rule.ports.iter().flatten() {
            let number = match port.port.as_ref().unwrap() {
                k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => *n,
                other => panic!("named port {other:?}"),
            };
            ports.push((port.protocol.clone().unwrap(), number));
        }
    }
    ports
}

field!(
    network_policy_api_server_ports,
    "networkPolicy: {apiServerPorts: [8443]}",
    set: |d| assert!(api_dns_ports(d).contains(&("TCP".into(), 8443)) && !api_dns_ports(d).contains(&("TCP".into(), 6443))),
    default: |d| assert!(api_dns_ports(d).contains(&("TCP".into(), 443)) && api_dns_ports(d).contains(&("TCP".into(), 6443))),
);

field!(
    network_policy_dns_ports,
    "networkPolicy: {dnsPorts: [1053]}",
    set: |d| assert!(api_dns_ports(d).contains(&("UDP".into(), 1053)) && !api_dns_ports(d).contains(&("UDP".into(), 53))),
    default: |d| {
        let ports = api_dns_ports(d);
        for p in [("UDP", 53), ("TCP", 53), ("UDP", 5353), ("TCP", 5353)] {
            assert!(ports.contains(&(p.0.to_string(), p.1)), "{p:?} missing");
        }
    },
);

#[test]
fn args_override_what_other_fields_set() {
    let d = render_spec("operator: {logLevel: debug, args: [\"--zap-log-level=error\"]}");
    let a = args(&d, "keda-operator");
    assert_eq!(a.iter().filter(|x| x.starts_with("--zap-log-level")).count(), 1);
    assert!(a.contains(&"--zap-log-level=error".to_string()));
}

#[test]
fn openshift_lists_the_service_ca_first_and_only_once() {
    let d = render_on(Platform::openshift(), "operator: {caConfigMaps: [keda-ocp-cabundle, corp]}");
    let volumes = pod(&d, "keda-operator").volumes.clone().unwrap();
    let cms: Vec<String> = volumes.iter().filter_map(|v| v.config_map.as_ref().map(|c| c.name.clone())).collect();
    assert_eq!(cms, vec!["keda-ocp-cabundle".to_string(), "corp".to_string()]);
}

#[test]
fn a_new_audit_policy_rolls_the_metrics_server() {
    let hash = |d: &Desired| {
        let meta = deployment(d, "keda-metrics-apiserver").spec.as_ref().unwrap().template.metadata.clone().unwrap();
        meta.annotations.unwrap()["cma.keda.sh/config-hash"].clone()
    };
    let a = render_spec("metricsServer: {auditConfig: {policy: {rules: [{level: Metadata}]}}}");
    let b = render_spec("metricsServer: {auditConfig: {policy: {rules: [{level: Request}]}}}");
    assert_ne!(hash(&a), hash(&b));
}

#[test]
fn the_cluster_proxy_reaches_every_container_and_a_components_env_wins() {
    let yaml = "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata: {name: keda, namespace: keda}\nspec:\n  operator: {env: [{name: NO_PROXY, value: .internal}]}\n";
    let kc = cma_api::document::from_yaml(yaml).unwrap();
    let ctx = RenderContext {
        proxy: cma_operator::render::proxy::from_lookup(|name| match name {
            "HTTPS_PROXY" => Some("http://proxy.corp:3128".into()),
            "NO_PROXY" => Some(".cluster.local".into()),
            _ => None,
        }),
        ..RenderContext::offline(Platform::kubernetes())
    };
    let d = render(cma_api::validate(&kc).unwrap(), &ctx).unwrap();
    for name in Component::ALL.map(Component::deployment_name) {
        assert_eq!(env(&d, name, "HTTPS_PROXY").as_deref(), Some("http://proxy.corp:3128"), "{name}");
    }
    assert_eq!(env(&d, "keda-operator", "NO_PROXY").as_deref(), Some(".internal"));
    assert_eq!(env(&d, "keda-admission", "NO_PROXY").as_deref(), Some(".cluster.local"));
}

/// The annotations the operator adds itself (digests on the pod templates, OpenShift's service-ca wiring,
/// the digest of the applied intent on every object, and the cluster's own `deployment.kubernetes.io/revision`)
/// fit in the bytes `cma_api::rules::RESERVED_ANNOTATION_BYTES` keeps free, so a KedaController within the
/// CRD's annotation limit never renders an object the API server refuses as too large.
#[test]
fn the_operators_own_annotations_fit_in_the_reserved_bytes() {
    let spec = "operator: {caConfigMaps: [ca-a, ca-b]}\nmetricsServer: {auditConfig: {policy: {rules: [{level: Metadata}]}}}\n";
    let mut platform = Platform::openshift();
    platform.monitoring = true;
    let applied_digest = cma_api::labels::APPLIED_DIGEST.len() + 64;
    let revision = "deployment.kubernetes.io/revision".len() + 10;
    let bytes = |map: &Option<BTreeMap<String, String>>| -> usize {
        map.iter().flatten().map(|(k, v)| k.len() + v.len()).sum()
    };
    for value in render_on(platform, spec).to_values().unwrap() {
        let object: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
            serde_json::from_value(value["metadata"].clone()).unwrap();
        let own = bytes(&object.annotations) + applied_digest + revision;
        assert!(own < cma_api::rules::RESERVED_ANNOTATION_BYTES, "{} {:?}: {own} bytes", value["kind"], object.name);
        if let Some(template) = value.pointer("/spec/template/metadata") {
            let template: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                serde_json::from_value(template.clone()).unwrap();
            let own = bytes(&template.annotations);
            assert!(own < cma_api::rules::RESERVED_ANNOTATION_BYTES, "pod template of {:?}: {own} bytes", object.name);
        }
    }
}
