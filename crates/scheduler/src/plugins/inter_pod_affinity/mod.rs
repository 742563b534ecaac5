//! InterPodAffinity: required and preferred pod affinity and anti-affinity on
//! any topology key, including existing pods' required anti-affinity against
//! the incoming pod, with `namespaces` and `namespaceSelector`.
//!
//! Everything PreFilter needs is counted per topology domain and kept
//! across cycles, so a cycle costs what changed, not the cluster's size:
//!
//! - existing pods' terms (compiled once per pod, interned by content) are
//!   grouped, and each group's pods are counted per domain of each term
//!   ([`existing`]); a cycle matches each group's terms against the incoming
//!   pod once, for Filter (required anti-affinity) and Score (the rest);
//! - the pods matching the incoming pod's required terms are counted per
//!   domain by a counter kept per distinct set of terms.
//!
//! Both recount a node only when its generation moved. Domains are dense
//! ids per topology key, so Filter and Score are one label lookup and one
//! hash per topology key per node, and allocate nothing.

mod existing;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};

use ketch_core::api::{Namespace, Node, Pod, PodAffinityTerm, WeightedPodAffinityTerm};
use ketch_core::runtime::{Informer, ReflectorConfig};
use ketch_core::{Api, Client};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use self::existing::ExistingIndex;
use super::domains::{DomainCounts, DomainIndex, NodeLedger, Topologies};
use super::helper::CompiledLabelSelector;
use crate::framework::{
    ActionType, ClusterEvent, CycleState, EventResource, FilterPlugin, MAX_NODE_SCORE, NodeInfo,
    NodeScore, Plugin, PluginError, PodInfo, PreFilterExtensions, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, ScorePlugin, Snapshot, Status,
};

/// The reason a node fails the pod's required affinity.
pub const ERR_REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// The reason a node fails the pod's required anti-affinity.
pub const ERR_REASON_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// The reason a node fails an existing pod's required anti-affinity.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// Arguments of InterPodAffinity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InterPodAffinityArgs {
    /// Score weight of existing pods' required affinity terms matching the
    /// incoming pod, 0..=100 (default 1).
    #[serde(default = "default_hard_weight")]
    pub hard_pod_affinity_weight: i64,
    /// Score only with the incoming pod's preferred terms.
    #[serde(default)]
    pub ignore_preferred_terms_of_existing_pods: bool,
}

fn default_hard_weight() -> i64 {
    1
}

impl Default for InterPodAffinityArgs {
    fn default() -> Self {
        Self {
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

/// How a term selects namespaces besides its explicit list.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NamespaceSelector {
    Nothing,
    Everything,
    Labels(CompiledLabelSelector),
}

/// A compiled affinity term.
#[derive(Clone, Debug, PartialEq, Eq)]
struct AffinityTerm {
    namespaces: Vec<String>,
    namespace_selector: NamespaceSelector,
    selector: CompiledLabelSelector,
    topology_key: String,
    weight: i64,
}

impl AffinityTerm {
    fn new(term: &PodAffinityTerm, pod_namespace: &str, weight: i64) -> Self {
        let mut namespaces = term.namespaces.clone();
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.push(pod_namespace.to_string());
        }
        let namespace_selector = match &term.namespace_selector {
            None => NamespaceSelector::Nothing,
            Some(s) if s.match_labels.is_empty() && s.match_expressions.is_empty() => {
                NamespaceSelector::Everything
            }
            Some(s) => NamespaceSelector::Labels(CompiledLabelSelector::new(Some(s))),
        };
        Self {
            namespaces,
            namespace_selector,
            selector: CompiledLabelSelector::new(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
            weight,
        }
    }

    /// True if `pod` (whose namespace has `ns_labels`) matches the term.
    fn matches(&self, pod: &Pod, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns = pod.metadata.namespace();
        let ns_ok = self.namespaces.iter().any(|n| n == ns)
            || match &self.namespace_selector {
                NamespaceSelector::Nothing => false,
                NamespaceSelector::Everything => true,
                NamespaceSelector::Labels(s) => ns_labels.is_some_and(|l| s.matches(l)),
            };
        ns_ok && self.selector.matches(&pod.metadata.labels)
    }
}

/// The compiled terms of one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PodTerms {
    required_affinity: Vec<AffinityTerm>,
    required_anti_affinity: Vec<AffinityTerm>,
    preferred_affinity: Vec<AffinityTerm>,
    preferred_anti_affinity: Vec<AffinityTerm>,
}

impl PodTerms {
    fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty()
    }

    fn new(pod: &Pod) -> Self {
        let ns = pod.metadata.namespace();
        let Some(a) = pod.spec.affinity.as_ref() else {
            return Self::default();
        };
        let required = |terms: &[PodAffinityTerm]| -> Vec<AffinityTerm> {
            terms.iter().map(|t| AffinityTerm::new(t, ns, 1)).collect()
        };
        let preferred = |terms: &[WeightedPodAffinityTerm]| -> Vec<AffinityTerm> {
            terms
                .iter()
                .filter(|t| t.weight != 0)
                .map(|t| AffinityTerm::new(&t.pod_affinity_term, ns, i64::from(t.weight)))
                .collect()
        };
        let (mut out, pa, anti) = (Self::default(), &a.pod_affinity, &a.pod_anti_affinity);
        if let Some(p) = pa {
            out.required_affinity =
                required(&p.required_during_scheduling_ignored_during_execution);
            out.preferred_affinity =
                preferred(&p.preferred_during_scheduling_ignored_during_execution);
        }
        if let Some(p) = anti {
            out.required_anti_affinity =
                required(&p.required_during_scheduling_ignored_during_execution);
            out.preferred_anti_affinity =
                preferred(&p.preferred_during_scheduling_ignored_during_execution);
        }
        out
    }
}

/// True if the pod's spec has any pod (anti-)affinity term that is not a
/// required anti-affinity term (the ones scoring reads of existing pods).
fn has_scoring_terms(pod: &Pod) -> bool {
    pod.spec.affinity.as_ref().is_some_and(|a| {
        a.pod_affinity.as_ref().is_some_and(|p| {
            !p.required_during_scheduling_ignored_during_execution
                .is_empty()
                || !p
                    .preferred_during_scheduling_ignored_during_execution
                    .is_empty()
        }) || a.pod_anti_affinity.as_ref().is_some_and(|p| {
            !p.preferred_during_scheduling_ignored_during_execution
                .is_empty()
        })
    })
}

/// True if the pod has preferred affinity or anti-affinity terms.
fn has_preferred_terms(pod: &Pod) -> bool {
    pod.spec.affinity.as_ref().is_some_and(|a| {
        a.pod_affinity.as_ref().is_some_and(|p| {
            !p.preferred_during_scheduling_ignored_during_execution
                .is_empty()
        }) || a.pod_anti_affinity.as_ref().is_some_and(|p| {
            !p.preferred_during_scheduling_ignored_during_execution
                .is_empty()
        })
    })
}

/// Hashes a pointer address (looked up once per existing pod per cycle,
/// so cheaper than SipHash): multiply, then fold the high bits down so the
/// aligned low bits do not all land in the same buckets.
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, n: usize) {
        let h = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type ByAddress<V> = HashMap<usize, V, std::hash::BuildHasherDefault<AddressHasher>>;

/// Compiled terms of existing pods by pod identity, interned by content.
#[derive(Default)]
struct TermCache {
    by_pod: ByAddress<(Weak<Pod>, Arc<PodTerms>)>,
    interned: HashMap<String, Weak<PodTerms>>,
    sweep_at: usize,
}

impl TermCache {
    fn get(&mut self, pod: &Arc<Pod>) -> Arc<PodTerms> {
        let key = Arc::as_ptr(pod) as usize;
        if let Some((w, t)) = self.by_pod.get(&key)
            && std::ptr::eq(w.as_ptr(), Arc::as_ptr(pod))
        {
            return t.clone();
        }
        let signature = format!("{}\u{0}{:?}", pod.metadata.namespace(), pod.spec.affinity);
        let terms = match self.interned.get(&signature).and_then(Weak::upgrade) {
            Some(t) => t,
            None => {
                let t = Arc::new(PodTerms::new(pod));
                self.interned.insert(signature, Arc::downgrade(&t));
                t
            }
        };
        self.by_pod
            .insert(key, (Arc::downgrade(pod), terms.clone()));
        if self.by_pod.len() > self.sweep_at {
            self.by_pod.retain(|_, (w, _)| w.strong_count() > 0);
            self.interned.retain(|_, w| w.strong_count() > 0);
            self.sweep_at = 2 * self.by_pod.len() + 1024;
        }
        terms
    }
}

/// Counts per topology pair: topology key -> value -> count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    fn update(&mut self, node: &Node, key: &str, delta: i64) {
        let Some(value) = node.metadata.labels.get(key) else {
            return;
        };
        let inner = match self.0.get_mut(key) {
            Some(m) => m,
            None => self.0.entry(key.to_string()).or_default(),
        };
        let remove = match inner.get_mut(value.as_str()) {
            Some(c) => {
                *c += delta;
                *c == 0
            }
            None => {
                if delta != 0 {
                    inner.insert(value.clone(), delta);
                }
                false
            }
        };
        if remove {
            inner.remove(value.as_str());
            if inner.is_empty() {
                self.0.remove(key);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one node contributes to a [`TermCounter`]: (term, domain, pods).
type TermContribution = SmallVec<[(u16, u32, i64); 2]>;

/// Per-domain counts of the pods matching an incoming pod's required terms
/// (affinity terms first, counted for pods matching all of them, then
/// anti-affinity terms, each on its own), maintained across cycles: a node
/// is recounted only when its generation moved.
#[derive(Debug, Default)]
struct TermCounter {
    /// Per term: its topology id.
    topologies: Vec<u32>,
    /// Per term: matching pods per domain.
    counts: Vec<DomainCounts>,
    /// Per term: matching pods over all domains.
    totals: Vec<i64>,
    ledger: NodeLedger<TermContribution>,
    last_used: u64,
}

impl TermCounter {
    fn new(terms: &PodTerms, topologies: &mut Topologies) -> Self {
        let ids: Vec<u32> = terms
            .required_affinity
            .iter()
            .chain(&terms.required_anti_affinity)
            .map(|t| topologies.id(&t.topology_key))
            .collect();
        Self {
            counts: vec![DomainCounts::default(); ids.len()],
            totals: vec![0; ids.len()],
            topologies: ids,
            ..Self::default()
        }
    }

    fn apply(&mut self, contribution: &[(u16, u32, i64)], sign: i64) {
        for &(t, d, c) in contribution {
            self.counts[t as usize].add(d, sign * c);
            self.totals[t as usize] += sign * c;
        }
    }

    fn contribution(
        &self,
        info: &NodeInfo,
        terms: &PodTerms,
        topologies: &mut Topologies,
    ) -> TermContribution {
        let mut out = SmallVec::new();
        if info.node().is_none() {
            return out;
        }
        let aff = &terms.required_affinity;
        let anti = &terms.required_anti_affinity;
        let all_affinity = if aff.is_empty() {
            0
        } else {
            info.pods
                .iter()
                .filter(|p| aff.iter().all(|t| t.matches(&p.pod, None)))
                .count() as i64
        };
        for (i, t) in aff.iter().chain(anti).enumerate() {
            let Some(d) = topologies.index(self.topologies[i]).of(info) else {
                continue;
            };
            let count = if i < aff.len() {
                all_affinity
            } else {
                info.pods.iter().filter(|p| t.matches(&p.pod, None)).count() as i64
            };
            if count != 0 {
                out.push((i as u16, d, count));
            }
        }
        out
    }

    fn refresh(&mut self, snapshot: &Snapshot, terms: &PodTerms, topologies: &mut Topologies) {
        let mut ledger = std::mem::take(&mut self.ledger);
        ledger.refresh(
            self,
            snapshot,
            |counter, info| counter.contribution(info, terms, topologies),
            |counter, contribution, sign| counter.apply(contribution, sign),
        );
        self.ledger = ledger;
    }
}

const MAX_TERM_COUNTERS: usize = 64;

/// Term counters by the signature of the incoming pod's required terms.
#[derive(Debug, Default)]
struct TermCounters {
    entries: HashMap<String, TermCounter>,
    clock: u64,
}

impl TermCounters {
    /// The counter for `terms`, brought up to date with `snapshot`.
    fn counter(
        &mut self,
        snapshot: &Snapshot,
        terms: &PodTerms,
        topologies: &mut Topologies,
    ) -> &TermCounter {
        let signature = format!(
            "{:?}\u{0}{:?}",
            terms.required_affinity, terms.required_anti_affinity
        );
        self.clock += 1;
        if !self.entries.contains_key(&signature) && self.entries.len() >= MAX_TERM_COUNTERS {
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
            .or_insert_with(|| TermCounter::new(terms, topologies));
        counter.last_used = self.clock;
        counter.refresh(snapshot, terms, topologies);
        counter
    }
}

/// What the plugin keeps across cycles, behind one lock.
#[derive(Default)]
struct Index {
    cache: TermCache,
    topologies: Topologies,
    existing: ExistingIndex,
    counters: TermCounters,
}

/// The topology keys a cycle's counts refer to, each with the domain index
/// the counts' ids come from.
#[derive(Clone, Debug, Default)]
struct CycleTopologies {
    /// (topology id in the plugin's [`Topologies`], index).
    slots: SmallVec<[(u32, DomainIndex); 2]>,
}

impl CycleTopologies {
    /// The slot of plugin topology `t`, added from `all` if new.
    fn slot(&mut self, t: u32, all: &Topologies) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s.0 == t) {
            return i;
        }
        self.slots.push((t, all.index(t)));
        self.slots.len() - 1
    }

    /// The slot of topology key `key`, added if new (for keys only pods
    /// added in this cycle use).
    fn slot_by_key(&mut self, key: &str) -> usize {
        let index = DomainIndex::new(key);
        if let Some(i) = self.slots.iter().position(|s| s.1 == index) {
            return i;
        }
        self.slots.push((u32::MAX, index));
        self.slots.len() - 1
    }

    /// Per slot, the node's domain: `None` when the node lacks the key.
    fn domains(&self, node: &NodeInfo) -> SmallVec<[Option<u32>; 4]> {
        self.slots.iter().map(|(_, index)| index.of(node)).collect()
    }
}

/// Counts in one slot of [`CycleTopologies`].
#[derive(Clone, Debug)]
struct SlotCounts {
    slot: usize,
    counts: DomainCounts,
}

impl SlotCounts {
    fn at(&self, domains: &[Option<u32>]) -> i64 {
        domains[self.slot].map_or(0, |d| self.counts.get(d))
    }
}

#[derive(Clone, Debug)]
struct PreFilterState {
    pod: Arc<Pod>,
    terms: Arc<PodTerms>,
    ns_labels: Option<Arc<BTreeMap<String, String>>>,
    matches_own_affinity: bool,
    topologies: CycleTopologies,
    /// Existing pods' required anti-affinity terms matching the pod; a
    /// domain is excluded when their sum there is positive.
    existing_anti_affinity: Vec<SlotCounts>,
    /// Per affinity term, then per anti-affinity term.
    term_counts: Vec<SlotCounts>,
    /// Pods matching all affinity terms, over all domains.
    affinity_total: i64,
}

impl PreFilterState {
    /// Adds `delta` in the domain `value` of `slot` to `list` (the first
    /// entry of that slot, or a new one).
    fn add_in_slot(&mut self, which: Which, slot: usize, value: &str, delta: i64) {
        let d = self.topologies.slots[slot].1.intern(value);
        match which {
            Which::Term(i) => self.term_counts[i].counts.add(d, delta),
            Which::ExistingAnti => {
                match self
                    .existing_anti_affinity
                    .iter_mut()
                    .find(|c| c.slot == slot)
                {
                    Some(c) => c.counts.add(d, delta),
                    None => {
                        let mut counts = DomainCounts::default();
                        counts.add(d, delta);
                        self.existing_anti_affinity
                            .push(SlotCounts { slot, counts });
                    }
                }
            }
        }
    }

    /// Accounts for `other` (with compiled terms `other_terms`) being added
    /// (`delta` 1) to or removed (-1) from `node`.
    fn update_with_pod(&mut self, other: &Pod, other_terms: &PodTerms, node: &Node, delta: i64) {
        for t in &other_terms.required_anti_affinity {
            if t.matches(&self.pod, self.ns_labels.as_deref())
                && let Some(v) = node.metadata.labels.get(&t.topology_key)
            {
                let slot = self.topologies.slot_by_key(&t.topology_key);
                self.add_in_slot(Which::ExistingAnti, slot, v, delta);
            }
        }
        let terms = self.terms.clone();
        let aff = &terms.required_affinity;
        let matches_all = !aff.is_empty() && aff.iter().all(|t| t.matches(other, None));
        for (i, t) in aff.iter().chain(&terms.required_anti_affinity).enumerate() {
            let counted = if i < aff.len() {
                matches_all
            } else {
                t.matches(other, None)
            };
            if !counted {
                continue;
            }
            if let Some(v) = node.metadata.labels.get(&t.topology_key) {
                let slot = self.term_counts[i].slot;
                self.add_in_slot(Which::Term(i), slot, v, delta);
                if i == 0 {
                    self.affinity_total += delta;
                }
            }
        }
    }
}

/// Which counts of [`PreFilterState`] a change goes to.
#[derive(Clone, Copy, Debug)]
enum Which {
    Term(usize),
    ExistingAnti,
}

/// An existing pods' term that scores the incoming pod, per domain.
#[derive(Clone, Debug)]
struct ExistingScore {
    index: DomainIndex,
    weight: i64,
    counts: DomainCounts,
}

#[derive(Clone, Debug, Default)]
struct PreScoreState {
    /// The incoming pod's preferred terms against existing pods.
    scores: TopologyCounts,
    /// Existing pods' terms matching the incoming pod.
    existing: Vec<ExistingScore>,
}

impl PreScoreState {
    fn is_empty(&self) -> bool {
        self.scores.is_empty() && self.existing.is_empty()
    }
}

/// Where namespace labels come from (for `namespaceSelector`).
enum Namespaces {
    None,
    Static(HashMap<String, Arc<Namespace>>),
    Informer(Informer<Namespace>),
}

impl Namespaces {
    fn labels(&self, name: &str) -> Option<Arc<BTreeMap<String, String>>> {
        let ns = match self {
            Namespaces::None => None,
            Namespaces::Static(m) => m.get(name).cloned(),
            Namespaces::Informer(i) => i.reader().get(None, name),
        };
        ns.map(|n| Arc::new(n.metadata.labels.clone()))
    }

    fn matching(&self, selector: &CompiledLabelSelector) -> Vec<String> {
        let all: Vec<Arc<Namespace>> = match self {
            Namespaces::None => Vec::new(),
            Namespaces::Static(m) => m.values().cloned().collect(),
            Namespaces::Informer(i) => i.reader().list(),
        };
        all.iter()
            .filter(|n| selector.matches(&n.metadata.labels))
            .map(|n| n.metadata.name().to_string())
            .collect()
    }
}

/// The InterPodAffinity plugin.
pub struct InterPodAffinity {
    args: InterPodAffinityArgs,
    namespaces: Namespaces,
    index: Mutex<Index>,
}

impl std::fmt::Debug for InterPodAffinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterPodAffinity")
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

impl Default for InterPodAffinity {
    fn default() -> Self {
        Self::with_namespaces(InterPodAffinityArgs::default(), Namespaces::None)
    }
}

impl InterPodAffinity {
    /// The registry name.
    pub const NAME: &'static str = "InterPodAffinity";

    fn with_namespaces(args: InterPodAffinityArgs, namespaces: Namespaces) -> Self {
        Self {
            args,
            namespaces,
            index: Mutex::new(Index::default()),
        }
    }

    fn validate(args: &InterPodAffinityArgs) -> Result<(), PluginError> {
        if !(0..=100).contains(&args.hard_pod_affinity_weight) {
            return Err(PluginError::InvalidArgs {
                plugin: Self::NAME.into(),
                message: format!(
                    "hardPodAffinityWeight: {} not in 0..=100",
                    args.hard_pod_affinity_weight
                ),
            });
        }
        Ok(())
    }

    /// Builds the plugin; namespace labels (for `namespaceSelector`) come
    /// from an informer on `client` when a tokio runtime is running, and are
    /// unknown otherwise (selectors then match no namespace).
    pub fn new(args: InterPodAffinityArgs, client: Arc<dyn Client>) -> Result<Self, PluginError> {
        Self::validate(&args)?;
        let namespaces = if tokio::runtime::Handle::try_current().is_ok() {
            Namespaces::Informer(Informer::spawn(
                Api::<Namespace>::all(client),
                ReflectorConfig::default(),
            ))
        } else {
            Namespaces::None
        };
        Ok(Self::with_namespaces(args, namespaces))
    }

    /// Builds the plugin with a fixed set of namespaces (tests, simulations).
    pub fn with_static_namespaces(
        args: InterPodAffinityArgs,
        namespaces: impl IntoIterator<Item = Namespace>,
    ) -> Result<Self, PluginError> {
        Self::validate(&args)?;
        let map = namespaces
            .into_iter()
            .map(|n| (n.metadata.name().to_string(), Arc::new(n)))
            .collect();
        Ok(Self::with_namespaces(args, Namespaces::Static(map)))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The incoming pod's terms with label namespace selectors resolved into
    /// namespace names (as kube-scheduler merges them).
    fn incoming_terms(&self, pod: &Pod) -> PodTerms {
        let mut terms = PodTerms::new(pod);
        let merge = |list: &mut Vec<AffinityTerm>| {
            for t in list.iter_mut() {
                if let NamespaceSelector::Labels(sel) = &t.namespace_selector {
                    let found = self.namespaces.matching(sel);
                    t.namespaces.extend(found);
                    t.namespace_selector = NamespaceSelector::Nothing;
                }
            }
        };
        merge(&mut terms.required_affinity);
        merge(&mut terms.required_anti_affinity);
        merge(&mut terms.preferred_affinity);
        merge(&mut terms.preferred_anti_affinity);
        terms
    }

    /// Scoring state by walking the pods of `snapshot_nodes`: the incoming
    /// pod's preferred terms against every pod, and, with `with_existing`,
    /// the existing pods' terms against the incoming pod (PreFilter takes
    /// those from the index instead).
    fn pre_score_state<N: Borrow<NodeInfo>>(
        &self,
        pod: &PodInfo,
        snapshot_nodes: &[N],
        with_existing: bool,
    ) -> PreScoreState {
        let terms = self.incoming_terms(&pod.pod);
        let ns_labels = self.namespaces.labels(pod.pod.metadata.namespace());
        let ns_labels = ns_labels.as_deref();
        let has_constraints =
            !terms.preferred_affinity.is_empty() || !terms.preferred_anti_affinity.is_empty();
        let mut scores = TopologyCounts::default();
        let mut index = self.index();
        let hard = self.args.hard_pod_affinity_weight;
        let ignore_existing = self.args.ignore_preferred_terms_of_existing_pods || !with_existing;
        for info in snapshot_nodes {
            let info = info.borrow();
            let Some(node) = info.node() else { continue };
            if node.metadata.labels.is_empty() {
                continue;
            }
            let pods = if has_constraints {
                &info.pods
            } else if with_existing {
                &info.pods_with_affinity
            } else {
                continue;
            };
            for existing in pods {
                let ep = &existing.pod;
                for t in &terms.preferred_affinity {
                    if t.matches(ep, None) {
                        scores.update(node, &t.topology_key, t.weight);
                    }
                }
                for t in &terms.preferred_anti_affinity {
                    if t.matches(ep, None) {
                        scores.update(node, &t.topology_key, -t.weight);
                    }
                }
                if ignore_existing || !existing.has_affinity || !has_scoring_terms(ep) {
                    continue;
                }
                let et = index.cache.get(ep);
                if hard > 0 {
                    for t in &et.required_affinity {
                        if t.matches(&pod.pod, ns_labels) {
                            scores.update(node, &t.topology_key, hard);
                        }
                    }
                }
                for t in &et.preferred_affinity {
                    if t.matches(&pod.pod, ns_labels) {
                        scores.update(node, &t.topology_key, t.weight);
                    }
                }
                for t in &et.preferred_anti_affinity {
                    if t.matches(&pod.pod, ns_labels) {
                        scores.update(node, &t.topology_key, -t.weight);
                    }
                }
            }
        }
        PreScoreState {
            scores,
            existing: Vec::new(),
        }
    }
}

impl Plugin for InterPodAffinity {
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
                ActionType::ADD | ActionType::UPDATE_NODE_LABEL,
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

impl PreFilterPlugin for InterPodAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let has_required = pod.pod.spec.affinity.as_ref().is_some_and(|a| {
            a.pod_affinity.as_ref().is_some_and(|p| {
                !p.required_during_scheduling_ignored_during_execution
                    .is_empty()
            }) || a.pod_anti_affinity.as_ref().is_some_and(|p| {
                !p.required_during_scheduling_ignored_during_execution
                    .is_empty()
            })
        });
        let has_preferred = has_preferred_terms(&pod.pod);
        let all_nodes = if has_preferred {
            snapshot.nodes().to_vec()
        } else {
            Vec::new()
        };
        if !has_required && snapshot.nodes_with_affinity_pods().is_empty() {
            // No term anywhere: nothing to filter, and scoring sees only
            // the incoming pod's preferred terms.
            state.write(ScoreSource {
                nodes: Arc::new(all_nodes),
                existing: Vec::new(),
            });
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        let ns_labels = self.namespaces.labels(pod.pod.metadata.namespace());
        let mut guard = self.index();
        let index = &mut *guard;
        index
            .existing
            .refresh(snapshot, &mut index.cache, &mut index.topologies);
        let existing = if self.args.ignore_preferred_terms_of_existing_pods {
            Vec::new()
        } else {
            index
                .existing
                .scoring_matching(
                    &pod.pod,
                    ns_labels.as_deref(),
                    self.args.hard_pod_affinity_weight,
                )
                .into_iter()
                .map(|m| ExistingScore {
                    index: index.topologies.index(m.topology),
                    weight: m.weight,
                    counts: m.counts,
                })
                .collect()
        };
        state.write(ScoreSource {
            nodes: Arc::new(all_nodes),
            existing,
        });
        let matched_anti = index
            .existing
            .anti_affinity_matching(&pod.pod, ns_labels.as_deref());
        if !has_required && matched_anti.is_empty() {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        let terms = if has_required {
            self.incoming_terms(&pod.pod)
        } else {
            PodTerms::default()
        };
        let mut incoming = Vec::new();
        let mut affinity_total = 0;
        if has_required {
            let counter = index
                .counters
                .counter(snapshot, &terms, &mut index.topologies);
            incoming.extend(
                counter
                    .topologies
                    .iter()
                    .copied()
                    .zip(counter.counts.clone()),
            );
            if !terms.required_affinity.is_empty() {
                affinity_total = counter.totals[0];
            }
        }
        // Every count is current now: take the domain indexes they refer to.
        let mut topologies = CycleTopologies::default();
        let mut slot_counts = |(t, counts): (u32, DomainCounts)| SlotCounts {
            slot: topologies.slot(t, &index.topologies),
            counts,
        };
        let existing_anti_affinity = matched_anti
            .into_iter()
            .map(|m| (m.topology, m.counts))
            .map(&mut slot_counts)
            .collect();
        let term_counts = incoming.into_iter().map(&mut slot_counts).collect();
        drop(guard);
        let s = PreFilterState {
            pod: pod.pod.clone(),
            matches_own_affinity: !terms.required_affinity.is_empty()
                && terms
                    .required_affinity
                    .iter()
                    .all(|t| t.matches(&pod.pod, None)),
            terms: Arc::new(terms),
            ns_labels,
            topologies,
            existing_anti_affinity,
            term_counts,
            affinity_total,
        };
        state.write(s);
        (PreFilterResult::all_nodes(), Status::success())
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

impl PreFilterExtensions for InterPodAffinity {
    fn add_pod(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        pod_to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        let Some(n) = node.node() else {
            return Status::success();
        };
        let terms = self.index().cache.get(&pod_to_add.pod);
        if let Some(s) = state.read_mut::<PreFilterState>() {
            s.update_with_pod(&pod_to_add.pod, &terms, n, 1);
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
        let Some(n) = node.node() else {
            return Status::success();
        };
        let terms = self.index().cache.get(&pod_to_remove.pod);
        if let Some(s) = state.read_mut::<PreFilterState>() {
            s.update_with_pod(&pod_to_remove.pod, &terms, n, -1);
        }
        Status::success()
    }
}

impl FilterPlugin for InterPodAffinity {
    fn filter(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>() else {
            return Status::error("InterPodAffinity: PreFilter state missing");
        };
        if node.node().is_none() {
            return Status::error("node not found");
        }
        let domains = s.topologies.domains(node);
        // Required affinity: every topology key present, and matching pods
        // in each domain (or the pod is the first of a self-affine group).
        let n_aff = s.terms.required_affinity.len();
        let mut pods_exist = true;
        for c in &s.term_counts[..n_aff] {
            if domains[c.slot].is_none() {
                return Status::unresolvable(ERR_REASON_AFFINITY);
            }
            if c.at(&domains) <= 0 {
                pods_exist = false;
            }
        }
        let first_of_group = s.affinity_total == 0 && s.matches_own_affinity;
        if !(pods_exist || first_of_group) {
            return Status::unresolvable(ERR_REASON_AFFINITY);
        }
        if s.term_counts[n_aff..].iter().any(|c| c.at(&domains) > 0) {
            return Status::unschedulable(ERR_REASON_ANTI_AFFINITY);
        }
        if !s.existing_anti_affinity.is_empty() {
            let mut sums: SmallVec<[i64; 4]> = SmallVec::from_elem(0, domains.len());
            for c in &s.existing_anti_affinity {
                sums[c.slot] += c.at(&domains);
            }
            if sums.iter().any(|n| *n > 0) {
                return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY);
            }
        }
        Status::success()
    }
}

impl PreScorePlugin for InterPodAffinity {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, nodes: &[&NodeInfo]) -> Status {
        let has_preferred = has_preferred_terms(&pod.pod);
        if nodes.is_empty() || (self.args.ignore_preferred_terms_of_existing_pods && !has_preferred)
        {
            return Status::skip();
        }
        let s = match state.read::<ScoreSource>() {
            Some(src) => PreScoreState {
                scores: if has_preferred {
                    self.pre_score_state(pod, &src.nodes, false).scores
                } else {
                    TopologyCounts::default()
                },
                existing: src.existing.clone(),
            },
            None if has_preferred => self.pre_score_state(pod, nodes, true),
            None => {
                let with_affinity: Vec<&NodeInfo> = nodes
                    .iter()
                    .filter(|n| !n.pods_with_affinity.is_empty())
                    .copied()
                    .collect();
                self.pre_score_state(pod, &with_affinity, true)
            }
        };
        if s.is_empty() {
            return Status::skip();
        }
        state.write(s);
        Status::success()
    }
}

/// What PreFilter, which sees the snapshot, hands to scoring: every node
/// when the pod has preferred terms (their pods are matched against them),
/// and the existing pods' terms that score the pod, from the index. Without
/// it (no PreFilter), scoring walks the feasible nodes.
#[derive(Clone, Debug)]
struct ScoreSource {
    nodes: Arc<Vec<Arc<NodeInfo>>>,
    existing: Vec<ExistingScore>,
}

impl ScorePlugin for InterPodAffinity {
    fn score(&self, state: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<PreScoreState>() else {
            return Ok(0);
        };
        let Some(n) = node.node() else {
            return Err(Status::error("node not found"));
        };
        let labels = &n.metadata.labels;
        let mut score = 0;
        for (key, values) in &s.scores.0 {
            if let Some(v) = labels.get(key) {
                score += values.get(v.as_str()).copied().unwrap_or(0);
            }
        }
        for e in &s.existing {
            if let Some(d) = e.index.of(node) {
                score += e.weight * e.counts.get(d);
            }
        }
        Ok(score)
    }

    fn normalize_scores(
        &self,
        state: &CycleState,
        _: &PodInfo,
        scores: &mut [NodeScore],
    ) -> Status {
        if state
            .read::<PreScoreState>()
            .is_none_or(PreScoreState::is_empty)
        {
            return Status::success();
        }
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max - min;
        for s in scores.iter_mut() {
            s.score = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((s.score - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }
}

#[cfg(test)]
mod tests {
    use ketch_core::{LabelSelector, ObjectMeta};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, affinity_term, all_nodes};

    const HOST: &str = "kubernetes.io/hostname";
    const ZONE: &str = "zone";

    fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
        let mut meta = ObjectMeta::cluster_named(name);
        for (k, v) in labels {
            meta.labels.insert((*k).into(), (*v).into());
        }
        Namespace {
            metadata: meta,
            ..Namespace::default()
        }
    }

    fn plugin() -> InterPodAffinity {
        InterPodAffinity::with_static_namespaces(
            InterPodAffinityArgs::default(),
            [
                namespace("default", &[("team", "web")]),
                namespace("other", &[("team", "x")]),
            ],
        )
        .expect("valid")
    }

    /// Runs PreFilter then Filter on every node; the code per node.
    fn filter_all(p: &InterPodAffinity, pod: &PodInfo, nodes: Vec<NodeInfo>) -> Vec<Code> {
        let snapshot = Snapshot::from_nodes(nodes);
        let mut state = CycleState::default();
        let (_, s) = p.pre_filter(&mut state, pod, &snapshot);
        if s.is_skip() {
            return vec![Code::Success; snapshot.len()];
        }
        assert!(s.is_success(), "{s}");
        snapshot
            .nodes()
            .iter()
            .map(|n| p.filter(&state, pod, n).code())
            .collect()
    }

    fn cluster(existing: PodInfo) -> Vec<NodeInfo> {
        vec![
            NodeBuilder::new("n1")
                .label(ZONE, "a")
                .pod(existing)
                .build(),
            NodeBuilder::new("n2").label(ZONE, "a").build(),
            NodeBuilder::new("n3").label(ZONE, "b").build(),
            NodeBuilder::new("n4").build(),
        ]
    }

    #[test]
    fn filter_table() {
        use Code::*;
        const U: Code = Unschedulable;
        const X: Code = UnschedulableAndUnresolvable;
        let green = || PodBuilder::new("e").label("color", "green");
        let mut ns_any = affinity_term("color", "green", HOST);
        ns_any.namespace_selector = Some(LabelSelector::default());
        let mut ns_team_x = affinity_term("color", "green", HOST);
        ns_team_x.namespace_selector = Some(LabelSelector::from_labels([("team", "x")]));
        let mut ns_team_y = affinity_term("color", "green", HOST);
        ns_team_y.namespace_selector = Some(LabelSelector::from_labels([("team", "y")]));
        let mut ns_listed = affinity_term("color", "green", HOST);
        ns_listed.namespaces = vec!["other".into()];
        let mut existing_selects_web = affinity_term("app", "web", ZONE);
        existing_selects_web.namespace_selector =
            Some(LabelSelector::from_labels([("team", "web")]));
        let cases: Vec<(&str, PodInfo, PodInfo, Vec<Code>)> = vec![
            (
                "no terms",
                green().build(),
                PodBuilder::new("p").build(),
                vec![Success; 4],
            ),
            (
                "anti-affinity on hostname",
                green().build(),
                PodBuilder::new("p")
                    .pod_anti_affinity(affinity_term("color", "green", HOST))
                    .build(),
                vec![U, Success, Success, Success],
            ),
            (
                "anti-affinity on zone",
                green().build(),
                PodBuilder::new("p")
                    .pod_anti_affinity(affinity_term("color", "green", ZONE))
                    .build(),
                vec![U, U, Success, Success],
            ),
            (
                "existing pod's anti-affinity against the incoming pod",
                PodBuilder::new("e")
                    .pod_anti_affinity(affinity_term("app", "web", ZONE))
                    .build(),
                PodBuilder::new("p").label("app", "web").build(),
                vec![U, U, Success, Success],
            ),
            (
                "existing anti-affinity not matching the incoming pod",
                PodBuilder::new("e")
                    .pod_anti_affinity(affinity_term("app", "web", ZONE))
                    .build(),
                PodBuilder::new("p").label("app", "db").build(),
                vec![Success; 4],
            ),
            (
                "existing anti-affinity selecting the incoming namespace by label",
                PodBuilder::new("e")
                    .namespace("other")
                    .pod_anti_affinity(existing_selects_web)
                    .build(),
                PodBuilder::new("p").label("app", "web").build(),
                vec![U, U, Success, Success],
            ),
            (
                "affinity on zone",
                green().build(),
                PodBuilder::new("p")
                    .pod_affinity(affinity_term("color", "green", ZONE))
                    .build(),
                vec![Success, Success, X, X],
            ),
            (
                "first pod of a self-affine group",
                PodBuilder::new("e").build(),
                PodBuilder::new("p")
                    .label("color", "green")
                    .pod_affinity(affinity_term("color", "green", ZONE))
                    .build(),
                vec![Success, Success, Success, X],
            ),
            (
                "affinity without matching pods",
                PodBuilder::new("e").build(),
                PodBuilder::new("p")
                    .pod_affinity(affinity_term("color", "green", ZONE))
                    .build(),
                vec![X, X, X, X],
            ),
            (
                "other namespace is not selected by default",
                green().namespace("other").build(),
                PodBuilder::new("p")
                    .pod_anti_affinity(affinity_term("color", "green", HOST))
                    .build(),
                vec![Success; 4],
            ),
            (
                "listed namespace",
                green().namespace("other").build(),
                PodBuilder::new("p").pod_anti_affinity(ns_listed).build(),
                vec![U, Success, Success, Success],
            ),
            (
                "empty namespace selector selects all",
                green().namespace("other").build(),
                PodBuilder::new("p").pod_anti_affinity(ns_any).build(),
                vec![U, Success, Success, Success],
            ),
            (
                "namespace selector by label",
                green().namespace("other").build(),
                PodBuilder::new("p").pod_anti_affinity(ns_team_x).build(),
                vec![U, Success, Success, Success],
            ),
            (
                "namespace selector matching no namespace",
                green().namespace("other").build(),
                PodBuilder::new("p").pod_anti_affinity(ns_team_y).build(),
                vec![Success; 4],
            ),
        ];
        let p = plugin();
        for (name, existing, pod, want) in cases {
            assert_eq!(filter_all(&p, &pod, cluster(existing)), want, "{name}");
        }
    }

    #[test]
    fn cached_counts_follow_node_changes() {
        let p = plugin();
        let green = || PodBuilder::new("g").label("color", "green");
        let pod = PodBuilder::new("p")
            .pod_anti_affinity(affinity_term("color", "green", ZONE))
            .pod_affinity(affinity_term("app", "db", HOST))
            .build();
        let mut nodes = vec![
            NodeBuilder::new("n1").label(ZONE, "a").build(),
            NodeBuilder::new("n2")
                .label(ZONE, "b")
                .pod(PodBuilder::new("db").label("app", "db").build())
                .build(),
            NodeBuilder::new("n3").label(ZONE, "b").build(),
        ];
        let codes = |nodes: &Vec<NodeInfo>| filter_all(&p, &pod, nodes.clone());
        use Code::*;
        const U: Code = Unschedulable;
        const X: Code = UnschedulableAndUnresolvable;
        assert_eq!(codes(&nodes), [X, Success, X]);
        // A green pod arrives in zone b: anti-affinity now rejects zone b.
        nodes[2].add_pod(Arc::new(green().build()));
        assert_eq!(codes(&nodes), [X, U, X]);
        // It leaves again.
        nodes[2].remove_pod("default/g");
        assert_eq!(codes(&nodes), [X, Success, X]);
        // The db pod's node goes away: no pod matches the affinity at all.
        nodes.remove(1);
        assert_eq!(codes(&nodes), [X, X]);
    }

    #[test]
    fn reasons_name_the_failed_rule() {
        let p = plugin();
        let pod = PodBuilder::new("p")
            .label("app", "web")
            .pod_anti_affinity(affinity_term("color", "green", HOST))
            .build();
        let nodes = vec![
            NodeBuilder::new("n1")
                .pod(PodBuilder::new("e").label("color", "green").build())
                .build(),
            NodeBuilder::new("n2")
                .pod(
                    PodBuilder::new("f")
                        .pod_anti_affinity(affinity_term("app", "web", HOST))
                        .build(),
                )
                .build(),
        ];
        let snapshot = Snapshot::from_nodes(nodes);
        let mut state = CycleState::default();
        assert!(p.pre_filter(&mut state, &pod, &snapshot).1.is_success());
        let reasons: Vec<String> = snapshot
            .nodes()
            .iter()
            .map(|n| p.filter(&state, &pod, n).reasons()[0].to_string())
            .collect();
        assert_eq!(
            reasons,
            [ERR_REASON_ANTI_AFFINITY, ERR_REASON_EXISTING_ANTI_AFFINITY]
        );
    }

    #[test]
    fn extensions_add_and_remove_pods() {
        let p = plugin();
        let blocker = Arc::new(
            PodBuilder::new("e")
                .label("color", "green")
                .pod_anti_affinity(affinity_term("color", "green", HOST))
                .build(),
        );
        let n1 = NodeBuilder::new("n1").pod((*blocker).clone()).build();
        let n2 = NodeBuilder::new("n2").build();
        let snapshot = Snapshot::from_nodes(vec![n1, n2]);
        let pod = PodBuilder::new("p")
            .label("color", "green")
            .pod_anti_affinity(affinity_term("color", "green", HOST))
            .build();
        let mut state = CycleState::default();
        assert!(p.pre_filter(&mut state, &pod, &snapshot).1.is_success());
        let (n1, n2) = (&snapshot.nodes()[0], &snapshot.nodes()[1]);
        assert!(!p.filter(&state, &pod, n1).is_success());
        let mut removed = state.clone();
        let victim = &n1.pods[0];
        assert!(p.remove_pod(&mut removed, &pod, victim, n1).is_success());
        assert!(p.filter(&removed, &pod, n1).is_success());
        assert!(p.filter(&state, &pod, n1).code() == Code::Unschedulable);
        let mut added = state.clone();
        assert!(p.filter(&added, &pod, n2).is_success());
        assert!(p.add_pod(&mut added, &pod, &blocker, n2).is_success());
        assert_eq!(p.filter(&added, &pod, n2).code(), Code::Unschedulable);
    }

    fn scores(p: &InterPodAffinity, pod: &PodInfo, nodes: Vec<NodeInfo>) -> Vec<i64> {
        let snapshot = Snapshot::from_nodes(nodes);
        let mut state = CycleState::default();
        let _ = p.pre_filter(&mut state, pod, &snapshot);
        let s = p.pre_score(&mut state, pod, &all_nodes(&snapshot));
        if s.is_skip() {
            return vec![0; snapshot.len()];
        }
        let mut out: Vec<NodeScore> = snapshot
            .nodes()
            .iter()
            .enumerate()
            .map(|(index, n)| NodeScore {
                index,
                score: p.score(&state, pod, n).expect("score"),
            })
            .collect();
        assert!(p.normalize_scores(&state, pod, &mut out).is_success());
        out.iter().map(|s| s.score).collect()
    }

    #[test]
    fn score_table() {
        let db = || PodBuilder::new("e").label("app", "db");
        let nodes = || {
            vec![
                NodeBuilder::new("n1")
                    .label(ZONE, "a")
                    .pod(db().build())
                    .build(),
                NodeBuilder::new("n2").label(ZONE, "a").build(),
                NodeBuilder::new("n3").label(ZONE, "b").build(),
            ]
        };
        let p = plugin();
        let cases: Vec<(&str, PodInfo, Vec<NodeInfo>, Vec<i64>)> = vec![
            (
                "no terms",
                PodBuilder::new("p").build(),
                nodes(),
                vec![0, 0, 0],
            ),
            (
                "preferred affinity to the zone of db",
                PodBuilder::new("p")
                    .preferred_pod_affinity(10, affinity_term("app", "db", ZONE))
                    .build(),
                nodes(),
                vec![100, 100, 0],
            ),
            (
                "preferred anti-affinity to the host of db",
                PodBuilder::new("p")
                    .preferred_pod_anti_affinity(10, affinity_term("app", "db", HOST))
                    .build(),
                nodes(),
                vec![0, 100, 100],
            ),
            (
                "mixed weights",
                PodBuilder::new("p")
                    .preferred_pod_affinity(10, affinity_term("app", "db", ZONE))
                    .preferred_pod_anti_affinity(5, affinity_term("app", "db", HOST))
                    .build(),
                nodes(),
                vec![50, 100, 0],
            ),
            (
                "existing pod's required affinity attracts with the hard weight",
                PodBuilder::new("p").label("app", "web").build(),
                vec![
                    NodeBuilder::new("n1")
                        .label(ZONE, "a")
                        .pod(
                            PodBuilder::new("e")
                                .pod_affinity(affinity_term("app", "web", ZONE))
                                .build(),
                        )
                        .build(),
                    NodeBuilder::new("n2").label(ZONE, "a").build(),
                    NodeBuilder::new("n3").label(ZONE, "b").build(),
                ],
                vec![100, 100, 0],
            ),
            (
                "existing pod's preferred anti-affinity repels",
                PodBuilder::new("p").label("app", "web").build(),
                vec![
                    NodeBuilder::new("n1")
                        .label(ZONE, "a")
                        .pod(
                            PodBuilder::new("e")
                                .preferred_pod_anti_affinity(7, affinity_term("app", "web", ZONE))
                                .build(),
                        )
                        .build(),
                    NodeBuilder::new("n2").label(ZONE, "a").build(),
                    NodeBuilder::new("n3").label(ZONE, "b").build(),
                ],
                vec![0, 0, 100],
            ),
        ];
        for (name, pod, nodes, want) in cases {
            assert_eq!(scores(&p, &pod, nodes), want, "{name}");
        }
    }

    #[test]
    fn args_are_validated() {
        let bad = InterPodAffinityArgs {
            hard_pod_affinity_weight: 101,
            ..Default::default()
        };
        assert!(InterPodAffinity::with_static_namespaces(bad, []).is_err());
        let args: InterPodAffinityArgs = crate::framework::decode_args(
            InterPodAffinity::NAME,
            Some(&serde_json::json!({"hardPodAffinityWeight": 5})),
        )
        .expect("decodes");
        assert_eq!(args.hard_pod_affinity_weight, 5);
    }
}
