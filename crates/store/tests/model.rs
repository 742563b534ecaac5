//! Model-based property test: random operation sequences against
//! `MemoryStore` and a plain `BTreeMap<(key, revision), value>` model agree on
//! every result, every list at every retained revision, and the watch stream.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt;
use ketch_core::{KeyValue, ListOptions, Revision, Store, StoreError, WatchEvent};
use ketch_store::{MemoryStore, MemoryStoreOptions};
use proptest::prelude::*;

const KEYS: &[&str] = &["/a", "/a/1", "/a/2", "/ab", "/b/1", "/b/2"];
const PREFIXES: &[&str] = &["", "/a", "/a/", "/b/", "/c"];

#[derive(Clone, Debug)]
enum Op {
    Create(usize, u8),
    /// Update with the right expected revision when `true`, a wrong one otherwise.
    Update(usize, u8, bool),
    /// Delete: `None` unconditionally, `Some(right)` with an expected revision.
    Delete(usize, Option<bool>),
    Get(usize),
    /// Compact this many revisions behind the current one.
    Compact(u8),
    /// List a prefix this many revisions back, paged by `limit`.
    List(usize, u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KEYS.len();
    prop_oneof![
        4 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Op::Create(k, v)),
        4 => (k.clone(), any::<u8>(), prop::bool::weighted(0.8)).prop_map(|(k, v, r)| Op::Update(k, v, r)),
        2 => (k.clone(), prop::option::of(prop::bool::weighted(0.7))).prop_map(|(k, e)| Op::Delete(k, e)),
        1 => k.prop_map(Op::Get),
        1 => (0u8..12).prop_map(Op::Compact),
        2 => (0..PREFIXES.len(), 0u8..12, 0u8..4).prop_map(|(p, b, l)| Op::List(p, b, l)),
    ]
}

/// The model: every write as `(key, revision) -> value` (`None` = deleted).
#[derive(Default)]
struct Model {
    writes: BTreeMap<(String, Revision), Option<Bytes>>,
    revision: Revision,
    compacted: Revision,
}

impl Model {
    /// The key's version at `revision` (live only).
    fn at(&self, key: &str, revision: Revision) -> Option<KeyValue> {
        let history: Vec<(Revision, &Option<Bytes>)> = self
            .writes
            .range((key.to_string(), 0)..=(key.to_string(), revision))
            .map(|((_, r), v)| (*r, v))
            .collect();
        let (mod_revision, value) = history.last()?;
        let value = (*value).clone()?;
        let life: Vec<Revision> = history
            .iter()
            .rev()
            .take_while(|(_, v)| v.is_some())
            .map(|(r, _)| *r)
            .collect();
        Some(KeyValue {
            key: key.to_string(),
            value,
            create_revision: *life.last()?,
            mod_revision: *mod_revision,
            version: life.len() as i64,
        })
    }

    fn latest(&self, key: &str) -> Option<KeyValue> {
        self.at(key, self.revision)
    }

    fn write(&mut self, key: &str, value: Option<Bytes>) -> Revision {
        self.revision += 1;
        self.writes.insert((key.to_string(), self.revision), value);
        self.revision
    }

    fn list(&self, prefix: &str, revision: Revision) -> Vec<KeyValue> {
        let mut keys: Vec<&String> = self.writes.keys().map(|(k, _)| k).collect();
        keys.dedup();
        keys.into_iter()
            .filter(|k| k.starts_with(prefix))
            .filter_map(|k| self.at(k, revision))
            .collect()
    }

    fn event(&self, revision: Revision) -> Option<WatchEvent> {
        let (key, value) = self
            .writes
            .iter()
            .find(|((_, r), _)| *r == revision)
            .map(|((k, _), v)| (k.clone(), v.clone()))?;
        let prev = self.at(&key, revision - 1);
        Some(match value {
            Some(_) => WatchEvent::Put {
                kv: self.at(&key, revision)?,
                prev,
            },
            None => WatchEvent::Delete {
                prev: prev?,
                revision,
            },
        })
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = MemoryStore::with_options(MemoryStoreOptions::default().history_limit(None));
    let mut model = Model::default();
    let mut watch = store
        .watch("/a", 1)
        .await
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    for op in ops {
        match op {
            Op::Create(k, v) => {
                let key = KEYS[k];
                let got = store.create(key, Bytes::from(vec![v])).await;
                let want = match model.latest(key) {
                    Some(_) => Err(StoreError::AlreadyExists { key: key.into() }),
                    None => {
                        model.write(key, Some(Bytes::from(vec![v])));
                        Ok(model
                            .latest(key)
                            .ok_or_else(|| TestCaseError::fail("model lost a key"))?)
                    }
                };
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Op::Update(k, v, right) => {
                let key = KEYS[k];
                let current = model.latest(key);
                let expected = match (&current, right) {
                    (Some(kv), true) => kv.mod_revision,
                    (Some(kv), false) => kv.mod_revision + 1,
                    (None, _) => 1,
                };
                let got = store.update(key, Bytes::from(vec![v]), expected).await;
                let want = match current {
                    None => Err(StoreError::NotFound { key: key.into() }),
                    Some(kv) if !right => Err(StoreError::Conflict {
                        key: key.into(),
                        current_revision: kv.mod_revision,
                    }),
                    Some(_) => {
                        model.write(key, Some(Bytes::from(vec![v])));
                        Ok(model
                            .latest(key)
                            .ok_or_else(|| TestCaseError::fail("model lost a key"))?)
                    }
                };
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Op::Delete(k, expect) => {
                let key = KEYS[k];
                let current = model.latest(key);
                let expected = match (&current, expect) {
                    (Some(kv), Some(true)) => Some(kv.mod_revision),
                    (Some(kv), Some(false)) => Some(kv.mod_revision - 1),
                    (_, e) => e.map(|_| 1),
                };
                let got = store.delete(key, expected).await;
                let want = match current {
                    None => Err(StoreError::NotFound { key: key.into() }),
                    Some(kv) if expect == Some(false) => Err(StoreError::Conflict {
                        key: key.into(),
                        current_revision: kv.mod_revision,
                    }),
                    Some(kv) => Ok((kv, model.write(key, None))),
                };
                prop_assert_eq!(got, want, "{:?}", op);
            }
            Op::Get(k) => {
                let key = KEYS[k];
                let got = store.get(key).await;
                prop_assert_eq!(got, Ok(model.latest(key)), "{:?}", op);
            }
            Op::Compact(back) => {
                let target = model.revision - back as Revision;
                if target > 0 {
                    prop_assert_eq!(store.compact(target).await, Ok(()), "{:?}", op);
                    model.compacted = model.compacted.max(target);
                }
            }
            Op::List(p, back, limit) => {
                let prefix = PREFIXES[p];
                let revision = model.revision - back as Revision;
                let options = ListOptions {
                    revision: Some(revision),
                    limit: Some(limit as usize),
                    continue_token: None,
                };
                let first = store.list(prefix, &options).await;
                if revision <= 0 {
                    // 0 and below mean "latest".
                    let page = first.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                    prop_assert_eq!(page.revision, model.revision);
                    continue;
                }
                if revision < model.compacted {
                    prop_assert!(
                        matches!(first, Err(StoreError::Compacted { requested, .. }) if requested == revision),
                        "{:?}: {:?}",
                        op,
                        first
                    );
                    continue;
                }
                let mut page = first.map_err(|e| TestCaseError::fail(format!("{op:?}: {e:?}")))?;
                let mut items = Vec::new();
                let mut pages = 0;
                loop {
                    prop_assert_eq!(page.revision, revision);
                    if limit > 0 {
                        prop_assert!(page.items.len() <= limit as usize);
                    }
                    items.extend(page.items);
                    pages += 1;
                    prop_assert!(pages < 100, "paging does not end");
                    let Some(token) = page.continue_token else {
                        break;
                    };
                    page = store
                        .list(
                            prefix,
                            &ListOptions {
                                continue_token: Some(token),
                                limit: Some(limit as usize),
                                ..Default::default()
                            },
                        )
                        .await
                        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
                }
                prop_assert_eq!(items, model.list(prefix, revision), "{:?}", op);
            }
        }
        prop_assert_eq!(store.current_revision().await, Ok(model.revision));
    }
    // The watch started at revision 1 either sees every event under "/a" in
    // order, or, when compaction left it behind, says so instead of skipping.
    let wanted = |from: Revision| -> Vec<WatchEvent> {
        (from..=model.revision)
            .filter_map(|r| model.event(r))
            .filter(|e| e.key().starts_with("/a"))
            .collect()
    };
    let all = wanted(1);
    let mut got = Vec::new();
    while got.len() < all.len() {
        match tokio::time::timeout(std::time::Duration::from_secs(5), watch.next()).await {
            Ok(Some(Ok(ev))) => got.push(std::sync::Arc::unwrap_or_clone(ev)),
            Ok(Some(Err(StoreError::WatchLagged { resume_revision }))) => {
                prop_assert!(resume_revision < model.compacted);
                prop_assert_eq!(&got[..], &all[..got.len()]);
                break;
            }
            other => return Err(TestCaseError::fail(format!("watch: {other:?}"))),
        }
    }
    if model.compacted <= 1 {
        prop_assert_eq!(&got, &all);
    }
    // A watch from the oldest retained revision sees everything after it.
    let from = model.compacted.max(1);
    let mut watch = store
        .watch("/a", from)
        .await
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    for (i, want) in wanted(from).into_iter().enumerate() {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(5), watch.next()).await;
        let ev = ev.map(|ev| ev.map(|ev| ev.map(std::sync::Arc::unwrap_or_clone)));
        prop_assert_eq!(ev, Ok(Some(Ok(want))), "event {} from {}", i, from);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_agrees_with_a_btreemap_model(ops in prop::collection::vec(op(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
