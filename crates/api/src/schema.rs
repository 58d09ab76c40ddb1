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

/// Adds the KedaController's value rules to its generated spec schema: every check of `validate()` that a
/// schema or a CEL rule can express, so the API server refuses a bad value at admission, in words, instead of
/// the operator finding it later. Patterns are CEL rules with a message (for an OpenAPI `pattern` the API
/// server answers with the regular expression), rules over maps and lists name the entry at fault, and every
/// map, list and string a rule iterates or scans is bounded: the API server prices a rule by the largest
/// input it may see and refuses a CRD whose rules could cost too much (a test applies the CRD to a real one).
pub fn harden(spec: &mut Value) {
    use crate::rules::{self, messages};
    let Some(fields) = props(spec) else {
        return;
    };
    if let Some(node) = fields.get_mut("watchNamespace") {
        let rule = rules::matches(rules::WATCH_NAMESPACE);
        string_rule(node, rules::MAX_WATCH_NAMESPACE_LENGTH, &rule, messages::WATCH_NAMESPACE);
    }
    if let Some(node) = fields.get_mut("imagePullSecrets") {
        bounded_list(node, rules::MAX_PULL_SECRETS);
        set_item_max_length(node, "name", rules::DNS1123_SUBDOMAIN_MAX);
        each_item(
            node,
            "!format.dns1123Subdomain().validate(self.name).hasValue()",
            messages::OBJECT_NAME,
            Some(".name"),
        );
    }
    if let Some(node) = fields.get_mut("networkPolicy").and_then(props).and_then(|n| n.get_mut("apiServerCIDRs")) {
        // Kubernetes' CIDR library (1.31+): an address, '/', and a prefix length that fits its family.
        each_item(node, "isCIDR(self)", messages::CIDR, None);
    }
    if let Some(node) = fields.get_mut("monitoring").and_then(props).and_then(|m| m.get_mut("interval")) {
        let rule = rules::matches(rules::PROMETHEUS_DURATION);
        string_rule(node, rules::MAX_SETTING_LENGTH, &rule, messages::PROMETHEUS_DURATION);
    }
    if let Some(sa) = fields.get_mut("serviceAccount").and_then(props) {
        if let Some(node) = sa.get_mut("labels") {
            labels(node);
        }
        if let Some(node) = sa.get_mut("annotations") {
            annotations(node);
        }
    }
    for component in ["operator", "metricsServer", "admissionWebhooks"] {
        let Some(node) = fields.get_mut(component) else {
            continue;
        };
        add_rule(
            node,
            Rule {
                rule: "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && self.volumes.exists(v, v.name == m.name))",
                message: "each volume mount must name one of the component's volumes",
                message_expression: None,
            },
        );
        let Some(workload) = props(node) else {
            continue;
        };
        workload_fields(component, workload);
    }
}

/// The `properties` of an object schema.
fn props(node: &mut Value) -> Option<&mut Map<String, Value>> {
    node.get_mut("properties").and_then(Value::as_object_mut)
}

fn workload_fields(component: &str, workload: &mut Map<String, Value>) {
    use crate::rules::{self, messages};
    for field in ["deploymentLabels", "podLabels", "nodeSelector"] {
        if let Some(node) = workload.get_mut(field) {
            labels(node);
        }
    }
    for field in ["deploymentAnnotations", "podAnnotations"] {
        if let Some(node) = workload.get_mut(field) {
            annotations(node);
        }
    }
    if let Some(node) = workload.get_mut("priorityClassName") {
        string_rule(node, rules::DNS1123_SUBDOMAIN_MAX, rules::OBJECT_NAME_RULE, messages::OBJECT_NAME);
    }
    if let Some(node) = workload.get_mut("image") {
        string_rule(node, rules::MAX_IMAGE_LENGTH, &rules::matches(rules::IMAGE_REFERENCE), messages::IMAGE);
    }
    if let Some(node) = workload.get_mut("logLevel") {
        let (pattern, message) = if component == "metricsServer" {
            (rules::KLOG_LEVEL, messages::KLOG_LEVEL)
        } else {
            (rules::ZAP_LOG_LEVEL, messages::ZAP_LOG_LEVEL)
        };
        string_rule(node, rules::MAX_SETTING_LENGTH, &rules::matches(pattern), message);
    }
    if let Some(node) = workload.get_mut("caConfigMaps") {
        bounded_list(node, rules::MAX_CA_CONFIG_MAPS);
        if let Some(items) = node.get_mut("items").and_then(Value::as_object_mut) {
            items.insert("maxLength".into(), rules::DNS1123_SUBDOMAIN_MAX.into());
        }
        each_item(node, rules::OBJECT_NAME_RULE, messages::OBJECT_NAME, None);
    }
    if let Some(node) = workload.get_mut("args") {
        bounded_list(node, rules::MAX_ARGS);
        if let Some(items) = node.get_mut("items").and_then(Value::as_object_mut) {
            items.remove("minLength");
            items.insert("maxLength".into(), rules::MAX_ARG_LENGTH.into());
        }
        each_item(node, r"self.matches(r'\S')", messages::ARG, None);
    }
    if let Some(node) = workload.get_mut("resources") {
        resources(node);
    }
    if let Some(node) = workload.get_mut("volumes") {
        volumes(node);
    }
    if let Some(node) = workload.get_mut("volumeMounts") {
        volume_mounts(node);
    }
    if let Some(node) = workload.get_mut("env") {
        env(node);
    }
    if let Some(audit) = workload.get_mut("auditConfig").and_then(props) {
        if let Some(node) = audit.get_mut("logOutputVolumeClaim") {
            string_rule(node, rules::DNS1123_SUBDOMAIN_MAX, rules::OBJECT_NAME_RULE, messages::OBJECT_NAME);
        }
        let lifetime = audit.get_mut("lifetime").and_then(props);
        for node in lifetime.into_iter().flat_map(|l| l.values_mut()) {
            string_rule(node, rules::MAX_SETTING_LENGTH, &rules::matches(rules::DIGITS), messages::DIGITS);
        }
    }
}

/// A label map: bounded, values at most 63 characters, keys and values checked as Kubernetes does.
fn labels(node: &mut Value) {
    use crate::rules::{self, messages};
    let Some(map) = node.as_object_mut() else {
        return;
    };
    map.insert("maxProperties".into(), rules::MAX_LABELS.into());
    map.insert("additionalProperties".into(), serde_json::json!({"type": "string", "maxLength": 63}));
    qualified_keys(node);
    every(
        node,
        Every {
            var: "k",
            ok: "!format.labelValue().validate(self[k]).hasValue()",
            name: "",
            subject: "the value of label",
            phrase: messages::LABEL_VALUE,
        },
    );
}

/// An annotation map: bounded in entries and in bytes, keys checked as Kubernetes does.
fn annotations(node: &mut Value) {
    use crate::rules;
    if let Some(map) = node.as_object_mut() {
        map.insert("maxProperties".into(), rules::MAX_ANNOTATIONS.into());
    }
    qualified_keys(node);
    let message = rules::annotation_bytes_message();
    add_rule(node, Rule { rule: &rules::annotation_bytes_rule(), message: &message, message_expression: None });
}

fn qualified_keys(node: &mut Value) {
    every(
        node,
        Every {
            var: "k",
            ok: "!format.qualifiedName().validate(k).hasValue()",
            name: "",
            subject: "key",
            phrase: crate::rules::messages::QUALIFIED_NAME,
        },
    );
}

/// `resources`: quantities checked with the API server's quantity library (a message, not a pattern),
/// none negative, each request at most its limit. Values may be numbers or strings (`cpu: 2`), so each is
/// read as a string.
fn resources(node: &mut Value) {
    use crate::rules;
    for field in ["requests", "limits"] {
        let Some(map) = node.get_mut("properties").and_then(|p| p.get_mut(field)) else {
            continue;
        };
        if let Some(object) = map.as_object_mut() {
            object.insert("maxProperties".into(), rules::MAX_RESOURCE_NAMES.into());
        }
        if let Some(values) = map.get_mut("additionalProperties").and_then(Value::as_object_mut) {
            values.remove("pattern");
            values.insert("maxLength".into(), rules::MAX_QUANTITY_LENGTH.into());
        }
        let singular = field.trim_end_matches('s');
        every(
            map,
            Every {
                var: "k",
                ok: "isQuantity(string(self[k]))",
                name: "",
                subject: singular,
                phrase: "is not a quantity, such as 500m, 2, 128Mi or 1Gi",
            },
        );
        every(
            map,
            Every {
                var: "k",
                ok: "!isQuantity(string(self[k])) || quantity(string(self[k])).compareTo(quantity('0')) >= 0",
                name: "",
                subject: singular,
                phrase: "is negative",
            },
        );
    }
    let (request, limit) = ("quantity(string(self.requests[k]))", "quantity(string(self.limits[k]))");
    let above = format!(
        "k in self.limits && isQuantity(string(self.requests[k])) && isQuantity(string(self.limits[k])) && {request}.compareTo({limit}) > 0"
    );
    add_rule(
        node,
        Rule {
            rule: &format!("!has(self.requests) || !has(self.limits) || !self.requests.exists(k, {above})"),
            message: "each request must be at most its limit",
            message_expression: Some(&format!(
                "{} + self.requests.filter(k, {above})[0] + {}",
                cel_string("the request of \""),
                cel_string("\" is greater than its limit")
            )),
        },
    );
}

/// `volumes`: bounded, unique names (a map keyed by name), no name the operator uses.
fn volumes(node: &mut Value) {
    use crate::rules::{self, messages};
    bounded_list(node, rules::MAX_VOLUMES);
    keyed_by(node, "name");
    set_item_max_length(node, "name", rules::DNS1123_LABEL_MAX);
    each_item(node, "!format.dns1123Label().validate(self.name).hasValue()", messages::VOLUME_NAME, Some(".name"));
    let reserved = quoted(&crate::validation::RESERVED_VOLUME_NAMES);
    let message = format!(
        "is a volume the operator adds ({}, cabundle<i>): choose another name",
        crate::validation::RESERVED_VOLUME_NAMES.join(", ")
    );
    let rule = format!("!(self.name in [{reserved}]) && !self.name.matches(r'^cabundle[0-9]*$')");
    each_item(node, &rule, &message, Some(".name"));
}

/// `volumeMounts`: bounded, absolute, unique, clear of the operator's mounts.
fn volume_mounts(node: &mut Value) {
    use crate::rules;
    bounded_list(node, rules::MAX_VOLUMES);
    set_item_max_length(node, "mountPath", rules::MAX_PATH_LENGTH);
    each_item(node, "self.mountPath.startsWith('/')", "must be an absolute path", Some(".mountPath"));
    // A path compared with one trailing '/', so `/certs` and `/certs/` are the same and `/certsx` is not below
    // `/certs` (`validate()` compares the same way).
    let dir = |v: &str| format!("({v}.endsWith('/') ? {v} : {v} + '/')");
    let reserved = quoted(&crate::validation::RESERVED_MOUNT_PATHS);
    let message = format!(
        "is at, above or below a path the operator mounts ({})",
        crate::validation::RESERVED_MOUNT_PATHS.join(", ")
    );
    let m = dir("self.mountPath");
    let rule = format!("[{reserved}].all(r, !{m}.startsWith(r + '/') && !(r + '/').startsWith({m}))");
    each_item(node, &rule, &message, Some(".mountPath"));
    add_rule(
        node,
        Rule {
            rule: &format!("self.all(m, self.exists_one(n, {} == {}))", dir("n.mountPath"), dir("m.mountPath")),
            message: "each mount path may be used once",
            message_expression: None,
        },
    );
}

/// `env`: bounded, unique names (a map keyed by name), valid names, none the operator sets.
fn env(node: &mut Value) {
    use crate::rules::{self, messages};
    bounded_list(node, rules::MAX_ENV);
    keyed_by(node, "name");
    set_item_max_length(node, "name", rules::MAX_ENV_NAME_LENGTH);
    each_item(node, &format!("self.name.matches(r'{}')", rules::ENV_VAR_NAME), messages::ENV_NAME, Some(".name"));
    let reserved: Vec<&str> = crate::validation::RESERVED_ENV.iter().map(|(name, _)| *name).collect();
    each_item(
        node,
        &format!("!(self.name in [{}])", quoted(&reserved)),
        "is set by the operator: POD_NAMESPACE is always the KedaController's namespace; set spec.watchNamespace instead of WATCH_NAMESPACE",
        Some(".name"),
    );
}

/// A rule that every entry of a list or map passes, with a message naming the first one that does not:
/// `<subject> "<entry>" <phrase>`.
struct Every<'a> {
    /// The CEL variable of an entry (a map's key, a list's element).
    var: &'a str,
    /// The predicate an entry must pass.
    ok: &'a str,
    /// How to name an entry from the variable (`""` for a map key, `.name` for a list of objects).
    name: &'a str,
    /// What an entry is called.
    subject: &'a str,
    /// What is wrong with it.
    phrase: &'a str,
}

fn every(node: &mut Value, e: Every<'_>) {
    let Every { var, ok, name, subject, phrase } = e;
    add_rule(
        node,
        Rule {
            rule: &format!("self.all({var}, {ok})"),
            message: &format!("a {subject} {phrase}"),
            message_expression: Some(&format!(
                "{} + self.filter({var}, !({ok}))[0]{name} + {}",
                cel_string(&format!("{subject} \"")),
                cel_string(&format!("\" {phrase}"))
            )),
        },
    );
}

/// A rule on each entry of a list: the API server's answer names the entry (`spec.operator.env[1].name`).
/// `field_path` points into the entry, and the message then starts with that field's value
/// (`Invalid value: "1A" must be an environment variable name: ...`); a rule on a string entry shows its
/// value anyway.
fn each_item(node: &mut Value, rule: &str, message: &str, field_path: Option<&str>) {
    let Some(items) = node.get_mut("items") else {
        return;
    };
    let expression =
        field_path.map(|path| format!("{} + self{path} + {}", cel_string("\""), cel_string(&format!("\" {message}"))));
    add_rule(items, Rule { rule, message, message_expression: expression.as_deref() });
    if let (Some(path), Some(Value::Array(rules))) = (field_path, items.get_mut("x-kubernetes-validations"))
        && let Some(Value::Object(last)) = rules.last_mut()
    {
        last.insert("fieldPath".into(), Value::String(path.to_string()));
    }
}

/// A CEL string literal holding `text`.
fn cel_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn quoted(values: &[&str]) -> String {
    values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}

/// A string field checked by a CEL rule instead of a pattern, bounded so the rule's cost is.
fn string_rule(node: &mut Value, max_length: usize, rule: &str, message: &str) {
    if let Some(map) = node.as_object_mut() {
        map.remove("pattern");
        map.insert("maxLength".into(), max_length.into());
    }
    add_rule(node, Rule { rule, message, message_expression: None });
}

fn bounded_list(node: &mut Value, max_items: usize) {
    if let Some(map) = node.as_object_mut() {
        map.insert("maxItems".into(), max_items.into());
    }
}

/// Makes a list a map keyed by `key`: the API server refuses two entries with the same key.
fn keyed_by(node: &mut Value, key: &str) {
    if let Some(map) = node.as_object_mut() {
        map.insert("x-kubernetes-list-type".into(), "map".into());
        map.insert("x-kubernetes-list-map-keys".into(), serde_json::json!([key]));
    }
}

fn set_item_max_length(node: &mut Value, field: &str, max_length: usize) {
    let item = node.get_mut("items").and_then(|i| i.get_mut("properties")).and_then(|p| p.get_mut(field));
    if let Some(map) = item.and_then(Value::as_object_mut) {
        map.insert("maxLength".into(), max_length.into());
    }
}

/// One `x-kubernetes-validations` entry.
struct Rule<'a> {
    rule: &'a str,
    message: &'a str,
    /// A message naming the value at fault; `message` is used when it cannot be evaluated.
    message_expression: Option<&'a str>,
}

fn add_rule(node: &mut Value, rule: Rule<'_>) {
    let Some(map) = node.as_object_mut() else {
        return;
    };
    let mut entry = serde_json::json!({"rule": rule.rule, "message": rule.message});
    if let Some(expression) = rule.message_expression {
        entry["messageExpression"] = Value::String(expression.to_string());
    }
    let rules = map.entry("x-kubernetes-validations").or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(rules) = rules {
        rules.push(entry);
    }
}

/// Joins the lines of each paragraph of every `description` below `value`: doc comments are wrapped at the
/// source's line width, and those line breaks would otherwise show inside `kubectl explain`, the console's
/// forms and the OLM descriptors. Blank lines (paragraphs) and list items (`- `, `* `) keep their breaks.
pub fn join_description_lines(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" => *text = join_lines(text),
                    other => join_description_lines(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(join_description_lines),
        _ => {}
    }
}

fn join_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(next) = lines.peek() else {
            break;
        };
        let next = next.trim_start();
        let keep = line.trim().is_empty() || next.is_empty() || next.starts_with("- ") || next.starts_with("* ");
        out.push(if keep { '\n' } else { ' ' });
    }
    out
}

#[cfg(test)]
mod description_tests {
    use super::*;

    #[test]
    fn wrapped_lines_are_joined_and_paragraphs_kept() {
        let mut v = serde_json::json!({
            "description": "merged by name over\nthe defaults.\n\nSecond paragraph\nwraps.",
            "properties": {"description": {"type": "string", "description": "a\n- one\n- two"}},
        });
        join_description_lines(&mut v);
        assert_eq!(v["description"], "merged by name over the defaults.\n\nSecond paragraph wraps.");
        assert_eq!(v["properties"]["description"]["description"], "a\n- one\n- two");
        assert_eq!(v["properties"]["description"]["type"], "string");
    }
}
