//! One scheduling cycle over 5000 nodes with the default plugins:
//! snapshot refresh, PreFilter/Filter/Score, assume (and forget, so every
//! iteration sees the same cluster). Run with
//! `cargo bench -p ketch-scheduler --bench cycle`.

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ketch_apiserver::ApiServer;
use ketch_core::api::{Container, Node, NodeStatus, Pod, PodSpec, ResourceRequirements};
use ketch_core::{ObjectMeta, Quantity, Store};
use ketch_scheduler::cache::Cache;
use ketch_scheduler::framework::{CycleState, Framework, PluginContext, PodInfo, Snapshot};
use ketch_scheduler::plugins::{default_profile, default_registry};
use ketch_store::MemoryStore;

fn node(i: usize) -> Arc<Node> {
    let allocatable = BTreeMap::from([
        ("cpu".to_string(), Quantity::from("4")),
        ("memory".to_string(), Quantity::from("32Gi")),
        ("pods".to_string(), Quantity::from("110")),
    ]);
    Arc::new(Node {
        metadata: ObjectMeta::cluster_named(&format!("node-{i}"))
            .with_label("kubernetes.io/hostname", &format!("node-{i}")),
        status: NodeStatus {
            capacity: allocatable.clone(),
            allocatable,
            ..NodeStatus::default()
        },
        ..Node::default()
    })
}

fn pod(name: &str, node: Option<String>) -> Pod {
    Pod {
        metadata: ObjectMeta::named("default", name),
        spec: PodSpec {
            node_name: node,
            containers: vec![Container {
                name: "c".into(),
                image: Some("registry.k8s.io/pause:3.9".into()),
                resources: Some(ResourceRequirements {
                    requests: BTreeMap::from([
                        ("cpu".to_string(), Quantity::from("100m")),
                        ("memory".to_string(), Quantity::from("500Mi")),
                    ]),
                    limits: BTreeMap::new(),
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = rt
        .block_on(ApiServer::builder(store).build())
        .expect("api server");
    let ctx = PluginContext {
        client: server.client(),
    };
    let cache = Cache::new();
    for i in 0..5000 {
        cache.add_node(node(i)).expect("node");
    }
    for i in 0..1000 {
        cache
            .add_pod(Arc::new(pod(
                &format!("init-{i}"),
                Some(format!("node-{}", i % 5000)),
            )))
            .expect("pod");
    }
    let registry = default_registry();
    let profile = default_profile("default-scheduler");
    let incoming = Arc::new(PodInfo::new(Arc::new(pod("incoming", None))).expect("pod info"));
    let mut group = c.benchmark_group("cycle_5000_nodes");
    for threads in [1usize, 2] {
        let pool = (threads > 1).then(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool"),
            )
        });
        let fwk = Framework::new(&profile, &registry, &ctx)
            .expect("framework")
            .with_parallelism(pool, 1024);
        let mut snapshot = Snapshot::default();
        cache.update_snapshot(&mut snapshot);
        group.bench_function(format!("default_plugins_threads_{threads}"), |b| {
            b.iter(|| {
                cache.update_snapshot(&mut snapshot);
                let mut state = CycleState::default();
                let r = fwk
                    .schedule_pod(&mut state, &incoming, &snapshot)
                    .expect("a node fits");
                let mut p = (*incoming.pod).clone();
                p.spec.node_name = Some(r.suggested_host);
                let assumed = Arc::new(PodInfo {
                    pod: Arc::new(p),
                    ..(*incoming).clone()
                });
                cache.assume_pod(assumed).expect("assume");
                cache.forget_pod(&incoming.key);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
