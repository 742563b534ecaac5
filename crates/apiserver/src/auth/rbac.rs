//! Role-based access control over Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding objects: verbs x resources x namespaces, deny by
//! default.

use std::collections::HashMap;
use std::sync::Arc;

use ketch_core::api::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use ketch_core::object::downcast_arc;
use parking_lot::Mutex;

use super::{Attributes, Authorizer, Decision, UserInfo};
use crate::watch_cache::WatchCache;

/// The RBAC objects an [`RbacAuthorizer`] decides from.
#[derive(Clone, Debug, Default)]
pub struct RbacPolicy {
    /// Namespaced roles.
    pub roles: Vec<Arc<Role>>,
    /// Cluster roles.
    pub cluster_roles: Vec<Arc<ClusterRole>>,
    /// Namespaced bindings.
    pub role_bindings: Vec<Arc<RoleBinding>>,
    /// Cluster-wide bindings.
    pub cluster_role_bindings: Vec<Arc<ClusterRoleBinding>>,
}

/// Rule sets granted to subjects.
type Grants = Vec<(Subject, Arc<Vec<PolicyRule>>)>;

/// Rules granted, compiled from a policy.
#[derive(Default)]
struct Compiled {
    /// Rules that hold in every namespace, by binding subject.
    cluster: Grants,
    /// Rules that hold in one namespace, by namespace.
    namespaced: HashMap<String, Grants>,
}

fn compile(policy: &RbacPolicy) -> Compiled {
    let cluster_roles: HashMap<&str, Arc<Vec<PolicyRule>>> = policy
        .cluster_roles
        .iter()
        .map(|r| (r.metadata.name(), Arc::new(r.rules.clone())))
        .collect();
    let roles: HashMap<(&str, &str), Arc<Vec<PolicyRule>>> = policy
        .roles
        .iter()
        .map(|r| {
            (
                (r.metadata.namespace(), r.metadata.name()),
                Arc::new(r.rules.clone()),
            )
        })
        .collect();
    let mut out = Compiled::default();
    for b in &policy.cluster_role_bindings {
        if b.role_ref.kind != "ClusterRole" {
            continue;
        }
        if let Some(rules) = cluster_roles.get(b.role_ref.name.as_str()) {
            for s in &b.subjects {
                out.cluster.push((s.clone(), rules.clone()));
            }
        }
    }
    for b in &policy.role_bindings {
        let ns = b.metadata.namespace();
        let rules = match b.role_ref.kind.as_str() {
            "ClusterRole" => cluster_roles.get(b.role_ref.name.as_str()),
            "Role" => roles.get(&(ns, b.role_ref.name.as_str())),
            _ => None,
        };
        if let Some(rules) = rules {
            for s in &b.subjects {
                out.namespaced
                    .entry(ns.to_string())
                    .or_default()
                    .push((s.clone(), rules.clone()));
            }
        }
    }
    out
}

fn subject_matches(s: &Subject, user: &UserInfo, binding_ns: Option<&str>) -> bool {
    match s.kind.as_str() {
        "User" => s.name == user.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = s.namespace.as_deref().or(binding_ns).unwrap_or("");
            user.name == format!("system:serviceaccount:{ns}:{}", s.name)
        }
        _ => false,
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

fn rule_allows(rule: &PolicyRule, a: &Attributes<'_>) -> bool {
    if !has(&rule.verbs, a.verb) || !has(&rule.api_groups, a.api_group) {
        return false;
    }
    let resource_ok = if a.subresource.is_empty() {
        has(&rule.resources, a.resource)
    } else {
        rule.resources.iter().any(|r| {
            r == "*"
                || r.split_once('/').is_some_and(|(res, sub)| {
                    (res == a.resource || res == "*") && (sub == a.subresource || sub == "*")
                })
        })
    };
    if !resource_ok {
        return false;
    }
    // As in Kubernetes, a rule limited to names never covers create.
    rule.resource_names.is_empty()
        || (a.verb != "create"
            && a.name
                .is_some_and(|n| rule.resource_names.iter().any(|r| r == n)))
}

enum Source {
    Static(Arc<Compiled>),
    Caches {
        caches: [Arc<WatchCache>; 4],
        compiled: Mutex<(Vec<i64>, Arc<Compiled>)>,
    },
}

/// The RBAC authorizer: allows a request when a rule granted to the user
/// (through a ClusterRoleBinding anywhere, or a RoleBinding in the request's
/// namespace) covers its verb, API group, resource (`pods`, `pods/status`)
/// and name; has no opinion otherwise (so the chain denies by default).
///
/// The API server's own one reads the RBAC objects it serves; this
/// constructor decides from a fixed policy.
///
/// ```
/// use std::sync::Arc;
/// use ketch_apiserver::auth::{Attributes, Authorizer, Decision, RbacAuthorizer, UserInfo};
/// use ketch_apiserver::auth::rbac::RbacPolicy;
/// use ketch_core::api::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
/// use ketch_core::ObjectMeta;
/// let policy = RbacPolicy {
///     cluster_roles: vec![Arc::new(ClusterRole {
///         metadata: ObjectMeta::cluster_named("reader"),
///         rules: vec![PolicyRule { verbs: vec!["get".into()], api_groups: vec!["".into()],
///                                  resources: vec!["pods".into()], ..Default::default() }],
///     })],
///     cluster_role_bindings: vec![Arc::new(ClusterRoleBinding {
///         metadata: ObjectMeta::cluster_named("alice-reads"),
///         subjects: vec![Subject { kind: "User".into(), name: "alice".into(), ..Default::default() }],
///         role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name: "reader".into() },
///     })],
///     ..Default::default()
/// };
/// let rbac = RbacAuthorizer::from_policy(&policy);
/// let alice = UserInfo::new("alice", &[]);
/// let get = Attributes { user: &alice, verb: "get", api_group: "", resource: "pods",
///                        subresource: "", namespace: Some("default"), name: Some("web") };
/// assert_eq!(rbac.authorize(&get), Decision::Allow);
/// assert_eq!(rbac.authorize(&Attributes { verb: "delete", ..get }), Decision::NoOpinion);
/// ```
pub struct RbacAuthorizer {
    source: Source,
}

impl std::fmt::Debug for RbacAuthorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RbacAuthorizer").finish_non_exhaustive()
    }
}

impl RbacAuthorizer {
    /// An authorizer deciding from a fixed policy.
    pub fn from_policy(policy: &RbacPolicy) -> Self {
        Self {
            source: Source::Static(Arc::new(compile(policy))),
        }
    }

    /// An authorizer over the server's RBAC caches (roles, clusterroles,
    /// rolebindings, clusterrolebindings), recompiled when they change.
    pub(crate) fn from_caches(caches: [Arc<WatchCache>; 4]) -> Self {
        Self {
            source: Source::Caches {
                caches,
                compiled: Mutex::new((Vec::new(), Arc::new(Compiled::default()))),
            },
        }
    }

    fn compiled(&self) -> Arc<Compiled> {
        match &self.source {
            Source::Static(c) => c.clone(),
            Source::Caches { caches, compiled } => {
                let revs: Vec<i64> = caches.iter().map(|c| c.revision()).collect();
                let mut guard = compiled.lock();
                if guard.0 != revs {
                    let policy = policy_from_caches(caches);
                    *guard = (revs, Arc::new(compile(&policy)));
                }
                guard.1.clone()
            }
        }
    }
}

fn policy_from_caches(caches: &[Arc<WatchCache>; 4]) -> RbacPolicy {
    let all = |c: &WatchCache| c.list_all();
    RbacPolicy {
        roles: all(&caches[0])
            .into_iter()
            .filter_map(|o| downcast_arc::<Role>(o).ok())
            .collect(),
        cluster_roles: all(&caches[1])
            .into_iter()
            .filter_map(|o| downcast_arc::<ClusterRole>(o).ok())
            .collect(),
        role_bindings: all(&caches[2])
            .into_iter()
            .filter_map(|o| downcast_arc::<RoleBinding>(o).ok())
            .collect(),
        cluster_role_bindings: all(&caches[3])
            .into_iter()
            .filter_map(|o| downcast_arc::<ClusterRoleBinding>(o).ok())
            .collect(),
    }
}

impl Authorizer for RbacAuthorizer {
    fn authorize(&self, a: &Attributes<'_>) -> Decision {
        let compiled = self.compiled();
        let grants = |list: &Grants, ns: Option<&str>| {
            list.iter().any(|(s, rules)| {
                subject_matches(s, a.user, ns) && rules.iter().any(|r| rule_allows(r, a))
            })
        };
        if grants(&compiled.cluster, None) {
            return Decision::Allow;
        }
        if let Some(ns) = a.namespace
            && let Some(list) = compiled.namespaced.get(ns)
            && grants(list, Some(ns))
        {
            return Decision::Allow;
        }
        Decision::NoOpinion
    }
}
