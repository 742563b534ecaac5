//! The ketch API server: validation, defaulting, admission, authentication,
//! authorization and watch fan-out over any `Store`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ketch_apiserver::ApiServer;
//! use ketch_core::{Api, ListParams, Store, api::Pod};
//! # let store: Arc<dyn Store> = unimplemented!();
//! let server = ApiServer::builder(store).build().await?;
//! let pods: Api<Pod> = Api::namespaced(server.client(), "default");
//! let running = pods.list(&ListParams::default().fields("status.phase=Running")).await?;
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
