//! The resource registry: every kind the server serves, with its key prefix,
//! scope, and [`Strategy`] (defaulting, validation, status subresource, field
//! selectors).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ketch_core::api::{
    Deployment, Endpoints, Event, Lease, Namespace, NamespacePhase, Node, Pod, PodPhase,
    ReplicaSet, Service,
};
use ketch_core::{ApiResource, DynamicObject, KindInfo, Object, Resource, Revision, Scheme};
use serde::de::DeserializeOwned;

use ketch_core::validation::{
    ValidationErrors, check_dns1123_label, validate_namespace, validate_node, validate_object,
    validate_pod, validate_pod_status_update, validate_service,
};

use crate::watch_cache::WatchCache;

/// Errors of registering kinds.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// A kind with this plural name is registered already.
    #[error("resource {0:?} is registered already")]
    DuplicatePlural(String),
    /// The names of the kind are not usable.
    #[error("invalid resource {plural:?}: {message}")]
    InvalidResource {
        /// The plural name.
        plural: String,
        /// What is wrong.
        message: String,
    },
}

/// How the server treats one kind: defaulting, validation, which part is the
/// status subresource, and which fields field selectors may use.
///
/// Built-in kinds come with theirs; for your own typed kinds use
/// [`TypedStrategy`], for kinds without a Rust type [`DynamicStrategy`].
pub trait Strategy: Send + Sync + 'static {
    /// True when `obj` has the concrete type this strategy works on.
    fn is_native(&self, obj: &dyn Object) -> bool;
    /// True when the kind has a status subresource: `update` ignores status
    /// changes and `update_status` ignores everything else.
    fn has_status(&self) -> bool;
    /// Fills defaults in place.
    fn default(&self, obj: &mut dyn Object);
    /// Checks the object (and the change from `old` on updates); every
    /// problem names its field path.
    fn validate(&self, obj: &dyn Object, old: Option<&dyn Object>) -> Result<(), ValidationErrors>;
    /// Checks an object written through the status subresource, given the
    /// stored one. The default runs [`validate`](Self::validate).
    fn validate_status(&self, obj: &dyn Object, old: &dyn Object) -> Result<(), ValidationErrors> {
        self.validate(obj, Some(old))
    }
    /// True when the desired state differs; bumps `metadata.generation`.
    fn spec_changed(&self, old: &dyn Object, new: &dyn Object) -> bool;
    /// Makes `new` carry `old`'s status (a main-resource update).
    fn keep_status(&self, new: &mut dyn Object, old: &dyn Object);
    /// Makes `new` carry `old`'s metadata and everything but status (a
    /// status update).
    fn keep_spec(&self, new: &mut dyn Object, old: &dyn Object);
    /// True when `field` may be used in field selectors (besides
    /// `metadata.name` and `metadata.namespace`).
    fn supports_field(&self, field: &str) -> bool;
    /// The value of `field` for field selectors.
    fn field<'a>(&self, obj: &'a dyn Object, field: &str) -> Option<Cow<'a, str>>;
    /// The node an object is bound to (`spec.nodeName` of pods): the key of
    /// the watch cache's node index.
    fn node_name<'a>(&self, _obj: &'a dyn Object) -> Option<&'a str> {
        None
    }
    /// Marks an object whose deletion was requested (e.g. a namespace's phase
    /// becomes `Terminating`).
    fn prepare_delete(&self, _obj: &mut dyn Object) {}
    /// Kind-specific finalization still pending (a namespace's
    /// `spec.finalizers`), besides `metadata.finalizers`.
    fn blocks_removal(&self, _obj: &dyn Object) -> bool {
        false
    }
    /// True when a pod-like object has finished running: a graceful deletion
    /// completes at once.
    fn is_terminal(&self, _obj: &dyn Object) -> bool {
        false
    }
}

type FieldFn<K> = for<'a> fn(&'a K) -> Option<Cow<'a, str>>;
/// `(keep_status, keep_spec)` of a kind with a status subresource.
type StatusFns<K> = (fn(&mut K, &K), fn(&mut K, &K));
type ValidateFn<K> = fn(&K, Option<&K>) -> Result<(), ValidationErrors>;
type ValidateStatusFn<K> = fn(&K, &K) -> Result<(), ValidationErrors>;

/// The [`Strategy`] of a typed kind `K`, assembled from plain functions.
///
/// ```
/// use std::borrow::Cow;
/// use ketch_apiserver::registry::TypedStrategy;
/// use ketch_core::api::Lease;
/// let strategy = TypedStrategy::<Lease>::new()
///     .validation(|lease, _old| ketch_core::validation::validate_lease(lease))
///     .field("spec.holderIdentity", |l| l.spec.holder_identity.as_deref().map(Cow::Borrowed));
/// ```
pub struct TypedStrategy<K> {
    status: Option<StatusFns<K>>,
    spec_eq: fn(&K, &K) -> bool,
    default: Option<fn(&mut K)>,
    validate: Option<ValidateFn<K>>,
    validate_status: Option<ValidateStatusFn<K>>,
    fields: Vec<(&'static str, FieldFn<K>)>,
    node_name: Option<for<'a> fn(&'a K) -> Option<&'a str>>,
    prepare_delete: Option<fn(&mut K)>,
    blocks_removal: Option<fn(&K) -> bool>,
    is_terminal: Option<fn(&K) -> bool>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> fmt::Debug for TypedStrategy<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedStrategy")
            .field("status", &self.status.is_some())
            .field(
                "fields",
                &self.fields.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn eq_ignoring_metadata<K: Resource + Clone + PartialEq>(old: &K, new: &K) -> bool {
    let mut probe = new.clone();
    *probe.meta_mut() = old.meta().clone();
    probe == *old
}

impl<K: Resource + Object + Clone + PartialEq> TypedStrategy<K> {
    /// A strategy without status subresource, defaulting or validation
    /// beyond metadata; any change outside metadata bumps the generation.
    pub fn new() -> Self {
        Self {
            status: None,
            spec_eq: eq_ignoring_metadata::<K>,
            default: None,
            validate: None,
            validate_status: None,
            fields: Vec::new(),
            node_name: None,
            prepare_delete: None,
            blocks_removal: None,
            is_terminal: None,
            _kind: PhantomData,
        }
    }

    /// Declares a status subresource: `keep_status(new, old)` copies old's
    /// status into new; `keep_spec(new, old)` copies everything else
    /// (metadata and spec) from old into new; `spec_eq` compares desired
    /// state.
    pub fn status(
        mut self,
        keep_status: fn(&mut K, &K),
        keep_spec: fn(&mut K, &K),
        spec_eq: fn(&K, &K) -> bool,
    ) -> Self {
        self.status = Some((keep_status, keep_spec));
        self.spec_eq = spec_eq;
        self
    }

    /// Sets the defaulting function.
    pub fn defaulting(mut self, f: fn(&mut K)) -> Self {
        self.default = Some(f);
        self
    }

    /// Sets the validation function (`old` is set on updates). Without one,
    /// `ketch_core::validation::validate_object` runs (the built-in rules of
    /// built-in kinds, metadata for others).
    pub fn validation(mut self, f: ValidateFn<K>) -> Self {
        self.validate = Some(f);
        self
    }

    /// Sets the validation of status updates (`f(new, stored)`). Without
    /// one, status updates run the function given to
    /// [`validation`](Self::validation).
    pub fn status_validation(mut self, f: ValidateStatusFn<K>) -> Self {
        self.validate_status = Some(f);
        self
    }

    /// Adds a field usable in field selectors.
    pub fn field(mut self, name: &'static str, f: FieldFn<K>) -> Self {
        self.fields.push((name, f));
        self
    }

    /// Declares the node an object is bound to, indexing watchers on it.
    pub fn node_name(mut self, f: for<'a> fn(&'a K) -> Option<&'a str>) -> Self {
        self.node_name = Some(f);
        self
    }

    /// Sets what marks an object whose deletion was requested.
    pub fn on_delete(mut self, f: fn(&mut K)) -> Self {
        self.prepare_delete = Some(f);
        self
    }

    /// Sets the kind-specific finalization check.
    pub fn blocks_removal(mut self, f: fn(&K) -> bool) -> Self {
        self.blocks_removal = Some(f);
        self
    }

    /// Sets the check for objects that have finished running.
    pub fn terminal(mut self, f: fn(&K) -> bool) -> Self {
        self.is_terminal = Some(f);
        self
    }
}

impl<K: Resource + Object + Clone + PartialEq> Default for TypedStrategy<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Resource + Object + Clone + PartialEq> Strategy for TypedStrategy<K> {
    fn is_native(&self, obj: &dyn Object) -> bool {
        obj.is::<K>()
    }
    fn has_status(&self) -> bool {
        self.status.is_some()
    }
    fn default(&self, obj: &mut dyn Object) {
        if let (Some(f), Some(k)) = (self.default, obj.downcast_mut::<K>()) {
            f(k)
        }
    }
    fn validate(&self, obj: &dyn Object, old: Option<&dyn Object>) -> Result<(), ValidationErrors> {
        match (self.validate, obj.downcast_ref::<K>()) {
            (Some(f), Some(k)) => f(k, old.and_then(|o| o.downcast_ref::<K>())),
            _ => validate_object(obj, &ApiResource::of::<K>()),
        }
    }
    fn validate_status(&self, obj: &dyn Object, old: &dyn Object) -> Result<(), ValidationErrors> {
        match (
            self.validate_status,
            obj.downcast_ref::<K>(),
            old.downcast_ref::<K>(),
        ) {
            (Some(f), Some(k), Some(o)) => f(k, o),
            _ => self.validate(obj, Some(old)),
        }
    }
    fn spec_changed(&self, old: &dyn Object, new: &dyn Object) -> bool {
        match (old.downcast_ref::<K>(), new.downcast_ref::<K>()) {
            (Some(o), Some(n)) => !(self.spec_eq)(o, n),
            _ => true,
        }
    }
    fn keep_status(&self, new: &mut dyn Object, old: &dyn Object) {
        if let (Some((keep, _)), Some(n), Some(o)) = (
            self.status,
            new.downcast_mut::<K>(),
            old.downcast_ref::<K>(),
        ) {
            keep(n, o)
        }
    }
    fn keep_spec(&self, new: &mut dyn Object, old: &dyn Object) {
        if let (Some((_, keep)), Some(n), Some(o)) = (
            self.status,
            new.downcast_mut::<K>(),
            old.downcast_ref::<K>(),
        ) {
            keep(n, o)
        }
    }
    fn supports_field(&self, field: &str) -> bool {
        self.fields.iter().any(|(n, _)| *n == field)
    }
    fn field<'a>(&self, obj: &'a dyn Object, field: &str) -> Option<Cow<'a, str>> {
        let k = obj.downcast_ref::<K>()?;
        let (_, f) = self.fields.iter().find(|(n, _)| *n == field)?;
        f(k)
    }
    fn node_name<'a>(&self, obj: &'a dyn Object) -> Option<&'a str> {
        self.node_name.and_then(|f| f(obj.downcast_ref::<K>()?))
    }
    fn prepare_delete(&self, obj: &mut dyn Object) {
        if let (Some(f), Some(k)) = (self.prepare_delete, obj.downcast_mut::<K>()) {
            f(k)
        }
    }
    fn blocks_removal(&self, obj: &dyn Object) -> bool {
        match (self.blocks_removal, obj.downcast_ref::<K>()) {
            (Some(f), Some(k)) => f(k),
            _ => false,
        }
    }
    fn is_terminal(&self, obj: &dyn Object) -> bool {
        match (self.is_terminal, obj.downcast_ref::<K>()) {
            (Some(f), Some(k)) => f(k),
            _ => false,
        }
    }
}

/// The [`Strategy`] of a kind served as [`DynamicObject`]: `status` is the
/// top-level `status` field when the kind has a status subresource; field
/// selectors may use any dotted path to a scalar.
///
/// ```
/// use ketch_apiserver::registry::DynamicStrategy;
/// use ketch_core::ApiResource;
/// let strategy = DynamicStrategy::new(ApiResource {
///     api_version: "example.com/v1".into(), kind: "Job".into(), plural: "jobs".into(), namespaced: true,
/// }, true);
/// ```
#[derive(Clone, Debug)]
pub struct DynamicStrategy {
    resource: ApiResource,
    status: bool,
}

impl DynamicStrategy {
    /// A strategy for `resource`; `status` declares a status subresource.
    pub fn new(resource: ApiResource, status: bool) -> Self {
        Self { resource, status }
    }
}

fn dyn_lookup<'a>(obj: &'a DynamicObject, field: &str) -> Option<&'a serde_json::Value> {
    let mut parts = field.split('.');
    let mut cur = obj.data.get(parts.next()?)?;
    for p in parts {
        cur = cur.get(p)?;
    }
    Some(cur)
}

impl Strategy for DynamicStrategy {
    fn is_native(&self, obj: &dyn Object) -> bool {
        obj.is::<DynamicObject>()
    }
    fn has_status(&self) -> bool {
        self.status
    }
    fn default(&self, _obj: &mut dyn Object) {}
    fn validate(
        &self,
        obj: &dyn Object,
        _old: Option<&dyn Object>,
    ) -> Result<(), ValidationErrors> {
        validate_object(obj, &self.resource)
    }
    fn spec_changed(&self, old: &dyn Object, new: &dyn Object) -> bool {
        let (Some(o), Some(n)) = (
            old.downcast_ref::<DynamicObject>(),
            new.downcast_ref::<DynamicObject>(),
        ) else {
            return true;
        };
        let strip = |d: &DynamicObject| {
            d.data
                .iter()
                .filter(|(k, _)| !(self.status && k.as_str() == "status"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<serde_json::Map<_, _>>()
        };
        strip(o) != strip(n)
    }
    fn keep_status(&self, new: &mut dyn Object, old: &dyn Object) {
        if !self.status {
            return;
        }
        if let (Some(n), Some(o)) = (
            new.downcast_mut::<DynamicObject>(),
            old.downcast_ref::<DynamicObject>(),
        ) {
            match o.data.get("status") {
                Some(s) => n.data.insert(String::from("status"), s.clone()),
                None => n.data.remove("status"),
            };
        }
    }
    fn keep_spec(&self, new: &mut dyn Object, old: &dyn Object) {
        if !self.status {
            return;
        }
        if let (Some(n), Some(o)) = (
            new.downcast_mut::<DynamicObject>(),
            old.downcast_ref::<DynamicObject>(),
        ) {
            let status = n.data.remove("status");
            n.data = o.data.clone();
            n.metadata = o.metadata.clone();
            match status {
                Some(s) => n.data.insert(String::from("status"), s),
                None => n.data.remove("status"),
            };
        }
    }
    fn supports_field(&self, _field: &str) -> bool {
        true
    }
    fn field<'a>(&self, obj: &'a dyn Object, field: &str) -> Option<Cow<'a, str>> {
        let d = obj.downcast_ref::<DynamicObject>()?;
        match dyn_lookup(d, field)? {
            serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            serde_json::Value::Null => None,
            other @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_)) => {
                Some(Cow::Owned(other.to_string()))
            }
            _ => None,
        }
    }
}

/// One registered kind with its decoder, strategy and watch cache.
pub struct RegisteredKind {
    /// Names and scope.
    pub resource: ApiResource,
    pub(crate) info: Arc<KindInfo>,
    pub(crate) strategy: Arc<dyn Strategy>,
    /// `/registry/<plural>/`.
    pub(crate) prefix: String,
    pub(crate) cache: Arc<WatchCache>,
    /// The highest revision this server wrote to the kind.
    pub(crate) last_write: AtomicI64,
}

impl fmt::Debug for RegisteredKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredKind")
            .field("resource", &self.resource)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RegisteredKind {
    /// The store key of an object.
    pub(crate) fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.resource.namespaced, namespace) {
            (true, Some(ns)) => {
                let mut k = String::with_capacity(self.prefix.len() + ns.len() + name.len() + 1);
                k.push_str(&self.prefix);
                k.push_str(ns);
                k.push('/');
                k.push_str(name);
                k
            }
            _ => {
                let mut k = String::with_capacity(self.prefix.len() + name.len());
                k.push_str(&self.prefix);
                k.push_str(name);
                k
            }
        }
    }

    /// The key prefix of a list or watch.
    pub(crate) fn list_prefix(&self, namespace: Option<&str>) -> String {
        match (self.resource.namespaced, namespace) {
            (true, Some(ns)) => format!("{}{}/", self.prefix, ns),
            _ => self.prefix.clone(),
        }
    }

    pub(crate) fn record_write(&self, revision: Revision) {
        self.last_write.fetch_max(revision, Ordering::SeqCst);
    }
}

/// A kind ready to register: names, decoder and strategy.
pub struct KindRegistration {
    pub(crate) info: Arc<KindInfo>,
    pub(crate) strategy: Arc<dyn Strategy>,
}

impl fmt::Debug for KindRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindRegistration")
            .field("resource", &self.info.resource)
            .finish()
    }
}

impl KindRegistration {
    /// A typed kind with its strategy.
    ///
    /// ```
    /// use ketch_apiserver::registry::{KindRegistration, TypedStrategy};
    /// use ketch_core::api::Lease;
    /// let reg = KindRegistration::typed::<Lease>(TypedStrategy::new());
    /// assert_eq!(reg.resource().plural, "leases");
    /// ```
    pub fn typed<K>(strategy: TypedStrategy<K>) -> Self
    where
        K: Resource + Object + Clone + PartialEq + DeserializeOwned,
    {
        let mut scheme = Scheme::new();
        scheme.register::<K>();
        let info = scheme
            .by_plural(K::PLURAL)
            .cloned()
            .unwrap_or_else(|| unreachable!("registered just above"));
        Self {
            info,
            strategy: Arc::new(strategy),
        }
    }

    /// A kind without a Rust type, served as [`DynamicObject`].
    ///
    /// ```
    /// use ketch_apiserver::registry::KindRegistration;
    /// use ketch_core::ApiResource;
    /// let reg = KindRegistration::dynamic(ApiResource {
    ///     api_version: "example.com/v1".into(), kind: "Job".into(),
    ///     plural: "jobs".into(), namespaced: true,
    /// }, true);
    /// assert_eq!(reg.resource().kind, "Job");
    /// ```
    pub fn dynamic(resource: ApiResource, status: bool) -> Self {
        let plural = resource.plural.clone();
        let strategy = DynamicStrategy::new(resource.clone(), status);
        let mut scheme = Scheme::new();
        scheme.register_dynamic(resource);
        let info = scheme
            .by_plural(&plural)
            .cloned()
            .unwrap_or_else(|| unreachable!("registered just above"));
        Self {
            info,
            strategy: Arc::new(strategy),
        }
    }

    /// The names of the kind.
    pub fn resource(&self) -> &ApiResource {
        &self.info.resource
    }

    pub(crate) fn check(&self) -> Result<(), RegistryError> {
        let r = &self.info.resource;
        let bad = |message: &str| RegistryError::InvalidResource {
            plural: r.plural.clone(),
            message: message.to_string(),
        };
        check_dns1123_label(&r.plural).map_err(|e| bad(&format!("plural {e}")))?;
        if r.kind.is_empty() || r.api_version.is_empty() {
            return Err(bad("kind and apiVersion must be set"));
        }
        Ok(())
    }
}

/// Every kind the server serves, by plural name and by kind.
#[derive(Default)]
pub(crate) struct Registry {
    by_plural: HashMap<String, Arc<RegisteredKind>>,
    by_kind: HashMap<String, Vec<Arc<RegisteredKind>>>,
}

impl Registry {
    pub(crate) fn insert(&mut self, kind: Arc<RegisteredKind>) -> Result<(), RegistryError> {
        let plural = kind.resource.plural.clone();
        if self.by_plural.contains_key(&plural) {
            return Err(RegistryError::DuplicatePlural(plural));
        }
        self.by_kind
            .entry(kind.resource.kind.clone())
            .or_default()
            .push(kind.clone());
        self.by_plural.insert(plural, kind);
        Ok(())
    }

    pub(crate) fn by_plural(&self, plural: &str) -> Option<&Arc<RegisteredKind>> {
        self.by_plural.get(plural)
    }

    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<&Arc<RegisteredKind>> {
        self.by_kind
            .get(kind)?
            .iter()
            .find(|k| k.resource.api_version == api_version)
    }

    pub(crate) fn kinds(&self) -> impl Iterator<Item = &Arc<RegisteredKind>> {
        self.by_plural.values()
    }

    pub(crate) fn contains(&self, plural: &str) -> bool {
        self.by_plural.contains_key(plural)
    }
}

/// Makes `new` equal to `old`, copying only when they differ: a request
/// usually carries the part it may not change as it read it, and comparing
/// costs far less than a deep copy.
fn copy_if_changed<T: Clone + PartialEq>(new: &mut T, old: &T) {
    if new != old {
        new.clone_from(old);
    }
}

/// The spec/status split of the built-in kinds with a status subresource.
macro_rules! spec_status {
    ($ty:ty) => {
        TypedStrategy::<$ty>::new().status(
            |new, old| copy_if_changed(&mut new.status, &old.status),
            |new, old| {
                copy_if_changed(&mut new.spec, &old.spec);
                copy_if_changed(&mut new.metadata, &old.metadata);
            },
            |a, b| a.spec == b.spec,
        )
    };
}

fn pod_terminal(p: &Pod) -> bool {
    matches!(
        p.status.phase,
        Some(PodPhase::Succeeded) | Some(PodPhase::Failed)
    )
}

fn phase_name<T: fmt::Debug>(p: &Option<T>) -> Option<Cow<'static, str>> {
    p.as_ref().map(|p| Cow::Owned(format!("{p:?}")))
}

/// The registrations of every built-in kind.
pub(crate) fn builtin_kinds() -> Vec<KindRegistration> {
    let pod = spec_status!(Pod)
        .defaulting(crate::admission::defaults::default_pod)
        .validation(|p, _| validate_pod(p))
        .status_validation(validate_pod_status_update)
        .node_name(|p| p.spec.node_name.as_deref())
        .terminal(pod_terminal)
        .field("spec.nodeName", |p| {
            Some(Cow::Borrowed(p.spec.node_name.as_deref().unwrap_or("")))
        })
        .field("spec.schedulerName", |p| {
            p.spec.scheduler_name.as_deref().map(Cow::Borrowed)
        })
        .field("spec.serviceAccountName", |p| {
            p.spec.service_account_name.as_deref().map(Cow::Borrowed)
        })
        .field("spec.restartPolicy", |p| phase_name(&p.spec.restart_policy))
        .field("status.phase", |p| phase_name(&p.status.phase))
        .field("status.podIP", |p| {
            p.status.pod_ip.as_deref().map(Cow::Borrowed)
        })
        .field("status.nominatedNodeName", |p| {
            p.status.nominated_node_name.as_deref().map(Cow::Borrowed)
        });
    let node = spec_status!(Node)
        .validation(|n, _| validate_node(n))
        .field("spec.unschedulable", |n| {
            Some(Cow::Borrowed(if n.spec.unschedulable.unwrap_or(false) {
                "true"
            } else {
                "false"
            }))
        });
    let service = spec_status!(Service)
        .defaulting(crate::admission::defaults::default_service)
        .validation(|s, _| validate_service(s))
        .field("spec.clusterIP", |s| {
            s.spec.cluster_ip.as_deref().map(Cow::Borrowed)
        });
    let namespace = spec_status!(Namespace)
        .defaulting(|ns| {
            if ns.spec.finalizers.is_empty() && ns.metadata.deletion_timestamp.is_none() {
                ns.spec.finalizers.push(String::from("kubernetes"));
            }
            if ns.status.phase.is_none() {
                ns.status.phase = Some(NamespacePhase::Active);
            }
        })
        .validation(|ns, _| validate_namespace(ns))
        .on_delete(|ns| ns.status.phase = Some(NamespacePhase::Terminating))
        .blocks_removal(|ns| !ns.spec.finalizers.is_empty())
        .field("status.phase", |ns| phase_name(&ns.status.phase));
    let event = TypedStrategy::<Event>::new()
        .field("involvedObject.kind", |e| {
            e.involved_object.kind.as_deref().map(Cow::Borrowed)
        })
        .field("involvedObject.name", |e| {
            e.involved_object.name.as_deref().map(Cow::Borrowed)
        })
        .field("involvedObject.namespace", |e| {
            e.involved_object.namespace.as_deref().map(Cow::Borrowed)
        })
        .field("involvedObject.uid", |e| {
            e.involved_object.uid.as_deref().map(Cow::Borrowed)
        })
        .field("reason", |e| e.reason.as_deref().map(Cow::Borrowed))
        .field("type", |e| e.type_.as_deref().map(Cow::Borrowed));
    vec![
        KindRegistration::typed(namespace),
        KindRegistration::typed(pod),
        KindRegistration::typed(node),
        KindRegistration::typed(service),
        KindRegistration::typed(TypedStrategy::<Endpoints>::new()),
        KindRegistration::typed(spec_status!(ReplicaSet)),
        KindRegistration::typed(spec_status!(Deployment)),
        KindRegistration::typed(
            TypedStrategy::<Lease>::new().field("spec.holderIdentity", |l| {
                l.spec.holder_identity.as_deref().map(Cow::Borrowed)
            }),
        ),
        KindRegistration::typed(event),
        KindRegistration::typed(TypedStrategy::<ketch_core::api::Role>::new()),
        KindRegistration::typed(TypedStrategy::<ketch_core::api::ClusterRole>::new()),
        KindRegistration::typed(TypedStrategy::<ketch_core::api::RoleBinding>::new()),
        KindRegistration::typed(TypedStrategy::<ketch_core::api::ClusterRoleBinding>::new()),
    ]
}
