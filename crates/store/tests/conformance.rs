//! The conformance suite against `MemoryStore` in every mode.

use std::sync::atomic::{AtomicUsize, Ordering};

use ketch_store::conformance::{self, Suite};
use ketch_store::{FsyncPolicy, MemoryStore, MemoryStoreOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_conformance() {
    conformance::run(|| async { MemoryStore::new() })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_without_history_limit_passes_conformance() {
    let options = MemoryStoreOptions::default()
        .history_limit(None)
        .watch_batch(1);
    conformance::run(|| {
        let options = options.clone();
        async move { MemoryStore::with_options(options) }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_store_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    conformance::run(|| {
        let path = dir
            .path()
            .join(n.fetch_add(1, Ordering::Relaxed).to_string());
        async move { MemoryStore::open(path).unwrap() }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_store_with_lazy_fsync_and_tiny_snapshots_passes_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    let options = MemoryStoreOptions::default()
        .fsync(FsyncPolicy::Never)
        .snapshot_every_bytes(256);
    conformance::run(|| {
        let path = dir
            .path()
            .join(n.fetch_add(1, Ordering::Relaxed).to_string());
        let options = options.clone();
        async move { MemoryStore::open_with(path, options).unwrap() }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_store_passes_conformance_under_a_prefix() {
    use ketch_core::Store;
    let shared = MemoryStore::new();
    // Unrelated keys first, so revisions do not start at zero.
    for i in 0..10 {
        shared
            .create(&format!("/other/{i}"), "x".into())
            .await
            .unwrap();
    }
    Suite::new(|| {
        let s = shared.clone();
        async move { s }
    })
    .fresh_stores(false)
    .prefix("/run-1/")
    .run()
    .await
    .unwrap();
}
