//! Every rule of `cma-bundle validate`, caught on a copy of the committed bundle broken in one way.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{copy_dir, repo};
use std::path::{Path, PathBuf};

use cma_bundle::validate::{Options, Report, Rule, validate};
use serde_json::{Value, json};

/// A copy of the committed bundle and its Dockerfile in a temporary directory.
struct Copy {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Copy {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("bundle");
        copy_dir(&repo().join("bundle"), &dir);
        std::fs::copy(repo().join("bundle.Dockerfile"), tmp.path().join("bundle.Dockerfile")).unwrap();
        Copy { _tmp: tmp, dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn edit_yaml(&self, rel: &str, f: impl FnOnce(&mut Value)) {
        let path = self.path(rel);
        let mut v: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&path, serde_yaml::to_string(&v).unwrap()).unwrap();
    }

    fn edit_csv(&self, f: impl FnOnce(&mut Value)) {
        self.edit_yaml(&format!("manifests/{}", cma_bundle::CSV_FILE), f);
    }

    fn edit_examples(&self, f: impl FnOnce(&mut Vec<Value>)) {
        self.edit_csv(|csv| {
            let text = csv["metadata"]["annotations"]["alm-examples"].as_str().unwrap().to_string();
            let mut examples: Vec<Value> = serde_json::from_str(&text).unwrap();
            f(&mut examples);
            csv["metadata"]["annotations"]["alm-examples"] = json!(serde_json::to_string(&examples).unwrap());
        });
    }

    fn edit_text(&self, path: &Path, f: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(path).unwrap();
        std::fs::write(path, f(text)).unwrap();
    }

    fn dockerfile(&self) -> PathBuf {
        self.dir.parent().unwrap().join("bundle.Dockerfile")
    }

    fn validate(&self) -> Report {
        validate(&self.dir, &Options::default())
    }
}

fn example_index(examples: &[Value], kind: &str) -> usize {
    examples.iter().position(|e| e["kind"] == kind).unwrap()
}

fn owned_index(csv: &Value, kind: &str) -> usize {
    csv["spec"]["customresourcedefinitions"]["owned"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["kind"] == kind)
        .unwrap()
}

/// Asserts `rule` reports an error whose message contains `needle`.
fn caught(report: &Report, rule: Rule, needle: &str) {
    let lines: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert!(
        report.errors().any(|f| f.rule == rule && f.message.contains(needle)),
        "expected error[{}] containing {needle:?}, got:\n{}",
        rule.id(),
        lines.join("\n")
    );
}

#[test]
fn the_unbroken_copy_is_valid() {
    let copy = Copy::new();
    let report = copy.validate();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn layout_missing_metadata() {
    let copy = Copy::new();
    std::fs::remove_file(copy.path("metadata/annotations.yaml")).unwrap();
    caught(&copy.validate(), Rule::Layout, "annotations.yaml");
}

#[test]
fn layout_two_csvs() {
    let copy = Copy::new();
    std::fs::copy(
        copy.path(&format!("manifests/{}", cma_bundle::CSV_FILE)),
        copy.path("manifests/second.clusterserviceversion.yaml"),
    )
    .unwrap();
    caught(&copy.validate(), Rule::Layout, "2 ClusterServiceVersions");
}

#[test]
fn annotations_wrong_mediatype() {
    let copy = Copy::new();
    copy.edit_yaml("metadata/annotations.yaml", |a| {
        a["annotations"]["operators.operatorframework.io.bundle.mediatype.v1"] = json!("plain+v0");
    });
    caught(&copy.validate(), Rule::Annotations, "registry+v1");
}

#[test]
fn annotations_default_channel_not_a_channel() {
    let copy = Copy::new();
    copy.edit_yaml("metadata/annotations.yaml", |a| {
        a["annotations"]["operators.operatorframework.io.bundle.channel.default.v1"] = json!("stable-v2");
    });
    caught(&copy.validate(), Rule::Annotations, "default channel");
}

#[test]
fn annotations_package_not_the_csvs() {
    let copy = Copy::new();
    copy.edit_yaml("metadata/annotations.yaml", |a| {
        a["annotations"]["operators.operatorframework.io.bundle.package.v1"] = json!("keda");
    });
    caught(&copy.validate(), Rule::Annotations, "does not name the CSV");
}

#[test]
fn dockerfile_label_differs_from_annotation() {
    let copy = Copy::new();
    copy.edit_text(&copy.dockerfile(), |t| {
        t.replace(
            "operators.operatorframework.io.bundle.channels.v1=stable",
            "operators.operatorframework.io.bundle.channels.v1=stable,fast",
        )
    });
    caught(&copy.validate(), Rule::DockerfileLabels, "operators.operatorframework.io.bundle.channels.v1");
}

#[test]
fn dockerfile_missing() {
    let copy = Copy::new();
    std::fs::remove_file(copy.dockerfile()).unwrap();
    caught(&copy.validate(), Rule::DockerfileLabels, "bundle.Dockerfile");
}

#[test]
fn unsupported_kind_in_manifests() {
    let copy = Copy::new();
    std::fs::write(
        copy.path("manifests/deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: extra\n",
    )
    .unwrap();
    caught(&copy.validate(), Rule::SupportedKinds, "Deployment");
}

#[test]
fn csv_name_disagrees_with_version() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["metadata"]["name"] = json!("cma-operator.v9.9.9"));
    caught(&copy.validate(), Rule::CsvName, "does not carry spec.version");
}

#[test]
fn csv_name_not_dns_1123() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["name"] = json!("CMA_Operator.v0.1.0");
    });
    caught(&copy.validate(), Rule::CsvName, "DNS-1123");
}

#[test]
fn csv_version_not_semver() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["spec"]["version"] = json!("0.1");
        csv["metadata"]["name"] = json!("cma-operator.v0.1");
    });
    caught(&copy.validate(), Rule::CsvName, "not a semantic version");
}

#[test]
fn replaces_a_newer_version() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["spec"]["replaces"] = json!("cma-operator.v0.2.0"));
    caught(&copy.validate(), Rule::Upgrades, "not older");
}

#[test]
fn replaces_another_package() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["spec"]["replaces"] = json!("keda.v2.20.0"));
    caught(&copy.validate(), Rule::Upgrades, "is not cma-operator.v<version>");
}

#[test]
fn skip_range_includes_own_version() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]["olm.skipRange"] = json!(">=0.0.0 <=0.1.0");
    });
    caught(&copy.validate(), Rule::Upgrades, "own version");
}

#[test]
fn skip_range_unparseable() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]["olm.skipRange"] = json!("< one");
    });
    caught(&copy.validate(), Rule::Upgrades, "olm.skipRange");
}

#[test]
fn olm_annotation_in_the_wrong_case() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let a = csv["metadata"]["annotations"].as_object_mut().unwrap();
        let range = a.remove("olm.skipRange").unwrap();
        a.insert("olm.skiprange".into(), range);
    });
    caught(&copy.validate(), Rule::Upgrades, "olm.skipRange");
}

#[test]
fn icon_missing() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["spec"].as_object_mut().unwrap().remove("icon");
    });
    caught(&copy.validate(), Rule::CsvFields, "spec.icon");
}

#[test]
fn two_icons() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let icon = csv["spec"]["icon"][0].clone();
        csv["spec"]["icon"] = json!([icon.clone(), icon]);
    });
    caught(&copy.validate(), Rule::CsvFields, "exactly one");
}

#[test]
fn icon_with_a_bad_mediatype() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["spec"]["icon"][0]["mediatype"] = json!("image/webp"));
    caught(&copy.validate(), Rule::CsvFields, "mediatype");
}

#[test]
fn maintainer_email_invalid() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["spec"]["maintainers"][0]["email"] = json!("not an address"));
    caught(&copy.validate(), Rule::CsvFields, "valid email");
}

#[test]
fn link_url_invalid() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["spec"]["links"][0]["url"] = json!("github/cma-operator"));
    caught(&copy.validate(), Rule::CsvFields, "valid URL");
}

#[test]
fn display_name_and_provider_missing() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let spec = csv["spec"].as_object_mut().unwrap();
        spec.remove("displayName");
        spec.remove("provider");
    });
    let report = copy.validate();
    caught(&report, Rule::CsvFields, "spec.displayName");
    caught(&report, Rule::CsvFields, "spec.provider.name");
}

#[test]
fn install_strategy_not_deployment() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["spec"]["install"]["strategy"] = json!("helm"));
    caught(&copy.validate(), Rule::CsvFields, "deployment");
}

#[test]
fn install_mode_listed_twice() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let first = csv["spec"]["installModes"][0].clone();
        csv["spec"]["installModes"].as_array_mut().unwrap().push(first);
    });
    caught(&copy.validate(), Rule::InstallModes, "twice");
}

#[test]
fn no_install_mode_supported() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        for m in csv["spec"]["installModes"].as_array_mut().unwrap() {
            m["supported"] = json!(false);
        }
    });
    caught(&copy.validate(), Rule::InstallModes, "no install mode");
}

#[test]
fn install_modes_missing() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["spec"].as_object_mut().unwrap().remove("installModes");
    });
    caught(&copy.validate(), Rule::InstallModes, "missing");
}

#[test]
fn min_kube_version_not_a_version() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["spec"]["minKubeVersion"] = json!("latest"));
    caught(&copy.validate(), Rule::MinKubeVersion, "not a version");
}

#[test]
fn alm_examples_not_json() {
    let copy = Copy::new();
    copy.edit_csv(|csv| csv["metadata"]["annotations"]["alm-examples"] = json!("[{"));
    caught(&copy.validate(), Rule::AlmExamples, "not valid JSON");
}

#[test]
fn alm_example_of_an_api_not_owned() {
    let copy = Copy::new();
    copy.edit_examples(|e| {
        e.push(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}))
    });
    caught(&copy.validate(), Rule::AlmExamples, "Widget");
}

#[test]
fn alm_example_missing_for_an_owned_api() {
    let copy = Copy::new();
    copy.edit_examples(|e| {
        let i = example_index(e, "ScaledJob");
        e.remove(i);
    });
    caught(&copy.validate(), Rule::AlmExamples, "scaledjobs.keda.sh has no example");
}

#[test]
fn alm_example_breaks_the_schema() {
    let copy = Copy::new();
    copy.edit_examples(|e| {
        let i = example_index(e, "ScaledObject");
        e[i]["spec"]["minReplicaCount"] = json!("one");
    });
    caught(&copy.validate(), Rule::AlmExamples, "minReplicaCount");
}

#[test]
fn alm_example_sets_an_unknown_field() {
    let copy = Copy::new();
    copy.edit_examples(|e| {
        let i = example_index(e, "KedaController");
        e[i]["spec"]["operator"]["logLevl"] = json!("debug");
    });
    caught(&copy.validate(), Rule::AlmExamples, "spec.operator.logLevl");
}

#[test]
fn owned_crd_not_in_the_bundle() {
    let copy = Copy::new();
    std::fs::remove_file(copy.path("manifests/keda.sh_scaledjobs.yaml")).unwrap();
    caught(&copy.validate(), Rule::OwnedCrds, "scaledjobs.keda.sh (ScaledJob v1alpha1) is not in the bundle");
}

#[test]
fn bundled_crd_not_owned() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let i = owned_index(csv, "CloudEventSource");
        csv["spec"]["customresourcedefinitions"]["owned"].as_array_mut().unwrap().remove(i);
    });
    caught(&copy.validate(), Rule::OwnedCrds, "CloudEventSource");
}

#[test]
fn owned_crd_without_resources_or_description() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let i = owned_index(csv, "TriggerAuthentication");
        let entry = &mut csv["spec"]["customresourcedefinitions"]["owned"][i];
        entry["resources"] = json!([]);
        entry.as_object_mut().unwrap().remove("description");
    });
    let report = copy.validate();
    caught(&report, Rule::OwnedCrds, "lists no resources");
    caught(&report, Rule::OwnedCrds, "has no description");
}

#[test]
fn crd_name_not_plural_dot_group() {
    let copy = Copy::new();
    copy.edit_yaml("manifests/keda.sh_scaledobjects.yaml", |crd| {
        crd["metadata"]["name"] = json!("scaledobject.keda.sh");
    });
    caught(&copy.validate(), Rule::CrdNames, "scaledobjects.keda.sh");
}

#[test]
fn crd_with_two_storage_versions() {
    let copy = Copy::new();
    copy.edit_yaml("manifests/keda.sh_scaledobjects.yaml", |crd| {
        let mut v = crd["spec"]["versions"][0].clone();
        v["name"] = json!("v1alpha2");
        crd["spec"]["versions"].as_array_mut().unwrap().push(v);
    });
    caught(&copy.validate(), Rule::CrdNames, "2 storage versions");
}

#[test]
fn spec_key_of_an_example_without_descriptor() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let i = owned_index(csv, "ScaledObject");
        let d = csv["spec"]["customresourcedefinitions"]["owned"][i]["specDescriptors"].as_array_mut().unwrap();
        d.retain(|x| x["path"] != "triggers");
    });
    caught(&copy.validate(), Rule::Descriptors, "spec.triggers");
}

#[test]
fn example_status_without_status_descriptors() {
    let copy = Copy::new();
    copy.edit_examples(|e| {
        let i = example_index(e, "TriggerAuthentication");
        e[i]["status"] = json!({"scaledobjects": "orders-api"});
    });
    caught(&copy.validate(), Rule::Descriptors, "status.scaledobjects");
}

#[test]
fn descriptor_path_not_in_the_schema() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let i = owned_index(csv, "KedaController");
        csv["spec"]["customresourcedefinitions"]["owned"][i]["specDescriptors"]
            .as_array_mut()
            .unwrap()
            .push(json!({"path": "operator.logLevle", "displayName": "x", "description": "x"}));
    });
    caught(&copy.validate(), Rule::Descriptors, "operator.logLevle");
}

#[test]
fn feature_annotation_missing() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("features.operators.openshift.io/fips-compliant");
    });
    caught(&copy.validate(), Rule::CsvAnnotations, "fips-compliant");
}

#[test]
fn feature_annotation_not_a_boolean_string() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]["features.operators.openshift.io/disconnected"] = json!("yes");
    });
    caught(&copy.validate(), Rule::CsvAnnotations, "disconnected");
}

#[test]
fn unknown_category_and_capability() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]["categories"] = json!("Autoscaling");
        csv["metadata"]["annotations"]["capabilities"] = json!("Level 2");
    });
    let report = copy.validate();
    caught(&report, Rule::CsvAnnotations, "Autoscaling");
    caught(&report, Rule::CsvAnnotations, "Level 2");
}

#[test]
fn created_at_not_rfc3339_and_must_gather_missing() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let a = csv["metadata"]["annotations"].as_object_mut().unwrap();
        a.insert("createdAt".into(), json!("yesterday"));
        a.remove("operators.openshift.io/must-gather-image");
    });
    let report = copy.validate();
    caught(&report, Rule::CsvAnnotations, "createdAt");
    caught(&report, Rule::CsvAnnotations, "must-gather-image");
}

#[test]
fn cluster_monitoring_outside_an_openshift_namespace() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]["operatorframework.io/suggested-namespace"] = json!("keda");
    });
    caught(&copy.validate(), Rule::CsvAnnotations, "openshift-");
}

/// The `relatedImages` entry with this name.
fn related_image<'a>(csv: &'a mut Value, name: &str) -> &'a mut Value {
    csv["spec"]["relatedImages"].as_array_mut().unwrap().iter_mut().find(|r| r["name"] == name).unwrap()
}

fn operator_container(csv: &mut Value) -> &mut Value {
    &mut csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["containers"][0]
}

#[test]
fn image_with_latest_tag() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        related_image(csv, "keda-operator")["image"] = json!("ghcr.io/kedacore/keda:latest");
    });
    caught(&copy.validate(), Rule::Images, "latest");
}

#[test]
fn image_without_tag() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        related_image(csv, "keda-metrics-apiserver")["image"] = json!("ghcr.io/kedacore/keda-metrics-apiserver");
    });
    caught(&copy.validate(), Rule::Images, "neither tag nor digest");
}

#[test]
fn related_image_variable_not_listed() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let env = operator_container(csv)["env"].as_array_mut().unwrap();
        for e in env.iter_mut() {
            if e["name"] == "RELATED_IMAGE_KEDA_OPERATOR" {
                e["value"] = json!("quay.io/mirror/keda:2.20.2");
            }
        }
    });
    caught(&copy.validate(), Rule::Images, "RELATED_IMAGE_KEDA_OPERATOR");
}

#[test]
fn container_image_annotation_not_the_operator() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]["containerImage"] = json!("ghcr.io/cma-operator/cma-operator:0.0.9");
    });
    caught(&copy.validate(), Rule::Images, "containerImage");
}

#[test]
fn release_mode_requires_digests() {
    let copy = Copy::new();
    let report = validate(&copy.dir, &Options { release: true, dockerfile: None });
    caught(&report, Rule::Images, "not pinned by digest");
}

#[test]
fn disconnected_claimed_with_tags() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["metadata"]["annotations"]["features.operators.openshift.io/disconnected"] = json!("true");
    });
    caught(&copy.validate(), Rule::Images, "disconnected");
}

#[test]
fn release_mode_accepts_digests() {
    let copy = Copy::new();
    let digest = format!("@sha256:{}", "a".repeat(64));
    copy.edit_csv(|csv| {
        let text = serde_json::to_string(csv).unwrap();
        let text = regex::Regex::new(r#"(ghcr\.io/[a-z/-]+):[0-9.]+""#)
            .unwrap()
            .replace_all(&text, format!("$1{digest}\""))
            .into_owned();
        *csv = serde_json::from_str(&text).unwrap();
    });
    let report = validate(&copy.dir, &Options { release: true, dockerfile: None });
    assert!(report.is_ok(), "{:#?}", report.findings);
}

#[test]
fn bundle_over_the_size_limit() {
    let copy = Copy::new();
    // 2.5 million random letters (about 1.4 MiB compressed) in a ConfigMap.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let noise: String = (0..2_500_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'A' + (state % 26) as u8)
        })
        .collect();
    std::fs::write(
        copy.path("manifests/big.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  noise: {noise}\n"),
    )
    .unwrap();
    caught(&copy.validate(), Rule::BundleSize, "limit");
}

#[test]
fn bundled_service_account_named_like_the_operators() {
    let copy = Copy::new();
    std::fs::write(
        copy.path("manifests/sa.yaml"),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: cma-operator\n",
    )
    .unwrap();
    caught(&copy.validate(), Rule::ServiceAccounts, "cma-operator");
}

#[test]
fn permissions_for_a_service_account_no_deployment_uses() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["spec"]["install"]["spec"]["permissions"][0]["serviceAccountName"] = json!("other");
    });
    caught(&copy.validate(), Rule::ServiceAccounts, "other");
}

#[test]
fn container_without_requests() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        operator_container(csv)["resources"].as_object_mut().unwrap().remove("requests");
    });
    caught(&copy.validate(), Rule::ResourceRequests, "cpu request");
}

#[test]
fn channel_name_outside_the_convention() {
    let copy = Copy::new();
    copy.edit_yaml("metadata/annotations.yaml", |a| {
        a["annotations"]["operators.operatorframework.io.bundle.channels.v1"] = json!("beta");
        a["annotations"]["operators.operatorframework.io.bundle.channel.default.v1"] = json!("beta");
    });
    copy.edit_text(&copy.dockerfile(), |t| {
        t.replace("channels.v1=stable", "channels.v1=beta")
            .replace("channel.default.v1=stable", "channel.default.v1=beta")
    });
    let report = copy.validate();
    caught(&report, Rule::ChannelNames, "beta");
    assert!(!report.violates(Rule::DockerfileLabels), "{:#?}", report.findings);
}

#[test]
fn cluster_wide_secret_write() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["spec"]["install"]["spec"]["clusterPermissions"][0]["rules"]
            .as_array_mut()
            .unwrap()
            .push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}));
    });
    caught(&copy.validate(), Rule::Permissions, "cluster-wide Secret write");
}

#[test]
fn wildcard_verbs_and_any_escalate_or_bind() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let rules = csv["spec"]["install"]["spec"]["permissions"][0]["rules"].as_array_mut().unwrap();
        rules.push(json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}));
        rules.push(json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "resourceNames": ["keda-operator"], "verbs": ["escalate"]}));
    });
    let report = copy.validate();
    caught(&report, Rule::Permissions, "wildcard");
    caught(&report, Rule::Permissions, "may not grant what it does not hold");
}

#[test]
fn a_keda_component_that_could_grant_permissions() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        let entries = csv["spec"]["install"]["spec"]["clusterPermissions"].as_array_mut().unwrap();
        let keda = entries.iter_mut().find(|e| e["serviceAccountName"] == "keda-operator").unwrap();
        keda["rules"].as_array_mut().unwrap().push(
            json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"]}),
        );
    });
    caught(&copy.validate(), Rule::Permissions, "a KEDA component's permissions");
}

#[test]
fn crd_writes() {
    let copy = Copy::new();
    copy.edit_csv(|csv| {
        csv["spec"]["install"]["spec"]["clusterPermissions"][0]["rules"]
            .as_array_mut()
            .unwrap()
            .push(json!({"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["patch"]}));
    });
    caught(&copy.validate(), Rule::Permissions, "CustomResourceDefinitions");
}

// Hostile bundles: each ends at once with a finding naming the file (and the line), reads nothing outside
// the bundle and nothing but regular files.

/// Creates a FIFO (no writer will ever open it).
#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn layout_a_yaml_syntax_error_names_file_and_line() {
    let copy = Copy::new();
    std::fs::write(
        copy.path("manifests/broken.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\ndata: [\n",
    )
    .unwrap();
    let report = copy.validate();
    caught(&report, Rule::Layout, "manifests/broken.yaml is not valid YAML: ");
    caught(&report, Rule::Layout, "at line 4 column 5");
    // One finding, not one per retry of the parser.
    assert_eq!(report.errors().count(), 1, "{:#?}", report.findings);
}

#[cfg(unix)]
#[test]
fn layout_a_fifo_is_refused_unopened() {
    let copy = Copy::new();
    mkfifo(&copy.path("manifests/pipe.yaml"));
    mkfifo(&copy.path("metadata/properties.yaml"));
    let report = copy.validate();
    caught(&report, Rule::Layout, "manifests/pipe.yaml: a FIFO, not a regular file");
    caught(&report, Rule::Layout, "metadata/properties.yaml: a FIFO, not a regular file");
    std::fs::remove_file(copy.dockerfile()).unwrap();
    mkfifo(&copy.dockerfile());
    caught(&copy.validate(), Rule::DockerfileLabels, "a FIFO, not a regular file");
}

#[cfg(unix)]
#[test]
fn layout_a_symbolic_link_out_of_the_bundle_is_not_followed() {
    let copy = Copy::new();
    let outside = copy.dir.parent().unwrap().join("outside.yaml");
    std::fs::write(&outside, "apiVersion: v1\nkind: Secret\nmetadata: {name: leaked}\n").unwrap();
    std::os::unix::fs::symlink(&outside, copy.path("manifests/leak.yaml")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", copy.path("manifests/passwd.yaml")).unwrap();
    // A link within the bundle is an ordinary file of it.
    std::fs::create_dir(copy.path("shared")).unwrap();
    std::fs::write(copy.path("shared/cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n").unwrap();
    std::os::unix::fs::symlink("../shared/cm.yaml", copy.path("manifests/cm.yaml")).unwrap();
    let report = copy.validate();
    caught(&report, Rule::Layout, "manifests/leak.yaml: a symbolic link to ");
    caught(&report, Rule::Layout, "manifests/passwd.yaml: a symbolic link to /etc/passwd, outside ");
    assert_eq!(report.errors().count(), 2, "{:#?}", report.findings);

    let copy = Copy::new();
    let elsewhere = copy.dir.parent().unwrap().join("elsewhere");
    std::fs::rename(copy.path("manifests"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, copy.path("manifests")).unwrap();
    caught(&copy.validate(), Rule::Layout, "manifests is a symbolic link to ");
}

#[test]
fn layout_an_oversize_file_is_refused_unread() {
    let copy = Copy::new();
    let big =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big}}\ndata:\n  a: '{}'\n", "x".repeat(4 << 20));
    std::fs::write(copy.path("manifests/big.yaml"), big).unwrap();
    caught(&copy.validate(), Rule::Layout, "manifests/big.yaml: 4194371 bytes, over the 3 MiB limit");
}

#[test]
fn layout_an_alias_bomb_stops_at_the_bundles_node_budget() {
    let copy = Copy::new();
    let map: Vec<String> = (0..1_000).map(|i| format!("k{i}: v")).collect();
    let bomb = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bomb, labels: &a {{{}}}}}\ndata: [{}]\n",
        map.join(", "),
        vec!["*a"; 20_000].join(",")
    );
    // Named to be read before the CSV: the budget is spent on it and nothing after it is read.
    std::fs::write(copy.path("manifests/a-bomb.yaml"), bomb).unwrap();
    let report = copy.validate();
    // The line of the anchored node being repeated when the budget ran out.
    caught(&report, Rule::Layout, "manifests/a-bomb.yaml: line 3 column ");
    caught(&report, Rule::Layout, "more than 150000 nodes, the limit for a bundle");
    caught(&report, Rule::Layout, "the rest of the bundle is not read");
    // metadata/ is read first, so its rules still run.
    assert!(!report.violates(Rule::Annotations), "{:#?}", report.findings);
}

#[test]
fn layout_deep_nesting_is_refused() {
    let copy = Copy::new();
    std::fs::write(copy.path("manifests/deep.yaml"), format!("a: {}", "[".repeat(200_000))).unwrap();
    caught(&copy.validate(), Rule::Layout, "manifests/deep.yaml: line 1 column 103: nesting deeper than 100 levels");
}

#[test]
fn every_rule_has_a_test_here() {
    let source = include_str!("validate_rules.rs");
    for rule in Rule::ALL {
        let variant = format!("{rule:?}");
        assert!(source.contains(&format!("Rule::{variant},")), "no test catches Rule::{variant}");
    }
}
