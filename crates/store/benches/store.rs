//! Benchmarks of `MemoryStore`:
//! - `memory/update_one_task`: CAS updates from one task (goal ≥ 1,000,000/s);
//! - `memory/list_100k`: a list of 100,000 keys (goal < 50 ms);
//! - `durable/64_writers`: acknowledged (fsynced) creates from 64 concurrent
//!   writers (goal ≥ 50,000/s); with the `etcd` feature the same writes go to
//!   a single-member etcd through etcd-client in the same run, and the ratio
//!   is printed (goal ≥ 3x);
//! - `watch/1000_watchers_10k_writes_per_s`: 1,000 watchers on one prefix at
//!   10,000 writes/s; the delivery latency percentiles are printed (goal:
//!   p99 < 10 ms).
//!
//! Run: `cargo bench -p ketch-store --bench store` (add `--features etcd`
//! for the etcd comparison; needs `/usr/bin/etcd` from `etcd-server`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use ketch_core::{ListOptions, Revision, Store};
use ketch_store::{MemoryStore, MemoryStoreOptions};

const VALUE: &[u8] = &[b'v'; 128];

fn runtime(threads: usize) -> tokio::runtime::Runtime {
    if threads == 0 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .expect("runtime")
    }
}

fn memory(c: &mut Criterion) {
    let rt = runtime(0);
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(1));
    group.bench_function("update_one_task", |b| {
        let store = MemoryStore::new();
        let keys: Vec<String> = (0..1000).map(|i| format!("/bench/update/{i:04}")).collect();
        let revs: Vec<Revision> = rt.block_on(async {
            let mut revs = Vec::new();
            for k in &keys {
                revs.push(
                    store
                        .create(k, Bytes::from_static(VALUE))
                        .await
                        .expect("create")
                        .mod_revision,
                );
            }
            revs
        });
        let revs = Arc::new(Mutex::new(revs));
        b.to_async(&rt).iter_custom(|iters| {
            let store = store.clone();
            let keys = keys.clone();
            let revs = revs.clone();
            async move {
                let mut local = revs.lock().expect("revs").clone();
                let value = Bytes::from_static(VALUE);
                let start = Instant::now();
                for i in 0..iters as usize {
                    let k = i % keys.len();
                    let kv = store
                        .update(&keys[k], value.clone(), local[k])
                        .await
                        .expect("update");
                    local[k] = kv.mod_revision;
                }
                let elapsed = start.elapsed();
                *revs.lock().expect("revs") = local;
                elapsed
            }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("list_100k", |b| {
        let store = MemoryStore::new();
        rt.block_on(async {
            for i in 0..100_000 {
                store
                    .create(
                        &format!("/registry/pods/default/pod-{i:06}"),
                        Bytes::from_static(&[b'p'; 256]),
                    )
                    .await
                    .expect("create");
            }
        });
        b.to_async(&rt).iter(|| {
            let store = store.clone();
            async move {
                let page = store
                    .list("/registry/pods/", &ListOptions::default())
                    .await
                    .expect("list");
                assert_eq!(page.items.len(), 100_000);
                page
            }
        })
    });
    group.finish();
}

/// Acknowledged writes and nanoseconds spent, per backend, for the ratio.
static DURABLE_MEMORY: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));
#[cfg(feature = "etcd")]
static DURABLE_ETCD: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

const WRITERS: u64 = 64;

fn record(slot: &(AtomicU64, AtomicU64), ops: u64, elapsed: Duration) {
    slot.0.fetch_add(ops, Ordering::Relaxed);
    slot.1
        .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
}

fn rate(slot: &(AtomicU64, AtomicU64)) -> f64 {
    let ops = slot.0.load(Ordering::Relaxed) as f64;
    let secs = slot.1.load(Ordering::Relaxed) as f64 / 1e9;
    if secs > 0.0 { ops / secs } else { 0.0 }
}

fn durable(c: &mut Criterion) {
    let rt = runtime(2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = MemoryStore::open(tmp.path().join("data")).expect("open");
    let mut group = c.benchmark_group("durable");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    let next = Arc::new(AtomicU64::new(0));
    group.bench_function(BenchmarkId::new("64_writers", "memory_store"), |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = store.clone();
            let next = next.clone();
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|w| {
                        let store = store.clone();
                        let next = next.clone();
                        let n = iters / WRITERS + u64::from(w < iters % WRITERS);
                        tokio::spawn(async move {
                            for _ in 0..n {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                store
                                    .create(
                                        &format!("/bench/durable/{w}/{i}"),
                                        Bytes::from_static(VALUE),
                                    )
                                    .await
                                    .expect("create");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("writer");
                }
                let elapsed = start.elapsed();
                record(&DURABLE_MEMORY, iters, elapsed);
                elapsed
            }
        })
    });
    #[cfg(feature = "etcd")]
    etcd_durable(&mut group, &rt);
    group.finish();
    if rate(&DURABLE_MEMORY) > 0.0 {
        println!(
            "durable/64_writers: memory_store {:.0} acknowledged writes/s",
            rate(&DURABLE_MEMORY)
        );
    }
    #[cfg(feature = "etcd")]
    {
        let etcd = rate(&DURABLE_ETCD);
        if etcd > 0.0 {
            println!("durable/64_writers: etcd {etcd:.0} acknowledged writes/s");
            println!(
                "durable/64_writers: memory_store / etcd = {:.2}x",
                rate(&DURABLE_MEMORY) / etcd
            );
        }
    }
}

#[cfg(feature = "etcd")]
fn etcd_durable(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
) {
    use ketch_store::etcd::etcd_client::Client;
    use ketch_store::etcd::testing::EtcdCluster;

    let etcd = EtcdCluster::start(1).expect("start etcd (apt-get install etcd-server)");
    let client = rt
        .block_on(Client::connect(etcd.endpoints(), None))
        .expect("connect to etcd");
    let next = Arc::new(AtomicU64::new(0));
    group.bench_function(BenchmarkId::new("64_writers", "etcd"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let kv = client.kv_client();
            let next = next.clone();
            async move {
                let start = Instant::now();
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|w| {
                        let mut kv = kv.clone();
                        let next = next.clone();
                        let n = iters / WRITERS + u64::from(w < iters % WRITERS);
                        tokio::spawn(async move {
                            for _ in 0..n {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                kv.put(format!("/bench/durable/{w}/{i}"), VALUE, None)
                                    .await
                                    .expect("put");
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("writer");
                }
                let elapsed = start.elapsed();
                record(&DURABLE_ETCD, iters, elapsed);
                elapsed
            }
        })
    });
    drop(etcd);
}

const WATCHERS: usize = 1000;
const WRITE_INTERVAL: Duration = Duration::from_micros(100);
/// Latency histogram buckets of 10 µs, up to 100 ms.
const BUCKET_NS: u64 = 10_000;
const BUCKETS: usize = 10_000;

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn stamp() -> Bytes {
    let mut v = VALUE.to_vec();
    v[..8].copy_from_slice(&now_ns().to_le_bytes());
    Bytes::from(v)
}

fn now_ns() -> u64 {
    base().elapsed().as_nanos() as u64
}

/// The write time stamped into a value by [`stamp`].
fn stamp_ns(value: &[u8]) -> u64 {
    let mut t = [0u8; 8];
    t.copy_from_slice(&value[..8]);
    u64::from_le_bytes(t)
}

fn percentile(hist: &[u64], p: f64) -> Duration {
    let total: u64 = hist.iter().sum();
    let want = ((total as f64) * p).ceil() as u64;
    let mut seen = 0;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= want {
            return Duration::from_nanos((i as u64 + 1) * BUCKET_NS);
        }
    }
    Duration::from_nanos(BUCKETS as u64 * BUCKET_NS)
}

/// Waits for the next event, then takes every event that is ready with it
/// (one wakeup of the watcher). Each event's latency is measured when the
/// watcher receives it; the clock is read once per run of events that
/// arrive together. Fills `out` with (latency bucket of a put, revision);
/// false when
/// the stream ended.
async fn receive_ready(
    stream: &mut ketch_core::WatchStream,
    out: &mut Vec<(Option<usize>, Revision)>,
) -> bool {
    out.clear();
    std::future::poll_fn(|cx| {
        let mut now = None;
        loop {
            match stream.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(ev))) => {
                    let now = *now.get_or_insert_with(now_ns);
                    let bucket = match &*ev {
                        ketch_core::WatchEvent::Put { kv, .. } => {
                            let ns = now.saturating_sub(stamp_ns(&kv.value));
                            Some(((ns / BUCKET_NS) as usize).min(BUCKETS - 1))
                        }
                        ketch_core::WatchEvent::Delete { .. } => None,
                    };
                    out.push((bucket, ev.revision()));
                }
                Poll::Ready(_) => return Poll::Ready(false),
                Poll::Pending if out.is_empty() => return Poll::Pending,
                Poll::Pending => return Poll::Ready(true),
            }
        }
    })
    .await
}

/// What one watcher records, on a cache line of its own.
#[repr(align(128))]
struct WatcherStats {
    seen: AtomicI64,
    hist: Mutex<Vec<u64>>,
}

fn watch(c: &mut Criterion) {
    let rt = runtime(2);
    let store = MemoryStore::with_options(MemoryStoreOptions::default());
    let stats: Arc<Vec<WatcherStats>> = Arc::new(
        (0..WATCHERS)
            .map(|_| WatcherStats {
                seen: AtomicI64::new(0),
                hist: Mutex::new(vec![0; BUCKETS]),
            })
            .collect(),
    );
    rt.block_on(async {
        for w in 0..WATCHERS {
            let mut stream = store.watch("/bench/watch/", 0).await.expect("watch");
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut buckets = Vec::with_capacity(256);
                while receive_ready(&mut stream, &mut buckets).await {
                    let mut hist = stats[w].hist.lock().expect("hist");
                    for (bucket, _) in &buckets {
                        if let Some(bucket) = bucket {
                            hist[*bucket] += 1;
                        }
                    }
                    drop(hist);
                    if let Some((_, revision)) = buckets.last() {
                        stats[w].seen.store(*revision, Ordering::Release);
                    }
                }
            });
        }
    });
    let mut group = c.benchmark_group("watch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    group.bench_function("1000_watchers_10k_writes_per_s", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = store.clone();
            let stats = stats.clone();
            // The writer is a task on the runtime, like a server's writers.
            let writer = tokio::spawn(async move {
                let start = Instant::now();
                let mut last = 0;
                for i in 0..iters {
                    let due = start + WRITE_INTERVAL * i as u32;
                    let now = Instant::now();
                    if due > now + Duration::from_millis(1) {
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let key = format!("/bench/watch/{}", i % 100);
                    let kv = match store.get(&key).await.expect("get") {
                        Some(kv) => store.update(&key, stamp(), kv.mod_revision).await,
                        None => store.create(&key, stamp()).await,
                    };
                    last = kv.expect("write").mod_revision;
                }
                while stats.iter().any(|s| s.seen.load(Ordering::Acquire) < last) {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                start.elapsed()
            });
            async move { writer.await.expect("writer") }
        })
    });
    group.finish();
    let mut total = vec![0u64; BUCKETS];
    for s in stats.iter() {
        for (t, n) in total.iter_mut().zip(s.hist.lock().expect("hist").iter()) {
            *t += n;
        }
    }
    if total.iter().sum::<u64>() == 0 {
        return;
    }
    println!(
        "watch/1000_watchers_10k_writes_per_s: {} deliveries, latency p50 {:?} p99 {:?} p99.9 {:?} max {:?}",
        total.iter().sum::<u64>(),
        percentile(&total, 0.50),
        percentile(&total, 0.99),
        percentile(&total, 0.999),
        percentile(&total, 1.0),
    );
}

criterion_group!(benches, memory, durable, watch);
criterion_main!(benches);
