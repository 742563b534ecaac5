//! Crash test of the durable `MemoryStore`: a child process (this test binary
//! re-executed) writes with concurrent writers and reports every
//! acknowledged write on stdout; it is killed with SIGKILL at random moments,
//! 60 times. After each kill the store is reopened: every acknowledged write
//! must be there and the revision must never go back.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ketch_core::{Revision, Store, StoreError};
use ketch_store::{FsyncPolicy, MemoryStore, MemoryStoreOptions};
use rand::RngExt;

const DIR_ENV: &str = "KETCH_STORE_CRASH_DIR";
const RUN_ENV: &str = "KETCH_STORE_CRASH_RUN";
const RUNS: usize = 60;
const WRITERS: usize = 8;

fn options(run: usize) -> MemoryStoreOptions {
    let policy = if run.is_multiple_of(2) {
        FsyncPolicy::Always
    } else {
        FsyncPolicy::Never
    };
    // Tiny snapshots so kills also land during snapshots and segment rotation.
    MemoryStoreOptions::default()
        .fsync(policy)
        .snapshot_every_bytes(16 << 10)
}

/// The child: only does something when re-executed by the parent below.
#[test]
#[ignore = "the child process of sigkill_at_random_moments_loses_no_acknowledged_write"]
fn crash_child() {
    let (Ok(dir), Ok(run)) = (std::env::var(DIR_ENV), std::env::var(RUN_ENV)) else {
        // Run with --include-ignored but not as a child: nothing to do.
        eprintln!("crash_child only runs as the child of the crash test");
        return;
    };
    let run: usize = run.parse().expect("run number");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = MemoryStore::open_with(&dir, options(run)).expect("open");
        say("READY");
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            tasks.push(tokio::spawn(async move { writer(store, run, w).await }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
    });
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).expect("stdout");
    out.write_all(b"\n").expect("stdout");
    out.flush().expect("stdout");
}

async fn writer(store: MemoryStore, run: usize, w: usize) {
    let counter = format!("/counter/{w}");
    for i in 0u64.. {
        let key = format!("/data/{run}/{w}/{i}");
        let kv = store
            .create(&key, format!("{run}-{w}-{i}").into())
            .await
            .expect("create");
        say(&format!("PUT {key} {}", kv.mod_revision));
        if i % 3 == 2 {
            let old = format!("/data/{run}/{w}/{}", i - 1);
            say(&format!("TRY {old}"));
            let (_, r) = store.delete(&old, None).await.expect("delete");
            say(&format!("DEL {old} {r}"));
        }
        let current = store.get(&counter).await.expect("get");
        let next = match &current {
            Some(kv) => parse(&kv.value) + 1,
            None => 1,
        };
        let result = match current {
            Some(kv) => {
                store
                    .update(&counter, next.to_string().into(), kv.mod_revision)
                    .await
            }
            None => store.create(&counter, next.to_string().into()).await,
        };
        match result {
            Ok(kv) => say(&format!("CNT {counter} {next} {}", kv.mod_revision)),
            Err(e) => panic!("counter write failed: {e:?}"),
        }
    }
}

fn parse(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Acked {
    /// Key -> acknowledged as present (`Some(true)`) or deleted
    /// (`Some(false)`); `None` while a delete is in flight (either is right).
    data: BTreeMap<String, Option<bool>>,
    /// Counter key -> highest acknowledged value.
    counters: BTreeMap<String, u64>,
    max_revision: Revision,
    lines: usize,
}

impl Acked {
    fn record(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        let revision = |s: &str| s.parse::<Revision>().expect("revision");
        match parts.as_slice() {
            ["PUT", key, rev] => {
                self.data.insert(key.to_string(), Some(true));
                self.max_revision = self.max_revision.max(revision(rev));
            }
            ["TRY", key] => {
                self.data.insert(key.to_string(), None);
                return;
            }
            ["DEL", key, rev] => {
                self.data.insert(key.to_string(), Some(false));
                self.max_revision = self.max_revision.max(revision(rev));
            }
            ["CNT", key, value, rev] => {
                let v: u64 = value.parse().expect("counter");
                let slot = self.counters.entry(key.to_string()).or_default();
                *slot = (*slot).max(v);
                self.max_revision = self.max_revision.max(revision(rev));
            }
            _ => return,
        }
        self.lines += 1;
    }
}

fn run_child(dir: &Path, run: usize, acked: &Arc<Mutex<Acked>>) -> usize {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .env(RUN_ENV, run.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let acked_by_reader = acked.clone();
    let reader = std::thread::spawn(move || {
        let mut lines = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.ends_with("READY") {
                let _ = ready_tx.send(());
            }
            let mut a = acked_by_reader.lock().expect("acked");
            let before = a.lines;
            a.record(&line);
            lines += a.lines - before;
        }
        lines
    });
    let mut rng = rand::rng();
    // Most kills land while writing; some during start-up and recovery.
    if run % 5 != 4 {
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child did not start");
    }
    std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    reader.join().expect("reader")
}

async fn verify(dir: &Path, acked: &Acked, last_revision: Revision) -> Revision {
    let store = MemoryStore::open(dir).expect("reopen after SIGKILL");
    let revision = store.current_revision().await.expect("revision");
    assert!(
        revision >= acked.max_revision,
        "revision {revision} is below an acknowledged write at {}",
        acked.max_revision
    );
    assert!(
        revision >= last_revision,
        "revision went back from {last_revision} to {revision}"
    );
    for (key, present) in &acked.data {
        let got = store.get(key).await.expect("get");
        if let Some(present) = present {
            assert_eq!(got.is_some(), *present, "acknowledged state of {key}");
        }
    }
    for (key, value) in &acked.counters {
        let got = store
            .get(key)
            .await
            .expect("get")
            .map(|kv| parse(&kv.value));
        assert!(
            got.is_some_and(|g| g >= *value),
            "counter {key} is {got:?}, acknowledged {value}"
        );
    }
    // The reopened store still takes writes, at the next revision.
    let kv = store
        .create(&format!("/verify/{revision}"), "x".into())
        .await
        .expect("write after reopen");
    assert_eq!(kv.mod_revision, revision + 1);
    match store.delete(&kv.key, None).await {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => panic!("write after reopen vanished"),
        Err(e) => panic!("delete after reopen: {e:?}"),
    }
    revision + 2
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut revision = 0;
    let mut runs_with_acks = 0;
    let started = Instant::now();
    for run in 0..RUNS {
        let lines = run_child(&dir, run, &acked);
        if lines > 0 {
            runs_with_acks += 1;
        }
        let snapshot = std::mem::take(&mut *acked.lock().expect("acked"));
        revision = verify(&dir, &snapshot, revision).await;
        *acked.lock().expect("acked") = snapshot;
    }
    let total = acked.lock().expect("acked").lines;
    eprintln!(
        "{RUNS} SIGKILLs, {runs_with_acks} with acknowledged writes, {total} acknowledged writes, final revision {revision}, {:?}",
        started.elapsed()
    );
    assert!(
        runs_with_acks >= RUNS / 2,
        "only {runs_with_acks} runs wrote anything"
    );
}
