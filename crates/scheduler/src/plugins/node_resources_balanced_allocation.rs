//! NodeResourcesBalancedAllocation: prefers nodes whose resource utilization
//! stays balanced across resources (cpu and memory by default) after the pod
//! is placed: score = (1 - standard deviation of the fractions) * 100.

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::node_resources_fit::{ResourceKey, ResourceSpec, default_resources, validate_resources};
use crate::framework::{
    ClusterEvent, CycleState, MAX_NODE_SCORE, NodeInfo, Plugin, PluginError, PodInfo,
    PreScorePlugin, ScorePlugin, Status,
};

/// Arguments of NodeResourcesBalancedAllocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeResourcesBalancedAllocationArgs {
    /// Resources to balance; cpu and memory when empty.
    #[serde(default)]
    pub resources: Vec<ResourceSpec>,
}

#[derive(Clone, Debug, Default)]
struct PreScoreState {
    requests: SmallVec<[i64; 4]>,
}

/// The NodeResourcesBalancedAllocation plugin.
#[derive(Clone, Debug)]
pub struct NodeResourcesBalancedAllocation {
    resources: Vec<ResourceKey>,
}

impl Default for NodeResourcesBalancedAllocation {
    fn default() -> Self {
        Self {
            resources: default_resources()
                .iter()
                .map(|r| ResourceKey::new(&r.name))
                .collect(),
        }
    }
}

impl NodeResourcesBalancedAllocation {
    /// The registry name.
    pub const NAME: &'static str = "NodeResourcesBalancedAllocation";

    /// Builds the plugin from validated arguments.
    pub fn new(args: NodeResourcesBalancedAllocationArgs) -> Result<Self, PluginError> {
        let resources = if args.resources.is_empty() {
            default_resources()
        } else {
            args.resources
        };
        validate_resources(Self::NAME, &resources)?;
        Ok(Self {
            resources: resources
                .iter()
                .map(|r| ResourceKey::new(&r.name))
                .collect(),
        })
    }

    fn requests(&self, pod: &PodInfo) -> SmallVec<[i64; 4]> {
        self.resources
            .iter()
            .map(|k| k.pod_request(pod, true))
            .collect()
    }

    fn score_node(&self, requests: &[i64], node: &NodeInfo) -> i64 {
        let mut fractions: SmallVec<[f64; 4]> = SmallVec::new();
        for (key, &req) in self.resources.iter().zip(requests) {
            let (alloc, requested) = key.allocatable_and_requested(node, req, true);
            if alloc == 0 {
                continue;
            }
            fractions.push((requested as f64 / alloc as f64).min(1.0));
        }
        let std = match fractions.len() {
            0 | 1 => 0.0,
            2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
            n => {
                let mean = fractions.iter().sum::<f64>() / n as f64;
                let var = fractions
                    .iter()
                    .map(|f| (f - mean) * (f - mean))
                    .sum::<f64>()
                    / n as f64;
                var.sqrt()
            }
        };
        ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
    }
}

impl Plugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for NodeResourcesBalancedAllocation {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo]) -> Status {
        let requests = self.requests(pod);
        if requests.iter().all(|r| *r == 0) {
            return Status::skip();
        }
        state.write(PreScoreState { requests });
        Status::success()
    }
}

impl ScorePlugin for NodeResourcesBalancedAllocation {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        match state.read::<PreScoreState>() {
            Some(s) => Ok(self.score_node(&s.requests, node)),
            None => Ok(self.score_node(&self.requests(pod), node)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn score_table() {
        let plugin = NodeResourcesBalancedAllocation::default();
        let cases = [
            // cpu 2/4 = .5, memory 5000/10000 = .5 -> 100
            (
                NodeBuilder::new("n").capacity("4", "10000", "110").build(),
                PodBuilder::new("p")
                    .req("cpu", "2")
                    .req("memory", "5000")
                    .build(),
                100,
            ),
            // cpu 3/4 = .75, memory 2500/10000 = .25 -> std .25 -> 75
            (
                NodeBuilder::new("n")
                    .capacity("4", "10000", "110")
                    .pod(PodBuilder::new("e").req("cpu", "2").build())
                    .build(),
                PodBuilder::new("p")
                    .req("cpu", "1")
                    .req("memory", "2500")
                    .build(),
                75,
            ),
            // over capacity is capped at 1: cpu 1, memory .1 -> std .45 -> 55
            (
                NodeBuilder::new("n").capacity("1", "10000", "110").build(),
                PodBuilder::new("p")
                    .req("cpu", "2")
                    .req("memory", "1000")
                    .build(),
                55,
            ),
        ];
        for (i, (node, pod, want)) in cases.iter().enumerate() {
            let mut state = CycleState::default();
            assert!(plugin.pre_score(&mut state, pod, &[]).is_success());
            assert_eq!(plugin.score(&state, pod, node), Ok(*want), "case {i}");
        }
    }

    #[test]
    fn three_resources_use_the_standard_deviation() {
        let plugin = NodeResourcesBalancedAllocation::new(NodeResourcesBalancedAllocationArgs {
            resources: vec![
                ResourceSpec {
                    name: "cpu".into(),
                    weight: 1,
                },
                ResourceSpec {
                    name: "memory".into(),
                    weight: 1,
                },
                ResourceSpec {
                    name: "example.com/gpu".into(),
                    weight: 1,
                },
            ],
        })
        .expect("valid");
        let node = NodeBuilder::new("n")
            .capacity("4", "10000", "110")
            .alloc("example.com/gpu", "4")
            .build();
        // fractions .5 .5 1 -> mean 2/3, var ((1/6)^2*2 + (1/3)^2)/3 = 1/18 -> std .2357 -> 76
        let pod = PodBuilder::new("p")
            .req("cpu", "2")
            .req("memory", "5000")
            .req("example.com/gpu", "4")
            .build();
        let mut state = CycleState::default();
        assert!(plugin.pre_score(&mut state, &pod, &[]).is_success());
        assert_eq!(plugin.score(&state, &pod, &node), Ok(76));
    }

    #[test]
    fn best_effort_pods_skip_and_bad_args_fail() {
        let mut state = CycleState::default();
        let plugin = NodeResourcesBalancedAllocation::default();
        assert!(
            plugin
                .pre_score(&mut state, &PodBuilder::new("p").build(), &[])
                .is_skip()
        );
        assert!(
            NodeResourcesBalancedAllocation::new(NodeResourcesBalancedAllocationArgs {
                resources: vec![ResourceSpec {
                    name: "cpu".into(),
                    weight: 0
                }],
            })
            .is_err()
        );
    }
}
