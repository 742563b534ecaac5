//! The [`Client`] trait: the one interface every component uses to talk to
//! the API server, in process or over gRPC, and the typed [`Api`] wrapper.

use std::marker::PhantomData;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::object::downcast_arc;
use crate::{Object, Resource};

/// A shared, immutable object of any kind.
pub type ArcObject = Arc<dyn Object>;

/// Which objects a list or watch returns and how it reads.
///
/// ```
/// use ketch_core::ListParams;
/// let p = ListParams::default().labels("app=web").fields("spec.nodeName=n1").limit(500);
/// assert_eq!(p.limit, Some(500));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Label selector in string form, e.g. `app=web,tier!=db`.
    pub label_selector: Option<String>,
    /// Field selector, e.g. `spec.nodeName=n1`.
    pub field_selector: Option<String>,
    /// Page size; `None` returns everything.
    pub limit: Option<u32>,
    /// Continue token of the previous page.
    pub continue_token: Option<String>,
    /// `None` or `""`: the latest; `"0"`: any (the watch cache); a number:
    /// at least that fresh, or exactly that with [`ResourceVersionMatch::Exact`].
    pub resource_version: Option<String>,
    /// How `resource_version` is interpreted.
    pub resource_version_match: Option<ResourceVersionMatch>,
}

impl ListParams {
    /// Sets the label selector.
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Sets the field selector.
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues from a previous page's token.
    pub fn continue_from(mut self, token: &str) -> Self {
        self.continue_token = Some(token.to_string());
        self
    }
}

/// How a list interprets its resource version (Kubernetes `resourceVersionMatch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceVersionMatch {
    /// Data at least as new as the resource version.
    NotOlderThan,
    /// Data at exactly the resource version.
    Exact,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ObjectList {
    /// The objects, in key order.
    pub items: Vec<ArcObject>,
    /// The resource version the list was read at; watch from it to follow on.
    pub resource_version: String,
    /// Set when more pages follow.
    pub continue_token: Option<String>,
    /// Objects after this page, when known.
    pub remaining_item_count: Option<i64>,
}

/// Which changes a watch delivers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchParams {
    /// Label selector in string form.
    pub label_selector: Option<String>,
    /// Field selector, e.g. `spec.nodeName=n1`.
    pub field_selector: Option<String>,
    /// Deliver changes after this resource version; `None` or `"0"`: from now.
    pub resource_version: Option<String>,
    /// Ask for periodic [`ObjectEvent::Bookmark`]s.
    pub bookmarks: bool,
}

impl WatchParams {
    /// Watches changes after `resource_version`.
    pub fn from_version(resource_version: &str) -> Self {
        Self {
            resource_version: Some(resource_version.to_string()),
            ..Self::default()
        }
    }

    /// Sets the label selector.
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Sets the field selector.
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }
}

/// A change seen by a watch.
#[derive(Clone, Debug)]
pub enum ObjectEvent<T = ArcObject> {
    /// The object was created (or entered the selector).
    Added(T),
    /// The object changed.
    Modified(T),
    /// The object was removed (or left the selector); its last state.
    Deleted(T),
    /// Everything up to this resource version has been delivered.
    Bookmark {
        /// The resource version reached.
        resource_version: String,
    },
}

impl<T> ObjectEvent<T> {
    /// Maps the object of the event.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ObjectEvent<U> {
        match self {
            ObjectEvent::Added(o) => ObjectEvent::Added(f(o)),
            ObjectEvent::Modified(o) => ObjectEvent::Modified(f(o)),
            ObjectEvent::Deleted(o) => ObjectEvent::Deleted(f(o)),
            ObjectEvent::Bookmark { resource_version } => {
                ObjectEvent::Bookmark { resource_version }
            }
        }
    }
}

/// A stream of watch events; it ends with an error (for example
/// [`ApiError::Expired`]) when the watch cannot go on.
pub type ObjectEventStream = BoxStream<'static, Result<ObjectEvent, ApiError>>;

/// Options of a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// Grace period for pods; `Some(0)` deletes at once.
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the object still has this UID.
    pub precondition_uid: Option<String>,
    /// Delete only if the object is still at this resource version.
    pub precondition_resource_version: Option<String>,
}

/// What a delete did.
#[derive(Clone, Debug)]
pub enum DeleteOutcome {
    /// The object is gone; its last state.
    Deleted(ArcObject),
    /// The object is marked for deletion (finalizers or a grace period remain).
    Pending(ArcObject),
}

/// Errors of API calls, each with its Kubernetes HTTP status code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: the identity may not do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404: no such object or resource.
    #[error("{resource} {name:?} not found")]
    NotFound {
        /// Plural resource name.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409: the object already exists.
    #[error("{resource} {name:?} already exists")]
    AlreadyExists {
        /// Plural resource name.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409: the object changed since it was read; re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 410: the requested resource version is too old; relist.
    #[error("expired: {0}")]
    Expired(String),
    /// 413: the request is too large.
    #[error("request too large: {0}")]
    TooLarge(String),
    /// 422: the object is invalid; the message names each field and problem.
    #[error("invalid: {0}")]
    Invalid(String),
    /// 500: an internal failure.
    #[error("internal error: {0}")]
    Internal(String),
    /// 503: the server or its store cannot serve now; retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// 504: the request did not finish in time; retry.
    #[error("timeout: {0}")]
    Timeout(String),
}

impl ApiError {
    /// The HTTP status code Kubernetes uses for this error.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict(_) => 409,
            ApiError::Expired(_) => 410,
            ApiError::TooLarge(_) => 413,
            ApiError::Invalid(_) => 422,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
            ApiError::Timeout(_) => 504,
        }
    }

    /// True for errors worth retrying as they are (after backoff).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ApiError::Unavailable(_) | ApiError::Timeout(_) | ApiError::Conflict(_)
        )
    }
}

/// The API as components see it. Object-safe: hold it as `Arc<dyn Client>`.
///
/// `resource` is the plural name (`pods`); `namespace` is `None` for
/// cluster-scoped kinds and for lists and watches across all namespaces.
/// Implementations: the in-process client of `ketch_apiserver::ApiServer` and
/// the gRPC client.
#[async_trait::async_trait]
pub trait Client: Send + Sync + 'static {
    /// Creates an object; the server fills uid, resourceVersion, timestamps
    /// and a generated name.
    async fn create(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError>;

    /// Reads one object.
    async fn get(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<ArcObject, ApiError>;

    /// Lists objects.
    async fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList, ApiError>;

    /// Replaces spec and metadata; fails `Conflict` on a stale resourceVersion.
    /// Status changes are ignored (use [`Client::update_status`]).
    async fn update(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError>;

    /// Replaces status only; spec and metadata changes are ignored.
    async fn update_status(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError>;

    /// Applies a JSON merge patch (RFC 7386) to spec and metadata.
    async fn patch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<ArcObject, ApiError>;

    /// Deletes an object, or marks it when finalizers or a grace period remain.
    async fn delete(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError>;

    /// Watches changes.
    async fn watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        params: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError>;

    /// Binds a pending pod to a node (the `pods/binding` subresource); fails
    /// `Conflict` if the pod is already bound.
    async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<ArcObject, ApiError>;
}

/// Converts a shared object into a shared `K`: a downcast when it is a `K`,
/// a JSON conversion when it is another representation (a `DynamicObject`).
pub fn into_typed<K: Object + DeserializeOwned>(obj: ArcObject) -> Result<Arc<K>, ApiError> {
    match downcast_arc::<K>(obj) {
        Ok(k) => Ok(k),
        Err(other) => {
            let value = other
                .to_value()
                .map_err(|e| ApiError::Internal(format!("encoding {}: {e}", other.kind())))?;
            serde_json::from_value(value).map(Arc::new).map_err(|e| {
                ApiError::Internal(format!(
                    "decoding {} as the requested type: {e}",
                    other.kind()
                ))
            })
        }
    }
}

/// A typed view of one kind through a [`Client`], in one namespace or all.
///
/// ```no_run
/// # async fn demo(client: std::sync::Arc<dyn ketch_core::Client>) -> Result<(), ketch_core::ApiError> {
/// use ketch_core::{Api, ListParams, api::Pod};
/// let pods: Api<Pod> = Api::namespaced(client, "default");
/// let web = pods.get("web").await?;
/// let all = pods.list(&ListParams::default().labels("app=web")).await?;
/// # Ok(()) }
/// ```
pub struct Api<K> {
    client: Arc<dyn Client>,
    namespace: Option<String>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            _kind: PhantomData,
        }
    }
}

/// A typed page of a list.
#[derive(Clone, Debug)]
pub struct TypedList<K> {
    /// The objects.
    pub items: Vec<Arc<K>>,
    /// The resource version the list was read at.
    pub resource_version: String,
    /// Set when more pages follow.
    pub continue_token: Option<String>,
}

impl<K: Resource + Object + DeserializeOwned> Api<K> {
    /// Objects in one namespace.
    pub fn namespaced(client: Arc<dyn Client>, namespace: &str) -> Self {
        Self {
            client,
            namespace: Some(namespace.to_string()),
            _kind: PhantomData,
        }
    }

    /// Objects of every namespace, or of a cluster-scoped kind.
    pub fn all(client: Arc<dyn Client>) -> Self {
        Self {
            client,
            namespace: None,
            _kind: PhantomData,
        }
    }

    /// The underlying client.
    pub fn client(&self) -> &Arc<dyn Client> {
        &self.client
    }

    /// The namespace this API is limited to; `None` for all namespaces or a
    /// cluster-scoped kind.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn ns(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Reads one object.
    pub async fn get(&self, name: &str) -> Result<Arc<K>, ApiError> {
        into_typed(self.client.get(K::PLURAL, self.ns(), name).await?)
    }

    /// Reads one object, `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<Arc<K>>, ApiError> {
        match self.get(name).await {
            Ok(k) => Ok(Some(k)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists objects.
    pub async fn list(&self, params: &ListParams) -> Result<TypedList<K>, ApiError> {
        let list = self.client.list(K::PLURAL, self.ns(), params).await?;
        Ok(TypedList {
            items: list
                .items
                .into_iter()
                .map(into_typed)
                .collect::<Result<_, _>>()?,
            resource_version: list.resource_version,
            continue_token: list.continue_token,
        })
    }

    /// Creates an object (in this API's namespace when the object has none).
    pub async fn create(&self, mut object: K) -> Result<Arc<K>, ApiError> {
        self.fill_namespace(&mut object);
        into_typed(self.client.create(Box::new(object)).await?)
    }

    /// Replaces spec and metadata.
    pub async fn update(&self, mut object: K) -> Result<Arc<K>, ApiError> {
        self.fill_namespace(&mut object);
        into_typed(self.client.update(Box::new(object)).await?)
    }

    /// Replaces status.
    pub async fn update_status(&self, mut object: K) -> Result<Arc<K>, ApiError> {
        self.fill_namespace(&mut object);
        into_typed(self.client.update_status(Box::new(object)).await?)
    }

    /// Applies a JSON merge patch.
    pub async fn patch(&self, name: &str, patch: &serde_json::Value) -> Result<Arc<K>, ApiError> {
        into_typed(self.client.patch(K::PLURAL, self.ns(), name, patch).await?)
    }

    /// Deletes an object.
    pub async fn delete(
        &self,
        name: &str,
        params: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        self.client.delete(K::PLURAL, self.ns(), name, params).await
    }

    /// Watches changes, typed.
    pub async fn watch(
        &self,
        params: &WatchParams,
    ) -> Result<BoxStream<'static, Result<ObjectEvent<Arc<K>>, ApiError>>, ApiError> {
        let stream = self.client.watch(K::PLURAL, self.ns(), params).await?;
        Ok(stream
            .and_then(|event| async move {
                Ok(match event {
                    ObjectEvent::Added(o) => ObjectEvent::Added(into_typed(o)?),
                    ObjectEvent::Modified(o) => ObjectEvent::Modified(into_typed(o)?),
                    ObjectEvent::Deleted(o) => ObjectEvent::Deleted(into_typed(o)?),
                    ObjectEvent::Bookmark { resource_version } => {
                        ObjectEvent::Bookmark { resource_version }
                    }
                })
            })
            .boxed())
    }

    fn fill_namespace(&self, object: &mut K) {
        if K::NAMESPACED && object.meta().namespace.is_none() {
            object.meta_mut().namespace = self.namespace.clone();
        }
    }
}
