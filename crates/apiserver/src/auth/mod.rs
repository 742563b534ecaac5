//! Who is calling and what they may do: [`UserInfo`], the [`Authenticator`]
//! and [`Authorizer`] traits, and the built-in implementations (static token
//! file, RBAC, node authorizer).

pub mod authn;
pub mod node_restriction;
pub mod rbac;

use std::sync::Arc;

pub use authn::{Authenticator, TokenFileAuthenticator, TokenFileError};
pub use node_restriction::{NodeAuthorizer, NodeRestriction};
pub use rbac::RbacAuthorizer;

/// The group every authenticated identity belongs to.
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const GROUP_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group whose members may do anything.
pub const GROUP_MASTERS: &str = "system:masters";
/// The group of node agents.
pub const GROUP_NODES: &str = "system:nodes";
/// The user name prefix of node agents: `system:node:<node name>`.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The user name of anonymous requests.
pub const USER_ANONYMOUS: &str = "system:anonymous";

/// An authenticated identity.
///
/// ```
/// use ketch_apiserver::auth::UserInfo;
/// let node = UserInfo::node("worker-1");
/// assert_eq!(node.name, "system:node:worker-1");
/// assert_eq!(node.node_name(), Some("worker-1"));
/// assert!(UserInfo::admin().in_group("system:masters"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name, e.g. `alice` or `system:node:worker-1`.
    pub name: String,
    /// A stable id of the user, possibly empty.
    pub uid: String,
    /// Groups the user belongs to.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A user with a name and groups.
    pub fn new(name: &str, groups: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    /// The all-powerful identity of in-process components (`system:masters`).
    pub fn admin() -> Self {
        Self::new("system:admin", &[GROUP_MASTERS, GROUP_AUTHENTICATED])
    }

    /// The identity of the node agent of `node`: `system:node:<node>` in
    /// group `system:nodes`.
    pub fn node(node: &str) -> Self {
        Self::new(
            &format!("{NODE_USER_PREFIX}{node}"),
            &[GROUP_NODES, GROUP_AUTHENTICATED],
        )
    }

    /// The anonymous identity.
    pub fn anonymous() -> Self {
        Self::new(USER_ANONYMOUS, &[GROUP_UNAUTHENTICATED])
    }

    /// True if the user belongs to `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The node name of a node identity (`system:node:<name>` in
    /// `system:nodes`), `None` for any other identity.
    pub fn node_name(&self) -> Option<&str> {
        if !self.in_group(GROUP_NODES) {
            return None;
        }
        self.name
            .strip_prefix(NODE_USER_PREFIX)
            .filter(|n| !n.is_empty())
    }

    /// True for members of `system:masters`, who bypass authorization.
    pub fn is_privileged(&self) -> bool {
        self.in_group(GROUP_MASTERS)
    }
}

/// What a request wants to do, as an [`Authorizer`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct Attributes<'a> {
    /// Who asks.
    pub user: &'a UserInfo,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
    pub verb: &'a str,
    /// API group of the resource (`""` for the core group).
    pub api_group: &'a str,
    /// Plural resource name, e.g. `pods`.
    pub resource: &'a str,
    /// Subresource, e.g. `status` or `binding`; `""` for the main resource.
    pub subresource: &'a str,
    /// Namespace of the request; `None` for cluster-scoped or all namespaces.
    pub namespace: Option<&'a str>,
    /// Object name; `None` for lists, watches and creates with generateName.
    pub name: Option<&'a str>,
}

/// An authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The request is allowed; later authorizers are not asked.
    Allow,
    /// The request is denied with a reason; later authorizers are not asked.
    Deny(String),
    /// This authorizer does not decide; the next one is asked.
    NoOpinion,
}

/// Decides whether a request is allowed. Authorizers form a chain: the first
/// `Allow` or `Deny` wins; when every authorizer has no opinion the request is
/// denied.
///
/// ```
/// use ketch_apiserver::auth::{Attributes, Authorizer, Decision};
/// /// Lets everybody read.
/// struct ReadOnly;
/// impl Authorizer for ReadOnly {
///     fn authorize(&self, a: &Attributes<'_>) -> Decision {
///         match a.verb {
///             "get" | "list" | "watch" => Decision::Allow,
///             _ => Decision::NoOpinion,
///         }
///     }
/// }
/// ```
pub trait Authorizer: Send + Sync + 'static {
    /// Decides on one request.
    fn authorize(&self, attributes: &Attributes<'_>) -> Decision;
}

/// Runs `chain` in order; deny when nobody allows.
pub(crate) fn authorize_chain(chain: &[Arc<dyn Authorizer>], attrs: &Attributes<'_>) -> Decision {
    for authorizer in chain {
        match authorizer.authorize(attrs) {
            Decision::NoOpinion => continue,
            decided => return decided,
        }
    }
    Decision::Deny(String::from("no authorizer allowed the request"))
}
