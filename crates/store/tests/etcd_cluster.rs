//! EtcdStore on a three-member etcd cluster that loses its leader, then a
//! follower (and so its quorum), then gets both back, under a steady write
//! load with watchers.
#![cfg(feature = "etcd")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use ketch_core::store::{ListOptions, Revision, Store, StoreError};
use ketch_store::etcd::testing::EtcdCluster;
use ketch_store::etcd::{EtcdConfig, EtcdStore};
use tokio::sync::Mutex;

const WRITERS: usize = 4;
const WATCHERS: usize = 3;
/// How soon after a quorum is back writes must succeed again.
const RESUME_BOUND: Duration = Duration::from_secs(5);
/// How soon after the leader is killed writes must succeed again: an
/// election plus the deadline of the writes that were in flight to it.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);

/// An acknowledged write: key, revision, when it was acknowledged.
type Ack = (String, Revision, Instant);

/// Creates `/load/w{writer}/{seq}` keys one after another until told to stop,
/// retrying each key until its outcome is known.
async fn writer(
    store: EtcdStore,
    writer: usize,
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
) -> usize {
    let mut seq = 0;
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = format!("/load/w{writer}/{seq:06}");
        let value = Bytes::from(key.clone());
        let mut ambiguous = false;
        let revision = loop {
            match store.create(&key, value.clone()).await {
                Ok(kv) => break kv.mod_revision,
                Err(StoreError::AlreadyExists { .. }) if ambiguous => {
                    // An earlier attempt was applied after all.
                    match store.get(&key).await {
                        Ok(Some(kv)) if kv.value == value => break kv.mod_revision,
                        Ok(other) => panic!("{key} holds {other:?}, not this writer's value"),
                        Err(err) => {
                            assert!(err.is_retryable(), "get {key}: {err}");
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
                Err(err) => {
                    assert!(
                        matches!(err, StoreError::Unavailable(_)),
                        "create {key}: {err}"
                    );
                    ambiguous = true;
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        acks.lock().await.push((key, revision, Instant::now()));
        seq += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    failures
}

/// Collects the revisions of every event under `/load/` from `start` until
/// `until` (set once the final revision is known) has been reached.
async fn watcher(
    store: EtcdStore,
    start: Revision,
    until: Arc<tokio::sync::watch::Sender<Option<Revision>>>,
) -> Vec<(Revision, String)> {
    let mut seen: Vec<(Revision, String)> = Vec::new();
    let mut final_revision = until.subscribe();
    let mut stream = store.watch("/load/", start).await.expect("watch starts");
    loop {
        if let Some(last) = *final_revision.borrow()
            && seen.last().is_some_and(|(r, _)| *r >= last)
        {
            return seen;
        }
        tokio::select! {
            item = stream.next() => {
                let event = item
                    .expect("the watch does not end")
                    .expect("the watch rides out the failures");
                seen.push((event.revision(), event.key().to_string()));
            }
            _ = final_revision.changed() => {}
        }
    }
}

/// The first acknowledgement after `since`, and how long after it came.
async fn first_ack_after(acks: &Mutex<Vec<Ack>>, since: Instant, wait: Duration) -> Duration {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(at) = acks
            .lock()
            .await
            .iter()
            .map(|(_, _, at)| *at)
            .filter(|at| *at > since)
            .min()
        {
            return at - since;
        }
        assert!(
            Instant::now() < deadline,
            "no write acknowledged within {wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn leader(etcd: &EtcdCluster) -> usize {
    for _ in 0..100 {
        if let Some(leader) = etcd.leader().await {
            return leader;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the cluster elects no leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_members_ride_out_leader_and_follower_loss() {
    let mut etcd = EtcdCluster::start(3).expect("a three-member etcd starts");
    let store = EtcdStore::connect(
        EtcdConfig::new(etcd.endpoints())
            .prefix("/cluster-test")
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connects");
    let start = store.current_revision().await.expect("revision") + 1;

    let (until, _) = tokio::sync::watch::channel(None);
    let until = Arc::new(until);
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| tokio::spawn(watcher(store.clone(), start, until.clone())))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(store.clone(), w, stop.clone(), acks.clone())))
        .collect();

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let first_leader = leader(&etcd).await;
    etcd.kill(first_leader).expect("kill the leader");
    let leader_killed = Instant::now();
    let after_leader_loss = first_ack_after(&acks, leader_killed, FAILOVER_BOUND).await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second_leader = leader(&etcd).await;
    let follower = (0..3)
        .find(|m| *m != first_leader && *m != second_leader)
        .expect("a follower");
    etcd.kill(follower).expect("kill a follower");
    let quorum_lost = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked_without_quorum = acks
        .lock()
        .await
        .iter()
        .filter(|(_, _, at)| *at > quorum_lost + Duration::from_secs(1))
        .count();
    assert_eq!(
        acked_without_quorum, 0,
        "writes acknowledged without quorum"
    );

    etcd.restart(first_leader).expect("restart the old leader");
    let quorum_back = Instant::now();
    let after_quorum_back = first_ack_after(&acks, quorum_back, RESUME_BOUND).await;
    etcd.restart(follower).expect("restart the follower");
    tokio::task::block_in_place(|| {
        for member in 0..3 {
            etcd.wait_healthy(member, Duration::from_secs(20))
                .expect("every member healthy again");
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;

    stop.store(true, Ordering::Relaxed);
    let mut failures = 0;
    for w in writers {
        failures += w.await.expect("writer");
    }
    let acks = acks.lock().await.clone();
    let last = acks.iter().map(|(_, r, _)| *r).max().expect("writes");
    until.send_replace(Some(last));
    let mut seen = Vec::new();
    for w in watchers {
        seen.push(
            tokio::time::timeout(Duration::from_secs(30), w)
                .await
                .expect("watchers catch up")
                .expect("watcher"),
        );
    }

    // No acknowledged write is lost: the store holds exactly the acknowledged keys.
    let listed = store
        .list("/load/", &ListOptions::default())
        .await
        .expect("list");
    let mut stored: Vec<(Revision, String)> = listed
        .items
        .iter()
        .map(|kv| (kv.mod_revision, kv.key.clone()))
        .collect();
    stored.sort();
    let mut acknowledged: Vec<(Revision, String)> =
        acks.iter().map(|(k, r, _)| (*r, k.clone())).collect();
    acknowledged.sort();
    assert_eq!(
        stored, acknowledged,
        "store content differs from the acknowledged writes"
    );

    // Every watcher saw every revision, in order, exactly once.
    for (i, events) in seen.iter().enumerate() {
        assert_eq!(events, &stored, "watcher {i} saw a different history");
    }

    eprintln!(
        "three-member run: {} writes acknowledged, {} failed attempts retried; \
         first write {:?} after the leader was killed, {:?} after quorum came back",
        acks.len(),
        failures,
        after_leader_loss,
        after_quorum_back
    );
}
