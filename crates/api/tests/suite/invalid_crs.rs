//! A table of invalid KedaControllers. Each must be refused by `validate()` with the right field path, and,
//! where the CRD can express the rule, by the generated CRD as the API server applies it: its OpenAPI
//! schema (checked with a JSON-schema validator) or its CEL rules (checked with a CEL evaluator).
//! Valid fixtures must pass all three.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cma_api::{KedaController, crd};
use serde_json::Value;

/// Which part of the CRD refuses the value, if any.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Crd {
    /// The OpenAPI schema (types, enums, ranges, lengths, sizes).
    Schema,
    /// An `x-kubernetes-validations` CEL rule.
    Cel,
    /// `x-kubernetes-list-type: set` at this field path (duplicates refused by the API server).
    ListSet(&'static str),
    /// `x-kubernetes-list-type: map` at this field path (two entries with one key refused by the API server).
    ListMap(&'static str),
    /// Only the operator's `validate()` can tell (semantic rules across fields or values).
    No,
}

struct Case {
    name: &'static str,
    metadata_name: &'static str,
    spec: &'static str,
    path: &'static str,
    crd: Crd,
}

const fn case(name: &'static str, spec: &'static str, path: &'static str, crd: Crd) -> Case {
    Case { name, metadata_name: "keda", spec, path, crd }
}

fn cases() -> Vec<Case> {
    vec![
        Case { name: "not named keda", metadata_name: "keda-2", spec: "", path: "metadata.name", crd: Crd::Cel },
        case("watch namespace with spaces inside a name", "watchNamespace: team a", "spec.watchNamespace", Crd::Cel),
        case("watch namespace upper case", "watchNamespace: TeamA", "spec.watchNamespace", Crd::Cel),
        case(
            "watch namespace longer than 63",
            "watchNamespace: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "spec.watchNamespace",
            Crd::Cel,
        ),
        case("watch namespace listed twice", "watchNamespace: \"a,b,a\"", "spec.watchNamespace", Crd::No),
        case("operator log level word", "operator: {logLevel: verbose}", "spec.operator.logLevel", Crd::Cel),
        case("operator log level zero", "operator: {logLevel: \"0\"}", "spec.operator.logLevel", Crd::Cel),
        case("operator log encoder", "operator: {logEncoder: text}", "spec.operator.logEncoder", Crd::Schema),
        case(
            "operator time encoding",
            "operator: {logTimeEncoding: unix}",
            "spec.operator.logTimeEncoding",
            Crd::Schema,
        ),
        case("webhooks log level", "admissionWebhooks: {logLevel: trace}", "spec.admissionWebhooks.logLevel", Crd::Cel),
        case(
            "webhooks encoder",
            "admissionWebhooks: {logEncoder: xml}",
            "spec.admissionWebhooks.logEncoder",
            Crd::Schema,
        ),
        case("metrics server level 11", "metricsServer: {logLevel: \"11\"}", "spec.metricsServer.logLevel", Crd::Cel),
        case("metrics server level name", "metricsServer: {logLevel: debug}", "spec.metricsServer.logLevel", Crd::Cel),
        case(
            "egress flag not a boolean string",
            "operator: {networkEgressAllowAll: \"yes\"}",
            "spec.operator.networkEgressAllowAll",
            Crd::Schema,
        ),
        case(
            "metrics egress flag upper case",
            "metricsServer: {networkEgressAllowAll: \"False\"}",
            "spec.metricsServer.networkEgressAllowAll",
            Crd::Schema,
        ),
        case(
            "audit log format",
            "metricsServer: {auditConfig: {logFormat: text, policy: {rules: [{level: Metadata}]}}}",
            "spec.metricsServer.auditConfig.logFormat",
            Crd::Schema,
        ),
        case(
            "audit max age with a unit",
            "metricsServer: {auditConfig: {logOutputVolumeClaim: audit, lifetime: {maxAge: 7d}}}",
            "spec.metricsServer.auditConfig.lifetime.maxAge",
            Crd::Cel,
        ),
        case(
            "audit rotation without a claim",
            "metricsServer: {auditConfig: {policy: {rules: [{level: Metadata}]}, lifetime: {maxSize: \"10\"}}}",
            "spec.metricsServer.auditConfig.lifetime",
            Crd::Cel,
        ),
        case(
            "audit level",
            "metricsServer: {auditConfig: {policy: {rules: [{level: All}]}}}",
            "spec.metricsServer.auditConfig.policy.rules[0].level",
            Crd::Schema,
        ),
        case(
            "audit stage",
            "metricsServer: {auditConfig: {policy: {omitStages: [Done], rules: [{level: None}]}}}",
            "spec.metricsServer.auditConfig.policy.omitStages[0]",
            Crd::Schema,
        ),
        case(
            "audit claim name",
            "metricsServer: {auditConfig: {logOutputVolumeClaim: Audit_Log}}",
            "spec.metricsServer.auditConfig.logOutputVolumeClaim",
            Crd::Cel,
        ),
        case("zero replicas", "operator: {replicas: 0}", "spec.operator.replicas", Crd::Schema),
        case("negative replicas", "admissionWebhooks: {replicas: -1}", "spec.admissionWebhooks.replicas", Crd::Schema),
        case("CA ConfigMap name", "operator: {caConfigMaps: [My_CA]}", "spec.operator.caConfigMaps[0]", Crd::Cel),
        case(
            "CA ConfigMap twice",
            "operator: {caConfigMaps: [ca, ca]}",
            "spec.operator.caConfigMaps[1]",
            Crd::ListSet("spec.operator.caConfigMaps"),
        ),
        case("image with a space", "operator: {image: \"keda operator\"}", "spec.operator.image", Crd::Cel),
        case("empty argument", "metricsServer: {args: [\"\"]}", "spec.metricsServer.args[0]", Crd::Cel),
        case(
            "priority class name",
            "operator: {priorityClassName: High_Priority}",
            "spec.operator.priorityClassName",
            Crd::Cel,
        ),
        case("pod label app", "operator: {podLabels: {app: mine}}", "spec.operator.podLabels[app]", Crd::Cel),
        case(
            "deployment label managed-by",
            "metricsServer: {deploymentLabels: {app.kubernetes.io/managed-by: helm}}",
            "spec.metricsServer.deploymentLabels[app.kubernetes.io/managed-by]",
            Crd::Cel,
        ),
        case(
            "service account label part-of",
            "serviceAccount: {labels: {app.kubernetes.io/part-of: other}}",
            "spec.serviceAccount.labels[app.kubernetes.io/part-of]",
            Crd::Cel,
        ),
        case(
            "label value too long",
            "operator: {podLabels: {team: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}",
            "spec.operator.podLabels[team]",
            Crd::Schema,
        ),
        case(
            "annotation key",
            "operator: {podAnnotations: {\"bad key!\": x}}",
            "spec.operator.podAnnotations[bad key!]",
            Crd::Cel,
        ),
        case(
            "request above limit",
            "operator: {resources: {requests: {cpu: \"2\"}, limits: {cpu: 500m}}}",
            "spec.operator.resources.requests.cpu",
            Crd::Cel,
        ),
        case(
            "malformed quantity",
            "operator: {resources: {limits: {memory: lots}}}",
            "spec.operator.resources.limits.memory",
            Crd::Cel,
        ),
        case(
            "mount of an undeclared volume",
            "operator: {volumeMounts: [{name: data, mountPath: /data}]}",
            "spec.operator.volumeMounts[0].name",
            Crd::Cel,
        ),
        case(
            "volume named like an operator volume",
            "operator: {volumes: [{name: certificates, emptyDir: {}}]}",
            "spec.operator.volumes[0].name",
            Crd::Cel,
        ),
        case(
            "mount over the certificates",
            "metricsServer: {volumes: [{name: x, emptyDir: {}}], volumeMounts: [{name: x, mountPath: /certs}]}",
            "spec.metricsServer.volumeMounts[0].mountPath",
            Crd::Cel,
        ),
        case(
            "env sets WATCH_NAMESPACE",
            "operator: {env: [{name: WATCH_NAMESPACE, value: a}]}",
            "spec.operator.env[0].name",
            Crd::Cel,
        ),
        case(
            "env set twice",
            "admissionWebhooks: {env: [{name: A, value: \"1\"}, {name: A, value: \"2\"}]}",
            "spec.admissionWebhooks.env[1].name",
            Crd::ListMap("spec.admissionWebhooks.env"),
        ),
        case(
            "DNS port out of range",
            "networkPolicy: {dnsPorts: [70000]}",
            "spec.networkPolicy.dnsPorts[0]",
            Crd::Schema,
        ),
        case(
            "API server port zero",
            "networkPolicy: {apiServerPorts: [0]}",
            "spec.networkPolicy.apiServerPorts[0]",
            Crd::Schema,
        ),
        case(
            "API server address without a prefix length",
            "networkPolicy: {apiServerCIDRs: [10.0.0.10]}",
            "spec.networkPolicy.apiServerCIDRs[0]",
            Crd::Cel,
        ),
        case(
            "API server address with an IPv4 prefix of 33",
            "networkPolicy: {apiServerCIDRs: [\"10.0.0.0/33\"]}",
            "spec.networkPolicy.apiServerCIDRs[0]",
            Crd::Cel,
        ),
        case("scrape interval unit", "monitoring: {interval: 30sec}", "spec.monitoring.interval", Crd::Cel),
        case("scrape interval zero", "monitoring: {interval: 0s}", "spec.monitoring.interval", Crd::Cel),
        case("pull secret name", "imagePullSecrets: [{name: Pull_Secret}]", "spec.imagePullSecrets[0].name", Crd::Cel),
        case("blank argument", "operator: {args: [\"  \"]}", "spec.operator.args[0]", Crd::Cel),
        case(
            "negative request",
            "admissionWebhooks: {resources: {requests: {memory: -1Gi}}}",
            "spec.admissionWebhooks.resources.requests.memory",
            Crd::Cel,
        ),
        case(
            "request above limit given as numbers",
            "metricsServer: {resources: {requests: {cpu: 2}, limits: {cpu: 1}}}",
            "spec.metricsServer.resources.requests.cpu",
            Crd::Cel,
        ),
        case(
            "volume name upper case",
            "operator: {volumes: [{name: Data, emptyDir: {}}]}",
            "spec.operator.volumes[0].name",
            Crd::Cel,
        ),
        case(
            "volume declared twice",
            "operator: {volumes: [{name: data, emptyDir: {}}, {name: data, emptyDir: {}}]}",
            "spec.operator.volumes[1].name",
            Crd::ListMap("spec.operator.volumes"),
        ),
        case(
            "relative mount path",
            "operator: {volumes: [{name: x, emptyDir: {}}], volumeMounts: [{name: x, mountPath: data}]}",
            "spec.operator.volumeMounts[0].mountPath",
            Crd::Cel,
        ),
        case(
            "mount path used twice",
            "operator: {volumes: [{name: x, emptyDir: {}}], volumeMounts: [{name: x, mountPath: /data}, {name: x, mountPath: /data/}]}",
            "spec.operator.volumeMounts[1].mountPath",
            Crd::Cel,
        ),
        case(
            "mount above the operator's",
            "operator: {volumes: [{name: x, emptyDir: {}}], volumeMounts: [{name: x, mountPath: /var}]}",
            "spec.operator.volumeMounts[0].mountPath",
            Crd::Cel,
        ),
        case(
            "env name starting with a digit",
            "operator: {env: [{name: 1PROXY, value: x}]}",
            "spec.operator.env[0].name",
            Crd::Cel,
        ),
        case(
            "label key",
            "operator: {nodeSelector: {\"bad key\": x}}",
            "spec.operator.nodeSelector[bad key]",
            Crd::Cel,
        ),
        case(
            "label value with a blank",
            "serviceAccount: {labels: {team: \"a b\"}}",
            "spec.serviceAccount.labels[team]",
            Crd::Cel,
        ),
    ]
}

fn document(metadata_name: &str, spec: &str) -> Value {
    let yaml = format!(
        "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata:\n  name: {metadata_name}\n  namespace: keda\nspec: {{ {spec} }}\n"
    );
    serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("case YAML does not parse: {e}\n{yaml}"))
}

fn crd_schema() -> Value {
    let crd = crd::kedacontroller().unwrap();
    serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap()
}

fn schema_accepts(schema: &Value, document: &Value) -> bool {
    jsonschema::validator_for(schema).unwrap().is_valid(document)
}

fn cel_accepts(schema: &Value, document: &Value) -> bool {
    kube_cel::Validator::new().validate(schema, document, None).is_ok()
}

fn schema_at<'a>(schema: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(schema, |node, field| &node["properties"][field])
}

#[test]
fn the_table_is_large_enough() {
    assert!(cases().len() >= 20);
}

#[test]
fn validate_refuses_every_invalid_case_with_its_field_path() {
    for case in cases() {
        let doc = document(case.metadata_name, case.spec);
        let kc: KedaController = serde_json::from_value(doc).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let errors = cma_api::validate(&kc).expect_err(case.name);
        assert!(
            errors.paths().contains(&case.path),
            "{}: expected an error at {}, got:\n{errors}",
            case.name,
            case.path
        );
    }
}

#[test]
fn the_crd_refuses_what_it_can_express() {
    let schema = crd_schema();
    for case in cases() {
        let doc = document(case.metadata_name, case.spec);
        match case.crd {
            Crd::Schema => {
                // The API server runs no CEL rule once the schema refused a value, so a rule refusing it too
                // does not matter.
                assert!(!schema_accepts(&schema, &doc), "{}: the OpenAPI schema accepts it", case.name);
            }
            Crd::Cel => {
                assert!(schema_accepts(&schema, &doc), "{}: the OpenAPI schema refuses it (mark it Schema)", case.name);
                assert!(!cel_accepts(&schema, &doc), "{}: no CEL rule refuses it", case.name);
            }
            Crd::ListSet(path) => {
                assert_eq!(schema_at(&schema, path)["x-kubernetes-list-type"], "set", "{}", case.name);
            }
            Crd::ListMap(path) => {
                assert_eq!(schema_at(&schema, path)["x-kubernetes-list-type"], "map", "{}", case.name);
            }
            Crd::No => {
                assert!(
                    schema_accepts(&schema, &doc) && cel_accepts(&schema, &doc),
                    "{}: the CRD refuses it",
                    case.name
                );
            }
        }
    }
}

#[test]
fn valid_controllers_pass_validate_schema_and_cel() {
    let schema = crd_schema();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let files = [
        root.join("config/samples/keda_v1alpha1_kedacontroller.yaml"),
        root.join("crates/operator/tests/fixtures/every-field.yaml"),
    ];
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let doc: Value = serde_yaml::from_str(&text).unwrap();
        let kc = cma_api::document::from_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        cma_api::validate(&kc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(schema_accepts(&schema, &doc), "{}: schema refuses it", file.display());
        kube_cel::Validator::new()
            .validate(&schema, &doc, None)
            .unwrap_or_else(|e| panic!("{}: CEL refuses it: {e:?}", file.display()));
    }
}

#[test]
fn every_violation_is_reported_at_once() {
    let doc = document("other", "operator: {logLevel: x, replicas: 0}, metricsServer: {logLevel: \"99\"}");
    let kc: KedaController = serde_json::from_value(doc).unwrap();
    let errors = cma_api::validate(&kc).unwrap_err();
    assert_eq!(
        errors.paths(),
        vec!["metadata.name", "spec.operator.logLevel", "spec.operator.replicas", "spec.metricsServer.logLevel"]
    );
}

#[test]
fn size_limits_are_refused_by_validate_and_the_crd() {
    let schema = crd_schema();
    let kc = |spec: Value| {
        serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController",
            "metadata": {"name": "keda", "namespace": "keda"}, "spec": spec})
    };
    // Pod annotations just over what may be set (Kubernetes' 256 KiB less what the operator adds).
    let value = "x".repeat(1000);
    let entries = cma_api::rules::MAX_ANNOTATION_BYTES / 1000 + 1;
    let annotations: serde_json::Map<String, Value> =
        (0..entries).map(|i| (format!("k{i:03}"), Value::String(value.clone()))).collect();
    let doc = kc(serde_json::json!({"operator": {"podAnnotations": annotations}}));
    assert!(schema_accepts(&schema, &doc));
    assert!(!cel_accepts(&schema, &doc), "the CRD accepts {entries} KB of pod annotations");
    let errors = cma_api::validate(&serde_json::from_value(doc).unwrap()).unwrap_err();
    assert_eq!(errors.paths(), ["spec.operator.podAnnotations"]);
    assert!(errors.to_string().contains("at most 260096 bytes"), "{errors}");

    // One label more than allowed.
    let labels: serde_json::Map<String, Value> =
        (0..=cma_api::rules::MAX_LABELS).map(|i| (format!("l{i}"), Value::String("v".into()))).collect();
    let doc = kc(serde_json::json!({"metricsServer": {"podLabels": labels}}));
    assert!(!schema_accepts(&schema, &doc));
    let errors = cma_api::validate(&serde_json::from_value(doc).unwrap()).unwrap_err();
    assert_eq!(errors.paths(), ["spec.metricsServer.podLabels"]);
}
