//! Durable `MemoryStore`: reopen, torn tails, corrupt and newer-format data
//! directories, snapshot backup and restore.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ketch_core::{ListOptions, Store};
use ketch_store::{DiskError, FORMAT_VERSION, FsyncPolicy, MemoryStore, MemoryStoreOptions};

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

fn last_segment(dir: &Path) -> PathBuf {
    files(dir, ".log").pop().expect("a log segment")
}

/// The end of the records in a segment (the log is preallocated with zeros).
fn records_end(data: &[u8]) -> usize {
    data.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1)
}

async fn fill(dir: &Path, n: usize) {
    let store = MemoryStore::open(dir).unwrap();
    for i in 0..n {
        store
            .create(&format!("/k/{i:03}"), format!("v{i}").into())
            .await
            .unwrap();
    }
}

async fn keys(store: &MemoryStore) -> usize {
    store
        .list("/k/", &ListOptions::default())
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test]
async fn empty_data_dir_reopens_at_revision_zero() {
    let dir = tempfile::tempdir().unwrap();
    drop(MemoryStore::open(dir.path()).unwrap());
    let store = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 0);
    assert_eq!(
        store.create("/a", "1".into()).await.unwrap().mod_revision,
        1
    );
    assert_eq!(store.data_dir(), Some(dir.path()));
}

#[tokio::test]
async fn torn_last_record_is_dropped_and_writes_continue() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10).await;
    let seg = last_segment(dir.path());
    let mut data = fs::read(&seg).unwrap();
    let end = records_end(&data);
    // A record cut short: its header and part of its payload, then nothing.
    let torn = [200, 0, 0, 0, 1, 2, 3, 4, 1, 9, 9];
    if data.len() < end + torn.len() {
        data.resize(end + torn.len(), 0);
    }
    data[end..end + torn.len()].copy_from_slice(&torn);
    fs::write(&seg, &data).unwrap();
    let store = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 10);
    assert_eq!(keys(&store).await, 10);
    let after = fs::read(&seg).unwrap();
    assert_eq!(records_end(&after), end, "torn bytes are dropped");
    store.create("/k/new", "x".into()).await.unwrap();
    drop(store);
    let store = MemoryStore::open(dir.path()).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 11);
    assert_eq!(keys(&store).await, 11);
}

#[tokio::test]
async fn truncation_at_every_offset_of_the_last_record_recovers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 3).await;
    let seg = last_segment(dir.path());
    let full = fs::read(&seg).unwrap();
    let end = records_end(&full);
    let record = (end - 24) / 3;
    for cut in 1..record {
        let copy = tempfile::tempdir().unwrap();
        let mut data = full[..end - cut].to_vec();
        // With and without the preallocated zeros after the cut.
        if cut % 2 == 0 {
            data.resize(full.len(), 0);
        }
        fs::write(copy.path().join(seg.file_name().unwrap()), &data).unwrap();
        let store = MemoryStore::open(copy.path()).unwrap();
        assert_eq!(
            store.current_revision().await.unwrap(),
            2,
            "cut {cut} bytes"
        );
    }
}

#[tokio::test]
async fn corrupt_record_before_the_tail_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 10).await;
    let seg = last_segment(dir.path());
    let mut data = fs::read(&seg).unwrap();
    data[40] ^= 0xff;
    fs::write(&seg, &data).unwrap();
    match MemoryStore::open(dir.path()) {
        Err(e @ DiskError::Corrupt { .. }) => {
            let message = e.to_string();
            assert!(message.contains("checksum"), "{message}");
            assert!(message.contains(&seg.display().to_string()), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn newer_format_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), 2).await;
    let seg = last_segment(dir.path());
    let mut data = fs::read(&seg).unwrap();
    data[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    fs::write(&seg, &data).unwrap();
    match MemoryStore::open(dir.path()) {
        Err(e @ DiskError::NewerFormat { .. }) => {
            assert!(e.to_string().contains("newer"), "{e}");
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_files_are_corrupt_not_a_panic() {
    let cases: &[(&str, &[u8])] = &[
        (
            "wal-00000000000000000001.log",
            b"this is not a log file at all, really",
        ),
        (
            "snap-00000000000000000005.snap",
            b"KETCHSNP\x01\x00\x00\x00garbage garbage garbage",
        ),
        ("snap-00000000000000000006.snap", b"short"),
    ];
    for (name, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(name), bytes).unwrap();
        assert!(
            matches!(
                MemoryStore::open(dir.path()),
                Err(DiskError::Corrupt { .. })
            ),
            "{name}"
        );
    }
}

#[tokio::test]
async fn snapshots_rotate_the_log_and_history_survives_from_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let options = MemoryStoreOptions::default().snapshot_every_bytes(1024);
    {
        let store = MemoryStore::open_with(dir.path(), options.clone()).unwrap();
        for i in 0..300 {
            store
                .create(&format!("/k/{i:03}"), "x".into())
                .await
                .unwrap();
        }
        for i in 0..100 {
            store.delete(&format!("/k/{i:03}"), None).await.unwrap();
        }
        // Let the background snapshot finish before closing.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !files(dir.path(), ".snap").is_empty(),
        "a snapshot was written"
    );
    let store = MemoryStore::open_with(dir.path(), options).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 400);
    assert_eq!(keys(&store).await, 200);
    let kv = store.get("/k/150").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.version), (151, 1));
}

#[tokio::test]
async fn interval_fsync_policy_persists_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        MemoryStoreOptions::default().fsync(FsyncPolicy::Interval(Duration::from_millis(5)));
    {
        let store = MemoryStore::open_with(dir.path(), options.clone()).unwrap();
        for i in 0..50 {
            store
                .create(&format!("/k/{i:03}"), "x".into())
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = MemoryStore::open_with(dir.path(), options).unwrap();
    assert_eq!(keys(&store).await, 50);
}

#[tokio::test]
async fn snapshot_save_and_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let store = MemoryStore::new();
    for i in 0..20 {
        store
            .create(&format!("/k/{i:03}"), format!("v{i}").into())
            .await
            .unwrap();
    }
    store.delete("/k/000", None).await.unwrap();
    let file = tmp.path().join("backup.snap");
    assert_eq!(store.save_snapshot(&file).unwrap(), 21);
    let original = store.list("/", &ListOptions::default()).await.unwrap();

    let data = tmp.path().join("data");
    let restored = MemoryStore::restore(&file, &data, MemoryStoreOptions::default()).unwrap();
    let page = restored.list("/", &ListOptions::default()).await.unwrap();
    assert_eq!(page.items, original.items);
    assert_eq!(restored.current_revision().await.unwrap(), 21);
    assert_eq!(
        restored
            .create("/k/new", "x".into())
            .await
            .unwrap()
            .mod_revision,
        22
    );
    drop(restored);
    let reopened = MemoryStore::open(&data).unwrap();
    assert_eq!(reopened.current_revision().await.unwrap(), 22);
    drop(reopened);

    assert!(matches!(
        MemoryStore::restore(&file, &data, MemoryStoreOptions::default()),
        Err(DiskError::NotEmpty { .. })
    ));
    let in_memory = MemoryStore::from_snapshot(&file, MemoryStoreOptions::default()).unwrap();
    assert_eq!(
        in_memory
            .list("/", &ListOptions::default())
            .await
            .unwrap()
            .items,
        original.items
    );

    let mut bad = fs::read(&file).unwrap();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    fs::write(&file, &bad).unwrap();
    assert!(matches!(
        MemoryStore::from_snapshot(&file, MemoryStoreOptions::default()),
        Err(DiskError::Corrupt { .. })
    ));
}
