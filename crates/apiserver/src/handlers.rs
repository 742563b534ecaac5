//! The verbs: create, get, list, update, update status, patch, delete,
//! watch and bind, with their concurrency, deletion and namespace rules.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use ketch_core::api::{ConditionStatus, Namespace, NamespacePhase, Pod, PodCondition};
use ketch_core::{
    ApiError, ArcObject, DecodeError, DeleteOutcome, DeleteParams, KeyValue, ListOptions,
    ListParams, Object, ObjectEventStream, ObjectList, ResourceVersionMatch, Revision, StoreError,
    Time, WatchParams,
};

use crate::admission::{self, AdmissionRequest, Operation};
use crate::filter::ObjectFilter;
use crate::registry::RegisteredKind;
use crate::server::{Caller, Inner};
use crate::watch_cache::PendingWrite;

/// How long a read waits for the watch cache to catch up with a revision.
const CACHE_WAIT: Duration = Duration::from_secs(3);
/// Retries of writes without a resourceVersion precondition.
const MAX_RETRIES: usize = 16;

fn store_error(kind: &RegisteredKind, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => ApiError::NotFound {
            resource: kind.resource.plural.clone(),
            name: name.to_string(),
        },
        StoreError::AlreadyExists { .. } => ApiError::AlreadyExists {
            resource: kind.resource.plural.clone(),
            name: name.to_string(),
        },
        StoreError::Conflict { .. } => ApiError::Conflict(format!(
            "the object {}/{name} has been modified; read it again and retry",
            kind.resource.plural
        )),
        StoreError::Compacted { requested, .. } => {
            ApiError::Expired(format!("resource version {requested} is too old"))
        }
        StoreError::WatchLagged { resume_revision } => ApiError::Expired(format!(
            "the watch fell behind; resume from {resume_revision}"
        )),
        StoreError::FutureRevision { requested, current } => ApiError::Timeout(format!(
            "too large resource version: {requested}, current: {current}"
        )),
        StoreError::InvalidArgument(m) => ApiError::BadRequest(m),
        StoreError::Unavailable(m) => ApiError::Unavailable(m),
        StoreError::Corrupt(m) => ApiError::Internal(format!("store data corrupt: {m}")),
    }
}

fn decode_error(e: DecodeError) -> ApiError {
    ApiError::BadRequest(e.to_string())
}

fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resourceVersion {rv:?}")))
}

fn not_found(kind: &RegisteredKind, name: &str) -> ApiError {
    ApiError::NotFound {
        resource: kind.resource.plural.clone(),
        name: name.to_string(),
    }
}

fn conflict(kind: &RegisteredKind, name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "the object {}/{name} has been modified; read it again and retry",
        kind.resource.plural
    ))
}

/// Applies an RFC 7386 JSON merge patch.
pub(crate) fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match patch {
        serde_json::Value::Object(p) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(serde_json::Map::new());
            }
            if let Some(t) = target.as_object_mut() {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn lost_write(key: &str) -> ApiError {
    ApiError::Internal(format!("the watch cache lost track of the write of {key}"))
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_name(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4();
    let mut name = String::with_capacity(prefix.len() + 5);
    name.push_str(prefix);
    for b in &random.as_bytes()[..5] {
        name.push(NAME_CHARS[*b as usize % NAME_CHARS.len()] as char);
    }
    name
}

impl Inner {
    fn decode_kv(&self, kind: &RegisteredKind, kv: &KeyValue) -> Result<ArcObject, ApiError> {
        if let Some(cached) = kind.cache.get(&kv.key)
            && cached.metadata().revision() == Some(kv.mod_revision)
        {
            return Ok(cached);
        }
        let mut obj = kind
            .info
            .decode_bytes(&kv.value)
            .map_err(|e| ApiError::Internal(format!("decoding {} from the store: {e}", kv.key)))?;
        obj.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
        Ok(Arc::from(obj))
    }

    /// Decodes a request body (see [`crate::ApiServer::decode_object`]).
    pub(crate) fn decode_object(&self, body: &[u8]) -> Result<Box<dyn Object>, ApiError> {
        if body.len() > self.max_request_bytes {
            return Err(ApiError::TooLarge(format!(
                "the request body is {} bytes; the limit is {} bytes",
                body.len(),
                self.max_request_bytes
            )));
        }
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::BadRequest(String::from(
                "the request body must be a JSON object",
            )));
        }
        let field = |name: &'static str| {
            value
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .ok_or_else(|| decode_error(DecodeError::MissingTypeMeta { field: name }))
        };
        let api_version = field("apiVersion")?;
        let kind_name = field("kind")?;
        let info = self
            .registry
            .read()
            .by_kind(&api_version, &kind_name)
            .map(|k| k.info.clone())
            .ok_or_else(|| {
                decode_error(DecodeError::UnknownKind {
                    api_version,
                    kind: kind_name,
                })
            })?;
        info.decode_value(value).map_err(decode_error)
    }

    /// Makes `obj` the kind's native type (a typed struct or a DynamicObject).
    fn coerce(
        &self,
        kind: &RegisteredKind,
        obj: Box<dyn Object>,
    ) -> Result<Box<dyn Object>, ApiError> {
        if kind.strategy.is_native(&*obj) {
            return Ok(obj);
        }
        let value = obj
            .to_value()
            .map_err(|e| ApiError::BadRequest(format!("encoding the object: {e}")))?;
        kind.info.decode_value(value).map_err(decode_error)
    }

    /// The object's JSON, encoded in a buffer each thread reuses and then
    /// copied into an allocation of its exact size: the store keeps the
    /// value, and growing a fresh vector would take a dozen reallocations
    /// and leave up to half of it unused.
    fn encode(&self, obj: &dyn Object) -> Result<Bytes, ApiError> {
        /// Larger buffers are not kept for the next encoding.
        const KEEP: usize = 1 << 20;
        thread_local! {
            static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            buf.clear();
            let encoded = obj.write_json(buf);
            let result = match encoded {
                Err(e) => Err(ApiError::BadRequest(format!("encoding the object: {e}"))),
                Ok(()) if buf.len() > self.max_request_bytes => Err(ApiError::TooLarge(format!(
                    "the object is {} bytes encoded; the limit is {} bytes",
                    buf.len(),
                    self.max_request_bytes
                ))),
                Ok(()) => Ok(Bytes::copy_from_slice(buf)),
            };
            if buf.capacity() > KEEP {
                *buf = Vec::new();
            }
            result
        })
    }

    fn record_write(&self, kind: &RegisteredKind, revision: Revision) {
        kind.record_write(revision);
        self.own_writes.fetch_add(1, Ordering::SeqCst);
    }

    /// The object of a write the store took, shared with the watch cache.
    fn finish_write(
        &self,
        kind: &RegisteredKind,
        pending: PendingWrite<'_>,
        kv: &KeyValue,
    ) -> Result<ArcObject, ApiError> {
        self.record_write(kind, kv.mod_revision);
        pending
            .written(kv.mod_revision)
            .ok_or_else(|| lost_write(&kv.key))
    }

    fn namespace_of<'a>(
        &self,
        kind: &RegisteredKind,
        namespace: Option<&'a str>,
    ) -> Result<Option<&'a str>, ApiError> {
        if !kind.resource.namespaced {
            return Ok(None);
        }
        match namespace {
            Some(ns) if !ns.is_empty() => Ok(Some(ns)),
            _ => Err(ApiError::BadRequest(format!(
                "a namespace is required for the namespaced resource {}",
                kind.resource.plural
            ))),
        }
    }

    /// The current object: from the watch cache when it is at `want`
    /// (or when no revision is wanted), else from the store.
    async fn current(
        &self,
        kind: &RegisteredKind,
        key: &str,
        name: &str,
        want: Option<Revision>,
    ) -> Result<ArcObject, ApiError> {
        if let Some(cached) = kind.cache.get(key) {
            let rev = cached.metadata().revision();
            match want {
                None => return Ok(cached),
                Some(w) if Some(w) == rev => return Ok(cached),
                Some(w) if rev.is_some_and(|r| w < r) => return Err(conflict(kind, name)),
                Some(_) => {}
            }
        }
        // A write of this server the cache has not applied yet.
        if let Some(w) = want
            && let Some(recent) = kind.cache.recent_write(key, w)
        {
            return Ok(recent);
        }
        let kv = self.get_kv(kind, key, name).await?;
        if want.is_some_and(|w| w != kv.mod_revision) {
            return Err(conflict(kind, name));
        }
        self.decode_kv(kind, &kv)
    }

    /// The object a read-modify-write attempt starts from: the watch cache on
    /// the first attempt, the store itself after a conflict, since the cache
    /// may still trail the write that caused it.
    async fn attempt_base(
        &self,
        kind: &RegisteredKind,
        key: &str,
        name: &str,
        want: Option<Revision>,
        attempt: usize,
    ) -> Result<ArcObject, ApiError> {
        if attempt == 0 || want.is_some() {
            self.current(kind, key, name, want).await
        } else {
            self.read_store(kind, key, name).await
        }
    }

    /// The object as the store has it now, bypassing the watch cache.
    async fn read_store(
        &self,
        kind: &RegisteredKind,
        key: &str,
        name: &str,
    ) -> Result<ArcObject, ApiError> {
        let kv = self.get_kv(kind, key, name).await?;
        self.decode_kv(kind, &kv)
    }

    async fn get_kv(
        &self,
        kind: &RegisteredKind,
        key: &str,
        name: &str,
    ) -> Result<KeyValue, ApiError> {
        self.store
            .get(key)
            .await
            .map_err(|e| store_error(kind, name, e))?
            .ok_or_else(|| not_found(kind, name))
    }

    async fn check_namespace(&self, namespace: &str) -> Result<(), ApiError> {
        let kind = self.kind("namespaces")?;
        let key = kind.key(None, namespace);
        let obj = match kind.cache.get(&key) {
            Some(o) => o,
            None => {
                let kv = self
                    .store
                    .get(&key)
                    .await
                    .map_err(|e| store_error(&kind, namespace, e))?
                    .ok_or_else(|| not_found(&kind, namespace))?;
                self.decode_kv(&kind, &kv)?
            }
        };
        let terminating = obj.metadata().deletion_timestamp.is_some()
            || obj
                .downcast_ref::<Namespace>()
                .is_some_and(|ns| ns.status.phase == Some(NamespacePhase::Terminating));
        if terminating {
            return Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            )));
        }
        Ok(())
    }

    pub(crate) async fn create(
        &self,
        caller: &Caller,
        obj: Box<dyn Object>,
    ) -> Result<ArcObject, ApiError> {
        let kind = self.kind_of(&*obj)?;
        let mut obj = self.coerce(&kind, obj)?;
        let namespace = {
            let meta = obj.metadata_mut();
            if kind.resource.namespaced {
                if meta.namespace.as_deref().is_none_or(str::is_empty) {
                    return Err(ApiError::BadRequest(format!(
                        "metadata.namespace is required for the namespaced resource {}",
                        kind.resource.plural
                    )));
                }
            } else {
                meta.namespace = None;
            }
            meta.namespace.clone()
        };
        let ns = namespace.as_deref();
        let generated = {
            let meta = obj.metadata_mut();
            match (meta.name.as_deref(), meta.generate_name.as_deref()) {
                (Some(n), _) if !n.is_empty() => None,
                (_, Some(prefix)) if !prefix.is_empty() => {
                    let prefix = prefix.to_string();
                    meta.name = Some(generate_name(&prefix));
                    Some(prefix)
                }
                _ => {
                    return Err(ApiError::Invalid(format!(
                        "{} is invalid: metadata.name: Required value: name or generateName is required",
                        obj.kind()
                    )));
                }
            }
        };
        // The name is known unless generated: node authorization checks it
        // (a node may create only its own Node and Lease).
        let requested_name = generated
            .is_none()
            .then(|| obj.metadata().name().to_string());
        self.authorize(caller, "create", &kind, "", ns, requested_name.as_deref())?;
        if let Some(ns) = ns {
            self.check_namespace(ns).await?;
        }
        {
            let meta = obj.metadata_mut();
            meta.uid = Some(uuid::Uuid::new_v4().to_string());
            meta.creation_timestamp = Some(Time::now());
            meta.resource_version = None;
            meta.generation = Some(1);
            meta.deletion_timestamp = None;
            meta.deletion_grace_period_seconds = None;
        }
        let name = obj.metadata().name().to_string();
        let req = AdmissionRequest {
            operation: Operation::Create,
            resource: &kind.resource,
            subresource: "",
            namespace: ns,
            name: &name,
            user: &caller.user,
            old: None,
            strategy: &*kind.strategy,
        };
        admission::admit(&self.admission, &req, &mut *obj)?;
        let mut attempts = 0;
        loop {
            let name = obj.metadata().name().to_string();
            let key = kind.key(ns, &name);
            let bytes = match self.encode(&*obj) {
                Ok(bytes) => bytes,
                Err(e) => {
                    admission::rollback(&self.admission, &req, &*obj);
                    return Err(e);
                }
            };
            let pending = kind.cache.expect_write(&key, &bytes, obj);
            let error = match self.store.create(&key, bytes).await {
                Ok(kv) => return self.finish_write(&kind, pending, &kv),
                Err(e) => store_error(&kind, &name, e),
            };
            obj = pending.refused().ok_or_else(|| lost_write(&key))?;
            match error {
                ApiError::AlreadyExists { .. } if generated.is_some() && attempts < 8 => {
                    attempts += 1;
                    let prefix = generated.as_deref().unwrap_or_default();
                    obj.metadata_mut().name = Some(generate_name(prefix));
                }
                e => {
                    admission::rollback(&self.admission, &req, &*obj);
                    return Err(e);
                }
            }
        }
    }

    pub(crate) async fn get(
        &self,
        caller: &Caller,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<ArcObject, ApiError> {
        let kind = self.kind(plural)?;
        let ns = self.namespace_of(&kind, namespace)?;
        self.authorize(caller, "get", &kind, "", ns, Some(name))?;
        let key = kind.key(ns, name);
        let kv = self
            .store
            .get(&key)
            .await
            .map_err(|e| store_error(&kind, name, e))?
            .ok_or_else(|| not_found(&kind, name))?;
        self.decode_kv(&kind, &kv)
    }

    /// The revision up to which the cache of `kind` is known complete when
    /// this server is the store's only writer; `None` otherwise.
    async fn sole_writer_revision(
        &self,
        kind: &RegisteredKind,
    ) -> Result<Option<Revision>, ApiError> {
        let writes = self.own_writes.load(Ordering::SeqCst);
        let current = self
            .store
            .current_revision()
            .await
            .map_err(|e| store_error(kind, "", e))?;
        if current - self.start_revision != writes {
            return Ok(None);
        }
        let needed = kind.last_write.load(Ordering::SeqCst);
        kind.cache.wait_for(needed, CACHE_WAIT).await?;
        Ok(Some(current))
    }

    /// Resolves, scopes and authorizes a request on a collection (list or
    /// watch) and parses its selectors.
    fn collection_request<'a>(
        &self,
        caller: &Caller,
        verb: &str,
        plural: &str,
        namespace: Option<&'a str>,
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<(Arc<RegisteredKind>, Option<&'a str>, ObjectFilter), ApiError> {
        let kind = self.kind(plural)?;
        let ns = if kind.resource.namespaced {
            namespace.filter(|n| !n.is_empty())
        } else {
            None
        };
        self.authorize(caller, verb, &kind, "", ns, None)?;
        let filter = ObjectFilter::new(
            ns,
            label_selector.filter(|s| !s.is_empty()),
            field_selector.filter(|s| !s.is_empty()),
            &*kind.strategy,
        )
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok((kind, ns, filter))
    }

    pub(crate) async fn list(
        &self,
        caller: &Caller,
        plural: &str,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList, ApiError> {
        let (kind, ns, filter) = self.collection_request(
            caller,
            "list",
            plural,
            namespace,
            params.label_selector.as_deref(),
            params.field_selector.as_deref(),
        )?;
        let prefix = kind.list_prefix(ns);
        let rv = params.resource_version.as_deref().filter(|s| !s.is_empty());
        let paged = params.limit.is_some_and(|l| l > 0) || params.continue_token.is_some();
        let exact = params.resource_version_match == Some(ResourceVersionMatch::Exact);
        if exact && rv.is_none() {
            return Err(ApiError::BadRequest(String::from(
                "resourceVersionMatch=Exact needs a resourceVersion",
            )));
        }
        let from_cache = |revision: Revision| {
            let (items, cache_rev) = kind.cache.list(&prefix, &filter);
            ObjectList {
                items,
                resource_version: revision.max(cache_rev).to_string(),
                continue_token: None,
                remaining_item_count: None,
            }
        };
        match rv {
            Some("0") if !exact => {
                kind.cache.wait_for(0, CACHE_WAIT).await?;
                return Ok(from_cache(0));
            }
            Some(r) if !exact && !paged => {
                let r = parse_rv(r)?;
                kind.cache.wait_for(r, CACHE_WAIT).await?;
                return Ok(from_cache(0));
            }
            None if !paged => {
                if let Some(revision) = self.sole_writer_revision(&kind).await? {
                    return Ok(from_cache(revision));
                }
            }
            _ => {}
        }
        let revision = match rv {
            Some(r) if exact => Some(parse_rv(r)?),
            _ => None,
        };
        self.list_from_store(&kind, &prefix, &filter, params, revision)
            .await
    }

    async fn list_from_store(
        &self,
        kind: &RegisteredKind,
        prefix: &str,
        filter: &ObjectFilter,
        params: &ListParams,
        revision: Option<Revision>,
    ) -> Result<ObjectList, ApiError> {
        let limit = params.limit.filter(|l| *l > 0).map(|l| l as usize);
        let mut options = ListOptions {
            revision,
            limit,
            continue_token: params.continue_token.clone().filter(|t| !t.is_empty()),
        };
        let mut items = Vec::new();
        loop {
            let page = self
                .store
                .list(prefix, &options)
                .await
                .map_err(|e| match e {
                    StoreError::InvalidArgument(m) => {
                        ApiError::BadRequest(format!("invalid continue token: {m}"))
                    }
                    StoreError::Compacted { .. } => ApiError::Expired(String::from(
                        "the continue token or resource version is too old; list again from the start",
                    )),
                    other => store_error(kind, "", other),
                })?;
            for kv in &page.items {
                let obj = self.decode_kv(kind, kv)?;
                if filter.matches(&*obj, &*kind.strategy) {
                    items.push(obj);
                }
            }
            let done = match (limit, &page.continue_token) {
                (_, None) => true,
                (Some(l), Some(_)) => items.len() >= l,
                (None, Some(_)) => false,
            };
            if done {
                return Ok(ObjectList {
                    items,
                    resource_version: page.revision.to_string(),
                    continue_token: page.continue_token,
                    remaining_item_count: if filter.selects_all() {
                        page.remaining.map(|r| r as i64)
                    } else {
                        None
                    },
                });
            }
            options.revision = Some(page.revision);
            options.continue_token = page.continue_token;
            if let Some(l) = limit {
                options.limit = Some(l - items.len());
            }
        }
    }

    /// Writes `new` over `base` (compare-and-swap on base's revision);
    /// `Ok(None)` on a conflict. Removes the object when its deletion is due.
    async fn commit_update(
        &self,
        caller: &Caller,
        kind: &RegisteredKind,
        key: &str,
        base: &ArcObject,
        mut new: Box<dyn Object>,
        (operation, subresource): (Operation, &str),
    ) -> Result<Option<ArcObject>, ApiError> {
        let name = base.metadata().name().to_string();
        let ns = base.metadata().namespace.clone();
        let base_rev = base
            .metadata()
            .revision()
            .ok_or_else(|| ApiError::Internal(format!("{key} has no resource version")))?;
        let req = AdmissionRequest {
            operation,
            resource: &kind.resource,
            subresource,
            namespace: ns.as_deref(),
            name: &name,
            user: &caller.user,
            old: Some(&**base),
            strategy: &*kind.strategy,
        };
        admission::admit(&self.admission, &req, &mut *new)?;
        new.metadata_mut().resource_version = base.metadata().resource_version.clone();
        if new.eq_object(&**base) {
            return Ok(Some(base.clone()));
        }
        new.metadata_mut().resource_version = None;
        let bytes = match self.encode(&*new) {
            Ok(b) => b,
            Err(e) => {
                admission::rollback(&self.admission, &req, &*new);
                return Err(e);
            }
        };
        let pending = kind.cache.expect_write(key, &bytes, new);
        let kv = match self.store.update(key, bytes, base_rev).await {
            Ok(kv) => kv,
            Err(e) => {
                let new = pending.refused().ok_or_else(|| lost_write(key))?;
                admission::rollback(&self.admission, &req, &*new);
                return match e {
                    StoreError::Conflict { .. } => Ok(None),
                    e => Err(store_error(kind, &name, e)),
                };
            }
        };
        let written = self.finish_write(kind, pending, &kv)?;
        if self.removal_due(kind, &*written) {
            self.remove(kind, key, &written).await?;
        }
        Ok(Some(written))
    }

    /// True when an object marked for deletion may leave the store.
    fn removal_due(&self, kind: &RegisteredKind, obj: &dyn Object) -> bool {
        let meta = obj.metadata();
        meta.deletion_timestamp.is_some()
            && meta.finalizers.is_empty()
            && !kind.strategy.blocks_removal(obj)
            && (meta.deletion_grace_period_seconds.unwrap_or(0) == 0
                || kind.strategy.is_terminal(obj))
    }

    /// Deletes `obj` from the store if it is still at its revision.
    async fn remove(
        &self,
        kind: &RegisteredKind,
        key: &str,
        obj: &ArcObject,
    ) -> Result<bool, ApiError> {
        let rev = obj.metadata().revision();
        match self.store.delete(key, rev).await {
            Ok((_, revision)) => {
                self.record_write(kind, revision);
                for plugin in &self.admission {
                    plugin.removed(&kind.resource, &**obj);
                }
                Ok(true)
            }
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(kind, obj.metadata().name(), e)),
        }
    }

    /// Copies the fields only the server sets from `base` into `new`.
    fn keep_server_fields(kind: &RegisteredKind, base: &dyn Object, new: &mut dyn Object) {
        let spec_changed = kind.strategy.spec_changed(base, new);
        let b = base.metadata();
        let m = new.metadata_mut();
        m.uid.clone_from(&b.uid);
        m.creation_timestamp = b.creation_timestamp;
        m.deletion_timestamp = b.deletion_timestamp;
        m.deletion_grace_period_seconds = b.deletion_grace_period_seconds;
        m.namespace.clone_from(&b.namespace);
        m.generate_name.clone_from(&b.generate_name);
        let generation = b.generation.unwrap_or(1);
        m.generation = Some(if spec_changed {
            generation + 1
        } else {
            generation
        });
    }

    pub(crate) async fn update(
        &self,
        caller: &Caller,
        obj: Box<dyn Object>,
        status: bool,
    ) -> Result<ArcObject, ApiError> {
        let kind = self.kind_of(&*obj)?;
        let obj = self.coerce(&kind, obj)?;
        if status && !kind.strategy.has_status() {
            return Err(ApiError::NotFound {
                resource: format!("{}/status", kind.resource.plural),
                name: obj.metadata().name().to_string(),
            });
        }
        let ns = self
            .namespace_of(&kind, obj.metadata().namespace.as_deref())?
            .map(str::to_string);
        let name = obj.metadata().name().to_string();
        if name.is_empty() {
            return Err(ApiError::BadRequest(String::from(
                "metadata.name is required for an update",
            )));
        }
        let subresource = if status { "status" } else { "" };
        self.authorize(
            caller,
            "update",
            &kind,
            subresource,
            ns.as_deref(),
            Some(&name),
        )?;
        let key = kind.key(ns.as_deref(), &name);
        let want = match obj.metadata().resource_version.as_deref() {
            None | Some("") => None,
            Some(rv) => Some(parse_rv(rv)?),
        };
        let mut original = Some(obj);
        for attempt in 0..MAX_RETRIES {
            let base = self.attempt_base(&kind, &key, &name, want, attempt).await?;
            let mut new = match want {
                Some(_) => original.take(),
                None => original.as_ref().map(|o| o.clone_boxed()),
            }
            .ok_or_else(|| {
                ApiError::Internal(String::from("update retried after a precondition"))
            })?;
            if status {
                kind.strategy.keep_spec(&mut *new, &*base);
            } else {
                kind.strategy.keep_status(&mut *new, &*base);
                Self::keep_server_fields(&kind, &*base, &mut *new);
            }
            let operation = Operation::Update;
            match self
                .commit_update(caller, &kind, &key, &base, new, (operation, subresource))
                .await?
            {
                Some(written) => return Ok(written),
                None if want.is_some() => return Err(conflict(&kind, &name)),
                None => continue,
            }
        }
        Err(conflict(&kind, &name))
    }

    pub(crate) async fn patch(
        &self,
        caller: &Caller,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        let kind = self.kind(plural)?;
        let ns = self.namespace_of(&kind, namespace)?;
        self.authorize(caller, "patch", &kind, "", ns, Some(name))?;
        if !patch.is_object() {
            return Err(ApiError::BadRequest(String::from(
                "a JSON merge patch must be a JSON object",
            )));
        }
        let size = serde_json::to_vec(patch).map(|v| v.len()).unwrap_or(0);
        if size > self.max_request_bytes {
            return Err(ApiError::TooLarge(format!(
                "the patch is {size} bytes; the limit is {} bytes",
                self.max_request_bytes
            )));
        }
        let want = match patch.get("metadata").and_then(|m| m.get("resourceVersion")) {
            Some(serde_json::Value::String(rv)) => Some(parse_rv(rv)?),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "metadata.resourceVersion must be a string, got {other}"
                )));
            }
        };
        let key = kind.key(ns, name);
        for attempt in 0..MAX_RETRIES {
            let base = self.attempt_base(&kind, &key, name, want, attempt).await?;
            let mut value = base
                .to_value()
                .map_err(|e| ApiError::Internal(format!("encoding {key}: {e}")))?;
            merge_patch(&mut value, patch);
            for (field, expected) in [("apiVersion", base.api_version()), ("kind", base.kind())] {
                if value.get(field).and_then(|v| v.as_str()) != Some(expected) {
                    return Err(ApiError::BadRequest(format!(
                        "a patch may not change {field}"
                    )));
                }
            }
            let meta = value.get("metadata");
            let same = |f: &str, expected: &str| {
                meta.and_then(|m| m.get(f))
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    == expected
            };
            if !same("name", base.metadata().name())
                || !same("namespace", base.metadata().namespace())
            {
                return Err(ApiError::BadRequest(String::from(
                    "a patch may not change metadata.name or metadata.namespace",
                )));
            }
            let mut new = kind.info.decode_value(value).map_err(decode_error)?;
            kind.strategy.keep_status(&mut *new, &*base);
            Self::keep_server_fields(&kind, &*base, &mut *new);
            match self
                .commit_update(caller, &kind, &key, &base, new, (Operation::Update, ""))
                .await?
            {
                Some(written) => return Ok(written),
                None if want.is_some() => return Err(conflict(&kind, name)),
                None => continue,
            }
        }
        Err(conflict(&kind, name))
    }

    pub(crate) async fn delete(
        &self,
        caller: &Caller,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        let kind = self.kind(plural)?;
        let ns = self.namespace_of(&kind, namespace)?;
        self.authorize(caller, "delete", &kind, "", ns, Some(name))?;
        if params.grace_period_seconds.is_some_and(|g| g < 0) {
            return Err(ApiError::BadRequest(String::from(
                "gracePeriodSeconds must be 0 or more",
            )));
        }
        let key = kind.key(ns, name);
        for attempt in 0..MAX_RETRIES {
            let base = self.attempt_base(&kind, &key, name, None, attempt).await?;
            let meta = base.metadata();
            if let Some(uid) = &params.precondition_uid
                && meta.uid.as_deref() != Some(uid.as_str())
            {
                return Err(ApiError::Conflict(format!(
                    "precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta.uid.as_deref().unwrap_or("")
                )));
            }
            if let Some(rv) = &params.precondition_resource_version
                && meta.resource_version.as_deref() != Some(rv.as_str())
            {
                return Err(ApiError::Conflict(format!(
                    "precondition failed: resourceVersion in precondition: {rv}, in object meta: {}",
                    meta.resource_version.as_deref().unwrap_or("")
                )));
            }
            let req = AdmissionRequest {
                operation: Operation::Delete,
                resource: &kind.resource,
                subresource: "",
                namespace: ns,
                name,
                user: &caller.user,
                old: Some(&*base),
                strategy: &*kind.strategy,
            };
            for plugin in &self.admission {
                plugin.validate(&req, &*base)?;
            }
            let pod = base.downcast_ref::<Pod>();
            let mut grace = 0;
            if let Some(pod) = pod {
                grace = params
                    .grace_period_seconds
                    .or(meta.deletion_grace_period_seconds)
                    .or(pod.spec.termination_grace_period_seconds)
                    .unwrap_or(30);
                if pod.spec.node_name.is_none() || kind.strategy.is_terminal(&*base) {
                    grace = 0;
                }
            }
            let finalizing = !meta.finalizers.is_empty() || kind.strategy.blocks_removal(&*base);
            if !finalizing && grace == 0 {
                if self.remove(&kind, &key, &base).await? {
                    return Ok(DeleteOutcome::Deleted(base));
                }
                continue;
            }
            if meta.deletion_timestamp.is_some() {
                let current = meta.deletion_grace_period_seconds.unwrap_or(0);
                if pod.is_none() || grace >= current {
                    return Ok(DeleteOutcome::Pending(base));
                }
            }
            let mut new = base.clone_boxed();
            {
                let m = new.metadata_mut();
                m.deletion_timestamp = Some(Time::now().add(Duration::from_secs(grace as u64)));
                m.deletion_grace_period_seconds = Some(grace);
            }
            kind.strategy.prepare_delete(&mut *new);
            new.metadata_mut().resource_version = None;
            let bytes = self.encode(&*new)?;
            let base_rev = meta.revision().unwrap_or(0);
            let pending = kind.cache.expect_write(&key, &bytes, new);
            match self.store.update(&key, bytes, base_rev).await {
                Ok(kv) => {
                    let written = self.finish_write(&kind, pending, &kv)?;
                    if self.removal_due(&kind, &*written)
                        && self.remove(&kind, &key, &written).await?
                    {
                        return Ok(DeleteOutcome::Deleted(written));
                    }
                    return Ok(DeleteOutcome::Pending(written));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(&kind, name, e)),
            }
        }
        Err(conflict(&kind, name))
    }

    pub(crate) async fn watch(
        &self,
        caller: &Caller,
        plural: &str,
        namespace: Option<&str>,
        params: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        let (kind, _, filter) = self.collection_request(
            caller,
            "watch",
            plural,
            namespace,
            params.label_selector.as_deref(),
            params.field_selector.as_deref(),
        )?;
        let from = match params.resource_version.as_deref() {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(parse_rv(rv)?),
        };
        kind.cache.wait_for(0, CACHE_WAIT).await?;
        kind.cache.watch(filter, from, params.bookmarks)
    }

    pub(crate) async fn bind(
        &self,
        caller: &Caller,
        namespace: &str,
        pod_name: &str,
        node: &str,
    ) -> Result<ArcObject, ApiError> {
        let kind = self.kind("pods")?;
        self.authorize(
            caller,
            "create",
            &kind,
            "binding",
            Some(namespace),
            Some(pod_name),
        )?;
        if let Err(e) = ketch_core::validation::check_dns1123_subdomain(node) {
            return Err(ApiError::Invalid(format!(
                "Binding {pod_name:?} is invalid: target.name: Invalid value: {node:?}: {e}"
            )));
        }
        let key = kind.key(Some(namespace), pod_name);
        for attempt in 0..MAX_RETRIES {
            let base = self
                .attempt_base(&kind, &key, pod_name, None, attempt)
                .await?;
            let pod = base
                .downcast_ref::<Pod>()
                .ok_or_else(|| ApiError::Internal(format!("{key} is not a Pod")))?;
            if let Some(bound) = &pod.spec.node_name {
                return Err(ApiError::Conflict(format!(
                    "pod {pod_name} is already assigned to node {bound:?}"
                )));
            }
            if pod.metadata.deletion_timestamp.is_some() {
                return Err(ApiError::Conflict(format!(
                    "pod {pod_name} is being deleted, cannot be assigned to a host"
                )));
            }
            let mut new = pod.clone();
            new.spec.node_name = Some(node.to_string());
            let scheduled = PodCondition {
                type_: String::from("PodScheduled"),
                status: ConditionStatus::True,
                last_transition_time: Some(Time::now()),
                ..PodCondition::default()
            };
            match new
                .status
                .conditions
                .iter_mut()
                .find(|c| c.type_ == "PodScheduled")
            {
                Some(c) => *c = scheduled,
                None => new.status.conditions.push(scheduled),
            }
            new.metadata.generation = Some(new.metadata.generation.unwrap_or(1) + 1);
            match self
                .commit_update(
                    caller,
                    &kind,
                    &key,
                    &base,
                    Box::new(new),
                    (Operation::Create, "binding"),
                )
                .await?
            {
                Some(written) => return Ok(written),
                None => continue,
            }
        }
        Err(conflict(&kind, pod_name))
    }
}
