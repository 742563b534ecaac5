//! The server side: [`GrpcServer`] answers every `ketch.v1.Api` method by
//! calling the [`Client`] of the caller's identity, found through a
//! [`ClientProvider`] from the bearer token in the `authorization` metadata.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http::HeaderMap;
use ketch_core::{ApiError, ArcObject, Client, DeleteOutcome, Object, Scheme};
use parking_lot::RwLock;
use tonic::Status;

use super::GrpcError;
use super::coalesce::CoalescingIo;
use super::connection::serve_connection;
use super::convert::{
    delete_params, encode_event, encode_object, list_params, required, status_from_error,
    watch_params,
};
use super::proto;
use crate::ApiServer;
use crate::watch_cache::capture_written;

/// HTTP/2 flow-control window of one stream: fixed and large, so that lists
/// stream at full speed without the pings adaptive windows cost per call.
pub(crate) const WINDOW: u32 = 4 * 1024 * 1024;
/// HTTP/2 flow-control window of a whole connection.
pub(crate) const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Default limit of one object in a request: 3 MiB, as Kubernetes.
pub const DEFAULT_MAX_OBJECT_BYTES: usize = 3 * 1024 * 1024;

/// Finds the [`Client`] that acts as a caller, and decodes the objects of
/// requests. [`ApiServerProvider`] serves an [`ApiServer`]; tests and
/// embedders may supply their own.
///
/// ```
/// use std::sync::Arc;
/// use ketch_core::{ApiError, Client, Object, Scheme};
/// use ketch_apiserver::grpc::ClientProvider;
///
/// /// Serves one client to callers presenting one token.
/// struct OneToken { token: String, client: Arc<dyn Client>, scheme: Scheme }
///
/// impl ClientProvider for OneToken {
///     fn client_for(&self, bearer_token: Option<&str>) -> Result<Arc<dyn Client>, ApiError> {
///         match bearer_token {
///             Some(t) if t == self.token => Ok(self.client.clone()),
///             Some(_) => Err(ApiError::Unauthorized("unknown bearer token".into())),
///             None => Err(ApiError::Unauthorized("anonymous requests are not allowed".into())),
///         }
///     }
///     fn decode_object(&self, api_version: &str, kind: &str, json: &[u8]) -> Result<Box<dyn Object>, ApiError> {
///         let info = self.scheme.by_kind(api_version, kind)
///             .ok_or_else(|| ApiError::BadRequest(format!("unknown kind {kind}")))?;
///         info.decode_bytes(json).map_err(|e| ApiError::BadRequest(e.to_string()))
///     }
/// }
/// ```
pub trait ClientProvider: Send + Sync + 'static {
    /// The client acting as the identity proven by `bearer_token`, or as an
    /// anonymous caller when `None`. Fails `Unauthorized` for a bad token
    /// (or an anonymous caller the server does not accept).
    fn client_for(&self, bearer_token: Option<&str>) -> Result<Arc<dyn Client>, ApiError>;

    /// Decodes the JSON of a request object sent as `api_version`/`kind`;
    /// malformed or unknown objects fail `BadRequest`.
    fn decode_object(
        &self,
        api_version: &str,
        kind: &str,
        json: &[u8],
    ) -> Result<Box<dyn Object>, ApiError>;
}

/// The [`ClientProvider`] of an [`ApiServer`]: bearer tokens go through the
/// server's authenticator (anonymous callers are accepted only when the
/// server allows them), and each identity gets the server's in-process
/// client acting as it, cached per token.
///
/// ```no_run
/// # fn demo(server: ketch_apiserver::ApiServer) {
/// use ketch_apiserver::grpc::{ApiServerProvider, GrpcServer};
/// let grpc = GrpcServer::new(ApiServerProvider::new(server));
/// # }
/// ```
pub struct ApiServerProvider {
    server: ApiServer,
    scheme: Scheme,
    clients: RwLock<HashMap<String, Arc<dyn Client>>>,
}

impl std::fmt::Debug for ApiServerProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServerProvider")
            .field("cached_identities", &self.clients.read().len())
            .finish_non_exhaustive()
    }
}

impl ApiServerProvider {
    /// Serves `server`.
    pub fn new(server: ApiServer) -> Self {
        Self {
            server,
            scheme: Scheme::with_builtins(),
            clients: RwLock::new(HashMap::new()),
        }
    }

    /// The served API server.
    pub fn server(&self) -> &ApiServer {
        &self.server
    }
}

/// Most tokens a provider remembers; beyond it identities are looked up on
/// every call.
const MAX_CACHED_IDENTITIES: usize = 4096;

impl ClientProvider for ApiServerProvider {
    fn client_for(&self, bearer_token: Option<&str>) -> Result<Arc<dyn Client>, ApiError> {
        let Some(token) = bearer_token else {
            let user = self.server.authenticate(None)?;
            return Ok(self.server.client_as(user));
        };
        if let Some(client) = self.clients.read().get(token) {
            return Ok(client.clone());
        }
        let user = self.server.authenticate(Some(token))?;
        let client = self.server.client_as(user);
        let mut clients = self.clients.write();
        if clients.len() < MAX_CACHED_IDENTITIES {
            clients.insert(token.to_string(), client.clone());
        }
        Ok(client)
    }

    fn decode_object(
        &self,
        api_version: &str,
        kind: &str,
        json: &[u8],
    ) -> Result<Box<dyn Object>, ApiError> {
        let limit = self.server.max_request_bytes();
        match self.scheme.by_kind(api_version, kind) {
            // Built-in kinds decode straight from the bytes; the server
            // handles every other kind it has registered.
            Some(info) if json.len() <= limit => info
                .decode_bytes(json)
                .map_err(|e| ApiError::BadRequest(format!("decoding {kind}: {e}"))),
            _ => self.server.decode_object(json),
        }
    }
}

pub(super) struct Inner {
    provider: Arc<dyn ClientProvider>,
    max_object_bytes: usize,
    /// Largest request message the transport reads.
    pub(super) max_message_bytes: usize,
}

/// Extracts the bearer token of `authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("authorization metadata is not ASCII".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("authorization metadata must be `Bearer <token>`".into())
        })?;
    Ok(Some(token))
}

fn st(err: ApiError) -> Status {
    status_from_error(&err)
}

/// The events of a watch call; the first error ends the call with that
/// error as its status.
pub(super) type WatchEvents = BoxStream<'static, Result<proto::WatchEvent, Status>>;

fn object_response(obj: &dyn Object) -> Result<proto::ObjectResponse, Status> {
    Ok(proto::ObjectResponse {
        object: Some(encode_object(obj).map_err(st)?),
    })
}

/// Runs a write and answers with the object it returns. When the object is
/// the one the API server just stored, its reply is made from the stored
/// JSON instead of encoding the object again.
async fn written_response(
    write: impl Future<Output = Result<ArcObject, ApiError>>,
) -> Result<proto::ObjectResponse, Status> {
    let (out, written) = capture_written(write).await;
    let out = out.map_err(st)?;
    match written.and_then(|w| w.json_of(&out)) {
        Some(json) => Ok(proto::ObjectResponse {
            object: Some(proto::RawObject {
                api_version: out.api_version().to_string(),
                kind: out.kind().to_string(),
                json: Bytes::from(json),
            }),
        }),
        None => object_response(out.as_ref()),
    }
}

/// The methods of the service, each given the call's request headers and
/// its decoded request message.
impl Inner {
    fn client(&self, headers: &HeaderMap) -> Result<Arc<dyn Client>, Status> {
        let token = bearer_token(headers).map_err(st)?;
        self.provider.client_for(token).map_err(st)
    }

    fn decode(&self, raw: Option<proto::RawObject>) -> Result<Box<dyn Object>, Status> {
        let raw = required(raw).map_err(st)?;
        if raw.json.len() > self.max_object_bytes {
            return Err(st(ApiError::TooLarge(format!(
                "{} object of {} bytes exceeds the limit of {} bytes",
                raw.kind,
                raw.json.len(),
                self.max_object_bytes
            ))));
        }
        if raw.api_version.is_empty() || raw.kind.is_empty() {
            return Err(st(ApiError::BadRequest(
                "object: apiVersion and kind are required".into(),
            )));
        }
        self.provider
            .decode_object(&raw.api_version, &raw.kind, &raw.json)
            .map_err(st)
    }

    pub(super) async fn create(
        &self,
        headers: &HeaderMap,
        req: proto::ObjectRequest,
    ) -> Result<proto::ObjectResponse, Status> {
        let client = self.client(headers)?;
        let obj = self.decode(req.object)?;
        written_response(client.create(obj)).await
    }

    pub(super) async fn update(
        &self,
        headers: &HeaderMap,
        req: proto::ObjectRequest,
    ) -> Result<proto::ObjectResponse, Status> {
        let client = self.client(headers)?;
        let obj = self.decode(req.object)?;
        written_response(client.update(obj)).await
    }

    pub(super) async fn update_status(
        &self,
        headers: &HeaderMap,
        req: proto::ObjectRequest,
    ) -> Result<proto::ObjectResponse, Status> {
        let client = self.client(headers)?;
        let obj = self.decode(req.object)?;
        written_response(client.update_status(obj)).await
    }

    pub(super) async fn get(
        &self,
        headers: &HeaderMap,
        r: proto::GetRequest,
    ) -> Result<proto::ObjectResponse, Status> {
        let client = self.client(headers)?;
        let out = client
            .get(&r.resource, r.namespace.as_deref(), &r.name)
            .await
            .map_err(st)?;
        object_response(out.as_ref())
    }

    pub(super) async fn list(
        &self,
        headers: &HeaderMap,
        r: proto::ListRequest,
    ) -> Result<proto::ListResponse, Status> {
        let client = self.client(headers)?;
        let resource = r.resource.clone();
        let namespace = r.namespace.clone();
        let params = list_params(r).map_err(st)?;
        let list = client
            .list(&resource, namespace.as_deref(), &params)
            .await
            .map_err(st)?;
        let items = list
            .items
            .iter()
            .map(|o| encode_object(o.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(st)?;
        Ok(proto::ListResponse {
            items,
            resource_version: list.resource_version,
            continue_token: list.continue_token,
            remaining_item_count: list.remaining_item_count,
        })
    }

    pub(super) async fn patch(
        &self,
        headers: &HeaderMap,
        r: proto::PatchRequest,
    ) -> Result<proto::ObjectResponse, Status> {
        let client = self.client(headers)?;
        if r.patch.len() > self.max_object_bytes {
            return Err(st(ApiError::TooLarge(format!(
                "patch of {} bytes exceeds the limit of {} bytes",
                r.patch.len(),
                self.max_object_bytes
            ))));
        }
        let patch: serde_json::Value = serde_json::from_slice(&r.patch).map_err(|e| {
            st(ApiError::BadRequest(format!(
                "patch is not valid JSON: {e}"
            )))
        })?;
        written_response(client.patch(&r.resource, r.namespace.as_deref(), &r.name, &patch)).await
    }

    pub(super) async fn delete(
        &self,
        headers: &HeaderMap,
        r: proto::DeleteRequest,
    ) -> Result<proto::DeleteResponse, Status> {
        let client = self.client(headers)?;
        let params = delete_params(&r);
        let outcome = client
            .delete(&r.resource, r.namespace.as_deref(), &r.name, &params)
            .await
            .map_err(st)?;
        let (pending, obj) = match outcome {
            DeleteOutcome::Deleted(o) => (false, o),
            DeleteOutcome::Pending(o) => (true, o),
        };
        Ok(proto::DeleteResponse {
            pending,
            object: Some(encode_object(obj.as_ref()).map_err(st)?),
        })
    }

    pub(super) async fn bind(
        &self,
        headers: &HeaderMap,
        r: proto::BindRequest,
    ) -> Result<proto::ObjectResponse, Status> {
        let client = self.client(headers)?;
        written_response(client.bind(&r.namespace, &r.pod, &r.node)).await
    }

    pub(super) async fn watch(
        &self,
        headers: &HeaderMap,
        r: proto::WatchRequest,
    ) -> Result<WatchEvents, Status> {
        let client = self.client(headers)?;
        let params = watch_params(&r);
        let events = client
            .watch(&r.resource, r.namespace.as_deref(), &params)
            .await
            .map_err(st)?;
        Ok(Box::pin(events.map(|item| {
            item.and_then(|event| encode_event(&event)).map_err(st)
        })))
    }
}

/// The `ketch.v1.Api` gRPC service over a [`ClientProvider`], served over
/// HTTP/2 with [`GrpcServer::serve`] and its siblings.
///
/// Requests whose object is larger than [`GrpcServer::max_object_bytes`]
/// fail `TooLarge`; messages larger than the message limit are refused by
/// the transport (also `TooLarge` on the client side); undecodable objects
/// fail `BadRequest` naming the field.
///
/// ```no_run
/// # async fn demo(provider: impl ketch_apiserver::grpc::ClientProvider) -> Result<(), ketch_apiserver::grpc::GrpcError> {
/// use ketch_apiserver::grpc::GrpcServer;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(ketch_apiserver::grpc::GrpcError::Io)?;
/// GrpcServer::new(provider).serve_with_listener(listener, std::future::pending()).await
/// # }
/// ```
#[derive(Clone)]
pub struct GrpcServer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("max_object_bytes", &self.inner.max_object_bytes)
            .field("max_message_bytes", &self.inner.max_message_bytes)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// A server answering through `provider`, with a 3 MiB object limit.
    pub fn new(provider: impl ClientProvider) -> Self {
        Self::from_arc(Arc::new(provider))
    }

    /// A server in front of an [`ApiServer`], with its request size limit.
    ///
    /// ```no_run
    /// # async fn demo(server: ketch_apiserver::ApiServer) -> Result<(), ketch_apiserver::grpc::GrpcError> {
    /// use ketch_apiserver::grpc::GrpcServer;
    /// GrpcServer::for_api_server(server).serve("127.0.0.1:6443".parse().unwrap()).await
    /// # }
    /// ```
    pub fn for_api_server(server: ApiServer) -> Self {
        let limit = server.max_request_bytes();
        Self::new(ApiServerProvider::new(server)).max_object_bytes(limit)
    }

    /// A server answering through a shared provider.
    pub fn from_arc(provider: Arc<dyn ClientProvider>) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
                max_message_bytes: DEFAULT_MAX_OBJECT_BYTES + 64 * 1024,
            }),
        }
    }

    /// Sets the largest object a request may carry; the transport's message
    /// limit follows (the object plus 64 KiB of envelope).
    ///
    /// ```no_run
    /// # fn demo(provider: impl ketch_apiserver::grpc::ClientProvider) {
    /// let server = ketch_apiserver::grpc::GrpcServer::new(provider).max_object_bytes(1 << 20);
    /// # }
    /// ```
    pub fn max_object_bytes(self, limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider: self.inner.provider.clone(),
                max_object_bytes: limit,
                max_message_bytes: limit.saturating_add(64 * 1024),
            }),
        }
    }

    /// Serves on `addr` until the process ends.
    pub async fn serve(self, addr: SocketAddr) -> Result<(), GrpcError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(GrpcError::Io)?;
        self.serve_with_listener(listener, std::future::pending())
            .await
    }

    /// Serves connections of `listener` until `shutdown` completes, then
    /// lets the open connections finish their calls.
    ///
    /// Each connection is served by [`h2`] directly; the `grpc-timeout`
    /// deadline of each call is enforced here.
    pub async fn serve_with_listener(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GrpcError> {
        let inner = self.inner;
        accept_loop(listener, shutdown, move |io, stop| {
            serve_connection(inner.clone(), io, stop)
        })
        .await
    }

    /// Serves TLS connections of `listener` until `shutdown` completes, then
    /// lets the open connections finish their calls. Clients must offer
    /// HTTP/2 by ALPN (`h2`). A certificate or key that does not parse fails
    /// [`GrpcError::Tls`] before anything is served.
    ///
    /// ```no_run
    /// # async fn demo(server: ketch_apiserver::grpc::GrpcServer, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Result<(), ketch_apiserver::grpc::GrpcError> {
    /// use ketch_apiserver::grpc::{GrpcError, ServerTls};
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:6443").await.map_err(GrpcError::Io)?;
    /// server.serve_tls_with_listener(listener, ServerTls { cert_pem, key_pem }, std::future::pending()).await
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub async fn serve_tls_with_listener(
        self,
        listener: tokio::net::TcpListener,
        tls: super::ServerTls,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GrpcError> {
        let acceptor = tls_acceptor(&tls)?;
        let inner = self.inner;
        accept_loop(listener, shutdown, move |io, mut stop| {
            let inner = inner.clone();
            let acceptor = acceptor.clone();
            async move {
                let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io));
                let io = tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(io)) => io,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    },
                    _ = stop.changed() => return,
                };
                serve_connection(inner, io, stop).await;
            }
        })
        .await
    }
}

/// How long a TLS handshake may take before the connection is dropped.
#[cfg(feature = "tls")]
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS acceptor of `tls`: rustls with ring, offering HTTP/2 by ALPN.
#[cfg(feature = "tls")]
fn tls_acceptor(tls: &super::ServerTls) -> Result<tokio_rustls::TlsAcceptor, GrpcError> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let certs = CertificateDer::pem_slice_iter(&tls.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| GrpcError::Tls(format!("cert_pem: {e}")))?;
    if certs.is_empty() {
        return Err(GrpcError::Tls("cert_pem: no certificate found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&tls.key_pem)
        .map_err(|e| GrpcError::Tls(format!("key_pem: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| GrpcError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| GrpcError::Tls(format!("cert_pem and key_pem: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections of `listener` until `shutdown` completes, handing
/// each (without Nagle's delay, with coalesced writes) to `serve` on a task
/// of its own with a receiver that changes at shutdown; then stops
/// accepting and waits until every connection task has dropped its
/// receiver.
async fn accept_loop<F, Fut>(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    serve: F,
) -> Result<(), GrpcError>
where
    F: Fn(CoalescingIo<tokio::net::TcpStream>, tokio::sync::watch::Receiver<()>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: try again shortly
                    // rather than spin.
                    tracing::debug!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY failed");
        }
        tokio::spawn(serve(CoalescingIo::new(stream), stop_rx.clone()));
    }
    // Stop accepting at once, then wait for the open connections.
    drop(listener);
    let _ = stop_tx.send(());
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use ketch_core::api::Pod;
    use ketch_core::{
        ArcObject, DeleteParams, ListParams, ObjectEventStream, ObjectList, ObjectMeta, WatchParams,
    };

    use crate::grpc::RemoteClient;

    /// Creates take a second; nothing else is served.
    struct Slow;

    fn only_creates() -> ApiError {
        ApiError::BadRequest("only creates".into())
    }

    #[async_trait::async_trait]
    impl Client for Slow {
        async fn create(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(object.into())
        }
        async fn get(&self, _: &str, _: Option<&str>, _: &str) -> Result<ArcObject, ApiError> {
            Err(only_creates())
        }
        async fn list(
            &self,
            _: &str,
            _: Option<&str>,
            _: &ListParams,
        ) -> Result<ObjectList, ApiError> {
            Err(only_creates())
        }
        async fn update(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
            Err(only_creates())
        }
        async fn update_status(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
            Err(only_creates())
        }
        async fn patch(
            &self,
            _: &str,
            _: Option<&str>,
            _: &str,
            _: &serde_json::Value,
        ) -> Result<ArcObject, ApiError> {
            Err(only_creates())
        }
        async fn delete(
            &self,
            _: &str,
            _: Option<&str>,
            _: &str,
            _: &DeleteParams,
        ) -> Result<DeleteOutcome, ApiError> {
            Err(only_creates())
        }
        async fn watch(
            &self,
            _: &str,
            _: Option<&str>,
            _: &WatchParams,
        ) -> Result<ObjectEventStream, ApiError> {
            Err(only_creates())
        }
        async fn bind(&self, _: &str, _: &str, _: &str) -> Result<ArcObject, ApiError> {
            Err(only_creates())
        }
    }

    struct SlowProvider(Scheme);

    impl ClientProvider for SlowProvider {
        fn client_for(&self, _: Option<&str>) -> Result<Arc<dyn Client>, ApiError> {
            Ok(Arc::new(Slow))
        }
        fn decode_object(
            &self,
            api_version: &str,
            kind: &str,
            json: &[u8],
        ) -> Result<Box<dyn Object>, ApiError> {
            let info = self
                .0
                .by_kind(api_version, kind)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown kind {kind}")))?;
            info.decode_bytes(json)
                .map_err(|e| ApiError::BadRequest(e.to_string()))
        }
    }

    fn pod() -> Box<dyn Object> {
        Box::new(Pod {
            metadata: ObjectMeta::named("default", "p"),
            ..Pod::default()
        })
    }

    #[tokio::test]
    async fn the_server_ends_a_call_at_its_deadline_and_drains_on_shutdown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            GrpcServer::new(SlowProvider(Scheme::with_builtins())).serve_with_listener(
                listener,
                async move {
                    let _ = stop_rx.await;
                },
            ),
        );
        let url = format!("http://{addr}");

        // The server answers the deadline (as tonic does: cancelled); the
        // client's own guard, 250 ms later, would say `Timeout` instead.
        let hasty = RemoteClient::builder(&url)
            .timeout(Duration::from_millis(100))
            .connect()
            .await
            .unwrap();
        let err = hasty.create(pod()).await.unwrap_err();
        assert_eq!(err, ApiError::Unavailable("Timeout expired".into()));

        // A call in flight at shutdown still gets its answer; then the
        // server returns and stops accepting.
        let patient = RemoteClient::builder(&url).connect().await.unwrap();
        let call = tokio::spawn(async move { patient.create(pod()).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop_tx.send(()).unwrap();
        let created = call.await.unwrap().expect("the call in flight finishes");
        assert_eq!(created.metadata().name(), "p");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server returns once its connections are done")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[cfg(feature = "tls")]
    #[tokio::test]
    async fn an_unusable_tls_identity_is_refused_naming_the_part() {
        let cases = [
            (b"not a certificate".to_vec(), b"".to_vec(), "cert_pem"),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
                b"not a key".to_vec(),
                "key_pem",
            ),
        ];
        for (cert_pem, key_pem, part) in cases {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tls = super::super::ServerTls { cert_pem, key_pem };
            let err = GrpcServer::new(SlowProvider(Scheme::with_builtins()))
                .serve_tls_with_listener(listener, tls, std::future::pending())
                .await
                .unwrap_err();
            assert!(
                matches!(&err, GrpcError::Tls(m) if m.contains(part)),
                "{part}: {err}"
            );
        }
    }
}
