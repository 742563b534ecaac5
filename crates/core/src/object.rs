//! Objects of any kind behind one object-safe trait, [`Object`], the
//! [`DynamicObject`] for kinds users define without a Rust type, and the
//! [`Scheme`] that maps `apiVersion`/`kind` and plural names to decoders.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::api;
use crate::{ObjectMeta, Resource, TypeMeta};

/// An object of any kind: what the API server stores and components pass
/// around without knowing the concrete type.
///
/// Every built-in kind implements it (through a blanket impl over
/// [`Resource`]), and so does [`DynamicObject`].
///
/// ```
/// use std::sync::Arc;
/// use ketch_core::{Object, ObjectMeta, api::Pod, object::downcast_arc};
/// let obj: Arc<dyn Object> = Arc::new(Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() });
/// assert_eq!(obj.kind(), "Pod");
/// let pod: Arc<Pod> = downcast_arc(obj).unwrap();
/// assert_eq!(pod.metadata.name(), "web");
/// ```
pub trait Object: Any + Send + Sync + fmt::Debug {
    /// The API version, e.g. `apps/v1`.
    fn api_version(&self) -> &str;
    /// The kind, e.g. `Deployment`.
    fn kind(&self) -> &str;
    /// The object's metadata.
    fn metadata(&self) -> &ObjectMeta;
    /// The object's metadata, mutable.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// Serializes the whole object (with `apiVersion` and `kind`) to JSON.
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error>;
    /// Appends [`to_json`](Self::to_json)'s encoding to `out`, so a caller
    /// can reuse one buffer.
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.extend_from_slice(&self.to_json()?);
        Ok(())
    }
    /// Serializes the whole object to a JSON value.
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error>;
    /// A boxed deep copy.
    fn clone_boxed(&self) -> Box<dyn Object>;
    /// Compares with another object of any kind.
    fn eq_object(&self, other: &dyn Object) -> bool;

    /// `TypeMeta` of this object.
    fn type_meta(&self) -> TypeMeta {
        TypeMeta {
            api_version: self.api_version().to_string(),
            kind: self.kind().to_string(),
        }
    }
}

impl<K> Object for K
where
    K: Resource
        + Serialize
        + DeserializeOwned
        + Clone
        + PartialEq
        + fmt::Debug
        + Send
        + Sync
        + 'static,
{
    fn api_version(&self) -> &str {
        K::API_VERSION
    }
    fn kind(&self) -> &str {
        K::KIND
    }
    fn metadata(&self) -> &ObjectMeta {
        Resource::meta(self)
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        Resource::meta_mut(self)
    }
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        crate::json::write(&mut out, self)?;
        Ok(out)
    }
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        crate::json::write(out, self)
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
    fn clone_boxed(&self) -> Box<dyn Object> {
        Box::new(self.clone())
    }
    fn eq_object(&self, other: &dyn Object) -> bool {
        (other as &dyn Any).downcast_ref::<K>() == Some(self)
    }
}

impl Clone for Box<dyn Object> {
    fn clone(&self) -> Self {
        self.clone_boxed()
    }
}

impl dyn Object {
    /// The concrete object, if it is a `K`.
    pub fn downcast_ref<K: Object>(&self) -> Option<&K> {
        (self as &dyn Any).downcast_ref::<K>()
    }

    /// The concrete object, mutable, if it is a `K`.
    pub fn downcast_mut<K: Object>(&mut self) -> Option<&mut K> {
        (self as &mut dyn Any).downcast_mut::<K>()
    }

    /// True if the object is a `K`.
    pub fn is<K: Object>(&self) -> bool {
        (self as &dyn Any).is::<K>()
    }
}

/// Turns a shared object into a shared `K`, giving the object back if it is
/// another type.
pub fn downcast_arc<K: Object>(obj: Arc<dyn Object>) -> Result<Arc<K>, Arc<dyn Object>> {
    if obj.is::<K>() {
        let any: Arc<dyn Any + Send + Sync> = obj;
        Ok(any
            .downcast::<K>()
            .unwrap_or_else(|_| unreachable!("type checked above")))
    } else {
        Err(obj)
    }
}

/// Turns a boxed object into a boxed `K`, giving the object back if it is
/// another type.
pub fn downcast_box<K: Object>(obj: Box<dyn Object>) -> Result<Box<K>, Box<dyn Object>> {
    if obj.is::<K>() {
        let any: Box<dyn Any> = obj;
        Ok(any
            .downcast::<K>()
            .unwrap_or_else(|_| unreachable!("type checked above")))
    } else {
        Err(obj)
    }
}

/// An object of a kind without a Rust type: metadata plus free-form fields.
///
/// ```
/// use ketch_core::{DynamicObject, Object};
/// let obj: DynamicObject = serde_json::from_str(
///     r#"{"apiVersion":"example.com/v1","kind":"Job","metadata":{"name":"a"},"spec":{"x":1}}"#,
/// ).unwrap();
/// assert_eq!(obj.kind(), "Job");
/// assert_eq!(obj.data["spec"]["x"], 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicObject {
    /// API version, e.g. `example.com/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Kind, e.g. `Job`.
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Every other top-level field (`spec`, `status`, ...).
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl Object for DynamicObject {
    fn api_version(&self) -> &str {
        &self.api_version
    }
    fn kind(&self) -> &str {
        &self.kind
    }
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = Vec::with_capacity(512);
        crate::json::write(&mut out, self)?;
        Ok(out)
    }
    fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        crate::json::write(out, self)
    }
    fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
    fn clone_boxed(&self) -> Box<dyn Object> {
        Box::new(self.clone())
    }
    fn eq_object(&self, other: &dyn Object) -> bool {
        (other as &dyn Any).downcast_ref::<DynamicObject>() == Some(self)
    }
}

/// Names and scope of a kind, as the API serves it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApiResource {
    /// API version, e.g. `apps/v1`.
    pub api_version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl ApiResource {
    /// The `ApiResource` of a typed kind.
    ///
    /// ```
    /// use ketch_core::{ApiResource, api::Deployment};
    /// assert_eq!(ApiResource::of::<Deployment>().plural, "deployments");
    /// ```
    pub fn of<K: Resource>() -> Self {
        Self {
            api_version: K::API_VERSION.to_string(),
            kind: K::KIND.to_string(),
            plural: K::PLURAL.to_string(),
            namespaced: K::NAMESPACED,
        }
    }

    /// The API group (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }
}

/// Why an object could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `apiVersion` or `kind` is missing.
    #[error("{field}: required field is missing")]
    MissingTypeMeta {
        /// `apiVersion` or `kind`.
        field: &'static str,
    },
    /// No kind with this `apiVersion`/`kind` is registered.
    #[error("unknown kind {kind:?} in apiVersion {api_version:?}")]
    UnknownKind {
        /// The object's API version.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// No kind with this plural name is registered.
    #[error("unknown resource {0:?}")]
    UnknownResource(String),
    /// The fields do not fit the kind.
    #[error("{path}: {message}")]
    Invalid {
        /// Field path, e.g. `spec.containers[0].ports[0].containerPort`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

type DecodeValueFn = fn(serde_json::Value) -> Result<Box<dyn Object>, DecodeError>;
type DecodeBytesFn = fn(&[u8]) -> Result<Box<dyn Object>, DecodeError>;
type DecodeSharedFn = fn(&[u8]) -> Result<Arc<dyn Object>, DecodeError>;

/// A registered kind: its names and how to decode it.
#[derive(Clone)]
pub struct KindInfo {
    /// Names and scope.
    pub resource: ApiResource,
    decode_value: DecodeValueFn,
    decode_bytes: DecodeBytesFn,
    decode_shared: DecodeSharedFn,
}

impl fmt::Debug for KindInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindInfo")
            .field("resource", &self.resource)
            .finish()
    }
}

impl KindInfo {
    /// Decodes a JSON value of this kind, reporting the field path on error.
    pub fn decode_value(&self, value: serde_json::Value) -> Result<Box<dyn Object>, DecodeError> {
        (self.decode_value)(value)
    }

    /// Decodes JSON bytes of this kind, reporting the field path on error.
    pub fn decode_bytes(&self, bytes: &[u8]) -> Result<Box<dyn Object>, DecodeError> {
        (self.decode_bytes)(bytes)
    }

    /// Decodes JSON bytes of this kind into a shared object, for objects
    /// that are read and not changed (replies, watch events, list items).
    /// Same errors as [`decode_bytes`](Self::decode_bytes); cheaper than
    /// converting its `Box` into an `Arc`, which copies the object.
    ///
    /// ```
    /// use ketch_core::Scheme;
    /// let scheme = Scheme::with_builtins();
    /// let pods = scheme.by_kind("v1", "Pod").unwrap();
    /// let pod = pods.decode_shared(br#"{"metadata":{"name":"web"}}"#).unwrap();
    /// assert_eq!(pod.metadata().name.as_deref(), Some("web"));
    /// assert!(pods.decode_shared(br#"{"spec":{"containers":3}}"#).is_err());
    /// ```
    pub fn decode_shared(&self, bytes: &[u8]) -> Result<Arc<dyn Object>, DecodeError> {
        (self.decode_shared)(bytes)
    }
}

fn path_error<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> DecodeError {
    let path = e.path().to_string();
    let path = if path == "." {
        String::from("<root>")
    } else {
        path
    };
    DecodeError::Invalid {
        path,
        message: e.inner().to_string(),
    }
}

// Decoding first runs without tracking the field path, which costs an
// allocation per field; only input that fails is decoded again to name the
// field at fault.

fn decode_typed_value<K: Object + DeserializeOwned>(
    value: serde_json::Value,
) -> Result<Box<dyn Object>, DecodeError> {
    match K::deserialize(&value) {
        Ok(k) => Ok(Box::new(k)),
        Err(first) => {
            serde_path_to_error::deserialize::<_, K>(value).map_err(path_error)?;
            Err(root_error(first))
        }
    }
}

fn decode_typed_bytes<K: Object + DeserializeOwned>(
    bytes: &[u8],
) -> Result<Box<dyn Object>, DecodeError> {
    decode_json_bytes::<K>(bytes).map(|k| Box::new(k) as Box<dyn Object>)
}

/// Decodes straight into the `Arc`: moving a decoded object from a `Box`
/// into an `Arc` would copy it once more (a pod is about a kilobyte).
fn decode_typed_shared<K: Object + DeserializeOwned>(
    bytes: &[u8],
) -> Result<Arc<dyn Object>, DecodeError> {
    decode_json_bytes::<K>(bytes).map(|k| Arc::new(k) as Arc<dyn Object>)
}

fn decode_json_bytes<K: DeserializeOwned>(bytes: &[u8]) -> Result<K, DecodeError> {
    // Checking the UTF-8 of the whole input at once is several times
    // cheaper than serde_json checking every string it reads; invalid input
    // goes the byte way, which reports where it is invalid.
    let decoded = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str::<K>(text),
        Err(_) => serde_json::from_slice::<K>(bytes),
    };
    decoded.or_else(|first| {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize::<_, K>(&mut *de).map_err(path_error)?;
        de.end().map_err(root_error)?;
        Err(root_error(first))
    })
}

/// An error the path-tracking decode did not place in a field (trailing
/// input after the object, for one).
fn root_error(e: serde_json::Error) -> DecodeError {
    DecodeError::Invalid {
        path: String::from("<root>"),
        message: e.to_string(),
    }
}

/// Maps kinds to their names and decoders: `apiVersion`/`kind` for manifests
/// and requests, plural names for paths, RBAC rules and store keys.
///
/// ```
/// use ketch_core::{ApiResource, Scheme};
/// let mut scheme = Scheme::with_builtins();
/// scheme.register_dynamic(ApiResource {
///     api_version: "example.com/v1".into(), kind: "Job".into(), plural: "jobs".into(), namespaced: true,
/// });
/// let job = scheme.decode_value(serde_json::json!({
///     "apiVersion": "example.com/v1", "kind": "Job", "metadata": {"name": "a"},
/// })).unwrap();
/// assert_eq!(job.kind(), "Job");
/// assert!(scheme.by_plural("pods").is_some());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Scheme {
    /// Kinds by `apiVersion`, then by `kind`: looked up with borrowed
    /// strings, so finding the decoder of a request allocates nothing.
    by_kind: HashMap<String, HashMap<String, Arc<KindInfo>>>,
    by_plural: HashMap<String, Arc<KindInfo>>,
}

impl Scheme {
    /// An empty scheme.
    pub fn new() -> Self {
        Self::default()
    }

    /// A scheme with every built-in kind registered.
    pub fn with_builtins() -> Self {
        let mut s = Self::new();
        s.register::<api::Namespace>()
            .register::<api::Pod>()
            .register::<api::Node>()
            .register::<api::Service>()
            .register::<api::Endpoints>()
            .register::<api::ReplicaSet>()
            .register::<api::Deployment>()
            .register::<api::Lease>()
            .register::<api::Event>()
            .register::<api::Role>()
            .register::<api::ClusterRole>()
            .register::<api::RoleBinding>()
            .register::<api::ClusterRoleBinding>();
        s
    }

    /// Registers a typed kind.
    pub fn register<K: Resource + Object + DeserializeOwned>(&mut self) -> &mut Self {
        self.insert(KindInfo {
            resource: ApiResource::of::<K>(),
            decode_value: decode_typed_value::<K>,
            decode_bytes: decode_typed_bytes::<K>,
            decode_shared: decode_typed_shared::<K>,
        })
    }

    /// Registers a kind served as [`DynamicObject`].
    pub fn register_dynamic(&mut self, resource: ApiResource) -> &mut Self {
        self.insert(KindInfo {
            resource,
            decode_value: decode_typed_value::<DynamicObject>,
            decode_bytes: decode_typed_bytes::<DynamicObject>,
            decode_shared: decode_typed_shared::<DynamicObject>,
        })
    }

    fn insert(&mut self, info: KindInfo) -> &mut Self {
        let info = Arc::new(info);
        let r = &info.resource;
        self.by_kind
            .entry(r.api_version.clone())
            .or_default()
            .insert(r.kind.clone(), info.clone());
        self.by_plural.insert(r.plural.clone(), info);
        self
    }

    /// The kind registered under `api_version` and `kind`.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Arc<KindInfo>> {
        self.by_kind.get(api_version)?.get(kind)
    }

    /// The kind registered under a plural name such as `pods`.
    pub fn by_plural(&self, plural: &str) -> Option<&Arc<KindInfo>> {
        self.by_plural.get(plural)
    }

    /// Every registered kind.
    pub fn kinds(&self) -> impl Iterator<Item = &Arc<KindInfo>> {
        self.by_plural.values()
    }

    /// Decodes a JSON value by its `apiVersion` and `kind`.
    pub fn decode_value(&self, value: serde_json::Value) -> Result<Box<dyn Object>, DecodeError> {
        let field = |name: &'static str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or(DecodeError::MissingTypeMeta { field: name })
        };
        let api_version = field("apiVersion")?;
        let kind = field("kind")?;
        let info = self
            .by_kind(&api_version, &kind)
            .ok_or(DecodeError::UnknownKind { api_version, kind })?;
        info.decode_value(value)
    }

    /// Decodes JSON bytes of the resource `plural`.
    pub fn decode_bytes(&self, plural: &str, bytes: &[u8]) -> Result<Box<dyn Object>, DecodeError> {
        let info = self
            .by_plural(plural)
            .ok_or_else(|| DecodeError::UnknownResource(plural.to_string()))?;
        info.decode_bytes(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Node, Pod};

    #[test]
    fn decode_reports_field_path() {
        let scheme = Scheme::with_builtins();
        let err = scheme
            .decode_value(serde_json::json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
                "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": "eighty"}]}]},
            }))
            .unwrap_err();
        match err {
            DecodeError::Invalid { path, .. } => {
                assert_eq!(path, "spec.containers[0].ports[0].containerPort")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn decode_rejects_unknown_kind_and_field() {
        let scheme = Scheme::with_builtins();
        let err = scheme
            .decode_value(serde_json::json!({"apiVersion": "v1", "kind": "Pad"}))
            .unwrap_err();
        assert_eq!(
            err,
            DecodeError::UnknownKind {
                api_version: "v1".into(),
                kind: "Pad".into()
            }
        );
        let err = scheme
            .decode_value(
                serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"nodeNmae": "x"}}),
            )
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::Invalid { ref path, .. } if path == "spec.nodeNmae"),
            "{err:?}"
        );
        assert!(err.to_string().contains("nodeNmae"), "{err}");
    }

    #[test]
    fn downcast_only_to_the_concrete_type() {
        let obj: Arc<dyn Object> = Arc::new(Pod::default());
        let obj = downcast_arc::<Node>(obj).unwrap_err();
        assert!(downcast_arc::<Pod>(obj).is_ok());
    }

    #[test]
    fn bytes_round_trip() {
        let scheme = Scheme::with_builtins();
        let pod = Pod {
            metadata: ObjectMeta::named("default", "web"),
            ..Pod::default()
        };
        let bytes = Object::to_json(&pod).unwrap();
        let back = scheme.decode_bytes("pods", &bytes).unwrap();
        assert!(back.eq_object(&pod));
    }

    #[test]
    fn bad_bytes_name_the_field_or_the_root() {
        let scheme = Scheme::with_builtins();
        let path_of = |json: &str| match scheme.decode_bytes("pods", json.as_bytes()) {
            Err(DecodeError::Invalid { path, .. }) => path,
            other => panic!("{json}: unexpected {other:?}"),
        };
        assert_eq!(
            path_of(r#"{"metadata": {"name": "a"}, "spec": {"priority": "high"}}"#),
            "spec.priority"
        );
        assert_eq!(path_of(r#"{"spec": {"nodeNmae": "x"}}"#), "spec.nodeNmae");
        assert_eq!(path_of(r#"{"metadata": {"name": "a"}} trailing"#), "<root>");
        assert_eq!(path_of(r#"{"metadata": "#), "metadata");
    }

    #[test]
    fn invalid_utf8_is_refused_at_the_field_holding_it() {
        let scheme = Scheme::with_builtins();
        let mut json = br#"{"metadata": {"name": "a", "namespace": "x"}}"#.to_vec();
        let at = json.iter().position(|&b| b == b'x').unwrap();
        json[at] = 0xff;
        match scheme.decode_bytes("pods", &json) {
            Err(DecodeError::Invalid { path, message }) => {
                assert_eq!(path, "metadata.namespace");
                assert!(message.contains("invalid unicode"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        // Non-ASCII text decodes as before.
        let back = scheme
            .decode_bytes(
                "pods",
                r#"{"metadata": {"name": "a", "namespace": "ü"}}"#.as_bytes(),
            )
            .unwrap();
        assert_eq!(back.metadata().namespace.as_deref(), Some("ü"));
    }
}
