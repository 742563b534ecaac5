//! ClusterIP allocation for Services.

use std::net::Ipv4Addr;

use ketch_core::api::Service;
use ketch_core::{ApiError, ApiResource, Object};
use parking_lot::Mutex;

use super::{Admission, AdmissionRequest, Operation};
use crate::ip_alloc::{IpAllocError, IpAllocator};

/// The default service range.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";

/// Gives every new Service a cluster IP from a range: no duplicates, released
/// when the Service is removed; a requested `spec.clusterIP` is honoured when
/// free and in range and rejected clearly otherwise; `None` makes a headless
/// service. The IP cannot change afterwards.
///
/// ```
/// use ketch_apiserver::admission::ClusterIpAllocation;
/// let alloc = ClusterIpAllocation::new("10.0.0.0/24").unwrap();
/// assert_eq!(alloc.cidr(), "10.0.0.0/24");
/// ```
#[derive(Debug)]
pub struct ClusterIpAllocation {
    allocator: Mutex<IpAllocator>,
    cidr: String,
}

impl ClusterIpAllocation {
    /// An allocator over `cidr`.
    pub fn new(cidr: &str) -> Result<Self, IpAllocError> {
        let allocator = IpAllocator::new(cidr)?;
        Ok(Self {
            cidr: allocator.cidr().to_string(),
            allocator: Mutex::new(allocator),
        })
    }

    /// The range.
    pub fn cidr(&self) -> &str {
        &self.cidr
    }

    /// True when `ip` is allocated.
    pub fn is_allocated(&self, ip: Ipv4Addr) -> bool {
        self.allocator.lock().contains(ip)
    }

    fn ip_of(obj: &dyn Object) -> Option<Ipv4Addr> {
        obj.downcast_ref::<Service>()?
            .spec
            .cluster_ip
            .as_deref()?
            .parse()
            .ok()
    }
}

fn invalid(name: &str, ip: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::Invalid(format!(
        "Service {name:?} is invalid: spec.clusterIP: Invalid value: {ip:?}: {detail}"
    ))
}

impl Admission for ClusterIpAllocation {
    fn name(&self) -> &'static str {
        "ClusterIpAllocation"
    }

    fn mutate(&self, req: &AdmissionRequest<'_>, obj: &mut dyn Object) -> Result<(), ApiError> {
        let Some(svc) = obj.downcast_mut::<Service>() else {
            return Ok(());
        };
        match req.operation {
            Operation::Create => {
                let requested = svc.spec.cluster_ip.clone().unwrap_or_default();
                match requested.as_str() {
                    "None" => {}
                    "" => {
                        let ip = self.allocator.lock().allocate_next().map_err(|e| {
                            ApiError::Internal(format!("allocating a cluster IP: {e}"))
                        })?;
                        svc.spec.cluster_ip = Some(ip.to_string());
                    }
                    other => {
                        self.allocator
                            .lock()
                            .allocate_str(other)
                            .map_err(|e| match e {
                                IpAllocError::AlreadyAllocated(_) => {
                                    invalid(req.name, other, "provided IP is already allocated")
                                }
                                IpAllocError::OutOfRange { cidr, .. } => invalid(
                                    req.name,
                                    other,
                                    format!("provided IP is not in the valid range {cidr}"),
                                ),
                                e => invalid(req.name, other, e),
                            })?;
                    }
                }
                if let Some(ip) = &svc.spec.cluster_ip {
                    svc.spec.cluster_ips = vec![ip.clone()];
                }
            }
            Operation::Update => {
                let old = req
                    .old
                    .and_then(|o| o.downcast_ref::<Service>())
                    .and_then(|o| o.spec.cluster_ip.clone());
                match (&old, svc.spec.cluster_ip.as_deref()) {
                    (Some(o), None | Some("")) => {
                        svc.spec.cluster_ip = Some(o.clone());
                        svc.spec.cluster_ips = vec![o.clone()];
                    }
                    (old, Some(new)) if old.as_deref() != Some(new) => {
                        return Err(ApiError::Invalid(format!(
                            "Service {:?} is invalid: spec.clusterIP: Invalid value: {new:?}: field is immutable",
                            req.name
                        )));
                    }
                    _ => {}
                }
            }
            Operation::Delete => {}
        }
        Ok(())
    }

    fn rollback(&self, req: &AdmissionRequest<'_>, obj: &dyn Object) {
        if req.operation == Operation::Create
            && let Some(ip) = Self::ip_of(obj)
        {
            self.allocator.lock().release(ip);
        }
    }

    fn removed(&self, resource: &ApiResource, obj: &dyn Object) {
        if resource.plural == "services"
            && let Some(ip) = Self::ip_of(obj)
        {
            self.allocator.lock().release(ip);
        }
    }

    fn restore(&self, resource: &ApiResource, obj: &dyn Object) {
        if resource.plural == "services"
            && let Some(ip) = Self::ip_of(obj)
        {
            let _ = self.allocator.lock().allocate(ip);
        }
    }
}
