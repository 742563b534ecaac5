//! One HTTP/2 connection of gRPC calls, served with the `h2` crate: each
//! call is routed by its `:path`, its request message read with
//! [`MessageDecoder`] and answered with a framed message and
//! `grpc-status: 0` trailers, or with a trailers-only error response.
//! `Watch` answers with a stream of messages sent as the peer's flow-control
//! window allows; it ends when the store's watch ends, with its first error,
//! or when the client resets the stream or goes away.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures::stream::StreamExt;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tonic::{Code, Status};

use super::proto::path;
use super::server::{CONNECTION_WINDOW, Inner, WINDOW, WatchEvents};
use super::wire::{self, Keepalive, MessageDecoder, is_grpc_content_type};

/// Largest frame the server accepts: HTTP/2's initial value.
const MAX_FRAME_BYTES: u32 = 16 * 1024;
/// Largest header block of a request.
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;
/// Bytes one stream may queue for sending beyond what flow control allows.
const MAX_SEND_BUFFER_BYTES: usize = 400 * 1024;

/// The HTTP/2 settings of every connection: fixed, large windows (so lists
/// stream at full speed without the pings adaptive windows cost per call),
/// no limit of concurrent calls (watches) per connection nor of streams
/// reset for errors.
fn settings() -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .initial_window_size(WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME_BYTES)
        .max_header_list_size(MAX_HEADER_LIST_BYTES)
        .max_send_buffer_size(MAX_SEND_BUFFER_BYTES)
        .max_local_error_reset_streams(None);
    builder
}

/// Serves the calls of one connection until the client closes it, it
/// fails, or `stop` changes; then it stops taking calls (GOAWAY) and
/// returns once the calls in flight are answered.
///
/// Each call runs on a task of its own. Running the calls inside this task
/// instead (polled beside the connection) executed as many instructions
/// per create on the gRPC bench, but cost about 20% more CPU time per
/// create and 30% of the throughput was lost: every call of a connection then
/// shares one thread while the other workers spin looking for work.
pub(super) async fn serve_connection<IO>(inner: Arc<Inner>, io: IO, mut stop: watch::Receiver<()>)
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut conn = tokio::select! {
        handshake = settings().handshake::<_, Bytes>(io) => match handshake {
            Ok(conn) => conn,
            Err(e) => {
                tracing::debug!(error = %e, "HTTP/2 handshake failed");
                return;
            }
        },
        _ = stop.changed() => return,
    };
    let mut keepalive = Keepalive::new(conn.ping_pong());
    let mut stopping = pin!(stop.changed());
    let mut stopped = false;
    let served = poll_fn(|cx| {
        loop {
            if !stopped && stopping.as_mut().poll(cx).is_ready() {
                stopped = true;
                conn.graceful_shutdown();
            }
            if keepalive.poll_expired(cx) {
                return Poll::Ready(Err("a keepalive ping went unanswered".to_string()));
            }
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    // Boxed: the call's state (about 2 KB) is then written
                    // once, where the runtime would move it into its task
                    // and out again.
                    tokio::spawn(Box::pin(call(inner.clone(), request, respond)));
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e.to_string())),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    })
    .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "serving a connection failed");
    }
}

/// What a call answers.
enum Reply {
    /// One response message, framed.
    Message(Bytes),
    /// A stream of response messages.
    Watch(WatchEvents),
    /// A refusal with an HTTP status of its own (not a gRPC request).
    Refused(StatusCode, Status),
}

/// Answers one call; a call the client resets is dropped at once.
async fn call(inner: Arc<Inner>, request: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let (parts, mut body) = request.into_parts();
    let reply = {
        let mut answer = pin!(answer(&inner, &parts, &mut body));
        poll_fn(|cx| {
            if respond.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            answer.as_mut().poll(cx).map(Some)
        })
        .await
    };
    let sent = match reply {
        None => return,
        Some(Ok(Reply::Message(message))) => send_message(&mut respond, message),
        Some(Ok(Reply::Watch(events))) => send_watch(&mut respond, events).await,
        Some(Ok(Reply::Refused(http, status))) => send_status(&mut respond, http, &status),
        Some(Err(status)) => send_status(&mut respond, StatusCode::OK, &status),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, path = parts.uri.path(), "answering a call failed");
    }
}

/// Checks that the request is a gRPC call, then answers it within its
/// `grpc-timeout`.
async fn answer(
    inner: &Inner,
    parts: &http::request::Parts,
    body: &mut RecvStream,
) -> Result<Reply, Status> {
    if parts.method != Method::POST {
        return Ok(Reply::Refused(
            StatusCode::METHOD_NOT_ALLOWED,
            Status::internal(format!(
                "gRPC calls are POST requests, not {}",
                parts.method
            )),
        ));
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE);
    if !content_type.is_some_and(|v| is_grpc_content_type(v.as_bytes())) {
        return Ok(Reply::Refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Status::invalid_argument(format!(
                "content-type {content_type:?} is not {}",
                wire::CONTENT_TYPE
            )),
        ));
    }
    let deadline = match parts.headers.get("grpc-timeout") {
        None => None,
        Some(v) => Some(wire::parse_timeout(v.as_bytes()).ok_or_else(|| {
            Status::internal(format!(
                "malformed grpc-timeout header {v:?} (want up to eight digits and a unit of H, M, S, m, u, n)"
            ))
        })?),
    };
    let route = route(inner, parts, body);
    match deadline {
        None => route.await,
        Some(deadline) => tokio::time::timeout(deadline, route)
            .await
            .unwrap_or_else(|_| Err(Status::cancelled("Timeout expired"))),
    }
}

/// Reads the request message of the method at `parts.uri`'s path and
/// answers it.
async fn route(
    inner: &Inner,
    parts: &http::request::Parts,
    body: &mut RecvStream,
) -> Result<Reply, Status> {
    let headers = &parts.headers;
    let limit = inner.max_message_bytes;
    let message = match parts.uri.path() {
        path::CREATE => encode(inner.create(headers, read_one(body, limit).await?).await),
        path::GET => encode(inner.get(headers, read_one(body, limit).await?).await),
        path::LIST => encode(inner.list(headers, read_one(body, limit).await?).await),
        path::UPDATE => encode(inner.update(headers, read_one(body, limit).await?).await),
        path::UPDATE_STATUS => encode(
            inner
                .update_status(headers, read_one(body, limit).await?)
                .await,
        ),
        path::PATCH => encode(inner.patch(headers, read_one(body, limit).await?).await),
        path::DELETE => encode(inner.delete(headers, read_one(body, limit).await?).await),
        path::BIND => encode(inner.bind(headers, read_one(body, limit).await?).await),
        path::WATCH => {
            let events = inner.watch(headers, read_one(body, limit).await?).await?;
            return Ok(Reply::Watch(events));
        }
        other => Err(Status::unimplemented(format!("no method {other:?}"))),
    };
    message.map(Reply::Message)
}

fn encode<M: prost::Message>(response: Result<M, Status>) -> Result<Bytes, Status> {
    response.map(|m| wire::encode_message(&m))
}

/// Reads the whole request body, which must hold exactly one message of at
/// most `limit` bytes, releasing flow-control capacity as it goes.
async fn read_one<M: prost::Message + Default>(
    body: &mut RecvStream,
    limit: usize,
) -> Result<M, Status> {
    let mut decoder = MessageDecoder::new(limit);
    let mut message = None;
    while let Some(chunk) = body.data().await {
        let chunk =
            chunk.map_err(|e| Status::cancelled(format!("reading the request failed: {e}")))?;
        let _ = body.flow_control().release_capacity(chunk.len());
        decoder.push(&chunk);
        while let Some(m) = decoder.next_message()? {
            if message.replace(m).is_some() {
                return Err(Status::internal(
                    "the request holds more than one message; this method takes one",
                ));
            }
        }
    }
    decoder.finish()?;
    let message = message
        .ok_or_else(|| Status::internal("the request holds no message; this method takes one"))?;
    M::decode(message).map_err(|e| Status::internal(format!("decoding the request message: {e}")))
}

/// The headers of a response: HTTP `status` with gRPC's content type.
fn response_headers(status: StatusCode) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(wire::CONTENT_TYPE),
    );
    response
}

/// Adds the headers of `status` to `headers`: `grpc-status`,
/// `grpc-message` and details.
fn add_status(headers: &mut HeaderMap, status: &Status) {
    if status.add_header(headers).is_err() {
        headers.insert("grpc-status", HeaderValue::from(Code::Internal as i32));
    }
}

/// The trailers of a stream ending with `status`.
fn status_trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(3);
    add_status(&mut trailers, status);
    trailers
}

fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers
}

/// Answers with one message and `grpc-status: 0`.
fn send_message(respond: &mut SendResponse<Bytes>, message: Bytes) -> Result<(), h2::Error> {
    let mut stream = respond.send_response(response_headers(StatusCode::OK), false)?;
    stream.send_data(message, false)?;
    stream.send_trailers(ok_trailers())
}

/// Answers with `status` alone (a trailers-only response).
fn send_status(
    respond: &mut SendResponse<Bytes>,
    http: StatusCode,
    status: &Status,
) -> Result<(), h2::Error> {
    let mut response = response_headers(http);
    add_status(response.headers_mut(), status);
    respond.send_response(response, true).map(drop)
}

/// Sends the events of a watch as they come and the peer takes them; stops,
/// dropping the store's watch, when the client resets the stream or the
/// connection goes away.
async fn send_watch(
    respond: &mut SendResponse<Bytes>,
    mut events: WatchEvents,
) -> Result<(), h2::Error> {
    let mut stream = respond.send_response(response_headers(StatusCode::OK), false)?;
    loop {
        let next = poll_fn(|cx| {
            if stream.poll_reset(cx).is_ready() {
                return Poll::Ready(None);
            }
            events.poll_next_unpin(cx).map(Some)
        })
        .await;
        match next {
            None => return Ok(()),
            Some(None) => return stream.send_trailers(ok_trailers()),
            Some(Some(Ok(event))) => {
                send_within_window(&mut stream, wire::encode_message(&event)).await?
            }
            Some(Some(Err(status))) => return stream.send_trailers(status_trailers(&status)),
        }
    }
}

/// Sends `data` no faster than the peer's flow-control window allows.
async fn send_within_window(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
) -> Result<(), h2::Error> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = match poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(granted) => granted?,
            None => return Err(Reason::CANCEL.into()),
        };
        if granted > 0 {
            let chunk = data.split_to(granted.min(data.len()));
            stream.send_data(chunk, false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddr;
    use std::time::Duration;

    use tokio::time::Instant;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use ketch_core::api::{Container, Pod, PodSpec};
    use ketch_core::{
        ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object,
        ObjectEventStream, ObjectList, ObjectMeta, WatchParams,
    };

    use crate::ApiServer;
    use crate::auth::{TokenFileAuthenticator, UserInfo};
    use crate::grpc::{ApiServerProvider, ClientProvider, GrpcServer, proto};

    /// The token of an administrator.
    const TOKEN: &str = "admin-token";

    /// The API server's clients, counting the watches open through them.
    struct CountingWatches {
        provider: ApiServerProvider,
        open: Arc<AtomicUsize>,
    }

    impl ClientProvider for CountingWatches {
        fn client_for(&self, token: Option<&str>) -> Result<Arc<dyn Client>, ApiError> {
            Ok(Arc::new(Counting {
                client: self.provider.client_for(token)?,
                open: self.open.clone(),
            }))
        }

        fn decode_object(
            &self,
            api_version: &str,
            kind: &str,
            json: &[u8],
        ) -> Result<Box<dyn Object>, ApiError> {
            self.provider.decode_object(api_version, kind, json)
        }
    }

    /// One open watch; dropped with the watch's stream.
    struct OpenWatch(Arc<AtomicUsize>);

    impl Drop for OpenWatch {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    struct Counting {
        client: Arc<dyn Client>,
        open: Arc<AtomicUsize>,
    }

    #[async_trait::async_trait]
    impl Client for Counting {
        async fn create(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
            self.client.create(object).await
        }
        async fn get(&self, r: &str, ns: Option<&str>, name: &str) -> Result<ArcObject, ApiError> {
            self.client.get(r, ns, name).await
        }
        async fn list(
            &self,
            r: &str,
            ns: Option<&str>,
            params: &ListParams,
        ) -> Result<ObjectList, ApiError> {
            self.client.list(r, ns, params).await
        }
        async fn update(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
            self.client.update(object).await
        }
        async fn update_status(&self, object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
            self.client.update_status(object).await
        }
        async fn patch(
            &self,
            r: &str,
            ns: Option<&str>,
            name: &str,
            patch: &serde_json::Value,
        ) -> Result<ArcObject, ApiError> {
            self.client.patch(r, ns, name, patch).await
        }
        async fn delete(
            &self,
            r: &str,
            ns: Option<&str>,
            name: &str,
            params: &DeleteParams,
        ) -> Result<DeleteOutcome, ApiError> {
            self.client.delete(r, ns, name, params).await
        }
        async fn watch(
            &self,
            r: &str,
            ns: Option<&str>,
            params: &WatchParams,
        ) -> Result<ObjectEventStream, ApiError> {
            let events = self.client.watch(r, ns, params).await?;
            self.open.fetch_add(1, Ordering::SeqCst);
            let open = OpenWatch(self.open.clone());
            Ok(Box::pin(events.map(move |event| {
                let _open = &open;
                event
            })))
        }
        async fn bind(&self, ns: &str, pod: &str, node: &str) -> Result<ArcObject, ApiError> {
            self.client.bind(ns, pod, node).await
        }
    }

    /// A served gRPC server over a fresh API server knowing [`TOKEN`], with
    /// a 1 KiB object limit.
    struct Served {
        addr: SocketAddr,
        api: ApiServer,
        /// Watches open through the server.
        open_watches: Arc<AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
        stop: tokio::sync::oneshot::Sender<()>,
    }

    async fn start() -> Served {
        let store = Arc::new(ketch_store::MemoryStore::new());
        let authn = TokenFileAuthenticator::default().with_token(TOKEN, UserInfo::admin());
        let api = ApiServer::builder(store)
            .authenticator(authn)
            .build()
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let open_watches = Arc::new(AtomicUsize::new(0));
        let provider = CountingWatches {
            provider: ApiServerProvider::new(api.clone()),
            open: open_watches.clone(),
        };
        let grpc = GrpcServer::new(provider).max_object_bytes(1024);
        let task = tokio::spawn(async move {
            grpc.serve_with_listener(listener, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Served {
            addr,
            api,
            open_watches,
            task,
            stop,
        }
    }

    /// An HTTP/2 connection to `addr`, driven by the returned task.
    async fn connect(
        addr: SocketAddr,
    ) -> (h2::client::SendRequest<Bytes>, tokio::task::JoinHandle<()>) {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (client, conn) = h2::client::handshake(tcp).await.unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        (client.ready().await.unwrap(), conn)
    }

    fn request(
        addr: SocketAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Request<()> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    /// What a server answered: the HTTP status, the gRPC status (from the
    /// trailers, or the headers of a trailers-only response) and the body.
    struct Answer {
        http: StatusCode,
        status: Status,
        body: Vec<u8>,
    }

    async fn send(
        addr: SocketAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let (mut client, _conn) = connect(addr).await;
        let request = request(addr, method, path, headers);
        let (response, mut stream) = client.send_request(request, body.is_empty()).unwrap();
        if !body.is_empty() {
            // The server may answer (and reset) before reading it all.
            let _ = stream.send_data(Bytes::copy_from_slice(body), true);
        }
        let response = response.await.unwrap();
        let http = response.status();
        let mut headers = response.headers().clone();
        let mut recv = response.into_body();
        let mut body = Vec::new();
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.unwrap();
            let _ = recv.flow_control().release_capacity(chunk.len());
            body.extend_from_slice(&chunk);
        }
        if let Some(trailers) = recv.trailers().await.unwrap() {
            headers.extend(trailers);
        }
        let status = Status::from_header_map(&headers).expect("a grpc-status");
        Answer { http, status, body }
    }

    fn get_request(name: &str) -> Bytes {
        wire::encode_message(&proto::GetRequest {
            resource: "pods".into(),
            namespace: Some("default".into()),
            name: name.into(),
        })
    }

    /// A minimal valid pod.
    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta::named("default", name),
            spec: PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some("nginx:1.27".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            },
            ..Pod::default()
        }
    }

    const GRPC: (&str, &str) = ("content-type", "application/grpc");
    const AUTHORIZATION: (&str, &str) = ("authorization", "Bearer admin-token");

    /// A malformed call: name, method, path, headers, body, and the HTTP
    /// status, gRPC code and part of the message it must get.
    type Case<'a> = (
        &'a str,
        Method,
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        StatusCode,
        Code,
        &'a str,
    );

    #[tokio::test]
    async fn malformed_calls_get_a_grpc_status_naming_the_problem() {
        let served = start().await;
        let addr = served.addr;
        let one = get_request("web");
        let two = [one.as_ref(), one.as_ref()].concat();
        let oversized = [0u8, 0, 0x10, 0, 0]; // announces 1 MiB
        let cases: Vec<Case<'_>> = vec![
            (
                "wrong content-type",
                Method::POST,
                path::GET,
                vec![("content-type", "application/json")],
                one.to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidArgument,
                "application/json",
            ),
            (
                "no content-type",
                Method::POST,
                path::GET,
                vec![],
                one.to_vec(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidArgument,
                "content-type None",
            ),
            (
                "not POST",
                Method::GET,
                path::GET,
                vec![GRPC],
                vec![],
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Internal,
                "not GET",
            ),
            (
                "unknown method",
                Method::POST,
                "/ketch.v1.Api/Frobnicate",
                vec![GRPC],
                one.to_vec(),
                StatusCode::OK,
                Code::Unimplemented,
                "/ketch.v1.Api/Frobnicate",
            ),
            (
                "oversized message",
                Method::POST,
                path::CREATE,
                vec![GRPC],
                oversized.to_vec(),
                StatusCode::OK,
                Code::ResourceExhausted,
                "1048576 bytes is over the limit of 66560 bytes",
            ),
            (
                "compressed message",
                Method::POST,
                path::GET,
                vec![GRPC],
                vec![1, 0, 0, 0, 1, 0],
                StatusCode::OK,
                Code::Unimplemented,
                "compressed",
            ),
            (
                "body ending inside a message",
                Method::POST,
                path::GET,
                vec![GRPC],
                one[..one.len() - 1].to_vec(),
                StatusCode::OK,
                Code::Internal,
                "ended inside a message",
            ),
            (
                "two messages in a unary call",
                Method::POST,
                path::GET,
                vec![GRPC],
                two,
                StatusCode::OK,
                Code::Internal,
                "more than one message",
            ),
            (
                "no message",
                Method::POST,
                path::GET,
                vec![GRPC],
                vec![],
                StatusCode::OK,
                Code::Internal,
                "no message",
            ),
            (
                "undecodable message",
                Method::POST,
                path::GET,
                vec![GRPC],
                vec![0, 0, 0, 0, 2, 0xff, 0xff],
                StatusCode::OK,
                Code::Internal,
                "decoding the request message",
            ),
            (
                "malformed grpc-timeout",
                Method::POST,
                path::GET,
                vec![GRPC, ("grpc-timeout", "soon")],
                one.to_vec(),
                StatusCode::OK,
                Code::Internal,
                "malformed grpc-timeout header \"soon\"",
            ),
        ];
        for (name, method, path, headers, body, http, code, message) in cases {
            let answer = send(addr, method, path, &headers, &body).await;
            assert_eq!(answer.http, http, "{name}");
            assert_eq!(answer.status.code(), code, "{name}: {:?}", answer.status);
            assert!(
                answer.status.message().contains(message),
                "{name}: {:?} does not mention {message:?}",
                answer.status.message()
            );
            assert!(answer.body.is_empty(), "{name}: an error has no message");
        }
    }

    #[tokio::test]
    async fn a_call_is_answered_with_one_message_and_status_ok() {
        let served = start().await;
        let addr = served.addr;
        served
            .api
            .client()
            .create(Box::new(pod("web")))
            .await
            .unwrap();
        let headers = [GRPC, ("grpc-timeout", "5S"), AUTHORIZATION];
        let answer = send(addr, Method::POST, path::GET, &headers, &get_request("web")).await;
        assert_eq!(answer.status.code(), Code::Ok, "{:?}", answer.status);
        let mut decoder = MessageDecoder::new(1 << 20);
        decoder.push(&answer.body);
        let message = decoder.next_message().unwrap().expect("one message");
        decoder.finish().unwrap();
        let response = <proto::ObjectResponse as prost::Message>::decode(message).unwrap();
        assert_eq!(response.object.unwrap().kind, "Pod");

        let missing = send(addr, Method::POST, path::GET, &headers, &get_request("db")).await;
        assert_eq!(
            missing.status.code(),
            Code::NotFound,
            "{:?}",
            missing.status
        );
    }

    /// Opens a watch of the pods of `default` on `client`.
    async fn open_watch(
        addr: SocketAddr,
        client: &mut h2::client::SendRequest<Bytes>,
    ) -> (RecvStream, SendStream<Bytes>) {
        let request = request(addr, Method::POST, path::WATCH, &[GRPC, AUTHORIZATION]);
        let (response, mut stream) = client.send_request(request, false).unwrap();
        let watch = proto::WatchRequest {
            resource: "pods".into(),
            namespace: Some("default".into()),
            ..Default::default()
        };
        stream
            .send_data(wire::encode_message(&watch), true)
            .unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        (response.into_body(), stream)
    }

    /// The next event of a watch's body.
    async fn next_event(body: &mut RecvStream, decoder: &mut MessageDecoder) -> proto::WatchEvent {
        loop {
            if let Some(message) = decoder.next_message().unwrap() {
                return <proto::WatchEvent as prost::Message>::decode(message).unwrap();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.data())
                .await
                .expect("an event within 5 s")
                .expect("the watch goes on")
                .unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            decoder.push(&chunk);
        }
    }

    /// Waits until `open` watches are open on the server.
    async fn await_open(served: &Served, open: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while served.open_watches.load(Ordering::SeqCst) != open {
            assert!(Instant::now() < deadline, "{open} watches open within 5 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_watch_streams_events_and_ends_when_the_client_resets_it_or_goes_away() {
        let served = start().await;
        let (mut reset_client, _conn) = connect(served.addr).await;
        let (mut reset_body, mut reset_stream) = open_watch(served.addr, &mut reset_client).await;
        let (mut gone_client, gone_conn) = connect(served.addr).await;
        let (mut gone_body, _gone_stream) = open_watch(served.addr, &mut gone_client).await;
        await_open(&served, 2).await;

        served
            .api
            .client()
            .create(Box::new(pod("web")))
            .await
            .unwrap();
        for body in [&mut reset_body, &mut gone_body] {
            let event = next_event(body, &mut MessageDecoder::new(1 << 20)).await;
            assert_eq!(event.r#type, proto::event_type::ADDED);
        }

        reset_stream.send_reset(Reason::CANCEL);
        await_open(&served, 1).await;
        gone_conn.abort();
        await_open(&served, 0).await;

        served.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), served.task)
            .await
            .expect("the server returns once its calls are done")
            .unwrap();
    }
}
