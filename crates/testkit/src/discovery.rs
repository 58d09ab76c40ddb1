//! Discovery documents (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`), plain and
//! aggregated (`as=APIGroupDiscoveryList`), built from the registered resource types.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Kubernetes version the fake claims to be (the workspace's k8s-openapi feature).
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "gitVersion": "v1.35.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-12-17T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Versions served per non-core group, sorted.
fn groups(registry: &Registry) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for rt in registry.all().filter(|rt| !rt.group.is_empty()) {
        let versions = out.entry(rt.group.as_str()).or_default();
        if !versions.contains(&rt.version.as_str()) {
            versions.push(rt.version.as_str());
        }
    }
    out
}

fn group_version(group: &str, version: &str) -> Value {
    json!({ "groupVersion": format!("{group}/{version}"), "version": version })
}

/// `GET /api`.
pub(crate) fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443" }],
    })
}

/// `GET /apis`.
pub(crate) fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> =
        groups(registry).into_iter().map(|(group, versions)| api_group(group, &versions)).collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let list: Vec<Value> = versions.iter().map(|v| group_version(group, v)).collect();
    json!({
        "name": group,
        "versions": list,
        "preferredVersion": list.first().cloned().unwrap_or(Value::Null),
    })
}

/// `GET /apis/<group>`.
pub(crate) fn group(registry: &Registry, group: &str) -> Option<Value> {
    let groups = groups(registry);
    let versions = groups.get(group)?;
    let mut doc = api_group(group, versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn types_in<'a>(registry: &'a Registry, group: &'a str, version: &'a str) -> impl Iterator<Item = &'a ResourceType> {
    registry.all().filter(move |rt| rt.group == group && rt.version == version)
}

/// `GET /api/v1` or `GET /apis/<group>/<version>`; `None` when nothing is served there.
pub(crate) fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for rt in types_in(registry, group, version) {
        resources.push(json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
            "shortNames": rt.short_names,
        }));
        for (sub, verbs) in subresources(rt) {
            resources.push(json!({
                "name": format!("{}/{sub}", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": if sub == "log" { "Pod" } else { rt.kind.as_str() },
                "verbs": verbs,
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

fn subresources(rt: &ResourceType) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out = Vec::new();
    if rt.status_subresource {
        out.push(("status", vec!["get", "patch", "update"]));
    }
    if rt.group.is_empty() && rt.plural == "pods" {
        out.push(("log", vec!["get"]));
    }
    out
}

/// Aggregated discovery (`APIGroupDiscoveryList`) for `/api` (core) or `/apis` (all other groups).
pub(crate) fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(registry, "", &["v1"])]
    } else {
        groups(registry).into_iter().map(|(group, versions)| aggregated_group(registry, group, &versions)).collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn aggregated_group(registry: &Registry, group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let resources: Vec<Value> =
                types_in(registry, group, version).map(|rt| aggregated_resource(rt, group, version)).collect();
            json!({ "version": version, "resources": resources, "freshness": "Current" })
        })
        .collect();
    json!({ "metadata": { "name": group }, "versions": versions })
}

fn aggregated_resource(rt: &ResourceType, group: &str, version: &str) -> Value {
    let kind = json!({ "group": group, "version": version, "kind": rt.kind });
    let subresources: Vec<Value> = subresources(rt)
        .into_iter()
        .map(|(sub, verbs)| json!({ "subresource": sub, "responseKind": kind, "verbs": verbs }))
        .collect();
    json!({
        "resource": rt.plural,
        "responseKind": kind,
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": VERBS,
        "shortNames": rt.short_names,
        "subresources": subresources,
    })
}
