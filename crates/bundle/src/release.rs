//! The release the bundle describes: `config/manifests/release.yaml`, the one place for the version, the
//! upgrade graph (`replaces`, `olm.skipRange`), channels and images.

use std::path::Path;

use cma_api::Component;
use cma_api::yaml::{self, Limits};
use cma_operator::render::templates::{Templates, templates};
use serde::Deserialize;

use crate::error::BundleError;
use crate::files;

/// Path of the release file under the repository root.
pub const RELEASE_FILE: &str = "config/manifests/release.yaml";

/// The contents of the release file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Release {
    /// The operator version (semver); the CSV is `cma-operator.v<version>`.
    pub version: String,
    /// The CSV name this release replaces, if any.
    pub replaces: Option<String>,
    /// `olm.skipRange`: versions OLM may upgrade from directly.
    pub skip_range: Option<String>,
    /// The `createdAt` annotation (RFC 3339).
    pub created_at: String,
    /// Channels the bundle is published in.
    pub channels: Vec<String>,
    /// The default channel.
    pub default_channel: String,
    /// `com.redhat.openshift.versions`: the OpenShift releases the bundle is for.
    pub openshift_versions: String,
    /// Image references.
    pub images: Images,
}

/// Image references of a release.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Images {
    /// The operator's image, which is also the must-gather image (it carries `/usr/bin/gather`).
    pub operator: String,
    /// KEDA operator image; `None`: the operator's pinned default.
    pub keda_operator: Option<String>,
    /// KEDA metrics API server image; `None`: the pinned default.
    pub keda_metrics_apiserver: Option<String>,
    /// KEDA admission webhooks image; `None`: the pinned default.
    pub keda_admission_webhooks: Option<String>,
}

/// One image the operator uses, with its `relatedImages` name and its environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelatedImage {
    /// Name in `spec.relatedImages`.
    pub name: &'static str,
    /// The reference.
    pub image: String,
    /// The operator container's environment variable carrying it, if any.
    pub env: Option<&'static str>,
}

impl Release {
    /// Reads the release file under `root`.
    pub fn load(root: &Path) -> Result<Self, BundleError> {
        let path = root.join(RELEASE_FILE);
        let text = files::read_text(&path, None, files::CONFIG_FILE).map_err(BundleError::file(&path))?;
        let release: Release = yaml::from_str(&text, Limits::MANIFEST).map_err(BundleError::yaml(&path))?;
        release.check().map_err(|m| BundleError::input(&path, m))?;
        Ok(release)
    }

    fn check(&self) -> Result<(), String> {
        semver::Version::parse(&self.version).map_err(|e| format!("version {}: {e}", self.version))?;
        if !self.channels.contains(&self.default_channel) {
            return Err(format!(
                "defaultChannel {} is not one of the channels {:?}",
                self.default_channel, self.channels
            ));
        }
        Ok(())
    }

    /// The CSV's name.
    pub fn csv_name(&self) -> String {
        format!("{}.v{}", crate::PACKAGE, self.version)
    }

    /// Every image of the release: the operator (also the must-gather image) and KEDA's three (from the
    /// release file or the operator's pinned defaults), with the variables that carry them.
    pub fn related_images(&self) -> Result<Vec<RelatedImage>, BundleError> {
        let t: &Templates = templates().map_err(|e| BundleError::Operator(e.to_string()))?;
        let keda = |component: Component, chosen: &Option<String>| -> Result<RelatedImage, BundleError> {
            let name = component.container_name();
            let image = match chosen {
                Some(image) => image.clone(),
                None => Templates::default_image(t.deployment(component))
                    .ok_or_else(|| BundleError::Operator(format!("the {name} template names no image")))?
                    .to_string(),
            };
            Ok(RelatedImage { name, image, env: Some(cma_operator::render::images::env_names(component)[0]) })
        };
        Ok(vec![
            RelatedImage { name: cma_api::names::OPERATOR, image: self.images.operator.clone(), env: None },
            keda(Component::Operator, &self.images.keda_operator)?,
            keda(Component::MetricsServer, &self.images.keda_metrics_apiserver)?,
            keda(Component::AdmissionWebhooks, &self.images.keda_admission_webhooks)?,
        ])
    }
}
