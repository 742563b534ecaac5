//! gRPC's framing over HTTP/2, shared by the client and the server: the
//! length-prefixed messages of a call's body and the `grpc-timeout` header.
//!
//! A message on the wire is one flag byte (0: not compressed), its length as
//! a big-endian `u32`, then the protobuf bytes. A body may split a message
//! over several DATA frames or carry several messages in one;
//! [`MessageDecoder`] reassembles them.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::{Ping, PingPong};
use tokio::time::{Instant, Sleep};
use tonic::Status;

/// The content type of every gRPC request and response.
pub(crate) const CONTENT_TYPE: &str = "application/grpc";

/// Interval of keepalive pings on a connection, idle or not (client and
/// server alike).
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// How long a keepalive ping may go unanswered before the connection is
/// given up.
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// `application/grpc`, alone or with a `+<format>` or `;<parameter>` suffix.
pub(crate) fn is_grpc_content_type(value: &[u8]) -> bool {
    value
        .strip_prefix(CONTENT_TYPE.as_bytes())
        .is_some_and(|rest| matches!(rest.first(), None | Some(b'+' | b';')))
}

/// Pings the peer every [`KEEPALIVE_INTERVAL`] and reports a connection
/// whose ping goes unanswered for [`KEEPALIVE_TIMEOUT`]; the task driving
/// the connection polls it beside the connection.
pub(crate) struct Keepalive {
    ping_pong: Option<PingPong>,
    timer: Pin<Box<Sleep>>,
    awaiting_pong: bool,
}

impl Keepalive {
    pub(crate) fn new(ping_pong: Option<PingPong>) -> Self {
        Self {
            ping_pong,
            timer: Box::pin(tokio::time::sleep(KEEPALIVE_INTERVAL)),
            awaiting_pong: false,
        }
    }

    /// True once a ping has gone unanswered for too long.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
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

/// Bytes before a message: the compression flag and the length.
const PREFIX: usize = 5;

/// `message` encoded with its gRPC length prefix.
pub(crate) fn encode_message(message: &impl prost::Message) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX + len);
    buf.put_u8(0);
    buf.put_u32(len as u32);
    message
        .encode(&mut buf)
        .expect("a buffer sized by encoded_len has room for the message");
    buf.freeze()
}

/// Reassembles length-prefixed messages from the chunks of a body, refusing
/// compressed messages and messages over a size limit.
#[derive(Debug)]
pub(crate) struct MessageDecoder {
    buf: BytesMut,
    max_message_bytes: usize,
}

impl MessageDecoder {
    /// A decoder accepting messages of up to `max_message_bytes`.
    pub(crate) fn new(max_message_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_message_bytes,
        }
    }

    /// Appends the next chunk of the body.
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete message, `None` when more bytes are needed.
    pub(crate) fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buf.len() < PREFIX {
            return Ok(None);
        }
        let compressed = self.buf[0];
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        match compressed {
            0 => {}
            1 => {
                return Err(Status::unimplemented(
                    "compressed messages are not supported (grpc-encoding identity only)",
                ));
            }
            flag => {
                return Err(Status::internal(format!(
                    "invalid compression flag {flag} in a message prefix"
                )));
            }
        }
        if len > self.max_message_bytes {
            return Err(Status::resource_exhausted(format!(
                "message of {len} bytes is over the limit of {} bytes",
                self.max_message_bytes
            )));
        }
        if self.buf.len() < PREFIX + len {
            self.buf.reserve(PREFIX + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(PREFIX);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Checks that the body ended on a message boundary.
    pub(crate) fn finish(&self) -> Result<(), Status> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Status::internal(format!(
                "the body ended inside a message ({} bytes left over)",
                self.buf.len()
            )))
        }
    }
}

/// The deadline of a call's `grpc-timeout` header value: up to eight digits
/// and a unit (`H`, `M`, `S`, `m`, `u`, `n`); `None` when malformed.
pub(crate) fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// `timeout` as a `grpc-timeout` header value: the finest unit whose count
/// fits the header's eight digits, rounded up so the deadline is never
/// shorter than asked.
pub(crate) fn format_timeout(timeout: Duration) -> String {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (per, unit) in units {
        let count = nanos.div_ceil(per);
        if count <= MAX {
            return format!("{count}{unit}");
        }
    }
    format!("{MAX}H")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_and_joined_across_chunks_come_out_whole() {
        let a = super::super::proto::GetRequest {
            resource: "pods".into(),
            namespace: Some("default".into()),
            name: "web".into(),
        };
        let b = super::super::proto::GetRequest {
            resource: "nodes".into(),
            namespace: None,
            name: "n1".into(),
        };
        let mut body = encode_message(&a).to_vec();
        body.extend_from_slice(&encode_message(&b));
        for split in 0..body.len() {
            let mut d = MessageDecoder::new(1024);
            let mut got = Vec::new();
            for chunk in [&body[..split], &body[split..]] {
                d.push(chunk);
                while let Some(m) = d.next_message().unwrap() {
                    got.push(
                        <super::super::proto::GetRequest as prost::Message>::decode(m).unwrap(),
                    );
                }
            }
            d.finish().unwrap();
            assert_eq!(got, vec![a.clone(), b.clone()], "split at {split}");
        }
    }

    #[test]
    fn oversized_compressed_and_truncated_messages_are_refused() {
        let mut d = MessageDecoder::new(4);
        d.push(&[0, 0, 0, 0, 5, 1, 2, 3, 4, 5]);
        let err = d.next_message().unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.message().contains("5 bytes"), "{}", err.message());

        let mut d = MessageDecoder::new(4);
        d.push(&[1, 0, 0, 0, 1, 7]);
        assert_eq!(
            d.next_message().unwrap_err().code(),
            tonic::Code::Unimplemented
        );

        let mut d = MessageDecoder::new(4);
        d.push(&[9, 0, 0, 0, 1, 7]);
        assert_eq!(d.next_message().unwrap_err().code(), tonic::Code::Internal);

        let mut d = MessageDecoder::new(4);
        d.push(&[0, 0, 0, 0, 3, 1]);
        assert!(d.next_message().unwrap().is_none());
        assert_eq!(d.finish().unwrap_err().code(), tonic::Code::Internal);
    }

    /// Serves the server side of `io` with `keepalive` beside it until the
    /// keepalive gives up (`Some(elapsed)`) or `limit` passes (`None`).
    async fn serve_until_keepalive_gives_up(
        io: tokio::io::DuplexStream,
        limit: Duration,
    ) -> Option<Duration> {
        let mut server = h2::server::Builder::new()
            .handshake::<_, Bytes>(io)
            .await
            .unwrap();
        let mut keepalive = Keepalive::new(server.ping_pong());
        let started = Instant::now();
        let gave_up = std::future::poll_fn(|cx| {
            if keepalive.poll_expired(cx) {
                return Poll::Ready(started.elapsed());
            }
            assert!(server.poll_accept(cx).is_pending(), "the connection ended");
            Poll::Pending
        });
        tokio::time::timeout(limit, gave_up).await.ok()
    }

    #[tokio::test(start_paused = true)]
    async fn keepalive_gives_up_on_a_peer_that_stops_answering_pings() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        // Handshaken but never polled again: pings stay unanswered.
        let (_send, _connection) = h2::client::Builder::new()
            .handshake::<_, Bytes>(client_io)
            .await
            .unwrap();
        let elapsed = serve_until_keepalive_gives_up(server_io, Duration::from_secs(120))
            .await
            .expect("the keepalive gives up");
        assert!(
            elapsed >= KEEPALIVE_INTERVAL + KEEPALIVE_TIMEOUT,
            "gave up after {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn keepalive_keeps_a_connection_whose_peer_answers() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (_send, connection) = h2::client::Builder::new()
            .handshake::<_, Bytes>(client_io)
            .await
            .unwrap();
        let driven = tokio::spawn(connection);
        let gave_up = serve_until_keepalive_gives_up(server_io, Duration::from_secs(300)).await;
        assert_eq!(gave_up, None);
        driven.abort();
    }

    #[test]
    fn grpc_content_types_are_told_from_others() {
        for ok in [
            "application/grpc",
            "application/grpc+proto",
            "application/grpc;charset=utf-8",
        ] {
            assert!(is_grpc_content_type(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "application/json",
            "application/grpcx",
            "application/grp",
            "text/html",
        ] {
            assert!(!is_grpc_content_type(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn timeouts_round_trip_through_the_header_and_never_shrink() {
        let cases = [
            Duration::from_nanos(1),
            Duration::from_micros(1500),
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::from_secs(99_999_999),
            Duration::from_secs(86_400 * 400),
        ];
        for t in cases {
            let header = format_timeout(t);
            let parsed = parse_timeout(header.as_bytes()).unwrap();
            assert!(parsed >= t, "{t:?} -> {header} -> {parsed:?}");
        }
        assert_eq!(format_timeout(Duration::from_secs(30)), "30000000u");
        for bad in ["", "S", "12", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(parse_timeout(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
