//! `ketch`: run an all-in-one control plane, and talk to it.
//!
//! ```text
//! ketch serve  [--data-dir DIR] [--in-memory] [--listen ADDR] [--token-file FILE]
//!              [--service-cidr CIDR] [--no-scheduler]
//! ketch apply  -f FILE [--server URL] [--token TOKEN]
//! ketch get    RESOURCE [NAME] [-n NAMESPACE | -A] [-o yaml|json] [--server URL] [--token TOKEN]
//! ketch delete RESOURCE NAME [-n NAMESPACE] [--server URL] [--token TOKEN]
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use ketch::Cluster;
use ketch::apiserver::grpc::RemoteClient;
use ketch::core::api::{ConditionStatus, Node, Pod, Service};
use ketch::core::manifest::{decode_manifests, encode_json, encode_yaml};
use ketch::core::{
    ApiError, ArcObject, Client, DeleteOutcome, DeleteParams, ListParams, Object, Scheme,
};

/// mimalloc keeps a long-running control plane's allocation cost flat where
/// glibc's malloc degrades as the heap fragments (feature `mimalloc`, on by
/// default).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DEFAULT_DATA_DIR: &str = "ketch-data";
const DEFAULT_LISTEN: &str = "127.0.0.1:6443";
const TOKEN_FILE_NAME: &str = "admin.token";

const USAGE: &str = "\
usage:
  ketch serve  [--data-dir DIR] [--in-memory] [--listen ADDR] [--token-file FILE]
               [--service-cidr CIDR] [--no-scheduler]
  ketch apply  -f FILE [--server URL] [--token TOKEN]
  ketch get    RESOURCE [NAME] [-n NAMESPACE | -A] [-o yaml|json] [--server URL] [--token TOKEN]
  ketch delete RESOURCE NAME [-n NAMESPACE] [--server URL] [--token TOKEN]

serve runs the API server (gRPC on --listen, default 127.0.0.1:6443) and the
scheduler on the embedded store, durable in --data-dir (default ./ketch-data).
It writes an administrator token to DIR/admin.token; the other commands read
it from there, from --token, or from $KETCH_TOKEN.";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), BoxError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(format!("no command given\n{USAGE}").into());
    };
    let flags = Flags::parse(rest)?;
    match command.as_str() {
        "serve" => serve(flags).await,
        "apply" => apply(flags).await,
        "get" => get(flags).await,
        "delete" => delete(flags).await,
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n{USAGE}").into()),
    }
}

/// Parsed command-line flags and positional arguments.
#[derive(Default)]
struct Flags {
    positional: Vec<String>,
    data_dir: Option<PathBuf>,
    in_memory: bool,
    listen: Option<String>,
    token_file: Option<PathBuf>,
    service_cidr: Option<String>,
    no_scheduler: bool,
    file: Option<PathBuf>,
    server: Option<String>,
    token: Option<String>,
    namespace: Option<String>,
    all_namespaces: bool,
    output: Option<String>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut f = Flags::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with('-') => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = |flag: &str| -> Result<String, String> {
                match inline.clone().or_else(|| it.next().cloned()) {
                    Some(v) if !v.is_empty() => Ok(v),
                    _ => Err(format!("{flag}: a value is required")),
                }
            };
            match name {
                "--data-dir" => f.data_dir = Some(value(name)?.into()),
                "--in-memory" => f.in_memory = true,
                "--listen" => f.listen = Some(value(name)?),
                "--token-file" => f.token_file = Some(value(name)?.into()),
                "--service-cidr" => f.service_cidr = Some(value(name)?),
                "--no-scheduler" => f.no_scheduler = true,
                "-f" | "--filename" => f.file = Some(value(name)?.into()),
                "--server" | "-s" => f.server = Some(value(name)?),
                "--token" => f.token = Some(value(name)?),
                "-n" | "--namespace" => f.namespace = Some(value(name)?),
                "-A" | "--all-namespaces" => f.all_namespaces = true,
                "-o" | "--output" => {
                    let v = value(name)?;
                    if v != "yaml" && v != "json" {
                        return Err(format!(
                            "{name}: unknown output format {v:?} (expected yaml or json)"
                        ));
                    }
                    f.output = Some(v);
                }
                s if s.starts_with('-') && s.len() > 1 => {
                    return Err(format!("unknown flag {s:?}\n{USAGE}"));
                }
                _ => f.positional.push(arg.clone()),
            }
        }
        Ok(f)
    }

    fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }
}

async fn serve(flags: Flags) -> Result<(), BoxError> {
    if !flags.positional.is_empty() {
        return Err(format!("serve: unexpected argument {:?}", flags.positional[0]).into());
    }
    let listen = flags.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let addr = listen
        .parse()
        .map_err(|e| format!("--listen: invalid address {listen:?}: {e}"))?;
    let data_dir = flags.data_dir();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("--data-dir {}: {e}", data_dir.display()))?;
    let token = admin_token(&data_dir)?;

    let mut builder = Cluster::builder().serve_grpc(addr).admin_token(&token);
    builder = if flags.in_memory {
        builder.memory_store()
    } else {
        builder.data_dir(data_dir.join("store"))
    };
    if let Some(path) = &flags.token_file {
        builder = builder.token_file(path);
    }
    if let Some(cidr) = &flags.service_cidr {
        builder = builder.service_cidr(cidr);
    }
    if flags.no_scheduler {
        builder = builder.without_scheduler();
    }
    let cluster = builder.start().await?;
    let bound = cluster
        .grpc_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(
        grpc = %bound,
        store = if flags.in_memory { "memory" } else { "durable" },
        token_file = %data_dir.join(TOKEN_FILE_NAME).display(),
        "ketch control plane is up"
    );
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    cluster.shutdown().await;
    Ok(())
}

/// Reads the administrator token of a data directory, creating one if needed.
fn admin_token(data_dir: &Path) -> Result<String, BoxError> {
    let path = data_dir.join(TOKEN_FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok(t.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("reading {}: {e}", path.display()).into()),
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, &token).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(token)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

async fn connect(flags: &Flags) -> Result<Arc<dyn Client>, BoxError> {
    let server = flags
        .server
        .clone()
        .unwrap_or_else(|| format!("http://{DEFAULT_LISTEN}"));
    let token = match (&flags.token, std::env::var("KETCH_TOKEN")) {
        (Some(t), _) => Some(t.clone()),
        (None, Ok(t)) if !t.is_empty() => Some(t),
        _ => std::fs::read_to_string(flags.data_dir().join(TOKEN_FILE_NAME))
            .ok()
            .map(|t| t.trim().to_string()),
    };
    let mut builder = RemoteClient::builder(&server);
    if let Some(t) = &token {
        builder = builder.token(t);
    }
    let client = builder
        .connect()
        .await
        .map_err(|e| format!("connecting to {server}: {e}"))?;
    Ok(Arc::new(client))
}

async fn apply(flags: Flags) -> Result<(), BoxError> {
    let path = flags.file.clone().ok_or("apply: -f FILE is required")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("-f {}: {e}", path.display()))?;
    let objects = decode_manifests(&text, &Scheme::with_builtins())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let client = connect(&flags).await?;
    for mut object in objects {
        if object.metadata().namespace.is_none() && namespaced(object.kind()) {
            object.metadata_mut().namespace =
                Some(flags.namespace.clone().unwrap_or_else(|| "default".into()));
        }
        let what = format!(
            "{}/{}",
            object.kind().to_lowercase(),
            object.metadata().name()
        );
        match client.create(object.clone()).await {
            Ok(_) => println!("{what} created"),
            Err(ApiError::AlreadyExists { resource, name }) => {
                let current = client
                    .get(&resource, object.metadata().namespace.as_deref(), &name)
                    .await?;
                object.metadata_mut().resource_version =
                    current.metadata().resource_version.clone();
                client.update(object).await?;
                println!("{what} configured");
            }
            Err(e) => return Err(format!("{what}: {e}").into()),
        }
    }
    Ok(())
}

fn namespaced(kind: &str) -> bool {
    !matches!(
        kind,
        "Namespace" | "Node" | "ClusterRole" | "ClusterRoleBinding"
    )
}

/// The plural resource name for what users type (`po`, `pod`, `pods`, `deploy`, ...).
fn resource_name(input: &str) -> Result<&'static str, String> {
    Ok(match input.to_ascii_lowercase().as_str() {
        "po" | "pod" | "pods" => "pods",
        "no" | "node" | "nodes" => "nodes",
        "ns" | "namespace" | "namespaces" => "namespaces",
        "svc" | "service" | "services" => "services",
        "ep" | "endpoints" => "endpoints",
        "rs" | "replicaset" | "replicasets" => "replicasets",
        "deploy" | "deployment" | "deployments" => "deployments",
        "lease" | "leases" => "leases",
        "ev" | "event" | "events" => "events",
        other => return Err(format!("unknown resource type {other:?}")),
    })
}

fn scope(resource: &str, flags: &Flags) -> Option<String> {
    match resource {
        "nodes" | "namespaces" => None,
        _ if flags.all_namespaces => None,
        _ => Some(flags.namespace.clone().unwrap_or_else(|| "default".into())),
    }
}

async fn get(flags: Flags) -> Result<(), BoxError> {
    let kind = flags
        .positional
        .first()
        .ok_or("get: RESOURCE is required (e.g. pods)")?;
    let resource = resource_name(kind)?;
    let ns = scope(resource, &flags);
    let client = connect(&flags).await?;
    let items: Vec<ArcObject> = match flags.positional.get(1) {
        Some(name) => vec![client.get(resource, ns.as_deref(), name).await?],
        None => {
            client
                .list(resource, ns.as_deref(), &ListParams::default())
                .await?
                .items
        }
    };
    match flags.output.as_deref() {
        Some(format) => {
            let boxed: Vec<Box<dyn Object>> = items.iter().map(|o| o.clone_boxed()).collect();
            let text = if format == "json" {
                encode_json(&boxed)?
            } else {
                encode_yaml(&boxed)?
            };
            println!("{text}");
        }
        None => print_table(
            resource,
            &items,
            flags.all_namespaces && !matches!(resource, "nodes" | "namespaces"),
        ),
    }
    Ok(())
}

fn print_table(resource: &str, items: &[ArcObject], with_namespace: bool) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<&str> = if with_namespace {
        vec!["NAMESPACE", "NAME"]
    } else {
        vec!["NAME"]
    };
    header.extend(match resource {
        "pods" => vec!["PHASE", "NODE", "IP"],
        "nodes" => vec!["READY", "CPU", "MEMORY"],
        "services" => vec!["TYPE", "CLUSTER-IP", "PORTS"],
        _ => vec![],
    });
    for item in items {
        let meta = item.metadata();
        let mut row = Vec::new();
        if with_namespace {
            row.push(meta.namespace().to_string());
        }
        row.push(meta.name().to_string());
        if let Some(pod) = item.downcast_ref::<Pod>() {
            let phase = pod
                .status
                .phase
                .map(|p| format!("{p:?}"))
                .unwrap_or_else(|| "Pending".into());
            row.push(if meta.deletion_timestamp.is_some() {
                "Terminating".into()
            } else {
                phase
            });
            row.push(
                pod.spec
                    .node_name
                    .clone()
                    .unwrap_or_else(|| "<none>".into()),
            );
            row.push(pod.status.pod_ip.clone().unwrap_or_else(|| "<none>".into()));
        } else if let Some(node) = item.downcast_ref::<Node>() {
            let ready = node.status.conditions.iter().find(|c| c.type_ == "Ready");
            row.push(match ready.map(|c| c.status) {
                Some(ConditionStatus::True) => "True".into(),
                Some(ConditionStatus::False) => "False".into(),
                _ => "Unknown".into(),
            });
            let alloc = |k: &str| {
                node.status
                    .allocatable
                    .get(k)
                    .map(|q| q.0.clone())
                    .unwrap_or_else(|| "-".into())
            };
            row.push(alloc("cpu"));
            row.push(alloc("memory"));
        } else if let Some(svc) = item.downcast_ref::<Service>() {
            row.push(
                svc.spec
                    .type_
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_else(|| "ClusterIP".into()),
            );
            row.push(
                svc.spec
                    .cluster_ip
                    .clone()
                    .unwrap_or_else(|| "<none>".into()),
            );
            let ports: Vec<String> = svc.spec.ports.iter().map(|p| p.port.to_string()).collect();
            row.push(ports.join(","));
        }
        rows.push(row);
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", padded.join("   ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

async fn delete(flags: Flags) -> Result<(), BoxError> {
    let (Some(kind), Some(name)) = (flags.positional.first(), flags.positional.get(1)) else {
        return Err("delete: RESOURCE and NAME are required".into());
    };
    let resource = resource_name(kind)?;
    let ns = scope(resource, &flags);
    let client = connect(&flags).await?;
    match client
        .delete(resource, ns.as_deref(), name, &DeleteParams::default())
        .await?
    {
        DeleteOutcome::Deleted(_) => println!("{resource}/{name} deleted"),
        DeleteOutcome::Pending(_) => println!("{resource}/{name} marked for deletion"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_take_values_inline_or_separate() {
        let f = Flags::parse(&args(&[
            "pods",
            "-n",
            "prod",
            "--server=http://10.0.0.1:6443",
            "-o",
            "json",
        ]))
        .unwrap();
        assert_eq!(f.positional, vec!["pods"]);
        assert_eq!(f.namespace.as_deref(), Some("prod"));
        assert_eq!(f.server.as_deref(), Some("http://10.0.0.1:6443"));
        assert_eq!(f.output.as_deref(), Some("json"));
    }

    #[test]
    fn bad_flags_name_the_flag_and_the_problem() {
        let cases: &[(&[&str], &str)] = &[
            (&["--namespace"], "--namespace: a value is required"),
            (&["--listen="], "--listen: a value is required"),
            (
                &["-o", "xml"],
                "-o: unknown output format \"xml\" (expected yaml or json)",
            ),
            (&["--frobnicate"], "unknown flag \"--frobnicate\""),
        ];
        for (input, expected) in cases {
            let err = Flags::parse(&args(input)).err().unwrap_or_default();
            assert!(err.starts_with(expected), "{input:?}: got {err:?}");
        }
    }

    #[test]
    fn resource_names_accept_short_and_singular_forms() {
        assert_eq!(resource_name("po"), Ok("pods"));
        assert_eq!(resource_name("Deployment"), Ok("deployments"));
        assert_eq!(resource_name("svc"), Ok("services"));
        assert_eq!(
            resource_name("widgets"),
            Err("unknown resource type \"widgets\"".to_string())
        );
    }
}
