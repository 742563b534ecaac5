//! Placement correctness, read back from the API after a workload: no node
//! over capacity, the workload's hard constraint honoured, and every deleted
//! pod a victim of a strictly higher-priority preemptor.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ketch_core::api::{Node, Pod};
use ketch_core::{Api, ApiError, Client, ListParams, Quantity, Resource};
use serde::de::DeserializeOwned;

use crate::objects::{HOSTNAME_LABEL, SPREAD_MAX_SKEW, ZONE_LABEL};
use crate::tracker::Victim;
use crate::workloads::{Constraint, MEASURED_NAMESPACE, Workload};

/// Page size of the lists the checks read (1000 pods stay well below the
/// 4 MiB gRPC message limit of etcd responses).
const PAGE: u32 = 1000;

/// Lists every object of a kind, page by page.
pub async fn list_all<K>(client: &Arc<dyn Client>) -> Result<Vec<Arc<K>>, ApiError>
where
    K: Resource + ketch_core::Object + DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.continue_token {
            Some(token) if !token.is_empty() => params = params.continue_from(&token),
            _ => return Ok(items),
        }
    }
}

/// Requests or capacities in the units the checks compare.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Amounts {
    milli_cpu: i64,
    memory: i64,
    pods: i64,
}

fn amount(list: &BTreeMap<String, Quantity>, name: &str, milli: bool) -> Result<i64, String> {
    match list.get(name) {
        None => Ok(0),
        Some(q) if milli => q.milli_value().map_err(|e| format!("{name}: {e}")),
        Some(q) => q.value().map_err(|e| format!("{name}: {e}")),
    }
}

/// The effective requests of a pod: the sum over its containers, raised to
/// its largest init container.
fn pod_requests(pod: &Pod) -> Result<Amounts, String> {
    let mut total = Amounts {
        pods: 1,
        ..Amounts::default()
    };
    for c in &pod.spec.containers {
        if let Some(r) = &c.resources {
            total.milli_cpu += amount(&r.requests, "cpu", true)?;
            total.memory += amount(&r.requests, "memory", false)?;
        }
    }
    for c in &pod.spec.init_containers {
        if let Some(r) = &c.resources {
            total.milli_cpu = total.milli_cpu.max(amount(&r.requests, "cpu", true)?);
            total.memory = total.memory.max(amount(&r.requests, "memory", false)?);
        }
    }
    Ok(total)
}

fn allocatable(node: &Node) -> Result<Amounts, String> {
    let list = &node.status.allocatable;
    Ok(Amounts {
        milli_cpu: amount(list, "cpu", true)?,
        memory: amount(list, "memory", false)?,
        pods: amount(list, "pods", false)?,
    })
}

/// What the checks found.
#[derive(Debug, Default)]
pub struct Report {
    /// Pods bound to a node.
    pub bound_pods: usize,
    /// Every violation, described.
    pub violations: Vec<String>,
}

/// Checks the placement of every pod now in the API.
pub async fn check(
    client: &Arc<dyn Client>,
    workload: &Workload,
    victims: &[Victim],
    preemptor_priority: &HashMap<String, i32>,
) -> Result<Report, String> {
    let nodes: Vec<Arc<Node>> = list_all(client)
        .await
        .map_err(|e| format!("listing nodes: {e}"))?;
    let pods: Vec<Arc<Pod>> = list_all(client)
        .await
        .map_err(|e| format!("listing pods: {e}"))?;
    let mut report = Report::default();
    let by_name: HashMap<&str, &Node> = nodes
        .iter()
        .map(|n| (n.metadata.name(), n.as_ref()))
        .collect();

    // Capacity.
    let mut used: HashMap<&str, Amounts> = HashMap::new();
    for pod in &pods {
        let Some(node) = pod.spec.node_name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        report.bound_pods += 1;
        if !by_name.contains_key(node) {
            report.violations.push(format!(
                "pod {}/{} is bound to node {node}, which does not exist",
                pod.metadata.namespace(),
                pod.metadata.name()
            ));
            continue;
        }
        let requests = pod_requests(pod).map_err(|e| {
            format!(
                "pod {}/{}: {e}",
                pod.metadata.namespace(),
                pod.metadata.name()
            )
        })?;
        let u = used.entry(node).or_default();
        u.milli_cpu += requests.milli_cpu;
        u.memory += requests.memory;
        u.pods += requests.pods;
    }
    for (name, u) in &used {
        let cap = allocatable(by_name[name]).map_err(|e| format!("node {name}: {e}"))?;
        for (resource, requested, capacity) in [
            ("cpu (millicores)", u.milli_cpu, cap.milli_cpu),
            ("memory (bytes)", u.memory, cap.memory),
            ("pods", u.pods, cap.pods),
        ] {
            if requested > capacity {
                report.violations.push(format!(
                    "node {name} is over capacity: {resource} requested {requested} > allocatable {capacity}"
                ));
            }
        }
    }

    // The workload's hard constraint.
    let label = |node: &str, key: &str| -> Option<String> {
        by_name
            .get(node)
            .and_then(|n| n.metadata.labels.get(key).cloned())
    };
    let bound_measured = || {
        pods.iter().filter_map(|p| {
            let node = p.spec.node_name.as_deref().filter(|n| !n.is_empty())?;
            (p.metadata.namespace() == MEASURED_NAMESPACE).then_some((p, node))
        })
    };
    match workload.constraint {
        Constraint::None | Constraint::Preemption => {}
        Constraint::AntiAffinity => {
            let mut per_host: HashMap<String, Vec<String>> = HashMap::new();
            for pod in &pods {
                let Some(node) = pod.spec.node_name.as_deref().filter(|n| !n.is_empty()) else {
                    continue;
                };
                if pod.metadata.labels.get("color").map(String::as_str) != Some("green") {
                    continue;
                }
                let host = label(node, HOSTNAME_LABEL).unwrap_or_else(|| node.to_string());
                per_host.entry(host).or_default().push(format!(
                    "{}/{}",
                    pod.metadata.namespace(),
                    pod.metadata.name()
                ));
            }
            for (host, pods) in per_host {
                if pods.len() > 1 {
                    report.violations.push(format!(
                        "anti-affinity broken: {} color=green pods on hostname {host}: {}",
                        pods.len(),
                        pods.join(", ")
                    ));
                }
            }
        }
        Constraint::Spread => {
            let mut per_zone: BTreeMap<String, i64> = nodes
                .iter()
                .filter_map(|n| n.metadata.labels.get(ZONE_LABEL).cloned())
                .map(|z| (z, 0))
                .collect();
            for (pod, node) in bound_measured() {
                if pod.metadata.labels.get("color").map(String::as_str) != Some("blue") {
                    continue;
                }
                match label(node, ZONE_LABEL) {
                    Some(zone) => *per_zone.entry(zone).or_default() += 1,
                    None => report.violations.push(format!(
                        "spread pod {}/{} is on node {node}, which has no zone",
                        pod.metadata.namespace(),
                        pod.metadata.name()
                    )),
                }
            }
            let max = per_zone.values().copied().max().unwrap_or(0);
            let min = per_zone.values().copied().min().unwrap_or(0);
            if max - min > i64::from(SPREAD_MAX_SKEW) {
                report.violations.push(format!(
                    "topology spread broken: skew {} > {SPREAD_MAX_SKEW} over zones {per_zone:?}",
                    max - min
                ));
            }
        }
        Constraint::PinnedTo(target) => {
            for (pod, node) in bound_measured() {
                if node != target {
                    report.violations.push(format!(
                        "pod {}/{} is on {node}, but its node affinity requires {target}",
                        pod.metadata.namespace(),
                        pod.metadata.name()
                    ));
                }
            }
        }
    }

    // Deletions: only preemption deletes, and only strictly lower priorities.
    for victim in victims {
        match &victim.node {
            None => report.violations.push(format!(
                "pod {} was deleted though it was never bound (priority {})",
                victim.key, victim.priority
            )),
            Some(node) => match preemptor_priority.get(node) {
                Some(&p) if p > victim.priority => {}
                Some(&p) => report.violations.push(format!(
                    "pod {} (priority {}) on node {node} was preempted, but the highest priority nominated there is {p}",
                    victim.key, victim.priority
                )),
                None => report.violations.push(format!(
                    "pod {} (priority {}) on node {node} was deleted with no higher-priority pod nominated there",
                    victim.key, victim.priority
                )),
            },
        }
    }
    Ok(report)
}
