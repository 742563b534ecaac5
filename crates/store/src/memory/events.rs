//! The store's revision-ordered event log, shared with watchers without the
//! store's lock.
//!
//! Entries live in fixed-size blocks. The store appends under its lock and
//! owns the blocks; each block links to the next one weakly. A watcher holds
//! one block (strongly) and reads its slots without any lock, so a thousand
//! watchers never contend with writers or with each other, and a watcher
//! that is never polled pins at most one block: compaction drops the blocks
//! behind it and it then ends with `WatchLagged`.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, Weak};

use ketch_core::Revision;

use super::state::LogEntry;

/// Entries per block.
pub(crate) const BLOCK_LEN: usize = 256;

/// A run of [`BLOCK_LEN`] consecutive revisions starting at `first`; each
/// slot is written once, in revision order.
#[derive(Debug)]
pub(crate) struct Block {
    first: Revision,
    slots: Box<[OnceLock<LogEntry>]>,
    next: OnceLock<Weak<Block>>,
}

impl Block {
    fn new(first: Revision) -> Arc<Block> {
        Arc::new(Block {
            first,
            slots: (0..BLOCK_LEN).map(|_| OnceLock::new()).collect(),
            next: OnceLock::new(),
        })
    }

    /// Empties the block for reuse.
    fn clear(&mut self) {
        for slot in self.slots.iter_mut() {
            slot.take();
        }
        self.next = OnceLock::new();
    }

    /// The first revision after this block.
    pub(crate) fn end(&self) -> Revision {
        self.first + BLOCK_LEN as Revision
    }

    /// True when `revision` falls into this block.
    pub(crate) fn holds(&self, revision: Revision) -> bool {
        self.first <= revision && revision < self.end()
    }

    /// The entry of `revision`, once written (`None` outside the block).
    pub(crate) fn get(&self, revision: Revision) -> Option<&LogEntry> {
        let index = usize::try_from(revision.checked_sub(self.first)?).ok()?;
        self.slots.get(index)?.get()
    }

    /// The following block, while the store still retains it.
    pub(crate) fn next(&self) -> Option<Arc<Block>> {
        self.next.get().and_then(Weak::upgrade)
    }
}

/// The retained entries, revisions `start..next`; the block holding `next`
/// always exists, so a watcher can be placed at the next write.
#[derive(Debug)]
pub(crate) struct EventLog {
    blocks: VecDeque<Arc<Block>>,
    start: Revision,
    next: Revision,
    /// A dropped block no watcher held, emptied for reuse: appending then
    /// allocates (and faults in) no new memory.
    spare: Option<Arc<Block>>,
}

impl EventLog {
    /// An empty log whose first entry will be `first`.
    pub(crate) fn new(first: Revision) -> Self {
        EventLog {
            blocks: VecDeque::from([Block::new(first)]),
            start: first,
            next: first,
            spare: None,
        }
    }

    /// The oldest retained revision.
    pub(crate) fn start(&self) -> Revision {
        self.start
    }

    /// How many entries are retained.
    pub(crate) fn len(&self) -> usize {
        (self.next - self.start) as usize
    }

    /// Appends the entry of the next revision. An entry of any other
    /// revision is a bug of the caller and is refused: the error is its
    /// revision.
    pub(crate) fn push(&mut self, entry: LogEntry) -> Result<(), Revision> {
        let revision = entry.revision();
        if revision != self.next {
            return Err(revision);
        }
        let Some(tail) = self.blocks.back() else {
            return Err(revision);
        };
        let index = (self.next - tail.first) as usize;
        let Some(slot) = tail.slots.get(index) else {
            return Err(revision);
        };
        slot.set(entry).map_err(|_| revision)?;
        self.next += 1;
        if self.next == tail.end() {
            let block = self.new_block(self.next);
            if let Some(tail) = self.blocks.back() {
                // Only this store links its tail, once.
                let _ = tail.next.set(Arc::downgrade(&block));
            }
            self.blocks.push_back(block);
        }
        Ok(())
    }

    /// The retained entry of `revision`.
    pub(crate) fn get(&self, revision: Revision) -> Option<&LogEntry> {
        if revision < self.start {
            return None;
        }
        self.find(revision)?.get(revision)
    }

    /// The block holding `revision` (at least the retained start), or the
    /// tail block.
    fn find(&self, revision: Revision) -> Option<&Arc<Block>> {
        let first = self.blocks.front().map_or(self.start, |b| b.first);
        let index = (revision.max(first) - first) as usize / BLOCK_LEN;
        self.blocks.get(index).or_else(|| self.blocks.back())
    }

    /// The block holding `revision` (at least the retained start); the tail
    /// block for revisions not yet written.
    pub(crate) fn block_for(&self, revision: Revision) -> Arc<Block> {
        self.find(revision)
            .cloned()
            .unwrap_or_else(|| Block::new(self.next))
    }

    /// Forgets entries below `revision` (at most up to the next write) and
    /// drops the blocks that hold nothing retained.
    pub(crate) fn truncate_front(&mut self, revision: Revision) {
        self.start = self.start.max(revision.min(self.next));
        while self.blocks.len() > 1 && self.blocks.front().is_some_and(|b| b.end() <= self.start) {
            if let Some(mut block) = self.blocks.pop_front()
                && let Some(unshared) = Arc::get_mut(&mut block)
            {
                unshared.clear();
                self.spare = Some(block);
            }
        }
    }

    /// An empty block starting at `first`, reusing the spare one if any.
    fn new_block(&mut self, first: Revision) -> Arc<Block> {
        match self.spare.take() {
            Some(mut block) => match Arc::get_mut(&mut block) {
                Some(unshared) => {
                    unshared.first = first;
                    block
                }
                None => Block::new(first),
            },
            None => Block::new(first),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::state::Rec;

    fn entry(revision: Revision) -> LogEntry {
        LogEntry::new(
            Arc::from("/k"),
            Rec {
                value: Some(bytes::Bytes::from_static(b"v")),
                create_revision: 1,
                mod_revision: revision,
                version: revision,
            },
            None,
        )
    }

    #[test]
    fn entries_span_blocks_and_link_forward() {
        let mut log = EventLog::new(1);
        let first = log.block_for(1);
        for r in 1..=(2 * BLOCK_LEN as Revision + 3) {
            log.push(entry(r)).unwrap();
        }
        assert_eq!(log.len(), 2 * BLOCK_LEN + 3);
        assert_eq!(log.get(300).map(LogEntry::revision), Some(300));
        let second = first.next().unwrap();
        assert!(second.holds(BLOCK_LEN as Revision + 1));
        assert_eq!(second.get(260).map(LogEntry::revision), Some(260));
        assert!(first.get(260).is_none());
    }

    #[test]
    fn an_entry_out_of_order_is_refused() {
        let mut log = EventLog::new(5);
        assert!(log.push(entry(6)).is_err());
        log.push(entry(5)).unwrap();
        assert!(log.push(entry(5)).is_err());
    }

    #[test]
    fn a_dropped_block_nobody_holds_is_reused() {
        let mut log = EventLog::new(1);
        let block = BLOCK_LEN as Revision;
        for r in 1..=2 * block {
            log.push(entry(r)).unwrap();
        }
        log.truncate_front(block + 1);
        assert!(log.spare.is_some());
        for r in 2 * block + 1..=3 * block {
            log.push(entry(r)).unwrap();
        }
        assert!(log.spare.is_none(), "the spare block was reused");
        let reused = log.block_for(3 * block + 1);
        assert!(reused.holds(3 * block + 1));
        assert!(
            reused.get(3 * block + 1).is_none(),
            "reused block starts empty"
        );
        log.push(entry(3 * block + 1)).unwrap();
        assert_eq!(
            log.get(3 * block + 1).map(LogEntry::revision),
            Some(3 * block + 1)
        );
    }

    #[test]
    fn truncation_drops_whole_blocks_and_breaks_their_links() {
        let mut log = EventLog::new(1);
        let first = log.block_for(1);
        for r in 1..=(3 * BLOCK_LEN as Revision) {
            log.push(entry(r)).unwrap();
        }
        let weak_second = Arc::downgrade(&first.next().unwrap());
        log.truncate_front(2 * BLOCK_LEN as Revision + 10);
        assert!(log.get(2 * BLOCK_LEN as Revision).is_none());
        assert!(log.get(2 * BLOCK_LEN as Revision + 10).is_some());
        assert!(weak_second.upgrade().is_none(), "dropped block is freed");
        assert!(
            log.spare.is_none(),
            "a block still referenced is not reused"
        );
        // The tail block for the next write always exists.
        let tail = log.block_for(3 * BLOCK_LEN as Revision + 1);
        assert!(tail.holds(3 * BLOCK_LEN as Revision + 1));
    }
}
