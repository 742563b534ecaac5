//! Informer and factory behaviour against the fake client.

use std::sync::Arc;
use std::time::Duration;

use super::fake::{FakeClient, pod};
use super::*;
use crate::api::Pod;
use crate::{Api, ApiError, Client, ObjectEvent};

fn fast() -> ReflectorConfig {
    ReflectorConfig::default().backoff(Backoff::new(
        Duration::from_millis(1),
        Duration::from_millis(20),
    ))
}

fn cached(reader: &CacheReader<Pod>) -> Vec<(String, String)> {
    let mut v: Vec<_> = reader
        .list()
        .iter()
        .map(|p| {
            (
                p.metadata.name().to_string(),
                p.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Polls until `cond` holds, failing the test after five seconds.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn spawn(fake: &Arc<FakeClient>, config: ReflectorConfig) -> Informer<Pod> {
    let client: Arc<dyn Client> = fake.clone();
    Informer::spawn(Api::<Pod>::all(client), config)
}

#[tokio::test]
async fn informer_lists_then_follows_the_watch() {
    let fake = Arc::new(FakeClient::default());
    fake.put(pod("a"));
    fake.put(pod("b"));
    let informer = spawn(&fake, fast());
    let mut events = informer.subscribe();
    informer.wait_synced().await;
    assert!(informer.has_synced());
    assert_eq!(cached(&informer.reader()), fake.names());

    let mut initial = Vec::new();
    for _ in 0..3 {
        initial.push(events.recv().await.expect("event"));
    }
    assert!(
        matches!(initial[2], ObjectEvent::Bookmark { ref resource_version } if resource_version == "2")
    );

    fake.put(pod("c"));
    fake.put(pod("a"));
    fake.remove("b");
    let mut live = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("event in time")
            .expect("stream open");
        live.push(match event {
            ObjectEvent::Added(p) => format!("+{}", p.metadata.name()),
            ObjectEvent::Modified(p) => format!("~{}", p.metadata.name()),
            ObjectEvent::Deleted(p) => format!("-{}", p.metadata.name()),
            ObjectEvent::Bookmark { resource_version } => format!("@{resource_version}"),
        });
    }
    assert_eq!(live, vec!["+c", "~a", "-b"]);
    assert_eq!(cached(&informer.reader()), fake.names());
    assert_eq!(informer.reader().resource_version(), "5");
}

#[tokio::test]
async fn informer_relists_after_compaction_and_ends_equal_to_the_store() {
    let fake = Arc::new(FakeClient::default());
    for name in ["a", "b", "c"] {
        fake.put(pod(name));
    }
    let informer = spawn(&fake, fast());
    let mut events = informer.subscribe();
    informer.wait_synced().await;
    fake.fail_next_watches(3);
    fake.break_watches(ApiError::Unavailable("connection reset".into()));
    fake.remove("a");
    fake.put(pod("b"));
    fake.put(pod("d"));
    fake.compact();
    eventually("relist", || informer.stats().lists >= 2).await;
    eventually("cache equal to store", || {
        cached(&informer.reader()) == fake.names()
    })
    .await;
    let stats = informer.stats();
    assert!(stats.expired >= 1, "{stats:?}");
    assert!(stats.errors >= 3, "{stats:?}");

    // The subscriber saw the difference of the relist, not a reset.
    let mut seen = Vec::new();
    while let Some(event) = events.try_recv() {
        seen.push(event);
    }
    let mut diff: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            ObjectEvent::Added(p) => Some(format!("+{}", p.metadata.name())),
            ObjectEvent::Modified(p) => Some(format!("~{}", p.metadata.name())),
            ObjectEvent::Deleted(p) => Some(format!("-{}", p.metadata.name())),
            ObjectEvent::Bookmark { .. } => None,
        })
        .skip(3)
        .collect();
    diff.sort();
    assert_eq!(diff, vec!["+d", "-a", "~b"]);

    // And the informer keeps following after the relist.
    fake.put(pod("e"));
    eventually("live event after relist", || {
        informer.reader().get(Some("default"), "e").is_some()
    })
    .await;
}

#[tokio::test]
async fn broken_watch_resumes_from_the_last_resource_version() {
    let fake = Arc::new(FakeClient::default());
    fake.put(pod("a"));
    let informer = spawn(&fake, fast());
    informer.wait_synced().await;
    fake.put(pod("b"));
    eventually("b cached", || informer.reader().len() == 2).await;
    fake.break_watches(ApiError::Unavailable("stream reset".into()));
    fake.put(pod("c"));
    eventually("c cached", || informer.reader().len() == 3).await;
    assert_eq!(informer.stats().lists, 1, "no relist for a plain break");
    assert_eq!(fake.watch_from(), vec!["1", "2"]);
    assert_eq!(cached(&informer.reader()), fake.names());
}

#[tokio::test]
async fn failed_lists_back_off_and_recover() {
    let fake = Arc::new(FakeClient::default());
    fake.put(pod("a"));
    fake.fail_next_lists(3);
    let informer = spawn(&fake, fast());
    tokio::time::timeout(Duration::from_secs(5), informer.wait_synced())
        .await
        .expect("synced after failures");
    assert_eq!(informer.stats().errors, 3);
    assert_eq!(fake.list_calls(), 4);
    assert_eq!(informer.reader().len(), 1);
}

#[tokio::test]
async fn lists_are_read_page_by_page() {
    let fake = Arc::new(FakeClient::default());
    for i in 0..5 {
        fake.put(pod(&format!("p{i}")));
    }
    let informer = spawn(&fake, fast().page_size(2));
    informer.wait_synced().await;
    assert_eq!(fake.list_calls(), 3);
    assert_eq!(cached(&informer.reader()), fake.names());
}

#[tokio::test]
async fn stopped_informer_keeps_its_last_state() {
    let fake = Arc::new(FakeClient::default());
    fake.put(pod("a"));
    let informer = spawn(&fake, fast());
    informer.wait_synced().await;
    informer.stop();
    tokio::time::sleep(Duration::from_millis(20)).await;
    fake.put(pod("b"));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(informer.reader().len(), 1);
}

#[tokio::test]
async fn factory_shares_one_watch_per_kind_and_scope() {
    let fake = Arc::new(FakeClient::default());
    fake.put(pod("a"));
    let factory = SharedInformerFactory::with_config(fake.clone(), fast());
    let first = factory.informer::<Pod>();
    let second = factory.informer::<Pod>();
    let scoped = factory.informer_for::<Pod>(InformerScope::all().namespace("default"));
    assert_eq!(factory.len(), 2);
    factory.wait_for_sync().await;
    assert!(first.has_synced() && second.has_synced() && scoped.has_synced());
    eventually("both watches open", || fake.watch_calls() == 2).await;
    first.add_indexer(Indexer::by_namespace());
    assert_eq!(
        second.reader().index_count(NAMESPACE_INDEX, "default"),
        Ok(1),
        "an indexer added through one handle serves every handle"
    );
    factory.shutdown();
    assert!(factory.is_empty());
}

#[tokio::test]
async fn handlers_see_every_change_in_order() {
    let fake = Arc::new(FakeClient::default());
    fake.put(pod("a"));
    let informer = spawn(&fake, fast());
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let sink = seen.clone();
    informer.add_handler(move |event| {
        if let ObjectEvent::Added(p) | ObjectEvent::Modified(p) = event {
            sink.lock()
                .push(p.metadata.resource_version.clone().unwrap_or_default());
        }
    });
    informer.wait_synced().await;
    for _ in 0..50 {
        fake.put(pod("a"));
    }
    eventually("all updates", || seen.lock().len() == 51).await;
    let versions: Vec<i64> = seen.lock().iter().map(|v| v.parse().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}
