//! The API server refuses a CRD whose schema is not structural. Every CRD we ship must be: each object node
//! declares its fields (`properties`), its values (`additionalProperties`) or that it keeps unknown fields
//! (`x-kubernetes-preserve-unknown-fields`); each node has a `type` unless it is an int-or-string or keeps
//! unknown fields; `anyOf` only carries the integer/string pair of an int-or-string.

// Helpers of this test file panic on broken fixtures just like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

/// Structural problems of `node` and everything below it, as `path: problem`.
fn problems(node: &Value, path: &str, out: &mut Vec<String>) {
    let preserve = node["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
    let int_or_string = node["x-kubernetes-int-or-string"] == Value::Bool(true);
    match node["type"].as_str() {
        None if !(preserve || int_or_string) => out.push(format!("{path}: no type")),
        Some(_) if int_or_string => out.push(format!("{path}: int-or-string with a type")),
        Some("object") => {
            let declared = node.get("properties").is_some() || node.get("additionalProperties").is_some() || preserve;
            // The root's metadata is validated by the API server itself; `type: object` is all it may say.
            if !declared && path != ".metadata" {
                out.push(format!("{path}: object without properties, additionalProperties or preserve-unknown"));
            }
            if node.get("properties").is_some() && node.get("additionalProperties").is_some() {
                out.push(format!("{path}: both properties and additionalProperties"));
            }
        }
        Some("array") if node.get("items").is_none() => out.push(format!("{path}: array without items")),
        _ => {}
    }
    if let Some(any_of) = node.get("anyOf") {
        let pair = serde_json::json!([{"type": "integer"}, {"type": "string"}]);
        if !int_or_string || any_of != &pair {
            out.push(format!("{path}: anyOf other than an int-or-string's"));
        }
    }
    for keyword in ["oneOf", "allOf", "not"] {
        if node.get(keyword).is_some() {
            out.push(format!("{path}: {keyword}"));
        }
    }
    if let Some(props) = node["properties"].as_object() {
        for (name, prop) in props {
            let child = if path == "." { format!(".{name}") } else { format!("{path}.{name}") };
            problems(prop, &child, out);
        }
    }
    if let Some(items) = node.get("items") {
        problems(items, &format!("{path}[]"), out);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        problems(values, &format!("{path}{{}}"), out);
    }
}

fn schema_problems(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    problems(schema, ".", &mut out);
    out
}

#[test]
fn every_generated_crd_is_structural() {
    let crds = cma_api::crd::all().unwrap();
    assert_eq!(crds.len(), 7, "KedaController and KEDA's six CRDs");
    let mut report = Vec::new();
    for crd in &crds {
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(&version.schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            for p in schema_problems(&schema) {
                report.push(format!("{}: {p}", crd.metadata.name.as_deref().unwrap_or("?")));
            }
        }
    }
    assert!(report.is_empty(), "non-structural schemas:\n{}", report.join("\n"));
}

#[test]
fn the_check_refuses_what_the_api_server_refuses() {
    let bad = serde_json::json!({
        "type": "object",
        "properties": {
            "untyped": {"description": "no type"},
            "bare": {"type": "object"},
            "choice": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
            "list": {"type": "array"},
            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "kept": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    });
    let found = schema_problems(&bad);
    assert_eq!(
        found,
        vec![
            ".bare: object without properties, additionalProperties or preserve-unknown",
            ".choice: no type",
            ".choice: anyOf other than an int-or-string's",
            ".list: array without items",
            ".untyped: no type",
        ]
    );
}

/// `kubectl apply` (client side) stores the whole object in the last-applied-configuration annotation, which
/// the API server caps at 256 KiB; etcd's object limit (1.5 MiB request, 1 MiB comfortable) is further away.
const ANNOTATION_LIMIT: usize = 262_144;

#[test]
fn every_crd_can_be_applied_with_kubectl_apply() {
    for crd in cma_api::crd::all().unwrap() {
        let size = serde_json::to_vec(&crd).unwrap().len();
        assert!(
            size < ANNOTATION_LIMIT / 2,
            "{} is {size} bytes of JSON; keep it under half the {ANNOTATION_LIMIT}-byte annotation limit",
            crd.metadata.name.as_deref().unwrap_or("?")
        );
    }
}
