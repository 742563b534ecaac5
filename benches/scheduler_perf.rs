//! The scheduling-throughput harness: kube-scheduler's scheduler_perf
//! workloads run through the in-process API server.
//!
//! Nodes and pods are created through the API from many tasks at once; the
//! scheduler watches them and binds through the API; a separate pod watch
//! counts the measured pods as they are bound, sampled every second. Each
//! workload prints one line
//!
//! ```text
//! scheduler_perf <Workload> nodes=<n> pods=<n> avg=<pods/s> p50=<> p90=<> p99=<>
//! ```
//!
//! and is then checked from the API: no node over capacity, the workload's
//! hard constraint honoured, every preemption victim of strictly lower
//! priority than its preemptor. A violation makes the run exit non-zero.
//!
//! ```text
//! cargo bench --bench scheduler_perf                        # every workload
//! cargo bench --bench scheduler_perf -- SchedulingBasic     # names containing it
//! cargo bench --bench scheduler_perf --features etcd -- --store etcd SchedulingBasic/5000Nodes
//! RUST_LOG=warn cargo bench --bench scheduler_perf -- SchedulingPodAntiAffinity
//! ```

#[path = "scheduler_perf/checks.rs"]
mod checks;
#[path = "scheduler_perf/cluster.rs"]
mod cluster;
#[path = "scheduler_perf/create.rs"]
mod create;
#[path = "scheduler_perf/objects.rs"]
mod objects;
#[path = "scheduler_perf/throughput.rs"]
mod throughput;
#[path = "scheduler_perf/tracker.rs"]
mod tracker;
#[path = "scheduler_perf/workloads.rs"]
mod workloads;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ketch_core::api::{Namespace, Node, Pod};
use ketch_core::{Api, Client, ObjectMeta};

use crate::cluster::{Cluster, StoreKind};
use crate::create::{create_all, create_one};
use crate::objects::{node, node_name, pod};
use crate::throughput::Summary;
use crate::tracker::PodTracker;
use crate::workloads::{
    CHURN_NAMESPACE, INITIAL_NAMESPACE, MEASURED_NAMESPACE, NAMESPACES, PodGroup, Workload,
};

/// The harness allocates with mimalloc, as the `ketch` binary does (feature
/// `mimalloc`, on by default; `--no-default-features` measures glibc's
/// malloc).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Longest wait for a phase's pods to be bound.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest wait, after the measured phase, for the preemptors to be bound.
const PREEMPTOR_TIMEOUT: Duration = Duration::from_secs(30);

/// Command-line options.
struct Options {
    /// Substrings; a workload runs if its name contains any (all if empty).
    filters: Vec<String>,
    /// The store under the API server.
    store: StoreKind,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        filters: Vec::new(),
        store: StoreKind::Memory,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let store = if arg == "--store" {
            Some(args.next().ok_or("--store needs a value: memory or etcd")?)
        } else {
            arg.strip_prefix("--store=").map(str::to_string)
        };
        if let Some(store) = store {
            options.store = StoreKind::parse(&store)?;
        } else if arg.starts_with('-') {
            // Flags cargo passes to every bench target (`--bench`), and
            // libtest flags that do not apply here.
            continue;
        } else {
            options.filters.push(arg);
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    // `RUST_LOG=warn` shows the components' warnings (expired assumed pods,
    // failed bindings) next to the figures.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("scheduler_perf: {e}");
            return ExitCode::FAILURE;
        }
    };
    let selected: Vec<Workload> = workloads::all()
        .into_iter()
        .filter(|w| {
            options.filters.is_empty()
                || options.filters.iter().any(|f| w.name.contains(f.as_str()))
        })
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = workloads::all().iter().map(|w| w.name).collect();
        eprintln!(
            "scheduler_perf: no workload matches {:?}; workloads: {}",
            options.filters,
            names.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("building the tokio runtime");
    let mut failed = false;
    for workload in &selected {
        match runtime.block_on(run(workload, options.store)) {
            Ok(summary) => println!(
                "scheduler_perf {} nodes={} pods={} avg={:.0} p50={:.0} p90={:.0} p99={:.0}",
                workload.name,
                workload.node_count(),
                workload.measured.count,
                summary.average,
                summary.p50,
                summary.p90,
                summary.p99
            ),
            Err(e) => {
                eprintln!("scheduler_perf {}: FAILED: {e}", workload.name);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Creates the pods of a group in `namespace`, named `<prefix>-<i>`.
async fn create_pods(
    client: &Arc<dyn Client>,
    namespace: &'static str,
    prefix: &'static str,
    group: PodGroup,
) -> Result<(), String> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    create_all(api, group.count, move |i| {
        pod(group.shape, namespace, &format!("{prefix}-{i}"))
    })
    .await
}

/// Runs one workload on a fresh cluster and checks the placement.
async fn run(workload: &Workload, store: StoreKind) -> Result<Summary, String> {
    let started = Instant::now();
    let cluster = Cluster::start(store).await?;
    let client = cluster.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in NAMESPACES {
        create_one(&namespaces, || Namespace {
            metadata: ObjectMeta::cluster_named(ns),
            ..Namespace::default()
        })
        .await?;
    }
    let tracker = PodTracker::start(client.clone()).await?;

    let nodes: Api<Node> = Api::all(client.clone());
    for group in &workload.nodes {
        let group = *group;
        create_all(nodes.clone(), group.count, move |i| {
            node(group.shape, &node_name(group.shape, group.prefix, i), i)
        })
        .await?;
    }
    let nodes_created = started.elapsed();
    let scheduler = cluster.start_scheduler()?;

    if let Some(initial) = workload.initial {
        create_pods(&client, INITIAL_NAMESPACE, "pod", initial).await?;
        tracker
            .wait_bound(INITIAL_NAMESPACE, initial.count, PHASE_TIMEOUT)
            .await
            .map_err(|e| format!("initial pods: {e}"))?;
    }
    let initial_bound = started.elapsed();

    // The measured phase: create the measured pods (and the churn) while
    // sampling how fast they are bound.
    let measure_start = Instant::now();
    let creating = {
        let client = client.clone();
        let group = workload.measured;
        tokio::spawn(async move {
            create_pods(&client, MEASURED_NAMESPACE, "pod", group).await?;
            Ok::<Duration, String>(measure_start.elapsed())
        })
    };
    let churn_stop = Arc::new(AtomicBool::new(false));
    let churn = workload.churn.map(|churn| {
        let api: Api<Pod> = Api::namespaced(client.clone(), CHURN_NAMESPACE);
        let stop = churn_stop.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(churn.interval);
            let mut created = 0usize;
            while !stop.load(Ordering::Relaxed) {
                ticker.tick().await;
                let name = format!("pod-h-{created}");
                create_one(&api, || pod(churn.shape, CHURN_NAMESPACE, &name)).await?;
                created += 1;
            }
            Ok::<usize, String>(created)
        })
    });
    let samples = throughput::sample(
        &tracker,
        MEASURED_NAMESPACE,
        workload.measured.count,
        measure_start,
        PHASE_TIMEOUT,
    )
    .await
    .map_err(|e| format!("measured pods: {e}"))?;
    churn_stop.store(true, Ordering::Relaxed);
    let created_in = creating
        .await
        .map_err(|e| format!("the creating task failed: {e}"))??;
    if let Some(churn) = churn {
        let created = churn
            .await
            .map_err(|e| format!("the churn task failed: {e}"))??;
        let bound = tracker
            .wait_bound(CHURN_NAMESPACE, created, PREEMPTOR_TIMEOUT)
            .await;
        let seen = tracker.observed().bound_in(CHURN_NAMESPACE);
        eprintln!(
            "  {}: {seen} of {created} high-priority pods bound{}; {} victims",
            workload.name,
            if bound.is_ok() {
                ""
            } else {
                " (timed out waiting for the rest)"
            },
            tracker.observed().victims.len()
        );
    }
    let attempts = scheduler.attempts();
    scheduler.stop().await?;

    let summary = samples.summary();
    let (victims, preemptor_priority) = {
        let observed = tracker.observed();
        (
            observed.victims.clone(),
            observed.preemptor_priority.clone(),
        )
    };
    let report = checks::check(&client, workload, &victims, &preemptor_priority).await?;
    eprintln!(
        "  {}: setup {:.1}s (nodes {:.1}s, initial pods {:.1}s); measured pods created in {:.2}s, all bound in {:.2}s; {} samples; {} pods bound in total, {} violations; scheduler attempts: {attempts}",
        workload.name,
        initial_bound.as_secs_f64(),
        nodes_created.as_secs_f64(),
        (initial_bound - nodes_created).as_secs_f64(),
        created_in.as_secs_f64(),
        samples.elapsed.as_secs_f64(),
        samples.per_second.len(),
        report.bound_pods,
        report.violations.len()
    );
    if !report.violations.is_empty() {
        const SHOWN: usize = 20;
        let mut message = format!("{} placement violations:", report.violations.len());
        for v in report.violations.iter().take(SHOWN) {
            message.push_str("\n    ");
            message.push_str(v);
        }
        if report.violations.len() > SHOWN {
            message.push_str(&format!(
                "\n    ... and {} more",
                report.violations.len() - SHOWN
            ));
        }
        return Err(message);
    }
    drop(cluster);
    Ok(summary)
}
