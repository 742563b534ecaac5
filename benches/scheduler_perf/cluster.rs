//! The control plane a workload runs on: a store (MemoryStore, or EtcdStore
//! on a single-member etcd started on loopback), the API server over it, and
//! the scheduler with the default plugins, talking to the API server through
//! its in-process client.

use std::sync::Arc;

use ketch_apiserver::ApiServer;
use ketch_core::{Client, Store};
use ketch_scheduler::plugins::{default_profile, default_registry};
use ketch_scheduler::{DEFAULT_SCHEDULER_NAME, Scheduler, SchedulerError};
use ketch_store::MemoryStore;

/// The store under the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded MemoryStore.
    Memory,
    /// EtcdStore on a single-member etcd started for the workload.
    Etcd,
}

impl StoreKind {
    /// Parses `memory` or `etcd`.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "memory" => Ok(StoreKind::Memory),
            "etcd" if cfg!(feature = "etcd") => Ok(StoreKind::Etcd),
            "etcd" => Err(
                "--store etcd needs the etcd feature: cargo bench --bench scheduler_perf --features etcd -- --store etcd"
                    .to_string(),
            ),
            other => Err(format!("unknown store {other:?}: use memory or etcd")),
        }
    }
}

/// A running API server on a fresh store.
pub struct Cluster {
    server: ApiServer,
    /// The etcd process, killed (and its data removed) on drop.
    #[cfg(feature = "etcd")]
    _etcd: Option<ketch_store::etcd::testing::EtcdCluster>,
}

impl Cluster {
    /// Starts the store and the API server.
    pub async fn start(kind: StoreKind) -> Result<Self, String> {
        #[cfg(feature = "etcd")]
        let mut etcd = None;
        let store: Arc<dyn Store> = match kind {
            StoreKind::Memory => Arc::new(MemoryStore::new()),
            #[cfg(feature = "etcd")]
            StoreKind::Etcd => {
                use ketch_store::etcd::testing::EtcdCluster;
                use ketch_store::{EtcdConfig, EtcdStore};
                let cluster = EtcdCluster::start(1).map_err(|e| format!("starting etcd: {e}"))?;
                let store = EtcdStore::connect(EtcdConfig::new(cluster.endpoints()))
                    .await
                    .map_err(|e| format!("connecting to etcd: {e}"))?;
                etcd = Some(cluster);
                Arc::new(store)
            }
            #[cfg(not(feature = "etcd"))]
            StoreKind::Etcd => return Err("this build has no etcd feature".to_string()),
        };
        let server = ApiServer::builder(store)
            .build()
            .await
            .map_err(|e| format!("starting the API server: {e}"))?;
        Ok(Self {
            server,
            #[cfg(feature = "etcd")]
            _etcd: etcd,
        })
    }

    /// The privileged in-process client.
    pub fn client(&self) -> Arc<dyn Client> {
        self.server.client()
    }
}

/// The scheduler running in a task of its own until stopped.
pub struct SchedulerHandle {
    scheduler: Scheduler,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), SchedulerError>>,
}

impl SchedulerHandle {
    /// The scheduler's attempt counters (`scheduler_schedule_attempts` and
    /// `scheduler_preemption_attempts`), one `result=count` pair each, and
    /// the seconds the loop spent in scheduling cycles by result
    /// (`cycle_seconds_<result>=`), which tells whether the loop itself
    /// limits the throughput.
    pub fn attempts(&self) -> String {
        let text = self.scheduler.metrics();
        let mut counts = Vec::new();
        for line in text.lines() {
            let label = if let Some(rest) =
                line.strip_prefix("scheduler_schedule_attempts_total{result=\"")
            {
                rest.split('"').next().unwrap_or(rest).to_string()
            } else if line.starts_with("scheduler_preemption_attempts_total") {
                "preemption".to_string()
            } else if let Some(rest) =
                line.strip_prefix("scheduler_scheduling_attempt_duration_seconds_sum{result=\"")
            {
                format!("cycle_seconds_{}", rest.split('"').next().unwrap_or(rest))
            } else {
                continue;
            };
            let value = line.rsplit(' ').next().unwrap_or("?");
            counts.push(format!("{label}={value}"));
        }
        counts.join(" ")
    }

    /// Stops the scheduling loop and waits for it to end.
    pub async fn stop(self) -> Result<(), String> {
        // The loop may have ended already; its result tells why.
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the scheduler failed: {e}")),
            Err(e) => Err(format!("the scheduler task failed: {e}")),
        }
    }
}

impl Cluster {
    /// Starts the scheduler with the default plugins and profile.
    pub fn start_scheduler(&self) -> Result<SchedulerHandle, String> {
        let scheduler = Scheduler::builder(self.client())
            .registry(default_registry())
            .profile(default_profile(DEFAULT_SCHEDULER_NAME))
            .build()
            .map_err(|e| format!("building the scheduler: {e}"))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = scheduler.clone();
        let task = tokio::spawn(async move {
            running
                .run(async move {
                    // A dropped sender stops the scheduler as well.
                    let _ = stopped.await;
                })
                .await
        });
        Ok(SchedulerHandle {
            scheduler,
            stop,
            task,
        })
    }
}
