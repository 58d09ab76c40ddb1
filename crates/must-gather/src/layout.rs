//! Paths of the output tree, in the layout of `oc adm inspect` that support engineers (and tools such as
//! `omc`) know:
//!
//! ```text
//! namespaces/<ns>/<ns>.yaml
//! namespaces/<ns>/<group or core>/<resource>.yaml                 lists of a namespace's resources
//! namespaces/<ns>/<group or core>/<resource>/<name>.yaml          single objects
//! namespaces/<ns>/pods/<pod>/<pod>.yaml
//! namespaces/<ns>/pods/<pod>/<container>/<container>/logs/{current,previous}.log
//! cluster-scoped-resources/<group or core>/<resource>/<name>.yaml
//! ```

/// Directory name of an API group (`core` for the core group).
pub fn group_dir(group: &str) -> &str {
    if group.is_empty() { "core" } else { group }
}

/// One path segment from an object name: names are validated by the API server, but the tree must never
/// escape its root whatever the server says.
pub fn segment(name: &str) -> String {
    let cleaned: String = name.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

/// `namespaces/<ns>/<ns>.yaml`.
pub fn namespace_object(ns: &str) -> String {
    let ns = segment(ns);
    format!("namespaces/{ns}/{ns}.yaml")
}

/// `namespaces/<ns>/<group>/<resource>.yaml`.
pub fn namespace_list(ns: &str, group: &str, resource: &str) -> String {
    format!("namespaces/{}/{}/{}.yaml", segment(ns), group_dir(group), segment(resource))
}

/// `namespaces/<ns>/<group>/<resource>/<name>.yaml`.
pub fn namespaced_object(ns: &str, group: &str, resource: &str, name: &str) -> String {
    format!("namespaces/{}/{}/{}/{}.yaml", segment(ns), group_dir(group), segment(resource), segment(name))
}

/// `cluster-scoped-resources/<group>/<resource>/<name>.yaml`.
pub fn cluster_object(group: &str, resource: &str, name: &str) -> String {
    format!("cluster-scoped-resources/{}/{}/{}.yaml", group_dir(group), segment(resource), segment(name))
}

/// `namespaces/<ns>/pods/<pod>/<pod>.yaml`.
pub fn pod_object(ns: &str, pod: &str) -> String {
    let pod = segment(pod);
    format!("namespaces/{}/pods/{pod}/{pod}.yaml", segment(ns))
}

/// `namespaces/<ns>/pods/<pod>/<container>/<container>/logs/{current,previous}.log`.
pub fn pod_log(ns: &str, pod: &str, container: &str, previous: bool) -> String {
    let c = segment(container);
    let file = if previous { "previous" } else { "current" };
    format!("namespaces/{}/pods/{}/{c}/{c}/logs/{file}.log", segment(ns), segment(pod))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_oc_adm_inspect() {
        assert_eq!(namespace_list("openshift-keda", "", "pods"), "namespaces/openshift-keda/core/pods.yaml");
        assert_eq!(
            namespaced_object("app", "keda.sh", "scaledobjects", "so"),
            "namespaces/app/keda.sh/scaledobjects/so.yaml"
        );
        assert_eq!(
            cluster_object("apiextensions.k8s.io", "customresourcedefinitions", "scaledobjects.keda.sh"),
            "cluster-scoped-resources/apiextensions.k8s.io/customresourcedefinitions/scaledobjects.keda.sh.yaml"
        );
        assert_eq!(pod_log("k", "p", "c", true), "namespaces/k/pods/p/c/c/logs/previous.log");
        assert_eq!(pod_object("k", "p"), "namespaces/k/pods/p/p.yaml");
        assert_eq!(namespace_object("k"), "namespaces/k/k.yaml");
    }

    #[test]
    fn names_never_escape_the_tree() {
        assert_eq!(segment(".."), "_..");
        assert_eq!(segment("a/../b"), "a_.._b");
        assert_eq!(segment(""), "_");
    }
}
