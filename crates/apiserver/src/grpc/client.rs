//! The client side: [`RemoteClient`] implements [`Client`] over gRPC, so
//! components run unchanged against a remote API server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use ketch_core::runtime::Backoff;
use ketch_core::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object, ObjectEvent,
    ObjectEventStream, ObjectList, Scheme, WatchParams,
};
use tonic::codec::Streaming;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use tonic_prost::ProstCodec;

use super::GrpcError;
use super::coalesce::CoalescingConnector;
use super::convert::{
    decode_event, decode_object, delete_request, encode_object, error_from_status, list_request,
    required, watch_request,
};
use super::proto::{self, path};

/// Default deadline of a unary call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default limit of one received message (a list page): 64 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// How many times in a row a broken watch is reopened before it fails.
const MAX_WATCH_RESUMES: u32 = 10;

/// Builds a [`RemoteClient`].
///
/// ```
/// use std::time::Duration;
/// use ketch_apiserver::grpc::RemoteClient;
/// let builder = RemoteClient::builder("http://127.0.0.1:6443")
///     .token("s3cret")
///     .timeout(Duration::from_secs(5))
///     .connections(4);
/// ```
#[derive(Clone, Debug)]
pub struct RemoteClientBuilder {
    endpoint: String,
    token: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
    connections: usize,
    scheme: Arc<Scheme>,
    max_message_bytes: usize,
    watch_backoff: Backoff,
    #[cfg(feature = "tls")]
    tls: Option<super::ClientTls>,
}

impl RemoteClientBuilder {
    /// Sends `authorization: Bearer <token>` with every call.
    ///
    /// ```
    /// let b = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443").token("t");
    /// ```
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// Deadline of each unary call (sent to the server as `grpc-timeout`
    /// and enforced locally); default 30 s. Watches have no deadline.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443").timeout(Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Deadline of establishing a connection; default 5 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let b = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443").connect_timeout(Duration::from_secs(1));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Spreads calls over `n` HTTP/2 connections (default 1).
    ///
    /// ```
    /// let b = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443").connections(8);
    /// ```
    pub fn connections(mut self, n: usize) -> Self {
        self.connections = n.max(1);
        self
    }

    /// The scheme that decodes received objects (default: the built-in
    /// kinds). Kinds it does not know arrive as `DynamicObject`s.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// let b = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443")
    ///     .scheme(Arc::new(ketch_core::Scheme::with_builtins()));
    /// ```
    pub fn scheme(mut self, scheme: Arc<Scheme>) -> Self {
        self.scheme = scheme;
        self
    }

    /// The largest message accepted from the server; default 64 MiB.
    ///
    /// ```
    /// let b = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443").max_message_bytes(16 << 20);
    /// ```
    pub fn max_message_bytes(mut self, limit: usize) -> Self {
        self.max_message_bytes = limit;
        self
    }

    /// Delay between attempts to reopen a broken watch.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use ketch_core::runtime::Backoff;
    /// let b = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443")
    ///     .watch_backoff(Backoff::new(Duration::from_millis(10), Duration::from_secs(1)));
    /// ```
    pub fn watch_backoff(mut self, backoff: Backoff) -> Self {
        self.watch_backoff = backoff;
        self
    }

    /// Connects with TLS (an `https://` endpoint).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    fn endpoint(&self) -> Result<Endpoint, GrpcError> {
        let endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| GrpcError::InvalidEndpoint(format!("{}: {e}", self.endpoint)))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true)
            .initial_stream_window_size(super::server::WINDOW)
            .initial_connection_window_size(super::server::CONNECTION_WINDOW);
        #[cfg(feature = "tls")]
        let endpoint = match &self.tls {
            Some(tls) => {
                let mut config = tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(&tls.ca_pem));
                if let Some(domain) = &tls.domain {
                    config = config.domain_name(domain.clone());
                }
                endpoint.tls_config(config).map_err(GrpcError::Transport)?
            }
            None => endpoint,
        };
        Ok(endpoint)
    }

    fn finish(self, channels: Vec<Channel>) -> Result<RemoteClient, GrpcError> {
        let token = match &self.token {
            Some(t) => Some(
                MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| GrpcError::InvalidToken)?,
            ),
            None => None,
        };
        Ok(RemoteClient {
            inner: Arc::new(Inner {
                channels,
                next: AtomicUsize::new(0),
                token,
                timeout: self.timeout,
                scheme: self.scheme,
                max_message_bytes: self.max_message_bytes,
                watch_backoff: self.watch_backoff,
            }),
        })
    }

    /// A client that connects on first use and reconnects by itself after a
    /// broken connection. Needs a tokio runtime.
    pub fn connect_lazy(self) -> Result<RemoteClient, GrpcError> {
        let endpoint = self.endpoint()?;
        let channels = (0..self.connections)
            .map(|_| endpoint.connect_with_connector_lazy(CoalescingConnector))
            .collect();
        self.finish(channels)
    }

    /// A client whose connections are established now; fails when the
    /// server cannot be reached.
    pub async fn connect(self) -> Result<RemoteClient, GrpcError> {
        let endpoint = self.endpoint()?;
        let mut channels = Vec::with_capacity(self.connections);
        for _ in 0..self.connections {
            channels.push(
                endpoint
                    .connect_with_connector(CoalescingConnector)
                    .await
                    .map_err(GrpcError::Transport)?,
            );
        }
        self.finish(channels)
    }
}

struct Inner {
    channels: Vec<Channel>,
    next: AtomicUsize,
    token: Option<MetadataValue<Ascii>>,
    timeout: Duration,
    scheme: Arc<Scheme>,
    max_message_bytes: usize,
    watch_backoff: Backoff,
}

/// A [`Client`] talking to a [`GrpcServer`](super::GrpcServer): every verb
/// is one gRPC call, watches are server streams that resume from their last
/// resource version when the connection breaks. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use ketch_core::{Api, Client, api::Pod};
/// use ketch_apiserver::grpc::RemoteClient;
/// let client: Arc<dyn Client> = Arc::new(
///     RemoteClient::builder("http://127.0.0.1:6443").token("s3cret").connect().await?,
/// );
/// let pods: Api<Pod> = Api::namespaced(client, "default");
/// let web = pods.get("web").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RemoteClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemoteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteClient")
            .field("connections", &self.inner.channels.len())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteClient {
    /// Starts building a client of the server at `endpoint`
    /// (`http://host:port`, or `https://` with TLS).
    pub fn builder(endpoint: &str) -> RemoteClientBuilder {
        RemoteClientBuilder {
            endpoint: endpoint.to_string(),
            token: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: Duration::from_secs(5),
            connections: 1,
            scheme: Arc::new(Scheme::with_builtins()),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            watch_backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2)),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    fn grpc(&self) -> tonic::client::Grpc<Channel> {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.channels.len();
        tonic::client::Grpc::new(self.inner.channels[i].clone())
            .max_decoding_message_size(self.inner.max_message_bytes)
    }

    fn request<T>(&self, message: T, deadline: bool) -> Request<T> {
        let mut request = Request::new(message);
        if deadline {
            request.set_timeout(self.inner.timeout);
        }
        if let Some(token) = &self.inner.token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        request
    }

    async fn unary<Req, Resp>(&self, method: &'static str, message: Req) -> Result<Resp, ApiError>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let call = async {
            let mut grpc = self.grpc();
            grpc.ready()
                .await
                .map_err(|e| ApiError::Unavailable(format!("connecting: {e}")))?;
            grpc.unary(
                self.request(message, true),
                PathAndQuery::from_static(method),
                ProstCodec::<Req, Resp>::default(),
            )
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| error_from_status(&s))
        };
        // The server enforces the deadline too; this guards against a peer
        // that stopped answering altogether.
        match tokio::time::timeout(self.inner.timeout + Duration::from_millis(250), call).await {
            Ok(result) => result,
            Err(_) => Err(ApiError::Timeout(format!(
                "{method} did not finish within {:?}",
                self.inner.timeout
            ))),
        }
    }

    fn decode(&self, raw: Option<proto::RawObject>) -> Result<ArcObject, ApiError> {
        let raw = required(raw).map_err(|e| ApiError::Internal(format!("server reply: {e}")))?;
        decode_object(&self.inner.scheme, raw, true, self.inner.max_message_bytes)
            .map(ArcObject::from)
            .map_err(|e| ApiError::Internal(format!("decoding server reply: {e}")))
    }

    async fn object_call<Req>(
        &self,
        method: &'static str,
        message: Req,
    ) -> Result<ArcObject, ApiError>
    where
        Req: prost::Message + Send + Sync + 'static,
    {
        let reply: proto::ObjectResponse = self.unary(method, message).await?;
        self.decode(reply.object)
    }

    async fn open_watch(
        &self,
        request: proto::WatchRequest,
    ) -> Result<Streaming<proto::WatchEvent>, Status> {
        let mut grpc = self.grpc();
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("connecting: {e}")))?;
        grpc.server_streaming(
            self.request(request, false),
            PathAndQuery::from_static(path::WATCH),
            ProstCodec::<proto::WatchRequest, proto::WatchEvent>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
    }
}

/// True when a failed watch is worth reopening: the server said it is
/// unavailable, or the transport broke (no ketch error in the status).
fn resumable(status: &Status) -> bool {
    matches!(error_from_status(status), ApiError::Unavailable(_))
}

struct WatchState {
    client: RemoteClient,
    request: proto::WatchRequest,
    stream: Option<Streaming<proto::WatchEvent>>,
    backoff: Backoff,
    failures: u32,
    done: bool,
}

impl WatchState {
    fn advance(&mut self, event: &ObjectEvent) {
        let rv = match event {
            ObjectEvent::Added(o) | ObjectEvent::Modified(o) | ObjectEvent::Deleted(o) => {
                o.metadata().resource_version.clone()
            }
            ObjectEvent::Bookmark { resource_version } => Some(resource_version.clone()),
        };
        if let Some(rv) = rv.filter(|rv| !rv.is_empty()) {
            let newer = match (
                self.request
                    .resource_version
                    .as_deref()
                    .map(str::parse::<u64>),
                rv.parse::<u64>(),
            ) {
                (Some(Ok(cur)), Ok(new)) => new > cur,
                _ => true,
            };
            if newer {
                self.request.resource_version = Some(rv);
            }
        }
    }

    /// Handles a failed watch: `None` to go on (reopen), or the final error.
    async fn on_failure(&mut self, status: Status) -> Option<ApiError> {
        self.stream = None;
        if !resumable(&status) || self.failures >= MAX_WATCH_RESUMES {
            return Some(error_from_status(&status));
        }
        self.failures += 1;
        tracing::debug!(
            resource = %self.request.resource,
            resource_version = ?self.request.resource_version,
            error = %status.message(),
            "watch broke; resuming"
        );
        tokio::time::sleep(self.backoff.next_delay()).await;
        None
    }

    async fn next(&mut self) -> Option<Result<ObjectEvent, ApiError>> {
        if self.done {
            return None;
        }
        loop {
            let stream = match &mut self.stream {
                Some(stream) => stream,
                None => match self.client.open_watch(self.request.clone()).await {
                    Ok(stream) => self.stream.insert(stream),
                    Err(status) => match self.on_failure(status).await {
                        None => continue,
                        Some(err) => {
                            self.done = true;
                            return Some(Err(err));
                        }
                    },
                },
            };
            match stream.message().await {
                Ok(Some(message)) => {
                    self.failures = 0;
                    self.backoff.reset();
                    let max = self.client.inner.max_message_bytes;
                    return Some(
                        match decode_event(&self.client.inner.scheme, message, max) {
                            Ok(event) => {
                                self.advance(&event);
                                Ok(event)
                            }
                            Err(e) => {
                                self.done = true;
                                Err(ApiError::Internal(format!("decoding watch event: {e}")))
                            }
                        },
                    );
                }
                Ok(None) => return None,
                Err(status) => {
                    if let Some(err) = self.on_failure(status).await {
                        self.done = true;
                        return Some(Err(err));
                    }
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Client for RemoteClient {
    async fn create(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        let message = proto::ObjectRequest {
            object: Some(encode_object(object.as_ref())?),
        };
        self.object_call(path::CREATE, message).await
    }

    async fn get(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<ArcObject, ApiError> {
        let message = proto::GetRequest {
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        };
        self.object_call(path::GET, message).await
    }

    async fn list(
        &self,
        resource: &str,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList, ApiError> {
        let reply: proto::ListResponse = self
            .unary(path::LIST, list_request(resource, namespace, params))
            .await?;
        let items = reply
            .items
            .into_iter()
            .map(|raw| self.decode(Some(raw)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ObjectList {
            items,
            resource_version: reply.resource_version,
            continue_token: reply.continue_token,
            remaining_item_count: reply.remaining_item_count,
        })
    }

    async fn update(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        let message = proto::ObjectRequest {
            object: Some(encode_object(object.as_ref())?),
        };
        self.object_call(path::UPDATE, message).await
    }

    async fn update_status(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        let message = proto::ObjectRequest {
            object: Some(encode_object(object.as_ref())?),
        };
        self.object_call(path::UPDATE_STATUS, message).await
    }

    async fn patch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        let bytes = serde_json::to_vec(patch)
            .map_err(|e| ApiError::BadRequest(format!("encoding patch: {e}")))?;
        let message = proto::PatchRequest {
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            patch: bytes.into(),
        };
        self.object_call(path::PATCH, message).await
    }

    async fn delete(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        let reply: proto::DeleteResponse = self
            .unary(
                path::DELETE,
                delete_request(resource, namespace, name, params),
            )
            .await?;
        let obj = self.decode(reply.object)?;
        Ok(if reply.pending {
            DeleteOutcome::Pending(obj)
        } else {
            DeleteOutcome::Deleted(obj)
        })
    }

    async fn watch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        params: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        let request = watch_request(resource, namespace, params);
        let opened = tokio::time::timeout(self.inner.timeout, self.open_watch(request.clone()))
            .await
            .map_err(|_| {
                ApiError::Timeout(format!(
                    "opening the watch took longer than {:?}",
                    self.inner.timeout
                ))
            })?
            .map_err(|s| error_from_status(&s))?;
        let state = WatchState {
            client: self.clone(),
            request,
            stream: Some(opened),
            backoff: self.inner.watch_backoff.clone(),
            failures: 0,
            done: false,
        };
        Ok(futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
        .boxed())
    }

    async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<ArcObject, ApiError> {
        let message = proto::BindRequest {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            node: node.to_string(),
        };
        self.object_call(path::BIND, message).await
    }
}
