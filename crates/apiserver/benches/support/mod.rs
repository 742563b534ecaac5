//! Pieces both API server benches use: the pod they create, the process's
//! CPU time, so each bench can report CPU per operation beside wall time,
//! and the allocator.

use std::time::Duration;

use ketch_core::api::{Container, Pod, PodSpec, ResourceRequirements};
use ketch_core::{ObjectMeta, Quantity};

/// The benches allocate with mimalloc, as the `ketch` binary does: in A/B
/// runs a status update took about a third less CPU time than on glibc's
/// malloc, whose cost grows as a long-running server's heap fragments.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The pod every bench creates: one container requesting 100m CPU and 500Mi.
pub fn bench_pod(name: String) -> Pod {
    Pod {
        metadata: ObjectMeta::named("default", &name).with_label("app", "bench"),
        spec: PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                resources: Some(ResourceRequirements {
                    requests: [
                        ("cpu".to_string(), Quantity::from("100m")),
                        ("memory".to_string(), Quantity::from("500Mi")),
                    ]
                    .into(),
                    ..Default::default()
                }),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    }
}

/// CPU time (user + system, all threads) this process has used, from
/// `/proc/self/stat` (Linux, 100 ticks per second); `None` elsewhere.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name (which may hold spaces);
    // utime and stime are the 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}
