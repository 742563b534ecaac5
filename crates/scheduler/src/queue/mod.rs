//! The [`SchedulingQueue`]: pods waiting for a scheduling attempt.
//!
//! - **activeQ**: a heap ordered by the profile's QueueSort plugin (priority,
//!   then arrival, with PrioritySort); [`SchedulingQueue::pop`] waits on it.
//! - **backoffQ**: pods whose last attempt failed, each until its own
//!   exponential backoff (1 s doubling to 10 s by default) runs out.
//! - **unschedulable pods**: pods no node fitted, kept with the plugins that
//!   rejected them; a [`ClusterEvent`] one of those plugins registered moves
//!   them to the backoffQ or activeQ, and they are flushed after 5 minutes at
//!   the latest.
//! - **in flight**: pods popped and not yet done; events seen meanwhile are
//!   kept so a pod failing after a relevant event is retried, not parked.
//! - **nominated pods**: pods preemption nominated to a node.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;

use crate::framework::{
    ClusterEvent, Plugin, PodInfo, PodNominator, QueueSortPlugin, QueuedPodInfo,
};

/// Errors of queue configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The plugin given as QueueSort does not implement it.
    #[error("plugin {0} is not a QueueSort plugin")]
    NotQueueSort(&'static str),
    /// Backoff bounds are inconsistent.
    #[error("invalid backoff: initial {initial:?} must be positive and at most max {max:?}")]
    InvalidBackoff {
        /// Initial backoff.
        initial: Duration,
        /// Maximum backoff.
        max: Duration,
    },
}

/// Timing of the queue.
///
/// ```
/// use std::time::Duration;
/// use ketch_scheduler::queue::QueueConfig;
/// let c = QueueConfig::default().backoff(Duration::from_millis(100), Duration::from_secs(1));
/// assert_eq!(c.initial_backoff, Duration::from_millis(100));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// Backoff after the first failed attempt (doubles per attempt).
    pub initial_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// Unschedulable pods are retried after this long even without an event.
    pub max_unschedulable: Duration,
    /// How often unschedulable pods are checked against `max_unschedulable`.
    pub flush_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_unschedulable: Duration::from_secs(300),
            flush_interval: Duration::from_secs(30),
        }
    }
}

impl QueueConfig {
    /// Sets the backoff bounds.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Sets how long a pod may stay unschedulable without an event.
    pub fn max_unschedulable(mut self, d: Duration) -> Self {
        self.max_unschedulable = d;
        self
    }

    /// The backoff after `attempts` failed attempts.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = ketch_scheduler::queue::QueueConfig::default();
    /// assert_eq!(c.backoff_for(1), Duration::from_secs(1));
    /// assert_eq!(c.backoff_for(3), Duration::from_secs(4));
    /// assert_eq!(c.backoff_for(20), Duration::from_secs(10));
    /// ```
    pub fn backoff_for(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << shift)
            .min(self.max_backoff)
    }
}

/// Number of pods in each part of the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Ready to be popped.
    pub active: usize,
    /// Waiting for their backoff to run out.
    pub backoff: usize,
    /// Waiting for a cluster event.
    pub unschedulable: usize,
}

/// Gauges the queue keeps current (pending pods per queue).
#[derive(Clone, Debug, Default)]
pub struct QueueGauges {
    /// activeQ depth.
    pub active: Gauge,
    /// backoffQ depth.
    pub backoff: Gauge,
    /// Unschedulable pods.
    pub unschedulable: Gauge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
}

struct Entry {
    info: QueuedPodInfo,
    place: Where,
    token: u64,
    /// When the backoff of the last failure runs out.
    backoff_until: Option<Instant>,
    /// When the pod was parked as unschedulable.
    since: Instant,
    /// When the pod first entered the queue.
    first_seen: Instant,
}

struct HeapItem {
    token: u64,
    info: QueuedPodInfo,
}

struct InFlight {
    event_seq: u64,
    first_seen: Instant,
    updated: Option<Arc<PodInfo>>,
    deleted: bool,
}

struct Inner {
    seq: u64,
    pods: HashMap<String, Entry>,
    active: Vec<HeapItem>,
    active_len: usize,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    backoff_len: usize,
    unschedulable: HashSet<String>,
    in_flight: HashMap<String, InFlight>,
    events: VecDeque<(u64, ClusterEvent)>,
    event_seq: u64,
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    nominated_of: HashMap<String, String>,
    closed: bool,
    last_flush: Instant,
}

/// The scheduling queue. Thread-safe; share it behind an `Arc`.
///
/// ```
/// # use std::sync::Arc;
/// # use ketch_scheduler::framework::*;
/// # use ketch_scheduler::queue::{SchedulingQueue, QueueConfig};
/// # struct Fifo;
/// # impl Plugin for Fifo {
/// #     fn name(&self) -> &'static str { "Fifo" }
/// #     fn events_to_register(&self) -> Vec<ClusterEvent> { vec![] }
/// #     fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> { Some(self) }
/// # }
/// # impl QueueSortPlugin for Fifo {
/// #     fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool { a.enqueue_seq < b.enqueue_seq }
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let queue = SchedulingQueue::new(Arc::new(Fifo), Default::default(), QueueConfig::default()).unwrap();
/// let pod = ketch_core::api::Pod { metadata: ketch_core::ObjectMeta::named("default", "web"), ..Default::default() };
/// queue.add(Arc::new(PodInfo::new(Arc::new(pod)).unwrap()));
/// let popped = queue.pop().await.unwrap();
/// assert_eq!(popped.pod_info.key, "default/web");
/// queue.done(&popped.pod_info.key);
/// # }
/// ```
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    sort: Arc<dyn Plugin>,
    events: HashMap<&'static str, Vec<ClusterEvent>>,
    config: QueueConfig,
    gauges: Option<QueueGauges>,
}

impl std::fmt::Debug for SchedulingQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulingQueue")
            .field("depths", &self.depths())
            .finish_non_exhaustive()
    }
}

fn sort_of(p: &Arc<dyn Plugin>) -> &dyn QueueSortPlugin {
    p.as_queue_sort()
        .unwrap_or_else(|| unreachable!("checked in SchedulingQueue::new"))
}

impl SchedulingQueue {
    /// A queue ordered by `sort` (a QueueSort plugin), moving unschedulable
    /// pods on the `events` each plugin registered.
    pub fn new(
        sort: Arc<dyn Plugin>,
        events: HashMap<&'static str, Vec<ClusterEvent>>,
        config: QueueConfig,
    ) -> Result<Self, QueueError> {
        if sort.as_queue_sort().is_none() {
            return Err(QueueError::NotQueueSort(sort.name()));
        }
        if config.initial_backoff.is_zero() || config.initial_backoff > config.max_backoff {
            return Err(QueueError::InvalidBackoff {
                initial: config.initial_backoff,
                max: config.max_backoff,
            });
        }
        Ok(Self {
            inner: Mutex::new(Inner {
                seq: 0,
                pods: HashMap::new(),
                active: Vec::new(),
                active_len: 0,
                backoff: BinaryHeap::new(),
                backoff_len: 0,
                unschedulable: HashSet::new(),
                in_flight: HashMap::new(),
                events: VecDeque::new(),
                event_seq: 0,
                nominated: HashMap::new(),
                nominated_of: HashMap::new(),
                closed: false,
                last_flush: Instant::now(),
            }),
            notify: Notify::new(),
            sort,
            events,
            config,
            gauges: None,
        })
    }

    /// Keeps `gauges` current with the queue depths.
    pub fn with_gauges(mut self, gauges: QueueGauges) -> Self {
        self.gauges = Some(gauges);
        self
    }

    /// The queue's timing.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Pods per part of the queue.
    pub fn depths(&self) -> QueueDepths {
        let inner = self.inner.lock();
        QueueDepths {
            active: inner.active_len,
            backoff: inner.backoff_len,
            unschedulable: inner.unschedulable.len(),
        }
    }

    /// Pods popped and not yet done.
    pub fn in_flight(&self) -> usize {
        self.inner.lock().in_flight.len()
    }

    fn gauges(&self, inner: &Inner) {
        if let Some(g) = &self.gauges {
            g.active.set(inner.active_len as i64);
            g.backoff.set(inner.backoff_len as i64);
            g.unschedulable.set(inner.unschedulable.len() as i64);
        }
    }

    fn push_active(&self, inner: &mut Inner, key: &str) {
        let Some(e) = inner.pods.get_mut(key) else {
            return;
        };
        inner.seq += 1;
        e.token = inner.seq;
        e.place = Where::Active;
        e.info.enqueue_seq = inner.seq;
        let item = HeapItem {
            token: e.token,
            info: e.info.clone(),
        };
        inner.active_len += 1;
        heap_push(&mut inner.active, item, sort_of(&self.sort));
    }

    fn push_backoff(&self, inner: &mut Inner, key: &str, until: Instant) {
        let Some(e) = inner.pods.get_mut(key) else {
            return;
        };
        inner.seq += 1;
        e.token = inner.seq;
        e.place = Where::Backoff;
        inner.backoff_len += 1;
        inner
            .backoff
            .push(Reverse((until, e.token, key.to_string())));
    }

    /// Takes the pod out of whichever part holds it (lazily for heaps).
    fn detach(inner: &mut Inner, key: &str) -> Option<Entry> {
        let e = inner.pods.remove(key)?;
        match e.place {
            Where::Active => inner.active_len -= 1,
            Where::Backoff => inner.backoff_len -= 1,
            Where::Unschedulable => {
                inner.unschedulable.remove(key);
            }
        }
        Some(e)
    }

    /// Moves a parked pod to the backoffQ if its backoff still runs,
    /// otherwise to the activeQ. Returns true if it became active.
    fn requeue(&self, inner: &mut Inner, key: &str, now: Instant) -> bool {
        let Some(e) = inner.pods.get(key) else {
            return false;
        };
        let until = e.backoff_until;
        match e.place {
            Where::Active => return false,
            Where::Backoff => return false,
            Where::Unschedulable => {
                inner.unschedulable.remove(key);
            }
        }
        match until {
            Some(u) if u > now => {
                self.push_backoff(inner, key, u);
                false
            }
            _ => {
                self.push_active(inner, key);
                true
            }
        }
    }

    /// Adds a new pending pod to the activeQ (or updates it if known).
    pub fn add(&self, pod: Arc<PodInfo>) {
        let mut inner = self.inner.lock();
        if inner.in_flight.contains_key(&pod.key) || inner.pods.contains_key(&pod.key) {
            drop(inner);
            self.update(pod);
            return;
        }
        self.sync_nomination(&mut inner, &pod);
        inner.seq += 1;
        let seq = inner.seq;
        let key = pod.key.clone();
        inner.pods.insert(
            key.clone(),
            Entry {
                info: QueuedPodInfo {
                    pod_info: pod,
                    initial_attempt_seq: seq,
                    enqueue_seq: seq,
                    attempts: 0,
                    unschedulable_plugins: HashSet::new(),
                },
                place: Where::Active,
                token: 0,
                backoff_until: None,
                since: Instant::now(),
                first_seen: Instant::now(),
            },
        );
        self.push_active(&mut inner, &key);
        self.record_event(
            &mut inner,
            ClusterEvent::new(
                crate::framework::EventResource::UnscheduledPod,
                crate::framework::ActionType::ADD,
            ),
        );
        self.gauges(&inner);
        drop(inner);
        self.notify.notify_one();
    }

    /// A pending pod changed. Changes plugins can see (spec, labels,
    /// annotations) move an unschedulable pod to the backoffQ or activeQ;
    /// others only refresh the stored pod.
    pub fn update(&self, pod: Arc<PodInfo>) {
        let mut inner = self.inner.lock();
        self.sync_nomination(&mut inner, &pod);
        if let Some(f) = inner.in_flight.get_mut(&pod.key) {
            f.updated = Some(pod);
            return;
        }
        let Some(e) = inner.pods.get_mut(&pod.key) else {
            drop(inner);
            self.add(pod);
            return;
        };
        let relevant = relevant_update_of(&e.info.pod_info, &pod);
        e.info.pod_info = pod.clone();
        if relevant && e.place == Where::Unschedulable {
            self.requeue(&mut inner, &pod.key, Instant::now());
            self.gauges(&inner);
            drop(inner);
            // Wake pop() even for a backoff move: its deadline changed.
            self.notify.notify_one();
        }
    }

    /// A pending pod was deleted (or bound by someone else).
    pub fn delete(&self, key: &str) {
        let mut inner = self.inner.lock();
        Self::detach(&mut inner, key);
        if let Some(f) = inner.in_flight.get_mut(key) {
            f.deleted = true;
        }
        Self::remove_nomination(&mut inner, key);
        self.gauges(&inner);
    }

    /// True if the queue holds the pod (not counting in-flight pods).
    pub fn contains(&self, key: &str) -> bool {
        self.inner.lock().pods.contains_key(key)
    }

    fn record_event(&self, inner: &mut Inner, event: ClusterEvent) {
        if inner.in_flight.is_empty() {
            return;
        }
        inner.event_seq += 1;
        let seq = inner.event_seq;
        inner.events.push_back((seq, event));
    }

    fn rejectors_match(&self, plugins: &HashSet<&'static str>, event: &ClusterEvent) -> bool {
        if plugins.is_empty() {
            return true;
        }
        plugins.iter().any(|p| {
            self.events
                .get(p)
                .is_some_and(|evs| evs.iter().any(|e| e.matches(event)))
        })
    }

    /// A cluster event happened: unschedulable pods that a plugin which
    /// registered this event rejected move to the backoffQ or activeQ.
    /// Returns how many pods moved.
    pub fn move_all_to_active_or_backoff(&self, event: ClusterEvent) -> usize {
        let mut inner = self.inner.lock();
        self.record_event(&mut inner, event);
        if inner.unschedulable.is_empty() {
            return 0;
        }
        let now = Instant::now();
        let to_move: Vec<String> = inner
            .unschedulable
            .iter()
            .filter(|k| {
                inner
                    .pods
                    .get(*k)
                    .is_some_and(|e| self.rejectors_match(&e.info.unschedulable_plugins, &event))
            })
            .cloned()
            .collect();
        for k in &to_move {
            self.requeue(&mut inner, k, now);
        }
        self.gauges(&inner);
        drop(inner);
        if !to_move.is_empty() {
            // Wake pop() even for backoff moves: its deadline changed.
            self.notify.notify_one();
        }
        to_move.len()
    }

    /// Moves pods whose backoff ran out to the activeQ, and pods
    /// unschedulable for longer than `max_unschedulable` to the backoffQ or
    /// activeQ. [`SchedulingQueue::pop`] calls this itself.
    pub fn flush(&self, now: Instant) {
        let mut inner = self.inner.lock();
        self.flush_locked(&mut inner, now);
        self.gauges(&inner);
    }

    fn flush_locked(&self, inner: &mut Inner, now: Instant) {
        while let Some(Reverse((until, token, _))) = inner.backoff.peek() {
            if *until > now {
                break;
            }
            let token = *token;
            let Some(Reverse((_, _, key))) = inner.backoff.pop() else {
                break;
            };
            let live = inner
                .pods
                .get(&key)
                .is_some_and(|e| e.token == token && e.place == Where::Backoff);
            if live {
                inner.backoff_len -= 1;
                self.push_active(inner, &key);
            }
        }
        if !inner.unschedulable.is_empty()
            && now.saturating_duration_since(inner.last_flush) >= self.config.flush_interval
        {
            inner.last_flush = now;
            let max = self.config.max_unschedulable;
            let old: Vec<String> = inner
                .unschedulable
                .iter()
                .filter(|k| {
                    inner
                        .pods
                        .get(*k)
                        .is_some_and(|e| now.saturating_duration_since(e.since) >= max)
                })
                .cloned()
                .collect();
            for k in old {
                self.requeue(inner, &k, now);
            }
        }
    }

    fn pop_locked(&self, inner: &mut Inner) -> Option<QueuedPodInfo> {
        let sort = sort_of(&self.sort);
        while let Some(item) = heap_pop(&mut inner.active, sort) {
            let key = &item.info.pod_info.key;
            let live = inner
                .pods
                .get(key)
                .is_some_and(|e| e.token == item.token && e.place == Where::Active);
            if !live {
                continue;
            }
            let key = key.clone();
            let Some(mut e) = Self::detach(inner, &key) else {
                continue;
            };
            e.info.attempts += 1;
            let event_seq = inner.event_seq;
            inner.in_flight.insert(
                key,
                InFlight {
                    event_seq,
                    first_seen: e.first_seen,
                    updated: None,
                    deleted: false,
                },
            );
            // Drop stale heap items once they dominate.
            if inner.active.len() > 2 * inner.active_len + 64 {
                let pods = &inner.pods;
                inner.active.retain(|it| {
                    pods.get(&it.info.pod_info.key)
                        .is_some_and(|e| e.token == it.token && e.place == Where::Active)
                });
                heap_rebuild(&mut inner.active, sort);
            }
            self.gauges(inner);
            return Some(e.info);
        }
        None
    }

    /// Takes the next pod without waiting.
    pub fn try_pop(&self) -> Option<QueuedPodInfo> {
        let mut inner = self.inner.lock();
        self.flush_locked(&mut inner, Instant::now());
        self.pop_locked(&mut inner)
    }

    /// Waits for the next pod: the best of the activeQ, after moving pods
    /// whose backoff ran out. `None` once the queue is closed. The pod is in
    /// flight until [`SchedulingQueue::done`].
    pub async fn pop(&self) -> Option<QueuedPodInfo> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let deadline = {
                let mut inner = self.inner.lock();
                if inner.closed {
                    return None;
                }
                let now = Instant::now();
                self.flush_locked(&mut inner, now);
                if let Some(p) = self.pop_locked(&mut inner) {
                    return Some(p);
                }
                let next_backoff = inner.backoff.peek().map(|Reverse((u, _, _))| *u);
                let next_flush = (!inner.unschedulable.is_empty())
                    .then(|| inner.last_flush + self.config.flush_interval);
                match (next_backoff, next_flush) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            match deadline {
                Some(d) => {
                    let _ = tokio::time::timeout_at(d.into(), notified).await;
                }
                None => notified.await,
            }
        }
    }

    /// Puts back a pod that failed its attempt. `plugins` are the plugins
    /// that rejected it: it waits for one of their events (or, when an event
    /// they registered happened while it was in flight, goes straight to the
    /// backoffQ). `backoff_only` (errors) sends it to the backoffQ at once.
    /// Ignored for a pod deleted or re-added meanwhile.
    pub fn add_unschedulable_if_not_present(
        &self,
        mut info: QueuedPodInfo,
        plugins: HashSet<&'static str>,
        backoff_only: bool,
    ) {
        let mut inner = self.inner.lock();
        let key = info.pod_info.key.clone();
        let flight = self.finish_flight(&mut inner, &key);
        if inner.pods.contains_key(&key) || flight.as_ref().is_some_and(|f| f.deleted) {
            self.gauges(&inner);
            return;
        }
        let now = Instant::now();
        let mut relevant_update = false;
        if let Some(updated) = flight.as_ref().and_then(|f| f.updated.clone()) {
            relevant_update = relevant_update_of(&info.pod_info, &updated);
            info.pod_info = updated;
        }
        let seen_event = flight.as_ref().is_some_and(|f| {
            inner
                .events
                .iter()
                .any(|(s, e)| *s > f.event_seq && self.rejectors_match(&plugins, e))
        });
        info.unschedulable_plugins = plugins;
        let until = now + self.config.backoff_for(info.attempts);
        inner.pods.insert(
            key.clone(),
            Entry {
                info,
                place: Where::Unschedulable,
                token: 0,
                backoff_until: Some(until),
                since: now,
                first_seen: flight.as_ref().map_or(now, |f| f.first_seen),
            },
        );
        if backoff_only || seen_event || relevant_update {
            self.push_backoff(&mut inner, &key, until);
        } else {
            inner.unschedulable.insert(key);
        }
        self.trim_events(&mut inner);
        self.gauges(&inner);
        drop(inner);
        self.notify.notify_one();
    }

    fn finish_flight(&self, inner: &mut Inner, key: &str) -> Option<InFlight> {
        inner.in_flight.remove(key)
    }

    fn trim_events(&self, inner: &mut Inner) {
        match inner.in_flight.values().map(|f| f.event_seq).min() {
            None => inner.events.clear(),
            Some(min) => {
                while inner.events.front().is_some_and(|(s, _)| *s <= min) {
                    inner.events.pop_front();
                }
            }
        }
    }

    /// The pod's attempt is over (bound, or dropped). Returns when the pod
    /// first entered the queue, for end-to-end latency.
    pub fn done(&self, key: &str) -> Option<Instant> {
        let mut inner = self.inner.lock();
        let f = inner.in_flight.remove(key)?;
        self.trim_events(&mut inner);
        Some(f.first_seen)
    }

    /// Closes the queue: [`SchedulingQueue::pop`] returns `None`.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    fn sync_nomination(&self, inner: &mut Inner, pod: &Arc<PodInfo>) {
        match pod.pod.status.nominated_node_name.as_deref() {
            Some(node) if !node.is_empty() => Self::nominate(inner, pod.clone(), node),
            _ => {
                if inner.nominated_of.contains_key(&pod.key) {
                    Self::remove_nomination(inner, &pod.key);
                }
            }
        }
    }

    fn nominate(inner: &mut Inner, pod: Arc<PodInfo>, node: &str) {
        Self::remove_nomination(inner, &pod.key);
        inner.nominated_of.insert(pod.key.clone(), node.to_string());
        inner
            .nominated
            .entry(node.to_string())
            .or_default()
            .push(pod);
    }

    fn remove_nomination(inner: &mut Inner, key: &str) {
        if let Some(node) = inner.nominated_of.remove(key)
            && let Some(list) = inner.nominated.get_mut(&node)
        {
            list.retain(|p| p.key != key);
            if list.is_empty() {
                inner.nominated.remove(&node);
            }
        }
    }

    /// Records that preemption nominated `pod` to `node`.
    pub fn add_nominated_pod(&self, pod: Arc<PodInfo>, node: &str) {
        Self::nominate(&mut self.inner.lock(), pod, node);
    }

    /// Forgets the nomination of a pod (bound, deleted, or re-evaluated).
    pub fn delete_nominated_pod(&self, key: &str) {
        Self::remove_nomination(&mut self.inner.lock(), key);
    }

    /// The node a pod is nominated to.
    pub fn nominated_node(&self, key: &str) -> Option<String> {
        self.inner.lock().nominated_of.get(key).cloned()
    }

    /// Keys of the pods waiting in each part, for inspection.
    pub fn pending(&self) -> Vec<(String, QueueDepthsPlace)> {
        self.inner
            .lock()
            .pods
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    match e.place {
                        Where::Active => QueueDepthsPlace::Active,
                        Where::Backoff => QueueDepthsPlace::Backoff,
                        Where::Unschedulable => QueueDepthsPlace::Unschedulable,
                    },
                )
            })
            .collect()
    }
}

/// Which part of the queue a pending pod is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueDepthsPlace {
    /// activeQ.
    Active,
    /// backoffQ.
    Backoff,
    /// Unschedulable pods.
    Unschedulable,
}

impl PodNominator for SchedulingQueue {
    fn nominated_pods_for_node(&self, node_name: &str) -> Vec<Arc<PodInfo>> {
        self.inner
            .lock()
            .nominated
            .get(node_name)
            .cloned()
            .unwrap_or_default()
    }

    fn has_nominated_pods(&self) -> bool {
        !self.inner.lock().nominated.is_empty()
    }

    fn nominations(&self) -> Vec<(String, Vec<Arc<PodInfo>>)> {
        self.inner
            .lock()
            .nominated
            .iter()
            .map(|(node, pods)| (node.clone(), pods.clone()))
            .collect()
    }
}

/// True when plugins could decide differently: spec, labels or annotations
/// changed (status and resource version are ignored).
fn relevant_update_of(old: &PodInfo, new: &PodInfo) -> bool {
    let (a, b) = (&old.pod, &new.pod);
    a.spec != b.spec
        || a.metadata.labels != b.metadata.labels
        || a.metadata.annotations != b.metadata.annotations
}

fn heap_less(sort: &dyn QueueSortPlugin, a: &HeapItem, b: &HeapItem) -> bool {
    sort.less(&a.info, &b.info)
}

fn heap_push(heap: &mut Vec<HeapItem>, item: HeapItem, sort: &dyn QueueSortPlugin) {
    heap.push(item);
    let mut i = heap.len() - 1;
    while i > 0 {
        let parent = (i - 1) / 2;
        if heap_less(sort, &heap[i], &heap[parent]) {
            heap.swap(i, parent);
            i = parent;
        } else {
            break;
        }
    }
}

fn sift_down(heap: &mut [HeapItem], mut i: usize, sort: &dyn QueueSortPlugin) {
    let n = heap.len();
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut best = i;
        if l < n && heap_less(sort, &heap[l], &heap[best]) {
            best = l;
        }
        if r < n && heap_less(sort, &heap[r], &heap[best]) {
            best = r;
        }
        if best == i {
            return;
        }
        heap.swap(i, best);
        i = best;
    }
}

fn heap_pop(heap: &mut Vec<HeapItem>, sort: &dyn QueueSortPlugin) -> Option<HeapItem> {
    if heap.is_empty() {
        return None;
    }
    let last = heap.len() - 1;
    heap.swap(0, last);
    let item = heap.pop();
    sift_down(heap, 0, sort);
    item
}

fn heap_rebuild(heap: &mut [HeapItem], sort: &dyn QueueSortPlugin) {
    for i in (0..heap.len() / 2).rev() {
        sift_down(heap, i, sort);
    }
}

#[cfg(test)]
mod tests;
