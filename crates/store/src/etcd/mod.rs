//! [`EtcdStore`]: the [`Store`] on a real etcd cluster (feature `etcd`).
//!
//! The mapping is thin because the `Store` semantics are etcd's:
//!
//! | `Store` | etcd |
//! |---|---|
//! | key `k` | key `{prefix}{k}` (prefix from [`EtcdConfig::prefix`]) |
//! | `get` | linearizable range on the key |
//! | `list` | range over the key prefix at one revision; the continue token carries that revision |
//! | `create` | txn: if `create_revision == 0` then put |
//! | `update` | txn: if `mod_revision == expected` and the key exists then put, else read the current revision |
//! | `delete` | delete with previous value, or the same txn shape when an expected revision is given |
//! | `watch` | watch with previous values from an explicit start revision, resumed after failures |
//! | `compact` | compaction (idempotent); reads and watches below it fail [`StoreError::Compacted`] |
//!
//! Every operation carries a deadline ([`EtcdConfig::request_timeout`]).
//! Failures a caller should retry (lost member, leader change, no quorum,
//! deadline) become [`StoreError::Unavailable`] with the cause in the message.
//! Reads, and writes that provably never left this process (the connection to
//! a member could not be made), are retried on another member within the
//! deadline. A watch that loses its member re-subscribes from the revision
//! after the last one it delivered, so its consumer sees no gap and no
//! duplicate.
//!
//! ```no_run
//! use bytes::Bytes;
//! use ketch_core::store::Store;
//! use ketch_store::etcd::{EtcdConfig, EtcdStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = EtcdStore::connect(
//!     EtcdConfig::new(["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"])
//!         .prefix("/ketch/prod/"),
//! )
//! .await?;
//! let kv = store.create("/registry/pods/default/web-0", Bytes::from_static(b"{}")).await?;
//! assert_eq!(kv.version, 1);
//! # Ok(())
//! # }
//! ```
//!
//! [`testing`] starts throwaway etcd processes for tests and benchmarks.

mod config;
pub mod testing;
mod watch;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::proto::{PbKeyValue, PbTxnOpResponse};
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, KvClient, PutOptions,
    Txn, TxnOp, WatchClient, WatchOptions,
};
use ketch_core::store::{
    KeyValue, ListOptions, ListPage, Revision, Store, StoreError, WatchStream,
};
use tokio::time::Instant;

pub use config::{ConnectError, DEFAULT_PREFIX, EtcdConfig, EtcdTls};

/// Largest etcd response decoded (the limit Kubernetes' etcd client uses).
const MAX_RESPONSE_BYTES: usize = i32::MAX as usize;

/// The etcd-client crate `EtcdStore` is built on, for callers that need the
/// raw client (see [`EtcdStore::client`]).
pub use etcd_client;

/// A [`Store`] kept in an etcd cluster under a key prefix.
///
/// Cheap to clone: clones share one connection pool to the members.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    kv: KvClient,
    watch: WatchClient,
    /// Normalized prefix, ending in `/`.
    prefix: String,
    request_timeout: Duration,
    watch_retry_timeout: Duration,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("prefix", &self.inner.prefix)
            .field("request_timeout", &self.inner.request_timeout)
            .finish()
    }
}

/// How one etcd call failed, before it becomes a [`StoreError`].
#[derive(Debug)]
enum Failure {
    /// The revision asked for has been compacted.
    Compacted,
    /// The revision asked for is newer than the store.
    FutureRevision,
    /// etcd rejected the request itself.
    Invalid(String),
    /// No connection to a member could be made: the request was never sent.
    NotSent(String),
    /// Anything else; the request may or may not have been applied.
    Unavailable(String),
    /// The deadline passed; `last` is the last failure seen, if any.
    Timeout { last: Option<String> },
}

impl Failure {
    fn classify(op: &str, err: etcd_client::Error) -> Failure {
        use etcd_client::Error as E;
        use tonic::Code;
        match err {
            E::GRpcStatus(status) => {
                let message = status.message();
                match status.code() {
                    Code::OutOfRange if message.contains("compacted") => Failure::Compacted,
                    Code::OutOfRange if message.contains("future revision") => {
                        Failure::FutureRevision
                    }
                    Code::InvalidArgument => {
                        Failure::Invalid(format!("etcd {op} rejected: {message}"))
                    }
                    Code::Unavailable if is_connect_failure(&status) => {
                        Failure::NotSent(format!("etcd {op}: {status}"))
                    }
                    _ => Failure::Unavailable(format!("etcd {op}: {status}")),
                }
            }
            E::TransportError(e) => Failure::NotSent(format!("etcd {op}: transport error: {e}")),
            other => Failure::Unavailable(format!("etcd {op}: {other}")),
        }
    }

    /// Whether another attempt may be made: reads always on transient
    /// failures, writes only when the request never reached a member.
    fn retryable(&self, idempotent: bool) -> bool {
        match self {
            Failure::NotSent(_) => true,
            Failure::Unavailable(_) => idempotent,
            _ => false,
        }
    }

    fn cause(&self) -> Option<String> {
        match self {
            Failure::NotSent(m) | Failure::Unavailable(m) | Failure::Invalid(m) => Some(m.clone()),
            Failure::Timeout { last } => last.clone(),
            Failure::Compacted | Failure::FutureRevision => None,
        }
    }

    /// The error for failures that need no extra lookup.
    fn into_store_error(self, op: &str, timeout: Duration) -> StoreError {
        match self {
            Failure::Invalid(m) => StoreError::InvalidArgument(m),
            Failure::NotSent(m) | Failure::Unavailable(m) => StoreError::Unavailable(m),
            Failure::Timeout { last } => StoreError::Unavailable(match last {
                Some(last) => {
                    format!("etcd {op} timed out after {timeout:?}; last failure: {last}")
                }
                None => format!("etcd {op} timed out after {timeout:?}"),
            }),
            Failure::Compacted => {
                StoreError::Unavailable(format!("etcd {op}: unexpected compaction error"))
            }
            Failure::FutureRevision => {
                StoreError::Unavailable(format!("etcd {op}: unexpected future-revision error"))
            }
        }
    }
}

/// True when a status says the connection to the member could not be made.
fn is_connect_failure(status: &tonic::Status) -> bool {
    let text = format!("{status:?}");
    text.contains("tcp connect error")
        || text.contains("error trying to connect")
        || text.contains("Connection refused")
}

impl EtcdStore {
    /// Connects to the cluster described by `config` and checks that it
    /// answers a linearizable read within [`EtcdConfig::connect_timeout`].
    ///
    /// Fails with a [`ConnectError`] naming the problem: no endpoints, a
    /// malformed endpoint or prefix, unusable TLS material, refused
    /// credentials, or an unreachable cluster.
    ///
    /// ```no_run
    /// use ketch_store::etcd::{EtcdConfig, EtcdStore};
    ///
    /// # async fn run() -> Result<(), ketch_store::etcd::ConnectError> {
    /// let store = EtcdStore::connect(EtcdConfig::new(["http://127.0.0.1:2379"])).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(config: EtcdConfig) -> Result<EtcdStore, ConnectError> {
        let prefix = config.validate()?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_require_leader(true)
            .with_keep_alive_while_idle(false);
        if let Some((interval, timeout)) = config.keep_alive {
            options = options.with_keep_alive(interval, timeout);
        }
        if let Some((user, password)) = &config.credentials {
            options = options
                .with_user(user.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        if let Some(tls) = &config.tls {
            options = options.with_tls(tls_options(tls)?);
        }
        let unreachable = |cause: String| ConnectError::Unreachable {
            endpoints: config.endpoints.clone(),
            cause,
        };
        let connecting = Client::connect(&config.endpoints, Some(options));
        let client = match tokio::time::timeout(config.connect_timeout, connecting).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {:?}",
                    config.connect_timeout
                )));
            }
            Ok(Err(err)) => return Err(connect_failure(err, &unreachable)),
            Ok(Ok(client)) => client,
        };
        let store = EtcdStore {
            inner: Arc::new(Inner {
                // Large lists and watch batches exceed the client's 4 MiB
                // default; accept what etcd sends, as Kubernetes does.
                kv: client
                    .kv_client()
                    .max_decoding_message_size(MAX_RESPONSE_BYTES),
                watch: client
                    .watch_client()
                    .max_decoding_message_size(MAX_RESPONSE_BYTES),
                client,
                prefix,
                request_timeout: config.request_timeout,
                watch_retry_timeout: config.watch_retry_timeout,
            }),
        };
        // A linearizable read proves a reachable quorum and working credentials.
        let probe = store.current_revision_within(config.connect_timeout).await;
        match probe {
            Ok(_) => Ok(store),
            Err(failure) => {
                let cause = failure
                    .cause()
                    .unwrap_or_else(|| "the cluster did not answer".to_string());
                if is_auth_message(&cause) {
                    Err(ConnectError::AuthFailed(cause))
                } else {
                    Err(unreachable(cause))
                }
            }
        }
    }

    /// The normalized key prefix (ending in `/`) every key is stored under.
    ///
    /// ```no_run
    /// # async fn run(store: ketch_store::etcd::EtcdStore) {
    /// assert!(store.prefix().ends_with('/'));
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The underlying etcd client, for operations the [`Store`] trait does not
    /// cover (cluster membership, maintenance). Writes made through it under
    /// [`EtcdStore::prefix`] are seen by this store like any other.
    ///
    /// ```no_run
    /// # async fn run(store: ketch_store::etcd::EtcdStore) -> Result<(), ketch_store::etcd::etcd_client::Error> {
    /// let status = store.client().clone().status().await?;
    /// println!("etcd {}", status.version());
    /// # Ok(())
    /// # }
    /// ```
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    fn kv(&self) -> KvClient {
        self.inner.kv.clone()
    }

    /// Refuses empty keys.
    fn check_key(key: &str) -> Result<(), StoreError> {
        if key.is_empty() {
            return Err(StoreError::InvalidArgument("the key is empty".to_string()));
        }
        Ok(())
    }

    /// The etcd key prefix of store prefix `prefix` (which may be empty).
    fn full_prefix(&self, prefix: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.inner.prefix.len() + prefix.len());
        full.extend_from_slice(self.inner.prefix.as_bytes());
        full.extend_from_slice(prefix.as_bytes());
        full
    }

    /// A key in this store's prefix that the store never writes (store keys
    /// are non-empty, this one is the bare prefix), for reads that only want
    /// a response header.
    fn probe_key(&self) -> Vec<u8> {
        self.inner.prefix.as_bytes().to_vec()
    }

    /// Runs `attempt` until it succeeds, fails for good, or the deadline
    /// passes. Idempotent calls are retried on any transient failure, others
    /// only when they never reached a member.
    async fn call<T, F, Fut>(&self, op: &str, idempotent: bool, attempt: F) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.call_within(op, idempotent, self.inner.request_timeout, attempt)
            .await
    }

    /// [`EtcdStore::call`] with an explicit deadline.
    async fn call_within<T, F, Fut>(
        &self,
        op: &str,
        idempotent: bool,
        timeout: Duration,
        mut attempt: F,
    ) -> Result<T, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = Instant::now() + timeout;
        let mut backoff = Duration::from_millis(10);
        let mut last = None;
        loop {
            match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => {
                    let failure = Failure::classify(op, err);
                    if !failure.retryable(idempotent) || Instant::now() + backoff >= deadline {
                        return Err(failure);
                    }
                    tracing::debug!(op, failure = ?failure, "etcd call failed, retrying");
                    last = failure.cause();
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Err(_) => return Err(Failure::Timeout { last }),
            }
        }
    }

    fn error(&self, op: &str, failure: Failure) -> StoreError {
        failure.into_store_error(op, self.inner.request_timeout)
    }

    /// Turns an etcd key-value under the prefix into a store key-value.
    fn decode(&self, kv: PbKeyValue) -> Result<KeyValue, StoreError> {
        decode_kv(&self.inner.prefix, kv)
    }

    async fn current_revision_raw(&self) -> Result<Revision, Failure> {
        self.current_revision_within(self.inner.request_timeout)
            .await
    }

    async fn current_revision_within(&self, timeout: Duration) -> Result<Revision, Failure> {
        let key = self.probe_key();
        let response = self
            .call_within("read revision", true, timeout, || {
                let mut kv = self.kv();
                let key = key.clone();
                async move { kv.get(key, Some(GetOptions::new().with_count_only())).await }
            })
            .await?;
        header_revision(response.0.header.as_ref())
    }

    /// The oldest revision etcd still keeps, found by watching from revision 1
    /// a key the store never writes: etcd cancels such a watch with its
    /// compaction revision. `None` when etcd does not say in time.
    async fn oldest_retained_revision(&self) -> Option<Revision> {
        let probe = async {
            let mut watch = self.inner.watch.clone();
            let mut stream = watch
                .watch(
                    self.probe_key(),
                    Some(WatchOptions::new().with_start_revision(1)),
                )
                .await
                .ok()?;
            while let Ok(Some(response)) = stream.message().await {
                if response.compact_revision() > 0 {
                    return Some(response.compact_revision());
                }
                if response.canceled() {
                    return None;
                }
            }
            None
        };
        tokio::time::timeout(self.inner.request_timeout, probe)
            .await
            .ok()
            .flatten()
    }

    /// The `Compacted` error for a request at `requested`.
    async fn compacted(&self, requested: Revision) -> StoreError {
        let oldest = self
            .oldest_retained_revision()
            .await
            .unwrap_or(requested + 1);
        StoreError::Compacted {
            requested,
            compact_revision: oldest - 1,
        }
    }

    /// The `FutureRevision` error for a request at `requested`.
    async fn future(&self, requested: Revision) -> StoreError {
        match self.current_revision_raw().await {
            Ok(current) => StoreError::FutureRevision { requested, current },
            Err(failure) => self.error("read revision", failure),
        }
    }

    /// Fails `Compacted` when `revision` is no longer readable.
    async fn check_retained(&self, revision: Revision) -> Result<(), StoreError> {
        let key = self.probe_key();
        let result = self
            .call("read at revision", true, || {
                let mut kv = self.kv();
                let key = key.clone();
                async move {
                    kv.get(
                        key,
                        Some(GetOptions::new().with_count_only().with_revision(revision)),
                    )
                    .await
                }
            })
            .await;
        match result {
            Ok(_) | Err(Failure::FutureRevision) => Ok(()),
            Err(Failure::Compacted) => Err(self.compacted(revision).await),
            Err(failure) => Err(self.error("watch", failure)),
        }
    }
}

/// TLS material turned into tonic's client configuration.
fn tls_options(tls: &EtcdTls) -> Result<etcd_client::TlsOptions, ConnectError> {
    if !pem_has_block(&tls.ca_pem, "CERTIFICATE") {
        return Err(ConnectError::InvalidTls(
            "the CA is not a PEM certificate".to_string(),
        ));
    }
    let mut options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(&tls.ca_pem));
    if let Some((cert, key)) = &tls.identity {
        if !pem_has_block(cert, "CERTIFICATE") {
            return Err(ConnectError::InvalidTls(
                "the client certificate is not a PEM certificate".to_string(),
            ));
        }
        if !pem_has_block(key, "PRIVATE KEY") {
            return Err(ConnectError::InvalidTls(
                "the client key is not a PEM private key".to_string(),
            ));
        }
        options = options.identity(etcd_client::Identity::from_pem(cert, key));
    }
    if let Some(name) = &tls.domain_name {
        options = options.domain_name(name.clone());
    }
    Ok(options)
}

/// Whether `pem` holds a `-----BEGIN ...{label}-----` block.
fn pem_has_block(pem: &[u8], label: &str) -> bool {
    let Ok(text) = std::str::from_utf8(pem) else {
        return false;
    };
    text.lines().any(|line| {
        line.starts_with("-----BEGIN ") && line.trim_end().ends_with(&format!("{label}-----"))
    })
}

fn is_auth_message(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("authentication failed")
        || lower.contains("permission denied")
        || lower.contains("invalid auth token")
        || lower.contains("user name is empty")
        || lower.contains("unauthenticated")
}

/// A failure of `Client::connect` as a [`ConnectError`].
fn connect_failure(
    err: etcd_client::Error,
    unreachable: &dyn Fn(String) -> ConnectError,
) -> ConnectError {
    use etcd_client::Error as E;
    match &err {
        E::InvalidArgs(_) | E::InvalidUri(_) => ConnectError::InvalidOption {
            option: "endpoints",
            reason: err.to_string(),
        },
        E::GRpcStatus(status) if is_auth_message(status.message()) => {
            ConnectError::AuthFailed(status.message().to_string())
        }
        E::TransportError(e) if format!("{e:?}").to_ascii_lowercase().contains("tls") => {
            ConnectError::InvalidTls(err.to_string())
        }
        _ => unreachable(err.to_string()),
    }
}

fn header_revision(
    header: Option<&etcd_client::proto::PbResponseHeader>,
) -> Result<Revision, Failure> {
    header
        .map(|h| h.revision)
        .ok_or_else(|| Failure::Unavailable("etcd answered without a response header".to_string()))
}

/// Turns an etcd key-value under `prefix` into a store key-value; keys
/// outside the prefix or not UTF-8 are reported as corrupt data.
fn decode_kv(prefix: &str, kv: PbKeyValue) -> Result<KeyValue, StoreError> {
    let PbKeyValue {
        mut key,
        value,
        create_revision,
        mod_revision,
        version,
        ..
    } = kv;
    if !key.starts_with(prefix.as_bytes()) {
        return Err(StoreError::Corrupt(format!(
            "etcd returned key {:?} outside the prefix {prefix:?}",
            String::from_utf8_lossy(&key)
        )));
    }
    key.drain(..prefix.len());
    let key = String::from_utf8(key).map_err(|e| {
        StoreError::Corrupt(format!(
            "etcd key {:?} under the prefix is not UTF-8",
            String::from_utf8_lossy(e.as_bytes())
        ))
    })?;
    Ok(KeyValue {
        key,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
        version,
    })
}

/// The first key after every key that starts with `prefix` (etcd's range end
/// for a prefix); `\0` means "to the end of the keyspace".
fn prefix_range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// A continue token: the revision of the paged list and the last key returned.
fn encode_continue(revision: Revision, last_key: &str) -> String {
    format!("{revision}:{last_key}")
}

fn decode_continue(token: &str) -> Result<(Revision, &str), StoreError> {
    let bad = || StoreError::InvalidArgument(format!("malformed continue token {token:?}"));
    let (revision, key) = token.split_once(':').ok_or_else(bad)?;
    let revision: Revision = revision.parse().map_err(|_| bad())?;
    if revision <= 0 || key.is_empty() {
        return Err(bad());
    }
    Ok((revision, key))
}

/// The first response of a txn's branch.
fn first_response(response: &mut etcd_client::TxnResponse) -> Option<PbTxnOpResponse> {
    response
        .0
        .responses
        .first_mut()
        .and_then(|r| r.response.take())
}

fn malformed(op: &str) -> StoreError {
    StoreError::Unavailable(format!("etcd {op}: malformed transaction response"))
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Self::check_key(key)?;
        let mut response = self
            .call("get", true, || {
                let mut kv = self.kv();
                let full = self.full_prefix(key);
                async move { kv.get(full, None).await }
            })
            .await
            .map_err(|f| self.error("get", f))?;
        match response.0.kvs.pop() {
            Some(kv) => Ok(Some(self.decode(kv)?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListPage, StoreError> {
        let base = self.full_prefix(prefix);
        let range_end = prefix_range_end(&base);
        let requested = options.revision.unwrap_or(0);
        if requested < 0 {
            return Err(StoreError::InvalidArgument(format!(
                "negative revision {requested}"
            )));
        }
        let (start, revision) = match &options.continue_token {
            Some(token) => {
                let (revision, last_key) = decode_continue(token)?;
                if !last_key.starts_with(prefix) {
                    return Err(StoreError::InvalidArgument(format!(
                        "continue token {token:?} does not belong to a list of {prefix:?}"
                    )));
                }
                if requested != 0 && requested != revision {
                    return Err(StoreError::InvalidArgument(format!(
                        "continue token is for revision {revision}, not {requested}"
                    )));
                }
                let mut start = self.full_prefix(last_key);
                start.push(0);
                (start, revision)
            }
            None => (base, requested),
        };
        let limit = options.limit.unwrap_or(0);
        let mut get_options = GetOptions::new()
            .with_range(range_end)
            .with_revision(revision);
        if limit > 0 {
            get_options = get_options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let result = self
            .call("list", true, || {
                let mut kv = self.kv();
                let (start, get_options) = (start.clone(), get_options.clone());
                async move { kv.get(start, Some(get_options)).await }
            })
            .await;
        let response = match result {
            Ok(response) => response,
            Err(Failure::Compacted) => return Err(self.compacted(revision).await),
            Err(Failure::FutureRevision) => return Err(self.future(revision).await),
            Err(failure) => return Err(self.error("list", failure)),
        };
        let response = response.0;
        let page_revision = if revision > 0 {
            revision
        } else {
            header_revision(response.header.as_ref()).map_err(|f| self.error("list", f))?
        };
        let total = response.count;
        let more = response.more;
        let items = response
            .kvs
            .into_iter()
            .map(|kv| self.decode(kv))
            .collect::<Result<Vec<_>, _>>()?;
        let remaining = u64::try_from(total)
            .unwrap_or(0)
            .saturating_sub(items.len() as u64);
        let continue_token = match items.last() {
            Some(last) if more => Some(encode_continue(page_revision, &last.key)),
            _ => None,
        };
        Ok(ListPage {
            items,
            revision: page_revision,
            continue_token,
            remaining: Some(if more { remaining } else { 0 }),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        Self::check_key(key)?;
        let response = self
            .call("create", false, || {
                let mut kv = self.kv();
                let full = self.full_prefix(key);
                let txn = Txn::new()
                    .when([Compare::create_revision(full.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(full, value.to_vec(), None)]);
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|f| self.error("create", f))?;
        if !response.succeeded() {
            return Err(StoreError::AlreadyExists {
                key: key.to_string(),
            });
        }
        let revision =
            header_revision(response.0.header.as_ref()).map_err(|f| self.error("create", f))?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: revision,
            mod_revision: revision,
            version: 1,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue, StoreError> {
        Self::check_key(key)?;
        let mut response = self
            .call("update", false, || {
                let mut kv = self.kv();
                let full = self.full_prefix(key);
                let txn = Txn::new()
                    .when([
                        Compare::mod_revision(
                            full.clone(),
                            CompareOp::Equal,
                            expected_mod_revision,
                        ),
                        Compare::version(full.clone(), CompareOp::Greater, 0),
                    ])
                    .and_then([TxnOp::put(
                        full.clone(),
                        value.to_vec(),
                        Some(PutOptions::new().with_prev_key()),
                    )])
                    .or_else([TxnOp::get(full, None)]);
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|f| self.error("update", f))?;
        let revision =
            header_revision(response.0.header.as_ref()).map_err(|f| self.error("update", f))?;
        let succeeded = response.succeeded();
        match (succeeded, first_response(&mut response)) {
            (true, Some(PbTxnOpResponse::ResponsePut(put))) => {
                let prev = put.prev_kv.ok_or_else(|| malformed("update"))?;
                Ok(KeyValue {
                    key: key.to_string(),
                    value,
                    create_revision: prev.create_revision,
                    mod_revision: revision,
                    version: prev.version + 1,
                })
            }
            (false, Some(PbTxnOpResponse::ResponseRange(range))) => Err(match range.kvs.first() {
                None => StoreError::NotFound {
                    key: key.to_string(),
                },
                Some(current) => StoreError::Conflict {
                    key: key.to_string(),
                    current_revision: current.mod_revision,
                },
            }),
            _ => Err(malformed("update")),
        }
    }

    async fn delete(
        &self,
        key: &str,
        expected_mod_revision: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        Self::check_key(key)?;
        let Some(expected) = expected_mod_revision else {
            let mut response = self
                .call("delete", false, || {
                    let mut kv = self.kv();
                    let full = self.full_prefix(key);
                    let options = DeleteOptions::new().with_prev_key();
                    async move { kv.delete(full, Some(options)).await }
                })
                .await
                .map_err(|f| self.error("delete", f))?;
            let revision =
                header_revision(response.0.header.as_ref()).map_err(|f| self.error("delete", f))?;
            return match response.0.prev_kvs.pop() {
                Some(prev) => Ok((self.decode(prev)?, revision)),
                None => Err(StoreError::NotFound {
                    key: key.to_string(),
                }),
            };
        };
        let mut response = self
            .call("delete", false, || {
                let mut kv = self.kv();
                let full = self.full_prefix(key);
                let txn = Txn::new()
                    .when([
                        Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
                        Compare::version(full.clone(), CompareOp::Greater, 0),
                    ])
                    .and_then([TxnOp::delete(
                        full.clone(),
                        Some(DeleteOptions::new().with_prev_key()),
                    )])
                    .or_else([TxnOp::get(full, None)]);
                async move { kv.txn(txn).await }
            })
            .await
            .map_err(|f| self.error("delete", f))?;
        let revision =
            header_revision(response.0.header.as_ref()).map_err(|f| self.error("delete", f))?;
        let succeeded = response.succeeded();
        match (succeeded, first_response(&mut response)) {
            (true, Some(PbTxnOpResponse::ResponseDeleteRange(mut deleted))) => {
                let prev = deleted.prev_kvs.pop().ok_or_else(|| malformed("delete"))?;
                Ok((self.decode(prev)?, revision))
            }
            (false, Some(PbTxnOpResponse::ResponseRange(range))) => Err(match range.kvs.first() {
                None => StoreError::NotFound {
                    key: key.to_string(),
                },
                Some(current) => StoreError::Conflict {
                    key: key.to_string(),
                    current_revision: current.mod_revision,
                },
            }),
            _ => Err(malformed("delete")),
        }
    }

    async fn watch(
        &self,
        prefix: &str,
        from_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        if from_revision < 0 {
            return Err(StoreError::InvalidArgument(format!(
                "negative revision {from_revision}"
            )));
        }
        let start = if from_revision == 0 {
            self.current_revision().await? + 1
        } else {
            self.check_retained(from_revision).await?;
            from_revision
        };
        let key = self.full_prefix(prefix);
        let range_end = prefix_range_end(&key);
        watch::start(self.clone(), key, range_end, start).await
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        if revision <= 0 {
            // Nothing lies before the first revision.
            return Ok(());
        }
        let result = self
            .call("compact", true, || {
                let mut kv = self.kv();
                async move { kv.compact(revision, None).await }
            })
            .await;
        match result {
            // Compacting at or below an earlier compaction changes nothing.
            Ok(_) | Err(Failure::Compacted) => Ok(()),
            Err(Failure::FutureRevision) => Err(self.future(revision).await),
            Err(failure) => Err(self.error("compact", failure)),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.current_revision_raw()
            .await
            .map_err(|f| self.error("read revision", f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_range_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_range_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_range_end(b"ab\xff"), b"ac".to_vec());
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(42, "/pods/a:b");
        assert_eq!(decode_continue(&token), Ok((42, "/pods/a:b")));
        for bad in ["", "42", "x:/a", "0:/a", "-3:/a", "7:"] {
            assert!(
                matches!(decode_continue(bad), Err(StoreError::InvalidArgument(_))),
                "token {bad:?}"
            );
        }
    }

    #[test]
    fn keys_outside_the_prefix_or_not_utf8_are_corrupt_not_panics() {
        let kv = |key: &[u8]| PbKeyValue {
            key: key.to_vec(),
            value: b"v".to_vec(),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            lease: 0,
        };
        let good = decode_kv("/k/", kv(b"/k//a")).expect("decodes");
        assert_eq!(good.key, "/a");
        assert_eq!(good.value, Bytes::from_static(b"v"));
        assert_eq!(
            (good.create_revision, good.mod_revision, good.version),
            (2, 3, 2)
        );
        assert!(matches!(
            decode_kv("/k/", kv(b"/other/a")),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            decode_kv("/k/", kv(b"/k/\xff\xfe")),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn pem_blocks_are_recognized_by_label() {
        let cert = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = b"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n";
        assert!(pem_has_block(cert, "CERTIFICATE"));
        assert!(!pem_has_block(cert, "PRIVATE KEY"));
        assert!(pem_has_block(key, "PRIVATE KEY"));
        assert!(!pem_has_block(b"\xff\xfe", "CERTIFICATE"));
        assert!(matches!(
            tls_options(&EtcdTls::new(b"not pem".to_vec())),
            Err(ConnectError::InvalidTls(_))
        ));
    }
}
