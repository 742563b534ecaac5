//! The [`SharedInformerFactory`]: one informer per (kind, namespace,
//! selectors) for a whole process, however many components ask for it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::informer::{Informer, TaskGuard};
use super::reflector::ReflectorConfig;
use crate::{Api, Client, Object, Resource};

/// Which slice of a kind an informer follows.
///
/// ```
/// use ketch_core::runtime::InformerScope;
/// let scope = InformerScope::all().namespace("default").labels("app=web");
/// assert_eq!(scope.namespace.as_deref(), Some("default"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct InformerScope {
    /// One namespace, or `None` for all (and for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
}

impl InformerScope {
    /// Every object of the kind.
    pub fn all() -> Self {
        Self::default()
    }

    /// Limits to one namespace.
    ///
    /// ```
    /// let s = ketch_core::runtime::InformerScope::all().namespace("kube-system");
    /// assert_eq!(s.namespace.as_deref(), Some("kube-system"));
    /// ```
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Sets the label selector.
    ///
    /// ```
    /// let s = ketch_core::runtime::InformerScope::all().labels("tier=db");
    /// assert_eq!(s.label_selector.as_deref(), Some("tier=db"));
    /// ```
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Sets the field selector.
    ///
    /// ```
    /// let s = ketch_core::runtime::InformerScope::all().fields("spec.nodeName=n1");
    /// assert_eq!(s.field_selector.as_deref(), Some("spec.nodeName=n1"));
    /// ```
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    type_id: TypeId,
    scope: InformerScope,
}

struct Entry {
    informer: Box<dyn Any + Send + Sync>,
    task: Arc<TaskGuard>,
    synced: tokio::sync::watch::Receiver<bool>,
}

struct Inner {
    client: Arc<dyn Client>,
    defaults: ReflectorConfig,
    informers: Mutex<HashMap<Key, Entry>>,
}

/// Hands out shared informers: every component of a process asking for the
/// same kind, namespace and selectors gets the same cache, filled by one
/// list + watch. Cheap to clone.
///
/// Informers start when first asked for and live as long as the factory (or
/// until [`SharedInformerFactory::shutdown`]).
///
/// ```no_run
/// # async fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
/// use ketch_core::api::{Node, Pod};
/// use ketch_core::runtime::SharedInformerFactory;
/// let factory = SharedInformerFactory::new(client);
/// let pods = factory.informer::<Pod>();
/// let nodes = factory.informer::<Node>();
/// let same_pods = factory.informer::<Pod>(); // the same cache, no second watch
/// factory.wait_for_sync().await;
/// assert_eq!(pods.reader().len(), same_pods.reader().len());
/// # }
/// ```
#[derive(Clone)]
pub struct SharedInformerFactory {
    inner: Arc<Inner>,
}

impl fmt::Debug for SharedInformerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedInformerFactory")
            .field("informers", &self.inner.informers.lock().len())
            .finish()
    }
}

impl SharedInformerFactory {
    /// A factory over `client` with the default [`ReflectorConfig`].
    pub fn new(client: Arc<dyn Client>) -> Self {
        Self::with_config(client, ReflectorConfig::default())
    }

    /// A factory whose informers use `defaults` for page size and backoff
    /// (selectors come from each request's [`InformerScope`]).
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// use ketch_core::runtime::{ReflectorConfig, SharedInformerFactory};
    /// let factory = SharedInformerFactory::with_config(client, ReflectorConfig::default().page_size(0));
    /// # }
    /// ```
    pub fn with_config(client: Arc<dyn Client>, defaults: ReflectorConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                defaults,
                informers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The client informers list and watch through.
    pub fn client(&self) -> &Arc<dyn Client> {
        &self.inner.client
    }

    /// The informer of every `K` (all namespaces, no selectors).
    ///
    /// # Panics
    ///
    /// When it has to start the informer outside a tokio runtime.
    pub fn informer<K>(&self) -> Informer<K>
    where
        K: Resource + Object + DeserializeOwned,
    {
        self.informer_for(InformerScope::all())
    }

    /// The informer of the `K`s in `scope`.
    ///
    /// ```no_run
    /// # fn demo(factory: ketch_core::runtime::SharedInformerFactory) {
    /// use ketch_core::api::Pod;
    /// use ketch_core::runtime::InformerScope;
    /// let mine = factory.informer_for::<Pod>(InformerScope::all().fields("spec.nodeName=n1"));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// When it has to start the informer outside a tokio runtime.
    pub fn informer_for<K>(&self, scope: InformerScope) -> Informer<K>
    where
        K: Resource + Object + DeserializeOwned,
    {
        let key = Key {
            type_id: TypeId::of::<K>(),
            scope,
        };
        let mut informers = self.inner.informers.lock();
        if let Some(existing) = informers
            .get(&key)
            .and_then(|e| e.informer.downcast_ref::<Informer<K>>())
        {
            return existing.clone();
        }
        let scope = &key.scope;
        let client = self.inner.client.clone();
        let api = match (&scope.namespace, K::NAMESPACED) {
            (Some(ns), true) => Api::<K>::namespaced(client, ns),
            _ => Api::<K>::all(client),
        };
        let mut config = self.inner.defaults.clone();
        config.label_selector = scope.label_selector.clone();
        config.field_selector = scope.field_selector.clone();
        let informer = Informer::spawn(api, config);
        informers.insert(
            key,
            Entry {
                informer: Box::new(informer.clone()),
                task: informer.task(),
                synced: informer.synced_receiver(),
            },
        );
        informer
    }

    /// Number of informers started.
    pub fn len(&self) -> usize {
        self.inner.informers.lock().len()
    }

    /// True when no informer has been started.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every informer started so far has synced.
    pub async fn wait_for_sync(&self) {
        let receivers: Vec<_> = self
            .inner
            .informers
            .lock()
            .values()
            .map(|e| e.synced.clone())
            .collect();
        for mut rx in receivers {
            // The sender lives in the informer's cache, which the factory
            // keeps alive; an error only means the factory was torn down.
            let _ = rx.wait_for(|synced| *synced).await;
        }
    }

    /// Stops every informer and forgets them; caches already handed out
    /// keep their last state.
    pub fn shutdown(&self) {
        let entries: Vec<Entry> = self
            .inner
            .informers
            .lock()
            .drain()
            .map(|(_, e)| e)
            .collect();
        for entry in entries {
            entry.task.stop();
        }
    }
}
