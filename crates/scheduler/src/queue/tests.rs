use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ketch_core::ObjectMeta;
use ketch_core::api::Pod;

use super::*;
use crate::framework::{ActionType, EventResource};

/// Priority first, then the earlier enqueue.
struct Sort;

impl Plugin for Sort {
    fn name(&self) -> &'static str {
        "Sort"
    }
    fn events_to_register(&self) -> Vec<ClusterEvent> {
        vec![]
    }
    fn as_queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for Sort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        let (pa, pb) = (a.pod_info.priority(), b.pod_info.priority());
        pa > pb || (pa == pb && a.enqueue_seq < b.enqueue_seq)
    }
}

const NODE_ADD: ClusterEvent = ClusterEvent::new(EventResource::Node, ActionType::ADD);
const POD_DELETE: ClusterEvent = ClusterEvent::new(EventResource::AssignedPod, ActionType::DELETE);

fn queue(config: QueueConfig) -> SchedulingQueue {
    let events = HashMap::from([
        ("Fit", vec![NODE_ADD, POD_DELETE]),
        (
            "Taints",
            vec![ClusterEvent::new(
                EventResource::Node,
                ActionType::UPDATE_NODE_TAINT,
            )],
        ),
    ]);
    SchedulingQueue::new(Arc::new(Sort), events, config).unwrap()
}

fn fast() -> QueueConfig {
    QueueConfig::default().backoff(Duration::from_millis(20), Duration::from_millis(80))
}

fn info(name: &str, priority: i32) -> Arc<PodInfo> {
    let pod = Pod {
        metadata: ObjectMeta::named("default", name),
        spec: ketch_core::api::PodSpec {
            priority: Some(priority),
            ..Default::default()
        },
        ..Pod::default()
    };
    Arc::new(PodInfo::new(Arc::new(pod)).unwrap())
}

fn plugins(names: &[&'static str]) -> HashSet<&'static str> {
    names.iter().copied().collect()
}

fn pop_now(q: &SchedulingQueue) -> Option<String> {
    q.try_pop().map(|p| p.pod_info.key.clone())
}

#[test]
fn active_queue_orders_by_priority_then_arrival() {
    let q = queue(QueueConfig::default());
    q.add(info("low", 0));
    q.add(info("high", 10));
    q.add(info("low2", 0));
    q.add(info("mid", 5));
    let order: Vec<String> = std::iter::from_fn(|| pop_now(&q)).collect();
    assert_eq!(
        order,
        ["default/high", "default/mid", "default/low", "default/low2"]
    );
    assert_eq!(q.in_flight(), 4);
}

#[test]
fn deleted_pods_are_never_popped() {
    let q = queue(QueueConfig::default());
    q.add(info("a", 0));
    q.add(info("b", 0));
    q.delete("default/a");
    assert_eq!(q.depths().active, 1);
    assert_eq!(pop_now(&q).as_deref(), Some("default/b"));
    assert_eq!(pop_now(&q), None);
}

#[test]
fn backoff_doubles_per_attempt_up_to_the_maximum() {
    let c = QueueConfig::default();
    let secs: Vec<u64> = (1..=6).map(|a| c.backoff_for(a).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    assert!(matches!(
        SchedulingQueue::new(
            Arc::new(Sort),
            HashMap::new(),
            QueueConfig::default().backoff(Duration::ZERO, Duration::from_secs(1))
        ),
        Err(QueueError::InvalidBackoff { .. })
    ));
}

#[tokio::test]
async fn errors_go_to_backoff_and_come_back_when_it_runs_out() {
    let q = queue(fast());
    q.add(info("a", 0));
    let p = q.pop().await.unwrap();
    let t0 = Instant::now();
    q.add_unschedulable_if_not_present(p, HashSet::new(), true);
    assert_eq!(q.depths().backoff, 1);
    assert_eq!(pop_now(&q), None, "still backing off");
    let p = tokio::time::timeout(Duration::from_secs(2), q.pop())
        .await
        .unwrap()
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(20));
    assert_eq!(p.attempts, 2);
    // Second failure: twice as long.
    let t1 = Instant::now();
    q.add_unschedulable_if_not_present(p, HashSet::new(), true);
    let _ = tokio::time::timeout(Duration::from_secs(2), q.pop())
        .await
        .unwrap()
        .unwrap();
    assert!(t1.elapsed() >= Duration::from_millis(40));
}

#[test]
fn unschedulable_pods_move_only_on_events_their_rejectors_registered() {
    let q =
        queue(QueueConfig::default().backoff(Duration::from_millis(1), Duration::from_millis(1)));
    q.add(info("fit", 0));
    q.add(info("taint", 0));
    let a = q.try_pop().unwrap();
    let b = q.try_pop().unwrap();
    q.add_unschedulable_if_not_present(a, plugins(&["Fit"]), false);
    q.add_unschedulable_if_not_present(b, plugins(&["Taints"]), false);
    assert_eq!(q.depths().unschedulable, 2);
    // An event nobody registered moves nothing.
    let label = ClusterEvent::new(EventResource::Node, ActionType::UPDATE_NODE_LABEL);
    assert_eq!(q.move_all_to_active_or_backoff(label), 0);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(q.move_all_to_active_or_backoff(POD_DELETE), 1);
    assert_eq!(pop_now(&q).as_deref(), Some("default/fit"));
    assert_eq!(q.depths().unschedulable, 1);
    let taint = ClusterEvent::new(
        EventResource::Node,
        ActionType::UPDATE_NODE_TAINT | ActionType::UPDATE_NODE_LABEL,
    );
    assert_eq!(q.move_all_to_active_or_backoff(taint), 1);
    assert_eq!(pop_now(&q).as_deref(), Some("default/taint"));
}

#[test]
fn an_event_during_the_attempt_is_not_lost() {
    let q =
        queue(QueueConfig::default().backoff(Duration::from_millis(1), Duration::from_millis(1)));
    q.add(info("a", 0));
    q.add(info("b", 0));
    let a = q.try_pop().unwrap();
    // While `a` is being scheduled, a node is added...
    q.move_all_to_active_or_backoff(NODE_ADD);
    // ...then its attempt fails because of Fit, which registered that event.
    q.add_unschedulable_if_not_present(a, plugins(&["Fit"]), false);
    assert_eq!(q.depths().unschedulable, 0);
    assert_eq!(q.depths().backoff, 1);
    // An event Taints did not register does not rescue `b`.
    let b = q.try_pop().unwrap();
    q.move_all_to_active_or_backoff(NODE_ADD);
    q.add_unschedulable_if_not_present(b, plugins(&["Taints"]), false);
    assert_eq!(q.depths().unschedulable, 1);
}

#[test]
fn unschedulable_pods_are_flushed_after_the_maximum_wait() {
    let mut c = QueueConfig::default()
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .max_unschedulable(Duration::from_secs(300));
    c.flush_interval = Duration::from_secs(30);
    let q = queue(c);
    q.add(info("a", 0));
    let a = q.try_pop().unwrap();
    q.add_unschedulable_if_not_present(a, plugins(&["Fit"]), false);
    let now = Instant::now();
    q.flush(now + Duration::from_secs(60));
    assert_eq!(q.depths().unschedulable, 1);
    q.flush(now + Duration::from_secs(301));
    assert_eq!(q.depths().unschedulable, 0);
    assert_eq!(q.depths().active, 1);
}

#[test]
fn relevant_updates_move_unschedulable_pods_status_updates_do_not() {
    let q =
        queue(QueueConfig::default().backoff(Duration::from_millis(1), Duration::from_millis(1)));
    q.add(info("a", 0));
    let a = q.try_pop().unwrap();
    q.add_unschedulable_if_not_present(a, plugins(&["Fit"]), false);
    let mut status_only = (*info("a", 0).pod).clone();
    status_only.status.message = Some("x".into());
    q.update(Arc::new(PodInfo::new(Arc::new(status_only)).unwrap()));
    assert_eq!(q.depths().unschedulable, 1);
    let mut relabeled = (*info("a", 0).pod).clone();
    relabeled.metadata.labels.insert("tier".into(), "db".into());
    q.update(Arc::new(PodInfo::new(Arc::new(relabeled)).unwrap()));
    assert_eq!(q.depths().unschedulable, 0);
}

#[test]
fn pods_deleted_during_their_attempt_are_not_requeued() {
    let q = queue(QueueConfig::default());
    q.add(info("a", 0));
    let a = q.try_pop().unwrap();
    q.delete("default/a");
    q.add_unschedulable_if_not_present(a, plugins(&["Fit"]), false);
    assert_eq!(q.depths(), QueueDepths::default());
    assert_eq!(q.in_flight(), 0);
}

#[test]
fn nominated_pods_are_tracked_per_node() {
    let q = queue(QueueConfig::default());
    let p = info("a", 10);
    q.add_nominated_pod(p.clone(), "n1");
    assert!(q.has_nominated_pods());
    assert_eq!(q.nominated_pods_for_node("n1").len(), 1);
    q.add_nominated_pod(p, "n2");
    assert!(q.nominated_pods_for_node("n1").is_empty());
    assert_eq!(q.nominated_node("default/a").as_deref(), Some("n2"));
    let all = q.nominations();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].0, "n2");
    assert_eq!(all[0].1.len(), 1);
    q.delete("default/a");
    assert!(!q.has_nominated_pods());
}

#[test]
fn depth_gauges_follow_the_queue() {
    let gauges = QueueGauges::default();
    let q = queue(fast()).with_gauges(gauges.clone());
    q.add(info("a", 0));
    q.add(info("b", 0));
    assert_eq!(gauges.active.get(), 2);
    let a = q.try_pop().unwrap();
    q.add_unschedulable_if_not_present(a, plugins(&["Fit"]), false);
    assert_eq!(gauges.active.get(), 1);
    assert_eq!(gauges.unschedulable.get(), 1);
}

#[tokio::test]
async fn pop_wakes_for_new_pods_and_returns_none_when_closed() {
    let q = Arc::new(queue(QueueConfig::default()));
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.pop().await.map(|p| p.pod_info.key.clone()) })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    q.add(info("a", 0));
    let got = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.as_deref(), Some("default/a"));
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.pop().await.is_none() })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    q.close();
    assert!(
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap()
    );
}

#[tokio::test]
async fn pop_wakes_when_an_event_moves_a_pod_to_backoff() {
    let q = Arc::new(queue(fast()));
    q.add(info("a", 0));
    let a = q.pop().await.unwrap();
    q.done("default/a");
    // Parked without an in-flight record: no event seen yet.
    q.add_unschedulable_if_not_present(a, plugins(&["Fit"]), false);
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.pop().await.map(|p| p.pod_info.key.clone()) })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    q.move_all_to_active_or_backoff(NODE_ADD);
    let got = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.as_deref(), Some("default/a"));
}
