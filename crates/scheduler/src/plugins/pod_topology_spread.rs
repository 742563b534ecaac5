//! PodTopologySpread: spreads matching pods evenly over topology domains.
//! `DoNotSchedule` constraints filter (a node fails when placing the pod
//! there would make its domain exceed `maxSkew` over the least loaded
//! domain, with `minDomains` respected); `ScheduleAnyway` constraints score.
//! Only nodes matching the pod's required node affinity and `nodeSelector`
//! count as domains (`nodeAffinityPolicy: Honor`, the default); taints are
//! ignored (`nodeTaintsPolicy: Ignore`, the default).
//!
//! PreFilter produces per-domain counts from a cache kept across cycles: per
//! node, the domain and the number of matching pods are recomputed only when
//! the node's generation moved, so a cycle costs one pass over the
//! snapshot's generation list instead of matching every pod in the cluster.
//! Domains are the interned ids of the nodes' topology label values
//! ([`NodeInfo::labels`]), so Filter and Score index the counts by a
//! node's label id instead of searching its label map.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ketch_core::api::{Pod, TopologySpreadConstraint, UnsatisfiableConstraintAction};
use smallvec::SmallVec;

use super::domains::changed_positions;
use super::helper::{CompiledLabelSelector, RequiredNodeAffinity};
use crate::framework::labels::{LabelKey, LabelValue, NodeLabels};
use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, MAX_NODE_SCORE, NodeInfo,
    NodeScore, Plugin, PodInfo, PreFilterExtensions, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin, Snapshot, Status,
};

/// The reason a node fails a constraint's skew.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
/// The reason a node lacks a constraint's topology label.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// The hostname label; scoring counts such domains per node.
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";

/// One compiled constraint.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Constraint {
    max_skew: i64,
    key: LabelKey,
    /// The key is the hostname label: one domain per node.
    per_node: bool,
    min_domains: i64,
    selector: CompiledLabelSelector,
}

fn compile_constraints(pod: &Pod, action: UnsatisfiableConstraintAction) -> Vec<Constraint> {
    pod.spec
        .topology_spread_constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == action)
        .map(|c: &TopologySpreadConstraint| {
            let mut selector = CompiledLabelSelector::new(c.label_selector.as_ref());
            for key in &c.match_label_keys {
                if let Some(v) = pod.metadata.labels.get(key) {
                    selector.and_equals(key, v);
                }
            }
            Constraint {
                max_skew: i64::from(c.max_skew),
                key: LabelKey::intern(&c.topology_key),
                per_node: c.topology_key == LABEL_HOSTNAME,
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                selector,
            }
        })
        .collect()
}

fn has_all_keys(labels: &NodeLabels, constraints: &[Constraint]) -> bool {
    labels.has_all(constraints.iter().map(|c| c.key))
}

/// Pods on the node in `namespace`, not terminating, matching `selector`.
fn count_matching(pods: &[Arc<PodInfo>], selector: &CompiledLabelSelector, namespace: &str) -> i64 {
    pods.iter()
        .filter(|p| {
            let m = &p.pod.metadata;
            m.deletion_timestamp.is_none()
                && m.namespace() == namespace
                && selector.matches(&m.labels)
        })
        .count() as i64
}

/// Per-domain counts of one constraint, indexed by the topology label's
/// value id.
#[derive(Clone, Debug, Default)]
struct DomainCounts {
    counts: Vec<i64>,
    present: Vec<bool>,
    num_domains: i64,
    min: i64,
}

impl DomainCounts {
    fn recompute_min(&mut self) {
        self.min = self
            .counts
            .iter()
            .zip(&self.present)
            .filter(|(_, p)| **p)
            .map(|(c, _)| *c)
            .min()
            .unwrap_or(0);
    }

    fn count(&self, value: LabelValue) -> i64 {
        self.counts.get(value.index()).copied().unwrap_or(0)
    }
}

/// What one node contributes to one cache entry.
#[derive(Clone, Debug)]
struct Slot {
    /// Per constraint: (domain value index, matching pods); `None`: the
    /// node is not a domain member.
    contrib: Option<SmallVec<[(u32, i64); 2]>>,
}

/// Per-domain counts for one (namespace, constraints, node affinity)
/// signature, maintained across cycles.
#[derive(Debug, Default)]
struct Counter {
    nodes_per_domain: Vec<Vec<u32>>,
    matches: Vec<Vec<i64>>,
    /// Per position: the generation counted there.
    generations: Vec<u64>,
    slots: Vec<Slot>,
    last_used: u64,
}

impl Counter {
    fn new(n: usize) -> Self {
        Self {
            nodes_per_domain: vec![Vec::new(); n],
            matches: vec![Vec::new(); n],
            generations: Vec::new(),
            slots: Vec::new(),
            last_used: 0,
        }
    }

    fn apply(&mut self, contrib: &Option<SmallVec<[(u32, i64); 2]>>, sign: i64) {
        if let Some(c) = contrib {
            for (i, (d, m)) in c.iter().enumerate() {
                let d = *d as usize;
                self.matches[i][d] += sign * m;
                if sign > 0 {
                    self.nodes_per_domain[i][d] += 1;
                } else {
                    self.nodes_per_domain[i][d] -= 1;
                }
            }
        }
    }

    /// Makes room for domain `value` of constraint `i`; returns its index.
    fn domain(&mut self, i: usize, value: LabelValue) -> u32 {
        let d = value.index();
        if self.matches[i].len() <= d {
            self.nodes_per_domain[i].resize(d + 1, 0);
            self.matches[i].resize(d + 1, 0);
        }
        d as u32
    }

    fn contribution(
        &mut self,
        info: &NodeInfo,
        constraints: &[Constraint],
        namespace: &str,
        required: &RequiredNodeAffinity,
    ) -> Option<SmallVec<[(u32, i64); 2]>> {
        let node = info.node()?;
        if !required.matches(node) || !has_all_keys(info.labels(), constraints) {
            return None;
        }
        let mut out = SmallVec::new();
        for (i, c) in constraints.iter().enumerate() {
            let value = info.labels().get(c.key)?;
            let d = self.domain(i, value);
            out.push((d, count_matching(&info.pods, &c.selector, namespace)));
        }
        Some(out)
    }

    /// Recounts the nodes whose generation (`generations[i]` for
    /// `nodes[i]`) differs from the one last counted at their position.
    fn refresh<N: Borrow<NodeInfo>>(
        &mut self,
        nodes: &[N],
        generations: &[u64],
        constraints: &[Constraint],
        namespace: &str,
        required: &RequiredNodeAffinity,
    ) {
        let len = nodes.len().min(generations.len());
        while self.slots.len() > len {
            self.generations.pop();
            if let Some(slot) = self.slots.pop() {
                self.apply(&slot.contrib, -1);
            }
        }
        let changed: Vec<usize> =
            changed_positions(&self.generations, &generations[..len]).collect();
        for i in changed {
            let contrib = self.contribution(nodes[i].borrow(), constraints, namespace, required);
            self.apply(&contrib, 1);
            let slot = Slot { contrib };
            if i < self.slots.len() {
                self.generations[i] = generations[i];
                let old = std::mem::replace(&mut self.slots[i], slot);
                self.apply(&old.contrib, -1);
            } else {
                self.generations.push(generations[i]);
                self.slots.push(slot);
            }
        }
    }

    fn counts(&self, i: usize) -> DomainCounts {
        let present: Vec<bool> = self.nodes_per_domain[i].iter().map(|n| *n > 0).collect();
        let mut d = DomainCounts {
            counts: self.matches[i].clone(),
            num_domains: present.iter().filter(|p| **p).count() as i64,
            present,
            min: 0,
        };
        d.recompute_min();
        d
    }
}

/// Counters by signature, evicting the least recently used beyond a bound.
#[derive(Debug, Default)]
struct CounterCache {
    entries: HashMap<String, Counter>,
    clock: u64,
}

const MAX_COUNTERS: usize = 64;

impl CounterCache {
    fn counts<N: Borrow<NodeInfo>>(
        &mut self,
        nodes: &[N],
        generations: &[u64],
        constraints: &[Constraint],
        namespace: &str,
        required: &RequiredNodeAffinity,
    ) -> Vec<DomainCounts> {
        let signature = format!("{namespace}\u{0}{constraints:?}\u{0}{required:?}");
        self.clock += 1;
        if !self.entries.contains_key(&signature) && self.entries.len() >= MAX_COUNTERS {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
        let counter = self
            .entries
            .entry(signature)
            .or_insert_with(|| Counter::new(constraints.len()));
        counter.last_used = self.clock;
        counter.refresh(nodes, generations, constraints, namespace, required);
        (0..constraints.len()).map(|i| counter.counts(i)).collect()
    }
}

#[derive(Clone, Debug)]
struct PreFilterState {
    namespace: String,
    constraints: Arc<Vec<Constraint>>,
    self_match: SmallVec<[bool; 2]>,
    required: Arc<RequiredNodeAffinity>,
    counts: Vec<DomainCounts>,
}

impl PreFilterState {
    fn update_with_pod(&mut self, other: &Pod, node: &NodeInfo, delta: i64) {
        let Some(n) = node.node() else {
            return;
        };
        let labels = node.labels();
        if other.metadata.namespace() != self.namespace
            || !has_all_keys(labels, &self.constraints)
            || !self.required.matches(n)
        {
            return;
        }
        for (c, d) in self.constraints.iter().zip(self.counts.iter_mut()) {
            if !c.selector.matches(&other.metadata.labels) {
                continue;
            }
            let Some(v) = labels.get(c.key) else {
                continue;
            };
            if let Some(count) = d.counts.get_mut(v.index()) {
                *count += delta;
                d.recompute_min();
            }
        }
    }
}

#[derive(Clone, Debug)]
struct PreScoreState {
    constraints: Arc<Vec<Constraint>>,
    counts: Vec<DomainCounts>,
    weights: SmallVec<[f64; 2]>,
    namespace: String,
}

/// Soft-constraint counts computed in PreFilter, where the snapshot is known.
#[derive(Clone, Debug)]
struct SoftCounts {
    constraints: Arc<Vec<Constraint>>,
    counts: Vec<DomainCounts>,
}

/// The PodTopologySpread plugin.
#[derive(Debug, Default)]
pub struct PodTopologySpread {
    cache: Mutex<CounterCache>,
}

impl PodTopologySpread {
    /// The registry name.
    pub const NAME: &'static str = "PodTopologySpread";

    fn cache(&self) -> std::sync::MutexGuard<'_, CounterCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![
            ClusterEvent::new(
                EventResource::AssignedPod,
                ActionType::ADD | ActionType::DELETE | ActionType::UPDATE_POD_LABEL,
            ),
            ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD
                    | ActionType::DELETE
                    | ActionType::UPDATE_NODE_LABEL
                    | ActionType::UPDATE_NODE_TAINT,
            ),
        ]
    }

    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        if pod.pod.spec.topology_spread_constraints.is_empty() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        let namespace = pod.pod.metadata.namespace();
        let required = RequiredNodeAffinity::from_pod(&pod.pod);
        let soft = compile_constraints(&pod.pod, UnsatisfiableConstraintAction::ScheduleAnyway);
        if !soft.is_empty() {
            let counts = self.cache().counts(
                snapshot.nodes(),
                snapshot.node_generations(),
                &soft,
                namespace,
                &required,
            );
            state.write(SoftCounts {
                constraints: Arc::new(soft),
                counts,
            });
        }
        let hard = compile_constraints(&pod.pod, UnsatisfiableConstraintAction::DoNotSchedule);
        if hard.is_empty() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        let counts = self.cache().counts(
            snapshot.nodes(),
            snapshot.node_generations(),
            &hard,
            namespace,
            &required,
        );
        let self_match = hard
            .iter()
            .map(|c| c.selector.matches(&pod.pod.metadata.labels))
            .collect();
        state.write(PreFilterState {
            namespace: namespace.to_string(),
            constraints: Arc::new(hard),
            self_match,
            required: Arc::new(required),
            counts,
        });
        (PreFilterResult::all_nodes(), Status::success())
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

impl PreFilterExtensions for PodTopologySpread {
    fn add_pod(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        pod_to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>() {
            s.update_with_pod(&pod_to_add.pod, node, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        pod_to_remove: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        if let Some(s) = state.read_mut::<PreFilterState>() {
            s.update_with_pod(&pod_to_remove.pod, node, -1);
        }
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>() else {
            return Status::error("PodTopologySpread: PreFilter state missing");
        };
        if node.node().is_none() {
            return Status::error("node not found");
        }
        let labels = node.labels();
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(c.key) else {
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let d = &s.counts[i];
            let min = if d.num_domains < c.min_domains {
                0
            } else {
                d.min
            };
            let self_match = i64::from(s.self_match[i]);
            if d.count(value) + self_match - min > c.max_skew {
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[&NodeInfo]) -> Status {
        if nodes.is_empty() {
            return Status::skip();
        }
        let (constraints, counts) = match state.read::<SoftCounts>() {
            Some(s) => (s.constraints.clone(), s.counts.clone()),
            None => {
                let soft =
                    compile_constraints(&pod.pod, UnsatisfiableConstraintAction::ScheduleAnyway);
                if soft.is_empty() {
                    return Status::skip();
                }
                let required = RequiredNodeAffinity::from_pod(&pod.pod);
                let generations: Vec<u64> = nodes.iter().map(|n| n.generation).collect();
                let counts = self.cache().counts(
                    nodes,
                    &generations,
                    &soft,
                    pod.pod.metadata.namespace(),
                    &required,
                );
                (Arc::new(soft), counts)
            }
        };
        // Normalizing weight: log(number of domains among the candidates + 2).
        let mut weights = SmallVec::new();
        let scored: Vec<&NodeInfo> = nodes
            .iter()
            .copied()
            .filter(|n| n.node().is_some() && has_all_keys(n.labels(), &constraints))
            .collect();
        for c in constraints.iter() {
            let size = if c.per_node {
                scored.len()
            } else {
                let mut seen: Vec<LabelValue> = scored
                    .iter()
                    .filter_map(|n| n.labels().get(c.key))
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                seen.len()
            };
            weights.push(((size + 2) as f64).ln());
        }
        state.write(PreScoreState {
            constraints,
            counts,
            weights,
            namespace: pod.pod.metadata.namespace().to_string(),
        });
        Status::success()
    }
}

/// Raw score of a node the soft constraints cannot judge (a topology label
/// missing); normalization gives it 0.
const IGNORED: i64 = -1;

impl ScorePlugin for PodTopologySpread {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>() else {
            return Ok(0);
        };
        if node.node().is_none() {
            return Err(Status::error("node not found"));
        }
        let labels = node.labels();
        if !has_all_keys(labels, &s.constraints) {
            return Ok(IGNORED);
        }
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(c.key) else {
                continue;
            };
            let count = if c.per_node {
                count_matching(&node.pods, &c.selector, &s.namespace)
            } else {
                s.counts[i].count(value)
            };
            score += count as f64 * s.weights[i] + (c.max_skew - 1) as f64;
        }
        Ok(score.round() as i64)
    }

    fn normalize_scores(
        &self,
        state: &CycleState,
        _: &PodInfo,
        scores: &mut [NodeScore],
    ) -> Status {
        if state.read::<PreScoreState>().is_none() {
            return Status::success();
        }
        let (mut min, mut max) = (i64::MAX, 0i64);
        for s in scores.iter().filter(|s| s.score != IGNORED) {
            min = min.min(s.score);
            max = max.max(s.score);
        }
        for s in scores.iter_mut() {
            s.score = if s.score == IGNORED {
                0
            } else if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - s.score) / max
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use ketch_core::LabelSelector;

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, all_nodes};

    const ZONE: &str = "zone";

    fn constraint(
        max_skew: i32,
        key: &str,
        action: UnsatisfiableConstraintAction,
        min_domains: Option<i32>,
    ) -> TopologySpreadConstraint {
        TopologySpreadConstraint {
            max_skew,
            topology_key: key.into(),
            when_unsatisfiable: action,
            label_selector: Some(LabelSelector::from_labels([("app", "web")])),
            min_domains,
            match_label_keys: Vec::new(),
        }
    }

    fn web(name: &str) -> PodInfo {
        PodBuilder::new(name).label("app", "web").build()
    }

    /// Zones a (n1: 2 web pods, n2: ssd), b (n3: 1 web pod), c (n4), and n5
    /// without a zone.
    fn cluster() -> Vec<NodeInfo> {
        vec![
            NodeBuilder::new("n1")
                .label(ZONE, "a")
                .label("disk", "ssd")
                .pod(web("w1"))
                .pod(web("w2"))
                .pod(PodBuilder::new("other").label("app", "db").build())
                .build(),
            NodeBuilder::new("n2")
                .label(ZONE, "a")
                .label("disk", "ssd")
                .build(),
            NodeBuilder::new("n3")
                .label(ZONE, "b")
                .pod(web("w3"))
                .pod(
                    PodBuilder::new("elsewhere")
                        .namespace("other")
                        .label("app", "web")
                        .build(),
                )
                .build(),
            NodeBuilder::new("n4").label(ZONE, "c").build(),
            NodeBuilder::new("n5").build(),
        ]
    }

    fn filter_all(p: &PodTopologySpread, pod: &PodInfo, snapshot: &Snapshot) -> Vec<Code> {
        let mut state = CycleState::default();
        let (_, s) = p.pre_filter(&mut state, pod, snapshot);
        if s.is_skip() {
            return vec![Code::Success; snapshot.len()];
        }
        snapshot
            .nodes()
            .iter()
            .map(|n| p.filter(&state, pod, n).code())
            .collect()
    }

    #[test]
    fn filter_table() {
        use Code::*;
        use UnsatisfiableConstraintAction::*;
        const U: Code = Unschedulable;
        const X: Code = UnschedulableAndUnresolvable;
        let pod = |c: TopologySpreadConstraint| PodBuilder::new("p").label("app", "web").spread(c);
        let cases: Vec<(&str, PodInfo, Vec<Code>)> = vec![
            (
                "no constraints",
                PodBuilder::new("p").build(),
                vec![Success; 5],
            ),
            (
                "max skew 1 allows only the empty zone",
                pod(constraint(1, ZONE, DoNotSchedule, None)).build(),
                vec![U, U, U, Success, X],
            ),
            (
                "max skew 2",
                pod(constraint(2, ZONE, DoNotSchedule, None)).build(),
                vec![U, U, Success, Success, X],
            ),
            (
                "a pod that does not match its own selector",
                PodBuilder::new("p")
                    .spread(constraint(1, ZONE, DoNotSchedule, None))
                    .build(),
                vec![U, U, Success, Success, X],
            ),
            (
                "soft constraints never filter",
                pod(constraint(1, ZONE, ScheduleAnyway, None)).build(),
                vec![Success; 5],
            ),
            (
                "node affinity is honored: only zone a counts (minimum 2)",
                pod(constraint(1, ZONE, DoNotSchedule, None))
                    .node_selector("disk", "ssd")
                    .build(),
                vec![Success, Success, Success, Success, X],
            ),
            (
                "hostname spreading",
                pod(constraint(1, LABEL_HOSTNAME, DoNotSchedule, None)).build(),
                vec![U, Success, U, Success, Success],
            ),
        ];
        let p = PodTopologySpread::default();
        let snapshot = Snapshot::from_nodes(cluster());
        for (name, pod, want) in cases {
            assert_eq!(filter_all(&p, &pod, &snapshot), want, "{name}");
        }
    }

    #[test]
    fn min_domains_forces_a_zero_minimum() {
        use UnsatisfiableConstraintAction::*;
        let nodes = || {
            vec![
                NodeBuilder::new("n1")
                    .label(ZONE, "a")
                    .pod(web("w1"))
                    .build(),
                NodeBuilder::new("n2")
                    .label(ZONE, "b")
                    .pod(web("w2"))
                    .build(),
            ]
        };
        let p = PodTopologySpread::default();
        let snapshot = Snapshot::from_nodes(nodes());
        let with = |min| {
            PodBuilder::new("p")
                .label("app", "web")
                .spread(constraint(1, ZONE, DoNotSchedule, min))
                .build()
        };
        assert_eq!(filter_all(&p, &with(None), &snapshot), [Code::Success; 2]);
        assert_eq!(
            filter_all(&p, &with(Some(2)), &snapshot),
            [Code::Success; 2]
        );
        assert_eq!(
            filter_all(&p, &with(Some(3)), &snapshot),
            [Code::Unschedulable; 2]
        );
    }

    #[test]
    fn cached_counts_follow_node_changes() {
        use UnsatisfiableConstraintAction::*;
        let p = PodTopologySpread::default();
        let pod = PodBuilder::new("p")
            .label("app", "web")
            .spread(constraint(1, ZONE, DoNotSchedule, None))
            .build();
        let mut nodes = cluster();
        let first = Snapshot::from_nodes(nodes.clone());
        assert_eq!(filter_all(&p, &pod, &first)[3], Code::Success);
        // Two web pods land in zone c: now zone b (1 pod) is the only fit.
        nodes[3].add_pod(Arc::new(web("w4")));
        nodes[3].add_pod(Arc::new(web("w5")));
        let second = Snapshot::from_nodes(nodes.clone());
        assert_eq!(
            filter_all(&p, &pod, &second),
            [
                Code::Unschedulable,
                Code::Unschedulable,
                Code::Success,
                Code::Unschedulable,
                Code::UnschedulableAndUnresolvable
            ]
        );
        // Zone b's node goes away: a and c (2 pods each) are the minimum.
        nodes.remove(2);
        let third = Snapshot::from_nodes(nodes);
        assert_eq!(filter_all(&p, &pod, &third)[0], Code::Success);
    }

    #[test]
    fn extensions_add_and_remove_pods() {
        use UnsatisfiableConstraintAction::*;
        let p = PodTopologySpread::default();
        let pod = PodBuilder::new("p")
            .label("app", "web")
            .spread(constraint(1, ZONE, DoNotSchedule, None))
            .build();
        let snapshot = Snapshot::from_nodes(cluster());
        let mut state = CycleState::default();
        assert!(p.pre_filter(&mut state, &pod, &snapshot).1.is_success());
        let n3 = &snapshot.nodes()[2];
        assert_eq!(p.filter(&state, &pod, n3).code(), Code::Unschedulable);
        let mut removed = state.clone();
        assert!(
            p.remove_pod(&mut removed, &pod, &n3.pods[0], n3)
                .is_success()
        );
        assert!(p.filter(&removed, &pod, n3).is_success());
        let n4 = &snapshot.nodes()[3];
        let mut added = state.clone();
        for name in ["x", "y"] {
            assert!(
                p.add_pod(&mut added, &pod, &Arc::new(web(name)), n4)
                    .is_success()
            );
        }
        assert_eq!(p.filter(&added, &pod, n4).code(), Code::Unschedulable);
    }

    #[test]
    fn score_prefers_less_loaded_domains() {
        use UnsatisfiableConstraintAction::*;
        let p = PodTopologySpread::default();
        let pod = PodBuilder::new("p")
            .label("app", "web")
            .spread(constraint(1, ZONE, ScheduleAnyway, None))
            .build();
        let snapshot = Snapshot::from_nodes(cluster());
        let mut state = CycleState::default();
        let _ = p.pre_filter(&mut state, &pod, &snapshot);
        assert!(
            p.pre_score(&mut state, &pod, &all_nodes(&snapshot))
                .is_success()
        );
        let mut scores: Vec<NodeScore> = snapshot
            .nodes()
            .iter()
            .enumerate()
            .map(|(index, n)| NodeScore {
                index,
                score: p.score(&state, &pod, n).expect("score"),
            })
            .collect();
        // weight ln(3 + 2) = 1.609: a = round(2 * 1.609) = 3, b = 2, c = 0.
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [3, 3, 2, 0, IGNORED]
        );
        assert!(p.normalize_scores(&state, &pod, &mut scores).is_success());
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [0, 0, 33, 100, 0]
        );
        let mut state = CycleState::default();
        let plain = PodBuilder::new("q").build();
        let _ = p.pre_filter(&mut state, &plain, &snapshot);
        assert!(
            p.pre_score(&mut state, &plain, &all_nodes(&snapshot))
                .is_skip()
        );
    }
}
