//! EtcdStore against a real single-member etcd started per test.
#![cfg(feature = "etcd")]

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use ketch_core::store::{ListOptions, Store, StoreError, WatchEvent, WatchStream};
use ketch_store::conformance::Suite;
use ketch_store::etcd::testing::EtcdCluster;
use ketch_store::etcd::{ConnectError, EtcdConfig, EtcdStore};

fn etcd() -> EtcdCluster {
    EtcdCluster::start(1).expect("etcd starts (install the Debian package etcd-server)")
}

async fn connect(etcd: &EtcdCluster, prefix: &str) -> EtcdStore {
    EtcdStore::connect(EtcdConfig::new(etcd.endpoints()).prefix(prefix))
        .await
        .expect("connects")
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    let event = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on")
        .expect("an event, not an error");
    std::sync::Arc::unwrap_or_clone(event)
}

#[tokio::test]
async fn connect_reports_bad_configuration_clearly() {
    let none: [&str; 0] = [];
    assert_eq!(
        EtcdStore::connect(EtcdConfig::new(none)).await.unwrap_err(),
        ConnectError::NoEndpoints
    );
    let bad_prefix = EtcdStore::connect(EtcdConfig::new(["127.0.0.1:2379"]).prefix("ketch"))
        .await
        .unwrap_err();
    assert!(
        matches!(bad_prefix, ConnectError::InvalidPrefix { .. }),
        "{bad_prefix:?}"
    );
    let bad_endpoint = EtcdStore::connect(EtcdConfig::new(["ftp://x:1"]))
        .await
        .unwrap_err();
    assert!(
        matches!(bad_endpoint, ConnectError::InvalidEndpoint { .. }),
        "{bad_endpoint:?}"
    );

    // A port nobody listens on: bind one, then drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let started = std::time::Instant::now();
    let unreachable = EtcdStore::connect(
        EtcdConfig::new([format!("http://127.0.0.1:{port}")])
            .connect_timeout(Duration::from_secs(1)),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(unreachable, ConnectError::Unreachable { .. }),
        "{unreachable:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(unreachable.to_string().contains(&port.to_string()));
}

#[tokio::test]
async fn crud_maps_onto_etcd_transactions() {
    let etcd = etcd();
    let store = connect(&etcd, "/crud").await;
    assert_eq!(store.prefix(), "/crud/");

    assert_eq!(store.get("/a").await, Ok(None));
    assert!(matches!(
        store.get("").await,
        Err(StoreError::InvalidArgument(_))
    ));

    let created = store.create("/a", b("one")).await.expect("create");
    assert_eq!(created.key, "/a");
    assert_eq!(created.value, b("one"));
    assert_eq!(created.version, 1);
    assert_eq!(created.create_revision, created.mod_revision);
    assert_eq!(store.current_revision().await, Ok(created.mod_revision));
    assert_eq!(store.get("/a").await, Ok(Some(created.clone())));

    assert_eq!(
        store.create("/a", b("again")).await,
        Err(StoreError::AlreadyExists {
            key: "/a".to_string()
        })
    );

    let updated = store
        .update("/a", b("two"), created.mod_revision)
        .await
        .expect("update");
    assert_eq!(updated.version, 2);
    assert_eq!(updated.create_revision, created.create_revision);
    assert_eq!(updated.mod_revision, created.mod_revision + 1);
    assert_eq!(store.get("/a").await, Ok(Some(updated.clone())));

    assert_eq!(
        store.update("/a", b("stale"), created.mod_revision).await,
        Err(StoreError::Conflict {
            key: "/a".to_string(),
            current_revision: updated.mod_revision
        })
    );
    assert_eq!(
        store.update("/missing", b("x"), 0).await,
        Err(StoreError::NotFound {
            key: "/missing".to_string()
        })
    );
    assert_eq!(
        store.update("/missing", b("x"), updated.mod_revision).await,
        Err(StoreError::NotFound {
            key: "/missing".to_string()
        })
    );

    assert_eq!(
        store.delete("/a", Some(created.mod_revision)).await,
        Err(StoreError::Conflict {
            key: "/a".to_string(),
            current_revision: updated.mod_revision
        })
    );
    let (deleted, at) = store
        .delete("/a", Some(updated.mod_revision))
        .await
        .expect("delete");
    assert_eq!(deleted, updated);
    assert_eq!(at, updated.mod_revision + 1);
    assert_eq!(store.get("/a").await, Ok(None));
    assert_eq!(
        store.delete("/a", None).await,
        Err(StoreError::NotFound {
            key: "/a".to_string()
        })
    );
    assert_eq!(
        store.delete("/a", Some(at)).await,
        Err(StoreError::NotFound {
            key: "/a".to_string()
        })
    );

    let again = store.create("/a", b("three")).await.expect("recreate");
    assert_eq!(again.version, 1);
    assert_eq!(again.create_revision, at + 1);
    let (gone, at2) = store.delete("/a", None).await.expect("delete");
    assert_eq!(gone, again);
    assert_eq!(at2, again.mod_revision + 1);
}

#[tokio::test]
async fn paged_lists_stay_on_one_revision() {
    let etcd = etcd();
    let store = connect(&etcd, "/list").await;
    let mut pods = Vec::new();
    for i in 0..10 {
        pods.push(
            store
                .create(&format!("/pods/p{i:02}"), b(&i.to_string()))
                .await
                .expect("create"),
        );
    }
    store
        .create("/podsx", b("neighbour"))
        .await
        .expect("create");
    store.create("/nodes/n1", b("node")).await.expect("create");

    let mut options = ListOptions {
        limit: Some(4),
        ..ListOptions::default()
    };
    let first = store.list("/pods/", &options).await.expect("page 1");
    assert_eq!(first.items.len(), 4);
    assert_eq!(first.remaining, Some(6));
    let snapshot = first.revision;

    // Writes between pages are not seen by the paged list.
    store.create("/pods/p05a", b("late")).await.expect("create");
    store.delete("/pods/p09", None).await.expect("delete");
    store
        .update("/pods/p07", b("changed"), pods[7].mod_revision)
        .await
        .expect("update");

    let mut keys: Vec<String> = first.items.iter().map(|kv| kv.key.clone()).collect();
    let mut token = first.continue_token.clone();
    let mut pages = 1;
    while let Some(t) = token {
        options.continue_token = Some(t);
        let page = store.list("/pods/", &options).await.expect("next page");
        assert_eq!(page.revision, snapshot);
        for kv in &page.items {
            assert!(kv.mod_revision <= snapshot);
        }
        keys.extend(page.items.iter().map(|kv| kv.key.clone()));
        token = page.continue_token;
        pages += 1;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..10).map(|i| format!("/pods/p{i:02}")).collect();
    assert_eq!(keys, expected);

    let latest = store
        .list("/pods/", &ListOptions::default())
        .await
        .expect("latest");
    assert_eq!(latest.items.len(), 10);
    assert_eq!(latest.continue_token, None);
    assert_eq!(latest.remaining, Some(0));
    assert!(latest.revision > snapshot);

    let at = store
        .list(
            "/pods/",
            &ListOptions {
                revision: Some(snapshot),
                ..ListOptions::default()
            },
        )
        .await
        .expect("at snapshot");
    assert_eq!(at.items.len(), 10);
    assert_eq!(at.revision, snapshot);

    let everything = store.list("", &ListOptions::default()).await.expect("all");
    assert_eq!(everything.items.len(), 12);

    let future = store
        .list(
            "/pods/",
            &ListOptions {
                revision: Some(latest.revision + 100),
                ..ListOptions::default()
            },
        )
        .await;
    assert_eq!(
        future,
        Err(StoreError::FutureRevision {
            requested: latest.revision + 100,
            current: latest.revision
        })
    );

    for bad in ["garbage", "5:/nodes/n1"] {
        let result = store
            .list(
                "/pods/",
                &ListOptions {
                    continue_token: Some(bad.to_string()),
                    ..ListOptions::default()
                },
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::InvalidArgument(_))),
            "{bad}: {result:?}"
        );
    }
}

#[tokio::test]
async fn prefixes_keep_clusters_apart() {
    let etcd = etcd();
    let a = connect(&etcd, "/a").await;
    let ab = connect(&etcd, "/ab").await;
    a.create("b/x", b("from a")).await.expect("create in a");
    ab.create("x", b("from ab")).await.expect("create in ab");
    let in_a = a.list("", &ListOptions::default()).await.expect("list a");
    let in_ab = ab.list("", &ListOptions::default()).await.expect("list ab");
    assert_eq!(
        in_a.items
            .iter()
            .map(|kv| kv.key.as_str())
            .collect::<Vec<_>>(),
        ["b/x"]
    );
    assert_eq!(
        in_ab
            .items
            .iter()
            .map(|kv| kv.key.as_str())
            .collect::<Vec<_>>(),
        ["x"]
    );
    assert_eq!(ab.get("b/x").await, Ok(None));
}

#[tokio::test]
async fn watches_deliver_history_and_new_writes_with_previous_values() {
    let etcd = etcd();
    let store = connect(&etcd, "/watch").await;
    let one = store.create("/w/a", b("1")).await.expect("create");
    let two = store
        .update("/w/a", b("2"), one.mod_revision)
        .await
        .expect("update");
    store.create("/other", b("x")).await.expect("create");

    let mut from_now = store.watch("/w/", 0).await.expect("watch now");
    let mut from_start = store
        .watch("/w/", one.mod_revision)
        .await
        .expect("watch history");

    let (deleted, at) = store.delete("/w/a", None).await.expect("delete");
    assert_eq!(deleted, two);
    let three = store.create("/w/b", b("3")).await.expect("create");

    assert_eq!(
        next_event(&mut from_start).await,
        WatchEvent::Put {
            kv: one.clone(),
            prev: None
        }
    );
    assert_eq!(
        next_event(&mut from_start).await,
        WatchEvent::Put {
            kv: two.clone(),
            prev: Some(one.clone())
        }
    );
    for stream in [&mut from_start, &mut from_now] {
        assert_eq!(
            next_event(stream).await,
            WatchEvent::Delete {
                prev: two.clone(),
                revision: at
            }
        );
        assert_eq!(
            next_event(stream).await,
            WatchEvent::Put {
                kv: three.clone(),
                prev: None
            }
        );
    }
    assert!(matches!(
        store.watch("/w/", -1).await,
        Err(StoreError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn compaction_surfaces_as_compacted() {
    let etcd = etcd();
    let store = connect(&etcd, "/compact").await;
    let mut last = store.create("/c", b("0")).await.expect("create");
    let first = last.mod_revision;
    for i in 1..5 {
        last = store
            .update("/c", b(&i.to_string()), last.mod_revision)
            .await
            .expect("update");
    }
    let keep = last.mod_revision - 1;
    store.compact(keep).await.expect("compact");

    let expected = StoreError::Compacted {
        requested: first,
        compact_revision: keep - 1,
    };
    let list = store
        .list(
            "",
            &ListOptions {
                revision: Some(first),
                ..ListOptions::default()
            },
        )
        .await;
    assert_eq!(list, Err(expected.clone()));
    assert_eq!(store.watch("", first).await.err(), Some(expected));

    // The compaction revision itself is still readable and watchable.
    let at_keep = store
        .list(
            "",
            &ListOptions {
                revision: Some(keep),
                ..ListOptions::default()
            },
        )
        .await
        .expect("list at the compaction revision");
    assert_eq!(at_keep.items.len(), 1);
    let mut watch = store.watch("", keep).await.expect("watch from keep");
    assert_eq!(next_event(&mut watch).await.revision(), keep);
    assert_eq!(next_event(&mut watch).await.revision(), last.mod_revision);

    // Compacting again at or below the compaction changes nothing.
    assert_eq!(store.compact(keep - 1).await, Ok(()));
    assert_eq!(store.compact(keep).await, Ok(()));
    assert_eq!(store.compact(0).await, Ok(()));
    let current = store.current_revision().await.expect("revision");
    assert_eq!(
        store.compact(current + 10).await,
        Err(StoreError::FutureRevision {
            requested: current + 10,
            current
        })
    );
}

#[tokio::test]
async fn a_watch_resumes_after_its_member_restarts() {
    let mut etcd = etcd();
    let store = EtcdStore::connect(
        EtcdConfig::new(etcd.endpoints())
            .prefix("/resume")
            .request_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connects");
    let mut watch = store.watch("/r/", 0).await.expect("watch");
    let mut written = Vec::new();
    for i in 0..5 {
        written.push(
            store
                .create(&format!("/r/{i}"), b("x"))
                .await
                .expect("create"),
        );
    }
    for kv in &written[..2] {
        assert_eq!(next_event(&mut watch).await.revision(), kv.mod_revision);
    }

    etcd.kill(0).expect("kill");
    assert!(matches!(
        store.create("/r/while-down", b("x")).await,
        Err(StoreError::Unavailable(_))
    ));
    etcd.restart(0).expect("restart");
    etcd.wait_healthy(0, Duration::from_secs(20))
        .expect("healthy again");

    for i in 5..8 {
        let kv = loop {
            match store.create(&format!("/r/{i}"), b("x")).await {
                Ok(kv) => break kv,
                Err(StoreError::Unavailable(_)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(other) => panic!("create failed: {other}"),
            }
        };
        written.push(kv);
    }
    for kv in &written[2..] {
        let event = next_event(&mut watch).await;
        assert_eq!(event.revision(), kv.mod_revision, "event {event:?}");
        assert_eq!(event.key(), kv.key);
    }
}

#[tokio::test]
async fn credentials_are_checked_at_connect_time() {
    let etcd = etcd();
    let mut admin = ketch_store::etcd::etcd_client::Client::connect(etcd.endpoints(), None)
        .await
        .expect("raw client");
    admin
        .user_add("root", "rootpw", None)
        .await
        .expect("root user");
    admin.role_add("root").await.expect("root role");
    admin
        .user_grant_role("root", "root")
        .await
        .expect("grant root");
    admin.auth_enable().await.expect("enable auth");

    let wrong = EtcdStore::connect(EtcdConfig::new(etcd.endpoints()).credentials("root", "nope"))
        .await
        .unwrap_err();
    assert!(matches!(wrong, ConnectError::AuthFailed(_)), "{wrong:?}");

    let anonymous = EtcdStore::connect(EtcdConfig::new(etcd.endpoints()))
        .await
        .unwrap_err();
    assert!(
        matches!(anonymous, ConnectError::AuthFailed(_)),
        "{anonymous:?}"
    );

    let store = EtcdStore::connect(EtcdConfig::new(etcd.endpoints()).credentials("root", "rootpw"))
        .await
        .expect("right password");
    let kv = store.create("/secured", b("x")).await.expect("create");
    assert_eq!(store.get("/secured").await, Ok(Some(kv)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_store_conformance_suite() {
    let etcd = etcd();
    let store = connect(&etcd, "/conformance").await;
    // One shared etcd: the suite skips the empty-store check (etcd starts at
    // revision 1) and counts revisions from where each check starts.
    Suite::new(|| {
        let store = store.clone();
        async move { store }
    })
    .fresh_stores(false)
    .prefix("/suite/")
    .run()
    .await
    .expect("EtcdStore conforms");
}

#[tokio::test]
async fn operations_on_a_hung_member_fail_unavailable_at_the_deadline() {
    let mut etcd = etcd();
    let store = EtcdStore::connect(
        EtcdConfig::new(etcd.endpoints())
            .prefix("/deadline")
            .request_timeout(Duration::from_millis(800)),
    )
    .await
    .expect("connects");
    let kv = store.create("/d", b("x")).await.expect("create");

    etcd.pause(0).expect("pause");
    let started = std::time::Instant::now();
    let read = store.get("/d").await;
    let write = store.update("/d", b("y"), kv.mod_revision).await;
    let elapsed = started.elapsed();
    etcd.resume(0).expect("resume");

    for result in [read.map(|_| ()), write.map(|_| ())] {
        match result {
            Err(StoreError::Unavailable(message)) => {
                assert!(message.contains("timed out"), "{message}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    // A write that timed out may still be applied once the member runs again.
    let after = store.get("/d").await.expect("get").expect("the key");
    assert!(
        after == kv || (after.value == b("y") && after.mod_revision > kv.mod_revision),
        "{after:?}"
    );
}

#[tokio::test]
async fn a_watch_gives_up_unavailable_when_etcd_stays_away() {
    let mut etcd = etcd();
    let store = EtcdStore::connect(
        EtcdConfig::new(etcd.endpoints())
            .prefix("/gone")
            .request_timeout(Duration::from_millis(500))
            .watch_retry_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("connects");
    let mut watch = store.watch("/", 0).await.expect("watch");
    let kv = store.create("/g", b("x")).await.expect("create");
    assert_eq!(next_event(&mut watch).await.revision(), kv.mod_revision);

    etcd.kill(0).expect("kill");
    let ended = tokio::time::timeout(Duration::from_secs(20), watch.next())
        .await
        .expect("the watch gives up in time");
    match ended {
        Some(Err(StoreError::Unavailable(message))) => {
            assert!(
                message.contains(&format!("revision {}", kv.mod_revision + 1)),
                "{message}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        watch.next().await.is_none(),
        "the stream ends after its error"
    );
}
