//! `coordination.k8s.io/v1` kinds: Lease (node heartbeats, leader election).

use serde::{Deserialize, Serialize};

use super::{MicroTime, resource};

/// Desired state of a lease.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct LeaseSpec {
    /// Who holds the lease.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_identity: Option<String>,
    /// How long the holder may go without renewing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_duration_seconds: Option<i32>,
    /// When the current holder acquired it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acquire_time: Option<MicroTime>,
    /// When the holder last renewed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renew_time: Option<MicroTime>,
    /// How many times the holder changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_transitions: Option<i32>,
}

resource! {
    /// A lease: a heartbeat of a node or the lock of a leader election.
    pub struct Lease {
        kind: "Lease", api_version: "coordination.k8s.io/v1", plural: "leases", namespaced: true;
        /// Desired state.
        pub spec: LeaseSpec = "spec",
    }
}
