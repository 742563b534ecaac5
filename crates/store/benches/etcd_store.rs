//! EtcdStore against raw etcd-client doing the same operations on the same
//! single-member etcd, in one run. The cost of the store layer is the ratio
//! of each `store` figure to its `raw` twin (the goal: at most 1.10).
//!
//! Besides criterion's figures (measured one after the other, so drift in
//! the machine's load shows up in them), the run starts with an interleaved
//! comparison: rounds that alternate a batch through the store with a batch
//! through the raw client, reporting the median per-operation time of each
//! and their ratio.
//!
//! Run: `cargo bench -p ketch-store --features etcd --bench etcd_store`

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use ketch_core::store::{ListOptions, Store};
use ketch_store::etcd::etcd_client::{
    Client, Compare, CompareOp, GetOptions, KvClient, PutOptions, Txn, TxnOp,
};
use ketch_store::etcd::testing::EtcdCluster;
use ketch_store::etcd::{EtcdConfig, EtcdStore};

const PREFIX: &str = "/bench/";
const VALUE: &[u8] = &[b'x'; 256];
const LIST_SIZE: usize = 100;
const ROUNDS: usize = 200;
const BATCH: usize = 5;

#[derive(Clone, Copy, Debug)]
enum Op {
    Get,
    List,
    Update,
    Create,
}

impl Op {
    const ALL: [Op; 4] = [Op::Get, Op::List, Op::Update, Op::Create];

    fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::List => "list_100",
            Op::Update => "update",
            Op::Create => "create",
        }
    }
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    store: EtcdStore,
    raw: KvClient,
    counter: AtomicU64,
    store_revision: AtomicI64,
    raw_revision: AtomicI64,
}

fn full(key: &str) -> Vec<u8> {
    format!("{PREFIX}{key}").into_bytes()
}

impl Fixture {
    /// One operation through EtcdStore.
    async fn store_op(&self, op: Op) {
        match op {
            Op::Get => {
                let kv = self.store.get("/get/key").await.expect("get");
                assert!(kv.is_some());
            }
            Op::List => {
                let page = self
                    .store
                    .list("/list/", &ListOptions::default())
                    .await
                    .expect("list");
                assert_eq!(page.items.len(), LIST_SIZE);
            }
            Op::Update => {
                let expected = self.store_revision.load(Ordering::Relaxed);
                let kv = self
                    .store
                    .update("/update/s", Bytes::from_static(VALUE), expected)
                    .await
                    .expect("update");
                self.store_revision
                    .store(kv.mod_revision, Ordering::Relaxed);
            }
            Op::Create => {
                let key = format!("/create/{}", self.counter.fetch_add(1, Ordering::Relaxed));
                self.store
                    .create(&key, Bytes::from_static(VALUE))
                    .await
                    .expect("create");
            }
        }
    }

    /// The same operation through the raw client: the same requests, with
    /// the results used only as far as needed to check them.
    async fn raw_op(&self, op: Op) {
        let mut kv = self.raw.clone();
        match op {
            Op::Get => {
                let response = kv.get(full("/get/key"), None).await.expect("get");
                assert_eq!(response.kvs().len(), 1);
            }
            Op::List => {
                let response = kv
                    .get(full("/list/"), Some(GetOptions::new().with_prefix()))
                    .await
                    .expect("list");
                assert_eq!(response.kvs().len(), LIST_SIZE);
            }
            Op::Update => {
                let key = full("/update/r");
                let expected = self.raw_revision.load(Ordering::Relaxed);
                let txn = Txn::new()
                    .when([
                        Compare::mod_revision(key.clone(), CompareOp::Equal, expected),
                        Compare::version(key.clone(), CompareOp::Greater, 0),
                    ])
                    .and_then([TxnOp::put(
                        key.clone(),
                        VALUE.to_vec(),
                        Some(PutOptions::new().with_prev_key()),
                    )])
                    .or_else([TxnOp::get(key, None)]);
                let response = kv.txn(txn).await.expect("txn");
                assert!(response.succeeded());
                let revision = response.header().map(|h| h.revision()).unwrap_or(0);
                self.raw_revision.store(revision, Ordering::Relaxed);
            }
            Op::Create => {
                let key = full(&format!(
                    "/create/{}",
                    self.counter.fetch_add(1, Ordering::Relaxed)
                ));
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key, VALUE.to_vec(), None)]);
                let response = kv.txn(txn).await.expect("txn");
                assert!(response.succeeded());
            }
        }
    }

    fn seed(&self) {
        self.runtime.block_on(async {
            let value = Bytes::from_static(VALUE);
            self.store
                .create("/get/key", value.clone())
                .await
                .expect("seed");
            let s = self
                .store
                .create("/update/s", value.clone())
                .await
                .expect("seed");
            self.store_revision.store(s.mod_revision, Ordering::Relaxed);
            let r = self
                .store
                .create("/update/r", value.clone())
                .await
                .expect("seed");
            self.raw_revision.store(r.mod_revision, Ordering::Relaxed);
            for i in 0..LIST_SIZE {
                self.store
                    .create(&format!("/list/{i:04}"), value.clone())
                    .await
                    .expect("seed");
            }
        });
    }

    /// Median per-operation time of store and raw batches run alternately.
    fn interleaved(&self, op: Op) -> (Duration, Duration) {
        let mut store_times = Vec::with_capacity(ROUNDS);
        let mut raw_times = Vec::with_capacity(ROUNDS);
        self.runtime.block_on(async {
            for round in 0..ROUNDS {
                for leg in 0..2 {
                    let through_store = (round + leg) % 2 == 0;
                    let started = Instant::now();
                    for _ in 0..BATCH {
                        if through_store {
                            self.store_op(op).await;
                        } else {
                            self.raw_op(op).await;
                        }
                    }
                    let per_op = started.elapsed() / BATCH as u32;
                    if through_store {
                        store_times.push(per_op);
                    } else {
                        raw_times.push(per_op);
                    }
                }
            }
        });
        store_times.sort();
        raw_times.sort();
        (store_times[ROUNDS / 2], raw_times[ROUNDS / 2])
    }
}

fn benches(c: &mut Criterion) {
    let etcd = EtcdCluster::start(1).expect("etcd starts (Debian package etcd-server)");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (store, raw) = runtime.block_on(async {
        let store = EtcdStore::connect(EtcdConfig::new(etcd.endpoints()).prefix(PREFIX))
            .await
            .expect("store connects");
        let raw = Client::connect(etcd.endpoints(), None)
            .await
            .expect("raw client connects");
        (store, raw.kv_client())
    });
    let fixture = Fixture {
        runtime,
        store,
        raw,
        counter: AtomicU64::new(0),
        store_revision: AtomicI64::new(0),
        raw_revision: AtomicI64::new(0),
    };
    fixture.seed();

    println!("\ninterleaved comparison ({ROUNDS} rounds of {BATCH} operations each way, medians):");
    println!("{:<10} {:>12} {:>12} {:>8}", "op", "store", "raw", "ratio");
    for op in Op::ALL {
        let (store, raw) = fixture.interleaved(op);
        println!(
            "{:<10} {:>12.1?} {:>12.1?} {:>8.3}",
            op.name(),
            store,
            raw,
            store.as_secs_f64() / raw.as_secs_f64()
        );
    }

    for op in Op::ALL {
        let mut group = c.benchmark_group(op.name());
        group.bench_function("store", |b| {
            b.to_async(&fixture.runtime).iter(|| fixture.store_op(op))
        });
        group.bench_function("raw", |b| {
            b.to_async(&fixture.runtime).iter(|| fixture.raw_op(op))
        });
        group.finish();
    }
}

criterion_group! {
    name = etcd_store;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}

fn main() {
    etcd_store();
    Criterion::default().configure_from_args().final_summary();
}
