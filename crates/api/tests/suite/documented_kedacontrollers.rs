//! The KedaControllers of the product documentation (`tests/fixtures/kedacontroller/seed-*.yaml`) write
//! `omitStages: "RequestReceived"`, a string where the field is a list (as in audit.k8s.io/v1), and the
//! install example names its claim "persistentVolumeClaimName", which a CEL rule of the CRD refuses (object
//! names are lower case) once the type error is gone.
//!
//! The string form is refused, not accepted: a structural schema gives every field one type, and the only
//! two-type shape it allows is integer-or-string (`x-kubernetes-int-or-string`); string-or-list would need
//! `x-kubernetes-preserve-unknown-fields`, which turns off pruning and type checking below it. A CEL rule
//! cannot give a friendlier message either: the API server runs no CEL rule once the schema found a wrong
//! type. So the API server refuses the documented YAML with its own type error, and `cma-operator render`
//! (reading the file with `cma_api::document`) says which field and shows the list form.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cma_api::audit::PolicyDocument;
use cma_api::document::{DocumentError, from_yaml};
use serde_json::{Value, json};

const OMIT_STAGES: &str = "/spec/metricsServer/auditConfig/policy/omitStages";

fn text(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kedacontroller").join(name);
    std::fs::read_to_string(path).unwrap()
}

fn value(name: &str) -> Value {
    serde_yaml::from_str(&text(name)).unwrap()
}

fn schema() -> Value {
    let crd = cma_api::crd::kedacontroller().unwrap();
    serde_json::to_value(crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap()).unwrap()
}

/// The OpenAPI schema's errors, as (instance path, message).
fn schema_errors(doc: &Value) -> Vec<(String, String)> {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut errors: Vec<(String, String)> =
        validator.iter_errors(doc).map(|e| (e.instance_path().to_string(), e.to_string())).collect();
    errors.sort();
    errors
}

/// The documented YAML with `omitStages` written as the list it is.
fn as_list(mut doc: Value) -> Value {
    doc["spec"]["metricsServer"]["auditConfig"]["policy"]["omitStages"] = json!(["RequestReceived"]);
    doc
}

fn yaml(doc: &Value) -> String {
    serde_yaml::to_string(doc).unwrap()
}

#[test]
fn omit_stages_stays_a_plain_list_of_stage_names_in_the_crd() {
    let policy = &schema()["properties"]["spec"]["properties"]["metricsServer"]["properties"]["auditConfig"]["properties"]
        ["policy"];
    for node in
        [&policy["properties"]["omitStages"], &policy["properties"]["rules"]["items"]["properties"]["omitStages"]]
    {
        assert_eq!(node["type"], "array");
        assert_eq!(node["items"]["type"], "string");
        for escape in ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "anyOf", "oneOf"] {
            assert!(node.get(escape).is_none(), "{escape} on omitStages");
        }
    }
}

#[test]
fn the_documented_install_example_is_refused_for_its_omit_stages_string_first() {
    let errors = schema_errors(&value("seed-install.yaml"));
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, [OMIT_STAGES], "{errors:?}");
    // A type error: the API server reports it as "must be of type array" and then skips every CEL rule, the
    // claim name's among them.
    assert!(errors[0].1.contains("array"), "{errors:?}");
}

#[test]
fn the_documented_audit_example_is_refused_for_its_omit_stages_string_only() {
    let errors = schema_errors(&value("seed-audit.yaml"));
    let paths: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, [OMIT_STAGES], "{errors:?}");
}

#[test]
fn render_input_names_the_field_and_shows_the_list_form() {
    for file in ["seed-install.yaml", "seed-audit.yaml"] {
        let err = from_yaml(&text(file)).unwrap_err();
        assert!(matches!(err, DocumentError::NotAList(_)), "{file}: {err:?}");
        assert_eq!(
            err.to_string(),
            "spec.metricsServer.auditConfig.policy.omitStages must be a list, e.g. omitStages: [RequestReceived]",
            "{file}"
        );
    }
}

#[test]
fn the_omit_stages_list_leaves_the_placeholder_claim_as_the_only_problem() {
    let doc = as_list(value("seed-install.yaml"));
    assert!(schema_errors(&doc).is_empty(), "{:?}", schema_errors(&doc));
    let refused = kube_cel::Validator::new().validate(&schema(), &doc, None).unwrap_err();
    let refused = format!("{refused:?}");
    assert!(refused.contains("must be an object name"), "{refused}");
    let kc = from_yaml(&yaml(&doc)).unwrap();
    let problems = cma_api::validate(&kc).unwrap_err();
    assert_eq!(problems.paths(), ["spec.metricsServer.auditConfig.logOutputVolumeClaim"]);
    assert!(problems.to_string().contains("name an existing PersistentVolumeClaim"), "{problems}");
}

#[test]
fn corrected_examples_are_accepted_and_keep_request_received_omitted() {
    let mut install = as_list(value("seed-install.yaml"));
    install["spec"]["metricsServer"]["auditConfig"]["logOutputVolumeClaim"] = json!("keda-audit-log");
    for doc in [install, as_list(value("seed-audit.yaml"))] {
        assert!(schema_errors(&doc).is_empty(), "{:?}", schema_errors(&doc));
        kube_cel::Validator::new().validate(&schema(), &doc, None).unwrap();
        let kc = from_yaml(&yaml(&doc)).unwrap();
        cma_api::validate(&kc).unwrap();
        let policy = &kc.spec.metrics_server.audit_config.policy;
        assert_eq!(policy.omit_stages, ["RequestReceived"]);
        let written = serde_json::to_value(PolicyDocument::new(policy)).unwrap();
        assert_eq!(written["omitStages"], json!(["RequestReceived"]));
        assert_eq!(written["rules"], json!([{"level": "Metadata"}]));
    }
}
