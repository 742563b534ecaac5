//! The default plugins, following kube-scheduler's semantics, and the
//! default [`Registry`] and [`ProfileConfig`].
//!
//! ```
//! use ketch_scheduler::plugins::{default_profile, default_registry};
//! let registry = default_registry();
//! let profile = default_profile("default-scheduler");
//! assert!(profile.plugins.iter().all(|p| registry.get(&p.name).is_some()));
//! ```
//!
//! | plugin | points |
//! |---|---|
//! | PrioritySort | QueueSort |
//! | NodeUnschedulable | Filter |
//! | NodeName | Filter |
//! | TaintToleration | Filter, PreScore, Score |
//! | NodeAffinity | PreFilter (narrows to pinned names), Filter, PreScore, Score |
//! | NodePorts | PreFilter, Filter |
//! | NodeResourcesFit | PreFilter, Filter, PreScore, Score |
//! | PodTopologySpread | PreFilter (+ extensions), Filter, PreScore, Score |
//! | InterPodAffinity | PreFilter (+ extensions), Filter, PreScore, Score |
//! | DefaultPreemption | PostFilter |
//! | NodeResourcesBalancedAllocation | PreScore, Score |
//! | ImageLocality | PreFilter (counts nodes), Score |
//! | DefaultBinder | Bind |

use std::sync::Arc;

use crate::framework::{
    PluginContext, PluginEntry, PluginError, PluginFactory, ProfileConfig, Registry, decode_args,
};

pub mod default_binder;
pub mod default_preemption;
mod domains;
pub mod helper;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_balanced_allocation;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod priority_sort;
pub mod taint_toleration;

#[cfg(test)]
pub(crate) mod testing;

pub use default_binder::DefaultBinder;
pub use default_preemption::DefaultPreemption;
pub use image_locality::ImageLocality;
pub use inter_pod_affinity::{InterPodAffinity, InterPodAffinityArgs};
pub use node_affinity::{NodeAffinity, NodeAffinityArgs};
pub use node_name::NodeName;
pub use node_ports::NodePorts;
pub use node_resources_balanced_allocation::{
    NodeResourcesBalancedAllocation, NodeResourcesBalancedAllocationArgs,
};
pub use node_resources_fit::{NodeResourcesFit, NodeResourcesFitArgs};
pub use node_unschedulable::NodeUnschedulable;
pub use pod_topology_spread::PodTopologySpread;
pub use priority_sort::PrioritySort;
pub use taint_toleration::TaintToleration;

/// A factory for a plugin without arguments; arguments given anyway are an error.
fn no_args<P, F>(name: &'static str, make: F) -> PluginFactory
where
    P: crate::framework::Plugin,
    F: Fn(&PluginContext) -> P + Send + Sync + 'static,
{
    Arc::new(move |args, ctx| {
        if let Some(v) = args
            && !(v.is_null() || v.as_object().is_some_and(|o| o.is_empty()))
        {
            return Err(PluginError::InvalidArgs {
                plugin: name.to_string(),
                message: "the plugin takes no arguments".into(),
            });
        }
        Ok(Arc::new(make(ctx)) as Arc<dyn crate::framework::Plugin>)
    })
}

/// Every default plugin under its kube-scheduler name, with typed,
/// validated arguments.
pub fn default_registry() -> Registry {
    let mut r = Registry::new();
    let entries: Vec<(&'static str, PluginFactory)> = vec![
        (
            PrioritySort::NAME,
            no_args(PrioritySort::NAME, |_| PrioritySort),
        ),
        (
            NodeUnschedulable::NAME,
            no_args(NodeUnschedulable::NAME, |_| NodeUnschedulable::default()),
        ),
        (NodeName::NAME, no_args(NodeName::NAME, |_| NodeName)),
        (
            TaintToleration::NAME,
            no_args(TaintToleration::NAME, |_| TaintToleration),
        ),
        (
            NodeAffinity::NAME,
            Arc::new(|args, _| {
                let a: NodeAffinityArgs = decode_args(NodeAffinity::NAME, args)?;
                Ok(Arc::new(NodeAffinity::new(a)?) as Arc<dyn crate::framework::Plugin>)
            }),
        ),
        (
            NodeResourcesFit::NAME,
            Arc::new(|args, _| {
                let a: NodeResourcesFitArgs = decode_args(NodeResourcesFit::NAME, args)?;
                Ok(Arc::new(NodeResourcesFit::new(a)?) as Arc<dyn crate::framework::Plugin>)
            }),
        ),
        (NodePorts::NAME, no_args(NodePorts::NAME, |_| NodePorts)),
        (
            PodTopologySpread::NAME,
            no_args(PodTopologySpread::NAME, |_| PodTopologySpread::default()),
        ),
        (
            InterPodAffinity::NAME,
            Arc::new(|args, ctx| {
                let a: InterPodAffinityArgs = decode_args(InterPodAffinity::NAME, args)?;
                Ok(Arc::new(InterPodAffinity::new(a, ctx.client.clone())?)
                    as Arc<dyn crate::framework::Plugin>)
            }),
        ),
        (
            DefaultPreemption::NAME,
            no_args(DefaultPreemption::NAME, |_| DefaultPreemption::default()),
        ),
        (
            NodeResourcesBalancedAllocation::NAME,
            Arc::new(|args, _| {
                let a: NodeResourcesBalancedAllocationArgs =
                    decode_args(NodeResourcesBalancedAllocation::NAME, args)?;
                Ok(Arc::new(NodeResourcesBalancedAllocation::new(a)?)
                    as Arc<dyn crate::framework::Plugin>)
            }),
        ),
        (
            ImageLocality::NAME,
            no_args(ImageLocality::NAME, |_| ImageLocality),
        ),
        (
            DefaultBinder::NAME,
            no_args(DefaultBinder::NAME, |ctx| {
                DefaultBinder::new(ctx.client.clone())
            }),
        ),
    ];
    for (name, factory) in entries {
        if let Err(e) = r.register(name, factory) {
            // Names above are distinct constants; a duplicate is a programming error.
            tracing::error!("default registry: {e}");
        }
    }
    r
}

/// kube-scheduler's default profile for `scheduler_name`: the default plugins
/// in kube's order with its score weights (TaintToleration 3, NodeAffinity 2,
/// NodeResourcesFit 1, ...).
pub fn default_profile(scheduler_name: &str) -> ProfileConfig {
    let plugins = vec![
        PluginEntry::new(PrioritySort::NAME),
        PluginEntry::new(NodeUnschedulable::NAME),
        PluginEntry::new(NodeName::NAME),
        PluginEntry::new(TaintToleration::NAME).weight(3),
        PluginEntry::new(NodeAffinity::NAME).weight(2),
        PluginEntry::new(NodePorts::NAME),
        PluginEntry::new(NodeResourcesFit::NAME).weight(1),
        PluginEntry::new(PodTopologySpread::NAME).weight(2),
        PluginEntry::new(InterPodAffinity::NAME).weight(2),
        PluginEntry::new(DefaultPreemption::NAME),
        PluginEntry::new(NodeResourcesBalancedAllocation::NAME).weight(1),
        PluginEntry::new(ImageLocality::NAME).weight(1),
        PluginEntry::new(DefaultBinder::NAME),
    ];
    ProfileConfig {
        scheduler_name: scheduler_name.to_string(),
        plugins,
        disabled: Vec::new(),
        percentage_of_nodes_to_score: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::RecordingClient;

    fn ctx() -> PluginContext {
        PluginContext {
            client: Arc::new(RecordingClient::default()),
        }
    }

    #[test]
    fn every_profile_plugin_builds_with_its_name() {
        let registry = default_registry();
        let profile = default_profile("default-scheduler");
        assert_eq!(profile.scheduler_name, "default-scheduler");
        for entry in &profile.plugins {
            let p = registry
                .build(&entry.name, entry.args.as_ref(), &ctx())
                .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
            assert_eq!(p.name(), entry.name);
        }
    }

    #[test]
    fn registry_holds_every_default_plugin() {
        let registry = default_registry();
        let mut names: Vec<&str> = registry.names().collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "DefaultBinder",
                "DefaultPreemption",
                "ImageLocality",
                "InterPodAffinity",
                "NodeAffinity",
                "NodeName",
                "NodePorts",
                "NodeResourcesBalancedAllocation",
                "NodeResourcesFit",
                "NodeUnschedulable",
                "PodTopologySpread",
                "PrioritySort",
                "TaintToleration",
            ]
        );
    }

    #[test]
    fn registered_events_are_the_ones_that_can_help() {
        use crate::framework::{ActionType as A, ClusterEvent, EventResource as R};
        let registry = default_registry();
        let events = |name: &str| -> Vec<ClusterEvent> {
            registry
                .build(name, None, &ctx())
                .map(|p| p.events_to_register())
                .unwrap_or_default()
        };
        let happened = |r, a| ClusterEvent::new(r, a);
        let helps = |name: &str, e: ClusterEvent| events(name).iter().any(|x| x.matches(&e));
        let cases = [
            (
                "NodeResourcesFit",
                happened(R::AssignedPod, A::DELETE),
                true,
            ),
            ("NodeResourcesFit", happened(R::Node, A::ADD), true),
            (
                "NodeResourcesFit",
                happened(R::Node, A::UPDATE_NODE_ALLOCATABLE),
                true,
            ),
            ("NodeResourcesFit", happened(R::AssignedPod, A::ADD), false),
            (
                "NodeResourcesFit",
                happened(R::Node, A::UPDATE_NODE_LABEL),
                false,
            ),
            (
                "TaintToleration",
                happened(R::Node, A::UPDATE_NODE_TAINT),
                true,
            ),
            (
                "TaintToleration",
                happened(R::AssignedPod, A::DELETE),
                false,
            ),
            (
                "NodeUnschedulable",
                happened(R::Node, A::UPDATE_NODE_TAINT),
                true,
            ),
            (
                "NodeAffinity",
                happened(R::Node, A::UPDATE_NODE_LABEL),
                true,
            ),
            ("NodeAffinity", happened(R::AssignedPod, A::DELETE), false),
            ("NodeName", happened(R::Node, A::ADD), true),
            ("NodeName", happened(R::Node, A::UPDATE_NODE_LABEL), false),
            ("NodePorts", happened(R::AssignedPod, A::DELETE), true),
            ("InterPodAffinity", happened(R::AssignedPod, A::ADD), true),
            (
                "InterPodAffinity",
                happened(R::AssignedPod, A::DELETE),
                true,
            ),
            (
                "InterPodAffinity",
                happened(R::Node, A::UPDATE_NODE_ALLOCATABLE),
                false,
            ),
            (
                "PodTopologySpread",
                happened(R::AssignedPod, A::DELETE),
                true,
            ),
            (
                "PodTopologySpread",
                happened(R::Node, A::UPDATE_NODE_LABEL),
                true,
            ),
            ("PrioritySort", happened(R::Node, A::ADD), false),
            ("DefaultBinder", happened(R::Node, A::ADD), false),
        ];
        for (name, event, want) in cases {
            assert_eq!(helps(name, event), want, "{name} {event:?}");
        }
    }

    #[test]
    fn default_weights_match_kube_scheduler() {
        let profile = default_profile("s");
        let weight = |n: &str| {
            profile
                .plugins
                .iter()
                .find(|p| p.name == n)
                .map(|p| p.weight)
        };
        assert_eq!(weight(TaintToleration::NAME), Some(3));
        assert_eq!(weight(NodeAffinity::NAME), Some(2));
        assert_eq!(weight(NodeResourcesFit::NAME), Some(1));
        assert_eq!(weight(NodeResourcesBalancedAllocation::NAME), Some(1));
        assert_eq!(weight(ImageLocality::NAME), Some(1));
        assert_eq!(weight(InterPodAffinity::NAME), Some(2));
        assert_eq!(weight(PodTopologySpread::NAME), Some(2));
    }

    #[test]
    fn arguments_are_validated_by_factories() {
        let registry = default_registry();
        assert!(
            registry
                .build(NodeName::NAME, Some(&serde_json::json!({"x": 1})), &ctx())
                .is_err()
        );
        assert!(
            registry
                .build(NodeName::NAME, Some(&serde_json::json!({})), &ctx())
                .is_ok()
        );
        assert!(
            registry
                .build(
                    NodeResourcesFit::NAME,
                    Some(&serde_json::json!({"scoringStrategy": {"type": "MostAllocated"}})),
                    &ctx()
                )
                .is_ok()
        );
        assert!(matches!(
            registry.build(
                NodeResourcesFit::NAME,
                Some(&serde_json::json!({"scoringStrategy": {"resources": [{"name": "cpu", "weight": -1}]}})),
                &ctx()
            ),
            Err(PluginError::InvalidArgs { .. })
        ));
    }
}
