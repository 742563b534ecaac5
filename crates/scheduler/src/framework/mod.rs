//! The scheduling framework: extension-point traits, [`Status`],
//! [`CycleState`], cluster events, and the node and pod views plugins read.

mod cycle_state;
mod events;
mod interface;
pub mod labels;
mod registry;
mod runtime;
mod status;
mod types;

pub use cycle_state::{CycleState, StateData};
pub use events::{ActionType, ClusterEvent, EventResource};
pub use interface::*;
pub use registry::{
    DisabledPlugin, ExtensionPoint, PluginContext, PluginEntry, PluginError, PluginFactory,
    ProfileConfig, Registry, decode_args,
};
pub use runtime::{
    DEFAULT_PARALLEL_THRESHOLD, Diagnosis, FitError, Framework, MAX_PERMIT_TIMEOUT,
    MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND, MIN_FEASIBLE_NODES_TO_FIND, PodNominator, ScheduleError,
    ScheduleResult, WaitingPod, WaitingPods, num_feasible_nodes_to_find,
};
pub use status::{Code, Status};
pub use types::*;
