//! `rbac.authorization.k8s.io/v1` kinds: Role, ClusterRole, RoleBinding,
//! ClusterRoleBinding.
//!
//! ```
//! use ketch_core::api::{PolicyRule, Role};
//! let role: Role = serde_json::from_str(r#"{
//!     "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
//!     "metadata": {"name": "pod-reader", "namespace": "default"},
//!     "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
//! }"#).unwrap();
//! assert_eq!(role.rules[0].verbs, ["get", "list", "watch"]);
//! ```

use serde::{Deserialize, Serialize};

use super::resource;

/// One rule: verbs allowed on resources of API groups (optionally only on
/// named objects).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRule {
    /// Verbs, e.g. `get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`; `*` for all.
    pub verbs: Vec<String>,
    /// API groups (`""` for the core group); `*` for all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources, e.g. `pods` or `pods/status`; `*` for all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Object names the rule is limited to; empty for all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    /// Non-resource URLs such as `/healthz`.
    #[serde(rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
}

/// Who a binding grants to: a `User`, `Group` or `ServiceAccount`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: String,
    /// API group of the subject kind (`rbac.authorization.k8s.io` for users
    /// and groups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
    /// Name of the user, group or service account.
    pub name: String,
    /// Namespace of a service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The role a binding refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleRef {
    /// `rbac.authorization.k8s.io`.
    pub api_group: String,
    /// `Role` or `ClusterRole`.
    pub kind: String,
    /// Name of the role.
    pub name: String,
}

resource! {
    /// Rules granting access within one namespace.
    pub struct Role {
        kind: "Role", api_version: "rbac.authorization.k8s.io/v1", plural: "roles", namespaced: true;
        /// The rules.
        pub rules: Vec<PolicyRule> = "rules",
    }
}

resource! {
    /// Rules granting access cluster-wide (through a ClusterRoleBinding) or
    /// within a namespace (through a RoleBinding).
    pub struct ClusterRole {
        kind: "ClusterRole", api_version: "rbac.authorization.k8s.io/v1", plural: "clusterroles", namespaced: false;
        /// The rules.
        pub rules: Vec<PolicyRule> = "rules",
    }
}

resource! {
    /// Grants a Role or ClusterRole to subjects within one namespace.
    pub struct RoleBinding {
        kind: "RoleBinding", api_version: "rbac.authorization.k8s.io/v1", plural: "rolebindings", namespaced: true;
        /// Who is granted.
        pub subjects: Vec<Subject> = "subjects",
        /// The role granted.
        pub role_ref: RoleRef = "roleRef",
    }
}

resource! {
    /// Grants a ClusterRole to subjects cluster-wide.
    pub struct ClusterRoleBinding {
        kind: "ClusterRoleBinding", api_version: "rbac.authorization.k8s.io/v1", plural: "clusterrolebindings", namespaced: false;
        /// Who is granted.
        pub subjects: Vec<Subject> = "subjects",
        /// The role granted.
        pub role_ref: RoleRef = "roleRef",
    }
}
