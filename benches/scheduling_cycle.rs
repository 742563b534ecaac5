//! One scheduling cycle (PreFilter, Filter, PreScore, Score, selection) of
//! the default profile over a prebuilt 5000-node snapshot, for each plugin
//! set the scheduler_perf workloads exercise:
//!
//! - `basic`: resources and the always-on filters (SchedulingBasic's pods),
//!   with 1000 pods already placed;
//! - `anti_affinity`: required inter-pod anti-affinity on the hostname, with
//!   1000 anti-affinity pods already placed;
//! - `topology_spread`: a zone spread constraint over 3 zones, with 5000
//!   default and 2500 spread pods already placed;
//! - `node_affinity`: required node affinity on `metadata.name`, which
//!   PreFilter narrows to the one node it names.
//!
//! ```text
//! cargo bench --bench scheduling_cycle
//! ```

// The generators are shared with the scheduler_perf harness, which uses
// every shape; this bench uses some of them.
#[allow(dead_code)]
#[path = "scheduler_perf/objects.rs"]
mod objects;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ketch_apiserver::ApiServer;
use ketch_core::api::Pod;
use ketch_scheduler::DEFAULT_SCHEDULER_NAME;
use ketch_scheduler::framework::{
    CycleState, DEFAULT_PARALLEL_THRESHOLD, Framework, NodeInfo, PluginContext, PodInfo, Snapshot,
};
use ketch_scheduler::plugins::{default_profile, default_registry};
use ketch_store::MemoryStore;

use crate::objects::{NodeShape, PodShape, node, node_name, pod};

/// Nodes in every snapshot.
const NODES: usize = 5000;

/// A snapshot to schedule on and the pod to schedule.
struct Scenario {
    name: &'static str,
    snapshot: Snapshot,
    pod: PodInfo,
}

/// `pod` as a placed pod on `node`.
fn placed(mut pod: Pod, node: &str) -> Arc<PodInfo> {
    pod.spec.node_name = Some(node.to_string());
    Arc::new(PodInfo::new(Arc::new(pod)).expect("the generated pod has valid requests"))
}

/// A snapshot of `NODES` nodes of `shape` (the first one of `first` when
/// given) with `existing` pods placed round-robin from node 0.
fn snapshot(
    shape: NodeShape,
    first: Option<NodeShape>,
    existing: &[(PodShape, &str, usize)],
) -> Snapshot {
    let mut infos: Vec<NodeInfo> = (0..NODES)
        .map(|i| {
            let shape = if i == 0 {
                first.unwrap_or(shape)
            } else {
                shape
            };
            let n = node(shape, &node_name(shape, "node", i), i);
            NodeInfo::new(Arc::new(n)).expect("the generated node has valid allocatable")
        })
        .collect();
    let mut next = 0usize;
    for &(shape, namespace, count) in existing {
        for i in 0..count {
            let target = next % NODES;
            next += 1;
            let name = infos[target].name().to_string();
            infos[target].add_pod(placed(
                pod(shape, namespace, &format!("existing-{i}")),
                &name,
            ));
        }
    }
    Snapshot::from_nodes(infos)
}

fn pending(shape: PodShape, namespace: &str) -> PodInfo {
    PodInfo::new(Arc::new(pod(shape, namespace, "pending"))).expect("valid requests")
}

fn scenarios() -> Vec<Scenario> {
    const GREEN: &[&str] = &["sched-0", "sched-1"];
    vec![
        Scenario {
            name: "basic",
            snapshot: snapshot(
                NodeShape::Default,
                None,
                &[(PodShape::Default, "sched-0", 1000)],
            ),
            pod: pending(PodShape::Default, "sched-1"),
        },
        Scenario {
            name: "anti_affinity",
            snapshot: snapshot(
                NodeShape::Default,
                None,
                &[(PodShape::AntiAffinity(GREEN), "sched-0", 1000)],
            ),
            pod: pending(PodShape::AntiAffinity(GREEN), "sched-1"),
        },
        Scenario {
            name: "topology_spread",
            snapshot: snapshot(
                NodeShape::Zoned,
                None,
                &[
                    (PodShape::Default, "sched-0", NODES),
                    (PodShape::TopologySpread, "sched-1", NODES / 2),
                ],
            ),
            pod: pending(PodShape::TopologySpread, "sched-1"),
        },
        Scenario {
            name: "node_affinity",
            snapshot: snapshot(NodeShape::Default, Some(NodeShape::DaemonsetTarget), &[]),
            pod: pending(PodShape::Daemonset, "sched-1"),
        },
    ]
}

fn scheduling_cycle(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("building the tokio runtime");
    // The plugins keep a client (binding and preemption use it); a cycle
    // does not call it.
    let client = runtime.block_on(async {
        ApiServer::builder(Arc::new(MemoryStore::new()))
            .build()
            .await
            .expect("starting the API server")
            .client()
    });
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = (threads > 1).then(|| {
        Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("building the thread pool"),
        )
    });
    let framework = Framework::new(
        &default_profile(DEFAULT_SCHEDULER_NAME),
        &default_registry(),
        &PluginContext { client },
    )
    .expect("the default profile builds")
    .with_parallelism(pool, DEFAULT_PARALLEL_THRESHOLD);

    let mut group = c.benchmark_group("scheduling_cycle_5000_nodes");
    for scenario in scenarios() {
        // Every scenario has a feasible node; a failure here is a bug.
        let mut state = CycleState::default();
        framework
            .schedule_pod(&mut state, &scenario.pod, &scenario.snapshot)
            .unwrap_or_else(|e| panic!("{}: the pod does not schedule: {e:?}", scenario.name));
        group.bench_function(scenario.name, |b| {
            b.iter(|| {
                let mut state = CycleState::default();
                black_box(
                    framework
                        .schedule_pod(&mut state, black_box(&scenario.pod), &scenario.snapshot)
                        .is_ok(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, scheduling_cycle);
criterion_main!(benches);
