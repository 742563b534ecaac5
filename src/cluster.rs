//! Assembling an orchestrator from the parts: [`Cluster::builder`] wires a
//! store, the API server, the scheduler and the gRPC endpoint into one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use ketch_apiserver::auth::{TokenFileAuthenticator, UserInfo};
use ketch_apiserver::grpc::{GrpcError, GrpcServer};
use ketch_apiserver::{ApiServer, BuildError};
use ketch_core::{Client, Store};
use ketch_scheduler::framework::{ProfileConfig, Registry};
use ketch_scheduler::{DEFAULT_SCHEDULER_NAME, Scheduler, SchedulerError};
use ketch_store::{DiskError, MemoryStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why a cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The data directory could not be opened (corrupt, locked, newer format, I/O).
    #[error("opening the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The store's error.
        #[source]
        source: DiskError,
    },
    /// The token file could not be read.
    #[error("reading the token file {path}: {message}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The API server did not start.
    #[error("starting the API server: {0}")]
    ApiServer(#[from] BuildError),
    /// The scheduler could not be built from its profiles.
    #[error("building the scheduler: {0}")]
    Scheduler(#[from] SchedulerError),
    /// The gRPC listener could not be bound.
    #[error("listening for gRPC on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A background task failed to start.
    #[error("background task: {0}")]
    Task(String),
}

enum StoreSource {
    Memory,
    DataDir(PathBuf),
    Custom(Arc<dyn Store>),
}

/// Builds a [`Cluster`]. Every part is optional except the API server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ketch::ClusterError> {
/// use ketch::Cluster;
/// let cluster = Cluster::builder().memory_store().without_scheduler().start().await?;
/// # cluster.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ClusterBuilder {
    store: StoreSource,
    scheduler: bool,
    registry: Option<Registry>,
    profiles: Vec<ProfileConfig>,
    grpc_addr: Option<SocketAddr>,
    token_file: Option<PathBuf>,
    admin_token: Option<String>,
    service_cidr: Option<String>,
}

impl ClusterBuilder {
    /// Keeps all state in memory only (the default; lost on exit).
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().memory_store();
    /// ```
    pub fn memory_store(mut self) -> Self {
        self.store = StoreSource::Memory;
        self
    }

    /// Keeps state in a durable [`MemoryStore`] under `dir` (write-ahead log
    /// and snapshots; every acknowledged write survives a crash).
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().data_dir("/var/lib/ketch");
    /// ```
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.store = StoreSource::DataDir(dir.into());
        self
    }

    /// Uses any [`Store`], e.g. an `EtcdStore`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let builder = ketch::Cluster::builder().store(Arc::new(ketch::store::MemoryStore::new()));
    /// ```
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = StoreSource::Custom(store);
        self
    }

    /// Runs no scheduler (pods stay pending unless something else binds them).
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().without_scheduler();
    /// ```
    pub fn without_scheduler(mut self) -> Self {
        self.scheduler = false;
        self
    }

    /// Builds scheduler plugins from this registry instead of the default one.
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().scheduler_registry(ketch::scheduler::plugins::default_registry());
    /// ```
    pub fn scheduler_registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Adds a scheduling profile; without any, the default profile serves
    /// `default-scheduler`.
    ///
    /// ```
    /// let profile = ketch::scheduler::plugins::default_profile("batch-scheduler");
    /// let builder = ketch::Cluster::builder().scheduler_profile(profile);
    /// ```
    pub fn scheduler_profile(mut self, profile: ProfileConfig) -> Self {
        self.profiles.push(profile);
        self
    }

    /// Serves the API over gRPC on `addr` (port 0 picks a free port; see
    /// [`Cluster::grpc_addr`]).
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().serve_grpc("127.0.0.1:6443".parse().unwrap());
    /// ```
    pub fn serve_grpc(mut self, addr: SocketAddr) -> Self {
        self.grpc_addr = Some(addr);
        self
    }

    /// Authenticates remote requests with bearer tokens from a file in the
    /// Kubernetes static token format (`token,user,uid,"group1,group2"`).
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().token_file("/etc/ketch/tokens.csv");
    /// ```
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token_file = Some(path.into());
        self
    }

    /// Accepts `token` as a bearer token of a cluster administrator
    /// (`system:masters`) on remote transports.
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().admin_token("a-long-random-secret");
    /// ```
    pub fn admin_token(mut self, token: &str) -> Self {
        self.admin_token = Some(token.to_string());
        self
    }

    /// The range Service cluster IPs are allocated from (CIDR).
    ///
    /// ```
    /// let builder = ketch::Cluster::builder().service_cidr("10.96.0.0/16");
    /// ```
    pub fn service_cidr(mut self, cidr: &str) -> Self {
        self.service_cidr = Some(cidr.to_string());
        self
    }

    /// Opens the store and starts every configured part.
    pub async fn start(self) -> Result<Cluster, ClusterError> {
        let store: Arc<dyn Store> = match self.store {
            StoreSource::Memory => Arc::new(MemoryStore::new()),
            StoreSource::Custom(store) => store,
            StoreSource::DataDir(path) => {
                let dir = path.clone();
                let opened = tokio::task::spawn_blocking(move || MemoryStore::open(&dir))
                    .await
                    .map_err(|e| ClusterError::Task(e.to_string()))?;
                Arc::new(opened.map_err(|source| ClusterError::DataDir { path, source })?)
            }
        };
        let mut api = ApiServer::builder(store);
        if self.token_file.is_some() || self.admin_token.is_some() {
            let mut tokens = match &self.token_file {
                Some(path) => TokenFileAuthenticator::from_file(path).map_err(|e| {
                    ClusterError::TokenFile {
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?,
                None => TokenFileAuthenticator::default(),
            };
            if let Some(token) = &self.admin_token {
                tokens = tokens.with_token(token, UserInfo::admin());
            }
            api = api.authenticator(tokens);
        }
        if let Some(cidr) = &self.service_cidr {
            api = api.service_cidr(cidr);
        }
        let api = api.build().await?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let scheduler = if self.scheduler {
            let profiles = if self.profiles.is_empty() {
                vec![ketch_scheduler::plugins::default_profile(
                    DEFAULT_SCHEDULER_NAME,
                )]
            } else {
                self.profiles
            };
            let mut builder = Scheduler::builder(api.client()).registry(
                self.registry
                    .unwrap_or_else(ketch_scheduler::plugins::default_registry),
            );
            for p in profiles {
                builder = builder.profile(p);
            }
            let scheduler = Arc::new(builder.build()?);
            let running = scheduler.clone();
            let stop = wait_for(shutdown_rx.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = running.run(stop).await {
                    tracing::error!(error = %e, "scheduler stopped");
                }
            }));
            Some(scheduler)
        } else {
            None
        };

        let grpc_addr = match self.grpc_addr {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| ClusterError::Listen { addr, source })?;
                let local = listener
                    .local_addr()
                    .map_err(|source| ClusterError::Listen { addr, source })?;
                let server = GrpcServer::for_api_server(api.clone());
                let stop = wait_for(shutdown_rx.clone());
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = server.serve_with_listener(listener, stop).await {
                        log_grpc_error(&e);
                    }
                }));
                Some(local)
            }
            None => None,
        };

        Ok(Cluster {
            api,
            scheduler,
            grpc_addr,
            shutdown,
            tasks,
        })
    }
}

fn log_grpc_error(e: &GrpcError) {
    tracing::error!(error = %e, "gRPC server stopped");
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    // A closed channel means the cluster was dropped: stop too.
    let _ = rx.wait_for(|stop| *stop).await;
}

/// A running orchestrator: the API server and the parts the builder enabled.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ketch::Cluster;
/// use ketch::core::{Api, ObjectMeta, api::Namespace};
/// let cluster = Cluster::builder().start().await?;
/// let namespaces: Api<Namespace> = Api::all(cluster.client());
/// namespaces.create(Namespace { metadata: ObjectMeta::cluster_named("team-a"), ..Namespace::default() }).await?;
/// assert!(namespaces.get_opt("team-a").await?.is_some());
/// cluster.shutdown().await;
/// # Ok(()) }
/// ```
pub struct Cluster {
    api: ApiServer,
    scheduler: Option<Arc<Scheduler>>,
    grpc_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Cluster {
    /// A builder with the in-memory store, the default scheduler and no gRPC.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            store: StoreSource::Memory,
            scheduler: true,
            registry: None,
            profiles: Vec::new(),
            grpc_addr: None,
            token_file: None,
            admin_token: None,
            service_cidr: None,
        }
    }

    /// A privileged in-process client.
    pub fn client(&self) -> Arc<dyn Client> {
        self.api.client()
    }

    /// The API server.
    pub fn api_server(&self) -> &ApiServer {
        &self.api
    }

    /// The scheduler, if enabled.
    pub fn scheduler(&self) -> Option<&Arc<Scheduler>> {
        self.scheduler.as_ref()
    }

    /// The address the gRPC endpoint listens on, if enabled.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// Stops every part and waits for them to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
