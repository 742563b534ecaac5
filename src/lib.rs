//! ketch: composable control-plane components in the shape of Kubernetes.
//!
//! This facade re-exports the member crates:
//!
//! | module | crate | holds |
//! |---|---|---|
//! | [`core`] | ketch-core | object model, quantities, selectors, the `Store` and `Client` traits |
//! | [`store`] | ketch-store | `MemoryStore`, `EtcdStore` (feature `etcd`), conformance suite |
//! | [`apiserver`] | ketch-apiserver | the API server and its gRPC transport |
//! | [`scheduler`] | ketch-scheduler | scheduling framework and default plugins |
//! | [`controllers`] | ketch-controllers | controller runtime and built-in controllers |
//! | [`node`] | ketch-node | node agent, container runtimes and proxies |

pub use ketch_apiserver as apiserver;
pub use ketch_controllers as controllers;
pub use ketch_core as core;
pub use ketch_node as node;
pub use ketch_scheduler as scheduler;
pub use ketch_store as store;

mod cluster;

pub use cluster::{Cluster, ClusterBuilder, ClusterError};
