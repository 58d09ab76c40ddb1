//! Golden files: reviewed renderings. One full rendering per platform (`kubernetes.yaml`, `openshift.yaml`:
//! the minimal KedaController), and every other case as its difference from the full rendering of its
//! platform (`<case>.diff`), object by object, so a reviewer sees what a field changes. A difference fails the
//! test; regenerate with `UPDATE_GOLDEN=1 cargo test -p cma-operator --test suite golden::` and review the
//! diff before committing.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use cma_operator::cli::{Format, write_objects};
use cma_operator::platform::{Flavour, Platform};
use cma_operator::render::{RenderContext, render};
use cma_testkit::golden::{Files, no_strays};
use serde_json::Value;

/// The full renderings: (golden name, platform), of `minimal.yaml` without the monitoring API.
const BASES: [(&str, Flavour); 2] = [("kubernetes", Flavour::Kubernetes), ("openshift", Flavour::OpenShift)];

/// The cases kept as differences: (golden name, fixture, platform, the cluster serves the monitoring API).
const CASES: [(&str, &str, Flavour, bool); 9] = [
    ("every-field", "every-field.yaml", Flavour::Kubernetes, false),
    ("every-field-openshift", "every-field.yaml", Flavour::OpenShift, false),
    ("audit-stdout", "audit-stdout.yaml", Flavour::Kubernetes, false),
    ("audit-pvc", "audit-pvc.yaml", Flavour::Kubernetes, false),
    ("watch-namespaces", "watch-namespaces.yaml", Flavour::Kubernetes, false),
    ("custom-cas-openshift", "custom-cas.yaml", Flavour::OpenShift, false),
    ("replicas-pdb", "replicas-pdb.yaml", Flavour::Kubernetes, false),
    ("monitoring-openshift", "minimal.yaml", Flavour::OpenShift, true),
    ("monitoring-kubernetes", "minimal.yaml", Flavour::Kubernetes, true),
];

const BASE_FIXTURE: &str = "minimal.yaml";

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(name)
}

/// One rendered object: `Kind namespace/name` and its YAML as `render` prints it.
struct Object {
    id: String,
    yaml: String,
}

fn rendered(fixture: &str, flavour: Flavour, monitoring: bool) -> Vec<Object> {
    let text = std::fs::read_to_string(dir("fixtures").join(fixture)).unwrap();
    let kc = cma_api::document::from_yaml(&text).unwrap();
    let platform = Platform { monitoring, ..Platform::for_flavour(flavour) };
    let desired = render(cma_api::validate(&kc).unwrap(), &RenderContext::offline(platform)).unwrap();
    desired
        .to_values()
        .unwrap()
        .into_iter()
        .map(|value| {
            let mut out = Vec::new();
            write_objects(std::slice::from_ref(&value), Format::Yaml, &mut out).unwrap();
            Object { id: id(&value), yaml: String::from_utf8(out).unwrap() }
        })
        .collect()
}

fn id(value: &Value) -> String {
    let kind = value["kind"].as_str().unwrap_or_default();
    let name = value["metadata"]["name"].as_str().unwrap_or_default();
    match value["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// What `render` prints.
fn full(objects: &[Object]) -> String {
    objects.iter().map(|o| o.yaml.as_str()).collect()
}

/// `case` as its difference from `base`, object by object: a unified diff of each changed object, each
/// added object in full, each removed object by name.
fn difference(base_name: &str, base: &[Object], case: &[Object]) -> String {
    let mut out = format!("# The difference from {base_name}.yaml, object by object.\n");
    for object in case {
        match base.iter().find(|b| b.id == object.id) {
            None => {
                out.push_str(&format!("## added {}\n", object.id));
                out.extend(object.yaml.lines().map(|l| format!("+{l}\n")));
            }
            Some(b) if b.yaml != object.yaml => {
                out.push_str(&format!("## changed {}\n", object.id));
                let diff = similar::TextDiff::from_lines(&b.yaml, &object.yaml);
                out.push_str(&diff.unified_diff().context_radius(2).to_string());
            }
            Some(_) => {}
        }
    }
    for gone in base.iter().filter(|b| !case.iter().any(|o| o.id == b.id)) {
        out.push_str(&format!("## removed {}\n", gone.id));
    }
    out
}

#[test]
fn renders_match_the_reviewed_golden_files() {
    let mut files = Files::new();
    for (name, flavour) in BASES {
        files.check(&dir("golden").join(format!("{name}.yaml")), &full(&rendered(BASE_FIXTURE, flavour, false)));
    }
    for (name, fixture, flavour, monitoring) in CASES {
        let (base_name, _) = BASES.iter().find(|(_, f)| *f == flavour).unwrap();
        let base = rendered(BASE_FIXTURE, flavour, false);
        let text = difference(base_name, &base, &rendered(fixture, flavour, monitoring));
        files.check(&dir("golden").join(format!("{name}.diff")), &text);
    }
    no_strays(&mut files, &dir("golden"));
    files.assert_fresh("the golden renderings");
}

#[test]
fn every_case_differs_from_its_base() {
    for (name, fixture, flavour, monitoring) in CASES {
        let base = rendered(BASE_FIXTURE, flavour, false);
        let case = rendered(fixture, flavour, monitoring);
        assert!(difference("base", &base, &case).contains("\n## "), "{name} renders exactly as its base");
    }
}

#[test]
fn a_difference_names_the_objects_it_touches() {
    let object = |id: &str, yaml: &str| Object { id: id.into(), yaml: yaml.into() };
    let base = [object("A a", "x: 1\ny: 2\n"), object("B b", "z: 1\n")];
    let case = [object("A a", "x: 1\ny: 3\n"), object("C c", "w: 1\n")];
    let text = difference("base", &base, &case);
    assert_eq!(
        text,
        "# The difference from base.yaml, object by object.\n## changed A a\n@@ -1,2 +1,2 @@\n x: 1\n-y: 2\n+y: 3\n## added C c\n+w: 1\n## removed B b\n"
    );
}
