//! Encoding and decoding objects as JSON, the work behind every store write,
//! every gRPC request and every gRPC reply.
//!
//! ```text
//! cargo bench -p ketch-core --bench codec
//! ```
//!
//! `request` is a pod as a client sends it; `stored` is the same pod after
//! the API server's defaulting (uid, timestamps, policies, the default
//! tolerations), as replies and watch events carry it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ketch_core::Scheme;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REQUEST: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1","namespace":"default","labels":{"app":"bench"}},"spec":{"containers":[{"name":"app","image":"registry.k8s.io/pause:3.10","resources":{"requests":{"cpu":"100m","memory":"500Mi"}}}]}}"#;

const STORED: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1","namespace":"default","uid":"0e0e4d97-a994-440a-bc8b-29a945ae72d9","resourceVersion":"3","generation":1,"creationTimestamp":"2026-11-23T03:21:16Z","labels":{"app":"bench"}},"spec":{"containers":[{"name":"app","image":"registry.k8s.io/pause:3.10","imagePullPolicy":"IfNotPresent","resources":{"requests":{"cpu":"100m","memory":"500Mi"}}}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]}}"#;

fn codec(c: &mut Criterion) {
    let scheme = Scheme::with_builtins();
    let pods = scheme
        .by_kind("v1", "Pod")
        .expect("pods are built in")
        .clone();
    let mut group = c.benchmark_group("pod_json");
    for (name, json) in [("request", REQUEST), ("stored", STORED)] {
        group.throughput(Throughput::Bytes(json.len() as u64));
        group.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| pods.decode_bytes(json.as_bytes()).expect("decodes"))
        });
        let object = pods.decode_bytes(json.as_bytes()).expect("decodes");
        group.bench_function(format!("encode_{name}"), |b| {
            let mut out = Vec::with_capacity(1024);
            b.iter(|| {
                out.clear();
                object.write_json(&mut out).expect("encodes");
                out.len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
