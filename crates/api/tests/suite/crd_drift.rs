//! The committed CRDs under config/crd/bases are exactly what the code generates.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p cma-api --test suite crd_drift::` (or `hack/generate.sh`) and review the diff.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

fn bases() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/crd/bases")
}

#[test]
fn committed_crds_match_the_code() {
    let mut files = cma_testkit::golden::Files::new();
    for crd in cma_api::crd::all().unwrap() {
        files.check(&bases().join(cma_api::crd::file_name(&crd)), &cma_api::crd::to_yaml(&crd).unwrap());
    }
    cma_testkit::golden::no_strays(&mut files, &bases());
    files.assert_fresh("the CRDs under config/crd/bases");
}

#[test]
fn the_readme_uninstall_command_deletes_every_crd() {
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    // The `kubectl delete crd ...` command, joined over its continuation lines.
    let start = readme.find("kubectl delete crd ").expect("README has a `kubectl delete crd` command");
    let command = readme[start..].split("\n\n").next().unwrap().split("```").next().unwrap().replace("\\\n", " ");
    let named: Vec<&str> = command.split_whitespace().skip(3).collect();
    let mut expected: Vec<String> =
        cma_api::crd::all().unwrap().iter().map(|crd| crd.metadata.name.clone().unwrap()).collect();
    let mut named_sorted: Vec<String> = named.iter().map(|s| s.to_string()).collect();
    expected.sort();
    named_sorted.sort();
    assert_eq!(named_sorted, expected, "README: {command}");
}
