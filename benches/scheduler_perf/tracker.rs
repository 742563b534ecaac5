//! Follows every pod through one watch on the API, as scheduler_perf's pod
//! informer does: which pods have been bound (once bound, a pod stays
//! counted even if it is later preempted), when the last one was bound, which
//! pods were deleted (preemption victims) and which nodes higher-priority pods
//! were nominated to or bound on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ketch_core::api::Pod;
use ketch_core::{Api, Client, ObjectEvent, WatchParams};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A pod deleted while the harness ran. The harness deletes nothing itself,
/// so every such pod was removed by the scheduler's preemption.
#[derive(Clone, Debug)]
pub struct Victim {
    /// `namespace/name`.
    pub key: String,
    /// The node it was bound to, if any.
    pub node: Option<String>,
    /// Its priority.
    pub priority: i32,
}

/// What the watch has seen so far.
#[derive(Debug, Default)]
pub struct Observed {
    /// Pods seen bound, by `namespace/name`.
    bound: HashSet<String>,
    /// Number of pods seen bound, by namespace.
    bound_by_namespace: HashMap<String, usize>,
    /// When the last pod of each namespace was seen bound.
    last_bind: HashMap<String, Instant>,
    /// Pods seen deleted or marked for deletion.
    pub victims: Vec<Victim>,
    victim_keys: HashSet<String>,
    /// Highest priority of a pod nominated to or bound on each node, over the
    /// whole run (only pods with a priority above 0 are recorded).
    pub preemptor_priority: HashMap<String, i32>,
    /// Set when the watch ended with an error.
    pub failure: Option<String>,
}

impl Observed {
    /// Number of pods of `namespace` seen bound.
    pub fn bound_in(&self, namespace: &str) -> usize {
        self.bound_by_namespace.get(namespace).copied().unwrap_or(0)
    }

    /// When the last pod of `namespace` was seen bound.
    pub fn last_bind_in(&self, namespace: &str) -> Option<Instant> {
        self.last_bind.get(namespace).copied()
    }

    fn apply(&mut self, pod: &Pod, deleted: bool) {
        let meta = &pod.metadata;
        let key = format!("{}/{}", meta.namespace(), meta.name());
        let node = pod.spec.node_name.as_deref().filter(|n| !n.is_empty());
        let priority = pod.spec.priority.unwrap_or(0);
        if priority > 0 {
            for target in [node, pod.status.nominated_node_name.as_deref()]
                .into_iter()
                .flatten()
                .filter(|n| !n.is_empty())
            {
                let entry = self
                    .preemptor_priority
                    .entry(target.to_string())
                    .or_insert(priority);
                *entry = (*entry).max(priority);
            }
        }
        if node.is_some() && !self.bound.contains(&key) {
            self.bound.insert(key.clone());
            *self
                .bound_by_namespace
                .entry(meta.namespace().to_string())
                .or_default() += 1;
            self.last_bind
                .insert(meta.namespace().to_string(), Instant::now());
        }
        if (deleted || meta.deletion_timestamp.is_some()) && !self.victim_keys.contains(&key) {
            self.victim_keys.insert(key.clone());
            self.victims.push(Victim {
                key,
                node: node.map(str::to_string),
                priority,
            });
        }
    }
}

/// A running pod watch and what it has seen.
pub struct PodTracker {
    observed: Arc<Mutex<Observed>>,
    changed: Arc<Notify>,
    task: JoinHandle<()>,
}

impl PodTracker {
    /// Starts watching every pod from now on.
    pub async fn start(client: Arc<dyn Client>) -> Result<Self, String> {
        let pods: Api<Pod> = Api::all(client);
        let mut stream = pods
            .watch(&WatchParams::default())
            .await
            .map_err(|e| format!("watching pods: {e}"))?;
        let observed = Arc::new(Mutex::new(Observed::default()));
        let changed = Arc::new(Notify::new());
        let task = {
            let observed = observed.clone();
            let changed = changed.clone();
            tokio::spawn(async move {
                while let Some(event) = stream.next().await {
                    let mut seen = lock(&observed);
                    match event {
                        Ok(ObjectEvent::Added(pod) | ObjectEvent::Modified(pod)) => {
                            seen.apply(&pod, false)
                        }
                        Ok(ObjectEvent::Deleted(pod)) => seen.apply(&pod, true),
                        Ok(ObjectEvent::Bookmark { .. }) => {}
                        Err(e) => {
                            seen.failure = Some(format!("the pod watch failed: {e}"));
                            drop(seen);
                            changed.notify_waiters();
                            return;
                        }
                    }
                    drop(seen);
                    changed.notify_waiters();
                }
                lock(&observed).failure = Some("the pod watch ended".to_string());
                changed.notify_waiters();
            })
        };
        Ok(Self {
            observed,
            changed,
            task,
        })
    }

    /// What has been seen so far.
    pub fn observed(&self) -> MutexGuard<'_, Observed> {
        lock(&self.observed)
    }

    /// Waits until `count` pods of `namespace` have been seen bound; fails
    /// after `timeout` or when the watch breaks.
    pub async fn wait_bound(
        &self,
        namespace: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            {
                let seen = self.observed();
                if let Some(failure) = &seen.failure {
                    return Err(failure.clone());
                }
                let bound = seen.bound_in(namespace);
                if bound >= count {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "only {bound} of {count} pods in namespace {namespace} were bound after {timeout:?}"
                    ));
                }
            }
            // Wake up at least every 100 ms to check the deadline.
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }
}

impl Drop for PodTracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(observed: &Mutex<Observed>) -> MutexGuard<'_, Observed> {
    // A panic while holding the lock leaves consistent counters behind.
    observed
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
