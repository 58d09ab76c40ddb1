//! `cma-operator uninstall` after the operator was removed before its KedaController: it removes exactly
//! what the operator installed, then lets the KedaController go, and touches nothing else.

use cma_operator::uninstall::{KedaControllerState, Target, uninstall};
use cma_testkit::cluster::kinds;
use cma_tests::*;
use serde_json::json;

#[tokio::test]
async fn uninstall_removes_exactly_the_installation_once_the_operator_is_gone() {
    let env = env().await;
    let operator = env.installed(json!({"metricsServer": {"replicas": 2}})).await;
    let installed = env.managed_objects().await;
    assert!(installed.contains(&"APIService v1beta1.external.metrics.k8s.io".to_string()), "{installed:#?}");
    assert!(installed.contains(&"RoleBinding kube-system/keda-auth-reader".to_string()), "{installed:#?}");

    // Things that are not the operator's: a ConfigMap of the user's, one carrying the labels of another
    // installation, and KEDA's static ServiceAccounts and permissions (installed with the operator).
    let other = env.cluster.namespace("other").await;
    env.cluster
        .create(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "mine", "namespace": env.ns}}))
        .await;
    let foreign_labels = json!({
        "app.kubernetes.io/managed-by": "cma-operator",
        "cma.keda.sh/owner-namespace": other,
        "cma.keda.sh/owner-name": "keda",
    });
    env.cluster
        .create(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "theirs", "namespace": other, "labels": foreign_labels}}))
        .await;

    // The operator goes first, then the KedaController is deleted: nothing releases its finalizer.
    operator.stop().await.unwrap();
    env.cluster.delete(&kinds::KEDACONTROLLER, &env.ns, "keda").await;
    let kc = env.keda().await;
    assert!(kc["metadata"]["deletionTimestamp"].is_string(), "{kc}");

    let client = env.cluster.client();
    let target = Target { namespace: env.ns.clone(), name: "keda".into() };

    // A dry run lists every object and deletes none.
    let planned = uninstall(&client, &target, true).await;
    assert!(planned.failures.is_empty(), "{:#?}", planned.failures);
    let mut listed: Vec<String> = planned.objects.iter().map(ToString::to_string).collect();
    listed.sort();
    assert_eq!(listed, installed);
    assert_eq!(planned.kedacontroller, Some(KedaControllerState::Deleting { finalizer: true }));
    assert!(planned.finalizer_released);
    assert_eq!(env.managed_objects().await, installed);
    assert!(env.get(&kinds::KEDACONTROLLER, "keda").await.is_some());

    // Without the right to list cluster-wide, it says so and deletes nothing.
    env.cluster
        .create(&json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "developer", "namespace": env.ns}}))
        .await;
    let developer = env.cluster.service_account_client(&env.ns, "developer", "uninstall-developer", None).await;
    let refused = uninstall(&developer, &target, false).await;
    assert!(!refused.failures.is_empty());
    for failure in &refused.failures {
        assert!(failure.contains("forbidden") && failure.contains("cluster administrator"), "{failure}");
        assert!(!failure.contains("Status {") && !failure.contains("ApiError"), "{failure}");
    }
    assert!(!refused.finalizer_released);
    assert_eq!(env.managed_objects().await, installed);

    let done = uninstall(&client, &target, false).await;
    assert!(done.failures.is_empty(), "{:#?}", done.failures);
    assert_eq!(done.objects.len(), installed.len());
    assert!(done.finalizer_released);
    assert_eq!(env.managed_objects().await, Vec::<String>::new());
    eventually(WAIT, "the KedaController is gone", async || env.get(&kinds::KEDACONTROLLER, "keda").await.is_none())
        .await;

    // Nothing else was touched.
    assert!(env.get(&kinds::CONFIG_MAP, "mine").await.is_some());
    assert!(env.cluster.get(&kinds::CONFIG_MAP, &other, "theirs").await.is_some());
    for object in keda_rbac(&env.ns) {
        let kind = kinds::Kind::of(object["apiVersion"].as_str().unwrap(), object["kind"].as_str().unwrap()).unwrap();
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = object["metadata"]["name"].as_str().unwrap();
        assert!(
            env.cluster.get(&kind, namespace, name).await.is_some(),
            "{} {namespace}/{name} was deleted",
            kind.kind
        );
    }

    // Run again: nothing left to do, and it says so.
    let again = uninstall(&client, &target, false).await;
    assert!(again.objects.is_empty() && again.failures.is_empty(), "{again:#?}");
    assert_eq!(again.kedacontroller, Some(KedaControllerState::Absent));
}
