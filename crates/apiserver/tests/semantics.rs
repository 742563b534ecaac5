//! Semantics of the verbs through the in-process client: create, get, list,
//! update, status, patch, delete, watch, bind; conflicts, selectors, paging,
//! finalizers, graceful deletion, namespaces.

mod common;

use common::{describe, next_event, no_event, pod, server};
use ketch_core::api::{Namespace, Pod, PodPhase};
use ketch_core::{
    Api, ApiError, DeleteOutcome, DeleteParams, ListParams, ObjectEvent, ObjectMeta, WatchParams,
};

#[tokio::test]
async fn pod_lifecycle_through_the_client() {
    let (server, _) = server().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let created = pods.create(pod("default", "web")).await.unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let rv = created.metadata.resource_version.clone().unwrap();
    let got = pods.get("web").await.unwrap();
    assert_eq!(got.metadata.resource_version.as_deref(), Some(rv.as_str()));
    assert_eq!(
        got.spec.restart_policy,
        Some(ketch_core::api::RestartPolicy::Always)
    );
    let list = pods.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);

    let mut watch = pods
        .client()
        .watch("pods", Some("default"), &WatchParams::from_version(&rv))
        .await
        .unwrap();

    let mut changed = (*got).clone();
    changed.metadata.labels.insert("app".into(), "web".into());
    let updated = pods.update(changed.clone()).await.unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    assert_eq!(
        updated.metadata.generation,
        Some(1),
        "metadata change keeps generation"
    );
    // The same stale object again: conflict.
    let err = pods.update(changed).await.unwrap_err();
    assert!(matches!(err, ApiError::Conflict(_)), "{err:?}");

    let ev = next_event(&mut watch).await.unwrap();
    assert_eq!(describe(&ev), ("Modified".into(), "web".into()));

    match pods.delete("web", &DeleteParams::default()).await.unwrap() {
        DeleteOutcome::Deleted(_) => {}
        other => panic!("unbound pod is deleted at once, got {other:?}"),
    }
    let ev = next_event(&mut watch).await.unwrap();
    assert_eq!(describe(&ev), ("Deleted".into(), "web".into()));
    assert!(matches!(
        pods.get("web").await,
        Err(ApiError::NotFound { .. })
    ));
}

#[tokio::test]
async fn create_requires_an_active_namespace() {
    let (server, _) = server().await;
    let client = server.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "nowhere");
    let err = pods.create(pod("nowhere", "a")).await.unwrap_err();
    assert_eq!(
        err,
        ApiError::NotFound {
            resource: "namespaces".into(),
            name: "nowhere".into()
        }
    );
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(Namespace {
        metadata: ObjectMeta::cluster_named("team"),
        ..Default::default()
    })
    .await
    .unwrap();
    let team: Api<Pod> = Api::namespaced(client.clone(), "team");
    team.create(pod("team", "a")).await.unwrap();
    match nss.delete("team", &DeleteParams::default()).await.unwrap() {
        DeleteOutcome::Pending(ns) => {
            assert!(ns.metadata().deletion_timestamp.is_some());
        }
        other => panic!("namespace with finalizers is marked, got {other:?}"),
    }
    let err = team.create(pod("team", "b")).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Forbidden(ref m) if m.contains("being terminated")),
        "{err:?}"
    );
}

#[tokio::test]
async fn generate_name_and_bind() {
    let (server, _) = server().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let mut p = pod("default", "");
    p.metadata.name = None;
    p.metadata.generate_name = Some("web-".into());
    let created = pods.create(p).await.unwrap();
    let name = created.metadata.name().to_string();
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    let bound = server
        .client()
        .bind("default", &name, "node-1")
        .await
        .unwrap();
    let bound: &Pod = bound.downcast_ref().unwrap();
    assert_eq!(bound.spec.node_name.as_deref(), Some("node-1"));
    let err = server
        .client()
        .bind("default", &name, "node-2")
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Conflict(_)), "{err:?}");
    let on_node = pods
        .list(&ListParams::default().fields("spec.nodeName=node-1"))
        .await
        .unwrap();
    assert_eq!(on_node.items.len(), 1);
    let unbound = pods
        .list(&ListParams::default().fields("spec.nodeName="))
        .await
        .unwrap();
    assert!(unbound.items.is_empty());
}

#[tokio::test]
async fn node_watchers_get_only_their_pods() {
    let (server, _) = server().await;
    let client = server.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut w1 = client
        .watch(
            "pods",
            None,
            &WatchParams::default().fields("spec.nodeName=n1"),
        )
        .await
        .unwrap();
    let mut w2 = client
        .watch(
            "pods",
            None,
            &WatchParams::default().fields("spec.nodeName=n2"),
        )
        .await
        .unwrap();
    pods.create(pod("default", "a")).await.unwrap();
    pods.create(pod("default", "b")).await.unwrap();
    client.bind("default", "a", "n1").await.unwrap();
    client.bind("default", "b", "n2").await.unwrap();
    let ev = next_event(&mut w1).await.unwrap();
    assert_eq!(describe(&ev), ("Added".into(), "a".into()));
    let ev = next_event(&mut w2).await.unwrap();
    assert_eq!(describe(&ev), ("Added".into(), "b".into()));
    no_event(&mut w1).await;
    no_event(&mut w2).await;
    let mut done = (*pods.get("a").await.unwrap()).clone();
    done.status.phase = Some(PodPhase::Running);
    pods.update_status(done).await.unwrap();
    assert!(matches!(
        next_event(&mut w1).await.unwrap(),
        ObjectEvent::Modified(_)
    ));
    no_event(&mut w2).await;
}

#[tokio::test]
async fn status_subresource_isolation() {
    let (server, _) = server().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let created = pods.create(pod("default", "iso")).await.unwrap();
    // A main update cannot change status.
    let mut p = (*created).clone();
    p.status.phase = Some(PodPhase::Running);
    p.spec.active_deadline_seconds = Some(60);
    let updated = pods.update(p).await.unwrap();
    assert_eq!(updated.status.phase, None, "update ignores status");
    assert_eq!(updated.spec.active_deadline_seconds, Some(60));
    assert_eq!(
        updated.metadata.generation,
        Some(2),
        "spec change bumps generation"
    );
    // A status update cannot change spec or metadata.
    let mut p = (*updated).clone();
    p.status.phase = Some(PodPhase::Running);
    p.spec.active_deadline_seconds = Some(5);
    p.metadata.labels.insert("sneaky".into(), "yes".into());
    let status = pods.update_status(p).await.unwrap();
    assert_eq!(status.status.phase, Some(PodPhase::Running));
    assert_eq!(
        status.spec.active_deadline_seconds,
        Some(60),
        "status update ignores spec"
    );
    assert!(
        !status.metadata.labels.contains_key("sneaky"),
        "and metadata"
    );
    assert_eq!(
        status.metadata.generation,
        Some(2),
        "and keeps the generation"
    );
    // A stale status update conflicts.
    let mut stale = (*updated).clone();
    stale.status.phase = Some(PodPhase::Failed);
    assert!(matches!(
        pods.update_status(stale).await,
        Err(ApiError::Conflict(_))
    ));
    // An update without resourceVersion is unconditional.
    let mut blind = (*status).clone();
    blind.metadata.resource_version = None;
    blind.metadata.labels.insert("blind".into(), "yes".into());
    let blind = pods.update(blind).await.unwrap();
    assert_eq!(blind.metadata.labels["blind"], "yes");
    // A no-op update writes nothing.
    let same = pods.update((*blind).clone()).await.unwrap();
    assert_eq!(
        same.metadata.resource_version,
        blind.metadata.resource_version
    );
}

#[tokio::test]
async fn merge_patch() {
    let (server, _) = server().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    pods.create(pod("default", "pat")).await.unwrap();
    let patched = pods
        .patch(
            "pat",
            &serde_json::json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "status": {"phase": "Running"}}),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.len(), 2);
    assert_eq!(
        patched.status.phase, None,
        "patch of the main resource ignores status"
    );
    let patched = pods
        .patch(
            "pat",
            &serde_json::json!({"metadata": {"labels": {"a": null}}}),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.keys().collect::<Vec<_>>(), ["b"]);
    let err = pods
        .patch(
            "pat",
            &serde_json::json!({"metadata": {"resourceVersion": "1"}, "spec": {"priority": 3}}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::Conflict(_)), "{err:?}");
    assert!(matches!(
        pods.patch("missing", &serde_json::json!({})).await,
        Err(ApiError::NotFound { .. })
    ));
}

#[tokio::test]
async fn label_and_field_selectors_and_paging() {
    let (server, _) = server().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    for i in 0..25 {
        let mut p = pod("default", &format!("sel-{i:02}"));
        p.metadata.labels.insert(
            "parity".into(),
            if i % 2 == 0 { "even" } else { "odd" }.into(),
        );
        pods.create(p).await.unwrap();
    }
    let even = pods
        .list(&ListParams::default().labels("parity=even"))
        .await
        .unwrap();
    assert_eq!(even.items.len(), 13);
    let set = pods
        .list(&ListParams::default().labels("parity in (even,odd),parity!=odd"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 13);
    let named = pods
        .list(&ListParams::default().fields("metadata.name=sel-03"))
        .await
        .unwrap();
    assert_eq!(named.items.len(), 1);
    // Paging: pages of 10 over a consistent snapshot, continued while
    // objects are added.
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(10);
    let mut pages = 0;
    let mut added = None;
    loop {
        let page = pods.list(&params).await.unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|p| p.metadata.name().to_string()));
        if pages == 1 {
            added = pods
                .create(pod("default", "sel-99"))
                .await
                .unwrap()
                .metadata
                .resource_version
                .clone();
        }
        match page.continue_token {
            Some(t) => params = ListParams::default().limit(10).continue_from(&t),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen.len(),
        25,
        "the snapshot excludes the pod added while paging"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in key order");
    // Paging with a label selector fills pages with matches only.
    let odd_page = pods
        .list(&ListParams::default().labels("parity=odd").limit(5))
        .await
        .unwrap();
    assert_eq!(odd_page.items.len(), 5);
    assert!(
        odd_page
            .items
            .iter()
            .all(|p| p.metadata.labels["parity"] == "odd")
    );
    assert!(odd_page.continue_token.is_some());
    // resourceVersion=0 is served from the cache, everything at once.
    let any = pods
        .list(&ListParams {
            resource_version: Some("0".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(any.items.len() >= 25);
    // A resourceVersion is served from the cache once it is that fresh.
    let fresh = pods
        .list(&ListParams {
            resource_version: added,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fresh.items.len(), 26);
    // An exact resourceVersion reads the past.
    let exact = pods
        .list(&ListParams {
            resource_version: Some(even.resource_version.clone()),
            resource_version_match: Some(ketch_core::ResourceVersionMatch::Exact),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 25);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_cleared() {
    let (server, _) = server().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let mut p = pod("default", "fin");
    p.metadata.finalizers = vec!["example.com/cleanup".into()];
    pods.create(p).await.unwrap();
    let pending = match pods.delete("fin", &DeleteParams::default()).await.unwrap() {
        DeleteOutcome::Pending(o) => o,
        other => panic!("expected pending, got {other:?}"),
    };
    assert!(pending.metadata().deletion_timestamp.is_some());
    // A second delete changes nothing.
    assert!(matches!(
        pods.delete("fin", &DeleteParams::default()).await.unwrap(),
        DeleteOutcome::Pending(_)
    ));
    let mut current = (*pods.get("fin").await.unwrap()).clone();
    assert!(current.metadata.deletion_timestamp.is_some());
    current.metadata.finalizers.clear();
    pods.update(current).await.unwrap();
    assert!(matches!(
        pods.get("fin").await,
        Err(ApiError::NotFound { .. })
    ));
}

#[tokio::test]
async fn graceful_pod_deletion() {
    let (server, _) = server().await;
    let client = server.client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["g1", "g2", "g3"] {
        pods.create(pod("default", name)).await.unwrap();
        client.bind("default", name, "n1").await.unwrap();
    }
    // A bound pod is marked with its grace period, not removed.
    let marked = match pods.delete("g1", &DeleteParams::default()).await.unwrap() {
        DeleteOutcome::Pending(o) => o,
        other => panic!("expected pending, got {other:?}"),
    };
    assert_eq!(marked.metadata().deletion_grace_period_seconds, Some(30));
    // The node agent confirms with grace 0.
    let confirmed = pods
        .delete(
            "g1",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(matches!(confirmed, DeleteOutcome::Deleted(_)));
    assert!(pods.get_opt("g1").await.unwrap().is_none());
    // Or by reporting the pod terminal.
    let grace = DeleteParams {
        grace_period_seconds: Some(10),
        ..Default::default()
    };
    assert!(matches!(
        pods.delete("g2", &grace).await.unwrap(),
        DeleteOutcome::Pending(_)
    ));
    let mut done = (*pods.get("g2").await.unwrap()).clone();
    assert_eq!(done.metadata.deletion_grace_period_seconds, Some(10));
    done.status.phase = Some(PodPhase::Succeeded);
    pods.update_status(done).await.unwrap();
    assert!(pods.get_opt("g2").await.unwrap().is_none());
    // Grace 0 from the start removes at once.
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    assert!(matches!(
        pods.delete("g3", &now).await.unwrap(),
        DeleteOutcome::Deleted(_)
    ));
    // Preconditions.
    pods.create(pod("default", "g4")).await.unwrap();
    let wrong_uid = DeleteParams {
        precondition_uid: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        pods.delete("g4", &wrong_uid).await,
        Err(ApiError::Conflict(_))
    ));
}

#[tokio::test]
async fn watch_from_a_compacted_window_is_expired_and_bookmarks_arrive() {
    let store: std::sync::Arc<dyn ketch_core::Store> =
        std::sync::Arc::new(ketch_store::MemoryStore::new());
    let server = ketch_apiserver::ApiServer::builder(store)
        .cache_config(ketch_apiserver::CacheConfig {
            history: 5,
            bookmark_interval: std::time::Duration::from_millis(50),
            ..Default::default()
        })
        .build()
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let first = pods.create(pod("default", "w0")).await.unwrap();
    let rv0 = first.metadata.resource_version.clone().unwrap();
    for i in 1..10 {
        pods.create(pod("default", &format!("w{i}"))).await.unwrap();
    }
    pods.list(&ListParams::default()).await.unwrap();
    let err = match server
        .client()
        .watch("pods", None, &WatchParams::from_version(&rv0))
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("a watch before the window must fail"),
    };
    assert!(matches!(err, ApiError::Expired(_)), "{err:?}");
    // Within the window: the last events are replayed.
    let recent = pods.get("w8").await.unwrap();
    let mut w = server
        .client()
        .watch(
            "pods",
            None,
            &WatchParams {
                bookmarks: true,
                ..WatchParams::from_version(recent.metadata.resource_version.as_deref().unwrap())
            },
        )
        .await
        .unwrap();
    assert_eq!(
        describe(&next_event(&mut w).await.unwrap()),
        ("Added".into(), "w9".into())
    );
    match next_event(&mut w).await.unwrap() {
        ObjectEvent::Bookmark { resource_version } => assert!(!resource_version.is_empty()),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn services_get_unique_cluster_ips() {
    use ketch_core::api::{Service, ServicePort, ServiceSpec};
    let store: std::sync::Arc<dyn ketch_core::Store> =
        std::sync::Arc::new(ketch_store::MemoryStore::new());
    let server = ketch_apiserver::ApiServer::builder(store.clone())
        .service_cidr("10.0.0.0/29")
        .build()
        .await
        .unwrap();
    let svcs: Api<Service> = Api::namespaced(server.client(), "default");
    let svc = |name: &str, ip: Option<&str>| Service {
        metadata: ObjectMeta::named("default", name),
        spec: ServiceSpec {
            ports: vec![ServicePort {
                port: 80,
                ..Default::default()
            }],
            cluster_ip: ip.map(str::to_string),
            ..Default::default()
        },
        ..Default::default()
    };
    let requested = svcs.create(svc("fixed", Some("10.0.0.3"))).await.unwrap();
    assert_eq!(requested.spec.cluster_ip.as_deref(), Some("10.0.0.3"));
    let err = svcs.create(svc("dup", Some("10.0.0.3"))).await.unwrap_err();
    assert!(err.to_string().contains("already allocated"), "{err}");
    let err = svcs
        .create(svc("far", Some("192.168.0.1")))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not in the valid range 10.0.0.0/29"),
        "{err}"
    );
    let headless = svcs.create(svc("headless", Some("None"))).await.unwrap();
    assert_eq!(headless.spec.cluster_ip.as_deref(), Some("None"));
    let mut ips = vec!["10.0.0.3".to_string()];
    for i in 0..5 {
        let s = svcs.create(svc(&format!("s{i}"), None)).await.unwrap();
        ips.push(s.spec.cluster_ip.clone().unwrap());
    }
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "{ips:?}");
    assert!(
        svcs.create(svc("full", None)).await.is_err(),
        "a /29 has 6 addresses"
    );
    // Changing the IP is rejected; omitting it keeps it.
    let mut s0 = (*svcs.get("s0").await.unwrap()).clone();
    let ip = s0.spec.cluster_ip.clone().unwrap();
    s0.spec.cluster_ip = Some("10.0.0.3".into());
    assert!(
        svcs.update(s0.clone())
            .await
            .unwrap_err()
            .to_string()
            .contains("immutable")
    );
    s0.spec.cluster_ip = None;
    s0.spec.cluster_ips.clear();
    assert_eq!(
        svcs.update(s0).await.unwrap().spec.cluster_ip.as_deref(),
        Some(ip.as_str())
    );
    // Deleting releases the IP.
    svcs.delete("s0", &DeleteParams::default()).await.unwrap();
    let again = svcs.create(svc("again", Some(&ip))).await.unwrap();
    assert_eq!(again.spec.cluster_ip.as_deref(), Some(ip.as_str()));
    // A restarted server knows what is allocated.
    drop(server);
    let restarted = ketch_apiserver::ApiServer::builder(store)
        .service_cidr("10.0.0.0/29")
        .build()
        .await
        .unwrap();
    let svcs: Api<Service> = Api::namespaced(restarted.client(), "default");
    let err = svcs.create(svc("dup2", Some(&ip))).await.unwrap_err();
    assert!(err.to_string().contains("already allocated"), "{err}");
}

#[tokio::test]
async fn default_tolerations_are_added() {
    let (server, _) = server().await;
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let p = pods.create(pod("default", "tol")).await.unwrap();
    let keys: Vec<_> = p
        .spec
        .tolerations
        .iter()
        .map(|t| (t.key.clone().unwrap_or_default(), t.toleration_seconds))
        .collect();
    assert_eq!(
        keys,
        [
            ("node.kubernetes.io/not-ready".to_string(), Some(300)),
            ("node.kubernetes.io/unreachable".to_string(), Some(300))
        ]
    );
}

#[tokio::test]
async fn user_defined_dynamic_kinds() {
    use ketch_apiserver::registry::KindRegistration;
    use ketch_core::{ApiResource, DynamicObject};
    let (server, _) = server().await;
    server
        .register(KindRegistration::dynamic(
            ApiResource {
                api_version: "example.com/v1".into(),
                kind: "Job".into(),
                plural: "jobs".into(),
                namespaced: true,
            },
            true,
        ))
        .await
        .unwrap();
    let client = server.client();
    let job: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "example.com/v1", "kind": "Job",
        "metadata": {"name": "j1", "namespace": "default"},
        "spec": {"image": "busybox"}, "status": {"done": true}
    }))
    .unwrap();
    let created = client.create(Box::new(job)).await.unwrap();
    let created: &DynamicObject = created.downcast_ref().unwrap();
    assert_eq!(created.data["spec"]["image"], "busybox");
    let mut next = created.clone();
    next.data
        .insert("spec".into(), serde_json::json!({"image": "alpine"}));
    next.data
        .insert("status".into(), serde_json::json!({"done": false}));
    let updated = client.update(Box::new(next)).await.unwrap();
    let updated: &DynamicObject = updated.downcast_ref().unwrap();
    assert_eq!(updated.data["spec"]["image"], "alpine");
    assert_eq!(
        updated.data["status"]["done"], true,
        "status kept on update"
    );
    assert_eq!(updated.metadata.generation, Some(2));
    let by_field = client
        .list(
            "jobs",
            Some("default"),
            &ListParams::default().fields("spec.image=alpine"),
        )
        .await
        .unwrap();
    assert_eq!(by_field.items.len(), 1);
}

#[tokio::test]
async fn the_server_compacts_the_store_periodically() {
    let store: std::sync::Arc<dyn ketch_core::Store> =
        std::sync::Arc::new(ketch_store::MemoryStore::new());
    let server = ketch_apiserver::ApiServer::builder(store.clone())
        .compaction_interval(Some(std::time::Duration::from_millis(50)))
        .build()
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let first = pods.create(pod("default", "c0")).await.unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    pods.create(pod("default", "c1")).await.unwrap();
    let exact = ListParams {
        resource_version: Some(rv),
        resource_version_match: Some(ketch_core::ResourceVersionMatch::Exact),
        ..Default::default()
    };
    assert_eq!(pods.list(&exact).await.unwrap().items.len(), 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match pods.list(&exact).await {
            Err(ApiError::Expired(_)) => break,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            other => panic!("the old revision should be compacted away, got {other:?}"),
        }
    }
    // The server keeps serving.
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
}

#[tokio::test]
async fn a_status_update_validates_metadata_but_not_the_stored_spec() {
    let store: std::sync::Arc<dyn ketch_core::Store> =
        std::sync::Arc::new(ketch_store::MemoryStore::new());
    // A pod whose spec fails validation, written without admission.
    let unchecked = ketch_apiserver::ApiServer::builder(store.clone())
        .without_default_admission()
        .build()
        .await
        .unwrap();
    let mut bad = pod("default", "old");
    bad.spec.containers[0].image = None;
    Api::<Pod>::namespaced(unchecked.client(), "default")
        .create(bad)
        .await
        .unwrap();
    drop(unchecked);
    let server = ketch_apiserver::ApiServer::builder(store)
        .build()
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client(), "default");
    let stored = pods.get("old").await.unwrap();
    let mut p = (*stored).clone();
    p.status.phase = Some(PodPhase::Running);
    let updated = pods.update_status(p).await.unwrap();
    assert_eq!(updated.status.phase, Some(PodPhase::Running));
    // A main-resource update still validates the spec.
    let mut p = (*updated).clone();
    p.metadata.labels.insert("app".into(), "web".into());
    match pods.update(p).await {
        Err(ApiError::Invalid(msg)) => {
            assert!(
                msg.contains("spec.containers[0].image: Required value"),
                "{msg}"
            )
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}
