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
use std::task::{Context, Poll, Waker};

use futures::Stream;
use ketch_core::{Revision, StoreError, WatchEvent};

use super::Shared;
use super::state::LogEntry;

/// Most log entries a watcher scans under the lock per poll.
const MAX_SCAN: usize = 4096;

pub(crate) struct Watcher {
    pub(crate) shared: Arc<Shared>,
    pub(crate) prefix: String,
    /// The next revision to deliver.
    pub(crate) next: Revision,
    pub(crate) batch: usize,
    pub(crate) buf: VecDeque<WatchEvent>,
    pub(crate) scratch: Vec<LogEntry>,
    pub(crate) done: bool,
    /// The waker registered with the store and the epoch it was registered in.
    pub(crate) registered: Option<(u64, Waker)>,
}

impl Watcher {
    pub(crate) fn new(shared: Arc<Shared>, prefix: &str, next: Revision, batch: usize) -> Self {
        Watcher {
            shared,
            prefix: prefix.to_owned(),
            next,
            batch: batch.max(1),
            buf: VecDeque::new(),
            scratch: Vec::new(),
            done: false,
            registered: None,
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
        if this.done {
            return Poll::Ready(None);
        }
        {
            let mut inner = this.shared.inner.lock();
            let read = inner.state.read_log(
                &this.prefix,
                &mut this.next,
                &mut this.scratch,
                this.batch,
                MAX_SCAN,
            );
            if let Err(e) = read {
                this.done = true;
                return Poll::Ready(Some(Err(e)));
            }
            if this.scratch.is_empty() {
                if inner.closed {
                    this.done = true;
                    return Poll::Ready(Some(Err(StoreError::Unavailable(
                        "the store was closed".into(),
                    ))));
                }
                if this.next <= inner.state.committed {
                    // Scanned a long run of other prefixes' events: yield.
                    drop(inner);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                let epoch = inner.state.wake_epoch;
                let registered = matches!(
                    &this.registered,
                    Some((e, w)) if *e == epoch && w.will_wake(cx.waker())
                );
                if !registered {
                    inner.state.register_waker(cx.waker().clone());
                    this.registered = Some((epoch, cx.waker().clone()));
                }
                return Poll::Pending;
            }
        }
        for entry in this.scratch.drain(..) {
            if let Some(event) = entry.to_event() {
                this.buf.push_back(event);
            }
        }
        match this.buf.pop_front() {
            Some(event) => Poll::Ready(Some(Ok(event))),
            None => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}
