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
    let rule = keys
        .iter()
        .map(|k| format!("!('{k}' in self)"))
        .collect::<Vec<_>>()
        .join(" && ");
    serde_json::json!([{"rule": rule, "message": message}])
}

/// Transform for fields holding Kubernetes types (Toleration, Affinity, Volume, ...).
///
/// Keeps the field's own description and drops the upstream ones below it: inlined, they would repeat the
/// same paragraphs for every component and push the CRD towards the etcd object size limit. Quantities get
/// the integer-or-string shape and pattern the API server's own types have.
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
            map.remove("description");
            strip_below(map);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_descriptions),
        _ => {}
    }
}

fn is_quantity(map: &Map<String, Value>) -> bool {
    map.get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.starts_with(QUANTITY_DESCRIPTION_PREFIX))
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
}
