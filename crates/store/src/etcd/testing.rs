//! Throwaway etcd clusters for tests and benchmarks.
//!
//! [`EtcdCluster`] starts real `etcd` processes (Debian package
//! `etcd-server`; set `KETCH_ETCD_BIN` to use another binary) on free
//! loopback ports with data in a fresh temporary directory, and kills them
//! and removes the directory when dropped. Every test starts its own
//! cluster, so tests run in parallel without sharing state.
//!
//! ```no_run
//! use ketch_store::etcd::testing::EtcdCluster;
//! use ketch_store::etcd::{EtcdConfig, EtcdStore};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let etcd = EtcdCluster::start(1)?;
//! let store = EtcdStore::connect(EtcdConfig::new(etcd.endpoints())).await?;
//! # Ok(())
//! # }
//! ```

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a cluster may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Tries at starting a cluster (a port taken between choosing and binding
/// makes a member exit; the cluster is then started again on new ports).
const START_ATTEMPTS: usize = 3;

/// Failures of the etcd test processes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EtcdTestError {
    /// No etcd binary was found.
    #[error(
        "etcd binary not found (tried {tried:?}); install the Debian package etcd-server or set KETCH_ETCD_BIN"
    )]
    BinaryNotFound {
        /// Paths tried.
        tried: Vec<String>,
    },
    /// A file-system or process operation failed.
    #[error("{action}: {cause}")]
    Io {
        /// What was being done.
        action: String,
        /// The OS error.
        cause: String,
    },
    /// A member did not become healthy in time, or exited.
    #[error("etcd member {member} did not become healthy: {reason}; log tail:\n{log_tail}")]
    Unhealthy {
        /// The member's index.
        member: usize,
        /// What was observed.
        reason: String,
        /// The end of the member's log.
        log_tail: String,
    },
    /// A member index out of range.
    #[error("no member {member} in a cluster of {size}")]
    NoSuchMember {
        /// The index asked for.
        member: usize,
        /// The cluster size.
        size: usize,
    },
}

fn io_error(action: impl Into<String>, err: std::io::Error) -> EtcdTestError {
    EtcdTestError::Io {
        action: action.into(),
        cause: err.to_string(),
    }
}

/// One etcd member process.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP port serving `/health` (and metrics), also under TLS.
    metrics_port: u16,
    /// Whether client URLs are `https://`.
    tls: bool,
    data_dir: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn client_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    fn log_tail(&self) -> String {
        let text = fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused process dies of SIGKILL all the same.
            // The process may have exited already; either way it is reaped.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Settings of an [`EtcdCluster`] to start.
#[derive(Clone, Debug)]
pub struct EtcdClusterBuilder {
    members: usize,
    heartbeat: Duration,
    election_timeout: Duration,
    data_parent: Option<PathBuf>,
    tls: Option<ServerTls>,
}

/// TLS files of the members' client port.
#[derive(Clone, Debug)]
struct ServerTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: Option<PathBuf>,
}

impl Default for EtcdClusterBuilder {
    fn default() -> Self {
        EtcdClusterBuilder {
            members: 1,
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            data_parent: None,
            tls: None,
        }
    }
}

impl EtcdClusterBuilder {
    /// The number of members (default 1).
    ///
    /// ```no_run
    /// use ketch_store::etcd::testing::EtcdCluster;
    ///
    /// let cluster = EtcdCluster::builder().members(3).start()?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn members(mut self, members: usize) -> Self {
        self.members = members.max(1);
        self
    }

    /// Raft heartbeat interval and election timeout (etcd's defaults: 100 ms
    /// and 1 s).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use ketch_store::etcd::testing::EtcdCluster;
    ///
    /// let cluster = EtcdCluster::builder()
    ///     .members(3)
    ///     .raft_timing(Duration::from_millis(50), Duration::from_millis(500))
    ///     .start()?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn raft_timing(mut self, heartbeat: Duration, election_timeout: Duration) -> Self {
        self.heartbeat = heartbeat;
        self.election_timeout = election_timeout;
        self
    }

    /// Where the cluster's temporary directory is made (default: `/dev/shm`
    /// when present, so that fsync is cheap, else the system temp dir).
    ///
    /// ```no_run
    /// use ketch_store::etcd::testing::EtcdCluster;
    ///
    /// let cluster = EtcdCluster::builder().data_parent("/var/tmp").start()?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn data_parent(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_parent = Some(dir.into());
        self
    }

    /// Serves clients over TLS with this certificate and key (PEM files);
    /// the endpoints become `https://`. With `client_ca_file` the members
    /// also require client certificates signed by that CA.
    ///
    /// ```no_run
    /// use ketch_store::etcd::testing::EtcdCluster;
    ///
    /// let cluster = EtcdCluster::builder()
    ///     .tls("server.pem", "server.key", Some("ca.pem".into()))
    ///     .start()?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn tls(
        mut self,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
        client_ca_file: Option<PathBuf>,
    ) -> Self {
        self.tls = Some(ServerTls {
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            client_ca_file,
        });
        self
    }

    /// Starts the members and waits until every one reports healthy.
    ///
    /// ```no_run
    /// use ketch_store::etcd::testing::EtcdCluster;
    ///
    /// let cluster = EtcdCluster::builder().start()?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn start(self) -> Result<EtcdCluster, EtcdTestError> {
        let binary = find_binary()?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match EtcdCluster::start_once(&self, &binary) {
                Ok(cluster) => return Ok(cluster),
                Err(err) => last_error = Some(err),
            }
        }
        Err(last_error.unwrap_or(EtcdTestError::Unhealthy {
            member: 0,
            reason: "never started".to_string(),
            log_tail: String::new(),
        }))
    }
}

/// A running etcd cluster of one or more members on loopback, killed and
/// deleted on drop.
#[derive(Debug)]
pub struct EtcdCluster {
    binary: PathBuf,
    root: PathBuf,
    token: String,
    heartbeat: Duration,
    election_timeout: Duration,
    tls: Option<ServerTls>,
    members: Vec<Member>,
}

impl EtcdCluster {
    /// Starts a cluster of `members` members with default settings and waits
    /// until it is healthy.
    ///
    /// ```no_run
    /// use ketch_store::etcd::testing::EtcdCluster;
    ///
    /// let etcd = EtcdCluster::start(1)?;
    /// println!("etcd at {:?}", etcd.endpoints());
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn start(members: usize) -> Result<EtcdCluster, EtcdTestError> {
        EtcdCluster::builder().members(members).start()
    }

    /// A builder for clusters with other settings.
    ///
    /// ```no_run
    /// use ketch_store::etcd::testing::EtcdCluster;
    ///
    /// let etcd = EtcdCluster::builder().members(3).start()?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn builder() -> EtcdClusterBuilder {
        EtcdClusterBuilder::default()
    }

    fn start_once(
        settings: &EtcdClusterBuilder,
        binary: &Path,
    ) -> Result<EtcdCluster, EtcdTestError> {
        let parent = settings.data_parent.clone().unwrap_or_else(default_parent);
        let token = unique_name();
        let root = parent.join(format!("ketch-etcd-{token}"));
        fs::create_dir_all(&root).map_err(|e| io_error(format!("creating {root:?}"), e))?;
        let mut cluster = EtcdCluster {
            binary: binary.to_path_buf(),
            root,
            token,
            heartbeat: settings.heartbeat,
            election_timeout: settings.election_timeout,
            tls: settings.tls.clone(),
            members: Vec::new(),
        };
        let ports = free_ports(settings.members * 3)?;
        for index in 0..settings.members {
            let data_dir = cluster.root.join(format!("m{index}"));
            cluster.members.push(Member {
                name: format!("m{index}"),
                client_port: ports[index * 3],
                peer_port: ports[index * 3 + 1],
                metrics_port: ports[index * 3 + 2],
                tls: settings.tls.is_some(),
                log_path: cluster.root.join(format!("m{index}.log")),
                data_dir,
                child: None,
            });
        }
        for index in 0..settings.members {
            cluster.spawn(index)?;
        }
        for index in 0..settings.members {
            cluster.wait_healthy(index, START_TIMEOUT)?;
        }
        Ok(cluster)
    }

    fn member(&self, member: usize) -> Result<&Member, EtcdTestError> {
        self.members.get(member).ok_or(EtcdTestError::NoSuchMember {
            member,
            size: self.members.len(),
        })
    }

    fn member_mut(&mut self, member: usize) -> Result<&mut Member, EtcdTestError> {
        let size = self.members.len();
        self.members
            .get_mut(member)
            .ok_or(EtcdTestError::NoSuchMember { member, size })
    }

    fn spawn(&mut self, index: usize) -> Result<(), EtcdTestError> {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let binary = self.binary.clone();
        let token = self.token.clone();
        let heartbeat = self.heartbeat.as_millis().to_string();
        let election = self.election_timeout.as_millis().to_string();
        let mut tls_args: Vec<std::ffi::OsString> = Vec::new();
        if let Some(tls) = &self.tls {
            tls_args.extend([
                "--cert-file".into(),
                tls.cert_file.clone().into_os_string(),
                "--key-file".into(),
                tls.key_file.clone().into_os_string(),
            ]);
            if let Some(ca) = &tls.client_ca_file {
                tls_args.extend([
                    "--client-cert-auth".into(),
                    "--trusted-ca-file".into(),
                    ca.clone().into_os_string(),
                ]);
            }
        }
        let member = self.member_mut(index)?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&member.log_path)
            .map_err(|e| io_error(format!("opening {:?}", member.log_path), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| io_error("duplicating the log handle", e))?;
        let child = Command::new(&binary)
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&member.data_dir)
            .arg("--listen-client-urls")
            .arg(member.client_url())
            .arg("--advertise-client-urls")
            .arg(member.client_url())
            .arg("--listen-peer-urls")
            .arg(member.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(member.peer_url())
            .arg("--initial-cluster")
            .arg(&initial_cluster)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(&token)
            .arg("--heartbeat-interval")
            .arg(&heartbeat)
            .arg("--election-timeout")
            .arg(&election)
            .arg("--listen-metrics-urls")
            .arg(format!("http://127.0.0.1:{}", member.metrics_port))
            .args(&tls_args)
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| io_error(format!("starting {binary:?}"), e))?;
        member.child = Some(child);
        Ok(())
    }

    /// The client URLs of all members (running or not).
    ///
    /// ```no_run
    /// # let etcd = ketch_store::etcd::testing::EtcdCluster::start(3)?;
    /// assert_eq!(etcd.endpoints().len(), 3);
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }

    /// The client URL of one member.
    ///
    /// ```no_run
    /// # let etcd = ketch_store::etcd::testing::EtcdCluster::start(1)?;
    /// assert!(etcd.endpoint(0)?.starts_with("http://127.0.0.1:"));
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn endpoint(&self, member: usize) -> Result<String, EtcdTestError> {
        Ok(self.member(member)?.client_url())
    }

    /// The number of members.
    ///
    /// ```no_run
    /// # let etcd = ketch_store::etcd::testing::EtcdCluster::start(1)?;
    /// assert_eq!(etcd.size(), 1);
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Whether the member's process is alive.
    ///
    /// ```no_run
    /// # let mut etcd = ketch_store::etcd::testing::EtcdCluster::start(1)?;
    /// assert!(etcd.is_running(0));
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn is_running(&mut self, member: usize) -> bool {
        match self.members.get_mut(member).and_then(|m| m.child.as_mut()) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the member with SIGKILL (no clean shutdown) and reaps it; its
    /// data stays for [`EtcdCluster::restart`].
    ///
    /// ```no_run
    /// # let mut etcd = ketch_store::etcd::testing::EtcdCluster::start(3)?;
    /// etcd.kill(0)?;
    /// assert!(!etcd.is_running(0));
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn kill(&mut self, member: usize) -> Result<(), EtcdTestError> {
        self.member_mut(member)?.kill();
        Ok(())
    }

    /// Freezes the member's process (SIGSTOP): it keeps its connections open
    /// but answers nothing, like a hung machine, until [`EtcdCluster::resume`].
    ///
    /// ```no_run
    /// # let mut etcd = ketch_store::etcd::testing::EtcdCluster::start(1)?;
    /// etcd.pause(0)?;
    /// etcd.resume(0)?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn pause(&mut self, member: usize) -> Result<(), EtcdTestError> {
        self.signal(member, "STOP")
    }

    /// Lets a paused member run again (SIGCONT).
    ///
    /// ```no_run
    /// # let mut etcd = ketch_store::etcd::testing::EtcdCluster::start(1)?;
    /// # etcd.pause(0)?;
    /// etcd.resume(0)?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn resume(&mut self, member: usize) -> Result<(), EtcdTestError> {
        self.signal(member, "CONT")
    }

    fn signal(&mut self, member: usize, signal: &str) -> Result<(), EtcdTestError> {
        let Some(pid) = self.member_mut(member)?.child.as_ref().map(Child::id) else {
            return Err(EtcdTestError::Io {
                action: format!("sending SIG{signal} to member {member}"),
                cause: "the member is not running".to_string(),
            });
        };
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .map_err(|e| io_error(format!("running kill -{signal} {pid}"), e))?;
        if !status.success() {
            return Err(EtcdTestError::Io {
                action: format!("kill -{signal} {pid}"),
                cause: status.to_string(),
            });
        }
        // The signal is delivered asynchronously: wait until every thread of
        // the process has reached the wanted state.
        let want_stopped = signal == "STOP";
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(stopped) = threads_stopped(pid)
                && stopped == want_stopped
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(EtcdTestError::Io {
                    action: format!("kill -{signal} {pid}"),
                    cause: "the process did not change state within 5 s".to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts a killed member again on its data and ports, without waiting
    /// for it to be healthy (see [`EtcdCluster::wait_healthy`]).
    ///
    /// ```no_run
    /// # let mut etcd = ketch_store::etcd::testing::EtcdCluster::start(3)?;
    /// etcd.kill(1)?;
    /// etcd.restart(1)?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn restart(&mut self, member: usize) -> Result<(), EtcdTestError> {
        self.member_mut(member)?.kill();
        self.spawn(member)
    }

    /// Waits until the member answers its health check (it has a leader and
    /// serves reads), failing early if its process exits.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # let mut etcd = ketch_store::etcd::testing::EtcdCluster::start(1)?;
    /// etcd.wait_healthy(0, Duration::from_secs(10))?;
    /// # Ok::<(), ketch_store::etcd::testing::EtcdTestError>(())
    /// ```
    pub fn wait_healthy(&mut self, member: usize, timeout: Duration) -> Result<(), EtcdTestError> {
        let deadline = Instant::now() + timeout;
        let info = self.member_mut(member)?;
        loop {
            if health(info.metrics_port) {
                return Ok(());
            }
            let exited = match info.child.as_mut() {
                None => Some("the member is not running".to_string()),
                Some(child) => match child.try_wait() {
                    Ok(Some(status)) => Some(format!("the process exited ({status})")),
                    Ok(None) => None,
                    Err(e) => Some(format!("the process cannot be polled: {e}")),
                },
            };
            if let Some(reason) = exited {
                return Err(EtcdTestError::Unhealthy {
                    member,
                    reason,
                    log_tail: info.log_tail(),
                });
            }
            if Instant::now() >= deadline {
                return Err(EtcdTestError::Unhealthy {
                    member,
                    reason: format!("not healthy after {timeout:?}"),
                    log_tail: info.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index of the member that currently leads, asking each running
    /// member for its status; `None` when no member knows a leader (or the
    /// cluster serves clients over TLS, which this lookup does not speak).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), ketch_store::etcd::testing::EtcdTestError> {
    /// let etcd = ketch_store::etcd::testing::EtcdCluster::start(3)?;
    /// let leader = etcd.leader().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn leader(&self) -> Option<usize> {
        for member in &self.members {
            let connect = etcd_client::Client::connect(
                [member.client_url()],
                Some(
                    etcd_client::ConnectOptions::new()
                        .with_connect_timeout(Duration::from_millis(500)),
                ),
            );
            let status = async {
                let mut client = connect.await.ok()?;
                client.status().await.ok()
            };
            let Ok(Some(status)) = tokio::time::timeout(Duration::from_secs(1), status).await
            else {
                continue;
            };
            let leader_id = status.leader();
            if leader_id == 0 {
                continue;
            }
            for (index, candidate) in self.members.iter().enumerate() {
                let connect = etcd_client::Client::connect(
                    [candidate.client_url()],
                    Some(
                        etcd_client::ConnectOptions::new()
                            .with_connect_timeout(Duration::from_millis(500)),
                    ),
                );
                let id = async {
                    let mut client = connect.await.ok()?;
                    let status = client.status().await.ok()?;
                    status.header().map(|h| h.member_id())
                };
                if let Ok(Some(id)) = tokio::time::timeout(Duration::from_secs(1), id).await
                    && id == leader_id
                {
                    return Some(index);
                }
            }
        }
        None
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &mut self.members {
            member.kill();
        }
        // Best effort: a leftover temporary directory is harmless.
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// `GET /health` on a member's plain-HTTP metrics port; true when it says healthy.
fn health(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(2));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = Vec::new();
    if stream.read_to_end(&mut response).is_err() && response.is_empty() {
        return false;
    }
    let text = String::from_utf8_lossy(&response);
    text.starts_with("HTTP/1.1 200") && text.contains("\"health\":\"true\"")
}

/// Whether every thread of process `pid` is stopped (state `T`), from
/// `/proc`; `None` when that cannot be read.
fn threads_stopped(pid: u32) -> Option<bool> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut all_stopped = true;
    for task in tasks {
        let stat = fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        // The state follows the parenthesized command name.
        let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
        all_stopped &= state == "T" || state == "t";
    }
    Some(all_stopped)
}

/// `count` distinct loopback ports that were free a moment ago.
fn free_ports(count: usize) -> Result<Vec<u16>, EtcdTestError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_error("choosing a free port", e))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| io_error("reading a port", e))
}

fn default_parent() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

fn find_binary() -> Result<PathBuf, EtcdTestError> {
    let mut tried = Vec::new();
    if let Some(path) = std::env::var_os("KETCH_ETCD_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        tried.push(path.display().to_string());
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("etcd");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        tried.push("etcd on PATH".to_string());
    }
    let fallback = PathBuf::from("/usr/bin/etcd");
    if fallback.is_file() {
        return Ok(fallback);
    }
    tried.push(fallback.display().to_string());
    Err(EtcdTestError::BinaryNotFound { tried })
}
