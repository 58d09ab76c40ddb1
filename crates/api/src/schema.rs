//! Schema transforms shared by the CRDs this crate generates.

use schemars::Schema;
use serde_json::{Map, Value};

/// The pattern controller-gen puts on every `resource.Quantity`: the API server then refuses a malformed
/// quantity at admission instead of the operator discovering it later.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";

/// How k8s-openapi's `Quantity` schema starts its description: the only way to recognise it once inlined.
const QUANTITY_DESCRIPTION_PREFIX: &str = "Quantity is a fixed-point representation";

/// CEL rule refusing any of `keys` in a map; one `in` test per key keeps the rule's estimated cost constant
/// (a quantifier over the map would be priced by the largest map a request could hold).
pub fn forbidden_keys_rule(keys: &[&str], message: &str) -> serde_json::Value {
    let rule = keys.iter().map(|k| format!("!('{k}' in self)")).collect::<Vec<_>>().join(" && ");
    serde_json::json!([{"rule": rule, "message": message}])
}

/// Transform for fields holding Kubernetes types (Toleration, Affinity, Volume, ...).
///
/// Keeps the field's own description and drops the upstream ones below it: inlined, they would repeat the
/// same paragraphs for every component and push the CRD towards the etcd object size limit. Quantities get
/// the integer-or-string shape and pattern the API server's own types have. An ObjectMeta nested in a template
/// (a volume claim template's metadata) keeps only the fields a template may set, as controller-gen writes it:
/// its `managedFields[].fieldsV1` would otherwise be an object that declares nothing.
pub fn embedded_k8s(schema: &mut Schema) {
    if let Some(map) = schema.as_object_mut() {
        strip_below(map);
    }
}

/// Strips descriptions from every schema below `map` (not from `map` itself).
fn strip_below(map: &mut Map<String, Value>) {
    for (key, child) in map.iter_mut() {
        match (key.as_str(), child) {
            // `properties` maps field names (one may be called "description") to schemas.
            ("properties", Value::Object(props)) => props.values_mut().for_each(strip_descriptions),
            ("description", _) => {}
            (_, child) => strip_descriptions(child),
        }
    }
}

fn strip_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if is_quantity(map) {
                quantity_shape(map);
                return;
            }
            if is_object_meta(map) {
                *map = embedded_object_meta();
                return;
            }
            map.remove("description");
            strip_below(map);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

fn is_quantity(map: &Map<String, Value>) -> bool {
    map.get("description").and_then(Value::as_str).is_some_and(|d| d.starts_with(QUANTITY_DESCRIPTION_PREFIX))
}

/// Fields only an ObjectMeta schema has together.
const OBJECT_META_MARKERS: [&str; 3] = ["managedFields", "ownerReferences", "resourceVersion"];

fn is_object_meta(map: &Map<String, Value>) -> bool {
    map.get("properties")
        .and_then(Value::as_object)
        .is_some_and(|props| OBJECT_META_MARKERS.iter().all(|k| props.contains_key(*k)))
}

/// The metadata a template may carry (controller-gen's embedded ObjectMeta).
pub fn embedded_object_meta() -> Map<String, Value> {
    let string_map = serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}});
    let shape = serde_json::json!({
        "type": "object",
        "properties": {
            "annotations": string_map,
            "finalizers": {"type": "array", "items": {"type": "string"}},
            "labels": string_map,
            "name": {"type": "string"},
            "namespace": {"type": "string"},
        },
    });
    match shape {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn quantity_shape(map: &mut Map<String, Value>) {
    map.remove("description");
    map.insert("pattern".into(), Value::String(QUANTITY_PATTERN.into()));
    map.insert("x-kubernetes-int-or-string".into(), Value::Bool(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_descriptions_go_but_the_fields_own_stays() {
        let mut schema: Schema = serde_json::from_value(serde_json::json!({
            "description": "ours",
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "upstream"},
                "limits": {"additionalProperties": {"description": "Quantity is a fixed-point representation of a number.", "x-kubernetes-int-or-string": true}}
            }
        }))
        .unwrap();
        embedded_k8s(&mut schema);
        let v = schema.as_value();
        assert_eq!(v["description"], "ours");
        assert!(v["properties"]["description"].get("description").is_none());
        assert_eq!(v["properties"]["description"]["type"], "string");
        let q = &v["properties"]["limits"]["additionalProperties"];
        assert_eq!(q["pattern"], QUANTITY_PATTERN);
        assert_eq!(q["x-kubernetes-int-or-string"], true);
        assert!(q.get("description").is_none());
    }

    #[test]
    fn nested_object_meta_keeps_only_what_a_template_may_set() {
        let mut schema: Schema = serde_json::from_value(serde_json::json!({
            "type": "object",
            "properties": {
                "metadata": {"type": "object", "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "managedFields": {"type": "array", "items": {"type": "object", "properties": {"fieldsV1": {"type": "object"}}}},
                    "ownerReferences": {"type": "array", "items": {"type": "object"}},
                    "resourceVersion": {"type": "string"}
                }}
            }
        }))
        .unwrap();
        embedded_k8s(&mut schema);
        let meta = &schema.as_value()["properties"]["metadata"]["properties"];
        let keys: Vec<&String> = meta.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["annotations", "finalizers", "labels", "name", "namespace"]);
    }
}
