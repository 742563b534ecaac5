use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ketch_core::api::{Node, NodeStatus, Pod};
use ketch_core::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object,
    ObjectEventStream, ObjectList, ObjectMeta, Quantity, WatchParams,
};

use super::*;
use crate::framework::{
    FrameworkHandle, PluginEntry, PostFilterPlugin, PreFilterPlugin, ReservePlugin,
};

/// A client that refuses everything: the framework tests never call it.
struct NullClient;

#[async_trait::async_trait]
impl Client for NullClient {
    async fn create(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn get(&self, _: &str, _: Option<&str>, _: &str) -> Result<ArcObject, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn list(&self, _: &str, _: Option<&str>, _: &ListParams) -> Result<ObjectList, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn update(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn update_status(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn patch(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn delete(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn watch(
        &self,
        _: &str,
        _: Option<&str>,
        _: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
    async fn bind(&self, _: &str, _: &str, _: &str) -> Result<ArcObject, ApiError> {
        Err(ApiError::Unavailable("null".into()))
    }
}

/// A configurable test plugin covering every synchronous point.
#[derive(Default)]
struct Probe {
    name: &'static str,
    /// PreFilter narrows to these nodes.
    pin: Option<Vec<String>>,
    pre_filter_skip: bool,
    /// Filter rejects nodes whose name ends with one of these suffixes, with the reason.
    reject: Vec<(&'static str, Code, &'static str)>,
    filter_error_on: Option<&'static str>,
    /// Score: `score_of(name)`.
    score_fn: Option<fn(&str) -> i64>,
    normalize_double: bool,
    reserve_fails: bool,
    permit: Option<(Code, Duration)>,
    filter_calls: AtomicUsize,
    unreserve_calls: AtomicUsize,
    post_filter_nominates: Option<&'static str>,
}

impl Plugin for Probe {
    fn name(&self) -> &'static str {
        self.name
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![ClusterEvent::WILDCARD]
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        (self.name == "Sort").then_some(self as &dyn QueueSortPlugin)
    }
    fn as_pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        (self.pin.is_some() || self.pre_filter_skip).then_some(self as &dyn PreFilterPlugin)
    }
    fn as_filter(&self) -> Option<&dyn FilterPlugin> {
        (!self.reject.is_empty() || self.filter_error_on.is_some() || self.name == "Count")
            .then_some(self as &dyn FilterPlugin)
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        self.post_filter_nominates
            .is_some()
            .then_some(self as &dyn PostFilterPlugin)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        self.score_fn.is_some().then_some(self as &dyn ScorePlugin)
    }
    fn as_reserve(&self) -> Option<&dyn ReservePlugin> {
        (self.name == "Reserve").then_some(self as &dyn ReservePlugin)
    }
    fn as_permit(&self) -> Option<&dyn PermitPlugin> {
        self.permit.is_some().then_some(self as &dyn PermitPlugin)
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        (self.name == "Binder").then_some(self as &dyn BindPlugin)
    }
}

impl QueueSortPlugin for Probe {
    fn less(
        &self,
        a: &crate::framework::QueuedPodInfo,
        b: &crate::framework::QueuedPodInfo,
    ) -> bool {
        a.enqueue_seq < b.enqueue_seq
    }
}

impl PreFilterPlugin for Probe {
    fn pre_filter(
        &self,
        _: &mut CycleState,
        _: &PodInfo,
        _: &Snapshot,
    ) -> (PreFilterResult, Status) {
        if self.pre_filter_skip {
            return (PreFilterResult::all_nodes(), Status::skip());
        }
        match &self.pin {
            Some(names) => (
                PreFilterResult::only(names.iter().cloned()),
                Status::success(),
            ),
            None => (PreFilterResult::all_nodes(), Status::success()),
        }
    }
}

impl FilterPlugin for Probe {
    fn filter(&self, _: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        self.filter_calls.fetch_add(1, Ordering::Relaxed);
        if self.filter_error_on == Some(node.name()) {
            return Status::error("boom");
        }
        for (suffix, code, reason) in &self.reject {
            if node.name().ends_with(suffix) {
                return Status::new(*code, *reason);
            }
        }
        Status::success()
    }
}

impl ScorePlugin for Probe {
    fn score(&self, _: &CycleState, _: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        Ok(self.score_fn.map_or(0, |f| f(node.name())))
    }
    fn normalize_scores(&self, _: &CycleState, _: &PodInfo, scores: &mut [NodeScore]) -> Status {
        if self.normalize_double {
            for s in scores {
                s.score = (s.score * 2).min(MAX_NODE_SCORE);
            }
        }
        Status::success()
    }
}

impl PostFilterPlugin for Probe {
    fn post_filter(
        &self,
        handle: &dyn FrameworkHandle,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        assert!(!statuses.rejected.is_empty() || statuses.absent.is_some());
        let node = self.post_filter_nominates.unwrap_or_default();
        let Some(info) = snapshot.get(node) else {
            return (None, Status::unschedulable("preemption: no candidate"));
        };
        // The handle runs the profile's filters.
        let _ = handle.run_filter_plugins(state, pod, info);
        (
            Some(PostFilterResult {
                nominated_node_name: Some(node.to_string()),
            }),
            Status::success(),
        )
    }
}

impl ReservePlugin for Probe {
    fn reserve(&self, _: &mut CycleState, _: &PodInfo, _: &str) -> Status {
        if self.reserve_fails {
            Status::error("reserve failed")
        } else {
            Status::success()
        }
    }
    fn unreserve(&self, _: &mut CycleState, _: &PodInfo, _: &str) {
        self.unreserve_calls.fetch_add(1, Ordering::Relaxed);
    }
}

impl PermitPlugin for Probe {
    fn permit(&self, _: &mut CycleState, _: &PodInfo, _: &str) -> (Status, Duration) {
        let (code, d) = self.permit.unwrap_or((Code::Success, Duration::ZERO));
        match code {
            Code::Success => (Status::success(), d),
            Code::Wait => (Status::wait(), d),
            c => (Status::new(c, "permit says no"), d),
        }
    }
}

#[async_trait::async_trait]
impl BindPlugin for Probe {
    async fn bind(&self, _: &CycleState, _: &PodInfo, _: &str) -> Status {
        Status::success()
    }
}

/// Registers the given plugins (by name) and builds a framework enabling
/// them in order after `Sort` and before `Binder`.
fn framework(plugins: Vec<Arc<Probe>>, percentage: Option<u32>) -> (Framework, Vec<Arc<Probe>>) {
    let mut registry = Registry::new();
    let mut all = vec![Arc::new(Probe {
        name: "Sort",
        ..Probe::default()
    })];
    all.extend(plugins);
    all.push(Arc::new(Probe {
        name: "Binder",
        ..Probe::default()
    }));
    for p in &all {
        let p = p.clone();
        registry
            .register(
                p.name,
                Arc::new(move |_, _| Ok(p.clone() as Arc<dyn Plugin>)),
            )
            .unwrap();
    }
    let profile = ProfileConfig {
        scheduler_name: "test".into(),
        plugins: all.iter().map(|p| PluginEntry::new(p.name)).collect(),
        disabled: vec![],
        percentage_of_nodes_to_score: percentage,
    };
    let fwk = Framework::new(&profile, &registry, &ctx()).unwrap();
    (fwk, all)
}

fn ctx() -> PluginContext {
    PluginContext {
        client: Arc::new(NullClient),
    }
}

fn nodes(n: usize) -> Snapshot {
    Snapshot::from_nodes(
        (0..n)
            .map(|i| {
                NodeInfo::new(Arc::new(Node {
                    metadata: ObjectMeta::cluster_named(&format!("node-{i}")),
                    status: NodeStatus {
                        allocatable: BTreeMap::from([("cpu".to_string(), Quantity::from("4"))]),
                        ..NodeStatus::default()
                    },
                    ..Node::default()
                }))
                .unwrap()
            })
            .collect(),
    )
}

fn pod() -> Arc<PodInfo> {
    Arc::new(
        PodInfo::new(Arc::new(Pod {
            metadata: ObjectMeta::named("default", "p"),
            ..Pod::default()
        }))
        .unwrap(),
    )
}

fn counter() -> Arc<Probe> {
    Arc::new(Probe {
        name: "Count",
        ..Probe::default()
    })
}

#[test]
fn profiles_are_validated() {
    let sort = || PluginEntry::new("Sort");
    let bind = || PluginEntry::new("Binder");
    let (_, all) = framework(vec![], None);
    let mut registry = Registry::new();
    for p in all {
        registry
            .register(
                p.name,
                Arc::new(move |_, _| Ok(p.clone() as Arc<dyn Plugin>)),
            )
            .unwrap();
    }
    let build = |plugins: Vec<PluginEntry>, pct: Option<u32>| {
        Framework::new(
            &ProfileConfig {
                scheduler_name: "p".into(),
                plugins,
                disabled: vec![],
                percentage_of_nodes_to_score: pct,
            },
            &registry,
            &ctx(),
        )
        .map(|_| ())
    };
    assert_eq!(build(vec![sort(), bind()], None), Ok(()));
    assert_eq!(
        build(vec![sort(), PluginEntry::new("Nope"), bind()], None),
        Err(PluginError::Unknown("Nope".into()))
    );
    let err = |r: Result<(), PluginError>| match r {
        Err(PluginError::InvalidProfile { message, .. }) => message,
        other => panic!("expected an invalid profile, got {other:?}"),
    };
    assert!(err(build(vec![sort().weight(0), bind()], None)).contains("weight"));
    assert!(err(build(vec![bind()], None)).contains("QueueSort"));
    assert!(err(build(vec![sort()], None)).contains("Bind"));
    assert!(err(build(vec![sort(), sort(), bind()], None)).contains("twice"));
    assert!(err(build(vec![sort(), bind()], Some(0))).contains("percentage"));
    assert!(err(build(vec![sort(), bind()], Some(101))).contains("percentage"));
}

#[test]
fn adaptive_number_of_feasible_nodes() {
    let cases = [
        (None, 0, 0),
        (None, 99, 99),
        (None, 100, 100),
        (None, 500, 230),
        (None, 1000, 420),
        (None, 5000, 500),
        (None, 6000, 300),
        (None, 15000, 750),
        (Some(50), 1000, 500),
        (Some(1), 1000, 100),
    ];
    for (pct, n, want) in cases {
        assert_eq!(num_feasible_nodes_to_find(pct, n), want, "{pct:?} of {n}");
    }
}

#[test]
fn prefilter_narrowing_filters_only_the_named_nodes() {
    let pin = Arc::new(Probe {
        name: "Pin",
        pin: Some(vec!["node-3".into(), "node-7".into(), "ghost".into()]),
        ..Probe::default()
    });
    let (fwk, all) = framework(vec![pin, counter()], None);
    let snap = nodes(15000);
    let r = fwk
        .schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert!(["node-3", "node-7"].contains(&r.suggested_host.as_str()));
    assert_eq!(all[2].filter_calls.load(Ordering::Relaxed), 2);
}

#[test]
fn narrowed_failures_summarise_absent_nodes() {
    let pin = Arc::new(Probe {
        name: "Pin",
        pin: Some(vec!["node-3".into()]),
        ..Probe::default()
    });
    let full = Arc::new(Probe {
        name: "Fit",
        reject: vec![("", Code::Unschedulable, "Insufficient cpu")],
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![pin, full], None);
    let snap = nodes(1000);
    let Err(ScheduleError::Unschedulable(fit)) =
        fwk.schedule_pod(&mut CycleState::default(), &pod(), &snap)
    else {
        panic!("expected a fit error");
    };
    assert_eq!(
        fit.to_string(),
        "0/1000 nodes are available: 999 node(s) didn't satisfy plugin(s) [Pin], 1 Insufficient cpu."
    );
    let mut plugins: Vec<_> = fit
        .diagnosis
        .unschedulable_plugins
        .iter()
        .copied()
        .collect();
    plugins.sort();
    assert_eq!(plugins, ["Fit", "Pin"]);
}

#[test]
fn failure_message_counts_reasons_most_frequent_first() {
    let mut rejected = Vec::new();
    for i in 0..4800 {
        rejected.push((format!("n{i}"), Status::unschedulable("Insufficient cpu")));
    }
    for i in 4800..5000 {
        rejected.push((
            format!("n{i}"),
            Status::unschedulable("node(s) had untolerated taint {dedicated: gpu}"),
        ));
    }
    let mut fit = FitError {
        pod_key: "default/p".into(),
        num_all_nodes: 5000,
        diagnosis: Diagnosis {
            node_to_status: NodeToStatus {
                rejected,
                absent: None,
            },
            ..Diagnosis::default()
        },
    };
    assert_eq!(
        fit.to_string(),
        "0/5000 nodes are available: 4800 Insufficient cpu, 200 node(s) had untolerated taint {dedicated: gpu}."
    );
    fit.diagnosis.post_filter_msg = Some(
        "preemption: 0/5000 nodes are available: 5000 No preemption victims found for incoming pod"
            .into(),
    );
    assert!(fit.to_string().ends_with(
        "gpu}. preemption: 0/5000 nodes are available: 5000 No preemption victims found for incoming pod."
    ));
    // Several reasons on one node count once each; ties sort by reason.
    let fit = FitError {
        pod_key: "default/p".into(),
        num_all_nodes: 2,
        diagnosis: Diagnosis {
            node_to_status: NodeToStatus {
                rejected: vec![
                    (
                        "a".into(),
                        Status::unschedulable("Insufficient memory")
                            .with_reason("Insufficient cpu"),
                    ),
                    ("b".into(), Status::unschedulable("Insufficient cpu")),
                ],
                absent: None,
            },
            ..Diagnosis::default()
        },
    };
    assert_eq!(
        fit.to_string(),
        "0/2 nodes are available: 2 Insufficient cpu, 1 Insufficient memory."
    );
    let pre = FitError {
        pod_key: "default/p".into(),
        num_all_nodes: 3,
        diagnosis: Diagnosis {
            pre_filter_msg: Some("pod has unbound immediate PersistentVolumeClaims".into()),
            ..Diagnosis::default()
        },
    };
    assert_eq!(
        pre.to_string(),
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    );
}

#[test]
fn filtering_stops_after_enough_feasible_nodes_and_resumes_round_robin() {
    let (fwk, all) = framework(vec![counter()], None);
    let snap = nodes(5000);
    let r = fwk
        .schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert_eq!(r.feasible_nodes, 500);
    assert_eq!(all[1].filter_calls.load(Ordering::Relaxed), 500);
    assert_eq!(fwk.next_start_node_index(), 500);
    fwk.schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert_eq!(fwk.next_start_node_index(), 1000);
    // Wrapping around a small cluster.
    let (fwk, _) = framework(vec![counter()], Some(70));
    let snap = nodes(150);
    fwk.schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert_eq!(fwk.next_start_node_index(), 105);
    fwk.schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert_eq!(fwk.next_start_node_index(), 60);
}

#[test]
fn rejected_nodes_do_not_count_towards_the_feasible_target() {
    // Every node whose name ends in 1..=9 rejects: 1 in 10 fits.
    let reject: Vec<(&'static str, Code, &'static str)> =
        ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
            .into_iter()
            .map(|s| (s, Code::Unschedulable, "Insufficient cpu"))
            .collect();
    let fit = Arc::new(Probe {
        name: "Fit",
        reject,
        ..Probe::default()
    });
    let (fwk, all) = framework(vec![fit], None);
    let snap = nodes(5000);
    let r = fwk
        .schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert_eq!(r.feasible_nodes, 500);
    assert_eq!(all[1].filter_calls.load(Ordering::Relaxed), 4991);
    assert!(r.suggested_host.ends_with('0'));
}

#[test]
fn parallel_filtering_finds_the_same_number_of_nodes() {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap(),
    );
    let (fwk, all) = framework(vec![counter()], None);
    let fwk = fwk.with_parallelism(Some(pool), 1);
    let snap = nodes(5000);
    for round in 1..=3 {
        let r = fwk
            .schedule_pod(&mut CycleState::default(), &pod(), &snap)
            .unwrap();
        assert_eq!(r.feasible_nodes, 500);
        assert_eq!(fwk.next_start_node_index(), 500 * round);
    }
    let calls = all[1].filter_calls.load(Ordering::Relaxed);
    assert!(
        (1500..=1500 + 3 * 2 * CHUNK).contains(&calls),
        "{calls} filter calls"
    );
}

#[test]
fn filter_errors_abort_the_cycle() {
    let bad = Arc::new(Probe {
        name: "Bad",
        filter_error_on: Some("node-2"),
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![bad], Some(100));
    let r = fwk.schedule_pod(&mut CycleState::default(), &pod(), &nodes(10));
    assert!(matches!(r, Err(ScheduleError::Error(s)) if s.plugin() == "Bad"));
}

#[test]
fn prefilter_skip_skips_the_filter() {
    let skip = Arc::new(Probe {
        name: "Skipper",
        pre_filter_skip: true,
        reject: vec![("", Code::Unschedulable, "never")],
        ..Probe::default()
    });
    let (fwk, all) = framework(vec![skip], None);
    let r = fwk.schedule_pod(&mut CycleState::default(), &pod(), &nodes(10));
    assert!(r.is_ok());
    assert_eq!(all[1].filter_calls.load(Ordering::Relaxed), 0);
}

#[test]
fn weighted_normalized_scores_pick_the_best_node() {
    // A prefers node-1 (raw 40 doubled by normalize to 80); B prefers node-2 (50).
    let a = Arc::new(Probe {
        name: "A",
        score_fn: Some(|n| if n == "node-1" { 40 } else { 0 }),
        normalize_double: true,
        ..Probe::default()
    });
    let b = Arc::new(Probe {
        name: "B",
        score_fn: Some(|n| if n == "node-2" { 50 } else { 0 }),
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![a.clone(), b.clone()], None);
    let r = fwk
        .schedule_pod(&mut CycleState::default(), &pod(), &nodes(5))
        .unwrap();
    assert_eq!(r.suggested_host, "node-1");
    // With B weighted 2, node-2 wins (100 > 80).
    let mut registry = Registry::new();
    for p in [
        Arc::new(Probe {
            name: "Sort",
            ..Probe::default()
        }),
        a,
        b,
        Arc::new(Probe {
            name: "Binder",
            ..Probe::default()
        }),
    ] {
        registry
            .register(
                p.name,
                Arc::new(move |_, _| Ok(p.clone() as Arc<dyn Plugin>)),
            )
            .unwrap();
    }
    let profile = ProfileConfig {
        scheduler_name: "w".into(),
        plugins: vec![
            PluginEntry::new("Sort"),
            PluginEntry::new("A"),
            PluginEntry::new("B").weight(2),
            PluginEntry::new("Binder"),
        ],
        disabled: vec![],
        percentage_of_nodes_to_score: None,
    };
    let fwk = Framework::new(&profile, &registry, &ctx()).unwrap();
    let r = fwk
        .schedule_pod(&mut CycleState::default(), &pod(), &nodes(5))
        .unwrap();
    assert_eq!(r.suggested_host, "node-2");
}

#[test]
fn cycles_reuse_the_feasible_list_allocation() {
    let (fwk, _) = framework(
        vec![Arc::new(Probe {
            name: "F",
            reject: vec![("-3", Code::Unschedulable, "no")],
            score_fn: Some(|_| 1),
            ..Probe::default()
        })],
        None,
    );
    let snap = nodes(20);
    let r = fwk
        .schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert_eq!(r.feasible_nodes, 19);
    let kept = fwk.feasible_scratch.lock().capacity();
    assert!(kept >= 19, "the finished cycle gave its list back ({kept})");
    // The next cycle takes it, and gives it back again.
    fwk.schedule_pod(&mut CycleState::default(), &pod(), &snap)
        .unwrap();
    assert_eq!(fwk.feasible_scratch.lock().capacity(), kept);
}

#[test]
fn ties_are_broken_at_random() {
    let (fwk, _) = framework(vec![], None);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let i = fwk.select_host(&[7, 7, 3]).unwrap();
        seen.insert(i);
    }
    assert_eq!(seen.len(), 2, "both tied nodes are chosen sometimes");
    assert!(!seen.contains(&2));
    // Ties are drawn uniformly: each of three tied nodes about a third of
    // the time (the bound is many standard deviations away).
    let mut counts = [0usize; 5];
    for _ in 0..3000 {
        counts[fwk.select_host(&[1, 9, 4, 9, 9]).unwrap()] += 1;
    }
    assert_eq!((counts[0], counts[2]), (0, 0));
    for i in [1, 3, 4] {
        assert!((800..1200).contains(&counts[i]), "{counts:?}");
    }
    assert_eq!(fwk.select_host(&[]), None);
}

#[test]
fn out_of_range_scores_are_errors() {
    let wild = Arc::new(Probe {
        name: "Wild",
        score_fn: Some(|_| 1000),
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![wild], None);
    let r = fwk.schedule_pod(&mut CycleState::default(), &pod(), &nodes(3));
    assert!(matches!(r, Err(ScheduleError::Error(s)) if s.plugin() == "Wild"));
}

#[test]
fn post_filter_nominates_through_the_handle() {
    let full = Arc::new(Probe {
        name: "Fit",
        reject: vec![("", Code::Unschedulable, "Insufficient cpu")],
        ..Probe::default()
    });
    let preempt = Arc::new(Probe {
        name: "Preempt",
        post_filter_nominates: Some("node-1"),
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![full, preempt], None);
    let snap = nodes(3);
    let mut state = CycleState::default();
    let Err(ScheduleError::Unschedulable(fit)) = fwk.schedule_pod(&mut state, &pod(), &snap) else {
        panic!("expected a fit error");
    };
    assert_eq!(fit.diagnosis.node_to_status.rejected.len(), 3);
    let (r, s) = fwk.run_post_filter_plugins(&state, &pod(), &snap, &fit.diagnosis.node_to_status);
    assert!(s.is_success());
    assert_eq!(r.unwrap().nominated_node_name.as_deref(), Some("node-1"));
}

#[test]
fn reserve_failure_unreserves() {
    let reserve = Arc::new(Probe {
        name: "Reserve",
        reserve_fails: true,
        ..Probe::default()
    });
    let (fwk, all) = framework(vec![reserve], None);
    let s = fwk.run_reserve_plugins(&mut CycleState::default(), &pod(), "node-1");
    assert_eq!(s.code(), Code::Error);
    assert_eq!(all[1].unreserve_calls.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn permit_wait_is_allowed_rejected_or_times_out() {
    let gate = Arc::new(Probe {
        name: "Gate",
        permit: Some((Code::Wait, Duration::from_secs(10))),
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![gate], None);
    let fwk = Arc::new(fwk);
    let p = pod();
    let mut state = CycleState::default();
    assert_eq!(
        fwk.run_permit_plugins(&mut state, &p, "node-1").code(),
        Code::Wait
    );
    // Permit plugins find the waiting pods in the cycle state.
    let waiting = state.read::<WaitingPods>().unwrap().clone();
    let w = waiting.get("default/p").unwrap();
    assert_eq!(w.pending_plugins(), ["Gate"]);
    let waiter = {
        let (fwk, p) = (fwk.clone(), p.clone());
        tokio::spawn(async move { fwk.wait_on_permit(&p).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    w.allow("Gate");
    assert!(waiter.await.unwrap().is_success());
    assert!(fwk.waiting_pods().is_empty());

    fwk.run_permit_plugins(&mut state, &p, "node-1");
    fwk.waiting_pods()
        .get("default/p")
        .unwrap()
        .reject("Gate", "gang incomplete");
    let s = fwk.wait_on_permit(&p).await;
    assert_eq!(s.code(), Code::Unschedulable);
    assert_eq!(s.reasons(), ["gang incomplete"]);

    let short = Arc::new(Probe {
        name: "Gate",
        permit: Some((Code::Wait, Duration::from_millis(30))),
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![short], None);
    fwk.run_permit_plugins(&mut state, &p, "node-1");
    let s = tokio::time::timeout(Duration::from_secs(2), fwk.wait_on_permit(&p))
        .await
        .unwrap();
    assert_eq!(s.code(), Code::Unschedulable);
    assert!(s.reasons()[0].contains("timeout"));
}

#[test]
fn permit_rejection_is_returned() {
    let no = Arc::new(Probe {
        name: "No",
        permit: Some((Code::Unschedulable, Duration::ZERO)),
        ..Probe::default()
    });
    let (fwk, _) = framework(vec![no], None);
    let s = fwk.run_permit_plugins(&mut CycleState::default(), &pod(), "node-1");
    assert_eq!(s.code(), Code::Unschedulable);
    assert_eq!(s.plugin(), "No");
}
