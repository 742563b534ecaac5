//! Informers: local caches of the API kept current by list + watch.
//!
//! - [`Informer`] lists a kind, then watches it from the list's resource
//!   version into a cache with one [`Writer`] and cheap [`CacheReader`]s
//!   returning shared [`Arc`](std::sync::Arc)s. It resumes broken watches
//!   from the last resource version, relists when the server answers
//!   [`ApiError::Expired`](crate::ApiError::Expired), and backs off with
//!   jitter ([`Backoff`]) on errors.
//! - [`Indexer`]s answer lookups such as "pods on node n1" without a scan.
//! - [`Informer::subscribe`] gives a component an ordered stream of typed
//!   changes; [`Informer::wait_synced`] waits for the first list.
//! - [`SharedInformerFactory`] shares one informer per kind, namespace and
//!   selectors among all components of a process.
//!
//! ```no_run
//! # async fn demo(client: std::sync::Arc<dyn ketch_core::Client>) {
//! use ketch_core::api::Pod;
//! use ketch_core::runtime::{Indexer, SharedInformerFactory, NODE_NAME_INDEX};
//! let factory = SharedInformerFactory::new(client);
//! let pods = factory.informer::<Pod>();
//! pods.add_indexer(Indexer::pods_by_node_name());
//! factory.wait_for_sync().await;
//! let unbound = pods.reader().by_index(NODE_NAME_INDEX, "").unwrap();
//! # }
//! ```

mod backoff;
mod cache;
mod factory;
mod informer;
mod reflector;

pub use backoff::Backoff;
pub use cache::{
    CacheError, CacheReader, EventStream, Indexer, NAMESPACE_INDEX, NODE_NAME_INDEX, Writer,
    object_key,
};
pub use factory::{InformerScope, SharedInformerFactory};
pub use informer::Informer;
pub use reflector::{ReflectorConfig, ReflectorStats};

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
