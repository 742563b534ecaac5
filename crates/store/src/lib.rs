//! Stores for ketch: the embedded `MemoryStore` and a conformance suite for
//! any `Store` implementation.

#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "etcd")]
pub use etcd::{EtcdConfig, EtcdStore};
