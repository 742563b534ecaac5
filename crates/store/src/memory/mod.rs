//! [`MemoryStore`]: the embedded MVCC store, in memory or durable in a data
//! directory.

mod disk;
mod events;
mod state;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ketch_core::{KeyValue, ListOptions, ListPage, Revision, Store, StoreError, WatchStream};
use parking_lot::{Condvar, Mutex};

use disk::{DirLock, Segment};
pub use disk::{DiskError, FORMAT_VERSION};
use state::{Expect, State};

/// When a durable [`MemoryStore`] calls `fsync` on its write-ahead log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// A write is acknowledged only after it is on disk (group commit: one
    /// `fsync` covers every write that arrived while the previous one ran).
    /// Survives power loss. The default.
    #[default]
    Always,
    /// A write is acknowledged once it is in the operating system's page
    /// cache; the log is synced at least this often. Survives a crash of the
    /// process, loses at most this much after a power loss.
    Interval(Duration),
    /// A write is acknowledged once it is in the page cache; `fsync` only at
    /// snapshots and close. Survives a crash of the process only.
    Never,
}

/// Options of a [`MemoryStore`].
///
/// ```
/// use ketch_store::{FsyncPolicy, MemoryStoreOptions};
/// let options = MemoryStoreOptions::default()
///     .history_limit(Some(100_000))
///     .fsync(FsyncPolicy::Always);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStoreOptions {
    history_limit: Option<u64>,
    fsync: FsyncPolicy,
    snapshot_bytes: u64,
    watch_batch: usize,
}

impl Default for MemoryStoreOptions {
    fn default() -> Self {
        MemoryStoreOptions {
            history_limit: Some(1_000_000),
            fsync: FsyncPolicy::Always,
            snapshot_bytes: 64 << 20,
            watch_batch: 256,
        }
    }
}

impl MemoryStoreOptions {
    /// Keep at most this many revisions of history: older ones are compacted
    /// automatically (reads and watches below fail `Compacted`, a watcher
    /// left behind ends with `WatchLagged`). `None` keeps history until
    /// [`Store::compact`]. Default: 1,000,000 revisions.
    ///
    /// ```
    /// let options = ketch_store::MemoryStoreOptions::default().history_limit(None);
    /// # let _ = options;
    /// ```
    pub fn history_limit(mut self, revisions: Option<u64>) -> Self {
        self.history_limit = revisions;
        self
    }

    /// When the write-ahead log is synced (durable mode only). Default:
    /// [`FsyncPolicy::Always`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use ketch_store::{FsyncPolicy, MemoryStoreOptions};
    /// let options = MemoryStoreOptions::default().fsync(FsyncPolicy::Interval(Duration::from_millis(10)));
    /// # let _ = options;
    /// ```
    pub fn fsync(mut self, policy: FsyncPolicy) -> Self {
        self.fsync = policy;
        self
    }

    /// Write a snapshot and start a new log segment after this many log
    /// bytes (durable mode only). Default: 64 MiB.
    ///
    /// ```
    /// let options = ketch_store::MemoryStoreOptions::default().snapshot_every_bytes(16 << 20);
    /// # let _ = options;
    /// ```
    pub fn snapshot_every_bytes(mut self, bytes: u64) -> Self {
        self.snapshot_bytes = bytes.max(1);
        self
    }

    /// Most events a watcher delivers in a row before it yields to other
    /// tasks (it reads the shared log without copying it). Default: 256.
    ///
    /// ```
    /// let options = ketch_store::MemoryStoreOptions::default().watch_batch(64);
    /// # let _ = options;
    /// ```
    pub fn watch_batch(mut self, events: usize) -> Self {
        self.watch_batch = events.max(1);
        self
    }
}

/// Everything behind the store's one mutex.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) state: State,
    /// Encoded log records not yet handed to the log thread.
    wal_buf: Vec<u8>,
    /// Set when the log failed; every later write fails `Unavailable`.
    wal_failed: Option<String>,
    /// Set when the store is dropped: the log thread drains and exits,
    /// watchers end.
    pub(crate) closed: bool,
}

/// Progress of the write-ahead log, published to waiting writers.
#[derive(Clone, Debug, Default)]
struct WalProgress {
    durable: Revision,
    failed: Option<Arc<str>>,
}

#[derive(Debug)]
struct WalShared {
    cond: Condvar,
    progress: tokio::sync::watch::Sender<WalProgress>,
    snapshot_running: Arc<AtomicBool>,
}

/// State shared by the store handle, its watchers and its log thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) inner: Mutex<Inner>,
    wal: Option<WalShared>,
    /// The state's watch hub (it never changes).
    hub: Arc<watch::WatchHub>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    options: MemoryStoreOptions,
    dir: Option<PathBuf>,
    wal_thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.inner.lock().closed = true;
        if let Some(wal) = &self.shared.wal {
            wal.cond.notify_all();
        }
        self.shared.hub.close();
        if let Some(thread) = self.wal_thread.lock().take() {
            let _ = thread.join();
        }
    }
}

/// The embedded MVCC [`Store`]: etcd's semantics in one process.
///
/// Keeps every key's versions until they are compacted (see
/// [`MemoryStoreOptions::history_limit`]); lists read a consistent snapshot at
/// any retained revision; watches start at any retained revision and are
/// served from one shared event log, so writers never wait for watchers.
///
/// In memory with [`MemoryStore::new`]; durable with [`MemoryStore::open`],
/// which keeps a checksummed write-ahead log with group commit and periodic
/// snapshots in a data directory.
///
/// Cloning is cheap and shares the store. The log is flushed and closed when
/// the last clone is dropped.
///
/// Every operation consumes tokio's cooperative budget, as tokio's own
/// resources do: a task that loops over operations completing at once still
/// yields now and then, so watchers on the same runtime keep up.
///
/// ```
/// use ketch_core::Store;
/// use ketch_store::MemoryStore;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let kv = store.create("/registry/pods/default/web", "v1".into()).await.unwrap();
/// assert_eq!(kv.mod_revision, 1);
/// let kv = store.update(&kv.key, "v2".into(), kv.mod_revision).await.unwrap();
/// assert_eq!(kv.version, 2);
/// # });
/// ```
#[derive(Clone, Debug)]
pub struct MemoryStore {
    handle: Arc<Handle>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty in-memory store with default options.
    ///
    /// ```
    /// let store = ketch_store::MemoryStore::new();
    /// # let _ = store;
    /// ```
    pub fn new() -> Self {
        Self::with_options(MemoryStoreOptions::default())
    }

    /// An empty in-memory store.
    ///
    /// ```
    /// use ketch_store::{MemoryStore, MemoryStoreOptions};
    /// let store = MemoryStore::with_options(MemoryStoreOptions::default().history_limit(None));
    /// # let _ = store;
    /// ```
    pub fn with_options(options: MemoryStoreOptions) -> Self {
        Self::from_state(State::new(options.history_limit), options)
    }

    fn from_state(state: State, options: MemoryStoreOptions) -> Self {
        let shared = Arc::new(Shared {
            hub: state.hub.clone(),
            inner: Mutex::new(Inner {
                state,
                wal_buf: Vec::new(),
                wal_failed: None,
                closed: false,
            }),
            wal: None,
        });
        MemoryStore {
            handle: Arc::new(Handle {
                shared,
                options,
                dir: None,
                wal_thread: Mutex::new(None),
            }),
        }
    }

    /// Opens (or creates) a durable store in `dir` with default options:
    /// recovers the newest snapshot and replays the write-ahead log after it,
    /// dropping a torn last record. Blocking file I/O: call it before the
    /// runtime gets busy or from `spawn_blocking`.
    ///
    /// Fails [`DiskError::Corrupt`] for damaged data, [`DiskError::NewerFormat`]
    /// for a data directory written by a newer format, and
    /// [`DiskError::Locked`] when another store has it open.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = ketch_store::MemoryStore::open(dir.path()).unwrap();
    /// # let _ = store;
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, DiskError> {
        Self::open_with(dir, MemoryStoreOptions::default())
    }

    /// [`MemoryStore::open`] with options.
    ///
    /// ```
    /// use ketch_store::{FsyncPolicy, MemoryStore, MemoryStoreOptions};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = MemoryStore::open_with(dir.path(), MemoryStoreOptions::default().fsync(FsyncPolicy::Never)).unwrap();
    /// # let _ = store;
    /// ```
    pub fn open_with(
        dir: impl AsRef<Path>,
        options: MemoryStoreOptions,
    ) -> Result<Self, DiskError> {
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir).map_err(disk::io_err(&dir))?;
        let lock = DirLock::acquire(&dir)?;
        let recovered = disk::recover(&dir, options.history_limit, options.prealloc_chunk())?;
        if let Some((path, reason)) = &recovered.torn {
            tracing::warn!(path = %path.display(), reason, "dropped a torn write-ahead log tail");
        }
        let revision = recovered.state.revision;
        let (progress, _) = tokio::sync::watch::channel(WalProgress {
            durable: revision,
            failed: None,
        });
        let shared = Arc::new(Shared {
            hub: recovered.state.hub.clone(),
            inner: Mutex::new(Inner {
                state: recovered.state,
                wal_buf: Vec::with_capacity(1 << 16),
                wal_failed: None,
                closed: false,
            }),
            wal: Some(WalShared {
                cond: Condvar::new(),
                progress,
                snapshot_running: Arc::new(AtomicBool::new(false)),
            }),
        });
        let log = WalLog {
            shared: shared.clone(),
            segment: recovered.segment,
            dir: dir.clone(),
            bytes_since_snapshot: recovered.wal_bytes,
            policy: options.fsync,
            snapshot_bytes: options.snapshot_bytes,
            chunk: options.prealloc_chunk(),
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("ketch-store-wal".into())
            .spawn(move || log.run())
            .map_err(disk::io_err(&dir))?;
        Ok(MemoryStore {
            handle: Arc::new(Handle {
                shared,
                options,
                dir: Some(dir),
                wal_thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Creates a durable store in the empty (or absent) `dir` from a snapshot
    /// file written by [`MemoryStore::save_snapshot`], and opens it.
    ///
    /// ```
    /// use ketch_store::{MemoryStore, MemoryStoreOptions};
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let file = tmp.path().join("backup.snap");
    /// let store = MemoryStore::new();
    /// store.save_snapshot(&file).unwrap();
    /// let restored = MemoryStore::restore(&file, tmp.path().join("data"), MemoryStoreOptions::default()).unwrap();
    /// # let _ = restored;
    /// ```
    pub fn restore(
        snapshot: impl AsRef<Path>,
        dir: impl AsRef<Path>,
        options: MemoryStoreOptions,
    ) -> Result<Self, DiskError> {
        let dir = dir.as_ref();
        if disk::has_store_files(dir)? {
            return Err(DiskError::NotEmpty {
                path: dir.to_owned(),
            });
        }
        std::fs::create_dir_all(dir).map_err(disk::io_err(dir))?;
        let (revision, items) = disk::read_snapshot(snapshot.as_ref())?;
        let items: Vec<_> = items
            .into_iter()
            .map(|(k, rec)| (Arc::<str>::from(k), rec))
            .collect();
        disk::write_snapshot(&dir.join(disk::snap_name(revision)), revision, &items)?;
        Self::open_with(dir, options)
    }

    /// An in-memory store loaded from a snapshot file written by
    /// [`MemoryStore::save_snapshot`]. History starts at the snapshot's
    /// revision.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// # let file = tmp.path().join("backup.snap");
    /// # ketch_store::MemoryStore::new().save_snapshot(&file).unwrap();
    /// let store = ketch_store::MemoryStore::from_snapshot(&file, Default::default()).unwrap();
    /// # let _ = store;
    /// ```
    pub fn from_snapshot(
        snapshot: impl AsRef<Path>,
        options: MemoryStoreOptions,
    ) -> Result<Self, DiskError> {
        let (revision, items) = disk::read_snapshot(snapshot.as_ref())?;
        Ok(Self::from_state(
            State::from_snapshot(revision, items, options.history_limit),
            options,
        ))
    }

    /// Writes every live key at the current revision to `path` (atomically:
    /// a temporary file renamed into place) and returns that revision. A
    /// backup: restore it with [`MemoryStore::restore`] or
    /// [`MemoryStore::from_snapshot`]. Blocking file I/O.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// let store = ketch_store::MemoryStore::new();
    /// let revision = store.save_snapshot(tmp.path().join("backup.snap")).unwrap();
    /// assert_eq!(revision, 0);
    /// ```
    pub fn save_snapshot(&self, path: impl AsRef<Path>) -> Result<Revision, DiskError> {
        let (revision, items) = self.handle.shared.inner.lock().state.snapshot_items();
        disk::write_snapshot(path.as_ref(), revision, &items)?;
        Ok(revision)
    }

    /// The data directory of a durable store, `None` in memory.
    ///
    /// ```
    /// assert!(ketch_store::MemoryStore::new().data_dir().is_none());
    /// ```
    pub fn data_dir(&self) -> Option<&Path> {
        self.handle.dir.as_deref()
    }

    /// The options the store was created with.
    ///
    /// ```
    /// let store = ketch_store::MemoryStore::new();
    /// assert_eq!(store.options().fsync_policy(), ketch_store::FsyncPolicy::Always);
    /// ```
    pub fn options(&self) -> &MemoryStoreOptions {
        &self.handle.options
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Finishes a write applied at `revision` under the lock: in memory it is
    /// visible at once; with a log the caller waits for [`Self::durable`].
    fn commit(&self, mut inner: parking_lot::MutexGuard<'_, Inner>, revision: Revision) -> bool {
        match &self.shared().wal {
            None => {
                inner.state.commit(revision);
                drop(inner);
                self.shared().hub.wake_all();
                false
            }
            Some(wal) => {
                drop(inner);
                wal.cond.notify_one();
                true
            }
        }
    }

    /// Waits until the log has made `revision` durable (per the policy).
    async fn durable(&self, revision: Revision) -> Result<(), StoreError> {
        let Some(wal) = &self.shared().wal else {
            return Ok(());
        };
        let mut rx = wal.progress.subscribe();
        let progress = rx
            .wait_for(|p| p.durable >= revision || p.failed.is_some())
            .await
            .map_err(|_| StoreError::Unavailable("the store was closed".into()))?;
        if progress.durable >= revision {
            return Ok(());
        }
        Err(StoreError::Unavailable(format!(
            "write-ahead log failed: {}",
            progress.failed.as_deref().unwrap_or("unknown error")
        )))
    }

    fn check_writable(&self, inner: &Inner, key: &str, value_len: usize) -> Result<(), StoreError> {
        if let Some(e) = &inner.wal_failed {
            return Err(StoreError::Unavailable(format!(
                "write-ahead log failed: {e}"
            )));
        }
        if inner.closed {
            return Err(StoreError::Unavailable("the store was closed".into()));
        }
        if self.shared().wal.is_some() && key.len() + value_len + 32 > disk::MAX_RECORD {
            return Err(StoreError::InvalidArgument(format!(
                "key and value of {} bytes exceed the record limit of {} bytes",
                key.len() + value_len,
                disk::MAX_RECORD
            )));
        }
        Ok(())
    }

    /// The synchronous part of `create`: returns the new version and whether
    /// to wait for the log.
    fn write_create(&self, key: &str, value: Bytes) -> Result<(KeyValue, bool), StoreError> {
        let mut inner = self.shared().inner.lock();
        self.check_writable(&inner, key, value.len())?;
        let kv = self.put(&mut inner, key, value, Expect::Absent)?;
        let wait = self.commit(inner, kv.mod_revision);
        Ok((kv, wait))
    }

    fn write_update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<(KeyValue, bool), StoreError> {
        let mut inner = self.shared().inner.lock();
        self.check_writable(&inner, key, value.len())?;
        let kv = self.put(&mut inner, key, value, Expect::ModRevision(expected))?;
        let wait = self.commit(inner, kv.mod_revision);
        Ok((kv, wait))
    }

    fn write_delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision, bool), StoreError> {
        let mut inner = self.shared().inner.lock();
        self.check_writable(&inner, key, 0)?;
        inner.state.check_delete(key, expected)?;
        let (kv, revision) = inner
            .state
            .apply_delete(key)
            .ok_or_else(|| StoreError::NotFound { key: key.into() })?;
        if self.shared().wal.is_some() {
            disk::encode_delete(&mut inner.wal_buf, revision, key);
        }
        let wait = self.commit(inner, revision);
        Ok((kv, revision, wait))
    }

    fn put(
        &self,
        inner: &mut Inner,
        key: &str,
        value: Bytes,
        expect: Expect,
    ) -> Result<KeyValue, StoreError> {
        let kv = inner.state.put(key, value, expect)?;
        if self.shared().wal.is_some() {
            disk::encode_put(&mut inner.wal_buf, kv.mod_revision, key, &kv.value);
        }
        Ok(kv)
    }
}

impl MemoryStoreOptions {
    /// How far ahead the log file is extended with zeros: a quarter of the
    /// snapshot interval, between 64 KiB and 4 MiB.
    fn prealloc_chunk(&self) -> u64 {
        (self.snapshot_bytes / 4).clamp(64 << 10, 4 << 20)
    }

    /// The fsync policy.
    ///
    /// ```
    /// use ketch_store::{FsyncPolicy, MemoryStoreOptions};
    /// assert_eq!(MemoryStoreOptions::default().fsync_policy(), FsyncPolicy::Always);
    /// ```
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.fsync
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        tokio::task::consume_budget().await;
        if key.is_empty() {
            return Err(StoreError::InvalidArgument("key must not be empty".into()));
        }
        Ok(self.shared().inner.lock().state.get(key))
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListPage, StoreError> {
        tokio::task::consume_budget().await;
        self.shared().inner.lock().state.list(prefix, options)
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        tokio::task::consume_budget().await;
        let (kv, wait) = self.write_create(key, value)?;
        if wait {
            self.durable(kv.mod_revision).await?;
        }
        Ok(kv)
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError> {
        tokio::task::consume_budget().await;
        let (kv, wait) = self.write_update(key, value, expected_mod_revision)?;
        if wait {
            self.durable(kv.mod_revision).await?;
        }
        Ok(kv)
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        tokio::task::consume_budget().await;
        let (kv, revision, wait) = self.write_delete(key, expected_mod_revision)?;
        if wait {
            self.durable(revision).await?;
        }
        Ok((kv, revision))
    }

    async fn watch(
        &self,
        prefix: &str,
        from_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        if from_revision < 0 {
            return Err(StoreError::InvalidArgument(format!(
                "negative watch revision {from_revision}"
            )));
        }
        let inner = self.shared().inner.lock();
        let from = if from_revision == 0 {
            inner.state.committed + 1
        } else {
            from_revision
        };
        inner.state.check_watch_start(from)?;
        let block = inner.state.log_block(from);
        drop(inner);
        Ok(Box::pin(watch::Watcher::new(
            self.shared().hub.clone(),
            block,
            prefix,
            from,
            self.handle.options.watch_batch,
        )))
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.shared().inner.lock().state.compact(revision)
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared().inner.lock().state.committed)
    }
}

/// The log thread: writes the records writers queued, syncs per the policy,
/// publishes progress, and rotates segments at snapshots.
struct WalLog {
    shared: Arc<Shared>,
    segment: Segment,
    dir: PathBuf,
    bytes_since_snapshot: u64,
    policy: FsyncPolicy,
    snapshot_bytes: u64,
    /// Log preallocation step.
    chunk: u64,
    _lock: DirLock,
}

type SnapshotItems = (Revision, Vec<(Arc<str>, state::Rec)>);

impl WalLog {
    fn run(mut self) {
        let shared = self.shared.clone();
        let Some(wal) = &shared.wal else {
            return;
        };
        let mut buf = Vec::with_capacity(1 << 16);
        let mut dirty = false;
        let mut last_sync = Instant::now();
        loop {
            let (upto, snapshot, closed) = {
                let mut inner = self.shared.inner.lock();
                loop {
                    if !inner.wal_buf.is_empty() || inner.closed {
                        break;
                    }
                    match self.policy {
                        FsyncPolicy::Interval(every) if dirty => {
                            let left = every.saturating_sub(last_sync.elapsed());
                            if left.is_zero() {
                                break;
                            }
                            wal.cond.wait_for(&mut inner, left);
                        }
                        _ => wal.cond.wait(&mut inner),
                    }
                }
                std::mem::swap(&mut inner.wal_buf, &mut buf);
                self.bytes_since_snapshot += buf.len() as u64;
                let snapshot = (self.bytes_since_snapshot >= self.snapshot_bytes
                    && !wal.snapshot_running.load(Ordering::Acquire))
                .then(|| inner.state.snapshot_items_applied());
                (inner.state.revision, snapshot, inner.closed)
            };
            let result = self.write(&mut buf, &mut dirty, &mut last_sync, closed);
            let result = result.and_then(|()| match snapshot {
                Some(items) => self.rotate(items, wal),
                None => Ok(()),
            });
            if let Err(e) = result {
                let message: Arc<str> = Arc::from(e.to_string());
                tracing::error!(error = %message, "write-ahead log failed; the store refuses writes");
                self.shared.inner.lock().wal_failed = Some(message.to_string());
                wal.progress.send_modify(|p| p.failed = Some(message));
                return;
            }
            self.shared.inner.lock().state.commit(upto);
            self.shared.hub.wake_all();
            wal.progress.send_if_modified(|p| {
                let changed = p.durable < upto;
                p.durable = p.durable.max(upto);
                changed
            });
            if closed && self.shared.inner.lock().wal_buf.is_empty() {
                return;
            }
        }
    }

    fn write(
        &mut self,
        buf: &mut Vec<u8>,
        dirty: &mut bool,
        last_sync: &mut Instant,
        closing: bool,
    ) -> Result<(), DiskError> {
        if !buf.is_empty() {
            self.segment.append(buf)?;
            buf.clear();
            *dirty = true;
        }
        let sync = *dirty
            && match self.policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::Interval(every) => closing || last_sync.elapsed() >= every,
                FsyncPolicy::Never => closing,
            };
        if sync {
            self.segment.sync()?;
            *dirty = false;
            *last_sync = Instant::now();
        }
        Ok(())
    }

    /// Starts a new segment after `items`' revision and writes the snapshot
    /// in the background; the older segments and snapshots are deleted once
    /// it is on disk.
    fn rotate(
        &mut self,
        (revision, items): SnapshotItems,
        wal: &WalShared,
    ) -> Result<(), DiskError> {
        self.segment.sync()?;
        self.segment = Segment::create(&self.dir, revision + 1, self.chunk)?;
        self.bytes_since_snapshot = 0;
        let dir = self.dir.clone();
        let running = wal.snapshot_running.clone();
        running.store(true, Ordering::Release);
        let spawned = std::thread::Builder::new()
            .name("ketch-store-snapshot".into())
            .spawn(move || {
                if let Err(e) = write_snapshot_and_clean(&dir, revision, &items) {
                    tracing::warn!(error = %e, "snapshot failed; keeping the write-ahead log");
                }
                running.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            wal.snapshot_running.store(false, Ordering::Release);
            tracing::warn!(error = %e, "could not start the snapshot thread");
        }
        Ok(())
    }
}

fn write_snapshot_and_clean(
    dir: &Path,
    revision: Revision,
    items: &[(Arc<str>, state::Rec)],
) -> Result<(), DiskError> {
    disk::write_snapshot(&dir.join(disk::snap_name(revision)), revision, items)?;
    for entry in std::fs::read_dir(dir).map_err(disk::io_err(dir))? {
        let entry = entry.map_err(disk::io_err(dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let old = if let Some(start) = name
            .strip_prefix("wal-")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<Revision>().ok())
        {
            start <= revision
        } else if let Some(rev) = name
            .strip_prefix("snap-")
            .and_then(|n| n.strip_suffix(".snap"))
            .and_then(|n| n.parse::<Revision>().ok())
        {
            rev < revision
        } else {
            false
        };
        if old {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(disk::io_err(&path))?;
        }
    }
    disk::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use ketch_core::WatchEvent;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[tokio::test]
    async fn durable_store_survives_reopen_with_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let opts = MemoryStoreOptions::default().snapshot_every_bytes(512);
        {
            let store = MemoryStore::open_with(dir.path(), opts.clone()).unwrap();
            for i in 0..200 {
                store
                    .create(&format!("/k/{i:03}"), b("value"))
                    .await
                    .unwrap();
            }
            store.delete("/k/000", None).await.unwrap();
            assert!(matches!(
                MemoryStore::open(dir.path()),
                Err(DiskError::Locked { .. })
            ));
        }
        let store = MemoryStore::open_with(dir.path(), opts).unwrap();
        assert_eq!(store.current_revision().await.unwrap(), 201);
        let page = store.list("/k/", &ListOptions::default()).await.unwrap();
        assert_eq!(page.items.len(), 199);
        assert!(store.get("/k/000").await.unwrap().is_none());
        let snaps = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".snap")
            })
            .count();
        assert!(snaps <= 2, "old snapshots are cleaned up, found {snaps}");
    }

    #[tokio::test]
    async fn closing_the_store_ends_watchers() {
        let store = MemoryStore::new();
        let mut w = store.watch("/", 0).await.unwrap();
        store.create("/a", b("1")).await.unwrap();
        let event = w.next().await.unwrap().unwrap();
        assert!(matches!(*event, WatchEvent::Put { .. }));
        drop(store);
        assert!(matches!(
            w.next().await,
            Some(Err(StoreError::Unavailable(_)))
        ));
        assert!(w.next().await.is_none());
    }

    #[tokio::test]
    async fn watchers_cross_log_blocks_without_gaps_or_duplicates() {
        let store = MemoryStore::new();
        let mut all = store.watch("/", 1).await.unwrap();
        let mut odd = store.watch("/odd/", 0).await.unwrap();
        let writes = 3 * events::BLOCK_LEN + 7;
        for i in 0..writes {
            let parity = if i % 2 == 1 { "odd" } else { "even" };
            store
                .create(&format!("/{parity}/{i}"), b("v"))
                .await
                .unwrap();
        }
        for revision in 1..=writes as Revision {
            assert_eq!(all.next().await.unwrap().unwrap().revision(), revision);
        }
        for revision in (2..=writes as Revision).step_by(2) {
            let event = odd.next().await.unwrap().unwrap();
            assert_eq!(event.revision(), revision);
            assert!(event.key().starts_with("/odd/"));
        }
    }

    #[tokio::test]
    async fn watch_from_a_future_revision_waits_for_it() {
        let store = MemoryStore::new();
        let mut w = store
            .watch("/", 2 * events::BLOCK_LEN as Revision)
            .await
            .unwrap();
        for i in 0..2 * events::BLOCK_LEN {
            store.create(&format!("/k/{i}"), b("v")).await.unwrap();
        }
        let event = w.next().await.unwrap().unwrap();
        assert_eq!(event.revision(), 2 * events::BLOCK_LEN as Revision);
    }

    #[tokio::test]
    async fn waiting_watcher_is_woken_by_a_write_from_another_task() {
        let store = MemoryStore::new();
        let mut w = store.watch("/", 0).await.unwrap();
        let writer = store.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.create("/a", b("1")).await.unwrap();
        });
        assert_eq!(w.next().await.unwrap().unwrap().revision(), 1);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_task_looping_over_writes_lets_watchers_run() {
        let store = MemoryStore::new();
        let mut w = store.watch("/", 0).await.unwrap();
        let seen = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let watcher = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Some(Ok(ev)) = w.next().await {
                    seen.store(ev.revision(), std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        // The writer never awaits anything that is not ready: only the
        // budget makes it yield to the watcher on this one-thread runtime.
        let mut kv = store.create("/a", b("0")).await.unwrap();
        for i in 0..10_000 {
            kv = store
                .update("/a", b(&i.to_string()), kv.mod_revision)
                .await
                .unwrap();
        }
        let lag = kv.mod_revision - seen.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            lag < 1_000,
            "the watcher trails the writer by {lag} revisions"
        );
        watcher.abort();
    }

    #[tokio::test]
    async fn slow_watcher_ends_lagged_and_resumes() {
        let store =
            MemoryStore::with_options(MemoryStoreOptions::default().history_limit(Some(64)));
        let mut w = store.watch("/", 1).await.unwrap();
        store.create("/a", b("0")).await.unwrap();
        let first = w.next().await.unwrap().unwrap();
        assert_eq!(first.revision(), 1);
        let mut kv = store.get("/a").await.unwrap().unwrap();
        for i in 0..1000 {
            kv = store
                .update("/a", b(&i.to_string()), kv.mod_revision)
                .await
                .unwrap();
        }
        let mut got = 1;
        let resume = loop {
            match w.next().await {
                Some(Ok(ev)) => {
                    got += 1;
                    assert_eq!(ev.revision(), got);
                }
                Some(Err(StoreError::WatchLagged { resume_revision })) => break resume_revision,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(resume, got + 1);
        assert!(matches!(
            store.watch("/", resume).await,
            Err(StoreError::Compacted { .. })
        ));
    }
}
