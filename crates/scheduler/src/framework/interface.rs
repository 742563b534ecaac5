//! The extension points: one small trait per point. A plugin implements
//! [`Plugin`] plus the points it needs, and returns itself from the matching
//! `as_*` accessor so the framework can find it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ketch_core::Client;

use super::{ClusterEvent, CycleState, NodeInfo, PodInfo, Snapshot, Status};

/// Highest score a Score plugin may give after normalization.
pub const MAX_NODE_SCORE: i64 = 100;
/// Lowest score.
pub const MIN_NODE_SCORE: i64 = 0;

/// A scheduler plugin. `name` is its registry name; the `as_*` accessors
/// say which extension points it implements.
///
/// ```
/// use ketch_scheduler::framework::{ClusterEvent, CycleState, FilterPlugin, NodeInfo, Plugin, PodInfo, Status};
/// struct NoOdd;
/// impl Plugin for NoOdd {
///     fn name(&self) -> &'static str { "NoOdd" }
///     fn events_to_register(&self) -> Vec<ClusterEvent> { vec![ClusterEvent::WILDCARD] }
///     fn as_filter(&self) -> Option<&dyn FilterPlugin> { Some(self) }
/// }
/// impl FilterPlugin for NoOdd {
///     fn filter(&self, _: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
///         if node.name().len() % 2 == 1 { Status::unschedulable("node(s) had an odd name") } else { Status::success() }
///     }
/// }
/// ```
pub trait Plugin: Send + Sync + 'static {
    /// The registry name, e.g. `NodeResourcesFit`.
    fn name(&self) -> &'static str;

    /// Cluster events that can make a pod this plugin rejected schedulable.
    /// The queue moves such a pod only on these events (and on the periodic
    /// flush). Plugins that reject nothing return an empty list.
    fn events_to_register(&self) -> Vec<ClusterEvent>;

    /// This plugin as a QueueSort plugin.
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    /// This plugin as a PreFilter plugin.
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    /// This plugin as a Filter plugin.
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    /// This plugin as a PostFilter plugin.
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    /// This plugin as a PreScore plugin.
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    /// This plugin as a Score plugin.
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    /// This plugin as a Reserve plugin.
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    /// This plugin as a Permit plugin.
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    /// This plugin as a PreBind plugin.
    fn as_pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    /// This plugin as a Bind plugin.
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
    /// This plugin as a PostBind plugin.
    fn as_post_bind(&self) -> Option<&dyn PostBindPlugin> {
        None
    }
}

/// A pod waiting in the scheduling queue, as QueueSort sees it.
#[derive(Clone, Debug)]
pub struct QueuedPodInfo {
    /// The pod.
    pub pod_info: Arc<PodInfo>,
    /// When the pod was first added to the queue (monotonic sequence).
    pub initial_attempt_seq: u64,
    /// When the pod last entered the active queue (monotonic sequence).
    pub enqueue_seq: u64,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// Plugins that rejected the pod in its last attempt.
    pub unschedulable_plugins: HashSet<&'static str>,
}

/// Orders the active queue.
pub trait QueueSortPlugin: Plugin {
    /// True if `a` should be scheduled before `b`.
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool;
}

/// What a PreFilter learned: optionally, the only nodes worth filtering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    /// `Some(names)`: only these nodes can fit; `None`: all nodes.
    pub node_names: Option<HashSet<String>>,
}

impl PreFilterResult {
    /// No narrowing.
    pub fn all_nodes() -> Self {
        Self { node_names: None }
    }

    /// Only these nodes.
    pub fn only(names: impl IntoIterator<Item = String>) -> Self {
        Self {
            node_names: Some(names.into_iter().collect()),
        }
    }

    /// Intersects two results.
    pub fn merge(self, other: PreFilterResult) -> PreFilterResult {
        match (self.node_names, other.node_names) {
            (None, o) | (o, None) => PreFilterResult { node_names: o },
            (Some(a), Some(b)) => PreFilterResult {
                node_names: Some(a.intersection(&b).cloned().collect()),
            },
        }
    }
}

/// Runs once per cycle before filtering: computes state, checks pod-level
/// conditions, and may narrow the candidate nodes.
pub trait PreFilterPlugin: Plugin {
    /// Returns `Skip` to skip this plugin's Filter for the cycle.
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status);

    /// Incremental updates of the state written in `pre_filter`, used by
    /// preemption to simulate adding or removing pods on a node.
    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        None
    }
}

/// Updates a PreFilter plugin's cycle state as if a pod were added or removed.
pub trait PreFilterExtensions: Send + Sync {
    /// `pod_to_add` is added to `node`.
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
    /// `pod_to_remove` is removed from `node`.
    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_remove: &PodInfo,
        node: &NodeInfo,
    ) -> Status;
}

/// Decides whether the pod can run on one node. Called in parallel over nodes:
/// synchronous, and it must not allocate on the success path.
pub trait FilterPlugin: Plugin {
    /// `Success`, `Unschedulable` or `UnschedulableAndUnresolvable` (with a reason).
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// The filter outcome of every node that was evaluated, for PostFilter and
/// for the failure summary.
#[derive(Clone, Debug, Default)]
pub struct NodeToStatus {
    /// Statuses of rejected nodes, by node name.
    pub rejected: Vec<(String, Status)>,
    /// Status for nodes not listed (e.g. excluded by PreFilter narrowing).
    pub absent: Option<Status>,
}

/// What a PostFilter achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostFilterResult {
    /// The node the pod is nominated to run on once victims are gone.
    pub nominated_node_name: Option<String>,
}

/// What a PostFilter plugin may use besides the snapshot: the framework's
/// filter run (for simulations) and the API client.
pub trait FrameworkHandle: Send + Sync {
    /// Runs every enabled Filter plugin on `node` with `state`.
    fn run_filter_plugins(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
    /// Runs every PreFilter extension's `add_pod`.
    fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
    /// Runs every PreFilter extension's `remove_pod`.
    fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        to_remove: &PodInfo,
        node: &NodeInfo,
    ) -> Status;
    /// The API client.
    fn client(&self) -> &Arc<dyn Client>;
    /// Pods nominated to `node_name` that have not been bound yet.
    fn nominated_pods(&self, node_name: &str) -> Vec<Arc<PodInfo>>;
}

/// Runs when no node fits, e.g. preemption.
pub trait PostFilterPlugin: Plugin {
    /// Tries to make the pod schedulable; long work (deleting victims) is
    /// spawned, not awaited.
    fn post_filter(
        &self,
        handle: &dyn FrameworkHandle,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status);
}

/// Runs once per cycle before scoring, over the feasible nodes.
pub trait PreScorePlugin: Plugin {
    /// Returns `Skip` to skip this plugin's Score for the cycle.
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[&NodeInfo]) -> Status;
}

/// A node's score from one plugin, or the weighted total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeScore {
    /// Index of the node in the feasible list.
    pub index: usize,
    /// The score.
    pub score: i64,
}

/// Ranks feasible nodes. Called in parallel over nodes: synchronous and
/// allocation-free.
pub trait ScorePlugin: Plugin {
    /// A raw score for one node.
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status>;

    /// Rescales raw scores into `MIN_NODE_SCORE..=MAX_NODE_SCORE`; the default
    /// leaves them as they are.
    fn normalize_scores(
        &self,
        _state: &CycleState,
        _pod: &PodInfo,
        _scores: &mut [NodeScore],
    ) -> Status {
        Status::success()
    }
}

/// Reserves (and releases) plugin-held resources for the chosen node.
pub trait ReservePlugin: Plugin {
    /// Reserves; a failure unreserves every Reserve plugin.
    fn reserve(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str) -> Status;
    /// Releases what `reserve` took; must be idempotent.
    fn unreserve(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str);
}

/// Approves, rejects or delays binding.
pub trait PermitPlugin: Plugin {
    /// `Success`, `Wait` (with the longest wait) or a rejection.
    fn permit(&self, state: &mut CycleState, pod: &PodInfo, node_name: &str) -> (Status, Duration);
}

/// Work before binding, e.g. provisioning.
#[async_trait::async_trait]
pub trait PreBindPlugin: Plugin {
    /// A failure aborts binding and requeues the pod.
    async fn pre_bind(&self, state: &CycleState, pod: &PodInfo, node_name: &str) -> Status;
}

/// Binds the pod to the node. Binders run in order until one does not `Skip`.
#[async_trait::async_trait]
pub trait BindPlugin: Plugin {
    /// `Success`, `Skip` or an error.
    async fn bind(&self, state: &CycleState, pod: &PodInfo, node_name: &str) -> Status;
}

/// Informational, after a successful bind.
pub trait PostBindPlugin: Plugin {
    /// Called after the pod was bound.
    fn post_bind(&self, state: &CycleState, pod: &PodInfo, node_name: &str);
}
