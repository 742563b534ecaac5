//! NodePorts: a pod asking for host ports fits only nodes where no pod holds
//! the same port, protocol and (overlapping) host IP.

use ketch_core::api::Protocol;

use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, NodeInfo, Plugin, PodInfo,
    PreFilterPlugin, PreFilterResult, Snapshot, Status,
};

/// The reason NodePorts rejects a node.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// Filters on host-port conflicts.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodePorts;

impl NodePorts {
    /// The registry name.
    pub const NAME: &'static str = "NodePorts";
}

#[derive(Clone, Debug, Default)]
struct PreFilterState {
    ports: Vec<(String, Protocol, i32)>,
}

fn fits(ports: &[(String, Protocol, i32)], node: &NodeInfo) -> bool {
    ports
        .iter()
        .all(|(ip, proto, port)| !node.port_conflicts(ip, *proto, *port))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(EventResource::AssignedPod, ActionType::DELETE),
            ClusterEvent::new(EventResource::Node, ActionType::ADD),
        ]
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _: &Snapshot,
    ) -> (PreFilterResult, Status) {
        if pod.host_ports.is_empty() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        state.write(PreFilterState {
            ports: pod.host_ports.clone(),
        });
        (PreFilterResult::all_nodes(), Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let ports = match state.read::<PreFilterState>() {
            Some(s) => &s.ports,
            None => &pod.host_ports,
        };
        if fits(ports, node) {
            Status::success()
        } else {
            Status::unschedulable(ERR_REASON)
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
        use Protocol::*;
        let node = || {
            NodeBuilder::new("n")
                .pod(
                    PodBuilder::new("e")
                        .host_port(8080, TCP, "127.0.0.1")
                        .build(),
                )
                .pod(PodBuilder::new("f").host_port(9090, UDP, "").build())
        };
        let cases = [
            (PodBuilder::new("p").build(), true),
            (
                PodBuilder::new("p")
                    .host_port(8080, TCP, "127.0.0.2")
                    .build(),
                true,
            ),
            (
                PodBuilder::new("p")
                    .host_port(8080, UDP, "127.0.0.1")
                    .build(),
                true,
            ),
            (
                PodBuilder::new("p")
                    .host_port(8080, TCP, "127.0.0.1")
                    .build(),
                false,
            ),
            (PodBuilder::new("p").host_port(8080, TCP, "").build(), false),
            (
                PodBuilder::new("p")
                    .host_port(9090, UDP, "10.0.0.1")
                    .build(),
                false,
            ),
            (
                PodBuilder::new("p")
                    .host_port(9090, TCP, "10.0.0.1")
                    .build(),
                true,
            ),
        ];
        for (i, (pod, ok)) in cases.iter().enumerate() {
            let mut state = CycleState::default();
            let (_, pre) = NodePorts.pre_filter(&mut state, pod, &Snapshot::default());
            let s = if pre.is_skip() {
                Status::success()
            } else {
                NodePorts.filter(&state, pod, &node().build())
            };
            assert_eq!(s.is_success(), *ok, "case {i}: {s}");
            if !ok {
                assert_eq!(s.code(), Code::Unschedulable);
                assert_eq!(s.reasons()[0], ERR_REASON);
            }
        }
    }
}
