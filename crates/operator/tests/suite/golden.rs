//! Golden files: the full render of reviewed KedaControllers. A difference fails the test; regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p cma-operator --test suite golden::` and review the diff before committing.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use cma_operator::cli::{Format, write_objects};
use cma_operator::platform::{Flavour, Platform};
use cma_operator::render::{RenderContext, render};

/// (golden name, fixture, platform, the cluster serves the monitoring API)
const CASES: [(&str, &str, Flavour, bool); 11] = [
    ("defaults", "minimal.yaml", Flavour::Kubernetes, false),
    ("defaults-openshift", "minimal.yaml", Flavour::OpenShift, false),
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

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(name)
}

fn rendered(fixture: &str, flavour: Flavour, monitoring: bool) -> String {
    let text = std::fs::read_to_string(dir("fixtures").join(fixture)).unwrap();
    let kc = cma_api::document::from_yaml(&text).unwrap();
    let platform = Platform { monitoring, ..Platform::for_flavour(flavour) };
    let desired = render(cma_api::validate(&kc).unwrap(), &RenderContext::offline(platform)).unwrap();
    let mut out = Vec::new();
    write_objects(&desired.to_values().unwrap(), Format::Yaml, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn renders_match_the_reviewed_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for (name, fixture, flavour, monitoring) in CASES {
        let path = dir("golden").join(format!("{name}.yaml"));
        let actual = rendered(fixture, flavour, monitoring);
        if update {
            std::fs::write(&path, &actual).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(actual.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(stale.is_empty(), "render output changed; review and run with UPDATE_GOLDEN=1:\n{}", stale.join("\n"));
}

#[test]
fn no_stray_golden_files() {
    for entry in std::fs::read_dir(dir("golden")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            CASES.iter().any(|(case, _, _, _)| format!("{case}.yaml") == name),
            "tests/golden/{name} belongs to no case; remove it"
        );
    }
}
