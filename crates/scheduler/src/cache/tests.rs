use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ketch_core::api::{
    Affinity, Container, Node, NodeStatus, Pod, PodAffinityTerm, PodAntiAffinity, PodSpec,
    ResourceRequirements,
};
use ketch_core::{ObjectMeta, Quantity};

use super::*;

fn node(name: &str) -> Arc<Node> {
    Arc::new(Node {
        metadata: ObjectMeta::cluster_named(name),
        status: NodeStatus {
            allocatable: BTreeMap::from([
                ("cpu".to_string(), Quantity::from("4")),
                ("memory".to_string(), Quantity::from("32Gi")),
                ("pods".to_string(), Quantity::from("110")),
            ]),
            ..NodeStatus::default()
        },
        ..Node::default()
    })
}

fn pod(name: &str, node: Option<&str>, cpu: &str) -> Pod {
    Pod {
        metadata: ObjectMeta::named("default", name),
        spec: PodSpec {
            node_name: node.map(str::to_string),
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests: BTreeMap::from([("cpu".to_string(), Quantity::from(cpu))]),
                    limits: BTreeMap::new(),
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    }
}

fn anti_affinity_pod(name: &str, node: &str) -> Pod {
    let mut p = pod(name, Some(node), "100m");
    p.spec.affinity = Some(Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: vec![PodAffinityTerm {
                topology_key: "kubernetes.io/hostname".into(),
                ..PodAffinityTerm::default()
            }],
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    });
    p
}

fn assumed(name: &str, node: &str, cpu: &str) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(Arc::new(pod(name, Some(node), cpu))).unwrap())
}

fn cpu_on(snapshot: &Snapshot, node: &str) -> i64 {
    snapshot.get(node).unwrap().requested.milli_cpu
}

#[test]
fn assumed_pods_count_at_once_and_are_confirmed_without_a_copy() {
    let cache = Cache::new();
    cache.add_node(node("n1")).unwrap();
    let mut snap = Snapshot::default();
    cache.update_snapshot(&mut snap);
    assert!(!cache.contains_pod("default/a"));
    cache.assume_pod(assumed("a", "n1", "500m")).unwrap();
    assert!(cache.is_assumed("default/a"));
    assert!(cache.contains_pod("default/a"));
    assert_eq!(cache.update_snapshot(&mut snap), 1);
    assert_eq!(cpu_on(&snap, "n1"), 500);
    // Assuming twice is refused.
    assert_eq!(
        cache.assume_pod(assumed("a", "n1", "500m")),
        Err(CacheError::AlreadyPresent("default/a".into()))
    );
    // The informer sees the bound pod: confirmed, node untouched.
    let change = cache
        .add_pod(Arc::new(pod("a", Some("n1"), "500m")))
        .unwrap();
    assert_eq!(change, PodChange::Confirmed);
    assert!(!cache.is_assumed("default/a"));
    assert_eq!(cache.update_snapshot(&mut snap), 0);
    assert_eq!(cpu_on(&snap, "n1"), 500);
}

#[test]
fn confirmation_on_another_node_moves_the_pod() {
    let cache = Cache::new();
    cache.add_node(node("n1")).unwrap();
    cache.add_node(node("n2")).unwrap();
    cache.assume_pod(assumed("a", "n1", "1")).unwrap();
    let change = cache.add_pod(Arc::new(pod("a", Some("n2"), "1"))).unwrap();
    assert_eq!(change, PodChange::Confirmed);
    let mut snap = Snapshot::default();
    cache.update_snapshot(&mut snap);
    assert_eq!(cpu_on(&snap, "n1"), 0);
    assert_eq!(cpu_on(&snap, "n2"), 1000);
}

#[test]
fn forgotten_and_expired_assumed_pods_release_their_resources() {
    let cache = Cache::with_ttl(Duration::from_secs(30));
    cache.add_node(node("n1")).unwrap();
    cache.assume_pod(assumed("a", "n1", "1")).unwrap();
    cache.assume_pod(assumed("b", "n1", "1")).unwrap();
    cache.forget_pod("default/a");
    let t0 = Instant::now();
    // Not expired before the binding finished, however long it takes.
    assert!(
        cache
            .cleanup_expired(t0 + Duration::from_secs(3600))
            .is_empty()
    );
    cache.finish_binding_at("default/b", t0);
    assert!(
        cache
            .cleanup_expired(t0 + Duration::from_secs(29))
            .is_empty()
    );
    assert_eq!(
        cache.cleanup_expired(t0 + Duration::from_secs(31)),
        vec!["default/b".to_string()]
    );
    let mut snap = Snapshot::default();
    cache.update_snapshot(&mut snap);
    assert_eq!(cpu_on(&snap, "n1"), 0);
    assert_eq!(cache.pod_count(), 0);
}

#[test]
fn confirmed_pods_never_expire() {
    let cache = Cache::with_ttl(Duration::from_secs(1));
    cache.add_node(node("n1")).unwrap();
    cache.assume_pod(assumed("a", "n1", "1")).unwrap();
    let t0 = Instant::now();
    cache.finish_binding_at("default/a", t0);
    cache.add_pod(Arc::new(pod("a", Some("n1"), "1"))).unwrap();
    assert!(
        cache
            .cleanup_expired(t0 + Duration::from_secs(10))
            .is_empty()
    );
    assert_eq!(cache.pod_count(), 1);
}

#[test]
fn snapshot_update_copies_only_changed_nodes() {
    let cache = Cache::new();
    for i in 0..1000 {
        cache.add_node(node(&format!("n{i}"))).unwrap();
    }
    let mut snap = Snapshot::default();
    assert_eq!(cache.update_snapshot(&mut snap), 1000);
    let before: Vec<Arc<NodeInfo>> = snap.nodes().to_vec();
    cache.assume_pod(assumed("a", "n7", "1")).unwrap();
    cache.add_pod(Arc::new(pod("b", Some("n42"), "2"))).unwrap();
    assert_eq!(cache.update_snapshot(&mut snap), 2);
    assert_eq!(snap.len(), 1000);
    let mut changed = 0;
    for (old, new) in before.iter().zip(snap.nodes()) {
        if !Arc::ptr_eq(old, new) {
            changed += 1;
        }
    }
    assert_eq!(changed, 2, "only the two changed nodes are new Arcs");
    assert_eq!(cpu_on(&snap, "n7"), 1000);
    assert_eq!(cpu_on(&snap, "n42"), 2000);
    assert_eq!(cache.update_snapshot(&mut snap), 0);
}

#[test]
fn node_removal_and_readdition_reach_the_snapshot() {
    let cache = Cache::new();
    for i in 0..5 {
        cache.add_node(node(&format!("n{i}"))).unwrap();
    }
    let mut snap = Snapshot::default();
    cache.update_snapshot(&mut snap);
    cache.remove_node("n1");
    cache.update_snapshot(&mut snap);
    assert_eq!(snap.len(), 4);
    assert!(snap.get("n1").is_none());
    for name in ["n0", "n2", "n3", "n4"] {
        assert_eq!(snap.get(name).unwrap().name(), name, "index is consistent");
    }
    cache.add_node(node("n1")).unwrap();
    cache.update_snapshot(&mut snap);
    assert_eq!(snap.len(), 5);
    assert_eq!(snap.get("n1").unwrap().name(), "n1");
    // A pod on a removed node keeps its entry until deleted, outside the snapshot.
    cache.add_pod(Arc::new(pod("p", Some("n3"), "1"))).unwrap();
    cache.remove_node("n3");
    cache.update_snapshot(&mut snap);
    assert!(snap.get("n3").is_none());
    assert!(cache.node_info("n3").is_some());
    cache.remove_pod("default/p");
    assert!(cache.node_info("n3").is_none());
}

#[test]
fn many_node_removals_compact_the_log_and_rebuild_snapshots() {
    let cache = Cache::new();
    let mut snap = Snapshot::default();
    for i in 0..1500 {
        cache.add_node(node(&format!("n{i}"))).unwrap();
    }
    cache.update_snapshot(&mut snap);
    for i in 0..1500 {
        cache.remove_node(&format!("n{i}"));
    }
    cache.add_node(node("last")).unwrap();
    cache.update_snapshot(&mut snap);
    assert_eq!(snap.len(), 1);
    assert_eq!(snap.get("last").unwrap().name(), "last");
}

#[test]
fn affinity_node_lists_follow_pods_incrementally() {
    let cache = Cache::new();
    for i in 0..4 {
        cache.add_node(node(&format!("n{i}"))).unwrap();
    }
    let mut snap = Snapshot::default();
    cache.update_snapshot(&mut snap);
    assert!(snap.nodes_with_required_anti_affinity_pods().is_empty());
    for (p, n) in [("a", "n1"), ("b", "n2"), ("c", "n3")] {
        cache.add_pod(Arc::new(anti_affinity_pod(p, n))).unwrap();
    }
    cache.update_snapshot(&mut snap);
    let names = |s: &Snapshot| {
        let mut v: Vec<String> = s
            .nodes_with_required_anti_affinity_pods()
            .iter()
            .map(|n| n.name().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&snap), ["n1", "n2", "n3"]);
    assert_eq!(snap.nodes_with_affinity_pods().len(), 3);
    cache.remove_pod("default/b");
    cache.remove_node("n1");
    cache.update_snapshot(&mut snap);
    assert_eq!(names(&snap), ["n3"]);
    // The remaining entry is the current NodeInfo, not a stale copy.
    cache.add_pod(Arc::new(pod("x", Some("n3"), "1"))).unwrap();
    cache.update_snapshot(&mut snap);
    assert_eq!(
        snap.nodes_with_required_anti_affinity_pods()[0].pods.len(),
        2
    );
    // A full rebuild gives the same lists.
    let mut fresh = Snapshot::default();
    cache.update_snapshot(&mut fresh);
    assert_eq!(names(&fresh), names(&snap));
}

#[test]
fn terminal_pods_leave_the_cache() {
    let cache = Cache::new();
    cache.add_node(node("n1")).unwrap();
    cache.add_pod(Arc::new(pod("a", Some("n1"), "1"))).unwrap();
    let mut done = pod("a", Some("n1"), "1");
    done.status.phase = Some(ketch_core::api::PodPhase::Succeeded);
    assert_eq!(
        cache.update_pod(Arc::new(done)).unwrap(),
        PodChange::Removed
    );
    assert_eq!(cache.pod_count(), 0);
}

#[test]
fn bad_quantities_are_errors_not_panics() {
    let cache = Cache::new();
    let mut n = (*node("n1")).clone();
    n.status
        .allocatable
        .insert("cpu".into(), Quantity::from("lots"));
    assert!(matches!(
        cache.add_node(Arc::new(n)),
        Err(CacheError::Resource(_))
    ));
    assert_eq!(cache.node_count(), 0);
    let p = pod("a", Some("n1"), "many");
    assert!(matches!(
        cache.add_pod(Arc::new(p)),
        Err(CacheError::Resource(_))
    ));
    assert!(matches!(
        cache.add_pod(Arc::new(pod("b", None, "1"))),
        Err(CacheError::NotAssigned(_))
    ));
}

#[test]
fn image_states_count_nodes_with_the_image() {
    let cache = Cache::new();
    let with_image = |name: &str| {
        let mut n = (*node(name)).clone();
        n.status.images = vec![ketch_core::api::ContainerImage {
            names: vec!["nginx:1.27".into()],
            size_bytes: Some(100 << 20),
        }];
        Arc::new(n)
    };
    cache.add_node(with_image("n1")).unwrap();
    cache.add_node(with_image("n2")).unwrap();
    let info = cache.node_info("n2").unwrap();
    let state = info.image_states.get("nginx:1.27").unwrap();
    assert_eq!(state.num_nodes, 2);
    assert_eq!(state.size_bytes, 100 << 20);
}

#[test]
fn assuming_through_the_snapshot_changes_the_node_in_place() {
    let cache = Cache::new();
    cache.add_node(node("n1")).unwrap();
    let mut snap = Snapshot::default();
    cache.update_snapshot(&mut snap);
    for i in 0..3 {
        let before = Arc::as_ptr(snap.get("n1").unwrap()) as usize;
        cache
            .assume_pod_in(assumed(&format!("p{i}"), "n1", "100m"), &mut snap)
            .unwrap();
        let after = snap.get("n1").unwrap();
        assert_eq!(Arc::as_ptr(after) as usize, before, "no copy of the node");
        assert_eq!(after.pods.len(), i + 1);
        cache.update_snapshot(&mut snap);
        assert_eq!(cpu_on(&snap, "n1"), 100 * (i as i64 + 1));
    }
    // A reference held elsewhere forces a copy, leaving that view intact.
    let held = snap.get("n1").unwrap().clone();
    cache
        .assume_pod_in(assumed("q", "n1", "1"), &mut snap)
        .unwrap();
    assert_eq!(held.pods.len(), 3);
    assert_eq!(snap.get("n1").unwrap().pods.len(), 4);
}

/// Every node's generation sits beside it in the snapshot, through adds,
/// removals (which move the last node), assumes and rebuilds.
#[test]
fn node_generations_follow_every_snapshot_change() {
    fn consistent(snap: &Snapshot) {
        let want: Vec<u64> = snap.nodes().iter().map(|n| n.generation).collect();
        assert_eq!(snap.node_generations(), want.as_slice());
    }
    let cache = Cache::new();
    for i in 0..6 {
        cache.add_node(node(&format!("n{i}"))).unwrap();
    }
    let mut snap = Snapshot::default();
    cache.update_snapshot(&mut snap);
    consistent(&snap);
    cache.add_pod(Arc::new(pod("a", Some("n2"), "1"))).unwrap();
    cache.remove_node("n0");
    cache.update_snapshot(&mut snap);
    consistent(&snap);
    cache
        .assume_pod_in(assumed("b", "n3", "100m"), &mut snap)
        .unwrap();
    consistent(&snap);
    cache.update_snapshot(&mut snap);
    consistent(&snap);
    let mut fresh = Snapshot::default();
    cache.update_snapshot(&mut fresh);
    consistent(&fresh);
    consistent(&Snapshot::from_nodes(vec![
        NodeInfo::new(node("x")).unwrap(),
    ]));
}

#[test]
fn node_flags_follow_node_updates_into_the_snapshot() {
    use crate::framework::NodeFlags;
    use ketch_core::api::{Taint, TaintEffect};
    let cache = Cache::new();
    cache.add_node(node("n1")).unwrap();
    let mut snapshot = Snapshot::default();
    cache.update_snapshot(&mut snapshot);
    assert_eq!(snapshot.get("n1").unwrap().flags(), NodeFlags::default());

    let mut cordoned = (*node("n1")).clone();
    cordoned.spec.unschedulable = Some(true);
    cordoned.spec.taints = vec![Taint {
        key: "dedicated".into(),
        value: Some("gpu".into()),
        effect: TaintEffect::NoExecute,
        time_added: None,
    }];
    cache.update_node(Arc::new(cordoned)).unwrap();
    cache.update_snapshot(&mut snapshot);
    let flags = snapshot.get("n1").unwrap().flags();
    assert!(flags.unschedulable && flags.hard_taints && !flags.soft_taints);

    cache.update_node(node("n1")).unwrap();
    cache.update_snapshot(&mut snapshot);
    assert_eq!(snapshot.get("n1").unwrap().flags(), NodeFlags::default());
}
