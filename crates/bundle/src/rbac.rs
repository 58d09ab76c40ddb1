//! The operator's permissions, computed from what it does.
//!
//! A permission is needed for one of three reasons, all expressed as [`Access`]es:
//! - the operator was seen making the request (the whole-flow scenarios in `tests/tests/suite/rbac.rs` run it
//!   against a real kube-apiserver, whose audit log records every request of its client);
//! - it applies and prunes a rendered object ([`render_needs`]): server-side apply may create the object, so
//!   `create` as well as `patch`, and prune or uninstall delete it;
//! - the API server demands it to accept an object the operator writes ([`render_needs`] too): the only
//!   binding the operator writes (kube-system/keda-auth-reader) is accepted because the operator holds every
//!   permission of the Role it binds (it holds no `bind` or `escalate`: it cannot grant what it does not
//!   hold), and an owner reference with `blockOwnerDeletion` needs `update` on the owner's `finalizers`
//!   subresource (OwnerReferencesPermissionEnforcement, on by default on OpenShift).
//!
//! [`Permissions::from_needs`] folds the accesses into RBAC rules the same way every time: requests in the
//! namespaces OLM grants `permissions` in (the install namespace and the watched namespaces) become the
//! CSV's `permissions`, everything else (cluster-scoped objects, kube-system) its `clusterPermissions`; a
//! verb keeps `resourceNames` when every access with it named an object, except on kinds whose objects users
//! name ([`USER_NAMED`]). `create` keeps names too when it comes from server-side apply: the API server
//! authorizes the create implied by an apply with the object's name (only a POST carries no name).
//!
//! The rules are committed in `config/rbac/role.yaml` and `config/rbac/cluster_role.yaml`: the RBAC test
//! proves they equal the fold of everything needed (so nothing is missing and nothing is extra) and
//! rewrites them with `UPDATE_BUNDLE=1`; `cma-bundle generate` copies them into the CSV after checking they
//! still allow every [`render_needs`] access.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cma_api::KedaController;
use cma_operator::platform::Platform;
use cma_operator::render::{self, RenderContext};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::error::BundleError;

/// Kinds whose objects users name (any KedaController gets a status, Events get generated names): their
/// permissions never carry `resourceNames`.
pub const USER_NAMED: [&str; 2] = ["kedacontrollers", "events"];

/// The order verbs are written in.
const VERB_ORDER: [&str; 10] =
    ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "escalate", "bind"];

/// Where a request lands, in OLM's terms.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// The install namespace or a watched namespace (or all of them at once): OLM grants the CSV's
    /// `permissions` there (cluster-wide in AllNamespaces mode).
    Watched,
    /// A namespace OLM does not target, such as kube-system: only `clusterPermissions` reach it.
    Namespace(String),
    /// A cluster-scoped object: `clusterPermissions`.
    Cluster,
}

/// One thing the operator must be allowed to do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// Where.
    pub place: Place,
    /// API group, empty for core.
    pub group: String,
    /// Plural resource, with `/subresource` when there is one.
    pub resource: String,
    /// RBAC verb.
    pub verb: String,
    /// The object's name; `None` when the request names none or the kind is [`USER_NAMED`].
    pub name: Option<String>,
}

impl Access {
    /// An access; the name is dropped for [`USER_NAMED`] kinds.
    pub fn new(place: Place, group: &str, resource: &str, verb: &str, name: Option<&str>) -> Self {
        let base = resource.split('/').next().unwrap_or(resource);
        let name = name.filter(|n| !n.is_empty() && !USER_NAMED.contains(&base)).map(String::from);
        Access { place, group: group.to_string(), resource: resource.to_string(), verb: verb.to_string(), name }
    }

    /// Whether the access is granted through the CSV's namespaced `permissions`.
    pub fn is_namespaced_grant(&self) -> bool {
        self.place == Place::Watched
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let resource =
            if self.group.is_empty() { self.resource.clone() } else { format!("{} ({})", self.resource, self.group) };
        write!(f, "{} {resource}", self.verb)?;
        if let Some(name) = &self.name {
            write!(f, " \"{name}\"")?;
        }
        match &self.place {
            Place::Watched => write!(f, " in the install/watched namespaces"),
            Place::Namespace(ns) => write!(f, " in namespace {ns}"),
            Place::Cluster => write!(f, " (cluster-scoped)"),
        }
    }
}

/// One API request, as the test records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource with `/subresource`.
    pub resource: String,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// RBAC verb.
    pub verb: String,
    /// Namespace in the path; `None` for cluster-scoped objects and all-namespace lists.
    pub namespace: Option<String>,
    /// Object name: from the path, or from a `metadata.name=` field selector on a list or watch (the API
    /// server authorizes those against `resourceNames` too).
    pub name: Option<String>,
}

impl Request {
    /// The access this request needs, given the namespaces OLM targets (`watched`: the install namespace
    /// and every namespace whose KedaControllers are watched).
    pub fn access(&self, watched: &BTreeSet<String>) -> Access {
        let place = match (&self.namespace, self.namespaced) {
            (Some(ns), _) if watched.contains(ns) => Place::Watched,
            (Some(ns), _) => Place::Namespace(ns.clone()),
            (None, true) => Place::Watched,
            (None, false) => Place::Cluster,
        };
        Access::new(place, &self.group, &self.resource, &self.verb, self.name.as_deref())
    }
}

/// Accesses with the reasons they are needed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs(pub BTreeMap<Access, BTreeSet<String>>);

impl Needs {
    /// Records `access`, needed because of `why`.
    pub fn add(&mut self, access: Access, why: impl Into<String>) {
        self.0.entry(access).or_default().insert(why.into());
    }

    /// Adds every access of `other`.
    pub fn extend(&mut self, other: &Needs) {
        for (access, why) in &other.0 {
            self.0.entry(access.clone()).or_default().extend(why.iter().cloned());
        }
    }

    /// The accesses.
    pub fn accesses(&self) -> impl Iterator<Item = &Access> {
        self.0.keys()
    }
}

/// Where OLM puts the CSV's `permissions` in one install mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// AllNamespaces: OLM turns `permissions` into a ClusterRole bound cluster-wide.
    All,
    /// OwnNamespace, SingleNamespace (and installs without OLM): a Role in each of these namespaces.
    Namespaces(BTreeSet<String>),
}

/// The operator's RBAC rules: the CSV's `permissions` and `clusterPermissions`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Permissions {
    /// Rules granted in the install/watched namespaces.
    pub namespaced: Vec<PolicyRule>,
    /// Rules granted cluster-wide.
    pub cluster: Vec<PolicyRule>,
}

type Grants = BTreeMap<(String, String), BTreeMap<String, Option<BTreeSet<String>>>>;

fn verb_rank(verb: &str) -> usize {
    VERB_ORDER.iter().position(|v| *v == verb).unwrap_or(VERB_ORDER.len())
}

fn fold(accesses: &[&Access]) -> Vec<PolicyRule> {
    let mut grants: Grants = BTreeMap::new();
    for a in accesses {
        let verbs = grants.entry((a.group.clone(), a.resource.clone())).or_default();
        match (&a.name, verbs.get_mut(&a.verb)) {
            (None, _) => {
                verbs.insert(a.verb.clone(), None);
            }
            (Some(_), Some(None)) => {}
            (Some(name), Some(Some(names))) => {
                names.insert(name.clone());
            }
            (Some(name), None) => {
                verbs.insert(a.verb.clone(), Some(BTreeSet::from([name.clone()])));
            }
        }
    }
    // (group, names, verbs) -> resources
    let mut merged: BTreeMap<(String, Vec<String>, Vec<String>), BTreeSet<String>> = BTreeMap::new();
    for ((group, resource), verbs) in grants {
        let mut by_names: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (verb, names) in verbs {
            let key = names.map(|n| n.into_iter().collect()).unwrap_or_default();
            by_names.entry(key).or_default().push(verb);
        }
        for (names, mut verbs) in by_names {
            verbs.sort_by_key(|v| (verb_rank(v), v.clone()));
            merged.entry((group.clone(), names, verbs)).or_default().insert(resource.clone());
        }
    }
    let mut rules: Vec<PolicyRule> = merged
        .into_iter()
        .map(|((group, names, verbs), resources)| PolicyRule {
            api_groups: Some(vec![group]),
            resources: Some(resources.into_iter().collect()),
            resource_names: (!names.is_empty()).then_some(names),
            verbs,
            non_resource_urls: None,
        })
        .collect();
    rules.sort_by_key(rule_key);
    rules
}

fn rule_key(r: &PolicyRule) -> (Vec<String>, Vec<String>, Vec<String>, Vec<usize>) {
    (
        r.api_groups.clone().unwrap_or_default(),
        r.resources.clone().unwrap_or_default(),
        r.resource_names.clone().unwrap_or_default(),
        r.verbs.iter().map(|v| verb_rank(v)).collect(),
    )
}

/// Whether one of `rules` allows `verb` on `group`/`resource` (named `name`).
pub fn rules_allow(rules: &[PolicyRule], group: &str, resource: &str, verb: &str, name: Option<&str>) -> bool {
    rules.iter().any(|r| {
        r.api_groups.iter().flatten().any(|g| g == group || g == "*")
            && r.resources.iter().flatten().any(|res| res == resource || res == "*")
            && r.verbs.iter().any(|v| v == verb || v == "*")
            && match r.resource_names.as_deref() {
                None | Some([]) => true,
                Some(names) => name.is_some_and(|n| names.iter().any(|x| x == n)),
            }
    })
}

/// One grant: a verb on a resource, for one name or any.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Atom {
    /// Granted through `permissions` (true) or `clusterPermissions`.
    pub namespaced: bool,
    /// API group.
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Verb.
    pub verb: String,
    /// Name, or `None` for any.
    pub name: Option<String>,
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}{} {}{}",
            if self.namespaced { "permissions:" } else { "clusterPermissions:" },
            self.resource,
            if self.group.is_empty() { String::new() } else { format!(".{}", self.group) },
            self.verb,
            self.name.as_ref().map(|n| format!(" \"{n}\"")).unwrap_or_default()
        )
    }
}

impl Permissions {
    /// The rules that grant exactly `needs`.
    pub fn from_needs(needs: &Needs) -> Self {
        let (namespaced, cluster): (Vec<&Access>, Vec<&Access>) =
            needs.accesses().partition(|a| a.is_namespaced_grant());
        let cluster = fold(&cluster);
        // What the cluster-wide rules grant already needs no namespaced rule.
        let namespaced: Vec<&Access> = namespaced
            .into_iter()
            .filter(|a| !rules_allow(&cluster, &a.group, &a.resource, &a.verb, a.name.as_deref()))
            .collect();
        Permissions { namespaced: fold(&namespaced), cluster }
    }

    /// Whether `access` is granted (the install namespace standing for every namespace OLM targets).
    pub fn allows(&self, access: &Access) -> bool {
        let name = access.name.as_deref();
        rules_allow(&self.cluster, &access.group, &access.resource, &access.verb, name)
            || (access.is_namespaced_grant()
                && rules_allow(&self.namespaced, &access.group, &access.resource, &access.verb, name))
    }

    /// Whether `request` is granted when OLM places `permissions` at `targets`.
    pub fn grants(&self, targets: &Targets, request: &Request) -> bool {
        let name = request.name.as_deref();
        let namespaced_rules_apply = match (targets, &request.namespace) {
            (Targets::All, _) => true,
            (Targets::Namespaces(set), Some(ns)) => set.contains(ns),
            (Targets::Namespaces(_), None) => false,
        };
        rules_allow(&self.cluster, &request.group, &request.resource, &request.verb, name)
            || (namespaced_rules_apply
                && rules_allow(&self.namespaced, &request.group, &request.resource, &request.verb, name))
    }

    /// The accesses of `needs` these rules do not allow, one line each.
    pub fn missing(&self, needs: &Needs) -> Vec<String> {
        needs
            .0
            .iter()
            .filter(|(a, _)| !self.allows(a))
            .map(|(a, why)| format!("  {a} (needed for: {})", why.iter().cloned().collect::<Vec<_>>().join("; ")))
            .collect()
    }

    /// Every single grant of the rules.
    pub fn atoms(&self) -> Vec<Atom> {
        let mut out = Vec::new();
        for (namespaced, rules) in [(true, &self.namespaced), (false, &self.cluster)] {
            for r in rules {
                let names: Vec<Option<String>> = match r.resource_names.as_deref() {
                    None | Some([]) => vec![None],
                    Some(names) => names.iter().cloned().map(Some).collect(),
                };
                for group in r.api_groups.iter().flatten() {
                    for resource in r.resources.iter().flatten() {
                        for verb in &r.verbs {
                            for name in &names {
                                out.push(Atom {
                                    namespaced,
                                    group: group.clone(),
                                    resource: resource.clone(),
                                    verb: verb.clone(),
                                    name: name.clone(),
                                });
                            }
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// The same rules without one atom (to show that every grant is load-bearing).
    pub fn without(&self, atom: &Atom) -> Permissions {
        let keep: Vec<Atom> = self.atoms().into_iter().filter(|a| a != atom).collect();
        let mut needs = Needs::default();
        for a in keep {
            let place = if a.namespaced { Place::Watched } else { Place::Cluster };
            needs.add(Access { place, group: a.group, resource: a.resource, verb: a.verb, name: a.name }, "kept");
        }
        Permissions::from_needs(&needs)
    }

    /// The Role of `config/rbac/role.yaml`.
    pub fn role(&self, namespace: &str) -> Value {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {
                "name": crate::OPERATOR_NAME,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/name": crate::OPERATOR_NAME, "app.kubernetes.io/component": "operator"},
            },
            "rules": self.namespaced,
        })
    }

    /// The ClusterRole of `config/rbac/cluster_role.yaml`.
    pub fn cluster_role(&self) -> Value {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": crate::OPERATOR_NAME,
                "labels": {"app.kubernetes.io/name": crate::OPERATOR_NAME, "app.kubernetes.io/component": "operator"},
            },
            "rules": self.cluster,
        })
    }

    /// Reads the rules of a Role and a ClusterRole document.
    pub fn from_roles(role: &Value, cluster_role: &Value) -> Result<Self, serde_json::Error> {
        Ok(Permissions {
            namespaced: serde_json::from_value(role["rules"].clone())?,
            cluster: serde_json::from_value(cluster_role["rules"].clone())?,
        })
    }

    /// What no ServiceAccount shipped with the operator may hold: ways to grant permissions (`escalate`,
    /// `bind`, `impersonate`), writes to RBAC objects, and wildcard verbs.
    pub fn grant_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for atom in self.atoms() {
            let write = !matches!(atom.verb.as_str(), "get" | "list" | "watch");
            if matches!(atom.verb.as_str(), "escalate" | "bind" | "impersonate" | "*") {
                out.push(format!("may grant or do anything: {atom}"));
            }
            if atom.group == "rbac.authorization.k8s.io" && write {
                out.push(format!("writes RBAC: {atom}"));
            }
        }
        out
    }

    /// The operator's own policy, regardless of need: `*` anywhere, cluster-wide Secret writes, Secret writes
    /// without names, any escalate/bind/impersonate, RBAC writes beyond the named kube-system RoleBinding,
    /// writes to CustomResourceDefinitions.
    pub fn policy_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for atom in self.atoms() {
            let write = !matches!(atom.verb.as_str(), "get" | "list" | "watch");
            if atom.group == "*" || atom.resource.contains('*') || atom.verb == "*" {
                out.push(format!("wildcard grant: {atom}"));
            }
            if atom.resource == "secrets" && atom.group.is_empty() && write {
                if !atom.namespaced {
                    out.push(format!("cluster-wide Secret write: {atom}"));
                } else if atom.name.is_none() {
                    out.push(format!("Secret write not restricted to named Secrets: {atom}"));
                }
            }
            if matches!(atom.verb.as_str(), "escalate" | "bind" | "impersonate") {
                out.push(format!("the operator may not grant what it does not hold: {atom}"));
            }
            // Deleting a role or binding grants nothing (the Go operators' leftovers are removed at a takeover);
            // writing one is limited to the named kube-system RoleBinding.
            let rbac_object = atom.group == "rbac.authorization.k8s.io";
            let grants = write && atom.verb != "delete";
            if rbac_object && ((grants && atom.resource != "rolebindings") || (write && atom.name.is_none())) {
                out.push(format!("RBAC writes beyond the named kube-system RoleBinding: {atom}"));
            }
            if atom.resource == "customresourcedefinitions" && write {
                out.push(format!("writes CustomResourceDefinitions: {atom}"));
            }
        }
        for rule in self.namespaced.iter().chain(&self.cluster) {
            if rule.non_resource_urls.as_ref().is_some_and(|u| !u.is_empty()) {
                out.push(format!(
                    "nonResourceURLs are granted to every authenticated user already: {:?}",
                    rule.non_resource_urls
                ));
            }
        }
        out
    }
}

/// KedaController specs that together make render produce every object it can (every kind, every name):
/// defaults, and every optional object switched on.
pub fn maximal_specs() -> Vec<Value> {
    vec![
        json!({}),
        json!({
            "operator": {"replicas": 2},
            "metricsServer": {"replicas": 2, "auditConfig": {"policy": {"rules": [{"level": "Metadata"}]}}},
            "admissionWebhooks": {"replicas": 2},
            "networkPolicy": {"enabled": true},
        }),
    ]
}

/// The platforms render distinguishes.
pub fn platforms() -> Vec<Platform> {
    let mut out = Vec::new();
    for mut platform in [Platform::kubernetes(), Platform::openshift()] {
        out.push(platform.clone());
        platform.monitoring = true;
        out.push(platform);
    }
    out
}

/// Every object render produces for the maximal specs on every platform, as JSON, for a KedaController
/// `keda` in `namespace` (with a UID, so owner references are rendered as in a cluster).
pub fn rendered_objects(namespace: &str) -> Result<Vec<Value>, BundleError> {
    let mut out = Vec::new();
    for spec in maximal_specs() {
        let kc: KedaController = serde_json::from_value(json!({
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "KedaController",
            "metadata": {"name": cma_api::rules::KEDACONTROLLER_NAME, "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
            "spec": spec,
        }))
        .map_err(|e| BundleError::Operator(format!("maximal spec: {e}")))?;
        for platform in platforms() {
            // The running operator always knows its metrics CA (it publishes it in a ConfigMap off OpenShift);
            // offline render does not, so give it one.
            let ctx = RenderContext { metrics_ca: Some(String::new()), ..RenderContext::offline(platform) };
            let valid = cma_api::validate(&kc).map_err(|e| BundleError::Operator(format!("maximal spec: {e}")))?;
            let desired = render::render(valid, &ctx).map_err(|e| BundleError::Operator(e.to_string()))?;
            out.extend(desired.to_values().map_err(|e| BundleError::Operator(e.to_string()))?);
        }
    }
    Ok(out)
}

/// Group and plural of an object's kind.
pub fn resource_of(object: &Value) -> Option<(String, String)> {
    let api_version = object["apiVersion"].as_str()?;
    let kind = object["kind"].as_str()?;
    resource_of_kind(api_version, kind)
}

fn resource_of_kind(api_version: &str, kind: &str) -> Option<(String, String)> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Some((ar.group, ar.plural))
}

fn place_of(namespace: Option<&str>, install_namespace: &str) -> Place {
    match namespace {
        Some(ns) if ns == install_namespace => Place::Watched,
        Some(ns) => Place::Namespace(ns.to_string()),
        None => Place::Cluster,
    }
}

/// What applying, pruning and owning the rendered objects needs, and what the API server demands to accept
/// them (escalate, bind, owner references), for an installation in `install_namespace`.
pub fn render_needs(install_namespace: &str) -> Result<Needs, BundleError> {
    let mut needs = Needs::default();
    for object in rendered_objects(install_namespace)? {
        let Some((group, plural)) = resource_of(&object) else {
            return Err(BundleError::Operator(format!("a rendered object has no apiVersion/kind: {object}")));
        };
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"].as_str().unwrap_or_default();
        let namespace = object["metadata"]["namespace"].as_str();
        let place = place_of(namespace, install_namespace);
        for (verb, why) in [
            ("create", "server-side apply of a missing object creates it"),
            ("patch", "server-side apply"),
            ("delete", "prune and uninstall delete it"),
        ] {
            needs.add(Access::new(place.clone(), &group, &plural, verb, Some(name)), format!("{why} ({kind} {name})"));
        }
        match kind.as_str() {
            "ClusterRole" | "Role" | "ClusterRoleBinding" => {
                return Err(BundleError::Operator(format!(
                    "render produces {kind} {name}: the operator grants no permissions (KEDA's RBAC is static, manifests/keda-2.20/rbac.yaml)"
                )));
            }
            "RoleBinding" => {
                // Without bind, the API server accepts a binding only from who holds every permission of the
                // role it binds, where it binds it.
                let ref_name = object["roleRef"]["name"].as_str().unwrap_or_default();
                let rules = system_role_rules(ref_name).ok_or_else(|| {
                    BundleError::Operator(format!(
                        "RoleBinding {name} binds {ref_name}, whose rules are not known to cma-bundle (see system_role_rules)"
                    ))
                })?;
                for (rule_group, rule_resource, verbs, rule_name) in rules {
                    for verb in verbs {
                        needs.add(
                            Access::new(place.clone(), rule_group, rule_resource, verb, Some(rule_name)),
                            format!("writing RoleBinding {name} without bind needs what Role {ref_name} grants"),
                        );
                    }
                }
            }
            _ => {}
        }
        for owner in object["metadata"]["ownerReferences"].as_array().into_iter().flatten() {
            if owner["blockOwnerDeletion"] != json!(true) {
                continue;
            }
            let (Some(api_version), Some(owner_kind), Some(owner_name)) =
                (owner["apiVersion"].as_str(), owner["kind"].as_str(), owner["name"].as_str())
            else {
                continue;
            };
            if let Some((owner_group, owner_plural)) = resource_of_kind(api_version, owner_kind) {
                needs.add(
                    Access::new(
                        place.clone(),
                        &owner_group,
                        &format!("{owner_plural}/finalizers"),
                        "update",
                        Some(owner_name),
                    ),
                    format!(
                        "an owner reference with blockOwnerDeletion on {kind} {name} needs update on the owner's finalizers"
                    ),
                );
            }
        }
    }
    Ok(needs)
}

/// One rule of a system Role: group, resource, verbs, resource name.
type SystemRule = (&'static str, &'static str, [&'static str; 3], &'static str);

/// The rules of the system Roles rendered bindings refer to (the bootstrap policy of Kubernetes).
fn system_role_rules(role: &str) -> Option<Vec<SystemRule>> {
    match role {
        "extension-apiserver-authentication-reader" => {
            Some(vec![("", "configmaps", ["get", "list", "watch"], "extension-apiserver-authentication")])
        }
        _ => None,
    }
}

/// The (apiVersion, kind) pairs render produces, for the KedaController's `resources` in the CSV.
pub fn rendered_kinds(install_namespace: &str) -> Result<BTreeSet<(String, String)>, BundleError> {
    Ok(rendered_objects(install_namespace)?
        .iter()
        .filter_map(|o| Some((o["apiVersion"].as_str()?.to_string(), o["kind"].as_str()?.to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(place: Place, resource: &str, verb: &str, name: Option<&str>) -> Access {
        Access::new(place, "", resource, verb, name)
    }

    #[test]
    fn names_are_kept_only_when_every_access_names_an_object() {
        let mut needs = Needs::default();
        needs.add(access(Place::Watched, "secrets", "patch", Some("a")), "t");
        needs.add(access(Place::Watched, "secrets", "patch", Some("b")), "t");
        needs.add(access(Place::Watched, "secrets", "list", None), "t");
        needs.add(access(Place::Watched, "configmaps", "patch", Some("c")), "t");
        needs.add(access(Place::Watched, "configmaps", "patch", None), "t");
        let p = Permissions::from_needs(&needs);
        assert!(p.allows(&access(Place::Watched, "secrets", "patch", Some("a"))));
        assert!(!p.allows(&access(Place::Watched, "secrets", "patch", Some("z"))));
        assert!(p.allows(&access(Place::Watched, "configmaps", "patch", Some("z"))));
        assert!(p.allows(&access(Place::Watched, "secrets", "list", None)));
        assert!(p.cluster.is_empty());
    }

    #[test]
    fn user_named_kinds_never_carry_names() {
        let a = Access::new(Place::Watched, "keda.sh", "kedacontrollers/status", "patch", Some("keda"));
        assert_eq!(a.name, None);
    }

    #[test]
    fn other_namespaces_and_cluster_scope_go_to_cluster_permissions() {
        let mut needs = Needs::default();
        needs.add(
            Access::new(
                Place::Namespace("kube-system".into()),
                "rbac.authorization.k8s.io",
                "rolebindings",
                "patch",
                Some("x"),
            ),
            "t",
        );
        let p = Permissions::from_needs(&needs);
        assert!(p.namespaced.is_empty());
        assert_eq!(p.cluster.len(), 1);
        assert_eq!(p.cluster[0].resource_names, Some(vec!["x".to_string()]));
    }

    #[test]
    fn removing_any_atom_loses_exactly_that_grant() {
        let mut needs = Needs::default();
        needs.add(access(Place::Watched, "secrets", "patch", Some("a")), "t");
        needs.add(access(Place::Cluster, "nodes", "get", None), "t");
        let p = Permissions::from_needs(&needs);
        for atom in p.atoms() {
            let smaller = p.without(&atom);
            assert_eq!(smaller.atoms().len(), p.atoms().len() - 1);
        }
    }

    #[test]
    fn policy_flags_wildcards_and_cluster_secret_writes() {
        let p = Permissions {
            namespaced: vec![],
            cluster: vec![PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["secrets".into()]),
                verbs: vec!["*".into()],
                ..PolicyRule::default()
            }],
        };
        let v = p.policy_violations();
        assert!(v.iter().any(|l| l.contains("wildcard")), "{v:?}");
        assert!(v.iter().any(|l| l.contains("cluster-wide Secret")), "{v:?}");
    }

    #[test]
    fn render_needs_hold_what_the_one_binding_grants_and_never_escalate_or_bind() {
        let needs = render_needs("openshift-keda").unwrap();
        let has = |verb: &str, resource: &str, name: &str| {
            needs.accesses().any(|a| a.verb == verb && a.resource == resource && a.name.as_deref() == Some(name))
        };
        for verb in ["get", "list", "watch"] {
            assert!(has(verb, "configmaps", "extension-apiserver-authentication"), "{verb}");
        }
        assert!(!needs.accesses().any(|a| matches!(a.verb.as_str(), "escalate" | "bind")));
        assert!(!needs.accesses().any(|a| a.resource == "clusterroles" || a.resource == "clusterrolebindings"));
        assert!(has("create", "apiservices", "v1beta1.external.metrics.k8s.io"));
        assert!(needs.accesses().any(|a| a.resource == "kedacontrollers/finalizers" && a.verb == "update"));
    }
}
