//! What the scheduler knows about pods and nodes: [`Resources`], [`PodInfo`],
//! [`NodeInfo`] and the per-cycle [`Snapshot`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::labels::NodeLabels;
use ketch_core::Quantity;
use ketch_core::api::{Node, Pod, Protocol, TaintEffect};

/// Default CPU request, in millicores, assumed for scoring a container without one.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Default memory request, in bytes, assumed for scoring a container without one.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Resource names with their own fields in [`Resources`].
pub mod resource_names {
    /// CPU, in millicores.
    pub const CPU: &str = "cpu";
    /// Memory, in bytes.
    pub const MEMORY: &str = "memory";
    /// Ephemeral storage, in bytes.
    pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
    /// Number of pods a node accepts.
    pub const PODS: &str = "pods";
}

/// A resource quantity that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{resource}: invalid quantity {quantity:?}: {message}")]
pub struct ResourceError {
    /// Resource name, e.g. `cpu`.
    pub resource: String,
    /// The quantity as written.
    pub quantity: String,
    /// What is wrong.
    pub message: String,
}

/// Amounts of resources in scheduler units: millicores, bytes, counts.
///
/// ```
/// use std::collections::BTreeMap;
/// use ketch_core::Quantity;
/// use ketch_scheduler::framework::Resources;
/// let list = BTreeMap::from([("cpu".to_string(), Quantity::from("250m")), ("example.com/gpu".to_string(), Quantity::from("2"))]);
/// let r = Resources::from_list(&list).unwrap();
/// assert_eq!(r.milli_cpu, 250);
/// assert_eq!(r.scalar("example.com/gpu"), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Pod count (for allocatable: how many pods fit).
    pub allowed_pod_number: i64,
    /// Extended resources such as `example.com/gpu`, sorted by name.
    pub scalars: Vec<(String, i64)>,
}

impl Resources {
    /// Reads a Kubernetes resource list (`requests`, `limits`, `allocatable`).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Result<Self, ResourceError> {
        let mut r = Resources::default();
        for (name, q) in list {
            let err = |e: String| ResourceError {
                resource: name.clone(),
                quantity: q.0.clone(),
                message: e,
            };
            match name.as_str() {
                resource_names::CPU => {
                    r.milli_cpu = q.milli_value().map_err(|e| err(e.to_string()))?
                }
                resource_names::MEMORY => r.memory = q.value().map_err(|e| err(e.to_string()))?,
                resource_names::EPHEMERAL_STORAGE => {
                    r.ephemeral_storage = q.value().map_err(|e| err(e.to_string()))?
                }
                resource_names::PODS => {
                    r.allowed_pod_number = q.value().map_err(|e| err(e.to_string()))?
                }
                other => {
                    let v = q.value().map_err(|e| err(e.to_string()))?;
                    r.add_scalar(other, v);
                }
            }
        }
        Ok(r)
    }

    /// The amount of an extended resource (0 if absent).
    pub fn scalar(&self, name: &str) -> i64 {
        match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalars[i].1,
            Err(_) => 0,
        }
    }

    /// Adds `amount` of an extended resource.
    pub fn add_scalar(&mut self, name: &str, amount: i64) {
        match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalars[i].1 += amount,
            Err(i) => self.scalars.insert(i, (name.to_string(), amount)),
        }
    }

    /// Adds every amount of `other`.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (name, v) in &other.scalars {
            self.add_scalar(name, *v);
        }
    }

    /// Subtracts every amount of `other`.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (name, v) in &other.scalars {
            self.add_scalar(name, -*v);
        }
    }

    /// Raises each amount to at least the one in `other`.
    pub fn set_max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (name, v) in &other.scalars {
            let cur = self.scalar(name);
            if *v > cur {
                self.add_scalar(name, *v - cur);
            }
        }
    }

    /// The amount of a resource by name (`cpu`, `memory`, `pods`, ...).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            resource_names::CPU => self.milli_cpu,
            resource_names::MEMORY => self.memory,
            resource_names::EPHEMERAL_STORAGE => self.ephemeral_storage,
            resource_names::PODS => self.allowed_pod_number,
            other => self.scalar(other),
        }
    }
}

/// A pod with what the scheduler computes from it once: its resource requests
/// and affinity flags. Shared as `Arc<PodInfo>` between the queue, the cache
/// and every snapshot.
#[derive(Clone, Debug)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    /// Effective requests: the sum over containers, raised to the largest
    /// init container, plus one pod.
    pub requests: Resources,
    /// CPU and memory requests with defaults for containers that set none
    /// ([`DEFAULT_MILLI_CPU_REQUEST`], [`DEFAULT_MEMORY_REQUEST`]); used by scoring.
    pub non_zero_milli_cpu: i64,
    /// See `non_zero_milli_cpu`.
    pub non_zero_memory: i64,
    /// Host ports the pod claims: (host IP, protocol, port).
    pub host_ports: Vec<(String, Protocol, i32)>,
    /// The pod has pod affinity or anti-affinity terms.
    pub has_affinity: bool,
    /// The pod has required anti-affinity terms.
    pub has_required_anti_affinity: bool,
}

impl PodInfo {
    /// Computes the scheduler's view of a pod.
    pub fn new(pod: Arc<Pod>) -> Result<Self, ResourceError> {
        let spec = &pod.spec;
        let mut requests = Resources::default();
        let (mut nz_cpu, mut nz_mem) = (0, 0);
        let mut host_ports = Vec::new();
        for c in &spec.containers {
            let r = match &c.resources {
                Some(res) => Resources::from_list(&res.requests)?,
                None => Resources::default(),
            };
            let has = |n: &str| {
                c.resources
                    .as_ref()
                    .is_some_and(|res| res.requests.contains_key(n))
            };
            nz_cpu += if has(resource_names::CPU) {
                r.milli_cpu
            } else {
                DEFAULT_MILLI_CPU_REQUEST
            };
            nz_mem += if has(resource_names::MEMORY) {
                r.memory
            } else {
                DEFAULT_MEMORY_REQUEST
            };
            requests.add(&r);
            for p in &c.ports {
                if let Some(hp) = p.host_port.filter(|hp| *hp > 0) {
                    let ip = p
                        .host_ip
                        .clone()
                        .filter(|ip| !ip.is_empty())
                        .unwrap_or_else(|| "0.0.0.0".to_string());
                    host_ports.push((ip, p.protocol.unwrap_or(Protocol::TCP), hp));
                }
            }
        }
        for c in &spec.init_containers {
            if let Some(res) = &c.resources {
                requests.set_max(&Resources::from_list(&res.requests)?);
            }
        }
        requests.allowed_pod_number = 1;
        let affinity = spec.affinity.as_ref();
        let has_affinity_terms = |terms: usize, preferred: usize| terms + preferred > 0;
        let pod_aff = affinity.and_then(|a| a.pod_affinity.as_ref());
        let anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let has_affinity = pod_aff.is_some_and(|p| {
            has_affinity_terms(
                p.required_during_scheduling_ignored_during_execution.len(),
                p.preferred_during_scheduling_ignored_during_execution.len(),
            )
        }) || anti.is_some_and(|p| {
            has_affinity_terms(
                p.required_during_scheduling_ignored_during_execution.len(),
                p.preferred_during_scheduling_ignored_during_execution.len(),
            )
        });
        let has_required_anti_affinity = anti.is_some_and(|p| {
            !p.required_during_scheduling_ignored_during_execution
                .is_empty()
        });
        let key = format!("{}/{}", pod.metadata.namespace(), pod.metadata.name());
        Ok(Self {
            pod,
            key,
            requests,
            non_zero_milli_cpu: nz_cpu,
            non_zero_memory: nz_mem,
            host_ports,
            has_affinity,
            has_required_anti_affinity,
        })
    }

    /// The pod's priority (0 when unset).
    pub fn priority(&self) -> i32 {
        self.pod.spec.priority.unwrap_or(0)
    }
}

/// Cluster-wide facts about one image on a node, for image locality.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageState {
    /// Size of the image in bytes.
    pub size_bytes: i64,
    /// On how many nodes the image is present.
    pub num_nodes: usize,
}

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// A fresh, process-wide increasing generation number.
pub fn next_generation() -> u64 {
    NEXT_GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// Facts about a node object that the filters and scorers of every cycle
/// read, kept inline in [`NodeInfo`] so the common case (a schedulable node
/// without taints) is decided without following the pointer to the node
/// object.
///
/// ```
/// use std::sync::Arc;
/// use ketch_core::api::{Node, NodeSpec, Taint, TaintEffect};
/// use ketch_scheduler::framework::NodeInfo;
/// let node = Node {
///     spec: NodeSpec {
///         unschedulable: Some(true),
///         taints: vec![Taint { key: "k".into(), value: None, effect: TaintEffect::PreferNoSchedule, time_added: None }],
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// let flags = NodeInfo::new(Arc::new(node)).unwrap().flags();
/// assert!(flags.unschedulable && flags.soft_taints && !flags.hard_taints);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeFlags {
    /// `spec.unschedulable` is set (the node is cordoned).
    pub unschedulable: bool,
    /// The node has a `NoSchedule` or `NoExecute` taint.
    pub hard_taints: bool,
    /// The node has a `PreferNoSchedule` taint.
    pub soft_taints: bool,
}

impl NodeFlags {
    /// The flags of a node object.
    pub fn of(node: &Node) -> Self {
        let has =
            |effects: &[TaintEffect]| node.spec.taints.iter().any(|t| effects.contains(&t.effect));
        Self {
            unschedulable: node.spec.unschedulable.unwrap_or(false),
            hard_taints: has(&[TaintEffect::NoSchedule, TaintEffect::NoExecute]),
            soft_taints: has(&[TaintEffect::PreferNoSchedule]),
        }
    }
}

/// A node with the pods on it (bound or assumed) and their summed requests.
///
/// The fields every Filter and Score of a cycle reads come first and are
/// laid out in declaration order, so that a node costs a cycle as few cache
/// lines as possible: past a few thousand nodes most node infos are out of
/// cache when a cycle reaches them.
#[derive(Clone, Debug, Default)]
#[repr(C, align(64))]
pub struct NodeInfo {
    node: Option<Arc<Node>>,
    flags: NodeFlags,
    /// Sum of the pods' requests (pods counted in `allowed_pod_number`).
    pub requested: Resources,
    /// What the node offers to pods.
    pub allocatable: Resources,
    /// Sum of the pods' requests with scoring defaults for unset cpu/memory.
    pub non_zero_requested: Resources,
    /// Pods on the node, bound or assumed.
    pub pods: Vec<Arc<PodInfo>>,
    /// Images on the node by name, with cluster-wide spread.
    pub image_states: HashMap<String, ImageState>,
    /// Changes on every update; snapshots copy only nodes whose generation moved.
    pub generation: u64,
    labels: NodeLabels,
    /// The pods that have pod affinity or anti-affinity terms.
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    /// The pods that have required anti-affinity terms.
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    /// Host ports in use: (host IP, protocol, port).
    pub used_ports: Vec<(String, Protocol, i32)>,
}

impl NodeInfo {
    /// A node info for `node` with no pods.
    pub fn new(node: Arc<Node>) -> Result<Self, ResourceError> {
        let mut info = NodeInfo::default();
        info.set_node(node)?;
        Ok(info)
    }

    /// The node, if known (pods may arrive before their node).
    pub fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// The node's labels as interned ids (none while the node is not
    /// known): `labels().get(key)` finds a topology domain without
    /// searching the label map.
    pub fn labels(&self) -> &NodeLabels {
        &self.labels
    }

    /// Facts about the node object read on every cycle (all false while the
    /// node is not known).
    pub fn flags(&self) -> NodeFlags {
        self.flags
    }

    /// The node's name (`""` if the node is not known yet).
    pub fn name(&self) -> &str {
        self.node.as_ref().map(|n| n.metadata.name()).unwrap_or("")
    }

    /// Sets or replaces the node object and recomputes allocatable.
    pub fn set_node(&mut self, node: Arc<Node>) -> Result<(), ResourceError> {
        self.allocatable = Resources::from_list(&node.status.allocatable)?;
        self.flags = NodeFlags::of(&node);
        self.labels = NodeLabels::of(&node.metadata.labels);
        self.node = Some(node);
        self.generation = next_generation();
        Ok(())
    }

    /// Forgets the node object, keeping its pods (they may still be deleted).
    pub fn remove_node(&mut self) {
        self.node = None;
        self.flags = NodeFlags::default();
        self.labels = NodeLabels::default();
        self.generation = next_generation();
    }

    /// Adds a pod and its requests.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.milli_cpu += pod.non_zero_milli_cpu;
        self.non_zero_requested.memory += pod.non_zero_memory;
        self.non_zero_requested.allowed_pod_number += 1;
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity {
            self.pods_with_affinity.push(pod.clone());
        }
        if pod.has_required_anti_affinity {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.pods.push(pod);
        self.generation = next_generation();
    }

    /// Removes the pod with `key` (`namespace/name`); returns it if it was here.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let i = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(i);
        self.pods_with_affinity.retain(|p| p.key != key);
        self.pods_with_required_anti_affinity
            .retain(|p| p.key != key);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.milli_cpu -= pod.non_zero_milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero_memory;
        self.non_zero_requested.allowed_pod_number -= 1;
        for port in &pod.host_ports {
            if let Some(j) = self.used_ports.iter().position(|p| p == port) {
                self.used_ports.swap_remove(j);
            }
        }
        self.generation = next_generation();
        Some(pod)
    }

    /// True if a host port (ip, protocol, port) conflicts with one in use:
    /// same protocol and port, and same IP or either is `0.0.0.0`.
    pub fn port_conflicts(&self, ip: &str, protocol: Protocol, port: i32) -> bool {
        self.used_ports.iter().any(|(uip, uproto, uport)| {
            *uport == port
                && *uproto == protocol
                && (uip == ip || uip == "0.0.0.0" || ip == "0.0.0.0")
        })
    }
}

/// An immutable view of every node for one scheduling cycle. Nodes are shared
/// `Arc<NodeInfo>`s; the cache refreshes only nodes whose generation moved.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub(crate) nodes: Vec<Arc<NodeInfo>>,
    /// Per node index: the node's generation (kept beside `nodes` so
    /// plugins can find changed nodes without touching every `NodeInfo`).
    pub(crate) generations: Vec<u64>,
    pub(crate) index: HashMap<String, usize>,
    pub(crate) with_affinity: Vec<Arc<NodeInfo>>,
    pub(crate) with_required_anti_affinity: Vec<Arc<NodeInfo>>,
    pub(crate) generation: u64,
    /// Per node index: position in `with_affinity` (`u32::MAX`: absent).
    pub(crate) affinity_slot: Vec<u32>,
    /// Per node index: position in `with_required_anti_affinity`.
    pub(crate) anti_affinity_slot: Vec<u32>,
    /// The cache layout this snapshot follows; a mismatch forces a rebuild.
    pub(crate) epoch: u64,
}

impl Snapshot {
    /// A snapshot of the given nodes (for tests and simulations).
    pub fn from_nodes(nodes: Vec<NodeInfo>) -> Self {
        let nodes: Vec<Arc<NodeInfo>> = nodes.into_iter().map(Arc::new).collect();
        let generations = nodes.iter().map(|n| n.generation).collect();
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
        let with_affinity = nodes
            .iter()
            .filter(|n| !n.pods_with_affinity.is_empty())
            .cloned()
            .collect();
        let with_required_anti_affinity = nodes
            .iter()
            .filter(|n| !n.pods_with_required_anti_affinity.is_empty())
            .cloned()
            .collect();
        Self {
            nodes,
            generations,
            index,
            with_affinity,
            with_required_anti_affinity,
            generation: 0,
            affinity_slot: Vec::new(),
            anti_affinity_slot: Vec::new(),
            epoch: 0,
        }
    }

    /// Every node.
    pub fn nodes(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }

    /// Every node's generation, in the order of [`Snapshot::nodes`]: a
    /// plugin that keeps per-node data across cycles compares these (a
    /// contiguous scan) to find the nodes that changed or moved, since
    /// generations are unique process-wide.
    pub fn node_generations(&self) -> &[u64] {
        &self.generations
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A node by name.
    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// Nodes that run at least one pod with affinity or anti-affinity terms.
    pub fn nodes_with_affinity_pods(&self) -> &[Arc<NodeInfo>] {
        &self.with_affinity
    }

    /// Nodes that run at least one pod with required anti-affinity terms.
    pub fn nodes_with_required_anti_affinity_pods(&self) -> &[Arc<NodeInfo>] {
        &self.with_required_anti_affinity
    }

    /// The highest node generation this snapshot reflects.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}
