//! What node agents may do: the [`NodeAuthorizer`] (which verbs on which
//! resources a `system:node:<name>` identity may use at all) and the
//! [`NodeRestriction`] admission plugin (which objects: only its own Node and
//! Lease and the pods bound to it).

use ketch_core::api::Pod;
use ketch_core::{ApiError, Object};

use super::{Attributes, Authorizer, Decision};
use crate::admission::{Admission, AdmissionRequest, Operation};

/// Authorizes node identities (`system:node:<name>` in `system:nodes`):
/// reading pods, nodes, services, endpoints, namespaces and leases;
/// creating and updating its own Node (and `nodes/status`) and its own
/// Lease; updating `pods/status` and deleting pods (the admission plugin
/// limits both to pods bound to the node); creating events. Every other
/// request of a node is denied; other identities get no opinion.
///
/// ```
/// use ketch_apiserver::auth::{Attributes, Authorizer, Decision, NodeAuthorizer, UserInfo};
/// let n1 = UserInfo::node("n1");
/// let a = Attributes { user: &n1, verb: "update", api_group: "", resource: "nodes",
///                      subresource: "status", namespace: None, name: Some("n1") };
/// assert_eq!(NodeAuthorizer.authorize(&a), Decision::Allow);
/// assert!(matches!(NodeAuthorizer.authorize(&Attributes { name: Some("n2"), ..a }), Decision::Deny(_)));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeAuthorizer;

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, a: &Attributes<'_>) -> Decision {
        let Some(node) = a.user.node_name() else {
            return Decision::NoOpinion;
        };
        let read = matches!(a.verb, "get" | "list" | "watch");
        let own_name = a.name == Some(node);
        let allowed = match (a.api_group, a.resource, a.subresource) {
            ("", "pods", "") => read || a.verb == "delete",
            ("", "pods", "status") => matches!(a.verb, "update" | "patch") || read,
            ("", "nodes", "") => {
                read || (matches!(a.verb, "create" | "update" | "patch") && own_name)
            }
            ("", "nodes", "status") => (matches!(a.verb, "update" | "patch") && own_name) || read,
            ("coordination.k8s.io", "leases", "") => {
                read || (matches!(a.verb, "create" | "update" | "patch" | "delete") && own_name)
            }
            ("", "services" | "endpoints" | "namespaces", "") => read,
            ("", "events", "") => matches!(a.verb, "create" | "update" | "patch"),
            _ => false,
        };
        if allowed {
            Decision::Allow
        } else {
            Decision::Deny(format!(
                "node {node:?} may not {} {}{}{}{}",
                a.verb,
                a.resource,
                if a.subresource.is_empty() { "" } else { "/" },
                a.subresource,
                a.name.map(|n| format!(" {n:?}")).unwrap_or_default()
            ))
        }
    }
}

/// Admission half of the node restriction: a node may change only its own
/// Node and Lease, and only the status of (or delete) pods bound to it.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeRestriction;

impl Admission for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    fn validate(&self, req: &AdmissionRequest<'_>, obj: &dyn Object) -> Result<(), ApiError> {
        let Some(node) = req.user.node_name() else {
            return Ok(());
        };
        let deny = |what: String| Err(ApiError::Forbidden(format!("node {node:?} {what}")));
        match req.resource.plural.as_str() {
            "pods" => {
                let bound = |o: &dyn Object| {
                    o.downcast_ref::<Pod>()
                        .and_then(|p| p.spec.node_name.as_deref())
                        == Some(node)
                };
                let current = req.old.unwrap_or(obj);
                if !bound(current) {
                    return deny(format!(
                        "may only change pods bound to it; pod {:?} is not",
                        req.name
                    ));
                }
                if req.operation == Operation::Update && !bound(obj) {
                    return deny(String::from("may not move a pod to another node"));
                }
                if req.operation == Operation::Create {
                    return deny(String::from("may not create pods"));
                }
                Ok(())
            }
            "nodes" | "leases" => {
                if req.name != node || obj.metadata().name() != node {
                    return deny(format!(
                        "may only change its own {}; not {:?}",
                        req.resource.kind, req.name
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
