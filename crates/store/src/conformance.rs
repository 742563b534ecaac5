//! A conformance suite for [`Store`] implementations: one call runs every
//! semantic check of the trait's contract (etcd's semantics) against a store.
//!
//! Give it a factory of stores. With fresh, empty stores (the default) every
//! check runs on its own store. On a shared store (for example one etcd
//! cluster) call [`Suite::fresh_stores`] with `false` and a unique
//! [`Suite::prefix`]: the checks then only use keys under that prefix and
//! count revisions relative to the revision they start at, so nothing else
//! may write to the store while the suite runs.
//!
//! ```
//! use ketch_store::{MemoryStore, conformance};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! conformance::run(|| async { MemoryStore::new() }).await.unwrap();
//! # });
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use ketch_core::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// A failed conformance check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("conformance check `{check}` failed: {message}")]
pub struct ConformanceError {
    /// The name of the check (one of [`CHECKS`]).
    pub check: &'static str,
    /// What differed from the contract.
    pub message: String,
}

type CheckResult = Result<(), String>;
type CheckFuture = Pin<Box<dyn Future<Output = CheckResult> + Send>>;
type CheckFn = fn(Ctx) -> CheckFuture;

/// What a check gets: the store, its key prefix and the per-step timeout.
#[derive(Clone)]
struct Ctx {
    store: Arc<dyn Store>,
    prefix: String,
    timeout: Duration,
}

impl Ctx {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

macro_rules! ensure_eq {
    ($left:expr, $right:expr, $what:expr) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(format!("{}: got {:?}, expected {:?}", $what, l, r));
        }
    }};
}

fn ok<T>(what: &str, result: Result<T, StoreError>) -> Result<T, String> {
    result.map_err(|e| format!("{what}: unexpected error {e:?}"))
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The names of all checks, in the order they run.
pub const CHECKS: &[&str] = &[
    "empty_store_starts_at_revision_zero",
    "create_get_update_delete",
    "compare_and_swap_conflicts",
    "values_roundtrip_bytes",
    "invalid_arguments",
    "list_prefix_isolation_and_order",
    "list_at_past_revision",
    "paged_list_is_one_snapshot",
    "watch_from_revision_with_prev_values",
    "watch_from_now",
    "watch_prefix_isolation",
    "watch_order_no_gaps_no_duplicates",
    "watch_resume_from_revision",
    "compaction",
    "concurrent_cas_counter",
    "concurrent_create_has_one_winner",
];

fn check_fn(name: &str) -> Option<CheckFn> {
    Some(match name {
        "empty_store_starts_at_revision_zero" => |c| Box::pin(empty_store(c)),
        "create_get_update_delete" => |c| Box::pin(crud(c)),
        "compare_and_swap_conflicts" => |c| Box::pin(cas(c)),
        "values_roundtrip_bytes" => |c| Box::pin(values(c)),
        "invalid_arguments" => |c| Box::pin(invalid(c)),
        "list_prefix_isolation_and_order" => |c| Box::pin(list_prefix(c)),
        "list_at_past_revision" => |c| Box::pin(list_past(c)),
        "paged_list_is_one_snapshot" => |c| Box::pin(list_paged(c)),
        "watch_from_revision_with_prev_values" => |c| Box::pin(watch_from_revision(c)),
        "watch_from_now" => |c| Box::pin(watch_from_now(c)),
        "watch_prefix_isolation" => |c| Box::pin(watch_prefix(c)),
        "watch_order_no_gaps_no_duplicates" => |c| Box::pin(watch_order(c)),
        "watch_resume_from_revision" => |c| Box::pin(watch_resume(c)),
        "compaction" => |c| Box::pin(compaction(c)),
        "concurrent_cas_counter" => |c| Box::pin(cas_counter(c)),
        "concurrent_create_has_one_winner" => |c| Box::pin(create_race(c)),
        _ => return None,
    })
}

/// Runs every check, each on a fresh store from `factory`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// ketch_store::conformance::run(|| async { ketch_store::MemoryStore::new() }).await.unwrap();
/// # });
/// ```
pub async fn run<F, Fut, S>(factory: F) -> Result<(), ConformanceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
    S: Store,
{
    Suite::new(factory).run().await
}

/// A configured conformance run; [`run`] is `Suite::new(factory).run()`.
///
/// ```
/// use ketch_store::{MemoryStore, conformance::Suite};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let shared = MemoryStore::new();
/// Suite::new(|| { let s = shared.clone(); async move { s } })
///     .fresh_stores(false)
///     .prefix("/conformance-run-1/")
///     .run()
///     .await
///     .unwrap();
/// # });
/// ```
pub struct Suite<F> {
    factory: F,
    prefix: String,
    fresh: bool,
    timeout: Duration,
    only: Option<Vec<String>>,
}

impl<F, Fut, S> Suite<F>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
    S: Store,
{
    /// A suite over stores made by `factory` (called once per check).
    ///
    /// ```
    /// let suite = ketch_store::conformance::Suite::new(|| async { ketch_store::MemoryStore::new() });
    /// # let _ = suite;
    /// ```
    pub fn new(factory: F) -> Self {
        Suite {
            factory,
            prefix: "/conformance/".into(),
            fresh: true,
            timeout: Duration::from_secs(10),
            only: None,
        }
    }

    /// Every key the checks write starts with this (each check adds its own
    /// name). Default: `/conformance/`.
    ///
    /// ```
    /// let suite = ketch_store::conformance::Suite::new(|| async { ketch_store::MemoryStore::new() })
    ///     .prefix("/test-42/");
    /// # let _ = suite;
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Whether the factory returns fresh, empty stores (default `true`).
    /// With `false` the checks that need an empty store are skipped.
    ///
    /// ```
    /// let suite = ketch_store::conformance::Suite::new(|| async { ketch_store::MemoryStore::new() })
    ///     .fresh_stores(false);
    /// # let _ = suite;
    /// ```
    pub fn fresh_stores(mut self, fresh: bool) -> Self {
        self.fresh = fresh;
        self
    }

    /// How long one step (a read of a watch event, a write) may take before
    /// the check fails instead of hanging. Default: 10 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let suite = ketch_store::conformance::Suite::new(|| async { ketch_store::MemoryStore::new() })
    ///     .timeout(Duration::from_secs(30));
    /// # let _ = suite;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs only the named checks (see [`CHECKS`]).
    ///
    /// ```
    /// let suite = ketch_store::conformance::Suite::new(|| async { ketch_store::MemoryStore::new() })
    ///     .only(["compaction"]);
    /// # let _ = suite;
    /// ```
    pub fn only<I: IntoIterator<Item = N>, N: Into<String>>(mut self, names: I) -> Self {
        self.only = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Runs the checks in order and stops at the first failure.
    pub async fn run(mut self) -> Result<(), ConformanceError> {
        if let Some(only) = &self.only
            && let Some(unknown) = only.iter().find(|n| !CHECKS.contains(&n.as_str()))
        {
            return Err(ConformanceError {
                check: "suite",
                message: format!("unknown check {unknown:?}"),
            });
        }
        for &name in CHECKS {
            if self
                .only
                .as_ref()
                .is_some_and(|only| !only.iter().any(|n| n == name))
            {
                continue;
            }
            if name == "empty_store_starts_at_revision_zero" && !self.fresh {
                continue;
            }
            let Some(check) = check_fn(name) else {
                continue;
            };
            let store: Arc<dyn Store> = Arc::new((self.factory)().await);
            let ctx = Ctx {
                store,
                prefix: format!("{}{name}/", self.prefix),
                timeout: self.timeout,
            };
            let deadline = self.timeout * 30;
            let result = match tokio::time::timeout(deadline, check(ctx)).await {
                Ok(r) => r,
                Err(_) => Err(format!("did not finish within {deadline:?}")),
            };
            result.map_err(|message| ConformanceError {
                check: name,
                message,
            })?;
        }
        Ok(())
    }
}

async fn rev(c: &Ctx) -> Result<Revision, String> {
    ok("current_revision", c.store.current_revision().await)
}

async fn list(c: &Ctx, prefix: &str, options: ListOptions) -> Result<ListPage, String> {
    ok(
        &format!("list {prefix:?}"),
        c.store.list(prefix, &options).await,
    )
}

fn at(revision: Revision) -> ListOptions {
    ListOptions {
        revision: Some(revision),
        ..ListOptions::default()
    }
}

async fn next_event(c: &Ctx, w: &mut WatchStream) -> Result<WatchEvent, String> {
    match tokio::time::timeout(c.timeout, w.next()).await {
        Err(_) => Err(format!("no watch event within {:?}", c.timeout)),
        Ok(None) => Err("watch stream ended unexpectedly".into()),
        Ok(Some(Err(e))) => Err(format!("watch stream failed: {e:?}")),
        Ok(Some(Ok(ev))) => Ok(Arc::unwrap_or_clone(ev)),
    }
}

/// Asserts no event arrives within a short quiet period.
async fn no_event(w: &mut WatchStream) -> CheckResult {
    match tokio::time::timeout(Duration::from_millis(200), w.next()).await {
        Err(_) => Ok(()),
        Ok(other) => Err(format!("expected no more watch events, got {other:?}")),
    }
}

fn items(page: &ListPage) -> Vec<(String, Bytes)> {
    page.items
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect()
}

async fn empty_store(c: Ctx) -> CheckResult {
    ensure_eq!(rev(&c).await?, 0, "revision of an empty store");
    let page = list(&c, "", ListOptions::default()).await?;
    ensure!(page.items.is_empty(), "empty store lists {:?}", page.items);
    ensure_eq!(page.revision, 0, "list revision of an empty store");
    let kv = ok("create", c.store.create(&c.key("a"), b("1")).await)?;
    ensure_eq!(kv.mod_revision, 1, "revision of the first write");
    ensure_eq!(rev(&c).await?, 1, "revision after the first write");
    Ok(())
}

async fn crud(c: Ctx) -> CheckResult {
    let base = rev(&c).await?;
    let key = c.key("obj");
    ensure_eq!(
        ok("get missing", c.store.get(&key).await)?,
        None,
        "get of a missing key"
    );
    let kv = ok("create", c.store.create(&key, b("v1")).await)?;
    let want = KeyValue {
        key: key.clone(),
        value: b("v1"),
        create_revision: base + 1,
        mod_revision: base + 1,
        version: 1,
    };
    ensure_eq!(kv, want, "created key-value");
    ensure_eq!(rev(&c).await?, base + 1, "revision after create");
    ensure_eq!(
        ok("get", c.store.get(&key).await)?,
        Some(want.clone()),
        "get after create"
    );
    ensure_eq!(
        c.store.create(&key, b("again")).await,
        Err(StoreError::AlreadyExists { key: key.clone() }),
        "create of an existing key"
    );
    ensure_eq!(rev(&c).await?, base + 1, "revision after a failed create");
    let kv = ok("update", c.store.update(&key, b("v2"), base + 1).await)?;
    ensure_eq!(
        (
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.value.clone()
        ),
        (base + 1, base + 2, 2, b("v2")),
        "updated key-value (create rev, mod rev, version, value)"
    );
    ensure_eq!(
        ok("get", c.store.get(&key).await)?,
        Some(kv.clone()),
        "get after update"
    );
    let (deleted, del_rev) = ok("delete", c.store.delete(&key, None).await)?;
    ensure_eq!(deleted, kv, "delete returns the last value");
    ensure_eq!(del_rev, base + 3, "revision of the delete");
    ensure_eq!(rev(&c).await?, base + 3, "revision after delete");
    ensure_eq!(
        ok("get deleted", c.store.get(&key).await)?,
        None,
        "get after delete"
    );
    ensure_eq!(
        c.store.delete(&key, None).await,
        Err(StoreError::NotFound { key: key.clone() }),
        "delete of a missing key"
    );
    ensure_eq!(
        c.store.update(&key, b("x"), base + 2).await,
        Err(StoreError::NotFound { key: key.clone() }),
        "update of a deleted key"
    );
    let kv = ok("re-create", c.store.create(&key, b("v3")).await)?;
    ensure_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (base + 4, base + 4, 1),
        "re-created key starts a new life (create rev, mod rev, version)"
    );
    ensure_eq!(rev(&c).await?, base + 4, "revision after re-create");
    Ok(())
}

async fn cas(c: Ctx) -> CheckResult {
    let base = rev(&c).await?;
    let key = c.key("cas");
    ok("create", c.store.create(&key, b("1")).await)?;
    ok(
        "create other",
        c.store.create(&c.key("other"), b("x")).await,
    )?;
    ensure_eq!(
        c.store.update(&key, b("2"), base + 2).await,
        Err(StoreError::Conflict {
            key: key.clone(),
            current_revision: base + 1
        }),
        "update with a stale expected revision"
    );
    ensure_eq!(
        c.store.update(&key, b("2"), 0).await,
        Err(StoreError::Conflict {
            key: key.clone(),
            current_revision: base + 1
        }),
        "update expecting revision 0"
    );
    ensure_eq!(rev(&c).await?, base + 2, "revision after failed updates");
    ok("update", c.store.update(&key, b("2"), base + 1).await)?;
    ensure_eq!(
        c.store.update(&key, b("3"), base + 1).await,
        Err(StoreError::Conflict {
            key: key.clone(),
            current_revision: base + 3
        }),
        "second update with the same expected revision"
    );
    ensure_eq!(
        c.store.delete(&key, Some(base + 1)).await,
        Err(StoreError::Conflict {
            key: key.clone(),
            current_revision: base + 3
        }),
        "delete with a stale expected revision"
    );
    let (_, r) = ok("delete", c.store.delete(&key, Some(base + 3)).await)?;
    ensure_eq!(r, base + 4, "revision of a CAS delete");
    ensure_eq!(
        c.store.delete(&key, Some(base + 3)).await,
        Err(StoreError::NotFound { key: key.clone() }),
        "CAS delete of a missing key"
    );
    let conflict = StoreError::Conflict {
        key: key.clone(),
        current_revision: 1,
    };
    ensure!(conflict.is_retryable(), "Conflict must be retryable");
    ensure!(
        !StoreError::NotFound { key }.is_retryable(),
        "NotFound must not be retryable"
    );
    Ok(())
}

async fn values(c: Ctx) -> CheckResult {
    let cases: Vec<(&str, Bytes)> = vec![
        ("empty", Bytes::new()),
        ("binary", Bytes::from((0..=255u8).collect::<Vec<u8>>())),
        ("large", Bytes::from(vec![0xab; 256 * 1024])),
        ("unicode-ключ", b("значение")),
    ];
    for (name, value) in cases {
        let key = c.key(name);
        let kv = ok("create", c.store.create(&key, value.clone()).await)?;
        ensure_eq!(
            kv.value,
            value,
            format!("value returned by create of {name}")
        );
        let got = ok("get", c.store.get(&key).await)?.map(|kv| kv.value);
        ensure_eq!(got, Some(value), format!("value read back for {name}"));
    }
    Ok(())
}

async fn invalid(c: Ctx) -> CheckResult {
    ensure!(
        matches!(
            c.store.create("", b("x")).await,
            Err(StoreError::InvalidArgument(_))
        ),
        "create of the empty key must fail InvalidArgument"
    );
    ok("create", c.store.create(&c.key("a"), b("1")).await)?;
    let bad = ListOptions {
        continue_token: Some("not a token".into()),
        ..ListOptions::default()
    };
    ensure!(
        matches!(
            c.store.list(&c.prefix, &bad).await,
            Err(StoreError::InvalidArgument(_))
        ),
        "list with a garbage continue token must fail InvalidArgument"
    );
    let current = rev(&c).await?;
    ensure_eq!(
        c.store.list(&c.prefix, &at(current + 10)).await,
        Err(StoreError::FutureRevision {
            requested: current + 10,
            current
        }),
        "list at a future revision"
    );
    Ok(())
}

async fn list_prefix(c: Ctx) -> CheckResult {
    let p = &c.prefix;
    for k in ["b", "a", "c/d", "c", "a/x"] {
        ok("create", c.store.create(&format!("{p}dir/{k}"), b(k)).await)?;
    }
    // Siblings that share the prefix as a string but not as a directory.
    ok(
        "create",
        c.store.create(&format!("{p}dir"), b("self")).await,
    )?;
    ok(
        "create",
        c.store.create(&format!("{p}dirx/a"), b("x")).await,
    )?;
    let page = list(&c, &format!("{p}dir/"), ListOptions::default()).await?;
    let keys: Vec<String> = page.items.iter().map(|kv| kv.key.clone()).collect();
    let want: Vec<String> = ["a", "a/x", "b", "c", "c/d"]
        .iter()
        .map(|k| format!("{p}dir/{k}"))
        .collect();
    ensure_eq!(keys, want, "keys listed under the prefix, in order");
    ensure_eq!(page.revision, rev(&c).await?, "list revision");
    ensure_eq!(
        page.continue_token,
        None,
        "continue token of a complete list"
    );
    let all = list(&c, p, ListOptions::default()).await?;
    ensure_eq!(all.items.len(), 7, "items under the check prefix");
    let none = list(&c, &format!("{p}nothing/"), ListOptions::default()).await?;
    ensure!(none.items.is_empty(), "empty prefix lists {:?}", none.items);
    Ok(())
}

async fn list_past(c: Ctx) -> CheckResult {
    let (a, bk, ck) = (c.key("a"), c.key("b"), c.key("c"));
    let r1 = ok("create a", c.store.create(&a, b("a1")).await)?.mod_revision;
    let r2 = ok("create b", c.store.create(&bk, b("b1")).await)?.mod_revision;
    let r3 = ok("update a", c.store.update(&a, b("a2"), r1).await)?.mod_revision;
    let (_, r4) = ok("delete b", c.store.delete(&bk, None).await)?;
    let r5 = ok("create c", c.store.create(&ck, b("c1")).await)?.mod_revision;
    let cases = [
        (r1 - 1, vec![]),
        (r1, vec![(a.clone(), b("a1"))]),
        (r2, vec![(a.clone(), b("a1")), (bk.clone(), b("b1"))]),
        (r3, vec![(a.clone(), b("a2")), (bk.clone(), b("b1"))]),
        (r4, vec![(a.clone(), b("a2"))]),
        (r5, vec![(a.clone(), b("a2")), (ck.clone(), b("c1"))]),
    ];
    for (revision, want) in cases {
        if revision <= 0 {
            continue;
        }
        let page = list(&c, &c.prefix, at(revision)).await?;
        ensure_eq!(items(&page), want, format!("list at revision {revision}"));
        ensure_eq!(page.revision, revision, "revision of a list at a revision");
    }
    let page = list(&c, &c.prefix, at(r2)).await?;
    let a_at_r2 = page
        .items
        .first()
        .map(|kv| (kv.create_revision, kv.mod_revision, kv.version));
    ensure_eq!(a_at_r2, Some((r1, r1, 1)), "revisions of a past version");
    let latest = list(&c, &c.prefix, ListOptions::default()).await?;
    ensure_eq!(latest.revision, r5, "latest list revision");
    Ok(())
}

async fn list_paged(c: Ctx) -> CheckResult {
    let mut created = BTreeMap::new();
    for i in 0..25 {
        let key = c.key(&format!("k{i:02}"));
        let kv = ok("create", c.store.create(&key, b(&format!("v{i}"))).await)?;
        created.insert(key, kv);
    }
    let snapshot_rev = rev(&c).await?;
    let full = list(&c, &c.prefix, ListOptions::default()).await?;
    let opts = ListOptions {
        limit: Some(10),
        ..ListOptions::default()
    };
    let page1 = list(&c, &c.prefix, opts.clone()).await?;
    ensure_eq!(page1.items.len(), 10, "first page size");
    ensure_eq!(page1.revision, snapshot_rev, "first page revision");
    ensure_eq!(
        page1.remaining,
        page1.remaining.map(|_| 15),
        "remaining after page 1"
    );
    let Some(token) = page1.continue_token.clone() else {
        return Err("first page has no continue token".into());
    };
    // Writes between pages must not show in later pages.
    let k15 = c.key("k15");
    let rev15 = created.get(&k15).map(|kv| kv.mod_revision).unwrap_or(0);
    ok(
        "update k15",
        c.store.update(&k15, b("changed"), rev15).await,
    )?;
    ok("delete k20", c.store.delete(&c.key("k20"), None).await)?;
    ok(
        "create k12a",
        c.store.create(&c.key("k12a"), b("new")).await,
    )?;
    let mut pages = vec![page1];
    let mut token = Some(token);
    while let Some(t) = token {
        ensure!(pages.len() < 10, "paging does not end");
        let page = list(
            &c,
            &c.prefix,
            ListOptions {
                limit: Some(10),
                continue_token: Some(t),
                ..ListOptions::default()
            },
        )
        .await?;
        ensure_eq!(page.revision, snapshot_rev, "revision of a continued page");
        token = page.continue_token.clone();
        pages.push(page);
    }
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    ensure_eq!(sizes, vec![10, 10, 5], "page sizes");
    let paged: Vec<KeyValue> = pages.into_iter().flat_map(|p| p.items).collect();
    ensure_eq!(
        paged,
        full.items,
        "paged list equals the unpaged list at its revision"
    );
    let unlimited = ListOptions {
        limit: Some(0),
        ..ListOptions::default()
    };
    let latest = list(&c, &c.prefix, unlimited).await?;
    ensure_eq!(
        latest.items.len(),
        25,
        "latest list after writes between pages"
    );
    Ok(())
}

async fn watch_from_revision(c: Ctx) -> CheckResult {
    let key = c.key("w");
    let kv1 = ok("create", c.store.create(&key, b("1")).await)?;
    let kv2 = ok(
        "update",
        c.store.update(&key, b("2"), kv1.mod_revision).await,
    )?;
    let (deleted, del_rev) = ok("delete", c.store.delete(&key, None).await)?;
    let kv3 = ok("re-create", c.store.create(&key, b("3")).await)?;
    let mut w = ok("watch", c.store.watch(&c.prefix, kv1.mod_revision).await)?;
    let want = [
        WatchEvent::Put {
            kv: kv1.clone(),
            prev: None,
        },
        WatchEvent::Put {
            kv: kv2.clone(),
            prev: Some(kv1.clone()),
        },
        WatchEvent::Delete {
            prev: deleted,
            revision: del_rev,
        },
        WatchEvent::Put {
            kv: kv3.clone(),
            prev: None,
        },
    ];
    for (i, expected) in want.iter().enumerate() {
        ensure_eq!(
            next_event(&c, &mut w).await?,
            *expected,
            format!("event {i}")
        );
    }
    let kv4 = ok(
        "update",
        c.store.update(&key, b("4"), kv3.mod_revision).await,
    )?;
    ensure_eq!(
        next_event(&c, &mut w).await?,
        WatchEvent::Put {
            kv: kv4,
            prev: Some(kv3)
        },
        "live event after history"
    );
    let mut w2 = ok("watch", c.store.watch(&c.prefix, kv2.mod_revision).await)?;
    ensure_eq!(
        next_event(&c, &mut w2).await?.revision(),
        kv2.mod_revision,
        "first event of a watch from a middle revision"
    );
    Ok(())
}

async fn watch_from_now(c: Ctx) -> CheckResult {
    ok("create", c.store.create(&c.key("before"), b("x")).await)?;
    let mut w = ok("watch", c.store.watch(&c.prefix, 0).await)?;
    let kv = ok("create", c.store.create(&c.key("after"), b("y")).await)?;
    ensure_eq!(
        next_event(&c, &mut w).await?,
        WatchEvent::Put { kv, prev: None },
        "first event of a watch from now"
    );
    no_event(&mut w).await
}

async fn watch_prefix(c: Ctx) -> CheckResult {
    let p = &c.prefix;
    let mut w = ok("watch", c.store.watch(&format!("{p}a/"), 0).await)?;
    ok("create", c.store.create(&format!("{p}ab"), b("1")).await)?;
    ok("create", c.store.create(&format!("{p}b/x"), b("1")).await)?;
    ok("create", c.store.create(&format!("{p}a"), b("1")).await)?;
    let kv = ok("create", c.store.create(&format!("{p}a/x"), b("1")).await)?;
    ensure_eq!(
        next_event(&c, &mut w).await?,
        WatchEvent::Put { kv, prev: None },
        "only event under the watched prefix"
    );
    no_event(&mut w).await
}

async fn watch_order(c: Ctx) -> CheckResult {
    let start = rev(&c).await? + 1;
    let mut w = ok("watch", c.store.watch(&c.prefix, start).await)?;
    let writes = 500;
    let mut expected = Vec::with_capacity(writes);
    let mut mods: BTreeMap<String, Revision> = BTreeMap::new();
    for i in 0..writes {
        let key = c.key(&format!("k{}", i % 10));
        let kv = match mods.get(&key) {
            None => ok("create", c.store.create(&key, b(&i.to_string())).await)?,
            Some(&m) => ok("update", c.store.update(&key, b(&i.to_string()), m).await)?,
        };
        mods.insert(key, kv.mod_revision);
        expected.push(kv);
    }
    for (i, want) in expected.iter().enumerate() {
        let ev = next_event(&c, &mut w).await?;
        ensure_eq!(
            ev.revision(),
            start + i as Revision,
            format!("revision of event {i}")
        );
        match ev {
            WatchEvent::Put { kv, .. } => ensure_eq!(kv, *want, format!("event {i}")),
            other => return Err(format!("event {i}: expected a put, got {other:?}")),
        }
    }
    no_event(&mut w).await
}

async fn watch_resume(c: Ctx) -> CheckResult {
    let start = rev(&c).await? + 1;
    let mut w = ok("watch", c.store.watch(&c.prefix, 0).await)?;
    for i in 0..100 {
        ok(
            "create",
            c.store.create(&c.key(&format!("k{i:03}")), b("x")).await,
        )?;
    }
    let mut last = 0;
    for _ in 0..50 {
        last = next_event(&c, &mut w).await?.revision();
    }
    ensure_eq!(last, start + 49, "revision of the 50th event");
    drop(w);
    let mut w = ok("resume", c.store.watch(&c.prefix, last + 1).await)?;
    for i in 50..100 {
        let ev = next_event(&c, &mut w).await?;
        ensure_eq!(ev.revision(), start + i, format!("resumed event {i}"));
        ensure_eq!(
            ev.key(),
            c.key(&format!("k{i:03}")),
            format!("key of resumed event {i}")
        );
    }
    no_event(&mut w).await
}

async fn compaction(c: Ctx) -> CheckResult {
    let key = c.key("c");
    let mut kv = ok("create", c.store.create(&key, b("0")).await)?;
    for i in 1..10 {
        kv = ok(
            "update",
            c.store
                .update(&key, b(&i.to_string()), kv.mod_revision)
                .await,
        )?;
    }
    let first = kv.mod_revision - 9;
    let target = first + 5;
    let paged = list(
        &c,
        &c.prefix,
        ListOptions {
            revision: Some(first + 1),
            limit: Some(1),
            ..ListOptions::default()
        },
    )
    .await?;
    ok("create", c.store.create(&c.key("d"), b("d")).await)?;
    ok("compact", c.store.compact(target).await)?;
    match c.store.list(&c.prefix, &at(target - 1)).await {
        Err(StoreError::Compacted { requested, .. }) => {
            ensure_eq!(requested, target - 1, "requested revision in Compacted")
        }
        other => return Err(format!("list below the compaction: {other:?}")),
    }
    let page = list(&c, &c.prefix, at(target)).await?;
    ensure_eq!(
        items(&page),
        vec![(key.clone(), b("5"))],
        "list at the compacted revision"
    );
    match c.store.watch(&c.prefix, target - 1).await {
        Err(StoreError::Compacted { requested, .. }) => {
            ensure_eq!(
                requested,
                target - 1,
                "requested revision of a compacted watch"
            )
        }
        Err(e) => return Err(format!("watch below the compaction: {e:?}")),
        Ok(_) => return Err("watch below the compaction started".into()),
    }
    let mut w = ok(
        "watch at compaction",
        c.store.watch(&c.prefix, target).await,
    )?;
    ensure_eq!(
        next_event(&c, &mut w).await?.revision(),
        target,
        "first event at compaction"
    );
    if let Some(token) = paged.continue_token {
        let continued = c
            .store
            .list(
                &c.prefix,
                &ListOptions {
                    continue_token: Some(token),
                    ..ListOptions::default()
                },
            )
            .await;
        ensure!(
            matches!(continued, Err(StoreError::Compacted { .. })),
            "continuing a compacted paged list: {continued:?}"
        );
    }
    ensure_eq!(
        ok("get", c.store.get(&key).await)?.map(|kv| kv.value),
        Some(b("9")),
        "latest value after compaction"
    );
    let current = rev(&c).await?;
    ensure!(
        matches!(
            c.store.compact(current + 5).await,
            Err(StoreError::FutureRevision { .. })
        ),
        "compaction of a future revision must fail FutureRevision"
    );
    ok(
        "update after compaction",
        c.store.update(&key, b("10"), kv.mod_revision).await,
    )?;
    Ok(())
}

async fn cas_counter(c: Ctx) -> CheckResult {
    const TASKS: usize = 8;
    const INCREMENTS: usize = 25;
    let key = c.key("counter");
    let mut w = ok("watch", c.store.watch(&c.prefix, 0).await)?;
    ok("create", c.store.create(&key, b("0")).await)?;
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = c.store.clone();
        let key = key.clone();
        handles.push(tokio::spawn(async move {
            let mut done = 0;
            while done < INCREMENTS {
                let Some(kv) = ok("get", store.get(&key).await)? else {
                    return Err("counter vanished".to_string());
                };
                let n: usize = std::str::from_utf8(&kv.value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or("counter is not a number")?;
                match store
                    .update(&key, b(&(n + 1).to_string()), kv.mod_revision)
                    .await
                {
                    Ok(_) => done += 1,
                    Err(StoreError::Conflict { .. }) => tokio::task::yield_now().await,
                    Err(e) => return Err(format!("increment failed: {e:?}")),
                }
            }
            Ok(())
        }));
    }
    for h in handles {
        h.await.map_err(|e| format!("task panicked: {e}"))??;
    }
    let total = TASKS * INCREMENTS;
    let kv = ok("get", c.store.get(&key).await)?.ok_or("counter missing")?;
    ensure_eq!(kv.value, b(&total.to_string()), "final counter value");
    ensure_eq!(kv.version, total as i64 + 1, "final counter version");
    for expected in 0..=total {
        match next_event(&c, &mut w).await? {
            WatchEvent::Put { kv, prev } => {
                ensure_eq!(kv.value, b(&expected.to_string()), "watched counter value");
                let prev_value = prev.map(|p| p.value);
                let want_prev = expected.checked_sub(1).map(|p| b(&p.to_string()));
                ensure_eq!(prev_value, want_prev, "previous value in the event");
            }
            other => return Err(format!("unexpected event {other:?}")),
        }
    }
    Ok(())
}

async fn create_race(c: Ctx) -> CheckResult {
    let key = c.key("race");
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = c.store.clone();
        let key = key.clone();
        handles.push(tokio::spawn(async move {
            store.create(&key, b(&i.to_string())).await
        }));
    }
    let mut winners = 0;
    for h in handles {
        match h.await.map_err(|e| format!("task panicked: {e}"))? {
            Ok(_) => winners += 1,
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(format!("racing create failed: {e:?}")),
        }
    }
    ensure_eq!(winners, 1, "number of successful racing creates");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[tokio::test]
    async fn every_check_name_has_a_function() {
        for name in CHECKS {
            assert!(check_fn(name).is_some(), "{name}");
        }
    }

    #[tokio::test]
    async fn unknown_check_name_is_an_error() {
        let err = Suite::new(|| async { MemoryStore::new() })
            .only(["no_such_check"])
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.check, "suite");
    }

    /// A store that breaks one rule: watches skip every other event.
    struct GappyWatch(MemoryStore);

    #[async_trait::async_trait]
    impl Store for GappyWatch {
        async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
            self.0.get(key).await
        }
        async fn list(&self, prefix: &str, o: &ListOptions) -> Result<ListPage, StoreError> {
            self.0.list(prefix, o).await
        }
        async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
            self.0.create(key, value).await
        }
        async fn update(&self, key: &str, v: Bytes, r: Revision) -> Result<KeyValue, StoreError> {
            self.0.update(key, v, r).await
        }
        async fn delete(
            &self,
            key: &str,
            r: Option<Revision>,
        ) -> Result<(KeyValue, Revision), StoreError> {
            self.0.delete(key, r).await
        }
        async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream, StoreError> {
            let inner = self.0.watch(prefix, from).await?;
            Ok(Box::pin(
                inner
                    .enumerate()
                    .filter(|(i, _)| futures::future::ready(i % 2 == 0))
                    .map(|(_, e)| e),
            ))
        }
        async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
            self.0.compact(revision).await
        }
        async fn current_revision(&self) -> Result<Revision, StoreError> {
            self.0.current_revision().await
        }
    }

    #[tokio::test]
    async fn a_store_with_watch_gaps_fails() {
        let err = Suite::new(|| async { GappyWatch(MemoryStore::new()) })
            .timeout(Duration::from_millis(300))
            .run()
            .await
            .unwrap_err();
        assert!(err.check.starts_with("watch"), "{err}");
    }
}
