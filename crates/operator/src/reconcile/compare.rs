//! Does the live object already hold everything we would apply? If so, the apply is skipped: steady state
//! costs no write, and fields others add (caBundle injections, defaults, status) never cause one.

use serde_json::Value;

use cma_api::quantity;

/// Whether every field of `desired` is present in `live` with an equal value.
///
/// Lenient where the API server normalises: a desired zero value (empty string, list or map, `false`,
/// `null`) matches an absent field, since Go's `omitempty` drops it; quantities under `limits`,
/// `requests` and `sizeLimit` compare by value (`1000m` equals `1`). Lists compare item by item and must
/// have the same length (an item added or removed by someone else is drift), except lists whose items are
/// keyed by `name`, which server-side apply merges by name: ours must be there, in any order.
pub fn contains(live: &Value, desired: &Value) -> bool {
    contains_at(live, desired, None)
}

fn contains_at(live: &Value, desired: &Value, key: Option<&str>) -> bool {
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(k, v)| match have.get(k) {
            Some(h) => contains_at(h, v, Some(k)),
            None => is_zero(v),
        }),
        (Value::Object(want), Value::Null) => want.values().all(is_zero),
        (Value::Array(want), Value::Array(have)) if keyed_by_name(want) => {
            // Server-side apply merges these lists by name and keeps the live order; items other writers added
            // are theirs (apply never removes them, so asking for it would fight them): match ours by name.
            want.iter().all(|w| have.iter().find(|h| h["name"] == w["name"]).is_some_and(|h| contains_at(h, w, key)))
        }
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contains_at(h, w, key))
        }
        (Value::Array(want), Value::Null) => want.is_empty(),
        (Value::String(want), Value::String(have)) if is_quantity_field(key) => quantities_equal(want, have),
        (Value::Number(want), Value::String(have)) | (Value::String(have), Value::Number(want))
            if is_quantity_field(key) =>
        {
            quantities_equal(&want.to_string(), have)
        }
        (want, Value::Null) => is_zero(want),
        (want, have) => numbers_equal(want, have).unwrap_or(want == have),
    }
}

/// The path of the first field of `desired` that `live` does not hold (for logs), `None` when it holds all.
pub fn first_difference(live: &Value, desired: &Value) -> Option<String> {
    difference_at(live, desired, None, String::new())
}

fn difference_at(live: &Value, desired: &Value, key: Option<&str>, path: String) -> Option<String> {
    if contains_at(live, desired, key) {
        return None;
    }
    match (desired, live) {
        (Value::Object(want), Value::Object(have)) => want.iter().find_map(|(k, v)| {
            let here = format!("{path}.{k}");
            match have.get(k) {
                Some(h) => difference_at(h, v, Some(k), here),
                None if is_zero(v) => None,
                None => Some(here),
            }
        }),
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() || keyed_by_name(want) => {
            want.iter().enumerate().find_map(|(i, w)| {
                let h = if keyed_by_name(want) { have.iter().find(|h| h["name"] == w["name"]) } else { have.get(i) };
                match h {
                    Some(h) => difference_at(h, w, key, format!("{path}[{i}]")),
                    None => Some(format!("{path}[{i}]")),
                }
            })
        }
        _ => Some(path),
    }
}

/// Whether every item is an object with a unique `name` (containers, env, volumes, mounts' volumes...).
fn keyed_by_name(items: &[Value]) -> bool {
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    !items.is_empty() && names.len() == items.len() && {
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.windows(2).all(|w| w[0] != w[1])
    }
}

/// Quantities live in maps under these keys (`resources.limits.cpu`) or in `sizeLimit` itself.
fn is_quantity_field(key: Option<&str>) -> bool {
    matches!(key, Some("limits" | "requests" | "sizeLimit" | "cpu" | "memory" | "ephemeral-storage"))
}

fn quantities_equal(a: &str, b: &str) -> bool {
    match (quantity::parse(a), quantity::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `1` and `1.0` are the same number once they went through the API server.
fn numbers_equal(a: &Value, b: &Value) -> Option<bool> {
    Some(a.as_f64()? == b.as_f64()?)
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_zero),
        Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_added_by_others_do_not_count_as_drift() {
        let desired = json!({"spec": {"service": {"name": "m", "port": 443}}});
        let live = json!({"spec": {"service": {"name": "m", "port": 443}, "caBundle": "LS0t"}, "status": {}});
        assert!(contains(&live, &desired));
    }

    #[test]
    fn a_changed_or_missing_field_is_drift() {
        let desired = json!({"spec": {"replicas": 1, "template": {"spec": {"nodeSelector": {"a": "b"}}}}});
        assert!(!contains(&json!({"spec": {"replicas": 2}}), &desired));
        assert!(!contains(&json!({"spec": {"replicas": 1, "template": {"spec": {}}}}), &desired));
    }

    #[test]
    fn omitted_zero_values_match() {
        let desired = json!({"env": [{"name": "WATCH_NAMESPACE", "value": ""}], "emptyDir": {}});
        let live = json!({"env": [{"name": "WATCH_NAMESPACE"}]});
        assert!(contains(&live, &desired));
    }

    #[test]
    fn list_items_compare_in_order_and_extra_items_are_drift() {
        let desired = json!({"args": ["--a", "--b"]});
        assert!(contains(&json!({"args": ["--a", "--b"]}), &desired));
        assert!(!contains(&json!({"args": ["--b", "--a"]}), &desired));
        assert!(!contains(&json!({"args": ["--a", "--b", "--c"]}), &desired));
    }

    #[test]
    fn named_items_match_by_name_in_any_order() {
        let desired = json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
        assert!(contains(&json!({"env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}), &desired));
        assert!(!contains(&json!({"env": [{"name": "B", "value": "2"}, {"name": "A", "value": "9"}]}), &desired));
        assert!(!contains(&json!({"env": [{"name": "A", "value": "1"}]}), &desired));
        // An item another writer added is theirs: apply leaves it, so it is no reason to write.
        let more =
            json!({"env": [{"name": "C", "value": "3"}, {"name": "B", "value": "2"}, {"name": "A", "value": "1"}]});
        assert!(contains(&more, &desired));
    }

    #[test]
    fn quantities_compare_by_value_but_only_where_they_are_quantities() {
        let desired = json!({"resources": {"limits": {"cpu": "1000m", "memory": "1Gi"}}});
        let live = json!({"resources": {"limits": {"cpu": "1", "memory": "1024Mi"}}});
        assert!(contains(&live, &desired));
        let env = json!({"env": [{"name": "X", "value": "1000m"}]});
        assert!(!contains(&json!({"env": [{"name": "X", "value": "1"}]}), &env));
    }

    #[test]
    fn numbers_of_different_representation_match() {
        assert!(contains(&json!({"a": 1.0}), &json!({"a": 1})));
        assert!(!contains(&json!({"a": 2}), &json!({"a": 1})));
    }
}
