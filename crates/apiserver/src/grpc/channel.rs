//! gRPC calls straight on HTTP/2 for [`RemoteClient`](super::RemoteClient):
//! the calling task sends its request on a clone of the connection's
//! [`SendRequest`] and reads the reply itself; one task per connection only
//! drives the [`h2::client::Connection`] (and its keepalive pings).
//!
//! A [`Channel`] holds `n` connection slots and spreads calls over them. A
//! slot connects on first use and again after its connection broke; calls
//! in flight on a broken connection fail with `UNAVAILABLE`.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Reason, RecvStream};
use http::header::{AUTHORIZATION, CONTENT_TYPE, TE};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tonic::{Code, Status};

use super::GrpcError;
use super::coalesce::CoalescingIo;
use super::wire::{self, KEEPALIVE_TIMEOUT, Keepalive, MessageDecoder, is_grpc_content_type};

const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_STATUS_DETAILS: &str = "grpc-status-details-bin";

/// Where and how to connect: the parsed endpoint and the connection settings.
pub(crate) struct Target {
    /// The endpoint as given, for messages.
    endpoint: String,
    scheme: Scheme,
    authority: Authority,
    host: String,
    port: u16,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<tls::Connector>,
}

impl Target {
    /// Parses `endpoint` (`http://host:port`, or `https://` with `tls`).
    pub(crate) fn new(
        endpoint: &str,
        connect_timeout: Duration,
        #[cfg(feature = "tls")] tls: Option<&super::ClientTls>,
    ) -> Result<Self, GrpcError> {
        let invalid = |why: &str| GrpcError::InvalidEndpoint(format!("{endpoint}: {why}"));
        let uri: Uri = endpoint.parse().map_err(|e| invalid(&format!("{e}")))?;
        let scheme = uri
            .scheme()
            .cloned()
            .ok_or_else(|| invalid("no scheme (http:// or https://)"))?;
        let authority = uri.authority().cloned().ok_or_else(|| invalid("no host"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid("a path is not supported, only scheme://host:port"));
        }
        let https = match scheme.as_str() {
            "http" => false,
            "https" => true,
            other => return Err(invalid(&format!("scheme {other:?} is not http or https"))),
        };
        #[cfg(feature = "tls")]
        let tls_given = tls.is_some();
        #[cfg(not(feature = "tls"))]
        let tls_given = false;
        if https && !tls_given {
            return Err(invalid(
                "https needs TLS settings (RemoteClientBuilder::tls)",
            ));
        }
        if !https && tls_given {
            return Err(invalid("TLS settings need an https:// endpoint"));
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        #[cfg(feature = "tls")]
        let tls = tls
            .map(|tls| tls::Connector::new(tls, &host))
            .transpose()
            .map_err(GrpcError::Tls)?;
        Ok(Self {
            endpoint: endpoint.to_string(),
            scheme,
            authority,
            host,
            port,
            connect_timeout,
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// A new HTTP/2 connection: its request handle, and a flag raised when
    /// the connection has ended.
    async fn connect(&self) -> Result<Live, GrpcError> {
        let timed_out = || GrpcError::Connect {
            endpoint: self.endpoint.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {:?}", self.connect_timeout),
            ),
        };
        tokio::time::timeout(self.connect_timeout, self.establish())
            .await
            .map_err(|_| timed_out())?
    }

    async fn establish(&self) -> Result<Live, GrpcError> {
        let connect_error = |source| GrpcError::Connect {
            endpoint: self.endpoint.clone(),
            source,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(connect_error)?;
        tcp.set_nodelay(true).map_err(connect_error)?;
        let io = CoalescingIo::new(tcp);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let io = tls
                .connect(io)
                .await
                .map_err(|source| GrpcError::TlsHandshake {
                    endpoint: self.endpoint.clone(),
                    source,
                })?;
            return self.handshake(io).await;
        }
        self.handshake(io).await
    }

    async fn handshake<T>(&self, io: T) -> Result<Live, GrpcError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, mut connection) = h2::client::Builder::new()
            .initial_window_size(super::server::WINDOW)
            .initial_connection_window_size(super::server::CONNECTION_WINDOW)
            .initial_max_send_streams(100)
            .max_header_list_size(16 * 1024)
            .max_send_buffer_size(1024 * 1024)
            .enable_push(false)
            .handshake::<T, Bytes>(io)
            .await
            .map_err(|source| GrpcError::Http2 {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let closed = Arc::new(AtomicBool::new(false));
        let ended = closed.clone();
        let ping = connection.ping_pong();
        tokio::spawn(async move {
            let result = drive(connection, ping).await;
            ended.store(true, Ordering::Release);
            if let Err(e) = result {
                tracing::debug!(error = %e, "gRPC client connection ended");
            }
        });
        Ok(Live { send, closed })
    }
}

/// Drives `connection` until it ends, or until a keepalive ping goes
/// unanswered (dropping the connection then fails its calls in flight).
async fn drive<T>(
    connection: h2::client::Connection<T, Bytes>,
    ping: Option<h2::PingPong>,
) -> Result<(), h2::Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut connection = std::pin::pin!(connection);
    let mut keepalive = Keepalive::new(ping);
    std::future::poll_fn(|cx| {
        if keepalive.poll_expired(cx) {
            tracing::debug!(
                "gRPC keepalive ping unanswered for {KEEPALIVE_TIMEOUT:?}; closing the connection"
            );
            return Poll::Ready(Ok(()));
        }
        connection.as_mut().poll(cx)
    })
    .await
}

/// An established connection.
#[derive(Clone)]
struct Live {
    send: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

/// One connection of a [`Channel`], established when first needed and
/// again after it broke.
#[derive(Default)]
struct Slot {
    live: parking_lot::Mutex<Option<Live>>,
    /// Held while connecting, so concurrent calls share one new connection.
    connecting: tokio::sync::Mutex<()>,
}

impl Slot {
    fn current(&self) -> Option<SendRequest<Bytes>> {
        let live = self.live.lock();
        live.as_ref()
            .filter(|l| !l.closed.load(Ordering::Acquire))
            .map(|l| l.send.clone())
    }

    async fn sender(&self, target: &Target) -> Result<SendRequest<Bytes>, GrpcError> {
        if let Some(send) = self.current() {
            return Ok(send);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(send) = self.current() {
            return Ok(send);
        }
        let live = target.connect().await?;
        let send = live.send.clone();
        *self.live.lock() = Some(live);
        Ok(send)
    }
}

/// What each request carries besides its path.
pub(crate) struct RequestHeaders {
    /// `authorization: Bearer <token>`, when a token is set.
    pub(crate) authorization: Option<HeaderValue>,
    /// The `grpc-timeout` of unary calls.
    pub(crate) timeout: HeaderValue,
}

impl RequestHeaders {
    /// Headers for `token` and the unary deadline `timeout`.
    pub(crate) fn new(token: Option<&str>, timeout: Duration) -> Result<Self, GrpcError> {
        let authorization = match token {
            Some(t) => {
                // Not marked sensitive: HPACK then indexes it once per
                // connection instead of sending it literally on every call.
                Some(
                    HeaderValue::try_from(format!("Bearer {t}"))
                        .map_err(|_| GrpcError::InvalidToken)?,
                )
            }
            None => None,
        };
        let timeout = HeaderValue::try_from(wire::format_timeout(timeout))
            .expect("a formatted timeout is digits and a unit letter");
        Ok(Self {
            authorization,
            timeout,
        })
    }
}

/// Connections to one server, calls spread over them round robin.
pub(crate) struct Channel {
    target: Target,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    headers: RequestHeaders,
    max_message_bytes: usize,
}

impl Channel {
    /// A channel of `connections` slots, none connected yet.
    pub(crate) fn new(
        target: Target,
        connections: usize,
        headers: RequestHeaders,
        max_message_bytes: usize,
    ) -> Self {
        Self {
            target,
            slots: (0..connections.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            headers,
            max_message_bytes,
        }
    }

    /// Establishes every connection now.
    pub(crate) async fn connect_all(&self) -> Result<(), GrpcError> {
        for slot in self.slots.iter() {
            slot.sender(&self.target).await?;
        }
        Ok(())
    }

    /// How many connections calls are spread over.
    pub(crate) fn connections(&self) -> usize {
        self.slots.len()
    }

    async fn sender(&self) -> Result<SendRequest<Bytes>, Status> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let send = self.slots[i]
            .sender(&self.target)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        send.ready().await.map_err(status_of_h2)
    }

    fn request(&self, method: &'static str, unary: bool) -> Result<http::Request<()>, Status> {
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(self.target.scheme.clone());
        parts.authority = Some(self.target.authority.clone());
        parts.path_and_query = Some(PathAndQuery::from_static(method));
        let uri = Uri::from_parts(parts)
            .map_err(|e| Status::internal(format!("building the URI of {method}: {e}")))?;
        let mut request = http::Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.reserve(4);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        if unary {
            headers.insert(GRPC_TIMEOUT, self.headers.timeout.clone());
        }
        if let Some(auth) = &self.headers.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        Ok(request)
    }

    /// Sends one call with `message` as its body and returns the reply once
    /// its headers arrived.
    pub(crate) async fn call(
        &self,
        method: &'static str,
        message: Bytes,
        unary: bool,
    ) -> Result<Reply, Status> {
        let mut send = self.sender().await?;
        let request = self.request(method, unary)?;
        let (response, mut body) = send.send_request(request, false).map_err(status_of_h2)?;
        body.send_data(message, true).map_err(status_of_h2)?;
        let response = response.await.map_err(status_of_h2)?;
        Reply::open(response, self.max_message_bytes)
    }

    /// A unary call: the one message of the reply.
    pub(crate) async fn unary(
        &self,
        method: &'static str,
        message: Bytes,
    ) -> Result<Bytes, Status> {
        let mut reply = self.call(method, message, true).await?;
        let message = reply
            .message()
            .await?
            .ok_or_else(|| Status::internal(format!("the reply to {method} has no message")))?;
        match reply.message().await? {
            None => Ok(message),
            Some(_) => Err(Status::internal(format!(
                "the reply to {method} has more than one message"
            ))),
        }
    }
}

/// The response of a call being read: its messages, then its status.
/// Dropping it before the end resets the stream, so the server stops.
pub(crate) struct Reply {
    body: RecvStream,
    decoder: MessageDecoder,
    ended: bool,
}

impl Reply {
    /// Checks the response headers: an error status there (a trailers-only
    /// response), a non-200 HTTP status or another content type fail the call.
    fn open(
        response: http::Response<RecvStream>,
        max_message_bytes: usize,
    ) -> Result<Self, Status> {
        let (parts, body) = response.into_parts();
        let trailers_only = match status_of_headers(&parts.headers) {
            Some(status) => {
                status?;
                true
            }
            None => false,
        };
        if !trailers_only {
            if parts.status != StatusCode::OK {
                return Err(status_of_http(parts.status));
            }
            let content_type = parts.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes);
            if !content_type.is_some_and(is_grpc_content_type) {
                return Err(Status::internal(format!(
                    "the server answered with content-type {:?}, not {}",
                    content_type
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default(),
                    wire::CONTENT_TYPE
                )));
            }
        }
        Ok(Self {
            body,
            decoder: MessageDecoder::new(max_message_bytes),
            ended: trailers_only,
        })
    }

    /// The next message, `None` after the last one when the call ended
    /// with status OK.
    pub(crate) async fn message(&mut self) -> Result<Option<Bytes>, Status> {
        loop {
            if let Some(message) = self.decoder.next_message()? {
                return Ok(Some(message));
            }
            if self.ended {
                return Ok(None);
            }
            match self.body.data().await {
                Some(Ok(chunk)) => {
                    // The window reopens as soon as the bytes are taken
                    // over; a stream already gone has nothing to release.
                    let _ = self.body.flow_control().release_capacity(chunk.len());
                    self.decoder.push(&chunk);
                }
                Some(Err(e)) => return Err(status_of_h2(e)),
                None => {
                    let trailers = self.body.trailers().await.map_err(status_of_h2)?;
                    let status = trailers.as_ref().and_then(status_of_headers);
                    if let Some(Err(status)) = status {
                        return Err(status);
                    }
                    self.decoder.finish()?;
                    if status.is_none() {
                        return Err(Status::internal("the response ended without a grpc-status"));
                    }
                    self.ended = true;
                }
            }
        }
    }
}

/// The gRPC status in `headers` (trailers, or the headers of a
/// trailers-only response): `None` when there is none, `Some(Ok(()))` for
/// OK, otherwise the error (also when its details are not base64).
fn status_of_headers(headers: &HeaderMap) -> Option<Result<(), Status>> {
    let code = match headers.get(GRPC_STATUS)?.as_bytes() {
        b"0" => return Some(Ok(())),
        digits => Code::from_bytes(digits),
    };
    let message = headers
        .get(GRPC_MESSAGE)
        .map(|m| {
            percent_encoding::percent_decode(m.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default();
    let details = match headers
        .get(GRPC_STATUS_DETAILS)
        .map(|raw| decode_details(raw.as_bytes()))
    {
        Some(Ok(details)) => details,
        Some(Err(e)) => {
            return Some(Err(Status::internal(format!(
                "the server's {GRPC_STATUS_DETAILS} is not base64 ({e}); status {code:?}: {message}"
            ))));
        }
        None => Bytes::new(),
    };
    Some(Err(Status::with_details(code, message, details)))
}

/// Decodes base64 with or without padding, as gRPC sends binary headers.
fn decode_details(raw: &[u8]) -> Result<Bytes, base64::DecodeError> {
    use base64::Engine;
    const ENGINE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    ENGINE.decode(raw).map(Bytes::from)
}

/// The status of a response whose HTTP status is not 200 and that carries
/// no `grpc-status`, as gRPC's HTTP-to-status mapping says.
fn status_of_http(status: StatusCode) -> Status {
    let code = match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    };
    Status::new(
        code,
        format!("the server answered with HTTP status {status}"),
    )
}

/// The status of a call that failed in HTTP/2: `UNAVAILABLE` when the
/// connection broke or went away, otherwise by the stream's reset reason
/// as gRPC maps them.
fn status_of_h2(e: h2::Error) -> Status {
    if e.is_io() || e.is_go_away() {
        return Status::unavailable(format!("the connection broke: {e}"));
    }
    let code = match e.reason() {
        Some(Reason::REFUSED_STREAM) => Code::Unavailable,
        Some(Reason::CANCEL) => Code::Cancelled,
        Some(Reason::ENHANCE_YOUR_CALM) => Code::ResourceExhausted,
        Some(Reason::INADEQUATE_SECURITY) => Code::PermissionDenied,
        _ => Code::Internal,
    };
    Status::new(code, format!("HTTP/2: {e}"))
}

#[cfg(feature = "tls")]
mod tls {
    //! TLS under the HTTP/2 connection: rustls (ring) with ALPN `h2`.

    use std::io;
    use std::sync::Arc;

    use tokio::io::{AsyncRead, AsyncWrite};
    use tokio_rustls::TlsConnector;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};

    /// Connects TLS to one server name, trusting the given CA certificates.
    pub(super) struct Connector {
        connector: TlsConnector,
        server_name: ServerName<'static>,
    }

    impl Connector {
        /// Trusts `tls.ca_pem` and verifies the name `tls.domain`, or `host`.
        pub(super) fn new(tls: &super::super::ClientTls, host: &str) -> Result<Self, String> {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&tls.ca_pem) {
                let cert = cert.map_err(|e| format!("ca_pem: {e}"))?;
                roots.add(cert).map_err(|e| format!("ca_pem: {e}"))?;
            }
            if roots.is_empty() {
                return Err("ca_pem: no certificate found".to_string());
            }
            let mut config =
                ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS versions: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec()];
            let name = tls.domain.as_deref().unwrap_or(host);
            let server_name = ServerName::try_from(name.to_string())
                .map_err(|e| format!("server name {name:?}: {e}"))?;
            Ok(Self {
                connector: TlsConnector::from(Arc::new(config)),
                server_name,
            })
        }

        /// The TLS handshake over `io`; the server must agree to HTTP/2.
        pub(super) async fn connect<T>(&self, io: T) -> io::Result<TlsStream<T>>
        where
            T: AsyncRead + AsyncWrite + Unpin,
        {
            let stream = self.connector.connect(self.server_name.clone(), io).await?;
            if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server did not agree to HTTP/2 (ALPN h2)",
                ));
            }
            Ok(stream)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_parsed_or_refused_with_the_reason() {
        let t = |e: &str| {
            Target::new(
                e,
                Duration::from_secs(1),
                #[cfg(feature = "tls")]
                None,
            )
        };
        let cases = [
            ("http://127.0.0.1:6443", ("127.0.0.1", 6443)),
            ("http://[::1]:7000", ("::1", 7000)),
            ("http://example.com", ("example.com", 80)),
            ("http://example.com/", ("example.com", 80)),
        ];
        for (endpoint, (host, port)) in cases {
            let target = t(endpoint).unwrap();
            assert_eq!(
                (target.host.as_str(), target.port),
                (host, port),
                "{endpoint}"
            );
        }
        for (bad, why) in [
            ("127.0.0.1:6443", "scheme"),
            ("ftp://h:1", "not http or https"),
            ("http://h:1/api", "path"),
            ("https://h:1", "TLS settings"),
            ("http://", "http://"),
        ] {
            let err = t(bad).err().expect(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn statuses_come_from_headers_http_codes_and_h2_errors() {
        let mut headers = HeaderMap::new();
        assert!(status_of_headers(&headers).is_none());
        headers.insert(GRPC_STATUS, HeaderValue::from_static("0"));
        assert!(status_of_headers(&headers).unwrap().is_ok());
        headers.insert(GRPC_STATUS, HeaderValue::from_static("5"));
        headers.insert(GRPC_MESSAGE, HeaderValue::from_static("no%20such%20pod"));
        let status = status_of_headers(&headers).unwrap().unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::NotFound, "no such pod")
        );
        headers.insert(GRPC_STATUS_DETAILS, HeaderValue::from_static("AQI"));
        let status = status_of_headers(&headers).unwrap().unwrap_err();
        assert_eq!(status.details(), &[1, 2][..]);
        headers.insert(GRPC_STATUS_DETAILS, HeaderValue::from_static("!!"));
        let err = status_of_headers(&headers).unwrap().unwrap_err();
        assert_eq!(err.code(), Code::Internal);
        assert!(err.message().contains("not base64"), "{}", err.message());

        for (http, code) in [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (500, Code::Unknown),
            (302, Code::Unknown),
        ] {
            let status = status_of_http(StatusCode::from_u16(http).unwrap());
            assert_eq!(status.code(), code, "{http}");
            assert!(status.message().contains(&http.to_string()));
        }

        assert_eq!(status_of_h2(Reason::CANCEL.into()).code(), Code::Cancelled);
        assert_eq!(
            status_of_h2(Reason::REFUSED_STREAM.into()).code(),
            Code::Unavailable
        );
        assert_eq!(
            status_of_h2(Reason::PROTOCOL_ERROR.into()).code(),
            Code::Internal
        );
    }
}
