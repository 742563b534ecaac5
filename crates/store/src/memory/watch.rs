//! Watch fan-out of [`MemoryStore`](super::MemoryStore): every watcher is a
//! cursor into the store's shared, revision-ordered event log. Writers only
//! append to the log and wake the watchers that are waiting, so a slow
//! watcher never blocks a writer and costs no memory of its own beyond one
//! batch. A watcher whose cursor falls behind the retained log (history is
//! compacted, explicitly or by the history limit) ends with
//! [`StoreError::WatchLagged`] and can resume from the revision it names.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

use futures::Stream;
use ketch_core::{Revision, StoreError, WatchEvent};

use super::Shared;
use super::state::WatchHints;

/// Most log entries a watcher scans under the lock per poll.
const MAX_SCAN: usize = 4096;

pub(crate) struct Watcher {
    pub(crate) shared: Arc<Shared>,
    hints: Arc<WatchHints>,
    pub(crate) prefix: String,
    /// The next revision to deliver.
    pub(crate) next: Revision,
    pub(crate) batch: usize,
    pub(crate) buf: VecDeque<WatchEvent>,
    pub(crate) done: bool,
    /// The error that ends the stream once the buffered events are out.
    end: Option<StoreError>,
    /// The waker registered with the store and the epoch it was registered in.
    pub(crate) registered: Option<(u64, Waker)>,
}

impl Watcher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        hints: Arc<WatchHints>,
        prefix: &str,
        next: Revision,
        batch: usize,
    ) -> Self {
        Watcher {
            shared,
            hints,
            prefix: prefix.to_owned(),
            next,
            batch: batch.max(1),
            buf: VecDeque::new(),
            done: false,
            end: None,
            registered: None,
        }
    }

    /// True when this watcher's waker is still registered (no commit since)
    /// and nothing new is committed: then there is no need to take the lock.
    fn idle(&self, waker: &Waker) -> bool {
        match &self.registered {
            Some((epoch, w)) => {
                self.hints.wake_epoch.load(Ordering::SeqCst) == *epoch
                    && self.hints.committed.load(Ordering::SeqCst) < self.next
                    && w.will_wake(waker)
            }
            None => false,
        }
    }
}

impl Stream for Watcher {
    type Item = Result<WatchEvent, StoreError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(event) = this.buf.pop_front() {
            return Poll::Ready(Some(Ok(event)));
        }
        if let Some(e) = this.end.take() {
            this.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        if this.idle(cx.waker()) {
            return Poll::Pending;
        }
        let mut inner = this.shared.inner.lock();
        let read = inner.state.read_log(
            &this.prefix,
            &mut this.next,
            &mut this.buf,
            this.batch,
            MAX_SCAN,
        );
        if let Err(e) = read {
            this.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        let caught_up = this.next > inner.state.committed;
        if caught_up {
            if inner.closed {
                this.end = Some(StoreError::Unavailable("the store was closed".into()));
            } else {
                // Register now, so that the next poll after this batch can
                // tell it is idle without the lock.
                let epoch = inner.state.wake_epoch;
                let registered = matches!(
                    &this.registered,
                    Some((e, w)) if *e == epoch && w.will_wake(cx.waker())
                );
                if !registered {
                    inner.state.register_waker(cx.waker().clone());
                    this.registered = Some((epoch, cx.waker().clone()));
                }
            }
        }
        drop(inner);
        if let Some(event) = this.buf.pop_front() {
            return Poll::Ready(Some(Ok(event)));
        }
        if let Some(e) = this.end.take() {
            this.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        if !caught_up {
            // Scanned a long run of other prefixes' events: yield.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
