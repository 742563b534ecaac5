//! Helpers of the scheduler's integration tests: an API server on
//! MemoryStore, nodes and pods shaped like scheduler_perf's.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ketch_apiserver::ApiServer;
use ketch_core::api::{
    Container, Node, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements, Taint,
};
use ketch_core::{Api, Client, ListParams, ObjectMeta, Quantity, Store};
use ketch_store::MemoryStore;

/// An API server over a fresh MemoryStore and its in-process client.
pub async fn server() -> (ApiServer, Arc<dyn Client>) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = ApiServer::builder(store)
        .build()
        .await
        .expect("server starts");
    let client = server.client();
    (server, client)
}

/// A node with 4 CPU, 32Gi and room for 110 pods.
pub fn node(name: &str) -> Node {
    let allocatable = BTreeMap::from([
        ("cpu".to_string(), Quantity::from("4")),
        ("memory".to_string(), Quantity::from("32Gi")),
        ("pods".to_string(), Quantity::from("110")),
    ]);
    Node {
        metadata: ObjectMeta::cluster_named(name),
        spec: NodeSpec::default(),
        status: NodeStatus {
            capacity: allocatable.clone(),
            allocatable,
            ..NodeStatus::default()
        },
    }
}

/// A node tainted `key=value:NoSchedule`.
pub fn tainted_node(name: &str, key: &str, value: &str) -> Node {
    let mut n = node(name);
    n.spec.taints.push(Taint {
        key: key.to_string(),
        value: Some(value.to_string()),
        effect: ketch_core::api::TaintEffect::NoSchedule,
        time_added: None,
    });
    n
}

/// A pod with one container requesting `cpu` and `memory`.
pub fn pod(ns: &str, name: &str, cpu: &str, memory: &str) -> Pod {
    Pod {
        metadata: ObjectMeta::named(ns, name),
        spec: PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.9".into()),
                resources: Some(ResourceRequirements {
                    requests: BTreeMap::from([
                        ("cpu".to_string(), Quantity::from(cpu)),
                        ("memory".to_string(), Quantity::from(memory)),
                    ]),
                    limits: BTreeMap::new(),
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    }
}

/// Polls `check` every 10 ms until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Pods of a namespace bound to a node.
pub async fn bound_pods(client: &Arc<dyn Client>, ns: &str) -> Vec<Arc<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|p| p.spec.node_name.as_deref().is_some_and(|n| !n.is_empty()))
                .collect()
        })
        .unwrap_or_default()
}
