//! Builders of nodes and pods and a recording API client for the plugin tests.

use std::sync::{Arc, Mutex, MutexGuard};

use ketch_core::api::{
    Affinity, Container, ContainerPort, Node, NodeAffinity, NodeSelector, NodeSelectorOperator,
    NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinity, PodAffinityTerm, PodAntiAffinity,
    PreemptionPolicy, Protocol, ResourceRequirements, Taint, TaintEffect, Toleration,
    TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use ketch_core::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, LabelSelector, ListParams, Object,
    ObjectEventStream, ObjectList, ObjectMeta, Quantity, WatchParams,
};

use crate::framework::{NodeInfo, PodInfo, Snapshot};

/// A node under construction.
pub struct NodeBuilder {
    node: Node,
    pods: Vec<Arc<PodInfo>>,
}

impl NodeBuilder {
    pub fn new(name: &str) -> Self {
        let mut node = Node {
            metadata: ObjectMeta::cluster_named(name),
            ..Node::default()
        };
        node.metadata
            .labels
            .insert("kubernetes.io/hostname".into(), name.into());
        Self {
            node,
            pods: Vec::new(),
        }
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.node.metadata.labels.insert(k.into(), v.into());
        self
    }

    pub fn alloc(mut self, name: &str, q: &str) -> Self {
        self.node
            .status
            .allocatable
            .insert(name.into(), Quantity::from(q));
        self
    }

    /// cpu, memory and pods.
    pub fn capacity(self, cpu: &str, mem: &str, pods: &str) -> Self {
        self.alloc("cpu", cpu)
            .alloc("memory", mem)
            .alloc("pods", pods)
    }

    pub fn taint(mut self, key: &str, value: &str, effect: TaintEffect) -> Self {
        self.node.spec.taints.push(Taint {
            key: key.into(),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect,
            time_added: None,
        });
        self
    }

    pub fn unschedulable(mut self) -> Self {
        self.node.spec.unschedulable = Some(true);
        self
    }

    pub fn pod(mut self, pod: PodInfo) -> Self {
        self.pods.push(Arc::new(pod));
        self
    }

    pub fn build(self) -> NodeInfo {
        let mut info = NodeInfo::new(Arc::new(self.node)).expect("valid node");
        for p in self.pods {
            info.add_pod(p);
        }
        info
    }
}

/// A pod under construction.
pub struct PodBuilder {
    pod: Pod,
}

impl PodBuilder {
    pub fn new(name: &str) -> Self {
        Self {
            pod: Pod {
                metadata: ObjectMeta::named("default", name),
                spec: ketch_core::api::PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        ..Container::default()
                    }],
                    ..Default::default()
                },
                ..Pod::default()
            },
        }
    }

    pub fn namespace(mut self, ns: &str) -> Self {
        self.pod.metadata.namespace = Some(ns.into());
        self
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.pod.metadata.labels.insert(k.into(), v.into());
        self
    }

    pub fn req(mut self, name: &str, q: &str) -> Self {
        let c = &mut self.pod.spec.containers[0];
        c.resources
            .get_or_insert_with(ResourceRequirements::default)
            .requests
            .insert(name.into(), Quantity::from(q));
        self
    }

    pub fn priority(mut self, p: i32) -> Self {
        self.pod.spec.priority = Some(p);
        self
    }

    pub fn never_preempt(mut self) -> Self {
        self.pod.spec.preemption_policy = Some(PreemptionPolicy::Never);
        self
    }

    pub fn node_name(mut self, n: &str) -> Self {
        self.pod.spec.node_name = Some(n.into());
        self
    }

    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.pod.spec.node_selector.insert(k.into(), v.into());
        self
    }

    pub fn toleration(mut self, t: Toleration) -> Self {
        self.pod.spec.tolerations.push(t);
        self
    }

    pub fn image(mut self, image: &str) -> Self {
        let n = self.pod.spec.containers.len();
        let c = if self.pod.spec.containers[0].image.is_none() {
            &mut self.pod.spec.containers[0]
        } else {
            self.pod.spec.containers.push(Container {
                name: format!("c{n}"),
                ..Container::default()
            });
            &mut self.pod.spec.containers[n]
        };
        c.image = Some(image.into());
        self
    }

    pub fn host_port(mut self, port: i32, protocol: Protocol, ip: &str) -> Self {
        self.pod.spec.containers[0].ports.push(ContainerPort {
            container_port: port,
            host_port: Some(port),
            host_ip: Some(ip.into()).filter(|v: &String| !v.is_empty()),
            protocol: Some(protocol),
            ..ContainerPort::default()
        });
        self
    }

    fn affinity(&mut self) -> &mut Affinity {
        self.pod.spec.affinity.get_or_insert_with(Affinity::default)
    }

    pub fn required_node_terms(mut self, terms: Vec<NodeSelectorTerm>) -> Self {
        self.affinity()
            .node_affinity
            .get_or_insert_with(NodeAffinity::default)
            .required_during_scheduling_ignored_during_execution = Some(NodeSelector {
            node_selector_terms: terms,
        });
        self
    }

    pub fn preferred_node_term(mut self, weight: i32, term: NodeSelectorTerm) -> Self {
        self.affinity()
            .node_affinity
            .get_or_insert_with(NodeAffinity::default)
            .preferred_during_scheduling_ignored_during_execution
            .push(ketch_core::api::PreferredSchedulingTerm {
                weight,
                preference: term,
            });
        self
    }

    pub fn pod_affinity(mut self, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_affinity
            .get_or_insert_with(PodAffinity::default)
            .required_during_scheduling_ignored_during_execution
            .push(term);
        self
    }

    pub fn pod_anti_affinity(mut self, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default)
            .required_during_scheduling_ignored_during_execution
            .push(term);
        self
    }

    pub fn preferred_pod_affinity(mut self, weight: i32, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_affinity
            .get_or_insert_with(PodAffinity::default)
            .preferred_during_scheduling_ignored_during_execution
            .push(WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: term,
            });
        self
    }

    pub fn preferred_pod_anti_affinity(mut self, weight: i32, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default)
            .preferred_during_scheduling_ignored_during_execution
            .push(WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: term,
            });
        self
    }

    pub fn spread(mut self, c: TopologySpreadConstraint) -> Self {
        self.pod.spec.topology_spread_constraints.push(c);
        self
    }

    pub fn build(self) -> PodInfo {
        PodInfo::new(Arc::new(self.pod)).expect("valid pod")
    }
}

/// A node selector term of label requirements.
/// Every node of `snapshot`, as PreScore receives the feasible nodes.
pub fn all_nodes(snapshot: &Snapshot) -> Vec<&NodeInfo> {
    snapshot.nodes().iter().map(|n| &**n).collect()
}

pub fn node_term(reqs: &[(&str, NodeSelectorOperator, &[&str])]) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: reqs
            .iter()
            .map(|(k, op, vs)| NodeSelectorRequirement {
                key: (*k).into(),
                operator: *op,
                values: vs.iter().map(|v| (*v).to_string()).collect(),
            })
            .collect(),
        match_fields: Vec::new(),
    }
}

/// A node selector term pinning `metadata.name` to one of `names`.
pub fn name_term(names: &[&str]) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Vec::new(),
        match_fields: vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: NodeSelectorOperator::In,
            values: names.iter().map(|v| (*v).to_string()).collect(),
        }],
    }
}

/// A pod affinity term on `topology_key` selecting `key=value`.
pub fn affinity_term(key: &str, value: &str, topology_key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector::from_labels([(key, value)])),
        namespaces: Vec::new(),
        topology_key: topology_key.into(),
        namespace_selector: None,
    }
}

/// An API client that records binds and deletes.
#[derive(Default)]
pub struct RecordingClient {
    pub binds: Mutex<Vec<(String, String, String)>>,
    pub deletes: Mutex<Vec<(String, String)>>,
    pub fail_bind: Mutex<Option<ApiError>>,
}

impl RecordingClient {
    pub fn binds(&self) -> MutexGuard<'_, Vec<(String, String, String)>> {
        self.binds.lock().expect("lock")
    }

    pub fn deletes(&self) -> MutexGuard<'_, Vec<(String, String)>> {
        self.deletes.lock().expect("lock")
    }

    pub fn fail_bind(&self, e: ApiError) {
        *self.fail_bind.lock().expect("lock") = Some(e);
    }
}

fn unsupported() -> ApiError {
    ApiError::BadRequest("not supported by the test client".into())
}

#[async_trait::async_trait]
impl Client for RecordingClient {
    async fn create(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }
    async fn get(&self, _: &str, _: Option<&str>, _: &str) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }
    async fn list(&self, _: &str, _: Option<&str>, _: &ListParams) -> Result<ObjectList, ApiError> {
        Err(unsupported())
    }
    async fn update(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }
    async fn update_status(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }
    async fn patch(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        Err(unsupported())
    }
    async fn delete(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        _: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        assert_eq!(resource, "pods");
        self.deletes
            .lock()
            .expect("lock")
            .push((namespace.unwrap_or("").to_string(), name.to_string()));
        let pod: ArcObject = Arc::new(Pod {
            metadata: ObjectMeta::named(namespace.unwrap_or(""), name),
            ..Pod::default()
        });
        Ok(DeleteOutcome::Deleted(pod))
    }
    async fn watch(
        &self,
        _: &str,
        _: Option<&str>,
        _: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        Err(unsupported())
    }
    async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<ArcObject, ApiError> {
        if let Some(e) = self.fail_bind.lock().expect("lock").clone() {
            return Err(e);
        }
        self.binds
            .lock()
            .expect("lock")
            .push((namespace.into(), pod.into(), node.into()));
        let mut p = Pod {
            metadata: ObjectMeta::named(namespace, pod),
            ..Pod::default()
        };
        p.spec.node_name = Some(node.into());
        Ok(Arc::new(p))
    }
}
