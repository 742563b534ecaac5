//! NodeResourcesFit: a pod fits a node when the node's allocatable covers the
//! requests of the pods already there plus the pod's (cpu, memory,
//! ephemeral storage, pod count and extended resources such as
//! `example.com/gpu`). Scoring prefers nodes by one of three strategies:
//! `LeastAllocated` (the default, spreads load), `MostAllocated` (packs) and
//! `RequestedToCapacityRatio` (a piecewise-linear function of utilization).

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, MAX_NODE_SCORE, NodeInfo,
    Plugin, PluginError, PodInfo, PreFilterPlugin, PreFilterResult, PreScorePlugin, Resources,
    ScorePlugin, Snapshot, Status, resource_names,
};

/// The highest score of a `RequestedToCapacityRatio` shape point.
pub const MAX_CUSTOM_PRIORITY_SCORE: i64 = 10;
/// The highest utilization of a shape point (percent).
pub const MAX_UTILIZATION: i64 = 100;

/// A resource and its weight in scoring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResourceSpec {
    /// Resource name, e.g. `cpu` or `example.com/gpu`.
    pub name: String,
    /// Weight in 1..=100.
    #[serde(default = "default_weight")]
    pub weight: i64,
}

fn default_weight() -> i64 {
    1
}

/// The default scored resources: cpu and memory, weight 1 each.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![
        ResourceSpec {
            name: resource_names::CPU.into(),
            weight: 1,
        },
        ResourceSpec {
            name: resource_names::MEMORY.into(),
            weight: 1,
        },
    ]
}

/// How NodeResourcesFit scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScoringStrategyType {
    /// Prefer nodes with the most free resources.
    #[default]
    LeastAllocated,
    /// Prefer nodes with the least free resources.
    MostAllocated,
    /// Score by a piecewise-linear function of utilization.
    RequestedToCapacityRatio,
}

/// One point of the `RequestedToCapacityRatio` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UtilizationShapePoint {
    /// Utilization in percent, 0..=100, strictly increasing along the shape.
    pub utilization: i32,
    /// Score at that utilization, 0..=10.
    pub score: i32,
}

/// Arguments of `RequestedToCapacityRatio`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestedToCapacityRatioParam {
    /// The function's points.
    pub shape: Vec<UtilizationShapePoint>,
}

/// The scoring strategy and the resources it weighs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScoringStrategy {
    /// The strategy.
    #[serde(rename = "type", default)]
    pub type_: ScoringStrategyType,
    /// Scored resources; cpu and memory with weight 1 when empty.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
    /// Required for `RequestedToCapacityRatio`.
    #[serde(default)]
    pub requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

/// Arguments of NodeResourcesFit.
///
/// ```
/// use ketch_scheduler::framework::decode_args;
/// use ketch_scheduler::plugins::node_resources_fit::{NodeResourcesFitArgs, ScoringStrategyType};
/// let args: NodeResourcesFitArgs = decode_args("NodeResourcesFit", Some(&serde_json::json!({
///     "scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu", "weight": 2}]}
/// }))).unwrap();
/// assert_eq!(args.scoring_strategy.unwrap().type_, ScoringStrategyType::MostAllocated);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeResourcesFitArgs {
    /// Extended resources the filter ignores.
    #[serde(default)]
    pub ignored_resources: Vec<String>,
    /// Extended resource groups (the part before `/`) the filter ignores.
    #[serde(default)]
    pub ignored_resource_groups: Vec<String>,
    /// How to score; `LeastAllocated` on cpu and memory when absent.
    #[serde(default)]
    pub scoring_strategy: Option<ScoringStrategy>,
}

fn invalid(plugin: &str, message: String) -> PluginError {
    PluginError::InvalidArgs {
        plugin: plugin.to_string(),
        message,
    }
}

/// Checks scored resources: weights in 1..=100, no duplicates.
pub(crate) fn validate_resources(
    plugin: &str,
    resources: &[ResourceSpec],
) -> Result<(), PluginError> {
    for (i, r) in resources.iter().enumerate() {
        if r.name.is_empty() {
            return Err(invalid(
                plugin,
                format!("resources[{i}].name: must not be empty"),
            ));
        }
        if !(1..=100).contains(&r.weight) {
            return Err(invalid(
                plugin,
                format!("resources[{i}].weight: {} not in 1..=100", r.weight),
            ));
        }
        if resources[..i].iter().any(|o| o.name == r.name) {
            return Err(invalid(
                plugin,
                format!("resources[{i}].name: duplicate {:?}", r.name),
            ));
        }
    }
    Ok(())
}

fn validate_shape(plugin: &str, shape: &[UtilizationShapePoint]) -> Result<(), PluginError> {
    if shape.is_empty() {
        return Err(invalid(
            plugin,
            "scoringStrategy.requestedToCapacityRatio.shape: at least one point is required".into(),
        ));
    }
    for (i, p) in shape.iter().enumerate() {
        if !(0..=MAX_UTILIZATION as i32).contains(&p.utilization) {
            return Err(invalid(
                plugin,
                format!("shape[{i}].utilization: {} not in 0..=100", p.utilization),
            ));
        }
        if !(0..=MAX_CUSTOM_PRIORITY_SCORE as i32).contains(&p.score) {
            return Err(invalid(
                plugin,
                format!("shape[{i}].score: {} not in 0..=10", p.score),
            ));
        }
        if i > 0 && shape[i - 1].utilization >= p.utilization {
            return Err(invalid(
                plugin,
                format!("shape[{i}].utilization: values must be strictly increasing"),
            ));
        }
    }
    Ok(())
}

/// A resource as the scorers address it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResourceKey {
    Cpu,
    Memory,
    EphemeralStorage,
    Pods,
    Scalar(String),
}

impl ResourceKey {
    pub(crate) fn new(name: &str) -> Self {
        match name {
            resource_names::CPU => Self::Cpu,
            resource_names::MEMORY => Self::Memory,
            resource_names::EPHEMERAL_STORAGE => Self::EphemeralStorage,
            resource_names::PODS => Self::Pods,
            other => Self::Scalar(other.to_string()),
        }
    }

    /// The pod's request of this resource; with `use_requested` false, cpu
    /// and memory use the scoring defaults for containers without requests.
    pub(crate) fn pod_request(&self, pod: &PodInfo, use_requested: bool) -> i64 {
        match self {
            Self::Cpu if use_requested => pod.requests.milli_cpu,
            Self::Cpu => pod.non_zero_milli_cpu,
            Self::Memory if use_requested => pod.requests.memory,
            Self::Memory => pod.non_zero_memory,
            Self::EphemeralStorage => pod.requests.ephemeral_storage,
            Self::Pods => 0,
            Self::Scalar(name) => pod.requests.scalar(name),
        }
    }

    /// (allocatable, requested including the pod) on `node`; (0, 0) means
    /// "not scored" (an extended resource the pod does not request, or one
    /// the node lacks).
    pub(crate) fn allocatable_and_requested(
        &self,
        node: &NodeInfo,
        pod_request: i64,
        use_requested: bool,
    ) -> (i64, i64) {
        let requested = if use_requested {
            &node.requested
        } else {
            &node.non_zero_requested
        };
        match self {
            Self::Cpu => (
                node.allocatable.milli_cpu,
                requested.milli_cpu + pod_request,
            ),
            Self::Memory => (node.allocatable.memory, requested.memory + pod_request),
            Self::EphemeralStorage => (
                node.allocatable.ephemeral_storage,
                node.requested.ephemeral_storage + pod_request,
            ),
            Self::Pods => (0, 0),
            Self::Scalar(name) => {
                if pod_request == 0 {
                    return (0, 0);
                }
                (
                    node.allocatable.scalar(name),
                    node.requested.scalar(name) + pod_request,
                )
            }
        }
    }
}

/// `(capacity - requested) * 100 / capacity`, 0 when over capacity.
pub(crate) fn least_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 || requested > capacity {
        return 0;
    }
    (capacity - requested) * MAX_NODE_SCORE / capacity
}

/// `requested * 100 / capacity`, capped at capacity.
pub(crate) fn most_requested_score(requested: i64, capacity: i64) -> i64 {
    if capacity == 0 {
        return 0;
    }
    requested.min(capacity) * MAX_NODE_SCORE / capacity
}

/// A piecewise-linear function through the shape points, scores already
/// scaled to `0..=MAX_NODE_SCORE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BrokenLinear {
    points: Vec<(i64, i64)>,
}

impl BrokenLinear {
    fn new(shape: &[UtilizationShapePoint]) -> Self {
        Self {
            points: shape
                .iter()
                .map(|p| {
                    (
                        i64::from(p.utilization),
                        i64::from(p.score) * (MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE),
                    )
                })
                .collect(),
        }
    }

    fn eval(&self, p: i64) -> i64 {
        for (i, &(u, s)) in self.points.iter().enumerate() {
            if p <= u {
                if i == 0 {
                    return s;
                }
                let (pu, ps) = self.points[i - 1];
                return ps + (s - ps) * (p - pu) / (u - pu);
            }
        }
        self.points.last().map(|&(_, s)| s).unwrap_or(0)
    }

    fn resource_score(&self, requested: i64, capacity: i64) -> i64 {
        if capacity == 0 || requested > capacity {
            return self.eval(MAX_UTILIZATION);
        }
        self.eval(requested * MAX_UTILIZATION / capacity)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Strategy {
    Least,
    Most,
    Ratio(BrokenLinear),
}

/// The pod's requests as the filter checks them (ignored extended resources
/// removed), computed once per cycle.
#[derive(Clone, Debug, Default)]
struct PreFilterState {
    requests: Resources,
}

/// The pod's requests of each scored resource, computed once per cycle.
#[derive(Clone, Debug, Default)]
struct PreScoreState {
    requests: SmallVec<[i64; 4]>,
}

/// One resource a node lacks for the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsufficientResource {
    /// Resource name.
    pub resource: String,
    /// What the pod requests.
    pub requested: i64,
    /// What the node's pods already use.
    pub used: i64,
    /// The node's allocatable.
    pub capacity: i64,
}

/// The NodeResourcesFit plugin.
#[derive(Clone, Debug)]
pub struct NodeResourcesFit {
    ignored_resources: Vec<String>,
    ignored_groups: Vec<String>,
    resources: Vec<(ResourceKey, i64)>,
    strategy: Strategy,
}

impl Default for NodeResourcesFit {
    fn default() -> Self {
        Self {
            ignored_resources: Vec::new(),
            ignored_groups: Vec::new(),
            resources: default_resources()
                .iter()
                .map(|r| (ResourceKey::new(&r.name), r.weight))
                .collect(),
            strategy: Strategy::Least,
        }
    }
}

impl NodeResourcesFit {
    /// The registry name.
    pub const NAME: &'static str = "NodeResourcesFit";

    /// Builds the plugin from validated arguments.
    pub fn new(args: NodeResourcesFitArgs) -> Result<Self, PluginError> {
        for g in &args.ignored_resource_groups {
            if g.is_empty() || g.contains('/') {
                return Err(invalid(
                    Self::NAME,
                    format!("ignoredResourceGroups: {g:?} must be a non-empty name without '/'"),
                ));
            }
        }
        let strategy = args.scoring_strategy.unwrap_or_default();
        let resources = if strategy.resources.is_empty() {
            default_resources()
        } else {
            strategy.resources
        };
        validate_resources(Self::NAME, &resources)?;
        let s = match strategy.type_ {
            ScoringStrategyType::LeastAllocated => Strategy::Least,
            ScoringStrategyType::MostAllocated => Strategy::Most,
            ScoringStrategyType::RequestedToCapacityRatio => {
                let shape = strategy
                    .requested_to_capacity_ratio
                    .map(|r| r.shape)
                    .unwrap_or_default();
                validate_shape(Self::NAME, &shape)?;
                Strategy::Ratio(BrokenLinear::new(&shape))
            }
        };
        Ok(Self {
            ignored_resources: args.ignored_resources,
            ignored_groups: args.ignored_resource_groups,
            resources: resources
                .iter()
                .map(|r| (ResourceKey::new(&r.name), r.weight))
                .collect(),
            strategy: s,
        })
    }

    fn is_ignored(&self, name: &str) -> bool {
        self.ignored_resources.iter().any(|r| r == name)
            || name
                .split_once('/')
                .is_some_and(|(group, _)| self.ignored_groups.iter().any(|g| g == group))
    }

    fn pod_requests(&self, pod: &PodInfo) -> Resources {
        let mut r = pod.requests.clone();
        if !self.ignored_resources.is_empty() || !self.ignored_groups.is_empty() {
            r.scalars.retain(|(n, _)| !self.is_ignored(n));
        }
        r
    }

    /// Every resource the node lacks for a pod requesting `requests`
    /// (allocates; for preemption and tests).
    pub fn insufficient_resources(
        requests: &Resources,
        node: &NodeInfo,
    ) -> Vec<InsufficientResource> {
        let mut out = Vec::new();
        let used_pods = node.pods.len() as i64;
        if used_pods + 1 > node.allocatable.allowed_pod_number {
            out.push(InsufficientResource {
                resource: resource_names::PODS.into(),
                requested: 1,
                used: used_pods,
                capacity: node.allocatable.allowed_pod_number,
            });
        }
        let mut check = |name: &str, req: i64, used: i64, cap: i64| {
            if req > 0 && cap < req + used {
                out.push(InsufficientResource {
                    resource: name.into(),
                    requested: req,
                    used,
                    capacity: cap,
                });
            }
        };
        check(
            resource_names::CPU,
            requests.milli_cpu,
            node.requested.milli_cpu,
            node.allocatable.milli_cpu,
        );
        check(
            resource_names::MEMORY,
            requests.memory,
            node.requested.memory,
            node.allocatable.memory,
        );
        check(
            resource_names::EPHEMERAL_STORAGE,
            requests.ephemeral_storage,
            node.requested.ephemeral_storage,
            node.allocatable.ephemeral_storage,
        );
        for (name, q) in &requests.scalars {
            check(
                name,
                *q,
                node.requested.scalar(name),
                node.allocatable.scalar(name),
            );
        }
        out
    }

    fn score_node(&self, requests: &[i64], node: &NodeInfo) -> i64 {
        let (mut total, mut weights) = (0i64, 0i64);
        for ((key, weight), &req) in self.resources.iter().zip(requests) {
            let (alloc, requested) = key.allocatable_and_requested(node, req, false);
            if alloc == 0 {
                continue;
            }
            let s = match &self.strategy {
                Strategy::Least => least_requested_score(requested, alloc),
                Strategy::Most => most_requested_score(requested, alloc),
                Strategy::Ratio(f) => {
                    let s = f.resource_score(requested, alloc);
                    if s <= 0 {
                        continue;
                    }
                    s
                }
            };
            total += s * weight;
            weights += weight;
        }
        if weights == 0 {
            return 0;
        }
        match self.strategy {
            Strategy::Ratio(_) => (total as f64 / weights as f64).round() as i64,
            _ => total / weights,
        }
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(
                EventResource::AssignedPod,
                ActionType::DELETE | ActionType::UPDATE_POD_SCALE_DOWN,
            ),
            ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD | ActionType::UPDATE_NODE_ALLOCATABLE,
            ),
        ]
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodeResourcesFit {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (PreFilterResult, Status) {
        state.write(PreFilterState {
            requests: self.pod_requests(pod),
        });
        (PreFilterResult::all_nodes(), Status::success())
    }
}

impl FilterPlugin for NodeResourcesFit {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let computed;
        let r = match state.read::<PreFilterState>() {
            Some(s) => &s.requests,
            None => {
                computed = self.pod_requests(pod);
                &computed
            }
        };
        let mut status: Option<Status> = None;
        let mut add = |reason: std::borrow::Cow<'static, str>| {
            status = Some(match status.take() {
                None => Status::unschedulable(reason),
                Some(s) => s.with_reason(reason),
            });
        };
        if node.pods.len() as i64 + 1 > node.allocatable.allowed_pod_number {
            add("Too many pods".into());
        }
        let zero =
            r.milli_cpu == 0 && r.memory == 0 && r.ephemeral_storage == 0 && r.scalars.is_empty();
        if !zero {
            if node.allocatable.milli_cpu < r.milli_cpu + node.requested.milli_cpu {
                add("Insufficient cpu".into());
            }
            if node.allocatable.memory < r.memory + node.requested.memory {
                add("Insufficient memory".into());
            }
            if node.allocatable.ephemeral_storage
                < r.ephemeral_storage + node.requested.ephemeral_storage
            {
                add("Insufficient ephemeral-storage".into());
            }
            for (name, q) in &r.scalars {
                if node.allocatable.scalar(name) < q + node.requested.scalar(name) {
                    add(format!("Insufficient {name}").into());
                }
            }
        }
        status.unwrap_or_else(Status::success)
    }
}

impl PreScorePlugin for NodeResourcesFit {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo]) -> Status {
        state.write(PreScoreState {
            requests: self
                .resources
                .iter()
                .map(|(k, _)| k.pod_request(pod, false))
                .collect(),
        });
        Status::success()
    }
}

impl ScorePlugin for NodeResourcesFit {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        match state.read::<PreScoreState>() {
            Some(s) => Ok(self.score_node(&s.requests, node)),
            None => {
                let reqs: SmallVec<[i64; 4]> = self
                    .resources
                    .iter()
                    .map(|(k, _)| k.pod_request(pod, false))
                    .collect();
                Ok(self.score_node(&reqs, node))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Code, decode_args};
    use crate::plugins::testing::{NodeBuilder, PodBuilder};

    fn run_filter(plugin: &NodeResourcesFit, pod: &PodInfo, node: &NodeInfo) -> Status {
        let mut state = CycleState::default();
        let (_, s) = plugin.pre_filter(&mut state, pod, &Snapshot::default());
        assert!(s.is_success());
        plugin.filter(&state, pod, node)
    }

    #[test]
    fn filter_table() {
        let existing = PodBuilder::new("e")
            .req("cpu", "3")
            .req("memory", "2Gi")
            .build();
        let node = || {
            NodeBuilder::new("n")
                .capacity("4", "4Gi", "2")
                .alloc("example.com/gpu", "1")
                .pod(
                    PodBuilder::new("e")
                        .req("cpu", "3")
                        .req("memory", "2Gi")
                        .build(),
                )
        };
        let _ = existing;
        let cases: Vec<(PodInfo, NodeInfo, Vec<&str>)> = vec![
            (
                PodBuilder::new("p").req("cpu", "1").build(),
                node().build(),
                vec![],
            ),
            (
                PodBuilder::new("p").req("cpu", "1500m").build(),
                node().build(),
                vec!["Insufficient cpu"],
            ),
            (
                PodBuilder::new("p")
                    .req("cpu", "2")
                    .req("memory", "3Gi")
                    .build(),
                node().build(),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                PodBuilder::new("p").req("example.com/gpu", "2").build(),
                node().build(),
                vec!["Insufficient example.com/gpu"],
            ),
            (
                PodBuilder::new("p").req("example.com/gpu", "1").build(),
                node().build(),
                vec![],
            ),
            (
                PodBuilder::new("p").req("cpu", "100m").build(),
                node().pod(PodBuilder::new("x").build()).build(),
                vec!["Too many pods"],
            ),
            (
                PodBuilder::new("p").build(),
                node().pod(PodBuilder::new("x").build()).build(),
                vec!["Too many pods"],
            ),
            (
                PodBuilder::new("p").req("cpu", "5").build(),
                node().pod(PodBuilder::new("x").build()).build(),
                vec!["Too many pods", "Insufficient cpu"],
            ),
            (
                PodBuilder::new("p").req("ephemeral-storage", "1Gi").build(),
                node().build(),
                vec!["Insufficient ephemeral-storage"],
            ),
        ];
        let plugin = NodeResourcesFit::default();
        for (i, (pod, node, want)) in cases.iter().enumerate() {
            let s = run_filter(&plugin, pod, node);
            if want.is_empty() {
                assert!(s.is_success(), "case {i}: {s}");
            } else {
                assert_eq!(s.code(), Code::Unschedulable, "case {i}");
                assert_eq!(s.reasons(), want.as_slice(), "case {i}");
            }
        }
    }

    #[test]
    fn ignored_extended_resources_are_not_checked() {
        let node = NodeBuilder::new("n").capacity("4", "4Gi", "10").build();
        let pod = PodBuilder::new("p")
            .req("example.com/gpu", "1")
            .req("vendor.io/fpga", "1")
            .build();
        let by_name = NodeResourcesFit::new(NodeResourcesFitArgs {
            ignored_resources: vec!["example.com/gpu".into()],
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(
            run_filter(&by_name, &pod, &node).reasons(),
            ["Insufficient vendor.io/fpga"]
        );
        let by_group = NodeResourcesFit::new(NodeResourcesFitArgs {
            ignored_resources: vec!["example.com/gpu".into()],
            ignored_resource_groups: vec!["vendor.io".into()],
            ..Default::default()
        })
        .expect("valid");
        assert!(run_filter(&by_group, &pod, &node).is_success());
    }

    fn score_with(args: NodeResourcesFitArgs, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let plugin = NodeResourcesFit::new(args).expect("valid args");
        let mut state = CycleState::default();
        assert!(plugin.pre_score(&mut state, pod, &[]).is_success());
        plugin.score(&state, pod, node).expect("score")
    }

    fn strategy(type_: ScoringStrategyType, resources: Vec<ResourceSpec>) -> NodeResourcesFitArgs {
        NodeResourcesFitArgs {
            scoring_strategy: Some(ScoringStrategy {
                type_,
                resources,
                requested_to_capacity_ratio: Some(RequestedToCapacityRatioParam {
                    shape: vec![
                        UtilizationShapePoint {
                            utilization: 0,
                            score: 10,
                        },
                        UtilizationShapePoint {
                            utilization: 100,
                            score: 0,
                        },
                    ],
                }),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn score_strategies_table() {
        // Node: 4000m cpu, 10000 bytes memory, 1000m and 5000 requested.
        let node = NodeBuilder::new("n")
            .capacity("4", "10000", "110")
            .alloc("example.com/gpu", "4")
            .pod(
                PodBuilder::new("e")
                    .req("cpu", "1")
                    .req("memory", "5000")
                    .build(),
            )
            .build();
        let pod = PodBuilder::new("p")
            .req("cpu", "1")
            .req("memory", "2500")
            .req("example.com/gpu", "1")
            .build();
        use ScoringStrategyType::*;
        let gpu = |w| ResourceSpec {
            name: "example.com/gpu".into(),
            weight: w,
        };
        let cases = [
            // cpu: (4000-2000)*100/4000 = 50; memory: (10000-7500)*100/10000 = 25 -> 37
            (NodeResourcesFitArgs::default(), 37),
            (strategy(LeastAllocated, vec![]), 37),
            // most: 50 and 75 -> 62
            (strategy(MostAllocated, vec![]), 62),
            // ratio 100->0: 50 and 25 -> (50+25)/2 = 37.5 -> 38
            (strategy(RequestedToCapacityRatio, vec![]), 38),
            // gpu: requested 1 of 4 -> least 75; weights cpu1 mem1 gpu2: (50+25+150)/4 = 56
            (
                strategy(LeastAllocated, [default_resources(), vec![gpu(2)]].concat()),
                56,
            ),
            (strategy(MostAllocated, vec![gpu(1)]), 25),
        ];
        for (i, (args, want)) in cases.into_iter().enumerate() {
            assert_eq!(score_with(args, &pod, &node), want, "case {i}");
        }
    }

    #[test]
    fn score_uses_defaults_for_pods_without_requests() {
        let node = NodeBuilder::new("n").capacity("1", "1000Mi", "110").build();
        let pod = PodBuilder::new("p").build();
        // cpu (1000-100)*100/1000 = 90; memory (1000-200)*100/1000 = 80 -> 85
        assert_eq!(score_with(NodeResourcesFitArgs::default(), &pod, &node), 85);
    }

    #[test]
    fn unrequested_extended_resources_are_not_scored() {
        let node = NodeBuilder::new("n")
            .capacity("4", "10000", "110")
            .alloc("example.com/gpu", "4")
            .build();
        let pod = PodBuilder::new("p")
            .req("cpu", "2")
            .req("memory", "5000")
            .build();
        let args = strategy(
            ScoringStrategyType::LeastAllocated,
            vec![
                ResourceSpec {
                    name: "cpu".into(),
                    weight: 1,
                },
                ResourceSpec {
                    name: "example.com/gpu".into(),
                    weight: 3,
                },
            ],
        );
        assert_eq!(score_with(args, &pod, &node), 50);
    }

    #[test]
    fn args_validation_table() {
        let cases = [
            (serde_json::json!({}), true),
            (
                serde_json::json!({"scoringStrategy": {"type": "MostAllocated"}}),
                true,
            ),
            (
                serde_json::json!({"scoringStrategy": {"type": "Bogus"}}),
                false,
            ),
            (
                serde_json::json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 0}]}}),
                false,
            ),
            (
                serde_json::json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": 101}]}}),
                false,
            ),
            (
                serde_json::json!({"scoringStrategy": {"resources": [{"name": "cpu"}, {"name": "cpu"}]}}),
                false,
            ),
            (
                serde_json::json!({"scoringStrategy": {"type": "RequestedToCapacityRatio"}}),
                false,
            ),
            (
                serde_json::json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]}}}),
                true,
            ),
            (
                serde_json::json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [{"utilization": 50, "score": 0}, {"utilization": 50, "score": 10}]}}}),
                false,
            ),
            (
                serde_json::json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
                    "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 11}]}}}),
                false,
            ),
            (serde_json::json!({"ignoredResourceGroups": ["a/b"]}), false),
            (
                serde_json::json!({"ignoredResources": ["x"], "typo": 1}),
                false,
            ),
        ];
        for (i, (json, ok)) in cases.iter().enumerate() {
            let built = decode_args::<NodeResourcesFitArgs>(NodeResourcesFit::NAME, Some(json))
                .and_then(NodeResourcesFit::new);
            assert_eq!(built.is_ok(), *ok, "case {i}: {:?}", built.err());
        }
    }

    #[test]
    fn broken_linear_interpolates() {
        let f = BrokenLinear::new(&[
            UtilizationShapePoint {
                utilization: 10,
                score: 2,
            },
            UtilizationShapePoint {
                utilization: 50,
                score: 10,
            },
            UtilizationShapePoint {
                utilization: 90,
                score: 0,
            },
        ]);
        let cases = [
            (0, 20),
            (10, 20),
            (30, 60),
            (50, 100),
            (70, 50),
            (90, 0),
            (100, 0),
        ];
        for (p, want) in cases {
            assert_eq!(f.eval(p), want, "utilization {p}");
        }
    }

    #[test]
    fn insufficient_resources_reports_amounts() {
        let node = NodeBuilder::new("n")
            .capacity("1", "1Gi", "10")
            .pod(PodBuilder::new("e").req("cpu", "600m").build())
            .build();
        let pod = PodBuilder::new("p").req("cpu", "500m").build();
        assert_eq!(
            NodeResourcesFit::insufficient_resources(&pod.requests, &node),
            vec![InsufficientResource {
                resource: "cpu".into(),
                requested: 500,
                used: 600,
                capacity: 1000
            }]
        );
    }
}
