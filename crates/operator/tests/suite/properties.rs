//! Properties of render over random valid KedaControllers: it never fails or panics on valid input, it is
//! deterministic to the byte, every object is labelled and placed where it belongs, and every Deployment
//! still selects its own pods.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use cma_api::labels;
use cma_api::{
    AdmissionWebhooksSpec, AuditConfig, AuditLifetime, AuditPolicy, KedaController, KedaControllerSpec,
    MetricsServerSpec, NetworkPolicySpec, OperatorSpec, WorkloadSpec, audit::PolicyRule,
};
use cma_operator::cli::{Format, write_objects};
use cma_operator::platform::Platform;
use cma_operator::render::{RenderContext, render};
use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, EnvVar, Toleration, Volume, VolumeMount};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

fn name() -> impl Strategy<Value = String> {
    "[a-z]([a-z0-9-]{0,10}[a-z0-9])?"
}

/// Label maps; keys start with `t` so they never hit the reserved `app` key (the validation table covers
/// reserved keys).
fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map("(example\\.com/)?t[a-z0-9]{0,8}", "[a-z0-9]{0,8}", 0..3)
}

fn zap_level() -> impl Strategy<Value = Option<String>> {
    option::of(prop_oneof![
        select(vec!["debug", "info", "error"]).prop_map(String::from),
        (1u32..20).prop_map(|n| n.to_string())
    ])
}

fn choice(values: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    option::of(select(values).prop_map(String::from))
}

fn workload() -> impl Strategy<Value = WorkloadSpec> {
    (
        (label_map(), label_map(), label_map(), label_map(), label_map()),
        option::of(1i32..5),
        vec(
            select(vec![
                "--kube-api-qps=40",
                "--kube-api-burst=80",
                "--leader-elect=false",
                "--zap-stacktrace-level=panic",
                "--v=2",
            ])
            .prop_map(String::from),
            0..3,
        ),
        vec(("[A-Z][A-Z0-9_]{0,8}", "[ -~]{0,12}"), 0..3),
        option::of(select(vec!["registry.example.com/keda:1", "mirror/keda@sha256:abcd"]).prop_map(String::from)),
        option::of(name()),
        any::<bool>(),
    )
        .prop_map(|(maps, replicas, args, env, image, priority, extra_volume)| {
            let (deployment_annotations, deployment_labels, pod_annotations, pod_labels, node_selector) = maps;
            let mut env_vars: Vec<EnvVar> = Vec::new();
            for (name, value) in env {
                if name != "POD_NAMESPACE" && name != "WATCH_NAMESPACE" && !env_vars.iter().any(|e| e.name == name) {
                    env_vars.push(EnvVar { name, value: Some(value), value_from: None });
                }
            }
            let (volumes, volume_mounts) = if extra_volume {
                (
                    vec![Volume {
                        name: "extra".into(),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    }],
                    vec![VolumeMount { name: "extra".into(), mount_path: "/extra".into(), ..VolumeMount::default() }],
                )
            } else {
                (Vec::new(), Vec::new())
            };
            WorkloadSpec {
                deployment_annotations,
                deployment_labels,
                pod_annotations,
                pod_labels,
                node_selector,
                tolerations: vec![Toleration {
                    key: Some("dedicated".into()),
                    operator: Some("Exists".into()),
                    ..Toleration::default()
                }],
                affinity: None,
                priority_class_name: priority.unwrap_or_default(),
                resources: None,
                args,
                volumes,
                volume_mounts,
                replicas,
                env: env_vars,
                image,
                topology_spread_constraints: Vec::new(),
            }
        })
}

fn audit() -> impl Strategy<Value = AuditConfig> {
    (
        choice(&["json", "legacy"]),
        option::of(name()),
        vec(select(vec!["None", "Metadata", "Request", "RequestResponse"]), 0..3),
        option::of("[0-9]{1,3}"),
    )
        .prop_map(|(log_format, claim, levels, max_age)| AuditConfig {
            log_format,
            // Rotation needs a claim: only generate it with one.
            lifetime: AuditLifetime { max_age: claim.as_ref().and(max_age), ..AuditLifetime::default() },
            log_output_volume_claim: claim,
            policy: AuditPolicy {
                rules: levels
                    .into_iter()
                    .map(|level| PolicyRule { level: level.into(), ..PolicyRule::default() })
                    .collect(),
                ..AuditPolicy::default()
            },
        })
}

fn spec() -> impl Strategy<Value = KedaControllerSpec> {
    (
        vec(name(), 0..4),
        (zap_level(), choice(&["json", "console"]), choice(&["epoch", "iso8601", "rfc3339nano"])),
        vec(name(), 0..3),
        (choice(&["true", "false"]), choice(&["true", "false"])),
        (workload(), workload(), workload()),
        option::of((0u8..=10).prop_map(|n| n.to_string())),
        audit(),
        (option::of(any::<bool>()), vec(1i32..65535, 0..3)),
    )
        .prop_map(|(namespaces, logging, cas, egress, workloads, ms_level, audit, (np_enabled, dns))| {
            let mut unique_ns = namespaces;
            unique_ns.sort();
            unique_ns.dedup();
            let mut unique_cas = cas;
            unique_cas.sort();
            unique_cas.dedup();
            let (operator, metrics, webhooks) = workloads;
            KedaControllerSpec {
                watch_namespace: unique_ns.join(","),
                operator: OperatorSpec {
                    log_level: logging.0.clone(),
                    log_encoder: logging.1.clone(),
                    log_time_encoding: logging.2.clone(),
                    ca_config_maps: unique_cas,
                    network_egress_allow_all: egress.0,
                    workload: operator,
                },
                metrics_server: MetricsServerSpec {
                    log_level: ms_level,
                    audit_config: audit,
                    network_egress_allow_all: egress.1,
                    workload: metrics,
                },
                admission_webhooks: AdmissionWebhooksSpec {
                    log_level: logging.0,
                    log_encoder: logging.1,
                    log_time_encoding: logging.2,
                    workload: webhooks,
                },
                network_policy: NetworkPolicySpec {
                    enabled: np_enabled,
                    dns_ports: dns,
                    ..NetworkPolicySpec::default()
                },
                ..KedaControllerSpec::default()
            }
        })
}

fn controller() -> impl Strategy<Value = (KedaController, bool)> {
    (name(), spec(), any::<bool>())
        .prop_map(|(namespace, spec, openshift)| (KedaController::new(&namespace, "keda", spec), openshift))
}

fn yaml(values: &[serde_json::Value]) -> Vec<u8> {
    let mut out = Vec::new();
    write_objects(values, Format::Yaml, &mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn render_of_a_valid_controller_is_deterministic_labelled_and_self_consistent((kc, openshift) in controller()) {
        cma_api::validate(&kc).map_err(|e| TestCaseError::fail(format!("generator produced an invalid spec: {e}")))?;
        let platform = if openshift { Platform::openshift() } else { Platform::kubernetes() };
        let ctx = RenderContext::offline(platform);
        let first = render(cma_api::validate(&kc).unwrap(), &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let second = render(cma_api::validate(&kc).unwrap(), &ctx).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let values = first.to_values().unwrap();
        prop_assert_eq!(yaml(&values), yaml(&second.to_values().unwrap()), "render is not deterministic");

        let namespace = kc.metadata.namespace.clone().unwrap();
        let cluster_scoped = ["ClusterRole", "ClusterRoleBinding", "APIService", "ValidatingWebhookConfiguration"];
        for object in &values {
            let kind = object["kind"].as_str().unwrap();
            let meta = &object["metadata"];
            let labels = &meta["labels"];
            prop_assert_eq!(&labels[labels::MANAGED_BY], "cma-operator", "{} unlabelled", kind);
            prop_assert_eq!(&labels[labels::PART_OF], "keda");
            prop_assert_eq!(labels[labels::OWNER_NAMESPACE].as_str(), Some(namespace.as_str()));
            prop_assert_eq!(&labels[labels::OWNER_NAME], "keda");
            if cluster_scoped.contains(&kind) {
                prop_assert!(meta.get("namespace").is_none(), "{} is cluster-scoped but namespaced", kind);
            } else if kind == "RoleBinding" && meta["name"] == "keda-auth-reader" {
                prop_assert_eq!(&meta["namespace"], "kube-system");
            } else {
                prop_assert_eq!(meta["namespace"].as_str(), Some(namespace.as_str()), "{} in the wrong namespace", kind);
            }
        }

        for deployment in &first.deployments {
            let spec = deployment.spec.as_ref().unwrap();
            let pod_labels = spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
            for (key, value) in spec.selector.match_labels.iter().flatten() {
                prop_assert_eq!(pod_labels.get(key), Some(value), "Deployment no longer selects its pods");
            }
            let pod = spec.template.spec.as_ref().unwrap();
            let volumes: Vec<&str> = pod.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
            let mut unique = volumes.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), volumes.len(), "duplicate volume names");
            for mount in pod.containers[0].volume_mounts.iter().flatten() {
                prop_assert!(volumes.contains(&mount.name.as_str()), "mount of a missing volume {}", mount.name);
            }
            let replicas = spec.replicas.unwrap_or(1);
            let has_pdb = first.pod_disruption_budgets.iter().any(|p| p.metadata.name == deployment.metadata.name);
            prop_assert_eq!(has_pdb, replicas > 1);
        }
    }
}
