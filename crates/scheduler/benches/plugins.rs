//! One scheduling cycle of each default plugin over 5,000 nodes: PreFilter
//! once, Filter on every node, PreScore once, Score on every node and
//! NormalizeScore. Nodes follow kube-scheduler's scheduler_perf (4 CPU, 32Gi,
//! 110 pods, three zones), each already running four pods.
//!
//! `cargo bench -p ketch-scheduler --bench plugins`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use ketch_core::api::{
    Affinity, Container, ContainerPort, Node, NodeAffinity as NodeAffinitySpec, NodeSelector,
    NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm,
    PodAntiAffinity, PreferredSchedulingTerm, ResourceRequirements, Taint, TaintEffect,
    TopologySpreadConstraint, UnsatisfiableConstraintAction,
};
use ketch_core::{LabelSelector, ObjectMeta, Quantity};
use ketch_scheduler::framework::{CycleState, NodeInfo, NodeScore, Plugin, PodInfo, Snapshot};
use ketch_scheduler::plugins::{
    ImageLocality, InterPodAffinity, InterPodAffinityArgs, NodeAffinity, NodeName, NodePorts,
    NodeResourcesBalancedAllocation, NodeResourcesFit, NodeUnschedulable, PodTopologySpread,
    TaintToleration,
};

const NODES: usize = 5000;

/// A bench case: name, plugins, incoming pod.
type Case<'a> = (&'static str, Vec<Arc<dyn Plugin>>, &'a Arc<PodInfo>);

fn quantity_map(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), Quantity::from(*v)))
        .collect()
}

fn pod(name: &str, ns: &str) -> Pod {
    Pod {
        metadata: ObjectMeta::named(ns, name),
        spec: ketch_core::api::PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("registry.k8s.io/pause:3.9".into()),
                resources: Some(ResourceRequirements {
                    requests: quantity_map(&[("cpu", "100m"), ("memory", "500Mi")]),
                    limits: BTreeMap::new(),
                }),
                ..Container::default()
            }],
            ..Default::default()
        },
        ..Pod::default()
    }
}

fn info(p: Pod) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(Arc::new(p)).expect("valid pod"))
}

fn anti_affinity_green() -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            required_during_scheduling_ignored_during_execution: vec![PodAffinityTerm {
                label_selector: Some(LabelSelector::from_labels([("color", "green")])),
                namespaces: vec!["sched-0".into(), "sched-1".into()],
                topology_key: "kubernetes.io/hostname".into(),
                namespace_selector: None,
            }],
            preferred_during_scheduling_ignored_during_execution: Vec::new(),
        }),
        ..Affinity::default()
    }
}

/// 5,000 nodes over three zones, four default pods each; every fifth node
/// also runs a green pod with required anti-affinity (1,000 in all), and
/// every tenth node carries a PreferNoSchedule taint.
fn cluster() -> Snapshot {
    let mut nodes = Vec::with_capacity(NODES);
    for i in 0..NODES {
        let name = format!("node-{i}");
        let mut node = Node {
            metadata: ObjectMeta::cluster_named(&name)
                .with_label("kubernetes.io/hostname", &name)
                .with_label(
                    "topology.kubernetes.io/zone",
                    ["moon-1", "moon-2", "moon-3"][i % 3],
                ),
            ..Node::default()
        };
        node.status.allocatable =
            quantity_map(&[("cpu", "4"), ("memory", "32Gi"), ("pods", "110")]);
        node.status.capacity = node.status.allocatable.clone();
        if i % 10 == 0 {
            node.spec.taints.push(Taint {
                key: "soft".into(),
                value: Some("x".into()),
                effect: TaintEffect::PreferNoSchedule,
                time_added: None,
            });
        }
        let mut ni = NodeInfo::new(Arc::new(node)).expect("valid node");
        for j in 0..4 {
            ni.add_pod(info(pod(&format!("p-{i}-{j}"), "default")));
        }
        if i % 5 == 0 {
            let mut green = pod(&format!("green-{i}"), "sched-0");
            green.metadata.labels.insert("color".into(), "green".into());
            green.spec.affinity = Some(anti_affinity_green());
            ni.add_pod(info(green));
        }
        nodes.push(ni);
    }
    Snapshot::from_nodes(nodes)
}

/// PreFilter, Filter on every node, PreScore, Score and NormalizeScore.
fn cycle(plugins: &[Arc<dyn Plugin>], pod: &PodInfo, snapshot: &Snapshot) -> (usize, i64) {
    let mut state = CycleState::default();
    for p in plugins {
        if let Some(pf) = p.as_pre_filter() {
            let (_, s) = pf.pre_filter(&mut state, pod, snapshot);
            if s.is_skip() {
                state.skip_filter_plugin(p.name());
            }
        }
    }
    let mut feasible = Vec::with_capacity(snapshot.len());
    for n in snapshot.nodes() {
        let ok = plugins.iter().all(|p| {
            state.is_filter_skipped(p.name())
                || p.as_filter()
                    .is_none_or(|f| f.filter(&state, pod, n).is_success())
        });
        if ok {
            feasible.push(&**n);
        }
    }
    let mut total = 0;
    for p in plugins {
        let Some(sc) = p.as_score() else { continue };
        if let Some(ps) = p.as_pre_score()
            && ps.pre_score(&mut state, pod, &feasible).is_skip()
        {
            continue;
        }
        let mut scores: Vec<NodeScore> = feasible
            .iter()
            .enumerate()
            .map(|(index, n)| NodeScore {
                index,
                score: sc.score(&state, pod, n).unwrap_or(0),
            })
            .collect();
        let _ = sc.normalize_scores(&state, pod, &mut scores);
        total += scores.iter().map(|s| s.score).sum::<i64>();
    }
    (feasible.len(), total)
}

fn benches(c: &mut Criterion) {
    let snapshot = cluster();
    let default_pod = info(pod("incoming", "default"));
    let mut affinity_pod = pod("incoming", "default");
    affinity_pod
        .spec
        .node_selector
        .insert("topology.kubernetes.io/zone".into(), "moon-1".into());
    affinity_pod.spec.affinity = Some(Affinity {
        node_affinity: Some(NodeAffinitySpec {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: vec![NodeSelectorRequirement {
                        key: "kubernetes.io/hostname".into(),
                        operator: NodeSelectorOperator::Exists,
                        values: Vec::new(),
                    }],
                    match_fields: Vec::new(),
                }],
            }),
            preferred_during_scheduling_ignored_during_execution: vec![PreferredSchedulingTerm {
                weight: 10,
                preference: NodeSelectorTerm {
                    match_expressions: vec![NodeSelectorRequirement {
                        key: "topology.kubernetes.io/zone".into(),
                        operator: NodeSelectorOperator::In,
                        values: vec!["moon-1".into()],
                    }],
                    match_fields: Vec::new(),
                },
            }],
        }),
        ..Affinity::default()
    });
    let affinity_pod = info(affinity_pod);
    let mut green = pod("incoming", "sched-1");
    green.metadata.labels.insert("color".into(), "green".into());
    green.spec.affinity = Some(anti_affinity_green());
    let green = info(green);
    let mut blue = pod("incoming", "default");
    blue.metadata.labels.insert("color".into(), "blue".into());
    blue.spec
        .topology_spread_constraints
        .push(TopologySpreadConstraint {
            max_skew: 5,
            topology_key: "topology.kubernetes.io/zone".into(),
            when_unsatisfiable: UnsatisfiableConstraintAction::DoNotSchedule,
            label_selector: Some(LabelSelector::from_labels([("color", "blue")])),
            min_domains: None,
            match_label_keys: Vec::new(),
        });
    let blue = info(blue);
    let mut ported = pod("incoming", "default");
    ported.spec.containers[0].ports.push(ContainerPort {
        container_port: 8080,
        host_port: Some(8080),
        ..ContainerPort::default()
    });
    let ported = info(ported);

    let ipa = || -> Arc<dyn Plugin> {
        Arc::new(
            InterPodAffinity::with_static_namespaces(InterPodAffinityArgs::default(), [])
                .expect("valid args"),
        )
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "NodeResourcesFit",
            vec![Arc::new(NodeResourcesFit::default())],
            &default_pod,
        ),
        (
            "NodeResourcesBalancedAllocation",
            vec![Arc::new(NodeResourcesBalancedAllocation::default())],
            &default_pod,
        ),
        ("NodeName", vec![Arc::new(NodeName)], &default_pod),
        (
            "NodeUnschedulable",
            vec![Arc::new(NodeUnschedulable::default())],
            &default_pod,
        ),
        (
            "TaintToleration",
            vec![Arc::new(TaintToleration)],
            &default_pod,
        ),
        (
            "NodeAffinity",
            vec![Arc::new(NodeAffinity::default())],
            &affinity_pod,
        ),
        ("NodePorts", vec![Arc::new(NodePorts)], &ported),
        ("ImageLocality", vec![Arc::new(ImageLocality)], &default_pod),
        ("InterPodAffinity/none", vec![ipa()], &default_pod),
        ("InterPodAffinity/anti-affinity", vec![ipa()], &green),
        (
            "PodTopologySpread",
            vec![Arc::new(PodTopologySpread::default())],
            &blue,
        ),
        (
            "DefaultSet/basic",
            vec![
                Arc::new(NodeUnschedulable::default()),
                Arc::new(NodeName),
                Arc::new(TaintToleration),
                Arc::new(NodeAffinity::default()),
                Arc::new(NodePorts),
                Arc::new(NodeResourcesFit::default()),
                Arc::new(PodTopologySpread::default()),
                ipa(),
                Arc::new(NodeResourcesBalancedAllocation::default()),
                Arc::new(ImageLocality),
            ],
            &default_pod,
        ),
    ];
    let mut group = c.benchmark_group("plugins_5000_nodes");
    for (name, plugins, pod) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| black_box(cycle(plugins, pod, &snapshot)))
        });
    }
    group.finish();
}

criterion_group!(plugin_benches, benches);
criterion_main!(plugin_benches);
