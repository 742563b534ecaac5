//! The server side: [`GrpcServer`] answers every `ketch.v1.Api` method by
//! calling the [`Client`] of the caller's identity, found through a
//! [`ClientProvider`] from the bearer token in the `authorization` metadata.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use futures::StreamExt;
use std::collections::HashMap;

use bytes::Bytes;
use ketch_core::{ApiError, ArcObject, Client, DeleteOutcome, Object, Scheme};
use parking_lot::RwLock;
use tonic::codegen::{BoxFuture, BoxStream, http};
use tonic::server::{Grpc, NamedService, ServerStreamingService, UnaryService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

use super::GrpcError;
use super::coalesce::CoalescingIo;
use super::convert::{
    delete_params, encode_event, encode_object, list_params, required, status_from_error,
    watch_params,
};
use super::proto::{self, path};
use crate::ApiServer;
use crate::watch_cache::capture_written;

/// HTTP/2 flow-control window of one stream: fixed and large, so that lists
/// stream at full speed without the pings adaptive windows cost per call.
pub(crate) const WINDOW: u32 = 4 * 1024 * 1024;
/// HTTP/2 flow-control window of a whole connection.
pub(crate) const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// Interval of HTTP/2 pings on an idle connection.
const KEEPALIVE_INTERVAL: Option<Duration> = Some(Duration::from_secs(30));
/// How long a ping may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

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

struct Inner {
    provider: Arc<dyn ClientProvider>,
    max_object_bytes: usize,
    max_message_bytes: usize,
}

/// Extracts the bearer token of `authorization: Bearer <token>`.
fn bearer_token<T>(request: &Request<T>) -> Result<Option<&str>, ApiError> {
    let Some(value) = request.metadata().get("authorization") else {
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

impl Inner {
    fn client<T>(&self, request: &Request<T>) -> Result<Arc<dyn Client>, Status> {
        let token = bearer_token(request).map_err(st)?;
        self.provider.client_for(token).map_err(st)
    }

    fn decode(&self, raw: proto::RawObject) -> Result<Box<dyn Object>, Status> {
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
}

fn object_response(obj: &dyn Object) -> Result<Response<proto::ObjectResponse>, Status> {
    Ok(Response::new(proto::ObjectResponse {
        object: Some(encode_object(obj).map_err(st)?),
    }))
}

/// Runs a write and answers with the object it returns. When the object is
/// the one the API server just stored, its reply is made from the stored
/// JSON instead of encoding the object again.
async fn written_response(
    write: impl Future<Output = Result<ArcObject, ApiError>>,
) -> Result<Response<proto::ObjectResponse>, Status> {
    let (out, written) = capture_written(write).await;
    let out = out.map_err(st)?;
    match written.and_then(|w| w.json_of(&out)) {
        Some(json) => Ok(Response::new(proto::ObjectResponse {
            object: Some(proto::RawObject {
                api_version: out.api_version().to_string(),
                kind: out.kind().to_string(),
                json: Bytes::from(json),
            }),
        })),
        None => object_response(out.as_ref()),
    }
}

type Reply<T> = BoxFuture<Response<T>, Status>;
type Handler<Req, Resp> = fn(Arc<Inner>, Request<Req>) -> Reply<Resp>;

fn create(inner: Arc<Inner>, req: Request<proto::ObjectRequest>) -> Reply<proto::ObjectResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let obj = inner.decode(required(req.into_inner().object).map_err(st)?)?;
        written_response(client.create(obj)).await
    })
}

fn update(inner: Arc<Inner>, req: Request<proto::ObjectRequest>) -> Reply<proto::ObjectResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let obj = inner.decode(required(req.into_inner().object).map_err(st)?)?;
        written_response(client.update(obj)).await
    })
}

fn update_status(
    inner: Arc<Inner>,
    req: Request<proto::ObjectRequest>,
) -> Reply<proto::ObjectResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let obj = inner.decode(required(req.into_inner().object).map_err(st)?)?;
        written_response(client.update_status(obj)).await
    })
}

fn get(inner: Arc<Inner>, req: Request<proto::GetRequest>) -> Reply<proto::ObjectResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let r = req.into_inner();
        let out = client
            .get(&r.resource, r.namespace.as_deref(), &r.name)
            .await
            .map_err(st)?;
        object_response(out.as_ref())
    })
}

fn list(inner: Arc<Inner>, req: Request<proto::ListRequest>) -> Reply<proto::ListResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let r = req.into_inner();
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
        Ok(Response::new(proto::ListResponse {
            items,
            resource_version: list.resource_version,
            continue_token: list.continue_token,
            remaining_item_count: list.remaining_item_count,
        }))
    })
}

fn patch(inner: Arc<Inner>, req: Request<proto::PatchRequest>) -> Reply<proto::ObjectResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let r = req.into_inner();
        if r.patch.len() > inner.max_object_bytes {
            return Err(st(ApiError::TooLarge(format!(
                "patch of {} bytes exceeds the limit of {} bytes",
                r.patch.len(),
                inner.max_object_bytes
            ))));
        }
        let patch: serde_json::Value = serde_json::from_slice(&r.patch).map_err(|e| {
            st(ApiError::BadRequest(format!(
                "patch is not valid JSON: {e}"
            )))
        })?;
        written_response(client.patch(&r.resource, r.namespace.as_deref(), &r.name, &patch)).await
    })
}

fn delete(inner: Arc<Inner>, req: Request<proto::DeleteRequest>) -> Reply<proto::DeleteResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let r = req.into_inner();
        let params = delete_params(&r);
        let outcome = client
            .delete(&r.resource, r.namespace.as_deref(), &r.name, &params)
            .await
            .map_err(st)?;
        let (pending, obj) = match outcome {
            DeleteOutcome::Deleted(o) => (false, o),
            DeleteOutcome::Pending(o) => (true, o),
        };
        Ok(Response::new(proto::DeleteResponse {
            pending,
            object: Some(encode_object(obj.as_ref()).map_err(st)?),
        }))
    })
}

fn bind(inner: Arc<Inner>, req: Request<proto::BindRequest>) -> Reply<proto::ObjectResponse> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let r = req.into_inner();
        written_response(client.bind(&r.namespace, &r.pod, &r.node)).await
    })
}

fn watch(
    inner: Arc<Inner>,
    req: Request<proto::WatchRequest>,
) -> Reply<BoxStream<proto::WatchEvent>> {
    Box::pin(async move {
        let client = inner.client(&req)?;
        let r = req.into_inner();
        let params = watch_params(&r);
        let events = client
            .watch(&r.resource, r.namespace.as_deref(), &params)
            .await
            .map_err(st)?;
        // The first error ends the stream, with that error as its status.
        let stream = events
            .map(|item| item.and_then(|event| encode_event(&event)).map_err(st))
            .scan(false, |failed, item| {
                let out = if *failed { None } else { Some(item) };
                if let Some(Err(_)) = &out {
                    *failed = true;
                }
                futures::future::ready(out)
            });
        let stream: BoxStream<proto::WatchEvent> = Box::pin(stream);
        Ok(Response::new(stream))
    })
}

struct Unary<Req, Resp> {
    inner: Arc<Inner>,
    handler: Handler<Req, Resp>,
}

impl<Req, Resp> UnaryService<Req> for Unary<Req, Resp> {
    type Response = Resp;
    type Future = Reply<Resp>;

    fn call(&mut self, request: Request<Req>) -> Self::Future {
        (self.handler)(self.inner.clone(), request)
    }
}

struct Watch {
    inner: Arc<Inner>,
}

impl ServerStreamingService<proto::WatchRequest> for Watch {
    type Response = proto::WatchEvent;
    type ResponseStream = BoxStream<proto::WatchEvent>;
    type Future = Reply<Self::ResponseStream>;

    fn call(&mut self, request: Request<proto::WatchRequest>) -> Self::Future {
        watch(self.inner.clone(), request)
    }
}

/// The `ketch.v1.Api` gRPC service over a [`ClientProvider`]: a tower
/// service to mount in a tonic server, or served directly with
/// [`GrpcServer::serve`].
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

    fn grpc<Req, Resp>(&self) -> Grpc<ProstCodec<Resp, Req>>
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
    {
        Grpc::new(ProstCodec::default())
            .max_decoding_message_size(self.inner.max_message_bytes)
            .max_encoding_message_size(usize::MAX)
    }

    fn unary<Req, Resp, B>(
        &self,
        handler: Handler<Req, Resp>,
        req: http::Request<B>,
    ) -> BoxFuture<http::Response<tonic::body::Body>, Infallible>
    where
        Req: prost::Message + Default + Send + 'static,
        Resp: prost::Message + Send + 'static,
        B: tonic::codegen::Body + Send + 'static,
        B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    {
        let mut grpc = self.grpc::<Req, Resp>();
        let method = Unary {
            inner: self.inner.clone(),
            handler,
        };
        Box::pin(async move { Ok(grpc.unary(method, req).await) })
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
    /// Connections go straight to hyper's HTTP/2 server with this service,
    /// without the routing and middleware layers of a tonic `Server`; the
    /// `grpc-timeout` deadline of each call is enforced here as tonic would.
    pub async fn serve_with_listener(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GrpcError> {
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .initial_stream_window_size(WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .keep_alive_interval(KEEPALIVE_INTERVAL)
            .keep_alive_timeout(KEEPALIVE_TIMEOUT)
            // As a tonic server: no limit of concurrent calls (watches) per
            // connection, nor of streams reset for errors.
            .max_concurrent_streams(None)
            .max_local_error_reset_streams(None);
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
            let io = TokioIo::new(CoalescingIo::new(stream));
            let conn = builder.serve_connection(io, HyperService(self.clone()));
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut conn = std::pin::pin!(conn);
                let result = tokio::select! {
                    result = conn.as_mut() => result,
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "serving a connection failed");
                }
                drop(stop);
            });
        }
        // Stop accepting at once, then wait for the open connections.
        drop(listener);
        let _ = stop_tx.send(());
        drop(stop_rx);
        stop_tx.closed().await;
        Ok(())
    }

    /// Serves TLS connections of `listener` until `shutdown` completes.
    #[cfg(feature = "tls")]
    pub async fn serve_tls_with_listener(
        self,
        listener: tokio::net::TcpListener,
        tls: super::ServerTls,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), GrpcError> {
        let config = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem),
        );
        self.builder()
            .tls_config(config)
            .map_err(GrpcError::Transport)?
            .add_service(self)
            .serve_with_incoming_shutdown(coalescing_incoming(listener), shutdown)
            .await
            .map_err(GrpcError::Transport)
    }

    #[cfg(feature = "tls")]
    fn builder(&self) -> tonic::transport::Server {
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(KEEPALIVE_INTERVAL)
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .initial_stream_window_size(Some(WINDOW))
            .initial_connection_window_size(Some(CONNECTION_WINDOW))
    }
}

/// The accepted connections of `listener`, without Nagle's delay and with
/// their writes coalesced.
#[cfg(feature = "tls")]
fn coalescing_incoming(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<CoalescingIo<tokio::net::TcpStream>>> {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .map(|accepted| accepted.map(CoalescingIo::new))
}

impl NamedService for GrpcServer {
    const NAME: &'static str = proto::SERVICE;
}

impl<B> tonic::codegen::Service<http::Request<B>> for GrpcServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.route(req)
    }
}

impl GrpcServer {
    /// Answers one call by its path.
    fn route<B>(
        &self,
        req: http::Request<B>,
    ) -> BoxFuture<http::Response<tonic::body::Body>, Infallible>
    where
        B: tonic::codegen::Body + Send + 'static,
        B::Error: Into<tonic::codegen::StdError> + Send + 'static,
    {
        match req.uri().path() {
            path::CREATE => self.unary(create, req),
            path::GET => self.unary(get, req),
            path::LIST => self.unary(list, req),
            path::UPDATE => self.unary(update, req),
            path::UPDATE_STATUS => self.unary(update_status, req),
            path::PATCH => self.unary(patch, req),
            path::DELETE => self.unary(delete, req),
            path::BIND => self.unary(bind, req),
            path::WATCH => {
                let mut grpc = self.grpc::<proto::WatchRequest, proto::WatchEvent>();
                let method = Watch {
                    inner: self.inner.clone(),
                };
                Box::pin(async move { Ok(grpc.server_streaming(method, req).await) })
            }
            other => {
                let status = Status::unimplemented(format!("no method {other:?}"));
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// A [`GrpcServer`] as hyper serves it: each call within the deadline its
/// `grpc-timeout` metadata asks for.
#[derive(Clone)]
struct HyperService(GrpcServer);

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for HyperService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let Some(deadline) = grpc_timeout(req.headers()) else {
            return self.0.route(req);
        };
        let call = self.0.route(req);
        Box::pin(async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(response) => response,
                // What tonic's server answers to a call past its deadline.
                Err(_) => Ok(Status::cancelled(tonic::TimeoutExpired(()).to_string()).into_http()),
            }
        })
    }
}

/// The deadline of a call's `grpc-timeout` header; `None` when absent or
/// malformed.
fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    super::wire::parse_timeout(headers.get("grpc-timeout")?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    use ketch_core::api::Pod;
    use ketch_core::{
        ArcObject, DeleteParams, ListParams, ObjectEventStream, ObjectList, ObjectMeta, WatchParams,
    };

    use crate::grpc::RemoteClient;

    #[test]
    fn grpc_timeouts_parse_as_tonic_reads_them() {
        let parse = |v: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-timeout", v.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(parse("3H"), Some(Duration::from_secs(3 * 3600)));
        assert_eq!(parse("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse("30S"), Some(Duration::from_secs(30)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("30000000u"), Some(Duration::from_secs(30)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "123456789S", "10x", "-1S", "1.5S", " 1S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(grpc_timeout(&http::HeaderMap::new()), None);
    }

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
}
