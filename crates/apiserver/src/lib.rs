//! The ketch API server: validation, defaulting, admission, authentication,
//! authorization and watch fan-out over any `Store`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ketch_apiserver::ApiServer;
//! use ketch_core::{Api, ListParams, api::Pod};
//! let store = Arc::new(ketch_store::MemoryStore::new());
//! let server = ApiServer::builder(store).build().await?;
//! let pods: Api<Pod> = Api::namespaced(server.client(), "default");
//! let running = pods.list(&ListParams::default().fields("status.phase=Running")).await?;
//! assert!(running.items.is_empty());
//! # Ok(()) }
//! ```

pub mod admission;
pub mod auth;
pub mod client;
pub mod filter;
pub mod grpc;
mod handlers;
pub mod ip_alloc;
pub mod registry;
pub mod server;
pub mod watch_cache;

pub use client::InProcessClient;
pub use server::{ApiServer, ApiServerBuilder, BuildError, DEFAULT_MAX_REQUEST_BYTES};
pub use watch_cache::CacheConfig;
