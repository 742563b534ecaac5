//! The client side: [`RemoteClient`] implements [`Client`] over gRPC, so
//! components run unchanged against a remote API server.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ketch_core::runtime::Backoff;
use ketch_core::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object, ObjectEvent,
    ObjectEventStream, ObjectList, Scheme, WatchParams,
};
use prost::Message as _;
use tonic::Status;

use super::GrpcError;
use super::channel::{Channel, Reply, RequestHeaders, Target};
use super::convert::{
    decode_event, decode_object, delete_request, encode_object, error_from_status, list_request,
    required, watch_request,
};
use super::proto::{self, path};
use super::wire;

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

    /// Connects with TLS (an `https://` endpoint): the server's certificate
    /// must chain to `tls.ca_pem` and name `tls.domain` (or the endpoint's
    /// host), and the server must agree to HTTP/2 (ALPN `h2`).
    ///
    /// ```
    /// # fn demo(ca_pem: Vec<u8>) {
    /// use ketch_apiserver::grpc::{ClientTls, RemoteClient};
    /// let b = RemoteClient::builder("https://api.example.com:6443")
    ///     .tls(ClientTls { ca_pem, domain: None });
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: super::ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    fn build(self) -> Result<RemoteClient, GrpcError> {
        let target = Target::new(
            &self.endpoint,
            self.connect_timeout,
            #[cfg(feature = "tls")]
            self.tls.as_ref(),
        )?;
        let headers = RequestHeaders::new(self.token.as_deref(), self.timeout)?;
        Ok(RemoteClient {
            inner: Arc::new(Inner {
                channel: Channel::new(target, self.connections, headers, self.max_message_bytes),
                timeout: self.timeout,
                scheme: self.scheme,
                max_message_bytes: self.max_message_bytes,
                watch_backoff: self.watch_backoff,
            }),
        })
    }

    /// A client that connects on first use and reconnects by itself after a
    /// broken connection. Needs a tokio runtime when used.
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), ketch_apiserver::grpc::GrpcError> {
    /// let client = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443").connect_lazy()?;
    /// # Ok(()) }
    /// ```
    pub fn connect_lazy(self) -> Result<RemoteClient, GrpcError> {
        self.build()
    }

    /// A client whose connections are established now; fails when the
    /// server cannot be reached. Broken connections are re-established on
    /// later calls.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), ketch_apiserver::grpc::GrpcError> {
    /// let client = ketch_apiserver::grpc::RemoteClient::builder("http://127.0.0.1:6443").connect().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<RemoteClient, GrpcError> {
        let client = self.build()?;
        client.inner.channel.connect_all().await?;
        Ok(client)
    }
}

struct Inner {
    channel: Channel,
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
            .field("connections", &self.inner.channel.connections())
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

    async fn unary<Req, Resp>(&self, method: &'static str, message: Req) -> Result<Resp, ApiError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let call = async {
            let reply = self
                .inner
                .channel
                .unary(method, wire::encode_message(&message))
                .await
                .map_err(|s| error_from_status(&s))?;
            Resp::decode(reply)
                .map_err(|e| ApiError::Internal(format!("decoding the reply to {method}: {e}")))
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
        decode_object(&self.inner.scheme, raw, self.inner.max_message_bytes)
            .map_err(|e| ApiError::Internal(format!("decoding server reply: {e}")))
    }

    async fn object_call<Req>(
        &self,
        method: &'static str,
        message: Req,
    ) -> Result<ArcObject, ApiError>
    where
        Req: prost::Message,
    {
        let reply: proto::ObjectResponse = self.unary(method, message).await?;
        self.decode(reply.object)
    }

    async fn open_watch(&self, request: proto::WatchRequest) -> Result<WatchBody, Status> {
        let reply = self
            .inner
            .channel
            .call(path::WATCH, wire::encode_message(&request), false)
            .await?;
        Ok(WatchBody { reply })
    }
}

/// The server stream of an open watch; dropping it resets the HTTP/2
/// stream, so the server stops watching.
struct WatchBody {
    reply: Reply,
}

impl WatchBody {
    /// The next event, `None` when the server ended the watch.
    async fn message(&mut self) -> Result<Option<proto::WatchEvent>, Status> {
        match self.reply.message().await? {
            Some(bytes) => proto::WatchEvent::decode(bytes)
                .map(Some)
                .map_err(|e| Status::internal(format!("decoding a watch event: {e}"))),
            None => Ok(None),
        }
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
    stream: Option<WatchBody>,
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

#[cfg(test)]
mod tests {
    use super::*;

    use bytes::{BufMut, Bytes, BytesMut};
    use h2::server::SendResponse;
    use ketch_core::ObjectMeta;
    use ketch_core::api::Pod;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tokio::task::{JoinHandle, JoinSet};

    /// How the raw HTTP/2 server below answers every call.
    #[derive(Clone, Copy, Debug)]
    enum Answer {
        /// A correct reply with a pod.
        Pod,
        /// This HTTP status and nothing else.
        HttpStatus(u16),
        /// 200 with an HTML body.
        Html,
        /// A message, then the end of the body without trailers.
        NoGrpcStatus,
        /// A message of 4 KiB.
        Oversized,
        /// Half of a message, then grpc-status 0.
        Truncated,
        /// A message of bytes that are not the reply's protobuf.
        NotProtobuf,
        /// grpc-status-details-bin that is not base64, in a trailers-only
        /// response.
        BadDetails,
        /// Headers, then nothing until the client resets the stream, whose
        /// reason is reported.
        Hang,
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta::named("default", "p"),
            ..Pod::default()
        }
    }

    fn frame(payload: &[u8]) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_u8(0);
        buf.put_u32(payload.len() as u32);
        buf.put_slice(payload);
        buf.freeze()
    }

    fn grpc_headers(status: u16, content_type: &str) -> http::Response<()> {
        http::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(())
            .unwrap()
    }

    fn trailers(code: &str) -> http::HeaderMap {
        let mut t = http::HeaderMap::new();
        t.insert("grpc-status", code.parse().unwrap());
        t
    }

    async fn answer(
        mut respond: SendResponse<Bytes>,
        how: Answer,
        resets: mpsc::UnboundedSender<h2::Reason>,
    ) -> Result<(), h2::Error> {
        match how {
            Answer::Pod => {
                let reply = proto::ObjectResponse {
                    object: Some(encode_object(&pod()).unwrap()),
                };
                let mut s = respond.send_response(grpc_headers(200, "application/grpc"), false)?;
                s.send_data(wire::encode_message(&reply), false)?;
                s.send_trailers(trailers("0"))?;
            }
            Answer::HttpStatus(code) => {
                let response = http::Response::builder().status(code).body(()).unwrap();
                respond.send_response(response, true)?;
            }
            Answer::Html => {
                let mut s = respond.send_response(grpc_headers(200, "text/html"), false)?;
                s.send_data(Bytes::from_static(b"<html>busy</html>"), true)?;
            }
            Answer::NoGrpcStatus => {
                let reply = proto::ObjectResponse::default();
                let mut s = respond.send_response(grpc_headers(200, "application/grpc"), false)?;
                s.send_data(wire::encode_message(&reply), true)?;
            }
            Answer::Oversized => {
                let mut s = respond.send_response(grpc_headers(200, "application/grpc"), false)?;
                s.send_data(frame(&[7; 4096]), false)?;
                s.send_trailers(trailers("0"))?;
            }
            Answer::Truncated => {
                let whole = frame(&[7; 100]);
                let mut s = respond.send_response(grpc_headers(200, "application/grpc"), false)?;
                s.send_data(whole.slice(..50), false)?;
                s.send_trailers(trailers("0"))?;
            }
            Answer::NotProtobuf => {
                let mut s = respond.send_response(grpc_headers(200, "application/grpc"), false)?;
                s.send_data(frame(&[0xff; 16]), false)?;
                s.send_trailers(trailers("0"))?;
            }
            Answer::BadDetails => {
                let mut response = grpc_headers(200, "application/grpc");
                let headers = response.headers_mut();
                headers.insert("grpc-status", "5".parse().unwrap());
                headers.insert("grpc-status-details-bin", "*not base64*".parse().unwrap());
                respond.send_response(response, true)?;
            }
            Answer::Hang => {
                let mut s = respond.send_response(grpc_headers(200, "application/grpc"), false)?;
                let reason = std::future::poll_fn(|cx| s.poll_reset(cx)).await?;
                let _ = resets.send(reason);
            }
        }
        Ok(())
    }

    /// A raw HTTP/2 server answering every call as `how` says; aborting
    /// the returned task closes its listener and every connection.
    fn serve_raw(
        listener: TcpListener,
        how: Answer,
    ) -> (JoinHandle<()>, mpsc::UnboundedReceiver<h2::Reason>) {
        let (resets_tx, resets) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let resets_tx = resets_tx.clone();
                connections.spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(socket).await else {
                        return;
                    };
                    let mut calls = JoinSet::new();
                    while let Some(Ok((_request, respond))) = conn.accept().await {
                        calls.spawn(answer(respond, how, resets_tx.clone()));
                    }
                });
            }
        });
        (task, resets)
    }

    async fn raw_server(
        how: Answer,
    ) -> (String, JoinHandle<()>, mpsc::UnboundedReceiver<h2::Reason>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (task, resets) = serve_raw(listener, how);
        (url, task, resets)
    }

    #[tokio::test]
    async fn garbage_replies_give_clear_errors() {
        let cases: [(Answer, &str); 10] = [
            (Answer::HttpStatus(503), "HTTP status 503"),
            (Answer::HttpStatus(404), "Unimplemented"),
            (Answer::HttpStatus(401), "HTTP status 401"),
            (Answer::Html, "content-type \"text/html\""),
            (Answer::NoGrpcStatus, "without a grpc-status"),
            (Answer::Oversized, "4096 bytes is over the limit of 1024"),
            (Answer::Truncated, "ended inside a message"),
            (
                Answer::NotProtobuf,
                "decoding the reply to /ketch.v1.Api/Get",
            ),
            (Answer::BadDetails, "grpc-status-details-bin is not base64"),
            (Answer::Pod, ""),
        ];
        for (how, needle) in cases {
            let (url, server, _) = raw_server(how).await;
            let client = RemoteClient::builder(&url)
                .max_message_bytes(1024)
                .timeout(Duration::from_secs(5))
                .connect()
                .await
                .unwrap();
            let result = client.get("pods", Some("default"), "p").await;
            match (how, result) {
                (Answer::Pod, Ok(obj)) => assert_eq!(obj.metadata().name(), "p"),
                (_, Err(err)) => {
                    assert!(err.to_string().contains(needle), "{how:?}: {err}");
                    if let Answer::Oversized = how {
                        assert!(matches!(err, ApiError::TooLarge(_)), "{err:?}");
                    }
                    if let Answer::HttpStatus(401) = how {
                        assert!(matches!(err, ApiError::Unauthorized(_)), "{err:?}");
                    }
                }
                (how, Ok(obj)) => panic!("{how:?} succeeded with {obj:?}"),
            }
            server.abort();
        }
    }

    #[tokio::test]
    async fn a_dropped_watch_resets_its_stream() {
        let (url, server, mut resets) = raw_server(Answer::Hang).await;
        let client = RemoteClient::builder(&url).connect().await.unwrap();
        let watch = client
            .watch("pods", Some("default"), &WatchParams::default())
            .await
            .unwrap();
        drop(watch);
        let reason = tokio::time::timeout(Duration::from_secs(5), resets.recv())
            .await
            .expect("the server saw the reset")
            .unwrap();
        assert_eq!(reason, h2::Reason::CANCEL);
        server.abort();
    }

    #[tokio::test]
    async fn calls_reconnect_after_the_server_restarts_on_the_same_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (server, _) = serve_raw(listener, Answer::Pod);
        let client = RemoteClient::builder(&format!("http://{addr}"))
            .connections(2)
            .connect()
            .await
            .unwrap();
        for _ in 0..2 {
            client.get("pods", Some("default"), "p").await.unwrap();
        }
        // A call in flight when the server goes away fails as unavailable.
        let (hang_listener, hang_addr) = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = l.local_addr().unwrap();
            (l, a)
        };
        let (hang_server, _) = serve_raw(hang_listener, Answer::Hang);
        let hanging = RemoteClient::builder(&format!("http://{hang_addr}"))
            .connect()
            .await
            .unwrap();
        let mut in_flight = hanging
            .inner
            .channel
            .call(path::WATCH, Bytes::new(), false)
            .await
            .unwrap();
        hang_server.abort();
        let status = in_flight.message().await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

        server.abort();
        let _ = server.await;
        let err = loop {
            // Until the client saw its connections close, a call may still
            // go out on them and fail as well.
            match client.get("pods", Some("default"), "p").await {
                Err(err) if err.to_string().contains("connecting to") => break err,
                Err(err) => assert!(matches!(err, ApiError::Unavailable(_)), "{err:?}"),
                Ok(obj) => panic!("the server is down, yet {obj:?}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(matches!(err, ApiError::Unavailable(_)), "{err:?}");

        let listener = TcpListener::bind(addr).await.unwrap();
        let (server, _) = serve_raw(listener, Answer::Pod);
        for _ in 0..4 {
            let obj = client.get("pods", Some("default"), "p").await.unwrap();
            assert_eq!(obj.metadata().name(), "p");
        }
        server.abort();
    }

    #[tokio::test]
    async fn connecting_eagerly_to_nothing_fails_and_names_the_endpoint() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let err = RemoteClient::builder(&url).connect().await.unwrap_err();
        assert!(matches!(err, GrpcError::Connect { .. }), "{err:?}");
        assert!(err.to_string().contains(&url), "{err}");
        let lazy = RemoteClient::builder(&url).connect_lazy().unwrap();
        let err = lazy.get("pods", None, "p").await.unwrap_err();
        assert!(matches!(err, ApiError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().contains("connecting to"), "{err}");
    }
}
