//! Watches on etcd that survive the loss of a member.
//!
//! A watch always has an explicit next revision: the first revision it has
//! not delivered yet. When the gRPC stream breaks (member killed, leader
//! lost, connection reset) it re-subscribes from that revision on any
//! reachable member and drops events below it, so the consumer sees every
//! revision once, in order. It gives up with `Unavailable` only after
//! failing to re-subscribe for [`EtcdConfig::watch_retry_timeout`](super::EtcdConfig::watch_retry_timeout),
//! and ends with `Compacted` when the revision it needs is gone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::WatchOptions;
use etcd_client::proto::PbEvent;
use futures::StreamExt;
use ketch_core::store::{KeyValue, Revision, StoreError, WatchEvent, WatchStream};
use tokio::time::Instant;

use super::{EtcdStore, Failure, decode_kv};

/// etcd's event type number for deletions (puts are 0).
const EVENT_DELETE: i32 = 1;

struct Watch {
    store: EtcdStore,
    key: Vec<u8>,
    range_end: Vec<u8>,
    /// The first revision not delivered yet.
    next_revision: Revision,
    stream: Option<etcd_client::WatchStream>,
    pending: VecDeque<Arc<WatchEvent>>,
    /// Since when (re)subscribing has been failing, if it is.
    failing_since: Option<Instant>,
    last_failure: String,
    backoff: Duration,
    done: bool,
}

/// Subscribes to `[key, range_end)` from `start` and returns the stream. The
/// first subscription must succeed within the request deadline.
pub(super) async fn start(
    store: EtcdStore,
    key: Vec<u8>,
    range_end: Vec<u8>,
    start: Revision,
) -> Result<WatchStream, StoreError> {
    let mut watch = Watch {
        store,
        key,
        range_end,
        next_revision: start,
        stream: None,
        pending: VecDeque::new(),
        failing_since: None,
        last_failure: String::new(),
        backoff: Duration::from_millis(20),
        done: false,
    };
    let timeout = watch.store.inner.request_timeout;
    let deadline = Instant::now() + timeout;
    loop {
        match watch.subscribe(deadline).await {
            Ok(()) => break,
            Err(Failure::NotSent(m) | Failure::Unavailable(m))
                if Instant::now() + watch.backoff < deadline =>
            {
                tracing::debug!(failure = %m, "etcd watch could not start, retrying");
                watch.last_failure = m;
                tokio::time::sleep(watch.backoff).await;
                watch.backoff = (watch.backoff * 2).min(Duration::from_millis(500));
            }
            Err(Failure::Timeout { .. }) if !watch.last_failure.is_empty() => {
                return Err(StoreError::Unavailable(format!(
                    "etcd watch did not start within {timeout:?}; last failure: {}",
                    watch.last_failure
                )));
            }
            Err(failure) => return Err(watch.store.error("watch", failure)),
        }
    }
    watch.backoff = Duration::from_millis(20);
    Ok(futures::stream::unfold(watch, |mut watch| async move {
        let item = watch.next().await?;
        Some((item, watch))
    })
    .boxed())
}

impl Watch {
    /// Opens a gRPC watch from `next_revision`.
    async fn subscribe(&mut self, deadline: Instant) -> Result<(), Failure> {
        let options = WatchOptions::new()
            .with_range(self.range_end.clone())
            .with_start_revision(self.next_revision)
            .with_prev_key();
        let mut client = self.store.inner.watch.clone();
        let opening = client.watch(self.key.clone(), Some(options));
        match tokio::time::timeout_at(deadline, opening).await {
            Err(_) => Err(Failure::Timeout { last: None }),
            Ok(Err(err)) => Err(Failure::classify("watch", err)),
            Ok(Ok(stream)) => {
                self.stream = Some(stream);
                Ok(())
            }
        }
    }

    /// The next item of the stream, `None` once it has ended.
    async fn next(&mut self) -> Option<Result<Arc<WatchEvent>, StoreError>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            let Some(stream) = self.stream.as_mut() else {
                if let Err(err) = self.resubscribe().await {
                    self.done = true;
                    return Some(Err(err));
                }
                continue;
            };
            let failure = match stream.message().await {
                Ok(Some(response)) => {
                    let response = response.0;
                    if response.compact_revision > 0 {
                        self.done = true;
                        self.stream = None;
                        return Some(Err(StoreError::Compacted {
                            requested: self.next_revision,
                            compact_revision: response.compact_revision - 1,
                        }));
                    }
                    if let Err(err) = self.accept(response.events) {
                        self.done = true;
                        self.stream = None;
                        return Some(Err(err));
                    }
                    if response.created {
                        self.failing_since = None;
                        self.backoff = Duration::from_millis(20);
                    }
                    if !response.canceled {
                        continue;
                    }
                    format!("etcd canceled the watch: {}", response.cancel_reason)
                }
                Ok(None) => "etcd closed the watch stream".to_string(),
                Err(err) => format!("etcd watch stream failed: {err}"),
            };
            tracing::debug!(
                failure = %failure,
                next_revision = self.next_revision,
                "etcd watch broke, resubscribing"
            );
            self.stream = None;
            self.last_failure = failure;
            self.failing_since.get_or_insert_with(Instant::now);
        }
    }

    /// Queues the events not delivered yet, in order.
    fn accept(&mut self, events: Vec<PbEvent>) -> Result<(), StoreError> {
        let prefix = &self.store.inner.prefix;
        for event in events {
            let PbEvent {
                r#type,
                kv,
                prev_kv,
            } = event;
            let kv = kv.ok_or_else(|| {
                StoreError::Corrupt("etcd sent a watch event without a key-value".to_string())
            })?;
            let revision = kv.mod_revision;
            if revision < self.next_revision {
                continue;
            }
            let prev = prev_kv.map(|prev| decode_kv(prefix, prev)).transpose()?;
            let event = if r#type == EVENT_DELETE {
                let deleted = decode_kv(prefix, kv)?;
                // etcd omits the previous value when it has been compacted.
                let prev = prev.unwrap_or(KeyValue {
                    key: deleted.key,
                    value: bytes::Bytes::new(),
                    create_revision: 0,
                    mod_revision: 0,
                    version: 0,
                });
                WatchEvent::Delete { prev, revision }
            } else {
                WatchEvent::Put {
                    kv: decode_kv(prefix, kv)?,
                    prev,
                }
            };
            self.pending.push_back(Arc::new(event));
        }
        if let Some(last) = self.pending.back() {
            self.next_revision = last.revision() + 1;
        }
        Ok(())
    }

    /// Re-subscribes after a failure, backing off, until it works or the
    /// retry budget is spent.
    async fn resubscribe(&mut self) -> Result<(), StoreError> {
        let retry_timeout = self.store.inner.watch_retry_timeout;
        let request_timeout = self.store.inner.request_timeout;
        loop {
            let since = *self.failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() > retry_timeout {
                return Err(StoreError::Unavailable(format!(
                    "etcd watch lost its connection and could not resume from revision {} \
                     within {retry_timeout:?}: {}",
                    self.next_revision, self.last_failure
                )));
            }
            tokio::time::sleep(self.backoff).await;
            self.backoff = (self.backoff * 2).min(Duration::from_secs(1));
            match self.subscribe(Instant::now() + request_timeout).await {
                Ok(()) => return Ok(()),
                Err(Failure::Timeout { .. }) => {
                    self.last_failure = format!("subscribing timed out after {request_timeout:?}");
                }
                Err(failure) => {
                    self.last_failure = failure
                        .cause()
                        .unwrap_or_else(|| "subscribing failed".to_string());
                }
            }
        }
    }
}
