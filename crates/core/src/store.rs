//! The [`Store`] trait: the cluster's memory, with etcd's semantics.
//!
//! One global revision increases by one per write; every key carries the
//! revision that created it and the one that last modified it. Lists are
//! consistent snapshots at a revision, updates and deletes compare-and-swap on
//! the mod revision, and watches deliver every change from a start revision in
//! order, with no gaps and no duplicates.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;

/// A store revision. Revision 0 means "none" / "latest", the first write is 1.
pub type Revision = i64;

/// A key with its value and revisions.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, e.g. `/registry/pods/default/web-0`.
    pub key: String,
    /// The stored bytes.
    pub value: Bytes,
    /// Revision of the write that created the key (since its last deletion).
    pub create_revision: Revision,
    /// Revision of the write that last modified the key.
    pub mod_revision: Revision,
    /// Number of writes to the key since it was created (1 after create).
    pub version: i64,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field("value_len", &self.value.len())
            .field("create_revision", &self.create_revision)
            .field("mod_revision", &self.mod_revision)
            .field("version", &self.version)
            .finish()
    }
}

/// Options of [`Store::list`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Read at this revision; `0` (or `None`) means the latest.
    pub revision: Option<Revision>,
    /// At most this many items per page; `None` or `0` means all.
    pub limit: Option<usize>,
    /// Token from a previous page; the page continues that snapshot.
    pub continue_token: Option<String>,
}

/// One page of a [`Store::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    /// Items in key order.
    pub items: Vec<KeyValue>,
    /// The revision the whole (paged) list is read at.
    pub revision: Revision,
    /// Set when more items follow; pass it back to get the next page.
    pub continue_token: Option<String>,
    /// How many items follow this page, when known.
    pub remaining: Option<u64>,
}

/// A change delivered by [`Store::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// A key was created or updated. `prev` is the value before an update.
    Put {
        /// The new key-value.
        kv: KeyValue,
        /// The previous key-value, for updates.
        prev: Option<KeyValue>,
    },
    /// A key was deleted at `revision`; `prev` is its last value.
    Delete {
        /// The key-value before deletion.
        prev: KeyValue,
        /// Revision of the deletion.
        revision: Revision,
    },
}

impl WatchEvent {
    /// The revision at which the change happened.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete { revision, .. } => *revision,
        }
    }

    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { kv, .. } => &kv.key,
            WatchEvent::Delete { prev, .. } => &prev.key,
        }
    }
}

/// A stream of watch events; it ends with an error when the watch cannot go on.
///
/// Events are shared: every watcher that receives a change gets the same
/// [`Arc`], so fanning one write out to a thousand watchers copies no key or
/// value. Read an event through the `Arc`, or take it with
/// [`Arc::unwrap_or_clone`] when an owned one is needed.
///
/// ```
/// use std::sync::Arc;
/// use futures::{StreamExt, stream};
/// use ketch_core::store::{KeyValue, WatchEvent, WatchStream};
///
/// # futures::executor::block_on(async {
/// let kv = KeyValue {
///     key: "/registry/pods/default/web".into(),
///     value: "{}".into(),
///     create_revision: 7,
///     mod_revision: 7,
///     version: 1,
/// };
/// let mut events: WatchStream =
///     stream::iter([Ok(Arc::new(WatchEvent::Put { kv, prev: None }))]).boxed();
/// let event = events.next().await.unwrap().unwrap();
/// assert_eq!((event.key(), event.revision()), ("/registry/pods/default/web", 7));
/// # });
/// ```
pub type WatchStream = BoxStream<'static, Result<Arc<WatchEvent>, StoreError>>;

/// Errors of a [`Store`]. [`StoreError::is_retryable`] tells which a caller
/// should retry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The key does not exist.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// `create` of a key that exists.
    #[error("key {key:?} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// The expected mod revision did not match (retry after re-reading).
    #[error("conflict on key {key:?}: current mod revision is {current_revision}")]
    Conflict {
        /// The key.
        key: String,
        /// The key's current mod revision.
        current_revision: Revision,
    },
    /// The requested revision was compacted away.
    #[error("revision {requested} has been compacted (compacted up to {compact_revision})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The oldest revision still retained minus one.
        compact_revision: Revision,
    },
    /// The requested revision is in the future.
    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// A watcher fell too far behind and was ended; resume from `resume_revision`.
    #[error("watcher fell behind and was ended; resume from revision {resume_revision}")]
    WatchLagged {
        /// The first revision the watcher has not received.
        resume_revision: Revision,
    },
    /// The request itself is malformed (empty key, bad continue token, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The store cannot serve now (I/O failure, lost quorum, timeout).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store's data is corrupt or from an unsupported format.
    #[error("store data corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True for errors a caller should retry: `Unavailable`, `Conflict`
    /// (after re-reading) and `WatchLagged` (by resuming the watch).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Conflict { .. }
                | StoreError::WatchLagged { .. }
        )
    }
}

/// The cluster's key-value store, with etcd's semantics.
///
/// Implementations: `ketch_store::MemoryStore` (embedded default, optionally
/// durable) and `ketch_store::EtcdStore`. `ketch_store::conformance` checks any
/// implementation against these semantics.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads the latest value of `key`, `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Lists keys starting with `prefix`, in key order, as one consistent
    /// snapshot across pages. Fails `Compacted` for a compacted revision and
    /// `FutureRevision` for one not yet written.
    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListPage, StoreError>;

    /// Creates `key`; fails `AlreadyExists` if it exists. Returns the new key-value.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError>;

    /// Replaces `key` if its mod revision equals `expected_mod_revision`;
    /// fails `Conflict` (with the current revision) otherwise and `NotFound`
    /// if the key is absent. Returns the new key-value.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError>;

    /// Deletes `key`, if given only when its mod revision matches. Returns the
    /// deleted key-value and the revision of the deletion.
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError>;

    /// Watches keys under `prefix` from `from_revision` inclusive (`0`: from
    /// the next write). Fails `Compacted` when that revision is gone.
    async fn watch(&self, prefix: &str, from_revision: Revision)
    -> Result<WatchStream, StoreError>;

    /// Discards history before `revision`; reads and watches below it then
    /// fail `Compacted`.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// The latest revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;
}

#[async_trait::async_trait]
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        (**self).get(key).await
    }
    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListPage, StoreError> {
        (**self).list(prefix, options).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        (**self).create(key, value).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError> {
        (**self).update(key, value, expected_mod_revision).await
    }
    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        (**self).delete(key, expected_mod_revision).await
    }
    async fn watch(
        &self,
        prefix: &str,
        from_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        (**self).watch(prefix, from_revision).await
    }
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        (**self).compact(revision).await
    }
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        (**self).current_revision().await
    }
}
