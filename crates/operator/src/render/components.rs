//! What each component needs beyond its template: log flags, CA bundles, audit logging and, on OpenShift,
//! service-ca certificates and the cluster TLS profile.

use std::collections::BTreeMap;

use cma_api::audit::PolicyDocument;
use cma_api::{Component, KedaControllerSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapProjection, ConfigMapVolumeSource, EnvVar, KeyToPath, PersistentVolumeClaimVolumeSource,
    ProjectedVolumeSource, SecretProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::metadata::{Owner, Scope, own};
use super::workload::Changes;
use super::{RenderContext, RenderError, openshift};
use crate::platform::TlsProfile;

pub use cma_api::names::AUDIT_POLICY_CONFIG_MAP;
/// Key of the policy in [`AUDIT_POLICY_CONFIG_MAP`].
pub const AUDIT_POLICY_FILE: &str = "policy.yaml";
/// Where the audit policy is mounted.
pub const AUDIT_POLICY_DIR: &str = "/var/audit-policy";
/// Where the audit log volume claim is mounted: a fixed path, so the pod template never changes on its own.
pub const AUDIT_LOG_DIR: &str = "/var/audit-log";

/// Changes to the KEDA operator.
pub fn operator(spec: &KedaControllerSpec, ctx: &RenderContext) -> Changes {
    let op = &spec.operator;
    let mut changes = Changes::default();
    zap_flags(&mut changes.args, op.log_level.as_deref(), op.log_encoder.as_deref(), op.log_time_encoding.as_deref());

    let mut ca_config_maps: Vec<&str> = Vec::new();
    if ctx.platform.is_openshift() {
        // OpenShift's own CA first, so scalers reach service-ca-signed endpoints (Thanos, in-cluster APIs).
        ca_config_maps.push(openshift::CA_BUNDLE_CONFIG_MAP);
        changes.args.push("--enable-cert-rotation=false".into());
        changes.volumes.push(projected(
            "certificates",
            vec![
                secret_items(
                    &Component::Operator.serving_cert_secret(),
                    &[("tls.crt", "tls.crt"), ("tls.key", "tls.key")],
                ),
                secret_items(openshift::GRPC_CERTS_SECRET, &[("ca.crt", "ca.crt")]),
            ],
        ));
    }
    ca_config_maps
        .extend(op.ca_config_maps.iter().map(String::as_str).filter(|name| !ca_config_maps_contains_ocp(name, ctx)));
    for (i, name) in ca_config_maps.iter().enumerate() {
        let volume = format!("cabundle{i}");
        let dir = format!("/custom/ca{i}");
        changes.volumes.push(Volume {
            name: volume.clone(),
            config_map: Some(ConfigMapVolumeSource { name: (*name).to_string(), ..ConfigMapVolumeSource::default() }),
            ..Volume::default()
        });
        changes.volume_mounts.push(read_only_mount(&volume, &dir));
        changes.args.push(format!("--ca-dir={dir}"));
    }
    platform_env(&mut changes.env, ctx);
    config_hash(&mut changes, Component::Operator, ctx);
    changes
}

/// On OpenShift the service-ca bundle is always mounted first; listing it again would mount it twice.
fn ca_config_maps_contains_ocp(name: &str, ctx: &RenderContext) -> bool {
    ctx.platform.is_openshift() && name == openshift::CA_BUNDLE_CONFIG_MAP
}

/// Changes to the metrics API server, and the audit policy ConfigMap when audit logging is on.
pub fn metrics_server(
    spec: &KedaControllerSpec,
    ctx: &RenderContext,
    owner: &Owner,
) -> Result<(Changes, Option<ConfigMap>), RenderError> {
    let ms = &spec.metrics_server;
    let mut changes = Changes::default();
    changes.args.push(format!("--zap-log-level={}", metrics_server_zap_level(ms.log_level.as_deref())));
    if ctx.platform.is_openshift() {
        changes.volumes.push(projected(
            "certificates",
            vec![
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: openshift::CA_BUNDLE_CONFIG_MAP.into(),
                        items: Some(vec![key_to_path("service-ca.crt", "ca.crt")]),
                        optional: None,
                    }),
                    ..VolumeProjection::default()
                },
                secret_items(openshift::GRPC_CERTS_SECRET, &[("tls.crt", "tls.crt"), ("tls.key", "tls.key")]),
                secret_items(
                    &Component::MetricsServer.serving_cert_secret(),
                    &[("tls.crt", "ocp-tls.crt"), ("tls.key", "ocp-tls.key")],
                ),
            ],
        ));
        changes.args.push("--tls-cert-file=/certs/ocp-tls.crt".into());
        changes.args.push("--tls-private-key-file=/certs/ocp-tls.key".into());
        if let Some(profile) = &ctx.platform.tls_profile {
            apiserver_tls_flags(&mut changes.args, profile);
        }
    }
    let policy = audit(spec, &mut changes, owner)?;
    platform_env(&mut changes.env, ctx);
    config_hash(&mut changes, Component::MetricsServer, ctx);
    Ok((changes, policy))
}

/// The `--zap-log-level` for the metrics server's `logLevel`, a klog-style verbosity (documented as "0 for
/// info, 4 for debug, default 0"). KEDA 2.20's metrics server applies its deprecated `--v` only above 0 and
/// otherwise keeps the template's `error` level, so "0" and the default are translated to `info` here and
/// `--v` is never rendered; a verbosity N above 0 is zap's level N (what `--v=N` meant).
fn metrics_server_zap_level(level: Option<&str>) -> &str {
    match level {
        None | Some("0") => "info",
        Some(n) => n,
    }
}

/// The metrics server is a Kubernetes API server: its HTTPS endpoint takes the profile as flags.
fn apiserver_tls_flags(args: &mut Vec<String>, profile: &TlsProfile) {
    args.push(format!("--tls-min-version={}", profile.min_version.openshift_name()));
    if !profile.ciphers.is_empty() {
        args.push(format!("--tls-cipher-suites={}", profile.cipher_list()));
    }
}

fn audit(spec: &KedaControllerSpec, changes: &mut Changes, owner: &Owner) -> Result<Option<ConfigMap>, RenderError> {
    let audit = &spec.metrics_server.audit_config;
    if !audit.is_enabled() {
        return Ok(None);
    }
    let policy = serde_yaml::to_string(&PolicyDocument::new(&audit.policy))
        .map_err(|e| RenderError::Serialize { what: "the audit policy".into(), message: e.to_string() })?;
    changes.volumes.push(Volume {
        name: "audit-policy".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: AUDIT_POLICY_CONFIG_MAP.into(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    });
    changes.volume_mounts.push(read_only_mount("audit-policy", AUDIT_POLICY_DIR));
    changes.args.push(format!("--audit-policy-file={AUDIT_POLICY_DIR}/{AUDIT_POLICY_FILE}"));
    changes.args.push(format!("--audit-log-format={}", audit.log_format.as_deref().unwrap_or("json")));
    match &audit.log_output_volume_claim {
        Some(claim) => {
            changes.volumes.push(Volume {
                name: "audit-log".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: claim.clone(),
                    read_only: None,
                }),
                ..Volume::default()
            });
            changes.volume_mounts.push(VolumeMount {
                name: "audit-log".into(),
                mount_path: AUDIT_LOG_DIR.into(),
                ..VolumeMount::default()
            });
            changes.args.push(format!("--audit-log-path={AUDIT_LOG_DIR}/audit.log"));
            let lifetime = [
                ("--audit-log-maxage", &audit.lifetime.max_age),
                ("--audit-log-maxbackup", &audit.lifetime.max_backup),
                ("--audit-log-maxsize", &audit.lifetime.max_size),
            ];
            for (flag, value) in lifetime {
                if let Some(value) = value {
                    changes.args.push(format!("{flag}={value}"));
                }
            }
        }
        None => changes.args.push("--audit-log-path=-".into()),
    }
    // The metrics server reads the policy once, at start-up: a new policy needs new pods.
    changes.config.insert("audit-policy".into(), policy.clone());
    let mut config_map = ConfigMap {
        metadata: ObjectMeta { name: Some(AUDIT_POLICY_CONFIG_MAP.into()), ..ObjectMeta::default() },
        data: Some(BTreeMap::from([(AUDIT_POLICY_FILE.to_string(), policy)])),
        ..ConfigMap::default()
    };
    own(&mut config_map.metadata, owner, Scope::Install);
    Ok(Some(config_map))
}

/// Changes to the admission webhooks.
pub fn admission_webhooks(spec: &KedaControllerSpec, ctx: &RenderContext) -> Changes {
    let aw = &spec.admission_webhooks;
    let mut changes = Changes::default();
    zap_flags(&mut changes.args, aw.log_level.as_deref(), aw.log_encoder.as_deref(), aw.log_time_encoding.as_deref());
    if ctx.platform.is_openshift() {
        changes.volumes.push(projected(
            "certificates",
            vec![secret_items(
                &Component::AdmissionWebhooks.serving_cert_secret(),
                &[("tls.crt", "tls.crt"), ("tls.key", "tls.key")],
            )],
        ));
    }
    platform_env(&mut changes.env, ctx);
    config_hash(&mut changes, Component::AdmissionWebhooks, ctx);
    changes
}

fn zap_flags(args: &mut Vec<String>, level: Option<&str>, encoder: Option<&str>, time_encoding: Option<&str>) {
    let flags = [("--zap-log-level", level), ("--zap-encoder", encoder), ("--zap-time-encoding", time_encoding)];
    for (flag, value) in flags {
        if let Some(value) = value {
            args.push(format!("{flag}={value}"));
        }
    }
}

/// What every container takes from the cluster: the TLS profile (OpenShift) and the cluster proxy.
fn platform_env(env: &mut Vec<EnvVar>, ctx: &RenderContext) {
    tls_env(env, ctx);
    env.extend(ctx.proxy.iter().cloned());
}

/// KEDA's gRPC and webhook servers take the TLS profile from the environment.
fn tls_env(env: &mut Vec<EnvVar>, ctx: &RenderContext) {
    if let Some(profile) = ctx.platform.tls_profile.as_ref().filter(|_| ctx.platform.is_openshift()) {
        env.push(plain_env("KEDA_SERVICE_MIN_TLS_VERSION", profile.min_version.keda_name()));
        if !profile.ciphers.is_empty() {
            env.push(plain_env("KEDA_SERVICE_TLS_CIPHER_LIST", &profile.cipher_list()));
        }
    }
}

/// Content the controller observed (CA bundles, service-ca certificates) that the component reads at
/// start-up; its digest in the pod template rolls the pods when it changes.
fn config_hash(changes: &mut Changes, component: Component, ctx: &RenderContext) {
    if let Some(hash) = ctx.config_hashes.get(&component) {
        changes.config.insert("observed".into(), hash.clone());
    }
}

fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), value_from: None }
}

fn read_only_mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount { name: volume.into(), mount_path: path.into(), read_only: Some(true), ..VolumeMount::default() }
}

fn key_to_path(key: &str, path: &str) -> KeyToPath {
    KeyToPath { key: key.into(), path: path.into(), mode: None }
}

fn secret_items(secret: &str, items: &[(&str, &str)]) -> VolumeProjection {
    VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.into(),
            items: Some(items.iter().map(|(k, p)| key_to_path(k, p)).collect()),
            optional: None,
        }),
        ..VolumeProjection::default()
    }
}

fn projected(name: &str, sources: Vec<VolumeProjection>) -> Volume {
    Volume {
        name: name.into(),
        projected: Some(ProjectedVolumeSource { default_mode: Some(0o644), sources: Some(sources) }),
        ..Volume::default()
    }
}
