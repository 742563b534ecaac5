//! In-process API server throughput on MemoryStore: pod creates, pod status
//! updates, and the node-filtered watch fan-out (5,000 watchers, 10,000
//! bindings).
//!
//! `cargo bench -p ketch-apiserver --bench apiserver`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use ketch_apiserver::ApiServer;
use ketch_core::api::{Pod, PodPhase};
use ketch_core::{Client, ObjectEvent, Store, WatchParams};
use ketch_store::MemoryStore;

mod support;
use support::{bench_pod as pod, process_cpu_time};

/// Concurrent callers driving the server.
const CALLERS: usize = 16;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn server() -> ApiServer {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // A busy cluster compacts more often than the 5-minute default so the
    // store's history does not grow without bound during the run.
    ApiServer::builder(store)
        .compaction_interval(Some(Duration::from_secs(10)))
        .build()
        .await
        .expect("server")
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// CPU time this process has used; zero where it cannot be read.
fn cpu_time() -> Duration {
    process_cpu_time().unwrap_or_default()
}

/// Prints the CPU cost per operation of a measured phase: with the machine
/// to itself the server does about `cores / cost` operations per second.
fn report_cpu(what: &str, ops: u64, wall: Duration, cpu: Duration) {
    if ops == 0 || cpu.is_zero() {
        return;
    }
    let per_op = cpu.as_secs_f64() / ops as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{what}: {ops} ops, {:.0} ops/s wall, {:.2} us CPU per op, {:.0} ops/s on {cores} idle cores",
        ops as f64 / wall.as_secs_f64(),
        per_op * 1e6,
        cores as f64 / per_op
    );
}

/// Creates `n` pods with `CALLERS` concurrent callers; returns the elapsed
/// time. The request objects are built before the clock starts, so the
/// figure is the server's and not the harness's.
async fn create_pods(client: &Arc<dyn Client>, n: u64) -> Duration {
    let per = n.div_ceil(CALLERS as u64);
    let requests: Vec<Vec<Box<Pod>>> = (0..CALLERS)
        .map(|_| {
            (0..per)
                .map(|_| {
                    let i = NEXT.fetch_add(1, Ordering::Relaxed);
                    Box::new(pod(format!("p-{i}")))
                })
                .collect()
        })
        .collect();
    let cpu = cpu_time();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mine in requests {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for request in mine {
                client.create(request).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let wall = start.elapsed();
    report_cpu("pod_create", per * CALLERS as u64, wall, cpu_time() - cpu);
    wall
}

fn creates(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(server());
    let client = server.client();
    let mut group = c.benchmark_group("apiserver");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("pod_create", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let client = client.clone();
            async move { create_pods(&client, iters).await }
        })
    });
    group.finish();
}

fn status_updates(c: &mut Criterion) {
    let rt = runtime();
    let server = rt.block_on(server());
    let client = server.client();
    const PODS: usize = 10_000;
    // Each caller owns a slice of pods and keeps their latest version.
    let slices: Vec<Vec<Arc<Pod>>> = rt.block_on(async {
        let mut slices = Vec::new();
        for c in 0..CALLERS {
            let mut mine = Vec::new();
            for i in 0..PODS / CALLERS {
                let created = client
                    .create(Box::new(pod(format!("s-{c}-{i}"))))
                    .await
                    .expect("create");
                mine.push(ketch_core::client::into_typed::<Pod>(created).expect("pod"));
            }
            slices.push(mine);
        }
        slices
    });
    let slices = Arc::new(parking_lot::Mutex::new(slices));
    let mut group = c.benchmark_group("apiserver");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("pod_status_update", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let client = client.clone();
            let slices = slices.clone();
            async move {
                let taken: Vec<Vec<Arc<Pod>>> = std::mem::take(&mut *slices.lock());
                let per = iters.div_ceil(CALLERS as u64);
                let cpu = cpu_time();
                let start = Instant::now();
                let mut tasks = Vec::new();
                for mut mine in taken {
                    let client = client.clone();
                    tasks.push(tokio::spawn(async move {
                        for n in 0..per {
                            let i = n as usize % mine.len();
                            let mut next = (*mine[i]).clone();
                            next.status.phase = Some(if n % 2 == 0 {
                                PodPhase::Running
                            } else {
                                PodPhase::Pending
                            });
                            next.status.message = Some(format!("update {n}"));
                            let written = client
                                .update_status(Box::new(next))
                                .await
                                .expect("status update");
                            mine[i] = ketch_core::client::into_typed::<Pod>(written).expect("pod");
                        }
                        mine
                    }));
                }
                let mut back = Vec::new();
                for t in tasks {
                    back.push(t.await.expect("task"));
                }
                let elapsed = start.elapsed();
                report_cpu(
                    "pod_status_update",
                    per * CALLERS as u64,
                    elapsed,
                    cpu_time() - cpu,
                );
                *slices.lock() = back;
                elapsed
            }
        })
    });
    group.finish();
}

/// One round: `bindings` pods bound round-robin over `nodes` nodes, each
/// node with one watcher on `spec.nodeName=<node>`. Returns the total time
/// and the delivery latencies; panics unless every event reaches exactly its
/// watcher.
async fn fanout_round(
    server: &ApiServer,
    round: u64,
    nodes: usize,
    bindings: usize,
) -> (Duration, Vec<Duration>) {
    let client = server.client();
    for i in 0..bindings {
        client
            .create(Box::new(pod(format!("f-{round}-{i}"))))
            .await
            .expect("create");
    }
    let sent: Arc<Vec<parking_lot::Mutex<Option<Instant>>>> = Arc::new(
        (0..bindings)
            .map(|_| parking_lot::Mutex::new(None))
            .collect(),
    );
    let mut watchers = Vec::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..nodes {
        let node = format!("node-{n}");
        let mut stream = client
            .watch(
                "pods",
                None,
                &WatchParams::default().fields(&format!("spec.nodeName={node}")),
            )
            .await
            .expect("watch");
        let expected = bindings / nodes + usize::from(n < bindings % nodes);
        let sent = sent.clone();
        let done_tx = done_tx.clone();
        let prefix = format!("f-{round}-");
        watchers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(expected);
            while latencies.len() < expected {
                match stream.next().await {
                    Some(Ok(ObjectEvent::Added(obj))) => {
                        let pod: &Pod = obj.downcast_ref().expect("a pod");
                        assert_eq!(pod.spec.node_name.as_deref(), Some(node.as_str()));
                        let i: usize = pod.metadata.name()[prefix.len()..]
                            .parse()
                            .expect("pod index");
                        assert_eq!(i % nodes, n, "event reached the wrong watcher");
                        let at = sent[i].lock().expect("sent before seen");
                        latencies.push(at.elapsed());
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            // Nothing more may arrive for this node.
            if let Ok(Some(extra)) =
                tokio::time::timeout(Duration::from_millis(1), stream.next()).await
            {
                panic!("extra event {extra:?}");
            }
            let _ = done_tx.send(latencies);
        }));
    }
    drop(done_tx);
    let cpu = cpu_time();
    let start = Instant::now();
    let per = bindings.div_ceil(CALLERS);
    let mut binders = Vec::new();
    for c in 0..CALLERS {
        let client = client.clone();
        let sent = sent.clone();
        binders.push(tokio::spawn(async move {
            for i in (c * per)..((c + 1) * per).min(bindings) {
                *sent[i].lock() = Some(Instant::now());
                client
                    .bind(
                        "default",
                        &format!("f-{round}-{i}"),
                        &format!("node-{}", i % nodes),
                    )
                    .await
                    .expect("bind");
                // Each binding is its own request, as from a scheduler's
                // binding tasks: let other tasks (watchers) run in between.
                tokio::task::yield_now().await;
            }
        }));
    }
    for b in binders {
        b.await.expect("binder");
    }
    let mut latencies = Vec::with_capacity(bindings);
    while let Some(l) = done_rx.recv().await {
        latencies.extend(l);
    }
    let total = start.elapsed();
    report_cpu(
        "watch_fanout bindings",
        bindings as u64,
        total,
        cpu_time() - cpu,
    );
    for w in watchers {
        w.await.expect("watcher");
    }
    assert_eq!(
        latencies.len(),
        bindings,
        "every binding reached its watcher"
    );
    (total, latencies)
}

fn watch_fanout(c: &mut Criterion) {
    const NODES: usize = 5_000;
    const BINDINGS: usize = 10_000;
    let rt = runtime();
    let server = rt.block_on(server());
    let round = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("apiserver");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(BINDINGS as u64));
    group.bench_function("watch_fanout_5000_nodes_10000_bindings", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let server = server.clone();
            let round = round.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let r = round.fetch_add(1, Ordering::Relaxed);
                    let (elapsed, mut latencies) = fanout_round(&server, r, NODES, BINDINGS).await;
                    latencies.sort();
                    let p = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
                    println!(
                        "watch_fanout round {r}: total {:.1} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                        elapsed.as_secs_f64() * 1e3,
                        p(0.50).as_secs_f64() * 1e3,
                        p(0.99).as_secs_f64() * 1e3,
                        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
                    );
                    total += elapsed;
                }
                total
            }
        })
    });
    group.finish();
}

criterion_group!(benches, creates, status_updates, watch_fanout);
criterion_main!(benches);
