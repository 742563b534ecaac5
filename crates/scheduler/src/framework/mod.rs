//! The scheduling framework: extension-point traits, [`Status`],
//! [`CycleState`], cluster events, and the node and pod views plugins read.

mod cycle_state;
mod events;
mod interface;
mod registry;
mod status;
mod types;

pub use cycle_state::{CycleState, StateData};
pub use events::{ActionType, ClusterEvent, EventResource};
pub use interface::*;
pub use registry::{
    DisabledPlugin, ExtensionPoint, PluginContext, PluginEntry, PluginError, PluginFactory,
    ProfileConfig, Registry, decode_args,
};
pub use status::{Code, Status};
pub use types::*;
