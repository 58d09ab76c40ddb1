//! CRD generation: the CustomResourceDefinitions this crate defines, as the API server receives them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceStatus,
    CustomResourceSubresources, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde_json::json;

use crate::eventing_keda_sh::{CloudEventSource, ClusterCloudEventSource};
use crate::keda_sh::{ClusterTriggerAuthentication, ScaledJob, ScaledObject, TriggerAuthentication};
use crate::{KedaController, KedaControllerSpec, KedaControllerStatus, rules};

/// Header written above every generated CRD file.
pub const GENERATED_HEADER: &str =
    "# Generated from crates/api by `cma-operator crds` (UPDATE_GOLDEN=1 cargo test); do not edit.\n";

/// Why a CRD could not be generated (a bug in this crate's types, caught by the drift test).
#[derive(Debug, thiserror::Error)]
#[error("the schema generated for {kind} is not a valid OpenAPI schema: {source}")]
pub struct SchemaError {
    kind: &'static str,
    source: serde_json::Error,
}

/// The schema of `T` as a CRD accepts it: inlined, no `$schema`, structural, with the same rewrites
/// kube-derive applies.
pub fn structural_schema<T: JsonSchema>() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    generator.into_root_schema_for::<T>().to_value()
}

/// The KedaController CRD.
pub fn kedacontroller() -> Result<CustomResourceDefinition, SchemaError> {
    let mut spec = structural_schema::<KedaControllerSpec>();
    strip_root_noise(&mut spec);
    crate::schema::harden(&mut spec);
    let mut status = structural_schema::<KedaControllerStatus>();
    strip_root_noise(&mut status);
    let mut root = json!({
        "description": "KedaController installs, configures and heals KEDA. One per cluster, named `keda`, in the operator's namespace.",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": [{"rule": rules::SINGLETON_RULE, "message": rules::SINGLETON_MESSAGE}],
    });
    crate::schema::join_description_lines(&mut root);
    let schema: JSONSchemaProps =
        serde_json::from_value(root).map_err(|source| SchemaError { kind: KedaController::KIND, source })?;
    Ok(CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("{}.{}", KedaController::PLURAL, KedaController::GROUP)),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: KedaController::GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: KedaController::KIND.into(),
                list_kind: Some("KedaControllerList".into()),
                plural: KedaController::PLURAL.into(),
                singular: Some("kedacontroller".into()),
                ..CustomResourceDefinitionNames::default()
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: KedaController::VERSION.into(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(json!({}))),
                    scale: None,
                }),
                additional_printer_columns: Some(vec![
                    column("Phase", "string", ".status.phase", 0),
                    column("Version", "string", ".status.version", 0),
                    column("Ready", "string", ".status.conditions[?(@.type==\"Ready\")].status", 0),
                    column("Reason", "string", ".status.reason", 1),
                    column("Age", "date", ".metadata.creationTimestamp", 0),
                ]),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    })
}

fn column(name: &str, type_: &str, json_path: &str, priority: i32) -> CustomResourceColumnDefinition {
    CustomResourceColumnDefinition {
        name: name.into(),
        type_: type_.into(),
        json_path: json_path.into(),
        priority: (priority > 0).then_some(priority),
        ..CustomResourceColumnDefinition::default()
    }
}

/// A root schema carries `title`, which a CRD's nested properties do not need.
fn strip_root_noise(schema: &mut serde_json::Value) {
    if let Some(map) = schema.as_object_mut() {
        map.remove("title");
    }
}

/// KEDA's ScaledObject CRD (`scaledobjects.keda.sh`).
pub fn scaledobject() -> Result<CustomResourceDefinition, SchemaError> {
    upstream_shape(ScaledObject::crd(), "ScaledObject", SpecRequired::Yes)
}

/// KEDA's ScaledJob CRD (`scaledjobs.keda.sh`); its spec is optional at the root, as upstream.
pub fn scaledjob() -> Result<CustomResourceDefinition, SchemaError> {
    upstream_shape(ScaledJob::crd(), "ScaledJob", SpecRequired::No)
}

/// KEDA's TriggerAuthentication CRD (`triggerauthentications.keda.sh`).
pub fn triggerauthentication() -> Result<CustomResourceDefinition, SchemaError> {
    upstream_shape(TriggerAuthentication::crd(), "TriggerAuthentication", SpecRequired::Yes)
}

/// KEDA's ClusterTriggerAuthentication CRD (`clustertriggerauthentications.keda.sh`).
pub fn clustertriggerauthentication() -> Result<CustomResourceDefinition, SchemaError> {
    upstream_shape(ClusterTriggerAuthentication::crd(), "ClusterTriggerAuthentication", SpecRequired::Yes)
}

/// KEDA's CloudEventSource CRD (`cloudeventsources.eventing.keda.sh`).
pub fn cloudeventsource() -> Result<CustomResourceDefinition, SchemaError> {
    upstream_shape(CloudEventSource::crd(), "CloudEventSource", SpecRequired::Yes)
}

/// KEDA's ClusterCloudEventSource CRD (`clustercloudeventsources.eventing.keda.sh`).
pub fn clustercloudeventsource() -> Result<CustomResourceDefinition, SchemaError> {
    upstream_shape(ClusterCloudEventSource::crd(), "ClusterCloudEventSource", SpecRequired::Yes)
}

/// Whether a KEDA kind's root schema requires `spec` (all but ScaledJob do upstream).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SpecRequired {
    Yes,
    No,
}

/// Brings a derived CRD to the shape of KEDA's: no `nullable` (controller-gen emits none, so the API server
/// drops explicit nulls as it does for KEDA's own CRDs), int-or-string and quantity nodes as controller-gen
/// writes them, the standard root properties, the list kind, and the root's required list as upstream.
fn upstream_shape(
    mut crd: CustomResourceDefinition,
    kind: &'static str,
    spec_required: SpecRequired,
) -> Result<CustomResourceDefinition, SchemaError> {
    crd.spec.names.list_kind = Some(format!("{kind}List"));
    for version in &mut crd.spec.versions {
        let Some(validation) = version.schema.as_mut() else {
            continue;
        };
        let Some(props) = validation.open_api_v3_schema.take() else {
            continue;
        };
        let mut value = serde_json::to_value(props).map_err(|source| SchemaError { kind, source })?;
        strip_nullable(&mut value);
        crate::schema::join_description_lines(&mut value);
        crate::keda_sh::schema::int_or_string_shapes(&mut value);
        if let Some(map) = value.as_object_mut() {
            map.remove("title");
            if spec_required == SpecRequired::No {
                map.remove("required");
            }
            if let Some(props) = map.get_mut("properties").and_then(|p| p.as_object_mut()) {
                props.insert("apiVersion".into(), json!({"type": "string"}));
                props.insert("kind".into(), json!({"type": "string"}));
                props.insert("metadata".into(), json!({"type": "object"}));
            }
        }
        validation.open_api_v3_schema =
            Some(serde_json::from_value(value).map_err(|source| SchemaError { kind, source })?);
    }
    Ok(crd)
}

fn strip_nullable(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("nullable");
            map.values_mut().for_each(strip_nullable);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nullable),
        _ => {}
    }
}

/// Every CRD the code defines, in a stable order.
pub fn all() -> Result<Vec<CustomResourceDefinition>, SchemaError> {
    Ok(vec![
        kedacontroller()?,
        scaledobject()?,
        scaledjob()?,
        triggerauthentication()?,
        clustertriggerauthentication()?,
        cloudeventsource()?,
        clustercloudeventsource()?,
    ])
}

/// File name of a CRD under `config/crd/bases/` (`<group>_<plural>.yaml`, the kubebuilder convention).
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// YAML of one CRD with the generated-file header.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_yaml::Error> {
    Ok(format!("{GENERATED_HEADER}{}", serde_yaml::to_string(crd)?))
}
