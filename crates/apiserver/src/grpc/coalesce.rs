//! Write coalescing under HTTP/2: [`CoalescingIo`] gathers the frames of
//! many concurrent calls into one socket write.
//!
//! h2 flushes its codec before it buffers the next frame whenever a DATA
//! frame is large enough to be sent by reference (256 bytes with vectored
//! I/O, 1 KiB without), so with many calls in flight each object crossed the
//! socket in its own `writev` — one system call and one loopback wake-up per
//! frame. `CoalescingIo` accepts writes into a buffer and, when asked to
//! flush, first yields once as long as the connection keeps adding bytes, so
//! every frame the connection can produce in the meantime joins the same
//! write. A flush that finds nothing new since the last yield (or a full
//! buffer) writes at once, so a lone call waits for no timer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered before a flush writes without yielding first.
const HIGH_WATER: usize = 64 * 1024;

/// An I/O stream whose writes are gathered and sent in batches; reads pass
/// through.
#[derive(Debug)]
pub(crate) struct CoalescingIo<T> {
    inner: T,
    pending: Vec<u8>,
    /// How much of `pending` is already written to `inner`.
    written: usize,
    /// Length of `pending` when the last flush yielded; a flush that finds
    /// no more than this writes.
    yielded_at: Option<usize>,
}

impl<T> CoalescingIo<T> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
            yielded_at: None,
        }
    }
}

impl<T: AsyncWrite + Unpin> CoalescingIo<T> {
    /// Writes every gathered byte to the inner stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        self.yielded_at = None;
        Poll::Ready(Ok(()))
    }

    /// True when a flush should give the connection one more turn to add
    /// frames before writing.
    fn should_yield(&self) -> bool {
        let len = self.pending.len();
        len > 0 && len < HIGH_WATER && self.yielded_at.is_none_or(|at| len > at)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescingIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.len() >= HIGH_WATER {
            ready!(self.poll_drain(cx))?;
        }
        self.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.should_yield() {
            // Rescheduled behind the tasks that are ready now, whose frames
            // then join this write.
            self.yielded_at = Some(self.pending.len());
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_arrive_in_order_after_a_flush() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut io = CoalescingIo::new(a);
        io.write_all(b"hello ").await.unwrap();
        io.write_all(b"world").await.unwrap();
        io.flush().await.unwrap();
        let mut got = [0u8; 11];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
    }

    #[tokio::test]
    async fn nothing_is_sent_before_a_flush_below_the_high_water_mark() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut io = CoalescingIo::new(a);
        io.write_all(b"gathered").await.unwrap();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut got = [0u8; 8];
        let mut early = ReadBuf::new(&mut got);
        assert!(Pin::new(&mut b).poll_read(&mut cx, &mut early).is_pending());
        io.flush().await.unwrap();
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"gathered");
    }

    #[tokio::test]
    async fn more_than_the_high_water_mark_is_written_through_a_small_pipe() {
        let (a, mut b) = tokio::io::duplex(4096);
        let data: Vec<u8> = (0..(3 * HIGH_WATER)).map(|i| i as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            let mut io = CoalescingIo::new(a);
            io.write_all(&data).await.unwrap();
            io.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_flush_yields_once_then_writes_when_nothing_was_added() {
        let (a, _b) = tokio::io::duplex(1 << 20);
        let mut io = CoalescingIo::new(a);
        io.write_all(b"x").await.unwrap();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_pending());
        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_ready());
        assert!(io.pending.is_empty());
    }
}
