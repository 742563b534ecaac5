//! The reflector: lists a kind, then watches it from the list's resource
//! version, feeding a cache [`Writer`]. It relists when the watch is too old
//! ([`ApiError::Expired`]), resumes a broken watch from the last resource
//! version it saw, and backs off with jitter between failed attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::backoff::Backoff;
use super::cache::Writer;
use crate::client::into_typed;
use crate::{Api, ApiError, ListParams, Object, ObjectEvent, Resource, WatchParams};

/// What a reflector lists and watches, and how it retries.
///
/// ```
/// use ketch_core::runtime::ReflectorConfig;
/// let config = ReflectorConfig::default().labels("app=web").fields("spec.nodeName=n1").page_size(1000);
/// assert_eq!(config.page_size, Some(1000));
/// ```
#[derive(Clone, Debug)]
pub struct ReflectorConfig {
    /// Label selector of the list and the watch.
    pub label_selector: Option<String>,
    /// Field selector of the list and the watch.
    pub field_selector: Option<String>,
    /// Page size of the list; `None` lists everything in one call.
    pub page_size: Option<u32>,
    /// Delay between failed attempts.
    pub backoff: Backoff,
}

impl Default for ReflectorConfig {
    /// No selectors, pages of 500, the default [`Backoff`].
    fn default() -> Self {
        Self {
            label_selector: None,
            field_selector: None,
            page_size: Some(500),
            backoff: Backoff::default(),
        }
    }
}

impl ReflectorConfig {
    /// Sets the label selector.
    ///
    /// ```
    /// let c = ketch_core::runtime::ReflectorConfig::default().labels("app=web");
    /// assert_eq!(c.label_selector.as_deref(), Some("app=web"));
    /// ```
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.to_string());
        self
    }

    /// Sets the field selector.
    ///
    /// ```
    /// let c = ketch_core::runtime::ReflectorConfig::default().fields("spec.nodeName=n1");
    /// assert_eq!(c.field_selector.as_deref(), Some("spec.nodeName=n1"));
    /// ```
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.to_string());
        self
    }

    /// Sets the list page size (`0` lists everything in one call).
    ///
    /// ```
    /// let c = ketch_core::runtime::ReflectorConfig::default().page_size(0);
    /// assert_eq!(c.page_size, None);
    /// ```
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = (size > 0).then_some(size);
        self
    }

    /// Sets the retry backoff.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ketch_core::runtime::{Backoff, ReflectorConfig};
    /// let c = ReflectorConfig::default().backoff(Backoff::new(Duration::from_millis(5), Duration::from_secs(1)));
    /// assert_eq!(c.backoff.max(), Duration::from_secs(1));
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// Counters of a reflector, for tests and metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    lists: AtomicU64,
    watches: AtomicU64,
    expired: AtomicU64,
    errors: AtomicU64,
    events: AtomicU64,
    undecodable: AtomicU64,
}

/// A snapshot of what a reflector has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReflectorStats {
    /// Completed lists (the first one and every relist).
    pub lists: u64,
    /// Watches opened.
    pub watches: u64,
    /// Times the server answered that the resource version was too old.
    pub expired: u64,
    /// Failed list or watch attempts (each followed by a backoff).
    pub errors: u64,
    /// Watch events applied (bookmarks included).
    pub events: u64,
    /// Objects skipped because they did not decode as the informer's type.
    pub undecodable: u64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ReflectorStats {
        ReflectorStats {
            lists: self.lists.load(Ordering::Relaxed),
            watches: self.watches.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            events: self.events.load(Ordering::Relaxed),
            undecodable: self.undecodable.load(Ordering::Relaxed),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A watch shorter than this that delivered nothing counts as a failure.
const MIN_HEALTHY_WATCH: Duration = Duration::from_secs(1);

/// How one watch ended.
enum WatchEnd {
    /// The resource version is too old: relist.
    Expired,
    /// The watch failed or closed: open a new one from the last version.
    Retry {
        /// Whether to wait (backoff) before the next attempt.
        wait: bool,
    },
}

pub(crate) struct Reflector<K> {
    api: Api<K>,
    config: ReflectorConfig,
    writer: Writer<K>,
    counters: Arc<Counters>,
}

impl<K> Reflector<K>
where
    K: Resource + Object + DeserializeOwned,
{
    pub(crate) fn new(
        api: Api<K>,
        config: ReflectorConfig,
        writer: Writer<K>,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            api,
            config,
            writer,
            counters,
        }
    }

    /// Lists and watches until the task is dropped.
    pub(crate) async fn run(mut self) {
        let mut backoff = self.config.backoff.clone();
        loop {
            let resource_version = match self.list_all().await {
                Ok((items, rv)) => {
                    Counters::bump(&self.counters.lists);
                    self.writer.replace(items, rv.clone());
                    rv
                }
                Err(e) => {
                    Counters::bump(&self.counters.errors);
                    tracing::warn!(resource = K::PLURAL, error = %e, "list failed; backing off");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            let mut rv = resource_version;
            let mut progressed = false;
            loop {
                match self.watch_once(&mut rv, &mut progressed).await {
                    WatchEnd::Expired => {
                        Counters::bump(&self.counters.expired);
                        tracing::debug!(resource = K::PLURAL, %rv, "watch expired; relisting");
                        if progressed {
                            backoff.reset();
                        } else {
                            // Expired again right after a list: do not spin.
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                        break;
                    }
                    WatchEnd::Retry { wait } => {
                        if progressed {
                            backoff.reset();
                            progressed = false;
                        }
                        if wait {
                            tokio::time::sleep(backoff.next_delay()).await;
                        }
                    }
                }
            }
        }
    }

    fn list_params(&self) -> ListParams {
        ListParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            limit: self.config.page_size,
            ..ListParams::default()
        }
    }

    /// Reads every page of one consistent list.
    async fn list_all(&self) -> Result<(Vec<Arc<K>>, String), ApiError> {
        let client = self.api.client();
        let mut params = self.list_params();
        let mut items = Vec::new();
        let mut resource_version: Option<String> = None;
        loop {
            let page = client
                .list(K::PLURAL, self.api.namespace(), &params)
                .await?;
            items.reserve(page.items.len());
            for obj in page.items {
                match into_typed::<K>(obj) {
                    Ok(k) => items.push(k),
                    Err(e) => {
                        Counters::bump(&self.counters.undecodable);
                        tracing::warn!(resource = K::PLURAL, error = %e, "skipping undecodable object");
                    }
                }
            }
            if resource_version.is_none() {
                resource_version = Some(page.resource_version);
            }
            match page.continue_token {
                Some(token) if !token.is_empty() => params.continue_token = Some(token),
                _ => break,
            }
        }
        Ok((items, resource_version.unwrap_or_default()))
    }

    /// Runs one watch from `rv`, applying its events and advancing `rv`.
    async fn watch_once(&mut self, rv: &mut String, progressed: &mut bool) -> WatchEnd {
        let params = WatchParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            resource_version: Some(rv.clone()),
            bookmarks: true,
        };
        let started = Instant::now();
        let mut stream = match self
            .api
            .client()
            .watch(K::PLURAL, self.api.namespace(), &params)
            .await
        {
            Ok(stream) => stream,
            Err(ApiError::Expired(_)) => return WatchEnd::Expired,
            Err(e) => {
                Counters::bump(&self.counters.errors);
                tracing::warn!(resource = K::PLURAL, error = %e, "watch failed; backing off");
                return WatchEnd::Retry { wait: true };
            }
        };
        Counters::bump(&self.counters.watches);
        let mut delivered = false;
        while let Some(item) = stream.next().await {
            let event = match item {
                Ok(event) => event,
                Err(ApiError::Expired(_)) => return WatchEnd::Expired,
                Err(e) => {
                    Counters::bump(&self.counters.errors);
                    tracing::warn!(resource = K::PLURAL, error = %e, %rv, "watch broke; resuming");
                    return WatchEnd::Retry { wait: !delivered };
                }
            };
            delivered = true;
            *progressed = true;
            Counters::bump(&self.counters.events);
            if let ObjectEvent::Bookmark { resource_version } = &event {
                if super::cache::is_newer(rv, resource_version) {
                    rv.clone_from(resource_version);
                }
                self.writer.apply(ObjectEvent::Bookmark {
                    resource_version: resource_version.clone(),
                });
                continue;
            }
            let typed = event.map(into_typed::<K>);
            let typed = match typed {
                ObjectEvent::Added(Ok(k)) => ObjectEvent::Added(k),
                ObjectEvent::Modified(Ok(k)) => ObjectEvent::Modified(k),
                ObjectEvent::Deleted(Ok(k)) => ObjectEvent::Deleted(k),
                ObjectEvent::Added(Err(e))
                | ObjectEvent::Modified(Err(e))
                | ObjectEvent::Deleted(Err(e)) => {
                    Counters::bump(&self.counters.undecodable);
                    tracing::warn!(resource = K::PLURAL, error = %e, "skipping undecodable object");
                    continue;
                }
                ObjectEvent::Bookmark { resource_version } => {
                    ObjectEvent::Bookmark { resource_version }
                }
            };
            let obj_rv = match &typed {
                ObjectEvent::Added(k) | ObjectEvent::Modified(k) | ObjectEvent::Deleted(k) => {
                    k.meta().resource_version.clone()
                }
                ObjectEvent::Bookmark { resource_version } => Some(resource_version.clone()),
            };
            if let Some(obj_rv) = obj_rv
                && super::cache::is_newer(rv, &obj_rv)
            {
                *rv = obj_rv;
            }
            self.writer.apply(typed);
        }
        WatchEnd::Retry {
            wait: !delivered && started.elapsed() < MIN_HEALTHY_WATCH,
        }
    }
}
