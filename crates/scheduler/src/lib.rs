//! The ketch scheduler: a plugin framework with the Kubernetes extension
//! points, a scheduling queue, a node cache and the default plugins.

pub mod cache;
pub mod failure;
pub mod framework;
pub mod metrics;
pub mod plugins;
pub mod queue;
mod scheduler;

pub use scheduler::{DEFAULT_SCHEDULER_NAME, Scheduler, SchedulerBuilder, SchedulerError};
