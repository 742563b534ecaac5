//! [`CycleState`]: typed data a plugin writes in a pre-phase (PreFilter,
//! PreScore) and reads in Filter or Score of the same scheduling cycle.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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

/// Hashes a [`TypeId`], which is already a hash, by passing its bits
/// through: state is read on every Filter and Score call, so the lookup must
/// be cheaper than SipHash.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= (n as u64) ^ ((n >> 64) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type TypeMap = HashMap<TypeId, Box<dyn StateData>, BuildHasherDefault<TypeIdHasher>>;

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
    data: TypeMap,
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

#[cfg(test)]
mod tests {
    use super::CycleState;

    #[derive(Clone, Debug, PartialEq)]
    struct A(u8);
    #[derive(Clone, Debug, PartialEq)]
    struct B(u8);
    #[derive(Clone, Debug, PartialEq)]
    struct C(String);

    #[test]
    fn values_of_distinct_types_are_kept_apart_and_cloned() {
        let mut s = CycleState::default();
        s.write(A(1));
        s.write(B(2));
        s.write(C("c".into()));
        s.write(A(3));
        let copy = s.clone();
        if let Some(b) = s.read_mut::<B>() {
            b.0 = 9;
        }
        assert_eq!(s.read::<A>(), Some(&A(3)));
        assert_eq!(s.read::<B>(), Some(&B(9)));
        assert_eq!(copy.read::<B>(), Some(&B(2)));
        assert_eq!(copy.read::<C>(), Some(&C("c".into())));
        assert_eq!(s.read::<u32>(), None);
    }
}
