//! TaintToleration: nodes with `NoSchedule` or `NoExecute` taints the pod does
//! not tolerate are filtered out; untolerated `PreferNoSchedule` taints lower
//! a node's score.

use ketch_core::api::{TaintEffect, Toleration};

use super::helper::{find_untolerated_taint, normalize_to_max, tolerations_tolerate};
use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, NodeScore, Plugin,
    PodInfo, PreScorePlugin, ScorePlugin, Status,
};

/// Filters on hard taints and scores on soft ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct TaintToleration;

impl TaintToleration {
    /// The registry name.
    pub const NAME: &'static str = "TaintToleration";
}

/// The pod's tolerations that can tolerate `PreferNoSchedule` taints.
#[derive(Clone, Debug, Default)]
struct PreScoreState {
    tolerations: Vec<Toleration>,
}

const HARD_EFFECTS: [TaintEffect; 2] = [TaintEffect::NoSchedule, TaintEffect::NoExecute];

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD | ActionType::UPDATE_NODE_TAINT,
            ),
            ClusterEvent::new(EventResource::UnscheduledPod, ActionType::UPDATE_POD_OTHER),
        ]
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

impl FilterPlugin for TaintToleration {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("invalid nodeInfo");
        };
        if !node.flags().hard_taints {
            return Status::success();
        }
        match find_untolerated_taint(&n.spec.taints, &pod.pod.spec.tolerations, &HARD_EFFECTS) {
            None => Status::success(),
            Some(t) => Status::unresolvable(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                t.key,
                t.value.as_deref().unwrap_or("")
            )),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[&NodeInfo]) -> Status {
        let tolerations = pod
            .pod
            .spec
            .tolerations
            .iter()
            .filter(|t| t.effect.is_none_or(|e| e == TaintEffect::PreferNoSchedule))
            .cloned()
            .collect();
        state.write(PreScoreState { tolerations });
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(n) = node.node() else {
            return Err(Status::error("invalid nodeInfo"));
        };
        if !node.flags().soft_taints {
            return Ok(0);
        }
        let fallback;
        let tolerations: &[Toleration] = match state.read::<PreScoreState>() {
            Some(s) => &s.tolerations,
            None => {
                fallback = &pod.pod.spec.tolerations;
                fallback
            }
        };
        let count = n
            .spec
            .taints
            .iter()
            .filter(|t| {
                t.effect == TaintEffect::PreferNoSchedule && !tolerations_tolerate(tolerations, t)
            })
            .count();
        Ok(count as i64)
    }

    fn normalize_scores(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Status {
        normalize_to_max(true, scores);
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use ketch_core::api::TolerationOperator;

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder};

    fn tol(key: &str, value: &str, effect: Option<TaintEffect>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(TolerationOperator::Equal),
            value: Some(value.into()),
            effect,
            toleration_seconds: None,
        }
    }

    #[test]
    fn filter_table() {
        use TaintEffect::*;
        let cases = [
            (
                NodeBuilder::new("n").build(),
                PodBuilder::new("p").build(),
                None,
            ),
            (
                NodeBuilder::new("n")
                    .taint("dedicated", "gpu", NoSchedule)
                    .build(),
                PodBuilder::new("p").build(),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                NodeBuilder::new("n")
                    .taint("dedicated", "gpu", NoExecute)
                    .build(),
                PodBuilder::new("p")
                    .toleration(tol("dedicated", "gpu", Some(NoSchedule)))
                    .build(),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                NodeBuilder::new("n")
                    .taint("dedicated", "gpu", NoSchedule)
                    .build(),
                PodBuilder::new("p")
                    .toleration(tol("dedicated", "gpu", None))
                    .build(),
                None,
            ),
            (
                NodeBuilder::new("n")
                    .taint("soft", "x", PreferNoSchedule)
                    .build(),
                PodBuilder::new("p").build(),
                None,
            ),
        ];
        for (i, (node, pod, want)) in cases.iter().enumerate() {
            let s = TaintToleration.filter(&CycleState::default(), pod, node);
            match want {
                None => assert!(s.is_success(), "case {i}: {s}"),
                Some(reason) => {
                    assert_eq!(s.code(), Code::UnschedulableAndUnresolvable, "case {i}");
                    assert_eq!(s.reasons()[0], *reason, "case {i}");
                }
            }
        }
    }

    #[test]
    fn score_counts_untolerated_prefer_no_schedule_and_reverses() {
        use TaintEffect::*;
        let nodes = [
            NodeBuilder::new("clean").build(),
            NodeBuilder::new("one")
                .taint("a", "1", PreferNoSchedule)
                .taint("hard", "1", NoSchedule)
                .build(),
            NodeBuilder::new("two")
                .taint("a", "1", PreferNoSchedule)
                .taint("b", "1", PreferNoSchedule)
                .build(),
            NodeBuilder::new("tolerated")
                .taint("c", "1", PreferNoSchedule)
                .build(),
        ];
        let pod = PodBuilder::new("p")
            .toleration(tol("c", "1", Some(PreferNoSchedule)))
            .toleration(tol("b", "1", Some(NoSchedule)))
            .build();
        let mut state = CycleState::default();
        assert!(
            TaintToleration
                .pre_score(&mut state, &pod, &[])
                .is_success()
        );
        let mut scores: Vec<NodeScore> = nodes
            .iter()
            .enumerate()
            .map(|(index, n)| NodeScore {
                index,
                score: TaintToleration.score(&state, &pod, n).expect("score"),
            })
            .collect();
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [0, 1, 2, 0]
        );
        TaintToleration.normalize_scores(&state, &pod, &mut scores);
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [100, 50, 0, 100]
        );
    }
}
