//! What the API server itself refuses, with the generated KedaController CRD: the CRD is accepted (its CEL
//! rules fit the API server's cost budget) and bad values are refused at admission, in words, before the
//! operator ever sees them.

use cma_testkit::cluster::{self, Apis, kinds};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

fn kedacontroller(namespace: &str, spec: Value) -> Value {
    json!({"apiVersion": "keda.sh/v1alpha1", "kind": "KedaController",
        "metadata": {"name": "keda", "namespace": namespace}, "spec": spec})
}

#[tokio::test]
async fn the_kedacontroller_crd_is_accepted_and_refuses_bad_values_in_words() {
    let cluster = cluster::acquire(Apis::kubernetes()).await;
    // Applied again here, on its own, so a CRD the API server refuses (a rule over the cost budget, a rule
    // that does not compile) fails with the server's reason rather than as a harness start-up failure.
    let crd = serde_json::to_value(cma_api::crd::kedacontroller().unwrap()).unwrap();
    let name = crd["metadata"]["name"].as_str().unwrap().to_string();
    cluster::api(&cluster.client(), &kinds::CRD, "")
        .patch(&name, &PatchParams::apply("admission-test").force(), &Patch::Apply(&crd))
        .await
        .unwrap_or_else(|e| {
            panic!("the API server refuses the KedaController CRD: {}", cma_operator::errors::describe(&e))
        });

    let ns = cluster.namespace("admission").await;
    let big = "x".repeat(1000);
    let annotations: serde_json::Map<String, Value> = (0..=cma_api::rules::MAX_ANNOTATION_BYTES / 1000)
        .map(|i| (format!("example.com/a{i:03}"), Value::String(big.clone())))
        .collect();
    let refused = [
        (
            "requests above limits",
            json!({"operator": {"resources": {"requests": {"cpu": "2", "memory": "100Mi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}}}),
            ("spec.operator.resources", "the request of \"cpu\" is greater than its limit"),
        ),
        (
            "pod annotations over the size limit",
            json!({"metricsServer": {"podAnnotations": annotations}}),
            ("spec.metricsServer.podAnnotations", "keys and values together may hold at most 260096 bytes"),
        ),
        (
            "a label key with a blank",
            json!({"admissionWebhooks": {"podLabels": {"bad key": "x"}}}),
            ("spec.admissionWebhooks.podLabels", "key \"bad key\" is not a qualified name"),
        ),
        (
            "a log level",
            json!({"operator": {"logLevel": "verbose"}}),
            ("spec.operator.logLevel", "\"verbose\": must be debug, info, error or a positive integer"),
        ),
        (
            "the documentation's placeholder claim",
            json!({"metricsServer": {"auditConfig": {"logOutputVolumeClaim": "persistentVolumeClaimName"}}}),
            (
                "spec.metricsServer.auditConfig.logOutputVolumeClaim",
                "\"persistentVolumeClaimName\": must be an object name",
            ),
        ),
        (
            "an environment variable the operator sets",
            json!({"operator": {"env": [{"name": "WATCH_NAMESPACE", "value": "a"}]}}),
            ("spec.operator.env[0].name", "\"WATCH_NAMESPACE\" is set by the operator"),
        ),
        (
            "an API server address without a prefix length",
            json!({"networkPolicy": {"apiServerCIDRs": ["10.0.0.10"]}}),
            ("spec.networkPolicy.apiServerCIDRs[0]", "\"10.0.0.10\": must be an address block"),
        ),
        (
            "a mount over the operator's certificates",
            json!({"operator": {"volumes": [{"name": "x", "emptyDir": {}}], "volumeMounts": [{"name": "x", "mountPath": "/certs"}]}}),
            ("spec.operator.volumeMounts[0].mountPath", "\"/certs\" is at, above or below a path the operator mounts"),
        ),
    ];
    for (what, spec, (path, words)) in refused {
        let error = cluster.try_create(&kedacontroller(&ns, spec)).await.expect_err(what);
        let message = cma_operator::errors::describe(&error);
        assert!(
            message.contains(&format!("{path}: Invalid value: ")) && message.contains(words),
            "{what}: the API server said:\n{message}\nexpected {path}: {words}"
        );
        // Never a regular expression: what is expected is said in words.
        assert!(!message.contains("should match") && !message.contains("[a-z0-9]"), "{what}: {message}");
    }

    let sample =
        std::fs::read_to_string(cluster::workspace_root().join("config/samples/keda_v1alpha1_kedacontroller.yaml"))
            .unwrap();
    let mut sample: Value = serde_yaml::from_str(&sample).unwrap();
    sample["metadata"]["namespace"] = json!(ns);
    cluster.create(&sample).await;
}
