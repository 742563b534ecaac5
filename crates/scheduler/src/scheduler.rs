//! The [`Scheduler`]: informers feed the [`Cache`] and the
//! [`SchedulingQueue`]; one loop pops a pod per cycle, runs its profile's
//! [`Framework`] over a fresh snapshot, assumes the pod on the chosen node,
//! and binds it in a background task while the next cycle runs.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ketch_core::api::{Node, Pod};
use ketch_core::runtime::SharedInformerFactory;
use ketch_core::{Client, ObjectEvent};

use crate::cache::{Cache, DEFAULT_ASSUMED_POD_TTL, PodChange, is_terminal};
use crate::failure::{
    Nomination, REASON_SCHEDULER_ERROR, REASON_UNSCHEDULABLE, record_failed_scheduling,
    update_pod_status,
};
use crate::framework::{
    ActionType, ClusterEvent, Code, CycleState, EventResource, Framework, PluginContext,
    PluginError, PodInfo, ProfileConfig, QueuedPodInfo, Registry, ScheduleError, Snapshot, Status,
};
use crate::metrics::{AttemptResult, ProfileMetrics, SchedulerMetrics};
use crate::queue::{QueueConfig, QueueError, SchedulingQueue};

/// The scheduler name pods get when they name none.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

/// Errors building or running a [`Scheduler`].
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// A plugin or profile is invalid.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The queue configuration is invalid.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// No profile was configured.
    #[error("at least one profile is required")]
    NoProfiles,
    /// Two profiles share a scheduler name.
    #[error("profile {0:?} is configured twice")]
    DuplicateProfile(String),
    /// Profiles must share one QueueSort plugin (there is one queue).
    #[error("profiles use different QueueSort plugins: {0} and {1}")]
    QueueSortMismatch(&'static str, &'static str),
    /// The worker threads for parallel filtering could not start.
    #[error("thread pool: {0}")]
    ThreadPool(String),
    /// The scheduler is already running.
    #[error("the scheduler is already running")]
    AlreadyRunning,
}

struct Profile {
    fwk: Arc<Framework>,
    metrics: ProfileMetrics,
}

struct Shared {
    client: Arc<dyn Client>,
    cache: Arc<Cache>,
    queue: Arc<SchedulingQueue>,
    profiles: HashMap<String, Profile>,
    metrics: Arc<SchedulerMetrics>,
    factory: Option<SharedInformerFactory>,
    running: AtomicBool,
    stopped: Arc<AtomicBool>,
    cleanup_period: Duration,
}

/// Builds a [`Scheduler`].
///
/// ```no_run
/// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>, registry: ketch_scheduler::framework::Registry, profile: ketch_scheduler::framework::ProfileConfig) -> Result<(), ketch_scheduler::SchedulerError> {
/// use std::time::Duration;
/// use ketch_scheduler::Scheduler;
/// let scheduler = Scheduler::builder(client)
///     .registry(registry)
///     .profile(profile)
///     .backoff(Duration::from_millis(500), Duration::from_secs(5))
///     .build()?;
/// # Ok(()) }
/// ```
pub struct SchedulerBuilder {
    client: Arc<dyn Client>,
    registry: Registry,
    profiles: Vec<ProfileConfig>,
    queue: QueueConfig,
    assumed_ttl: Duration,
    factory: Option<SharedInformerFactory>,
    parallelism: Option<usize>,
    parallel_threshold: Option<usize>,
    cleanup_period: Duration,
}

/// Longest the scheduling loop runs cycles back to back before it yields
/// its worker to other tasks.
const LOOP_YIELD_INTERVAL: Duration = Duration::from_millis(1);

/// Default parallel threshold on machines with at most two CPUs: one cycle
/// of a 15,000-node cluster stays on one thread, since the API server and
/// the binding tasks need the other CPU more than filtering does.
const SMALL_MACHINE_PARALLEL_THRESHOLD: usize = 16 * 1024;

impl SchedulerBuilder {
    /// The plugin registry profiles are built from.
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// let b = ketch_scheduler::Scheduler::builder(client).registry(ketch_scheduler::framework::Registry::new());
    /// # }
    /// ```
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Adds a profile (one per `schedulerName`).
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>, profile: ketch_scheduler::framework::ProfileConfig) {
    /// let b = ketch_scheduler::Scheduler::builder(client).profile(profile);
    /// # }
    /// ```
    pub fn profile(mut self, profile: ProfileConfig) -> Self {
        self.profiles.push(profile);
        self
    }

    /// Backoff after failed attempts: `initial`, doubling up to `max`.
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// use std::time::Duration;
    /// let b = ketch_scheduler::Scheduler::builder(client).backoff(Duration::from_secs(1), Duration::from_secs(10));
    /// # }
    /// ```
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.queue = self.queue.backoff(initial, max);
        self
    }

    /// The whole queue configuration.
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// let b = ketch_scheduler::Scheduler::builder(client).queue_config(ketch_scheduler::queue::QueueConfig::default());
    /// # }
    /// ```
    pub fn queue_config(mut self, config: QueueConfig) -> Self {
        self.queue = config;
        self
    }

    /// How long an assumed pod whose bind finished may stay unconfirmed.
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// let b = ketch_scheduler::Scheduler::builder(client).assumed_pod_ttl(std::time::Duration::from_secs(30));
    /// # }
    /// ```
    pub fn assumed_pod_ttl(mut self, ttl: Duration) -> Self {
        self.assumed_ttl = ttl;
        self
    }

    /// Shares informers with other components of the process.
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// let factory = ketch_core::runtime::SharedInformerFactory::new(client.clone());
    /// let b = ketch_scheduler::Scheduler::builder(client).informer_factory(factory);
    /// # }
    /// ```
    pub fn informer_factory(mut self, factory: SharedInformerFactory) -> Self {
        self.factory = Some(factory);
        self
    }

    /// Threads for parallel Filter and Score (default: the number of CPUs;
    /// 1 runs everything on the scheduling task).
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// let b = ketch_scheduler::Scheduler::builder(client).parallelism(2);
    /// # }
    /// ```
    pub fn parallelism(mut self, threads: usize) -> Self {
        self.parallelism = Some(threads.max(1));
        self
    }

    /// Node-plugin evaluations per cycle below which filtering and scoring
    /// stay on one thread (default [`crate::framework::DEFAULT_PARALLEL_THRESHOLD`],
    /// or 16384 on machines with at most two CPUs).
    ///
    /// ```no_run
    /// # fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
    /// let b = ketch_scheduler::Scheduler::builder(client).parallel_threshold(4096);
    /// # }
    /// ```
    pub fn parallel_threshold(mut self, evaluations: usize) -> Self {
        self.parallel_threshold = Some(evaluations);
        self
    }

    /// Builds the profiles' frameworks, the queue and the cache.
    pub fn build(self) -> Result<Scheduler, SchedulerError> {
        if self.profiles.is_empty() {
            return Err(SchedulerError::NoProfiles);
        }
        let threads = self.parallelism.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let pool = if threads > 1 {
            Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("ketch-sched-{i}"))
                    .build()
                    .map_err(|e| SchedulerError::ThreadPool(e.to_string()))?,
            ))
        } else {
            None
        };
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let threshold = self.parallel_threshold.unwrap_or(if cpus <= 2 {
            SMALL_MACHINE_PARALLEL_THRESHOLD
        } else {
            crate::framework::DEFAULT_PARALLEL_THRESHOLD
        });
        let ctx = PluginContext {
            client: self.client.clone(),
        };
        let metrics = Arc::new(SchedulerMetrics::new());
        let mut frameworks: Vec<Arc<Framework>> = Vec::new();
        let mut profiles = HashMap::new();
        for p in &self.profiles {
            if profiles.contains_key(&p.scheduler_name) {
                return Err(SchedulerError::DuplicateProfile(p.scheduler_name.clone()));
            }
            let fwk = Arc::new(
                Framework::new(p, &self.registry, &ctx)?.with_parallelism(pool.clone(), threshold),
            );
            if let Some(first) = frameworks.first() {
                let (a, b) = (first.queue_sort().name(), fwk.queue_sort().name());
                if a != b {
                    return Err(SchedulerError::QueueSortMismatch(a, b));
                }
            }
            frameworks.push(fwk.clone());
            profiles.insert(
                p.scheduler_name.clone(),
                Profile {
                    metrics: metrics.profile(&p.scheduler_name),
                    fwk,
                },
            );
        }
        let mut events: HashMap<&'static str, Vec<ClusterEvent>> = HashMap::new();
        for f in &frameworks {
            for (name, evs) in f.events_to_register() {
                let e = events.entry(name).or_default();
                for ev in evs {
                    if !e.contains(&ev) {
                        e.push(ev);
                    }
                }
            }
        }
        let queue = Arc::new(
            SchedulingQueue::new(frameworks[0].queue_sort_plugin(), events, self.queue)?
                .with_gauges(metrics.queue_gauges()),
        );
        for f in &frameworks {
            f.set_nominator(queue.clone());
        }
        Ok(Scheduler {
            shared: Arc::new(Shared {
                client: self.client,
                cache: Arc::new(Cache::with_ttl(self.assumed_ttl)),
                queue,
                profiles,
                metrics,
                factory: self.factory,
                running: AtomicBool::new(false),
                stopped: Arc::new(AtomicBool::new(false)),
                cleanup_period: self.cleanup_period,
            }),
        })
    }
}

/// The scheduler. Cheap to clone; [`Scheduler::run`] drives it.
///
/// ```no_run
/// # async fn demo(client: std::sync::Arc<dyn ketch_core::Client>, registry: ketch_scheduler::framework::Registry, profile: ketch_scheduler::framework::ProfileConfig) -> Result<(), ketch_scheduler::SchedulerError> {
/// use ketch_scheduler::Scheduler;
/// let scheduler = Scheduler::builder(client).registry(registry).profile(profile).build()?;
/// let metrics = scheduler.clone();
/// scheduler.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// println!("{}", metrics.metrics());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("profiles", &self.shared.profiles.keys().collect::<Vec<_>>())
            .field("queue", &self.shared.queue)
            .field("cache", &self.shared.cache)
            .finish()
    }
}

fn pod_key(pod: &Pod) -> String {
    format!("{}/{}", pod.metadata.namespace(), pod.metadata.name())
}

fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .scheduler_name
        .as_deref()
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SCHEDULER_NAME)
}

fn assigned(pod: &Pod) -> bool {
    pod.spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
}

fn node_update_action(old: &Node, new: &Node) -> Option<ActionType> {
    let mut action: Option<ActionType> = None;
    let mut add = |a: ActionType| action = Some(action.map_or(a, |x| x | a));
    if old.status.allocatable != new.status.allocatable {
        add(ActionType::UPDATE_NODE_ALLOCATABLE);
    }
    if old.metadata.labels != new.metadata.labels {
        add(ActionType::UPDATE_NODE_LABEL);
    }
    if old.spec.taints != new.spec.taints || old.spec.unschedulable != new.spec.unschedulable {
        add(ActionType::UPDATE_NODE_TAINT);
    }
    let conds = |n: &Node| {
        n.status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status))
            .collect::<Vec<_>>()
    };
    if conds(old) != conds(new) {
        add(ActionType::UPDATE_NODE_CONDITION);
    }
    if old.status.images != new.status.images {
        add(ActionType::UPDATE_NODE_IMAGES);
    }
    action
}

/// The pod as the cache counts it once assumed: bound to `node`.
fn assumed_pod(pod: &PodInfo, node: &str) -> PodInfo {
    let mut p = (*pod.pod).clone();
    p.spec.node_name = Some(node.to_string());
    PodInfo {
        pod: Arc::new(p),
        ..pod.clone()
    }
}

impl Scheduler {
    /// Starts building a scheduler that talks to the API through `client`.
    pub fn builder(client: Arc<dyn Client>) -> SchedulerBuilder {
        SchedulerBuilder {
            client,
            registry: Registry::new(),
            profiles: Vec::new(),
            queue: QueueConfig::default(),
            assumed_ttl: DEFAULT_ASSUMED_POD_TTL,
            factory: None,
            parallelism: None,
            parallel_threshold: None,
            cleanup_period: Duration::from_secs(1),
        }
    }

    /// The node and pod cache.
    pub fn cache(&self) -> &Arc<Cache> {
        &self.shared.cache
    }

    /// The scheduling queue.
    pub fn queue(&self) -> &Arc<SchedulingQueue> {
        &self.shared.queue
    }

    /// The framework of a profile.
    pub fn framework(&self, scheduler_name: &str) -> Option<&Arc<Framework>> {
        self.shared.profiles.get(scheduler_name).map(|p| &p.fwk)
    }

    /// The metrics handle.
    pub fn metrics_handle(&self) -> &Arc<SchedulerMetrics> {
        &self.shared.metrics
    }

    /// Every metric in the OpenMetrics text format.
    pub fn metrics(&self) -> String {
        self.shared.metrics.encode()
    }

    /// Runs until `shutdown` completes: starts (or joins) the pod and node
    /// informers, waits for them to sync, then schedules pods one per cycle.
    /// Bindings in progress finish in the background.
    pub async fn run<F>(&self, shutdown: F) -> Result<(), SchedulerError>
    where
        F: Future<Output = ()>,
    {
        let shared = &self.shared;
        if shared.running.swap(true, Ordering::SeqCst) {
            return Err(SchedulerError::AlreadyRunning);
        }
        shared.stopped.store(false, Ordering::SeqCst);
        let factory = shared
            .factory
            .clone()
            .unwrap_or_else(|| SharedInformerFactory::new(shared.client.clone()));
        let nodes = factory.informer::<Node>();
        let pods = factory.informer::<Pod>();
        {
            let s = self.shared.clone();
            nodes.add_handler(move |event| s.on_node_event(event));
        }
        {
            let s = self.shared.clone();
            pods.add_handler(move |event| s.on_pod_event(event));
        }
        tokio::pin!(shutdown);
        tokio::select! {
            _ = &mut shutdown => {
                self.stop(&factory);
                return Ok(());
            }
            _ = factory.wait_for_sync() => {}
        }
        let cleanup = {
            let s = self.shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(s.cleanup_period);
                loop {
                    tick.tick().await;
                    if s.stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    s.cache.cleanup_expired(Instant::now());
                }
            })
        };
        let mut snapshot = Snapshot::default();
        let mut since_yield = Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                popped = shared.queue.pop() => match popped {
                    Some(p) => {
                        shared.schedule_one(p, &mut snapshot);
                        // Cycles are synchronous and the next pop is often
                        // ready at once. Yielding after every cycle would make
                        // the loop wait for its own binding task, which runs
                        // next on this worker; running cycles back to back for
                        // a while lets the other workers take the binding
                        // tasks meanwhile. The yield still lets informers
                        // confirm assumed pods in time.
                        if since_yield.elapsed() >= LOOP_YIELD_INTERVAL {
                            tokio::task::yield_now().await;
                            since_yield = Instant::now();
                        }
                    }
                    None => break,
                },
            }
        }
        cleanup.abort();
        self.stop(&factory);
        Ok(())
    }

    fn stop(&self, factory: &SharedInformerFactory) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        if self.shared.factory.is_none() {
            factory.shutdown();
        }
        self.shared.running.store(false, Ordering::SeqCst);
    }

    /// Runs one scheduling cycle for the next pod in the queue, if any,
    /// without waiting (for tests and benchmarks driving the loop by hand).
    /// Returns false when the queue was empty.
    pub fn schedule_next(&self, snapshot: &mut Snapshot) -> bool {
        match self.shared.queue.try_pop() {
            Some(p) => {
                self.shared.schedule_one(p, snapshot);
                true
            }
            None => false,
        }
    }

    /// Feeds a pod change to the scheduler as the pod informer would.
    pub fn handle_pod_event(&self, event: &ObjectEvent<Arc<Pod>>) {
        self.shared.on_pod_event(event);
    }

    /// Feeds a node change to the scheduler as the node informer would.
    pub fn handle_node_event(&self, event: &ObjectEvent<Arc<Node>>) {
        self.shared.on_node_event(event);
    }
}

impl Shared {
    fn responsible(&self, pod: &Pod) -> bool {
        self.profiles.contains_key(scheduler_name(pod))
    }

    fn move_pods(&self, resource: EventResource, action: ActionType) {
        self.queue
            .move_all_to_active_or_backoff(ClusterEvent::new(resource, action));
    }

    fn on_pod_event(&self, event: &ObjectEvent<Arc<Pod>>) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        match event {
            ObjectEvent::Added(pod) | ObjectEvent::Modified(pod) => {
                if assigned(pod) {
                    let key = pod_key(pod);
                    self.queue.delete(&key);
                    match self.cache.update_pod(pod.clone()) {
                        Ok(PodChange::Added) | Ok(PodChange::Confirmed) => {
                            self.move_pods(EventResource::AssignedPod, ActionType::ADD)
                        }
                        Ok(PodChange::Updated) => self.move_pods(
                            EventResource::AssignedPod,
                            ActionType::UPDATE_POD_LABEL | ActionType::UPDATE_POD_OTHER,
                        ),
                        Ok(PodChange::Removed) => {
                            self.move_pods(EventResource::AssignedPod, ActionType::DELETE)
                        }
                        Ok(PodChange::Unchanged) => {}
                        Err(e) => tracing::warn!(pod = %key, error = %e, "cannot cache pod"),
                    }
                } else if self.responsible(pod)
                    && pod.metadata.deletion_timestamp.is_none()
                    && !is_terminal(pod)
                {
                    match PodInfo::new(pod.clone()) {
                        Ok(info) => self.queue.add(Arc::new(info)),
                        Err(e) => {
                            tracing::warn!(pod = %pod_key(pod), error = %e, "cannot queue pod")
                        }
                    }
                } else {
                    self.queue.delete(&pod_key(pod));
                }
            }
            ObjectEvent::Deleted(pod) => {
                let key = pod_key(pod);
                if self.cache.remove_pod(&key).is_some() {
                    self.move_pods(EventResource::AssignedPod, ActionType::DELETE);
                }
                self.queue.delete(&key);
                for p in self.profiles.values() {
                    if let Some(w) = p.fwk.waiting_pods().get(&key) {
                        w.reject("", "pod deleted");
                    }
                }
            }
            ObjectEvent::Bookmark { .. } => {}
        }
    }

    fn on_node_event(&self, event: &ObjectEvent<Arc<Node>>) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        match event {
            ObjectEvent::Added(node) | ObjectEvent::Modified(node) => {
                let name = node.metadata.name();
                let old = self.cache.node(name);
                if let Err(e) = self.cache.update_node(node.clone()) {
                    tracing::warn!(node = %name, error = %e, "cannot cache node");
                    return;
                }
                match old {
                    None => self.move_pods(EventResource::Node, ActionType::ADD),
                    Some(old) => {
                        if let Some(action) = node_update_action(&old, node) {
                            self.move_pods(EventResource::Node, action);
                        }
                    }
                }
            }
            ObjectEvent::Deleted(node) => {
                self.cache.remove_node(node.metadata.name());
                self.move_pods(EventResource::Node, ActionType::DELETE);
            }
            ObjectEvent::Bookmark { .. } => {}
        }
    }

    /// One scheduling cycle.
    fn schedule_one(self: &Arc<Self>, qpi: QueuedPodInfo, snapshot: &mut Snapshot) {
        let start = Instant::now();
        let pod = qpi.pod_info.clone();
        let Some(profile) = self.profiles.get(scheduler_name(&pod.pod)) else {
            self.queue.done(&pod.key);
            return;
        };
        if pod.pod.metadata.deletion_timestamp.is_some() || self.cache.contains_pod(&pod.key) {
            // Being deleted, or already assumed or bound.
            self.queue.done(&pod.key);
            return;
        }
        self.cache.update_snapshot(snapshot);
        let fwk = &profile.fwk;
        let mut state = CycleState::default();
        let result = fwk.schedule_pod(&mut state, &pod, snapshot);
        let node = match result {
            Ok(r) => r.suggested_host,
            Err(ScheduleError::Unschedulable(mut fit)) => {
                let mut nomination = Nomination::Set(String::new());
                if fwk.has_post_filter_plugins() {
                    profile.metrics.inc_preemption_attempts();
                    let (r, s) = fwk.run_post_filter_plugins(
                        &state,
                        &pod,
                        snapshot,
                        &fit.diagnosis.node_to_status,
                    );
                    if s.code() == Code::Error {
                        tracing::warn!(pod = %pod.key, status = %s, "PostFilter failed");
                    }
                    if !s.is_success() && !s.reasons().is_empty() {
                        fit.diagnosis.post_filter_msg = Some(s.reasons().join(", "));
                    }
                    if let Some(n) = r
                        .and_then(|r| r.nominated_node_name)
                        .filter(|n| !n.is_empty())
                    {
                        nomination = Nomination::Set(n);
                    }
                }
                let message = fit.to_string();
                let plugins = std::mem::take(&mut fit.diagnosis.unschedulable_plugins);
                self.handle_failure(
                    profile,
                    qpi,
                    AttemptResult::Unschedulable,
                    message,
                    plugins,
                    nomination,
                    start,
                );
                return;
            }
            Err(ScheduleError::Error(s)) => {
                self.fail_with_error(profile, qpi, &s, start);
                return;
            }
        };
        let assumed = Arc::new(assumed_pod(&pod, &node));
        if let Err(e) = self.cache.assume_pod_in(assumed.clone(), snapshot) {
            self.fail_with_error(profile, qpi, &Status::error(e.to_string()), start);
            return;
        }
        let s = fwk.run_reserve_plugins(&mut state, &assumed, &node);
        if !s.is_success() {
            self.cache.forget_pod(&pod.key);
            self.fail_status(profile, qpi, s, start);
            return;
        }
        let permit = fwk.run_permit_plugins(&mut state, &assumed, &node);
        if !permit.is_success() && permit.code() != Code::Wait {
            fwk.run_unreserve_plugins(&mut state, &assumed, &node);
            self.cache.forget_pod(&pod.key);
            self.fail_status(profile, qpi, permit, start);
            return;
        }
        self.queue.delete_nominated_pod(&pod.key);
        profile
            .metrics
            .observe_attempt(AttemptResult::Scheduled, start.elapsed());
        let this = self.clone();
        let fwk = fwk.clone();
        tokio::spawn(async move {
            this.binding_cycle(fwk, state, qpi, assumed, node).await;
        });
    }

    async fn binding_cycle(
        self: Arc<Self>,
        fwk: Arc<Framework>,
        mut state: CycleState,
        qpi: QueuedPodInfo,
        assumed: Arc<PodInfo>,
        node: String,
    ) {
        let start = Instant::now();
        let mut s = fwk.wait_on_permit(&assumed).await;
        if s.is_success() {
            s = fwk.run_pre_bind_plugins(&state, &assumed, &node).await;
        }
        if s.is_success() {
            s = fwk.run_bind_plugins(&state, &assumed, &node).await;
        }
        let Some(profile) = self.profiles.get(fwk.profile_name()) else {
            return;
        };
        if s.is_success() {
            self.cache.finish_binding(&assumed.key);
            fwk.run_post_bind_plugins(&state, &assumed, &node);
            profile.metrics.observe_binding(start.elapsed());
            if let Some(first) = self.queue.done(&assumed.key) {
                profile.metrics.observe_e2e(first.elapsed());
            }
            return;
        }
        tracing::debug!(pod = %assumed.key, node = %node, status = %s, "binding failed");
        fwk.run_unreserve_plugins(&mut state, &assumed, &node);
        self.cache.forget_pod(&assumed.key);
        let result = if s.is_rejected() {
            AttemptResult::Unschedulable
        } else {
            AttemptResult::Error
        };
        let mut plugins = HashSet::new();
        if !s.plugin().is_empty() {
            plugins.insert(s.plugin());
        }
        let message = s.to_string();
        self.report_failure(profile, qpi, result, message, plugins, Nomination::Keep);
    }

    fn fail_with_error(&self, profile: &Profile, qpi: QueuedPodInfo, s: &Status, start: Instant) {
        let mut plugins = HashSet::new();
        if !s.plugin().is_empty() {
            plugins.insert(s.plugin());
        }
        self.handle_failure(
            profile,
            qpi,
            AttemptResult::Error,
            s.to_string(),
            plugins,
            Nomination::Keep,
            start,
        );
    }

    fn fail_status(&self, profile: &Profile, qpi: QueuedPodInfo, s: Status, start: Instant) {
        if s.is_rejected() {
            let mut plugins = HashSet::new();
            if !s.plugin().is_empty() {
                plugins.insert(s.plugin());
            }
            let message = s.reasons().join(", ");
            self.handle_failure(
                profile,
                qpi,
                AttemptResult::Unschedulable,
                message,
                plugins,
                Nomination::Keep,
                start,
            );
        } else {
            self.fail_with_error(profile, qpi, &s, start);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_failure(
        &self,
        profile: &Profile,
        qpi: QueuedPodInfo,
        result: AttemptResult,
        message: String,
        plugins: HashSet<&'static str>,
        nomination: Nomination,
        start: Instant,
    ) {
        profile.metrics.observe_attempt(result, start.elapsed());
        self.report_failure(profile, qpi, result, message, plugins, nomination);
    }

    /// Requeues the pod and reports the failure through the API.
    fn report_failure(
        &self,
        profile: &Profile,
        qpi: QueuedPodInfo,
        result: AttemptResult,
        message: String,
        plugins: HashSet<&'static str>,
        nomination: Nomination,
    ) {
        let pod = qpi.pod_info.clone();
        if let Nomination::Set(n) = &nomination {
            if n.is_empty() {
                self.queue.delete_nominated_pod(&pod.key);
            } else {
                self.queue.add_nominated_pod(pod.clone(), n);
            }
        }
        self.queue
            .add_unschedulable_if_not_present(qpi, plugins, result == AttemptResult::Error);
        let client = self.client.clone();
        let component = profile.fwk.profile_name().to_string();
        let reason = if result == AttemptResult::Error {
            REASON_SCHEDULER_ERROR
        } else {
            REASON_UNSCHEDULABLE
        };
        tracing::debug!(pod = %pod.key, %message, "scheduling failed");
        tokio::spawn(async move {
            if let Err(e) =
                update_pod_status(&client, &pod.pod, reason, &message, &nomination).await
            {
                tracing::warn!(pod = %pod.key, error = %e, "cannot update pod status");
            }
            if let Err(e) = record_failed_scheduling(&client, &pod.pod, &message, &component).await
            {
                tracing::debug!(pod = %pod.key, error = %e, "cannot record event");
            }
        });
    }
}
