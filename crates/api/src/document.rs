//! Reading a KedaController from a YAML or JSON document, as strictly as the API server does with
//! `kubectl --validate=strict`: unknown fields and a wrong kind are errors, not silently dropped.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use crate::KedaController;

/// Why a document is not a KedaController.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    /// Not YAML/JSON, or a field has the wrong type.
    #[error("not a valid KedaController document: {0}")]
    Syntax(String),
    /// The document is empty.
    #[error("the document is empty")]
    Empty,
    /// More than one document.
    #[error("expected one KedaController, found {0} documents")]
    Several(usize),
    /// Another kind or version.
    #[error("expected apiVersion keda.sh/v1alpha1 and kind KedaController, found {api_version:?} {kind:?}")]
    WrongKind {
        /// The document's apiVersion.
        api_version: String,
        /// The document's kind.
        kind: String,
    },
    /// Fields the API does not have (typos, fields of a newer version).
    #[error("unknown field{}: {}", if .0.len() > 1 { "s" } else { "" }, .0.join(", "))]
    UnknownFields(Vec<String>),
}

/// Parses exactly one KedaController from YAML (JSON is YAML too).
pub fn from_yaml(text: &str) -> Result<KedaController, DocumentError> {
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(document).map_err(|e| DocumentError::Syntax(e.to_string()))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    let value = match documents.len() {
        0 => return Err(DocumentError::Empty),
        1 => documents.remove(0),
        n => return Err(DocumentError::Several(n)),
    };
    let field = |name: &str| value.get(name).and_then(serde_yaml::Value::as_str).unwrap_or_default().to_string();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    if api_version != "keda.sh/v1alpha1" || kind != KedaController::KIND {
        return Err(DocumentError::WrongKind { api_version, kind });
    }
    let json = serde_json::to_value(&value).map_err(|e| DocumentError::Syntax(e.to_string()))?;
    let unknown = unknown_fields(&json)?;
    if !unknown.is_empty() {
        return Err(DocumentError::UnknownFields(unknown));
    }
    serde_json::from_value(json).map_err(|e| DocumentError::Syntax(e.to_string()))
}

/// The KedaController's schema, generated once.
static SCHEMA: LazyLock<Result<Value, String>> = LazyLock::new(|| {
    let crd = crate::crd::kedacontroller().map_err(|e| e.to_string())?;
    let schema = crd.spec.versions.first().and_then(|v| v.schema.as_ref()).and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema).map_err(|e| e.to_string())
});

/// Paths of the fields of `document` its schema does not have: the fields the API server would prune
/// (or refuse, with strict field validation).
fn unknown_fields(document: &Value) -> Result<Vec<String>, DocumentError> {
    let schema = SCHEMA.as_ref().map_err(|e| DocumentError::Syntax(e.clone()))?;
    let mut unknown = Vec::new();
    walk(document, schema, "", &mut unknown);
    Ok(unknown)
}

fn walk(value: &Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    let open = |key: &str| schema.get(key).and_then(Value::as_bool).unwrap_or(false);
    if open("x-kubernetes-preserve-unknown-fields") || open("x-kubernetes-int-or-string") {
        return;
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                // A free-form object (metadata is validated by the API server itself).
                return;
            }
            for (key, child) in map {
                if path.is_empty() && key == "status" {
                    continue; // the operator's, ignored on input
                }
                let child_path = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                match properties.and_then(|p| p.get(key)).or(additional) {
                    Some(child_schema) => walk(child, child_schema, &child_path, unknown),
                    None => unknown.push(child_path),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_document_parses() {
        let kc = from_yaml("apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata:\n  name: keda\n").unwrap();
        assert_eq!(kc.metadata.name.as_deref(), Some("keda"));
        assert_eq!(kc.spec, Default::default());
    }

    #[test]
    fn typos_are_reported_with_their_path() {
        let err = from_yaml(
            "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata: {name: keda}\nspec:\n  operater: {}\n  operator:\n    logLevl: debug\n",
        )
        .unwrap_err();
        assert_eq!(err, DocumentError::UnknownFields(vec!["spec.operater".into(), "spec.operator.logLevl".into()]));
    }

    #[test]
    fn typos_inside_flattened_and_embedded_types_are_found() {
        let err = from_yaml(
            "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nspec:\n  operator:\n    tolerations:\n      - {key: a, efect: NoSchedule}\n",
        )
        .unwrap_err();
        assert_eq!(err, DocumentError::UnknownFields(vec!["spec.operator.tolerations[0].efect".into()]));
    }

    #[test]
    fn other_kinds_and_several_documents_are_refused() {
        assert!(matches!(from_yaml("apiVersion: v1\nkind: ConfigMap\n"), Err(DocumentError::WrongKind { .. })));
        let two = "apiVersion: keda.sh/v1alpha1\nkind: KedaController\n---\napiVersion: keda.sh/v1alpha1\nkind: KedaController\n";
        assert_eq!(from_yaml(two), Err(DocumentError::Several(2)));
        assert_eq!(from_yaml(""), Err(DocumentError::Empty));
        assert!(matches!(from_yaml("spec: ["), Err(DocumentError::Syntax(_))));
    }

    #[test]
    fn wrong_types_are_syntax_errors_not_panics() {
        let err =
            from_yaml("apiVersion: keda.sh/v1alpha1\nkind: KedaController\nspec:\n  operator:\n    replicas: many\n")
                .unwrap_err();
        assert!(matches!(err, DocumentError::Syntax(_)), "{err}");
    }
}
