//! The MVCC state behind [`MemoryStore`](super::MemoryStore): per-key version
//! vectors, the revision-ordered event log that watchers read, compaction and
//! paged lists at a revision.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use ketch_core::{KeyValue, ListOptions, ListPage, Revision, StoreError, WatchEvent};

use super::events::{Block, EventLog};
use super::watch::WatchHub;

/// One version of a key. `value == None` is a deletion (tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) value: Option<Bytes>,
    pub(crate) create_revision: Revision,
    pub(crate) mod_revision: Revision,
    pub(crate) version: i64,
}

impl Rec {
    fn live(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }

    pub(crate) fn to_kv(&self, key: &str) -> Option<KeyValue> {
        self.value.as_ref().map(|value| KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
        })
    }
}

/// One write in the event log (the log holds revisions `log_start..`).
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    pub(crate) key: Arc<str>,
    /// The new version (a tombstone for deletes).
    pub(crate) rec: Rec,
    /// The version before this write, if the key was live.
    pub(crate) prev: Option<Rec>,
    /// The watch event, built by the first watcher that reads the entry and
    /// then shared by all of them.
    event: OnceLock<Option<Arc<WatchEvent>>>,
}

impl LogEntry {
    pub(crate) fn new(key: Arc<str>, rec: Rec, prev: Option<Rec>) -> Self {
        LogEntry {
            key,
            rec,
            prev,
            event: OnceLock::new(),
        }
    }

    pub(crate) fn revision(&self) -> Revision {
        self.rec.mod_revision
    }

    /// The watch event for this entry, the same `Arc` for every watcher;
    /// `None` only for a malformed entry (a delete without a previous
    /// value), which the state never creates.
    pub(crate) fn event(&self) -> Option<Arc<WatchEvent>> {
        self.event
            .get_or_init(|| {
                let prev = self.prev.as_ref().and_then(|p| p.to_kv(&self.key));
                let event = match self.rec.to_kv(&self.key) {
                    Some(kv) => WatchEvent::Put { kv, prev },
                    None => WatchEvent::Delete {
                        prev: prev?,
                        revision: self.rec.mod_revision,
                    },
                };
                Some(Arc::new(event))
            })
            .clone()
    }
}

/// The condition of a put.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Any state (replay of the log).
    Any,
    /// The key must be absent (create).
    Absent,
    /// The key must be live with this mod revision (update).
    ModRevision(Revision),
}

/// A write as recorded in the write-ahead log: enough to replay it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WalOp<'a> {
    Put {
        revision: Revision,
        key: &'a str,
        value: &'a [u8],
    },
    Delete {
        revision: Revision,
        key: &'a str,
    },
}

/// The versions of one key, oldest first, `mod_revision` strictly increasing.
#[derive(Debug)]
struct KeyHistory {
    /// The map's key, shared with log entries.
    key: Arc<str>,
    recs: Vec<Rec>,
}

/// The whole MVCC state, guarded by one mutex in the store.
#[derive(Debug)]
pub(crate) struct State {
    /// Every key's versions.
    keys: BTreeMap<Arc<str>, KeyHistory>,
    /// Last applied revision.
    pub(crate) revision: Revision,
    /// Last revision visible to readers and watchers (equal to `revision` in
    /// memory; the last durable revision with a write-ahead log).
    pub(crate) committed: Revision,
    /// Reads at revisions below this fail `Compacted`.
    pub(crate) compact_revision: Revision,
    /// Events of revisions `log.start()..=revision`, in order; watches
    /// from below its start fail `Compacted`.
    log: EventLog,
    /// Keep at most this many revisions of history (auto-compaction).
    history_limit: Option<u64>,
    /// What watchers read without the lock: the committed revision, the log
    /// start, and the wakers of caught-up watchers.
    pub(crate) hub: Arc<WatchHub>,
}

/// Separates the revision from the hex-encoded key in a continue token.
const TOKEN_SEPARATOR: char = ':';

impl State {
    pub(crate) fn new(history_limit: Option<u64>) -> Self {
        State {
            keys: BTreeMap::new(),
            revision: 0,
            committed: 0,
            compact_revision: 0,
            log: EventLog::new(1),
            history_limit: history_limit.filter(|l| *l > 0),
            hub: Arc::new(WatchHub::new(1)),
        }
    }

    /// A state holding `items` (latest versions) at `revision` with no history
    /// before it, as loaded from a snapshot.
    pub(crate) fn from_snapshot(
        revision: Revision,
        items: Vec<(String, Rec)>,
        history_limit: Option<u64>,
    ) -> Self {
        let mut state = State::new(history_limit);
        for (key, rec) in items {
            let key: Arc<str> = Arc::from(key);
            state.keys.insert(
                key.clone(),
                KeyHistory {
                    key,
                    recs: vec![rec],
                },
            );
        }
        state.revision = revision;
        state.committed = revision;
        state.compact_revision = revision;
        state.log = EventLog::new(revision + 1);
        state.hub = Arc::new(WatchHub::new(revision + 1));
        state.hub.publish_committed(revision);
        state
    }

    fn latest(&self, key: &str) -> Option<&Rec> {
        self.keys.get(key).and_then(|h| h.recs.last())
    }

    fn live_latest(&self, key: &str) -> Option<&Rec> {
        self.latest(key).filter(|r| r.value.is_some())
    }

    /// The version of a key history visible at `revision`.
    fn at(history: &[Rec], revision: Revision) -> Option<&Rec> {
        let i = history.partition_point(|r| r.mod_revision <= revision);
        if i == 0 { None } else { history.get(i - 1) }
    }

    pub(crate) fn get(&self, key: &str) -> Option<KeyValue> {
        let history = &self.keys.get(key)?.recs;
        let rec = match history.last() {
            Some(last) if last.mod_revision <= self.committed => last,
            _ => Self::at(history, self.committed)?,
        };
        rec.to_kv(key)
    }

    fn check_key(key: &str) -> Result<(), StoreError> {
        if key.is_empty() {
            Err(StoreError::InvalidArgument("key must not be empty".into()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(), StoreError> {
        Self::check_key(key)?;
        match (self.live_latest(key), expected) {
            (None, _) => Err(StoreError::NotFound { key: key.into() }),
            (Some(r), Some(e)) if r.mod_revision != e => Err(StoreError::Conflict {
                key: key.into(),
                current_revision: r.mod_revision,
            }),
            _ => Ok(()),
        }
    }

    /// The history of `key`, added empty when the key is new.
    fn history_entry<'k>(
        keys: &'k mut BTreeMap<Arc<str>, KeyHistory>,
        key: &str,
    ) -> &'k mut KeyHistory {
        let k: Arc<str> = Arc::from(key);
        keys.entry(k.clone()).or_insert_with(|| KeyHistory {
            key: k,
            recs: Vec::with_capacity(1),
        })
    }

    /// Writes `value` to `key` at the next revision if `expect` holds (one
    /// map lookup: the hot path). Returns the new version.
    pub(crate) fn put(
        &mut self,
        key: &str,
        value: Bytes,
        expect: Expect,
    ) -> Result<KeyValue, StoreError> {
        Self::check_key(key)?;
        let history = match expect {
            // A create almost always adds a key: one search places it.
            Expect::Absent => Self::history_entry(&mut self.keys, key),
            Expect::ModRevision(_) => match self.keys.get_mut(key) {
                Some(h) => h,
                None => return Err(StoreError::NotFound { key: key.into() }),
            },
            Expect::Any => match self.keys.get_mut(key) {
                Some(h) => h,
                None => Self::history_entry(&mut self.keys, key),
            },
        };
        let prev = history.recs.last().filter(|r| r.live().is_some());
        match (expect, prev) {
            (Expect::Absent, Some(_)) => {
                return Err(StoreError::AlreadyExists { key: key.into() });
            }
            (Expect::ModRevision(_), None) => {
                return Err(StoreError::NotFound { key: key.into() });
            }
            (Expect::ModRevision(e), Some(p)) if p.mod_revision != e => {
                return Err(StoreError::Conflict {
                    key: key.into(),
                    current_revision: p.mod_revision,
                });
            }
            _ => {}
        }
        let prev = prev.cloned();
        let revision = self.revision + 1;
        self.revision = revision;
        let rec = match &prev {
            Some(p) => Rec {
                value: Some(value.clone()),
                create_revision: p.create_revision,
                mod_revision: revision,
                version: p.version + 1,
            },
            None => Rec {
                value: Some(value.clone()),
                create_revision: revision,
                mod_revision: revision,
                version: 1,
            },
        };
        let kv = KeyValue {
            key: key.to_owned(),
            value,
            create_revision: rec.create_revision,
            mod_revision: revision,
            version: rec.version,
        };
        let key_arc = history.key.clone();
        history.recs.push(rec.clone());
        self.append_log(LogEntry::new(key_arc, rec, prev));
        Ok(kv)
    }

    /// Deletes a live `key` at the next revision (after validation). Returns
    /// the deleted version and the deletion's revision.
    pub(crate) fn apply_delete(&mut self, key: &str) -> Option<(KeyValue, Revision)> {
        let history = self.keys.get_mut(key)?;
        let prev = history.recs.last().filter(|r| r.live().is_some())?.clone();
        let kv = prev.to_kv(key)?;
        let revision = self.revision + 1;
        self.revision = revision;
        let tomb = Rec {
            value: None,
            create_revision: 0,
            mod_revision: revision,
            version: 0,
        };
        history.recs.push(tomb.clone());
        let key_arc = history.key.clone();
        self.append_log(LogEntry::new(key_arc, tomb, Some(prev)));
        Some((kv, revision))
    }

    /// Appends the entry of the revision just applied to the event log.
    fn append_log(&mut self, entry: LogEntry) {
        if let Err(revision) = self.log.push(entry) {
            // Unreachable: revisions are applied one by one under the lock.
            tracing::error!(
                revision,
                "event log out of order; watchers will not see this write"
            );
        }
    }

    /// Replays one write-ahead-log record. The revision must be the next one.
    pub(crate) fn replay(&mut self, op: &WalOp<'_>) -> Result<(), String> {
        let revision = match op {
            WalOp::Put { revision, .. } | WalOp::Delete { revision, .. } => *revision,
        };
        if revision != self.revision + 1 {
            return Err(format!(
                "record of revision {revision} follows revision {} (gap or reordering)",
                self.revision
            ));
        }
        match op {
            WalOp::Put { key, value, .. } => {
                self.put(key, Bytes::copy_from_slice(value), Expect::Any)
                    .map_err(|e| format!("put at revision {revision}: {e}"))?;
            }
            WalOp::Delete { key, .. } => {
                if self.apply_delete(key).is_none() {
                    return Err(format!(
                        "delete of absent key {key:?} at revision {revision}"
                    ));
                }
            }
        }
        self.committed = self.revision;
        self.hub.publish_committed(self.committed);
        self.auto_compact();
        Ok(())
    }

    /// Makes revisions up to `revision` visible to readers and watchers;
    /// the caller wakes the watchers ([`WatchHub::wake_all`]) after
    /// releasing the lock.
    pub(crate) fn commit(&mut self, revision: Revision) {
        if revision > self.committed {
            self.committed = revision.min(self.revision);
            self.hub.publish_committed(self.committed);
        }
        self.auto_compact();
    }

    /// The event-log block holding `revision`, where a watcher from it starts.
    pub(crate) fn log_block(&self, revision: Revision) -> Arc<Block> {
        self.log.block_for(revision)
    }

    fn auto_compact(&mut self) {
        let Some(limit) = self.history_limit else {
            return;
        };
        let slack = (limit / 8).max(1);
        if (self.log.len() as u64) <= limit + slack {
            return;
        }
        let target = self.committed - limit as i64 + 1;
        if target > self.compact_revision {
            self.compact_to(target);
        }
    }

    /// Discards history before `revision` (which stays readable).
    pub(crate) fn compact(&mut self, revision: Revision) -> Result<(), StoreError> {
        if revision > self.committed {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.committed,
            });
        }
        if revision <= self.compact_revision {
            return Ok(());
        }
        self.compact_to(revision);
        Ok(())
    }

    fn compact_to(&mut self, revision: Revision) {
        for compacted in self.log.start()..revision {
            let Some(entry) = self.log.get(compacted) else {
                break;
            };
            let remove = match self.keys.get_mut(&*entry.key) {
                Some(KeyHistory { recs: history, .. }) => {
                    let i = history.partition_point(|r| r.mod_revision <= revision);
                    if i > 0 {
                        let keep_from = if history[i - 1].value.is_some() {
                            i - 1
                        } else {
                            i
                        };
                        history.drain(..keep_from);
                    }
                    history.is_empty()
                }
                None => false,
            };
            if remove {
                self.keys.remove(&*entry.key);
            }
        }
        self.log.truncate_front(revision);
        self.hub.publish_log_start(self.log.start());
        self.compact_revision = revision;
    }

    /// The error for a watch or list from a compacted revision.
    fn compacted(&self, requested: Revision, oldest: Revision) -> StoreError {
        StoreError::Compacted {
            requested,
            compact_revision: oldest - 1,
        }
    }

    /// Checks that a watch may start at `from` (already resolved from 0).
    pub(crate) fn check_watch_start(&self, from: Revision) -> Result<(), StoreError> {
        if from < self.log.start() {
            return Err(self.compacted(from, self.log.start()));
        }
        Ok(())
    }

    /// A (paged) list, see [`ketch_core::Store::list`].
    pub(crate) fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListPage, StoreError> {
        let (revision, start) = match &options.continue_token {
            Some(token) => {
                let (revision, start) = decode_token(token)?;
                if !start.starts_with(prefix) {
                    return Err(StoreError::InvalidArgument(
                        "continue token does not belong to this prefix".into(),
                    ));
                }
                (revision, Some(start))
            }
            None => (options.revision.unwrap_or(0), None),
        };
        let revision = if revision <= 0 {
            self.committed
        } else {
            revision
        };
        if revision > self.committed {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.committed,
            });
        }
        if revision < self.compact_revision {
            return Err(self.compacted(revision, self.compact_revision));
        }
        let limit = options.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let lower: Bound<&str> = Bound::Included(start.as_deref().unwrap_or(prefix));
        let mut items = Vec::new();
        let mut next_key: Option<&str> = None;
        let mut remaining: u64 = 0;
        let latest = revision == self.committed && self.committed == self.revision;
        for (key, history) in self.keys.range::<str, _>((lower, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            let rec = if latest {
                history.recs.last()
            } else {
                Self::at(&history.recs, revision)
            };
            let Some(rec) = rec.filter(|r| r.value.is_some()) else {
                continue;
            };
            if items.len() < limit {
                if let Some(kv) = rec.to_kv(key) {
                    items.push(kv);
                }
            } else {
                if next_key.is_none() {
                    next_key = Some(key);
                }
                remaining += 1;
            }
        }
        Ok(ListPage {
            items,
            revision,
            continue_token: next_key.map(|k| encode_token(revision, k)),
            remaining: Some(remaining),
        })
    }

    /// The latest committed versions of all live keys, for a snapshot.
    pub(crate) fn snapshot_items(&self) -> (Revision, Vec<(Arc<str>, Rec)>) {
        let revision = self.committed;
        let mut items = Vec::with_capacity(self.keys.len());
        for (key, history) in &self.keys {
            if let Some(rec) = Self::at(&history.recs, revision).filter(|r| r.value.is_some()) {
                items.push((key.clone(), rec.clone()));
            }
        }
        (revision, items)
    }

    /// All live versions at the latest applied revision (pending writes
    /// included), for the periodic snapshot of the write-ahead log.
    pub(crate) fn snapshot_items_applied(&self) -> (Revision, Vec<(Arc<str>, Rec)>) {
        let mut items = Vec::with_capacity(self.keys.len());
        for (key, history) in &self.keys {
            if let Some(rec) = history.recs.last().filter(|r| r.value.is_some()) {
                items.push((key.clone(), rec.clone()));
            }
        }
        (self.revision, items)
    }
}

fn encode_token(revision: Revision, key: &str) -> String {
    let mut token = String::with_capacity(24 + key.len() * 2);
    token.push_str(&revision.to_string());
    token.push(TOKEN_SEPARATOR);
    for b in key.as_bytes() {
        token.push_str(&format!("{b:02x}"));
    }
    token
}

fn decode_token(token: &str) -> Result<(Revision, String), StoreError> {
    let bad = || StoreError::InvalidArgument(format!("malformed continue token {token:?}"));
    let (rev, hex) = token.split_once(TOKEN_SEPARATOR).ok_or_else(bad)?;
    let revision: Revision = rev.parse().map_err(|_| bad())?;
    if revision <= 0 || hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(bad)?;
    let key = String::from_utf8(bytes).map_err(|_| bad())?;
    Ok((revision, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(state: &mut State, key: &str, value: &str) -> KeyValue {
        let kv = state
            .put(key, Bytes::copy_from_slice(value.as_bytes()), Expect::Any)
            .unwrap();
        state.commit(state.revision);
        kv
    }

    #[test]
    fn token_roundtrip_and_garbage() {
        let t = encode_token(42, "/a/é");
        assert_eq!(decode_token(&t).unwrap(), (42, "/a/é".to_string()));
        for bad in ["", "x:00", "5", "5:0", "5:zz", "-1:00", "5:ff"] {
            assert!(
                matches!(decode_token(bad), Err(StoreError::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn compaction_keeps_state_at_revision_and_drops_tombstones() {
        let mut s = State::new(None);
        put(&mut s, "/a", "1"); // 1
        put(&mut s, "/a", "2"); // 2
        put(&mut s, "/b", "1"); // 3
        s.check_delete("/b", None).unwrap();
        s.apply_delete("/b"); // 4
        s.commit(4);
        put(&mut s, "/c", "1"); // 5
        s.compact(4).unwrap();
        assert_eq!(s.keys.get("/a").map(|h| h.recs.len()), Some(1));
        assert!(!s.keys.contains_key("/b"));
        assert_eq!(s.log.start(), 4);
        let page = s
            .list(
                "/",
                &ListOptions {
                    revision: Some(4),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].value, Bytes::from_static(b"2"));
        assert!(matches!(
            s.list(
                "/",
                &ListOptions {
                    revision: Some(3),
                    ..Default::default()
                }
            ),
            Err(StoreError::Compacted {
                requested: 3,
                compact_revision: 3
            })
        ));
    }

    #[test]
    fn auto_compaction_bounds_the_log() {
        let mut s = State::new(Some(16));
        for i in 0..1000 {
            put(&mut s, "/k", &i.to_string());
        }
        assert!(s.log.len() <= 18, "log has {} entries", s.log.len());
        assert!(s.keys.get("/k").map(|h| h.recs.len()).unwrap_or(0) <= 18);
        assert_eq!(s.get("/k").map(|kv| kv.version), Some(1000));
    }

    #[test]
    fn uncommitted_writes_are_invisible() {
        let mut s = State::new(None);
        put(&mut s, "/a", "1");
        s.put("/a", Bytes::from_static(b"2"), Expect::ModRevision(1))
            .unwrap();
        assert_eq!(
            s.get("/a").map(|kv| kv.value),
            Some(Bytes::from_static(b"1"))
        );
        let page = s.list("/", &ListOptions::default()).unwrap();
        assert_eq!(page.revision, 1);
        assert_eq!(page.items[0].value, Bytes::from_static(b"1"));
        s.commit(2);
        assert_eq!(s.get("/a").map(|kv| kv.version), Some(2));
    }
}
