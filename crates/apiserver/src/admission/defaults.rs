//! Defaulting, validation and default tolerations.

use ketch_core::api::{
    Pod, PullPolicy, RestartPolicy, Service, ServiceType, SessionAffinity, TaintEffect, Toleration,
    TolerationOperator,
};
use ketch_core::{ApiError, Object};

use super::{Admission, AdmissionRequest, Operation};

/// Seconds pods tolerate `not-ready` / `unreachable` before eviction.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;
/// The taint of nodes whose agent reports not ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of nodes whose agent stopped reporting.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Fills the defaults of a pod (restart policy, grace period, scheduler,
/// pull policy, protocol).
pub fn default_pod(pod: &mut Pod) {
    let spec = &mut pod.spec;
    spec.restart_policy.get_or_insert(RestartPolicy::Always);
    spec.termination_grace_period_seconds.get_or_insert(30);
    if spec.dns_policy.is_none() {
        spec.dns_policy = Some(String::from("ClusterFirst"));
    }
    if spec.scheduler_name.is_none() {
        spec.scheduler_name = Some(String::from("default-scheduler"));
    }
    for c in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        if c.image_pull_policy.is_none() {
            let latest = c.image.as_deref().is_some_and(|i| {
                i.ends_with(":latest") || !i.rsplit('/').next().unwrap_or(i).contains(':')
            });
            c.image_pull_policy = Some(if latest {
                PullPolicy::Always
            } else {
                PullPolicy::IfNotPresent
            });
        }
        for p in &mut c.ports {
            p.protocol.get_or_insert_default();
        }
    }
}

/// Fills the defaults of a service (type, session affinity, port protocol
/// and target port).
pub fn default_service(svc: &mut Service) {
    svc.spec.type_.get_or_insert(ServiceType::ClusterIP);
    svc.spec
        .session_affinity
        .get_or_insert(SessionAffinity::None);
    for p in &mut svc.spec.ports {
        p.protocol.get_or_insert_default();
        if p.target_port.is_none() {
            p.target_port = Some(ketch_core::IntOrString::Int(p.port));
        }
    }
}

/// Runs the kind's defaulting on creates and main-resource updates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Defaulting;

impl Admission for Defaulting {
    fn name(&self) -> &'static str {
        "Defaulting"
    }

    fn mutate(&self, req: &AdmissionRequest<'_>, obj: &mut dyn Object) -> Result<(), ApiError> {
        if req.operation != Operation::Delete && req.subresource.is_empty() {
            req.strategy.default(obj);
        }
        Ok(())
    }
}

/// Runs the kind's validation; problems are reported as `Invalid` with field
/// paths.
#[derive(Clone, Copy, Debug, Default)]
pub struct Validation;

impl Admission for Validation {
    fn name(&self) -> &'static str {
        "Validation"
    }

    fn validate(&self, req: &AdmissionRequest<'_>, obj: &dyn Object) -> Result<(), ApiError> {
        // A binding changes only the node name, checked by the binding
        // itself; the pod was validated when it was written.
        if req.operation == Operation::Delete || req.subresource == "binding" {
            return Ok(());
        }
        let result = match (req.subresource, req.old) {
            ("status", Some(old)) => req.strategy.validate_status(obj, old),
            _ => req.strategy.validate(obj, req.old),
        };
        result.map_err(|errors| {
            ApiError::Invalid(format!(
                "{} {:?} is invalid: {errors}",
                obj.kind(),
                req.name
            ))
        })
    }
}

/// Adds tolerations of the `not-ready` and `unreachable` NoExecute taints for
/// 300 s to new pods that do not tolerate them already, as Kubernetes'
/// DefaultTolerationSeconds plugin does.
#[derive(Clone, Copy, Debug)]
pub struct DefaultTolerations {
    /// Seconds to tolerate each taint.
    pub seconds: i64,
}

impl Default for DefaultTolerations {
    fn default() -> Self {
        Self {
            seconds: DEFAULT_TOLERATION_SECONDS,
        }
    }
}

fn tolerates(tolerations: &[Toleration], key: &str) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = matches!(t.effect, None | Some(TaintEffect::NoExecute));
        let key_ok = match t.key.as_deref() {
            None | Some("") => t.operator == Some(TolerationOperator::Exists),
            Some(k) => k == key,
        };
        effect_ok && key_ok
    })
}

impl Admission for DefaultTolerations {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn mutate(&self, req: &AdmissionRequest<'_>, obj: &mut dyn Object) -> Result<(), ApiError> {
        if req.operation != Operation::Create || !req.subresource.is_empty() {
            return Ok(());
        }
        let Some(pod) = obj.downcast_mut::<Pod>() else {
            return Ok(());
        };
        for key in [TAINT_NOT_READY, TAINT_UNREACHABLE] {
            if !tolerates(&pod.spec.tolerations, key) {
                pod.spec.tolerations.push(Toleration {
                    key: Some(key.to_string()),
                    operator: Some(TolerationOperator::Exists),
                    value: None,
                    effect: Some(TaintEffect::NoExecute),
                    toleration_seconds: Some(self.seconds),
                });
            }
        }
        Ok(())
    }
}
