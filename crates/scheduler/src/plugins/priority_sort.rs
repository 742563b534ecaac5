//! PrioritySort: orders the active queue by pod priority, highest first, then
//! by the time the pod entered the queue.

use crate::framework::{ClusterEvent, Plugin, QueueSortPlugin, QueuedPodInfo};

/// The QueueSort plugin of the default profile.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrioritySort;

impl PrioritySort {
    /// The registry name.
    pub const NAME: &'static str = "PrioritySort";
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        Vec::new()
    }

    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        let (pa, pb) = (a.pod_info.priority(), b.pod_info.priority());
        pa > pb || (pa == pb && a.enqueue_seq < b.enqueue_seq)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;
    use crate::plugins::testing::PodBuilder;

    fn queued(priority: Option<i32>, seq: u64) -> QueuedPodInfo {
        let mut b = PodBuilder::new("p");
        if let Some(p) = priority {
            b = b.priority(p);
        }
        QueuedPodInfo {
            pod_info: Arc::new(b.build()),
            initial_attempt_seq: seq,
            enqueue_seq: seq,
            attempts: 0,
            unschedulable_plugins: HashSet::new(),
        }
    }

    #[test]
    fn orders_by_priority_then_arrival() {
        let cases = [
            (queued(Some(10), 5), queued(Some(1), 1), true),
            (queued(Some(1), 1), queued(Some(10), 5), false),
            (queued(Some(3), 1), queued(Some(3), 2), true),
            (queued(Some(3), 2), queued(Some(3), 1), false),
            (queued(None, 1), queued(Some(-1), 0), true),
            (queued(Some(3), 2), queued(Some(3), 2), false),
        ];
        for (i, (a, b, want)) in cases.iter().enumerate() {
            assert_eq!(PrioritySort.less(a, b), *want, "case {i}");
        }
    }
}
