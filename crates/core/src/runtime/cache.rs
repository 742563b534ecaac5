//! The local object cache of an informer: one [`Writer`] applies list and
//! watch results, any number of [`CacheReader`]s read shared [`Arc`]s, optional
//! [`Indexer`]s answer "which objects have this value" without a scan, and
//! listeners get every change in order.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{mpsc, watch};

use crate::api::Pod;
use crate::{ObjectEvent, ObjectMeta, Resource};

/// Errors of cache reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// No indexer with this name was added to the cache.
    #[error("no index named {0:?}")]
    UnknownIndex(String),
}

/// The cache key of an object: `namespace/name`, or `name` for cluster-scoped
/// objects (Kubernetes' `MetaNamespaceKeyFunc`).
///
/// ```
/// use ketch_core::{ObjectMeta, runtime::object_key};
/// assert_eq!(object_key(&ObjectMeta::named("default", "web")), "default/web");
/// assert_eq!(object_key(&ObjectMeta::cluster_named("n1")), "n1");
/// ```
pub fn object_key(meta: &ObjectMeta) -> String {
    key_of(meta.namespace.as_deref(), meta.name())
}

fn key_of(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => {
            let mut key = String::with_capacity(ns.len() + 1 + name.len());
            key.push_str(ns);
            key.push('/');
            key.push_str(name);
            key
        }
        _ => name.to_string(),
    }
}

/// True when `candidate` is a later resource version than `current`
/// (numeric versions compare as numbers; anything else counts as newer).
pub(crate) fn is_newer(current: &str, candidate: &str) -> bool {
    match (current.parse::<u64>(), candidate.parse::<u64>()) {
        (Ok(cur), Ok(cand)) => cand > cur,
        _ => current != candidate,
    }
}

type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// A named function from an object to the index values it is found under.
///
/// ```
/// use ketch_core::{api::Pod, runtime::Indexer};
/// let by_app = Indexer::<Pod>::new("app", |pod| {
///     pod.metadata.labels.get("app").cloned().into_iter().collect()
/// });
/// assert_eq!(by_app.name(), "app");
/// ```
pub struct Indexer<K> {
    name: String,
    func: IndexFn<K>,
}

impl<K> Clone for Indexer<K> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            func: self.func.clone(),
        }
    }
}

impl<K> fmt::Debug for Indexer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Indexer").field("name", &self.name).finish()
    }
}

/// Name of the index [`Indexer::by_namespace`] builds.
pub const NAMESPACE_INDEX: &str = "namespace";
/// Name of the index [`Indexer::pods_by_node_name`] builds.
pub const NODE_NAME_INDEX: &str = "spec.nodeName";

impl<K> Indexer<K> {
    /// An indexer named `name` computing each object's index values with `func`.
    ///
    /// ```
    /// use ketch_core::{api::Node, runtime::Indexer};
    /// let unschedulable = Indexer::<Node>::new("unschedulable", |n| {
    ///     vec![n.spec.unschedulable.unwrap_or(false).to_string()]
    /// });
    /// assert_eq!(unschedulable.name(), "unschedulable");
    /// ```
    pub fn new(name: &str, func: impl Fn(&K) -> Vec<String> + Send + Sync + 'static) -> Self {
        Self {
            name: name.to_string(),
            func: Arc::new(func),
        }
    }

    /// The index name used with [`CacheReader::by_index`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<K: Resource> Indexer<K> {
    /// Indexes objects by namespace, under [`NAMESPACE_INDEX`].
    ///
    /// ```
    /// use ketch_core::{api::Pod, runtime::{Indexer, NAMESPACE_INDEX}};
    /// assert_eq!(Indexer::<Pod>::by_namespace().name(), NAMESPACE_INDEX);
    /// ```
    pub fn by_namespace() -> Self {
        Self::new(NAMESPACE_INDEX, |k: &K| {
            k.meta().namespace.iter().cloned().collect()
        })
    }
}

impl Indexer<Pod> {
    /// Indexes pods by `spec.nodeName` (unbound pods under `""`), under
    /// [`NODE_NAME_INDEX`].
    ///
    /// ```
    /// use ketch_core::{api::Pod, runtime::{Indexer, NODE_NAME_INDEX}};
    /// assert_eq!(Indexer::pods_by_node_name().name(), NODE_NAME_INDEX);
    /// ```
    pub fn pods_by_node_name() -> Self {
        Self::new(NODE_NAME_INDEX, |pod: &Pod| {
            vec![pod.spec.node_name.clone().unwrap_or_default()]
        })
    }
}

struct Index<K> {
    func: IndexFn<K>,
    entries: HashMap<String, HashMap<String, Arc<K>>>,
}

impl<K> Index<K> {
    fn insert(&mut self, key: &str, obj: &Arc<K>) {
        for value in (self.func)(obj) {
            self.entries
                .entry(value)
                .or_default()
                .insert(key.to_string(), obj.clone());
        }
    }

    fn remove(&mut self, key: &str, obj: &K) {
        for value in (self.func)(obj) {
            if let Some(bucket) = self.entries.get_mut(&value) {
                bucket.remove(key);
                if bucket.is_empty() {
                    self.entries.remove(&value);
                }
            }
        }
    }
}

struct State<K> {
    objects: HashMap<String, Arc<K>>,
    indices: HashMap<String, Index<K>>,
    resource_version: String,
}

impl<K> State<K> {
    /// Inserts or replaces; returns the previous object.
    fn upsert(&mut self, key: String, obj: Arc<K>) -> Option<Arc<K>> {
        let prev = self.objects.insert(key.clone(), obj.clone());
        for index in self.indices.values_mut() {
            if let Some(prev) = &prev {
                index.remove(&key, prev);
            }
            index.insert(&key, &obj);
        }
        prev
    }

    fn remove(&mut self, key: &str) -> Option<Arc<K>> {
        let prev = self.objects.remove(key)?;
        for index in self.indices.values_mut() {
            index.remove(key, &prev);
        }
        Some(prev)
    }
}

type Handler<K> = Box<dyn FnMut(&ObjectEvent<Arc<K>>) + Send>;

enum Listener<K> {
    Channel(mpsc::UnboundedSender<ObjectEvent<Arc<K>>>),
    Handler(Handler<K>),
}

impl<K> Listener<K> {
    /// Delivers an event; false when the listener is gone.
    fn deliver(&mut self, event: &ObjectEvent<Arc<K>>) -> bool {
        match self {
            Listener::Channel(tx) => tx.send(event.clone()).is_ok(),
            Listener::Handler(f) => {
                f(event);
                true
            }
        }
    }
}

struct Listeners<K> {
    list: Vec<Listener<K>>,
}

impl<K> Listeners<K> {
    fn dispatch(&mut self, events: &[ObjectEvent<Arc<K>>]) {
        if self.list.is_empty() || events.is_empty() {
            return;
        }
        self.list
            .retain_mut(|l| events.iter().all(|event| l.deliver(event)));
    }
}

pub(crate) struct Shared<K> {
    state: RwLock<State<K>>,
    listeners: Mutex<Listeners<K>>,
    synced: watch::Sender<bool>,
}

impl<K> Shared<K> {
    fn new() -> Self {
        Self {
            state: RwLock::new(State {
                objects: HashMap::new(),
                indices: HashMap::new(),
                resource_version: String::new(),
            }),
            listeners: Mutex::new(Listeners { list: Vec::new() }),
            synced: watch::channel(false).0,
        }
    }

    pub(crate) fn synced(&self) -> &watch::Sender<bool> {
        &self.synced
    }

    pub(crate) fn add_indexer(&self, indexer: Indexer<K>) {
        let mut state = self.state.write();
        let mut index = Index {
            func: indexer.func,
            entries: HashMap::new(),
        };
        for (key, obj) in &state.objects {
            index.insert(key, obj);
        }
        state.indices.insert(indexer.name, index);
    }

    fn register(&self, mut listener: Listener<K>) {
        // Holding the listener lock keeps writers out between the replay and
        // the registration, so the listener sees every change exactly once.
        let mut listeners = self.listeners.lock();
        let replay: Vec<ObjectEvent<Arc<K>>> = {
            let state = self.state.read();
            let mut events: Vec<_> = state
                .objects
                .values()
                .map(|o| ObjectEvent::Added(o.clone()))
                .collect();
            if *self.synced.borrow() {
                events.push(ObjectEvent::Bookmark {
                    resource_version: state.resource_version.clone(),
                });
            }
            events
        };
        if replay.iter().all(|e| listener.deliver(e)) {
            listeners.list.push(listener);
        }
    }

    pub(crate) fn subscribe(&self) -> EventStream<K> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.register(Listener::Channel(tx));
        EventStream { rx }
    }

    pub(crate) fn add_handler(&self, f: impl FnMut(&ObjectEvent<Arc<K>>) + Send + 'static) {
        self.register(Listener::Handler(Box::new(f)));
    }
}

/// A stream of typed changes of a cache, in the order the cache applied them.
///
/// It starts with an `Added` for every object already cached, then a
/// [`ObjectEvent::Bookmark`] if the cache has synced; after that come live
/// changes, with a `Bookmark` at the end of every (re)list. It never ends
/// while the cache's writer lives, and it buffers without bound, so a
/// consumer must keep reading.
pub struct EventStream<K> {
    rx: mpsc::UnboundedReceiver<ObjectEvent<Arc<K>>>,
}

impl<K> fmt::Debug for EventStream<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.rx.len())
            .finish()
    }
}

impl<K> EventStream<K> {
    /// Receives the next event; `None` once the writer is gone.
    pub async fn recv(&mut self) -> Option<ObjectEvent<Arc<K>>> {
        self.rx.recv().await
    }

    /// Receives an event if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<ObjectEvent<Arc<K>>> {
        self.rx.try_recv().ok()
    }

    /// Events buffered and not yet received.
    pub fn buffered(&self) -> usize {
        self.rx.len()
    }
}

impl<K> futures::Stream for EventStream<K> {
    type Item = ObjectEvent<Arc<K>>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

/// A read handle on a cache: cheap to clone, readable from any thread, and
/// returning shared [`Arc`]s (no object is copied).
///
/// ```
/// use std::sync::Arc;
/// use ketch_core::{ObjectEvent, ObjectMeta, api::Pod, runtime::Writer};
/// let mut writer = Writer::<Pod>::new();
/// let reader = writer.reader();
/// let pod = Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() };
/// writer.apply(ObjectEvent::Added(Arc::new(pod)));
/// assert_eq!(reader.get(Some("default"), "web").unwrap().metadata.name(), "web");
/// assert_eq!(reader.len(), 1);
/// ```
pub struct CacheReader<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for CacheReader<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K> fmt::Debug for CacheReader<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.read();
        f.debug_struct("CacheReader")
            .field("objects", &state.objects.len())
            .field("resource_version", &state.resource_version)
            .finish()
    }
}

impl<K> CacheReader<K> {
    pub(crate) fn from_shared(shared: Arc<Shared<K>>) -> Self {
        Self { shared }
    }

    /// The object `name` in `namespace` (`None` for cluster-scoped kinds).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.get_by_key(&key_of(namespace, name))
    }

    /// The object under a key made by [`object_key`].
    pub fn get_by_key(&self, key: &str) -> Option<Arc<K>> {
        self.shared.state.read().objects.get(key).cloned()
    }

    /// Every cached object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.shared.state.read().objects.values().cloned().collect()
    }

    /// Calls `f` on every cached object under one read lock, without
    /// collecting them; `f` must not block.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ketch_core::{ObjectEvent, ObjectMeta, api::Node, runtime::Writer};
    /// let mut writer = Writer::<Node>::new();
    /// writer.apply(ObjectEvent::Added(Arc::new(Node { metadata: ObjectMeta::cluster_named("n1"), ..Node::default() })));
    /// let mut names = Vec::new();
    /// writer.reader().for_each(|n| names.push(n.metadata.name().to_string()));
    /// assert_eq!(names, ["n1"]);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&Arc<K>)) {
        for obj in self.shared.state.read().objects.values() {
            f(obj);
        }
    }

    /// The objects found under `value` in the index `index`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ketch_core::{ObjectEvent, ObjectMeta, api::{Pod, PodSpec}, runtime::{Indexer, Writer, NODE_NAME_INDEX}};
    /// let mut writer = Writer::<Pod>::new();
    /// writer.add_indexer(Indexer::pods_by_node_name());
    /// let bound = Pod {
    ///     metadata: ObjectMeta::named("default", "a"),
    ///     spec: PodSpec { node_name: Some("n1".into()), ..PodSpec::default() },
    ///     ..Pod::default()
    /// };
    /// writer.apply(ObjectEvent::Added(Arc::new(bound)));
    /// let reader = writer.reader();
    /// assert_eq!(reader.by_index(NODE_NAME_INDEX, "n1").unwrap().len(), 1);
    /// assert!(reader.by_index(NODE_NAME_INDEX, "n2").unwrap().is_empty());
    /// assert!(reader.by_index("nope", "x").is_err());
    /// ```
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, CacheError> {
        let state = self.shared.state.read();
        let idx = state
            .indices
            .get(index)
            .ok_or_else(|| CacheError::UnknownIndex(index.to_string()))?;
        Ok(idx
            .entries
            .get(value)
            .map(|bucket| bucket.values().cloned().collect())
            .unwrap_or_default())
    }

    /// How many objects are under `value` in the index `index`.
    pub fn index_count(&self, index: &str, value: &str) -> Result<usize, CacheError> {
        let state = self.shared.state.read();
        let idx = state
            .indices
            .get(index)
            .ok_or_else(|| CacheError::UnknownIndex(index.to_string()))?;
        Ok(idx.entries.get(value).map_or(0, HashMap::len))
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.shared.state.read().objects.len()
    }

    /// True when no object is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resource version the cache has reached (`""` before the first list).
    pub fn resource_version(&self) -> String {
        self.shared.state.read().resource_version.clone()
    }

    /// True once the first list has been applied.
    pub fn has_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits until the first list has been applied.
    pub async fn wait_synced(&self) {
        let mut rx = self.shared.synced.subscribe();
        // The sender lives in `shared`, which `self` keeps alive, so the
        // channel cannot close while we wait.
        let _ = rx.wait_for(|synced| *synced).await;
    }
}

/// The single writer of a cache. Not `Clone`: exactly one task (normally a
/// reflector) applies changes; readers come from [`Writer::reader`].
///
/// ```
/// use std::sync::Arc;
/// use ketch_core::{ObjectEvent, ObjectMeta, api::Pod, runtime::Writer};
/// let mut writer = Writer::<Pod>::new();
/// let pod = Arc::new(Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() });
/// writer.replace(vec![pod.clone()], "7".into());
/// assert!(writer.reader().has_synced());
/// writer.apply(ObjectEvent::Deleted(pod));
/// assert!(writer.reader().is_empty());
/// ```
pub struct Writer<K> {
    shared: Arc<Shared<K>>,
}

impl<K: Resource> Default for Writer<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> fmt::Debug for Writer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl<K: Resource> Writer<K> {
    /// An empty, unsynced cache.
    pub fn new() -> Self {
        Self {
            shared: Arc::new(Shared::new()),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<K>> {
        &self.shared
    }

    /// A read handle.
    pub fn reader(&self) -> CacheReader<K> {
        CacheReader {
            shared: self.shared.clone(),
        }
    }

    /// Adds (or replaces) an index, built at once over the cached objects.
    pub fn add_indexer(&mut self, indexer: Indexer<K>) {
        self.shared.add_indexer(indexer);
    }

    /// A stream of changes; see [`EventStream`].
    pub fn subscribe(&self) -> EventStream<K> {
        self.shared.subscribe()
    }

    /// Applies one watch event and passes it on to listeners.
    ///
    /// `Added` of a cached key is passed on as `Modified`, `Modified` of an
    /// unknown key as `Added`, and `Deleted` of an unknown key is dropped, so
    /// listeners always see a history consistent with the cache. A `Bookmark`
    /// only advances the resource version.
    pub fn apply(&mut self, event: ObjectEvent<Arc<K>>) {
        let mut listeners = self.shared.listeners.lock();
        let out = {
            let mut state = self.shared.state.write();
            match event {
                ObjectEvent::Added(obj) | ObjectEvent::Modified(obj) => {
                    if let Some(rv) = &obj.meta().resource_version
                        && is_newer(&state.resource_version, rv)
                    {
                        state.resource_version.clone_from(rv);
                    }
                    let key = object_key(obj.meta());
                    match state.upsert(key, obj.clone()) {
                        Some(_) => ObjectEvent::Modified(obj),
                        None => ObjectEvent::Added(obj),
                    }
                }
                ObjectEvent::Deleted(obj) => {
                    if let Some(rv) = &obj.meta().resource_version
                        && is_newer(&state.resource_version, rv)
                    {
                        state.resource_version.clone_from(rv);
                    }
                    if state.remove(&object_key(obj.meta())).is_none() {
                        return;
                    }
                    ObjectEvent::Deleted(obj)
                }
                ObjectEvent::Bookmark { resource_version } => {
                    if is_newer(&state.resource_version, &resource_version) {
                        state.resource_version = resource_version;
                    }
                    return;
                }
            }
        };
        listeners.dispatch(std::slice::from_ref(&out));
    }

    /// Replaces the whole content with a fresh list read at
    /// `resource_version`, marks the cache synced, and passes the difference
    /// on to listeners (`Deleted` for objects gone, `Added` for new ones,
    /// `Modified` for changed resource versions) followed by a `Bookmark`.
    pub fn replace(&mut self, items: Vec<Arc<K>>, resource_version: String) {
        let mut listeners = self.shared.listeners.lock();
        let mut events = Vec::new();
        {
            let mut state = self.shared.state.write();
            let mut fresh: HashMap<String, Arc<K>> = HashMap::with_capacity(items.len());
            for obj in items {
                fresh.insert(object_key(obj.meta()), obj);
            }
            let gone: Vec<String> = state
                .objects
                .keys()
                .filter(|k| !fresh.contains_key(*k))
                .cloned()
                .collect();
            for key in gone {
                if let Some(prev) = state.remove(&key) {
                    events.push(ObjectEvent::Deleted(prev));
                }
            }
            for (key, obj) in fresh {
                let unchanged = state.objects.get(&key).is_some_and(|prev| {
                    prev.meta().resource_version.is_some()
                        && prev.meta().resource_version == obj.meta().resource_version
                });
                if unchanged {
                    continue;
                }
                match state.upsert(key, obj.clone()) {
                    Some(_) => events.push(ObjectEvent::Modified(obj)),
                    None => events.push(ObjectEvent::Added(obj)),
                }
            }
            state.resource_version.clone_from(&resource_version);
        }
        self.shared.synced.send_replace(true);
        events.push(ObjectEvent::Bookmark { resource_version });
        listeners.dispatch(&events);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PodSpec;

    fn pod(ns: &str, name: &str, rv: u32, node: Option<&str>) -> Arc<Pod> {
        let mut metadata = ObjectMeta::named(ns, name);
        metadata.resource_version = Some(rv.to_string());
        Arc::new(Pod {
            metadata,
            spec: PodSpec {
                node_name: node.map(str::to_string),
                ..PodSpec::default()
            },
            ..Pod::default()
        })
    }

    fn names(events: &[ObjectEvent<Arc<Pod>>]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                ObjectEvent::Added(p) => format!("+{}", p.metadata.name()),
                ObjectEvent::Modified(p) => format!("~{}", p.metadata.name()),
                ObjectEvent::Deleted(p) => format!("-{}", p.metadata.name()),
                ObjectEvent::Bookmark { resource_version } => format!("@{resource_version}"),
            })
            .collect()
    }

    fn drain(stream: &mut EventStream<Pod>) -> Vec<ObjectEvent<Arc<Pod>>> {
        std::iter::from_fn(|| stream.try_recv()).collect()
    }

    #[test]
    fn index_follows_updates_and_deletes() {
        let mut w = Writer::<Pod>::new();
        w.add_indexer(Indexer::pods_by_node_name());
        w.add_indexer(Indexer::by_namespace());
        let r = w.reader();
        w.apply(ObjectEvent::Added(pod("a", "p1", 1, None)));
        w.apply(ObjectEvent::Added(pod("b", "p2", 2, None)));
        assert_eq!(r.index_count(NODE_NAME_INDEX, ""), Ok(2));
        w.apply(ObjectEvent::Modified(pod("a", "p1", 3, Some("n1"))));
        assert_eq!(r.index_count(NODE_NAME_INDEX, ""), Ok(1));
        assert_eq!(r.index_count(NODE_NAME_INDEX, "n1"), Ok(1));
        assert_eq!(r.index_count(NAMESPACE_INDEX, "a"), Ok(1));
        w.apply(ObjectEvent::Deleted(pod("a", "p1", 4, Some("n1"))));
        assert_eq!(r.index_count(NODE_NAME_INDEX, "n1"), Ok(0));
        assert_eq!(r.index_count(NAMESPACE_INDEX, "a"), Ok(0));
        assert_eq!(r.resource_version(), "4");
        assert_eq!(
            r.by_index("missing", "x"),
            Err(CacheError::UnknownIndex("missing".into()))
        );
    }

    #[test]
    fn indexer_added_late_covers_existing_objects() {
        let mut w = Writer::<Pod>::new();
        w.apply(ObjectEvent::Added(pod("a", "p1", 1, Some("n1"))));
        w.add_indexer(Indexer::pods_by_node_name());
        assert_eq!(w.reader().by_index(NODE_NAME_INDEX, "n1").unwrap().len(), 1);
    }

    #[test]
    fn replace_passes_on_the_difference() {
        let mut w = Writer::<Pod>::new();
        w.replace(
            vec![
                pod("a", "keep", 1, None),
                pod("a", "change", 2, None),
                pod("a", "drop", 3, None),
            ],
            "3".into(),
        );
        let mut s = w.subscribe();
        assert_eq!(
            names(&drain(&mut s)).len(),
            4,
            "replay of three objects and a bookmark"
        );
        w.replace(
            vec![
                pod("a", "keep", 1, None),
                pod("a", "change", 5, None),
                pod("a", "new", 6, None),
            ],
            "9".into(),
        );
        let mut got = names(&drain(&mut s));
        let bookmark = got.pop();
        got.sort();
        assert_eq!(got, vec!["+new", "-drop", "~change"]);
        assert_eq!(bookmark.as_deref(), Some("@9"));
        assert_eq!(w.reader().len(), 3);
        assert_eq!(w.reader().resource_version(), "9");
    }

    #[test]
    fn subscribers_see_a_history_consistent_with_the_cache() {
        let mut w = Writer::<Pod>::new();
        let mut early = w.subscribe();
        w.apply(ObjectEvent::Modified(pod("a", "p", 1, None)));
        w.apply(ObjectEvent::Added(pod("a", "p", 2, None)));
        w.apply(ObjectEvent::Deleted(pod("a", "ghost", 3, None)));
        w.apply(ObjectEvent::Bookmark {
            resource_version: "4".into(),
        });
        assert_eq!(names(&drain(&mut early)), vec!["+p", "~p"]);
        let mut late = w.subscribe();
        assert_eq!(
            names(&drain(&mut late)),
            vec!["+p"],
            "not synced: no bookmark in the replay"
        );
        assert_eq!(w.reader().resource_version(), "4");
    }

    #[test]
    fn handlers_run_in_order_and_may_read_the_cache() {
        let mut w = Writer::<Pod>::new();
        let reader = w.reader();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        w.shared().add_handler(move |e: &ObjectEvent<Arc<Pod>>| {
            sink.lock()
                .push((names(std::slice::from_ref(e))[0].clone(), reader.len()));
        });
        w.apply(ObjectEvent::Added(pod("a", "p", 1, None)));
        w.apply(ObjectEvent::Deleted(pod("a", "p", 2, None)));
        assert_eq!(
            *seen.lock(),
            vec![("+p".to_string(), 1), ("-p".to_string(), 0)]
        );
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let mut w = Writer::<Pod>::new();
        let s = w.subscribe();
        drop(s);
        w.apply(ObjectEvent::Added(pod("a", "p", 1, None)));
        assert!(w.shared().listeners.lock().list.is_empty());
    }

    #[tokio::test]
    async fn wait_synced_returns_after_the_first_replace() {
        let mut w = Writer::<Pod>::new();
        let r = w.reader();
        assert!(!r.has_synced());
        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.wait_synced().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        w.replace(Vec::new(), "1".into());
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("synced in time")
            .expect("task ran");
    }
}
