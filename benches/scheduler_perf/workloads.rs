//! The workloads of kube-scheduler's scheduler_perf suite, as run here: the
//! nodes to create, the initial pods (scheduled before measuring), the
//! measured pods, and an optional stream of high-priority pods that preempt
//! during the measured phase.

use std::time::Duration;

use crate::objects::{DAEMONSET_NODE, NodeShape, PodShape};

/// Namespace of the initial pods.
pub const INITIAL_NAMESPACE: &str = "sched-0";
/// Namespace of the measured pods.
pub const MEASURED_NAMESPACE: &str = "sched-1";
/// Namespace of the high-priority pods of PreemptionAsync.
pub const CHURN_NAMESPACE: &str = "sched-churn";
/// Every namespace the harness creates.
pub const NAMESPACES: [&str; 3] = [INITIAL_NAMESPACE, MEASURED_NAMESPACE, CHURN_NAMESPACE];

/// The two namespaces the anti-affinity terms span.
const ANTI_AFFINITY_NAMESPACES: &[&str] = &[MEASURED_NAMESPACE, INITIAL_NAMESPACE];

/// A group of identical nodes.
#[derive(Clone, Copy, Debug)]
pub struct NodeGroup {
    /// How many.
    pub count: usize,
    /// Their shape.
    pub shape: NodeShape,
    /// Name prefix: nodes are named `<prefix>-<i>` (the daemonset target
    /// node is always named [`DAEMONSET_NODE`]).
    pub prefix: &'static str,
}

/// A group of identical pods.
#[derive(Clone, Copy, Debug)]
pub struct PodGroup {
    /// How many.
    pub count: usize,
    /// Their shape.
    pub shape: PodShape,
}

/// Pods created one at a time at a fixed interval while the measured pods are
/// scheduled (scheduler_perf's `churn` op in `create` mode).
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    /// Shape of each pod.
    pub shape: PodShape,
    /// Time between two pods.
    pub interval: Duration,
}

/// The placement rule checked after the workload, besides node capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// Capacity only.
    None,
    /// No two `color=green` pods share a hostname.
    AntiAffinity,
    /// The measured pods' counts per zone differ by at most the max skew.
    Spread,
    /// Every measured pod runs on the named node.
    PinnedTo(&'static str),
    /// Every deleted pod was a victim of a strictly higher-priority pod
    /// nominated to (or bound on) its node.
    Preemption,
}

/// One scheduler_perf workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// `<TestCase>/<Workload>`, e.g. `SchedulingBasic/5000Nodes`.
    pub name: &'static str,
    /// Nodes, created before the scheduler starts.
    pub nodes: Vec<NodeGroup>,
    /// Pods scheduled before measuring starts.
    pub initial: Option<PodGroup>,
    /// The measured pods.
    pub measured: PodGroup,
    /// Pods created at an interval during the measured phase.
    pub churn: Option<Churn>,
    /// The hard constraint to verify.
    pub constraint: Constraint,
}

impl Workload {
    /// Total number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.iter().map(|g| g.count).sum()
    }
}

fn default_nodes(count: usize) -> Vec<NodeGroup> {
    vec![NodeGroup {
        count,
        shape: NodeShape::Default,
        prefix: "node",
    }]
}

fn basic(name: &'static str, nodes: usize) -> Workload {
    Workload {
        name,
        nodes: default_nodes(nodes),
        initial: Some(PodGroup {
            count: 1000,
            shape: PodShape::Default,
        }),
        measured: PodGroup {
            count: 10000,
            shape: PodShape::Default,
        },
        churn: None,
        constraint: Constraint::None,
    }
}

/// Every workload, in the order they run.
pub fn all() -> Vec<Workload> {
    vec![
        basic("SchedulingBasic/5000Nodes", 5000),
        Workload {
            name: "SchedulingPodAntiAffinity/5000Nodes",
            nodes: default_nodes(5000),
            initial: Some(PodGroup {
                count: 1000,
                shape: PodShape::AntiAffinity(ANTI_AFFINITY_NAMESPACES),
            }),
            measured: PodGroup {
                count: 2000,
                shape: PodShape::AntiAffinity(ANTI_AFFINITY_NAMESPACES),
            },
            churn: None,
            constraint: Constraint::AntiAffinity,
        },
        Workload {
            name: "TopologySpreading/5000Nodes",
            nodes: vec![NodeGroup {
                count: 5000,
                shape: NodeShape::Zoned,
                prefix: "node",
            }],
            initial: Some(PodGroup {
                count: 5000,
                shape: PodShape::Default,
            }),
            measured: PodGroup {
                count: 5000,
                shape: PodShape::TopologySpread,
            },
            churn: None,
            constraint: Constraint::Spread,
        },
        Workload {
            name: "PreemptionAsync/5000Nodes",
            nodes: default_nodes(5000),
            initial: Some(PodGroup {
                count: 20000,
                shape: PodShape::LowPriority,
            }),
            measured: PodGroup {
                count: 5000,
                shape: PodShape::Default,
            },
            churn: Some(Churn {
                shape: PodShape::HighPriority,
                interval: Duration::from_millis(200),
            }),
            constraint: Constraint::Preemption,
        },
        Workload {
            name: "SchedulingDaemonset/15000Nodes",
            nodes: vec![
                NodeGroup {
                    count: 1,
                    shape: NodeShape::DaemonsetTarget,
                    prefix: DAEMONSET_NODE,
                },
                NodeGroup {
                    count: 15000,
                    shape: NodeShape::Default,
                    prefix: "node",
                },
            ],
            initial: None,
            measured: PodGroup {
                count: 30000,
                shape: PodShape::Daemonset,
            },
            churn: None,
            constraint: Constraint::PinnedTo(DAEMONSET_NODE),
        },
        basic("SchedulingBasic/500Nodes", 500),
        basic("SchedulingBasic/15000Nodes", 15000),
    ]
}
