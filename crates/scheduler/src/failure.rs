//! What users see when a pod cannot be scheduled: the `PodScheduled=False`
//! condition, `status.nominatedNodeName`, and a `FailedScheduling` Event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ketch_core::api::{ConditionStatus, Event, EventSource, ObjectReference, Pod, PodCondition};
use ketch_core::object::downcast_arc;
use ketch_core::{ApiError, Client, ObjectMeta, Time};

/// The `PodScheduled` condition type.
pub const POD_SCHEDULED: &str = "PodScheduled";
/// Condition reason when no node fits.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
/// Condition reason when scheduling failed on an error.
pub const REASON_SCHEDULER_ERROR: &str = "SchedulerError";
/// Event reason of a failed attempt.
pub const EVENT_FAILED_SCHEDULING: &str = "FailedScheduling";
/// Event reason of a successful bind.
pub const EVENT_SCHEDULED: &str = "Scheduled";

/// Errors reporting a failure to the API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The API call failed.
    #[error("api: {0}")]
    Api(#[from] ApiError),
    /// The API returned something other than a pod.
    #[error("expected a Pod from the API, got {0}")]
    NotAPod(String),
}

/// How a failed attempt changes `status.nominatedNodeName`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Nomination {
    /// Leave it as it is.
    Keep,
    /// Set it (`""` clears it).
    Set(String),
}

/// Sets `PodScheduled=False` with `reason` and `message` on `pod`, and the
/// nomination; returns false when the pod already says exactly that.
///
/// ```
/// use ketch_core::api::Pod;
/// use ketch_scheduler::failure::{Nomination, set_unschedulable};
/// let mut pod = Pod::default();
/// assert!(set_unschedulable(&mut pod, "Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.", &Nomination::Set("n1".into())));
/// assert_eq!(pod.status.conditions[0].type_, "PodScheduled");
/// assert_eq!(pod.status.nominated_node_name.as_deref(), Some("n1"));
/// assert!(!set_unschedulable(&mut pod, "Unschedulable", "0/3 nodes are available: 3 Insufficient cpu.", &Nomination::Keep));
/// ```
pub fn set_unschedulable(
    pod: &mut Pod,
    reason: &str,
    message: &str,
    nomination: &Nomination,
) -> bool {
    let mut changed = false;
    match nomination {
        Nomination::Keep => {}
        Nomination::Set(n) => {
            let want = (!n.is_empty()).then(|| n.clone());
            if pod.status.nominated_node_name != want {
                pod.status.nominated_node_name = want;
                changed = true;
            }
        }
    }
    let existing = pod
        .status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == POD_SCHEDULED);
    match existing {
        Some(c)
            if c.status == ConditionStatus::False
                && c.reason.as_deref() == Some(reason)
                && c.message.as_deref() == Some(message) => {}
        Some(c) => {
            if c.status != ConditionStatus::False {
                c.last_transition_time = Some(Time::now());
            }
            c.status = ConditionStatus::False;
            c.reason = Some(reason.to_string());
            c.message = Some(message.to_string());
            c.last_probe_time = None;
            changed = true;
        }
        None => {
            pod.status.conditions.push(PodCondition {
                type_: POD_SCHEDULED.to_string(),
                status: ConditionStatus::False,
                last_probe_time: None,
                last_transition_time: Some(Time::now()),
                reason: Some(reason.to_string()),
                message: Some(message.to_string()),
            });
            changed = true;
        }
    }
    changed
}

/// Writes the failure into the pod's status, re-reading the pod and
/// retrying on conflicts (a few times).
pub async fn update_pod_status(
    client: &Arc<dyn Client>,
    pod: &Pod,
    reason: &str,
    message: &str,
    nomination: &Nomination,
) -> Result<(), ReportError> {
    let mut current = pod.clone();
    for attempt in 0..4 {
        if !set_unschedulable(&mut current, reason, message, nomination) {
            return Ok(());
        }
        match client.update_status(Box::new(current.clone())).await {
            Ok(_) => return Ok(()),
            Err(ApiError::Conflict(_)) if attempt < 3 => {
                let latest = client
                    .get("pods", Some(pod.metadata.namespace()), pod.metadata.name())
                    .await?;
                let kind = latest.kind().to_string();
                let latest = downcast_arc::<Pod>(latest).map_err(|_| ReportError::NotAPod(kind))?;
                if latest
                    .spec
                    .node_name
                    .as_deref()
                    .is_some_and(|n| !n.is_empty())
                {
                    // Bound meanwhile: nothing to report.
                    return Ok(());
                }
                current = (*latest).clone();
            }
            Err(ApiError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

static EVENT_SEQ: AtomicU64 = AtomicU64::new(0);

/// An Event about `pod`.
///
/// ```
/// use ketch_core::{ObjectMeta, api::Pod};
/// use ketch_scheduler::failure::pod_event;
/// let pod = Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() };
/// let e = pod_event(&pod, "Warning", "FailedScheduling", "0/1 nodes are available: 1 Insufficient cpu.", "default-scheduler");
/// assert_eq!(e.metadata.namespace.as_deref(), Some("default"));
/// assert!(e.metadata.name.as_deref().unwrap().starts_with("web."));
/// assert_eq!(e.involved_object.name.as_deref(), Some("web"));
/// ```
pub fn pod_event(pod: &Pod, type_: &str, reason: &str, message: &str, component: &str) -> Event {
    let now = Time::now();
    let seq = EVENT_SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let name = format!("{}.{:x}", pod.metadata.name(), nanos.wrapping_add(seq));
    Event {
        metadata: ObjectMeta::named(pod.metadata.namespace(), &name),
        involved_object: ObjectReference {
            kind: Some("Pod".to_string()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            api_version: Some("v1".to_string()),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: None,
        },
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        source: Some(EventSource {
            component: Some(component.to_string()),
            host: None,
        }),
        first_timestamp: Some(now),
        last_timestamp: Some(now),
        count: Some(1),
        type_: Some(type_.to_string()),
        reporting_component: Some(component.to_string()),
        ..Event::default()
    }
}

/// Creates a `FailedScheduling` Warning event for `pod`.
pub async fn record_failed_scheduling(
    client: &Arc<dyn Client>,
    pod: &Pod,
    message: &str,
    component: &str,
) -> Result<(), ReportError> {
    let event = pod_event(pod, "Warning", EVENT_FAILED_SCHEDULING, message, component);
    client.create(Box::new(event)).await?;
    Ok(())
}
