//! Per-topology-domain counting shared by InterPodAffinity and
//! PodTopologySpread.
//!
//! [`DomainIndex`] gives each value of one topology key (a zone, a hostname)
//! a dense id that never changes (its interned label value id); [`DomainCounts`] keeps a count per id in
//! copy-on-write chunks, so a cycle's state clones the counts in
//! O(domains / 256) and a later change copies one chunk, not the whole list.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::framework::labels::{LabelKey, LabelValue};
use crate::framework::{NodeInfo, Snapshot};

/// A fast, non-cryptographic hasher for label values and small keys (the
/// keys come from the cluster's own objects, and a lookup runs per node in
/// Filter and Score, where SipHash would dominate).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(w);
            self.mix(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(buf));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    fn finish(&self) -> u64 {
        // The multiply only carries entropy upwards: mix it back down
        // (MurmurHash3's finalizer), or names that differ in their last
        // bytes would share buckets.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A `HashMap` with [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// Dense ids for the values of one topology key: the key's interned label
/// values ([`LabelKey`]), so a node's domain is read from
/// [`NodeInfo::labels`] without touching its label map. Ids are only ever
/// added, so counts indexed by them stay valid while values are added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DomainIndex {
    key: LabelKey,
}

impl DomainIndex {
    /// The index of `key`'s values.
    pub(crate) fn new(key: &str) -> Self {
        DomainIndex {
            key: LabelKey::intern(key),
        }
    }

    /// The id of `value`, assigning the next one if it is new.
    pub(crate) fn intern(&self, value: &str) -> u32 {
        domain_id(self.key.intern_value(value))
    }

    /// The domain of `node`: `None` when it lacks the key.
    pub(crate) fn of(&self, node: &NodeInfo) -> Option<u32> {
        node.labels().get(self.key).map(domain_id)
    }

    /// The topology key (for tests comparing with a recount).
    #[cfg(test)]
    pub(crate) fn key_name(&self) -> Arc<str> {
        self.key.name()
    }

    /// The value of domain `d` (for tests comparing with a recount).
    #[cfg(test)]
    pub(crate) fn value(&self, d: u32) -> Option<Arc<str>> {
        self.key
            .value_name(crate::framework::labels::LabelValue::from_index(d as usize))
    }
}

fn domain_id(value: LabelValue) -> u32 {
    value.index() as u32
}

/// Positions where `current` differs from `counted` (a node changed or
/// moved), or that `counted` does not cover yet, in increasing order.
/// Compares runs of 64 generations at once, so a cycle where one node
/// changed costs little more than a memory comparison of the list.
pub(crate) fn changed_positions<'a>(
    counted: &'a [u64],
    current: &'a [u64],
) -> impl Iterator<Item = usize> + 'a {
    const RUN: usize = 64;
    current
        .chunks(RUN)
        .enumerate()
        .filter(move |(r, run)| {
            let start = r * RUN;
            counted.get(start..start + run.len()) != Some(*run)
        })
        .flat_map(move |(r, run)| {
            let start = r * RUN;
            (start..start + run.len()).filter(move |&i| counted.get(i) != Some(&current[i]))
        })
}

/// One contribution per node position, kept across cycles and recounted
/// only where a node's generation moved (or a node was added or removed).
///
/// `contribute` works out what a node adds to its owner's counts and
/// `apply` adds (`sign` 1) or takes back (`sign` -1) such a contribution.
#[derive(Debug)]
pub(crate) struct NodeLedger<C> {
    generations: Vec<u64>,
    contributions: Vec<C>,
}

impl<C> Default for NodeLedger<C> {
    fn default() -> Self {
        Self {
            generations: Vec::new(),
            contributions: Vec::new(),
        }
    }
}

impl<C> NodeLedger<C> {
    /// Brings `owner`'s counts up to date with `snapshot`.
    pub(crate) fn refresh<S>(
        &mut self,
        owner: &mut S,
        snapshot: &Snapshot,
        mut contribute: impl FnMut(&mut S, &NodeInfo) -> C,
        mut apply: impl FnMut(&mut S, &C, i64),
    ) {
        let generations = snapshot.node_generations();
        let nodes = snapshot.nodes();
        while self.generations.len() > generations.len() {
            self.generations.pop();
            if let Some(old) = self.contributions.pop() {
                apply(owner, &old, -1);
            }
        }
        let changed: Vec<usize> = changed_positions(&self.generations, generations).collect();
        for i in changed {
            let contribution = contribute(owner, &nodes[i]);
            apply(owner, &contribution, 1);
            if i < self.generations.len() {
                self.generations[i] = generations[i];
                let old = std::mem::replace(&mut self.contributions[i], contribution);
                apply(owner, &old, -1);
            } else {
                self.generations.push(generations[i]);
                self.contributions.push(contribution);
            }
        }
    }
}

const CHUNK: usize = 256;

/// A count per domain id, in copy-on-write chunks of 256.
#[derive(Clone, Debug, Default)]
pub(crate) struct DomainCounts {
    chunks: Vec<Arc<[i64; CHUNK]>>,
}

impl DomainCounts {
    /// The count of domain `d` (0 if never counted).
    pub(crate) fn get(&self, d: u32) -> i64 {
        let d = d as usize;
        self.chunks.get(d / CHUNK).map_or(0, |c| c[d % CHUNK])
    }

    /// Adds `delta` to domain `d`.
    pub(crate) fn add(&mut self, d: u32, delta: i64) {
        let d = d as usize;
        while self.chunks.len() <= d / CHUNK {
            self.chunks.push(Arc::new([0; CHUNK]));
        }
        Arc::make_mut(&mut self.chunks[d / CHUNK])[d % CHUNK] += delta;
    }

    /// Domain ids with a non-zero count, with the count (for tests
    /// comparing with a recount).
    #[cfg(test)]
    pub(crate) fn non_zero(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.chunks.iter().enumerate().flat_map(|(i, c)| {
            c.iter()
                .enumerate()
                .filter(|(_, n)| **n != 0)
                .map(move |(j, n)| ((i * CHUNK + j) as u32, *n))
        })
    }
}

/// Topology keys seen by a plugin, each with its [`DomainIndex`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Topologies {
    indexes: Vec<DomainIndex>,
    by_key: FastMap<String, u32>,
}

impl Topologies {
    /// The id of topology key `key`, assigning one if new.
    pub(crate) fn id(&mut self, key: &str) -> u32 {
        if let Some(&t) = self.by_key.get(key) {
            return t;
        }
        let t = self.indexes.len() as u32;
        self.indexes.push(DomainIndex::new(key));
        self.by_key.insert(key.to_string(), t);
        t
    }

    /// The domain index of topology `t`.
    pub(crate) fn index(&self, t: u32) -> DomainIndex {
        self.indexes[t as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_copied_on_write_per_chunk() {
        let mut a = DomainCounts::default();
        a.add(3, 2);
        a.add(700, 1);
        let b = a.clone();
        a.add(3, -2);
        a.add(1000, 5);
        assert_eq!((b.get(3), b.get(700), b.get(1000)), (2, 1, 0));
        assert_eq!((a.get(3), a.get(700), a.get(1000)), (0, 1, 5));
        assert_eq!(a.non_zero().collect::<Vec<_>>(), [(700, 1), (1000, 5)]);
        assert_eq!(a.get(u32::MAX), 0);
    }

    #[test]
    fn changed_positions_finds_every_difference() {
        let counted: Vec<u64> = (0..200).collect();
        let mut current = counted.clone();
        assert_eq!(changed_positions(&counted, &current).count(), 0);
        current[3] = 1000;
        current[130] = 1001;
        current.extend([7, 8]);
        assert_eq!(
            changed_positions(&counted, &current).collect::<Vec<_>>(),
            [3, 130, 200, 201]
        );
        assert_eq!(changed_positions(&[], &[5, 6]).collect::<Vec<_>>(), [0, 1]);
    }

    #[test]
    fn domain_ids_are_dense_and_stable() {
        let mut t = Topologies::default();
        let zone = t.id("domains-test/zone");
        assert_eq!(t.id("domains-test/host"), 1);
        assert_eq!(t.id("domains-test/zone"), zone);
        let index = t.index(zone);
        assert_eq!(index.value(0), None);
        assert_eq!(index.intern("a"), 0);
        assert_eq!(index.intern("b"), 1);
        assert_eq!(index.intern("a"), 0);
        assert_eq!(index.value(1).as_deref(), Some("b"));
        assert_eq!(&*index.key_name(), "domains-test/zone");
    }

    #[test]
    fn fast_hasher_spreads_similar_names() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FastHasher>::default();
        let mut low: Vec<u64> = (0..1000)
            .map(|i| build.hash_one(format!("node-{i}")) & 1023)
            .collect();
        low.sort_unstable();
        low.dedup();
        assert!(low.len() > 500, "{} distinct buckets of 1024", low.len());
    }
}
