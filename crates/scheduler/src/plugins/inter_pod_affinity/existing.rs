//! The (anti-)affinity terms of existing pods, counted per topology domain
//! and kept across cycles.
//!
//! Existing pods whose compiled terms are identical (interned by the term
//! cache) form one group; per group and term, the index counts the group's
//! pods per domain of the term's topology key. A node's contribution is
//! recomputed only when its generation moved, so a cycle costs one scan of
//! the snapshot's generations plus, per group, matching its terms against
//! the incoming pod once — instead of matching every existing pod.

use std::collections::BTreeMap;
use std::sync::Arc;

use ketch_core::api::Pod;
use smallvec::SmallVec;

use super::{AffinityTerm, ByAddress, PodTerms, TermCache};
use crate::framework::{NodeInfo, Snapshot};
use crate::plugins::domains::{DomainCounts, NodeLedger, Topologies};

/// What a term of an existing pod does to an incoming pod it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Keeps the incoming pod out of the domain (Filter).
    RequiredAnti,
    /// Attracts with the hard pod affinity weight (Score).
    RequiredAffinity,
    /// Attracts with the term's weight (Score).
    PreferredAffinity,
    /// Repels with the term's weight (Score).
    PreferredAnti,
}

/// One term of a group with its per-domain pod counts.
#[derive(Clone, Debug)]
struct GroupTerm {
    role: Role,
    term: AffinityTerm,
    topology: u32,
    counts: DomainCounts,
}

/// Existing pods sharing one interned set of compiled terms.
#[derive(Debug)]
struct Group {
    /// Keeps the interned terms (and so the group's key address) alive.
    terms: Arc<PodTerms>,
    list: Vec<GroupTerm>,
    /// Pods of the group in the indexed nodes.
    pods: i64,
}

impl Group {
    fn new(terms: Arc<PodTerms>, topologies: &mut Topologies) -> Self {
        let mut list = Vec::new();
        let roles = [
            (Role::RequiredAnti, &terms.required_anti_affinity),
            (Role::RequiredAffinity, &terms.required_affinity),
            (Role::PreferredAffinity, &terms.preferred_affinity),
            (Role::PreferredAnti, &terms.preferred_anti_affinity),
        ];
        for (role, ts) in roles {
            for t in ts {
                list.push(GroupTerm {
                    role,
                    term: t.clone(),
                    topology: topologies.id(&t.topology_key),
                    counts: DomainCounts::default(),
                });
            }
        }
        Self {
            terms,
            list,
            pods: 0,
        }
    }
}

/// What one node adds to the index.
#[derive(Clone, Debug, Default)]
struct NodeContribution {
    /// The group of each pod with terms.
    pods: SmallVec<[u32; 2]>,
    /// (group, term, domain): one pod counted in the domain.
    terms: SmallVec<[(u32, u16, u32); 2]>,
}

/// A term of existing pods that matches the incoming pod, with the number
/// of such pods per domain of its topology.
#[derive(Clone, Debug)]
pub(super) struct MatchedTerm {
    /// Topology id (see [`Topologies`]).
    pub(super) topology: u32,
    /// Score weight (1 for required anti-affinity).
    pub(super) weight: i64,
    /// Matching pods per domain.
    pub(super) counts: DomainCounts,
}

/// Existing pods' terms per domain, maintained across cycles.
#[derive(Debug, Default)]
pub(super) struct ExistingIndex {
    groups: Vec<Option<Group>>,
    free: Vec<u32>,
    by_terms: ByAddress<u32>,
    ledger: NodeLedger<NodeContribution>,
}

impl ExistingIndex {
    /// Brings the index up to date with `snapshot`: only nodes whose
    /// generation moved (or that moved to another position) are recounted.
    pub(super) fn refresh(
        &mut self,
        snapshot: &Snapshot,
        cache: &mut TermCache,
        topologies: &mut Topologies,
    ) {
        let mut ledger = std::mem::take(&mut self.ledger);
        ledger.refresh(
            self,
            snapshot,
            |index, info| index.contribution(info, cache, topologies),
            |index, contribution, sign| index.apply(contribution, sign),
        );
        self.ledger = ledger;
    }

    fn group_of(&mut self, terms: Arc<PodTerms>, topologies: &mut Topologies) -> u32 {
        let key = Arc::as_ptr(&terms) as usize;
        if let Some(&g) = self.by_terms.get(&key) {
            return g;
        }
        let group = Group::new(terms, topologies);
        let g = match self.free.pop() {
            Some(g) => {
                self.groups[g as usize] = Some(group);
                g
            }
            None => {
                self.groups.push(Some(group));
                (self.groups.len() - 1) as u32
            }
        };
        self.by_terms.insert(key, g);
        g
    }

    fn contribution(
        &mut self,
        info: &NodeInfo,
        cache: &mut TermCache,
        topologies: &mut Topologies,
    ) -> NodeContribution {
        let mut out = NodeContribution::default();
        if info.node().is_none() {
            return out;
        }
        for p in &info.pods_with_affinity {
            let terms = cache.get(&p.pod);
            if terms.is_empty() {
                continue;
            }
            let g = self.group_of(terms, topologies);
            out.pods.push(g);
            let Some(group) = self.groups[g as usize].as_ref() else {
                continue;
            };
            for (j, gt) in group.list.iter().enumerate() {
                if let Some(d) = topologies.index(gt.topology).of(info) {
                    out.terms.push((g, j as u16, d));
                }
            }
        }
        out
    }

    fn apply(&mut self, c: &NodeContribution, sign: i64) {
        for &(g, j, d) in &c.terms {
            if let Some(group) = self.groups[g as usize].as_mut() {
                group.list[j as usize].counts.add(d, sign);
            }
        }
        for &g in &c.pods {
            let Some(group) = self.groups[g as usize].as_mut() else {
                continue;
            };
            group.pods += sign;
            if group.pods == 0 {
                let key = Arc::as_ptr(&group.terms) as usize;
                self.by_terms.remove(&key);
                self.groups[g as usize] = None;
                self.free.push(g);
            }
        }
    }

    /// Existing pods' required anti-affinity terms that match `pod`.
    pub(super) fn anti_affinity_matching(
        &self,
        pod: &Pod,
        ns_labels: Option<&BTreeMap<String, String>>,
    ) -> Vec<MatchedTerm> {
        self.matching(pod, ns_labels, |role, _| {
            (role == Role::RequiredAnti).then_some(1)
        })
    }

    /// Existing pods' terms that score `pod`: required affinity with
    /// `hard_weight` (when positive), preferred affinity and anti-affinity
    /// with their weights (negative for anti-affinity).
    pub(super) fn scoring_matching(
        &self,
        pod: &Pod,
        ns_labels: Option<&BTreeMap<String, String>>,
        hard_weight: i64,
    ) -> Vec<MatchedTerm> {
        self.matching(pod, ns_labels, |role, t| match role {
            Role::RequiredAnti => None,
            Role::RequiredAffinity => (hard_weight > 0).then_some(hard_weight),
            Role::PreferredAffinity => Some(t.weight),
            Role::PreferredAnti => Some(-t.weight),
        })
    }

    fn matching(
        &self,
        pod: &Pod,
        ns_labels: Option<&BTreeMap<String, String>>,
        weight: impl Fn(Role, &AffinityTerm) -> Option<i64>,
    ) -> Vec<MatchedTerm> {
        let mut out = Vec::new();
        for group in self.groups.iter().flatten() {
            for gt in &group.list {
                if let Some(w) = weight(gt.role, &gt.term)
                    && gt.term.matches(pod, ns_labels)
                {
                    out.push(MatchedTerm {
                        topology: gt.topology,
                        weight: w,
                        counts: gt.counts.clone(),
                    });
                }
            }
        }
        out
    }

    /// Live groups (for tests).
    #[cfg(test)]
    fn group_count(&self) -> usize {
        self.groups.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, affinity_term};

    const HOST: &str = "kubernetes.io/hostname";
    const ZONE: &str = "zone";

    /// The index's per-(topology key, value) weighted sums of the terms that
    /// match `pod`: scoring terms, or required anti-affinity terms.
    fn indexed(
        index: &ExistingIndex,
        topologies: &Topologies,
        pod: &Pod,
        scoring: bool,
    ) -> HashMap<(String, String), i64> {
        let matched = if scoring {
            index.scoring_matching(pod, None, 1)
        } else {
            index.anti_affinity_matching(pod, None)
        };
        let mut out = HashMap::new();
        for m in matched {
            let values = topologies.index(m.topology);
            let key = values.key_name().to_string();
            for (d, n) in m.counts.non_zero() {
                let value = values
                    .value(d)
                    .expect("every counted domain has a value")
                    .to_string();
                *out.entry((key.clone(), value)).or_insert(0) += n * m.weight;
            }
        }
        out.retain(|_, n| *n != 0);
        out
    }

    /// The same sums recounted from scratch over every pod of every node.
    fn recount(
        nodes: &[Arc<NodeInfo>],
        pod: &Pod,
        scoring: bool,
    ) -> HashMap<(String, String), i64> {
        let mut out = HashMap::new();
        for info in nodes {
            let Some(node) = info.node() else { continue };
            for p in &info.pods {
                let terms = PodTerms::new(&p.pod);
                let mut list: Vec<(&AffinityTerm, i64)> = Vec::new();
                if scoring {
                    list.extend(terms.required_affinity.iter().map(|t| (t, 1)));
                    list.extend(terms.preferred_affinity.iter().map(|t| (t, t.weight)));
                    list.extend(terms.preferred_anti_affinity.iter().map(|t| (t, -t.weight)));
                } else {
                    list.extend(terms.required_anti_affinity.iter().map(|t| (t, 1)));
                }
                for (t, w) in list {
                    if let Some(v) = node.metadata.labels.get(&t.topology_key)
                        && t.matches(pod, None)
                    {
                        *out.entry((t.topology_key.clone(), v.clone())).or_insert(0) += w;
                    }
                }
            }
        }
        out.retain(|_, n| *n != 0);
        out
    }

    /// A small deterministic generator (xorshift), so the property test
    /// needs no extra dependency and replays the same cases.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn random_pod(rng: &mut Rng, name: &str) -> Arc<crate::framework::PodInfo> {
        let colors = ["green", "blue"];
        let keys = [HOST, ZONE];
        let mut b = PodBuilder::new(name).label("color", colors[rng.below(2) as usize]);
        let color = colors[rng.below(2) as usize];
        let key = keys[rng.below(2) as usize];
        b = match rng.below(5) {
            0 => b.pod_anti_affinity(affinity_term("color", color, key)),
            1 => b.pod_affinity(affinity_term("color", color, key)),
            2 => b.preferred_pod_affinity(
                1 + rng.below(9) as i32,
                affinity_term("color", color, key),
            ),
            3 => b.preferred_pod_anti_affinity(
                1 + rng.below(9) as i32,
                affinity_term("color", color, key),
            ),
            _ => b,
        };
        Arc::new(b.build())
    }

    /// Incremental counts equal a from-scratch recount after every random
    /// change: pods added and removed, nodes added, removed and relabelled.
    #[test]
    fn incremental_counts_match_a_recount() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut index = ExistingIndex::default();
        let mut cache = TermCache::default();
        let mut topologies = Topologies::default();
        let node = |i: u64, zone: u64| {
            NodeBuilder::new(&format!("n{i}"))
                .label(HOST, &format!("n{i}"))
                .label(ZONE, &format!("z{zone}"))
                .build()
        };
        let mut nodes: Vec<crate::framework::NodeInfo> = (0..6).map(|i| node(i, i % 3)).collect();
        let mut next = 6;
        let probes: Vec<Pod> = ["green", "blue"]
            .iter()
            .map(|c| (*PodBuilder::new("probe").label("color", c).build().pod).clone())
            .collect();
        for step in 0..400 {
            match rng.below(10) {
                0..=4 => {
                    let i = rng.below(nodes.len() as u64) as usize;
                    nodes[i].add_pod(random_pod(&mut rng, &format!("p{step}")));
                }
                5..=6 => {
                    let i = rng.below(nodes.len() as u64) as usize;
                    if let Some(key) = nodes[i].pods.first().map(|p| p.key.clone()) {
                        nodes[i].remove_pod(&key);
                    }
                }
                7 if nodes.len() > 2 => {
                    let i = rng.below(nodes.len() as u64) as usize;
                    nodes.swap_remove(i);
                }
                8 => {
                    nodes.push(node(next, rng.below(4)));
                    next += 1;
                }
                _ => {
                    let i = rng.below(nodes.len() as u64) as usize;
                    let mut n = (**nodes[i].node().expect("built with a node")).clone();
                    n.metadata
                        .labels
                        .insert(ZONE.into(), format!("z{}", rng.below(4)));
                    nodes[i].set_node(Arc::new(n)).expect("valid node");
                }
            }
            let snapshot = Snapshot::from_nodes(nodes.clone());
            index.refresh(&snapshot, &mut cache, &mut topologies);
            for probe in &probes {
                for scoring in [false, true] {
                    assert_eq!(
                        indexed(&index, &topologies, probe, scoring),
                        recount(snapshot.nodes(), probe, scoring),
                        "step {step}, scoring {scoring}"
                    );
                }
            }
        }
        // Emptying the cluster frees every group.
        index.refresh(
            &Snapshot::from_nodes(Vec::new()),
            &mut cache,
            &mut topologies,
        );
        assert_eq!(index.group_count(), 0);
    }
}
