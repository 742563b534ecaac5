//! The on-disk format of a durable [`MemoryStore`](super::MemoryStore): the
//! write-ahead log segments, snapshots, and recovery from a data directory.
//!
//! A data directory holds:
//! - `LOCK`: locked while a process has the store open;
//! - `wal-<first revision>.log`: log segments, a 24-byte header (magic
//!   `KETCHWAL`, format version, first revision, CRC-32 of the header) then
//!   records `[payload length u32][CRC-32 of payload u32][payload]`, where a
//!   payload is `[kind u8][revision i64][key length u32][key][value length
//!   u32][value]` (kind 1 = put, 2 = delete, no value);
//! - `snap-<revision>.snap`: the live keys at a revision (magic `KETCHSNP`,
//!   format version, revision, count, the records, and a CRC-32 of all
//!   preceding bytes). The same format is used by
//!   [`MemoryStore::save_snapshot`](super::MemoryStore::save_snapshot).
//!
//! All integers are little-endian.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use ketch_core::Revision;

use super::state::{Rec, State, WalOp};

/// The on-disk format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const WAL_MAGIC: &[u8; 8] = b"KETCHWAL";
const SNAP_MAGIC: &[u8; 8] = b"KETCHSNP";
const WAL_HEADER_LEN: usize = 24;
/// Largest record payload accepted (a larger length field is garbage).
pub(crate) const MAX_RECORD: usize = 1 << 30;
const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;

/// Errors of the durable mode: opening, recovering and snapshotting a data
/// directory.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// An I/O operation on a file failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file holds bytes that are not a valid record, header or snapshot
    /// (other than a torn last log record, which is dropped on open).
    #[error("{path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad bytes start.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A file was written by a newer format version than this build reads.
    #[error(
        "{path} has format version {found}, newer than version {supported} that this build \
         supports; open it with a newer ketch"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// Another process (or store in this process) has the directory open.
    #[error("data directory {path} is in use by another store")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// A restore target already holds store data.
    #[error("data directory {path} already holds store data")]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |source| DiskError::Io {
        path: path.to_owned(),
        source,
    }
}

fn corrupt(path: &Path, offset: usize, reason: impl Into<String>) -> DiskError {
    DiskError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Appends a put record to `buf`.
pub(crate) fn encode_put(buf: &mut Vec<u8>, revision: Revision, key: &str, value: &[u8]) {
    encode_record(buf, KIND_PUT, revision, key, Some(value));
}

/// Appends a delete record to `buf`.
pub(crate) fn encode_delete(buf: &mut Vec<u8>, revision: Revision, key: &str) {
    encode_record(buf, KIND_DELETE, revision, key, None);
}

fn encode_record(buf: &mut Vec<u8>, kind: u8, revision: Revision, key: &str, value: Option<&[u8]>) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 8]);
    buf.push(kind);
    buf.extend_from_slice(&revision.to_le_bytes());
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key.as_bytes());
    if let Some(value) = value {
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(value);
    }
    let payload = &buf[start + 8..];
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32fast::hash(payload).to_le_bytes();
    buf[start..start + 4].copy_from_slice(&len);
    buf[start + 4..start + 8].copy_from_slice(&crc);
}

/// A little-endian reader over a byte slice that reports truncation.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)?.try_into().ok().map(i64::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    fn str(&mut self) -> Option<Result<&'a str, std::str::Utf8Error>> {
        let n = self.u32()? as usize;
        self.take(n).map(std::str::from_utf8)
    }
}

fn decode_payload(payload: &[u8]) -> Result<WalOp<'_>, String> {
    let mut r = Reader {
        data: payload,
        pos: 0,
    };
    let short = || "record payload is truncated".to_string();
    let kind = r.u8().ok_or_else(short)?;
    let revision = r.i64().ok_or_else(short)?;
    let key = r
        .str()
        .ok_or_else(short)?
        .map_err(|e| format!("key is not UTF-8: {e}"))?;
    let op = match kind {
        KIND_PUT => {
            let n = r.u32().ok_or_else(short)? as usize;
            let value = r.take(n).ok_or_else(short)?;
            WalOp::Put {
                revision,
                key,
                value,
            }
        }
        KIND_DELETE => WalOp::Delete { revision, key },
        other => return Err(format!("unknown record kind {other}")),
    };
    if r.pos != payload.len() {
        return Err(format!(
            "{} trailing bytes after the record",
            payload.len() - r.pos
        ));
    }
    Ok(op)
}

/// How a segment's record list ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SegmentEnd {
    /// Every byte belongs to a valid record.
    Clean,
    /// The records end at this offset; only preallocated zeros follow.
    Zeros { valid_len: usize },
    /// The records end at this offset with an incomplete or torn record.
    Torn { valid_len: usize, reason: String },
}

/// Parses the records of a segment (after its header), calling `apply` for
/// each. Zeros after the last record are preallocated space. A damaged
/// record is a torn tail when nothing but zeros follows it; anywhere else it
/// is corruption.
pub(crate) fn parse_records<'a>(
    path: &Path,
    data: &'a [u8],
    mut apply: impl FnMut(WalOp<'a>) -> Result<(), String>,
) -> Result<SegmentEnd, DiskError> {
    let mut pos = WAL_HEADER_LEN;
    while pos < data.len() {
        let rest = &data[pos..];
        let torn = |reason: &str| SegmentEnd::Torn {
            valid_len: pos,
            reason: reason.to_string(),
        };
        if rest.iter().all(|b| *b == 0) {
            return Ok(SegmentEnd::Zeros { valid_len: pos });
        }
        let Some(header) = rest.get(..8) else {
            return Ok(torn("incomplete record header"));
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_RECORD || 8 + len > rest.len() {
            return Ok(torn("incomplete record"));
        }
        let payload = &rest[8..8 + len];
        if crc32fast::hash(payload) != crc {
            if rest[8 + len..].iter().all(|b| *b == 0) {
                return Ok(torn("checksum mismatch in the last record"));
            }
            return Err(corrupt(path, pos, "record checksum mismatch"));
        }
        let op = decode_payload(payload).map_err(|e| corrupt(path, pos, e))?;
        apply(op).map_err(|e| corrupt(path, pos, e))?;
        pos += 8 + len;
    }
    Ok(SegmentEnd::Clean)
}

fn wal_header(start: Revision) -> [u8; WAL_HEADER_LEN] {
    let mut h = [0u8; WAL_HEADER_LEN];
    h[..8].copy_from_slice(WAL_MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&start.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a segment header; returns its first revision, or `None` when the
/// header is incomplete (a segment torn while being created).
fn parse_wal_header(path: &Path, data: &[u8]) -> Result<Option<Revision>, DiskError> {
    if data.len() < WAL_HEADER_LEN {
        return Ok(None);
    }
    if &data[..8] != WAL_MAGIC {
        return Err(corrupt(path, 0, "not a ketch write-ahead log (bad magic)"));
    }
    let version = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
    if version > FORMAT_VERSION {
        return Err(DiskError::NewerFormat {
            path: path.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let crc = u32::from_le_bytes([data[20], data[21], data[22], data[23]]);
    if crc32fast::hash(&data[..20]) != crc {
        return Err(corrupt(path, 0, "segment header checksum mismatch"));
    }
    if version == 0 {
        return Err(corrupt(path, 8, "format version 0"));
    }
    let mut start = [0u8; 8];
    start.copy_from_slice(&data[12..20]);
    Ok(Some(i64::from_le_bytes(start)))
}

pub(crate) fn wal_name(start: Revision) -> String {
    format!("wal-{start:020}.log")
}

pub(crate) fn snap_name(revision: Revision) -> String {
    format!("snap-{revision:020}.snap")
}

fn parse_name(name: &str, prefix: &str, suffix: &str) -> Option<Revision> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

/// Fsyncs a directory so renames and new files in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DiskError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// An open log segment being appended to. The file is extended with zeros
/// ahead of the records (and that extension synced), so syncing a write
/// only has to flush data, not the file size.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    file: File,
    /// Where the next record goes.
    pos: u64,
    /// The file's length (records plus zeros).
    allocated: u64,
    /// How much to extend by.
    chunk: u64,
}

impl Segment {
    /// Creates a new empty segment whose first record will be `start`.
    pub(crate) fn create(dir: &Path, start: Revision, chunk: u64) -> Result<Segment, DiskError> {
        let path = dir.join(wal_name(start));
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.write_all(&wal_header(start)).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        sync_dir(dir)?;
        let len = WAL_HEADER_LEN as u64;
        Ok(Segment {
            path,
            file,
            pos: len,
            allocated: len,
            chunk,
        })
    }

    /// Opens an existing segment to append after its first `valid_len` bytes.
    fn open(path: PathBuf, valid_len: u64, chunk: u64) -> Result<Segment, DiskError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let allocated = file.metadata().map_err(io_err(&path))?.len();
        Ok(Segment {
            path,
            file,
            pos: valid_len,
            allocated: allocated.max(valid_len),
            chunk,
        })
    }

    /// Writes `buf` after the last record (not synced).
    pub(crate) fn append(&mut self, buf: &[u8]) -> Result<(), DiskError> {
        use std::os::unix::fs::FileExt;
        let end = self.pos + buf.len() as u64;
        if end > self.allocated {
            let target = end.div_ceil(self.chunk) * self.chunk;
            let zeros = vec![0u8; (target - self.allocated).min(1 << 20) as usize];
            let mut at = self.allocated;
            while at < target {
                let n = (target - at).min(zeros.len() as u64) as usize;
                self.file
                    .write_all_at(&zeros[..n], at)
                    .map_err(io_err(&self.path))?;
                at += n as u64;
            }
            self.file.sync_all().map_err(io_err(&self.path))?;
            self.allocated = target;
        }
        self.file
            .write_all_at(buf, self.pos)
            .map_err(io_err(&self.path))?;
        self.pos = end;
        Ok(())
    }

    /// Flushes the written records to disk.
    pub(crate) fn sync(&self) -> Result<(), DiskError> {
        self.file.sync_data().map_err(io_err(&self.path))
    }
}

/// The data directory's lock, held while the store is open.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, DiskError> {
        let path = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(DiskError::Locked {
                path: dir.to_owned(),
            }),
            Err(fs::TryLockError::Error(source)) => Err(DiskError::Io { path, source }),
        }
    }
}

/// What [`recover`] found in a data directory.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) state: State,
    /// The segment to append to.
    pub(crate) segment: Segment,
    /// Log bytes written since the snapshot the state was loaded from.
    pub(crate) wal_bytes: u64,
    /// Dropped torn tail, if any: (segment, reason).
    pub(crate) torn: Option<(PathBuf, String)>,
}

/// Lists `(revision, path)` of files named `<prefix><revision><suffix>`, sorted.
fn list_files(
    dir: &Path,
    prefix: &str,
    suffix: &str,
) -> Result<Vec<(Revision, PathBuf)>, DiskError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if let Some(rev) = name.to_str().and_then(|n| parse_name(n, prefix, suffix)) {
            out.push((rev, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// True when `dir` holds log segments or snapshots.
pub(crate) fn has_store_files(dir: &Path) -> Result<bool, DiskError> {
    if !dir.exists() {
        return Ok(false);
    }
    Ok(!list_files(dir, "wal-", ".log")?.is_empty()
        || !list_files(dir, "snap-", ".snap")?.is_empty())
}

/// Loads the newest snapshot and replays the log after it. Drops (truncates)
/// a torn last record; fails on anything else that is damaged.
pub(crate) fn recover(
    dir: &Path,
    history_limit: Option<u64>,
    chunk: u64,
) -> Result<Recovered, DiskError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(".tmp"))
        {
            let p = entry.path();
            fs::remove_file(&p).map_err(io_err(&p))?;
        }
    }
    let snaps = list_files(dir, "snap-", ".snap")?;
    let mut state = match snaps.last() {
        Some((_, path)) => {
            let (revision, items) = read_snapshot(path)?;
            State::from_snapshot(revision, items, history_limit)
        }
        None => State::new(history_limit),
    };
    let snapshot_revision = state.revision;
    let segments = list_files(dir, "wal-", ".log")?;
    let mut wal_bytes = 0u64;
    let mut torn = None;
    let mut last: Option<(PathBuf, usize)> = None;
    for (i, (name_start, path)) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        let data = fs::read(path).map_err(io_err(path))?;
        let Some(start) = parse_wal_header(path, &data)? else {
            if is_last {
                // Torn while being created: nothing in it was acknowledged.
                fs::remove_file(path).map_err(io_err(path))?;
                torn = Some((path.clone(), "incomplete segment header".to_string()));
                continue;
            }
            return Err(corrupt(path, 0, "incomplete segment header"));
        };
        if start != *name_start {
            return Err(corrupt(
                path,
                12,
                format!("header says first revision {start}, file name says {name_start}"),
            ));
        }
        let mut expected = start;
        let end = parse_records(path, &data, |op| {
            let revision = match &op {
                WalOp::Put { revision, .. } | WalOp::Delete { revision, .. } => *revision,
            };
            if revision != expected {
                return Err(format!("expected revision {expected}, found {revision}"));
            }
            expected += 1;
            if revision <= snapshot_revision {
                return Ok(());
            }
            state.replay(&op)
        })?;
        let valid_len = match end {
            SegmentEnd::Clean => data.len(),
            SegmentEnd::Zeros { valid_len } => valid_len,
            SegmentEnd::Torn { valid_len, reason } => {
                if !is_last {
                    return Err(corrupt(
                        path,
                        valid_len,
                        format!("{reason} before the last segment"),
                    ));
                }
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                f.set_len(valid_len as u64).map_err(io_err(path))?;
                f.sync_all().map_err(io_err(path))?;
                torn = Some((path.clone(), reason));
                valid_len
            }
        };
        if expected - 1 > snapshot_revision {
            wal_bytes += valid_len as u64;
        }
        last = Some((path.clone(), valid_len));
    }
    if state.revision < snapshot_revision {
        return Err(corrupt(dir, 0, "log ends before the snapshot"));
    }
    let segment = match last {
        Some((path, valid_len)) => Segment::open(path, valid_len as u64, chunk)?,
        None => Segment::create(dir, state.revision + 1, chunk)?,
    };
    Ok(Recovered {
        state,
        segment,
        wal_bytes,
        torn,
    })
}

/// Writes a snapshot file atomically (temporary file, fsync, rename, fsync
/// of the directory).
pub(crate) fn write_snapshot(
    path: &Path,
    revision: Revision,
    items: &[(Arc<str>, Rec)],
) -> Result<(), DiskError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut w = CrcWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
    };
    let result = (|| -> io::Result<File> {
        w.write_all(SNAP_MAGIC)?;
        w.write_all(&FORMAT_VERSION.to_le_bytes())?;
        w.write_all(&revision.to_le_bytes())?;
        w.write_all(&(items.len() as u64).to_le_bytes())?;
        for (key, rec) in items {
            let value = rec.value.as_deref().unwrap_or_default();
            w.write_all(&(key.len() as u32).to_le_bytes())?;
            w.write_all(key.as_bytes())?;
            w.write_all(&(value.len() as u32).to_le_bytes())?;
            w.write_all(value)?;
            w.write_all(&rec.create_revision.to_le_bytes())?;
            w.write_all(&rec.mod_revision.to_le_bytes())?;
            w.write_all(&rec.version.to_le_bytes())?;
        }
        let crc = w.hasher.clone().finalize();
        w.inner.write_all(&crc.to_le_bytes())?;
        w.inner.into_inner().map_err(|e| e.into_error())
    })();
    let file = result.map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

struct CrcWriter<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads and verifies a snapshot file.
pub(crate) fn read_snapshot(path: &Path) -> Result<(Revision, Vec<(String, Rec)>), DiskError> {
    let data = fs::read(path).map_err(io_err(path))?;
    if data.len() < 8 || &data[..8] != SNAP_MAGIC {
        return Err(corrupt(path, 0, "not a ketch snapshot (bad magic)"));
    }
    let mut r = Reader {
        data: &data,
        pos: 8,
    };
    let short = |pos: usize| corrupt(path, pos, "snapshot is truncated");
    let version = r.u32().ok_or_else(|| short(8))?;
    if version > FORMAT_VERSION {
        return Err(DiskError::NewerFormat {
            path: path.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if data.len() < 32 {
        return Err(short(data.len()));
    }
    let body_end = data.len() - 4;
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&data[body_end..]);
    if crc32fast::hash(&data[..body_end]) != u32::from_le_bytes(crc) {
        return Err(corrupt(path, body_end, "snapshot checksum mismatch"));
    }
    let mut r = Reader {
        data: &data[..body_end],
        pos: 12,
    };
    let revision = r.i64().ok_or_else(|| short(12))?;
    let count = r.u64().ok_or_else(|| short(20))?;
    if revision < 0 {
        return Err(corrupt(path, 12, "negative revision"));
    }
    let mut items = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut prev_key: Option<String> = None;
    for _ in 0..count {
        let pos = r.pos;
        let key = r
            .str()
            .ok_or_else(|| short(pos))?
            .map_err(|e| corrupt(path, pos, format!("key is not UTF-8: {e}")))?
            .to_owned();
        let n = r.u32().ok_or_else(|| short(r.pos))? as usize;
        let value = Bytes::copy_from_slice(r.take(n).ok_or_else(|| short(r.pos))?);
        let create_revision = r.i64().ok_or_else(|| short(r.pos))?;
        let mod_revision = r.i64().ok_or_else(|| short(r.pos))?;
        let version = r.i64().ok_or_else(|| short(r.pos))?;
        if !(0 < create_revision && create_revision <= mod_revision && mod_revision <= revision)
            || version < 1
        {
            return Err(corrupt(
                path,
                pos,
                format!("impossible revisions for key {key:?}"),
            ));
        }
        if prev_key.as_ref().is_some_and(|p| *p >= key) {
            return Err(corrupt(path, pos, "keys out of order"));
        }
        prev_key = Some(key.clone());
        items.push((
            key,
            Rec {
                value: Some(value),
                create_revision,
                mod_revision,
                version,
            },
        ));
    }
    if r.pos != body_end {
        return Err(corrupt(path, r.pos, "trailing bytes after the last key"));
    }
    Ok((revision, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment_bytes(ops: &[(Revision, &str, Option<&str>)]) -> Vec<u8> {
        let mut data = wal_header(1).to_vec();
        for (rev, key, value) in ops {
            match value {
                Some(v) => encode_put(&mut data, *rev, key, v.as_bytes()),
                None => encode_delete(&mut data, *rev, key),
            }
        }
        data
    }

    fn count(data: &[u8]) -> Result<(usize, SegmentEnd), DiskError> {
        let mut n = 0;
        let end = parse_records(Path::new("seg"), data, |_| {
            n += 1;
            Ok(())
        })?;
        Ok((n, end))
    }

    #[test]
    fn records_roundtrip() {
        let data = segment_bytes(&[(1, "/a", Some("x")), (2, "/a", None)]);
        let mut ops = Vec::new();
        let end = parse_records(Path::new("seg"), &data, |op| {
            ops.push(format!("{op:?}"));
            Ok(())
        })
        .unwrap();
        assert_eq!(end, SegmentEnd::Clean);
        assert_eq!(ops.len(), 2);
        assert!(ops[1].contains("Delete"));
    }

    #[test]
    fn every_truncation_of_the_last_record_is_a_torn_tail() {
        let full = segment_bytes(&[(1, "/a", Some("x")), (2, "/b", Some("yyyy"))]);
        let first_end = segment_bytes(&[(1, "/a", Some("x"))]).len();
        for cut in first_end + 1..full.len() {
            let (n, end) = count(&full[..cut]).unwrap();
            assert_eq!(n, 1, "cut at {cut}");
            assert!(matches!(end, SegmentEnd::Torn { valid_len, .. } if valid_len == first_end));
        }
    }

    #[test]
    fn flipped_byte_in_last_record_is_torn_but_in_middle_is_corrupt() {
        let mut data = segment_bytes(&[(1, "/a", Some("x")), (2, "/b", Some("y"))]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        assert!(matches!(count(&data).unwrap().1, SegmentEnd::Torn { .. }));
        let mut data = segment_bytes(&[(1, "/a", Some("x")), (2, "/b", Some("y"))]);
        data[WAL_HEADER_LEN + 10] ^= 0xff;
        assert!(matches!(count(&data), Err(DiskError::Corrupt { .. })));
    }

    #[test]
    fn zeros_after_the_records_are_preallocation_and_a_damaged_record_before_them_is_torn() {
        let mut data = segment_bytes(&[(1, "/a", Some("x"))]);
        let n = data.len();
        data.extend_from_slice(&[0; 100]);
        let end = count(&data).unwrap().1;
        assert!(matches!(end, SegmentEnd::Zeros { valid_len } if valid_len == n));
        let mut torn = segment_bytes(&[(1, "/a", Some("x")), (2, "/b", Some("y"))]);
        let last = torn.len() - 1;
        torn[last] ^= 0xff;
        torn.extend_from_slice(&[0; 100]);
        let (records, end) = count(&torn).unwrap();
        assert_eq!(records, 1);
        assert!(matches!(end, SegmentEnd::Torn { valid_len, .. } if valid_len == n));
    }

    #[test]
    fn newer_header_version_is_reported() {
        let mut h = wal_header(1);
        h[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let crc = crc32fast::hash(&h[..20]);
        h[20..].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            parse_wal_header(Path::new("x"), &h),
            Err(DiskError::NewerFormat { found, .. }) if found == FORMAT_VERSION + 1
        ));
        assert!(matches!(
            parse_wal_header(Path::new("x"), b"garbage garbage garbage garbage"),
            Err(DiskError::Corrupt { .. })
        ));
    }

    #[test]
    fn snapshot_roundtrip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let rec = |m| Rec {
            value: Some(Bytes::from_static(b"v")),
            create_revision: 1,
            mod_revision: m,
            version: 1,
        };
        let items = vec![(Arc::from("/a"), rec(1)), (Arc::from("/b"), rec(2))];
        write_snapshot(&path, 5, &items).unwrap();
        let (rev, got) = read_snapshot(&path).unwrap();
        assert_eq!(rev, 5);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, rec(2));
        let data = fs::read(&path).unwrap();
        for i in [0, 9, 14, 30, data.len() - 1] {
            let mut bad = data.clone();
            bad[i] ^= 0x55;
            fs::write(&path, &bad).unwrap();
            assert!(read_snapshot(&path).is_err(), "flip at {i}");
        }
        fs::write(&path, &data[..data.len() / 2]).unwrap();
        assert!(matches!(
            read_snapshot(&path),
            Err(DiskError::Corrupt { .. })
        ));
    }
}
