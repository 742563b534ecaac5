//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    Status,
};

/// The reason NodeName rejects a node.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

/// Filters out every node but the one the pod names.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeName;

impl NodeName {
    /// The registry name.
    pub const NAME: &'static str = "NodeName";
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::new(EventResource::Node, ActionType::ADD)]
    }

    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match pod.pod.spec.node_name.as_deref() {
            Some(name) if !name.is_empty() && name != node.name() => {
                Status::unresolvable(ERR_REASON)
            }
            _ => Status::success(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder};

    #[test]
    fn filter_table() {
        let node = NodeBuilder::new("n1").build();
        let cases = [
            (PodBuilder::new("p").build(), Code::Success),
            (PodBuilder::new("p").node_name("n1").build(), Code::Success),
            (
                PodBuilder::new("p").node_name("n2").build(),
                Code::UnschedulableAndUnresolvable,
            ),
        ];
        for (i, (pod, want)) in cases.iter().enumerate() {
            let s = NodeName.filter(&CycleState::default(), pod, &node);
            assert_eq!(s.code(), *want, "case {i}");
            if !s.is_success() {
                assert_eq!(s.reasons()[0], ERR_REASON);
            }
        }
    }
}
