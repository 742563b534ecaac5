//! Node labels as small integer ids.
//!
//! Plugins that work per topology domain (PodTopologySpread,
//! InterPodAffinity) look up a label of every candidate node in every
//! cycle. Searching each node's label map and hashing the value costs
//! several cache misses per node. Instead, [`NodeInfo`](super::NodeInfo)
//! interns its node's labels once, when the node object is set, and a
//! plugin resolves its topology key to a [`LabelKey`] once per cycle: the
//! per-node lookup is then a scan of a few integers held inline in the
//! `NodeInfo`.
//!
//! Values get dense ids per key (the first value seen under a key is 0, the
//! next 1, ...), so a plugin can index its per-domain counts by
//! [`LabelValue`] directly. Ids are process-wide and never reused: the
//! table grows with the distinct label keys and values nodes have carried.
//!
//! ```
//! use ketch_scheduler::framework::labels::{LabelKey, NodeLabels};
//! use std::collections::BTreeMap;
//!
//! let zone = LabelKey::intern("topology.kubernetes.io/zone");
//! let labels = BTreeMap::from([
//!     ("topology.kubernetes.io/zone".to_string(), "moon-1".to_string()),
//!     ("kubernetes.io/hostname".to_string(), "node-1".to_string()),
//! ]);
//! let node = NodeLabels::of(&labels);
//! let value = node.get(zone).unwrap();
//! assert_eq!(zone.find_value("moon-1"), Some(value));
//! assert_eq!(zone.value_name(value).as_deref(), Some("moon-1"));
//! assert_eq!(node.get(LabelKey::intern("no-such-key")), None);
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;
use smallvec::SmallVec;

/// An interned label key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelKey(u32);

/// An interned label value, dense per key: usable as an index into a
/// per-domain table of that key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelValue(u32);

impl LabelValue {
    /// The id as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The id at `index` (the inverse of [`LabelValue::index`]).
    pub fn from_index(index: usize) -> Self {
        LabelValue(index as u32)
    }
}

#[derive(Default)]
struct Interner {
    keys: HashMap<Arc<str>, LabelKey>,
    key_names: Vec<Arc<str>>,
    /// Per key, its values.
    values: Vec<KeyValues>,
}

/// The values of one key: value -> id, and the names by id.
#[derive(Default)]
struct KeyValues {
    ids: HashMap<Arc<str>, LabelValue>,
    names: Vec<Arc<str>>,
}

static INTERNER: LazyLock<RwLock<Interner>> = LazyLock::new(RwLock::default);

impl LabelKey {
    /// The id of `key`, assigning one if new.
    pub fn intern(key: &str) -> LabelKey {
        if let Some(&k) = INTERNER.read().keys.get(key) {
            return k;
        }
        let mut table = INTERNER.write();
        if let Some(&k) = table.keys.get(key) {
            return k;
        }
        let k = LabelKey(table.key_names.len() as u32);
        let name: Arc<str> = Arc::from(key);
        table.keys.insert(name.clone(), k);
        table.key_names.push(name);
        table.values.push(Default::default());
        k
    }

    /// The id of `key` if any node or plugin has used it.
    pub fn find(key: &str) -> Option<LabelKey> {
        INTERNER.read().keys.get(key).copied()
    }

    /// The key's name.
    pub fn name(self) -> Arc<str> {
        INTERNER.read().key_names[self.0 as usize].clone()
    }

    /// The id of `value` under this key, assigning the next one if new.
    pub fn intern_value(self, value: &str) -> LabelValue {
        if let Some(v) = self.find_value(value) {
            return v;
        }
        let mut table = INTERNER.write();
        let values = &mut table.values[self.0 as usize];
        if let Some(&v) = values.ids.get(value) {
            return v;
        }
        let v = LabelValue(values.names.len() as u32);
        let name: Arc<str> = Arc::from(value);
        values.ids.insert(name.clone(), v);
        values.names.push(name);
        v
    }

    /// The id of `value` under this key, if it was ever interned.
    pub fn find_value(self, value: &str) -> Option<LabelValue> {
        INTERNER.read().values[self.0 as usize]
            .ids
            .get(value)
            .copied()
    }

    /// The name of value `value` of this key, `None` for an id never
    /// assigned.
    pub fn value_name(self, value: LabelValue) -> Option<Arc<str>> {
        INTERNER.read().values[self.0 as usize]
            .names
            .get(value.index())
            .cloned()
    }
}

/// A node's labels as (key, value) ids, sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeLabels {
    ids: SmallVec<[(LabelKey, LabelValue); 4]>,
}

impl NodeLabels {
    /// Interns `labels`.
    pub fn of(labels: &BTreeMap<String, String>) -> Self {
        let mut ids: SmallVec<[(LabelKey, LabelValue); 4]> = labels
            .iter()
            .map(|(k, v)| {
                let key = LabelKey::intern(k);
                (key, key.intern_value(v))
            })
            .collect();
        ids.sort_unstable_by_key(|(k, _)| *k);
        NodeLabels { ids }
    }

    /// The value of `key`, if the node has that label.
    pub fn get(&self, key: LabelKey) -> Option<LabelValue> {
        self.ids.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// True when the node has every one of `keys`.
    pub fn has_all(&self, keys: impl IntoIterator<Item = LabelKey>) -> bool {
        keys.into_iter().all(|k| self.get(k).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_dense_per_key_and_stable() {
        let a = LabelKey::intern("labels-test/a");
        let b = LabelKey::intern("labels-test/b");
        assert_ne!(a, b);
        assert_eq!(LabelKey::intern("labels-test/a"), a);
        assert_eq!(LabelKey::find("labels-test/a"), Some(a));
        assert_eq!(LabelKey::find("labels-test/never"), None);
        assert_eq!(&*a.name(), "labels-test/a");
        let x = a.intern_value("x");
        let y = a.intern_value("y");
        assert_eq!((x.index(), y.index()), (0, 1));
        assert_eq!(b.intern_value("y").index(), 0, "ids are per key");
        assert_eq!(a.intern_value("x"), x);
        assert_eq!(a.find_value("y"), Some(y));
        assert_eq!(a.find_value("z"), None);
        assert_eq!(a.value_name(y).as_deref(), Some("y"));
        assert_eq!(a.value_name(LabelValue::from_index(99)), None);
    }

    #[test]
    fn node_labels_find_each_key() {
        let labels: BTreeMap<String, String> = (0..6)
            .map(|i| (format!("labels-test/k{i}"), format!("v{i}")))
            .collect();
        let node = NodeLabels::of(&labels);
        for (k, v) in &labels {
            let key = LabelKey::intern(k);
            let value = node.get(key).and_then(|id| key.value_name(id));
            assert_eq!(value.as_deref(), Some(v.as_str()));
        }
        let keys = ["labels-test/k1", "labels-test/k4"].map(LabelKey::intern);
        assert!(node.has_all(keys));
        assert!(!node.has_all([LabelKey::intern("labels-test/other")]));
        assert_eq!(NodeLabels::default().get(keys[0]), None);
    }
}
