//! The [`Framework`]: one profile's plugins, run extension point by extension
//! point. It finds feasible nodes (in parallel, stopping after enough of
//! them, starting where the previous cycle stopped), scores them, picks the
//! best, and runs Reserve, Permit and the binding points.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ketch_core::Client;
use parking_lot::Mutex;
use smallvec::SmallVec;

use super::{
    BindPlugin, Code, CycleState, ExtensionPoint, FilterPlugin, FrameworkHandle, NodeInfo,
    NodeScore, NodeToStatus, PermitPlugin, Plugin, PluginContext, PluginError, PodInfo,
    PostFilterResult, PreFilterResult, ProfileConfig, QueueSortPlugin, Registry, ScorePlugin,
    Snapshot, Status,
};
use super::{ClusterEvent, MAX_NODE_SCORE};

/// Below this many nodes every node is evaluated.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never goes below this.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;
/// The longest a Permit plugin may make a pod wait.
pub const MAX_PERMIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How many feasible nodes a cycle looks for before it stops filtering, as
/// kube-scheduler computes it: every node below 100 nodes; otherwise
/// `percentage` of them (adaptive when `None`: `max(5, 50 - nodes/125)`),
/// but at least 100.
///
/// ```
/// use ketch_scheduler::framework::num_feasible_nodes_to_find;
/// assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
/// assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
/// assert_eq!(num_feasible_nodes_to_find(None, 15000), 750);
/// assert_eq!(num_feasible_nodes_to_find(Some(100), 5000), 5000);
/// assert_eq!(num_feasible_nodes_to_find(Some(1), 5000), 100);
/// ```
pub fn num_feasible_nodes_to_find(percentage: Option<u32>, num_all_nodes: usize) -> usize {
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all_nodes;
    }
    let percentage = match percentage {
        Some(p) if p > 0 => (p as usize).min(100),
        _ => 50usize
            .saturating_sub(num_all_nodes / 125)
            .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
    };
    (num_all_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Where to look for pods nominated to a node (the scheduling queue), so
/// filtering can account for pods that preempted their way onto it.
pub trait PodNominator: Send + Sync {
    /// Pods nominated to `node_name`, not yet bound.
    fn nominated_pods_for_node(&self, node_name: &str) -> Vec<Arc<PodInfo>>;
    /// True if any pod is nominated anywhere (a cheap check before the
    /// per-node lookups).
    fn has_nominated_pods(&self) -> bool;
    /// Every nomination: a node name with the pods nominated to it.
    fn nominations(&self) -> Vec<(String, Vec<Arc<PodInfo>>)>;
}

/// The successful outcome of [`Framework::schedule_pod`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleResult {
    /// The chosen node.
    pub suggested_host: String,
    /// Nodes filtered in this cycle.
    pub evaluated_nodes: usize,
    /// Nodes found feasible (and scored).
    pub feasible_nodes: usize,
}

/// Why no node fits, per node and per plugin.
#[derive(Clone, Debug, Default)]
pub struct Diagnosis {
    /// Every rejected node's status (and the status of nodes excluded by
    /// PreFilter narrowing as `absent`).
    pub node_to_status: NodeToStatus,
    /// Plugins that rejected the pod: the queue waits for their events.
    pub unschedulable_plugins: HashSet<&'static str>,
    /// Set when a PreFilter plugin rejected the pod outright.
    pub pre_filter_msg: Option<String>,
    /// What PostFilter (preemption) reported.
    pub post_filter_msg: Option<String>,
}

/// No node fits the pod.
#[derive(Clone, Debug)]
pub struct FitError {
    /// `namespace/name` of the pod.
    pub pod_key: String,
    /// Nodes in the snapshot.
    pub num_all_nodes: usize,
    /// Why.
    pub diagnosis: Diagnosis,
}

impl FitError {
    /// The reasons counted over nodes, most frequent first (ties by reason):
    /// `[(4800, "Insufficient cpu"), (200, "node(s) had untolerated taint {dedicated: gpu}")]`.
    pub fn reason_histogram(&self) -> Vec<(usize, String)> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let nts = &self.diagnosis.node_to_status;
        for (_, status) in &nts.rejected {
            for r in status.reasons() {
                *counts.entry(r.as_ref()).or_default() += 1;
            }
        }
        if let Some(absent) = &nts.absent {
            let n = self.num_all_nodes.saturating_sub(nts.rejected.len());
            if n > 0 {
                for r in absent.reasons() {
                    *counts.entry(r.as_ref()).or_default() += n;
                }
            }
        }
        let mut out: Vec<(usize, String)> = counts
            .into_iter()
            .map(|(r, n)| (n, r.to_string()))
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        out
    }
}

impl fmt::Display for FitError {
    /// `0/5000 nodes are available: 4800 Insufficient cpu, 200 node(s) had
    /// untolerated taint {dedicated: gpu}.` followed by the PostFilter
    /// outcome when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        if let Some(msg) = &self.diagnosis.pre_filter_msg {
            write!(f, " {msg}.")?;
        } else {
            let hist = self.reason_histogram();
            if !hist.is_empty() {
                f.write_str(" ")?;
                for (i, (n, r)) in hist.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n} {r}")?;
                }
                f.write_str(".")?;
            }
        }
        if let Some(msg) = &self.diagnosis.post_filter_msg {
            write!(f, " {}.", msg.trim_end_matches('.'))?;
        }
        Ok(())
    }
}

impl std::error::Error for FitError {}

/// Why a scheduling cycle produced no node.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No node fits; the pod waits for a relevant cluster event.
    #[error("{0}")]
    Unschedulable(Box<FitError>),
    /// A plugin failed; the pod is retried with backoff.
    #[error("{0}")]
    Error(Status),
}

/// A pod held at Permit, and the handle plugins use to allow or reject it.
pub struct WaitingPod {
    pod: Arc<PodInfo>,
    node_name: String,
    inner: Mutex<WaitingInner>,
    done: tokio::sync::Notify,
}

struct WaitingInner {
    pending: Vec<(&'static str, Instant)>,
    result: Option<Status>,
}

impl fmt::Debug for WaitingPod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitingPod")
            .field("pod", &self.pod.key)
            .field("node", &self.node_name)
            .finish_non_exhaustive()
    }
}

impl WaitingPod {
    /// The pod.
    pub fn pod(&self) -> &Arc<PodInfo> {
        &self.pod
    }

    /// The node the pod is reserved on.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Plugins that have not allowed the pod yet.
    pub fn pending_plugins(&self) -> Vec<&'static str> {
        self.inner.lock().pending.iter().map(|(p, _)| *p).collect()
    }

    /// `plugin` allows the pod; it binds once every waiting plugin allowed.
    pub fn allow(&self, plugin: &str) {
        let mut inner = self.inner.lock();
        inner.pending.retain(|(p, _)| *p != plugin);
        if inner.pending.is_empty() && inner.result.is_none() {
            inner.result = Some(Status::success());
            self.done.notify_one();
        }
    }

    /// `plugin` rejects the pod with a message; it is unreserved and requeued.
    pub fn reject(&self, plugin: &'static str, message: &str) {
        let mut inner = self.inner.lock();
        if inner.result.is_none() {
            inner.result = Some(Status::unschedulable(message.to_string()).with_plugin(plugin));
            self.done.notify_one();
        }
    }

    async fn wait(&self) -> Status {
        loop {
            let notified = self.done.notified();
            let deadline = {
                let mut inner = self.inner.lock();
                if let Some(result) = &inner.result {
                    return result.clone();
                }
                let now = Instant::now();
                if let Some((plugin, _)) = inner.pending.iter().find(|(_, d)| *d <= now) {
                    let plugin = *plugin;
                    let status = Status::unschedulable(format!(
                        "rejected due to timeout after waiting at plugin {plugin}"
                    ))
                    .with_plugin(plugin);
                    inner.result = Some(status.clone());
                    return status;
                }
                inner.pending.iter().map(|(_, d)| *d).min()
            };
            match deadline {
                Some(d) => {
                    let _ = tokio::time::timeout_at(d.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }
}

/// Pods waiting at Permit, by `namespace/name`. Permit plugins find it in
/// the [`CycleState`] (`state.read::<WaitingPods>()`) during `permit`, keep
/// a clone, and allow or reject waiting pods later.
///
/// ```
/// use ketch_scheduler::framework::WaitingPods;
/// let waiting = WaitingPods::default();
/// assert!(waiting.get("default/web").is_none());
/// assert!(waiting.is_empty());
/// ```
#[derive(Clone, Default)]
pub struct WaitingPods {
    pods: Arc<Mutex<HashMap<String, Arc<WaitingPod>>>>,
}

impl fmt::Debug for WaitingPods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitingPods")
            .field("len", &self.pods.lock().len())
            .finish()
    }
}

impl WaitingPods {
    /// The waiting pod with this key.
    pub fn get(&self, key: &str) -> Option<Arc<WaitingPod>> {
        self.pods.lock().get(key).cloned()
    }

    /// Every waiting pod.
    pub fn list(&self) -> Vec<Arc<WaitingPod>> {
        self.pods.lock().values().cloned().collect()
    }

    /// Number of waiting pods.
    pub fn len(&self) -> usize {
        self.pods.lock().len()
    }

    /// True if no pod waits.
    pub fn is_empty(&self) -> bool {
        self.pods.lock().is_empty()
    }

    fn insert(&self, pod: Arc<WaitingPod>) {
        self.pods.lock().insert(pod.pod.key.clone(), pod);
    }

    fn remove(&self, key: &str) -> Option<Arc<WaitingPod>> {
        self.pods.lock().remove(key)
    }
}

type Entry = Arc<dyn Plugin>;

/// One profile's plugins, ready to run. Built from a [`ProfileConfig`] and a
/// [`Registry`]; one per `schedulerName`.
///
/// ```
/// use ketch_scheduler::framework::{Framework, PluginContext, PluginEntry, ProfileConfig, PluginError, Registry};
/// fn build(registry: &Registry, ctx: &PluginContext) -> Result<Framework, PluginError> {
///     let profile = ProfileConfig {
///         scheduler_name: "default-scheduler".into(),
///         plugins: vec![PluginEntry::new("PrioritySort"), PluginEntry::new("DefaultBinder")],
///         disabled: vec![],
///         percentage_of_nodes_to_score: None,
///     };
///     Framework::new(&profile, registry, ctx)
/// }
/// ```
pub struct Framework {
    profile_name: String,
    client: Arc<dyn Client>,
    plugins: Vec<Entry>,
    queue_sort: Entry,
    pre_filter: Vec<Entry>,
    filter: Vec<Entry>,
    post_filter: Vec<Entry>,
    pre_score: Vec<Entry>,
    score: Vec<(Entry, i64)>,
    reserve: Vec<Entry>,
    permit: Vec<Entry>,
    pre_bind: Vec<Entry>,
    bind: Vec<Entry>,
    post_bind: Vec<Entry>,
    percentage_of_nodes_to_score: Option<u32>,
    next_start_node_index: AtomicUsize,
    rng: AtomicU64,
    waiting_pods: WaitingPods,
    nominator: std::sync::OnceLock<Arc<dyn PodNominator>>,
    pool: Option<Arc<rayon::ThreadPool>>,
    parallel_threshold: usize,
    /// Buffers scoring reuses from cycle to cycle.
    score_scratch: Mutex<ScoreScratch>,
    /// The allocation of the last cycle's feasible node list, for the next.
    feasible_scratch: Mutex<Vec<usize>>,
}

/// Per-cycle scoring buffers: raw scores of every (node, plugin), one
/// plugin's scores for normalization, and the weighted totals. Tens of
/// kilobytes for a few hundred nodes; allocating them afresh on every cycle
/// showed in the profile.
#[derive(Default)]
struct ScoreScratch {
    raw: Vec<i64>,
    scores: Vec<NodeScore>,
    totals: Vec<i64>,
}

impl fmt::Debug for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framework")
            .field("profile", &self.profile_name)
            .field(
                "plugins",
                &self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Nodes evaluated per unit of parallel work.
const CHUNK: usize = 64;
/// Nodes whose data [`warm`] loads together (divides [`CHUNK`]).
const WARM_BATCH: usize = 16;

/// Reads the fields the default filters and scorers use from each of
/// `nodes`, so that their cache lines load in parallel instead of one miss
/// after another while the plugins walk the nodes one by one. Node infos
/// are separate allocations and, past a few thousand nodes, mostly out of
/// cache when a cycle reaches them; independent loads overlap.
fn warm<'a>(nodes: impl Iterator<Item = &'a NodeInfo>) {
    let mut acc = 0u64;
    for n in nodes {
        let flags = n.flags();
        acc ^= u64::from(n.node().is_some())
            ^ u64::from(flags.unschedulable)
            ^ n.pods.len() as u64
            ^ n.allocatable.milli_cpu as u64
            ^ n.requested.milli_cpu as u64
            ^ n.non_zero_requested.milli_cpu as u64
            ^ n.image_states.len() as u64;
    }
    std::hint::black_box(acc);
}
/// Default: below this many node evaluations a cycle filters on one thread.
pub const DEFAULT_PARALLEL_THRESHOLD: usize = 1024;

fn invalid(profile: &ProfileConfig, message: String) -> PluginError {
    PluginError::InvalidProfile {
        profile: profile.scheduler_name.clone(),
        message,
    }
}

/// The node at position `pos` of a cycle's candidate list.
#[derive(Clone, Copy)]
enum Candidates<'a> {
    All(usize),
    Only(&'a [usize]),
}

impl Candidates<'_> {
    fn len(&self) -> usize {
        match self {
            Candidates::All(n) => *n,
            Candidates::Only(v) => v.len(),
        }
    }
    /// `start` and `pos` are below [`Candidates::len`], so one subtraction
    /// wraps around (a division per node showed in every cycle's profile).
    fn node(&self, start: usize, pos: usize) -> usize {
        let n = self.len();
        debug_assert!(start < n && pos < n, "start {start}, pos {pos}, len {n}");
        let i = if start + pos >= n {
            start + pos - n
        } else {
            start + pos
        };
        match self {
            Candidates::All(_) => i,
            Candidates::Only(v) => v[i],
        }
    }
}

/// What filtering found: feasible snapshot indices, rejected (index,
/// status), nodes processed, and the first error.
struct Feasible {
    feasible: Vec<usize>,
    rejected: Vec<(usize, Status)>,
    processed: usize,
    error: Option<Status>,
}

struct ChunkResult {
    chunk: usize,
    feasible: SmallVec<[u32; 64]>,
    rejected: Vec<(u32, Status)>,
    error: Option<Status>,
}

impl Framework {
    /// Builds the profile's plugins and checks the profile: every plugin
    /// known, weights at least 1, exactly one QueueSort and at least one Bind
    /// plugin, percentage within 1..=100.
    pub fn new(
        profile: &ProfileConfig,
        registry: &Registry,
        ctx: &PluginContext,
    ) -> Result<Self, PluginError> {
        let disabled = |point: ExtensionPoint, name: &str| {
            profile
                .disabled
                .iter()
                .any(|d| d.point == point && (d.name == name || d.name == "*"))
        };
        if let Some(p) = profile.percentage_of_nodes_to_score
            && !(1..=100).contains(&p)
        {
            return Err(invalid(
                profile,
                format!("percentageOfNodesToScore must be within 1..=100, got {p}"),
            ));
        }
        let mut plugins: Vec<Entry> = Vec::new();
        let mut seen = HashSet::new();
        let mut fwk_sort = Vec::new();
        let (mut pre_filter, mut filter, mut post_filter, mut pre_score) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut score, mut reserve, mut permit, mut pre_bind, mut bind, mut post_bind) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        );
        for entry in &profile.plugins {
            if !seen.insert(entry.name.as_str()) {
                return Err(invalid(
                    profile,
                    format!("plugin {:?} is enabled twice", entry.name),
                ));
            }
            if entry.weight < 1 {
                return Err(invalid(
                    profile,
                    format!(
                        "plugin {:?}: weight must be at least 1, got {}",
                        entry.name, entry.weight
                    ),
                ));
            }
            let plugin = registry.build(&entry.name, entry.args.as_ref(), ctx)?;
            let name = entry.name.as_str();
            let on = |point: ExtensionPoint, has: bool| has && !disabled(point, name);
            if on(ExtensionPoint::QueueSort, plugin.as_queue_sort().is_some()) {
                fwk_sort.push(plugin.clone());
            }
            if on(ExtensionPoint::PreFilter, plugin.as_pre_filter().is_some()) {
                pre_filter.push(plugin.clone());
            }
            if on(ExtensionPoint::Filter, plugin.as_filter().is_some()) {
                filter.push(plugin.clone());
            }
            if on(
                ExtensionPoint::PostFilter,
                plugin.as_post_filter().is_some(),
            ) {
                post_filter.push(plugin.clone());
            }
            if on(ExtensionPoint::PreScore, plugin.as_pre_score().is_some()) {
                pre_score.push(plugin.clone());
            }
            if on(ExtensionPoint::Score, plugin.as_score().is_some()) {
                score.push((plugin.clone(), entry.weight));
            }
            if on(ExtensionPoint::Reserve, plugin.as_reserve().is_some()) {
                reserve.push(plugin.clone());
            }
            if on(ExtensionPoint::Permit, plugin.as_permit().is_some()) {
                permit.push(plugin.clone());
            }
            if on(ExtensionPoint::PreBind, plugin.as_pre_bind().is_some()) {
                pre_bind.push(plugin.clone());
            }
            if on(ExtensionPoint::Bind, plugin.as_bind().is_some()) {
                bind.push(plugin.clone());
            }
            if on(ExtensionPoint::PostBind, plugin.as_post_bind().is_some()) {
                post_bind.push(plugin.clone());
            }
            plugins.push(plugin);
        }
        if fwk_sort.len() != 1 {
            return Err(invalid(
                profile,
                format!(
                    "exactly one QueueSort plugin must be enabled, found {}",
                    fwk_sort.len()
                ),
            ));
        }
        if bind.is_empty() {
            return Err(invalid(
                profile,
                "at least one Bind plugin must be enabled".to_string(),
            ));
        }
        Ok(Self {
            profile_name: profile.scheduler_name.clone(),
            client: ctx.client.clone(),
            plugins,
            queue_sort: fwk_sort.remove(0),
            pre_filter,
            filter,
            post_filter,
            pre_score,
            score,
            reserve,
            permit,
            pre_bind,
            bind,
            post_bind,
            percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score,
            next_start_node_index: AtomicUsize::new(0),
            rng: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            waiting_pods: WaitingPods::default(),
            nominator: std::sync::OnceLock::new(),
            pool: None,
            parallel_threshold: DEFAULT_PARALLEL_THRESHOLD,
            score_scratch: Mutex::default(),
            feasible_scratch: Mutex::default(),
        })
    }

    /// Runs Filter and Score on `pool` when a cycle evaluates at least
    /// `threshold` nodes (on the calling thread otherwise).
    pub fn with_parallelism(
        mut self,
        pool: Option<Arc<rayon::ThreadPool>>,
        threshold: usize,
    ) -> Self {
        self.pool = pool;
        self.parallel_threshold = threshold.max(1);
        self
    }

    /// Sets where nominated pods are looked up (the scheduling queue). Only
    /// the first call has an effect.
    pub fn set_nominator(&self, nominator: Arc<dyn PodNominator>) {
        let _ = self.nominator.set(nominator);
    }

    /// The profile's scheduler name.
    pub fn profile_name(&self) -> &str {
        &self.profile_name
    }

    /// Every plugin of the profile, in order.
    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    /// Names of the plugins enabled at `point`, in order.
    pub fn enabled_at(&self, point: ExtensionPoint) -> Vec<&'static str> {
        let names = |v: &[Entry]| v.iter().map(|p| p.name()).collect();
        match point {
            ExtensionPoint::QueueSort => vec![self.queue_sort.name()],
            ExtensionPoint::PreFilter => names(&self.pre_filter),
            ExtensionPoint::Filter => names(&self.filter),
            ExtensionPoint::PostFilter => names(&self.post_filter),
            ExtensionPoint::PreScore => names(&self.pre_score),
            ExtensionPoint::Score => self.score.iter().map(|(p, _)| p.name()).collect(),
            ExtensionPoint::Reserve => names(&self.reserve),
            ExtensionPoint::Permit => names(&self.permit),
            ExtensionPoint::PreBind => names(&self.pre_bind),
            ExtensionPoint::Bind => names(&self.bind),
            ExtensionPoint::PostBind => names(&self.post_bind),
        }
    }

    /// The QueueSort plugin.
    pub fn queue_sort(&self) -> &dyn QueueSortPlugin {
        self.queue_sort
            .as_queue_sort()
            .unwrap_or_else(|| unreachable!("checked when the framework was built"))
    }

    /// A shared handle on the QueueSort plugin, for the scheduling queue.
    pub fn queue_sort_plugin(&self) -> Arc<dyn Plugin> {
        self.queue_sort.clone()
    }

    /// Every plugin's registered events, by plugin name.
    pub fn events_to_register(&self) -> HashMap<&'static str, Vec<ClusterEvent>> {
        self.plugins
            .iter()
            .map(|p| (p.name(), p.events_to_register()))
            .collect()
    }

    /// Pods waiting at Permit.
    pub fn waiting_pods(&self) -> &WaitingPods {
        &self.waiting_pods
    }

    /// Where the next cycle starts filtering (round robin over nodes).
    pub fn next_start_node_index(&self) -> usize {
        self.next_start_node_index.load(Ordering::Relaxed)
    }

    fn random(&self) -> u64 {
        // xorshift64*: cheap, good enough to break score ties.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Runs PreFilter plugins: merges their node narrowing, marks skipped
    /// Filter plugins, and returns the first rejection or error.
    pub fn run_pre_filter_plugins(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status, Vec<&'static str>) {
        let mut result = PreFilterResult::all_nodes();
        let mut narrowed_by = Vec::new();
        for p in &self.pre_filter {
            let Some(pf) = p.as_pre_filter() else {
                continue;
            };
            let (r, s) = pf.pre_filter(state, pod, snapshot);
            if s.is_skip() {
                state.skip_filter_plugin(p.name());
                continue;
            }
            if !s.is_success() {
                let s = if s.plugin().is_empty() {
                    s.with_plugin(p.name())
                } else {
                    s
                };
                return (result, s, narrowed_by);
            }
            if r.node_names.is_some() {
                narrowed_by.push(p.name());
                result = result.merge(r);
            }
        }
        (result, Status::success(), narrowed_by)
    }

    fn filters<'a>(
        &'a self,
        state: &CycleState,
    ) -> SmallVec<[(&'static str, &'a dyn FilterPlugin); 16]> {
        self.filter
            .iter()
            .filter(|p| !state.is_filter_skipped(p.name()))
            .filter_map(|p| p.as_filter().map(|f| (p.name(), f)))
            .collect()
    }

    fn run_filters(
        filters: &[(&'static str, &dyn FilterPlugin)],
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for (name, f) in filters {
            let s = f.filter(state, pod, node);
            if !s.is_success() {
                return if s.plugin().is_empty() {
                    s.with_plugin(name)
                } else {
                    s
                };
            }
        }
        Status::success()
    }

    /// Runs the filters on one node, accounting for pods nominated to it
    /// with at least the pod's priority (as kube-scheduler does: the node
    /// must fit with them, and without them when it did with them).
    fn filter_node(
        &self,
        filters: &[(&'static str, &dyn FilterPlugin)],
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: Option<&HashMap<&str, Vec<Arc<PodInfo>>>>,
    ) -> Status {
        if let Some(map) = nominated
            && let Some(pods) = map.get(node.name())
        {
            let mut node_with = node.clone();
            let mut state_with = state.clone();
            for p in pods {
                node_with.add_pod(p.clone());
                let s = self.run_pre_filter_add_pod(&mut state_with, pod, p, &node_with);
                if !s.is_success() {
                    return s;
                }
            }
            let s = Self::run_filters(filters, &state_with, pod, &node_with);
            if !s.is_success() {
                return s;
            }
        }
        Self::run_filters(filters, state, pod, node)
    }

    /// Nominated pods (other than `pod`, with at least its priority) by node.
    fn collect_nominated<'s>(
        &self,
        pod: &PodInfo,
        snapshot: &'s Snapshot,
        keep: impl Fn(usize) -> bool,
    ) -> Option<HashMap<&'s str, Vec<Arc<PodInfo>>>> {
        let nominator = self.nominator.get()?;
        if !nominator.has_nominated_pods() {
            return None;
        }
        // Walk the few nominations, not every node of the snapshot.
        let mut map = HashMap::new();
        for (node_name, nominated) in nominator.nominations() {
            let Some(&idx) = snapshot.index.get(node_name.as_str()) else {
                continue;
            };
            if !keep(idx) {
                continue;
            }
            let pods: Vec<Arc<PodInfo>> = nominated
                .into_iter()
                .filter(|p| p.key != pod.key && p.priority() >= pod.priority())
                .collect();
            if !pods.is_empty() {
                map.insert(snapshot.nodes()[idx].name(), pods);
            }
        }
        if map.is_empty() { None } else { Some(map) }
    }

    /// Finds up to `want` feasible nodes among `cands`, starting at `start`.
    /// Returns feasible snapshot indices, rejected (index, status), nodes
    /// processed, and the first error.
    #[allow(clippy::too_many_arguments)]
    fn find_feasible(
        &self,
        filters: &[(&'static str, &dyn FilterPlugin)],
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        cands: Candidates<'_>,
        start: usize,
        want: usize,
        nominated: Option<&HashMap<&str, Vec<Arc<PodInfo>>>>,
    ) -> Feasible {
        let n = cands.len();
        let nodes = snapshot.nodes();
        if n == 0 || want == 0 {
            return Feasible {
                feasible: Vec::new(),
                rejected: Vec::new(),
                processed: 0,
                error: None,
            };
        }
        if filters.is_empty() && nominated.is_none() {
            let take = want.min(n);
            let feasible = (0..take).map(|pos| cands.node(start, pos)).collect();
            return Feasible {
                feasible,
                rejected: Vec::new(),
                processed: take,
                error: None,
            };
        }
        let eval = |pos: usize| -> Status {
            if pos.is_multiple_of(WARM_BATCH) {
                warm((pos..(pos + WARM_BATCH).min(n)).map(|p| &*nodes[cands.node(start, p)]));
            }
            let idx = cands.node(start, pos);
            self.filter_node(filters, state, pod, &nodes[idx], nominated)
        };
        // Expected work: until `want` feasible nodes are found.
        let pool = self.pool.as_ref().filter(|p| p.current_num_threads() > 1);
        if pool.is_none() || want.min(n) * filters.len().max(1) < self.parallel_threshold {
            let mut feasible = self.index_buffer(want.min(n));
            let mut rejected = Vec::new();
            let mut processed = 0;
            for pos in 0..n {
                processed = pos + 1;
                let s = eval(pos);
                if s.is_success() {
                    feasible.push(cands.node(start, pos));
                    if feasible.len() >= want {
                        break;
                    }
                } else if s.code() == Code::Error {
                    return Feasible {
                        feasible,
                        rejected,
                        processed,
                        error: Some(s),
                    };
                } else {
                    rejected.push((cands.node(start, pos), s));
                }
            }
            return Feasible {
                feasible,
                rejected,
                processed,
                error: None,
            };
        }
        let Some(pool) = pool else {
            unreachable!("checked above")
        };
        let chunks = n.div_ceil(CHUNK);
        let next_chunk = AtomicUsize::new(0);
        let found = AtomicUsize::new(0);
        let results: Mutex<Vec<ChunkResult>> = Mutex::new(Vec::with_capacity(chunks));
        let worker = || {
            loop {
                if found.load(Ordering::Relaxed) >= want {
                    return;
                }
                let c = next_chunk.fetch_add(1, Ordering::Relaxed);
                if c >= chunks {
                    return;
                }
                let mut r = ChunkResult {
                    chunk: c,
                    feasible: SmallVec::new(),
                    rejected: Vec::new(),
                    error: None,
                };
                for pos in c * CHUNK..((c + 1) * CHUNK).min(n) {
                    let s = eval(pos);
                    if s.is_success() {
                        r.feasible.push(pos as u32);
                    } else if s.code() == Code::Error {
                        r.error = Some(s);
                        found.store(usize::MAX / 2, Ordering::Relaxed);
                        break;
                    } else {
                        r.rejected.push((pos as u32, s));
                    }
                }
                found.fetch_add(r.feasible.len(), Ordering::Relaxed);
                results.lock().push(r);
            }
        };
        let threads = pool.current_num_threads().min(chunks);
        pool.in_place_scope(|s| {
            for _ in 1..threads {
                s.spawn(|_| worker());
            }
            worker();
        });
        let mut results = results.into_inner();
        results.sort_unstable_by_key(|r| r.chunk);
        let mut feasible = self.index_buffer(want.min(n));
        let mut rejected = Vec::new();
        let mut processed = 0;
        'outer: for r in &mut results {
            if let Some(e) = r.error.take() {
                return Feasible {
                    feasible,
                    rejected,
                    processed,
                    error: Some(e),
                };
            }
            // Merge the chunk's feasible and rejected positions in order.
            let mut rej = r.rejected.drain(..).peekable();
            for &pos in &r.feasible {
                while let Some((rp, _)) = rej.peek() {
                    if *rp < pos {
                        let (rp, s) = rej.next().unwrap_or_else(|| unreachable!());
                        rejected.push((cands.node(start, rp as usize), s));
                    } else {
                        break;
                    }
                }
                feasible.push(cands.node(start, pos as usize));
                processed = pos as usize + 1;
                if feasible.len() >= want {
                    break 'outer;
                }
            }
            for (rp, s) in rej {
                rejected.push((cands.node(start, rp as usize), s));
            }
            processed = ((r.chunk + 1) * CHUNK).min(n);
        }
        Feasible {
            feasible,
            rejected,
            processed,
            error: None,
        }
    }

    /// An empty list for feasible node indices: the allocation a finished
    /// cycle gave back (see [`Framework::recycle`]) when there is one.
    fn index_buffer(&self, capacity: usize) -> Vec<usize> {
        let mut v = self
            .feasible_scratch
            .try_lock()
            .map(|mut kept| std::mem::take(&mut *kept))
            .unwrap_or_default();
        v.reserve(capacity);
        v
    }

    /// Keeps the allocation of a cycle's feasible node list for the next
    /// cycle. The list of references becomes a list of indices in place
    /// (both are pointer-sized), so no memory is allocated or freed.
    fn recycle(&self, mut nodes: Vec<&NodeInfo>) {
        nodes.clear();
        let empty: Vec<usize> = nodes.into_iter().map(|_| 0).collect();
        if let Some(mut kept) = self.feasible_scratch.try_lock()
            && kept.capacity() < empty.capacity()
        {
            *kept = empty;
        }
    }

    /// Runs PreFilter and Filter, returning the feasible nodes and the
    /// diagnosis. Filtering stops after enough feasible nodes (see
    /// [`num_feasible_nodes_to_find`]) and starts where the previous cycle
    /// stopped.
    pub fn find_nodes_that_fit<'s>(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &'s Snapshot,
    ) -> Result<(Vec<&'s NodeInfo>, Diagnosis), ScheduleError> {
        let mut diagnosis = Diagnosis::default();
        let all = snapshot.len();
        let (pre, status, narrowed_by) = self.run_pre_filter_plugins(state, pod, snapshot);
        if !status.is_success() {
            if status.code() == Code::Error {
                return Err(ScheduleError::Error(status));
            }
            diagnosis.pre_filter_msg = Some(status.reasons().join(", "));
            diagnosis.unschedulable_plugins.insert(status.plugin());
            diagnosis.node_to_status.absent = Some(status);
            return Err(ScheduleError::Unschedulable(Box::new(FitError {
                pod_key: pod.key.clone(),
                num_all_nodes: all,
                diagnosis,
            })));
        }
        let only: Option<Vec<usize>> = pre.node_names.as_ref().map(|names| {
            let mut v: Vec<usize> = names
                .iter()
                .filter_map(|n| snapshot.index.get(n.as_str()).copied())
                .collect();
            v.sort_unstable();
            v
        });
        if only.is_some() {
            let reason = format!(
                "node(s) didn't satisfy plugin(s) [{}]",
                narrowed_by.join(", ")
            );
            diagnosis.node_to_status.absent = Some(Status::unresolvable(reason));
            for p in &narrowed_by {
                diagnosis.unschedulable_plugins.insert(p);
            }
        }
        let cands = match &only {
            Some(v) => Candidates::Only(v),
            None => Candidates::All(all),
        };
        let n = cands.len();
        let filters = self.filters(state);
        // A pod nominated to a node tries that node first.
        if let Some(nominated_name) = pod.pod.status.nominated_node_name.as_deref()
            && let Some(&idx) = snapshot.index.get(nominated_name)
            && only.as_ref().is_none_or(|v| v.binary_search(&idx).is_ok())
        {
            let node = &snapshot.nodes()[idx];
            let map = self.collect_nominated(pod, snapshot, |i| i == idx);
            let s = self.filter_node(&filters, state, pod, node, map.as_ref());
            if s.code() == Code::Error {
                return Err(ScheduleError::Error(s));
            }
            if s.is_success() {
                return Ok((vec![&**node], diagnosis));
            }
        }
        let want = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, n);
        let start = if n == 0 {
            0
        } else {
            self.next_start_node_index.load(Ordering::Relaxed) % n
        };
        let nominated = match &only {
            Some(v) => self.collect_nominated(pod, snapshot, |i| v.binary_search(&i).is_ok()),
            None => self.collect_nominated(pod, snapshot, |_| true),
        };
        let Feasible {
            feasible,
            rejected,
            processed,
            error,
        } = self.find_feasible(
            &filters,
            state,
            pod,
            snapshot,
            cands,
            start,
            want,
            nominated.as_ref(),
        );
        if let Some(e) = error {
            return Err(ScheduleError::Error(e));
        }
        if n > 0 {
            self.next_start_node_index
                .store((start + processed) % n, Ordering::Relaxed);
        }
        if feasible.is_empty() {
            let nodes = snapshot.nodes();
            diagnosis.node_to_status.rejected = rejected
                .into_iter()
                .map(|(i, s)| {
                    diagnosis.unschedulable_plugins.insert(s.plugin());
                    (nodes[i].name().to_string(), s)
                })
                .collect();
            diagnosis.unschedulable_plugins.remove("");
            return Err(ScheduleError::Unschedulable(Box::new(FitError {
                pod_key: pod.key.clone(),
                num_all_nodes: all,
                diagnosis,
            })));
        }
        let nodes = snapshot.nodes();
        Ok((
            feasible.into_iter().map(|i| &*nodes[i]).collect(),
            diagnosis,
        ))
    }

    /// Runs PreScore and Score (with NormalizeScore and weights) over the
    /// feasible nodes; returns each node's weighted total, in node order.
    pub fn prioritize_nodes(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
    ) -> Result<Vec<i64>, Status> {
        let mut scratch = ScoreScratch::default();
        self.prioritize_into(state, pod, nodes, &mut scratch)?;
        Ok(scratch.totals)
    }

    /// [`Framework::prioritize_nodes`] into `scratch.totals`.
    fn prioritize_into(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[&NodeInfo],
        scratch: &mut ScoreScratch,
    ) -> Result<(), Status> {
        for p in &self.pre_score {
            let Some(ps) = p.as_pre_score() else { continue };
            let s = ps.pre_score(state, pod, nodes);
            if s.is_skip() {
                state.skip_score_plugin(p.name());
            } else if !s.is_success() {
                return Err(s.with_plugin(p.name()));
            }
        }
        let state: &CycleState = state;
        let scorers: SmallVec<[(&'static str, &dyn ScorePlugin, i64); 16]> = self
            .score
            .iter()
            .filter(|(p, _)| !state.is_score_skipped(p.name()))
            .filter_map(|(p, w)| p.as_score().map(|s| (p.name(), s, *w)))
            .collect();
        let n = nodes.len();
        let np = scorers.len();
        let ScoreScratch {
            raw,
            scores,
            totals,
        } = scratch;
        totals.clear();
        totals.resize(n, 0);
        if np == 0 {
            return Ok(());
        }
        // Node-major raw scores: raw[i * np + j] is plugin j's score of node i.
        raw.clear();
        raw.resize(n * np, 0);
        let error: Mutex<Option<Status>> = Mutex::new(None);
        let score_chunk = |first: usize, out: &mut [i64]| {
            for (k, row) in out.chunks_mut(np).enumerate() {
                let node = &nodes[first + k];
                for (j, (name, s, _)) in scorers.iter().enumerate() {
                    match s.score(state, pod, node) {
                        Ok(v) => row[j] = v,
                        Err(e) => {
                            let mut slot = error.lock();
                            if slot.is_none() {
                                *slot = Some(e.with_plugin(name));
                            }
                            return;
                        }
                    }
                }
            }
        };
        match self.pool.as_ref().filter(|p| p.current_num_threads() > 1) {
            Some(pool) if n * np >= self.parallel_threshold => {
                use rayon::prelude::*;
                pool.install(|| {
                    raw.par_chunks_mut(CHUNK * np)
                        .enumerate()
                        .for_each(|(c, out)| score_chunk(c * CHUNK, out));
                });
            }
            _ => score_chunk(0, raw),
        }
        if let Some(e) = error.into_inner() {
            return Err(e);
        }
        for (j, (name, s, weight)) in scorers.iter().enumerate() {
            scores.clear();
            scores.extend((0..n).map(|i| NodeScore {
                index: i,
                score: raw[i * np + j],
            }));
            let st = s.normalize_scores(state, pod, scores);
            if !st.is_success() {
                return Err(st.with_plugin(name));
            }
            for ns in scores.iter() {
                if ns.score > MAX_NODE_SCORE || ns.score < super::MIN_NODE_SCORE {
                    return Err(Status::error(format!(
                        "plugin {name} returned an invalid score {} (must be within 0..=100)",
                        ns.score
                    ))
                    .with_plugin(name));
                }
                if let Some(t) = totals.get_mut(ns.index) {
                    *t += ns.score * weight;
                }
            }
        }
        Ok(())
    }

    /// Picks the highest total; ties are broken uniformly at random.
    ///
    /// ```
    /// # use ketch_scheduler::framework::Framework;
    /// # fn demo(fwk: &Framework) {
    /// let best = fwk.select_host(&[40, 90, 90, 10]);
    /// assert!(matches!(best, Some(1) | Some(2)));
    /// assert_eq!(fwk.select_host(&[]), None);
    /// # }
    /// ```
    pub fn select_host(&self, totals: &[i64]) -> Option<usize> {
        // Two passes and one random draw: a draw per tie (reservoir
        // sampling) cost a division per tied node, and most nodes tie.
        let best = *totals.iter().max()?;
        let ties = totals.iter().filter(|&&t| t == best).count();
        let pick = if ties == 1 {
            0
        } else {
            (self.random() % ties as u64) as usize
        };
        totals
            .iter()
            .enumerate()
            .filter(|&(_, &t)| t == best)
            .nth(pick)
            .map(|(i, _)| i)
    }

    /// One scheduling decision: PreFilter, Filter, PreScore, Score and
    /// selection. PostFilter is not run here (see
    /// [`Framework::run_post_filter_plugins`]).
    pub fn schedule_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> Result<ScheduleResult, ScheduleError> {
        if snapshot.is_empty() {
            return Err(ScheduleError::Unschedulable(Box::new(FitError {
                pod_key: pod.key.clone(),
                num_all_nodes: 0,
                diagnosis: Diagnosis::default(),
            })));
        }
        let (feasible, _diagnosis) = self.find_nodes_that_fit(state, pod, snapshot)?;
        let evaluated = feasible.len();
        if feasible.len() == 1 {
            return Ok(ScheduleResult {
                suggested_host: feasible[0].name().to_string(),
                evaluated_nodes: evaluated,
                feasible_nodes: 1,
            });
        }
        // A concurrent cycle of the same profile uses buffers of its own.
        let mut own = None;
        let mut shared = self.score_scratch.try_lock();
        let scratch = match shared.as_deref_mut() {
            Some(s) => s,
            None => own.insert(ScoreScratch::default()),
        };
        self.prioritize_into(state, pod, &feasible, scratch)
            .map_err(ScheduleError::Error)?;
        let best = self
            .select_host(&scratch.totals)
            .ok_or_else(|| ScheduleError::Error(Status::error("no node to select")))?;
        let result = ScheduleResult {
            suggested_host: feasible[best].name().to_string(),
            evaluated_nodes: evaluated,
            feasible_nodes: feasible.len(),
        };
        self.recycle(feasible);
        Ok(result)
    }

    /// Runs PostFilter plugins until one succeeds; returns its result and
    /// the message of the last status (for the failure summary).
    pub fn run_post_filter_plugins(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let handle = Handle { fwk: self };
        let mut last = Status::unschedulable("no PostFilter plugin");
        for p in &self.post_filter {
            let Some(pf) = p.as_post_filter() else {
                continue;
            };
            let (r, s) = pf.post_filter(&handle, state, pod, snapshot, statuses);
            if s.is_success() {
                return (r, s);
            }
            if s.code() == Code::Error {
                return (None, s.with_plugin(p.name()));
            }
            last = s.with_plugin(p.name());
        }
        (None, last)
    }

    /// True if PostFilter plugins are enabled.
    pub fn has_post_filter_plugins(&self) -> bool {
        !self.post_filter.is_empty()
    }

    /// Runs Reserve plugins; on failure unreserves every Reserve plugin.
    pub fn run_reserve_plugins(&self, state: &mut CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.reserve {
            let Some(r) = p.as_reserve() else { continue };
            let s = r.reserve(state, pod, node);
            if !s.is_success() {
                self.run_unreserve_plugins(state, pod, node);
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs every Reserve plugin's `unreserve`, in reverse order.
    pub fn run_unreserve_plugins(&self, state: &mut CycleState, pod: &PodInfo, node: &str) {
        for p in self.reserve.iter().rev() {
            if let Some(r) = p.as_reserve() {
                r.unreserve(state, pod, node);
            }
        }
        if let Some(w) = self.waiting_pods.remove(&pod.key) {
            w.reject("", "unreserved");
        }
    }

    /// Runs Permit plugins. `Wait` registers a [`WaitingPod`]; call
    /// [`Framework::wait_on_permit`] before binding.
    pub fn run_permit_plugins(
        &self,
        state: &mut CycleState,
        pod: &Arc<PodInfo>,
        node: &str,
    ) -> Status {
        if self.permit.is_empty() {
            return Status::success();
        }
        state.write(self.waiting_pods.clone());
        let mut pending = Vec::new();
        let now = Instant::now();
        for p in &self.permit {
            let Some(pp): Option<&dyn PermitPlugin> = p.as_permit() else {
                continue;
            };
            let (s, timeout) = pp.permit(state, pod, node);
            match s.code() {
                Code::Success => {}
                Code::Wait => pending.push((p.name(), now + timeout.min(MAX_PERMIT_TIMEOUT))),
                _ => {
                    return if s.plugin().is_empty() {
                        s.with_plugin(p.name())
                    } else {
                        s
                    };
                }
            }
        }
        if pending.is_empty() {
            return Status::success();
        }
        self.waiting_pods.insert(Arc::new(WaitingPod {
            pod: pod.clone(),
            node_name: node.to_string(),
            inner: Mutex::new(WaitingInner {
                pending,
                result: None,
            }),
            done: tokio::sync::Notify::new(),
        }));
        Status::wait()
    }

    /// Waits until a pod held at Permit is allowed, rejected or times out;
    /// `Success` at once for a pod that is not waiting.
    pub async fn wait_on_permit(&self, pod: &PodInfo) -> Status {
        let Some(w) = self.waiting_pods.get(&pod.key) else {
            return Status::success();
        };
        let s = w.wait().await;
        self.waiting_pods.remove(&pod.key);
        s
    }

    /// Runs PreBind plugins; the first failure stops.
    pub async fn run_pre_bind_plugins(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &str,
    ) -> Status {
        for p in &self.pre_bind {
            let Some(pb) = p.as_pre_bind() else { continue };
            let s = pb.pre_bind(state, pod, node).await;
            if !s.is_success() {
                return s.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs Bind plugins in order until one does not `Skip`.
    pub async fn run_bind_plugins(&self, state: &CycleState, pod: &PodInfo, node: &str) -> Status {
        for p in &self.bind {
            let Some(b): Option<&dyn BindPlugin> = p.as_bind() else {
                continue;
            };
            let s = b.bind(state, pod, node).await;
            if s.is_skip() {
                continue;
            }
            return if s.is_success() {
                s
            } else {
                s.with_plugin(p.name())
            };
        }
        Status::error("every Bind plugin skipped the pod")
    }

    /// Runs PostBind plugins.
    pub fn run_post_bind_plugins(&self, state: &CycleState, pod: &PodInfo, node: &str) {
        for p in &self.post_bind {
            if let Some(pb) = p.as_post_bind() {
                pb.post_bind(state, pod, node);
            }
        }
    }

    /// The handle PostFilter plugins receive.
    pub fn handle(&self) -> impl FrameworkHandle + '_ {
        Handle { fwk: self }
    }
}

/// [`FrameworkHandle`] over a [`Framework`].
struct Handle<'a> {
    fwk: &'a Framework,
}

impl FrameworkHandle for Handle<'_> {
    fn run_filter_plugins(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let filters = self.fwk.filters(state);
        Framework::run_filters(&filters, state, pod, node)
    }

    fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        self.fwk.run_pre_filter_add_pod(state, pod, to_add, node)
    }

    fn run_pre_filter_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        to_remove: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.fwk.pre_filter {
            if state.is_filter_skipped(p.name()) {
                continue;
            }
            if let Some(ext) = p.as_pre_filter().and_then(|pf| pf.extensions()) {
                let s = ext.remove_pod(state, pod, to_remove, node);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }

    fn client(&self) -> &Arc<dyn Client> {
        &self.fwk.client
    }

    fn nominated_pods(&self, node_name: &str) -> Vec<Arc<PodInfo>> {
        self.fwk
            .nominator
            .get()
            .map(|n| n.nominated_pods_for_node(node_name))
            .unwrap_or_default()
    }
}

impl Framework {
    fn run_pre_filter_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        for p in &self.pre_filter {
            if state.is_filter_skipped(p.name()) {
                continue;
            }
            if let Some(ext) = p.as_pre_filter().and_then(|pf| pf.extensions()) {
                let s = ext.add_pod(state, pod, to_add, node);
                if !s.is_success() {
                    return s.with_plugin(p.name());
                }
            }
        }
        Status::success()
    }
}

#[cfg(test)]
#[path = "runtime_tests.rs"]
mod tests;
