//! The committed bundle is what `generate` produces, it validates, and the release inputs agree with each
//! other (version file, workspace version, manager Deployment, operator Dockerfile).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{copy_dir, repo};
use std::path::PathBuf;

use assert_cmd::Command;
use cma_bundle::dockerfile;
use cma_bundle::generate::{self, MANAGER};
use cma_bundle::release::Release;
use cma_bundle::validate::{Options, validate};
use serde_json::Value;

fn yaml(rel: &str) -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo().join(rel)).unwrap()).unwrap()
}

#[test]
fn committed_bundle_matches_generate() {
    let root = repo();
    let generated = generate::generate(&root).unwrap();
    if cma_testkit::golden::updating() {
        generated.write(&root).unwrap();
    }
    let drift = generated.drift(&root);
    assert!(
        drift.is_empty(),
        "the committed bundle is out of date (regenerate: cargo run -p cma-bundle -- generate):\n{}",
        drift.join("\n")
    );
}

#[test]
fn generate_is_deterministic() {
    let root = repo();
    assert_eq!(generate::generate(&root).unwrap(), generate::generate(&root).unwrap());
}

#[test]
fn committed_bundle_is_valid_without_warnings() {
    let report = validate(&repo().join("bundle"), &Options::default());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let size = report.compressed_size.unwrap();
    assert!(size < 1024 * 1024 * 85 / 100, "{size} bytes compressed");
}

#[test]
fn release_version_is_the_workspace_version() {
    let release = Release::load(&repo()).unwrap();
    assert_eq!(release.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(release.csv_name(), format!("cma-operator.v{}", release.version));
    assert!(
        release.images.operator.ends_with(&format!(":{}", release.version)),
        "the operator image is tagged with another version: {}",
        release.images.operator
    );
}

#[test]
fn manager_deployment_runs_the_release_image_hardened() {
    let release = Release::load(&repo()).unwrap();
    let manager = yaml(MANAGER);
    let pod = &manager["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["name"], cma_bundle::CONTAINER_NAME);
    assert_eq!(c["image"], release.images.operator.as_str());
    assert_eq!(pod["serviceAccountName"], cma_bundle::OPERATOR_NAME);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for r in ["cpu", "memory"] {
        assert!(!c["resources"]["requests"][r].is_null());
        assert!(!c["resources"]["limits"][r].is_null());
    }
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(args[0], "run");
    assert!(args.contains(&"--leader-elect"));
    assert!(args.contains(&"--metrics-bind-address=0.0.0.0:8443"));
    assert!(args.contains(&"--health-probe-bind-address=0.0.0.0:8081"));
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // The metrics certificate Secret is optional: without it /metrics is plain HTTP.
    assert_eq!(pod["volumes"][0]["secret"]["optional"], true);
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/var/run/secrets/metrics-tls");
}

#[test]
fn manager_arguments_are_accepted_by_the_operator_cli() {
    use clap::Parser;
    let manager = yaml(MANAGER);
    let c = &manager["spec"]["template"]["spec"]["containers"][0];
    let mut argv = vec!["cma-operator".to_string()];
    argv.extend(c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()));
    let cli = cma_operator::cli::Cli::try_parse_from(&argv).unwrap();
    let cma_operator::cli::Command::Run(args) = cli.command else {
        panic!("the manager does not run `run`");
    };
    assert!(args.leader_elect);
    // Given explicitly: the defaults differ in and outside a pod.
    assert_eq!(args.metrics_bind_address.map(|a| a.to_string()).as_deref(), Some("0.0.0.0:8443"));
    assert_eq!(args.health_probe_bind_address.map(|a| a.to_string()).as_deref(), Some("0.0.0.0:8081"));
    assert_eq!(args.metrics_cert_dir, PathBuf::from(c["volumeMounts"][0]["mountPath"].as_str().unwrap()));
    let ports: Vec<i64> = c["ports"].as_array().unwrap().iter().map(|p| p["containerPort"].as_i64().unwrap()).collect();
    assert_eq!(ports, vec![8443, 8081]);
}

#[test]
fn olm_deployment_watches_the_target_namespaces_and_carries_related_images() {
    let csv = yaml(&format!("bundle/manifests/{}", cma_bundle::CSV_FILE));
    let c = &csv["spec"]["install"]["spec"]["deployments"][0]["spec"]["template"]["spec"]["containers"][0];
    let env = c["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    assert_eq!(
        var("WATCH_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.annotations['olm.targetNamespaces']"
    );
    assert_eq!(var("OPERATOR_NAMESPACE").unwrap()["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
    assert_eq!(var("POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
    for (name, image) in [
        ("RELATED_IMAGE_KEDA_OPERATOR", "ghcr.io/kedacore/keda:2.20.2"),
        ("RELATED_IMAGE_KEDA_METRICS_APISERVER", "ghcr.io/kedacore/keda-metrics-apiserver:2.20.2"),
        ("RELATED_IMAGE_KEDA_ADMISSION_WEBHOOKS", "ghcr.io/kedacore/keda-admission-webhooks:2.20.2"),
    ] {
        assert_eq!(var(name).unwrap()["value"], image, "{name}");
    }
    let modes: Vec<(String, bool)> = csv["spec"]["installModes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["type"].as_str().unwrap().to_string(), m["supported"].as_bool().unwrap()))
        .collect();
    // Only OwnNamespace: KEDA's ServiceAccounts and the namespaced permissions live in the install
    // namespace, and no other mode would keep the operator's writes there.
    for (mode, supported) in
        [("OwnNamespace", true), ("SingleNamespace", false), ("MultiNamespace", false), ("AllNamespaces", false)]
    {
        assert!(modes.contains(&(mode.to_string(), supported)), "{mode}: {modes:?}");
    }
    assert_eq!(csv["spec"]["minKubeVersion"], "1.33.0");
    assert_eq!(csv["metadata"]["annotations"]["operatorframework.io/suggested-namespace"], "openshift-keda");
}

#[test]
fn operator_dockerfile_agrees_with_the_deployment() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let manager = yaml(MANAGER);
    let pod = &manager["spec"]["template"]["spec"];
    let command: Vec<String> =
        pod["containers"][0]["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let entrypoint = dockerfile::last(&text, "ENTRYPOINT")
        .and_then(|a| dockerfile::exec_form(&a))
        .expect("an exec-form ENTRYPOINT in the final stage");
    assert_eq!(entrypoint, command, "ENTRYPOINT and the Deployment's command");
    let binary = &entrypoint[0];
    let copies_binary = dockerfile::final_stage(&text)
        .iter()
        .any(|i| i.keyword == "COPY" && i.args.split_whitespace().last() == Some(binary.as_str()));
    assert!(copies_binary, "the final stage does not COPY the binary to {binary}");
    // runAsNonRoot needs a numeric non-root USER in the image.
    let user = dockerfile::last(&text, "USER").expect("a USER in the final stage");
    let uid: u32 = user.split(':').next().unwrap().parse().expect("a numeric USER (runAsNonRoot cannot check a name)");
    assert_ne!(uid, 0);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let labels = dockerfile::labels(&text);
    for key in [
        "name",
        "version",
        "summary",
        "description",
        "vendor",
        "io.k8s.display-name",
        "org.opencontainers.image.source",
    ] {
        assert!(labels.contains_key(key), "label {key} missing");
    }
    assert_eq!(labels["version"], env!("CARGO_PKG_VERSION"));
    // The build produces a static release binary.
    assert!(text.contains("--release"), "not a release build");
    assert!(text.contains("unknown-linux-musl"), "not a static (musl) build");
}

/// `oc adm must-gather --image=<containerImage>` (the product documentation's command) runs
/// `/bin/bash -c '... /usr/bin/gather ...'` in the operator image and copies /must-gather out with tar.
#[test]
fn operator_image_doubles_as_the_must_gather_image() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    // A base with bash and coreutils (oc's pod command is bash; its disk watcher uses df, sleep) and a
    // package manager to add tar: not scratch, distroless or ubi-micro.
    let base = dockerfile::base_image(&text).expect("a FROM");
    assert!(base.contains("/ubi9/ubi-minimal:"), "the final stage starts from {base}, which lacks bash or tar");
    let packages = dockerfile::installed_packages(&text);
    for package in ["tar", "gawk", "sed"] {
        assert!(packages.contains(package), "the image does not install {package} (installs {packages:?})");
    }
    let copies = dockerfile::copies(&text);
    let copied_to = |dest: &str| copies.iter().find(|c| c.dest == dest);
    let gather = copied_to("/usr/bin/gather").expect("the image has no /usr/bin/gather");
    assert_eq!(gather.from.as_deref(), Some("builder"));
    assert!(
        text.contains("install -D -m 0755 must-gather/gather /out/gather"),
        "gather is not the repository's script"
    );
    assert_eq!(gather.sources, vec!["/out/gather".to_string()]);
    let binary = copied_to("/usr/bin/cma-must-gather").expect("the image has no cma-must-gather binary");
    assert_eq!(binary.sources, vec!["/out/cma-must-gather".to_string()]);
    assert!(text.contains("-p cma-must-gather --bin cma-must-gather"), "the builder does not build cma-must-gather");
    // The script runs the binary where the image puts it.
    let script = std::fs::read_to_string(repo().join("must-gather/gather")).unwrap();
    assert!(script.contains("bin=\"${CMA_MUST_GATHER_BIN:-/usr/bin/cma-must-gather}\""), "{script}");
    assert!(script.starts_with("#!/usr/bin/env bash\n"));
    // The CSV names this image for must-gather too, and lists it once in relatedImages.
    let release = Release::load(&repo()).unwrap();
    let csv = yaml(&format!("bundle/manifests/{}", cma_bundle::CSV_FILE));
    let annotations = &csv["metadata"]["annotations"];
    assert_eq!(annotations["containerImage"], release.images.operator.as_str());
    assert_eq!(annotations["operators.openshift.io/must-gather-image"], release.images.operator.as_str());
    let related: Vec<&str> = csv["spec"]["relatedImages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["image"] == release.images.operator.as_str())
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(related, vec!["cma-operator"]);
    assert!(!repo().join("must-gather/Dockerfile").exists(), "a second must-gather image to build and mirror");
}

#[test]
fn dockerignore_keeps_the_build_context_small() {
    let text = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(text.lines().any(|l| l.trim() == "target"), "target/ is sent to the builder");
}

#[test]
fn cli_validate_reports_one_line_per_violation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    std::fs::create_dir_all(dir.join("manifests")).unwrap();
    std::fs::create_dir_all(dir.join("metadata")).unwrap();
    std::fs::write(dir.join("metadata/annotations.yaml"), "annotations: {}\n").unwrap();
    let out = Command::cargo_bin("cma-bundle").unwrap().args(["validate", dir.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("error[layout]: manifests/ holds 0 ClusterServiceVersions"), "{stderr}");
    assert!(
        stderr.contains(
            "error[annotations]: metadata/annotations.yaml lacks operators.operatorframework.io.bundle.package.v1"
        ),
        "{stderr}"
    );
    assert!(stderr.lines().all(|l| l.starts_with("error[") || l.contains(" error")), "{stderr}");
}

#[test]
fn cli_validate_ends_at_once_on_a_yaml_syntax_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    copy_dir(&repo().join("bundle"), &dir);
    std::fs::write(dir.join("manifests/broken.yaml"), "kind: ConfigMap\ndata: [a, b\n").unwrap();
    let out = Command::cargo_bin("cma-bundle")
        .unwrap()
        .args(["validate", dir.to_str().unwrap(), "--dockerfile"])
        .arg(repo().join("bundle.Dockerfile"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("error[layout]: manifests/broken.yaml is not valid YAML: "), "{stderr}");
    assert!(stderr.contains("line 3 column 1"), "{stderr}");
}

#[test]
fn cli_validate_accepts_the_committed_bundle() {
    let out =
        Command::cargo_bin("cma-bundle").unwrap().current_dir(repo()).args(["validate", "bundle"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("valid, compressed size"), "{stdout}");
}

#[test]
fn cli_generate_check_passes_on_the_committed_bundle() {
    let out = Command::cargo_bin("cma-bundle")
        .unwrap()
        .args(["generate", "--check", "--root", repo().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_release_pinned_by_digest_is_disconnected_and_passes_release_validation() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("config"), &tmp.path().join("config"));
    copy_dir(&repo().join("manifests"), &tmp.path().join("manifests"));
    let release_file = tmp.path().join("config/manifests/release.yaml");
    let digest = |c: char| format!("@sha256:{}", c.to_string().repeat(64));
    let text = std::fs::read_to_string(&release_file)
        .unwrap()
        .replace("cma-operator:0.1.0", &format!("cma-operator{}", digest('a')))
        .replace("kedaOperator: null", &format!("kedaOperator: ghcr.io/kedacore/keda{}", digest('c')))
        .replace(
            "kedaMetricsApiserver: null",
            &format!("kedaMetricsApiserver: ghcr.io/kedacore/keda-metrics-apiserver{}", digest('d')),
        )
        .replace(
            "kedaAdmissionWebhooks: null",
            &format!("kedaAdmissionWebhooks: ghcr.io/kedacore/keda-admission-webhooks{}", digest('e')),
        );
    std::fs::write(&release_file, text).unwrap();
    // The manager's tag is the non-OLM default; the CSV takes the release's image.
    generate::generate(tmp.path()).unwrap().write(tmp.path()).unwrap();
    let csv: Value = serde_yaml::from_str(
        &std::fs::read_to_string(tmp.path().join("bundle/manifests").join(cma_bundle::CSV_FILE)).unwrap(),
    )
    .unwrap();
    assert_eq!(csv["metadata"]["annotations"]["features.operators.openshift.io/disconnected"], "true");
    let report = validate(&tmp.path().join("bundle"), &Options { release: true, dockerfile: None });
    assert!(report.is_ok(), "{:#?}", report.findings);
}

#[test]
fn a_bundle_with_tags_does_not_claim_disconnected() {
    let csv = yaml(&format!("bundle/manifests/{}", cma_bundle::CSV_FILE));
    assert_eq!(csv["metadata"]["annotations"]["features.operators.openshift.io/disconnected"], "false");
    let report = validate(&repo().join("bundle"), &Options { release: true, dockerfile: None });
    assert!(!report.is_ok(), "tags pass --release");
}

#[test]
fn bundled_crds_are_the_ones_in_config_crd_bases() {
    for entry in std::fs::read_dir(repo().join("config/crd/bases")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let base: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let bundled = yaml(&format!("bundle/manifests/{name}"));
        assert_eq!(base, bundled, "{name}");
    }
}

#[test]
fn the_console_offers_to_create_the_kedacontroller() {
    let csv = yaml(&format!("bundle/manifests/{}", cma_bundle::CSV_FILE));
    let init: Value = serde_json::from_str(
        csv["metadata"]["annotations"]["operatorframework.io/initialization-resource"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(init["kind"], "KedaController");
    assert_eq!(init["metadata"]["name"], "keda");
    assert_eq!(init["metadata"]["namespace"], "openshift-keda");
}

#[test]
fn the_kedacontroller_example_passes_the_operators_own_validation() {
    let csv = yaml(&format!("bundle/manifests/{}", cma_bundle::CSV_FILE));
    let examples: Vec<Value> =
        serde_json::from_str(csv["metadata"]["annotations"]["alm-examples"].as_str().unwrap()).unwrap();
    let kc = examples.into_iter().find(|e| e["kind"] == "KedaController").unwrap();
    let kc: cma_api::KedaController = serde_json::from_value(kc).unwrap();
    cma_api::validate(&kc).unwrap();
    assert_eq!(kc.metadata.name.as_deref(), Some("keda"));
}

#[test]
fn keda_static_rbac_carries_the_names_the_operator_knows() {
    let mut objects = generate::keda_rbac_objects(&repo()).unwrap();
    generate::check_keda_rbac_names(&objects).unwrap();
    let reader =
        objects.iter_mut().find(|o| o["metadata"]["name"] == cma_api::names::EXTERNAL_METRICS_READER_ROLE).unwrap();
    reader["metadata"]["name"] = "keda-external-metrics-reader".into();
    let err = generate::check_keda_rbac_names(&objects).unwrap_err().to_string();
    assert!(err.contains("keda-external-metrics-reader") && err.contains("cma_api::names"), "{err}");
}
