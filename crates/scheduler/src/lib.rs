//! The ketch scheduler: a plugin framework with the Kubernetes extension
//! points, a scheduling queue, a node cache and the default plugins.

pub mod framework;
pub mod plugins;
