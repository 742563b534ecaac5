//! Watch fan-out of [`MemoryStore`](super::MemoryStore): every watcher is a
//! cursor into the store's shared, revision-ordered event log
//! ([`EventLog`](super::events::EventLog)), which it reads without the
//! store's lock. Writers only append to the log, publish the committed
//! revision and wake the watchers that are waiting, so a slow watcher never
//! blocks a writer and costs no memory of its own beyond one log block. A
//! watcher woken once takes everything committed meanwhile, so a burst of
//! writes costs each watcher one wakeup. A watcher whose cursor falls behind
//! the retained log (history is compacted, explicitly or by the history
//! limit) ends with [`StoreError::WatchLagged`] and can resume from the
//! revision it names.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use futures::Stream;
use ketch_core::{Revision, StoreError, WatchEvent};
use parking_lot::Mutex;

use super::events::Block;

/// Most log entries of other prefixes a watcher skips per poll before it
/// yields to other tasks.
const MAX_SCAN: usize = 4096;

/// What watchers read without the store's lock, and the wakers of the
/// watchers that have caught up.
#[derive(Debug)]
pub(crate) struct WatchHub {
    /// The last committed revision.
    committed: AtomicI64,
    /// The oldest retained revision of the event log.
    log_start: AtomicI64,
    /// Bumped whenever the wakers are taken; a watcher registered in the
    /// current epoch is still registered.
    epoch: AtomicU64,
    closed: AtomicBool,
    /// True while `wakers` holds a waker: lets a commit without waiting
    /// watchers skip the lock.
    waiting: AtomicBool,
    wakers: Mutex<Wakers>,
}

#[derive(Debug, Default)]
struct Wakers {
    waiting: Vec<Waker>,
    /// The previous list, kept for its capacity.
    spare: Vec<Waker>,
}

impl WatchHub {
    pub(crate) fn new(log_start: Revision) -> Self {
        WatchHub {
            committed: AtomicI64::new(0),
            log_start: AtomicI64::new(log_start),
            epoch: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            wakers: Mutex::default(),
        }
    }

    pub(crate) fn publish_committed(&self, revision: Revision) {
        self.committed.store(revision, Ordering::SeqCst);
    }

    pub(crate) fn publish_log_start(&self, revision: Revision) {
        self.log_start.store(revision, Ordering::SeqCst);
    }

    /// Ends every watcher once it has delivered what was committed.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    /// Wakes every waiting watcher (after a commit, outside the store's lock).
    pub(crate) fn wake_all(&self) {
        // A watcher sets `waiting` before it re-reads `committed`, and the
        // committed revision is published before this load: either the
        // watcher sees the commit or this sees the watcher.
        if !self.waiting.load(Ordering::SeqCst) {
            return;
        }
        let mut wakers = {
            let mut guard = self.wakers.lock();
            if guard.waiting.is_empty() {
                return;
            }
            self.waiting.store(false, Ordering::SeqCst);
            self.epoch.fetch_add(1, Ordering::SeqCst);
            let Wakers { waiting, spare } = &mut *guard;
            std::mem::swap(waiting, spare);
            std::mem::take(spare)
        };
        for waker in wakers.drain(..) {
            waker.wake();
        }
        let mut guard = self.wakers.lock();
        if guard.spare.capacity() < wakers.capacity() {
            guard.spare = wakers;
        }
    }

    /// Registers `waker` unless `registered` says it already is in the
    /// current epoch; returns the registration.
    fn register(&self, registered: &mut Option<(u64, Waker)>, waker: &Waker) {
        let current = |registered: &Option<(u64, Waker)>, epoch: u64| matches!(registered, Some((e, w)) if *e == epoch && w.will_wake(waker));
        if current(registered, self.epoch.load(Ordering::SeqCst)) {
            return;
        }
        let mut guard = self.wakers.lock();
        let epoch = self.epoch.load(Ordering::SeqCst);
        if current(registered, epoch) {
            return;
        }
        guard.waiting.push(waker.clone());
        self.waiting.store(true, Ordering::SeqCst);
        *registered = Some((epoch, waker.clone()));
    }
}

/// One step of a watcher along the log.
enum Step {
    /// The next event under the prefix.
    Event(Arc<WatchEvent>),
    /// An entry of another prefix.
    Skipped,
    /// Nothing committed after the cursor.
    CaughtUp,
    /// The watch cannot go on.
    End(StoreError),
}

pub(crate) struct Watcher {
    hub: Arc<WatchHub>,
    /// The log block holding (or preceding) `next`.
    block: Arc<Block>,
    prefix: String,
    /// The next revision to deliver.
    next: Revision,
    /// Most events delivered in a row before yielding to other tasks.
    budget: usize,
    /// Events delivered since the watcher last returned `Pending`.
    delivered: usize,
    done: bool,
    /// The waker registered with the hub and the epoch it was registered in.
    registered: Option<(u64, Waker)>,
}

impl Watcher {
    pub(crate) fn new(
        hub: Arc<WatchHub>,
        block: Arc<Block>,
        prefix: &str,
        next: Revision,
        budget: usize,
    ) -> Self {
        Watcher {
            hub,
            block,
            prefix: prefix.to_owned(),
            next,
            budget: budget.max(1),
            delivered: 0,
            done: false,
            registered: None,
        }
    }

    fn step(&mut self) -> Step {
        if self.next < self.hub.log_start.load(Ordering::SeqCst) {
            return self.lagged();
        }
        if self.next > self.hub.committed.load(Ordering::SeqCst) {
            return Step::CaughtUp;
        }
        while !self.block.holds(self.next) {
            match self.block.next() {
                Some(block) => self.block = block,
                None => return self.lagged(),
            }
        }
        let Some(entry) = self.block.get(self.next) else {
            return Step::End(StoreError::Unavailable(format!(
                "revision {} is committed but missing from the event log",
                self.next
            )));
        };
        self.next += 1;
        if !entry.key.starts_with(self.prefix.as_str()) {
            return Step::Skipped;
        }
        match entry.event() {
            Some(event) => Step::Event(event),
            None => Step::Skipped,
        }
    }

    fn lagged(&self) -> Step {
        Step::End(StoreError::WatchLagged {
            resume_revision: self.next,
        })
    }

    /// Called when caught up: registers for the next commit. Returns true
    /// when a commit (or the close) arrived meanwhile, so the caller looks
    /// again.
    fn wait(&mut self, waker: &Waker) -> bool {
        self.hub.register(&mut self.registered, waker);
        self.next <= self.hub.committed.load(Ordering::SeqCst)
            || self.hub.closed.load(Ordering::SeqCst)
    }

    fn end(&mut self, error: StoreError) -> Poll<Option<Result<Arc<WatchEvent>, StoreError>>> {
        self.done = true;
        Poll::Ready(Some(Err(error)))
    }
}

impl Stream for Watcher {
    type Item = Result<Arc<WatchEvent>, StoreError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.delivered >= this.budget {
            // Let other tasks run between long runs of events.
            this.delivered = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut skipped = 0;
        loop {
            match this.step() {
                Step::Event(event) => {
                    this.delivered += 1;
                    return Poll::Ready(Some(Ok(event)));
                }
                Step::Skipped => {
                    skipped += 1;
                    if skipped >= MAX_SCAN {
                        this.delivered = 0;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Step::End(error) => return this.end(error),
                Step::CaughtUp => {
                    if this.hub.closed.load(Ordering::SeqCst) {
                        return this.end(StoreError::Unavailable("the store was closed".into()));
                    }
                    if !this.wait(cx.waker()) {
                        this.delivered = 0;
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}
