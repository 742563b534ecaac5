//! Building plugins by name: the [`Registry`] of factories, typed plugin
//! arguments, and [`ProfileConfig`], which enables and weights plugins for
//! one `schedulerName`.

use std::collections::HashMap;
use std::sync::Arc;

use ketch_core::Client;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Plugin;

/// Why a plugin or profile could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// No factory is registered under this name.
    #[error("unknown plugin {0:?}")]
    Unknown(String),
    /// A factory is already registered under this name.
    #[error("plugin {0:?} is registered twice")]
    Duplicate(String),
    /// The plugin's arguments are malformed or out of range.
    #[error("plugin {plugin}: invalid args: {message}")]
    InvalidArgs {
        /// The plugin.
        plugin: String,
        /// What is wrong, with the field path.
        message: String,
    },
    /// The profile itself is inconsistent.
    #[error("profile {profile:?}: {message}")]
    InvalidProfile {
        /// The profile's scheduler name.
        profile: String,
        /// What is wrong.
        message: String,
    },
}

/// What a plugin factory receives besides its arguments.
#[derive(Clone)]
pub struct PluginContext {
    /// The API client (binders and preemption write through it).
    pub client: Arc<dyn Client>,
}

/// Builds a plugin from its (optional) JSON arguments.
pub type PluginFactory = Arc<
    dyn Fn(Option<&serde_json::Value>, &PluginContext) -> Result<Arc<dyn Plugin>, PluginError>
        + Send
        + Sync,
>;

/// Decodes a plugin's arguments into `T`, defaulting when absent. `T` should
/// deny unknown fields so a typo is an error.
///
/// ```
/// use ketch_scheduler::framework::decode_args;
/// #[derive(Default, serde::Deserialize)]
/// #[serde(deny_unknown_fields, rename_all = "camelCase")]
/// struct Args { hard_weight: i64 }
/// let args: Args = decode_args("InterPodAffinity", Some(&serde_json::json!({"hardWeight": 2}))).unwrap();
/// assert_eq!(args.hard_weight, 2);
/// assert!(decode_args::<Args>("InterPodAffinity", Some(&serde_json::json!({"hardWieght": 2}))).is_err());
/// ```
pub fn decode_args<T: DeserializeOwned + Default>(
    plugin: &str,
    args: Option<&serde_json::Value>,
) -> Result<T, PluginError> {
    match args {
        None => Ok(T::default()),
        Some(v) => serde_path_to_error::deserialize(v).map_err(|e| PluginError::InvalidArgs {
            plugin: plugin.to_string(),
            message: format!("{}: {}", e.path(), e.inner()),
        }),
    }
}

/// Plugin factories by name.
///
/// ```
/// use std::sync::Arc;
/// use ketch_scheduler::framework::{ClusterEvent, Plugin, Registry};
/// struct Noop;
/// impl Plugin for Noop {
///     fn name(&self) -> &'static str { "Noop" }
///     fn events_to_register(&self) -> Vec<ClusterEvent> { vec![] }
/// }
/// let mut registry = Registry::new();
/// registry.register("Noop", Arc::new(|_, _| Ok(Arc::new(Noop) as Arc<dyn Plugin>))).unwrap();
/// assert!(registry.get("Noop").is_some());
/// ```
#[derive(Clone, Default)]
pub struct Registry {
    factories: HashMap<String, PluginFactory>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a factory; fails if the name is taken.
    pub fn register(&mut self, name: &str, factory: PluginFactory) -> Result<(), PluginError> {
        if self.factories.contains_key(name) {
            return Err(PluginError::Duplicate(name.to_string()));
        }
        self.factories.insert(name.to_string(), factory);
        Ok(())
    }

    /// The factory registered under `name`.
    pub fn get(&self, name: &str) -> Option<&PluginFactory> {
        self.factories.get(name)
    }

    /// Builds the plugin `name` with its arguments.
    pub fn build(
        &self,
        name: &str,
        args: Option<&serde_json::Value>,
        ctx: &PluginContext,
    ) -> Result<Arc<dyn Plugin>, PluginError> {
        let factory = self
            .get(name)
            .ok_or_else(|| PluginError::Unknown(name.to_string()))?;
        factory(args, ctx)
    }

    /// Names of every registered plugin.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }
}

/// An extension point, for disabling a plugin at one point only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExtensionPoint {
    /// QueueSort.
    QueueSort,
    /// PreFilter.
    PreFilter,
    /// Filter.
    Filter,
    /// PostFilter.
    PostFilter,
    /// PreScore.
    PreScore,
    /// Score.
    Score,
    /// Reserve.
    Reserve,
    /// Permit.
    Permit,
    /// PreBind.
    PreBind,
    /// Bind.
    Bind,
    /// PostBind.
    PostBind,
}

/// One enabled plugin of a profile: it runs at every extension point it
/// implements (except those disabled), in the order of the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PluginEntry {
    /// Registry name.
    pub name: String,
    /// Weight of its score (ignored if it does not score); at least 1.
    #[serde(default = "default_weight")]
    pub weight: i64,
    /// Arguments, decoded by the plugin's factory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<serde_json::Value>,
}

fn default_weight() -> i64 {
    1
}

impl PluginEntry {
    /// An entry with weight 1 and no arguments.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            weight: 1,
            args: None,
        }
    }

    /// Sets the score weight.
    pub fn weight(mut self, weight: i64) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the arguments.
    pub fn args(mut self, args: serde_json::Value) -> Self {
        self.args = Some(args);
        self
    }
}

/// A plugin disabled at one extension point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisabledPlugin {
    /// The extension point.
    pub point: ExtensionPoint,
    /// Registry name.
    pub name: String,
}

/// A scheduling profile: the plugins that schedule pods whose
/// `spec.schedulerName` is `scheduler_name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileConfig {
    /// Pods with this `spec.schedulerName` use the profile.
    pub scheduler_name: String,
    /// Enabled plugins, in order.
    pub plugins: Vec<PluginEntry>,
    /// Plugins disabled at particular extension points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disabled: Vec<DisabledPlugin>,
    /// Share of nodes to find feasible before scoring (1..=100); `None`: the
    /// adaptive default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_of_nodes_to_score: Option<u32>,
}
