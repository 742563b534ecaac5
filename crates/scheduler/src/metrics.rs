//! Scheduling metrics in the Prometheus (OpenMetrics) text format:
//! attempts by result, scheduling-attempt and end-to-end latency
//! histograms, and queue depths.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::queue::QueueGauges;

type Labels = Vec<(String, String)>;
type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// The outcome of one scheduling attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptResult {
    /// The pod was assigned a node.
    Scheduled,
    /// No node fits.
    Unschedulable,
    /// A plugin or API call failed.
    Error,
}

impl AttemptResult {
    /// The label value: `scheduled`, `unschedulable` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Scheduled => "scheduled",
            AttemptResult::Unschedulable => "unschedulable",
            AttemptResult::Error => "error",
        }
    }
}

fn latency_histogram() -> Histogram {
    // 10 µs .. ~20 s.
    Histogram::new(exponential_buckets(0.00001, 2.0, 22))
}

/// The scheduler's metrics and the registry they are exposed from.
///
/// ```
/// use std::time::Duration;
/// use ketch_scheduler::metrics::{AttemptResult, SchedulerMetrics};
/// let m = SchedulerMetrics::new();
/// m.observe_attempt("default-scheduler", AttemptResult::Scheduled, Duration::from_micros(40));
/// assert_eq!(m.attempts("default-scheduler", AttemptResult::Scheduled), 1);
/// assert!(m.encode().contains("scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"} 1"));
/// ```
pub struct SchedulerMetrics {
    registry: Mutex<Registry>,
    attempts: Family<Labels, Counter>,
    attempt_duration: HistogramFamily,
    e2e: HistogramFamily,
    bind_duration: Histogram,
    preemption_attempts: Counter,
    queue: QueueGauges,
}

impl std::fmt::Debug for SchedulerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchedulerMetrics").finish_non_exhaustive()
    }
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn labels(profile: &str, result: AttemptResult) -> Labels {
    vec![
        ("result".to_string(), result.as_str().to_string()),
        ("profile".to_string(), profile.to_string()),
    ]
}

impl SchedulerMetrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let attempts = Family::<Labels, Counter>::default();
        let attempt_duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let e2e: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let bind_duration = latency_histogram();
        let preemption_attempts = Counter::default();
        let pending = Family::<Labels, Gauge>::default();
        let queue_gauge =
            |q: &str| pending.get_or_create_owned(&vec![("queue".to_string(), q.to_string())]);
        let queue = QueueGauges {
            active: queue_gauge("active"),
            backoff: queue_gauge("backoff"),
            unschedulable: queue_gauge("unschedulable"),
        };
        registry.register(
            "scheduler_schedule_attempts",
            "Scheduling attempts by result and profile",
            attempts.clone(),
        );
        registry.register(
            "scheduler_scheduling_attempt_duration_seconds",
            "Duration of one scheduling cycle (filter, score, reserve, permit), by result",
            attempt_duration.clone(),
        );
        registry.register(
            "scheduler_pod_scheduling_duration_seconds",
            "Time from a pod entering the queue until it is bound, by profile",
            e2e.clone(),
        );
        registry.register(
            "scheduler_binding_duration_seconds",
            "Duration of the binding cycle (permit wait, prebind, bind)",
            bind_duration.clone(),
        );
        registry.register(
            "scheduler_preemption_attempts",
            "Scheduling attempts that ran PostFilter (preemption)",
            preemption_attempts.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Pending pods by queue (active, backoff, unschedulable)",
            pending,
        );
        Self {
            registry: Mutex::new(registry),
            attempts,
            attempt_duration,
            e2e,
            bind_duration,
            preemption_attempts,
            queue,
        }
    }

    /// Handles for one profile, resolved once so the hot path does not look
    /// labels up.
    pub fn profile(&self, profile: &str) -> ProfileMetrics {
        let get = |r| {
            (
                self.attempts.get_or_create_owned(&labels(profile, r)),
                self.attempt_duration
                    .get_or_create_owned(&labels(profile, r)),
            )
        };
        let (sc, sd) = get(AttemptResult::Scheduled);
        let (uc, ud) = get(AttemptResult::Unschedulable);
        let (ec, ed) = get(AttemptResult::Error);
        ProfileMetrics {
            counters: [sc, uc, ec],
            durations: [sd, ud, ed],
            e2e: self
                .e2e
                .get_or_create_owned(&vec![("profile".to_string(), profile.to_string())]),
            bind_duration: self.bind_duration.clone(),
            preemption_attempts: self.preemption_attempts.clone(),
        }
    }

    /// Counts one attempt and records its duration.
    pub fn observe_attempt(&self, profile: &str, result: AttemptResult, took: Duration) {
        self.profile(profile).observe_attempt(result, took);
    }

    /// Attempts of a profile with a result, so far.
    pub fn attempts(&self, profile: &str, result: AttemptResult) -> u64 {
        self.attempts.get_or_create(&labels(profile, result)).get()
    }

    /// The queue-depth gauges, for [`crate::queue::SchedulingQueue::with_gauges`].
    pub fn queue_gauges(&self) -> QueueGauges {
        self.queue.clone()
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry.lock());
        out
    }

    /// Registers more metrics next to the scheduler's (e.g. a plugin's).
    pub fn with_registry<R>(&self, f: impl FnOnce(&mut Registry) -> R) -> R {
        f(&mut self.registry.lock())
    }
}

/// One profile's metric handles.
#[derive(Clone, Debug)]
pub struct ProfileMetrics {
    counters: [Counter; 3],
    durations: [Histogram; 3],
    e2e: Histogram,
    bind_duration: Histogram,
    preemption_attempts: Counter,
}

impl ProfileMetrics {
    fn slot(result: AttemptResult) -> usize {
        match result {
            AttemptResult::Scheduled => 0,
            AttemptResult::Unschedulable => 1,
            AttemptResult::Error => 2,
        }
    }

    /// Counts one attempt and records its duration.
    pub fn observe_attempt(&self, result: AttemptResult, took: Duration) {
        let i = Self::slot(result);
        self.counters[i].inc();
        self.durations[i].observe(took.as_secs_f64());
    }

    /// Records the time from queueing to binding.
    pub fn observe_e2e(&self, took: Duration) {
        self.e2e.observe(took.as_secs_f64());
    }

    /// Records a binding cycle's duration.
    pub fn observe_binding(&self, took: Duration) {
        self.bind_duration.observe(took.as_secs_f64());
    }

    /// Counts a PostFilter run.
    pub fn inc_preemption_attempts(&self) {
        self.preemption_attempts.inc();
    }
}

/// Shared metrics handle.
pub type SharedMetrics = Arc<SchedulerMetrics>;
