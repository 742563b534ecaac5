//! Cluster events a rejected pod can wait for: plugins register the events
//! that may make a pod they rejected schedulable, and the queue moves such pods
//! only when one of those events happens.

use std::ops::BitOr;

/// The kind of object an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventResource {
    /// A pod already assigned to a node (its removal frees resources).
    AssignedPod,
    /// A pod waiting to be scheduled (e.g. a gang member appearing).
    UnscheduledPod,
    /// A node.
    Node,
    /// A namespace (namespace selectors of affinity terms).
    Namespace,
    /// Any resource (used for "everything", e.g. the periodic flush).
    Wildcard,
}

/// What happened, as a set of bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActionType(u32);

impl ActionType {
    /// The object was added.
    pub const ADD: Self = Self(1);
    /// The object was deleted.
    pub const DELETE: Self = Self(1 << 1);
    /// A node's allocatable resources changed.
    pub const UPDATE_NODE_ALLOCATABLE: Self = Self(1 << 2);
    /// A node's labels changed.
    pub const UPDATE_NODE_LABEL: Self = Self(1 << 3);
    /// A node's taints or unschedulable flag changed.
    pub const UPDATE_NODE_TAINT: Self = Self(1 << 4);
    /// A node's conditions changed.
    pub const UPDATE_NODE_CONDITION: Self = Self(1 << 5);
    /// A node's images changed.
    pub const UPDATE_NODE_IMAGES: Self = Self(1 << 6);
    /// A pod's labels changed.
    pub const UPDATE_POD_LABEL: Self = Self(1 << 7);
    /// A pod's resource requests went down.
    pub const UPDATE_POD_SCALE_DOWN: Self = Self(1 << 8);
    /// A pod's tolerations or other scheduling-relevant fields changed.
    pub const UPDATE_POD_OTHER: Self = Self(1 << 9);
    /// Any update.
    pub const UPDATE: Self = Self(
        Self::UPDATE_NODE_ALLOCATABLE.0
            | Self::UPDATE_NODE_LABEL.0
            | Self::UPDATE_NODE_TAINT.0
            | Self::UPDATE_NODE_CONDITION.0
            | Self::UPDATE_NODE_IMAGES.0
            | Self::UPDATE_POD_LABEL.0
            | Self::UPDATE_POD_SCALE_DOWN.0
            | Self::UPDATE_POD_OTHER.0,
    );
    /// Anything.
    pub const ALL: Self = Self(Self::ADD.0 | Self::DELETE.0 | Self::UPDATE.0);

    /// True if the two sets share a bit.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for ActionType {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// An event in the cluster, or an event a plugin registers interest in.
///
/// ```
/// use ketch_scheduler::framework::{ActionType, ClusterEvent, EventResource};
/// let registered = ClusterEvent::new(EventResource::Node, ActionType::ADD | ActionType::UPDATE_NODE_TAINT);
/// let happened = ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_TAINT);
/// assert!(registered.matches(&happened));
/// assert!(!registered.matches(&ClusterEvent::new(EventResource::AssignedPod, ActionType::DELETE)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    /// What the event is about.
    pub resource: EventResource,
    /// What happened.
    pub action: ActionType,
}

impl ClusterEvent {
    /// An event.
    pub const fn new(resource: EventResource, action: ActionType) -> Self {
        Self { resource, action }
    }

    /// Every event; what a plugin that cannot tell registers.
    pub const WILDCARD: Self = Self::new(EventResource::Wildcard, ActionType::ALL);

    /// True if this registered interest covers the event `happened`.
    pub fn matches(&self, happened: &ClusterEvent) -> bool {
        (self.resource == EventResource::Wildcard
            || happened.resource == EventResource::Wildcard
            || self.resource == happened.resource)
            && self.action.intersects(happened.action)
    }
}
