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
    assert_eq!(got.spec.restart_policy, Some(ketch_core::api::RestartPolicy::Always));
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
    assert_ne!(updated.metadata.resource_version.as_deref(), Some(rv.as_str()));
    assert_eq!(updated.metadata.generation, Some(1), "metadata change keeps generation");
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
    assert!(matches!(pods.get("web").await, Err(ApiError::NotFound { .. })));
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
    assert!(matches!(err, ApiError::Forbidden(ref m) if m.contains("being terminated")), "{err:?}");
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
    let bound = server.client().bind("default", &name, "node-1").await.unwrap();
    let bound: &Pod = bound.downcast_ref().unwrap();
    assert_eq!(bound.spec.node_name.as_deref(), Some("node-1"));
    let err = server.client().bind("default", &name, "node-2").await.unwrap_err();
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
        .watch("pods", None, &WatchParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    let mut w2 = client
        .watch("pods", None, &WatchParams::default().fields("spec.nodeName=n2"))
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
    assert!(matches!(next_event(&mut w1).await.unwrap(), ObjectEvent::Modified(_)));
    no_event(&mut w2).await;
}
