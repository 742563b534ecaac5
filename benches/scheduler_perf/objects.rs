//! Generators of the nodes and pods of the scheduler_perf workloads, shaped
//! after kube-scheduler's `config/templates`: default nodes with 4 CPU, 32Gi
//! and 110 pods, the named node of the daemonset workload, and the pod
//! templates (default, low and high priority, anti-affinity, topology
//! spreading, pinned by node affinity).

use std::collections::BTreeMap;

use ketch_core::api::{
    Affinity, Container, ContainerPort, NodeAffinity, NodeCondition, NodeSelector,
    NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus,
    PodAffinityTerm, PodAntiAffinity, PodSpec, ResourceRequirements, TopologySpreadConstraint,
    UnsatisfiableConstraintAction,
};
use ketch_core::api::{ConditionStatus, Node, Pod};
use ketch_core::{LabelSelector, ObjectMeta, Quantity};

/// Label every node carries with its own name.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// Label of a node's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The zones of the TopologySpreading workload.
pub const ZONES: [&str; 3] = ["moon-1", "moon-2", "moon-3"];
/// Name of the node that receives every pod of SchedulingDaemonset.
pub const DAEMONSET_NODE: &str = "scheduler-perf-node";

/// What kind of node to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeShape {
    /// `node-default.yaml`: 4 CPU, 32Gi, 110 pods.
    Default,
    /// `node-default.yaml` with a zone label, round-robin over [`ZONES`].
    Zoned,
    /// `node-with-name.yaml`: [`DAEMONSET_NODE`] with room for 90000 pods.
    DaemonsetTarget,
}

/// What kind of pod to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodShape {
    /// `pod-default.yaml`: one container requesting 100m CPU and 500Mi.
    Default,
    /// A low-priority pod requesting 900m CPU and 500Mi, deleted at once when preempted.
    LowPriority,
    /// A priority-10 pod requesting 3000m CPU and 500Mi.
    HighPriority,
    /// A default pod labelled `color=green` with required anti-affinity to
    /// `color=green` on the hostname, across the given namespaces.
    AntiAffinity(&'static [&'static str]),
    /// A default pod labelled `color=blue`, spread over zones with maxSkew 5
    /// and `DoNotSchedule`.
    TopologySpread,
    /// A pod without requests pinned to [`DAEMONSET_NODE`] by required node
    /// affinity on `metadata.name`.
    Daemonset,
}

/// Maximum skew of the TopologySpreading pods.
pub const SPREAD_MAX_SKEW: i32 = 5;
/// Priority of [`PodShape::HighPriority`] pods.
pub const HIGH_PRIORITY: i32 = 10;
/// Priority of [`PodShape::LowPriority`] pods.
pub const LOW_PRIORITY: i32 = 1;

/// The name of the `index`-th node of a group whose names start with
/// `prefix`; the daemonset target node has its fixed name.
pub fn node_name(shape: NodeShape, prefix: &str, index: usize) -> String {
    match shape {
        NodeShape::DaemonsetTarget => DAEMONSET_NODE.to_string(),
        NodeShape::Default | NodeShape::Zoned => format!("{prefix}-{index}"),
    }
}

/// Builds one node.
pub fn node(shape: NodeShape, name: &str, index: usize) -> Node {
    let mut metadata = ObjectMeta::cluster_named(name).with_label(HOSTNAME_LABEL, name);
    if shape == NodeShape::Zoned {
        metadata = metadata.with_label(ZONE_LABEL, ZONES[index % ZONES.len()]);
    }
    let pods = match shape {
        NodeShape::DaemonsetTarget => "90000",
        NodeShape::Default | NodeShape::Zoned => "110",
    };
    let resources: BTreeMap<String, Quantity> = [("cpu", "4"), ("memory", "32Gi"), ("pods", pods)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity::from(v)))
        .collect();
    Node {
        metadata,
        spec: NodeSpec::default(),
        status: NodeStatus {
            capacity: resources.clone(),
            allocatable: resources,
            phase: Some("Running".to_string()),
            conditions: vec![NodeCondition {
                type_: "Ready".to_string(),
                status: ConditionStatus::True,
                ..NodeCondition::default()
            }],
            ..NodeStatus::default()
        },
    }
}

fn requests(cpu: &str, memory: &str) -> Option<ResourceRequirements> {
    let list: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity::from(v)))
        .collect();
    Some(ResourceRequirements {
        requests: list.clone(),
        limits: list,
    })
}

fn pause_container(resources: Option<ResourceRequirements>) -> Container {
    Container {
        name: "pause".to_string(),
        image: Some("registry.k8s.io/pause:3.10".to_string()),
        ports: vec![ContainerPort {
            container_port: 80,
            ..ContainerPort::default()
        }],
        resources,
        ..Container::default()
    }
}

fn match_labels(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: BTreeMap::from([(key.to_string(), value.to_string())]),
        ..LabelSelector::default()
    }
}

/// Builds one pod named `name` in `namespace`.
pub fn pod(shape: PodShape, namespace: &str, name: &str) -> Pod {
    let mut metadata = ObjectMeta::named(namespace, name);
    let mut spec = PodSpec {
        containers: vec![pause_container(requests("100m", "500Mi"))],
        ..PodSpec::default()
    };
    match shape {
        PodShape::Default => {}
        PodShape::LowPriority => {
            spec.containers = vec![pause_container(requests("900m", "500Mi"))];
            spec.priority = Some(LOW_PRIORITY);
            spec.termination_grace_period_seconds = Some(0);
        }
        PodShape::HighPriority => {
            spec.containers = vec![pause_container(requests("3000m", "500Mi"))];
            spec.priority = Some(HIGH_PRIORITY);
        }
        PodShape::AntiAffinity(namespaces) => {
            metadata = metadata
                .with_label("color", "green")
                .with_label("name", "test");
            spec.affinity = Some(Affinity {
                pod_anti_affinity: Some(PodAntiAffinity {
                    required_during_scheduling_ignored_during_execution: vec![PodAffinityTerm {
                        label_selector: Some(match_labels("color", "green")),
                        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
                        topology_key: HOSTNAME_LABEL.to_string(),
                        namespace_selector: None,
                    }],
                    ..PodAntiAffinity::default()
                }),
                ..Affinity::default()
            });
        }
        PodShape::TopologySpread => {
            metadata = metadata.with_label("color", "blue");
            spec.topology_spread_constraints = vec![TopologySpreadConstraint {
                max_skew: SPREAD_MAX_SKEW,
                topology_key: ZONE_LABEL.to_string(),
                when_unsatisfiable: UnsatisfiableConstraintAction::DoNotSchedule,
                label_selector: Some(match_labels("color", "blue")),
                ..TopologySpreadConstraint::default()
            }];
        }
        PodShape::Daemonset => {
            spec.containers = vec![Container {
                name: "pause".to_string(),
                image: Some("registry.k8s.io/pause:3.10".to_string()),
                ..Container::default()
            }];
            spec.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_fields: vec![NodeSelectorRequirement {
                                key: "metadata.name".to_string(),
                                operator: NodeSelectorOperator::In,
                                values: vec![DAEMONSET_NODE.to_string()],
                            }],
                            ..NodeSelectorTerm::default()
                        }],
                    }),
                    ..NodeAffinity::default()
                }),
                ..Affinity::default()
            });
        }
    }
    Pod {
        metadata,
        spec,
        ..Pod::default()
    }
}
