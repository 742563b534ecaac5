//! Object metadata shared by every kind: [`ObjectMeta`], [`TypeMeta`],
//! [`OwnerReference`] and the [`Resource`] trait.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Time;

/// The `apiVersion` and `kind` of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeMeta {
    /// For example `v1` or `apps/v1`.
    pub api_version: String,
    /// For example `Pod`.
    pub kind: String,
}

/// Metadata every persisted object carries.
///
/// ```
/// use ketch_core::ObjectMeta;
/// let meta = ObjectMeta::named("default", "web").with_label("app", "web");
/// assert_eq!(meta.labels["app"], "web");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Unique name within the namespace (or cluster, for cluster-scoped kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Prefix for a server-generated name when `name` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_name: Option<String>,
    /// Namespace of a namespaced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Server-assigned unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Opaque version for optimistic concurrency (the store's mod revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Bumped by the server on every change of the desired state (spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When the server created the object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Time>,
    /// Set when deletion was requested and the object waits for finalizers
    /// or graceful termination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<Time>,
    /// Grace period recorded with a graceful deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    /// Identifying key/value pairs, matched by selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Non-identifying key/value pairs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Objects this one depends on; used by garbage collection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
    /// Names of pending pre-deletion hooks; the object is removed when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
}

impl ObjectMeta {
    /// Metadata with a namespace and a name.
    pub fn named(namespace: &str, name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..Self::default()
        }
    }

    /// Metadata of a cluster-scoped object with a name.
    pub fn cluster_named(name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            ..Self::default()
        }
    }

    /// Adds a label (builder style).
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// The name, or `""` when unset.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    /// The namespace, or `""` when unset.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// The resource version parsed as a store revision, if set and numeric.
    pub fn revision(&self) -> Option<i64> {
        self.resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
    }
}

/// A reference from a dependent object to its owner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerReference {
    /// API version of the owner.
    pub api_version: String,
    /// Kind of the owner.
    pub kind: String,
    /// Name of the owner.
    pub name: String,
    /// UID of the owner.
    pub uid: String,
    /// True if the owner is the managing controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    /// If true, the owner cannot be deleted before this dependent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

/// Static facts about a kind: what it is called and where it lives.
///
/// ```
/// use ketch_core::{Resource, api::Pod};
/// assert_eq!(Pod::KIND, "Pod");
/// assert_eq!(Pod::PLURAL, "pods");
/// assert!(Pod::NAMESPACED);
/// ```
pub trait Resource {
    /// The kind, e.g. `Deployment`.
    const KIND: &'static str;
    /// The API version, e.g. `apps/v1`.
    const API_VERSION: &'static str;
    /// The plural resource name used in paths and RBAC rules, e.g. `deployments`.
    const PLURAL: &'static str;
    /// Whether objects live in a namespace.
    const NAMESPACED: bool;

    /// The object's metadata.
    fn meta(&self) -> &ObjectMeta;
    /// The object's metadata, mutable.
    fn meta_mut(&mut self) -> &mut ObjectMeta;

    /// The API group: the part of the API version before `/`, `""` for core.
    fn group() -> &'static str {
        match Self::API_VERSION.split_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// `TypeMeta` of this kind.
    fn type_meta() -> TypeMeta {
        TypeMeta {
            api_version: Self::API_VERSION.to_string(),
            kind: Self::KIND.to_string(),
        }
    }
}
