//! One HTTP/2 connection of gRPC calls, served with the `h2` crate: each
//! call is routed by its `:path`, its request message read with
//! [`MessageDecoder`] and answered with a framed message and
//! `grpc-status: 0` trailers, or with a trailers-only error response.
//! `Watch` answers with a stream of messages sent as the peer's flow-control
//! window allows; it ends when the store's watch ends, with its first error,
//! or when the client resets the stream or goes away.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use h2::server::SendResponse;
use h2::{Ping, PingPong, Reason, RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status};

use super::proto::path;
use super::server::{CONNECTION_WINDOW, Inner, WINDOW, WatchEvents};
use super::wire::{self, MessageDecoder};

/// Interval of HTTP/2 pings on a connection.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
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
/// The calls run inside this task, polled beside the connection, rather
/// than on a task each: a call's frames are then written by the same poll
/// that produced them, without waking another task, which measured
/// cheaper per create on the gRPC bench.
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
    let mut calls = FuturesUnordered::new();
    let mut stopping = pin!(stop.changed());
    let mut stopped = false;
    let served = poll_fn(|cx| {
        loop {
            // Calls first, so the frames they produce go out with the
            // connection's poll below.
            while let Poll::Ready(Some(())) = calls.poll_next_unpin(cx) {}
            if !stopped && stopping.as_mut().poll(cx).is_ready() {
                stopped = true;
                conn.graceful_shutdown();
            }
            if keepalive.poll_expired(cx) {
                return Poll::Ready(Err("a keepalive ping went unanswered".to_string()));
            }
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    calls.push(call(inner.clone(), request, respond));
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

/// Pings the peer every [`KEEPALIVE_INTERVAL`] and reports a connection
/// whose ping goes unanswered for [`KEEPALIVE_TIMEOUT`].
struct Keepalive {
    ping_pong: Option<PingPong>,
    timer: Pin<Box<Sleep>>,
    awaiting_pong: bool,
}

impl Keepalive {
    fn new(ping_pong: Option<PingPong>) -> Self {
        Self {
            ping_pong,
            timer: Box::pin(tokio::time::sleep(KEEPALIVE_INTERVAL)),
            awaiting_pong: false,
        }
    }

    /// True once a ping has gone unanswered for too long.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(ping_pong) = &mut self.ping_pong else {
            return false;
        };
        if self.awaiting_pong {
            match ping_pong.poll_pong(cx) {
                Poll::Ready(Ok(_)) => {
                    self.awaiting_pong = false;
                    self.timer
                        .as_mut()
                        .reset(Instant::now() + KEEPALIVE_INTERVAL);
                }
                // The connection failed; accepting reports it.
                Poll::Ready(Err(_)) => {
                    self.ping_pong = None;
                    return false;
                }
                Poll::Pending => {}
            }
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        if self.awaiting_pong {
            return true;
        }
        if ping_pong.send_ping(Ping::opaque()).is_err() {
            self.ping_pong = None;
            return false;
        }
        self.awaiting_pong = true;
        self.timer
            .as_mut()
            .reset(Instant::now() + KEEPALIVE_TIMEOUT);
        // Registers the timer of the pong's deadline.
        let _ = self.timer.as_mut().poll(cx);
        false
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

/// `application/grpc`, alone or with a `+<format>` or `;<parameter>` suffix.
fn is_grpc_content_type(value: &[u8]) -> bool {
    value
        .strip_prefix(wire::CONTENT_TYPE.as_bytes())
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
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

/// The headers of a response: HTTP 200 with gRPC's content type.
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
