//! Reading a KedaController from a YAML or JSON document, as strictly as the API server does with
//! `kubectl --validate=strict`: unknown fields and a wrong kind are errors, not silently dropped.

use std::sync::LazyLock;

use serde_json::Value;

use crate::KedaController;
use crate::yaml::{self, Limits, YamlError};

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
    /// A single value where the API takes a list, such as the product documentation's
    /// `omitStages: "RequestReceived"`. The API server refuses it too, with a type error.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NotAList(Vec<NotAList>),
    /// The text exceeds what a KedaController may cost to read (size, depth, nodes, documents) or uses
    /// aliases.
    #[error("{0}")]
    Limit(YamlError),
}

/// A field given one value where its schema takes a list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} must be a list, e.g. {field}: [{example}]")]
pub struct NotAList {
    /// JSON path of the field, such as `spec.metricsServer.auditConfig.policy.omitStages`.
    pub path: String,
    /// The field's own name (the last element of `path`).
    pub field: String,
    /// The value given, written as the one item of a YAML flow list.
    pub example: String,
}

impl From<YamlError> for DocumentError {
    fn from(error: YamlError) -> Self {
        match error {
            YamlError::Parse { message, .. } => DocumentError::Syntax(message),
            other => DocumentError::Limit(other),
        }
    }
}

/// Parses exactly one KedaController from YAML (JSON is YAML too), within [`Limits::KEDA_CONTROLLER`].
pub fn from_yaml(text: &str) -> Result<KedaController, DocumentError> {
    let mut documents: Vec<serde_yaml::Value> = yaml::documents(text, Limits::KEDA_CONTROLLER)?;
    documents.retain(|value| !value.is_null());
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
    let shape = shape_problems(&json)?;
    // A value where a list belongs is reported first: the typed load below would only say "expected a
    // sequence", without the field or the fix.
    if !shape.not_lists.is_empty() {
        return Err(DocumentError::NotAList(shape.not_lists));
    }
    if !shape.unknown.is_empty() {
        return Err(DocumentError::UnknownFields(shape.unknown));
    }
    serde_json::from_value(json).map_err(|e| DocumentError::Syntax(e.to_string()))
}

/// The KedaController's schema, generated once.
static SCHEMA: LazyLock<Result<Value, String>> = LazyLock::new(|| {
    let crd = crate::crd::kedacontroller().map_err(|e| e.to_string())?;
    let schema = crd.spec.versions.first().and_then(|v| v.schema.as_ref()).and_then(|s| s.open_api_v3_schema.as_ref());
    serde_json::to_value(schema).map_err(|e| e.to_string())
});

/// Where `document` does not have the shape of its schema.
#[derive(Default)]
struct Shape {
    /// Fields the schema does not have: the API server would prune them (or refuse them, with strict field
    /// validation).
    unknown: Vec<String>,
    /// Single values where the schema takes a list: the API server refuses them.
    not_lists: Vec<NotAList>,
}

fn shape_problems(document: &Value) -> Result<Shape, DocumentError> {
    let schema = SCHEMA.as_ref().map_err(|e| DocumentError::Syntax(e.clone()))?;
    let mut shape = Shape::default();
    walk(document, schema, "", &mut shape);
    Ok(shape)
}

fn walk(value: &Value, schema: &Value, path: &str, shape: &mut Shape) {
    let open = |key: &str| schema.get(key).and_then(Value::as_bool).unwrap_or(false);
    if open("x-kubernetes-preserve-unknown-fields") || open("x-kubernetes-int-or-string") {
        return;
    }
    let wants_list = schema.get("type").and_then(Value::as_str) == Some("array");
    if wants_list && matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
        shape.not_lists.push(not_a_list(path, value));
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
                    Some(child_schema) => walk(child, child_schema, &child_path, shape),
                    None => shape.unknown.push(child_path),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), shape);
                }
            }
        }
        _ => {}
    }
}

/// The finding for `value` at `path`, with the one-item list the user meant.
fn not_a_list(path: &str, value: &Value) -> NotAList {
    let field = path.rsplit('.').next().unwrap_or(path);
    let field = field.split('[').next().unwrap_or(field).to_string();
    let example = match value {
        // Plain words stay plain; anything YAML would read differently inside `[...]` is quoted.
        Value::String(text) if is_plain(text) => text.clone(),
        other => other.to_string(),
    };
    NotAList { path: path.to_string(), field, example }
}

/// Whether `text` reads back as the same string inside a YAML flow list without quotes.
fn is_plain(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && text.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && !["true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"]
            .contains(&text.to_ascii_lowercase().as_str())
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
    fn a_single_value_where_a_list_belongs_names_the_field_and_the_list_form() {
        let err = from_yaml(
            "apiVersion: keda.sh/v1alpha1\nkind: KedaController\nspec:\n  metricsServer:\n    auditConfig:\n      policy:\n        rules: [{level: Metadata, omitStages: ResponseStarted}]\n        omitStages: \"RequestReceived\"\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.metricsServer.auditConfig.policy.omitStages must be a list, e.g. omitStages: [RequestReceived]; \
             spec.metricsServer.auditConfig.policy.rules[0].omitStages must be a list, e.g. omitStages: [ResponseStarted]"
        );
    }

    #[test]
    fn list_examples_quote_what_yaml_would_misread() {
        assert_eq!(not_a_list("spec.a", &Value::String("true".into())).example, "\"true\"");
        assert_eq!(not_a_list("spec.a", &Value::String("a, b".into())).example, "\"a, b\"");
        assert_eq!(not_a_list("spec.a", &serde_json::json!(443)).example, "443");
        assert_eq!(not_a_list("spec.x[2].a", &Value::String("ok".into())).field, "a");
    }

    #[test]
    fn aliases_are_refused_with_their_line() {
        let err = from_yaml("apiVersion: keda.sh/v1alpha1\nkind: KedaController\nmetadata: &m {name: keda}\nspec:\n  operator:\n    podLabels: *m\n")
            .unwrap_err();
        assert_eq!(err.to_string(), "line 6 column 16: YAML aliases (*m) are not accepted in a KedaController");
    }

    #[test]
    fn wrong_types_are_syntax_errors_not_panics() {
        let err =
            from_yaml("apiVersion: keda.sh/v1alpha1\nkind: KedaController\nspec:\n  operator:\n    replicas: many\n")
                .unwrap_err();
        assert!(matches!(err, DocumentError::Syntax(_)), "{err}");
    }
}
