//! [`CycleState`]: typed data a plugin writes in a pre-phase (PreFilter,
//! PreScore) and reads in Filter or Score of the same scheduling cycle.

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// Data kept in a [`CycleState`]; any `Clone + Send + Sync` type qualifies.
/// Preemption clones the whole state to simulate removing victims.
pub trait StateData: Any + Send + Sync {
    /// A boxed copy.
    fn clone_data(&self) -> Box<dyn StateData>;
}

impl<T: Any + Send + Sync + Clone> StateData for T {
    fn clone_data(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
}

/// Per-cycle typed state, keyed by type: each plugin stores its own type.
///
/// ```
/// use ketch_scheduler::framework::CycleState;
/// #[derive(Clone)]
/// struct PreFilterFit { cpu: i64 }
/// let mut state = CycleState::default();
/// state.write(PreFilterFit { cpu: 100 });
/// assert_eq!(state.read::<PreFilterFit>().map(|s| s.cpu), Some(100));
/// ```
#[derive(Default)]
pub struct CycleState {
    data: HashMap<TypeId, Box<dyn StateData>>,
    skip_filter: Vec<&'static str>,
    skip_score: Vec<&'static str>,
}

impl CycleState {
    /// Stores `value`, replacing any earlier value of the same type.
    pub fn write<T: StateData>(&mut self, value: T) {
        self.data.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// Reads the value of type `T`, if written.
    pub fn read<T: StateData>(&self) -> Option<&T> {
        self.data
            .get(&TypeId::of::<T>())
            .and_then(|b| (&**b as &dyn Any).downcast_ref::<T>())
    }

    /// Mutable access to the value of type `T`, if written.
    pub fn read_mut<T: StateData>(&mut self) -> Option<&mut T> {
        self.data
            .get_mut(&TypeId::of::<T>())
            .and_then(|b| (&mut **b as &mut dyn Any).downcast_mut::<T>())
    }

    /// Marks a Filter plugin as skipped for this cycle (its PreFilter said Skip).
    pub fn skip_filter_plugin(&mut self, plugin: &'static str) {
        self.skip_filter.push(plugin);
    }

    /// True if the Filter plugin is skipped this cycle.
    pub fn is_filter_skipped(&self, plugin: &'static str) -> bool {
        self.skip_filter.contains(&plugin)
    }

    /// Marks a Score plugin as skipped for this cycle (its PreScore said Skip).
    pub fn skip_score_plugin(&mut self, plugin: &'static str) {
        self.skip_score.push(plugin);
    }

    /// True if the Score plugin is skipped this cycle.
    pub fn is_score_skipped(&self, plugin: &'static str) -> bool {
        self.skip_score.contains(&plugin)
    }
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        Self {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_data()))
                .collect(),
            skip_filter: self.skip_filter.clone(),
            skip_score: self.skip_score.clone(),
        }
    }
}
