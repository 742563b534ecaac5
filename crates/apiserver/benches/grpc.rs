//! Pod creates over gRPC on loopback: an `ApiServer` on `MemoryStore`
//! behind a `GrpcServer`, driven by concurrent `RemoteClient` callers in the
//! same process (so both sides share the machine's cores).
//!
//! ```text
//! cargo bench -p ketch-apiserver --bench grpc
//! cargo bench -p ketch-apiserver --bench grpc -- --clients 64 --connections 1 --seconds 5
//! cargo bench -p ketch-apiserver --bench grpc -- --echo        # the transport alone
//! cargo bench -p ketch-apiserver --bench grpc -- --in-process  # the API server alone
//! ```
//!
//! Prints one line:
//! `grpc_create clients=<n> connections=<n> creates=<n> secs=<s> rate=<creates/s> p50=<ms> p99=<ms>
//! cpu_per_create=<us> rate_on_2_free_cores=<creates/s>`. The last two divide
//! the CPU time the process used by the creates done, so they stay
//! meaningful when other work shares the machine: `rate` is what the
//! process achieved, `rate_on_2_free_cores` what two idle cores would give.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ketch_apiserver::ApiServer;
use ketch_apiserver::auth::{TokenFileAuthenticator, UserInfo};
use ketch_apiserver::grpc::ClientProvider;
use ketch_apiserver::grpc::{GrpcServer, RemoteClient};
use ketch_core::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object,
    ObjectEventStream, ObjectList, Scheme, Store, WatchParams,
};
use ketch_store::MemoryStore;

mod support;
use support::{bench_pod as pod, process_cpu_time};

const TOKEN: &str = "bench-token";

struct Args {
    clients: usize,
    connections: usize,
    seconds: f64,
    warmup: f64,
    in_process: bool,
    echo: bool,
}

fn args() -> Args {
    let mut a = Args {
        clients: 64,
        connections: 1,
        seconds: 5.0,
        warmup: 1.0,
        in_process: false,
        echo: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse::<f64>().ok());
        match (argv[i].as_str(), value) {
            ("--clients", Some(v)) => a.clients = (v as usize).max(1),
            ("--connections", Some(v)) => a.connections = (v as usize).max(1),
            ("--seconds", Some(v)) => a.seconds = v.max(0.1),
            ("--warmup", Some(v)) => a.warmup = v.max(0.0),
            ("--in-process", _) => {
                a.in_process = true;
                i += 1;
                continue;
            }
            ("--echo", _) => {
                a.echo = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

/// Runs `clients` callers until `stop`; returns each caller's latencies.
async fn drive(
    client: Arc<dyn Client>,
    clients: usize,
    tag: &str,
    stop: Arc<AtomicBool>,
) -> Vec<Duration> {
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let client = client.clone();
        let stop = stop.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                client
                    .create(Box::new(pod(format!("{tag}-{c}-{i}"))))
                    .await
                    .expect("create over gRPC");
                latencies.push(started.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("caller task"));
    }
    all
}

async fn run(a: Args) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = ApiServer::builder(store)
        .authenticator(TokenFileAuthenticator::default().with_token(TOKEN, UserInfo::admin()))
        .build()
        .await
        .expect("api server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let in_process = server.client();
    let grpc = if a.echo {
        GrpcServer::new(EchoProvider {
            client: Arc::new(EchoClient::default()),
            scheme: Scheme::with_builtins(),
        })
    } else {
        GrpcServer::for_api_server(server)
    };
    tokio::spawn(grpc.serve_with_listener(listener, std::future::pending()));
    let client: Arc<dyn Client> = if a.in_process {
        in_process
    } else {
        Arc::new(
            RemoteClient::builder(&format!("http://{addr}"))
                .token(TOKEN)
                .connections(a.connections)
                .connect()
                .await
                .expect("connect"),
        )
    };

    if a.warmup > 0.0 {
        let stop = Arc::new(AtomicBool::new(false));
        let run = tokio::spawn(drive(client.clone(), a.clients, "warm", stop.clone()));
        stop_after(Duration::from_secs_f64(a.warmup), stop);
        run.await.expect("warm-up");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let run = tokio::spawn(drive(client.clone(), a.clients, "p", stop.clone()));
    stop_after(Duration::from_secs_f64(a.seconds), stop);
    let mut latencies = run.await.expect("run");
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    let n = latencies.len() as f64;
    let (cpu_us, cores_rate) = match cpu {
        Some(cpu) if n > 0.0 && cpu > 0.0 => {
            let per = cpu / n;
            (format!("{:.1}", per * 1e6), format!("{:.0}", 2.0 / per))
        }
        _ => ("n/a".to_string(), "n/a".to_string()),
    };
    println!(
        "{} clients={} connections={} creates={} secs={:.2} rate={:.0}/s p50={:.2}ms p99={:.2}ms cpu_per_create={}us rate_on_2_free_cores={}/s",
        match (a.in_process, a.echo) {
            (true, _) => "in_process_create",
            (false, true) => "grpc_echo_create",
            (false, false) => "grpc_create",
        },
        a.clients,
        a.connections,
        latencies.len(),
        secs,
        n / secs,
        pct(0.50),
        pct(0.99),
        cpu_us,
        cores_rate,
    );
}

/// Sets `stop` after `duration`, from a thread of its own: in-process
/// creates may never yield to the runtime, whose timers would then not fire.
fn stop_after(duration: Duration, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
}

/// CPU seconds this process has used; `None` where they cannot be read.
fn cpu_seconds() -> Option<f64> {
    process_cpu_time().map(|d| d.as_secs_f64())
}

/// Answers creates at once (a resource version and nothing else), to
/// measure the transport alone.
#[derive(Default)]
struct EchoClient {
    revision: std::sync::atomic::AtomicU64,
}

fn echo_only() -> ApiError {
    ApiError::BadRequest("the echo client only creates".into())
}

#[async_trait::async_trait]
impl Client for EchoClient {
    async fn create(&self, mut object: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        let rv = self.revision.fetch_add(1, Ordering::Relaxed) + 1;
        object.metadata_mut().resource_version = Some(rv.to_string());
        Ok(object.into())
    }
    async fn get(&self, _: &str, _: Option<&str>, _: &str) -> Result<ArcObject, ApiError> {
        Err(echo_only())
    }
    async fn list(&self, _: &str, _: Option<&str>, _: &ListParams) -> Result<ObjectList, ApiError> {
        Err(echo_only())
    }
    async fn update(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(echo_only())
    }
    async fn update_status(&self, _: Box<dyn Object>) -> Result<ArcObject, ApiError> {
        Err(echo_only())
    }
    async fn patch(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &serde_json::Value,
    ) -> Result<ArcObject, ApiError> {
        Err(echo_only())
    }
    async fn delete(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: &DeleteParams,
    ) -> Result<DeleteOutcome, ApiError> {
        Err(echo_only())
    }
    async fn watch(
        &self,
        _: &str,
        _: Option<&str>,
        _: &WatchParams,
    ) -> Result<ObjectEventStream, ApiError> {
        Err(echo_only())
    }
    async fn bind(&self, _: &str, _: &str, _: &str) -> Result<ArcObject, ApiError> {
        Err(echo_only())
    }
}

struct EchoProvider {
    client: Arc<dyn Client>,
    scheme: Scheme,
}

impl ClientProvider for EchoProvider {
    fn client_for(&self, token: Option<&str>) -> Result<Arc<dyn Client>, ApiError> {
        match token {
            Some(TOKEN) => Ok(self.client.clone()),
            _ => Err(ApiError::Unauthorized("unknown token".into())),
        }
    }
    fn decode_object(
        &self,
        api_version: &str,
        kind: &str,
        json: &[u8],
    ) -> Result<Box<dyn Object>, ApiError> {
        let info = self
            .scheme
            .by_kind(api_version, kind)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown kind {kind}")))?;
        info.decode_bytes(json)
            .map_err(|e| ApiError::BadRequest(e.to_string()))
    }
}

fn main() {
    let a = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run(a));
}
