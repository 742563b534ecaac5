//! The scheduler end to end through the in-process API server on
//! MemoryStore with the default plugins: pods are created through the API,
//! watched, scheduled and bound through the API.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ketch_core::api::{ConditionStatus, Event, Node, Pod};
use ketch_core::{Api, ListParams};
use ketch_scheduler::Scheduler;
use ketch_scheduler::metrics::AttemptResult;
use ketch_scheduler::plugins::{default_profile, default_registry};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_bound_and_unschedulable_pods_explain_why() {
    let (_server, client) = server().await;
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..4 {
        nodes.create(node(&format!("n{i}"))).await.unwrap();
    }
    nodes
        .create(tainted_node("gpu-0", "dedicated", "gpu"))
        .await
        .unwrap();
    let scheduler = Scheduler::builder(client.clone())
        .registry(default_registry())
        .profile(default_profile("default-scheduler"))
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let s = scheduler.clone();
        tokio::spawn(async move {
            s.run(async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..40 {
        pods.create(pod("default", &format!("p{i}"), "100m", "500Mi"))
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            bound_pods(&client, "default").await.len() == 40
        })
        .await,
        "every pod is bound"
    );
    // Nothing lands on the tainted node; nodes are used evenly enough.
    let bound = bound_pods(&client, "default").await;
    assert!(
        bound
            .iter()
            .all(|p| p.spec.node_name.as_deref() != Some("gpu-0"))
    );

    pods.create(pod("default", "huge", "6", "1Gi"))
        .await
        .unwrap();
    // The filter summary, then what preemption (PostFilter) found.
    let expected = "0/5 nodes are available: 4 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: gpu}.";
    let complete = |m: &str| m.starts_with(expected) && m.ends_with('.') && !m.ends_with("..");
    let seen = Arc::new(parking_lot_free::Slot::default());
    let found = eventually(Duration::from_secs(10), || {
        let pods = pods.clone();
        let seen = seen.clone();
        async move {
            let Ok(p) = pods.get("huge").await else {
                return false;
            };
            let Some(c) = p
                .status
                .conditions
                .iter()
                .find(|c| c.type_ == "PodScheduled")
            else {
                return false;
            };
            seen.set(c.message.clone().unwrap_or_default());
            c.status == ConditionStatus::False
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref().is_some_and(complete)
        }
    })
    .await;
    assert!(found, "condition message was {:?}", seen.get());
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let has_event = eventually(Duration::from_secs(5), || async {
        events
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items.iter().any(|e| {
                    e.reason.as_deref() == Some("FailedScheduling")
                        && e.involved_object.name.as_deref() == Some("huge")
                        && e.message.as_deref().is_some_and(complete)
                })
            })
            .unwrap_or(false)
    })
    .await;
    assert!(has_event, "a FailedScheduling event is recorded");

    // A bigger node arrives: the node event moves the pod back and it binds.
    let mut big = node("big");
    big.status
        .allocatable
        .insert("cpu".into(), ketch_core::Quantity::from("16"));
    nodes.create(big).await.unwrap();
    assert!(
        eventually(Duration::from_secs(15), || async {
            pods.get("huge")
                .await
                .is_ok_and(|p| p.spec.node_name.as_deref() == Some("big"))
        })
        .await,
        "the pod is bound once a node fits"
    );

    let m = scheduler.metrics_handle();
    assert_eq!(
        m.attempts("default-scheduler", AttemptResult::Scheduled),
        41
    );
    assert!(m.attempts("default-scheduler", AttemptResult::Unschedulable) >= 1);
    let text = scheduler.metrics();
    assert!(
        text.contains("scheduler_pending_pods{queue=\"active\"}"),
        "{text}"
    );
    assert!(text.contains("scheduler_pod_scheduling_duration_seconds"));
    assert!(
        eventually(Duration::from_secs(5), || async {
            scheduler.cache().assumed_count() == 0
        })
        .await,
        "every assumed pod is confirmed by the informer"
    );
    assert_eq!(scheduler.cache().pod_count(), 41);
    let _ = stop.send(());
    runner.await.unwrap().unwrap();
}

mod parking_lot_free {
    /// A string slot shared with a polling closure.
    #[derive(Default)]
    pub struct Slot(std::sync::Mutex<String>);

    impl Slot {
        pub fn set(&self, s: String) {
            if let Ok(mut g) = self.0.lock() {
                *g = s;
            }
        }
        pub fn get(&self) -> String {
            self.0.lock().map(|g| g.clone()).unwrap_or_default()
        }
    }
}
