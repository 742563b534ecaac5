//! Shared helpers of the API server's integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ketch_apiserver::ApiServer;
use ketch_core::api::{Container, Pod};
use ketch_core::{ApiError, ObjectEvent, ObjectEventStream, ObjectMeta, Store};
use ketch_store::MemoryStore;

/// A server over a fresh MemoryStore, with its store.
pub async fn server() -> (ApiServer, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = ApiServer::builder(store.clone())
        .build()
        .await
        .expect("server starts");
    (server, store)
}

/// A minimal valid pod.
pub fn pod(ns: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta::named(ns, name),
        spec: ketch_core::api::PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx:1.27".into()),
                ..Container::default()
            }],
            ..Default::default()
        },
        ..Pod::default()
    }
}

/// The next event of a watch, failing after a second.
pub async fn next_event(stream: &mut ObjectEventStream) -> Result<ObjectEvent, ApiError> {
    tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("an event within 2 s")
        .expect("the stream goes on")
}

/// Asserts no event arrives within 100 ms.
pub async fn no_event(stream: &mut ObjectEventStream) {
    if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), stream.next()).await {
        panic!("unexpected event {ev:?}");
    }
}

/// Kind and name of an event.
pub fn describe(ev: &ObjectEvent) -> (String, String) {
    match ev {
        ObjectEvent::Added(o) => ("Added".into(), o.metadata().name().into()),
        ObjectEvent::Modified(o) => ("Modified".into(), o.metadata().name().into()),
        ObjectEvent::Deleted(o) => ("Deleted".into(), o.metadata().name().into()),
        ObjectEvent::Bookmark { resource_version } => ("Bookmark".into(), resource_version.clone()),
    }
}
