//! KEDA objects as users write them (the product documentation's examples and KEDA's own docs, in
//! `tests/fixtures/keda/`) load into the typed API, are accepted by the generated CRD schemas, lose no field to
//! the API server's pruning and serialize back unchanged. The negative cases pin what the API server refuses.

// Helpers of this test file panic on broken fixtures just like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use cma_api::eventing_keda_sh::{CloudEventSource, ClusterCloudEventSource};
use cma_api::keda_sh::{
    ClusterTriggerAuthentication, PAUSED_REPLICAS_ANNOTATION, ScaledJob, ScaledObject, TriggerAuthentication,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keda")
}

/// Every document of every fixture file, with the file it came from.
fn fixtures() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let value: Value = serde_yaml::with::singleton_map_recursive::deserialize(doc)
                .unwrap_or_else(|e| panic!("{name} document {i}: {e}"));
            docs.push((format!("{name}#{i}"), value));
        }
    }
    docs
}

/// The openAPIV3Schema of each generated CRD, by kind, with its compiled validator.
fn schemas() -> &'static BTreeMap<String, (Value, jsonschema::Validator)> {
    static SCHEMAS: OnceLock<BTreeMap<String, (Value, jsonschema::Validator)>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        cma_api::crd::all()
            .unwrap()
            .into_iter()
            .map(|crd| {
                let schema =
                    serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap();
                let validator = jsonschema::validator_for(&schema).unwrap();
                (crd.spec.names.kind, (schema, validator))
            })
            .collect()
    })
}

/// The openAPIV3Schema of the generated CRD for `kind`.
fn schema(kind: &str) -> &'static Value {
    &schemas().get(kind).unwrap_or_else(|| panic!("no CRD for {kind}")).0
}

/// Schema errors of `doc` against the CRD of its kind, as `path: message`.
fn schema_errors(doc: &Value) -> Vec<String> {
    let kind = doc["kind"].as_str().unwrap();
    schemas()[kind].1.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Fields of `doc` the API server would prune: not declared in the schema and not under a node that
/// preserves unknown fields. The root `metadata` is the API server's own and is not walked.
fn pruned_fields(schema: &Value, doc: &Value, path: &str, out: &mut Vec<String>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        return;
    }
    match doc {
        Value::Object(map) => {
            if let Some(props) = schema["properties"].as_object() {
                for (key, value) in map {
                    let child = format!("{path}.{key}");
                    match props.get(key) {
                        Some(_) if path.is_empty() && key == "metadata" => {}
                        Some(s) => pruned_fields(s, value, &child, out),
                        None => out.push(child),
                    }
                }
            } else if let Some(values) = schema.get("additionalProperties") {
                for (key, value) in map {
                    pruned_fields(values, value, &format!("{path}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pruned_fields(&schema["items"], item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Loads `doc` as `T`, serializes it back and returns the difference, if any.
fn round_trip<T: DeserializeOwned + Serialize>(doc: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(doc.clone()).map_err(|e| format!("does not load: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if &back == doc { Ok(()) } else { Err(format!("serializes differently:\n  read:    {doc}\n  written: {back}")) }
}

fn typed_round_trip(doc: &Value) -> Result<(), String> {
    match doc["kind"].as_str().unwrap_or("") {
        "ScaledObject" => round_trip::<ScaledObject>(doc),
        "ScaledJob" => round_trip::<ScaledJob>(doc),
        "TriggerAuthentication" => round_trip::<TriggerAuthentication>(doc),
        "ClusterTriggerAuthentication" => round_trip::<ClusterTriggerAuthentication>(doc),
        "CloudEventSource" => round_trip::<CloudEventSource>(doc),
        "ClusterCloudEventSource" => round_trip::<ClusterCloudEventSource>(doc),
        other => Err(format!("unexpected kind {other:?}")),
    }
}

fn fixture(name: &str, index: usize) -> Value {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == &format!("{name}#{index}"))
        .unwrap_or_else(|| panic!("no fixture {name}#{index}"))
        .1
}

#[test]
fn documented_examples_load_validate_and_round_trip() {
    let docs = fixtures();
    let mut problems = Vec::new();
    let mut kinds = BTreeMap::<String, usize>::new();
    for (name, doc) in &docs {
        *kinds.entry(doc["kind"].as_str().unwrap_or("").to_string()).or_default() += 1;
        for e in schema_errors(doc) {
            problems.push(format!("{name}: schema: {e}"));
        }
        let mut pruned = Vec::new();
        pruned_fields(schema(doc["kind"].as_str().unwrap()), doc, "", &mut pruned);
        for p in pruned {
            problems.push(format!("{name}: the API server would drop {p}"));
        }
        if let Err(e) = typed_round_trip(doc) {
            problems.push(format!("{name}: {e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let expected: BTreeSet<&str> = [
        "ScaledObject",
        "ScaledJob",
        "TriggerAuthentication",
        "ClusterTriggerAuthentication",
        "CloudEventSource",
        "ClusterCloudEventSource",
    ]
    .into();
    assert_eq!(kinds.keys().map(String::as_str).collect::<BTreeSet<_>>(), expected, "every kind has examples");
    assert!(docs.len() >= 25, "only {} documents loaded", docs.len());
}

#[test]
fn paused_replicas_annotation_is_read_from_the_documented_example() {
    let so: ScaledObject = serde_json::from_value(fixture("seed-so-paused.yaml", 0)).unwrap();
    let annotations = so.metadata.annotations.unwrap_or_default();
    assert_eq!(annotations.get(PAUSED_REPLICAS_ANNOTATION).map(String::as_str), Some("4"));
}

#[test]
fn unquoted_trigger_metadata_values_are_refused() {
    // The product documentation writes `ignoreNullValues: false`; KEDA's trigger metadata is a map of
    // strings, so the API server refuses the unquoted boolean.
    let mut doc = fixture("seed-so-prometheus.yaml", 0);
    doc["spec"]["triggers"][0]["metadata"]["ignoreNullValues"] = json!(false);
    let errors = schema_errors(&doc);
    assert!(errors.iter().any(|e| e.starts_with("/spec/triggers/0/metadata/ignoreNullValues")), "{errors:?}");
    assert!(serde_json::from_value::<ScaledObject>(doc).is_err());
}

#[test]
fn retired_pod_identity_providers_are_refused() {
    // The product documentation lists azure and aws-kiam, which KEDA 2.20 no longer accepts.
    for provider in ["azure", "aws-kiam"] {
        let mut doc = fixture("seed-ta-pod-identity.yaml", 0);
        doc["spec"]["podIdentity"]["provider"] = json!(provider);
        assert!(!schema_errors(&doc).is_empty(), "{provider} was accepted");
        assert!(serde_json::from_value::<TriggerAuthentication>(doc).is_err());
    }
}

#[test]
fn fields_outside_the_schema_are_reported() {
    // The product documentation's complete ScaledObject example carries a KedaController block; the API
    // server drops it silently, which users only notice because their audit settings do nothing.
    let mut doc = fixture("seed-so-every-option.yaml", 0);
    doc["spec"]["metricsServer"] = json!({"auditConfig": {"logFormat": "json"}});
    let mut pruned = Vec::new();
    pruned_fields(schema("ScaledObject"), &doc, "", &mut pruned);
    assert_eq!(pruned, vec![".spec.metricsServer".to_string()]);
}

#[test]
fn job_template_metadata_keeps_the_five_fields_keda_lists_and_drops_the_rest() {
    // As with KEDA 2.20.2's own CRD: labels, annotations, finalizers, name and namespace are kept; any other
    // metadata field of the Job template is pruned by the API server.
    let mut doc = fixture("keda-sj-default-strategy.yaml", 0);
    let mut pruned = Vec::new();
    pruned_fields(schema("ScaledJob"), &doc, "", &mut pruned);
    assert!(pruned.is_empty(), "{pruned:?}");
    doc["spec"]["jobTargetRef"]["template"]["metadata"]["generateName"] = json!("encoder-");
    pruned_fields(schema("ScaledJob"), &doc, "", &mut pruned);
    assert_eq!(pruned, [".spec.jobTargetRef.template.metadata.generateName"]);
    assert!(schema_errors(&doc).is_empty());
}

#[test]
fn job_template_metadata_values_are_typed() {
    for (field, value) in [("labels", json!({"app": 1})), ("finalizers", json!("one")), ("name", json!(["a"]))] {
        let mut doc = fixture("keda-sj-default-strategy.yaml", 0);
        doc["spec"]["jobTargetRef"]["template"]["metadata"][field] = value;
        assert!(!schema_errors(&doc).is_empty(), "{field}: accepted");
    }
}

#[test]
fn scaled_job_triggers_take_a_metric_type_and_the_default_strategy_can_be_named() {
    let job: ScaledJob = serde_json::from_value(fixture("keda-sj-default-strategy.yaml", 0)).unwrap();
    assert_eq!(job.spec.triggers[0].metric_type.as_deref(), Some("AverageValue"));
    let strategy = job.spec.scaling_strategy.and_then(|s| s.strategy);
    assert_eq!(strategy, Some(cma_api::keda_sh::JobScalingStrategy::Default));

    let mut doc = fixture("keda-sj-default-strategy.yaml", 0);
    doc["spec"]["scalingStrategy"]["strategy"] = json!("fastest");
    assert!(!schema_errors(&doc).is_empty());
}

#[test]
fn a_scaled_object_needs_a_target_and_a_trigger() {
    let mut no_triggers = fixture("seed-so-cpu.yaml", 0);
    no_triggers["spec"]["triggers"] = json!([]);
    assert!(!schema_errors(&no_triggers).is_empty());

    let mut empty_type = fixture("seed-so-cpu.yaml", 0);
    empty_type["spec"]["triggers"][0]["type"] = json!("");
    assert!(!schema_errors(&empty_type).is_empty());

    let mut no_target = fixture("seed-so-cpu.yaml", 0);
    no_target["spec"].as_object_mut().unwrap().remove("scaleTargetRef");
    assert!(!schema_errors(&no_target).is_empty());
}

#[test]
fn replica_bounds_are_checked() {
    for (field, value) in
        [("maxReplicaCount", 0), ("minReplicaCount", -1), ("pollingInterval", 0), ("cooldownPeriod", -5)]
    {
        let mut doc = fixture("seed-so-cpu.yaml", 0);
        doc["spec"][field] = json!(value);
        assert!(!schema_errors(&doc).is_empty(), "{field}: {value} accepted");
    }
}

#[test]
fn fallback_behavior_and_hpa_window_are_bounded() {
    let mut doc = fixture("keda-so-advanced.yaml", 0);
    doc["spec"]["fallback"]["behavior"] = json!("keepCalm");
    assert!(!schema_errors(&doc).is_empty());

    let mut doc = fixture("keda-so-advanced.yaml", 0);
    doc["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] =
        json!(3601);
    assert!(!schema_errors(&doc).is_empty());
}

#[test]
fn malformed_quantities_are_refused() {
    let mut doc = fixture("keda-so-advanced.yaml", 0);
    doc["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleUp"]["tolerance"] =
        json!("five percent");
    assert!(!schema_errors(&doc).is_empty());

    let mut doc = fixture("keda-sj-rollout.yaml", 0);
    doc["spec"]["jobTargetRef"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] = json!("ten gigs");
    assert!(!schema_errors(&doc).is_empty());

    // A named port is an int-or-string, not a quantity.
    let doc = fixture("keda-sj-rollout.yaml", 0);
    assert_eq!(
        doc["spec"]["jobTargetRef"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"],
        json!("http")
    );
    assert!(schema_errors(&doc).is_empty());
}

#[test]
fn scaled_job_spec_is_optional_as_upstream_but_scaled_object_spec_is_not() {
    let job = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "x"}});
    assert!(schema_errors(&job).is_empty());
    let object = json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "x"}});
    assert!(!schema_errors(&object).is_empty());
}

#[test]
fn vault_generic_secret_type_is_the_empty_string() {
    let mut doc = fixture("keda-ta-hashicorp-vault.yaml", 1);
    doc["spec"]["hashiCorpVault"]["secrets"][0]["type"] = json!("");
    assert!(schema_errors(&doc).is_empty());
    round_trip::<TriggerAuthentication>(&doc).unwrap();
    doc["spec"]["hashiCorpVault"]["secrets"][0]["type"] = json!("kv");
    assert!(!schema_errors(&doc).is_empty());
}
