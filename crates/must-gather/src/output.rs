//! Files of the output tree: what they hold, deterministic YAML (keys sorted, list items ordered by
//! namespace and name), and writing them under the root.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Content of one output file.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    /// One object, written as YAML.
    Object(Value),
    /// A list (`<Kind>List` with `items`), written as YAML.
    List(Value),
    /// A JSON document written as indented JSON (raw API answers such as discovery documents).
    Json(Value),
    /// Plain text.
    Text(String),
}

/// One file to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Path relative to the root, `/`-separated.
    pub path: String,
    /// Content.
    pub doc: Document,
}

impl Output {
    /// An object file.
    pub fn object(path: String, obj: Value) -> Self {
        Self { path, doc: Document::Object(obj) }
    }
}

/// Keys sorted at every level (independent of serde_json's map implementation).
pub fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sorted(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn sort_key(obj: &Value) -> (String, String) {
    let get = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    (get("/metadata/namespace"), get("/metadata/name"))
}

/// Gives every item of a list its `apiVersion` and `kind` (the API leaves them out of list items, `kubectl
/// get -o yaml` and `oc adm inspect` put them back) and orders the items by namespace and name.
pub fn normalise_list(list: &mut Value) {
    let api_version = list.get("apiVersion").cloned();
    let kind = list
        .get("kind")
        .and_then(Value::as_str)
        .and_then(|k| k.strip_suffix("List"))
        .map(|k| Value::String(k.to_string()));
    if let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) {
        for item in items.iter_mut() {
            if let Some(map) = item.as_object_mut() {
                if let Some(v) = &api_version {
                    map.entry("apiVersion").or_insert_with(|| v.clone());
                }
                if let Some(k) = &kind {
                    map.entry("kind").or_insert_with(|| k.clone());
                }
            }
        }
        items.sort_by_key(sort_key);
    }
}

/// The items of a list (empty when it has none).
pub fn items(list: &Value) -> &[Value] {
    list.get("items").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// The bytes of a document.
pub fn render(doc: &Document) -> Result<Vec<u8>, serde_yaml::Error> {
    Ok(match doc {
        Document::Object(v) | Document::List(v) => serde_yaml::to_string(&sorted(v.clone()))?.into_bytes(),
        Document::Json(v) => {
            let mut bytes = serde_json::to_vec_pretty(&sorted(v.clone()))
                .map_err(<serde_yaml::Error as serde::ser::Error>::custom)?;
            bytes.push(b'\n');
            bytes
        }
        Document::Text(t) => t.clone().into_bytes(),
    })
}

/// The absolute path of a relative output path.
pub fn full_path(root: &Path, rel: &str) -> PathBuf {
    rel.split('/').fold(root.to_path_buf(), |p, s| p.join(s))
}

/// Writes bytes at `root/rel`, creating directories.
pub fn write(root: &Path, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
    let path = full_path(root, rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_get_kinds_and_a_stable_order() {
        let mut list = json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "items": [
            {"metadata": {"name": "b", "namespace": "x"}},
            {"metadata": {"name": "a", "namespace": "x"}},
        ]});
        normalise_list(&mut list);
        assert_eq!(list["items"][0]["metadata"]["name"], "a");
        assert_eq!(list["items"][0]["kind"], "Deployment");
        assert_eq!(list["items"][1]["apiVersion"], "apps/v1");
        let yaml = String::from_utf8(render(&Document::List(list)).unwrap()).unwrap();
        assert!(yaml.starts_with("apiVersion: apps/v1\nitems:\n"), "{yaml}");
    }

    #[test]
    fn yaml_keys_are_sorted() {
        let v = json!({"b": 1, "a": {"d": 1, "c": 2}});
        let yaml = String::from_utf8(render(&Document::Object(v)).unwrap()).unwrap();
        assert_eq!(yaml, "a:\n  c: 2\n  d: 1\nb: 1\n");
    }
}
