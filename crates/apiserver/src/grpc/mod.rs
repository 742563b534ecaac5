//! The remote transport: the `ketch.v1.Api` gRPC service ([`GrpcServer`])
//! and a [`Client`](ketch_core::Client) that talks to it ([`RemoteClient`]).
//!
//! Every `Client` verb is one gRPC method; `Watch` is a server stream.
//! Objects travel as JSON tagged with `apiVersion` and `kind` and are decoded
//! with a [`Scheme`](ketch_core::Scheme) on arrival. Callers authenticate
//! with `authorization: Bearer <token>` metadata; the server hands each call
//! to the `Client` of that identity through a [`ClientProvider`]
//! ([`ApiServerProvider`] for an [`ApiServer`](crate::ApiServer)). API errors
//! cross the wire exactly ([`status_from_error`], [`error_from_status`]).
//! The messages are plain `prost` structs ([`proto`]), so building needs no
//! `protoc`. Both sides speak gRPC straight on HTTP/2 (`h2`), TLS included
//! (tokio-rustls), and interoperate with any gRPC peer: on the client, each
//! call is sent and read by the task that makes it and one task per
//! connection only drives the connection; on the server, each call runs in
//! a task of its own. tonic supplies only the `Status` and `Code` types.
//!
//! | feature | what it adds |
//! |---|---|
//! | `tls` | [`ServerTls`], [`ClientTls`]: TLS with rustls (ring) |
//!
//! ```no_run
//! # async fn demo(provider: impl ketch_apiserver::grpc::ClientProvider) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ketch_core::{Api, Client, api::Pod};
//! use ketch_apiserver::grpc::{GrpcServer, RemoteClient};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! tokio::spawn(GrpcServer::new(provider).serve_with_listener(listener, std::future::pending()));
//! let client: Arc<dyn Client> = Arc::new(
//!     RemoteClient::builder(&format!("http://{addr}")).token("s3cret").connect_lazy()?,
//! );
//! let pods = Api::<Pod>::namespaced(client, "default").list(&Default::default()).await?;
//! # Ok(()) }
//! ```

mod channel;
mod client;
mod coalesce;
mod connection;
mod convert;
pub mod proto;
mod server;
mod wire;

pub use client::{DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_TIMEOUT, RemoteClient, RemoteClientBuilder};
pub use convert::{error_from_status, status_from_error};
pub use server::{ApiServerProvider, ClientProvider, DEFAULT_MAX_OBJECT_BYTES, GrpcServer};

/// Errors of setting up or running the transport (call failures are
/// [`ApiError`](ketch_core::ApiError)s).
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// The endpoint is not a valid URI.
    #[error("invalid endpoint {0}")]
    InvalidEndpoint(String),
    /// The bearer token cannot be sent as metadata (it is not visible ASCII).
    #[error("the bearer token contains characters not allowed in metadata")]
    InvalidToken,
    /// Binding or accepting failed.
    #[error("i/o: {0}")]
    Io(#[source] std::io::Error),
    /// The TLS settings are unusable (the server's certificate or key, the
    /// client's CA certificates or server name); the message names which.
    #[cfg(feature = "tls")]
    #[error("TLS settings: {0}")]
    Tls(String),
    /// No TCP connection to the server (resolving, connecting, or the
    /// connect timeout).
    #[error("connecting to {endpoint}: {source}")]
    Connect {
        /// The endpoint connected to.
        endpoint: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake with the server failed (its certificate, its name,
    /// or no agreement on HTTP/2).
    #[cfg(feature = "tls")]
    #[error("TLS handshake with {endpoint}: {source}")]
    TlsHandshake {
        /// The endpoint connected to.
        endpoint: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP/2 handshake with the server failed.
    #[error("HTTP/2 handshake with {endpoint}: {source}")]
    Http2 {
        /// The endpoint connected to.
        endpoint: String,
        /// What failed.
        #[source]
        source: h2::Error,
    },
}

/// The server's TLS identity, PEM encoded.
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// Certificate chain.
    pub cert_pem: Vec<u8>,
    /// Private key.
    pub key_pem: Vec<u8>,
}

/// What a client trusts, PEM encoded.
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
pub struct ClientTls {
    /// The CA certificate(s) the server's certificate must chain to.
    pub ca_pem: Vec<u8>,
    /// The name to verify the server's certificate against, when it differs
    /// from the endpoint's host.
    pub domain: Option<String>,
}
