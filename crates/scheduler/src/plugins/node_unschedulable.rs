//! NodeUnschedulable: cordoned nodes (`spec.unschedulable`) take only pods
//! that tolerate `node.kubernetes.io/unschedulable:NoSchedule`.

use ketch_core::api::{Taint, TaintEffect};

use super::helper::tolerations_tolerate;
use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    Status,
};

/// The taint key a cordoned node behaves as if it carried.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// The reason a cordoned node is rejected.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// The reason a node without its object is rejected.
pub const ERR_REASON_UNKNOWN_CONDITION: &str = "node(s) had unknown conditions";

/// Rejects cordoned nodes.
#[derive(Clone, Debug)]
pub struct NodeUnschedulable {
    taint: Taint,
}

impl Default for NodeUnschedulable {
    fn default() -> Self {
        Self {
            taint: Taint {
                key: TAINT_NODE_UNSCHEDULABLE.to_string(),
                value: None,
                effect: TaintEffect::NoSchedule,
                time_added: None,
            },
        }
    }
}

impl NodeUnschedulable {
    /// The registry name.
    pub const NAME: &'static str = "NodeUnschedulable";
}

impl Plugin for NodeUnschedulable {
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
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if node.node().is_none() {
            return Status::unresolvable(ERR_REASON_UNKNOWN_CONDITION);
        }
        // The inline flag, not the node object: this runs on every node of
        // every cycle.
        if !node.flags().unschedulable {
            return Status::success();
        }
        if tolerations_tolerate(&pod.pod.spec.tolerations, &self.taint) {
            return Status::success();
        }
        Status::unresolvable(ERR_REASON_UNSCHEDULABLE)
    }
}

#[cfg(test)]
mod tests {
    use ketch_core::api::{Toleration, TolerationOperator};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn filter_table() {
        let tolerating = Toleration {
            key: Some(TAINT_NODE_UNSCHEDULABLE.into()),
            operator: Some(TolerationOperator::Exists),
            effect: Some(TaintEffect::NoSchedule),
            ..Toleration::default()
        };
        let wrong_effect = Toleration {
            effect: Some(TaintEffect::NoExecute),
            ..tolerating.clone()
        };
        let cases = [
            (
                NodeBuilder::new("n").build(),
                PodBuilder::new("p").build(),
                Code::Success,
            ),
            (
                NodeBuilder::new("n").unschedulable().build(),
                PodBuilder::new("p").build(),
                Code::UnschedulableAndUnresolvable,
            ),
            (
                NodeBuilder::new("n").unschedulable().build(),
                PodBuilder::new("p").toleration(tolerating).build(),
                Code::Success,
            ),
            (
                NodeBuilder::new("n").unschedulable().build(),
                PodBuilder::new("p").toleration(wrong_effect).build(),
                Code::UnschedulableAndUnresolvable,
            ),
            (
                NodeInfo::default(),
                PodBuilder::new("p").build(),
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (i, (node, pod, want)) in cases.iter().enumerate() {
            let s = NodeUnschedulable::default().filter(&CycleState::default(), pod, node);
            assert_eq!(s.code(), *want, "case {i}");
        }
        let s = NodeUnschedulable::default().filter(
            &CycleState::default(),
            &PodBuilder::new("p").build(),
            &NodeBuilder::new("n").unschedulable().build(),
        );
        assert_eq!(s.reasons()[0], ERR_REASON_UNSCHEDULABLE);
    }
}
