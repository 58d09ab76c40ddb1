//! KEDA's images read the CRDs we ship: every field path, type, format, required list, enum, default,
//! bound, printer column, short name and scope must be those of KEDA 2.20.
//!
//! `tests/upstream/keda-2.20.fingerprint` holds those facts, transcribed from KEDA 2.20.x CRDs (its header
//! says from which files and how). This test computes the same fingerprint from the CRDs the code generates
//! and reports every line that differs.

// Helpers of this test file panic on broken fixtures just like the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

const QUANTITY_PATTERN: &str = cma_api::schema::QUANTITY_PATTERN;

/// Fingerprint of one CRD: header lines in order (names, scope, version, columns), field lines as a set.
#[derive(Debug, Default, PartialEq)]
struct Fingerprint {
    header: Vec<String>,
    fields: BTreeSet<String>,
    embedded: Vec<String>,
}

fn committed() -> BTreeMap<String, Fingerprint> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/upstream/keda-2.20.fingerprint");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut crds = BTreeMap::new();
    let mut current: Option<(String, Fingerprint)> = None;
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("crd ") {
            if let Some((n, f)) = current.take() {
                crds.insert(n, f);
            }
            current = Some((name.to_string(), Fingerprint::default()));
            continue;
        }
        let (_, fp) = current.as_mut().expect("a line before the first `crd`");
        if line.starts_with("field ") {
            fp.fields.insert(line.to_string());
        } else if let Some(path) = line.strip_prefix("embedded ") {
            fp.embedded.push(path.to_string());
        } else {
            fp.header.push(line.to_string());
        }
    }
    if let Some((n, f)) = current.take() {
        crds.insert(n, f);
    }
    crds
}

fn list(v: &Value) -> String {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")).unwrap_or_default()
}

fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 => format!("{}", n as i64),
        Some(n) => n.to_string(),
        None => v.to_string(),
    }
}

fn generated(crd: &Value, embedded: &[String]) -> Fingerprint {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let mut header = vec![
        format!(
            "names kind={} listKind={} plural={} singular={} shortNames={} categories={}",
            names["kind"].as_str().unwrap_or(""),
            names["listKind"].as_str().unwrap_or(""),
            names["plural"].as_str().unwrap_or(""),
            names["singular"].as_str().unwrap_or(""),
            list(&names["shortNames"]),
            list(&names["categories"]),
        ),
        format!("scope {}", spec["scope"].as_str().unwrap_or("")),
    ];
    let versions = spec["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "one version per KEDA CRD");
    let version = &versions[0];
    let mut subresources: Vec<&str> =
        version["subresources"].as_object().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
    subresources.sort_unstable();
    header.push(format!(
        "version {} served={} storage={} subresources={}",
        version["name"].as_str().unwrap_or(""),
        version["served"],
        version["storage"],
        subresources.join(",")
    ));
    for column in version["additionalPrinterColumns"].as_array().into_iter().flatten() {
        let mut line = format!(
            "column {} {} {}",
            column["name"].as_str().unwrap_or(""),
            column["type"].as_str().unwrap_or(""),
            column["jsonPath"].as_str().unwrap_or("")
        );
        if let Some(p) = column.get("priority").filter(|p| p.as_i64() != Some(0)) {
            line.push_str(&format!(" priority={p}"));
        }
        header.push(line);
    }
    let mut fields = BTreeSet::new();
    walk(&version["schema"]["openAPIV3Schema"], ".", &mut fields, embedded);
    Fingerprint { header, fields, embedded: embedded.to_vec() }
}

/// Whether `path` lies more than one level below an embedded subtree.
fn below_embedded(path: &str, embedded: &[String]) -> bool {
    embedded.iter().any(|root| {
        path.strip_prefix(root.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|rest| rest.contains(['.', '[', '{']))
    })
}

fn walk(node: &Value, path: &str, out: &mut BTreeSet<String>, embedded: &[String]) {
    if !below_embedded(path, embedded) {
        out.insert(field_line(node, path));
    }
    let child = |suffix: &str| {
        if path == "." { format!(".{suffix}") } else { format!("{path}.{suffix}") }
    };
    if let Some(props) = node["properties"].as_object() {
        for (name, prop) in props {
            walk(prop, &child(name), out, embedded);
        }
    }
    if let Some(items) = node.get("items").filter(|i| i.is_object()) {
        walk(items, &format!("{path}[]"), out, embedded);
    }
    if let Some(values) = node.get("additionalProperties").filter(|i| i.is_object()) {
        walk(values, &format!("{path}{{}}"), out, embedded);
    }
}

fn field_line(node: &Value, path: &str) -> String {
    let ty = if node["x-kubernetes-int-or-string"] == Value::Bool(true) {
        "int-or-string".to_string()
    } else {
        match (node["type"].as_str(), node["format"].as_str()) {
            (Some(t), Some(f)) => format!("{t}/{f}"),
            (Some(t), None) => t.to_string(),
            (None, _) => "any".to_string(),
        }
    };
    let mut line = format!("field {path} {ty}");
    if let Some(required) = node["required"].as_array() {
        let mut r: Vec<&str> = required.iter().filter_map(Value::as_str).collect();
        r.sort_unstable();
        line.push_str(&format!(" required={}", r.join(",")));
    }
    if let Some(e) = node.get("enum") {
        line.push_str(&format!(" enum={e}"));
    }
    if let Some(d) = node.get("default") {
        line.push_str(&format!(" default={d}"));
    }
    for (key, name) in [
        ("minimum", "min"),
        ("maximum", "max"),
        ("minLength", "minLength"),
        ("maxLength", "maxLength"),
        ("minItems", "minItems"),
        ("maxItems", "maxItems"),
    ] {
        if let Some(v) = node.get(key) {
            line.push_str(&format!(" {name}={}", number(v)));
        }
    }
    match node["pattern"].as_str() {
        Some(QUANTITY_PATTERN) => line.push_str(" pattern=quantity"),
        Some(other) => line.push_str(&format!(" pattern={other}")),
        None => {}
    }
    if node["nullable"] == Value::Bool(true) {
        line.push_str(" nullable");
    }
    if node["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) {
        line.push_str(" preserve-unknown");
    }
    if let Some(rules) = node["x-kubernetes-validations"].as_array() {
        line.push_str(&format!(" rules={}", rules.len()));
    }
    line
}

#[test]
fn keda_crds_have_the_shape_of_keda_2_20() {
    let upstream = committed();
    assert_eq!(upstream.len(), 6, "the fingerprint covers KEDA's six CRDs");
    let ours: BTreeMap<String, Value> = cma_api::crd::all()
        .unwrap()
        .into_iter()
        .filter(|crd| crd.spec.group.ends_with("keda.sh") && crd.spec.names.kind != "KedaController")
        .map(|crd| (crd.metadata.name.clone().unwrap_or_default(), serde_json::to_value(&crd).unwrap()))
        .collect();
    assert_eq!(ours.keys().collect::<Vec<_>>(), upstream.keys().collect::<Vec<_>>(), "the same six CRDs");
    let mut report = String::new();
    for (name, expected) in &upstream {
        let actual = generated(&ours[name], &expected.embedded);
        if actual.header != expected.header {
            report.push_str(&format!(
                "{name}: names/scope/version/columns differ\n  upstream: {:#?}\n  ours: {:#?}\n",
                expected.header, actual.header
            ));
        }
        for missing in expected.fields.difference(&actual.fields) {
            report.push_str(&format!("{name}: upstream only: {missing}\n"));
        }
        for extra in actual.fields.difference(&expected.fields) {
            report.push_str(&format!("{name}: ours only:     {extra}\n"));
        }
    }
    assert!(report.is_empty(), "generated CRDs differ from KEDA 2.20:\n{report}");
}

#[test]
fn fingerprint_notices_a_changed_field() {
    // Guards the comparison itself: a CRD with one field retyped must not fingerprint the same.
    let crd = cma_api::crd::scaledobject().unwrap();
    let mut value = serde_json::to_value(&crd).unwrap();
    let before = generated(&value, &[]);
    value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["pollingInterval"]
        ["type"] = Value::String("string".into());
    let after = generated(&value, &[]);
    assert_ne!(before.fields, after.fields);
    assert!(after.fields.iter().any(|l| l.starts_with("field .spec.pollingInterval string/int32")));
}
