//! Admission: a chain of plugins that may change (mutate) and then veto
//! (validate) every write before it reaches the store.
//!
//! Built-ins: [`Defaulting`] and [`Validation`] (the kind's own rules with
//! field paths), [`DefaultTolerations`] (not-ready / unreachable, 300 s),
//! [`ClusterIpAllocation`] (Service cluster IPs from a CIDR) and
//! [`NodeRestriction`](crate::auth::NodeRestriction).

pub mod cluster_ip;
pub mod defaults;

use ketch_core::{ApiError, ApiResource, Object};

pub use cluster_ip::ClusterIpAllocation;
pub use defaults::{DefaultTolerations, Defaulting, Validation};

use crate::auth::UserInfo;
use crate::registry::Strategy;

/// What a write does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A new object (also `pods/binding`).
    Create,
    /// A change of an existing object (including status updates and patches).
    Update,
    /// A deletion request (the object is the current state).
    Delete,
}

/// One write as admission plugins see it.
pub struct AdmissionRequest<'a> {
    /// What the write does.
    pub operation: Operation,
    /// The kind written.
    pub resource: &'a ApiResource,
    /// `""`, `status` or `binding`.
    pub subresource: &'a str,
    /// Namespace of the object (`None` for cluster-scoped kinds).
    pub namespace: Option<&'a str>,
    /// Name of the object.
    pub name: &'a str,
    /// Who writes.
    pub user: &'a UserInfo,
    /// The current object, for updates and deletes.
    pub old: Option<&'a dyn Object>,
    /// The kind's strategy (defaulting and validation rules).
    pub strategy: &'a dyn Strategy,
}

impl std::fmt::Debug for AdmissionRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdmissionRequest")
            .field("operation", &self.operation)
            .field("resource", &self.resource.plural)
            .field("subresource", &self.subresource)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("user", &self.user.name)
            .finish()
    }
}

/// An admission plugin. Every plugin's `mutate` runs first (in chain order),
/// then every plugin's `validate`; the first error rejects the write.
///
/// ```
/// use ketch_apiserver::admission::{Admission, AdmissionRequest};
/// use ketch_core::{ApiError, Object};
/// /// Rejects objects labelled `frozen=true`.
/// struct Freeze;
/// impl Admission for Freeze {
///     fn name(&self) -> &'static str { "Freeze" }
///     fn validate(&self, _req: &AdmissionRequest<'_>, obj: &dyn Object) -> Result<(), ApiError> {
///         match obj.metadata().labels.get("frozen").map(String::as_str) {
///             Some("true") => Err(ApiError::Forbidden("frozen".into())),
///             _ => Ok(()),
///         }
///     }
/// }
/// ```
pub trait Admission: Send + Sync + 'static {
    /// The plugin's name, used in error messages.
    fn name(&self) -> &'static str;

    /// Changes the object before it is validated and written.
    fn mutate(&self, _req: &AdmissionRequest<'_>, _obj: &mut dyn Object) -> Result<(), ApiError> {
        Ok(())
    }

    /// Accepts or rejects the (mutated) object.
    fn validate(&self, _req: &AdmissionRequest<'_>, _obj: &dyn Object) -> Result<(), ApiError> {
        Ok(())
    }

    /// The write that `mutate` prepared did not happen (a later plugin
    /// rejected it or the store failed): undo side effects such as
    /// allocations.
    fn rollback(&self, _req: &AdmissionRequest<'_>, _obj: &dyn Object) {}

    /// An object left the store: release what it held.
    fn removed(&self, _resource: &ApiResource, _obj: &dyn Object) {}

    /// Called once per existing object when the server starts, to rebuild
    /// in-memory state (e.g. allocated IPs).
    fn restore(&self, _resource: &ApiResource, _obj: &dyn Object) {}
}

/// Runs `mutate` of every plugin then `validate` of every plugin; on failure
/// rolls back the plugins that mutated.
pub(crate) fn admit(
    chain: &[std::sync::Arc<dyn Admission>],
    req: &AdmissionRequest<'_>,
    obj: &mut dyn Object,
) -> Result<(), ApiError> {
    for (i, plugin) in chain.iter().enumerate() {
        if let Err(e) = plugin.mutate(req, obj) {
            for p in chain[..i].iter().rev() {
                p.rollback(req, obj);
            }
            return Err(e);
        }
    }
    for plugin in chain {
        if let Err(e) = plugin.validate(req, obj) {
            rollback(chain, req, obj);
            return Err(e);
        }
    }
    Ok(())
}

/// Tells every plugin the write did not happen.
pub(crate) fn rollback(
    chain: &[std::sync::Arc<dyn Admission>],
    req: &AdmissionRequest<'_>,
    obj: &dyn Object,
) {
    for p in chain.iter().rev() {
        p.rollback(req, obj);
    }
}
