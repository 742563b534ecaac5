//! The watch cache: one store watch per kind feeding an in-memory copy of
//! every object (decoded once, shared as `Arc<dyn Object>`), a window of
//! recent events, and the fan-out to watchers.
//!
//! Watchers filtered on `spec.nodeName=<node>` are indexed by node, so an
//! event costs work only for the watchers of the nodes it touches (at most
//! two: before and after) plus the unindexed watchers — thousands of node
//! agents each watching their own pods cost per event, not per watcher.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use ketch_core::{
    ApiError, ArcObject, KindInfo, Object, ObjectEvent, ObjectEventStream, Revision, Store,
    StoreError, WatchEvent,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};

use crate::filter::ObjectFilter;
use crate::registry::Strategy;

/// Sizes and intervals of a watch cache.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Events kept for watches that resume from a past revision.
    pub history: usize,
    /// Events buffered per watcher; a watcher that falls this far behind is
    /// ended with `Expired`.
    pub watcher_buffer: usize,
    /// How often watchers that asked for bookmarks get one.
    pub bookmark_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            history: 100_000,
            watcher_buffer: 100_000,
            bookmark_interval: Duration::from_secs(1),
        }
    }
}

struct CacheEvent {
    revision: Revision,
    object: ArcObject,
    prev: Option<ArcObject>,
    deleted: bool,
}

type EventSender = mpsc::Sender<Result<ObjectEvent, ApiError>>;

struct Watcher {
    tx: EventSender,
    filter: Arc<ObjectFilter>,
    after: Revision,
    bookmarks: bool,
    expired: Arc<AtomicBool>,
}

#[derive(Default)]
struct CacheState {
    objects: BTreeMap<String, ArcObject>,
    by_node: HashMap<String, BTreeMap<String, ArcObject>>,
    revision: Revision,
    history: VecDeque<Arc<CacheEvent>>,
    /// Every event after this revision is in `history`.
    window_start: Revision,
    watchers: HashMap<u64, Watcher>,
    node_watchers: HashMap<String, HashMap<u64, Watcher>>,
}

/// Objects written by this server, handed to the cache so it need not decode
/// them again.
#[derive(Default)]
struct RecentWrites {
    /// Writes the cache has not applied yet, by revision (a key may be
    /// written again before the cache applies its earlier write).
    objects: HashMap<Revision, (String, ArcObject)>,
    /// Writes on their way to the store, by the address of their encoded
    /// value (see [`PendingWrite`]).
    in_flight: HashMap<usize, InFlight>,
    applied: Revision,
}

/// The object of a write on its way to the store.
enum InFlight {
    /// The store has not confirmed the write to the cache yet.
    Waiting { len: usize, object: Box<dyn Object> },
    /// The cache applied the write with this object first; the flag tells
    /// whether the object had no `resourceVersion` when it was encoded.
    Taken(ArcObject, bool),
}

/// The cache of one kind.
pub(crate) struct WatchCache {
    plural: String,
    prefix: String,
    info: Arc<KindInfo>,
    strategy: Arc<dyn Strategy>,
    config: CacheConfig,
    state: RwLock<CacheState>,
    recent: Mutex<RecentWrites>,
    /// The revision the cache has applied; -1 until the first list.
    revision: watch::Sender<Revision>,
    next_watcher: AtomicU64,
}

impl WatchCache {
    pub(crate) fn new(
        plural: &str,
        prefix: &str,
        info: Arc<KindInfo>,
        strategy: Arc<dyn Strategy>,
        config: CacheConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            plural: plural.to_string(),
            prefix: prefix.to_string(),
            info,
            strategy,
            config,
            state: RwLock::new(CacheState::default()),
            recent: Mutex::new(RecentWrites::default()),
            revision: watch::Sender::new(-1),
            next_watcher: AtomicU64::new(1),
        })
    }

    /// The revision applied so far (-1 before the first list).
    pub(crate) fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Waits until the cache has applied `revision`.
    pub(crate) async fn wait_for(
        &self,
        revision: Revision,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        if self.revision() >= revision {
            return Ok(());
        }
        let mut rx = self.revision.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ApiError::Unavailable(format!(
                "the {} cache stopped",
                self.plural
            ))),
            Err(_) => Err(ApiError::Timeout(format!(
                "the {} cache did not reach revision {revision} in {timeout:?}",
                self.plural
            ))),
        }
    }

    /// Registers `object`, encoded as `value`, before it is written to the
    /// store: when the store's event carries these very bytes the cache takes
    /// the object instead of decoding the value, however soon the store wakes
    /// the cache.
    pub(crate) fn expect_write<'a>(
        &'a self,
        key: &'a str,
        value: &Bytes,
        object: Box<dyn Object>,
    ) -> PendingWrite<'a> {
        // The registration keeps `value` alive, so no other live value has
        // its address.
        let value = value.clone();
        let address = value.as_ptr() as usize;
        if !value.is_empty() {
            self.recent.lock().in_flight.insert(
                address,
                InFlight::Waiting {
                    len: value.len(),
                    object,
                },
            );
            return PendingWrite {
                cache: self,
                key,
                value,
                address: Some(address),
                object: None,
            };
        }
        PendingWrite {
            cache: self,
            key,
            value,
            address: None,
            object: Some(object),
        }
    }

    /// Hands an object this server just wrote to the cache unless it applied
    /// that revision already.
    fn offer(recent: &mut RecentWrites, key: &str, revision: Revision, object: &ArcObject) {
        if recent.applied >= revision {
            return;
        }
        recent
            .objects
            .insert(revision, (key.to_string(), object.clone()));
    }

    /// The object this server wrote under `key` at `revision`, if the cache
    /// has not applied it yet.
    pub(crate) fn recent_write(&self, key: &str, revision: Revision) -> Option<ArcObject> {
        match self.recent.lock().objects.get(&revision) {
            Some((k, obj)) if k == key => Some(obj.clone()),
            _ => None,
        }
    }

    /// The cached object under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<ArcObject> {
        self.state.read().objects.get(key).cloned()
    }

    /// Every cached object.
    pub(crate) fn list_all(&self) -> Vec<ArcObject> {
        self.state.read().objects.values().cloned().collect()
    }

    /// Objects matching `filter` under `prefix`, and the revision they are at.
    pub(crate) fn list(&self, prefix: &str, filter: &ObjectFilter) -> (Vec<ArcObject>, Revision) {
        let state = self.state.read();
        let strategy = &*self.strategy;
        let mut items = Vec::new();
        if let Some(node) = &filter.node_name
            && self.strategy.supports_field("spec.nodeName")
        {
            if let Some(objs) = state.by_node.get(node.as_str()) {
                for (key, obj) in objs.range(prefix.to_string()..) {
                    if !key.starts_with(prefix) {
                        break;
                    }
                    if filter.matches(&**obj, strategy) {
                        items.push(obj.clone());
                    }
                }
            }
            return (items, state.revision);
        }
        for (key, obj) in state.objects.range(prefix.to_string()..) {
            if !key.starts_with(prefix) {
                break;
            }
            if filter.selects_all() || filter.matches(&**obj, strategy) {
                items.push(obj.clone());
            }
        }
        (items, state.revision)
    }

    /// Number of watchers (indexed and not).
    #[cfg(test)]
    pub(crate) fn watcher_count(&self) -> usize {
        let s = self.state.read();
        s.watchers.len() + s.node_watchers.values().map(HashMap::len).sum::<usize>()
    }

    /// Starts a watch of events after `from` (`None`: from now).
    pub(crate) fn watch(
        self: &Arc<Self>,
        filter: ObjectFilter,
        from: Option<Revision>,
        bookmarks: bool,
    ) -> Result<ObjectEventStream, ApiError> {
        let filter = Arc::new(filter);
        let (tx, rx) = mpsc::channel(self.config.watcher_buffer.max(1));
        let expired = Arc::new(AtomicBool::new(false));
        let id = self.next_watcher.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state.write();
        let after = match from {
            None => state.revision,
            Some(r) if r >= state.revision => r,
            Some(r) if r < state.window_start => {
                return Err(ApiError::Expired(format!(
                    "too old resource version: {r} (the {} watch cache starts after {})",
                    self.plural, state.window_start
                )));
            }
            Some(r) => {
                let start = state.history.partition_point(|e| e.revision <= r);
                for ev in state.history.range(start..) {
                    if let Some(event) = event_for(&filter, &*self.strategy, ev)
                        && tx.try_send(Ok(event)).is_err()
                    {
                        return Err(ApiError::Expired(format!(
                            "too many events after resource version {r} to replay; relist"
                        )));
                    }
                }
                r
            }
        };
        let watcher = Watcher {
            tx,
            filter: filter.clone(),
            after,
            bookmarks,
            expired: expired.clone(),
        };
        match &filter.node_name {
            Some(node) if self.strategy.supports_field("spec.nodeName") => {
                state
                    .node_watchers
                    .entry(node.clone())
                    .or_default()
                    .insert(id, watcher);
            }
            _ => {
                state.watchers.insert(id, watcher);
            }
        }
        drop(state);
        let guard = WatchGuard {
            cache: Arc::downgrade(self),
            id,
            node: filter.node_name.clone(),
        };
        Ok(WatchEvents {
            rx,
            expired,
            guard,
            done: false,
        }
        .boxed())
    }

    fn remove_watcher(&self, id: u64, node: Option<&str>) {
        let mut state = self.state.write();
        if state.watchers.remove(&id).is_some() {
            return;
        }
        if let Some(node) = node
            && let Some(ws) = state.node_watchers.get_mut(node)
        {
            ws.remove(&id);
            if ws.is_empty() {
                state.node_watchers.remove(node);
            }
        }
    }

    fn decode(&self, kv: &ketch_core::KeyValue) -> Option<ArcObject> {
        match self.info.decode_bytes(&kv.value) {
            Ok(mut obj) => {
                obj.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
                Some(Arc::from(obj))
            }
            Err(e) => {
                tracing::error!(key = %kv.key, error = %e, "undecodable object in the store; skipped");
                None
            }
        }
    }

    /// Replaces the whole content from a list at `revision`; ends every
    /// watcher that waits for events before it (they may have missed some).
    fn reset(&self, items: Vec<(String, ArcObject)>, revision: Revision) {
        let mut state = self.state.write();
        let strategy = &self.strategy;
        state.objects.clear();
        state.by_node.clear();
        for (key, obj) in items {
            if let Some(node) = strategy.node_name(&*obj) {
                state
                    .by_node
                    .entry(node.to_string())
                    .or_default()
                    .insert(key.clone(), obj.clone());
            } else if strategy.supports_field("spec.nodeName") {
                state
                    .by_node
                    .entry(String::new())
                    .or_default()
                    .insert(key.clone(), obj.clone());
            }
            state.objects.insert(key, obj);
        }
        state.revision = revision;
        state.window_start = revision;
        state.history.clear();
        // A watcher waiting for events after an earlier revision may have
        // missed some that the list folded in: it ends with `Expired`. One
        // that starts at or after the list's revision missed nothing.
        let keep = |w: &Watcher| {
            if w.after < revision {
                w.expired.store(true, Ordering::SeqCst);
                return false;
            }
            true
        };
        state.watchers.retain(|_, w| keep(w));
        state.node_watchers.retain(|_, ws| {
            ws.retain(|_, w| keep(w));
            !ws.is_empty()
        });
        drop(state);
        let mut recent = self.recent.lock();
        recent.objects.clear();
        recent.applied = revision;
        drop(recent);
        self.revision.send_replace(revision);
    }

    /// Applies a batch of store events in order.
    fn apply(&self, events: &[Arc<WatchEvent>]) {
        if events.is_empty() {
            return;
        }
        // Objects this server wrote are taken over; others are decoded
        // before taking the state lock.
        let mut decoded: Vec<(Revision, &str, Option<ArcObject>, Update)> =
            Vec::with_capacity(events.len());
        {
            let mut recent = self.recent.lock();
            for ev in events {
                let rev = ev.revision();
                recent.applied = recent.applied.max(rev);
                match &**ev {
                    WatchEvent::Put { kv, prev } => {
                        let taken = match recent.objects.remove(&rev) {
                            Some((key, object)) if key == kv.key => Some(object),
                            _ => take_in_flight(&mut recent, kv),
                        };
                        let update = if prev.is_some() {
                            Update::Replace
                        } else {
                            Update::Create
                        };
                        decoded.push((rev, &kv.key, taken, update));
                    }
                    WatchEvent::Delete { prev, .. } => {
                        recent.objects.remove(&rev);
                        decoded.push((rev, &prev.key, None, Update::Delete));
                    }
                }
            }
        }
        for (slot, ev) in decoded.iter_mut().zip(events) {
            if let (None, WatchEvent::Put { kv, .. }) = (&slot.2, &**ev) {
                slot.2 = self.decode(kv);
            }
        }
        let strategy = &*self.strategy;
        let indexed = strategy.supports_field("spec.nodeName");
        let mut state = self.state.write();
        let mut last = state.revision;
        let mut dead: Vec<(u64, Option<String>)> = Vec::new();
        for (rev, key, obj, update) in decoded {
            last = rev;
            let event = if update == Update::Delete {
                let Some(prev) = state.objects.remove(key) else {
                    continue;
                };
                if indexed {
                    let node = strategy.node_name(&*prev).unwrap_or("").to_string();
                    if let Some(m) = state.by_node.get_mut(&node) {
                        m.remove(key);
                        if m.is_empty() {
                            state.by_node.remove(&node);
                        }
                    }
                }
                let mut last_state = (*prev).clone_boxed();
                last_state.metadata_mut().resource_version = Some(rev.to_string());
                CacheEvent {
                    revision: rev,
                    object: Arc::from(last_state),
                    prev: Some(prev),
                    deleted: true,
                }
            } else {
                let Some(obj) = obj else { continue };
                // An update replaces the cached object in place: no second
                // search of the map and no copy of the key.
                let slot = match update {
                    Update::Replace => state.objects.get_mut(key),
                    _ => None,
                };
                let prev = match slot {
                    Some(slot) => Some(std::mem::replace(slot, obj.clone())),
                    None => state.objects.insert(key.to_string(), obj.clone()),
                };
                if indexed {
                    let node = strategy.node_name(&*obj).unwrap_or("");
                    let prev_node = prev
                        .as_ref()
                        .map(|p| strategy.node_name(&**p).unwrap_or(""));
                    let in_place = prev_node == Some(node)
                        && state
                            .by_node
                            .get_mut(node)
                            .and_then(|m| m.get_mut(key))
                            .map(|slot| *slot = obj.clone())
                            .is_some();
                    if !in_place {
                        if let Some(prev_node) = prev_node
                            && let Some(m) = state.by_node.get_mut(prev_node)
                        {
                            m.remove(key);
                            if m.is_empty() {
                                state.by_node.remove(prev_node);
                            }
                        }
                        state
                            .by_node
                            .entry(node.to_string())
                            .or_default()
                            .insert(key.to_string(), obj.clone());
                    }
                }
                CacheEvent {
                    revision: rev,
                    object: obj,
                    prev,
                    deleted: false,
                }
            };
            let event = Arc::new(event);
            dispatch(&mut state, &event, strategy, &mut dead);
            state.history.push_back(event);
            while state.history.len() > self.config.history {
                if let Some(old) = state.history.pop_front() {
                    state.window_start = old.revision;
                }
            }
        }
        state.revision = state.revision.max(last);
        for (id, node) in dead.drain(..) {
            if state.watchers.remove(&id).is_none()
                && let Some(node) = node
                && let Some(ws) = state.node_watchers.get_mut(&node)
            {
                ws.remove(&id);
                if ws.is_empty() {
                    state.node_watchers.remove(&node);
                }
            }
        }
        let revision = state.revision;
        drop(state);
        self.revision.send_replace(revision);
    }

    fn send_bookmarks(&self) {
        let state = self.state.read();
        let rv = state.revision.to_string();
        let all = state
            .watchers
            .values()
            .chain(state.node_watchers.values().flat_map(HashMap::values));
        for w in all.filter(|w| w.bookmarks) {
            let _ = w.tx.try_send(Ok(ObjectEvent::Bookmark {
                resource_version: rv.clone(),
            }));
        }
    }

    /// Lists the kind from the store and decodes every object.
    async fn relist(&self, store: &dyn Store) -> Result<Revision, StoreError> {
        let mut items = Vec::new();
        let mut options = ketch_core::ListOptions::default();
        let revision;
        loop {
            let page = store.list(&self.prefix, &options).await?;
            for kv in &page.items {
                if let Some(obj) = self.decode(kv) {
                    items.push((kv.key.clone(), obj));
                }
            }
            match page.continue_token {
                Some(token) => {
                    options.revision = Some(page.revision);
                    options.continue_token = Some(token);
                }
                None => {
                    revision = page.revision;
                    break;
                }
            }
        }
        self.reset(items, revision);
        Ok(revision)
    }

    /// Feeds the cache from the store until the task is aborted.
    pub(crate) async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        let mut backoff = Duration::from_millis(10);
        'relist: loop {
            let mut from = match self.relist(&*store).await {
                Ok(rev) => rev + 1,
                Err(e) => {
                    tracing::warn!(resource = %self.plural, error = %e, "watch cache list failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue 'relist;
                }
            };
            backoff = Duration::from_millis(10);
            loop {
                let stream = match store.watch(&self.prefix, from).await {
                    Ok(s) => s,
                    Err(StoreError::Compacted { .. }) => continue 'relist,
                    Err(e) => {
                        tracing::warn!(resource = %self.plural, error = %e, "watch cache watch failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                let mut stream = stream.fuse();
                let mut events = Vec::new();
                while let Some(end) = next_batch(&mut stream, &mut events).await {
                    if let Some(last) = events.last() {
                        from = last.revision() + 1;
                    }
                    self.apply(&events);
                    events.clear();
                    match end {
                        Ok(()) => {}
                        Err(StoreError::WatchLagged { resume_revision }) => {
                            from = resume_revision;
                            break;
                        }
                        Err(StoreError::Compacted { .. }) => continue 'relist,
                        Err(e) => {
                            tracing::warn!(resource = %self.plural, error = %e, "watch cache watch ended; resuming");
                            tokio::time::sleep(backoff).await;
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Sends bookmarks periodically until the task is aborted.
    pub(crate) async fn run_bookmarks(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.bookmark_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.send_bookmarks();
        }
    }
}

/// What a store event does to the cached object of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Update {
    /// The key is new (as far as the store's event says).
    Create,
    /// The key had a value before.
    Replace,
    /// The key was deleted.
    Delete,
}

/// Takes the object of a write of this server whose encoded value `kv`
/// carries, leaving it for the writer.
fn take_in_flight(recent: &mut RecentWrites, kv: &ketch_core::KeyValue) -> Option<ArcObject> {
    let address = kv.value.as_ptr() as usize;
    match recent.in_flight.get(&address) {
        Some(InFlight::Waiting { len, .. }) if *len == kv.value.len() => {}
        _ => return None,
    }
    let Some(InFlight::Waiting { mut object, .. }) = recent.in_flight.remove(&address) else {
        return None;
    };
    let unversioned = object.metadata().resource_version.is_none();
    object.metadata_mut().resource_version = Some(kv.mod_revision.to_string());
    let object: ArcObject = Arc::from(object);
    recent
        .in_flight
        .insert(address, InFlight::Taken(object.clone(), unversioned));
    Some(object)
}

tokio::task_local! {
    /// The last write made inside [`capture_written`] on this task.
    static WRITTEN: RefCell<Option<WrittenEncoding>>;
}

/// An object this server wrote and the JSON the store holds for it, which
/// is the object's encoding without its `resourceVersion`.
pub(crate) struct WrittenEncoding {
    object: ArcObject,
    value: Bytes,
}

impl WrittenEncoding {
    /// The JSON encoding of `object` (`resourceVersion` included) made from
    /// the stored bytes, when `object` is the written object and its stored
    /// encoding has the usual shape; `None` means "encode it yourself".
    pub(crate) fn json_of(&self, object: &ArcObject) -> Option<Vec<u8>> {
        if !Arc::ptr_eq(&self.object, object) {
            return None;
        }
        let rv = object.metadata().resource_version.as_deref()?;
        with_resource_version(&self.value, rv)
    }
}

/// Runs `write` and returns its output along with the encoding of the last
/// object it wrote through a watch cache, so a caller can send the object
/// on without encoding it again.
pub(crate) async fn capture_written<F: Future>(write: F) -> (F::Output, Option<WrittenEncoding>) {
    WRITTEN
        .scope(RefCell::new(None), async move {
            let out = write.await;
            let written = WRITTEN.with(|slot| slot.borrow_mut().take());
            (out, written)
        })
        .await
}

/// `json`, an object encoded as `{"apiVersion":"..","kind":"..","metadata":{..`
/// without a `resourceVersion`, with `"resourceVersion":"<rv>"` added as the
/// first field of its metadata; `None` when `json` does not start that way
/// or `rv` is not a plain revision number.
fn with_resource_version(json: &[u8], rv: &str) -> Option<Vec<u8>> {
    /// The length of a JSON string without escapes at the start of `s`,
    /// its closing quote included.
    fn plain_string(s: &[u8]) -> Option<usize> {
        let end = s.iter().position(|&b| b == b'"' || b == b'\\')?;
        (s[end] == b'"').then_some(end + 1)
    }
    if rv.is_empty() || !rv.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut at = b"{\"apiVersion\":\"".len();
    if !json.starts_with(b"{\"apiVersion\":\"") {
        return None;
    }
    at += plain_string(&json[at..])?;
    const KIND: &[u8] = b",\"kind\":\"";
    if !json[at..].starts_with(KIND) {
        return None;
    }
    at += KIND.len();
    at += plain_string(&json[at..])?;
    const METADATA: &[u8] = b",\"metadata\":{";
    if !json[at..].starts_with(METADATA) {
        return None;
    }
    at += METADATA.len();
    let (head, tail) = json.split_at(at);
    let mut out = Vec::with_capacity(json.len() + rv.len() + 24);
    out.extend_from_slice(head);
    out.extend_from_slice(b"\"resourceVersion\":\"");
    out.extend_from_slice(rv.as_bytes());
    out.push(b'"');
    if !tail.starts_with(b"}") {
        out.push(b',');
    }
    out.extend_from_slice(tail);
    Some(out)
}

/// A write registered with [`WatchCache::expect_write`]: say how the store
/// answered with [`written`](Self::written) or [`refused`](Self::refused).
pub(crate) struct PendingWrite<'a> {
    cache: &'a WatchCache,
    key: &'a str,
    /// The encoded value; keeps the registered address unique while the
    /// write is in flight.
    value: Bytes,
    /// The address the write is registered under, until it is answered.
    address: Option<usize>,
    /// The object when it was not registered (an empty value).
    object: Option<Box<dyn Object>>,
}

impl PendingWrite<'_> {
    /// The store wrote the value at `revision`: the object at that revision
    /// (`resourceVersion` set), the very one the cache holds or will hold.
    /// `None` only if the registration was lost, which cannot happen.
    pub(crate) fn written(mut self, revision: Revision) -> Option<ArcObject> {
        let mut recent = self.cache.recent.lock();
        let (mut object, unversioned) = match (self.object.take(), self.address.take()) {
            (Some(object), _) => (object, false),
            (None, Some(address)) => match recent.in_flight.remove(&address)? {
                InFlight::Taken(object, unversioned) => {
                    drop(recent);
                    self.capture(&object, unversioned);
                    return Some(object);
                }
                InFlight::Waiting { object, .. } => {
                    let unversioned = object.metadata().resource_version.is_none();
                    (object, unversioned)
                }
            },
            (None, None) => return None,
        };
        object.metadata_mut().resource_version = Some(revision.to_string());
        let object: ArcObject = Arc::from(object);
        WatchCache::offer(&mut recent, self.key, revision, &object);
        drop(recent);
        self.capture(&object, unversioned);
        Some(object)
    }

    /// Hands the written object and its stored encoding to a caller inside
    /// [`capture_written`], when the encoding lacks only the
    /// `resourceVersion` the object now has.
    fn capture(&self, object: &ArcObject, unversioned: bool) {
        if !unversioned || self.value.is_empty() {
            return;
        }
        // Outside a capture scope there is nothing to do.
        let _ = WRITTEN.try_with(|slot| {
            *slot.borrow_mut() = Some(WrittenEncoding {
                object: object.clone(),
                value: self.value.clone(),
            });
        });
    }

    /// The store did not take the write: the object back as registered.
    /// `None` only if the registration was lost, which cannot happen.
    pub(crate) fn refused(mut self) -> Option<Box<dyn Object>> {
        if let Some(object) = self.object.take() {
            return Some(object);
        }
        let address = self.address.take()?;
        match self.cache.recent.lock().in_flight.remove(&address)? {
            InFlight::Waiting { object, .. } => Some(object),
            // A store that failed after writing (e.g. its log): the cache
            // applied the write already.
            InFlight::Taken(object, _) => {
                let mut object = object.clone_boxed();
                object.metadata_mut().resource_version = None;
                Some(object)
            }
        }
    }
}

impl Drop for PendingWrite<'_> {
    /// A write abandoned before its answer (the request was dropped) leaves
    /// nothing behind.
    fn drop(&mut self) {
        if let Some(address) = self.address.take() {
            self.cache.recent.lock().in_flight.remove(&address);
        }
    }
}

/// Most store events applied under one lock of the cache state.
const MAX_BATCH: usize = 1024;

/// Waits for the next store event, then takes every event already ready
/// (up to [`MAX_BATCH`]) into `events`, which the caller reuses: a busy
/// cache allocates no batch buffer per wake-up. `None` when the stream
/// ended with nothing read; else how the batch ended (an error follows the
/// events read before it).
async fn next_batch(
    stream: &mut futures::stream::Fuse<ketch_core::WatchStream>,
    events: &mut Vec<Arc<WatchEvent>>,
) -> Option<Result<(), StoreError>> {
    std::future::poll_fn(|cx| {
        loop {
            if events.len() >= MAX_BATCH {
                return Poll::Ready(Some(Ok(())));
            }
            match stream.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(ev))) => events.push(ev),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) if events.is_empty() => return Poll::Ready(None),
                Poll::Pending if events.is_empty() => return Poll::Pending,
                Poll::Ready(None) | Poll::Pending => return Poll::Ready(Some(Ok(()))),
            }
        }
    })
    .await
}

fn event_for(
    filter: &ObjectFilter,
    strategy: &dyn Strategy,
    ev: &CacheEvent,
) -> Option<ObjectEvent> {
    if ev.deleted {
        return filter
            .matches(&*ev.object, strategy)
            .then(|| ObjectEvent::Deleted(ev.object.clone()));
    }
    let now = filter.matches(&*ev.object, strategy);
    let before = ev
        .prev
        .as_ref()
        .is_some_and(|p| filter.matches(&**p, strategy));
    match (before, now) {
        (false, true) => Some(ObjectEvent::Added(ev.object.clone())),
        (true, true) => Some(ObjectEvent::Modified(ev.object.clone())),
        (true, false) => Some(ObjectEvent::Deleted(ev.object.clone())),
        (false, false) => None,
    }
}

/// Sends `ev` to `w` if it selects it; false when the watcher is gone or
/// overflowed and must be removed.
fn deliver(w: &Watcher, ev: &CacheEvent, strategy: &dyn Strategy) -> bool {
    if ev.revision <= w.after {
        return true;
    }
    let Some(event) = event_for(&w.filter, strategy, ev) else {
        return true;
    };
    match w.tx.try_send(Ok(event)) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            w.expired.store(true, Ordering::SeqCst);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn dispatch(
    state: &mut CacheState,
    ev: &CacheEvent,
    strategy: &dyn Strategy,
    dead: &mut Vec<(u64, Option<String>)>,
) {
    if !state.node_watchers.is_empty() {
        let now = strategy.node_name(&*ev.object).unwrap_or("");
        let before = ev
            .prev
            .as_ref()
            .map(|p| strategy.node_name(&**p).unwrap_or(""));
        let mut nodes = [Some(now), None];
        if let Some(b) = before
            && b != now
        {
            nodes[1] = Some(b);
        }
        for node in nodes.into_iter().flatten() {
            if let Some(ws) = state.node_watchers.get(node) {
                for (id, w) in ws {
                    if !deliver(w, ev, strategy) {
                        dead.push((*id, Some(node.to_string())));
                    }
                }
            }
        }
    }
    for (id, w) in &state.watchers {
        if !deliver(w, ev, strategy) {
            dead.push((*id, None));
        }
    }
}

struct WatchGuard {
    cache: std::sync::Weak<WatchCache>,
    id: u64,
    node: Option<String>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Some(cache) = self.cache.upgrade() {
            cache.remove_watcher(self.id, self.node.as_deref());
        }
    }
}

/// The stream of one watcher: its events, then `Expired` if it was ended
/// for falling behind or by a relist.
struct WatchEvents {
    rx: mpsc::Receiver<Result<ObjectEvent, ApiError>>,
    expired: Arc<AtomicBool>,
    guard: WatchGuard,
    done: bool,
}

impl Stream for WatchEvents {
    type Item = Result<ObjectEvent, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                self.done = true;
                let _ = &self.guard;
                if self.expired.load(Ordering::SeqCst) {
                    Poll::Ready(Some(Err(ApiError::Expired(String::from(
                        "the watch fell behind or its cache was relisted; relist and watch again",
                    )))))
                } else {
                    Poll::Ready(None)
                }
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin_kinds;
    use bytes::Bytes;
    use ketch_core::api::Pod;
    use ketch_core::{KeyValue, Object, ObjectMeta};

    fn pods_cache(history: usize) -> Arc<WatchCache> {
        let reg = builtin_kinds()
            .into_iter()
            .find(|k| k.resource().plural == "pods")
            .expect("pods are built in");
        WatchCache::new(
            "pods",
            "/registry/pods/",
            reg.info.clone(),
            reg.strategy.clone(),
            CacheConfig {
                history,
                watcher_buffer: 16,
                ..CacheConfig::default()
            },
        )
    }

    fn put(rev: Revision, name: &str, node: Option<&str>) -> Arc<WatchEvent> {
        let mut pod = Pod {
            metadata: ObjectMeta::named("default", name),
            ..Pod::default()
        };
        pod.spec.node_name = node.map(str::to_string);
        Arc::new(WatchEvent::Put {
            kv: KeyValue {
                key: format!("/registry/pods/default/{name}"),
                value: Bytes::from(Object::to_json(&pod).expect("encodes")),
                create_revision: rev,
                mod_revision: rev,
                version: 1,
            },
            prev: None,
        })
    }

    fn node_filter(node: &str) -> ObjectFilter {
        let strategy = pods_cache(1).strategy.clone();
        ObjectFilter::new(
            None,
            None,
            Some(&format!("spec.nodeName={node}")),
            &*strategy,
        )
        .expect("valid selector")
    }

    fn drain(stream: &mut ObjectEventStream) -> Vec<(String, String)> {
        let mut out = Vec::new();
        while let Some(Some(item)) = stream.next().now_or_never() {
            let ev = item.expect("no error");
            let (what, obj) = match ev {
                ObjectEvent::Added(o) => ("Added", o),
                ObjectEvent::Modified(o) => ("Modified", o),
                ObjectEvent::Deleted(o) => ("Deleted", o),
                ObjectEvent::Bookmark { .. } => continue,
            };
            out.push((what.to_string(), obj.metadata().name().to_string()));
        }
        out
    }

    use futures::FutureExt;

    #[tokio::test]
    async fn node_index_routes_events_and_dropped_watchers_leave() {
        let cache = pods_cache(100);
        cache.reset(Vec::new(), 1);
        let mut a = cache.watch(node_filter("a"), None, false).unwrap();
        let mut b = cache.watch(node_filter("b"), None, false).unwrap();
        let mut unbound = cache.watch(node_filter(""), None, false).unwrap();
        assert_eq!(cache.watcher_count(), 3);
        cache.apply(&[put(2, "p1", None), put(3, "p2", None)]);
        cache.apply(&[put(4, "p1", Some("a")), put(5, "p2", Some("b"))]);
        assert_eq!(drain(&mut a), [("Added".to_string(), "p1".to_string())]);
        assert_eq!(drain(&mut b), [("Added".to_string(), "p2".to_string())]);
        assert_eq!(
            drain(&mut unbound),
            [
                ("Added".to_string(), "p1".to_string()),
                ("Added".to_string(), "p2".to_string()),
                ("Deleted".to_string(), "p1".to_string()),
                ("Deleted".to_string(), "p2".to_string()),
            ]
        );
        let (on_a, rev) = cache.list("/registry/pods/", &node_filter("a"));
        assert_eq!(on_a.len(), 1);
        assert_eq!(rev, 5);
        drop(a);
        drop(unbound);
        assert_eq!(cache.watcher_count(), 1);
        drop(b);
        assert_eq!(cache.watcher_count(), 0);
    }

    #[tokio::test]
    async fn a_relist_ends_the_watchers_it_may_have_skipped_events_of() {
        let cache = pods_cache(100);
        // Synced on an empty store; watches wait for revisions it has not seen.
        cache.reset(Vec::new(), 0);
        let mut early = cache
            .watch(ObjectFilter::default(), Some(4), false)
            .unwrap();
        let mut on_node = cache.watch(node_filter("a"), Some(4), false).unwrap();
        let mut later = cache
            .watch(ObjectFilter::default(), Some(50), false)
            .unwrap();
        // The store compacted past the cache: it relists at 44, folding in
        // events 5..=44 the early watchers never got.
        cache.reset(vec![], 44);
        for stream in [&mut early, &mut on_node] {
            let ended = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("the watch ends instead of waiting for events it missed");
            assert!(
                matches!(ended, Some(Err(ApiError::Expired(_)))),
                "{ended:?}"
            );
        }
        assert_eq!(cache.watcher_count(), 1);
        cache.apply(&[put(51, "p51", None)]);
        assert_eq!(
            drain(&mut later),
            [("Added".to_string(), "p51".to_string())]
        );
    }

    #[tokio::test]
    async fn history_window_and_slow_watchers() {
        let cache = pods_cache(3);
        cache.reset(Vec::new(), 1);
        let mut slow = cache.watch(ObjectFilter::default(), None, false).unwrap();
        for rev in 2..=30 {
            cache.apply(&[put(rev, &format!("p{rev}"), None)]);
        }
        // The slow watcher overflowed its 16-event buffer and is ended with
        // Expired after what it had buffered.
        let mut events = 0;
        let mut ended = None;
        while let Some(item) = slow.next().await {
            match item {
                Ok(_) => events += 1,
                Err(e) => ended = Some(e),
            }
        }
        assert_eq!(events, 16);
        assert!(matches!(ended, Some(ApiError::Expired(_))), "{ended:?}");
        // Only the last 3 events can be replayed.
        assert!(matches!(
            cache.watch(ObjectFilter::default(), Some(26), false),
            Err(ApiError::Expired(_))
        ));
        let mut replay = cache
            .watch(ObjectFilter::default(), Some(27), false)
            .unwrap();
        let names: Vec<String> = drain(&mut replay).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["p28", "p29", "p30"]);
    }

    /// A write of this server and the store event that carries its value.
    fn written_pod(rev: Revision, name: &str, phase: &str) -> (Box<dyn Object>, Arc<WatchEvent>) {
        let mut pod = Pod {
            metadata: ObjectMeta::named("default", name),
            ..Pod::default()
        };
        pod.status.message = Some(phase.to_string());
        let value = Bytes::from(Object::to_json(&pod).expect("encodes"));
        let event = Arc::new(WatchEvent::Put {
            kv: KeyValue {
                key: format!("/registry/pods/default/{name}"),
                value,
                create_revision: 2,
                mod_revision: rev,
                version: 1,
            },
            prev: None,
        });
        (Box::new(pod), event)
    }

    fn value_of(event: &WatchEvent) -> &Bytes {
        match event {
            WatchEvent::Put { kv, .. } => &kv.value,
            WatchEvent::Delete { .. } => unreachable!("a put"),
        }
    }

    #[tokio::test]
    async fn cache_takes_a_pending_write_applied_before_the_writer_hears_back() {
        let cache = pods_cache(100);
        cache.reset(Vec::new(), 1);
        let key = "/registry/pods/default/p";
        let (pod, event) = written_pod(2, "p", "one");
        let pending = cache.expect_write(key, value_of(&event), pod);
        cache.apply(&[event]);
        let written = pending.written(2).expect("registered");
        let cached = cache.get(key).expect("cached");
        assert!(
            Arc::ptr_eq(&written, &cached),
            "the cache decoded its own copy"
        );
        assert_eq!(written.metadata().resource_version.as_deref(), Some("2"));
        assert!(cache.recent.lock().in_flight.is_empty());
    }

    #[tokio::test]
    async fn cache_takes_every_write_of_a_key_written_twice_before_it_caught_up() {
        let cache = pods_cache(100);
        cache.reset(Vec::new(), 1);
        let key = "/registry/pods/default/p";
        let (first, first_event) = written_pod(2, "p", "one");
        let (second, second_event) = written_pod(3, "p", "two");
        let first = cache
            .expect_write(key, value_of(&first_event), first)
            .written(2)
            .expect("registered");
        let second = cache
            .expect_write(key, value_of(&second_event), second)
            .written(3)
            .expect("registered");
        let mut watch = cache.watch(ObjectFilter::default(), None, false).unwrap();
        cache.apply(&[first_event, second_event]);
        let mut seen = Vec::new();
        while let Some(Some(item)) = watch.next().now_or_never() {
            match item.expect("no error") {
                ObjectEvent::Added(o) | ObjectEvent::Modified(o) => seen.push(o),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen.len(), 2);
        assert!(Arc::ptr_eq(&seen[0], &first));
        assert!(Arc::ptr_eq(&seen[1], &second));
        let recent = cache.recent.lock();
        assert!(recent.objects.is_empty() && recent.in_flight.is_empty());
    }

    #[tokio::test]
    async fn a_refused_write_comes_back_and_leaves_nothing_registered() {
        let cache = pods_cache(100);
        cache.reset(Vec::new(), 1);
        let (pod, event) = written_pod(2, "p", "one");
        let pending = cache.expect_write("/registry/pods/default/p", value_of(&event), pod);
        let back = pending.refused().expect("registered");
        assert_eq!(back.metadata().resource_version, None);
        assert_eq!(back.metadata().name(), "p");
        // An abandoned write is forgotten too.
        let (pod, event) = written_pod(3, "p", "two");
        drop(cache.expect_write("/registry/pods/default/p", value_of(&event), pod));
        assert!(cache.recent.lock().in_flight.is_empty());
    }

    /// The JSON a capture gives for `written`, decoded back.
    fn captured_json(written: &ArcObject, encoding: Option<WrittenEncoding>) -> Pod {
        let json = encoding
            .expect("captured")
            .json_of(written)
            .expect("spliced");
        serde_json::from_slice(&json).expect("valid JSON")
    }

    #[tokio::test]
    async fn a_captured_write_gives_the_stored_json_with_the_resource_version() {
        let cache = pods_cache(100);
        cache.reset(Vec::new(), 1);
        let key = "/registry/pods/default/p";
        // Answered before the cache applied the write...
        let (pod, event) = written_pod(2, "p", "one");
        let (written, encoding) =
            capture_written(async { cache.expect_write(key, value_of(&event), pod).written(2) })
                .await;
        let written = written.expect("registered");
        let back = captured_json(&written, encoding);
        assert!(written.eq_object(&back), "{back:?}");
        assert_eq!(back.metadata.resource_version.as_deref(), Some("2"));
        // ...and after.
        let (pod, event) = written_pod(3, "p", "two");
        let (written, encoding) = capture_written(async {
            let pending = cache.expect_write(key, value_of(&event), pod);
            cache.apply(std::slice::from_ref(&event));
            pending.written(3)
        })
        .await;
        let written = written.expect("registered");
        let back = captured_json(&written, encoding);
        assert!(written.eq_object(&back), "{back:?}");
        assert_eq!(back.status.message.as_deref(), Some("two"));
    }

    #[tokio::test]
    async fn a_capture_fits_only_the_written_object() {
        let cache = pods_cache(100);
        cache.reset(Vec::new(), 1);
        let key = "/registry/pods/default/p";
        let (pod, event) = written_pod(2, "p", "one");
        let (written, encoding) =
            capture_written(async { cache.expect_write(key, value_of(&event), pod).written(2) })
                .await;
        let encoding = encoding.expect("captured");
        let other: ArcObject = Arc::from(written.expect("registered").clone_boxed());
        assert!(encoding.json_of(&other).is_none());
        // An object encoded with a resourceVersion is not captured.
        let (mut pod, event) = written_pod(3, "p", "two");
        pod.metadata_mut().resource_version = Some("2".into());
        let (_, encoding) =
            capture_written(async { cache.expect_write(key, value_of(&event), pod).written(3) })
                .await;
        assert!(encoding.is_none());
        // Writes outside a capture work as before.
        let (pod, event) = written_pod(4, "p", "three");
        assert!(
            cache
                .expect_write(key, value_of(&event), pod)
                .written(4)
                .is_some()
        );
    }

    #[test]
    fn the_resource_version_goes_first_into_the_metadata() {
        let json = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{}}"#;
        assert_eq!(
            with_resource_version(json, "17").as_deref(),
            Some(&br#"{"apiVersion":"v1","kind":"Pod","metadata":{"resourceVersion":"17","name":"a"},"spec":{}}"#[..])
        );
        let empty = br#"{"apiVersion":"v1","kind":"Pod","metadata":{}}"#;
        assert_eq!(
            with_resource_version(empty, "3").as_deref(),
            Some(&br#"{"apiVersion":"v1","kind":"Pod","metadata":{"resourceVersion":"3"}}"#[..])
        );
        // Anything unusual is left to a fresh encoding.
        assert!(with_resource_version(json, "1\"").is_none());
        assert!(with_resource_version(json, "").is_none());
        let escaped = br#"{"apiVersion":"v\"1","kind":"Pod","metadata":{}}"#;
        assert!(with_resource_version(escaped, "3").is_none());
        let reordered = br#"{"kind":"Pod","apiVersion":"v1","metadata":{}}"#;
        assert!(with_resource_version(reordered, "3").is_none());
        assert!(with_resource_version(b"{\"apiVersion\":\"v1", "3").is_none());
    }
}
