//! DefaultPreemption: when no node fits, find a node where evicting
//! strictly lower-priority pods lets the pod fit, evict the fewest and least
//! important of them, and nominate the pod to that node.
//!
//! For each candidate node (one that failed with `Unschedulable`, never
//! `UnschedulableAndUnresolvable`) the plugin removes every lower-priority
//! pod from a copy of the node and of the cycle state (through the PreFilter
//! extensions), checks the fit with the profile's filters, then reprieves the
//! victims from the most important down while the pod still fits. Among the
//! candidates it picks kube-scheduler's way: the lowest highest-victim
//! priority, then the lowest priority sum, then the fewest victims, then the
//! latest start of the most important victims. Victims are deleted through
//! the API in spawned tasks; the pod is nominated to the node.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ketch_core::api::PreemptionPolicy;
use ketch_core::{DeleteParams, Time};

use crate::framework::{
    Code, CycleState, FrameworkHandle, NodeInfo, NodeToStatus, Plugin, PodInfo, PostFilterPlugin,
    PostFilterResult, Snapshot, Status,
};

/// Share of the nodes evaluated as candidates (percent).
pub const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
/// At least this many candidates are evaluated (when there are as many).
pub const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

/// The reason a pod with `preemptionPolicy: Never` does not preempt.
pub const ERR_REASON_POLICY_NEVER: &str = "not eligible due to preemptionPolicy=Never.";
/// The reason a pod waits for victims already terminating on its nominated node.
pub const ERR_REASON_TERMINATING: &str =
    "not eligible due to a terminating pod on the nominated node.";

/// A node where preemption makes the pod fit, with its victims (most
/// important first).
#[derive(Clone, Debug)]
pub struct Candidate {
    /// The node.
    pub node: String,
    /// Pods to evict, most important first.
    pub victims: Vec<Arc<PodInfo>>,
}

/// The DefaultPreemption plugin.
#[derive(Debug, Default)]
pub struct DefaultPreemption {
    offset: AtomicUsize,
}

impl DefaultPreemption {
    /// The registry name.
    pub const NAME: &'static str = "DefaultPreemption";
}

/// True if `a` is more important than `b`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> bool {
    let (pa, pb) = (a.priority(), b.priority());
    if pa != pb {
        return pa > pb;
    }
    start_time(a) < start_time(b)
}

/// When the pod started (or was created); pods without either sort last.
fn start_time(p: &PodInfo) -> (bool, Option<Time>) {
    let t = p
        .pod
        .status
        .start_time
        .or(p.pod.metadata.creation_timestamp);
    (t.is_none(), t)
}

/// The victims that must go from `node` for `pod` to fit, or why none work.
pub fn select_victims_on_node(
    handle: &dyn FrameworkHandle,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Result<Vec<Arc<PodInfo>>, Status> {
    let mut node = node.clone();
    let mut state = state.clone();
    let priority = pod.priority();
    // Pods nominated here with at least the pod's priority keep their place.
    for nominated in handle.nominated_pods(node.name()) {
        if nominated.key != pod.key && nominated.priority() >= priority {
            node.add_pod(nominated.clone());
            let s = handle.run_pre_filter_add_pod(&mut state, pod, &nominated, &node);
            if !s.is_success() {
                return Err(s);
            }
        }
    }
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority() < priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::unresolvable(
            "No preemption victims found for incoming pod",
        ));
    }
    for p in &potential {
        node.remove_pod(&p.key);
        let s = handle.run_pre_filter_remove_pod(&mut state, pod, p, &node);
        if !s.is_success() {
            return Err(s);
        }
    }
    let s = handle.run_filter_plugins(&state, pod, &node);
    if !s.is_success() {
        return Err(s);
    }
    potential.sort_by(|a, b| {
        if more_important(a, b) {
            std::cmp::Ordering::Less
        } else if more_important(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    let mut victims = Vec::new();
    for p in potential {
        node.add_pod(p.clone());
        let s = handle.run_pre_filter_add_pod(&mut state, pod, &p, &node);
        if !s.is_success() {
            return Err(s);
        }
        if !handle.run_filter_plugins(&state, pod, &node).is_success() {
            node.remove_pod(&p.key);
            let s = handle.run_pre_filter_remove_pod(&mut state, pod, &p, &node);
            if !s.is_success() {
                return Err(s);
            }
            victims.push(p);
        }
    }
    Ok(victims)
}

/// The candidate kube-scheduler would pick.
pub fn pick_candidate(candidates: &[Candidate]) -> Option<&Candidate> {
    if let Some(c) = candidates.iter().find(|c| c.victims.is_empty()) {
        return Some(c);
    }
    // Victims are sorted most important first.
    let highest = |c: &Candidate| c.victims.first().map(|v| v.priority()).unwrap_or(i32::MIN);
    let sum = |c: &Candidate| -> i64 {
        c.victims
            .iter()
            .map(|v| i64::from(v.priority()) + i64::from(i32::MAX) + 1)
            .sum()
    };
    // Earliest start among the victims of the highest priority.
    let earliest = |c: &Candidate| -> (bool, Option<Time>) {
        let top = highest(c);
        c.victims
            .iter()
            .filter(|v| v.priority() == top)
            .map(|v| start_time(v))
            .min()
            .unwrap_or((true, None))
    };
    let mut best: Option<&Candidate> = None;
    for c in candidates {
        let better = match best {
            None => true,
            Some(b) => {
                let key_c = (highest(c), sum(c), c.victims.len());
                let key_b = (highest(b), sum(b), b.victims.len());
                key_c < key_b || (key_c == key_b && earliest(c) > earliest(b))
            }
        };
        if better {
            best = Some(c);
        }
    }
    best
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn events_to_register(&self) -> Vec<crate::framework::ClusterEvent> {
        Vec::new()
    }

    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

impl DefaultPreemption {
    /// Whether the pod may preempt now (kube's `PodEligibleToPreemptOthers`).
    fn eligible(
        &self,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &HashMap<&str, &Status>,
        absent: Option<&Status>,
    ) -> Result<(), &'static str> {
        if pod.pod.spec.preemption_policy == Some(PreemptionPolicy::Never) {
            return Err(ERR_REASON_POLICY_NEVER);
        }
        let Some(nominated) = pod
            .pod
            .status
            .nominated_node_name
            .as_deref()
            .filter(|n| !n.is_empty())
        else {
            return Ok(());
        };
        let code = statuses
            .get(nominated)
            .copied()
            .or(absent)
            .map(|s| s.code());
        if code == Some(Code::UnschedulableAndUnresolvable) {
            return Ok(());
        }
        if let Some(node) = snapshot.get(nominated) {
            let priority = pod.priority();
            if node
                .pods
                .iter()
                .any(|p| p.priority() < priority && p.pod.metadata.deletion_timestamp.is_some())
            {
                return Err(ERR_REASON_TERMINATING);
            }
        }
        Ok(())
    }

    /// Candidates among the nodes where preemption might help, starting at
    /// a rotating offset, until enough are found.
    fn find_candidates(
        &self,
        handle: &dyn FrameworkHandle,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &HashMap<&str, &Status>,
        absent: Option<&Status>,
    ) -> (Vec<Candidate>, usize, usize) {
        let nodes = snapshot.nodes();
        let potential: Vec<&Arc<NodeInfo>> = nodes
            .iter()
            .filter(|n| {
                let s = statuses.get(n.name()).copied().or(absent);
                s.is_none_or(|s| s.code() != Code::UnschedulableAndUnresolvable)
            })
            .collect();
        let unresolvable = nodes.len() - potential.len();
        if potential.is_empty() {
            return (Vec::new(), 0, unresolvable);
        }
        let wanted = (potential.len() * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
            .max(MIN_CANDIDATE_NODES_ABSOLUTE)
            .min(potential.len());
        let start = self.offset.fetch_add(1, Ordering::Relaxed) % potential.len();
        let mut candidates = Vec::new();
        let mut failed = 0;
        for i in 0..potential.len() {
            if candidates.len() >= wanted {
                break;
            }
            let node = potential[(start + i) % potential.len()];
            match select_victims_on_node(handle, state, pod, node) {
                Ok(victims) => candidates.push(Candidate {
                    node: node.name().to_string(),
                    victims,
                }),
                Err(_) => failed += 1,
            }
        }
        (candidates, failed, unresolvable)
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        handle: &dyn FrameworkHandle,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let by_name: HashMap<&str, &Status> = statuses
            .rejected
            .iter()
            .map(|(n, s)| (n.as_str(), s))
            .collect();
        let absent = statuses.absent.as_ref();
        if let Err(reason) = self.eligible(pod, snapshot, &by_name, absent) {
            return (None, Status::unschedulable(reason));
        }
        let (candidates, failed, unresolvable) =
            self.find_candidates(handle, state, pod, snapshot, &by_name, absent);
        let Some(chosen) = pick_candidate(&candidates) else {
            let mut parts = Vec::new();
            if failed > 0 {
                parts.push(format!(
                    "{failed} No preemption victims found for incoming pod"
                ));
            }
            if unresolvable > 0 {
                parts.push(format!(
                    "{unresolvable} Preemption is not helpful for scheduling"
                ));
            }
            return (
                None,
                Status::unschedulable(format!(
                    "0/{} nodes are available: {}.",
                    snapshot.len(),
                    parts.join(", ")
                )),
            );
        };
        if !chosen.victims.is_empty() {
            let Ok(rt) = tokio::runtime::Handle::try_current() else {
                return (
                    None,
                    Status::error("preemption needs a tokio runtime to delete victims"),
                );
            };
            for victim in &chosen.victims {
                let client = handle.client().clone();
                let meta = victim.pod.metadata.clone();
                let preemptor = pod.key.clone();
                rt.spawn(async move {
                    let params = DeleteParams {
                        precondition_uid: meta.uid.clone(),
                        ..DeleteParams::default()
                    };
                    if let Err(e) = client
                        .delete("pods", Some(meta.namespace()), meta.name(), &params)
                        .await
                    {
                        tracing::warn!(
                            victim = %format!("{}/{}", meta.namespace(), meta.name()),
                            preemptor = %preemptor,
                            error = %e,
                            "deleting a preemption victim failed"
                        );
                    }
                });
            }
        }
        (
            Some(PostFilterResult {
                nominated_node_name: Some(chosen.node.clone()),
            }),
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use ketch_core::Client;

    use super::*;
    use crate::framework::Snapshot;
    use crate::plugins::testing::{NodeBuilder, PodBuilder, RecordingClient, affinity_term};
    use crate::plugins::{InterPodAffinity, InterPodAffinityArgs, NodeResourcesFit};

    /// Runs the given plugins the way the framework does.
    struct TestHandle {
        plugins: Vec<Arc<dyn Plugin>>,
        client: Arc<dyn Client>,
        nominated: HashMap<String, Vec<Arc<PodInfo>>>,
    }

    impl TestHandle {
        fn new(plugins: Vec<Arc<dyn Plugin>>) -> (Self, Arc<RecordingClient>) {
            let client = Arc::new(RecordingClient::default());
            (
                Self {
                    plugins,
                    client: client.clone(),
                    nominated: HashMap::new(),
                },
                client,
            )
        }

        fn pre_filter(&self, pod: &PodInfo, snapshot: &Snapshot) -> CycleState {
            let mut state = CycleState::default();
            for p in &self.plugins {
                if let Some(pf) = p.as_pre_filter() {
                    let (_, s) = pf.pre_filter(&mut state, pod, snapshot);
                    if s.is_skip() {
                        state.skip_filter_plugin(p.name());
                    }
                }
            }
            state
        }

        /// Filters every node; the statuses of the rejected ones.
        fn statuses(&self, state: &CycleState, pod: &PodInfo, snapshot: &Snapshot) -> NodeToStatus {
            NodeToStatus {
                rejected: snapshot
                    .nodes()
                    .iter()
                    .map(|n| (n.name().to_string(), self.run_filter_plugins(state, pod, n)))
                    .filter(|(_, s)| !s.is_success())
                    .collect(),
                absent: None,
            }
        }
    }

    impl FrameworkHandle for TestHandle {
        fn run_filter_plugins(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
            for p in &self.plugins {
                if state.is_filter_skipped(p.name()) {
                    continue;
                }
                if let Some(f) = p.as_filter() {
                    let s = f.filter(state, pod, node);
                    if !s.is_success() {
                        return s;
                    }
                }
            }
            Status::success()
        }

        fn run_pre_filter_add_pod(
            &self,
            state: &mut CycleState,
            pod: &PodInfo,
            to_add: &Arc<PodInfo>,
            node: &NodeInfo,
        ) -> Status {
            for p in &self.plugins {
                if state.is_filter_skipped(p.name()) {
                    continue;
                }
                if let Some(ext) = p.as_pre_filter().and_then(|pf| pf.extensions()) {
                    let s = ext.add_pod(state, pod, to_add, node);
                    if !s.is_success() {
                        return s;
                    }
                }
            }
            Status::success()
        }

        fn run_pre_filter_remove_pod(
            &self,
            state: &mut CycleState,
            pod: &PodInfo,
            to_remove: &PodInfo,
            node: &NodeInfo,
        ) -> Status {
            for p in &self.plugins {
                if state.is_filter_skipped(p.name()) {
                    continue;
                }
                if let Some(ext) = p.as_pre_filter().and_then(|pf| pf.extensions()) {
                    let s = ext.remove_pod(state, pod, to_remove, node);
                    if !s.is_success() {
                        return s;
                    }
                }
            }
            Status::success()
        }

        fn client(&self) -> &Arc<dyn Client> {
            &self.client
        }

        fn nominated_pods(&self, node_name: &str) -> Vec<Arc<PodInfo>> {
            self.nominated.get(node_name).cloned().unwrap_or_default()
        }
    }

    fn pod(name: &str, priority: i32, cpu: &str) -> PodInfo {
        PodBuilder::new(name)
            .priority(priority)
            .req("cpu", cpu)
            .build()
    }

    fn node(name: &str, pods: Vec<PodInfo>) -> NodeInfo {
        let mut b = NodeBuilder::new(name).capacity("4", "64Gi", "110");
        for p in pods {
            b = b.pod(p);
        }
        b.build()
    }

    fn fit_handle() -> (TestHandle, Arc<RecordingClient>) {
        TestHandle::new(vec![Arc::new(NodeResourcesFit::default())])
    }

    fn preempt(
        handle: &TestHandle,
        preemptor: &PodInfo,
        nodes: Vec<NodeInfo>,
    ) -> (Option<PostFilterResult>, Status) {
        let snapshot = Snapshot::from_nodes(nodes);
        let state = handle.pre_filter(preemptor, &snapshot);
        let statuses = handle.statuses(&state, preemptor, &snapshot);
        DefaultPreemption::default().post_filter(handle, &state, preemptor, &snapshot, &statuses)
    }

    fn victims(handle: &TestHandle, preemptor: &PodInfo, n: NodeInfo) -> Result<Vec<String>, Code> {
        let snapshot = Snapshot::from_nodes(vec![n]);
        let state = handle.pre_filter(preemptor, &snapshot);
        select_victims_on_node(handle, &state, preemptor, &snapshot.nodes()[0])
            .map(|v| v.iter().map(|p| p.key.clone()).collect())
            .map_err(|s| s.code())
    }

    #[test]
    fn minimal_victims_table() {
        let (h, _) = fit_handle();
        type Case = (
            &'static str,
            NodeInfo,
            PodInfo,
            Result<Vec<&'static str>, Code>,
        );
        let cases: Vec<Case> = vec![
            (
                "the more important victim is reprieved",
                node("n", vec![pod("low", 1, "2"), pod("mid", 5, "1")]),
                pod("p", 10, "3"),
                Ok(vec!["default/low"]),
            ),
            (
                "both must go",
                node("n", vec![pod("low", 1, "2"), pod("mid", 5, "1")]),
                pod("p", 10, "4"),
                Ok(vec!["default/mid", "default/low"]),
            ),
            (
                "equal priority is never evicted",
                node("n", vec![pod("same", 10, "3")]),
                pod("p", 10, "2"),
                Err(Code::UnschedulableAndUnresolvable),
            ),
            (
                "higher priority pods are kept, so the pod cannot fit",
                node("n", vec![pod("low", 1, "1"), pod("high", 100, "2")]),
                pod("p", 10, "3"),
                Err(Code::Unschedulable),
            ),
        ];
        for (name, n, p, want) in cases {
            let want = want.map(|v| v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(victims(&h, &p, n), want, "{name}");
        }
    }

    #[test]
    fn nominated_pods_of_higher_priority_keep_their_room() {
        let (mut h, _) = fit_handle();
        h.nominated
            .insert("n".into(), vec![Arc::new(pod("nominee", 50, "1"))]);
        let n = node("n", vec![pod("low", 1, "2"), pod("low2", 1, "1")]);
        assert_eq!(
            victims(&h, &pod("p", 10, "3"), n),
            Ok(vec!["default/low".to_string(), "default/low2".to_string()])
        );
    }

    #[test]
    fn picks_the_node_with_the_least_important_victims() {
        let cases: Vec<(&str, Vec<NodeInfo>, &str)> = vec![
            (
                "lowest highest-priority victim",
                vec![
                    node("n1", vec![pod("a", 5, "3")]),
                    node("n2", vec![pod("b", 1, "3")]),
                ],
                "n2",
            ),
            (
                "lowest priority sum",
                vec![
                    node("n1", vec![pod("a", 3, "2"), pod("b", 3, "2")]),
                    node(
                        "n2",
                        vec![pod("c", 3, "2"), pod("d", 1, "2"), pod("e", 20, "0")],
                    ),
                ],
                "n2",
            ),
            (
                "a tie keeps the first candidate",
                vec![
                    node(
                        "n1",
                        vec![pod("a", 0, "1"), pod("b", 0, "1"), pod("c", 0, "2")],
                    ),
                    node(
                        "n2",
                        vec![pod("d", 0, "2"), pod("e", 0, "1"), pod("f", 0, "1")],
                    ),
                ],
                "n1",
            ),
        ];
        for (name, nodes, want) in cases {
            let (h, _) = fit_handle();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime");
            let _guard = rt.enter();
            let (r, s) = preempt(&h, &pod("p", 10, "4"), nodes);
            assert!(s.is_success(), "{name}: {s}");
            assert_eq!(
                r.and_then(|r| r.nominated_node_name).as_deref(),
                Some(want),
                "{name}"
            );
        }
    }

    #[test]
    fn fewest_victims_prefers_the_cheaper_node() {
        // n1 needs two 2-cpu victims, n2 one 4-cpu victim of the same priority.
        let (h, _) = fit_handle();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let (r, s) = preempt(
            &h,
            &pod("p", 10, "4"),
            vec![
                node("n1", vec![pod("a", 1, "2"), pod("b", 1, "2")]),
                node("n2", vec![pod("c", 1, "4")]),
            ],
        );
        assert!(s.is_success(), "{s}");
        assert_eq!(r.and_then(|r| r.nominated_node_name).as_deref(), Some("n2"));
    }

    #[test]
    fn not_eligible_or_not_helpful() {
        let (h, _) = fit_handle();
        let never = PodBuilder::new("p")
            .priority(10)
            .req("cpu", "4")
            .never_preempt()
            .build();
        let (r, s) = preempt(&h, &never, vec![node("n1", vec![pod("a", 1, "4")])]);
        assert!(r.is_none());
        assert_eq!(s.reasons()[0], ERR_REASON_POLICY_NEVER);
        let (r, s) = preempt(
            &h,
            &pod("p", 10, "4"),
            vec![node("n1", vec![pod("a", 10, "4")])],
        );
        assert!(r.is_none());
        assert_eq!(s.code(), Code::Unschedulable);
        assert_eq!(
            s.reasons()[0],
            "0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn unresolvable_nodes_are_not_candidates() {
        let (h, _) = fit_handle();
        let preemptor = pod("p", 10, "4");
        let snapshot = Snapshot::from_nodes(vec![
            node("n1", vec![pod("a", 1, "4")]),
            node("n2", vec![pod("b", 5, "4")]),
        ]);
        let state = h.pre_filter(&preemptor, &snapshot);
        let statuses = NodeToStatus {
            rejected: vec![
                (
                    "n1".into(),
                    Status::unresolvable("node(s) had untolerated taint {a: b}"),
                ),
                ("n2".into(), Status::unschedulable("Insufficient cpu")),
            ],
            absent: None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let (r, s) =
            DefaultPreemption::default().post_filter(&h, &state, &preemptor, &snapshot, &statuses);
        assert!(s.is_success());
        assert_eq!(r.and_then(|r| r.nominated_node_name).as_deref(), Some("n2"));
    }

    #[test]
    fn anti_affinity_to_a_victim_is_resolved_by_evicting_it() {
        let ipa = InterPodAffinity::with_static_namespaces(InterPodAffinityArgs::default(), [])
            .expect("valid");
        let (h, _) = TestHandle::new(vec![Arc::new(NodeResourcesFit::default()), Arc::new(ipa)]);
        let preemptor = PodBuilder::new("p")
            .priority(10)
            .req("cpu", "1")
            .pod_anti_affinity(affinity_term("app", "db", "kubernetes.io/hostname"))
            .build();
        let n = node(
            "n",
            vec![
                PodBuilder::new("db").priority(1).label("app", "db").build(),
                pod("other", 1, "1"),
            ],
        );
        assert_eq!(
            victims(&h, &preemptor, n),
            Ok(vec!["default/db".to_string()])
        );
    }

    #[tokio::test]
    async fn victims_are_deleted_through_the_client() {
        let (h, client) = fit_handle();
        let (r, s) = preempt(
            &h,
            &pod("p", 10, "3"),
            vec![node("n1", vec![pod("low", 1, "2"), pod("mid", 5, "1")])],
        );
        assert!(s.is_success());
        assert_eq!(r.and_then(|r| r.nominated_node_name).as_deref(), Some("n1"));
        for _ in 0..100 {
            if !client.deletes().is_empty() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            client.deletes().as_slice(),
            [("default".to_string(), "low".to_string())]
        );
    }
}
