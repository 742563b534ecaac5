//! Stores for ketch: the embedded [`MemoryStore`] and a [`conformance`] suite
//! for any [`Store`](ketch_core::Store) implementation.
//!
//! ```
//! use ketch_core::{ListOptions, Store};
//! use ketch_store::MemoryStore;
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! store.create("/registry/pods/default/web-0", "{}".into()).await.unwrap();
//! let page = store.list("/registry/pods/", &ListOptions::default()).await.unwrap();
//! assert_eq!(page.items.len(), 1);
//! # });
//! ```
//!
//! | feature | enables |
//! |---|---|
//! | `etcd` | `EtcdStore`, a [`Store`](ketch_core::Store) on an etcd cluster |

pub mod conformance;
#[cfg(feature = "etcd")]
pub mod etcd;
mod memory;

#[cfg(feature = "etcd")]
pub use etcd::{EtcdConfig, EtcdStore};
pub use memory::{DiskError, FORMAT_VERSION, FsyncPolicy, MemoryStore, MemoryStoreOptions};
