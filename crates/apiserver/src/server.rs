//! [`ApiServer`]: the resource registry, the admission and authorization
//! chains and the watch caches over one [`Store`], and its builder.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use ketch_core::api::Namespace;
use ketch_core::{ApiError, Client, Object, ObjectMeta, Revision, Store, StoreError};
use parking_lot::RwLock;
use tokio::task::JoinHandle;

use crate::admission::{
    Admission, ClusterIpAllocation, DefaultTolerations, Defaulting, Validation,
    cluster_ip::DEFAULT_SERVICE_CIDR,
};
use crate::auth::{
    Attributes, Authenticator, Authorizer, Decision, NodeAuthorizer, NodeRestriction,
    RbacAuthorizer, UserInfo, authorize_chain,
};
use crate::client::InProcessClient;
use crate::ip_alloc::IpAllocError;
use crate::registry::{KindRegistration, RegisteredKind, Registry, RegistryError, builtin_kinds};
use crate::watch_cache::{CacheConfig, WatchCache};

/// The default request size limit: 3 MiB, as Kubernetes.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 3 * 1024 * 1024;

/// Namespaces the server creates at start.
pub const BUILTIN_NAMESPACES: [&str; 2] = ["default", "kube-system"];

/// Errors of building an [`ApiServer`].
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The store failed while the server started.
    #[error("store failed while starting: {0}")]
    Store(#[source] StoreError),
    /// A kind could not be registered.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The service CIDR is not usable.
    #[error("service CIDR: {0}")]
    ServiceCidr(#[source] IpAllocError),
    /// The watch caches did not fill in time.
    #[error("the watch cache of {0} did not start in time")]
    CacheTimeout(String),
    /// Creating a built-in object failed.
    #[error("creating {what}: {source}")]
    Bootstrap {
        /// What was being created.
        what: String,
        /// Why it failed.
        #[source]
        source: ApiError,
    },
}

/// Builds an [`ApiServer`].
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), Box<dyn std::error::Error>> {
/// use ketch_apiserver::ApiServer;
/// use ketch_apiserver::auth::TokenFileAuthenticator;
/// let server = ApiServer::builder(store)
///     .authenticator(TokenFileAuthenticator::from_file("/etc/ketch/tokens.csv")?)
///     .service_cidr("10.0.0.0/16")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
pub struct ApiServerBuilder {
    store: Arc<dyn Store>,
    admission: Vec<Arc<dyn Admission>>,
    default_admission: bool,
    authorizers: Vec<Arc<dyn Authorizer>>,
    default_authorizers: bool,
    authenticator: Option<Arc<dyn Authenticator>>,
    allow_anonymous: bool,
    service_cidr: String,
    kinds: Vec<KindRegistration>,
    max_request_bytes: usize,
    cache: CacheConfig,
    compaction_interval: Option<Duration>,
}

/// How often the server compacts the store by default, as Kubernetes does.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);

impl std::fmt::Debug for ApiServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServerBuilder")
            .field("service_cidr", &self.service_cidr)
            .field("max_request_bytes", &self.max_request_bytes)
            .finish_non_exhaustive()
    }
}

impl ApiServerBuilder {
    /// Adds an admission plugin after the built-in ones (defaulting, default
    /// tolerations, cluster IP allocation) and before the built-in
    /// validation and node restriction.
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// use ketch_apiserver::{ApiServer, admission::DefaultTolerations};
    /// let server = ApiServer::builder(store).admission(DefaultTolerations { seconds: 60 }).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn admission(mut self, plugin: impl Admission) -> Self {
        self.admission.push(Arc::new(plugin));
        self
    }

    /// Leaves out every built-in admission plugin (defaulting, validation,
    /// default tolerations, cluster IPs, node restriction).
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// let server = ketch_apiserver::ApiServer::builder(store).without_default_admission().build().await?;
    /// # Ok(()) }
    /// ```
    pub fn without_default_admission(mut self) -> Self {
        self.default_admission = false;
        self
    }

    /// Adds an authorizer after the built-in Node and RBAC authorizers.
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// use ketch_apiserver::auth::{Attributes, Authorizer, Decision};
    /// struct AllowReads;
    /// impl Authorizer for AllowReads {
    ///     fn authorize(&self, a: &Attributes<'_>) -> Decision {
    ///         if a.verb == "get" { Decision::Allow } else { Decision::NoOpinion }
    ///     }
    /// }
    /// let server = ketch_apiserver::ApiServer::builder(store).authorizer(AllowReads).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn authorizer(mut self, authorizer: impl Authorizer) -> Self {
        self.authorizers.push(Arc::new(authorizer));
        self
    }

    /// Leaves out the built-in Node and RBAC authorizers.
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// let server = ketch_apiserver::ApiServer::builder(store).without_default_authorizers().build().await?;
    /// # Ok(()) }
    /// ```
    pub fn without_default_authorizers(mut self) -> Self {
        self.default_authorizers = false;
        self
    }

    /// Sets how remote requests are authenticated.
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// use ketch_apiserver::auth::{TokenFileAuthenticator, UserInfo};
    /// let authn = TokenFileAuthenticator::default().with_token("t0k3n", UserInfo::node("n1"));
    /// let server = ketch_apiserver::ApiServer::builder(store).authenticator(authn).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Some(Arc::new(authenticator));
        self
    }

    /// Lets requests without credentials through as `system:anonymous`
    /// (default: rejected).
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// let server = ketch_apiserver::ApiServer::builder(store).allow_anonymous(true).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// Sets the range Service cluster IPs come from (default `10.96.0.0/12`).
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// let server = ketch_apiserver::ApiServer::builder(store).service_cidr("10.0.0.0/24").build().await?;
    /// # Ok(()) }
    /// ```
    pub fn service_cidr(mut self, cidr: &str) -> Self {
        self.service_cidr = cidr.to_string();
        self
    }

    /// Registers a kind of your own.
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// use ketch_apiserver::registry::KindRegistration;
    /// use ketch_core::ApiResource;
    /// let jobs = KindRegistration::dynamic(ApiResource {
    ///     api_version: "example.com/v1".into(), kind: "Job".into(), plural: "jobs".into(), namespaced: true,
    /// }, true);
    /// let server = ketch_apiserver::ApiServer::builder(store).register(jobs).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn register(mut self, kind: KindRegistration) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Sets the largest accepted object, encoded (default 3 MiB).
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// let server = ketch_apiserver::ApiServer::builder(store).max_request_bytes(1 << 20).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Sets the watch cache sizes and bookmark interval.
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// use ketch_apiserver::CacheConfig;
    /// let config = CacheConfig { history: 1000, ..CacheConfig::default() };
    /// let server = ketch_apiserver::ApiServer::builder(store).cache_config(config).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn cache_config(mut self, config: CacheConfig) -> Self {
        self.cache = config;
        self
    }

    /// Sets how often the store's history is compacted: each time, history
    /// older than the previous interval is discarded (default 5 minutes;
    /// `None` never compacts, for stores compacted elsewhere).
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// use std::time::Duration;
    /// let server = ketch_apiserver::ApiServer::builder(store)
    ///     .compaction_interval(Some(Duration::from_secs(60)))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn compaction_interval(mut self, interval: Option<Duration>) -> Self {
        self.compaction_interval = interval;
        self
    }

    /// Starts the server: fills one watch cache per kind from the store,
    /// rebuilds admission state (allocated cluster IPs) and creates the
    /// built-in namespaces. Needs a tokio runtime.
    pub async fn build(self) -> Result<ApiServer, BuildError> {
        let start_revision = self
            .store
            .current_revision()
            .await
            .map_err(BuildError::Store)?;
        let mut admission: Vec<Arc<dyn Admission>> = Vec::new();
        if self.default_admission {
            admission.push(Arc::new(Defaulting));
            admission.push(Arc::new(DefaultTolerations::default()));
            admission.push(Arc::new(
                ClusterIpAllocation::new(&self.service_cidr).map_err(BuildError::ServiceCidr)?,
            ));
        }
        admission.extend(self.admission);
        if self.default_admission {
            admission.push(Arc::new(Validation));
            admission.push(Arc::new(NodeRestriction));
        }
        let inner = Arc::new(Inner {
            store: self.store,
            registry: RwLock::new(Registry::default()),
            admission,
            authorizers: RwLock::new(Vec::new()),
            authenticator: self.authenticator,
            allow_anonymous: self.allow_anonymous,
            max_request_bytes: self.max_request_bytes,
            cache_config: self.cache,
            tasks: parking_lot::Mutex::new(Vec::new()),
            start_revision,
            own_writes: AtomicI64::new(0),
        });
        let server = ApiServer { inner };
        for kind in builtin_kinds().into_iter().chain(self.kinds) {
            server.register_kind(kind).await?;
        }
        let mut authorizers: Vec<Arc<dyn Authorizer>> = Vec::new();
        if self.default_authorizers {
            let cache = |plural: &str| {
                server
                    .inner
                    .kind(plural)
                    .map(|k| k.cache.clone())
                    .map_err(|e| BuildError::Bootstrap {
                        what: String::from("the RBAC authorizer"),
                        source: e,
                    })
            };
            authorizers.push(Arc::new(NodeAuthorizer));
            authorizers.push(Arc::new(RbacAuthorizer::from_caches([
                cache("roles")?,
                cache("clusterroles")?,
                cache("rolebindings")?,
                cache("clusterrolebindings")?,
            ])));
        }
        authorizers.extend(self.authorizers);
        *server.inner.authorizers.write() = authorizers;
        if let Some(interval) = self.compaction_interval.filter(|i| !i.is_zero()) {
            let compactor = tokio::spawn(compact(server.inner.store.clone(), interval));
            server.inner.tasks.lock().push(compactor);
        }
        let admin = server.inner.admin();
        for ns in BUILTIN_NAMESPACES {
            let obj = Namespace {
                metadata: ObjectMeta::cluster_named(ns),
                ..Namespace::default()
            };
            match server.inner.create(&admin, Box::new(obj)).await {
                Ok(_) | Err(ApiError::AlreadyExists { .. }) => {}
                Err(source) => {
                    return Err(BuildError::Bootstrap {
                        what: format!("namespace {ns:?}"),
                        source,
                    });
                }
            }
        }
        Ok(server)
    }
}

/// The API server: every verb on every registered kind, over any [`Store`].
///
/// Components talk to it through a [`Client`]: [`ApiServer::client`] (the
/// privileged in-process client) or [`ApiServer::client_as`] (an identity
/// subject to authorization and node restriction).
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), Box<dyn std::error::Error>> {
/// use ketch_apiserver::ApiServer;
/// use ketch_core::{Api, ObjectMeta, api::Pod};
/// let server = ApiServer::builder(store).build().await?;
/// let pods: Api<Pod> = Api::namespaced(server.client(), "default");
/// let mut pod = Pod { metadata: ObjectMeta::named("default", "web"), ..Pod::default() };
/// pod.spec.containers.push(ketch_core::api::Container {
///     name: "web".into(), image: Some("nginx".into()), ..Default::default()
/// });
/// let created = pods.create(pod).await?;
/// assert!(created.metadata.uid.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiServer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer").finish_non_exhaustive()
    }
}

impl ApiServer {
    /// A builder over `store`.
    ///
    /// ```no_run
    /// # async fn demo(store: std::sync::Arc<dyn ketch_core::Store>) -> Result<(), ketch_apiserver::BuildError> {
    /// let server = ketch_apiserver::ApiServer::builder(store).build().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(store: Arc<dyn Store>) -> ApiServerBuilder {
        ApiServerBuilder {
            store,
            admission: Vec::new(),
            default_admission: true,
            authorizers: Vec::new(),
            default_authorizers: true,
            authenticator: None,
            allow_anonymous: false,
            service_cidr: DEFAULT_SERVICE_CIDR.to_string(),
            kinds: Vec::new(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            cache: CacheConfig::default(),
            compaction_interval: Some(DEFAULT_COMPACTION_INTERVAL),
        }
    }

    /// The privileged in-process client (`system:masters`: authorization is
    /// skipped, admission still runs).
    pub fn client(&self) -> Arc<dyn Client> {
        Arc::new(InProcessClient::new(self.inner.clone(), UserInfo::admin()))
    }

    /// An in-process client acting as `user`: every request is authorized
    /// and node-restricted.
    ///
    /// ```no_run
    /// # async fn demo(server: ketch_apiserver::ApiServer) {
    /// use ketch_apiserver::auth::UserInfo;
    /// let kubelet = server.client_as(UserInfo::node("worker-1"));
    /// # }
    /// ```
    pub fn client_as(&self, user: UserInfo) -> Arc<dyn Client> {
        Arc::new(InProcessClient::new(self.inner.clone(), user))
    }

    /// Authenticates a remote request by its bearer token. No token: the
    /// anonymous identity when allowed, `Unauthorized` otherwise; an unknown
    /// token is always `Unauthorized`.
    pub fn authenticate(&self, bearer_token: Option<&str>) -> Result<UserInfo, ApiError> {
        let token = bearer_token.map(str::trim).filter(|t| !t.is_empty());
        match (token, &self.inner.authenticator) {
            (None, _) if self.inner.allow_anonymous => Ok(UserInfo::anonymous()),
            (None, _) => Err(ApiError::Unauthorized(String::from(
                "anonymous requests are not allowed; send a bearer token",
            ))),
            (Some(t), Some(authn)) => authn
                .authenticate(t)
                .ok_or_else(|| ApiError::Unauthorized(String::from("invalid bearer token"))),
            (Some(_), None) => Err(ApiError::Unauthorized(String::from(
                "no authenticator is configured for bearer tokens",
            ))),
        }
    }

    /// Decodes a request body into an object of a registered kind: over the
    /// size limit is `TooLarge`, malformed JSON, missing or unknown
    /// `apiVersion`/`kind` and fields of the wrong type are `BadRequest`
    /// naming the problem.
    pub fn decode_object(&self, body: &[u8]) -> Result<Box<dyn Object>, ApiError> {
        self.inner.decode_object(body)
    }

    /// The request size limit in bytes.
    pub fn max_request_bytes(&self) -> usize {
        self.inner.max_request_bytes
    }

    /// Registers a kind while the server runs; its watch cache starts at once.
    pub async fn register(&self, kind: KindRegistration) -> Result<(), BuildError> {
        self.register_kind(kind).await
    }

    /// The kinds served.
    pub fn resources(&self) -> Vec<ketch_core::ApiResource> {
        let mut v: Vec<_> = self
            .inner
            .registry
            .read()
            .kinds()
            .map(|k| k.resource.clone())
            .collect();
        v.sort_by(|a, b| a.plural.cmp(&b.plural));
        v
    }

    async fn register_kind(&self, kind: KindRegistration) -> Result<(), BuildError> {
        kind.check()?;
        let resource = kind.info.resource.clone();
        if self.inner.registry.read().contains(&resource.plural) {
            return Err(RegistryError::DuplicatePlural(resource.plural).into());
        }
        let prefix = format!("/registry/{}/", resource.plural);
        let cache = WatchCache::new(
            &resource.plural,
            &prefix,
            kind.info.clone(),
            kind.strategy.clone(),
            self.inner.cache_config.clone(),
        );
        let registered = Arc::new(RegisteredKind {
            resource,
            info: kind.info,
            strategy: kind.strategy,
            prefix,
            cache: cache.clone(),
            last_write: AtomicI64::new(0),
        });
        self.inner.registry.write().insert(registered.clone())?;
        let run = tokio::spawn(cache.clone().run(self.inner.store.clone()));
        let bookmarks = tokio::spawn(cache.clone().run_bookmarks());
        self.inner.tasks.lock().extend([run, bookmarks]);
        cache
            .wait_for(0, Duration::from_secs(60))
            .await
            .map_err(|_| BuildError::CacheTimeout(registered.resource.plural.clone()))?;
        for obj in cache.list_all() {
            for plugin in &self.inner.admission {
                plugin.restore(&registered.resource, &*obj);
            }
        }
        Ok(())
    }
}

/// Compacts the store every `interval` up to the revision seen one interval
/// earlier, so watches and paged lists keep one interval of history.
async fn compact(store: Arc<dyn Store>, interval: Duration) {
    let mut previous: Option<Revision> = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(rev) = previous.filter(|r| *r > 0)
            && let Err(e) = store.compact(rev).await
        {
            tracing::warn!(revision = rev, error = %e, "store compaction failed");
        }
        match store.current_revision().await {
            Ok(rev) => previous = Some(rev),
            Err(e) => tracing::warn!(error = %e, "reading the store revision failed"),
        }
    }
}

/// Who makes a request.
pub(crate) struct Caller {
    pub(crate) user: UserInfo,
    pub(crate) privileged: bool,
}

impl Caller {
    pub(crate) fn new(user: UserInfo) -> Self {
        let privileged = user.is_privileged();
        Self { user, privileged }
    }
}

/// The shared state behind [`ApiServer`] and its clients.
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) registry: RwLock<Registry>,
    pub(crate) admission: Vec<Arc<dyn Admission>>,
    pub(crate) authorizers: RwLock<Vec<Arc<dyn Authorizer>>>,
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    pub(crate) allow_anonymous: bool,
    pub(crate) max_request_bytes: usize,
    pub(crate) cache_config: CacheConfig,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    /// The store revision before any cache listed.
    pub(crate) start_revision: Revision,
    /// Store writes this server made since `start_revision`.
    pub(crate) own_writes: AtomicI64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

impl Inner {
    pub(crate) fn admin(&self) -> Caller {
        Caller::new(UserInfo::admin())
    }

    pub(crate) fn kind(&self, plural: &str) -> Result<Arc<RegisteredKind>, ApiError> {
        self.registry
            .read()
            .by_plural(plural)
            .cloned()
            .ok_or_else(|| ApiError::NotFound {
                resource: plural.to_string(),
                name: String::new(),
            })
    }

    pub(crate) fn kind_of(&self, obj: &dyn Object) -> Result<Arc<RegisteredKind>, ApiError> {
        self.registry
            .read()
            .by_kind(obj.api_version(), obj.kind())
            .cloned()
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "no kind {:?} is served in apiVersion {:?}",
                    obj.kind(),
                    obj.api_version()
                ))
            })
    }

    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        verb: &str,
        kind: &RegisteredKind,
        subresource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<(), ApiError> {
        if caller.privileged {
            return Ok(());
        }
        let namespace = if kind.resource.namespaced {
            namespace
        } else {
            None
        };
        let attrs = Attributes {
            user: &caller.user,
            verb,
            api_group: kind.resource.group(),
            resource: &kind.resource.plural,
            subresource,
            namespace,
            name,
        };
        let chain = self.authorizers.read().clone();
        let reason = match authorize_chain(&chain, &attrs) {
            Decision::Allow => return Ok(()),
            Decision::Deny(reason) => reason,
            Decision::NoOpinion => String::from("no authorizer allowed the request"),
        };
        {
            {
                let sub = if subresource.is_empty() {
                    String::new()
                } else {
                    format!("/{subresource}")
                };
                let scope = match namespace {
                    Some(ns) => format!(" in the namespace {ns:?}"),
                    None => String::from(" at the cluster scope"),
                };
                Err(ApiError::Forbidden(format!(
                    "user {:?} cannot {verb} resource \"{}{sub}\" in API group {:?}{scope}: {reason}",
                    caller.user.name,
                    kind.resource.plural,
                    kind.resource.group()
                )))
            }
        }
    }
}
