//! An orchestrator in one process: the API server on the in-memory store and
//! the default scheduler, assembled with `Cluster::builder()`. It registers
//! three nodes, submits pods, and prints where the scheduler placed them.
//!
//! Run: `cargo run --example embedded_control_plane`

use std::collections::BTreeMap;
use std::time::Duration;

use ketch::Cluster;
use ketch::core::api::{Container, Node, NodeStatus, Pod, PodSpec, ResourceRequirements};
use ketch::core::{Api, ListParams, ObjectMeta, Quantity};

fn resources(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity::from(*v)))
        .collect()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cluster = Cluster::builder().memory_store().start().await?;
    let nodes: Api<Node> = Api::all(cluster.client());
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");

    for i in 0..3 {
        let name = format!("worker-{i}");
        let capacity = resources(&[("cpu", "2"), ("memory", "4Gi"), ("pods", "110")]);
        nodes
            .create(Node {
                metadata: ObjectMeta::cluster_named(&name)
                    .with_label("kubernetes.io/hostname", &name),
                status: NodeStatus {
                    capacity: capacity.clone(),
                    allocatable: capacity,
                    ..NodeStatus::default()
                },
                ..Node::default()
            })
            .await?;
    }

    for i in 0..6 {
        let container = Container {
            name: "app".into(),
            image: Some("registry.example/app:1.0".into()),
            resources: Some(ResourceRequirements {
                requests: resources(&[("cpu", "500m"), ("memory", "256Mi")]),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        };
        pods.create(Pod {
            metadata: ObjectMeta::named("default", &format!("app-{i}")).with_label("app", "demo"),
            spec: PodSpec {
                containers: vec![container],
                ..PodSpec::default()
            },
            ..Pod::default()
        })
        .await?;
    }

    // Wait until the scheduler has bound every pod.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = pods.list(&ListParams::default().labels("app=demo")).await?;
        if list.items.iter().all(|p| p.spec.node_name.is_some()) {
            for pod in &list.items {
                println!(
                    "{} -> {}",
                    pod.metadata.name(),
                    pod.spec.node_name.as_deref().unwrap_or("?")
                );
            }
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err("pods were not scheduled within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;
    Ok(())
}
