//! The scheduler's [`Cache`]: nodes and the pods on them (bound or
//! assumed), per-node requested resources, image spread, and the
//! incremental refresh of a [`Snapshot`].
//!
//! Nodes are kept as `Arc<NodeInfo>` and changed copy-on-write: a node
//! shared with the current snapshot is copied once when it first changes,
//! and [`Cache::update_snapshot`] walks only the nodes whose generation
//! moved since the snapshot's (a generation-ordered index, as
//! kube-scheduler's most-recently-updated list), so a cycle costs
//! O(changed nodes), not O(nodes).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ketch_core::api::{Node, Pod, PodPhase};
use parking_lot::Mutex;

use crate::framework::{ImageState, NodeInfo, PodInfo, ResourceError, Snapshot, next_generation};

/// Errors of cache operations.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The pod is already in the cache (assumed or bound).
    #[error("pod {0} is already in the cache")]
    AlreadyPresent(String),
    /// The pod has no `spec.nodeName`.
    #[error("pod {0} is not assigned to a node")]
    NotAssigned(String),
    /// A quantity of the pod or node could not be read.
    #[error(transparent)]
    Resource(#[from] ResourceError),
}

/// What [`Cache::update_pod`] did with a bound pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodChange {
    /// The pod was new to the cache.
    Added,
    /// The pod was assumed and is now confirmed by the informer.
    Confirmed,
    /// The pod changed in a way plugins can see.
    Updated,
    /// Nothing plugins can see changed.
    Unchanged,
    /// The pod is terminal and was removed.
    Removed,
}

/// Default time an assumed pod whose binding finished may stay unconfirmed
/// by the informer before it is dropped.
pub const DEFAULT_ASSUMED_POD_TTL: Duration = Duration::from_secs(30);

const NO_SLOT: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct PodState {
    pod: Arc<PodInfo>,
    node: String,
    assumed: bool,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct ImageEntry {
    size: i64,
    nodes: HashSet<String>,
}

struct Inner {
    nodes: HashMap<String, Arc<NodeInfo>>,
    /// Every node's current generation, plus tombstones of removed nodes.
    by_generation: BTreeMap<u64, String>,
    tombstones: usize,
    pods: HashMap<String, PodState>,
    images: HashMap<String, ImageEntry>,
    epoch: u64,
    ttl: Duration,
    /// Stands in for a node in a snapshot while the cache changes it.
    placeholder: Arc<NodeInfo>,
}

/// Nodes and pods as the scheduler sees them. Thread-safe; cheap to share
/// behind an `Arc`.
///
/// ```
/// use std::sync::Arc;
/// use std::collections::BTreeMap;
/// use ketch_core::{ObjectMeta, Quantity, api::{Node, NodeStatus}};
/// use ketch_scheduler::cache::Cache;
/// use ketch_scheduler::framework::Snapshot;
/// let cache = Cache::new();
/// let node = Node {
///     metadata: ObjectMeta::cluster_named("n1"),
///     status: NodeStatus { allocatable: BTreeMap::from([("cpu".into(), Quantity::from("4"))]), ..Default::default() },
///     ..Default::default()
/// };
/// cache.add_node(Arc::new(node)).unwrap();
/// let mut snapshot = Snapshot::default();
/// assert_eq!(cache.update_snapshot(&mut snapshot), 1);
/// assert_eq!(snapshot.get("n1").unwrap().allocatable.milli_cpu, 4000);
/// assert_eq!(cache.update_snapshot(&mut snapshot), 0); // nothing changed, nothing copied
/// ```
pub struct Cache {
    inner: Mutex<Inner>,
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Cache")
            .field("nodes", &inner.nodes.len())
            .field("pods", &inner.pods.len())
            .finish()
    }
}

/// True when a bound pod no longer holds resources.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.phase,
        Some(PodPhase::Succeeded) | Some(PodPhase::Failed)
    )
}

impl Inner {
    /// Applies `f` to the node `name` (created empty if unknown), keeping the
    /// generation index current; drops the entry when it is left with
    /// neither a node object nor pods.
    fn mutate_node<R>(&mut self, name: &str, f: impl FnOnce(&mut NodeInfo) -> R) -> R {
        let info = self
            .nodes
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(NodeInfo::default()));
        let old = info.generation;
        let r = f(Arc::make_mut(info));
        let new = info.generation;
        let gone = info.node().is_none() && info.pods.is_empty();
        if new != old {
            if self.by_generation.get(&old).is_some_and(|n| n == name) {
                self.by_generation.remove(&old);
            }
            self.by_generation.insert(new, name.to_string());
        }
        if gone {
            self.nodes.remove(name);
            if self.by_generation.get(&new).is_some_and(|n| n == name) {
                self.by_generation.remove(&new);
            }
            self.by_generation
                .insert(next_generation(), name.to_string());
            self.tombstones += 1;
            self.prune_tombstones();
        }
        r
    }

    fn prune_tombstones(&mut self) {
        if self.tombstones <= 1024 || self.tombstones <= self.nodes.len() {
            return;
        }
        let nodes = &self.nodes;
        self.by_generation
            .retain(|g, name| nodes.get(name).is_some_and(|n| n.generation == *g));
        self.tombstones = 0;
        self.epoch += 1;
    }

    fn image_summary(&self, node: &Node) -> HashMap<String, ImageState> {
        let mut out = HashMap::new();
        for image in &node.status.images {
            for name in &image.names {
                if let Some(e) = self.images.get(name) {
                    out.insert(
                        name.clone(),
                        ImageState {
                            size_bytes: e.size,
                            num_nodes: e.nodes.len(),
                        },
                    );
                }
            }
        }
        out
    }

    fn add_images(&mut self, node: &Node) {
        let name = node.metadata.name();
        for image in &node.status.images {
            for n in &image.names {
                let e = self.images.entry(n.clone()).or_default();
                e.size = image.size_bytes.unwrap_or(0);
                e.nodes.insert(name.to_string());
            }
        }
    }

    fn remove_images(&mut self, node: &Node) {
        let name = node.metadata.name();
        for image in &node.status.images {
            for n in &image.names {
                if let Some(e) = self.images.get_mut(n) {
                    e.nodes.remove(name);
                    if e.nodes.is_empty() {
                        self.images.remove(n);
                    }
                }
            }
        }
    }

    fn add_pod_info(
        &mut self,
        pod: Arc<PodInfo>,
        node: &str,
        assumed: bool,
        deadline: Option<Instant>,
    ) {
        let key = pod.key.clone();
        self.mutate_node(node, |n| n.add_pod(pod.clone()));
        self.pods.insert(
            key,
            PodState {
                pod,
                node: node.to_string(),
                assumed,
                deadline,
            },
        );
    }

    fn remove_pod_state(&mut self, key: &str) -> Option<PodState> {
        let state = self.pods.remove(key)?;
        if self.nodes.contains_key(&state.node) {
            self.mutate_node(&state.node, |n| n.remove_pod(key));
        }
        Some(state)
    }
}

/// True when the two pods look the same to scheduling plugins.
fn same_for_scheduling(a: &Pod, b: &Pod) -> bool {
    a.metadata.labels == b.metadata.labels
        && a.metadata.deletion_timestamp == b.metadata.deletion_timestamp
        && a.status.start_time == b.status.start_time
        && a.spec == b.spec
}

impl Cache {
    /// An empty cache with the default assumed-pod TTL.
    pub fn new() -> Self {
        Self::with_ttl(DEFAULT_ASSUMED_POD_TTL)
    }

    /// An empty cache whose assumed pods expire `ttl` after their binding
    /// finished if the informer never confirms them.
    ///
    /// ```
    /// let cache = ketch_scheduler::cache::Cache::with_ttl(std::time::Duration::from_secs(5));
    /// assert_eq!(cache.node_count(), 0);
    /// ```
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                nodes: HashMap::new(),
                by_generation: BTreeMap::new(),
                tombstones: 0,
                pods: HashMap::new(),
                images: HashMap::new(),
                epoch: 1,
                ttl,
                placeholder: Arc::new(NodeInfo::default()),
            }),
        }
    }

    /// Adds a node (or replaces it, as [`Cache::update_node`]).
    pub fn add_node(&self, node: Arc<Node>) -> Result<(), CacheError> {
        self.update_node(node)
    }

    /// Replaces a node object; its pods stay.
    pub fn update_node(&self, node: Arc<Node>) -> Result<(), CacheError> {
        // Validate first so a bad node changes nothing.
        crate::framework::Resources::from_list(&node.status.allocatable)?;
        let mut inner = self.inner.lock();
        let name = node.metadata.name().to_string();
        if let Some(old) = inner.nodes.get(&name).and_then(|n| n.node().cloned()) {
            inner.remove_images(&old);
        }
        inner.add_images(&node);
        let images = inner.image_summary(&node);
        inner.mutate_node(&name, |info| {
            info.image_states = images;
            info.set_node(node)
        })?;
        Ok(())
    }

    /// Removes a node; pods still bound to it are kept until they are
    /// deleted, but the node leaves the snapshot.
    pub fn remove_node(&self, name: &str) {
        let mut inner = self.inner.lock();
        let Some(old) = inner.nodes.get(name).and_then(|n| n.node().cloned()) else {
            return;
        };
        inner.remove_images(&old);
        inner.mutate_node(name, |info| {
            info.image_states.clear();
            info.remove_node();
        });
    }

    /// The node an assumed pod names, and the cache locked with the pod
    /// known to be absent from it.
    fn lock_to_assume(
        &self,
        pod: &PodInfo,
    ) -> Result<(String, parking_lot::MutexGuard<'_, Inner>), CacheError> {
        let node = pod
            .pod
            .spec
            .node_name
            .clone()
            .ok_or_else(|| CacheError::NotAssigned(pod.key.clone()))?;
        let inner = self.inner.lock();
        if inner.pods.contains_key(&pod.key) {
            return Err(CacheError::AlreadyPresent(pod.key.clone()));
        }
        Ok((node, inner))
    }

    /// Counts an assumed pod on its node at once. `pod.pod.spec.node_name`
    /// must be set (the assumed copy).
    pub fn assume_pod(&self, pod: Arc<PodInfo>) -> Result<(), CacheError> {
        let (node, mut inner) = self.lock_to_assume(&pod)?;
        inner.add_pod_info(pod, &node, true, None);
        Ok(())
    }

    /// [`Cache::assume_pod`] for the scheduling loop, which owns `snapshot`:
    /// the snapshot lets go of the node while the cache adds the pod, so the
    /// node is changed in place instead of copied (copying a node costs
    /// O(pods on it), which adds up when thousands of pods land on one node),
    /// then gets the changed node back.
    pub fn assume_pod_in(
        &self,
        pod: Arc<PodInfo>,
        snapshot: &mut Snapshot,
    ) -> Result<(), CacheError> {
        let (node, mut inner) = self.lock_to_assume(&pod)?;
        let slot = snapshot.index.get(&node).copied();
        if let Some(i) = slot {
            snapshot.nodes[i] = inner.placeholder.clone();
        }
        inner.add_pod_info(pod, &node, true, None);
        if let Some(i) = slot {
            snapshot.nodes[i] = inner
                .nodes
                .get(&node)
                .cloned()
                .unwrap_or_else(|| inner.placeholder.clone());
            snapshot.generations[i] = snapshot.nodes[i].generation;
        }
        Ok(())
    }

    /// The bind of an assumed pod finished: it now expires after the TTL
    /// unless the informer confirms it.
    pub fn finish_binding(&self, key: &str) {
        self.finish_binding_at(key, Instant::now());
    }

    /// [`Cache::finish_binding`] at a given instant (for tests).
    pub fn finish_binding_at(&self, key: &str, now: Instant) {
        let mut inner = self.inner.lock();
        let ttl = inner.ttl;
        if let Some(s) = inner.pods.get_mut(key)
            && s.assumed
        {
            s.deadline = Some(now + ttl);
        }
    }

    /// Drops an assumed pod (its bind failed).
    pub fn forget_pod(&self, key: &str) {
        let mut inner = self.inner.lock();
        if inner.pods.get(key).is_some_and(|s| s.assumed) {
            inner.remove_pod_state(key);
        }
    }

    /// Adds or updates a bound pod seen by the informer; confirms it when it
    /// was assumed. Terminal pods are removed instead.
    pub fn add_pod(&self, pod: Arc<Pod>) -> Result<PodChange, CacheError> {
        self.update_pod(pod)
    }

    /// See [`Cache::add_pod`].
    pub fn update_pod(&self, pod: Arc<Pod>) -> Result<PodChange, CacheError> {
        let key = format!("{}/{}", pod.metadata.namespace(), pod.metadata.name());
        if is_terminal(&pod) {
            self.remove_pod(&key);
            return Ok(PodChange::Removed);
        }
        let node = pod
            .spec
            .node_name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| CacheError::NotAssigned(key.clone()))?;
        let mut inner = self.inner.lock();
        let previous = inner.pods.get_mut(&key);
        let was_assumed = previous.as_ref().is_some_and(|s| s.assumed);
        let known = previous.is_some();
        if let Some(state) = previous
            && state.node == node
            && same_for_scheduling(&state.pod.pod, &pod)
        {
            // Confirmed (or an update plugins cannot see): keep the node as
            // it is, so the snapshot copies nothing.
            state.assumed = false;
            state.deadline = None;
            return Ok(if was_assumed {
                PodChange::Confirmed
            } else {
                PodChange::Unchanged
            });
        }
        let info = Arc::new(PodInfo::new(pod)?);
        inner.remove_pod_state(&key);
        inner.add_pod_info(info, &node, false, None);
        Ok(match (known, was_assumed) {
            (false, _) => PodChange::Added,
            (true, true) => PodChange::Confirmed,
            (true, false) => PodChange::Updated,
        })
    }

    /// Removes a pod (deleted, or terminal).
    pub fn remove_pod(&self, key: &str) -> Option<Arc<PodInfo>> {
        self.inner.lock().remove_pod_state(key).map(|s| s.pod)
    }

    /// Drops assumed pods whose binding finished more than the TTL ago and
    /// that the informer never confirmed; returns their keys.
    pub fn cleanup_expired(&self, now: Instant) -> Vec<String> {
        let mut inner = self.inner.lock();
        let expired: Vec<String> = inner
            .pods
            .iter()
            .filter(|(_, s)| s.assumed && s.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            tracing::warn!(pod = %k, "assumed pod expired without its binding being observed");
            inner.remove_pod_state(k);
        }
        expired
    }

    /// True if the pod is assumed and not yet confirmed.
    pub fn is_assumed(&self, key: &str) -> bool {
        self.inner.lock().pods.get(key).is_some_and(|s| s.assumed)
    }

    /// True if the pod is in the cache (assumed or bound).
    pub fn contains_pod(&self, key: &str) -> bool {
        self.inner.lock().pods.contains_key(key)
    }

    /// The pod and the node it is counted on.
    pub fn pod(&self, key: &str) -> Option<(Arc<PodInfo>, String)> {
        self.inner
            .lock()
            .pods
            .get(key)
            .map(|s| (s.pod.clone(), s.node.clone()))
    }

    /// A node by name (including one known only from its pods).
    pub fn node_info(&self, name: &str) -> Option<Arc<NodeInfo>> {
        self.inner.lock().nodes.get(name).cloned()
    }

    /// The node object, if known.
    pub fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.inner
            .lock()
            .nodes
            .get(name)
            .and_then(|n| n.node().cloned())
    }

    /// Nodes with a node object.
    pub fn node_count(&self) -> usize {
        self.inner
            .lock()
            .nodes
            .values()
            .filter(|n| n.node().is_some())
            .count()
    }

    /// Pods in the cache, bound or assumed.
    pub fn pod_count(&self) -> usize {
        self.inner.lock().pods.len()
    }

    /// Assumed pods not yet confirmed.
    pub fn assumed_count(&self) -> usize {
        self.inner
            .lock()
            .pods
            .values()
            .filter(|s| s.assumed)
            .count()
    }

    /// Brings `snapshot` up to date and returns how many nodes were
    /// refreshed (copied in or removed). Only nodes whose generation moved
    /// since the snapshot's are touched; a snapshot built elsewhere (or after
    /// the cache compacted its removal log) is rebuilt in full.
    pub fn update_snapshot(&self, snapshot: &mut Snapshot) -> usize {
        let inner = self.inner.lock();
        if snapshot.epoch != inner.epoch {
            return rebuild(&inner, snapshot);
        }
        let mut touched = 0;
        let mut last = snapshot.generation;
        for (&g, name) in inner
            .by_generation
            .range(snapshot.generation.saturating_add(1)..)
        {
            last = g;
            touched += 1;
            match inner.nodes.get(name) {
                Some(info) if info.node().is_some() => upsert(snapshot, info),
                _ => remove(snapshot, name),
            }
        }
        snapshot.generation = last;
        touched
    }
}

fn rebuild(inner: &Inner, snapshot: &mut Snapshot) -> usize {
    snapshot.nodes.clear();
    snapshot.generations.clear();
    snapshot.index.clear();
    snapshot.with_affinity.clear();
    snapshot.with_required_anti_affinity.clear();
    snapshot.affinity_slot.clear();
    snapshot.anti_affinity_slot.clear();
    let mut names: Vec<&String> = inner
        .nodes
        .iter()
        .filter(|(_, n)| n.node().is_some())
        .map(|(k, _)| k)
        .collect();
    names.sort_unstable();
    for name in names {
        upsert(snapshot, &inner.nodes[name]);
    }
    snapshot.generation = inner.by_generation.keys().next_back().copied().unwrap_or(0);
    snapshot.epoch = inner.epoch;
    snapshot.nodes.len()
}

/// Keeps `info`'s membership in one of the with-affinity lists current.
fn set_membership(
    list: &mut Vec<Arc<NodeInfo>>,
    slots: &mut [u32],
    index: &HashMap<String, usize>,
    idx: usize,
    info: Option<&Arc<NodeInfo>>,
) {
    let slot = slots[idx];
    match (info, slot) {
        (Some(info), NO_SLOT) => {
            slots[idx] = list.len() as u32;
            list.push(info.clone());
        }
        (Some(info), s) => list[s as usize] = info.clone(),
        (None, NO_SLOT) => {}
        (None, s) => {
            let s = s as usize;
            list.swap_remove(s);
            slots[idx] = NO_SLOT;
            if let Some(moved) = list.get(s)
                && let Some(&mi) = index.get(moved.name())
            {
                slots[mi] = s as u32;
            }
        }
    }
}

fn upsert(snapshot: &mut Snapshot, info: &Arc<NodeInfo>) {
    let idx = match snapshot.index.get(info.name()) {
        Some(&i) => {
            snapshot.nodes[i] = info.clone();
            snapshot.generations[i] = info.generation;
            i
        }
        None => {
            let i = snapshot.nodes.len();
            snapshot.nodes.push(info.clone());
            snapshot.generations.push(info.generation);
            snapshot.index.insert(info.name().to_string(), i);
            snapshot.affinity_slot.push(NO_SLOT);
            snapshot.anti_affinity_slot.push(NO_SLOT);
            i
        }
    };
    let aff = (!info.pods_with_affinity.is_empty()).then_some(info);
    set_membership(
        &mut snapshot.with_affinity,
        &mut snapshot.affinity_slot,
        &snapshot.index,
        idx,
        aff,
    );
    let anti = (!info.pods_with_required_anti_affinity.is_empty()).then_some(info);
    set_membership(
        &mut snapshot.with_required_anti_affinity,
        &mut snapshot.anti_affinity_slot,
        &snapshot.index,
        idx,
        anti,
    );
}

fn remove(snapshot: &mut Snapshot, name: &str) {
    let Some(idx) = snapshot.index.get(name).copied() else {
        return;
    };
    set_membership(
        &mut snapshot.with_affinity,
        &mut snapshot.affinity_slot,
        &snapshot.index,
        idx,
        None,
    );
    set_membership(
        &mut snapshot.with_required_anti_affinity,
        &mut snapshot.anti_affinity_slot,
        &snapshot.index,
        idx,
        None,
    );
    snapshot.index.remove(name);
    snapshot.nodes.swap_remove(idx);
    snapshot.generations.swap_remove(idx);
    snapshot.affinity_slot.swap_remove(idx);
    snapshot.anti_affinity_slot.swap_remove(idx);
    if let Some(moved) = snapshot.nodes.get(idx) {
        let moved_name = moved.name().to_string();
        snapshot.index.insert(moved_name, idx);
    }
}

#[cfg(test)]
mod tests;
