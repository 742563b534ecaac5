//! The [`Informer`]: a reflector task plus the cache it fills, with readers,
//! indexers, event subscriptions and a synced signal.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio::task::AbortHandle;

use super::cache::{CacheReader, EventStream, Indexer, Shared, Writer};
use super::reflector::{Counters, Reflector, ReflectorConfig, ReflectorStats};
use crate::{Api, Object, ObjectEvent, Resource};

/// Aborts the reflector task when the last informer handle goes away.
#[derive(Debug)]
pub(crate) struct TaskGuard(AbortHandle);

impl TaskGuard {
    pub(crate) fn stop(&self) {
        self.0.abort();
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A cache of one kind kept current by list + watch in a background task.
///
/// Handles are cheap to clone; the task stops when the last handle is dropped
/// or [`Informer::stop`] is called (readers then keep the last state).
///
/// ```no_run
/// # async fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
/// use ketch_core::{Api, ObjectEvent, api::Pod};
/// use ketch_core::runtime::{Indexer, Informer, ReflectorConfig, NODE_NAME_INDEX};
/// let informer = Informer::spawn(Api::<Pod>::all(client), ReflectorConfig::default());
/// informer.add_indexer(Indexer::pods_by_node_name());
/// let mut events = informer.subscribe();
/// informer.wait_synced().await;
/// let on_n1 = informer.reader().by_index(NODE_NAME_INDEX, "n1").unwrap();
/// while let Some(event) = events.recv().await {
///     if let ObjectEvent::Added(pod) = event {
///         println!("pod {}", pod.metadata.name());
///     }
/// }
/// # }
/// ```
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
    counters: Arc<Counters>,
    task: Arc<TaskGuard>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            counters: self.counters.clone(),
            task: self.task.clone(),
        }
    }
}

impl<K> fmt::Debug for Informer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Informer")
            .field("stats", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl<K> Informer<K>
where
    K: Resource + Object + DeserializeOwned,
{
    /// Starts listing and watching through `api` (its namespace, or all) in
    /// a new tokio task.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub fn spawn(api: Api<K>, config: ReflectorConfig) -> Self {
        Self::spawn_with_indexers(api, config, Vec::new())
    }

    /// Like [`Informer::spawn`], with indexers in place before the first list.
    ///
    /// ```no_run
    /// # async fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// use ketch_core::{Api, api::Pod};
    /// use ketch_core::runtime::{Indexer, Informer, ReflectorConfig};
    /// let informer = Informer::spawn_with_indexers(
    ///     Api::<Pod>::all(client),
    ///     ReflectorConfig::default(),
    ///     vec![Indexer::pods_by_node_name(), Indexer::by_namespace()],
    /// );
    /// # }
    /// ```
    pub fn spawn_with_indexers(
        api: Api<K>,
        config: ReflectorConfig,
        indexers: Vec<Indexer<K>>,
    ) -> Self {
        let mut writer = Writer::new();
        for indexer in indexers {
            writer.add_indexer(indexer);
        }
        let shared = writer.shared().clone();
        let counters = Arc::new(Counters::default());
        let reflector = Reflector::new(api, config, writer, counters.clone());
        let handle = tokio::spawn(reflector.run());
        Self {
            shared,
            counters,
            task: Arc::new(TaskGuard(handle.abort_handle())),
        }
    }
}

impl<K> Informer<K> {
    /// A read handle on the cache.
    pub fn reader(&self) -> CacheReader<K> {
        CacheReader::from_shared(self.shared.clone())
    }

    /// A stream of changes, starting with the cached objects; see
    /// [`EventStream`].
    pub fn subscribe(&self) -> EventStream<K> {
        self.shared.subscribe()
    }

    /// Registers a callback run on the reflector task for every change, after
    /// a replay of the cached objects (as [`Informer::subscribe`]). It must be
    /// quick and must not block; it may read the cache, and must not
    /// subscribe or add handlers itself.
    ///
    /// ```no_run
    /// # fn demo(informer: ketch_core::runtime::Informer<ketch_core::api::Node>) {
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// use ketch_core::ObjectEvent;
    /// let added = Arc::new(AtomicUsize::new(0));
    /// let counter = added.clone();
    /// informer.add_handler(move |event| {
    ///     if let ObjectEvent::Added(_) = event {
    ///         counter.fetch_add(1, Ordering::Relaxed);
    ///     }
    /// });
    /// # }
    /// ```
    pub fn add_handler(&self, handler: impl FnMut(&ObjectEvent<Arc<K>>) + Send + 'static) {
        self.shared.add_handler(handler);
    }

    /// Adds (or replaces) an index, built at once over the cached objects.
    pub fn add_indexer(&self, indexer: Indexer<K>) {
        self.shared.add_indexer(indexer);
    }

    /// True once the first list has been applied.
    pub fn has_synced(&self) -> bool {
        *self.shared.synced().borrow()
    }

    /// Waits until the first list has been applied.
    pub async fn wait_synced(&self) {
        self.reader().wait_synced().await;
    }

    /// What the reflector has done so far.
    pub fn stats(&self) -> ReflectorStats {
        self.counters.snapshot()
    }

    /// Stops the reflector task; the cache keeps its last state.
    pub fn stop(&self) {
        self.task.stop();
    }

    pub(crate) fn task(&self) -> Arc<TaskGuard> {
        self.task.clone()
    }

    pub(crate) fn synced_receiver(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shared.synced().subscribe()
    }
}
