//! Playing OpenShift's service-ca operator in one namespace, as it behaves on a cluster: serving-certificate
//! Secrets for Services annotated `service.beta.openshift.io/serving-cert-secret-name` (and the
//! `serving-cert-signed-by` annotation on the Service), the CA bundle injected into ConfigMaps, APIServices and
//! ValidatingWebhookConfigurations annotated `service.beta.openshift.io/inject-cabundle: "true"`. Its writes are
//! updates by field manager `service-ca-operator`, like the real one's.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use kube::Client;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};

use super::api;
use super::kinds::{self, Kind};

const SERVING_CERT: &str = "service.beta.openshift.io/serving-cert-secret-name";
const SIGNED_BY: &str = "service.beta.openshift.io/serving-cert-signed-by";
const INJECT: &str = "service.beta.openshift.io/inject-cabundle";
/// The field manager of the service-ca operator's writes.
pub const MANAGER: &str = "service-ca-operator";

struct Signer {
    ca_pem: String,
    ca_key: KeyPair,
}

impl Signer {
    fn new() -> Signer {
        let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("service CA key: {e}"));
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "openshift-service-serving-signer@test");
        let cert = params.self_signed(&ca_key).unwrap_or_else(|e| panic!("service CA: {e}"));
        Signer { ca_pem: cert.pem(), ca_key }
    }

    /// A serving certificate and key for `service.namespace.svc`.
    fn serving(&self, service: &str, namespace: &str) -> (String, String) {
        let issuer = Issuer::from_ca_cert_pem(&self.ca_pem, &self.ca_key).unwrap_or_else(|e| panic!("issuer: {e}"));
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("serving key: {e}"));
        let names = vec![format!("{service}.{namespace}.svc"), format!("{service}.{namespace}.svc.cluster.local")];
        let params = CertificateParams::new(names).unwrap_or_else(|e| panic!("{e}"));
        let cert = params.signed_by(&key, &issuer).unwrap_or_else(|e| panic!("serving certificate: {e}"));
        (cert.pem(), key.serialize_pem())
    }
}

/// The running service-ca player; stops when dropped.
pub struct ServiceCa {
    task: tokio::task::JoinHandle<()>,
    client: Client,
    namespace: String,
    signer: Arc<Signer>,
}

impl ServiceCa {
    pub(super) fn start(client: Client, namespace: &str) -> ServiceCa {
        let signer = Arc::new(Signer::new());
        let task = tokio::spawn(run(client.clone(), namespace.to_string(), signer.clone()));
        ServiceCa { task, client, namespace: namespace.to_string(), signer }
    }

    /// The service CA, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.signer.ca_pem
    }

    /// Issues a new certificate into the serving-certificate Secret `name` (as a rotation does).
    pub async fn rotate(&self, secret: &str, service: &str) {
        let (crt, key) = self.signer.serving(service, &self.namespace);
        let patch = json!({"data": {"tls.crt": b64(&crt), "tls.key": b64(&key)}});
        let params = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
        api(&self.client, &kinds::SECRET, &self.namespace)
            .patch(secret, &params, &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("rotating {secret}: {e}"));
    }
}

impl Drop for ServiceCa {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn run(client: Client, namespace: String, signer: Arc<Signer>) {
    loop {
        // Errors are retried on the next round, as the real controller requeues.
        let _ = issue_serving_certificates(&client, &namespace, &signer).await;
        let _ = inject_config_maps(&client, &namespace, &signer).await;
        let _ = inject_api_services(&client, &namespace, &signer).await;
        let _ = inject_webhooks(&client, &namespace, &signer).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn update() -> PatchParams {
    PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() }
}

async fn list(client: &Client, kind: &Kind, namespace: &str) -> Result<Vec<Value>, kube::Error> {
    let items = api(client, kind, namespace).list(&ListParams::default()).await?.items;
    Ok(items.into_iter().filter_map(|o| serde_json::to_value(o).ok()).collect())
}

async fn issue_serving_certificates(client: &Client, namespace: &str, signer: &Signer) -> Result<(), kube::Error> {
    let secrets = api(client, &kinds::SECRET, namespace);
    for service in list(client, &kinds::SERVICE, namespace).await? {
        let Some(secret) = service["metadata"]["annotations"][SERVING_CERT].as_str() else {
            continue;
        };
        let name = service["metadata"]["name"].as_str().unwrap_or_default();
        if secrets.get_opt(secret).await?.is_none() {
            let (crt, key) = signer.serving(name, namespace);
            let object = json!({
                "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": secret, "namespace": namespace,
                             "annotations": {"service.beta.openshift.io/originating-service-name": name}},
                "data": {"tls.crt": b64(&crt), "tls.key": b64(&key)},
            });
            let object = serde_json::from_value(object).unwrap_or_else(|e| panic!("{e}"));
            let params = PostParams { field_manager: Some(MANAGER.into()), ..PostParams::default() };
            secrets.create(&params, &object).await?;
        }
        if service["metadata"]["annotations"][SIGNED_BY].is_null() {
            let patch = json!({"metadata": {"annotations": {SIGNED_BY: "openshift-service-serving-signer@test"}}});
            api(client, &kinds::SERVICE, namespace).patch(name, &update(), &Patch::Merge(&patch)).await?;
        }
    }
    Ok(())
}

fn wants_injection(object: &Value) -> bool {
    object["metadata"]["annotations"][INJECT] == "true"
}

async fn inject_config_maps(client: &Client, namespace: &str, signer: &Signer) -> Result<(), kube::Error> {
    for cm in list(client, &kinds::CONFIG_MAP, namespace).await? {
        if !wants_injection(&cm) || cm["data"]["service-ca.crt"] == signer.ca_pem.as_str() {
            continue;
        }
        let name = cm["metadata"]["name"].as_str().unwrap_or_default();
        let patch = json!({"data": {"service-ca.crt": signer.ca_pem}});
        api(client, &kinds::CONFIG_MAP, namespace).patch(name, &update(), &Patch::Merge(&patch)).await?;
    }
    Ok(())
}

async fn inject_api_services(client: &Client, namespace: &str, signer: &Signer) -> Result<(), kube::Error> {
    let bundle = b64(&signer.ca_pem);
    for service in list(client, &kinds::API_SERVICE, "").await? {
        if !wants_injection(&service)
            || service["spec"]["service"]["namespace"] != namespace
            || service["spec"]["caBundle"] == bundle.as_str()
        {
            continue;
        }
        let name = service["metadata"]["name"].as_str().unwrap_or_default();
        let patch = json!({"spec": {"caBundle": bundle}});
        api(client, &kinds::API_SERVICE, "").patch(name, &update(), &Patch::Merge(&patch)).await?;
    }
    Ok(())
}

async fn inject_webhooks(client: &Client, namespace: &str, signer: &Signer) -> Result<(), kube::Error> {
    let bundle = b64(&signer.ca_pem);
    for mut vwc in list(client, &kinds::VALIDATING_WEBHOOK, "").await? {
        if !wants_injection(&vwc) {
            continue;
        }
        let mut changed = false;
        for webhook in vwc["webhooks"].as_array_mut().into_iter().flatten() {
            let config = &mut webhook["clientConfig"];
            if config["service"]["namespace"] == namespace && config["caBundle"] != bundle.as_str() {
                config["caBundle"] = json!(bundle);
                changed = true;
            }
        }
        if changed {
            let name = vwc["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let patch = json!({"webhooks": vwc["webhooks"]});
            api(client, &kinds::VALIDATING_WEBHOOK, "").patch(&name, &update(), &Patch::Merge(&patch)).await?;
        }
    }
    Ok(())
}
